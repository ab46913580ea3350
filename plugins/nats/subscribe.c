/* nats.subscribe: a source that publishes each message of a NATS subject on its output.
 *
 * libnats calls the message handler on the subscription's delivery thread, one message at a
 * time: it checks the message (its size must be the output type's, and BRIDGE_HDR_TYPE, when
 * present, must name that type), counts the gaps that BRIDGE_HDR_SEQ shows (per publisher, by
 * BRIDGE_HDR_SOURCE), puts the message in
 * the bridge's ring and notifies the component, which runs on its worker (on_event) and copies
 * the messages into its output. A message that does not fit is refused, counted and described in
 * the log; nothing of it reaches the channel. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static void refuse(struct bridge *b, natsMsg *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct bridge *b, natsMsg *m, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&b->lock);
        vsnprintf(b->bad_why, sizeof(b->bad_why), fmt, ap);
        pthread_mutex_unlock(&b->lock);
        va_end(ap);
        natsMsg_Destroy(m);
        bridge_count(&b->bad, 1, NATS_OK, b);
        /* The component says so in the log when it runs. */
        bridge_notify(b);
}

/* The delivery thread's: the publisher `name` of the table, moved to its front (made there if
 * new, the least recently heard one forgotten when the table is full); NULL without memory. */
static struct bridge_source *source_of(struct bridge *b, const char *name, bool *is_new)
{
        int i = 0;
        while (i < b->n_sources && strcmp(b->sources[i].name, name))
                i++;
        *is_new = i == b->n_sources;
        struct bridge_source e;
        if (*is_new) {
                if (!(e.name = strdup(name)))
                        return NULL;
                e.last_seq = 0;
                if (b->n_sources == BRIDGE_SOURCES_MAX)
                        free(b->sources[--b->n_sources].name);
                i = b->n_sources++;
        } else
                e = b->sources[i];
        memmove(&b->sources[1], &b->sources[0], (size_t)i * sizeof(e));
        b->sources[0] = e;
        return &b->sources[0];
}

/* The delivery thread's: BRIDGE_HDR_SEQ against the last one of the same publisher, for
 * gaps. */
static void track_seq(struct bridge *b, natsMsg *m)
{
        const char *v, *from;
        if (natsMsgHeader_Get(m, BRIDGE_HDR_SEQ, &v) != NATS_OK)
                return;
        char *end;
        errno = 0;
        unsigned long long seq = strtoull(v, &end, 10);
        if (errno || end == v || *end)
                return;
        if (natsMsgHeader_Get(m, BRIDGE_HDR_SOURCE, &from) != NATS_OK)
                from = "";
        bool is_new;
        struct bridge_source *e = source_of(b, from, &is_new);
        if (!e)
                return;
        /* A smaller number: the publisher started again (its channel is new); count from it. */
        if (!is_new && seq > e->last_seq + 1)
                bridge_count(&b->gaps, seq - e->last_seq - 1, NATS_OK, b);
        e->last_seq = seq;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
        struct bridge *b = closure;
        (void)nc;
        int64_t dropped;
        if (natsSubscription_GetDropped(sub, &dropped) == NATS_OK && dropped >= 0)
                atomic_store_explicit(&b->slow.count, (uint64_t)dropped, memory_order_relaxed);
        int len = natsMsg_GetDataLength(m);
        const char *type;
        if (len != (int)b->size) {
                refuse(b, m, "%d bytes on '%s', where the output's type %s has %" PRIu32, len,
                       natsMsg_GetSubject(m), b->type, b->size);
                return;
        }
        if (natsMsgHeader_Get(m, BRIDGE_HDR_TYPE, &type) == NATS_OK && strcmp(type, b->type)) {
                refuse(b, m, "type %.60s on '%s', where the output carries %s", type,
                       natsMsg_GetSubject(m), b->type);
                return;
        }
        track_seq(b, m);
        uint64_t h = atomic_load_explicit(&b->head, memory_order_relaxed);
        /* Acquire, pairs with the worker's release store of tail: it is done with the slot. */
        if (h - atomic_load_explicit(&b->tail, memory_order_acquire) == b->cap) {
                natsMsg_Destroy(m);
                bridge_count(&b->queue_full, 1, NATS_OK, b);
        } else {
                b->msgs[h & (b->cap - 1)] = m;
                /* Release, pairs with the worker's acquire load of head. */
                atomic_store_explicit(&b->head, h + 1, memory_order_release);
        }
        bridge_notify(b);
}

static bool sub_needs_confirm(struct bridge *b)
{
        return atomic_load(&b->connected) && atomic_load(&b->connects) != b->confirmed_for;
}

static void *sub_main(void *arg)
{
        struct bridge *b = arg;
        natsStatus s = bridge_connect(b);
        if (s == NATS_OK)
                s = bridge_subscribe(b, on_msg);
        if (s != NATS_OK) {
                /* The worker reports it and fails the component; wait to be stopped. */
                bridge_notify(b);
                while (bridge_wait(b, sub_needs_confirm))
                        b->confirmed_for = atomic_load(&b->connects);
                bridge_thread_end(b);
                return NULL;
        }
        /* Each time the connection is (re)made, a flush says when the server has the
         * subscription: from then on, nothing published on the subject misses it. */
        while (bridge_wait(b, sub_needs_confirm)) {
                uint64_t connects = atomic_load(&b->connects);
                if (natsConnection_FlushTimeout(b->nc, BRIDGE_CONNECT_TIMEOUT_MS) == NATS_OK) {
                        b->confirmed_for = connects;
                        atomic_store(&b->ready, true);
                        bridge_notify(b);
                }
        }
        bridge_thread_end(b);
        return NULL;
}

static int sub_init(struct actord_ctx *ctx, void **ret_state)
{
        return bridge_init(ctx, ret_state, true, sub_main);
}

static int sub_process(struct actord_ctx *ctx, void *state)
{
        struct bridge *b = state;
        if (!bridge_report(ctx, b))
                return ACTORD_ERROR;
        uint64_t t = atomic_load_explicit(&b->tail, memory_order_relaxed), start = t;
        /* Acquire, pairs with the handler's release store of head: the messages are there. */
        uint64_t h = atomic_load_explicit(&b->head, memory_order_acquire);
        while (t != h) {
                uint32_t k;
                size_t stride;
                uint64_t want = h - t > 1024 ? 1024 : h - t;
                unsigned char *p = actord_claim_n(ctx, 0, (uint32_t)want, &k, &stride);
                if (!p)
                        break; /* reject, and the channel is full: the messages wait here, and
                                * the daemon runs us again when the reader makes room */
                for (uint32_t i = 0; i < k; i++) {
                        natsMsg *m = b->msgs[(t + i) & (b->cap - 1)];
                        memcpy(p + i * stride, natsMsg_GetData(m), b->size);
                        natsMsg_Destroy(m);
                }
                actord_publish(ctx, 0);
                t += k;
                /* Release, pairs with the handler's acquire load of tail. */
                atomic_store_explicit(&b->tail, t, memory_order_release);
        }
        return t != start ? ACTORD_OK : ACTORD_IDLE;
}

static const struct actord_port sub_out[] = {
    {.name = "out",
     .type = ACTORD_TYPE_GENERIC,
     .help = "the type of what it is wired to; each NATS message must be that many bytes"},
};

static const struct actord_setting sub_settings[] = {
    BRIDGE_SETTING_URL,
    BRIDGE_SETTINGS_TLS,
    BRIDGE_SETTINGS_NKEY,
    {.name = "subject",
     .type = ACTORD_SETTING_STRING,
     .required = true,
     .help = "the subject to subscribe to; wildcards allowed ('*' a token, '>' the rest)"},
    {.name = "group",
     .type = ACTORD_SETTING_STRING,
     .help = "a queue group: each message goes to one subscriber of the group"},
    {.name = "queue",
     .type = ACTORD_SETTING_INT,
     .default_value = "1024",
     .help = "messages waiting for the worker (rounded up to a power of two), and as many in "
             "the client library; beyond them messages are dropped and counted"},
};

const struct actord_class nats_subscribe_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "nats.subscribe",
    .description = "publishes each message of a NATS subject on its output",
    .shape = ACTORD_SHAPE_SOURCE,
    .rules = ACTORD_RULE_ON_EVENT,
    .default_rule = ACTORD_RULE_ON_EVENT,
    .outputs = sub_out,
    .n_outputs = 1,
    .settings = sub_settings,
    .n_settings = sizeof(sub_settings) / sizeof(sub_settings[0]),
    .init = sub_init,
    .process = sub_process,
    .fini = bridge_fini,
};
