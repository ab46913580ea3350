/* The NATS bridge plugin: nats.publish sends a channel's messages to a NATS subject, and
 * nats.subscribe feeds a subject's messages into a channel (libnats, Debian's libnats-dev).
 *
 * Neither ever blocks its worker. libnats does its socket I/O on threads of its own, and a
 * publish can still block on a full socket buffer, so each component has a thread of its own
 * ("bridge thread") that connects and, for nats.publish, sends; the worker hands messages over
 * through a bounded ring and never waits for it. When the publisher's ring is full, messages
 * wait in its input channel, whose policy decides; when the subscriber's is full, the message
 * is dropped and counted: core NATS is at-most-once with slow-consumer drops, the contract of
 * a channel.
 *
 * Threads and lifetimes. A struct bridge is shared by the worker (init, process, fini), its
 * bridge thread and libnats's callback threads. The bridge thread owns the connection: it
 * connects, and once fini asks it to stop, it closes the connection and waits for libnats's
 * last callback (closed, and for a subscription its on-complete callback) before it lets the
 * memory go. fini waits for that a quarter of a second at most (the thread's end then runs its
 * thread-local destructors before the process exits), so a server that does not answer cannot
 * hold the worker. Both sides hold a reference; the last one frees. The plugin is linked with
 * -z nodelete, so libnats's threads never outlive the code they run.
 *
 * Nothing on a libnats or bridge thread calls the host, which is for the worker only, except
 * actord_notify() (any thread), and that only until fini says closing. What the other threads
 * see (connects, disconnects, errors, drops) they count in atomics, and the component logs it
 * from its worker the next time it runs: at once for connection events and failures, which
 * notify it (the subscriber is on_event; the publisher, on_message, takes its notifier too),
 * at its next run for drops. */
#ifndef ACTORD_NATS_BRIDGE_H
#define ACTORD_NATS_BRIDGE_H

#include <actord/plugin.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Headers that nats.publish puts on each message and nats.subscribe checks. */
#define BRIDGE_HDR_TYPE "Actord-Type"     /* "<type name>/<payload bytes>" */
#define BRIDGE_HDR_SEQ "Actord-Seq"       /* the message's sequence number in its channel */
#define BRIDGE_HDR_SOURCE "Actord-Source" /* "<host name>/<component>": whose Actord-Seq */
/* Publishers a subscriber follows apart, for gaps; beyond them the least recent is forgotten. */
#define BRIDGE_SOURCES_MAX 64

#define BRIDGE_URL_DEFAULT "nats://127.0.0.1:4222"
#define BRIDGE_SERVERS_MAX 64 /* in one url setting */
#define BRIDGE_QUEUE_DEFAULT 1024
#define BRIDGE_QUEUE_MAX (1 << 20)
/* How long a connect attempt may take, and libnats's pause between reconnect attempts. */
#define BRIDGE_CONNECT_TIMEOUT_MS 2000
#define BRIDGE_RECONNECT_WAIT_MS 250
/* How long the bridge thread waits for libnats's last callbacks when it stops. */
#define BRIDGE_CLOSE_WAIT_MS 5000
/* How long fini waits for the bridge thread: well inside stall_ms. */
#define BRIDGE_JOIN_MS 250

/* A count some thread adds to and the worker reports, at once the first time and then at most
 * every BRIDGE_TELL_NS, with the total so far. */
struct bridge_tally {
        _Atomic uint64_t count;
        uint64_t told;    /* worker: the count last reported */
        uint64_t told_ns; /* worker: when */
        int counter;      /* worker: its actord_counter() id, or negative for none */
        uint64_t counted; /* worker: the count last added to the counter */
};
#define BRIDGE_TELL_NS 10000000000ull

struct bridge {
        /* Immutable after bridge_create(). */
        bool subscriber;
        char *url;     /* as configured */
        char *shown;   /* the url without a password, for the log */
        char *subject; /* to publish to, or to subscribe to */
        char *group;   /* queue group of a subscriber, or NULL */
        char *type;    /* "<type name>/<payload bytes>", as in BRIDGE_HDR_TYPE */
        uint32_t size; /* payload bytes */
        bool headers;  /* publisher: send BRIDGE_HDR_* */
        bool batch;    /* publisher: let libnats gather writes (else each message at once) */
        uint32_t cap;  /* ring slots, a power of two */
        struct actord_notifier *notifier; /* wakes its component, or NULL */
        /* TLS (any of them, or a tls:// url, asks for it): files of PEM certificates to trust,
         * the component's own certificate chain and key, the name expected in the server's
         * certificate. NULL: none. */
        char *tls_ca, *tls_cert, *tls_key, *tls_hostname;
        /* NKey authentication: the public key and the file of its seed, or NULL; or a
         * credentials file (a user JWT and its seed), or NULL. */
        char *nkey, *nkey_seed, *creds;

        /* The ring from producer to consumer: the worker to the bridge thread (publisher), a
         * libnats delivery thread to the worker (subscriber). */
        unsigned char *slots; /* publisher: cap slots of slot_size bytes */
        natsMsg **msgs;       /* subscriber: cap messages */
        size_t slot_size;
        _Atomic uint64_t head; /* written by the producer */
        _Atomic uint64_t tail; /* written by the consumer */
        /* Publisher: the worker found the ring full and wants a notify when slots are free. */
        atomic_bool room_wanted;

        /* Waking the bridge thread: it sets `sleeping` before it checks for work and blocks on
         * `wake` (an eventfd); whoever gives it work checks `sleeping` after publishing it. */
        int wake;
        atomic_bool sleeping;
        atomic_bool stop; /* fini asks the bridge thread to stop */

        /* With a notifier: fini sets `closing`, then waits until no thread is in the middle of
         * using it (`in_callback`, bridge_notify()). */
        atomic_bool closing;
        _Atomic int in_callback;

        /* libnats's end of the connection's life (closed callback, subscription complete). */
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool closed;       /* under lock */
        bool sub_complete; /* under lock */

        pthread_t thread;
        natsConnection *nc;    /* bridge thread's */
        natsSubscription *sub; /* bridge thread's */
        _Atomic int refs;

        /* What happened, for the worker to report. */
        atomic_bool connected;
        atomic_bool ready;         /* subscriber: the server confirmed the subscription */
        _Atomic uint64_t connects; /* connections made, reconnects included */
        bool ready_told;           /* worker */
        uint64_t connects_told;    /* worker */
        struct bridge_tally disconnects;
        struct bridge_tally queue_full;  /* subscriber: messages dropped, the ring full */
        struct bridge_tally send_failed; /* publisher: libnats refused the publish */
        struct bridge_tally bad;         /* subscriber: wrong size or type, not delivered */
        struct bridge_tally gaps;        /* subscriber: messages missing by BRIDGE_HDR_SEQ */
        struct bridge_tally slow;        /* subscriber: dropped by libnats (slow consumer) */
        _Atomic int last_status;         /* natsStatus of the last failure */
        _Atomic int failed;              /* natsStatus: the bridge cannot work (connect or
                                          * subscribe refused for good); 0: fine */
        char failed_why[256];            /* libnats's words for it, set before `failed` */
        uint64_t confirmed_for;          /* subscriber's thread: `connects` when the server
                                          * last confirmed the subscription */
        char bad_why[160];               /* under lock: the last bad message, in words */
        char *source;                    /* publisher: its BRIDGE_HDR_SOURCE */
        /* Subscriber's delivery thread: the last BRIDGE_HDR_SEQ of each publisher seen (by its
         * BRIDGE_HDR_SOURCE; "" for messages without it), the most recently heard first. */
        struct bridge_source {
                char *name;
                uint64_t last_seq;
        } sources[BRIDGE_SOURCES_MAX];
        int n_sources;
};

/* Both classes' init: reads the settings, makes the bridge and starts its thread, which
 * connects and runs `main` (publisher: sends; subscriber: subscribes and waits). Returns 0
 * and the bridge in *ret_state, or a negative errno after actord_set_error(). */
int bridge_init(struct actord_ctx *ctx, void **ret_state, bool subscriber, void *(*main)(void *));
/* Both classes' fini: asks the bridge thread to stop, gives it BRIDGE_JOIN_MS to finish (it
 * sends what it holds and closes the connection), then lets it go on alone, and drops the
 * worker's reference. Accepts NULL. */
void bridge_fini(struct actord_ctx *ctx, void *state);

/* The settings both classes have. */
#define BRIDGE_SETTING_URL                                                                         \
        {                                                                                          \
                .name = "url", .type = ACTORD_SETTING_STRING, .default_value = BRIDGE_URL_DEFAULT, \
                .help = "the server, or several separated by commas: "                             \
                        "nats://[user:password@]host[:port] (tls://... for TLS)"                   \
        }
#define BRIDGE_SETTINGS_TLS                                                                        \
        {.name = "tls_ca",                                                                         \
         .type = ACTORD_SETTING_STRING,                                                            \
         .help = "a PEM file of the certificates that may sign the server's (implies TLS)"},       \
            {.name = "tls_cert",                                                                   \
             .type = ACTORD_SETTING_STRING,                                                        \
             .help = "a PEM file of this client's certificate chain, for a server that asks for "  \
                     "one (with tls_key)"},                                                        \
            {.name = "tls_key",                                                                    \
             .type = ACTORD_SETTING_STRING,                                                        \
             .help = "the PEM file of tls_cert's private key"},                                    \
        {                                                                                          \
                .name = "tls_hostname", .type = ACTORD_SETTING_STRING,                             \
                .help = "the name the server's certificate must carry, where it is not the url's " \
                        "host"                                                                     \
        }
#define BRIDGE_SETTINGS_NKEY                                                                       \
        {.name = "nkey",                                                                           \
         .type = ACTORD_SETTING_STRING,                                                            \
         .help = "the public NKey (U...) this client signs in as, for a server that authorises "   \
                 "NKeys (with nkey_seed)"},                                                        \
            {.name = "nkey_seed",                                                                  \
             .type = ACTORD_SETTING_STRING,                                                        \
             .help = "the file of nkey's seed (SU...), readable by actord alone"},                 \
        {                                                                                          \
                .name = "creds", .type = ACTORD_SETTING_STRING,                                    \
                .help = "a credentials file (a user JWT and its seed, as `nsc` writes it) for a "  \
                        "server in operator mode; not with nkey"                                   \
        }
/* Bridge thread: connects (retrying in the background if the server is not there). */
natsStatus bridge_connect(struct bridge *b);
/* Bridge thread: its end (closes, waits for libnats's last callbacks, drops its reference). */
void bridge_thread_end(struct bridge *b);
/* Bridge thread: blocks until woken, unless `has_work` says there is work; returns false once
 * asked to stop and has_work() is false. */
bool bridge_wait(struct bridge *b, bool (*has_work)(struct bridge *b));
/* Gives the bridge thread work it may be sleeping through. */
void bridge_wake(struct bridge *b);
/* Bridge thread: subscribes with handler on_msg (its closure: the bridge). */
natsStatus bridge_subscribe(struct bridge *b, natsMsgHandler on_msg);
/* Any thread but the worker's: makes the component run, unless fini began or it has no
 * notifier. */
void bridge_notify(struct bridge *b);
/* Worker: logs what happened since the last report. Returns false, after actord_set_error(),
 * when the bridge failed for good (the component then fails, for its restart policy). */
bool bridge_report(struct actord_ctx *ctx, struct bridge *b);
/* Adds n to a tally (any thread). */
void bridge_count(struct bridge_tally *t, uint64_t n, natsStatus why, struct bridge *b);

extern const struct actord_class nats_publish_class;
extern const struct actord_class nats_subscribe_class;

#endif
