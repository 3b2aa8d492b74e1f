// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_policy: what the module lets a daemon (CAP_SYS_ADMIN) reach.
 *
 * Zone RAM is mapped write-back into the daemon, so HVIO_ZONE_ADD must not
 * act as /dev/mem: a range some device or firmware owns is refused with
 * EPERM even when it lies inside the provider's window (the sim's sim_ram
 * window is moved onto such a range by reloading the module), while the
 * real zone RAM window is still accepted.  virtio-blk devices may offer
 * only features the request engine implements.
 */
#include "hvio_test.h"

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#define PAGE		4096ULL

FIXTURE(policy) {
	struct fg fg;
	bool skip;
};

FIXTURE_SETUP(policy)
{
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
}

FIXTURE_TEARDOWN(policy)
{
	hvio_fixture_close(_metadata, &self->fg);
}

TEST_F(policy, sim_window_accepted)
{
	/* The sim_ram window itself (reserved or hidden RAM) is still zone RAM: registered, mapped through a device fd, written and read back. */
	struct fg_zone z = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = MIN_SIM_RAM };
	struct hvio_dev_create c;
	volatile uint8_t *p;
	int dev;

	NEED_SETUP();
	ASSERT_EQ(0, fg_zone_add(&self->fg, &z));
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, 40, 1, 64,
		    FG_F_VERSION_1, NULL, 0);
	dev = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, dev) TH_LOG("%s", errname(dev));
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, dev, GUEST_RAM);
	ASSERT_NE(MAP_FAILED, p) TH_LOG("mmap: %s", strerror(errno));
	p[0] = 0xa5;
	EXPECT_EQ(0xa5, *(uint8_t *)fg_zone_ptr(&self->fg, &z, GUEST_RAM));
	munmap((void *)p, PAGE);
	close(dev);
	EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(policy, blk_unimplemented_features_refused)
{
	/* A virtio-blk device offering RING_PACKED, IN_ORDER, ACCESS_PLATFORM, NOTIFICATION_DATA (or a request type the engine lacks) is refused with EINVAL; the daemon's own feature set is accepted. */
	static const unsigned int bad[] = {
		VIRTIO_F_RING_PACKED, VIRTIO_F_IN_ORDER,
		VIRTIO_F_ACCESS_PLATFORM, 38 /* NOTIFICATION_DATA */,
		VIRTIO_F_ORDER_PLATFORM, 15 /* LIFETIME */,
		16 /* SECURE_ERASE */, 17 /* ZONED */, 63,
	};
	const uint64_t good = FG_F_VERSION_1 |
		1ULL << VIRTIO_RING_F_EVENT_IDX |
		1ULL << VIRTIO_RING_F_INDIRECT_DESC |
		1ULL << VIRTIO_BLK_F_SEG_MAX | 1ULL << VIRTIO_BLK_F_SIZE_MAX |
		1ULL << VIRTIO_BLK_F_BLK_SIZE | 1ULL << VIRTIO_BLK_F_TOPOLOGY |
		1ULL << VIRTIO_BLK_F_FLUSH | 1ULL << VIRTIO_BLK_F_CONFIG_WCE |
		1ULL << VIRTIO_BLK_F_MQ | 1ULL << VIRTIO_BLK_F_RO |
		1ULL << VIRTIO_BLK_F_DISCARD | 1ULL << VIRTIO_BLK_F_WRITE_ZEROES;
	struct fg_zone z = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = MIB };
	struct hvio_dev_create c;
	unsigned int i;
	int dev;

	NEED_SETUP();
	ASSERT_EQ(0, fg_zone_add(&self->fg, &z));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, 40, 1, 64,
			    good | 1ULL << bad[i], NULL, 0);
		dev = fg_dev_create(&self->fg, &c);
		EXPECT_EQ(-EINVAL, dev) TH_LOG("feature bit %u: %s", bad[i],
					       errname(dev));
		if (dev >= 0)
			close(dev);
	}
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, 40, 1, 64, good,
		    NULL, 0);
	dev = fg_dev_create(&self->fg, &c);
	EXPECT_LE(0, dev) TH_LOG("%s", errname(dev));
	if (dev >= 0)
		close(dev);
	EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
}

TEST_HARNESS_MAIN
