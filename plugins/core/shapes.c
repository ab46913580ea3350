/* Classes of every fan shape: broadcast and round-robin scatter, a merging gather, a ysplit
 * that routes by threshold to two types, and a ymerge that applies a gain stream to samples. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* ---- core.broadcast / core.roundrobin: scatter, any type ---- */

/* Under a `reject` output that is full, a fan keeps the message it could not deliver and
 * stops reading: nothing is lost, and the scheduler runs it again when there is room. */
struct fan {
        uint32_t next; /* roundrobin: the output to try first */
        uint32_t at;   /* broadcast: the output the pending message goes to next */
        bool has_pending;
        unsigned char pending[];
};

static int fan_init(struct actord_ctx *ctx, void **ret_state)
{
        struct fan *f = calloc(1, sizeof(*f) + actord_port_size(ctx, false, 0));
        if (!f)
                return -ENOMEM;
        *ret_state = f;
        return 0;
}

static void free_state(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        free(state);
}

/* msg to outputs f->at.. in order; false, with f->at at the one that refused, if one did. */
static bool broadcast_send(struct actord_ctx *ctx, struct fan *f, const void *msg, uint32_t n,
                           uint32_t size)
{
        for (; f->at < n; f->at++) {
                void *out = actord_claim(ctx, f->at);
                if (!out)
                        return false;
                memcpy(out, msg, size);
                actord_publish(ctx, f->at);
        }
        f->at = 0;
        return true;
}

/* msg to the next output that takes it; false if every one refused. */
static bool roundrobin_send(struct actord_ctx *ctx, struct fan *f, const void *msg, uint32_t n,
                            uint32_t size)
{
        for (uint32_t tries = 0; tries < n; tries++) {
                uint32_t k = f->next;
                f->next = (f->next + 1) % n;
                void *out = actord_claim(ctx, k);
                if (out) {
                        memcpy(out, msg, size);
                        actord_publish(ctx, k);
                        return true;
                }
        }
        return false;
}

/* Both fans' run: the message kept from the last run first, then the input, each through
 * `send`; a message it cannot send whole is kept, and reading stops. */
static int fan_process(struct actord_ctx *ctx, struct fan *f,
                       bool (*send)(struct actord_ctx *, struct fan *, const void *, uint32_t,
                                    uint32_t))
{
        uint32_t n = actord_port_count(ctx, true);
        uint32_t size = actord_port_size(ctx, false, 0);
        if (f->has_pending) {
                if (!send(ctx, f, f->pending, n, size))
                        return ACTORD_IDLE;
                f->has_pending = false;
        }
        const void *in;
        int did = 0;
        while ((in = actord_next(ctx, 0, NULL))) {
                did = 1;
                if (!send(ctx, f, in, n, size)) {
                        memcpy(f->pending, in, size);
                        f->has_pending = true;
                        break;
                }
        }
        return did ? ACTORD_OK : ACTORD_IDLE;
}

/* A broadcast keeps a message until every output has it (the outputs before f->at do). */
static int broadcast_process(struct actord_ctx *ctx, void *state)
{
        return fan_process(ctx, state, broadcast_send);
}

/* A round-robin goes around a full output: the message goes to the next one with room. */
static int roundrobin_process(struct actord_ctx *ctx, void *state)
{
        return fan_process(ctx, state, roundrobin_send);
}

static const struct actord_port any_in[] = {{.name = "in", .type = ACTORD_TYPE_GENERIC}};
static const struct actord_port any_out[] = {{.name = "out", .type = ACTORD_TYPE_GENERIC}};

const struct actord_class core_broadcast_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.broadcast",
    .description = "copies each message to every output out[0..N-1]; a full reject output "
                   "holds the rest back, so none misses one",
    .shape = ACTORD_SHAPE_SCATTER,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = any_in,
    .n_inputs = 1,
    .outputs = any_out,
    .n_outputs = 1,
    .init = fan_init,
    .process = broadcast_process,
    .fini = free_state,
};

const struct actord_class core_roundrobin_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.roundrobin",
    .description = "sends each message to the next output in turn, going around full reject "
                   "outputs",
    .shape = ACTORD_SHAPE_SCATTER,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = any_in,
    .n_inputs = 1,
    .outputs = any_out,
    .n_outputs = 1,
    .init = fan_init,
    .process = roundrobin_process,
    .fini = free_state,
};

/* ---- core.merge: gather, any type ---- */

struct merge {
        uint32_t next;
        bool has_pending; /* a message read but refused by a full `reject` output */
        unsigned char pending[];
};

static int merge_init(struct actord_ctx *ctx, void **ret_state)
{
        struct merge *m = calloc(1, sizeof(*m) + actord_port_size(ctx, true, 0));
        if (!m)
                return -ENOMEM;
        *ret_state = m;
        return 0;
}

static bool merge_emit(struct actord_ctx *ctx, struct merge *m, uint32_t size)
{
        void *out = actord_claim(ctx, 0);
        if (!out)
                return false;
        memcpy(out, m->pending, size);
        actord_publish(ctx, 0);
        m->has_pending = false;
        return true;
}

static int merge_process(struct actord_ctx *ctx, void *state)
{
        struct merge *m = state;
        uint32_t n = actord_port_count(ctx, false);
        uint32_t size = actord_port_size(ctx, true, 0);
        if (m->has_pending && !merge_emit(ctx, m, size))
                return ACTORD_IDLE;
        int did = 0;
        /* One message per input per pass, starting after the input served last, so that a
         * busy input cannot starve the others. */
        for (bool moved = true; moved;) {
                moved = false;
                for (uint32_t i = 0; i < n; i++) {
                        uint32_t k = m->next;
                        m->next = (m->next + 1) % n;
                        const void *in = actord_next(ctx, k, NULL);
                        if (!in)
                                continue;
                        memcpy(m->pending, in, size);
                        m->has_pending = true;
                        moved = true;
                        did = 1;
                        if (!merge_emit(ctx, m, size))
                                return ACTORD_OK;
                }
        }
        return did ? ACTORD_OK : ACTORD_IDLE;
}

const struct actord_class core_merge_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.merge",
    .description = "forwards the messages of inputs in[0..N-1] to one output, fairly",
    .shape = ACTORD_SHAPE_GATHER,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = any_in,
    .n_inputs = 1,
    .outputs = any_out,
    .n_outputs = 1,
    .init = merge_init,
    .process = merge_process,
    .fini = free_state,
};

/* ---- core.threshold: ysplit, core.sample -> core.sample | core.alert ---- */

struct threshold {
        double limit;
        struct core_held held;
};

static int threshold_init(struct actord_ctx *ctx, void **ret_state)
{
        struct threshold *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        actord_setting_float(ctx, "limit", &t->limit);
        *ret_state = t;
        return 0;
}

/* Sends `in` where it belongs; false when that output refused it (reject). */
static bool threshold_send(struct actord_ctx *ctx, const struct threshold *t,
                           const struct core_sample *in)
{
        if (in->value < t->limit) {
                struct core_sample *out = actord_claim(ctx, 0);
                if (!out)
                        return false;
                *out = *in;
                actord_publish(ctx, 0);
        } else {
                struct core_alert *out = actord_claim(ctx, 1);
                if (!out)
                        return false;
                *out = (struct core_alert){
                    .seq = in->seq, .t_ns = in->t_ns, .value = in->value, .limit = t->limit};
                actord_publish(ctx, 1);
        }
        return true;
}

static int threshold_process(struct actord_ctx *ctx, void *state)
{
        struct threshold *t = state;
        int did = 0;
        const struct core_sample *in;
        /* Under reject a full output holds the sample for the next run, and the others behind
         * it, whichever output they go to. */
        while ((in = core_hold(ctx, 0, &t->held)) && threshold_send(ctx, t, in)) {
                t->held.has = false;
                did = 1;
        }
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static const struct actord_port sample_in[] = {
    {.name = "in", .type = CORE_SAMPLE_TYPE, .size = sizeof(struct core_sample)}};
static const struct actord_port threshold_out[] = {
    {.name = "below",
     .type = CORE_SAMPLE_TYPE,
     .size = sizeof(struct core_sample),
     .help = "samples whose value is below the limit"},
    {.name = "alert",
     .type = CORE_ALERT_TYPE,
     .size = sizeof(struct core_alert),
     .help = "one alert per sample at or above the limit"},
};
static const struct actord_setting threshold_settings[] = {
    {.name = "limit",
     .type = ACTORD_SETTING_FLOAT,
     .default_value = "0.0",
     .help = "values at or above it become alerts"},
};

const struct actord_class core_threshold_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.threshold",
    .description = "routes samples below a limit to `below`, the others as alerts to `alert`",
    .shape = ACTORD_SHAPE_YSPLIT,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = sample_in,
    .n_inputs = 1,
    .outputs = threshold_out,
    .n_outputs = 2,
    .settings = threshold_settings,
    .n_settings = 1,
    .init = threshold_init,
    .process = threshold_process,
    .fini = free_state,
};

/* ---- core.gain: ymerge, core.sample + core.gain -> core.sample ---- */

struct gain {
        double factor;
        struct core_held held;
};

static int gain_init(struct actord_ctx *ctx, void **ret_state)
{
        struct gain *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->factor = 1.0;
        actord_setting_float(ctx, "initial", &g->factor);
        *ret_state = g;
        return 0;
}

static int gain_process(struct actord_ctx *ctx, void *state)
{
        struct gain *g = state;
        int did = 0;
        /* The latest gain applies to every sample sent after it. */
        const struct core_gain *cg;
        while ((cg = actord_next(ctx, 1, NULL))) {
                g->factor = cg->factor;
                did = 1;
        }
        const struct core_sample *in;
        while ((in = core_hold(ctx, 0, &g->held))) {
                struct core_sample *out = actord_claim(ctx, 0);
                if (!out)
                        break; /* reject: held for the next run */
                *out = *in;
                out->value = in->value * g->factor;
                actord_publish(ctx, 0);
                g->held.has = false;
                did = 1;
        }
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static const struct actord_port gain_in[] = {
    {.name = "in", .type = CORE_SAMPLE_TYPE, .size = sizeof(struct core_sample)},
    {.name = "gain",
     .type = CORE_GAIN_TYPE,
     .size = sizeof(struct core_gain),
     .help = "new factors; the latest one applies"},
};
static const struct actord_port gain_out[] = {
    {.name = "out", .type = CORE_SAMPLE_TYPE, .size = sizeof(struct core_sample)}};
static const struct actord_setting gain_settings[] = {
    {.name = "initial",
     .type = ACTORD_SETTING_FLOAT,
     .default_value = "1.0",
     .help = "factor until the first message on `gain`"},
};

const struct actord_class core_gain_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.gain",
    .description = "multiplies samples by the latest factor received on `gain`",
    .shape = ACTORD_SHAPE_YMERGE,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = gain_in,
    .n_inputs = 2,
    .outputs = gain_out,
    .n_outputs = 1,
    .settings = gain_settings,
    .n_settings = 1,
    .init = gain_init,
    .process = gain_process,
    .fini = free_state,
};
