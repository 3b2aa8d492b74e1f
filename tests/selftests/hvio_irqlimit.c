// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_irqlimit: hvisor's pending-interrupt list can never overflow.
 *
 * hvisor's FINISH_REQ handler appends each res_list IRQ not yet listed for
 * the zone's CPU after assert!(len + 1 < MAX_DEVS): 8 distinct IRQs
 * pending at once panic the hypervisor.  The module keeps at most
 * max_pending_irqs (7) devices of a zone with an interrupt out and not
 * acknowledged by the guest; the others wait in the module until one is
 * acknowledged (InterruptACK leaving InterruptStatus 0), reset, or
 * destroyed.  The fake guest here never acknowledges unless told to: the
 * worst case, every device of a zone interrupting at once.
 */
#include "hvio_test.h"

#define DEV_ID		1		/* virtio-net: two queues */
#define NQ		2
#define QMAX		256
#define NDEV		9		/* two more than max_pending_irqs */
#define LIMIT		7
#define IRQ0		40
#define IRQ_B		90
#define CFG_LEN		8

FIXTURE(irqlimit) {
	struct fg fg;
	bool skip;
	bool zone_a, zone_b;
	int fd[NDEV];
	int fd_b;
};

static int make_dev(struct fg *fg, uint32_t zone, unsigned int i,
		    uint32_t irq)
{
	uint8_t cfg[CFG_LEN] = { 0 };
	struct hvio_dev_create c;

	fg_dev_init(&c, zone, DEV_ID, MMIO_BASE + i * 0x200ULL, irq, NQ, QMAX,
		    FG_F_VERSION_1 | (1ULL << 5), cfg, CFG_LEN);
	return fg_dev_create(fg, &c);
}

FIXTURE_SETUP(irqlimit)
{
	struct fg_zone a = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = MIB };
	struct fg_zone b = { .id = ZONE_B, .zonex_ipa = GUEST_RAM,
			     .ram_off = MIB, .size = MIB };
	unsigned int i;

	self->fd_b = -1;
	for (i = 0; i < NDEV; i++)
		self->fd[i] = -1;
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &a));
	self->zone_a = true;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &b));
	self->zone_b = true;
	for (i = 0; i < NDEV; i++) {
		self->fd[i] = make_dev(&self->fg, ZONE_A, i, IRQ0 + i);
		ASSERT_LE(0, self->fd[i]) TH_LOG("device %u: %s", i,
						 errname(self->fd[i]));
	}
	self->fd_b = make_dev(&self->fg, ZONE_B, 0, IRQ_B);
	ASSERT_LE(0, self->fd_b) TH_LOG("%s", errname(self->fd_b));
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(irqlimit)
{
	unsigned int i;

	for (i = 0; i < NDEV; i++)
		if (self->fd[i] >= 0)
			close(self->fd[i]);
	if (self->fd_b >= 0)
		close(self->fd_b);
	if (self->zone_a)
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	if (self->zone_b)
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_B));
	hvio_fixture_close(_metadata, &self->fg);
}

/* A configuration-change interrupt from the daemon's side. */
static int raise_irq(int fd)
{
	uint8_t b = 1;

	return fg_dev_set_config(fd, 0, &b, 1, HVIO_CONFIG_F_NOTIFY);
}

static uint64_t deferred(int fd)
{
	struct hvio_dev_stats st;

	memset(&st, 0xff, sizeof(st));
	fg_dev_stats(fd, &st);
	return st.irqs_deferred;
}

/* Every IRQ in res[0..n) is one of zone A's devices [first, last]. */
static bool irqs_within(const struct hvio_device_res *res, int n,
			unsigned int first, unsigned int last)
{
	int i;

	for (i = 0; i < n; i++)
		if (res[i].target_zone != ZONE_A ||
		    res[i].irq_id < IRQ0 + first || res[i].irq_id > IRQ0 + last)
			return false;
	return true;
}

/* Interrupts of all NDEV devices at once: LIMIT go out, the rest wait. */
static void raise_all(struct __test_metadata *_metadata,
		      FIXTURE_DATA(irqlimit) *self)
{
	struct hvio_device_res res[32];
	unsigned int i;
	int n;

	for (i = 0; i < NDEV; i++)
		ASSERT_EQ(0, raise_irq(self->fd[i]));
	n = fg_collect_res(&self->fg, res, 32, NDEV, 300);
	ASSERT_EQ(LIMIT, n);
	EXPECT_TRUE(irqs_within(res, n, 0, LIMIT - 1));
	for (i = 0; i < NDEV; i++)
		EXPECT_EQ(i < LIMIT ? 0 : 1, deferred(self->fd[i]))
			TH_LOG("device %u", i);
}

TEST_F(irqlimit, only_max_pending_devices_interrupt_until_acknowledged)
{
	struct hvio_device_res res[32];
	struct hvio_stats st;
	int n;

	NEED_SETUP();
	raise_all(_metadata, self);

	/* More interrupts of devices already out still go (hvisor skips an
	 * IRQ it lists already), the waiting ones still wait. */
	ASSERT_EQ(0, raise_irq(self->fd[0]));
	ASSERT_EQ(0, raise_irq(self->fd[LIMIT]));
	n = fg_collect_res(&self->fg, res, 32, 2, 300);
	ASSERT_EQ(1, n);
	EXPECT_EQ(IRQ0, res[0].irq_id);
	EXPECT_EQ(2, deferred(self->fd[LIMIT]));

	/* The guest acknowledges device 0: device LIMIT's interrupt goes. */
	fg_write32(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_INTERRUPT_ACK,
		   VIRTIO_MMIO_INT_CONFIG);
	n = fg_collect_res(&self->fg, res, 32, 1, 2000);
	ASSERT_EQ(1, n);
	EXPECT_EQ(IRQ0 + LIMIT, res[0].irq_id);
	EXPECT_EQ(0, fg_collect_res(&self->fg, res, 32, 1, 200));

	/* Held back in all: LIMIT and LIMIT + 1 once, LIMIT again. */
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(3, st.irqs_deferred);
}

TEST_F(irqlimit, reset_and_destroy_give_the_place_back)
{
	struct hvio_device_res res[32];
	struct fg_vdev v;
	int n;

	NEED_SETUP();
	raise_all(_metadata, self);

	/* The guest resets device 1 (InterruptStatus 0): device LIMIT goes. */
	fg_vdev_init(&v, &self->fg, 0, ZONE_A, MMIO_BASE + 0x200);
	fg_vdev_wr(&v, VIRTIO_MMIO_STATUS, 0);
	n = fg_collect_res(&self->fg, res, 32, 1, 2000);
	ASSERT_EQ(1, n);
	EXPECT_EQ(IRQ0 + LIMIT, res[0].irq_id);

	/* Device 2 goes away: device LIMIT + 1 goes. */
	close(self->fd[2]);
	self->fd[2] = -1;
	n = fg_collect_res(&self->fg, res, 32, 1, 2000);
	ASSERT_EQ(1, n);
	EXPECT_EQ(IRQ0 + LIMIT + 1, res[0].irq_id);
	EXPECT_EQ(0, fg_collect_res(&self->fg, res, 32, 1, 200));
}

TEST_F(irqlimit, another_zone_is_not_held_back)
{
	struct hvio_device_res res[4];
	int n;

	NEED_SETUP();
	raise_all(_metadata, self);
	ASSERT_EQ(0, raise_irq(self->fd_b));
	n = fg_collect_res(&self->fg, res, 4, 1, 2000);
	ASSERT_EQ(1, n);
	EXPECT_EQ(ZONE_B, res[0].target_zone);
	EXPECT_EQ(IRQ_B, res[0].irq_id);
	EXPECT_EQ(0, deferred(self->fd_b));
}

TEST_F(irqlimit, partial_acknowledgement_keeps_the_place)
{
	struct hvio_device_res res[4];
	struct fg_vdev v;

	NEED_SETUP();
	raise_all(_metadata, self);
	/* Device 0's InterruptStatus is the configuration bit: acknowledging
	 * the used-buffer bit leaves it non-zero. */
	fg_vdev_init(&v, &self->fg, 0, ZONE_A, MMIO_BASE);
	fg_vdev_wr(&v, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
	EXPECT_EQ(0, fg_collect_res(&self->fg, res, 4, 1, 300))
		TH_LOG("acknowledging a bit that was not set freed a place");
	fg_vdev_wr(&v, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_CONFIG);
	EXPECT_EQ(1, fg_collect_res(&self->fg, res, 4, 1, 2000));
	EXPECT_EQ(IRQ0 + LIMIT, res[0].irq_id);
}

TEST_HARNESS_MAIN
