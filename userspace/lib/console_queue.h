// SPDX-License-Identifier: GPL-2.0
//
// ConsoleQueue: one virtio-console (port 0: receiveq0 = queue 0,
// transmitq0 = queue 1) served by one thread and one io_uring (a Ring,
// created in that thread) against a byte stream: the PTY master, or the
// client of a UNIX socket.
//
// Everything goes through the ring: the device fd's HVIO_URING_FETCH and
// HVIO_URING_COMMIT, the PTY's reads and writes (readv/writev SQEs, the
// master is O_NONBLOCK) and its polls.
//
//   TX: one FETCH on queue 1 is in the ring whenever TX slots are free,
//   parked in the kernel (HVIO_FETCH_F_WAIT) until the guest kicks.  The
//   ops are written in order, one writev at a time, from guest RAM to the
//   PTY.  A short write keeps the rest; -EAGAIN arms a POLLOUT poll and
//   the write is retried when the PTY is writable.  An op is committed
//   only once all its bytes are out, so while the terminal reads, however
//   slowly, nothing is dropped: the guest's TX ring fills and waits.
//
//   But a Linux guest waits for each console write by spinning, with
//   interrupts off (virtio_console's put_chars, for hvc0 and the kernel's
//   console alike), so a console nobody reads would freeze the zone.  When
//   the stream has taken no byte for stall_ms while TX ops wait (nobody
//   reads the PTY, no socket client), the held ops are committed as if
//   written and the output is discarded (tx_dropped bytes, stalls, one
//   line per stall) until the stream is writable again (POLLOUT, or a new
//   socket client).  stall_ms 0: wait for ever, never discard.
//
//   RX: the PTY is polled for POLLIN first; only when it has input is a
//   FETCH on queue 0 queued (parked until the guest posts buffers if it
//   has none), and each op's buffers get one readv; the count read is the
//   op's result (the used length).  Input typed while the guest posts no
//   buffers waits in the PTY.
//
// The daemon keeps the PTY's slave open itself (O_NOCTTY), so a terminal
// that opens and closes the slave never hangs the master up: the console
// keeps working for the next opener (hvisor-tool issue #121).
//
// A TTY takes no RWF_NOWAIT, and io_uring does not return -EAGAIN for an
// O_NONBLOCK file it can poll: it waits for the PTY to become readable or
// writable and retries.  So a read or write SQE may stay in the ring for
// as long as the terminal types nothing or reads nothing; it is cancelled
// when its op must go (a reset, the stop).
//
// A reset (a fetch reports a new generation) makes older ops pointless:
// they are committed with -ECANCELED (the kernel drops them; the guest's
// reset waits for them), a read or write still using one is cancelled
// first.  Stopping (stop flag set, the daemon unparks both fetches): the
// read or write in flight is cancelled, every op still held is committed
// with -ECANCELED, nothing stays in the ring, run() returns 0.
// With the socket backend ("socket": PATH) the stream is one client at a
// time, accepted with an io_uring accept: a second client waits in the
// listen backlog until the first leaves.  A client that leaves (EOF,
// EPIPE, ECONNRESET) is shut down, closed once no SQE uses it, and the
// next one accepted; TX ops wait while no client is connected (the rest
// of an op partly written goes to the next client), and input there is
// none.
//
// F_SIZE: with a PTY the queue looks at the slave's window size
// (TIOCGWINSZ) once a second (an io_uring timeout: nothing tells the
// master when a terminal changes it) and hands a change to set_size
// (HVIO_DEV_SET_CONFIG of cols and rows with HVIO_CONFIG_F_NOTIFY: a
// configuration-change interrupt).
//
// Only the io_uring path is implemented: a module that refuses the FETCH
// makes run() fail with its error.
#pragma once

#include "guest_memory.h"
#include "result.h"
#include "ring.h"
#include "unique_fd.h"

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <linux/hvio.h>
#include <string>
#include <sys/uio.h>
#include <vector>

namespace hvio {

inline constexpr uint16_t kConsoleRxQueue = 0; // receiveq0
inline constexpr uint16_t kConsoleTxQueue = 1; // transmitq0

// The PTY of a console: the master (O_NONBLOCK, raw mode) the queue
// serves, and the slave the daemon holds open itself (O_NOCTTY) so that a
// terminal closing it never hangs the master up.  link: a symlink to the
// slave's path made by open(), removed by remove_link() if it still points
// there.
struct ConsolePty {
    UniqueFd master;
    UniqueFd slave;
    std::string path; // "/dev/pts/3"
    std::string link; // empty: none

    // 0, or -errno with *why saying which step failed.
    int open(const std::string &link_path, std::string *why);
    void remove_link();
    // The slave's window size (TIOCGWINSZ), 0 x 0 if unknown.
    void window(uint16_t *cols, uint16_t *rows) const;
};

// The UNIX stream socket of a console (the "socket" key): listening at
// path (an old socket file there replaced), removed by remove().
struct ConsoleSocket {
    UniqueFd listen;
    std::string path;

    // 0, or -errno with *why saying which step failed.
    int open(const std::string &socket_path, std::string *why);
    void remove();
};

// Read by `hvio status` while the queue thread writes them.
struct ConsoleCounters {
    std::atomic<uint64_t> fetches{0};
    std::atomic<uint64_t> commits{0}; // COMMIT SQEs
    std::atomic<uint64_t> tx_ops{0};
    std::atomic<uint64_t> tx_bytes{0};
    std::atomic<uint64_t> tx_short{0}; // writes that took only part
    std::atomic<uint64_t> tx_eagain{0};
    std::atomic<uint64_t> rx_ops{0};
    std::atomic<uint64_t> rx_bytes{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> stale{0}; // ops of an older generation given back
    std::atomic<uint64_t> resets{0};
    std::atomic<uint64_t> tx_held{0}; // TX ops fetched, not yet committed
    std::atomic<uint64_t> rx_held{0}; // RX ops fetched, not yet filled
    std::atomic<uint64_t> enters{0};
    std::atomic<uint64_t> clients{0};      // socket: connections accepted
    std::atomic<uint64_t> size_changes{0}; // window sizes given to the guest
    std::atomic<uint64_t> tx_dropped{0};   // bytes discarded: nobody read (stall_ms)
    std::atomic<uint64_t> stalls{0};       // times the output started being discarded
    std::atomic<int> connected{0};         // socket: a client is being served
    std::atomic<int> last_error{0};
};

class ConsoleQueue {
  public:
    // dev: the device fd; ops[q]: queue q's op slots; stream: the PTY's
    // master (O_NONBLOCK), or a listening UNIX socket when listening.
    // All owned by the caller and alive until run() returns.
    ConsoleQueue(int dev, const hvio_op *rx_ops, const hvio_op *tx_ops, const GuestMemory &mem,
                 unsigned queue_size, int stream, bool listening, const std::atomic<bool> &stop,
                 std::string where);

    // F_SIZE: watch tty's window size, starting from cols x rows (what
    // the config space says); set_size(cols, rows) returns 0 or -errno.
    void watch_size(int tty, uint16_t cols, uint16_t rows,
                    std::function<int(uint16_t, uint16_t)> set_size) {
        tty_ = tty;
        cols_ = cols;
        rows_ = rows;
        set_size_ = std::move(set_size);
    }
    // How long TX ops may wait for a stream that takes nothing before the
    // output is discarded; 0: for ever.
    void set_stall_ms(unsigned ms) { stall_ms_ = ms; }
    ConsoleQueue(const ConsoleQueue &) = delete;
    ConsoleQueue &operator=(const ConsoleQueue &) = delete;

    // Serves the console until stop is set: 0, or the -errno of a fatal
    // error.  Either way the ring has nothing in flight when it returns.
    int run();

    const ConsoleCounters &counters() const { return counters_; }

  private:
    enum Kind : uint32_t {
        kFetch = 1, // slot: the queue
        kCommit = 2,
        kWrite = 3,
        kRead = 4,
        kPollIn = 5,
        kPollOut = 6,
        kCancel = 7,
        kAccept = 8,
        kTimer = 9,
        kStall = 10,
    };
    struct Op {
        uint16_t tag = 0;
        uint64_t gen = 0;
        uint64_t len = 0;
        uint64_t done = 0; // TX: bytes written so far
        std::vector<iovec> iov;
        int error = 0; // translation failed: committed with it
    };

    static uint64_t user_data(Kind k, uint32_t v) { return uint64_t(k) << 32 | v; }

    int serve();
    int reap();
    io_uring_sqe *sqe();
    int queue_fetch(uint16_t q, unsigned max, bool wait);
    int fetched(uint16_t q, int res);
    void commit(uint16_t q, const Op &op, int result);
    int flush_commits();
    int submit_write();
    int submit_read();
    int arm_poll(short events);
    void wrote(int res);
    void read_done(int res);
    void new_generation(uint64_t gen);
    void release_stale(std::deque<Op> &ops, uint16_t q, bool head_busy);
    void publish();
    void cancel_io(Kind k, bool &sent);
    void hangup();
    void check_size();
    int serve_stream();
    int arm_stall_timer();
    void stalled();
    void discard(Op &op);
    void resumed();

    const int dev_;
    const hvio_op *const ops_[2];
    const GuestMemory &mem_;
    const unsigned size_;
    const int listen_; // socket backend: the listening socket, else -1
    int fd_;           // the stream: the PTY master or the client, -1: none
    UniqueFd client_;  // socket backend: the client being served
    bool accept_out_ = false;
    bool hangup_ = false; // the client left: close it once no SQE uses it
    int tty_ = -1;        // F_SIZE: the PTY's slave, -1: no size to watch
    uint16_t cols_ = 0, rows_ = 0;
    std::function<int(uint16_t, uint16_t)> set_size_;
    bool timer_out_ = false;
    __kernel_timespec timer_ts_{1, 0};
    const std::atomic<bool> &stop_;
    const std::string where_;

    Ring ring_;
    unsigned inflight_ = 0; // SQEs with a CQE to come
    uint64_t gen_ = 0;
    bool gen_known_ = false;

    bool fetch_out_[2] = {false, false};
    unsigned fetch_max_[2] = {0, 0};
    bool more_[2] = {false, false};
    std::vector<uint16_t> fetch_buf_[2];
    std::vector<hvio_completion> commits_[2];
    CommitBuffers commit_bufs_; // of the COMMITs not yet submitted

    std::deque<Op> tx_;          // in guest order; the head is being written
    std::deque<Op> rx_;          // armed, in guest order; the head is being read into
    std::vector<iovec> cur_iov_; // the write in flight: what is left of tx_.front()
    bool write_out_ = false;
    bool read_out_ = false;
    bool pollin_out_ = false;
    bool pollout_out_ = false;
    bool readable_ = false;     // POLLIN seen, no -EAGAIN since
    bool write_cancel_ = false; // a cancel of the write in flight is out
    bool read_cancel_ = false;  // ... of the read

    unsigned stall_ms_ = 0;
    uint64_t progress_ns_ = 0; // the stream last took bytes (or TX began to wait)
    bool stall_out_ = false;   // the stall timer is in the ring
    __kernel_timespec stall_ts_{};
    bool discarding_ = false; // stalled: TX ops are committed unwritten
    uint64_t dropped_at_stall_ = 0;
    ConsoleCounters counters_;
};

} // namespace hvio
