/* The control socket's answers (stats.h). */
#define _GNU_SOURCE
#include "stats.h"

#include "clock.h"
#include "log.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void write_duration(FILE *f, uint64_t ns)
{
        uint64_t s = ns / 1000000000u;
        if (s >= 86400)
                fprintf(f, "%" PRIu64 "d ", s / 86400);
        if (s >= 3600)
                fprintf(f, "%" PRIu64 "h ", s / 3600 % 24);
        if (s >= 60)
                fprintf(f, "%" PRIu64 "m ", s / 60 % 60);
        fprintf(f, "%" PRIu64 "s", s % 60);
}

void stats_write_status(FILE *f, const struct stats_view *v, uint64_t now_mono_ns)
{
        const struct daemon_info *in = v->info;
        fprintf(f, "actord %s, pid %d, up ", in->version, in->pid);
        write_duration(f, now_mono_ns - in->start_mono_ns);
        fprintf(f, "\nconfiguration: %s\nstatus: %s\nreloads: %u applied, %u failed",
                in->config_path, in->status, in->reloads_applied, in->reloads_failed);
        if (in->last_reload && *in->last_reload)
                fprintf(f, "; last: %s", in->last_reload);
        fputc('\n', f);
        if (in->metrics_url)
                fprintf(f, "metrics: %s\n", in->metrics_url);
}

static bool worker_stuck(const struct stats_view *v, int i)
{
        return v->sup && v->sup->stuck && i < v->sup->n_workers && v->sup->stuck[i];
}

static int comps_on(const struct topology *t, int worker)
{
        int n = 0;
        for (int i = 0; i < t->n_comps; i++)
                n += t->comps[i]->worker == worker;
        return n;
}

/* A worker's time asleep, the sleep in progress included; never less than it said before (a
 * counter), though the worker's clock read on waking can come a little before our `now`. */
static uint64_t worker_sleep_ns(struct worker *w)
{
        uint64_t a, s, a2;
        do {
                a = atomic_load_explicit(&w->asleep_since, memory_order_acquire);
                s = atomic_load_explicit(&w->sleep_ns, memory_order_acquire);
                a2 = atomic_load_explicit(&w->asleep_since, memory_order_acquire);
        } while (a != a2); /* it fell asleep or woke meanwhile: once more */
        uint64_t now = mono_ns();
        uint64_t total = s + (a && now > a ? now - a : 0);
        if (total < w->sleep_shown_ns)
                total = w->sleep_shown_ns;
        w->sleep_shown_ns = total;
        return total;
}

static int comp_state(const struct component *c)
{
        return atomic_load_explicit(&c->run_state, memory_order_relaxed);
}

static unsigned comp_restarts(const struct component *c)
{
        return atomic_load_explicit(&c->restarts, memory_order_relaxed);
}

/* The time-in-queue histogram of channel i: its consumer's, for the input the link feeds. */
/* The component's own counters (ABI 1.2), as far as its worker declared them: *ret_n
 * entries. */
static const struct plugin_counter *comp_counters(const struct component *c, uint32_t *ret_n)
{
        /* Acquire, pairs with host_counter()'s release stores: the entries are complete. */
        uint32_t n = atomic_load_explicit(&c->n_counters, memory_order_acquire);
        const struct plugin_counter *pc = atomic_load_explicit(&c->counters, memory_order_acquire);
        *ret_n = pc ? n : 0;
        return pc;
}

static const struct queue_hist *chan_wait(const struct topology *t, int i)
{
        return &t->comps[t->link_to[i]]->in_wait[t->link_in[i]];
}

struct hist_snap {
        uint64_t bucket[QUEUE_HIST_BUCKETS];
        uint64_t count, sum_ns;
};

static void hist_read(const struct queue_hist *h, struct hist_snap *s)
{
        *s = (struct hist_snap){0};
        for (int i = 0; h && i < QUEUE_HIST_BUCKETS; i++) {
                s->bucket[i] = counter_get(&h->bucket[i]);
                s->count += s->bucket[i];
        }
        if (h)
                s->sum_ns = counter_get(&h->sum_ns);
}

/* The upper bound of the bucket holding quantile q, for people: "128ns", "1.02us", ">4.29s";
 * "-" without messages. */
static void hist_quantile(const struct hist_snap *s, double q, char *buf, size_t len)
{
        if (!s->count) {
                snprintf(buf, len, "-");
                return;
        }
        uint64_t want = (uint64_t)(q * (double)s->count + 0.5), seen = 0;
        want = want ? want : 1;
        int i = 0;
        for (; i < QUEUE_HIST_BUCKETS - 1; i++)
                if ((seen += s->bucket[i]) >= want)
                        break;
        int shift = QUEUE_HIST_MIN_SHIFT + (i < QUEUE_HIST_BUCKETS - 1 ? i : i - 1);
        double ns = (double)(1ull << shift);
        const char *more = i == QUEUE_HIST_BUCKETS - 1 ? ">" : "";
        if (ns < 1e3)
                snprintf(buf, len, "%s%.0fns", more, ns);
        else if (ns < 1e6)
                snprintf(buf, len, "%s%.3gus", more, ns / 1e3);
        else if (ns < 1e9)
                snprintf(buf, len, "%s%.3gms", more, ns / 1e6);
        else
                snprintf(buf, len, "%s%.3gs", more, ns / 1e9);
}

/* Every channel's counters, read once (channel_stats() searches the ring). Free it. */
static struct channel_stats *read_channels(const struct topology *t)
{
        struct channel_stats *st = calloc((size_t)t->n_chans + 1, sizeof(*st));
        for (int i = 0; st && i < t->n_chans; i++)
                channel_stats(&t->chans[i], &st[i]);
        return st;
}

void stats_write_tables(FILE *f, const struct stats_view *v, uint64_t now_mono_ns)
{
        const struct topology *t = v->topo;
        struct runtime *rt = v->rt;
        stats_write_status(f, v, now_mono_ns);

        fprintf(f, "\nworkers\n%6s %4s %-9s %10s %14s %12s %7s %7s  %s\n", "worker", "cpu", "idle",
                "components", "runs", "sleeps", "asleep", "busy", "state");
        uint64_t up = now_mono_ns - v->info->start_mono_ns;
        for (int i = 0; i < rt->n_workers; i++) {
                struct worker *w = &rt->workers[i];
                double asleep = up ? 100.0 * (double)worker_sleep_ns(w) / (double)up : 0;
                /* Its components' runs over the last second (below); a spinning worker's
                 * polling in between is nobody's. */
                double busy = v->worker_busy ? 100.0 * v->worker_busy[i] : 0;
                fprintf(f, "%6d %4d %-9s %10d %14" PRIu64 " %12" PRIu64 " %6.1f%% %6.1f%%  %s\n", i,
                        w->cpu, config_idle_to_string(w->idle), comps_on(t, i),
                        counter_get(&w->runs), counter_get(&w->sleeps), asleep > 100 ? 100 : asleep,
                        busy > 100 ? 100 : busy, worker_stuck(v, i) ? "stuck" : "ok");
        }

        int wn = 9, wc = 5;
        for (int i = 0; i < t->n_comps; i++) {
                int n = (int)strlen(t->comps[i]->name), m = (int)strlen(t->comps[i]->cls->name);
                wn = n > wn ? n : wn;
                wc = m > wc ? m : wc;
        }
        fprintf(f, "\ncomponents\n%-*s %-*s %-10s %6s %-10s %14s %7s %9s %9s %8s %8s\n", wn,
                "component", wc, "class", "rule", "worker", "state", "runs", "busy", "run p50",
                "run p99", "restarts", "missed");
        for (int i = 0; i < t->n_comps; i++) {
                const struct component *c = t->comps[i];
                /* Over the last second: a share of one CPU, as the workers' asleep. */
                double busy = v->comp_busy ? 100.0 * v->comp_busy[i] : 0;
                /* Since it was created, as the bucket bounds that hold them. */
                struct hist_snap h;
                hist_read(&c->run_time, &h);
                char p50[16], p99[16];
                hist_quantile(&h, 0.5, p50, sizeof(p50));
                hist_quantile(&h, 0.99, p99, sizeof(p99));
                fprintf(f, "%-*s %-*s %-10s %6d %-10s %14" PRIu64 " %6.1f%% %9s %9s %8u ", wn,
                        c->name, wc, c->cls->name, plugin_rule_to_string(c->rule), c->worker,
                        component_state_name(comp_state(c)), counter_get(&c->runs),
                        busy > 100 ? 100 : busy, p50, p99, comp_restarts(c));
                if (c->rule == ACTORD_RULE_PERIODIC)
                        fprintf(f, "%8" PRIu64 "\n", counter_get(&c->missed_periods));
                else
                        fprintf(f, "%8s\n", "-");
        }

        bool any = false;
        for (int i = 0; i < t->n_comps; i++) {
                uint32_t n;
                const struct plugin_counter *pc = comp_counters(t->comps[i], &n);
                for (uint32_t k = 0; k < n; k++) {
                        if (!any)
                                fprintf(f, "\ncounters (the components' own)\n%-*s %-30s %14s\n",
                                        wn, "component", "counter", "count");
                        any = true;
                        fprintf(f, "%-*s %-30s %14" PRIu64 "\n", wn, t->comps[i]->name, pc[k].name,
                                counter_get(&pc[k].value));
                }
        }

        struct channel_stats *st = read_channels(t);
        if (!st)
                return;
        int we = 4, wt = 4;
        for (int i = 0; i < t->n_chans; i++) {
                char e[160];
                topology_link_end(t, i, true, e, sizeof(e));
                int n = (int)strlen(e);
                topology_link_end(t, i, false, e, sizeof(e));
                n = (int)strlen(e) > n ? (int)strlen(e) : n;
                we = n > we ? n : we;
                int m = (int)strlen(t->link_type[i].name);
                wt = m > wt ? m : wt;
        }
        fprintf(f, "\nchannels\n%-*s %-*s %-*s %-9s %8s %14s %14s %11s %12s %10s %12s %9s %9s\n",
                we, "from", we, "to", wt, "type", "policy", "capacity", "published", "consumed",
                "msg/s", "lost", "high-water", "rejected", "wait p50", "wait p99");
        for (int i = 0; i < t->n_chans; i++) {
                const struct config_link *l = &t->cfg->links[i];
                char from[160], to[160];
                topology_link_end(t, i, true, from, sizeof(from));
                topology_link_end(t, i, false, to, sizeof(to));
                struct hist_snap h;
                hist_read(chan_wait(t, i), &h);
                char p50[16], p99[16];
                hist_quantile(&h, 0.5, p50, sizeof(p50));
                hist_quantile(&h, 0.99, p99, sizeof(p99));
                fprintf(f,
                        "%-*s %-*s %-*s %-9s %8u %14" PRIu64 " %14" PRIu64 " %11.0f %12" PRIu64
                        " %10" PRIu64 " %12" PRIu64 " %9s %9s\n",
                        we, from, we, to, wt, t->link_type[i].name,
                        channel_policy_to_string(l->policy), st[i].capacity, st[i].published,
                        st[i].consumed, v->chan_rate ? v->chan_rate[i] : 0.0, st[i].lost,
                        st[i].high_water, st[i].rejected, p50, p99);
        }
        free(st);
}

/* ---- Prometheus text format ---- */

/* A label value, escaped as the format asks: backslash, double quote and line feed. */
static void put_value(FILE *f, const char *s)
{
        for (; *s; s++) {
                if (*s == '\\')
                        fputs("\\\\", f);
                else if (*s == '"')
                        fputs("\\\"", f);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void worker_sample(FILE *f, const char *name, const struct worker *w, uint64_t value)
{
        fprintf(f, "%s{worker=\"%d\",cpu=\"%d\"} %" PRIu64 "\n", name, w->index, w->cpu, value);
}

/* A component's series name and labels, without the closing brace (a histogram adds `le`). */
static void comp_labels_open(FILE *f, const char *name, const void *comp)
{
        const struct component *c = comp;
        fprintf(f, "%s{component=\"", name);
        put_value(f, c->name);
        fputs("\",class=\"", f);
        put_value(f, c->cls->name);
        fprintf(f, "\",worker=\"%d\"", c->worker);
}

/* A component's series name and labels, and the space before its value. */
static void comp_labels(FILE *f, const char *name, const struct component *c)
{
        comp_labels_open(f, name, c);
        fputs("} ", f);
}

static void comp_sample(FILE *f, const char *name, const struct component *c, uint64_t value)
{
        comp_labels(f, name, c);
        fprintf(f, "%" PRIu64 "\n", value);
}

/* A channel's labels, without the closing brace (a histogram adds `le`). */
static void chan_labels(FILE *f, const char *name, const struct topology *t, int i)
{
        const struct config_link *l = &t->cfg->links[i];
        char from[160], to[160];
        topology_link_end(t, i, true, from, sizeof(from));
        topology_link_end(t, i, false, to, sizeof(to));
        fprintf(f, "%s{from=\"", name);
        put_value(f, from);
        fputs("\",to=\"", f);
        put_value(f, to);
        fputs("\",type=\"", f);
        put_value(f, t->link_type[i].name);
        fprintf(f, "\",policy=\"%s\"", channel_policy_to_string(l->policy));
}

static void chan_sample(FILE *f, const char *name, const struct topology *t, int i, uint64_t value)
{
        chan_labels(f, name, t, i);
        fprintf(f, "} %" PRIu64 "\n", value);
}

/* The samples of histogram `family` (seconds) from h; labels(f, series, arg) writes a series'
 * name and labels without the closing brace. */
static void histogram(FILE *f, const char *family, const struct queue_hist *h,
                      void (*labels)(FILE *, const char *, const void *), const void *arg)
{
        char bucket[96], sum[96], count[96];
        snprintf(bucket, sizeof(bucket), "%s_bucket", family);
        snprintf(sum, sizeof(sum), "%s_sum", family);
        snprintf(count, sizeof(count), "%s_count", family);
        struct hist_snap s;
        hist_read(h, &s);
        uint64_t cum = 0;
        /* Until its first observation, the +Inf bucket alone (valid, and the same in every
         * query): a topology of many idle components and links would otherwise answer 28
         * lines of zeros for each, megabytes that the main thread writes at every scrape. */
        for (int b = 0; s.count && b < QUEUE_HIST_BUCKETS - 1; b++) {
                cum += s.bucket[b];
                labels(f, bucket, arg);
                fprintf(f, ",le=\"%.10g\"} %" PRIu64 "\n",
                        (double)(1ull << (QUEUE_HIST_MIN_SHIFT + b)) * 1e-9, cum);
        }
        labels(f, bucket, arg);
        fprintf(f, ",le=\"+Inf\"} %" PRIu64 "\n", s.count);
        labels(f, sum, arg);
        fprintf(f, "} %.9f\n", (double)s.sum_ns * 1e-9);
        labels(f, count, arg);
        fprintf(f, "} %" PRIu64 "\n", s.count);
}

struct chan_ref {
        const struct topology *t;
        int i;
};

static void chan_labels_of(FILE *f, const char *name, const void *ref)
{
        const struct chan_ref *r = ref;
        chan_labels(f, name, r->t, r->i);
}

static void chan_histogram(FILE *f, const struct topology *t, int i)
{
        histogram(f, "actord_channel_queue_seconds", chan_wait(t, i), chan_labels_of,
                  &(struct chan_ref){t, i});
}

enum chan_field { CF_PUBLISHED, CF_CONSUMED, CF_LOST, CF_REJECTED, CF_HIGH_WATER, CF_CAPACITY };

static uint64_t chan_field(const struct channel_stats *s, enum chan_field k)
{
        switch (k) {
        case CF_PUBLISHED:
                return s->published;
        case CF_CONSUMED:
                return s->consumed;
        case CF_LOST:
                return s->lost;
        case CF_REJECTED:
                return s->rejected;
        case CF_HIGH_WATER:
                return s->high_water;
        case CF_CAPACITY:
                return s->capacity;
        }
        return 0;
}

/* actord_plugin_<class>_<counter>_total: the class name's characters other than letters,
 * digits and '_' (its dot) become '_'. */
static void plugin_metric_name(const struct component *c, const char *counter, char *buf,
                               size_t len)
{
        int n = snprintf(buf, len, "actord_plugin_%s_%s_total", c->cls->name, counter);
        for (char *p = buf + strlen("actord_plugin_"); n > 0 && *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '_'))
                        *p = '_';
}

/* Whether component j (< i) has a counter of the same metric as counter `name` of i: its
 * family was written with j's. */
static bool counter_family_done(const struct topology *t, int i, const char *metric)
{
        char other[160];
        for (int j = 0; j < i; j++) {
                uint32_t n;
                const struct plugin_counter *pc = comp_counters(t->comps[j], &n);
                for (uint32_t k = 0; k < n; k++) {
                        plugin_metric_name(t->comps[j], pc[k].name, other, sizeof(other));
                        if (!strcmp(other, metric))
                                return true;
                }
        }
        return false;
}

/* The components' own counters: a family per class and counter name, with a sample per
 * component that has it; HELP is the first component's help text, escaped. */
static void plugin_counter_families(FILE *f, const struct topology *t)
{
        char metric[160], other[160];
        for (int i = 0; i < t->n_comps; i++) {
                uint32_t n;
                const struct plugin_counter *pc = comp_counters(t->comps[i], &n);
                for (uint32_t k = 0; k < n; k++) {
                        plugin_metric_name(t->comps[i], pc[k].name, metric, sizeof(metric));
                        if (counter_family_done(t, i, metric))
                                continue;
                        fprintf(f, "# HELP %s ", metric);
                        /* HELP escapes backslashes (the line feed: host_counter() keeps one
                         * line). */
                        for (const char *h = pc[k].help; *h; h++) {
                                if (*h == '\\')
                                        fputc('\\', f);
                                fputc(*h, f);
                        }
                        fprintf(f, "\n# TYPE %s counter\n", metric);
                        for (int j = i; j < t->n_comps; j++) {
                                uint32_t m;
                                const struct plugin_counter *qc = comp_counters(t->comps[j], &m);
                                for (uint32_t q = 0; q < m; q++) {
                                        plugin_metric_name(t->comps[j], qc[q].name, other,
                                                           sizeof(other));
                                        if (!strcmp(other, metric))
                                                comp_sample(f, metric, t->comps[j],
                                                            counter_get(&qc[q].value));
                                }
                        }
                }
        }
}

void stats_write_metrics(FILE *f, const struct stats_view *v)
{
        const struct daemon_info *in = v->info;
        const struct topology *t = v->topo;
        struct runtime *rt = v->rt;

        family(f, "actord_info", "gauge", "The running daemon's version.");
        fputs("actord_info{version=\"", f);
        put_value(f, in->version);
        fputs("\"} 1\n", f);
        family(f, "actord_start_time_seconds", "gauge",
               "When the daemon started, in seconds since the Unix epoch.");
        fprintf(f, "actord_start_time_seconds %" PRIu64 ".%03" PRIu64 "\n",
                in->start_unix_ns / 1000000000u, in->start_unix_ns / 1000000u % 1000u);
        family(f, "actord_reloads_total", "counter",
               "Reloads asked for (SIGHUP or the control socket), by result.");
        fprintf(f, "actord_reloads_total{result=\"applied\"} %u\n", in->reloads_applied);
        fprintf(f, "actord_reloads_total{result=\"failed\"} %u\n", in->reloads_failed);

        family(f, "actord_worker_runs_total", "counter", "Component runs on the worker.");
        for (int i = 0; i < rt->n_workers; i++)
                worker_sample(f, "actord_worker_runs_total", &rt->workers[i],
                              counter_get(&rt->workers[i].runs));
        family(f, "actord_worker_sleeps_total", "counter",
               "Times the worker went to sleep, having nothing to run.");
        for (int i = 0; i < rt->n_workers; i++)
                worker_sample(f, "actord_worker_sleeps_total", &rt->workers[i],
                              counter_get(&rt->workers[i].sleeps));
        family(f, "actord_worker_sleep_seconds_total", "counter",
               "Time the worker slept, having nothing to run (idle = \"sleep\" or \"adaptive\"; a "
               "spinning worker never sleeps).");
        for (int i = 0; i < rt->n_workers; i++)
                fprintf(f, "actord_worker_sleep_seconds_total{worker=\"%d\",cpu=\"%d\"} %.9f\n", i,
                        rt->workers[i].cpu, (double)worker_sleep_ns(&rt->workers[i]) * 1e-9);
        family(f, "actord_worker_components", "gauge", "Components placed on the worker.");
        for (int i = 0; i < rt->n_workers; i++)
                worker_sample(f, "actord_worker_components", &rt->workers[i],
                              (uint64_t)comps_on(t, i));
        family(f, "actord_worker_stuck", "gauge",
               "1 while one run on the worker has lasted longer than stall_ms.");
        for (int i = 0; i < rt->n_workers; i++)
                worker_sample(f, "actord_worker_stuck", &rt->workers[i], worker_stuck(v, i));

        family(f, "actord_log_dropped_total", "counter",
               "Log messages dropped because the log's reader fell behind, by the queue that "
               "dropped them (a worker's, or the main thread's).");
        for (int i = 0; i < rt->n_workers; i++)
                fprintf(f, "actord_log_dropped_total{worker=\"%d\"} %" PRIu64 "\n", i,
                        log_dropped(i));
        fprintf(f, "actord_log_dropped_total{worker=\"main\"} %" PRIu64 "\n", log_dropped(-1));

        family(f, "actord_component_runs_total", "counter",
               "Runs of the component (process() calls), in all its lives since it was created.");
        for (int i = 0; i < t->n_comps; i++)
                comp_sample(f, "actord_component_runs_total", t->comps[i],
                            counter_get(&t->comps[i]->runs));
        family(f, "actord_component_busy_seconds_total", "counter",
               "Time spent in its runs, all its lives: every run timed below 100 runs a "
               "second, else an estimate from about 100 timed runs a second, each counting for "
               "the untimed ones before it.");
        for (int i = 0; i < t->n_comps; i++) {
                comp_labels(f, "actord_component_busy_seconds_total", t->comps[i]);
                fprintf(f, "%.9f\n", (double)counter_get(&t->comps[i]->run_time.sum_ns) * 1e-9);
        }
        family(f, "actord_component_run_seconds", "histogram",
               "How long its runs took, all its lives: estimated as its busy time is (the sum is "
               "that busy time; the counts lag its runs by those since the last timed one).");
        for (int i = 0; i < t->n_comps; i++)
                histogram(f, "actord_component_run_seconds", &t->comps[i]->run_time,
                          comp_labels_open, t->comps[i]);
        family(f, "actord_component_restarts_total", "counter",
               "Restarts of the component by its restart policy.");
        for (int i = 0; i < t->n_comps; i++)
                comp_sample(f, "actord_component_restarts_total", t->comps[i],
                            comp_restarts(t->comps[i]));
        family(f, "actord_component_missed_periods_total", "counter",
               "Periods a periodic component did not run in, being late or overrunning.");
        for (int i = 0; i < t->n_comps; i++)
                if (t->comps[i]->rule == ACTORD_RULE_PERIODIC)
                        comp_sample(f, "actord_component_missed_periods_total", t->comps[i],
                                    counter_get(&t->comps[i]->missed_periods));
        family(f, "actord_component_up", "gauge",
               "1 while the component runs; 0 while it is stopped, restarting or failed.");
        for (int i = 0; i < t->n_comps; i++)
                comp_sample(f, "actord_component_up", t->comps[i],
                            comp_state(t->comps[i]) == COMPONENT_RUNNING);
        family(f, "actord_component_failed", "gauge",
               "1 when the component was stopped by an error for good (until a reload).");
        for (int i = 0; i < t->n_comps; i++)
                comp_sample(f, "actord_component_failed", t->comps[i],
                            comp_state(t->comps[i]) == COMPONENT_FAILED);

        plugin_counter_families(f, t);

        struct channel_stats *st = read_channels(t);
        if (!st)
                return;
        static const struct {
                const char *name, *type, *help;
                enum chan_field field;
        } chan_families[] = {
            {"actord_channel_published_total", "counter",
             "Messages the producer published into the channel.", CF_PUBLISHED},
            {"actord_channel_consumed_total", "counter", "Messages the consumer read.",
             CF_CONSUMED},
            {"actord_channel_lost_total", "counter",
             "Messages lost: replaced unread (overwrite) or dropped (drop_new).", CF_LOST},
            {"actord_channel_rejected_total", "counter",
             "Claims refused because the channel was full (reject).", CF_REJECTED},
            {"actord_channel_high_water", "gauge",
             "The deepest backlog seen, in messages (sampled when the ring looked full).",
             CF_HIGH_WATER},
            {"actord_channel_capacity", "gauge", "Slots in the channel's ring.", CF_CAPACITY},
        };
        for (size_t k = 0; k < sizeof(chan_families) / sizeof(chan_families[0]); k++) {
                family(f, chan_families[k].name, chan_families[k].type, chan_families[k].help);
                for (int i = 0; i < t->n_chans; i++)
                        chan_sample(f, chan_families[k].name, t, i,
                                    chan_field(&st[i], chan_families[k].field));
        }
        family(f, "actord_channel_queue_seconds", "histogram",
               "How long messages waited in the channel: from the start of the run that "
               "published each to the start of the run that read it.");
        for (int i = 0; i < t->n_chans; i++)
                chan_histogram(f, t, i);
        free(st);
}
