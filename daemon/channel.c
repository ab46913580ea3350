/* The lossy typed channel: creation, the ends, statistics and the seqlock read side. The
 * protocol is described in channel.h. */
#define _GNU_SOURCE
#include "channel.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHANNEL_MAGIC 0x61636863u /* "achc" */
#define CHANNEL_VERSION 1u

static uint32_t round_up_pow2(uint32_t v)
{
        uint32_t p = 1;
        while (p < v)
                p <<= 1;
        return p;
}

int channel_create(struct channel *ret, uint32_t capacity, uint32_t payload_size,
                   enum channel_policy policy)
{
        if (capacity == 0 || capacity > CHANNEL_CAPACITY_MAX || payload_size == 0 ||
            payload_size > CHANNEL_PAYLOAD_MAX || (unsigned)policy > CHANNEL_REJECT)
                return -EINVAL;

        uint32_t nslots = round_up_pow2(capacity);
        uint32_t stride = (uint32_t)((sizeof(struct channel_slot) + payload_size + 15) & ~15u);
        size_t slots_offset = sizeof(struct channel_shared);
        size_t size = slots_offset + (size_t)nslots * stride;
        long page = sysconf(_SC_PAGESIZE);
        size = (size + (size_t)page - 1) & ~((size_t)page - 1);

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
        sh->stride = stride;
        sh->nslots = nslots;
        sh->slots_offset = slots_offset;
        sh->region_size = size;
        *ret = (struct channel){.sh = sh, .map_size = size};
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
                scratch = aligned_alloc(16, sh->stride);
                if (!scratch)
                        return -ENOMEM;
        }
        *ret = (struct channel_tx){
            .sh = sh,
            .slots = (unsigned char *)sh + sh->slots_offset,
            .stride = sh->stride,
            .mask = sh->nslots - 1,
            .nslots = sh->nslots,
            .policy = sh->policy,
            /* A reopened end carries on where the last one stopped: under drop_new the ring
             * position lags the sequence by the drops. Relaxed: the previous producer was
             * stopped by its own thread, which happens before this open. */
            .head = atomic_load_explicit(&sh->published, memory_order_relaxed) -
                    atomic_load_explicit(&sh->dropped, memory_order_relaxed),
            .seq = atomic_load_explicit(&sh->published, memory_order_relaxed),
            .cached_tail = atomic_load_explicit(&sh->tail, memory_order_acquire),
            .scratch = scratch,
        };
        return 0;
}

void channel_tx_close(struct channel_tx *tx)
{
        free(tx->scratch);
        tx->scratch = NULL;
        tx->claimed = NULL;
}

int channel_rx_open(struct channel_rx *ret, struct channel *c)
{
        struct channel_shared *sh = c->sh;
        struct channel_slot *copy = NULL;
        if (sh->policy == CHANNEL_OVERWRITE) {
                copy = aligned_alloc(16, sh->stride);
                if (!copy)
                        return -ENOMEM;
        }
        *ret = (struct channel_rx){
            .sh = sh,
            .slots = (unsigned char *)sh + sh->slots_offset,
            .stride = sh->stride,
            .mask = sh->nslots - 1,
            .nslots = sh->nslots,
            .policy = sh->policy,
            .payload_size = sh->payload_size,
            .copy = copy,
            /* A reopened end carries on where the last one stopped (relaxed: the previous
             * consumer was closed by a thread that happens before this open). */
            .tail = atomic_load_explicit(&sh->tail, memory_order_relaxed),
            .consumed = atomic_load_explicit(&sh->consumed, memory_order_relaxed),
            .overwritten = atomic_load_explicit(&sh->overwritten, memory_order_relaxed),
        };
        /* Under drop_new the sequence runs ahead of the position by the drops: the closing
         * end saved where it was. */
        ret->next_seq = sh->policy == CHANNEL_OVERWRITE
                            ? ret->tail
                            : atomic_load_explicit(&sh->resume_seq, memory_order_relaxed);
        return 0;
}

void channel_rx_close(struct channel_rx *rx)
{
        channel_rx_end(rx);
        atomic_store_explicit(&rx->sh->resume_seq, rx->next_seq, memory_order_relaxed);
        free(rx->copy);
        rx->copy = NULL;
}

void channel_stats(const struct channel *c, struct channel_stats *ret)
{
        struct channel_shared *sh = c->sh;
        /* Relaxed throughout: each counter has one writer and is read as a number only. */
        uint64_t dropped = atomic_load_explicit(&sh->dropped, memory_order_relaxed);
        uint64_t overwritten = atomic_load_explicit(&sh->overwritten, memory_order_relaxed);
        *ret = (struct channel_stats){
            .published = atomic_load_explicit(&sh->published, memory_order_relaxed),
            .consumed = atomic_load_explicit(&sh->consumed, memory_order_relaxed),
            .lost = dropped + overwritten,
            .dropped = dropped,
            .overwritten = overwritten,
            .rejected = atomic_load_explicit(&sh->rejected, memory_order_relaxed),
            .high_water = atomic_load_explicit(&sh->high_water, memory_order_relaxed),
            .capacity = sh->nslots,
        };
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
 * uninstrumented; the stamps around it are atomics that the sanitizer does check. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CHANNEL_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CHANNEL_TSAN 1
#endif

#ifdef CHANNEL_TSAN
__attribute__((no_sanitize("thread"), noinline)) static void copy_racy(void *dst, const void *src,
                                                                       size_t n)
{
        /* Word by word; the empty asm keeps the compiler from turning the loop into a memcpy
         * call, which the sanitizer would intercept and check. Strides are multiples of 16. */
        uint64_t *d = dst;
        const uint64_t *s = src;
        for (size_t i = 0; i < n / 8; i++) {
                d[i] = s[i];
                __asm__ volatile("" ::: "memory");
        }
}
#else
static inline void copy_racy(void *dst, const void *src, size_t n)
{
        memcpy(dst, src, n);
}
#endif

const void *channel_next_overwrite_(struct channel_rx *rx, uint64_t *ret_seq, uint64_t *ret_lost,
                                    uint64_t *ret_publish_ns)
{
        for (;;) {
                struct channel_slot *s =
                    channel_slot_at_(rx->slots, rx->stride, rx->tail, rx->mask);
                /* Acquire, pairs with the release store of the even stamp in
                 * channel_publish(): the payload of that message is visible to the copy. */
                uint64_t s1 = atomic_load_explicit(&s->stamp, memory_order_acquire);
                if (s1 == 0)
                        return NULL;
                uint64_t seq = (s1 - 1) / 2; /* for odd and even stamps alike */
                if (seq < rx->tail)
                        return NULL; /* an earlier lap's message: nothing new yet */
                if (seq == rx->tail) {
                        if (s1 & 1)
                                return NULL; /* the next message is being written */
                        copy_racy(rx->copy, s, rx->stride);
                        /* Acquire fence: the copy's loads are ordered before the second stamp
                         * load. Pairs with the release fence after the odd stamp store in
                         * channel_claim(): if the copy read any byte of a later message, this
                         * load reads that message's odd stamp or a later one. */
                        atomic_thread_fence(memory_order_acquire);
                        uint64_t s2 = atomic_load_explicit(&s->stamp, memory_order_relaxed);
                        if (s2 == s1) {
                                *ret_seq = seq;
                                *ret_lost = seq - rx->next_seq;
                                *ret_publish_ns = rx->copy->publish_ns;
                                rx->overwritten += seq - rx->next_seq;
                                rx->next_seq = seq + 1;
                                rx->tail = seq + 1;
                                rx->consumed++;
                                /* Relaxed: counters for channel_stats(), and the position for
                                 * the producer's high-water sample, order nothing. */
                                atomic_store_explicit(&rx->sh->consumed, rx->consumed,
                                                      memory_order_relaxed);
                                atomic_store_explicit(&rx->sh->overwritten, rx->overwritten,
                                                      memory_order_relaxed);
                                atomic_store_explicit(&rx->sh->tail, rx->tail,
                                                      memory_order_relaxed);
                                return rx->copy->payload;
                        }
                        seq = (s2 - 1) / 2; /* lapped while copying */
                }
                /* Lapped: message `seq` replaced ours. At most nslots - 1 messages older than
                 * it can still be in the ring; skip to the oldest of them and try again.
                 * Every pass moves the cursor forward, so this ends. */
                uint64_t oldest = seq - rx->nslots + 1;
                if (seq + 1 < rx->nslots)
                        oldest = 0;
                rx->tail = oldest > rx->tail ? oldest : rx->tail + 1;
        }
}
