/* Live reload (SIGHUP) of the real daemon: unchanged components keep running with their state
 * and their queued messages, removed ones stop (fini), changed ones restart, new ones start,
 * plugins are added and replaced while running, and what cannot be applied leaves everything
 * as it was. Continuity is checked with the channels' sequence numbers, message by message. */
#include "daemonutil.h"

#include <inttypes.h>
#include <sys/stat.h>

#include "actord-build.h"

TU_TMPDIR_SUITE(reload, 120);

/* Copies a plugin into the test's plugin folder as a new file (a temporary name, then a
 * rename), as install(1) does: a loaded plugin is never written over. */
static void install_plugin(const char *plugins, const char *from, const char *name)
{
        char *tmp, *to;
        cr_assert(asprintf(&tmp, "%s/.%s.tmp", plugins, name) > 0);
        cr_assert(asprintf(&to, "%s/%s", plugins, name) > 0);
        char *cmd;
        cr_assert(asprintf(&cmd, "cp '%s' '%s' && chmod 0644 '%s'", from, tmp, tmp) > 0);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
        cr_assert_eq(rename(tmp, to), 0);
        free(cmd);
        free(tmp);
        free(to);
}

static char *plugin_folder(void)
{
        char *plugins;
        cr_assert(asprintf(&plugins, "%s/plugins", dir) > 0);
        cr_assert_eq(mkdir(plugins, 0755), 0);
        install_plugin(plugins, ACTORD_TEST_PLUGIN_DIR "/core.so", "core.so");
        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/testkit/testkit.so", "testkit.so");
        return plugins;
}

/* Writes pipeline.conf: the actord section with the plugin folder and workers, then body. */
static char *write_conf_idle(const char *plugins, const char *idle, const char *body)
{
        char workers[160], *text;
        test_workers(idle, workers, sizeof(workers));
        cr_assert(asprintf(&text, "actord: { plugin_dirs = [ \"%s\" ]; workers = ( %s ); };\n%s",
                           plugins, workers, body) > 0);
        char *path = tu_write(dir, "pipeline.conf", text);
        free(text);
        return path;
}

static char *out_path(const char *name)
{
        char *p;
        cr_assert(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

static char *write_conf(const char *plugins, const char *body)
{
        return write_conf_idle(plugins, "adaptive", body);
}

/* What a test.version sink wrote (tests/plugins/version.c): "vN start", then one line per
 * message, then "vN end" when stopped. */
struct vfile {
        int starts, ends;
        int n;           /* message lines */
        int version;     /* of the last message line */
        uint64_t first;  /* chan_seq of the first message line */
        uint64_t last;   /* chan_seq of the last */
        uint64_t value0; /* value of the first message line */
};

/* Reads a test.version file and checks that its messages are gapless: consecutive chan_seq,
 * no loss reported. value_follows: the payload counts along with chan_seq (the producer ran
 * throughout with its state). */
static struct vfile read_vfile(const char *path, bool value_follows)
{
        struct vfile v = {0};
        char *text = tu_read(path);
        cr_assert_not_null(text, "%s missing", path);
        char *save = NULL;
        uint64_t prev_value = 0;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                int ver;
                uint64_t seq, lost, value;
                char word[16];
                if (sscanf(line, "v%d chan_seq=%" SCNu64 " lost_before=%" SCNu64 " value=%" SCNu64,
                           &ver, &seq, &lost, &value) == 4) {
                        cr_assert_eq(lost, 0, "%s: loss reported: %s", path, line);
                        if (v.n == 0) {
                                v.first = seq;
                                v.value0 = value;
                        } else {
                                cr_assert_eq(seq, v.last + 1, "%s: gap before: %s", path, line);
                                if (value_follows)
                                        cr_assert_eq(value, prev_value + 1,
                                                     "%s: the producer restarted: %s", path, line);
                        }
                        v.last = seq;
                        v.version = ver;
                        prev_value = value;
                        v.n++;
                } else if (sscanf(line, "v%d %15s", &ver, word) == 2 && !strcmp(word, "start")) {
                        v.starts++;
                } else if (sscanf(line, "v%d %15s", &ver, word) == 2 && !strcmp(word, "end")) {
                        v.ends++;
                } else {
                        cr_assert_fail("%s: unexpected line '%s'", path, line);
                }
        }
        free(text);
        return v;
}

/* Waits until a test.version file has `more` message lines past what it has now. */
static void wait_more_lines(const char *path, int more)
{
        int now = count_lines(path);
        cr_assert(wait_lines(dir, path, now + more, 20000), "%s: stuck at %d lines", path,
                  count_lines(path));
}

/* Starts actord on `conf` and waits for READY=1. */
static void start_ready(struct daemon *d, const char *conf)
{
        const char *args[] = {"--config", conf, NULL};
        daemon_start(d, dir, args);
        cr_assert(daemon_wait_notify(d, "READY=1", 10000), "%s", daemon_stderr(d));
}

static void reload_expect(struct daemon *d, const char *want)
{
        char *st = daemon_reload(d, 20000);
        cr_assert(st && strstr(st, want), "want '%s', got '%s'; stderr:\n%s", want,
                  st ? st : "(no READY after RELOADING)", daemon_stderr(d));
        free(st);
}

static void stop_daemon(struct daemon *d)
{
        kill(d->pid, SIGTERM);
        int status = daemon_wait_exit(d, 20000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x; stderr:\n%s", status,
                  daemon_stderr(d));
}

/* other -> osink, when there: drop_new (src -> sink is reject; the second test's overwrite). */
#define OTHER_LINK ", { from = \"other.out\"; to = \"osink.in\"; overflow = \"drop_new\"; }"

/* The first test's configuration: src -> sink, plus more components and links. */
static char *first_body(const char *sink_path, const char *more, const char *more_links)
{
        char *body;
        cr_assert(asprintf(&body,
                           "components: {\n"
                           "  src = { class = \"test.bytes\"; schedule = { every_us = 200; }; "
                           "worker = 0; };\n"
                           "  sink = { class = \"test.version\"; settings = { path = \"%s\"; "
                           "}; };\n"
                           "%s};\n"
                           "links = ( { from = \"src.out\"; to = \"sink.in\"; overflow = "
                           "\"reject\"; }%s );\n",
                           sink_path, more, more_links) > 0);
        return body;
}

static void other_block(int every_us, const char *path, char *buf, size_t len)
{
        snprintf(buf, len,
                 "  other = { class = \"test.bytes\"; schedule = { every_us = %d; }; };\n"
                 "  osink = { class = \"test.version\"; settings = { path = \"%s\"; }; };\n",
                 every_us, path);
}

/* The second test's: src -> log (core.log), plus more. */
/* Components s2 (test.bytes) and ver (test.version, writing to `path`), for second_body(). */
static void version_components(char *buf, size_t len, const char *path)
{
        snprintf(buf, len,
                 "  s2 = { class = \"test.bytes\"; schedule = { every_us = 300; }; };\n"
                 "  ver = { class = \"test.version\"; settings = { path = \"%s\"; }; };\n",
                 path);
}

static char *second_body(const char *log_path, const char *more, const char *more_links)
{
        char *body;
        cr_assert(asprintf(&body,
                           "components: {\n"
                           "  src = { class = \"test.bytes\"; schedule = { every_us = 200; }; };\n"
                           "  log = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "%s};\n"
                           "links = ( \"src.out -> log.in\"%s );\n",
                           log_path, more, more_links) > 0);
        return body;
}

/* Three reloads while messages flow: a changed producer, components removed and added, a
 * changed consumer. The channels between unchanged components lose nothing, a kept component
 * keeps its state, and a restarted one takes over its channel where its predecessor stopped. */
Test(reload, components_added_removed_changed_while_channels_keep_every_message)
{
        char *plugins = plugin_folder();
        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/version1/version.so", "version.so");
        char *a = out_path("a.txt"), *a2 = out_path("a2.txt"), *b = out_path("b.txt"),
             *c = out_path("c.txt");
        char other1[512], other2[512], news[512];
        other_block(300, b, other1, sizeof(other1));
        other_block(400, b, other2, sizeof(other2));
        snprintf(news, sizeof(news),
                 "  n1 = { class = \"test.bytes\"; schedule = { every_us = 300; }; };\n"
                 "  n2 = { class = \"test.version\"; settings = { path = \"%s\"; }; };\n",
                 c);
        char *body = first_body(a, other1, OTHER_LINK);
        char *conf = write_conf(plugins, body);
        free(body);

        struct daemon d;
        start_ready(&d, conf);
        wait_more_lines(a, 50);
        wait_more_lines(b, 50);

        /* 1: the producer `other` changes; its consumer and their channel stay. */
        body = first_body(a, other2, OTHER_LINK);
        free(write_conf(plugins, body));
        free(body);
        reload_expect(&d, "STATUS=reloaded: 3 kept, 1 restarted, 0 started, 0 stopped");
        wait_more_lines(a, 50);
        wait_more_lines(b, 50);

        /* 2: `other` and `osink` go, `n1` -> `n2` arrive. */
        body = first_body(a, news, ", \"n1.out -> n2.in\"");
        free(write_conf(plugins, body));
        free(body);
        reload_expect(&d, "STATUS=reloaded: 2 kept, 0 restarted, 2 started, 2 stopped");
        cr_assert(wait_contains(dir, b, "v1 end\n", 10000), "osink was not finalised");
        wait_more_lines(c, 50);
        wait_more_lines(a, 50);

        /* 3: the consumer `sink` changes (another file); the producer and the channel stay. */
        body = first_body(a2, news, ", \"n1.out -> n2.in\"");
        free(write_conf(plugins, body));
        free(body);
        reload_expect(&d, "STATUS=reloaded: 3 kept, 1 restarted, 0 started, 0 stopped");
        wait_more_lines(a2, 50);
        stop_daemon(&d);

        /* src ran throughout (its counter follows the channel's sequence) and `sink` saw every
         * message, the second instance going on where the first stopped. */
        struct vfile va = read_vfile(a, true), va2 = read_vfile(a2, true);
        cr_assert_eq(va.first, 0);
        cr_assert_eq(va.starts, 1);
        cr_assert_eq(va.ends, 1);
        cr_assert_eq(va2.first, va.last + 1, "a2 starts at %" PRIu64 ", a ended at %" PRIu64,
                     va2.first, va.last);
        cr_assert_eq(va.value0, 0);
        /* osink kept its channel across the restart of its producer: no gap, but the new
         * producer's counter started again. */
        struct vfile vb = read_vfile(b, false);
        cr_assert_eq(vb.starts, 1, "osink was restarted");
        cr_assert_eq(vb.ends, 1);
        struct vfile vc = read_vfile(c, true);
        cr_assert_eq(vc.first, 0);
        cr_assert_eq(vc.value0, 0);

        char *err = daemon_stderr(&d);
        cr_assert(strstr(err, "component 'other' stopped: changed in the configuration"), "%s",
                  err);
        cr_assert(strstr(err, "component 'osink' stopped: no longer in the configuration"), "%s",
                  err);
        cr_assert(strstr(err, "component 'n2' (test.version, on_message) on worker"), "%s", err);
        free(err);
        daemon_cleanup(&d);
        free(conf);
        free(a);
        free(a2);
        free(b);
        free(c);
        free(plugins);
}

/* A plugin dropped into the folder is loaded by a reload; replaced by a new file, it is loaded
 * again and its components restart on the new code, taking over their channels; rewritten in
 * place, it is refused and everything keeps running. */
Test(reload, plugin_added_then_replaced_while_running)
{
        char *plugins = plugin_folder();
        char *v = out_path("v.txt");
        char *l = out_path("l.txt");
        char *body = second_body(l, "", "");
        char *conf = write_conf(plugins, body);
        free(body);
        struct daemon d;
        start_ready(&d, conf);
        cr_assert(wait_lines(dir, l, 20, 10000));

        /* A new plugin and a component of its class. */
        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/version1/version.so", "version.so");
        char more[512];
        version_components(more, sizeof(more), v);
        body = second_body(l, more, ", \"s2.out -> ver.in\"");
        free(write_conf(plugins, body));
        free(body);
        reload_expect(&d, "STATUS=reloaded: 2 kept, 0 restarted, 2 started, 0 stopped");
        wait_more_lines(v, 50);

        /* Version 2 replaces it: same file name, new file. */
        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/version2/version.so", "version.so");
        reload_expect(&d, "STATUS=reloaded: 3 kept, 1 restarted, 0 started, 0 stopped");
        cr_assert(wait_contains(dir, v, "v2 start\n", 10000));
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'ver' stopped: its plugin was replaced; it starts "
                                "again on the new code",
                                5000),
                  "%s", daemon_stderr(&d));
        wait_more_lines(v, 50);

        /* Rewritten in place (here: only its time stamp): refused, all keeps running. */
        char *so;
        cr_assert(asprintf(&so, "%s/version.so", plugins) > 0);
        struct timespec times[2] = {{.tv_nsec = UTIME_NOW}, {.tv_sec = 1000000000}};
        cr_assert_eq(utimensat(AT_FDCWD, so, times, 0), 0);
        reload_expect(&d, "STATUS=reload failed (");
        char want[600];
        snprintf(want, sizeof(want), "%s: plugin file was rewritten in place while loaded", so);
        cr_assert(wait_contains(dir, d.err_path, want, 5000), "%s", daemon_stderr(&d));
        wait_more_lines(v, 50);
        stop_daemon(&d);

        /* ver: v1 then v2 on one channel, every message once; s2 kept its counter. */
        struct vfile vv = read_vfile(v, true);
        cr_assert_eq(vv.starts, 2);
        cr_assert_eq(vv.ends, 2);
        cr_assert_eq(vv.first, 0);
        cr_assert_eq(vv.version, 2);
        char *text = tu_read(v);
        char *v1end = strstr(text, "v1 end\n"), *v2start = strstr(text, "v2 start\n");
        cr_assert(v1end && v2start && v1end < v2start, "%s", text);
        free(text);
        /* log (core.log: "chan_seq=N lost_before=0 ...") ran throughout without a gap. */
        text = tu_read(l);
        uint64_t expect = 0;
        for (char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                uint64_t seq, lost;
                if (sscanf(p, "chan_seq=%" SCNu64 " lost_before=%" SCNu64, &seq, &lost) != 2)
                        break; /* the end line */
                cr_assert_eq(seq, expect, "log: gap at %" PRIu64, expect);
                cr_assert_eq(lost, 0);
                expect++;
        }
        cr_assert_gt(expect, 150);
        free(text);
        daemon_cleanup(&d);
        free(so);
        free(conf);
        free(v);
        free(l);
        free(plugins);
}

/* A replacement the loader cannot load (here: it needs a symbol nothing defines) is refused
 * with the loader's reason, naming the plugin's file rather than the descriptor it was opened
 * through, and the component keeps running on the code it had. */
Test(reload, unloadable_replacement_is_refused_naming_the_file)
{
        char *plugins = plugin_folder();
        char *v = out_path("v.txt");
        char *l = out_path("l.txt");
        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/version1/version.so", "version.so");
        char more[512];
        version_components(more, sizeof(more), v);
        char *body = second_body(l, more, ", \"s2.out -> ver.in\"");
        char *conf = write_conf(plugins, body);
        free(body);
        struct daemon d;
        start_ready(&d, conf);
        wait_more_lines(v, 20);

        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/version3/version.so", "version.so");
        reload_expect(&d, "STATUS=reload failed (");
        char *so;
        cr_assert(asprintf(&so, "%s/version.so", plugins) > 0);
        char want[1200];
        snprintf(want, sizeof(want),
                 "%s: cannot load plugin: %s: undefined symbol: actord_test_nowhere_defined", so,
                 so);
        cr_assert(wait_contains(dir, d.err_path, want, 5000), "%s", daemon_stderr(&d));
        char *err = daemon_stderr(&d);
        cr_assert_null(strstr(err, "/proc/self/fd"), "%s", err);
        free(err);
        wait_more_lines(v, 50);
        stop_daemon(&d);

        struct vfile vv = read_vfile(v, true);
        cr_assert_eq(vv.starts, 1, "v1 ran throughout");
        cr_assert_eq(vv.version, 1);
        daemon_cleanup(&d);
        free(so);
        free(conf);
        free(v);
        free(l);
        free(plugins);
}

/* Workers are fixed while actord runs: a file that changes them is refused, with the reason,
 * and the pipeline goes on. */
Test(reload, changing_the_workers_is_refused_and_the_pipeline_goes_on)
{
        char *plugins = plugin_folder();
        char *l = out_path("l.txt");
        char *body = second_body(l, "", "");
        char *conf = write_conf(plugins, body);
        free(body);
        struct daemon d;
        start_ready(&d, conf);
        cr_assert(wait_lines(dir, l, 20, 10000));

        char *text = tu_read(conf);
        char *idle = strstr(text, "\"adaptive\"");
        cr_assert_not_null(idle);
        memcpy(idle, "\"spin\"    ", 10);
        free(tu_write(dir, "pipeline.conf", text));
        free(text);
        reload_expect(&d, "STATUS=reload failed (1 error in ");
        cr_assert(wait_contains(dir, d.err_path, "changing the workers needs a restart", 5000),
                  "%s", daemon_stderr(&d));
        int n = count_lines(l);
        cr_assert(wait_lines(dir, l, n + 20, 10000), "the pipeline stopped");
        stop_daemon(&d);
        daemon_cleanup(&d);
        free(conf);
        free(l);
        free(plugins);
}

/* Reload after reload, each restarting one producer whose consumer is kept: every reload
 * pauses both workers (asleep, or spinning with components in their poll sets); the kept pair
 * src -> sink loses nothing. */
static void twenty_reloads(const char *idle)
{
        char *plugins = plugin_folder();
        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/version1/version.so", "version.so");
        char *a = out_path("a.txt"), *b = out_path("b.txt");
        char other[512];
        other_block(300, b, other, sizeof(other));
        char *body = first_body(a, other, OTHER_LINK);
        char *conf = write_conf_idle(plugins, idle, body);
        free(body);
        struct daemon d;
        start_ready(&d, conf);
        wait_more_lines(a, 20);
        for (int i = 0; i < 20; i++) {
                other_block(300 + 10 * (i % 2 + 1), b, other, sizeof(other));
                body = first_body(a, other, OTHER_LINK);
                free(write_conf_idle(plugins, idle, body));
                free(body);
                reload_expect(&d, "STATUS=reloaded: 3 kept, 1 restarted, 0 started, 0 stopped");
                wait_more_lines(a, 5);
        }
        stop_daemon(&d);
        struct vfile va = read_vfile(a, true);
        cr_assert_eq(va.starts, 1);
        cr_assert_eq(va.first, 0);
        cr_assert_gt(va.n, 100);
        struct vfile vb = read_vfile(b, false);
        cr_assert_eq(vb.starts, 1);
        daemon_cleanup(&d);
        free(conf);
        free(a);
        free(b);
        free(plugins);
}

/* A reload adds `ver` (test.version, with `policy`: its restart keys) fed by s2 through a
 * `reject` link (what s2 sends while ver is down waits for it, however long that is); its
 * output folder does not exist yet, so its init fails. Then `then` makes the folder appear
 * and gets ver running; ver must read first what waited for it. */
static void failing_to_start(const char *policy,
                             void (*then)(struct daemon *d, const char *sub, const char *l))
{
        char *plugins = plugin_folder();
        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/version1/version.so", "version.so");
        char *l = out_path("l.txt"), *sub = out_path("sub"), *v = out_path("sub/v.txt");
        char *body = second_body(l, "", "");
        char *conf = write_conf(plugins, body);
        free(body);
        struct daemon d;
        start_ready(&d, conf);
        cr_assert(wait_lines(dir, l, 20, 10000));

        char more[512];
        snprintf(more, sizeof(more),
                 "  s2 = { class = \"test.bytes\"; schedule = { every_us = 300; }; };\n"
                 "  ver = { class = \"test.version\"; settings = { path = \"%s\"; }; %s };\n",
                 v, policy);
        body = second_body(l, more,
                           ", { from = \"s2.out\"; to = \"ver.in\"; overflow = \"reject\"; }");
        free(write_conf(plugins, body));
        free(body);
        reload_expect(&d, "STATUS=reloaded: 2 kept, 0 restarted, 2 started, 0 stopped (some "
                          "failed to start)");
        cr_assert(wait_contains(dir, d.err_path,
                                "component 'ver' (test.version) failed: init failed: cannot open",
                                5000),
                  "%s", daemon_stderr(&d));
        then(&d, sub, l);
        cr_assert(wait_lines(dir, v, 30, 10000), "ver does not run");
        stop_daemon(&d);
        struct vfile vv = read_vfile(v, true);
        cr_assert_eq(vv.first, 0, "the messages queued while it was down come first");
        daemon_cleanup(&d);
        free(conf);
        free(l);
        free(v);
        free(sub);
        free(plugins);
}

/* restart = "never": ver stays stopped while the rest runs; the next reload, even of the same
 * file, gives it another chance. */
static void retried_by_a_reload(struct daemon *d, const char *sub, const char *l)
{
        cr_assert(wait_contains(dir, d->err_path, "stopping it (restart = \"never\")", 5000), "%s",
                  daemon_stderr(d));
        int n = count_lines(l);
        cr_assert(wait_lines(dir, l, n + 20, 10000), "the pipeline stopped");
        cr_assert_eq(mkdir(sub, 0755), 0);
        reload_expect(d, "STATUS=reloaded: 3 kept, 1 restarted, 0 started, 0 stopped;");
}

Test(reload, a_component_failing_to_start_is_retried_by_the_next_reload)
{
        failing_to_start("restart = \"never\";", retried_by_a_reload);
}

/* Under its restart policy, ver is retried with its back-off: once the folder appears it
 * starts by itself, no reload needed. */
static void restarted_by_its_policy(struct daemon *d, const char *sub, const char *l)
{
        (void)l;
        cr_assert(wait_contains(dir, d->err_path,
                                "restarting it in 40 ms (restart 2 of at most 1000", 5000),
                  "a second failed init: it is being retried; %s", daemon_stderr(d));
        cr_assert_eq(mkdir(sub, 0755), 0);
        cr_assert(
            wait_contains(dir, d->err_path, "component 'ver' (test.version) restarted (", 20000),
            "%s", daemon_stderr(d));
}

Test(reload, a_component_failing_to_start_is_restarted_by_its_policy)
{
        failing_to_start("max_restarts = 1000; restart_window_s = 600; backoff_ms = 20;",
                         restarted_by_its_policy);
}

Test(reload, twenty_reloads_in_a_row_lose_nothing_sleeping_workers)
{
        twenty_reloads("sleep");
}

Test(reload, twenty_reloads_in_a_row_lose_nothing_spinning_workers)
{
        twenty_reloads("spin");
}

/* Runs `actord --reload PID` with RUNTIME_DIRECTORY=rundir (none if NULL); its exit status,
 * and its stdout and stderr in *out and *err. */
static int reload_command(const char *rundir, const char *pid, char **out, char **err)
{
        char *cmd;
        cr_assert(asprintf(&cmd, "%s%s%s'%s' --reload '%s' >'%s/rl.out' 2>'%s/rl.err'",
                           rundir ? "RUNTIME_DIRECTORY='" : "env -u RUNTIME_DIRECTORY ",
                           rundir ? rundir : "", rundir ? "' " : "", ACTORD_TEST_DAEMON, pid, dir,
                           dir) > 0);
        int st = system(cmd);
        free(cmd);
        char *p = out_path("rl.out");
        *out = tu_read(p);
        free(p);
        p = out_path("rl.err");
        *err = tu_read(p);
        free(p);
        cr_assert(WIFEXITED(st), "status 0x%x", st);
        return WEXITSTATUS(st);
}

/* `actord --reload PID`, the unit's ExecReload: it returns once actord applied the file (0)
 * or refused it (1, with the first error), so that `systemctl reload` does too; without the
 * runtime directory, or with a bad PID, it says what is wrong (2). */
Test(reload, the_reload_command_waits_for_the_result)
{
        char *plugins = plugin_folder();
        char *l = out_path("l.txt"), *l2 = out_path("l2.txt"), *rundir = out_path("run");
        cr_assert_eq(mkdir(rundir, 0755), 0);
        char *body = second_body(l, "", "");
        char *conf = write_conf(plugins, body);
        free(body);
        char *env_var, pid[32];
        cr_assert(asprintf(&env_var, "RUNTIME_DIRECTORY=%s", rundir) > 0);
        const char *env[] = {env_var, NULL};
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start_env(&d, dir, args, env);
        cr_assert(daemon_wait_notify(&d, "READY=1", 10000), "%s", daemon_stderr(&d));
        snprintf(pid, sizeof(pid), "%d", (int)d.pid);

        /* Applied: a second pair starts. When the command returns, actord has logged it. */
        char more[512];
        snprintf(more, sizeof(more),
                 "  src2 = { class = \"test.bytes\"; schedule = { every_us = 200; }; };\n"
                 "  log2 = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n",
                 l2);
        body = second_body(l, more, ", \"src2.out -> log2.in\"");
        free(write_conf(plugins, body));
        free(body);
        char *out, *err;
        int rc = reload_command(rundir, pid, &out, &err);
        cr_assert_eq(rc, 0, "stdout: %s\nstderr: %s", out, err);
        /* actord writes the result once the reload is applied. */
        cr_assert(out && strstr(out, "reload applied: 2 kept, 0 restarted, 2 started, 0 stopped"),
                  "stdout: %s", out);
        free(out);
        free(err);
        cr_assert(wait_lines(dir, l2, 20, 10000), "the new pair does not run");

        /* Refused: a syntax error; the reason comes back, the pipeline goes on. */
        free(tu_write(dir, "pipeline.conf", "components: { oops }\n"));
        rc = reload_command(rundir, pid, &out, &err);
        cr_assert_eq(rc, 1, "stdout: %s\nstderr: %s", out, err);
        cr_assert(out && strstr(out, "reload failed: ") && strstr(out, "pipeline.conf:1"),
                  "stdout: %s", out);
        free(out);
        free(err);
        int n = count_lines(l2);
        cr_assert(wait_lines(dir, l2, n + 20, 10000), "the pipeline stopped");

        /* What the command needs. */
        rc = reload_command(NULL, pid, &out, &err);
        cr_assert_eq(rc, 2);
        cr_assert(err && strstr(err, "RUNTIME_DIRECTORY"), "stderr: %s", err);
        free(out);
        free(err);
        rc = reload_command(rundir, "not-a-pid", &out, &err);
        cr_assert_eq(rc, 2);
        cr_assert(err && strstr(err, "'not-a-pid' is not a process ID"), "stderr: %s", err);
        free(out);
        free(err);

        stop_daemon(&d);
        daemon_cleanup(&d);
        free(env_var);
        free(conf);
        free(l);
        free(l2);
        free(rundir);
        free(plugins);
}

/* A plugin whose thread notifies on after fini (a plugin's bug: tests/plugins/stray.c): a
 * reload removes its component and frees it, and the notifies that follow (paced until the test
 * says the reload is applied, then 10000 at once) reach nothing (the ASan build catches a use of
 * the freed component). A component that takes the freed notifier later runs as it should. */
Test(reload, notifies_after_fini_reach_nothing)
{
        char *plugins = plugin_folder();
        install_plugin(plugins, ACTORD_TEST_TESTPLUGIN_DIR "/stray/stray.so", "stray.so");
        char *after = out_path("stray.after"), *body;
        cr_assert(asprintf(&body,
                           "components: {\n"
                           "  s = { class = \"test.stray\"; settings = { path = \"%s\"; }; };\n"
                           "  l = { class = \"core.log\"; };\n"
                           "  t = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                           "  c = { class = \"core.counter\"; };\n"
                           "};\n"
                           "links = ( \"s.out -> l.in\", \"t.out -> c.in\" );\n",
                           after) > 0);
        char *conf = write_conf(plugins, body);
        struct daemon d;
        start_ready(&d, conf);
        cr_assert(wait_contains(dir, d.err_path, "s: woken by its thread", 20000), "%s",
                  daemon_stderr(&d));
        free(write_conf(plugins,
                        "components: {\n"
                        "  t = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                        "  c = { class = \"core.counter\"; };\n"
                        "};\n"
                        "links = ( \"t.out -> c.in\" );\n"));
        reload_expect(&d, "STATUS=reloaded: 2 kept, 0 restarted, 0 started, 2 stopped");
        /* READY=1 comes after the old pipeline's leftovers are freed: the stray thread has
         * been notifying a freed component's notifier since, and goes on a little. */
        char *freed;
        cr_assert(asprintf(&freed, "%s.freed", after) > 0);
        free(tu_write(dir, strrchr(freed, '/') + 1, "freed\n"));
        free(freed);
        cr_assert(wait_lines(dir, after, 1, 20000), "the stray thread did not finish; stderr:\n%s",
                  daemon_stderr(&d));
        /* The freed slot goes to the next component that needs one: it starts and runs. */
        char *again;
        cr_assert(asprintf(&again,
                           "components: {\n"
                           "  s2 = { class = \"test.stray\"; settings = { path = \"%s.2\"; }; };\n"
                           "  l2 = { class = \"core.log\"; };\n"
                           "  t = { class = \"core.tick\"; schedule = { every_us = 1000; }; };\n"
                           "  c = { class = \"core.counter\"; };\n"
                           "};\n"
                           "links = ( \"s2.out -> l2.in\", \"t.out -> c.in\" );\n",
                           after) > 0);
        free(write_conf(plugins, again));
        reload_expect(&d, "STATUS=reloaded: 2 kept, 0 restarted, 2 started, 0 stopped");
        cr_assert(wait_contains(dir, d.err_path, "s2: woken by its thread", 20000), "%s",
                  daemon_stderr(&d));
        kill(d.pid, SIGTERM);
        int status = daemon_wait_exit(&d, 20000);
        cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "status 0x%x; stderr:\n%s", status, daemon_stderr(&d));
        daemon_cleanup(&d);
        free(again);
        free(conf);
        free(body);
        free(after);
        free(plugins);
}
