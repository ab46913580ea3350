/* What the daemon tells about itself: the answers of the control socket's `status`, `stats` and
 * `metrics` (control socket: ctlsock.h), rendered on the main thread from the running
 * topology. Every figure is read without a lock: the counters of channels (channel_stats()),
 * components and workers each have one writer and are read with relaxed loads, so each is
 * exact but several are not one instant's snapshot. */
#ifndef ACTORD_STATS_H
#define ACTORD_STATS_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "supervisor.h"
#include "topology.h"
#include "worker.h"

/* The daemon's own state, kept by the main thread. */
struct daemon_info {
        const char *version;
        const char *config_path;
        int pid;
        uint64_t start_unix_ns; /* CLOCK_REALTIME at start */
        uint64_t start_mono_ns; /* CLOCK_MONOTONIC at start */
        const char *status;     /* the last STATUS= line */
        unsigned reloads_applied;
        unsigned reloads_failed;
        const char *last_reload; /* the last reload's result line, or "" */
        const char *metrics_url; /* where GET /metrics answers, or NULL: not served */
};

struct stats_view {
        const struct daemon_info *info;
        const struct topology *topo;
        struct runtime *rt;           /* the main thread's sleep_shown_ns change */
        const struct supervisor *sup; /* stuck workers; may be NULL */
        const double *chan_rate;      /* by link: messages delivered per second over the last
                                       * second; may be NULL */
        const double *comp_busy;      /* by component: its busy time over the last second, as
                                       * a share of one CPU; may be NULL */
        const double *worker_busy;    /* by worker: its components' comp_busy; may be NULL */
};

/* A few lines: version, pid, uptime, configuration, STATUS, reloads, the HTTP metrics address. */
void stats_write_status(FILE *f, const struct stats_view *v, uint64_t now_mono_ns);
/* The status, then tables of workers, components and channels, for people. */
void stats_write_tables(FILE *f, const struct stats_view *v, uint64_t now_mono_ns);
/* Every figure in the Prometheus text exposition format (version 0.0.4). */
void stats_write_metrics(FILE *f, const struct stats_view *v);

#endif
