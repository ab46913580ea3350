/* A class of a shape this ABI does not know. */
#include <actord/plugin.h>

static int process(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        (void)state;
        return ACTORD_IDLE;
}

static const struct actord_port in[] = {{.name = "in", .type = "x.y", .size = 8}};

static const struct actord_class filter = {
    .struct_size = sizeof(struct actord_class),
    .name = "bad.shape",
    .shape = (enum actord_shape)99,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = in,
    .n_inputs = 1,
    .process = process,
};

static const struct actord_class *const classes[] = {&filter};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "unknownshape",
    .version = "1.0",
    .classes = classes,
    .n_classes = 1,
};
