/* What the channel benchmark's harness and its queue adaptors share. Compiled as C11 and as
 * C++17 (the boost and moodycamel adaptors), so it keeps to the common subset: no C11 atomics
 * here, only the GCC __atomic builtins that both languages accept. */
#ifndef ACTORD_BENCH_H
#define ACTORD_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#ifndef __cplusplus
#include <stdalign.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Pairs of lines, as in the channel: the adjacent-line prefetcher moves 128 bytes at a time. */
#define BENCH_LINE 128
#define BENCH_CAPACITY 1024u
#define BENCH_BURST 32u
/* The first two ring laps of a paced or ping-pong run are not counted: fresh queue memory
 * takes its page faults there. */
#define BENCH_WARMUP (2 * BENCH_CAPACITY)

struct msg8 {
        uint64_t v;
};

/* Every word carries the message's number, so that a torn message shows. */
struct msg64 {
        uint64_t w[8];
};

/* One run of a pair of kernels: inputs, then what each side writes, each on its own lines so
 * that the results do not share a line with anything the other side touches while it runs. */
struct kctx {
        uint64_t n;            /* messages (round trips for ping-pong) */
        uint64_t period;       /* paced: TSC ticks from one send to the next */
        uint64_t *send_ticks;  /* paced: bracketed cost of each send */
        uint64_t *empty_ticks; /* paced: cost of the empty bracket, taken just before */
        uint64_t *rtt_ticks;   /* ping-pong: each round trip */
        bool lossy;            /* the queue may lose messages: gaps are counted, not errors */

        /* Producer side: set once everything is sent; the consumer reads it only when it
         * finds the queue empty. */
        alignas(BENCH_LINE) uint64_t done;
        uint64_t send_errors; /* ping-pong: wrong replies */

        /* Consumer side, stored once at the end. */
        alignas(BENCH_LINE) uint64_t received;
        uint64_t errors;    /* messages out of order, torn or missing where none may be */
        uint64_t lost_seen; /* lossy: gaps in the sequence of received messages */
};

typedef void (*kernel_fn)(void *qa, void *qb, struct kctx *c);

/* A queue under test. create() makes a fresh queue of BENCH_CAPACITY messages of msg_size
 * (8 or 64) bytes, or returns NULL. Kernels come in producer/consumer pairs; the producer runs
 * on the first CPU, the consumer on the second. */
struct bench_impl {
        const char *name;
        bool peer;  /* not actord: counts towards "best peer" */
        bool lossy; /* loses messages by design: measured flat out, not for throughput */
        int arg;    /* actord: the channel policy */
        void *(*create)(const struct bench_impl *im, uint32_t msg_size);
        void (*destroy)(void *q, uint32_t msg_size);
        kernel_fn produce8, consume8;
        kernel_fn produce64, consume64;
        kernel_fn produce_burst64, consume_burst64; /* NULL: no burst API */
        kernel_fn paced8;                           /* consumer: consume8 */
        kernel_fn ping8, pong8;                     /* qa: there, qb: back */
        /* Optional: checks the queue's own counters after a consumer kernel ran on it; returns
         * NULL or what is wrong. */
        const char *(*check)(void *q, const struct kctx *c);
};

extern const struct bench_impl bench_actord_overwrite, bench_actord_drop_new, bench_actord_reject;
extern const struct bench_impl bench_ck_ring, bench_rte_ring, bench_boost_spsc, bench_rwq;
extern const struct bench_impl bench_mutex_cond;

int bench_channel_main(int argc, char **argv);
int bench_pipeline_main(int argc, char **argv);
int bench_nats_main(int argc, char **argv);

/* qsort() orders. */
static inline int bench_cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

static inline int bench_cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* The median of n figures (n >= 1); sorts them. */
static inline double bench_median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Time-stamp brackets. The fences keep the measured code from moving out of the bracket:
 * lfence before rdtsc waits for earlier instructions, the one after keeps later ones from
 * starting early; rdtscp waits for the code before it, the lfence after it for nothing
 * later to start first. */
static inline uint64_t tsc_begin(void)
{
        uint32_t lo, hi;
        __asm__ volatile("lfence\n\trdtsc\n\tlfence" : "=a"(lo), "=d"(hi)::"memory");
        return ((uint64_t)hi << 32) | lo;
}

static inline uint64_t tsc_end(void)
{
        uint32_t lo, hi, aux;
        __asm__ volatile("rdtscp\n\tlfence" : "=a"(lo), "=d"(hi), "=c"(aux)::"memory");
        return ((uint64_t)hi << 32) | lo;
}

/* Unordered read, for waiting until a deadline. */
static inline uint64_t tsc_now(void)
{
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32) | lo;
}

/* Waits a pseudo-random 0 to 255 loop turns (about 0 to 100 ns). Where the counter advances
 * in steps, a bracket that starts right after a wait on the counter starts at the same point of
 * a step every time, and the rounding of its two reads no longer averages out. */
static inline void bench_jitter(uint64_t *state)
{
        uint64_t x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        for (unsigned i = (unsigned)(x >> 56); i; i--)
                __asm__ volatile("");
}

#ifdef __cplusplus
}
#endif

#endif /* ACTORD_BENCH_H */
