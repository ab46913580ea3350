/* The plugin header's ABI 1.1 wrappers on a daemon of ABI 1.0: a host table that ends before
 * the 1.1 entries (as such a daemon's does) gets the 1.0 calls, one message at a time, with the
 * same results a plugin would act on; and the 1.2 counters on a 1.1 daemon. The host functions here
 * serve one real channel, as the worker's do. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "actord/plugin.h"
#include "channel.h"

static struct channel ch;
static struct channel_tx tx;
static struct channel_rx rx;

static void *old_claim(struct actord_ctx *ctx, uint32_t out)
{
        (void)ctx;
        return out == 0 ? channel_claim(&tx) : NULL;
}

static void old_publish(struct actord_ctx *ctx, uint32_t out)
{
        (void)ctx;
        if (out == 0)
                channel_publish(&tx);
}

static const void *old_next(struct actord_ctx *ctx, uint32_t in, struct actord_msg_info *info)
{
        (void)ctx;
        if (in != 0)
                return NULL;
        return channel_next(&rx, &info->seq, &info->lost_before, &info->publish_ns);
}

static uint32_t old_port_size(struct actord_ctx *ctx, bool output, uint32_t port)
{
        (void)ctx;
        (void)output;
        return port == 0 ? 8 : 0;
}

/* An ABI 1.0 table: its struct_size ends where 1.0's entries end. */
static const struct actord_host old_host = {
    .abi_major = 1,
    .abi_minor = 0,
    .struct_size = offsetof(struct actord_host, claim_n),
    .claim = old_claim,
    .publish = old_publish,
    .next = old_next,
    .port_size = old_port_size,
};

static void setup(void)
{
        cr_assert_eq(channel_create(&ch, 4, 8, CHANNEL_DROP_NEW), 0);
        cr_assert_eq(channel_tx_open(&tx, &ch), 0);
        cr_assert_eq(channel_rx_open(&rx, &ch), 0);
}

static void teardown(void)
{
        channel_rx_close(&rx);
        channel_tx_close(&tx);
        channel_destroy(&ch);
}

TestSuite(abi, .init = setup, .fini = teardown);

Test(abi, the_1_1_wrappers_fall_back_to_1_0_calls)
{
        struct actord_ctx ctx = {.host = &old_host};
        cr_assert_not(ACTORD_HOST_HAS(&old_host, claim_n));
        cr_assert(ACTORD_HOST_HAS(&old_host, set_error));

        /* Six messages into four slots, asked for in batches of four: one at a time. */
        tx.now_ns = 1234;
        for (uint64_t v = 0; v < 6; v++) {
                uint32_t k = 99;
                size_t stride = 0;
                void *p = actord_claim_n(&ctx, 0, 4, &k, &stride);
                cr_assert_not_null(p);
                cr_assert_eq(k, 1);
                cr_assert_eq(stride, 8);
                memcpy(p, &v, sizeof(v));
                actord_publish(&ctx, 0);
        }
        /* drop_new kept the first four and dropped two; reading in runs of up to 8 gives one
         * message per call, each with its sequence number and time. */
        struct actord_burst b = {.struct_size = sizeof(b)};
        for (uint64_t v = 0; v < 4; v++) {
                cr_assert_eq(actord_next_n(&ctx, 0, 8, &b), 1);
                cr_assert_eq(b.count, 1);
                cr_assert_eq(b.seq, v);
                cr_assert_eq(b.lost_before, 0);
                cr_assert_eq(b.stride, 8);
                cr_assert_eq(actord_burst_publish_ns(&ctx, &b, 0), 1234);
                uint64_t got;
                memcpy(&got, b.first, sizeof(got));
                cr_assert_eq(got, v);
        }
        cr_assert_eq(actord_next_n(&ctx, 0, 8, &b), 0);
        cr_assert_eq(b.count, 0);
        /* After the drops, the next message shows the gap. */
        uint32_t k;
        size_t stride;
        void *p = actord_claim_n(&ctx, 0, 2, &k, &stride);
        cr_assert_not_null(p);
        memcpy(p, &(uint64_t){6}, 8);
        actord_publish(&ctx, 0);
        cr_assert_eq(actord_next_n(&ctx, 0, 8, &b), 1);
        cr_assert_eq(b.seq, 6);
        cr_assert_eq(b.lost_before, 2);
}

/* An ABI 1.1 table ends before the 1.2 entries: counters are not there, and a plugin that
 * declares and counts runs on (its counters come to nothing). */
static const struct actord_host host_1_1 = {
    .abi_major = 1,
    .abi_minor = 1,
    .struct_size = offsetof(struct actord_host, counter),
    .claim = old_claim,
    .publish = old_publish,
    .next = old_next,
    .port_size = old_port_size,
};

Test(abi, counters_on_a_1_1_daemon_come_to_nothing)
{
        struct actord_ctx ctx = {.host = &host_1_1};
        int id = actord_counter(&ctx, "sent", "messages");
        cr_assert_eq(id, -ENOTSUP);
        /* Neither an id from such a daemon nor any other reaches the missing entry. */
        actord_count(&ctx, id, 1);
        actord_count(&ctx, 0, 1);
}
