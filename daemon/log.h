/* Logging for the daemon's own threads: one line per call on stderr, prefixed with the
 * sd-daemon priority ("<6>") so that journald files it at the right level when actord runs
 * under systemd. Thread safe (one write(2) per line). */
#ifndef ACTORD_LOG_H
#define ACTORD_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* Sets the most verbose priority printed (LOG_INFO by default). */
void log_set_max_priority(int priority);
/* Whether lines carry "<N>" prefixes: on by default when stderr is not a terminal. */
void log_set_prefix(int on);

void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(int priority, const char *component, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
