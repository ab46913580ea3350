/* core.log: a sink that prints one readable line per message, to a file or to the log. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

struct logsink {
        FILE *f; /* NULL: through actord_log */
        uint64_t every;
        uint64_t seen;
        uint64_t lost;
};

static int log_init(struct actord_ctx *ctx, void **ret_state)
{
        struct logsink *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->every = 1;
        int64_t every;
        if (actord_setting_int(ctx, "every", &every) == 0) {
                if (every < 1) {
                        actord_set_error(ctx, "every must be >= 1, not %lld", (long long)every);
                        free(l);
                        return -EINVAL;
                }
                l->every = (uint64_t)every;
        }
        const char *path;
        if (actord_setting_string(ctx, "path", &path) == 0) {
                l->f = fopen(path, "we");
                if (!l->f) {
                        int r = -errno;
                        actord_set_error(ctx, "cannot open '%s' for writing: %s", path,
                                         strerror(errno));
                        free(l);
                        return r;
                }
        }
        *ret_state = l;
        return 0;
}

static int log_process(struct actord_ctx *ctx, void *state)
{
        struct logsink *l = state;
        struct actord_msg_info info;
        const struct core_sample *s;
        int did = 0;
        while ((s = actord_next(ctx, 0, &info))) {
                did = 1;
                l->lost += info.lost_before;
                if (l->seen++ % l->every)
                        continue;
                uint64_t now = actord_now_ns(ctx);
                double lat_us = now >= s->t_ns ? (double)(now - s->t_ns) / 1e3 : 0.0;
                if (l->f)
                        fprintf(l->f,
                                "seq=%" PRIu64 " chan_seq=%" PRIu64 " lost_before=%" PRIu64
                                " value=%.17g latency_us=%.1f\n",
                                s->seq, info.seq, info.lost_before, s->value, lat_us);
                else
                        actord_log(ctx, ACTORD_LOG_INFO,
                                   "seq=%" PRIu64 " value=%g latency=%.1f us%s", s->seq, s->value,
                                   lat_us, info.lost_before ? " (after a loss)" : "");
        }
        if (l->f && did)
                fflush(l->f);
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static void log_fini(struct actord_ctx *ctx, void *state)
{
        struct logsink *l = state;
        if (!l)
                return;
        if (l->f) {
                fprintf(l->f, "end messages=%" PRIu64 " lost=%" PRIu64 "\n", l->seen, l->lost);
                fclose(l->f);
        } else {
                actord_log(ctx, ACTORD_LOG_INFO, "end: %" PRIu64 " messages, %" PRIu64 " lost",
                           l->seen, l->lost);
        }
        free(l);
}

static const struct actord_port log_in[] = {
    {.name = "in", .type = CORE_SAMPLE_TYPE, .size = sizeof(struct core_sample)},
};
static const struct actord_setting log_settings[] = {
    {.name = "path",
     .type = ACTORD_SETTING_STRING,
     .help = "file to write lines to (truncated at start); absent: the daemon's log"},
    {.name = "every",
     .type = ACTORD_SETTING_INT,
     .default_value = "1",
     .help = "print one message of this many"},
};

const struct actord_class core_log_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "core.log",
    .description = "prints one line per message (sequence, value, latency)",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE | ACTORD_RULE_PERIODIC,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = log_in,
    .n_inputs = 1,
    .settings = log_settings,
    .n_settings = sizeof(log_settings) / sizeof(log_settings[0]),
    .init = log_init,
    .process = log_process,
    .fini = log_fini,
};
