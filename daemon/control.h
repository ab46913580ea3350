/* Reloading under systemd, synchronously: systemd 252 (Debian 12) cannot wait for a reload
 * that a signal starts, so the unit's ExecReload runs `actord --reload $MAINPID`, which sends
 * SIGHUP and waits until the daemon has applied or refused the configuration. The daemon
 * tells it through a small state file in its runtime directory (systemd's RuntimeDirectory=,
 * $RUNTIME_DIRECTORY): a generation, counted up by every reload that a SIGHUP asked for, and
 * its result (reloads asked for through the control socket leave it as it is). */
#ifndef ACTORD_CONTROL_H
#define ACTORD_CONTROL_H

#include <stdbool.h>

/* `name`'s path in $RUNTIME_DIRECTORY (the first of several), or NULL when the variable is not
 * set. Free it. */
char *control_runtime_path(const char *name);

/* The state file's path under $RUNTIME_DIRECTORY (the first of several), or NULL when the
 * variable is not set (not under systemd: nobody waits). Free it. */
char *control_state_path(void);

/* Writes the state (atomically: a new file renamed over the old one). `result` is one line,
 * starting with "applied" or "failed". Logs a failure to write once. */
void control_state_write(const char *path, unsigned generation, const char *result);

/* `actord --reload PID`: sends SIGHUP to the actord with that PID and waits until it reports
 * the reload's result. Returns the exit status: 0 applied, 1 refused or failed (or actord
 * exited meanwhile, or no answer within timeout_s), 2 a usage or environment error. Prints
 * the result on stdout, errors on stderr. */
int control_reload(const char *pid, unsigned timeout_s);

#endif
