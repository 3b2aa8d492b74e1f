// SPDX-License-Identifier: GPL-2.0
/*
 * fakenet: netns, TAP, packet socket, test frames and the daemon for the
 * virtio-net selftests and benchmark.  See fakenet.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/sockios.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <time.h>

#include "fakeguest.h"
#include "fakenet.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING	23
#endif

const uint8_t fn_guest_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
const uint8_t fn_host_mac[6] = { 0x02, 0, 0, 0, 0, 0xfe };

/* ---- namespace and interfaces ----------------------------------------- */

static int ifreq_ioctl(const char *name, unsigned long req, struct ifreq *ifr)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (s < 0)
		return -errno;
	snprintf(ifr->ifr_name, IFNAMSIZ, "%s", name);
	r = ioctl(s, req, ifr) ? -errno : 0;
	close(s);
	return r;
}

static void write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, val, strlen(val)) < 0)
		; /* not every kernel has every knob */
	close(fd);
}

int fn_netns_enter(void)
{
	if (unshare(CLONE_NEWNET))
		return -errno;
	write_str("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
	write_str("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
	return fn_if_set_up("lo", true);
}

int fn_if_index(const char *name)
{
	unsigned int i = if_nametoindex(name);

	return i ? (int)i : -ENODEV;
}

int fn_if_wait(const char *name, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	int i;

	while ((i = fn_if_index(name)) < 0) {
		if (fg_now_ms() > deadline)
			return -ETIMEDOUT;
		fg_sleep_ms(10);
	}
	return i;
}

int fn_if_flags(const char *name)
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	r = ifreq_ioctl(name, SIOCGIFFLAGS, &ifr);
	return r ? r : (ifr.ifr_flags & 0xffff);
}

int fn_if_set_up(const char *name, bool up)
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	r = ifreq_ioctl(name, SIOCGIFFLAGS, &ifr);
	if (r)
		return r;
	if (up)
		ifr.ifr_flags |= IFF_UP;
	else
		ifr.ifr_flags &= ~IFF_UP;
	return ifreq_ioctl(name, SIOCSIFFLAGS, &ifr);
}

int fn_if_set_mtu(const char *name, unsigned int mtu)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_mtu = (int)mtu;
	return ifreq_ioctl(name, SIOCSIFMTU, &ifr);
}

/* ---- packet socket ----------------------------------------------------- */

int fn_pkt_open(int ifindex, bool vnet)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
		.sll_ifindex = ifindex,
	};
	int fd, one = 1, big = 8 << 20, err;

	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    htons(ETH_P_ALL));
	if (fd < 0)
		return -errno;
	/* FORCE variants need CAP_NET_ADMIN, which the tests have */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)))
		goto fail;
	if (vnet && setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)))
		goto fail;
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		goto fail;
	return fd;
fail:
	err = -errno;
	close(fd);
	return err;
}

ssize_t fn_pkt_recv(int fd, void *buf, size_t len, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;
	int64_t left;

	for (;;) {
		n = recv(fd, buf, len, MSG_TRUNC);
		if (n >= 0)
			return n;
		/* reported once after the interface went down: not a frame */
		if (errno != EAGAIN && errno != EINTR && errno != ENETDOWN)
			return -errno;
		left = (int64_t)(deadline - fg_now_ms());
		if (left <= 0)
			return -ETIMEDOUT;
		poll(&pfd, 1, (int)(left > 50 ? 50 : left));
	}
}

ssize_t fn_pkt_send(int fd, const void *buf, size_t len)
{
	uint64_t deadline = fg_now_ms() + FG_TIMEOUT_MS;
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t n;

	for (;;) {
		n = send(fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
			return -errno;
		if (fg_now_ms() > deadline)
			return -ETIMEDOUT;
		poll(&pfd, 1, 10);
	}
}

int fn_pkt_drain(int fd)
{
	static uint8_t buf[FN_MAX_PKT];
	int n = 0;

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC) >= 0)
		n++;
	return n;
}

/* ---- frames ------------------------------------------------------------ */

static uint8_t pattern(uint32_t stream, uint32_t seq, size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u ^ seq * 40503u ^ stream * 977u;

	return (uint8_t)(x >> 13 ^ x);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

void fn_frame_test(uint8_t *f, size_t len, const uint8_t *dst,
		   const uint8_t *src, uint32_t stream, uint32_t seq)
{
	size_t i;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = FN_ETH_P_TEST >> 8;
	f[13] = FN_ETH_P_TEST & 0xff;
	put32(f + 14, stream);
	put32(f + 18, seq);
	for (i = 22; i < len; i++)
		f[i] = pattern(stream, seq, i);
}

bool fn_frame_check(const uint8_t *f, size_t len, uint32_t *stream,
		    uint32_t *seq)
{
	uint32_t st, sq;
	size_t i;

	if (len < 22 || f[12] != FN_ETH_P_TEST >> 8 ||
	    f[13] != (FN_ETH_P_TEST & 0xff))
		return false;
	st = get32(f + 14);
	sq = get32(f + 18);
	for (i = 22; i < len; i++)
		if (f[i] != pattern(st, sq, i))
			return false;
	if (stream)
		*stream = st;
	if (seq)
		*seq = sq;
	return true;
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t s)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint32_t pseudo4(const uint8_t *ip, size_t tcp_len)
{
	uint32_t s = sum16(ip + 12, 8, 0);

	return s + 6 + (uint32_t)tcp_len;
}

size_t fn_frame_tcp4(uint8_t *f, size_t payload, const uint8_t *dst,
		     const uint8_t *src, uint32_t seq, bool partial)
{
	uint8_t *ip = f + 14, *tcp = ip + 20;
	size_t tcp_len = 20 + payload, i;
	uint16_t c;

	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 40);
	ip[0] = 0x45;
	ip[2] = (20 + tcp_len) >> 8;
	ip[3] = (20 + tcp_len) & 0xff;
	ip[4] = seq >> 8;
	ip[5] = seq;
	ip[6] = 0x40;			/* DF */
	ip[8] = 64;
	ip[9] = 6;			/* TCP */
	put32(ip + 12, 0x0a630002);	/* 10.99.0.2 */
	put32(ip + 16, 0x0a630001);	/* 10.99.0.1 */
	c = ~fold(sum16(ip, 20, 0));
	ip[10] = c >> 8;
	ip[11] = c & 0xff;
	put16(tcp, 40000);
	put16(tcp + 2, 5001);
	put32(tcp + 4, seq * 65536u);
	put32(tcp + 8, 1);
	tcp[12] = 5 << 4;
	tcp[13] = 0x18;			/* PSH ACK */
	put16(tcp + 14, 0xffff);
	for (i = 0; i < payload; i++)
		tcp[20 + i] = pattern(0x74637034, seq, i);
	if (partial)
		c = fold(pseudo4(ip, tcp_len));
	else
		c = ~fold(sum16(tcp, tcp_len, pseudo4(ip, tcp_len)));
	tcp[16] = c >> 8;
	tcp[17] = c & 0xff;
	return 14 + 20 + tcp_len;
}

int fn_tcp4_csum_check(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + 14;
	size_t tcp_len;

	if (len < FN_TCP4_HDR_LEN || f[12] != 0x08 || f[13] != 0 || ip[9] != 6)
		return -EINVAL;
	tcp_len = len - 34;
	return fold(sum16(ip + 20, tcp_len, pseudo4(ip, tcp_len))) == 0xffff ?
	       0 : -EBADMSG;
}

/* ---- the daemon --------------------------------------------------------- */

void fn_daemon_init(struct fn_daemon *d, const char *tag)
{
	pid_t me = getpid();

	memset(d, 0, sizeof(*d));
	d->exit_status = -1;
	d->out_fd = -1;
	snprintf(d->cfg, sizeof(d->cfg), "/tmp/hvio-%s-%d.json", tag, me);
	snprintf(d->log, sizeof(d->log), "/tmp/hvio-%s-%d.log", tag, me);
	snprintf(d->sock, sizeof(d->sock), "/tmp/hvio-%s-%d.sock", tag, me);
}

/* Collect stdout for up to ms; false at EOF. */
static bool daemon_read(struct fn_daemon *d, int ms)
{
	struct pollfd pfd = { .fd = d->out_fd, .events = POLLIN };
	ssize_t n;

	if (d->out_fd < 0)
		return false;
	if (poll(&pfd, 1, ms) <= 0)
		return true;
	if (d->out_len + 1 >= sizeof(d->out))
		d->out_len = 0;		/* keep going, forget old output */
	n = read(d->out_fd, d->out + d->out_len, sizeof(d->out) - 1 - d->out_len);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0) {
		close(d->out_fd);
		d->out_fd = -1;
		return false;
	}
	d->out_len += n;
	d->out[d->out_len] = 0;
	return true;
}

bool fn_daemon_alive(struct fn_daemon *d)
{
	int st;

	if (d->pid <= 0)
		return false;
	if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
		d->pid = 0;
		d->exit_status = st;
		return false;
	}
	return true;
}

int fn_daemon_start(struct fn_daemon *d, const char *json,
		    const char *ready_line, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	int fd, pid;
	ssize_t n;

	fd = open(d->cfg, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = write(fd, json, strlen(json));
	close(fd);
	if (n != (ssize_t)strlen(json))
		return -EIO;
	pid = fg_daemon_spawn(d->cfg, d->sock, d->log, &d->out_fd);
	if (pid < 0)
		return pid;
	d->pid = pid;
	d->exit_status = -1;
	d->out_len = 0;
	d->out[0] = 0;
	for (;;) {
		if (strstr(d->out, ready_line))
			return 0;
		/* ready, but with another device count: no point waiting */
		if (strstr(d->out, "hvio: ready (") && strchr(strstr(d->out, "hvio: ready ("), '\n'))
			return -EPROTO;
		if (fg_now_ms() > deadline)
			return -ETIMEDOUT;
		if (!daemon_read(d, 20) && !strstr(d->out, ready_line)) {
			fg_sleep_ms(20);
			fn_daemon_alive(d);
			return -ECHILD;
		}
	}
}

int fn_daemon_stop(struct fn_daemon *d, int sig, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	int st;

	if (d->pid <= 0)
		return d->exit_status;
	kill(d->pid, sig);
	while (fn_daemon_alive(d)) {
		if (fg_now_ms() > deadline) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, &st, 0);
			d->pid = 0;
			d->exit_status = st;
			return -ETIMEDOUT;
		}
		daemon_read(d, 10);
	}
	return d->exit_status;
}

void fn_daemon_cleanup(struct fn_daemon *d)
{
	if (d->pid > 0)
		fn_daemon_stop(d, SIGKILL, 2000);
	if (d->out_fd >= 0)
		close(d->out_fd);
	d->out_fd = -1;
	unlink(d->cfg);
	unlink(d->log);
	unlink(d->sock);
}

const char *fn_daemon_log(const struct fn_daemon *d)
{
	static char buf[768];
	ssize_t n = 0;
	off_t size;
	int fd, i;

	buf[0] = 0;
	fd = open(d->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "(no stderr log)";
	size = lseek(fd, 0, SEEK_END);
	if (size > 0) {
		n = pread(fd, buf, sizeof(buf) - 1,
			  size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
		if (n < 0)
			n = 0;
	}
	close(fd);
	buf[n] = 0;
	for (i = 0; i < n; i++)
		if (buf[i] == '\n')
			buf[i] = '|';
	return n ? buf : "(empty)";
}

const char *fn_wstatus(int st)
{
	static char buf[64];

	if (st == -ETIMEDOUT)
		snprintf(buf, sizeof(buf), "did not exit in time (killed)");
	else if (st < 0)
		snprintf(buf, sizeof(buf), "not started");
	else if (WIFEXITED(st))
		snprintf(buf, sizeof(buf), "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, sizeof(buf), "wait status %#x", st);
	return buf;
}

/*
 * The report is JSON; rather than parse it all, find the queue object
 * whose "index" is queue, then the first "name": after it (the kernel
 * counters come before the daemon's in each queue object).
 */
ssize_t fn_daemon_report(const struct fn_daemon *d, char *rep, size_t size)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	uint64_t deadline = fg_now_ms() + FG_TIMEOUT_MS;
	size_t len = 0;
	ssize_t n;
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", d->sock);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		n = -errno;
		close(fd);
		return n;
	}
	while (len + 1 < size) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (fg_now_ms() > deadline || poll(&pfd, 1, 100) < 0)
			break;
		n = read(fd, rep + len, size - 1 - len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	rep[len] = 0;
	return len;
}

/* The number after key `name` at or after p, or -ENOENT. */
static long long counter_after(const char *p, const char *name)
{
	char key[64];

	snprintf(key, sizeof(key), "\"%s\"", name);
	p = strstr(p, key);
	if (!p)
		return -ENOENT;
	p += strlen(key);
	while (*p == ':' || *p == ' ')
		p++;
	return strtoll(p, NULL, 10);
}

long long fn_daemon_counter(const struct fn_daemon *d, const char *name)
{
	static char rep[1 << 16];
	const char *net;
	ssize_t n;

	n = fn_daemon_report(d, rep, sizeof(rep));
	if (n < 0)
		return n;
	/*
	 * The net device's daemon object (keys sorted, "dev_events" first):
	 * a blk device the same daemon serves has counters of the same
	 * names (syscalls, ...) in its queues.
	 */
	net = strstr(rep, "\"dev_events\"");
	return counter_after(net ? net : rep, name);
}

long long fn_daemon_queue_counter(const struct fn_daemon *d, unsigned int queue,
				  const char *name)
{
	static char rep[1 << 16];
	char *p, *q;
	ssize_t n;

	n = fn_daemon_report(d, rep, sizeof(rep));
	if (n < 0)
		return n;
	for (p = rep; (p = strstr(p, "\"index\""));) {
		p += 7;
		while (*p == ':' || *p == ' ')
			p++;
		if (strtoul(p, &q, 10) == queue && q != p)
			break;
	}
	if (!p)
		return -ENOENT;
	return counter_after(p, name);
}

/* ---- GSO source through GRO and forwarding --------------------------- */

int fn_if_set_addr4(const char *name, uint32_t addr, uint32_t mask)
{
	struct ifreq ifr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(addr);
	r = ifreq_ioctl(name, SIOCSIFADDR, &ifr);
	if (r)
		return r;
	memset(&ifr, 0, sizeof(ifr));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(mask);
	return ifreq_ioctl(name, SIOCSIFNETMASK, &ifr);
}

int fn_if_addr4(const char *name, uint32_t *addr)
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_addr.sa_family = AF_INET;
	r = ifreq_ioctl(name, SIOCGIFADDR, &ifr);
	if (!r)
		*addr = ntohl(((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr);
	return r;
}

static int if_get_mac(const char *name, uint8_t *mac)
{
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	r = ifreq_ioctl(name, SIOCGIFHWADDR, &ifr);
	if (!r)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	return r;
}

static int arp_add(const char *dev, uint32_t ip, const uint8_t *mac)
{
	struct arpreq ar;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ar.arp_pa;
	int s, r;

	memset(&ar, 0, sizeof(ar));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(ip);
	ar.arp_ha.sa_family = ARPHRD_ETHER;
	memcpy(ar.arp_ha.sa_data, mac, 6);
	ar.arp_flags = ATF_PERM | ATF_COM;
	snprintf(ar.arp_dev, sizeof(ar.arp_dev), "%s", dev);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	r = ioctl(s, SIOCSARP, &ar) ? -errno : 0;
	close(s);
	return r;
}

int fn_gro_src_open(struct fn_gro_src *s, const char *name, const char *tap)
{
	struct ifreq ifr;
	char path[160], dir[64];
	int r;

	memset(s, 0, sizeof(*s));
	s->next_seq = 1000;
	s->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (s->fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_NAPI;
	if (ioctl(s->fd, TUNSETIFF, &ifr)) {
		r = -errno;
		goto fail;
	}
	/*
	 * Hold GRO packets between polls; the timer flushes them at the
	 * latest.  /sys shows the namespace that mounted it: mount a sysfs of
	 * ours for the moment.
	 */
	snprintf(dir, sizeof(dir), "/tmp/hvio-sysfs-%d", getpid());
	mkdir(dir, 0700);
	if (mount("sysfs", dir, "sysfs", 0, NULL)) {
		r = -errno;
		rmdir(dir);
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/class/net/%s/gro_flush_timeout", dir, name);
	r = access(path, W_OK) ? -errno : 0;
	write_str(path, "20000000");
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	if (r)
		goto fail;
	write_str("/proc/sys/net/ipv4/ip_forward", "1");
	r = fn_if_set_addr4(name, 0x0a620001, 0xffffff00);
	if (!r)
		r = fn_if_set_up(name, true);
	if (!r)
		r = if_get_mac(name, s->src_mac);
	if (!r)
		r = fn_gro_src_route(s, tap, 99);
	if (r)
		goto fail;
	s->sync_tick = true;
	return 0;
fail:
	close(s->fd);
	s->fd = -1;
	return r;
}

int fn_gro_src_route(struct fn_gro_src *s, const char *tap, uint8_t subnet)
{
	uint32_t net = 0x0a000000 | (uint32_t)subnet << 16;
	int r;

	r = fn_if_set_addr4(tap, net | 1, 0xffffff00);
	if (!r)
		r = arp_add(tap, net | 2, fn_guest_mac);
	if (!r)
		r = if_get_mac(tap, s->tap_mac);
	if (!r)
		s->subnet = subnet;
	return r;
}

void fn_gro_src_close(struct fn_gro_src *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Return just after the coarse clock (one jiffy resolution) ticked. */
static void wait_tick(void)
{
	struct timespec a, b;
	unsigned int i;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &a);
	for (i = 0; i < 1000000; i++) {
		clock_gettime(CLOCK_MONOTONIC_COARSE, &b);
		if (b.tv_nsec != a.tv_nsec || b.tv_sec != a.tv_sec)
			return;
	}
}

int fn_gro_src_send(struct fn_gro_src *s, unsigned int nseg, unsigned int mss,
		    uint32_t *seq0)
{
	static uint8_t f[64][2048];
	unsigned int i, k, tcp_len;
	uint8_t *ip, *tcp;
	uint32_t seq;
	uint16_t c;

	if (nseg > 64 || mss > 2048 - 54)
		return -EINVAL;
	*seq0 = s->next_seq;
	for (i = 0; i < nseg; i++) {
		seq = s->next_seq + i * mss;
		memcpy(f[i], s->src_mac, 6);
		memcpy(f[i] + 6, fn_host_mac, 6);
		f[i][12] = 0x08;
		f[i][13] = 0x00;
		ip = f[i] + 14;
		tcp = ip + 20;
		tcp_len = 20 + mss;
		memset(ip, 0, 40);
		ip[0] = 0x45;
		ip[2] = (20 + tcp_len) >> 8;
		ip[3] = (20 + tcp_len) & 0xff;
		ip[4] = (uint16_t)(s->ip_id + i) >> 8;
		ip[5] = (uint8_t)(s->ip_id + i);
		ip[6] = 0x40;
		ip[8] = 64;
		ip[9] = 6;
		put32(ip + 12, 0x0a620002);	/* 10.98.0.2 */
		put32(ip + 16, 0x0a000002 | (uint32_t)s->subnet << 16);
		c = ~fold(sum16(ip, 20, 0));
		ip[10] = c >> 8;
		ip[11] = c & 0xff;
		put16(tcp, 40001);
		put16(tcp + 2, 5001);
		put32(tcp + 4, seq);
		put32(tcp + 8, 1);
		tcp[12] = 5 << 4;
		tcp[13] = i + 1 == nseg ? 0x18 : 0x10;
		put16(tcp + 14, 0xffff);
		for (k = 0; k < mss; k++)
			tcp[20 + k] = fn_gro_payload(seq + k);
		c = ~fold(sum16(tcp, tcp_len, pseudo4(ip, tcp_len)));
		tcp[16] = c >> 8;
		tcp[17] = c & 0xff;
	}
	s->next_seq += nseg * mss;
	s->ip_id += nseg;
	if (s->sync_tick)
		wait_tick();
	for (i = 0; i < nseg; i++)
		if (write(s->fd, f[i], 54 + mss) != (ssize_t)(54 + mss))
			return -errno ? -errno : -EIO;
	return 0;
}

int fn_tap_open(const char *name, bool vnet, unsigned int offload)
{
	struct ifreq ifr;
	int fd, hs = 12, r;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
	if (ioctl(fd, TUNSETIFF, &ifr) ||
	    (vnet && (ioctl(fd, TUNSETVNETHDRSZ, &hs) ||
		      ioctl(fd, TUNSETOFFLOAD, offload)))) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

int fn_if_feature(const char *name, unsigned int ethtool_cmd)
{
	struct ethtool_value ev = { .cmd = ethtool_cmd };
	struct ifreq ifr;
	int r;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_data = (void *)&ev;
	r = ifreq_ioctl(name, SIOCETHTOOL, &ifr);
	return r ? r : !!ev.data;
}

bool fn_if_feature_wait(const char *name, unsigned int ethtool_cmd, bool want,
			unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;

	while (fn_if_feature(name, ethtool_cmd) != (int)want) {
		if (fg_now_ms() > deadline)
			return false;
		fg_sleep_ms(5);
	}
	return true;
}
