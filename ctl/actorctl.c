/* actorctl: the command-line client of actord's control socket (daemon/ctlsock.h has the
 * protocol: one command line out, "ok" or "error: ..." and the answer back). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
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
                "Usage: actorctl [OPTIONS] COMMAND\n"
                "Asks a running actord through its control socket.\n"
                "\n"
                "Commands:\n"
                "  status     version, uptime, configuration file, STATUS line, reloads\n"
                "  stats      the status, then tables of workers, components and channels\n"
                "  metrics    every figure in the Prometheus text format\n"
                "  reload     apply the configuration file again and print the result\n"
                "             (exit 1 if it was refused, with its errors)\n"
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

/* Sends the command and reads the whole answer (the daemon closes when done) into *ret. */
static int ask(int fd, const char *command, int timeout_ms, char **ret, size_t *ret_len)
{
        char line[300];
        int n = snprintf(line, sizeof(line), "%s\n", command);
        if (n < 0 || (size_t)n >= sizeof(line)) {
                fprintf(stderr, "actorctl: command too long\n");
                return -1;
        }
        if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
                fprintf(stderr, "actorctl: sending the command: %s\n", strerror(errno));
                return -1;
        }
        shutdown(fd, SHUT_WR);
        size_t cap = 65536, len = 0;
        char *buf = malloc(cap);
        int64_t end = now_ms() + timeout_ms;
        while (buf) {
                int64_t left = end - now_ms();
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int r = left > 0 ? poll(&p, 1, (int)left) : 0;
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        fprintf(stderr, "actorctl: no complete answer within %d s\n",
                                timeout_ms / 1000);
                        free(buf);
                        return -1;
                }
                if (len + 1 == cap) {
                        char *b = realloc(buf, cap * 2);
                        if (!b)
                                break;
                        buf = b;
                        cap *= 2;
                }
                ssize_t got = recv(fd, buf + len, cap - 1 - len, 0);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got < 0) {
                        fprintf(stderr, "actorctl: reading the answer: %s\n", strerror(errno));
                        free(buf);
                        return -1;
                }
                if (got == 0) {
                        buf[len] = 0;
                        *ret = buf;
                        *ret_len = len;
                        return 0;
                }
                len += (size_t)got;
        }
        free(buf);
        fprintf(stderr, "actorctl: out of memory\n");
        return -1;
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
        if (optind != argc - 1) {
                fprintf(stderr, "actorctl: %s\n",
                        optind == argc ? "which command? (status, stats, metrics, reload, help)"
                                       : "one command at a time");
                usage(stderr);
                return EXIT_NO_ANSWER;
        }
        int fd = connect_to(path);
        if (fd < 0)
                return EXIT_NO_ANSWER;
        char *answer = NULL;
        size_t len = 0;
        int r = ask(fd, argv[optind], (int)timeout_s * 1000, &answer, &len);
        close(fd);
        if (r < 0)
                return EXIT_NO_ANSWER;
        int status = EXIT_NO_ANSWER;
        if (strncmp(answer, "ok\n", 3) == 0) {
                fwrite(answer + 3, 1, len - 3, stdout);
                status = fflush(stdout) == 0 ? 0 : EXIT_NO_ANSWER;
        } else if (strncmp(answer, "error: ", 7) == 0) {
                fprintf(stderr, "actorctl: %s", answer + 7);
                status = EXIT_ANSWER_ERROR;
        } else if (len == 0) {
                fprintf(stderr,
                        "actorctl: %s closed the connection without an answer (actord "
                        "stopping?)\n",
                        path);
        } else {
                fprintf(stderr, "actorctl: %s: not an answer of actord's: %.60s\n", path, answer);
        }
        free(answer);
        return status;
}
