// SPDX-License-Identifier: GPL-2.0
//
// BlkQueue: one virtqueue served by one thread and one io_uring.
//
// The io_uring loop (ublk's FETCH_REQ pattern; Documentation/abi.md,
// HVIO_URING_FETCH), used whenever the module takes io_uring commands:
//
//   One HVIO_URING_FETCH is in the ring whenever there are free slots; its
//   max_fetch is the number of free slots, which no one else takes while
//   it is out.  It waits (HVIO_FETCH_F_WAIT: parked in the kernel until a
//   guest kick) unless the last fetch said HVIO_RUN_OUT_MORE.  Each I/O
//   CQE finishes an op; the completions reaped in one pass go back in one
//   HVIO_URING_COMMIT SQE, submitted with the next I/O SQEs in the same
//   io_uring_enter, which is also where the thread sleeps: a batch costs
//   about one syscall, and the thread sleeps in one place.  Stopping
//   (stop flag set, HVIO_DEV_QUEUE_UNPARK from the control thread) works as
//   below; the stop's FETCHes never wait.
//
// The QUEUE_RUN loop (COMMIT_AND_FETCH in one ioctl), used when the module
// refuses the FETCH (an older hvio.ko: EOPNOTSUPP or EINVAL) or the
// backend has no device fd (tests):
//
//   QUEUE_RUN: commit every finished op, fetch up to as many new ones as
//   there are free slots; turn each into an SQE (or an immediate result);
//   then either go round again at once (results to commit, or the fetch
//   was full so more may wait) or sleep in io_uring_submit_and_wait() for
//   the first completion: an I/O, or the read of the queue's eventfd that
//   is armed whenever the thread may sleep.
//
// No busy polling: the thread sleeps only after a QUEUE_RUN that fetched
// fewer ops than asked, which is when the kernel re-armed guest
// notifications, and every wakeup is followed by another QUEUE_RUN.
//
// A guest reset (QUEUE_RUN returns a new generation; the kernel also
// signals the eventfd) makes every op of an older generation pointless:
// the kernel drops its completion, and the guest's reset is not
// acknowledged until each one is committed.  So ops still in io_uring are
// cancelled, an op fetched already stale is not started, and all of them
// are committed as soon as io_uring gives them back, never resubmitted.
//
// Stopping (stop flag set, eventfd written): a request the guest already
// made available (and kicked) is in flight from its point of view, so the
// queue still fetches what the ring holds, up to one queue's worth (a
// guest that keeps posting cannot hold the daemon), then fetches nothing
// more, waits for every op in flight, commits them all, and returns.
//
// The kernel side is behind QueueBackend so the loop can be tested
// against a fake kernel.
#pragma once

#include "blk.h"
#include "guest_memory.h"
#include "result.h"
#include "ring.h"

#include "tally.h"
#include "unique_fd.h"

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <liburing.h>
#include <linux/hvio.h>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace hvio {

// The kernel side of one queue.
class QueueBackend {
  public:
    virtual ~QueueBackend() = default;
    // HVIO_DEV_QUEUE_RUN: 0 or -errno.
    virtual int run(hvio_queue_run &run) = 0;
    // The op slot of a fetched tag.
    virtual const hvio_op &op(uint16_t tag) const = 0;
    // The device fd for io_uring commands; -1: QUEUE_RUN only.
    virtual int uring_fd() const { return -1; }
    // HVIO_DEV_QUEUE_UNPARK of this queue: 0 or -errno.
    virtual int unpark() { return -ENOTTY; }
};

// Which loop a queue thread runs (QueueCounters::path).
inline constexpr int kPathStarting = 0;
inline constexpr int kPathUring = 1;    // io_uring FETCH / COMMIT
inline constexpr int kPathQueueRun = 2; // HVIO_DEV_QUEUE_RUN and the eventfd

// Counters of the daemon's side of a queue, read by `hvio status` while
// the queue thread writes them.
struct QueueCounters {
    std::atomic<int> path{kPathStarting};
    std::atomic<const char *> ring_mode{"none"}; // Ring::mode()
    Tally runs;                                  // QUEUE_RUN calls (ioctls)
    Tally enters;                                // io_uring_enter calls
    Tally fetches;                               // FETCH CQEs
    Tally commits;                               // COMMIT SQEs
    // Kicks that woke the thread: eventfd reads (QUEUE_RUN loop), or
    // FETCHes with HVIO_FETCH_F_WAIT that completed (io_uring loop).
    Tally wakeups;
    Tally ops; // ops fetched
    Tally reads;
    Tally writes;
    Tally flushes;
    Tally discards;
    Tally write_zeroes;
    Tally other;  // unknown op types
    Tally errors; // ops completed with an error
    Tally bytes_read;
    Tally bytes_written;
    Tally resubmits;                // short transfers, fallbacks
    Tally inflight;                 // ops fetched and not committed
    Tally stale;                    // ops of an older generation given back
    Tally offloaded;                // BLKDISCARDs run on the helper thread
    std::atomic<int> last_error{0}; // latest op error (positive errno)
};

class BlkQueue {
  public:
    // queue_size: the device's queue_size_max (op slots and tags).
    BlkQueue(QueueBackend &kernel, BlkTarget &target, const GuestMemory &mem, uint16_t index,
             unsigned queue_size, int eventfd, const std::atomic<bool> &stop);
    ~BlkQueue();

    BlkQueue(const BlkQueue &) = delete;
    BlkQueue &operator=(const BlkQueue &) = delete;

    // Checks what can be checked before the thread starts (the ring itself
    // is created by run(), in the thread that drives it).
    Result<void> init();

    // Serves the queue until stop is set and everything in flight is
    // committed: 0, or the -errno of a fatal error (QUEUE_RUN or io_uring
    // failing).  Either way the ring has nothing in flight when it returns
    // (ring.h).
    int run();

    const QueueCounters &counters() const { return counters_; }
    uint16_t index() const { return index_; }

  private:
    enum Kind : uint32_t {
        kIo = 1,
        kEventfd = 2,
        kCancel = 3,
        kFetch = 4,
        kCommit = 5,
        kOffload = 6, // the helper thread's eventfd: BLKDISCARDs done
    };

    static uint64_t user_data(Kind k, uint32_t slot) { return uint64_t(k) << 32 | slot; }

    int serve();
    int serve_uring();
    void stopping_now();
    int queue_fetch(unsigned max, bool wait);
    int queue_commit();
    int fetched(int res);
    int start_part();
    unsigned unstarted() const { return fetched_n_ - started_n_; }
    void account(unsigned fetched, bool more, bool after_stop);
    int start(uint16_t tag);
    int submit(uint32_t slot);
    void finish(uint32_t slot, int result);
    int arm_eventfd();
    void new_generation(uint32_t gen);
    bool stale(uint32_t slot) const { return gen_known_ && slots_[slot].generation != gen_; }
    int reap();
    void complete_io(uint32_t slot, int res);
    int offload(uint32_t slot);
    int arm_offload();
    void offload_reaped();
    void offload_main();
    io_uring_sqe *sqe();

    QueueBackend &kernel_;
    BlkTarget &target_;
    const GuestMemory &mem_;
    const uint16_t index_;
    const unsigned size_;
    const int eventfd_;
    const std::atomic<bool> &stop_;

    Ring ring_;
    unsigned inflight_ = 0; // SQEs handed out by sqe(), not yet completed
    bool eventfd_armed_ = false;
    int drain_budget_ = -1; // ops still to fetch once stopping; -1: running
    uint64_t eventfd_buf_ = 0;
    uint32_t gen_ = 0; // the device generation QUEUE_RUN last reported
    bool gen_known_ = false;

    std::vector<BlkIo> slots_;
    std::vector<uint32_t> free_;           // free slot numbers
    std::vector<uint16_t> tags_;           // QUEUE_RUN's fetched tags
    std::vector<hvio_completion> commits_; // finished, to commit
    std::vector<uint8_t> in_ring_;         // by slot: an I/O SQE is out
    unsigned ios_out_ = 0;                 // slots whose in_ring_ is set

    // io_uring loop
    bool fallback_ = false;           // the module refused the FETCH: QUEUE_RUN loop
    bool fetch_ok_ = false;           // a FETCH succeeded (no fallback after that)
    bool fetch_out_ = false;          // a FETCH is in the ring
    bool fetch_wait_ = false;         // ... with HVIO_FETCH_F_WAIT
    unsigned fetch_max_ = 0;          // ... its max_fetch
    bool fetch_after_stop_ = false;   // ... issued once the stop was seen
    bool more_ = false;               // the last fetch said HVIO_RUN_OUT_MORE
    std::vector<uint16_t> fetch_buf_; // hvio_fetch_result, then the tags
    // The last fetch's tags in fetch_buf_ and how many of them are
    // started: a large fetch is started a part at a time (start_part(),
    // queue.cc), and the next FETCH goes out only once all are.
    unsigned fetched_n_ = 0;
    unsigned started_n_ = 0;
    unsigned part_ = 0;         // ops a part starts, for the current fetch
    bool in_parts_ = false;     // ... and it is fewer than the fetch brought
    CommitBuffers commit_bufs_; // of the COMMITs not yet submitted

    // BLKDISCARD off this thread (blk.h, kDiscardIoctl): slots go to the
    // helper thread, which signals offload_efd_ when it finished some.
    std::thread offload_thread_;
    std::mutex offload_mu_;
    std::condition_variable offload_cv_;
    std::vector<uint32_t> offload_todo_;                 // under offload_mu_
    std::vector<std::pair<uint32_t, int>> offload_done_; // under offload_mu_
    bool offload_quit_ = false;                          // under offload_mu_
    UniqueFd offload_efd_;
    bool offload_armed_ = false;
    unsigned offload_out_ = 0; // slots with the helper
    uint64_t offload_buf_ = 0;
    QueueCounters counters_;
};

} // namespace hvio
