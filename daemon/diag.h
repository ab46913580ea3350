/* Diagnostics: the list of errors that config, plugin and topology code collect instead of
 * logging, each a line "FILE:LINE: what is wrong", so that every error of a run is reported
 * and the caller decides where the lines go. */
#ifndef ACTORD_DIAG_H
#define ACTORD_DIAG_H

#include <stddef.h>

struct diag {
        char **lines;
        size_t n;
        size_t cap;
};

/* Appends one error. file may be NULL (no location), line <= 0 means "no line". Allocation
 * failure is recorded as a fixed line, so an error is never silently lost. */
void diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_free(struct diag *d);

/* Returns the candidate closest to `word` by edit distance when it is close enough to be a
 * likely typo (distance <= 2, or <= a third of the length), else NULL. */
const char *diag_suggest(const char *word, const char *const *candidates, size_t n);

#endif
