/* test.freeze: a sink that wedges its worker on demand, for the watchdog test under systemd
 * (tests/systemd). It remembers the modification time of the file named by its `trigger`
 * setting when it starts; on the first run that sees the file changed (created, touched) it
 * blocks inside process() for good, which no component may do. actord then stops feeding the
 * systemd watchdog and systemd restarts it; the new instance starts with the file as it is, so
 * it runs normally until the file is touched again. With `fail`, it returns an error instead
 * (for the restart policies: on_failure = "exit" under systemd). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <actord/plugin.h>

struct freeze {
        const char *trigger; /* valid until fini */
        struct timespec seen;
        bool existed;
        bool fail;
};

static int trigger_stat(const char *path, struct timespec *ret_mtime)
{
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        *ret_mtime = st.st_mtim;
        return 0;
}

static int freeze_init(struct actord_ctx *ctx, void **ret_state)
{
        struct freeze *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        if (actord_setting_string(ctx, "trigger", &f->trigger) < 0) {
                free(f);
                actord_set_error(ctx, "the trigger setting is required");
                return -EINVAL;
        }
        f->existed = trigger_stat(f->trigger, &f->seen) == 0;
        actord_setting_bool(ctx, "fail", &f->fail);
        *ret_state = f;
        return 0;
}

static int freeze_process(struct actord_ctx *ctx, void *state)
{
        struct freeze *f = state;
        while (actord_next(ctx, 0, NULL))
                ;
        struct timespec now;
        if (trigger_stat(f->trigger, &now) < 0)
                return ACTORD_OK;
        if (f->existed && now.tv_sec == f->seen.tv_sec && now.tv_nsec == f->seen.tv_nsec)
                return ACTORD_OK;
        if (f->fail) {
                actord_set_error(ctx, "%s changed: failing, as asked", f->trigger);
                return ACTORD_ERROR;
        }
        actord_log(ctx, ACTORD_LOG_WARNING, "%s changed: blocking this worker for good",
                   f->trigger);
        /* actord blocks its signals in every worker, so nothing ends this but the process. */
        for (;;)
                pause();
}

static void freeze_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        free(state);
}

static const struct actord_port freeze_in[] = {
    {.name = "in", .type = ACTORD_TYPE_GENERIC, .help = "any type; only paces the checks"}};
static const struct actord_setting freeze_settings[] = {
    {.name = "trigger",
     .type = ACTORD_SETTING_STRING,
     .required = true,
     .help = "block for good once this file is created or its mtime changes"},
    {.name = "fail", .type = ACTORD_SETTING_BOOL, .help = "fail instead of blocking"}};

static const struct actord_class freeze_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.freeze",
    .description = "a sink that blocks its worker forever once a trigger file changes",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = freeze_in,
    .n_inputs = 1,
    .settings = freeze_settings,
    .n_settings = 2,
    .init = freeze_init,
    .process = freeze_process,
    .fini = freeze_fini,
};

static const struct actord_class *const classes[] = {&freeze_class};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "freeze",
    .version = "1.0",
    .description = "test.freeze, for the watchdog test under systemd",
    .classes = classes,
    .n_classes = 1,
};
