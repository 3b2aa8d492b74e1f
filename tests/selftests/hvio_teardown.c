// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_teardown: tearing things down in every order while I/O is in
 * flight.  The program plays hvisor and the guest (through /dev/hvio-sim)
 * and, except for the daemon_* tests, the daemon too (HVIO_DEV_QUEUE_RUN
 * by hand, as hvio_queue.c does):
 *   - device fd close / op-slot munmap / zone-RAM munmap in all six orders
 *     with fetched, uncommitted ops; HVIO_ZONE_DEL is EBUSY while anything
 *     holds the device, then succeeds; the old window reads 0;
 *   - guest reset with ops in flight: their completions are stale;
 *   - the real daemon SIGKILLed with guest requests outstanding: its devices
 *     go away, its zone stays until HVIO_ZONE_DEL; SIGTERM: clean exit;
 *   - rmmod refused while anything is open, then unload/reload cycles;
 *   - live object counts (HVIO_GET_STATS) and slab use return to the start.
 */
#include "hvio_test.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#define QN		16
#define IRQ		41
#define LOOPS		100
#define NREQ		4			/* flushes in flight per loop */
#define RAM_MAP		0x10000			/* zone RAM mapped per device */
#define HDR		(GUEST_RAM + 0x10000)	/* shared FLUSH header */
#define STATUS(i)	(GUEST_RAM + 0x10100 + (i))
#define FEATURES	(FG_F_VERSION_1 | (1ULL << VIRTIO_BLK_F_FLUSH))
#define SLAB_BOUND	(128 * 1024LL)		/* growth allowed; noise is ~10 KiB */

#define MOD_SYSFS	"/sys/module/hvio"

/* ---- a device driven by hand -------------------------------------------- */

struct rig {
	struct fg *fg;
	struct fg_zone z;
	int fd;
	struct hvio_op *ops;
	size_t ops_len;
	uint8_t *ram;
	struct fg_vdev v;
	uint16_t avail_idx, next_desc;
};

static void *gptr(struct rig *r, uint64_t gpa)
{
	return fg_zone_ptr(r->fg, &r->z, gpa);
}

static int rig_create(struct rig *r)
{
	struct virtio_blk_config cfg;
	struct hvio_dev_create c;

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = 2048;
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, IRQ, 1, QN,
		    FEATURES, &cfg, sizeof(cfg));
	r->fd = fg_dev_create(r->fg, &c);
	return r->fd;
}

static int rig_map(struct rig *r)
{
	r->ops_len = (QN * sizeof(struct hvio_op) + 4095) & ~4095UL;
	r->ops = mmap(NULL, r->ops_len, PROT_READ, MAP_SHARED, r->fd,
		      HVIO_DEV_MMAP_RING_BASE);
	if (r->ops == MAP_FAILED) {
		r->ops = NULL;
		return -errno;
	}
	r->ram = mmap(NULL, RAM_MAP, PROT_READ | PROT_WRITE, MAP_SHARED,
		      r->fd, GUEST_RAM);
	if (r->ram == MAP_FAILED) {
		r->ram = NULL;
		return -errno;
	}
	return 0;
}

static int rig_probe(struct rig *r)
{
	r->avail_idx = r->next_desc = 0;
	memset(gptr(r, GUEST_RAM), 0, 0x4000);	/* the rings */
	return fg_vdev_probe(&r->v, FEATURES, 1, QN, GUEST_RAM);
}

/* Post one FLUSH (header, status byte i); returns its head. */
static uint16_t rig_post(struct rig *r, int i)
{
	struct fg_vq *vq = &r->v.vq[0];
	struct vring_desc *desc = gptr(r, vq->desc);
	struct vring_avail *avail = gptr(r, vq->driver);
	struct virtio_blk_outhdr *h = gptr(r, HDR);
	uint16_t head = r->next_desc, d1 = (head + 1) % vq->num;

	h->type = VIRTIO_BLK_T_FLUSH;
	h->ioprio = 0;
	h->sector = 0;
	*(uint8_t *)gptr(r, STATUS(i)) = 0xee;
	desc[head] = (struct vring_desc){ .addr = HDR, .len = 16,
					  .flags = VRING_DESC_F_NEXT,
					  .next = d1 };
	desc[d1] = (struct vring_desc){ .addr = STATUS(i), .len = 1,
					.flags = VRING_DESC_F_WRITE };
	r->next_desc = (head + 2) % vq->num;
	avail->ring[r->avail_idx % vq->num] = head;
	__atomic_store_n(&avail->idx, ++r->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static void rig_kick(struct rig *r)
{
	fg_notify(r->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	fg_wait_consumed(r->fg, FG_TIMEOUT_MS);
}

static int rig_run(struct rig *r, const struct hvio_completion *c, int nc,
		   uint16_t *tags, int max, uint32_t *gen)
{
	struct hvio_queue_run run = {
		.queue = 0, .nr_commit = nc, .max_fetch = max,
		.commits_addr = (uintptr_t)c, .tags_addr = (uintptr_t)tags,
	};

	if (ioctl(r->fd, HVIO_DEV_QUEUE_RUN, &run))
		return -errno;
	if (gen)
		*gen = run.generation;
	return run.nr_fetched;
}

static uint16_t rig_used_idx(struct rig *r)
{
	struct vring_used *used = gptr(r, r->v.vq[0].device);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static struct hvio_queue_stats rig_qstats(struct rig *r)
{
	struct hvio_queue_stats st = { .queue = 0 };

	if (ioctl(r->fd, HVIO_DEV_GET_QUEUE_STATS, &st))
		memset(&st, 0xff, sizeof(st));
	return st;
}

static void rig_release(struct rig *r)
{
	if (r->ops)
		munmap(r->ops, r->ops_len);
	if (r->ram)
		munmap(r->ram, RAM_MAP);
	if (r->fd >= 0)
		close(r->fd);
	r->ops = NULL;
	r->ram = NULL;
	r->fd = -1;
}

static uint64_t read_stat(struct fg *fg, size_t off)
{
	struct hvio_stats st;

	if (fg_stats(fg, &st))
		return ~0ULL;
	return *(uint64_t *)((char *)&st + off);
}
#define STAT(fg, f)	read_stat(fg, offsetof(struct hvio_stats, f))

/* ---- slab accounting ------------------------------------------------------ */

struct memsnap {
	long long slabinfo;	/* sum of active_objs * objsize, -1: n/a */
	long long slab_kb;	/* meminfo Slab: */
	long long vmalloc_kb;	/* meminfo VmallocUsed: */
};

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);

	sync();
	if (fd >= 0) {
		if (write(fd, "3\n", 2) < 0)
			;	/* best effort */
		close(fd);
	}
}

static long long meminfo_kb(const char *key)
{
	char line[256];
	long long v = -1;
	size_t l = strlen(key);
	FILE *f = fopen("/proc/meminfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, l) && line[l] == ':') {
			v = atoll(line + l + 1);
			break;
		}
	fclose(f);
	return v;
}

static long long slabinfo_bytes(void)
{
	char line[512], name[128];
	long long sum = 0, active, num, size;
	FILE *f = fopen("/proc/slabinfo", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || !strncmp(line, "slabinfo", 8))
			continue;
		if (sscanf(line, "%127s %lld %lld %lld", name, &active, &num,
			   &size) == 4)
			sum += active * size;
	}
	fclose(f);
	return sum;
}

static struct memsnap memsnap(void)
{
	struct memsnap s;

	drop_caches();
	fg_sleep_ms(50);	/* let RCU-deferred frees run */
	s.slabinfo = slabinfo_bytes();
	s.slab_kb = meminfo_kb("Slab");
	s.vmalloc_kb = meminfo_kb("VmallocUsed");
	return s;
}

/* Growth in bytes by the most precise measure available. */
static long long slab_growth(const struct memsnap *a, const struct memsnap *b)
{
	if (a->slabinfo >= 0 && b->slabinfo >= 0)
		return b->slabinfo - a->slabinfo;
	return (b->slab_kb - a->slab_kb) * 1024;
}

/* ---- fixture: the program is hvisor, guest and daemon --------------------- */

FIXTURE(teardown) {
	struct fg fg;
	bool skip;
	struct rig r;
};

FIXTURE_SETUP(teardown)
{
	self->r.fd = -1;
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	self->r.fg = &self->fg;
	self->r.z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				      .ram_off = 0, .size = MIB };
	fg_vdev_init(&self->r.v, &self->fg, 0, ZONE_A, MMIO_BASE);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(teardown)
{
	_metadata->trigger = 0;
	rig_release(&self->r);
	if (!self->skip)
		hvio_fixture_close(_metadata, &self->fg);
}

/*
 * One iteration of the close/munmap/zone-del dance.  order picks one of the
 * six orders in which the device fd, the op-slot mapping and the zone-RAM
 * mapping are released.  Returns false after a failed ASSERT-like check.
 */
static bool close_iteration(struct __test_metadata *_metadata,
			    FIXTURE_DATA(teardown) *self, int order)
{
	static const unsigned char perms[6][3] = {
		{ 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
		{ 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 },
	};
	static const char *const what[3] = { "device fd", "op-slot mapping",
					     "zone-RAM mapping" };
	struct rig *r = &self->r;
	uint16_t tags[QN], heads[NREQ];
	uint64_t unk;
	uint32_t gen = 0;
	int i, k, n;

	if (fg_zone_add(&self->fg, &r->z)) {
		TH_LOG("zone add: %s", self->fg.err);
		return false;
	}
	n = rig_create(r);
	if (n < 0) {
		TH_LOG("DEV_CREATE: %s", errname(n));
		return false;
	}
	n = rig_map(r);
	if (n) {
		TH_LOG("mmap: %s", errname(n));
		return false;
	}
	n = rig_probe(r);
	if (n) {
		TH_LOG("probe: %s", r->v.err);
		return false;
	}
	for (i = 0; i < NREQ; i++)
		heads[i] = rig_post(r, i);
	rig_kick(r);
	n = rig_run(r, NULL, 0, tags, QN, &gen);
	if (n != NREQ) {
		TH_LOG("QUEUE_RUN fetched %d (%s), expected %d", n,
		       errname(n), NREQ);
		return false;
	}
	for (i = 0; i < NREQ; i++) {
		if (tags[i] != heads[i] ||
		    r->ops[tags[i]].type != HVIO_OP_FLUSH ||
		    r->ops[tags[i]].generation != gen) {
			TH_LOG("op %d: tag %u (head %u) type %u gen %u/%u", i,
			       tags[i], heads[i], r->ops[tags[i]].type,
			       r->ops[tags[i]].generation, gen);
			return false;
		}
	}
	/* the RAM mapping aliases zone RAM */
	r->ram[0x8000] = (uint8_t)order + 1;
	if (*(uint8_t *)gptr(r, GUEST_RAM + 0x8000) != (uint8_t)order + 1) {
		TH_LOG("zone-RAM mapping does not alias zone RAM");
		return false;
	}

	for (k = 0; k < 3; k++) {
		int obj = perms[order][k];

		if (obj == 0) {
			close(r->fd);
			r->fd = -1;
		} else if (obj == 1) {
			EXPECT_EQ(0, munmap(r->ops, r->ops_len));
			r->ops = NULL;
		} else {
			EXPECT_EQ(0, munmap(r->ram, RAM_MAP));
			r->ram = NULL;
		}
		if (k == 2)
			break;
		/* something still holds the device: it lives and answers */
		n = fg_zone_del(&self->fg, ZONE_A);
		if (n != -EBUSY) {
			TH_LOG("order %d: ZONE_DEL after releasing the %s "
			       "(device still held): %s, expected EBUSY",
			       order, what[obj], errname(n));
			return false;
		}
		if (fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE) != FG_MMIO_MAGIC) {
			TH_LOG("order %d: device held by a %s no longer answers",
			       order, what[perms[order][k + 1]]);
			return false;
		}
		if (STAT(&self->fg, devs) != 1) {
			TH_LOG("order %d: devs %llu while held", order,
			       (unsigned long long)STAT(&self->fg, devs));
			return false;
		}
	}
	/* last reference gone: the device is destroyed */
	if (STAT(&self->fg, devs) != 0) {
		TH_LOG("order %d: devs %llu after every reference was released",
		       order, (unsigned long long)STAT(&self->fg, devs));
		return false;
	}
	unk = STAT(&self->fg, unknown_addr);
	if (fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE) != 0 ||
	    fg_read32(&self->fg, 0, ZONE_A,
		      MMIO_BASE + VIRTIO_MMIO_STATUS) != 0) {
		TH_LOG("order %d: old window still answers", order);
		return false;
	}
	fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	fg_wait_consumed(&self->fg, FG_TIMEOUT_MS);
	if (STAT(&self->fg, unknown_addr) < unk + 2) {
		TH_LOG("order %d: unknown_addr %llu -> %llu", order,
		       (unsigned long long)unk,
		       (unsigned long long)STAT(&self->fg, unknown_addr));
		return false;
	}
	n = fg_zone_del(&self->fg, ZONE_A);
	if (n) {
		TH_LOG("order %d: ZONE_DEL after the last release: %s", order,
		       errname(n));
		return false;
	}
	return true;
}

static void close_loop(struct __test_metadata *_metadata,
		       FIXTURE_DATA(teardown) *self, int loops)
{
	struct hvio_stats st;
	int i;

	for (i = 0; i < loops; i++) {
		ASSERT_TRUE(close_iteration(_metadata, self, i % 6))
			TH_LOG("iteration %d failed", i);
		ASSERT_EQ(0, self->fg.errors) TH_LOG("iteration %d: %s", i,
						     self->fg.err);
	}
	ASSERT_EQ(0, fg_stats(&self->fg, &st));
	EXPECT_EQ(0, st.zones);
	EXPECT_EQ(0, st.devs);
}

TEST_F(teardown, close_with_ops_in_flight)
{
	/* x100: with fetched, uncommitted ops and both mappings live, the device fd, op-slot and zone-RAM mappings are released in all six orders; ZONE_DEL is EBUSY while any of them holds the device, then succeeds; the old window reads 0 (unknown_addr); zones and devs return to 0. */
	NEED_SETUP();
	close_loop(_metadata, self, LOOPS);
}

TEST_F(teardown, slab_returns_to_start)
{
	/* After a warm-up, 100 more close_with_ops_in_flight iterations leave slab use (slabinfo active bytes, else meminfo Slab) within 128 KiB of where it started; the numbers are logged. */
	struct memsnap a, b;
	long long g;
	uint64_t deadline;

	NEED_SETUP();
	if (getenv("HVIO_DEBUG_KERNEL"))
		SKIP(return, "debug kernel: KASAN's quarantine keeps freed objects, so slab use cannot return (kmemleak judges leaks there)");
	close_loop(_metadata, self, 12);	/* warm caches */
	a = memsnap();
	close_loop(_metadata, self, LOOPS);
	b = memsnap();
	/* deferred frees (RCU, per-cpu caches): settle before judging */
	deadline = fg_now_ms() + 3000;
	while ((g = slab_growth(&a, &b)) >= SLAB_BOUND &&
	       fg_now_ms() < deadline) {
		fg_sleep_ms(200);
		b = memsnap();
	}
	TH_LOG("slab before %lld B (meminfo Slab %lld kB, VmallocUsed %lld kB), "
	       "after %d loops %lld B (Slab %lld kB, VmallocUsed %lld kB): "
	       "growth %lld B (%s)", a.slabinfo, a.slab_kb, a.vmalloc_kb,
	       LOOPS, b.slabinfo, b.slab_kb, b.vmalloc_kb, g,
	       a.slabinfo >= 0 ? "slabinfo" : "meminfo");
	EXPECT_LT(g, SLAB_BOUND)
		TH_LOG("slab grew by %lld bytes over %d device lifetimes",
		       g, LOOPS);
	/* op slots are vmalloc'ed: they must be returned as well */
	if (a.vmalloc_kb >= 0 && b.vmalloc_kb >= 0)
		EXPECT_LT((b.vmalloc_kb - a.vmalloc_kb) * 1024, SLAB_BOUND)
			TH_LOG("VmallocUsed grew %lld -> %lld kB",
			       a.vmalloc_kb, b.vmalloc_kb);
}

TEST_F(teardown, reset_with_ops_in_flight)
{
	/* x100: ops fetched, then the guest resets (Status=0, answered once the daemon committed the old ops; sometimes re-probes and even re-posts the same heads): the old ops are dropped as stale, write no used entry or status byte, while new-generation ops complete normally. */
	struct rig *r = &self->r;
	struct hvio_completion c[2 * NREQ];
	struct hvio_queue_stats before, after;
	uint16_t tags[QN], tags2[QN];
	uint32_t gen, gen2;
	uint64_t flag;
	int i, j, k, n, mode;

	NEED_SETUP();
	ASSERT_EQ(0, fg_zone_add(&self->fg, &r->z));
	ASSERT_LE(0, rig_create(r));
	ASSERT_EQ(0, rig_map(r));
	for (i = 0; i < LOOPS; i++) {
		k = 1 + i % NREQ;
		mode = i % 3;
		ASSERT_EQ(0, rig_probe(r)) TH_LOG("iteration %d: %s", i, r->v.err);
		for (j = 0; j < k; j++)
			rig_post(r, j);
		rig_kick(r);
		ASSERT_EQ(k, rig_run(r, NULL, 0, tags, QN, &gen))
			TH_LOG("iteration %d", i);
		for (j = 0; j < k; j++)
			c[j] = (struct hvio_completion){ .tag = tags[j],
							 .generation = gen };
		/* The reset is answered once the old ops are back. */
		ASSERT_EQ(0, fg_vdev_reset_start(&r->v, &flag)) TH_LOG("%s", r->v.err);
		before = rig_qstats(r);
		ASSERT_EQ(0, rig_run(r, c, k, NULL, 0, &gen2))
			TH_LOG("iteration %d (mode %d): commit failed", i, mode);
		EXPECT_NE(gen, gen2);
		ASSERT_EQ(0, fg_vdev_reset_wait(&r->v, flag)) TH_LOG("%s", r->v.err);
		if (mode)
			ASSERT_EQ(0, rig_probe(r)) TH_LOG("%s", r->v.err);
		n = 0;
		if (mode == 2) {
			/* the new generation reuses the very same heads */
			for (j = 0; j < k; j++)
				rig_post(r, NREQ + j);
			rig_kick(r);
			n = rig_run(r, NULL, 0, tags2, QN, &gen2);
			ASSERT_EQ(k, n) TH_LOG("iteration %d: new-generation fetch: %s",
					       i, errname(n));
			ASSERT_NE(gen, gen2);
			for (j = 0; j < k; j++) {
				EXPECT_EQ(tags[j], tags2[j]);
				c[j] = (struct hvio_completion){
					.tag = tags2[j], .generation = gen2 };
			}
			ASSERT_EQ(0, rig_run(r, c, n, NULL, 0, NULL))
				TH_LOG("iteration %d: new-generation commit failed", i);
		}
		after = rig_qstats(r);
		EXPECT_EQ(k, after.stale - before.stale)
			TH_LOG("iteration %d (mode %d)", i, mode);
		EXPECT_EQ(n, after.completed - before.completed)
			TH_LOG("iteration %d (mode %d)", i, mode);
		EXPECT_EQ(n, rig_used_idx(r)) TH_LOG("iteration %d (mode %d)", i, mode);
		for (j = 0; j < k; j++)
			EXPECT_EQ(0xee, *(uint8_t *)gptr(r, STATUS(j)))
				TH_LOG("iteration %d: stale op wrote its status", i);
		for (j = 0; j < n; j++)
			EXPECT_EQ(VIRTIO_BLK_S_OK,
				  *(uint8_t *)gptr(r, STATUS(NREQ + j)));
		EXPECT_EQ(0, fg_vdev_rd(&r->v, VIRTIO_MMIO_STATUS) & 0x40);
		if (_metadata->passed == 0)
			break;
	}
	ASSERT_EQ(0, self->fg.errors) TH_LOG("%s", self->fg.err);
	rig_release(r);
	EXPECT_EQ(0, STAT(&self->fg, devs));
	EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	EXPECT_EQ(0, STAT(&self->fg, zones));
}

/* ---- the real daemon --------------------------------------------------- */

#define D_ZONE_SIZE	(4 * MIB)
#define D_IMG_SIZE	(4 * MIB)
#define D_QSIZE		64
#define D_NREQ		16
#define D_REQ_LEN	(64 * 1024)
#define D_DATA		(GUEST_RAM + 0x100000)
#define D_READY_LINE	"hvio: ready (1 devices)"
#define D_READY_MS	20000
#define D_STOP_MS	10000
#define D_GONE_MS	5000
#define D_KILLS		20

FIXTURE(daemon) {
	struct fg fg;
	bool skip;
	struct fg_zone z;
	struct fg_vdev v;
	pid_t pid;
	int out_fd;
	char out[2048];
	size_t out_len;
	char img[64], cfg[64], log[64], sock[64];
};

static int write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

static int d_spawn(FIXTURE_DATA(daemon) *self)
{
	int pid;

	unlink(self->sock);
	pid = fg_daemon_spawn(self->cfg, self->sock, self->log, &self->out_fd);
	if (pid < 0)
		return pid;
	self->pid = pid;
	self->out_len = 0;
	self->out[0] = 0;
	return 0;
}

/* Wait for the ready line: 0, -ETIMEDOUT, or -ECHILD (stdout closed). */
static int d_wait_ready(FIXTURE_DATA(daemon) *self)
{
	uint64_t deadline = fg_now_ms() + D_READY_MS;
	struct pollfd pfd = { .fd = self->out_fd, .events = POLLIN };
	ssize_t n;

	while (!strstr(self->out, D_READY_LINE "\n")) {
		if (fg_now_ms() > deadline)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		n = read(self->out_fd, self->out + self->out_len,
			 sizeof(self->out) - 1 - self->out_len);
		if (n == 0)
			return -ECHILD;
		if (n > 0) {
			self->out_len += n;
			self->out[self->out_len] = 0;
			if (self->out_len >= sizeof(self->out) - 1)
				self->out_len = 0;	/* keep reading */
		}
	}
	return 0;
}

/* Send sig, reap within D_STOP_MS (SIGKILL after that): wait status or -ETIMEDOUT. */
static int d_stop(FIXTURE_DATA(daemon) *self, int sig)
{
	uint64_t deadline = fg_now_ms() + D_STOP_MS;
	int st = -1;

	if (self->pid <= 0)
		return -ECHILD;
	kill(self->pid, sig);
	while (waitpid(self->pid, &st, WNOHANG) != self->pid) {
		if (fg_now_ms() > deadline) {
			kill(self->pid, SIGKILL);
			waitpid(self->pid, &st, 0);
			st = -ETIMEDOUT;
			break;
		}
		fg_sleep_ms(2);
	}
	self->pid = 0;
	if (self->out_fd >= 0)
		close(self->out_fd);
	self->out_fd = -1;
	return st;
}

static void d_up(struct __test_metadata *_metadata, FIXTURE_DATA(daemon) *self)
{
	int r;

	ASSERT_EQ(0, d_spawn(self));
	r = d_wait_ready(self);
	ASSERT_EQ(0, r) TH_LOG("daemon not ready (%s): stdout \"%s\" (log %s)",
			       errname(r), self->out, self->log);
}

FIXTURE_SETUP(daemon)
{
	char json[1024];
	pid_t me = getpid();
	uint8_t *img;
	size_t i;

	self->pid = 0;
	self->out_fd = -1;
	snprintf(self->img, sizeof(self->img), "/tmp/hvio-td-%d.img", me);
	snprintf(self->cfg, sizeof(self->cfg), "/tmp/hvio-td-%d.json", me);
	snprintf(self->log, sizeof(self->log), "/tmp/hvio-td-%d.log", me);
	snprintf(self->sock, sizeof(self->sock), "/tmp/hvio-td-%d.sock", me);
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	if (access(fg_daemon_bin(), X_OK) && !getenv("HVIO_KO")) {
		self->skip = true;
		SKIP(return, "%s: no daemon binary", fg_daemon_bin());
	}
	ASSERT_LE(D_ZONE_SIZE, self->fg.info.ram_size);
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = D_ZONE_SIZE };
	memset(self->fg.ram, 0, D_ZONE_SIZE);
	img = malloc(D_IMG_SIZE);
	ASSERT_NE(NULL, img);
	for (i = 0; i < D_IMG_SIZE; i++)
		img[i] = (uint8_t)(i * 7 + (i >> 12));
	ASSERT_EQ(0, write_file(self->img, img, D_IMG_SIZE));
	free(img);
	snprintf(json, sizeof(json),
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"queues\":1,"
		 "\"queue_size\":%u,\"readonly\":false,\"serial\":\"td\"}]}]}\n",
		 ZONE_A, (unsigned long long)fg_zone_phys(&self->fg, &self->z),
		 (unsigned long long)GUEST_RAM,
		 (unsigned long long)D_ZONE_SIZE,
		 (unsigned long long)MMIO_BASE, IRQ, self->img, D_QSIZE);
	ASSERT_EQ(0, write_file(self->cfg, json, strlen(json)));
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(daemon)
{
	_metadata->trigger = 0;
	if (self->pid > 0)
		d_stop(self, SIGKILL);
	unlink(self->img);
	unlink(self->cfg);
	unlink(self->log);
	unlink(self->sock);
	if (!self->skip) {
		/* the zone of a killed daemon outlives it: sweep, bounded */
		uint64_t deadline = fg_now_ms() + D_GONE_MS;

		while (fg_zone_del(&self->fg, ZONE_A) == -EBUSY &&
		       fg_now_ms() < deadline)
			fg_sleep_ms(10);
		hvio_fixture_close(_metadata, &self->fg);
	}
}

/* The guest probes and posts D_NREQ 64 KiB reads in one kick. */
static int d_guest_io(FIXTURE_DATA(daemon) *self, struct vring_used **usedp)
{
	struct fg_vq *vq;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct virtio_blk_outhdr *h;
	uint64_t hdr, data, st;
	int i, d, r;

	memset(fg_zone_ptr(&self->fg, &self->z, GUEST_RAM), 0, 0x10000);
	r = fg_vdev_probe(&self->v, FEATURES, 1, D_QSIZE, GUEST_RAM);
	if (r)
		return r;
	vq = &self->v.vq[0];
	desc = fg_zone_ptr(&self->fg, &self->z, vq->desc);
	avail = fg_zone_ptr(&self->fg, &self->z, vq->driver);
	*usedp = fg_zone_ptr(&self->fg, &self->z, vq->device);
	for (i = 0; i < D_NREQ; i++) {
		hdr = GUEST_RAM + 0x20000 + i * 32;
		st = hdr + 16;
		data = D_DATA + (uint64_t)i * D_REQ_LEN;
		h = fg_zone_ptr(&self->fg, &self->z, hdr);
		h->type = VIRTIO_BLK_T_IN;
		h->ioprio = 0;
		h->sector = (uint64_t)i * (D_REQ_LEN / 512);
		*(uint8_t *)fg_zone_ptr(&self->fg, &self->z, st) = 0xee;
		d = 3 * i;
		desc[d] = (struct vring_desc){ .addr = hdr, .len = 16,
			.flags = VRING_DESC_F_NEXT, .next = d + 1 };
		desc[d + 1] = (struct vring_desc){ .addr = data,
			.len = D_REQ_LEN,
			.flags = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
			.next = d + 2 };
		desc[d + 2] = (struct vring_desc){ .addr = st, .len = 1,
			.flags = VRING_DESC_F_WRITE };
		avail->ring[i] = d;
	}
	__atomic_store_n(&avail->idx, D_NREQ, __ATOMIC_RELEASE);
	return fg_notify(&self->fg, 0, ZONE_A,
			 MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

TEST_F(daemon, killed_with_io_in_flight)
{
	/* x20: SIGKILL to the daemon right after the guest made 16 reads available: its device becomes an orphan (at the reap, on 6.12 shortly after; kept for a restarted daemon: the guest still reads its registers), its zone stays, and an explicit teardown (HVIO_DEV_ATTACH, HVIO_DEV_DESTROY, close, HVIO_ZONE_DEL) brings every count back to 0. */
	struct hvio_dev_attach a = { .zone_id = ZONE_A, .mmio_base = MMIO_BASE };
	struct vring_used *used;
	unsigned int done_total = 0, done;
	int i, st, r, fd;

	NEED_SETUP();
	for (i = 0; i < D_KILLS; i++) {
		d_up(_metadata, self);
		ASSERT_EQ(1, STAT(&self->fg, devs));
		ASSERT_EQ(1, STAT(&self->fg, zones));
		ASSERT_EQ(0, d_guest_io(self, &used)) TH_LOG("iteration %d: %s",
							    i, self->v.err);
		if (i % 4)
			fg_sleep_ms(i % 4 == 3 ? 5 : i % 4 - 1);
		st = d_stop(self, SIGKILL);
		ASSERT_TRUE(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			TH_LOG("iteration %d: wait status %#x", i, st);
		done = __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
		done_total += done;
		/* the fds died with the process: the device becomes an orphan */
		ASSERT_EQ(1, STAT(&self->fg, devs));
		ASSERT_EQ(1, fg_wait_orphans(&self->fg, 1, FG_ORPHAN_WAIT_MS, NULL))
			TH_LOG("iteration %d: no orphan after SIGKILL", i);
		EXPECT_EQ(1, STAT(&self->fg, zones));
		EXPECT_EQ(FG_MMIO_MAGIC, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE));
		EXPECT_ERR(EBUSY, fg_zone_del(&self->fg, ZONE_A));
		ASSERT_EQ(0, self->fg.errors) TH_LOG("%s", self->fg.err);
		/* explicit teardown */
		fd = ioctl(self->fg.ctl_fd, HVIO_DEV_ATTACH, &a);
		ASSERT_LE(0, fd) TH_LOG("iteration %d: ATTACH: %s", i,
					strerror(errno));
		EXPECT_EQ(0, STAT(&self->fg, orphans));
		ASSERT_EQ(0, ioctl(fd, HVIO_DEV_DESTROY));
		close(fd);
		EXPECT_EQ(0, STAT(&self->fg, devs));
		EXPECT_EQ(0, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE));
		r = fg_zone_del(&self->fg, ZONE_A);
		ASSERT_EQ(0, r) TH_LOG("iteration %d: ZONE_DEL: %s", i, errname(r));
		EXPECT_EQ(0, STAT(&self->fg, zones));
		fg_flush_res(&self->fg);
	}
	TH_LOG("%d kills: %u of %d reads had completed before the kill",
	       D_KILLS, done_total, D_KILLS * D_NREQ);
}

TEST_F(daemon, sigterm_removes_its_zone)
{
	/* SIGTERM with guest reads outstanding: the daemon exits 0, closing its device and deleting its own zone (ZONE_DEL then says ENOENT; zones and devs 0). */
	struct vring_used *used;
	int st;

	NEED_SETUP();
	d_up(_metadata, self);
	ASSERT_EQ(0, d_guest_io(self, &used)) TH_LOG("%s", self->v.err);
	st = d_stop(self, SIGTERM);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("wait status %#x (log %s)", st, self->log);
	EXPECT_EQ(D_NREQ, __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE));
	EXPECT_EQ(0, STAT(&self->fg, devs));
	EXPECT_EQ(0, STAT(&self->fg, zones));
	EXPECT_EQ(-ENOENT, fg_zone_del(&self->fg, ZONE_A));
	EXPECT_EQ(0, fg_read32(&self->fg, 0, ZONE_A, MMIO_BASE));
}

/* ---- module unload --------------------------------------------------------- */

FIXTURE(rmmod) {
	bool skip;
};

FIXTURE_SETUP(rmmod)
{
	if (access(MOD_SYSFS, F_OK)) {
		self->skip = true;
		SKIP(return, "hvio.ko is not loaded");
	}
}

FIXTURE_TEARDOWN(rmmod)
{
	if (!self->skip && access(MOD_SYSFS, F_OK)) {
		int r = fg_insmod();

		EXPECT_EQ(0, r) TH_LOG("reloading: %s",
				       r > 0 ? "HVIO_KO/HVIO_PARAMS unset" : errname(r));
		EXPECT_TRUE(fg_wait_path(FG_DEV_CTL, true, 2000));
	}
}

TEST_F(rmmod, refused_then_succeeds)
{
	/* x20: delete_module is refused (EBUSY/EAGAIN) while /dev/hvio, a device fd, or only an op-slot mapping of a closed device is held; with all closed it unloads, reloads from $HVIO_KO, and /dev/hvio works with zones and devs 0. */
	struct hvio_dev_create c;
	struct hvio_version ver;
	struct hvio_stats st;
	struct fg_zone z = { .id = ZONE_A, .zonex_ipa = GUEST_RAM,
			     .ram_off = 0, .size = MIB };
	struct fg fg;
	void *ops;
	size_t ops_len = (QN * sizeof(struct hvio_op) + 4095) & ~4095UL;
	uint64_t t0, worst_unload = 0, worst_load = 0;
	int i, fd, dev, r;

	NEED_SETUP();
	if (!getenv("HVIO_KO") || !*getenv("HVIO_KO") || !getenv("HVIO_PARAMS"))
		SKIP(return, "HVIO_KO/HVIO_PARAMS unset: cannot reload, not unloading");
	for (i = 0; i < 20; i++) {
		fd = open(FG_DEV_CTL, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd) TH_LOG("iteration %d: %s: %s", i, FG_DEV_CTL,
					strerror(errno));
		r = fg_rmmod();
		EXPECT_TRUE(fg_rmmod_refused(r)) TH_LOG("/dev/hvio open: delete_module: %s",
					       errname(r));
		ASSERT_EQ(0, access(MOD_SYSFS, F_OK));
		close(fd);

		r = fg_open(&fg);
		ASSERT_EQ(0, r) TH_LOG("iteration %d: %s", i, fg.err);
		fg_zone_sweep(&fg);
		ASSERT_EQ(0, fg_zone_add(&fg, &z)) TH_LOG("%s", fg.err);
		fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, IRQ, 1, QN,
			    FEATURES, NULL, 0);
		dev = fg_dev_create(&fg, &c);
		ASSERT_LE(0, dev) TH_LOG("DEV_CREATE: %s", errname(dev));
		if (i % 2) {	/* sometimes the zone goes first */
			EXPECT_EQ(-EBUSY, fg_zone_del(&fg, ZONE_A));
		}
		fg_close(&fg);	/* /dev/hvio and /dev/hvio-sim closed */
		r = fg_rmmod();
		EXPECT_TRUE(fg_rmmod_refused(r)) TH_LOG("device fd open: delete_module: %s",
					       errname(r));
		ASSERT_EQ(0, access(MOD_SYSFS, F_OK));

		ops = mmap(NULL, ops_len, PROT_READ, MAP_SHARED, dev,
			   HVIO_DEV_MMAP_RING_BASE);
		ASSERT_NE(MAP_FAILED, ops) TH_LOG("mmap: %s", strerror(errno));
		close(dev);
		r = fg_rmmod();
		EXPECT_TRUE(fg_rmmod_refused(r)) TH_LOG("op slots mapped: delete_module: %s",
					       errname(r));
		ASSERT_EQ(0, access(MOD_SYSFS, F_OK));
		EXPECT_EQ(0, munmap(ops, ops_len));

		if (i % 2 == 0) {	/* else unload with the zone registered */
			ASSERT_EQ(0, fg_open(&fg)) TH_LOG("%s", fg.err);
			EXPECT_EQ(0, fg_zone_del(&fg, ZONE_A));
			fg_close(&fg);
		}
		t0 = fg_now_ms();
		r = fg_rmmod();
		ASSERT_EQ(0, r) TH_LOG("iteration %d: nothing open: delete_module: %s",
				       i, errname(r));
		if (fg_now_ms() - t0 > worst_unload)
			worst_unload = fg_now_ms() - t0;
		EXPECT_TRUE(fg_wait_path(FG_DEV_CTL, false, 2000));
		t0 = fg_now_ms();
		r = fg_insmod();
		ASSERT_EQ(0, r) TH_LOG("iteration %d: finit_module: %s", i,
				       errname(r));
		ASSERT_TRUE(fg_wait_path(FG_DEV_CTL, true, 2000));
		if (fg_now_ms() - t0 > worst_load)
			worst_load = fg_now_ms() - t0;
		fd = open(FG_DEV_CTL, O_RDWR | O_CLOEXEC);
		ASSERT_LE(0, fd) TH_LOG("after reload: %s", strerror(errno));
		ASSERT_EQ(0, ioctl(fd, HVIO_GET_VERSION, &ver));
		EXPECT_EQ(HVIO_API_VERSION, ver.api_version);
		ASSERT_EQ(0, ioctl(fd, HVIO_GET_STATS, &st));
		EXPECT_EQ(0, st.zones);
		EXPECT_EQ(0, st.devs);
		close(fd);
	}
	TH_LOG("20 unload/reload cycles: unload at most %llu ms, load at most %llu ms",
	       (unsigned long long)worst_unload, (unsigned long long)worst_load);
}

TEST_HARNESS_MAIN
