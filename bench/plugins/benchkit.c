/* Classes of actord-bench's pipeline benchmark: a source run by notifications, a pass-through
 * filter, a sink that records each message's latency and notifies the source for the next one,
 * and an idle source/sink pair to load workers with components that never run. */
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

static const struct actord_class *const classes[] = {&src_class, &pass_class, &sink_class,
                                                     &idle_src_class, &idle_sink_class};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "benchkit",
    .version = "1.0",
    .classes = classes,
    .n_classes = 5,
};
