// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_console_daemon: the real daemon (`hvio run`) serves a virtio-console
 * from hvisor-tool's config format with this program as the guest driver
 * (fakeguest/fakevring) and as the terminal on the PTY (opened through the
 * config's "pty" symlink): bytes both ways byte for byte, backpressure both
 * ways (nothing dropped, TX ops held until the PTY takes them, input kept
 * in the PTY until the guest posts buffers), output discarded (counted)
 * once nobody has read for stall_ms, so that a guest spinning on its
 * console never freezes, a terminal that opens and closes the PTY 50
 * times, a reset during traffic, and a SIGKILL of the daemon followed by
 * a takeover.
 */
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include "hvio_test.h"
#include "fakevring.h"
#include "fakenet.h"

#define QN		256
#define DEV_IRQ		44
#define ZONE_SIZE	(8 * MIB)
#define RING_GPA	(GUEST_RAM + 0x10000)
#define TXBUF_GPA	(GUEST_RAM + 0x100000)	/* QN * TXB */
#define RXBUF_GPA	(GUEST_RAM + 0x400000)	/* QN * RXB */
#define TXB		4096
#define RXB		1024
#define RXQ		0
#define TXQ		1
#define READY_LINE	"hvio: ready (1 devices)"
#define READY_MS	20000
#define IO_MS		20000
#define STOP_MS		10000

#define BIT(b)		(1ULL << (b))
#define F_ALL		(FG_F_VERSION_1 | BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
			 BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_CONSOLE_F_SIZE))

FIXTURE(cons) {
	struct fg fg;
	bool skip, opened;
	struct fg_zone zone;
	struct fg_vdev v;
	struct fn_daemon d;
	struct fv_ring r[2];
	char link[80];
	bool sock;			/* the "socket" backend; link is its path */
	char dev_json[64];		/* more keys of the device: ",\"k\":v" */
	int term;			/* our side of the PTY, or -1 */
	/* TX buffers (index = slot) the guest may use */
	bool txbusy[QN];
	unsigned int rxposted;
	uint8_t *got;			/* bytes received (either direction) */
	size_t ngot;
};

static void *gp(FIXTURE_DATA(cons) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->zone, gpa);
}

/* The byte at position i of stream s. */
static uint8_t pat(unsigned int s, size_t i)
{
	return (uint8_t)(i * 131 + (i >> 9) * 7 + s * 29 + 1);
}

static void pump(FIXTURE_DATA(cons) *self, unsigned int wait_ms)
{
	struct hvio_device_res res[HVIO_BRIDGE_MAX_REQ];

	if (wait_ms)
		fg_wait_finish(&self->fg, wait_ms);
	fg_drain_res(&self->fg, res, HVIO_BRIDGE_MAX_REQ);
}

/* A counter of the console's "daemon" object in `hvio status`, or -errno. */
static long long ccount(FIXTURE_DATA(cons) *self, const char *name)
{
	static char rep[1 << 16];
	char key[64];
	const char *p;

	if (fn_daemon_report(&self->d, rep, sizeof(rep)) < 0)
		return -EIO;
	p = strstr(rep, "\"type\": \"console\"");
	p = p ? strstr(p, "\"daemon\":") : NULL;
	snprintf(key, sizeof(key), "\"%s\":", name);
	p = p ? strstr(p, key) : NULL;
	if (!p)
		return -ENOENT;
	return strtoll(p + strlen(key), NULL, 10);
}

static void kick(FIXTURE_DATA(cons) *self, unsigned int q)
{
	fv_publish(&self->r[q]);
	if (fv_kick_prepare(&self->r[q]))
		fg_notify(&self->fg, self->v.cpu, ZONE_A,
			  MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static const char *diag(FIXTURE_DATA(cons) *self)
{
	static char buf[1024];

	fn_daemon_alive(&self->d);
	snprintf(buf, sizeof(buf),
		 "rx avail %u used %u, tx avail %u used %u; daemon tx_bytes %lld rx_bytes %lld tx_held %lld errors %lld; %s, stderr \"%.200s\"",
		 self->r[RXQ].avail_idx, fv_used_idx(&self->r[RXQ]),
		 self->r[TXQ].avail_idx, fv_used_idx(&self->r[TXQ]),
		 ccount(self, "tx_bytes"),
		 ccount(self, "rx_bytes"),
		 ccount(self, "tx_held"),
		 ccount(self, "errors"),
		 self->d.pid > 0 ? "running" : fn_wstatus(self->d.exit_status),
		 fn_daemon_log(&self->d));
	return buf;
}

/* Open the terminal side through the daemon's symlink. */
static int term_open(FIXTURE_DATA(cons) *self)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd;

	if (!self->sock) {
		fd = open(self->link, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		self->term = fd;
		return 0;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", self->link);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	self->term = fd;
	return 0;
}

static void term_close(FIXTURE_DATA(cons) *self)
{
	if (self->term >= 0)
		close(self->term);
	self->term = -1;
}

static void up(struct __test_metadata *_metadata, FIXTURE_DATA(cons) *self)
{
	static char rep[1 << 16];
	char json[1024];
	int r;

	snprintf(json, sizeof(json),
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"console\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"status\":\"enable\",\"%s\":\"%s\"%s}]}]}\n",
		 ZONE_A, (unsigned long long)fg_zone_phys(&self->fg, &self->zone),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)MMIO_BASE, DEV_IRQ, self->sock ? "socket" : "pty",
		 self->link, self->dev_json);
	r = fn_daemon_start(&self->d, json, READY_LINE, READY_MS);
	ASSERT_EQ(0, r)
		TH_LOG("daemon not ready (%s; %s): stdout \"%s\", stderr \"%s\"",
		       errname(r), self->d.pid ? "running" :
		       fn_wstatus(self->d.exit_status), self->d.out,
		       fn_daemon_log(&self->d));
	ASSERT_NE(NULL, strstr(self->d.out, self->sock ? "console on socket " :
						 "console on /dev/pts/"))
		TH_LOG("stdout \"%s\"", self->d.out);
	/* `hvio status` (its JSON) names the PTY (or socket) and the link */
	ASSERT_LT(0, fn_daemon_report(&self->d, rep, sizeof(rep)));
	if (!self->sock)
		EXPECT_NE(NULL, strstr(rep, "\"pty\": \"/dev/pts/")) TH_LOG("%.400s", rep);
	EXPECT_NE(NULL, strstr(rep, self->link)) TH_LOG("%.400s", rep);
}

/* Fresh rings, Linux's probe, rings attached. */
static void probe(struct __test_metadata *_metadata, FIXTURE_DATA(cons) *self)
{
	int q, r;

	memset(gp(self, RING_GPA), 0, TXBUF_GPA - RING_GPA);
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	r = fg_vdev_probe(&self->v, F_ALL, 2, QN, RING_GPA);
	ASSERT_EQ(0, r) TH_LOG("probe: %s", self->v.err);
	for (q = 0; q < 2; q++)
		fv_init(&self->r[q], self->v.vq[q].num, gp(self, self->v.vq[q].desc),
			gp(self, self->v.vq[q].driver), gp(self, self->v.vq[q].device),
			true);
	memset(self->txbusy, 0, sizeof(self->txbusy));
	self->rxposted = 0;
}

/* Harvest TX used entries (used length must be 0): how many. */
static unsigned int tx_reap(struct __test_metadata *_metadata,
			    FIXTURE_DATA(cons) *self)
{
	unsigned int n = 0;
	uint32_t len;
	void *tok;

	while (fv_get_used(&self->r[TXQ], &len, &tok) == 1) {
		unsigned int slot = (unsigned int)(uintptr_t)tok - 1;

		EXPECT_EQ(0, len);
		EXPECT_TRUE(slot < QN && self->txbusy[slot]);
		if (slot < QN)
			self->txbusy[slot] = false;
		n++;
	}
	return n;
}

/* Post one TX chain of len bytes of stream s from offset off; false if full. */
static bool tx_post(FIXTURE_DATA(cons) *self, unsigned int s, size_t off,
		    size_t len)
{
	struct fv_buf b[2];
	unsigned int slot, n = 1;
	uint8_t *p;
	size_t i;

	for (slot = 0; slot < QN && self->txbusy[slot]; slot++)
		;
	if (slot == QN || !fv_free(&self->r[TXQ]))
		return false;
	p = gp(self, TXBUF_GPA + (uint64_t)slot * TXB);
	for (i = 0; i < len; i++)
		p[i] = pat(s, off + i);
	/* odd chains in two descriptors */
	if (len > 1 && (off / len) % 2) {
		b[0] = (struct fv_buf){ TXBUF_GPA + (uint64_t)slot * TXB, 1, false };
		b[1] = (struct fv_buf){ TXBUF_GPA + (uint64_t)slot * TXB + 1,
					(uint32_t)len - 1, false };
		n = 2;
	} else {
		b[0] = (struct fv_buf){ TXBUF_GPA + (uint64_t)slot * TXB,
					(uint32_t)len, false };
	}
	if (fv_add(&self->r[TXQ], b, n, NULL, 0, (void *)(uintptr_t)(slot + 1)) < 0)
		return false;
	self->txbusy[slot] = true;
	return true;
}

/* Read what the terminal has into got (up to cap); bytes read. */
static size_t term_read(FIXTURE_DATA(cons) *self, size_t cap)
{
	size_t n = 0;
	ssize_t r;

	while (self->ngot < cap) {
		r = read(self->term, self->got + self->ngot, cap - self->ngot);
		if (r <= 0)
			break;
		self->ngot += r;
		n += r;
	}
	return n;
}

/* Post RX buffers until n are out. */
static void rx_fill(FIXTURE_DATA(cons) *self, unsigned int n)
{
	bool any = false;

	while (self->rxposted < n && fv_free(&self->r[RXQ])) {
		/* any slot: the token is its address */
		unsigned int slot = (self->r[RXQ].avail_idx) % QN;
		struct fv_buf b = { RXBUF_GPA + (uint64_t)slot * RXB, RXB, true };

		if (fv_add(&self->r[RXQ], &b, 1, NULL, 0,
			   (void *)(uintptr_t)(slot + 1)) < 0)
			break;
		self->rxposted++;
		any = true;
	}
	if (any)
		kick(self, RXQ);
}

/* Harvest RX used entries into got; bytes. */
static size_t rx_reap(struct __test_metadata *_metadata,
		      FIXTURE_DATA(cons) *self, size_t cap)
{
	size_t n = 0;
	uint32_t len;
	void *tok;

	while (fv_get_used(&self->r[RXQ], &len, &tok) == 1) {
		unsigned int slot = (unsigned int)(uintptr_t)tok - 1;

		self->rxposted--;
		EXPECT_LE(len, RXB);
		if (len > RXB || slot >= QN || self->ngot + len > cap)
			continue;
		memcpy(self->got + self->ngot,
		       gp(self, RXBUF_GPA + (uint64_t)slot * RXB), len);
		self->ngot += len;
		n += len;
	}
	return n;
}

/* The first byte of got that is not stream s from off, or n. */
static size_t mismatch(FIXTURE_DATA(cons) *self, unsigned int s, size_t off,
		       size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (self->got[i] != pat(s, off + i))
			return i;
	return n;
}

/* Guest -> terminal: total bytes in chains of chunk bytes, byte for byte. */
static void tx_stream(struct __test_metadata *_metadata,
		      FIXTURE_DATA(cons) *self, unsigned int s, size_t total,
		      size_t chunk)
{
	uint64_t deadline = fg_now_ms() + IO_MS;
	size_t sent = 0, bad;
	bool posted;

	self->ngot = 0;
	while (self->ngot < total && fg_now_ms() < deadline) {
		posted = false;
		while (sent < total) {
			size_t len = total - sent < chunk ? total - sent : chunk;

			if (!tx_post(self, s, sent, len))
				break;
			sent += len;
			posted = true;
		}
		if (posted)
			kick(self, TXQ);
		tx_reap(_metadata, self);
		if (!term_read(self, total))
			pump(self, 1);
		else
			pump(self, 0);
	}
	ASSERT_EQ(total, self->ngot) TH_LOG("sent %zu; %s", sent, diag(self));
	bad = mismatch(self, s, 0, total);
	ASSERT_EQ(total, bad) TH_LOG("byte %zu differs", bad);
	/* everything was committed */
	deadline = fg_now_ms() + IO_MS;
	while (fv_inflight(&self->r[TXQ]) && fg_now_ms() < deadline) {
		tx_reap(_metadata, self);
		pump(self, 1);
	}
	ASSERT_EQ(0, fv_inflight(&self->r[TXQ])) TH_LOG("%s", diag(self));
}

/* Terminal -> guest: total bytes, byte for byte. */
static void rx_stream(struct __test_metadata *_metadata,
		      FIXTURE_DATA(cons) *self, unsigned int s, size_t total)
{
	uint64_t deadline = fg_now_ms() + IO_MS;
	size_t sent = 0, bad;
	uint8_t chunk[512];
	ssize_t r;

	self->ngot = 0;
	while (self->ngot < total && fg_now_ms() < deadline) {
		rx_fill(self, 64);
		while (sent < total) {
			size_t len = total - sent < sizeof(chunk) ? total - sent :
				     sizeof(chunk), i;

			for (i = 0; i < len; i++)
				chunk[i] = pat(s, sent + i);
			r = write(self->term, chunk, len);
			if (r <= 0)
				break;
			sent += r;
		}
		if (!rx_reap(_metadata, self, total))
			pump(self, 1);
	}
	ASSERT_EQ(total, self->ngot) TH_LOG("written %zu; %s", sent, diag(self));
	bad = mismatch(self, s, 0, total);
	ASSERT_EQ(total, bad) TH_LOG("byte %zu differs", bad);
}

FIXTURE_SETUP(cons)
{
	self->term = -1;
	fn_daemon_init(&self->d, "cons");
	snprintf(self->link, sizeof(self->link), "/tmp/hvio-cons-%d.pty",
		 (int)getpid());
	hvio_daemon_fixture_open(_metadata, &self->fg, &self->skip,
				 &self->opened, ZONE_A);
	if (self->skip)
		return;
	ASSERT_LE(ZONE_SIZE, self->fg.info.ram_size);
	self->zone = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				       .ram_off = 0, .size = ZONE_SIZE };
	memset(self->fg.ram, 0, ZONE_SIZE);
	self->got = malloc(1 << 20);
	ASSERT_NE(NULL, self->got);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(cons)
{
	int st;

	_metadata->trigger = 0;
	term_close(self);
	if (self->d.pid > 0) {
		st = fn_daemon_stop(&self->d, SIGTERM, STOP_MS);
		EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			TH_LOG("daemon after SIGTERM: %s; stderr \"%s\"",
			       fn_wstatus(st), fn_daemon_log(&self->d));
		/* an orderly stop removes the link (or socket) */
		EXPECT_NE(0, access(self->link, F_OK));
	}
	unlink(self->link);
	fn_daemon_cleanup(&self->d);
	free(self->got);
	if (self->opened) {
		EXPECT_EQ(0, self->r[0].bad_used + self->r[1].bad_used);
		hvio_fixture_close(_metadata, &self->fg);
	}
}

#define NEED_SETUP() do { if (self->skip) return; } while (0)

/* Daemon, guest probe and the terminal open. */
static void start(struct __test_metadata *_metadata, FIXTURE_DATA(cons) *self)
{
	int r;

	up(_metadata, self);
	probe(_metadata, self);
	r = term_open(self);
	ASSERT_EQ(0, r) TH_LOG("open %s: %s", self->link, errname(r));
}

TEST_F_TIMEOUT(cons, tx_256k_byte_for_byte, 120)
{
	/* The guest writes 256 KiB in 4 KiB chains (every other one split in two descriptors): the terminal reads them byte for byte and every chain comes back with used length 0. */
	NEED_SETUP();
	start(_metadata, self);
	tx_stream(_metadata, self, 1, 256 * 1024, TXB);
	EXPECT_EQ(256 * 1024, ccount(self, "tx_bytes"));
}

TEST_F_TIMEOUT(cons, rx_64k_byte_for_byte, 120)
{
	/* The terminal writes 64 KiB: the guest's 1 KiB RX buffers receive them byte for byte, the used length being the count read. */
	NEED_SETUP();
	start(_metadata, self);
	rx_stream(_metadata, self, 2, 64 * 1024);
	EXPECT_EQ(64 * 1024, ccount(self, "rx_bytes"));
}

TEST_F_TIMEOUT(cons, tx_backpressure_holds_ops_drops_nothing, 120)
{
	/* With "stall_ms": 0, nobody reads the PTY while the guest writes 256 KiB: the PTY fills, the guest's TX chains stay uncommitted (the ring fills), the daemon holds them; once the terminal reads, all 256 KiB arrive byte for byte. */
	const size_t total = 256 * 1024;
	uint64_t deadline;
	size_t sent = 0, bad;
	unsigned int held;

	NEED_SETUP();
	snprintf(self->dev_json, sizeof(self->dev_json), ",\"stall_ms\":0");
	start(_metadata, self);
	self->ngot = 0;
	while (sent < total && tx_post(self, 3, sent, TXB))
		sent += TXB;
	kick(self, TXQ);
	/* give the daemon time to fill the PTY; nothing comes back for some */
	for (deadline = fg_now_ms() + 1000; fg_now_ms() < deadline;) {
		tx_reap(_metadata, self);
		pump(self, 10);
	}
	held = fv_inflight(&self->r[TXQ]);
	fprintf(stderr, "# %zu bytes posted in %zu chains, %u still held by the daemon with nobody reading (tx_held %lld, tx_eagain %lld)\n",
	       sent, sent / TXB, held, ccount(self, "tx_held"),
	       ccount(self, "tx_eagain"));
	ASSERT_LT(0, held) TH_LOG("every chain completed without a reader: %s", diag(self));
	EXPECT_LT(0, ccount(self, "tx_held"));
	/* now read everything, posting the rest */
	deadline = fg_now_ms() + IO_MS;
	while (self->ngot < total && fg_now_ms() < deadline) {
		bool posted = false;

		tx_reap(_metadata, self);
		while (sent < total && tx_post(self, 3, sent, TXB)) {
			sent += TXB;
			posted = true;
		}
		if (posted)
			kick(self, TXQ);
		if (!term_read(self, total))
			pump(self, 1);
	}
	ASSERT_EQ(total, self->ngot) TH_LOG("%s", diag(self));
	bad = mismatch(self, 3, 0, total);
	ASSERT_EQ(total, bad) TH_LOG("byte %zu differs", bad);
}

TEST_F_TIMEOUT(cons, nobody_reads_output_discarded_after_stall, 120)
{
	/* With "stall_ms": 300, nobody reads the PTY while the guest writes 256 KiB: every chain comes back (a Linux guest would spin on them), what the PTY could not take is counted as tx_dropped in one stall, with a line on stderr; what the PTY holds is the start of the stream; once the terminal read it, output resumes and the next 16 KiB arrive byte for byte. */
	const size_t total = 256 * 1024;
	long long dropped, moved;
	uint64_t deadline, t0;
	size_t sent = 0, bad;

	NEED_SETUP();
	snprintf(self->dev_json, sizeof(self->dev_json), ",\"stall_ms\":300");
	start(_metadata, self);
	t0 = fg_now_ms();
	deadline = t0 + IO_MS;
	while ((sent < total || fv_inflight(&self->r[TXQ])) && fg_now_ms() < deadline) {
		bool posted = false;

		tx_reap(_metadata, self);
		while (sent < total && tx_post(self, 4, sent, TXB)) {
			sent += TXB;
			posted = true;
		}
		if (posted)
			kick(self, TXQ);
		pump(self, 10);
	}
	ASSERT_EQ(total, sent) TH_LOG("%s", diag(self));
	ASSERT_EQ(0, fv_inflight(&self->r[TXQ]))
		TH_LOG("chains held with nobody reading after %llu ms: %s",
		       (unsigned long long)(fg_now_ms() - t0), diag(self));
	dropped = ccount(self, "tx_dropped");
	moved = ccount(self, "tx_bytes");
	fprintf(stderr, "# %zu bytes posted, all chains back after %llu ms: %lld written to the PTY, %lld discarded in %lld stalls\n",
		total, (unsigned long long)(fg_now_ms() - t0), moved, dropped,
		ccount(self, "stalls"));
	EXPECT_LT(0, dropped);
	EXPECT_EQ((long long)total, dropped + moved);
	EXPECT_EQ(1, ccount(self, "stalls"));
	EXPECT_NE(NULL, strstr(fn_daemon_log(&self->d), "console output discarded"))
		TH_LOG("stderr \"%s\"", fn_daemon_log(&self->d));
	/* the PTY holds the start of the stream */
	self->ngot = 0;
	for (deadline = fg_now_ms() + 500; fg_now_ms() < deadline;)
		if (!term_read(self, total))
			fg_sleep_ms(10);
	EXPECT_EQ((size_t)moved, self->ngot);
	bad = mismatch(self, 4, 0, self->ngot);
	ASSERT_EQ(self->ngot, bad) TH_LOG("byte %zu differs", bad);
	/* read: the output resumes, byte for byte */
	for (deadline = fg_now_ms() + IO_MS; fg_now_ms() < deadline &&
	     !strstr(fn_daemon_log(&self->d), "console output resumes");)
		fg_sleep_ms(10);
	ASSERT_NE(NULL, strstr(fn_daemon_log(&self->d), "console output resumes"))
		TH_LOG("stderr \"%s\"", fn_daemon_log(&self->d));
	tx_stream(_metadata, self, 5, 16 * 1024, TXB);
	EXPECT_EQ(dropped, ccount(self, "tx_dropped"));
}

TEST_F_TIMEOUT(cons, rx_input_waits_for_buffers, 120)
{
	/* The terminal writes 2 KiB while the guest has no RX buffer posted: nothing is lost; once the guest posts buffers all of it arrives byte for byte. */
	const size_t total = 2048;
	uint8_t buf[2048];
	uint64_t deadline;
	size_t i, bad;

	NEED_SETUP();
	start(_metadata, self);
	for (i = 0; i < total; i++)
		buf[i] = pat(4, i);
	ASSERT_EQ((ssize_t)total, write(self->term, buf, total));
	for (deadline = fg_now_ms() + 500; fg_now_ms() < deadline;)
		pump(self, 10);
	EXPECT_EQ(0, fv_used_idx(&self->r[RXQ]));
	self->ngot = 0;
	deadline = fg_now_ms() + IO_MS;
	while (self->ngot < total && fg_now_ms() < deadline) {
		rx_fill(self, 8);
		if (!rx_reap(_metadata, self, total))
			pump(self, 1);
	}
	ASSERT_EQ(total, self->ngot) TH_LOG("%s", diag(self));
	bad = mismatch(self, 4, 0, total);
	ASSERT_EQ(total, bad) TH_LOG("byte %zu differs", bad);
}

TEST_F_TIMEOUT(cons, reattach_50_times_both_ways, 300)
{
	/* A terminal opens the PTY, exchanges 4 KiB each way byte for byte and closes it, 50 times: the console keeps working after every close (hvisor-tool issue #121). */
	int i, r;

	NEED_SETUP();
	start(_metadata, self);
	for (i = 0; i < 50; i++) {
		tx_stream(_metadata, self, 10 + i, 4096, 1000);
		rx_stream(_metadata, self, 100 + i, 4096);
		term_close(self);
		r = term_open(self);
		ASSERT_EQ(0, r) TH_LOG("round %d: open %s: %s", i, self->link, errname(r));
	}
}

TEST_F_TIMEOUT(cons, reset_during_traffic_then_works, 120)
{
	/* The guest resets the device with TX chains held by a full PTY and RX buffers armed, probes again, and the console then carries 16 KiB each way byte for byte; the daemon stays up. */
	uint64_t deadline;
	size_t sent = 0;

	NEED_SETUP();
	start(_metadata, self);
	rx_fill(self, 16);
	while (sent < 128 * 1024 && tx_post(self, 5, sent, TXB))
		sent += TXB;
	kick(self, TXQ);
	pump(self, 200);
	fg_vdev_wr(&self->v, VIRTIO_MMIO_STATUS, 0);
	pump(self, 100);
	probe(_metadata, self);
	/* what was written before the reset is the terminal's: drop it until 300 ms pass without any */
	for (deadline = fg_now_ms() + 300; fg_now_ms() < deadline;) {
		if (read(self->term, self->got, 1 << 20) > 0)
			deadline = fg_now_ms() + 300;
		pump(self, 10);
	}
	ASSERT_TRUE(fn_daemon_alive(&self->d)) TH_LOG("%s", diag(self));
	tx_stream(_metadata, self, 6, 16 * 1024, TXB);
	rx_stream(_metadata, self, 7, 16 * 1024);
	EXPECT_LT(0, ccount(self, "resets"));
}

TEST_F_TIMEOUT(cons, sigkill_then_takeover, 120)
{
	/* Traffic, then the daemon is SIGKILLed with its FETCHes parked and RX buffers posted: the device becomes an orphan, a new daemon takes it over with a new PTY behind the same symlink, and 16 KiB go each way byte for byte again. */
	struct hvio_stats st;
	uint64_t deadline;
	int r;

	NEED_SETUP();
	start(_metadata, self);
	tx_stream(_metadata, self, 20, 16 * 1024, TXB);
	rx_stream(_metadata, self, 21, 16 * 1024);
	r = fn_daemon_stop(&self->d, SIGKILL, STOP_MS);
	ASSERT_TRUE(r >= 0 && WIFSIGNALED(r) && WTERMSIG(r) == SIGKILL)
		TH_LOG("daemon: %s", fn_wstatus(r));
	close(self->d.out_fd);
	self->d.out_fd = -1;
	term_close(self);
	deadline = fg_now_ms() + STOP_MS;
	do {
		memset(&st, 0, sizeof(st));
		fg_stats(&self->fg, &st);
		if (st.orphans)
			break;
		fg_sleep_ms(10);
	} while (fg_now_ms() < deadline);
	EXPECT_EQ(1, st.orphans);
	up(_metadata, self);
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.orphans);
	r = term_open(self);
	ASSERT_EQ(0, r) TH_LOG("open %s: %s", self->link, errname(r));
	tx_stream(_metadata, self, 22, 16 * 1024, TXB);
	rx_stream(_metadata, self, 23, 16 * 1024);
}

TEST_F_TIMEOUT(cons, window_size_change_reaches_config_space, 60)
{
	/* The terminal sets the PTY's window to 132 x 50 (TIOCSWINSZ): within 5 s the guest's config space says cols 132, rows 50, with a configuration-change interrupt (InterruptStatus bit 1, ConfigGeneration advanced); the console still works. */
	struct winsize ws = { .ws_row = 50, .ws_col = 132 };
	uint64_t deadline;
	uint32_t gen0, isr = 0;
	uint16_t cols = 0, rows = 0;

	NEED_SETUP();
	start(_metadata, self);
	gen0 = fg_vdev_rd(&self->v, VIRTIO_MMIO_CONFIG_GENERATION);
	ASSERT_EQ(0, ioctl(self->term, TIOCSWINSZ, &ws));
	for (deadline = fg_now_ms() + 5000; fg_now_ms() < deadline;) {
		pump(self, 20);
		cols = fg_read(&self->fg, self->v.cpu, ZONE_A, MMIO_BASE + HVIO_MMIO_CONFIG_OFF +
			       offsetof(struct virtio_console_config, cols), 2);
		rows = fg_read(&self->fg, self->v.cpu, ZONE_A, MMIO_BASE + HVIO_MMIO_CONFIG_OFF +
			       offsetof(struct virtio_console_config, rows), 2);
		isr |= fg_vdev_rd(&self->v, VIRTIO_MMIO_INTERRUPT_STATUS);
		if (cols == 132 && rows == 50 && (isr & 2))
			break;
	}
	EXPECT_EQ(132, cols);
	EXPECT_EQ(50, rows);
	EXPECT_TRUE(isr & 2) TH_LOG("no configuration change in InterruptStatus (%#x)", isr);
	EXPECT_NE(gen0, fg_vdev_rd(&self->v, VIRTIO_MMIO_CONFIG_GENERATION));
	fg_vdev_wr(&self->v, VIRTIO_MMIO_INTERRUPT_ACK, isr & 3);
	/* The daemon counts the change just after it reached config space. */
	for (deadline = fg_now_ms() + 2000;
	     ccount(self, "size_changes") < 1 && fg_now_ms() < deadline;)
		fg_sleep_ms(10);
	EXPECT_EQ(1, ccount(self, "size_changes"));
	tx_stream(_metadata, self, 90, 4096, 1000);
}

TEST_F_TIMEOUT(cons, socket_clients_one_at_a_time, 120)
{
	/* With "socket": the guest's output waits while no client is connected (TX ops held), then a client gets it byte for byte; 10 clients one after another each exchange 4 KiB both ways; a second client connected meanwhile waits until the first leaves, then gets the output. */
	int i, r, first;
	uint64_t deadline;
	size_t sent = 0, bad;

	NEED_SETUP();
	self->sock = true;
	snprintf(self->link, sizeof(self->link), "/tmp/hvio-console-%d.sock",
		 (int)getpid());
	up(_metadata, self);
	probe(_metadata, self);
	/* no client: 16 KiB wait in the daemon */
	while (sent < 16 * 1024 && tx_post(self, 30, sent, TXB))
		sent += TXB;
	kick(self, TXQ);
	for (deadline = fg_now_ms() + 300; fg_now_ms() < deadline;)
		pump(self, 10);
	EXPECT_EQ(4, fv_inflight(&self->r[TXQ])) TH_LOG("%s", diag(self));
	ASSERT_EQ(0, term_open(self));
	self->ngot = 0;
	for (deadline = fg_now_ms() + IO_MS; self->ngot < sent && fg_now_ms() < deadline;)
		if (!term_read(self, sent))
			pump(self, 1);
	ASSERT_EQ(sent, self->ngot) TH_LOG("%s", diag(self));
	bad = mismatch(self, 30, 0, sent);
	ASSERT_EQ(sent, bad) TH_LOG("byte %zu differs", bad);
	for (i = 0; i < 10; i++) {
		tx_stream(_metadata, self, 40 + i, 4096, 1000);
		rx_stream(_metadata, self, 60 + i, 4096);
		term_close(self);
		r = term_open(self);
		ASSERT_EQ(0, r) TH_LOG("client %d: %s", i, errname(r));
	}
	/* a second client waits while the first is served */
	first = self->term;
	self->term = -1;
	ASSERT_EQ(0, term_open(self));
	r = self->term;
	self->term = first;
	tx_stream(_metadata, self, 80, 4096, 1000);
	self->ngot = 0;
	EXPECT_EQ(-1, read(r, self->got, 16)) TH_LOG("the waiting client got bytes");
	term_close(self);
	self->term = r;
	tx_stream(_metadata, self, 81, 4096, 1000);
	EXPECT_LE(12, ccount(self, "clients"));
}

TEST_HARNESS_MAIN
