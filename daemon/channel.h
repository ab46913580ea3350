/* The lossy typed channel: a bounded single-producer / single-consumer ring of fixed-size slots
 * whose producer never waits.
 *
 * Protocol
 * --------
 * Memory is one region (from a memfd, addressed by offsets from its start, never by pointers):
 * a header of cache-line pairs (immutable geometry; producer-written counters; the consumer's
 * position; its counters; a refused producer's request for room), then the slots. A slot is a
 * 16-byte header {stamp, publish_ns} and a payload. Small payloads (up to 48 bytes) follow their
 * header in the same slot, so that a message is one cache line for the consumer; larger ones live
 * in an array of their own with a 64-byte-multiple stride (a 64-byte message is exactly one line)
 * and the headers in a dense array beside it. Slots never straddle a line they do not need.
 *
 * - stamp is the slot's only synchronisation variable. 0: never written. 2*seq+2: holds the
 *   complete message `seq`. 2*seq+1: the producer is writing message `seq` into it (only under
 *   `overwrite`, where the producer may reuse a slot the consumer is reading).
 * - The producer alone writes slots, stamps and the producer line; the consumer alone writes
 *   the consumer line. Each side keeps its private cursor in its own struct (channel_tx,
 *   channel_rx), outside shared memory.
 * - The consumer finds new messages by reading the stamp of the slot at its cursor: it never
 *   reads a producer index, so a message costs it the transfer of the slot's line(s) and
 *   nothing else. Stamps along the ring increase with the position, so a batch read checks the
 *   stamp of the last slot it wants first and takes the whole run when it is the one expected.
 *
 * overwrite (default): the producer never reads anything the consumer writes, except one
 * relaxed sample of the consumer's position per lap for the high-water mark. It writes the odd
 * stamp, then the payload, then the even stamp (a seqlock per slot). The consumer copies the
 * message out between two reads of the stamp and keeps the copy only if the stamp did not
 * change, so it never sees a torn message; if the stamp shows a later message, the producer
 * lapped it and it skips forward to the oldest message that can still be in the ring, counting
 * the skipped ones as lost. Messages of up to 16 bytes are copied inline in channel_next(),
 * the rest out of line; a batch read (channel_next_burst()) copies a run, each message by the
 * same seqlock, into copies of its own (32 messages or 16 KiB at most). A consumer whose producer
 * runs on the same thread between its reads (the daemon's channels between components of one
 * worker) skips the copy: nothing can write the slot while it holds the message, so it reads in
 * place (channel_rx_set_same_thread()), a batch read too (a run up to the ring's end, or to
 * the first slot not published, after which a gap goes through the copying path).
 *
 * drop_new / reject: the producer may not reuse a slot before the consumer released it. It
 * keeps a cached copy of the consumer's position and reloads it (acquire) only when the ring
 * looks full, so in steady state it reads no consumer line. The consumer reads in place
 * (zero copy) and gives slots back by storing its position in `tail` (release): every
 * `release_every` messages (an eighth of the ring, at most 32), when it finds the ring empty
 * and when its run ends (channel_rx_end()), so that the line holding `tail` moves between the
 * two cores once per batch of slots rather than once per message. The slots of messages read
 * but not yet given back cannot be written: a producer facing a busy reader sees the ring
 * full up to that many slots early, never more.
 *
 * Counters live on lines of their own: the producer's (`dropped`, `rejected`, `high_water`,
 * and `published`, which it stores only where no stamp shows its count: a drop, the end of a
 * lap, closing its end), `consumed` and `overwritten` on the consumer's second line, so that
 * keeping them exact on every message costs no line transfer. The count of messages published
 * is in the stamps themselves: channel_stats() finds the newest one (a binary search along the
 * ring), and a lapped overwrite reader finds how far the producer got by galloping from the
 * message that replaced its own; so a message costs the producer no store besides the slot's
 * and its cursor's.
 *
 * The producer's fast path is one compare (its cursor against `hdr_limit`, the end of the run
 * of slots known free and contiguous), a check of the claim, and the stores of the message;
 * the wrap of the ring, reloading the consumer's position, the high-water sample, drops and
 * refusals all happen in channel_claim_slow_() when the cursor reaches `hdr_limit`.
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

/* ThreadSanitizer builds: the seqlock copy stays out of line, uninstrumented (channel.c). */
#if defined(__SANITIZE_THREAD__)
#define CHANNEL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHANNEL_TSAN 1
#endif
#endif

/* The data path is small and called in loops: keep it inline even where the compiler's
 * heuristics would emit a call (GCC 12 at -O2 did, in loops with several call sites). */
#define CHANNEL_INLINE static inline __attribute__((always_inline))
#define CHANNEL_UNLIKELY(x) __builtin_expect(!!(x), 0)

enum channel_policy {
        CHANNEL_OVERWRITE = 0,
        CHANNEL_DROP_NEW = 1,
        CHANNEL_REJECT = 2,
};

#define CHANNEL_CAPACITY_DEFAULT 1024u
#define CHANNEL_CAPACITY_MAX (1u << 24)
#define CHANNEL_PAYLOAD_MAX (1u << 20)
/* Payloads up to this size share a line with their header. */
#define CHANNEL_INLINE_PAYLOAD_MAX 48u

struct channel_hdr {
        _Atomic uint64_t stamp;
        uint64_t publish_ns;
};

struct channel_shared {
        /* Immutable after creation. */
        alignas(CHANNEL_LINE) uint32_t magic;
        uint32_t version;
        uint32_t policy;
        uint32_t payload_size;
        uint32_t nslots;
        uint32_t hdr_stride;     /* bytes from one slot header to the next */
        uint32_t payload_stride; /* bytes from one payload to the next */
        uint32_t reserved;
        uint64_t hdr_offset;     /* of the first header, from the region's start */
        uint64_t payload_offset; /* of the first payload */
        uint64_t region_size;

        /* Producer line: single writer, relaxed stores, read by channel_stats(). */
        alignas(CHANNEL_LINE) _Atomic uint64_t published; /* publish calls, drops included, as of
                                                           * the last drop, lap or close */
        _Atomic uint64_t dropped;                         /* drop_new losses */
        _Atomic uint64_t rejected;                        /* claims refused under reject */
        _Atomic uint64_t high_water; /* deepest backlog seen when a claim found the ring
                                      * looking full (sampled at most once per lap) */

        /* Consumer line: single writer; the producer reads `tail`. */
        alignas(CHANNEL_LINE) _Atomic uint64_t tail; /* drop_new/reject: position released up
                                                      * to (slots before it are free);
                                                      * overwrite: the read position */
        _Atomic uint64_t resume_seq; /* next sequence number, saved when the end is closed */

        /* Consumer's counters: single writer, read by channel_stats() only, so that storing
         * them costs no transfer of the line the producer reads. */
        alignas(CHANNEL_LINE) _Atomic uint64_t consumed; /* messages delivered; under
                                                          * drop_new/reject also the reader's
                                                          * position */
        _Atomic uint64_t overwritten;                    /* overwrite losses, seen as gaps */

        /* reject: set by a producer that a full ring refused and that wants to run again once
         * there is room (channel_tx_want_room()), cleared by the consumer that gives slots
         * back after it (channel_rx_room_wanted()). A line of its own: the consumer looks at
         * it after every pass that gave slots back, and it changes only when a producer asks,
         * so the look hits the consumer's cache (on the producer's counters line, each
         * refusal's count would move the line under it). */
        alignas(CHANNEL_LINE) _Atomic uint32_t room_wanted;
};

struct channel {
        struct channel_shared *sh;
        size_t map_size;
};

/* channel_tx.claimed while the scratch area of drop_new is claimed. */
#define CHANNEL_CLAIMED_SCRATCH UINT32_MAX

/* The producer's state changes by two stores per message (its cursor and the claim mark)
 * besides the slot's: stores wait in the store buffer behind the line transfers that the
 * consumer's reads cause, so each one counts. And every address
 * and value a send writes is one load and a few register operations away, so that a send's
 * latency stays a few nanoseconds. */
struct channel_tx {
        /* The fast path's. */
        unsigned char *hdr;       /* header of the next message's slot: the cursor */
        unsigned char *hdr_limit; /* slots from hdr up to here are free; never past the end */
        unsigned char *claim_hdr; /* the slot a single claim was for: publish commits it if it is
                                   * still the cursor's (one store per claim, none to undo it) */
        unsigned char *hdr_base;  /* slot headers */
        uint64_t lap_seq;         /* sequence number of slot 0's message in this lap, so that
                                   * slot i holds lap_seq + i (drops move it on by one each) */
        unsigned char *payload_base;
        uint32_t hdr_shift; /* log2 of the header stride */
        uint32_t payload_stride;
        uint32_t payload_inline; /* the payload follows its header in the slot, at this offset;
                                  * 0: in an array of its own */
        uint32_t claimed; /* a batch claim's count (> 1) or CHANNEL_CLAIMED_SCRATCH; 0 while a
                           * single claim or none is pending */
        uint32_t policy;
        uint64_t now_ns;   /* publish time stamped on slots, set by the owner per run */
        size_t hdr_stride; /* 1 << hdr_shift */

        /* The slow path's. */
        unsigned char *hdr_end;
        struct channel_shared *sh;
        uint32_t nslots;
        uint64_t drops;         /* drop_new: messages dropped, so position = seq - drops */
        uint64_t cached_tail;   /* drop_new/reject: slots released by the consumer, last read */
        unsigned char *scratch; /* drop_new: where a message bound to be dropped is written */
        bool refused;           /* reject: a claim was refused; the owner clears it */
};

struct channel_rx {
        /* drop_new/reject: the fast path's state. The position is the shared `consumed`
         * counter; `tail` is stored only every `release_every` messages (or when the ring is
         * found empty, or the run ends), so that the producer's reload of it costs a line
         * transfer per batch of slots, not per message. */
        _Atomic uint64_t *taken;     /* &sh->consumed: position of the next slot to read */
        unsigned char *hdr_base;     /* slot headers */
        unsigned char *payload_base; /* payloads */
        uint64_t want;               /* the smallest stamp a new message can carry: 2 * seq + 2 */
        uint64_t released;           /* position last stored in `tail` */
        uint32_t mask;               /* nslots - 1 */
        uint32_t hdr_shift;          /* log2 of the header stride */
        uint32_t payload_stride;
        uint32_t release_every;
        uint32_t policy;
        uint32_t nslots;
        uint32_t payload_size;
        struct channel_shared *sh;

        /* overwrite. */
        bool same_thread;  /* the producer runs on this thread only: read in place (see
                            * channel_rx_set_same_thread()) */
        uint64_t pos;      /* position of the next slot to read */
        uint64_t next_seq; /* sequence number expected next */
        uint64_t overwritten;
        unsigned char *copy; /* private copies of the last messages read, each a header and the
                              * payload, copy_stride bytes apart */
        uint32_t copy_stride;
        uint32_t copy_slots; /* how many: a batch read's longest run */

        /* reject, off the read path: `released` as the last channel_rx_end() left it, to tell
         * whether a pass gave slots back. */
        uint64_t released_at_end;
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

/* A run of messages read at once by channel_next_burst(): message i (i < count) has sequence
 * number seq + i, its payload at channel_burst_msg() and its publish time at
 * channel_burst_publish_ns(); lost_before is the gap before the first. */
struct channel_burst {
        const unsigned char *payload;
        const unsigned char *hdr;
        uint32_t count;
        size_t payload_stride;
        size_t hdr_stride;
        uint64_t seq;
        uint64_t lost_before;
};

/* Creates a channel of `capacity` messages (rounded up to a power of two) of `payload_size`
 * bytes in a fresh memfd mapping. Returns 0, or -EINVAL (capacity or size 0 or too large,
 * unknown policy) or the errno of memfd_create/ftruncate/mmap. */
int channel_create(struct channel *ret, uint32_t capacity, uint32_t payload_size,
                   enum channel_policy policy);
/* Unmaps the channel. Both ends must be closed first. Accepts a zeroed struct. */
void channel_destroy(struct channel *c);

/* Opens the producer end; a reopened end carries on where the last one stopped. Returns 0 or
 * -ENOMEM. */
int channel_tx_open(struct channel_tx *ret, struct channel *c);
/* Closes the producer end; a message claimed and not published is abandoned. Closing a closed
 * end (or one never opened, zeroed) does nothing. */
void channel_tx_close(struct channel_tx *tx);
/* Opens the consumer end; a reopened end carries on where the last one stopped. Returns 0 or
 * -ENOMEM. */
int channel_rx_open(struct channel_rx *ret, struct channel *c);
/* Closes the consumer end, saving where it stopped for the next end opened; closing a closed
 * (or zeroed) end does nothing. */
void channel_rx_close(struct channel_rx *rx);

/* Declares that the producer runs on the consumer's thread only, between the consumer's reads
 * (the daemon's channels between components of one worker), or no longer. Then, under
 * overwrite, a message is read in place rather than copied out: no write into the ring can
 * happen while the consumer holds a message. Other policies read in place anyway. Call it
 * while neither end is in use, e.g. before the ends start or when their threads change. */
void channel_rx_set_same_thread(struct channel_rx *rx, bool same_thread);

/* Reads the counters; any thread, no lock. Counters are read one at a time, so while both
 * ends run they are each exact but not a snapshot of one instant. The published count takes a
 * binary search of the ring's stamps (log2 of the capacity loads, lines the producer writes). */
void channel_stats(const struct channel *c, struct channel_stats *ret);
/* The messages delivered and lost, as channel_stats() reads them, without the published count:
 * three loads, for callers that sum many channels often (the daemon's status line). */
void channel_stats_flow(const struct channel *c, uint64_t *ret_consumed, uint64_t *ret_lost);

/* A tap: a second, passive reader of an overwrite channel (actorctl tap), beside its
 * consumer. It reads by the same seqlock as the consumer, into copies of its own, and stores
 * nothing in the channel: the producer, the consumer and the counters cannot tell it is there.
 * It sees what it is quick enough to see: messages replaced before it read them are skipped,
 * counted in *ret_lost. Under drop_new and reject the producer rewrites a slot, once the
 * consumer gave it back, without marking it (no odd stamp), so a third party could read a torn
 * message: no tap there. Any one thread; not the producer's or the consumer's business. */
struct channel_tap {
        struct channel_rx rx; /* its own end, never registered in the channel */
};

/* Opens a tap at the next message to be published. Returns 0, -ENOTSUP (not overwrite) or
 * -ENOMEM. */
int channel_tap_open(struct channel_tap *ret, struct channel *c);
void channel_tap_close(struct channel_tap *t);
/* The next message it can still read, copied: its payload (valid until the next call), or NULL
 * when there is none yet. *ret_lost: the messages before it that the tap did not see. */
const void *channel_tap_next(struct channel_tap *t, uint64_t *ret_seq, uint64_t *ret_lost,
                             uint64_t *ret_publish_ns);

/* Parses "overwrite", "drop_new", "reject"; returns the policy or -EINVAL. */
int channel_policy_from_string(const char *s);
const char *channel_policy_to_string(enum channel_policy p);

/* ---- producer ---- */

/* The slow paths, out of line: a full ring, the overwrite lap's high-water sample, drops,
 * batches, a claim over a batch or scratch claim. */
void *channel_claim_slow_(struct channel_tx *tx, uint32_t n, uint32_t *ret_count);
void channel_publish_slow_(struct channel_tx *tx);

/* Slot index, sequence number and payload of the slot whose header is `h`. */
CHANNEL_INLINE size_t channel_tx_idx_(const struct channel_tx *tx, const unsigned char *h)
{
        return (size_t)(h - tx->hdr_base) >> tx->hdr_shift;
}

CHANNEL_INLINE uint64_t channel_tx_seq_at_(const struct channel_tx *tx, const unsigned char *h)
{
        return tx->lap_seq + channel_tx_idx_(tx, h);
}

/* The sequence number of the next message (the count of messages published so far, drops
 * included); producer thread. From the cursor: it reads no shared line. */
CHANNEL_INLINE uint64_t channel_tx_seq(const struct channel_tx *tx)
{
        return channel_tx_seq_at_(tx, tx->hdr);
}

CHANNEL_INLINE void *channel_tx_payload_(const struct channel_tx *tx, unsigned char *h)
{
        /* The common layout with no multiply: the payload's address is one add away from the
         * cursor's, as a send's latency counts every step. */
        if (tx->payload_inline)
                return (void *)(h + tx->payload_inline);
        return tx->payload_base + channel_tx_idx_(tx, h) * tx->payload_stride;
}

/* Under overwrite, marks `k` slots from `h` on as being written: the seqlock's odd stamps. */
CHANNEL_INLINE void channel_mark_writing_(struct channel_tx *tx, unsigned char *h, uint32_t k)
{
        uint64_t seq = channel_tx_seq_at_(tx, h);
        for (uint32_t i = 0; i < k; i++)
                /* Seqlock write side: relaxed, ordered by the fence below. */
                atomic_store_explicit(
                    &((struct channel_hdr *)(void *)(h + ((size_t)i << tx->hdr_shift)))->stamp,
                    2 * (seq + i) + 1, memory_order_relaxed);
        /* The odd stamp must be visible before any payload byte: the release fence orders it
         * before the payload stores that follow, so a consumer whose acquire fence follows a
         * read of new payload bytes also reads this stamp (or a later one) on its second
         * stamp load (channel_next_overwrite_()). */
        atomic_thread_fence(memory_order_release);
}

/* Claims up to `n` (>= 1) consecutive slots for the next messages and returns the first
 * payload; slot i's payload is at i * tx->payload_stride bytes from it. Sets *ret_count to
 * the number claimed, which can be fewer than n (the ring's end, or a full ring under
 * drop_new/reject). Returns NULL and 0 under reject when the ring is full. Under drop_new
 * with a full ring it returns one scratch area; publishing it counts one drop. Claiming again
 * before channel_publish() returns the same first slot. Producer thread; never blocks. */
CHANNEL_INLINE void *channel_claim_n(struct channel_tx *tx, uint32_t n, uint32_t *ret_count)
{
        unsigned char *h = tx->hdr;
        if (CHANNEL_UNLIKELY(h == tx->hdr_limit || n == 0 || tx->claimed))
                return channel_claim_slow_(tx, n, ret_count);
        size_t avail = (size_t)(tx->hdr_limit - h) >> tx->hdr_shift;
        uint32_t k = avail < n ? (uint32_t)avail : n;
        if (tx->policy == CHANNEL_OVERWRITE)
                channel_mark_writing_(tx, h, k);
        /* Under drop_new/reject the consumer released these slots and reads none of them
         * before its even stamp: no odd stamp needed. */
        tx->claimed = k > 1 ? k : 0;
        tx->claim_hdr = h;
        *ret_count = k;
        return channel_tx_payload_(tx, h);
}

/* Returns where to write the next message, or NULL under reject when the ring is full. Under
 * drop_new with a full ring it returns a scratch area; publishing it counts one drop. Claiming
 * again before channel_publish() returns the same slot. Producer thread; never blocks. */
CHANNEL_INLINE void *channel_claim(struct channel_tx *tx)
{
        unsigned char *h = tx->hdr;
        if (CHANNEL_UNLIKELY(h == tx->hdr_limit || tx->claimed)) {
                uint32_t k;
                return channel_claim_slow_(tx, 1, &k);
        }
        if (tx->policy == CHANNEL_OVERWRITE)
                channel_mark_writing_(tx, h, 1);
        tx->claim_hdr = h;
        return channel_tx_payload_(tx, h);
}

/* Commits the claimed message(s), in order, each stamped with tx->now_ns. A publish without a
 * claim does nothing. Producer thread; never blocks. */
CHANNEL_INLINE void channel_publish(struct channel_tx *tx)
{
        if (CHANNEL_UNLIKELY(tx->claimed)) {
                channel_publish_slow_(tx);
                return;
        }
        unsigned char *h = tx->hdr;
        /* Claimed, and not published yet. (Checked on our own variables: a load from the
         * slot's line, which the consumer polls, costs a pipeline flush when its read
         * arrives.) */
        if (CHANNEL_UNLIKELY(tx->claim_hdr != h))
                return;
        uint64_t seq = channel_tx_seq_at_(tx, h);
        struct channel_hdr *s = (struct channel_hdr *)(void *)h;
        s->publish_ns = tx->now_ns;
        /* Release, pairs with the consumer's acquire load of the stamp in channel_next():
         * payload and publish_ns are visible before the stamp. */
        atomic_store_explicit(&s->stamp, 2 * seq + 2, memory_order_release);
        /* No count is stored: channel_stats() finds the newest stamp in the ring. */
        tx->hdr = h + tx->hdr_stride;
}

/* ---- consumer ---- */

CHANNEL_INLINE const struct channel_hdr *channel_rx_hdr_(const struct channel_rx *rx, uint64_t pos)
{
        return (const struct channel_hdr *)(const void *)(rx->hdr_base + ((size_t)(pos & rx->mask)
                                                                          << rx->hdr_shift));
}

CHANNEL_INLINE const unsigned char *channel_rx_payload_(const struct channel_rx *rx, uint64_t pos)
{
        return rx->payload_base + (size_t)(pos & rx->mask) * rx->payload_stride;
}

/* Overwrite: message `seq` has been read, `gap` lost just before it: sets the caller's
 * outputs and moves the cursor past it. All a tap does (it stores nothing in the channel). */
CHANNEL_INLINE void channel_moved_(struct channel_rx *rx, uint64_t seq, uint64_t gap,
                                   uint64_t publish_ns, uint64_t *ret_seq, uint64_t *ret_lost,
                                   uint64_t *ret_publish_ns)
{
        *ret_seq = seq;
        *ret_lost = gap;
        *ret_publish_ns = publish_ns;
        rx->next_seq = rx->pos = seq + 1;
}

/* Overwrite: the consumer read `n` messages, up to position `end`, with `gap` lost before
 * them: the channel's counters. */
CHANNEL_INLINE void channel_took_count_(struct channel_rx *rx, uint64_t n, uint64_t gap,
                                        uint64_t end)
{
        /* Relaxed: counters for channel_stats(), and the position for the producer's
         * high-water sample, order nothing. */
        atomic_store_explicit(&rx->sh->consumed,
                              atomic_load_explicit(&rx->sh->consumed, memory_order_relaxed) + n,
                              memory_order_relaxed);
        if (gap) {
                rx->overwritten += gap;
                atomic_store_explicit(&rx->sh->overwritten, rx->overwritten, memory_order_relaxed);
        }
        atomic_store_explicit(&rx->sh->tail, end, memory_order_relaxed);
}

/* Overwrite: the consumer read message `seq`, `gap` lost just before it. */
CHANNEL_INLINE void channel_took_(struct channel_rx *rx, uint64_t seq, uint64_t gap,
                                  uint64_t publish_ns, uint64_t *ret_seq, uint64_t *ret_lost,
                                  uint64_t *ret_publish_ns)
{
        channel_moved_(rx, seq, gap, publish_ns, ret_seq, ret_lost, ret_publish_ns);
        channel_took_count_(rx, 1, gap, seq + 1);
}

/* drop_new/reject: gives the producer back every slot before position `pos`, unless that was
 * done already. */
CHANNEL_INLINE void channel_rx_release_(struct channel_rx *rx, uint64_t pos)
{
        if (rx->released == pos)
                return;
        rx->released = pos;
        /* Release, pairs with the producer's acquire load of `tail` in channel_claim_slow_():
         * our reads of the slots happen before the producer reuses them. */
        atomic_store_explicit(&rx->sh->tail, pos, memory_order_release);
}

/* drop_new/reject: takes the `k` messages from position `pos` on, the last with stamp
 * `last_stamp`, to be read in place; the ones before `pos` are done with. */
CHANNEL_INLINE void channel_rx_take_(struct channel_rx *rx, uint64_t pos, uint64_t last_stamp,
                                     uint32_t k)
{
        rx->want = last_stamp + 2;
        if (CHANNEL_UNLIKELY(pos - rx->released >= rx->release_every))
                channel_rx_release_(rx, pos);
        /* Relaxed: the position, and a counter for channel_stats(); orders nothing. */
        atomic_store_explicit(rx->taken, pos + k, memory_order_relaxed);
}

/* Copy-and-validate of the seqlock read side, out of line. */
const void *channel_next_overwrite_(struct channel_rx *rx, uint64_t *ret_seq, uint64_t *ret_lost,
                                    uint64_t *ret_publish_ns);

/* Whether a message is readable now; consumer thread only. Reads one stamp. */
/* Overwrite: whether `stamp`, read at the consumer's position `pos`, means a message is
 * readable there (this one, or a later one when the producer lapped the consumer). */
CHANNEL_INLINE bool channel_stamp_readable_(const struct channel_rx *rx, uint64_t stamp,
                                            uint64_t pos)
{
        if (stamp == 0)
                return false;
        /* Odd: message (stamp-1)/2 is being written; it is the one we wait for, or a later
         * one, which means older messages wait behind our cursor. */
        if (stamp & 1)
                return rx->nslots > 1 && (stamp - 1) / 2 > pos;
        return (stamp - 2) / 2 >= pos;
}

CHANNEL_INLINE bool channel_readable(const struct channel_rx *rx)
{
        if (rx->policy != CHANNEL_OVERWRITE) {
                const struct channel_hdr *h =
                    channel_rx_hdr_(rx, atomic_load_explicit(rx->taken, memory_order_relaxed));
                /* Acquire: a true answer is followed by reading the slot. */
                return atomic_load_explicit(&h->stamp, memory_order_acquire) >= rx->want;
        }
        uint64_t pos = rx->pos;
        /* Acquire: a true answer is followed by reading the slot. */
        return channel_stamp_readable_(
            rx, atomic_load_explicit(&channel_rx_hdr_(rx, pos)->stamp, memory_order_acquire), pos);
}

/* For a thread that polls many inputs: the stamp word that the next message changes, and the
 * value from which on it means that the producer has written (or, under overwrite, is
 * writing) past what the consumer read. Valid until the consumer reads again: a reader moves
 * on to another word. A true test still needs channel_readable(). */
CHANNEL_INLINE const _Atomic uint64_t *channel_rx_watch(const struct channel_rx *rx,
                                                        uint64_t *ret_from)
{
        uint64_t pos;
        if (rx->policy != CHANNEL_OVERWRITE) {
                pos = atomic_load_explicit(rx->taken, memory_order_relaxed);
                *ret_from = rx->want;
        } else {
                pos = rx->pos;
                *ret_from = 2 * pos + 1;
        }
        return &channel_rx_hdr_(rx, pos)->stamp;
}

/* Returns the oldest unread message, or NULL when there is none, and its sequence number, the
 * count lost just before it and its publish time. The pointer stays valid until the next call
 * or channel_rx_end(). Consumer thread; never blocks. */
CHANNEL_INLINE const void *channel_next(struct channel_rx *rx, uint64_t *ret_seq,
                                        uint64_t *ret_lost, uint64_t *ret_publish_ns)
{
        if (rx->policy == CHANNEL_OVERWRITE) {
                uint64_t pos = rx->pos;
                const struct channel_hdr *h = channel_rx_hdr_(rx, pos);
                /* Acquire, pairs with the release store of the even stamp in channel_publish():
                 * the message is visible to the reads below. */
                uint64_t stamp = atomic_load_explicit(&h->stamp, memory_order_acquire);
                if (stamp == 2 * pos + 2 && pos == rx->next_seq) {
                        /* The next message in order, complete. */
                        if (rx->same_thread) {
                                /* The producer does not run while we read: in place. */
                                channel_took_(rx, pos, 0, h->publish_ns, ret_seq, ret_lost,
                                              ret_publish_ns);
                                return channel_rx_payload_(rx, pos);
                        }
#ifndef CHANNEL_TSAN
                        if (rx->payload_size <= 16) {
                                /* Small: the seqlock copy inline (two words and the publish
                                 * time), as channel_next_overwrite_() takes it. */
                                const uint64_t *src = (const uint64_t *)(const void *)(h + 1);
                                uint64_t *dst = (uint64_t *)(void *)(rx->copy + sizeof(*h));
                                uint64_t ns = h->publish_ns;
                                dst[0] = src[0];
                                dst[1] = src[1];
                                /* Acquire fence, then the stamp again: as in
                                 * channel_next_overwrite_(). */
                                atomic_thread_fence(memory_order_acquire);
                                if (atomic_load_explicit(&h->stamp, memory_order_relaxed) ==
                                    stamp) {
                                        channel_took_(rx, pos, 0, ns, ret_seq, ret_lost,
                                                      ret_publish_ns);
                                        return dst;
                                }
                        }
#endif
                } else if (!channel_stamp_readable_(rx, stamp, pos)) {
                        /* Nothing new, answered here: a reader's last call of a run is that
                         * one. (Not readable implies the copy path returns NULL too.) */
                        return NULL;
                }
                /* Gaps, a lapped reader, larger messages, a torn copy: out of line. */
                return channel_next_overwrite_(rx, ret_seq, ret_lost, ret_publish_ns);
        }
        uint64_t pos = atomic_load_explicit(rx->taken, memory_order_relaxed);
        const struct channel_hdr *h = channel_rx_hdr_(rx, pos);
        /* Acquire, pairs with the release store in channel_publish(). */
        uint64_t stamp = atomic_load_explicit(&h->stamp, memory_order_acquire);
        /* A stamp from an earlier lap (or 0), or the odd stamp of a message being written, is
         * below `want`. */
        if (stamp < rx->want) {
                channel_rx_release_(rx, pos);
                return NULL;
        }
        uint64_t seq = stamp / 2 - 1;
        *ret_seq = seq;
        *ret_lost = seq - (rx->want / 2 - 1); /* drop_new gaps; 0 under reject */
        *ret_publish_ns = h->publish_ns;
        channel_rx_take_(rx, pos, stamp, 1);
        return channel_rx_payload_(rx, pos);
}

/* Overwrite: reads up to `max` (>= 1) consecutive messages into the private copies, each by
 * the seqlock as in channel_next() (channel.c). */
uint32_t channel_next_burst_overwrite_(struct channel_rx *rx, uint32_t max,
                                       struct channel_burst *ret);

/* Reads up to `max` (>= 1) consecutive messages at once: fills *ret and returns their count,
 * or 0 when none is readable (*ret then holds a run of none). Under drop_new/reject they are read
 * in place, up to the ring's end and the first gap in the sequence; under overwrite they are
 * copied out, up to the first gap, a message being written or rx->copy_slots (32 messages, fewer
 * of large ones: 16 KiB of copies). They stay valid until the next call or channel_rx_end().
 * Consumer thread; never blocks. */
CHANNEL_INLINE uint32_t channel_next_burst(struct channel_rx *rx, uint32_t max,
                                           struct channel_burst *ret)
{
        if (rx->policy == CHANNEL_OVERWRITE)
                return channel_next_burst_overwrite_(rx, max, ret);
        uint64_t pos = atomic_load_explicit(rx->taken, memory_order_relaxed);
        const unsigned char *h = (const unsigned char *)channel_rx_hdr_(rx, pos);
        uint64_t first = atomic_load_explicit(&((const struct channel_hdr *)(const void *)h)->stamp,
                                              memory_order_acquire);
        if (first < rx->want) {
                channel_rx_release_(rx, pos);
                *ret = (struct channel_burst){0};
                return 0;
        }
        size_t to_end = rx->nslots - (size_t)(pos & rx->mask);
        uint32_t k = max == 0 ? 1 : max;
        if (k > to_end)
                k = (uint32_t)to_end;
        size_t hdr_stride = (size_t)1 << rx->hdr_shift;
        /* Stamps increase by at least 2 per slot along the run and are published in order: the
         * last slot holding exactly first + 2 (k - 1) means the whole run is complete and has
         * no gap. Acquire, as in channel_next(). */
        uint32_t n = 1;
        if (k > 1) {
                const struct channel_hdr *last = (const void *)(h + (size_t)(k - 1) * hdr_stride);
                if (atomic_load_explicit(&last->stamp, memory_order_acquire) ==
                    first + 2 * (uint64_t)(k - 1)) {
                        n = k;
                } else {
                        for (; n < k; n++) {
                                const struct channel_hdr *s =
                                    (const void *)(h + (size_t)n * hdr_stride);
                                if (atomic_load_explicit(&s->stamp, memory_order_acquire) !=
                                    first + 2 * (uint64_t)n)
                                        break;
                        }
                }
        }
        const unsigned char *payload = channel_rx_payload_(rx, pos);
        /* The run is complete: the producer is done with its lines, so asking for them all now
         * takes nothing from it, and their transfers overlap instead of waiting, a few at a
         * time, for the caller's work on each message to reach them (~10 % more 64-byte
         * messages per second through batches, the consumer checking each in place). */
        size_t step = rx->payload_stride < 64 ? 64 : rx->payload_stride; /* a line at a time */
        for (size_t off = step, end = (size_t)n * rx->payload_stride; off < end; off += step)
                __builtin_prefetch(payload + off);
        *ret = (struct channel_burst){.payload = payload,
                                      .hdr = h,
                                      .count = n,
                                      .payload_stride = rx->payload_stride,
                                      .hdr_stride = hdr_stride,
                                      .seq = first / 2 - 1,
                                      .lost_before = first / 2 - 1 - (rx->want / 2 - 1)};
        channel_rx_take_(rx, pos, first + 2 * (uint64_t)(n - 1), n);
        return n;
}

CHANNEL_INLINE const void *channel_burst_msg(const struct channel_burst *b, uint32_t i)
{
        return b->payload + (size_t)i * b->payload_stride;
}

CHANNEL_INLINE uint64_t channel_burst_publish_ns(const struct channel_burst *b, uint32_t i)
{
        return ((const struct channel_hdr *)(const void *)(b->hdr + (size_t)i * b->hdr_stride))
            ->publish_ns;
}

/* Ends a read pass: gives back every slot read in place (under drop_new/reject a reader
 * otherwise gives them back in batches, see the top of this file). The worker calls it when
 * the consumer's run returns. Returns whether, under reject, the pass gave slots back (then
 * a refused producer may be waiting for them: channel_rx_room_wanted()). */
CHANNEL_INLINE bool channel_rx_end(struct channel_rx *rx)
{
        if (rx->policy == CHANNEL_OVERWRITE)
                return false;
        uint64_t pos = atomic_load_explicit(rx->taken, memory_order_relaxed);
        channel_rx_release_(rx, pos);
        if (rx->policy != CHANNEL_REJECT)
                return false;
        bool gave = rx->released != rx->released_at_end;
        rx->released_at_end = rx->released;
        return gave;
}

/* Waking a refused producer (reject). A producer that a full ring refused and that runs only
 * when told (a daemon component on_message or on_event) asks to be told of room:
 * channel_tx_want_room(). The consumer, after a pass that gave slots back
 * (channel_rx_end() returned true) and a sequentially consistent fence, calls
 * channel_rx_room_wanted(): true at most once per request, and then the caller wakes the
 * producer. The two fences make it a Dekker handshake: the producer stores the request and
 * then reloads `tail`, the consumer stores `tail` and then loads the request, so at least one
 * of them sees the other's store: the producer finds the room itself, or the consumer finds
 * the request. No refused producer waits for a give-back that already happened. */
bool channel_tx_want_room(struct channel_tx *tx); /* reject channels only */

CHANNEL_INLINE bool channel_rx_room_wanted(struct channel_rx *rx)
{
        /* Relaxed: the caller's fence orders this load after the stores of `tail`; the plain
         * look first keeps the line shared while no one asks. */
        if (!atomic_load_explicit(&rx->sh->room_wanted, memory_order_relaxed))
                return false;
        return atomic_exchange_explicit(&rx->sh->room_wanted, 0, memory_order_relaxed) != 0;
}

#endif /* ACTORD_CHANNEL_H */
