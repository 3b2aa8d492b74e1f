// SPDX-License-Identifier: GPL-2.0
//
// virtio-net backend: the TAP interface, the device's features and config
// space, the negotiated features -> TUNSETOFFLOAD mapping, and the
// rtnetlink link watcher that makes the guest's link status follow the
// TAP.  The packet path itself (op -> readv/writev SQE) is in net_queue.h.
#pragma once

#include "config.h"
#include "result.h"
#include "unique_fd.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/uio.h>
#include <vector>

namespace hvio {

// virtio-net feature bits (<linux/virtio_net.h> does not compile as C++:
// a member is called "class").
inline constexpr unsigned kNetFCsum = 0;           // VIRTIO_NET_F_CSUM
inline constexpr unsigned kNetFGuestCsum = 1;      // VIRTIO_NET_F_GUEST_CSUM
inline constexpr unsigned kNetFMtu = 3;            // VIRTIO_NET_F_MTU
inline constexpr unsigned kNetFMac = 5;            // VIRTIO_NET_F_MAC
inline constexpr unsigned kNetFGuestTso4 = 7;      // VIRTIO_NET_F_GUEST_TSO4
inline constexpr unsigned kNetFGuestTso6 = 8;      // VIRTIO_NET_F_GUEST_TSO6
inline constexpr unsigned kNetFGuestEcn = 9;       // VIRTIO_NET_F_GUEST_ECN
inline constexpr unsigned kNetFGuestUfo = 10;      // VIRTIO_NET_F_GUEST_UFO
inline constexpr unsigned kNetFHostTso4 = 11;      // VIRTIO_NET_F_HOST_TSO4
inline constexpr unsigned kNetFHostTso6 = 12;      // VIRTIO_NET_F_HOST_TSO6
inline constexpr unsigned kNetFHostEcn = 13;       // VIRTIO_NET_F_HOST_ECN
inline constexpr unsigned kNetFHostUfo = 14;       // VIRTIO_NET_F_HOST_UFO
inline constexpr unsigned kNetFMrgRxbuf = 15;      // VIRTIO_NET_F_MRG_RXBUF
inline constexpr unsigned kNetFStatus = 16;        // VIRTIO_NET_F_STATUS
inline constexpr uint16_t kNetSLinkUp = 1;         // VIRTIO_NET_S_LINK_UP
inline constexpr uint32_t kNetConfigStatusOff = 6; // virtio_net_config.status
inline constexpr uint32_t kNetConfigLen = 12;      // mac, status, max_virtqueue_pairs, mtu

// The interface alias (IFLA_IFALIAS, `ip link` shows it) that marks a TAP
// as hvio's own: created by `hvio run`, made persistent so that it, its
// addresses and its bridge port survive a daemon crash, and removed again
// by an orderly stop or `hvio stop`.  A TAP without it is the user's: hvio
// never changes whether it persists.
inline constexpr const char *kTapAlias = "hvio: created by hvio run";

// An opened TAP: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, O_NONBLOCK, vnet
// header size HVIO_NET_HDR_LEN, no offloads yet.
struct NetTap {
    UniqueFd fd;
    std::string name; // as the kernel named it
    int ifindex = 0;
    unsigned flags = 0;   // IFF_* when opened
    unsigned mtu = 0;     // the interface's MTU when opened
    bool created = false; // hvio's (kTapAlias): persistent until tap_release()
    bool fresh = false;   // this open created the interface
};

// Opens the TAP called name: attaches to it if it exists (a persistent
// TAP, the user's or one an earlier daemon created), else creates it,
// marks it kTapAlias and makes it persistent (TUNSETPERSIST), so that a
// daemon killed without its orderly stop leaves it for the next one.  On
// failure *why says what went wrong, in words.
Result<NetTap> open_tap(const std::string &name, std::string *why);

// The orderly end of a TAP hvio created (tap.created): no longer
// persistent, so it goes when its fd closes.  0 or -errno; nothing for a
// TAP that is not hvio's.
int tap_release(NetTap &tap);

// `hvio stop` without a daemon: the TAP called name, if hvio created it
// and no process holds it, is removed.  1 removed, 0 nothing to do (no
// such interface, not hvio's, or in use), or -errno.
int tap_remove_created(const std::string &name);

// The names of every interface of this network namespace marked kTapAlias.
Result<std::vector<std::string>> created_taps();

// TUNSETOFFLOAD: 0 or -errno.
int tap_set_offload(int fd, unsigned tun_flags);

// The interface's IFF_* flags now (SIOCGIFFLAGS), or -errno.
Result<unsigned> link_flags(const std::string &name);

// Offered features: VERSION_1 | EVENT_IDX | INDIRECT_DESC | MAC | STATUS |
// MTU, MRG_RXBUF unless "mrg_rxbuf": false, and with "offloads" (default)
// CSUM | GUEST_CSUM | GUEST_TSO4/TSO6/ECN/UFO | HOST_TSO4/TSO6/ECN/UFO.
uint64_t net_features(const NetDeviceConfig &c);

// VIRTIO_NET_S_LINK_UP when the interface is up and has carrier.
uint16_t net_link_status(unsigned ifflags);

// The device's config space: struct virtio_net_config up to and including
// mtu (kNetConfigLen bytes), little endian, max_virtqueue_pairs 1.
std::vector<uint8_t> net_config_space(const NetDeviceConfig &c, uint16_t status);

// What the TAP may hand us (TUNSETOFFLOAD) for a guest that negotiated
// driver_features: TUN_F_CSUM with GUEST_CSUM, and only then TSO4, TSO6,
// TSO_ECN (with TSO4 or TSO6) and UFO for the matching GUEST_* bits (tun
// refuses them without CSUM).
unsigned tun_offload_flags(uint64_t driver_features);

// The result of net_rx_fixup().
enum class RxFixup {
    kAsIs,     // the packet is what the guest negotiated
    kCsumDone, // NEEDS_CSUM completed in place for a guest without GUEST_CSUM
    kDrop,     // GSO the guest did not negotiate (or a bad header): drop it
};

// Checks a received packet (n bytes: the 12-byte header, then the frame, in
// iov) against the driver's features.  The TAP's offloads follow the
// features only asynchronously (TUNSETOFFLOAD after FEATURES_OK), so a
// packet queued before a renegotiation may carry what the guest no longer
// accepts: a partial checksum is completed in place (as the kernel's
// skb_checksum_help() would), GSO is dropped.
RxFixup net_rx_fixup(const struct iovec *iov, unsigned nr_iov, size_t n, uint64_t driver_features);

// How an RX read lands in an op's buffers.  Linux imports a readv of up
// to kRxReadIovs (UIO_FASTIOV) iovecs on the stack; more cost a kmalloc,
// a zeroing and a bigger copy per read, for every packet however small
// (an op of MRG_RXBUF buffers sized for a 64 KiB GSO packet has 17 of
// 4 KiB).  So a read takes the op's first kRxReadIovs - 1 buffers
// directly and the rest of its capacity in one bounce iovec; the few
// packets longer than the direct part are scattered from the bounce into
// the remaining buffers after the read (rx_read_scatter()).  While the
// packets are that long (a GSO stream), copying most of each costs more
// than the allocation: the daemon then reads into all of the op's buffers
// (NetQueue::rx_long_).
constexpr unsigned kRxReadIovs = 8;
struct RxReadPlan {
    iovec iov[kRxReadIovs];
    unsigned nr = 0;   // iovecs of the read
    size_t direct = 0; // bytes that land in guest buffers directly
    size_t total = 0;  // the op's capacity
    bool used = false; // the read in flight goes by this plan, not the op's iovecs
};

// The plan for a read into op (nr iovecs): beyond its first
// kRxReadIovs - 1 iovecs, at most bounce_len bytes of bounce (no packet is
// longer than HVIO_NET_HDR_LEN + HVIO_NET_MAX_FRAME, so that much never
// cuts one short).  bounce may be null when nr <= kRxReadIovs.
void rx_read_plan(const iovec *op, unsigned nr, uint8_t *bounce, size_t bounce_len,
                  RxReadPlan &plan);
// The read returned n bytes: if it went by the plan (plan.used), those
// past plan.direct go from the bounce into the op's buffers; true if some
// did.
bool rx_read_scatter(const iovec *op, unsigned nr, const RxReadPlan &plan, size_t n);

// An rtnetlink socket subscribed to RTMGRP_LINK, non-blocking.
Result<UniqueFd> open_link_watch();

// Scans a buffer of rtnetlink messages for news of ifindex.  Returns true
// if there is some; *ifflags is then the last state reported (0 once the
// interface was deleted).
bool link_event(const void *buf, size_t len, int ifindex, unsigned *ifflags);

} // namespace hvio
