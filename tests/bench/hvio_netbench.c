// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_netbench: virtio-net frames through the whole hvio path — fake
 * hvisor and guest driver (this program, through /dev/hvio-sim), the
 * module's bridge and virtqueue engine, the hvio daemon, the TAP — and, in
 * the same run, a plain loop of write()s / read()s on a TAP fd of our own
 * as the baseline.  Frames: 64 and 1514 bytes, and 64 KiB TCPv4 GSO
 * frames (TX: the guest's TSO frames; RX: GRO'd bursts forwarded to the
 * TAP, fakenet.h).
 *
 * Host side: a sink thread counts what comes out of a TAP (AF_PACKET
 * socket); a source thread feeds a TAP (AF_PACKET send, or GRO bursts).
 * The same sink and source serve the guest run and the baseline.  The
 * frame source keeps at most HVIO_BENCH_RX_WINDOW frames (default 384)
 * sent and not yet counted by the receiver, less than the TAP's queue
 * holds: a sender that floods a full TAP has its frames dropped and takes
 * the CPU from the receiver it measures (HVIO_BENCH_RX_WINDOW=0 does that).
 * Each row runs in HVIO_BENCH_SLICES turns (default 3) of the guest run
 * and the baseline, seconds / slices each, summed (the VM's speed drifts).
 *
 * The guest behaves like Linux's virtio_net with EVENT_IDX: it kicks only
 * when avail_event asks for it; TX keeps interrupts off until the ring is
 * full, RX re-enables them when it has drained the used ring (NAPI) and
 * waits on the FINISH_REQ eventfd.
 *
 * Prints one JSON object per line per (dir, frame), e.g.
 *   {"bench":"net","arch":"x86_64","dir":"tx","frame":1514,"pps":...,
 *    "gbps":...,"base_pps":...,"base_gbps":...,"ratio":...,
 *    "kicks_per_pkt":...,"irqs_per_pkt":...,"syscalls_per_req":...,
 *    "wakeups_per_req":...}
 * where the last two are the daemon's net thread's own system calls
 * (io_uring_enter, ioctls, readv) and io_uring waits per frame (its
 * `hvio status` counters).  RX rows of plain frames add "window",
 * "sent_per_pkt" and "base_sent_per_pkt" (the source's frames sent per
 * frame received; above 1 the TAP dropped the rest), "refused_per_pkt",
 * "stalls" (times the window did not move for 250 naps of 200 us and
 * its frames were written off), and CPU microseconds per frame received
 * of the source, the guest, the daemon, the baseline's source and its
 * reader ("src_cpu_us", "guest_cpu_us", "daemon_cpu_us",
 * "base_src_cpu_us", "base_cpu_us").  First one line for the daemon
 * idle: a blk and the net device probed, the guest posting nothing for 10 s
 * (HVIO_BENCH_IDLE_SECONDS), its CPU time from /proc/<pid>/stat:
 *   {"bench":"net","arch":"x86_64","idle":true,"devices":"blk+net",
 *    "seconds":10.0,"cpu_pct":...,"syscalls":...}
 * and a kselftest totals line: a run is "ok" when frames moved both in
 * the guest run and the baseline and none was malformed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "fakeguest.h"
#include "fakenet.h"
#include "fakevring.h"
#include "perfrec.h"

#define ZONE		7
#define GPA		0x80000000ULL
#define ZONE_SIZE	(32ULL << 20)
#define MMIO		0x0a000000ULL
#define IRQ		34
#define BLK_MMIO	0x0a001000ULL	/* the idle line's blk device */
#define BLK_IRQ		35
#define BLK_RING_GPA	(GPA + 0x80000)
#define BLK_QSIZE	128
#define BLK_IMG		"/tmp/netbench-blk.img"
#define BLK_IMG_SIZE	(16ULL << 20)
#define QSIZE		256
#define RING_GPA	(GPA + 0x10000)
#define TXBUF_GPA	(GPA + (1ULL << 20))	/* QSIZE TX slots */
#define TXSLOT		(HVIO_NET_HDR_LEN + HVIO_NET_MAX_FRAME + 16 * FV_MAX_CHAIN + 64)
#define RXBUF_GPA	(GPA + (24ULL << 20))	/* QSIZE 4 KiB RX buffers */
#define RXBUF		4096
#define TAP		"hvt0"
#define BASE_TAP	"hvb0"
#define GRO_SRC		"hvsrc"
#define HDR		HVIO_NET_HDR_LEN
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define TSO_FRAME	65014
#define GSO_SEGS	45
#define MSS		1448
#define F(x)		(1ULL << VIRTIO_NET_F_##x)
#define WANT		(FG_F_VERSION_1 | (1ULL << VIRTIO_RING_F_EVENT_IDX) | \
			 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | F(MAC) |	\
			 F(STATUS) | F(MTU) | F(MRG_RXBUF) | F(CSUM) |		\
			 F(GUEST_CSUM) | F(HOST_TSO4) | F(GUEST_TSO4))

static double seconds = 3.0;
static double idle_seconds = 10.0;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct bench {
	struct fg fg;
	struct fg_zone z;
	struct fg_vdev v, blk;
	struct fn_daemon d;
	struct fv_ring rx, tx;
	struct fn_gro_src gro;
	int tap_idx, base_idx;
	int base_fd;			/* the baseline's TAP */
	uint64_t kicks, irqs;
};

static void *gp(struct bench *b, uint64_t gpa)
{
	return fg_zone_ptr(&b->fg, &b->z, gpa);
}

static void kick(struct bench *b, struct fv_ring *r, unsigned int q)
{
	fv_publish(r);
	if (fv_kick_prepare(r)) {
		fg_notify(&b->fg, 0, ZONE, MMIO + VIRTIO_MMIO_QUEUE_NOTIFY, q);
		b->kicks++;
	}
}

static void pump(struct bench *b, unsigned int wait_ms)
{
	struct hvio_device_res res[HVIO_BRIDGE_MAX_REQ];
	int n, i;

	if (wait_ms)
		fg_wait_finish(&b->fg, wait_ms);
	n = fg_drain_res(&b->fg, res, HVIO_BRIDGE_MAX_REQ);
	for (i = 0; i < n && i < HVIO_BRIDGE_MAX_REQ; i++)
		b->irqs += res[i].target_zone == ZONE && res[i].irq_id == IRQ;
}

/* ---- host side: sink and source threads ------------------------------- */

struct host {
	pthread_t th;
	bool stop;		/* set by host_stop() (atomic) */
	int fd;			/* packet socket (sink, frame source) */
	struct fn_gro_src *gro;	/* GRO bursts instead of frames */
	uint32_t frame;		/* source: bytes per frame; sink: expected */
	uint64_t frames, bytes, bad;
	uint64_t refused;	/* source: sends refused, the TAP's queue full */
	double cpu;		/* CPU seconds of the thread */
	/*
	 * Source: frames the consumer counted so far (it stores, we load),
	 * and how many may be sent but not yet counted (0: no limit).
	 */
	const uint64_t *delivered;
	uint32_t window;
	uint64_t stalls;	/* window given up on: frames lost */
};

/*
 * RX frames in flight from the source: at most rx_window sent and not yet
 * counted by the guest (or the baseline's reader), below the TAP's queue
 * of 500 (TUN_READQ_SIZE), so the source waits instead of sending frames
 * the TAP would drop, and leaves the CPU to the consumer.  0: flood, the
 * TAP dropping what its queue cannot take (HVIO_BENCH_RX_WINDOW).
 */
static uint32_t rx_window = 384;

/*
 * A source with a full window naps NAP_US at a time (no clock reads: with
 * the HPET clocksource each is an emulated MMIO access) until half of it
 * was counted, so it wakes about once per window / 2 frames.  After
 * STALL_NAPS naps without progress it writes the frames in flight off.
 */
#define NAP_US		200
#define STALL_NAPS	250

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *sink_main(void *arg)
{
	static uint8_t buf[FN_MAX_PKT];
	struct host *h = arg;
	ssize_t n;

	while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED)) {
		n = fn_pkt_recv(h->fd, buf, sizeof(buf), 50);
		if (n < 0)
			continue;
		if ((uint32_t)n != h->frame) {
			h->bad++;
			continue;
		}
		h->frames++;
		h->bytes += n;
	}
	return NULL;
}

static void *source_main(void *arg)
{
	static uint8_t f[FN_MAX_PKT];
	struct host *h = arg;
	uint32_t seq = 0, seq0;

	uint64_t lost = 0, seen = 0;
	unsigned int naps = 0;
	bool waiting = false;

	fn_frame_test(f, h->frame, fn_guest_mac, fn_host_mac, 1, 0);
	while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED)) {
		if (h->window && !h->gro) {
			uint64_t done = __atomic_load_n(h->delivered, __ATOMIC_RELAXED);
			int64_t out = (int64_t)(h->frames - done - lost);

			if (out >= (int64_t)h->window || (waiting && out > (int64_t)h->window / 2)) {
				waiting = true;
				if (done != seen) {
					seen = done;
					naps = 0;
				} else if (++naps > STALL_NAPS) {
					lost = h->frames - done;
					h->stalls++;
					naps = 0;
				}
				usleep(NAP_US);
				continue;
			}
			waiting = false;
		}
		if (h->gro) {
			if (fn_gro_src_send(h->gro, GSO_SEGS, MSS, &seq0))
				h->bad++;
			continue;
		}
		/* without a window a full TAP queue drops: the offered load */
		if (send(h->fd, f, h->frame, MSG_DONTWAIT) > 0) {
			h->frames++;
		} else if (errno == EAGAIN || errno == ENOBUFS) {
			h->refused++;
			sched_yield();
		}
		seq++;
	}
	h->cpu = thread_cpu();
	return NULL;
}

static int host_start(struct host *h, void *(*fn)(void *))
{
	int ret;

	h->stop = false;
	h->frames = h->bytes = h->bad = h->refused = h->stalls = 0;
	h->cpu = 0;
	ret = pthread_create(&h->th, NULL, fn, h);
	/* for the profile's tables */
	if (!ret)
		pthread_setname_np(h->th, fn == sink_main ? "nb-sink" : "nb-source");
	return ret;
}

/*
 * HVIO_BENCH_PERF=1 (make profile BENCH=net): one row
 * (HVIO_BENCH_NET_DIR, HVIO_BENCH_NET_FRAME), one slice, each leg under
 * `perf record` of the whole VM (perfrec.h), then its tables: each
 * thread's share, the whole VM, the daemon's net thread, the fake guest
 * (or the baseline's reader or writer) and the host-side thread
 * (nb-source, nb-sink), kernel and user, and the call chains of the
 * entries above 0.7 % (deeper than the blk tables: the net thread is
 * spread over more small entries).  Samples per frame compare between
 * the legs.
 */
static bool perf_on;

static void perf_print(const char *what, bool rx, uint32_t frame,
		       uint64_t pkts)
{
	char comm[32];

	printf("# perf: %s %s frame %u, %llu frames, clocksource %s\n", what,
	       rx ? "rx" : "tx", frame, (unsigned long long)pkts,
	       pr_clocksource());
	snprintf(comm, sizeof(comm), " hvio-z%dn", ZONE);
	pr_thread_tables("daemon net thread", comm,
			 "fake guest, or the baseline's reader or writer",
			 " hvio_netbench ");
	pr_table("host side", "-n -g none --sort comm,dso,sym", " nb-", PR_TOP);
	pr_table("call chains (callee first) of entries >= 0.7%",
		 "-g graph,0.3,callee --sort comm,sym --percent-limit 0.7", NULL,
		 1500);
	pr_done();
	fflush(stdout);
}

static void host_stop(struct host *h)
{
	__atomic_store_n(&h->stop, true, __ATOMIC_RELAXED);
	pthread_join(h->th, NULL);
}

/* ---- the guest ---------------------------------------------------------- */

/* TX slot i: header + frame, and the chain layout to post it with. */
static void tx_prepare(struct bench *b, uint32_t frame, struct fv_buf *v,
		       unsigned int *nv)
{
	struct virtio_net_hdr_mrg_rxbuf h;
	unsigned int i, n;
	uint32_t off, l;
	uint8_t *p;

	memset(&h, 0, sizeof(h));
	if (frame == TSO_FRAME) {
		h.hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h.hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		h.hdr.hdr_len = FN_TCP4_HDR_LEN;
		h.hdr.gso_size = MSS;
		h.hdr.csum_start = FN_TCP4_CSUM_START;
		h.hdr.csum_offset = FN_TCP4_CSUM_OFFSET;
	}
	for (i = 0; i < QSIZE; i++) {
		p = gp(b, TXBUF_GPA + (uint64_t)i * TXSLOT);
		memcpy(p, &h, HDR);
		if (frame == TSO_FRAME)
			fn_frame_tcp4(p + HDR, TSO_FRAME - FN_TCP4_HDR_LEN,
				      fn_host_mac, fn_guest_mac, i, true);
		else
			fn_frame_test(p + HDR, frame, fn_host_mac, fn_guest_mac, 2, i);
	}
	/* slot-relative: header, then the frame in 4 KiB pieces */
	n = 0;
	v[n++] = (struct fv_buf){ 0, HDR, false };
	for (off = 0; off < frame; off += l) {
		l = frame - off < 4096 ? frame - off : 4096;
		v[n++] = (struct fv_buf){ HDR + off, l, false };
	}
	*nv = n;
}

static double guest_tx(struct bench *b, uint32_t frame, struct host *sink,
		       uint64_t *pkts)
{
	struct fv_buf tmpl[FV_MAX_CHAIN], v[FV_MAX_CHAIN];
	unsigned int nv, i, slot = 0;
	double t0, t1, t;
	uint64_t gpa;
	bool indirect = frame == TSO_FRAME;

	tx_prepare(b, frame, tmpl, &nv);
	fv_disable_cb(&b->tx);
	t0 = now();
	t1 = t0 + seconds;
	while (now() < t1) {
		while (fv_free(&b->tx) >= (indirect ? 1 : nv)) {
			gpa = TXBUF_GPA + (uint64_t)slot * TXSLOT;
			for (i = 0; i < nv; i++) {
				v[i] = tmpl[i];
				v[i].gpa += gpa;
			}
			if (indirect)
				fv_add(&b->tx, v, nv,
				       gp(b, gpa + TXSLOT - 16 * FV_MAX_CHAIN),
				       gpa + TXSLOT - 16 * FV_MAX_CHAIN, NULL);
			else
				fv_add(&b->tx, v, nv, NULL, 0, NULL);
			slot = (slot + 1) % QSIZE;
		}
		kick(b, &b->tx, HVIO_NET_TX_QUEUE);
		while (fv_get_used(&b->tx, NULL, NULL) == 1)
			;
		if (fv_free(&b->tx) < (indirect ? 1 : nv)) {
			/* ring full: ask for an interrupt, then sleep for it */
			fv_enable_cb(&b->tx);
			if (fv_used_idx(&b->tx) == b->tx.last_used)
				pump(b, 1);
			else
				pump(b, 0);
			fv_disable_cb(&b->tx);
		}
	}
	t = now() - t0;
	fg_sleep_ms(100);	/* what is in flight reaches the sink */
	while (fv_get_used(&b->tx, NULL, NULL) == 1)
		;
	*pkts = sink->frames;
	return t;
}

static void rx_post(struct bench *b, unsigned int i)
{
	struct fv_buf v = { RXBUF_GPA + (uint64_t)i * RXBUF, RXBUF, true };

	fv_add(&b->rx, &v, 1, NULL, (uint64_t)0, (void *)(uintptr_t)(i + 1));
}

/* Give every used RX buffer back to the device. */
static void rx_recycle(struct bench *b)
{
	void *tok;

	while (fv_get_used(&b->rx, NULL, &tok) == 1)
		rx_post(b, (unsigned int)(uintptr_t)tok - 1);
	kick(b, &b->rx, HVIO_NET_RX_QUEUE);
}

static double guest_rx(struct bench *b, uint32_t frame, uint64_t *pkts,
		       uint64_t *bytes, uint64_t *bad)
{
	struct virtio_net_hdr_mrg_rxbuf *h;
	unsigned int left = 0, posted;
	bool counting = false;
	double t0, t1;
	uint32_t len;
	void *tok;
	int i;

	__atomic_store_n(pkts, 0, __ATOMIC_RELAXED);	/* the source reads it */
	*bytes = *bad = 0;
	t0 = now();
	t1 = t0 + seconds;
	while (now() < t1) {
		posted = 0;
		while (fv_get_used(&b->rx, &len, &tok) == 1) {
			i = (int)(uintptr_t)tok - 1;
			if (!left) {
				h = gp(b, RXBUF_GPA + (uint64_t)i * RXBUF);
				left = h->num_buffers;
				if (!left || len < HDR) {
					(*bad)++;
					left = 1;
					len = HDR;
				}
				/* frames of another size: left over from the run before */
				counting = frame == TSO_FRAME || len - HDR == frame;
				if (counting) {
					__atomic_store_n(pkts, *pkts + 1, __ATOMIC_RELAXED);
					*bytes += len - HDR;
				}
			} else if (counting) {
				*bytes += len;
			}
			left--;
			rx_post(b, i);
			posted++;
		}
		if (posted) {
			kick(b, &b->rx, HVIO_NET_RX_QUEUE);
			continue;
		}
		/* NAPI: interrupts on, re-check, sleep */
		fv_enable_cb(&b->rx);
		if (fv_used_idx(&b->rx) == b->rx.last_used)
			pump(b, 1);
		else
			pump(b, 0);
		fv_disable_cb(&b->rx);
	}
	return now() - t0;
}

/* ---- baselines on our own TAP ------------------------------------------- */

static double base_tx(struct bench *b, uint32_t frame, struct host *sink)
{
	static uint8_t f[HDR + FN_MAX_PKT];
	struct virtio_net_hdr_mrg_rxbuf *h = (void *)f;
	double t0 = now(), t1 = t0 + seconds;

	memset(h, 0, sizeof(*h));
	if (frame == TSO_FRAME) {
		h->hdr.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		h->hdr.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		h->hdr.hdr_len = FN_TCP4_HDR_LEN;
		h->hdr.gso_size = MSS;
		h->hdr.csum_start = FN_TCP4_CSUM_START;
		h->hdr.csum_offset = FN_TCP4_CSUM_OFFSET;
		fn_frame_tcp4(f + HDR, TSO_FRAME - FN_TCP4_HDR_LEN, fn_host_mac,
			      fn_guest_mac, 1, true);
	} else {
		fn_frame_test(f + HDR, frame, fn_host_mac, fn_guest_mac, 3, 0);
	}
	while (now() < t1)
		if (write(b->base_fd, f, HDR + frame) < 0)
			sink->bad++;
	t1 = now() - t0;
	fg_sleep_ms(100);
	return t1;
}

static double base_rx(struct bench *b, uint32_t frame, uint64_t *pkts,
		      uint64_t *bytes)
{
	static uint8_t f[HDR + FN_MAX_PKT];
	struct pollfd pfd = { .fd = b->base_fd, .events = POLLIN };
	double t0 = now(), t1 = t0 + seconds;
	ssize_t n;

	__atomic_store_n(pkts, 0, __ATOMIC_RELAXED);	/* the source reads it */
	*bytes = 0;
	while (now() < t1) {
		n = read(b->base_fd, f, sizeof(f));
		if (n > HDR && (frame == TSO_FRAME || n - HDR == frame)) {
			__atomic_store_n(pkts, *pkts + 1, __ATOMIC_RELAXED);
			*bytes += n - HDR;
		} else if (n < 0 && errno == EAGAIN) {
			poll(&pfd, 1, 1);
		}
	}
	return now() - t0;
}

/* ---- the daemon's own cost ---------------------------------------------- */

struct cost {
	long long syscalls, waits;
};

static void cost_read(struct bench *b, struct cost *c)
{
	c->syscalls = fn_daemon_counter(&b->d, "syscalls");
	c->waits = fn_daemon_counter(&b->d, "waits");
}

/* Per frame since c0, or -1 where the daemon did not say. */
static double per(long long v0, long long v1, uint64_t pkts)
{
	return v0 < 0 || v1 < 0 || !pkts ? -1 : (double)(v1 - v0) / pkts;
}

/* utime + stime of a process, in clock ticks, or -1. */
static long long cpu_ticks(pid_t pid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* fields 14 and 15, counted after the ")" that ends comm */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return -1;
	return (long long)(ut + st);
}

/* The daemon with both devices live and the guest doing nothing. */
static void idle_line(struct bench *b, const char *arch)
{
	long long t0, t1, s0, s1;
	double w0, w;

	fg_sleep_ms(500);	/* what the probe started has settled */
	s0 = fn_daemon_counter(&b->d, "syscalls");
	t0 = cpu_ticks(b->d.pid);
	w0 = now();
	fg_sleep_ms((unsigned int)(idle_seconds * 1000));
	t1 = cpu_ticks(b->d.pid);
	w = now() - w0;
	s1 = fn_daemon_counter(&b->d, "syscalls");
	printf("{\"bench\":\"net\",\"arch\":\"%s\",\"idle\":true,\"devices\":\"blk+net\",\"seconds\":%.1f,\"cpu_pct\":%.3f,\"syscalls\":%lld}\n",
	       arch, w, t0 < 0 || t1 < 0 ? -1.0 :
	       (double)(t1 - t0) / sysconf(_SC_CLK_TCK) / w * 100,
	       s0 < 0 || s1 < 0 ? -1 : s1 - s0);
	fflush(stdout);
}

/* ---- main -------------------------------------------------------------- */

static int setup(struct bench *b)
{
	char json[1024];
	int r;

	memset(b, 0, sizeof(*b));
	b->base_fd = -1;
	b->gro.fd = -1;
	r = fg_open(&b->fg);
	if (r) {
		printf("Bail out! fg_open: %s\n", b->fg.err);
		return r;
	}
	r = fn_netns_enter();
	if (r) {
		printf("Bail out! unshare(CLONE_NEWNET): %s\n", strerror(-r));
		return r;
	}
	b->z = (struct fg_zone){ .id = ZONE, .zonex_ipa = GPA, .ram_off = 0,
				 .size = ZONE_SIZE };
	memset(b->fg.ram, 0, ZONE_SIZE);
	snprintf(json, sizeof(json),
		 "{\"zones\":[{\"id\":%d,\"memory_region\":[{\"zone0_ipa\":\"%#llx\",\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"net\",\"addr\":\"%#llx\",\"len\":\"0x200\",\"irq\":%d,\"tap\":\"%s\","
		 "\"mac\":[\"0x02\",\"0x00\",\"0x00\",\"0x00\",\"0x00\",\"0x01\"],\"status\":\"enable\","
		 "\"mtu\":1500,\"offloads\":true,\"mrg_rxbuf\":true,\"queue_size\":%d},"
		 "{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\",\"irq\":%d,\"img\":\"%s\",\"status\":\"enable\",\"queue_size\":%d}]}]}\n",
		 ZONE, (unsigned long long)b->fg.info.ram_base,
		 (unsigned long long)GPA, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)MMIO, IRQ, TAP, QSIZE,
		 (unsigned long long)BLK_MMIO, BLK_IRQ, BLK_IMG, BLK_QSIZE);
	r = open(BLK_IMG, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (r < 0 || ftruncate(r, BLK_IMG_SIZE)) {
		printf("Bail out! %s: %s\n", BLK_IMG, strerror(errno));
		return -EIO;
	}
	close(r);
	fn_daemon_init(&b->d, "netbench");
	r = fn_daemon_start(&b->d, json, "hvio: ready (2 devices)", 20000);
	if (r) {
		printf("Bail out! hvio run not ready (%s): %s\n", strerror(-r),
		       fn_daemon_log(&b->d));
		return r;
	}
	b->tap_idx = fn_if_wait(TAP, 5000);
	b->base_fd = fn_tap_open(BASE_TAP, true, TUN_F_CSUM | TUN_F_TSO4);
	if (b->tap_idx < 0 || b->base_fd < 0) {
		printf("Bail out! TAPs: %d %d\n", b->tap_idx, b->base_fd);
		return -ENODEV;
	}
	fcntl(b->base_fd, F_SETFL, O_NONBLOCK);
	b->base_idx = fn_if_index(BASE_TAP);
	if (fn_if_set_up(TAP, true) || fn_if_set_up(BASE_TAP, true)) {
		printf("Bail out! TAPs up\n");
		return -EIO;
	}
	/* 10.99.0.2 behind the daemon's TAP, 10.97.0.2 behind ours */
	r = fn_gro_src_open(&b->gro, GRO_SRC, TAP);
	if (!r)
		r = fn_gro_src_route(&b->gro, BASE_TAP, 97);
	if (r) {
		printf("Bail out! GRO source: %s\n", strerror(-r));
		return r;
	}
	b->gro.sync_tick = false;
	fg_vdev_init(&b->v, &b->fg, 0, ZONE, MMIO);
	r = fg_vdev_probe(&b->v, WANT, 2, QSIZE, RING_GPA);
	if (r) {
		printf("Bail out! probe: %s\n", b->v.err);
		return r;
	}
	/* the blk device only idles: probed, its queue attached, no request */
	fg_vdev_init(&b->blk, &b->fg, 0, ZONE, BLK_MMIO);
	r = fg_vdev_probe(&b->blk, FG_F_VERSION_1 | (1ULL << VIRTIO_RING_F_EVENT_IDX),
			  1, BLK_QSIZE, BLK_RING_GPA);
	if (r) {
		printf("Bail out! blk probe: %s\n", b->blk.err);
		return r;
	}
	fv_init(&b->rx, b->v.vq[0].num, gp(b, b->v.vq[0].desc),
		gp(b, b->v.vq[0].driver), gp(b, b->v.vq[0].device), true);
	fv_init(&b->tx, b->v.vq[1].num, gp(b, b->v.vq[1].desc),
		gp(b, b->v.vq[1].driver), gp(b, b->v.vq[1].device), true);
	fg_flush_res(&b->fg);
	return 0;
}

int main(void)
{
	static const uint32_t frames[] = { 64, 1514, TSO_FRAME };
	struct host sink = { 0 }, src = { 0 };
	unsigned int i, dir, dir_start = 0, dir_end = 2, test = 0, failed = 0;
	const char *e;
	uint32_t pick = 0;
	pid_t perf;
	uint64_t pkts, bytes, bad, bpkts, bbytes, k0, i0;
	double t, bt, pps, base, total;
	long long sys, waits, dcpu0, d1, dcpu;
	unsigned int sl, slices = 3;
	/* RX: the source's frames sent, sends refused, CPU; both legs */
	uint64_t src_sent[2], src_full[2], stalls[2];
	double src_cpu[2], rd_cpu[2], c;
	char rx_costs[512];
	struct cost c0, c1;
	struct utsname u;
	struct bench b;
	bool ok;

	if (getenv("HVIO_BENCH_SECONDS"))
		seconds = atof(getenv("HVIO_BENCH_SECONDS"));
	if (getenv("HVIO_BENCH_IDLE_SECONDS"))
		idle_seconds = atof(getenv("HVIO_BENCH_IDLE_SECONDS"));
	if (getenv("HVIO_BENCH_SLICES") && atoi(getenv("HVIO_BENCH_SLICES")) > 0)
		slices = atoi(getenv("HVIO_BENCH_SLICES"));
	e = getenv("HVIO_BENCH_RX_WINDOW");
	if (e && *e)
		rx_window = (uint32_t)atoi(e);
	/* HVIO_BENCH_NET_DIR=tx|rx: only the rows of that direction, no idle line */
	e = getenv("HVIO_BENCH_NET_DIR");
	if (e && !strcmp(e, "tx"))
		dir_end = 1;
	else if (e && !strcmp(e, "rx"))
		dir_start = 1;
	else if (e && *e) {
		printf("Bail out! HVIO_BENCH_NET_DIR=%s: tx or rx\n", e);
		return 1;
	}
	/* HVIO_BENCH_NET_FRAME=64|1514|gso: only the rows of that frame */
	e = getenv("HVIO_BENCH_NET_FRAME");
	if (e && *e) {
		pick = !strcmp(e, "gso") ? TSO_FRAME : (uint32_t)atoi(e);
		if (pick != 64 && pick != 1514 && pick != TSO_FRAME) {
			printf("Bail out! HVIO_BENCH_NET_FRAME=%s: 64, 1514 or gso\n", e);
			return 1;
		}
	}
	perf_on = getenv("HVIO_BENCH_PERF") && !strcmp(getenv("HVIO_BENCH_PERF"), "1");
	/* One recording per leg: the tables are per row. */
	if (perf_on)
		slices = 1;
	total = seconds;
	uname(&u);
	printf("TAP version 13\n1..%u\n", (pick ? 1 : 3) * (dir_end - dir_start));
	if (setup(&b))
		return 1;
	for (i = 0; i < QSIZE; i++)
		rx_post(&b, i);
	kick(&b, &b.rx, HVIO_NET_RX_QUEUE);
	if (dir_end - dir_start == 2 && !pick)
		idle_line(&b, u.machine);

	for (dir = dir_start; dir < dir_end; dir++) {
		for (i = 0; i < ARRAY_SIZE(frames); i++) {
			uint32_t f = frames[i];

			if (pick && f != pick)
				continue;
			k0 = b.kicks;
			i0 = b.irqs;
			pkts = bytes = bad = bpkts = bbytes = 0;
			t = bt = 0;
			sys = waits = dcpu = 0;
			memset(src_sent, 0, sizeof(src_sent));
			memset(src_full, 0, sizeof(src_full));
			memset(stalls, 0, sizeof(stalls));
			memset(src_cpu, 0, sizeof(src_cpu));
			memset(rd_cpu, 0, sizeof(rd_cpu));
			/* In turns with the baseline, as the blk bench. */
			seconds = total / slices;
			for (sl = 0; sl < slices; sl++) {
				uint64_t sp = 0, sbytes = 0, sbad = 0, sbp = 0, sbb = 0;
				double st, sbt;

				cost_read(&b, &c0);
				if (dir == 0) {
					/* guest -> TAP, then our write() loop -> base TAP */
					sink.fd = fn_pkt_open(b.tap_idx, false);
					sink.frame = f;
					host_start(&sink, sink_main);
					perf = perf_on ? pr_start() : 0;
					st = guest_tx(&b, f, &sink, &sp);
					pr_stop(perf);
					cost_read(&b, &c1);
					host_stop(&sink);
					sp = sink.frames;
					if (perf > 0)
						perf_print("hvio", false, f, sp);
					sbad = sink.bad;
					sbytes = sink.bytes;
					close(sink.fd);
					sink.fd = fn_pkt_open(b.base_idx, false);
					host_start(&sink, sink_main);
					perf = perf_on ? pr_start() : 0;
					sbt = base_tx(&b, f, &sink);
					pr_stop(perf);
					host_stop(&sink);
					sbp = sink.frames;
					if (perf > 0)
						perf_print("baseline", false, f, sbp);
					sbb = sink.bytes;
					sbad += sink.bad;
					close(sink.fd);
				} else {
					/* source -> TAP -> guest, then source -> base TAP -> read() */
					src.fd = fn_pkt_open(b.tap_idx, false);
					src.frame = f;
					src.gro = f == TSO_FRAME ? &b.gro : NULL;
					b.gro.subnet = 99;
					src.delivered = &sp;
					src.window = rx_window;
					host_start(&src, source_main);
					dcpu0 = cpu_ticks(b.d.pid);
					c = thread_cpu();
					perf = perf_on ? pr_start() : 0;
					st = guest_rx(&b, f, &sp, &sbytes, &sbad);
					pr_stop(perf);
					rd_cpu[0] += thread_cpu() - c;
					d1 = cpu_ticks(b.d.pid);
					dcpu = dcpu < 0 || dcpu0 < 0 || d1 < 0 ? -1 : dcpu + d1 - dcpu0;
					cost_read(&b, &c1);
					host_stop(&src);
					src_sent[0] += src.frames;
					src_full[0] += src.refused;
					src_cpu[0] += src.cpu;
					stalls[0] += src.stalls;
					close(src.fd);
					if (perf > 0)
						perf_print("hvio", true, f, sp);
					fg_sleep_ms(100);
					rx_recycle(&b);
					src.fd = fn_pkt_open(b.base_idx, false);
					b.gro.subnet = 97;
					src.delivered = &sbp;
					host_start(&src, source_main);
					c = thread_cpu();
					perf = perf_on ? pr_start() : 0;
					sbt = base_rx(&b, f, &sbp, &sbb);
					pr_stop(perf);
					rd_cpu[1] += thread_cpu() - c;
					host_stop(&src);
					if (perf > 0)
						perf_print("baseline", true, f, sbp);
					src_sent[1] += src.frames;
					src_full[1] += src.refused;
					src_cpu[1] += src.cpu;
					stalls[1] += src.stalls;
					close(src.fd);
					sbad += src.bad;
					/* the guest ring starts the next run full */
					fg_sleep_ms(100);
					rx_recycle(&b);
				}
				pkts += sp, bytes += sbytes, bad += sbad;
				bpkts += sbp, bbytes += sbb;
				t += st, bt += sbt;
				sys += c1.syscalls - c0.syscalls;
				waits += c1.waits - c0.waits;
			}
			seconds = total;
			pps = pkts / t;
			base = bpkts / bt;
			ok = pkts && bpkts && !bad;
			rx_costs[0] = 0;
			/*
			 * RX frame rows: the source's frames sent per frame
			 * counted (above 1: the TAP dropped the rest), its
			 * sends refused, the window's stalls, and CPU us per
			 * frame counted of the source, the guest, the daemon,
			 * and the baseline's source and reader.
			 */
			if (dir && f != TSO_FRAME && pkts && bpkts)
				snprintf(rx_costs, sizeof(rx_costs),
					 ",\"window\":%u,\"sent_per_pkt\":%.3f,\"base_sent_per_pkt\":%.3f,\"refused_per_pkt\":%.3f,\"stalls\":%llu,\"src_cpu_us\":%.2f,\"guest_cpu_us\":%.2f,\"daemon_cpu_us\":%.2f,\"base_src_cpu_us\":%.2f,\"base_cpu_us\":%.2f",
					 rx_window, (double)src_sent[0] / pkts,
					 (double)src_sent[1] / bpkts,
					 (double)(src_full[0] + src_full[1]) / (pkts + bpkts),
					 (unsigned long long)(stalls[0] + stalls[1]),
					 src_cpu[0] * 1e6 / pkts, rd_cpu[0] * 1e6 / pkts,
					 dcpu < 0 ? -1.0 : dcpu * 1e6 / sysconf(_SC_CLK_TCK) / pkts,
					 src_cpu[1] * 1e6 / bpkts, rd_cpu[1] * 1e6 / bpkts);
			printf("{\"bench\":\"net\",\"arch\":\"%s\",\"dir\":\"%s\",\"frame\":%u,\"gso\":%s,\"pps\":%.0f,\"gbps\":%.3f,\"base_pps\":%.0f,\"base_gbps\":%.3f,\"ratio\":%.3f,\"kicks_per_pkt\":%.4f,\"irqs_per_pkt\":%.4f,\"bytes_per_pkt\":%.0f,\"syscalls_per_req\":%.3f,\"wakeups_per_req\":%.4f%s}\n",
			       u.machine, dir ? "rx" : "tx",
			       f == TSO_FRAME && dir ? FN_TCP4_HDR_LEN + GSO_SEGS * MSS : f,
			       f == TSO_FRAME ? "true" : "false", pps,
			       bytes * 8 / t / 1e9, base, bbytes * 8 / bt / 1e9,
			       base > 0 ? pps / base : 0,
			       pkts ? (double)(b.kicks - k0) / pkts : 0,
			       pkts ? (double)(b.irqs - i0) / pkts : 0,
			       pkts ? (double)bytes / pkts : 0,
			       per(0, sys, pkts), per(0, waits, pkts), rx_costs);
			printf("%s %u net %s frame %u (%llu packets, %llu baseline, %llu bad)\n",
			       ok ? "ok" : "not ok", ++test, dir ? "rx" : "tx", f,
			       (unsigned long long)pkts, (unsigned long long)bpkts,
			       (unsigned long long)bad);
			failed += !ok;
			fflush(stdout);
		}
	}
	if (fn_daemon_stop(&b.d, SIGTERM, 10000) != 0) {
		printf("# hvio run did not exit 0 on SIGTERM\n");
		failed++;
	}
	fn_daemon_cleanup(&b.d);
	fn_gro_src_close(&b.gro);
	close(b.base_fd);
	fg_close(&b.fg);
	unlink(BLK_IMG);
	printf("# Totals: pass:%u fail:%u xfail:0 xpass:0 skip:0 error:0\n",
	       test - failed, failed);
	return failed ? 1 : 0;
}
