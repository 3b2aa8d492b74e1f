// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_unload: module lifetime.  Every open file of the module (/dev/hvio,
 * /dev/hvio-sim, a device fd, a zone RAM mapping) pins it: rmmod is
 * refused.  With everything closed it unloads, its nodes disappear, and it
 * loads again (from $HVIO_KO with $HVIO_PARAMS) in working order, so the
 * programs run after this one still find it.
 *
 * The fixture holds nothing open (it would pin the module); every test
 * leaves the module loaded.
 */
#include "hvio_test.h"

#include <pthread.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#define MOD_SYSFS	"/sys/module/hvio"

FIXTURE(unload) {
	bool skip;
};

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static bool module_loaded(void)
{
	return exists(MOD_SYSFS);
}

/* Unload, retrying briefly: releases of just-closed files may be deferred. */
static int rmmod_retry(unsigned int timeout_ms)
{
	uint64_t deadline = fg_now_ms() + timeout_ms;
	int r;

	while (fg_rmmod_refused(r = fg_rmmod()) && fg_now_ms() < deadline)
		fg_sleep_ms(20);
	return r;
}

static bool reload_configured(void)
{
	const char *ko = getenv("HVIO_KO");

	return ko && *ko && getenv("HVIO_PARAMS");
}

FIXTURE_SETUP(unload)
{
	if (!module_loaded()) {
		if (!getenv("HVIO_KO")) {
			self->skip = true;
			SKIP(return, "hvio.ko is not loaded");
		}
		ASSERT_TRUE(module_loaded()) TH_LOG("HVIO_KO is set but hvio is not loaded");
	}
	ASSERT_TRUE(fg_wait_path(FG_DEV_CTL, true, 2000)) TH_LOG("no %s", FG_DEV_CTL);
}

FIXTURE_TEARDOWN(unload)
{
	/* whatever happened, leave the module loaded for the next program */
	if (!self->skip && !module_loaded()) {
		int r = fg_insmod();

		EXPECT_EQ(0, r) TH_LOG("reloading %s: %s", getenv("HVIO_KO"),
				       r > 0 ? "HVIO_KO/HVIO_PARAMS unset" : errname(r));
		EXPECT_TRUE(fg_wait_path(FG_DEV_CTL, true, 2000));
	}
}

/* Register zone 1 and create one device; returns the device fd. */
static int make_device(struct fg *fg)
{
	struct fg_zone z = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = MIB };
	struct hvio_dev_create c;
	int r;

	fg_zone_sweep(fg);
	r = fg_zone_add(fg, &z);
	if (r)
		return r;
	fg_dev_init(&c, ZONE_A, 2, MMIO_BASE, 40, 1, 64, FG_F_VERSION_1, NULL, 0);
	return fg_dev_create(fg, &c);
}

TEST_F(unload, refused_while_ctl_open)
{
	/* With /dev/hvio open the module cannot be unloaded (EBUSY/EAGAIN) and stays fully present. */
	struct hvio_version v;
	int fd, r;

	NEED_SETUP();
	fd = open(FG_DEV_CTL, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("%s: %s", FG_DEV_CTL, strerror(errno));
	r = fg_rmmod();
	EXPECT_TRUE(fg_rmmod_refused(r)) TH_LOG("delete_module: %s", errname(r));
	EXPECT_TRUE(module_loaded());
	EXPECT_TRUE(exists(FG_DEV_CTL));
	EXPECT_EQ(0, ioctl(fd, HVIO_GET_VERSION, &v)) TH_LOG("%s", strerror(errno));
	close(fd);
}

TEST_F(unload, refused_while_sim_open)
{
	/* With /dev/hvio-sim open (the fake hypervisor attached) the module cannot be unloaded. */
	int fd, r;

	NEED_SETUP();
	fd = open(FG_DEV_SIM, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		SKIP(return, "hvio not loaded with hypervisor=sim");
	ASSERT_LE(0, fd) TH_LOG("%s: %s", FG_DEV_SIM, strerror(errno));
	r = fg_rmmod();
	EXPECT_TRUE(fg_rmmod_refused(r)) TH_LOG("delete_module: %s", errname(r));
	EXPECT_TRUE(module_loaded());
	close(fd);
}

TEST_F(unload, refused_while_device_fd_open)
{
	/* A device fd alone (control and sim fds closed) pins the module; the device keeps answering on the bridge. */
	struct fg fg;
	int dev, r;

	NEED_SETUP();
	r = fg_open(&fg);
	if (r == -ENOENT)
		SKIP(return, "%s", fg.err);
	ASSERT_EQ(0, r) TH_LOG("%s", fg.err);
	dev = make_device(&fg);
	ASSERT_LE(0, dev) TH_LOG("make_device: %s", errname(dev));
	fg_close(&fg);

	r = fg_rmmod();
	EXPECT_TRUE(fg_rmmod_refused(r)) TH_LOG("delete_module: %s", errname(r));
	EXPECT_TRUE(module_loaded());

	ASSERT_EQ(0, fg_open(&fg)) TH_LOG("%s", fg.err);
	EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&fg, 0, ZONE_A, MMIO_BASE));
	close(dev);
	EXPECT_EQ(0, fg_zone_del(&fg, ZONE_A));
	EXPECT_EQ(0, fg.errors) TH_LOG("%s", fg.err);
	fg_close(&fg);
}

TEST_F(unload, refused_while_ram_mapped)
{
	/* A zone RAM mapping of a closed device fd still pins the module until munmap. */
	struct fg fg;
	void *m;
	int dev, r;

	NEED_SETUP();
	r = fg_open(&fg);
	if (r == -ENOENT)
		SKIP(return, "%s", fg.err);
	ASSERT_EQ(0, r) TH_LOG("%s", fg.err);
	dev = make_device(&fg);
	ASSERT_LE(0, dev) TH_LOG("make_device: %s", errname(dev));
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dev, GUEST_RAM);
	ASSERT_NE(MAP_FAILED, m) TH_LOG("mmap: %s", strerror(errno));
	close(dev);
	fg_close(&fg);

	r = fg_rmmod();
	EXPECT_TRUE(fg_rmmod_refused(r)) TH_LOG("delete_module: %s", errname(r));
	EXPECT_TRUE(module_loaded());
	memset(m, 0x5a, 64);		/* still valid memory */
	munmap(m, 4096);

	ASSERT_EQ(0, fg_open(&fg)) TH_LOG("%s", fg.err);
	EXPECT_EQ(0, fg_zone_del(&fg, ZONE_A));
	fg_close(&fg);
}

TEST_F(unload, unload_and_reload)
{
	/* With nothing open the module unloads and its nodes vanish; reloaded from $HVIO_KO it works again end to end. */
	struct hvio_version v;
	struct fg fg;
	int r, dev;

	NEED_SETUP();
	if (!reload_configured())
		SKIP(return, "HVIO_KO/HVIO_PARAMS unset: cannot reload, not unloading");
	ASSERT_TRUE(exists(getenv("HVIO_KO"))) TH_LOG("HVIO_KO=%s", getenv("HVIO_KO"));

	r = rmmod_retry(2000);
	ASSERT_EQ(0, r) TH_LOG("delete_module: %s", errname(r));
	EXPECT_FALSE(module_loaded());
	EXPECT_TRUE(fg_wait_path(FG_DEV_CTL, false, 2000)) TH_LOG("%s still exists", FG_DEV_CTL);
	EXPECT_TRUE(fg_wait_path(FG_DEV_SIM, false, 2000)) TH_LOG("%s still exists", FG_DEV_SIM);
	EXPECT_FALSE(exists("/sys/class/misc/hvio"));

	r = fg_insmod();
	ASSERT_EQ(0, r) TH_LOG("finit_module(%s, \"%s\"): %s", getenv("HVIO_KO"),
			       getenv("HVIO_PARAMS"), errname(r));
	EXPECT_TRUE(module_loaded());
	ASSERT_TRUE(fg_wait_path(FG_DEV_CTL, true, 2000)) TH_LOG("no %s after reload", FG_DEV_CTL);

	r = fg_open(&fg);
	if (r == -ENOENT)
		SKIP(return, "reloaded without hypervisor=sim: %s", fg.err);
	ASSERT_EQ(0, r) TH_LOG("%s", fg.err);
	ASSERT_EQ(0, ioctl(fg.ctl_fd, HVIO_GET_VERSION, &v));
	EXPECT_EQ(HVIO_API_VERSION, v.api_version);
	EXPECT_EQ(HVIO_PROVIDER_SIM, v.provider);
	/* a fresh bridge: idle, empty, consumer asleep */
	EXPECT_EQ(fg.br->req_front, fg.br->req_rear);
	EXPECT_EQ(fg.br->res_front, fg.br->res_rear);
	EXPECT_EQ(1, fg.br->need_wakeup);
	dev = make_device(&fg);
	ASSERT_LE(0, dev) TH_LOG("make_device: %s", errname(dev));
	EXPECT_EQX(FG_MMIO_MAGIC, fg_read32(&fg, 0, ZONE_A, MMIO_BASE));
	EXPECT_EQ(2, fg_read32(&fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_DEVICE_ID));
	close(dev);
	EXPECT_EQ(0, fg_zone_del(&fg, ZONE_A));
	EXPECT_EQ(0, fg.errors) TH_LOG("%s", fg.err);
	fg_close(&fg);
}

TEST_F(unload, unload_with_zones_registered)
{
	/* Zones still registered (no fds open) do not pin the module: it unloads, frees them, and comes back with no zones. */
	struct hvio_stats st;
	struct fg fg;
	int r, dev;

	NEED_SETUP();
	if (!reload_configured())
		SKIP(return, "HVIO_KO/HVIO_PARAMS unset: cannot reload, not unloading");
	r = fg_open(&fg);
	if (r == -ENOENT)
		SKIP(return, "%s", fg.err);
	ASSERT_EQ(0, r) TH_LOG("%s", fg.err);
	dev = make_device(&fg);
	ASSERT_LE(0, dev) TH_LOG("make_device: %s", errname(dev));
	close(dev);		/* the zone stays registered */
	ASSERT_EQ(0, fg_stats(&fg, &st));
	EXPECT_EQ(1, st.zones);
	fg_close(&fg);

	r = rmmod_retry(2000);
	ASSERT_EQ(0, r) TH_LOG("delete_module: %s", errname(r));
	r = fg_insmod();
	ASSERT_EQ(0, r) TH_LOG("finit_module: %s", errname(r));
	ASSERT_TRUE(fg_wait_path(FG_DEV_CTL, true, 2000));

	ASSERT_EQ(0, fg_open(&fg)) TH_LOG("%s", fg.err);
	ASSERT_EQ(0, fg_stats(&fg, &st));
	EXPECT_EQ(0, st.zones);
	EXPECT_EQ(0, st.devs);
	EXPECT_EQ(0, st.reqs);
	dev = make_device(&fg);		/* zone 1 can be registered again */
	ASSERT_LE(0, dev) TH_LOG("make_device: %s", errname(dev));
	close(dev);
	EXPECT_EQ(0, fg_zone_del(&fg, ZONE_A));
	fg_close(&fg);
}

struct storm {
	struct fg *fg;
	volatile bool stop;
	unsigned long pushed;
};

/* A zone vCPU notifying as fast as it can (QueueNotify never waits). */
static void *storm_fn(void *arg)
{
	struct storm *st = arg;

	while (!st->stop && !st->fg->dead) {
		if (fg_notify(st->fg, 1, ZONE_A,
			      MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0))
			break;
		st->pushed++;
	}
	return NULL;
}

TEST_F(unload, rmmod_during_notify_storm)
{
	/* While a zone storms QueueNotify, rmmod is refused at once (the fake hypervisor pins the module); after the storm it unloads and reloads clean, five times.  In the sim a storm cannot outlive the pin, so hvisor's unload-during-storm order (consumer stopped before the IRQ goes) is not observable here. */
	uint64_t t0, worst = 0;
	struct storm st;
	pthread_t th;
	struct fg fg;
	int round, i, r, dev;

	NEED_SETUP();
	if (!reload_configured())
		SKIP(return, "HVIO_KO/HVIO_PARAMS unset: cannot reload, not unloading");
	for (round = 0; round < 5; round++) {
		r = fg_open(&fg);
		if (r == -ENOENT)
			SKIP(return, "%s", fg.err);
		ASSERT_EQ(0, r) TH_LOG("%s", fg.err);
		dev = make_device(&fg);
		ASSERT_LE(0, dev) TH_LOG("make_device: %s", errname(dev));
		memset(&st, 0, sizeof(st));
		st.fg = &fg;
		ASSERT_EQ(0, pthread_create(&th, NULL, storm_fn, &st));
		for (i = 0; i < 20; i++) {
			t0 = fg_now_ms();
			r = fg_rmmod();
			if (fg_now_ms() - t0 > worst)
				worst = fg_now_ms() - t0;
			EXPECT_TRUE(fg_rmmod_refused(r)) TH_LOG("delete_module: %s", errname(r));
			fg_sleep_ms(5);
		}
		st.stop = true;
		pthread_join(th, NULL);
		EXPECT_LT(0, st.pushed);
		EXPECT_EQ(0, fg.errors) TH_LOG("%s", fg.err);
		close(dev);
		EXPECT_EQ(0, fg_zone_del(&fg, ZONE_A));
		fg_close(&fg);

		t0 = fg_now_ms();
		r = rmmod_retry(2000);
		ASSERT_EQ(0, r) TH_LOG("delete_module: %s", errname(r));
		TH_LOG("round %d: %lu notifies, rmmod after the storm %llu ms", round,
		       st.pushed, (unsigned long long)(fg_now_ms() - t0));
		r = fg_insmod();
		ASSERT_EQ(0, r) TH_LOG("finit_module: %s", errname(r));
		ASSERT_TRUE(fg_wait_path(FG_DEV_CTL, true, 2000));
	}
	TH_LOG("slowest refused rmmod during a storm: %llu ms", (unsigned long long)worst);
	ASSERT_EQ(0, fg_open(&fg)) TH_LOG("%s", fg.err);
	EXPECT_EQ(1, fg.br->need_wakeup);
	EXPECT_EQ(fg.br->req_front, fg.br->req_rear);
	fg_close(&fg);
}

TEST_HARNESS_MAIN
