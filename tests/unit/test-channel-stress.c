/* Two-thread stress of the lossy channel: a producer and a consumer pinned to different CPUs
 * exchange millions of self-checking messages under every policy and payload size, and the
 * consumer verifies that nothing is torn, duplicated, reordered or miscounted.
 *
 * The consumer stalls now and then until the producer has demonstrably run ahead (published
 * two laps more, or been refused a claim), so the loss paths run in every configuration
 * without depending on timing; in alternate blocks the producer instead keeps within a few
 * messages of the consumer, so that the consumer also reads right behind it. All waiting is
 * spinning on atomics. */
#define _GNU_SOURCE
#include "testrunner.h"

#include <pthread.h>
#include <sched.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "channel.h"

/* ThreadSanitizer slows each access by an order of magnitude, AddressSanitizer by a few
 * times: fewer messages keep a test within seconds while still lapping the ring thousands
 * of times. */
#if defined(TEST_TSAN)
#define STRESS_SCALE 20
#elif defined(__SANITIZE_ADDRESS__)
#define STRESS_SCALE 4
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STRESS_SCALE 4
#endif
#endif
#ifndef STRESS_SCALE
#define STRESS_SCALE 1
#endif

#define STRESS_MESSAGES (4000000u / STRESS_SCALE)
#define STRESS_CAPACITY 64u
/* Seconds: far above what a test takes, under a sanitizer or on a loaded machine too, so that
 * a channel bug that strands a message fails the test instead of hanging it. */
#define STRESS_TIMEOUT 120.0
/* The producer alternates, by blocks of this many messages, between running free and
 * waiting for the consumer. */
#define PACE_BLOCK 4096u

/* Message layout, in 64-bit words: word 0 is the producer's counter in the low 40 bits and a
 * 24-bit hash of it above, so that even an 8-byte payload checks itself; word i > 0 is a
 * function of the counter and i, so any word copied from another message shows. */
#define COUNTER_BITS 40
#define COUNTER_MASK ((UINT64_C(1) << COUNTER_BITS) - 1)
#define K_TAG UINT64_C(0x9e3779b97f4a7c15)
#define K_WORD UINT64_C(0xbf58476d1ce4e5b9)
#define K_INDEX UINT64_C(0x94d049bb133111eb)

static uint64_t tag_word(uint64_t c)
{
        return c | ((c * K_TAG) >> COUNTER_BITS << COUNTER_BITS);
}

static void fill(void *p, uint32_t size, uint64_t c)
{
        uint64_t *w = p;
        w[0] = tag_word(c);
        uint64_t v = c * K_WORD;
        for (uint32_t i = 1; i < size / 8; i++) {
                v += K_INDEX;
                w[i] = v;
        }
}

/* Whether every word agrees with word 0; the counter goes to *ret_c. */
static bool intact(const void *p, uint32_t size, uint64_t *ret_c)
{
        const uint64_t *w = p;
        uint64_t c = w[0] & COUNTER_MASK;
        *ret_c = c;
        if (w[0] != tag_word(c))
                return false;
        uint64_t v = c * K_WORD;
        bool ok = true;
        for (uint32_t i = 1; i < size / 8; i++) {
                v += K_INDEX;
                ok &= w[i] == v;
        }
        return ok;
}

static uint64_t publish_time(uint64_t c)
{
        return c * 3 + 1;
}

static uint64_t xorshift(uint64_t *s)
{
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * UINT64_C(0x2545f4914f6cdd1d);
}

struct config {
        enum channel_policy policy;
        uint32_t payload_size;
        uint32_t capacity;
        uint64_t messages;
        bool stalls; /* the consumer stalls until lapped or refused, and dawdles */
        bool batch;  /* batch claims of 1 to 16 slots, and batch reads mixed with single ones */
};

struct run {
        struct config cfg;
        struct channel ch;
        struct channel_tx tx;
        struct channel_rx rx;
        int producer_cpu;
        bool one_cpu;
        _Atomic int ready;
        _Atomic bool go;
        _Atomic bool done;
        _Atomic bool pacing; /* the producer waits for the consumer: stalls must end */
        /* The test's own progress counters, so that neither side waits on a channel counter
         * that a bug could leave stuck. On lines of their own: they are written per message. */
        alignas(CHANNEL_LINE) _Atomic uint64_t sent; /* messages published, by the producer */
        _Atomic uint64_t refused;                    /* claims refused under reject */
        alignas(CHANNEL_LINE) _Atomic uint64_t seen; /* last sequence number read, plus one */
};

struct tally {
        uint64_t received;
        uint64_t last_seq;
        uint64_t lost_sum; /* sum of lost_before */
        uint64_t gaps;     /* messages with lost_before > 0 */
        uint64_t torn;
        uint64_t bad_order;
        uint64_t bad_gap;
        uint64_t bad_counter;
        uint64_t bad_time;
        uint64_t readable_but_empty;
        uint64_t overtaken; /* overwrite: slot already rewritten when the read returned */
        uint64_t stalls;
        uint64_t empty_polls;
        char first_error[200];
};

/* With a single CPU a spinning thread only delays the one it waits for. */
static void relax(const struct run *r)
{
        if (r->one_cpu)
                sched_yield();
        else
                atomic_signal_fence(memory_order_seq_cst);
}

static void dawdle(uint64_t iterations)
{
        for (uint64_t i = 0; i < iterations; i++)
                __asm__ volatile("" ::: "memory");
}

static void pick_cpus(int *consumer, int *producer, bool *one)
{
        cpu_set_t set;
        CPU_ZERO(&set);
        *consumer = *producer = -1;
        if (sched_getaffinity(0, sizeof(set), &set) == 0) {
                if (CPU_ISSET(0, &set) && CPU_ISSET(1, &set)) {
                        *consumer = 0;
                        *producer = 1;
                } else {
                        for (int c = 0; c < CPU_SETSIZE && *producer < 0; c++) {
                                if (!CPU_ISSET(c, &set))
                                        continue;
                                if (*consumer < 0)
                                        *consumer = c;
                                else
                                        *producer = c;
                        }
                }
        }
        *one = *producer < 0;
        if (*one)
                *producer = *consumer;
}

static void pin(int cpu)
{
        if (cpu < 0)
                return;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        /* Best effort: a refused pin leaves the scheduler to place the thread. */
        (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Keeps the producer within `slack` messages of what the consumer has read, so the consumer
 * reads right behind it: it polls the slot being written and, under the in-place policies,
 * the producer reuses slots as soon as they are released. `kept_end` is one past the last
 * message that went into the ring (not dropped), which the consumer is sure to read. With
 * slack at most about half the ring, nothing is lost while pacing. */
static void pace(struct run *r, uint64_t kept_end, uint64_t slack)
{
        while (atomic_load_explicit(&r->seen, memory_order_relaxed) + slack < kept_end)
                relax(r);
}

static void *producer_main(void *arg)
{
        struct run *r = arg;
        const struct config *cfg = &r->cfg;
        uint64_t rng = 0x853c49e6748fea9bu ^ cfg->payload_size;
        pin(r->producer_cpu);
        atomic_fetch_add_explicit(&r->ready, 1, memory_order_release);
        while (!atomic_load_explicit(&r->go, memory_order_acquire))
                relax(r);

        uint64_t slack = 0, kept_end = 0;
        for (uint64_t c = 0; c < cfg->messages;) {
                if (c % PACE_BLOCK == 0) {
                        uint64_t dice = xorshift(&rng);
                        bool paced = cfg->stalls && (dice & 1);
                        slack = 1 + (dice >> 8) % (r->tx.nslots / 2 + 1);
                        atomic_store_explicit(&r->pacing, paced, memory_order_relaxed);
                }
                if (atomic_load_explicit(&r->pacing, memory_order_relaxed))
                        pace(r, kept_end, slack);
                uint32_t k = 1;
                unsigned char *p;
                if (cfg->batch) {
                        uint64_t want = 1 + xorshift(&rng) % 16;
                        if (want > cfg->messages - c)
                                want = cfg->messages - c;
                        p = channel_claim_n(&r->tx, (uint32_t)want, &k);
                } else {
                        p = channel_claim(&r->tx);
                }
                if (!p) {
                        atomic_store_explicit(
                            &r->refused,
                            atomic_load_explicit(&r->refused, memory_order_relaxed) + 1,
                            memory_order_relaxed);
                        relax(r);
                        continue;
                }
                /* Under drop_new a full ring hands out its scratch area: a drop. */
                if (p != r->tx.scratch)
                        kept_end = c + k;
                for (uint32_t i = 0; i < k; i++)
                        fill(p + i * r->tx.payload_stride, cfg->payload_size, c + i);
                /* A batch carries the time of its first message. */
                r->tx.now_ns = publish_time(c);
                channel_publish(&r->tx);
                c += k;
                atomic_store_explicit(&r->sent, c, memory_order_relaxed);
                /* Pauses of its own let the consumer catch up and poll an empty ring or a
                 * slot being written. */
                if (cfg->stalls && (xorshift(&rng) & 8191) == 0)
                        dawdle(xorshift(&rng) % 20000);
        }
        /* Release: the consumer that sees done also sees every publish before it. */
        atomic_store_explicit(&r->done, true, memory_order_release);
        return NULL;
}

#define FAIL(t, ...)                                                                               \
        do {                                                                                       \
                if (!(t)->first_error[0])                                                          \
                        snprintf((t)->first_error, sizeof((t)->first_error), __VA_ARGS__);         \
        } while (0)

static void check_message(struct run *r, struct tally *t, const void *p, uint64_t seq,
                          uint64_t lost, uint64_t ns)
{
        const struct config *cfg = &r->cfg;
        uint64_t c;
        if (!intact(p, cfg->payload_size, &c)) {
                t->torn++;
                FAIL(t, "seq %lu: torn payload (word 0 says counter %lu)", (unsigned long)seq,
                     (unsigned long)c);
        }
        /* Every publish takes a sequence number, a dropped one too, and the producer counts
         * every publish, so the counter is the sequence number under all three policies. */
        if (c != seq) {
                t->bad_counter++;
                FAIL(t, "seq %lu carries counter %lu", (unsigned long)seq, (unsigned long)c);
        }
        uint64_t behind = publish_time(seq) - ns; /* a batch: its first message's time */
        if (cfg->batch ? ns > publish_time(seq) || behind % 3 || behind / 3 >= 16
                       : ns != publish_time(seq)) {
                t->bad_time++;
                FAIL(t, "seq %lu: publish_ns %lu", (unsigned long)seq, (unsigned long)ns);
        }
        uint64_t expected = t->received ? t->last_seq + 1 : 0;
        if (t->received && seq <= t->last_seq) {
                t->bad_order++;
                FAIL(t, "seq %lu after seq %lu", (unsigned long)seq, (unsigned long)t->last_seq);
        } else if (seq != expected + lost) {
                t->bad_gap++;
                FAIL(t, "seq %lu after %lu with lost_before %lu", (unsigned long)seq,
                     (unsigned long)t->last_seq, (unsigned long)lost);
        }
        if (cfg->policy == CHANNEL_OVERWRITE) {
                /* Evidence that the sides meet on a slot, where a copy can tear: the producer
                 * is already rewriting the one just read. */
                const struct channel_hdr *h = channel_rx_hdr_(&r->rx, seq);
                if (atomic_load_explicit(&h->stamp, memory_order_relaxed) != 2 * seq + 2)
                        t->overtaken++;
        }
        t->received++;
        t->last_seq = seq;
        t->lost_sum += lost;
        t->gaps += lost > 0;
        atomic_store_explicit(&r->seen, seq + 1, memory_order_relaxed);
}

/* Waits until the producer has certainly run into a full ring: under reject a refused claim
 * shows it, otherwise two more laps published. */
static void stall(struct run *r, struct tally *t)
{
        uint64_t want_sent =
            atomic_load_explicit(&r->sent, memory_order_relaxed) + 2 * (uint64_t)r->rx.nslots;
        uint64_t want_refused = atomic_load_explicit(&r->refused, memory_order_relaxed) + 1;
        t->stalls++;
        while (!atomic_load_explicit(&r->done, memory_order_acquire) &&
               !atomic_load_explicit(&r->pacing, memory_order_relaxed)) {
                if (r->cfg.policy == CHANNEL_REJECT
                        ? atomic_load_explicit(&r->refused, memory_order_relaxed) >= want_refused
                        : atomic_load_explicit(&r->sent, memory_order_relaxed) >= want_sent)
                        return;
                relax(r);
        }
}

static void consume(struct run *r, struct tally *t)
{
        const struct config *cfg = &r->cfg;
        uint64_t rng = 0x9e3779b97f4a7c15u ^ cfg->payload_size ^ cfg->policy;
        uint64_t pass_left = 1;
        for (;;) {
                /* Read done before polling: if it was set, the poll below sees every
                 * message, so an empty answer means drained. */
                bool finished = atomic_load_explicit(&r->done, memory_order_acquire);
                uint64_t dice = xorshift(&rng);
                bool said_readable = (dice & 3) == 0 && channel_readable(&r->rx);
                uint64_t seq, lost, ns;
                const void *p;
                if (cfg->batch && (dice & 4)) {
                        struct channel_burst b;
                        uint32_t k = channel_next_burst(&r->rx, 1 + (uint32_t)(dice >> 8) % 16, &b);
                        for (uint32_t i = 0; i + 1 < k; i++)
                                check_message(r, t, channel_burst_msg(&b, i), b.seq + i,
                                              i ? 0 : b.lost_before,
                                              channel_burst_publish_ns(&b, i));
                        /* The last goes through the common path below. */
                        p = k ? channel_burst_msg(&b, k - 1) : NULL;
                        seq = b.seq + k - 1;
                        lost = k == 1 ? b.lost_before : 0;
                        ns = k ? channel_burst_publish_ns(&b, k - 1) : 0;
                } else {
                        p = channel_next(&r->rx, &seq, &lost, &ns);
                }
                if (!p) {
                        /* Under overwrite a lapping producer can take the announced message
                         * away again; the in-place policies must deliver it. */
                        if (said_readable && cfg->policy != CHANNEL_OVERWRITE) {
                                t->readable_but_empty++;
                                FAIL(t, "readable, then nothing to read after seq %lu",
                                     (unsigned long)t->last_seq);
                        }
                        channel_rx_end(&r->rx);
                        if (finished)
                                break;
                        t->empty_polls++;
                        relax(r);
                        continue;
                }
                check_message(r, t, p, seq, lost, ns);
                if (--pass_left == 0) {
                        /* End of a worker's pass: releases the slot read in place. */
                        channel_rx_end(&r->rx);
                        pass_left = 1 + (dice >> 8) % 64;
                }
                if (!cfg->stalls)
                        continue;
                if ((dice >> 20) % 2048 == 0)
                        stall(r, t);
                else if ((dice >> 20) % 128 == 1)
                        dawdle((dice >> 40) % 4096);
        }
}

/* A third thread reads the counters while both ends run, as the daemon's main thread does:
 * the published count (found from the stamps) never goes back and never passes what the
 * producer sent. Under overwrite it also taps the channel (actorctl tap), a third reader:
 * every message the tap returns is whole, in order, its gaps exact, and the consumer's
 * counts (checked after the run) cannot tell it was there. Paced by a short sleep so that it
 * takes little from the two pinned threads; the tap is lapped all the time. */
struct observer {
        struct run *r;
        _Atomic bool stop;
        uint64_t calls, backwards, beyond;
        bool tapping;
        struct channel_tap tap;
        uint64_t tapped, tap_lost, tap_torn, tap_bad, tap_last;
};

static void tap_drain(struct observer *o)
{
        for (int i = 0; i < 256; i++) {
                uint64_t seq, lost, ns, c;
                const void *p = channel_tap_next(&o->tap, &seq, &lost, &ns);
                if (!p)
                        return;
                bool whole = intact(p, o->r->cfg.payload_size, &c) && c == seq;
                o->tap_torn += !whole || (!o->r->cfg.batch && ns != publish_time(seq));
                o->tap_bad += o->tapped && seq != o->tap_last + 1 + lost;
                o->tap_last = seq;
                o->tap_lost += lost;
                o->tapped++;
        }
}

static void *observer_main(void *arg)
{
        struct observer *o = arg;
        uint64_t last = 0;
        while (!atomic_load_explicit(&o->stop, memory_order_acquire)) {
                struct channel_stats st;
                channel_stats(&o->r->ch, &st);
                o->calls++;
                if (st.published < last)
                        o->backwards++;
                if (st.published > o->r->cfg.messages)
                        o->beyond++;
                last = st.published;
                if (o->tapping)
                        tap_drain(o);
                nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
        }
        return NULL;
}

static void run_stress(struct config cfg)
{
        struct run *r = aligned_alloc(alignof(struct run), sizeof(*r));
        cr_assert_not_null(r);
        memset(r, 0, sizeof(*r));
        r->cfg = cfg;
        cr_assert_eq(channel_create(&r->ch, cfg.capacity, cfg.payload_size, cfg.policy), 0);
        cr_assert_eq(channel_tx_open(&r->tx, &r->ch), 0);
        cr_assert_eq(channel_rx_open(&r->rx, &r->ch), 0);
        /* Restored at the end: the next test in the same process must see every CPU. */
        cpu_set_t saved;
        bool restore = pthread_getaffinity_np(pthread_self(), sizeof(saved), &saved) == 0;
        int consumer_cpu;
        pick_cpus(&consumer_cpu, &r->producer_cpu, &r->one_cpu);
        pin(consumer_cpu);

        pthread_t producer;
        cr_assert_eq(pthread_create(&producer, NULL, producer_main, r), 0);
        while (atomic_load_explicit(&r->ready, memory_order_acquire) < 1)
                relax(r);
        atomic_store_explicit(&r->go, true, memory_order_release);

        struct observer obs = {.r = r, .tapping = cfg.policy == CHANNEL_OVERWRITE};
        if (obs.tapping)
                cr_assert_eq(channel_tap_open(&obs.tap, &r->ch), 0);
        else
                cr_assert_eq(channel_tap_open(&obs.tap, &r->ch), -ENOTSUP);
        pthread_t observer;
        cr_assert_eq(pthread_create(&observer, NULL, observer_main, &obs), 0);

        struct tally t = {0};
        consume(r, &t);
        cr_assert_eq(pthread_join(producer, NULL), 0);
        atomic_store_explicit(&obs.stop, true, memory_order_release);
        cr_assert_eq(pthread_join(observer, NULL), 0);
        cr_expect_gt(obs.calls, 0);
        cr_expect_eq(obs.backwards, 0, "the published count went back %lu times in %lu reads",
                     (unsigned long)obs.backwards, (unsigned long)obs.calls);
        cr_expect_eq(obs.beyond, 0, "the published count passed the messages sent");
        if (obs.tapping) {
                cr_log_info("tap: %lu messages, %lu skipped", (unsigned long)obs.tapped,
                            (unsigned long)obs.tap_lost);
                cr_expect_gt(obs.tapped, 0, "the tap read nothing");
                cr_expect_eq(obs.tap_torn, 0, "the tap returned %lu torn or wrong messages",
                             (unsigned long)obs.tap_torn);
                cr_expect_eq(obs.tap_bad, 0,
                             "the tap's sequence numbers and gaps disagreed %lu "
                             "times",
                             (unsigned long)obs.tap_bad);
                channel_tap_close(&obs.tap);
        }

        struct channel_stats st;
        channel_stats(&r->ch, &st);
        const char *pol = channel_policy_to_string(cfg.policy);
        cr_log_info("%s %u B cap %u: %lu sent, %lu received, %lu lost in %lu gaps, %lu "
                    "dropped, %lu overwritten, %lu rejected, %lu stalls, %lu empty polls, "
                    "%lu overtaken, high water %lu",
                    pol, cfg.payload_size, st.capacity, (unsigned long)st.published,
                    (unsigned long)t.received, (unsigned long)t.lost_sum, (unsigned long)t.gaps,
                    (unsigned long)st.dropped, (unsigned long)st.overwritten,
                    (unsigned long)st.rejected, (unsigned long)t.stalls,
                    (unsigned long)t.empty_polls, (unsigned long)t.overtaken,
                    (unsigned long)st.high_water);

        cr_expect_eq(t.torn, 0, "%s: %lu torn messages; first error: %s", pol,
                     (unsigned long)t.torn, t.first_error);
        cr_expect_eq(t.bad_counter, 0, "%s: first error: %s", pol, t.first_error);
        cr_expect_eq(t.bad_order, 0, "%s: first error: %s", pol, t.first_error);
        cr_expect_eq(t.bad_gap, 0, "%s: first error: %s", pol, t.first_error);
        cr_expect_eq(t.bad_time, 0, "%s: first error: %s", pol, t.first_error);
        cr_expect_eq(t.readable_but_empty, 0, "%s: first error: %s", pol, t.first_error);

        cr_expect_eq(st.published, cfg.messages, "%s: published %lu", pol,
                     (unsigned long)st.published);
        cr_expect_eq(st.consumed, t.received);
        cr_expect_eq(st.lost, st.dropped + st.overwritten);
        cr_expect_eq(
            st.published, st.consumed + st.lost, "%s: published %lu != consumed %lu + lost %lu",
            pol, (unsigned long)st.published, (unsigned long)st.consumed, (unsigned long)st.lost);
        cr_expect_gt(st.high_water, 0);
        cr_expect_leq(st.high_water, st.capacity);
        cr_expect_gt(t.received, 0);

        switch (cfg.policy) {
        case CHANNEL_OVERWRITE:
                /* The newest message always survives, and every loss shows as a gap. */
                cr_expect_eq(t.last_seq, cfg.messages - 1);
                cr_expect_eq(st.overwritten, t.lost_sum);
                cr_expect_eq(st.dropped, 0);
                cr_expect_eq(st.rejected, 0);
                cr_expect_gt(t.gaps, 0, "the lapped path never ran");
                /* With two CPUs and two slots the sides meet on a slot all the time; a
                 * single CPU may interleave them too coarsely for it. */
                if (cfg.capacity == 2 && !r->one_cpu)
                        cr_expect_gt(t.overtaken, 0, "the copy never raced with a rewrite");
                break;
        case CHANNEL_DROP_NEW:
                /* Drops after the last delivered message show as no gap: they trail. */
                cr_expect_eq(st.dropped, t.lost_sum + (cfg.messages - 1 - t.last_seq));
                cr_expect_eq(st.overwritten, 0);
                cr_expect_eq(st.rejected, 0);
                if (cfg.stalls)
                        cr_expect_gt(st.dropped, 0, "nothing was ever dropped");
                break;
        case CHANNEL_REJECT:
                cr_expect_eq(st.lost, 0);
                cr_expect_eq(t.lost_sum, 0);
                cr_expect_eq(st.consumed, cfg.messages);
                cr_expect_eq(t.last_seq, cfg.messages - 1);
                cr_expect_eq(st.rejected, atomic_load_explicit(&r->refused, memory_order_relaxed));
                if (cfg.stalls)
                        cr_expect_gt(st.rejected, 0, "no claim was ever refused");
                break;
        }

        channel_rx_close(&r->rx);
        channel_tx_close(&r->tx);
        channel_destroy(&r->ch);
        free(r);
        if (restore)
                (void)pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
}

static void stress(enum channel_policy policy, uint32_t payload_size)
{
        run_stress((struct config){.policy = policy,
                                   .payload_size = payload_size,
                                   .capacity = STRESS_CAPACITY,
                                   .messages = STRESS_MESSAGES,
                                   .stalls = true});
}

Test(stress, overwrite_8, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_OVERWRITE, 8);
}

/* Up to 16 bytes the consumer's copy is inlined in channel_next(): two words that can tear. */
Test(stress, overwrite_16, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_OVERWRITE, 16);
}

Test(stress, overwrite_64, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_OVERWRITE, 64);
}

Test(stress, overwrite_1k, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_OVERWRITE, 1024);
}

Test(stress, drop_new_8, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_DROP_NEW, 8);
}

Test(stress, drop_new_64, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_DROP_NEW, 64);
}

Test(stress, drop_new_1k, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_DROP_NEW, 1024);
}

Test(stress, reject_8, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_REJECT, 8);
}

Test(stress, reject_64, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_REJECT, 64);
}

Test(stress, reject_1k, .timeout = STRESS_TIMEOUT)
{
        stress(CHANNEL_REJECT, 1024);
}

/* The seqlock at its tightest: a ring of one or two slots and neither side pausing, so the
 * consumer copies slots the producer is rewriting all the time. */
static void race(uint32_t capacity, uint32_t payload_size)
{
        run_stress((struct config){.policy = CHANNEL_OVERWRITE,
                                   .payload_size = payload_size,
                                   .capacity = capacity,
                                   .messages = STRESS_MESSAGES / 2,
                                   .stalls = false});
}

Test(stress, overwrite_race_capacity_1, .timeout = STRESS_TIMEOUT)
{
        race(1, 1024);
}

Test(stress, overwrite_race_capacity_2, .timeout = STRESS_TIMEOUT)
{
        race(2, 1024);
}

/* The same through the inlined copy of small messages. */
Test(stress, overwrite_race_capacity_1_16b, .timeout = STRESS_TIMEOUT)
{
        race(1, 16);
}

Test(stress, overwrite_race_capacity_2_16b, .timeout = STRESS_TIMEOUT)
{
        race(2, 16);
}

/* Batch claims and batch reads, mixed with single reads, under every policy. */
static void stress_batch(enum channel_policy policy, uint32_t payload_size)
{
        run_stress((struct config){.policy = policy,
                                   .payload_size = payload_size,
                                   .capacity = STRESS_CAPACITY,
                                   .messages = STRESS_MESSAGES / 2,
                                   .stalls = true,
                                   .batch = true});
}

Test(stress, batch_overwrite_8, .timeout = STRESS_TIMEOUT)
{
        stress_batch(CHANNEL_OVERWRITE, 8);
}

Test(stress, batch_overwrite_64, .timeout = STRESS_TIMEOUT)
{
        stress_batch(CHANNEL_OVERWRITE, 64);
}

Test(stress, batch_drop_new_8, .timeout = STRESS_TIMEOUT)
{
        stress_batch(CHANNEL_DROP_NEW, 8);
}

Test(stress, batch_drop_new_64, .timeout = STRESS_TIMEOUT)
{
        stress_batch(CHANNEL_DROP_NEW, 64);
}

Test(stress, batch_reject_8, .timeout = STRESS_TIMEOUT)
{
        stress_batch(CHANNEL_REJECT, 8);
}

Test(stress, batch_reject_64, .timeout = STRESS_TIMEOUT)
{
        stress_batch(CHANNEL_REJECT, 64);
}

/* The wake-up of a refused producer (channel.h, "Waking a refused producer"), raced: through a
 * ring of 4 the producer, refused, asks for room and then waits for the consumer to tell it,
 * unless the request finds room already; the consumer tells it only when a pass of its that
 * gave slots back finds the request, as the daemon's worker does. A request and a give-back
 * that missed each other would leave the producer waiting with the ring empty: the wait has
 * a deadline, and the test fails on it. */
struct room_race {
        struct channel ch;
        struct channel_tx tx;
        struct channel_rx rx;
        uint64_t messages;
        int producer_cpu;
        bool one_cpu;
        _Atomic bool told;
        _Atomic bool stranded;
        _Atomic bool unmarked; /* a refusal that tx.refused did not show */
        _Atomic uint64_t waits;
        _Atomic bool waiting; /* the producer waits to be told */
        _Atomic bool done;    /* the producer sent them all */
};

static double mono_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void room_relax(const struct room_race *r)
{
        if (r->one_cpu)
                sched_yield();
}

static void *room_producer(void *arg)
{
        struct room_race *r = arg;
        pin(r->producer_cpu);
        for (uint64_t v = 0; v < r->messages && !atomic_load(&r->stranded);) {
                uint64_t *p = channel_claim(&r->tx);
                if (p) {
                        *p = v++;
                        channel_publish(&r->tx);
                        continue;
                }
                if (!r->tx.refused)
                        atomic_store(&r->unmarked, true);
                r->tx.refused = false;
                if (channel_tx_want_room(&r->tx))
                        continue;
                atomic_fetch_add_explicit(&r->waits, 1, memory_order_relaxed);
                atomic_store(&r->waiting, true);
                double end = mono_s() + 10.0;
                while (!atomic_exchange_explicit(&r->told, false, memory_order_acquire)) {
                        if (mono_s() > end) {
                                atomic_store(&r->stranded, true);
                                break;
                        }
                        room_relax(r);
                }
                atomic_store(&r->waiting, false);
        }
        atomic_store(&r->done, true);
        return NULL;
}

Test(stress, a_refused_producer_is_always_told_of_room, .timeout = STRESS_TIMEOUT)
{
        struct room_race r = {.messages = 400000u / STRESS_SCALE};
        cr_assert_eq(channel_create(&r.ch, 4, 8, CHANNEL_REJECT), 0);
        cr_assert_eq(channel_tx_open(&r.tx, &r.ch), 0);
        cr_assert_eq(channel_rx_open(&r.rx, &r.ch), 0);
        int consumer_cpu;
        pick_cpus(&consumer_cpu, &r.producer_cpu, &r.one_cpu);
        pin(consumer_cpu);
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, room_producer, &r), 0);
        uint64_t next = 0, rnd = 88172645463325252ull;
        while (next < r.messages && !atomic_load(&r.stranded)) {
                /* Passes of 1 to 4 messages, sometimes after a pause, so that give-backs fall
                 * anywhere around the producer's requests. */
                rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
                if ((rnd & 15) == 0)
                        dawdle(rnd >> 56);
                /* And now and then until the producer waits, however fast each side runs (a
                 * sanitizer slows them unevenly). */
                while ((rnd & 15) == 1 && !atomic_load(&r.waiting) && !atomic_load(&r.done))
                        room_relax(&r);
                uint64_t seq, lost, ns;
                for (uint64_t k = 0; k <= ((rnd >> 8) & 3); k++) {
                        const uint64_t *m = channel_next(&r.rx, &seq, &lost, &ns);
                        if (!m)
                                break;
                        cr_assert_eq(*m, next, "message %lu, expected %lu", (unsigned long)*m,
                                     (unsigned long)next);
                        cr_assert_eq(lost, 0);
                        next++;
                }
                if (channel_rx_end(&r.rx)) {
                        atomic_thread_fence(memory_order_seq_cst);
                        if (channel_rx_room_wanted(&r.rx))
                                atomic_store_explicit(&r.told, true, memory_order_release);
                } else {
                        room_relax(&r);
                }
        }
        pthread_join(t, NULL);
        cr_assert_not(atomic_load(&r.stranded),
                      "the producer waited 10 s for room with the ring empty, after %lu messages",
                      (unsigned long)next);
        cr_assert_eq(next, r.messages);
        cr_assert_not(atomic_load(&r.unmarked));
        cr_assert_gt(atomic_load(&r.waits), r.messages / 100, "the producer waited %lu times",
                     (unsigned long)atomic_load(&r.waits));
        channel_rx_close(&r.rx);
        channel_tx_close(&r.tx);
        channel_destroy(&r.ch);
}
