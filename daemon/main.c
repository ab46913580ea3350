/* actord: options, lifecycle and signals. Wires config, plugins, topology and workers. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#if defined(__SANITIZE_ADDRESS__)
#define ACTORD_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ACTORD_LSAN 1
#endif
#endif
#ifdef ACTORD_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include "actord-build.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "ctlsock.h"
#include "httpd.h"
#include "log.h"
#include "plugin.h"
#include "reload.h"
#include "stats.h"
#include "supervisor.h"
#include "tap.h"
#include "topology.h"
#include "worker.h"

#define EXIT_CONFIG 78 /* EX_CONFIG */

struct options {
        const char *config;
        char **plugin_dirs;
        int n_plugin_dirs;
        bool config_given;
        bool check_config;
        bool list_plugins;
        const char *reload_pid;     /* --reload PID */
        const char *control_socket; /* --control-socket PATH */
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: actord [OPTIONS]\n"
                "Runs a pipeline of plugin components described by a configuration file.\n"
                "\n"
                "  -c, --config FILE       configuration file (default %s)\n"
                "  -p, --plugin-dir DIR    also load plugins from DIR (repeatable)\n"
                "      --check-config      validate the configuration and plugins, then exit\n"
                "                          (0 if valid, 78 if not)\n"
                "      --list-plugins      list the plugins of the plugin folders (those of\n"
                "                          --config FILE when given) and their classes, then exit\n"
                "      --reload PID        send SIGHUP to the actord with that PID and wait until\n"
                "                          it applied (exit 0) or refused (1) the configuration;\n"
                "                          for the unit's ExecReload (needs RUNTIME_DIRECTORY)\n"
                "      --control-socket PATH\n"
                "                          answer actorctl on this Unix socket (default under\n"
                "                          systemd: $RUNTIME_DIRECTORY/control.sock; else none)\n"
                "  -v, --verbose           log debug messages too\n"
                "  -h, --help              show this help and exit\n"
                "  -V, --version           show the version and exit\n"
                "\n"
                "Without plugin_dirs in the configuration and without --plugin-dir, plugins are\n"
                "loaded from %s.\n"
                "Signals: SIGTERM or SIGINT stop the pipeline cleanly; SIGHUP reloads the\n"
                "configuration file and the plugins: unchanged components keep running with\n"
                "their queued messages, changed ones restart (changing the workers needs a\n"
                "restart of actord).\n",
                ACTORD_DEFAULT_CONFIG, ACTORD_DEFAULT_PLUGIN_DIR);
}

static int parse_options(int argc, char **argv, struct options *o)
{
        enum { OPT_CHECK = 256, OPT_LIST, OPT_RELOAD, OPT_CONTROL };
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"plugin-dir", required_argument, NULL, 'p'},
            {"check-config", no_argument, NULL, OPT_CHECK},
            {"list-plugins", no_argument, NULL, OPT_LIST},
            {"reload", required_argument, NULL, OPT_RELOAD},
            {"control-socket", required_argument, NULL, OPT_CONTROL},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0},
        };
        *o = (struct options){.config = ACTORD_DEFAULT_CONFIG};
        o->plugin_dirs = calloc((size_t)argc + 1, sizeof(char *));
        if (!o->plugin_dirs)
                return -ENOMEM;
        int c;
        while ((c = getopt_long(argc, argv, "c:p:vhV", longopts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        o->config = optarg;
                        o->config_given = true;
                        break;
                case 'p':
                        o->plugin_dirs[o->n_plugin_dirs++] = optarg;
                        break;
                case OPT_CHECK:
                        o->check_config = true;
                        break;
                case OPT_LIST:
                        o->list_plugins = true;
                        break;
                case OPT_RELOAD:
                        o->reload_pid = optarg;
                        break;
                case OPT_CONTROL:
                        o->control_socket = optarg;
                        break;
                case 'v':
                        log_set_max_priority(LOG_DEBUG);
                        break;
                case 'h':
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                case 'V':
                        printf("actord %s (plugin ABI %d.%d)\n", ACTORD_VERSION, ACTORD_ABI_MAJOR,
                               ACTORD_ABI_MINOR);
                        exit(EXIT_SUCCESS);
                default:
                        usage(stderr);
                        exit(EXIT_FAILURE);
                }
        }
        if (optind < argc) {
                fprintf(stderr, "actord: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                exit(EXIT_FAILURE);
        }
        return 0;
}

static void log_diag(int priority, const struct diag *d)
{
        for (size_t i = 0; i < d->n; i++)
                log_msg(priority, "%s", d->lines[i]);
}

/* A CPU set as a list: "0-3,6". */
static void cpu_list(const cpu_set_t *set, char *buf, size_t len)
{
        size_t n = 0;
        buf[0] = 0;
        for (int c = 0; c < CPU_SETSIZE && n < len; c++) {
                if (!CPU_ISSET(c, set))
                        continue;
                int last = c;
                while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set))
                        last++;
                int w = last > c ? snprintf(buf + n, len - n, "%s%d-%d", n ? "," : "", c, last)
                                 : snprintf(buf + n, len - n, "%s%d", n ? "," : "", c);
                n += w > 0 ? (size_t)w : 0;
                c = last;
        }
}

/* Moves this thread, and with it the threads it starts from now on (the log writer; the
 * plugins' helper threads take its mask), to the process's CPUs that no worker is pinned to:
 * a reload's loading of plugins, a burst of log lines or a bridge's network I/O then never
 * take a worker's CPU from it. With a worker on every CPU they share them. */
static void keep_off_workers(const struct config *cfg)
{
        cpu_set_t all, rest;
        if (sched_getaffinity(0, sizeof(all), &all) < 0)
                return;
        rest = all;
        for (int i = 0; i < cfg->n_workers; i++)
                CPU_CLR(cfg->workers[i].cpu, &rest);
        char list[256];
        if (CPU_COUNT(&rest) == 0) {
                cpu_list(&all, list, sizeof(list));
                log_info("main and helper threads on CPUs %s, with the workers (each CPU has one)",
                         list);
                return;
        }
        int r = pthread_setaffinity_np(pthread_self(), sizeof(rest), &rest);
        if (r) {
                log_warning("main and helper threads stay on the workers' CPUs: %s", strerror(r));
                return;
        }
        cpu_list(&rest, list, sizeof(list));
        log_info("main and helper threads on CPUs %s, which no worker has", list);
}

static void report_config_errors(const char *path, struct diag *d)
{
        log_diag(LOG_ERR, d);
        log_error("%s: configuration not valid (%zu error%s)", path, d->n, d->n == 1 ? "" : "s");
        diag_free(d);
}

/* The plugin directories: the configuration's, then the command line's; the built-in one
 * when neither names any. */
static int load_plugins(const struct options *o, const struct config *cfg,
                        struct plugin_registry *reg, struct diag *d)
{
        const char **dirs =
            calloc((size_t)(cfg->n_plugin_dirs + o->n_plugin_dirs + 1), sizeof(char *));
        if (!dirs)
                return -ENOMEM;
        int n = 0;
        for (int i = 0; i < cfg->n_plugin_dirs; i++)
                dirs[n++] = cfg->plugin_dirs[i];
        for (int i = 0; i < o->n_plugin_dirs; i++)
                dirs[n++] = o->plugin_dirs[i];
        if (n == 0)
                dirs[n++] = ACTORD_DEFAULT_PLUGIN_DIR;
        reg->lax_modes = !cfg->plugin_strict_modes;
        int r = plugin_registry_load(reg, dirs, n, d);
        free(dirs);
        return r;
}

static void print_port(const char *dir, const struct actord_port *p, bool multi)
{
        char name[64];
        snprintf(name, sizeof(name), "%s%s", p->name, multi ? "[N]" : "");
        if (!strcmp(p->type, ACTORD_TYPE_GENERIC))
                printf("    %s %-10s any type (all generic ports share it)\n", dir, name);
        else
                printf("    %s %-10s %s (%u bytes)\n", dir, name, p->type, p->size);
}

static void list_plugins(const struct plugin_registry *reg)
{
        for (int i = 0; i < reg->n_plugins; i++) {
                const struct plugin *p = &reg->plugins[i];
                printf("%s %s (%s)\n  %s\n", p->desc->name, p->desc->version, p->path,
                       p->desc->description ? p->desc->description : "");
                for (uint32_t k = 0; k < p->desc->n_classes; k++) {
                        const struct actord_class *c = p->desc->classes[k];
                        printf("  class %s: %s, %s\n", c->name, plugin_shape_to_string(c->shape),
                               c->description ? c->description : "");
                        for (uint32_t j = 0; j < c->n_inputs; j++)
                                print_port("in ", &c->inputs[j], c->shape == ACTORD_SHAPE_GATHER);
                        for (uint32_t j = 0; j < c->n_outputs; j++)
                                print_port("out", &c->outputs[j], c->shape == ACTORD_SHAPE_SCATTER);
                        printf("    schedules:");
                        for (uint32_t bit = 1; bit <= ACTORD_RULE_ON_EVENT; bit <<= 1)
                                if (c->rules & bit)
                                        printf(
                                            " %s%s", plugin_rule_to_string((enum actord_rule)bit),
                                            bit == (uint32_t)c->default_rule ? " (default)" : "");
                        printf("\n");
                        for (uint32_t j = 0; j < c->n_settings; j++) {
                                const struct actord_setting *s = &c->settings[j];
                                static const char *const tn[] = {"?", "int", "float", "bool",
                                                                 "string"};
                                printf("    setting %s (%s%s%s%s): %s\n", s->name, tn[s->type],
                                       s->required ? ", required" : "",
                                       s->default_value ? ", default " : "",
                                       s->default_value ? s->default_value : "",
                                       s->help ? s->help : "");
                        }
                }
        }
}

/* The metrics over HTTP: the server, and what renders its answer. */
struct metrics_http {
        struct httpd *httpd; /* or NULL */
        httpd_metrics_fn *fn;
        httpd_health_fn *health;
        void *arg;
};

/* A server for the HTTP metrics of configuration c (actord.metrics_listen) in *ret. Returns 0,
 * or a negative errno with the reason in d (the file and line of the setting). With
 * `take_port`, where mh's running server holds the port the address asks for (127.0.0.1:9464
 * to 0.0.0.0:9464), the bind may fail only because of it: that server is then closed
 * (mh->httpd = NULL) and the bind tried again. */
static int metrics_open(const struct config *c, struct metrics_http *mh, struct httpd **ret,
                        bool take_port, struct diag *d)
{
        char err[256], host[256];
        unsigned port;
        if (c->n_metrics_users && !c->metrics_tls_cert)
                log_warning("%s:%d: metrics_users without metrics_tls_cert: the passwords cross "
                            "the network in the clear",
                            c->metrics_file, c->metrics_line);
        int r = httpd_open(ret, c, mh->fn, mh->health, mh->arg, err, sizeof(err));
        if (r == -EADDRINUSE && take_port && mh->httpd &&
            config_parse_listen(c->metrics_listen, host, sizeof(host), &port) == 0 &&
            port == httpd_port(mh->httpd)) {
                httpd_close(mh->httpd);
                mh->httpd = NULL;
                r = httpd_open(ret, c, mh->fn, mh->health, mh->arg, err, sizeof(err));
        }
        if (r < 0)
                diag_add(d, c->metrics_file, c->metrics_line, "actord.metrics_listen = \"%s\": %s",
                         c->metrics_listen, err);
        return r;
}

static bool same_string(const char *a, const char *b)
{
        return a == b || (a && b && !strcmp(a, b));
}

/* Whether a reload from a to b needs a new HTTP server (running: h): another address, TLS
 * files or users, or TLS files whose contents changed (a certificate renewed under the same
 * name). */
static bool metrics_change(const struct config *a, const struct config *b, const struct httpd *h)
{
        if (!same_string(a->metrics_listen, b->metrics_listen) ||
            !same_string(a->metrics_tls_cert, b->metrics_tls_cert) ||
            !same_string(a->metrics_tls_key, b->metrics_tls_key) ||
            a->n_metrics_users != b->n_metrics_users ||
            (b->metrics_listen && b->metrics_tls_cert && !httpd_tls_current(h, b)))
                return true;
        for (int i = 0; i < a->n_metrics_users; i++)
                if (strcmp(a->metrics_users[i].name, b->metrics_users[i].name) ||
                    strcmp(a->metrics_users[i].hash, b->metrics_users[i].hash))
                        return true;
        return false;
}

/* SIGHUP or the control socket's `reload` (`why` says which): reads and validates the
 * configuration file again (plugins included) while the workers run. An invalid file, or one
 * that changes the workers, leaves everything as it is, with its errors logged. A valid one is
 * applied (reload.h, runtime_reload): unchanged components keep running with their state and
 * queued messages, the others are stopped, restarted or started. `result` gets one line for
 * the reload state (control.h), starting with "applied" or "failed"; `detail`, when not NULL,
 * every error, a line each. Returns true if the running pipeline changed. */
static bool reload(const struct options *o, struct config **cfg, struct plugin_registry *reg,
                   struct topology *topo, struct runtime *rt, struct supervisor *sup,
                   struct metrics_http *http, const char *running_status, const char *why,
                   char *result, size_t result_len, FILE *detail)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
                   (unsigned long long)ts.tv_sec * 1000000ull +
                       (unsigned long long)ts.tv_nsec / 1000,
                   o->config);
        log_info("%s: reloading %s", why, o->config);
        struct config *ncfg = calloc(1, sizeof(*ncfg));
        struct diag d = {0}, pd = {0};
        struct plugin_registry nreg = {.prev = reg};
        struct topology next = {0}, *built = NULL;
        struct reload_plan plan = {0};
        struct httpd *nhttpd = NULL;
        bool applied = false;
        int r = ncfg ? config_load(o->config, ncfg, &d) : -ENOMEM;
        if (ncfg && ncfg->path && load_plugins(o, ncfg, &nreg, &pd) == 0) {
                log_diag(LOG_WARNING, &pd);
                if (topology_build(&next, ncfg, &nreg, &d) == 0)
                        built = &next;
        }
        if (r == 0 && built)
                reload_workers_equal(*cfg, ncfg, &d);
        /* A new address is listened on before anything changes: one that cannot be had fails
         * the reload, and the old one serves on. Where the old listener holds the new one's
         * port, it gives the port up for the new one and takes it back if the reload fails
         * (`handed_over`): connections to the old one are closed, and for that moment the port
         * refuses connections. */
        bool http_moves = ncfg && metrics_change(*cfg, ncfg, http->httpd);
        bool handed_over = false;
        if (r == 0 && built && d.n == 0 && http_moves && ncfg->metrics_listen) {
                bool had = http->httpd != NULL;
                metrics_open(ncfg, http, &nhttpd, true, &d);
                handed_over = had && !http->httpd;
        }
        if (r < 0 || d.n || !built) {
                log_diag(LOG_ERR, &d);
                log_error("reload failed: %s has %zu error%s; the running pipeline is kept",
                          o->config, d.n, d.n == 1 ? "" : "s");
                sd_notifyf(0, "READY=1\nSTATUS=reload failed (%zu error%s in %s); %s", d.n,
                           d.n == 1 ? "" : "s", o->config, running_status);
                snprintf(result, result_len, "failed: %s has %zu error%s, the first: %s", o->config,
                         d.n, d.n == 1 ? "" : "s",
                         d.n ? d.lines[0] : (r < 0 ? strerror(-r) : "cannot load it"));
                for (size_t i = 0; detail && i < d.n; i++)
                        fprintf(detail, "%s\n", d.lines[i]);
                goto out;
        }
        char busy[256];
        int failed = 0;
        /* A worker busy in one run longer than the stall limit is stuck: do not wait more. */
        r = runtime_reload(rt, topo, &next, &plan, (uint64_t)(*cfg)->stall_ms * 1000000u, &failed,
                           busy, sizeof(busy));
        if (r < 0) {
                log_error("reload failed: %s; the running pipeline is kept",
                          r == -ETIMEDOUT ? busy : strerror(-r));
                sd_notifyf(0, "READY=1\nSTATUS=reload failed (%s); %s",
                           r == -ETIMEDOUT ? busy : strerror(-r), running_status);
                snprintf(result, result_len, "failed: %s", r == -ETIMEDOUT ? busy : strerror(-r));
                goto out;
        }
        /* `next` now holds what is left of the old pipeline: free it before the code of the
         * plugins it used may go with the old registry. */
        topology_free(&next);
        built = NULL;
        plugin_registry_free(reg);
        *reg = nreg;
        reg->prev = NULL;
        nreg = (struct plugin_registry){0};
        config_free(*cfg);
        free(*cfg);
        *cfg = ncfg;
        ncfg = NULL;
        sup->stall_ns = (uint64_t)(*cfg)->stall_ms * 1000000u;
        if (http_moves) {
                httpd_close(http->httpd);
                http->httpd = nhttpd;
                nhttpd = NULL;
                if (http->httpd)
                        log_info("metrics over HTTP now at %s", httpd_url(http->httpd));
                else
                        log_info("metrics over HTTP: off (no actord.metrics_listen)");
        }
        applied = true;
        log_info("reload applied: %d components kept running, %d restarted, %d started, %d "
                 "stopped; %d of %d links kept their channel and queued messages",
                 plan.n_kept, plan.n_restarted, plan.n_started, plan.n_stopped, plan.n_chans_kept,
                 topo->n_chans);
        if (failed)
                log_error("reload: %d component%s failed to start (see above); the others run",
                          failed, failed == 1 ? "" : "s");
        snprintf(result, result_len, "applied: %d kept, %d restarted, %d started, %d stopped%s",
                 plan.n_kept, plan.n_restarted, plan.n_started, plan.n_stopped,
                 failed ? " (some failed to start: see the log)" : "");
        sd_notifyf(0,
                   "READY=1\nSTATUS=reloaded: %d kept, %d restarted, %d started, %d stopped%s; "
                   "%d components on %d workers",
                   plan.n_kept, plan.n_restarted, plan.n_started, plan.n_stopped,
                   failed ? " (some failed to start)" : "", topo->n_comps, (*cfg)->n_workers);
out:
        httpd_close(nhttpd);
        if (handed_over && !applied) {
                struct diag hd = {0};
                if (metrics_open(*cfg, http, &http->httpd, false, &hd) < 0) {
                        log_diag(LOG_ERR, &hd);
                        log_error("metrics over HTTP: off (the old address could not be had back)");
                }
                diag_free(&hd);
        }
        reload_plan_free(&plan);
        if (built)
                topology_free(built);
        plugin_registry_free(&nreg);
        if (ncfg) {
                config_free(ncfg);
                free(ncfg);
        }
        diag_free(&d);
        diag_free(&pd);
        return applied;
}

/* How often the main thread wakes: each second for STATUS, at a third of the watchdog period
 * and at a quarter of the stall limit. */
static int tick_ms(uint64_t watchdog_usec, uint32_t stall_ms)
{
        int t = 1000;
        if (watchdog_usec && watchdog_usec / 3000 < (uint64_t)t)
                t = (int)(watchdog_usec / 3000);
        if ((int)stall_ms / 4 < t)
                t = (int)stall_ms / 4;
        return t < 1 ? 1 : t;
}

/* One line for STATUS= and the log: components, workers, throughput and losses. */
/* worker_busy: each worker's busy share over the last second (busy_shares()), or NULL before
 * there is one; then the busiest worker is named. */
static void status_line(const struct topology *t, const struct config *cfg, double rate,
                        uint64_t lost, const double *worker_busy, char *buf, size_t len)
{
        int down = 0;
        for (int i = 0; i < t->n_comps; i++)
                /* Relaxed: a count for people (topology.h). */
                down += atomic_load_explicit(&t->comps[i]->given_up, memory_order_relaxed);
        int n = snprintf(buf, len, "%d components on %d workers; %.0f msg/s; %llu lost", t->n_comps,
                         cfg->n_workers, rate, (unsigned long long)lost);
        if (worker_busy && cfg->n_workers > 0 && n > 0 && (size_t)n < len) {
                int top = 0;
                for (int i = 1; i < cfg->n_workers; i++)
                        top = worker_busy[i] > worker_busy[top] ? i : top;
                double pct = 100 * worker_busy[top] > 100 ? 100 : 100 * worker_busy[top];
                n += snprintf(buf + n, len - (size_t)n, "; busiest worker %d at %.0f%%", top, pct);
        }
        if (down && n > 0 && (size_t)n < len)
                snprintf(buf + n, len - (size_t)n, "; %d failed (see the log)", down);
}

/* The component given up on whose on_failure asks the daemon to stop, or NULL. */
static const struct component *exit_on_failure(const struct topology *t)
{
        for (int i = 0; i < t->n_comps; i++)
                if (t->comps[i]->cc->restart.exit_on_failure &&
                    atomic_load_explicit(&t->comps[i]->given_up, memory_order_relaxed))
                        return t->comps[i];
        return NULL;
}

/* Losses go to the log per channel, with its CHANNEL field: the first at once, then at most
 * every LOSS_REPORT_NS per channel, with the count since the last report. */
#define LOSS_REPORT_NS (10 * 1000000000ull)

struct loss_report {
        uint64_t reported; /* losses already reported */
        uint64_t at_ns;    /* when, 0: never */
};

/* Baseline: what the channels lost so far counts as reported (at start, after a reload). */
static struct loss_report *loss_reports_new(const struct topology *t)
{
        struct loss_report *lr = calloc((size_t)t->n_chans + 1, sizeof(*lr));
        for (int i = 0; lr && i < t->n_chans; i++) {
                uint64_t consumed;
                channel_stats_flow(&t->chans[i], &consumed, &lr[i].reported);
        }
        return lr;
}

static void report_losses(const struct topology *t, struct loss_report *lr, uint64_t now)
{
        for (int i = 0; lr && i < t->n_chans; i++) {
                uint64_t consumed, lost;
                channel_stats_flow(&t->chans[i], &consumed, &lost);
                struct loss_report *r = &lr[i];
                if (lost <= r->reported || (r->at_ns && now - r->at_ns < LOSS_REPORT_NS))
                        continue;
                struct channel_stats st;
                channel_stats(&t->chans[i], &st);
                const struct config_link *l = &t->cfg->links[i];
                char from[160], to[160], name[330];
                topology_link_end(t, i, true, from, sizeof(from));
                topology_link_end(t, i, false, to, sizeof(to));
                snprintf(name, sizeof(name), "%s -> %s", from, to);
                const struct component *reader = t->comps[t->link_to[i]];
                log_fields(LOG_WARNING,
                           &(struct log_fields){.component = reader->name,
                                                .cls = reader->cls->name,
                                                .worker = reader->worker,
                                                .channel = name},
                           "channel %s: %llu messages lost%s: its reader lags (%s, capacity "
                           "%u; %llu lost in all)",
                           name, (unsigned long long)(st.lost - r->reported),
                           r->at_ns ? " since the last report" : "",
                           channel_policy_to_string(l->policy), st.capacity,
                           (unsigned long long)st.lost);
                r->reported = st.lost;
                r->at_ns = now;
        }
}

/* Each channel's messages delivered per second over the dt_ns since `last` (what each had
 * delivered then; it moves on) into `rate` (dt_ns 0: the rates start from here), and the
 * messages lost over all channels into *ret_lost. Returns the sum of the rates. */
static double flow(const struct topology *t, uint64_t *last, double *rate, uint64_t dt_ns,
                   uint64_t *ret_lost)
{
        uint64_t lost = 0;
        double sum = 0;
        for (int i = 0; i < t->n_chans; i++) {
                uint64_t c, l;
                channel_stats_flow(&t->chans[i], &c, &l);
                lost += l;
                if (last && rate) {
                        rate[i] = dt_ns ? (double)(c - last[i]) * 1e9 / (double)dt_ns : 0;
                        last[i] = c;
                        sum += rate[i];
                }
        }
        *ret_lost = lost;
        return sum;
}

/* The busy shares of the last second, of one CPU (the components' busy time, worker.c), by
 * component and by worker; the components' busy time then; and each worker's seconds in a
 * row at BUSY_HOT or more (busy_watch()). All or none allocated: `comp` NULL, none. */
struct busy {
        double *comp, *worker;
        uint64_t *last;
        unsigned *hot;
};

static void busy_free(struct busy *b)
{
        free(b->comp);
        free(b->worker);
        free(b->last);
        free(b->hot);
        *b = (struct busy){0};
}

/* The shares over the dt_ns since the last call; dt_ns 0: only the starting point. */
static void busy_shares(const struct topology *t, int n_workers, struct busy *b, uint64_t dt_ns)
{
        for (int w = 0; w < n_workers; w++)
                b->worker[w] = 0;
        for (int i = 0; i < t->n_comps; i++) {
                uint64_t ns = counter_get(&t->comps[i]->run_time.sum_ns);
                b->comp[i] = dt_ns ? (double)(ns - b->last[i]) / (double)dt_ns : 0;
                b->last[i] = ns;
                if (t->comps[i]->worker >= 0 && t->comps[i]->worker < n_workers)
                        b->worker[t->comps[i]->worker] += b->comp[i];
        }
}

/* For a topology and its workers, starting from now; a reload starts the counts again. */
static void busy_reset(struct busy *b, const struct topology *t, int n_workers)
{
        busy_free(b);
        b->comp = calloc((size_t)t->n_comps + 1, sizeof(*b->comp));
        b->worker = calloc((size_t)n_workers + 1, sizeof(*b->worker));
        b->last = calloc((size_t)t->n_comps + 1, sizeof(*b->last));
        b->hot = calloc((size_t)n_workers + 1, sizeof(*b->hot));
        if (!b->comp || !b->worker || !b->last || !b->hot)
                busy_free(b);
        else
                busy_shares(t, n_workers, b, 0);
}

/* A worker busy in its components' runs BUSY_HOT or more of every second for BUSY_HOT_S
 * seconds in a row is said to be saturated, once, naming its busiest components; that it no
 * longer is, once its share falls below BUSY_COOL. Not one that runs a `loop` component,
 * which takes all the time there is by design. */
#define BUSY_HOT 0.9
#define BUSY_COOL 0.8
#define BUSY_HOT_S 5u

/* The busiest component on worker `w` that is not among the `n` in `skip`, or -1. */
static int busiest_on(const struct topology *t, const double *busy, int w, const int *skip, int n)
{
        int best = -1;
        for (int i = 0; i < t->n_comps; i++) {
                bool skipped = false;
                for (int k = 0; k < n; k++)
                        skipped |= skip[k] == i;
                if (t->comps[i]->worker == w && !skipped && (best < 0 || busy[i] > busy[best]))
                        best = i;
        }
        return best;
}

/* A worker that runs a `loop` component, which takes all the time there is by design. */
static bool runs_a_loop(const struct topology *t, int w)
{
        for (int i = 0; i < t->n_comps; i++)
                if (t->comps[i]->worker == w && t->comps[i]->rule == ACTORD_RULE_LOOP)
                        return true;
        return false;
}

/* Once a second, after busy_shares(): the workers' saturation (b->hot: each worker's seconds
 * in a row at BUSY_HOT or more, held between BUSY_COOL and BUSY_HOT). */
static void busy_watch(const struct topology *t, const struct config *cfg, struct busy *b)
{
        for (int w = 0; w < cfg->n_workers; w++) {
                double share = b->worker[w];
                struct log_fields f = {.worker = w};
                if (share < BUSY_COOL) {
                        if (b->hot[w] >= BUSY_HOT_S)
                                log_fields(LOG_INFO, &f,
                                           "worker %d is no longer saturated (busy %.0f%%)", w,
                                           100 * share);
                        b->hot[w] = 0;
                        continue;
                }
                if (share < BUSY_HOT || ++b->hot[w] != BUSY_HOT_S)
                        continue;
                if (runs_a_loop(t, w)) {
                        b->hot[w] = 0; /* never said: looked at again in BUSY_HOT_S s */
                        continue;
                }
                char top[256] = "";
                int shown[3], n = 0;
                size_t len = 0;
                for (; n < 3; n++) {
                        shown[n] = busiest_on(t, b->comp, w, shown, n);
                        if (shown[n] < 0 || b->comp[shown[n]] < 0.01)
                                break;
                        int r = snprintf(top + len, sizeof(top) - len, "%s%s %.0f%%", n ? ", " : "",
                                         t->comps[shown[n]]->name, 100 * b->comp[shown[n]]);
                        len = r < 0 || (size_t)r >= sizeof(top) - len ? sizeof(top) - 1
                                                                      : len + (size_t)r;
                }
                log_fields(
                    LOG_WARNING, &f,
                    "worker %d (CPU %d) saturated: busy at least %.0f%% of each of the last %u s, "
                    "%.0f%% in the last (%s); what its components read waits, and may be "
                    "lost: give a busy component a worker of its own",
                    w, cfg->workers[w].cpu, 100 * BUSY_HOT, BUSY_HOT_S, 100 * share, top);
        }
}

/* The running daemon, as the main thread keeps it from one event to the next. */
struct running {
        const struct options *opt;
        struct config **cfg;
        struct plugin_registry *reg;
        struct topology *topo;
        struct runtime *rt;
        struct supervisor *sup;
        struct ctlsock *ctl;
        struct metrics_http http; /* the metrics over HTTP */
        char *state_path;
        unsigned generation;
        char status[256];
        char last_reload[512];
        struct daemon_info info;
        struct loss_report *losses;
        uint64_t last_ns, lost;
        double rate; /* messages delivered per second, over the last second */
        /* The same per channel (by link), and what each had delivered then. */
        double *chan_rate;
        uint64_t *chan_last;
        struct busy busy; /* the components' and workers' busy shares */
};

/* The rates for the topology now running start from here (0), and the losses are counted.
 * Without memory for them, the rates stay 0. */
static void rates_reset(struct running *m)
{
        free(m->chan_rate);
        free(m->chan_last);
        m->chan_rate = calloc((size_t)m->topo->n_chans + 1, sizeof(*m->chan_rate));
        m->chan_last = calloc((size_t)m->topo->n_chans + 1, sizeof(*m->chan_last));
        flow(m->topo, m->chan_last, m->chan_rate, 0, &m->lost);
        busy_reset(&m->busy, m->topo, (*m->cfg)->n_workers);
        m->last_ns = mono_ns();
}

/* What the daemon tells about itself (stats.h), from the running state. */
static struct stats_view view_of(struct running *m)
{
        return (struct stats_view){.info = &m->info,
                                   .topo = m->topo,
                                   .rt = m->rt,
                                   .sup = m->sup,
                                   .chan_rate = m->chan_rate,
                                   .comp_busy = m->busy.comp,
                                   .worker_busy = m->busy.comp ? m->busy.worker : NULL};
}

/* What GET /metrics answers: the control socket's `metrics`. */
static void render_metrics(void *arg, FILE *out)
{
        const struct stats_view v = view_of(arg);
        stats_write_metrics(out, &v);
}

/* GET /health: well while no worker is stuck in a run (the supervisor's last look). */
static bool healthy(void *arg)
{
        const struct supervisor *sup = ((const struct running *)arg)->sup;
        for (int i = 0; i < sup->n_workers; i++)
                if (sup->stuck[i])
                        return false;
        return true;
}

/* A reload and its bookkeeping: the counts, the rate and loss baselines, and for a SIGHUP
 * (`by_signal`) the state file that `actord --reload` waits on: only its own kind of reload
 * may answer it, not one asked for through the control socket meanwhile. */
static bool apply_reload(struct running *m, const char *why, FILE *detail, bool by_signal)
{
        /* A tap reads a channel that the reload may take away. */
        ctlsock_end_streams(m->ctl, "-- the configuration is being reloaded: the tap ends "
                                    "(tap again)\n");
        char result[512];
        bool applied = reload(m->opt, m->cfg, m->reg, m->topo, m->rt, m->sup, &m->http, m->status,
                              why, result, sizeof(result), detail);
        m->info.metrics_url = httpd_url(m->http.httpd);
        if (by_signal)
                control_state_write(m->state_path, ++m->generation, result);
        snprintf(m->last_reload, sizeof(m->last_reload), "%s", result);
        if (!applied) {
                m->info.reloads_failed++;
                return false;
        }
        m->info.reloads_applied++;
        m->info.config_path = (*m->cfg)->path ? (*m->cfg)->path : m->opt->config;
        /* Other channels now: the rates start again from here. */
        rates_reset(m);
        free(m->losses);
        m->losses = loss_reports_new(m->topo);
        status_line(m->topo, *m->cfg, m->rate, m->lost, NULL, m->status, sizeof(m->status));
        return true;
}

/* A command that is not one: quoted with what is not printable escaped, at most 40 bytes. */
static void quote_command(FILE *out, const char *cmd)
{
        fputc('\'', out);
        size_t i = 0;
        for (; cmd[i] && i < 40; i++) {
                unsigned char ch = (unsigned char)cmd[i];
                if (ch < 0x20 || ch >= 0x7f || ch == '\\' || ch == '\'')
                        fprintf(out, "\\x%02x", ch);
                else
                        fputc(ch, out);
        }
        fputs(cmd[i] ? "'..." : "'", out);
}

/* The control socket's commands (ctlsock.h). */
static bool control_command(void *arg, const char *cmd, uid_t uid, FILE *out,
                            struct ctl_stream *stream)
{
        struct running *m = arg;
        const struct stats_view v = view_of(m);
        if (strcmp(cmd, "status") == 0) {
                stats_write_status(out, &v, mono_ns());
                return true;
        }
        if (strcmp(cmd, "stats") == 0) {
                stats_write_tables(out, &v, mono_ns());
                return true;
        }
        if (strcmp(cmd, "metrics") == 0) {
                stats_write_metrics(out, &v);
                return true;
        }
        if (strcmp(cmd, "help") == 0) {
                fputs("commands: status, stats, metrics, reload, tap END [COUNT], help\n", out);
                return true;
        }
        bool tap = strncmp(cmd, "tap ", 4) == 0 || strcmp(cmd, "tap") == 0;
        bool reload_cmd = strcmp(cmd, "reload") == 0;
        /* Changing the pipeline, and seeing the data it carries, are for root and the
         * daemon's own user; the figures are for anyone who may connect. */
        if ((tap || reload_cmd) && uid != 0 && uid != geteuid()) {
                fprintf(out,
                        "permission denied: %s is for root and for the daemon's own user (uid "
                        "%u), not for uid %u",
                        tap ? "tap" : "reload", (unsigned)geteuid(), (unsigned)uid);
                return false;
        }
        if (tap)
                return tap_start(m->topo, cmd + 3, out, stream);
        if (reload_cmd) {
                char why[64];
                snprintf(why, sizeof(why), "control socket (uid %u)", (unsigned)uid);
                char *detail = NULL;
                size_t detail_len = 0;
                FILE *df = open_memstream(&detail, &detail_len);
                bool applied = apply_reload(m, why, df, false);
                if (df)
                        fclose(df);
                fprintf(out, "%s\n", m->last_reload);
                if (!applied && detail)
                        fputs(detail, out);
                free(detail);
                return applied;
        }
        fputs("unknown command ", out);
        quote_command(out, cmd);
        fputs(": expected status, stats, metrics, reload, tap or help", out);
        return false;
}

/* Ends the process without the libraries' exit handlers. A plugin may leave a thread behind
 * that still uses a library (the NATS bridge's, when its server does not answer in time: it
 * goes on alone), and those handlers would take down what it uses under it: OpenSSL's locks,
 * freed at exit, crashed such a thread. The leak checker of a sanitizer build runs first, as
 * it would have at exit. */
static _Noreturn void exit_now(int code)
{
#ifdef ACTORD_LSAN
        __lsan_do_leak_check();
#endif
        fflush(NULL);
        _exit(code);
}

int main(int argc, char **argv)
{
        struct options opt;
        if (parse_options(argc, argv, &opt) < 0)
                return EXIT_FAILURE;
        if (opt.reload_pid) {
                free(opt.plugin_dirs);
                return control_reload(opt.reload_pid, 300);
        }

        int exit_code = EXIT_FAILURE;
        struct diag d = {0};
        struct diag cd = {0};
        struct config *cfg = calloc(1, sizeof(*cfg)); /* replaced by each reload */
        struct plugin_registry reg = {0};
        struct topology topo = {0};
        struct runtime rt = {0};
        struct supervisor sup = {0};
        int sfd = -1;
        struct ctlsock ctl = {.fd = -1};
        struct running m = {.opt = &opt,
                            .cfg = &cfg,
                            .reg = &reg,
                            .topo = &topo,
                            .rt = &rt,
                            .sup = &sup,
                            .ctl = &ctl,
                            .http = {.fn = render_metrics, .health = healthy, .arg = &m}};

        /* --list-plugins needs a configuration only for its plugin_dirs, when one is named.
         * Configuration errors are collected in cd, those of the file and those that need the
         * plugins, and reported together. */
        int cr = 0;
        if (!cfg) {
                log_error("out of memory");
                goto out;
        }
        if (opt.list_plugins && !opt.config_given)
                cfg->plugin_strict_modes = true;
        else
                cr = config_load(opt.config, cfg, &cd);
        if (cr < 0 && !cfg->path) {
                report_config_errors(opt.config, &cd);
                exit_code = EXIT_CONFIG;
                goto out;
        }
        if (load_plugins(&opt, cfg, &reg, &d) < 0) {
                log_error("out of memory while loading plugins");
                goto out;
        }
        /* Refused plugins do not stop the others; they are reported, and any component that
         * needed one of their classes fails below with an unknown class. */
        log_diag(LOG_WARNING, &d);
        size_t plugin_errors = d.n;
        diag_free(&d);
        if (opt.list_plugins && cr == 0) {
                list_plugins(&reg);
                exit_code = plugin_errors ? EXIT_CONFIG : EXIT_SUCCESS;
                goto out;
        }
        if (topology_build(&topo, cfg, &reg, &cd) < 0 || cr < 0) {
                report_config_errors(opt.config, &cd);
                exit_code = EXIT_CONFIG;
                goto out;
        }
        if (opt.check_config) {
                printf("%s: valid: %d components, %d links, %d workers, %d plugins\n", opt.config,
                       topo.n_comps, topo.n_chans, cfg->n_workers, reg.n_plugins);
                exit_code = plugin_errors ? EXIT_CONFIG : EXIT_SUCCESS;
                goto out;
        }

        /* Signals are taken through a signalfd by this thread only: block them before any
         * worker exists, so that every thread inherits the mask. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        /* A write to a pipe or socket whose reader went away (a log stream, a plugin's file)
         * fails with EPIPE instead of killing the daemon (systemd ignores it for services
         * too; run by hand, it would not be). */
        signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0) {
                log_error("signalfd: %s", strerror(errno));
                goto out;
        }

        keep_off_workers(cfg);
        /* From here on a thread of its own writes the log: neither the workers nor this
         * thread (the watchdog, signals) wait for a slow journal. */
        int lr = log_defer_init(cfg->n_workers);
        if (lr < 0) {
                log_error("cannot start the log writer: %s", strerror(-lr));
                goto out;
        }
        /* Before any component starts: a control socket that cannot be had stops the start. */
        char *ctl_path =
            opt.control_socket ? strdup(opt.control_socket) : control_runtime_path("control.sock");
        if (ctl_path) {
                int sr = ctlsock_open(&ctl, ctl_path);
                free(ctl_path);
                if (sr < 0) {
                        log_error("startup failed: no control socket; stopping");
                        goto out;
                }
        }
        if (cfg->metrics_listen) {
                if (metrics_open(cfg, &m.http, &m.http.httpd, false, &cd) < 0) {
                        log_diag(LOG_ERR, &cd);
                        log_error("startup failed: no metrics over HTTP; stopping");
                        goto out;
                }
                log_info("metrics over HTTP at %s", httpd_url(m.http.httpd));
        }
        if (runtime_start(&rt, &topo, cfg) < 0) {
                log_error("startup failed; stopping");
                goto out;
        }
        for (int i = 0; i < cfg->n_workers; i++)
                if (cfg->workers[i].shares_with >= 0)
                        log_warning("workers[%d] shares CPU %d with workers[%d]: fewer CPUs than "
                                    "workers; a worker that spins takes the CPU from the other",
                                    i, cfg->workers[i].cpu, cfg->workers[i].shares_with);
        for (int i = 0; i < topo.n_comps; i++)
                component_log_placement(topo.comps[i]);
        char *status = m.status;
        status_line(&topo, cfg, 0, 0, NULL, status, sizeof(m.status));
        log_info("running: %s", status);
        struct timespec rts;
        clock_gettime(CLOCK_REALTIME, &rts);
        m.info = (struct daemon_info){
            .version = ACTORD_VERSION,
            .config_path = cfg->path ? cfg->path : opt.config,
            .pid = (int)getpid(),
            .start_unix_ns = (uint64_t)rts.tv_sec * 1000000000u + (uint64_t)rts.tv_nsec,
            .start_mono_ns = mono_ns(),
            .status = m.status,
            .last_reload = m.last_reload,
            .metrics_url = httpd_url(m.http.httpd),
        };
        /* For `actord --reload` (the unit's ExecReload): each reload's generation and result.
         * Written before READY=1: from then on a reload may be asked for, and the command reads
         * the file first. */
        m.state_path = control_state_path();
        control_state_write(m.state_path, m.generation, "started");
        sd_notifyf(0, "READY=1\nSTATUS=%s", status);

        /* The main thread wakes every tick: for STATUS each second, for the watchdog (fed at
         * a third of its period, and only while no worker is stuck) and to look for stalls. */
        uint64_t wd_usec = 0;
        bool watchdog = sd_watchdog_enabled(0, &wd_usec) > 0;
        if (supervisor_init(&sup, cfg->n_workers, (uint64_t)cfg->stall_ms * 1000000u) < 0) {
                log_error("out of memory");
                runtime_stop(&rt, 0);
                goto out;
        }
        if (watchdog)
                log_info("systemd watchdog: %llu ms", (unsigned long long)(wd_usec / 1000));

        m.losses = loss_reports_new(&topo);
        rates_reset(&m);
        int was_stuck = 0;
        bool failure = false;
        for (;;) {
                /* The signals, the workers' failures, the HTTP metrics (fd -1 without them:
                 * poll skips it), the control socket. */
                struct pollfd pfd[3 + 1 + CTL_CONNS_MAX] = {
                    {.fd = sfd, .events = POLLIN},
                    {.fd = rt.fail_fd, .events = POLLIN},
                    {.fd = httpd_pollfd(m.http.httpd), .events = POLLIN}};
                int n_ctl = ctlsock_pollfds(&ctl, pfd + 3);
                int timeout = tick_ms(watchdog ? wd_usec : 0, cfg->stall_ms);
                int ctl_timeout = ctlsock_timeout_ms(&ctl, mono_ns());
                if (ctl_timeout >= 0 && ctl_timeout < timeout)
                        timeout = ctl_timeout;
                int http_timeout = httpd_timeout_ms(m.http.httpd);
                if (http_timeout >= 0 && http_timeout < timeout)
                        timeout = http_timeout;
                int n = poll(pfd, (nfds_t)(3 + n_ctl), timeout);
                if (n < 0 && errno != EINTR) {
                        log_error("poll: %s", strerror(errno));
                        break;
                }
                if (n < 0)
                        for (int i = 0; i < 3 + n_ctl; i++)
                                pfd[i].revents = 0;
                uint64_t now = mono_ns();
                char stall[256];
                int stuck = supervisor_check(&sup, &rt, now, stall, sizeof(stall));
                /* STATUS each second, and at once when a stall starts or ends. */
                if (now - m.last_ns >= 1000000000u || (stuck > 0) != (was_stuck > 0)) {
                        m.rate = flow(&topo, m.chan_last, m.chan_rate, now - m.last_ns, &m.lost);
                        if (m.busy.comp) {
                                busy_shares(&topo, cfg->n_workers, &m.busy, now - m.last_ns);
                                /* A count of seconds: not at a stall's start or end. */
                                if (now - m.last_ns >= 1000000000u)
                                        busy_watch(&topo, cfg, &m.busy);
                        }
                        status_line(&topo, cfg, m.rate, m.lost, m.busy.comp ? m.busy.worker : NULL,
                                    status, sizeof(m.status));
                        sd_notifyf(0, "STATUS=%s", stuck ? stall : status);
                        m.last_ns = now;
                        report_losses(&topo, m.losses, now);
                }
                was_stuck = stuck;
                if (watchdog && !stuck)
                        sd_notify(0, "WATCHDOG=1");
                /* The control socket's deadlines pass without an event too, as do the HTTP
                 * connections' timeouts. */
                ctlsock_process(&ctl, pfd + 3, n_ctl, now, control_command, &m);
                if (pfd[2].revents || http_timeout >= 0)
                        httpd_process(m.http.httpd);
                if (n <= 0)
                        continue;
                if (pfd[1].revents) {
                        uint64_t v;
                        ssize_t r = read(rt.fail_fd, &v, sizeof(v));
                        (void)r;
                        /* Read after the eventfd: the worker stored given_up before writing. */
                        const struct component *c = exit_on_failure(&topo);
                        if (c) {
                                log_error("component '%s' failed for good and its on_failure is "
                                          "\"exit\": stopping the daemon with an error",
                                          c->name);
                                failure = true;
                                break;
                        }
                }
                if (!pfd[0].revents)
                        continue;
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                        continue;
                if (si.ssi_signo == SIGHUP) {
                        apply_reload(&m, "SIGHUP", NULL, true);
                        continue;
                }
                log_info("%s: stopping", strsignal((int)si.ssi_signo));
                break;
        }
        free(m.losses);
        free(m.chan_rate);
        free(m.chan_last);
        busy_free(&m.busy);
        /* No request is answered while stopping: clients see the connection close. */
        ctlsock_close(&ctl);
        httpd_close(m.http.httpd);
        m.http.httpd = NULL;
        sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        /* A run may take up to stall_ms; one that takes longer is stuck and cannot be stopped:
         * exit without it rather than hang until systemd kills the daemon. */
        if (runtime_stop(&rt, ((uint64_t)cfg->stall_ms + 1000) * 1000000u) < 0) {
                log_error("exiting with a stuck worker");
                log_defer_finish(1000);
                _exit(EXIT_FAILURE);
        }
        for (int i = 0; i < topo.n_comps; i++) {
                const struct component *c = topo.comps[i];
                char restarts[64] = "";
                if (c->restart.total)
                        snprintf(restarts, sizeof(restarts), ", %u restart%s", c->restart.total,
                                 c->restart.total == 1 ? "" : "s");
                if (c->rule == ACTORD_RULE_PERIODIC)
                        log_info("component '%s': %llu runs, %llu missed periods%s", c->name,
                                 (unsigned long long)counter_get(&c->runs),
                                 (unsigned long long)counter_get(&c->missed_periods), restarts);
                else
                        log_info("component '%s': %llu runs%s", c->name,
                                 (unsigned long long)counter_get(&c->runs), restarts);
        }
        log_info("stopped");
        exit_code = failure ? EXIT_FAILURE : EXIT_SUCCESS;
out:
        /* What is queued goes out; a writer stuck on a stalled reader is left behind. */
        log_defer_finish(1000);
        ctlsock_close(&ctl);
        httpd_close(m.http.httpd);
        free(m.state_path);
        supervisor_free(&sup);
        if (sfd >= 0)
                close(sfd);
        topology_free(&topo);
        plugin_registry_free(&reg);
        if (cfg)
                config_free(cfg);
        free(cfg);
        diag_free(&d);
        diag_free(&cd);
        free(opt.plugin_dirs);
        exit_now(exit_code);
}
