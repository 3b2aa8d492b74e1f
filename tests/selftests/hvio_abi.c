// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_abi: the /dev/hvio and device-fd ioctls, mmap and /dev/hvio-sim,
 * checked against Documentation/abi.md sections 2, 3 and 5: every bad input
 * is refused with the documented errno, and good input just inside every
 * limit is accepted.
 */
#include "hvio_test.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PAGE		4096ULL
#define CFG_LEN		16

FIXTURE(abi) {
	struct fg fg;
	bool skip;
	int devs[HVIO_MAX_DEVS + 8];
	int ndevs;
	uint8_t cfg[HVIO_MAX_CONFIG_LEN + 8];
};

FIXTURE_SETUP(abi)
{
	int i;

	for (i = 0; i < (int)ARRAY_SIZE(self->devs); i++)
		self->devs[i] = -1;
	for (i = 0; i < (int)sizeof(self->cfg); i++)
		self->cfg[i] = (uint8_t)(0xa0 + i);
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
}

FIXTURE_TEARDOWN(abi)
{
	int i;

	for (i = 0; i < (int)ARRAY_SIZE(self->devs); i++)
		if (self->devs[i] >= 0)
			close(self->devs[i]);
	hvio_fixture_close(_metadata, &self->fg);
}

/* One-region zone_add request: host page offset `off` of sim_ram. */
static void zreq(struct fg *fg, struct hvio_zone_add *za, uint32_t id,
		 uint64_t off, uint64_t gpa, uint64_t size)
{
	memset(za, 0, sizeof(*za));
	za->zone_id = id;
	za->nr_regions = 1;
	za->regions[0].zone0_ipa = fg->info.ram_base + off;
	za->regions[0].zonex_ipa = gpa;
	za->regions[0].size = size;
}

/* Zone `id` with 1 MiB of RAM at sim_ram offset off, guest GUEST_RAM. */
static int add_zone(struct fg *fg, uint32_t id, uint64_t off)
{
	struct fg_zone z = { .id = id, .zonex_ipa = GUEST_RAM,
			     .ram_off = off, .size = MIB };

	return fg_zone_add(fg, &z);
}

/* A valid create request for zone `zone` at MMIO_BASE + slot * 0x200. */
static void dreq(FIXTURE_DATA(abi) *self, struct hvio_dev_create *c,
		 uint32_t zone, unsigned int slot)
{
	/* Seven IRQs per zone at most (max_pending_irqs): they are shared. */
	fg_dev_init(c, zone, 2, MMIO_BASE + slot * HVIO_MMIO_ALIGN, 40 + slot % 7,
		    2, 256, FG_F_VERSION_1 | (1ULL << 1), self->cfg, CFG_LEN);
}

/* Create expecting failure `err`; a device created by mistake is closed. */
#define EXPECT_CREATE_ERR(_err, _c) do {				\
	int __fd = fg_dev_create(&self->fg, (_c));			\
	if (__fd >= 0)							\
		close(__fd);						\
	EXPECT_EQ(-(_err), __fd)					\
		TH_LOG("line %d: create got %d (%s), expected %s; "	\
		       "dev %u base %#llx len %#llx irq %u nq %u qmax %u " \
		       "cfg %u feat %#llx flags %#x",			\
		       __LINE__, __fd, errname(__fd), strerror(_err),	\
		       (_c)->device_id, (unsigned long long)(_c)->mmio_base, \
		       (unsigned long long)(_c)->mmio_len, (_c)->irq,	\
		       (_c)->num_queues, (_c)->queue_size_max,		\
		       (_c)->config_len,				\
		       (unsigned long long)(_c)->features, (_c)->flags); \
} while (0)

/* Create expecting success; the fd is kept until teardown. */
#define EXPECT_CREATE_OK(_c) do {					\
	int __fd = fg_dev_create(&self->fg, (_c));			\
	EXPECT_LE(0, __fd)						\
		TH_LOG("line %d: create: %s", __LINE__, errname(__fd));	\
	if (__fd >= 0)							\
		self->devs[self->ndevs++] = __fd;			\
} while (0)

static void close_devs(FIXTURE_DATA(abi) *self)
{
	int i;

	for (i = 0; i < self->ndevs; i++) {
		if (self->devs[i] >= 0)
			close(self->devs[i]);
		self->devs[i] = -1;
	}
	self->ndevs = 0;
}

TEST_F(abi, get_version)
{
	/* HVIO_GET_VERSION reports API 1, the sim provider and the header's limits. */
	struct hvio_version v;
	int i;

	NEED_SETUP();
	memset(&v, 0xff, sizeof(v));
	ASSERT_OK(sys_ret(ioctl(self->fg.ctl_fd, HVIO_GET_VERSION, &v)));
	EXPECT_EQ(HVIO_API_VERSION, v.api_version);
	EXPECT_EQ(HVIO_PROVIDER_SIM, v.provider);
	EXPECT_EQ(HVIO_MAX_ZONES, v.max_zones);
	EXPECT_EQ(HVIO_MAX_REGIONS, v.max_regions);
	EXPECT_EQ(HVIO_MAX_DEVS, v.max_devs);
	EXPECT_EQ(HVIO_MAX_QUEUES, v.max_queues);
	EXPECT_EQ(HVIO_MAX_QUEUE_SIZE, v.max_queue_size);
	EXPECT_EQ(HVIO_MAX_CONFIG_LEN, v.max_config_len);
	for (i = 0; i < 4; i++) {
		EXPECT_EQ(0, v.reserved[i]);
	}
}

TEST_F(abi, open_needs_cap_sys_admin)
{
	/* Opening /dev/hvio without CAP_SYS_ADMIN fails with EPERM. */
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];
	int status;
	pid_t pid;

	NEED_SETUP();
	ASSERT_EQ(0, syscall(SYS_capget, &hdr, data));
	if (!(data[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32))))
		SKIP(return, "test runs without CAP_SYS_ADMIN already");
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		data[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
		if (syscall(SYS_capset, &hdr, data))
			_exit(100);
		fd = open(FG_DEV_CTL, O_RDWR);
		if (fd >= 0)
			_exit(101);
		_exit(errno == EPERM ? 0 : errno > 99 ? 99 : errno);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("child: 100 capset failed, 101 open succeeded, else errno %d (%s)",
		       WEXITSTATUS(status), strerror(WEXITSTATUS(status)));
}

TEST_F(abi, sim_single_open_and_info)
{
	/* /dev/hvio-sim is single-open (EBUSY) and HVIO_SIM_GET_INFO describes the bridge and a page-aligned sim_ram window. */
	struct hvio_sim_info info;
	long page = sysconf(_SC_PAGESIZE);
	int fd;

	NEED_SETUP();
	fd = open(FG_DEV_SIM, O_RDWR);
	EXPECT_EQ(-1, fd);
	EXPECT_EQ(EBUSY, errno) TH_LOG("second open: %s", strerror(errno));
	if (fd >= 0)
		close(fd);

	memset(&info, 0xff, sizeof(info));
	ASSERT_EQ(0, fg_sim_info(&self->fg, &info));
	EXPECT_EQ(sizeof(struct hvio_bridge), info.bridge_size);
	EXPECT_EQ(HVIO_BRIDGE_MAX_CPUS, info.max_cpus);
	EXPECT_LT(0, info.ram_size);
	EXPECT_EQ(0, info.ram_base % page);
	EXPECT_EQ(0, info.ram_size % page);
	EXPECT_EQ(0, info.reserved[0]);
	EXPECT_EQ(0, info.reserved[1]);
	EXPECT_EQ(0, info.reserved[2]);
}

TEST_F(abi, bridge_idle_state)
{
	/* An idle bridge has empty rings, valid indices, unused mmio fields zero and need_wakeup == 1 (the consumer sleeps). */
	struct hvio_bridge *br = self->fg.br;
	int i;

	NEED_SETUP();
	EXPECT_GT(32, br->req_front);
	EXPECT_GT(32, br->req_rear);
	EXPECT_GT(32, br->res_front);
	EXPECT_GT(32, br->res_rear);
	EXPECT_EQ(br->req_front, br->req_rear);
	EXPECT_EQ(br->res_front, br->res_rear);
	EXPECT_EQ(1, br->need_wakeup);
	EXPECT_EQ(0, br->mmio_avail);
	for (i = 0; i < HVIO_BRIDGE_MAX_DEVS; i++) {
		EXPECT_EQ(0, br->mmio_addrs[i]);
	}
}

TEST_F(abi, zone_add_bad_zone_id)
{
	/* Zone 0 (root Linux) and ids above 0xffff are refused with EINVAL; 0xffff itself is accepted. */
	struct hvio_zone_add za;

	NEED_SETUP();
	zreq(&self->fg, &za, 0, 0, GUEST_RAM, MIB);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	za.zone_id = HVIO_MAX_ZONE_ID + 1;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	za.zone_id = 0xffffffff;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	za.zone_id = HVIO_MAX_ZONE_ID;
	EXPECT_ERR(0, fg_zone_add_raw(&self->fg, &za));
	EXPECT_ERR(0, fg_zone_del(&self->fg, HVIO_MAX_ZONE_ID));
}

TEST_F(abi, zone_add_bad_nr_regions)
{
	/* nr_regions 0 and > 16 are refused with EINVAL; 16 disjoint regions are accepted. */
	struct hvio_zone_add za;
	int i;

	NEED_SETUP();
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, PAGE);
	za.nr_regions = 0;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	za.nr_regions = HVIO_MAX_REGIONS + 1;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	za.nr_regions = 0xffffffff;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));

	za.nr_regions = HVIO_MAX_REGIONS;
	for (i = 0; i < HVIO_MAX_REGIONS; i++) {
		/* host pages 0, 2, 4...; guest pages 0, 3, 6... */
		za.regions[i].zone0_ipa = self->fg.info.ram_base + 2 * i * PAGE;
		za.regions[i].zonex_ipa = GUEST_RAM + 3 * i * PAGE;
		za.regions[i].size = PAGE;
	}
	EXPECT_ERR(0, fg_zone_add_raw(&self->fg, &za));
	EXPECT_ERR(0, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, zone_add_unaligned)
{
	/* A region whose host address, guest address or size is not page aligned, or whose size is 0, is refused with EINVAL. */
	struct hvio_zone_add za;

	NEED_SETUP();
	zreq(&self->fg, &za, ZONE_A, 0x800, GUEST_RAM, MIB);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM + 0x10, MIB);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, MIB + 1);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, 0x800);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, 0);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	/* nothing was registered */
	EXPECT_ERR(ENOENT, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, zone_add_wrap_and_ipa_limit)
{
	/* Ranges that wrap or end beyond 2^52 in the guest are refused with EINVAL; a region ending exactly at 2^52 is accepted. */
	struct hvio_zone_add za;

	NEED_SETUP();
	zreq(&self->fg, &za, ZONE_A, 0, HVIO_IPA_LIMIT - PAGE, 2 * PAGE);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, 0, HVIO_IPA_LIMIT, PAGE);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, 0, 0xfffffffffffff000ULL, 2 * PAGE);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	/* host side wraps */
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, PAGE);
	za.regions[0].zone0_ipa = 0xfffffffffffff000ULL;
	za.regions[0].size = 2 * PAGE;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	/* size so large that zonex_ipa + size wraps to a small value */
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, 0 - GUEST_RAM);
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));

	zreq(&self->fg, &za, ZONE_A, 0, HVIO_IPA_LIMIT - PAGE, PAGE);
	EXPECT_ERR(0, fg_zone_add_raw(&self->fg, &za));
	EXPECT_ERR(0, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, zone_add_overlapping_regions)
{
	/* Two regions of one zone overlapping on the host side or on the guest side are refused with EINVAL. */
	struct hvio_zone_add za;

	NEED_SETUP();
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, 2 * PAGE);
	za.nr_regions = 2;
	/* host overlap (second starts inside the first), guest disjoint */
	za.regions[1].zone0_ipa = za.regions[0].zone0_ipa + PAGE;
	za.regions[1].zonex_ipa = GUEST_RAM + MIB;
	za.regions[1].size = 2 * PAGE;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	/* host overlap, second contains the first */
	za.regions[1].zone0_ipa = za.regions[0].zone0_ipa;
	za.regions[1].size = 4 * PAGE;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	/* guest overlap, host disjoint */
	za.regions[1].zone0_ipa = self->fg.info.ram_base + MIB;
	za.regions[1].zonex_ipa = GUEST_RAM + PAGE;
	za.regions[1].size = 2 * PAGE;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	/* adjacent on both sides is fine */
	za.regions[1].zone0_ipa = self->fg.info.ram_base + 2 * PAGE;
	za.regions[1].zonex_ipa = GUEST_RAM + 2 * PAGE;
	EXPECT_ERR(0, fg_zone_add_raw(&self->fg, &za));
	EXPECT_ERR(0, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, zone_add_reserved_nonzero)
{
	/* Non-zero reserved fields of hvio_zone_add or of a region are refused with EINVAL. */
	struct hvio_zone_add za;

	NEED_SETUP();
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, MIB);
	za.flags = 1U << 31;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, MIB);
	za.reserved = 1ULL << 63;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, MIB);
	za.regions[0].reserved = 1;
	EXPECT_ERR(EINVAL, fg_zone_add_raw(&self->fg, &za));
	EXPECT_ERR(ENOENT, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, zone_add_duplicate)
{
	/* Registering a zone id twice fails with EEXIST (even with different RAM) and leaves the first registration intact. */
	NEED_SETUP();
	EXPECT_ERR(0, add_zone(&self->fg, ZONE_A, 0));
	EXPECT_ERR(EEXIST, add_zone(&self->fg, ZONE_A, 2 * MIB));
	EXPECT_ERR(0, fg_zone_del(&self->fg, ZONE_A));
	EXPECT_ERR(ENOENT, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, zone_add_outside_sim_ram)
{
	/* Host ranges outside the sim_ram window (past its end, straddling its end, below its start) are refused with EPERM. */
	struct hvio_zone_add za;
	uint64_t size = self->fg.info.ram_size;

	NEED_SETUP();
	zreq(&self->fg, &za, ZONE_A, size, GUEST_RAM, PAGE);
	EXPECT_ERR(EPERM, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_A, size - PAGE, GUEST_RAM, 2 * PAGE);
	EXPECT_ERR(EPERM, fg_zone_add_raw(&self->fg, &za));
	if (self->fg.info.ram_base >= PAGE) {
		zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, PAGE);
		za.regions[0].zone0_ipa = self->fg.info.ram_base - PAGE;
		EXPECT_ERR(EPERM, fg_zone_add_raw(&self->fg, &za));
		za.regions[0].size = 2 * PAGE;
		EXPECT_ERR(EPERM, fg_zone_add_raw(&self->fg, &za));
	}
	/* the last page of the window is fine */
	zreq(&self->fg, &za, ZONE_A, size - PAGE, GUEST_RAM, PAGE);
	EXPECT_ERR(0, fg_zone_add_raw(&self->fg, &za));
	EXPECT_ERR(0, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, zone_add_overlaps_other_zone)
{
	/* A host range overlapping another zone's region is refused with EBUSY; disjoint host RAM at the same guest address is fine. */
	struct hvio_zone_add za;

	NEED_SETUP();
	EXPECT_ERR(0, add_zone(&self->fg, ZONE_A, 0));
	zreq(&self->fg, &za, ZONE_B, MIB / 2, GUEST_RAM, MIB);
	EXPECT_ERR(EBUSY, fg_zone_add_raw(&self->fg, &za));
	zreq(&self->fg, &za, ZONE_B, MIB - PAGE, GUEST_RAM, PAGE);
	EXPECT_ERR(EBUSY, fg_zone_add_raw(&self->fg, &za));
	/* second region of zone B overlaps zone A */
	zreq(&self->fg, &za, ZONE_B, 2 * MIB, GUEST_RAM, PAGE);
	za.nr_regions = 2;
	za.regions[1].zone0_ipa = self->fg.info.ram_base;
	za.regions[1].zonex_ipa = GUEST_RAM + MIB;
	za.regions[1].size = PAGE;
	EXPECT_ERR(EBUSY, fg_zone_add_raw(&self->fg, &za));
	EXPECT_ERR(ENOENT, fg_zone_del(&self->fg, ZONE_B));

	EXPECT_ERR(0, add_zone(&self->fg, ZONE_B, MIB));
	EXPECT_ERR(0, fg_zone_del(&self->fg, ZONE_B));
	EXPECT_ERR(0, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, zone_add_max_zones)
{
	/* 32 zones can be registered; the 33rd fails with ENOSPC until one is deleted. */
	struct hvio_zone_add za;
	struct hvio_stats st;
	uint32_t id;

	NEED_SETUP();
	for (id = 1; id <= HVIO_MAX_ZONES; id++) {
		zreq(&self->fg, &za, id, id * PAGE, GUEST_RAM, PAGE);
		EXPECT_ERR(0, fg_zone_add_raw(&self->fg, &za));
	}
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(HVIO_MAX_ZONES, st.zones);
	zreq(&self->fg, &za, HVIO_MAX_ZONES + 1, (HVIO_MAX_ZONES + 1) * PAGE,
	     GUEST_RAM, PAGE);
	EXPECT_ERR(ENOSPC, fg_zone_add_raw(&self->fg, &za));
	EXPECT_ERR(0, fg_zone_del(&self->fg, 7));
	EXPECT_ERR(0, fg_zone_add_raw(&self->fg, &za));
	for (id = 1; id <= HVIO_MAX_ZONES + 1; id++) {
		if (id != 7) {
			EXPECT_ERR(0, fg_zone_del(&self->fg, id));
		}
	}
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.zones);
}

TEST_F(abi, zone_del_errors)
{
	/* ZONE_DEL: unknown zone ENOENT, reserved non-zero EINVAL, zone with a device EBUSY, and success once the device fd is closed. */
	struct hvio_zone_del zd = { .zone_id = ZONE_A, .reserved = 1 };
	struct hvio_dev_create c;
	int fd;

	NEED_SETUP();
	EXPECT_ERR(ENOENT, fg_zone_del(&self->fg, 42));
	EXPECT_ERR(ENOENT, fg_zone_del(&self->fg, 0));
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	EXPECT_ERR(EINVAL, sys_ret(ioctl(self->fg.ctl_fd, HVIO_ZONE_DEL, &zd)));
	dreq(self, &c, ZONE_A, 0);
	fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd) TH_LOG("create: %s", errname(fd));
	EXPECT_ERR(EBUSY, fg_zone_del(&self->fg, ZONE_A));
	close(fd);
	EXPECT_ERR(0, fg_zone_del(&self->fg, ZONE_A));
	EXPECT_ERR(ENOENT, fg_zone_del(&self->fg, ZONE_A));
}

TEST_F(abi, stats_count_objects)
{
	/* HVIO_GET_STATS counts live zones and devices, and its reserved words are zero. */
	struct hvio_dev_create c;
	struct hvio_stats st;
	int fd1, fd2;

	NEED_SETUP();
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.zones);
	EXPECT_EQ(0, st.devs);
	EXPECT_EQ(0, st.orphans | st.reserved[0] | st.reserved[1]);
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_B, MIB));
	dreq(self, &c, ZONE_A, 0);
	fd1 = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd1);
	dreq(self, &c, ZONE_B, 0);
	fd2 = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(2, st.zones);
	EXPECT_EQ(2, st.devs);
	close(fd1);
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(1, st.devs);
	close(fd2);
	EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_B));
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.zones);
	EXPECT_EQ(0, st.devs);
}

TEST_F(abi, dev_create_unknown_zone)
{
	/* DEV_CREATE in a zone that is not registered fails with ENOENT. */
	struct hvio_dev_create c;

	NEED_SETUP();
	dreq(self, &c, ZONE_A, 0);
	EXPECT_CREATE_ERR(ENOENT, &c);
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_B, 0);
	EXPECT_CREATE_ERR(ENOENT, &c);
	dreq(self, &c, ZONE_A, 0);
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_bad_device_id)
{
	/* device_id 0 and > 63 are refused with EINVAL; 1 and 63 are accepted. */
	struct hvio_dev_create c;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	c.device_id = 0;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.device_id = 64;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.device_id = 0xffffffff;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.device_id = 1;
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 1);
	c.device_id = 63;
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_bad_window)
{
	/* MMIO windows that are misaligned, empty, not a multiple of 0x200, longer than 0x10000, beyond 2^52 or overlapping zone RAM are refused with EINVAL. */
	struct hvio_dev_create c;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	c.mmio_base += 0x100;
	EXPECT_CREATE_ERR(EINVAL, &c);
	dreq(self, &c, ZONE_A, 0);
	c.mmio_base += 4;
	EXPECT_CREATE_ERR(EINVAL, &c);
	dreq(self, &c, ZONE_A, 0);
	c.mmio_len = 0;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_len = 0x300;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_len = 0x100;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_len = HVIO_MMIO_MAX_LEN + HVIO_MMIO_ALIGN;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_len = 1ULL << 32;
	EXPECT_CREATE_ERR(EINVAL, &c);
	/* beyond 2^52 */
	dreq(self, &c, ZONE_A, 0);
	c.mmio_base = HVIO_IPA_LIMIT;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_base = HVIO_IPA_LIMIT - HVIO_MMIO_ALIGN;
	c.mmio_len = 2 * HVIO_MMIO_ALIGN;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_base = 0ULL - HVIO_MMIO_ALIGN;
	c.mmio_len = HVIO_MMIO_ALIGN;
	EXPECT_CREATE_ERR(EINVAL, &c);
	/* overlapping the zone's RAM: inside, straddling its start and end */
	dreq(self, &c, ZONE_A, 0);
	c.mmio_base = GUEST_RAM + 0x1000;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_base = GUEST_RAM - HVIO_MMIO_ALIGN;
	c.mmio_len = 2 * HVIO_MMIO_ALIGN;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_base = GUEST_RAM + MIB - HVIO_MMIO_ALIGN;
	EXPECT_CREATE_ERR(EINVAL, &c);

	/* the limits themselves are fine */
	dreq(self, &c, ZONE_A, 0);
	c.mmio_len = HVIO_MMIO_MAX_LEN;
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 0);
	c.mmio_base = HVIO_IPA_LIMIT - HVIO_MMIO_ALIGN;
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 0);
	c.mmio_base = GUEST_RAM + MIB;	/* right after the RAM */
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 0);
	c.mmio_base = GUEST_RAM - HVIO_MMIO_ALIGN;	/* right before it */
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_window_overlap)
{
	/* A window overlapping another device's of the same zone fails with EBUSY; adjacent windows and the same window in another zone are fine. */
	struct hvio_dev_create c;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_B, MIB));
	dreq(self, &c, ZONE_A, 2);
	c.mmio_len = 2 * HVIO_MMIO_ALIGN;		/* slots 2..3 */
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 2);
	EXPECT_CREATE_ERR(EBUSY, &c);
	dreq(self, &c, ZONE_A, 3);
	EXPECT_CREATE_ERR(EBUSY, &c);
	dreq(self, &c, ZONE_A, 1);
	c.mmio_len = 2 * HVIO_MMIO_ALIGN;		/* slots 1..2 */
	EXPECT_CREATE_ERR(EBUSY, &c);
	dreq(self, &c, ZONE_A, 0);
	c.mmio_len = 8 * HVIO_MMIO_ALIGN;		/* covers it */
	EXPECT_CREATE_ERR(EBUSY, &c);
	dreq(self, &c, ZONE_A, 1);
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 4);
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_B, 2);
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_bad_irq)
{
	/* irq 0 and > 1019 are refused with EINVAL; 1 and 1019 are accepted. */
	struct hvio_dev_create c;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	c.irq = 0;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.irq = HVIO_MAX_IRQ + 1;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.irq = 0xffffffff;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.irq = HVIO_MAX_IRQ;
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 1);
	c.irq = 1;
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_bad_queues)
{
	/* num_queues 0 and > 16 are refused with EINVAL; 16 is accepted. */
	struct hvio_dev_create c;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	c.num_queues = 0;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.num_queues = HVIO_MAX_QUEUES + 1;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.num_queues = 0xffff;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.num_queues = HVIO_MAX_QUEUES;
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 1);
	c.num_queues = 1;
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_bad_queue_size)
{
	/* queue_size_max not a power of two in 2..32768 is refused with EINVAL; 2 and 32768 are accepted. */
	static const uint32_t bad[] = { 0, 1, 3, 24, 255, 32767, 65536,
					0x80000000, 0xffffffff };
	struct hvio_dev_create c;
	unsigned int i;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		dreq(self, &c, ZONE_A, 0);
		c.queue_size_max = bad[i];
		EXPECT_CREATE_ERR(EINVAL, &c);
	}
	dreq(self, &c, ZONE_A, 0);
	c.queue_size_max = 2;
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 1);
	c.queue_size_max = HVIO_MAX_QUEUE_SIZE;
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_bad_config_len)
{
	/* config_len > 256 is refused with EINVAL; 0 and 256 are accepted. */
	struct hvio_dev_create c;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	c.config_len = HVIO_MAX_CONFIG_LEN + 1;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.mmio_len = 4 * HVIO_MMIO_ALIGN;	/* the window is not the limit */
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.config_len = 0x10000;
	EXPECT_CREATE_ERR(EINVAL, &c);
	dreq(self, &c, ZONE_A, 0);
	c.config_len = HVIO_MAX_CONFIG_LEN;
	EXPECT_CREATE_OK(&c);
	dreq(self, &c, ZONE_A, 1);
	c.config_len = 0;
	c.config_addr = 0;
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_needs_version_1)
{
	/* Offered features without VIRTIO_F_VERSION_1 are refused with EINVAL. */
	struct hvio_dev_create c;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	c.features = 0;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.features = 0xffffffffULL;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.features = ~FG_F_VERSION_1;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.features = FG_F_VERSION_1;
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_reserved_and_flags)
{
	/* Unknown flags, reserved0, reserved1 or reserved[] of hvio_dev_create are refused with EINVAL. */
	struct hvio_dev_create c;
	int i;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	c.flags = 2;
	EXPECT_CREATE_ERR(EINVAL, &c);
	c.flags = 1U << 31;
	EXPECT_CREATE_ERR(EINVAL, &c);
	dreq(self, &c, ZONE_A, 0);
	c.reserved0 = 1;
	EXPECT_CREATE_ERR(EINVAL, &c);
	dreq(self, &c, ZONE_A, 0);
	c.reserved1 = 1;
	EXPECT_CREATE_ERR(EINVAL, &c);
	for (i = 0; i < 4; i++) {
		dreq(self, &c, ZONE_A, 0);
		c.reserved[i] = 1ULL << (16 * i);
		EXPECT_CREATE_ERR(EINVAL, &c);
	}
	dreq(self, &c, ZONE_A, 0);
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_bad_config_pointer)
{
	/* An unreadable config_addr fails with EFAULT and creates nothing. */
	struct hvio_dev_create c;
	struct hvio_stats st;
	void *hole;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	hole = mmap(NULL, PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	dreq(self, &c, ZONE_A, 0);
	c.config_addr = (uintptr_t)hole;
	EXPECT_CREATE_ERR(EFAULT, &c);
	c.config_addr = 8;
	EXPECT_CREATE_ERR(EFAULT, &c);
	c.config_addr = (uintptr_t)self->cfg;	/* the window is still free */
	munmap(hole, PAGE);
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.devs);
	EXPECT_CREATE_OK(&c);
}

TEST_F(abi, dev_create_fd_and_info)
{
	/* DEV_CREATE returns an O_CLOEXEC fd whose HVIO_DEV_GET_INFO reflects the request, with the device not yet touched by a driver. */
	struct hvio_dev_create c;
	struct hvio_dev_info info;
	int fd, i;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	fg_dev_init(&c, ZONE_A, 2, MMIO_BASE + 0x1000, 77, 3, 128,
		    FG_F_VERSION_1 | (1ULL << 29) | (1ULL << 6), self->cfg, CFG_LEN);
	c.mmio_len = 0x400;
	fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd) TH_LOG("create: %s", errname(fd));
	self->devs[self->ndevs++] = fd;
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);

	memset(&info, 0xff, sizeof(info));
	ASSERT_EQ(0, fg_dev_info(fd, &info));
	EXPECT_EQ(ZONE_A, info.zone_id);
	EXPECT_EQ(2, info.device_id);
	EXPECT_EQX(MMIO_BASE + 0x1000, info.mmio_base);
	EXPECT_EQX(0x400, info.mmio_len);
	EXPECT_EQ(77, info.irq);
	EXPECT_EQ(3, info.num_queues);
	EXPECT_EQ(128, info.queue_size_max);
	EXPECT_EQ(0, info.status);
	EXPECT_EQX(c.features, info.device_features);
	EXPECT_EQX(0, info.driver_features);
	EXPECT_EQ(0, info.interrupt_status);
	EXPECT_EQ(0, info.reserved0);
	EXPECT_EQ(0, info.reserved1);
	for (i = 0; i < HVIO_MAX_QUEUES; i++) {
		EXPECT_EQ(0, info.queues[i].num);
		EXPECT_EQ(0, info.queues[i].ready);
		EXPECT_EQ(0, info.queues[i].desc | info.queues[i].driver |
			     info.queues[i].device);
	}
}

TEST_F(abi, dev_create_max_devs)
{
	/* 64 devices can exist; the 65th fails with ENOSPC until one is closed. */
	struct hvio_dev_create c;
	unsigned int i;
	int fd;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_B, MIB));
	for (i = 0; i < HVIO_MAX_DEVS; i++) {
		/* spread over two zones: the limit is global */
		dreq(self, &c, i % 2 ? ZONE_B : ZONE_A, i);
		fd = fg_dev_create(&self->fg, &c);
		ASSERT_LE(0, fd) TH_LOG("device %u: %s", i, errname(fd));
		self->devs[self->ndevs++] = fd;
	}
	dreq(self, &c, ZONE_A, HVIO_MAX_DEVS);
	EXPECT_CREATE_ERR(ENOSPC, &c);
	close(self->devs[5]);
	self->devs[5] = -1;
	EXPECT_CREATE_OK(&c);
	close_devs(self);
}

TEST_F(abi, unknown_ioctl)
{
	/* Unknown ioctls, and ioctls meant for another kind of fd, fail with ENOTTY on /dev/hvio, device fds and /dev/hvio-sim. */
	struct hvio_dev_create c;
	char buf[4096] = { 0 };
	int fd;

	NEED_SETUP();
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(self->fg.ctl_fd, _IO(HVIO_IOC_MAGIC, 0x3f), 0)));
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(self->fg.ctl_fd, _IO('x', 0), 0)));
	/* the right number with a different size is a different ioctl */
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(self->fg.ctl_fd,
					 _IOR(HVIO_IOC_MAGIC, 0x00, __u64), buf)));
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(self->fg.ctl_fd, HVIO_DEV_GET_INFO, buf)));
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(self->fg.ctl_fd, HVIO_SIM_GET_INFO, buf)));

	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd);
	self->devs[self->ndevs++] = fd;
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(fd, _IO(HVIO_IOC_MAGIC, 0x1f), 0)));
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(fd, HVIO_GET_VERSION, buf)));
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(fd, HVIO_DEV_CREATE, &c)));
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(fd, HVIO_SIM_RAISE_IRQ, 0)));

	EXPECT_ERR(ENOTTY, sys_ret(ioctl(self->fg.sim_fd, _IO(HVIO_IOC_MAGIC, 0x4f), 0)));
	EXPECT_ERR(ENOTTY, sys_ret(ioctl(self->fg.sim_fd, HVIO_GET_STATS, buf)));
}

TEST_F(abi, bad_user_pointers)
{
	/* Every ioctl given an unmapped argument pointer fails with EFAULT. */
	void *bad = (void *)8;
	struct hvio_dev_create c;
	int fd;

	NEED_SETUP();
	EXPECT_ERR(EFAULT, sys_ret(ioctl(self->fg.ctl_fd, HVIO_GET_VERSION, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(self->fg.ctl_fd, HVIO_ZONE_ADD, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(self->fg.ctl_fd, HVIO_ZONE_DEL, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(self->fg.ctl_fd, HVIO_DEV_CREATE, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(self->fg.ctl_fd, HVIO_GET_STATS, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(self->fg.sim_fd, HVIO_SIM_GET_INFO, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(self->fg.sim_fd, HVIO_SIM_SET_FINISH_FD, bad)));

	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);
	fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd);
	self->devs[self->ndevs++] = fd;
	EXPECT_ERR(EFAULT, sys_ret(ioctl(fd, HVIO_DEV_GET_INFO, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(fd, HVIO_DEV_GET_STATS, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(fd, HVIO_DEV_GET_EVENTS, bad)));
	EXPECT_ERR(EFAULT, sys_ret(ioctl(fd, HVIO_DEV_SET_CONFIG, bad)));
}

TEST_F(abi, mmap_zone_ram)
{
	/* mmap of a device fd at a region's zonex_ipa maps exactly that region's host RAM: bytes written through it appear in the sim_ram window at zone0_ipa and vice versa. */
	struct hvio_zone_add za;
	struct hvio_dev_create c;
	uint8_t *m0, *m1, *win = self->fg.ram;
	int fd;

	NEED_SETUP();
	/* region 0: guest GUEST_RAM <- host +0; region 1: guest +1M <- host +3M */
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, MIB);
	za.nr_regions = 2;
	za.regions[1].zone0_ipa = self->fg.info.ram_base + 3 * MIB;
	za.regions[1].zonex_ipa = GUEST_RAM + MIB;
	za.regions[1].size = MIB;
	ASSERT_EQ(0, fg_zone_add_raw(&self->fg, &za));
	dreq(self, &c, ZONE_A, 0);
	fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd);
	self->devs[self->ndevs++] = fd;

	m0 = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, GUEST_RAM);
	ASSERT_NE(MAP_FAILED, m0) TH_LOG("mmap region 0: %s", strerror(errno));
	m1 = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, GUEST_RAM + MIB);
	ASSERT_NE(MAP_FAILED, m1) TH_LOG("mmap region 1: %s", strerror(errno));

	memcpy(m0, "hvio-region-0", 14);
	memcpy(m0 + MIB - 8, "tail-0!", 8);
	memcpy(m1 + 0x2345, "hvio-region-1", 14);
	EXPECT_EQ(0, memcmp(win, "hvio-region-0", 14));
	EXPECT_EQ(0, memcmp(win + MIB - 8, "tail-0!", 8));
	EXPECT_EQ(0, memcmp(win + 3 * MIB + 0x2345, "hvio-region-1", 14));
	memcpy(win + 0x1000, "from-the-window", 16);
	memcpy(win + 3 * MIB + 0xff000, "from-window-1", 14);
	EXPECT_EQ(0, memcmp(m0 + 0x1000, "from-the-window", 16));
	EXPECT_EQ(0, memcmp(m1 + 0xff000, "from-window-1", 14));
	munmap(m0, MIB);
	munmap(m1, MIB);

	/* a mapping smaller than the region, at its start, is fine too */
	m0 = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, GUEST_RAM);
	EXPECT_NE(MAP_FAILED, m0) TH_LOG("mmap one page: %s", strerror(errno));
	if (m0 != MAP_FAILED) {
		EXPECT_EQ(0, memcmp(m0, "hvio-region-0", 14));
		munmap(m0, PAGE);
	}
	/* the mapping survives closing the fd */
	m0 = mmap(NULL, MIB, PROT_READ, MAP_SHARED, fd, GUEST_RAM);
	ASSERT_NE(MAP_FAILED, m0);
	close(fd);
	self->devs[--self->ndevs] = -1;
	EXPECT_EQ(0, memcmp(m0 + 0x1000, "from-the-window", 16));
	munmap(m0, MIB);
}

TEST_F(abi, mmap_refused)
{
	/* mmap outside zone RAM, straddling a region's end (even into an adjacent region), or MAP_PRIVATE is refused with EINVAL. */
	struct hvio_zone_add za;
	struct hvio_dev_create c;
	void *m;
	int fd;

	NEED_SETUP();
	zreq(&self->fg, &za, ZONE_A, 0, GUEST_RAM, MIB);
	za.nr_regions = 2;
	za.regions[1].zone0_ipa = self->fg.info.ram_base + 3 * MIB;
	za.regions[1].zonex_ipa = GUEST_RAM + MIB;	/* guest-contiguous */
	za.regions[1].size = MIB;
	ASSERT_EQ(0, fg_zone_add_raw(&self->fg, &za));
	dreq(self, &c, ZONE_A, 0);
	fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd);
	self->devs[self->ndevs++] = fd;

#define EXPECT_MMAP_EINVAL(_len, _flags, _off) do {			\
	m = mmap(NULL, (_len), PROT_READ | PROT_WRITE, (_flags), fd, (_off)); \
	EXPECT_EQ(MAP_FAILED, m)					\
		TH_LOG("mmap len %#llx off %#llx succeeded",		\
		       (unsigned long long)(_len), (unsigned long long)(_off)); \
	if (m != MAP_FAILED) {						\
		munmap(m, (_len));					\
	} else {							\
		int __e = errno;					\
		EXPECT_EQ(EINVAL, __e)					\
			TH_LOG("mmap len %#llx off %#llx: %s",		\
			       (unsigned long long)(_len),		\
			       (unsigned long long)(_off), strerror(__e)); \
	}								\
} while (0)

	EXPECT_MMAP_EINVAL(PAGE, MAP_SHARED, 0);
	EXPECT_MMAP_EINVAL(PAGE, MAP_SHARED, GUEST_RAM - PAGE);
	EXPECT_MMAP_EINVAL(PAGE, MAP_SHARED, GUEST_RAM + 2 * MIB);
	EXPECT_MMAP_EINVAL(PAGE, MAP_SHARED, MMIO_BASE & ~(PAGE - 1));
	if (self->fg.info.ram_base + PAGE <= GUEST_RAM ||
	    self->fg.info.ram_base >= GUEST_RAM + 2 * MIB)
		EXPECT_MMAP_EINVAL(PAGE, MAP_SHARED, self->fg.info.ram_base);
	EXPECT_MMAP_EINVAL(2 * PAGE, MAP_SHARED, GUEST_RAM - PAGE);
	/* spans region 0 into region 1: not one region */
	EXPECT_MMAP_EINVAL(2 * MIB, MAP_SHARED, GUEST_RAM);
	EXPECT_MMAP_EINVAL(MIB + PAGE, MAP_SHARED, GUEST_RAM);
	/* past the end of region 1, nothing after it */
	EXPECT_MMAP_EINVAL(MIB + PAGE, MAP_SHARED, GUEST_RAM + MIB);
	EXPECT_MMAP_EINVAL(PAGE, MAP_PRIVATE, GUEST_RAM);
	EXPECT_MMAP_EINVAL(MIB, MAP_PRIVATE, GUEST_RAM + MIB);
#undef EXPECT_MMAP_EINVAL
}

TEST_F(abi, set_config_checks)
{
	/* HVIO_DEV_SET_CONFIG refuses ranges leaving config space, len 0, unknown flags and reserved bits (EINVAL) and a bad buffer (EFAULT) without touching config_generation; each valid call advances it. */
	struct hvio_dev_config dc;
	struct hvio_dev_create c;
	struct hvio_dev_info a, b;
	uint8_t buf[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	int fd;

	NEED_SETUP();
	ASSERT_EQ(0, add_zone(&self->fg, ZONE_A, 0));
	dreq(self, &c, ZONE_A, 0);		/* config_len 16 */
	fd = fg_dev_create(&self->fg, &c);
	ASSERT_LE(0, fd);
	self->devs[self->ndevs++] = fd;
	ASSERT_EQ(0, fg_dev_info(fd, &a));

	EXPECT_ERR(EINVAL, fg_dev_set_config(fd, CFG_LEN, buf, 1, 0));
	EXPECT_ERR(EINVAL, fg_dev_set_config(fd, 8, buf, 9, 0));
	EXPECT_ERR(EINVAL, fg_dev_set_config(fd, 0, buf, CFG_LEN + 1, 0));
	EXPECT_ERR(EINVAL, fg_dev_set_config(fd, 0, buf, 0, 0));
	EXPECT_ERR(EINVAL, fg_dev_set_config(fd, 0xffffffff, buf, 2, 0));
	EXPECT_ERR(EINVAL, fg_dev_set_config(fd, 4, buf, 0xfffffffe, 0));
	EXPECT_ERR(EINVAL, fg_dev_set_config(fd, 0, buf, 4, 1U << 1));
	EXPECT_ERR(EINVAL, fg_dev_set_config(fd, 0, buf, 4, 1U << 31));
	memset(&dc, 0, sizeof(dc));
	dc.offset = 0;
	dc.len = 4;
	dc.addr = (uintptr_t)buf;
	dc.reserved = 1;
	EXPECT_ERR(EINVAL, sys_ret(ioctl(fd, HVIO_DEV_SET_CONFIG, &dc)));
	EXPECT_ERR(EFAULT, fg_dev_set_config(fd, 0, (void *)8, 4, 0));
	ASSERT_EQ(0, fg_dev_info(fd, &b));
	EXPECT_EQ(a.config_generation, b.config_generation)
		TH_LOG("a refused SET_CONFIG changed the config generation");

	EXPECT_ERR(0, fg_dev_set_config(fd, 8, buf, 8, 0));
	ASSERT_EQ(0, fg_dev_info(fd, &b));
	EXPECT_NE(a.config_generation, b.config_generation);
	EXPECT_ERR(0, fg_dev_set_config(fd, CFG_LEN - 1, buf, 1, 0));
	ASSERT_EQ(0, fg_dev_info(fd, &a));
	EXPECT_NE(b.config_generation, a.config_generation);
}

TEST_HARNESS_MAIN
