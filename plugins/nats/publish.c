/* nats.publish: a sink that sends each message of its input to a NATS subject.
 *
 * The worker copies messages into the bridge's ring (slot: the channel sequence number, then
 * the payload) and the bridge thread publishes them, each with BRIDGE_HDR_TYPE and
 * BRIDGE_HDR_SEQ unless `headers = false`. The worker reads from its input only what the ring
 * has room for: beyond that the messages wait in the channel, which loses them or refuses its
 * producer by its policy, and the bridge thread notifies the component when it has freed
 * slots. Until the first connect the messages wait in the ring, then in the channel. While a
 * connection made once is down, libnats keeps what it is given in its reconnect buffer and
 * sends it on reconnect; past that it refuses, and the refusals are counted and logged. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static unsigned char *pub_slot(struct bridge *b, uint64_t pos)
{
        return b->slots + (size_t)(pos & (b->cap - 1)) * b->slot_size;
}

/* Bridge thread, after freeing slots: a worker that found the ring full and asked
 * (pub_want_room()) is notified. */
static void pub_tell_room(struct bridge *b)
{
        /* seq_cst, with pub_want_room()'s store and load. */
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&b->room_wanted, memory_order_relaxed) &&
            atomic_exchange(&b->room_wanted, false))
                bridge_notify(b);
}

/* Messages to send, and a connection made once: before the first connect libnats does not
 * know whether the server takes headers and would refuse them, so they wait in the ring (on
 * the first connect, on_connected() wakes the thread). */
static bool pub_has_work(struct bridge *b)
{
        /* Acquire, pairs with the worker's release store of head: the slots are written. */
        return atomic_load_explicit(&b->head, memory_order_acquire) !=
                   atomic_load_explicit(&b->tail, memory_order_relaxed) &&
               atomic_load(&b->connects) != 0;
}

static natsStatus pub_send(struct bridge *b, const unsigned char *slot)
{
        const char *payload = (const char *)slot + sizeof(uint64_t);
        if (!b->headers)
                return natsConnection_Publish(b->nc, b->subject, payload, (int)b->size);
        uint64_t seq;
        memcpy(&seq, slot, sizeof(seq));
        char num[24];
        snprintf(num, sizeof(num), "%" PRIu64, seq);
        natsMsg *m = NULL;
        natsStatus s = natsMsg_Create(&m, b->subject, NULL, payload, (int)b->size);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, BRIDGE_HDR_TYPE, b->type);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, BRIDGE_HDR_SEQ, num);
        if (s == NATS_OK)
                s = natsMsgHeader_Set(m, BRIDGE_HDR_SOURCE, b->source);
        if (s == NATS_OK)
                s = natsConnection_PublishMsg(b->nc, m);
        natsMsg_Destroy(m);
        return s;
}

static void *pub_main(void *arg)
{
        struct bridge *b = arg;
        if (bridge_connect(b) != NATS_OK) {
                /* The worker reports it and fails the component. Never connected, there is
                 * no work to send: this returns once fini asks the thread to stop. */
                (void)bridge_wait(b, pub_has_work);
                bridge_thread_end(b);
                return NULL;
        }
        /* Once asked to stop, bridge_wait() still returns true while messages are queued: what
         * the worker handed over is sent (or refused) before the connection closes. */
        while (bridge_wait(b, pub_has_work)) {
                uint64_t t = atomic_load_explicit(&b->tail, memory_order_relaxed);
                uint64_t h = atomic_load_explicit(&b->head, memory_order_acquire);
                for (; t != h; t++) {
                        natsStatus s = pub_send(b, pub_slot(b, t));
                        /* The component says so now (notifies coalesce into one run). */
                        if (s != NATS_OK) {
                                bridge_count(&b->send_failed, 1, s, b);
                                bridge_notify(b);
                        }
                        /* Release, pairs with the worker's acquire load of tail: our reads of
                         * the slot are done before it writes the slot again. */
                        atomic_store_explicit(&b->tail, t + 1, memory_order_release);
                        /* A waiting worker hears of room every 64 slots, so it refills the
                         * ring while the rest is sent. */
                        if (((t + 1) & 63) == 0 || t + 1 == h)
                                pub_tell_room(b);
                }
        }
        if (atomic_load(&b->connected))
                natsConnection_FlushTimeout(b->nc, BRIDGE_CONNECT_TIMEOUT_MS);
        bridge_thread_end(b);
        return NULL;
}

static int pub_init(struct actord_ctx *ctx, void **ret_state)
{
        return bridge_init(ctx, ret_state, false, pub_main);
}

/* Tells the bridge thread of the slots written up to head. */
static void pub_hand_over(struct bridge *b, uint64_t head)
{
        /* Release, pairs with the bridge thread's acquire load of head. */
        atomic_store_explicit(&b->head, head, memory_order_release);
        bridge_wake(b);
}

/* Whether the full ring has room after all, once the worker has asked to be told of room
 * (with a notifier: the bridge thread notifies it when it frees slots); *tail gets the tail
 * seen. */
static bool pub_want_room(struct bridge *b, uint64_t head, uint64_t *tail)
{
        if (!b->notifier)
                return false; /* periodic or loop: it runs again anyway */
        /* seq_cst, with the bridge thread's fence between its store of tail and its load of
         * room_wanted (pub_tell_room()): either it sees the request, or we see its tail. */
        atomic_store(&b->room_wanted, true);
        *tail = atomic_load(&b->tail);
        return head - *tail < b->cap;
}

static int pub_process(struct actord_ctx *ctx, void *state)
{
        struct bridge *b = state;
        uint64_t head = atomic_load_explicit(&b->head, memory_order_relaxed), start = head;
        /* Acquire, pairs with the bridge thread's release store of tail. */
        uint64_t tail = atomic_load_explicit(&b->tail, memory_order_acquire);
        bool did = false;
        struct actord_burst run = {.struct_size = sizeof(run)};
        for (;;) {
                /* Only what the ring has room for is read: the rest waits in the channel, whose
                 * policy decides (overwrite: the oldest go, counted; reject: its producer is
                 * refused and waits; drop_new: the newest go). */
                if (head - tail == b->cap) {
                        /* Full: what is written goes to the bridge thread, which may have freed
                         * slots meanwhile; if not, it is asked to say when it does. */
                        if (head != start) {
                                pub_hand_over(b, head);
                                start = head;
                        }
                        tail = atomic_load_explicit(&b->tail, memory_order_acquire);
                        if (head - tail == b->cap && !pub_want_room(b, head, &tail))
                                break;
                }
                uint64_t room = b->cap - (head - tail);
                uint32_t k = actord_next_n(ctx, 0, room < 64 ? (uint32_t)room : 64, &run);
                if (!k)
                        break;
                did = true;
                for (uint32_t i = 0; i < k; i++, head++) {
                        unsigned char *slot = pub_slot(b, head);
                        uint64_t seq = run.seq + i;
                        memcpy(slot, &seq, sizeof(seq));
                        memcpy(slot + sizeof(seq), (const char *)run.first + i * run.stride,
                               b->size);
                }
        }
        if (head != start)
                pub_hand_over(b, head);
        /* After the run's own counts: the counters and the log have them at once. */
        if (!bridge_report(ctx, b))
                return ACTORD_ERROR;
        /* IDLE with messages left in the channel: the next message, or the bridge thread's
         * notify once it frees slots, runs it again; not a spin on a full ring. */
        return did ? ACTORD_OK : ACTORD_IDLE;
}

static const struct actord_port pub_in[] = {
    {.name = "in",
     .type = ACTORD_TYPE_GENERIC,
     .help = "messages of any type, each sent as one NATS message of the same bytes"},
};

static const struct actord_setting pub_settings[] = {
    BRIDGE_SETTING_URL,
    BRIDGE_SETTINGS_TLS,
    BRIDGE_SETTINGS_NKEY,
    {.name = "subject",
     .type = ACTORD_SETTING_STRING,
     .required = true,
     .help = "the subject to publish to (no wildcards)"},
    {.name = "queue",
     .type = ACTORD_SETTING_INT,
     .default_value = "1024",
     .help = "messages held for the sending thread (rounded up to a power of two); beyond "
             "them they wait in the input channel, whose policy decides"},
    {.name = "headers",
     .type = ACTORD_SETTING_BOOL,
     .default_value = "true",
     .help = "send " BRIDGE_HDR_TYPE ", " BRIDGE_HDR_SEQ " and " BRIDGE_HDR_SOURCE
             " headers (false: the payload "
             "alone, cheaper)"},
    {.name = "batch",
     .type = ACTORD_SETTING_BOOL,
     .default_value = "false",
     .help = "let the client library gather messages into fewer writes: more messages per "
             "second, about a millisecond more latency (false: each message is written at "
             "once)"},
};

const struct actord_class nats_publish_class = {
    .struct_size = sizeof(struct actord_class),
    .name = "nats.publish",
    .description = "sends each message of its input to a NATS subject",
    .shape = ACTORD_SHAPE_SINK,
    .rules = ACTORD_RULE_ON_MESSAGE | ACTORD_RULE_PERIODIC | ACTORD_RULE_LOOP,
    .default_rule = ACTORD_RULE_ON_MESSAGE,
    .inputs = pub_in,
    .n_inputs = 1,
    .settings = pub_settings,
    .n_settings = sizeof(pub_settings) / sizeof(pub_settings[0]),
    .init = pub_init,
    .process = pub_process,
    .fini = bridge_fini,
};
