/* The lossy typed channel: a bounded single-producer / single-consumer ring of fixed-size slots
 * whose producer never waits.
 *
 * Protocol
 * --------
 * Memory is one region (from a memfd, addressed by offsets from its start, never by pointers):
 * a header with three cache-line pairs (immutable geometry; producer-written counters;
 * consumer-written position and counters), then `nslots` slots (a power of two). A slot is a
 * 16-byte header {stamp, publish_ns} followed by the payload.
 *
 * - stamp is the slot's only synchronisation variable. 0: never written. 2*seq+2: holds the
 *   complete message `seq`. 2*seq+1: the producer is writing message `seq` into it (only under
 *   `overwrite`, where the producer may reuse a slot the consumer is reading).
 * - The producer alone writes slots, stamps and the producer line; the consumer alone writes
 *   the consumer line. Each side keeps its private cursor in its own struct (channel_tx,
 *   channel_rx), outside shared memory.
 * - The consumer finds new messages by reading the stamp of the slot at its cursor: it never
 *   reads a producer index, so a message costs it the transfer of the slot's line and nothing
 *   else.
 *
 * overwrite (default): the producer never reads anything the consumer writes, except one
 * relaxed sample of the consumer's position per lap for the high-water mark. It writes the odd
 * stamp, then the payload, then the even stamp (a seqlock per slot). The consumer copies the
 * payload out between two reads of the stamp and keeps the copy only if the stamp did not
 * change, so it never sees a torn message; if the stamp shows a later message, the producer
 * lapped it and it skips forward to the oldest message that can still be in the ring, counting
 * the skipped ones as lost.
 *
 * drop_new / reject: the producer may not reuse a slot before the consumer released it. It
 * keeps a cached copy of the consumer's position and reloads it (acquire) only when the ring
 * looks full, so in steady state it reads no consumer line. The consumer reads in place
 * (zero copy) and releases a slot by storing its position (release) when it moves on.
 *
 * Wrap-around: positions and sequence numbers are 64-bit and only compared after subtraction
 * or against each other; at 10^10 messages per second they wrap after 58 years.
 *
 * Threads: channel_tx_* on the producer's thread, channel_rx_* on the consumer's thread,
 * channel_stats() on any thread. Nothing here blocks, allocates or makes a system call on the
 * data path.
 */
#ifndef ACTORD_CHANNEL_H
#define ACTORD_CHANNEL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Pairs of lines: the adjacent-line prefetcher moves 128 bytes at a time on x86. */
#define CHANNEL_LINE 128

/* The data path is small and called in loops: keep it inline even where the compiler's
 * heuristics would emit a call (GCC 12 at -O2 did, in loops with several call sites). */
#define CHANNEL_INLINE static inline __attribute__((always_inline))

enum channel_policy {
        CHANNEL_OVERWRITE = 0,
        CHANNEL_DROP_NEW = 1,
        CHANNEL_REJECT = 2,
};

#define CHANNEL_CAPACITY_DEFAULT 1024u
#define CHANNEL_CAPACITY_MAX (1u << 24)
#define CHANNEL_PAYLOAD_MAX (1u << 20)

struct channel_slot {
        _Atomic uint64_t stamp;
        uint64_t publish_ns;
        alignas(16) unsigned char payload[];
};

struct channel_shared {
        /* Immutable after creation. */
        alignas(CHANNEL_LINE) uint32_t magic;
        uint32_t version;
        uint32_t policy;
        uint32_t payload_size;
        uint32_t stride; /* bytes per slot, header included */
        uint32_t nslots;
        uint64_t slots_offset;
        uint64_t region_size;

        /* Producer line: single writer, relaxed stores, read by channel_stats(). */
        alignas(CHANNEL_LINE) _Atomic uint64_t published; /* publish calls, drops included */
        _Atomic uint64_t dropped;                         /* drop_new losses */
        _Atomic uint64_t rejected;                        /* claims refused under reject */
        _Atomic uint64_t high_water; /* deepest backlog seen when a claim found the ring
                                      * looking full (sampled at most once per lap) */

        /* Consumer line: single writer. */
        alignas(CHANNEL_LINE) _Atomic uint64_t tail; /* position released to the producer */
        _Atomic uint64_t consumed;                   /* messages delivered */
        _Atomic uint64_t overwritten;                /* overwrite losses, seen as gaps */
        _Atomic uint64_t resume_seq; /* next sequence number, saved when the end is closed */
};

struct channel {
        struct channel_shared *sh;
        size_t map_size;
};

struct channel_tx {
        struct channel_shared *sh;
        unsigned char *slots;
        uint32_t stride;
        uint32_t mask;
        uint32_t nslots;
        uint32_t policy;
        uint64_t head;        /* position of the next slot to write */
        uint64_t seq;         /* sequence number of the next message */
        uint64_t cached_tail; /* last consumer position read */
        uint64_t now_ns;      /* publish time stamped on slots, set by the owner per run */
        struct channel_slot *claimed;
        unsigned char *scratch; /* drop_new: where a message bound to be dropped is written */
};

struct channel_rx {
        struct channel_shared *sh;
        unsigned char *slots;
        uint32_t stride;
        uint32_t mask;
        uint32_t nslots;
        uint32_t policy;
        uint32_t payload_size;
        bool holding;      /* a slot is read in place and not yet released */
        uint64_t tail;     /* position of the next slot to read */
        uint64_t next_seq; /* sequence number expected next */
        uint64_t consumed;
        uint64_t overwritten;
        struct channel_slot *copy; /* overwrite: private copy of the last message read */
};

struct channel_stats {
        uint64_t published;
        uint64_t consumed;
        uint64_t lost; /* dropped + overwritten */
        uint64_t dropped;
        uint64_t overwritten;
        uint64_t rejected;
        uint64_t high_water;
        uint32_t capacity;
};

/* Creates a channel of `capacity` messages (rounded up to a power of two) of `payload_size`
 * bytes in a fresh memfd mapping. Returns 0, or -EINVAL (capacity or size 0 or too large,
 * unknown policy) or the errno of memfd_create/ftruncate/mmap. */
int channel_create(struct channel *ret, uint32_t capacity, uint32_t payload_size,
                   enum channel_policy policy);
/* Unmaps the channel. Both ends must be closed first. Accepts a zeroed struct. */
void channel_destroy(struct channel *c);

/* Opens the producer end. Returns 0 or -ENOMEM. */
int channel_tx_open(struct channel_tx *ret, struct channel *c);
void channel_tx_close(struct channel_tx *tx);
/* Opens the consumer end. Returns 0 or -ENOMEM. */
int channel_rx_open(struct channel_rx *ret, struct channel *c);
void channel_rx_close(struct channel_rx *rx);

/* Reads the counters; any thread, no lock. Counters are read one at a time, so while both
 * ends run they are each exact but not a snapshot of one instant. */
void channel_stats(const struct channel *c, struct channel_stats *ret);

/* Parses "overwrite", "drop_new", "reject"; returns the policy or -EINVAL. */
int channel_policy_from_string(const char *s);
const char *channel_policy_to_string(enum channel_policy p);

CHANNEL_INLINE struct channel_slot *channel_slot_at_(unsigned char *slots, uint32_t stride,
                                                     uint64_t pos, uint32_t mask)
{
        return (struct channel_slot *)(void *)(slots + (size_t)(pos & mask) * stride);
}

/* Returns where to write the next message, or NULL under reject when the ring is full. Under
 * drop_new with a full ring it returns a scratch area; publishing it counts one drop. */
CHANNEL_INLINE void *channel_claim(struct channel_tx *tx)
{
        if (tx->claimed)
                return tx->claimed->payload;
        if (tx->head - tx->cached_tail >= tx->nslots) {
                if (tx->policy == CHANNEL_OVERWRITE) {
                        /* One sample per lap of the consumer's position, for the high-water
                         * mark only: relaxed, nothing is ordered by it. */
                        uint64_t t = atomic_load_explicit(&tx->sh->tail, memory_order_relaxed);
                        uint64_t depth = tx->head - t;
                        if (depth > tx->nslots)
                                depth = tx->nslots;
                        if (depth > atomic_load_explicit(&tx->sh->high_water, memory_order_relaxed))
                                atomic_store_explicit(&tx->sh->high_water, depth,
                                                      memory_order_relaxed);
                        tx->cached_tail = tx->head;
                } else {
                        /* Acquire, pairs with the consumer's release store of tail in
                         * channel_rx_release_(): its reads of the slots below tail happen
                         * before our writes into them. */
                        tx->cached_tail = atomic_load_explicit(&tx->sh->tail, memory_order_acquire);
                        uint64_t depth = tx->head - tx->cached_tail;
                        if (depth > atomic_load_explicit(&tx->sh->high_water, memory_order_relaxed))
                                atomic_store_explicit(&tx->sh->high_water, depth,
                                                      memory_order_relaxed);
                        if (depth >= tx->nslots) {
                                if (tx->policy == CHANNEL_REJECT) {
                                        atomic_store_explicit(
                                            &tx->sh->rejected,
                                            atomic_load_explicit(&tx->sh->rejected,
                                                                 memory_order_relaxed) +
                                                1,
                                            memory_order_relaxed);
                                        return NULL;
                                }
                                tx->claimed = (struct channel_slot *)(void *)tx->scratch;
                                return tx->claimed->payload;
                        }
                }
        }
        struct channel_slot *s = channel_slot_at_(tx->slots, tx->stride, tx->head, tx->mask);
        if (tx->policy == CHANNEL_OVERWRITE) {
                /* Seqlock write side. The odd stamp must be visible before any payload byte:
                 * the release fence orders it before the payload stores that follow, so a
                 * consumer whose acquire fence follows a read of new payload bytes also reads
                 * this stamp (or a later one) on its second stamp load. */
                atomic_store_explicit(&s->stamp, 2 * tx->seq + 1, memory_order_relaxed);
                atomic_thread_fence(memory_order_release);
        }
        /* Under drop_new/reject the consumer released this slot, and it reads a stamp older
         * than the one it waits for until the release store below: no odd stamp needed. */
        tx->claimed = s;
        return s->payload;
}

/* Commits the claimed message. A publish without a claim does nothing. */
CHANNEL_INLINE void channel_publish(struct channel_tx *tx)
{
        struct channel_slot *s = tx->claimed;
        if (!s)
                return;
        tx->claimed = NULL;
        uint64_t seq = tx->seq++;
        if ((unsigned char *)s == tx->scratch) {
                atomic_store_explicit(&tx->sh->dropped,
                                      atomic_load_explicit(&tx->sh->dropped, memory_order_relaxed) +
                                          1,
                                      memory_order_relaxed);
        } else {
                s->publish_ns = tx->now_ns;
                /* Release, pairs with the consumer's acquire load of the stamp in
                 * channel_next(): payload and publish_ns are visible before the stamp. */
                atomic_store_explicit(&s->stamp, 2 * seq + 2, memory_order_release);
                tx->head++;
        }
        /* Relaxed: a counter for channel_stats(), orders nothing. */
        atomic_store_explicit(&tx->sh->published, tx->seq, memory_order_relaxed);
}

/* Copy-and-validate of the seqlock read side, out of line. */
const void *channel_next_overwrite_(struct channel_rx *rx, uint64_t *ret_seq, uint64_t *ret_lost,
                                    uint64_t *ret_publish_ns);

CHANNEL_INLINE void channel_rx_release_(struct channel_rx *rx)
{
        rx->holding = false;
        rx->tail++;
        /* Release, pairs with the producer's acquire load of tail in channel_claim(): our
         * reads of the slot happen before the producer reuses it. */
        atomic_store_explicit(&rx->sh->tail, rx->tail, memory_order_release);
}

/* Returns the oldest unread message, or NULL when there is none, and its sequence number, the
 * count lost just before it and its publish time. The pointer stays valid until the next call
 * or channel_rx_end(). */
CHANNEL_INLINE const void *channel_next(struct channel_rx *rx, uint64_t *ret_seq,
                                        uint64_t *ret_lost, uint64_t *ret_publish_ns)
{
        if (rx->policy == CHANNEL_OVERWRITE)
                return channel_next_overwrite_(rx, ret_seq, ret_lost, ret_publish_ns);
        if (rx->holding)
                channel_rx_release_(rx);
        struct channel_slot *s = channel_slot_at_(rx->slots, rx->stride, rx->tail, rx->mask);
        /* Acquire, pairs with the release store in channel_publish(). */
        uint64_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (stamp == 0)
                return NULL;
        uint64_t seq = (stamp - 2) / 2;
        /* A stamp from an earlier lap carries a smaller sequence number. */
        if (seq < rx->next_seq)
                return NULL;
        *ret_lost = seq - rx->next_seq; /* drop_new gaps; 0 under reject */
        *ret_seq = seq;
        *ret_publish_ns = s->publish_ns;
        rx->next_seq = seq + 1;
        rx->holding = true;
        rx->consumed++;
        /* Relaxed: a counter for channel_stats(). */
        atomic_store_explicit(&rx->sh->consumed, rx->consumed, memory_order_relaxed);
        return s->payload;
}

/* Ends a read pass: releases the slot held in place, if any. The worker calls it when the
 * consumer's run returns. */
CHANNEL_INLINE void channel_rx_end(struct channel_rx *rx)
{
        if (rx->holding)
                channel_rx_release_(rx);
}

/* Whether a message is readable now; consumer thread only. Reads one stamp. */
CHANNEL_INLINE bool channel_readable(const struct channel_rx *rx)
{
        uint64_t pos = rx->tail + (rx->holding ? 1 : 0);
        const struct channel_slot *s = channel_slot_at_(rx->slots, rx->stride, pos, rx->mask);
        /* Acquire: a true answer is followed by reading the slot. */
        uint64_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (stamp == 0)
                return false;
        if (rx->policy == CHANNEL_OVERWRITE) {
                /* Odd: message (stamp-1)/2 is being written; it is the one we wait for, or a
                 * later one, which means older messages wait behind our cursor. */
                if (stamp & 1)
                        return rx->nslots > 1 && (stamp - 1) / 2 > pos;
                return (stamp - 2) / 2 >= pos;
        }
        return (stamp - 2) / 2 >= rx->next_seq;
}

#endif /* ACTORD_CHANNEL_H */
