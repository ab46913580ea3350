// The C++ peers: boost::lockfree::spsc_queue and moodycamel::ReaderWriterQueue. The kernels are
// the same C source as for the other queues, stamped out here with these queues' calls.
#include "bench.h"

#include <new>

#ifdef BENCH_HAVE_BOOST
#include <boost/lockfree/spsc_queue.hpp>
#endif
#ifdef BENCH_HAVE_RWQ
#include <readerwriterqueue/readerwriterqueue.h>
#endif

namespace
{

inline msg64 fill64(uint64_t v)
{
        msg64 m;
        for (unsigned i = 0; i < 8; i++)
                m.w[i] = v;
        return m;
}

// One adaptor object holds a queue of 8-byte or of 64-byte messages: the kernels for each
// size only touch the matching one.
template <template <typename> class Q> struct either_q {
        Q<msg8> *q8 = nullptr;
        Q<msg64> *q64 = nullptr;
};

template <template <typename> class Q> void *create_either(uint32_t msg_size)
{
        auto *q = new (std::nothrow) either_q<Q>;
        if (!q)
                return nullptr;
        if (msg_size == sizeof(msg8))
                q->q8 = new (std::nothrow) Q<msg8>();
        else
                q->q64 = new (std::nothrow) Q<msg64>();
        if (!q->q8 && !q->q64) {
                delete q;
                return nullptr;
        }
        return q;
}

template <template <typename> class Q> void destroy_either(void *p, uint32_t)
{
        auto *q = static_cast<either_q<Q> *>(p);
        delete q->q8;
        delete q->q64;
        delete q;
}

#ifdef BENCH_HAVE_BOOST
// capacity<N> keeps one slot free: it holds N - 1 messages, as ck_ring and rte_ring do.
template <typename T>
class boost_q : public boost::lockfree::spsc_queue<T, boost::lockfree::capacity<BENCH_CAPACITY>>
{
};

typedef either_q<boost_q> boost_either;

inline bool boost_send8(boost_either *q, uint64_t v)
{
        return q->q8->push(msg8{v});
}

inline bool boost_recv8(boost_either *q, uint64_t *v)
{
        msg8 m;
        if (!q->q8->pop(m))
                return false;
        *v = m.v;
        return true;
}

inline bool boost_send64(boost_either *q, uint64_t v)
{
        return q->q64->push(fill64(v));
}

inline bool boost_recv64(boost_either *q, msg64 *buf, const msg64 **out)
{
        *out = buf;
        return q->q64->pop(*buf);
}

inline unsigned boost_send64_burst(boost_either *q, const msg64 *m, unsigned n)
{
        return (unsigned)q->q64->push(m, n);
}

inline unsigned boost_recv64_burst(boost_either *q, msg64 *buf, unsigned n)
{
        return (unsigned)q->q64->pop(buf, n);
}

#define KPREFIX boost_
#define KQ boost_either
#define KHAVE_SEND_BURST
#define KHAVE_RECV_BURST
#include "kernels.h"
#undef KPREFIX
#undef KQ
#undef KHAVE_SEND_BURST
#undef KHAVE_RECV_BURST
#undef KBURST_SEND
#undef KBURST_RECV
#undef KCAT
#undef KCAT2
#undef KFN

void *boost_create(const bench_impl *, uint32_t msg_size)
{
        return create_either<boost_q>(msg_size);
}
#endif

#ifdef BENCH_HAVE_RWQ
// Built for BENCH_CAPACITY messages; only the try_ calls are used, which never allocate, so it
// stays bounded like the others.
template <typename T> class rwq_q : public moodycamel::ReaderWriterQueue<T>
{
      public:
        rwq_q() : moodycamel::ReaderWriterQueue<T>(BENCH_CAPACITY)
        {
        }
};

typedef either_q<rwq_q> rwq_either;

inline bool rwq_send8(rwq_either *q, uint64_t v)
{
        return q->q8->try_enqueue(msg8{v});
}

inline bool rwq_recv8(rwq_either *q, uint64_t *v)
{
        msg8 m;
        if (!q->q8->try_dequeue(m))
                return false;
        *v = m.v;
        return true;
}

inline bool rwq_send64(rwq_either *q, uint64_t v)
{
        return q->q64->try_enqueue(fill64(v));
}

inline bool rwq_recv64(rwq_either *q, msg64 *buf, const msg64 **out)
{
        *out = buf;
        return q->q64->try_dequeue(*buf);
}

#define KPREFIX rwq_
#define KQ rwq_either
#include "kernels.h"

void *rwq_create(const bench_impl *, uint32_t msg_size)
{
        return create_either<rwq_q>(msg_size);
}
#endif

bench_impl make_impl(const char *name)
{
        bench_impl im = {};
        im.name = name;
        im.peer = true;
        return im;
}

} // namespace

#ifdef BENCH_HAVE_BOOST
static bench_impl make_boost()
{
        bench_impl im = make_impl("boost_spsc");
        im.create = boost_create;
        im.destroy = destroy_either<boost_q>;
        im.produce8 = boost_produce8;
        im.consume8 = boost_consume8;
        im.produce64 = boost_produce64;
        im.consume64 = boost_consume64;
        im.produce_burst64 = boost_produce_burst64;
        im.consume_burst64 = boost_consume_burst64;
        im.paced8 = boost_paced8;
        im.ping8 = boost_ping8;
        im.pong8 = boost_pong8;
        return im;
}

extern "C" const bench_impl bench_boost_spsc = make_boost();
#endif

#ifdef BENCH_HAVE_RWQ
static bench_impl make_rwq()
{
        bench_impl im = make_impl("rwq");
        im.create = rwq_create;
        im.destroy = destroy_either<rwq_q>;
        im.produce8 = rwq_produce8;
        im.consume8 = rwq_consume8;
        im.produce64 = rwq_produce64;
        im.consume64 = rwq_consume64;
        im.paced8 = rwq_paced8;
        im.ping8 = rwq_ping8;
        im.pong8 = rwq_pong8;
        return im;
}

extern "C" const bench_impl bench_rwq = make_rwq();
#endif
