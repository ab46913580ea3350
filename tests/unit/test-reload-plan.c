/* reload.c: which components and channels a new configuration keeps, compared one definition
 * at a time against the same real plugins. */
#include "testutil.h"

#include <errno.h>
#include <sched.h>

#include "reload.h"

static char *dir;
static struct plugin_registry reg;

static void setup(void)
{
        dir = tu_tmpdir();
        struct diag d = {0};
        const char *dirs[] = {ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_TESTPLUGIN_DIR "/testkit"};
        cr_assert_eq(plugin_registry_load(&reg, dirs, 2, &d), 0);
        cr_assert_eq(d.n, 0);
}

static void teardown(void)
{
        plugin_registry_free(&reg);
        tu_rmrf(dir);
        free(dir);
}

TestSuite(reload_plan, .init = setup, .fini = teardown);

struct built {
        struct config cfg;
        struct topology topo;
};

static void build(struct built *b, const char *name, const char *text)
{
        *b = (struct built){0};
        struct diag d = {0};
        char *path = tu_write(dir, name, text);
        cr_assert_eq(config_load(path, &b->cfg, &d), 0, "%s", d.n ? d.lines[0] : "");
        cr_assert_eq(topology_build(&b->topo, &b->cfg, &reg, &d), 0, "%s", d.n ? d.lines[0] : "");
        free(path);
        diag_free(&d);
}

static void done(struct built *b)
{
        topology_free(&b->topo);
        config_free(&b->cfg);
}

/* Two workers on the first two CPUs we may use (the tests that need them skip otherwise). */
static void workers2(char *buf, size_t len)
{
        cpu_set_t set;
        cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
        int a = -1, b = -1;
        for (int c = 0; c < CPU_SETSIZE && b < 0; c++)
                if (CPU_ISSET(c, &set)) {
                        if (a < 0)
                                a = c;
                        else
                                b = c;
                }
        if (b < 0)
                cr_skip_test("needs two CPUs");
        snprintf(buf, len,
                 "actord: { workers = ( { cpu = %d; }, { cpu = %d; idle = \"spin\"; } ); };\n", a,
                 b);
}

/* src -> mul -> out, with the given pieces. */
static void pipeline(struct built *b, const char *name, const char *mul_settings,
                     const char *out_extra, const char *link2)
{
        char *text, workers[128];
        workers2(workers, sizeof(workers));
        cr_assert(asprintf(&text,
                           "%scomponents: {\n"
                           "  src = { class = \"core.tick\"; schedule = { every_us = 100; }; };\n"
                           "  mul = { class = \"core.scale\"; settings = { %s }; };\n"
                           "  out = { class = \"core.counter\"; %s };\n"
                           "};\n"
                           "links = ( \"src.out -> mul.in\", %s );\n",
                           workers, mul_settings, out_extra, link2) > 0);
        build(b, name, text);
        free(text);
}

static int idx(const struct topology *t, const char *name)
{
        for (int i = 0; i < t->n_comps; i++)
                if (!strcmp(t->comps[i]->name, name))
                        return i;
        cr_assert_fail("no component %s", name);
        return -1;
}

Test(reload_plan, same_file_keeps_everything_settings_in_any_order)
{
        struct built a, b;
        pipeline(&a, "a.conf", "factor = 2.0; offset = 1.0;", "", "\"mul.out -> out.in\"");
        pipeline(&b, "b.conf", "offset = 1.0; factor = 2.0;", "", "\"mul.out -> out.in\"");
        struct reload_plan p;
        struct diag d = {0};
        cr_assert_eq(reload_plan(&p, &a.topo, &b.topo, &d), 0);
        cr_assert_eq(p.n_kept, 3);
        cr_assert_eq(p.n_restarted + p.n_started + p.n_stopped, 0);
        cr_assert_eq(p.n_chans_kept, 2);
        for (int i = 0; i < 3; i++)
                cr_assert_eq(p.keep[i], idx(&a.topo, b.topo.comps[i]->name));
        reload_plan_free(&p);
        done(&a);
        done(&b);
}

Test(reload_plan, a_changed_setting_restarts_one_component_and_keeps_its_channels)
{
        struct built a, b;
        pipeline(&a, "a.conf", "factor = 2.0;", "", "\"mul.out -> out.in\"");
        pipeline(&b, "b.conf", "factor = 3.0;", "", "\"mul.out -> out.in\"");
        struct reload_plan p;
        struct diag d = {0};
        cr_assert_eq(reload_plan(&p, &a.topo, &b.topo, &d), 0);
        cr_assert_eq(p.n_kept, 2);
        cr_assert_eq(p.n_restarted, 1);
        cr_assert_eq(p.keep[idx(&b.topo, "mul")], -1);
        cr_assert_eq(p.n_chans_kept, 2, "both of mul's links are the same");
        reload_plan_free(&p);
        done(&a);
        done(&b);
}

Test(reload_plan, a_changed_link_restarts_both_ends_and_makes_a_new_channel)
{
        struct built a, b;
        pipeline(&a, "a.conf", "", "", "\"mul.out -> out.in\"");
        pipeline(&b, "b.conf", "", "", "{ from = \"mul.out\"; to = \"out.in\"; capacity = 64; }");
        struct reload_plan p;
        struct diag d = {0};
        cr_assert_eq(reload_plan(&p, &a.topo, &b.topo, &d), 0);
        cr_assert_eq(p.n_kept, 1, "src only");
        cr_assert_eq(p.n_restarted, 2);
        cr_assert_eq(p.n_chans_kept, 1);
        reload_plan_free(&p);
        done(&a);
        done(&b);
}

Test(reload_plan, moving_a_component_to_another_worker_restarts_it)
{
        struct built a, b;
        pipeline(&a, "a.conf", "", "", "\"mul.out -> out.in\"");
        pipeline(&b, "b.conf", "", "worker = 1;", "\"mul.out -> out.in\"");
        int was = a.topo.comps[idx(&a.topo, "out")]->worker;
        struct reload_plan p;
        struct diag d = {0};
        cr_assert_eq(reload_plan(&p, &a.topo, &b.topo, &d), 0);
        cr_assert_eq(p.n_restarted, was == 1 ? 0 : 1);
        reload_plan_free(&p);
        done(&a);
        done(&b);
}

Test(reload_plan, changed_workers_are_refused_with_the_reason)
{
        struct built a, b;
        pipeline(&a, "a.conf", "", "", "\"mul.out -> out.in\"");
        build(&b, "b.conf",
              "actord: { workers = ( { cpu = 0; } ); };\n"
              "components: { src = { class = \"core.tick\"; schedule = { every_us = 100; }; };\n"
              "  out = { class = \"core.counter\"; }; };\n"
              "links = ( \"src.out -> out.in\" );\n");
        struct reload_plan p;
        struct diag d = {0};
        cr_assert_eq(reload_plan(&p, &a.topo, &b.topo, &d), -EINVAL);
        cr_assert_eq(d.n, 1);
        cr_assert(strstr(d.lines[0], "1 workers instead of 2"), "%s", d.lines[0]);
        cr_assert(strstr(d.lines[0], "needs a restart"), "%s", d.lines[0]);
        diag_free(&d);
        done(&a);
        done(&b);
}

Test(reload_plan, setting_equality_is_by_value)
{
        config_t c;
        config_init(&c);
        cr_assert_eq(config_read_string(&c, "a = { x = 1; y = [1, 2]; z = { q = \"s\"; }; };\n"
                                            "b = { z = { q = \"s\"; }; y = [1, 2]; x = 1; };\n"
                                            "c = { x = 1; y = [2, 1]; z = { q = \"s\"; }; };\n"
                                            "d = { x = 1.0; y = [1, 2]; z = { q = \"s\"; }; };\n"
                                            "e = { };\n"),
                     CONFIG_TRUE);
        const config_setting_t *a = config_lookup(&c, "a"), *b = config_lookup(&c, "b"),
                               *cc = config_lookup(&c, "c"), *dd = config_lookup(&c, "d"),
                               *e = config_lookup(&c, "e");
        /* Names differ at the top (a, b...): compare the members. */
        for (int i = 0; i < 3; i++) {
                const config_setting_t *m = config_setting_get_elem(a, (unsigned)i);
                const char *name = config_setting_name(m);
                cr_assert(reload_setting_equal(m, config_setting_get_member(b, name)), "%s", name);
        }
        cr_assert_not(reload_setting_equal(config_setting_get_member(a, "y"),
                                           config_setting_get_member(cc, "y")),
                      "arrays are ordered");
        cr_assert_not(reload_setting_equal(config_setting_get_member(a, "x"),
                                           config_setting_get_member(dd, "x")),
                      "1 and 1.0 are of different types");
        cr_assert(reload_setting_equal(NULL, e), "no settings = empty settings");
        cr_assert_not(reload_setting_equal(NULL, a));
        config_destroy(&c);
}
