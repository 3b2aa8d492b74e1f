/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fakenet: the host side of a virtio-net test: a private network
 * namespace, the TAP the daemon serves, an AF_PACKET socket on that TAP
 * (to see what the guest transmits and to inject frames towards it), test
 * frames, and the hvio daemon as a child process (config file, ready
 * line, status socket counters).  Functions return 0 / -errno.
 */
#ifndef HVIO_FAKENET_H
#define HVIO_FAKENET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/virtio_net.h>

#define FN_ETH_P_TEST		0x88b5	/* IEEE local experimental: the stack ignores it */
#define FN_VNET_HDR_LEN		10	/* PACKET_VNET_HDR: struct virtio_net_hdr */
#define FN_MAX_PKT		(65550 + 64)

/* unshare(CLONE_NEWNET), lo up, IPv6 off (no ND/MLD noise on the TAP). */
int fn_netns_enter(void);

int fn_if_index(const char *name);
/* Wait up to ms for the interface to exist; its index or -ETIMEDOUT. */
int fn_if_wait(const char *name, unsigned int ms);
/* SIOCGIFFLAGS; flags or -errno. */
int fn_if_flags(const char *name);
/* SIOCSIFFLAGS: set or clear IFF_UP. */
int fn_if_set_up(const char *name, bool up);
int fn_if_set_mtu(const char *name, unsigned int mtu);

/*
 * AF_PACKET SOCK_RAW ETH_P_ALL socket bound to ifindex, non-blocking,
 * outgoing frames ignored (PACKET_IGNORE_OUTGOING: we see only what
 * enters the host from the TAP, i.e. what the guest sent), big buffers,
 * with vnet: PACKET_VNET_HDR (10-byte virtio_net_hdr before each frame,
 * both directions).  Returns the fd.
 */
int fn_pkt_open(int ifindex, bool vnet);
/*
 * Receive one frame (with its vnet header when the socket has one) within
 * ms: its length, or -ETIMEDOUT.
 */
ssize_t fn_pkt_recv(int fd, void *buf, size_t len, unsigned int ms);
/* Send one frame (vnet header first when the socket has one). */
ssize_t fn_pkt_send(int fd, const void *buf, size_t len);
/* Drop whatever is queued on the socket; returns how many frames. */
int fn_pkt_drain(int fd);

/* ---- frames ---------------------------------------------------------- */

extern const uint8_t fn_guest_mac[6];	/* 02:00:00:00:00:01 */
extern const uint8_t fn_host_mac[6];	/* 02:00:00:00:00:fe */

/*
 * A test frame of len bytes (>= 22): dst, src, FN_ETH_P_TEST, a 32-bit
 * stream id and 32-bit sequence number, then bytes derived from both.
 */
void fn_frame_test(uint8_t *f, size_t len, const uint8_t *dst,
		   const uint8_t *src, uint32_t stream, uint32_t seq);
/* The frame's (stream, seq) if it is a test frame of that exact content. */
bool fn_frame_check(const uint8_t *f, size_t len, uint32_t *stream,
		    uint32_t *seq);

/*
 * An Ethernet + IPv4 + TCP frame with payload bytes of payload (pattern
 * from seq): IP header checksum right, TCP checksum left partial (the
 * pseudo-header sum a NEEDS_CSUM sender leaves) when partial, else
 * complete.  Returns the frame length (14 + 20 + 20 + payload).
 */
size_t fn_frame_tcp4(uint8_t *f, size_t payload, const uint8_t *dst,
		     const uint8_t *src, uint32_t seq, bool partial);
/* Offsets of the TCP checksum in fn_frame_tcp4 frames. */
#define FN_TCP4_CSUM_START	(14 + 20)
#define FN_TCP4_CSUM_OFFSET	16
#define FN_TCP4_HDR_LEN		(14 + 20 + 20)
/* 0 if the frame's TCP checksum verifies (over the whole segment). */
int fn_tcp4_csum_check(const uint8_t *f, size_t len);

/* IPv4 address and netmask (host byte order) of an interface: 0 or -errno. */
int fn_if_set_addr4(const char *name, uint32_t addr, uint32_t mask);
/* Its IPv4 address (host byte order): 0 or -errno (-EADDRNOTAVAIL: none). */
int fn_if_addr4(const char *name, uint32_t *addr);

/* ---- the daemon ----------------------------------------------------- */

struct fn_daemon {
	pid_t pid;			/* 0: not running */
	int exit_status;		/* wait status once reaped, else -1 */
	int out_fd;			/* its stdout */
	char out[4096];
	size_t out_len;
	char cfg[64], log[64], sock[64];
};

/* Paths under /tmp named after tag and our pid; nothing started. */
void fn_daemon_init(struct fn_daemon *d, const char *tag);
/* Write json to d->cfg, start `hvio run`, wait for the ready line. */
int fn_daemon_start(struct fn_daemon *d, const char *json,
		    const char *ready_line, unsigned int ms);
/* true while it runs (reaps it otherwise). */
bool fn_daemon_alive(struct fn_daemon *d);
/* Send sig, wait up to ms (SIGKILL after): wait status or -ETIMEDOUT. */
int fn_daemon_stop(struct fn_daemon *d, int sig, unsigned int ms);
/* Remove the files; close the pipe. */
void fn_daemon_cleanup(struct fn_daemon *d);
/* Its stderr's last bytes on one line (static buffer). */
const char *fn_daemon_log(const struct fn_daemon *d);
const char *fn_wstatus(int st);

/*
 * Ask the daemon's status socket for its report and return the kernel
 * counter `name` of queue `queue` of its first device (>= 0) or -errno
 * (-ENOENT: not in the report).
 */
/* The daemon's status report (JSON, NUL terminated): its length or -errno. */
ssize_t fn_daemon_report(const struct fn_daemon *d, char *rep, size_t size);
long long fn_daemon_queue_counter(const struct fn_daemon *d, unsigned int queue,
				  const char *name);
/*
 * Counter `name` of the net device's "daemon" object in the daemon's
 * report (of the report's first counter of that name if it has no net
 * device), >= 0, or -errno.
 */
long long fn_daemon_counter(const struct fn_daemon *d, const char *name);

#endif /* HVIO_FAKENET_H */

/* ---- a source of real GSO packets towards the TAP ---------------------- */

/*
 * A packet socket's GSO frames are "dodgy" (SKB_GSO_DODGY) and the stack
 * segments them before a TAP (tun lacks NETIF_F_GSO_ROBUST), so a 64 KiB
 * TCP frame cannot be injected with PACKET_VNET_HDR.  Real GSO skbs come
 * from GRO: a second tun, "src", in IFF_NAPI mode with a GRO flush timeout
 * receives MSS-sized segments of one TCP stream, GRO merges them, and IPv4
 * forwarding sends the merged skb out of the TAP towards the guest's MAC:
 *   src 10.98.0.1/24  <- segments from 10.98.0.2
 *   tap 10.99.0.1/24  -> 10.99.0.2 (permanent ARP entry: fn_guest_mac)
 */
struct fn_gro_src {
	int fd;				/* the src tun */
	uint8_t src_mac[6];		/* its MAC: destination of our segments */
	uint8_t tap_mac[6];		/* the TAP's: source of what the guest gets */
	uint32_t next_seq;
	uint16_t ip_id;
	uint8_t subnet;			/* segments go to 10.<subnet>.0.2 */
	bool sync_tick;			/* start each burst after a jiffy tick */
};

int fn_gro_src_open(struct fn_gro_src *s, const char *name, const char *tap);
/* Route 10.<subnet>.0.0/24 out of tap, 10.<subnet>.0.2 at fn_guest_mac; select it. */
int fn_gro_src_route(struct fn_gro_src *s, const char *tap, uint8_t subnet);
void fn_gro_src_close(struct fn_gro_src *s);
/*
 * Write nseg segments of mss payload bytes (one stream, consecutive
 * sequence numbers, PSH on the last), starting right after a jiffy tick
 * so GRO holds them together.  *seq0 gets the first sequence number; the
 * payload of byte k is fn_gro_payload(seq0 + k).
 */
int fn_gro_src_send(struct fn_gro_src *s, unsigned int nseg, unsigned int mss,
		    uint32_t *seq0);
static inline uint8_t fn_gro_payload(uint32_t seq)
{
	return (uint8_t)(seq * 7 + (seq >> 8) * 13 + 1);
}

/*
 * Open (create) TAP name with IFF_NO_PI, and with vnet: IFF_VNET_HDR,
 * a 12-byte header and TUNSETOFFLOAD(offload).  Returns the fd.
 */
int fn_tap_open(const char *name, bool vnet, unsigned int offload);

/* An ethtool on/off feature of the interface (ETHTOOL_GTXCSUM, ETHTOOL_GTSO): 0/1 or -errno. */
int fn_if_feature(const char *name, unsigned int ethtool_cmd);
/* Wait up to ms for that feature to read want; true if it did. */
bool fn_if_feature_wait(const char *name, unsigned int ethtool_cmd, bool want,
			unsigned int ms);
