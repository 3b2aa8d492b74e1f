// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_console: the kernel's virtio-console queue contract (port 0), with
 * this program playing hvisor, the guest driver (fakevring) and the
 * daemon (no PTY): transmitq0 chains become WRITE ops whose segments are
 * the guest's bytes; receiveq0 chains become READ ops and the committed
 * byte count becomes the used length, byte for byte; chains of the wrong
 * direction are refused and counted; a reset during traffic drops the old
 * ops' completions without touching the guest; the device is created
 * only with the queues and features the module implements.
 */
#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>

#include "hvio_test.h"
#include "fakevring.h"

#define QN		256		/* queue size */
#define IRQ		43
#define ZONE_SIZE	(4 * MIB)
#define DATA		(GUEST_RAM + 0x40000)	/* buffers from here */
#define RXQ		0		/* receiveq0 */
#define TXQ		1		/* transmitq0 */

#define BIT(b)		(1ULL << (b))
#define F_ALL		(FG_F_VERSION_1 | BIT(VIRTIO_RING_F_INDIRECT_DESC) | \
			 BIT(VIRTIO_RING_F_EVENT_IDX) |			  \
			 BIT(VIRTIO_CONSOLE_F_SIZE))

FIXTURE(console) {
	struct fg fg;
	struct fg_zone z;
	bool skip;
	bool zone;
	int fd;
	struct fg_vdev v;
	struct fv_ring r[2];
	struct hvio_op *ops[2];
	size_t ops_len;
	uint32_t gen;
};

static void *gptr(FIXTURE_DATA(console) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->z, gpa);
}

static int make_dev(FIXTURE_DATA(console) *self, uint16_t nq,
		    uint64_t features)
{
	struct virtio_console_config cfg = { .cols = 80, .rows = 25 };
	struct hvio_dev_create c;

	fg_dev_init(&c, ZONE_A, VIRTIO_ID_CONSOLE, MMIO_BASE, IRQ, nq, QN,
		    features, &cfg, sizeof(cfg));
	return fg_dev_create(&self->fg, &c);
}

/* Linux's probe, then the driver's view of both rings. */
static int probe(FIXTURE_DATA(console) *self)
{
	struct fg_vq *vq;
	int q, r;

	memset(gptr(self, GUEST_RAM), 0, 0x40000);
	r = fg_vdev_probe(&self->v, F_ALL, 2, QN, GUEST_RAM);
	if (r)
		return r;
	for (q = 0; q < 2; q++) {
		vq = &self->v.vq[q];
		fv_init(&self->r[q], vq->num, gptr(self, vq->desc),
			gptr(self, vq->driver), gptr(self, vq->device), true);
	}
	return 0;
}

FIXTURE_SETUP(console)
{
	int q;

	self->fd = -1;
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = ZONE_SIZE };
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &self->z));
	self->zone = true;
	self->fd = make_dev(self, 2, F_ALL);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	self->ops_len = (QN * sizeof(struct hvio_op) + 4095) & ~4095UL;
	for (q = 0; q < 2; q++) {
		self->ops[q] = mmap(NULL, self->ops_len, PROT_READ, MAP_SHARED,
				    self->fd, HVIO_DEV_MMAP_RING_BASE +
				    q * HVIO_DEV_MMAP_RING_STRIDE);
		ASSERT_NE(MAP_FAILED, self->ops[q]);
	}
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, probe(self)) TH_LOG("%s", self->v.err);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(console)
{
	int q;

	for (q = 0; q < 2; q++)
		if (self->ops[q] && self->ops[q] != MAP_FAILED)
			munmap(self->ops[q], self->ops_len);
	if (self->fd >= 0)
		close(self->fd);
	if (self->zone)
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	hvio_fixture_close(_metadata, &self->fg);
}

/* Add one chain to queue q, publish it and kick; returns its head. */
static int post(FIXTURE_DATA(console) *self, int q, const struct fv_buf *b,
		unsigned int n)
{
	int head = fv_add(&self->r[q], b, n, NULL, 0, (void *)1);

	if (head < 0)
		return head;
	fv_publish(&self->r[q]);
	fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, q);
	fg_wait_consumed(&self->fg, FG_TIMEOUT_MS);
	return head;
}

/* The daemon's side: commit, then fetch.  nr_fetched or -errno. */
static int run(FIXTURE_DATA(console) *self, int q,
	       const struct hvio_completion *c, int nc, uint16_t *tags,
	       int max)
{
	struct hvio_queue_run r = {
		.queue = q, .nr_commit = nc, .max_fetch = max,
		.commits_addr = (uintptr_t)c, .tags_addr = (uintptr_t)tags,
	};

	if (ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r))
		return -errno;
	self->gen = r.generation;
	return r.nr_fetched;
}

static int commit1(FIXTURE_DATA(console) *self, int q, uint16_t tag,
		   int32_t result)
{
	struct hvio_completion c = { .tag = tag, .result = result,
				     .generation = self->gen };

	return run(self, q, &c, 1, NULL, 0);
}

/* The next used entry of queue q: its length, or -1 if there is none. */
static long used_len(FIXTURE_DATA(console) *self, int q)
{
	uint32_t len;
	void *token;

	return fv_get_used(&self->r[q], &len, &token) == 1 ? (long)len : -1;
}

static struct hvio_queue_stats qstats(FIXTURE_DATA(console) *self, int q)
{
	struct hvio_queue_stats st = { .queue = q };

	ioctl(self->fd, HVIO_DEV_GET_QUEUE_STATS, &st);
	return st;
}

/* Byte i of a test stream. */
static uint8_t pat(uint32_t i)
{
	return (uint8_t)(i * 31 + (i >> 8) + 7);
}

TEST_F(console, create_checks_queues_and_features)
{
	/* Port 0 only: receiveq0 and transmitq0.  MULTIPORT would need a
	 * control queue nobody answers, EMERG_WRITE a config write nobody
	 * forwards: both refused, as any feature the module lacks.  F_SIZE
	 * is config space: cols and rows read back. */
	NEED_SETUP();
	EXPECT_ERR(EINVAL, make_dev(self, 1, F_ALL));
	EXPECT_ERR(EINVAL, make_dev(self, 4, F_ALL));
	EXPECT_ERR(EINVAL,
		   make_dev(self, 2, F_ALL | BIT(VIRTIO_CONSOLE_F_MULTIPORT)));
	EXPECT_ERR(EINVAL,
		   make_dev(self, 2, F_ALL | BIT(VIRTIO_CONSOLE_F_EMERG_WRITE)));
	EXPECT_EQ(F_ALL, self->v.driver_features);
	EXPECT_EQ(80, fg_read16(&self->fg, 0, ZONE_A, MMIO_BASE + 0x100));
	EXPECT_EQ(25, fg_read16(&self->fg, 0, ZONE_A, MMIO_BASE + 0x102));
}

TEST_F(console, tx_bytes_reach_the_daemon)
{
	/* A chain of three readable buffers becomes one WRITE op naming
	 * exactly those bytes; its commit gives the chain back with used
	 * length 0 and counts the bytes. */
	struct fv_buf b[] = { { DATA, 1, false }, { DATA + 0x1000, 4000, false },
			      { DATA + 0x3000, 95, false } };
	uint32_t i, s, k = 0;
	struct hvio_op *op;
	uint16_t tags[QN];
	uint8_t *p;
	int head;

	NEED_SETUP();
	for (s = 0; s < 3; s++)
		for (i = 0, p = gptr(self, b[s].gpa); i < b[s].len; i++)
			p[i] = pat(k++);
	head = post(self, TXQ, b, 3);
	ASSERT_LE(0, head);
	ASSERT_EQ(1, run(self, TXQ, NULL, 0, tags, QN));
	ASSERT_EQ(head, tags[0]);
	op = &self->ops[TXQ][head];
	EXPECT_EQ(HVIO_OP_WRITE, op->type);
	EXPECT_EQ(4096, op->len);
	EXPECT_EQ(0, op->offset);
	EXPECT_EQ(self->gen, op->generation);
	ASSERT_EQ(3, op->nr_segs);
	for (s = 0, k = 0; s < 3; s++) {
		EXPECT_EQX(b[s].gpa, op->segs[s].gpa);
		ASSERT_EQ(b[s].len, op->segs[s].len);
		for (i = 0, p = gptr(self, op->segs[s].gpa); i < b[s].len; i++)
			ASSERT_EQ(pat(k++), p[i]);
	}
	EXPECT_EQ(-1, used_len(self, TXQ));
	ASSERT_EQ(0, commit1(self, TXQ, head, 4096));
	EXPECT_EQ(0, used_len(self, TXQ));
	EXPECT_EQ(4096, qstats(self, TXQ).bytes);
	EXPECT_EQ(0, qstats(self, TXQ).errors);
}

TEST_F(console, rx_count_becomes_used_length)
{
	/* A buffer over two descriptors becomes one READ op; the daemon
	 * reads 100 bytes across the boundary and commits 100: the guest
	 * sees exactly those bytes and used length 100. */
	struct fv_buf b[] = { { DATA, 64, true }, { DATA + 0x1000, 192, true } };
	struct hvio_op *op;
	uint16_t tags[QN];
	uint8_t *p0, *p1;
	uint32_t i;
	int head;

	NEED_SETUP();
	p0 = gptr(self, DATA);
	p1 = gptr(self, DATA + 0x1000);
	memset(p0, 0xee, 64);
	memset(p1, 0xee, 192);
	head = post(self, RXQ, b, 2);
	ASSERT_LE(0, head);
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN));
	ASSERT_EQ(head, tags[0]);
	op = &self->ops[RXQ][head];
	EXPECT_EQ(HVIO_OP_READ, op->type);
	EXPECT_EQ(256, op->len);
	ASSERT_EQ(2, op->nr_segs);
	EXPECT_EQX(DATA, op->segs[0].gpa);
	EXPECT_EQ(64, op->segs[0].len);
	EXPECT_EQX(DATA + 0x1000, op->segs[1].gpa);
	EXPECT_EQ(192, op->segs[1].len);
	/* What the daemon's readv() does. */
	for (i = 0; i < 100; i++)
		*(i < 64 ? p0 + i : p1 + i - 64) = pat(i);
	ASSERT_EQ(0, commit1(self, RXQ, head, 100));
	EXPECT_EQ(100, used_len(self, RXQ));
	for (i = 0; i < 100; i++)
		ASSERT_EQ(pat(i), i < 64 ? p0[i] : p1[i - 64]);
	EXPECT_EQ(0xee, p1[100 - 64]);
	EXPECT_EQ(100, qstats(self, RXQ).bytes);
}

TEST_F(console, rx_without_data_returns_buffer_empty)
{
	/* 0 bytes, a count above the buffer, a cancelled op and a failed
	 * read each give the buffer back with used length 0; only the
	 * failure counts as an error, only the bad count as dropped. */
	static const int32_t res[] = { 0, 257, -ECANCELED, -EIO };
	struct fv_buf b = { DATA, 256, true };
	uint16_t tags[QN];
	unsigned int i;
	int head;

	NEED_SETUP();
	for (i = 0; i < 4; i++) {
		head = post(self, RXQ, &b, 1);
		ASSERT_LE(0, head);
		ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN));
		ASSERT_EQ(0, commit1(self, RXQ, tags[0], res[i]));
		EXPECT_EQ(0, used_len(self, RXQ)) TH_LOG("result %d", res[i]);
	}
	EXPECT_EQ(1, qstats(self, RXQ).errors);
	EXPECT_EQ(1, qstats(self, RXQ).rx_dropped);
	EXPECT_EQ(0, qstats(self, RXQ).bytes);
}

TEST_F(console, wrong_direction_is_refused_and_counted)
{
	/* A transmit chain with a writable buffer and a receive chain with
	 * a readable one never reach the daemon: used length 0, counted in
	 * bad_request; the queues go on. */
	struct fv_buf tx_bad[] = { { DATA, 16, false }, { DATA + 0x100, 16, true } };
	struct fv_buf rx_bad = { DATA + 0x1000, 64, false };
	struct fv_buf tx_ok = { DATA + 0x2000, 8, false };
	uint16_t tags[QN];

	NEED_SETUP();
	ASSERT_LE(0, post(self, TXQ, tx_bad, 2));
	ASSERT_LE(0, post(self, RXQ, &rx_bad, 1));
	EXPECT_EQ(0, run(self, TXQ, NULL, 0, tags, QN));
	EXPECT_EQ(0, run(self, RXQ, NULL, 0, tags, QN));
	EXPECT_EQ(0, used_len(self, TXQ));
	EXPECT_EQ(0, used_len(self, RXQ));
	EXPECT_EQ(1, qstats(self, TXQ).bad_request);
	EXPECT_EQ(1, qstats(self, RXQ).bad_request);
	ASSERT_LE(0, post(self, TXQ, &tx_ok, 1));
	EXPECT_EQ(1, run(self, TXQ, NULL, 0, tags, QN));
}

TEST_F(console, full_rings_wait_for_the_daemon)
{
	/* Nothing is used before the daemon commits: with every transmit
	 * chain held (a backend nobody reads) the guest's ring is full, and
	 * receive buffers stay posted until input comes.  Commits free
	 * them in order. */
	struct fv_buf b = { DATA, 32, false };
	uint16_t tags[QN];
	struct hvio_completion c[QN];
	int i, n;

	NEED_SETUP();
	for (i = 0; i < QN; i++)
		ASSERT_LE(0, post(self, TXQ, &b, 1));
	EXPECT_EQ(-ENOSPC, fv_add(&self->r[TXQ], &b, 1, NULL, 0, (void *)1));
	n = run(self, TXQ, NULL, 0, tags, QN);
	ASSERT_EQ(QN, n);
	EXPECT_EQ(-1, used_len(self, TXQ));
	EXPECT_EQ(0, run(self, TXQ, NULL, 0, tags + n, QN));
	for (i = 0; i < n; i++)
		c[i] = (struct hvio_completion){ .tag = tags[i], .result = 32,
						 .generation = self->gen };
	ASSERT_EQ(0, run(self, TXQ, c, n, NULL, 0));
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, used_len(self, TXQ));
	EXPECT_EQ(QN * 32, qstats(self, TXQ).bytes);
	ASSERT_LE(0, post(self, TXQ, &b, 1));
}

TEST_F(console, reset_during_traffic_drops_old_ops)
{
	/* A reset while the daemon holds a transmit and a receive op: their
	 * completions are stale, nothing reaches the old rings (the reset
	 * is answered once they are back); after a new probe both queues
	 * work again. */
	struct fv_buf tx = { DATA, 16, false }, rx = { DATA + 0x1000, 64, true };
	struct hvio_completion c;
	uint16_t tags[QN], tx_tag, rx_tag;
	uint32_t old_gen;
	uint64_t flag;

	NEED_SETUP();
	ASSERT_LE(0, post(self, TXQ, &tx, 1));
	ASSERT_LE(0, post(self, RXQ, &rx, 1));
	ASSERT_EQ(1, run(self, TXQ, NULL, 0, tags, QN));
	tx_tag = tags[0];
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN));
	rx_tag = tags[0];
	old_gen = self->gen;
	ASSERT_EQ(0, fg_vdev_reset_start(&self->v, &flag));
	c = (struct hvio_completion){ .tag = tx_tag, .result = 16,
				      .generation = old_gen };
	ASSERT_EQ(0, run(self, TXQ, &c, 1, NULL, 0));
	c = (struct hvio_completion){ .tag = rx_tag, .result = 10,
				      .generation = old_gen };
	ASSERT_EQ(0, run(self, RXQ, &c, 1, NULL, 0));
	ASSERT_EQ(0, fg_vdev_reset_wait(&self->v, flag)) TH_LOG("%s", self->v.err);
	EXPECT_EQ(-1, used_len(self, TXQ));
	EXPECT_EQ(-1, used_len(self, RXQ));
	EXPECT_EQ(1, qstats(self, TXQ).stale);
	EXPECT_EQ(1, qstats(self, RXQ).stale);

	ASSERT_EQ(0, probe(self)) TH_LOG("%s", self->v.err);
	ASSERT_LE(0, post(self, RXQ, &rx, 1));
	ASSERT_EQ(1, run(self, RXQ, NULL, 0, tags, QN));
	EXPECT_NE(old_gen, self->gen);
	ASSERT_EQ(0, commit1(self, RXQ, tags[0], 10));
	EXPECT_EQ(10, used_len(self, RXQ));
	ASSERT_LE(0, post(self, TXQ, &tx, 1));
	ASSERT_EQ(1, run(self, TXQ, NULL, 0, tags, QN));
	ASSERT_EQ(0, commit1(self, TXQ, tags[0], 16));
	EXPECT_EQ(0, used_len(self, TXQ));
}

TEST_HARNESS_MAIN
