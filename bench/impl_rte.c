/* DPDK's rte_ring, single producer and single consumer, on memory of our own: rte_ring_init()
 * needs no EAL, so none is started. Messages are stored by value with the _elem calls. */
#define _GNU_SOURCE /* DPDK's headers use POSIX types */
#include "bench.h"

#include <sys/types.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <stdlib.h>

struct rte_q {
        struct rte_ring *r;
};

static inline bool rte_send8(struct rte_q *q, uint64_t v)
{
        return rte_ring_sp_enqueue_elem(q->r, &v, sizeof(v)) == 0;
}

static inline bool rte_recv8(struct rte_q *q, uint64_t *v)
{
        return rte_ring_sc_dequeue_elem(q->r, v, sizeof(*v)) == 0;
}

static inline bool rte_send64(struct rte_q *q, uint64_t v)
{
        struct msg64 m;
        for (unsigned i = 0; i < 8; i++)
                m.w[i] = v;
        return rte_ring_sp_enqueue_elem(q->r, &m, sizeof(m)) == 0;
}

static inline bool rte_recv64(struct rte_q *q, struct msg64 *buf, const struct msg64 **out)
{
        *out = buf;
        return rte_ring_sc_dequeue_elem(q->r, buf, sizeof(*buf)) == 0;
}

static inline unsigned rte_send64_burst(struct rte_q *q, const struct msg64 *m, unsigned n)
{
        return rte_ring_sp_enqueue_burst_elem(q->r, m, sizeof(*m), n, NULL);
}

static inline unsigned rte_recv64_burst(struct rte_q *q, struct msg64 *buf, unsigned n)
{
        return rte_ring_sc_dequeue_burst_elem(q->r, buf, sizeof(*buf), n, NULL);
}

#define KPREFIX rte_
#define KQ struct rte_q
#define KHAVE_SEND_BURST
#define KHAVE_RECV_BURST
#include "kernels.h"

static void *rte_create(const struct bench_impl *im, uint32_t msg_size)
{
        (void)im;
        struct rte_q *q = malloc(sizeof(*q));
        if (!q)
                return NULL;
        ssize_t size = rte_ring_get_memsize_elem(msg_size, BENCH_CAPACITY);
        if (size < 0) {
                free(q);
                return NULL;
        }
        q->r =
            aligned_alloc(BENCH_LINE, ((size_t)size + BENCH_LINE - 1) & ~(size_t)(BENCH_LINE - 1));
        /* Without RING_F_EXACT_SZ a ring of BENCH_CAPACITY slots holds BENCH_CAPACITY - 1. */
        if (!q->r || rte_ring_init(q->r, "bench", BENCH_CAPACITY, RING_F_SP_ENQ | RING_F_SC_DEQ)) {
                free(q->r);
                free(q);
                return NULL;
        }
        return q;
}

static void rte_destroy(void *p, uint32_t msg_size)
{
        struct rte_q *q = p;
        (void)msg_size;
        free(q->r);
        free(q);
}

const struct bench_impl bench_rte_ring = {
    .name = "rte_ring",
    .peer = true,
    .create = rte_create,
    .destroy = rte_destroy,
    .produce8 = rte_produce8,
    .consume8 = rte_consume8,
    .produce64 = rte_produce64,
    .consume64 = rte_consume64,
    .produce_burst64 = KBURST_SEND,
    .consume_burst64 = KBURST_RECV,
    .paced8 = rte_paced8,
    .ping8 = rte_ping8,
    .pong8 = rte_pong8,
};
