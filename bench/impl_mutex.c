/* The plain baseline: a ring under one mutex. A producer that finds it full sleeps on a
 * condition variable until the consumer takes a message; the consumer polls, as every
 * consumer in this benchmark spins. */
#include "bench.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct mutex_q {
        alignas(BENCH_LINE) pthread_mutex_t lock;
        pthread_cond_t not_full;
        bool producer_waiting;
        uint32_t size;
        uint64_t head, tail;
        unsigned char *buf;
};

static inline bool mutex_put(struct mutex_q *q, const void *m)
{
        pthread_mutex_lock(&q->lock);
        while (q->head - q->tail == BENCH_CAPACITY) {
                q->producer_waiting = true;
                pthread_cond_wait(&q->not_full, &q->lock);
        }
        memcpy(q->buf + (q->head % BENCH_CAPACITY) * q->size, m, q->size);
        q->head++;
        pthread_mutex_unlock(&q->lock);
        return true;
}

static inline bool mutex_get(struct mutex_q *q, void *m)
{
        pthread_mutex_lock(&q->lock);
        if (q->head == q->tail) {
                pthread_mutex_unlock(&q->lock);
                return false;
        }
        memcpy(m, q->buf + (q->tail % BENCH_CAPACITY) * q->size, q->size);
        q->tail++;
        if (q->producer_waiting) {
                q->producer_waiting = false;
                pthread_cond_signal(&q->not_full);
        }
        pthread_mutex_unlock(&q->lock);
        return true;
}

static inline bool mutex_send8(struct mutex_q *q, uint64_t v)
{
        return mutex_put(q, &v);
}

static inline bool mutex_recv8(struct mutex_q *q, uint64_t *v)
{
        return mutex_get(q, v);
}

static inline bool mutex_send64(struct mutex_q *q, uint64_t v)
{
        struct msg64 m;
        for (unsigned i = 0; i < 8; i++)
                m.w[i] = v;
        return mutex_put(q, &m);
}

static inline bool mutex_recv64(struct mutex_q *q, struct msg64 *buf, const struct msg64 **out)
{
        *out = buf;
        return mutex_get(q, buf);
}

#define KPREFIX mutex_
#define KQ struct mutex_q
#include "kernels.h"

static void *mutex_create(const struct bench_impl *im, uint32_t msg_size)
{
        (void)im;
        struct mutex_q *q = aligned_alloc(BENCH_LINE, sizeof(*q));
        if (!q)
                return NULL;
        *q = (struct mutex_q){.size = msg_size};
        q->buf = aligned_alloc(BENCH_LINE, (size_t)BENCH_CAPACITY * msg_size);
        if (!q->buf) {
                free(q);
                return NULL;
        }
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->not_full, NULL);
        return q;
}

static void mutex_destroy(void *p, uint32_t msg_size)
{
        struct mutex_q *q = p;
        (void)msg_size;
        pthread_cond_destroy(&q->not_full);
        pthread_mutex_destroy(&q->lock);
        free(q->buf);
        free(q);
}

const struct bench_impl bench_mutex_cond = {
    .name = "mutex_cond",
    .peer = true,
    .create = mutex_create,
    .destroy = mutex_destroy,
    .produce8 = mutex_produce8,
    .consume8 = mutex_consume8,
    .produce64 = mutex_produce64,
    .consume64 = mutex_consume64,
    .paced8 = mutex_paced8,
    .ping8 = mutex_ping8,
    .pong8 = mutex_pong8,
};
