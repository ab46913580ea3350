/* The control socket and actorctl, through the real daemon: status, stats and metrics agree
 * with what the pipeline did; the metrics parse with the Prometheus project's own parser;
 * reload applies or refuses a configuration; bad requests, silent clients, too many clients,
 * stale and live socket files and other users are handled as ctlsock.h says. */
#include "daemonutil.h"

#include "actord-build.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/stat.h>

TU_TMPDIR_SUITE(control, 90);

static char *path_in_dir(const char *name)
{
        char *p;
        cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

/* A config of one worker with `components` and `links`, and `extra` settings in the actord
 * group, written to dir/name; the plugins: the bundled ones and the test kit `kit`. */
static char *write_kit_conf(const char *name, const char *kit, const char *extra,
                            const char *components, const char *links)
{
        int a, b;
        two_cpus(&a, &b);
        char *text;
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s/%s\" ]; workers = ( { cpu = "
                           "%d; } ); %s };\n"
                           "components: {\n%s};\n"
                           "links = ( %s );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR, kit, a, extra,
                           components, links) > 0);
        char *path = tu_write(dir, name, text);
        free(text);
        return path;
}

static char *write_conf_with(const char *name, const char *extra, const char *components,
                             const char *links)
{
        return write_kit_conf(name, "testkit", extra, components, links);
}

static char *write_conf(const char *name, const char *components, const char *links)
{
        return write_conf_with(name, "", components, links);
}

/* 300 messages from test.bytes (then DONE) into core.counter. */
#define FINITE_COUNT 300
#define FINITE_COMPONENTS                                                                          \
        "src = { class = \"test.bytes\"; schedule = { every_us = 200; }; settings = { count = "    \
        "300; }; };\n"                                                                             \
        "count = { class = \"core.counter\"; settings = { report_ms = 100000; }; };\n"
#define FINITE_LINKS "\"src.out -> count.in\""

static void start_with_socket(struct daemon *dm, const char *config, const char *path)
{
        const char *args[] = {"--config", config, "--control-socket", path, NULL};
        daemon_start(dm, dir, args);
        cr_assert(daemon_wait_notify(dm, "READY=1", 20000), "no READY=1; stderr:\n%s",
                  daemon_stderr(dm));
}

/* The daemon under test, its configuration and its control socket (one test per process). */
static struct daemon d;
static char *conf, *sock;

static void ctl_prepare(const char *components, const char *links)
{
        conf = write_conf("c.conf", components, links);
        sock = path_in_dir("ctl.sock");
}

static void ctl_begin(const char *components, const char *links)
{
        ctl_prepare(components, links);
        start_with_socket(&d, conf, sock);
}

static void ctl_end(void)
{
        daemon_cleanup(&d);
        free(sock);
        free(conf);
}

static char *ask(const char *path, const char *cmd)
{
        char line[300];
        int n = snprintf(line, sizeof(line), "%s\n", cmd);
        char *a = ctl_request(path, line, (size_t)n, false, 10000);
        cr_assert(a, "no answer to '%s'", cmd);
        return a;
}

/* The answer's text after its "ok" line (caller frees). */
static char *ask_ok(const char *path, const char *cmd)
{
        char *a = ask(path, cmd);
        cr_assert(strncmp(a, "ok\n", 3) == 0, "'%s' answered: %s", cmd, a);
        memmove(a, a + 3, strlen(a + 3) + 1);
        return a;
}

/* Runs actorctl with args (NULL-terminated); its stdout and stderr into *out and *err (caller
 * frees). Returns its exit status. */
/* Starts actorctl with args, its stdout and stderr into the files op and ep; its pid. */
static pid_t actorctl_spawn(const char *const *args, const char *const *env, const char *op,
                            const char *ep)
{
        const char *argv[16] = {ACTORD_TEST_CTL};
        int n = 1;
        for (; args[n - 1] && n < 15; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                int e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
                        _exit(126);
                unsetenv("ACTORD_CONTROL_SOCKET");
                for (const char *const *v = env; v && *v; v++)
                        putenv((char *)(uintptr_t)*v);
                execv(argv[0], (char *const *)(void *)argv);
                _exit(127);
        }
        return pid;
}

static int actorctl(const char *const *args, const char *const *env, char **out, char **err)
{
        char *op = path_in_dir("ctl.out"), *ep = path_in_dir("ctl.err");
        pid_t pid = actorctl_spawn(args, env, op, ep);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                cr_assert_eq(errno, EINTR);
        *out = tu_read(op);
        *err = tu_read(ep);
        free(op);
        free(ep);
        cr_assert(WIFEXITED(status), "actorctl did not exit");
        return WEXITSTATUS(status);
}

/* The exposition format's rules, as far as our output uses it: every family has one HELP and
 * one TYPE line (counter, gauge or histogram) before its samples, which all belong to it and
 * come together (a histogram's: name_bucket with `le`, name_sum, name_count); counters end in
 * _total; a sample is name{label="value",...} number; no series twice. Returns the number of
 * families. */
static int check_exposition(const char *text)
{
        char family[128] = "", type[16] = "";
        bool help = false;
        int families = 0;
        char *copy = strdup(text);
        char **seen = calloc(4096, sizeof(char *));
        int n_seen = 0;
        for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
                char name[128], rest[256];
                if (sscanf(line, "# HELP %127s %255[^\n]", name, rest) == 2) {
                        cr_assert(strcmp(name, family) != 0, "HELP twice for %s", name);
                        snprintf(family, sizeof(family), "%s", name);
                        help = true;
                        type[0] = 0;
                        continue;
                }
                if (sscanf(line, "# TYPE %127s %15s", name, type) == 2) {
                        cr_assert(help && strcmp(name, family) == 0, "TYPE without HELP: %s", line);
                        cr_assert(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                                      !strcmp(type, "histogram"),
                                  "%s", line);
                        if (!strcmp(type, "counter"))
                                cr_assert(strlen(name) > 6 &&
                                              !strcmp(name + strlen(name) - 6, "_total"),
                                          "counter %s does not end in _total", name);
                        families++;
                        continue;
                }
                cr_assert(line[0] != '#', "unexpected comment: %s", line);
                cr_assert(type[0], "sample before its TYPE: %s", line);
                size_t fl = strlen(family);
                cr_assert(strncmp(line, family, fl) == 0, "sample %s outside its family %s", line,
                          family);
                if (!strcmp(type, "histogram")) {
                        const char *suffix = line + fl;
                        size_t sl = strncmp(suffix, "_bucket{", 8) == 0 ? 7
                                    : strncmp(suffix, "_sum", 4) == 0   ? 4
                                    : strncmp(suffix, "_count", 6) == 0 ? 6
                                                                        : 0;
                        cr_assert(sl, "not a histogram sample of %s: %s", family, line);
                        if (sl == 7)
                                cr_assert(strstr(line, ",le=\""), "a bucket without le: %s", line);
                        fl += sl;
                }
                cr_assert(line[fl] == '{' || line[fl] == ' ', "sample %s outside its family %s",
                          line, family);
                const char *sp = strrchr(line, ' ');
                cr_assert(sp, "no value: %s", line);
                char *end;
                strtod(sp + 1, &end);
                cr_assert(*end == 0 && end > sp + 1, "not a number: %s", line);
                if (line[fl] == '{') {
                        /* label="value" pairs, values with \\ \" \n escapes only */
                        const char *p = line + fl + 1;
                        while (*p != '}') {
                                const char *eq = strchr(p, '=');
                                cr_assert(eq && eq[1] == '"', "bad label in %s", line);
                                for (const char *k = p; k < eq; k++)
                                        cr_assert(*k == '_' || (*k >= 'a' && *k <= 'z'),
                                                  "label name in %s", line);
                                p = eq + 2;
                                while (*p != '"') {
                                        cr_assert(*p, "unterminated value in %s", line);
                                        if (*p == '\\') {
                                                cr_assert(p[1] == '\\' || p[1] == '"' ||
                                                              p[1] == 'n',
                                                          "bad escape in %s", line);
                                                p++;
                                        }
                                        p++;
                                }
                                p++;
                                cr_assert(*p == ',' || *p == '}', "after a label in %s", line);
                                if (*p == ',')
                                        p++;
                        }
                        cr_assert_eq(p + 1, sp, "junk after the labels: %s", line);
                }
                size_t series = (size_t)(sp - line);
                for (int i = 0; i < n_seen; i++)
                        cr_assert(strlen(seen[i]) != series || strncmp(seen[i], line, series),
                                  "series twice: %s", line);
                cr_assert_lt(n_seen, 4096);
                seen[n_seen++] = strndup(line, series);
        }
        for (int i = 0; i < n_seen; i++)
                free(seen[i]);
        free(seen);
        free(copy);
        return families;
}

/* The metrics through the Prometheus project's Python client's parser: the number of
 * families it found, or -1 if it refused the text. */
static int prometheus_parse(const char *text)
{
        char *mp = path_in_dir("metrics.txt");
        FILE *f = fopen(mp, "w");
        cr_assert(f);
        fputs(text, f);
        fclose(f);
        char *cmd;
        cr_assert(asprintf(&cmd,
                           "/usr/bin/python3 -c 'import sys\n"
                           "from prometheus_client.parser import text_string_to_metric_families "
                           "as parse\n"
                           "fams = list(parse(open(sys.argv[1]).read()))\n"
                           "assert all(len(f.samples) for f in fams)\n"
                           "print(len(fams))' %s",
                           mp) > 0);
        FILE *p = popen(cmd, "r");
        cr_assert(p);
        int n = -1;
        if (fscanf(p, "%d", &n) != 1)
                n = -1;
        int st = pclose(p);
        free(cmd);
        free(mp);
        return st == 0 ? n : -1;
}

/* Waits until `series` in the metrics reaches at least `want`; returns the metrics. Callers
 * first wait for the log line that announces it, so that this asks a few times at most. */
static char *wait_metric(const char *path, const char *series, double want)
{
        int64_t end = now_ms() + 20000;
        for (;;) {
                char *m = ask_ok(path, "metrics");
                double v;
                if (metric(m, series, &v) && v >= want)
                        return m;
                free(m);
                cr_assert_lt(now_ms(), end, "%s never reached %g", series, want);
        }
}

Test(control, status_stats_and_metrics_agree_with_the_pipeline)
{
        ctl_begin(FINITE_COMPONENTS, FINITE_LINKS);

        struct stat st;
        cr_assert_eq(stat(sock, &st), 0);
        cr_assert(S_ISSOCK(st.st_mode));
        cr_assert_eq(st.st_mode & 0777, 0660, "mode %o", st.st_mode & 0777);

        /* Everything the source sends arrives: the counters reach it and stay exact. */
        cr_assert(wait_contains(dir, d.err_path, "component 'src' finished (DONE) after 301 runs",
                                20000));
        char *m = wait_metric(sock,
                              "actord_channel_consumed_total{from=\"src.out\",to=\"count.in\","
                              "type=\"test.bytes\",policy=\"overwrite\"}",
                              FINITE_COUNT);
        const char *lbl =
            "{from=\"src.out\",to=\"count.in\",type=\"test.bytes\",policy=\"overwrite\"}";
        char series[256];
        snprintf(series, sizeof(series), "actord_channel_published_total%s", lbl);
        cr_assert_eq(must_metric(m, series), FINITE_COUNT);
        snprintf(series, sizeof(series), "actord_channel_consumed_total%s", lbl);
        cr_assert_eq(must_metric(m, series), FINITE_COUNT);
        snprintf(series, sizeof(series), "actord_channel_lost_total%s", lbl);
        cr_assert_eq(must_metric(m, series), 0);
        snprintf(series, sizeof(series), "actord_channel_capacity%s", lbl);
        cr_assert_eq(must_metric(m, series), 1024);
        /* The histogram counts each message read once, its buckets grow with le, +Inf holds
         * them all; the sum is in seconds (a consumer that runs in the same round as its
         * producer on one worker reads the same clock: waits of 0 are counted). */
        const char *hl =
            "{from=\"src.out\",to=\"count.in\",type=\"test.bytes\",policy=\"overwrite\"";
        snprintf(series, sizeof(series), "actord_channel_queue_seconds_count%s}", hl);
        cr_assert_eq(must_metric(m, series), FINITE_COUNT);
        snprintf(series, sizeof(series), "actord_channel_queue_seconds_bucket%s,le=\"+Inf\"}", hl);
        cr_assert_eq(must_metric(m, series), FINITE_COUNT);
        double prev = 0;
        for (int b = 0; b < 27; b++) {
                snprintf(series, sizeof(series),
                         "actord_channel_queue_seconds_bucket%s,le=\"%.10g\"}", hl,
                         (double)(1ull << (6 + b)) * 1e-9);
                double v = must_metric(m, series);
                cr_assert_geq(v, prev, "buckets are cumulative: %s", series);
                prev = v;
        }
        cr_assert_eq(prev, FINITE_COUNT, "every message waited under 4.3 s");
        snprintf(series, sizeof(series), "actord_channel_queue_seconds_sum%s}", hl);
        double sum = must_metric(m, series);
        cr_assert(sum >= 0 && sum < FINITE_COUNT * 0.1, "sum %g", sum);
        free(m);
        /* The source ran once per message and once more to say DONE; then it is finished. */
        m = wait_metric(sock,
                        "actord_component_runs_total{component=\"src\",class=\"test.bytes\","
                        "worker=\"0\"}",
                        FINITE_COUNT + 1);
        cr_assert_eq(
            must_metric(m, "actord_component_runs_total{component=\"src\",class=\"test.bytes\","
                           "worker=\"0\"}"),
            FINITE_COUNT + 1);
        cr_assert_eq(must_metric(m, "actord_component_up{component=\"src\",class=\"test.bytes\","
                                    "worker=\"0\"}"),
                     0);
        /* test.bytes's own counter (ABI 1.2): one per message it published. */
        cr_assert_eq(must_metric(m, "actord_plugin_test_bytes_sent_total{component=\"src\","
                                    "class=\"test.bytes\",worker=\"0\"}"),
                     FINITE_COUNT);
        cr_assert(strstr(m, "# HELP actord_plugin_test_bytes_sent_total Messages published (a "
                            "\\\\ in the help)\n# TYPE actord_plugin_test_bytes_sent_total "
                            "counter\n"),
                  "%s", m);
        cr_assert_eq(must_metric(m, "actord_component_failed{component=\"src\",class=\"test."
                                    "bytes\",worker=\"0\"}"),
                     0);
        cr_assert_eq(must_metric(m, "actord_component_up{component=\"count\",class=\"core."
                                    "counter\",worker=\"0\"}"),
                     1);
        double counted = must_metric(m, "actord_component_runs_total{component=\"count\",class="
                                        "\"core.counter\",worker=\"0\"}");
        cr_assert(counted >= 1 && counted <= FINITE_COUNT, "count ran %g times", counted);
        int cpu, cpu2;
        two_cpus(&cpu, &cpu2);
        snprintf(series, sizeof(series), "actord_worker_runs_total{worker=\"0\",cpu=\"%d\"}", cpu);
        cr_assert_geq(must_metric(m, series), FINITE_COUNT + counted);
        cr_assert_eq(must_metric(m, "actord_info{version=\"" ACTORD_VERSION "\"}"), 1);
        cr_assert_eq(must_metric(m, "actord_reloads_total{result=\"applied\"}"), 0);

        /* The source is done and the sink waits: the worker sleeps, and its time asleep grows
         * with the time that passes, though it does not wake (the sleep in progress counts).
         * Two STATUS updates (one a second) measure a second or so. */
        snprintf(series, sizeof(series),
                 "actord_worker_sleep_seconds_total{worker=\"0\",cpu=\"%d\"}", cpu);
        double slept = must_metric(m, series);
        int64_t t1 = now_ms();
        for (int i = 0; i < 2; i++) {
                char *notes = daemon_notes(&d);
                size_t len = strlen(notes);
                free(notes);
                cr_assert(daemon_wait_more(&d, len, 5000), "no STATUS update");
        }
        char *m2 = ask_ok(sock, "metrics");
        double slept2 = must_metric(m2, series), passed = (double)(now_ms() - t1) / 1000;
        free(m2);
        cr_assert(slept2 - slept >= 0.5 * passed && slept2 - slept <= passed + 0.05,
                  "asleep %.3f s of %.3f s", slept2 - slept, passed);

        int families = check_exposition(m);
        cr_assert_geq(families, 15);
        cr_assert_eq(prometheus_parse(m), families,
                     "the Prometheus parser (python3-prometheus-client) refused the metrics or "
                     "found another number of families:\n%s",
                     m);
        free(m);

        /* The people's views, through actorctl. */
        char *out, *err;
        const char *status_args[] = {"--socket", sock, "status", NULL};
        cr_assert_eq(actorctl(status_args, NULL, &out, &err), 0, "stderr: %s", err);
        char pid[64];
        snprintf(pid, sizeof(pid), "actord %s, pid %d, up ", ACTORD_VERSION, (int)d.pid);
        cr_assert(strncmp(out, pid, strlen(pid)) == 0, "status: %s", out);
        cr_assert(strstr(out, conf), "status names the configuration: %s", out);
        cr_assert(strstr(out, "status: 2 components on 1 workers;"), "status: %s", out);
        cr_assert(strstr(out, "reloads: 0 applied, 0 failed"), "status: %s", out);
        free(out);
        free(err);

        const char *env[] = {NULL, NULL};
        char *envsock;
        cr_assert(asprintf(&envsock, "ACTORD_CONTROL_SOCKET=%s", sock) > 0);
        env[0] = envsock;
        const char *stats_args[] = {"stats", NULL};
        cr_assert_eq(actorctl(stats_args, env, &out, &err), 0, "stderr: %s", err);
        /* The table rows: the finished source, the running sink, the channel's counts. */
        char *row = strstr(out, "\nsrc ");
        cr_assert(row, "stats: %s", out);
        cr_assert(strstr(row, "test.bytes") && strstr(row, "periodic") && strstr(row, "finished"),
                  "stats: %s", out);
        cr_assert(strstr(out, "running"), "stats: %s", out);
        row = strstr(out, "\nsrc.out ");
        cr_assert(row, "stats: %s", out);
        unsigned cap;
        unsigned long long pub, cons, lost;
        double rate;
        cr_assert_eq(sscanf(row, "\nsrc.out count.in test.bytes overwrite %u %llu %llu %lf %llu",
                            &cap, &pub, &cons, &rate, &lost),
                     5, "channel row: %.120s", row);
        cr_assert_eq(rate, 0, "the source finished more than a second ago: %.120s", row);
        /* The components' own counters: test.bytes's. */
        row = strstr(out, "\ncounters (the components' own)\n");
        cr_assert(row, "stats: %s", out);
        unsigned long long sent = 0;
        cr_assert(strstr(row, "\nsrc ") &&
                      sscanf(strstr(row, "\nsrc "), "\nsrc sent %llu", &sent) == 1,
                  "counters: %s", row);
        cr_assert_eq(sent, FINITE_COUNT);
        cr_assert_eq(cap, 1024);
        cr_assert_eq(pub, FINITE_COUNT);
        cr_assert_eq(cons, FINITE_COUNT);
        cr_assert_eq(lost, 0);
        free(out);
        free(err);
        free(envsock);

        /* The socket goes with the daemon. */
        kill(d.pid, SIGTERM);
        cr_assert_eq(daemon_wait_exit(&d, 20000), 0);
        cr_assert_eq(stat(sock, &st), -1, "the socket file stayed");
        ctl_end();
}

/* A consumer that runs every 50 ms reads messages published every millisecond: they wait
 * from 0 to 50 ms, 25 ms on average, and the histogram says so. */
Test(control, the_queue_time_histogram_shows_how_long_messages_waited)
{
        ctl_begin(
            "src = { class = \"test.bytes\"; schedule = { every_us = 1000; }; settings = { count "
            "= 200; }; };\n"
            "count = { class = \"core.counter\"; schedule = { every_us = 50000; }; settings = { "
            "report_ms = 100000; }; };\n",
            FINITE_LINKS);
        cr_assert(wait_contains(dir, d.err_path, "component 'src' finished (DONE) after 201 runs",
                                30000));
        const char *hl =
            "{from=\"src.out\",to=\"count.in\",type=\"test.bytes\",policy=\"overwrite\"";
        char series[256];
        snprintf(series, sizeof(series), "actord_channel_queue_seconds_count%s}", hl);
        char *m = wait_metric(sock, series, 200);
        cr_assert_eq(must_metric(m, series), 200);
        snprintf(series, sizeof(series), "actord_channel_queue_seconds_sum%s}", hl);
        double mean = must_metric(m, series) / 200;
        cr_assert(mean > 0.005 && mean < 0.2, "mean wait %g s (expected about 0.025)", mean);
        /* Up to 2^20 ns (1.05 ms): about one message in fifty (published in the round the
         * consumer runs in). */
        snprintf(series, sizeof(series), "actord_channel_queue_seconds_bucket%s,le=\"%.10g\"}", hl,
                 (double)(1ull << 20) * 1e-9);
        double quick = must_metric(m, series);
        cr_assert_leq(quick, 40, "%g of 200 messages waited under 1 ms", quick);
        free(m);
        char *out, *err;
        const char *args[] = {"-s", sock, "stats", NULL};
        cr_assert_eq(actorctl(args, NULL, &out, &err), 0, "stderr: %s", err);
        char *row = strstr(out, "\nsrc.out ");
        cr_assert(row, "stats: %s", out);
        row = strndup(row + 1, strcspn(row + 1, "\n"));
        /* The table's quantiles are bucket bounds: p50 of 0-50 ms waits is 16.8 or 33.6 ms. */
        cr_assert(strstr(row, "ms "), "the wait quantiles are in milliseconds: %s", row);
        free(row);
        free(out);
        free(err);
        ctl_end();
}

Test(control, reload_applies_a_good_configuration_and_refuses_a_bad_one)
{
        ctl_begin(FINITE_COMPONENTS, FINITE_LINKS);

        free(write_conf("c.conf",
                        FINITE_COMPONENTS
                        "more = { class = \"test.bytes\"; schedule = { every_us = "
                        "1000; }; };\nshow = { class = \"core.counter\"; };\n",
                        FINITE_LINKS ", \"more.out -> show.in\""));
        char *out, *err;
        const char *args[] = {"-s", sock, "reload", NULL};
        cr_assert_eq(actorctl(args, NULL, &out, &err), 0, "stderr: %s", err);
        cr_assert(strstr(out, "applied: 2 kept, 0 restarted, 2 started, 0 stopped"), "out: %s",
                  out);
        free(out);
        free(err);
        char *m = ask_ok(sock, "metrics");
        cr_assert(strstr(m, "component=\"more\""), "the new component is counted: %s", m);
        cr_assert_eq(must_metric(m, "actord_reloads_total{result=\"applied\"}"), 1);
        free(m);

        /* An unknown class at line 6: refused with the file and line, the pipeline kept. */
        free(write_conf("c.conf", FINITE_COMPONENTS "bad = { class = \"test.nosuch\"; };\n",
                        FINITE_LINKS));
        cr_assert_eq(actorctl(args, NULL, &out, &err), 1, "stdout: %s", out);
        cr_assert_str_empty(out);
        char where[512];
        snprintf(where, sizeof(where), "%s:5:", conf);
        cr_assert(strstr(err, "actorctl: failed: ") && strstr(err, where) &&
                      strstr(err, "test.nosuch"),
                  "stderr: %s", err);
        free(out);
        free(err);
        m = ask_ok(sock, "status");
        cr_assert(strstr(m, "reloads: 1 applied, 1 failed; last: failed: "), "status: %s", m);
        cr_assert(strstr(m, "4 components on 1 workers"), "status: %s", m);
        free(m);

        ctl_end();
}

Test(control, bad_requests_get_clear_errors)
{
        ctl_begin(FINITE_COMPONENTS, FINITE_LINKS);

        char *a = ask(sock, "frobnicate");
        cr_assert_str_eq(a, "error: unknown command 'frobnicate': expected status, stats, "
                            "metrics, reload, tap or help\n");
        free(a);
        a = ctl_request(sock, "st\x01tus\n", 7, false, 10000);
        cr_assert_str_eq(a, "error: unknown command 'st\\x01tus': expected status, stats, "
                            "metrics, reload, tap or help\n");
        free(a);
        a = ctl_request(sock, "status\0junk\n", 12, false, 10000);
        cr_assert_str_eq(a, "error: the request holds a NUL byte: a command is a line of text\n");
        free(a);
        char longreq[400];
        memset(longreq, 'x', sizeof(longreq));
        a = ctl_request(sock, longreq, sizeof(longreq), false, 10000);
        cr_assert(a && strncmp(a, "error: request too long", 23) == 0, "%s", a);
        free(a);
        /* Blanks and CR around the command, and no line feed but the end of the request. */
        a = ctl_request(sock, " \tstatus \r", 10, true, 10000);
        cr_assert(a && strncmp(a, "ok\nactord ", 10) == 0, "%s", a);
        free(a);
        /* Connecting and going away costs nothing. */
        a = ctl_request(sock, "", 0, true, 10000);
        cr_assert_str_eq(a, "");
        free(a);
        a = ask(sock, "help");
        cr_assert_str_eq(a,
                         "ok\ncommands: status, stats, metrics, reload, tap END [COUNT], help\n");
        free(a);

        char *out, *err;
        const char *args[] = {"-s", sock, "frobnicate", NULL};
        cr_assert_eq(actorctl(args, NULL, &out, &err), 1);
        cr_assert(strstr(err, "actorctl: unknown command 'frobnicate'"), "stderr: %s", err);
        free(out);
        free(err);
        const char *none[] = {"-s", sock, NULL};
        cr_assert_eq(actorctl(none, NULL, &out, &err), 2);
        cr_assert(strstr(err, "which command?"), "stderr: %s", err);
        free(out);
        free(err);
        char *gone = path_in_dir("nosuch.sock");
        const char *absent[] = {"-s", gone, "status", NULL};
        cr_assert_eq(actorctl(absent, NULL, &out, &err), 2);
        cr_assert(strstr(err, "no such socket: is actord running"), "stderr: %s", err);
        free(out);
        free(err);
        free(gone);

        ctl_end();
}

static int connect_silent(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        return fd;
}

Test(control, silent_clients_delay_nobody_and_are_closed_at_their_deadline)
{
        ctl_begin(FINITE_COMPONENTS, FINITE_LINKS);

        int64_t t0 = now_ms();
        int silent = connect_silent(sock);
        /* Answered while the silent one waits: well within its 10 s deadline. */
        char *a = ask(sock, "status");
        cr_assert(strncmp(a, "ok\n", 3) == 0);
        free(a);
        cr_assert_lt(now_ms() - t0, 5000);
        /* The daemon closes the silent connection at its deadline, not before. */
        struct pollfd p = {.fd = silent, .events = POLLIN};
        cr_assert_eq(poll(&p, 1, 20000), 1, "the silent connection was never closed");
        char c;
        cr_assert_eq(recv(silent, &c, 1, 0), 0);
        int64_t waited = now_ms() - t0;
        cr_assert(waited >= 9000 && waited < 15000, "closed after %lld ms", (long long)waited);
        close(silent);

        ctl_end();
}

Test(control, too_many_clients_at_once_are_told_busy)
{
        ctl_begin(FINITE_COMPONENTS, FINITE_LINKS);

        int fds[16];
        for (int i = 0; i < 16; i++)
                fds[i] = connect_silent(sock);
        char *a = ask(sock, "status");
        cr_assert_str_eq(a, "error: busy: too many requests at once; try again\n");
        free(a);
        /* One leaves: its slot serves the next client. */
        close(fds[0]);
        int64_t end = now_ms() + 10000;
        for (;;) {
                a = ask(sock, "status");
                bool ok = strncmp(a, "ok\n", 3) == 0;
                free(a);
                if (ok)
                        break;
                cr_assert_lt(now_ms(), end, "a freed slot was never reused");
        }
        for (int i = 1; i < 16; i++)
                close(fds[i]);

        ctl_end();
}

Test(control, a_stale_socket_file_is_replaced_and_a_live_one_or_a_file_refused)
{
        ctl_prepare(FINITE_COMPONENTS, FINITE_LINKS);
        /* A socket bound and closed: what a daemon killed with SIGKILL leaves. */
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd);
        start_with_socket(&d, conf, sock);
        char *a = ask(sock, "status");
        cr_assert(strncmp(a, "ok\n", 3) == 0);
        free(a);
        /* The log has its own thread: the line can come after the answer. */
        cr_assert(wait_contains(dir, d.err_path, "replaced the one a stopped daemon left", 10000),
                  "stderr: %s", daemon_stderr(&d));

        /* A second daemon on the same socket: refused before it starts anything. */
        struct daemon d2;
        const char *args[] = {"--config", conf, "--control-socket", sock, NULL};
        char *sub = path_in_dir("second");
        cr_assert_eq(mkdir(sub, 0755), 0);
        daemon_start(&d2, sub, args);
        int st = daemon_wait_exit(&d2, 20000);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
        char *e = daemon_stderr(&d2);
        cr_assert(strstr(e, "answers there") && strstr(e, sock), "stderr: %s", e);
        free(e);
        daemon_cleanup(&d2);
        /* The first one still answers. */
        a = ask(sock, "status");
        cr_assert(strncmp(a, "ok\n", 3) == 0);
        free(a);
        daemon_cleanup(&d);

        /* A file that is not a socket is left alone. */
        char *file = tu_write(dir, "not-a-socket", "keep me\n");
        const char *fargs[] = {"--config", conf, "--control-socket", file, NULL};
        daemon_start(&d2, sub, fargs);
        st = daemon_wait_exit(&d2, 20000);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "status %d", st);
        e = daemon_stderr(&d2);
        cr_assert(strstr(e, "exists and is not a socket"), "stderr: %s", e);
        free(e);
        char *kept = tu_read(file);
        cr_assert_str_eq(kept, "keep me\n");
        free(kept);
        daemon_cleanup(&d2);
        free(file);
        free(sub);
        ctl_end();
}

Test(control, reload_and_tap_are_refused_to_other_users)
{
        if (geteuid() != 0)
                cr_skip_test("needs root, to connect as another user");
        ctl_begin(FINITE_COMPONENTS, FINITE_LINKS);
        /* Open the way (the socket is 0660, the folder is the test's). */
        cr_assert_eq(chmod(sock, 0666), 0);
        cr_assert_eq(chmod(dir, 0755), 0);

        int pipefd[2];
        cr_assert_eq(pipe(pipefd), 0);
        pid_t pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                close(pipefd[0]);
                if (setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(3);
                const char *cmds[] = {"reload\n", "tap src.out\n", "status\n"};
                for (int i = 0; i < 3; i++) {
                        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                        struct sockaddr_un sa = {.sun_family = AF_UNIX};
                        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
                        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                                _exit(4);
                        if (send(fd, cmds[i], strlen(cmds[i]), 0) < 0)
                                _exit(5);
                        char buf[512];
                        ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_WAITALL);
                        if (n > 0 && write(pipefd[1], buf, (size_t)n) < 0)
                                _exit(6);
                        if (write(pipefd[1], "|", 1) < 0)
                                _exit(6);
                        close(fd);
                }
                _exit(0);
        }
        close(pipefd[1]);
        char got[2048] = "";
        size_t len = 0;
        ssize_t r;
        while ((r = read(pipefd[0], got + len, sizeof(got) - 1 - len)) > 0)
                len += (size_t)r;
        got[len] = 0;
        close(pipefd[0]);
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d; got %s", st, got);
        const char *want = "error: permission denied: reload is for root and for the daemon's own "
                           "user (uid 0), not for uid 65534\n|"
                           "error: permission denied: tap is for root and for the daemon's own "
                           "user (uid 0), not for uid 65534\n|"
                           "ok\nactord ";
        cr_assert(strncmp(got, want, strlen(want)) == 0, "got: %s", got);
        char *m = ask_ok(sock, "status");
        cr_assert(strstr(m, "reloads: 0 applied, 0 failed"), "no reload happened: %s", m);
        free(m);

        ctl_end();
}

/* core.tick (core.sample, with a format callback) at 1 kHz into core.counter, and test.bytes
 * (no format callback) into a reject link. */
#define TAP_COMPONENTS                                                                             \
        "tick = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"                    \
        "count = { class = \"core.counter\"; settings = { report_ms = 100000; }; };\n"             \
        "bytes = { class = \"test.bytes\"; schedule = { every_us = 1000; }; };\n"                  \
        "count2 = { class = \"core.counter\"; settings = { report_ms = 100000; }; };\n"            \
        "raw = { class = \"test.bytes\"; schedule = { every_us = 1000; }; };\n"                    \
        "count3 = { class = \"core.counter\"; settings = { report_ms = 100000; }; };\n"
#define TAP_LINKS                                                                                  \
        "\"tick.out -> count.in\", \"bytes.out -> count2.in\", { from = \"raw.out\"; to = "        \
        "\"count3.in\"; overflow = \"reject\"; }"

/* The lines of a tap's output after its header, each checked: consecutive channel sequence
 * numbers (at 1 kHz the tap keeps up), and what `check` says of the rest. */
static void expect_tap_lines(const char *out, int n, bool (*check)(uint64_t seq, const char *rest))
{
        const char *line = strchr(out, '\n');
        cr_assert(line, "no header: %s", out);
        line++;
        uint64_t prev = 0;
        for (int i = 0; i < n; i++) {
                unsigned long long seq;
                int used = 0;
                cr_assert_eq(sscanf(line, "chan_seq=%llu %n", &seq, &used), 1, "line %d: %.80s", i,
                             line);
                cr_assert(i == 0 || seq == prev + 1, "chan_seq %llu after %llu", seq,
                          (unsigned long long)prev);
                const char *end = strchr(line, '\n');
                cr_assert(end, "line %d unterminated", i);
                char *rest = strndup(line + used, (size_t)(end - line - used));
                cr_assert(check(seq, rest), "line %d: %s", i, rest);
                free(rest);
                prev = seq;
                line = end + 1;
        }
        cr_assert_str_empty(line, "more than %d lines: %s", n, line);
}

/* core.tick's sample n has value n, and the channel's sequence number is n too. */
static bool tick_sample(uint64_t seq, const char *rest)
{
        unsigned long long s, t;
        double v;
        return sscanf(rest, "sample seq=%llu t_ns=%llu value=%lg", &s, &t, &v) == 3 && s == seq &&
               v == (double)seq && t > 0;
}

/* test.bytes' message n is the 8-byte counter n, little-endian. */
static bool bytes_counter(uint64_t seq, const char *rest)
{
        char want[64];
        int n = snprintf(want, sizeof(want), "bytes=8 data=");
        for (int i = 0; i < 8; i++)
                n += snprintf(want + n, sizeof(want) - (size_t)n, "%02x",
                              (unsigned)(seq >> (8 * i)) & 0xff);
        return strcmp(rest, want) == 0;
}

/* A core.sample as bytes (the generic fans print none): 24 of them. */
static bool any_sample_bytes(uint64_t seq, const char *rest)
{
        (void)seq;
        return strncmp(rest, "bytes=24 data=", 14) == 0 && strlen(rest) == 14 + 48;
}

Test(control, tap_prints_the_messages_passing_through_a_link)
{
        ctl_begin(TAP_COMPONENTS, TAP_LINKS);
        char *out, *err;
        /* Either end names the link; the producer's class prints the messages. */
        const char *by_consumer[] = {"-s", sock, "tap", "count.in", "5", NULL};
        cr_assert_eq(actorctl(by_consumer, NULL, &out, &err), 0, "stderr: %s", err);
        cr_assert(strncmp(out,
                          "tap tick.out -> count.in (core.sample, 24 bytes; printed by "
                          "core.tick)\n",
                          strlen("tap tick.out -> count.in (core.sample, 24 bytes; printed by "
                                 "core.tick)\n")) == 0,
                  "%s", out);
        expect_tap_lines(out, 5, tick_sample);
        free(out);
        free(err);
        /* Without a format callback on either side: the bytes. */
        const char *bytes[] = {"-s", sock, "tap", "bytes.out", "3", NULL};
        cr_assert_eq(actorctl(bytes, NULL, &out, &err), 0, "stderr: %s", err);
        cr_assert(strstr(out, "as bytes: neither class has a format callback"), "%s", out);
        expect_tap_lines(out, 3, bytes_counter);
        free(out);
        free(err);

        /* What cannot be tapped, and why. */
        const char *reject[] = {"-s", sock, "tap", "raw.out", NULL};
        cr_assert_eq(actorctl(reject, NULL, &out, &err), 1);
        cr_assert(strstr(err, "actorctl: tap: raw.out -> count3.in is a \"reject\" link; only "
                              "\"overwrite\" links can be tapped"),
                  "stderr: %s", err);
        free(out);
        free(err);
        const char *unknown[] = {"-s", sock, "tap", "tick.in", NULL};
        cr_assert_eq(actorctl(unknown, NULL, &out, &err), 1);
        cr_assert(strstr(err, "tap: no link has an end 'tick.in' (ends: tick.out, count.in, "
                              "bytes.out, count2.in, raw.out, count3.in)"),
                  "stderr: %s", err);
        free(out);
        free(err);
        const char *zero[] = {"-s", sock, "tap", "tick.out", "0", NULL};
        cr_assert_eq(actorctl(zero, NULL, &out, &err), 1);
        cr_assert(strstr(err, "tap: expected 'tap END [COUNT]'"), "stderr: %s", err);
        free(out);
        free(err);

        /* The rate per channel, over the last second: tick's 1 kHz (once a second has been
         * measured: two STATUS updates). */
        for (int i = 0; i < 2; i++) {
                char *notes = daemon_notes(&d);
                size_t len = strlen(notes);
                free(notes);
                cr_assert(daemon_wait_more(&d, len, 5000), "no STATUS update");
        }
        const char *stats[] = {"-s", sock, "stats", NULL};
        cr_assert_eq(actorctl(stats, NULL, &out, &err), 0, "stderr: %s", err);
        const char *row = strstr(out, "\ntick.out ");
        cr_assert(row, "%s", out);
        unsigned cap;
        unsigned long long pub, cons;
        double rate;
        cr_assert_eq(sscanf(row, "\ntick.out count.in core.sample overwrite %u %llu %llu %lf", &cap,
                            &pub, &cons, &rate),
                     4, "%.160s", row);
        cr_assert(rate > 500 && rate < 1500, "tick.out: %g msg/s, expected about 1000", rate);
        free(out);
        free(err);

        /* The consumers lost nothing to the taps: they read beside them. */
        char *m = ask_ok(sock, "metrics");
        cr_assert_eq(must_metric(m, "actord_channel_lost_total{from=\"tick.out\",to=\"count.in\","
                                    "type=\"core.sample\",policy=\"overwrite\"}"),
                     0);
        free(m);
        ctl_end();
}

/* A tap without a count runs until its client goes away, or until a reload ends it (the
 * channel it reads may go): its last line says so. */
Test(control, a_reload_ends_a_running_tap)
{
        ctl_begin(TAP_COMPONENTS, TAP_LINKS);
        char *op = path_in_dir("tap.out"), *ep = path_in_dir("tap.err");
        const char *args[] = {"-s", sock, "tap", "tick.out", NULL};
        pid_t tap = actorctl_spawn(args, NULL, op, ep);
        cr_assert(wait_lines(dir, op, 4, 20000), "the tap printed nothing: %s", tu_read(ep));

        char *out, *err;
        const char *reload[] = {"-s", sock, "reload", NULL};
        cr_assert_eq(actorctl(reload, NULL, &out, &err), 0, "stderr: %s", err);
        free(out);
        free(err);
        int status;
        cr_assert_eq(waitpid(tap, &status, 0), tap);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "tap status 0x%x", status);
        char *text = tu_read(op);
        size_t len = strlen(text);
        const char *last = "-- the configuration is being reloaded: the tap ends (tap again)\n";
        cr_assert(len > strlen(last) && strcmp(text + len - strlen(last), last) == 0,
                  "the tap's output does not end with its reason: %s", text);
        free(text);

        /* One that goes away (killed) ends too, and the daemon answers on. */
        tap = actorctl_spawn(args, NULL, op, ep);
        cr_assert(wait_lines(dir, op, 3, 20000));
        kill(tap, SIGKILL);
        cr_assert_eq(waitpid(tap, &status, 0), tap);
        char *a = ask_ok(sock, "status");
        free(a);
        free(op);
        free(ep);
        ctl_end();
}

/* Two links between the same scatter and gather, their ports left to the daemon: the metrics
 * tell them apart by the indexes the daemon gave the ports (no series twice), and tap takes
 * those names. */
Test(control, links_between_fans_are_named_by_their_ports)
{
        ctl_begin("tick = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                  "fan = { class = \"core.broadcast\"; };\n"
                  "m = { class = \"core.merge\"; };\n"
                  "count = { class = \"core.counter\"; settings = { report_ms = 100000; }; };\n",
                  "\"tick.out -> fan.in\", \"fan.out -> m.in\", \"fan.out -> m.in\", "
                  "\"m.out -> count.in\"");
        char *m = ask_ok(sock, "metrics");
        check_exposition(m);
        for (int k = 0; k < 2; k++) {
                char series[200];
                snprintf(series, sizeof(series),
                         "actord_channel_capacity{from=\"fan.out[%d]\",to=\"m.in[%d]\",type=\"core."
                         "sample\",policy=\"overwrite\"}",
                         k, k);
                cr_assert_eq(must_metric(m, series), 1024);
        }
        free(m);
        char *out, *err;
        const char *args[] = {"-s", sock, "tap", "m.in[1]", "2", NULL};
        cr_assert_eq(actorctl(args, NULL, &out, &err), 0, "stderr: %s", err);
        cr_assert(strncmp(out, "tap fan.out[1] -> m.in[1] (core.sample", 38) == 0, "%s", out);
        expect_tap_lines(out, 2, any_sample_bytes);
        free(out);
        free(err);
        ctl_end();
}

/* The reload state file answers `actord --reload` (the unit's ExecReload, after its SIGHUP):
 * a reload through the control socket leaves it as it is, so that it cannot pass for the
 * answer to a SIGHUP sent meanwhile. */
Test(control, a_socket_reload_leaves_the_sighup_state_file_alone)
{
        ctl_prepare(FINITE_COMPONENTS, FINITE_LINKS);
        char *rundir = path_in_dir("run"), *env_var, *state = path_in_dir("run/reload-state");
        cr_assert_eq(mkdir(rundir, 0755), 0);
        cr_assert(asprintf(&env_var, "RUNTIME_DIRECTORY=%s", rundir) > 0);
        const char *env[] = {env_var, NULL};
        const char *args[] = {"--config", conf, "--control-socket", sock, NULL};
        daemon_start_env(&d, dir, args, env);
        cr_assert(daemon_wait_notify(&d, "READY=1", 20000), "%s", daemon_stderr(&d));
        char *text = tu_read(state);
        cr_assert_str_eq(text, "generation=0\nresult=started\n");
        free(text);

        char *out, *err;
        const char *reload[] = {"-s", sock, "reload", NULL};
        cr_assert_eq(actorctl(reload, NULL, &out, &err), 0, "stderr: %s", err);
        free(out);
        free(err);
        text = tu_read(state);
        cr_assert_str_eq(text, "generation=0\nresult=started\n", "a socket reload wrote it");
        free(text);

        /* actord --reload's own SIGHUP: its reload, and its answer. */
        char *cmd;
        cr_assert(asprintf(&cmd, "RUNTIME_DIRECTORY='%s' '%s' --reload %d >'%s/rl.out' 2>&1",
                           rundir, ACTORD_TEST_DAEMON, (int)d.pid, dir) > 0);
        int st = system(cmd);
        free(cmd);
        char *rl = path_in_dir("rl.out");
        text = tu_read(rl);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "actord --reload: %s", text);
        cr_assert(strstr(text, "actord: reload applied: 2 kept"), "%s", text);
        free(text);
        text = tu_read(state);
        cr_assert(strncmp(text, "generation=1\nresult=applied: 2 kept", 35) == 0, "%s", text);
        free(text);
        char *m = ask_ok(sock, "status");
        cr_assert(strstr(m, "reloads: 2 applied, 0 failed"), "both reloads counted: %s", m);
        free(m);
        free(rl);
        free(state);
        free(env_var);
        free(rundir);
        ctl_end();
}

/* ---- the metrics over HTTP (actord.metrics_listen) ---- */

/* The port of the last address the daemon announced for its HTTP metrics, which must start
 * with `url` ("http://127.0.0.1:"). */
static int announced_port(const char *url)
{
        char *err = daemon_stderr(&d);
        const char *at = NULL;
        for (const char *p = err; (p = strstr(p, "metrics over HTTP ")); p++)
                at = p;
        const char *u = at ? strstr(at, url) : NULL;
        cr_assert_not_null(u, "no %s... announced:\n%s", url, err);
        int port = atoi(u + strlen(url));
        free(err);
        cr_assert_gt(port, 0);
        return port;
}

static int http_port(void)
{
        return announced_port("http://127.0.0.1:");
}

/* A connection to 127.0.0.1:port from 127.0.0.<from> (0: the kernel's choice). */
static int tcp_connect_from(int port, int from)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert(fd >= 0);
        if (from) {
                struct sockaddr_in src = {.sin_family = AF_INET};
                src.sin_addr.s_addr = htonl(INADDR_LOOPBACK - 1 + (uint32_t)from);
                cr_assert_eq(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0, "bind: %s",
                             strerror(errno));
        }
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                return -e;
        }
        return fd;
}

static int tcp_connect(int port)
{
        return tcp_connect_from(port, 0);
}

/* Sends req on fd and returns all the server sends until it closes (caller frees). */
static char *http_on(int fd, const char *req)
{
        cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
        size_t cap = 1 << 16, got = 0;
        char *buf = malloc(cap);
        int64_t end = now_ms() + 10000;
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int left = (int)(end - now_ms());
                cr_assert(left > 0 && poll(&p, 1, left) == 1, "no answer to %s", req);
                if (got + 1 == cap)
                        cr_assert((buf = realloc(buf, cap *= 2)));
                ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
                if (r <= 0)
                        break;
                got += (size_t)r;
        }
        buf[got] = 0;
        close(fd);
        return buf;
}

static char *http(int port, const char *req)
{
        int fd = tcp_connect(port);
        cr_assert_geq(fd, 0, "connect to port %d: %s", port, strerror(-fd));
        return http_on(fd, req);
}

static int http_status(const char *resp)
{
        cr_assert(!strncmp(resp, "HTTP/1.1 ", 9), "not a response: %.80s", resp);
        return atoi(resp + 9);
}

/* The response's body: after the blank line. */
static const char *http_body(const char *resp)
{
        const char *b = strstr(resp, "\r\n\r\n");
        cr_assert_not_null(b, "no end of headers: %.200s", resp);
        return b + 4;
}

#define GET_METRICS "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
#define RUNS_SRC "actord_component_runs_total{component=\"src\",class=\"test.bytes\",worker=\"0\"}"

/* Every HELP and TYPE line of a metrics text, in order (caller frees). */
static char *family_lines(const char *text)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        for (const char *l = text; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0))
                if (l[0] == '#')
                        fprintf(f, "%.*s\n", (int)strcspn(l, "\n"), l);
        fclose(f);
        return out;
}

Test(control, the_metrics_over_http_answer_what_the_socket_answers)
{
        conf = write_conf_with("c.conf", "metrics_listen = \"127.0.0.1:0\";", FINITE_COMPONENTS,
                               FINITE_LINKS);
        sock = path_in_dir("ctl.sock");
        start_with_socket(&d, conf, sock);
        cr_assert(wait_contains(dir, d.err_path, "component 'src' finished (DONE)", 20000));
        int port = http_port();

        char *r = http(port, GET_METRICS);
        cr_assert_eq(http_status(r), 200, "%.300s", r);
        cr_assert(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
                  "%.300s", r);
        const char *body = http_body(r);
        char *m = ask_ok(sock, "metrics");
        /* The same families, and the same figures where nothing moves any more. */
        char *fh = family_lines(body), *fs = family_lines(m);
        cr_assert_str_eq(fh, fs);
        cr_assert_eq(must_metric(body, RUNS_SRC), FINITE_COUNT + 1);
        cr_assert_eq(must_metric(body, RUNS_SRC), must_metric(m, RUNS_SRC));
        int families = check_exposition(body);
        cr_assert_eq(prometheus_parse(body), families,
                     "the Prometheus parser refused the HTTP answer:\n%s", body);
        free(fh);
        free(fs);
        free(m);
        free(r);

        /* Keep-alive: two requests on one connection, two answers. */
        r = http(port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n" GET_METRICS);
        const char *second = strstr(r + 1, "HTTP/1.1 200 OK\r\n");
        cr_assert(!strncmp(r, "HTTP/1.1 200 OK\r\n", 17) && second, "%.300s", r);
        const char *closed = strstr(r, "Connection: close\r\n");
        cr_assert(!closed || closed > second, "the first answer closed the connection: %.300s", r);
        free(r);
        r = http(port, "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        cr_assert_eq(http_status(r), 200);
        cr_assert_str_empty(http_body(r), "HEAD with a body");
        free(r);
        r = http(port, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        cr_assert_eq(http_status(r), 404);
        cr_assert(strstr(http_body(r), "/metrics"), "%s", r);
        free(r);
        r = http(port, "POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                       "Connection: close\r\n\r\nabc");
        cr_assert_eq(http_status(r), 405);
        cr_assert(strstr(r, "\r\nAllow: GET, HEAD\r\n"), "%s", r);
        free(r);

        /* A client that sends nothing, and one that sends half a request, hold up neither the
         * control socket nor the next scrape; the half one is answered once it is whole. */
        int silent = tcp_connect(port), half = tcp_connect(port);
        cr_assert(silent >= 0 && half >= 0);
        cr_assert_eq(send(half, "GET /met", 8, MSG_NOSIGNAL), 8);
        /* status names the address, as the log did. */
        char *st = ask_ok(sock, "status"), url[96];
        snprintf(url, sizeof(url), "\nmetrics: http://127.0.0.1:%d/metrics\n", port);
        cr_assert(strstr(st, url), "no '%s' in: %s", url + 1, st);
        free(st);
        r = http(port, GET_METRICS);
        cr_assert_eq(http_status(r), 200);
        free(r);
        r = http_on(half, "rics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        cr_assert_eq(http_status(r), 200);
        cr_assert_eq(must_metric(http_body(r), RUNS_SRC), FINITE_COUNT + 1);
        free(r);
        close(silent);
        ctl_end();
}

/* A port someone else holds: the start stops, naming the setting; a reload that asks for it
 * fails and the old address serves on; a reload without the setting turns it off. */
Test(control, a_metrics_address_that_cannot_be_had_is_refused_and_changes_nothing)
{
        int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t sl = sizeof(sa);
        cr_assert(holder >= 0 && bind(holder, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                  listen(holder, 1) == 0 && getsockname(holder, (struct sockaddr *)&sa, &sl) == 0);
        char taken[96];
        snprintf(taken, sizeof(taken), "metrics_listen = \"127.0.0.1:%d\";", ntohs(sa.sin_port));

        conf = write_conf_with("c.conf", taken, FINITE_COMPONENTS, FINITE_LINKS);
        sock = path_in_dir("ctl.sock");
        const char *args[] = {"--config", conf, "--control-socket", sock, NULL};
        daemon_start(&d, dir, args);
        int status = daemon_wait_exit(&d, 20000);
        char *err = daemon_stderr(&d);
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
                  "status 0x%x; stderr:\n%s", status, err);
        char want[256];
        snprintf(want, sizeof(want),
                 "%s:1: actord.metrics_listen = \"127.0.0.1:%d\": cannot listen: Address already "
                 "in use",
                 conf, ntohs(sa.sin_port));
        cr_assert(strstr(err, want), "no '%s' in:\n%s", want, err);
        cr_assert(strstr(err, "startup failed: no metrics over HTTP"), "%s", err);
        free(err);
        daemon_cleanup(&d);
        free(conf);

        conf = write_conf_with("c.conf", "metrics_listen = \"127.0.0.1:0\";", FINITE_COMPONENTS,
                               FINITE_LINKS);
        start_with_socket(&d, conf, sock);
        int port = http_port();
        free(write_conf_with("c.conf", taken, FINITE_COMPONENTS, FINITE_LINKS));
        char *a = ask(sock, "reload");
        cr_assert(strstr(a, "failed: ") && strstr(a, "cannot listen: Address already in use"), "%s",
                  a);
        free(a);
        char *r = http(port, GET_METRICS);
        cr_assert_eq(http_status(r), 200, "the old address stopped serving");
        free(r);

        free(write_conf("c.conf", FINITE_COMPONENTS, FINITE_LINKS));
        a = ask_ok(sock, "reload");
        free(a);
        cr_assert(wait_contains(dir, d.err_path, "metrics over HTTP: off", 10000));
        cr_assert_eq(tcp_connect(port), -ECONNREFUSED, "port %d still served", port);
        a = ask_ok(sock, "status");
        cr_assert_null(strstr(a, "metrics:"), "%s", a);
        free(a);

        free(write_conf_with("c.conf", "metrics_listen = \"127.0.0.1:0\";", FINITE_COMPONENTS,
                             FINITE_LINKS));
        a = ask_ok(sock, "reload");
        free(a);
        cr_assert(wait_contains(dir, d.err_path, "metrics over HTTP now at", 10000));
        r = http(http_port(), GET_METRICS);
        cr_assert_eq(http_status(r), 200);
        free(r);
        close(holder);
        ctl_end();
}

/* The other address forms: IPv6 loopback, and every address (IPv6's any, which takes IPv4 too
 * where the system allows: reached here through 127.0.0.1). */
Test(control, the_metrics_listen_on_ipv6_and_on_every_address)
{
        int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        bool v6 = probe >= 0 && bind(probe, (struct sockaddr *)&s6, sizeof(s6)) == 0;
        if (probe >= 0)
                close(probe);
        if (!v6)
                cr_skip_test("no IPv6 loopback here");
        conf = write_conf_with("c.conf", "metrics_listen = \"[::1]:0\";", FINITE_COMPONENTS,
                               FINITE_LINKS);
        sock = path_in_dir("ctl.sock");
        start_with_socket(&d, conf, sock);
        int port = announced_port("http://[::1]:");
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        s6.sin6_port = htons((uint16_t)port);
        cr_assert_eq(connect(fd, (struct sockaddr *)&s6, sizeof(s6)), 0, "%s", strerror(errno));
        char *r = http_on(fd, GET_METRICS);
        cr_assert_eq(http_status(r), 200);
        free(r);
        cr_assert_eq(tcp_connect(port), -ECONNREFUSED, "IPv6 loopback only, not 127.0.0.1");

        free(
            write_conf_with("c.conf", "metrics_listen = \":0\";", FINITE_COMPONENTS, FINITE_LINKS));
        char *a = ask_ok(sock, "reload");
        free(a);
        cr_assert(wait_contains(dir, d.err_path, "metrics over HTTP now at http://[::]:", 10000),
                  "%s", daemon_stderr(&d));
        r = http(announced_port("http://[::]:"), GET_METRICS);
        cr_assert_eq(http_status(r), 200);
        free(r);
        ctl_end();
}

/* The same port on another address of the host: the running listener gives the port up for
 * the new one. Where the new one cannot be had even so (another process holds the port on an
 * address it spans), the reload fails and the old address serves again. */
Test(control, the_metrics_move_to_another_address_on_the_same_port)
{
        conf = write_conf_with("c.conf", "metrics_listen = \"127.0.0.1:0\";", FINITE_COMPONENTS,
                               FINITE_LINKS);
        sock = path_in_dir("ctl.sock");
        start_with_socket(&d, conf, sock);
        int port = http_port();
        char every[96];
        snprintf(every, sizeof(every), "metrics_listen = \"0.0.0.0:%d\";", port);
        free(write_conf_with("c.conf", every, FINITE_COMPONENTS, FINITE_LINKS));
        char *a = ask_ok(sock, "reload");
        free(a);
        char want[96];
        snprintf(want, sizeof(want), "metrics over HTTP now at http://0.0.0.0:%d/metrics", port);
        cr_assert(wait_contains(dir, d.err_path, want, 10000), "%s", daemon_stderr(&d));
        char *r = http(port, GET_METRICS);
        cr_assert_eq(http_status(r), 200);
        free(r);

        /* Back to the loopback; then 127.0.0.2 is taken on that port by someone else, so a
         * reload to 0.0.0.0 must fail and 127.0.0.1 serve again. */
        snprintf(want, sizeof(want), "metrics_listen = \"127.0.0.1:%d\";", port);
        free(write_conf_with("c.conf", want, FINITE_COMPONENTS, FINITE_LINKS));
        a = ask_ok(sock, "reload");
        free(a);
        snprintf(want, sizeof(want), "metrics over HTTP now at http://127.0.0.1:%d/metrics", port);
        cr_assert(wait_contains(dir, d.err_path, want, 10000), "%s", daemon_stderr(&d));
        int holder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1);
        cr_assert(holder >= 0 && bind(holder, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                      listen(holder, 1) == 0,
                  "127.0.0.2:%d: %s", port, strerror(errno));
        free(write_conf_with("c.conf", every, FINITE_COMPONENTS, FINITE_LINKS));
        a = ask(sock, "reload");
        cr_assert(strstr(a, "failed: ") && strstr(a, "cannot listen: Address already in use"), "%s",
                  a);
        free(a);
        r = http(port, GET_METRICS);
        cr_assert_eq(http_status(r), 200, "the old address was not taken back");
        free(r);
        a = ask_ok(sock, "status");
        snprintf(want, sizeof(want), "\nmetrics: http://127.0.0.1:%d/metrics\n", port);
        cr_assert(strstr(a, want), "no '%s' in: %s", want + 1, a);
        free(a);
        close(holder);
        ctl_end();
}

/* ---- the metrics over HTTPS, to users who log in ---- */

/* A self-signed certificate for 127.0.0.1 and its key: <dir>/cert.pem, <dir>/key.pem. */
static void make_cert(void)
{
        char *cmd;
        cr_assert(asprintf(&cmd,
                           "cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
                           "ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -days 2 "
                           "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
                           "2>openssl.log",
                           dir) > 0);
        int st = system(cmd);
        free(cmd);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl req failed");
}

/* What the server at 127.0.0.1:port answers to req over TLS, trusting cert.pem alone and
 * checking the address in it (openssl s_client); "" if no TLS session was made (caller
 * frees). */
static char *https(int port, const char *req)
{
        char *in = tu_write(dir, "request.txt", req), *cmd;
        cr_assert(asprintf(&cmd,
                           "openssl s_client -quiet -ign_eof -connect 127.0.0.1:%d -CAfile "
                           "'%s/cert.pem' -verify_return_error -verify_ip 127.0.0.1 <'%s' "
                           "2>/dev/null",
                           port, dir, in) > 0);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        size_t cap = 1 << 16, got = 0;
        char *buf = malloc(cap);
        size_t n;
        while ((n = fread(buf + got, 1, cap - 1 - got, p)) > 0)
                if ((got += n) + 1 == cap)
                        cr_assert((buf = realloc(buf, cap *= 2)));
        buf[got] = 0;
        pclose(p);
        free(cmd);
        free(in);
        return buf;
}

#define GET_AS(auth) "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" auth "\r\n"

/* metrics_tls_cert and metrics_users: HTTPS only, and a login (basic authentication, the
 * password checked against its crypt(3) hash) before any answer; a reload reads the
 * certificate again, and replaces the listener only when it changed. */
Test(control, the_metrics_over_https_answer_users_who_log_in)
{
        make_cert();
        /* sha512crypt of "s3cret" (openssl passwd -6). */
        const char *users =
            "metrics_users = { prometheus = \"$6$0123456789abcdef$QaL63Cx/fSzlgAogrcSGcy5hvrsSg1dl"
            "thiou8XkG8WRUEyaU5DtBqyHZd0wrQ/HXIgQDRNcrS5yWC8NAJjy21\"; };";
        char actord[1024];
        snprintf(actord, sizeof(actord),
                 "metrics_listen = \"127.0.0.1:0\"; metrics_tls_cert = \"cert.pem\";\n"
                 "  metrics_tls_key = \"key.pem\"; %s",
                 users);
        conf = write_conf_with("c.conf", actord, FINITE_COMPONENTS, FINITE_LINKS);
        sock = path_in_dir("ctl.sock");
        start_with_socket(&d, conf, sock);
        cr_assert(wait_contains(dir, d.err_path, "component 'src' finished (DONE)", 20000));
        int port = announced_port("https://127.0.0.1:");

        /* prometheus:s3cret, prometheus:wrong */
        const char *right = "Authorization: Basic cHJvbWV0aGV1czpzM2NyZXQ=\r\n";
        char *r = https(port, GET_AS(""));
        cr_assert_eq(http_status(r), 401, "%.300s", r);
        cr_assert(strstr(r, "\r\nWWW-Authenticate: Basic realm=\"actord metrics\""), "%.300s", r);
        cr_assert_null(strstr(r, "actord_component_runs_total"), "%s", r);
        free(r);
        r = https(port, GET_AS("Authorization: Basic cHJvbWV0aGV1czp3cm9uZw==\r\n"));
        cr_assert_eq(http_status(r), 401, "a wrong password: %.300s", r);
        free(r);
        char req[256];
        snprintf(req, sizeof(req), GET_AS("%s"), right);
        for (int i = 0; i < 2; i++) { /* the second from the matched password kept */
                r = https(port, req);
                cr_assert_eq(http_status(r), 200, "%.300s", r);
                cr_assert_eq(must_metric(http_body(r), RUNS_SRC), FINITE_COUNT + 1);
                free(r);
        }
        /* Plain HTTP is not answered with the metrics. */
        r = http(port, GET_METRICS);
        cr_assert(strncmp(r, "HTTP/1.1 200", 12), "plain HTTP answered: %.200s", r);
        free(r);
        char *st = ask_ok(sock, "status"), url[96];
        snprintf(url, sizeof(url), "\nmetrics: https://127.0.0.1:%d/metrics\n", port);
        cr_assert(strstr(st, url), "no '%s' in: %s", url + 1, st);
        free(st);

        /* A reload that changes nothing of it keeps the listener: the same port (0 in the
         * configuration: a new listener would have another), no "now at". */
        char *a = ask_ok(sock, "reload");
        free(a);
        r = https(port, req);
        cr_assert_eq(http_status(r), 200, "after a reload that changed nothing: %.300s", r);
        free(r);
        char *log = daemon_stderr(&d);
        cr_assert_null(strstr(log, "metrics over HTTP now at"), "%s", log);
        free(log);

        /* A renewed certificate under the same name: a reload serves it. */
        make_cert();
        a = ask_ok(sock, "reload");
        free(a);
        cr_assert(
            wait_contains(dir, d.err_path, "metrics over HTTP now at https://127.0.0.1:", 10000),
            "%s", daemon_stderr(&d));
        r = https(announced_port("https://127.0.0.1:"), req);
        cr_assert_eq(http_status(r), 200, "after the reload: %.300s", r);
        free(r);
        ctl_end();
}

/* Users without HTTPS: said in the log, since the passwords cross the network in the clear;
 * the login is asked all the same. */
Test(control, metrics_users_without_https_are_warned_of)
{
        const char *hash = "\"$6$0123456789abcdef$QaL63Cx/fSzlgAogrcSGcy5hvrsSg1dlthiou8XkG8W"
                           "RUEyaU5DtBqyHZd0wrQ/HXIgQDRNcrS5yWC8NAJjy21\"";
        char users[512];
        snprintf(users, sizeof(users),
                 "metrics_listen = \"127.0.0.1:0\"; metrics_users = { p = %s; q = %s; };", hash,
                 hash);
        conf = write_conf_with("c.conf", users, FINITE_COMPONENTS, FINITE_LINKS);
        sock = path_in_dir("ctl.sock");
        start_with_socket(&d, conf, sock);
        char *err = daemon_stderr(&d);
        cr_assert(strstr(err, "metrics_users without metrics_tls_cert: the passwords cross the "
                              "network in the clear"),
                  "%s", err);
        free(err);
        char *r = http(http_port(), GET_METRICS);
        cr_assert_eq(http_status(r), 401, "%.300s", r);
        free(r);
        /* p:s3cret */
        r = http(http_port(), GET_AS("Authorization: Basic cDpzM2NyZXQ=\r\n"));
        cr_assert_eq(http_status(r), 200, "%.300s", r);
        free(r);
        /* Guessing from 127.0.0.2: past a few passwords a second, logins are refused
         * unchecked (no crypt(3) on the main thread), and said; the password that matched last
         * still gets in, and so does a first login from another address (q's, from
         * 127.0.0.1), which the guesses do not lock out. */
        for (int i = 0; i < 40; i++) {
                int fd = tcp_connect_from(http_port(), 2);
                cr_assert_geq(fd, 0);
                r = http_on(fd, GET_AS("Authorization: Basic cDpndWVzcw==\r\n")); /* p:guess */
                cr_assert_eq(http_status(r), 401, "%.300s", r);
                free(r);
        }
        cr_assert(wait_contains(dir, d.err_path, "logins refused unchecked", 10000), "%s",
                  daemon_stderr(&d));
        /* The health answers without a login, and says no more than that. */
        r = http(http_port(), "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        cr_assert_eq(http_status(r), 200, "%.300s", r);
        cr_assert_str_eq(http_body(r), "ok\n");
        free(r);
        r = http(http_port(), GET_AS("Authorization: Basic cDpzM2NyZXQ=\r\n"));
        cr_assert_eq(http_status(r), 200, "the known password was refused: %.300s", r);
        free(r);
        r = http(http_port(), GET_AS("Authorization: Basic cTpzM2NyZXQ=\r\n")); /* q:s3cret */
        cr_assert_eq(http_status(r), 200, "a first login from another address: %.300s", r);
        free(r);
        ctl_end();
}

/* A login under a name no user has costs what a wrong password does: a crypt(3), within the
 * same budgets, so that the time of the answer does not tell which names exist. Guessing
 * names from 127.0.0.2 meets the budget as guessing passwords does; a user from 127.0.0.1
 * still gets in. */
Test(control, an_unknown_user_name_costs_what_a_wrong_password_does)
{
        const char *hash = "\"$6$0123456789abcdef$QaL63Cx/fSzlgAogrcSGcy5hvrsSg1dlthiou8XkG8W"
                           "RUEyaU5DtBqyHZd0wrQ/HXIgQDRNcrS5yWC8NAJjy21\"";
        char users[512];
        snprintf(users, sizeof(users),
                 "metrics_listen = \"127.0.0.1:0\"; metrics_users = { p = %s; };", hash);
        conf = write_conf_with("c.conf", users, FINITE_COMPONENTS, FINITE_LINKS);
        sock = path_in_dir("ctl.sock");
        start_with_socket(&d, conf, sock);
        for (int i = 0; i < 40; i++) {
                int fd = tcp_connect_from(http_port(), 2);
                cr_assert_geq(fd, 0);
                /* nobody:guess */
                char *r = http_on(fd, GET_AS("Authorization: Basic bm9ib2R5Omd1ZXNz\r\n"));
                cr_assert_eq(http_status(r), 401, "%.300s", r);
                free(r);
        }
        cr_assert(wait_contains(dir, d.err_path, "logins refused unchecked", 10000),
                  "unknown names were never checked: %s", daemon_stderr(&d));
        char *r = http(http_port(), GET_AS("Authorization: Basic cDpzM2NyZXQ=\r\n")); /* p:s3cret */
        cr_assert_eq(http_status(r), 200, "%.300s", r);
        free(r);
        ctl_end();
}

/* GET /health: 503 "stalled" while a worker is stuck inside a run (the supervisor's view),
 * while the metrics go on answering. */
Test(control, the_health_over_http_says_when_a_worker_is_stuck)
{
        /* Every second run of `slow` spins for a minute: its worker is stuck. */
        char *comps;
        cr_assert(
            asprintf(&comps,
                     "  slow = { class = \"test.slowtick\"; schedule = { every_us = 1000; };\n"
                     "    settings = { path = \"%s/slow.txt\"; busy_us = 60000000; every = "
                     "2; }; };\n"
                     "  p = { class = \"test.probe\"; settings = { path = \"%s/p.txt\"; }; };\n",
                     dir, dir) > 0);
        conf = write_kit_conf("stuck.conf", "schedkit",
                              "stall_ms = 200; metrics_listen = \"127.0.0.1:0\";", comps,
                              "\"slow.out -> p.in\"");
        free(comps);
        sock = path_in_dir("ctl.sock");
        start_with_socket(&d, conf, sock);
        cr_assert(
            daemon_wait_notify(&d, "STATUS=STALLED: worker 0 stuck in component 'slow'", 10000),
            "%s", daemon_stderr(&d));
        const char *get = "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        char *r = http(http_port(), get);
        cr_assert_eq(http_status(r), 503, "%.300s", r);
        cr_assert_str_eq(http_body(r), "stalled\n");
        free(r);
        r = http(http_port(), GET_METRICS);
        cr_assert_eq(http_status(r), 200, "the metrics stopped with the worker: %.200s", r);
        free(r);
        ctl_end();
}

/* The series `actord_component_<family>` of a component on worker 0. */
static void comp_series(char *buf, size_t len, const char *family, const char *comp,
                        const char *cls)
{
        snprintf(buf, len, "actord_component_%s{component=\"%s\",class=\"%s\",worker=\"0\"}",
                 family, comp, cls);
}

static double comp_metric(const char *m, const char *family, const char *comp, const char *cls)
{
        char series[160];
        comp_series(series, sizeof(series), family, comp, cls);
        return must_metric(m, series);
}

/* The busy column of a component's row in `stats` (its runs, then its busy share). */
static double busy_column(const char *stats, const char *comp)
{
        char head[64];
        snprintf(head, sizeof(head), "\n%s ", comp);
        const char *row = strstr(stats, head);
        cr_assert(row, "no row for %s: %s", comp, stats);
        const char *state = strstr(row, "running");
        cr_assert(state, "%s is not running: %s", comp, stats);
        double runs, share;
        cr_assert_eq(sscanf(state + strlen("running"), "%lf %lf%%", &runs, &share), 2, "%.200s",
                     row);
        return share;
}

/* Busy time, per component: `slow` runs every 12 ms and spins 8 ms each time (fewer than 100
 * runs a second: every run is timed, so its figure is exact), `fast` every 200 us for 20 us
 * (up to 5000 runs a second: about one run in 50 is timed and stands for the others), `count`
 * counts what `tick` sends every millisecond and does little else. (The slowticks publish
 * nothing: their probes never run.) */
Test(control, busy_time_shows_where_each_worker_spends_its_time)
{
        char *comps;
        cr_assert(
            asprintf(&comps,
                     "  slow = { class = \"test.slowtick\"; schedule = { every_us = 12000; };\n"
                     "    settings = { path = \"%s/slow.txt\"; busy_us = 8000; every = 1; }; };\n"
                     "  fast = { class = \"test.slowtick\"; schedule = { every_us = 200; };\n"
                     "    settings = { path = \"%s/fast.txt\"; busy_us = 20; every = 1; }; };\n"
                     "  p = { class = \"test.probe\"; settings = { path = \"%s/p.txt\"; }; };\n"
                     "  q = { class = \"test.probe\"; settings = { path = \"%s/q.txt\"; }; };\n"
                     "  tick = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                     "  count = { class = \"core.counter\"; settings = { report_ms = 100000; "
                     "}; };\n",
                     dir, dir, dir, dir) > 0);
        conf =
            write_kit_conf("busy.conf", "schedkit", "", comps,
                           "\"slow.out -> p.in\", \"fast.out -> q.in\", \"tick.out -> count.in\"");
        free(comps);
        sock = path_in_dir("ctl.sock");
        int64_t t0 = now_ms();
        start_with_socket(&d, conf, sock);
        char slow_runs_at[160];
        comp_series(slow_runs_at, sizeof(slow_runs_at), "runs_total", "slow", "test.slowtick");
        char *m = wait_metric(sock, slow_runs_at, 120);
        double elapsed = (double)(now_ms() - t0) / 1000;
        /* The runs are written before the busy times: these cover at least those runs. */
        double slow_runs = comp_metric(m, "runs_total", "slow", "test.slowtick");
        double slow = comp_metric(m, "busy_seconds_total", "slow", "test.slowtick");
        double fast_runs = comp_metric(m, "runs_total", "fast", "test.slowtick");
        double fast = comp_metric(m, "busy_seconds_total", "fast", "test.slowtick");
        double count_runs = comp_metric(m, "runs_total", "count", "core.counter");
        double count = comp_metric(m, "busy_seconds_total", "count", "core.counter");
        /* Every run of `slow` counted once, at 8 ms or more (but for the last two: a run that
         * came less than 5 ms after the one before, having started late, is not timed for
         * sure), and the worker was not busy longer than the test ran. */
        cr_assert_geq(slow, 0.008 * (slow_runs - 2), "%g s busy in %g runs", slow, slow_runs);
        cr_assert_leq(slow, elapsed, "%g s busy in %g s", slow, elapsed);
        /* A timed run of `fast` stands for at most 2G - 1 runs, G its runs in 10 ms: 50, up
         * to 100 when two runs came close. All but the last 200 at most are in. */
        cr_assert_gt(fast_runs, 1000, "%g runs", fast_runs);
        cr_assert_geq(fast, 0.000020 * (fast_runs - 200), "%g s busy in %g runs", fast, fast_runs);
        cr_assert_leq(slow + fast + count, elapsed, "one worker, busy %g + %g + %g s in %g s", slow,
                      fast, count, elapsed);
        /* A counter: microseconds a run, not milliseconds (the bound leaves room for timed
         * runs that a loaded machine preempts). */
        cr_assert_gt(count_runs, 100, "%g runs", count_runs);
        cr_assert_lt(count, slow / 4, "%g s busy in %g runs", count, count_runs);
        /* The run times' histogram: its sum is the busy time (read a little later: a run more
         * at most); no run of `slow` under 8 ms (the bucket up to 4.19 ms is empty) and each
         * counted, none of `fast` under 20 us. */
        double slow_sum = comp_metric(m, "run_seconds_sum", "slow", "test.slowtick");
        cr_assert(slow_sum >= slow && slow_sum < slow + 0.02, "sum %g, busy %g", slow_sum, slow);
        double slow_counted = comp_metric(m, "run_seconds_count", "slow", "test.slowtick");
        cr_assert(slow_counted >= slow_runs - 2 && slow_counted <= slow_runs + 1,
                  "%g runs counted of %g", slow_counted, slow_runs);
        char le[200];
        comp_series(le, sizeof(le), "run_seconds_bucket", "slow", "test.slowtick");
        strcpy(le + strlen(le) - 1, ",le=\"0.004194304\"}");
        cr_assert_eq(must_metric(m, le), 0, "%s", le);
        comp_series(le, sizeof(le), "run_seconds_bucket", "fast", "test.slowtick");
        strcpy(le + strlen(le) - 1, ",le=\"1.6384e-05\"}");
        cr_assert_eq(must_metric(m, le), 0, "%s", le);
        free(m);

        /* The table: each component's share of a CPU over the last second. */
        char *out, *err;
        const char *args[] = {"-s", sock, "stats", NULL};
        cr_assert_eq(actorctl(args, NULL, &out, &err), 0, "stderr: %s", err);
        cr_assert(strstr(out, " busy "), "no busy column: %s", out);
        /* 8 ms in 12 is 67 %; a loaded machine makes runs late, not shorter. */
        double share = busy_column(out, "slow");
        cr_assert(share >= 30 && share <= 100, "slow busy %g %%: %s", share, out);
        /* Then the run times' median and p99, as bucket bounds: 8.39 ms or more. */
        char *row = strstr(out, "\nslow "), p50[16], p99[16];
        cr_assert_eq(sscanf(strstr(row, "%") + 1, "%15s %15s", p50, p99), 2, "%.200s", row);
        cr_assert(strstr(p50, "ms") && strtod(p50, NULL) >= 8, "run p50 %s: %.200s", p50, row);
        cr_assert(strstr(p99, "ms") && strtod(p99, NULL) >= 8, "run p99 %s: %.200s", p99, row);
        share = busy_column(out, "count");
        cr_assert_leq(share, 20, "count busy %g %%: %s", share, out);
        /* The status line names the busiest worker, here the only one. */
        const char *busiest = strstr(out, "; busiest worker 0 at ");
        cr_assert(busiest, "%s", out);
        cr_assert_geq(strtod(busiest + strlen("; busiest worker 0 at "), NULL), 30, "%s", out);
        free(out);
        free(err);
        ctl_end();
}

/* A worker whose components keep it busy 90 % or more of five seconds in a row is said to be
 * saturated, once, naming them: `hog` spins 20 ms a run with a run due every 100 us. */
Test(control, a_saturated_worker_is_said_so_with_its_busiest_components)
{
        int a, b;
        two_cpus(&a, &b); /* the worker's CPU, as write_kit_conf() takes it */
        char *comps;
        cr_assert(
            asprintf(&comps,
                     "  hog = { class = \"test.slowtick\"; schedule = { every_us = 100; };\n"
                     "    settings = { path = \"%s/hog.txt\"; busy_us = 20000; every = 1; }; };\n"
                     "  p = { class = \"test.probe\"; settings = { path = \"%s/p.txt\"; }; };\n",
                     dir, dir) > 0);
        conf = write_kit_conf("hog.conf", "schedkit", "", comps, "\"hog.out -> p.in\"");
        free(comps);
        sock = path_in_dir("ctl.sock");
        start_with_socket(&d, conf, sock);
        char want[96];
        snprintf(want, sizeof(want),
                 "worker 0 (CPU %d) saturated: busy at least 90%% of each of the last 5 s, ", a);
        cr_assert(wait_contains(dir, d.err_path, want, 20000), "%s", daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        const char *line = strstr(err, want);
        cr_assert(strstr(line, "% in the last (hog "), "%s", line);
        cr_assert_geq(strtod(line + strlen(want), NULL), 90, "%s", line);
        free(err);
        /* Once per episode: two seconds more (a hundred runs), and no second warning. */
        char runs_at[160];
        comp_series(runs_at, sizeof(runs_at), "runs_total", "hog", "test.slowtick");
        char *m = ask_ok(sock, "metrics");
        double runs = must_metric(m, runs_at);
        free(m);
        m = wait_metric(sock, runs_at, runs + 100);
        free(m);
        err = daemon_stderr(&d);
        line = strstr(err, want);
        cr_assert_null(strstr(line + 1, want), "said twice: %s", err);
        free(err);
        ctl_end();
}
