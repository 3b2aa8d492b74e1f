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
#include <sys/eventfd.h>
#include <unistd.h>

namespace hvio {

namespace {

// How long the exit path waits for the ring's requests to be cancelled.
constexpr int kQuiesceMs = 5000;

// u16 elements of the FETCH result before its tags.
constexpr size_t kFetchHdr = sizeof(hvio_fetch_result) / sizeof(uint16_t);
static_assert(sizeof(hvio_fetch_result) % sizeof(uint16_t) == 0);

// A FETCH that brings many reads has them started in up to kFetchParts
// parts of at least kMinPart ops, one part per io_uring_enter, each part's
// completions committed in the enter that starts the next.  Reads that
// complete inline (page-cache hits) then reach the guest a part at a
// time: it works on the first completions while the daemon serves the
// rest, where otherwise the two would take turns on whole batches.  Once
// a part's ops are still out after the enter that started them (a disk),
// the rest start at once: parts would only hold them back.  A fetch with
// any other op starts at once: a buffered write costs the daemon several
// times what its completion costs the guest, so there is no overlap to
// win and the extra COMMITs and interrupts were measured to lose.  While
// parts are left the loop does not wait in io_uring_enter, and it never
// waits with completions not yet committed.
// Documentation/performance.md, "Committing a fetch in parts".
constexpr unsigned kFetchParts = 4;
constexpr unsigned kMinPart = 8;

} // namespace

BlkQueue::BlkQueue(QueueBackend &kernel, BlkTarget &target, const GuestMemory &mem, uint16_t index,
                   unsigned queue_size, int eventfd, const std::atomic<bool> &stop)
    : kernel_(kernel), target_(target), mem_(mem), index_(index), size_(queue_size),
      eventfd_(eventfd), stop_(stop), slots_(queue_size), tags_(queue_size), in_ring_(queue_size),
      fetch_buf_(kFetchHdr + queue_size) {
    free_.reserve(size_);
    for (uint32_t i = size_; i-- > 0;)
        free_.push_back(i);
    commits_.reserve(size_);
    commit_bufs_ = CommitBuffers(size_);
}

BlkQueue::~BlkQueue() {
    if (offload_thread_.joinable()) {
        {
            std::lock_guard<std::mutex> l(offload_mu_);
            offload_quit_ = true;
        }
        offload_cv_.notify_one();
        offload_thread_.join();
    }
}

Result<void> BlkQueue::init() {
    if (size_ > HVIO_MAX_QUEUE_SIZE)
        return Error(EINVAL);
    return {};
}

io_uring_sqe *BlkQueue::sqe() {
    // Cannot run out (see run()), but never lose an op over it: Ring
    // submits when the SQ is full.
    io_uring_sqe *s = ring_.sqe();
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
    // Here, not only at the next fetch: a parked FETCH may not come back
    // for a long time, and `hvio status` would show done ops in flight.
    counters_.inflight.store(size_ - free_.size() + unstarted());
    if (stale(slot)) {
        counters_.stale.add();
    } else if (result < 0) {
        counters_.errors.add();
        counters_.last_error.store(-result, std::memory_order_relaxed);
    } else if (io.type == HVIO_OP_READ) {
        counters_.bytes_read.add(io.len);
    } else if (io.type == HVIO_OP_WRITE) {
        counters_.bytes_written.add(io.len);
    }
}

int BlkQueue::submit(uint32_t slot) {
    if (slots_[slot].step == BlkIo::kDiscardIoctl)
        return offload(slot);
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    blk_prep(s, slots_[slot], target_);
    ring_.fix(s);
    io_uring_sqe_set_data64(s, user_data(kIo, slot));
    ios_out_ += !in_ring_[slot];
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
    counters_.ops.add();
    switch (op.type) {
    case HVIO_OP_READ:
        counters_.reads.add();
        break;
    case HVIO_OP_WRITE:
        counters_.writes.add();
        break;
    case HVIO_OP_FLUSH:
        counters_.flushes.add();
        break;
    case HVIO_OP_DISCARD:
        counters_.discards.add();
        break;
    case HVIO_OP_WRITE_ZEROES:
        counters_.write_zeroes.add();
        break;
    default:
        counters_.other.add();
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

// The result of a slot's step (an SQE's, or the helper's).
void BlkQueue::complete_io(uint32_t slot, int res) {
    int result;
    if (stale(slot)) {
        finish(slot, res < 0 ? res : -ECANCELED);
    } else if (blk_complete(slots_[slot], res, target_, &result)) {
        finish(slot, result);
    } else {
        counters_.resubmits.add();
        if (int r = submit(slot); r < 0)
            finish(slot, r);
    }
}

// ---- BLKDISCARD on a helper thread ---------------------------------------------
//
// io_uring has no discard opcode on 6.1 and blkdev fallocate lost its
// discard mode later: a BLKDISCARD there would block the queue thread for
// as long as the device takes.  The helper runs them one by one and
// signals an eventfd whose read is armed in the ring while any is out.

void BlkQueue::offload_main() {
    std::unique_lock<std::mutex> l(offload_mu_);
    for (;;) {
        offload_cv_.wait(l, [this] { return offload_quit_ || !offload_todo_.empty(); });
        if (offload_quit_)
            return;
        std::vector<uint32_t> todo;
        todo.swap(offload_todo_);
        l.unlock();
        std::vector<std::pair<uint32_t, int>> done;
        for (uint32_t slot : todo)
            done.emplace_back(slot, blk_discard_ioctl(slots_[slot], target_));
        l.lock();
        offload_done_.insert(offload_done_.end(), done.begin(), done.end());
        uint64_t one = 1;
        (void)!::write(offload_efd_.get(), &one, sizeof(one));
    }
}

int BlkQueue::arm_offload() {
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    io_uring_prep_read(s, offload_efd_.get(), &offload_buf_, sizeof(offload_buf_), 0);
    io_uring_sqe_set_data64(s, user_data(kOffload, 0));
    offload_armed_ = true;
    return 0;
}

int BlkQueue::offload(uint32_t slot) {
    if (!offload_thread_.joinable()) {
        offload_efd_.reset(::eventfd(0, EFD_CLOEXEC));
        if (!offload_efd_)
            return -errno;
        offload_thread_ = std::thread([this] { offload_main(); });
    }
    if (!offload_armed_)
        if (int r = arm_offload(); r < 0)
            return r;
    {
        std::lock_guard<std::mutex> l(offload_mu_);
        offload_todo_.push_back(slot);
    }
    offload_cv_.notify_one();
    offload_out_++;
    counters_.offloaded.add();
    return 0;
}

void BlkQueue::offload_reaped() {
    std::vector<std::pair<uint32_t, int>> done;
    {
        std::lock_guard<std::mutex> l(offload_mu_);
        done.swap(offload_done_);
    }
    for (auto [slot, res] : done) {
        offload_out_--;
        complete_io(slot, res);
    }
    if (offload_out_ && !offload_armed_)
        (void)arm_offload();
}

// Handles every CQE there is; resubmissions are queued as SQEs.
int BlkQueue::reap() {
    io_uring_cqe *cqe;
    unsigned head, n = 0, n_commit = 0;
    int ret = 0;
    io_uring_for_each_cqe(&ring_.get(), head, cqe) {
        n++;
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        uint32_t slot = static_cast<uint32_t>(ud);
        switch (static_cast<Kind>(ud >> 32)) {
        case kEventfd:
            eventfd_armed_ = false;
            if (cqe->res < 0 && cqe->res != -EINTR && cqe->res != -EAGAIN && cqe->res != -ECANCELED)
                ret = cqe->res;
            else
                counters_.wakeups.add();
            break;
        case kIo:
            if (slot >= slots_.size())
                break;
            ios_out_ -= in_ring_[slot];
            in_ring_[slot] = 0;
            complete_io(slot, cqe->res);
            break;
        case kOffload:
            offload_armed_ = false;
            offload_reaped();
            break;
        case kFetch:
            fetch_out_ = false;
            if (int r = fetched(cqe->res); r < 0 && !ret)
                ret = r;
            break;
        case kCommit:
            // Only a failed one has a CQE.  EINVAL: a tag the kernel does
            // not know; a bug, as for QUEUE_RUN.
            n_commit++;
            if (cqe->res < 0 && !ret)
                ret = cqe->res;
            break;
        default:
            break;
        }
    }
    io_uring_cq_advance(&ring_.get(), n);
    n -= n_commit;
    inflight_ -= std::min(inflight_, n);
    return ret;
}

int BlkQueue::run() {
    // Every slot, the eventfd read or the FETCH, and a few COMMITs can be
    // in flight at once, each with one SQE, plus at most one cancel per
    // slot after a reset: the CQ (2x) never overflows.
    if (auto r = ring_.init(size_ + 8); !r)
        return -r.error();
    counters_.ring_mode.store(ring_.mode(), std::memory_order_relaxed);
    // No fixed files: a registered file lives until the ring's teardown,
    // which the kernel runs in a worker after the process is gone, so a
    // killed daemon's device would be orphaned and its image unlocked only
    // some time after it was reaped, and a restart would fail (ring.h).

    int ret = kernel_.uring_fd() >= 0 ? serve_uring() : 0;
    if (kernel_.uring_fd() < 0 || fallback_) {
        counters_.path.store(kPathQueueRun, std::memory_order_relaxed);
        ret = serve();
    }
    // A FETCH still parked (after a fatal error) is not cancellable: ask
    // the kernel to complete it, quiesce reaps it.
    if (fetch_out_)
        (void)kernel_.unpark();
    // Nothing may stay in the ring (ring.h): the eventfd read, and after
    // a fatal error the I/O still in flight.
    std::vector<uint64_t> each{user_data(kEventfd, 0), user_data(kOffload, 0)};
    for (uint32_t slot = 0; slot < size_; slot++)
        if (in_ring_[slot])
            each.push_back(user_data(kIo, slot));
    if (ring_quiesce(ring_.get(), inflight_, user_data(kCancel, 0), each, kQuiesceMs) < 0)
        std::fprintf(stderr,
                     "hvio: %s queue %u: %u io_uring requests could not be cancelled in %d ms\n",
                     target_.where.c_str(), index_, inflight_, kQuiesceMs);
    return ret;
}

int BlkQueue::serve() {
    for (;;) {
        stopping_now();
        const bool stopping = drain_budget_ >= 0;
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
        counters_.runs.add();
        commits_.clear();
        new_generation(r.generation);

        const unsigned fetched = std::min<unsigned>(r.nr_fetched, max_fetch);
        for (unsigned i = 0; i < fetched; i++)
            if (int ret = start(tags_[i]); ret < 0)
                return ret;

        // Only HVIO_RUN_OUT_MORE says the avail ring holds more: a fetch
        // that stopped at max_fetch may return fewer ops (the kernel
        // answers GET_ID and bad requests itself), and then guest kicks
        // stay off until we call again.
        const bool more = max_fetch && (r.out_flags & HVIO_RUN_OUT_MORE);
        account(fetched, more, stopping);
        if (stopping && !drain_budget_ && free_.size() == size_ && commits_.empty())
            return 0;

        // Sleep only when nothing waits to be committed and the kernel
        // said the queue is drained.
        const bool wait = commits_.empty() && !more;
        if (wait && !stopping && !eventfd_armed_)
            if (int ret = arm_eventfd(); ret < 0)
                return ret;
        int ret = ring_.submit(wait ? 1 : 0);
        counters_.enters.store(ring_.enters());
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            return ret;
        if (int err = reap(); err < 0)
            return err;
    }
}

// ---- the io_uring loop -------------------------------------------------------

void BlkQueue::stopping_now() {
    if (drain_budget_ < 0 && stop_.load(std::memory_order_acquire))
        drain_budget_ = static_cast<int>(size_);
}

int BlkQueue::queue_fetch(unsigned max, bool wait) {
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    hvio_uring_fetch f{};
    f.queue = index_;
    f.max_fetch = static_cast<uint16_t>(max);
    f.flags = wait ? HVIO_FETCH_F_WAIT : 0;
    // Until the stop, ops fetched are followed by the next FETCH once they
    // are started: the guest's kicks may stay off meanwhile.
    if (drain_budget_ < 0)
        f.flags |= HVIO_FETCH_F_AGAIN;
    f.result_addr = reinterpret_cast<uintptr_t>(fetch_buf_.data());
    prep_uring_cmd(s, kernel_.uring_fd(), HVIO_URING_FETCH, f);
    ring_.fix(s);
    io_uring_sqe_set_data64(s, user_data(kFetch, 0));
    fetch_out_ = true;
    fetch_wait_ = wait;
    fetch_max_ = max;
    fetch_after_stop_ = drain_budget_ >= 0;
    return 0;
}

// A COMMIT completes while io_uring_enter submits it (the kernel copies
// the completions then, and never parks it): it posts a CQE only when it
// fails (IOSQE_CQE_SKIP_SUCCESS), so waiting after a commit sleeps until
// there is new work, and its buffer is free once it was submitted.  It is
// not counted in inflight_ (no CQE to take it off again).
int BlkQueue::queue_commit() {
    io_uring_sqe *s = ring_.sqe();
    if (!s)
        return -EBUSY;
    // Until the stop, a FETCH always follows before the loop waits (a
    // finished op frees its slot): the commit may turn the guest's kicks
    // off until then, also while no FETCH is out (a fetch in parts).
    commit_bufs_.prep(s, kernel_.uring_fd(), index_, commits_,
                      drain_budget_ < 0 ? HVIO_COMMIT_F_FETCH_NEXT : 0);
    ring_.fix(s);
    io_uring_sqe_set_data64(s, user_data(kCommit, 0));
    counters_.commits.add();
    return 0;
}

// Bookkeeping after a fetch of either loop: the stop's drain budget.  Only
// a fetch issued once the stop was seen counts: one that ran before it (a
// FETCH completed in the kernel, its CQE reaped after the stop) says
// nothing of what the guest made available since, and its "no more" must
// not end the drain.
void BlkQueue::account(unsigned n, bool more, bool after_stop) {
    counters_.inflight.store(size_ - free_.size() + unstarted());
    if (drain_budget_ < 0 || !after_stop)
        return;
    // The last requests: those available when the stop came.
    drain_budget_ -= std::min(drain_budget_, static_cast<int>(n));
    if (!more)
        drain_budget_ = 0;
}

// A FETCH's CQE.
int BlkQueue::fetched(int res) {
    if (res < 0) {
        // An hvio.ko without the commands: the QUEUE_RUN loop.
        if (!fetch_ok_ && (res == -EOPNOTSUPP || res == -EINVAL)) {
            fallback_ = true;
            return 0;
        }
        if (res == -EINTR || res == -EAGAIN)
            return 0;
        return res;
    }
    fetch_ok_ = true;
    counters_.fetches.add();
    if (fetch_wait_)
        counters_.wakeups.add();
    hvio_fetch_result r;
    std::memcpy(&r, fetch_buf_.data(), sizeof(r));
    new_generation(r.generation);
    const unsigned n = std::min<unsigned>(static_cast<unsigned>(res), fetch_max_);
    // Started by the loop, start_part(): all at once, or a part at a
    // time when the fetch holds only reads (kFetchParts).
    part_ = std::max(kMinPart, (n + kFetchParts - 1) / kFetchParts);
    for (unsigned i = 0; i < n; i++) {
        const uint16_t tag = fetch_buf_[kFetchHdr + i];
        if (tag < size_ && kernel_.op(tag).type != HVIO_OP_READ)
            part_ = n;
    }
    in_parts_ = part_ < n;
    fetched_n_ = n;
    started_n_ = 0;
    // Only HVIO_RUN_OUT_MORE says the avail ring holds more (see serve()).
    more_ = (r.out_flags & HVIO_RUN_OUT_MORE) != 0;
    account(n, more_, fetch_after_stop_);
    return 0;
}

// The next part of the last fetch's ops (kFetchParts): all of them when
// earlier ops are still out at the backend, which does not complete them
// inline.
int BlkQueue::start_part() {
    const unsigned part = ios_out_ ? unstarted() : part_;
    for (unsigned i = 0; i < part && unstarted(); i++)
        if (int ret = start(fetch_buf_[kFetchHdr + started_n_++]); ret < 0)
            return ret;
    return 0;
}

int BlkQueue::serve_uring() {
    counters_.path.store(kPathUring, std::memory_order_relaxed);
    for (;;) {
        stopping_now();
        const bool stopping = drain_budget_ >= 0;
        // A fetch started whole goes ahead of the COMMIT; in parts, the
        // COMMIT goes first: the completions reach the guest before this
        // enter starts the next part.
        if (!in_parts_)
            if (int ret = start_part(); ret < 0)
                return ret;
        if (!commits_.empty())
            if (int ret = queue_commit(); ret < 0)
                return ret;
        if (in_parts_)
            if (int ret = start_part(); ret < 0)
                return ret;
        // Ops the last part finished at once (refused, stale) are
        // committed before this enter may wait: nothing else would wake
        // it for them.
        if (!commits_.empty() && !unstarted())
            if (int ret = queue_commit(); ret < 0)
                return ret;
        // The next FETCH once the last one's ops are all started.
        if (!fetch_out_ && !unstarted()) {
            unsigned want = free_.size();
            if (stopping)
                want = std::min<unsigned>(want, static_cast<unsigned>(drain_budget_));
            if (want) {
                // The stop's fetches take what is there and never wait.
                if (int ret = queue_fetch(want, !stopping && !more_); ret < 0)
                    return ret;
            } else if (stopping && free_.size() == size_ && commit_bufs_.idle()) {
                return 0;
            }
        }
        // Wait only for something that will post a CQE: a COMMIT posts
        // none when it succeeds (the stop's last commit is alone).  With
        // parts left to start, do not wait at all (with none left, the
        // commit above took what the last part finished).
        int ret = ring_.submit(inflight_ && !unstarted() ? 1 : 0);
        counters_.enters.store(ring_.enters());
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            return ret;
        // Everything queued went in: the COMMITs' buffers are free again.
        if (!io_uring_sq_ready(&ring_.get()))
            commit_bufs_.submitted();
        if (int err = reap(); err < 0)
            return err;
        if (fallback_)
            return 0;
    }
}

} // namespace hvio
