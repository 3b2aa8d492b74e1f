// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_recovery: the daemon dies, the guest does not notice.  A guest
 * keeps 4 KiB writes (each block's content derived from its number and a
 * version) and verifying reads in flight on a virtio-blk device served by
 * the real `hvio run`, while the daemon is killed with SIGKILL and started
 * again, over and over.  The guest only polls its used ring: it must see
 * every request completed exactly once, with status OK, reads must return
 * what the guest was last told was written, and in the end the image file
 * must hold exactly those versions.  Orderly teardown (SIGTERM, `hvio
 * stop`, a config without the device) still destroys devices.
 *
 * HVIO_RECOVERY_MS sets the load's minimum duration (default 60000);
 * there are at least 20 kill/restart cycles whatever it is.
 */
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "hvio_test.h"

#define QN		64		/* queue size */
#define QD		16		/* requests in flight */
#define IRQ		46
#define ZONE_SIZE	(4 * MIB)
#define BLOCKS		256		/* 4 KiB blocks: a 1 MiB image */
#define BS		4096
#define REQS		(GUEST_RAM + 0x40000)	/* 64 bytes per slot */
#define BUFS		(GUEST_RAM + 0x80000)	/* 4 KiB per slot */
#define READY_MS	20000
#define IO_MS		20000		/* longest a request may take */
#define CYCLES		20
#define FEATURES	(FG_F_VERSION_1 | (1ULL << VIRTIO_BLK_F_FLUSH))

enum { IDLE, WRITING, READING };

struct slot {
	int state;
	uint16_t head;
	uint32_t block;
	uint32_t version;
};

FIXTURE(recovery) {
	struct fg fg;
	struct fg_zone z;
	bool skip;
	struct fg_vdev v;
	pid_t pid;
	int out_fd;
	char img[64], cfg[64], cfg2[64], log[64], sock[64];
	uint16_t avail_idx, used_seen;
	struct slot slots[QD];
	uint32_t done_ver[BLOCKS];	/* the guest was told it is written */
	bool busy[BLOCKS];		/* a request on it is in flight */
	bool outstanding[QN];		/* head posted, not yet used */
	unsigned long writes, reads, dups, bad_status, bad_data, stalls;
	long bad_block, bad_expect, bad_found;	/* the first bad read */
};

static void *gptr(FIXTURE_DATA(recovery) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->z, gpa);
}

static uint64_t word(uint32_t block, uint32_t version, uint32_t i)
{
	uint64_t x = ((uint64_t)block << 40) ^ ((uint64_t)version << 12) ^ i;

	if (!version)
		return 0;	/* never written: the image reads as zeros */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x | 1;
}

static void fill(void *buf, uint32_t block, uint32_t version)
{
	uint64_t *w = buf;
	uint32_t i;

	for (i = 0; i < BS / 8; i++)
		w[i] = word(block, version, i);
}

static bool matches(const void *buf, uint32_t block, uint32_t version)
{
	const uint64_t *w = buf;
	uint32_t i;

	for (i = 0; i < BS / 8; i++)
		if (w[i] != word(block, version, i))
			return false;
	return true;
}

/* The config: the device at MMIO_BASE, and optionally a second one. */
static int write_cfg(FIXTURE_DATA(recovery) *self, const char *path,
		     bool second)
{
	char json[1536], extra[384] = "";

	if (second)
		snprintf(extra, sizeof(extra),
			 ",{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
			 "\"irq\":%u,\"img\":\"%s.2\",\"status\":\"enable\"}",
			 (unsigned long long)MMIO_BASE + 0x200, IRQ + 1,
			 self->img);
	snprintf(json, sizeof(json),
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"queues\":1,"
		 "\"queue_size\":%u}%s]}]}\n",
		 ZONE_A, (unsigned long long)fg_zone_phys(&self->fg, &self->z),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)MMIO_BASE, IRQ, self->img, QN, extra);
	return fg_write_file(path, json);
}

/* Start the daemon and wait for "hvio: ready". */
static int daemon_start(FIXTURE_DATA(recovery) *self, const char *cfg)
{
	char out[512];
	size_t len = 0;
	uint64_t t0 = fg_now_ms();
	int pid = fg_daemon_spawn(cfg, self->sock, self->log, &self->out_fd);

	if (pid < 0)
		return pid;
	self->pid = pid;
	while (fg_now_ms() - t0 < READY_MS) {
		struct pollfd p = { .fd = self->out_fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = read(self->out_fd, out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			return -EPIPE;
		len += n;
		out[len] = 0;
		if (strstr(out, "hvio: ready"))
			return 0;
	}
	return -ETIMEDOUT;
}

/* Signal the daemon and reap it; its wait status or -ETIMEDOUT. */
static int daemon_stop(FIXTURE_DATA(recovery) *self, int sig)
{
	uint64_t t0 = fg_now_ms();
	int st;

	if (self->pid <= 0)
		return -ESRCH;
	kill(self->pid, sig);
	while (fg_now_ms() - t0 < 15000) {
		if (waitpid(self->pid, &st, WNOHANG) == self->pid) {
			self->pid = 0;
			close(self->out_fd);
			self->out_fd = -1;
			return st;
		}
		fg_sleep_ms(5);
	}
	return -ETIMEDOUT;
}

/* `hvio stop ...` as a user would run it; its exit status. */
static int hvio_stop(FIXTURE_DATA(recovery) *self, const char *cfg)
{
	pid_t pid = fork();
	int st;

	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		execl(fg_daemon_bin(), "hvio", "stop", "--socket", self->sock,
		      cfg, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static struct hvio_stats gstats(FIXTURE_DATA(recovery) *self)
{
	struct hvio_stats st;

	memset(&st, 0, sizeof(st));
	fg_stats(&self->fg, &st);
	return st;
}

FIXTURE_SETUP(recovery)
{
	int fd, me = getpid();

	self->pid = 0;
	self->out_fd = -1;
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = ZONE_SIZE };
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	snprintf(self->img, sizeof(self->img), "/tmp/hvio-rec-%d.img", me);
	snprintf(self->cfg, sizeof(self->cfg), "/tmp/hvio-rec-%d.json", me);
	snprintf(self->cfg2, sizeof(self->cfg2), "/tmp/hvio-rec-%d-2.json", me);
	snprintf(self->log, sizeof(self->log), "/tmp/hvio-rec-%d.log", me);
	snprintf(self->sock, sizeof(self->sock), "/tmp/hvio-rec-%d.sock", me);
	fd = open(self->img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, (off_t)BLOCKS * BS));
	close(fd);
	ASSERT_EQ(0, write_cfg(self, self->cfg, false));
	ASSERT_EQ(0, daemon_start(self, self->cfg))
		TH_LOG("daemon not ready: %s", fg_file_tail(self->log));
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	memset(gptr(self, GUEST_RAM), 0, 0x40000);
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, 1, QN, GUEST_RAM))
		TH_LOG("%s", self->v.err);
}

FIXTURE_TEARDOWN(recovery)
{
	char path[80];

	if (self->skip)
		return;
	if (self->pid > 0)
		daemon_stop(self, SIGKILL);
	/* Whatever a failed test left behind goes. */
	hvio_stop(self, self->cfg2);
	hvio_stop(self, self->cfg);
	unlink(self->img);
	snprintf(path, sizeof(path), "%s.2", self->img);
	unlink(path);
	unlink(self->cfg);
	unlink(self->cfg2);
	unlink(self->log);
	hvio_fixture_close(_metadata, &self->fg);
}

/* Post slot s's request (a write of a new version, or a read). */
static void post(FIXTURE_DATA(recovery) *self, int s, bool write,
		 uint32_t block)
{
	struct fg_vq *vq = &self->v.vq[0];
	struct vring_desc *desc = gptr(self, vq->desc);
	struct vring_avail *avail = gptr(self, vq->driver);
	struct slot *sl = &self->slots[s];
	uint64_t req = REQS + s * 64ULL, buf = BUFS + s * (uint64_t)BS;
	struct virtio_blk_outhdr *h = gptr(self, req);
	uint16_t d = s * 3;

	sl->state = write ? WRITING : READING;
	sl->head = d;
	sl->block = block;
	/* One request per block at a time: a read must see one version. */
	self->busy[block] = true;
	if (write) {
		sl->version = self->done_ver[block] + 1;
		fill(gptr(self, buf), block, sl->version);
	} else {
		sl->version = self->done_ver[block];
		memset(gptr(self, buf), 0xcc, BS);
	}
	h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = (uint64_t)block * (BS / 512);
	*(uint8_t *)gptr(self, req + 32) = 0xee;
	desc[d] = (struct vring_desc){ req, 16, VRING_DESC_F_NEXT, d + 1 };
	desc[d + 1] = (struct vring_desc){ buf, BS, VRING_DESC_F_NEXT |
					   (write ? 0 : VRING_DESC_F_WRITE),
					   d + 2 };
	desc[d + 2] = (struct vring_desc){ req + 32, 1, VRING_DESC_F_WRITE, 0 };
	self->outstanding[d] = true;
	avail->ring[self->avail_idx % vq->num] = d;
	__atomic_store_n(&avail->idx, ++self->avail_idx, __ATOMIC_RELEASE);
}

static void kick(FIXTURE_DATA(recovery) *self)
{
	fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* Take what the used ring holds; returns how many completed. */
static int reap(FIXTURE_DATA(recovery) *self)
{
	struct vring_used *used = gptr(self, self->v.vq[0].device);
	uint16_t idx = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
	int n = 0, s;

	while (self->used_seen != idx) {
		uint32_t id = used->ring[self->used_seen % QN].id;
		struct slot *sl;
		uint8_t status;

		self->used_seen++;
		if (id >= QN || !self->outstanding[id] || id % 3) {
			self->dups++;
			continue;
		}
		self->outstanding[id] = false;
		s = id / 3;
		sl = &self->slots[s];
		status = *(uint8_t *)gptr(self, REQS + s * 64ULL + 32);
		if (status != VIRTIO_BLK_S_OK)
			self->bad_status++;
		self->busy[sl->block] = false;
		if (sl->state == WRITING) {
			if (status == VIRTIO_BLK_S_OK)
				self->done_ver[sl->block] = sl->version;
			self->writes++;
		} else if (!matches(gptr(self, BUFS + s * (uint64_t)BS),
				    sl->block, sl->version)) {
			if (!self->bad_data++) {
				long v;

				self->bad_block = sl->block;
				self->bad_expect = sl->version;
				self->bad_found = -1;
				for (v = 0; v <= sl->version + 2; v++)
					if (matches(gptr(self, BUFS + s * (uint64_t)BS),
						    sl->block, v))
						self->bad_found = v;
			}
		} else {
			self->reads++;
		}
		sl->state = IDLE;
		n++;
	}
	return n;
}

/* Keep QD requests going: 2 writes for 1 read, on blocks with nothing in
 * flight. */
static void refill(FIXTURE_DATA(recovery) *self, uint64_t *rng)
{
	bool posted = false;
	int s;

	for (s = 0; s < QD; s++) {
		uint32_t b;
		bool write;

		if (self->slots[s].state != IDLE)
			continue;
		*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
		b = (*rng >> 33) % BLOCKS;
		write = (*rng >> 20) % 3;
		if (self->busy[b])
			continue;
		post(self, s, write, b);
		posted = true;
	}
	if (posted)
		kick(self);
}

/* Wait until nothing is in flight; false on timeout. */
static bool drain(FIXTURE_DATA(recovery) *self, unsigned int ms)
{
	uint64_t t0 = fg_now_ms();
	int s, busy;

	for (;;) {
		reap(self);
		fg_flush_res(&self->fg);
		for (s = 0, busy = 0; s < QD; s++)
			busy += self->slots[s].state != IDLE;
		if (!busy)
			return true;
		if (fg_now_ms() - t0 > ms)
			return false;
		fg_sleep_ms(1);
	}
}

/* The image file holds exactly the versions the guest saw completed. */
static long check_image(FIXTURE_DATA(recovery) *self)
{
	static uint8_t buf[BS];
	int fd = open(self->img, O_RDONLY | O_CLOEXEC);
	long bad = 0;
	uint32_t b;

	if (fd < 0)
		return -1;
	for (b = 0; b < BLOCKS; b++)
		if (pread(fd, buf, BS, (off_t)b * BS) != BS ||
		    !matches(buf, b, self->done_ver[b]))
			bad++;
	close(fd);
	return bad;
}

TEST_F_TIMEOUT(recovery, sigkill_under_load, 300)
{
	/* SIGKILL the daemon every ~2.5 s while writes and verifying reads
	 * are in flight, and start it again: nothing lost, nothing completed
	 * twice, reads see the last completed write, and the image matches
	 * what the guest was told. */
	const char *s = getenv("HVIO_RECOVERY_MS");
	unsigned int ms = s ? strtoul(s, NULL, 0) : 60000, kills = 0;
	unsigned int waited, max_wait = 0;
	uint64_t rng = 0x5eed, t0 = fg_now_ms(), last_kill = t0, last_done;
	unsigned long long requeued = 0;
	int st;

	NEED_SETUP();
	last_done = t0;
	while (fg_now_ms() - t0 < ms || kills < CYCLES) {
		refill(self, &rng);
		if (reap(self))
			last_done = fg_now_ms();
		fg_flush_res(&self->fg);
		if (fg_now_ms() - last_done > IO_MS) {
			self->stalls++;
			break;
		}
		if (fg_now_ms() - last_kill < 2500) {
			fg_sleep_ms(1);
			continue;
		}
		/* Writes are in flight (QD of them): kill, then restart. */
		st = daemon_stop(self, SIGKILL);
		ASSERT_TRUE(st >= 0 && WIFSIGNALED(st)) TH_LOG("kill: %#x", st);
		kills++;
		EXPECT_EQ(1, fg_wait_orphans(&self->fg, 1, FG_ORPHAN_WAIT_MS, &waited));
		if (waited > max_wait)
			max_wait = waited;
		/* The guest keeps posting and kicking while nobody serves. */
		refill(self, &rng);
		ASSERT_EQ(0, daemon_start(self, self->cfg))
			TH_LOG("restart %u: %s", kills, fg_file_tail(self->log));
		EXPECT_EQ(0, gstats(self).orphans);
		last_kill = fg_now_ms();
	}
	ASSERT_TRUE(drain(self, IO_MS)) TH_LOG("requests stuck after the last restart");
	{
		struct hvio_dev_attach a = { .zone_id = ZONE_A,
					     .mmio_base = MMIO_BASE };

		/* The device is held by the daemon, not an orphan. */
		EXPECT_ERR(EBUSY, ioctl(self->fg.ctl_fd, HVIO_DEV_ATTACH, &a) < 0 ?
			   -errno : 0);
	}
	TH_LOG("%u kills in %llu ms: %lu writes, %lu verified reads; dup %lu, bad status %lu, bad data %lu; orphan at most %u ms after the reap",
	       kills, (unsigned long long)(fg_now_ms() - t0), self->writes,
	       self->reads, self->dups, self->bad_status, self->bad_data,
	       max_wait);
	EXPECT_EQ(0, self->stalls);
	EXPECT_EQ(0, self->dups);
	EXPECT_EQ(0, self->bad_status);
	EXPECT_EQ(0, self->bad_data)
		TH_LOG("first bad read: block %ld, expected version %ld, found %ld (-1: none)",
		       self->bad_block, self->bad_expect, self->bad_found);
	EXPECT_LT(CYCLES * QD, self->writes + self->reads);
	(void)requeued;

	/* An orderly stop destroys the device; the image is as promised. */
	st = daemon_stop(self, SIGTERM);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && !WEXITSTATUS(st))
		TH_LOG("SIGTERM: %#x: %s", st, fg_file_tail(self->log));
	EXPECT_EQ(0, gstats(self).devs);
	EXPECT_EQ(0, gstats(self).orphans);
	EXPECT_EQ(0, gstats(self).zones);
	EXPECT_EQ(0, check_image(self));
}

TEST_F(recovery, stop_destroys_orphans)
{
	/* After a SIGKILL the device stays for a restart; `hvio stop` with
	 * the config (no daemon running) destroys it and removes the zone. */
	int st;

	NEED_SETUP();
	st = daemon_stop(self, SIGKILL);
	ASSERT_TRUE(st >= 0 && WIFSIGNALED(st));
	EXPECT_EQ(1, fg_wait_orphans(&self->fg, 1, FG_ORPHAN_WAIT_MS, NULL));
	EXPECT_EQ(1, gstats(self).zones);
	EXPECT_EQX(FG_MMIO_MAGIC, fg_vdev_rd(&self->v, VIRTIO_MMIO_MAGIC_VALUE));
	EXPECT_EQ(0, hvio_stop(self, self->cfg));
	EXPECT_EQ(0, gstats(self).devs);
	EXPECT_EQ(0, gstats(self).orphans);
	EXPECT_EQ(0, gstats(self).zones);
	EXPECT_EQ(0, fg_vdev_rd(&self->v, VIRTIO_MMIO_MAGIC_VALUE));
}

TEST_F(recovery, stop_ends_a_running_daemon)
{
	/* `hvio stop` with a daemon running: it exits cleanly and its
	 * devices and zones are gone. */
	uint64_t t0 = fg_now_ms();
	int st = -1;

	NEED_SETUP();
	EXPECT_EQ(0, hvio_stop(self, self->cfg));
	while (fg_now_ms() - t0 < 15000) {
		if (waitpid(self->pid, &st, WNOHANG) == self->pid) {
			self->pid = 0;
			break;
		}
		fg_sleep_ms(5);
	}
	EXPECT_EQ(0, self->pid) TH_LOG("daemon still running");
	EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st)) TH_LOG("%#x", st);
	EXPECT_EQ(0, gstats(self).devs);
	EXPECT_EQ(0, gstats(self).zones);
}

TEST_F(recovery, config_without_device_destroys_it)
{
	/* Two devices, SIGKILL; the restart's config has only the first:
	 * the first is taken over (writes before and after the kill are
	 * there), the second destroyed. */
	char path[80];
	uint64_t rng = 7;
	int fd, st;

	NEED_SETUP();
	snprintf(path, sizeof(path), "%s.2", self->img);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, MIB));
	close(fd);
	ASSERT_EQ(0, write_cfg(self, self->cfg2, true));
	st = daemon_stop(self, SIGTERM);
	ASSERT_TRUE(st >= 0 && WIFEXITED(st));
	ASSERT_EQ(0, daemon_start(self, self->cfg2)) TH_LOG("%s", fg_file_tail(self->log));
	memset(gptr(self, GUEST_RAM), 0, 0x40000);
	self->avail_idx = self->used_seen = 0;
	ASSERT_EQ(0, fg_vdev_probe(&self->v, FEATURES, 1, QN, GUEST_RAM))
		TH_LOG("%s", self->v.err);
	refill(self, &rng);
	ASSERT_TRUE(drain(self, IO_MS));
	EXPECT_EQ(2, gstats(self).devs);
	refill(self, &rng);
	st = daemon_stop(self, SIGKILL);
	ASSERT_TRUE(st >= 0 && WIFSIGNALED(st));
	EXPECT_EQ(2, fg_wait_orphans(&self->fg, 2, FG_ORPHAN_WAIT_MS, NULL));
	ASSERT_EQ(0, daemon_start(self, self->cfg)) TH_LOG("%s", fg_file_tail(self->log));
	EXPECT_EQ(1, gstats(self).devs);
	EXPECT_EQ(0, gstats(self).orphans);
	ASSERT_TRUE(drain(self, IO_MS));
	EXPECT_EQ(0, self->dups);
	EXPECT_EQ(0, self->bad_status);
	st = daemon_stop(self, SIGTERM);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && !WEXITSTATUS(st));
	EXPECT_EQ(0, check_image(self));
}

TEST_HARNESS_MAIN
