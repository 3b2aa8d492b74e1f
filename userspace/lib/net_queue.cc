// SPDX-License-Identifier: GPL-2.0
//
// NetQueue: the per-device io_uring loop of virtio-net.
//
// Ops live in slots (as in BlkQueue): TX has queue_size of them, RX
// kRxArmMax; a fetch never asks for more ops than there are free slots.
// Each slot's iovecs point into the daemon's mapping of zone RAM, so the
// TAP reads and writes guest buffers directly.
#include "net_queue.h"

#include "net.h"
#include "queue.h"
#include "ring.h"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <endian.h>
#include <linux/netlink.h>
#include <linux/virtio_config.h>
#include <poll.h>
#include <span>
#include <sys/socket.h>

namespace hvio {

namespace {

static_assert(offsetof(hvio_op, net_hdr) == 32 && offsetof(hvio_op, segs) == 48,
              "struct hvio_op of API version 2");

// Reads failing this many times in a row (other than with EAGAIN: the TAP
// was deleted, say) stop RX until the link changes, instead of spinning.
constexpr unsigned kMaxRxErrorStreak = 16;

// The longest packet a TAP read returns: a slot's bounce (rx_read_plan()).
constexpr size_t kRxBounce = HVIO_NET_HDR_LEN + HVIO_NET_MAX_FRAME;

// How long the exit path waits for the ring's requests to be cancelled.
constexpr int kQuiesceMs = 5000;

// u16 elements of a FETCH result before its tags.
constexpr size_t kFetchHdr = sizeof(hvio_fetch_result) / sizeof(uint16_t);
static_assert(sizeof(hvio_fetch_result) % sizeof(uint16_t) == 0);

} // namespace

NetQueue::NetQueue(NetBackend &kernel, const GuestMemory &mem, unsigned queue_size,
                   const NetQueueFds &fds, unsigned link_ifflags, const std::atomic<bool> &stop,
                   std::string where)
    : kernel_(kernel), mem_(mem), size_(queue_size),
      rx_cap_(std::min<unsigned>(kRxArmMax, queue_size)), fds_(fds), stop_(stop),
      where_(std::move(where)), tx_(queue_size), rx_(rx_cap_), rx_plan_(rx_cap_),
      rx_batch_(std::min(kRxBatchStart, rx_cap_)), tags_(queue_size) {
    for (uint32_t i = size_; i-- > 0;)
        tx_free_.push_back(i);
    for (uint32_t i = rx_cap_; i-- > 0;)
        rx_free_.push_back(i);
    tx_commits_.reserve(size_);
    rx_commits_.reserve(rx_cap_);
    commit_bufs_ = CommitBuffers(size_);
    link_status_ = net_link_status(link_ifflags);
    counters_.link_status.store(link_status_, std::memory_order_relaxed);
    counters_.rx_batch.store(rx_batch_, std::memory_order_relaxed);
    for (Fetch &f : fetch_)
        f.buf.resize(kFetchHdr + queue_size);
}

NetQueue::~NetQueue() = default;

Result<void> NetQueue::init() {
    if (size_ == 0 || size_ > HVIO_MAX_QUEUE_SIZE)
        return Error(EINVAL);
    // Address space only: a page is backed once a packet lands in it.
    auto m = Mapping::map(-1, size_t(rx_cap_) * kRxBounce, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, 0);
    if (!m)
        return Error(m.error());
    rx_bounce_ = std::move(*m);
    return {};
}

io_uring_sqe *NetQueue::sqe() {
    // Ring submits when the SQ is full (see run() for why it never is).
    io_uring_sqe *s = ring_.sqe();
    inflight_ += s != nullptr;
    return s;
}

// Ring::submit() for one completion or none, its io_uring_enter calls
// (also those of a full SQ) counted.
int NetQueue::submit(bool wait) {
    const int ret = ring_.submit(wait ? 1 : 0);
    const uint64_t enters = ring_.enters() - enters_seen_, waits = ring_.waits() - waits_seen_;
    enters_seen_ = ring_.enters();
    waits_seen_ = ring_.waits();
    counters_.enters.add(enters);
    counters_.syscalls.add(enters);
    counters_.waits.add(waits);
    return ret;
}

// A call into the kernel backend (one ioctl on the device fd or the TAP).
template <typename F> int NetQueue::kcall(F call) {
    counters_.ioctls.add();
    counters_.syscalls.add();
    return call();
}

void NetQueue::note_error(int err) { counters_.last_error.store(err, std::memory_order_relaxed); }

void NetQueue::commit(std::vector<hvio_completion> &to, const Slot &s, int result) {
    hvio_completion c{};
    c.tag = s.tag;
    c.result = result;
    c.generation = s.generation;
    c.generation_hi = s.generation_hi;
    to.push_back(c);
}

// ---- TX ------------------------------------------------------------------

void NetQueue::tx_done(uint32_t slot, int res) {
    Slot &s = tx_[slot];
    commit(tx_commits_, s, res);
    s.state = Slot::kFree;
    tx_free_.push_back(slot);
    if (res >= 0) {
        counters_.tx_packets.add();
        if (res > HVIO_NET_HDR_LEN)
            counters_.tx_bytes.add(res - HVIO_NET_HDR_LEN);
    } else {
        counters_.tx_errors.add();
        note_error(-res);
    }
}

int NetQueue::start_tx(uint16_t tag) {
    if (tag >= size_) {
        std::fprintf(stderr, "hvio: %s TX: kernel fetched tag %u >= %u\n", where_.c_str(), tag,
                     size_);
        return -EPROTO;
    }
    const hvio_op &op = kernel_.op(HVIO_NET_TX_QUEUE, tag);
    uint32_t slot = tx_free_.back();
    tx_free_.pop_back();
    Slot &s = tx_[slot];
    s.tag = tag;
    s.generation = op.generation;
    s.generation_hi = op.generation_hi;
    s.len = op.len;
    if (op.type != HVIO_OP_NET_TX || op.nr_segs > HVIO_OP_MAX_SEGS) {
        tx_done(slot, -EINVAL);
        return 0;
    }
    // The header as the kernel checked it, then the frame: a guest that
    // rewrites the header in its memory meanwhile changes nothing.
    std::memcpy(s.net_hdr, op.net_hdr, sizeof(s.net_hdr));
    s.iov[0] = {s.net_hdr, sizeof(s.net_hdr)};
    int n = mem_.translate(std::span(op.segs, op.nr_segs), std::span(s.iov).subspan(1));
    if (n <= 0) {
        tx_done(slot, n < 0 ? -EFAULT : -EINVAL);
        return 0;
    }
    s.nr_iov = static_cast<uint16_t>(n + 1);
    s.state = Slot::kWriting;
    io_uring_sqe *q = sqe();
    if (!q) {
        tx_done(slot, -EBUSY);
        return 0;
    }
    io_uring_prep_writev(q, fds_.tap, s.iov, s.nr_iov, 0);
    io_uring_sqe_set_data64(q, user_data(kTx, slot));
    return 0;
}

int NetQueue::run_tx(bool stopping) {
    unsigned want = static_cast<unsigned>(tx_free_.size());
    if (stopping)
        want = std::min<unsigned>(want, static_cast<unsigned>(std::max(tx_drain_, 0)));
    hvio_queue_run r{};
    r.queue = HVIO_NET_TX_QUEUE;
    r.nr_commit = static_cast<uint16_t>(tx_commits_.size());
    r.max_fetch = static_cast<uint16_t>(want);
    r.commits_addr = reinterpret_cast<uintptr_t>(tx_commits_.data());
    r.tags_addr = reinterpret_cast<uintptr_t>(tags_.data());
    if (int ret = kcall([&] { return kernel_.run(r); }); ret < 0)
        return ret;
    counters_.runs.add();
    tx_commits_.clear();
    new_generation(r.generation);

    const unsigned fetched = std::min<unsigned>(r.nr_fetched, want);
    for (unsigned i = 0; i < fetched; i++)
        if (int ret = start_tx(tags_[i]); ret < 0)
            return ret;
    // Full, or stopped at the budget: there may be more, run again.
    tx_run_ = want && (fetched == want || (r.out_flags & HVIO_RUN_OUT_MORE));
    tx_fetched(fetched, fetched == want, stopping);
    return 0;
}

// Bookkeeping after a TX fetch of either path: the stop's drain budget
// (the last requests: those available when the stop came; a fetch issued
// once the stop was seen that found no more ends it, one issued before
// it says nothing of what came since: BlkQueue::account()).
void NetQueue::tx_fetched(unsigned n, bool more, bool after_stop) {
    counters_.tx_inflight.store(size_ - static_cast<unsigned>(tx_free_.size()),
                                std::memory_order_relaxed);
    if (tx_drain_ < 0 || !after_stop)
        return;
    tx_drain_ -= std::min(tx_drain_, static_cast<int>(n));
    if (!more)
        tx_drain_ = 0;
}

// ---- RX ------------------------------------------------------------------

int NetQueue::arm_rx(uint16_t tag) {
    if (tag >= size_) {
        std::fprintf(stderr, "hvio: %s RX: kernel fetched tag %u >= %u\n", where_.c_str(), tag,
                     size_);
        return -EPROTO;
    }
    const hvio_op &op = kernel_.op(HVIO_NET_RX_QUEUE, tag);
    uint32_t slot = rx_free_.back();
    rx_free_.pop_back();
    Slot &s = rx_[slot];
    s.tag = tag;
    s.generation = op.generation;
    s.generation_hi = op.generation_hi;
    s.len = op.len;
    int n = -EINVAL;
    if (op.type == HVIO_OP_NET_RX && op.nr_segs <= HVIO_OP_MAX_SEGS)
        n = mem_.translate(std::span(op.segs, op.nr_segs), std::span(s.iov));
    if (n <= 0) {
        // The kernel would offer these buffers again and again: a kernel
        // and daemon that disagree about zone RAM cannot serve RX.
        std::fprintf(stderr, "hvio: %s RX: op type %u with %u segments outside mapped zone RAM\n",
                     where_.c_str(), op.type, op.nr_segs);
        commit(rx_commits_, s, -EFAULT);
        s.state = Slot::kFree;
        rx_free_.push_back(slot);
        return -EPROTO;
    }
    s.nr_iov = static_cast<uint16_t>(n);
    rx_read_plan(s.iov, s.nr_iov, static_cast<uint8_t *>(rx_bounce_.get()) + slot * kRxBounce,
                 kRxBounce, rx_plan_[slot]);
    s.state = Slot::kArmed;
    rx_armed_.push_back(slot);
    return 0;
}

int NetQueue::run_rx(bool stopping) {
    const unsigned want = stopping ? 0 : static_cast<unsigned>(rx_free_.size());
    hvio_queue_run r{};
    r.queue = HVIO_NET_RX_QUEUE;
    r.nr_commit = static_cast<uint16_t>(rx_commits_.size());
    r.max_fetch = static_cast<uint16_t>(want);
    r.commits_addr = reinterpret_cast<uintptr_t>(rx_commits_.data());
    r.tags_addr = reinterpret_cast<uintptr_t>(tags_.data());
    if (int ret = kcall([&] { return kernel_.run(r); }); ret < 0)
        return ret;
    counters_.runs.add();
    rx_commits_.clear();
    new_generation(r.generation);

    const unsigned fetched = std::min<unsigned>(r.nr_fetched, want);
    for (unsigned i = 0; i < fetched; i++)
        if (int ret = arm_rx(tags_[i]); ret < 0)
            return ret;
    rx_run_ = want && (fetched == want || (r.out_flags & HVIO_RUN_OUT_MORE));
    // New buffers: packets may have waited in the TAP for them.
    if (fetched)
        tap_readable_ = true;
    counters_.rx_armed.store(static_cast<uint32_t>(rx_armed_.size()), std::memory_order_relaxed);
    return 0;
}

std::pair<const iovec *, unsigned> NetQueue::rx_read_iov(uint32_t slot) {
    RxReadPlan &p = rx_plan_[slot];
    const Slot &s = rx_[slot];
    p.used = !rx_long_ || s.nr_iov <= kRxReadIovs;
    if (p.used)
        return {p.iov, p.nr};
    return {s.iov, s.nr_iov};
}

// RWF_NOWAIT makes each read complete inline, in submission order: without
// it io_uring parks a read of an empty O_NONBLOCK file on an internal poll;
// parked reads are woken in no particular order, and one still parked when
// the guest resets the device (io_uring cannot always cancel it) would put
// a packet into buffers the guest has taken back.  A TAP that refuses
// RWF_NOWAIT (-EOPNOTSUPP: tun before Linux 6.x) is read with plain
// non-blocking readv() calls from this thread instead, still straight into
// guest buffers, one per armed op until one finds the TAP empty: every
// call but the last moves a packet, so that path needs no batch size.
void NetQueue::submit_reads() {
    unsigned n = 0;
    if (!nowait_) {
        for (size_t i = 0; i < rx_armed_.size() && tap_readable_; i++) {
            const uint32_t slot = rx_armed_[i];
            Slot &s = rx_[slot];
            if (s.state != Slot::kArmed)
                continue;
            auto [iov, nr] = rx_read_iov(slot);
            ssize_t r = ::readv(fds_.tap, iov, static_cast<int>(nr));
            s.state = Slot::kReading;
            n++;
            rx_result(slot, r < 0 ? -errno : static_cast<int>(r));
        }
        counters_.syscalls.add(n);
    } else {
        for (uint32_t slot : rx_armed_) {
            Slot &s = rx_[slot];
            if (s.state != Slot::kArmed)
                continue;
            if (n == rx_batch_)
                break;
            io_uring_sqe *q = sqe();
            if (!q)
                break;
            auto [iov, nr] = rx_read_iov(slot);
            io_uring_prep_readv2(q, fds_.tap, iov, nr, 0, RWF_NOWAIT);
            io_uring_sqe_set_data64(q, user_data(kRx, slot));
            s.state = Slot::kReading;
            rx_reading_++;
            n++;
        }
        round_reads_ = n;
        round_filled_ = 0;
        round_empty_ = false;
    }
    if (n) {
        counters_.rx_rounds.add();
        counters_.rx_reads.add(n);
    }
}

// Every read of a round (RWF_NOWAIT) has completed: size the next one.
// All of them found a packet: more may wait, read twice as many at once.
// One found the TAP empty: the next wakeup likely brings about as many
// packets as this one did, plus the read that sees the TAP empty again.
void NetQueue::read_round_done() {
    if (!round_empty_ && round_filled_ == round_reads_)
        rx_batch_ = std::min(2 * rx_batch_, rx_cap_);
    else if (round_empty_)
        rx_batch_ = std::min(std::max(kRxBatchMin, round_filled_ + 1), rx_cap_);
    round_reads_ = 0;
    counters_.rx_batch.store(rx_batch_, std::memory_order_relaxed);
}

// A read's completion from the ring.
void NetQueue::rx_done(uint32_t slot, int res) {
    if (rx_reading_)
        rx_reading_--;
    if (res == -EOPNOTSUPP) {
        // RWF_NOWAIT refused: every read of this batch says so; the op
        // stays armed and is read again the other way.
        if (nowait_)
            std::fprintf(stderr,
                         "hvio: %s RX: the TAP refuses RWF_NOWAIT; reading with readv() "
                         "from the queue thread\n",
                         where_.c_str());
        nowait_ = false;
        counters_.rx_reads.sub();
        if (round_reads_)
            counters_.rx_rounds.sub();
        round_reads_ = 0;
        rx_[slot].state = Slot::kArmed;
        return;
    }
    rx_result(slot, res);
    if (!rx_reading_ && round_reads_)
        read_round_done();
}

// The result of one read into an armed op (now kReading).
void NetQueue::rx_result(uint32_t slot, int res) {
    Slot &s = rx_[slot];
    if (res == -EAGAIN)
        round_empty_ = true;
    else
        round_filled_++;
    if (res == -EAGAIN && !stop_.load(std::memory_order_relaxed) && s.generation == gen_) {
        // The TAP is empty: the op stays armed for the next packet.
        s.state = Slot::kArmed;
        tap_readable_ = false;
        counters_.eagain.add();
        return;
    }
    if (res == -EAGAIN)
        res = -ECANCELED; // stopping or reset meanwhile: give it back
    // The part of the packet read into the bounce goes to the guest's
    // buffers.  The plan holds all of s.len, or kRxBounce, which no packet
    // exceeds: the length check below still finds every cut packet.
    if (res > 0) {
        if (rx_read_scatter(s.iov, s.nr_iov, rx_plan_[slot], static_cast<size_t>(res)))
            counters_.rx_bounced.add();
        rx_long_ = static_cast<size_t>(res) > rx_plan_[slot].direct;
    }
    if (res >= HVIO_NET_HDR_LEN && static_cast<uint64_t>(res) <= s.len && s.generation == gen_) {
        // What the TAP queued before the last TUNSETOFFLOAD may carry
        // offloads this driver did not negotiate.
        if (!features_known_ && kcall([&] { return kernel_.driver_features(&features_); }) == 0)
            features_known_ = true;
        switch (net_rx_fixup(s.iov, s.nr_iov, static_cast<size_t>(res), features_)) {
        case RxFixup::kAsIs:
            break;
        case RxFixup::kCsumDone:
            counters_.rx_csum_fixed.add();
            break;
        case RxFixup::kDrop:
            counters_.rx_offload_dropped.add();
            res = -EPROTO; // the kernel offers the buffers again
            break;
        }
    }
    if (res > 0) {
        rx_error_streak_ = 0;
        if (static_cast<uint64_t>(res) > s.len) {
            counters_.rx_truncated.add();
        } else if (res >= HVIO_NET_HDR_LEN) {
            counters_.rx_packets.add();
            counters_.rx_bytes.add(res - HVIO_NET_HDR_LEN);
        }
    } else if (res == -EPROTO) {
        // Dropped above: not a TAP error.
    } else if (res == -ECANCELED) {
        counters_.rx_canceled.add();
    } else {
        // An error, or 0 (end of file): never retried in a tight loop.
        counters_.rx_errors.add();
        note_error(res < 0 ? -res : EIO);
        tap_readable_ = false;
        if (++rx_error_streak_ == kMaxRxErrorStreak)
            std::fprintf(stderr,
                         "hvio: %s RX: the TAP keeps failing (%s); RX stops until "
                         "its link changes\n",
                         where_.c_str(), std::strerror(res < 0 ? -res : EIO));
    }
    commit(rx_commits_, s, res);
    s.state = Slot::kFree;
    rx_free_.push_back(slot);
}

// Slots given back (filled, cancelled) leave the list of armed ones.
void NetQueue::prune_armed() {
    std::erase_if(rx_armed_, [this](uint32_t slot) { return rx_[slot].state == Slot::kFree; });
    counters_.rx_armed.store(static_cast<uint32_t>(rx_armed_.size()), std::memory_order_relaxed);
}

// Gives armed ops back (all of them, or those of an older generation):
// unused ones are committed with -ECANCELED now, reads in flight are
// cancelled and committed when their completion comes.
void NetQueue::cancel_rx(bool all) {
    for (uint32_t slot : rx_armed_) {
        Slot &s = rx_[slot];
        if (!all && s.generation == gen_)
            continue;
        if (s.state == Slot::kArmed) {
            commit(rx_commits_, s, -ECANCELED);
            counters_.rx_canceled.add();
            s.state = Slot::kFree;
            rx_free_.push_back(slot);
        } else if (s.state == Slot::kReading) {
            if (io_uring_sqe *q = sqe()) {
                io_uring_prep_cancel64(q, user_data(kRx, slot), 0);
                io_uring_sqe_set_data64(q, user_data(kCancel, slot));
            }
        }
    }
    prune_armed();
}

// ---- device state ----------------------------------------------------------

void NetQueue::new_generation(uint32_t gen) {
    // An older one is no reset: a FETCH result read before the
    // HVIO_DEV_GET_EVENTS reaped ahead of it (generations only grow).
    if (gen_known_ && static_cast<int32_t>(gen - gen_) <= 0)
        return;
    const bool first = !gen_known_;
    gen_known_ = true;
    gen_ = gen;
    if (first)
        return;
    // The guest reset the device: what it posted before is not its any more.
    counters_.resets.add();
    cancel_rx(false);
    offload_applied_ = false;
    features_known_ = false;
    if (offload_) {
        if (int r = kcall([&] { return kernel_.set_offload(0); }); r < 0) {
            std::fprintf(stderr, "hvio: %s: TUNSETOFFLOAD 0 after reset: %s\n", where_.c_str(),
                         std::strerror(-r));
            note_error(-r);
        } else {
            offload_ = 0;
            counters_.offload_flags.store(0, std::memory_order_relaxed);
        }
    }
}

int NetQueue::device_events() {
    hvio_dev_events ev{};
    if (int r = kcall([&] { return kernel_.get_events(ev); }); r < 0)
        return r;
    counters_.dev_events.add();
    if (ev.events & HVIO_EV_KICK) {
        if (ev.kicked_queues & (1U << HVIO_NET_RX_QUEUE))
            rx_run_ = true;
        if (ev.kicked_queues & (1U << HVIO_NET_TX_QUEUE))
            tx_run_ = true;
    }
    new_generation(ev.generation);
    if (ev.events & (HVIO_EV_STATUS | HVIO_EV_RESET)) {
        // The queues attach at the first QUEUE_RUN after DRIVER_OK; the
        // guest posted its RX buffers (and kicked) before that.
        rx_run_ = tx_run_ = true;
        // The same for a parked FETCH, which only a kick or a reset wakes.
        unpark_fetches();
    }
    if ((ev.status & VIRTIO_CONFIG_S_FEATURES_OK) && !offload_applied_) {
        uint64_t f = 0;
        if (int r = kcall([&] { return kernel_.driver_features(&f); }); r < 0)
            return r;
        const unsigned flags = tun_offload_flags(f);
        offload_applied_ = true;
        features_ = f;
        features_known_ = true;
        if (flags != offload_) {
            if (int r = kcall([&] { return kernel_.set_offload(flags); }); r < 0) {
                std::fprintf(stderr, "hvio: %s: TUNSETOFFLOAD 0x%x: %s (offloads stay 0x%x)\n",
                             where_.c_str(), flags, std::strerror(-r), offload_);
                note_error(-r);
            } else {
                offload_ = flags;
                counters_.offload_sets.add();
                counters_.offload_flags.store(flags, std::memory_order_relaxed);
            }
        }
    }
    return 0;
}

void NetQueue::set_link(unsigned ifflags, bool force) {
    // Whatever failed on the old link may work on the new one.
    rx_error_streak_ = 0;
    tap_readable_ = true;
    const uint16_t st = net_link_status(ifflags);
    if (st == link_status_ && !force)
        return;
    const uint16_t le = htole16(st);
    if (int r = kcall([&] {
            return kernel_.set_config(kNetConfigStatusOff, &le, sizeof(le), HVIO_CONFIG_F_NOTIFY);
        });
        r < 0) {
        std::fprintf(stderr, "hvio: %s: HVIO_DEV_SET_CONFIG (link %s): %s\n", where_.c_str(),
                     st ? "up" : "down", std::strerror(-r));
        note_error(-r);
        return;
    }
    link_status_ = st;
    counters_.link_changes.add();
    counters_.link_status.store(st, std::memory_order_relaxed);
}

void NetQueue::link_readable() {
    alignas(nlmsghdr) static thread_local uint8_t buf[16384];
    bool have = false, resync = false;
    unsigned flags = 0;
    for (;;) {
        counters_.syscalls.add();
        ssize_t n = ::recv(fds_.link, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0) {
            unsigned f;
            if (link_event(buf, static_cast<size_t>(n), fds_.ifindex, &f)) {
                flags = f;
                have = true;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ENOBUFS) {
            // Messages were lost: ask for the state instead.
            resync = true;
            continue;
        }
        break;
    }
    if (resync) {
        unsigned f;
        if (kcall([&] { return kernel_.link_flags(&f); }) == 0) {
            flags = f;
            have = true;
        } else {
            flags = 0; // gone
            have = true;
        }
    }
    if (have)
        set_link(flags);
}

// ---- the loop ----------------------------------------------------------------

// The device and link polls are armed whenever they are not (a busy
// device still sees a reset or a link change at once); the kicks (QUEUE_RUN
// path only: the uring path's kicks complete its FETCHes) and the TAP poll
// only before sleeping, as a QUEUE_RUN follows every wakeup.
int NetQueue::arm_waits(bool sleeping, bool kicks) {
    auto arm = [this](bool &armed, Kind k, auto prep) {
        if (armed)
            return 0;
        io_uring_sqe *q = sqe();
        if (!q)
            return -EBUSY;
        prep(q);
        io_uring_sqe_set_data64(q, user_data(k, 0));
        armed = true;
        return 0;
    };
    int r = 0;
    if (fds_.dev >= 0)
        r = arm(dev_poll_armed_, kDevPoll,
                [this](io_uring_sqe *q) { io_uring_prep_poll_add(q, fds_.dev, POLLIN); });
    if (!r && fds_.link >= 0)
        r = arm(link_poll_armed_, kLinkPoll,
                [this](io_uring_sqe *q) { io_uring_prep_poll_add(q, fds_.link, POLLIN); });
    if (r || !sleeping)
        return r;
    if (kicks)
        r = arm(rx_kick_armed_, kRxKick, [this](io_uring_sqe *q) {
            io_uring_prep_read(q, fds_.rx_kick, &rx_kick_buf_, sizeof(rx_kick_buf_), 0);
        });
    if (!r && kicks)
        r = arm(tx_kick_armed_, kTxKick, [this](io_uring_sqe *q) {
            io_uring_prep_read(q, fds_.tx_kick, &tx_kick_buf_, sizeof(tx_kick_buf_), 0);
        });
    if (!r && !tap_poll_armed_ && !tap_readable_ && !rx_armed_.empty() && !rx_reading_ &&
        rx_error_streak_ < kMaxRxErrorStreak) {
        r = arm(tap_poll_armed_, kTapPoll,
                [this](io_uring_sqe *q) { io_uring_prep_poll_add(q, fds_.tap, POLLIN); });
        counters_.polls.add();
    }
    return r;
}

int NetQueue::reap() {
    io_uring_cqe *cqe;
    unsigned head, n = 0, n_commit = 0;
    int ret = 0;
    bool dev = false, link = false;
    auto kick = [&](bool &armed, bool &run, int res) {
        armed = false;
        if (res < 0 && res != -EINTR && res != -EAGAIN && res != -ECANCELED)
            ret = res;
        else
            counters_.wakeups.add();
        run = true;
    };
    io_uring_for_each_cqe(&ring_.get(), head, cqe) {
        n++;
        const uint64_t ud = io_uring_cqe_get_data64(cqe);
        const uint32_t slot = static_cast<uint32_t>(ud);
        switch (static_cast<Kind>(ud >> 32)) {
        case kTx:
            if (slot < tx_.size() && tx_[slot].state == Slot::kWriting)
                tx_done(slot, cqe->res);
            break;
        case kRx:
            if (slot < rx_.size() && rx_[slot].state == Slot::kReading)
                rx_done(slot, cqe->res);
            break;
        case kRxKick:
            kick(rx_kick_armed_, rx_run_, cqe->res);
            break;
        case kTxKick:
            kick(tx_kick_armed_, tx_run_, cqe->res);
            break;
        case kDevPoll:
            dev_poll_armed_ = false;
            if (cqe->res < 0 && cqe->res != -ECANCELED && cqe->res != -EINTR)
                ret = cqe->res;
            else
                dev = true;
            break;
        case kTapPoll:
            tap_poll_armed_ = false;
            if (cqe->res > 0)
                tap_readable_ = true;
            break;
        case kLinkPoll:
            link_poll_armed_ = false;
            if (cqe->res > 0)
                link = true;
            break;
        case kFetch:
            if (slot < 2) {
                fetch_[slot].out = false;
                if (int r = fetched(static_cast<uint16_t>(slot), cqe->res); r < 0 && !ret)
                    ret = r;
            }
            break;
        case kCommit:
            // Only a failed one has a CQE.  EINVAL: a tag the kernel does
            // not know; a bug, as for QUEUE_RUN.
            n_commit++;
            if (cqe->res < 0 && !ret)
                ret = cqe->res;
            break;
        case kCancel:
        default:
            break;
        }
    }
    io_uring_cq_advance(&ring_.get(), n);
    n -= n_commit;
    inflight_ -= std::min(inflight_, n);
    prune_armed();
    counters_.tx_inflight.store(size_ - static_cast<unsigned>(tx_free_.size()),
                                std::memory_order_relaxed);
    if (dev && !ret)
        ret = device_events();
    if (link)
        link_readable();
    return ret;
}

int NetQueue::run() {
    // Every TX slot, every RX slot with a cancel for it, the five waits,
    // two FETCHes and a few COMMITs can be in flight at once, each with
    // one SQE: the SQ never fills and the CQ (2x) never overflows.
    int ret = 0;
    if (auto r = ring_.init(size_ + 2 * rx_cap_ + 16); !r)
        ret = -r.error();
    counters_.ring_mode.store(ring_.mode(), std::memory_order_relaxed);
    if (!ret)
        ret = start();
    if (!ret && kernel_.uring_fd() >= 0)
        ret = serve_uring();
    if (!ret && (kernel_.uring_fd() < 0 || fallback_)) {
        counters_.path.store(kPathQueueRun, std::memory_order_relaxed);
        ret = serve();
    }
    if (ring_.ok())
        quiesce();
    return ret;
}

// Nothing may stay in the ring once run() returns: the polls of the device
// fd, the link socket and the TAP, the kick reads, the FETCHes (ring.h says
// why).  A FETCH still parked (after a fatal error) is not cancellable:
// the kernel is asked to complete it.
void NetQueue::quiesce() {
    for (uint16_t q = 0; q < 2; q++)
        if (fetch_[q].out)
            (void)kcall([&] { return kernel_.unpark(q); });
    std::vector<uint64_t> each{user_data(kDevPoll, 0), user_data(kLinkPoll, 0),
                               user_data(kTapPoll, 0), user_data(kRxKick, 0),
                               user_data(kTxKick, 0)};
    for (uint32_t i = 0; i < rx_.size(); i++)
        if (rx_[i].state == Slot::kReading)
            each.push_back(user_data(kRx, i));
    for (uint32_t i = 0; i < tx_.size(); i++)
        if (tx_[i].state == Slot::kWriting)
            each.push_back(user_data(kTx, i));
    if (ring_quiesce(ring_.get(), inflight_, user_data(kCancel, UINT32_MAX), each, kQuiesceMs) < 0)
        std::fprintf(stderr, "hvio: %s: %u io_uring requests could not be cancelled in %d ms\n",
                     where_.c_str(), inflight_, kQuiesceMs);
}

// Before either loop: the state the device is in already (a taken-over
// device may be past FEATURES_OK: no event will say so again).
int NetQueue::start() {
    if (fds_.dev >= 0)
        if (int ret = device_events(); ret < 0)
            return ret;
    if (resync_link_) {
        unsigned f = 0;
        if (kcall([&] { return kernel_.link_flags(&f); }) < 0)
            f = 0;
        set_link(f, true);
    }
    return 0;
}

void NetQueue::stopping_now() {
    if (tx_drain_ >= 0 || !stop_.load(std::memory_order_acquire))
        return;
    // The last TX requests: those available when the stop came.
    tx_drain_ = static_cast<int>(size_);
    tx_run_ = true;
    cancel_rx(true);
}

bool NetQueue::can_read() const {
    return tx_drain_ < 0 && tap_readable_ && !rx_reading_ && !rx_armed_.empty() &&
           rx_error_streak_ < kMaxRxErrorStreak;
}

// The QUEUE_RUN path.
int NetQueue::serve() {
    for (;;) {
        stopping_now();
        const bool stopping = tx_drain_ >= 0;

        const bool tx_fetch = tx_run_ && !(stopping && tx_drain_ == 0);
        if (tx_fetch || !tx_commits_.empty())
            if (int ret = run_tx(stopping); ret < 0)
                return ret;
        const bool rx_fetch = rx_run_ && !stopping && !rx_free_.empty();
        if (rx_fetch || !rx_commits_.empty())
            if (int ret = run_rx(stopping); ret < 0)
                return ret;

        if (can_read())
            submit_reads();

        if (stopping && tx_drain_ == 0 && tx_free_.size() == size_ && tx_commits_.empty() &&
            rx_free_.size() == rx_cap_ && rx_commits_.empty() && !rx_reading_)
            return 0;

        // Sleep only when nothing waits to be committed, no fetch may have
        // left ops behind, and the reads just queued (if any) will wake us.
        const bool busy = !tx_commits_.empty() || !rx_commits_.empty() ||
                          (tx_run_ && !(stopping && tx_drain_ == 0)) ||
                          (rx_run_ && !stopping && !rx_free_.empty());
        if (!stopping)
            if (int ret = arm_waits(!busy, true); ret < 0)
                return ret;
        int ret = submit(!busy);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
            return ret;
        if (int err = reap(); err < 0)
            return err;
    }
}

// ---- the uring path ------------------------------------------------------

// A status change or a reset: parked FETCHes look again (see net_queue.h).
void NetQueue::unpark_fetches() {
    for (uint16_t q = 0; q < 2; q++)
        if (fetch_[q].out && fetch_[q].wait)
            (void)kcall([&] { return kernel_.unpark(q); });
}

int NetQueue::queue_fetch(uint16_t queue, unsigned max, bool wait) {
    io_uring_sqe *s = sqe();
    if (!s)
        return -EBUSY;
    Fetch &f = fetch_[queue];
    hvio_uring_fetch arg{};
    arg.queue = queue;
    arg.max_fetch = static_cast<uint16_t>(max);
    arg.flags = wait ? HVIO_FETCH_F_WAIT : 0;
    arg.result_addr = reinterpret_cast<uintptr_t>(f.buf.data());
    prep_uring_cmd(s, kernel_.uring_fd(), HVIO_URING_FETCH, arg);
    io_uring_sqe_set_data64(s, user_data(kFetch, queue));
    f.out = true;
    f.wait = wait;
    f.max = max;
    f.after_stop = tx_drain_ >= 0;
    return 0;
}

// A COMMIT completes while io_uring_enter submits it and posts a CQE only
// when it fails (IOSQE_CQE_SKIP_SUCCESS): it is not counted in inflight_,
// and its buffer is free once it was submitted.
int NetQueue::queue_commit(uint16_t queue, std::vector<hvio_completion> &commits) {
    io_uring_sqe *s = ring_.sqe();
    if (!s)
        return -EBUSY;
    commit_bufs_.prep(s, kernel_.uring_fd(), queue, commits);
    io_uring_sqe_set_data64(s, user_data(kCommit, 0));
    counters_.commits.add();
    return 0;
}

// A FETCH's CQE.
int NetQueue::fetched(uint16_t queue, int res) {
    Fetch &f = fetch_[queue];
    if (res < 0) {
        // An hvio.ko without the commands: the QUEUE_RUN path.
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
    if (f.wait)
        counters_.wakeups.add();
    hvio_fetch_result r;
    std::memcpy(&r, f.buf.data(), sizeof(r));
    new_generation(r.generation);
    const unsigned n = std::min<unsigned>(static_cast<unsigned>(res), f.max);
    f.more = (r.out_flags & HVIO_RUN_OUT_MORE) != 0;
    stopping_now();
    // A slot filled in this reaping pass is still listed: drop it before
    // it can be armed again.
    prune_armed();
    for (unsigned i = 0; i < n; i++) {
        const uint16_t tag = f.buf[kFetchHdr + i];
        if (int ret = queue == HVIO_NET_TX_QUEUE ? start_tx(tag) : arm_rx(tag); ret < 0)
            return ret;
    }
    if (queue == HVIO_NET_TX_QUEUE) {
        tx_fetched(n, f.more, f.after_stop);
        return 0;
    }
    // New buffers: packets may have waited in the TAP for them.
    if (n)
        tap_readable_ = true;
    // Fetched as the stop came: given back at once.
    if (tx_drain_ >= 0)
        cancel_rx(true);
    counters_.rx_armed.store(static_cast<uint32_t>(rx_armed_.size()), std::memory_order_relaxed);
    return 0;
}

int NetQueue::serve_uring() {
    counters_.path.store(kPathUring, std::memory_order_relaxed);
    for (;;) {
        stopping_now();
        const bool stopping = tx_drain_ >= 0;
        // Reads first: without RWF_NOWAIT they complete here, and their
        // commits go out in this pass.
        if (can_read())
            submit_reads();
        // Commits before fetches: a fetch sees what they gave back.
        if (!tx_commits_.empty())
            if (int ret = queue_commit(HVIO_NET_TX_QUEUE, tx_commits_); ret < 0)
                return ret;
        if (!rx_commits_.empty())
            if (int ret = queue_commit(HVIO_NET_RX_QUEUE, rx_commits_); ret < 0)
                return ret;
        Fetch &tx = fetch_[HVIO_NET_TX_QUEUE];
        Fetch &rx = fetch_[HVIO_NET_RX_QUEUE];
        if (!tx.out) {
            unsigned want = static_cast<unsigned>(tx_free_.size());
            if (stopping)
                want = std::min<unsigned>(want, static_cast<unsigned>(tx_drain_));
            // The stop's fetches take what is there and never wait.
            if (want)
                if (int ret = queue_fetch(HVIO_NET_TX_QUEUE, want, !stopping && !tx.more); ret < 0)
                    return ret;
        }
        if (!rx.out && !stopping && !rx_free_.empty())
            if (int ret = queue_fetch(HVIO_NET_RX_QUEUE, static_cast<unsigned>(rx_free_.size()),
                                      !rx.more);
                ret < 0)
                return ret;
        if (stopping && tx_drain_ == 0 && !tx.out && !rx.out && tx_free_.size() == size_ &&
            rx_free_.size() == rx_cap_ && tx_commits_.empty() && rx_commits_.empty() &&
            commit_bufs_.idle() && !rx_reading_)
            return 0;
        if (!stopping)
            if (int ret = arm_waits(true, false); ret < 0)
                return ret;
        // Wait only for something that will post a CQE: a COMMIT posts
        // none when it succeeds, and once stopping the polls still armed
        // post none either (the stop's last commit may be alone).
        const bool io = tx.out || rx.out || tx_free_.size() < size_ || rx_reading_;
        int ret = submit(stopping ? io : inflight_ > 0);
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
