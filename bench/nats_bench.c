/* actord-bench nats: what the NATS bridge costs on top of libnats, in one run against a
 * nats-server the benchmark starts on loopback.
 *
 * Throughput: N messages of core.sample (24 bytes) to one subject, counted and checked (in
 * order, none missing) by a libnats subscriber in this process. `actord` is the real daemon,
 * started for each run: core.tick -> reject channel -> nats.publish, so nothing may be lost
 * and the source waits for the bridge; the peer is a thread of this process publishing the
 * same messages with libnats directly, doing what nats.publish does per message (a natsMsg
 * with the three headers, written at once) or the least it could (a plain publish, libnats's
 * own write buffering, as `headers = false; batch = true;`).
 *
 * Latency: one message at a time, this process publishes a time-stamped message to a subject
 * and waits for it to come back on another, relayed by the daemon (nats.subscribe ->
 * nats.publish, without headers), or by a libnats subscription of this process whose handler
 * publishes it on; the floor is the server alone (the message comes back on its own subject).
 *
 * The daemon, the server and this process share the machine's CPUs: on a 2-CPU machine the
 * figures are of the whole machine, the same for every implementation. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <core/core.h>
#include <nats/nats.h>

#include "bench.h"
#include "clock.h"

struct nopts {
        bool json, quick;
        int reps;
        uint64_t n;       /* messages per throughput run */
        uint64_t samples; /* round trips per latency run */
};

struct env {
        char dir[64];
        pid_t server;
        char url[64];
};

static char *read_file(const char *path)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        char *buf = NULL;
        size_t cap = 0;
        ssize_t n = getdelim(&buf, &cap, 0, f);
        fclose(f);
        if (n < 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* Prints the last lines of a log of ours, after a failure. */
static void show_tail(const char *what, const char *path)
{
        char *text = read_file(path);
        size_t len = text ? strlen(text) : 0;
        fprintf(stderr, "--- %s (%s), its end:\n%s\n", what, path,
                text ? text + (len > 2000 ? len - 2000 : 0) : "(none)");
        free(text);
}

/* Starts args[0] with args (NULL-terminated), its output to log. */
static pid_t spawn(const char *const *args, const char *log)
{
        /* Copies made before the fork: no malloc in the child of a process with threads. */
        char *argv[16] = {NULL};
        int n = 0;
        while (args[n] && n < 15) {
                argv[n] = strdup(args[n]);
                n++;
        }
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        pid_t pid = fd < 0 ? -1 : fork();
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
                execv(argv[0], argv);
                _exit(127);
        }
        if (fd >= 0)
                close(fd);
        for (int i = 0; i < n; i++)
                free(argv[i]);
        return pid;
}

static void reap(pid_t pid)
{
        if (pid <= 0)
                return;
        kill(pid, SIGTERM);
        int st;
        for (int i = 0; i < 500; i++) {
                if (waitpid(pid, &st, WNOHANG) == pid)
                        return;
                poll(NULL, 0, 10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
}

/* A nats-server on loopback, on a port it picks; its URL in e->url. */
static int server_start(struct env *e)
{
        char log[128], ports[128];
        snprintf(log, sizeof(log), "%s/nats-server.log", e->dir);
        const char *args[] = {BENCH_NATS_SERVER,  "-a",   "127.0.0.1", "-p", "-1",
                              "--ports_file_dir", e->dir, NULL};
        e->server = spawn(args, log);
        if (e->server < 0)
                return -1;
        snprintf(ports, sizeof(ports), "%s/nats-server_%d.ports", e->dir, (int)e->server);
        for (int i = 0; i < 1000; i++) {
                char *text = read_file(ports);
                const char *p = text ? strstr(text, "nats://") : NULL;
                const char *colon = p ? strrchr(p + 7, ':') : NULL;
                if (colon && atoi(colon + 1) > 0) {
                        snprintf(e->url, sizeof(e->url), "nats://127.0.0.1:%d", atoi(colon + 1));
                        free(text);
                        return 0;
                }
                free(text);
                poll(NULL, 0, 10);
        }
        show_tail("nats-server", log);
        return -1;
}

static natsConnection *connect_to(const struct env *e, bool asap)
{
        natsOptions *o = NULL;
        natsConnection *nc = NULL;
        if (natsOptions_Create(&o) != NATS_OK || natsOptions_SetURL(o, e->url) != NATS_OK ||
            natsOptions_SetSendAsap(o, asap) != NATS_OK ||
            natsConnection_Connect(&nc, o) != NATS_OK)
                nc = NULL;
        natsOptions_Destroy(o);
        if (!nc)
                fprintf(stderr, "actord-bench nats: cannot connect to %s: %s\n", e->url,
                        nats_GetLastError(NULL));
        return nc;
}

/* actord on configuration text `body` (its workers and plugins added), stderr to a log. */
static pid_t daemon_start(const struct env *e, const char *workers, const char *body)
{
        char conf[128], log[128];
        snprintf(conf, sizeof(conf), "%s/actord.conf", e->dir);
        snprintf(log, sizeof(log), "%s/actord.log", e->dir);
        FILE *f = fopen(conf, "w");
        if (!f)
                return -1;
        fprintf(f, "actord: { workers = ( %s ); };\n%s", workers, body);
        fclose(f);
        const char *args[] = {BENCH_ACTORD,   "--config",           conf,
                              "--plugin-dir", BENCH_ACTORD_PLUGINS, NULL};
        return spawn(args, log);
}

/* ---- throughput ---- */

struct receiver {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        uint64_t n, from; /* messages to come; the first one timed */
        uint64_t next;    /* the sequence number expected next */
        uint64_t t_from, t_last;
        bool bad, done;
        char why[128];
};

/* libnats's delivery thread: one message at a time. */
static void on_tput(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
        struct receiver *r = closure;
        (void)nc;
        (void)sub;
        struct core_sample s;
        uint64_t now = mono_ns();
        pthread_mutex_lock(&r->lock);
        if (!r->bad && !r->done) {
                if (natsMsg_GetDataLength(m) != (int)sizeof(s)) {
                        r->bad = true;
                        snprintf(r->why, sizeof(r->why), "message %" PRIu64 ": %d bytes", r->next,
                                 natsMsg_GetDataLength(m));
                } else {
                        memcpy(&s, natsMsg_GetData(m), sizeof(s));
                        if (s.seq != r->next) {
                                r->bad = true;
                                snprintf(r->why, sizeof(r->why),
                                         "message %" PRIu64 " has seq %" PRIu64, r->next, s.seq);
                        }
                }
                r->next++;
                if (r->next == r->from)
                        r->t_from = now;
                r->t_last = now;
                if (r->next == r->n || r->bad) {
                        r->done = true;
                        pthread_cond_broadcast(&r->cond);
                }
        }
        pthread_mutex_unlock(&r->lock);
        natsMsg_Destroy(m);
}

/* Waits until the receiver has all; returns M msg/s from the first tenth on, or -1. */
static double receiver_wait(struct receiver *r, int timeout_s)
{
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_s;
        pthread_mutex_lock(&r->lock);
        while (!r->done)
                if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
                        break;
        double rate = -1;
        if (!r->done)
                fprintf(stderr, "actord-bench nats: %" PRIu64 " of %" PRIu64 " messages came\n",
                        r->next, r->n);
        else if (r->bad)
                fprintf(stderr, "actord-bench nats: wrong message: %s\n", r->why);
        else
                rate = (double)(r->n - r->from) * 1e3 / (double)(r->t_last - r->t_from);
        /* The handler may still run once (a message after done): it finds done. */
        r->done = true;
        pthread_mutex_unlock(&r->lock);
        return rate;
}

enum tput_impl { T_ACTORD, T_ACTORD_BATCH, T_LIBNATS, T_LIBNATS_BATCH, N_TPUT };
static const char *const tput_name[N_TPUT] = {"actord", "actord/batch", "libnats", "libnats/batch"};

/* What nats.publish sends per message, written by libnats directly. */
static natsStatus publish_one(natsConnection *nc, uint64_t i, bool headers)
{
        struct core_sample s = {.seq = i, .t_ns = 0, .value = (double)i};
        if (!headers)
                return natsConnection_Publish(nc, "tput", &s, (int)sizeof(s));
        char num[24];
        snprintf(num, sizeof(num), "%" PRIu64, i);
        natsMsg *m = NULL;
        natsStatus st = natsMsg_Create(&m, "tput", NULL, (const char *)&s, (int)sizeof(s));
        if (st == NATS_OK)
                st = natsMsgHeader_Set(m, "Actord-Type", "core.sample/24");
        if (st == NATS_OK)
                st = natsMsgHeader_Set(m, "Actord-Seq", num);
        if (st == NATS_OK)
                st = natsMsgHeader_Set(m, "Actord-Source", "bench/pub");
        if (st == NATS_OK)
                st = natsConnection_PublishMsg(nc, m);
        natsMsg_Destroy(m);
        return st;
}

/* One run of impl: M msg/s at the receiver, or -1. */
static double tput_run(const struct env *e, const struct nopts *o, enum tput_impl impl)
{
        struct receiver r = {.n = o->n, .from = o->n / 10};
        pthread_mutex_init(&r.lock, NULL);
        pthread_cond_init(&r.cond, NULL);
        natsConnection *rc = connect_to(e, true);
        natsSubscription *sub = NULL;
        double rate = -1;
        pid_t daemon = -1;
        if (!rc || natsConnection_Subscribe(&sub, rc, "tput", on_tput, &r) != NATS_OK ||
            natsSubscription_SetPendingLimits(sub, -1, -1) != NATS_OK ||
            natsConnection_Flush(rc) != NATS_OK)
                goto out;
        if (impl == T_ACTORD || impl == T_ACTORD_BATCH) {
                char body[1024];
                bool batch = impl == T_ACTORD_BATCH;
                snprintf(body, sizeof(body),
                         "components: {\n"
                         "  src = { class = \"core.tick\"; schedule = { every_us = 100; };\n"
                         "          settings = { burst = 1024; count = %" PRIu64 "; }; };\n"
                         "  pub = { class = \"nats.publish\"; settings = { url = \"%s\"; subject "
                         "= \"tput\"; queue = 4096; headers = %s; batch = %s; }; };\n"
                         "};\nlinks = ( { from = \"src.out\"; to = \"pub.in\"; capacity = 4096; "
                         "overflow = \"reject\"; } );\n",
                         o->n, e->url, batch ? "false" : "true", batch ? "true" : "false");
                daemon = daemon_start(e, "{ idle = \"sleep\"; }", body);
                if (daemon < 0)
                        goto out;
        } else {
                bool batch = impl == T_LIBNATS_BATCH;
                natsConnection *pc = connect_to(e, !batch);
                if (!pc)
                        goto out;
                natsStatus st = NATS_OK;
                for (uint64_t i = 0; i < o->n && st == NATS_OK; i++)
                        st = publish_one(pc, i, !batch);
                if (st == NATS_OK)
                        st = natsConnection_Flush(pc);
                natsConnection_Destroy(pc);
                if (st != NATS_OK) {
                        fprintf(stderr, "actord-bench nats: publish: %s\n", natsStatus_GetText(st));
                        goto out;
                }
        }
        rate = receiver_wait(&r, 120);
out:
        if (daemon > 0) {
                reap(daemon);
                if (rate < 0) {
                        char log[128];
                        snprintf(log, sizeof(log), "%s/actord.log", e->dir);
                        show_tail("actord", log);
                }
        }
        natsSubscription_Destroy(sub);
        natsConnection_Destroy(rc);
        pthread_cond_destroy(&r.cond);
        pthread_mutex_destroy(&r.lock);
        return rate;
}

/* ---- latency ---- */

enum lat_impl { L_SERVER, L_LIBNATS, L_ACTORD_SLEEP, L_ACTORD_SPIN, N_LAT };
static const char *const lat_name[N_LAT] = {"server", "libnats", "actord/sleep", "actord/spin"};

static void on_relay(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure)
{
        (void)sub;
        (void)closure;
        natsConnection_Publish(nc, "lat.b", natsMsg_GetData(m), natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
}

struct pct {
        double p50, p99;
};

/* Round trips, one at a time, through impl; false if one went missing. */
static bool lat_run(const struct env *e, const struct nopts *o, enum lat_impl impl, struct pct *ret)
{
        natsConnection *pc = connect_to(e, true), *relay = NULL;
        natsSubscription *back = NULL, *rsub = NULL;
        pid_t daemon = -1;
        bool ok = false;
        uint64_t *rtt = calloc(o->samples, sizeof(*rtt));
        const char *to = impl == L_SERVER ? "lat.a" : "lat.b";
        if (!pc || !rtt || natsConnection_SubscribeSync(&back, pc, to) != NATS_OK ||
            natsConnection_Flush(pc) != NATS_OK)
                goto out;
        if (impl == L_LIBNATS) {
                if (!(relay = connect_to(e, true)) ||
                    natsConnection_Subscribe(&rsub, relay, "lat.a", on_relay, NULL) != NATS_OK ||
                    natsConnection_Flush(relay) != NATS_OK)
                        goto out;
        } else if (impl != L_SERVER) {
                char body[768];
                snprintf(body, sizeof(body),
                         "components: {\n"
                         "  sub = { class = \"nats.subscribe\"; type = \"core.sample\";\n"
                         "          settings = { url = \"%s\"; subject = \"lat.a\"; }; };\n"
                         "  pub = { class = \"nats.publish\"; settings = { url = \"%s\"; subject "
                         "= \"lat.b\"; headers = false; }; };\n"
                         "};\nlinks = ( \"sub.out -> pub.in\" );\n",
                         e->url, e->url);
                daemon = daemon_start(
                    e, impl == L_ACTORD_SPIN ? "{ idle = \"spin\"; }" : "{ idle = \"sleep\"; }",
                    body);
                if (daemon < 0)
                        goto out;
        }
        /* Until the relay answers (the daemon connects and subscribes meanwhile), a ping every
         * 50 ms; what comes back late is read and dropped before the timed ones. */
        struct core_sample s = {0};
        natsMsg *m = NULL;
        bool up = false;
        for (int i = 0; i < 400 && !up; i++) {
                natsConnection_Publish(pc, "lat.a", &s, (int)sizeof(s));
                up = natsSubscription_NextMsg(&m, back, 50) == NATS_OK;
                natsMsg_Destroy(m);
                m = NULL;
        }
        while (up && natsSubscription_NextMsg(&m, back, 200) == NATS_OK) {
                natsMsg_Destroy(m);
                m = NULL;
        }
        if (!up) {
                fprintf(stderr, "actord-bench nats: the %s relay never answered\n", lat_name[impl]);
                goto out;
        }
        uint64_t warm = o->samples / 10;
        for (uint64_t i = 0; i < o->samples + warm; i++) {
                s.seq = i + 1;
                uint64_t t0 = mono_ns();
                if (natsConnection_Publish(pc, "lat.a", &s, (int)sizeof(s)) != NATS_OK ||
                    natsSubscription_NextMsg(&m, back, 5000) != NATS_OK)
                        goto out;
                uint64_t t1 = mono_ns();
                struct core_sample got;
                bool same = natsMsg_GetDataLength(m) == (int)sizeof(got);
                if (same) {
                        memcpy(&got, natsMsg_GetData(m), sizeof(got));
                        same = got.seq == s.seq;
                }
                natsMsg_Destroy(m);
                m = NULL;
                if (!same) {
                        fprintf(stderr,
                                "actord-bench nats: round trip %" PRIu64 " brought back "
                                "another message\n",
                                i);
                        goto out;
                }
                if (i >= warm)
                        rtt[i - warm] = t1 - t0;
        }
        qsort(rtt, o->samples, sizeof(*rtt), bench_cmp_u64);
        ret->p50 = (double)rtt[o->samples / 2] / 1e3;
        ret->p99 = (double)rtt[o->samples * 99 / 100] / 1e3;
        ok = true;
out:
        if (daemon > 0) {
                reap(daemon);
                if (!ok) {
                        char log[128];
                        snprintf(log, sizeof(log), "%s/actord.log", e->dir);
                        show_tail("actord", log);
                }
        }
        natsSubscription_Destroy(rsub);
        natsConnection_Destroy(relay);
        natsSubscription_Destroy(back);
        natsConnection_Destroy(pc);
        free(rtt);
        return ok;
}

/* ---- the run ---- */

static void emit(const struct nopts *o, const char *impl, const char *metric, double v)
{
        if (o->json)
                printf("{\"bench\":\"nats\",\"impl\":\"%s\",\"metric\":\"%s\",\"value\":%.3f}\n",
                       impl, metric, v);
}

static int parse(int argc, char **argv, struct nopts *o)
{
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--json"))
                        o->json = true;
                else if (!strcmp(argv[i], "--quick"))
                        o->quick = true;
                else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
                        o->reps = atoi(argv[++i]);
                else {
                        fprintf(stderr, "usage: actord-bench nats [--json] [--quick] [--reps N]\n");
                        return -1;
                }
        }
        if (o->reps < 1)
                o->reps = o->quick ? 1 : 5;
        o->n = o->quick ? 50000 : 300000;
        o->samples = o->quick ? 300 : 5000;
        return 0;
}

int bench_nats_main(int argc, char **argv)
{
        struct nopts o = {0};
        if (parse(argc, argv, &o) < 0)
                return 2;
        struct env e = {.server = -1};
        snprintf(e.dir, sizeof(e.dir), "/tmp/actord-bench-nats-XXXXXX");
        if (!mkdtemp(e.dir)) {
                perror("actord-bench nats: mkdtemp");
                return 1;
        }
        int rc = 1;
        if (server_start(&e) < 0) {
                fprintf(stderr, "actord-bench nats: %s did not start\n", BENCH_NATS_SERVER);
                goto out;
        }
        if (!o.json)
                printf("actord-bench nats: %s, %" PRIu64 " messages of 24 bytes a throughput run "
                       "(median of %d, alternated), %" PRIu64 " round trips a latency run\n\n",
                       e.url, o.n, o.reps, o.samples);
        double runs[N_TPUT][64], tput[N_TPUT];
        int reps = o.reps > 64 ? 64 : o.reps;
        for (int k = 0; k < reps; k++)
                for (int i = 0; i < N_TPUT; i++)
                        if ((runs[i][k] = tput_run(&e, &o, (enum tput_impl)i)) < 0) {
                                fprintf(stderr, "actord-bench nats: %s failed\n", tput_name[i]);
                                goto out;
                        }
        for (int i = 0; i < N_TPUT; i++) {
                tput[i] = bench_median(runs[i], reps);
                emit(&o, tput_name[i], "tput_Mmsgs", tput[i]);
        }
        struct pct lat[N_LAT];
        for (int i = 0; i < N_LAT; i++) {
                if (!lat_run(&e, &o, (enum lat_impl)i, &lat[i])) {
                        fprintf(stderr, "actord-bench nats: %s round trips failed\n", lat_name[i]);
                        goto out;
                }
                emit(&o, lat_name[i], "rtt_p50_us", lat[i].p50);
                emit(&o, lat_name[i], "rtt_p99_us", lat[i].p99);
        }
        if (!o.json) {
                printf("throughput (M msg/s at the subscriber, every message checked)\n");
                printf("  %-14s %8s   %s\n", "impl", "M msg/s", "per message");
                for (int i = 0; i < N_TPUT; i++)
                        printf("  %-14s %8.3f   %s\n", tput_name[i], tput[i],
                               i == T_ACTORD ? "nats.publish: three headers, written at once"
                               : i == T_ACTORD_BATCH ? "nats.publish: headers = false, batch = true"
                               : i == T_LIBNATS      ? "a natsMsg with the three headers, at once"
                                                     : "natsConnection_Publish, buffered");
                printf("  actord vs libnats: %.2fx; actord/batch vs libnats/batch: %.2fx\n\n",
                       tput[T_ACTORD] / tput[T_LIBNATS],
                       tput[T_ACTORD_BATCH] / tput[T_LIBNATS_BATCH]);
                printf("round trip, one message at a time (us)\n");
                printf("  %-14s %8s %8s   %s\n", "relay", "p50", "p99", "");
                for (int i = 0; i < N_LAT; i++)
                        printf("  %-14s %8.1f %8.1f   %s\n", lat_name[i], lat[i].p50, lat[i].p99,
                               i == L_SERVER    ? "no relay: the server sends it back"
                               : i == L_LIBNATS ? "a libnats handler publishes it on"
                               : i == L_ACTORD_SLEEP
                                   ? "nats.subscribe -> nats.publish, sleeping worker"
                                   : "nats.subscribe -> nats.publish, spinning worker");
                printf("  actord/sleep relay adds %.1f us to libnats's (p50)\n",
                       lat[L_ACTORD_SLEEP].p50 - lat[L_LIBNATS].p50);
        }
        rc = 0;
out:
        reap(e.server);
        nats_Close();
        const char *files[] = {"nats-server.log", "actord.conf", "actord.log"};
        char path[128];
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", e.dir, files[i]);
                unlink(path);
        }
        if (rmdir(e.dir) < 0)
                fprintf(stderr, "actord-bench nats: %s left: %s\n", e.dir, strerror(errno));
        return rc;
}
