// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_irqlimit: hvisor's pending-interrupt list can never overflow.
 *
 * hvisor's FINISH_REQ handler appends each res_list IRQ not yet listed for
 * the zone's CPU after assert!(len + 1 < MAX_DEVS): 8 distinct IRQs
 * pending at once panic the hypervisor.  Only a zone's own devices' IRQs
 * reach its CPU's list, so HVIO_DEV_CREATE refuses a device whose IRQ
 * would give its zone more than max_pending_irqs (7) distinct ones; more
 * devices share an IRQ.  The worst case then goes through the bridge:
 * every device of a full zone interrupting at once, nobody acknowledging.
 */
#include "hvio_test.h"

#define DEV_ID		1		/* virtio-net: two queues */
#define NQ		2
#define QMAX		256
#define LIMIT		7		/* max_pending_irqs' default */
#define NDEV		(LIMIT + 2)	/* the last two share IRQs */
#define IRQ0		40
#define IRQ_B		90
#define CFG_LEN		8

FIXTURE(irqlimit) {
	struct fg fg;
	bool skip;
	bool zone_a, zone_b;
	int fd[NDEV + 2];
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

/* Device i of zone A: IRQ0 + i for the first LIMIT, then shared ones. */
static uint32_t irq_of(unsigned int i)
{
	return i < LIMIT ? IRQ0 + i : IRQ0 + i - LIMIT;
}

FIXTURE_SETUP(irqlimit)
{
	struct fg_zone a = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = MIB };
	struct fg_zone b = { .id = ZONE_B, .zonex_ipa = GUEST_RAM,
			     .ram_off = MIB, .size = MIB };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->fd); i++)
		self->fd[i] = -1;
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &a));
	self->zone_a = true;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &b));
	self->zone_b = true;
	for (i = 0; i < LIMIT; i++) {
		self->fd[i] = make_dev(&self->fg, ZONE_A, i, irq_of(i));
		ASSERT_LE(0, self->fd[i]) TH_LOG("device %u: %s", i,
						 errname(self->fd[i]));
	}
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(irqlimit)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(self->fd); i++)
		if (self->fd[i] >= 0)
			close(self->fd[i]);
	if (self->zone_a)
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	if (self->zone_b)
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_B));
	hvio_fixture_close(_metadata, &self->fg);
}

TEST_F(irqlimit, the_default_is_hvisors_list_less_one)
{
	char v[16] = "";
	FILE *f;

	NEED_SETUP();
	f = fopen("/sys/module/hvio/parameters/max_pending_irqs", "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(v, sizeof(v), f));
	fclose(f);
	EXPECT_EQ(LIMIT, atoi(v));
}

TEST_F(irqlimit, an_eighth_distinct_irq_is_refused_a_shared_one_is_not)
{
	int fd;

	NEED_SETUP();
	fd = make_dev(&self->fg, ZONE_A, LIMIT, IRQ0 + LIMIT);
	EXPECT_EQ(-ENOSPC, fd) TH_LOG("an 8th distinct IRQ: %s", errname(fd));
	if (fd >= 0)
		close(fd);
	self->fd[LIMIT] = make_dev(&self->fg, ZONE_A, LIMIT, irq_of(LIMIT));
	EXPECT_LE(0, self->fd[LIMIT]) TH_LOG("a shared IRQ: %s",
					     errname(self->fd[LIMIT]));
	/* Another zone has its own CPU and its own list. */
	self->fd[LIMIT + 1] = make_dev(&self->fg, ZONE_B, 0, IRQ_B);
	EXPECT_LE(0, self->fd[LIMIT + 1]) TH_LOG("%s",
						 errname(self->fd[LIMIT + 1]));
}

TEST_F(irqlimit, the_last_device_on_an_irq_gives_it_back)
{
	int fd;

	NEED_SETUP();
	self->fd[LIMIT] = make_dev(&self->fg, ZONE_A, LIMIT, irq_of(LIMIT));
	ASSERT_LE(0, self->fd[LIMIT]);
	/* Device 0's IRQ is shared with device LIMIT: still in use. */
	close(self->fd[0]);
	self->fd[0] = -1;
	fd = make_dev(&self->fg, ZONE_A, LIMIT + 1, IRQ0 + LIMIT);
	EXPECT_EQ(-ENOSPC, fd) TH_LOG("%s", errname(fd));
	if (fd >= 0)
		close(fd);
	/* Device 1 was alone on its IRQ: a new one fits. */
	close(self->fd[1]);
	self->fd[1] = -1;
	self->fd[LIMIT + 1] = make_dev(&self->fg, ZONE_A, LIMIT + 1,
				       IRQ0 + LIMIT);
	EXPECT_LE(0, self->fd[LIMIT + 1]) TH_LOG("%s",
						 errname(self->fd[LIMIT + 1]));
}

TEST_F(irqlimit, every_device_of_a_full_zone_at_once)
{
	/* NDEV devices on LIMIT IRQs interrupt three times each, nobody
	 * acknowledges: every interrupt is in res_list, and hvisor's list
	 * (an IRQ already listed is skipped) would hold at most LIMIT. */
	struct hvio_device_res res[64];
	bool listed[256] = { false };
	unsigned int i, round, distinct = 0;
	uint8_t b = 1;
	int n, k;

	NEED_SETUP();
	for (i = LIMIT; i < NDEV; i++) {
		self->fd[i] = make_dev(&self->fg, ZONE_A, i, irq_of(i));
		ASSERT_LE(0, self->fd[i]) TH_LOG("%s", errname(self->fd[i]));
	}
	for (round = 0; round < 3; round++)
		for (i = 0; i < NDEV; i++)
			ASSERT_EQ(0, fg_dev_set_config(self->fd[i], 0, &b, 1,
						       HVIO_CONFIG_F_NOTIFY));
	n = fg_collect_res(&self->fg, res, ARRAY_SIZE(res), 3 * NDEV, 5000);
	ASSERT_EQ(3 * NDEV, n);
	for (k = 0; k < n; k++) {
		EXPECT_EQ(ZONE_A, res[k].target_zone);
		ASSERT_LT(res[k].irq_id, ARRAY_SIZE(listed));
		if (!listed[res[k].irq_id]) {
			listed[res[k].irq_id] = true;
			distinct++;
		}
	}
	EXPECT_EQ(LIMIT, distinct);
}

TEST_HARNESS_MAIN
