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

#include <ctype.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#define PAGE		4096ULL
#define MAX_RANGES	8

FIXTURE(policy) {
	struct fg fg;
	bool skip;
	bool locked;			/* fg never opened */
};

/* Is the kernel locked down (zone_ram_refused_under_lockdown ran)? */
static bool locked_down(void)
{
	char buf[128] = "";
	ssize_t n;
	int fd;

	fd = open("/sys/kernel/security/lockdown", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 && !strstr(buf, "[none]");
}

FIXTURE_SETUP(policy)
{
	if (locked_down()) {
		self->skip = self->locked = true;
		SKIP(return, "kernel locked down: no zone RAM at all");
	}
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
}

FIXTURE_TEARDOWN(policy)
{
	if (!self->locked)
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

/* ---- zone RAM on device ranges (module reloads) ----------------------- */

struct range {
	uint64_t start;			/* page aligned */
	char what[64];
};

static bool have_range(const struct range *r, int n, uint64_t start)
{
	int i;

	for (i = 0; i < n; i++)
		if (r[i].start == start)
			return true;
	return false;
}

static int add_range(struct range *r, int n, uint64_t start, const char *what)
{
	start &= ~(PAGE - 1);
	if (!start || n >= MAX_RANGES || have_range(r, n, start))
		return n;
	r[n].start = start;
	snprintf(r[n].what, sizeof(r[n].what), "%s", what);
	return n + 1;
}

/*
 * Busy device ranges from /proc/iomem: HPET, IOAPIC and PCI functions'
 * BARs on x86_64, the PL031 RTC and virtio-mmio windows on arm64.
 */
static int iomem_ranges(struct range *r, int n)
{
	static const char *const names[] = {
		"HPET", "IOAPIC", "pl031", "virtio", "0000:", "GIC", "gic",
	};
	unsigned long long s, e;
	char line[256], *name;
	unsigned int i;
	FILE *f;

	f = fopen("/proc/iomem", "r");
	if (!f)
		return n;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %llx-%llx :", &s, &e) != 2)
			continue;
		name = strstr(line, " : ");
		if (!name)
			continue;
		name += 3;
		name[strcspn(name, "\n")] = 0;
		for (i = 0; i < ARRAY_SIZE(names); i++)
			if (!strncmp(name, names[i], strlen(names[i])))
				n = add_range(r, n, s, name);
	}
	fclose(f);
	return n;
}

/*
 * Device-tree devices at the top level (arm64): the GIC distributor is
 * mapped by its driver without a /proc/iomem entry.  The unit address of
 * a node is its first reg address on QEMU's virt machine.
 */
static int dt_ranges(struct range *r, int n)
{
	static const char *const names[] = { "intc@", "pl031@", "virtio_mmio@" };
	unsigned long long a;
	struct dirent *d;
	unsigned int i;
	char *at;
	DIR *dir;

	dir = opendir("/proc/device-tree");
	if (!dir)
		return n;
	while ((d = readdir(dir))) {
		for (i = 0; i < ARRAY_SIZE(names); i++) {
			if (strncmp(d->d_name, names[i], strlen(names[i])))
				continue;
			at = strchr(d->d_name, '@');
			if (sscanf(at + 1, "%llx", &a) == 1)
				n = add_range(r, n, a, d->d_name);
		}
	}
	closedir(dir);
	return n;
}

static int load(const char *params)
{
	const char *ko = getenv("HVIO_KO");
	int fd, r;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = syscall(__NR_finit_module, fd, params, 0) ? -errno : 0;
	close(fd);
	if (!r && !fg_wait_path(FG_DEV_CTL, true, 2000))
		r = -ENODEV;
	return r;
}

static int unload(void)
{
	uint64_t deadline = fg_now_ms() + 2000;
	int r;

	while (fg_rmmod_refused(r = fg_rmmod()) && fg_now_ms() < deadline)
		fg_sleep_ms(20);
	return r;
}

/* HVIO_ZONE_ADD of one page at host physical @phys; 0 or -errno. */
static int zone_add_phys(uint64_t phys)
{
	struct hvio_zone_add za;
	struct hvio_zone_del zd;
	int fd, r;

	fd = open(FG_DEV_CTL, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(&za, 0, sizeof(za));
	za.zone_id = ZONE_A;
	za.nr_regions = 1;
	za.regions[0].zone0_ipa = phys;
	za.regions[0].zonex_ipa = GUEST_RAM;
	za.regions[0].size = PAGE;
	r = ioctl(fd, HVIO_ZONE_ADD, &za) ? -errno : 0;
	if (r >= 0) {
		memset(&zd, 0, sizeof(zd));
		zd.zone_id = ZONE_A;
		ioctl(fd, HVIO_ZONE_DEL, &zd);
	}
	close(fd);
	return r;
}

TEST(zone_ram_on_device_ranges_refused)
{
	/* With sim_ram moved onto a busy device range (HPET, IOAPIC, PCI BAR; GIC, PL031, virtio-mmio), HVIO_ZONE_ADD of it fails with EPERM; the module then reloads with its own window. */
	const char *params = getenv("HVIO_PARAMS");
	const char *ko = getenv("HVIO_KO");
	struct fg_zone z = { .id = ZONE_A, .zonex_ipa = GUEST_RAM };
	struct range r[MAX_RANGES];
	struct fg fg;
	char p[128];
	int n = 0, i, ret;

	if (access("/sys/module/hvio", F_OK))
		SKIP(return, "hvio.ko is not loaded");
	if (!ko || !*ko || !params || !strstr(params, "hypervisor=sim"))
		SKIP(return, "HVIO_KO/HVIO_PARAMS (sim) unset: cannot reload");
	n = iomem_ranges(r, n);
	n = dt_ranges(r, n);
	if (!n)
		SKIP(return, "no device range found in /proc/iomem or the device tree");

	for (i = 0; i < n; i++) {
		ret = unload();
		ASSERT_EQ(0, ret) TH_LOG("delete_module: %s", errname(ret));
		snprintf(p, sizeof(p), "hypervisor=sim sim_ram=4K@%#llx",
			 (unsigned long long)r[i].start);
		ret = load(p);
		if (ret) {
			/* the sim refuses the window itself: nothing to test */
			TH_LOG("%s: insmod %s: %s", r[i].what, p, errname(ret));
			continue;
		}
		ret = zone_add_phys(r[i].start);
		TH_LOG("%#llx (%s): HVIO_ZONE_ADD %s",
		       (unsigned long long)r[i].start, r[i].what, errname(ret));
		EXPECT_EQ(-EPERM, ret) TH_LOG("%s at %#llx accepted as zone RAM",
					      r[i].what,
					      (unsigned long long)r[i].start);
	}

	/* Back to the runner's module, whose own window still works. */
	if (access("/sys/module/hvio", F_OK) == 0) {
		ret = unload();
		ASSERT_EQ(0, ret) TH_LOG("delete_module: %s", errname(ret));
	}
	ret = load(params);
	ASSERT_EQ(0, ret) TH_LOG("insmod %s %s: %s", ko, params, errname(ret));
	ret = fg_open(&fg);
	ASSERT_EQ(0, ret) TH_LOG("%s", fg.err);
	z.size = fg.info.ram_size;
	EXPECT_EQ(0, fg_zone_add(&fg, &z)) TH_LOG("the sim_ram window itself");
	EXPECT_EQ(0, fg_zone_del(&fg, ZONE_A));
	fg_close(&fg);
}

TEST(zone_ram_refused_under_lockdown)
{
	/* Under kernel lockdown (integrity, which closes /dev/mem) HVIO_ZONE_ADD refuses even the sim_ram window with EPERM.  Lockdown cannot be lifted: opt in with HVIO_TEST_LOCKDOWN=1, in a VM of its own. */
	const char *path = "/sys/kernel/security/lockdown";
	struct fg_zone z = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = PAGE };
	struct fg fg;
	int fd, r;

	if (!getenv("HVIO_TEST_LOCKDOWN"))
		SKIP(return, "irreversible: set HVIO_TEST_LOCKDOWN=1 (scripts/vm-run --env) to run");
	if (access(path, F_OK))
		mount("securityfs", "/sys/kernel/security", "securityfs", 0, NULL);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		SKIP(return, "%s: %s (no lockdown LSM)", path, strerror(errno));
	r = write(fd, "integrity", 9) == 9 ? 0 : -errno;
	close(fd);
	ASSERT_EQ(0, r) TH_LOG("lockdown: %s", errname(r));
	r = fg_open(&fg);
	if (r == -ENOENT)
		SKIP(return, "%s", fg.err);
	ASSERT_EQ(0, r) TH_LOG("%s", fg.err);
	r = fg_zone_add(&fg, &z);
	EXPECT_EQ(-EPERM, r) TH_LOG("zone RAM under lockdown: %s", errname(r));
	if (r >= 0)
		fg_zone_del(&fg, ZONE_A);
	fg_close(&fg);
}

TEST_HARNESS_MAIN
