// SPDX-License-Identifier: GPL-2.0
//
// BlkQueue: the per-queue io_uring loop.
//
// Ops live in slots, not in per-tag state: after a guest reset the kernel
// may hand out a tag again while the op of the old generation that had it
// is still in flight in io_uring.  There are queue_size slots and a fetch
// never asks for more ops than there are free slots, so that op simply
// occupies one slot until io_uring gives it back (cancelled, or finished:
// its completion carries the old generation and the kernel drops it).
#include "queue.h"

#include "ring.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace hvio {

namespace {

// How long the exit path waits for the ring's requests to be cancelled.
constexpr int kQuiesceMs = 5000;

} // namespace

BlkQueue::BlkQueue(QueueBackend &kernel, BlkTarget &target, const GuestMemory &mem, uint16_t index,
                   unsigned queue_size, int eventfd, const std::atomic<bool> &stop)
    : kernel_(kernel), target_(target), mem_(mem), index_(index), size_(queue_size),
      eventfd_(eventfd), stop_(stop), slots_(queue_size), tags_(queue_size), in_ring_(queue_size) {
    free_.reserve(size_);
    for (uint32_t i = size_; i-- > 0;)
        free_.push_back(i);
    commits_.reserve(size_);
}

BlkQueue::~BlkQueue() {
    if (ring_ok_)
        io_uring_queue_exit(&ring_);
}

Result<void> BlkQueue::init() {
    // Every slot and the eventfd read can be in flight at once, and each
    // has at most one SQE, plus at most one cancel per slot after a reset:
    // the CQ (2x) never overflows, and sqe() submits when the SQ is full.
    int ret = io_uring_queue_init(size_ + 1, &ring_, 0);
    if (ret < 0)
        return Error(-ret);
    ring_ok_ = true;
    return {};
}

io_uring_sqe *BlkQueue::sqe() {
    io_uring_sqe *s = io_uring_get_sqe(&ring_);
    if (!s) {
        // Cannot happen (see init()), but never lose an op over it.
        io_uring_submit(&ring_);
        s = io_uring_get_sqe(&ring_);
    }
    inflight_ += s != nullptr;
    return s;
}

void BlkQueue::finish(uint32_t slot, int result) {
    const BlkIo &io = slots_[slot];
    hvio_completion c{};
    c.tag = io.tag;
    c.result = result;
    c.generation = io.generation;
    c.generation_hi = io.generation_hi;
    commits_.push_back(c);
    free_.push_back(slot);
    if (stale(slot)) {
        counters_.stale.fetch_add(1, std::memory_order_relaxed);
    } else if (result < 0) {
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
        counters_.last_error.store(-result, std::memory_order_relaxed);
    } else if (io.type == HVIO_OP_READ) {
        counters_.bytes_read.fetch_add(io.len, std::memory_order_relaxed);
    } else if (io.type == HVIO_OP_WRITE) {
        counters_.bytes_written.fetch_add(io.len, std::memory_order_relaxed);
    }
}

int BlkQueue::submit(uint32_t slot) {
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    blk_prep(s, slots_[slot], target_);
    io_uring_sqe_set_data64(s, user_data(kIo, slot));
    in_ring_[slot] = 1;
    return 0;
}

void BlkQueue::new_generation(uint32_t gen) {
    if (gen_known_ && gen == gen_)
        return;
    gen_known_ = true;
    gen_ = gen;
    for (uint32_t slot = 0; slot < size_; slot++) {
        if (!in_ring_[slot] || !stale(slot))
            continue;
        // Best effort: a read the block layer already started runs to
        // its end, and the guest's reset waits for it.
        io_uring_sqe *s = sqe();
        if (!s)
            continue;
        io_uring_prep_cancel64(s, user_data(kIo, slot), 0);
        io_uring_sqe_set_data64(s, user_data(kCancel, slot));
    }
}

int BlkQueue::start(uint16_t tag) {
    if (tag >= size_) {
        std::fprintf(stderr, "hvio: %s queue %u: kernel fetched tag %u >= %u\n",
                     target_.where.c_str(), index_, tag, size_);
        return -EPROTO;
    }
    // One copy of the op's header; segments are read once, by translate().
    const hvio_op &op = kernel_.op(tag);
    uint32_t slot = free_.back();
    free_.pop_back();
    counters_.ops.fetch_add(1, std::memory_order_relaxed);
    switch (op.type) {
    case HVIO_OP_READ:
        counters_.reads.fetch_add(1, std::memory_order_relaxed);
        break;
    case HVIO_OP_WRITE:
        counters_.writes.fetch_add(1, std::memory_order_relaxed);
        break;
    case HVIO_OP_FLUSH:
        counters_.flushes.fetch_add(1, std::memory_order_relaxed);
        break;
    case HVIO_OP_DISCARD:
        counters_.discards.fetch_add(1, std::memory_order_relaxed);
        break;
    case HVIO_OP_WRITE_ZEROES:
        counters_.write_zeroes.fetch_add(1, std::memory_order_relaxed);
        break;
    default:
        counters_.other.fetch_add(1, std::memory_order_relaxed);
        break;
    }
    BlkIo &io = slots_[slot];
    int r = blk_start(io, op, mem_, target_);
    // The kernel names the tag; the op slot's own copy is informational.
    io.tag = tag;
    // Fetched just before a reset: the guest took its buffers back.
    if (stale(slot))
        r = -ECANCELED;
    if (r != kBlkSubmit) {
        finish(slot, r);
        return 0;
    }
    return submit(slot);
}

int BlkQueue::arm_eventfd() {
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    io_uring_prep_read(s, eventfd_, &eventfd_buf_, sizeof(eventfd_buf_), 0);
    io_uring_sqe_set_data64(s, user_data(kEventfd, 0));
    eventfd_armed_ = true;
    return 0;
}

// Handles every CQE there is; resubmissions are queued as SQEs.
int BlkQueue::reap() {
    io_uring_cqe *cqe;
    unsigned head, n = 0;
    int ret = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
        n++;
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        uint32_t slot = static_cast<uint32_t>(ud);
        switch (static_cast<Kind>(ud >> 32)) {
        case kEventfd:
            eventfd_armed_ = false;
            if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN && cqe->res != -ECANCELED)
                ret = cqe->res;
            else
                counters_.wakeups.fetch_add(1, std::memory_order_relaxed);
            break;
        case kIo: {
            int result;
            if (slot >= slots_.size())
                break;
            in_ring_[slot] = 0;
            if (stale(slot)) {
                finish(slot, cqe->res < 0 ? cqe->res : -ECANCELED);
            } else if (blk_complete(slots_[slot], cqe->res, target_, &result)) {
                finish(slot, result);
            } else {
                counters_.resubmits.fetch_add(1, std::memory_order_relaxed);
                if (int r = submit(slot); r < 0)
                    finish(slot, r);
            }
            break;
        }
        default:
            break;
        }
    }
    io_uring_cq_advance(&ring_, n);
    inflight_ -= std::min(inflight_, n);
    return ret;
}

int BlkQueue::run() {
    const int ret = serve();
    // Nothing may stay in the ring (ring.h): the eventfd read, and after
    // a fatal error the I/O still in flight.
    std::vector<uint64_t> each{user_data(kEventfd, 0)};
    for (uint32_t slot = 0; slot < size_; slot++)
        if (in_ring_[slot])
            each.push_back(user_data(kIo, slot));
    if (ring_quiesce(ring_, inflight_, user_data(kCancel, 0), each, kQuiesceMs) < 0)
        std::fprintf(stderr,
                     "hvio: %s queue %u: %u io_uring requests could not be cancelled in %d ms\n",
                     target_.where.c_str(), index_, inflight_, kQuiesceMs);
    return ret;
}

int BlkQueue::serve() {
    for (;;) {
        const bool stopping = stop_.load(std::memory_order_acquire);
        if (stopping && drain_budget_ < 0)
            drain_budget_ = static_cast<int>(size_);
        unsigned want = free_.size();
        if (stopping)
            want = std::min<unsigned>(want, static_cast<unsigned>(drain_budget_));
        const uint16_t max_fetch = static_cast<uint16_t>(want);

        hvio_queue_run r{};
        r.queue = index_;
        r.nr_commit = static_cast<uint16_t>(commits_.size());
        r.max_fetch = max_fetch;
        r.commits_addr = reinterpret_cast<uintptr_t>(commits_.data());
        r.tags_addr = reinterpret_cast<uintptr_t>(tags_.data());
        if (int ret = kernel_.run(r); ret < 0)
            return ret;
        counters_.runs.fetch_add(1, std::memory_order_relaxed);
        commits_.clear();
        new_generation(r.generation);

        const unsigned fetched = std::min<unsigned>(r.nr_fetched, max_fetch);
        for (unsigned i = 0; i < fetched; i++)
            if (int ret = start(tags_[i]); ret < 0)
                return ret;
        counters_.inflight.store(size_ - free_.size(), std::memory_order_relaxed);

        // Only HVIO_RUN_OUT_MORE says the avail ring holds more: a fetch
        // that stopped at max_fetch may return fewer ops (the kernel
        // answers GET_ID and bad requests itself), and then guest kicks
        // stay off until we call again.
        const bool more = max_fetch && (r.out_flags & HVIO_RUN_OUT_MORE);
        if (stopping) {
            // The last requests: those available when the stop came.
            drain_budget_ -= static_cast<int>(fetched);
            if (!more)
                drain_budget_ = 0;
            if (!drain_budget_ && free_.size() == size_ && commits_.empty())
                return 0;
        }

        // Sleep only when nothing waits to be committed and the kernel
        // said the queue is drained.
        const bool wait = commits_.empty() && !more;
        if (wait && !stopping && !eventfd_armed_)
            if (int ret = arm_eventfd(); ret < 0)
                return ret;
        int ret = wait ? io_uring_submit_and_wait(&ring_, 1) : io_uring_submit(&ring_);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            return ret;
        if (int err = reap(); err < 0)
            return err;
    }
}

} // namespace hvio
