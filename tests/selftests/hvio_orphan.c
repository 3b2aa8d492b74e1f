// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_orphan: the kernel side of daemon crash recovery.  A recoverable
 * device whose fd goes away without HVIO_DEV_DESTROY stays on the bridge
 * as an orphan (registers answered, kicks recorded, the module and the
 * zone pinned); HVIO_DEV_ATTACH hands it to a new "daemon", whose first
 * HVIO_DEV_QUEUE_RUN returns the ops the old one fetched and never
 * committed, once each, before new ones; HVIO_DEV_DESTROY makes a close
 * final.  This program plays hvisor, the guest and both daemons.
 */
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "hvio_test.h"

#define QN		16
#define NQ		1
#define IRQ		45
#define CAPACITY	2048
#define DATA		(GUEST_RAM + 0x40000)
#define FEATURES	(FG_F_VERSION_1 | (1ULL << VIRTIO_BLK_F_FLUSH) | \
			 (1ULL << VIRTIO_RING_F_EVENT_IDX))

FIXTURE(orphan) {
	struct fg fg;
	struct fg_zone z;
	bool skip;
	bool zone;
	int fd;
	struct fg_vdev v;
	struct hvio_op *ops;
	size_t ops_len;
	uint16_t avail_idx;
	uint16_t next_desc;
	uint32_t gen;
};

static void *gptr(FIXTURE_DATA(orphan) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->z, gpa);
}

static int make_dev(FIXTURE_DATA(orphan) *self, uint32_t flags)
{
	struct virtio_blk_config cfg;
	struct hvio_dev_create c;

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = CAPACITY;
	cfg.seg_max = HVIO_OP_MAX_SEGS;
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, IRQ, NQ, QN,
		    FEATURES, &cfg, 60);
	c.flags = flags;
	return fg_dev_create(&self->fg, &c);
}

static int map_ops(FIXTURE_DATA(orphan) *self)
{
	self->ops = mmap(NULL, self->ops_len, PROT_READ, MAP_SHARED, self->fd,
			 HVIO_DEV_MMAP_RING_BASE);
	return self->ops == MAP_FAILED ? -errno : 0;
}

/* The daemon goes away: unmap the op slots and close the fd. */
static void drop_fd(FIXTURE_DATA(orphan) *self)
{
	if (self->ops && self->ops != MAP_FAILED)
		munmap(self->ops, self->ops_len);
	self->ops = NULL;
	if (self->fd >= 0)
		close(self->fd);
	self->fd = -1;
}

static int attach(FIXTURE_DATA(orphan) *self, uint32_t zone, uint64_t base)
{
	struct hvio_dev_attach a = { .zone_id = zone, .mmio_base = base };

	int fd = ioctl(self->fg.ctl_fd, HVIO_DEV_ATTACH, &a);

	return fd < 0 ? -errno : fd;
}

FIXTURE_SETUP(orphan)
{
	self->fd = -1;
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = MIB };
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &self->z));
	self->zone = true;
	self->fd = make_dev(self, HVIO_DEV_F_RECOVERABLE);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	self->ops_len = (QN * sizeof(struct hvio_op) + 4095) & ~4095UL;
	ASSERT_EQ(0, map_ops(self));
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	memset(gptr(self, GUEST_RAM), 0, 0x40000);
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, QN, GUEST_RAM))
		TH_LOG("%s", self->v.err);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(orphan)
{
	struct hvio_dev_attach a = { .zone_id = ZONE_A,
				     .mmio_base = MMIO_BASE };
	int fd;

	if (self->fd >= 0)
		ioctl(self->fd, HVIO_DEV_DESTROY);
	drop_fd(self);
	/* An orphan left by a failed test: take it and destroy it. */
	fd = self->fg.ctl_fd >= 0 ?
	     ioctl(self->fg.ctl_fd, HVIO_DEV_ATTACH, &a) : -1;
	if (fd >= 0) {
		ioctl(fd, HVIO_DEV_DESTROY);
		close(fd);
	}
	if (self->zone)
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	hvio_fixture_close(_metadata, &self->fg);
}

/* A READ of one sector into its own buffer; returns the head. */
static uint16_t post_read(FIXTURE_DATA(orphan) *self, uint64_t sector)
{
	struct fg_vq *vq = &self->v.vq[0];
	struct vring_desc *desc = gptr(self, vq->desc);
	struct vring_avail *avail = gptr(self, vq->driver);
	uint16_t head = self->next_desc, d = head;
	uint64_t at = DATA + head * 1024ULL;
	struct virtio_blk_outhdr *h = gptr(self, at);

	h->type = VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = sector;
	desc[d] = (struct vring_desc){ at, 16, VRING_DESC_F_NEXT, (d + 1) % QN };
	d = (d + 1) % QN;
	desc[d] = (struct vring_desc){ at + 512, 512,
				       VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
				       (d + 1) % QN };
	d = (d + 1) % QN;
	desc[d] = (struct vring_desc){ at + 64, 1, VRING_DESC_F_WRITE, 0 };
	*(uint8_t *)gptr(self, at + 64) = 0xee;
	self->next_desc = (d + 1) % QN;
	avail->ring[self->avail_idx % QN] = head;
	__atomic_store_n(&avail->idx, ++self->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static void kick(FIXTURE_DATA(orphan) *self)
{
	fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	fg_wait_consumed(&self->fg, FG_TIMEOUT_MS);
}

static int run(FIXTURE_DATA(orphan) *self, const struct hvio_completion *c,
	       int nc, uint16_t *tags, int max)
{
	struct hvio_queue_run r = {
		.queue = 0, .nr_commit = nc, .max_fetch = max,
		.commits_addr = (uintptr_t)c, .tags_addr = (uintptr_t)tags,
	};

	if (ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r))
		return -errno;
	self->gen = r.generation;
	return r.nr_fetched;
}

static struct hvio_stats gstats(FIXTURE_DATA(orphan) *self)
{
	struct hvio_stats st;

	memset(&st, 0, sizeof(st));
	fg_stats(&self->fg, &st);
	return st;
}

static uint16_t used_idx(FIXTURE_DATA(orphan) *self)
{
	struct vring_used *used = gptr(self, self->v.vq[0].device);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

TEST_F(orphan, close_orphans_attach_requeues)
{
	/* Three reads fetched, one committed, then the daemon dies.  The
	 * device stays (the guest still reads its registers), a fourth read
	 * is posted meanwhile; the new daemon gets the two uncommitted ops
	 * first and then the new one, and each head is used exactly once. */
	struct hvio_completion c[QN];
	uint16_t tags[QN], heads[4], seen[QN];
	struct hvio_queue_stats qs = { .queue = 0 };
	int i, n, j;

	NEED_SETUP();
	for (i = 0; i < 3; i++)
		heads[i] = post_read(self, i);
	kick(self);
	ASSERT_EQ(3, run(self, NULL, 0, tags, QN));
	c[0] = (struct hvio_completion){ .tag = tags[0], .generation = self->gen };
	ASSERT_EQ(0, run(self, c, 1, NULL, 0));
	EXPECT_EQ(1, used_idx(self));

	drop_fd(self);
	EXPECT_EQ(1, gstats(self).orphans);
	EXPECT_EQ(1, gstats(self).devs);
	EXPECT_EQX(FG_MMIO_MAGIC, fg_vdev_rd(&self->v, VIRTIO_MMIO_MAGIC_VALUE));
	EXPECT_EQ(0xf, fg_vdev_rd(&self->v, VIRTIO_MMIO_STATUS));
	EXPECT_ERR(EBUSY, fg_zone_del(&self->fg, ZONE_A));
	EXPECT_TRUE(fg_rmmod_refused(fg_rmmod()));
	heads[3] = post_read(self, 3);
	kick(self);

	self->fd = attach(self, ZONE_A, MMIO_BASE);
	ASSERT_LE(0, self->fd) TH_LOG("ATTACH: %s", errname(self->fd));
	EXPECT_EQ(0, gstats(self).orphans);
	ASSERT_EQ(0, map_ops(self));
	n = run(self, NULL, 0, seen, QN);
	ASSERT_EQ(3, n);
	EXPECT_EQ(tags[1], seen[0]);
	EXPECT_EQ(tags[2], seen[1]);
	EXPECT_EQ(heads[3], seen[2]);
	EXPECT_EQ(HVIO_OP_READ, self->ops[seen[0]].type);
	EXPECT_EQX(1 * 512, self->ops[tags[1]].offset);
	for (j = 0; j < n; j++)
		c[j] = (struct hvio_completion){ .tag = seen[j],
						 .generation = self->gen };
	ASSERT_EQ(0, run(self, c, n, tags, QN));
	EXPECT_EQ(0, run(self, NULL, 0, tags, QN));
	ASSERT_EQ(4, used_idx(self));
	for (i = 0; i < 4; i++) {
		struct vring_used *u = gptr(self, self->v.vq[0].device);
		int hits = 0;

		for (j = 0; j < 4; j++)
			hits += u->ring[j].id == heads[i];
		EXPECT_EQ(1, hits) TH_LOG("head %u used %d times", heads[i],
					  hits);
		EXPECT_EQ(VIRTIO_BLK_S_OK, *(uint8_t *)gptr(self,
			  DATA + heads[i] * 1024ULL + 64));
	}
	ioctl(self->fd, HVIO_DEV_GET_QUEUE_STATS, &qs);
	EXPECT_EQ(2, qs.requeued);
	EXPECT_EQ(4, qs.completed);
}

TEST_F(orphan, attach_errors)
{
	/* Attach needs an orphan at exactly that place. */
	NEED_SETUP();
	EXPECT_ERR(EBUSY, attach(self, ZONE_A, MMIO_BASE));
	EXPECT_ERR(ENOENT, attach(self, ZONE_A, MMIO_BASE + 0x200));
	EXPECT_ERR(ENOENT, attach(self, ZONE_B, MMIO_BASE));
	EXPECT_ERR(EINVAL, attach(self, 0, MMIO_BASE));
	EXPECT_ERR(ENOENT, attach(self, 0, 0));
	EXPECT_ERR(ENOENT, attach(self, ZONE_A, HVIO_ATTACH_ANY));
	drop_fd(self);
	EXPECT_ERR(ENOENT, attach(self, ZONE_B, HVIO_ATTACH_ANY));
	self->fd = attach(self, ZONE_A, HVIO_ATTACH_ANY);	/* the zone's */
	ASSERT_LE(0, self->fd);
	drop_fd(self);
	self->fd = attach(self, 0, 0);		/* any orphan */
	EXPECT_LE(0, self->fd);
}

TEST_F(orphan, destroy_makes_close_final)
{
	/* HVIO_DEV_DESTROY: the close removes the device; the zone can go. */
	NEED_SETUP();
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_DESTROY));
	drop_fd(self);
	EXPECT_EQ(0, gstats(self).devs);
	EXPECT_EQ(0, gstats(self).orphans);
	EXPECT_ERR(ENOENT, attach(self, ZONE_A, MMIO_BASE));
	EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	self->zone = false;
}

TEST_F(orphan, not_recoverable_is_destroyed)
{
	/* Without HVIO_DEV_F_RECOVERABLE a close destroys, as always. */
	NEED_SETUP();
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_DESTROY));
	drop_fd(self);
	self->fd = make_dev(self, 0);
	ASSERT_LE(0, self->fd);
	drop_fd(self);
	EXPECT_EQ(0, gstats(self).devs);
	EXPECT_ERR(ENOENT, attach(self, ZONE_A, MMIO_BASE));
}

TEST_F(orphan, reset_while_orphaned_drops_old_ops)
{
	/* The guest resets the device while no daemon serves it: the old
	 * ops are not handed out again; the new generation starts clean. */
	uint16_t tags[QN];

	NEED_SETUP();
	post_read(self, 5);
	kick(self);
	ASSERT_EQ(1, run(self, NULL, 0, tags, QN));
	drop_fd(self);
	self->avail_idx = 0;
	self->next_desc = 0;
	memset(gptr(self, GUEST_RAM), 0, 0x40000);
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, QN, GUEST_RAM))
		TH_LOG("%s", self->v.err);
	self->fd = attach(self, ZONE_A, MMIO_BASE);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, map_ops(self));
	EXPECT_EQ(0, run(self, NULL, 0, tags, QN));
	post_read(self, 6);
	kick(self);
	ASSERT_EQ(1, run(self, NULL, 0, tags, QN));
	EXPECT_EQX(6 * 512, self->ops[tags[0]].offset);
}

TEST_F(orphan, zone_reuse)
{
	/* A restarted daemon re-registers its zone: identical regions with
	 * HVIO_ZONE_F_REUSE return 1; other regions, or no flag, EEXIST. */
	struct hvio_zone_add za;

	NEED_SETUP();
	memset(&za, 0, sizeof(za));
	za.zone_id = ZONE_A;
	za.nr_regions = 1;
	za.regions[0].zone0_ipa = fg_zone_phys(&self->fg, &self->z);
	za.regions[0].zonex_ipa = GUEST_RAM;
	za.regions[0].size = MIB;
	EXPECT_ERR(EEXIST, fg_zone_add_raw(&self->fg, &za));
	za.flags = HVIO_ZONE_F_REUSE;
	EXPECT_EQ(1, ioctl(self->fg.ctl_fd, HVIO_ZONE_ADD, &za));
	za.regions[0].size = 2 * MIB;
	EXPECT_ERR(EEXIST, fg_zone_add_raw(&self->fg, &za));
}

TEST_HARNESS_MAIN
