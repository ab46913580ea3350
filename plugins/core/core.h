/* The core plugin's message type and classes. */
#ifndef ACTORD_CORE_PLUGIN_H
#define ACTORD_CORE_PLUGIN_H

#include <actord/plugin.h>

/* core.sample: what core.tick emits and the other core classes consume. */
#define CORE_SAMPLE_TYPE "core.sample"
struct core_sample {
        uint64_t seq;  /* counter of the source that made it */
        uint64_t t_ns; /* CLOCK_MONOTONIC when the source made it: for end-to-end latency */
        double value;
};

/* core.alert: a sample that crossed a limit (core.threshold's second output). */
#define CORE_ALERT_TYPE "core.alert"
struct core_alert {
        uint64_t seq;
        uint64_t t_ns;
        double value;
        double limit;
};

/* core.gain: a new factor for core.gain's second input. */
#define CORE_GAIN_TYPE "core.gain"
struct core_gain {
        double factor;
};

/* A core.sample read and not sent yet: the one a full `reject` output refused, kept for the
 * next run while those behind it wait in the input, so that nothing is lost and nothing
 * overtakes. */
struct core_held {
        bool has;
        struct core_sample s;
};

/* The held sample, or else the next one of input `in`, held from now on; NULL when there is
 * none. Once it is sent, the caller clears h->has. */
static inline const struct core_sample *core_hold(struct actord_ctx *ctx, uint32_t in,
                                                  struct core_held *h)
{
        if (!h->has) {
                const struct core_sample *m = actord_next(ctx, in, NULL);
                if (!m)
                        return NULL;
                h->s = *m;
                h->has = true;
        }
        return &h->s;
}

extern const struct actord_class core_tick_class;
extern const struct actord_class core_scale_class;
extern const struct actord_class core_log_class;
extern const struct actord_class core_counter_class;
extern const struct actord_class core_broadcast_class;
extern const struct actord_class core_roundrobin_class;
extern const struct actord_class core_merge_class;
extern const struct actord_class core_threshold_class;
extern const struct actord_class core_gain_class;

/* The classes' format callback for actorctl tap: a core.sample (any port). */
int core_format_sample(const void *msg, bool output, uint32_t port, char *buf, size_t len);

/* Log-linear latency histogram: 8 sub-buckets per power of two (about 12 % resolution). */
#define CORE_HIST_BUCKETS (64 * 8)
struct core_hist {
        uint64_t count;
        uint64_t max;
        uint64_t bucket[CORE_HIST_BUCKETS];
};
void core_hist_add(struct core_hist *h, uint64_t v);
/* The value below which a fraction q (0..1) of the samples lie, to bucket resolution. */
uint64_t core_hist_quantile(const struct core_hist *h, double q);

#endif
