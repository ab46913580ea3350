/* test.version: a sink of test.bytes messages that writes one line per message, tagged with
 * the version it was built as (TEST_VERSION), to the file named by its `path` setting. Built
 * as version1/ and version2/ so that tests can replace a loaded plugin with new code, and as
 * version3/, which needs a symbol that nothing defines: loading it fails. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <actord/plugin.h>

#ifndef TEST_VERSION
#error "build with -DTEST_VERSION=N"
#endif

static int version_init(struct actord_ctx *ctx, void **ret_state)
{
        const char *path;
        if (actord_setting_string(ctx, "path", &path) < 0) {
                actord_set_error(ctx, "needs a path");
                return -EINVAL;
        }
        FILE *f = fopen(path, "ae");
        if (!f) {
                int r = -errno;
                actord_set_error(ctx, "cannot open '%s': %s", path, strerror(errno));
                return r;
        }
#if TEST_VERSION == 3
        extern void actord_test_nowhere_defined(void);
        actord_test_nowhere_defined();
#endif
        fprintf(f, "v%d start\n", TEST_VERSION);
        fflush(f);
        *ret_state = f;
        return 0;
}

static int version_process(struct actord_ctx *ctx, void *state)
{
        FILE *f = state;
        struct actord_msg_info info;
        const uint64_t *v;
        int did = 0;
        while ((v = actord_next(ctx, 0, &info))) {
                fprintf(f, "v%d chan_seq=%" PRIu64 " lost_before=%" PRIu64 " value=%" PRIu64 "\n",
                        TEST_VERSION, info.seq, info.lost_before, *v);
                did = 1;
        }
        if (did)
                fflush(f);
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static void version_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        fprintf(state, "v%d end\n", TEST_VERSION);
        fclose(state);
}

static const struct actord_port version_in[] = {{.name = "in", .type = "test.bytes", .size = 8}};
static const struct actord_setting version_settings[] = {
    {.name = "path", .type = ACTORD_SETTING_STRING, .required = true, .help = "output file"}};

static const struct actord_class version_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.version",
    .description = "writes each message with the plugin's version",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = version_in,
    .n_inputs = 1,
    .settings = version_settings,
    .n_settings = 1,
    .init = version_init,
    .process = version_process,
    .fini = version_fini,
};

static const struct actord_class *const classes[] = {&version_class};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "version",
    .version = "1",
    .description = "a plugin built in two versions",
    .classes = classes,
    .n_classes = 1,
};
