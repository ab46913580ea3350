/* actord-bench pipeline: latency through the real scheduler, the way acto-rs's own benchmark
 * frames it. A source run by notification publishes one message; N pass-through filters
 * forward it; the sink records the end-to-end latency and notifies the source for the next
 * message. Everything runs through the daemon's own path: configuration text, plugin loading
 * (bench/plugins/benchkit.c), topology and pinned workers. Per-hop latency is the end-to-end
 * latency divided by the N + 1 channels crossed.
 *
 * Measured in the same run, the floors: a cache-line transfer between the two CPUs (ping-pong
 * on one atomic) and an eventfd + epoll wake-up of a sleeping thread; and the cost of 10,000
 * idle components on the same workers. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "benchkit.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "plugin.h"
#include "reload.h"
#include "topology.h"
#include "worker.h"

struct popts {
        bool json;
        bool quick;
        int cpu_a, cpu_b;
};

struct pct {
        double p50, p99, p999;
};

static double quantile(const uint64_t *sorted, size_t n, double q)
{
        return n ? (double)sorted[(size_t)(q * (double)(n - 1))] : 0;
}

/* The median of samples that fall on a grid: the clock advances in steps (about 10 ns on the
 * virtual machines this was written on), so thousands of samples share each value and the
 * plain median jumps by a whole step between two runs that differ by much less. The mean of
 * the middle tenth of the sorted samples moves smoothly with the share of each value there,
 * and equals the median wherever the distribution is symmetric around it. */
static double median_smooth(const uint64_t *sorted, size_t n)
{
        if (n < 20)
                return quantile(sorted, n, 0.5);
        size_t lo = n * 45 / 100, hi = n * 55 / 100;
        double sum = 0;
        for (size_t i = lo; i < hi; i++)
                sum += (double)sorted[i];
        return sum / (double)(hi - lo);
}

/* The median cost of one clock_gettime, taken out of the figures that include one. */
static double clock_cost_ns(void)
{
        uint64_t d[2001];
        for (int i = 0; i < 2001; i++) {
                uint64_t a = mono_ns();
                d[i] = mono_ns() - a;
        }
        qsort(d, 2001, sizeof(*d), bench_cmp_u64);
        return median_smooth(d, 2001);
}

static void pin(int cpu)
{
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* ---- floors ---- */

struct pingpong {
        _Atomic uint64_t flag;
        int cpu;
        int n;
        int efd[2], epfd[2]; /* eventfd variant */
};

static void *cacheline_pong(void *arg)
{
        struct pingpong *p = arg;
        pin(p->cpu);
        for (uint64_t i = 1; i <= (uint64_t)p->n; i++) {
                while (atomic_load_explicit(&p->flag, memory_order_acquire) != 2 * i - 1)
                        ;
                atomic_store_explicit(&p->flag, 2 * i, memory_order_release);
        }
        return NULL;
}

/* One-way cache-line transfer, p50: half a round trip on one atomic. */
static double cacheline_oneway_p50(const struct popts *o, double clock_ns)
{
        struct pingpong p = {.cpu = o->cpu_b, .n = o->quick ? 20000 : 200000};
        pthread_t t;
        pin(o->cpu_a);
        pthread_create(&t, NULL, cacheline_pong, &p);
        uint64_t *rtt = malloc((size_t)p.n * sizeof(*rtt));
        uint64_t prev = mono_ns();
        for (uint64_t i = 1; i <= (uint64_t)p.n; i++) {
                atomic_store_explicit(&p.flag, 2 * i - 1, memory_order_release);
                while (atomic_load_explicit(&p.flag, memory_order_acquire) != 2 * i)
                        ;
                uint64_t now = mono_ns();
                rtt[i - 1] = now - prev;
                prev = now;
        }
        pthread_join(t, NULL);
        qsort(rtt, (size_t)p.n, sizeof(*rtt), bench_cmp_u64);
        double r = (median_smooth(rtt, (size_t)p.n) - clock_ns) / 2;
        free(rtt);
        return r;
}

static void efd_wait(int epfd, int efd)
{
        struct epoll_event ev;
        while (epoll_wait(epfd, &ev, 1, -1) != 1)
                ;
        uint64_t v;
        if (read(efd, &v, sizeof(v)) < 0)
                abort();
}

static void efd_kick(int efd)
{
        uint64_t one = 1;
        if (write(efd, &one, sizeof(one)) < 0)
                abort();
}

static void *eventfd_pong(void *arg)
{
        struct pingpong *p = arg;
        pin(p->cpu);
        for (int i = 0; i < p->n; i++) {
                efd_wait(p->epfd[0], p->efd[0]);
                efd_kick(p->efd[1]);
        }
        return NULL;
}

/* One-way eventfd + epoll wake-up of a sleeping thread, p50: half a round trip. */
static double eventfd_wake_p50(const struct popts *o, double clock_ns)
{
        struct pingpong p = {.cpu = o->cpu_b, .n = o->quick ? 500 : 5000};
        for (int k = 0; k < 2; k++) {
                p.efd[k] = eventfd(0, EFD_CLOEXEC);
                p.epfd[k] = epoll_create1(EPOLL_CLOEXEC);
                struct epoll_event ev = {.events = EPOLLIN};
                epoll_ctl(p.epfd[k], EPOLL_CTL_ADD, p.efd[k], &ev);
        }
        pthread_t t;
        pin(o->cpu_a);
        pthread_create(&t, NULL, eventfd_pong, &p);
        uint64_t *rtt = malloc((size_t)p.n * sizeof(*rtt));
        for (int i = 0; i < p.n; i++) {
                uint64_t t0 = mono_ns();
                efd_kick(p.efd[0]);
                efd_wait(p.epfd[1], p.efd[1]);
                rtt[i] = mono_ns() - t0;
        }
        pthread_join(t, NULL);
        for (int k = 0; k < 2; k++) {
                close(p.efd[k]);
                close(p.epfd[k]);
        }
        qsort(rtt, (size_t)p.n, sizeof(*rtt), bench_cmp_u64);
        double r = (median_smooth(rtt, (size_t)p.n) - clock_ns) / 2;
        free(rtt);
        return r;
}

/* ---- the pipeline ---- */

enum placement { SAME_WORKER, CROSS_WORKER };

/* The floors again, later in the run (they pin this thread: its mask is restored). */
static double line_now(const struct popts *o, double clock_ns, const cpu_set_t *all)
{
        double v = cacheline_oneway_p50(o, clock_ns);
        sched_setaffinity(0, sizeof(*all), all);
        return v;
}

static double wake_now(const struct popts *o, double clock_ns, const cpu_set_t *all)
{
        double v = eventfd_wake_p50(o, clock_ns);
        sched_setaffinity(0, sizeof(*all), all);
        return v;
}

static const char *placement_name(enum placement p)
{
        return p == SAME_WORKER ? "same_worker" : "cross_worker";
}

/* Builds the configuration text of a pipeline of `filters` filters, plus `idle` idle
 * source/sink pairs spread over both workers. */
static char *pipeline_conf(const struct popts *o, enum placement pl, const char *idle_policy,
                           int filters, int idle_pairs, struct bench_mailbox *mb)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        /* Same-worker pipelines get a worker of their own: a second one spinning idle on the
         * sibling CPU would only slow it down on machines whose CPUs share a core. */
        char workers[160];
        int n = snprintf(workers, sizeof(workers), "{ cpu = %d; idle = \"%s\"; }", o->cpu_a,
                         idle_policy);
        if (pl == CROSS_WORKER || idle_pairs)
                snprintf(workers + n, sizeof(workers) - (size_t)n, ", { cpu = %d; idle = \"%s\"; }",
                         o->cpu_b, idle_policy);
        fprintf(f,
                "actord: { plugin_dirs = [ \"%s\" ];\n"
                "  workers = ( %s ); "
                "};\n"
                "components: {\n"
                "  src = { class = \"bench.src\"; worker = 0; settings = { mailbox = %lldL; "
                "}; };\n",
                BENCH_PLUGIN_DIR, workers, (long long)(intptr_t)mb);
        /* Cross-worker: every hop crosses, the stages alternate between the workers. */
        for (int i = 1; i <= filters; i++)
                fprintf(f, "  f%d = { class = \"bench.pass\"; worker = %d; };\n", i,
                        pl == CROSS_WORKER ? i % 2 : 0);
        fprintf(f,
                "  sink = { class = \"bench.sink\"; worker = %d; settings = { mailbox = %lldL; "
                "}; };\n",
                pl == CROSS_WORKER ? (filters + 1) % 2 : 0, (long long)(intptr_t)mb);
        for (int i = 0; i < idle_pairs; i++)
                fprintf(f,
                        "  is%d = { class = \"bench.idle_src\"; worker = %d; };\n"
                        "  ik%d = { class = \"bench.idle_sink\"; worker = %d; };\n",
                        i, i % 2, i, i % 2);
        fprintf(f, "};\nlinks = (\n  \"src.out -> %s.in\"", filters ? "f1" : "sink");
        for (int i = 1; i <= filters; i++) {
                if (i < filters)
                        fprintf(f, ",\n  \"f%d.out -> f%d.in\"", i, i + 1);
                else
                        fprintf(f, ",\n  \"f%d.out -> sink.in\"", i);
        }
        for (int i = 0; i < idle_pairs; i++)
                fprintf(f, ",\n  { from = \"is%d.out\"; to = \"ik%d.in\"; capacity = 1; }", i, i);
        fprintf(f, "\n);\n");
        fclose(f);
        return buf;
}

/* Loads configuration text (through a temporary file: the loader reads files). */
static int load_conf_text(const char *text, struct config *cfg, struct diag *d)
{
        const char *tmp = getenv("TMPDIR");
        char path[512];
        snprintf(path, sizeof(path), "%s/actord-bench-XXXXXX", tmp ? tmp : "/tmp");
        int fd = mkstemp(path);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
                perror("actord-bench: temporary config");
                if (fd >= 0) {
                        close(fd);
                        unlink(path);
                }
                return -1;
        }
        close(fd);
        int r = config_load(path, cfg, d);
        unlink(path);
        return r;
}

static void print_diag(const struct diag *d)
{
        for (size_t i = 0; i < d->n; i++)
                fprintf(stderr, "actord-bench: %s\n", d->lines[i]);
}

/* Room for `samples` latencies after a tenth as many discarded (the warm-up). */
static void mailbox_init(struct bench_mailbox *mb, int samples)
{
        *mb = (struct bench_mailbox){.cap = (uint64_t)(samples + samples / 10)};
        mb->samples = calloc(mb->cap, sizeof(*mb->samples));
        mb->done_fd = eventfd(0, EFD_CLOEXEC);
}

static void mailbox_free(struct bench_mailbox *mb)
{
        if (mb->done_fd >= 0)
                close(mb->done_fd);
        free(mb->samples);
}

/* One measurement on a running pipeline: the first message is ours to ask for, the sink asks
 * for the others until it has them all (then nothing runs). Returns the latencies after the
 * warm-up, sorted, or NULL. */
static uint64_t *measure(struct bench_mailbox *mb, int samples)
{
        mb->n = 0;
        actord_notify(atomic_load_explicit(&mb->src, memory_order_acquire));
        uint64_t v;
        if (read(mb->done_fd, &v, sizeof(v)) < 0)
                return NULL;
        uint64_t *s = mb->samples + samples / 10;
        qsort(s, (size_t)samples, sizeof(*s), bench_cmp_u64);
        return s;
}

/* Loads configuration text, builds and starts its pipeline in this process, calls fn(arg)
 * while it runs and stops it. Returns what fn returned (0 or -1), or -1 after printing why the
 * pipeline did not start. */
static int with_pipeline(const char *text, int (*fn)(void *arg), void *arg)
{
        struct config cfg;
        struct diag d = {0};
        struct plugin_registry reg = {0};
        struct topology topo = {0};
        struct runtime rt = {0};
        int r = load_conf_text(text, &cfg, &d);
        const char *dirs[] = {BENCH_PLUGIN_DIR};
        if (r == 0)
                r = plugin_registry_load(&reg, dirs, 1, &d);
        if (r == 0 && d.n == 0)
                r = topology_build(&topo, &cfg, &reg, &d);
        if (r < 0 || d.n) {
                print_diag(&d);
                r = -1;
        } else if (runtime_start(&rt, &topo, &cfg) < 0) {
                r = -1;
        } else {
                r = fn(arg);
                runtime_stop(&rt, 0);
        }
        topology_free(&topo);
        plugin_registry_free(&reg);
        config_free(&cfg);
        diag_free(&d);
        return r;
}

struct measurement {
        struct bench_mailbox *mb;
        int samples;
        uint64_t *sorted; /* measure()'s result */
};

static int measure_run(void *arg)
{
        struct measurement *m = arg;
        m->sorted = measure(m->mb, m->samples);
        return m->sorted ? 0 : -1;
}

/* Runs one pipeline until `samples` messages went through; fills the per-hop percentiles.
 * Returns 0, or -1 after printing why. */
static int run_pipeline(const struct popts *o, enum placement pl, const char *idle_policy,
                        int filters, int idle_pairs, int samples, double clock_ns, struct pct *ret)
{
        struct bench_mailbox mb;
        mailbox_init(&mb, samples);
        char *text = pipeline_conf(o, pl, idle_policy, filters, idle_pairs, &mb);
        struct measurement m = {.mb = &mb, .samples = samples};
        int r = with_pipeline(text, measure_run, &m);
        free(text);
        uint64_t *s = m.sorted;
        if (r == 0) {
                size_t n = (size_t)samples;
                double hops = filters + 1;
                *ret = (struct pct){.p50 = (median_smooth(s, n) - clock_ns) / hops,
                                    .p99 = (quantile(s, n, 0.99) - clock_ns) / hops,
                                    .p999 = (quantile(s, n, 0.999) - clock_ns) / hops};
        }
        mailbox_free(&mb);
        return r;
}

/* The idle components' cost, in one daemon: it runs the 3-stage cross-worker spinning
 * pipeline, and reloads add the 10,000 idle components and take them away again. Every
 * reload keeps the pipeline's components and channels as they are (the same memory), so the
 * two measurements differ in the idle components only; separate daemons differed by 10-15 %
 * in where their memory landed. Fills the medians of `reps` measurements alone and beside;
 * returns 0, or -1 after printing why. */
static int idle10k(const struct popts *o, int reps, int samples, double clock_ns, double *ret_alone,
                   double *ret_beside)
{
        struct bench_mailbox mb;
        mailbox_init(&mb, samples);
        char *texts[2] = {pipeline_conf(o, CROSS_WORKER, "spin", 1, 0, &mb),
                          pipeline_conf(o, CROSS_WORKER, "spin", 1, 5000, &mb)};
        struct config *cfg = calloc(1, sizeof(*cfg)), *ncfg = NULL;
        struct diag d = {0};
        struct plugin_registry reg = {0};
        struct topology topo = {0}, next = {0};
        struct runtime rt = {0};
        const char *dirs[] = {BENCH_PLUGIN_DIR};
        double alone[16], beside[16];
        int r = cfg && mb.samples ? load_conf_text(texts[0], cfg, &d) : -1;
        if (r == 0 && d.n == 0)
                r = plugin_registry_load(&reg, dirs, 1, &d);
        if (r == 0 && d.n == 0)
                r = topology_build(&topo, cfg, &reg, &d);
        if (r < 0 || d.n || runtime_start(&rt, &topo, cfg) < 0) {
                print_diag(&d);
                r = -1;
                goto out;
        }
        for (int m = 0; m < 2 * reps && r == 0; m++) {
                uint64_t *smp = measure(&mb, samples);
                if (!smp) {
                        r = -1;
                        break;
                }
                double p50 = (median_smooth(smp, (size_t)samples) - clock_ns) / 2;
                if (m % 2)
                        beside[m / 2] = p50;
                else
                        alone[m / 2] = p50;
                /* Then reload to the other configuration (no reload after the last). */
                if (m == 2 * reps - 1)
                        break;
                ncfg = calloc(1, sizeof(*ncfg));
                struct reload_plan plan = {0};
                int failed = 0;
                char busy[256];
                r = ncfg ? load_conf_text(texts[(m + 1) % 2], ncfg, &d) : -1;
                if (r == 0 && d.n == 0)
                        r = topology_build(&next, ncfg, &reg, &d);
                if (r == 0 && d.n == 0)
                        r = runtime_reload(&rt, &topo, &next, &plan, 5000000000u, &failed, busy,
                                           sizeof(busy));
                int kept = plan.n_kept;
                reload_plan_free(&plan);
                /* The pipeline's three components must carry on. */
                if (r < 0 || d.n || failed || kept < 3) {
                        print_diag(&d);
                        fprintf(stderr, "actord-bench: reload failed (%d, %d kept)\n", r, kept);
                        r = -1;
                        topology_free(&next);
                        break;
                }
                /* `next` holds what is left of the old pipeline, which used the old file. */
                topology_free(&next);
                next = (struct topology){0};
                config_free(cfg);
                free(cfg);
                cfg = ncfg;
                ncfg = NULL;
        }
        runtime_stop(&rt, 0);
        if (r == 0) {
                *ret_alone = bench_median(alone, reps);
                *ret_beside = bench_median(beside, reps);
        }
out:
        topology_free(&topo);
        plugin_registry_free(&reg);
        if (ncfg) {
                config_free(ncfg);
                free(ncfg);
        }
        if (cfg) {
                config_free(cfg);
                free(cfg);
        }
        diag_free(&d);
        free(texts[0]);
        free(texts[1]);
        mailbox_free(&mb);
        return r;
}

static int flow_wait(void *arg)
{
        struct bench_flow *mb = arg;
        uint64_t v;
        return read(mb->done_fd, &v, sizeof(v)) < 0 ? -1 : 0;
}

/* Throughput between two spinning workers: bench.flood on the first publishes through a
 * `reject` channel of 1024 (no loss) to bench.drain on the second, one call per message
 * (batch 0) or in runs of `batch`. Sets *ret_mps to the messages per second after the first
 * tenth; returns 0, or -1 after printing why. */
static int flow_run(const struct popts *o, int batch, uint64_t target, double *ret_mps)
{
        struct bench_flow mb = {
            .target = target, .warmup = target / 10, .done_fd = eventfd(0, EFD_CLOEXEC)};
        char *text;
        if (asprintf(
                &text,
                "actord: { plugin_dirs = [ \"%s\" ];\n"
                "  workers = ( { cpu = %d; idle = \"spin\"; }, { cpu = %d; idle = \"spin\"; } ); "
                "};\n"
                "components: {\n"
                "  src = { class = \"bench.flood\"; worker = 0; settings = { mailbox = %lldL; "
                "batch = %d; }; };\n"
                "  sink = { class = \"bench.drain\"; worker = 1; settings = { mailbox = %lldL; "
                "batch = %d; }; };\n"
                "};\n"
                "links = ( { from = \"src.out\"; to = \"sink.in\"; capacity = 1024; "
                "overflow = \"reject\"; } );\n",
                BENCH_PLUGIN_DIR, o->cpu_a, o->cpu_b, (long long)(intptr_t)&mb, batch,
                (long long)(intptr_t)&mb, batch) < 0)
                return -1;
        int r = with_pipeline(text, flow_wait, &mb);
        free(text);
        close(mb.done_fd);
        if (r == 0 && mb.errors) {
                fprintf(stderr,
                        "actord-bench: throughput run (batch %d): %llu messages out of "
                        "order\n",
                        batch, (unsigned long long)mb.errors);
                r = -1;
        }
        if (r == 0)
                *ret_mps =
                    (double)(mb.target - mb.warmup) / ((double)(mb.t_end_ns - mb.t_warm_ns) / 1e9);
        return r;
}

static void emit(const struct popts *o, const char *placement, const char *idle, int filters,
                 const char *metric, double value)
{
        if (!o->json)
                return;
        if (placement)
                /* Ratios with three decimals: they are compared with limits such as 1.1. */
                printf("{\"bench\":\"pipeline\",\"placement\":\"%s\",\"idle\":\"%s\","
                       "\"filters\":%d,\"metric\":\"%s\",\"value\":%.*f}\n",
                       placement, idle, filters, metric, strstr(metric, "ratio") ? 3 : 1, value);
        else
                printf("{\"bench\":\"pipeline\",\"impl\":\"hardware\",\"metric\":\"%s\","
                       "\"value\":%.1f}\n",
                       metric, value);
}

static int parse_cpus(const char *s, struct popts *o)
{
        return sscanf(s, "%d,%d", &o->cpu_a, &o->cpu_b) == 2 && o->cpu_a != o->cpu_b &&
                       o->cpu_a >= 0 && o->cpu_b >= 0
                   ? 0
                   : -1;
}

int bench_pipeline_main(int argc, char **argv)
{
        struct popts o = {.cpu_a = 0, .cpu_b = 1};
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json"))
                        o.json = true;
                else if (!strcmp(argv[i], "--quick"))
                        o.quick = true;
                else if (!strcmp(argv[i], "--cpus") && i + 1 < argc && !parse_cpus(argv[++i], &o))
                        ;
                else {
                        fprintf(stderr, "usage: actord-bench pipeline [--json] [--quick] "
                                        "[--cpus A,B]\n");
                        return 2;
                }
        }
        log_set_max_priority(LOG_WARNING);
        /* The floors pin this thread; the workers' CPUs are checked against its mask. */
        cpu_set_t all;
        sched_getaffinity(0, sizeof(all), &all);
        double clock_ns = clock_cost_ns();
        double line = cacheline_oneway_p50(&o, clock_ns);
        double wake = eventfd_wake_p50(&o, clock_ns);
        sched_setaffinity(0, sizeof(all), &all);
        emit(&o, NULL, NULL, 0, "cacheline_oneway_p50_ns", line);
        emit(&o, NULL, NULL, 0, "eventfd_wake_p50_ns", wake);
        if (!o.json)
                printf("actord-bench pipeline: workers on CPUs %d and %d; per-hop latency = "
                       "end-to-end / (filters + 1), clock read (%.0f ns) taken out\n"
                       "floor: cache-line one-way p50 %.1f ns; eventfd+epoll wake-up p50 %.0f "
                       "ns\n\n%-13s %-6s %7s %10s %10s %10s\n",
                       o.cpu_a, o.cpu_b, clock_ns, line, wake, "placement", "idle", "filters",
                       "hop p50", "hop p99", "hop p99.9");

        static const int filter_counts[] = {1, 20, 100};
        static const char *const idles[] = {"spin", "sleep"};
        double cross_spin_p50 = 0, same_p50 = 0, sleep_p50 = 0, base3 = 0, idle3 = 0;
        double line_near = line, wake_near = wake;
        int failures = 0;
        for (int pl = SAME_WORKER; pl <= CROSS_WORKER; pl++)
                for (int k = 0; k < 2; k++)
                        for (int f = 0; f < 3; f++) {
                                int n = filter_counts[f];
                                bool sleeping = k == 1;
                                /* Sleeping hops cost tens of microseconds each: fewer. */
                                int samples = sleeping ? (n == 100 ? 300 : 2000) : 20000;
                                if (o.quick)
                                        samples /= 10;
                                /* The two runs compared with a floor get it measured just
                                 * before and just after them too: the host may move the
                                 * vCPUs between the start of the run and these runs. */
                                bool cross_target = n == 1 && pl == CROSS_WORKER;
                                double before = 0;
                                if (cross_target)
                                        before = sleeping ? wake_now(&o, clock_ns, &all)
                                                          : line_now(&o, clock_ns, &all);
                                struct pct p = {0};
                                if (run_pipeline(&o, (enum placement)pl, idles[k], n, 0, samples,
                                                 clock_ns, &p) < 0) {
                                        failures++;
                                        continue;
                                }
                                if (cross_target && sleeping)
                                        wake_near = (before + wake_now(&o, clock_ns, &all)) / 2;
                                else if (cross_target)
                                        line_near = (before + line_now(&o, clock_ns, &all)) / 2;
                                const char *pn = placement_name((enum placement)pl);
                                emit(&o, pn, idles[k], n, "hop_p50_ns", p.p50);
                                emit(&o, pn, idles[k], n, "hop_p99_ns", p.p99);
                                emit(&o, pn, idles[k], n, "hop_p999_ns", p.p999);
                                if (!o.json)
                                        printf("%-13s %-6s %7d %10.1f %10.1f %10.1f\n", pn,
                                               idles[k], n, p.p50, p.p99, p.p999);
                                if (n == 1 && pl == CROSS_WORKER && !sleeping)
                                        cross_spin_p50 = p.p50;
                                if (n == 1 && pl == SAME_WORKER && !sleeping)
                                        same_p50 = p.p50;
                                if (n == 1 && pl == CROSS_WORKER && sleeping)
                                        sleep_p50 = p.p50;
                        }
        /* The scale test: the 3-stage pipeline (one filter), alone and beside 10,000 idle
         * components (5,000 source/sink pairs) on the same two workers, seven times each
         * (two with --quick), alternated within one daemon by reloads. */
        int reps = o.quick ? 2 : 7;
        double ratio = 0;
        if (idle10k(&o, reps, o.quick ? 2000 : 20000, clock_ns, &base3, &idle3) == 0)
                ratio = idle3 / base3;
        else
                failures++;
        emit(&o, "cross_worker", "spin", 1, "idle10k_ratio", ratio);

        /* Throughput, for information: per-message calls against runs of 64, alternated five
         * times (two with --quick), medians. */
        int freps = o.quick ? 2 : 5;
        uint64_t target = o.quick ? 2000000 : 20000000;
        double single[5], batched[5];
        int fgot = 0;
        for (int i = 0; i < freps; i++) {
                if (flow_run(&o, 0, target, &single[fgot]) < 0 ||
                    flow_run(&o, 64, target, &batched[fgot]) < 0) {
                        failures++;
                        break;
                }
                fgot++;
        }
        double tp_single = fgot ? bench_median(single, fgot) / 1e6 : 0;
        double tp_batched = fgot ? bench_median(batched, fgot) / 1e6 : 0;
        if (o.json && fgot) {
                printf("{\"bench\":\"pipeline\",\"placement\":\"cross_worker\",\"idle\":"
                       "\"spin\",\"filters\":0,\"metric\":\"tput_single_Mmsgs\",\"value\":%.1f}\n",
                       tp_single);
                printf("{\"bench\":\"pipeline\",\"placement\":\"cross_worker\",\"idle\":"
                       "\"spin\",\"filters\":0,\"metric\":\"tput_batch64_Mmsgs\",\"value\":%.1f}"
                       "\n",
                       tp_batched);
        }
        if (!o.json) {
                printf("\n3-stage cross_worker spin hop p50: %.1f ns alone, %.1f ns beside "
                       "10,000 idle components (medians of %d of each, alternated by reloads of "
                       "one daemon)\n\nTargets (ratios within this run):\n",
                       base3, idle3, reps);
                printf("  (floors measured around the runs they are compared with: cache-line "
                       "%.1f ns, eventfd wake-up %.0f ns)\n",
                       line_near, wake_near);
                printf("  cross_worker spin hop p50 vs cache-line one-way: %.2fx   <= 2x    %s\n",
                       cross_spin_p50 / line_near,
                       cross_spin_p50 <= 2 * line_near ? "PASS" : "MISS");
                printf("  same_worker hop p50: %.1f ns                          <= 50 ns %s\n",
                       same_p50, same_p50 <= 50 ? "PASS" : "MISS");
                printf("  sleep hop p50 vs eventfd wake-up p50: %.2fx           <= 1.3x  %s\n",
                       sleep_p50 / wake_near, sleep_p50 <= 1.3 * wake_near ? "PASS" : "MISS");
                printf("  idle10k_ratio: %.2f                                   <= 1.1   %s\n",
                       ratio, ratio > 0 && ratio <= 1.1 ? "PASS" : "MISS");
                if (fgot)
                        printf("\nFor information: source -> sink between the two workers "
                               "(reject, capacity 1024, 16-byte messages, medians of %d):\n"
                               "  one call per message %.1f M msg/s; runs of 64 (claim_n, "
                               "next_n) %.1f M msg/s: %.2fx\n",
                               fgot, tp_single, tp_batched, tp_batched / tp_single);
        }
        if (failures)
                fprintf(stderr, "actord-bench pipeline: %d runs failed\n", failures);
        return failures ? 1 : 0;
}
