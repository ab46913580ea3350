/* The real actord binary with real plugins: what flows through a pipeline, the sd_notify
 * protocol on a socket the test owns, clean stops on SIGTERM and SIGINT, and the exit codes
 * and messages of bad configurations. */
#include "daemonutil.h"

#include "actord-build.h"
#include "actord/plugin.h"

#include <inttypes.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

TU_TMPDIR_SUITE(daemon, 60);

static char *write_pipeline_conf(const char *idle, int count, const char *out_path)
{
        char workers[160];
        int second = test_workers(idle, workers, sizeof(workers)) - 1;
        char *text;
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\" ]; workers = ( %s ); };\n"
                           "components: {\n"
                           "  src = { class = \"core.tick\"; schedule = { every_us = 300; };\n"
                           "          settings = { count = %d; }; worker = 0; };\n"
                           "  mul = { class = \"core.scale\"; settings = { factor = 2; offset = "
                           "1; }; worker = %d; };\n"
                           "  out = { class = \"core.log\"; settings = { path = \"%s\"; }; "
                           "worker = 0; };\n"
                           "};\n"
                           "links = ( \"src.out -> mul.in\", { from = \"mul.out\"; to = "
                           "\"out.in\"; overflow = \"reject\"; } );\n",
                           ACTORD_TEST_PLUGIN_DIR, workers, count, second, out_path) > 0);
        char *path = tu_write(dir, "pipeline.conf", text);
        free(text);
        return path;
}

/* Runs the three-stage pipeline across two workers with the given idle policy and checks
 * every message that reached the sink, then stops the daemon with `sig`. */
static void run_pipeline(const char *idle, int sig)
{
        const int count = 300;
        char *out;
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        char *conf = write_pipeline_conf(idle, count, out);
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);

        cr_assert(daemon_wait_notify(&d, "READY=1", 10000), "no READY=1; stderr:\n%s",
                  daemon_stderr(&d));
        char *notes = daemon_notes(&d);
        char workers[160], want_status[64];
        snprintf(want_status, sizeof(want_status), "STATUS=3 components on %d workers",
                 test_workers(idle, workers, sizeof(workers)));
        cr_assert(strstr(notes, want_status), "notes: %s", notes);
        free(notes);
        cr_assert(wait_lines(dir, out, count, 20000), "only %d of %d lines arrived",
                  count_lines(out), count);

        cr_assert_eq(kill(d.pid, sig), 0);
        int status = daemon_wait_exit(&d, 10000);
        cr_assert_neq(status, -1, "actord did not exit after signal %d", sig);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x; stderr:\n%s", status,
                  daemon_stderr(&d));
        cr_assert(daemon_wait_notify(&d, "STOPPING=1", 1000), "notes: %s", daemon_notes(&d));

        /* Every message, in order, transformed, with no loss (the last link is `reject`). */
        char *text = tu_read(out);
        char *line = text;
        for (int i = 0; i < count; i++) {
                char want[128];
                snprintf(want, sizeof(want), "seq=%d chan_seq=%d lost_before=0 value=%d ", i, i,
                         2 * i + 1);
                cr_assert(!strncmp(line, want, strlen(want)), "line %d: want '%s', got '%.60s'", i,
                          want, line);
                line = strchr(line, '\n');
                cr_assert_not_null(line);
                line++;
        }
        /* fini ran: the sink wrote its closing line when the daemon stopped. */
        char want_end[64];
        snprintf(want_end, sizeof(want_end), "end messages=%d lost=0\n", count);
        cr_assert_str_eq(line, want_end);

        char *err = daemon_stderr(&d);
        cr_assert(strstr(err, "component 'src' (core.tick, periodic) on worker 0"), "%s", err);
        cr_assert(strstr(err, "component 'src' finished (DONE) after"), "%s", err);
        cr_assert(strstr(err, "<6>stopped\n"), "%s", err);
        free(err);
        free(text);
        daemon_cleanup(&d);
        free(conf);
        free(out);
}

Test(daemon, pipeline_sleep_workers_stop_on_sigterm)
{
        run_pipeline("sleep", SIGTERM);
}

Test(daemon, pipeline_spin_workers_stop_on_sigint)
{
        run_pipeline("spin", SIGINT);
}

Test(daemon, pipeline_adaptive_workers_stop_on_sigterm)
{
        run_pipeline("adaptive", SIGTERM);
}

static int run_to_exit(const char *const *args, char **ret_stderr)
{
        struct daemon d;
        daemon_start(&d, dir, args);
        int status = daemon_wait_exit(&d, 20000);
        cr_assert_neq(status, -1, "actord did not exit");
        *ret_stderr = daemon_stderr(&d);
        daemon_cleanup(&d);
        cr_assert(WIFEXITED(status), "status 0x%x", status);
        return WEXITSTATUS(status);
}

Test(daemon, version_and_help)
{
        char *out;
        cr_assert(asprintf(&out, "%s/stdout.txt", dir) > 0);
        char *cmd;
        cr_assert(asprintf(&cmd, "'%s' --version > '%s' && '%s' --help >> '%s'", ACTORD_TEST_DAEMON,
                           out, ACTORD_TEST_DAEMON, out) > 0);
        cr_assert_eq(system(cmd), 0);
        char *text = tu_read(out);
        char *first;
        cr_assert(asprintf(&first, "actord %s (plugin ABI %d.%d)\n", ACTORD_VERSION,
                           ACTORD_ABI_MAJOR, ACTORD_ABI_MINOR) > 0);
        cr_assert(!strncmp(text, first, strlen(first)), "%s", text);
        free(first);
        cr_assert(strstr(text, "Usage: actord [OPTIONS]"));
        cr_assert(strstr(text, "--plugin-dir DIR"));
        free(text);
        free(cmd);
        free(out);
}

Test(daemon, invalid_config_exits_78_reporting_every_error)
{
        char *text;
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\" ]; workers = ( { cpu = 0; } ); };\n"
                           "components: {\n"
                           "  a = { class = \"core.tik\"; };\n"
                           "  l = { class = \"core.log\"; settings = { pth = \"x\"; }; };\n"
                           "};\n"
                           "links = ( \"a.out -> l.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR) > 0);
        char *conf = tu_write(dir, "bad.conf", text);
        char *err;
        const char *args[] = {"--config", conf, NULL};
        cr_assert_eq(run_to_exit(args, &err), 78, "stderr:\n%s", err);
        char *want1, *want2;
        cr_assert(asprintf(&want1,
                           "%s:3: component 'a': unknown class 'core.tik'; did you mean "
                           "'core.tick'?",
                           conf) > 0);
        cr_assert(asprintf(&want2,
                           "%s:4: component 'l': class 'core.log' has no setting 'pth'; "
                           "did you mean 'path'?",
                           conf) > 0);
        cr_assert(strstr(err, want1), "%s", err);
        cr_assert(strstr(err, want2), "%s", err);
        cr_assert(strstr(err, "configuration not valid (2 errors)"), "%s", err);

        /* --check-config says the same without starting anything. */
        const char *check[] = {"--check-config", "--config", conf, NULL};
        free(err);
        cr_assert_eq(run_to_exit(check, &err), 78);
        cr_assert(strstr(err, want1), "%s", err);
        free(want1);
        free(want2);
        free(err);
        free(conf);
        free(text);
}

Test(daemon, check_config_accepts_the_demo)
{
        char *err;
        const char *args[] = {"--check-config",
                              "--config",
                              ACTORD_TEST_SOURCE_DIR "/conf/actord.conf",
                              "--plugin-dir",
                              ACTORD_TEST_PLUGIN_DIR,
                              NULL};
        /* The demo pins two workers to CPUs 0 and 1. */
        cpu_set_t set;
        sched_getaffinity(0, sizeof(set), &set);
        if (!CPU_ISSET(0, &set) || !CPU_ISSET(1, &set))
                cr_skip_test("the demo needs CPUs 0 and 1");
        cr_assert_eq(run_to_exit(args, &err), 0, "%s", err);
        free(err);
}

Test(daemon, failing_init_stops_startup_and_finalises_the_others)
{
        int a, b;
        two_cpus(&a, &b);
        char *out;
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        char *text;
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s\" ]; workers = ( { cpu = %d; "
                           "} ); };\n"
                           "components: {\n"
                           "  t1 = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                           "  log = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "  t2 = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                           "  bad = { class = \"test.failinit\"; };\n"
                           "};\n"
                           "links = ( \"t1.out -> log.in\", \"t2.out -> bad.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/testkit", a,
                           out) > 0);
        char *conf = tu_write(dir, "failinit.conf", text);
        char *err;
        const char *args[] = {"--config", conf, NULL};
        struct daemon d;
        daemon_start(&d, dir, args);
        int status = daemon_wait_exit(&d, 20000);
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
                  "status 0x%x; stderr:\n%s", status, daemon_stderr(&d));
        err = daemon_stderr(&d);
        cr_assert(strstr(err, "component 'bad' (test.failinit) failed to start: refusing to "
                              "start, as asked"),
                  "%s", err);
        cr_assert(!daemon_wait_notify(&d, "READY=1", 200), "READY must not be sent: %s",
                  daemon_notes(&d));
        char *o = tu_read(out);
        cr_assert_str_eq(o, "end messages=0 lost=0\n", "the started sink was finalised");
        free(o);
        free(err);
        daemon_cleanup(&d);
        free(conf);
        free(text);
        free(out);
}

Test(daemon, watchdog_is_fed_except_while_a_worker_is_stuck)
{
        int a, b;
        two_cpus(&a, &b);
        char *out, *sink, *text;
        cr_assert(asprintf(&out, "%s/slow.txt", dir) > 0);
        cr_assert(asprintf(&sink, "%s/sink.txt", dir) > 0);
        /* Every third run of `slow` blocks its worker for 1.5 s; 200 ms is a stall. */
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s\" ]; stall_ms = 200;\n"
                           "          workers = ( { cpu = %d; } ); };\n"
                           "components: {\n"
                           "  slow = { class = \"test.slowtick\"; schedule = { every_us = 100000; "
                           "};\n"
                           "           settings = { path = \"%s\"; busy_us = 1500000; every = 3; "
                           "}; };\n"
                           "  p = { class = \"test.probe\"; settings = { path = \"%s\"; }; };\n"
                           "};\n"
                           "links = ( \"slow.out -> p.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/schedkit", a, out,
                           sink) > 0);
        char *conf = tu_write(dir, "watchdog.conf", text);
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        const char *env[] = {"WATCHDOG_USEC=300000", NULL};
        daemon_start_env(&d, dir, args, env);
        cr_assert(daemon_wait_notify(&d, "WATCHDOG=1", 2000), "no watchdog ping; stderr:\n%s",
                  daemon_stderr(&d));
        char want[128];
        snprintf(want, sizeof(want),
                 "<3>worker 0 (CPU %d) is stuck: component 'slow' (test.slowtick) has been "
                 "running for",
                 a);
        cr_assert(wait_contains(dir, d.err_path, want, 5000), "%s", daemon_stderr(&d));
        cr_assert(
            daemon_wait_notify(&d, "STATUS=STALLED: worker 0 stuck in component 'slow'", 3000));
        cr_assert(wait_contains(dir, d.err_path, "worker 0 (CPU", 5000));
        cr_assert(wait_contains(dir, d.err_path, ") runs again", 5000), "%s", daemon_stderr(&d));
        /* After the stall the normal STATUS and the pings come back; between the stalled
         * STATUS and the normal one, no ping. */
        for (;;) {
                char *notes = daemon_notes(&d);
                const char *stalled = strstr(notes, "STATUS=STALLED");
                cr_assert_not_null(stalled);
                const char *back = strstr(stalled, "components on 1 workers");
                if (back && strstr(back, "WATCHDOG=1")) {
                        const char *ping = strstr(stalled, "WATCHDOG=1");
                        cr_assert(ping > back, "a watchdog ping while stalled:\n%s", notes);
                        free(notes);
                        break;
                }
                size_t len = strlen(notes);
                free(notes);
                cr_assert(daemon_wait_more(&d, len, 3000), "no notification after the stall");
        }
        kill(d.pid, SIGTERM);
        cr_assert_neq(daemon_wait_exit(&d, 10000), -1);
        daemon_cleanup(&d);
        free(conf);
        free(text);
        free(out);
        free(sink);
}

/* Errors of the file itself and errors that need the plugins are reported in one run. */
Test(daemon, file_and_plugin_level_errors_are_reported_together)
{
        char *text;
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\" ]; workres = 1; };\n"
                           "components: {\n"
                           "  a = { class = \"core.tick\"; schedule = \"never\"; };\n"
                           "  b = { class = \"core.tik\"; };\n"
                           "};\n"
                           "links = ( \"a.out -> b.in\", \"a.out -> nowhere\" );\n",
                           ACTORD_TEST_PLUGIN_DIR) > 0);
        char *conf = tu_write(dir, "both.conf", text);
        char *err;
        const char *args[] = {"--check-config", "--config", conf, NULL};
        cr_assert_eq(run_to_exit(args, &err), 78, "%s", err);
        const char *want[] = {
            ":1: unknown key 'workres' in actord; did you mean 'workers'?",
            ":3: component 'a': schedule = \"never\": expected",
            ":6: link destination \"nowhere\": expected \"component.port\"",
            ":4: component 'b': unknown class 'core.tik'; did you mean 'core.tick'?",
            "configuration not valid (4 errors)",
        };
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
                cr_assert(strstr(err, want[i]), "missing '%s' in:\n%s", want[i], err);
        free(err);
        free(conf);
        free(text);
}

/* SIGHUP with a broken file: RELOADING, the errors logged with file:line, READY again with a
 * STATUS that says the reload failed, and the pipeline keeps running. */
Test(daemon, reload_with_an_invalid_file_keeps_the_pipeline_running)
{
        char *out;
        cr_assert(asprintf(&out, "%s/out.txt", dir) > 0);
        char *conf = write_pipeline_conf("sleep", 0, out); /* count 0: runs until stopped */
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(daemon_wait_notify(&d, "READY=1", 10000), "%s", daemon_stderr(&d));
        cr_assert(wait_lines(dir, out, 10, 10000));

        char *good = tu_read(conf);
        char *bad =
            tu_write(dir, "pipeline.conf", "components: { x = { class = \"core.tik\"; }; };\n");
        free(bad);
        kill(d.pid, SIGHUP);
        cr_assert(daemon_wait_notify(&d, "RELOADING=1\nMONOTONIC_USEC=", 5000));
        cr_assert(daemon_wait_notify(&d, "STATUS=reload failed (1 error in ", 5000), "%s",
                  daemon_notes(&d));
        char want[512];
        snprintf(want, sizeof(want), "%s:1: component 'x': unknown class 'core.tik'", conf);
        cr_assert(wait_contains(dir, d.err_path, want, 5000), "%s", daemon_stderr(&d));
        /* Still running: more lines arrive. */
        int lines = count_lines(out);
        cr_assert(wait_lines(dir, out, lines + 10, 10000), "the pipeline stopped");

        /* The valid file again: nothing changed, so everything keeps running. */
        free(tu_write(dir, "pipeline.conf", good));
        char *st = daemon_reload(&d, 10000);
        cr_assert(st && strstr(st, "STATUS=reloaded: 3 kept, 0 restarted, 0 started, 0 stopped"),
                  "%s", st ? st : daemon_notes(&d));
        free(st);
        lines = count_lines(out);
        cr_assert(wait_lines(dir, out, lines + 10, 10000), "the pipeline stopped");
        kill(d.pid, SIGTERM);
        int status = daemon_wait_exit(&d, 10000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", daemon_stderr(&d));
        daemon_cleanup(&d);
        free(good);
        free(conf);
        free(out);
}

/* A worker stuck inside a component: a reload gives up after stall_ms naming it, and SIGTERM
 * stops the other workers (fini runs) and exits without it instead of hanging. */
Test(daemon, a_stuck_worker_fails_reloads_and_does_not_hang_the_stop)
{
        int a, b;
        two_cpus(&a, &b);
        if (a == b)
                cr_skip_test("needs two CPUs");
        char *out, *log, *text;
        cr_assert(asprintf(&out, "%s/slow.txt", dir) > 0);
        cr_assert(asprintf(&log, "%s/log.txt", dir) > 0);
        /* Every second run of `slow` spins for a minute. */
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s\" ]; stall_ms = 200;\n"
                           "          workers = ( { cpu = %d; }, { cpu = %d; } ); };\n"
                           "components: {\n"
                           "  slow = { class = \"test.slowtick\"; schedule = { every_us = 1000; "
                           "};\n"
                           "           settings = { path = \"%s\"; busy_us = 60000000; every = 2; "
                           "}; worker = 0; };\n"
                           "  p = { class = \"test.probe\"; settings = { path = \"%s/p.txt\"; }; "
                           "worker = 0; };\n"
                           "  tick = { class = \"core.tick\"; schedule = { every_us = 1000; }; "
                           "worker = 1; };\n"
                           "  log = { class = \"core.log\"; settings = { path = \"%s\"; }; "
                           "worker = 1; };\n"
                           "};\n"
                           "links = ( \"slow.out -> p.in\", \"tick.out -> log.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/schedkit", a, b,
                           out, dir, log) > 0);
        char *conf = tu_write(dir, "stuck.conf", text);
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(
            daemon_wait_notify(&d, "STATUS=STALLED: worker 0 stuck in component 'slow'", 10000),
            "%s", daemon_stderr(&d));
        char *st = daemon_reload(&d, 10000);
        cr_assert(st && strstr(st, "STATUS=reload failed (worker 0 is busy in component 'slow')"),
                  "%s", st ? st : daemon_notes(&d));
        free(st);
        int lines = count_lines(log);
        cr_assert(wait_lines(dir, log, lines + 10, 10000), "worker 1 stopped after the reload");

        int64_t t0 = now_ms();
        kill(d.pid, SIGTERM);
        int status = daemon_wait_exit(&d, 10000);
        cr_assert_neq(status, -1, "actord hangs on its stuck worker; stderr:\n%s",
                      daemon_stderr(&d));
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status 0x%x", status);
        /* stall_ms + 1 s of grace, and some slack for a loaded machine. */
        cr_assert_lt(now_ms() - t0, 5000);
        char want[128];
        snprintf(want, sizeof(want),
                 "worker 0 (CPU %d) did not stop: it is stuck in component 'slow'", a);
        cr_assert(wait_contains(dir, d.err_path, want, 1000), "%s", daemon_stderr(&d));
        /* Worker 1 stopped normally: its sink's fini wrote the closing line. */
        cr_assert(wait_contains(dir, log, "end messages=", 1000), "no fini on worker 1");
        daemon_cleanup(&d);
        free(conf);
        free(text);
        free(out);
        free(log);
}

/* A reader that lags behind a producer loses messages: the log says so per channel, naming
 * it, at once for the first losses. */
Test(daemon, losses_are_logged_per_channel)
{
        int a, b;
        two_cpus(&a, &b);
        if (a == b)
                cr_skip_test("needs two CPUs");
        char *text;
        /* src publishes on every iteration of worker 0; worker 1 spends 50 ms of every 100 in
         * `slow`, meanwhile p cannot read. */
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s\", \"%s\" ];\n"
                           "          workers = ( { cpu = %d; }, { cpu = %d; } ); };\n"
                           "components: {\n"
                           "  src = { class = \"test.bytes\"; schedule = \"loop\"; worker = 0; };\n"
                           "  p = { class = \"test.probe\"; settings = { path = \"%s/p.txt\"; }; "
                           "worker = 1; };\n"
                           "  slow = { class = \"test.slowtick\"; schedule = { every_us = 100000; "
                           "};\n"
                           "           settings = { path = \"%s/slow.txt\"; busy_us = 50000; "
                           "every = 1; }; worker = 1; };\n"
                           "  q = { class = \"test.probe\"; settings = { path = \"%s/q.txt\"; }; "
                           "worker = 1; };\n"
                           "};\n"
                           "links = ( { from = \"src.out\"; to = \"p.in\"; capacity = 2; },\n"
                           "          \"slow.out -> q.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/schedkit",
                           ACTORD_TEST_TESTPLUGIN_DIR "/testkit", a, b, dir, dir, dir) > 0);
        char *conf = tu_write(dir, "lossy.conf", text);
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(daemon_wait_notify(&d, "READY=1", 10000), "%s", daemon_stderr(&d));
        cr_assert(wait_contains(dir, d.err_path, "<4>channel src.out -> p.in: ", 10000), "%s",
                  daemon_stderr(&d));
        cr_assert(wait_contains(dir, d.err_path,
                                " messages lost: its reader lags (overwrite, capacity 2; ", 1000),
                  "%s", daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        cr_assert_null(strstr(err, "channel slow.out -> q.in"), "%s", err);
        free(err);
        kill(d.pid, SIGTERM);
        cr_assert_neq(daemon_wait_exit(&d, 10000), -1);
        daemon_cleanup(&d);
        free(conf);
        free(text);
}

struct drain {
        int fd;
        char *text;
        size_t len;
};

static void *drain_pipe(void *arg)
{
        struct drain *dr = arg;
        char buf[65536];
        ssize_t n;
        while ((n = read(dr->fd, buf, sizeof(buf))) > 0) {
                dr->text = realloc(dr->text, dr->len + (size_t)n + 1);
                memcpy(dr->text + dr->len, buf, (size_t)n);
                dr->len += (size_t)n;
                dr->text[dr->len] = 0;
        }
        return NULL;
}

/* An inotify descriptor that reports files of `path` being written (wait_modified()). */
static int watch_modified(const char *path)
{
        int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        cr_assert(in >= 0);
        cr_assert(inotify_add_watch(in, path, IN_MODIFY) >= 0);
        return in;
}

/* Waits until a file watched by `in` is written, or until `end` (now_ms()). */
static void wait_modified(int in, int64_t end)
{
        struct pollfd pf = {.fd = in, .events = POLLIN};
        if (poll(&pf, 1, (int)(end - now_ms())) == 1) {
                char buf[4096];
                while (read(in, buf, sizeof(buf)) > 0)
                        ;
        }
}

/* The "runs=N" a test.chatter wrote, or 0. */
static uint64_t chatter_runs(const char *path)
{
        char *text = tu_read(path);
        uint64_t runs = text && !strncmp(text, "runs=", 5) ? strtoull(text + 5, NULL, 10) : 0;
        free(text);
        return runs;
}

/* Nothing but the log writer waits for the log's reader: with stderr a pipe that nobody reads,
 * a component that logs on every run keeps running and the main thread keeps feeding the
 * watchdog; what did not fit is dropped, and the count logged once the reader is back. */
Test(daemon, a_stalled_log_reader_does_not_stall_the_workers)
{
        int p[2];
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        int size = fcntl(p[0], F_SETPIPE_SZ, 4096); /* the smallest: it fills at once */
        cr_assert(size > 0);
        char *runs, *sink, *text;
        cr_assert(asprintf(&runs, "%s/runs.txt", dir) > 0 &&
                  asprintf(&sink, "%s/sink.txt", dir) > 0);
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s\" ]; workers = ( { idle = "
                           "\"sleep\"; } ); };\n"
                           "components: {\n"
                           "  chat = { class = \"test.chatter\"; schedule = { every_us = 1000; };\n"
                           "           settings = { lines = 20; path = \"%s\"; }; };\n"
                           "  sink = { class = \"core.log\"; settings = { path = \"%s\"; every = "
                           "1000; }; };\n"
                           "};\n"
                           "links = ( \"chat.out -> sink.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/testkit", runs,
                           sink) > 0);
        char *conf = tu_write(dir, "chatter.conf", text);
        struct daemon d;
        char *sock;
        cr_assert(asprintf(&sock, "%s/ctl.sock", dir) > 0);
        const char *args[] = {"--config", conf, "--control-socket", sock, NULL};
        const char *env[] = {"WATCHDOG_USEC=300000", NULL}; /* a ping every 100 ms */
        daemon_start_err(&d, dir, args, env, p[1]);
        close(p[1]);
        cr_assert(daemon_wait_notify(&d, "READY=1", 10000), "no READY=1");

        /* Until the pipe is full, then for 200 more runs of the chatter, nobody reads it: its
         * worker must go on. Every run rewrites runs.txt, which is what wakes this loop. */
        int in = watch_modified(dir);
        int64_t end = now_ms() + 20000;
        uint64_t full_at = 0, now_runs = 0;
        size_t notes_at_full = 0;
        bool pinged = false;
        for (;;) {
                int queued = 0;
                cr_assert_eq(ioctl(p[0], FIONREAD, &queued), 0);
                now_runs = chatter_runs(runs);
                /* Full: no room for another line (the writer waits for room for all of it). */
                if (!full_at && queued > size - 512) {
                        full_at = now_runs;
                        pthread_mutex_lock(&d.lock);
                        notes_at_full = d.notes_len;
                        pthread_mutex_unlock(&d.lock);
                }
                if (full_at && !pinged) {
                        pthread_mutex_lock(&d.lock);
                        pinged = strstr(d.notes + notes_at_full, "WATCHDOG=1") != NULL;
                        pthread_mutex_unlock(&d.lock);
                }
                if ((full_at && now_runs >= full_at + 200 && pinged) || now_ms() > end)
                        break;
                wait_modified(in, end);
        }
        close(in);
        cr_assert(full_at, "the log pipe never filled (%" PRIu64 " runs)", now_runs);
        cr_assert(pinged, "no watchdog ping while the log's reader stalled");
        cr_assert(now_runs >= full_at + 200,
                  "the worker stopped with the log's reader: %" PRIu64 " runs when the pipe "
                  "filled, %" PRIu64 " 20 s later",
                  full_at, now_runs);

        /* The drops show in the metrics while the log cannot say so. */
        char *m = ctl_request(sock, "metrics\n", 8, false, 10000);
        cr_assert(m && strncmp(m, "ok\n", 3) == 0, "metrics: %s", m);
        const char *w0 = strstr(m, "\nactord_log_dropped_total{worker=\"0\"} ");
        cr_assert(w0, "no log drop count for worker 0: %s", m);
        unsigned long long dropped =
            strtoull(w0 + strlen("\nactord_log_dropped_total{worker=\"0\"} "), NULL, 10);
        cr_assert_gt(dropped, 0, "the worker dropped no log message while the reader stalled");
        cr_assert(strstr(m, "\nactord_log_dropped_total{worker=\"main\"} "), "%s", m);
        free(m);

        /* The main thread logs on: a reload (SIGHUP) while the reader still stalls. */
        char *st = daemon_reload(&d, 10000);
        cr_assert(st, "no READY=1 after a reload: the main thread waits for the log's reader");
        free(st);

        /* The reader comes back: the daemon stops cleanly and says what it dropped. */
        struct drain dr = {.fd = p[0]};
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, drain_pipe, &dr), 0);
        cr_assert_eq(kill(d.pid, SIGTERM), 0);
        int status = daemon_wait_exit(&d, 20000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
        pthread_join(t, NULL);
        cr_assert(dr.text && strstr(dr.text, "log messages of worker 0 dropped"),
                  "stderr, the end:\n%s",
                  dr.text ? dr.text + (dr.len > 4000 ? dr.len - 4000 : 0) : "");
        cr_assert(strstr(dr.text, "chat: run "), "stderr:\n%.4000s", dr.text);
        free(dr.text);
        close(p[0]);
        daemon_cleanup(&d);
        free(sock);
        free(conf);
        free(text);
        free(runs);
        free(sink);
}

/* core.log writes its file from a thread of its own: with the file a pipe that nobody reads,
 * its worker goes on (a periodic component beside it keeps running), the lines that do not fit
 * are dropped and said so, and the daemon still stops, saying the file's writer did not
 * finish. */
Test(daemon, a_stalled_file_of_core_log_does_not_stall_its_worker)
{
        char *fifo, *runs, *other, *text;
        cr_assert(asprintf(&fifo, "%s/fifo", dir) > 0 && asprintf(&runs, "%s/runs.txt", dir) > 0 &&
                  asprintf(&other, "%s/other.txt", dir) > 0);
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        int rd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* held, never read */
        cr_assert(rd >= 0);
        int size = fcntl(rd, F_SETPIPE_SZ, 4096);
        cr_assert(size > 0);
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s\" ]; workers = ( { idle = "
                           "\"sleep\"; } ); };\n"
                           "components: {\n"
                           "  fast = { class = \"test.bytes\"; schedule = { every_us = 20; }; };\n"
                           "  sink = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "  chat = { class = \"test.chatter\"; schedule = { every_us = 1000; };\n"
                           "           settings = { lines = 0; path = \"%s\"; }; };\n"
                           "  other = { class = \"core.log\"; settings = { path = \"%s\"; every = "
                           "1000; }; };\n"
                           "};\n"
                           "links = ( \"fast.out -> sink.in\", \"chat.out -> other.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/testkit", fifo,
                           runs, other) > 0);
        char *conf = tu_write(dir, "fifo.conf", text);
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(daemon_wait_notify(&d, "READY=1", 10000), "%s", daemon_stderr(&d));

        /* Until the file's writer is stuck, then for 200 more runs of the chatter on the same
         * worker. Every run rewrites runs.txt, which is what wakes this loop. Stuck: the sink
         * reports dropped lines (its ring filled behind the writer) with bytes in the pipe. Not
         * "the pipe holds nearly 4096 bytes": a write of up to PIPE_BUF bytes is all or nothing,
         * so the writer can wait with a chunk larger than the room left (seen: 3014 queued). */
        int in = watch_modified(dir);
        int64_t end = now_ms() + 20000;
        uint64_t full_at = 0, now_runs = 0;
        for (;;) {
                int queued = 0;
                cr_assert_eq(ioctl(rd, FIONREAD, &queued), 0);
                now_runs = chatter_runs(runs);
                if (!full_at && queued > 0) {
                        char *err = daemon_stderr(&d);
                        if (err && strstr(err, "lines dropped: the file is written slower"))
                                full_at = now_runs;
                        free(err);
                }
                if ((full_at && now_runs >= full_at + 200) || now_ms() > end)
                        break;
                wait_modified(in, end);
        }
        close(in);
        int queued_at_end = 0;
        ioctl(rd, FIONREAD, &queued_at_end);
        cr_assert(full_at,
                  "the file's writer never got stuck (%" PRIu64 " runs, %d of %d bytes queued); "
                  "stderr:\n%s",
                  now_runs, queued_at_end, size, daemon_stderr(&d));
        cr_assert(now_runs >= full_at + 200,
                  "the worker stopped with the file's reader: %" PRIu64 " runs when the pipe "
                  "filled, %" PRIu64 " 20 s later",
                  full_at, now_runs);
        cr_assert(
            wait_contains(dir, d.err_path, "lines dropped: the file is written slower", 10000),
            "%s", daemon_stderr(&d));

        cr_assert_eq(kill(d.pid, SIGTERM), 0);
        int status = daemon_wait_exit(&d, 20000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
        cr_assert(
            wait_contains(dir, d.err_path, "its file's writer did not finish within 250 ms", 1000),
            "%s", daemon_stderr(&d));
        close(rd);
        daemon_cleanup(&d);
        free(conf);
        free(text);
        free(fifo);
        free(runs);
        free(other);
}

/* core.log opens its file without waiting: a FIFO that nobody has open for reading is refused
 * at start (the open would otherwise wait for a reader), naming the component and the file. */
Test(daemon, core_log_refuses_a_fifo_without_a_reader)
{
        char *fifo, *text;
        cr_assert(asprintf(&fifo, "%s/fifo", dir) > 0);
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\" ]; workers = ( { idle = \"sleep\"; "
                           "} ); };\n"
                           "components: {\n"
                           "  t = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                           "  sink = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "};\n"
                           "links = ( \"t.out -> sink.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, fifo) > 0);
        char *conf = tu_write(dir, "nofiforeader.conf", text);
        const char *args[] = {"--config", conf, NULL};
        struct daemon d;
        daemon_start(&d, dir, args);
        int status = daemon_wait_exit(&d, 20000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status 0x%x", status);
        char *err = daemon_stderr(&d);
        char want[600];
        snprintf(
            want, sizeof(want),
            "component 'sink' (core.log) failed to start: cannot open '%s' for writing: ", fifo);
        cr_assert(strstr(err, want), "%s", err);
        free(err);
        daemon_cleanup(&d);
        free(conf);
        free(text);
        free(fifo);
}
