/* Plugin discovery, ABI check and class registry. */
#define _GNU_SOURCE
#include "plugin.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *plugin_shape_to_string(enum actord_shape s)
{
        switch (s) {
        case ACTORD_SHAPE_SOURCE:
                return "source";
        case ACTORD_SHAPE_SINK:
                return "sink";
        case ACTORD_SHAPE_FILTER:
                return "filter";
        case ACTORD_SHAPE_SCATTER:
                return "scatter";
        case ACTORD_SHAPE_GATHER:
                return "gather";
        case ACTORD_SHAPE_YSPLIT:
                return "ysplit";
        case ACTORD_SHAPE_YMERGE:
                return "ymerge";
        }
        return "?";
}

const char *plugin_rule_to_string(enum actord_rule r)
{
        switch (r) {
        case ACTORD_RULE_LOOP:
                return "loop";
        case ACTORD_RULE_ON_MESSAGE:
                return "on_message";
        case ACTORD_RULE_PERIODIC:
                return "periodic";
        case ACTORD_RULE_ON_EVENT:
                return "on_event";
        }
        return "?";
}

/* Ports each shape declares: inputs, outputs. */
static const struct {
        uint32_t in, out;
} shape_ports[] = {
    [ACTORD_SHAPE_SOURCE] = {0, 1},  [ACTORD_SHAPE_SINK] = {1, 0},   [ACTORD_SHAPE_FILTER] = {1, 1},
    [ACTORD_SHAPE_SCATTER] = {1, 1}, [ACTORD_SHAPE_GATHER] = {1, 1}, [ACTORD_SHAPE_YSPLIT] = {1, 2},
    [ACTORD_SHAPE_YMERGE] = {2, 1},
};

static bool valid_name(const char *s, bool dotted)
{
        if (!s || !*s)
                return false;
        int dots = 0;
        for (const char *p = s; *p; p++) {
                if (*p == '.')
                        dots++;
                else if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                        return false;
        }
        return dotted ? dots == 1 && s[0] != '.' && s[strlen(s) - 1] != '.' : dots == 0;
}

static bool check_ports(const char *path, const struct actord_class *c, bool output, struct diag *d)
{
        const struct actord_port *ports = output ? c->outputs : c->inputs;
        uint32_t n = output ? c->n_outputs : c->n_inputs;
        const char *dir = output ? "output" : "input";
        if (n && !ports) {
                diag_add(d, path, 0, "class '%s' declares %u %s ports but no port array", c->name,
                         n, dir);
                return false;
        }
        for (uint32_t i = 0; i < n; i++) {
                const struct actord_port *p = &ports[i];
                if (!valid_name(p->name, false) || !p->type || !*p->type) {
                        diag_add(d, path, 0, "class '%s': %s port %u has no valid name or type",
                                 c->name, dir, i);
                        return false;
                }
                bool generic = !strcmp(p->type, ACTORD_TYPE_GENERIC);
                if (!generic && (p->size == 0 || p->size > (1u << 20))) {
                        diag_add(d, path, 0,
                                 "class '%s': %s port '%s' of type '%s' has size %u "
                                 "(expected 1 .. 1048576 bytes)",
                                 c->name, dir, p->name, p->type, p->size);
                        return false;
                }
                for (uint32_t j = 0; j < i; j++)
                        if (!strcmp(ports[j].name, p->name)) {
                                diag_add(d, path, 0, "class '%s': two %s ports named '%s'", c->name,
                                         dir, p->name);
                                return false;
                        }
        }
        return true;
}

/* The descriptors' sizes in ABI 1.0, the smallest this daemon reads: a later minor version
 * appends fields, which are read only where struct_size covers them (plugin.h). Every field
 * of both is 1.0's so far. */
#define CLASS_SIZE_1_0                                                                             \
        (offsetof(struct actord_class, format) + sizeof(((struct actord_class *)0)->format))
#define PLUGIN_SIZE_1_0                                                                            \
        (offsetof(struct actord_plugin, n_classes) + sizeof(((struct actord_plugin *)0)->n_classes))

static bool check_class(const char *path, const struct actord_class *c, struct diag *d)
{
        if (c->struct_size < CLASS_SIZE_1_0) {
                diag_add(d, path, 0,
                         "a class descriptor is %u bytes, smaller than ABI %d.0's %zu: "
                         "rebuild the plugin against this actord's plugin.h",
                         c->struct_size, ACTORD_ABI_MAJOR, CLASS_SIZE_1_0);
                return false;
        }
        if (!valid_name(c->name, true)) {
                diag_add(d, path, 0, "class name '%s' is not of the form family.name",
                         c->name ? c->name : "(null)");
                return false;
        }
        if (c->shape < ACTORD_SHAPE_SOURCE || c->shape > ACTORD_SHAPE_YMERGE) {
                diag_add(d, path, 0, "class '%s' has unknown shape %d", c->name, (int)c->shape);
                return false;
        }
        uint32_t want_in = shape_ports[c->shape].in, want_out = shape_ports[c->shape].out;
        if (c->n_inputs != want_in || c->n_outputs != want_out) {
                diag_add(d, path, 0,
                         "class '%s' is a %s, which declares %u input and %u output ports, but "
                         "it declares %u and %u",
                         c->name, plugin_shape_to_string(c->shape), want_in, want_out, c->n_inputs,
                         c->n_outputs);
                return false;
        }
        if (!check_ports(path, c, false, d) || !check_ports(path, c, true, d))
                return false;
        /* A y-split's two outputs, and a y-merge's two inputs, carry different types (else it
         * is a scatter or a gather). */
        const struct actord_port *pair = c->shape == ACTORD_SHAPE_YSPLIT   ? c->outputs
                                         : c->shape == ACTORD_SHAPE_YMERGE ? c->inputs
                                                                           : NULL;
        if (pair && !strcmp(pair[0].type, pair[1].type) &&
            strcmp(pair[0].type, ACTORD_TYPE_GENERIC)) {
                diag_add(d, path, 0,
                         "class '%s' is a %s, whose two %s ports carry different types, but "
                         "both '%s' and '%s' are '%s'",
                         c->name, plugin_shape_to_string(c->shape),
                         c->shape == ACTORD_SHAPE_YSPLIT ? "output" : "input", pair[0].name,
                         pair[1].name, pair[0].type);
                return false;
        }
        const uint32_t all =
            ACTORD_RULE_LOOP | ACTORD_RULE_ON_MESSAGE | ACTORD_RULE_PERIODIC | ACTORD_RULE_ON_EVENT;
        if (!c->rules || (c->rules & ~all) || !(c->rules & (uint32_t)c->default_rule) ||
            __builtin_popcount((unsigned)c->default_rule) != 1) {
                diag_add(d, path, 0,
                         "class '%s': rules 0x%x / default rule 0x%x are not a valid set and "
                         "one of its members",
                         c->name, c->rules, (unsigned)c->default_rule);
                return false;
        }
        if ((c->rules & ACTORD_RULE_ON_MESSAGE) && c->n_inputs == 0) {
                diag_add(d, path, 0, "class '%s' supports on_message but has no input", c->name);
                return false;
        }
        if (!c->process) {
                diag_add(d, path, 0, "class '%s' has no process callback", c->name);
                return false;
        }
        if (c->n_settings && !c->settings) {
                diag_add(d, path, 0, "class '%s' declares settings but no array", c->name);
                return false;
        }
        for (uint32_t i = 0; i < c->n_settings; i++) {
                const struct actord_setting *s = &c->settings[i];
                if (!valid_name(s->name, false) || s->type < ACTORD_SETTING_INT ||
                    s->type > ACTORD_SETTING_STRING) {
                        diag_add(d, path, 0, "class '%s': setting %u is malformed", c->name, i);
                        return false;
                }
        }
        return true;
}

/* Loading code is a privilege: whoever can write a plugin, or replace it in its folder, runs
 * code as the daemon. */
static bool safe_owner_mode(const char *what, const char *path, const char *shown, struct diag *d)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                diag_add(d, shown, 0, "cannot check the %s %s: %s", what, path, strerror(errno));
                return false;
        }
        if (st.st_uid != 0 && st.st_uid != geteuid()) {
                diag_add(d, shown, 0,
                         "refusing to load: the %s %s is owned by uid %u, neither root nor "
                         "actord's user (uid %u); set actord.plugin_strict_modes = false to "
                         "allow it",
                         what, path, (unsigned)st.st_uid, (unsigned)geteuid());
                return false;
        }
        if (st.st_mode & (S_IWGRP | S_IWOTH)) {
                diag_add(d, shown, 0,
                         "refusing to load: the %s %s is writable by %s (mode %04o); run chmod "
                         "go-w on it, or set actord.plugin_strict_modes = false",
                         what, path, (st.st_mode & S_IWOTH) ? "others" : "its group",
                         (unsigned)(st.st_mode & 07777));
                return false;
        }
        return true;
}

static bool safe_location(const char *path, struct diag *d)
{
        char *real = realpath(path, NULL);
        if (!real) {
                diag_add(d, path, 0, "cannot resolve the plugin's path: %s", strerror(errno));
                return false;
        }
        bool ok = safe_owner_mode("file", real, path, d);
        char *slash = strrchr(real, '/');
        if (ok && slash) {
                *slash = 0;
                ok = safe_owner_mode("folder", real[0] ? real : "/", path, d);
        }
        free(real);
        return ok;
}

static int add_plugin(struct plugin_registry *reg, struct plugin *p)
{
        struct plugin *np = realloc(reg->plugins, (size_t)(reg->n_plugins + 1) * sizeof(*np));
        if (!np)
                return -ENOMEM;
        reg->plugins = np;
        reg->plugins[reg->n_plugins++] = *p;
        return 0;
}

int plugin_registry_load_file(struct plugin_registry *reg, const char *path, struct diag *d)
{
        /* RTLD_LOCAL: plugins cannot see each other's symbols. RTLD_NOW: an unresolved symbol
         * is an error now, not a crash later. A plugin has no constructors by convention;
         * dlopen would run them before we can check anything. */
        if (!reg->lax_modes && !safe_location(path, d))
                return -EPERM;
        struct stat st;
        if (stat(path, &st) < 0) {
                diag_add(d, path, 0, "cannot load plugin: %s", strerror(errno));
                return -ENOEXEC;
        }
        const struct plugin *old = NULL;
        for (int i = 0; reg->prev && i < reg->prev->n_plugins && !old; i++)
                if (!strcmp(reg->prev->plugins[i].path, path))
                        old = &reg->prev->plugins[i];
        bool replaced = old && (old->st.st_dev != st.st_dev || old->st.st_ino != st.st_ino);
        if (old && !replaced &&
            (old->st.st_size != st.st_size || old->st.st_mtim.tv_sec != st.st_mtim.tv_sec ||
             old->st.st_mtim.tv_nsec != st.st_mtim.tv_nsec)) {
                /* The loader knows a file by its inode: the new bytes cannot be loaded beside
                 * the old ones, and writing over mapped code may already have corrupted it. */
                diag_add(d, path, 0,
                         "plugin file was rewritten in place while loaded; replace it with a new "
                         "file instead (install(1), or cp to a temporary name then mv), then "
                         "reload");
                return -EBUSY;
        }
        /* dlopen finds an already loaded object by its name first: a file replaced under the
         * same path must be opened under another name to get the new code. */
        int fd = -1;
        char fdpath[64];
        const char *open_path = path;
        if (replaced) {
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 || fstat(fd, &st) < 0) {
                        diag_add(d, path, 0, "cannot load plugin: %s", strerror(errno));
                        if (fd >= 0)
                                close(fd);
                        return -ENOEXEC;
                }
                snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
                open_path = fdpath;
        }
        void *h = dlopen(open_path, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
                const char *why = dlerror();
                /* The loader names what it opened: say the file's path, not the descriptor. */
                size_t n = strlen(open_path);
                if (fd >= 0 && !strncmp(why, open_path, n))
                        diag_add(d, path, 0, "cannot load plugin: %s%s", path, why + n);
                else
                        diag_add(d, path, 0, "cannot load plugin: %s", why);
                if (fd >= 0)
                        close(fd);
                return -ENOEXEC;
        }
        const struct actord_plugin *desc = dlsym(h, ACTORD_PLUGIN_SYMBOL_NAME);
        int r = 0;
        if (!desc) {
                diag_add(d, path, 0, "not an actord plugin: no symbol '%s'",
                         ACTORD_PLUGIN_SYMBOL_NAME);
                r = -ENOEXEC;
        } else if (desc->abi_major != ACTORD_ABI_MAJOR) {
                diag_add(d, path, 0,
                         "plugin ABI %u.%u is not supported by this actord (ABI %d.%d): rebuild "
                         "the plugin against this actord's plugin.h",
                         desc->abi_major, desc->abi_minor, ACTORD_ABI_MAJOR, ACTORD_ABI_MINOR);
                r = -EPROTONOSUPPORT;
        } else if (desc->struct_size < PLUGIN_SIZE_1_0) {
                diag_add(d, path, 0, "plugin descriptor is %u bytes, expected at least %zu",
                         desc->struct_size, PLUGIN_SIZE_1_0);
                r = -EINVAL;
        } else if (!desc->name || !desc->version || (desc->n_classes && !desc->classes)) {
                diag_add(d, path, 0, "plugin descriptor lacks a name, version or classes");
                r = -EINVAL;
        }
        for (uint32_t i = 0; r == 0 && i < desc->n_classes; i++) {
                if (!desc->classes[i] || !check_class(path, desc->classes[i], d))
                        r = -EINVAL;
        }
        /* Class names are unique across all plugins. */
        for (uint32_t i = 0; r == 0 && i < desc->n_classes; i++) {
                const struct plugin_class *other =
                    plugin_registry_find(reg, desc->classes[i]->name);
                if (other) {
                        diag_add(d, path, 0, "class '%s' is already defined by %s",
                                 desc->classes[i]->name, reg->plugins[other->plugin_index].path);
                        r = -EEXIST;
                }
                for (uint32_t j = 0; r == 0 && j < i; j++)
                        if (!strcmp(desc->classes[j]->name, desc->classes[i]->name)) {
                                diag_add(d, path, 0, "class '%s' is defined twice in this file",
                                         desc->classes[i]->name);
                                r = -EEXIST;
                        }
        }
        if (r == 0 && replaced && desc == old->desc) {
                diag_add(d, path, 0,
                         "cannot load the new version of the plugin: the loader "
                         "returned the one already running");
                r = -EBUSY;
        }
        if (r < 0) {
                dlclose(h);
                if (fd >= 0)
                        close(fd);
                return r;
        }
        struct plugin p = {.path = strdup(path), .handle = h, .desc = desc, .st = st, .fd = fd};
        struct plugin_class *nc = realloc(
            reg->classes, (size_t)(reg->n_classes + (int)desc->n_classes + 1) * sizeof(*nc));
        if (nc)
                reg->classes = nc;
        if (!p.path || !nc || add_plugin(reg, &p) < 0) {
                free(p.path);
                dlclose(h);
                if (fd >= 0)
                        close(fd);
                return -ENOMEM;
        }
        for (uint32_t i = 0; i < desc->n_classes; i++)
                reg->classes[reg->n_classes++] = (struct plugin_class){
                    .cls = desc->classes[i], .plugin_index = reg->n_plugins - 1};
        return 0;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int plugin_registry_load(struct plugin_registry *reg, const char *const *dirs, int n_dirs,
                         struct diag *d)
{
        /* Files already seen, by device and inode: a file reachable by two paths loads once. */
        struct stat *seen = NULL;
        int n_seen = 0;
        for (int i = 0; i < n_dirs; i++) {
                DIR *dir = opendir(dirs[i]);
                if (!dir) {
                        diag_add(d, dirs[i], 0, "cannot open plugin directory: %s",
                                 strerror(errno));
                        continue;
                }
                char **names = NULL;
                size_t n = 0;
                struct dirent *e;
                while ((e = readdir(dir))) {
                        size_t len = strlen(e->d_name);
                        if (len < 4 || strcmp(e->d_name + len - 3, ".so") || e->d_name[0] == '.')
                                continue;
                        char **nn = realloc(names, (n + 1) * sizeof(*nn));
                        if (!nn)
                                break;
                        names = nn;
                        if (asprintf(&names[n], "%s/%s", dirs[i], e->d_name) >= 0)
                                n++;
                }
                closedir(dir);
                qsort(names, n, sizeof(*names), cmp_str);
                for (size_t k = 0; k < n; k++) {
                        struct stat st;
                        bool dup = false;
                        if (stat(names[k], &st) == 0) {
                                for (int s = 0; s < n_seen && !dup; s++)
                                        dup = seen[s].st_dev == st.st_dev &&
                                              seen[s].st_ino == st.st_ino;
                                struct stat *ns =
                                    dup ? seen
                                        : realloc(seen, (size_t)(n_seen + 1) * sizeof(*seen));
                                if (!ns) {
                                        for (; k < n; k++)
                                                free(names[k]);
                                        free(names);
                                        free(seen);
                                        return -ENOMEM;
                                }
                                seen = ns;
                                if (!dup)
                                        seen[n_seen++] = st;
                        }
                        if (!dup && plugin_registry_load_file(reg, names[k], d) == -ENOMEM) {
                                for (; k < n; k++)
                                        free(names[k]);
                                free(names);
                                free(seen);
                                return -ENOMEM;
                        }
                        free(names[k]);
                }
                free(names);
        }
        free(seen);
        return 0;
}

void plugin_registry_free(struct plugin_registry *reg)
{
        for (int i = 0; i < reg->n_plugins; i++) {
                dlclose(reg->plugins[i].handle);
                if (reg->plugins[i].fd >= 0)
                        close(reg->plugins[i].fd);
                free(reg->plugins[i].path);
        }
        free(reg->plugins);
        free(reg->classes);
        *reg = (struct plugin_registry){0};
}

const struct plugin_class *plugin_registry_find(const struct plugin_registry *reg,
                                                const char *class_name)
{
        for (int i = 0; i < reg->n_classes; i++)
                if (!strcmp(reg->classes[i].cls->name, class_name))
                        return &reg->classes[i];
        return NULL;
}
