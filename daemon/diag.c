#define _GNU_SOURCE
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char oom_line[] = "out of memory while reporting an error";

void diag_add(struct diag *d, const char *file, int line, const char *fmt, ...)
{
        char *msg = NULL, *full = NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                msg = NULL;
        if (msg) {
                if (file && line > 0)
                        r = asprintf(&full, "%s:%d: %s", file, line, msg);
                else if (file)
                        r = asprintf(&full, "%s: %s", file, msg);
                else
                        r = asprintf(&full, "%s", msg);
                if (r < 0)
                        full = NULL;
                free(msg);
        }
        if (d->n == d->cap) {
                size_t cap = d->cap ? 2 * d->cap : 8;
                char **l = realloc(d->lines, cap * sizeof(*l));
                if (!l) {
                        free(full);
                        if (d->n > 0)
                                d->lines[d->n - 1] = oom_line;
                        return;
                }
                d->lines = l;
                d->cap = cap;
        }
        d->lines[d->n++] = full ? full : oom_line;
}

void diag_free(struct diag *d)
{
        for (size_t i = 0; i < d->n; i++)
                if (d->lines[i] != oom_line)
                        free(d->lines[i]);
        free(d->lines);
        *d = (struct diag){0};
}

static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return (size_t)-1;
        size_t row[65];
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag_prev = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t best = diag_prev + (a[i - 1] != b[j - 1]);
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag_prev = up;
                }
        }
        return row[lb];
}

const char *diag_suggest(const char *word, const char *const *candidates, size_t n)
{
        const char *best = NULL;
        size_t best_d = (size_t)-1;
        for (size_t i = 0; i < n; i++) {
                size_t dist = edit_distance(word, candidates[i]);
                if (dist < best_d) {
                        best_d = dist;
                        best = candidates[i];
                }
        }
        size_t len = strlen(word);
        if (best && (best_d <= 2 || best_d <= len / 3) && best_d < len)
                return best;
        return NULL;
}
