/* core.scale: a filter that maps value to value * factor + offset. */
#include <errno.h>
#include <stdlib.h>

#include "core.h"

struct scale {
        double factor;
        double offset;
        struct core_held held;
};

static int scale_init(struct actord_ctx *ctx, void **ret_state)
{
        struct scale *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->factor = 1.0;
        actord_setting_float(ctx, "factor", &s->factor);
        actord_setting_float(ctx, "offset", &s->offset);
        *ret_state = s;
        return 0;
}

static int scale_process(struct actord_ctx *ctx, void *state)
{
        struct scale *s = state;
        int did = 0;
        const struct core_sample *in;
        while ((in = core_hold(ctx, 0, &s->held))) {
                struct core_sample *out = actord_claim(ctx, 0);
                if (!out)
                        break; /* reject: held for the next run */
                *out = *in;
                out->value = in->value * s->factor + s->offset;
                actord_publish(ctx, 0);
                s->held.has = false;
                did = 1;
        }
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static void scale_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        free(state);
}

static const struct actord_port scale_in[] = {
    {.name = "in", .type = CORE_SAMPLE_TYPE, .size = sizeof(struct core_sample)},
};
static const struct actord_port scale_out[] = {
    {.name = "out", .type = CORE_SAMPLE_TYPE, .size = sizeof(struct core_sample)},
};
static const struct actord_setting scale_settings[] = {
    {.name = "factor", .type = ACTORD_SETTING_FLOAT, .default_value = "1.0", .help = "multiplier"},
    {.name = "offset",
     .type = ACTORD_SETTING_FLOAT,
     .default_value = "0.0",
     .help = "added after multiplying"},
};

const struct actord_class core_scale_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.scale",
    .description = "value := value * factor + offset",
    .shape = ACTORD_SHAPE_FILTER,
    .rules = ACTORD_RULE_ON_MESSAGE | ACTORD_RULE_LOOP | ACTORD_RULE_PERIODIC,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = scale_in,
    .n_inputs = 1,
    .outputs = scale_out,
    .n_outputs = 1,
    .settings = scale_settings,
    .n_settings = sizeof(scale_settings) / sizeof(scale_settings[0]),
    .init = scale_init,
    .process = scale_process,
    .fini = scale_fini,
    .format = core_format_sample,
};
