/* topology.c: classes, settings, ports and types checked against the real plugins, each error
 * naming the config line and both ends of a link. */
#include "testutil.h"

#include <errno.h>

#include "topology.h"

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

TestSuite(topology, .init = setup, .fini = teardown);

struct built {
        struct config cfg;
        struct topology topo;
        struct diag d;
        int r;
};

static void build(struct built *b, const char *text)
{
        *b = (struct built){0};
        char *path = tu_write(dir, "t.conf", text);
        int r = config_load(path, &b->cfg, &b->d);
        free(path);
        cr_assert_eq(r, 0, "config itself should be valid: %s", b->d.n ? b->d.lines[0] : "");
        b->r = topology_build(&b->topo, &b->cfg, &reg, &b->d);
        for (size_t i = 0; i < b->d.n; i++)
                cr_log_info("diag: %s", b->d.lines[i]);
}

static void done(struct built *b)
{
        topology_free(&b->topo);
        config_free(&b->cfg);
        diag_free(&b->d);
}

static bool has(const struct built *b, const char *needle)
{
        for (size_t i = 0; i < b->d.n; i++)
                if (strstr(b->d.lines[i], needle))
                        return true;
        return false;
}

#define WORKERS "actord: { workers = ( { cpu = 0; } ); };\n"

Test(topology, demo_config_builds)
{
        struct built b = {0};
        const char *path = ACTORD_TEST_SOURCE_DIR "/conf/actord.conf";
        cr_assert_eq(config_load(path, &b.cfg, &b.d), 0);
        /* The demo names two CPUs; this only checks the wiring, so no CPU is needed here. */
        cr_assert_eq(topology_build(&b.topo, &b.cfg, &reg, &b.d), 0);
        cr_assert_eq(b.topo.n_comps, 5);
        cr_assert_eq(b.topo.n_chans, 3);
        done(&b);
}

Test(topology, wiring_types_and_placement)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  src = { class = \"core.tick\"; schedule = { every_us = 100; }; };\n"
                          "  f = { class = \"core.scale\"; settings = { factor = 2; }; };\n"
                          "  out = { class = \"core.log\"; };\n"
                          "};\n"
                          "links = ( \"src.out -> f.in\", { from = \"f.out\"; to = \"out.in\"; "
                          "capacity = 3; overflow = \"drop_new\"; } );\n");
        cr_assert_eq(b.r, 0);
        cr_assert_eq(b.topo.n_comps, 3);
        struct component *src = b.topo.comps[0], *f = b.topo.comps[1], *out = b.topo.comps[2];
        cr_assert_eq(src->n_out, 1);
        cr_assert_eq(src->n_in, 0);
        cr_assert_eq(f->n_in, 1);
        cr_assert_eq(f->n_out, 1);
        cr_assert_eq(src->out_peer[0], f);
        cr_assert_eq(f->out_peer[0], out);
        cr_assert_str_eq(f->in_type[0].name, "core.sample");
        cr_assert_eq(f->in_type[0].size, 24);
        cr_assert_eq(src->rule, ACTORD_RULE_PERIODIC);
        cr_assert_eq(src->period_ns, 100000);
        cr_assert_eq(f->rule, ACTORD_RULE_ON_MESSAGE, "the class's default rule");
        struct channel_stats st;
        channel_stats(&b.topo.chans[1], &st);
        cr_assert_eq(st.capacity, 4, "capacity rounds up to a power of two");
        cr_assert_eq(b.topo.chans[1].sh->policy, CHANNEL_DROP_NEW);
        done(&b);
}

Test(topology, unknown_class_suggests_the_closest)
{
        struct built b;
        build(&b, WORKERS "components: {\n  a = { class = \"core.tik\"; };\n};\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b, "t.conf:3: component 'a': unknown class 'core.tik'; did you mean "
                          "'core.tick'?"));
        done(&b);
}

Test(topology, type_mismatch_names_both_ends_and_types)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  b = { class = \"test.bytes\"; schedule = \"loop\"; };\n"
                          "  f = { class = \"core.scale\"; };\n"
                          "  l = { class = \"core.log\"; };\n"
                          "};\n"
                          "links = ( \"f.out -> l.in\",\n"
                          "          \"b.out -> f.in\" );\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b, "t.conf:8: link b.out -> f.in: type mismatch: b.out (test.bytes) sends "
                          "'test.bytes' (8 bytes) but f.in (core.scale) takes 'core.sample' (24 "
                          "bytes)"));
        cr_assert_eq(b.d.n, 1, "the other link is fine");
        done(&b);
}

Test(topology, unconnected_and_doubly_wired_ports)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  t = { class = \"core.tick\"; schedule = { every_us = 10; }; };\n"
                          "  u = { class = \"core.tick\"; schedule = { every_us = 10; }; };\n"
                          "  f = { class = \"core.scale\"; };\n"
                          "  l = { class = \"core.log\"; };\n"
                          "};\n"
                          "links = ( \"t.out -> l.in\",\n"
                          "          \"u.out -> l.in\" );\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b, "t.conf:9: link: input port l.in is wired twice: here and at "));
        cr_assert(has(&b, "t.conf:5: component 'f' (core.scale): input 'in' is not connected"));
        cr_assert(has(&b, "t.conf:5: component 'f' (core.scale): output 'out' is not "
                          "connected"));
        done(&b);
}

Test(topology, missing_components_and_ports)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  t = { class = \"core.tick\"; schedule = { every_us = 10; }; };\n"
                          "  l = { class = \"core.log\"; };\n"
                          "};\n"
                          "links = ( \"t.outt -> l.in\", \"t.out -> nope.in\",\n"
                          "          \"t.out -> l.in[2]\" );\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b, "t.conf:6: link: component 't' (core.tick) has no output port 'outt'; "
                          "did you mean 'out'?"));
        cr_assert(has(&b, "t.conf:6: link destination: no component named 'nope'"));
        cr_assert(has(&b, "t.conf:7: link: l.in[2]: 'l' is a sink, its input ports take no "
                          "index"));
        done(&b);
}

Test(topology, generic_ports_take_the_type_they_are_wired_to)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  b = { class = \"test.bytes\"; schedule = \"loop\"; };\n"
                          "  p1 = { class = \"test.pass\"; };\n"
                          "  p2 = { class = \"test.pass\"; };\n"
                          "  x = { class = \"test.failinit\"; };\n"
                          "};\n"
                          "links = ( \"p2.out -> x.in\", \"p1.out -> p2.in\", \"b.out -> p1.in\" "
                          ");\n");
        cr_assert_eq(b.r, 0);
        for (int i = 1; i < 4; i++) {
                cr_assert_str_eq(b.topo.comps[i]->in_type[0].name, "test.bytes");
                cr_assert_eq(b.topo.comps[i]->in_type[0].size, 8);
        }
        done(&b);
}

Test(topology, generic_ports_with_nothing_concrete_are_an_error)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  p = { class = \"test.pass\"; };\n"
                          "  x = { class = \"test.failinit\"; };\n"
                          "};\n"
                          "links = ( \"p.out -> x.in\" );\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b, "t.conf:6: link p.out -> x.in: both ends are generic ('*') and nothing "
                          "wired to them gives a type"));
        cr_assert(has(&b, "t.conf:3: component 'p' (test.pass): input 'in' is not connected"));
        done(&b);
}

Test(topology, a_component_type_gives_its_generic_ports_a_type)
{
        struct built b;
        /* nats.subscribe's output and test.failinit's input are both generic: `type` says. */
        build(&b, WORKERS "components: {\n"
                          "  s = { class = \"nats.subscribe\"; type = \"core.sample\";\n"
                          "        settings = { subject = \"x\"; }; };\n"
                          "  x = { class = \"test.failinit\"; };\n"
                          "};\n"
                          "links = ( \"s.out -> x.in\" );\n");
        cr_assert_eq(b.r, 0);
        cr_assert_str_eq(b.topo.comps[1]->in_type[0].name, "core.sample");
        cr_assert_eq(b.topo.comps[1]->in_type[0].size, 24, "the size core.sample is declared with");
        done(&b);
}

Test(topology, a_component_type_must_fit)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  t = { class = \"core.tick\"; type = \"core.sample\";\n"
                          "        schedule = { every_us = 1000; }; };\n"
                          "  c = { class = \"core.counter\"; };\n"
                          "  s = { class = \"nats.subscribe\"; type = \"no.such\";\n"
                          "        settings = { subject = \"x\"; }; };\n"
                          "  x = { class = \"test.failinit\"; };\n"
                          "  s2 = { class = \"nats.subscribe\"; type = \"test.bytes\";\n"
                          "        settings = { subject = \"y\"; }; };\n"
                          "  c2 = { class = \"core.scale\"; };\n"
                          "  c3 = { class = \"core.counter\"; };\n"
                          "};\n"
                          "links = ( \"t.out -> c.in\", \"s.out -> x.in\", \"s2.out -> c2.in\",\n"
                          "          \"c2.out -> c3.in\" );\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b,
                      "t.conf:3: component 't': type = \"core.sample\", but its class core.tick "
                      "has no generic port ('*') for it to apply to"));
        cr_assert(has(&b, "t.conf:6: component 's': type \"no.such\" is no port's type in the "
                          "loaded plugins"));
        /* A type given and a typed port wired to it disagree: the link says so. */
        cr_assert(has(&b, "link s2.out -> c2.in: type mismatch"));
        done(&b);
}

Test(topology, settings_are_checked_against_the_class)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  t = { class = \"core.tick\"; schedule = { every_us = 10; };\n"
                          "        settings = { count = \"ten\"; }; };\n"
                          "  f = { class = \"core.scale\"; settings = {\n"
                          "        factr = 2.0; }; };\n"
                          "  l = { class = \"core.log\"; };\n"
                          "};\n"
                          "links = ( \"t.out -> f.in\", \"f.out -> l.in\" );\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b, "t.conf:4: component 't': setting 'count' of class 'core.tick' must be "
                          "an integer"));
        cr_assert(has(&b, "t.conf:6: component 'f': class 'core.scale' has no setting 'factr'; "
                          "did you mean 'factor'?"));
        done(&b);
}

Test(topology, schedules_the_class_does_not_support_are_errors)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  t = { class = \"core.tick\"; };\n"
                          "  l = { class = \"core.log\"; schedule = \"loop\"; };\n"
                          "};\n"
                          "links = ( \"t.out -> l.in\" );\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b, "t.conf:3: component 't' is periodic and needs a period"));
        cr_assert(has(&b, "t.conf:4: component 'l': class 'core.log' does not support schedule "
                          "'loop' (supports: on_message, periodic)"));
        done(&b);
}

Test(topology, self_loops_are_errors)
{
        struct built b;
        build(&b, WORKERS "components: {\n"
                          "  f = { class = \"core.scale\"; };\n"
                          "};\n"
                          "links = ( \"f.out -> f.in\" );\n");
        cr_assert_eq(b.r, -EINVAL);
        cr_assert(has(&b, "t.conf:5: link f.out -> f.in: a component cannot feed itself"));
        done(&b);
}
