// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_queue: the in-kernel virtqueue engine and virtio-blk request
 * handling, with this program playing hvisor, the guest driver AND the
 * daemon: it posts requests in zone RAM, kicks, calls HVIO_DEV_QUEUE_RUN
 * itself and checks the op slots, the used ring, the status bytes and the
 * counters.  No image, no daemon: what is tested is the kernel's contract.
 */
#include <poll.h>
#include <sys/eventfd.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "hvio_test.h"

#define QN		16		/* queue size */
#define NQ		2
#define IRQ		40
#define CAPACITY	2048		/* sectors */
#define DISCARD_ALIGN	8
#define DATA		(GUEST_RAM + 0x40000)	/* data buffers */
#define SERIAL		"hvio-serial-0123456"
#define BLK_FEATURES	(FG_F_VERSION_1 | (1ULL << VIRTIO_BLK_F_FLUSH) | \
			 (1ULL << VIRTIO_BLK_F_DISCARD) | \
			 (1ULL << VIRTIO_BLK_F_WRITE_ZEROES) | \
			 (1ULL << VIRTIO_BLK_F_CONFIG_WCE) | \
			 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
			 (1ULL << VIRTIO_RING_F_EVENT_IDX))

struct buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

FIXTURE(queue) {
	struct fg fg;
	struct fg_zone z;
	bool skip;
	bool zone;
	int fd;
	struct fg_vdev v;
	struct hvio_op *ops[NQ];
	size_t ops_len;
	uint16_t avail_idx[NQ];
	uint16_t next_desc[NQ];
};

static void *gptr(FIXTURE_DATA(queue) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->z, gpa);
}

static int make_dev(FIXTURE_DATA(queue) *self, uint64_t features)
{
	struct virtio_blk_config cfg;
	struct hvio_dev_create c;

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = CAPACITY;
	cfg.seg_max = HVIO_OP_MAX_SEGS;
	cfg.wce = 1;
	cfg.max_discard_sectors = 1024;
	cfg.max_discard_seg = 1;
	cfg.discard_sector_alignment = DISCARD_ALIGN;
	cfg.max_write_zeroes_sectors = 1024;
	cfg.max_write_zeroes_seg = 1;
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, IRQ, NQ, QN,
		    features, &cfg, 60);
	memcpy(c.serial, SERIAL, strlen(SERIAL));
	return fg_dev_create(&self->fg, &c);
}

/* Probe as Linux would, negotiating everything offered. */
static int probe(FIXTURE_DATA(queue) *self, uint64_t want)
{
	memset(self->avail_idx, 0, sizeof(self->avail_idx));
	memset(self->next_desc, 0, sizeof(self->next_desc));
	memset(gptr(self, GUEST_RAM), 0, 0x40000);
	return fg_vdev_probe(&self->v, want, NQ, QN, GUEST_RAM);
}

FIXTURE_SETUP(queue)
{
	int q;

	self->fd = -1;
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = MIB };
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &self->z));
	self->zone = true;
	self->fd = make_dev(self, BLK_FEATURES);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	self->ops_len = (QN * sizeof(struct hvio_op) + 4095) & ~4095UL;
	for (q = 0; q < NQ; q++) {
		self->ops[q] = mmap(NULL, self->ops_len, PROT_READ, MAP_SHARED,
				    self->fd, HVIO_DEV_MMAP_RING_BASE +
				    q * HVIO_DEV_MMAP_RING_STRIDE);
		ASSERT_NE(MAP_FAILED, self->ops[q]);
	}
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, probe(self, BLK_FEATURES)) TH_LOG("%s", self->v.err);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(queue)
{
	int q;

	for (q = 0; q < NQ; q++)
		if (self->ops[q] && self->ops[q] != MAP_FAILED)
			munmap(self->ops[q], self->ops_len);
	if (self->fd >= 0)
		close(self->fd);
	if (self->zone) {
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	}
	hvio_fixture_close(_metadata, &self->fg);
}

/* Post one direct chain on queue q; returns its head. */
static uint16_t post(FIXTURE_DATA(queue) *self, int q, const struct buf *b,
		     int n)
{
	struct fg_vq *vq = &self->v.vq[q];
	struct vring_desc *desc = gptr(self, vq->desc);
	struct vring_avail *avail = gptr(self, vq->driver);
	uint16_t head = self->next_desc[q], d = head;
	int i;

	for (i = 0; i < n; i++) {
		d = (head + i) % vq->num;
		desc[d].addr = b[i].gpa;
		desc[d].len = b[i].len;
		desc[d].flags = (b[i].write ? VRING_DESC_F_WRITE : 0) |
				(i + 1 < n ? VRING_DESC_F_NEXT : 0);
		desc[d].next = (d + 1) % vq->num;
	}
	self->next_desc[q] = (head + n) % vq->num;
	avail->ring[self->avail_idx[q] % vq->num] = head;
	__atomic_store_n(&avail->idx, ++self->avail_idx[q], __ATOMIC_RELEASE);
	return head;
}

static void kick(FIXTURE_DATA(queue) *self, int q)
{
	fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, q);
	fg_wait_consumed(&self->fg, FG_TIMEOUT_MS);
}

/* The daemon's side: commit, then fetch. Returns nr_fetched or -errno. */
static int run(FIXTURE_DATA(queue) *self, int q,
	       const struct hvio_completion *c, int nc, uint16_t *tags,
	       int max, uint32_t *gen)
{
	struct hvio_queue_run r = {
		.queue = q, .nr_commit = nc, .max_fetch = max,
		.commits_addr = (uintptr_t)c, .tags_addr = (uintptr_t)tags,
	};

	if (ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r))
		return -errno;
	if (gen)
		*gen = r.generation;
	return r.nr_fetched;
}

static struct vring_used_elem used_at(FIXTURE_DATA(queue) *self, int q,
				      uint16_t i)
{
	struct vring_used *used = gptr(self, self->v.vq[q].device);

	return used->ring[i % self->v.vq[q].num];
}

static uint16_t used_idx(FIXTURE_DATA(queue) *self, int q)
{
	struct vring_used *used = gptr(self, self->v.vq[q].device);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static struct hvio_queue_stats qstats(FIXTURE_DATA(queue) *self, int q)
{
	struct hvio_queue_stats st = { .queue = q };

	ioctl(self->fd, HVIO_DEV_GET_QUEUE_STATS, &st);
	return st;
}

static void set_hdr(FIXTURE_DATA(queue) *self, uint64_t gpa, uint32_t type,
		    uint64_t sector)
{
	struct virtio_blk_outhdr *h = gptr(self, gpa);

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
}

#define HDR	(DATA)
#define BUF	(DATA + 0x1000)
#define STATUS	(DATA + 0x800)

/* A request finished in the kernel: no op, status and used len set. */
static void expect_kernel_answer(struct __test_metadata *_metadata,
				 FIXTURE_DATA(queue) *self, uint16_t head,
				 uint8_t status, uint32_t used_len)
{
	uint16_t tags[QN];
	struct vring_used_elem e;

	*(uint8_t *)gptr(self, STATUS) = 0xee;
	kick(self, 0);
	ASSERT_EQ(0, run(self, 0, NULL, 0, tags, QN, NULL));
	ASSERT_EQ(1, used_idx(self, 0));
	e = used_at(self, 0, 0);
	EXPECT_EQ(head, e.id);
	EXPECT_EQ(used_len, e.len);
	EXPECT_EQ(status, *(uint8_t *)gptr(self, STATUS));
}

TEST_F(queue, read_becomes_op_and_completes)
{
	/* An IN request becomes a READ op with the guest's data buffers;
	 * committing it writes status 0, the used entry (data + status) and
	 * raises the device's interrupt in the zone. */
	struct buf b[] = { { HDR, 16, false }, { BUF, 4096, true },
			   { BUF + 8192, 512, true }, { STATUS, 1, true } };
	struct hvio_completion c = { 0 };
	struct hvio_device_res res[4];
	struct vring_used_elem e;
	uint16_t tags[QN], head;
	struct hvio_op *op;
	uint32_t gen;

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_IN, 100);
	head = post(self, 0, b, 4);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, &gen));
	ASSERT_EQ(head, tags[0]);
	op = &self->ops[0][head];
	EXPECT_EQ(HVIO_OP_READ, op->type);
	EXPECT_EQ(head, op->tag);
	EXPECT_EQX(100 * 512, op->offset);
	EXPECT_EQ(4608, op->len);
	ASSERT_EQ(2, op->nr_segs);
	EXPECT_EQX(BUF, op->segs[0].gpa);
	EXPECT_EQ(4096, op->segs[0].len);
	EXPECT_EQX(BUF + 8192, op->segs[1].gpa);
	EXPECT_EQ(512, op->segs[1].len);
	EXPECT_EQ(gen, op->generation);
	EXPECT_EQ(0, used_idx(self, 0));

	*(uint8_t *)gptr(self, STATUS) = 0xee;
	fg_flush_res(&self->fg);
	c.tag = head;
	c.generation = gen;
	ASSERT_EQ(0, run(self, 0, &c, 1, tags, QN, NULL));
	ASSERT_EQ(1, used_idx(self, 0));
	e = used_at(self, 0, 0);
	EXPECT_EQ(head, e.id);
	EXPECT_EQ(4608 + 1, e.len);
	EXPECT_EQ(VIRTIO_BLK_S_OK, *(uint8_t *)gptr(self, STATUS));
	ASSERT_EQ(1, fg_collect_res(&self->fg, res, 4, 1, FG_TIMEOUT_MS));
	EXPECT_EQ(ZONE_A, res[0].target_zone);
	EXPECT_EQ(IRQ, res[0].irq_id);
	EXPECT_EQ(1, fg_vdev_rd(&self->v, VIRTIO_MMIO_INTERRUPT_STATUS) & 1);
	EXPECT_EQ(1, qstats(self, 0).completed);
	EXPECT_EQ(1, qstats(self, 0).ops);
}

TEST_F(queue, write_any_layout_and_error_result)
{
	/* Header and data in one descriptor (any layout); a failed write
	 * (negative result) reports S_IOERR with used length 1. */
	struct buf b[] = { { HDR, 16 + 1024, false }, { STATUS, 1, true } };
	struct hvio_completion c = { 0 };
	uint16_t tags[QN], head;
	struct hvio_op *op;
	uint32_t gen;

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_OUT, 7);
	head = post(self, 0, b, 2);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, &gen));
	op = &self->ops[0][head];
	EXPECT_EQ(HVIO_OP_WRITE, op->type);
	EXPECT_EQX(7 * 512, op->offset);
	EXPECT_EQ(1024, op->len);
	ASSERT_EQ(1, op->nr_segs);
	EXPECT_EQX(HDR + 16, op->segs[0].gpa);
	EXPECT_EQ(1024, op->segs[0].len);
	/* writeback cache (wce = 1, FLUSH negotiated): no FUA */
	EXPECT_EQ(0, op->flags & HVIO_OP_F_FUA);

	c.tag = head;
	c.generation = gen;
	c.result = -EIO;
	ASSERT_EQ(0, run(self, 0, &c, 1, tags, QN, NULL));
	EXPECT_EQ(1, used_at(self, 0, 0).len);
	EXPECT_EQ(VIRTIO_BLK_S_IOERR, *(uint8_t *)gptr(self, STATUS));
}

TEST_F(queue, writethrough_sets_fua)
{
	/* The guest writing wce = 0 (CONFIG_WCE) makes writes durable. */
	struct buf b[] = { { HDR, 16, false }, { BUF, 512, false },
			   { STATUS, 1, true } };
	uint16_t tags[QN], head;

	NEED_SETUP();
	fg_write(&self->fg, 0, ZONE_A, MMIO_BASE + 0x100 +
		 offsetof(struct virtio_blk_config, wce), 1, 0);
	EXPECT_EQ(0, fg_read(&self->fg, 0, ZONE_A, MMIO_BASE + 0x100 +
			     offsetof(struct virtio_blk_config, wce), 1));
	set_hdr(self, HDR, VIRTIO_BLK_T_OUT, 0);
	head = post(self, 0, b, 3);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(HVIO_OP_F_FUA, self->ops[0][head].flags & HVIO_OP_F_FUA);
}

TEST_F(queue, get_id_answered_in_kernel)
{
	/* GET_ID never reaches the daemon: the serial is written into the
	 * guest buffer and the used length counts it and the status. */
	struct buf b[] = { { HDR, 16, false }, { BUF, 20, true },
			   { STATUS, 1, true } };
	uint16_t head;

	NEED_SETUP();
	memset(gptr(self, BUF), 0, 20);
	set_hdr(self, HDR, VIRTIO_BLK_T_GET_ID, 0);
	head = post(self, 0, b, 3);
	expect_kernel_answer(_metadata, self, head, VIRTIO_BLK_S_OK, 21);
	EXPECT_EQ(0, memcmp(gptr(self, BUF), SERIAL, strlen(SERIAL)));
	EXPECT_EQ(0, qstats(self, 0).ops);
	EXPECT_EQ(1, qstats(self, 0).done_in_kernel);
}

TEST_F(queue, out_of_range_sector_is_ioerr)
{
	/* A read ending past the capacity fails without an op. */
	struct buf b[] = { { HDR, 16, false }, { BUF, 1024, true },
			   { STATUS, 1, true } };

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_IN, CAPACITY - 1);
	expect_kernel_answer(_metadata, self, post(self, 0, b, 3),
			     VIRTIO_BLK_S_IOERR, 1);
	EXPECT_EQ(1, qstats(self, 0).bad_request);
}

TEST_F(queue, partial_sector_is_ioerr)
{
	/* Data that is not whole sectors fails without an op. */
	struct buf b[] = { { HDR, 16, false }, { BUF, 100, true },
			   { STATUS, 1, true } };

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_IN, 0);
	expect_kernel_answer(_metadata, self, post(self, 0, b, 3),
			     VIRTIO_BLK_S_IOERR, 1);
}

TEST_F(queue, unknown_type_is_unsupp)
{
	/* A request type the spec does not define gets S_UNSUPP. */
	struct buf b[] = { { HDR, 16, false }, { STATUS, 1, true } };

	NEED_SETUP();
	set_hdr(self, HDR, 0x77, 0);
	expect_kernel_answer(_metadata, self, post(self, 0, b, 2),
			     VIRTIO_BLK_S_UNSUPP, 1);
}

TEST_F(queue, discard_checks)
{
	/* DISCARD: an aligned range becomes an op, and so does one off
	 * discard_sector_alignment (a hint for the driver's splitting: ext4
	 * with 1 KiB blocks sends such); one with flags fails in the kernel
	 * with UNSUPP. */
	struct virtio_blk_discard_write_zeroes *seg = gptr(self, BUF);
	struct buf b[] = { { HDR, 16, false }, { BUF, 16, false },
			   { STATUS, 1, true } };
	struct hvio_completion c = { 0 };
	uint16_t tags[QN], head;
	struct hvio_op *op;
	uint32_t gen;

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_DISCARD, 0);
	seg->sector = 16;
	seg->num_sectors = 32;
	seg->flags = 0;
	head = post(self, 0, b, 3);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, &gen));
	op = &self->ops[0][head];
	EXPECT_EQ(HVIO_OP_DISCARD, op->type);
	EXPECT_EQX(16 * 512, op->offset);
	EXPECT_EQ(32 * 512, op->len);
	/* The op goes back before the re-probe: its reset waits for it. */
	c.tag = tags[0];
	c.generation = gen;
	ASSERT_EQ(0, run(self, 0, &c, 1, NULL, 0, NULL));

	/* misaligned: a fresh device state keeps the used index simple */
	ASSERT_EQ(0, probe(self, BLK_FEATURES));
	seg->sector = 3;
	seg->num_sectors = 5;
	head = post(self, 0, b, 3);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, &gen));
	op = &self->ops[0][head];
	EXPECT_EQ(HVIO_OP_DISCARD, op->type);
	EXPECT_EQX(3 * 512, op->offset);
	EXPECT_EQ(5 * 512, op->len);
	c.tag = tags[0];
	c.generation = gen;
	ASSERT_EQ(0, run(self, 0, &c, 1, NULL, 0, NULL));
	ASSERT_EQ(0, probe(self, BLK_FEATURES));
	seg->sector = 16;
	seg->num_sectors = 32;
	seg->flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	expect_kernel_answer(_metadata, self, post(self, 0, b, 3),
			     VIRTIO_BLK_S_UNSUPP, 1);
}

TEST_F(queue, write_zeroes_unmap_flag)
{
	/* WRITE_ZEROES carries UNMAP through to the op. */
	struct virtio_blk_discard_write_zeroes *seg = gptr(self, BUF);
	struct buf b[] = { { HDR, 16, false }, { BUF, 16, false },
			   { STATUS, 1, true } };
	uint16_t tags[QN], head;

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	seg->sector = 5;
	seg->num_sectors = 3;
	seg->flags = VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP;
	head = post(self, 0, b, 3);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(HVIO_OP_WRITE_ZEROES, self->ops[0][head].type);
	EXPECT_EQ(HVIO_OP_F_UNMAP, self->ops[0][head].flags);
	EXPECT_EQ(3 * 512, self->ops[0][head].len);
}

TEST_F(queue, flush_not_negotiated_is_unsupp)
{
	/* FLUSH without VIRTIO_BLK_F_FLUSH negotiated gets S_UNSUPP. */
	struct buf b[] = { { HDR, 16, false }, { STATUS, 1, true } };

	NEED_SETUP();
	ASSERT_EQ(0, probe(self, BLK_FEATURES & ~(1ULL << VIRTIO_BLK_F_FLUSH)));
	set_hdr(self, HDR, VIRTIO_BLK_T_FLUSH, 0);
	expect_kernel_answer(_metadata, self, post(self, 0, b, 2),
			     VIRTIO_BLK_S_UNSUPP, 1);
}

TEST_F(queue, readonly_device_refuses_writes)
{
	/* VIRTIO_BLK_F_RO: OUT fails with S_IOERR in the kernel. */
	struct buf b[] = { { HDR, 16, false }, { BUF, 512, false },
			   { STATUS, 1, true } };

	NEED_SETUP();
	close(self->fd);
	munmap(self->ops[0], self->ops_len);
	munmap(self->ops[1], self->ops_len);
	self->ops[0] = self->ops[1] = NULL;
	self->fd = make_dev(self, BLK_FEATURES | (1ULL << VIRTIO_BLK_F_RO));
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, probe(self, BLK_FEATURES | (1ULL << VIRTIO_BLK_F_RO)));
	set_hdr(self, HDR, VIRTIO_BLK_T_OUT, 0);
	expect_kernel_answer(_metadata, self, post(self, 0, b, 3),
			     VIRTIO_BLK_S_IOERR, 1);
}

TEST_F(queue, chain_outside_ram_returned_empty)
{
	/* A buffer outside zone RAM: the chain comes back with used length
	 * 0, is counted per reason, and the queue keeps working. */
	struct buf bad[] = { { HDR, 16, false }, { 0x1000, 512, true },
			     { STATUS, 1, true } };
	struct buf good[] = { { HDR, 16, false }, { STATUS, 1, true } };
	uint16_t tags[QN];

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_FLUSH, 0);
	post(self, 0, bad, 3);
	kick(self, 0);
	ASSERT_EQ(0, run(self, 0, NULL, 0, tags, QN, NULL));
	ASSERT_EQ(1, used_idx(self, 0));
	EXPECT_EQ(0, used_at(self, 0, 0).len);
	EXPECT_EQ(1, qstats(self, 0).vq_errors[11]);	/* HVIO_VQ_E_ADDR */
	post(self, 0, good, 2);
	kick(self, 0);
	EXPECT_EQ(1, run(self, 0, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(0, fg_vdev_rd(&self->v, VIRTIO_MMIO_STATUS) & 0x40);
}

TEST_F(queue, bad_head_needs_reset_then_recovers)
{
	/* An avail entry >= queue size: DEVICE_NEEDS_RESET and a config
	 * interrupt; after reset and re-probe the queue works again. */
	struct vring_avail *avail;
	struct buf good[] = { { HDR, 16, false }, { STATUS, 1, true } };
	uint16_t tags[QN];

	NEED_SETUP();
	avail = gptr(self, self->v.vq[0].driver);
	avail->ring[0] = QN + 3;
	__atomic_store_n(&avail->idx, 1, __ATOMIC_RELEASE);
	kick(self, 0);
	ASSERT_EQ(0, run(self, 0, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(0x40, fg_vdev_rd(&self->v, VIRTIO_MMIO_STATUS) & 0x40);
	EXPECT_EQ(2, fg_vdev_rd(&self->v, VIRTIO_MMIO_INTERRUPT_STATUS) & 2);
	EXPECT_EQ(1, qstats(self, 0).vq_errors[3]);	/* HVIO_VQ_E_HEAD */

	ASSERT_EQ(0, probe(self, BLK_FEATURES));
	set_hdr(self, HDR, VIRTIO_BLK_T_FLUSH, 0);
	post(self, 0, good, 2);
	kick(self, 0);
	EXPECT_EQ(1, run(self, 0, NULL, 0, tags, QN, NULL));
}

TEST_F(queue, stale_completion_after_reset_is_dropped)
{
	/* An op fetched before a reset completes as stale (the reset is
	 * answered only then): nothing is written to the old status byte or
	 * the new rings. */
	struct buf b[] = { { HDR, 16, false }, { STATUS, 1, true } };
	struct hvio_completion c = { 0 };
	uint16_t tags[QN], head;
	uint32_t gen, gen2;
	uint64_t flag;

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_FLUSH, 0);
	head = post(self, 0, b, 2);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, &gen));
	ASSERT_EQ(0, fg_vdev_reset_start(&self->v, &flag));
	*(uint8_t *)gptr(self, STATUS) = 0xee;
	c.tag = head;
	c.generation = gen;
	ASSERT_EQ(0, run(self, 0, &c, 1, NULL, 0, &gen2));
	EXPECT_NE(gen, gen2);
	ASSERT_EQ(0, fg_vdev_reset_wait(&self->v, flag)) TH_LOG("%s", self->v.err);
	ASSERT_EQ(0, probe(self, BLK_FEATURES));
	ASSERT_EQ(0, run(self, 0, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(0, used_idx(self, 0));
	EXPECT_EQ(0xee, *(uint8_t *)gptr(self, STATUS));
	EXPECT_EQ(1, qstats(self, 0).stale);
}

TEST_F(queue, commit_of_unknown_tag_is_einval)
{
	/* Completing a tag that is not in flight is the daemon's bug. */
	struct hvio_completion c = { .tag = 3 };
	uint32_t gen;

	NEED_SETUP();
	ASSERT_EQ(0, run(self, 0, NULL, 0, NULL, 0, &gen));
	c.generation = gen;
	EXPECT_EQ(-EINVAL, run(self, 0, &c, 1, NULL, 0, NULL));
	c.tag = 0xffff;
	EXPECT_EQ(-EINVAL, run(self, 0, &c, 1, NULL, 0, NULL));
}

TEST_F(queue, reposted_inflight_head_needs_reset)
{
	/* The guest making a head available again while the daemon holds
	 * it breaks the protocol: DEVICE_NEEDS_RESET, no second op. */
	struct buf b[] = { { HDR, 16, false }, { STATUS, 1, true } };
	struct vring_avail *avail;
	uint16_t tags[QN], head;

	NEED_SETUP();
	set_hdr(self, HDR, VIRTIO_BLK_T_FLUSH, 0);
	head = post(self, 0, b, 2);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, NULL));
	avail = gptr(self, self->v.vq[0].driver);
	avail->ring[self->avail_idx[0] % QN] = head;
	__atomic_store_n(&avail->idx, ++self->avail_idx[0], __ATOMIC_RELEASE);
	kick(self, 0);
	EXPECT_EQ(0, run(self, 0, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(0x40, fg_vdev_rd(&self->v, VIRTIO_MMIO_STATUS) & 0x40);
}

TEST_F(queue, kick_signals_queue_eventfd)
{
	/* QueueNotify signals the eventfd of that queue only. */
	struct hvio_queue_eventfd qe = { .queue = 1 };
	struct pollfd pfd;
	uint64_t cnt;
	int efd;

	NEED_SETUP();
	efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	qe.fd = efd;
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_SET_QUEUE_EVENTFD, &qe));
	kick(self, 0);
	pfd = (struct pollfd){ .fd = efd, .events = POLLIN };
	EXPECT_EQ(0, poll(&pfd, 1, 50));
	kick(self, 1);
	EXPECT_EQ(1, poll(&pfd, 1, FG_TIMEOUT_MS));
	EXPECT_EQ(8, read(efd, &cnt, 8));
	EXPECT_EQ(1, cnt);
	EXPECT_EQ(1, qstats(self, 1).kicks);
	qe.queue = NQ;
	EXPECT_ERR(EINVAL, sys_ret(ioctl(self->fd, HVIO_DEV_SET_QUEUE_EVENTFD,
					  &qe)));
	close(efd);
}

TEST_F(queue, event_idx_rearms_and_suppresses)
{
	/* With EVENT_IDX, a drained queue publishes avail_event = the next
	 * index it will read, and completions before the driver's used_event
	 * raise no interrupt. */
	struct buf b[] = { { HDR, 16, false }, { STATUS, 1, true } };
	struct hvio_completion c[4];
	struct fg_vq *vq;
	uint16_t tags[QN], *used_event, *avail_event;
	uint32_t gen;
	int i, n;

	NEED_SETUP();
	vq = &self->v.vq[0];
	used_event = gptr(self, vq->driver + 4 + 2 * vq->num);
	avail_event = gptr(self, vq->device + 4 + 8 * vq->num);
	set_hdr(self, HDR, VIRTIO_BLK_T_FLUSH, 0);
	for (i = 0; i < 4; i++)
		post(self, 0, b, 2);
	kick(self, 0);
	n = run(self, 0, NULL, 0, tags, QN, &gen);
	ASSERT_EQ(4, n);
	EXPECT_EQ(4, *avail_event);
	for (i = 0; i < 4; i++)
		c[i] = (struct hvio_completion){ .tag = tags[i],
						 .generation = gen };
	/* used 0 -> 1 with used_event 0 (the driver wants it): interrupt */
	ASSERT_EQ(0, run(self, 0, c, 1, NULL, 0, NULL));
	EXPECT_EQ(1, qstats(self, 0).irqs);
	/* used 1 -> 2 with used_event 3: no interrupt */
	*used_event = 3;
	ASSERT_EQ(0, run(self, 0, c + 1, 1, NULL, 0, NULL));
	EXPECT_EQ(1, qstats(self, 0).irqs_suppressed);
	EXPECT_EQ(1, qstats(self, 0).irqs);
	/* used 2 -> 4 passes 3: one interrupt for both */
	ASSERT_EQ(0, run(self, 0, c + 2, 2, NULL, 0, NULL));
	EXPECT_EQ(2, qstats(self, 0).irqs);
	EXPECT_EQ(1, qstats(self, 0).irqs_suppressed);
	EXPECT_EQ(4, used_idx(self, 0));
}

TEST_F(queue, op_slots_are_read_only)
{
	/* The daemon cannot write the op slots or map past them. */
	void *p;

	NEED_SETUP();
	p = mmap(NULL, self->ops_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		 self->fd, HVIO_DEV_MMAP_RING_BASE);
	EXPECT_EQ(MAP_FAILED, p);
	p = mmap(NULL, self->ops_len + 4096, PROT_READ, MAP_SHARED, self->fd,
		 HVIO_DEV_MMAP_RING_BASE);
	EXPECT_EQ(MAP_FAILED, p);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, self->fd,
		 HVIO_DEV_MMAP_RING_BASE + NQ * HVIO_DEV_MMAP_RING_STRIDE);
	EXPECT_EQ(MAP_FAILED, p);
}

TEST_F(queue, huge_capacity_offset_never_wraps)
{
	/* With a capacity of 2^64 - 1 sectors (set by the daemon), an IN at sector 2^55, whose byte offset would wrap to 0, fails with S_IOERR in the kernel; the last sector whose offset fits still becomes an op at that offset. */
	struct buf b[] = { { HDR, 16, false }, { BUF, 512, true },
			   { STATUS, 1, true } };
	const uint64_t last = (~0ULL >> 9) - 1;
	uint64_t cap = ~0ULL;
	uint16_t tags[QN], head;

	NEED_SETUP();
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 0, &cap, sizeof(cap), 0));
	set_hdr(self, HDR, VIRTIO_BLK_T_IN, 1ULL << 55);
	head = post(self, 0, b, 3);
	expect_kernel_answer(_metadata, self, head, VIRTIO_BLK_S_IOERR, 1);

	set_hdr(self, HDR, VIRTIO_BLK_T_IN, last);
	head = post(self, 0, b, 3);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, NULL));
	ASSERT_EQ(head, tags[0]);
	EXPECT_EQ(HVIO_OP_READ, self->ops[0][head].type);
	EXPECT_EQX(last << 9, self->ops[0][head].offset);
}

TEST_F(queue, config_changes_reach_the_next_request)
{
	/* The kernel keeps capacity and the write cache mode per queue: the guest's wce write and the daemon's resize between two requests apply to the second one. */
	struct buf w[] = { { HDR, 16, false }, { BUF, 512, false },
			   { STATUS, 1, true } };
	struct buf r[] = { { HDR, 16, false }, { BUF, 512, true },
			   { STATUS, 1, true } };
	const uint64_t wce = MMIO_BASE + 0x100 +
			     offsetof(struct virtio_blk_config, wce);
	const uint8_t fua[] = { 0, HVIO_OP_F_FUA, 0 };
	uint64_t cap = 8;
	uint16_t tags[QN], head;
	int i;

	NEED_SETUP();
	/* writeback, then wce = 0 (writethrough), then wce = 1 again */
	for (i = 0; i < 3; i++) {
		if (i)
			fg_write(&self->fg, 0, ZONE_A, wce, 1, i == 2);
		set_hdr(self, HDR, VIRTIO_BLK_T_OUT, 0);
		head = post(self, 0, w, 3);
		kick(self, 0);
		ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, NULL));
		EXPECT_EQ(fua[i], self->ops[0][head].flags & HVIO_OP_F_FUA);
	}

	/* shrunk to 8 sectors: a read of sector 8 fails in the kernel */
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 0, &cap, sizeof(cap), 0));
	set_hdr(self, HDR, VIRTIO_BLK_T_IN, 8);
	*(uint8_t *)gptr(self, STATUS) = 0xee;
	post(self, 0, r, 3);
	kick(self, 0);
	ASSERT_EQ(0, run(self, 0, NULL, 0, tags, QN, NULL));
	EXPECT_EQ(VIRTIO_BLK_S_IOERR, *(uint8_t *)gptr(self, STATUS));

	/* grown back: the same read is an op again */
	cap = CAPACITY;
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 0, &cap, sizeof(cap), 0));
	head = post(self, 0, r, 3);
	kick(self, 0);
	ASSERT_EQ(1, run(self, 0, NULL, 0, tags, QN, NULL));
	ASSERT_EQ(head, tags[0]);
	EXPECT_EQ(HVIO_OP_READ, self->ops[0][head].type);
	EXPECT_EQX(8 * 512, self->ops[0][head].offset);
}

TEST_HARNESS_MAIN
