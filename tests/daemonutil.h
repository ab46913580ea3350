/* Helpers for tests that run the real actord: start it with a NOTIFY_SOCKET of the test's,
 * wait for notifications, files and its exit without sleeping. */
#ifndef ACTORD_DAEMONUTIL_H
#define ACTORD_DAEMONUTIL_H

#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

struct daemon {
        pid_t pid;
        int pidfd;
        int notify_fd;
        char *err_path;
        /* A thread reads the notify socket all the time, as systemd does: sd_notify blocks
         * once ten datagrams wait unread. */
        pthread_t reader;
        int stop_pipe[2];
        pthread_mutex_t lock;
        pthread_cond_t cond;
        char *notes; /* every notification received, concatenated */
        size_t notes_len;
};

static inline void *daemon_reader_(void *arg)
{
        struct daemon *d = arg;
        for (;;) {
                struct pollfd p[2] = {{.fd = d->notify_fd, .events = POLLIN},
                                      {.fd = d->stop_pipe[0], .events = POLLIN}};
                if (poll(p, 2, -1) < 0)
                        continue;
                if (p[1].revents)
                        return NULL;
                char buf[1024];
                ssize_t r = recv(d->notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
                if (r <= 0)
                        continue;
                buf[r] = '\n';
                pthread_mutex_lock(&d->lock);
                char *n = realloc(d->notes, d->notes_len + (size_t)r + 2);
                if (n) {
                        memcpy(n + d->notes_len, buf, (size_t)r + 1);
                        d->notes_len += (size_t)r + 1;
                        n[d->notes_len] = 0;
                        d->notes = n;
                }
                pthread_cond_broadcast(&d->cond);
                pthread_mutex_unlock(&d->lock);
        }
}

/* A copy of every notification so far (caller frees). */
static inline char *daemon_notes(struct daemon *d)
{
        pthread_mutex_lock(&d->lock);
        char *copy = strdup(d->notes ? d->notes : "");
        pthread_mutex_unlock(&d->lock);
        return copy;
}

static inline int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first two CPUs this process may use (the second is the first if there is only one). */
static inline void two_cpus(int *a, int *b)
{
        cpu_set_t set;
        cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
        *a = *b = -1;
        for (int c = 0; c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &set)) {
                        if (*a < 0)
                                *a = c;
                        else if (*b < 0)
                                *b = c;
                }
        if (*b < 0)
                *b = *a;
}

/* The workers element of a test configuration (`workers = ( ... );`): two on the first two
 * CPUs, or one if there is one CPU. Returns how many. */
static inline int test_workers(const char *idle, char *buf, size_t len)
{
        int a, b;
        two_cpus(&a, &b);
        int n = snprintf(buf, len, "{ cpu = %d; idle = \"%s\"; }", a, idle);
        if (b == a)
                return 1;
        snprintf(buf + n, len - (size_t)n, ", { cpu = %d; idle = \"%s\"; spin_us = 20; }", b, idle);
        return 2;
}

/* Starts actord with args (NULL-terminated) and extra environment entries env ("K=V", NULL-
 * terminated, or NULL), stderr to err_fd (or, if it is negative, to a file that
 * daemon_stderr() reads), NOTIFY_SOCKET to a datagram socket of ours. */
static inline void daemon_start_err(struct daemon *d, const char *dir, const char *const *args,
                                    const char *const *env, int err_fd)
{
        *d = (struct daemon){0};
        cr_assert(asprintf(&d->err_path, "%s/stderr.txt", dir) > 0);
        d->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert(d->notify_fd >= 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify.sock", dir);
        unlink(sa.sun_path);
        cr_assert_eq(bind(d->notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        cr_assert_eq(pipe2(d->stop_pipe, O_CLOEXEC), 0);
        pthread_mutex_init(&d->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&d->cond, &ca);
        pthread_condattr_destroy(&ca);
        cr_assert_eq(pthread_create(&d->reader, NULL, daemon_reader_, d), 0);

        const char *argv[32] = {ACTORD_TEST_DAEMON};
        int n = 1;
        for (; args[n - 1] && n < 31; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;

        d->pid = fork();
        cr_assert(d->pid >= 0);
        if (d->pid == 0) {
                /* A failed assertion ends the test without cleanup: take the daemon along. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                int fd =
                    err_fd >= 0 ? err_fd : open(d->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(126);
                setenv("NOTIFY_SOCKET", sa.sun_path, 1);
                for (const char *const *e = env; e && *e; e++)
                        putenv((char *)(uintptr_t)*e);
                execv(argv[0], (char *const *)(void *)argv);
                _exit(127);
        }
        d->pidfd = (int)syscall(SYS_pidfd_open, d->pid, 0);
        cr_assert(d->pidfd >= 0);
}

static inline void daemon_start_env(struct daemon *d, const char *dir, const char *const *args,
                                    const char *const *env)
{
        daemon_start_err(d, dir, args, env, -1);
}

static inline void daemon_start(struct daemon *d, const char *dir, const char *const *args)
{
        daemon_start_env(d, dir, args, NULL);
}

/* CLOCK_MONOTONIC timeout_ms from now, for pthread_cond_timedwait on d->cond. */
static inline struct timespec deadline_(int timeout_ms)
{
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_sec += timeout_ms / 1000;
        end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (end.tv_nsec >= 1000000000) {
                end.tv_sec++;
                end.tv_nsec -= 1000000000;
        }
        return end;
}

/* Waits until a notification containing `what` arrives; false after timeout_ms. */
static inline bool daemon_wait_notify(struct daemon *d, const char *what, int timeout_ms)
{
        struct timespec end = deadline_(timeout_ms);
        pthread_mutex_lock(&d->lock);
        bool found;
        while (!(found = d->notes && strstr(d->notes, what)))
                if (pthread_cond_timedwait(&d->cond, &d->lock, &end) == ETIMEDOUT)
                        break;
        found = d->notes && strstr(d->notes, what);
        pthread_mutex_unlock(&d->lock);
        return found;
}

/* Waits until more than `len` bytes of notifications arrived; false after timeout_ms. */
static inline bool daemon_wait_more(struct daemon *d, size_t len, int timeout_ms)
{
        struct timespec end = deadline_(timeout_ms);
        pthread_mutex_lock(&d->lock);
        while (d->notes_len <= len)
                if (pthread_cond_timedwait(&d->cond, &d->lock, &end) == ETIMEDOUT)
                        break;
        bool more = d->notes_len > len;
        pthread_mutex_unlock(&d->lock);
        return more;
}

/* Sends SIGHUP and waits for the reload to end (READY=1 again); returns that notification,
 * which holds the reload's STATUS= (caller frees), or NULL after timeout_ms. */
static inline char *daemon_reload(struct daemon *d, int timeout_ms)
{
        pthread_mutex_lock(&d->lock);
        size_t from = d->notes_len;
        pthread_mutex_unlock(&d->lock);
        cr_assert_eq(kill(d->pid, SIGHUP), 0);
        struct timespec end = deadline_(timeout_ms);
        char *found = NULL;
        pthread_mutex_lock(&d->lock);
        for (;;) {
                char *r = d->notes ? strstr(d->notes + from, "RELOADING=1") : NULL;
                char *ready = r ? strstr(r, "READY=1") : NULL;
                if (ready) {
                        size_t n = strcspn(ready + 8, "\n"); /* the STATUS= line after it */
                        found = strndup(ready, 8 + n);
                        break;
                }
                if (pthread_cond_timedwait(&d->cond, &d->lock, &end) == ETIMEDOUT)
                        break;
        }
        pthread_mutex_unlock(&d->lock);
        return found;
}

/* Waits for the daemon to exit and returns its wait status, or -1 after timeout_ms. */
static inline int daemon_wait_exit(struct daemon *d, int timeout_ms)
{
        struct pollfd p = {.fd = d->pidfd, .events = POLLIN};
        int64_t end = now_ms() + timeout_ms;
        int r;
        /* EINTR: the test runner catches SIGCHLD, which this very exit sends. */
        while ((r = poll(&p, 1, (int)(end - now_ms() > 0 ? end - now_ms() : 0))) < 0 &&
               errno == EINTR)
                ;
        if (r != 1)
                return -1;
        int status;
        cr_assert_eq(waitpid(d->pid, &status, 0), d->pid);
        d->pid = 0;
        return status;
}

static inline char *daemon_stderr(struct daemon *d)
{
        return tu_read(d->err_path);
}

/* Kills the daemon if it still runs and frees what daemon_start() made. */
static inline void daemon_cleanup(struct daemon *d)
{
        if (d->pid > 0) {
                kill(d->pid, SIGKILL);
                waitpid(d->pid, NULL, 0);
        }
        if (d->pidfd > 0)
                close(d->pidfd);
        if (d->stop_pipe[1] > 0) {
                ssize_t w = write(d->stop_pipe[1], "x", 1);
                (void)w;
                pthread_join(d->reader, NULL);
                close(d->stop_pipe[0]);
                close(d->stop_pipe[1]);
                pthread_mutex_destroy(&d->lock);
                pthread_cond_destroy(&d->cond);
        }
        if (d->notify_fd > 0)
                close(d->notify_fd);
        free(d->notes);
        free(d->err_path);
        *d = (struct daemon){0}; /* a second cleanup does nothing */
}

static inline int count_lines(const char *path)
{
        char *s = tu_read(path);
        int n = 0;
        for (char *p = s; p && *p; p++)
                n += *p == '\n';
        free(s);
        return n;
}

/* Waits (inotify, no polling sleeps) until path has at least `lines` lines. */
static inline bool wait_lines(const char *dir, const char *path, int lines, int timeout_ms)
{
        int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        cr_assert(in >= 0);
        cr_assert(
            inotify_add_watch(in, dir, IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO) >= 0);
        int64_t end = now_ms() + timeout_ms;
        bool ok;
        while (!(ok = count_lines(path) >= lines)) {
                int left = (int)(end - now_ms());
                if (left <= 0)
                        break;
                struct pollfd p = {.fd = in, .events = POLLIN};
                if (poll(&p, 1, left) == 1) {
                        char buf[4096];
                        while (read(in, buf, sizeof(buf)) > 0)
                                ;
                }
        }
        close(in);
        return ok;
}

static inline int count_occurrences(const char *text, const char *needle)
{
        int n = 0;
        for (const char *p = text; p && (p = strstr(p, needle)); p++)
                n++;
        return n;
}

/* Waits (inotify on dir) until path exists and contains needle at least n times. */
static inline bool wait_count(const char *dir, const char *path, const char *needle, int n,
                              int timeout_ms)
{
        int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        cr_assert(in >= 0);
        cr_assert(
            inotify_add_watch(in, dir, IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO) >= 0);
        int64_t end = now_ms() + timeout_ms;
        bool ok;
        for (;;) {
                char *text = tu_read(path);
                ok = count_occurrences(text, needle) >= n;
                free(text);
                int left = (int)(end - now_ms());
                if (ok || left <= 0)
                        break;
                struct pollfd p = {.fd = in, .events = POLLIN};
                if (poll(&p, 1, left) == 1) {
                        char buf[4096];
                        while (read(in, buf, sizeof(buf)) > 0)
                                ;
                }
        }
        close(in);
        return ok;
}

/* Waits (inotify) until path exists and contains needle. */
static inline bool wait_contains(const char *dir, const char *path, const char *needle,
                                 int timeout_ms)
{
        return wait_count(dir, path, needle, 1, timeout_ms);
}

/* The control socket at `path`: connects, sends `req` (len bytes; shuts the sending side down if
 * `shut`) and reads the answer until the daemon closes (caller frees), or NULL if none came in
 * timeout_ms. */
static inline char *ctl_request(const char *path, const char *req, size_t len, bool shut,
                                int timeout_ms)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert(fd >= 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", path,
                     strerror(errno));
        /* The daemon may answer and close before it reads the request (too many clients at
         * once): then the send fails and the answer waits to be read all the same. */
        ssize_t sent = send(fd, req, len, MSG_NOSIGNAL);
        cr_assert(sent == (ssize_t)len || errno == EPIPE || errno == ECONNRESET, "send: %s",
                  strerror(errno));
        if (shut)
                shutdown(fd, SHUT_WR);
        size_t cap = 1 << 16, got = 0;
        char *buf = malloc(cap);
        int64_t end = now_ms() + timeout_ms;
        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int left = (int)(end - now_ms());
                if (left <= 0 || poll(&p, 1, left) != 1) {
                        free(buf);
                        buf = NULL;
                        break;
                }
                if (got + 1 == cap)
                        cr_assert((buf = realloc(buf, cap *= 2)));
                ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
                if (r <= 0) {
                        buf[got] = 0;
                        break;
                }
                got += (size_t)r;
        }
        close(fd);
        return buf;
}

/* Metrics text (Prometheus exposition), as the control socket's `metrics` answers. */
/* The value of the sample whose name and labels are `series` (as printed: name{labels}). */
static inline bool metric(const char *text, const char *series, double *ret)
{
        size_t n = strlen(series);
        for (const char *line = text; line && *line; line = strchr(line, '\n'), line += !!line) {
                if (strncmp(line, series, n) == 0 && line[n] == ' ') {
                        *ret = strtod(line + n + 1, NULL);
                        return true;
                }
        }
        return false;
}

static inline double must_metric(const char *text, const char *series)
{
        double v;
        cr_assert(metric(text, series, &v), "no sample %s in:\n%s", series, text);
        return v;
}

#endif
