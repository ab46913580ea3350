/* The configuration model: actord.conf (libconfig syntax) read into plain structs, each node
 * with the file and line it came from. This level checks syntax, keys, value types and ranges;
 * what needs the plugins (classes, ports, settings, types) is checked by topology.c. */
#ifndef ACTORD_CONFIG_H
#define ACTORD_CONFIG_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

#include "channel.h"
#include "diag.h"

enum idle_policy {
        IDLE_SLEEP = 0,
        IDLE_SPIN = 1,
        IDLE_ADAPTIVE = 2,
};

#define CONFIG_SPIN_US_DEFAULT 50u
#define CONFIG_STALL_MS_DEFAULT 1000u

/* When a component is restarted after its run ends (restart.h). */
enum restart_mode {
        RESTART_TRANSIENT = 0, /* after an error (process or init), not after DONE */
        RESTART_PERMANENT = 1, /* after an error and after DONE */
        RESTART_NEVER = 2,     /* an error stops it for good (until a reload) */
};

/* A component's supervision: `restart`, `max_restarts`, `restart_window_s`, `backoff_ms`,
 * `on_failure` (defaults in the actord group, per component below it). */
struct config_restart {
        enum restart_mode mode;
        uint32_t max_restarts; /* within window_ms of the first of them */
        uint32_t window_ms;
        uint32_t backoff_ms;  /* delay before the first restart of a window; doubles for each
                               * further one, up to RESTART_BACKOFF_MAX_MS or backoff_ms */
        bool exit_on_failure; /* on_failure = "exit": past the limit, the daemon stops with an
                               * error (for systemd to restart it); "continue": the rest runs */
};

#define CONFIG_RESTART_DEFAULT                                                                     \
        ((struct config_restart){                                                                  \
            .mode = RESTART_TRANSIENT, .max_restarts = 5, .window_ms = 10000, .backoff_ms = 100})

struct config_worker {
        int cpu;
        bool cpu_auto;   /* no cpu given: the next CPU no other worker names */
        int shares_with; /* -1, or the worker whose CPU this one shares (more workers than
                          * CPUs, some without a cpu) */
        enum idle_policy idle;
        uint32_t spin_us; /* adaptive: how long to spin before sleeping */
        const char *file;
        int line;
};

/* One end of a link: "comp.port" or "comp.port[index]". index is -1 when not given. */
struct config_endpoint {
        char *component;
        char *port;
        int index;
};

struct config_link {
        struct config_endpoint from;
        struct config_endpoint to;
        uint32_t capacity;
        enum channel_policy policy;
        const char *file;
        int line;
};

struct config_component {
        char *name;
        char *class_name;
        uint32_t rule;         /* an enum actord_rule bit, or 0: the class's default */
        uint64_t every_us;     /* periodic */
        bool schedule_invalid; /* reported by config_load; not to be checked again */
        int worker;            /* index into workers, or -1: automatic placement */
        struct config_restart restart;
        const config_setting_t *settings; /* the `settings` group, or NULL */
        char *type; /* `type`: the message type its generic ports take, or NULL */
        const char *file;
        int line;
};

/* A user of the HTTP metrics (actord.metrics_users): a name and its crypt(5) hash. */
struct config_metrics_user {
        char *name;
        char *hash;
};

struct config {
        config_t cfg; /* kept: settings and file names point into it */
        char *path;
        char **plugin_dirs; /* absolute, or relative to the working directory */
        int n_plugin_dirs;
        bool plugin_strict_modes; /* refuse plugins writable by others (default true) */
        uint32_t stall_ms;        /* a run longer than this stalls its worker (ms) */
        char *metrics_listen;     /* "host:port" of the HTTP metrics, or NULL: none */
        const char *metrics_file; /* where metrics_listen was set, for errors */
        int metrics_line;
        /* HTTPS for them: PEM files of the certificate chain and its key (absolute, or made so
         * from the configuration file's folder), or NULL: plain HTTP. */
        char *metrics_tls_cert, *metrics_tls_key;
        /* Basic authentication: the users and their crypt(5) hashes; none: no login. */
        struct config_metrics_user *metrics_users;
        int n_metrics_users;
        struct config_restart restart; /* the components' default */
        struct config_worker *workers; /* none given: one per CPU, filled by config_load */
        int n_workers;
        bool workers_default;
        struct config_component *components;
        int n_components;
        struct config_link *links;
        int n_links;
};

/* Reads and checks `path`. Relative plugin_dirs are taken relative to the file's folder.
 * Returns 0 and fills *ret, or -EINVAL with every problem found in *d (each naming file:line),
 * or -ENOMEM. After -EINVAL, ret->path is set when the file could be parsed: *ret then holds
 * the model with the faulty parts left out (for more checks, never to run); otherwise *ret is
 * empty. config_free() is safe on *ret in every case and must be called. Workers are placed on,
 * and checked against, the CPUs of the calling thread's affinity mask as it was at the first
 * call: the daemon moves its main thread off the workers' CPUs afterwards, and a reload's file
 * is still placed on the process's CPUs. */
int config_load(const char *path, struct config *ret, struct diag *d);
void config_free(struct config *c);

/* Parses "host:port", "[IPv6]:port" or ":port" (every address: host "") into host and port.
 * Returns 0 or -EINVAL (also for a host longer than host_len - 1). */
int config_parse_listen(const char *s, char *host, size_t host_len, unsigned *port);

/* Parses "comp.port" or "comp.port[N]" into *ret (strings owned by ret). Returns 0 or
 * -EINVAL. */
int config_parse_endpoint(const char *s, struct config_endpoint *ret);
void config_endpoint_free(struct config_endpoint *e);

const char *config_idle_to_string(enum idle_policy p);
const char *config_restart_mode_to_string(enum restart_mode m);

#endif
