/* actord plugin ABI, version 1.3.
 *
 * The only header a plugin includes. A plugin is a shared object that exports exactly one
 * symbol, ACTORD_PLUGIN_SYMBOL, a const struct actord_plugin describing its component classes.
 * Plugins never link against the daemon: every service the daemon offers is reached through
 * the function table (struct actord_host) that the context passed to each callback points to,
 * so the same .so loads unchanged in the daemon, in tests and in benchmarks.
 *
 * Compatibility rules
 * - Every boundary struct starts with abi_major, abi_minor, struct_size (or struct_size alone
 *   where it is nested in one that has the versions). The daemon refuses a plugin whose
 *   abi_major differs from its own and reads only struct_size bytes of each struct, so a minor
 *   version may append fields at the end and nothing else.
 * - The host table only grows by appending; a plugin built against minor N may call the
 *   entries of minor N when host->abi_minor >= N.
 *
 * Threads. init, process and fini of one component are called on the worker thread that owns
 * the component, never concurrently with each other. The host functions are for that thread
 * only, except actord_notify(), which any thread may call. None of them blocks.
 */
#ifndef ACTORD_PLUGIN_H
#define ACTORD_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ACTORD_ABI_MAJOR 1
#define ACTORD_ABI_MINOR 3

/* The name of the one symbol a plugin exports: a const struct actord_plugin. */
#define ACTORD_PLUGIN_SYMBOL actord_plugin_v1
#define ACTORD_PLUGIN_SYMBOL_NAME "actord_plugin_v1"

#if defined(__GNUC__)
#define ACTORD_EXPORT __attribute__((visibility("default")))
#define ACTORD_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define ACTORD_EXPORT
#define ACTORD_PRINTF(fmt, args)
#endif

/* Connection shape of a component class. The shape fixes how many ports of each direction a
 * class declares and how many the configuration may wire:
 *   SOURCE  0 in, 1 out          SINK    1 in, 0 out         FILTER  1 in, 1 out
 *   SCATTER 1 in, N outs, all outputs of one type (the class declares one output port, the
 *           configuration wires out[0] .. out[N-1])
 *   GATHER  N ins of one type, 1 out (the class declares one input port, likewise)
 *   YSPLIT  1 in, 2 outs of different types     YMERGE  2 ins of different types, 1 out */
enum actord_shape {
        ACTORD_SHAPE_SOURCE = 1,
        ACTORD_SHAPE_SINK = 2,
        ACTORD_SHAPE_FILTER = 3,
        ACTORD_SHAPE_SCATTER = 4,
        ACTORD_SHAPE_GATHER = 5,
        ACTORD_SHAPE_YSPLIT = 6,
        ACTORD_SHAPE_YMERGE = 7,
};

/* Scheduling rules, as bits: a class says which ones it supports and which is its default;
 * the configuration picks one per component.
 *   LOOP        run on every iteration of the worker, round-robin with the others;
 *   ON_MESSAGE  run when at least one input has unread messages;
 *   PERIODIC    run every N microseconds against absolute deadlines; missed periods are
 *               counted, not run in a burst;
 *   ON_EVENT    run when an fd registered with actord_watch_fd() is ready or someone called
 *               actord_notify().
 * An ON_MESSAGE component that takes its notifier (actord_notifier(), ABI 1.3) also runs when
 * notified, with or without a message to read. */
enum actord_rule {
        ACTORD_RULE_LOOP = 1u << 0,
        ACTORD_RULE_ON_MESSAGE = 1u << 1,
        ACTORD_RULE_PERIODIC = 1u << 2,
        ACTORD_RULE_ON_EVENT = 1u << 3,
};

/* What process() returns. */
enum actord_status {
        ACTORD_OK = 0,   /* did work; the rule decides when it runs next */
        ACTORD_IDLE = 1, /* found nothing to do: do not rerun until the rule fires again */
        ACTORD_DONE = 2, /* finished for good: fini is called and the component stops */
        ACTORD_ERROR = -1,
        /* any negative value is an error: the supervisor restarts or stops the component */
};

/* A message type: a name and the size of its payload in bytes. Two ports match when both
 * are equal. A port whose type name is ACTORD_TYPE_GENERIC takes the type of what it is
 * wired to; all generic ports of one component take the same type. */
#define ACTORD_TYPE_GENERIC "*"

struct actord_port {
        const char *name; /* "in", "out", "left", ...: unique within its direction */
        const char *type; /* "core.sample", or ACTORD_TYPE_GENERIC */
        uint32_t size;    /* payload bytes; ignored for generic ports */
        const char *help;
};

enum actord_setting_type {
        ACTORD_SETTING_INT = 1,    /* int64_t */
        ACTORD_SETTING_FLOAT = 2,  /* double */
        ACTORD_SETTING_BOOL = 3,   /* bool */
        ACTORD_SETTING_STRING = 4, /* const char *, valid until fini */
};

/* A setting a class accepts in its component's `settings` group. Keys the class does not
 * declare are configuration errors. */
struct actord_setting {
        const char *name;
        enum actord_setting_type type;
        bool required;
        const char *default_value; /* as text, for documentation and --list-plugins */
        const char *help;
};

/* Metadata the host gives with each message read. */
struct actord_msg_info {
        uint64_t seq;         /* sequence number within its channel, from 0 */
        uint64_t lost_before; /* messages lost between the previous one read and this one */
        uint64_t publish_ns;  /* CLOCK_MONOTONIC time of the producer's run that published it */
};

/* A run of consecutive messages of one input, read at once by actord_next_n() (ABI 1.1). The
 * caller sets struct_size; the host fills the rest. */
struct actord_burst {
        uint32_t struct_size; /* sizeof(struct actord_burst), set by the caller */
        uint32_t count;       /* messages in the run; 0: none readable */
        const void *first;    /* message 0; message i is at (const char *)first + i * stride */
        size_t stride;        /* bytes from one message to the next */
        uint64_t seq;         /* sequence number of message 0; message i has seq + i */
        uint64_t lost_before; /* messages lost just before message 0 (none within the run) */
        uint64_t publish_ns;  /* publish time of message 0; the others: actord_burst_publish_ns */
        const void *host_ref; /* the host's, for actord_burst_publish_ns() */
        size_t host_stride;   /* the host's */
};

struct actord_ctx;
struct actord_notifier;
struct actord_host;

/* Public heads of the context and notifier handles: the daemon's own state follows them. */
struct actord_ctx {
        const struct actord_host *host;
};
struct actord_notifier {
        const struct actord_host *host;
};

/* The services the daemon offers, reached through ctx->host; see the actord_* inline
 * wrappers below for each entry's contract. */
struct actord_host {
        uint32_t abi_major;
        uint32_t abi_minor;
        uint32_t struct_size;

        /* ABI 1.0 */
        void *(*claim)(struct actord_ctx *ctx, uint32_t out);
        void (*publish)(struct actord_ctx *ctx, uint32_t out);
        const void *(*next)(struct actord_ctx *ctx, uint32_t in, struct actord_msg_info *ret_info);
        uint32_t (*port_count)(struct actord_ctx *ctx, bool output);
        uint32_t (*port_size)(struct actord_ctx *ctx, bool output, uint32_t port);
        const char *(*port_type)(struct actord_ctx *ctx, bool output, uint32_t port);
        int (*setting_int)(struct actord_ctx *ctx, const char *name, int64_t *ret);
        int (*setting_float)(struct actord_ctx *ctx, const char *name, double *ret);
        int (*setting_bool)(struct actord_ctx *ctx, const char *name, bool *ret);
        int (*setting_string)(struct actord_ctx *ctx, const char *name, const char **ret);
        void (*log)(struct actord_ctx *ctx, int priority, const char *fmt, ...) ACTORD_PRINTF(3, 4);
        uint64_t (*now_ns)(struct actord_ctx *ctx);
        const char *(*name)(struct actord_ctx *ctx);
        int (*watch_fd)(struct actord_ctx *ctx, int fd, uint32_t events);
        struct actord_notifier *(*notifier)(struct actord_ctx *ctx);
        void (*notify)(struct actord_notifier *notifier);
        void (*set_error)(struct actord_ctx *ctx, const char *fmt, ...) ACTORD_PRINTF(2, 3);

        /* ABI 1.1 */
        void *(*claim_n)(struct actord_ctx *ctx, uint32_t out, uint32_t n, uint32_t *ret_count,
                         size_t *ret_stride);
        uint32_t (*next_n)(struct actord_ctx *ctx, uint32_t in, uint32_t max,
                           struct actord_burst *ret);
        uint64_t (*burst_publish_ns)(struct actord_ctx *ctx, const struct actord_burst *burst,
                                     uint32_t i);

        /* ABI 1.2 */
        int (*counter)(struct actord_ctx *ctx, const char *name, const char *help);
        void (*count)(struct actord_ctx *ctx, int counter, uint64_t n);
};

/* Whether the host table has `member`: a daemon of an earlier minor version has a shorter
 * table. The ABI 1.1 wrappers below fall back to the 1.0 calls where it has not. */
#define ACTORD_HOST_HAS(host, member)                                                              \
        ((host)->struct_size >= offsetof(struct actord_host, member) + sizeof((host)->member))

/* A component class. */
struct actord_class {
        uint32_t struct_size;    /* sizeof(struct actord_class) as the plugin was built */
        const char *name;        /* "family.name", unique across all plugins */
        const char *description; /* one line */
        enum actord_shape shape;
        uint32_t rules; /* bitwise or of enum actord_rule it supports */
        enum actord_rule default_rule;
        const struct actord_port *inputs;
        uint32_t n_inputs;
        const struct actord_port *outputs;
        uint32_t n_outputs;
        const struct actord_setting *settings;
        uint32_t n_settings;

        /* Builds the component's state from its settings. Returns 0 and sets *ret_state, or a
         * negative errno after actord_set_error() saying why. Optional. */
        int (*init)(struct actord_ctx *ctx, void **ret_state);
        /* One run: read inputs, publish outputs. Must not block. Returns enum actord_status. */
        int (*process)(struct actord_ctx *ctx, void *state);
        /* Releases the state; accepts whatever init left, NULL included. Optional. */
        void (*fini)(struct actord_ctx *ctx, void *state);
        /* Prints one message of input or output `port` (an index into the class's inputs or
         * outputs: a fan's many ports are its one declared port) into buf for `actorctl tap`;
         * returns what snprintf would (a negative value: the daemon prints the bytes). Called on
         * the daemon's main thread, on a copy of the message, while the component runs: it may read
         * `msg` only (no state, no host calls). Optional. */
        int (*format)(const void *msg, bool output, uint32_t port, char *buf, size_t len);
};

/* The descriptor a plugin exports as ACTORD_PLUGIN_SYMBOL. */
struct actord_plugin {
        uint32_t abi_major;   /* ACTORD_ABI_MAJOR */
        uint32_t abi_minor;   /* ACTORD_ABI_MINOR */
        uint32_t struct_size; /* sizeof(struct actord_plugin) */
        const char *name;
        const char *version;
        const char *description;
        const struct actord_class *const *classes;
        uint32_t n_classes;
};

/* Declares the descriptor with the right name and visibility:
 *   ACTORD_PLUGIN_DEFINE = { .abi_major = ACTORD_ABI_MAJOR, ... }; */
#define ACTORD_PLUGIN_DEFINE                                                                       \
        ACTORD_EXPORT extern const struct actord_plugin ACTORD_PLUGIN_SYMBOL;                      \
        const struct actord_plugin ACTORD_PLUGIN_SYMBOL

/* Log priorities (syslog's). */
enum {
        ACTORD_LOG_ERR = 3,
        ACTORD_LOG_WARNING = 4,
        ACTORD_LOG_NOTICE = 5,
        ACTORD_LOG_INFO = 6,
        ACTORD_LOG_DEBUG = 7,
};

/* Returns a slot of output `out` to fill with one message of the port's size, or NULL when the
 * channel's overflow policy is `reject` and it is full (keep the message and try in a later
 * run). Calling it again before actord_publish() returns the same slot. Owning thread only;
 * never blocks, never allocates. */
static inline void *actord_claim(struct actord_ctx *ctx, uint32_t out)
{
        return ctx->host->claim(ctx, out);
}

/* Commits the slot claimed on `out`. The consumer sees it at the latest when process()
 * returns. Under `overwrite` the oldest unread message may be replaced; under `drop_new` this
 * message may be dropped; either loss is counted and shows as a sequence gap to the reader. */
static inline void actord_publish(struct actord_ctx *ctx, uint32_t out)
{
        ctx->host->publish(ctx, out);
}

/* Claims up to `n` (>= 1) consecutive slots of output `out` for the next messages: returns the
 * first, sets *ret_count to how many were claimed and *ret_stride to the bytes from one slot to
 * the next (message i goes to (char *)first + i * *ret_stride). The count can be below n: the
 * end of the ring, or the room left under `reject`/`drop_new`; fill and publish those, then
 * claim again. Returns NULL and a count of 0 under `reject` when the channel is full; under
 * `drop_new` with the channel full, one slot whose message is dropped (and counted) when
 * published. One actord_publish() commits every slot claimed, in order. Claiming again before
 * that starts again from the same first slot (the later count decides). Owning thread only;
 * never blocks, never allocates. ABI 1.1; a 1.0 daemon claims one slot at a time. */
static inline void *actord_claim_n(struct actord_ctx *ctx, uint32_t out, uint32_t n,
                                   uint32_t *ret_count, size_t *ret_stride)
{
        if (ACTORD_HOST_HAS(ctx->host, claim_n))
                return ctx->host->claim_n(ctx, out, n, ret_count, ret_stride);
        void *p = ctx->host->claim(ctx, out);
        *ret_count = p ? 1 : 0;
        *ret_stride = ctx->host->port_size(ctx, true, out);
        return p;
}

/* Returns the oldest unread message of input `in` and fills *ret_info (may be NULL), or NULL
 * when none is readable. The pointer is valid until the next call on that input or until
 * process() returns. */
static inline const void *actord_next(struct actord_ctx *ctx, uint32_t in,
                                      struct actord_msg_info *ret_info)
{
        return ctx->host->next(ctx, in, ret_info);
}

/* Reads up to `max` (>= 1) consecutive unread messages of input `in` at once, oldest first,
 * into *ret (whose struct_size the caller set): returns their count, 0 when none is readable.
 * A run has no gap inside: losses show as ret->lost_before of the run they precede. The
 * messages are read in place where the channel allows it (`drop_new`, `reject`); under
 * `overwrite`, where the producer may write over a message while it is read, each is copied out
 * (and checked whole) first: a run is then at most 32 messages, and at most 16 KiB of them (at
 * least one). They stay valid until the next read of that input or until process() returns.
 * Owning thread only; never blocks. ABI 1.1; a 1.0 daemon reads one message at a time. */
static inline uint32_t actord_next_n(struct actord_ctx *ctx, uint32_t in, uint32_t max,
                                     struct actord_burst *ret)
{
        if (ACTORD_HOST_HAS(ctx->host, next_n))
                return ctx->host->next_n(ctx, in, max, ret);
        struct actord_msg_info info;
        const void *m = ctx->host->next(ctx, in, &info);
        ret->count = m ? 1 : 0;
        ret->first = m;
        ret->stride = ctx->host->port_size(ctx, false, in);
        ret->seq = m ? info.seq : 0;
        ret->lost_before = m ? info.lost_before : 0;
        ret->publish_ns = m ? info.publish_ns : 0;
        ret->host_ref = NULL;
        ret->host_stride = 0;
        return ret->count;
}

/* The publish time of message i (< count) of a run read by actord_next_n(). */
static inline uint64_t actord_burst_publish_ns(struct actord_ctx *ctx,
                                               const struct actord_burst *burst, uint32_t i)
{
        if (i == 0 || !ACTORD_HOST_HAS(ctx->host, burst_publish_ns))
                return burst->publish_ns;
        return ctx->host->burst_publish_ns(ctx, burst, i);
}

/* Number of wired input (output == false) or output ports: fixed for scatter/gather by the
 * configuration. */
static inline uint32_t actord_port_count(struct actord_ctx *ctx, bool output)
{
        return ctx->host->port_count(ctx, output);
}

/* Payload size of a port, resolved for generic ports. */
static inline uint32_t actord_port_size(struct actord_ctx *ctx, bool output, uint32_t port)
{
        return ctx->host->port_size(ctx, output, port);
}

/* Message type name of a port, resolved for generic ports; NULL for a port that does not
 * exist. Valid until fini. */
static inline const char *actord_port_type(struct actord_ctx *ctx, bool output, uint32_t port)
{
        return ctx->host->port_type(ctx, output, port);
}

/* Settings: return 0 and fill *ret, -ENOENT when the setting is absent (use the default) or
 * -EINVAL when it has another type. */
static inline int actord_setting_int(struct actord_ctx *ctx, const char *name, int64_t *ret)
{
        return ctx->host->setting_int(ctx, name, ret);
}
static inline int actord_setting_float(struct actord_ctx *ctx, const char *name, double *ret)
{
        return ctx->host->setting_float(ctx, name, ret);
}
static inline int actord_setting_bool(struct actord_ctx *ctx, const char *name, bool *ret)
{
        return ctx->host->setting_bool(ctx, name, ret);
}
static inline int actord_setting_string(struct actord_ctx *ctx, const char *name, const char **ret)
{
        return ctx->host->setting_string(ctx, name, ret);
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t actord_now_ns(struct actord_ctx *ctx)
{
        return ctx->host->now_ns(ctx);
}

/* The component's name in the configuration. */
static inline const char *actord_name(struct actord_ctx *ctx)
{
        return ctx->host->name(ctx);
}

/* Registers fd for an ON_EVENT component (events: EPOLLIN/EPOLLOUT bits); call from init.
 * Returns 0 or a negative errno. */
static inline int actord_watch_fd(struct actord_ctx *ctx, int fd, uint32_t events)
{
        return ctx->host->watch_fd(ctx, fd, events);
}

/* The handle that makes this ON_EVENT or ON_MESSAGE component run when passed to
 * actord_notify(). It works from the start of init to the end of fini; a notify outside that
 * does nothing (a thread that outlives fini cannot wake, or reach, a component that is gone),
 * but fini must still stop the threads that use it: the plugin's code may be unloaded after
 * fini. NULL for a component scheduled otherwise (LOOP and PERIODIC run anyway), and for an
 * ON_MESSAGE one under a daemon older than 1.3 (host->abi_minor < 3). An ON_MESSAGE component
 * that takes it, in init, is one any thread may mark ready: a thread of the plugin's that has
 * something to report (a connection lost, a write failed) has it run without a message, at
 * the cost of an atomic exchange (instead of a plain store) each time a producer on the same
 * worker makes it ready. */
static inline struct actord_notifier *actord_notifier(struct actord_ctx *ctx)
{
        return ctx->host->notifier(ctx);
}

/* Makes the component of `notifier` run soon. Thread safe: any thread may call it, including
 * threads actord does not own. Never blocks; several calls before the run coalesce into one. */
static inline void actord_notify(struct actord_notifier *notifier)
{
        notifier->host->notify(notifier);
}

/* Counters of the component's own (ABI 1.2): counts the daemon shows beside its own, in
 * `actorctl stats` and as the metric actord_plugin_<class>_<name>_total{component="..."}
 * (<class> with its dot as an underscore: nats.subscribe's queue_full is
 * actord_plugin_nats_subscribe_queue_full_total). actord_counter() declares one, in init:
 * `name` is [a-z][a-z0-9_]* (at most 48 characters), `help` one line; it returns the id to
 * pass to actord_count(), or a negative errno (-EINVAL: a bad name; -ENOSPC: more than
 * ACTORD_COUNTERS_MAX; -ENOTSUP: a daemon older than 1.2, where actord_count() does nothing).
 * Declaring a name again (init after a restart) returns the same counter, with its count: the
 * counts are the component's since it was created, as its runs are. actord_count() adds n;
 * owning thread only, no system call, no lock (a relaxed add on the component's own line). */
#define ACTORD_COUNTERS_MAX 16

static inline int actord_counter(struct actord_ctx *ctx, const char *name, const char *help)
{
        if (!ACTORD_HOST_HAS(ctx->host, counter))
                return -95; /* -ENOTSUP, without <errno.h> */
        return ctx->host->counter(ctx, name, help);
}

static inline void actord_count(struct actord_ctx *ctx, int counter, uint64_t n)
{
        if (counter >= 0 && ACTORD_HOST_HAS(ctx->host, count))
                ctx->host->count(ctx, counter, n);
}

/* actord_log(ctx, ACTORD_LOG_INFO, "fmt", ...): one log line attributed to the component.
 * actord_set_error(ctx, "fmt", ...): the reason init or process failed, shown to the user. */
#define actord_log(ctx, priority, ...) ((ctx)->host->log((ctx), (priority), __VA_ARGS__))
#define actord_set_error(ctx, ...) ((ctx)->host->set_error((ctx), __VA_ARGS__))

#ifdef __cplusplus
}
#endif

#endif /* ACTORD_PLUGIN_H */
