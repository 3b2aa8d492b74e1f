// SPDX-License-Identifier: GPL-2.0
// Unit tests of the virtio-net daemon side: features, config space and
// offload mapping (userspace/lib/net.cc), the rtnetlink parser, and the
// NetQueue loop (userspace/lib/net_queue.cc) against a fake kernel, with a
// SOCK_SEQPACKET socketpair standing in for the TAP (one read or write is
// one packet, and a non-blocking read of an empty one fails with EAGAIN,
// as a TAP's does).
#include <gtest/gtest.h>

#include "net.h"
#include "net_queue.h"
#include "queue.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <endian.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/virtio_config.h>
#include <map>
#include <memory>
#include <mutex>
#include <net/if.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <set>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;

uint64_t bit(unsigned b) { return 1ULL << b; }

hvio::NetDeviceConfig net_cfg() {
    hvio::NetDeviceConfig c;
    c.tap = "tap0";
    c.mac = {0x00, 0x16, 0x3e, 0x10, 0x20, 0x30};
    return c;
}

// ---- features, config space, offloads ------------------------------------------

TEST(NetTarget, FeaturesWithOffloads) {
    const uint64_t want = bit(VIRTIO_F_VERSION_1) | bit(29) | bit(28) | bit(5) | bit(16) | bit(3) |
                          bit(15) | bit(0) | bit(1) | bit(7) | bit(8) | bit(9) | bit(10) | bit(11) |
                          bit(12) | bit(13) | bit(14);
    EXPECT_EQ(hvio::net_features(net_cfg()), want);
}

TEST(NetTarget, FeaturesWithoutOffloadsOrMergeable) {
    hvio::NetDeviceConfig c = net_cfg();
    c.offloads = false;
    EXPECT_EQ(hvio::net_features(c),
              bit(VIRTIO_F_VERSION_1) | bit(29) | bit(28) | bit(5) | bit(16) | bit(3) | bit(15));
    c.mrg_rxbuf = false;
    EXPECT_EQ(hvio::net_features(c),
              bit(VIRTIO_F_VERSION_1) | bit(29) | bit(28) | bit(5) | bit(16) | bit(3));
}

TEST(NetTarget, FeaturesStayInsideWhatTheModuleAccepts) {
    // abi.md: CSUM, GUEST_CSUM, MTU, MAC, GUEST/HOST TSO4/TSO6/ECN/UFO,
    // MRG_RXBUF, STATUS, SPEED_DUPLEX and the ring features.
    uint64_t allowed = bit(VIRTIO_F_VERSION_1) | bit(28) | bit(29) | bit(63);
    for (unsigned b : {0u, 1u, 3u, 5u, 7u, 8u, 9u, 10u, 11u, 12u, 13u, 14u, 15u, 16u})
        allowed |= bit(b);
    EXPECT_EQ(hvio::net_features(net_cfg()) & ~allowed, 0u);
    // No control queue, no MQ: the device has exactly two queues.
    EXPECT_FALSE(hvio::net_features(net_cfg()) & (bit(17) | bit(22)));
}

TEST(NetTarget, ConfigSpaceBytes) {
    hvio::NetDeviceConfig c = net_cfg();
    c.mtu = 9000;
    std::vector<uint8_t> cfg = hvio::net_config_space(c, hvio::kNetSLinkUp);
    const std::vector<uint8_t> want = {0x00, 0x16, 0x3e, 0x10, 0x20, 0x30, // mac
                                       0x01, 0x00,                         // status LINK_UP
                                       0x01, 0x00,                         // one queue pair
                                       0x28, 0x23};                        // mtu 9000
    EXPECT_EQ(cfg, want);
    cfg = hvio::net_config_space(net_cfg(), 0);
    ASSERT_EQ(cfg.size(), 12u);
    EXPECT_EQ(cfg[6], 0);
    EXPECT_EQ(cfg[7], 0);
    EXPECT_EQ(cfg[10] | cfg[11] << 8, 1500);
}

TEST(NetTarget, LinkStatusNeedsUpAndRunning) {
    EXPECT_EQ(hvio::net_link_status(IFF_UP | IFF_RUNNING | IFF_BROADCAST), hvio::kNetSLinkUp);
    EXPECT_EQ(hvio::net_link_status(IFF_UP), 0);
    EXPECT_EQ(hvio::net_link_status(IFF_RUNNING), 0);
    EXPECT_EQ(hvio::net_link_status(0), 0);
}

TEST(NetTarget, TunOffloadFlags) {
    EXPECT_EQ(hvio::tun_offload_flags(0), 0u);
    // Without GUEST_CSUM nothing: tun refuses TSO without CSUM.
    EXPECT_EQ(hvio::tun_offload_flags(bit(7) | bit(8) | bit(9) | bit(10) | bit(0)), 0u);
    EXPECT_EQ(hvio::tun_offload_flags(bit(1)), unsigned(TUN_F_CSUM));
    EXPECT_EQ(hvio::tun_offload_flags(bit(1) | bit(7)), unsigned(TUN_F_CSUM | TUN_F_TSO4));
    EXPECT_EQ(hvio::tun_offload_flags(bit(1) | bit(8)), unsigned(TUN_F_CSUM | TUN_F_TSO6));
    EXPECT_EQ(hvio::tun_offload_flags(bit(1) | bit(10)), unsigned(TUN_F_CSUM | TUN_F_UFO));
    // ECN only together with TSO (tun refuses it alone).
    EXPECT_EQ(hvio::tun_offload_flags(bit(1) | bit(9)), unsigned(TUN_F_CSUM));
    EXPECT_EQ(hvio::tun_offload_flags(bit(1) | bit(7) | bit(9)),
              unsigned(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN));
    // HOST_* bits are the guest's sending side: nothing for the TAP.
    EXPECT_EQ(hvio::tun_offload_flags(bit(1) | bit(11) | bit(12) | bit(13) | bit(14)),
              unsigned(TUN_F_CSUM));
    EXPECT_EQ(hvio::tun_offload_flags(hvio::net_features(net_cfg())),
              unsigned(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO));
}

// ---- received packets vs. negotiated offloads --------------------------------------

// Ones' complement sum of bytes [from, to) of p (RFC 1071), unfolded.
uint32_t sum16(const std::vector<uint8_t> &p, size_t from, size_t to) {
    uint32_t s = 0;
    for (size_t i = from; i < to; i++)
        s += (i - from) % 2 ? p[i] : uint32_t(p[i]) << 8;
    return s;
}
uint16_t fold(uint32_t s) {
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}

// A packet with NEEDS_CSUM: csum_start 20, csum_offset 6, the field holding
// a "pseudo-header" partial sum P, as the kernel leaves it.
std::vector<uint8_t> partial_csum_packet(size_t frame_len, uint16_t P) {
    std::vector<uint8_t> p(HVIO_NET_HDR_LEN + frame_len);
    for (size_t i = HVIO_NET_HDR_LEN; i < p.size(); i++)
        p[i] = static_cast<uint8_t>(i * 7 + 3);
    p[0] = 1;  // NEEDS_CSUM
    p[6] = 20; // csum_start
    p[8] = 6;  // csum_offset
    p[HVIO_NET_HDR_LEN + 26] = static_cast<uint8_t>(P >> 8);
    p[HVIO_NET_HDR_LEN + 27] = static_cast<uint8_t>(P);
    return p;
}

// Splits p over iovecs of the given sizes (the rest in the last).
std::vector<iovec> split(std::vector<uint8_t> &p, std::initializer_list<size_t> sizes) {
    std::vector<iovec> v;
    size_t off = 0;
    for (size_t s : sizes) {
        v.push_back({p.data() + off, s});
        off += s;
    }
    v.push_back({p.data() + off, p.size() - off});
    return v;
}

TEST(NetRxFixup, PartialChecksumCompletedForAGuestWithoutGuestCsum) {
    const uint16_t P = 0x1234;
    for (size_t frame_len : {60u, 61u, 1500u}) {
        std::vector<uint8_t> p = partial_csum_packet(frame_len, P);
        std::vector<uint8_t> before = p;
        // Odd split points: words straddle iovecs.
        std::vector<iovec> iov = split(p, {5, 30, 1});
        EXPECT_EQ(hvio::net_rx_fixup(iov.data(), unsigned(iov.size()), p.size(), bit(1) << 32),
                  hvio::RxFixup::kCsumDone);
        // Valid: the covered range plus the pseudo-header sums to 0xffff.
        EXPECT_EQ(fold(sum16(p, HVIO_NET_HDR_LEN + 20, p.size()) + P), 0xffff) << frame_len;
        EXPECT_EQ(p[0], 0);                      // no NEEDS_CSUM
        EXPECT_EQ(p[6] | p[7] | p[8] | p[9], 0); // no csum_start/offset
        // Nothing else changed.
        for (size_t i = HVIO_NET_HDR_LEN; i < p.size(); i++) {
            if (i != HVIO_NET_HDR_LEN + 26 && i != HVIO_NET_HDR_LEN + 27) {
                ASSERT_EQ(p[i], before[i]) << i;
            }
        }
    }
}

TEST(NetRxFixup, AsIsWhenNegotiatedOrNothingToDo) {
    std::vector<uint8_t> p = partial_csum_packet(100, 0x1234);
    std::vector<uint8_t> before = p;
    iovec v{p.data(), p.size()};
    EXPECT_EQ(hvio::net_rx_fixup(&v, 1, p.size(), bit(1)), hvio::RxFixup::kAsIs);
    EXPECT_EQ(p, before);
    p[0] = 0;
    EXPECT_EQ(hvio::net_rx_fixup(&v, 1, p.size(), 0), hvio::RxFixup::kAsIs);
    p[0] = 2; // DATA_VALID
    EXPECT_EQ(hvio::net_rx_fixup(&v, 1, p.size(), 0), hvio::RxFixup::kAsIs);
}

TEST(NetRxFixup, GsoOnlyWhenNegotiated) {
    std::vector<uint8_t> p = partial_csum_packet(1500, 0);
    iovec v{p.data(), p.size()};
    const uint64_t csum = bit(1);
    const struct {
        uint8_t gso;
        uint64_t features;
        hvio::RxFixup want;
    } cases[] = {
        {1, csum | bit(7), hvio::RxFixup::kAsIs},    // TCPV4 with GUEST_TSO4
        {1, csum | bit(8), hvio::RxFixup::kDrop},    // TCPV4 with TSO6 only
        {4, csum | bit(8), hvio::RxFixup::kAsIs},    // TCPV6
        {3, csum | bit(10), hvio::RxFixup::kAsIs},   // UDP with GUEST_UFO
        {3, csum | bit(7), hvio::RxFixup::kDrop},    //
        {0x81, csum | bit(7), hvio::RxFixup::kDrop}, // ECN without GUEST_ECN
        {0x81, csum | bit(7) | bit(9), hvio::RxFixup::kAsIs},
        {5, csum | bit(7) | bit(8) | bit(10), hvio::RxFixup::kDrop}, // UDP_L4: never
        {1, bit(7), hvio::RxFixup::kDrop},                           // TSO without GUEST_CSUM
    };
    for (const auto &c : cases) {
        p[1] = c.gso;
        EXPECT_EQ(hvio::net_rx_fixup(&v, 1, p.size(), c.features), c.want)
            << "gso " << int(c.gso) << " features " << std::hex << c.features;
    }
}

TEST(NetRxFixup, BadOffsetsAndShortPacketsDropped) {
    std::vector<uint8_t> p = partial_csum_packet(30, 0);
    iovec v{p.data(), p.size()};
    p[8] = 9; // field at 29..31, beyond the 30-byte frame
    EXPECT_EQ(hvio::net_rx_fixup(&v, 1, p.size(), 0), hvio::RxFixup::kDrop);
    p[8] = 6;
    p[6] = 30; // csum_start at the end
    EXPECT_EQ(hvio::net_rx_fixup(&v, 1, p.size(), 0), hvio::RxFixup::kDrop);
    EXPECT_EQ(hvio::net_rx_fixup(&v, 1, 11, 0), hvio::RxFixup::kDrop);
}

// The header read across buffers (a first one shorter than it) decides
// as the header in one piece does.
TEST(NetRxFixup, HeaderSplitAcrossBuffers) {
    const uint64_t csum = bit(1);
    for (uint8_t gso : {0, 1}) {
        std::vector<uint8_t> p = partial_csum_packet(100, 0);
        p[1] = gso;
        std::vector<uint8_t> whole = p;
        iovec one{whole.data(), whole.size()};
        iovec split[3] = {{p.data(), 3}, {p.data() + 3, 4}, {p.data() + 7, p.size() - 7}};
        for (uint64_t f : {uint64_t(0), csum, csum | bit(7)})
            EXPECT_EQ(hvio::net_rx_fixup(split, 3, p.size(), f),
                      hvio::net_rx_fixup(&one, 1, whole.size(), f))
                << "gso " << int(gso) << " features " << f;
        EXPECT_EQ(p, whole); // and changed it alike (a checksum completed)
    }
}

// ---- rtnetlink ------------------------------------------------------------------

// Appends one RTM_NEWLINK/RTM_DELLINK message (with an IFLA_IFNAME
// attribute, as the kernel sends) to buf.
void put_link_msg(std::vector<uint8_t> &buf, uint16_t type, int ifindex, unsigned flags) {
    const char name[] = "tap0";
    const size_t attr = RTA_LENGTH(sizeof(name));
    const size_t len = NLMSG_LENGTH(sizeof(ifinfomsg) + RTA_ALIGN(attr));
    size_t off = buf.size();
    buf.resize(off + NLMSG_ALIGN(len), 0);
    auto *h = reinterpret_cast<nlmsghdr *>(buf.data() + off);
    h->nlmsg_len = static_cast<uint32_t>(len);
    h->nlmsg_type = type;
    auto *ifi = static_cast<ifinfomsg *>(NLMSG_DATA(h));
    ifi->ifi_index = ifindex;
    ifi->ifi_flags = flags;
    auto *rta = reinterpret_cast<rtattr *>(reinterpret_cast<uint8_t *>(ifi) + sizeof(ifinfomsg));
    rta->rta_len = static_cast<uint16_t>(attr);
    rta->rta_type = IFLA_IFNAME;
    std::memcpy(RTA_DATA(rta), name, sizeof(name));
}

TEST(NetLink, PicksTheLastStateOfOurInterface) {
    std::vector<uint8_t> buf;
    put_link_msg(buf, RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING);
    put_link_msg(buf, RTM_NEWLINK, 3, 0);
    put_link_msg(buf, RTM_NEWLINK, 7, IFF_UP);
    unsigned flags = 12345;
    ASSERT_TRUE(hvio::link_event(buf.data(), buf.size(), 7, &flags));
    EXPECT_EQ(flags, unsigned(IFF_UP));
    ASSERT_TRUE(hvio::link_event(buf.data(), buf.size(), 3, &flags));
    EXPECT_EQ(flags, 0u);
    EXPECT_FALSE(hvio::link_event(buf.data(), buf.size(), 9, &flags));
}

TEST(NetLink, DeletedInterfaceIsDown) {
    std::vector<uint8_t> buf;
    put_link_msg(buf, RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING);
    put_link_msg(buf, RTM_DELLINK, 7, IFF_UP | IFF_RUNNING);
    unsigned flags = 1;
    ASSERT_TRUE(hvio::link_event(buf.data(), buf.size(), 7, &flags));
    EXPECT_EQ(flags, 0u);
}

TEST(NetLink, IgnoresOtherMessagesAndTruncation) {
    std::vector<uint8_t> buf;
    put_link_msg(buf, RTM_NEWADDR, 7, IFF_UP | IFF_RUNNING);
    unsigned flags = 5;
    EXPECT_FALSE(hvio::link_event(buf.data(), buf.size(), 7, &flags));
    EXPECT_EQ(flags, 5u);
    // A message cut short is not read past the buffer.
    buf.clear();
    put_link_msg(buf, RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING);
    EXPECT_FALSE(hvio::link_event(buf.data(), NLMSG_HDRLEN + 4, 7, &flags));
    // A header claiming less than an ifinfomsg.
    reinterpret_cast<nlmsghdr *>(buf.data())->nlmsg_len = NLMSG_HDRLEN + 4;
    EXPECT_FALSE(hvio::link_event(buf.data(), buf.size(), 7, &flags));
}

// ---- the loop ---------------------------------------------------------------------

constexpr uint64_t kGpa = 0x40000000;
constexpr unsigned kQueueSize = 16;

class FakeNetKernel : public hvio::NetBackend {
  public:
    FakeNetKernel(int rx_efd, int tx_efd, int dev_efd)
        : efd_{rx_efd, tx_efd}, dev_efd_(dev_efd), ops_{std::vector<hvio_op>(kQueueSize),
                                                        std::vector<hvio_op>(kQueueSize)} {}

    int run(hvio_queue_run &r) override {
        std::lock_guard<std::mutex> l(mu_);
        if (r.queue > 1 || r.nr_commit > kQueueSize || r.max_fetch > kQueueSize)
            return -EINVAL;
        Queue &q = q_[r.queue];
        q.runs++;
        auto *c = reinterpret_cast<const hvio_completion *>(r.commits_addr);
        for (unsigned i = 0; i < r.nr_commit; i++) {
            if (c[i].generation != gen_) {
                q.stale++;
            } else if (!q.inflight.erase(c[i].tag)) {
                bad_commits_++;
            }
            q.done.push_back(c[i]);
        }
        auto *tags = reinterpret_cast<uint16_t *>(r.tags_addr);
        r.nr_fetched = 0;
        r.out_flags = 0;
        unsigned budget = q.budget ? q.budget : ~0u;
        while (r.nr_fetched < r.max_fetch && !q.pending.empty() && budget) {
            uint16_t t = q.pending.front();
            q.pending.pop_front();
            q.inflight.insert(t);
            tags[r.nr_fetched++] = t;
            budget--;
        }
        if (!budget && !q.pending.empty())
            r.out_flags = HVIO_RUN_OUT_MORE;
        r.generation = gen_;
        return 0;
    }
    const hvio_op &op(uint16_t queue, uint16_t tag) const override { return ops_[queue][tag]; }
    int get_events(hvio_dev_events &ev) override {
        std::lock_guard<std::mutex> l(mu_);
        uint64_t v;
        (void)!::read(dev_efd_, &v, sizeof(v));
        ev = {};
        ev.events = events_;
        ev.status = status_;
        ev.generation = gen_;
        events_ = 0;
        return 0;
    }
    int driver_features(uint64_t *f) override {
        std::lock_guard<std::mutex> l(mu_);
        *f = driver_features_;
        return 0;
    }
    int set_config(uint32_t off, const void *data, uint32_t len, uint32_t flags) override {
        std::lock_guard<std::mutex> l(mu_);
        std::vector<uint8_t> b(static_cast<const uint8_t *>(data),
                               static_cast<const uint8_t *>(data) + len);
        configs_.push_back({off, flags, b});
        return 0;
    }
    int set_offload(unsigned flags) override {
        std::lock_guard<std::mutex> l(mu_);
        offloads_.push_back(flags);
        // With a real TAP, really: tun refuses what it cannot take.
        return offload_results_.emplace_back(tap_fd_ >= 0 ? hvio::tap_set_offload(tap_fd_, flags)
                                                          : 0);
    }
    void use_real_tap(int fd) { tap_fd_ = fd; }
    // A file for io_uring commands that is no hvio device fd.
    void use_uring_fd(int fd) { uring_fd_ = fd; }
    int uring_fd() const override { return uring_fd_; }
    std::vector<int> offload_results() {
        std::lock_guard<std::mutex> l(mu_);
        return offload_results_;
    }
    int link_flags(unsigned *f) override {
        *f = IFF_UP | IFF_RUNNING;
        return 0;
    }

    // The guest makes a chain available on queue q and kicks.
    void push(uint16_t q, const hvio_op &op, bool kick = true) {
        {
            std::lock_guard<std::mutex> l(mu_);
            hvio_op o = op;
            o.generation = gen_;
            ops_[q][op.tag] = o;
            q_[q].pending.push_back(op.tag);
        }
        if (kick)
            ::eventfd_write(efd_[q], 1);
    }
    // The guest writes the status byte (and maybe resets: generation + 1).
    void status(uint32_t st, uint64_t features = 0) {
        {
            std::lock_guard<std::mutex> l(mu_);
            events_ |= HVIO_EV_STATUS;
            if (!st) {
                events_ |= HVIO_EV_RESET;
                gen_++;
                for (Queue &q : q_)
                    q.pending.clear();
            }
            status_ = st;
            driver_features_ = features;
        }
        ::eventfd_write(dev_efd_, 1);
    }
    // The device is already in this state (no event pending).
    void set_state(uint32_t st, uint64_t features) {
        std::lock_guard<std::mutex> l(mu_);
        status_ = st;
        driver_features_ = features;
    }
    void set_budget(uint16_t q, unsigned b) {
        std::lock_guard<std::mutex> l(mu_);
        q_[q].budget = b;
    }

    // Polls p (which may call the accessors below) until it holds.
    template <typename Pred> bool wait(Pred p, std::chrono::milliseconds timeout = 5000ms) {
        auto end = std::chrono::steady_clock::now() + timeout;
        while (!p()) {
            if (std::chrono::steady_clock::now() > end)
                return false;
            std::this_thread::sleep_for(1ms);
        }
        return true;
    }
    bool wait_done(uint16_t q, size_t n) {
        return wait([&] { return done(q).size() >= n; });
    }
    std::vector<hvio_completion> done(uint16_t q) {
        std::lock_guard<std::mutex> l(mu_);
        return q_[q].done;
    }
    size_t runs(uint16_t q) {
        std::lock_guard<std::mutex> l(mu_);
        return q_[q].runs;
    }
    size_t inflight(uint16_t q) {
        std::lock_guard<std::mutex> l(mu_);
        return q_[q].inflight.size();
    }
    size_t stale(uint16_t q) {
        std::lock_guard<std::mutex> l(mu_);
        return q_[q].stale;
    }
    size_t bad_commits() {
        std::lock_guard<std::mutex> l(mu_);
        return bad_commits_;
    }
    std::vector<unsigned> offloads() {
        std::lock_guard<std::mutex> l(mu_);
        return offloads_;
    }
    struct Config {
        uint32_t off, flags;
        std::vector<uint8_t> bytes;
    };
    std::vector<Config> configs() {
        std::lock_guard<std::mutex> l(mu_);
        return configs_;
    }
    uint32_t generation() {
        std::lock_guard<std::mutex> l(mu_);
        return gen_;
    }

    std::mutex mu_;

  private:
    struct Queue {
        std::deque<uint16_t> pending;
        std::set<uint16_t> inflight;
        std::vector<hvio_completion> done;
        size_t runs = 0, stale = 0;
        unsigned budget = 0;
    };
    int efd_[2];
    int dev_efd_;
    std::vector<hvio_op> ops_[2];
    Queue q_[2];
    uint32_t gen_ = 5, status_ = 0, events_ = 0;
    uint64_t driver_features_ = 0;
    size_t bad_commits_ = 0;
    std::vector<unsigned> offloads_;
    std::vector<int> offload_results_;
    int tap_fd_ = -1;
    int uring_fd_ = -1;
    std::vector<Config> configs_;
};

class NetQueueTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (use_pty_) {
            // A pty refuses RWF_NOWAIT, as tun does before Linux 6.x.
            ASSERT_EQ(::openpty(&peer_, &tap_, nullptr, nullptr, nullptr), 0);
            termios t;
            for (int fd : {tap_, peer_}) {
                ASSERT_EQ(::tcgetattr(fd, &t), 0);
                ::cfmakeraw(&t);
                ASSERT_EQ(::tcsetattr(fd, TCSANOW, &t), 0);
            }
        } else {
            int sp[2];
            ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
            tap_ = sp[0];
            peer_ = sp[1];
        }
        ASSERT_EQ(::fcntl(tap_, F_SETFL, O_NONBLOCK), 0);
        int lp[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, lp), 0);
        link_ = lp[0];
        link_peer_ = lp[1];
        rx_efd_ = ::eventfd(0, EFD_CLOEXEC);
        tx_efd_ = ::eventfd(0, EFD_CLOEXEC);
        dev_efd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        ASSERT_GE(rx_efd_, 0);
        ASSERT_GE(tx_efd_, 0);
        ASSERT_GE(dev_efd_, 0);
        ram_.assign(0x100000, 0);
        ASSERT_TRUE(mem_.add(kGpa, ram_.size(), ram_.data()));
        kernel_ = std::make_unique<FakeNetKernel>(rx_efd_, tx_efd_, dev_efd_);
        hvio::NetQueueFds fds;
        fds.tap = tap_;
        fds.rx_kick = rx_efd_;
        fds.tx_kick = tx_efd_;
        fds.dev = dev_efd_;
        fds.link = link_;
        fds.ifindex = 7;
        q_ = std::make_unique<hvio::NetQueue>(*kernel_, mem_, kQueueSize, fds, IFF_UP, stop_,
                                              "test");
        ASSERT_TRUE(q_->init().ok());
    }
    void TearDown() override {
        stop();
        q_.reset();
        for (int fd : {tap_, peer_, link_, link_peer_, rx_efd_, tx_efd_, dev_efd_})
            ::close(fd);
    }

    void start() {
        thread_ = std::thread([this] { rc_ = q_->run(); });
    }
    void stop() {
        if (!thread_.joinable())
            return;
        stop_ = true;
        ::eventfd_write(rx_efd_, 1);
        ::eventfd_write(tx_efd_, 1);
        thread_.join();
    }

    // An op whose segments are the given (offset into RAM, length) pairs.
    hvio_op op(uint16_t tag, uint8_t type, std::initializer_list<std::pair<uint32_t, uint32_t>> s) {
        hvio_op o{};
        o.tag = tag;
        o.type = type;
        for (auto [off, len] : s) {
            o.segs[o.nr_segs++] = {kGpa + off, len, 0};
            o.len += len;
        }
        return o;
    }
    // A NET_TX op as the kernel hands it out: the checked header in the
    // slot (pkt's first 12 bytes), the frame's segments after it.
    hvio_op tx_op(uint16_t tag, const std::vector<uint8_t> &pkt,
                  std::initializer_list<std::pair<uint32_t, uint32_t>> s) {
        hvio_op o = op(tag, HVIO_OP_NET_TX, s);
        std::memcpy(o.net_hdr, pkt.data(), HVIO_NET_HDR_LEN);
        o.len += HVIO_NET_HDR_LEN;
        return o;
    }
    // A packet as the TAP hands it: a 12-byte header, then a frame.
    // (The header says nothing: no checksum or GSO offload.)
    std::vector<uint8_t> packet(size_t frame_len, uint8_t seed) {
        std::vector<uint8_t> p(HVIO_NET_HDR_LEN + frame_len);
        for (size_t i = HVIO_NET_HDR_LEN; i < p.size(); i++)
            p[i] = static_cast<uint8_t>(seed + i * 13);
        return p;
    }
    void peer_send(const std::vector<uint8_t> &p) {
        ASSERT_EQ(::send(peer_, p.data(), p.size(), 0), static_cast<ssize_t>(p.size()));
    }
    // The next packet the daemon wrote to the "TAP", or empty after 5 s.
    std::vector<uint8_t> peer_recv() {
        std::vector<uint8_t> buf(70000);
        pollfd p{peer_, POLLIN, 0};
        if (::poll(&p, 1, 5000) != 1)
            return {};
        ssize_t n = ::recv(peer_, buf.data(), buf.size(), MSG_DONTWAIT);
        buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
        return buf;
    }

    bool use_pty_ = false;
    int tap_ = -1, peer_ = -1, link_ = -1, link_peer_ = -1;
    int rx_efd_ = -1, tx_efd_ = -1, dev_efd_ = -1;
    std::vector<uint8_t> ram_;
    hvio::GuestMemory mem_;
    std::atomic<bool> stop_{false};
    std::unique_ptr<FakeNetKernel> kernel_;
    std::unique_ptr<hvio::NetQueue> q_;
    std::thread thread_;
    int rc_ = -1;
};

TEST_F(NetQueueTest, TxWritesTheCheckedHeaderAndTheFrameAsOnePacket) {
    start();
    // The header the kernel checked (in the op slot), then the frame in
    // two segments.  The guest's own copy of the header (at 0x1000, not
    // named by the op) says GSO TCPV4 + ECN: it must not reach the TAP.
    std::vector<uint8_t> pkt = packet(100, 1);
    pkt[6] = 0x22; // csum_start: any checked value passes through as is
    std::memcpy(&ram_[0x1000], pkt.data(), 12);
    ram_[0x1000 + 1] = 0x81;
    std::memcpy(&ram_[0x2000], pkt.data() + 12, 60);
    std::memcpy(&ram_[0x3000], pkt.data() + 72, 40);
    kernel_->push(HVIO_NET_TX_QUEUE, tx_op(3, pkt, {{0x2000, 60}, {0x3000, 40}}));
    EXPECT_EQ(peer_recv(), pkt);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_TX_QUEUE, 1));
    auto d = kernel_->done(HVIO_NET_TX_QUEUE);
    EXPECT_EQ(d[0].tag, 3);
    EXPECT_EQ(d[0].result, 112);
    EXPECT_EQ(d[0].generation, kernel_->generation());
    EXPECT_EQ(q_->counters().tx_packets.load(), 1u);
    EXPECT_EQ(q_->counters().tx_bytes.load(), 100u);
    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
    EXPECT_EQ(kernel_->inflight(HVIO_NET_TX_QUEUE), 0u);
}

TEST_F(NetQueueTest, FetchRefusedFallsBackToQueueRunAndEventfds) {
    // The FETCH goes to a file without io_uring commands (an older
    // hvio.ko refuses them the same way: EOPNOTSUPP): the loop serves
    // both queues with QUEUE_RUN and the kick eventfds instead.
    kernel_->use_uring_fd(dev_efd_);
    start();
    std::vector<uint8_t> pkt = packet(64, 9);
    std::memcpy(&ram_[0x2000], pkt.data() + 12, 64);
    kernel_->push(HVIO_NET_TX_QUEUE, tx_op(1, pkt, {{0x2000, 64}}));
    EXPECT_EQ(peer_recv(), pkt);
    kernel_->push(HVIO_NET_RX_QUEUE, op(2, HVIO_OP_NET_RX, {{0x8000, 2048}}));
    std::vector<uint8_t> in = packet(80, 3);
    peer_send(in);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 1));
    EXPECT_EQ(kernel_->done(HVIO_NET_RX_QUEUE)[0].result, static_cast<int>(in.size()));
    EXPECT_EQ(0, std::memcmp(&ram_[0x8000], in.data(), in.size()));
    EXPECT_EQ(q_->counters().path.load(), hvio::kPathQueueRun);
    EXPECT_EQ(q_->counters().fetches.load(), 0u);
    EXPECT_GT(kernel_->runs(HVIO_NET_TX_QUEUE), 0u);
    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
}

TEST_F(NetQueueTest, TxBatchKeepsOrderAndHonoursRunOutMore) {
    // The kernel hands out 2 ops per call and says "more": the loop must
    // come back for the rest without another kick.
    kernel_->set_budget(HVIO_NET_TX_QUEUE, 2);
    for (uint16_t t = 0; t < 7; t++) {
        std::vector<uint8_t> pkt = packet(50, static_cast<uint8_t>(t));
        std::memcpy(&ram_[0x1000 * (t + 1)], pkt.data(), pkt.size());
        kernel_->push(HVIO_NET_TX_QUEUE,
                      tx_op(t, pkt, {{0x1000u * (t + 1) + 12, uint32_t(pkt.size() - 12)}}), t == 6);
    }
    start();
    for (uint16_t t = 0; t < 7; t++)
        EXPECT_EQ(peer_recv(), packet(50, static_cast<uint8_t>(t))) << t;
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_TX_QUEUE, 7));
    for (const hvio_completion &c : kernel_->done(HVIO_NET_TX_QUEUE))
        EXPECT_EQ(c.result, 62);
}

TEST_F(NetQueueTest, TxBadSegmentFailsThatPacketOnly) {
    start();
    kernel_->push(HVIO_NET_TX_QUEUE, tx_op(1, packet(0, 0), {{0x200000, 60}})); // outside RAM
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_TX_QUEUE, 1));
    EXPECT_EQ(kernel_->done(HVIO_NET_TX_QUEUE)[0].result, -EFAULT);
    EXPECT_EQ(q_->counters().tx_errors.load(), 1u);
    // The queue goes on.
    std::vector<uint8_t> pkt = packet(30, 9);
    std::memcpy(&ram_[0x1000], pkt.data(), pkt.size());
    kernel_->push(HVIO_NET_TX_QUEUE, tx_op(2, pkt, {{0x1000 + 12, uint32_t(pkt.size() - 12)}}));
    EXPECT_EQ(peer_recv(), pkt);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_TX_QUEUE, 2));
    EXPECT_EQ(kernel_->done(HVIO_NET_TX_QUEUE)[1].result, 42);
}

TEST_F(NetQueueTest, RxReadsOnlyIntoGuestBuffersAndKeepsTheRestArmed) {
    start();
    // Two buffers posted (the second as two segments), then one packet.
    kernel_->push(HVIO_NET_RX_QUEUE, op(4, HVIO_OP_NET_RX, {{0x10000, 2048}}));
    kernel_->push(HVIO_NET_RX_QUEUE, op(5, HVIO_OP_NET_RX, {{0x20000, 1000}, {0x30000, 1048}}));
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == 2; }));
    std::vector<uint8_t> p1 = packet(1400, 3);
    peer_send(p1);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 1));
    auto d = kernel_->done(HVIO_NET_RX_QUEUE);
    EXPECT_EQ(d[0].tag, 4);
    EXPECT_EQ(d[0].result, 1412);
    EXPECT_EQ(std::memcmp(&ram_[0x10000], p1.data(), p1.size()), 0);
    // The other op waits, armed, for the next packet.
    EXPECT_EQ(kernel_->inflight(HVIO_NET_RX_QUEUE), 1u);
    std::vector<uint8_t> p2 = packet(1500, 4);
    peer_send(p2);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 2));
    d = kernel_->done(HVIO_NET_RX_QUEUE);
    EXPECT_EQ(d[1].tag, 5);
    EXPECT_EQ(d[1].result, 1512);
    EXPECT_EQ(std::memcmp(&ram_[0x20000], p2.data(), 1000), 0);
    EXPECT_EQ(std::memcmp(&ram_[0x30000], p2.data() + 1000, 512), 0);
    EXPECT_EQ(q_->counters().rx_packets.load(), 2u);
    EXPECT_EQ(q_->counters().rx_bytes.load(), 2900u);
    EXPECT_GE(q_->counters().eagain.load(), 1u);
    EXPECT_GE(q_->counters().polls.load(), 1u);
}

// An op of 17 MRG_RXBUF buffers of 4 KiB (a 64 KiB GSO packet's worth)
// is read with 8 iovecs: its first 7 buffers directly, the rest of the
// packet through the slot's bounce into buffers 8 to 17.  After a packet
// that long the next read goes into all 17 buffers directly, until a
// packet fits the 7 again.
TEST_F(NetQueueTest, RxOpOfManyBuffersGetsEveryByteInPlace) {
    start();
    auto big_op = [&](uint16_t tag, uint32_t base) {
        hvio_op o{};
        o.tag = tag;
        o.type = HVIO_OP_NET_RX;
        for (unsigned i = 0; i < 17; i++) {
            // gaps between the buffers: each byte must land in its own
            o.segs[o.nr_segs++] = {kGpa + base + i * 0x2000, 4096, 0};
            o.len += 4096;
        }
        return o;
    };
    const uint32_t base[4] = {0x20000, 0x50000, 0x80000, 0xb0000};
    for (uint16_t i = 0; i < 4; i++)
        kernel_->push(HVIO_NET_RX_QUEUE, big_op(3 + i, base[i]));
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == 4; }));
    // Past the 7 direct buffers by 5000 bytes, into buffer 9; then a
    // longer one, a small one, and the first length again.
    const size_t lens[4] = {7 * 4096 + 5000, 15 * 4096 + 100, 64 + HVIO_NET_HDR_LEN,
                            7 * 4096 + 5000};
    const uint64_t bounced[4] = {1, 1, 1, 2};
    for (unsigned k = 0; k < 4; k++) {
        std::vector<uint8_t> p = packet(lens[k] - HVIO_NET_HDR_LEN, static_cast<uint8_t>(7 + k));
        peer_send(p);
        ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, k + 1));
        auto d = kernel_->done(HVIO_NET_RX_QUEUE);
        EXPECT_EQ(d[k].tag, 3 + k);
        EXPECT_EQ(d[k].result, static_cast<int32_t>(p.size()));
        for (size_t off = 0; off < p.size(); off += 4096) {
            const size_t n = std::min<size_t>(4096, p.size() - off);
            EXPECT_EQ(std::memcmp(&ram_[base[k] + off / 4096 * 0x2000], p.data() + off, n), 0)
                << "packet " << k << " buffer " << off / 4096;
        }
        // nothing past the packet
        EXPECT_EQ(ram_[base[k] + p.size() / 4096 * 0x2000 + p.size() % 4096], 0) << k;
        EXPECT_EQ(q_->counters().rx_bounced.load(), bounced[k]) << "packet " << k;
    }
    EXPECT_EQ(q_->counters().rx_packets.load(), 4u);
    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
}

TEST(NetRxRead, PlanKeepsShortOpsAndBouncesTheTailOfLongOnes) {
    std::vector<uint8_t> ram(20 * 100), bounce(1000);
    std::vector<iovec> op;
    for (unsigned i = 0; i < 20; i++)
        op.push_back({&ram[i * 100], 100});
    hvio::RxReadPlan p;
    // up to 8 iovecs: the op itself, nothing bounced
    hvio::rx_read_plan(op.data(), 8, nullptr, 0, p);
    p.used = true;
    EXPECT_EQ(p.nr, 8u);
    EXPECT_EQ(p.direct, 800u);
    EXPECT_EQ(p.total, 800u);
    EXPECT_EQ(p.iov[7].iov_base, op[7].iov_base);
    EXPECT_FALSE(hvio::rx_read_scatter(op.data(), 8, p, 800));
    // 20: seven direct, the other 13 buffers' 1300 bytes capped at 1000
    hvio::rx_read_plan(op.data(), 20, bounce.data(), bounce.size(), p);
    p.used = true;
    EXPECT_EQ(p.nr, 8u);
    EXPECT_EQ(p.direct, 700u);
    EXPECT_EQ(p.total, 1700u);
    EXPECT_EQ(p.iov[7].iov_base, bounce.data());
    EXPECT_EQ(p.iov[7].iov_len, 1000u);
    EXPECT_FALSE(hvio::rx_read_scatter(op.data(), 20, p, 700));
    for (size_t i = 0; i < bounce.size(); i++)
        bounce[i] = static_cast<uint8_t>(i + 1);
    // 950 bytes read: 250 of them bounced, into buffers 7 (100), 8 (100), 9 (50)
    EXPECT_TRUE(hvio::rx_read_scatter(op.data(), 20, p, 950));
    EXPECT_EQ(std::memcmp(&ram[700], bounce.data(), 250), 0);
    EXPECT_EQ(ram[950], 0);
    EXPECT_EQ(ram[699], 0);
    // a read longer than the plan scatters only what the plan held
    EXPECT_TRUE(hvio::rx_read_scatter(op.data(), 20, p, 5000));
    EXPECT_EQ(std::memcmp(&ram[700], bounce.data(), 1000), 0);
    EXPECT_EQ(ram[1700], 0);
    // a read that went by the op's own iovecs leaves them alone
    p.used = false;
    std::fill(ram.begin(), ram.end(), 0);
    EXPECT_FALSE(hvio::rx_read_scatter(op.data(), 20, p, 950));
    EXPECT_EQ(ram[700], 0);
}

TEST_F(NetQueueTest, RxPacketsWaitInTheTapUntilTheGuestPostsBuffers) {
    start();
    std::vector<std::vector<uint8_t>> pkts;
    for (uint8_t i = 0; i < 3; i++) {
        pkts.push_back(packet(100 + i, i));
        peer_send(pkts.back());
    }
    std::this_thread::sleep_for(100ms);
    // Nothing was read: there was nowhere to put it.
    EXPECT_EQ(kernel_->done(HVIO_NET_RX_QUEUE).size(), 0u);
    EXPECT_EQ(q_->counters().rx_packets.load(), 0u);
    char probe[4096];
    ASSERT_EQ(::recv(tap_, probe, sizeof(probe), MSG_PEEK | MSG_DONTWAIT), 112);

    for (uint16_t t = 0; t < 3; t++)
        kernel_->push(HVIO_NET_RX_QUEUE, op(t, HVIO_OP_NET_RX, {{0x8000u * (t + 1), 4096}}),
                      t == 2);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 3));
    auto d = kernel_->done(HVIO_NET_RX_QUEUE);
    for (uint16_t t = 0; t < 3; t++) {
        EXPECT_EQ(d[t].tag, t);
        EXPECT_EQ(d[t].result, static_cast<int>(pkts[t].size()));
        EXPECT_EQ(std::memcmp(&ram_[0x8000u * (t + 1)], pkts[t].data(), pkts[t].size()), 0) << t;
    }
}

TEST_F(NetQueueTest, RxReadsAdaptToWhatTheTapHolds) {
    // Every buffer the queue can arm is posted.  Single packets then cost
    // one empty read per wakeup, not one per armed op; a burst queued
    // meanwhile is read in growing rounds, in order, none lost.
    uint16_t tag = 0;
    for (; tag < kQueueSize; tag++)
        kernel_->push(HVIO_NET_RX_QUEUE, op(tag, HVIO_OP_NET_RX, {{0x4000u * tag, 4096}}),
                      tag == kQueueSize - 1);
    start();
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == kQueueSize; }));
    constexpr unsigned kSingles = 8;
    for (unsigned i = 0; i < kSingles; i++) {
        peer_send(packet(60, static_cast<uint8_t>(i)));
        ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, i + 1));
    }
    const hvio::NetCounters &c = q_->counters();
    const uint64_t rounds = c.rx_rounds.load(), reads = c.rx_reads.load();
    std::printf("singles: %llu reads in %llu rounds, %llu empty, batch now %u\n",
                static_cast<unsigned long long>(reads), static_cast<unsigned long long>(rounds),
                static_cast<unsigned long long>(c.eagain.load()), c.rx_batch.load());
    EXPECT_EQ(c.rx_packets.load(), kSingles);
    // The first wakeup may read a whole start batch; after it, at most
    // one read per round finds the TAP empty.
    EXPECT_LE(c.eagain.load(), rounds + hvio::NetQueue::kRxBatchStart);
    EXPECT_LE(reads, kSingles + rounds + hvio::NetQueue::kRxBatchStart);
    EXPECT_LE(c.rx_batch.load(), hvio::NetQueue::kRxBatchMin);

    // A burst of 8 packets while 8 buffers are armed: all of them land,
    // in order, in the buffers in the order they were posted.
    std::vector<std::vector<uint8_t>> burst;
    for (unsigned i = 0; i < 8; i++) {
        burst.push_back(packet(200 + i, static_cast<uint8_t>(100 + i)));
        peer_send(burst.back());
    }
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, kSingles + 8));
    auto d = kernel_->done(HVIO_NET_RX_QUEUE);
    for (unsigned i = 0; i < d.size(); i++) {
        EXPECT_EQ(d[i].tag, i);
        if (i >= kSingles) {
            EXPECT_EQ(d[i].result, static_cast<int>(burst[i - kSingles].size())) << i;
            EXPECT_EQ(std::memcmp(&ram_[0x4000u * i], burst[i - kSingles].data(),
                                  burst[i - kSingles].size()),
                      0)
                << i;
        }
    }
    EXPECT_EQ(c.rx_packets.load(), kSingles + 8);
    EXPECT_EQ(c.rx_errors.load(), 0u);
    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
}

TEST_F(NetQueueTest, IdleDeviceSleeps) {
    kernel_->push(HVIO_NET_RX_QUEUE, op(0, HVIO_OP_NET_RX, {{0x1000, 2048}}));
    start();
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == 1; }));
    std::this_thread::sleep_for(50ms);
    const size_t rx = kernel_->runs(HVIO_NET_RX_QUEUE), tx = kernel_->runs(HVIO_NET_TX_QUEUE);
    const uint64_t polls = q_->counters().polls.load(), eagain = q_->counters().eagain.load();
    std::this_thread::sleep_for(300ms);
    EXPECT_EQ(kernel_->runs(HVIO_NET_RX_QUEUE), rx);
    EXPECT_EQ(kernel_->runs(HVIO_NET_TX_QUEUE), tx);
    EXPECT_EQ(q_->counters().polls.load(), polls);
    EXPECT_EQ(q_->counters().eagain.load(), eagain);
    EXPECT_LE(rx + tx, 6u);
}

TEST_F(NetQueueTest, StopCommitsArmedRxAsCanceledAndSendsWhatWasPosted) {
    start();
    kernel_->push(HVIO_NET_RX_QUEUE, op(1, HVIO_OP_NET_RX, {{0x1000, 2048}}));
    kernel_->push(HVIO_NET_RX_QUEUE, op(2, HVIO_OP_NET_RX, {{0x2000, 2048}}));
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == 2; }));
    // A TX chain made available (not kicked) just before the stop.
    std::vector<uint8_t> pkt = packet(40, 2);
    std::memcpy(&ram_[0x9000], pkt.data(), pkt.size());
    kernel_->push(HVIO_NET_TX_QUEUE, tx_op(6, pkt, {{0x9000 + 12, uint32_t(pkt.size() - 12)}}),
                  false);
    stop();
    EXPECT_EQ(rc_, 0);
    auto d = kernel_->done(HVIO_NET_RX_QUEUE);
    ASSERT_EQ(d.size(), 2u);
    for (const hvio_completion &c : d)
        EXPECT_EQ(c.result, -ECANCELED);
    EXPECT_EQ(kernel_->inflight(HVIO_NET_RX_QUEUE), 0u);
    EXPECT_EQ(peer_recv(), pkt);
    ASSERT_EQ(kernel_->done(HVIO_NET_TX_QUEUE).size(), 1u);
    EXPECT_EQ(kernel_->done(HVIO_NET_TX_QUEUE)[0].result, 52);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
    EXPECT_EQ(q_->counters().rx_canceled.load(), 2u);
}

TEST_F(NetQueueTest, StopLeavesNoRequestInTheRing) {
    // run() returns with nothing parked in its io_uring: the polls of the
    // TAP and of the link socket (and of the device fd: what kept hvio.ko
    // busy after the daemon exited) hold no reference to their files once
    // it returns, while the ring itself still exists.
    kernel_->push(HVIO_NET_RX_QUEUE, op(0, HVIO_OP_NET_RX, {{0x1000, 2048}}));
    start();
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == 1; }));
    std::this_thread::sleep_for(50ms); // asleep, its polls armed
    ASSERT_EQ(q_->counters().polls.load(), 1u);
    stop();
    EXPECT_EQ(rc_, 0);
    // Our descriptors were the last references: the sockets go, and their
    // peers see it.
    ::close(tap_);
    tap_ = -1;
    ::close(link_);
    link_ = -1;
    EXPECT_LT(::send(peer_, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT), 0) << "the TAP poll holds it";
    EXPECT_LT(::send(link_peer_, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT), 0)
        << "the link poll holds it";
}

TEST_F(NetQueueTest, FeaturesOkSetsOffloadsAndResetClearsThem) {
    start();
    const uint64_t f = bit(VIRTIO_F_VERSION_1) | bit(1) | bit(7) | bit(8);
    kernel_->status(
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK, f);
    ASSERT_TRUE(kernel_->wait([&] { return kernel_->offloads().size() == 1; }));
    EXPECT_EQ(kernel_->offloads()[0], unsigned(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
    EXPECT_EQ(q_->counters().offload_flags.load(), unsigned(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6));
    // DRIVER_OK: nothing new for the TAP.
    kernel_->status(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
                        VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
                    f);
    kernel_->push(HVIO_NET_RX_QUEUE, op(3, HVIO_OP_NET_RX, {{0x1000, 2048}}));
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == 1; }));
    EXPECT_EQ(kernel_->offloads().size(), 1u);

    // Reset: offloads off, the armed op of the old generation given back
    // (the kernel drops it as stale) and never filled.
    const uint32_t old_gen = kernel_->generation();
    kernel_->status(0);
    ASSERT_TRUE(kernel_->wait([&] { return kernel_->offloads().size() == 2; }));
    EXPECT_EQ(kernel_->offloads()[1], 0u);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 1));
    auto d = kernel_->done(HVIO_NET_RX_QUEUE);
    EXPECT_EQ(d[0].tag, 3);
    EXPECT_EQ(d[0].result, -ECANCELED);
    EXPECT_EQ(d[0].generation, old_gen);
    EXPECT_EQ(kernel_->stale(HVIO_NET_RX_QUEUE), 1u);
    peer_send(packet(100, 1));
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(ram_[0x1000], 0);

    // The next driver negotiates no offloads: still 0, no call needed;
    // with GUEST_CSUM only, CSUM.
    kernel_->status(VIRTIO_CONFIG_S_FEATURES_OK, bit(VIRTIO_F_VERSION_1) | bit(1));
    ASSERT_TRUE(kernel_->wait([&] { return kernel_->offloads().size() == 3; }));
    EXPECT_EQ(kernel_->offloads()[2], unsigned(TUN_F_CSUM));
    EXPECT_EQ(q_->counters().resets.load(), 1u);
}

TEST_F(NetQueueTest, TakenOverDeviceGetsOffloadsAndLinkAtStart) {
    // A device past DRIVER_OK when this daemon starts (an orphan taken
    // over): no event will come, yet the TAP must get the offloads, and
    // the config space this TAP's link (the fake says up and running).
    kernel_->set_state(VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
                       bit(VIRTIO_F_VERSION_1) | bit(1) | bit(8));
    q_->taken_over();
    start();
    ASSERT_TRUE(kernel_->wait([&] { return kernel_->offloads().size() == 1; }));
    EXPECT_EQ(kernel_->offloads()[0], unsigned(TUN_F_CSUM | TUN_F_TSO6));
    ASSERT_TRUE(kernel_->wait([&] { return kernel_->configs().size() == 1; }));
    EXPECT_EQ(kernel_->configs()[0].off, 6u);
    EXPECT_EQ(kernel_->configs()[0].bytes, (std::vector<uint8_t>{1, 0}));
}

TEST_F(NetQueueTest, FreshDeviceWritesNoConfigAtStart) {
    start();
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(kernel_->configs().empty());
    EXPECT_TRUE(kernel_->offloads().empty());
}

TEST_F(NetQueueTest, RxOffloadsTheGuestDidNotNegotiateNeverReachIt) {
    // Features without GUEST_CSUM; the "TAP" still hands out a partial
    // checksum (queued before TUNSETOFFLOAD 0) and then a TSO packet.
    kernel_->set_state(VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
                       bit(VIRTIO_F_VERSION_1));
    start();
    kernel_->push(HVIO_NET_RX_QUEUE, op(1, HVIO_OP_NET_RX, {{0x1000, 2048}}));
    kernel_->push(HVIO_NET_RX_QUEUE, op(2, HVIO_OP_NET_RX, {{0x2000, 2048}}));
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == 2; }));
    std::vector<uint8_t> p = partial_csum_packet(200, 0x4321);
    peer_send(p);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 1));
    EXPECT_EQ(kernel_->done(HVIO_NET_RX_QUEUE)[0].result, 212);
    std::vector<uint8_t> got(ram_.begin() + 0x1000, ram_.begin() + 0x1000 + 212);
    EXPECT_EQ(got[0], 0);
    EXPECT_EQ(fold(sum16(got, HVIO_NET_HDR_LEN + 20, got.size()) + 0x4321), 0xffff);
    EXPECT_EQ(q_->counters().rx_csum_fixed.load(), 1u);

    p[1] = 1; // GSO TCPV4
    peer_send(p);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 2));
    EXPECT_EQ(kernel_->done(HVIO_NET_RX_QUEUE)[1].result, -EPROTO); // given back
    EXPECT_EQ(q_->counters().rx_offload_dropped.load(), 1u);
    EXPECT_EQ(q_->counters().rx_errors.load(), 0u);
}

TEST_F(NetQueueTest, LinkFollowsTheTap) {
    start();
    // Started with IFF_UP only (no carrier): link down, nothing sent yet.
    std::vector<uint8_t> msg;
    put_link_msg(msg, RTM_NEWLINK, 3, IFF_UP | IFF_RUNNING); // another interface
    ASSERT_EQ(::send(link_peer_, msg.data(), msg.size(), 0), ssize_t(msg.size()));
    std::this_thread::sleep_for(50ms);
    EXPECT_TRUE(kernel_->configs().empty());

    msg.clear();
    put_link_msg(msg, RTM_NEWLINK, 7, IFF_UP | IFF_RUNNING);
    ASSERT_EQ(::send(link_peer_, msg.data(), msg.size(), 0), ssize_t(msg.size()));
    ASSERT_TRUE(kernel_->wait([&] { return kernel_->configs().size() == 1; }));
    auto c = kernel_->configs()[0];
    EXPECT_EQ(c.off, 6u);
    EXPECT_EQ(c.flags, unsigned(HVIO_CONFIG_F_NOTIFY));
    EXPECT_EQ(c.bytes, (std::vector<uint8_t>{1, 0}));

    // The same state again: no config change.
    ASSERT_EQ(::send(link_peer_, msg.data(), msg.size(), 0), ssize_t(msg.size()));
    msg.clear();
    put_link_msg(msg, RTM_NEWLINK, 7, IFF_RUNNING); // admin down
    ASSERT_EQ(::send(link_peer_, msg.data(), msg.size(), 0), ssize_t(msg.size()));
    ASSERT_TRUE(kernel_->wait([&] { return kernel_->configs().size() == 2; }));
    EXPECT_EQ(kernel_->configs()[1].bytes, (std::vector<uint8_t>{0, 0}));
    EXPECT_EQ(q_->counters().link_changes.load(), 2u);
    EXPECT_EQ(q_->counters().link_status.load(), 0u);
}

// The same loop on a "TAP" that refuses RWF_NOWAIT: the reads must still
// go only into armed guest buffers, and none may be left waiting in the
// kernel to land in buffers the guest took back with a reset.
class NetQueuePtyTest : public NetQueueTest {
  protected:
    NetQueuePtyTest() { use_pty_ = true; }
    void write_peer(const std::vector<uint8_t> &p) {
        ASSERT_EQ(::write(peer_, p.data(), p.size()), static_cast<ssize_t>(p.size()));
    }
};

TEST_F(NetQueuePtyTest, ReadsWithoutNowaitStillOnlyIntoArmedBuffers) {
    start();
    kernel_->push(HVIO_NET_RX_QUEUE, op(1, HVIO_OP_NET_RX, {{0x1000, 2048}}));
    kernel_->push(HVIO_NET_RX_QUEUE, op(2, HVIO_OP_NET_RX, {{0x2000, 2048}}));
    ASSERT_TRUE(kernel_->wait([&] { return q_->counters().rx_armed.load() == 2; }));
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(q_->counters().rx_errors.load(), 0u); // EOPNOTSUPP is not an error
    std::vector<uint8_t> p1 = packet(100, 5);
    write_peer(p1);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 1));
    auto d = kernel_->done(HVIO_NET_RX_QUEUE);
    EXPECT_EQ(d[0].tag, 1);
    EXPECT_EQ(d[0].result, 112);
    EXPECT_EQ(std::memcmp(&ram_[0x1000], p1.data(), p1.size()), 0);

    // Reset with op 2 armed: it is given back, and data arriving later
    // does not land in its buffer.
    const uint32_t old_gen = kernel_->generation();
    kernel_->status(0);
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 2));
    d = kernel_->done(HVIO_NET_RX_QUEUE);
    EXPECT_EQ(d[1].tag, 2);
    EXPECT_EQ(d[1].result, -ECANCELED);
    EXPECT_EQ(d[1].generation, old_gen);
    std::vector<uint8_t> p2 = packet(80, 6);
    write_peer(p2);
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(ram_[0x2000], 0);
    EXPECT_EQ(kernel_->done(HVIO_NET_RX_QUEUE).size(), 2u);
    // The new generation's buffer gets it.
    kernel_->push(HVIO_NET_RX_QUEUE, op(2, HVIO_OP_NET_RX, {{0x3000, 2048}}));
    ASSERT_TRUE(kernel_->wait_done(HVIO_NET_RX_QUEUE, 3));
    d = kernel_->done(HVIO_NET_RX_QUEUE);
    EXPECT_EQ(d[2].result, 92);
    EXPECT_EQ(d[2].generation, kernel_->generation());
    EXPECT_EQ(std::memcmp(&ram_[0x3000], p2.data(), p2.size()), 0);
    stop();
    EXPECT_EQ(rc_, 0);
    EXPECT_EQ(kernel_->bad_commits(), 0u);
}

// ---- a real TAP, in a network namespace of our own ---------------------------------

// Root only (CI runs as root); the test thread moves into a fresh network
// namespace and back, so nothing outside it is touched.
class NetTapTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0)
            GTEST_SKIP() << "needs root for a network namespace and a TAP";
        home_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        ASSERT_GE(home_, 0);
        if (::unshare(CLONE_NEWNET) < 0)
            GTEST_SKIP() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
        moved_ = true;
        if (::access("/dev/net/tun", R_OK | W_OK) < 0)
            GTEST_SKIP() << "no /dev/net/tun";
        // No IPv6 chatter (router solicitations, MLD) on the TAP.
        for (const char *f : {"/proc/sys/net/ipv6/conf/all/disable_ipv6",
                              "/proc/sys/net/ipv6/conf/default/disable_ipv6"}) {
            int fd = ::open(f, O_WRONLY | O_CLOEXEC);
            if (fd >= 0) {
                (void)!::write(fd, "1", 1);
                ::close(fd);
            }
        }
    }
    void TearDown() override {
        if (moved_) {
            EXPECT_EQ(::setns(home_, CLONE_NEWNET), 0);
        }
        if (home_ >= 0)
            ::close(home_);
    }

    static void set_up(const std::string &name, bool up) {
        int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        ASSERT_GE(s, 0);
        ifreq ifr{};
        std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
        ASSERT_EQ(::ioctl(s, SIOCGIFFLAGS, &ifr), 0);
        ifr.ifr_flags = static_cast<short>(up ? ifr.ifr_flags | IFF_UP : ifr.ifr_flags & ~IFF_UP);
        ASSERT_EQ(::ioctl(s, SIOCSIFFLAGS, &ifr), 0);
        ::close(s);
    }

    int home_ = -1;
    bool moved_ = false;
};

TEST_F(NetTapTest, OpenTapConfiguresIt) {
    std::string why;
    auto tap = hvio::open_tap("hviot0", &why);
    ASSERT_TRUE(tap.ok()) << why;
    EXPECT_EQ(tap->name, "hviot0");
    EXPECT_GT(tap->ifindex, 0);
    EXPECT_FALSE(tap->flags & IFF_UP); // admin state is the user's
    EXPECT_EQ(tap->mtu, 1500u);
    ifreq ifr{};
    ASSERT_EQ(::ioctl(tap->fd.get(), TUNGETIFF, &ifr), 0);
    EXPECT_EQ(ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR),
              IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
    int hdr = 0;
    ASSERT_EQ(::ioctl(tap->fd.get(), TUNGETVNETHDRSZ, &hdr), 0);
    EXPECT_EQ(hdr, HVIO_NET_HDR_LEN);
    EXPECT_TRUE(::fcntl(tap->fd.get(), F_GETFL) & O_NONBLOCK);

    // What tun_offload_flags() produces tun accepts; TSO without CSUM it
    // does not, which is why the mapping drops it.
    EXPECT_EQ(hvio::tap_set_offload(tap->fd.get(),
                                    hvio::tun_offload_flags(hvio::net_features(net_cfg()))),
              0);
    EXPECT_EQ(hvio::tap_set_offload(tap->fd.get(), TUN_F_TSO4), -EINVAL);
    EXPECT_EQ(hvio::tap_set_offload(tap->fd.get(), 0), 0);

    // A second user of the same TAP is refused, in words.
    auto again = hvio::open_tap("hviot0", &why);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error(), EBUSY);
    EXPECT_NE(why.find("already attached"), std::string::npos) << why;

    auto fl = hvio::link_flags("hviot0");
    ASSERT_TRUE(fl.ok());
    set_up("hviot0", true);
    fl = hvio::link_flags("hviot0");
    ASSERT_TRUE(fl.ok());
    EXPECT_EQ(hvio::net_link_status(*fl), hvio::kNetSLinkUp); // attached: carrier
}

TEST_F(NetTapTest, TapHvioCreatedOutlivesItsFdUntilReleased) {
    // A TAP open_tap() created is marked and persistent: a daemon killed
    // with it open leaves it (and its addresses) for the next one.
    std::string why;
    auto tap = hvio::open_tap("hviot2", &why);
    ASSERT_TRUE(tap.ok()) << why;
    EXPECT_TRUE(tap->created);
    EXPECT_TRUE(tap->fresh);
    const unsigned idx = ::if_nametoindex("hviot2");
    tap->fd.reset(); // as a SIGKILL would
    EXPECT_EQ(::if_nametoindex("hviot2"), idx);
    auto listed = hvio::created_taps();
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(*listed, std::vector<std::string>{"hviot2"});

    auto again = hvio::open_tap("hviot2", &why); // the takeover
    ASSERT_TRUE(again.ok()) << why;
    EXPECT_TRUE(again->created);
    EXPECT_FALSE(again->fresh);
    EXPECT_EQ(again->ifindex, static_cast<int>(idx));
    EXPECT_EQ(hvio::tap_release(*again), 0); // the orderly stop
    again->fd.reset();
    EXPECT_EQ(::if_nametoindex("hviot2"), 0u);

    // One a killed daemon left: `hvio stop` removes it.
    auto left = hvio::open_tap("hviot2", &why);
    ASSERT_TRUE(left.ok()) << why;
    EXPECT_EQ(hvio::tap_remove_created("hviot2"), 0); // still held: not touched
    left->fd.reset();
    EXPECT_EQ(hvio::tap_remove_created("hviot2"), 1);
    EXPECT_EQ(::if_nametoindex("hviot2"), 0u);
}

TEST_F(NetTapTest, UsersPersistentTapStaysTheirs) {
    int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "hviot3", IFNAMSIZ - 1);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    ASSERT_EQ(::ioctl(fd, TUNSETIFF, &ifr), 0);
    ASSERT_EQ(::ioctl(fd, TUNSETPERSIST, 1UL), 0);
    ::close(fd);
    std::string why;
    auto tap = hvio::open_tap("hviot3", &why);
    ASSERT_TRUE(tap.ok()) << why;
    EXPECT_FALSE(tap->created);
    EXPECT_EQ(hvio::tap_release(*tap), 0);
    tap->fd.reset();
    EXPECT_NE(::if_nametoindex("hviot3"), 0u);
    EXPECT_EQ(hvio::tap_remove_created("hviot3"), 0);
    EXPECT_NE(::if_nametoindex("hviot3"), 0u);
    auto listed = hvio::created_taps();
    ASSERT_TRUE(listed.ok());
    EXPECT_TRUE(listed->empty());
}

TEST_F(NetTapTest, PacketsBothWaysLinkAndOffloads) {
    auto watch = hvio::open_link_watch();
    ASSERT_TRUE(watch.ok()) << watch.message();
    std::string why;
    auto tap = hvio::open_tap("hviot1", &why);
    ASSERT_TRUE(tap.ok()) << why;

    int rx_efd = ::eventfd(0, EFD_CLOEXEC), tx_efd = ::eventfd(0, EFD_CLOEXEC);
    int dev_efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    std::vector<uint8_t> ram(0x40000, 0);
    hvio::GuestMemory mem;
    ASSERT_TRUE(mem.add(kGpa, ram.size(), ram.data()));
    FakeNetKernel kernel(rx_efd, tx_efd, dev_efd);
    kernel.use_real_tap(tap->fd.get());
    hvio::NetQueueFds fds;
    fds.tap = tap->fd.get();
    fds.rx_kick = rx_efd;
    fds.tx_kick = tx_efd;
    fds.dev = dev_efd;
    fds.link = watch->get();
    fds.ifindex = tap->ifindex;
    std::atomic<bool> stop{false};
    hvio::NetQueue q(kernel, mem, kQueueSize, fds, tap->flags, stop, "tap test");
    ASSERT_TRUE(q.init().ok());
    int rc = -1;
    std::thread t([&] { rc = q.run(); });

    // ip link set up: the guest's link comes up, with an interrupt.
    set_up("hviot1", true);
    ASSERT_TRUE(kernel.wait([&] { return kernel.configs().size() == 1; }));
    EXPECT_EQ(kernel.configs()[0].off, 6u);
    EXPECT_EQ(kernel.configs()[0].bytes, (std::vector<uint8_t>{1, 0}));
    EXPECT_EQ(kernel.configs()[0].flags, unsigned(HVIO_CONFIG_F_NOTIFY));

    // The negotiated offloads reach the TAP, and tun takes them.
    kernel.status(VIRTIO_CONFIG_S_FEATURES_OK, hvio::net_features(net_cfg()));
    ASSERT_TRUE(kernel.wait([&] { return kernel.offload_results().size() == 1; }));
    EXPECT_EQ(kernel.offload_results()[0], 0);
    EXPECT_EQ(q.counters().offload_flags.load(),
              unsigned(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO));

    // A packet socket on the TAP plays the host's network.
    int ps = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
    ASSERT_GE(ps, 0);
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = tap->ifindex;
    ASSERT_EQ(::bind(ps, reinterpret_cast<sockaddr *>(&sll), sizeof(sll)), 0);

    // A frame: broadcast, from the guest's MAC, a local experimental type.
    auto frame = [](uint8_t seed, size_t len) {
        std::vector<uint8_t> f(len);
        for (size_t i = 0; i < len; i++)
            f[i] = static_cast<uint8_t>(seed + i);
        std::memset(f.data(), 0xff, 6);
        const uint8_t src[6] = {0x00, 0x16, 0x3e, 0x10, 0x20, 0x30};
        std::memcpy(f.data() + 6, src, 6);
        f[12] = 0x88;
        f[13] = 0xb5;
        return f;
    };

    // TX: header (no offload, in the op) + frame from guest RAM -> the
    // host sees the frame.
    std::vector<uint8_t> txf = frame(1, 300);
    std::memcpy(&ram[0x2000], txf.data(), txf.size());
    hvio_op tx{};
    tx.tag = 2;
    tx.type = HVIO_OP_NET_TX;
    tx.nr_segs = 1;
    tx.segs[0] = {kGpa + 0x2000, uint32_t(txf.size()), 0};
    tx.len = HVIO_NET_HDR_LEN + txf.size();
    kernel.push(HVIO_NET_TX_QUEUE, tx);
    ASSERT_TRUE(kernel.wait_done(HVIO_NET_TX_QUEUE, 1));
    EXPECT_EQ(kernel.done(HVIO_NET_TX_QUEUE)[0].result, int(HVIO_NET_HDR_LEN + txf.size()));
    std::vector<uint8_t> got;
    for (int i = 0; i < 20 && got != txf; i++) {
        std::vector<uint8_t> buf(2048);
        pollfd p{ps, POLLIN, 0};
        if (::poll(&p, 1, 2000) != 1)
            break;
        ssize_t n = ::recv(ps, buf.data(), buf.size(), 0);
        ASSERT_GT(n, 0);
        buf.resize(static_cast<size_t>(n));
        got = buf;
    }
    EXPECT_EQ(got, txf);

    // RX ops for tags [from, to): a 4 KiB buffer each.
    auto post_rx = [&](uint16_t from, uint16_t to) {
        for (uint16_t tag = from; tag < to; tag++) {
            hvio_op rx{};
            rx.tag = tag;
            rx.type = HVIO_OP_NET_RX;
            rx.nr_segs = 1;
            rx.segs[0] = {kGpa + 0x10000 + tag * 0x1000u, 0x1000, 0};
            rx.len = 0x1000;
            kernel.push(HVIO_NET_RX_QUEUE, rx);
        }
    };

    // RX: the host sends a frame out of the TAP -> it lands in a guest
    // buffer, after a 12-byte virtio_net_hdr, with nothing in between.
    post_rx(0, 4);
    ASSERT_TRUE(kernel.wait([&] { return q.counters().rx_armed.load() == 4; }));
    std::vector<uint8_t> rxf = frame(7, 200);
    ASSERT_EQ(::send(ps, rxf.data(), rxf.size(), 0), ssize_t(rxf.size()));
    bool found = false;
    ASSERT_TRUE(kernel.wait([&] {
        for (const hvio_completion &c : kernel.done(HVIO_NET_RX_QUEUE))
            if (c.result == int(HVIO_NET_HDR_LEN + rxf.size()) &&
                !std::memcmp(&ram[0x10000 + c.tag * 0x1000u + HVIO_NET_HDR_LEN], rxf.data(),
                             rxf.size()))
                found = true;
        return found;
    }));
    EXPECT_GE(q.counters().rx_packets.load(), 1u);

    // With 12 more buffers armed, single frames from the host cost one
    // read that finds the TAP empty each, not one per armed buffer (tun
    // of Linux 6.x takes RWF_NOWAIT; older tun is drained with readv()).
    post_rx(4, kQueueSize);
    ASSERT_TRUE(kernel.wait([&] { return q.counters().rx_armed.load() == kQueueSize - 1; }));
    const hvio::NetCounters &c = q.counters();
    const uint64_t pkts0 = c.rx_packets.load(), empty0 = c.eagain.load();
    const uint64_t rounds0 = c.rx_rounds.load(), reads0 = c.rx_reads.load();
    for (uint8_t i = 0; i < 6; i++) {
        std::vector<uint8_t> f = frame(static_cast<uint8_t>(20 + i), 100);
        ASSERT_EQ(::send(ps, f.data(), f.size(), 0), ssize_t(f.size()));
        ASSERT_TRUE(kernel.wait([&] { return c.rx_packets.load() == pkts0 + i + 1; }));
    }
    const uint64_t rounds = c.rx_rounds.load() - rounds0;
    std::printf("6 frames: %llu reads in %llu rounds, %llu empty, batch %u\n",
                static_cast<unsigned long long>(c.rx_reads.load() - reads0),
                static_cast<unsigned long long>(rounds),
                static_cast<unsigned long long>(c.eagain.load() - empty0), c.rx_batch.load());
    EXPECT_LE(c.eagain.load() - empty0, rounds);
    EXPECT_LE(c.rx_reads.load() - reads0, 6 + rounds);

    // ip link set down: the guest's link goes down.
    set_up("hviot1", false);
    ASSERT_TRUE(kernel.wait([&] { return kernel.configs().size() == 2; }));
    EXPECT_EQ(kernel.configs()[1].bytes, (std::vector<uint8_t>{0, 0}));

    stop = true;
    ::eventfd_write(rx_efd, 1);
    t.join();
    EXPECT_EQ(rc, 0);
    EXPECT_EQ(kernel.bad_commits(), 0u);
    EXPECT_EQ(kernel.inflight(HVIO_NET_RX_QUEUE), 0u);
    for (int fd : {ps, rx_efd, tx_efd, dev_efd})
        ::close(fd);
}

} // namespace
