/* actord's channel under the benchmark, one descriptor per policy. Messages are written into
 * the claimed slot and read in place, as the daemon's components do. */
#include "bench.h"
#include "channel.h"

#include <stdlib.h>
#include <string.h>

struct actord_q {
        struct channel ch;
        /* Each end on its own lines: they are written by different threads. */
        alignas(BENCH_LINE) struct channel_tx tx;
        alignas(BENCH_LINE) struct channel_rx rx;
};

CHANNEL_INLINE bool actord_send8(struct actord_q *q, uint64_t v)
{
        uint64_t *p = channel_claim(&q->tx);
        if (!p)
                return false;
        *p = v;
        channel_publish(&q->tx);
        return true;
}

CHANNEL_INLINE bool actord_recv8(struct actord_q *q, uint64_t *v)
{
        uint64_t seq, lost, publish_ns;
        const uint64_t *p = channel_next(&q->rx, &seq, &lost, &publish_ns);
        if (!p)
                return false;
        *v = *p;
        return true;
}

CHANNEL_INLINE bool actord_send64(struct actord_q *q, uint64_t v)
{
        struct msg64 *m = channel_claim(&q->tx);
        if (!m)
                return false;
        for (unsigned i = 0; i < 8; i++)
                m->w[i] = v;
        channel_publish(&q->tx);
        return true;
}

CHANNEL_INLINE bool actord_recv64(struct actord_q *q, struct msg64 *buf, const struct msg64 **out)
{
        uint64_t seq, lost, publish_ns;
        (void)buf;
        *out = channel_next(&q->rx, &seq, &lost, &publish_ns);
        return *out != NULL;
}

/* A burst is the channel's batch calls: claim up to n consecutive slots, fill them, publish
 * them together. */
CHANNEL_INLINE unsigned actord_send64_burst(struct actord_q *q, const struct msg64 *m, unsigned n)
{
        uint32_t k;
        unsigned char *p = channel_claim_n(&q->tx, n, &k);
        if (!p)
                return 0;
        size_t stride = q->tx.payload_stride;
        for (uint32_t i = 0; i < k; i++)
                memcpy(p + i * stride, &m[i], sizeof(*m));
        channel_publish(&q->tx);
        return k;
}

#define KPREFIX actord_
#define KQ struct actord_q
#define KHAVE_SEND_BURST
#include "kernels.h"

/* The burst consumer: runs of up to BENCH_BURST messages with one batch read, each message
 * checked in place (the peers' burst dequeues copy into the caller's array, which the channel
 * does not need). */
static void actord_consume_burst64(void *qa, void *qb, struct kctx *c)
{
        struct actord_q *q = qa;
        uint64_t n = c->n, got = 0, expect = 0, errors = 0, lost = 0, v;
        bool lossy = c->lossy, stop = false;
        (void)qb;
        while (got < n) {
                struct channel_burst b;
                uint32_t k = channel_next_burst(&q->rx, BENCH_BURST, &b);
                if (!k) {
                        if (stop)
                                break;
                        stop = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
                        continue;
                }
                got += k;
                for (uint32_t j = 0; j < k; j++) {
                        if (!actord_check64_(channel_burst_msg(&b, j), &v))
                                errors++;
                        actord_account_(v, &expect, lossy, &errors, &lost);
                }
        }
        actord_results_(c, got, errors, lost);
}

static void *actord_create(const struct bench_impl *im, uint32_t msg_size)
{
        struct actord_q *q = aligned_alloc(BENCH_LINE, sizeof(*q));
        if (!q)
                return NULL;
        if (channel_create(&q->ch, BENCH_CAPACITY, msg_size, (enum channel_policy)im->arg) < 0) {
                free(q);
                return NULL;
        }
        if (channel_tx_open(&q->tx, &q->ch) < 0) {
                channel_destroy(&q->ch);
                free(q);
                return NULL;
        }
        if (channel_rx_open(&q->rx, &q->ch) < 0) {
                channel_tx_close(&q->tx);
                channel_destroy(&q->ch);
                free(q);
                return NULL;
        }
        return q;
}

static void actord_destroy(void *p, uint32_t msg_size)
{
        struct actord_q *q = p;
        (void)msg_size;
        channel_rx_close(&q->rx);
        channel_tx_close(&q->tx);
        channel_destroy(&q->ch);
        free(q);
}

/* The channel's own counters must agree with what the consumer counted. */
static const char *actord_check(void *p, const struct kctx *c)
{
        struct actord_q *q = p;
        struct channel_stats st;
        channel_stats(&q->ch, &st);
        if (st.published != c->n)
                return "stats: published != messages sent";
        if (st.consumed != c->received)
                return "stats: consumed != messages received";
        if (st.lost != c->n - c->received)
                return "stats: lost != messages sent - received";
        /* Gaps seen are overwrites, or drops before a message that came through. */
        if (st.overwritten != (st.dropped ? 0 : c->lost_seen) || c->lost_seen > st.lost)
                return "stats: losses disagree with the gaps the consumer saw";
        return NULL;
}

#define ACTORD_KERNELS                                                                             \
        .create = actord_create, .destroy = actord_destroy, .produce8 = actord_produce8,           \
        .consume8 = actord_consume8, .produce64 = actord_produce64, .consume64 = actord_consume64, \
        .produce_burst64 = KBURST_SEND, .consume_burst64 = actord_consume_burst64,                 \
        .paced8 = actord_paced8, .ping8 = actord_ping8, .pong8 = actord_pong8,                     \
        .check = actord_check

const struct bench_impl bench_actord_overwrite = {
    .name = "actord/overwrite",
    .lossy = true,
    .arg = CHANNEL_OVERWRITE,
    ACTORD_KERNELS,
};

const struct bench_impl bench_actord_drop_new = {
    .name = "actord/drop_new",
    .lossy = true,
    .arg = CHANNEL_DROP_NEW,
    ACTORD_KERNELS,
};

const struct bench_impl bench_actord_reject = {
    .name = "actord/reject",
    .arg = CHANNEL_REJECT,
    ACTORD_KERNELS,
};
