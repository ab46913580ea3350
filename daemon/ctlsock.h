/* The control socket: a Unix stream socket on which the main thread answers one request per
 * connection (actorctl is its client; `socat - UNIX-CONNECT:PATH` works too).
 *
 * Protocol: the client sends one line, a command (at most CTL_REQUEST_MAX bytes, ended by a
 * line feed or by shutting down its sending side). The daemon answers with a first line, "ok"
 * or "error: " and why, then for "ok" the answer's text, and closes the connection. Everything
 * is non-blocking on the main thread: a client that sends nothing, or reads nothing, costs a
 * slot (CTL_CONNS_MAX) until its deadline (CTL_TIMEOUT_MS from connecting) and delays nobody.
 *
 * A command may answer with a stream instead (actorctl tap): after the "ok" text, the
 * connection stays open without a deadline, and the stream's pump adds what is new each time
 * the main thread comes round (at least every CTL_STREAM_MS) once the client has read the
 * previous part; it ends when the pump says so, when the client goes away, or when
 * ctlsock_end_streams() ends them all (a reload). A client that does not read holds back the
 * pump, never the daemon. */
#ifndef ACTORD_CTLSOCK_H
#define ACTORD_CTLSOCK_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CTL_REQUEST_MAX 256
#define CTL_CONNS_MAX 16
#define CTL_TIMEOUT_MS 10000
#define CTL_STREAM_MS 20

/* What a streaming answer does: pump writes what is new to out and returns false once the
 * stream is over (what it wrote still goes out); end frees state. Main thread. */
struct ctl_stream {
        bool (*pump)(void *state, FILE *out);
        void (*end)(void *state);
        void *state;
};

struct ctl_conn {
        int fd;
        uid_t uid; /* the peer's, from SO_PEERCRED */
        uint64_t deadline_ns;
        char in[CTL_REQUEST_MAX + 1];
        size_t in_len;
        char *out; /* the answer, once the request is in */
        size_t out_len, out_done;
        struct ctl_stream stream; /* pump set: the answer goes on */
        bool ending;              /* close once what is written went out */
        bool peer_eof;            /* the client shut its sending side (it may still read) */
};

struct ctlsock {
        int fd; /* listening; -1: none */
        char *path;
        dev_t dev; /* of the socket file we made, so that we only remove our own */
        ino_t ino;
        struct ctl_conn conns[CTL_CONNS_MAX];
        int n_conns;
};

/* Answers one command: writes the answer's text to `out` and returns true, or writes why it
 * cannot (one line, no "error: ") and returns false. `uid` is the client's. To stream, it also
 * sets *stream (zeroed on entry). */
typedef bool (*ctl_handler)(void *arg, const char *command, uid_t uid, FILE *out,
                            struct ctl_stream *stream);

/* Listens on `path` (mode 0660). A socket file left by a daemon that is gone is replaced; a
 * live one (another actord answers there) or a file that is not a socket is an error. Returns
 * 0, or a negative errno after logging why. */
int ctlsock_open(struct ctlsock *s, const char *path);
/* Closes every connection and the socket, and removes the socket file if it is still ours.
 * Accepts a zeroed or closed struct. */
void ctlsock_close(struct ctlsock *s);

/* The descriptors to poll, into pfd (room for 1 + CTL_CONNS_MAX); returns how many. */
int ctlsock_pollfds(const struct ctlsock *s, struct pollfd *pfd);
/* Milliseconds until the nearest connection's deadline, or CTL_STREAM_MS while a stream runs
 * (-1: none), for poll's timeout. */
int ctlsock_timeout_ms(const struct ctlsock *s, uint64_t now_ns);
/* Handles what poll returned for the descriptors ctlsock_pollfds() gave (same order), and the
 * deadlines: accepts, reads requests, calls the handler, writes answers, closes. */
void ctlsock_process(struct ctlsock *s, const struct pollfd *pfd, int n, uint64_t now_ns,
                     ctl_handler handler, void *arg);

/* Ends every stream with a last line, `why` (a reload: what they read may go away). */
void ctlsock_end_streams(struct ctlsock *s, const char *why);

/* The request line (len bytes, up to its line feed if any) without its line end and
 * surrounding blanks, into cmd (room for CTL_REQUEST_MAX + 1). */
void ctlsock_trim(const char *line, size_t len, char *cmd);

#endif
