/* The metrics over HTTP (actord.metrics_listen), for a Prometheus server to scrape: GET
 * /metrics answers what the control socket's `metrics` does. libmicrohttpd serves it on the
 * main thread, in the main loop: its epoll set is one more fd there (httpd_pollfd) and
 * httpd_process() runs it, so the answer is rendered where the control socket's is, without a
 * lock and without a thread of its own. A slow client holds no one up: libmicrohttpd writes
 * what the socket takes and carries on at the next readiness. */
#ifndef ACTORD_HTTPD_H
#define ACTORD_HTTPD_H

#include <stdbool.h>
#include <stdio.h>

struct httpd;

/* Writes the metrics text into out (the main thread's). */
typedef void httpd_metrics_fn(void *arg, FILE *out);
/* Whether the daemon is well (no worker stuck in a run), for GET /health. */
typedef bool httpd_health_fn(void *arg);

struct config;

/* Listens on c->metrics_listen ("host:port", "[IPv6]:port", ":port"; config_parse_listen) and
 * serves the metrics from fn(arg), and GET /health from health(arg): over HTTPS with
 * c->metrics_tls_cert and its key (read now: a renewed certificate takes a new httpd), to
 * c->metrics_users alone (basic authentication, passwords checked by crypt(3)) where there are any,
 * but for /health, which says "ok" or "stalled" and nothing more. Keeps nothing of c. Returns 0, or
 * a negative errno with the reason in err (the failing step and strerror, or the resolver's
 * message). */
int httpd_open(struct httpd **ret, const struct config *c, httpd_metrics_fn *fn,
               httpd_health_fn *health, void *arg, char *err, size_t err_len);
/* Whether h serves HTTPS with the very certificate and key that c's files hold now (false for
 * NULL, plain HTTP, or files that cannot be read). */
bool httpd_tls_current(const struct httpd *h, const struct config *c);
/* Stops serving and closes every connection; accepts NULL. */
void httpd_close(struct httpd *h);
/* The fd to poll for input (the server's epoll set), or -1 for NULL. */
int httpd_pollfd(const struct httpd *h);
/* How long until httpd_process() must run although the fd is quiet (connection timeouts), in
 * ms; -1: no limit. */
int httpd_timeout_ms(struct httpd *h);
/* Does what is ready: accepts, reads requests, answers. Never blocks. */
void httpd_process(struct httpd *h);
/* "http://127.0.0.1:9464/metrics" (https://...), with the port bound (for ":0", the one the
 * kernel chose); NULL for NULL. */
const char *httpd_url(const struct httpd *h);
/* The port bound. */
unsigned httpd_port(const struct httpd *h);

#endif
