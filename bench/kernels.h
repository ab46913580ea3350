/* The measurement loops, stamped out once per queue so that every queue's operations are
 * inlined into the same loop: an indirect call per message would cost more than some of the
 * queues' operations do. Included once per queue by its adaptor, which first defines
 *
 *   KPREFIX                  the adaptor's name prefix, e.g. ck_
 *   KQ                       its queue type
 *   and, as static inline functions named with the prefix:
 *   send8(KQ *, uint64_t v)                    false when full
 *   recv8(KQ *, uint64_t *v)                   false when empty
 *   send64(KQ *, uint64_t v)                   all eight words set to v; false when full
 *   recv64(KQ *, struct msg64 *buf, const struct msg64 **out)
 *                                              *out: buf, or the message in place
 *   with KHAVE_SEND_BURST: send64_burst(KQ *, const struct msg64 *m, unsigned n), the count sent
 *   with KHAVE_RECV_BURST: recv64_burst(KQ *, struct msg64 *buf, unsigned n), the count received
 *
 * Compiled as C and as C++. A producer that finds the queue full retries at once, as does a
 * consumer that finds it empty: every queue here is measured with both sides spinning. */

#define KCAT2(a, b) a##b
#define KCAT(a, b) KCAT2(a, b)
#define KFN(x) KCAT(KPREFIX, x)

static inline void KFN(finish_)(struct kctx *c)
{
        /* Release, pairs with the consumer's acquire load: every message is visible to a
         * consumer that sees done. */
        __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
}

/* Accounts for message v where `*expect` was due. */
static inline void KFN(account_)(uint64_t v, uint64_t *expect, bool lossy, uint64_t *errors,
                                 uint64_t *lost)
{
        if (v != *expect) {
                if (lossy && v > *expect)
                        *lost += v - *expect;
                else
                        (*errors)++;
        }
        *expect = v + 1;
}

static inline bool KFN(check64_)(const struct msg64 *m, uint64_t *v)
{
        uint64_t diff = 0;
        for (unsigned i = 1; i < 8; i++)
                diff |= m->w[i] ^ m->w[0];
        *v = m->w[0];
        return diff == 0;
}

static inline void KFN(results_)(struct kctx *c, uint64_t got, uint64_t errors, uint64_t lost)
{
        c->received = got;
        /* Without loss, a message that never came is an error too. */
        c->errors = errors + (c->lossy ? 0 : c->n - got);
        c->lost_seen = lost;
}

static void KFN(produce8)(void *qa, void *qb, struct kctx *c)
{
        KQ *q = (KQ *)qa;
        uint64_t n = c->n;
        (void)qb;
        for (uint64_t i = 0; i < n; i++) {
                while (!KFN(send8)(q, i)) {
                }
        }
        KFN(finish_)(c);
}

/* Drains until n messages came or, once the producer is done, the queue is empty. */
static void KFN(consume8)(void *qa, void *qb, struct kctx *c)
{
        KQ *q = (KQ *)qa;
        uint64_t n = c->n, got = 0, expect = 0, errors = 0, lost = 0, v;
        bool lossy = c->lossy, stop = false;
        (void)qb;
        while (got < n) {
                if (!KFN(recv8)(q, &v)) {
                        if (stop)
                                break;
                        stop = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
                        continue;
                }
                got++;
                KFN(account_)(v, &expect, lossy, &errors, &lost);
        }
        KFN(results_)(c, got, errors, lost);
}

static void KFN(produce64)(void *qa, void *qb, struct kctx *c)
{
        KQ *q = (KQ *)qa;
        uint64_t n = c->n;
        (void)qb;
        for (uint64_t i = 0; i < n; i++) {
                while (!KFN(send64)(q, i)) {
                }
        }
        KFN(finish_)(c);
}

static void KFN(consume64)(void *qa, void *qb, struct kctx *c)
{
        KQ *q = (KQ *)qa;
        uint64_t n = c->n, got = 0, expect = 0, errors = 0, lost = 0, v;
        bool lossy = c->lossy, stop = false;
        struct msg64 buf;
        const struct msg64 *m;
        (void)qb;
        while (got < n) {
                if (!KFN(recv64)(q, &buf, &m)) {
                        if (stop)
                                break;
                        stop = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
                        continue;
                }
                got++;
                if (!KFN(check64_)(m, &v))
                        errors++;
                KFN(account_)(v, &expect, lossy, &errors, &lost);
        }
        KFN(results_)(c, got, errors, lost);
}

#ifdef KHAVE_SEND_BURST
static void KFN(produce_burst64)(void *qa, void *qb, struct kctx *c)
{
        KQ *q = (KQ *)qa;
        uint64_t n = c->n;
        struct msg64 buf[BENCH_BURST];
        (void)qb;
        for (uint64_t i = 0; i < n; i += BENCH_BURST) {
                unsigned k = n - i < BENCH_BURST ? (unsigned)(n - i) : BENCH_BURST;
                for (unsigned j = 0; j < k; j++)
                        for (unsigned w = 0; w < 8; w++)
                                buf[j].w[w] = i + j;
                for (unsigned off = 0; off < k;)
                        off += KFN(send64_burst)(q, buf + off, k - off);
        }
        KFN(finish_)(c);
}
#endif

#ifdef KHAVE_RECV_BURST
static void KFN(consume_burst64)(void *qa, void *qb, struct kctx *c)
{
        KQ *q = (KQ *)qa;
        uint64_t n = c->n, got = 0, expect = 0, errors = 0, lost = 0, v;
        bool lossy = c->lossy, stop = false;
        struct msg64 buf[BENCH_BURST];
        (void)qb;
        while (got < n) {
                unsigned k = KFN(recv64_burst)(q, buf, BENCH_BURST);
                if (!k) {
                        if (stop)
                                break;
                        stop = __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
                        continue;
                }
                got += k;
                for (unsigned j = 0; j < k; j++) {
                        if (!KFN(check64_)(&buf[j], &v))
                                errors++;
                        KFN(account_)(v, &expect, lossy, &errors, &lost);
                }
        }
        KFN(results_)(c, got, errors, lost);
}
#endif

/* One send per period while the consumer spins draining: the cost the producer pays with a
 * consumer polling the queue. The empty bracket is taken right before each send, under the
 * same conditions, so that its cost can be subtracted. */
static void KFN(paced8)(void *qa, void *qb, struct kctx *c)
{
        KQ *q = (KQ *)qa;
        uint64_t n = c->n, period = c->period;
        uint64_t *send_ticks = c->send_ticks, *empty_ticks = c->empty_ticks;
        uint64_t next = tsc_now() + period, rng = 0x9e3779b97f4a7c15u;
        (void)qb;
        for (uint64_t i = 0; i < n; i++) {
                while (tsc_now() < next) {
                }
                bench_jitter(&rng);
                uint64_t a = tsc_begin();
                uint64_t b = tsc_end();
                empty_ticks[i] = b - a;
                a = tsc_begin();
                while (!KFN(send8)(q, i)) {
                }
                b = tsc_end();
                send_ticks[i] = b - a;
                /* After a stall (preemption), go on at the pace rather than catch up with
                 * back-to-back sends. */
                next += period;
                if (next < b)
                        next = b + period;
        }
        KFN(finish_)(c);
}

static void KFN(ping8)(void *qa, void *qb, struct kctx *c)
{
        KQ *there = (KQ *)qa, *back = (KQ *)qb;
        uint64_t n = c->n, errors = 0, v = 0;
        uint64_t *rtt = c->rtt_ticks;
        for (uint64_t i = 0; i < n; i++) {
                uint64_t a = tsc_begin();
                while (!KFN(send8)(there, i)) {
                }
                while (!KFN(recv8)(back, &v)) {
                }
                uint64_t b = tsc_end();
                rtt[i] = b - a;
                errors += v != i;
        }
        c->send_errors = errors;
}

static void KFN(pong8)(void *qa, void *qb, struct kctx *c)
{
        KQ *there = (KQ *)qa, *back = (KQ *)qb;
        uint64_t n = c->n, errors = 0, v = 0;
        for (uint64_t i = 0; i < n; i++) {
                while (!KFN(recv8)(there, &v)) {
                }
                errors += v != i;
                while (!KFN(send8)(back, v)) {
                }
        }
        c->received = n;
        c->errors = errors;
}

/* For the descriptor: the burst kernels, or NULL where the queue has no burst call. */
#ifdef KHAVE_SEND_BURST
#define KBURST_SEND KFN(produce_burst64)
#else
#define KBURST_SEND NULL
#endif
#ifdef KHAVE_RECV_BURST
#define KBURST_RECV KFN(consume_burst64)
#else
#define KBURST_RECV NULL
#endif
