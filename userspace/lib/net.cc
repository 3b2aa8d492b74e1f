// SPDX-License-Identifier: GPL-2.0
//
// virtio-net backend: TAP, features, config space, offloads, link watcher.
#include "net.h"

#include "blk.h" // kVirtioRing*

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <endian.h>
#include <fcntl.h>
#include <linux/hvio.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/virtio_config.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace hvio {

namespace {

constexpr const char *kTunPath = "/dev/net/tun";

std::string tun_error(const std::string &name, const char *what, int err) {
    std::string msg = name + ": " + what + ": " + std::strerror(err);
    switch (err) {
    case EPERM:
    case EACCES:
        msg += " (needs CAP_NET_ADMIN, or a persistent TAP owned by this user)";
        break;
    case EBUSY:
        msg += " (the TAP is already attached to another process: is another hvio or VMM "
               "using it?)";
        break;
    case EINVAL:
        msg += " (an interface of that name exists and is not a single-queue TAP)";
        break;
    case ENOENT:
    case ENODEV:
        msg += " (no TUN/TAP support: modprobe tun)";
        break;
    }
    return msg;
}

// IFALIASZ of <linux/if.h> (which clashes with <net/if.h>).
constexpr size_t kIfAliasSize = 256;

// A TAP that a killed daemon's io_uring still holds is let go only once
// the ring's teardown finished: a takeover waits this long for it.
constexpr int kTapBusyRetries = 100;
constexpr auto kTapBusyDelay = std::chrono::milliseconds(50);

// A throwaway socket for interface ioctls.
int ifreq_ioctl(unsigned long cmd, ifreq &ifr) {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int ret = ::ioctl(s, cmd, &ifr) < 0 ? -errno : 0;
    ::close(s);
    return ret;
}

struct LinkAlias {
    int ifindex = 0;
    std::string name, alias;
};

// Every interface of the network namespace with its alias (RTM_GETLINK
// dump).
Result<std::vector<LinkAlias>> dump_links() {
    UniqueFd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!s)
        return last_error();
    struct {
        nlmsghdr h;
        ifinfomsg i;
    } req{};
    req.h.nlmsg_len = sizeof(req);
    req.h.nlmsg_type = RTM_GETLINK;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = 1;
    req.i.ifi_family = AF_UNSPEC;
    if (::send(s.get(), &req, sizeof(req), 0) < 0)
        return last_error();
    std::vector<LinkAlias> out;
    std::vector<uint8_t> buf(65536);
    for (;;) {
        ssize_t n = ::recv(s.get(), buf.data(), buf.size(), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? last_error() : Error(EPROTO);
        int left = static_cast<int>(n);
        for (auto *h = reinterpret_cast<nlmsghdr *>(buf.data()); NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return out;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const auto *e = static_cast<const nlmsgerr *>(NLMSG_DATA(h));
                return Error(e->error ? -e->error : EPROTO);
            }
            if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg)))
                continue;
            auto *ifi = static_cast<ifinfomsg *>(NLMSG_DATA(h));
            LinkAlias l;
            l.ifindex = ifi->ifi_index;
            int alen = static_cast<int>(IFLA_PAYLOAD(h));
            for (auto *a = IFLA_RTA(ifi); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                const char *v = static_cast<const char *>(RTA_DATA(a));
                std::string str(v, strnlen(v, RTA_PAYLOAD(a)));
                if (a->rta_type == IFLA_IFNAME)
                    l.name = std::move(str);
                else if (a->rta_type == IFLA_IFALIAS)
                    l.alias = std::move(str);
            }
            out.push_back(std::move(l));
        }
    }
}

// Does the interface carry kTapAlias?  false if it does not exist.
bool hvio_created(int ifindex) {
    auto links = dump_links();
    if (!links)
        return false;
    for (const LinkAlias &l : *links)
        if (l.ifindex == ifindex)
            return l.alias == kTapAlias;
    return false;
}

// RTM_SETLINK IFLA_IFALIAS: 0 or -errno.
int set_alias(int ifindex, const char *alias) {
    UniqueFd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!s)
        return -errno;
    struct {
        nlmsghdr h;
        ifinfomsg i;
        alignas(NLMSG_ALIGNTO) char attr[RTA_SPACE(kIfAliasSize)];
    } req{};
    const size_t len = std::min<size_t>(std::strlen(alias), kIfAliasSize - 1);
    auto *a = reinterpret_cast<rtattr *>(req.attr);
    a->rta_type = IFLA_IFALIAS;
    a->rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
    std::memcpy(RTA_DATA(a), alias, len);
    req.h.nlmsg_len = static_cast<uint32_t>(offsetof(decltype(req), attr) + RTA_ALIGN(a->rta_len));
    req.h.nlmsg_type = RTM_SETLINK;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    req.h.nlmsg_seq = 1;
    req.i.ifi_family = AF_UNSPEC;
    req.i.ifi_index = ifindex;
    if (::send(s.get(), &req, req.h.nlmsg_len, 0) < 0)
        return -errno;
    alignas(nlmsghdr) uint8_t buf[1024];
    ssize_t n = ::recv(s.get(), buf, sizeof(buf), 0);
    if (n < 0)
        return -errno;
    const auto *h = reinterpret_cast<const nlmsghdr *>(buf);
    if (n < static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) || h->nlmsg_type != NLMSG_ERROR)
        return -EPROTO;
    return static_cast<const nlmsgerr *>(NLMSG_DATA(h))->error;
}

// TUNSETIFF (*got: the name the kernel gave), waiting a little while the
// TAP is hvio's and a killed daemon still holds it.
int tun_attach(int fd, const std::string &name, std::string *got) {
    for (int i = 0;; i++) {
        ifreq ifr{};
        std::memcpy(ifr.ifr_name, name.data(), name.size());
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        if (::ioctl(fd, TUNSETIFF, &ifr) == 0) {
            got->assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
            return 0;
        }
        int err = errno;
        if (err != EBUSY || i == kTapBusyRetries ||
            !hvio_created(static_cast<int>(::if_nametoindex(name.c_str()))))
            return -err;
        std::this_thread::sleep_for(kTapBusyDelay);
    }
}

} // namespace

Result<NetTap> open_tap(const std::string &name, std::string *why) {
    NetTap tap;
    if (name.empty() || name.size() >= IFNAMSIZ) {
        *why = name + ": not a valid interface name";
        return Error(EINVAL);
    }
    int fd = ::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        *why = tun_error(name, kTunPath, err);
        return Error(err);
    }
    tap.fd.reset(fd);

    tap.fresh = !::if_nametoindex(name.c_str());
    if (int r = tun_attach(fd, name, &tap.name); r < 0) {
        *why = tun_error(name, "TUNSETIFF", -r);
        return Error(-r);
    }

    int hdr = HVIO_NET_HDR_LEN;
    if (::ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
        int err = errno;
        *why = tun_error(name, "TUNSETVNETHDRSZ", err);
        return Error(err);
    }
    // The VERSION_1 header is little endian whatever the host.
    int le = 1;
    if (::ioctl(fd, TUNSETVNETLE, &le) < 0 && __BYTE_ORDER == __BIG_ENDIAN) {
        int err = errno;
        *why = tun_error(name, "TUNSETVNETLE", err);
        return Error(err);
    }
    // Nothing the guest has not negotiated: until FEATURES_OK, no
    // offloads (a persistent TAP may keep the last user's).
    if (int r = tap_set_offload(fd, 0); r < 0) {
        *why = tun_error(name, "TUNSETOFFLOAD", -r);
        return Error(-r);
    }

    tap.ifindex = static_cast<int>(::if_nametoindex(tap.name.c_str()));
    if (!tap.ifindex) {
        int err = errno;
        *why = tun_error(name, "if_nametoindex", err);
        return Error(err);
    }
    auto fl = link_flags(tap.name);
    if (!fl) {
        *why = tun_error(name, "SIOCGIFFLAGS", fl.error());
        return Error(fl.error());
    }
    tap.flags = *fl;
    ifreq mr{};
    std::memcpy(mr.ifr_name, tap.name.data(), tap.name.size());
    if (ifreq_ioctl(SIOCGIFMTU, mr) == 0)
        tap.mtu = static_cast<unsigned>(mr.ifr_mtu);

    // Last, so that no failure above leaves a persistent TAP behind: a
    // TAP this open created becomes hvio's (the alias first: a crash
    // between the two leaves a TAP that goes with its fd, not a
    // persistent one nobody claims).
    if (tap.fresh) {
        if (int r = set_alias(tap.ifindex, kTapAlias); r < 0) {
            *why = tun_error(name, "rtnetlink IFLA_IFALIAS", -r);
            return Error(-r);
        }
        tap.created = true;
    } else {
        tap.created = hvio_created(tap.ifindex);
    }
    if (tap.created && ::ioctl(fd, TUNSETPERSIST, 1UL) < 0) {
        int err = errno;
        *why = tun_error(name, "TUNSETPERSIST", err);
        return Error(err);
    }
    return tap;
}

int tap_release(NetTap &tap) {
    if (!tap.created || !tap.fd)
        return 0;
    if (::ioctl(tap.fd.get(), TUNSETPERSIST, 0UL) < 0)
        return -errno;
    tap.created = false;
    return 0;
}

int tap_remove_created(const std::string &name) {
    if (name.empty() || name.size() >= IFNAMSIZ)
        return -EINVAL;
    int ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
    if (!ifindex || !hvio_created(ifindex))
        return 0;
    UniqueFd fd(::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd)
        return -errno;
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0)
        return errno == EBUSY ? 0 : -errno; // a daemon serves it
    if (::ioctl(fd.get(), TUNSETPERSIST, 0UL) < 0)
        return -errno;
    return 1; // gone when fd closes
}

Result<std::vector<std::string>> created_taps() {
    auto links = dump_links();
    if (!links)
        return Error(links.error());
    std::vector<std::string> names;
    for (const LinkAlias &l : *links)
        if (l.alias == kTapAlias)
            names.push_back(l.name);
    return names;
}

int tap_set_offload(int fd, unsigned tun_flags) {
    return ::ioctl(fd, TUNSETOFFLOAD, static_cast<unsigned long>(tun_flags)) < 0 ? -errno : 0;
}

Result<unsigned> link_flags(const std::string &name) {
    ifreq ifr{};
    if (name.size() >= IFNAMSIZ)
        return Error(EINVAL);
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    if (int r = ifreq_ioctl(SIOCGIFFLAGS, ifr); r < 0)
        return Error(-r);
    return static_cast<unsigned>(static_cast<unsigned short>(ifr.ifr_flags));
}

uint64_t net_features(const NetDeviceConfig &c) {
    uint64_t f = 1ULL << VIRTIO_F_VERSION_1 | 1ULL << kVirtioRingEventIdx |
                 1ULL << kVirtioRingIndirectDesc | 1ULL << kNetFMac | 1ULL << kNetFStatus |
                 1ULL << kNetFMtu;
    if (c.mrg_rxbuf)
        f |= 1ULL << kNetFMrgRxbuf;
    if (c.offloads)
        for (unsigned bit :
             {kNetFCsum, kNetFGuestCsum, kNetFGuestTso4, kNetFGuestTso6, kNetFGuestEcn,
              kNetFGuestUfo, kNetFHostTso4, kNetFHostTso6, kNetFHostEcn, kNetFHostUfo})
            f |= 1ULL << bit;
    return f;
}

uint16_t net_link_status(unsigned ifflags) {
    return (ifflags & IFF_UP) && (ifflags & IFF_RUNNING) ? kNetSLinkUp : 0;
}

std::vector<uint8_t> net_config_space(const NetDeviceConfig &c, uint16_t status) {
    std::vector<uint8_t> cfg(kNetConfigLen, 0);
    static_assert(kNetConfigLen <= HVIO_MAX_CONFIG_LEN);
    std::memcpy(cfg.data(), c.mac.data(), 6);
    auto put16 = [&](size_t off, uint16_t v) {
        uint16_t le = htole16(v);
        std::memcpy(cfg.data() + off, &le, 2);
    };
    put16(kNetConfigStatusOff, status);
    put16(8, 1); // max_virtqueue_pairs
    put16(10, static_cast<uint16_t>(c.mtu));
    return cfg;
}

unsigned tun_offload_flags(uint64_t f) {
    auto has = [f](unsigned bit) { return (f >> bit) & 1; };
    if (!has(kNetFGuestCsum))
        return 0;
    unsigned t = TUN_F_CSUM;
    if (has(kNetFGuestTso4))
        t |= TUN_F_TSO4;
    if (has(kNetFGuestTso6))
        t |= TUN_F_TSO6;
    if ((t & (TUN_F_TSO4 | TUN_F_TSO6)) && has(kNetFGuestEcn))
        t |= TUN_F_TSO_ECN;
    if (has(kNetFGuestUfo))
        t |= TUN_F_UFO;
    return t;
}

namespace {

// Copies len bytes at byte offset off of the iovecs' stream to or from buf;
// false if the stream is shorter.
bool iov_copy(const iovec *iov, unsigned nr, size_t off, uint8_t *buf, size_t len, bool out) {
    for (unsigned i = 0; i < nr && len; i++) {
        size_t l = iov[i].iov_len;
        if (off >= l) {
            off -= l;
            continue;
        }
        size_t c = std::min(l - off, len);
        uint8_t *p = static_cast<uint8_t *>(iov[i].iov_base) + off;
        if (out)
            std::memcpy(buf, p, c);
        else
            std::memcpy(p, buf, c);
        buf += c;
        len -= c;
        off = 0;
    }
    return len == 0;
}

// The 16-bit ones' complement sum (RFC 1071) of len bytes at off, folded.
uint16_t iov_csum(const iovec *iov, unsigned nr, size_t off, size_t len) {
    uint64_t sum = 0;
    bool odd = false; // the next byte is the low half of a 16-bit word
    for (unsigned i = 0; i < nr && len; i++) {
        size_t l = iov[i].iov_len;
        if (off >= l) {
            off -= l;
            continue;
        }
        size_t c = std::min(l - off, len);
        const uint8_t *p = static_cast<const uint8_t *>(iov[i].iov_base) + off;
        for (size_t k = 0; k < c; k++) {
            sum += odd ? p[k] : uint32_t(p[k]) << 8;
            odd = !odd;
        }
        len -= c;
        off = 0;
    }
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

constexpr uint8_t kHdrFNeedsCsum = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
constexpr uint8_t kGsoNone = 0, kGsoTcpv4 = 1, kGsoUdp = 3, kGsoTcpv6 = 4, kGsoEcn = 0x80;

} // namespace

void rx_read_plan(const iovec *op, unsigned nr, uint8_t *bounce, size_t bounce_len,
                  RxReadPlan &plan) {
    plan.direct = plan.total = 0;
    if (nr <= kRxReadIovs) {
        for (unsigned i = 0; i < nr; i++) {
            plan.iov[i] = op[i];
            plan.direct += op[i].iov_len;
        }
        plan.nr = nr;
        plan.total = plan.direct;
        return;
    }
    for (unsigned i = 0; i < kRxReadIovs - 1; i++) {
        plan.iov[i] = op[i];
        plan.direct += op[i].iov_len;
    }
    size_t rest = 0;
    for (unsigned i = kRxReadIovs - 1; i < nr; i++)
        rest += op[i].iov_len;
    rest = std::min(rest, bounce_len);
    plan.iov[kRxReadIovs - 1] = {bounce, rest};
    plan.nr = kRxReadIovs;
    plan.total = plan.direct + rest;
}

bool rx_read_scatter(const iovec *op, unsigned nr, const RxReadPlan &plan, size_t n) {
    n = std::min(n, plan.total);
    if (!plan.used || n <= plan.direct)
        return false;
    iov_copy(op, nr, plan.direct, static_cast<uint8_t *>(plan.iov[kRxReadIovs - 1].iov_base),
             n - plan.direct, false);
    return true;
}

RxFixup net_rx_fixup(const iovec *iov, unsigned nr, size_t n, uint64_t f) {
    auto has = [f](unsigned bit) { return (f >> bit) & 1; };
    uint8_t h[10];
    if (n < HVIO_NET_HDR_LEN)
        return RxFixup::kDrop;
    // Every packet comes here right after its read: a copy of constant
    // size is a few loads, where a call into the C library's memcpy (an
    // SVE one on arm64 cores with SVE) would, after each system call, first
    // trap to get its SVE state back.
    if (nr && iov[0].iov_len >= sizeof(h))
        std::memcpy(h, iov[0].iov_base, sizeof(h));
    else if (!iov_copy(iov, nr, 0, h, sizeof(h), true))
        return RxFixup::kDrop;
    const uint8_t gso = h[1];
    if (gso != kGsoNone) {
        const uint8_t type = gso & ~kGsoEcn;
        const bool ok = (type == kGsoTcpv4 && has(kNetFGuestTso4)) ||
                        (type == kGsoTcpv6 && has(kNetFGuestTso6)) ||
                        (type == kGsoUdp && has(kNetFGuestUfo));
        if (!ok || ((gso & kGsoEcn) && !has(kNetFGuestEcn)))
            return RxFixup::kDrop;
    }
    if (!(h[0] & kHdrFNeedsCsum) || has(kNetFGuestCsum))
        return RxFixup::kAsIs;
    if (gso != kGsoNone)
        return RxFixup::kDrop; // GSO without GUEST_CSUM cannot be negotiated
    const size_t frame = n - HVIO_NET_HDR_LEN;
    const size_t start = h[6] | size_t(h[7]) << 8, field = start + (h[8] | size_t(h[9]) << 8);
    if (start >= frame || field + 2 > frame)
        return RxFixup::kDrop;
    uint16_t sum =
        static_cast<uint16_t>(~iov_csum(iov, nr, HVIO_NET_HDR_LEN + start, frame - start));
    if (!sum)
        sum = 0xffff; // CSUM_MANGLED_0: 0 means "no checksum" for UDP
    uint8_t be[2] = {static_cast<uint8_t>(sum >> 8), static_cast<uint8_t>(sum)};
    uint8_t zero[6] = {};
    // flags 0 (no DATA_VALID without GUEST_CSUM), csum_start/offset 0.
    iov_copy(iov, nr, HVIO_NET_HDR_LEN + field, be, 2, false);
    iov_copy(iov, nr, 0, zero, 1, false);
    iov_copy(iov, nr, 6, zero, 4, false);
    return RxFixup::kCsumDone;
}

Result<UniqueFd> open_link_watch() {
    UniqueFd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE));
    if (!s)
        return last_error();
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = RTMGRP_LINK;
    if (::bind(s.get(), reinterpret_cast<sockaddr *>(&sa), sizeof(sa)) < 0)
        return last_error();
    return s;
}

bool link_event(const void *buf, size_t len, int ifindex, unsigned *ifflags) {
    bool found = false;
    // NLMSG_NEXT and friends work on a non-const header and an int length.
    auto *h = static_cast<nlmsghdr *>(const_cast<void *>(buf));
    int left = static_cast<int>(std::min<size_t>(len, 1 << 30));
    for (; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        if (h->nlmsg_type != RTM_NEWLINK && h->nlmsg_type != RTM_DELLINK)
            continue;
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg)))
            continue;
        ifinfomsg ifi;
        std::memcpy(&ifi, NLMSG_DATA(h), sizeof(ifi));
        if (ifi.ifi_index != ifindex)
            continue;
        found = true;
        *ifflags = h->nlmsg_type == RTM_DELLINK ? 0 : ifi.ifi_flags;
    }
    return found;
}

} // namespace hvio
