// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_reset: a guest reset (Status = 0) is acknowledged only when no op
 * of the old generation can touch guest memory any more.  Under hvisor a
 * trapped write stalls its vCPU until root Linux answers it, so the module
 * holds the answer until every op the daemon held came back, the daemon
 * is gone, or reset_timeout_ms passed; other vCPUs reading Status
 * meanwhile do not see 0.
 *
 * Fixture "hold": this program plays hvisor, the guest AND the daemon
 * (HVIO_DEV_QUEUE_RUN by hand), so it decides when ops come back.
 * Fixture "slow": the real `hvio run` serves a null_blk device whose every
 * I/O takes SLOW_MS (configfs; the VM runner loads null_blk with
 * nr_devices=0), so reads are really in flight when the guest resets.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "hvio_test.h"

#define QN		16
#define IRQ		44
#define CAPACITY	2048		/* sectors, hold fixture */
#define REQS		(GUEST_RAM + 0x40000)	/* 64 bytes per request */
#define BUFS		(GUEST_RAM + 0x100000)	/* 64 KiB per request */
#define BUF_LEN		(64 * 1024)
#define NREQ		4
#define CPU_GUEST	0		/* the vCPU that resets */
#define CPU_OTHER	1		/* another vCPU of the zone */
#define ZONE_SIZE	(2 * MIB)
#define PATTERN		0xa5
#define SLOW_MS		1500		/* every null_blk I/O */
#define LONG_MS		30000		/* longest any answer may take */
#define NULLB_CFS	"/sys/kernel/config/nullb"
#define FEATURES	(FG_F_VERSION_1 | (1ULL << VIRTIO_RING_F_EVENT_IDX))

/* ---- the guest's requests (shared) ---------------------------------------- */

struct rig {
	struct fg fg;
	struct fg_zone z;
	struct fg_vdev v;
	uint16_t avail_idx;
};

/* FIXTURE_SETUP's start: true when the test is skipped. */
static bool rig_open(struct __test_metadata *_metadata, struct rig *r,
		     bool *skip)
{
	r->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				 .ram_off = 0, .size = ZONE_SIZE };
	hvio_fixture_open(_metadata, &r->fg, skip);
	/* Resets here may wait for slow reads: wait longer for answers. */
	r->fg.timeout_ms = LONG_MS;
	return *skip;
}

static void *gptr(struct rig *r, uint64_t gpa)
{
	return fg_zone_ptr(&r->fg, &r->z, gpa);
}

/* Post NREQ reads of BUF_LEN each, at sectors far apart, and kick. */
static void post_reads(struct rig *r, uint64_t sector0, uint64_t stride)
{
	struct fg_vq *vq = &r->v.vq[0];
	struct vring_desc *desc = gptr(r, vq->desc);
	struct vring_avail *avail = gptr(r, vq->driver);
	int i;

	for (i = 0; i < NREQ; i++) {
		uint64_t req = REQS + 64ULL * i, buf = BUFS + (uint64_t)BUF_LEN * i;
		struct virtio_blk_outhdr *h = gptr(r, req);
		uint16_t d = 3 * i;

		memset(gptr(r, buf), PATTERN, BUF_LEN);
		h->type = VIRTIO_BLK_T_IN;
		h->ioprio = 0;
		h->sector = sector0 + i * stride;
		*(uint8_t *)gptr(r, req + 32) = 0xee;
		desc[d] = (struct vring_desc){ req, 16, VRING_DESC_F_NEXT, d + 1 };
		desc[d + 1] = (struct vring_desc){ buf, BUF_LEN,
			VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, d + 2 };
		desc[d + 2] = (struct vring_desc){ req + 32, 1, VRING_DESC_F_WRITE, 0 };
		avail->ring[r->avail_idx++ % vq->num] = d;
	}
	__atomic_store_n(&avail->idx, r->avail_idx, __ATOMIC_RELEASE);
	fg_notify(&r->fg, CPU_GUEST, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* With EVENT_IDX the device writes avail_event once it took every chain. */
static bool wait_taken(struct rig *r, unsigned int ms)
{
	struct fg_vq *vq = &r->v.vq[0];
	struct vring_used *used = gptr(r, vq->device);
	volatile uint16_t *avail_event = (uint16_t *)&used->ring[vq->num];
	uint64_t t0 = fg_now_ms();

	while (*avail_event != r->avail_idx) {
		if (fg_now_ms() - t0 > ms)
			return false;
		fg_sleep_ms(1);
	}
	return true;
}

/* Bytes of the buffers that no longer hold the pattern. */
static unsigned long damaged(struct rig *r)
{
	unsigned long n = 0;
	const uint8_t *p;
	int i, j;

	for (i = 0; i < NREQ; i++) {
		p = gptr(r, BUFS + (uint64_t)BUF_LEN * i);
		for (j = 0; j < BUF_LEN; j++)
			n += p[j] != PATTERN;
	}
	return n;
}

static void refill(struct rig *r)
{
	memset(gptr(r, BUFS), PATTERN, (size_t)BUF_LEN * NREQ);
}

/* The guest writes Status = 0 without waiting; cfg_flags before it. */
static uint64_t push_reset(struct rig *r)
{
	struct hvio_device_req req = {
		.src_cpu = CPU_GUEST, .address = MMIO_BASE + VIRTIO_MMIO_STATUS,
		.size = 4, .value = 0, .src_zone = ZONE_A, .is_write = 1,
	};
	uint64_t before = 0;

	if (fg_push(&r->fg, &req, FG_RAISE_IF_NEEDED, &before))
		return ~0ULL;
	/* Answered in ring order: the write was handled before this read. */
	fg_read32(&r->fg, CPU_OTHER, ZONE_A, MMIO_BASE + VIRTIO_MMIO_MAGIC_VALUE);
	return before;
}

static bool answered(struct rig *r, uint64_t before)
{
	return __atomic_load_n(&r->fg.br->cfg_flags[CPU_GUEST],
			       __ATOMIC_ACQUIRE) != before;
}

/* ---- hold: this program is the daemon --------------------------------- */

FIXTURE(hold) {
	struct rig r;
	bool skip;
	int fd;
};

static int hold_create(FIXTURE_DATA(hold) *self)
{
	struct virtio_blk_config cfg;
	struct hvio_dev_create c;

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = CAPACITY;
	cfg.seg_max = HVIO_OP_MAX_SEGS;
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, IRQ, 1, QN,
		    FEATURES, &cfg, sizeof(cfg));
	c.flags = HVIO_DEV_F_RECOVERABLE;
	return fg_dev_create(&self->r.fg, &c);
}

static int hold_probe(FIXTURE_DATA(hold) *self)
{
	self->r.avail_idx = 0;
	memset(gptr(&self->r, GUEST_RAM), 0, 0x40000);
	return fg_vdev_probe(&self->r.v, FEATURES, 1, QN, GUEST_RAM);
}

/* The daemon's QUEUE_RUN: commit c[0..nc), fetch up to max. */
static int hold_run(int fd, const struct hvio_completion *c, int nc,
		    uint16_t *tags, int max, uint32_t *gen)
{
	struct hvio_queue_run run = {
		.queue = 0, .nr_commit = nc, .max_fetch = max,
		.commits_addr = (uintptr_t)c, .tags_addr = (uintptr_t)tags,
	};

	if (ioctl(fd, HVIO_DEV_QUEUE_RUN, &run))
		return -errno;
	if (gen)
		*gen = run.generation;
	return run.nr_fetched;
}

static struct hvio_dev_stats dstats(int fd)
{
	struct hvio_dev_stats st;

	memset(&st, 0, sizeof(st));
	fg_dev_stats(fd, &st);
	return st;
}

/* NREQ reads fetched by "the daemon"; their completions in c. */
static void hold_fetch(struct __test_metadata *_metadata,
		       FIXTURE_DATA(hold) *self, struct hvio_completion *c)
{
	uint16_t tags[QN];
	uint32_t gen = 0;
	int i;

	post_reads(&self->r, 0, 128);
	ASSERT_EQ(NREQ, hold_run(self->fd, NULL, 0, tags, QN, &gen));
	for (i = 0; i < NREQ; i++)
		c[i] = (struct hvio_completion){ .tag = tags[i],
						 .generation = gen };
}

FIXTURE_SETUP(hold)
{
	self->fd = -1;
	if (rig_open(_metadata, &self->r, &self->skip))
		return;
	ASSERT_EQ(0, fg_zone_add(&self->r.fg, &self->r.z));
	self->fd = hold_create(self);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	fg_vdev_init(&self->r.v, &self->r.fg, CPU_GUEST, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, hold_probe(self)) TH_LOG("%s", self->r.v.err);
}

FIXTURE_TEARDOWN(hold)
{
	if (self->fd >= 0) {
		ioctl(self->fd, HVIO_DEV_DESTROY);
		close(self->fd);
	}
	if (!self->skip)
		hvio_fixture_close(_metadata, &self->r.fg);
}

TEST_F(hold, reset_answered_when_old_ops_are_back)
{
	/* Status = 0 with 4 ops held by the daemon: the writing vCPU gets no answer and another vCPU reads the old Status until the last op is committed (as stale); then the answer comes, Status reads 0, and the device probes again. */
	struct hvio_completion c[NREQ];
	struct hvio_dev_stats st;
	uint64_t before, t0;
	uint32_t status;
	int i;

	NEED_SETUP();
	hold_fetch(_metadata, self, c);
	before = push_reset(&self->r);
	ASSERT_NE(~0ULL, before);
	t0 = fg_now_ms();
	EXPECT_FALSE(answered(&self->r, before))
		TH_LOG("Status = 0 answered with %d ops of the old generation held", NREQ);
	status = fg_read32(&self->r.fg, CPU_OTHER, ZONE_A,
			   MMIO_BASE + VIRTIO_MMIO_STATUS);
	EXPECT_NE(0, status) TH_LOG("another vCPU reads Status 0 before the reset is answered");
	for (i = 0; i < NREQ; i++) {
		EXPECT_FALSE(answered(&self->r, before))
			TH_LOG("answered with %d of %d old ops still out", NREQ - i, NREQ);
		ASSERT_EQ(0, hold_run(self->fd, &c[i], 1, NULL, 0, NULL));
	}
	ASSERT_EQ(0, fg_wait_ack(&self->r.fg, CPU_GUEST, before, LONG_MS, NULL))
		TH_LOG("no answer after every old op was committed: %s", self->r.fg.err);
	TH_LOG("reset answered %llu ms after the write, when the last old op came back",
	       (unsigned long long)(fg_now_ms() - t0));
	EXPECT_EQ(0, fg_vdev_rd(&self->r.v, VIRTIO_MMIO_STATUS));
	st = dstats(self->fd);
	EXPECT_EQ(1, st.reset_waits);
	EXPECT_EQ(0, st.reset_timeouts);
	/* Nothing is held now: the next reset is answered at once. */
	ASSERT_EQ(0, hold_probe(self)) TH_LOG("%s", self->r.v.err);
	EXPECT_EQ(1, dstats(self->fd).reset_waits);
}

TEST_F(hold, reset_answered_at_timeout_when_ops_never_return)
{
	/* The daemon never gives its ops back: the write is answered after reset_timeout_ms (300 here) and counted in reset_timeouts; the ops committed later are dropped as stale and the next reset is answered at once. */
	struct hvio_completion c[NREQ];
	unsigned int old = 5000;
	uint64_t before, t0;

	NEED_SETUP();
	ASSERT_EQ(0, fg_set_reset_timeout(300, &old));
	hold_fetch(_metadata, self, c);
	t0 = fg_now_ms();
	before = push_reset(&self->r);
	EXPECT_EQ(0, fg_wait_ack(&self->r.fg, CPU_GUEST, before, LONG_MS, NULL))
		TH_LOG("%s", self->r.fg.err);
	TH_LOG("reset answered %llu ms after the write (reset_timeout_ms 300)",
	       (unsigned long long)(fg_now_ms() - t0));
	EXPECT_EQ(0, fg_set_reset_timeout(old, NULL));
	EXPECT_EQ(1, dstats(self->fd).reset_timeouts);
	EXPECT_EQ(1, dstats(self->fd).reset_waits);
	ASSERT_EQ(0, hold_run(self->fd, c, NREQ, NULL, 0, NULL));
	ASSERT_EQ(0, hold_probe(self)) TH_LOG("%s", self->r.v.err);
	EXPECT_EQ(1, dstats(self->fd).reset_waits);
}

TEST_F(hold, reset_answered_when_daemon_is_gone)
{
	/* A reset waits for ops of a daemon that then closes its device fd without giving them back: the device becomes an orphan (nothing can write any more) and that answers the write; the orphan, taken over, counts a wait and no timeout. */
	struct hvio_dev_attach a = { .zone_id = ZONE_A, .mmio_base = MMIO_BASE };
	struct hvio_completion c[NREQ];
	struct hvio_dev_stats st;
	uint64_t before;

	NEED_SETUP();
	hold_fetch(_metadata, self, c);
	before = push_reset(&self->r);
	EXPECT_FALSE(answered(&self->r, before));
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(0, fg_wait_ack(&self->r.fg, CPU_GUEST, before, LONG_MS, NULL))
		TH_LOG("no answer once the device is an orphan: %s", self->r.fg.err);
	self->fd = ioctl(self->r.fg.ctl_fd, HVIO_DEV_ATTACH, &a);
	ASSERT_LE(0, self->fd) TH_LOG("ATTACH: %s", strerror(errno));
	st = dstats(self->fd);
	EXPECT_EQ(1, st.reset_waits);
	EXPECT_EQ(0, st.reset_timeouts);
	/* The new holder starts clean: nothing old to wait for. */
	ASSERT_EQ(0, hold_probe(self)) TH_LOG("%s", self->r.v.err);
	EXPECT_EQ(1, dstats(self->fd).reset_waits);
}

/* ---- slow: the real daemon, a backing whose every I/O is slow ------------ */

FIXTURE(slow) {
	struct rig r;
	bool skip;
	pid_t pid;
	int out_fd;
	char nullb[64], dev[32], cfg[64], log[64], sock[64];
};

/* A 256 MiB memory-backed null_blk whose every I/O completes after ms. */
static int nullb_create(FIXTURE_DATA(slow) *self, unsigned int ms)
{
	char buf[32], path[96];
	int fd, n, ret;

	if (access(NULLB_CFS, F_OK)) {
		mount("none", "/sys/kernel/config", "configfs", 0, NULL);
		if (access(NULLB_CFS, F_OK))
			return -ENOENT;
	}
	snprintf(self->nullb, sizeof(self->nullb), NULLB_CFS "/slow%d", getpid());
	if (mkdir(self->nullb, 0755))
		return -errno;
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)ms * 1000000);
	ret = fg_put(self->nullb, "size", "256") ?:
	      fg_put(self->nullb, "memory_backed", "1") ?:
	      fg_put(self->nullb, "irqmode", "2") ?:
	      fg_put(self->nullb, "completion_nsec", buf) ?:
	      fg_put(self->nullb, "power", "1");
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%s/index", self->nullb);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* Named after the configfs directory (6.1), or nullb<index>. */
	snprintf(self->dev, sizeof(self->dev), "/dev/slow%d", getpid());
	if (fg_wait_path(self->dev, true, 2000))
		return 0;
	snprintf(self->dev, sizeof(self->dev), "/dev/nullb%lu", strtoul(buf, NULL, 0));
	return fg_wait_path(self->dev, true, 2000) ? 0 : -ENODEV;
}

static int daemon_start(FIXTURE_DATA(slow) *self)
{
	char json[1024];
	int ret;

	snprintf(json, sizeof(json),
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"queues\":1,"
		 "\"queue_size\":%u}]}]}\n",
		 ZONE_A, (unsigned long long)fg_zone_phys(&self->r.fg, &self->r.z),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)MMIO_BASE, IRQ, self->dev, QN);
	ret = fg_write_file(self->cfg, json);
	if (ret)
		return ret;
	ret = fg_daemon_spawn(self->cfg, self->sock, self->log, &self->out_fd);
	if (ret < 0)
		return ret;
	self->pid = ret;
	return fg_daemon_wait_line(self->out_fd, "hvio: ready", LONG_MS);
}

static int daemon_kill(FIXTURE_DATA(slow) *self, int sig)
{
	int st;

	if (self->pid <= 0)
		return -ESRCH;
	kill(self->pid, sig);
	if (waitpid(self->pid, &st, 0) != self->pid)
		return -errno;
	self->pid = 0;
	close(self->out_fd);
	self->out_fd = -1;
	return st;
}

/*
 * A number from `hvio status --json`: the first @key after @section (""
 * for the start); -1 if the daemon did not answer.  The kernel's queue
 * counters sit under "kernel"; the daemon's own ("inflight": ops fetched
 * and not committed) come before it.
 */
static long status_num(FIXTURE_DATA(slow) *self, const char *section,
		       const char *key)
{
	char out[16384], *p;
	size_t len = 0;
	int pfd[2], st;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(pfd[1], 1);
		execl(fg_daemon_bin(), "hvio", "status", "--socket", self->sock,
		      "--json", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (len < sizeof(out) - 1 &&
	       (n = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += n;
	out[len] = 0;
	close(pfd[0]);
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	p = strstr(out, section);
	p = p ? strstr(p, key) : NULL;
	return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* The kernel's stale count of queue 0. */
static long kernel_stale(FIXTURE_DATA(slow) *self)
{
	return status_num(self, "\"kernel\"", "\"stale\":");
}

/*
 * Wait until the daemon holds @n ops.  The guest's avail_event moves when
 * the kernel parsed the chains, a moment before it hands them to the
 * daemon; a reset in between drops them unexecuted and is not held.
 */
static bool wait_daemon_holds(FIXTURE_DATA(slow) *self, long n, unsigned int ms)
{
	uint64_t t0 = fg_now_ms();

	while (status_num(self, "", "\"inflight\":") < n) {
		if (fg_now_ms() - t0 > ms)
			return false;
		fg_sleep_ms(5);
	}
	return true;
}

FIXTURE_SETUP(slow)
{
	int me = getpid(), ret;

	self->pid = 0;
	self->out_fd = -1;
	if (rig_open(_metadata, &self->r, &self->skip))
		return;
	snprintf(self->cfg, sizeof(self->cfg), "/tmp/hvio-reset-%d.json", me);
	snprintf(self->log, sizeof(self->log), "/tmp/hvio-reset-%d.log", me);
	snprintf(self->sock, sizeof(self->sock), "/tmp/hvio-reset-%d.sock", me);
	ret = nullb_create(self, SLOW_MS);
	if (ret == -ENOENT) {
		self->skip = true;
		SKIP(return, "no null_blk configfs (%s): the runner loads null_blk", NULLB_CFS);
	}
	ASSERT_EQ(0, ret) TH_LOG("null_blk device: %s", errname(ret));
	ASSERT_EQ(0, daemon_start(self)) TH_LOG("daemon not ready: %s", fg_file_tail(self->log));
	fg_vdev_init(&self->r.v, &self->r.fg, CPU_GUEST, ZONE_A, MMIO_BASE);
	memset(gptr(&self->r, GUEST_RAM), 0, 0x40000);
	ASSERT_EQ(0, fg_vdev_probe(&self->r.v, FEATURES, 1, QN, GUEST_RAM))
		TH_LOG("%s", self->r.v.err);
}

FIXTURE_TEARDOWN(slow)
{
	if (self->pid > 0)
		daemon_kill(self, SIGTERM);
	if (self->nullb[0]) {
		fg_put(self->nullb, "power", "0");
		rmdir(self->nullb);
	}
	unlink(self->cfg);
	unlink(self->log);
	if (!self->skip)
		hvio_fixture_close(_metadata, &self->r.fg);
}

TEST_F(slow, reset_waits_for_reads_in_flight)
{
	/* 4 reads of 64 KiB in flight on a backing where every I/O takes 1.5 s; the guest resets: the answer comes only after the daemon committed all 4 (kernel stale count 4 when it comes), and buffers the guest refills with a pattern after the answer stay intact once every old op finished. */
	uint64_t before, t0, ms;
	long stale;

	NEED_SETUP();
	post_reads(&self->r, 0, 32768);
	ASSERT_TRUE(wait_taken(&self->r, LONG_MS)) TH_LOG("the daemon did not take the reads");
	ASSERT_TRUE(wait_daemon_holds(self, NREQ, LONG_MS))
		TH_LOG("the daemon does not hold the %d reads", NREQ);
	t0 = fg_now_ms();
	before = push_reset(&self->r);
	ASSERT_NE(~0ULL, before);
	if (!answered(&self->r, before))
		EXPECT_NE(0, fg_read32(&self->r.fg, CPU_OTHER, ZONE_A,
				       MMIO_BASE + VIRTIO_MMIO_STATUS))
			TH_LOG("another vCPU reads Status 0 before the reset is answered");
	ASSERT_EQ(0, fg_wait_ack(&self->r.fg, CPU_GUEST, before, LONG_MS, NULL))
		TH_LOG("%s", self->r.fg.err);
	ms = fg_now_ms() - t0;
	stale = kernel_stale(self);
	/* The zone's new kernel takes its memory back. */
	refill(&self->r);
	EXPECT_EQ(NREQ, stale)
		TH_LOG("reset answered (after %llu ms) with %ld of %d old reads committed",
		       (unsigned long long)ms, stale, NREQ);
	TH_LOG("reset answered %llu ms after the write (reads take %d ms each)",
	       (unsigned long long)ms, SLOW_MS);
	/* Let every old read finish, wherever it went. */
	t0 = fg_now_ms();
	while ((stale = kernel_stale(self)) < NREQ && fg_now_ms() - t0 < LONG_MS)
		fg_sleep_ms(50);
	EXPECT_EQ(NREQ, stale) TH_LOG("%s", fg_file_tail(self->log));
	fg_sleep_ms(100);
	EXPECT_EQ(0, damaged(&self->r))
		TH_LOG("%lu bytes of the guest's refilled buffers written by reads of the old generation",
		       damaged(&self->r));
	/* And the device works on. */
	memset(gptr(&self->r, GUEST_RAM), 0, 0x40000);
	self->r.avail_idx = 0;
	ASSERT_EQ(0, fg_vdev_probe(&self->r.v, FEATURES, 1, QN, GUEST_RAM))
		TH_LOG("%s", self->r.v.err);
	post_reads(&self->r, 65536, 8);
	ASSERT_TRUE(wait_taken(&self->r, LONG_MS));
}

TEST_F(slow, reset_pending_when_daemon_killed)
{
	/* Reads in flight, the guest resets, the daemon is SIGKILLed before they finish: the answer comes when the device becomes an orphan (no timeout counted), and buffers refilled after it stay intact. */
	struct hvio_dev_attach a = { .zone_id = ZONE_A, .mmio_base = MMIO_BASE };
	struct hvio_dev_stats st;
	uint64_t before, t0;
	int fd;

	NEED_SETUP();
	post_reads(&self->r, 0, 32768);
	ASSERT_TRUE(wait_taken(&self->r, LONG_MS)) TH_LOG("the daemon did not take the reads");
	ASSERT_TRUE(wait_daemon_holds(self, NREQ, LONG_MS))
		TH_LOG("the daemon does not hold the %d reads", NREQ);
	before = push_reset(&self->r);
	ASSERT_NE(~0ULL, before);
	EXPECT_FALSE(answered(&self->r, before))
		TH_LOG("Status = 0 answered while the daemon's reads are in flight");
	t0 = fg_now_ms();
	daemon_kill(self, SIGKILL);
	ASSERT_EQ(0, fg_wait_ack(&self->r.fg, CPU_GUEST, before, LONG_MS, NULL))
		TH_LOG("%s", self->r.fg.err);
	TH_LOG("reset answered %llu ms after SIGKILL", (unsigned long long)(fg_now_ms() - t0));
	refill(&self->r);
	fg_sleep_ms(2 * SLOW_MS);
	EXPECT_EQ(0, damaged(&self->r))
		TH_LOG("%lu bytes of the refilled buffers written after the answer",
		       damaged(&self->r));
	fd = ioctl(self->r.fg.ctl_fd, HVIO_DEV_ATTACH, &a);
	ASSERT_LE(0, fd) TH_LOG("ATTACH: %s", strerror(errno));
	memset(&st, 0, sizeof(st));
	fg_dev_stats(fd, &st);
	EXPECT_EQ(1, st.reset_waits);
	EXPECT_EQ(0, st.reset_timeouts);
	ioctl(fd, HVIO_DEV_DESTROY);
	close(fd);
}

TEST_HARNESS_MAIN
