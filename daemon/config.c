/* actord.conf -> struct config. Reports every problem it finds, each with file:line. */
#define _GNU_SOURCE
#include "config.h"

#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <actord/plugin.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *const top_keys[] = {"actord", "components", "links"};
#define RESTART_KEYS "restart", "max_restarts", "restart_window_s", "backoff_ms", "on_failure"
static const char *const actord_keys[] = {
    "plugin_dirs",      "plugin_strict_modes", "stall_ms",      "workers",   "metrics_listen",
    "metrics_tls_cert", "metrics_tls_key",     "metrics_users", RESTART_KEYS};
static const char *const worker_keys[] = {"cpu", "idle", "spin_us"};
static const char *const component_keys[] = {"class",    "schedule", "worker",
                                             "settings", "type",     RESTART_KEYS};
static const char *const schedule_keys[] = {"every_us"};
static const char *const link_keys[] = {"from", "to", "capacity", "overflow"};

struct loader {
        struct config *c;
        struct diag *d;
        int errors;
};

static const char *src_file(const struct loader *l, const config_setting_t *s)
{
        const char *f = config_setting_source_file(s);
        return f ? f : l->c->path;
}

#define ERR(l, s, ...)                                                                             \
        do {                                                                                       \
                diag_add((l)->d, src_file((l), (s)), config_setting_source_line(s), __VA_ARGS__);  \
                (l)->errors++;                                                                     \
        } while (0)

static const char *type_name(int type)
{
        switch (type) {
        case CONFIG_TYPE_GROUP:
                return "a group { ... }";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a number";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_ARRAY:
                return "an array [ ... ]";
        case CONFIG_TYPE_LIST:
                return "a list ( ... )";
        }
        return "a value";
}

/* Unknown keys are errors, with the closest known key as a suggestion. */
static void check_keys(struct loader *l, const config_setting_t *group, const char *where,
                       const char *const *keys, size_t n)
{
        for (int i = 0; i < config_setting_length(group); i++) {
                const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
                const char *name = config_setting_name(m);
                bool known = false;
                for (size_t k = 0; k < n && !known; k++)
                        known = !strcmp(name, keys[k]);
                if (known)
                        continue;
                const char *hint = diag_suggest(name, keys, n);
                if (hint)
                        ERR(l, m, "unknown key '%s' in %s; did you mean '%s'?", name, where, hint);
                else
                        ERR(l, m, "unknown key '%s' in %s", name, where);
        }
}

static bool expect_type(struct loader *l, const config_setting_t *s, const char *what, int type)
{
        int t = config_setting_type(s);
        if (t == type || (type == CONFIG_TYPE_INT && t == CONFIG_TYPE_INT64))
                return true;
        ERR(l, s, "%s must be %s, not %s", what, type_name(type), type_name(t));
        return false;
}

static bool get_int(struct loader *l, const config_setting_t *s, const char *what, long long min,
                    long long max, long long *ret)
{
        if (!expect_type(l, s, what, CONFIG_TYPE_INT))
                return false;
        long long v = config_setting_get_int64(s);
        if (v < min || v > max) {
                ERR(l, s, "%s is %lld, out of range [%lld, %lld]", what, v, min, max);
                return false;
        }
        *ret = v;
        return true;
}

int config_parse_endpoint(const char *s, struct config_endpoint *ret)
{
        const char *dot = strchr(s, '.');
        if (!dot || dot == s || !dot[1])
                return -EINVAL;
        const char *port = dot + 1;
        size_t plen = strcspn(port, "[");
        int index = -1;
        if (port[plen] == '[') {
                char *end;
                errno = 0;
                long v = strtol(port + plen + 1, &end, 10);
                if (errno || end == port + plen + 1 || v < 0 || v > 65535 || strcmp(end, "]"))
                        return -EINVAL;
                index = (int)v;
        }
        if (plen == 0)
                return -EINVAL;
        for (const char *p = s; p < dot; p++)
                if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
                        return -EINVAL;
        for (const char *p = port; p < port + plen; p++)
                if (!isalnum((unsigned char)*p) && *p != '_')
                        return -EINVAL;
        char *comp = strndup(s, (size_t)(dot - s));
        char *pname = strndup(port, plen);
        if (!comp || !pname) {
                free(comp);
                free(pname);
                return -ENOMEM;
        }
        *ret = (struct config_endpoint){.component = comp, .port = pname, .index = index};
        return 0;
}

void config_endpoint_free(struct config_endpoint *e)
{
        free(e->component);
        free(e->port);
        e->component = e->port = NULL;
}

const char *config_idle_to_string(enum idle_policy p)
{
        switch (p) {
        case IDLE_SLEEP:
                return "sleep";
        case IDLE_SPIN:
                return "spin";
        case IDLE_ADAPTIVE:
                return "adaptive";
        }
        return "?";
}

static void load_plugin_dirs(struct loader *l, const config_setting_t *s, const char *base)
{
        if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
            config_setting_type(s) != CONFIG_TYPE_LIST) {
                ERR(l, s, "plugin_dirs must be an array of strings, e.g. [ \"plugins\" ]");
                return;
        }
        int n = config_setting_length(s);
        l->c->plugin_dirs = calloc((size_t)n + 1, sizeof(char *));
        if (!l->c->plugin_dirs) {
                l->errors++;
                return;
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING) {
                        ERR(l, s, "plugin_dirs[%d] must be a string", i);
                        continue;
                }
                const char *dir = config_setting_get_string(e);
                char *full = NULL;
                if (dir[0] == '/' || asprintf(&full, "%s/%s", base, dir) < 0)
                        full = strdup(dir);
                l->c->plugin_dirs[l->c->n_plugin_dirs++] = full;
        }
}

int config_parse_listen(const char *s, char *host, size_t host_len, unsigned *port)
{
        const char *colon, *h = s;
        size_t hl;
        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                h = s + 1;
                hl = (size_t)(close - h);
                colon = close + 1;
                if (hl == 0)
                        return -EINVAL;
        } else {
                colon = strrchr(s, ':');
                if (!colon || memchr(s, ':', (size_t)(colon - s)))
                        return -EINVAL; /* none, or an IPv6 address without brackets */
                hl = (size_t)(colon - s);
        }
        if (hl >= host_len)
                return -EINVAL;
        const char *p = colon + 1;
        if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5)
                return -EINVAL;
        unsigned long v = strtoul(p, NULL, 10);
        if (v > 65535)
                return -EINVAL;
        memcpy(host, h, hl);
        host[hl] = 0;
        *port = (unsigned)v;
        return 0;
}

static void load_metrics_listen(struct loader *l, const config_setting_t *m)
{
        const char *v = config_setting_get_string(m);
        char host[256];
        unsigned port;
        if (!v) {
                ERR(l, m, "metrics_listen must be a string, e.g. \"127.0.0.1:9464\"");
                return;
        }
        if (config_parse_listen(v, host, sizeof(host), &port) < 0) {
                ERR(l, m,
                    "metrics_listen = \"%s\": expected HOST:PORT, [IPv6]:PORT or :PORT (every "
                    "address), with a port of 0 to 65535",
                    v);
                return;
        }
        l->c->metrics_listen = strdup(v);
        l->c->metrics_file = src_file(l, m);
        l->c->metrics_line = config_setting_source_line(m);
}

/* metrics_tls_cert or metrics_tls_key: a file to read, from the configuration's folder. */
static char *load_metrics_file(struct loader *l, const config_setting_t *m, const char *what,
                               const char *base)
{
        if (!expect_type(l, m, what, CONFIG_TYPE_STRING))
                return NULL;
        const char *v = config_setting_get_string(m);
        char *full = NULL;
        if (v[0] == '/' || asprintf(&full, "%s/%s", base, v) < 0)
                full = strdup(v);
        if (full && access(full, R_OK) < 0) {
                ERR(l, m, "%s = \"%s\": %s", what, v, strerror(errno));
                free(full);
                return NULL;
        }
        return full;
}

/* Whether a crypt(5) string ends with a hash of its method's length, not with its salt alone
 * ("$6$salt" is a setting crypt takes, not a hash to check against). Judged by the text, not
 * by running crypt: a setting's cost (yescrypt's memory, sha512crypt's rounds) is not paid at
 * load. */
static bool whole_hash(const char *hash)
{
        const char *last = strrchr(hash, '$');
        size_t n = last ? strlen(last + 1) : 0;
        if (!strncmp(hash, "$2", 2)) /* bcrypt: $2b$NN$, 22 of salt and 31 of hash */
                return strlen(hash) == 60;
        if (!strncmp(hash, "$6$", 3))
                return n == 86;
        if (!strncmp(hash, "$5$", 3) || !strncmp(hash, "$y$", 3) || !strncmp(hash, "$gy$", 4) ||
            !strncmp(hash, "$7$", 3))
                return n == 43;
        /* Another method crypt_checksalt() takes: a hash part of some length. */
        return n >= 20;
}

/* metrics_users = { name = "crypt(5) hash"; ... }; */
static void load_metrics_users(struct loader *l, const config_setting_t *g)
{
        if (!expect_type(l, g, "metrics_users", CONFIG_TYPE_GROUP))
                return;
        int n = config_setting_length(g);
        if (n == 0) {
                ERR(l, g, "metrics_users is empty: name at least one user, or leave it out");
                return;
        }
        l->c->metrics_users = calloc((size_t)n, sizeof(*l->c->metrics_users));
        if (!l->c->metrics_users) {
                l->errors++;
                return;
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *u = config_setting_get_elem(g, (unsigned)i);
                const char *name = config_setting_name(u);
                const char *hash = config_setting_get_string(u);
                char what[160];
                snprintf(what, sizeof(what), "metrics_users.%s", name);
                if (!expect_type(l, u, what, CONFIG_TYPE_STRING))
                        continue;
                /* A hash crypt(3) can check, of a method it has and does not call legacy:
                 * yescrypt, sha512crypt, bcrypt. Not a password in the clear, nor a salt
                 * without its hash. */
                if (hash[0] != '$' || crypt_checksalt(hash) != CRYPT_SALT_OK || !whole_hash(hash)) {
                        ERR(l, u,
                            "%s: not a password hash crypt(3) takes (\"$y$...\", \"$6$...\", "
                            "\"$2b$...\"); make one with `mkpasswd -m yescrypt` or `openssl passwd "
                            "-6`",
                            what);
                        continue;
                }
                struct config_metrics_user *mu = &l->c->metrics_users[l->c->n_metrics_users++];
                mu->name = strdup(name);
                mu->hash = strdup(hash);
        }
}

/* The calling thread's CPUs as they were at the first call (config.h, config_load). */
static int process_cpus(cpu_set_t *ret)
{
        static cpu_set_t cpus;
        static int got; /* 0: not yet; 1: cpus; < 0: the error */
        if (got == 0)
                got = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? 1 : -errno;
        if (got < 0)
                return got;
        *ret = cpus;
        return 0;
}

/* Workers without a cpu take the CPUs this process may use that no worker names, in order;
 * with more workers than that, they share them (in order again), which is said in
 * shares_with: fine for sleeping workers, a spinning one takes its CPU from the others. */
static void assign_cpus(struct config *c, const cpu_set_t *allowed)
{
        cpu_set_t free_cpus;
        CPU_ZERO(&free_cpus);
        CPU_OR(&free_cpus, &free_cpus, allowed);
        for (int i = 0; i < c->n_workers; i++)
                if (c->workers[i].cpu >= 0)
                        CPU_CLR(c->workers[i].cpu, &free_cpus);
        int cpu = 0, shared = 0;
        for (int i = 0; i < c->n_workers; i++) {
                struct config_worker *w = &c->workers[i];
                if (!w->cpu_auto)
                        continue;
                while (cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &free_cpus))
                        cpu++;
                if (cpu < CPU_SETSIZE) {
                        w->cpu = cpu++;
                        continue;
                }
                /* None left: the allowed CPUs again, in order, each shared with the first
                 * worker on it. */
                int n = CPU_COUNT(allowed), k = n ? shared++ % n : 0;
                for (int x = 0; x < CPU_SETSIZE; x++)
                        if (CPU_ISSET(x, allowed) && k-- == 0) {
                                w->cpu = x;
                                break;
                        }
                for (int j = 0; j < i && w->shares_with < 0; j++)
                        if (c->workers[j].cpu == w->cpu)
                                w->shares_with = j;
        }
}

static void load_workers(struct loader *l, const config_setting_t *s)
{
        if (config_setting_type(s) != CONFIG_TYPE_LIST) {
                ERR(l, s, "workers must be a list of groups, e.g. ( { cpu = 0; } )");
                return;
        }
        cpu_set_t allowed;
        if (process_cpus(&allowed) < 0)
                CPU_ZERO(&allowed);
        int n = config_setting_length(s);
        if (n == 0) {
                ERR(l, s, "workers is empty; remove it for one worker per CPU");
                return;
        }
        l->c->workers = calloc((size_t)n, sizeof(*l->c->workers));
        if (!l->c->workers) {
                l->errors++;
                return;
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *w = config_setting_get_elem(s, (unsigned)i);
                struct config_worker *cw = &l->c->workers[l->c->n_workers++];
                *cw = (struct config_worker){.cpu = -1,
                                             .shares_with = -1,
                                             .idle = IDLE_SLEEP,
                                             .spin_us = CONFIG_SPIN_US_DEFAULT,
                                             .file = src_file(l, w),
                                             .line = config_setting_source_line(w)};
                if (config_setting_type(w) != CONFIG_TYPE_GROUP) {
                        ERR(l, w, "workers[%d] must be a group, e.g. { cpu = 0; }", i);
                        continue;
                }
                check_keys(l, w, "a worker", worker_keys, N_ELEMS(worker_keys));
                const config_setting_t *m;
                long long v;
                char what[64];
                snprintf(what, sizeof(what), "workers[%d].cpu", i);
                if (!(m = config_setting_get_member(w, "cpu")))
                        cw->cpu_auto = true;
                else if (get_int(l, m, what, 0, CPU_SETSIZE - 1, &v)) {
                        if (!CPU_ISSET((int)v, &allowed))
                                ERR(l, m,
                                    "workers[%d].cpu = %lld: CPU %lld is not online or not "
                                    "in this process's affinity mask",
                                    i, v, v);
                        for (int j = 0; j < i; j++)
                                if (l->c->workers[j].cpu == (int)v)
                                        ERR(l, m,
                                            "workers[%d].cpu = %lld: CPU already used by "
                                            "workers[%d]",
                                            i, v, j);
                        cw->cpu = (int)v;
                }
                if ((m = config_setting_get_member(w, "idle"))) {
                        const char *p = config_setting_get_string(m);
                        if (!p)
                                ERR(l, m, "workers[%d].idle must be a string", i);
                        else if (!strcmp(p, "sleep"))
                                cw->idle = IDLE_SLEEP;
                        else if (!strcmp(p, "spin"))
                                cw->idle = IDLE_SPIN;
                        else if (!strcmp(p, "adaptive"))
                                cw->idle = IDLE_ADAPTIVE;
                        else
                                ERR(l, m,
                                    "workers[%d].idle = \"%s\": expected \"spin\", \"sleep\" or "
                                    "\"adaptive\"",
                                    i, p);
                }
                snprintf(what, sizeof(what), "workers[%d].spin_us", i);
                if ((m = config_setting_get_member(w, "spin_us")) &&
                    get_int(l, m, what, 0, 10000000, &v))
                        cw->spin_us = (uint32_t)v;
        }
        assign_cpus(l->c, &allowed);
}

static void default_workers(struct config *c)
{
        cpu_set_t allowed;
        if (process_cpus(&allowed) < 0) {
                CPU_ZERO(&allowed);
                CPU_SET(0, &allowed);
        }
        int n = CPU_COUNT(&allowed);
        c->workers = calloc((size_t)n, sizeof(*c->workers));
        if (!c->workers)
                return;
        for (int cpu = 0; cpu < CPU_SETSIZE && c->n_workers < n; cpu++)
                if (CPU_ISSET(cpu, &allowed))
                        c->workers[c->n_workers++] =
                            (struct config_worker){.cpu = cpu,
                                                   .shares_with = -1,
                                                   .idle = IDLE_SLEEP,
                                                   .spin_us = CONFIG_SPIN_US_DEFAULT};
        c->workers_default = true;
}

static void check_schedule(struct loader *l, const config_setting_t *s, struct config_component *cc)
{
        if (config_setting_type(s) == CONFIG_TYPE_STRING) {
                const char *r = config_setting_get_string(s);
                if (!strcmp(r, "loop"))
                        cc->rule = ACTORD_RULE_LOOP;
                else if (!strcmp(r, "on_message"))
                        cc->rule = ACTORD_RULE_ON_MESSAGE;
                else if (!strcmp(r, "on_event"))
                        cc->rule = ACTORD_RULE_ON_EVENT;
                else if (!strcmp(r, "periodic"))
                        ERR(l, s,
                            "component '%s': a periodic schedule needs its period: schedule = "
                            "{ every_us = 1000; }",
                            cc->name);
                else
                        ERR(l, s,
                            "component '%s': schedule = \"%s\": expected \"loop\", "
                            "\"on_message\", \"on_event\" or { every_us = N; }",
                            cc->name, r);
                return;
        }
        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
                ERR(l, s,
                    "component '%s': schedule must be a string (\"loop\", \"on_message\", "
                    "\"on_event\") or a group { every_us = N; }",
                    cc->name);
                return;
        }
        check_keys(l, s, "a schedule", schedule_keys, N_ELEMS(schedule_keys));
        const config_setting_t *m = config_setting_get_member(s, "every_us");
        long long v;
        if (!m)
                ERR(l, s, "component '%s': schedule group needs every_us", cc->name);
        else if (get_int(l, m, "every_us", 1, 3600LL * 1000000, &v)) {
                cc->rule = ACTORD_RULE_PERIODIC;
                cc->every_us = (uint64_t)v;
        }
}

static const char *const restart_modes[] = {
    [RESTART_TRANSIENT] = "transient",
    [RESTART_PERMANENT] = "permanent",
    [RESTART_NEVER] = "never",
};

const char *config_restart_mode_to_string(enum restart_mode m)
{
        return (unsigned)m < N_ELEMS(restart_modes) ? restart_modes[m] : "?";
}

/* The supervision keys of group g (the actord group or a component) over *r. `who` names the
 * group in messages. */
static void load_restart(struct loader *l, const config_setting_t *g, const char *who,
                         struct config_restart *r)
{
        const config_setting_t *m;
        long long v;
        if ((m = config_setting_get_member(g, "restart")) &&
            expect_type(l, m, "restart", CONFIG_TYPE_STRING)) {
                const char *s = config_setting_get_string(m);
                size_t i = 0;
                while (i < N_ELEMS(restart_modes) && strcmp(s, restart_modes[i]))
                        i++;
                if (i < N_ELEMS(restart_modes))
                        r->mode = (enum restart_mode)i;
                else
                        ERR(l, m,
                            "%s: restart = \"%s\": expected \"transient\" (after errors), "
                            "\"permanent\" (also after DONE) or \"never\"",
                            who, s);
        }
        if ((m = config_setting_get_member(g, "max_restarts")) &&
            get_int(l, m, "max_restarts", 0, 1000000, &v))
                r->max_restarts = (uint32_t)v;
        if ((m = config_setting_get_member(g, "restart_window_s")) &&
            get_int(l, m, "restart_window_s", 1, 86400, &v))
                r->window_ms = (uint32_t)v * 1000;
        if ((m = config_setting_get_member(g, "backoff_ms")) &&
            get_int(l, m, "backoff_ms", 0, 3600000, &v))
                r->backoff_ms = (uint32_t)v;
        if ((m = config_setting_get_member(g, "on_failure")) &&
            expect_type(l, m, "on_failure", CONFIG_TYPE_STRING)) {
                const char *s = config_setting_get_string(m);
                if (!strcmp(s, "exit"))
                        r->exit_on_failure = true;
                else if (!strcmp(s, "continue"))
                        r->exit_on_failure = false;
                else
                        ERR(l, m,
                            "%s: on_failure = \"%s\": expected \"continue\" (the rest runs on) "
                            "or \"exit\" (the daemon stops with an error)",
                            who, s);
        }
}

static void load_schedule(struct loader *l, const config_setting_t *s, struct config_component *cc)
{
        int errors = l->errors;
        check_schedule(l, s, cc);
        /* Reported here: the topology checks must not complain about the default instead. */
        cc->schedule_invalid = l->errors > errors;
}

static void load_components(struct loader *l, const config_setting_t *s)
{
        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
                ERR(l, s,
                    "components must be a group: components = { name = { class = ...; "
                    "}; }");
                return;
        }
        int n = config_setting_length(s);
        l->c->components = calloc((size_t)n + 1, sizeof(*l->c->components));
        if (!l->c->components) {
                l->errors++;
                return;
        }
        for (int i = 0; i < n; i++) {
                const config_setting_t *g = config_setting_get_elem(s, (unsigned)i);
                const char *name = config_setting_name(g);
                struct config_component *cc = &l->c->components[l->c->n_components++];
                *cc = (struct config_component){.name = strdup(name),
                                                .worker = -1,
                                                .restart = l->c->restart,
                                                .file = src_file(l, g),
                                                .line = config_setting_source_line(g)};
                if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
                        ERR(l, g, "component '%s' must be a group { class = \"...\"; }", name);
                        continue;
                }
                check_keys(l, g, "a component", component_keys, N_ELEMS(component_keys));
                const config_setting_t *m = config_setting_get_member(g, "class");
                if (!m)
                        ERR(l, g, "component '%s' has no class", name);
                else if (expect_type(l, m, "class", CONFIG_TYPE_STRING))
                        cc->class_name = strdup(config_setting_get_string(m));
                if ((m = config_setting_get_member(g, "schedule")))
                        load_schedule(l, m, cc);
                long long v;
                if ((m = config_setting_get_member(g, "worker")) &&
                    get_int(l, m, "worker", 0, 1 << 20, &v))
                        cc->worker = (int)v;
                if ((m = config_setting_get_member(g, "settings")) &&
                    expect_type(l, m, "settings", CONFIG_TYPE_GROUP))
                        cc->settings = m;
                if ((m = config_setting_get_member(g, "type")) &&
                    expect_type(l, m, "type", CONFIG_TYPE_STRING))
                        cc->type = strdup(config_setting_get_string(m));
                char who[300];
                snprintf(who, sizeof(who), "component '%s'", name);
                load_restart(l, g, who, &cc->restart);
        }
}

static void load_endpoint(struct loader *l, const config_setting_t *s, const char *text,
                          const char *what, struct config_endpoint *ret)
{
        int r = config_parse_endpoint(text, ret);
        if (r == -EINVAL)
                ERR(l, s, "link %s \"%s\": expected \"component.port\" or \"component.port[N]\"",
                    what, text);
        else if (r < 0)
                l->errors++;
}

/* Cuts the white space around s, in place. */
static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        for (char *e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
                e[-1] = 0;
        return s;
}

static void load_link(struct loader *l, const config_setting_t *s, struct config_link *cl)
{
        *cl = (struct config_link){.capacity = CHANNEL_CAPACITY_DEFAULT,
                                   .policy = CHANNEL_OVERWRITE,
                                   .file = src_file(l, s),
                                   .line = config_setting_source_line(s)};
        if (config_setting_type(s) == CONFIG_TYPE_STRING) {
                const char *text = config_setting_get_string(s);
                const char *arrow = strstr(text, "->");
                if (!arrow) {
                        ERR(l, s, "link \"%s\": expected \"from.port -> to.port\"", text);
                        return;
                }
                char *from = strndup(text, (size_t)(arrow - text));
                char *to = strdup(arrow + 2);
                if (!from || !to) {
                        free(from);
                        free(to);
                        l->errors++;
                        return;
                }
                load_endpoint(l, s, trim(from), "source", &cl->from);
                load_endpoint(l, s, trim(to), "destination", &cl->to);
                free(from);
                free(to);
                return;
        }
        if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
                ERR(l, s,
                    "a link must be a string \"a.out -> b.in\" or a group { from = ...; "
                    "to = ...; }");
                return;
        }
        check_keys(l, s, "a link", link_keys, N_ELEMS(link_keys));
        const config_setting_t *m;
        if (!(m = config_setting_get_member(s, "from")))
                ERR(l, s, "link has no 'from'");
        else if (expect_type(l, m, "from", CONFIG_TYPE_STRING))
                load_endpoint(l, m, config_setting_get_string(m), "source", &cl->from);
        if (!(m = config_setting_get_member(s, "to")))
                ERR(l, s, "link has no 'to'");
        else if (expect_type(l, m, "to", CONFIG_TYPE_STRING))
                load_endpoint(l, m, config_setting_get_string(m), "destination", &cl->to);
        long long v;
        if ((m = config_setting_get_member(s, "capacity")) &&
            get_int(l, m, "capacity", 1, CHANNEL_CAPACITY_MAX, &v))
                cl->capacity = (uint32_t)v;
        if ((m = config_setting_get_member(s, "overflow")) &&
            expect_type(l, m, "overflow", CONFIG_TYPE_STRING)) {
                int p = channel_policy_from_string(config_setting_get_string(m));
                if (p < 0)
                        ERR(l, m,
                            "overflow = \"%s\": expected \"overwrite\", \"drop_new\" or "
                            "\"reject\"",
                            config_setting_get_string(m));
                else
                        cl->policy = (enum channel_policy)p;
        }
}

/* A link with an end that did not parse is left out whole, so that the topology checks do not
 * report what follows from it. */
static void drop_half_link(struct config_link *cl)
{
        if (!cl->from.component || !cl->to.component) {
                config_endpoint_free(&cl->from);
                config_endpoint_free(&cl->to);
        }
}

static void load_links(struct loader *l, const config_setting_t *s)
{
        if (config_setting_type(s) != CONFIG_TYPE_LIST &&
            config_setting_type(s) != CONFIG_TYPE_ARRAY) {
                ERR(l, s, "links must be a list: links = ( \"a.out -> b.in\" );");
                return;
        }
        int n = config_setting_length(s);
        l->c->links = calloc((size_t)n + 1, sizeof(*l->c->links));
        if (!l->c->links) {
                l->errors++;
                return;
        }
        for (int i = 0; i < n; i++) {
                struct config_link *cl = &l->c->links[l->c->n_links++];
                load_link(l, config_setting_get_elem(s, (unsigned)i), cl);
                drop_half_link(cl);
        }
}

/* The name that libconfig's "duplicate setting name" is about, from the line it names: of the
 * names set on that line (`name =` or `name :`, outside strings and comments), one set twice on
 * it, else the first. Returns it (caller frees) or NULL. */
static char *duplicate_name(const char *file, int line)
{
        FILE *f = file && line > 0 ? fopen(file, "re") : NULL;
        if (!f)
                return NULL;
        char buf[4096];
        int at = 0;
        bool found = false;
        while (fgets(buf, sizeof(buf), f))
                if (++at == line) {
                        found = true;
                        break;
                }
        fclose(f);
        if (!found)
                return NULL;
        char names[16][128];
        int n = 0;
        for (const char *p = buf; *p && n < 16;) {
                if (*p == '"') {
                        for (p++; *p && *p != '"'; p++)
                                if (*p == '\\' && p[1])
                                        p++;
                        if (*p)
                                p++;
                        continue;
                }
                if (*p == '#' || (p[0] == '/' && (p[1] == '/' || p[1] == '*')))
                        break;
                if (!isalpha((unsigned char)*p) && *p != '*') {
                        p++;
                        continue;
                }
                const char *start = p;
                while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '*')
                        p++;
                size_t len = (size_t)(p - start);
                const char *q = p;
                while (*q == ' ' || *q == '\t')
                        q++;
                if ((*q == '=' || *q == ':') && len < sizeof(names[0]))
                        snprintf(names[n++], sizeof(names[0]), "%.*s", (int)len, start);
        }
        for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++)
                        if (!strcmp(names[i], names[j]))
                                return strdup(names[i]);
        return n ? strdup(names[0]) : NULL;
}

int config_load(const char *path, struct config *ret, struct diag *d)
{
        struct config *c = ret;
        *c = (struct config){0};
        config_init(&c->cfg);
        c->path = strdup(path);
        char *dircopy = strdup(path);
        if (!c->path || !dircopy) {
                free(dircopy);
                config_free(c);
                return -ENOMEM;
        }
        const char *base = dirname(dircopy);
        config_set_include_dir(&c->cfg, base);

        if (config_read_file(&c->cfg, path) != CONFIG_TRUE) {
                if (config_error_type(&c->cfg) == CONFIG_ERR_FILE_IO)
                        diag_add(d, path, 0, "cannot read the file: %s",
                                 errno ? strerror(errno) : "I/O error");
                else {
                        const char *file =
                            config_error_file(&c->cfg) ? config_error_file(&c->cfg) : path;
                        int line = config_error_line(&c->cfg);
                        const char *text = config_error_text(&c->cfg);
                        char *dup = text && !strcmp(text, "duplicate setting name")
                                        ? duplicate_name(file, line)
                                        : NULL;
                        if (dup)
                                diag_add(d, file, line,
                                         "syntax error: duplicate setting name: '%s' is set "
                                         "twice in one group (each component, and each key of "
                                         "a group, needs a name of its own)",
                                         dup);
                        else
                                diag_add(d, file, line, "syntax error: %s", text);
                        free(dup);
                }
                free(dircopy);
                config_free(c);
                return -EINVAL;
        }

        c->plugin_strict_modes = true;
        c->stall_ms = CONFIG_STALL_MS_DEFAULT;
        c->restart = CONFIG_RESTART_DEFAULT;
        struct loader l = {.c = c, .d = d};
        const config_setting_t *root = config_root_setting(&c->cfg);
        check_keys(&l, root, "the top level", top_keys, N_ELEMS(top_keys));
        const config_setting_t *s;
        if ((s = config_setting_get_member(root, "actord"))) {
                if (config_setting_type(s) != CONFIG_TYPE_GROUP)
                        ERR(&l, s, "actord must be a group: actord = { workers = ...; };");
                else {
                        check_keys(&l, s, "actord", actord_keys, N_ELEMS(actord_keys));
                        const config_setting_t *m;
                        if ((m = config_setting_get_member(s, "plugin_dirs")))
                                load_plugin_dirs(&l, m, base);
                        if ((m = config_setting_get_member(s, "workers")))
                                load_workers(&l, m);
                        if ((m = config_setting_get_member(s, "plugin_strict_modes")) &&
                            expect_type(&l, m, "plugin_strict_modes", CONFIG_TYPE_BOOL))
                                c->plugin_strict_modes = config_setting_get_bool(m);
                        long long v;
                        if ((m = config_setting_get_member(s, "stall_ms")) &&
                            get_int(&l, m, "stall_ms", 1, 3600000, &v))
                                c->stall_ms = (uint32_t)v;
                        if ((m = config_setting_get_member(s, "metrics_listen")))
                                load_metrics_listen(&l, m);
                        if ((m = config_setting_get_member(s, "metrics_tls_cert")))
                                c->metrics_tls_cert =
                                    load_metrics_file(&l, m, "metrics_tls_cert", base);
                        if ((m = config_setting_get_member(s, "metrics_tls_key")))
                                c->metrics_tls_key =
                                    load_metrics_file(&l, m, "metrics_tls_key", base);
                        if (!config_setting_get_member(s, "metrics_tls_cert") !=
                            !config_setting_get_member(s, "metrics_tls_key"))
                                ERR(&l, s,
                                    "metrics_tls_cert and metrics_tls_key go together: %s is "
                                    "missing",
                                    config_setting_get_member(s, "metrics_tls_cert")
                                        ? "metrics_tls_key"
                                        : "metrics_tls_cert");
                        if ((m = config_setting_get_member(s, "metrics_users")))
                                load_metrics_users(&l, m);
                        const char *needs[] = {"metrics_tls_cert", "metrics_users"};
                        for (int i = 0; i < 2 && !c->metrics_listen; i++)
                                if ((m = config_setting_get_member(s, needs[i])))
                                        ERR(&l, m,
                                            "%s without metrics_listen: there is no HTTP "
                                            "server to use it",
                                            needs[i]);
                        load_restart(&l, s, "actord", &c->restart);
                }
        }
        if (!c->workers)
                default_workers(c);
        if ((s = config_setting_get_member(root, "components")))
                load_components(&l, s);
        if (c->n_components == 0)
                diag_add(d, path, 0, "no components: nothing to run"), l.errors++;
        if ((s = config_setting_get_member(root, "links")))
                load_links(&l, s);

        for (int i = 0; i < c->n_components; i++) {
                struct config_component *cc = &c->components[i];
                if (cc->worker >= c->n_workers)
                        diag_add(d, cc->file, cc->line,
                                 "component '%s': worker = %d, but there are %d workers "
                                 "(0..%d)",
                                 cc->name, cc->worker, c->n_workers, c->n_workers - 1),
                            l.errors++;
        }
        free(dircopy);
        /* The model of a file with errors is kept, the faulty parts left out or at their
         * defaults, so that the caller can also check what needs the plugins and report every
         * error in one run; it must not run it. */
        return l.errors ? -EINVAL : 0;
}

void config_free(struct config *c)
{
        free(c->metrics_listen);
        free(c->metrics_tls_cert);
        free(c->metrics_tls_key);
        for (int i = 0; i < c->n_metrics_users; i++) {
                free(c->metrics_users[i].name);
                free(c->metrics_users[i].hash);
        }
        free(c->metrics_users);
        for (int i = 0; i < c->n_plugin_dirs; i++)
                free(c->plugin_dirs[i]);
        free(c->plugin_dirs);
        free(c->workers);
        for (int i = 0; i < c->n_components; i++) {
                free(c->components[i].name);
                free(c->components[i].class_name);
                free(c->components[i].type);
        }
        free(c->components);
        for (int i = 0; i < c->n_links; i++) {
                config_endpoint_free(&c->links[i].from);
                config_endpoint_free(&c->links[i].to);
        }
        free(c->links);
        free(c->path);
        if (c->cfg.root)
                config_destroy(&c->cfg);
        *c = (struct config){0};
}
