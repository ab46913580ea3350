/* ctlsock.c and the counters the control socket reports: request lines trimmed as the
 * protocol says, and the time-in-queue histogram's buckets (topology.h) at their edges. The
 * socket itself, with the daemon, is in tests/integration/test-control.c. */
#include "testutil.h"

#include "ctlsock.h"
#include "topology.h"

static void expect_trim(const char *line, const char *want)
{
        char cmd[CTL_REQUEST_MAX + 1];
        ctlsock_trim(line, strlen(line), cmd);
        cr_assert_str_eq(cmd, want, "'%s'", line);
}

Test(ctlsock, request_lines_lose_their_end_and_surrounding_blanks)
{
        expect_trim("status\n", "status");
        expect_trim("status\r\n", "status");
        expect_trim("  \tstats \t\r\n", "stats");
        expect_trim("tap scale.out 5\n", "tap scale.out 5");
        expect_trim("metrics", "metrics"); /* the end of the request instead of a line feed */
        expect_trim("help\nstatus\n", "help");
        expect_trim("\n", "");
        expect_trim("", "");
        /* Bytes past the line's end are not looked at. */
        char cmd[CTL_REQUEST_MAX + 1];
        ctlsock_trim("reload\nXXXX", 4, cmd);
        cr_assert_str_eq(cmd, "relo");
        /* Never more than a request's worth. */
        char longer[CTL_REQUEST_MAX + 50];
        memset(longer, 'x', sizeof(longer));
        ctlsock_trim(longer, sizeof(longer), cmd);
        cr_assert_eq(strlen(cmd), CTL_REQUEST_MAX);
}

Test(ctlsock, queue_time_buckets_are_powers_of_two_from_64_ns)
{
        /* Bucket i holds (2^(5+i), 2^(6+i)] ns; the first also 0..64; the last the rest. */
        cr_assert_eq(queue_hist_bucket(0), 0);
        cr_assert_eq(queue_hist_bucket(64), 0);
        cr_assert_eq(queue_hist_bucket(65), 1);
        cr_assert_eq(queue_hist_bucket(128), 1);
        cr_assert_eq(queue_hist_bucket(129), 2);
        for (unsigned i = 1; i < QUEUE_HIST_BUCKETS - 1; i++) {
                uint64_t top = 1ull << (QUEUE_HIST_MIN_SHIFT + i);
                cr_assert_eq(queue_hist_bucket(top), i, "2^%u ns", QUEUE_HIST_MIN_SHIFT + i);
                cr_assert_eq(queue_hist_bucket(top / 2 + 1), i);
        }
        cr_assert_eq(queue_hist_bucket((1ull << 32) + 1), QUEUE_HIST_BUCKETS - 1);
        cr_assert_eq(queue_hist_bucket(UINT64_MAX), QUEUE_HIST_BUCKETS - 1);

        /* A wait counts once, its time in the sum; a read in a run that began before the
         * message's publish time (another worker published meanwhile) counts as 0. */
        static struct queue_hist h;
        queue_hist_add(&h, 1000, 800, 1);
        queue_hist_add(&h, 1000, 1200, 1);
        cr_assert_eq(counter_get(&h.bucket[queue_hist_bucket(200)]), 1);
        cr_assert_eq(counter_get(&h.bucket[0]), 1);
        cr_assert_eq(counter_get(&h.sum_ns), 200);
}
