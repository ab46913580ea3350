/* core.counter: a sink that counts messages and losses and reports, at a fixed interval, the
 * rate and the end-to-end latency (from the source's timestamp to this sink). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct counter {
        bool timed; /* the payload carries the source's timestamp (core.sample, core.alert) */
        uint64_t interval_ns;
        uint64_t window_start;
        uint64_t window_msgs;
        uint64_t window_lost;
        uint64_t total_msgs;
        uint64_t total_lost;
        struct core_hist hist;
        FILE *f; /* reports also go here when `path` is set */
};

static int counter_init(struct actord_ctx *ctx, void **ret_state)
{
        struct counter *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        int64_t ms = 1000;
        if (actord_setting_int(ctx, "report_ms", &ms) == 0 && (ms < 1 || ms > 3600000)) {
                actord_set_error(ctx, "report_ms must be in 1 .. 3600000, not %lld", (long long)ms);
                free(c);
                return -EINVAL;
        }
        c->interval_ns = (uint64_t)ms * 1000000u;
        const char *type = actord_port_type(ctx, false, 0);
        c->timed = !strcmp(type, CORE_SAMPLE_TYPE) || !strcmp(type, CORE_ALERT_TYPE);
        const char *path;
        if (actord_setting_string(ctx, "path", &path) == 0) {
                c->f = fopen(path, "we");
                if (!c->f) {
                        int r = -errno;
                        actord_set_error(ctx, "cannot open '%s' for writing: %s", path,
                                         strerror(errno));
                        free(c);
                        return r;
                }
        }
        c->window_start = actord_now_ns(ctx);
        *ret_state = c;
        return 0;
}

static void report(struct actord_ctx *ctx, struct counter *c, uint64_t now)
{
        double secs = (double)(now - c->window_start) / 1e9;
        double rate = secs > 0 ? (double)c->window_msgs / secs : 0;
        double p50 = (double)core_hist_quantile(&c->hist, 0.50) / 1e3;
        double p99 = (double)core_hist_quantile(&c->hist, 0.99) / 1e3;
        double max = (double)c->hist.max / 1e3;
        actord_log(ctx, ACTORD_LOG_INFO,
                   "%.0f msg/s, %" PRIu64 " lost; end-to-end latency p50 %.1f us, p99 %.1f us, "
                   "max %.1f us (%" PRIu64 " messages so far)",
                   rate, c->window_lost, p50, p99, max, c->total_msgs);
        if (c->f) {
                fprintf(c->f,
                        "rate=%.1f lost=%" PRIu64 " p50_us=%.1f p99_us=%.1f max_us=%.1f "
                        "total=%" PRIu64 " total_lost=%" PRIu64 "\n",
                        rate, c->window_lost, p50, p99, max, c->total_msgs, c->total_lost);
                fflush(c->f);
        }
        memset(&c->hist, 0, sizeof(c->hist));
        c->window_start = now;
        c->window_msgs = 0;
        c->window_lost = 0;
}

/* Messages read per batch: runs of consecutive messages, read in place where the channel
 * allows it. */
#define COUNTER_BATCH 64

static int counter_process(struct actord_ctx *ctx, void *state)
{
        struct counter *c = state;
        struct actord_burst b = {.struct_size = sizeof(b)};
        uint64_t now = actord_now_ns(ctx);
        int did = 0;
        uint32_t n;
        while ((n = actord_next_n(ctx, 0, COUNTER_BATCH, &b))) {
                did = 1;
                c->window_msgs += n;
                c->total_msgs += n;
                c->window_lost += b.lost_before;
                c->total_lost += b.lost_before;
                const unsigned char *m = b.first;
                for (uint32_t i = 0; i < n; i++, m += b.stride) {
                        /* core.sample and core.alert both start with seq, t_ns. Other types:
                         * the time since the last hop published it. */
                        uint64_t t0 = c->timed ? ((const struct core_sample *)(const void *)m)->t_ns
                                               : actord_burst_publish_ns(ctx, &b, i);
                        core_hist_add(&c->hist, now > t0 ? now - t0 : 0);
                }
        }
        if (now - c->window_start >= c->interval_ns)
                report(ctx, c, now);
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static void counter_fini(struct actord_ctx *ctx, void *state)
{
        struct counter *c = state;
        if (!c)
                return;
        actord_log(ctx, ACTORD_LOG_INFO, "end: %" PRIu64 " messages, %" PRIu64 " lost",
                   c->total_msgs, c->total_lost);
        if (c->f) {
                fprintf(c->f, "end total=%" PRIu64 " total_lost=%" PRIu64 "\n", c->total_msgs,
                        c->total_lost);
                fclose(c->f);
        }
        free(c);
}

static const struct actord_port counter_in[] = {
    {.name = "in",
     .type = ACTORD_TYPE_GENERIC,
     .help = "any type; latency from the source for core.sample/core.alert, else last hop"},
};
static const struct actord_setting counter_settings[] = {
    {.name = "report_ms",
     .type = ACTORD_SETTING_INT,
     .default_value = "1000",
     .help = "reporting interval in milliseconds"},
    {.name = "path", .type = ACTORD_SETTING_STRING, .help = "also append each report to this file"},
};

const struct actord_class core_counter_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.counter",
    .description = "counts messages and losses; reports rate and end-to-end latency",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE | ACTORD_RULE_PERIODIC,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = counter_in,
    .n_inputs = 1,
    .settings = counter_settings,
    .n_settings = sizeof(counter_settings) / sizeof(counter_settings[0]),
    .init = counter_init,
    .process = counter_process,
    .fini = counter_fini,
};
