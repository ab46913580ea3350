/* Helpers shared by the tests: temporary folders and files, and reading files back. */
#ifndef ACTORD_TESTUTIL_H
#define ACTORD_TESTUTIL_H

#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh folder under $TMPDIR (or /tmp); the caller frees the string. */
static inline char *tu_tmpdir(void)
{
        const char *base = getenv("TMPDIR");
        char *tmpl;
        cr_assert(asprintf(&tmpl, "%s/actord-test-XXXXXX", base ? base : "/tmp") > 0);
        cr_assert_not_null(mkdtemp(tmpl), "mkdtemp failed");
        return tmpl;
}

/* Writes text to dir/name and returns the path (caller frees). */
static inline char *tu_write(const char *dir, const char *name, const char *text)
{
        char *path;
        cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f, "cannot write %s", path);
        fputs(text, f);
        fclose(f);
        return path;
}

/* The whole file as a string (caller frees), or NULL if it cannot be read. */
static inline char *tu_read(const char *path)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, m);
        fclose(f);
        fclose(m);
        return buf;
}

static inline void tu_rmrf(const char *dir)
{
        char *cmd;
        if (asprintf(&cmd, "rm -rf '%s'", dir) > 0) {
                int r = system(cmd);
                (void)r;
                free(cmd);
        }
}

/* A Criterion suite whose tests each get a fresh folder, `dir`, removed after the test. */
#define TU_TMPDIR_SUITE(name, timeout_s)                                                           \
        static char *dir;                                                                          \
        static void tu_suite_setup_(void)                                                          \
        {                                                                                          \
                dir = tu_tmpdir();                                                                 \
        }                                                                                          \
        static void tu_suite_teardown_(void)                                                       \
        {                                                                                          \
                tu_rmrf(dir);                                                                      \
                free(dir);                                                                         \
        }                                                                                          \
        TestSuite(name, .init = tu_suite_setup_, .fini = tu_suite_teardown_, .timeout = (timeout_s))

#endif
