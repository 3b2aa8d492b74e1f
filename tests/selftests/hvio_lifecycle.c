// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_lifecycle: the real daemon (`hvio run`, /bin/hvio) from start to
 * exit, as a user drives it.
 *   - unload_after_stop: 50 times: a blk and a net device served, I/O on
 *     both, SIGTERM, reap, and at once hvio.ko's refcount is back to what
 *     the test holds and `rmmod` (no retry) works; then insmod again.
 *   - a report (`hvio status`) with paths that are not UTF-8 does not
 *     end the daemon;
 *   - SIGHUP does not stop it; a second SIGTERM during the drain, or the
 *     drain timeout, ends it at once, exit 1, naming what was in flight
 *     (a blk device on /dev/nullb0, whose every I/O takes 2 s: the
 *     selftest VM loads null_blk with irqmode=2 completion_nsec=2e9);
 *   - `hvio stop` signals the process that owns the status socket, not
 *     the pid its report names;
 *   - 16 reads of one kick on that slow disk are all at the disk at
 *     once: the daemon does not serve a fetch's reads one batch at a
 *     time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "hvio_test.h"
#include "fakenet.h"
#include "fakevring.h"

#define ZONE_SIZE	(4 * MIB)
#define BLK_BASE	MMIO_BASE
#define NET_BASE	(MMIO_BASE + 0x200)
#define BLK_IRQ		40
#define NET_IRQ		41
#define QN		64
#define BLK_RINGS	(GUEST_RAM + 0x10000)
#define NET_RINGS	(GUEST_RAM + 0x40000)
#define HEAP		(GUEST_RAM + 0x100000)
#define TAP		"hvl0"
#define READY_MS	20000
#define IO_MS		10000
#define STOP_MS		20000
#define CYCLES		50
#define NULLB		"/dev/nullb0"
#define NULLB_IO_MS	2000		/* completion_nsec of the VM's null_blk */
#define REFCNT		"/sys/module/hvio/refcnt"

FIXTURE(lifecycle) {
	struct fg fg;
	struct fg_zone z;
	bool skip, fg_open;
	struct fn_daemon d;
	char img[64], dir[64];
};

FIXTURE_SETUP(lifecycle)
{
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = ZONE_SIZE };
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	self->fg_open = true;
	fn_daemon_init(&self->d, "lc");
	snprintf(self->img, sizeof(self->img), "/tmp/hvio-lc-%d.img", getpid());
	ASSERT_OK(fn_netns_enter());
}

FIXTURE_TEARDOWN(lifecycle)
{
	if (self->skip)
		return;
	fn_daemon_cleanup(&self->d);
	unlink(self->img);
	if (!self->fg_open) {
		/* a failed cycle: the module must be back for the next test */
		if (access(FG_DEV_CTL, F_OK))
			fg_insmod();
		fg_wait_path(FG_DEV_CTL, true, 2000);
		fg_open(&self->fg);
	}
	hvio_fixture_close(_metadata, &self->fg);
}

static int make_image(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r;

	if (fd < 0)
		return -errno;
	r = ftruncate(fd, MIB) ? -errno : 0;
	close(fd);
	return r;
}

/* A config: a blk device on img (direct: O_DIRECT), a net device if net. */
static void cfg_json(FIXTURE_DATA(lifecycle) *self, char *buf, size_t len,
		     const char *img, bool direct, bool net)
{
	char netdev[256] = "";

	if (net)
		snprintf(netdev, sizeof(netdev),
			 ",{\"type\":\"net\",\"addr\":\"%#llx\",\"len\":\"0x200\","
			 "\"irq\":%u,\"tap\":\"%s\",\"status\":\"enable\","
			 "\"queue_size\":%u}",
			 (unsigned long long)NET_BASE, NET_IRQ, TAP, QN);
	snprintf(buf, len,
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"direct\":%s,"
		 "\"queue_size\":%u}%s]}]}\n",
		 ZONE_A, (unsigned long long)fg_zone_phys(&self->fg, &self->z),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)BLK_BASE, BLK_IRQ, img,
		 direct ? "true" : "false", QN, netdev);
}

/* Start the daemon with extra arguments; wait for its ready line. */
static int start(FIXTURE_DATA(lifecycle) *self, const char *json,
		 const char *ready, const char *const *extra)
{
	struct fn_daemon *d = &self->d;
	uint64_t deadline = fg_now_ms() + READY_MS;
	int p[2], logfd, pid;
	FILE *f;

	if (!extra)
		return fn_daemon_start(d, json, ready, READY_MS);
	f = fopen(d->cfg, "we");
	if (!f)
		return -errno;
	if ((fputs(json, f) < 0) | fclose(f))
		return -EIO;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	logfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -errno;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		const char *argv[16] = { "hvio", "run", d->cfg, "--socket", d->sock };
		int i = 5;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		while (*extra && i < 15)
			argv[i++] = *extra++;
		dup2(p[1], 1);
		dup2(logfd, 2);
		execv(fg_daemon_bin(), (char **)argv);
		_exit(127);
	}
	close(p[1]);
	close(logfd);
	if (pid < 0) {
		close(p[0]);
		return -errno;
	}
	d->pid = pid;
	d->out_fd = p[0];
	d->out_len = 0;
	d->out[0] = 0;
	while (fg_now_ms() < deadline) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		ssize_t n;

		if (poll(&pf, 1, 50) <= 0)
			continue;
		n = read(p[0], d->out + d->out_len, sizeof(d->out) - 1 - d->out_len);
		if (n <= 0)
			return -ECHILD;
		d->out_len += n;
		d->out[d->out_len] = 0;
		if (strstr(d->out, ready))
			return 0;
	}
	return -ETIMEDOUT;
}

/* Wait until the daemon's log has needle (or it exited); true if found. */
static bool log_wait(FIXTURE_DATA(lifecycle) *self, const char *needle,
		     unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	char buf[8192];

	for (;;) {
		int fd = open(self->d.log, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

		if (fd >= 0)
			close(fd);
		buf[n > 0 ? n : 0] = 0;
		if (strstr(buf, needle))
			return true;
		if (fg_now_ms() > deadline)
			return false;
		fg_sleep_ms(20);
	}
}

static long refcnt(void)
{
	char buf[32] = "";
	int fd = open(REFCNT, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

/* ---- the guest ----------------------------------------------------------- */

struct guest {
	struct fg_vdev blk, net;
	struct fv_ring bq, rx, tx;
	uint64_t heap;
};

static uint64_t galloc(struct guest *g, uint32_t size)
{
	uint64_t a = (g->heap + 63) & ~63ULL;

	g->heap = a + size;
	return a;
}

/* A 4 KiB page (O_DIRECT wants aligned buffers). */
static uint64_t galloc_page(struct guest *g)
{
	g->heap = (g->heap + 4095) & ~4095ULL;
	return galloc(g, 4096);
}

/* The driver's side of queue q of v, on the rings the probe laid out. */
static void attach(FIXTURE_DATA(lifecycle) *self, struct fv_ring *r,
		   const struct fg_vdev *v, unsigned int q)
{
	const struct fg_vq *vq = &v->vq[q];

	fv_init(r, vq->num, fg_zone_ptr(&self->fg, &self->z, vq->desc),
		fg_zone_ptr(&self->fg, &self->z, vq->driver),
		fg_zone_ptr(&self->fg, &self->z, vq->device), false);
}

static int probe(FIXTURE_DATA(lifecycle) *self, struct guest *g, bool net)
{
	int r;

	memset(fg_zone_ptr(&self->fg, &self->z, GUEST_RAM), 0, ZONE_SIZE);
	g->heap = HEAP;
	fg_vdev_init(&g->blk, &self->fg, 0, ZONE_A, BLK_BASE);
	r = fg_vdev_probe(&g->blk, FG_F_VERSION_1, 1, QN, BLK_RINGS);
	if (r)
		return r;
	attach(self, &g->bq, &g->blk, 0);
	if (!net)
		return 0;
	fg_vdev_init(&g->net, &self->fg, 1, ZONE_A, NET_BASE);
	r = fg_vdev_probe(&g->net, FG_F_VERSION_1, 2, QN, NET_RINGS);
	if (r)
		return r;
	attach(self, &g->rx, &g->net, 0);
	attach(self, &g->tx, &g->net, 1);
	return 0;
}

/* n blk requests (writes, or reads) of 4 KiB at sectors 0, stride,
 * 2 * stride, ...; one kick. */
static void blk_post_at(FIXTURE_DATA(lifecycle) *self, struct guest *g,
			int n, bool write, uint64_t stride)
{
	int i;

	for (i = 0; i < n; i++) {
		uint64_t req = galloc(g, 32), data = galloc_page(g);
		struct virtio_blk_outhdr *h = fg_zone_ptr(&self->fg, &self->z, req);
		struct fv_buf b[3] = {
			{ req, 16, false }, { data, 4096, !write }, { req + 16, 1, true },
		};

		h->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
		h->ioprio = 0;
		h->sector = i * stride;
		memset(fg_zone_ptr(&self->fg, &self->z, data), i, 4096);
		fv_add(&g->bq, b, 3, NULL, 0, (void *)(uintptr_t)(i + 1));
	}
	fv_publish(&g->bq);
	fg_notify(&self->fg, 0, ZONE_A, BLK_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void blk_post(FIXTURE_DATA(lifecycle) *self, struct guest *g, int n,
		     bool write)
{
	blk_post_at(self, g, n, write, 8);
}

/* Wait for n used entries on r; how many came. */
static int used_wait(FIXTURE_DATA(lifecycle) *self, struct fv_ring *r, int n,
		     unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	int got = 0;

	while (got < n && fg_now_ms() < deadline) {
		uint32_t len;
		void *tok;

		if (fv_get_used(r, &len, &tok) == 1) {
			got++;
			continue;
		}
		fg_flush_res(&self->fg);
		fg_sleep_ms(1);
	}
	return got;
}

/* Net: RX buffers posted (armed in the daemon), one frame sent. */
static int net_io(FIXTURE_DATA(lifecycle) *self, struct guest *g)
{
	uint8_t *p;
	uint64_t tx;
	int i;

	for (i = 0; i < 8; i++) {
		struct fv_buf b = { galloc(g, 2048), 2048, true };

		fv_add(&g->rx, &b, 1, NULL, 0, (void *)(uintptr_t)(i + 1));
	}
	fv_publish(&g->rx);
	fg_notify(&self->fg, 1, ZONE_A, NET_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	tx = galloc(g, HVIO_NET_HDR_LEN + 64);
	p = fg_zone_ptr(&self->fg, &self->z, tx);
	memset(p, 0, HVIO_NET_HDR_LEN);
	fn_frame_test(p + HVIO_NET_HDR_LEN, 64, fn_host_mac, fn_guest_mac, 1, 1);
	{
		struct fv_buf b = { tx, HVIO_NET_HDR_LEN + 64, false };

		fv_add(&g->tx, &b, 1, NULL, 0, (void *)1);
	}
	fv_publish(&g->tx);
	fg_notify(&self->fg, 1, ZONE_A, NET_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	return used_wait(self, &g->tx, 1, IO_MS);
}

/* ---- tests -------------------------------------------------------------- */

TEST_F_TIMEOUT(lifecycle, unload_after_stop, 900)
{
	/* x50: a blk and a net device served with I/O in flight on both,
	 * SIGTERM, reap: right then hvio.ko's refcount is what the test
	 * itself holds, and with the test's files closed rmmod succeeds at
	 * the first try; insmod, and again. */
	int refused = 0, refcnt_off = 0, i, r, st;
	long base, after, worst = 0;
	uint64_t t0 = fg_now_ms(), late_ms = 0;
	char json[1536];
	struct guest g;

	NEED_SETUP();
	if (!getenv("HVIO_KO") || !getenv("HVIO_PARAMS"))
		SKIP(return, "HVIO_KO/HVIO_PARAMS unset: cannot reload hvio.ko");
	ASSERT_EQ(0, make_image(self->img));
	for (i = 0; i < CYCLES; i++) {
		if (!self->fg_open) {
			ASSERT_EQ(0, fg_open(&self->fg)) TH_LOG("cycle %d: %s", i, self->fg.err);
			self->fg_open = true;
		}
		base = refcnt();
		cfg_json(self, json, sizeof(json), self->img, false, true);
		r = start(self, json, "hvio: ready (2 devices)", NULL);
		ASSERT_EQ(0, r) TH_LOG("cycle %d: daemon not ready (%s): %s", i,
				       errname(r), fn_daemon_log(&self->d));
		ASSERT_LT(0, fn_if_wait(TAP, IO_MS));
		ASSERT_OK(fn_if_set_up(TAP, true));
		ASSERT_EQ(0, probe(self, &g, true)) TH_LOG("cycle %d: probe: %s %s", i,
							   g.blk.err, g.net.err);
		blk_post(self, &g, 8, true);
		ASSERT_EQ(8, used_wait(self, &g.bq, 8, IO_MS)) TH_LOG("cycle %d", i);
		ASSERT_EQ(1, net_io(self, &g)) TH_LOG("cycle %d: TX not completed", i);
		/* more writes in flight when SIGTERM comes */
		blk_post(self, &g, 8, true);
		st = fn_daemon_stop(&self->d, SIGTERM, STOP_MS);
		after = refcnt();
		ASSERT_TRUE(st >= 0 && WIFEXITED(st) && !WEXITSTATUS(st))
			TH_LOG("cycle %d: SIGTERM: %s: %s", i, fn_wstatus(st),
			       fn_daemon_log(&self->d));
		if (after != base) {
			refcnt_off++;
			if (after - base > worst)
				worst = after - base;
		}
		hvio_fixture_close(_metadata, &self->fg);
		self->fg_open = false;
		r = fg_rmmod();
		if (fg_rmmod_refused(r)) {
			uint64_t t = fg_now_ms();

			refused++;
			while (fg_rmmod_refused(r = fg_rmmod()) && fg_now_ms() - t < 5000)
				fg_sleep_ms(5);
			late_ms += fg_now_ms() - t;
		}
		ASSERT_EQ(0, r) TH_LOG("cycle %d: delete_module: %s", i, errname(r));
		r = fg_insmod();
		ASSERT_EQ(0, r) TH_LOG("cycle %d: finit_module: %s", i, errname(r));
		ASSERT_TRUE(fg_wait_path(FG_DEV_CTL, true, 2000));
		ASSERT_TRUE(fg_wait_path(FG_DEV_SIM, true, 2000));
	}
	TH_LOG("%d cycles in %llu ms: refcount above the test's own right after the reap %d times (by up to %ld), rmmod refused %d times (in use for %llu ms in all)",
	       CYCLES, (unsigned long long)(fg_now_ms() - t0), refcnt_off, worst,
	       refused, (unsigned long long)late_ms);
	EXPECT_EQ(0, refcnt_off);
	EXPECT_EQ(0, refused);
}

TEST_F(lifecycle, status_with_paths_not_utf8)
{
	/* The config and the image live in a directory whose name is not
	 * UTF-8: `hvio status` gets a report (bytes replaced by U+FFFD), the
	 * daemon keeps serving and stops cleanly. */
	char json[1536], out[16384], cfg[96], img[96];
	int st;

	NEED_SETUP();
	snprintf(self->dir, sizeof(self->dir), "/tmp/hvio-lc-%d-\xff\xfe", getpid());
	ASSERT_EQ(0, mkdir(self->dir, 0755));
	snprintf(img, sizeof(img), "%s/disk.img", self->dir);
	snprintf(cfg, sizeof(cfg), "%s/c.json", self->dir);
	ASSERT_LT(strlen(cfg), sizeof(self->d.cfg));
	strcpy(self->d.cfg, cfg);
	ASSERT_EQ(0, make_image(img));
	cfg_json(self, json, sizeof(json), "disk.img", false, false);
	ASSERT_EQ(0, start(self, json, "hvio: ready (1 devices)", NULL))
		TH_LOG("%s", fn_daemon_log(&self->d));
	EXPECT_EQ(0, fg_hvio_cmd(out, sizeof(out), "status", "--socket", self->d.sock, "--json"))
		TH_LOG("daemon %s: %s", fn_daemon_alive(&self->d) ? "running" :
		       fn_wstatus(self->d.exit_status), fn_daemon_log(&self->d));
	EXPECT_NE(NULL, strstr(out, "\xef\xbf\xbd")) TH_LOG("report: %.300s", out);
	EXPECT_NE(NULL, strstr(out, "disk.img"));
	EXPECT_EQ(0, fg_hvio_cmd(out, sizeof(out), "status", "--socket", self->d.sock, NULL));
	EXPECT_TRUE(fn_daemon_alive(&self->d)) TH_LOG("%s: %s", fn_wstatus(self->d.exit_status),
						      fn_daemon_log(&self->d));
	st = fn_daemon_stop(&self->d, SIGTERM, STOP_MS);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && !WEXITSTATUS(st)) TH_LOG("%s", fn_wstatus(st));
	unlink(img);
	unlink(cfg);
	rmdir(self->dir);
	strcpy(self->d.cfg, "/tmp/hvio-lc-unused");
}

TEST_F(lifecycle, sighup_does_not_stop)
{
	/* SIGHUP is ignored (said on stderr); the daemon keeps answering and
	 * SIGTERM still stops it cleanly. */
	char json[1536], out[16384];
	int st;

	NEED_SETUP();
	ASSERT_EQ(0, make_image(self->img));
	cfg_json(self, json, sizeof(json), self->img, false, false);
	ASSERT_EQ(0, start(self, json, "hvio: ready (1 devices)", NULL))
		TH_LOG("%s", fn_daemon_log(&self->d));
	kill(self->d.pid, SIGHUP);
	EXPECT_TRUE(log_wait(self, "SIGHUP ignored", 5000)) TH_LOG("%s", fn_daemon_log(&self->d));
	EXPECT_TRUE(fn_daemon_alive(&self->d)) TH_LOG("%s", fn_wstatus(self->d.exit_status));
	EXPECT_EQ(0, fg_hvio_cmd(out, sizeof(out), "status", "--socket", self->d.sock, NULL));
	st = fn_daemon_stop(&self->d, SIGTERM, STOP_MS);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && !WEXITSTATUS(st)) TH_LOG("%s", fn_wstatus(st));
}

/* A blk device on /dev/nullb0 with one read in flight (2 s each). */
static void slow_read_in_flight(struct __test_metadata *_metadata,
				FIXTURE_DATA(lifecycle) *self,
				const char *const *extra)
{
	char json[1536];
	struct guest g;
	uint64_t t0;

	cfg_json(self, json, sizeof(json), NULLB, true, false);
	ASSERT_EQ(0, start(self, json, "hvio: ready (1 devices)", extra))
		TH_LOG("%s", fn_daemon_log(&self->d));
	ASSERT_EQ(0, probe(self, &g, false)) TH_LOG("%s", g.blk.err);
	blk_post(self, &g, 1, false);
	/* the daemon fetched it: the read is in flight for 2 s */
	t0 = fg_now_ms();
	while (fn_daemon_queue_counter(&self->d, 0, "ops") < 1 && fg_now_ms() - t0 < IO_MS)
		fg_sleep_ms(10);
	ASSERT_EQ(1, fn_daemon_queue_counter(&self->d, 0, "ops"));
}

/* Wait for the kernel to turn the dead daemon's device into an orphan
 * (its last I/O done), then remove it. */
static void orphan_sweep(FIXTURE_DATA(lifecycle) *self)
{
	uint64_t t0 = fg_now_ms();
	struct hvio_stats st;

	do {
		memset(&st, 0, sizeof(st));
		fg_stats(&self->fg, &st);
		if (st.orphans)
			break;
		fg_sleep_ms(20);
	} while (fg_now_ms() - t0 < IO_MS);
	fg_zone_sweep(&self->fg);
}

/* The daemon gave up draining (why: the start of its last words): exit 1,
 * the queue's read named; its device, left for recovery, goes. */
static void exited_now(struct __test_metadata *_metadata,
		       FIXTURE_DATA(lifecycle) *self, int st, const char *why)
{
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1)
		TH_LOG("%s: %s", fn_wstatus(st), fn_daemon_log(&self->d));
	EXPECT_TRUE(log_wait(self, why, 0)) TH_LOG("%s", fn_daemon_log(&self->d));
	EXPECT_TRUE(log_wait(self, "queue 0: 1 ops in flight", 0));
	orphan_sweep(self);
}

TEST_F(lifecycle, second_sigterm_exits_at_once)
{
	/* SIGTERM with a 2 s read in flight: the daemon drains; a second
	 * SIGTERM ends it at once, exit 1, the device left for recovery. */
	uint64_t t0;
	int st;

	NEED_SETUP();
	if (access(NULLB, R_OK))
		SKIP(return, "no %s (the VM loads null_blk)", NULLB);
	slow_read_in_flight(_metadata, self, NULL);
	t0 = fg_now_ms();
	kill(self->d.pid, SIGTERM);
	ASSERT_TRUE(log_wait(self, "finishing I/O in flight", 5000));
	st = fn_daemon_stop(&self->d, SIGTERM, STOP_MS);
	TH_LOG("exited %llu ms after the first SIGTERM (each read takes %d ms)",
	       (unsigned long long)(fg_now_ms() - t0), NULLB_IO_MS);
	exited_now(_metadata, self, st, "Terminated again: exiting now");
}

TEST_F(lifecycle, drain_timeout_names_what_is_in_flight)
{
	/* --drain-timeout 1 with a 2 s read in flight: after SIGTERM the
	 * daemon gives up draining after 1 s, exit 1, naming the queue. */
	static const char *const extra[] = { "--drain-timeout", "1", NULL };
	int st;

	NEED_SETUP();
	if (access(NULLB, R_OK))
		SKIP(return, "no %s (the VM loads null_blk)", NULLB);
	slow_read_in_flight(_metadata, self, extra);
	st = fn_daemon_stop(&self->d, SIGTERM, STOP_MS);
	exited_now(_metadata, self, st, "drain timeout (1 s): exiting now");
}

/* Reads in flight on the block device behind dev (/sys/block/X/inflight). */
static int disk_reads_in_flight(const char *dev)
{
	char path[96];
	int reads = -1, writes;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/inflight", strrchr(dev, '/') + 1);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d %d", &reads, &writes) != 2)
		reads = -1;
	fclose(f);
	return reads;
}

TEST_F(lifecycle, slow_disk_gets_all_reads_of_a_fetch_at_once)
{
	/* 16 O_DIRECT reads in one kick on /dev/nullb0 (2 s each): the
	 * daemon must not wait for some of a fetch's I/O before it starts
	 * the rest: all 16 are at the disk long before the first completes,
	 * and all 16 complete.  (Where zone RAM has no struct pages the
	 * reads go buffered, each on an io_uring worker: io-wq runs at most
	 * 4 per CPU of those at once, so there the test asks for that many.) */
	char json[1536];
	struct guest g;
	static char status[16384];
	int n = 0, st, want = 16;
	bool pfnmap;
	uint64_t t0;

	NEED_SETUP();
	if (access(NULLB, R_OK))
		SKIP(return, "no %s (the VM loads null_blk)", NULLB);
	cfg_json(self, json, sizeof(json), NULLB, true, false);
	ASSERT_EQ(0, start(self, json, "hvio: ready (1 devices)", NULL))
		TH_LOG("%s", fn_daemon_log(&self->d));
	ASSERT_EQ(0, probe(self, &g, false)) TH_LOG("%s", g.blk.err);
	ASSERT_EQ(0, fg_daemon_status(self->d.sock, status, sizeof(status)));
	pfnmap = fg_ram_pfnmap(status);
	if (pfnmap)
		want = 4 * sysconf(_SC_NPROCESSORS_ONLN) < want ?
		       4 * sysconf(_SC_NPROCESSORS_ONLN) : want;
	/* An earlier test's daemon may have left its read at the disk. */
	t0 = fg_now_ms();
	while (disk_reads_in_flight(NULLB) && fg_now_ms() - t0 < 2 * NULLB_IO_MS)
		fg_sleep_ms(20);
	ASSERT_EQ(0, disk_reads_in_flight(NULLB));
	/* 1 MiB apart: the block layer merges no two into one request. */
	blk_post_at(self, &g, 16, false, 2048);
	t0 = fg_now_ms();
	while (fg_now_ms() - t0 < NULLB_IO_MS / 2) {
		n = disk_reads_in_flight(NULLB);
		if (n >= want)
			break;
		fg_sleep_ms(10);
	}
	EXPECT_LE(want, n) TH_LOG("%d reads at the disk %llu ms after the kick%s",
				  n, (unsigned long long)(fg_now_ms() - t0),
				  pfnmap ? " (zone RAM pfnmap: buffered)" : "");
	EXPECT_EQ(16, used_wait(self, &g.bq, 16, IO_MS + NULLB_IO_MS));
	st = fn_daemon_stop(&self->d, SIGTERM, STOP_MS);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && !WEXITSTATUS(st)) TH_LOG("%s", fn_wstatus(st));
}

TEST_F(lifecycle, stop_signals_the_socket_owner)
{
	/* A process serves the status socket with a report naming another
	 * (innocent) process: `hvio stop` must SIGTERM the one the kernel
	 * names as the socket's owner, wait for it, and leave the other. */
	char out[256], rep[128];
	pid_t victim, server;
	int ready[2], st;
	char c;

	NEED_SETUP();
	victim = fork();
	if (victim == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	ASSERT_LT(0, victim);
	snprintf(rep, sizeof(rep), "{\"pid\": %d, \"drain_timeout_s\": 1}\n", victim);
	ASSERT_EQ(0, pipe2(ready, O_CLOEXEC));
	server = fork();
	if (server == 0) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		strcpy(a.sun_path, self->d.sock);
		unlink(self->d.sock);
		if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 4))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		for (;;) {
			int c2 = accept(s, NULL, NULL);

			if (c2 >= 0 && write(c2, rep, strlen(rep)) < 0)
				_exit(1);
			close(c2);
		}
	}
	ASSERT_LT(0, server);
	close(ready[1]);
	ASSERT_EQ(1, read(ready[0], &c, 1));
	close(ready[0]);
	EXPECT_EQ(0, fg_hvio_cmd(out, sizeof(out), "stop", "--socket", self->d.sock, NULL));
	EXPECT_EQ(server, waitpid(server, &st, WNOHANG)) TH_LOG("the socket's owner still runs");
	EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) TH_LOG("%s", fn_wstatus(st));
	EXPECT_EQ(0, waitpid(victim, &st, WNOHANG)) TH_LOG("the innocent process got %s",
							   fn_wstatus(st));
	kill(victim, SIGKILL);
	waitpid(victim, &st, 0);
	kill(server, SIGKILL);
	waitpid(server, &st, 0);
}

TEST_HARNESS_MAIN
