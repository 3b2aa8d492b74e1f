// SPDX-License-Identifier: GPL-2.0
//
// Ring and ring_quiesce(): see ring.h.
#include "ring.h"

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace hvio {

Ring::~Ring() {
    if (ok_)
        io_uring_queue_exit(&ring_);
}

Result<void> Ring::init(unsigned entries, SetupFn setup) {
    struct Try {
        unsigned flags;
        const char *mode;
    };
    // Older kernels refuse unknown setup flags with EINVAL.
    static constexpr Try tries[] = {
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "defer_taskrun"},
        {IORING_SETUP_COOP_TASKRUN, "coop_taskrun"},
        {0, "plain"},
    };
    int ret = -EINVAL;
    for (const Try &t : tries) {
        io_uring_params p{};
        p.flags = t.flags;
        ret = setup(entries, &ring_, &p);
        if (ret == 0) {
            ok_ = true;
            mode_ = t.mode;
            return {};
        }
        if (ret != -EINVAL)
            break;
    }
    return Error(-ret);
}

int Ring::register_files(std::span<const int> fds) {
    int ret = io_uring_register_files(&ring_, fds.data(), static_cast<unsigned>(fds.size()));
    if (ret == 0)
        files_.assign(fds.begin(), fds.end());
    return ret;
}

void CommitBuffers::prep(io_uring_sqe *s, int dev, uint16_t queue,
                         std::vector<hvio_completion> &commits, uint32_t flags) {
    uint32_t b;
    if (free_.empty()) {
        b = static_cast<uint32_t>(bufs_.size());
        bufs_.emplace_back().reserve(reserve_);
    } else {
        b = free_.back();
        free_.pop_back();
    }
    // The completions move to this COMMIT's buffer; commits gets its old
    // (empty) storage.
    bufs_[b].swap(commits);
    commits.clear();
    hvio_uring_commit c{};
    c.queue = queue;
    c.nr_commit = static_cast<uint16_t>(bufs_[b].size());
    c.flags = flags;
    c.commits_addr = reinterpret_cast<uintptr_t>(bufs_[b].data());
    prep_uring_cmd(s, dev, HVIO_URING_COMMIT, c);
    s->flags |= IOSQE_CQE_SKIP_SUCCESS;
    unsent_.push_back(b);
}

void CommitBuffers::submitted() {
    free_.insert(free_.end(), unsent_.begin(), unsent_.end());
    unsent_.clear();
}

void Ring::fix(io_uring_sqe *s) const {
    if (s->flags & IOSQE_FIXED_FILE)
        return;
    auto it = std::find(files_.begin(), files_.end(), s->fd);
    if (it == files_.end())
        return;
    s->fd = static_cast<int>(it - files_.begin());
    s->flags |= IOSQE_FIXED_FILE;
}

io_uring_sqe *Ring::sqe() {
    io_uring_sqe *s = io_uring_get_sqe(&ring_);
    if (!s) {
        submit(0);
        s = io_uring_get_sqe(&ring_);
    }
    return s;
}

int Ring::submit(unsigned wait) {
    // A completion already there: no need to wait (liburing would enter
    // for a wait anyway), and no syscall at all when nothing is queued.
    if (wait && io_uring_cq_ready(&ring_))
        wait = 0;
    const bool queued = io_uring_sq_ready(&ring_) > 0;
    if (!queued && !wait)
        return 0;
    enters_++;
    waits_ += wait > 0;
    return wait ? io_uring_submit_and_wait(&ring_, wait) : io_uring_submit(&ring_);
}

namespace {

bool cancel(io_uring &ring, uint64_t what, unsigned flags, uint64_t cancel_data) {
    io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s) {
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    if (!s)
        return false;
    io_uring_prep_cancel64(s, what, static_cast<int>(flags));
    io_uring_sqe_set_data64(s, cancel_data);
    return true;
}

} // namespace

int ring_quiesce(io_uring &ring, unsigned &inflight, uint64_t cancel_data,
                 std::span<const uint64_t> fallback, int timeout_ms) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
    unsigned cancels = 0; // cancel requests in flight
    bool sent = false;
    while (inflight || cancels) {
        if (!sent && inflight) {
            sent = true;
            cancels += cancel(ring, 0, IORING_ASYNC_CANCEL_ANY, cancel_data);
        }
        io_uring_submit(&ring);
        const auto left =
            std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
        if (left.count() <= 0)
            return -ETIMEDOUT;
        __kernel_timespec ts{static_cast<long long>(left.count() / 1000000000),
                             static_cast<long long>(left.count() % 1000000000)};
        io_uring_cqe *cqe;
        int r = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
        if (r < 0 && r != -EINTR && r != -ETIME)
            return r;
        unsigned head, n = 0;
        bool refused = false;
        io_uring_for_each_cqe(&ring, head, cqe) {
            n++;
            if (io_uring_cqe_get_data64(cqe) == cancel_data) {
                cancels -= cancels > 0;
                refused |= cqe->res == -EINVAL;
            } else if (inflight && !(cqe->flags & IORING_CQE_F_MORE)) {
                inflight--;
            }
        }
        io_uring_cq_advance(&ring, n);
        if (refused) // no IORING_ASYNC_CANCEL_ANY: one by one
            for (uint64_t ud : fallback)
                cancels += cancel(ring, ud, 0, cancel_data);
    }
    return 0;
}

} // namespace hvio
