// SPDX-License-Identifier: GPL-2.0
//
// Ring: the io_uring of one queue thread, and what every io_uring of the
// daemon does before it goes away.
//
// A Ring is created in the thread that drives it, with
// IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (completions
// are posted only when that thread enters the kernel to wait, so it is
// never interrupted), falling back to IORING_SETUP_COOP_TASKRUN and then
// to no flags on kernels without them.  Files can be registered (fixed
// files; fix() turns an SQE on one of them into a fixed-file SQE), but a
// registered file is released only with the ring, in a kernel worker
// after the process died: not the device fd or an image whose release a
// restarted daemon waits for.
// The ring counts its io_uring_enter calls and the ones that waited
// (the daemon's syscalls_per_req and wakeups_per_req).
//
// A request parked in an io_uring (a poll of the device fd, a read of an
// eventfd, I/O not yet complete) holds a reference to its file.  Once the
// ring's fd is closed the kernel cancels such requests asynchronously (its
// exit work runs on a workqueue, and a file released from there is put by
// yet another deferred work), possibly after the process has been reaped:
// `rmmod hvio` right after the daemon exited would find the module still
// in use by a device file nobody holds any more.  So a queue thread, before
// it returns, cancels everything in its ring and reaps every completion:
// the cancellations and the file releases then happen in its own context,
// and the ring holds nothing when it is closed.
#pragma once

#include "result.h"

#include <cstdint>
#include <cstring>
#include <liburing.h>
#include <linux/hvio.h>
#include <span>
#include <vector>

namespace hvio {

class Ring {
  public:
    Ring() = default;
    ~Ring();
    Ring(const Ring &) = delete;
    Ring &operator=(const Ring &) = delete;

    // io_uring_queue_init_params() or a stand-in with its contract: 0, or
    // -errno (EINVAL: setup flags the kernel does not know).
    using SetupFn = int (*)(unsigned entries, io_uring *ring, io_uring_params *p);

    // Sets the ring up in the calling thread, with room for entries SQEs
    // (and twice that many CQEs).  setup is for tests, which refuse flags
    // to see the fall-back steps.
    Result<void> init(unsigned entries, SetupFn setup = io_uring_queue_init_params);
    bool ok() const { return ok_; }
    io_uring &get() { return ring_; }
    // "defer_taskrun", "coop_taskrun" or "plain": what init() got.
    const char *mode() const { return mode_; }

    // Registers fds as fixed files 0..n-1 (best effort: without them the
    // SQEs keep plain fds).  Returns 0 or -errno.
    int register_files(std::span<const int> fds);
    // If s names a registered file, make it use the fixed slot.
    void fix(io_uring_sqe *s) const;

    // A free SQE; when the SQ is full it is submitted first.
    io_uring_sqe *sqe();
    // io_uring_submit_and_wait(wait), counted: 0 or more, or -errno.
    int submit(unsigned wait);

    uint64_t enters() const { return enters_; }
    uint64_t waits() const { return waits_; }

  private:
    io_uring ring_{};
    bool ok_ = false;
    const char *mode_ = "none";
    std::vector<int> files_;
    uint64_t enters_ = 0;
    uint64_t waits_ = 0;
};

// An IORING_OP_URING_CMD SQE of fd: command op with its 16-byte payload
// (the device fd's HVIO_URING_FETCH and HVIO_URING_COMMIT).
template <typename T> void prep_uring_cmd(io_uring_sqe *s, int fd, uint32_t op, const T &payload) {
    static_assert(sizeof(T) == 16);
    io_uring_prep_rw(IORING_OP_URING_CMD, s, fd, nullptr, 0, 0);
    s->cmd_op = op;
    std::memcpy(s->cmd, &payload, sizeof(payload));
}

// The completions of HVIO_URING_COMMIT SQEs.  The kernel copies them when
// io_uring_enter submits the SQE, so each buffer lives until then and is
// reused afterwards.  A COMMIT posts a CQE only when it fails
// (IOSQE_CQE_SKIP_SUCCESS): callers do not count it among their SQEs in
// flight.
class CommitBuffers {
  public:
    // Buffers get room for reserve completions when first made.
    explicit CommitBuffers(size_t reserve = 0) : reserve_(reserve) {}
    // Moves commits (left empty) into a buffer and makes s the COMMIT of
    // queue on the device fd dev, with flags (HVIO_COMMIT_F_*).
    void prep(io_uring_sqe *s, int dev, uint16_t queue, std::vector<hvio_completion> &commits,
              uint32_t flags = 0);
    // Everything queued was submitted: the buffers are free again.
    void submitted();
    // No COMMIT waits to be submitted.
    bool idle() const { return unsent_.empty(); }

  private:
    size_t reserve_;
    std::vector<std::vector<hvio_completion>> bufs_;
    std::vector<uint32_t> free_;
    std::vector<uint32_t> unsent_;
};

// Cancels every request in flight in ring and reaps completions until
// *inflight (the caller's count of SQEs submitted and not yet completed;
// each CQE reaped here takes one off) is 0, for at most timeout_ms.
// cancel_data: the user_data of the cancel requests, which the caller's
// count does not include.  A kernel without IORING_ASYNC_CANCEL_ANY
// (before 5.19) gets one cancel per user_data in fallback instead.
// The completions are discarded.  Returns 0, or -ETIMEDOUT with
// *inflight still > 0 (something could not be cancelled in time).
int ring_quiesce(io_uring &ring, unsigned &inflight, uint64_t cancel_data,
                 std::span<const uint64_t> fallback, int timeout_ms);

} // namespace hvio
