/* Every connection shape end to end through the real daemon and the bundled classes:
 * source, filter, scatter (broadcast, round-robin), gather (merge), ysplit (threshold),
 * ymerge (gain) and sink. */
#include "daemonutil.h"

#include <inttypes.h>

TU_TMPDIR_SUITE(shapes, 60);

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* The `value=` field of every line of path that starts with prefix, sorted; returns count. */
static int values(const char *path, const char *prefix, double *out, int max)
{
        char *text = tu_read(path);
        cr_assert_not_null(text, "%s missing", path);
        int n = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                if (strncmp(line, prefix, strlen(prefix)))
                        continue;
                char *v = strstr(line, " value=");
                cr_assert_not_null(v, "line without value: %s", line);
                cr_assert(n < max);
                out[n++] = strtod(v + 7, NULL);
        }
        free(text);
        qsort(out, (size_t)n, sizeof(*out), cmp_double);
        return n;
}

static void run_until(const char *conf_text, const char *const *files, const int *lines,
                      int n_files)
{
        char *conf = tu_write(dir, "shapes.conf", conf_text);
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(daemon_wait_notify(&d, "READY=1", 10000), "no READY; stderr:\n%s",
                  daemon_stderr(&d));
        for (int i = 0; i < n_files; i++)
                cr_assert(wait_lines(dir, files[i], lines[i], 20000),
                          "%s: %d of %d lines; stderr:\n%s", files[i], count_lines(files[i]),
                          lines[i], daemon_stderr(&d));
        kill(d.pid, SIGTERM);
        int status = daemon_wait_exit(&d, 10000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x; stderr:\n%s", status,
                  daemon_stderr(&d));
        daemon_cleanup(&d);
        free(conf);
}

Test(shapes, scatter_gather_ysplit_ymerge_through_the_daemon)
{
        int a, b;
        two_cpus(&a, &b);
        char *low, *high, *text;
        cr_assert(asprintf(&low, "%s/low.txt", dir) > 0);
        cr_assert(asprintf(&high, "%s/high.txt", dir) > 0);
        /*  src -> fan -+-> x1  -+-> m -> th -+-(below)-> g(in) -> lowlog
         *              +-> x10 -+            +-(alert)-> highlog
         *                                 gsrc -> g(gain)                              */
        char workers[128];
        if (b != a)
                snprintf(workers, sizeof(workers),
                         "{ cpu = %d; }, { cpu = %d; idle = \"adaptive\"; }", a, b);
        else
                snprintf(workers, sizeof(workers), "{ cpu = %d; }", a);
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\", \"%s\" ]; workers = ( %s ); };\n"
                           "components: {\n"
                           "  src = { class = \"core.tick\"; schedule = { every_us = 200; };\n"
                           "          settings = { count = 100; }; };\n"
                           "  fan = { class = \"core.broadcast\"; };\n"
                           "  x1 = { class = \"core.scale\"; settings = { factor = 1; }; };\n"
                           "  x10 = { class = \"core.scale\"; settings = { factor = 10; }; };\n"
                           "  m = { class = \"core.merge\"; };\n"
                           "  th = { class = \"core.threshold\"; settings = { limit = 500.0; "
                           "}; };\n"
                           "  gsrc = { class = \"test.gainsrc\"; schedule = \"loop\"; settings "
                           "= { factor = 2.0; count = 1; }; };\n"
                           "  g = { class = \"core.gain\"; settings = { initial = 2.0; }; };\n"
                           "  lowlog = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "  highlog = { class = \"core.log\"; settings = { path = \"%s\"; }; "
                           "};\n"
                           "};\n"
                           "links = ( \"src.out -> fan.in\",\n"
                           "  \"fan.out[1] -> x10.in\", \"fan.out[0] -> x1.in\",\n"
                           "  \"x1.out -> m.in\", \"x10.out -> m.in\",\n"
                           "  \"m.out -> th.in\", \"th.below -> g.in\", \"gsrc.out -> g.gain\",\n"
                           "  \"g.out -> lowlog.in\", \"th.alert -> highlog.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/testkit", workers,
                           low, high) > 0);
        const char *files[] = {low, high};
        const int lines[] = {150, 50};
        run_until(text, files, lines, 2);

        /* Below 500: all of x1's 0..99 and x10's 0..490, each doubled by the gain. */
        double got[256], want[256];
        int n = values(low, "seq=", got, 256);
        cr_assert_eq(n, 150);
        int k = 0;
        for (int i = 0; i < 100; i++)
                want[k++] = 2.0 * i;
        for (int i = 0; i < 50; i++)
                want[k++] = 20.0 * i;
        qsort(want, (size_t)k, sizeof(*want), cmp_double);
        for (int i = 0; i < n; i++)
                cr_assert_float_eq(got[i], want[i], 1e-9, "low[%d]: got %g want %g", i, got[i],
                                   want[i]);
        /* At or above 500: x10's 500..990 as alerts, untouched by the gain. */
        n = values(high, "alert seq=", got, 256);
        cr_assert_eq(n, 50);
        for (int i = 0; i < n; i++)
                cr_assert_float_eq(got[i], 500.0 + 10.0 * i, 1e-9);
        char *t = tu_read(high);
        cr_assert(strstr(t, "limit=500 "), "%s", t);
        free(t);
        free(text);
        free(low);
        free(high);
}

Test(shapes, roundrobin_scatter_splits_in_turn)
{
        int a, b;
        two_cpus(&a, &b);
        char *path[3], *text;
        for (int i = 0; i < 3; i++)
                cr_assert(asprintf(&path[i], "%s/rr%d.txt", dir, i) > 0);
        cr_assert(asprintf(&text,
                           "actord: { plugin_dirs = [ \"%s\" ]; workers = ( { cpu = %d; } ); };\n"
                           "components: {\n"
                           "  src = { class = \"core.tick\"; schedule = { every_us = 100; };\n"
                           "          settings = { count = 99; }; };\n"
                           "  rr = { class = \"core.roundrobin\"; };\n"
                           "  l0 = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "  l1 = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "  l2 = { class = \"core.log\"; settings = { path = \"%s\"; }; };\n"
                           "};\n"
                           "links = ( \"src.out -> rr.in\", \"rr.out -> l0.in\", \"rr.out -> "
                           "l1.in\", \"rr.out -> l2.in\" );\n",
                           ACTORD_TEST_PLUGIN_DIR, a, path[0], path[1], path[2]) > 0);
        const char *files[] = {path[0], path[1], path[2]};
        const int lines[] = {33, 33, 33};
        run_until(text, files, lines, 3);
        for (int i = 0; i < 3; i++) {
                double got[64];
                int n = values(path[i], "seq=", got, 64);
                cr_assert_eq(n, 33);
                for (int j = 0; j < n; j++)
                        cr_assert_float_eq(got[j], 3.0 * j + i, 1e-9, "rr%d[%d] = %g", i, j,
                                           got[j]);
                free(path[i]);
        }
        free(text);
}

/* The messages 0..n-1 of a round-robin, split between the files a and b, each exactly once;
 * returns how many a got. */
static int split_exactly(const char *a, const char *b, int n)
{
        static double got_a[4096], got_b[4096], merged[8192];
        int na = values(a, "seq=", got_a, 4096), nb = values(b, "seq=", got_b, 4096);
        cr_assert_eq(na + nb, n, "%s %d + %s %d of %d", a, na, b, nb, n);
        memcpy(merged, got_a, (size_t)na * sizeof(double));
        memcpy(merged + na, got_b, (size_t)nb * sizeof(double));
        qsort(merged, (size_t)n, sizeof(double), cmp_double);
        for (int i = 0; i < n; i++)
                cr_assert_float_eq(merged[i], i, 1e-9, "%s, %s: message %d is %g", a, b, i,
                                   merged[i]);
        return na;
}

/* Under reject, fans lose nothing. A round-robin goes around a full output: `fast` (run on
 * each message) gets most of the messages while `slow` (4 each 20 ms) is full. Another, whose
 * outputs are both slower than its source (4 each ms, 4 each 20 ms), keeps the message when
 * both are full until one has room. A broadcast holds back until its slow output has room:
 * both outputs get every message, in order. */
Test(shapes, fans_under_reject_lose_nothing)
{
        int a, b;
        two_cpus(&a, &b);
        const char *names[] = {"fast", "slow", "mid", "slow2", "every", "paced"};
        char *path[6], *text;
        for (int i = 0; i < 6; i++)
                cr_assert(asprintf(&path[i], "%s/%s.txt", dir, names[i]) > 0);
        const int n_rr = 2000, n_bc = 200;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        fprintf(f, "actord: { plugin_dirs = [ \"%s\" ]; workers = ( { cpu = %d; } ); };\n",
                ACTORD_TEST_PLUGIN_DIR, a);
        fprintf(f, "components: {\n");
        const char *srcs[] = {"s1", "s2", "s3"};
        const int counts[] = {n_rr, n_rr, n_bc};
        for (int i = 0; i < 3; i++)
                fprintf(f,
                        "  %s = { class = \"core.tick\"; schedule = { every_us = 200; };\n"
                        "    settings = { count = %d; burst = 10; }; };\n",
                        srcs[i], counts[i]);
        fprintf(f, "  rr1 = { class = \"core.roundrobin\"; };\n"
                   "  rr2 = { class = \"core.roundrobin\"; };\n"
                   "  bc = { class = \"core.broadcast\"; };\n");
        /* Microseconds between the runs of each sink; 0: on each message. */
        const int every_us[] = {0, 20000, 1000, 20000, 0, 20000};
        for (int i = 0; i < 6; i++) {
                fprintf(f, "  %s = { class = \"core.log\"; settings = { path = \"%s\"; };",
                        names[i], path[i]);
                if (every_us[i])
                        fprintf(f, " schedule = { every_us = %d; };", every_us[i]);
                fprintf(f, " };\n");
        }
        fprintf(f, "};\nlinks = (");
        const char *links[][2] = {
            {"s1.out", "rr1.in"}, {"rr1.out", "fast.in"}, {"rr1.out", "slow.in"},
            {"s2.out", "rr2.in"}, {"rr2.out", "mid.in"},  {"rr2.out", "slow2.in"},
            {"s3.out", "bc.in"},  {"bc.out", "every.in"}, {"bc.out", "paced.in"}};
        for (int i = 0; i < 9; i++)
                fprintf(f,
                        "%s\n  { from = \"%s\"; to = \"%s\"; capacity = 4; overflow = "
                        "\"reject\"; }",
                        i ? "," : "", links[i][0], links[i][1]);
        fprintf(f, " );\n");
        cr_assert_eq(fclose(f), 0);
        char *conf = tu_write(dir, "fans.conf", text);
        struct daemon d;
        const char *args[] = {"--config", conf, NULL};
        daemon_start(&d, dir, args);
        cr_assert(daemon_wait_notify(&d, "READY=1", 10000), "no READY; stderr:\n%s",
                  daemon_stderr(&d));
        cr_assert(wait_lines(dir, path[4], n_bc, 30000), "%d lines; stderr:\n%s",
                  count_lines(path[4]), daemon_stderr(&d));
        cr_assert(wait_lines(dir, path[5], n_bc, 30000), "%d lines; stderr:\n%s",
                  count_lines(path[5]), daemon_stderr(&d));
        int64_t end = now_ms() + 30000;
        while ((count_lines(path[0]) + count_lines(path[1]) < n_rr ||
                count_lines(path[2]) + count_lines(path[3]) < n_rr) &&
               now_ms() < end)
                poll(NULL, 0, 20);
        kill(d.pid, SIGTERM);
        int status = daemon_wait_exit(&d, 10000);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x; stderr:\n%s", status,
                  daemon_stderr(&d));
        daemon_cleanup(&d);

        int nf = split_exactly(path[0], path[1], n_rr);
        cr_assert_gt(nf, n_rr * 3 / 4, "the full output held up the other: fast got %d of %d", nf,
                     n_rr);
        split_exactly(path[2], path[3], n_rr);
        for (int k = 4; k < 6; k++) {
                double got[256];
                int n = values(path[k], "seq=", got, 256);
                cr_assert_eq(n, n_bc, "%s: %d", path[k], n);
                for (int i = 0; i < n; i++)
                        cr_assert_float_eq(got[i], i, 1e-9, "broadcast %s: message %d is %g",
                                           path[k], i, got[i]);
        }
        for (int i = 0; i < 6; i++)
                free(path[i]);
        free(conf);
        free(text);
}

/* Under reject, the ysplit and the ymerge lose nothing either: a threshold whose outputs are
 * read 4 each 20 ms keeps the sample a full output refused (and those behind it) until there
 * is room, as does a gain whose output is that slow. Every sample arrives once, on its side
 * of the limit; every gained one doubled. */
Test(shapes, ysplit_and_ymerge_under_reject_lose_nothing)
{
        int a, b;
        two_cpus(&a, &b);
        const char *names[] = {"below", "alert", "gained"};
        char *path[3], *text;
        for (int i = 0; i < 3; i++)
                cr_assert(asprintf(&path[i], "%s/%s.txt", dir, names[i]) > 0);
        const int n = 300;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        fprintf(f, "actord: { plugin_dirs = [ \"%s\", \"%s\" ]; workers = ( { cpu = %d; } ); };\n",
                ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/testkit", a);
        fprintf(f, "components: {\n");
        for (int i = 1; i <= 2; i++)
                fprintf(f,
                        "  s%d = { class = \"core.tick\"; schedule = { every_us = 200; };\n"
                        "    settings = { count = %d; burst = 10; }; };\n",
                        i, n);
        fprintf(f,
                "  th = { class = \"core.threshold\"; settings = { limit = %d.0; }; };\n"
                "  gsrc = { class = \"test.gainsrc\"; schedule = \"loop\"; settings = { "
                "factor = 2.0; count = 1; }; };\n"
                "  g = { class = \"core.gain\"; settings = { initial = 2.0; }; };\n",
                n / 2);
        for (int i = 0; i < 3; i++)
                fprintf(f,
                        "  %s = { class = \"core.log\"; settings = { path = \"%s\"; }; schedule "
                        "= { every_us = 20000; }; };\n",
                        names[i], path[i]);
        fprintf(f, "};\nlinks = ( \"gsrc.out -> g.gain\"");
        const char *links[][2] = {{"s1.out", "th.in"},
                                  {"th.below", "below.in"},
                                  {"th.alert", "alert.in"},
                                  {"s2.out", "g.in"},
                                  {"g.out", "gained.in"}};
        for (int i = 0; i < 5; i++)
                fprintf(f,
                        ",\n  { from = \"%s\"; to = \"%s\"; capacity = 4; overflow = "
                        "\"reject\"; }",
                        links[i][0], links[i][1]);
        fprintf(f, " );\n");
        cr_assert_eq(fclose(f), 0);
        const char *files[] = {path[0], path[1], path[2]};
        const int lines[] = {n / 2, n / 2, n};
        run_until(text, files, lines, 3);

        static double got[512];
        int k = values(path[0], "seq=", got, 512);
        cr_assert_eq(k, n / 2, "below: %d", k);
        for (int i = 0; i < k; i++)
                cr_assert_float_eq(got[i], i, 1e-9, "below: sample %d is %g", i, got[i]);
        k = values(path[1], "alert seq=", got, 512);
        cr_assert_eq(k, n / 2, "alert: %d", k);
        for (int i = 0; i < k; i++)
                cr_assert_float_eq(got[i], n / 2 + i, 1e-9, "alert: sample %d is %g", i, got[i]);
        k = values(path[2], "seq=", got, 512);
        cr_assert_eq(k, n, "gained: %d", k);
        for (int i = 0; i < k; i++)
                cr_assert_float_eq(got[i], 2.0 * i, 1e-9, "gained: sample %d is %g", i, got[i]);
        for (int i = 0; i < 3; i++)
                free(path[i]);
        free(text);
}
