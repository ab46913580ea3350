/* The lossy typed channel: creation, the ends, statistics and the seqlock read side. The
 * protocol is described in channel.h. */
#define _GNU_SOURCE
#include "channel.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHANNEL_MAGIC 0x61636863u /* "achc" */
/* An overwrite reader's copies for batch reads: at most this many messages, this many bytes. */
#define CHANNEL_COPY_RUN 32u
#define CHANNEL_COPY_BYTES 16384u
#define CHANNEL_VERSION 4u

static uint32_t round_up_pow2(uint32_t v)
{
        uint32_t p = 1;
        while (p < v)
                p <<= 1;
        return p;
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
        return (v + to - 1) / to * to;
}

int channel_create(struct channel *ret, uint32_t capacity, uint32_t payload_size,
                   enum channel_policy policy)
{
        if (capacity == 0 || capacity > CHANNEL_CAPACITY_MAX || payload_size == 0 ||
            payload_size > CHANNEL_PAYLOAD_MAX || (unsigned)policy > CHANNEL_REJECT)
                return -EINVAL;

        uint32_t nslots = round_up_pow2(capacity);
        uint32_t hdr_stride, payload_stride;
        uint64_t hdr_offset = sizeof(struct channel_shared), payload_offset, size;
        if (payload_size <= CHANNEL_INLINE_PAYLOAD_MAX) {
                /* Header and payload in one slot of 32 or 64 bytes: one line per message,
                 * and a slot never straddles two. */
                hdr_stride = payload_stride =
                    round_up_pow2((uint32_t)sizeof(struct channel_hdr) + payload_size);
                payload_offset = hdr_offset + sizeof(struct channel_hdr);
                size = hdr_offset + (uint64_t)nslots * hdr_stride;
        } else {
                /* The headers dense on their own lines, the payloads on 64-byte multiples: a
                 * 64-byte message is one line, not two. */
                hdr_stride = sizeof(struct channel_hdr);
                payload_stride = (uint32_t)round_up(payload_size, 64);
                payload_offset = hdr_offset + round_up((uint64_t)nslots * hdr_stride, CHANNEL_LINE);
                size = payload_offset + (uint64_t)nslots * payload_stride;
        }
        long page = sysconf(_SC_PAGESIZE);
        size = round_up(size, (uint64_t)page);

        /* A memfd, so that another process can later map the same ring (tap, isolated
         * components); the mapping keeps the memory alive once the fd is closed. */
        int fd = memfd_create("actord-channel", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t)size) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        int saved = errno;
        close(fd);
        if (p == MAP_FAILED)
                return -saved;

        /* The memfd is zero-filled: every stamp starts at 0 ("never written"). */
        struct channel_shared *sh = p;
        sh->magic = CHANNEL_MAGIC;
        sh->version = CHANNEL_VERSION;
        sh->policy = (uint32_t)policy;
        sh->payload_size = payload_size;
        sh->nslots = nslots;
        sh->hdr_stride = hdr_stride;
        sh->payload_stride = payload_stride;
        sh->hdr_offset = hdr_offset;
        sh->payload_offset = payload_offset;
        sh->region_size = size;
        *ret = (struct channel){.sh = sh, .map_size = (size_t)size};
        return 0;
}

void channel_destroy(struct channel *c)
{
        if (c->sh)
                munmap(c->sh, c->map_size);
        c->sh = NULL;
}

int channel_tx_open(struct channel_tx *ret, struct channel *c)
{
        struct channel_shared *sh = c->sh;
        unsigned char *scratch = NULL;
        if (sh->policy == CHANNEL_DROP_NEW) {
                scratch = aligned_alloc(64, round_up(sh->payload_stride, 64));
                if (!scratch)
                        return -ENOMEM;
        }
        unsigned char *base = (unsigned char *)sh;
        /* A reopened end carries on where the last one stopped: under drop_new the ring
         * position lags the sequence by the drops. Relaxed: the previous producer was stopped
         * by its own thread, which happens before this open. */
        uint64_t seq = atomic_load_explicit(&sh->published, memory_order_relaxed);
        uint64_t drops = atomic_load_explicit(&sh->dropped, memory_order_relaxed);
        uint64_t idx = (seq - drops) & (sh->nslots - 1);
        unsigned char *hdr = base + sh->hdr_offset + idx * sh->hdr_stride;
        /* Acquire, as in channel_claim_slow_(). */
        uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_acquire);
        *ret = (struct channel_tx){
            .hdr = hdr,
            /* Nothing known free: the first claim takes the slow path, which works it out. */
            .hdr_limit = hdr,
            .hdr_base = base + sh->hdr_offset,
            .lap_seq = seq - idx,
            .payload_base = base + sh->payload_offset,
            .hdr_shift = (uint32_t)__builtin_ctz(sh->hdr_stride),
            .payload_stride = sh->payload_stride,
            .payload_inline = sh->payload_offset - sh->hdr_offset < sh->hdr_stride
                                  ? (uint32_t)(sh->payload_offset - sh->hdr_offset)
                                  : 0,
            .policy = sh->policy,
            .hdr_stride = sh->hdr_stride,
            .hdr_end = base + sh->hdr_offset + (size_t)sh->nslots * sh->hdr_stride,
            .sh = sh,
            .nslots = sh->nslots,
            .drops = drops,
            .cached_tail = sh->policy == CHANNEL_OVERWRITE ? 0 : tail,
            .scratch = scratch,
        };
        return 0;
}

/* The producer's count, for channel_stats() between laps and for the next end opened. Relaxed:
 * a counter; the next producer end is opened by a thread that happens after this one. */
static void tx_store_published(struct channel_tx *tx)
{
        atomic_store_explicit(&tx->sh->published, channel_tx_seq(tx), memory_order_relaxed);
}

void channel_tx_close(struct channel_tx *tx)
{
        if (!tx->sh)
                return;
        tx_store_published(tx);
        free(tx->scratch);
        tx->scratch = NULL;
        tx->claimed = 0;
        tx->sh = NULL;
}

int channel_rx_open(struct channel_rx *ret, struct channel *c)
{
        struct channel_shared *sh = c->sh;
        unsigned char *copy = NULL;
        uint32_t copy_stride = 0, copy_slots = 0;
        if (sh->policy == CHANNEL_OVERWRITE) {
                /* Room for a batch read's run: 32 messages, or as many as fit in 16 KiB (at least
                 * one), never more than the ring holds. */
                copy_stride = (uint32_t)round_up(sizeof(struct channel_hdr) + sh->payload_size, 16);
                copy_slots = CHANNEL_COPY_BYTES / copy_stride;
                if (copy_slots > CHANNEL_COPY_RUN)
                        copy_slots = CHANNEL_COPY_RUN;
                if (copy_slots > sh->nslots)
                        copy_slots = sh->nslots;
                if (copy_slots == 0)
                        copy_slots = 1;
                copy = aligned_alloc(64, round_up((uint64_t)copy_slots * copy_stride, 64));
                if (!copy)
                        return -ENOMEM;
                memset(copy, 0, (size_t)copy_slots * copy_stride);
        }
        unsigned char *base = (unsigned char *)sh;
        /* A reopened end carries on where the last one stopped (relaxed: the previous
         * consumer was closed by a thread that happens before this open); a closed end
         * released everything it read. */
        uint64_t tail = atomic_load_explicit(&sh->tail, memory_order_relaxed);
        uint64_t resume = atomic_load_explicit(&sh->resume_seq, memory_order_relaxed);
        /* Slots held before they are given back: at most an eighth of the ring, at most a
         * few lines' worth. */
        uint32_t every = sh->nslots / 8;
        if (every > 32)
                every = 32;
        *ret = (struct channel_rx){
            .taken = &sh->consumed,
            .hdr_base = base + sh->hdr_offset,
            .payload_base = base + sh->payload_offset,
            /* Under drop_new the sequence runs ahead of the position by the drops: the
             * closing end saved where it was. */
            .want = 2 * resume + 2,
            .released = tail,
            .mask = sh->nslots - 1,
            .hdr_shift = (uint32_t)__builtin_ctz(sh->hdr_stride),
            .payload_stride = sh->payload_stride,
            .release_every = every ? every : 1,
            .policy = sh->policy,
            .nslots = sh->nslots,
            .payload_size = sh->payload_size,
            .sh = sh,
            .pos = tail,
            .next_seq = tail,
            .overwritten = atomic_load_explicit(&sh->overwritten, memory_order_relaxed),
            .copy = copy,
            .copy_stride = copy_stride,
            .copy_slots = copy_slots,
            .released_at_end = tail,
        };
        return 0;
}

void channel_rx_set_same_thread(struct channel_rx *rx, bool same_thread)
{
        rx->same_thread = same_thread;
}

void channel_rx_close(struct channel_rx *rx)
{
        if (!rx->sh)
                return;
        channel_rx_end(rx);
        uint64_t next_seq = rx->policy == CHANNEL_OVERWRITE ? rx->next_seq : rx->want / 2 - 1;
        atomic_store_explicit(&rx->sh->resume_seq, next_seq, memory_order_relaxed);
        free(rx->copy);
        rx->copy = NULL;
        rx->sh = NULL;
}

/* The count of messages published that the stamps in the ring show. Slot i of the producer's
 * current lap holds message lap_seq + i complete (stamp 2 seq + 2, so that stamp / 2 messages
 * were published up to it) for the slots before its cursor; the slots from the cursor on hold
 * messages of the lap before (smaller counts), 0 (never written) or, under overwrite, odd
 * stamps (the message being written, or claimed and then narrowed by a later claim). So the
 * slots with an even stamp whose count is at least slot 0's are a prefix, and its end is the
 * newest message: a binary search, log2(nslots) stamp loads. Slot 0 odd is the cursor itself:
 * its count is exact.
 *
 * While the producer runs, a slot of the prefix stays in it until the producer laps the ring
 * to it (a stamp only grows, and turns odd only then), so unless the producer wrote the whole
 * ring meanwhile the search ends at or after the prefix's end when it started: it returns a
 * count between the producer's counts at its start and its end. Relaxed: counts, ordering
 * nothing. */
static uint64_t ring_published(const struct channel_shared *sh)
{
        const unsigned char *base = (const unsigned char *)sh + sh->hdr_offset;
        const struct channel_hdr *h0 = (const void *)base;
        uint64_t s0 = atomic_load_explicit(&h0->stamp, memory_order_relaxed);
        uint64_t first = s0 / 2, newest = first;
        if (s0 & 1)
                return first;
        uint32_t lo = 0, hi = sh->nslots; /* slot lo is in the prefix, slot hi is not */
        while (hi - lo > 1) {
                uint32_t mid = lo + (hi - lo) / 2;
                const struct channel_hdr *h = (const void *)(base + (size_t)mid * sh->hdr_stride);
                uint64_t s = atomic_load_explicit(&h->stamp, memory_order_relaxed);
                if (!(s & 1) && s / 2 >= first) {
                        lo = mid;
                        newest = s / 2;
                } else {
                        hi = mid;
                }
        }
        return newest;
}

void channel_stats_flow(const struct channel *c, uint64_t *ret_consumed, uint64_t *ret_lost)
{
        const struct channel_shared *sh = c->sh;
        /* Relaxed: counters, as in channel_stats(). */
        *ret_consumed = atomic_load_explicit(&sh->consumed, memory_order_relaxed);
        *ret_lost = atomic_load_explicit(&sh->dropped, memory_order_relaxed) +
                    atomic_load_explicit(&sh->overwritten, memory_order_relaxed);
}

void channel_stats(const struct channel *c, struct channel_stats *ret)
{
        struct channel_shared *sh = c->sh;
        /* The producer stores its count only where no stamp shows it (a drop, the end of a lap,
         * closing its end): the larger of the two is the count. The stored one is read last:
         * if the producer lapped the whole ring during the search (the one case where the
         * search can return less than the count at its start), it stored a larger count at
         * the lap's end. */
        uint64_t in_ring = ring_published(sh);
        uint64_t published = atomic_load_explicit(&sh->published, memory_order_relaxed);
        /* Relaxed throughout: each counter has one writer and is read as a number only. */
        uint64_t dropped = atomic_load_explicit(&sh->dropped, memory_order_relaxed);
        uint64_t overwritten = atomic_load_explicit(&sh->overwritten, memory_order_relaxed);
        uint64_t consumed = atomic_load_explicit(&sh->consumed, memory_order_relaxed);
        *ret = (struct channel_stats){
            .published = in_ring > published ? in_ring : published,
            .consumed = consumed,
            .lost = dropped + overwritten,
            .dropped = dropped,
            .overwritten = overwritten,
            .rejected = atomic_load_explicit(&sh->rejected, memory_order_relaxed),
            .high_water = atomic_load_explicit(&sh->high_water, memory_order_relaxed),
            .capacity = sh->nslots,
        };
}

/* Single writer: a relaxed load and store, no read-modify-write needed. */
static void counter_set_max(_Atomic uint64_t *c, uint64_t v)
{
        if (v > atomic_load_explicit(c, memory_order_relaxed))
                atomic_store_explicit(c, v, memory_order_relaxed);
}

void *channel_claim_slow_(struct channel_tx *tx, uint32_t n, uint32_t *ret_count)
{
        if (tx->claimed == CHANNEL_CLAIMED_SCRATCH) {
                *ret_count = 1;
                return tx->scratch;
        }
        /* A claim over a pending batch claim starts again from the same first slot. */
        tx->claimed = 0;
        if (n == 0)
                n = 1;
        if (tx->hdr == tx->hdr_limit) {
                struct channel_shared *sh = tx->sh;
                if (tx->hdr == tx->hdr_end) {
                        tx->hdr = tx->hdr_limit = tx->hdr_base;
                        tx->lap_seq += tx->nslots;
                        /* A claim from the last lap must not match this lap's slot. */
                        tx->claim_hdr = NULL;
                        /* Once per lap: a lapped overwrite reader's bound. */
                        tx_store_published(tx);
                }
                size_t idx = channel_tx_idx_(tx, tx->hdr);
                uint64_t head = channel_tx_seq_at_(tx, tx->hdr) - tx->drops;
                /* The fast path never wraps: a run ends at the ring's end. */
                uint64_t room = tx->nslots - idx;
                if (tx->policy == CHANNEL_OVERWRITE) {
                        if (idx == 0) {
                                /* One sample per lap of the consumer's position, for the
                                 * high-water mark only: relaxed, nothing is ordered by it. */
                                uint64_t depth =
                                    head - atomic_load_explicit(&sh->tail, memory_order_relaxed);
                                counter_set_max(&sh->high_water,
                                                depth > tx->nslots ? tx->nslots : depth);
                        }
                } else {
                        uint64_t free = tx->cached_tail + tx->nslots - head;
                        if (free == 0) {
                                /* Acquire, pairs with the consumer's release stores of `tail`
                                 * (channel_rx_release_()): its reads of the slots it released
                                 * happen before our writes into them. */
                                tx->cached_tail =
                                    atomic_load_explicit(&sh->tail, memory_order_acquire);
                                free = tx->cached_tail + tx->nslots - head;
                                counter_set_max(&sh->high_water, head - tx->cached_tail);
                                if (free == 0) {
                                        if (tx->policy == CHANNEL_REJECT) {
                                                atomic_store_explicit(
                                                    &sh->rejected,
                                                    atomic_load_explicit(&sh->rejected,
                                                                         memory_order_relaxed) +
                                                        1,
                                                    memory_order_relaxed);
                                                tx->refused = true;
                                                *ret_count = 0;
                                                return NULL;
                                        }
                                        tx->claimed = CHANNEL_CLAIMED_SCRATCH;
                                        *ret_count = 1;
                                        return tx->scratch;
                                }
                        }
                        if (free < room)
                                room = free;
                }
                tx->hdr_limit = tx->hdr + (room << tx->hdr_shift);
        }
        return channel_claim_n(tx, n, ret_count);
}

void channel_publish_slow_(struct channel_tx *tx)
{
        uint32_t k = tx->claimed;
        if (k == 0)
                return;
        tx->claimed = 0;
        uint64_t seq = channel_tx_seq_at_(tx, tx->hdr);
        if (k == CHANNEL_CLAIMED_SCRATCH) {
                /* The sequence number moves on, the position does not. */
                tx->drops++;
                tx->lap_seq++;
                /* Relaxed: counters for channel_stats(), they order nothing. */
                atomic_store_explicit(&tx->sh->dropped, tx->drops, memory_order_relaxed);
                /* A drop leaves no stamp for channel_stats() to find. */
                atomic_store_explicit(&tx->sh->published, seq + 1, memory_order_relaxed);
                return;
        }
        uint64_t now = tx->now_ns;
        unsigned char *h = tx->hdr;
        for (uint32_t i = 0; i < k; i++, h += tx->hdr_stride) {
                struct channel_hdr *s = (struct channel_hdr *)(void *)h;
                s->publish_ns = now;
                /* Release, as in channel_publish(): slot by slot, in order, so that the
                 * consumer can take any prefix of the batch. */
                atomic_store_explicit(&s->stamp, 2 * (seq + i) + 2, memory_order_release);
        }
        tx->hdr = h;
}

bool channel_tx_want_room(struct channel_tx *tx)
{
        struct channel_shared *sh = tx->sh;
        atomic_store_explicit(&sh->room_wanted, 1, memory_order_relaxed);
        /* seq_cst: the request is visible before `tail` is loaded, as the consumer's store of
         * `tail` is before its load of the request (channel_rx_room_wanted()). */
        atomic_thread_fence(memory_order_seq_cst);
        /* Acquire, as in channel_claim_slow_(): the slots it gave back are ours to write. */
        tx->cached_tail = atomic_load_explicit(&sh->tail, memory_order_acquire);
        uint64_t head = channel_tx_seq_at_(tx, tx->hdr) - tx->drops;
        if (tx->cached_tail + tx->nslots == head)
                return false;
        /* Room already: the caller runs again, no one need tell it. */
        atomic_store_explicit(&sh->room_wanted, 0, memory_order_relaxed);
        return true;
}

int channel_policy_from_string(const char *s)
{
        if (!strcmp(s, "overwrite"))
                return CHANNEL_OVERWRITE;
        if (!strcmp(s, "drop_new"))
                return CHANNEL_DROP_NEW;
        if (!strcmp(s, "reject"))
                return CHANNEL_REJECT;
        return -EINVAL;
}

const char *channel_policy_to_string(enum channel_policy p)
{
        switch (p) {
        case CHANNEL_OVERWRITE:
                return "overwrite";
        case CHANNEL_DROP_NEW:
                return "drop_new";
        case CHANNEL_REJECT:
                return "reject";
        }
        return "?";
}

/* The payload copy races with the producer by design: the seqlock discards any copy the
 * producer wrote into while it was taken. C11 calls such a race undefined even though the
 * torn copy is never used (Boehm, "Can seqlocks get along with programming language memory
 * models?", MSPC 2012), and ThreadSanitizer would report it, so the copy alone is left
 * uninstrumented; the stamps around it are atomics that the sanitizer does check
 * (CHANNEL_TSAN: channel.h, which then keeps the small messages' copy here too). */

#ifdef CHANNEL_TSAN
__attribute__((no_sanitize("thread"), noinline)) static void copy_racy(void *dst, const void *src,
                                                                       size_t n)
{
        /* Word by word; the empty asm keeps the compiler from turning the loop into a memcpy
         * call, which the sanitizer would intercept and check. Sizes are multiples of 8. */
        uint64_t *d = dst;
        const uint64_t *s = src;
        for (size_t i = 0; i < n / 8; i++) {
                d[i] = s[i];
                __asm__ volatile("" ::: "memory");
        }
}
#else
/* Sizes are multiples of 8. The usual small ones get copies of a constant size, which the
 * compiler emits as a few moves instead of a call to memcpy. */
static inline void copy_racy(void *dst, const void *src, size_t n)
{
        switch (n) {
        case 8:
                memcpy(dst, src, 8);
                break;
        case 16:
                memcpy(dst, src, 16);
                break;
        case 24:
                memcpy(dst, src, 24);
                break;
        case 32:
                memcpy(dst, src, 32);
                break;
        case 64:
                memcpy(dst, src, 64);
                break;
        default:
                memcpy(dst, src, n);
        }
}
#endif

/* Overwrite: the seqlock read of the message at position `pos`, whose stamp `s1` was read with
 * acquire (pairing with the release store of the even stamp in channel_publish(): the message
 * is visible to the copy): copies its publish time and payload into `copy` (a header and the
 * payload) and reads the stamp again. Returns that second stamp: equal to s1, the copy is whole;
 * otherwise the producer wrote the slot meanwhile and the copy is to be thrown away. */
static uint64_t seqlock_copy(const struct channel_rx *rx, uint64_t pos, const struct channel_hdr *h,
                             struct channel_hdr *copy)
{
        size_t copy_size = ((size_t)rx->payload_size + 7) & ~(size_t)7;
        copy_racy(&copy->publish_ns, &h->publish_ns, sizeof(copy->publish_ns));
        copy_racy(copy + 1, channel_rx_payload_(rx, pos), copy_size);
        /* Acquire fence: the copy's loads are ordered before the second stamp load. Pairs with
         * the release fence after the odd stamp store in channel_mark_writing_(): if the copy
         * read any byte of a later message, this load reads that message's odd stamp or a later
         * one. */
        atomic_thread_fence(memory_order_acquire);
        return atomic_load_explicit(&h->stamp, memory_order_relaxed);
}

/* Overwrite: whether the producer has reached message m (is writing it, or wrote it or a later
 * message into its slot). Relaxed: a bound, ordering nothing. */
static bool reached(const struct channel_rx *rx, uint64_t m)
{
        return atomic_load_explicit(&channel_rx_hdr_(rx, m)->stamp, memory_order_relaxed) >=
               2 * m + 1;
}

/* Overwrite: the first message the producer had not reached, knowing that it reached `seq`:
 * it writes in order, so the messages it reached are a prefix, found by galloping from seq and
 * halving back (about 2 log2 of its lead stamp loads; it is usually a few slots ahead). The
 * producer stores no count per message, and one lap of the ring is as far as stamps tell. */
static uint64_t producer_next(const struct channel_rx *rx, uint64_t seq)
{
        uint64_t lo = seq, hi = seq + rx->nslots; /* lo reached; hi unknown, treated as not */
        for (uint64_t step = 1; lo + step < hi; step *= 2) {
                if (!reached(rx, lo + step)) {
                        hi = lo + step;
                        break;
                }
                lo += step;
        }
        while (hi - lo > 1) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (reached(rx, mid))
                        lo = mid;
                else
                        hi = mid;
        }
        return lo + 1;
}

/* The overwrite reader's slow path, for the consumer and (`passive`) for a tap, which moves
 * only its own cursor: it stores nothing in the channel. Inlined into both, the flag a
 * constant. */
CHANNEL_INLINE const void *overwrite_next(struct channel_rx *rx, bool passive, uint64_t *ret_seq,
                                          uint64_t *ret_lost, uint64_t *ret_publish_ns)
{
        struct channel_hdr *copy = (struct channel_hdr *)(void *)rx->copy;
        bool torn = false;
        uint64_t bound = UINT64_MAX; /* where the producer was when we last looked: not yet */
        for (;;) {
                uint64_t pos = rx->pos;
                const struct channel_hdr *h = channel_rx_hdr_(rx, pos);
                /* Acquire, pairs with the release store of the even stamp in
                 * channel_publish(): the payload of that message is visible to the copy. */
                uint64_t s1 = atomic_load_explicit(&h->stamp, memory_order_acquire);
                if (s1 == 0)
                        return NULL;
                uint64_t seq = (s1 - 1) / 2; /* for odd and even stamps alike */
                if (seq < pos)
                        return NULL; /* an earlier lap's message: nothing new yet */
                if (seq == pos) {
                        if (s1 & 1)
                                return NULL; /* the next message is being written */
                        uint64_t s2 = seqlock_copy(rx, pos, h, copy);
                        if (s2 == s1) {
                                if (passive)
                                        channel_moved_(rx, seq, seq - rx->next_seq,
                                                       copy->publish_ns, ret_seq, ret_lost,
                                                       ret_publish_ns);
                                else
                                        channel_took_(rx, seq, seq - rx->next_seq, copy->publish_ns,
                                                      ret_seq, ret_lost, ret_publish_ns);
                                return rx->copy + sizeof(*copy);
                        }
                        seq = (s2 - 1) / 2; /* lapped while copying */
                        torn = true;
                }
                /* Lapped: message `seq` replaced ours. The oldest message that can still be
                 * in the ring is nslots before the first one the producer has not reached;
                 * find where it is rather than guess from `seq`, or a reader far behind would
                 * find lap after lap on its way there. */
                uint64_t next = producer_next(rx, seq);
                uint64_t oldest = next < rx->nslots ? 0 : next - rx->nslots;
                /* That oldest is the next slot the producer overwrites. After a torn copy, or
                 * when it was replaced by a message the producer had not reached when we last
                 * looked (it is writing where we read), skip a quarter of the ring further, or
                 * we chase it slot by slot, each step a line it is writing (the skipped
                 * messages are counted as lost like the others). Every pass moves the cursor
                 * forward, so this ends. */
                if (torn || seq >= bound) {
                        oldest += rx->nslots / 4;
                        if (oldest > seq)
                                oldest = seq;
                }
                bound = next;
                rx->pos = oldest > pos ? oldest : pos + 1;
        }
}

const void *channel_next_overwrite_(struct channel_rx *rx, uint64_t *ret_seq, uint64_t *ret_lost,
                                    uint64_t *ret_publish_ns)
{
        return overwrite_next(rx, false, ret_seq, ret_lost, ret_publish_ns);
}

/* ---- taps ---- */

int channel_tap_open(struct channel_tap *ret, struct channel *c)
{
        *ret = (struct channel_tap){0};
        if (c->sh->policy != CHANNEL_OVERWRITE)
                return -ENOTSUP;
        /* An end of its own (channel_rx_open only reads the channel), never closed as one:
         * closing an end stores where it stopped. It starts at the next message. */
        int r = channel_rx_open(&ret->rx, c);
        if (r < 0)
                return r;
        ret->rx.next_seq = ret->rx.pos = ring_published(c->sh);
        ret->rx.same_thread = false;
        return 0;
}

void channel_tap_close(struct channel_tap *t)
{
        free(t->rx.copy);
        *t = (struct channel_tap){0};
}

const void *channel_tap_next(struct channel_tap *t, uint64_t *ret_seq, uint64_t *ret_lost,
                             uint64_t *ret_publish_ns)
{
        return overwrite_next(&t->rx, true, ret_seq, ret_lost, ret_publish_ns);
}

/* Overwrite, with the producer on the reader's thread (channel_rx_set_same_thread()): the run
 * of complete messages in order from the cursor, in place, as single reads are: nothing can
 * write the ring until the caller's next call. 0 when the next message is not simply the one
 * expected (a gap, a lapped reader, none yet): the copying path handles those. */
static uint32_t same_thread_run(struct channel_rx *rx, uint32_t max, struct channel_burst *ret)
{
        uint64_t pos = rx->pos;
        const struct channel_hdr *h = channel_rx_hdr_(rx, pos);
        if (pos != rx->next_seq ||
            atomic_load_explicit(&h->stamp, memory_order_acquire) != 2 * pos + 2)
                return 0;
        size_t to_end = rx->nslots - (size_t)(pos & rx->mask);
        uint32_t k = max == 0 ? 1 : max, n = 1;
        if (k > to_end)
                k = (uint32_t)to_end;
        /* Stamps in the ring ascend with the position, but a slot claimed and not yet
         * published (odd) or left from an earlier lap ends the run: each is checked. */
        while (n < k && atomic_load_explicit(&channel_rx_hdr_(rx, pos + n)->stamp,
                                             memory_order_acquire) == 2 * (pos + n) + 2)
                n++;
        *ret = (struct channel_burst){.payload = channel_rx_payload_(rx, pos),
                                      .hdr = (const unsigned char *)h,
                                      .count = n,
                                      .payload_stride = rx->payload_stride,
                                      .hdr_stride = (size_t)1 << rx->hdr_shift,
                                      .seq = pos,
                                      .lost_before = 0};
        rx->next_seq = rx->pos = pos + n;
        channel_took_count_(rx, n, 0, pos + n);
        return n;
}

uint32_t channel_next_burst_overwrite_(struct channel_rx *rx, uint32_t max,
                                       struct channel_burst *ret)
{
        if (rx->same_thread) {
                uint32_t n = same_thread_run(rx, max, ret);
                if (n)
                        return n;
        }
        uint64_t first_seq, first_lost, seq, lost, ns;
        /* The first message: gaps, a lapped reader and torn copies are handled there. */
        if (!channel_next_overwrite_(rx, &first_seq, &first_lost, &ns)) {
                *ret = (struct channel_burst){0};
                return 0;
        }
        uint32_t k = max < rx->copy_slots ? max : rx->copy_slots;
        uint32_t n = 1;
        /* Then the messages right after it, each complete and copied whole by the same seqlock,
         * until one is not there yet, is being written or was replaced: the run ends before it
         * and the next call starts there. */
        for (; n < k; n++) {
                uint64_t pos = rx->pos;
                const struct channel_hdr *h = channel_rx_hdr_(rx, pos);
                /* Acquire: as in seqlock_copy(). */
                uint64_t s1 = atomic_load_explicit(&h->stamp, memory_order_acquire);
                struct channel_hdr *copy =
                    (struct channel_hdr *)(void *)(rx->copy + (size_t)n * rx->copy_stride);
                if (s1 != 2 * pos + 2 || seqlock_copy(rx, pos, h, copy) != s1)
                        break;
                channel_took_(rx, pos, 0, copy->publish_ns, &seq, &lost, &ns);
        }
        *ret = (struct channel_burst){.payload = rx->copy + sizeof(struct channel_hdr),
                                      .hdr = rx->copy,
                                      .count = n,
                                      .payload_stride = rx->copy_stride,
                                      .hdr_stride = rx->copy_stride,
                                      .seq = first_seq,
                                      .lost_before = first_lost};
        return n;
}
