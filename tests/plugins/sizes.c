/* Descriptors of other sizes than this header's: built with TEST_SHORT, a class descriptor
 * shorter than ABI 1.0's (refused); without it, a plugin of a later minor version whose
 * descriptors carry fields appended after this header's (loaded, the fields not read). */
#include <actord/plugin.h>

static int process(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        (void)state;
        return ACTORD_IDLE;
}

static const struct actord_port out[] = {{.name = "out", .type = "test.u64", .size = 8}};

/* A later minor's class: this one's fields, then one it does not know. */
static const struct {
        struct actord_class c;
        void *appended;
} later = {
    .c =
        {
#ifdef TEST_SHORT
            .struct_size = offsetof(struct actord_class, format),
            .name = "sizes.short",
#else
            .struct_size = sizeof(later),
            .name = "sizes.later",
#endif
            .shape = ACTORD_SHAPE_SOURCE,
            .rules = ACTORD_RULE_PERIODIC,
            .default_rule = ACTORD_RULE_PERIODIC,
            .outputs = out,
            .n_outputs = 1,
            .process = process,
        },
    .appended = (void *)1,
};

static const struct actord_class *const classes[] = {&later.c};

static const struct {
        struct actord_plugin p;
        void *appended;
} plugin_later = {
    .p =
        {
            .abi_major = ACTORD_ABI_MAJOR,
            .abi_minor = ACTORD_ABI_MINOR + 1,
            .struct_size = sizeof(plugin_later),
            .name = "sizes",
            .version = "1.0",
            .classes = classes,
            .n_classes = 1,
        },
    .appended = (void *)1,
};

/* The exported symbol is the descriptor; the appended field follows it in memory. */
ACTORD_EXPORT extern const struct actord_plugin ACTORD_PLUGIN_SYMBOL
    __attribute__((alias("plugin_later")));
