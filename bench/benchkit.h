/* What actord-bench's pipeline benchmark shares with its plugin (bench/plugins/benchkit.c):
 * the mailbox whose address the benchmark passes to the plugin as a setting. In-process only:
 * a benchmark device, not a pattern for plugins. */
#ifndef ACTORD_BENCHKIT_H
#define ACTORD_BENCHKIT_H

#include <stdatomic.h>
#include <stdint.h>

struct actord_notifier;

/* The message that travels down the pipeline. */
struct bench_msg {
        uint64_t seq;
        uint64_t t0_ns; /* CLOCK_MONOTONIC when the source published it */
};

struct bench_mailbox {
        /* Set by the source's init: what the sink (and the benchmark, to start) notifies. */
        struct actord_notifier *_Atomic src;
        /* Written by the sink only: one end-to-end latency per message. */
        uint64_t *samples;
        uint64_t cap;
        uint64_t n;
        /* The sink writes it once `cap` samples are in. */
        int done_fd;
};

/* The throughput runs' mailbox: bench.flood publishes as fast as the channel takes messages,
 * bench.drain counts them and writes done_fd once `target` came, with the times of message
 * `warmup` and of the last (CLOCK_MONOTONIC). */
struct bench_flow {
        uint64_t target, warmup;
        uint64_t got, errors; /* the drain's: messages, and any out of order */
        uint64_t t_warm_ns, t_end_ns;
        int done_fd;
};

#endif
