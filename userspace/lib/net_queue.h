// SPDX-License-Identifier: GPL-2.0
//
// NetQueue: one virtio-net device (RX = queue 0, TX = queue 1) served by
// one thread and one io_uring (a Ring, created in that thread).
//
// Op delivery (Documentation/abi.md, HVIO_URING_FETCH), whenever the
// module takes io_uring commands (the "uring" path):
//
//   TX: one HVIO_URING_FETCH on queue 1 is in the ring whenever TX slots
//   are free, parked in the kernel (HVIO_FETCH_F_WAIT) until the guest
//   kicks, unless the last fetch said HVIO_RUN_OUT_MORE (the net budget:
//   fetch again at once, without waiting).  RX: the same on queue 0,
//   whenever RX slots are free: a guest's RX kick (new buffers) completes
//   it.  The completions reaped in one pass go back in one
//   HVIO_URING_COMMIT SQE per queue, submitted ahead of the next fetches
//   and reads in the same io_uring_enter (which is where the thread
//   sleeps): a batch costs about one syscall and no ioctl.
//   A status change (DRIVER_OK: the queues attach at the first fetch
//   after it, and a guest posts its RX buffers before) completes the
//   parked fetches with HVIO_DEV_QUEUE_UNPARK, so they look again.
//
// The QUEUE_RUN path, when the module refuses the first FETCH (an older
// hvio.ko: EOPNOTSUPP or EINVAL) or the backend has no device fd (tests):
//
//   TX: QUEUE_RUN on queue 1 fetches NET_TX ops and commits the results of
//   the last ones; RX likewise on queue 0; both queues' kick eventfds
//   (blocking, read with IORING_OP_READ) are in the ring while the thread
//   sleeps, and a QUEUE_RUN follows every wakeup.
//
// TX (either path): each op becomes one writev to the TAP of the header
// the kernel checked (copied from the op slot, never re-read from guest
// RAM) and the frame's segments (straight from guest RAM).
// HVIO_RUN_OUT_MORE (the kernel's fairness budget) means: serve RX, then
// fetch again without sleeping.
//
// RX (either path): up to kRxArmMax ops are kept armed (fetched, not yet
// filled).
// Packets are read only into guest buffers, never into a scratch buffer:
// when the guest posts none, packets wait in the TAP's own queue.  The TAP
// is O_NONBLOCK; while it is believed readable, a round of readv
// (RWF_NOWAIT) SQEs goes out in one io_uring_enter().  They run inline and
// in order: the first ones get packets, the rest -EAGAIN and stay armed.
// A round has rx_batch_ reads, not one per armed op: the batch doubles
// while every read of a round returns a packet (a burst: the next round
// follows at once) and shrinks to one more than the packets found when a
// read finds the TAP empty, so a trickle of packets costs one empty read
// per wakeup instead of one per armed op.  A TAP that refuses RWF_NOWAIT
// (tun before Linux 6.x) is drained with plain readv() calls instead, one
// per armed op until the TAP is empty: each finds a packet but the last.
// After an -EAGAIN the thread arms a POLLIN poll of the TAP and sleeps.
// Each read's byte count is committed as the op's result, as is (the
// kernel handles a truncated packet, count > len, by giving the buffers
// back).
//
// Everything else the thread waits on is in the ring too: the TAP poll, a
// poll of the device fd (HVIO_DEV_GET_EVENTS: FEATURES_OK -> TUNSETOFFLOAD
// with the negotiated offloads, reset -> offloads off and armed ops
// dropped; a reset also completes parked fetches with the new
// generation), a poll of the rtnetlink link watcher (the guest's link
// status follows the TAP's IFF_UP and IFF_RUNNING, with a config-change
// interrupt), and the stop (flag set, then the eventfds written and the
// fetches unparked).  No busy polling: the thread sleeps whenever nothing
// is to commit, no fetch stopped short of what might be there, and no
// armed op can be filled.
//
// Stopping mirrors BlkQueue: TX still fetches what the ring holds when the
// stop comes (up to one queue's worth, never waiting), writes it and
// commits it; armed RX ops are committed with -ECANCELED (the kernel
// offers their buffers again to the next user); no fetch is left in the
// kernel; then run() returns 0.
#pragma once

#include "guest_memory.h"
#include "mapping.h"
#include "net.h"
#include "result.h"
#include "ring.h"
#include "tally.h"

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <deque>
#include <liburing.h>
#include <linux/hvio.h>
#include <string>
#include <sys/uio.h>
#include <vector>

namespace hvio {

// Everything the loop needs from outside, behind one interface so it can
// run against a fake kernel in tests.
class NetBackend {
  public:
    virtual ~NetBackend() = default;
    // HVIO_DEV_QUEUE_RUN on either queue: 0 or -errno.
    virtual int run(hvio_queue_run &run) = 0;
    // The op slot of a fetched tag of a queue.
    virtual const hvio_op &op(uint16_t queue, uint16_t tag) const = 0;
    // HVIO_DEV_GET_EVENTS: 0 or -errno.
    virtual int get_events(hvio_dev_events &ev) = 0;
    // HVIO_DEV_GET_INFO's driver_features: 0 or -errno.
    virtual int driver_features(uint64_t *features) = 0;
    // HVIO_DEV_SET_CONFIG: 0 or -errno.
    virtual int set_config(uint32_t offset, const void *data, uint32_t len, uint32_t flags) = 0;
    // TUNSETOFFLOAD on the TAP: 0 or -errno.
    virtual int set_offload(unsigned tun_flags) = 0;
    // The TAP's IFF_* flags now (after the link watcher lost messages).
    virtual int link_flags(unsigned *ifflags) = 0;
    // The device fd for io_uring commands; -1: QUEUE_RUN only.
    virtual int uring_fd() const { return -1; }
    // HVIO_DEV_QUEUE_UNPARK of a queue: 0 or -errno.
    virtual int unpark(uint16_t /*queue*/) { return -ENOTTY; }
};

// The file descriptors the loop waits on (owned by the caller).
struct NetQueueFds {
    int tap = -1;     // packets, O_NONBLOCK
    int rx_kick = -1; // eventfd of queue 0 (blocking)
    int tx_kick = -1; // eventfd of queue 1 (blocking)
    int dev = -1;     // POLLIN while device events are pending
    int link = -1;    // rtnetlink RTMGRP_LINK socket, or -1 for none
    int ifindex = 0;  // the TAP's, to pick its link messages
};

// Counters for `hvio status`, written by the queue thread.
struct NetCounters {
    std::atomic<int> path{0};                    // kPath* of queue.h: which loop runs
    std::atomic<const char *> ring_mode{"none"}; // Ring::mode()
    Tally runs;                                  // QUEUE_RUN calls (both queues)
    Tally fetches;                               // FETCH CQEs (both queues)
    Tally commits;                               // COMMIT SQEs (both queues)
    // Kicks that woke the thread: eventfd reads (QUEUE_RUN path), or
    // FETCHes with HVIO_FETCH_F_WAIT that completed (uring path).
    Tally wakeups;
    Tally dev_events;                       // HVIO_DEV_GET_EVENTS calls
    Tally tx_packets;                       // frames written to the TAP
    Tally tx_bytes;                         // their bytes, header excluded
    Tally tx_errors;                        // writes that failed
    Tally rx_packets;                       // frames read into guest buffers
    Tally rx_bytes;                         // their bytes, header excluded
    Tally rx_truncated;                     // packets larger than the op
    Tally rx_bounced;                       // packets past an op's first 7 buffers (net.h)
    Tally rx_errors;                        // reads that failed (not EAGAIN)
    Tally rx_canceled;                      // armed ops given back unused
    Tally rx_csum_fixed;                    // partial checksums completed (no GUEST_CSUM)
    Tally rx_offload_dropped;               // GSO packets the guest did not negotiate
    Tally eagain;                           // reads that found the TAP empty
    Tally rx_reads;                         // reads issued (SQEs or readv() calls)
    Tally rx_rounds;                        // rounds of reads while the TAP was readable
    Tally syscalls;                         // of this thread: enters + ioctls + readv/recv
    Tally enters;                           // io_uring_enter() calls
    Tally ioctls;                           // QUEUE_RUN, GET_EVENTS, GET_INFO, SET_CONFIG, TUN*
    Tally waits;                            // enters that may wait (each ends in a wakeup)
    Tally polls;                            // TAP polls armed
    Tally link_changes;                     // link status updates sent
    Tally offload_sets;                     // TUNSETOFFLOAD calls that worked
    Tally resets;                           // device generations seen go by
    std::atomic<uint32_t> offload_flags{0}; // TUN_F_* in force
    std::atomic<uint32_t> link_status{0};   // config status in force
    std::atomic<uint32_t> rx_armed{0};      // RX ops armed now
    std::atomic<uint32_t> rx_batch{0};      // reads in the next round (RWF_NOWAIT)
    std::atomic<uint32_t> tx_inflight{0};   // TX ops fetched, not committed
    std::atomic<int> last_error{0};         // latest error (positive errno)
};

class NetQueue {
  public:
    // At most this many RX ops are armed at once.
    static constexpr unsigned kRxArmMax = 64;
    // The adaptive read batch starts here and never shrinks below
    // kRxBatchMin: one read for the packet that woke us, one to see the
    // TAP empty.
    static constexpr unsigned kRxBatchStart = 8;
    static constexpr unsigned kRxBatchMin = 2;

    // queue_size: the device's queue_size_max (op slots per queue).
    // link_ifflags: the TAP's flags when the config space was made.
    NetQueue(NetBackend &kernel, const GuestMemory &mem, unsigned queue_size,
             const NetQueueFds &fds, unsigned link_ifflags, const std::atomic<bool> &stop,
             std::string where);
    ~NetQueue();

    NetQueue(const NetQueue &) = delete;
    NetQueue &operator=(const NetQueue &) = delete;

    // Checks what can be checked before the thread starts (the ring itself
    // is created by run(), in the thread that drives it).
    Result<void> init();

    // The device was taken over from a daemon that died: its config
    // space's link status is that daemon's, and the guest may have
    // negotiated long ago.  run() then starts by writing the link status
    // of this TAP (with a config interrupt).  Offloads of a device already
    // past FEATURES_OK are applied at start in any case.
    void taken_over() { resync_link_ = true; }

    // Serves the device until stop is set and everything is committed: 0,
    // or the -errno of a fatal error (QUEUE_RUN, a FETCH or io_uring
    // failing).
    // Either way the ring has nothing in flight when it returns (ring.h).
    int run();

    const NetCounters &counters() const { return counters_; }

  private:
    enum Kind : uint32_t {
        kTx = 1,
        kRx,
        kRxKick,
        kTxKick,
        kDevPoll,
        kTapPoll,
        kLinkPoll,
        kCancel,
        kFetch,  // slot: the queue
        kCommit, // slot: the commit buffer
    };
    // The io of one fetched op.
    struct Slot {
        enum State : uint8_t { kFree, kArmed, kReading, kWriting };
        State state = kFree;
        uint16_t tag = 0;
        uint16_t nr_iov = 0;
        uint32_t generation = 0; // low half: compared with the device's
        uint32_t generation_hi = 0;
        uint64_t len = 0;
        uint8_t net_hdr[HVIO_NET_HDR_LEN]; // TX: the op's checked header
        iovec iov[HVIO_OP_MAX_SEGS + 8];
    };

    static uint64_t user_data(Kind k, uint32_t slot) { return uint64_t(k) << 32 | slot; }

    io_uring_sqe *sqe();
    int start();
    int serve();
    int serve_uring();
    void stopping_now();
    int queue_fetch(uint16_t queue, unsigned max, bool wait);
    int queue_commit(uint16_t queue, std::vector<hvio_completion> &commits);
    int fetched(uint16_t queue, int res);
    void tx_fetched(unsigned n, bool more, bool after_stop);
    void unpark_fetches();
    bool can_read() const;
    void quiesce();
    void commit(std::vector<hvio_completion> &to, const Slot &s, int result);
    int run_tx(bool stopping);
    int run_rx(bool stopping);
    int start_tx(uint16_t tag);
    int arm_rx(uint16_t tag);
    void submit_reads();
    void read_round_done();
    int submit(bool wait);
    template <typename F> int kcall(F call);
    void cancel_rx(bool all);
    void prune_armed();
    void rx_done(uint32_t slot, int res);
    void rx_result(uint32_t slot, int res);
    void tx_done(uint32_t slot, int res);
    void new_generation(uint32_t gen);
    int device_events();
    void link_readable();
    void set_link(unsigned ifflags, bool force = false);
    void note_error(int err);
    int arm_waits(bool sleeping, bool kicks);
    int reap();

    NetBackend &kernel_;
    const GuestMemory &mem_;
    const unsigned size_;
    const unsigned rx_cap_;
    const NetQueueFds fds_;
    const std::atomic<bool> &stop_;
    const std::string where_;

    Ring ring_;
    unsigned inflight_ = 0;    // SQEs handed out by sqe(), not yet completed
    uint64_t enters_seen_ = 0; // ring_.enters() already in counters_
    uint64_t waits_seen_ = 0;  // ring_.waits() already in counters_

    // The uring path (io_uring commands)
    struct Fetch {
        bool out = false;          // a FETCH of the queue is in the ring
        bool wait = false;         // ... with HVIO_FETCH_F_WAIT
        bool more = false;         // the last one said HVIO_RUN_OUT_MORE
        unsigned max = 0;          // ... its max_fetch
        bool after_stop = false;   // ... issued once the stop was seen
        std::vector<uint16_t> buf; // hvio_fetch_result, then the tags
    };
    bool fallback_ = false;     // the module refused the FETCH: QUEUE_RUN path
    bool fetch_ok_ = false;     // a FETCH succeeded (no fallback after that)
    Fetch fetch_[2];            // by queue
    CommitBuffers commit_bufs_; // of the COMMITs not yet submitted

    std::vector<Slot> tx_;
    std::vector<uint32_t> tx_free_;
    std::vector<Slot> rx_;
    std::vector<uint32_t> rx_free_;
    std::deque<uint32_t> rx_armed_; // armed slots, in fetch order
    // Per RX slot: how its reads land (rx_read_plan()), and its part of
    // rx_bounce_ (kRxBounce bytes each; pages are touched only by packets
    // that outgrow an op's direct buffers).
    std::vector<RxReadPlan> rx_plan_;
    Mapping rx_bounce_;
    bool rx_long_ = false; // the last packet outgrew the direct part of its plan
    // The iovecs a read of slot s goes by now: its plan, or (rx_long_) all
    // of the op's.
    std::pair<const iovec *, unsigned> rx_read_iov(uint32_t slot);
    unsigned rx_reading_ = 0;   // readv SQEs in flight
    unsigned rx_batch_;         // reads per round (RWF_NOWAIT), adaptive
    unsigned round_reads_ = 0;  // the current round: reads issued,
    unsigned round_filled_ = 0; // how many got a packet (or an error),
    bool round_empty_ = false;  // whether one found the TAP empty
    std::vector<uint16_t> tags_;
    std::vector<hvio_completion> tx_commits_;
    std::vector<hvio_completion> rx_commits_;

    bool tx_run_ = true; // QUEUE_RUN due: kicked, or the last fetch was full
    bool rx_run_ = true;
    bool tap_readable_ = true;
    bool nowait_ = true;           // io_uring reads with RWF_NOWAIT, else readv() (submit_reads())
    unsigned rx_error_streak_ = 0; // reads failing other than with EAGAIN
    int tx_drain_ = -1;            // TX ops still to fetch once stopping
    bool rx_canceled_at_stop_ = false;

    bool rx_kick_armed_ = false, tx_kick_armed_ = false;
    bool dev_poll_armed_ = false, tap_poll_armed_ = false, link_poll_armed_ = false;
    uint64_t rx_kick_buf_ = 0, tx_kick_buf_ = 0;

    bool gen_known_ = false;
    uint32_t gen_ = 0;
    bool offload_applied_ = false; // for gen_
    bool features_known_ = false;  // features_ is gen_'s driver_features
    uint64_t features_ = 0;
    unsigned offload_ = 0;
    uint16_t link_status_ = 0;
    bool resync_link_ = false;

    NetCounters counters_;
};

} // namespace hvio
