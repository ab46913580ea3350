/* A thread of a bundled plugin's own (a file writer, a network client), started from init.
 *
 * init runs on the component's worker thread, which is pinned to its CPU, and a new thread
 * inherits its creator's CPU mask and name: a helper started plainly would be pinned to the
 * worker's CPU, competing with the worker there (a spinning worker would be preempted for it),
 * and would show as the worker in ps and top. So a helper gets the mask of the daemon's main
 * thread (the process's CPUs that no worker is pinned to, where there are such; else all of
 * them) and a name of its own, which the threads it starts in turn inherit (libnats's, for
 * one). */
#ifndef ACTORD_PLUGIN_HELPER_THREAD_H
#define ACTORD_PLUGIN_HELPER_THREAD_H

#ifndef _GNU_SOURCE
#error "helper_thread.h needs _GNU_SOURCE (pthread_attr_setaffinity_np, pthread_setname_np)"
#endif

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct helper_thread_start_ {
        void *(*fn)(void *);
        void *arg;
        char name[16];
};

/* The new thread names itself before anything else: a name set by its creator could come
 * after the threads it starts at once, which would inherit the worker's. */
static inline void *helper_thread_main_(void *p)
{
        struct helper_thread_start_ s = *(struct helper_thread_start_ *)p;
        free(p);
        pthread_setname_np(pthread_self(), s.name);
        return s.fn(s.arg);
}

/* Starts fn(arg) as thread `name` (at most 15 characters are kept); returns pthread_create's
 * result (or ENOMEM). */
static inline int helper_thread_start(pthread_t *ret, void *(*fn)(void *), void *arg,
                                      const char *name)
{
        struct helper_thread_start_ *s = malloc(sizeof(*s));
        if (!s)
                return ENOMEM;
        s->fn = fn;
        s->arg = arg;
        snprintf(s->name, sizeof(s->name), "%s", name);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        cpu_set_t set;
        /* The main thread's id is the process's. */
        if (sched_getaffinity(getpid(), sizeof(set), &set) == 0)
                pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
        int r = pthread_create(ret, &attr, helper_thread_main_, s);
        pthread_attr_destroy(&attr);
        if (r)
                free(s);
        return r;
}

#endif
