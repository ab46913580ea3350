/* actorctl tap (tap.h). */
#define _GNU_SOURCE
#include "tap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* At most this much per turn of the main thread: a busy channel cannot keep it from its other
 * work; what the tap could not keep up with shows as "not shown". */
#define TAP_TURN_MESSAGES 2048

struct tap_session {
        struct channel_tap tap;
        const struct actord_class *fmt; /* whose format callback, or NULL: bytes */
        bool fmt_output;
        uint32_t fmt_port;
        uint32_t size;
        uint64_t left; /* messages still to show; UINT64_MAX: no end */
        bool seen_any;
};

static void tap_end(void *state)
{
        struct tap_session *s = state;
        channel_tap_close(&s->tap);
        free(s);
}

static void print_message(struct tap_session *s, const void *msg, uint64_t seq, FILE *out)
{
        char text[512];
        int n = s->fmt ? s->fmt->format(msg, s->fmt_output, s->fmt_port, text, sizeof(text)) : -1;
        if (n >= 0) {
                /* The plugin's text, on one line whatever it wrote. */
                for (char *p = text; *p; p++)
                        if (*p == '\n' || *p == '\r')
                                *p = ' ';
                fprintf(out, "chan_seq=%" PRIu64 " %s\n", seq, text);
                return;
        }
        fprintf(out, "chan_seq=%" PRIu64 " bytes=%u data=", seq, s->size);
        const unsigned char *p = msg;
        for (uint32_t i = 0; i < s->size && i < 64; i++)
                fprintf(out, "%02x", p[i]);
        fputs(s->size > 64 ? "...\n" : "\n", out);
}

static bool tap_pump(void *state, FILE *out)
{
        struct tap_session *s = state;
        for (int i = 0; i < TAP_TURN_MESSAGES && s->left; i++) {
                uint64_t seq, lost, ns;
                const void *msg = channel_tap_next(&s->tap, &seq, &lost, &ns);
                if (!msg)
                        break;
                if (lost && s->seen_any)
                        fprintf(out, "... %" PRIu64 " message%s not shown (the tap fell behind)\n",
                                lost, lost == 1 ? "" : "s");
                s->seen_any = true;
                print_message(s, msg, seq, out);
                if (s->left != UINT64_MAX)
                        s->left--;
        }
        return s->left != 0;
}

/* The link with an end named `end`, as the daemon names it (topology_link_end) or else as
 * the configuration wrote it (the first such link), or -1. */
static int find_link(const struct topology *t, const char *end)
{
        for (int pass = 0; pass < 2; pass++)
                for (int i = 0; i < t->n_chans; i++) {
                        char from[160], to[160];
                        void (*name)(const struct topology *, int, bool, char *, size_t) =
                            pass == 0 ? topology_link_end : topology_link_end_written;
                        name(t, i, true, from, sizeof(from));
                        name(t, i, false, to, sizeof(to));
                        if (strcmp(from, end) == 0 || strcmp(to, end) == 0)
                                return i;
                }
        return -1;
}

bool tap_start(const struct topology *t, const char *spec, FILE *out, struct ctl_stream *ret)
{
        char end[200], extra;
        unsigned long long count = 0;
        int n = sscanf(spec, "%199s %llu %c", end, &count, &extra);
        if (n < 1 || n > 2 || (n == 2 && count == 0)) {
                fputs("tap: expected 'tap END [COUNT]': END one end of a link (e.g. "
                      "'scale.out'), COUNT a number of messages above 0",
                      out);
                return false;
        }
        int link = find_link(t, end);
        if (link < 0) {
                fprintf(out, "tap: no link has an end '%s' (ends: ", end);
                for (int i = 0; i < t->n_chans && i < 8; i++) {
                        char f[160], to[160];
                        topology_link_end(t, i, true, f, sizeof(f));
                        topology_link_end(t, i, false, to, sizeof(to));
                        fprintf(out, "%s%s, %s", i ? ", " : "", f, to);
                }
                fputs(t->n_chans > 8 ? ", ...)" : ")", out);
                return false;
        }
        const struct config_link *l = &t->cfg->links[link];
        char from[160], to[160];
        topology_link_end(t, link, true, from, sizeof(from));
        topology_link_end(t, link, false, to, sizeof(to));
        if (l->policy != CHANNEL_OVERWRITE) {
                fprintf(out,
                        "tap: %s -> %s is a \"%s\" link; only \"overwrite\" links can be tapped "
                        "(under the other policies the producer rewrites a slot without marking "
                        "it, so a third reader could see it half written)",
                        from, to, channel_policy_to_string(l->policy));
                return false;
        }
        struct tap_session *s = calloc(1, sizeof(*s));
        if (!s) {
                fputs("tap: out of memory", out);
                return false;
        }
        int r = channel_tap_open(&s->tap, &t->chans[link]);
        if (r < 0) {
                fprintf(out, "tap: %s", strerror(-r));
                free(s);
                return false;
        }
        const struct component *p = t->comps[t->link_from[link]];
        const struct component *c = t->comps[t->link_to[link]];
        if (p->cls->format) {
                s->fmt = p->cls;
                s->fmt_output = true;
                s->fmt_port = topology_declared_port(p, true, t->link_out[link]);
        } else if (c->cls->format) {
                s->fmt = c->cls;
                s->fmt_output = false;
                s->fmt_port = topology_declared_port(c, false, t->link_in[link]);
        }
        s->size = t->link_type[link].size;
        s->left = count ? count : UINT64_MAX;
        fprintf(out, "tap %s -> %s (%s, %u bytes; %s%s)%s\n", from, to, t->link_type[link].name,
                s->size, s->fmt ? "printed by " : "as bytes: neither class has a format callback",
                s->fmt ? s->fmt->name : "", count ? "" : "; until the client goes away");
        *ret = (struct ctl_stream){.pump = tap_pump, .end = tap_end, .state = s};
        return true;
}
