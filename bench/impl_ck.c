/* Concurrency Kit's SPSC ring. Its plain interface stores pointers; messages are stored by
 * value through the typed interface that CK_RING_PROTOTYPE generates (ck_ring_enqueue_spsc_<name>
 * / ck_ring_dequeue_spsc_<name>), which copies sizeof(struct <name>) bytes into the ring's own
 * buffer, so 8-byte and 64-byte messages travel in the ring like everyone else's. */
#include "bench.h"

#include <ck_ring.h>
#include <stdlib.h>

CK_RING_PROTOTYPE(msg8, msg8)
CK_RING_PROTOTYPE(msg64, msg64)

struct ck_q {
        alignas(BENCH_LINE) struct ck_ring ring;
        void *buf;
};

static inline bool ck_send8(struct ck_q *q, uint64_t v)
{
        struct msg8 m = {v};
        return ck_ring_enqueue_spsc_msg8(&q->ring, q->buf, &m);
}

static inline bool ck_recv8(struct ck_q *q, uint64_t *v)
{
        struct msg8 m;
        if (!ck_ring_dequeue_spsc_msg8(&q->ring, q->buf, &m))
                return false;
        *v = m.v;
        return true;
}

static inline bool ck_send64(struct ck_q *q, uint64_t v)
{
        struct msg64 m;
        for (unsigned i = 0; i < 8; i++)
                m.w[i] = v;
        return ck_ring_enqueue_spsc_msg64(&q->ring, q->buf, &m);
}

static inline bool ck_recv64(struct ck_q *q, struct msg64 *buf, const struct msg64 **out)
{
        *out = buf;
        return ck_ring_dequeue_spsc_msg64(&q->ring, q->buf, buf);
}

#define KPREFIX ck_
#define KQ struct ck_q
#include "kernels.h"

static void *ck_create(const struct bench_impl *im, uint32_t msg_size)
{
        (void)im;
        struct ck_q *q = aligned_alloc(BENCH_LINE, sizeof(*q));
        if (!q)
                return NULL;
        /* ck_ring keeps one slot free: BENCH_CAPACITY slots hold BENCH_CAPACITY - 1. */
        q->buf = aligned_alloc(BENCH_LINE, (size_t)BENCH_CAPACITY * msg_size);
        if (!q->buf) {
                free(q);
                return NULL;
        }
        ck_ring_init(&q->ring, BENCH_CAPACITY);
        return q;
}

static void ck_destroy(void *p, uint32_t msg_size)
{
        struct ck_q *q = p;
        (void)msg_size;
        free(q->buf);
        free(q);
}

const struct bench_impl bench_ck_ring = {
    .name = "ck_ring",
    .peer = true,
    .create = ck_create,
    .destroy = ck_destroy,
    .produce8 = ck_produce8,
    .consume8 = ck_consume8,
    .produce64 = ck_produce64,
    .consume64 = ck_consume64,
    .paced8 = ck_paced8,
    .ping8 = ck_ping8,
    .pong8 = ck_pong8,
};
