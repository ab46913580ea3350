/* The core plugin: a periodic source, a filter and two sinks, enough for the demo pipeline. */
#include "core.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const struct actord_class *const classes[] = {
    &core_tick_class,    &core_scale_class,     &core_log_class,
    &core_counter_class, &core_broadcast_class, &core_roundrobin_class,
    &core_merge_class,   &core_threshold_class, &core_gain_class,
};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "core",
    .version = "0.1.0",
    .description = "sources, filters and sinks for demos and tests",
    .classes = classes,
    .n_classes = sizeof(classes) / sizeof(classes[0]),
};

int core_format_sample(const void *msg, bool output, uint32_t port, char *buf, size_t len)
{
        (void)output;
        (void)port;
        const struct core_sample *s = msg;
        return snprintf(buf, len, "sample seq=%" PRIu64 " t_ns=%" PRIu64 " value=%.17g", s->seq,
                        s->t_ns, s->value);
}

void core_hist_add(struct core_hist *h, uint64_t v)
{
        unsigned idx;
        if (v < 8) {
                idx = (unsigned)v;
        } else {
                unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 3 */
                idx = (e - 2) * 8 + (unsigned)((v >> (e - 3)) & 7);
        }
        h->bucket[idx]++;
        h->count++;
        if (v > h->max)
                h->max = v;
}

/* Lower bound of bucket idx: the inverse of core_hist_add's mapping. */
static uint64_t bucket_low(unsigned idx)
{
        if (idx < 8)
                return idx;
        unsigned e = idx / 8 + 2, m = idx % 8;
        return (uint64_t)(8 + m) << (e - 3);
}

uint64_t core_hist_quantile(const struct core_hist *h, double q)
{
        if (!h->count)
                return 0;
        uint64_t rank = (uint64_t)(q * (double)(h->count - 1)) + 1, seen = 0;
        for (unsigned i = 0; i < CORE_HIST_BUCKETS; i++) {
                seen += h->bucket[i];
                if (seen >= rank) {
                        uint64_t v = bucket_low(i);
                        return v < h->max ? v : h->max;
                }
        }
        return h->max;
}
