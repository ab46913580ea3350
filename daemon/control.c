/* The reload state file and `actord --reload` (control.h). */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define STATE_NAME "reload-state"

char *control_runtime_path(const char *name)
{
        const char *d = getenv("RUNTIME_DIRECTORY");
        if (!d || !*d)
                return NULL;
        char *p;
        /* RuntimeDirectory= may name several: systemd lists them separated by colons. */
        if (asprintf(&p, "%.*s/%s", (int)strcspn(d, ":"), d, name) < 0)
                return NULL;
        return p;
}

char *control_state_path(void)
{
        return control_runtime_path(STATE_NAME);
}

void control_state_write(const char *path, unsigned generation, const char *result)
{
        static bool warned;
        if (!path)
                return;
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        FILE *f = fopen(tmp, "we");
        bool ok = f && fprintf(f, "generation=%u\nresult=%s\n", generation, result) > 0;
        if (f && fclose(f) != 0)
                ok = false;
        if (ok && rename(tmp, path) == 0)
                return;
        if (!warned) {
                log_warning("cannot write %s: %s; `actord --reload` cannot follow reloads", path,
                            strerror(errno));
                warned = true;
        }
        unlink(tmp);
}

/* Reads the state: true with the generation and the result line, false if unreadable. */
static bool state_read(const char *path, unsigned *ret_gen, char *result, size_t len)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return false;
        char line[512];
        bool have_gen = false;
        result[0] = 0;
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\n")] = 0;
                if (!strncmp(line, "generation=", 11)) {
                        *ret_gen = (unsigned)strtoul(line + 11, NULL, 10);
                        have_gen = true;
                } else if (!strncmp(line, "result=", 7)) {
                        snprintf(result, len, "%s", line + 7);
                }
        }
        fclose(f);
        return have_gen;
}

int control_reload(const char *pid_s, unsigned timeout_s)
{
        char *end;
        errno = 0;
        long pid = strtol(pid_s, &end, 10);
        if (errno || *end || pid <= 0 || pid > INT_MAX) {
                fprintf(stderr, "actord --reload: '%s' is not a process ID\n", pid_s);
                return 2;
        }
        char *path = control_state_path();
        if (!path) {
                fprintf(stderr,
                        "actord --reload: RUNTIME_DIRECTORY is not set: the state file is "
                        "in the unit's runtime directory (RuntimeDirectory=), which systemd "
                        "names there; without systemd, send SIGHUP\n");
                return 2;
        }
        int rc = 2;
        char result[512];
        unsigned gen0, gen;
        int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        char *dir = strndup(path, (size_t)(strrchr(path, '/') - path));
        if (in < 0 || !dir || inotify_add_watch(in, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
                fprintf(stderr, "actord --reload: cannot watch %s: %s\n", dir ? dir : path,
                        strerror(errno));
                goto out;
        }
        if (!state_read(path, &gen0, result, sizeof(result))) {
                fprintf(stderr,
                        "actord --reload: cannot read %s (%s): is actord %ld running with this "
                        "runtime directory?\n",
                        path, strerror(errno), pid);
                goto out;
        }
        if (kill((pid_t)pid, SIGHUP) < 0) {
                fprintf(stderr, "actord --reload: cannot signal process %ld: %s\n", pid,
                        strerror(errno));
                goto out;
        }
        uint64_t deadline = mono_ns() + (uint64_t)timeout_s * 1000000000u;
        rc = 1;
        for (;;) {
                if (state_read(path, &gen, result, sizeof(result)) && gen != gen0) {
                        printf("actord: reload %s\n", result);
                        rc = strncmp(result, "applied", 7) == 0 ? 0 : 1;
                        break;
                }
                if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
                        fprintf(stderr, "actord --reload: process %ld exited during the reload\n",
                                pid);
                        break;
                }
                uint64_t now = mono_ns();
                if (now >= deadline) {
                        fprintf(stderr, "actord --reload: no answer from process %ld in %u s\n",
                                pid, timeout_s);
                        break;
                }
                /* Woken by the rename; at least once a second, to see the process go. */
                uint64_t left_ms = (deadline - now) / 1000000u;
                struct pollfd p = {.fd = in, .events = POLLIN};
                if (poll(&p, 1, left_ms < 1000 ? (int)left_ms + 1 : 1000) == 1) {
                        char buf[4096];
                        while (read(in, buf, sizeof(buf)) > 0)
                                ;
                }
        }
out:
        if (in >= 0)
                close(in);
        free(dir);
        free(path);
        return rc;
}
