// SPDX-License-Identifier: GPL-2.0
//
// What every io_uring of the daemon does before it goes away.
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

#include <cstdint>
#include <liburing.h>
#include <span>

namespace hvio {

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
