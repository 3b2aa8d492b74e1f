// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_mmio: the virtio-mmio version 2 register file a zone sees
 * (Documentation/abi.md section 4), driven through the bridge by the fake
 * guest exactly as a trapped vCPU would: probe sequence, feature
 * negotiation, reset, configuration space, interrupts, queue setup and
 * QueueNotify, and every refusal with its counter.
 */
#include "hvio_test.h"

#include <poll.h>

#define DEV_ID		2		/* virtio-blk */
#define DEV_IRQ		42
#define NQ		2
#define QMAX		256
#define CFG_LEN		24
#define RING_GPA	(GUEST_RAM + 0x10000)
/* VERSION_1, SIZE_MAX, SEG_MAX, BLK_SIZE, FLUSH, INDIRECT_DESC, EVENT_IDX */
#define FEATURES	(FG_F_VERSION_1 | (1ULL << 1) | (1ULL << 2) | (1ULL << 6) | \
			 (1ULL << 9) | (1ULL << 28) | (1ULL << 29))
#define ST_ACK		VIRTIO_CONFIG_S_ACKNOWLEDGE
#define ST_DRV		VIRTIO_CONFIG_S_DRIVER
#define ST_FOK		VIRTIO_CONFIG_S_FEATURES_OK
#define ST_DOK		VIRTIO_CONFIG_S_DRIVER_OK
#define ST_NEEDS_RESET	VIRTIO_CONFIG_S_NEEDS_RESET

FIXTURE(mmio) {
	struct fg fg;
	bool skip;
	bool zone;
	int fd;
	struct fg_vdev v;
	uint8_t cfg[CFG_LEN];
};

FIXTURE_SETUP(mmio)
{
	struct fg_zone z = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = MIB };
	struct hvio_dev_create c;
	int i;

	self->fd = -1;
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &z));
	self->zone = true;
	for (i = 0; i < CFG_LEN; i++)
		self->cfg[i] = (uint8_t)(0x40 + 5 * i);
	fg_dev_init(&c, ZONE_A, DEV_ID, MMIO_BASE, DEV_IRQ, NQ, QMAX, FEATURES,
		    self->cfg, CFG_LEN);
	self->fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(mmio)
{
	if (self->fd >= 0)
		close(self->fd);
	/* closing the fd destroyed the device: the zone can go */
	if (self->zone) {
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	}
	hvio_fixture_close(_metadata, &self->fg);
}

#define RD(off)		fg_vdev_rd(&self->v, (off))
#define WR(off, val)	fg_vdev_wr(&self->v, (off), (val))
#define RDW(off, w)	fg_read(&self->fg, 0, ZONE_A, MMIO_BASE + (off), (w))
#define WRW(off, w, v)	fg_write(&self->fg, 0, ZONE_A, MMIO_BASE + (off), (w), (v))

static struct hvio_dev_stats dstats(FIXTURE_DATA(mmio) *self)
{
	struct hvio_dev_stats st;

	memset(&st, 0xff, sizeof(st));
	fg_dev_stats(self->fd, &st);
	return st;
}

static struct hvio_dev_info dinfo(FIXTURE_DATA(mmio) *self)
{
	struct hvio_dev_info info;

	memset(&info, 0xff, sizeof(info));
	fg_dev_info(self->fd, &info);
	return info;
}

/* Reset, ACKNOWLEDGE, DRIVER, write driver features, write FEATURES_OK. */
static void negotiate(FIXTURE_DATA(mmio) *self, uint64_t feat)
{
	WR(VIRTIO_MMIO_STATUS, 0);
	WR(VIRTIO_MMIO_STATUS, ST_ACK);
	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV);
	WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	WR(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(feat >> 32));
	WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	WR(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)feat);
	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | ST_FOK);
}

static uint64_t le_bytes(const uint8_t *p, unsigned int n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

/* Wait for the interrupt {ZONE_A, DEV_IRQ} in res_list. */
static int wait_irq(FIXTURE_DATA(mmio) *self, unsigned int timeout_ms)
{
	struct hvio_device_res res[32];
	int n, i, hits = 0;

	n = fg_collect_res(&self->fg, res, 32, 1, timeout_ms);
	for (i = 0; i < n && i < 32; i++)
		if (res[i].target_zone == ZONE_A && res[i].irq_id == DEV_IRQ)
			hits++;
	return n == hits ? hits : -1;
}

TEST_F(mmio, probe_sequence)
{
	/* Linux's virtio-mmio probe, step by step, gets the documented answer to every read and ends DRIVER_OK with both queues live. */
	struct hvio_dev_stats st;
	struct hvio_dev_info info;
	struct fg_vq vq[NQ];
	uint64_t gpa = RING_GPA;
	uint32_t q;

	NEED_SETUP();
	EXPECT_EQX(FG_MMIO_MAGIC, RD(VIRTIO_MMIO_MAGIC_VALUE));
	EXPECT_EQ(2, RD(VIRTIO_MMIO_VERSION));
	EXPECT_EQ(DEV_ID, RD(VIRTIO_MMIO_DEVICE_ID));
	EXPECT_EQX(FG_VENDOR_HVIS, RD(VIRTIO_MMIO_VENDOR_ID));
	EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));

	WR(VIRTIO_MMIO_STATUS, 0);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
	WR(VIRTIO_MMIO_STATUS, ST_ACK);
	EXPECT_EQ(ST_ACK, RD(VIRTIO_MMIO_STATUS));
	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV);
	EXPECT_EQ(ST_ACK | ST_DRV, RD(VIRTIO_MMIO_STATUS));

	WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	EXPECT_EQX(FEATURES >> 32, RD(VIRTIO_MMIO_DEVICE_FEATURES));
	WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	EXPECT_EQX((uint32_t)FEATURES, RD(VIRTIO_MMIO_DEVICE_FEATURES));
	WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	WR(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(FEATURES >> 32));
	WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	WR(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)FEATURES);
	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | ST_FOK);
	ASSERT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));

	for (q = 0; q < NQ; q++) {
		WR(VIRTIO_MMIO_QUEUE_SEL, q);
		EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_READY));
		EXPECT_EQ(QMAX, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));
		gpa = fg_vring_layout(gpa, QMAX, &vq[q]);
		WR(VIRTIO_MMIO_QUEUE_NUM, QMAX);
		WR(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)vq[q].desc);
		WR(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(vq[q].desc >> 32));
		WR(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)vq[q].driver);
		WR(VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(vq[q].driver >> 32));
		WR(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)vq[q].device);
		WR(VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(vq[q].device >> 32));
		WR(VIRTIO_MMIO_QUEUE_READY, 1);
		EXPECT_EQ(1, RD(VIRTIO_MMIO_QUEUE_READY)) TH_LOG("queue %u", q);
	}
	/* a queue that does not exist */
	WR(VIRTIO_MMIO_QUEUE_SEL, NQ);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));
	EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_READY));

	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | ST_FOK | ST_DOK);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK | ST_DOK, RD(VIRTIO_MMIO_STATUS));

	info = dinfo(self);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK | ST_DOK, info.status);
	EXPECT_EQX(FEATURES, info.device_features);
	EXPECT_EQX(FEATURES, info.driver_features);
	for (q = 0; q < NQ; q++) {
		EXPECT_EQ(QMAX, info.queues[q].num);
		EXPECT_EQ(1, info.queues[q].ready);
		EXPECT_EQX(vq[q].desc, info.queues[q].desc);
		EXPECT_EQX(vq[q].driver, info.queues[q].driver);
		EXPECT_EQX(vq[q].device, info.queues[q].device);
	}
	st = dstats(self);
	EXPECT_EQ(0, st.bad_width);
	EXPECT_EQ(0, st.bad_offset);
	EXPECT_EQ(0, st.bad_state);
	EXPECT_EQ(0, st.features_refused);
	EXPECT_EQ(0, st.queue_refused);
	EXPECT_LE(20, st.reg_reads);
	EXPECT_LE(25, st.reg_writes);
}

TEST_F(mmio, probe_helper_and_info)
{
	/* The fake guest's probe helper negotiates a feature subset with smaller queues, and HVIO_DEV_GET_INFO reflects exactly that setup. */
	uint64_t want = FG_F_VERSION_1 | (1ULL << 29) | (1ULL << 9) | (1ULL << 3);
	struct hvio_dev_info info;
	uint32_t q;

	NEED_SETUP();
	ASSERT_EQ(0, fg_vdev_probe(&self->v, want, HVIO_MAX_QUEUES, 64, RING_GPA))
		TH_LOG("%s", self->v.err);
	EXPECT_EQ(NQ, self->v.nq);
	EXPECT_EQ(DEV_ID, self->v.device_id);
	EXPECT_EQX(FEATURES, self->v.device_features);
	EXPECT_EQX(FEATURES & want, self->v.driver_features);

	info = dinfo(self);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK | ST_DOK, info.status);
	EXPECT_EQX(FEATURES & want, info.driver_features);
	for (q = 0; q < HVIO_MAX_QUEUES; q++) {
		if (q < NQ) {
			EXPECT_EQ(64, info.queues[q].num);
			EXPECT_EQ(1, info.queues[q].ready);
			EXPECT_EQX(self->v.vq[q].desc, info.queues[q].desc);
			EXPECT_EQX(self->v.vq[q].driver, info.queues[q].driver);
			EXPECT_EQX(self->v.vq[q].device, info.queues[q].device);
		} else {
			EXPECT_EQ(0, info.queues[q].num | info.queues[q].ready);
			EXPECT_EQ(0, info.queues[q].desc | info.queues[q].driver |
				     info.queues[q].device);
		}
	}
}

TEST_F(mmio, status_events_and_poll)
{
	/* Status changes are reported as HVIO_EV_STATUS through poll() and HVIO_DEV_GET_EVENTS, which clears them; a reset reports HVIO_EV_RESET with a new generation. */
	struct hvio_dev_events ev;
	uint32_t gen;

	NEED_SETUP();
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));	/* start clean */
	EXPECT_EQ(0, fg_poll_in(self->fd, 0));

	WR(VIRTIO_MMIO_STATUS, ST_ACK);
	EXPECT_EQ(1, fg_poll_in(self->fd, 2000));
	memset(&ev, 0xff, sizeof(ev));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_TRUE(ev.events & HVIO_EV_STATUS);
	EXPECT_FALSE(ev.events & HVIO_EV_KICK);
	EXPECT_EQ(ST_ACK, ev.status);
	EXPECT_EQ(0, ev.reserved[0] | ev.reserved[1]);
	gen = ev.generation;
	EXPECT_EQ(0, fg_poll_in(self->fd, 0));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_EQ(0, ev.events);

	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV);
	EXPECT_EQ(1, fg_poll_in(self->fd, 2000));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_TRUE(ev.events & HVIO_EV_STATUS);
	EXPECT_EQ(ST_ACK | ST_DRV, ev.status);
	EXPECT_EQ(gen, ev.generation);

	WR(VIRTIO_MMIO_STATUS, 0);
	EXPECT_EQ(1, fg_poll_in(self->fd, 2000));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_TRUE(ev.events & HVIO_EV_RESET);
	EXPECT_EQ(0, ev.status);
	EXPECT_EQ(gen + 1, ev.generation);
	EXPECT_EQ(ev.generation, dinfo(self).generation);
	EXPECT_EQ(0, fg_poll_in(self->fd, 0));
}

TEST_F(mmio, features_not_offered_refused)
{
	/* Driver features that the device did not offer (low or high word) keep FEATURES_OK clear and count features_refused; a correct retry is accepted. */
	struct hvio_dev_stats a, b;

	NEED_SETUP();
	a = dstats(self);
	negotiate(self, FEATURES | (1ULL << 3));
	EXPECT_EQ(ST_ACK | ST_DRV, RD(VIRTIO_MMIO_STATUS));
	negotiate(self, FEATURES | (1ULL << VIRTIO_F_ACCESS_PLATFORM));
	EXPECT_EQ(ST_ACK | ST_DRV, RD(VIRTIO_MMIO_STATUS));
	negotiate(self, FEATURES | (1ULL << 63));
	EXPECT_EQ(ST_ACK | ST_DRV, RD(VIRTIO_MMIO_STATUS));
	b = dstats(self);
	EXPECT_EQ(a.features_refused + 3, b.features_refused);

	/* without a reset in between: rewrite the features, set FEATURES_OK again */
	WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	WR(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)FEATURES);
	WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	WR(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(FEATURES >> 32));
	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | ST_FOK);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	EXPECT_EQX(FEATURES, dinfo(self).driver_features);
}

TEST_F(mmio, features_need_version_1)
{
	/* A driver that does not accept VIRTIO_F_VERSION_1 (a legacy driver) is refused FEATURES_OK and counted in features_refused. */
	struct hvio_dev_stats a, b;

	NEED_SETUP();
	a = dstats(self);
	negotiate(self, FEATURES & ~FG_F_VERSION_1);
	EXPECT_EQ(ST_ACK | ST_DRV, RD(VIRTIO_MMIO_STATUS));
	negotiate(self, 0);
	EXPECT_EQ(ST_ACK | ST_DRV, RD(VIRTIO_MMIO_STATUS));
	b = dstats(self);
	EXPECT_EQ(a.features_refused + 2, b.features_refused);
	/* VERSION_1 alone is enough */
	negotiate(self, FG_F_VERSION_1);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	EXPECT_EQX(FG_F_VERSION_1, dinfo(self).driver_features);
}

TEST_F(mmio, driver_features_locked_after_features_ok)
{
	/* DriverFeatures writes after FEATURES_OK are refused (bad_state) and the negotiated features do not change. */
	struct hvio_dev_stats a, b;

	NEED_SETUP();
	negotiate(self, FEATURES);
	ASSERT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	a = dstats(self);
	WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	WR(VIRTIO_MMIO_DRIVER_FEATURES, 0);
	WR(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	WR(VIRTIO_MMIO_DRIVER_FEATURES, 0);
	b = dstats(self);
	EXPECT_EQ(a.bad_state + 2, b.bad_state);
	EXPECT_EQX(FEATURES, dinfo(self).driver_features);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
}

TEST_F(mmio, driver_ok_needs_features_ok)
{
	/* DRIVER_OK without FEATURES_OK is refused (bad_state) and Status keeps its old value. */
	struct hvio_dev_stats a, b;

	NEED_SETUP();
	WR(VIRTIO_MMIO_STATUS, 0);
	WR(VIRTIO_MMIO_STATUS, ST_ACK);
	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV);
	a = dstats(self);
	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV | ST_DOK);
	EXPECT_EQ(ST_ACK | ST_DRV, RD(VIRTIO_MMIO_STATUS));
	b = dstats(self);
	EXPECT_EQ(a.bad_state + 1, b.bad_state);
	EXPECT_EQ(ST_ACK | ST_DRV, dinfo(self).status);
}

TEST_F(mmio, status_bits_cannot_be_cleared)
{
	/* A non-zero Status write that would clear a set bit is refused (bad_state); only writing 0 (reset) clears bits. */
	struct hvio_dev_stats a, b;

	NEED_SETUP();
	negotiate(self, FEATURES);
	ASSERT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	a = dstats(self);
	WR(VIRTIO_MMIO_STATUS, ST_ACK | ST_DRV);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	WR(VIRTIO_MMIO_STATUS, ST_ACK);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	WR(VIRTIO_MMIO_STATUS, ST_DRV | ST_FOK | ST_DOK);	/* drops ACK */
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	b = dstats(self);
	EXPECT_EQ(a.bad_state + 3, b.bad_state);
	WR(VIRTIO_MMIO_STATUS, 0);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
}

TEST_F(mmio, reset_clears_state)
{
	/* Writing Status 0 returns status, features, selectors, interrupt status and every queue to 0, advances the generation, counts resets, and the device probes again. */
	struct hvio_dev_info before, after;
	struct hvio_dev_stats a, b;
	struct hvio_dev_events ev;
	uint8_t one = 0x5a;
	uint32_t q;

	NEED_SETUP();
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, QMAX, RING_GPA))
		TH_LOG("%s", self->v.err);
	/* a pending config interrupt, non-default selectors */
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 0, &one, 1, HVIO_CONFIG_F_NOTIFY));
	EXPECT_EQ(1, wait_irq(self, 2000));
	EXPECT_EQ(VIRTIO_MMIO_INT_CONFIG, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	WR(VIRTIO_MMIO_QUEUE_SEL, 5);
	before = dinfo(self);
	a = dstats(self);
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));

	WR(VIRTIO_MMIO_STATUS, 0);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
	EXPECT_EQ(0, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	/* DeviceFeaturesSel back to 0: word 0 */
	EXPECT_EQX((uint32_t)FEATURES, RD(VIRTIO_MMIO_DEVICE_FEATURES));
	/* QueueSel back to 0: queue 0 exists */
	EXPECT_EQ(QMAX, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));
	for (q = 0; q < NQ; q++) {
		WR(VIRTIO_MMIO_QUEUE_SEL, q);
		EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_READY)) TH_LOG("queue %u", q);
	}

	after = dinfo(self);
	EXPECT_EQ(0, after.status);
	EXPECT_EQX(0, after.driver_features);
	EXPECT_EQ(0, after.interrupt_status);
	EXPECT_EQX(FEATURES, after.device_features);
	EXPECT_EQ(before.generation + 1, after.generation);
	for (q = 0; q < HVIO_MAX_QUEUES; q++) {
		EXPECT_EQ(0, after.queues[q].num) TH_LOG("queue %u", q);
		EXPECT_EQ(0, after.queues[q].ready) TH_LOG("queue %u", q);
		EXPECT_EQ(0, after.queues[q].desc | after.queues[q].driver |
			     after.queues[q].device) TH_LOG("queue %u", q);
	}
	b = dstats(self);
	EXPECT_EQ(a.resets + 1, b.resets);
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_TRUE(ev.events & HVIO_EV_RESET);
	EXPECT_EQ(after.generation, ev.generation);

	/* and the device is as good as new */
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, 32, RING_GPA + 0x40000))
		TH_LOG("%s", self->v.err);
	EXPECT_EQ(32, dinfo(self).queues[1].num);
}

TEST_F(mmio, device_features_words)
{
	/* DeviceFeatures returns word DeviceFeaturesSel of the offered features; words >= 2 read 0. */
	NEED_SETUP();
	WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	EXPECT_EQX((uint32_t)FEATURES, RD(VIRTIO_MMIO_DEVICE_FEATURES));
	WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	EXPECT_EQX(FEATURES >> 32, RD(VIRTIO_MMIO_DEVICE_FEATURES));
	WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	EXPECT_EQX(0, RD(VIRTIO_MMIO_DEVICE_FEATURES));
	WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0xffffffff);
	EXPECT_EQX(0, RD(VIRTIO_MMIO_DEVICE_FEATURES));
	WR(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	EXPECT_EQX((uint32_t)FEATURES, RD(VIRTIO_MMIO_DEVICE_FEATURES));
	EXPECT_EQ(0, dstats(self).bad_offset);
}

TEST_F(mmio, config_read_widths)
{
	/* Every naturally aligned 1, 2, 4 and 8-byte read of config space returns the little-endian bytes given at DEV_CREATE. */
	static const unsigned int widths[] = { 1, 2, 4, 8 };
	unsigned int w, off;
	uint64_t got, exp;

	NEED_SETUP();
	for (w = 0; w < ARRAY_SIZE(widths); w++) {
		for (off = 0; off + widths[w] <= CFG_LEN; off += widths[w]) {
			exp = le_bytes(self->cfg + off, widths[w]);
			got = RDW(HVIO_MMIO_CONFIG_OFF + off, widths[w]);
			EXPECT_EQ(exp, got)
				TH_LOG("config offset %u width %u: %#llx, expected %#llx",
				       off, widths[w], (unsigned long long)got,
				       (unsigned long long)exp);
		}
	}
	EXPECT_EQ(0, dstats(self).bad_offset);
	EXPECT_EQ(0, dstats(self).bad_width);
}

TEST_F(mmio, config_bad_access)
{
	/* Misaligned, odd-width or out-of-range config reads return 0 and count bad_offset; guest config writes are ignored and counted in config_writes. */
	static const struct { unsigned int off, w; } bad[] = {
		{ 1, 2 }, { 2, 4 }, { 4, 8 }, { 6, 4 }, { 0, 3 }, { 0, 16 },
		{ CFG_LEN, 1 }, { CFG_LEN, 4 }, { CFG_LEN, 8 },
		{ 0xfc, 4 }, { 0xff, 1 },
	};
	struct hvio_dev_stats a, b;
	unsigned int i;
	uint64_t got;

	NEED_SETUP();
	a = dstats(self);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		got = RDW(HVIO_MMIO_CONFIG_OFF + bad[i].off, bad[i].w);
		EXPECT_EQ(0, got) TH_LOG("config offset %#x width %u read %#llx",
					 bad[i].off, bad[i].w,
					 (unsigned long long)got);
	}
	b = dstats(self);
	EXPECT_EQ(a.bad_offset + ARRAY_SIZE(bad), b.bad_offset);

	WRW(HVIO_MMIO_CONFIG_OFF + 0, 1, 0xff);
	WRW(HVIO_MMIO_CONFIG_OFF + 4, 4, 0x12345678);
	WRW(HVIO_MMIO_CONFIG_OFF + 8, 8, ~0ULL);
	a = dstats(self);
	EXPECT_EQ(b.config_writes + 3, a.config_writes);
	EXPECT_EQX(le_bytes(self->cfg, 8), RDW(HVIO_MMIO_CONFIG_OFF, 8));
	EXPECT_EQX(le_bytes(self->cfg + 8, 8), RDW(HVIO_MMIO_CONFIG_OFF + 8, 8));
}

TEST_F(mmio, set_config_generation)
{
	/* HVIO_DEV_SET_CONFIG replaces config bytes and advances ConfigGeneration; without HVIO_CONFIG_F_NOTIFY no interrupt is raised. */
	uint8_t nb[6] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02 };
	uint32_t gen0, gen1;
	uint8_t want[CFG_LEN];

	NEED_SETUP();
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, QMAX, RING_GPA))
		TH_LOG("%s", self->v.err);
	fg_flush_res(&self->fg);
	gen0 = RD(VIRTIO_MMIO_CONFIG_GENERATION);
	EXPECT_EQ(dinfo(self).config_generation, gen0);
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 10, nb, sizeof(nb), 0));
	gen1 = RD(VIRTIO_MMIO_CONFIG_GENERATION);
	EXPECT_NE(gen0, gen1);
	EXPECT_EQ(gen1, dinfo(self).config_generation);

	memcpy(want, self->cfg, CFG_LEN);
	memcpy(want + 10, nb, sizeof(nb));
	EXPECT_EQX(le_bytes(want + 8, 8), RDW(HVIO_MMIO_CONFIG_OFF + 8, 8));
	EXPECT_EQX(le_bytes(want + 16, 8), RDW(HVIO_MMIO_CONFIG_OFF + 16, 8));
	EXPECT_EQX(le_bytes(want + 10, 2), RDW(HVIO_MMIO_CONFIG_OFF + 10, 2));
	EXPECT_EQX(le_bytes(want + 12, 4), RDW(HVIO_MMIO_CONFIG_OFF + 12, 4));
	EXPECT_EQX(le_bytes(want, 8), RDW(HVIO_MMIO_CONFIG_OFF, 8));

	EXPECT_EQ(0, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	EXPECT_EQ(0, fg_collect_res(&self->fg, NULL, 0, 1, 200));
}

TEST_F(mmio, set_config_notify_interrupt)
{
	/* SET_CONFIG with HVIO_CONFIG_F_NOTIFY queues {zone, irq} in res_list, signals FINISH_REQ, sets InterruptStatus bit 1, and InterruptACK clears it. */
	struct hvio_sim_info i0, i1;
	struct hvio_dev_stats a, b;
	uint8_t nb = 0x77;

	NEED_SETUP();
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, QMAX, RING_GPA))
		TH_LOG("%s", self->v.err);
	fg_flush_res(&self->fg);
	ASSERT_EQ(0, fg_sim_info(&self->fg, &i0));
	a = dstats(self);
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 0, &nb, 1, HVIO_CONFIG_F_NOTIFY));
	EXPECT_LT(0, fg_wait_finish(&self->fg, 2000)) TH_LOG("no FINISH_REQ");
	EXPECT_EQ(1, wait_irq(self, 2000));
	ASSERT_EQ(0, fg_sim_info(&self->fg, &i1));
	EXPECT_LT(i0.finish_calls, i1.finish_calls);
	b = dstats(self);
	EXPECT_EQ(a.irqs + 1, b.irqs);

	EXPECT_EQ(VIRTIO_MMIO_INT_CONFIG, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	EXPECT_EQ(VIRTIO_MMIO_INT_CONFIG, dinfo(self).interrupt_status);
	EXPECT_EQ(0x77, RDW(HVIO_MMIO_CONFIG_OFF, 1));
	WR(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	EXPECT_EQ(0, dinfo(self).interrupt_status);
	/* nothing more was injected */
	EXPECT_EQ(0, fg_collect_res(&self->fg, NULL, 0, 1, 100));
}

TEST_F(mmio, interrupt_ack_clears_given_bits)
{
	/* InterruptACK clears only the bits written: acking the vring bit leaves a pending config interrupt set. */
	uint8_t nb = 1;

	NEED_SETUP();
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, QMAX, RING_GPA))
		TH_LOG("%s", self->v.err);
	ASSERT_EQ(0, fg_dev_set_config(self->fd, 0, &nb, 1, HVIO_CONFIG_F_NOTIFY));
	EXPECT_EQ(1, wait_irq(self, 2000));
	EXPECT_EQ(VIRTIO_MMIO_INT_CONFIG, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	WR(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	EXPECT_EQ(VIRTIO_MMIO_INT_CONFIG, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	WR(VIRTIO_MMIO_INTERRUPT_ACK, 0);
	EXPECT_EQ(VIRTIO_MMIO_INT_CONFIG, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	WR(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG | VIRTIO_MMIO_INT_VRING);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
}

TEST_F(mmio, register_bad_width)
{
	/* Registers below 0x100 answer only aligned 32-bit accesses: 1, 2 and 8-byte or misaligned accesses read 0, writes are ignored, each counts bad_width. */
	struct hvio_dev_stats a, b;

	NEED_SETUP();
	a = dstats(self);
	EXPECT_EQX(0, RDW(VIRTIO_MMIO_MAGIC_VALUE, 1));
	EXPECT_EQX(0, RDW(VIRTIO_MMIO_MAGIC_VALUE, 2));
	EXPECT_EQX(0, RDW(VIRTIO_MMIO_MAGIC_VALUE, 8));
	EXPECT_EQX(0, RDW(VIRTIO_MMIO_MAGIC_VALUE + 2, 4));
	EXPECT_EQX(0, RDW(VIRTIO_MMIO_VERSION + 1, 1));
	WRW(VIRTIO_MMIO_STATUS, 1, ST_ACK);
	WRW(VIRTIO_MMIO_STATUS, 8, ST_ACK);
	WRW(VIRTIO_MMIO_QUEUE_SEL + 2, 4, 1);
	b = dstats(self);
	EXPECT_EQ(a.bad_width + 8, b.bad_width);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
	EXPECT_EQX(FG_MMIO_MAGIC, RD(VIRTIO_MMIO_MAGIC_VALUE));
	EXPECT_EQ(QMAX, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));	/* QueueSel still 0 */
}

TEST_F(mmio, unknown_offsets)
{
	/* Reads and writes of offsets that are no register (including legacy-only ones) read 0 and count bad_offset. */
	static const uint32_t offs[] = { 0x018, 0x01c, 0x028, 0x02c, 0x03c,
					 0x040, 0x048, 0x04c, 0x054, 0x068,
					 0x074, 0x088, 0x0a8, 0x0c0, 0x0f8 };
	struct hvio_dev_stats a, b;
	unsigned int i;

	NEED_SETUP();
	a = dstats(self);
	for (i = 0; i < ARRAY_SIZE(offs); i++) {
		uint32_t v = RD(offs[i]);

		EXPECT_EQ(0, v) TH_LOG("offset %#x reads %#x", offs[i], v);
	}
	for (i = 0; i < ARRAY_SIZE(offs); i++)
		WR(offs[i], 0xffffffff);
	b = dstats(self);
	EXPECT_EQ(a.bad_offset + 2 * ARRAY_SIZE(offs), b.bad_offset);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
}

TEST_F(mmio, wrong_direction)
{
	/* Reads of write-only registers return 0 and writes of read-only registers are ignored, each counting bad_offset. */
	static const uint32_t wo[] = {
		VIRTIO_MMIO_DEVICE_FEATURES_SEL, VIRTIO_MMIO_DRIVER_FEATURES,
		VIRTIO_MMIO_DRIVER_FEATURES_SEL, VIRTIO_MMIO_QUEUE_SEL,
		VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_NOTIFY,
		VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_QUEUE_DESC_LOW,
		VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_AVAIL_LOW,
		VIRTIO_MMIO_QUEUE_AVAIL_HIGH, VIRTIO_MMIO_QUEUE_USED_LOW,
		VIRTIO_MMIO_QUEUE_USED_HIGH, VIRTIO_MMIO_SHM_SEL,
	};
	static const uint32_t ro[] = {
		VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_VERSION,
		VIRTIO_MMIO_DEVICE_ID, VIRTIO_MMIO_VENDOR_ID,
		VIRTIO_MMIO_DEVICE_FEATURES, VIRTIO_MMIO_QUEUE_NUM_MAX,
		VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_SHM_LEN_LOW,
		VIRTIO_MMIO_SHM_LEN_HIGH, VIRTIO_MMIO_SHM_BASE_LOW,
		VIRTIO_MMIO_SHM_BASE_HIGH, VIRTIO_MMIO_CONFIG_GENERATION,
	};
	struct hvio_dev_stats a, b;
	uint32_t gen;
	unsigned int i;

	NEED_SETUP();
	gen = RD(VIRTIO_MMIO_CONFIG_GENERATION);
	a = dstats(self);
	for (i = 0; i < ARRAY_SIZE(wo); i++) {
		uint32_t v = RD(wo[i]);

		EXPECT_EQ(0, v) TH_LOG("write-only %#x reads %#x", wo[i], v);
	}
	for (i = 0; i < ARRAY_SIZE(ro); i++)
		WR(ro[i], 0x5a5a5a5a);
	b = dstats(self);
	EXPECT_EQ(a.bad_offset + ARRAY_SIZE(wo) + ARRAY_SIZE(ro), b.bad_offset);
	EXPECT_EQX(FG_MMIO_MAGIC, RD(VIRTIO_MMIO_MAGIC_VALUE));
	EXPECT_EQ(2, RD(VIRTIO_MMIO_VERSION));
	EXPECT_EQ(DEV_ID, RD(VIRTIO_MMIO_DEVICE_ID));
	EXPECT_EQX(FG_VENDOR_HVIS, RD(VIRTIO_MMIO_VENDOR_ID));
	EXPECT_EQ(QMAX, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));
	EXPECT_EQ(0, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	EXPECT_EQ(gen, RD(VIRTIO_MMIO_CONFIG_GENERATION));
	EXPECT_EQX(FEATURES, dinfo(self).device_features);
}

TEST_F(mmio, shm_registers)
{
	/* With no shared memory regions, SHMLen and SHMBase read 0xffffffff for any SHMSel. */
	uint32_t sel;

	NEED_SETUP();
	for (sel = 0; sel < 3; sel++) {
		WR(VIRTIO_MMIO_SHM_SEL, sel);
		EXPECT_EQX(0xffffffff, RD(VIRTIO_MMIO_SHM_LEN_LOW));
		EXPECT_EQX(0xffffffff, RD(VIRTIO_MMIO_SHM_LEN_HIGH));
		EXPECT_EQX(0xffffffff, RD(VIRTIO_MMIO_SHM_BASE_LOW));
		EXPECT_EQX(0xffffffff, RD(VIRTIO_MMIO_SHM_BASE_HIGH));
	}
	EXPECT_EQ(0, dstats(self).bad_offset);
}

TEST_F(mmio, queue_sel_out_of_range)
{
	/* With QueueSel >= num_queues, QueueNumMax and QueueReady read 0 and every queue register write fails with bad_queue, touching no queue. */
	static const uint32_t regs[] = {
		VIRTIO_MMIO_QUEUE_NUM, VIRTIO_MMIO_QUEUE_DESC_LOW,
		VIRTIO_MMIO_QUEUE_DESC_HIGH, VIRTIO_MMIO_QUEUE_AVAIL_LOW,
		VIRTIO_MMIO_QUEUE_AVAIL_HIGH, VIRTIO_MMIO_QUEUE_USED_LOW,
		VIRTIO_MMIO_QUEUE_USED_HIGH, VIRTIO_MMIO_QUEUE_READY,
	};
	static const uint32_t sels[] = { NQ, HVIO_MAX_QUEUES, 0xffff, 0xffffffff };
	struct hvio_dev_stats a, b;
	struct hvio_dev_info info;
	unsigned int i, s;

	NEED_SETUP();
	negotiate(self, FEATURES);
	ASSERT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	a = dstats(self);
	for (s = 0; s < ARRAY_SIZE(sels); s++) {
		WR(VIRTIO_MMIO_QUEUE_SEL, sels[s]);
		EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_NUM_MAX)) TH_LOG("QueueSel %#x", sels[s]);
		EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_READY)) TH_LOG("QueueSel %#x", sels[s]);
		for (i = 0; i < ARRAY_SIZE(regs); i++)
			WR(regs[i], i == 0 ? 16 : i == 7 ? 1 : GUEST_RAM);
	}
	b = dstats(self);
	EXPECT_EQ(a.bad_queue + ARRAY_SIZE(sels) * ARRAY_SIZE(regs), b.bad_queue);
	info = dinfo(self);
	for (i = 0; i < HVIO_MAX_QUEUES; i++) {
		EXPECT_EQ(0, info.queues[i].num | info.queues[i].ready) TH_LOG("queue %u", i);
		EXPECT_EQ(0, info.queues[i].desc | info.queues[i].driver |
			     info.queues[i].device) TH_LOG("queue %u", i);
	}
	WR(VIRTIO_MMIO_QUEUE_SEL, NQ - 1);
	EXPECT_EQ(QMAX, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));
}

TEST_F(mmio, queue_locked_while_ready)
{
	/* QueueNum and ring addresses of a ready queue cannot change (bad_state); the device keeps the original setup. */
	struct hvio_dev_stats a, b;
	struct hvio_dev_info info;

	NEED_SETUP();
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, 64, RING_GPA))
		TH_LOG("%s", self->v.err);
	a = dstats(self);
	WR(VIRTIO_MMIO_QUEUE_SEL, 0);
	WR(VIRTIO_MMIO_QUEUE_NUM, 16);
	WR(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(GUEST_RAM + 0x80000));
	WR(VIRTIO_MMIO_QUEUE_DESC_HIGH, 1);
	WR(VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)(GUEST_RAM + 0x81000));
	WR(VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)(GUEST_RAM + 0x82000));
	WR(VIRTIO_MMIO_QUEUE_USED_HIGH, 1);
	b = dstats(self);
	EXPECT_EQ(a.bad_state + 6, b.bad_state);
	info = dinfo(self);
	EXPECT_EQ(64, info.queues[0].num);
	EXPECT_EQ(1, info.queues[0].ready);
	EXPECT_EQX(self->v.vq[0].desc, info.queues[0].desc);
	EXPECT_EQX(self->v.vq[0].driver, info.queues[0].driver);
	EXPECT_EQX(self->v.vq[0].device, info.queues[0].device);
	EXPECT_EQ(1, RD(VIRTIO_MMIO_QUEUE_READY));
}

TEST_F(mmio, queue_ready_refused)
{
	/* QueueReady=1 with a bad QueueNum or a misaligned ring or a ring not entirely inside zone RAM leaves the queue not ready, sets NEEDS_RESET, raises a config interrupt and counts queue_refused. */
	struct qcase {
		const char *what;
		uint32_t num;
		int64_t desc, driver, device;	/* absolute when != 0 */
		int64_t ddesc, ddriver, ddevice;	/* added to the good layout */
	};
	const struct qcase cases[] = {
		{ "QueueNum 0", 0 },
		{ "QueueNum 3 (not a power of two)", 3 },
		{ "QueueNum 96 (not a power of two)", 96 },
		{ "QueueNum > QueueNumMax", 2 * QMAX },
		{ "desc misaligned", 64, .ddesc = 8 },
		{ "driver ring misaligned", 64, .ddriver = 1 },
		{ "device ring misaligned", 64, .ddevice = 2 },
		{ "desc outside zone RAM", 64, .desc = 0x90000000 },
		{ "desc below zone RAM", 64, .desc = GUEST_RAM - 0x1000 },
		{ "desc in the MMIO window", 64, .desc = MMIO_BASE },
		{ "desc straddles the end of RAM", 64, .desc = GUEST_RAM + MIB - 512 },
		{ "driver ring straddles the end", 64, .driver = GUEST_RAM + MIB - 64 },
		{ "device ring straddles the end", 64, .device = GUEST_RAM + MIB - 256 },
		{ "desc above 4 GiB (High word)", 64, .ddesc = 1LL << 32 },
		{ "device ring wraps the address space", 64, .device = -256 },
	};
	struct hvio_dev_stats a, b;
	struct fg_vq good, vq;
	unsigned int i;
	uint32_t st, is;

	NEED_SETUP();
	fg_vring_layout(RING_GPA, 64, &good);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct qcase *c = &cases[i];

		negotiate(self, FEATURES);
		ASSERT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
		fg_flush_res(&self->fg);
		a = dstats(self);
		vq.num = c->num;
		vq.desc = c->desc ? (uint64_t)c->desc : good.desc + c->ddesc;
		vq.driver = c->driver ? (uint64_t)c->driver : good.driver + c->ddriver;
		vq.device = c->device ? (uint64_t)c->device : good.device + c->ddevice;
		fg_vdev_setup_queue(&self->v, 0, &vq);

		EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_READY)) TH_LOG("%s", c->what);
		st = RD(VIRTIO_MMIO_STATUS);
		EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK | ST_NEEDS_RESET, st)
			TH_LOG("%s: Status %#x", c->what, st);
		is = RD(VIRTIO_MMIO_INTERRUPT_STATUS);
		EXPECT_TRUE(is & VIRTIO_MMIO_INT_CONFIG)
			TH_LOG("%s: InterruptStatus %#x", c->what, is);
		EXPECT_EQ(1, wait_irq(self, 2000)) TH_LOG("%s: no interrupt", c->what);
		b = dstats(self);
		EXPECT_EQ(a.queue_refused + 1, b.queue_refused) TH_LOG("%s", c->what);
		EXPECT_EQ(0, dinfo(self).queues[0].ready) TH_LOG("%s", c->what);
	}
	/* a reset clears NEEDS_RESET and a good setup then works */
	negotiate(self, FEATURES);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	EXPECT_EQ(0, RD(VIRTIO_MMIO_INTERRUPT_STATUS));
	fg_vdev_setup_queue(&self->v, 0, &good);
	EXPECT_EQ(1, RD(VIRTIO_MMIO_QUEUE_READY));
	/* rings in the last pages of RAM are inside */
	fg_vring_layout(GUEST_RAM + MIB - 0x2000, 64, &vq);
	fg_vdev_setup_queue(&self->v, 1, &vq);
	EXPECT_EQ(1, RD(VIRTIO_MMIO_QUEUE_READY));
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
}

TEST_F(mmio, queue_notify_kick)
{
	/* QueueNotify of a ready queue wakes poll() on the device fd with HVIO_EV_KICK and that queue's bit; other values count bad_queue and kick nothing. */
	struct hvio_dev_events ev;
	struct hvio_dev_stats a, b;

	NEED_SETUP();
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, NQ, QMAX, RING_GPA))
		TH_LOG("%s", self->v.err);
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_EQ(0, fg_poll_in(self->fd, 0));
	a = dstats(self);

	ASSERT_EQ(0, fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 1));
	EXPECT_EQ(1, fg_poll_in(self->fd, 2000));
	memset(&ev, 0, sizeof(ev));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_TRUE(ev.events & HVIO_EV_KICK);
	EXPECT_EQX(1U << 1, ev.kicked_queues);
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK | ST_DOK, ev.status);
	EXPECT_EQ(0, fg_poll_in(self->fd, 0));

	/* two queues before the daemon looks */
	ASSERT_EQ(0, fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0));
	ASSERT_EQ(0, fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 1));
	ASSERT_EQ(0, fg_wait_consumed(&self->fg, 2000)) TH_LOG("%s", self->fg.err);
	EXPECT_EQ(1, fg_poll_in(self->fd, 2000));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_TRUE(ev.events & HVIO_EV_KICK);
	EXPECT_EQX(3, ev.kicked_queues);
	b = dstats(self);
	EXPECT_EQ(a.notifies + 3, b.notifies);

	/* queues that do not exist */
	ASSERT_EQ(0, fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, NQ));
	ASSERT_EQ(0, fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0xffff));
	ASSERT_EQ(0, fg_wait_consumed(&self->fg, 2000)) TH_LOG("%s", self->fg.err);
	EXPECT_EQ(0, fg_poll_in(self->fd, 200));
	a = dstats(self);
	EXPECT_EQ(b.bad_queue + 2, a.bad_queue);
	EXPECT_EQ(b.notifies, a.notifies);

	/* a queue that exists but is not ready (after a reset) */
	WR(VIRTIO_MMIO_STATUS, 0);
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	ASSERT_EQ(0, fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0));
	ASSERT_EQ(0, fg_wait_consumed(&self->fg, 2000)) TH_LOG("%s", self->fg.err);
	EXPECT_EQ(0, fg_poll_in(self->fd, 200));
	ASSERT_EQ(0, fg_dev_events(self->fd, &ev));
	EXPECT_FALSE(ev.events & HVIO_EV_KICK);
	EXPECT_EQ(0, ev.kicked_queues);
	b = dstats(self);
	EXPECT_EQ(a.bad_queue + 1, b.bad_queue);
	EXPECT_EQ(a.notifies, b.notifies);
}

TEST_F(mmio, config_space_limits)
{
	/* A 256-byte config space is readable up to its last byte (0x1f8, 8 bytes); a device without config space reads 0 there and counts bad_offset. */
	uint8_t big[HVIO_MAX_CONFIG_LEN];
	struct hvio_dev_create c;
	struct hvio_dev_stats st;
	uint64_t base2 = MMIO_BASE + 0x1000, base3 = MMIO_BASE + 0x2000;
	int fd2, fd3, i;

	NEED_SETUP();
	for (i = 0; i < HVIO_MAX_CONFIG_LEN; i++)
		big[i] = (uint8_t)(255 - i);
	fg_dev_init(&c, ZONE_A, 5, base2, 44, 1, 64, FG_F_VERSION_1, big,
		    HVIO_MAX_CONFIG_LEN);
	fd2 = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd2) TH_LOG("%s", errname(fd2));
	fg_dev_init(&c, ZONE_A, 4, base3, 45, 1, 64, FG_F_VERSION_1, NULL, 0);
	fd3 = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd3) TH_LOG("%s", errname(fd3));

	EXPECT_EQX(le_bytes(big + 0xf8, 8),
		   fg_read64(&self->fg, 0, ZONE_A, base2 + HVIO_MMIO_CONFIG_OFF + 0xf8));
	EXPECT_EQX(big[0xff], fg_read8(&self->fg, 0, ZONE_A, base2 + HVIO_MMIO_CONFIG_OFF + 0xff));
	EXPECT_EQX(le_bytes(big, 4),
		   fg_read32(&self->fg, 0, ZONE_A, base2 + HVIO_MMIO_CONFIG_OFF));
	ASSERT_EQ(0, fg_dev_stats(fd2, &st));
	EXPECT_EQ(0, st.bad_offset);

	EXPECT_EQX(0, fg_read8(&self->fg, 0, ZONE_A, base3 + HVIO_MMIO_CONFIG_OFF));
	EXPECT_EQX(0, fg_read32(&self->fg, 0, ZONE_A, base3 + HVIO_MMIO_CONFIG_OFF + 4));
	EXPECT_EQX(4, fg_read32(&self->fg, 0, ZONE_A, base3 + VIRTIO_MMIO_DEVICE_ID));
	ASSERT_EQ(0, fg_dev_stats(fd3, &st));
	EXPECT_EQ(2, st.bad_offset);
	EXPECT_ERR(EINVAL, fg_dev_set_config(fd3, 0, big, 1, 0));
	close(fd2);
	close(fd3);
}

TEST_F(mmio, queue_ring_bounds_exact)
{
	/* Ring checks use the virtio sizes (desc 16n, driver 6+2n, device 6+8n) and the minimum alignments: rings ending exactly at the end of zone RAM, QueueNum 1 and 2/4-byte aligned rings are accepted, two bytes more are refused. */
	const uint64_t end = GUEST_RAM + MIB;
	struct hvio_dev_stats a, b;
	struct fg_vq vq;

	NEED_SETUP();
	negotiate(self, FEATURES);
	ASSERT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	a = dstats(self);
	/* queue 0: QueueNum 1, desc in the last 16 bytes, driver 2-aligned, device 4-aligned */
	vq.num = 1;
	vq.desc = end - 16;
	vq.driver = GUEST_RAM + 0x20002;
	vq.device = GUEST_RAM + 0x30004;
	fg_vdev_setup_queue(&self->v, 0, &vq);
	EXPECT_EQ(1, RD(VIRTIO_MMIO_QUEUE_READY));
	/* queue 1: QueueNum = max, driver ring ends exactly at the end of RAM */
	vq.num = QMAX;
	vq.desc = GUEST_RAM + 0x40000;
	vq.driver = end - (6 + 2 * QMAX);
	vq.device = end - 0x2000 - (6 + 8 * QMAX) - 2;
	fg_vdev_setup_queue(&self->v, 1, &vq);
	EXPECT_EQ(1, RD(VIRTIO_MMIO_QUEUE_READY));
	EXPECT_EQ(ST_ACK | ST_DRV | ST_FOK, RD(VIRTIO_MMIO_STATUS));
	b = dstats(self);
	EXPECT_EQ(a.queue_refused, b.queue_refused);
	EXPECT_EQ(1, dinfo(self).queues[0].num);

	/* the driver ring two bytes further (its used_event field is outside) */
	negotiate(self, FEATURES);
	vq.driver = end - (6 + 2 * QMAX) + 2;
	fg_vdev_setup_queue(&self->v, 1, &vq);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_READY));
	EXPECT_TRUE(RD(VIRTIO_MMIO_STATUS) & ST_NEEDS_RESET);
	/* the device ring two bytes past the end (its avail_event field is outside) */
	negotiate(self, FEATURES);
	vq.driver = GUEST_RAM + 0x50000;
	vq.device = end - (6 + 8 * QMAX) + 2;
	fg_vdev_setup_queue(&self->v, 1, &vq);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_READY));
	EXPECT_TRUE(RD(VIRTIO_MMIO_STATUS) & ST_NEEDS_RESET);
	a = dstats(self);
	EXPECT_EQ(b.queue_refused + 2, a.queue_refused);
	fg_flush_res(&self->fg);
}

TEST_HARNESS_MAIN
