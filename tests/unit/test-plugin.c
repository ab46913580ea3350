/* plugin.c: discovery, ABI checks and the class registry, on real .so files. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "plugin.h"

#define TP ACTORD_TEST_TESTPLUGIN_DIR

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

Test(plugin, core_plugin_loads_with_its_classes)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        const char *dirs[] = {ACTORD_TEST_PLUGIN_DIR};
        cr_assert_eq(plugin_registry_load(&reg, dirs, 1, &d), 0);
        dump(&d);
        cr_assert_eq(d.n, 0);
        /* The bundled ones, in file name order: core.so, nats.so. */
        cr_assert_eq(reg.n_plugins, 2);
        cr_assert_str_eq(reg.plugins[0].desc->name, "core");
        cr_assert_str_eq(reg.plugins[1].desc->name, "nats");
        cr_assert_not_null(plugin_registry_find(&reg, "nats.publish"));
        cr_assert_not_null(plugin_registry_find(&reg, "nats.subscribe"));
        const char *names[] = {"core.tick", "core.scale", "core.log", "core.counter"};
        const enum actord_shape shapes[] = {ACTORD_SHAPE_SOURCE, ACTORD_SHAPE_FILTER,
                                            ACTORD_SHAPE_SINK, ACTORD_SHAPE_SINK};
        for (int i = 0; i < 4; i++) {
                const struct plugin_class *pc = plugin_registry_find(&reg, names[i]);
                cr_assert_not_null(pc, "%s missing", names[i]);
                cr_assert_eq(pc->cls->shape, shapes[i]);
                cr_assert_eq(pc->plugin_index, 0);
        }
        cr_assert_null(plugin_registry_find(&reg, "core.nope"));
        plugin_registry_free(&reg);
}

Test(plugin, other_abi_major_is_refused_naming_file_and_versions)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        int r = plugin_registry_load_file(&reg, TP "/badabi/badabi.so", &d);
        dump(&d);
        cr_assert_eq(r, -EPROTONOSUPPORT);
        char want[256];
        snprintf(want, sizeof(want),
                 TP "/badabi/badabi.so: plugin ABI 99.0 is not supported by this actord (ABI "
                    "%d.%d)",
                 ACTORD_ABI_MAJOR, ACTORD_ABI_MINOR);
        cr_assert(diag_has(&d, want), "%s", want);
        cr_assert_eq(reg.n_plugins, 0);
        diag_free(&d);
}

Test(plugin, a_library_without_descriptor_is_refused)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load_file(&reg, TP "/nosym/nosym.so", &d), -ENOEXEC);
        cr_assert(diag_has(&d, TP "/nosym/nosym.so: not an actord plugin: no symbol "
                                  "'actord_plugin_v1'"));
        diag_free(&d);
}

Test(plugin, a_file_that_is_not_a_library_is_refused)
{
        char *dir = tu_tmpdir();
        char *path = tu_write(dir, "junk.so", "this is not ELF\n");
        struct plugin_registry reg = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load_file(&reg, path, &d), -ENOEXEC);
        cr_assert_eq(d.n, 1);
        cr_assert(strstr(d.lines[0], path) && strstr(d.lines[0], "cannot load plugin"), "%s",
                  d.lines[0]);
        diag_free(&d);
        tu_rmrf(dir);
        free(path);
        free(dir);
}

Test(plugin, ports_inconsistent_with_shape_are_refused)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load_file(&reg, TP "/badshape/badshape.so", &d), -EINVAL);
        dump(&d);
        cr_assert(diag_has(&d, "badshape.so: class 'bad.filter' is a filter, which declares 1 "
                               "input and 1 output ports, but it declares 1 and 0"));
        diag_free(&d);
}

Test(plugin, duplicate_class_names_both_files_and_the_rest_still_loads)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        const char *dirs[] = {ACTORD_TEST_PLUGIN_DIR, TP "/dupclass", TP "/badabi", TP "/testkit"};
        cr_assert_eq(plugin_registry_load(&reg, dirs, 4, &d), 0);
        dump(&d);
        cr_assert_eq(d.n, 2);
        cr_assert(diag_has(&d, TP "/dupclass/dupclass.so: class 'core.tick' is already defined "
                                  "by " ACTORD_TEST_PLUGIN_DIR "/core.so"));
        cr_assert(diag_has(&d, "badabi.so: plugin ABI 99.0"));
        cr_assert_eq(reg.n_plugins, 3, "core, nats and testkit load despite the refused ones");
        cr_assert_not_null(plugin_registry_find(&reg, "test.pass"));
        cr_assert_eq(reg.plugins[plugin_registry_find(&reg, "core.tick")->plugin_index].desc,
                     reg.plugins[0].desc);
        plugin_registry_free(&reg);
        diag_free(&d);
}

Test(plugin, the_same_file_through_two_paths_loads_once)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        const char *dirs[] = {ACTORD_TEST_PLUGIN_DIR, ACTORD_TEST_PLUGIN_DIR "/."};
        cr_assert_eq(plugin_registry_load(&reg, dirs, 2, &d), 0);
        cr_assert_eq(d.n, 0);
        cr_assert_eq(reg.n_plugins, 2, "core.so and nats.so, once each");
        plugin_registry_free(&reg);
}

Test(plugin, a_missing_directory_is_reported)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        const char *dirs[] = {"/nonexistent/plugins"};
        cr_assert_eq(plugin_registry_load(&reg, dirs, 1, &d), 0);
        cr_assert(diag_has(&d, "/nonexistent/plugins: cannot open plugin directory"));
        diag_free(&d);
}

/* Copies the core plugin into a fresh folder with the given modes; returns the file's path. */
static char *copy_core(const char *dir, mode_t dir_mode, mode_t file_mode)
{
        char *path, *cmd;
        cr_assert(asprintf(&path, "%s/core.so", dir) > 0);
        cr_assert(asprintf(&cmd, "cp '%s/core.so' '%s'", ACTORD_TEST_PLUGIN_DIR, path) > 0);
        cr_assert_eq(system(cmd), 0);
        free(cmd);
        cr_assert_eq(chmod(path, file_mode), 0);
        cr_assert_eq(chmod(dir, dir_mode), 0);
        return path;
}

Test(plugin, files_writable_by_others_are_refused)
{
        char *dir = tu_tmpdir();
        char *path = copy_core(dir, 0755, 0666);
        struct plugin_registry reg = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load_file(&reg, path, &d), -EPERM);
        dump(&d);
        cr_assert(diag_has(&d, "core.so: refusing to load: the file "));
        cr_assert(diag_has(&d, "is writable by others (mode 0666); run chmod go-w on it, or set "
                               "actord.plugin_strict_modes = false"));
        cr_assert_eq(reg.n_plugins, 0);
        diag_free(&d);

        /* The configuration may allow it. */
        reg.lax_modes = true;
        cr_assert_eq(plugin_registry_load_file(&reg, path, &d), 0);
        cr_assert_eq(reg.n_plugins, 1);
        plugin_registry_free(&reg);
        tu_rmrf(dir);
        free(path);
        free(dir);
}

Test(plugin, folders_writable_by_the_group_are_refused)
{
        char *dir = tu_tmpdir();
        char *path = copy_core(dir, 0775, 0755);
        struct plugin_registry reg = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load_file(&reg, path, &d), -EPERM);
        dump(&d);
        cr_assert(diag_has(&d, "refusing to load: the folder "));
        cr_assert(diag_has(&d, "is writable by its group (mode 0775)"));
        diag_free(&d);
        tu_rmrf(dir);
        free(path);
        free(dir);
}

/* A later minor version appends fields to the descriptors: its plugin loads, read up to this
 * header's fields. One shorter than ABI 1.0's is refused with both sizes. */
Test(plugin, descriptors_of_a_later_minor_load_and_short_ones_are_refused)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load_file(&reg, TP "/sizes_later/sizes.so", &d), 0);
        dump(&d);
        cr_assert_eq(d.n, 0);
        const struct plugin_class *pc = plugin_registry_find(&reg, "sizes.later");
        cr_assert_not_null(pc);
        cr_assert_gt(pc->cls->struct_size, sizeof(struct actord_class));
        cr_assert_eq(reg.plugins[0].desc->abi_minor, ACTORD_ABI_MINOR + 1);
        plugin_registry_free(&reg);

        struct plugin_registry reg2 = {0};
        cr_assert_eq(plugin_registry_load_file(&reg2, TP "/sizes_short/sizes.so", &d), -EINVAL);
        dump(&d);
        char want[160];
        snprintf(want, sizeof(want),
                 "sizes.so: a class descriptor is %zu bytes, smaller than ABI %d.0's %zu",
                 offsetof(struct actord_class, format), ACTORD_ABI_MAJOR,
                 sizeof(struct actord_class));
        cr_assert(diag_has(&d, want), "no '%s'", want);
        cr_assert_null(plugin_registry_find(&reg2, "sizes.short"));
        diag_free(&d);
        plugin_registry_free(&reg2);
}

Test(plugin, unknown_shapes_are_refused)
{
        struct plugin_registry reg = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load_file(&reg, TP "/unknownshape/unknownshape.so", &d),
                     -EINVAL);
        dump(&d);
        cr_assert(diag_has(&d, "unknownshape.so: class 'bad.shape' has unknown shape 99"));
        diag_free(&d);
}

Test(plugin, files_owned_by_another_user_are_refused)
{
        char *dir = tu_tmpdir();
        char *path = copy_core(dir, 0755, 0755);
        if (chown(path, 65534, 65534) < 0) {
                tu_rmrf(dir);
                cr_skip_test("changing a file's owner needs root");
        }
        struct plugin_registry reg = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load_file(&reg, path, &d), -EPERM);
        dump(&d);
        cr_assert(diag_has(&d, "is owned by uid 65534, neither root nor actord's user"));
        diag_free(&d);
        tu_rmrf(dir);
        free(path);
        free(dir);
}

/* Copies `from` into dir as name.so through a temporary name (a new file, as install(1)). */
static void put(const char *dir, const char *from, const char *name)
{
        char *cmd;
        cr_assert(asprintf(&cmd,
                           "cp '%s' '%s/.tmp' && chmod 0644 '%s/.tmp' && mv '%s/.tmp' '%s/%s'",
                           from, dir, dir, dir, dir, name) > 0);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
        free(cmd);
}

static const struct actord_class *version_class(const struct plugin_registry *reg)
{
        const struct plugin_class *pc = plugin_registry_find(reg, "test.version");
        cr_assert_not_null(pc);
        return pc->cls;
}

/* Reloading against the running registry: an unchanged file is the same loaded code, a file
 * replaced by a new one is loaded again as new code (beside the old, still loaded), and a
 * file rewritten in place is refused. */
Test(plugin, reloading_keeps_unchanged_code_and_loads_replaced_files_again)
{
        char *dir = tu_tmpdir();
        put(dir, TP "/version1/version.so", "version.so");
        const char *dirs[] = {dir};
        struct plugin_registry r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
        struct diag d = {0};
        cr_assert_eq(plugin_registry_load(&r1, dirs, 1, &d), 0);
        cr_assert_eq(d.n, 0);

        r2.prev = &r1;
        cr_assert_eq(plugin_registry_load(&r2, dirs, 1, &d), 0);
        cr_assert_eq(d.n, 0);
        cr_assert_eq(version_class(&r2), version_class(&r1), "unchanged: the same code");

        put(dir, TP "/version2/version.so", "version.so");
        r3.prev = &r2;
        cr_assert_eq(plugin_registry_load(&r3, dirs, 1, &d), 0);
        dump(&d);
        cr_assert_eq(d.n, 0);
        cr_assert_neq(version_class(&r3), version_class(&r2), "replaced: new code");
        cr_assert_str_eq(r3.plugins[0].path, r2.plugins[0].path, "known by its own path");
        /* Both versions are loaded and usable side by side until the old registry goes. */
        cr_assert_str_eq(version_class(&r2)->name, version_class(&r3)->name);
        plugin_registry_free(&r1);
        plugin_registry_free(&r2);

        char *so;
        cr_assert(asprintf(&so, "%s/version.so", dir) > 0);
        struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 1000000000}};
        cr_assert_eq(utimensat(AT_FDCWD, so, times, 0), 0);
        r4.prev = &r3;
        cr_assert_eq(plugin_registry_load(&r4, dirs, 1, &d), 0);
        dump(&d);
        cr_assert(diag_has(&d, "version.so: plugin file was rewritten in place while loaded"));
        cr_assert_eq(r4.n_plugins, 0);
        plugin_registry_free(&r3);
        plugin_registry_free(&r4);
        diag_free(&d);
        tu_rmrf(dir);
        free(so);
        free(dir);
}
