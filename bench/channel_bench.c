/* actord-bench channel: the harness. It runs every queue's kernels on two pinned threads,
 * repetition after repetition with fresh queue memory each time, and reports medians, the
 * ratios to the best peer and to the hardware measured in the same run, and the channel's
 * targets. docs/benchmarks.md explains the method and each metric. */
#define _GNU_SOURCE
#include "bench.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum metric {
        M_TPUT8,
        M_TPUT64,
        M_BURST64,
        M_PACED_MEAN,
        M_PACED_P50,
        M_PP_P50,
        M_PP_P99,
        M_DELIVERED,
        M_LOST_PCT,
        M_COUNT
};

static const struct {
        const char *json;
        const char *head1, *head2;
} metric_info[M_COUNT] = {
    [M_TPUT8] = {"tput_8B_Mmsgs", "tput 8B", "M/s"},
    [M_TPUT64] = {"tput_64B_Mmsgs", "tput 64B", "M/s"},
    [M_BURST64] = {"tput_batch_64B_Mmsgs", "burst 64B", "M/s"},
    [M_PACED_MEAN] = {"send_paced_mean_ns", "send mean", "ns"},
    [M_PACED_P50] = {"send_paced_p50_ns", "send p50", "ns"},
    [M_PP_P50] = {"pingpong_p50_ns", "ping p50", "ns"},
    [M_PP_P99] = {"pingpong_p99_ns", "ping p99", "ns"},
    [M_DELIVERED] = {"delivered_Mmsgs", "delivered", "M/s"},
    [M_LOST_PCT] = {"lost_pct", "lost", "%"},
};

static const struct bench_impl *const impls[] = {
    &bench_actord_overwrite,
    &bench_actord_drop_new,
    &bench_actord_reject,
#ifdef BENCH_HAVE_CK
    &bench_ck_ring,
#endif
#ifdef BENCH_HAVE_RTE
    &bench_rte_ring,
#endif
#ifdef BENCH_HAVE_BOOST
    &bench_boost_spsc,
#endif
#ifdef BENCH_HAVE_RWQ
    &bench_rwq,
#endif
    &bench_mutex_cond,
};
#define NIMPLS (sizeof(impls) / sizeof(impls[0]))

struct opts {
        int reps;
        bool quick;
        bool json;
        int cpu[2];
        const char *only; /* NULL, or a comma-separated list of impl names to run */
};

/* Sizes of one run. Throughput runs are sized from a first, discarded run so that each lasts
 * about tput_secs whatever the queue's speed. */
struct sizes {
        uint64_t calibrate_n;
        double tput_secs;
        uint64_t paced_n;
        uint64_t pingpong_n;
        double tsc_secs;
};

static const struct sizes full_sizes = {1u << 18, 0.1, 50000, 50000, 0.1};
static const struct sizes quick_sizes = {1u << 15, 0.004, 5000, 5000, 0.02};

/* Per impl and metric, one value per repetition. */
struct results {
        int reps;
        double *v[NIMPLS][M_COUNT]; /* NULL: not measured for this impl */
        double *hw;
        double med[NIMPLS][M_COUNT];
        bool have[NIMPLS][M_COUNT];
        double hw_med;
};

static int cpus[2];
/* Impls left out with --impls. */
static bool skipped[NIMPLS];
static double tsc_hz;
static unsigned long failures;

static void die(const char *what)
{
        fprintf(stderr, "actord-bench: %s\n", what);
        exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
        void *p = calloc(n, size);
        if (!p)
                die("out of memory");
        return p;
}

/* A kctx on its own lines, as its fields are written by both threads. */
static struct kctx *kctx_new(uint64_t n, bool lossy)
{
        struct kctx *c = aligned_alloc(BENCH_LINE, sizeof(*c));
        if (!c)
                die("out of memory");
        memset(c, 0, sizeof(*c));
        c->n = n;
        c->lossy = lossy;
        return c;
}

/* Two threads, each pinned, released together. */
struct pair {
        struct kctx *c;
        atomic_int arrived;
        struct timespec t0, t1;
};

struct side {
        kernel_fn fn;
        void *qa, *qb;
        struct pair *pair;
        bool producer;
};

static void *side_main(void *arg)
{
        struct side *s = arg;
        atomic_fetch_add(&s->pair->arrived, 1);
        while (atomic_load(&s->pair->arrived) < 2) {
        }
        if (s->producer)
                clock_gettime(CLOCK_MONOTONIC, &s->pair->t0);
        s->fn(s->qa, s->qb, s->pair->c);
        if (!s->producer)
                clock_gettime(CLOCK_MONOTONIC, &s->pair->t1);
        return NULL;
}

/* Runs the producer on the first CPU and the consumer on the second; returns the seconds from
 * the producer's start to the consumer's end. */
static double run_pair(kernel_fn producer, kernel_fn consumer, void *qa, void *qb, struct kctx *c)
{
        struct pair pair = {.c = c};
        struct side sides[2] = {
            {.fn = producer, .qa = qa, .qb = qb, .pair = &pair, .producer = true},
            {.fn = consumer, .qa = qa, .qb = qb, .pair = &pair, .producer = false},
        };
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
                pthread_attr_t attr;
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(cpus[i], &set);
                pthread_attr_init(&attr);
                pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
                int r = pthread_create(&th[i], &attr, side_main, &sides[i]);
                pthread_attr_destroy(&attr);
                if (r) {
                        errno = r;
                        perror("actord-bench: pthread_create");
                        exit(1);
                }
        }
        for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
        return (double)(pair.t1.tv_sec - pair.t0.tv_sec) +
               (double)(pair.t1.tv_nsec - pair.t0.tv_nsec) * 1e-9;
}

static void fail(const struct bench_impl *im, const char *what, const char *why,
                 unsigned long long count)
{
        fprintf(stderr, "actord-bench: ERROR: %s %s: %s (%llu)\n", im ? im->name : "hardware", what,
                why, count);
        failures++;
}

static void check_run(const struct bench_impl *im, const char *what, void *q, const struct kctx *c)
{
        if (c->errors)
                fail(im, what, "messages missing, out of order or torn", c->errors);
        if (c->send_errors)
                fail(im, what, "wrong replies", c->send_errors);
        if (im->check && q) {
                const char *e = im->check(q, c);
                if (e)
                        fail(im, what, e, 0);
        }
}

static void *create_or_die(const struct bench_impl *im, uint32_t size)
{
        void *q = im->create(im, size);
        if (!q) {
                fprintf(stderr, "actord-bench: cannot create a %s queue\n", im->name);
                exit(1);
        }
        return q;
}

/* Returns the seconds from the producer's start to the consumer's end; *received: how many
 * messages the consumer got. */
static double tput_run(const struct bench_impl *im, const char *what, kernel_fn producer,
                       kernel_fn consumer, uint32_t size, uint64_t n, uint64_t *received)
{
        void *q = create_or_die(im, size);
        struct kctx *c = kctx_new(n, im->lossy);
        double secs = run_pair(producer, consumer, q, NULL, c);
        check_run(im, what, q, c);
        *received = c->received;
        im->destroy(q, size);
        free(c);
        return secs;
}

/* Nearest rank of sorted values. */
static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
        size_t rank = (size_t)(p * (double)n + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return sorted[rank - 1];
}

static double mean_u64(const uint64_t *v, size_t n)
{
        double sum = 0;
        for (size_t i = 0; i < n; i++)
                sum += (double)v[i];
        return sum / (double)n;
}

static double ticks_to_ns(double ticks)
{
        return ticks * 1e9 / tsc_hz;
}

static void paced_run(const struct bench_impl *im, uint64_t n, double *mean_ns, double *p50_ns)
{
        void *q = create_or_die(im, sizeof(struct msg8));
        struct kctx *c = kctx_new(n, im->lossy);
        c->period = (uint64_t)(tsc_hz / 1e6);
        c->send_ticks = xcalloc(n, sizeof(uint64_t));
        c->empty_ticks = xcalloc(n, sizeof(uint64_t));
        run_pair(im->paced8, im->consume8, q, NULL, c);
        check_run(im, "paced send", q, c);

        uint64_t *send = c->send_ticks + BENCH_WARMUP, *empty = c->empty_ticks + BENCH_WARMUP;
        size_t m = n - BENCH_WARMUP;
        qsort(send, m, sizeof(*send), bench_cmp_u64);
        qsort(empty, m, sizeof(*empty), bench_cmp_u64);
        /* The slowest 0.1 % of each series is left out of the means: an interrupt or a
         * preemption that lands inside one bracket of a few nanoseconds would otherwise move
         * the mean of the rest by nanoseconds. */
        size_t kept = m - m / 1000;
        *mean_ns = ticks_to_ns(mean_u64(send, kept) - mean_u64(empty, kept));
        *p50_ns = ticks_to_ns((double)percentile(send, m, 0.5) - (double)percentile(empty, m, 0.5));

        free(c->send_ticks);
        free(c->empty_ticks);
        im->destroy(q, sizeof(struct msg8));
        free(c);
}

static void pingpong_run(const struct bench_impl *im, uint64_t n, double *p50_ns, double *p99_ns)
{
        void *there = create_or_die(im, sizeof(struct msg8));
        void *back = create_or_die(im, sizeof(struct msg8));
        struct kctx *c = kctx_new(n, im->lossy);
        c->rtt_ticks = xcalloc(n, sizeof(uint64_t));
        run_pair(im->ping8, im->pong8, there, back, c);
        check_run(im, "ping-pong", NULL, c);

        uint64_t *rtt = c->rtt_ticks + BENCH_WARMUP;
        size_t m = n - BENCH_WARMUP;
        qsort(rtt, m, sizeof(*rtt), bench_cmp_u64);
        *p50_ns = ticks_to_ns((double)percentile(rtt, m, 0.5)) / 2;
        *p99_ns = ticks_to_ns((double)percentile(rtt, m, 0.99)) / 2;

        free(c->rtt_ticks);
        im->destroy(there, sizeof(struct msg8));
        im->destroy(back, sizeof(struct msg8));
        free(c);
}

/* The floor: one line, written in turn by the two cores. */
struct hw_line {
        alignas(BENCH_LINE) _Atomic uint64_t v;
};

static void hw_ping(void *qa, void *qb, struct kctx *c)
{
        struct hw_line *l = qa;
        (void)qb;
        for (uint64_t i = 0; i < c->n; i++) {
                uint64_t a = tsc_begin();
                atomic_store_explicit(&l->v, 2 * i + 1, memory_order_release);
                while (atomic_load_explicit(&l->v, memory_order_acquire) != 2 * i + 2) {
                }
                uint64_t b = tsc_end();
                c->rtt_ticks[i] = b - a;
        }
}

static void hw_pong(void *qa, void *qb, struct kctx *c)
{
        struct hw_line *l = qa;
        (void)qb;
        for (uint64_t i = 0; i < c->n; i++) {
                while (atomic_load_explicit(&l->v, memory_order_acquire) != 2 * i + 1) {
                }
                atomic_store_explicit(&l->v, 2 * i + 2, memory_order_release);
        }
}

static double hw_run(uint64_t n)
{
        struct hw_line *l = aligned_alloc(BENCH_LINE, sizeof(*l));
        if (!l)
                die("out of memory");
        atomic_init(&l->v, 0);
        struct kctx *c = kctx_new(n, false);
        c->rtt_ticks = xcalloc(n, sizeof(uint64_t));
        run_pair(hw_ping, hw_pong, l, NULL, c);
        uint64_t *rtt = c->rtt_ticks + BENCH_WARMUP;
        size_t m = n - BENCH_WARMUP;
        qsort(rtt, m, sizeof(*rtt), bench_cmp_u64);
        double p50 = ticks_to_ns((double)percentile(rtt, m, 0.5)) / 2;
        free(c->rtt_ticks);
        free(c);
        free(l);
        return p50;
}

static double mono_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A (TSC, CLOCK_MONOTONIC) pair read as close together as the tightest of a few tries. */
static void tsc_mono_pair(uint64_t *tsc, double *ns)
{
        uint64_t best = UINT64_MAX;
        *tsc = 0;
        *ns = 0;
        for (int i = 0; i < 16; i++) {
                uint64_t a = tsc_begin();
                double t = mono_ns();
                uint64_t b = tsc_end();
                if (b - a < best) {
                        best = b - a;
                        *tsc = a + (b - a) / 2;
                        *ns = t;
                }
        }
}

static void tsc_calibrate(double secs)
{
        uint64_t t0, t1;
        double n0, n1;
        tsc_mono_pair(&t0, &n0);
        struct timespec ts = {.tv_sec = (time_t)secs,
                              .tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
        tsc_mono_pair(&t1, &n1);
        tsc_hz = (double)(t1 - t0) * 1e9 / (n1 - n0);
        if (!(tsc_hz > 1e8))
                die("the time-stamp counter does not advance");
}

/* How coarsely the counter moves as read: where it advances in steps, a median of a cost of a
 * few nanoseconds lands on a step, and only a mean says something. */
static void tsc_granularity(double *step_ns, double *same_pct)
{
        uint64_t step = UINT64_MAX, same = 0, prev = tsc_now();
        const int reads = 100000;
        for (int i = 0; i < reads; i++) {
                uint64_t t = tsc_now();
                if (t == prev)
                        same++;
                else if (t - prev < step)
                        step = t - prev;
                prev = t;
        }
        *step_ns = ticks_to_ns((double)step);
        *same_pct = 100.0 * (double)same / reads;
}

static void record(struct results *res, size_t i, enum metric m, int rep, double v)
{
        if (rep < 0)
                return;
        if (!res->v[i][m])
                res->v[i][m] = xcalloc((size_t)res->reps, sizeof(double));
        res->v[i][m][rep] = v;
}

static double median(const double *v, int n)
{
        double *s = xcalloc((size_t)n, sizeof(double));
        memcpy(s, v, (size_t)n * sizeof(double));
        double m = bench_median(s, n);
        free(s);
        return m;
}

static uint64_t sized(double rate, double secs)
{
        double n = rate * secs;
        if (n < (double)(1u << 14))
                n = 1u << 14;
        if (n > (double)(1u << 28))
                n = 1u << 28;
        return (uint64_t)n;
}

/* Messages per throughput run, per impl and metric; 0 until the discarded first run. */
static uint64_t run_n[NIMPLS][M_COUNT];

/* One throughput measurement; the run of repetition -1 only sizes the later ones. */
static void tput_point(struct results *res, const struct sizes *sz, size_t i, enum metric m,
                       int rep, kernel_fn producer, kernel_fn consumer, uint32_t size)
{
        const struct bench_impl *im = impls[i];
        uint64_t n = rep < 0 ? sz->calibrate_n : run_n[i][m], received;
        double secs = tput_run(im, metric_info[m].json, producer, consumer, size, n, &received);
        if (rep < 0) {
                /* Sized on the producer's pace: under loss, messages sent, not delivered. */
                run_n[i][m] = sized((double)n / secs, sz->tput_secs);
                return;
        }
        record(res, i, m, rep, (double)received / secs / 1e6);
        if (m == M_DELIVERED)
                record(res, i, M_LOST_PCT, rep, 100.0 * (double)(n - received) / (double)n);
}

static void run_all(struct results *res, const struct sizes *sz)
{
        for (int rep = -1; rep < res->reps; rep++) {
                if (isatty(STDERR_FILENO))
                        fprintf(stderr, "\ractord-bench channel: repetition %d of %d ", rep + 2,
                                res->reps + 1);
                if (rep >= 0)
                        res->hw[rep] = hw_run(sz->pingpong_n);
                for (size_t i = 0; i < NIMPLS; i++) {
                        const struct bench_impl *im = impls[i];
                        if (skipped[i])
                                continue;
                        if (!im->lossy) {
                                tput_point(res, sz, i, M_TPUT8, rep, im->produce8, im->consume8,
                                           sizeof(struct msg8));
                                tput_point(res, sz, i, M_TPUT64, rep, im->produce64, im->consume64,
                                           sizeof(struct msg64));
                                if (im->produce_burst64)
                                        tput_point(res, sz, i, M_BURST64, rep, im->produce_burst64,
                                                   im->consume_burst64, sizeof(struct msg64));
                        } else {
                                tput_point(res, sz, i, M_DELIVERED, rep, im->produce8, im->consume8,
                                           sizeof(struct msg8));
                        }
                        if (rep < 0)
                                continue;
                        double a, b;
                        paced_run(im, sz->paced_n, &a, &b);
                        record(res, i, M_PACED_MEAN, rep, a);
                        record(res, i, M_PACED_P50, rep, b);
                        pingpong_run(im, sz->pingpong_n, &a, &b);
                        record(res, i, M_PP_P50, rep, a);
                        record(res, i, M_PP_P99, rep, b);
                }
        }
        if (isatty(STDERR_FILENO))
                fprintf(stderr, "\r%60s\r", "");
        for (size_t i = 0; i < NIMPLS; i++)
                for (int m = 0; m < M_COUNT; m++)
                        if (res->v[i][m]) {
                                res->have[i][m] = true;
                                res->med[i][m] = median(res->v[i][m], res->reps);
                        }
        res->hw_med = median(res->hw, res->reps);
}

static size_t impl_index(const char *name)
{
        for (size_t i = 0; i < NIMPLS; i++)
                if (!strcmp(impls[i]->name, name))
                        return i;
        die("internal: no such impl");
        return 0;
}

/* The best peer for a metric: the highest figure, or the lowest where lower is better. */
static bool best_peer(const struct results *res, enum metric m, bool lower, size_t *ret)
{
        bool found = false;
        for (size_t i = 0; i < NIMPLS; i++) {
                if (!impls[i]->peer || !res->have[i][m])
                        continue;
                if (!found || (lower ? res->med[i][m] < res->med[*ret][m]
                                     : res->med[i][m] > res->med[*ret][m]))
                        *ret = i;
                found = true;
        }
        return found;
}

static void print_json(const struct results *res)
{
        for (size_t i = 0; i < NIMPLS; i++)
                for (int m = 0; m < M_COUNT; m++)
                        if (res->have[i][m])
                                printf("{\"bench\":\"channel\",\"impl\":\"%s\",\"metric\":\"%s\","
                                       "\"value\":%.3f}\n",
                                       impls[i]->name, metric_info[m].json, res->med[i][m]);
        printf("{\"bench\":\"channel\",\"impl\":\"hardware\",\"metric\":"
               "\"cacheline_oneway_p50_ns\",\"value\":%.3f}\n",
               res->hw_med);
}

static int targets_met, targets_total;

static void target(const char *what, double value, const char *unit, const char *versus,
                   bool at_most, double limit)
{
        bool ok = at_most ? value <= limit : value >= limit;
        char line[256];
        /* Three significant digits, so that a figure just past its limit does not print as the
         * limit itself. */
        snprintf(line, sizeof(line), "%s: %.3g%s%s", what, value, unit, versus);
        printf("  %-70s %s %g%s  %s\n", line, at_most ? "<=" : ">=", limit, unit,
               ok ? "PASS" : "MISS");
        targets_met += ok;
        targets_total++;
}

/* A ratio of actord's figure to the best peer's, against a target when limit > 0. */
static void ratio_to_peer(const struct results *res, const char *actord, enum metric m, bool lower,
                          const char *label, bool at_most, double limit)
{
        size_t a = impl_index(actord), p;
        char what[100], versus[80];
        if (!res->have[a][m] || !best_peer(res, m, lower, &p))
                return;
        snprintf(what, sizeof(what), "%s %s vs best peer", actord, label);
        snprintf(versus, sizeof(versus), " (%s %.1f)", impls[p]->name, res->med[p][m]);
        double r = res->med[a][m] / res->med[p][m];
        if (limit > 0) {
                target(what, r, "x", versus, at_most, limit);
        } else {
                char line[256];
                snprintf(line, sizeof(line), "%s: %.3gx%s", what, r, versus);
                printf("  %s\n", line);
        }
}

static void print_table(const struct results *res, const struct opts *o, const struct sizes *sz)
{
        double step_ns, same_pct;
        tsc_granularity(&step_ns, &same_pct);
        printf("actord-bench channel: producer on CPU %d, consumer on CPU %d, capacity %u, "
               "%d repetitions%s, medians\n",
               o->cpu[0], o->cpu[1], BENCH_CAPACITY, o->reps, o->quick ? " (quick)" : "");
        printf("TSC %.3f GHz (against CLOCK_MONOTONIC); back-to-back reads: %.0f%% equal, "
               "smallest step %.1f ns\n",
               tsc_hz / 1e9, same_pct, step_ns);
        printf("throughput runs ~%.0f ms each; %llu paced sends and %llu round trips per run, "
               "the first %u not counted\n\n",
               sz->tput_secs * 1e3, (unsigned long long)sz->paced_n,
               (unsigned long long)sz->pingpong_n, BENCH_WARMUP);

        printf("%-17s", "impl");
        for (int m = 0; m < M_COUNT; m++)
                printf("%10s", metric_info[m].head1);
        printf("\n%-17s", "");
        for (int m = 0; m < M_COUNT; m++)
                printf("%10s", metric_info[m].head2);
        printf("\n");
        for (size_t i = 0; i < NIMPLS; i++) {
                if (skipped[i])
                        continue;
                printf("%-17s", impls[i]->name);
                for (int m = 0; m < M_COUNT; m++) {
                        if (res->have[i][m])
                                printf("%10.1f", res->med[i][m]);
                        else
                                printf("%10s", "-");
                }
                printf("\n");
        }
        double lo = res->hw[0], hi = res->hw[0];
        for (int r = 1; r < res->reps; r++) {
                lo = res->hw[r] < lo ? res->hw[r] : lo;
                hi = res->hw[r] > hi ? res->hw[r] : hi;
        }
        /* The floor moves when something else runs on these cores or their host: a wide
         * range says the run was disturbed. */
        printf("%-17s cache-line one-way p50: %.1f ns (repetitions: %.1f to %.1f)\n\n", "hardware",
               res->hw_med, lo, hi);

        printf("Targets (ratios within this run):\n");
        ratio_to_peer(res, "actord/reject", M_TPUT8, false, "tput_8B", false, 2.0);
        ratio_to_peer(res, "actord/reject", M_TPUT64, false, "tput_64B", false, 1.0);
        ratio_to_peer(res, "actord/reject", M_BURST64, false, "tput_batch_64B", false, 1.0);
        size_t ow = impl_index("actord/overwrite");
        if (res->have[ow][M_PACED_MEAN])
                target("actord/overwrite send_paced_mean", res->med[ow][M_PACED_MEAN], " ns", "",
                       true, 10.0);
        ratio_to_peer(res, "actord/overwrite", M_PACED_MEAN, true, "send_paced_mean", true, 0.3);
        static const char *const policies[] = {"actord/overwrite", "actord/drop_new",
                                               "actord/reject"};
        for (int k = 0; k < 3; k++) {
                size_t a = impl_index(policies[k]);
                char what[100], versus[80];
                ratio_to_peer(res, policies[k], M_PP_P50, true, "pingpong_p50", true, 1.0);
                if (!res->have[a][M_PP_P50])
                        continue;
                snprintf(what, sizeof(what), "%s pingpong_p50 vs cache-line one-way", policies[k]);
                snprintf(versus, sizeof(versus), " (%.1f ns)", res->hw_med);
                target(what, res->med[a][M_PP_P50] / res->hw_med, "x", versus, true, 1.8);
        }
        printf("  %d of %d targets met\n\nFor information:\n", targets_met, targets_total);
        ratio_to_peer(res, "actord/drop_new", M_PACED_MEAN, true, "send_paced_mean", true, 0);
        ratio_to_peer(res, "actord/reject", M_PACED_MEAN, true, "send_paced_mean", true, 0);
        ratio_to_peer(res, "actord/reject", M_PP_P99, true, "pingpong_p99", true, 0);
        size_t p;
        if (best_peer(res, M_PP_P50, true, &p))
                printf("  best peer pingpong_p50 vs cache-line one-way: %.2fx (%s)\n",
                       res->med[p][M_PP_P50] / res->hw_med, impls[p]->name);
}

static int parse_cpus(const char *s, int cpu[2])
{
        char *end;
        long a = strtol(s, &end, 10);
        if (end == s || *end != ',')
                return -1;
        const char *t = end + 1;
        long b = strtol(t, &end, 10);
        if (end == t || *end || a < 0 || b < 0 || a >= CPU_SETSIZE || b >= CPU_SETSIZE || a == b)
                return -1;
        cpu[0] = (int)a;
        cpu[1] = (int)b;
        return 0;
}

/* Marks every impl not named in the comma-separated list as skipped. */
static int select_impls(const char *list)
{
        bool named[NIMPLS] = {false};
        const char *p = list;
        while (*p) {
                size_t len = strcspn(p, ",");
                size_t i;
                for (i = 0; i < NIMPLS; i++)
                        if (strlen(impls[i]->name) == len && !strncmp(impls[i]->name, p, len))
                                break;
                if (i == NIMPLS) {
                        fprintf(stderr, "actord-bench: no impl '%.*s' in this build\n", (int)len,
                                p);
                        return -1;
                }
                named[i] = true;
                p += len + (p[len] == ',');
        }
        for (size_t i = 0; i < NIMPLS; i++)
                skipped[i] = !named[i];
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: actord-bench channel [--json] [--reps N] [--quick] [--cpus A,B]\n"
                   "                           [--impls L]\n"
                   "  --json      one JSON object per line instead of the table\n"
                   "  --reps N    repetitions, N >= 5 (default 9); medians are reported\n"
                   "  --quick     fewer messages per run: a smoke test, not a measurement\n"
                   "  --cpus A,B  the producer's and the consumer's CPU (default 0,1)\n"
                   "  --impls L   only the impls in the comma-separated list L; \"best peer\"\n"
                   "              is then the best of the peers listed\n");
}

int bench_channel_main(int argc, char **argv)
{
        struct opts o = {.reps = 9, .cpu = {0, 1}};
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json")) {
                        o.json = true;
                } else if (!strcmp(argv[i], "--quick")) {
                        o.quick = true;
                } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) {
                        char *end;
                        long n = strtol(argv[++i], &end, 10);
                        if (*end || n < 5 || n > 1000) {
                                fprintf(stderr, "actord-bench: --reps takes 5 to 1000\n");
                                return 2;
                        }
                        o.reps = (int)n;
                } else if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
                        if (parse_cpus(argv[++i], o.cpu) < 0) {
                                fprintf(stderr, "actord-bench: --cpus takes two different "
                                                "CPU numbers, A,B\n");
                                return 2;
                        }
                } else if (!strcmp(argv[i], "--impls") && i + 1 < argc) {
                        o.only = argv[++i];
                } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                        usage(stdout);
                        return 0;
                } else {
                        usage(stderr);
                        return 2;
                }
        }

        cpu_set_t allowed;
        if (sched_getaffinity(0, sizeof(allowed), &allowed) < 0)
                die("sched_getaffinity failed");
        for (int i = 0; i < 2; i++) {
                if (!CPU_ISSET(o.cpu[i], &allowed)) {
                        fprintf(stderr, "actord-bench: CPU %d is not available to this process\n",
                                o.cpu[i]);
                        return 2;
                }
                cpus[i] = o.cpu[i];
        }

        if (o.only && select_impls(o.only) < 0)
                return 2;

        const struct sizes *sz = o.quick ? &quick_sizes : &full_sizes;
        tsc_calibrate(sz->tsc_secs);

        struct results *res = xcalloc(1, sizeof(*res));
        res->reps = o.reps;
        res->hw = xcalloc((size_t)o.reps, sizeof(double));
        run_all(res, sz);

        if (o.json)
                print_json(res);
        else
                print_table(res, &o, sz);

        for (size_t i = 0; i < NIMPLS; i++)
                for (int m = 0; m < M_COUNT; m++)
                        free(res->v[i][m]);
        free(res->hw);
        free(res);
        if (failures) {
                fprintf(stderr, "actord-bench: %lu runs went wrong, see above\n", failures);
                return 1;
        }
        return 0;
}
