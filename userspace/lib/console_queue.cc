// SPDX-License-Identifier: GPL-2.0
//
// ConsoleQueue: the console's io_uring loop (console_queue.h).
#include "console_queue.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <span>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

namespace hvio {

namespace {

constexpr int kQuiesceMs = 5000;

uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ULL + uint64_t(ts.tv_nsec);
}
constexpr size_t kFetchHdr = sizeof(hvio_fetch_result) / sizeof(uint16_t);
static_assert(sizeof(hvio_fetch_result) % sizeof(uint16_t) == 0);

// Every missing directory above PATH's last component, 0755; 0 or -1
// with errno.  A component that exists but is no directory is left to
// fail the caller's symlink() (ENOTDIR).
int make_parents(const std::string &path) {
    for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1)) {
        const std::string dir = path.substr(0, at);
        if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

} // namespace

int ConsolePty::open(const std::string &link_path, std::string *why) {
    auto failed = [why](const char *what) {
        int e = errno;
        *why = std::string(what) + ": " + std::strerror(e);
        return -e;
    };
    master.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
    if (!master)
        return failed("posix_openpt");
    if (::grantpt(master.get()) < 0)
        return failed("grantpt");
    if (::unlockpt(master.get()) < 0)
        return failed("unlockpt");
    char name[PATH_MAX];
    if (int e = ::ptsname_r(master.get(), name, sizeof(name)); e) {
        errno = e;
        return failed("ptsname");
    }
    path = name;
    slave.reset(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave)
        return failed(name);
    // Raw: the guest's bytes go through as they are, both ways.  A
    // terminal that opens the slave may set its own modes.
    termios t;
    if (::tcgetattr(slave.get(), &t) < 0)
        return failed("tcgetattr");
    ::cfmakeraw(&t);
    if (::tcsetattr(slave.get(), TCSANOW, &t) < 0)
        return failed("tcsetattr");
    if (link_path.empty())
        return 0;
    // The link's directory ("/run/hvio") may not exist yet: a fresh /run
    // after boot.  Made like mkdir -p, root's 0755 like /run itself.
    if (make_parents(link_path) < 0)
        return failed(("mkdir for " + link_path).c_str());
    // The link replaces whatever an earlier daemon left there.
    if (::unlink(link_path.c_str()) < 0 && errno != ENOENT)
        return failed(("unlink " + link_path).c_str());
    if (::symlink(name, link_path.c_str()) < 0)
        return failed(("symlink " + link_path).c_str());
    link = link_path;
    return 0;
}

void ConsolePty::remove_link() {
    if (link.empty())
        return;
    char buf[PATH_MAX];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && std::string(buf, static_cast<size_t>(n)) == path)
        (void)::unlink(link.c_str());
    link.clear();
}

void ConsolePty::window(uint16_t *cols, uint16_t *rows) const {
    winsize ws{};
    if (::ioctl(slave.get(), TIOCGWINSZ, &ws) < 0)
        ws = {};
    *cols = ws.ws_col;
    *rows = ws.ws_row;
}

int ConsoleSocket::open(const std::string &socket_path, std::string *why) {
    auto failed = [why](const std::string &what) {
        int e = errno;
        *why = what + ": " + std::strerror(e);
        return -e;
    };
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof(a.sun_path)) {
        errno = ENAMETOOLONG;
        return failed(socket_path);
    }
    std::memcpy(a.sun_path, socket_path.c_str(), socket_path.size() + 1);
    listen.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listen)
        return failed("socket");
    // An old socket file (a daemon that died) is replaced; anything else
    // at that path is not ours to remove.
    struct stat st;
    if (::lstat(socket_path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return failed(socket_path + " (not a socket)");
        }
        (void)::unlink(socket_path.c_str());
    }
    if (::bind(listen.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a)) < 0)
        return failed("bind " + socket_path);
    path = socket_path;
    if (::listen(listen.get(), 4) < 0)
        return failed("listen " + socket_path);
    return 0;
}

void ConsoleSocket::remove() {
    if (!path.empty())
        (void)::unlink(path.c_str());
    path.clear();
}

ConsoleQueue::ConsoleQueue(int dev, const hvio_op *rx_ops, const hvio_op *tx_ops,
                           const GuestMemory &mem, unsigned queue_size, int stream, bool listening,
                           const std::atomic<bool> &stop, std::string where)
    : dev_(dev), ops_{rx_ops, tx_ops}, mem_(mem), size_(queue_size),
      listen_(listening ? stream : -1), fd_(listening ? -1 : stream), stop_(stop),
      where_(std::move(where)) {
    for (auto &b : fetch_buf_)
        b.resize(kFetchHdr + size_);
}

io_uring_sqe *ConsoleQueue::sqe() {
    io_uring_sqe *s = ring_.sqe();
    inflight_ += s != nullptr;
    return s;
}

void ConsoleQueue::publish() {
    counters_.tx_held.store(tx_.size(), std::memory_order_relaxed);
    counters_.rx_held.store(rx_.size(), std::memory_order_relaxed);
    counters_.enters.store(ring_.enters(), std::memory_order_relaxed);
}

int ConsoleQueue::queue_fetch(uint16_t q, unsigned max, bool wait) {
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    hvio_uring_fetch f{};
    f.queue = q;
    f.max_fetch = static_cast<uint16_t>(max);
    f.flags = wait ? HVIO_FETCH_F_WAIT : 0;
    f.result_addr = reinterpret_cast<uintptr_t>(fetch_buf_[q].data());
    prep_uring_cmd(s, dev_, HVIO_URING_FETCH, f);
    io_uring_sqe_set_data64(s, user_data(kFetch, q));
    fetch_out_[q] = true;
    fetch_max_[q] = max;
    return 0;
}

void ConsoleQueue::commit(uint16_t q, const Op &op, int result) {
    hvio_completion c{};
    c.tag = op.tag;
    c.result = result;
    c.generation = static_cast<uint32_t>(op.gen);
    c.generation_hi = static_cast<uint32_t>(op.gen >> 32);
    commits_[q].push_back(c);
    if (gen_known_ && op.gen != gen_) {
        counters_.stale.fetch_add(1, std::memory_order_relaxed);
    } else if (result < 0 && result != -ECANCELED) {
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
        counters_.last_error.store(-result, std::memory_order_relaxed);
    }
}

// One COMMIT SQE per queue with completions; it posts a CQE only when it
// fails, and its buffer must live until it was submitted.
int ConsoleQueue::flush_commits() {
    for (uint16_t q = 0; q < 2; q++) {
        if (commits_[q].empty())
            continue;
        io_uring_sqe *s = ring_.sqe();
        if (!s)
            return -EBUSY;
        commit_bufs_.prep(s, dev_, q, commits_[q]);
        io_uring_sqe_set_data64(s, user_data(kCommit, q));
        counters_.commits.fetch_add(1, std::memory_order_relaxed);
    }
    return 0;
}

// Ops of an older generation are given back as soon as no SQE uses them
// (the head of a queue while its read or write is out).
void ConsoleQueue::release_stale(std::deque<Op> &ops, uint16_t q, bool head_busy) {
    std::deque<Op> keep;
    for (size_t i = 0; i < ops.size(); i++) {
        if (ops[i].gen != gen_ && !(i == 0 && head_busy))
            commit(q, ops[i], -ECANCELED);
        else
            keep.push_back(std::move(ops[i]));
    }
    ops.swap(keep);
}

// Asks io_uring to cancel the read or write in flight (once).
void ConsoleQueue::cancel_io(Kind k, bool &sent) {
    if (sent)
        return;
    io_uring_sqe *s = sqe();
    if (!s)
        return;
    io_uring_prep_cancel64(s, user_data(k, 0), 0);
    io_uring_sqe_set_data64(s, user_data(kCancel, k));
    sent = true;
}

void ConsoleQueue::new_generation(uint64_t gen) {
    if (gen_known_ && gen == gen_)
        return;
    if (gen_known_)
        counters_.resets.fetch_add(1, std::memory_order_relaxed);
    gen_known_ = true;
    gen_ = gen;
    release_stale(tx_, kConsoleTxQueue, write_out_);
    release_stale(rx_, kConsoleRxQueue, read_out_);
    if (!write_out_)
        cur_iov_.clear();
    if (write_out_ && tx_.front().gen != gen_)
        cancel_io(kWrite, write_cancel_);
    if (read_out_ && rx_.front().gen != gen_)
        cancel_io(kRead, read_cancel_);
}

int ConsoleQueue::fetched(uint16_t q, int res) {
    fetch_out_[q] = false;
    if (res < 0)
        return res == -EINTR || res == -EAGAIN || res == -ECANCELED ? 0 : res;
    counters_.fetches.fetch_add(1, std::memory_order_relaxed);
    hvio_fetch_result r;
    std::memcpy(&r, fetch_buf_[q].data(), sizeof(r));
    new_generation(uint64_t(r.generation_hi) << 32 | r.generation);
    more_[q] = (r.out_flags & HVIO_RUN_OUT_MORE) != 0;
    const unsigned n = std::min<unsigned>(static_cast<unsigned>(res), fetch_max_[q]);
    for (unsigned i = 0; i < n; i++) {
        const uint16_t tag = fetch_buf_[q][kFetchHdr + i];
        if (tag >= size_) {
            std::fprintf(stderr, "hvio: %s: kernel fetched tag %u >= %u\n", where_.c_str(), tag,
                         size_);
            return -EPROTO;
        }
        // One copy of the header; the segments are read once, here.
        const hvio_op &slot = ops_[q][tag];
        Op op;
        op.tag = tag;
        op.gen = uint64_t(slot.generation_hi) << 32 | slot.generation;
        op.len = slot.len;
        const unsigned nsegs = std::min<unsigned>(slot.nr_segs, HVIO_OP_MAX_SEGS);
        hvio_op_seg segs[HVIO_OP_MAX_SEGS];
        std::memcpy(segs, slot.segs, nsegs * sizeof(segs[0]));
        const uint8_t type = slot.type;
        op.iov.resize(2 * HVIO_OP_MAX_SEGS);
        int ni = mem_.translate(std::span(segs, nsegs), op.iov);
        if (ni < 0) {
            op.error = ni;
            op.iov.clear();
        } else {
            op.iov.resize(static_cast<size_t>(ni));
        }
        const bool tx = q == kConsoleTxQueue;
        if (type != (tx ? HVIO_OP_WRITE : HVIO_OP_READ))
            op.error = -EOPNOTSUPP;
        if (op.gen != gen_)
            op.error = -ECANCELED;
        if (op.error || (tx && !op.len)) {
            commit(q, op, op.error);
            continue;
        }
        (tx ? counters_.tx_ops : counters_.rx_ops).fetch_add(1, std::memory_order_relaxed);
        if (tx && discarding_) {
            discard(op);
            continue;
        }
        if (tx && tx_.empty())
            progress_ns_ = now_ns(); // TX waits from now on
        (tx ? tx_ : rx_).push_back(std::move(op));
    }
    return 0;
}

int ConsoleQueue::submit_write() {
    Op &op = tx_.front();
    if (cur_iov_.empty()) {
        // What is left of the op after op.done bytes.
        uint64_t skip = op.done;
        for (const iovec &v : op.iov) {
            if (skip >= v.iov_len) {
                skip -= v.iov_len;
                continue;
            }
            cur_iov_.push_back({static_cast<uint8_t *>(v.iov_base) + skip, v.iov_len - skip});
            skip = 0;
        }
    }
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    io_uring_prep_writev(s, fd_, cur_iov_.data(), static_cast<unsigned>(cur_iov_.size()), 0);
    io_uring_sqe_set_data64(s, user_data(kWrite, 0));
    write_out_ = true;
    return 0;
}

void ConsoleQueue::wrote(int res) {
    write_out_ = false;
    write_cancel_ = false;
    cur_iov_.clear();
    Op &op = tx_.front();
    if (op.gen != gen_) {
        commit(kConsoleTxQueue, op, -ECANCELED);
        tx_.pop_front();
        return;
    }
    if (res > 0)
        progress_ns_ = now_ns();
    if (discarding_) {
        // The write stalled() cancelled: what it took counts, the rest
        // goes.
        if (res > 0) {
            op.done += std::min<uint64_t>(static_cast<uint64_t>(res), op.len - op.done);
            counters_.tx_bytes.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
        }
        discard(op);
        tx_.pop_front();
        return;
    }
    if (listen_ >= 0 && (res == -EPIPE || res == -ECONNRESET)) {
        hangup(); // the rest of the op goes to the next client
        return;
    }
    if (res == -EAGAIN || res == -EINTR) {
        counters_.tx_eagain.fetch_add(1, std::memory_order_relaxed);
        if (res == -EAGAIN && !pollout_out_)
            (void)arm_poll(POLLOUT);
        return;
    }
    if (res < 0) {
        commit(kConsoleTxQueue, op, res);
        tx_.pop_front();
        return;
    }
    op.done += static_cast<uint64_t>(res);
    counters_.tx_bytes.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    if (op.done < op.len) {
        counters_.tx_short.fetch_add(1, std::memory_order_relaxed);
        return; // the rest goes with the next writev
    }
    commit(kConsoleTxQueue, op, static_cast<int>(std::min<uint64_t>(op.len, INT32_MAX)));
    tx_.pop_front();
}

// A timeout SQE for when TX will have waited stall_ms without progress.
int ConsoleQueue::arm_stall_timer() {
    const uint64_t limit = uint64_t(stall_ms_) * 1000000ULL, waited = now_ns() - progress_ns_;
    const uint64_t left = waited >= limit ? 1000000ULL : limit - waited;
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    stall_ts_.tv_sec = static_cast<int64_t>(left / 1000000000ULL);
    stall_ts_.tv_nsec = static_cast<long long>(left % 1000000000ULL);
    io_uring_prep_timeout(s, &stall_ts_, 0, 0);
    io_uring_sqe_set_data64(s, user_data(kStall, 0));
    stall_out_ = true;
    return 0;
}

// The stream took nothing for stall_ms while TX ops waited: the guest
// spins on each console write, so its output goes instead of the zone.
void ConsoleQueue::stalled() {
    discarding_ = true;
    dropped_at_stall_ = counters_.tx_dropped.load(std::memory_order_relaxed);
    counters_.stalls.fetch_add(1, std::memory_order_relaxed);
    std::fprintf(stderr,
                 "hvio: %s: console output discarded: %s took nothing for %u ms (stall_ms); "
                 "it resumes when %s\n",
                 where_.c_str(), listen_ >= 0 ? "the socket" : "the PTY", stall_ms_,
                 listen_ >= 0 ? "a client reads" : "someone reads the PTY");
    std::deque<Op> keep;
    for (size_t i = 0; i < tx_.size(); i++) {
        if (i == 0 && write_out_)
            keep.push_back(std::move(tx_[i])); // wrote() discards it
        else
            discard(tx_[i]);
    }
    tx_.swap(keep);
    if (write_out_)
        cancel_io(kWrite, write_cancel_);
    else
        cur_iov_.clear();
}

// An op of the guest's output committed unwritten (the rest of it).
void ConsoleQueue::discard(Op &op) {
    counters_.tx_dropped.fetch_add(op.len - std::min(op.done, op.len), std::memory_order_relaxed);
    commit(kConsoleTxQueue, op, static_cast<int>(std::min<uint64_t>(op.len, INT32_MAX)));
}

// The stream takes bytes again (POLLOUT, a new client).
void ConsoleQueue::resumed() {
    if (!discarding_)
        return;
    discarding_ = false;
    progress_ns_ = now_ns();
    std::fprintf(stderr, "hvio: %s: console output resumes, %llu bytes discarded meanwhile\n",
                 where_.c_str(),
                 static_cast<unsigned long long>(
                     counters_.tx_dropped.load(std::memory_order_relaxed) - dropped_at_stall_));
}

int ConsoleQueue::submit_read() {
    Op &op = rx_.front();
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    io_uring_prep_readv(s, fd_, op.iov.data(), static_cast<unsigned>(op.iov.size()), 0);
    io_uring_sqe_set_data64(s, user_data(kRead, 0));
    read_out_ = true;
    return 0;
}

void ConsoleQueue::read_done(int res) {
    read_out_ = false;
    read_cancel_ = false;
    Op &op = rx_.front();
    if (op.gen != gen_) {
        commit(kConsoleRxQueue, op, -ECANCELED);
        rx_.pop_front();
        return;
    }
    if (listen_ >= 0 && (res == 0 || res == -ECONNRESET)) {
        readable_ = false;
        hangup();
        return;
    }
    if (res <= 0) {
        // -EAGAIN: the PTY is empty; EOF or -EIO (nobody holds the slave,
        // which cannot happen while the daemon holds it) likewise: poll.
        readable_ = false;
        if (res < 0 && res != -EAGAIN && res != -EINTR && res != -EIO && res != -ECANCELED) {
            counters_.errors.fetch_add(1, std::memory_order_relaxed);
            counters_.last_error.store(-res, std::memory_order_relaxed);
        }
        return;
    }
    counters_.rx_bytes.fetch_add(static_cast<uint64_t>(res), std::memory_order_relaxed);
    commit(kConsoleRxQueue, op, res);
    rx_.pop_front();
}

int ConsoleQueue::arm_poll(short events) {
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    io_uring_prep_poll_add(s, fd_, static_cast<unsigned>(events));
    const bool in = events == POLLIN;
    io_uring_sqe_set_data64(s, user_data(in ? kPollIn : kPollOut, 0));
    (in ? pollin_out_ : pollout_out_) = true;
    return 0;
}

// The socket's client left: its reads, writes and polls end at once (the
// shutdown), then serve_stream() closes it and accepts the next client.
void ConsoleQueue::hangup() {
    if (hangup_ || fd_ < 0)
        return;
    hangup_ = true;
    (void)::shutdown(fd_, SHUT_RDWR);
}

void ConsoleQueue::check_size() {
    winsize ws{};
    if (::ioctl(tty_, TIOCGWINSZ, &ws) < 0 || (ws.ws_col == cols_ && ws.ws_row == rows_))
        return;
    if (int r = set_size_(ws.ws_col, ws.ws_row); r < 0) {
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
        counters_.last_error.store(-r, std::memory_order_relaxed);
        return;
    }
    cols_ = ws.ws_col;
    rows_ = ws.ws_row;
    counters_.size_changes.fetch_add(1, std::memory_order_relaxed);
}

int ConsoleQueue::reap() {
    io_uring_cqe *cqe;
    unsigned head, n = 0, n_commit = 0;
    int ret = 0;
    io_uring_for_each_cqe(&ring_.get(), head, cqe) {
        n++;
        const uint64_t ud = io_uring_cqe_get_data64(cqe);
        const uint32_t v = static_cast<uint32_t>(ud);
        switch (static_cast<Kind>(ud >> 32)) {
        case kFetch:
            if (int r = fetched(static_cast<uint16_t>(v & 1), cqe->res); r < 0 && !ret)
                ret = r;
            break;
        case kCommit:
            n_commit++; // only a failed one has a CQE
            if (cqe->res < 0 && !ret)
                ret = cqe->res;
            break;
        case kWrite:
            wrote(cqe->res);
            break;
        case kRead:
            read_done(cqe->res);
            break;
        case kPollIn:
            pollin_out_ = false;
            if (cqe->res > 0 && (cqe->res & (POLLIN | POLLHUP | POLLERR)))
                readable_ = true;
            break;
        case kPollOut:
            pollout_out_ = false;
            if (cqe->res > 0 && (cqe->res & POLLOUT))
                resumed();
            break;
        case kStall:
            stall_out_ = false;
            if (!discarding_ && !tx_.empty() && stall_ms_ &&
                now_ns() - progress_ns_ >= uint64_t(stall_ms_) * 1000000ULL)
                stalled();
            break;
        case kTimer:
            timer_out_ = false;
            check_size();
            break;
        case kAccept:
            accept_out_ = false;
            if (cqe->res >= 0) {
                client_.reset(cqe->res);
                fd_ = cqe->res;
                readable_ = false;
                counters_.clients.fetch_add(1, std::memory_order_relaxed);
                counters_.connected.store(1, std::memory_order_relaxed);
                resumed();
            }
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

int ConsoleQueue::serve() {
    for (;;) {
        const bool stopping = stop_.load(std::memory_order_acquire);
        if (stopping) {
            // Whatever is held goes back, once no SQE uses it.
            if (write_out_)
                cancel_io(kWrite, write_cancel_);
            if (read_out_)
                cancel_io(kRead, read_cancel_);
            if (!write_out_) {
                for (const Op &op : tx_)
                    commit(kConsoleTxQueue, op, -ECANCELED);
                tx_.clear();
            }
            if (!read_out_) {
                for (const Op &op : rx_)
                    commit(kConsoleRxQueue, op, -ECANCELED);
                rx_.clear();
            }
            if (tx_.empty() && rx_.empty() && !fetch_out_[0] && !fetch_out_[1]) {
                if (int r = flush_commits(); r < 0)
                    return r;
                int r = ring_.submit(0);
                return r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY ? r : 0;
            }
        } else {
            if (!fetch_out_[kConsoleTxQueue] && tx_.size() < size_)
                if (int r = queue_fetch(kConsoleTxQueue, size_ - static_cast<unsigned>(tx_.size()),
                                        !more_[kConsoleTxQueue]);
                    r < 0)
                    return r;
            if (int r = serve_stream(); r < 0)
                return r;
            if (stall_ms_ && !tx_.empty() && !discarding_ && !stall_out_)
                if (int r = arm_stall_timer(); r < 0)
                    return r;
            if (tty_ >= 0 && set_size_ && !timer_out_) {
                io_uring_sqe *s = sqe();
                if (!s)
                    return -EBUSY;
                io_uring_prep_timeout(s, &timer_ts_, 0, 0);
                io_uring_sqe_set_data64(s, user_data(kTimer, 0));
                timer_out_ = true;
            }
        }
        if (int r = flush_commits(); r < 0)
            return r;
        publish();
        int r = ring_.submit(inflight_ ? 1 : 0);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            return r;
        if (!io_uring_sq_ready(&ring_.get()))
            commit_bufs_.submitted();
        if (int err = reap(); err < 0)
            return err;
    }
}

// Writes, reads and polls of the stream; with the socket backend, the
// client's end and the next client first.
int ConsoleQueue::serve_stream() {
    if (listen_ >= 0) {
        if (hangup_ && !write_out_ && !read_out_ && !pollin_out_ && !pollout_out_) {
            client_.reset();
            fd_ = -1;
            hangup_ = false;
            readable_ = false;
            counters_.connected.store(0, std::memory_order_relaxed);
        }
        if (hangup_)
            return 0;
        if (fd_ < 0) {
            // No client: TX ops wait for one, input there is none.
            if (!accept_out_) {
                io_uring_sqe *s = sqe();
                if (!s)
                    return -EBUSY;
                io_uring_prep_accept(s, listen_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                io_uring_sqe_set_data64(s, user_data(kAccept, 0));
                accept_out_ = true;
            }
            return 0;
        }
    }
    if (!tx_.empty() && !write_out_ && !pollout_out_)
        if (int r = submit_write(); r < 0)
            return r;
    // Discarding: POLLOUT says the stream takes bytes again.
    if (discarding_ && !write_out_ && !pollout_out_)
        if (int r = arm_poll(POLLOUT); r < 0)
            return r;
    if (readable_) {
        if (!rx_.empty()) {
            if (!read_out_)
                if (int r = submit_read(); r < 0)
                    return r;
        } else if (!fetch_out_[kConsoleRxQueue]) {
            // Input waits: ask for the guest's buffers (parked until it
            // posts some).
            if (int r = queue_fetch(kConsoleRxQueue, size_, true); r < 0)
                return r;
        }
    } else if (!pollin_out_ && !read_out_) {
        if (int r = arm_poll(POLLIN); r < 0)
            return r;
    }
    return 0;
}

int ConsoleQueue::run() {
    // At most: two fetches, a write, a read, two polls, two commits, and
    // their cancels.
    if (auto r = ring_.init(32); !r)
        return -r.error();
    int ret = serve();
    publish();
    std::vector<uint64_t> each{user_data(kFetch, 0),  user_data(kFetch, 1),  user_data(kWrite, 0),
                               user_data(kRead, 0),   user_data(kPollIn, 0), user_data(kPollOut, 0),
                               user_data(kAccept, 0), user_data(kTimer, 0),  user_data(kStall, 0)};
    if (ring_quiesce(ring_.get(), inflight_, user_data(kCancel, 0), each, kQuiesceMs) < 0)
        std::fprintf(stderr, "hvio: %s: %u io_uring requests could not be cancelled in %d ms\n",
                     where_.c_str(), inflight_, kQuiesceMs);
    return ret;
}

} // namespace hvio
