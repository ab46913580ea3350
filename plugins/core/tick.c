/* core.tick: a source that emits a counter and a timestamp on each run. */
#include <errno.h>
#include <stdlib.h>

#include "core.h"

struct tick {
        uint64_t next;
        uint64_t count; /* stop after this many messages; 0: never */
        uint64_t emitted;
        uint32_t burst;
};

static int tick_init(struct actord_ctx *ctx, void **ret_state)
{
        struct tick *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        int64_t v;
        if (actord_setting_int(ctx, "start", &v) == 0)
                t->next = (uint64_t)v;
        if (actord_setting_int(ctx, "count", &v) == 0) {
                if (v < 0) {
                        actord_set_error(ctx, "count must be >= 0 (0: no limit), not %lld",
                                         (long long)v);
                        free(t);
                        return -EINVAL;
                }
                t->count = (uint64_t)v;
        }
        t->burst = 1;
        if (actord_setting_int(ctx, "burst", &v) == 0) {
                if (v < 1 || v > 1000000) {
                        actord_set_error(ctx, "burst must be in 1 .. 1000000, not %lld",
                                         (long long)v);
                        free(t);
                        return -EINVAL;
                }
                t->burst = (uint32_t)v;
        }
        *ret_state = t;
        return 0;
}

static int tick_process(struct actord_ctx *ctx, void *state)
{
        struct tick *t = state;
        uint64_t now = actord_now_ns(ctx);
        uint64_t left = t->burst;
        if (t->count && t->count - t->emitted < left)
                left = t->count - t->emitted;
        /* The run's messages in batches: as many consecutive slots as the channel has at once,
         * filled in place and committed by one publish. */
        while (left) {
                uint32_t k;
                size_t stride;
                unsigned char *p = actord_claim_n(ctx, 0, (uint32_t)left, &k, &stride);
                if (!p)
                        return ACTORD_OK; /* reject policy, channel full: retry next run */
                for (uint32_t i = 0; i < k; i++) {
                        struct core_sample *s = (struct core_sample *)(void *)(p + i * stride);
                        s->seq = t->next + i;
                        s->t_ns = now;
                        s->value = (double)(t->next + i);
                }
                actord_publish(ctx, 0);
                t->next += k;
                t->emitted += k;
                left -= k;
        }
        if (t->count && t->emitted >= t->count)
                return ACTORD_DONE;
        return ACTORD_OK;
}

static void tick_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        free(state);
}

static const struct actord_port tick_out[] = {
    {.name = "out",
     .type = CORE_SAMPLE_TYPE,
     .size = sizeof(struct core_sample),
     .help = "one sample per run: seq, time, value = seq"},
};

static const struct actord_setting tick_settings[] = {
    {.name = "start",
     .type = ACTORD_SETTING_INT,
     .default_value = "0",
     .help = "first counter value"},
    {.name = "count",
     .type = ACTORD_SETTING_INT,
     .default_value = "0",
     .help = "stop (DONE) after this many messages; 0: never"},
    {.name = "burst",
     .type = ACTORD_SETTING_INT,
     .default_value = "1",
     .help = "messages per run, published in batches"},
};

const struct actord_class core_tick_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.tick",
    .description = "emits a counter and a timestamp on each run",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_PERIODIC | ACTORD_RULE_LOOP | ACTORD_RULE_ON_EVENT,
    .default_rule = ACTORD_RULE_PERIODIC,
    .outputs = tick_out,
    .n_outputs = 1,
    .settings = tick_settings,
    .n_settings = sizeof(tick_settings) / sizeof(tick_settings[0]),
    .init = tick_init,
    .process = tick_process,
    .fini = tick_fini,
    .format = core_format_sample,
};
