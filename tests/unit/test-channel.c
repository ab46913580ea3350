/* Single-threaded tests of the lossy channel: every policy's order, sequence numbers, gaps and
 * counters, driven one call at a time so that each interleaving of producer and consumer is
 * exact. The concurrent behaviour is in test-channel-stress.c. */
#include "testrunner.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "channel.h"

struct msg {
        uint64_t seq;
        uint64_t lost;
        uint64_t ns;
        uint64_t value;
};

struct ends {
        struct channel ch;
        struct channel_tx tx;
        struct channel_rx rx;
};

static const enum channel_policy all_policies[] = {CHANNEL_OVERWRITE, CHANNEL_DROP_NEW,
                                                   CHANNEL_REJECT};

static void open_ends(struct ends *e, uint32_t capacity, uint32_t payload_size,
                      enum channel_policy policy)
{
        memset(e, 0, sizeof(*e));
        cr_assert_eq(channel_create(&e->ch, capacity, payload_size, policy), 0);
        cr_assert_eq(channel_tx_open(&e->tx, &e->ch), 0);
        cr_assert_eq(channel_rx_open(&e->rx, &e->ch), 0);
}

static void close_ends(struct ends *e)
{
        channel_rx_close(&e->rx);
        channel_tx_close(&e->tx);
        channel_destroy(&e->ch);
}

/* Claims, writes v and publishes; false when the claim is refused (reject, full). */
static bool send(struct ends *e, uint64_t v)
{
        void *p = channel_claim(&e->tx);
        if (!p)
                return false;
        memcpy(p, &v, sizeof(v));
        channel_publish(&e->tx);
        return true;
}

static bool recv(struct ends *e, struct msg *m)
{
        const void *p = channel_next(&e->rx, &m->seq, &m->lost, &m->ns);
        if (!p)
                return false;
        memcpy(&m->value, p, sizeof(m->value));
        return true;
}

static void expect_msg(struct ends *e, uint64_t seq, uint64_t lost, uint64_t value)
{
        struct msg m;
        cr_assert(recv(e, &m), "expected message seq %lu, got none", (unsigned long)seq);
        cr_assert_eq(m.seq, seq, "seq %lu, expected %lu", (unsigned long)m.seq, (unsigned long)seq);
        cr_assert_eq(m.lost, lost, "seq %lu: lost_before %lu, expected %lu", (unsigned long)seq,
                     (unsigned long)m.lost, (unsigned long)lost);
        cr_assert_eq(m.value, value, "seq %lu: value %lu, expected %lu", (unsigned long)seq,
                     (unsigned long)m.value, (unsigned long)value);
}

static void expect_empty(struct ends *e)
{
        struct msg m = {0};
        cr_assert_not(channel_readable(&e->rx));
        cr_assert_not(recv(e, &m), "unexpected message seq %lu", (unsigned long)m.seq);
}

static struct channel_stats stats_of(struct ends *e)
{
        struct channel_stats st;
        channel_stats(&e->ch, &st);
        return st;
}

/* The accounting identity every policy keeps once the reader has drained the ring. */
static void expect_balanced(struct ends *e)
{
        struct channel_stats st = stats_of(e);
        cr_assert_eq(st.lost, st.dropped + st.overwritten);
        uint64_t consumed, lost;
        channel_stats_flow(&e->ch, &consumed, &lost);
        cr_assert_eq(consumed, st.consumed);
        cr_assert_eq(lost, st.lost);
        cr_assert_eq(st.published, st.consumed + st.lost,
                     "published %lu != consumed %lu + lost %lu", (unsigned long)st.published,
                     (unsigned long)st.consumed, (unsigned long)st.lost);
}

Test(channel, create_rejects_invalid_arguments)
{
        struct channel ch = {0};
        cr_assert_eq(channel_create(&ch, 0, 8, CHANNEL_OVERWRITE), -EINVAL);
        cr_assert_eq(channel_create(&ch, CHANNEL_CAPACITY_MAX + 1, 8, CHANNEL_OVERWRITE), -EINVAL);
        cr_assert_eq(channel_create(&ch, UINT32_MAX, 8, CHANNEL_OVERWRITE), -EINVAL);
        cr_assert_eq(channel_create(&ch, 4, 0, CHANNEL_OVERWRITE), -EINVAL);
        cr_assert_eq(channel_create(&ch, 4, CHANNEL_PAYLOAD_MAX + 1, CHANNEL_OVERWRITE), -EINVAL);
        cr_assert_eq(channel_create(&ch, 4, 8, (enum channel_policy)3), -EINVAL);
        cr_assert_eq(channel_create(&ch, 4, 8, (enum channel_policy) - 1), -EINVAL);
        cr_assert_null(ch.sh, "a failed create must leave the struct alone");
        /* Both limits are inclusive. */
        cr_assert_eq(channel_create(&ch, 1, CHANNEL_PAYLOAD_MAX, CHANNEL_REJECT), 0);
        channel_destroy(&ch);
        cr_assert_null(ch.sh);
        channel_destroy(&ch); /* a zeroed struct is accepted, so destroy is idempotent */
}

Test(channel, capacity_rounds_up_to_a_power_of_two)
{
        static const struct {
                uint32_t asked, got;
        } cases[] = {{1, 1},       {2, 2},       {3, 4},       {5, 8},        {8, 8},
                     {1000, 1024}, {1024, 1024}, {1025, 2048}, {65535, 65536}};
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct channel ch;
                struct channel_stats st;
                cr_assert_eq(channel_create(&ch, cases[i].asked, 8, CHANNEL_OVERWRITE), 0);
                channel_stats(&ch, &st);
                cr_assert_eq(st.capacity, cases[i].got, "capacity %u: got %u, expected %u",
                             cases[i].asked, st.capacity, cases[i].got);
                cr_assert_eq(st.published + st.consumed + st.lost + st.rejected + st.high_water, 0);
                channel_destroy(&ch);
        }
}

Test(channel, policy_strings_round_trip)
{
        for (size_t i = 0; i < 3; i++) {
                const char *s = channel_policy_to_string(all_policies[i]);
                cr_assert_eq(channel_policy_from_string(s), (int)all_policies[i], "%s", s);
        }
        cr_assert_str_eq(channel_policy_to_string(CHANNEL_OVERWRITE), "overwrite");
        cr_assert_str_eq(channel_policy_to_string(CHANNEL_DROP_NEW), "drop_new");
        cr_assert_str_eq(channel_policy_to_string(CHANNEL_REJECT), "reject");
        cr_assert_str_eq(channel_policy_to_string((enum channel_policy)7), "?");
        cr_assert_eq(channel_policy_from_string(""), -EINVAL);
        cr_assert_eq(channel_policy_from_string("Overwrite"), -EINVAL);
        cr_assert_eq(channel_policy_from_string("drop-new"), -EINVAL);
        cr_assert_eq(channel_policy_from_string("reject "), -EINVAL);
}

/* Below capacity no policy loses anything, and all of them deliver in order. */
Test(channel, every_policy_delivers_in_order_below_capacity)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 8, 8, all_policies[i]);
                expect_empty(&e);
                for (uint64_t v = 0; v < 7; v++)
                        cr_assert(send(&e, 100 + v));
                cr_assert(channel_readable(&e.rx));
                for (uint64_t v = 0; v < 7; v++)
                        expect_msg(&e, v, 0, 100 + v);
                expect_empty(&e);
                channel_rx_end(&e.rx);
                struct channel_stats st = stats_of(&e);
                cr_assert_eq(st.published, 7);
                cr_assert_eq(st.consumed, 7);
                cr_assert_eq(st.lost, 0);
                cr_assert_eq(st.rejected, 0);
                expect_balanced(&e);
                close_ends(&e);
        }
}

/* Many laps of the ring with every backlog depth from empty to full. */
Test(channel, wrap_around_over_many_laps)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 4, 24, all_policies[i]);
                uint64_t next = 0;
                for (int lap = 0; lap < 2000; lap++) {
                        uint64_t burst = 1 + (uint64_t)lap % 4;
                        for (uint64_t k = 0; k < burst; k++)
                                cr_assert(send(&e, next + k), "lap %d", lap);
                        for (uint64_t k = 0; k < burst; k++)
                                expect_msg(&e, next + k, 0, next + k);
                        next += burst;
                        expect_empty(&e);
                        if (lap % 3 == 0)
                                channel_rx_end(&e.rx);
                }
                channel_rx_end(&e.rx);
                struct channel_stats st = stats_of(&e);
                cr_assert_eq(st.published, next);
                cr_assert_eq(st.consumed, next);
                cr_assert_eq(st.lost, 0);
                cr_assert_leq(st.high_water, 4);
                close_ends(&e);
        }
}

/* Wrap-around with losses on every lap: each lap publishes twice the capacity. */
Test(channel, wrap_around_with_losses)
{
        for (size_t i = 0; i < 3; i++) {
                enum channel_policy pol = all_policies[i];
                struct ends e;
                open_ends(&e, 4, 8, pol);
                uint64_t seq = 0, rejected = 0;
                for (int lap = 0; lap < 500; lap++) {
                        uint64_t first = seq;
                        for (int k = 0; k < 8; k++) {
                                if (send(&e, seq))
                                        seq++;
                                else
                                        rejected++;
                        }
                        if (pol == CHANNEL_OVERWRITE) {
                                /* The newest four survive. */
                                expect_msg(&e, first + 4, 4, first + 4);
                        } else if (pol == CHANNEL_DROP_NEW) {
                                /* The oldest four survive; the gap shows on the next lap. */
                                expect_msg(&e, first, lap ? 4 : 0, first);
                        } else {
                                expect_msg(&e, first, 0, first);
                        }
                        for (uint64_t k = 1; k < 4; k++) {
                                uint64_t s = pol == CHANNEL_OVERWRITE ? first + 4 + k : first + k;
                                expect_msg(&e, s, 0, s);
                        }
                        expect_empty(&e);
                        channel_rx_end(&e.rx);
                }
                struct channel_stats st = stats_of(&e);
                if (pol == CHANNEL_DROP_NEW) {
                        /* The last lap's drops are counted by the producer already. */
                        cr_assert_eq(st.dropped, 500 * 4);
                        cr_assert_eq(st.published, 500 * 8);
                } else if (pol == CHANNEL_OVERWRITE) {
                        cr_assert_eq(st.overwritten, 500 * 4);
                        cr_assert_eq(st.published, 500 * 8);
                } else {
                        cr_assert_eq(st.lost, 0);
                        cr_assert_eq(st.published, 500 * 4);
                        cr_assert_eq(st.rejected, rejected);
                        cr_assert_eq(rejected, 500 * 4);
                }
                cr_assert_eq(st.consumed, 500 * 4);
                expect_balanced(&e);
                close_ends(&e);
        }
}

/* The lossyq README example: the two newest survive, the gap is reported on the first. */
static void overwrite_readme_example(bool same_thread)
{
        struct ends e;
        open_ends(&e, 2, sizeof(uint64_t), CHANNEL_OVERWRITE);
        channel_rx_set_same_thread(&e.rx, same_thread);
        cr_assert(send(&e, 1));
        cr_assert(send(&e, 2));
        cr_assert(send(&e, 3));
        expect_msg(&e, 1, 1, 2);
        expect_msg(&e, 2, 0, 3);
        expect_empty(&e);
        struct channel_stats st = stats_of(&e);
        cr_assert_eq(st.published, 3);
        cr_assert_eq(st.consumed, 2);
        cr_assert_eq(st.overwritten, 1);
        cr_assert_eq(st.dropped, 0);
        cr_assert_eq(st.lost, 1);
        close_ends(&e);
}

Test(channel, overwrite_readme_example)
{
        overwrite_readme_example(false);
}

static void overwrite_keeps_the_newest(bool same_thread)
{
        struct ends e;
        open_ends(&e, 4, 8, CHANNEL_OVERWRITE);
        channel_rx_set_same_thread(&e.rx, same_thread);
        for (uint64_t v = 0; v < 10; v++)
                cr_assert(send(&e, v * 10));
        cr_assert(channel_readable(&e.rx));
        expect_msg(&e, 6, 6, 60);
        expect_msg(&e, 7, 0, 70);
        /* A second gap, after a partial read. */
        for (uint64_t v = 10; v < 16; v++)
                cr_assert(send(&e, v * 10));
        expect_msg(&e, 12, 4, 120);
        for (uint64_t s = 13; s < 16; s++)
                expect_msg(&e, s, 0, s * 10);
        expect_empty(&e);
        struct channel_stats st = stats_of(&e);
        cr_assert_eq(st.published, 16);
        cr_assert_eq(st.consumed, 6);
        cr_assert_eq(st.overwritten, 10);
        cr_assert_eq(st.rejected, 0);
        expect_balanced(&e);
        close_ends(&e);
}

Test(channel, overwrite_keeps_the_newest_and_counts_the_gap)
{
        overwrite_keeps_the_newest(false);
}

/* A consumer whose producer runs on its own thread reads in place under overwrite, with the
 * same messages, gaps and counters as the copying reader. */
Test(channel, same_thread_overwrite_reads_in_place)
{
        overwrite_readme_example(true);
        overwrite_keeps_the_newest(true);

        for (int same = 0; same < 2; same++) {
                struct ends e;
                open_ends(&e, 4, 8, CHANNEL_OVERWRITE);
                channel_rx_set_same_thread(&e.rx, same);
                const unsigned char *lo = (const unsigned char *)e.ch.sh;
                const unsigned char *hi = lo + e.ch.map_size;
                for (uint64_t lap = 0; lap < 100; lap++) {
                        /* Five into four slots: the oldest is overwritten each lap. */
                        for (uint64_t k = 0; k < 5; k++)
                                cr_assert(send(&e, lap * 5 + k));
                        for (uint64_t k = 1; k < 5; k++) {
                                uint64_t seq, lost, ns;
                                const unsigned char *p = channel_next(&e.rx, &seq, &lost, &ns);
                                cr_assert_not_null(p);
                                cr_assert_eq(seq, lap * 5 + k);
                                cr_assert_eq(lost, k == 1 ? 1 : 0);
                                uint64_t v;
                                memcpy(&v, p, sizeof(v));
                                cr_assert_eq(v, seq);
                                /* In place: inside the channel's mapping, except the first
                                 * after a gap, which the copy path reads. */
                                bool inside = p >= lo && p < hi;
                                cr_assert_eq(inside, same && k > 1, "seq %lu: in place %d",
                                             (unsigned long)seq, inside);
                        }
                        expect_empty(&e);
                }
                struct channel_stats st = stats_of(&e);
                cr_assert_eq(st.published, 500);
                cr_assert_eq(st.consumed, 400);
                cr_assert_eq(st.overwritten, 100);
                expect_balanced(&e);
                close_ends(&e);
        }
}

/* Batch reads under overwrite with the producer on the reader's thread: runs in place, up to
 * the ring's end or a slot not published; a gap goes through the copying path, which then
 * hands back to the in-place runs. The counters are those of single reads. */
Test(channel, same_thread_overwrite_batch_reads_in_place)
{
        struct ends e;
        open_ends(&e, 8, 8, CHANNEL_OVERWRITE);
        channel_rx_set_same_thread(&e.rx, true);
        const unsigned char *lo = (const unsigned char *)e.ch.sh, *hi = lo + e.ch.map_size;
        struct channel_burst b;
        for (uint64_t v = 0; v < 6; v++)
                cr_assert(send(&e, 100 + v));
        /* A claim not published ends the run before it. */
        cr_assert_not_null(channel_claim(&e.tx));
        cr_assert_eq(channel_next_burst(&e.rx, 32, &b), 6);
        cr_assert(b.payload >= lo && b.payload < hi, "in place");
        cr_assert_eq(b.seq, 0);
        cr_assert_eq(b.lost_before, 0);
        for (uint32_t i = 0; i < 6; i++) {
                uint64_t v;
                memcpy(&v, channel_burst_msg(&b, i), sizeof(v));
                cr_assert_eq(v, 100 + i);
        }
        cr_assert_eq(channel_next_burst(&e.rx, 32, &b), 0);
        memcpy(channel_claim(&e.tx), &(uint64_t){106}, 8);
        channel_publish(&e.tx);
        for (uint64_t v = 107; v < 112; v++)
                cr_assert(send(&e, v));
        /* Seqs 6..11: the ring's end cuts the run at 6..7, then 8..11. */
        cr_assert_eq(channel_next_burst(&e.rx, 32, &b), 2);
        cr_assert_eq(b.seq, 6);
        cr_assert_eq(channel_next_burst(&e.rx, 3, &b), 3, "at most max");
        cr_assert_eq(b.seq, 8);
        cr_assert_eq(channel_next_burst(&e.rx, 32, &b), 1);
        cr_assert_eq(b.seq, 11);
        uint64_t v;
        memcpy(&v, channel_burst_msg(&b, 0), sizeof(v));
        cr_assert_eq(v, 111);
        /* Lapped: 20 more into 8 slots; the first run after the gap is copied. */
        for (uint64_t k = 112; k < 132; k++)
                cr_assert(send(&e, k));
        uint32_t n = channel_next_burst(&e.rx, 32, &b);
        cr_assert(n >= 1);
        cr_assert_eq(b.seq, 24);
        cr_assert_eq(b.lost_before, 12);
        cr_assert(b.payload < lo || b.payload >= hi, "a gap: copied");
        uint64_t got = n;
        while ((n = channel_next_burst(&e.rx, 32, &b)) > 0) {
                cr_assert_eq(b.seq, 24 + got);
                cr_assert(b.payload >= lo && b.payload < hi, "in place again");
                got += n;
        }
        cr_assert_eq(got, 8);
        struct channel_stats st = stats_of(&e);
        cr_assert_eq(st.published, 32);
        cr_assert_eq(st.consumed, 20);
        cr_assert_eq(st.overwritten, 12);
        expect_balanced(&e);
        close_ends(&e);
}

/* The producer is part-way through writing the oldest slot: the reader skips past it to the
 * messages that are complete and stops at the one being written. */
Test(channel, overwrite_skips_a_slot_being_written)
{
        struct ends e;
        open_ends(&e, 4, 8, CHANNEL_OVERWRITE);
        for (uint64_t v = 0; v < 5; v++)
                cr_assert(send(&e, v));
        uint64_t *p = channel_claim(&e.tx); /* message 5 goes into the slot of message 1 */
        cr_assert_not_null(p);
        *p = 5;
        expect_msg(&e, 2, 2, 2);
        expect_msg(&e, 3, 0, 3);
        expect_msg(&e, 4, 0, 4);
        expect_empty(&e);
        channel_publish(&e.tx);
        expect_msg(&e, 5, 0, 5);
        expect_empty(&e);
        expect_balanced(&e);
        close_ends(&e);
}

/* A message that is claimed but not published is not readable yet. */
Test(channel, claimed_message_is_invisible_until_published)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 4, 8, all_policies[i]);
                cr_assert(send(&e, 1));
                uint64_t *p = channel_claim(&e.tx);
                cr_assert_not_null(p);
                *p = 2;
                expect_msg(&e, 0, 0, 1);
                expect_empty(&e);
                channel_publish(&e.tx);
                cr_assert(channel_readable(&e.rx));
                expect_msg(&e, 1, 0, 2);
                expect_empty(&e);
                close_ends(&e);
        }
}

Test(channel, drop_new_drops_when_full_and_reader_sees_the_gap)
{
        struct ends e;
        open_ends(&e, 4, 8, CHANNEL_DROP_NEW);
        for (uint64_t v = 0; v < 6; v++)
                cr_assert(send(&e, v), "drop_new never refuses a claim");
        struct channel_stats st = stats_of(&e);
        cr_assert_eq(st.published, 6);
        cr_assert_eq(st.dropped, 2);
        cr_assert_eq(st.rejected, 0);
        for (uint64_t s = 0; s < 4; s++)
                expect_msg(&e, s, 0, s);
        expect_empty(&e);
        channel_rx_end(&e.rx);
        cr_assert(send(&e, 6));
        expect_msg(&e, 6, 2, 6);
        expect_empty(&e);
        st = stats_of(&e);
        cr_assert_eq(st.published, 7);
        cr_assert_eq(st.consumed, 5);
        cr_assert_eq(st.dropped, 2);
        cr_assert_eq(st.overwritten, 0);
        cr_assert_eq(st.lost, 2);
        expect_balanced(&e);
        close_ends(&e);
}

Test(channel, reject_refuses_when_full_and_loses_nothing)
{
        struct ends e;
        open_ends(&e, 4, 8, CHANNEL_REJECT);
        for (uint64_t v = 0; v < 4; v++)
                cr_assert(send(&e, v));
        for (int k = 0; k < 3; k++)
                cr_assert_null(channel_claim(&e.tx));
        channel_publish(&e.tx); /* nothing was claimed: no effect */
        struct channel_stats st = stats_of(&e);
        cr_assert_eq(st.published, 4);
        cr_assert_eq(st.rejected, 3);
        cr_assert_eq(st.lost, 0);

        /* Reading one in place does not free its slot yet; ending the pass does. */
        expect_msg(&e, 0, 0, 0);
        cr_assert_null(channel_claim(&e.tx));
        channel_rx_end(&e.rx);
        cr_assert(send(&e, 4));
        cr_assert_null(channel_claim(&e.tx));
        /* Moving on to the next message frees the previous slot too. */
        expect_msg(&e, 1, 0, 1);
        expect_msg(&e, 2, 0, 2);
        cr_assert(send(&e, 5));
        for (uint64_t s = 3; s < 6; s++)
                expect_msg(&e, s, 0, s);
        expect_empty(&e);
        channel_rx_end(&e.rx);
        st = stats_of(&e);
        cr_assert_eq(st.published, 6);
        cr_assert_eq(st.consumed, 6);
        cr_assert_eq(st.rejected, 5);
        cr_assert_eq(st.lost, 0);
        cr_assert_eq(st.dropped, 0);
        cr_assert_eq(st.overwritten, 0);
        expect_balanced(&e);
        close_ends(&e);
}

/* The handshake that wakes a refused producer: the request stands until a pass that gave slots
 * back finds it, once; a request made when there is room already says so and stands not. */
Test(channel, a_refused_producer_is_told_of_room_once)
{
        struct ends e;
        open_ends(&e, 4, 8, CHANNEL_REJECT);
        for (uint64_t v = 0; v < 4; v++)
                cr_assert(send(&e, v));
        cr_assert_not(e.tx.refused);
        cr_assert_null(channel_claim(&e.tx));
        cr_assert(e.tx.refused, "a refusal is marked for the owner");
        e.tx.refused = false;
        cr_assert_not(channel_tx_want_room(&e.tx), "the ring is full: the request stands");
        /* A pass that read nothing gave nothing back. */
        cr_assert_not(channel_rx_end(&e.rx));
        /* Reading in place gives back at the end of the pass, which says so. */
        expect_msg(&e, 0, 0, 0);
        cr_assert(channel_rx_end(&e.rx));
        cr_assert(channel_rx_room_wanted(&e.rx), "the request is found");
        cr_assert_not(channel_rx_room_wanted(&e.rx), "and only once");
        cr_assert(send(&e, 4));
        cr_assert_not(e.tx.refused);

        /* Room given back before the request: the producer sees it itself. */
        cr_assert_null(channel_claim(&e.tx));
        expect_msg(&e, 1, 0, 1);
        cr_assert(channel_rx_end(&e.rx));
        cr_assert_not(channel_rx_room_wanted(&e.rx), "no one asked yet");
        cr_assert(channel_tx_want_room(&e.tx), "room already");
        expect_msg(&e, 2, 0, 2);
        cr_assert(channel_rx_end(&e.rx));
        cr_assert_not(channel_rx_room_wanted(&e.rx), "a request answered by the producer is gone");
        cr_assert(send(&e, 5));
        close_ends(&e);

        /* The other policies never refuse, and their passes never say they gave back. */
        for (int i = 0; i < 2; i++) {
                open_ends(&e, 2, 8, all_policies[i]);
                for (uint64_t v = 0; v < 4; v++)
                        cr_assert(send(&e, v));
                cr_assert_not(e.tx.refused);
                struct msg m;
                cr_assert(recv(&e, &m));
                cr_assert_not(channel_rx_end(&e.rx));
                close_ends(&e);
        }
}

Test(channel, capacity_one)
{
        struct ends e;

        open_ends(&e, 1, 8, CHANNEL_OVERWRITE);
        cr_assert(send(&e, 1));
        cr_assert(send(&e, 2));
        cr_assert(send(&e, 3));
        expect_msg(&e, 2, 2, 3);
        expect_empty(&e);
        cr_assert(send(&e, 4));
        expect_msg(&e, 3, 0, 4);
        expect_empty(&e);
        expect_balanced(&e);
        close_ends(&e);

        open_ends(&e, 1, 8, CHANNEL_DROP_NEW);
        cr_assert(send(&e, 1));
        cr_assert(send(&e, 2));
        expect_msg(&e, 0, 0, 1);
        cr_assert(send(&e, 3)); /* the only slot is still held in place: dropped */
        expect_empty(&e);       /* moving on released it */
        cr_assert(send(&e, 4));
        expect_msg(&e, 3, 2, 4);
        channel_rx_end(&e.rx);
        expect_empty(&e);
        cr_assert_eq(stats_of(&e).dropped, 2);
        expect_balanced(&e);
        close_ends(&e);

        open_ends(&e, 1, 8, CHANNEL_REJECT);
        cr_assert(send(&e, 1));
        cr_assert_not(send(&e, 2));
        expect_msg(&e, 0, 0, 1);
        cr_assert_not(send(&e, 2));
        channel_rx_end(&e.rx);
        cr_assert(send(&e, 2));
        expect_msg(&e, 1, 0, 2);
        expect_empty(&e);
        cr_assert_eq(stats_of(&e).rejected, 2);
        cr_assert_eq(stats_of(&e).lost, 0);
        expect_balanced(&e);
        close_ends(&e);
}

Test(channel, capacity_two)
{
        struct ends e;

        open_ends(&e, 2, 8, CHANNEL_OVERWRITE);
        for (uint64_t v = 0; v < 5; v++)
                cr_assert(send(&e, v));
        expect_msg(&e, 3, 3, 3);
        cr_assert(send(&e, 5));
        cr_assert(send(&e, 6)); /* overwrites 4, which was never read */
        expect_msg(&e, 5, 1, 5);
        expect_msg(&e, 6, 0, 6);
        expect_empty(&e);
        expect_balanced(&e);
        close_ends(&e);

        open_ends(&e, 2, 8, CHANNEL_DROP_NEW);
        for (uint64_t v = 0; v < 5; v++)
                cr_assert(send(&e, v));
        expect_msg(&e, 0, 0, 0);
        cr_assert(send(&e, 5)); /* slot 0 is held: dropped */
        expect_msg(&e, 1, 0, 1);
        cr_assert(send(&e, 6)); /* slot 0 was released by the move: kept */
        expect_msg(&e, 6, 4, 6);
        expect_empty(&e);
        channel_rx_end(&e.rx);
        cr_assert_eq(stats_of(&e).dropped, 4);
        expect_balanced(&e);
        close_ends(&e);

        open_ends(&e, 2, 8, CHANNEL_REJECT);
        cr_assert(send(&e, 0));
        cr_assert(send(&e, 1));
        cr_assert_not(send(&e, 2));
        expect_msg(&e, 0, 0, 0);
        expect_msg(&e, 1, 0, 1);
        cr_assert(send(&e, 2));
        cr_assert_not(send(&e, 3));
        expect_msg(&e, 2, 0, 2);
        expect_empty(&e);
        channel_rx_end(&e.rx);
        cr_assert(send(&e, 3));
        cr_assert(send(&e, 4));
        expect_msg(&e, 3, 0, 3);
        expect_msg(&e, 4, 0, 4);
        expect_empty(&e);
        expect_balanced(&e);
        cr_assert_eq(stats_of(&e).lost, 0);
        close_ends(&e);
}

Test(channel, claim_twice_without_publish_returns_the_same_slot)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 2, 8, all_policies[i]);
                void *a = channel_claim(&e.tx);
                void *b = channel_claim(&e.tx);
                cr_assert_not_null(a);
                cr_assert_eq(a, b);
                memcpy(a, &(uint64_t){42}, 8);
                channel_publish(&e.tx);
                void *c = channel_claim(&e.tx);
                cr_assert_not_null(c);
                cr_assert_neq(c, a, "the next claim must move to the next slot");
                cr_assert_eq(channel_claim(&e.tx), c);
                memcpy(c, &(uint64_t){43}, 8);
                channel_publish(&e.tx);
                cr_assert_eq(stats_of(&e).published, 2);
                expect_msg(&e, 0, 0, 42);
                expect_msg(&e, 1, 0, 43);
                expect_empty(&e);
                close_ends(&e);
        }

        /* Under drop_new, a full ring hands out its scratch area, the same one twice too. */
        struct ends e;
        open_ends(&e, 1, 8, CHANNEL_DROP_NEW);
        cr_assert(send(&e, 1));
        void *a = channel_claim(&e.tx);
        cr_assert_not_null(a);
        cr_assert_eq(channel_claim(&e.tx), a);
        channel_publish(&e.tx);
        struct channel_stats st = stats_of(&e);
        cr_assert_eq(st.published, 2);
        cr_assert_eq(st.dropped, 1);
        close_ends(&e);
}

/* A claim's mark outlives its lap in no form: with one slot, every claim is for the same slot,
 * and a publish without a claim after the ring wrapped must still do nothing. A reopened
 * producer has no claim pending either. */
Test(channel, publish_without_claim_after_a_wrap_or_a_reopen_does_nothing)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 1, 8, all_policies[i]);
                for (uint64_t v = 0; v < 3; v++) {
                        cr_assert(send(&e, v));
                        expect_msg(&e, v, 0, v);
                        channel_publish(&e.tx);
                        expect_empty(&e);
                }
                cr_assert_not_null(channel_claim(&e.tx), "a claim, then the end closes");
                channel_tx_close(&e.tx);
                cr_assert_eq(channel_tx_open(&e.tx, &e.ch), 0);
                channel_publish(&e.tx);
                expect_empty(&e);
                cr_assert_eq(stats_of(&e).published, 3);
                cr_assert(send(&e, 3));
                expect_msg(&e, 3, 0, 3);
                close_ends(&e);
        }
}

/* drop_new/reject: a reader gives slots back every eighth of the ring (at most 32), when it
 * finds the ring empty and when its run ends; a producer facing a busy reader sees the ring
 * full that much early, never more. */
Test(channel, reader_gives_slots_back_in_batches)
{
        const enum channel_policy pols[] = {CHANNEL_DROP_NEW, CHANNEL_REJECT};
        for (size_t i = 0; i < 2; i++) {
                struct ends e;
                open_ends(&e, 64, 8, pols[i]); /* gives back every 8 */
                for (uint64_t v = 0; v < 64; v++)
                        cr_assert(send(&e, v));
                for (uint64_t v = 0; v < 8; v++)
                        expect_msg(&e, v, 0, v);
                /* Eight read, the eighth still held: none given back yet. */
                cr_assert_eq(stats_of(&e).consumed, 8);
                cr_assert_not(send(&e, 64) && pols[i] == CHANNEL_REJECT);
                if (pols[i] == CHANNEL_DROP_NEW)
                        cr_assert_eq(stats_of(&e).dropped, 1);
                uint64_t next = pols[i] == CHANNEL_DROP_NEW ? 65 : 64;
                /* Taking the ninth gives back the eight before it. */
                expect_msg(&e, 8, 0, 8);
                for (uint64_t v = 0; v < 8; v++)
                        cr_assert(send(&e, next + v), "slot %lu given back", (unsigned long)v);
                cr_assert_not(send(&e, 99) && pols[i] == CHANNEL_REJECT, "and no more");
                /* The end of a run gives back everything read. */
                expect_msg(&e, 9, 0, 9);
                expect_msg(&e, 10, 0, 10);
                channel_rx_end(&e.rx);
                for (uint64_t v = 0; v < 3; v++)
                        cr_assert(send(&e, 200 + v));
                close_ends(&e);
        }
        /* Small rings give back every message. */
        struct ends e;
        open_ends(&e, 2, 8, CHANNEL_REJECT);
        cr_assert(send(&e, 0));
        cr_assert(send(&e, 1));
        expect_msg(&e, 0, 0, 0);
        expect_msg(&e, 1, 0, 1);
        cr_assert(send(&e, 2), "taking the second gave back the first");
        cr_assert_not(send(&e, 3));
        close_ends(&e);
}

Test(channel, publish_without_claim_does_nothing)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 4, 8, all_policies[i]);
                channel_publish(&e.tx);
                expect_empty(&e);
                cr_assert_eq(stats_of(&e).published, 0);
                cr_assert(send(&e, 7));
                channel_publish(&e.tx); /* a second publish of the same claim */
                expect_msg(&e, 0, 0, 7);
                expect_empty(&e);
                struct channel_stats st = stats_of(&e);
                cr_assert_eq(st.published, 1);
                cr_assert_eq(st.consumed, 1);
                cr_assert_eq(st.lost, 0);
                close_ends(&e);
        }
}

Test(channel, readable_before_and_after)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 4, 8, all_policies[i]);
                cr_assert_not(channel_readable(&e.rx));
                cr_assert(send(&e, 1));
                cr_assert(channel_readable(&e.rx));
                cr_assert(channel_readable(&e.rx), "asking twice consumes nothing");
                cr_assert(send(&e, 2));
                expect_msg(&e, 0, 0, 1);
                cr_assert(channel_readable(&e.rx), "a second message is waiting");
                expect_msg(&e, 1, 0, 2);
                cr_assert_not(channel_readable(&e.rx));
                channel_rx_end(&e.rx);
                cr_assert_not(channel_readable(&e.rx));
                /* A pass ended while holding nothing, after a wrap of the ring. */
                for (uint64_t v = 0; v < 4; v++)
                        cr_assert(send(&e, v));
                cr_assert(channel_readable(&e.rx));
                for (uint64_t s = 2; s < 6; s++)
                        expect_msg(&e, s, 0, s - 2);
                cr_assert_not(channel_readable(&e.rx));
                close_ends(&e);
        }

        /* Lapped: the reader's slot holds a newer message, which is readable. */
        struct ends e;
        open_ends(&e, 2, 8, CHANNEL_OVERWRITE);
        for (uint64_t v = 0; v < 3; v++)
                cr_assert(send(&e, v));
        cr_assert(channel_readable(&e.rx));
        expect_msg(&e, 1, 1, 1);
        /* Lapped by a message still being written: the older one beside it is readable. */
        cr_assert(send(&e, 3));
        cr_assert(send(&e, 4));
        cr_assert_not_null(channel_claim(&e.tx));
        cr_assert(channel_readable(&e.rx));
        expect_msg(&e, 4, 2, 4);
        cr_assert_not(channel_readable(&e.rx));
        channel_publish(&e.tx);
        cr_assert(channel_readable(&e.rx));
        close_ends(&e);
}

/* Under overwrite the message is the reader's own copy: the producer may reuse the slot at
 * once, and the copy stays intact until the next call. */
Test(channel, overwrite_read_is_stable_while_producer_laps)
{
        struct ends e;
        open_ends(&e, 2, 64, CHANNEL_OVERWRITE);
        unsigned char *p = channel_claim(&e.tx);
        memset(p, 0xab, 64);
        channel_publish(&e.tx);
        uint64_t seq, lost, ns;
        const unsigned char *r = channel_next(&e.rx, &seq, &lost, &ns);
        cr_assert_not_null(r);
        for (int k = 0; k < 5; k++) {
                p = channel_claim(&e.tx);
                memset(p, k, 64);
                channel_publish(&e.tx);
        }
        for (int j = 0; j < 64; j++)
                cr_assert_eq(r[j], 0xab, "byte %d changed under the reader", j);
        close_ends(&e);
}

/* Under drop_new and reject the message is read in place, and the producer may not reuse its
 * slot until the reader moves on. */
Test(channel, in_place_read_is_stable_until_the_next_call)
{
        for (size_t i = 1; i < 3; i++) {
                enum channel_policy pol = all_policies[i];
                struct ends e;
                open_ends(&e, 2, 64, pol);
                unsigned char *p = channel_claim(&e.tx);
                memset(p, 0xab, 64);
                channel_publish(&e.tx);
                uint64_t seq, lost, ns;
                const unsigned char *r = channel_next(&e.rx, &seq, &lost, &ns);
                cr_assert_not_null(r);
                cr_assert_eq((const void *)r, (const void *)p, "read in place");
                /* The other slot takes one; after that the ring is full. */
                for (int k = 0; k < 4; k++) {
                        p = channel_claim(&e.tx);
                        if (pol == CHANNEL_REJECT && k > 0) {
                                cr_assert_null(p);
                                continue;
                        }
                        cr_assert_not_null(p);
                        memset(p, k, 64);
                        channel_publish(&e.tx);
                }
                for (int j = 0; j < 64; j++)
                        cr_assert_eq(r[j], 0xab, "%s: byte %d changed under the reader",
                                     channel_policy_to_string(pol), j);
                const unsigned char *r2 = channel_next(&e.rx, &seq, &lost, &ns);
                cr_assert_not_null(r2);
                cr_assert_eq(seq, 1);
                cr_assert_eq(r2[0], 0);
                /* The first slot is free again. */
                p = channel_claim(&e.tx);
                cr_assert_eq((const void *)p, (const void *)r);
                memset(p, 0xcd, 64);
                channel_publish(&e.tx);
                cr_assert_eq(r2[0], 0, "the held slot was not touched");
                channel_rx_end(&e.rx);
                close_ends(&e);
        }
}

Test(channel, publish_time_is_carried_through)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 4, 8, all_policies[i]);
                for (uint64_t v = 0; v < 3; v++) {
                        e.tx.now_ns = 1000000007u * (v + 1);
                        cr_assert(send(&e, v));
                }
                for (uint64_t v = 0; v < 3; v++) {
                        struct msg m;
                        cr_assert(recv(&e, &m));
                        cr_assert_eq(m.ns, 1000000007u * (v + 1));
                }
                /* The time is taken at publish, not at claim. */
                void *p = channel_claim(&e.tx);
                memset(p, 0, 8);
                e.tx.now_ns = 77;
                channel_publish(&e.tx);
                struct msg m;
                cr_assert(recv(&e, &m));
                cr_assert_eq(m.ns, 77);
                close_ends(&e);
        }
}

/* The high-water mark is sampled by the producer when the ring looks full (at most once per
 * lap), so it shows after the producer has met a full ring. */
Test(channel, high_water_after_filling)
{
        for (size_t i = 0; i < 3; i++) {
                enum channel_policy pol = all_policies[i];
                struct ends e;
                open_ends(&e, 8, 8, pol);
                for (uint64_t v = 0; v < 8; v++)
                        cr_assert(send(&e, v));
                send(&e, 8); /* meets the full ring */
                struct channel_stats st = stats_of(&e);
                cr_assert_gt(st.high_water, 0, "%s", channel_policy_to_string(pol));
                cr_assert_leq(st.high_water, st.capacity, "%s", channel_policy_to_string(pol));
                /* Far past full, the mark stays bounded by the capacity. */
                for (uint64_t v = 9; v < 100; v++)
                        send(&e, v);
                st = stats_of(&e);
                cr_assert_leq(st.high_water, st.capacity);
                close_ends(&e);
        }
}

/* Payload sizes that are not a multiple of the slot alignment are carried whole. */
Test(channel, odd_payload_sizes_are_carried_whole)
{
        static const uint32_t sizes[] = {1, 3, 15, 16, 17, 100, 4095};
        unsigned char buf[4095];
        for (size_t i = 0; i < 3; i++) {
                for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
                        uint32_t n = sizes[z];
                        struct ends e;
                        open_ends(&e, 2, n, all_policies[i]);
                        for (int round = 0; round < 5; round++) {
                                unsigned char *p = channel_claim(&e.tx);
                                cr_assert_not_null(p);
                                for (uint32_t j = 0; j < n; j++)
                                        buf[j] = (unsigned char)(j * 7 + (uint32_t)round);
                                memcpy(p, buf, n);
                                channel_publish(&e.tx);
                                uint64_t seq, lost, ns;
                                const void *r = channel_next(&e.rx, &seq, &lost, &ns);
                                cr_assert_not_null(r);
                                cr_assert_eq(seq, (uint64_t)round);
                                cr_assert_arr_eq(r, buf, n, "size %u round %d", n, round);
                        }
                        close_ends(&e);
                }
        }
}

/* Each end keeps its own cursor: two channels never see each other's messages. */
Test(channel, channels_are_independent)
{
        struct ends a, b;
        open_ends(&a, 4, 8, CHANNEL_OVERWRITE);
        open_ends(&b, 4, 8, CHANNEL_REJECT);
        cr_assert(send(&a, 1));
        expect_empty(&b);
        cr_assert(send(&b, 2));
        expect_msg(&a, 0, 0, 1);
        expect_msg(&b, 0, 0, 2);
        expect_empty(&a);
        expect_empty(&b);
        close_ends(&a);
        close_ends(&b);
}

/* A producer end closed and opened again carries on: under drop_new the ring position lags the
 * sequence by the drops, and a wrong restart would strand the reader on a skipped slot. */
Test(channel, reopened_producer_carries_on)
{
        for (size_t p = 0; p < sizeof(all_policies) / sizeof(all_policies[0]); p++) {
                struct ends e;
                open_ends(&e, 4, 8, all_policies[p]);
                for (uint64_t v = 0; v < 5; v++)
                        send(&e, v); /* the fifth overflows */
                struct msg m;
                while (recv(&e, &m))
                        ;
                channel_rx_end(&e.rx);
                channel_tx_close(&e.tx);
                cr_assert_eq(channel_tx_open(&e.tx, &e.ch), 0);
                uint64_t first = stats_of(&e).published;
                for (uint64_t v = 100; v < 103; v++)
                        cr_assert(send(&e, v));
                /* Under drop_new the fifth message was dropped: the next one shows the gap. */
                uint64_t gap = all_policies[p] == CHANNEL_DROP_NEW;
                for (uint64_t i = 0; i < 3; i++)
                        expect_msg(&e, first + i, i == 0 ? gap : 0, 100 + i);
                expect_empty(&e);
                expect_balanced(&e);
                close_ends(&e);
        }
}

/* A consumer end closed and opened again neither re-delivers nor forgets its counts. */
Test(channel, reopened_consumer_carries_on)
{
        for (size_t p = 0; p < sizeof(all_policies) / sizeof(all_policies[0]); p++) {
                struct ends e;
                open_ends(&e, 4, 8, all_policies[p]);
                for (uint64_t v = 0; v < 6; v++) {
                        send(&e, v);
                        struct msg m;
                        cr_assert(recv(&e, &m));
                        cr_assert_eq(m.value, v);
                }
                channel_rx_close(&e.rx);
                cr_assert_eq(channel_rx_open(&e.rx, &e.ch), 0);
                expect_empty(&e);
                cr_assert(send(&e, 6));
                expect_msg(&e, 6, 0, 6);
                expect_empty(&e);
                cr_assert_eq(stats_of(&e).consumed, 7);
                expect_balanced(&e);
                close_ends(&e);
        }
}

/* Capacity 1, overwrite: a claim in progress over the only slot leaves nothing readable. */
Test(channel, capacity_one_claim_in_progress_is_not_readable)
{
        struct ends e;
        open_ends(&e, 1, 8, CHANNEL_OVERWRITE);
        send(&e, 0);
        expect_msg(&e, 0, 0, 0);
        send(&e, 1);
        cr_assert_not_null(channel_claim(&e.tx)); /* message 2, not yet published */
        cr_assert_not(channel_readable(&e.rx), "readable, but next() would find nothing");
        struct msg m;
        cr_assert_not(recv(&e, &m));
        channel_publish(&e.tx);
        cr_assert(channel_readable(&e.rx));
        close_ends(&e);
}

/* ---- batches ---- */

/* Claims up to n slots, writes values v, v+1, ... and publishes them; returns the count. */
static uint32_t send_n(struct ends *e, uint32_t n, uint64_t v)
{
        uint32_t k;
        unsigned char *p = channel_claim_n(&e->tx, n, &k);
        if (!p) {
                cr_assert_eq(k, 0);
                return 0;
        }
        cr_assert_gt(k, 0);
        cr_assert_leq(k, n);
        for (uint32_t i = 0; i < k; i++) {
                uint64_t x = v + i;
                memcpy(p + i * e->tx.payload_stride, &x, sizeof(x));
        }
        channel_publish(&e->tx);
        return k;
}

/* Reads one run; checks that it holds `count` messages from `seq` with values from `value`. */
static void expect_burst(struct ends *e, uint32_t max, uint32_t count, uint64_t seq, uint64_t lost,
                         uint64_t value)
{
        struct channel_burst b;
        uint32_t k = channel_next_burst(&e->rx, max, &b);
        cr_assert_eq(k, count, "burst of %u from seq %lu: got %u", count, (unsigned long)seq, k);
        if (!k)
                return;
        cr_assert_eq(b.count, k);
        cr_assert_eq(b.seq, seq, "seq %lu, expected %lu", (unsigned long)b.seq, (unsigned long)seq);
        cr_assert_eq(b.lost_before, lost);
        for (uint32_t i = 0; i < k; i++) {
                uint64_t x;
                memcpy(&x, channel_burst_msg(&b, i), sizeof(x));
                cr_assert_eq(x, value + i, "message %u: %lu, expected %lu", i, (unsigned long)x,
                             (unsigned long)(value + i));
        }
}

Test(channel, batch_publish_and_read_every_policy)
{
        static const uint32_t sizes[] = {8, 64, 200};
        for (size_t i = 0; i < 3; i++) {
                for (size_t z = 0; z < 3; z++) {
                        struct ends e;
                        open_ends(&e, 8, sizes[z], all_policies[i]);
                        cr_assert_eq(send_n(&e, 5, 100), 5);
                        cr_assert_eq(stats_of(&e).published, 5);
                        for (uint64_t s = 0; s < 5; s++)
                                expect_msg(&e, s, 0, 100 + s);
                        expect_empty(&e);
                        /* A run ends at the ring's end: 3 slots are left before it. */
                        cr_assert_eq(send_n(&e, 8, 200), 3);
                        cr_assert_eq(send_n(&e, 2, 203), 2);
                        if (all_policies[i] == CHANNEL_OVERWRITE) {
                                /* Copied out: a run goes on past the ring's end. */
                                expect_burst(&e, 8, 5, 5, 0, 200);
                        } else {
                                expect_burst(&e, 8, 3, 5, 0, 200);
                                expect_burst(&e, 8, 2, 8, 0, 203);
                        }
                        expect_burst(&e, 8, 0, 0, 0, 0);
                        channel_rx_end(&e.rx);
                        struct channel_stats st = stats_of(&e);
                        cr_assert_eq(st.published, 10);
                        cr_assert_eq(st.consumed, 10);
                        expect_balanced(&e);
                        close_ends(&e);
                }
        }
}

/* Each message of a batch gets the publish time in force at the publish, and its own seq. */
Test(channel, batch_carries_publish_time)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 8, 8, all_policies[i]);
                e.tx.now_ns = 5;
                uint32_t k;
                unsigned char *p = channel_claim_n(&e.tx, 4, &k);
                cr_assert_eq(k, 4);
                memset(p, 0, 4 * e.tx.payload_stride);
                e.tx.now_ns = 77;
                channel_publish(&e.tx);
                for (uint64_t s = 0; s < 4; s++) {
                        struct msg m;
                        cr_assert(recv(&e, &m));
                        cr_assert_eq(m.seq, s);
                        cr_assert_eq(m.ns, 77);
                }
                cr_assert(send(&e, 9));
                struct channel_burst b;
                cr_assert_eq(channel_next_burst(&e.rx, 4, &b), 1);
                cr_assert_eq(channel_burst_publish_ns(&b, 0), 77);
                close_ends(&e);
        }
}

/* Claiming again before the publish gives the same first slot; publishing twice does nothing
 * the second time. */
Test(channel, batch_claim_twice_and_publish_twice)
{
        for (size_t i = 0; i < 3; i++) {
                struct ends e;
                open_ends(&e, 8, 8, all_policies[i]);
                uint32_t k1, k2;
                void *a = channel_claim_n(&e.tx, 4, &k1);
                void *b = channel_claim_n(&e.tx, 2, &k2);
                cr_assert_eq(a, b);
                cr_assert_eq(k1, 4);
                cr_assert_eq(k2, 2, "the later claim decides how many are published");
                memcpy(a, &(uint64_t){1}, 8);
                memcpy((unsigned char *)a + e.tx.payload_stride, &(uint64_t){2}, 8);
                channel_publish(&e.tx);
                channel_publish(&e.tx);
                cr_assert_eq(stats_of(&e).published, 2);
                expect_msg(&e, 0, 0, 1);
                expect_msg(&e, 1, 0, 2);
                expect_empty(&e);
                /* A single claim after a batch claim narrows it to one slot. */
                a = channel_claim_n(&e.tx, 3, &k1);
                cr_assert_eq(channel_claim(&e.tx), a);
                memcpy(a, &(uint64_t){3}, 8);
                channel_publish(&e.tx);
                expect_msg(&e, 2, 0, 3);
                expect_empty(&e);
                cr_assert_eq(stats_of(&e).published, 3);
                close_ends(&e);
        }
}

/* Under reject a batch claim takes what is free; the whole run read at once stays held until
 * the next call, and is released by it. */
Test(channel, batch_reject_holds_the_whole_run)
{
        struct ends e;
        open_ends(&e, 4, 8, CHANNEL_REJECT);
        cr_assert_eq(send_n(&e, 3, 0), 3);
        cr_assert_eq(send_n(&e, 3, 3), 1, "one slot left");
        cr_assert_eq(send_n(&e, 3, 4), 0, "full");
        expect_burst(&e, 4, 4, 0, 0, 0);
        struct channel_stats st = stats_of(&e);
        cr_assert_eq(st.consumed, 4, "four held, all delivered");
        cr_assert_eq(send_n(&e, 1, 4), 0, "a run read in place is not released yet");
        expect_burst(&e, 4, 0, 0, 0, 0); /* moving on releases all four */
        cr_assert_eq(send_n(&e, 4, 4), 4);
        expect_burst(&e, 2, 2, 4, 0, 4);
        cr_assert_eq(send_n(&e, 4, 8), 0, "the run of two is held");
        expect_msg(&e, 6, 0, 6);
        cr_assert_eq(send_n(&e, 4, 8), 2, "moving on released the run of two");
        expect_msg(&e, 7, 0, 7);
        expect_burst(&e, 4, 2, 8, 0, 8);
        channel_rx_end(&e.rx);
        st = stats_of(&e);
        cr_assert_eq(st.published, 10);
        cr_assert_eq(st.consumed, 10);
        cr_assert_eq(st.lost, 0);
        cr_assert_eq(st.rejected, 3);
        close_ends(&e);
}

/* Under drop_new a batch read stops at a gap, which the next run reports. */
Test(channel, batch_drop_new_stops_at_a_gap)
{
        struct ends e;
        open_ends(&e, 4, 8, CHANNEL_DROP_NEW);
        cr_assert_eq(send_n(&e, 4, 0), 4);
        cr_assert_eq(send_n(&e, 4, 4), 1, "full: one scratch slot");
        cr_assert_eq(stats_of(&e).dropped, 1);
        expect_burst(&e, 2, 2, 0, 0, 0);
        expect_burst(&e, 4, 2, 2, 0, 2);
        channel_rx_end(&e.rx);
        cr_assert_eq(send_n(&e, 4, 5), 4);
        expect_burst(&e, 4, 4, 5, 1, 5);
        expect_empty(&e);
        expect_balanced(&e);
        close_ends(&e);
}

/* The producer stores no count per message: channel_stats() reads it from the stamps, and
 * channel_tx_seq() from the cursor. Both must be exact after every call, at every position of
 * the ring (capacity 1, 2 and 8, many laps), with a claim pending (an odd stamp under
 * overwrite), with a batch claim narrowed by a later one (odd stamps left beyond the cursor),
 * after drops, and across a reopened producer end. */
Test(channel, published_count_is_exact_without_a_store_per_message)
{
        static const uint32_t capacities[] = {1, 2, 8};
        for (size_t p = 0; p < 3; p++) {
                for (size_t c = 0; c < 3; c++) {
                        struct ends e;
                        open_ends(&e, capacities[c], 8, all_policies[p]);
                        uint64_t count = 0;
                        for (uint64_t i = 0; i < 50; i++) {
                                uint32_t k;
                                if (i % 7 == 3) {
                                        /* A batch claim narrowed to one slot (refused
                                         * under reject when the ring is full). */
                                        (void)channel_claim_n(&e.tx, 4, &k);
                                        cr_assert_eq(stats_of(&e).published, count);
                                }
                                void *m = channel_claim(&e.tx);
                                if (m) {
                                        cr_assert_eq(stats_of(&e).published, count,
                                                     "claim pending at %lu", (unsigned long)count);
                                        memcpy(m, &i, sizeof(i));
                                        channel_publish(&e.tx);
                                        count++; /* a drop under drop_new counts too */
                                }
                                cr_assert_eq(stats_of(&e).published, count, "after %lu",
                                             (unsigned long)i);
                                cr_assert_eq(channel_tx_seq(&e.tx), count);
                                if (i % 3 == 2) {
                                        struct msg r;
                                        while (recv(&e, &r))
                                                ;
                                        channel_rx_end(&e.rx);
                                }
                                if (i % 11 == 10) {
                                        channel_tx_close(&e.tx);
                                        cr_assert_eq(stats_of(&e).published, count);
                                        cr_assert_eq(channel_tx_open(&e.tx, &e.ch), 0);
                                        cr_assert_eq(channel_tx_seq(&e.tx), count);
                                }
                        }
                        struct msg r;
                        while (recv(&e, &r))
                                ;
                        channel_rx_end(&e.rx);
                        expect_balanced(&e);
                        close_ends(&e);
                }
        }
}

/* A reader many laps behind lands on the oldest message still in the ring in one call, also
 * when the slot after the newest is being written (that message's predecessor in the slot is
 * gone, and counted lost). */
Test(channel, overwrite_reader_far_behind_lands_on_the_oldest)
{
        for (int pending = 0; pending < 2; pending++) {
                struct ends e;
                open_ends(&e, 8, 8, CHANNEL_OVERWRITE);
                for (uint64_t v = 0; v < 83; v++)
                        cr_assert(send(&e, v));
                if (pending)
                        cr_assert_not_null(channel_claim(&e.tx)); /* message 83, slot of 75 */
                uint64_t first = pending ? 76 : 75;
                expect_msg(&e, first, first, first);
                for (uint64_t s = first + 1; s < 83; s++)
                        expect_msg(&e, s, 0, s);
                expect_empty(&e);
                close_ends(&e);
        }
}

/* Under overwrite a batch read copies a run out: it ends before a message being written, a gap
 * or max, the copies keep each message's time, and the next read carries on where it ended,
 * reporting the gap. A message too large for two copies in 16 KiB is read one at a time. */
Test(channel, overwrite_batch_read_copies_runs)
{
        struct ends e;
        open_ends(&e, 8, 8, CHANNEL_OVERWRITE);
        e.tx.now_ns = 11;
        cr_assert_eq(send_n(&e, 3, 0), 3);
        e.tx.now_ns = 12;
        cr_assert_eq(send_n(&e, 2, 3), 2);
        void *m5 = channel_claim(&e.tx); /* message 5: being written */
        cr_assert_not_null(m5);
        struct channel_burst b;
        cr_assert_eq(channel_next_burst(&e.rx, 8, &b), 5);
        for (uint32_t i = 0; i < 5; i++)
                cr_assert_eq(channel_burst_publish_ns(&b, i), i < 3 ? 11 : 12);
        expect_burst(&e, 8, 0, 0, 0, 0);
        memcpy(m5, &(uint64_t){5}, 8);
        channel_publish(&e.tx);
        expect_burst(&e, 2, 1, 5, 0, 5);
        /* Twelve more into eight slots: the reader was lapped; the run starts at the oldest
         * left, after the gap, and max bounds it. */
        cr_assert_eq(send_n(&e, 3, 6), 2); /* the ring's end: slots 6 and 7 */
        cr_assert_eq(send_n(&e, 8, 8), 8);
        cr_assert_eq(send_n(&e, 2, 16), 2);
        expect_burst(&e, 3, 3, 10, 4, 10);
        expect_burst(&e, 8, 5, 13, 0, 13);
        expect_empty(&e);
        expect_balanced(&e);
        close_ends(&e);

        open_ends(&e, 8, 10000, CHANNEL_OVERWRITE);
        cr_assert_eq(e.rx.copy_slots, 1);
        cr_assert_eq(send_n(&e, 3, 0), 3);
        expect_burst(&e, 8, 1, 0, 0, 0);
        expect_burst(&e, 8, 1, 1, 0, 1);
        close_ends(&e);
}

static bool tap_recv(struct channel_tap *t, struct msg *m)
{
        const void *p = channel_tap_next(t, &m->seq, &m->lost, &m->ns);
        if (!p)
                return false;
        memcpy(&m->value, p, sizeof(m->value));
        return true;
}

/* A tap starts at the next message, reads what the consumer reads without taking it from the
 * consumer, and counts what it missed as its own gap; the channel's counters are the
 * consumer's alone. */
Test(channel, a_tap_reads_beside_the_consumer_and_changes_nothing)
{
        struct ends e;
        open_ends(&e, 8, 8, CHANNEL_OVERWRITE);
        for (uint64_t v = 100; v < 103; v++)
                cr_assert(send(&e, v));
        struct channel_tap tap;
        cr_assert_eq(channel_tap_open(&tap, &e.ch), 0);
        struct msg m;
        cr_assert_not(tap_recv(&tap, &m), "the tap starts after what was published");
        for (uint64_t v = 103; v < 108; v++)
                cr_assert(send(&e, v));
        for (uint64_t seq = 3; seq < 8; seq++) {
                cr_assert(tap_recv(&tap, &m));
                cr_assert_eq(m.seq, seq);
                cr_assert_eq(m.lost, 0);
                cr_assert_eq(m.value, 100 + seq);
        }
        cr_assert_not(tap_recv(&tap, &m));
        for (uint64_t seq = 0; seq < 8; seq++)
                expect_msg(&e, seq, 0, 100 + seq);
        expect_empty(&e);

        /* 20 more into 8 slots: both readers are lapped, each counts its own gap. */
        for (uint64_t v = 108; v < 128; v++)
                cr_assert(send(&e, v));
        cr_assert(tap_recv(&tap, &m));
        cr_assert_eq(m.seq, 20, "the oldest message left");
        cr_assert_eq(m.lost, 12);
        cr_assert_eq(m.value, 120);
        expect_msg(&e, 20, 12, 120);
        for (uint64_t seq = 21; seq < 28; seq++) {
                cr_assert(tap_recv(&tap, &m));
                cr_assert_eq(m.seq, seq);
                expect_msg(&e, seq, 0, 100 + seq);
        }
        struct channel_stats st;
        channel_stats(&e.ch, &st);
        cr_assert_eq(st.published, 28);
        cr_assert_eq(st.consumed, 16);
        cr_assert_eq(st.overwritten, 12);
        cr_assert_eq(st.lost, 12);
        channel_tap_close(&tap);
        close_ends(&e);
}

Test(channel, a_tap_needs_an_overwrite_channel)
{
        for (int p = 1; p < 3; p++) {
                struct ends e;
                open_ends(&e, 8, 8, all_policies[p]);
                struct channel_tap tap;
                cr_assert_eq(channel_tap_open(&tap, &e.ch), -ENOTSUP);
                close_ends(&e);
        }
}
