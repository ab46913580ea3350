/* actorctl: the command-line client of actord's control socket (daemon/ctlsock.h has the
 * protocol: one command line out, "ok" or "error: ..." and the answer back). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "actord-build.h"

#define EXIT_ANSWER_ERROR 1
#define EXIT_NO_ANSWER 2

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: actorctl [OPTIONS] COMMAND [ARGUMENTS]\n"
                "Asks a running actord through its control socket.\n"
                "\n"
                "Commands:\n"
                "  status     version, uptime, configuration file, STATUS line, reloads\n"
                "  stats      the status, then tables of workers, components and channels\n"
                "  metrics    every figure in the Prometheus text format\n"
                "  reload     apply the configuration file again and print the result\n"
                "             (exit 1 if it was refused, with its errors)\n"
                "  tap END [COUNT]\n"
                "             print the messages passing through the link with that end\n"
                "             (e.g. scale.out), COUNT of them or until interrupted\n"
                "  help       the commands the daemon knows\n"
                "\n"
                "Options:\n"
                "  -s, --socket PATH   the control socket (default: $ACTORD_CONTROL_SOCKET,\n"
                "                      else %s)\n"
                "  -t, --timeout SEC   give up after SEC seconds (default 60)\n"
                "  -h, --help          show this help and exit\n"
                "  -V, --version       show the version and exit\n"
                "\n"
                "Exit status: 0 answered; 1 the daemon answered with an error; 2 no answer\n"
                "(no daemon there, a timeout) or a usage error.\n",
                ACTORD_DEFAULT_CONTROL_SOCKET);
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "actorctl: %s: socket path too long (at most %zu bytes)\n", path,
                        sizeof(sa.sun_path) - 1);
                return -1;
        }
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                fprintf(stderr, "actorctl: socket: %s\n", strerror(errno));
                return -1;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return fd;
        int e = errno;
        close(fd);
        if (e == ENOENT)
                fprintf(stderr,
                        "actorctl: %s: no such socket: is actord running, with a control socket "
                        "there? (--socket PATH names another)\n",
                        path);
        else if (e == ECONNREFUSED)
                fprintf(stderr, "actorctl: %s: nobody answers there (actord stopped?)\n", path);
        else if (e == EACCES)
                fprintf(stderr,
                        "actorctl: %s: permission denied: the socket is for root and for the "
                        "daemon's user and group\n",
                        path);
        else
                fprintf(stderr, "actorctl: %s: %s\n", path, strerror(e));
        return -1;
}

/* Waits up to `ms` (-1: no limit) for the socket to be readable; false on a timeout. */
static bool readable(int fd, int64_t end_ms)
{
        for (;;) {
                int left = end_ms < 0 ? -1 : (int)(end_ms - now_ms());
                if (end_ms >= 0 && left < 0)
                        left = 0;
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int r = poll(&p, 1, left);
                if (r < 0 && errno == EINTR)
                        continue;
                return r > 0;
        }
}

/* Sends the command, then copies the answer as it comes: the text after "ok" to stdout, the
 * reason after "error: " to stderr. The deadline is for the whole answer, except for a
 * stream (tap), which has one only for its first line. Returns the exit status. */
static int ask(int fd, const char *path, const char *command, int timeout_ms)
{
        char line[300];
        int n = snprintf(line, sizeof(line), "%s\n", command);
        if (n < 0 || (size_t)n >= sizeof(line)) {
                fprintf(stderr, "actorctl: command too long\n");
                return EXIT_NO_ANSWER;
        }
        if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
                fprintf(stderr, "actorctl: sending the command: %s\n", strerror(errno));
                return EXIT_NO_ANSWER;
        }
        shutdown(fd, SHUT_WR);
        bool stream = strncmp(command, "tap", 3) == 0 && (command[3] == ' ' || !command[3]);
        int64_t end = now_ms() + timeout_ms;
        char head[8];
        size_t got = 0;
        int status = -1;
        FILE *to = NULL;
        char buf[65536];
        for (;;) {
                if (!readable(fd, status >= 0 && stream ? -1 : end)) {
                        fprintf(stderr, "actorctl: no complete answer within %d s\n",
                                timeout_ms / 1000);
                        return EXIT_NO_ANSWER;
                }
                ssize_t r = recv(fd, buf, sizeof(buf), 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        fprintf(stderr, "actorctl: reading the answer: %s\n", strerror(errno));
                        return EXIT_NO_ANSWER;
                }
                if (r == 0)
                        break;
                const char *p = buf;
                size_t len = (size_t)r;
                /* The answer starts with "ok\n" or "error: ": read until it is one or neither
                 * can still be. */
                while (status < 0 && len) {
                        head[got++] = *p++;
                        len--;
                        bool ok = memcmp(head, "ok\n", got < 3 ? got : 3) == 0 && got <= 3;
                        bool error = memcmp(head, "error: ", got) == 0;
                        if (ok && got == 3) {
                                status = 0;
                                to = stdout;
                        } else if (error && got == 7) {
                                status = EXIT_ANSWER_ERROR;
                                to = stderr;
                                fputs("actorctl: ", stderr);
                        } else if (!ok && !error) {
                                fprintf(stderr, "actorctl: %s: not an answer of actord's\n", path);
                                return EXIT_NO_ANSWER;
                        }
                }
                if (len && fwrite(p, 1, len, to) != len)
                        return EXIT_NO_ANSWER; /* stdout went away (a pipe closed) */
                if (to == stdout && stream)
                        fflush(stdout);
        }
        if (status < 0) {
                fprintf(stderr,
                        "actorctl: %s closed the connection without an answer (actord "
                        "stopping?)\n",
                        path);
                return EXIT_NO_ANSWER;
        }
        if (fflush(to) != 0)
                return EXIT_NO_ANSWER;
        return status;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"socket", required_argument, NULL, 's'},
            {"timeout", required_argument, NULL, 't'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {NULL, 0, NULL, 0},
        };
        const char *path = getenv("ACTORD_CONTROL_SOCKET");
        if (!path || !*path)
                path = ACTORD_DEFAULT_CONTROL_SOCKET;
        long timeout_s = 60;
        int c;
        while ((c = getopt_long(argc, argv, "s:t:hV", longopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        path = optarg;
                        break;
                case 't': {
                        char *e;
                        errno = 0;
                        timeout_s = strtol(optarg, &e, 10);
                        if (errno || *e || timeout_s < 1 || timeout_s > 86400) {
                                fprintf(stderr,
                                        "actorctl: --timeout %s: expected whole seconds, 1 to "
                                        "86400\n",
                                        optarg);
                                return EXIT_NO_ANSWER;
                        }
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("actorctl %s\n", ACTORD_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_NO_ANSWER;
                }
        }
        if (optind == argc) {
                fprintf(stderr,
                        "actorctl: which command? (status, stats, metrics, reload, tap, help)\n");
                usage(stderr);
                return EXIT_NO_ANSWER;
        }
        /* The command and its arguments, as one line. */
        char command[257] = "";
        size_t used = 0;
        for (int i = optind; i < argc; i++) {
                int n = snprintf(command + used, sizeof(command) - used, "%s%s",
                                 i > optind ? " " : "", argv[i]);
                if (n < 0 || (size_t)n >= sizeof(command) - used || strchr(argv[i], '\n')) {
                        fprintf(stderr, "actorctl: the command must be one line of at most 256 "
                                        "bytes\n");
                        return EXIT_NO_ANSWER;
                }
                used += (size_t)n;
        }
        int fd = connect_to(path);
        if (fd < 0)
                return EXIT_NO_ANSWER;
        /* A tap's reader going away (`| head`) ends actorctl quietly. */
        signal(SIGPIPE, SIG_DFL);
        int status = ask(fd, path, command, (int)timeout_s * 1000);
        close(fd);
        return status;
}
