// SPDX-License-Identifier: GPL-2.0
//
// ring_quiesce(): see ring.h.
#include "ring.h"

#include <cerrno>
#include <chrono>

namespace hvio {

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
