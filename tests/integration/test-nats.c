/* The NATS bridge (nats.publish, nats.subscribe) through the real daemon and a real NATS
 * server (Debian's nats-server), started here on a port of its choosing; this test process is
 * the other end, through libnats. */
#include "daemonutil.h"

#include <core/core.h>
#include <inttypes.h>
#include <dirent.h>
#include <nats/nats.h>
#include <sys/stat.h>

TU_TMPDIR_SUITE(nats, 90);

#ifndef NATS_SERVER
#define NATS_SERVER "/usr/sbin/nats-server"
#endif

struct server {
        pid_t pid;
        int port;
        char url[64];
};

/* Starts nats-server on 127.0.0.1:port (0: one it picks), with the arguments `extra` (NULL or
 * NULL-terminated) after its own, and waits (inotify) until its ports file says it listens. */
static void server_start_with(struct server *s, int port, const char *const *extra)
{
        char portarg[16], *log, *ports;
        snprintf(portarg, sizeof(portarg), "%d", port ? port : -1);
        cr_assert(asprintf(&log, "%s/nats-server.log", dir) > 0);
        *s = (struct server){0};
        /* Copies made before the fork: no malloc in the child of a process with threads. */
        const char *args[32] = {NATS_SERVER,        "-a", "127.0.0.1", "-p", portarg,
                                "--ports_file_dir", dir,  "-l",        log};
        int n = 9;
        for (int i = 0; extra && extra[i] && n < 31; i++)
                args[n++] = extra[i];
        char *argv[32] = {NULL};
        for (int i = 0; i < n; i++)
                cr_assert((argv[i] = strdup(args[i])));
        s->pid = fork();
        cr_assert(s->pid >= 0);
        if (s->pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                execv(NATS_SERVER, argv);
                _exit(127);
        }
        for (int i = 0; i < n; i++)
                free(argv[i]);
        cr_assert(asprintf(&ports, "%s/nats-server_%d.ports", dir, (int)s->pid) > 0);
        /* A TLS server lists its client port as tls://. */
        bool tls = false;
        for (int i = 0; extra && extra[i]; i++)
                tls = tls || !strcmp(extra[i], "--tls");
        const char *scheme = tls ? "tls://" : "nats://";
        cr_assert(wait_contains(dir, ports, scheme, 20000), "nats-server did not start:\n%s",
                  tu_read(log));
        char *text = tu_read(ports);
        char *colon = strrchr(strstr(text, scheme) + strlen(scheme), ':');
        s->port = atoi(colon + 1);
        cr_assert(s->port > 0, "ports file: %s", text);
        snprintf(s->url, sizeof(s->url), "%s127.0.0.1:%d", scheme, s->port);
        free(text);
        unlink(ports);
        free(ports);
        free(log);
}

static void server_start(struct server *s, int port)
{
        server_start_with(s, port, NULL);
}

static void server_stop(struct server *s)
{
        if (s->pid <= 0)
                return;
        kill(s->pid, SIGCONT);
        kill(s->pid, SIGTERM);
        int status;
        waitpid(s->pid, &status, 0);
        s->pid = 0;
}

static natsConnection *client(const struct server *s)
{
        natsConnection *nc = NULL;
        natsStatus st = natsConnection_ConnectTo(&nc, s->url);
        cr_assert_eq(st, NATS_OK, "connect to %s: %s", s->url, natsStatus_GetText(st));
        return nc;
}

/* The configuration: two sleeping workers and `body`; on a machine with one CPU, one worker
 * and body's "worker = 1;" removed. */
static char *write_conf(const char *body)
{
        char workers[160], *text, *path, *copy = strdup(body);
        if (test_workers("sleep", workers, sizeof(workers)) == 1)
                for (char *w; (w = strstr(copy, "worker = 1;"));)
                        memset(w, ' ', strlen("worker = 1;"));
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\" ]; stall_ms = 500;\n"
                           "          workers = ( %s ); };\n%s",
                           ACTORD_TEST_PLUGIN_DIR, workers, copy) > 0);
        path = tu_write(dir, "nats.conf", text);
        free(text);
        free(copy);
        return path;
}

/* The daemon's control socket, for its metrics. */
static char *ctl_path(void)
{
        char *path;
        cr_assert(asprintf(&path, "%s/ctl.sock", dir) > 0);
        return path;
}

/* The value of the metrics sample `series` (name and labels), which must be there. */
static double metric_value(const char *series)
{
        char *sock = ctl_path();
        char *m = ctl_request(sock, "metrics\n", 8, false, 10000);
        cr_assert(m && !strncmp(m, "ok\n", 3), "metrics: %s", m);
        double v = must_metric(m, series);
        free(m);
        free(sock);
        return v;
}

static void start(struct daemon *d, const char *conf)
{
        char *sock = ctl_path();
        const char *args[] = {"--config", conf, "--control-socket", sock, NULL};
        daemon_start(d, dir, args);
        free(sock);
        cr_assert(daemon_wait_notify(d, "READY=1", 20000), "no READY; stderr:\n%s",
                  daemon_stderr(d));
}

/* Starts actord on the configuration `body` and waits until its component `sub` subscribed
 * to `subject`; returns the configuration's path. */
static char *start_subscribed(struct daemon *d, const char *body, const char *subject)
{
        char *conf = write_conf(body), want[128];
        start(d, conf);
        snprintf(want, sizeof(want), "sub: subscribed to '%s'", subject);
        cr_assert(wait_contains(dir, d->err_path, want, 20000), "stderr:\n%s", daemon_stderr(d));
        return conf;
}

static void stop(struct daemon *d)
{
        kill(d->pid, SIGTERM);
        int status = daemon_wait_exit(d, 20000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x; stderr:\n%s", status,
                  daemon_stderr(d));
        daemon_cleanup(d);
}

static uint64_t header_u64(natsMsg *m, const char *key)
{
        const char *v = NULL;
        cr_assert_eq(natsMsgHeader_Get(m, key, &v), NATS_OK, "no %s header", key);
        return strtoull(v, NULL, 10);
}

/* This process's subscription to `subject` on s, in place (flushed) before it returns. */
struct listener {
        natsConnection *nc;
        natsSubscription *sub;
};

static void listen_to(struct listener *l, const struct server *s, const char *subject)
{
        l->nc = client(s);
        cr_assert_eq(natsConnection_SubscribeSync(&l->sub, l->nc, subject), NATS_OK);
        cr_assert_eq(natsConnection_Flush(l->nc), NATS_OK);
}

static void listener_close(struct listener *l)
{
        natsSubscription_Destroy(l->sub);
        natsConnection_Destroy(l->nc);
}

/* The configuration of a core.tick (every every_us) whose messages nats.publish sends to
 * `subject` on `url`. */
static char *publisher_conf(const char *url, const char *subject, int every_us)
{
        char body[512];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  src = { class = \"core.tick\"; schedule = { every_us = %d; }; };\n"
                 "  pub = { class = \"nats.publish\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"%s\"; }; };\n"
                 "};\nlinks = ( \"src.out -> pub.in\" );\n",
                 every_us, url, subject);
        return write_conf(body);
}

Test(nats, publishes_every_message_with_its_type_and_sequence)
{
        struct server s;
        server_start(&s, 0);
        struct listener l;
        listen_to(&l, &s, "pipe.samples");

        char body[512];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  src = { class = \"core.tick\"; schedule = { every_us = 500; };\n"
                 "          settings = { count = 600; start = 7; burst = 2; }; };\n"
                 "  pub = { class = \"nats.publish\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"pipe.samples\"; }; };\n"
                 "};\nlinks = ( \"src.out -> pub.in\" );\n",
                 s.url);
        char *conf = write_conf(body);
        struct daemon d;
        start(&d, conf);
        /* core.tick stops after 600 messages (300 runs of 2), values 7, 8, ... The first
         * ones can come before the bridge's first connect: they wait for it, in its queue (of
         * 1024) and then in the channel (1024 more), so none is lost. */
        char host[256], source[300];
        cr_assert_eq(gethostname(host, sizeof(host)), 0);
        snprintf(source, sizeof(source), "%s/pub", host);
        for (uint64_t i = 0; i < 600; i++) {
                natsMsg *m = NULL;
                natsStatus st = natsSubscription_NextMsg(&m, l.sub, 10000);
                cr_assert_eq(st, NATS_OK, "message %" PRIu64 ": %s; stderr:\n%s", i,
                             natsStatus_GetText(st), daemon_stderr(&d));
                cr_assert_eq(natsMsg_GetDataLength(m), (int)sizeof(struct core_sample));
                struct core_sample smp;
                memcpy(&smp, natsMsg_GetData(m), sizeof(smp));
                cr_assert_eq(smp.seq, 7 + i, "message %" PRIu64 " has seq %" PRIu64, i, smp.seq);
                cr_assert_eq(smp.value, (double)smp.seq);
                const char *type = NULL, *from = NULL;
                cr_assert_eq(natsMsgHeader_Get(m, "Actord-Type", &type), NATS_OK);
                cr_assert_str_eq(type, "core.sample/24");
                cr_assert_eq(header_u64(m, "Actord-Seq"), i,
                             "the channel's sequence numbers, from 0");
                cr_assert_eq(natsMsgHeader_Get(m, "Actord-Source", &from), NATS_OK);
                cr_assert_str_eq(from, source);
                natsMsg_Destroy(m);
        }
        /* The log has its own thread: wait for the line rather than read once. */
        cr_assert(wait_contains(dir, d.err_path, "pub: connected to nats://127.0.0.1:", 10000),
                  "stderr:\n%s", daemon_stderr(&d));
        cr_assert_eq(metric_value("actord_channel_lost_total{from=\"src.out\",to=\"pub.in\","
                                  "type=\"core.sample\",policy=\"overwrite\"}"),
                     0);
        stop(&d);
        listener_close(&l);
        server_stop(&s);
        free(conf);
}

/* A message as nats.publish sends it, from this process: `source` (Actord-Source) and `type`
 * (Actord-Type) when not NULL. */
static void send_sample_from(natsConnection *nc, const char *subject, uint64_t seq,
                             const char *type, const char *source, int len)
{
        struct core_sample smp = {.seq = seq, .t_ns = 1, .value = (double)seq * 2};
        char buf[64] = {0};
        memcpy(buf, &smp, sizeof(smp));
        natsMsg *m;
        cr_assert_eq(natsMsg_Create(&m, subject, NULL, buf, len), NATS_OK);
        char num[24];
        snprintf(num, sizeof(num), "%" PRIu64, seq);
        cr_assert_eq(natsMsgHeader_Set(m, "Actord-Seq", num), NATS_OK);
        if (type)
                cr_assert_eq(natsMsgHeader_Set(m, "Actord-Type", type), NATS_OK);
        if (source)
                cr_assert_eq(natsMsgHeader_Set(m, "Actord-Source", source), NATS_OK);
        cr_assert_eq(natsConnection_PublishMsg(nc, m), NATS_OK);
        natsMsg_Destroy(m);
}

static void send_sample(natsConnection *nc, const char *subject, uint64_t seq, const char *type,
                        int len)
{
        send_sample_from(nc, subject, seq, type, NULL, len);
}

Test(nats, subscribes_and_refuses_messages_that_do_not_fit)
{
        struct server s;
        server_start(&s, 0);
        char *out, body[768];
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  sub = { class = \"nats.subscribe\";\n"
                 "          settings = { url = \"%s\"; subject = \"in.*\"; }; };\n"
                 "  x = { class = \"core.scale\"; settings = { factor = 1; }; };\n"
                 "  log = { class = \"core.log\"; worker = 1; settings = { path = \"%s\"; }; };\n"
                 "};\nlinks = ( \"sub.out -> x.in\", \"x.out -> log.in\" );\n",
                 s.url, out);
        struct daemon d;
        char *conf = start_subscribed(&d, body, "in.*");

        natsConnection *nc = client(&s);
        /* A message of the wrong size: refused, said in the log, nothing delivered. */
        send_sample(nc, "in.a", 0, NULL, 10);
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        cr_assert(wait_contains(dir, d.err_path, "refused", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        cr_assert(strstr(err, "sub: 1 messages on 'in.*' refused (1 so far); the last: 10 bytes "
                              "on 'in.a', where the output's type core.sample/24 has 24"),
                  "%s", err);
        free(err);
        /* The same count in the metrics: the component's own counter. */
        cr_assert_eq(metric_value("actord_plugin_nats_subscribe_refused_total{component=\"sub\","
                                  "class=\"nats.subscribe\",worker=\"0\"}"),
                     1);
        /* 100 good ones, then one of another type, with a hole in Actord-Seq at 50. */
        for (uint64_t i = 0; i < 101; i++)
                if (i != 50)
                        send_sample(nc, i % 2 ? "in.b" : "in.c", i, "core.sample/24",
                                    (int)sizeof(struct core_sample));
        send_sample(nc, "in.a", 101, "other.type/24", (int)sizeof(struct core_sample));
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        cr_assert(wait_lines(dir, out, 100, 20000), "%d lines; stderr:\n%s", count_lines(out),
                  daemon_stderr(&d));
        cr_assert(wait_contains(dir, d.err_path,
                                "1 messages lost before they reached this "
                                "subscriber (gaps in Actord-Seq) (1 so far)",
                                20000),
                  "stderr:\n%s", daemon_stderr(&d));
        cr_assert_eq(metric_value("actord_plugin_nats_subscribe_gaps_total{component=\"sub\","
                                  "class=\"nats.subscribe\",worker=\"0\"}"),
                     1);
        stop(&d);
        /* Every good message once, in order; nothing of the refused ones. */
        char *text = tu_read(out);
        char *line = text;
        for (uint64_t i = 0; i < 101; i++) {
                if (i == 50)
                        continue;
                char want[64];
                int n = snprintf(want, sizeof(want), "seq=%" PRIu64 " ", i);
                cr_assert(!strncmp(line, want, (size_t)n), "expected %s, got: %.80s", want, line);
                char *v = strstr(line, " value=");
                cr_assert(v && strtod(v + 7, NULL) == (double)i * 2, "%.80s", line);
                line = strchr(line, '\n') + 1;
        }
        cr_assert(!strncmp(line, "end messages=100 ", 17), "after the messages: %.80s", line);
        free(text);
        natsConnection_Destroy(nc);
        server_stop(&s);
        free(conf);
        free(out);
}

/* Several publishers on one subject: each one's Actord-Seq is followed apart (by its
 * Actord-Source), so their interleaving is no gap, and a hole in one of them is. Messages
 * without the header are one more publisher. */
Test(nats, gaps_are_counted_per_publisher)
{
        struct server s;
        server_start(&s, 0);
        char *out, body[768];
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  sub = { class = \"nats.subscribe\"; type = \"core.sample\";\n"
                 "          settings = { url = \"%s\"; subject = \"fan.in\"; }; };\n"
                 "  log = { class = \"core.log\"; worker = 1; settings = { path = \"%s\"; }; };\n"
                 "};\nlinks = ( \"sub.out -> log.in\" );\n",
                 s.url, out);
        struct daemon d;
        char *conf = start_subscribed(&d, body, "fan.in");
        natsConnection *nc = client(&s);
        int sent = 0;
        /* a/pub, b/pub and one without a name, interleaved; a/pub skips 60 (one lost). */
        for (uint64_t i = 0; i < 100; i++) {
                if (i != 60) {
                        send_sample_from(nc, "fan.in", i, NULL, "a/pub", 24);
                        sent++;
                }
                send_sample_from(nc, "fan.in", i + 1000, NULL, "b/pub", 24);
                send_sample_from(nc, "fan.in", i + 5000, NULL, NULL, 24);
                sent += 2;
        }
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        cr_assert(wait_lines(dir, out, sent, 20000), "%d lines; stderr:\n%s", count_lines(out),
                  daemon_stderr(&d));
        cr_assert_eq(metric_value("actord_plugin_nats_subscribe_gaps_total{component=\"sub\","
                                  "class=\"nats.subscribe\",worker=\"0\"}"),
                     1);
        stop(&d);
        natsConnection_Destroy(nc);
        server_stop(&s);
        free(conf);
        free(out);
}

Test(nats, a_server_that_stops_reading_stalls_no_worker)
{
        struct server s;
        server_start(&s, 0);
        char *out, body[1024];
        cr_assert(asprintf(&out, "%s/beat.txt", dir) > 0);
        /* A fast publisher and, on the same worker, a heartbeat pipeline that must go on. */
        snprintf(
            body, sizeof(body),
            "components: {\n"
            "  fast = { class = \"core.tick\"; schedule = { every_us = 1000; };\n"
            "           settings = { burst = 2000; }; };\n"
            "  pub = { class = \"nats.publish\"; worker = 1;\n"
            "          settings = { url = \"%s\"; subject = \"big\"; queue = 256; }; };\n"
            "  beat = { class = \"core.tick\"; worker = 1; schedule = { every_us = 2000; }; };\n"
            "  log = { class = \"core.log\"; worker = 1; settings = { path = \"%s\"; }; };\n"
            "};\nlinks = ( \"fast.out -> pub.in\", \"beat.out -> log.in\" );\n",
            s.url, out);
        char *conf = write_conf(body);
        struct daemon d;
        start(&d, conf);
        cr_assert(wait_contains(dir, d.err_path, "pub: connected", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        /* The server stops reading: its socket fills, the sending thread blocks in a write,
         * the bridge's queue fills, and the messages wait in the channel, which loses the
         * oldest (overwrite) and says so; nothing waits for the server. */
        cr_assert_eq(kill(s.pid, SIGSTOP), 0);
        cr_assert(wait_contains(dir, d.err_path, "channel fast.out -> pub.in: ", 30000),
                  "stderr:\n%s", daemon_stderr(&d));
        cr_assert_gt(metric_value("actord_channel_lost_total{from=\"fast.out\",to=\"pub.in\","
                                  "type=\"core.sample\",policy=\"overwrite\"}"),
                     0);
        int beats = count_lines(out);
        cr_assert(wait_lines(dir, out, beats + 200, 20000),
                  "the heartbeat on the publisher's worker stopped at %d lines; stderr:\n%s",
                  count_lines(out), daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        cr_assert_null(strstr(err, "stuck"), "%s", err);
        free(err);
        /* Stopping does not wait for the stalled server. */
        int64_t t0 = now_ms();
        stop(&d);
        cr_assert_lt(now_ms() - t0, 5000, "stopping took %" PRId64 " ms", now_ms() - t0);
        server_stop(&s);
        free(conf);
        free(out);
}

/* Under a reject input nothing is lost on the way to the server: a server that stops reading
 * fills the publisher's queue, then the channel, then refuses the source, which waits; once
 * the server reads again, every message arrives, once and in order. */
Test(nats, a_reject_input_holds_its_source_while_the_server_stalls)
{
        struct server s;
        server_start(&s, 0);
        const int count = 200000;
        char body[1024];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  src = { class = \"core.tick\"; schedule = { every_us = 1000; };\n"
                 "          settings = { burst = 200; count = %d; }; };\n"
                 "  pub = { class = \"nats.publish\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"held\"; queue = 64; }; };\n"
                 "};\nlinks = ( { from = \"src.out\"; to = \"pub.in\"; capacity = 64; overflow = "
                 "\"reject\"; } );\n",
                 count, s.url);
        struct listener l;
        listen_to(&l, &s, "held");
        cr_assert_eq(natsSubscription_SetPendingLimits(l.sub, -1, -1), NATS_OK);
        char *conf = write_conf(body);
        struct daemon d;
        start(&d, conf);
        cr_assert(wait_contains(dir, d.err_path, "pub: connected", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        cr_assert_eq(kill(s.pid, SIGSTOP), 0);
        const char *rejected = "actord_channel_rejected_total{from=\"src.out\",to=\"pub.in\","
                               "type=\"core.sample\",policy=\"reject\"}";
        int64_t end = now_ms() + 30000;
        while (metric_value(rejected) == 0 && now_ms() < end)
                poll(NULL, 0, 10);
        double refused = metric_value(rejected);
        cr_assert_eq(kill(s.pid, SIGCONT), 0);
        cr_assert_gt(refused, 0, "the source was never refused; stderr:\n%s", daemon_stderr(&d));
        for (int i = 0; i < count; i++) {
                natsMsg *m = NULL;
                natsStatus st = natsSubscription_NextMsg(&m, l.sub, 20000);
                cr_assert_eq(st, NATS_OK, "message %d: %s; stderr:\n%s", i, natsStatus_GetText(st),
                             daemon_stderr(&d));
                uint64_t seq = header_u64(m, "Actord-Seq");
                natsMsg_Destroy(m);
                if (seq != (uint64_t)i)
                        cr_assert_fail("message %d has Actord-Seq %" PRIu64, i, seq);
        }
        cr_assert(wait_contains(dir, d.err_path, "component 'src' finished (DONE)", 20000),
                  "stderr:\n%s", daemon_stderr(&d));
        cr_assert_eq(metric_value("actord_channel_lost_total{from=\"src.out\",to=\"pub.in\","
                                  "type=\"core.sample\",policy=\"reject\"}"),
                     0);
        char *err = daemon_stderr(&d);
        cr_assert_null(strstr(err, "not sent"), "%s", err);
        free(err);
        stop(&d);
        listener_close(&l);
        server_stop(&s);
        free(conf);
}

Test(nats, starts_before_its_server_and_connects_when_it_comes)
{
        /* A port where nothing listens yet: one the server picked, then stopped. */
        struct server s;
        server_start(&s, 0);
        int port = s.port;
        server_stop(&s);
        char *conf = publisher_conf(s.url, "late", 2000);
        struct daemon d;
        int64_t t0 = now_ms();
        start(&d, conf);
        /* READY does not wait for a server. */
        cr_assert_lt(now_ms() - t0, 5000);
        server_start(&s, port);
        struct listener l;
        listen_to(&l, &s, "late");
        uint64_t last = 0;
        for (int i = 0; i < 20; i++) {
                natsMsg *m = NULL;
                natsStatus st = natsSubscription_NextMsg(&m, l.sub, 20000);
                cr_assert_eq(st, NATS_OK, "message %d: %s; stderr:\n%s", i, natsStatus_GetText(st),
                             daemon_stderr(&d));
                uint64_t seq = header_u64(m, "Actord-Seq");
                cr_assert(i == 0 || seq > last, "Actord-Seq %" PRIu64 " after %" PRIu64, seq, last);
                last = seq;
                natsMsg_Destroy(m);
        }
        cr_assert(wait_contains(dir, d.err_path, "pub: connected to nats://127.0.0.1:", 20000),
                  "stderr:\n%s", daemon_stderr(&d));
        stop(&d);
        listener_close(&l);
        server_stop(&s);
        free(conf);
}

/* A server that comes up after the daemon and refuses it (a password it does not have): libnats
 * gives up on the connection, and the components fail at once with the server's reason,
 * rather than wait on without a word. */
Test(nats, a_server_that_comes_up_refusing_fails_the_components_with_its_reason)
{
        struct server s;
        server_start(&s, 0);
        int port = s.port;
        server_stop(&s);
        char body[1024];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  never = { class = \"core.tick\"; schedule = { every_us = 2000000000; }; };\n"
                 "  pub = { class = \"nats.publish\"; restart = \"never\";\n"
                 "          settings = { url = \"%s\"; subject = \"late\"; }; };\n"
                 "  sub = { class = \"nats.subscribe\"; type = \"core.sample\"; restart = "
                 "\"never\";\n"
                 "          settings = { url = \"%s\"; subject = \"late\"; }; };\n"
                 "  log = { class = \"core.log\"; worker = 1; };\n"
                 "};\nlinks = ( \"never.out -> pub.in\", \"sub.out -> log.in\" );\n",
                 s.url, s.url);
        char *conf = write_conf(body);
        struct daemon d;
        start(&d, conf);
        const char *extra[] = {"--user", "someone", "--pass", "secret", NULL};
        server_start_with(&s, port, extra);
        char want[256];
        snprintf(want, sizeof(want),
                 "component 'pub' (nats.publish) failed: cannot publish to 'late' on "
                 "nats://127.0.0.1:%d: ",
                 port);
        cr_assert(wait_contains(dir, d.err_path, want, 20000), "stderr:\n%s", daemon_stderr(&d));
        snprintf(want, sizeof(want),
                 "component 'sub' (nats.subscribe) failed: cannot subscribe to 'late' on "
                 "nats://127.0.0.1:%d: ",
                 port);
        cr_assert(wait_contains(dir, d.err_path, want, 20000), "stderr:\n%s", daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        cr_assert(strstr(err, "Authorization Violation"), "%s", err);
        free(err);
        stop(&d);
        server_stop(&s);
        free(conf);
}

/* A server gone for good under a publisher: libnats keeps what it is given in its reconnect
 * buffer, then refuses; the refusals are counted and said, with libnats's reason. */
Test(nats, sends_refused_while_the_server_is_away_are_counted)
{
        struct server s;
        server_start(&s, 0);
        char body[1024];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  src = { class = \"core.tick\"; schedule = { every_us = 1000; };\n"
                 "          settings = { burst = 1000; }; };\n"
                 "  pub = { class = \"nats.publish\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"gone\"; }; };\n"
                 "};\nlinks = ( \"src.out -> pub.in\" );\n",
                 s.url);
        char *conf = write_conf(body);
        struct daemon d;
        start(&d, conf);
        cr_assert(wait_contains(dir, d.err_path, "pub: connected", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        server_stop(&s);
        cr_assert(wait_contains(dir, d.err_path, " messages not sent (", 30000), "stderr:\n%s",
                  daemon_stderr(&d));
        char workers[160], series[160];
        snprintf(series, sizeof(series),
                 "actord_plugin_nats_publish_send_failed_total{component=\"pub\",class=\"nats."
                 "publish\",worker=\"%d\"}",
                 test_workers("sleep", workers, sizeof(workers)) == 2 ? 1 : 0);
        cr_assert_gt(metric_value(series), 0);
        stop(&d);
        free(conf);
}

/* A component whose settings nats.* refuses: the daemon does not start, and says why. */
static void refused(const char *settings, const char *why)
{
        char body[512];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  src = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                 "  pub = { class = \"nats.publish\"; settings = { %s }; };\n"
                 "};\nlinks = ( \"src.out -> pub.in\" );\n",
                 settings);
        char *conf = write_conf(body);
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        int status = daemon_wait_exit(&d, 20000);
        char *err = daemon_stderr(&d);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0, "status 0x%x; stderr:\n%s", status,
                  err);
        cr_assert(strstr(err, "'pub'") && strstr(err, why), "expected '%s' in:\n%s", why, err);
        free(err);
        daemon_cleanup(&d);
        free(conf);
}

Test(nats, bad_settings_are_refused_with_the_reason)
{
        refused("subject = \"x\"; url = \"http://127.0.0.1:4222\";",
                "url: 'http://127.0.0.1:4222': the scheme must be nats:// or tls://");
        refused("subject = \"x\"; url = \"nats://127.0.0.1:99999\";",
                "'nats://127.0.0.1:99999': the port must be 1 .. 65535");
        refused("subject = \"a.*\";", "'a.*': subject contains a wildcard");
        refused("subject = \"a..b\";", "'a..b': subject has an empty token");
        refused("subject = \"x\"; queue = 0;", "queue must be in 1 .. 1048576 messages, not 0");
        refused("subject = \"x\"; url = \"nats://a:1, nats://b:2\";",
                "' nats://b:2': the scheme must be nats:// or tls://");
        refused("subject = \"x\"; tls_ca = \"/nonexistent/ca.pem\";",
                "tls_ca '/nonexistent/ca.pem': No such file or directory");
        refused("subject = \"x\"; tls_cert = \"/etc/hostname\";",
                "tls_cert and tls_key go together: tls_key is missing");
}

Test(nats, a_list_of_servers_is_a_pool)
{
        /* The first server of the list is gone; the bridge goes on to the second. */
        struct server gone, s;
        server_start(&gone, 0);
        server_stop(&gone);
        server_start(&s, 0);
        struct listener l;
        listen_to(&l, &s, "pool");
        char urls[160];
        snprintf(urls, sizeof(urls), "%s,%s", gone.url, s.url);
        char *conf = publisher_conf(urls, "pool", 2000);
        struct daemon d;
        start(&d, conf);
        natsMsg *m = NULL;
        natsStatus st = natsSubscription_NextMsg(&m, l.sub, 20000);
        cr_assert_eq(st, NATS_OK, "%s; stderr:\n%s", natsStatus_GetText(st), daemon_stderr(&d));
        natsMsg_Destroy(m);
        stop(&d);
        listener_close(&l);
        server_stop(&s);
        free(conf);
}

Test(nats, passwords_stay_out_of_the_log)
{
        struct server s;
        server_start(&s, 0);
        /* The server has no users: a password in the URL is sent and ignored. */
        char url[96];
        snprintf(url, sizeof(url), "nats://me:s3cret@127.0.0.1:%d", s.port);
        char *conf = publisher_conf(url, "p", 100000);
        struct daemon d;
        start(&d, conf);
        char want[96];
        snprintf(want, sizeof(want), "pub: connected to nats://me:***@127.0.0.1:%d", s.port);
        cr_assert(wait_contains(dir, d.err_path, want, 20000), "stderr:\n%s", daemon_stderr(&d));
        stop(&d);
        char *err = tu_read(d.err_path);
        cr_assert_null(strstr(err ? err : "", "s3cret"), "%s", err);
        free(err);
        server_stop(&s);
        free(conf);
}

/* A subscriber of `subject` feeding a log at `out`. */
static char *sub_conf(const char *url, const char *subject, const char *out)
{
        char *body;
        cr_assert(asprintf(&body,
                           "components: {\n"
                           "  sub = { class = \"nats.subscribe\";\n"
                           "          settings = { url = \"%s\"; subject = \"%s\"; }; };\n"
                           "  x = { class = \"core.scale\"; settings = { factor = 1; }; };\n"
                           "  log = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "};\nlinks = ( \"sub.out -> x.in\", \"x.out -> log.in\" );\n",
                           url, subject, out) > 0);
        return body;
}

Test(nats, reload_moves_a_subscription_and_removes_the_bridge)
{
        struct server s;
        server_start(&s, 0);
        char *out, *body;
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        body = sub_conf(s.url, "one", out);
        char *conf = write_conf(body);
        free(body);
        struct daemon d;
        start(&d, conf);
        cr_assert(wait_contains(dir, d.err_path, "subscribed to 'one'", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        natsConnection *nc = client(&s);

        /* The subject changes: the subscriber is replaced, the new one hears "two" only. */
        body = sub_conf(s.url, "two", out);
        free(write_conf(body));
        free(body);
        char *st = daemon_reload(&d, 20000);
        cr_assert(st && strstr(st, "STATUS=reloaded"), "%s; stderr:\n%s", st, daemon_stderr(&d));
        free(st);
        cr_assert(wait_contains(dir, d.err_path, "subscribed to 'two'", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        send_sample(nc, "one", 1, "core.sample/24", (int)sizeof(struct core_sample));
        send_sample(nc, "two", 2, "core.sample/24", (int)sizeof(struct core_sample));
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        cr_assert(wait_contains(dir, out, "seq=2 ", 20000), "stderr:\n%s", daemon_stderr(&d));

        /* No bridge at all: it goes, the rest runs on. */
        free(write_conf("components: { t = { class = \"core.tick\"; "
                        "schedule = { every_us = 1000; }; }; "
                        "c = { class = \"core.counter\"; }; };\nlinks = ( \"t.out -> c.in\" );\n"));
        st = daemon_reload(&d, 20000);
        cr_assert(st && strstr(st, "STATUS=reloaded"), "%s; stderr:\n%s", st, daemon_stderr(&d));
        free(st);
        stop(&d);
        char *text = tu_read(out);
        cr_assert_null(strstr(text, "seq=1 "), "the replaced subscriber's subject:\n%s", text);
        free(text);
        natsConnection_Destroy(nc);
        server_stop(&s);
        free(conf);
        free(out);
}

/* A field of /proc/PID/task/TID/status ("Cpus_allowed_list"), or "" (caller frees). */
static char *task_field(const char *task_dir, const char *field)
{
        char *path, *text, *out = NULL;
        cr_assert(asprintf(&path, "%s/status", task_dir) > 0);
        text = tu_read(path);
        free(path);
        char *at = text ? strstr(text, field) : NULL;
        if (at) {
                at += strlen(field) + 2; /* ":\t" */
                out = strndup(at, strcspn(at, "\n"));
        }
        free(text);
        return out ? out : strdup("");
}

static char *task_name(const char *task_dir)
{
        char *path;
        cr_assert(asprintf(&path, "%s/comm", task_dir) > 0);
        char *text = tu_read(path);
        free(path);
        if (text)
                text[strcspn(text, "\n")] = 0;
        return text ? text : strdup("");
}

Test(nats, helper_threads_are_not_pinned_to_their_worker)
{
        struct server s;
        server_start(&s, 0);
        char *out, body[768];
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  src = { class = \"core.tick\"; schedule = { every_us = 5000; }; };\n"
                 "  pub = { class = \"nats.publish\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"t\"; }; };\n"
                 "  beat = { class = \"core.tick\"; schedule = { every_us = 5000; }; };\n"
                 "  log = { class = \"core.log\"; worker = 1; settings = { path = \"%s\"; }; };\n"
                 "};\nlinks = ( \"src.out -> pub.in\", \"beat.out -> log.in\" );\n",
                 s.url, out);
        char *conf = write_conf(body);
        struct daemon d;
        start(&d, conf);
        cr_assert(wait_contains(dir, d.err_path, "pub: connected", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        cr_assert(wait_lines(dir, out, 1, 20000));
        /* The threads the components' init started (and libnats's, started by the bridge's)
         * may run where the main thread may, and carry names of their own: one thread only is
         * the worker. */
        char *task_root, *main_dir;
        cr_assert(asprintf(&task_root, "/proc/%d/task", (int)d.pid) > 0);
        cr_assert(asprintf(&main_dir, "%s/%d", task_root, (int)d.pid) > 0);
        char *main_cpus = task_field(main_dir, "Cpus_allowed_list");
        int workers1 = 0, bridge = 0, logfile = 0;
        DIR *dp = opendir(task_root);
        cr_assert_not_null(dp);
        for (struct dirent *e; (e = readdir(dp));) {
                if (e->d_name[0] == '.')
                        continue;
                char *task;
                cr_assert(asprintf(&task, "%s/%s", task_root, e->d_name) > 0);
                char *name = task_name(task), *cpus = task_field(task, "Cpus_allowed_list");
                workers1 += !strcmp(name, "actord-w1");
                bool helper = !strcmp(name, "actord-nats-pub") || !strcmp(name, "actord-logfile");
                bridge += !strcmp(name, "actord-nats-pub");
                logfile += !strcmp(name, "actord-logfile");
                if (helper)
                        cr_assert_str_eq(cpus, main_cpus, "thread %s (%s) may use CPUs %s, not %s",
                                         e->d_name, name, cpus, main_cpus);
                free(name);
                free(cpus);
                free(task);
        }
        closedir(dp);
        char workers[160];
        if (test_workers("sleep", workers, sizeof(workers)) == 2)
                cr_assert_eq(workers1, 1, "threads named actord-w1: %d", workers1);
        cr_assert_geq(bridge, 2, "the bridge thread and libnats's (%d)", bridge);
        cr_assert_eq(logfile, 1);
        stop(&d);
        free(main_cpus);
        free(main_dir);
        free(task_root);
        server_stop(&s);
        free(conf);
        free(out);
}

Test(nats, both_ends_come_back_after_the_server_restarts)
{
        struct server s;
        server_start(&s, 0);
        int port = s.port;
        char *out, body[1024];
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        snprintf(
            body, sizeof(body),
            "components: {\n"
            "  src = { class = \"core.tick\"; schedule = { every_us = 2000; }; };\n"
            "  pub = { class = \"nats.publish\"; worker = 1;\n"
            "          settings = { url = \"%s\"; subject = \"up\"; }; };\n"
            "  sub = { class = \"nats.subscribe\"; worker = 0;\n"
            "          settings = { url = \"%s\"; subject = \"down\"; }; };\n"
            "  x = { class = \"core.scale\"; settings = { factor = 1; }; };\n"
            "  log = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
            "};\nlinks = ( \"src.out -> pub.in\", \"sub.out -> x.in\", \"x.out -> log.in\" );\n",
            s.url, s.url, out);
        struct daemon d;
        char *conf = start_subscribed(&d, body, "down");
        /* Both ends connected before the outage: a publisher still connecting when the server
         * goes (a loaded machine) connects for the first time after it, and says so. */
        cr_assert(wait_contains(dir, d.err_path, "pub: connected to", 20000), "stderr:\n%s",
                  daemon_stderr(&d));

        /* The server goes away and comes back on the same port. */
        server_stop(&s);
        cr_assert(wait_contains(dir, d.err_path, "sub: 1 disconnects from the server", 20000),
                  "stderr:\n%s", daemon_stderr(&d));
        server_start(&s, port);
        cr_assert(wait_count(dir, d.err_path, "sub: subscribed to 'down'", 2, 20000),
                  "the subscription was not made again; stderr:\n%s", daemon_stderr(&d));

        /* Both directions work again: the publisher's messages arrive, ours reach the log. */
        struct listener l;
        listen_to(&l, &s, "up");
        natsMsg *m = NULL;
        natsStatus st = natsSubscription_NextMsg(&m, l.sub, 20000);
        cr_assert_eq(st, NATS_OK, "%s; stderr:\n%s", natsStatus_GetText(st), daemon_stderr(&d));
        natsMsg_Destroy(m);
        send_sample(l.nc, "down", 0, "core.sample/24", (int)sizeof(struct core_sample));
        cr_assert_eq(natsConnection_Flush(l.nc), NATS_OK);
        cr_assert(wait_lines(dir, out, 1, 20000), "stderr:\n%s", daemon_stderr(&d));
        cr_assert(wait_contains(dir, d.err_path, "pub: reconnected to", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        cr_assert_eq(metric_value("actord_plugin_nats_subscribe_disconnects_total{component="
                                  "\"sub\",class=\"nats.subscribe\",worker=\"0\"}"),
                     1);
        stop(&d);
        listener_close(&l);
        server_stop(&s);
        free(conf);
        free(out);
}

/* A publisher with nothing to send still says at once that it connected, lost the server and
 * got it back: its bridge notifies it (ABI 1.3), and the counters follow. */
Test(nats, a_quiet_publisher_tells_of_its_connection_at_once)
{
        struct server s;
        server_start(&s, 0);
        int port = s.port;
        char body[1024];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  never = { class = \"core.tick\"; schedule = { every_us = 2000000000; }; };\n"
                 "  pub = { class = \"nats.publish\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"quiet\"; }; };\n"
                 "};\nlinks = ( \"never.out -> pub.in\" );\n",
                 s.url);
        char *conf = write_conf(body);
        struct daemon d;
        start(&d, conf);
        cr_assert(wait_contains(dir, d.err_path, "pub: connected to nats://127.0.0.1:", 20000),
                  "stderr:\n%s", daemon_stderr(&d));
        server_stop(&s);
        cr_assert(wait_contains(dir, d.err_path, "pub: 1 disconnects from the server", 20000),
                  "stderr:\n%s", daemon_stderr(&d));
        cr_assert_eq(metric_value("actord_plugin_nats_publish_disconnects_total{component="
                                  "\"pub\",class=\"nats.publish\",worker=\"1\"}"),
                     1);
        server_start(&s, port);
        cr_assert(wait_contains(dir, d.err_path, "pub: reconnected to", 20000), "stderr:\n%s",
                  daemon_stderr(&d));
        cr_assert_eq(metric_value("actord_component_runs_total{component=\"never\",class=\"core."
                                  "tick\",worker=\"0\"}"),
                     0, "the source published something");
        stop(&d);
        server_stop(&s);
        free(conf);
}

Test(nats, a_typed_subscriber_relays_to_a_publisher)
{
        /* Both ends generic: the subscriber's `type` says what flows between them. */
        struct server s;
        server_start(&s, 0);
        char body[768];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  sub = { class = \"nats.subscribe\"; type = \"core.sample\";\n"
                 "          settings = { url = \"%s\"; subject = \"relay.in\"; }; };\n"
                 "  pub = { class = \"nats.publish\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"relay.out\"; }; };\n"
                 "};\nlinks = ( \"sub.out -> pub.in\" );\n",
                 s.url, s.url);
        struct daemon d;
        char *conf = start_subscribed(&d, body, "relay.in");
        /* The publisher need not be connected yet: what it gets first waits for its connect. */
        struct listener l;
        listen_to(&l, &s, "relay.out");
        for (uint64_t i = 0; i < 5; i++)
                send_sample(l.nc, "relay.in", i, "core.sample/24", (int)sizeof(struct core_sample));
        cr_assert_eq(natsConnection_Flush(l.nc), NATS_OK);
        for (uint64_t i = 0; i < 5; i++) {
                natsMsg *m = NULL;
                natsStatus st = natsSubscription_NextMsg(&m, l.sub, 20000);
                cr_assert_eq(st, NATS_OK, "message %" PRIu64 ": %s; stderr:\n%s", i,
                             natsStatus_GetText(st), daemon_stderr(&d));
                struct core_sample smp;
                cr_assert_eq(natsMsg_GetDataLength(m), (int)sizeof(smp));
                memcpy(&smp, natsMsg_GetData(m), sizeof(smp));
                cr_assert_eq(smp.seq, i);
                cr_assert_eq(smp.value, (double)i * 2);
                const char *type = NULL;
                cr_assert_eq(natsMsgHeader_Get(m, "Actord-Type", &type), NATS_OK);
                cr_assert_str_eq(type, "core.sample/24");
                natsMsg_Destroy(m);
        }
        stop(&d);
        listener_close(&l);
        server_stop(&s);
        free(conf);
}

/* Under a full reject output the subscriber keeps what came in its queue and runs again when
 * its reader makes room (worker.c, waits_for_room): every message arrives, in order, and the
 * subscriber does not spin meanwhile (a rerun on each refusal made hundreds of thousands). */
Test(nats, a_subscriber_facing_a_full_reject_output_waits_for_room)
{
        struct server s;
        server_start(&s, 0);
        const int count = 200;
        char *out, body[768];
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  sub = { class = \"nats.subscribe\"; type = \"core.sample\";\n"
                 "          settings = { url = \"%s\"; subject = \"in\"; }; };\n"
                 "  log = { class = \"core.log\"; worker = 1; schedule = { every_us = 2000; };\n"
                 "          settings = { path = \"%s\"; }; };\n"
                 "};\nlinks = ( { from = \"sub.out\"; to = \"log.in\"; capacity = 4; overflow = "
                 "\"reject\"; } );\n",
                 s.url, out);
        struct daemon d;
        char *conf = start_subscribed(&d, body, "in");
        natsConnection *nc = client(&s);
        for (int i = 0; i < count; i++)
                send_sample(nc, "in", (uint64_t)i, "core.sample/24",
                            (int)sizeof(struct core_sample));
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        cr_assert(wait_lines(dir, out, count, 20000), "%d lines; stderr:\n%s", count_lines(out),
                  daemon_stderr(&d));
        double runs = metric_value(
            "actord_component_runs_total{component=\"sub\",class=\"nats.subscribe\",worker=\"0\"}");
        cr_assert_leq(runs, 5.0 * count, "the subscriber ran %g times for %d messages", runs,
                      count);
        cr_assert_eq(metric_value("actord_plugin_nats_subscribe_queue_full_total{component=\"sub\","
                                  "class=\"nats.subscribe\",worker=\"0\"}"),
                     0);
        stop(&d);
        char *text = tu_read(out), *line = text;
        for (int i = 0; i < count; i++) {
                char want[32];
                int n = snprintf(want, sizeof(want), "seq=%d ", i);
                cr_assert(!strncmp(line, want, (size_t)n), "expected %s, got: %.80s", want, line);
                line = strchr(line, '\n') + 1;
        }
        free(text);
        natsConnection_Destroy(nc);
        server_stop(&s);
        free(conf);
        free(out);
}

/* ---- TLS ---- */

/* A certificate authority, a server certificate it signed for 127.0.0.1 and localhost, a
 * client certificate it signed, and another authority that signed nothing here: PEM files
 * in dir (openssl's command line). */
static void make_certificates(void)
{
        char *cmd;
        cr_assert(asprintf(&cmd,
                           "set -e; cd '%s'; exec 2>openssl.log\n"
                           "key() { openssl genpkey -algorithm EC -pkeyopt "
                           "ec_paramgen_curve:P-256 -out $1; }\n"
                           "for ca in ca other; do key $ca.key\n"
                           "  openssl req -x509 -new -key $ca.key -out $ca.pem -days 2 -subj "
                           "\"/CN=$ca\"; done\n"
                           "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' >server.ext\n"
                           "printf 'extendedKeyUsage=clientAuth\\n' >client.ext\n"
                           "for who in server client; do key $who.key\n"
                           "  openssl req -new -key $who.key -out $who.csr -subj \"/CN=$who\"\n"
                           "  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key "
                           "-CAcreateserial -out $who.pem -days 2 -extfile $who.ext; done\n",
                           dir) > 0);
        int st = system(cmd);
        free(cmd);
        char *log;
        cr_assert(asprintf(&log, "%s/openssl.log", dir) > 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl: %s", tu_read(log));
        free(log);
}

/* A server that speaks TLS only and asks each client for a certificate signed by ca.pem. */
static void tls_server_start(struct server *s)
{
        char *cert, *key, *ca;
        cr_assert(asprintf(&cert, "%s/server.pem", dir) > 0);
        cr_assert(asprintf(&key, "%s/server.key", dir) > 0);
        cr_assert(asprintf(&ca, "%s/ca.pem", dir) > 0);
        const char *extra[] = {"--tls",       "--tlscert",   cert, "--tlskey", key,
                               "--tlsverify", "--tlscacert", ca,   NULL};
        server_start_with(s, 0, extra);
        free(cert);
        free(key);
        free(ca);
}

/* This process's TLS connection to s, with the client certificate. */
static natsConnection *tls_client(const struct server *s)
{
        char ca[512], cert[512], key[512];
        snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
        snprintf(cert, sizeof(cert), "%s/client.pem", dir);
        snprintf(key, sizeof(key), "%s/client.key", dir);
        natsOptions *o = NULL;
        natsConnection *nc = NULL;
        cr_assert_eq(natsOptions_Create(&o), NATS_OK);
        cr_assert_eq(natsOptions_SetURL(o, s->url), NATS_OK);
        cr_assert_eq(natsOptions_SetSecure(o, true), NATS_OK);
        cr_assert_eq(natsOptions_LoadCATrustedCertificates(o, ca), NATS_OK);
        cr_assert_eq(natsOptions_LoadCertificatesChain(o, cert, key), NATS_OK);
        natsStatus st = natsConnection_Connect(&nc, o);
        cr_assert_eq(st, NATS_OK, "TLS connect to %s: %s %s", s->url, natsStatus_GetText(st),
                     nats_GetLastError(NULL));
        natsOptions_Destroy(o);
        return nc;
}

/* The TLS settings of a bridge component: the authority `ca` (a file in dir), and the client
 * certificate unless `no_cert`. */
static void tls_settings(char *buf, size_t len, const char *ca, bool no_cert)
{
        int n = snprintf(buf, len, "tls_ca = \"%s/%s\";", dir, ca);
        if (!no_cert)
                snprintf(buf + n, len - (size_t)n,
                         " tls_cert = \"%s/client.pem\"; tls_key = \"%s/client.key\";", dir, dir);
}

Test(nats, both_ends_speak_tls_with_client_certificates)
{
        make_certificates();
        struct server s;
        tls_server_start(&s);
        char tls[1024], body[4096];
        tls_settings(tls, sizeof(tls), "ca.pem", false);
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  sub = { class = \"nats.subscribe\"; type = \"core.sample\";\n"
                 "          settings = { url = \"%s\"; subject = \"relay.in\"; %s }; };\n"
                 "  pub = { class = \"nats.publish\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"relay.out\"; %s }; };\n"
                 "};\nlinks = ( \"sub.out -> pub.in\" );\n",
                 s.url, tls, s.url, tls);
        struct daemon d;
        char *conf = start_subscribed(&d, body, "relay.in");
        natsConnection *nc = tls_client(&s);
        natsSubscription *sub = NULL;
        cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "relay.out"), NATS_OK);
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        for (uint64_t i = 0; i < 5; i++)
                send_sample(nc, "relay.in", i, "core.sample/24", (int)sizeof(struct core_sample));
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        for (uint64_t i = 0; i < 5; i++) {
                natsMsg *m = NULL;
                natsStatus st = natsSubscription_NextMsg(&m, sub, 20000);
                cr_assert_eq(st, NATS_OK, "message %" PRIu64 ": %s; stderr:\n%s", i,
                             natsStatus_GetText(st), daemon_stderr(&d));
                struct core_sample smp;
                memcpy(&smp, natsMsg_GetData(m), sizeof(smp));
                cr_assert_eq(smp.seq, i);
                natsMsg_Destroy(m);
        }
        stop(&d);
        natsSubscription_Destroy(sub);
        natsConnection_Destroy(nc);
        server_stop(&s);
        free(conf);
}

/* A server signed by an authority the component does not trust, and a server that wants a
 * client certificate the component does not have: each fails the component with libnats's
 * reason, not a bare status. */
Test(nats, tls_that_cannot_be_made_says_why)
{
        make_certificates();
        struct server s;
        tls_server_start(&s);
        char untrusted[1024], nocert[1024], body[4096];
        tls_settings(untrusted, sizeof(untrusted), "other.pem", false);
        tls_settings(nocert, sizeof(nocert), "ca.pem", true);
        snprintf(
            body, sizeof(body),
            "components: {\n"
            "  a = { class = \"nats.subscribe\"; type = \"core.sample\"; restart = \"never\";\n"
            "        settings = { url = \"%s\"; subject = \"a\"; %s }; };\n"
            "  b = { class = \"nats.subscribe\"; type = \"core.sample\"; restart = \"never\";\n"
            "        settings = { url = \"%s\"; subject = \"b\"; %s }; };\n"
            "  la = { class = \"core.log\"; worker = 1; };\n"
            "  lb = { class = \"core.log\"; worker = 1; };\n"
            "  never = { class = \"core.tick\"; schedule = { every_us = 2000000000; }; };\n"
            "  c = { class = \"nats.publish\"; restart = \"never\";\n"
            "        settings = { url = \"%s\"; subject = \"c\"; %s }; };\n"
            "};\nlinks = ( \"a.out -> la.in\", \"b.out -> lb.in\", \"never.out -> c.in\" );\n",
            s.url, untrusted, s.url, nocert, s.url, untrusted);
        char *conf = write_conf(body);
        struct daemon d;
        start(&d, conf);
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'a' (nats.subscribe) failed: cannot subscribe to 'a' on "
                                "tls://127.0.0.1:",
                                20000),
                  "stderr:\n%s", daemon_stderr(&d));
        cr_assert(wait_contains(dir, d.err_path, "component 'b' (nats.subscribe) failed: ", 20000),
                  "stderr:\n%s", daemon_stderr(&d));
        /* A publisher with nothing to send fails as soon, not at its first message. */
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'c' (nats.publish) failed: cannot publish to 'c' on "
                                "tls://127.0.0.1:",
                                20000),
                  "stderr:\n%s", daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        cr_assert(strstr(err, "SSL Error (SSL handshake error: ") &&
                      strstr(err, "unable to get local issuer certificate"),
                  "%s", err);
        free(err);
        stop(&d);
        server_stop(&s);
        free(conf);
}

/* ---- NKeys ---- */

/* CRC-16/XMODEM, the checksum NKeys end with (little-endian). */
static uint16_t nkey_crc16(const unsigned char *p, size_t n)
{
        uint16_t crc = 0;
        for (size_t i = 0; i < n; i++) {
                crc ^= (uint16_t)(p[i] << 8);
                for (int b = 0; b < 8; b++)
                        crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
        }
        return crc;
}

/* raw (n bytes, then room for 2) with its checksum, in RFC 4648 base32 without padding. */
static void nkey_encode(unsigned char *raw, size_t n, char *out)
{
        uint16_t crc = nkey_crc16(raw, n);
        raw[n] = (unsigned char)(crc & 0xff);
        raw[n + 1] = (unsigned char)(crc >> 8);
        n += 2;
        const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        unsigned bits = 0, have = 0, k = 0;
        for (size_t i = 0; i < n; i++) {
                bits = (bits << 8) | raw[i];
                for (have += 8; have >= 5; have -= 5)
                        out[k++] = abc[(bits >> (have - 5)) & 31];
        }
        if (have)
                out[k++] = abc[(bits << (5 - have)) & 31];
        out[k] = 0;
}

/* The last 32 bytes of a DER file that openssl wrote. */
static void der_tail(const char *name, unsigned char out[32])
{
        char *path;
        cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f, "%s", path);
        unsigned char buf[128];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        cr_assert_geq(n, 32);
        memcpy(out, buf + n - 32, 32);
        free(path);
}

/* The first letter of an NKey's text, as its prefix byte: operator, account, user. */
#define NKEY_OPERATOR (14 << 3)
#define NKEY_ACCOUNT 0
#define NKEY_USER (20 << 3)

/* An NKey of `kind` made with openssl (Ed25519, its private key in <dir>/<name>.der): its
 * public key in pub (57 bytes), its seed's text in seed (59 bytes). */
static void make_nkey_of(const char *name, unsigned kind, char pub[64], char seed_text[64])
{
        char *cmd;
        cr_assert(asprintf(&cmd,
                           "set -e; cd '%s'; exec 2>>openssl.log\n"
                           "openssl genpkey -algorithm ed25519 -outform DER -out %s.der\n"
                           "openssl pkey -inform DER -in %s.der -pubout -outform DER -out "
                           "%s.pub.der\n",
                           dir, name, name, name) > 0);
        int st = system(cmd);
        free(cmd);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl failed");
        unsigned char raw[40], seed[32], key[32];
        char file[96];
        snprintf(file, sizeof(file), "%s.der", name);
        der_tail(file, seed);
        snprintf(file, sizeof(file), "%s.pub.der", name);
        der_tail(file, key);
        /* The prefix bytes: the kind's; a seed's 'S' and then the kind's. */
        const unsigned seed_of = 18 << 3;
        raw[0] = (unsigned char)kind;
        memcpy(raw + 1, key, 32);
        nkey_encode(raw, 33, pub);
        raw[0] = (unsigned char)(seed_of | kind >> 5);
        raw[1] = (unsigned char)((kind & 31) << 3);
        memcpy(raw + 2, seed, 32);
        nkey_encode(raw, 34, seed_text);
        cr_assert_eq(seed_text[0], 'S');
        cr_assert_eq(seed_text[1], pub[0], "seed %s of %s", seed_text, pub);
}

/* A user NKey: its public key in pub, its seed in the file <dir>/<name>.nk, mode 0600. */
static void make_nkey(const char *name, char pub[64])
{
        char text[64];
        make_nkey_of(name, NKEY_USER, pub, text);
        char *path;
        cr_assert(asprintf(&path, "%s/%s.nk", dir, name) > 0);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        free(path);
}

/* A server that admits the one user NKey `pub`, and a client of this process signed in as it
 * (its seed in <dir>/<name>.nk). */
static void nkey_server_start(struct server *s, const char *pub)
{
        char *conf;
        cr_assert(asprintf(&conf, "%s/nkey-server.conf", dir) > 0);
        FILE *f = fopen(conf, "w");
        cr_assert_not_null(f);
        fprintf(f, "authorization: { users: [ { nkey: \"%s\" } ] }\n", pub);
        fclose(f);
        const char *extra[] = {"-c", conf, NULL};
        server_start_with(s, 0, extra);
        free(conf);
}

static natsConnection *nkey_client(const struct server *s, const char *pub, const char *name)
{
        char seed[512];
        snprintf(seed, sizeof(seed), "%s/%s.nk", dir, name);
        natsOptions *o = NULL;
        natsConnection *nc = NULL;
        cr_assert_eq(natsOptions_Create(&o), NATS_OK);
        cr_assert_eq(natsOptions_SetURL(o, s->url), NATS_OK);
        cr_assert_eq(natsOptions_SetNKeyFromSeed(o, pub, seed), NATS_OK);
        natsStatus st = natsConnection_Connect(&nc, o);
        cr_assert_eq(st, NATS_OK, "NKey connect to %s: %s %s", s->url, natsStatus_GetText(st),
                     nats_GetLastError(NULL));
        natsOptions_Destroy(o);
        return nc;
}

/* Both ends sign in with an NKey the server admits; one whose key it does not know is refused,
 * and fails at once, saying so; bad settings are refused at start. */
Test(nats, nkeys_sign_in_and_a_stranger_is_refused)
{
        char pub[64], stranger[64];
        make_nkey("user", pub);
        make_nkey("stranger", stranger);
        char *loose;
        cr_assert(asprintf(&loose, "%s/stranger.nk", dir) > 0);
        cr_assert_eq(chmod(loose, 0640), 0);
        struct server s;
        nkey_server_start(&s, pub);
        char body[4096];
        snprintf(body, sizeof(body),
                 "components: {\n"
                 "  sub = { class = \"nats.subscribe\"; type = \"core.sample\"; worker = 1;\n"
                 "          settings = { url = \"%s\"; subject = \"in\"; nkey = \"%s\";\n"
                 "                       nkey_seed = \"%s/user.nk\"; }; };\n"
                 "  pub = { class = \"nats.publish\";\n"
                 "          settings = { url = \"%s\"; subject = \"out\"; nkey = \"%s\";\n"
                 "                       nkey_seed = \"%s/user.nk\"; }; };\n"
                 "  never = { class = \"core.tick\"; schedule = { every_us = 2000000000; }; };\n"
                 "  alien = { class = \"nats.publish\"; restart = \"never\";\n"
                 "          settings = { url = \"%s\"; subject = \"x\"; nkey = \"%s\";\n"
                 "                       nkey_seed = \"%s/stranger.nk\"; }; };\n"
                 "};\nlinks = ( \"sub.out -> pub.in\", \"never.out -> alien.in\" );\n",
                 s.url, pub, dir, s.url, pub, dir, s.url, stranger, dir);
        struct daemon d;
        char *conf = start_subscribed(&d, body, "in");
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'alien' (nats.publish) failed: cannot publish to 'x' "
                                "on nats://127.0.0.1:",
                                20000),
                  "stderr:\n%s", daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        cr_assert(strstr(err, "Authorization Violation"), "%s", err);
        /* A seed others may read is said; the one only we may read is not. */
        char want[600];
        snprintf(want, sizeof(want), "alien: nkey_seed '%s' may be read by others (mode 0640)",
                 loose);
        cr_assert(strstr(err, want), "no '%s' in:\n%s", want, err);
        cr_assert_null(strstr(strstr(err, want) + strlen(want), "may be read by others"), "%s",
                       err);
        free(err);
        free(loose);
        natsConnection *nc = nkey_client(&s, pub, "user");
        natsSubscription *back = NULL;
        cr_assert_eq(natsConnection_SubscribeSync(&back, nc, "out"), NATS_OK);
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        /* The publisher may connect after this message: resend until one comes back. */
        natsMsg *m = NULL;
        natsStatus st = NATS_TIMEOUT;
        for (int i = 0; i < 100 && st != NATS_OK; i++) {
                send_sample(nc, "in", (uint64_t)i, "core.sample/24",
                            (int)sizeof(struct core_sample));
                cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
                st = natsSubscription_NextMsg(&m, back, 200);
        }
        cr_assert_eq(st, NATS_OK, "nothing came back; stderr:\n%s", daemon_stderr(&d));
        cr_assert_eq(natsMsg_GetDataLength(m), (int)sizeof(struct core_sample));
        natsMsg_Destroy(m);
        natsSubscription_Destroy(back);
        natsConnection_Destroy(nc);
        stop(&d);
        server_stop(&s);
        free(conf);

        /* Settings that cannot work are refused before anything connects. */
        char bad[1024];
        snprintf(bad, sizeof(bad), "subject = \"a\"; nkey = \"%s\";", pub);
        refused(bad, "nkey and nkey_seed go together: nkey_seed is missing");
        snprintf(bad, sizeof(bad), "subject = \"a\"; nkey = \"S%s\"; nkey_seed = \"%s/user.nk\";",
                 pub + 1, dir);
        refused(bad, "not a user's public key");
        snprintf(bad, sizeof(bad), "subject = \"a\"; nkey = \"%s\"; nkey_seed = \"%s/none.nk\";",
                 pub, dir);
        refused(bad, "none.nk': No such file or directory");
}

/* ---- credentials files (operator mode) ---- */

/* RFC 4648 base64url without padding (caller frees). */
static char *b64url(const unsigned char *in, size_t n)
{
        const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        char *out = malloc(n * 4 / 3 + 4);
        cr_assert_not_null(out);
        size_t k = 0;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t)in[i + 1] << 8;
                if (i + 2 < n)
                        v |= in[i + 2];
                out[k++] = abc[(v >> 18) & 63];
                out[k++] = abc[(v >> 12) & 63];
                if (i + 1 < n)
                        out[k++] = abc[(v >> 6) & 63];
                if (i + 2 < n)
                        out[k++] = abc[v & 63];
        }
        out[k] = 0;
        return out;
}

/* A NATS JWT: `claims` (JSON, issued by the key `signer` of public key iss to sub) signed by
 * <dir>/<signer>.der with openssl (Ed25519, as NATS's "ed25519-nkey"); caller frees. */
static char *nats_jwt(const char *signer, const char *iss, const char *sub, const char *nats)
{
        const char *header = "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}";
        char *claims, *signed_part;
        cr_assert(asprintf(&claims,
                           "{\"jti\":\"T%.51s\",\"iat\":%lld,\"iss\":\"%s\",\"name\":\"test\","
                           "\"sub\":\"%s\",\"nats\":%s}",
                           sub + 1, (long long)time(NULL), iss, sub, nats) > 0);
        char *h = b64url((const unsigned char *)header, strlen(header));
        char *c = b64url((const unsigned char *)claims, strlen(claims));
        cr_assert(asprintf(&signed_part, "%s.%s", h, c) > 0);
        free(tu_write(dir, "to-sign", signed_part));
        char *cmd;
        cr_assert(asprintf(&cmd,
                           "cd '%s' && openssl pkeyutl -sign -rawin -keyform DER -inkey %s.der "
                           "-in to-sign -out signature 2>>openssl.log",
                           dir, signer) > 0);
        int st = system(cmd);
        free(cmd);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl pkeyutl -sign failed");
        char *path;
        cr_assert(asprintf(&path, "%s/signature", dir) > 0);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f);
        unsigned char sig[64];
        cr_assert_eq(fread(sig, 1, sizeof(sig), f), sizeof(sig));
        fclose(f);
        char *sg = b64url(sig, sizeof(sig)), *jwt;
        cr_assert(asprintf(&jwt, "%s.%s", signed_part, sg) > 0);
        free(path);
        free(sg);
        free(h);
        free(c);
        free(claims);
        free(signed_part);
        return jwt;
}

/* <dir>/<name>.creds (mode 0600): a user of the account `account` (its key <dir>/<account>.der,
 * public key acc), as nsc writes it: the user's JWT, then its seed. */
static void make_creds(const char *name, const char *account, const char *acc)
{
        char pub[64], seed[64];
        make_nkey_of(name, NKEY_USER, pub, seed);
        char *jwt = nats_jwt(account, acc, pub,
                             "{\"type\":\"user\",\"version\":2,\"pub\":{},\"sub\":{},\"subs\":-1,"
                             "\"data\":-1,\"payload\":-1}");
        char *path;
        cr_assert(asprintf(&path, "%s/%s.creds", dir, name) > 0);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n",
                jwt, seed);
        fclose(f);
        cr_assert_eq(chmod(path, 0600), 0);
        free(path);
        free(jwt);
}

/* A server in operator mode (an operator, one account it signed, preloaded): users whose JWT
 * that account signed may connect; the account's public key in acc. */
static void operator_server_start(struct server *s, char acc[64])
{
        char op[64], seed[64], *conf;
        make_nkey_of("operator", NKEY_OPERATOR, op, seed);
        make_nkey_of("account", NKEY_ACCOUNT, acc, seed);
        char *opj = nats_jwt("operator", op, op, "{\"type\":\"operator\",\"version\":2}");
        char *acj = nats_jwt("operator", op, acc,
                             "{\"type\":\"account\",\"version\":2,\"limits\":{\"subs\":-1,\"data\":"
                             "-1,\"payload\":-1,\"imports\":-1,\"exports\":-1,\"wildcards\":true,"
                             "\"conn\":-1,\"leaf\":-1}}");
        free(tu_write(dir, "operator.jwt", opj));
        cr_assert(asprintf(&conf, "%s/operator-server.conf", dir) > 0);
        FILE *f = fopen(conf, "w");
        cr_assert_not_null(f);
        fprintf(f,
                "operator: \"%s/operator.jwt\"\nresolver: MEMORY\nresolver_preload: {\n  %s: "
                "\"%s\"\n}\n",
                dir, acc, acj);
        fclose(f);
        const char *extra[] = {"-c", conf, NULL};
        server_start_with(s, 0, extra);
        free(conf);
        free(opj);
        free(acj);
}

/* Both ends sign in with a credentials file (a user JWT the server's account signed, and its
 * seed); a user of an account the server does not know is refused and fails at once; creds
 * and nkey together are refused at start. */
Test(nats, a_credentials_file_signs_in_to_an_operator_mode_server)
{
        struct server s;
        char acc[64], other[64], seed[64];
        operator_server_start(&s, acc);
        make_creds("user", "account", acc);
        make_nkey_of("other", NKEY_ACCOUNT, other, seed);
        make_creds("stranger", "other", other);
        char body[4096];
        snprintf(
            body, sizeof(body),
            "components: {\n"
            "  sub = { class = \"nats.subscribe\"; type = \"core.sample\"; worker = 1;\n"
            "          settings = { url = \"%s\"; subject = \"in\"; creds = \"%s/user.creds\"; "
            "}; };\n"
            "  pub = { class = \"nats.publish\";\n"
            "          settings = { url = \"%s\"; subject = \"out\"; creds = \"%s/user.creds\"; "
            "}; };\n"
            "  never = { class = \"core.tick\"; schedule = { every_us = 2000000000; }; };\n"
            "  alien = { class = \"nats.publish\"; restart = \"never\";\n"
            "          settings = { url = \"%s\"; subject = \"x\"; creds = "
            "\"%s/stranger.creds\"; }; };\n"
            "};\nlinks = ( \"sub.out -> pub.in\", \"never.out -> alien.in\" );\n",
            s.url, dir, s.url, dir, s.url, dir);
        struct daemon d;
        char *conf = start_subscribed(&d, body, "in");
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'alien' (nats.publish) failed: cannot publish to 'x' "
                                "on nats://127.0.0.1:",
                                20000),
                  "stderr:\n%s", daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        cr_assert(strstr(err, "Authorization Violation"), "%s", err);
        cr_assert_null(strstr(err, "may be read by others"), "%s", err);
        free(err);
        natsOptions *o = NULL;
        natsConnection *nc = NULL;
        char creds[512];
        snprintf(creds, sizeof(creds), "%s/user.creds", dir);
        cr_assert_eq(natsOptions_Create(&o), NATS_OK);
        cr_assert_eq(natsOptions_SetURL(o, s.url), NATS_OK);
        cr_assert_eq(natsOptions_SetUserCredentialsFromFiles(o, creds, NULL), NATS_OK);
        natsStatus st = natsConnection_Connect(&nc, o);
        cr_assert_eq(st, NATS_OK, "%s %s", natsStatus_GetText(st), nats_GetLastError(NULL));
        natsOptions_Destroy(o);
        natsSubscription *back = NULL;
        cr_assert_eq(natsConnection_SubscribeSync(&back, nc, "out"), NATS_OK);
        cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
        natsMsg *m = NULL;
        st = NATS_TIMEOUT;
        for (int i = 0; i < 100 && st != NATS_OK; i++) {
                send_sample(nc, "in", (uint64_t)i, "core.sample/24",
                            (int)sizeof(struct core_sample));
                cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
                st = natsSubscription_NextMsg(&m, back, 200);
        }
        cr_assert_eq(st, NATS_OK, "nothing came back; stderr:\n%s", daemon_stderr(&d));
        natsMsg_Destroy(m);
        natsSubscription_Destroy(back);
        natsConnection_Destroy(nc);
        stop(&d);
        server_stop(&s);
        free(conf);

        char bad[1024];
        snprintf(bad, sizeof(bad),
                 "subject = \"a\"; creds = \"%s/user.creds\"; nkey = \"%s\"; nkey_seed = "
                 "\"%s/user.creds\";",
                 dir, "UAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", dir);
        refused(bad, "creds and nkey: one or the other");
        snprintf(bad, sizeof(bad), "subject = \"a\"; creds = \"%s/none.creds\";", dir);
        refused(bad, "creds '");
}
