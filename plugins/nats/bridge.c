/* What nats.publish and nats.subscribe share: settings, the connection, the bridge thread's
 * life, and reporting (bridge.h). */
#define _GNU_SOURCE /* asprintf */
#include "bridge.h"
#include "deadline.h"
#include "helper_thread.h"

#include <ctype.h>
#include <sched.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Why a URL list (comma-separated, as libnats takes it) is not one, or NULL: libnats itself
 * finds out only when it connects, on the bridge thread, too late for a clear error. */
static const char *url_error(const char *list, char *buf, size_t len)
{
        const char *p = list;
        if (!*p)
                return "url is empty";
        for (int count = 1;; count++) {
                if (count > BRIDGE_SERVERS_MAX) {
                        snprintf(buf, len, "more than %d servers", BRIDGE_SERVERS_MAX);
                        return buf;
                }
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                const char *host = p, *stop = p + n;
                const char *scheme_end = memmem(p, n, "://", 3);
                if (scheme_end) {
                        size_t s = (size_t)(scheme_end - p);
                        if (!((s == 4 && !strncmp(p, "nats", 4)) ||
                              (s == 3 && !strncmp(p, "tls", 3)))) {
                                snprintf(buf, len, "'%.*s': the scheme must be nats:// or tls://",
                                         (int)n, p);
                                return buf;
                        }
                        host = scheme_end + 3;
                }
                const char *at = memrchr(host, '@', (size_t)(stop - host));
                if (at)
                        host = at + 1;
                const char *colon = memrchr(host, ':', (size_t)(stop - host));
                const char *host_end = colon ? colon : stop;
                if (host_end == host) {
                        snprintf(buf, len, "'%.*s' names no host", (int)n, p);
                        return buf;
                }
                for (const char *c = host; c < host_end; c++)
                        if (isspace((unsigned char)*c) || *c == '/') {
                                snprintf(buf, len, "'%.*s': bad host", (int)n, p);
                                return buf;
                        }
                if (colon) {
                        unsigned long port = 0;
                        const char *c = colon + 1;
                        for (; c < stop && isdigit((unsigned char)*c) && port <= 65535; c++)
                                port = port * 10 + (unsigned long)(*c - '0');
                        if (c != stop || c == colon + 1 || port == 0 || port > 65535) {
                                snprintf(buf, len, "'%.*s': the port must be 1 .. 65535", (int)n,
                                         p);
                                return buf;
                        }
                }
                if (!end)
                        return NULL;
                p = end + 1;
        }
}

/* The URL list with passwords (and tokens) replaced, for the log. */
static char *url_shown(const char *list)
{
        size_t len = strlen(list);
        char *out = malloc(len * 2 + 8);
        if (!out)
                return NULL;
        char *o = out;
        const char *p = list;
        for (;;) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                const char *host = p;
                const char *scheme_end = memmem(p, n, "://", 3);
                if (scheme_end)
                        host = scheme_end + 3;
                const char *at = memrchr(host, '@', (size_t)(p + n - host));
                if (at) {
                        const char *colon = memchr(host, ':', (size_t)(at - host));
                        /* user:password@ keeps the user; a lone token@ is all secret. */
                        const char *keep = colon ? colon + 1 : host;
                        memcpy(o, p, (size_t)(keep - p));
                        o += keep - p;
                        memcpy(o, "***", 3);
                        o += 3;
                        memcpy(o, at, (size_t)(p + n - at));
                        o += p + n - at;
                } else {
                        memcpy(o, p, n);
                        o += n;
                }
                if (!end)
                        break;
                *o++ = ',';
                p = end + 1;
        }
        *o = '\0';
        return out;
}

/* Why `s` is not a subject to publish to (wildcards: false) or subscribe to, or NULL. */
static const char *subject_error(const char *s, bool wildcards)
{
        if (!*s)
                return "subject is empty";
        size_t n = strlen(s);
        if (s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
                return "subject has an empty token (a dot at either end, or two in a row)";
        for (const char *p = s; *p; p++) {
                if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
                        return "subject contains white space or a control character";
                if ((*p == '*' || *p == '>') && !wildcards)
                        return "subject contains a wildcard ('*' or '>'): a publisher needs one "
                               "subject";
        }
        if (wildcards) {
                /* A wildcard is a whole token, and '>' only the last one. */
                for (const char *p = s; *p; p++) {
                        if (*p != '*' && *p != '>')
                                continue;
                        bool alone = (p == s || p[-1] == '.') && (p[1] == '\0' || p[1] == '.');
                        if (!alone)
                                return "a wildcard ('*' or '>') must be a whole token";
                        if (*p == '>' && p[1] != '\0')
                                return "'>' may only be the last token";
                }
        }
        return NULL;
}

/* Why the text is not a user's public NKey ('U' and 55 more of base32's letters), or NULL. */
static const char *nkey_error(const char *k)
{
        if (k[0] != 'U')
                return "not a user's public key (they start with U)";
        if (strlen(k) != 56 || strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != 56)
                return "not a public key (56 letters and digits 2-7)";
        return NULL;
}

static void bridge_free(struct bridge *b)
{
        if (b->msgs)
                for (uint64_t t = atomic_load(&b->tail), h = atomic_load(&b->head); t != h; t++)
                        natsMsg_Destroy(b->msgs[t & (b->cap - 1)]);
        if (b->wake >= 0)
                close(b->wake);
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->cond);
        free(b->slots);
        free(b->msgs);
        free(b->url);
        free(b->shown);
        free(b->subject);
        free(b->tls_ca);
        free(b->tls_cert);
        free(b->tls_key);
        free(b->tls_hostname);
        free(b->nkey);
        free(b->nkey_seed);
        free(b->creds);
        free(b->source);
        for (int i = 0; i < b->n_sources; i++)
                free(b->sources[i].name);
        free(b->group);
        free(b->type);
        free(b);
}

static void bridge_unref(struct bridge *b)
{
        /* acq_rel: the last one sees everything the others did with the bridge. */
        if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
                bridge_free(b);
}

/* A file a setting names, checked now so that a wrong path is said at start, with its setting:
 * it must be readable, and where it holds a secret (a key, a seed, credentials), that others
 * may read it too is said. False, after actord_set_error(), when it cannot be read. */
static bool file_ok(struct actord_ctx *ctx, const char *what, const char *path, bool secret)
{
        struct stat st;
        if (stat(path, &st) < 0 || access(path, R_OK) < 0) {
                actord_set_error(ctx, "%s '%s': %s", what, path, strerror(errno));
                return false;
        }
        if (secret && (st.st_mode & 0077))
                actord_log(ctx, ACTORD_LOG_WARNING,
                           "%s '%s' may be read by others (mode %04o): it is a secret", what, path,
                           (unsigned)(st.st_mode & 07777));
        return true;
}

static struct bridge *bridge_create(struct actord_ctx *ctx, bool subscriber)
{
        const char *url = BRIDGE_URL_DEFAULT, *subject = NULL, *group = NULL, *why;
        char buf[200];
        (void)actord_setting_string(ctx, "url", &url);
        if (actord_setting_string(ctx, "subject", &subject) != 0) {
                actord_set_error(ctx, "setting 'subject' is required");
                return NULL;
        }
        if ((why = url_error(url, buf, sizeof(buf)))) {
                actord_set_error(ctx, "url: %s", why);
                return NULL;
        }
        if ((why = subject_error(subject, subscriber))) {
                actord_set_error(ctx, "'%s': %s", subject, why);
                return NULL;
        }
        if (subscriber && actord_setting_string(ctx, "group", &group) == 0 &&
            (why = subject_error(group, false))) {
                actord_set_error(ctx, "group '%s': %s", group, why + strlen("subject "));
                return NULL;
        }
        int64_t queue = BRIDGE_QUEUE_DEFAULT;
        if (actord_setting_int(ctx, "queue", &queue) == 0 &&
            (queue < 1 || queue > BRIDGE_QUEUE_MAX)) {
                actord_set_error(ctx, "queue must be in 1 .. %d messages, not %lld",
                                 BRIDGE_QUEUE_MAX, (long long)queue);
                return NULL;
        }
        const char *tls[4] = {NULL, NULL, NULL, NULL}; /* ca, cert, key, hostname */
        static const char *const tls_names[4] = {"tls_ca", "tls_cert", "tls_key", "tls_hostname"};
        for (int i = 0; i < 4; i++) {
                (void)actord_setting_string(ctx, tls_names[i], &tls[i]);
                /* ca, cert and key are files; the key is a secret. */
                if (i < 3 && tls[i] && !file_ok(ctx, tls_names[i], tls[i], i == 2))
                        return NULL;
        }
        if (!tls[1] != !tls[2]) {
                actord_set_error(ctx, "tls_cert and tls_key go together: %s is missing",
                                 tls[1] ? "tls_key" : "tls_cert");
                return NULL;
        }
        const char *nkey = NULL, *seed = NULL;
        (void)actord_setting_string(ctx, "nkey", &nkey);
        (void)actord_setting_string(ctx, "nkey_seed", &seed);
        if (!nkey != !seed) {
                actord_set_error(ctx, "nkey and nkey_seed go together: %s is missing",
                                 nkey ? "nkey_seed" : "nkey");
                return NULL;
        }
        if (nkey && (why = nkey_error(nkey))) {
                actord_set_error(ctx, "nkey '%.60s': %s", nkey, why);
                return NULL;
        }
        const char *creds = NULL;
        (void)actord_setting_string(ctx, "creds", &creds);
        if (creds && nkey) {
                actord_set_error(ctx, "creds and nkey: one or the other (a credentials file "
                                      "holds its own key)");
                return NULL;
        }
        if ((seed && !file_ok(ctx, "nkey_seed", seed, true)) ||
            (creds && !file_ok(ctx, "creds", creds, true)))
                return NULL;
        bool headers = true, batch = false;
        if (!subscriber) {
                (void)actord_setting_bool(ctx, "headers", &headers);
                (void)actord_setting_bool(ctx, "batch", &batch);
        }

        struct bridge *b = calloc(1, sizeof(*b));
        if (!b) {
                actord_set_error(ctx, "out of memory");
                return NULL;
        }
        b->wake = -1;
        pthread_mutex_init(&b->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&b->cond, &ca);
        pthread_condattr_destroy(&ca);
        atomic_init(&b->refs, 1);
        b->subscriber = subscriber;
        b->headers = headers;
        b->batch = batch;
        b->cap = 1;
        while (b->cap < (uint64_t)queue)
                b->cap <<= 1;
        b->size = actord_port_size(ctx, subscriber, 0);
        b->url = strdup(url);
        b->shown = url_shown(url);
        b->subject = strdup(subject);
        b->group = group ? strdup(group) : NULL;
        char **tls_to[4] = {&b->tls_ca, &b->tls_cert, &b->tls_key, &b->tls_hostname};
        bool copied = true;
        for (int i = 0; i < 4; i++)
                if (tls[i] && !(*tls_to[i] = strdup(tls[i])))
                        copied = false;
        if (nkey && (!(b->nkey = strdup(nkey)) || !(b->nkey_seed = strdup(seed))))
                copied = false;
        if (creds && !(b->creds = strdup(creds)))
                copied = false;
        if (!subscriber) {
                char host[256];
                if (gethostname(host, sizeof(host)) < 0)
                        snprintf(host, sizeof(host), "?");
                host[sizeof(host) - 1] = 0;
                if (asprintf(&b->source, "%s/%s", host, actord_name(ctx)) < 0)
                        b->source = NULL, copied = false;
        }
        if (asprintf(&b->type, "%s/%" PRIu32, actord_port_type(ctx, subscriber, 0), b->size) < 0)
                b->type = NULL;
        /* The subscriber's (on_event) wakes it for messages and events; the publisher's
         * (on_message, ABI 1.3) for events: NULL for a publisher scheduled periodic or loop,
         * which runs anyway, or under an older daemon, where it tells at its next message. */
        b->notifier = actord_notifier(ctx);
        if (subscriber) {
                b->msgs = calloc(b->cap, sizeof(*b->msgs));
        } else {
                b->slot_size = (sizeof(uint64_t) + b->size + 7) & ~(size_t)7;
                b->slots = calloc(b->cap, b->slot_size);
        }
        /* Blocking for the bridge thread's read; writers add 1 and never reach the limit. */
        b->wake = eventfd(0, EFD_CLOEXEC);
        if (!b->url || !b->shown || !b->subject || (group && !b->group) || !b->type || !copied ||
            (subscriber ? !b->msgs : !b->slots) || b->wake < 0) {
                actord_set_error(ctx, "cannot set up: %s", strerror(errno ? errno : ENOMEM));
                bridge_free(b);
                return NULL;
        }
        return b;
}

/* The tallies that are counters of the component's own (actorctl stats, the metrics), and
 * which class keeps each. */
static const struct tally_info {
        size_t offset; /* of its struct bridge_tally in struct bridge */
        bool pub, sub;
        const char *name, *help;
} tally_info[] = {
    {offsetof(struct bridge, disconnects), true, true, "disconnects",
     "Connections to the server lost."},
    {offsetof(struct bridge, queue_full), false, true, "queue_full",
     "Messages dropped because the queue between the client library and the worker was "
     "full."},
    {offsetof(struct bridge, send_failed), true, false, "send_failed",
     "Messages the client library refused to send (its reconnect buffer full)."},
    {offsetof(struct bridge, bad), false, true, "refused",
     "Messages refused: their size or Actord-Type header did not fit the output."},
    {offsetof(struct bridge, gaps), false, true, "gaps",
     "Messages missing by the Actord-Seq header: lost before they reached the subscriber."},
    {offsetof(struct bridge, slow), false, true, "slow_consumer",
     "Messages the client library dropped, its pending limit reached."},
};
#define N_TALLIES (sizeof(tally_info) / sizeof(tally_info[0]))

static struct bridge_tally *tally_of(struct bridge *b, const struct tally_info *ti)
{
        return (struct bridge_tally *)(void *)((char *)b + ti->offset);
}

static void declare_counters(struct actord_ctx *ctx, struct bridge *b)
{
        for (size_t i = 0; i < N_TALLIES; i++) {
                const struct tally_info *ti = &tally_info[i];
                tally_of(b, ti)->counter = (b->subscriber ? ti->sub : ti->pub)
                                               ? actord_counter(ctx, ti->name, ti->help)
                                               : -1;
        }
}

/* Worker: adds to each counter what its tally gained since. */
static void update_counters(struct actord_ctx *ctx, struct bridge *b)
{
        for (size_t i = 0; i < N_TALLIES; i++) {
                struct bridge_tally *t = tally_of(b, &tally_info[i]);
                uint64_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
                if (n != t->counted) {
                        actord_count(ctx, t->counter, n - t->counted);
                        t->counted = n;
                }
        }
}

int bridge_init(struct actord_ctx *ctx, void **ret_state, bool subscriber, void *(*main)(void *))
{
        struct bridge *b = bridge_create(ctx, subscriber);
        if (!b)
                return -EINVAL;
        declare_counters(ctx, b);
        atomic_fetch_add(&b->refs, 1); /* the thread's */
        int r = helper_thread_start(&b->thread, main, b,
                                    subscriber ? "actord-nats-sub" : "actord-nats-pub");
        if (r) {
                actord_set_error(ctx, "cannot start its thread: %s", strerror(r));
                bridge_free(b);
                return -r;
        }
        *ret_state = b;
        return 0;
}

void bridge_wake(struct bridge *b)
{
        /* seq_cst, with the bridge thread's store of `sleeping` and its reload of the work
         * (bridge_wait()): either it sees the work, or we see it asleep and wake it. */
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&b->sleeping, memory_order_relaxed)) {
                uint64_t one = 1;
                /* Cannot fail short of a closed descriptor: nothing to do about it here. */
                (void)!write(b->wake, &one, sizeof(one));
        }
}

bool bridge_wait(struct bridge *b, bool (*has_work)(struct bridge *b))
{
        for (;;) {
                if (has_work(b))
                        return true;
                if (atomic_load(&b->stop))
                        return false;
                atomic_store(&b->sleeping, true);
                /* seq_cst, pairs with bridge_wake(). */
                atomic_thread_fence(memory_order_seq_cst);
                if (!has_work(b) && !atomic_load(&b->stop)) {
                        uint64_t n;
                        if (read(b->wake, &n, sizeof(n)) < 0 && errno != EINTR) {
                                atomic_store(&b->sleeping, false);
                                return false;
                        }
                }
                atomic_store(&b->sleeping, false);
        }
}

void bridge_count(struct bridge_tally *t, uint64_t n, natsStatus why, struct bridge *b)
{
        atomic_fetch_add_explicit(&t->count, n, memory_order_relaxed);
        if (why != NATS_OK)
                atomic_store_explicit(&b->last_status, (int)why, memory_order_relaxed);
}

/* libnats's connection events, on its threads. */
static void on_connected(natsConnection *nc, void *closure)
{
        struct bridge *b = closure;
        (void)nc;
        atomic_fetch_add(&b->connects, 1);
        atomic_store(&b->connected, true);
        /* The subscriber's thread confirms the subscription once connected, and notifies
         * when it is made; the publisher's component says it is connected. */
        bridge_wake(b);
        if (!b->subscriber)
                bridge_notify(b);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
        struct bridge *b = closure;
        (void)nc;
        if (atomic_exchange(&b->connected, false))
                bridge_count(&b->disconnects, 1, NATS_CONNECTION_DISCONNECTED, b);
        atomic_store(&b->ready, false);
        bridge_notify(b);
}

/* The bridge cannot work: s, with `why` in words, or else libnats's last error on this thread
 * (a TLS handshake's reason, a file it could not read) without its source position. */
static void set_failed(struct bridge *b, natsStatus s, const char *why)
{
        if (!why) {
                why = nats_GetLastError(NULL);
                if (why && why[0] == '(') {
                        const char *end = strstr(why, "): ");
                        if (end)
                                why = end + 3;
                }
        }
        pthread_mutex_lock(&b->lock);
        snprintf(b->failed_why, sizeof(b->failed_why), "%s", why ? why : "");
        pthread_mutex_unlock(&b->lock);
        atomic_store(&b->failed, (int)s);
        /* The component fails at once, not at its next message. */
        bridge_notify(b);
}

static void on_closed(natsConnection *nc, void *closure)
{
        struct bridge *b = closure;
        atomic_store(&b->connected, false);
        /* Closed by libnats, not by us: it gave up (a server that came up later refused us,
         * say). The component fails, with the server's reason, and its restart policy decides;
         * waiting on would wait for nothing, without a word. */
        if (!atomic_load(&b->stop)) {
                const char *why = NULL;
                natsStatus s = natsConnection_GetLastError(nc, &why);
                set_failed(b, s != NATS_OK ? s : NATS_CONNECTION_CLOSED,
                           why && *why ? why : "the client library closed the connection");
        }
        pthread_mutex_lock(&b->lock);
        b->closed = true;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

natsStatus bridge_connect(struct bridge *b)
{
        natsOptions *o = NULL;
        char name[256];
        snprintf(name, sizeof(name), "actord %s %s", b->subscriber ? "subscribe" : "publish",
                 b->subject);
        /* A list is libnats's server pool (SetServers); SetURL takes one URL. */
        char *list = strdup(b->url), *save = NULL;
        const char *servers[BRIDGE_SERVERS_MAX];
        int n = 0;
        for (char *u = list ? strtok_r(list, ",", &save) : NULL; u && n < BRIDGE_SERVERS_MAX;
             u = strtok_r(NULL, ",", &save))
                servers[n++] = u;
        natsStatus s = list ? natsOptions_Create(&o) : NATS_NO_MEMORY;
        if (s == NATS_OK)
                s = natsOptions_SetServers(o, servers, n);
        /* libnats 3.4 takes the scheme for a name only: tls:// must ask for TLS itself. It
         * trusts no certificate authority of its own: without tls_ca no server is trusted. */
        if (s == NATS_OK && (strstr(b->url, "tls://") || b->tls_ca || b->tls_cert))
                s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK && b->tls_ca)
                s = natsOptions_LoadCATrustedCertificates(o, b->tls_ca);
        if (s == NATS_OK && b->tls_cert)
                s = natsOptions_LoadCertificatesChain(o, b->tls_cert, b->tls_key);
        if (s == NATS_OK && b->tls_hostname)
                s = natsOptions_SetExpectedHostname(o, b->tls_hostname);
        /* The seed (alone, or in the credentials file beside the user's JWT) is read at each
         * connect and signs the server's nonce. */
        if (s == NATS_OK && b->nkey)
                s = natsOptions_SetNKeyFromSeed(o, b->nkey, b->nkey_seed);
        if (s == NATS_OK && b->creds)
                s = natsOptions_SetUserCredentialsFromFiles(o, b->creds, NULL);
        if (s == NATS_OK)
                s = natsOptions_SetName(o, name);
        if (s == NATS_OK)
                s = natsOptions_SetTimeout(o, BRIDGE_CONNECT_TIMEOUT_MS);
        if (s == NATS_OK)
                s = natsOptions_SetMaxReconnect(o, -1); /* forever */
        if (s == NATS_OK)
                s = natsOptions_SetReconnectWait(o, BRIDGE_RECONNECT_WAIT_MS);
        /* Each publish written at once, a system call each on the bridge thread; libnats's
         * own flusher would add a millisecond to every message's way. */
        if (s == NATS_OK && !b->batch)
                s = natsOptions_SetSendAsap(o, true);
        if (s == NATS_OK)
                s = natsOptions_SetReconnectedCB(o, on_connected, b);
        if (s == NATS_OK)
                s = natsOptions_SetDisconnectedCB(o, on_disconnected, b);
        if (s == NATS_OK)
                s = natsOptions_SetClosedCB(o, on_closed, b);
        /* One attempt first: a server that refuses us (TLS, authorization) says why, and
         * trying again would not change it; libnats's background retries would not say it.
         * A failed attempt calls none of the callbacks. */
        if (s == NATS_OK)
                s = natsConnection_Connect(&b->nc, o);
        /* No server there yet: libnats goes on trying in the background. */
        if (s == NATS_NO_SERVER || s == NATS_TIMEOUT || s == NATS_IO_ERROR) {
                s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, b);
                if (s == NATS_OK)
                        s = natsConnection_Connect(&b->nc, o);
        }
        natsOptions_Destroy(o);
        free(list);
        if (s == NATS_OK) {
                /* Connected at once: libnats calls on_connected only for a retried connect. */
                on_connected(b->nc, b);
        } else if (s == NATS_NOT_YET_CONNECTED) {
                s = NATS_OK; /* libnats goes on trying; on_connected says when */
        } else {
                b->nc = NULL;
                set_failed(b, s, NULL);
        }
        return s;
}

/* Waits (at most BRIDGE_CLOSE_WAIT_MS) until *flag is set under the lock. */
static bool wait_flag(struct bridge *b, const bool *flag)
{
        struct timespec until = deadline_after_ms(CLOCK_MONOTONIC, BRIDGE_CLOSE_WAIT_MS);
        pthread_mutex_lock(&b->lock);
        while (!*flag)
                if (pthread_cond_timedwait(&b->cond, &b->lock, &until) == ETIMEDOUT)
                        break;
        bool done = *flag;
        pthread_mutex_unlock(&b->lock);
        return done;
}

static void on_sub_complete(void *closure)
{
        struct bridge *b = closure;
        pthread_mutex_lock(&b->lock);
        b->sub_complete = true;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

natsStatus bridge_subscribe(struct bridge *b, natsMsgHandler on_msg)
{
        natsStatus s = b->group ? natsConnection_QueueSubscribe(&b->sub, b->nc, b->subject,
                                                                b->group, on_msg, b)
                                : natsConnection_Subscribe(&b->sub, b->nc, b->subject, on_msg, b);
        if (s == NATS_OK)
                s = natsSubscription_SetOnCompleteCB(b->sub, on_sub_complete, b);
        /* libnats's own queue: as long as ours, so that a burst waits there rather than being
         * dropped while the worker catches up; beyond it, libnats drops and counts. */
        uint64_t bytes = (uint64_t)b->cap * (b->size + 256u);
        if (s == NATS_OK)
                s = natsSubscription_SetPendingLimits(b->sub, (int)b->cap,
                                                      bytes > INT32_MAX ? INT32_MAX : (int)bytes);
        if (s != NATS_OK)
                set_failed(b, s, NULL);
        return s;
}

void bridge_thread_end(struct bridge *b)
{
        bool safe = true;
        if (b->sub) {
                /* The on-complete callback comes after the message handler's last call. */
                natsSubscription_Unsubscribe(b->sub);
                safe = wait_flag(b, &b->sub_complete);
                if (safe)
                        natsSubscription_Destroy(b->sub);
        }
        if (b->nc && safe) {
                natsConnection_Close(b->nc);
                /* The closed callback is libnats's last one on this connection. */
                safe = wait_flag(b, &b->closed);
                if (safe)
                        natsConnection_Destroy(b->nc);
        }
        /* A libnats that never said it was done keeps the bridge: better a leak than a
         * callback into freed memory. */
        if (safe)
                bridge_unref(b);
}

void bridge_notify(struct bridge *b)
{
        /* seq_cst, pairs with bridge_release(). */
        atomic_fetch_add(&b->in_callback, 1);
        if (b->notifier && !atomic_load(&b->closing))
                actord_notify(b->notifier);
        atomic_fetch_sub(&b->in_callback, 1);
}

void bridge_fini(struct actord_ctx *ctx, void *state)
{
        struct bridge *b = state;
        (void)ctx;
        if (!b)
                return;
        if (b->notifier) {
                /* seq_cst, with bridge_notify()'s increment of in_callback and its load of
                 * closing: a caller that did not see closing is counted, and we wait for it. */
                atomic_store(&b->closing, true);
                while (atomic_load(&b->in_callback))
                        sched_yield();
        }
        atomic_store(&b->stop, true);
        uint64_t one = 1;
        (void)!write(b->wake, &one, sizeof(one));
        struct timespec until = deadline_after_ms(CLOCK_REALTIME, BRIDGE_JOIN_MS);
        /* A thread still busy with a server that does not answer goes on alone; it holds its
         * own reference. */
        if (pthread_timedjoin_np(b->thread, NULL, &until) != 0)
                pthread_detach(b->thread);
        bridge_unref(b);
}

/* Reports tally t as `what` when it grew, at once the first time, then at most every
 * BRIDGE_TELL_NS. */
static void tell(struct actord_ctx *ctx, struct bridge *b, struct bridge_tally *t, uint64_t now,
                 int priority, const char *what, bool with_status)
{
        uint64_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
        if (n == t->told || (t->told_ns && now - t->told_ns < BRIDGE_TELL_NS))
                return;
        natsStatus s = (natsStatus)atomic_load_explicit(&b->last_status, memory_order_relaxed);
        actord_log(ctx, priority, "%" PRIu64 " %s (%" PRIu64 " so far)%s%s", n - t->told, what, n,
                   with_status ? ": " : "", with_status ? natsStatus_GetText(s) : "");
        t->told = n;
        t->told_ns = now;
}

bool bridge_report(struct actord_ctx *ctx, struct bridge *b)
{
        int failed = atomic_load(&b->failed);
        if (failed) {
                char why[sizeof(b->failed_why)];
                pthread_mutex_lock(&b->lock);
                memcpy(why, b->failed_why, sizeof(why));
                pthread_mutex_unlock(&b->lock);
                actord_set_error(ctx, "%s '%s' on %s: %s%s%s%s",
                                 b->subscriber ? "cannot subscribe to" : "cannot publish to",
                                 b->subject, b->shown, natsStatus_GetText((natsStatus)failed),
                                 why[0] ? " (" : "", why, why[0] ? ")" : "");
                return false;
        }
        update_counters(ctx, b);
        uint64_t now = actord_now_ns(ctx);
        uint64_t connects = atomic_load(&b->connects);
        if (connects != b->connects_told) {
                /* Both when the first connect was not told before a reconnect. */
                if (b->connects_told == 0)
                        actord_log(ctx, ACTORD_LOG_INFO, "connected to %s", b->shown);
                if (connects > 1)
                        actord_log(ctx, ACTORD_LOG_NOTICE, "reconnected to %s", b->shown);
                b->connects_told = connects;
        }
        bool ready = atomic_load(&b->ready);
        if (b->subscriber && ready != b->ready_told) {
                if (ready)
                        actord_log(ctx, ACTORD_LOG_INFO, "subscribed to '%s'%s%s", b->subject,
                                   b->group ? " in queue group " : "", b->group ? b->group : "");
                b->ready_told = ready;
        }
        tell(ctx, b, &b->disconnects, now, ACTORD_LOG_WARNING, "disconnects from the server",
             false);
        tell(ctx, b, &b->queue_full, now, ACTORD_LOG_WARNING,
             "messages dropped: the component's queue was full", false);
        tell(ctx, b, &b->send_failed, now, ACTORD_LOG_WARNING, "messages not sent", true);
        tell(ctx, b, &b->slow, now, ACTORD_LOG_WARNING,
             "messages dropped by the client library (slow consumer)", false);
        tell(ctx, b, &b->gaps, now, ACTORD_LOG_WARNING,
             "messages lost before they reached this subscriber (gaps in " BRIDGE_HDR_SEQ ")",
             false);
        uint64_t bad = atomic_load_explicit(&b->bad.count, memory_order_relaxed);
        if (bad != b->bad.told && (!b->bad.told_ns || now - b->bad.told_ns >= BRIDGE_TELL_NS)) {
                char why[sizeof(b->bad_why)];
                pthread_mutex_lock(&b->lock);
                memcpy(why, b->bad_why, sizeof(why));
                pthread_mutex_unlock(&b->lock);
                actord_log(ctx, ACTORD_LOG_ERR,
                           "%" PRIu64 " messages on '%s' refused (%" PRIu64
                           " so far); the last: %s",
                           bad - b->bad.told, b->subject, bad, why);
                b->bad.told = bad;
                b->bad.told_ns = now;
        }
        return true;
}
