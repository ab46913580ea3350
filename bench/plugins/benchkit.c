/* Classes of actord-bench's pipeline benchmark: a source run by notifications, a pass-through
 * filter, a sink that records each message's latency and notifies the source for the next one,
 * an idle source/sink pair to load workers with components that never run, and a flooding
 * source and a counting sink for throughput. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <actord/plugin.h>

#include "../benchkit.h"

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int mailbox_init(struct actord_ctx *ctx, void **ret_state)
{
        int64_t addr = 0;
        if (actord_setting_int(ctx, "mailbox", &addr) < 0 || !addr) {
                actord_set_error(ctx, "mailbox is required");
                return -EINVAL;
        }
        *ret_state = (void *)(intptr_t)addr;
        return 0;
}

static int src_init(struct actord_ctx *ctx, void **ret_state)
{
        int r = mailbox_init(ctx, ret_state);
        if (r == 0) {
                struct bench_mailbox *mb = *ret_state;
                atomic_store_explicit(&mb->src, actord_notifier(ctx), memory_order_release);
        }
        return r;
}

static uint64_t src_seq;

static int src_process(struct actord_ctx *ctx, void *state)
{
        (void)state;
        struct bench_msg *m = actord_claim(ctx, 0);
        if (!m)
                return ACTORD_OK;
        m->seq = src_seq++;
        m->t0_ns = now_ns();
        actord_publish(ctx, 0);
        return ACTORD_OK;
}

static int pass_process(struct actord_ctx *ctx, void *state)
{
        (void)state;
        const struct bench_msg *in;
        while ((in = actord_next(ctx, 0, NULL))) {
                struct bench_msg *out = actord_claim(ctx, 0);
                if (out) {
                        *out = *in;
                        actord_publish(ctx, 0);
                }
        }
        return ACTORD_OK;
}

static int sink_process(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct bench_mailbox *mb = state;
        const struct bench_msg *in;
        while ((in = actord_next(ctx, 0, NULL))) {
                uint64_t t = now_ns();
                if (mb->n < mb->cap)
                        mb->samples[mb->n++] = t - in->t0_ns;
                if (mb->n == mb->cap) {
                        uint64_t one = 1;
                        if (write(mb->done_fd, &one, sizeof(one)) < 0)
                                return ACTORD_ERROR;
                        mb->n++; /* report once */
                } else if (mb->n < mb->cap) {
                        actord_notify(atomic_load_explicit(&mb->src, memory_order_acquire));
                }
        }
        return ACTORD_OK;
}

/* ---- throughput: a source that floods its output, a sink that counts ----
 * `batch` = 0: one actord_claim/actord_publish or actord_next per message; n > 0: runs of up to
 * n with actord_claim_n and actord_next_n (ABI 1.1). A run publishes up to 256 messages. */

struct flow {
        struct bench_flow *mb;
        uint32_t batch;
        uint64_t seq;
};

static int flow_init(struct actord_ctx *ctx, void **ret_state)
{
        void *mb;
        int r = mailbox_init(ctx, &mb);
        if (r < 0)
                return r;
        int64_t batch = 0;
        actord_setting_int(ctx, "batch", &batch);
        struct flow *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->mb = mb;
        f->batch = batch > 0 ? (uint32_t)batch : 0;
        *ret_state = f;
        return 0;
}

static void flow_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        free(state);
}

static int flood_process(struct actord_ctx *ctx, void *state)
{
        struct flow *f = state;
        for (uint32_t left = 256; left;) {
                if (!f->batch) {
                        struct bench_msg *m = actord_claim(ctx, 0);
                        if (!m)
                                return ACTORD_OK;
                        m->seq = f->seq++;
                        m->t0_ns = 0;
                        actord_publish(ctx, 0);
                        left--;
                        continue;
                }
                uint32_t k;
                size_t stride;
                unsigned char *p =
                    actord_claim_n(ctx, 0, left < f->batch ? left : f->batch, &k, &stride);
                if (!p)
                        return ACTORD_OK;
                for (uint32_t i = 0; i < k; i++) {
                        struct bench_msg *m = (struct bench_msg *)(void *)(p + i * stride);
                        m->seq = f->seq++;
                        m->t0_ns = 0;
                }
                actord_publish(ctx, 0);
                left -= k;
        }
        return ACTORD_OK;
}

static void drain_count(struct flow *f, const struct bench_msg *m)
{
        struct bench_flow *mb = f->mb;
        if (m->seq != f->seq)
                mb->errors++;
        f->seq = m->seq + 1;
        if (++mb->got == mb->warmup)
                mb->t_warm_ns = now_ns();
        if (mb->got == mb->target) {
                mb->t_end_ns = now_ns();
                uint64_t one = 1;
                if (write(mb->done_fd, &one, sizeof(one)) < 0)
                        mb->errors++;
        }
}

static int drain_process(struct actord_ctx *ctx, void *state)
{
        struct flow *f = state;
        int did = 0;
        if (!f->batch) {
                const struct bench_msg *m;
                while ((m = actord_next(ctx, 0, NULL))) {
                        drain_count(f, m);
                        did = 1;
                }
        } else {
                struct actord_burst b = {.struct_size = sizeof(b)};
                uint32_t n;
                while ((n = actord_next_n(ctx, 0, f->batch, &b))) {
                        const unsigned char *p = b.first;
                        for (uint32_t i = 0; i < n; i++, p += b.stride)
                                drain_count(f, (const struct bench_msg *)(const void *)p);
                        did = 1;
                }
        }
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static int idle_process(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        (void)state;
        return ACTORD_IDLE;
}

static const struct actord_port msg_out[] = {
    {.name = "out", .type = "bench.msg", .size = sizeof(struct bench_msg)}};
static const struct actord_port msg_in[] = {
    {.name = "in", .type = "bench.msg", .size = sizeof(struct bench_msg)}};
static const struct actord_setting mailbox_setting[] = {
    {.name = "mailbox",
     .type = ACTORD_SETTING_INT,
     .required = true,
     .help = "address of the benchmark's mailbox (in-process only)"}};

static const struct actord_setting flow_settings[] = {
    {.name = "mailbox",
     .type = ACTORD_SETTING_INT,
     .required = true,
     .help = "address of the benchmark's struct bench_flow (in-process only)"},
    {.name = "batch",
     .type = ACTORD_SETTING_INT,
     .default_value = "0",
     .help = "0: a call per message; n: runs of up to n (claim_n, next_n)"}};

static const struct actord_class flood_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "bench.flood",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_LOOP,
    .default_rule = ACTORD_RULE_LOOP,
    .outputs = msg_out,
    .n_outputs = 1,
    .settings = flow_settings,
    .n_settings = 2,
    .init = flow_init,
    .process = flood_process,
    .fini = flow_fini,
};

static const struct actord_class drain_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "bench.drain",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = msg_in,
    .n_inputs = 1,
    .settings = flow_settings,
    .n_settings = 2,
    .init = flow_init,
    .process = drain_process,
    .fini = flow_fini,
};

static const struct actord_class src_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "bench.src",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_ON_EVENT,
    .default_rule = ACTORD_RULE_ON_EVENT,
    .outputs = msg_out,
    .n_outputs = 1,
    .settings = mailbox_setting,
    .n_settings = 1,
    .init = src_init,
    .process = src_process,
};

static const struct actord_class pass_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "bench.pass",
    .shape = ACTORD_SHAPE_FILTER,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = msg_in,
    .n_inputs = 1,
    .outputs = msg_out,
    .n_outputs = 1,
    .process = pass_process,
};

static const struct actord_class sink_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "bench.sink",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = msg_in,
    .n_inputs = 1,
    .settings = mailbox_setting,
    .n_settings = 1,
    .init = mailbox_init,
    .process = sink_process,
};

static const struct actord_class idle_src_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "bench.idle_src",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_ON_EVENT,
    .default_rule = ACTORD_RULE_ON_EVENT,
    .outputs = msg_out,
    .n_outputs = 1,
    .process = idle_process,
};

static const struct actord_class idle_sink_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "bench.idle_sink",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = msg_in,
    .n_inputs = 1,
    .process = idle_process,
};

static const struct actord_class *const classes[] = {
    &src_class,       &pass_class,  &sink_class, &idle_src_class,
    &idle_sink_class, &flood_class, &drain_class};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "benchkit",
    .version = "1.0",
    .classes = classes,
    .n_classes = 7,
};
