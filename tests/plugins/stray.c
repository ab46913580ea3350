/* test.stray: an on_event source whose init starts a thread that notifies it in a loop and that
 * fini does not stop: a plugin's bug, which the daemon must survive. After fini the thread
 * notifies on until `path`.freed exists, then 10000 times more, then writes "after" to `path`
 * and stops. Linked -z nodelete:
 * its code stays mapped when the daemon unloads the plugin, as a real stray thread's would
 * not (that crash would be the plugin's own). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <actord/plugin.h>

/* What the thread keeps: its own copy, never freed (the component's state goes at fini). */
struct stray_thread {
        struct actord_notifier *notifier;
        _Atomic bool fini_done;
        char path[512];
        struct stray_thread *next; /* kept reachable: a leak checker need not see a leak */
};
static struct stray_thread *_Atomic threads;

struct stray {
        struct stray_thread *t;
        bool said;
};

static void *stray_main(void *arg)
{
        struct stray_thread *t = arg;
        /* Paced, not spinning: a test beside this one may need the CPU. */
        const struct timespec pace = {.tv_nsec = 200000};
        while (!atomic_load(&t->fini_done)) {
                actord_notify(t->notifier);
                nanosleep(&pace, NULL);
        }
        /* On after fini until the test says the daemon has freed the component (it writes
         * `path`.freed once its reload is applied), then a burst. */
        char freed[600];
        snprintf(freed, sizeof(freed), "%s.freed", t->path);
        while (access(freed, F_OK) != 0) {
                actord_notify(t->notifier);
                nanosleep(&pace, NULL);
        }
        for (int i = 0; i < 10000; i++)
                actord_notify(t->notifier);
        char tmp[600];
        snprintf(tmp, sizeof(tmp), "%s.tmp", t->path);
        FILE *f = fopen(tmp, "w");
        if (f) {
                fputs("after\n", f);
                fclose(f);
                rename(tmp, t->path);
        }
        return NULL;
}

static int stray_init(struct actord_ctx *ctx, void **ret_state)
{
        struct stray *s = calloc(1, sizeof(*s));
        struct stray_thread *t = calloc(1, sizeof(*t));
        const char *path = NULL;
        actord_setting_string(ctx, "path", &path);
        if (!s || !t || !path) {
                free(s);
                free(t);
                actord_set_error(ctx, "path is required");
                return -EINVAL;
        }
        snprintf(t->path, sizeof(t->path), "%s", path);
        t->notifier = actord_notifier(ctx);
        t->next = atomic_load(&threads);
        while (!atomic_compare_exchange_weak(&threads, &t->next, t))
                ;
        s->t = t;
        *ret_state = s;
        pthread_t th;
        if (pthread_create(&th, NULL, stray_main, t) != 0)
                return -EAGAIN;
        pthread_detach(th);
        return 0;
}

static int stray_process(struct actord_ctx *ctx, void *state)
{
        struct stray *s = state;
        if (!s->said) {
                actord_log(ctx, ACTORD_LOG_INFO, "woken by its thread");
                s->said = true;
        }
        return ACTORD_IDLE;
}

static void stray_fini(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        struct stray *s = state;
        if (!s)
                return;
        /* The bug: the thread is told, not waited for; it notifies on. */
        atomic_store(&s->t->fini_done, true);
        free(s);
}

static const struct actord_port out[] = {{.name = "out", .type = "test.u64", .size = 8}};
static const struct actord_setting settings[] = {
    {.name = "path", .type = ACTORD_SETTING_STRING, .required = true}};

static const struct actord_class stray_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.stray",
    .description = "notifies itself from a thread that outlives fini (a plugin's bug)",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_ON_EVENT,
    .default_rule = ACTORD_RULE_ON_EVENT,
    .outputs = out,
    .n_outputs = 1,
    .settings = settings,
    .n_settings = 1,
    .init = stray_init,
    .process = stray_process,
    .fini = stray_fini,
};

static const struct actord_class *const classes[] = {&stray_class};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "stray",
    .version = "1.0",
    .description = "a plugin with a thread that notifies after fini",
    .classes = classes,
    .n_classes = 1,
};
