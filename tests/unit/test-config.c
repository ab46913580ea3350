/* config.c: the libconfig file read into the model, with every error at its file:line. */
#include "testutil.h"

#include <errno.h>
#include <sched.h>

#include <actord/plugin.h>

#include "config.h"

TU_TMPDIR_SUITE(config, 0);

/* Loads text as a config file and returns load's result; *d collects the errors. */
static int load(const char *text, struct config *c, struct diag *d, char **ret_path)
{
        char *path = tu_write(dir, "test.conf", text);
        int r = config_load(path, c, d);
        if (ret_path)
                *ret_path = path;
        else
                free(path);
        return r;
}

static bool diag_has(const struct diag *d, const char *needle)
{
        for (size_t i = 0; i < d->n; i++)
                if (strstr(d->lines[i], needle))
                        return true;
        return false;
}

static void dump(const struct diag *d)
{
        for (size_t i = 0; i < d->n; i++)
                cr_log_info("diag: %s", d->lines[i]);
}

Test(config, valid_file_is_read_into_the_model)
{
        struct config c;
        struct diag d = {0};
        char *path;
        int r = load("actord: { plugin_dirs = [ \"plugins\", \"/abs\" ];\n"
                     "          workers = ( { cpu = 0; idle = \"spin\"; } ); };\n"
                     "components: {\n"
                     "  a = { class = \"x.src\"; schedule = { every_us = 250; }; worker = 0; };\n"
                     "  b = { class = \"x.sink\"; schedule = \"loop\"; settings = { k = 1; }; };\n"
                     "};\n"
                     "links = ( \"a.out -> b.in\",\n"
                     "  { from = \"a.out2\"; to = \"b.in[3]\"; capacity = 100; overflow = "
                     "\"reject\"; } );\n",
                     &c, &d, &path);
        dump(&d);
        cr_assert_eq(r, 0);
        cr_assert_eq(d.n, 0);
        cr_assert_eq(c.n_plugin_dirs, 2);
        char *want;
        cr_assert(asprintf(&want, "%s/plugins", dir) > 0);
        cr_assert_str_eq(c.plugin_dirs[0], want,
                         "relative plugin dirs are taken from the "
                         "config file's folder");
        free(want);
        cr_assert_str_eq(c.plugin_dirs[1], "/abs");
        cr_assert_eq(c.n_workers, 1);
        cr_assert_eq(c.workers[0].idle, IDLE_SPIN);
        cr_assert_eq(c.n_components, 2);
        cr_assert_str_eq(c.components[0].name, "a");
        cr_assert_eq(c.components[0].rule, ACTORD_RULE_PERIODIC);
        cr_assert_eq(c.components[0].every_us, 250);
        cr_assert_eq(c.components[0].worker, 0);
        cr_assert_eq(c.components[1].rule, ACTORD_RULE_LOOP);
        cr_assert_eq(c.components[1].worker, -1);
        cr_assert_not_null(c.components[1].settings);
        cr_assert_eq(c.components[1].line, 5);
        cr_assert_eq(c.n_links, 2);
        cr_assert_str_eq(c.links[0].from.component, "a");
        cr_assert_str_eq(c.links[0].to.port, "in");
        cr_assert_eq(c.links[0].capacity, CHANNEL_CAPACITY_DEFAULT);
        cr_assert_eq(c.links[0].policy, CHANNEL_OVERWRITE);
        cr_assert_eq(c.links[1].to.index, 3);
        cr_assert_eq(c.links[1].capacity, 100);
        cr_assert_eq(c.links[1].policy, CHANNEL_REJECT);
        cr_assert_eq(c.links[1].line, 8);
        cr_assert_str_eq(c.links[1].file, path);
        config_free(&c);
        free(path);
        config_free(&c);
        diag_free(&d);
}

Test(config, default_workers_one_per_allowed_cpu)
{
        struct config c;
        struct diag d = {0};
        cr_assert_eq(load("components: { a = { class = \"x.y\"; }; };\n", &c, &d, NULL), 0);
        cpu_set_t set;
        cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
        cr_assert_eq(c.n_workers, CPU_COUNT(&set));
        cr_assert(c.workers_default);
        for (int i = 0; i < c.n_workers; i++)
                cr_assert(CPU_ISSET(c.workers[i].cpu, &set));
        config_free(&c);
        config_free(&c);
        diag_free(&d);
}

Test(config, syntax_error_names_file_and_line)
{
        struct config c;
        struct diag d = {0};
        char *path;
        int r = load("components: {\n  a = { class = ; };\n};\n", &c, &d, &path);
        dump(&d);
        cr_assert_eq(r, -EINVAL);
        cr_assert_eq(d.n, 1);
        char *want;
        cr_assert(asprintf(&want, "%s:2: syntax error", path) > 0);
        cr_assert(strstr(d.lines[0], want), "got: %s", d.lines[0]);
        free(want);
        free(path);
        config_free(&c);
        diag_free(&d);
}

Test(config, missing_file_is_reported)
{
        struct config c;
        struct diag d = {0};
        cr_assert_eq(config_load("/nonexistent/actord.conf", &c, &d), -EINVAL);
        cr_assert_eq(d.n, 1);
        cr_assert(strstr(d.lines[0], "/nonexistent/actord.conf: cannot read"), "%s", d.lines[0]);
        config_free(&c);
        diag_free(&d);
}

Test(config, unknown_keys_are_errors_with_suggestions)
{
        struct config c;
        struct diag d = {0};
        char *path;
        int r = load("components: { a = { clas = \"x.y\"; wroker = 0; }; };\n"
                     "linkz = ();\n",
                     &c, &d, &path);
        dump(&d);
        cr_assert_eq(r, -EINVAL);
        cr_assert(diag_has(&d, ":1: unknown key 'clas' in a component; did you mean 'class'?"));
        cr_assert(diag_has(&d, ":1: unknown key 'wroker' in a component; did you mean "
                               "'worker'?"));
        cr_assert(diag_has(&d, ":2: unknown key 'linkz' in the top level; did you mean "
                               "'links'?"));
        cr_assert(diag_has(&d, "component 'a' has no class"));
        free(path);
        config_free(&c);
        diag_free(&d);
}

Test(config, every_error_is_reported_not_only_the_first)
{
        struct config c;
        struct diag d = {0};
        int r = load("actord: { workers = ( { cpu = 0; idle = \"nap\"; } ); };\n"
                     "components: {\n"
                     "  a = { class = \"x.y\"; schedule = \"periodic\"; worker = 3; };\n"
                     "  b = { class = 7; };\n"
                     "};\n"
                     "links = ( \"a.out b.in\", { from = \"a\"; to = \"b.in\"; overflow = "
                     "\"lose\"; capacity = 0; } );\n",
                     &c, &d, NULL);
        dump(&d);
        cr_assert_eq(r, -EINVAL);
        cr_assert(diag_has(&d, ":1: workers[0].idle = \"nap\": expected \"spin\", \"sleep\" or "
                               "\"adaptive\""));
        cr_assert(diag_has(&d, ":3: component 'a': a periodic schedule needs its period"));
        cr_assert(diag_has(&d, ":3: component 'a': worker = 3, but there are 1 workers"));
        cr_assert(diag_has(&d, ":4: class must be a string, not an integer"));
        cr_assert(diag_has(&d, ":6: link \"a.out b.in\": expected \"from.port -> to.port\""));
        cr_assert(diag_has(&d, ":6: link source \"a\": expected \"component.port\""));
        cr_assert(diag_has(&d, ":6: overflow = \"lose\": expected \"overwrite\", \"drop_new\" "
                               "or \"reject\""));
        cr_assert(diag_has(&d, ":6: capacity is 0, out of range"));
        cr_assert_eq(d.n, 8);
        config_free(&c);
        diag_free(&d);
}

Test(config, unavailable_and_duplicate_cpus_are_errors)
{
        struct config c;
        struct diag d = {0};
        int r = load("actord: { workers = ( { cpu = 0; }, { cpu = 1023; }, { cpu = 0; } ); };\n"
                     "components: { a = { class = \"x.y\"; }; };\n",
                     &c, &d, NULL);
        dump(&d);
        cr_assert_eq(r, -EINVAL);
        cr_assert(diag_has(&d, "workers[1].cpu = 1023: CPU 1023 is not online"));
        cr_assert(diag_has(&d, "workers[2].cpu = 0: CPU already used by workers[0]"));
        config_free(&c);
        diag_free(&d);
}

Test(config, no_components_is_an_error)
{
        struct config c;
        struct diag d = {0};
        cr_assert_eq(load("actord: { };\n", &c, &d, NULL), -EINVAL);
        cr_assert(diag_has(&d, "no components"));
        config_free(&c);
        diag_free(&d);
}

Test(config, endpoints_parse)
{
        struct config_endpoint e;
        cr_assert_eq(config_parse_endpoint("fan.out[12]", &e), 0);
        cr_assert_str_eq(e.component, "fan");
        cr_assert_str_eq(e.port, "out");
        cr_assert_eq(e.index, 12);
        config_endpoint_free(&e);
        cr_assert_eq(config_parse_endpoint("a-b_c.in", &e), 0);
        cr_assert_str_eq(e.component, "a-b_c");
        cr_assert_eq(e.index, -1);
        config_endpoint_free(&e);
        const char *bad[] = {"a",        ".in",      "a.",     "a.in[", "a.in[x]",
                             "a.in[1]x", "a.in[-1]", "a b.in", "a.i n"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(config_parse_endpoint(bad[i], &e), -EINVAL, "accepted '%s'", bad[i]);
}

Test(config, listen_addresses_parse)
{
        char host[64];
        unsigned port;
        const struct {
                const char *in, *host;
                unsigned port;
        } good[] = {{"127.0.0.1:9464", "127.0.0.1", 9464},
                    {"[::1]:0", "::1", 0},
                    {":65535", "", 65535},
                    {"localhost:80", "localhost", 80},
                    {"[fe80::1%lo]:1", "fe80::1%lo", 1}};
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                cr_assert_eq(config_parse_listen(good[i].in, host, sizeof(host), &port), 0,
                             "refused '%s'", good[i].in);
                cr_assert_str_eq(host, good[i].host);
                cr_assert_eq(port, good[i].port);
        }
        const char *bad[] = {"9464",     "127.0.0.1",      "127.0.0.1:", "127.0.0.1:65536",
                             "::1:9464", "[::1]9464",      "[]:1",       "host:12a",
                             "h:-1",     "h:000000009464", "[::1:9464"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                cr_assert_eq(config_parse_listen(bad[i], host, sizeof(host), &port), -EINVAL,
                             "accepted '%s'", bad[i]);
        /* A host longer than the buffer is refused, not cut. */
        cr_assert_eq(config_parse_listen("abcdefghij:1", host, 8, &port), -EINVAL);

        struct config c;
        struct diag d = {0};
        cr_assert_eq(load("actord: { metrics_listen = \"127.0.0.1:9464\"; };\n"
                          "components: { a = { class = \"x.y\"; }; };\n",
                          &c, &d, NULL),
                     0);
        cr_assert_str_eq(c.metrics_listen, "127.0.0.1:9464");
        cr_assert_eq(c.metrics_line, 1);
        config_free(&c);
        cr_assert_eq(load("actord: {\n metrics_listen = \"9464\"; };\n"
                          "components: { a = { class = \"x.y\"; }; };\n",
                          &c, &d, NULL),
                     -EINVAL);
        dump(&d);
        cr_assert(diag_has(&d, "test.conf:2: metrics_listen = \"9464\": expected HOST:PORT"));
        cr_assert_null(c.metrics_listen);
        config_free(&c);
        diag_free(&d);
        cr_assert_eq(load("actord: { metrics_listen = 9464; };\n"
                          "components: { a = { class = \"x.y\"; }; };\n",
                          &c, &d, NULL),
                     -EINVAL);
        cr_assert(diag_has(&d, "metrics_listen must be a string"));
        config_free(&c);
        diag_free(&d);
}

/* HTTPS and users for the metrics: files from the configuration's folder, read at load; the
 * pair of TLS files; hashes that crypt(3) takes, not passwords; nothing without
 * metrics_listen. */
Test(config, metrics_tls_and_users)
{
        free(tu_write(dir, "m.pem", "not checked here: libmicrohttpd reads it\n"));
        free(tu_write(dir, "m.key", "the same\n"));
        struct config c;
        struct diag d = {0};
        /* sha512crypt of "secret" with the salt "abcdefgh" (openssl passwd -6). */
        const char *hash = "$6$abcdefgh$ltjgWl6579NluT/Vi1nwEvcil.G5Nbc4NiXZaNGStk8PSwGfQv72N2CKPP"
                           "rVACtLtip/cZ/1GM/O6IND4WQhG.";
        char *text;
        cr_assert(asprintf(&text,
                           "actord: { metrics_listen = \"127.0.0.1:9464\";\n"
                           "  metrics_tls_cert = \"m.pem\"; metrics_tls_key = \"%s/m.key\";\n"
                           "  metrics_users = { prometheus = \"%s\"; }; };\n"
                           "components: { a = { class = \"x.y\"; }; };\n",
                           dir, hash) > 0);
        cr_assert_eq(load(text, &c, &d, NULL), 0);
        dump(&d);
        char *want;
        cr_assert(asprintf(&want, "%s/m.pem", dir) > 0);
        cr_assert_str_eq(c.metrics_tls_cert, want, "relative to the file's folder");
        free(want);
        cr_assert(asprintf(&want, "%s/m.key", dir) > 0);
        cr_assert_str_eq(c.metrics_tls_key, want);
        free(want);
        cr_assert_eq(c.n_metrics_users, 1);
        cr_assert_str_eq(c.metrics_users[0].name, "prometheus");
        cr_assert_str_eq(c.metrics_users[0].hash, hash);
        config_free(&c);
        free(text);

        /* yescrypt and bcrypt, as crypt(3) makes them. */
        cr_assert_eq(
            load("actord: { metrics_listen = \":1\"; metrics_users = {\n"
                 "  y = \"$y$j9T$abcdefghijklmnop$xxI14acrF4kcY59GsyqJ1DqdhVdc9N0f1.omTKnq.61\";\n"
                 "  b = \"$2b$12$7/AYxu4wIUlM1X1IT8KYNeUVi/rLC5GXpgVMQJUHlv5IksDd.JFJS\"; }; };\n"
                 "components: { a = { class = \"x.y\"; }; };\n",
                 &c, &d, NULL),
            0);
        dump(&d);
        cr_assert_eq(c.n_metrics_users, 2);
        config_free(&c);

        const struct {
                const char *actord, *error;
        } bad[] = {
            {"metrics_listen = \":1\"; metrics_tls_cert = \"m.pem\";",
             "test.conf:1: metrics_tls_cert and metrics_tls_key go together: metrics_tls_key is "
             "missing"},
            {"metrics_listen = \":1\"; metrics_tls_cert = \"none.pem\"; metrics_tls_key = "
             "\"m.key\";",
             "test.conf:1: metrics_tls_cert = \"none.pem\": No such file or directory"},
            {"metrics_listen = \":1\"; metrics_users = { p = \"secret\"; };",
             "test.conf:1: metrics_users.p: not a password hash crypt(3) takes"},
            {"metrics_listen = \":1\"; metrics_users = { p = \"$6$x\"; };",
             "metrics_users.p: not a password hash"},
            {"metrics_listen = \":1\"; metrics_users = { p = \"$1$abc$def\"; };",
             "metrics_users.p: not a password hash"},
            {"metrics_listen = \":1\"; metrics_users = { p = \"$y$j9T$abcdefghijklmnop\"; };",
             "metrics_users.p: not a password hash"},
            {"metrics_listen = \":1\"; metrics_users = { p = 1; };",
             "metrics_users.p must be a string"},
            {"metrics_listen = \":1\"; metrics_users = { };", "metrics_users is empty"},
            {"metrics_tls_cert = \"m.pem\"; metrics_tls_key = \"m.key\";",
             "metrics_tls_cert without metrics_listen"},
            {"metrics_users = { p = \"$6$abcdefgh$x\"; };", "metrics_users without metrics_listen"},
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                cr_assert(asprintf(&text,
                                   "actord: { %s };\ncomponents: { a = { class = \"x.y\"; }; };\n",
                                   bad[i].actord) > 0);
                cr_assert_eq(load(text, &c, &d, NULL), -EINVAL, "accepted: %s", bad[i].actord);
                cr_assert(diag_has(&d, bad[i].error), "no '%s' for: %s", bad[i].error,
                          bad[i].actord);
                config_free(&c);
                diag_free(&d);
                free(text);
        }
}

Test(config, duplicate_component_names_are_errors)
{
        struct config c;
        struct diag d = {0};
        int r =
            load("components: {\n  a = { class = \"x.y\"; };\n  a = { class = \"x.z\"; };\n};\n",
                 &c, &d, NULL);
        dump(&d);
        cr_assert_eq(r, -EINVAL);
        cr_assert(diag_has(&d, ":3: syntax error: duplicate setting name: 'a' is set twice"));
        config_free(&c);
        diag_free(&d);
        /* A key twice on one line: that one is named, not the group's. */
        d = (struct diag){0};
        r = load("components: {\n  b = { class = \"x.y\"; class = \"x.z\"; };\n};\n", &c, &d, NULL);
        dump(&d);
        cr_assert_eq(r, -EINVAL);
        cr_assert(diag_has(&d, ":2: syntax error: duplicate setting name: 'class' is set twice"));
        config_free(&c);
        diag_free(&d);
}

/* Workers without a cpu take the CPUs no other worker names, in order; with more workers than
 * CPUs they share them, and say with whom. */
Test(config, workers_without_a_cpu_take_the_free_ones_then_share)
{
        cpu_set_t set;
        cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
        int first = -1, n = CPU_COUNT(&set);
        for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
                if (CPU_ISSET(c, &set))
                        first = c;
        /* One worker pinned to the first CPU, then n workers without a cpu: n - 1 take the
         * others, the last shares the first CPU with workers[0]. */
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        fprintf(f, "actord: { workers = ( { cpu = %d; }", first);
        for (int i = 0; i < n; i++)
                fprintf(f, ", { idle = \"sleep\"; }");
        fprintf(f, " ); };\ncomponents: { a = { class = \"x.y\"; }; };\n");
        fclose(f);
        struct config c;
        struct diag d = {0};
        cr_assert_eq(load(text, &c, &d, NULL), 0);
        dump(&d);
        cr_assert_eq(c.n_workers, n + 1);
        cpu_set_t seen;
        CPU_ZERO(&seen);
        for (int i = 0; i < n; i++) {
                cr_assert(CPU_ISSET(c.workers[i].cpu, &set));
                cr_assert_not(CPU_ISSET(c.workers[i].cpu, &seen), "CPU %d twice", c.workers[i].cpu);
                CPU_SET(c.workers[i].cpu, &seen);
                cr_assert_eq(c.workers[i].shares_with, -1);
        }
        cr_assert_eq(c.workers[n].cpu, first);
        cr_assert_eq(c.workers[n].shares_with, 0);
        free(text);
        config_free(&c);
        diag_free(&d);
}

Test(config, restart_policies_default_in_actord_and_per_component)
{
        struct config c;
        struct diag d = {0};
        int r = load("actord: { workers = ( { cpu = 0; } ); restart = \"permanent\"; "
                     "max_restarts = 7; restart_window_s = 30; backoff_ms = 250; "
                     "on_failure = \"exit\"; };\n"
                     "components: {\n"
                     "  a = { class = \"x.src\"; };\n"
                     "  b = { class = \"x.sink\"; restart = \"never\"; on_failure = \"continue\"; "
                     "max_restarts = 0; };\n"
                     "};\n",
                     &c, &d, NULL);
        dump(&d);
        cr_assert_eq(r, 0);
        const struct config_restart *a = &c.components[0].restart, *b = &c.components[1].restart;
        cr_assert_eq(a->mode, RESTART_PERMANENT, "the actord group's default");
        cr_assert_eq(a->max_restarts, 7);
        cr_assert_eq(a->window_ms, 30000);
        cr_assert_eq(a->backoff_ms, 250);
        cr_assert(a->exit_on_failure);
        cr_assert_eq(b->mode, RESTART_NEVER, "a component's own keys win");
        cr_assert_eq(b->max_restarts, 0);
        cr_assert_eq(b->window_ms, 30000, "what it does not set comes from the default");
        cr_assert(!b->exit_on_failure);
        config_free(&c);
        diag_free(&d);

        r = load("actord: { workers = ( { cpu = 0; } ); };\n"
                 "components: { a = { class = \"x.src\"; }; };\n",
                 &c, &d, NULL);
        cr_assert_eq(r, 0);
        a = &c.components[0].restart;
        cr_assert_eq(a->mode, RESTART_TRANSIENT);
        cr_assert_eq(a->max_restarts, 5);
        cr_assert_eq(a->window_ms, 10000);
        cr_assert_eq(a->backoff_ms, 100);
        cr_assert(!a->exit_on_failure);
        config_free(&c);
        diag_free(&d);
}

Test(config, bad_restart_policies_are_errors_at_their_line)
{
        struct config c;
        struct diag d = {0};
        int r = load("actord: { workers = ( { cpu = 0; } ); restart = \"always\"; };\n"
                     "components: {\n"
                     "  a = { class = \"x.src\"; on_failure = \"panic\"; };\n"
                     "  b = { class = \"x.src\"; max_restarts = -1; restart_window_s = 0; };\n"
                     "  c = { class = \"x.src\"; backoff_ms = \"soon\"; restarts = 3; };\n"
                     "};\n",
                     &c, &d, NULL);
        dump(&d);
        cr_assert_eq(r, -EINVAL);
        cr_assert(diag_has(&d, "test.conf:1: actord: restart = \"always\": expected \"transient\" "
                               "(after errors), \"permanent\" (also after DONE) or \"never\""));
        cr_assert(diag_has(&d, "test.conf:3: component 'a': on_failure = \"panic\": expected "
                               "\"continue\" (the rest runs on) or \"exit\""));
        cr_assert(diag_has(&d, "test.conf:4: max_restarts is -1, out of range [0, 1000000]"));
        cr_assert(diag_has(&d, "test.conf:4: restart_window_s is 0, out of range [1, 86400]"));
        cr_assert(diag_has(&d, "test.conf:5: backoff_ms must be an integer, not a string"));
        cr_assert(diag_has(&d, "test.conf:5: unknown key 'restarts' in a component; did you mean "
                               "'restart'?"));
        config_free(&c);
        diag_free(&d);
}
