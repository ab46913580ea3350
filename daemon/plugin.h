/* Plugin loader and class registry: finds the .so files of the plugin directories, checks
 * each descriptor before running any of its code, and indexes the component classes. Does not
 * log: problems go to a struct diag, and a refused plugin does not stop the others. */
#ifndef ACTORD_PLUGIN_LOADER_H
#define ACTORD_PLUGIN_LOADER_H

#include <actord/plugin.h>

#include <stdbool.h>
#include <sys/stat.h>

#include "diag.h"

struct plugin {
        char *path;
        void *handle;
        const struct actord_plugin *desc;
        /* The file as it was when loaded: a reload compares it with what the path names now. */
        struct stat st;
        /* -1, or the descriptor the file was loaded through (/proc/self/fd/N) because another
         * version of it was already loaded under its path. Kept open while the plugin is. */
        int fd;
};

struct plugin_class {
        const struct actord_class *cls;
        int plugin_index; /* into plugin_registry.plugins */
};

struct plugin_registry {
        struct plugin *plugins;
        int n_plugins;
        struct plugin_class *classes;
        int n_classes;
        /* Load files and folders whatever their owner and mode (sshd's StrictModes off).
         * Default (false): refuse a plugin file, or its folder, that is writable by group or
         * others or owned by someone else than root or this process's user. */
        bool lax_modes;
        /* The registry of the running pipeline, when loading for a reload: a file unchanged
         * since then resolves to the same loaded code (so its components can keep running); a
         * file replaced since then is loaded again, as new code. */
        const struct plugin_registry *prev;
};

/* Loads every *.so in each of `dirs` (sorted by name, each file once). A file that cannot be
 * loaded or is malformed is reported in *d and skipped. A missing directory is reported.
 * Returns 0 (even with refused plugins: see d->n) or -ENOMEM. */
int plugin_registry_load(struct plugin_registry *reg, const char *const *dirs, int n_dirs,
                         struct diag *d);
/* Loads one file; 0, or a negative errno with the reason in *d: -ENOEXEC (not loadable or no
 * descriptor), -EPROTONOSUPPORT (other ABI major), -EINVAL (malformed descriptor or class),
 * -EEXIST (class name already registered by another file), -EPERM (unsafe owner or mode,
 * see lax_modes), -EBUSY (reloading: the file was rewritten in place since prev loaded it). */
int plugin_registry_load_file(struct plugin_registry *reg, const char *path, struct diag *d);
void plugin_registry_free(struct plugin_registry *reg);

const struct plugin_class *plugin_registry_find(const struct plugin_registry *reg,
                                                const char *class_name);

const char *plugin_shape_to_string(enum actord_shape s);
const char *plugin_rule_to_string(enum actord_rule r);

#endif
