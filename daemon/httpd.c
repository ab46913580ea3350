/* The metrics over HTTP: see httpd.h. */
#define _GNU_SOURCE
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <crypt.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <microhttpd.h>

#include "clock.h"
#include "config.h"
#include "log.h"

/* A scraper or two, and someone with curl: more waiting connections are refused at once. */
#define HTTPD_CONNECTIONS 32
#define HTTPD_PER_IP 8
/* Seconds a connection may stay silent (a client that connects and sends nothing). */
#define HTTPD_IDLE_S 10
/* Passwords checked by crypt(3) per second at most (each costs the main thread milliseconds,
 * yescrypt's and bcrypt's tens of them), in all and per client address: beyond that, a login
 * that is not the one that matched last is refused unchecked, so that guessing cannot take the
 * main thread, nor, from one address, lock the others out. */
#define HTTPD_CRYPTS_PER_S 8
#define HTTPD_CRYPTS_PER_CLIENT_S 2
/* Client addresses whose checks are counted; beyond them the least recent is forgotten. */
#define HTTPD_CLIENTS 32

struct httpd_client {
        unsigned char addr[16]; /* IPv4 in the first 4 */
        int family;
        uint64_t second;
        unsigned crypts;
};

#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A user who may read the metrics: the hash of the password, and the password that matched it
 * last, so that a scraper's every request does not cost a crypt(3) (tens of milliseconds for
 * yescrypt or bcrypt, on the main thread). */
struct httpd_user {
        char *name, *hash;
        char *matched; /* or NULL */
};

struct httpd {
        struct MHD_Daemon *mhd;
        int fd;   /* the listening socket, ours: libmicrohttpd does not close it */
        int epfd; /* libmicrohttpd's epoll set */
        httpd_metrics_fn *fn;
        httpd_health_fn *health;
        void *arg;
        unsigned port;
        char url[96];
        char *cert, *key; /* PEM text for HTTPS, or NULL */
        struct httpd_user *users;
        int n_users;
        struct crypt_data *crypt; /* crypt_r's work area, with users */
        uint64_t crypt_second;    /* the second (CLOCK_MONOTONIC) of the crypts counted */
        unsigned crypts;          /* passwords checked in it */
        struct httpd_client clients[HTTPD_CLIENTS]; /* the most recent first */
        int n_clients;
        uint64_t unchecked, unchecked_untold; /* logins refused unchecked: all, since the log */
        uint64_t unchecked_told_ns;
};

/* Secrets compared in a time that does not depend on where they differ. */
static bool same_secret(const char *a, const char *b)
{
        size_t n = strlen(a);
        if (n != strlen(b))
                return false;
        unsigned char diff = 0;
        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char)(a[i] ^ b[i]);
        return diff == 0;
}

static void free_secret(char *s)
{
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

/* The count of the client at sa, moved to the front of the table (made there if new). */
static struct httpd_client *client_of(struct httpd *h, const struct sockaddr *sa)
{
        struct httpd_client c = {.family = sa ? sa->sa_family : AF_UNSPEC};
        if (c.family == AF_INET)
                memcpy(c.addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        else if (c.family == AF_INET6)
                memcpy(c.addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        int i = 0;
        while (i < h->n_clients &&
               (h->clients[i].family != c.family || memcmp(h->clients[i].addr, c.addr, 16)))
                i++;
        if (i == h->n_clients) {
                if (h->n_clients < HTTPD_CLIENTS)
                        h->n_clients++;
                i = h->n_clients - 1; /* new, or the least recent forgotten */
        } else
                c = h->clients[i];
        memmove(&h->clients[1], &h->clients[0], (size_t)i * sizeof(c));
        h->clients[0] = c;
        return &h->clients[0];
}

/* Whether one more crypt(3) fits in this second's budgets, in all and for the client at sa.
 * Refusals are logged at once, then at most every 10 s with the count since. */
static bool may_crypt(struct httpd *h, const struct sockaddr *sa)
{
        uint64_t now = mono_ns(), second = now / 1000000000u;
        if (second != h->crypt_second) {
                h->crypt_second = second;
                h->crypts = 0;
        }
        struct httpd_client *c = client_of(h, sa);
        if (c->second != second) {
                c->second = second;
                c->crypts = 0;
        }
        if (h->crypts < HTTPD_CRYPTS_PER_S && c->crypts < HTTPD_CRYPTS_PER_CLIENT_S) {
                h->crypts++;
                c->crypts++;
                return true;
        }
        h->unchecked++;
        h->unchecked_untold++;
        if (!h->unchecked_told_ns || now - h->unchecked_told_ns >= 10000000000u) {
                log_warning("metrics over HTTP: %llu logins refused unchecked (%llu so far): more "
                            "than %d passwords to check in a second (%d from one address)",
                            (unsigned long long)h->unchecked_untold,
                            (unsigned long long)h->unchecked, HTTPD_CRYPTS_PER_S,
                            HTTPD_CRYPTS_PER_CLIENT_S);
                h->unchecked_told_ns = now;
                h->unchecked_untold = 0;
        }
        return false;
}

static bool password_ok(struct httpd *h, struct httpd_user *u, const char *pass,
                        const struct sockaddr *from)
{
        if (u->matched && same_secret(u->matched, pass))
                return true;
        if (!may_crypt(h, from))
                return false;
        const char *r = crypt_r(pass, u->hash, h->crypt);
        /* A failure is "*..." (or NULL): never the hash. */
        bool ok = r && r[0] == '$' && same_secret(r, u->hash);
        if (ok) {
                free_secret(u->matched);
                u->matched = strdup(pass);
        }
        return ok;
}

/* Whether the request may have the metrics: no users, or one of them with its password. */
static bool authorised(struct httpd *h, struct MHD_Connection *conn)
{
        if (!h->n_users)
                return true;
        char *pass = NULL;
        char *user = MHD_basic_auth_get_username_password(conn, &pass);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        const struct sockaddr *from = ci ? ci->client_addr : NULL;
        bool ok = false, known = false;
        for (int i = 0; user && pass && i < h->n_users; i++)
                if (!strcmp(h->users[i].name, user)) {
                        ok = password_ok(h, &h->users[i], pass, from);
                        known = true;
                        break;
                }
        /* An unknown name costs what a wrong password does (a crypt(3), within the same
         * budgets, against the first user's hash), so that the time of the answer does not
         * tell which names exist. */
        if (user && pass && !known && may_crypt(h, from))
                (void)crypt_r(pass, h->users[0].hash, h->crypt);
        if (pass) {
                explicit_bzero(pass, strlen(pass));
                MHD_free(pass);
        }
        if (user)
                MHD_free(user);
        return ok;
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        (void)cls;
        char buf[512];
        vsnprintf(buf, sizeof(buf), fmt, ap);
        buf[strcspn(buf, "\n")] = 0;
        log_warning("metrics over HTTP: %s", buf);
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len, const char *allow)
{
        struct MHD_Response *r =
            MHD_create_response_from_buffer_with_free_callback(len, body, free);
        if (!r) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        if (allow)
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        enum MHD_Result q = MHD_queue_response(conn, status, r);
        MHD_destroy_response(r);
        return q;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text,
                                  const char *allow)
{
        char *body = strdup(text);
        if (!body)
                return MHD_NO;
        return reply(conn, status, "text/plain; charset=utf-8", body, strlen(body), allow);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **req_cls)
{
        struct httpd *h = cls;
        (void)version;
        (void)upload;
        /* The first call has the headers only: an answer queued then, before libmicrohttpd
         * knows the request is whole, makes it close the connection (no keep-alive for the
         * scraper). A GET is answered on the next call. */
        static int seen;
        bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
        /* Another method is answered at once, and its connection closed with its body unread. */
        if (!get)
                return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                  "only GET and HEAD: the metrics are at /metrics\n", "GET, HEAD");
        if (!*req_cls) {
                *req_cls = &seen;
                return MHD_YES;
        }
        if (*upload_len) {
                *upload_len = 0; /* a GET with a body: skipped */
                return MHD_YES;
        }
        /* For a load balancer's or an orchestrator's probe: no login, and no more than this. */
        if (!strcmp(url, "/health")) {
                bool well = h->health(h->arg);
                return reply_text(conn, well ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                                  well ? "ok\n" : "stalled\n", NULL);
        }
        if (!authorised(h, conn)) {
                static char body[] = "login required\n";
                struct MHD_Response *r =
                    MHD_create_response_from_buffer(sizeof(body) - 1, body, MHD_RESPMEM_PERSISTENT);
                if (!r)
                        return MHD_NO;
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        "text/plain; charset=utf-8");
                enum MHD_Result q = MHD_queue_basic_auth_fail_response(conn, "actord metrics", r);
                MHD_destroy_response(r);
                return q;
        }
        if (!strcmp(url, "/metrics")) {
                char *body = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&body, &len);
                if (!f)
                        return MHD_NO;
                h->fn(h->arg, f);
                if (fclose(f) != 0) {
                        free(body);
                        return MHD_NO;
                }
                return reply(conn, MHD_HTTP_OK, METRICS_TYPE, body, len, NULL);
        }
        if (!strcmp(url, "/"))
                return reply_text(conn, MHD_HTTP_OK,
                                  "actord: the metrics are at /metrics, the health at /health\n",
                                  NULL);
        return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n",
                          NULL);
}

/* A listening socket on host:port; every address (host "") is IPv6's any, taking IPv4 too
 * where the system allows, else IPv4's. */
static int listen_on(const char *host, unsigned port, char *err, size_t err_len)
{
        char service[8];
        snprintf(service, sizeof(service), "%u", port);
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                                 .ai_family = AF_UNSPEC};
        struct addrinfo *ai = NULL;
        int g = getaddrinfo(*host ? host : NULL, service, &hints, &ai);
        if (g) {
                snprintf(err, err_len, "cannot resolve '%s': %s", host, gai_strerror(g));
                return -EINVAL;
        }
        /* A host's addresses in the resolver's order; every address: IPv6's first, which takes
         * both families. */
        struct addrinfo *order[16];
        int n = 0;
        for (struct addrinfo *a = ai; a && n < 16; a = a->ai_next)
                if (*host || a->ai_family == AF_INET6)
                        order[n++] = a;
        for (struct addrinfo *a = ai; a && n < 16 && !*host; a = a->ai_next)
                if (a->ai_family != AF_INET6)
                        order[n++] = a;
        int fd = -1, r = -EADDRNOTAVAIL;
        for (int i = 0; i < n && fd < 0; i++) {
                struct addrinfo *a = order[i];
                fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                int one = 1, zero = 0;
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (a->ai_family == AF_INET6 && !*host)
                        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 64) < 0) {
                        r = -errno;
                        close(fd);
                        fd = -1;
                }
        }
        freeaddrinfo(ai);
        if (fd < 0)
                snprintf(err, err_len, "cannot listen: %s", strerror(-r));
        return fd >= 0 ? fd : r;
}

static void format_url(struct httpd *h)
{
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char addr[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (getsockname(h->fd, (struct sockaddr *)&ss, &len) == 0) {
                if (ss.ss_family == AF_INET) {
                        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
                        inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
                        port = ntohs(s4->sin_port);
                } else if (ss.ss_family == AF_INET6) {
                        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
                        inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
                        port = ntohs(s6->sin6_port);
                }
        }
        h->port = port;
        bool v6 = strchr(addr, ':') != NULL;
        snprintf(h->url, sizeof(h->url), "%s://%s%s%s:%u/metrics", h->cert ? "https" : "http",
                 v6 ? "[" : "", addr, v6 ? "]" : "", port);
}

/* The whole of a PEM file, or NULL with the reason in err. */
static char *read_pem(const char *path, const char *what, char *err, size_t err_len)
{
        errno = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        char *buf = NULL;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size < (1 << 20) &&
            (buf = calloc(1, (size_t)st.st_size + 1))) {
                ssize_t n = read(fd, buf, (size_t)st.st_size);
                if (n != st.st_size) {
                        free(buf);
                        buf = NULL;
                }
        }
        if (!buf)
                snprintf(err, err_len, "cannot read %s '%s': %s", what, path,
                         fd < 0 || errno ? strerror(errno) : "empty or too large");
        if (fd >= 0)
                close(fd);
        return buf;
}

static void free_users(struct httpd *h)
{
        for (int i = 0; i < h->n_users; i++) {
                free(h->users[i].name);
                free(h->users[i].hash);
                free_secret(h->users[i].matched);
        }
        free(h->users);
        free(h->crypt);
}

static void httpd_free(struct httpd *h)
{
        free_users(h);
        free(h->cert);
        free_secret(h->key);
        free(h);
}

int httpd_open(struct httpd **ret, const struct config *c, httpd_metrics_fn *fn,
               httpd_health_fn *health, void *arg, char *err, size_t err_len)
{
        char host[256];
        unsigned port;
        *ret = NULL;
        if (config_parse_listen(c->metrics_listen, host, sizeof(host), &port) < 0) {
                snprintf(err, err_len, "not HOST:PORT");
                return -EINVAL;
        }
        struct httpd *h = calloc(1, sizeof(*h));
        if (!h) {
                snprintf(err, err_len, "out of memory");
                return -ENOMEM;
        }
        h->fn = fn;
        h->health = health;
        h->arg = arg;
        h->fd = -1;
        if (c->metrics_tls_cert &&
            (!(h->cert = read_pem(c->metrics_tls_cert, "metrics_tls_cert", err, err_len)) ||
             !(h->key = read_pem(c->metrics_tls_key, "metrics_tls_key", err, err_len)))) {
                httpd_free(h);
                return -EINVAL;
        }
        if (c->n_metrics_users) {
                h->users = calloc((size_t)c->n_metrics_users, sizeof(*h->users));
                h->crypt = calloc(1, sizeof(*h->crypt));
                for (int i = 0; h->users && i < c->n_metrics_users; i++, h->n_users++)
                        if (!(h->users[i].name = strdup(c->metrics_users[i].name)) ||
                            !(h->users[i].hash = strdup(c->metrics_users[i].hash)))
                                break;
                if (!h->users || !h->crypt || h->n_users != c->n_metrics_users) {
                        snprintf(err, err_len, "out of memory");
                        httpd_free(h);
                        return -ENOMEM;
                }
        }
        h->fd = listen_on(host, port, err, err_len);
        if (h->fd < 0) {
                int r = h->fd;
                httpd_free(h);
                return r;
        }
        format_url(h);
        unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (h->cert ? MHD_USE_TLS : 0);
        /* The logger first: it takes the messages of the options after it. The key and the
         * certificate last: without TLS, MHD_OPTION_END ends the list there. */
        h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, answer, h, MHD_OPTION_EXTERNAL_LOGGER,
                                  mhd_log, NULL, MHD_OPTION_LISTEN_SOCKET, h->fd,
                                  MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPD_CONNECTIONS,
                                  MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTPD_PER_IP,
                                  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPD_IDLE_S,
                                  h->cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, h->key,
                                  MHD_OPTION_HTTPS_MEM_CERT, h->cert, MHD_OPTION_END);
        const union MHD_DaemonInfo *info =
            h->mhd ? MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
        if (!info) {
                snprintf(err, err_len,
                         h->cert ? "cannot start the HTTPS server (libmicrohttpd): is "
                                   "metrics_tls_key the key of metrics_tls_cert?"
                                 : "cannot start the HTTP server (libmicrohttpd)");
                if (h->mhd)
                        MHD_stop_daemon(h->mhd);
                close(h->fd);
                httpd_free(h);
                return -EIO;
        }
        h->epfd = info->epoll_fd;
        *ret = h;
        return 0;
}

bool httpd_tls_current(const struct httpd *h, const struct config *c)
{
        if (!h || !h->cert || !c->metrics_tls_cert)
                return false;
        char err[256];
        char *cert = read_pem(c->metrics_tls_cert, "metrics_tls_cert", err, sizeof(err));
        char *key = read_pem(c->metrics_tls_key, "metrics_tls_key", err, sizeof(err));
        bool same = cert && key && !strcmp(cert, h->cert) && same_secret(key, h->key);
        free(cert);
        free_secret(key);
        return same;
}

void httpd_close(struct httpd *h)
{
        if (!h)
                return;
        MHD_stop_daemon(h->mhd);
        close(h->fd);
        httpd_free(h);
}

int httpd_pollfd(const struct httpd *h)
{
        return h ? h->epfd : -1;
}

int httpd_timeout_ms(struct httpd *h)
{
        MHD_UNSIGNED_LONG_LONG t;
        if (!h || MHD_get_timeout(h->mhd, &t) != MHD_YES)
                return -1;
        return t > 60000 ? 60000 : (int)t;
}

void httpd_process(struct httpd *h)
{
        if (h)
                MHD_run(h->mhd);
}

const char *httpd_url(const struct httpd *h)
{
        return h ? h->url : NULL;
}

unsigned httpd_port(const struct httpd *h)
{
        return h->port;
}
