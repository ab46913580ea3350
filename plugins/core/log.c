/* core.log: a sink that prints one readable line per message, to a file or to the log. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

enum kind { KIND_SAMPLE, KIND_ALERT, KIND_RAW };

/* Which kind of message the (generic) input carries. */
static enum kind input_kind(struct actord_ctx *ctx)
{
        const char *type = actord_port_type(ctx, false, 0);
        uint32_t size = actord_port_size(ctx, false, 0);
        if (!strcmp(type, CORE_SAMPLE_TYPE) && size == sizeof(struct core_sample))
                return KIND_SAMPLE;
        if (!strcmp(type, CORE_ALERT_TYPE) && size == sizeof(struct core_alert))
                return KIND_ALERT;
        return KIND_RAW;
}

struct logsink {
        enum kind kind;
        uint32_t size;
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
        l->kind = input_kind(ctx);
        l->size = actord_port_size(ctx, false, 0);
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

/* One line describing msg, without a newline. */
static void format_line(const struct logsink *l, const void *msg,
                        const struct actord_msg_info *info, uint64_t now, char *buf, size_t len)
{
        int n;
        if (l->kind == KIND_SAMPLE) {
                const struct core_sample *s = msg;
                double lat_us = now >= s->t_ns ? (double)(now - s->t_ns) / 1e3 : 0.0;
                n = snprintf(buf, len,
                             "seq=%" PRIu64 " chan_seq=%" PRIu64 " lost_before=%" PRIu64
                             " value=%.17g latency_us=%.1f",
                             s->seq, info->seq, info->lost_before, s->value, lat_us);
        } else if (l->kind == KIND_ALERT) {
                const struct core_alert *a = msg;
                double lat_us = now >= a->t_ns ? (double)(now - a->t_ns) / 1e3 : 0.0;
                n = snprintf(buf, len,
                             "alert seq=%" PRIu64 " chan_seq=%" PRIu64 " lost_before=%" PRIu64
                             " value=%.17g limit=%.17g latency_us=%.1f",
                             a->seq, info->seq, info->lost_before, a->value, a->limit, lat_us);
        } else {
                n = snprintf(buf, len,
                             "chan_seq=%" PRIu64 " lost_before=%" PRIu64 " bytes=%u data=",
                             info->seq, info->lost_before, l->size);
                const unsigned char *p = msg;
                for (uint32_t i = 0; i < l->size && i < 32 && n > 0 && (size_t)n + 3 < len; i++)
                        n += snprintf(buf + n, len - (size_t)n, "%02x", p[i]);
        }
        (void)n;
}

static int log_process(struct actord_ctx *ctx, void *state)
{
        struct logsink *l = state;
        struct actord_msg_info info;
        const void *msg;
        int did = 0;
        while ((msg = actord_next(ctx, 0, &info))) {
                did = 1;
                l->lost += info.lost_before;
                if (l->seen++ % l->every)
                        continue;
                char line[256];
                format_line(l, msg, &info, actord_now_ns(ctx), line, sizeof(line));
                if (l->f)
                        fprintf(l->f, "%s\n", line);
                else
                        actord_log(ctx, ACTORD_LOG_INFO, "%s", line);
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
    {.name = "in",
     .type = ACTORD_TYPE_GENERIC,
     .help = "any type; core.sample and core.alert are printed field by field"},
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
    .description = "prints one line per message: fields of core.sample/core.alert, else hex",
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
