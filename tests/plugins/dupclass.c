/* Defines core.tick again: must be refused when the core plugin is loaded too. */
#include <actord/plugin.h>

static int process(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        (void)state;
        return ACTORD_IDLE;
}

static const struct actord_port out[] = {{.name = "out", .type = "core.sample", .size = 24}};

static const struct actord_class tick = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.tick",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_LOOP,
    .default_rule = ACTORD_RULE_LOOP,
    .outputs = out,
    .n_outputs = 1,
    .process = process,
};

static const struct actord_class *const classes[] = {&tick};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "dupclass",
    .version = "1.0",
    .classes = classes,
    .n_classes = 1,
};
