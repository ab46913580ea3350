/* Test classes: a byte source, a generic pass-through filter, a sink whose init fails, a
 * source of core.gain factors, a source that logs a lot and a source that fails on purpose. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <actord/plugin.h>

struct bytes {
        uint64_t n;
        uint64_t count;
        int sent; /* its counter of messages published (ABI 1.2) */
};

static int bytes_init(struct actord_ctx *ctx, void **ret_state)
{
        struct bytes *b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        int64_t v = 0;
        actord_setting_int(ctx, "count", &v);
        b->count = (uint64_t)v;
        /* The counters' contract, checked where the plugin sees it: a second declaration of
         * a name is the same counter, a bad name is refused. A daemon that breaks it fails
         * this init (and the tests that run test.bytes). */
        b->sent = actord_counter(ctx, "sent", "Messages published (a \\ in the help)");
        int again = actord_counter(ctx, "sent", "the same");
        int bad = actord_counter(ctx, "Not-a-name", "refused");
        if (b->sent < 0 || again != b->sent || bad != -EINVAL) {
                actord_set_error(ctx, "counters: sent %d, again %d, bad name %d", b->sent, again,
                                 bad);
                free(b);
                return -EINVAL;
        }
        *ret_state = b;
        return 0;
}

static int bytes_process(struct actord_ctx *ctx, void *state)
{
        struct bytes *b = state;
        if (b->count && b->n >= b->count)
                return ACTORD_DONE;
        uint64_t *p = actord_claim(ctx, 0);
        if (!p)
                return ACTORD_OK;
        *p = b->n++;
        actord_publish(ctx, 0);
        actord_count(ctx, b->sent, 1);
        return ACTORD_OK;
}

static void free_state(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        free(state);
}

static const struct actord_port bytes_out[] = {{.name = "out", .type = "test.bytes", .size = 8}};
static const struct actord_setting bytes_settings[] = {
    {.name = "count", .type = ACTORD_SETTING_INT, .help = "stop after this many"}};

static const struct actord_class bytes_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.bytes",
    .description = "emits an 8-byte counter per run",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_LOOP | ACTORD_RULE_PERIODIC,
    .default_rule = ACTORD_RULE_PERIODIC,
    .outputs = bytes_out,
    .n_outputs = 1,
    .settings = bytes_settings,
    .n_settings = 1,
    .init = bytes_init,
    .process = bytes_process,
    .fini = free_state,
};

static int pass_process(struct actord_ctx *ctx, void *state)
{
        (void)state;
        uint32_t size = actord_port_size(ctx, false, 0);
        const void *in;
        while ((in = actord_next(ctx, 0, NULL))) {
                void *out = actord_claim(ctx, 0);
                if (!out)
                        return ACTORD_OK;
                memcpy(out, in, size);
                actord_publish(ctx, 0);
        }
        return ACTORD_OK;
}

static const struct actord_port pass_in[] = {{.name = "in", .type = ACTORD_TYPE_GENERIC}};
static const struct actord_port pass_out[] = {{.name = "out", .type = ACTORD_TYPE_GENERIC}};

static const struct actord_class pass_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.pass",
    .description = "copies any message type through",
    .shape = ACTORD_SHAPE_FILTER,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = pass_in,
    .n_inputs = 1,
    .outputs = pass_out,
    .n_outputs = 1,
    .process = pass_process,
};

static int failinit_init(struct actord_ctx *ctx, void **ret_state)
{
        (void)ret_state;
        actord_set_error(ctx, "refusing to start, as asked");
        return -EINVAL;
}

static int failinit_process(struct actord_ctx *ctx, void *state)
{
        (void)ctx;
        (void)state;
        return ACTORD_IDLE;
}

static const struct actord_port failinit_in[] = {{.name = "in", .type = ACTORD_TYPE_GENERIC}};

static const struct actord_class failinit_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.failinit",
    .description = "a sink whose init always fails",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = failinit_in,
    .n_inputs = 1,
    .init = failinit_init,
    .process = failinit_process,
};

/* Emits `count` core.gain messages carrying `factor`. */
struct gainsrc {
        double factor;
        int64_t left;
};

static int gainsrc_init(struct actord_ctx *ctx, void **ret_state)
{
        struct gainsrc *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->factor = 1.0;
        g->left = 1;
        actord_setting_float(ctx, "factor", &g->factor);
        actord_setting_int(ctx, "count", &g->left);
        *ret_state = g;
        return 0;
}

static int gainsrc_process(struct actord_ctx *ctx, void *state)
{
        struct gainsrc *g = state;
        if (g->left <= 0)
                return ACTORD_DONE;
        double *out = actord_claim(ctx, 0);
        if (!out)
                return ACTORD_OK;
        *out = g->factor;
        actord_publish(ctx, 0);
        g->left--;
        return ACTORD_OK;
}

static const struct actord_port gainsrc_out[] = {
    {.name = "out", .type = "core.gain", .size = sizeof(double)}};
static const struct actord_setting gainsrc_settings[] = {
    {.name = "factor", .type = ACTORD_SETTING_FLOAT},
    {.name = "count", .type = ACTORD_SETTING_INT},
};

static const struct actord_class gainsrc_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.gainsrc",
    .description = "emits core.gain factors",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_PERIODIC | ACTORD_RULE_LOOP,
    .default_rule = ACTORD_RULE_PERIODIC,
    .outputs = gainsrc_out,
    .n_outputs = 1,
    .settings = gainsrc_settings,
    .n_settings = 2,
    .init = gainsrc_init,
    .process = gainsrc_process,
    .fini = free_state,
};

/* Logs `lines` lines per run and writes "runs=N" over the file at `path` after each run (a
 * pwrite into a regular file, which does not wait for a reader); emits its run count. */
struct chatter {
        int fd;
        int64_t lines;
        uint64_t runs;
};

static int chatter_init(struct actord_ctx *ctx, void **ret_state)
{
        struct chatter *c = calloc(1, sizeof(*c));
        const char *path;
        if (!c)
                return -ENOMEM;
        c->lines = 10;
        actord_setting_int(ctx, "lines", &c->lines);
        if (actord_setting_string(ctx, "path", &path) < 0 ||
            (c->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
                actord_set_error(ctx, "path: cannot open");
                free(c);
                return -EINVAL;
        }
        *ret_state = c;
        return 0;
}

static int chatter_process(struct actord_ctx *ctx, void *state)
{
        struct chatter *c = state;
        for (int64_t i = 0; i < c->lines; i++)
                actord_log(ctx, ACTORD_LOG_INFO,
                           "run %llu, line %lld: some chatter to fill the log",
                           (unsigned long long)c->runs, (long long)i);
        c->runs++;
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "runs=%llu\n", (unsigned long long)c->runs);
        if (pwrite(c->fd, buf, (size_t)n, 0) != n)
                return ACTORD_ERROR;
        uint64_t *p = actord_claim(ctx, 0);
        if (p) {
                *p = c->runs;
                actord_publish(ctx, 0);
        }
        return ACTORD_OK;
}

static void chatter_fini(struct actord_ctx *ctx, void *state)
{
        struct chatter *c = state;
        (void)ctx;
        close(c->fd);
        free(c);
}

static const struct actord_setting chatter_settings[] = {
    {.name = "lines", .type = ACTORD_SETTING_INT, .help = "log lines per run (10)"},
    {.name = "path", .type = ACTORD_SETTING_STRING, .help = "where the run count goes"},
};

static const struct actord_class chatter_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.chatter",
    .description = "logs lines on every run, counts its runs in a file",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_PERIODIC | ACTORD_RULE_LOOP,
    .default_rule = ACTORD_RULE_PERIODIC,
    .outputs = bytes_out,
    .n_outputs = 1,
    .settings = chatter_settings,
    .n_settings = 2,
    .init = chatter_init,
    .process = chatter_process,
    .fini = chatter_fini,
};

/* Fails on purpose, for the restart policies: its run ends it (an error, or DONE with `done`)
 * after `runs` runs (default 1); from the `init_fails_from`-th init on (counted in the file),
 * init fails. Each init appends "init N T" to the file at `path` (N: which init, T: the
 * monotonic clock in microseconds), each fini "fini N". */
struct flaky {
        FILE *f;
        int64_t runs, left, nth;
        bool done;
};

static int flaky_inits(const char *path)
{
        FILE *f = fopen(path, "re");
        int n = 0;
        char line[128];
        while (f && fgets(line, sizeof(line), f))
                n += !strncmp(line, "init ", 5);
        if (f)
                fclose(f);
        return n;
}

static int flaky_init(struct actord_ctx *ctx, void **ret_state)
{
        const char *path;
        int64_t fails_from = 0;
        if (actord_setting_string(ctx, "path", &path) < 0) {
                actord_set_error(ctx, "path: required");
                return -EINVAL;
        }
        actord_setting_int(ctx, "init_fails_from", &fails_from);
        int nth = flaky_inits(path) + 1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        FILE *f = fopen(path, "ae");
        if (!f) {
                actord_set_error(ctx, "path: cannot open");
                return -EINVAL;
        }
        fprintf(f, "init %d %lld\n", nth,
                (long long)ts.tv_sec * 1000000 + (long long)ts.tv_nsec / 1000);
        fflush(f);
        if (fails_from && nth >= fails_from) {
                fclose(f);
                actord_set_error(ctx, "init fails from init %lld on, as asked",
                                 (long long)fails_from);
                return -EIO;
        }
        struct flaky *k = calloc(1, sizeof(*k));
        if (!k) {
                fclose(f);
                return -ENOMEM;
        }
        k->f = f;
        k->nth = nth;
        k->runs = 1;
        actord_setting_int(ctx, "runs", &k->runs);
        k->left = k->runs;
        actord_setting_bool(ctx, "done", &k->done);
        *ret_state = k;
        return 0;
}

/* What a run of either flaky class returns: OK until its last run, then DONE or an error. */
static int flaky_end_run(struct actord_ctx *ctx, struct flaky *k)
{
        if (--k->left > 0)
                return ACTORD_OK;
        if (k->done)
                return ACTORD_DONE;
        actord_set_error(ctx, "failing after %lld runs, as asked", (long long)k->runs);
        return ACTORD_ERROR;
}

static int flaky_process(struct actord_ctx *ctx, void *state)
{
        struct flaky *k = state;
        uint64_t *p = actord_claim(ctx, 0);
        if (p) {
                *p = (uint64_t)k->nth;
                actord_publish(ctx, 0);
        }
        return flaky_end_run(ctx, k);
}

static void flaky_fini(struct actord_ctx *ctx, void *state)
{
        struct flaky *k = state;
        (void)ctx;
        fprintf(k->f, "fini %lld\n", (long long)k->nth);
        fclose(k->f);
        free(k);
}

static const struct actord_setting flaky_settings[] = {
    {.name = "path", .type = ACTORD_SETTING_STRING, .required = true},
    {.name = "runs", .type = ACTORD_SETTING_INT, .help = "runs before it ends (1)"},
    {.name = "done", .type = ACTORD_SETTING_BOOL, .help = "end with DONE, not an error"},
    {.name = "init_fails_from", .type = ACTORD_SETTING_INT, .help = "init fails from this one on"},
};

static const struct actord_class flaky_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.flaky",
    .description = "ends itself (error or DONE) after some runs; logs its inits and finis",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_PERIODIC | ACTORD_RULE_LOOP,
    .default_rule = ACTORD_RULE_PERIODIC,
    .outputs = bytes_out,
    .n_outputs = 1,
    .settings = flaky_settings,
    .n_settings = 4,
    .init = flaky_init,
    .process = flaky_process,
    .fini = flaky_fini,
};

/* test.flakysink: test.flaky as an on_message sink; a run reads what its input holds. */
static int flakysink_process(struct actord_ctx *ctx, void *state)
{
        struct flaky *k = state;
        while (actord_next(ctx, 0, NULL))
                ;
        return flaky_end_run(ctx, k);
}

static const struct actord_port any_in[] = {{.name = "in", .type = ACTORD_TYPE_GENERIC}};

static const struct actord_class flakysink_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "test.flakysink",
    .description = "test.flaky as a sink run on messages",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = any_in,
    .n_inputs = 1,
    .settings = flaky_settings,
    .n_settings = 4,
    .init = flaky_init,
    .process = flakysink_process,
    .fini = flaky_fini,
};

static const struct actord_class *const classes[] = {
    &bytes_class,   &pass_class,  &failinit_class, &gainsrc_class,
    &chatter_class, &flaky_class, &flakysink_class};

ACTORD_PLUGIN_DEFINE = {
    .abi_major = ACTORD_ABI_MAJOR,
    .abi_minor = ACTORD_ABI_MINOR,
    .struct_size = sizeof(struct actord_plugin),
    .name = "testkit",
    .version = "1.0",
    .classes = classes,
    .n_classes = 7,
};
