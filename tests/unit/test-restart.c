/* restart.c: when a component is restarted, after how long, and when it is given up on. */
#include "testutil.h"

#include "restart.h"

#define MS 1000000ull

static struct config_restart policy(enum restart_mode mode, uint32_t max, uint32_t window_ms,
                                    uint32_t backoff_ms)
{
        return (struct config_restart){
            .mode = mode, .max_restarts = max, .window_ms = window_ms, .backoff_ms = backoff_ms};
}

Test(restart, done_restarts_only_a_permanent_component)
{
        struct restart_state s = {0};
        uint64_t delay = 0;
        struct config_restart p = policy(RESTART_TRANSIENT, 5, 10000, 100);
        cr_assert_eq(restart_decide(&p, &s, false, 1 * MS, &delay), RESTART_ACTION_STOP);
        cr_assert_eq(s.total, 0, "a stop is no restart");
        p.mode = RESTART_NEVER;
        cr_assert_eq(restart_decide(&p, &s, false, 1 * MS, &delay), RESTART_ACTION_STOP);
        p.mode = RESTART_PERMANENT;
        cr_assert_eq(restart_decide(&p, &s, false, 1 * MS, &delay), RESTART_ACTION_RESTART);
        cr_assert_eq(delay, 100 * MS);
        cr_assert_eq(s.total, 1);
}

Test(restart, an_error_stops_a_never_component_for_good)
{
        struct restart_state s = {0};
        uint64_t delay = 0;
        struct config_restart p = policy(RESTART_NEVER, 5, 10000, 100);
        cr_assert_eq(restart_decide(&p, &s, true, 1 * MS, &delay), RESTART_ACTION_GIVE_UP);
        cr_assert_eq(s.total, 0);
}

Test(restart, back_off_doubles_within_a_window_up_to_the_limit)
{
        struct restart_state s = {0};
        uint64_t delay = 0, now = 1000 * MS;
        struct config_restart p = policy(RESTART_TRANSIENT, 4, 10000, 100);
        const uint64_t want[] = {100, 200, 400, 800};
        for (int i = 0; i < 4; i++) {
                cr_assert_eq(restart_decide(&p, &s, true, now, &delay), RESTART_ACTION_RESTART,
                             "restart %d", i + 1);
                cr_assert_eq(delay, want[i] * MS, "restart %d: %llu ns", i + 1,
                             (unsigned long long)delay);
                now += delay + 1 * MS;
        }
        cr_assert_eq(s.in_window, 4);
        cr_assert_eq(restart_decide(&p, &s, true, now, &delay), RESTART_ACTION_GIVE_UP,
                     "a fifth failure within 10 s of the first restart");
        cr_assert_eq(s.total, 4);
}

Test(restart, a_failure_after_the_window_opens_a_new_one)
{
        struct restart_state s = {0};
        uint64_t delay = 0, now = 5 * MS;
        struct config_restart p = policy(RESTART_TRANSIENT, 2, 1000, 10);
        cr_assert_eq(restart_decide(&p, &s, true, now, &delay), RESTART_ACTION_RESTART);
        cr_assert_eq(restart_decide(&p, &s, true, now + 999 * MS, &delay), RESTART_ACTION_RESTART);
        cr_assert_eq(delay, 20 * MS);
        /* 1000 ms after the window's first restart: a new window, the first delay again. */
        cr_assert_eq(restart_decide(&p, &s, true, now + 1000 * MS, &delay), RESTART_ACTION_RESTART);
        cr_assert_eq(delay, 10 * MS);
        cr_assert_eq(s.in_window, 1);
        cr_assert_eq(s.total, 3);
}

Test(restart, zero_restarts_gives_up_at_the_first_failure)
{
        struct restart_state s = {0};
        uint64_t delay = 0;
        struct config_restart p = policy(RESTART_PERMANENT, 0, 10000, 100);
        cr_assert_eq(restart_decide(&p, &s, true, 1 * MS, &delay), RESTART_ACTION_GIVE_UP);
        cr_assert_eq(restart_decide(&p, &s, false, 1 * MS, &delay), RESTART_ACTION_GIVE_UP);
}

Test(restart, back_off_is_capped_and_a_longer_first_delay_kept)
{
        struct restart_state s = {0};
        uint64_t delay = 0, now = 1;
        struct config_restart p = policy(RESTART_TRANSIENT, 100, 86400000, 1000);
        for (int i = 0; i < 40; i++) {
                cr_assert_eq(restart_decide(&p, &s, true, now, &delay), RESTART_ACTION_RESTART);
                cr_assert_leq(delay, (uint64_t)RESTART_BACKOFF_MAX_MS * MS);
                now += delay;
        }
        cr_assert_eq(delay, (uint64_t)RESTART_BACKOFF_MAX_MS * MS);
        s = (struct restart_state){0};
        p.backoff_ms = 3600000;
        cr_assert_eq(restart_decide(&p, &s, true, now, &delay), RESTART_ACTION_RESTART);
        cr_assert_eq(delay, 3600000 * MS);
        cr_assert_eq(restart_decide(&p, &s, true, now, &delay), RESTART_ACTION_RESTART);
        cr_assert_eq(delay, 3600000 * MS, "no doubling past a first delay longer than the cap");
}
