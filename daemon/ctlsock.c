/* The control socket (ctlsock.h). */
#define _GNU_SOURCE
#include "ctlsock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static int socket_address(const char *path, struct sockaddr_un *sa)
{
        *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
        size_t n = strlen(path);
        if (n == 0 || n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        memcpy(sa->sun_path, path, n + 1);
        return 0;
}

/* A socket file at `path` that nobody listens on can go; one that answers cannot. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode)) {
                log_error(
                    "control socket %s: the path exists and is not a socket; not replacing it",
                    path);
                return -EEXIST;
        }
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
        int e = errno;
        close(fd);
        if (r == 0) {
                log_error("control socket %s: another process (an actord already running?) "
                          "answers there",
                          path);
                return -EADDRINUSE;
        }
        if (e != ECONNREFUSED) {
                log_error("control socket %s: cannot tell whether it is in use: %s", path,
                          strerror(e));
                return -e;
        }
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        log_info("control socket %s: replaced the one a stopped daemon left", path);
        return 0;
}

int ctlsock_open(struct ctlsock *s, const char *path)
{
        *s = (struct ctlsock){.fd = -1};
        struct sockaddr_un sa;
        if (socket_address(path, &sa) < 0) {
                log_error("control socket %s: path too long (%zu bytes, at most %zu)", path,
                          strlen(path), sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        int r = clear_stale(path, &sa);
        if (r < 0) {
                if (r != -EEXIST && r != -EADDRINUSE)
                        log_error("control socket %s: %s", path, strerror(-r));
                return r;
        }
        s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) {
                r = -errno;
                log_error("control socket: socket: %s", strerror(-r));
                return r;
        }
        struct stat st;
        /* The file is made with the umask's mode (at most what it allows), then opened up to
         * the owner's group: no moment where it is wider than 0660. */
        if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
            stat(path, &st) < 0 || listen(s->fd, CTL_CONNS_MAX) < 0) {
                r = -errno;
                log_error("control socket %s: %s", path, strerror(-r));
                close(s->fd);
                s->fd = -1;
                return r;
        }
        s->dev = st.st_dev;
        s->ino = st.st_ino;
        s->path = strdup(path);
        if (!s->path) {
                ctlsock_close(s);
                return -ENOMEM;
        }
        log_info("control socket: %s", path);
        return 0;
}

static void conn_close(struct ctlsock *s, int i)
{
        struct ctl_conn *c = &s->conns[i];
        /* Whatever the client sent past its line is read first: closing with unread bytes
         * would reset the connection, and the client could lose the end of its answer. */
        char scratch[512];
        while (recv(c->fd, scratch, sizeof(scratch), MSG_DONTWAIT) > 0)
                ;
        close(c->fd);
        free(c->out);
        if (c->stream.end)
                c->stream.end(c->stream.state);
        /* The last one takes its place: the order does not matter. */
        s->conns[i] = s->conns[--s->n_conns];
}

void ctlsock_close(struct ctlsock *s)
{
        while (s->n_conns)
                conn_close(s, s->n_conns - 1);
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        struct stat st;
        if (s->path && stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
                unlink(s->path);
        free(s->path);
        s->path = NULL;
}

int ctlsock_pollfds(const struct ctlsock *s, struct pollfd *pfd)
{
        if (s->fd < 0)
                return 0;
        int n = 0;
        pfd[n++] = (struct pollfd){.fd = s->fd, .events = POLLIN};
        for (int i = 0; i < s->n_conns; i++) {
                const struct ctl_conn *c = &s->conns[i];
                short ev = c->out ? POLLOUT : POLLIN;
                if (c->stream.pump) /* its client going away shows as POLLHUP */
                        ev = (short)((c->peer_eof ? 0 : POLLIN) |
                                     (c->out_done < c->out_len ? POLLOUT : 0));
                pfd[n++] = (struct pollfd){.fd = c->fd, .events = ev};
        }
        return n;
}

int ctlsock_timeout_ms(const struct ctlsock *s, uint64_t now_ns)
{
        int t = -1;
        for (int i = 0; i < s->n_conns; i++) {
                if (s->conns[i].stream.pump) {
                        if (t < 0 || CTL_STREAM_MS < t)
                                t = CTL_STREAM_MS;
                        continue;
                }
                uint64_t d = s->conns[i].deadline_ns;
                int ms = d <= now_ns ? 0 : (int)((d - now_ns + 999999) / 1000000);
                if (t < 0 || ms < t)
                        t = ms;
        }
        return t;
}

void ctlsock_trim(const char *line, size_t len, char *cmd)
{
        const char *nl = memchr(line, '\n', len);
        if (nl)
                len = (size_t)(nl - line);
        while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
                len--;
        while (len && (*line == ' ' || *line == '\t')) {
                line++;
                len--;
        }
        if (len > CTL_REQUEST_MAX)
                len = CTL_REQUEST_MAX;
        memcpy(cmd, line, len);
        cmd[len] = 0;
}

/* A fixed answer, for a request that is not one. */
static void conn_refuse(struct ctl_conn *c, const char *answer)
{
        c->out = strdup(answer);
        c->out_len = c->out ? strlen(answer) : 0;
        c->out_done = 0;
}

/* The answer: "ok\n" and the text, or "error: " and the reason's line. */
static void conn_answer(struct ctl_conn *c, ctl_handler handler, void *arg)
{
        const char *nl = memchr(c->in, '\n', c->in_len);
        if (memchr(c->in, 0, nl ? (size_t)(nl - c->in) : c->in_len)) {
                /* A command is text: one with a NUL would be read as its part before it. */
                conn_refuse(c, "error: the request holds a NUL byte: a command is a line of "
                               "text\n");
                return;
        }
        char cmd[CTL_REQUEST_MAX + 1];
        ctlsock_trim(c->in, c->in_len, cmd);
        char *body = NULL;
        size_t body_len = 0;
        FILE *f = open_memstream(&body, &body_len);
        bool ok = false;
        c->stream = (struct ctl_stream){0};
        if (f) {
                ok = handler(arg, cmd, c->uid, f, &c->stream);
                if (fclose(f) != 0) {
                        free(body);
                        body = NULL;
                }
        }
        if ((!ok || !body) && c->stream.end) {
                c->stream.end(c->stream.state);
                c->stream = (struct ctl_stream){0};
        }
        if (c->stream.pump)
                c->deadline_ns = UINT64_MAX; /* it lasts as long as the client wants */
        const char *head = ok ? "ok\n" : "error: ";
        if (!body) {
                head = "error: ";
                body_len = 0;
        }
        size_t hl = strlen(head);
        c->out = malloc(hl + body_len + 32);
        if (c->out) {
                memcpy(c->out, head, hl);
                if (body_len)
                        memcpy(c->out + hl, body, body_len);
                c->out_len = hl + body_len;
                if (!body) {
                        const char *oom = "out of memory\n";
                        memcpy(c->out + hl, oom, strlen(oom));
                        c->out_len += strlen(oom);
                } else if (!ok && (body_len == 0 || body[body_len - 1] != '\n')) {
                        c->out[c->out_len++] = '\n';
                }
        }
        free(body);
        c->out_done = 0;
}

/* Reads what the client sent; answers once its line is complete. Returns false when the
 * connection is to be closed. */
static bool conn_read(struct ctl_conn *c, ctl_handler handler, void *arg)
{
        size_t room = CTL_REQUEST_MAX + 1 - c->in_len;
        ssize_t r = recv(c->fd, c->in + c->in_len, room, MSG_DONTWAIT);
        if (r < 0)
                return errno == EAGAIN || errno == EINTR;
        c->in_len += (size_t)r;
        bool line = memchr(c->in, '\n', c->in_len) != NULL;
        if (r == 0 && c->in_len == 0)
                return false; /* connected and went away */
        if (!line && c->in_len > CTL_REQUEST_MAX) {
                conn_refuse(c, "error: request too long: a command is one line of at most 256 "
                               "bytes\n");
                return c->out != NULL;
        }
        /* A line, or all the client will send (it shut its side down). */
        if (line || r == 0)
                conn_answer(c, handler, arg);
        return c->out != NULL || !line;
}

/* Writes what it can of the answer; false once all went (or the client is gone). A stream
 * goes on while its pump has more. */
static bool conn_write(struct ctl_conn *c)
{
        for (;;) {
                while (c->out_done < c->out_len) {
                        ssize_t r = send(c->fd, c->out + c->out_done, c->out_len - c->out_done,
                                         MSG_DONTWAIT | MSG_NOSIGNAL);
                        if (r < 0)
                                return errno == EAGAIN || errno == EINTR;
                        c->out_done += (size_t)r;
                }
                if (!c->stream.pump || c->ending)
                        return false;
                /* All went: what is new, if anything. */
                char *buf = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&buf, &len);
                if (!f)
                        return false;
                bool more = c->stream.pump(c->stream.state, f);
                if (fclose(f) != 0) {
                        free(buf);
                        return false;
                }
                free(c->out);
                c->out = buf;
                c->out_len = len;
                c->out_done = 0;
                c->ending = !more;
                if (len == 0 && more)
                        return true; /* nothing new: next time round */
        }
}

/* Whether a streaming client is still there. It has nothing more to say: what it sends is
 * ignored, and the end of its sending side (actorctl shuts it after the command) is not its
 * going away; closing its socket is (POLLHUP), as is a failed send. */
static bool stream_client_there(struct ctl_conn *c, short ev)
{
        if (ev & (POLLHUP | POLLERR))
                return false;
        char buf[256];
        ssize_t r;
        while ((r = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                ;
        if (r == 0)
                c->peer_eof = true;
        return r == 0 || errno == EAGAIN || errno == EINTR;
}

void ctlsock_end_streams(struct ctlsock *s, const char *why)
{
        for (int i = 0; i < s->n_conns; i++) {
                struct ctl_conn *c = &s->conns[i];
                if (!c->stream.pump)
                        continue;
                c->stream.end(c->stream.state);
                c->stream = (struct ctl_stream){0};
                c->ending = true;
                c->deadline_ns = mono_ns() + (uint64_t)CTL_TIMEOUT_MS * 1000000u;
                /* After what is queued: the client reads the stream's end in order. */
                size_t wl = strlen(why), left = c->out_len - c->out_done;
                char *n = malloc(left + wl);
                if (!n)
                        continue;
                memcpy(n, c->out + c->out_done, left);
                memcpy(n + left, why, wl);
                free(c->out);
                c->out = n;
                c->out_len = left + wl;
                c->out_done = 0;
        }
}

static void accept_one(struct ctlsock *s, uint64_t now_ns)
{
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
                return;
        if (s->n_conns == CTL_CONNS_MAX) {
                static const char msg[] = "error: busy: too many requests at once; try again\n";
                ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
                (void)w;
                close(fd);
                return;
        }
        struct ucred cr = {0};
        socklen_t cl = sizeof(cr);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) < 0) {
                close(fd);
                return;
        }
        struct ctl_conn *c = &s->conns[s->n_conns++];
        *c = (struct ctl_conn){
            .fd = fd, .uid = cr.uid, .deadline_ns = now_ns + (uint64_t)CTL_TIMEOUT_MS * 1000000u};
}

void ctlsock_process(struct ctlsock *s, const struct pollfd *pfd, int n, uint64_t now_ns,
                     ctl_handler handler, void *arg)
{
        if (s->fd < 0 || n <= 0)
                return;
        /* pfd[1 + i] is conns[i] as it was when polled: walk down, since closing one moves
         * the last connection into its place. */
        for (int i = n - 2; i >= 0; i--) {
                struct ctl_conn *c = &s->conns[i];
                short ev = pfd[1 + i].revents;
                bool keep = true;
                if (c->stream.pump) {
                        /* Every time round: what is new goes out once the last part did. */
                        if (ev & (POLLIN | POLLHUP | POLLERR))
                                keep = stream_client_there(c, ev);
                        if (keep)
                                keep = conn_write(c);
                        if (!keep)
                                conn_close(s, i);
                        continue;
                }
                if (ev & (POLLIN | POLLHUP | POLLERR) && !c->out)
                        keep = conn_read(c, handler, arg);
                if (keep && c->out && ev & (POLLOUT | POLLERR | POLLHUP | POLLIN))
                        keep = conn_write(c);
                if (keep && c->deadline_ns <= now_ns)
                        keep = false;
                if (!keep)
                        conn_close(s, i);
        }
        if (pfd[0].revents & POLLIN)
                for (int k = 0; k < CTL_CONNS_MAX; k++) {
                        int before = s->n_conns;
                        accept_one(s, now_ns);
                        if (s->n_conns == before && s->n_conns < CTL_CONNS_MAX)
                                break; /* nothing more to accept */
                }
}
