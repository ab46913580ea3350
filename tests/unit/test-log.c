/* The log writer thread (daemon/log.c), in process: worker threads and the main thread log at
 * once through their queues while stderr is a pipe; every message either arrives, in its
 * thread's order, or is counted in a "dropped" line, whether the pipe's reader keeps up or
 * stalls. Runs under ThreadSanitizer too. */
#define _GNU_SOURCE
#include "testrunner.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

enum { WORKERS = 3, PER_WORKER = 20000, MAIN_MSGS = 500 };
/* Lines of ~100 bytes. */
#define PAD "................................................................................"

struct reader {
        int fd;
        char *text;
        size_t len, cap;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool go; /* read only once set (a stalled reader until then) */
};

static void *read_all(void *arg)
{
        struct reader *r = arg;
        pthread_mutex_lock(&r->lock);
        while (!r->go)
                pthread_cond_wait(&r->cond, &r->lock);
        pthread_mutex_unlock(&r->lock);
        char buf[65536];
        ssize_t n;
        while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
                if (r->len + (size_t)n + 1 > r->cap) {
                        r->cap = (r->len + (size_t)n + 1) * 2;
                        r->text = realloc(r->text, r->cap);
                }
                memcpy(r->text + r->len, buf, (size_t)n);
                r->len += (size_t)n;
                r->text[r->len] = 0;
        }
        return NULL;
}

static void *worker(void *arg)
{
        int i = (int)(intptr_t)arg;
        log_defer_attach(i);
        for (int k = 0; k < PER_WORKER; k++)
                log_msg(LOG_INFO, "w%d %d %s", i, k, PAD);
        return NULL;
}

/* Logs from three workers and the main thread at once, stderr a pipe whose reader starts at
 * once or only after everything was logged; then checks the accounting of each thread. */
static void run(bool stalled)
{
        int p[2];
        cr_assert_eq(pipe(p), 0);
        /* The smallest pipe: a stalled reader stalls the writer within a few lines. */
        cr_assert(fcntl(p[0], F_SETPIPE_SZ, 4096) > 0);
        int saved = dup(STDERR_FILENO);
        cr_assert(saved >= 0);
        cr_assert(dup2(p[1], STDERR_FILENO) >= 0);
        close(p[1]);
        log_set_prefix(0);
        struct reader r = {.fd = p[0], .go = !stalled};
        pthread_mutex_init(&r.lock, NULL);
        pthread_cond_init(&r.cond, NULL);
        pthread_t rt, wt[WORKERS];
        cr_assert_eq(pthread_create(&rt, NULL, read_all, &r), 0);

        cr_assert_eq(log_defer_init(WORKERS), 0);
        for (int i = 0; i < WORKERS; i++)
                cr_assert_eq(pthread_create(&wt[i], NULL, worker, (void *)(intptr_t)i), 0);
        for (int k = 0; k < MAIN_MSGS; k++)
                log_msg(LOG_INFO, "m %d %s", k, PAD);
        for (int i = 0; i < WORKERS; i++)
                pthread_join(wt[i], NULL);
        pthread_mutex_lock(&r.lock);
        r.go = true;
        pthread_cond_signal(&r.cond);
        pthread_mutex_unlock(&r.lock);
        log_defer_finish(60000);
        /* The pipe's last writer goes: the reader sees the end. */
        cr_assert(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        pthread_join(rt, NULL);
        close(p[0]);

        /* Per thread: the messages that came, in order, plus those reported dropped. */
        long got[WORKERS + 1] = {0}, last[WORKERS + 1], dropped[WORKERS + 1] = {0};
        for (int i = 0; i <= WORKERS; i++)
                last[i] = -1;
        char *save = NULL;
        for (char *line = strtok_r(r.text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                int i, k;
                unsigned long n;
                if (sscanf(line, "w%d %d", &i, &k) == 2 && i >= 0 && i < WORKERS) {
                } else if (sscanf(line, "m %d", &k) == 1) {
                        i = WORKERS;
                } else if (sscanf(line, "%lu log messages of worker %d dropped", &n, &i) == 2 &&
                           i >= 0 && i < WORKERS) {
                        dropped[i] += (long)n;
                        continue;
                } else if (sscanf(line, "%lu log messages of the main thread dropped", &n) == 1) {
                        dropped[WORKERS] += (long)n;
                        continue;
                } else {
                        cr_assert(false, "unexpected line: '%s'", line);
                }
                cr_assert_gt(k, last[i], "thread %d: %d after %ld", i, k, last[i]);
                last[i] = k;
                got[i]++;
        }
        for (int i = 0; i < WORKERS; i++)
                cr_assert_eq(got[i] + dropped[i], PER_WORKER,
                             "worker %d: %ld arrived + %ld dropped != %d", i, got[i], dropped[i],
                             PER_WORKER);
        cr_assert_eq(got[WORKERS] + dropped[WORKERS], MAIN_MSGS,
                     "main: %ld arrived + %ld dropped != %d", got[WORKERS], dropped[WORKERS],
                     MAIN_MSGS);
        if (stalled) {
                /* The pipe and the queues hold a few hundred lines: the rest must drop, the
                 * main thread's after waiting for room once. */
                for (int i = 0; i <= WORKERS; i++)
                        cr_assert_gt(dropped[i], 0, "thread %d dropped nothing", i);
        }
        free(r.text);
        pthread_mutex_destroy(&r.lock);
        pthread_cond_destroy(&r.cond);
}

Test(log, every_message_arrives_in_order_or_is_counted_dropped)
{
        run(false);
}

Test(log, a_stalled_reader_drops_and_counts_without_blocking)
{
        run(true);
}
