/* Restart policies, through the real daemon: a component whose run fails (or ends) is
 * restarted under its policy, with its back-off and its limit; past the limit it is given up
 * on and the rest runs on, or the daemon stops with an error (on_failure = "exit"). The test
 * class test.flaky logs each init and fini to a file, with the monotonic time. */
#include "daemonutil.h"

#include "actord-build.h"

#include <inttypes.h>
#include <sys/stat.h>

TU_TMPDIR_SUITE(supervision, 60);

/* The config: one worker, `components` (each a "name = { ... };" line) and `links`. */
static char *write_conf(const char *components, const char *links)
{
        int a, b;
        two_cpus(&a, &b);
        char *text;
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s\", \"%s\" ]; workers = ( { "
                           "cpu = %d; } ); };\n"
                           "components: {\n%s};\n"
                           "links = ( %s );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/testkit",
                           ACTORD_TEST_TESTPLUGIN_DIR "/schedkit", a, components, links) > 0);
        char *path = tu_write(dir, "supervision.conf", text);
        free(text);
        return path;
}

static char *path_in_dir(const char *name)
{
        char *p;
        cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

/* The inits and finis test.flaky logged: inits[i] is the time (µs) of init i + 1. */
struct flaky_log {
        int64_t inits[16];
        int n_inits;
        int n_finis;
};

static struct flaky_log read_flaky(const char *path)
{
        struct flaky_log l = {0};
        char *text = tu_read(path);
        cr_assert(text, "%s was not written", path);
        int expect = 1;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                int nth;
                long long t;
                if (sscanf(line, "init %d %lld", &nth, &t) == 2) {
                        cr_assert_eq(nth, expect, "inits in order: %s", line);
                        cr_assert_lt(l.n_inits, 16);
                        l.inits[l.n_inits++] = t;
                        expect++;
                } else if (sscanf(line, "fini %d", &nth) == 1) {
                        cr_assert_eq(nth, l.n_inits, "a fini follows its own init: %s", line);
                        l.n_finis++;
                } else {
                        cr_assert_fail("unexpected line in %s: %s", path, line);
                }
        }
        free(text);
        return l;
}

/* Starts actord on conf and waits for READY, then for a component to be given up on. */
static void start_until_given_up(struct daemon *d, const char *conf)
{
        const char *args[] = {"--config", conf, NULL};
        daemon_start(d, dir, args);
        cr_assert(daemon_wait_notify(d, "READY=1", 20000), "no READY: %s", daemon_notes(d));
        cr_assert(wait_contains(dir, d->err_path, "giving up on it", 20000), "never gave up");
}

static void expect_in(const char *text, const char *needle)
{
        cr_assert(strstr(text, needle), "expected \"%s\" in:\n%s", needle, text);
}

static void stop_cleanly(struct daemon *d, const char *expect_in_log)
{
        cr_assert_eq(kill(d->pid, SIGTERM), 0);
        int status = daemon_wait_exit(d, 20000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
        char *err = daemon_stderr(d);
        if (expect_in_log)
                expect_in(err, expect_in_log);
        free(err);
}

/* The component fails after three runs, three times restarted with a back-off of 20, 40 and
 * 80 ms, then given up on; its output channel is the same throughout, so the sink sees the 12
 * messages of its four lives with consecutive sequence numbers; the daemon runs on and says
 * so in its STATUS. */
static void restarts_until_the_limit(const char *schedule)
{
        char *flaky = path_in_dir("flaky.txt"), *out = path_in_dir("out.txt"), *comps;
        cr_assert(asprintf(&comps,
                           "  flaky = { class = \"test.flaky\"; schedule = %s;\n"
                           "            settings = { path = \"%s\"; runs = 3; };\n"
                           "            max_restarts = 3; restart_window_s = 60; backoff_ms = 20; "
                           "};\n"
                           "  log = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n",
                           schedule, flaky, out) > 0);
        char *conf = write_conf(comps, "\"flaky.out -> log.in\"");
        struct daemon d;
        start_until_given_up(&d, conf);

        char *err = daemon_stderr(&d);
        expect_in(err, "component 'flaky' (test.flaky) failed: failing after 3 runs, as asked; "
                       "restarting it in 20 ms (restart 1 of at most 3 within 60 s)");
        expect_in(err, "restarting it in 40 ms (restart 2 of at most 3 within 60 s)");
        expect_in(err, "restarting it in 80 ms (restart 3 of at most 3 within 60 s)");
        expect_in(err, "component 'flaky' (test.flaky) restarted (3 restarts so far)");
        expect_in(err, "component 'flaky' (test.flaky) failed: failing after 3 runs, as asked; "
                       "giving up on it: 3 restarts within 60 s already, the most max_restarts "
                       "allows");
        cr_assert(!strstr(err, "restart 4 of"), "%s", err);
        free(err);

        struct flaky_log l = read_flaky(flaky);
        cr_assert_eq(l.n_inits, 4, "the first start and three restarts");
        cr_assert_eq(l.n_finis, 4, "every life ended with fini");
        /* Lower bounds only: a slow machine makes the gaps longer, never shorter. */
        for (int i = 1; i < 4; i++)
                cr_assert_geq(l.inits[i] - l.inits[i - 1], 20000 << (i - 1),
                              "restart %d came %" PRId64 " us after the previous start", i,
                              l.inits[i] - l.inits[i - 1]);

        cr_assert(wait_lines(dir, out, 12, 20000), "the sink got %d of 12 messages",
                  count_lines(out));
        char *o = tu_read(out);
        char *line = o;
        for (int i = 0; i < 12; i++) {
                char want[96];
                snprintf(want, sizeof(want),
                         "chan_seq=%d lost_before=0 bytes=8 data=%02x00000000000000\n", i,
                         i / 3 + 1);
                cr_assert(!strncmp(line, want, strlen(want)), "message %d: expected %s in:\n%s", i,
                          want, o);
                line += strlen(want);
        }
        free(o);

        cr_assert(daemon_wait_notify(&d, "; 1 failed (see the log)", 5000),
                  "STATUS should count the failed component: %s", daemon_notes(&d));
        stop_cleanly(&d, "component 'flaky': ");
        err = daemon_stderr(&d);
        expect_in(err, "3 restarts\n");
        free(err);
        daemon_cleanup(&d);
        free(conf);
        free(comps);
        free(out);
        free(flaky);
}

Test(supervision, a_periodic_component_restarts_with_back_off_until_its_limit)
{
        restarts_until_the_limit("{ every_us = 1000; }");
}

Test(supervision, a_loop_component_restarts_with_back_off_until_its_limit)
{
        restarts_until_the_limit("\"loop\"");
}

/* Past its limit, a component with on_failure = "exit" stops the daemon with an error (for
 * systemd's Restart=on-failure); the others are stopped cleanly (the sink's fini runs). */
Test(supervision, on_failure_exit_stops_the_daemon_with_an_error)
{
        char *flaky = path_in_dir("flaky.txt"), *out = path_in_dir("out.txt"), *comps;
        cr_assert(asprintf(&comps,
                           "  flaky = { class = \"test.flaky\"; schedule = { every_us = 1000; };\n"
                           "            settings = { path = \"%s\"; };\n"
                           "            max_restarts = 1; backoff_ms = 0; on_failure = \"exit\"; "
                           "};\n"
                           "  log = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n",
                           flaky, out) > 0);
        char *conf = write_conf(comps, "\"flaky.out -> log.in\"");
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        int status = daemon_wait_exit(&d, 20000);
        char *err = daemon_stderr(&d);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status 0x%x:\n%s", status, err);
        expect_in(err, "giving up on it: 1 restarts within 10 s already, the most max_restarts "
                       "allows; on_failure = \"exit\": the daemon stops");
        expect_in(err, "component 'flaky' failed for good and its on_failure is \"exit\": "
                       "stopping the daemon with an error");
        free(err);
        struct flaky_log l = read_flaky(flaky);
        cr_assert_eq(l.n_inits, 2);
        cr_assert_eq(l.n_finis, 2);
        char *o = tu_read(out);
        cr_assert(o && strstr(o, "end messages=2 lost=0"), "the sink was finalised: %s", o);
        free(o);
        daemon_cleanup(&d);
        free(conf);
        free(comps);
        free(out);
        free(flaky);
}

/* DONE restarts a permanent component only; an error stops a `never` one at once. */
Test(supervision, permanent_restarts_after_done_transient_and_never_do_not)
{
        char *fp = path_in_dir("permanent.txt"), *ft = path_in_dir("transient.txt"),
             *fn = path_in_dir("never.txt"), *comps;
        cr_assert(
            asprintf(&comps,
                     "  perm = { class = \"test.flaky\"; schedule = { every_us = 1000; }; settings "
                     "= { path = \"%s\"; done = "
                     "true; };\n"
                     "           restart = \"permanent\"; max_restarts = 2; backoff_ms = 0; "
                     "};\n"
                     "  trans = { class = \"test.flaky\"; schedule = { every_us = 1000; }; "
                     "settings = { path = \"%s\"; done = "
                     "true; }; };\n"
                     "  nev = { class = \"test.flaky\"; schedule = { every_us = 1000; }; settings "
                     "= { path = \"%s\"; };\n"
                     "          restart = \"never\"; };\n"
                     "  l1 = { class = \"core.log\"; settings = { path = \"/dev/null\"; }; };\n"
                     "  l2 = { class = \"core.log\"; settings = { path = \"/dev/null\"; }; };\n"
                     "  l3 = { class = \"core.log\"; settings = { path = \"/dev/null\"; }; };\n",
                     fp, ft, fn) > 0);
        char *conf = write_conf(comps, "\"perm.out -> l1.in\", \"trans.out -> l2.in\", "
                                       "\"nev.out -> l3.in\"");
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(daemon_wait_notify(&d, "READY=1", 20000), "no READY: %s", daemon_notes(&d));
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'perm' finished (DONE) after 1 run; "
                                "giving up on it: 2 restarts within 10 s already",
                                20000),
                  "perm was never given up on");
        cr_assert(wait_contains(dir, d.err_path, "component 'nev' (test.flaky) failed", 20000));
        cr_assert(wait_contains(dir, d.err_path, "component 'trans' finished", 20000));
        char *err = daemon_stderr(&d);
        expect_in(err, "component 'perm' finished (DONE) after 1 run; restart = \"permanent\": "
                       "restarting it in 0 ms (restart 1 of at most 2 within 10 s)");
        expect_in(err, "component 'trans' finished (DONE) after 1 run; stopping it\n");
        expect_in(err, "component 'nev' (test.flaky) failed: failing after 1 runs, as asked; "
                       "stopping it (restart = \"never\")\n");
        free(err);
        struct flaky_log l = read_flaky(fp);
        cr_assert_eq(l.n_inits, 3);
        cr_assert_eq(l.n_finis, 3);
        l = read_flaky(ft);
        cr_assert_eq(l.n_inits, 1);
        cr_assert_eq(l.n_finis, 1);
        l = read_flaky(fn);
        cr_assert_eq(l.n_inits, 1);
        cr_assert_eq(l.n_finis, 1);
        cr_assert(daemon_wait_notify(&d, "; 2 failed (see the log)", 5000),
                  "perm and nev failed, trans finished: %s", daemon_notes(&d));
        stop_cleanly(&d, NULL);
        daemon_cleanup(&d);
        free(conf);
        free(comps);
        free(fp);
        free(ft);
        free(fn);
}

/* A restart whose init fails counts as a failure: it is retried, up to the limit. */
Test(supervision, a_restart_whose_init_fails_is_retried_up_to_the_limit)
{
        char *flaky = path_in_dir("flaky.txt"), *comps;
        cr_assert(asprintf(&comps,
                           "  flaky = { class = \"test.flaky\"; schedule = { every_us = 1000; };\n"
                           "            settings = { path = \"%s\"; init_fails_from = 2; };\n"
                           "            max_restarts = 2; backoff_ms = 10; };\n"
                           "  log = { class = \"core.log\"; settings = { path = \"/dev/null\"; }; "
                           "};\n",
                           flaky) > 0);
        char *conf = write_conf(comps, "\"flaky.out -> log.in\"");
        struct daemon d;
        start_until_given_up(&d, conf);
        char *err = daemon_stderr(&d);
        expect_in(err, "failed: failing after 1 runs, as asked; restarting it in 10 ms (restart 1");
        expect_in(err, "failed: init failed: init fails from init 2 on, as asked; restarting it "
                       "in 20 ms (restart 2");
        expect_in(err, "failed: init failed: init fails from init 2 on, as asked; giving up on it");
        cr_assert(!strstr(err, "restarted ("), "no restart succeeded:\n%s", err);
        free(err);
        struct flaky_log l = read_flaky(flaky);
        cr_assert_eq(l.n_inits, 3);
        cr_assert_eq(l.n_finis, 1, "only the first init succeeded, so only it has a fini");
        stop_cleanly(&d, NULL);
        daemon_cleanup(&d);
        free(conf);
        free(comps);
        free(flaky);
}

/* A reload gives a component that failed another chance at once, with a count of its own,
 * even one waiting for a long back-off; the components beside it keep running untouched. */
Test(supervision, a_reload_restarts_a_component_waiting_for_its_back_off)
{
        char *flaky = path_in_dir("flaky.txt"), *comps;
        cr_assert(asprintf(&comps,
                           "  flaky = { class = \"test.flaky\"; schedule = { every_us = 1000; };\n"
                           "            settings = { path = \"%s\"; }; backoff_ms = 3600000; };\n"
                           "  log = { class = \"core.log\"; settings = { path = \"/dev/null\"; }; "
                           "};\n",
                           flaky) > 0);
        char *conf = write_conf(comps, "\"flaky.out -> log.in\"");
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(daemon_wait_notify(&d, "READY=1", 20000), "no READY: %s", daemon_notes(&d));
        cr_assert(wait_contains(dir, d.err_path, "restarting it in 3600000 ms (restart 1", 20000));
        char *ready = daemon_reload(&d, 20000);
        cr_assert(ready, "the reload did not end: %s", daemon_notes(&d));
        free(ready);
        cr_assert(wait_contains(dir, flaky, "init 2 ", 20000), "the reload did not start it");
        /* The new one fails too, and starts a count of its own. */
        cr_assert(
            wait_count(dir, d.err_path, "restarting it in 3600000 ms (restart 1 of", 2, 20000),
            "the second life did not end with its own first restart");
        char *err = daemon_stderr(&d);
        cr_assert(!strstr(err, "(restart 2 of"), "%s", err);
        expect_in(err, "component 'flaky' stopped: it had failed; the reload starts it again");
        free(err);
        stop_cleanly(&d, NULL);
        daemon_cleanup(&d);
        free(conf);
        free(comps);
        free(flaky);
}

/* An on_message component restarts too, and runs again on the messages that come. */
Test(supervision, an_on_message_component_restarts_and_runs_on_new_messages)
{
        char *flaky = path_in_dir("flaky.txt"), *comps;
        cr_assert(asprintf(&comps,
                           "  src = { class = \"test.bytes\"; schedule = { every_us = 1000; }; };\n"
                           "  sink = { class = \"test.flakysink\"; settings = { path = \"%s\"; "
                           "runs = 5; };\n"
                           "           max_restarts = 2; backoff_ms = 10; };\n",
                           flaky) > 0);
        char *conf = write_conf(comps, "\"src.out -> sink.in\"");
        struct daemon d;
        start_until_given_up(&d, conf);
        char *err = daemon_stderr(&d);
        expect_in(err, "component 'sink' (test.flakysink) failed: failing after 5 runs, as asked; "
                       "restarting it in 10 ms (restart 1 of at most 2 within 10 s)");
        expect_in(err, "component 'sink' (test.flakysink) restarted (2 restarts so far)");
        expect_in(err, "giving up on it: 2 restarts within 10 s already");
        free(err);
        struct flaky_log l = read_flaky(flaky);
        cr_assert_eq(l.n_inits, 3);
        cr_assert_eq(l.n_finis, 3, "each life ran its five runs and ended");
        stop_cleanly(&d, NULL);
        daemon_cleanup(&d);
        free(conf);
        free(comps);
        free(flaky);
}

/* An on_event component that fails is restarted like any other: its new life registers its
 * fd again (init) and runs on the data that comes after. */
Test(supervision, an_on_event_component_restarts_and_runs_on_new_events)
{
        char *out = path_in_dir("event.txt"), *fifo = path_in_dir("fifo"),
             *trigger = path_in_dir("trigger"), *comps;
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        cr_assert_eq(mkfifo(trigger, 0600), 0);
        cr_assert(asprintf(&comps,
                           "  ev = { class = \"test.event\"; settings = { path = \"%s\"; fifo = "
                           "\"%s\"; trigger = \"%s\"; fail_on = \"boom\"; }; backoff_ms = 0; "
                           "};\n"
                           "  log = { class = \"core.log\"; settings = { path = \"/dev/null\"; }; "
                           "};\n",
                           out, fifo, trigger) > 0);
        char *conf = write_conf(comps, "\"ev.out -> log.in\"");
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(daemon_wait_notify(&d, "READY=1", 20000), "no READY: %s", daemon_notes(&d));

        int fd = open(fifo, O_WRONLY | O_CLOEXEC);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, "boom\n", 5), 5);
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'ev' (test.event) failed: read 'boom' from the FIFO, "
                                "as asked; restarting it in 0 ms (restart 1 of at most 5",
                                20000),
                  "no failure and restart logged");
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'ev' (test.event) restarted (1 restart "
                                "so far)",
                                20000));
        /* The new life sees only what comes after: its fd is watched again. */
        cr_assert_eq(write(fd, "after\n", 6), 6);
        close(fd);
        cr_assert(wait_contains(dir, out, "fifo=after\n", 20000),
                  "the restarted component did not run on new FIFO data: %s", tu_read(out));
        stop_cleanly(&d, "component 'ev': ");
        daemon_cleanup(&d);
        free(conf);
        free(comps);
        free(out);
        free(fifo);
        free(trigger);
}
