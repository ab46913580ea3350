/* Criterion, or under ThreadSanitizer a stand-in for the part of it that the concurrency tests
 * use. Include instead of <criterion/criterion.h> in tests that run in the TSan build. */
#ifndef ACTORD_TESTRUNNER_H
#define ACTORD_TESTRUNNER_H

#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif

#ifndef TEST_TSAN
#include <criterion/criterion.h>
#else
/* Criterion cannot run under ThreadSanitizer: its sandbox maps memory where the sanitizer
 * reserved it (Snaipe/Criterion#274) and crashes. So that the TSan build still checks these
 * tests, this stand-in runs them in turn in one process, with the subset of Criterion's
 * assertions they use; a failed cr_assert ends the run, a failed cr_expect fails the test. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mini_test {
        const char *suite, *name;
        void (*fn)(void);
};
static struct mini_test mini_tests[64];
static int mini_ntests, mini_failures;

static void mini_register(const char *suite, const char *name, void (*fn)(void))
{
        if (mini_ntests == (int)(sizeof(mini_tests) / sizeof(mini_tests[0])))
                abort();
        mini_tests[mini_ntests++] = (struct mini_test){suite, name, fn};
}

__attribute__((format(printf, 5, 6))) static void mini_fail(bool fatal, const char *file, int line,
                                                            const char *cond, const char *fmt, ...)
{
        va_list ap;
        fprintf(stderr, "%s:%d: %s: %s:", file, line, fatal ? "assertion" : "expectation", cond);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        if (fatal)
                exit(1);
        mini_failures++;
}

#define MINI_CHECK(fatal, cond, ...)                                                               \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        mini_fail(fatal, __FILE__, __LINE__, #cond, " " __VA_ARGS__);              \
        } while (0)

#define Test(suite, name, ...)                                                                     \
        static void suite##_##name(void);                                                          \
        __attribute__((constructor)) static void suite##_##name##_register(void)                   \
        {                                                                                          \
                mini_register(#suite, #name, suite##_##name);                                      \
        }                                                                                          \
        static void suite##_##name(void)

#define cr_assert(c, ...) MINI_CHECK(true, c, __VA_ARGS__)
#define cr_assert_not(c, ...) MINI_CHECK(true, !(c), __VA_ARGS__)
#define cr_assert_eq(a, b, ...) MINI_CHECK(true, (a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) MINI_CHECK(true, (a) != (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) MINI_CHECK(true, (a) > (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) MINI_CHECK(true, (a) <= (b), __VA_ARGS__)
#define cr_assert_null(p, ...) MINI_CHECK(true, (p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) MINI_CHECK(true, (p) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) MINI_CHECK(true, strcmp(a, b) == 0, __VA_ARGS__)
#define cr_assert_arr_eq(a, b, n, ...) MINI_CHECK(true, memcmp(a, b, n) == 0, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) MINI_CHECK(false, (a) == (b), __VA_ARGS__)
#define cr_expect_gt(a, b, ...) MINI_CHECK(false, (a) > (b), __VA_ARGS__)
#define cr_expect_leq(a, b, ...) MINI_CHECK(false, (a) <= (b), __VA_ARGS__)
#define cr_log_info(...) (fprintf(stderr, "[----] " __VA_ARGS__), fputc('\n', stderr))

int main(int argc, char **argv)
{
        (void)argc;
        (void)argv;
        int failed = 0;
        for (int i = 0; i < mini_ntests; i++) {
                struct timespec t0, t1;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                mini_failures = 0;
                mini_tests[i].fn();
                clock_gettime(CLOCK_MONOTONIC, &t1);
                double s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
                fprintf(stderr, "[%s] %s::%s: (%.2fs)\n", mini_failures ? "FAIL" : "PASS",
                        mini_tests[i].suite, mini_tests[i].name, s);
                failed += mini_failures > 0;
        }
        fprintf(stderr, "[====] Synthesis: Tested: %d | Passing: %d | Failing: %d\n", mini_ntests,
                mini_ntests - failed, failed);
        return failed ? 1 : 0;
}
#endif

#endif
