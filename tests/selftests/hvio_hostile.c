// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_hostile: a hostile guest.  While valid block requests flow, a chaos
 * thread writes garbage into descriptor tables and rings, jumps avail
 * indices, points descriptors and indirect tables anywhere (outside zone
 * RAM, near 2^64, at the host addresses of the canary pages), resets the
 * device mid-flight and re-probes it with new rings, toggles QueueReady and
 * writes random registers with random widths; several "vCPU" threads with
 * distinct src_cpus storm QueueNotify and register reads.  This program
 * plays hvisor, the guest and the daemon (HVIO_DEV_QUEUE_RUN) itself.
 *
 * Afterwards: the canary pages around the zone window are byte-identical,
 * the device works again after a reset, the counters account for the
 * rejections, and root Linux is responsive.  The VM runner fails the run on
 * BUG/WARNING/Oops in the kernel log.
 *
 * Three variants: fake_daemon (this program answers HVIO_DEV_QUEUE_RUN and
 * reads every counter), real_daemon (`hvio run cfg.json` on a scratch
 * image serves the device during the storm and must then still exit 0 on
 * SIGTERM), and net_fake_daemon (a virtio-net device with merged receive
 * buffers; the fake daemon commits any byte count, truncated packets,
 * cancellations and errors, so receive chains keep moving between ops,
 * the spare list and the used ring while the guest scribbles).
 *
 * HVIO_SEED=n (environment) replays a run; HVIO_STORM_MS overrides the
 * storm duration.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE		/* pthread_timedjoin_np */
#endif
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_net.h>
#include <linux/virtio_ring.h>

#include "hvio_test.h"

#define QN		16		/* queue size */
#define NQ		2
#define IRQ		41
#define CAPACITY	4096		/* sectors */
#define ZSIZE		MIB		/* zone RAM */
#define CANARY		MIB		/* checked bytes on each side */
#define CANARY_BYTE(i)	((uint8_t)(0xa5 ^ ((i) * 131) ^ ((i) >> 9)))
#define STORM_MS	9000		/* fake_daemon; real_daemon: 5000 */
#define READY_LINE	"hvio: ready (1 devices)"
#define STOP_MS		5000		/* SIGTERM to exit */
#define NR_VCPU		3
#define CPU_CHAOS	0
#define CPU_GUEST	1
#define CPU_VCPU0	2		/* 2, 3, 4 */
#define HANG_MS		2000		/* longest acceptable ioctl */

/* Zone RAM layout (guest physical). */
#define RING_SLOTS	8
#define RING_SLOT(s)	(GUEST_RAM + (uint64_t)(s) * 0x8000)	/* 16K used */
#define HDRS		(GUEST_RAM + 0x40000)	/* 64 bytes per (q, head) */
#define BUFS		(GUEST_RAM + 0x60000)	/* 4K per (q, head) */
#define INDS		(GUEST_RAM + 0x80000)	/* 256 bytes per (q, head) */
#define JUNK		(GUEST_RAM + 0x90000)	/* garbage tables */
#define JUNK_LEN	0x70000

#define NET_FEATURES	(FG_F_VERSION_1 | (1ULL << VIRTIO_NET_F_MAC) | \
			 (1ULL << VIRTIO_NET_F_CSUM) | \
			 (1ULL << VIRTIO_NET_F_GUEST_CSUM) | \
			 (1ULL << VIRTIO_NET_F_GUEST_TSO4) | \
			 (1ULL << VIRTIO_NET_F_HOST_TSO4) | \
			 (1ULL << VIRTIO_NET_F_MRG_RXBUF) | \
			 (1ULL << VIRTIO_NET_F_STATUS) | \
			 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
			 (1ULL << VIRTIO_RING_F_EVENT_IDX))
#define BLK_FEATURES	(FG_F_VERSION_1 | (1ULL << VIRTIO_BLK_F_FLUSH) | \
			 (1ULL << VIRTIO_BLK_F_DISCARD) | \
			 (1ULL << VIRTIO_BLK_F_WRITE_ZEROES) | \
			 (1ULL << VIRTIO_BLK_F_CONFIG_WCE) | \
			 (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | \
			 (1ULL << VIRTIO_RING_F_EVENT_IDX))

/* What everybody did; all updated with atomics. */
struct counts {
	unsigned long posts, kicks;			/* guest */
	unsigned long status_ok;	/* earlier request on a head: status 0 */
	unsigned long runs, run_einval, run_other;	/* daemon */
	unsigned long fetched, committed, gen_mismatch;
	unsigned long op_bad;				/* op slot insane */
	unsigned long slow_ioctl;			/* > HANG_MS */
	unsigned long max_ioctl_ms;
	unsigned long garbage_desc, garbage_avail, avail_jump, garbage_used;
	unsigned long evil_chain, evil_indirect, loops, bad_shape;
	unsigned long bogus_commits;
	unsigned long resets, reprobes, probe_fail;
	unsigned long ready_toggles, bad_ready, qsel_writes;
	unsigned long rand_reads, rand_writes;
	unsigned long storm_notifies, storm_reads, bad_cpu_pushes;
	unsigned long wrong_zone;
};

#define CNT(f)		__atomic_add_fetch(&self->cnt.f, 1, __ATOMIC_RELAXED)

FIXTURE(hostile) {
	struct fg fg;
	struct fg_zone z;
	bool skip;
	bool zone;
	int fd;
	unsigned int reset_timeout;	/* hvio.ko's, restored at teardown */
	uint64_t zone_off;		/* zone RAM offset in the sim window */
	struct fg_vdev v;		/* chaos thread's (and final) driver */
	struct hvio_op *ops[NQ];
	size_t ops_len;
	/* The guest's view of the rings; layout_lock guards it. */
	pthread_mutex_t layout_lock;
	struct fg_vq vq[NQ];
	unsigned int slot;
	uint16_t next_desc[NQ];
	int stop;
	bool net;			/* virtio-net instead of virtio-blk */
	uint64_t seed;
	struct counts cnt;
	/* real_daemon */
	pid_t pid;
	int out_fd;
	char out[2048];
	char img[64], cfg[64], log[64], sock[64];
};

FIXTURE_VARIANT(hostile) {
	bool daemon;		/* the real daemon serves the device */
	bool net;		/* a virtio-net device (fake daemon only) */
	unsigned int storm_ms;
};

FIXTURE_VARIANT_ADD(hostile, fake_daemon) {
	.daemon = false,
	.storm_ms = STORM_MS,
};

FIXTURE_VARIANT_ADD(hostile, real_daemon) {
	.daemon = true,
	.storm_ms = 5000,
};

FIXTURE_VARIANT_ADD(hostile, net_fake_daemon) {
	.daemon = false,
	.net = true,
	.storm_ms = 6000,
};

struct thr {
	FIXTURE_DATA(hostile) *self;
	unsigned int cpu;
	uint64_t rng;
};

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static unsigned int rn(uint64_t *s, unsigned int n)
{
	return (unsigned int)(rnd(s) % n);
}

static void *gptr(FIXTURE_DATA(hostile) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->z, gpa);
}

static bool stopping(FIXTURE_DATA(hostile) *self)
{
	return __atomic_load_n(&self->stop, __ATOMIC_RELAXED);
}

static uint8_t *canary_lo(FIXTURE_DATA(hostile) *self)
{
	return self->fg.ram + self->zone_off - CANARY;
}

static uint8_t *canary_hi(FIXTURE_DATA(hostile) *self)
{
	return self->fg.ram + self->zone_off + ZSIZE;
}

static void fill_canaries(FIXTURE_DATA(hostile) *self)
{
	uint8_t *lo = canary_lo(self), *hi = canary_hi(self);
	size_t i;

	for (i = 0; i < CANARY; i++) {
		lo[i] = CANARY_BYTE(i);
		hi[i] = CANARY_BYTE(i + CANARY);
	}
}

/* Offset of the first damaged canary byte, or -1. */
static long check_canaries(FIXTURE_DATA(hostile) *self)
{
	uint8_t *lo = canary_lo(self), *hi = canary_hi(self);
	size_t i;

	for (i = 0; i < CANARY; i++) {
		if (lo[i] != CANARY_BYTE(i))
			return (long)i;
		if (hi[i] != CANARY_BYTE(i + CANARY))
			return (long)(CANARY + i);
	}
	return -1;
}

static int make_dev(FIXTURE_DATA(hostile) *self)
{
	struct virtio_blk_config cfg;
	struct hvio_dev_create c;

	if (self->net) {
		struct virtio_net_config ncfg;

		memset(&ncfg, 0, sizeof(ncfg));
		memcpy(ncfg.mac, "\x02\x00\x00\x00\x00\x02", 6);
		ncfg.status = VIRTIO_NET_S_LINK_UP;
		ncfg.max_virtqueue_pairs = 1;
		fg_dev_init(&c, ZONE_A, VIRTIO_ID_NET, MMIO_BASE, IRQ, NQ, QN,
			    NET_FEATURES, &ncfg, 10);
		return fg_dev_create(&self->fg, &c);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = CAPACITY;
	cfg.seg_max = HVIO_OP_MAX_SEGS;
	cfg.wce = 1;
	cfg.max_discard_sectors = 1024;
	cfg.max_discard_seg = 1;
	cfg.discard_sector_alignment = 8;
	cfg.max_write_zeroes_sectors = 1024;
	cfg.max_write_zeroes_seg = 1;
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, IRQ, NQ, QN,
		    BLK_FEATURES, &cfg, 60);
	memcpy(c.serial, "hvio-hostile", 12);
	return fg_dev_create(&self->fg, &c);
}

/*
 * Reset and probe with the rings in slot `slot` (zeroed first).  Holds
 * layout_lock so the guest thread posts into the new rings only.
 */
static int reprobe(FIXTURE_DATA(hostile) *self, unsigned int slot)
{
	int ret, q;

	pthread_mutex_lock(&self->layout_lock);
	memset(gptr(self, RING_SLOT(slot)), 0, 0x4000);
	ret = fg_vdev_probe(&self->v, self->net ? NET_FEATURES : BLK_FEATURES,
			    NQ, QN, RING_SLOT(slot));
	self->slot = slot;
	for (q = 0; q < NQ; q++) {
		self->vq[q] = self->v.vq[q];
		self->next_desc[q] = 0;
	}
	pthread_mutex_unlock(&self->layout_lock);
	return ret;
}

/* Start `hvio run cfg --socket S`; wait for its ready line. */
static int daemon_start(FIXTURE_DATA(hostile) *self, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	size_t len = 0;

	self->pid = fg_daemon_spawn(self->cfg, self->sock, self->log,
				    &self->out_fd);
	if (self->pid < 0)
		return self->pid;
	self->out[0] = 0;
	while (!strstr(self->out, READY_LINE "\n")) {
		struct pollfd pfd = { .fd = self->out_fd, .events = POLLIN };
		ssize_t n;

		if (fg_now_ms() > deadline)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = read(self->out_fd, self->out + len, sizeof(self->out) - 1 - len);
		if (n <= 0)
			return -ECHILD;
		len += n;
		self->out[len] = 0;
		if (len >= sizeof(self->out) - 1)
			return -E2BIG;
	}
	return 0;
}

/* Signal the daemon; its wait status, or -ETIMEDOUT (then killed). */
static int daemon_stop(FIXTURE_DATA(hostile) *self, int sig, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	int st;

	if (self->pid <= 0)
		return -ECHILD;
	kill(self->pid, sig);
	while (waitpid(self->pid, &st, WNOHANG) == 0) {
		if (fg_now_ms() > deadline) {
			kill(self->pid, SIGKILL);
			waitpid(self->pid, &st, 0);
			self->pid = 0;
			return -ETIMEDOUT;
		}
		usleep(5000);
	}
	self->pid = 0;
	return st;
}

static const char *log_tail(FIXTURE_DATA(hostile) *self)
{
	static char buf[512];
	ssize_t n = 0;
	off_t size;
	int fd, i;

	fd = open(self->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "(no log)";
	size = lseek(fd, 0, SEEK_END);
	if (size > 0)
		n = pread(fd, buf, sizeof(buf) - 1, size > (off_t)sizeof(buf) - 1 ?
			  size - (off_t)sizeof(buf) + 1 : 0);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	for (i = 0; i < n; i++)
		if (buf[i] == '\n')
			buf[i] = '|';
	return buf;
}

/* The daemon registers the zone and creates the device itself. */
static void daemon_setup(struct __test_metadata *_metadata,
			 FIXTURE_DATA(hostile) *self)
{
	char json[1024];
	int fd, r, me = getpid();

	snprintf(self->img, sizeof(self->img), "/tmp/hvio-hostile-%d.img", me);
	snprintf(self->cfg, sizeof(self->cfg), "/tmp/hvio-hostile-%d.json", me);
	snprintf(self->log, sizeof(self->log), "/tmp/hvio-hostile-%d.log", me);
	snprintf(self->sock, sizeof(self->sock), "/tmp/hvio-hostile-%d.sock", me);
	fd = open(self->img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, (off_t)CAPACITY * 512));
	close(fd);
	snprintf(json, sizeof(json),
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"queues\":%u,"
		 "\"queue_size\":%u,\"readonly\":false,\"serial\":\"hvio-hostile\"}]}]}\n",
		 ZONE_A, (unsigned long long)fg_zone_phys(&self->fg, &self->z),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZSIZE,
		 (unsigned long long)MMIO_BASE, IRQ, self->img, NQ, QN);
	ASSERT_EQ(0, fg_write_file(self->cfg, json));
	r = daemon_start(self, 20000);
	ASSERT_EQ(0, r) TH_LOG("daemon not ready (%s): stdout \"%s\" stderr \"%s\"",
			       errname(r), self->out, log_tail(self));
}

FIXTURE_SETUP(hostile)
{
	const char *s;
	uint8_t *zram;
	size_t i;
	int q;

	self->fd = -1;
	self->out_fd = -1;
	self->net = variant->net;
	pthread_mutex_init(&self->layout_lock, NULL);
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	self->fg.raise_unlocked = true;	/* more overlap in the consumer */
	/* The zone sits in the middle of the window, canaries around it. */
	ASSERT_LE(ZSIZE + 2 * CANARY + 2 * MIB, self->fg.info.ram_size);
	self->zone_off = (self->fg.info.ram_size / 2) & ~(MIB - 1);
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = self->zone_off, .size = ZSIZE };
	fill_canaries(self);
	zram = self->fg.ram + self->zone_off;
	for (i = 0; i < ZSIZE; i++)
		zram[i] = (uint8_t)(0x3c + i * 7);
	if (variant->daemon) {
		daemon_setup(_metadata, self);
		goto probe;
	}
	/*
	 * The fake daemon drops ops on purpose (bogus batches, wrong
	 * generations): a reset waiting for those would stall the chaos
	 * vCPU for the module's whole reset_timeout_ms each time.
	 */
	ASSERT_EQ(0, fg_set_reset_timeout(20, &self->reset_timeout));
	ASSERT_EQ(0, fg_zone_add(&self->fg, &self->z));
	self->zone = true;
	self->fd = make_dev(self);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	self->ops_len = (QN * sizeof(struct hvio_op) + 4095) & ~4095UL;
	for (q = 0; q < NQ; q++) {
		self->ops[q] = mmap(NULL, self->ops_len, PROT_READ, MAP_SHARED,
				    self->fd, HVIO_DEV_MMAP_RING_BASE +
				    q * HVIO_DEV_MMAP_RING_STRIDE);
		ASSERT_NE(MAP_FAILED, self->ops[q]);
	}
probe:
	fg_vdev_init(&self->v, &self->fg, CPU_CHAOS, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, reprobe(self, 0)) TH_LOG("%s", self->v.err);
	fg_flush_res(&self->fg);
	s = getenv("HVIO_SEED");
	self->seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^
		     ((uint64_t)getpid() << 32);
	if (!self->seed)
		self->seed = 1;
}

FIXTURE_TEARDOWN(hostile)
{
	int q;

	for (q = 0; q < NQ; q++)
		if (self->ops[q] && self->ops[q] != MAP_FAILED)
			munmap(self->ops[q], self->ops_len);
	if (self->fd >= 0)
		close(self->fd);
	if (self->reset_timeout)
		fg_set_reset_timeout(self->reset_timeout, NULL);
	if (self->pid > 0)
		daemon_stop(self, SIGKILL, STOP_MS);
	if (self->out_fd >= 0)
		close(self->out_fd);
	if (self->img[0]) {
		unlink(self->img);
		unlink(self->cfg);
		unlink(self->log);
		unlink(self->sock);
	}
	if (self->zone) {
		EXPECT_EQ(0, fg_zone_del(&self->fg, ZONE_A));
	}
	hvio_fixture_close(_metadata, &self->fg);
}

/* ---- the guest: valid requests ------------------------------------------ */

static uint64_t hdr_gpa(int q, int h)	{ return HDRS + (q * QN + h) * 64; }
static uint64_t st_gpa(int q, int h)	{ return hdr_gpa(q, h) + 32; }
static uint64_t buf_gpa(int q, int h)	{ return BUFS + (q * QN + h) * 4096ULL; }
static uint64_t ind_gpa(int q, int h)	{ return INDS + (q * QN + h) * 256ULL; }

static void set_desc(struct vring_desc *d, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

static void publish(struct vring_avail *avail, uint32_t num, uint16_t head)
{
	uint16_t idx = __atomic_load_n(&avail->idx, __ATOMIC_RELAXED);

	avail->ring[idx % num] = head;
	__atomic_store_n(&avail->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

/*
 * A well-formed virtio-net chain for head: receive (queue 0) one to three
 * writable buffers of 12..4096 bytes in all, inside the head's 4 KiB;
 * transmit a zeroed 12-byte header and a 14..4096-byte frame.
 */
static int net_chain(FIXTURE_DATA(hostile) *self, int q, uint64_t *rng,
		     uint16_t head, struct vring_desc *chain)
{
	uint32_t total, off = 0, len;
	int n = 0, parts;

	if (q == HVIO_NET_TX_QUEUE) {
		memset(gptr(self, hdr_gpa(q, head)), 0, HVIO_NET_HDR_LEN);
		set_desc(&chain[n++], hdr_gpa(q, head), HVIO_NET_HDR_LEN, 0, 0);
		set_desc(&chain[n++], buf_gpa(q, head), 14 + rn(rng, 4083),
			 0, 0);
		return n;
	}
	total = HVIO_NET_HDR_LEN * 3 + rn(rng, 4097 - HVIO_NET_HDR_LEN * 3);
	parts = 1 + rn(rng, 3);
	while (n < parts) {
		len = n + 1 == parts ? total - off : total / parts;
		set_desc(&chain[n++], buf_gpa(q, head) + off, len,
			 VRING_DESC_F_WRITE, 0);
		off += len;
	}
	return n;
}

/*
 * Post one well-formed request on queue q (FLUSH, IN, OUT or GET_ID; direct
 * or indirect; virtio-net: see net_chain()); returns its head.  Caller
 * holds layout_lock.
 */
static uint16_t post_valid(FIXTURE_DATA(hostile) *self, int q, uint64_t *rng,
			   int type)
{
	struct fg_vq *vq = &self->vq[q];
	struct vring_desc *desc = gptr(self, vq->desc);
	struct virtio_blk_outhdr *h;
	struct vring_desc chain[3];
	uint16_t head = self->next_desc[q];
	uint32_t len = 0;
	int n = 0, i;
	bool indirect = !rn(rng, 4);

	if (self->net) {
		n = net_chain(self, q, rng, head, chain);
		goto place;
	}
	h = gptr(self, hdr_gpa(q, head));
	h->type = type;
	h->ioprio = 0;
	set_desc(&chain[n++], hdr_gpa(q, head), 16, 0, 0);
	switch (type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		len = 512 * (1 + rn(rng, 8));
		h->sector = rn(rng, CAPACITY - 8);
		set_desc(&chain[n++], buf_gpa(q, head), len,
			 type == VIRTIO_BLK_T_IN ? VRING_DESC_F_WRITE : 0, 0);
		break;
	case VIRTIO_BLK_T_GET_ID:
		h->sector = 0;
		set_desc(&chain[n++], buf_gpa(q, head), 20,
			 VRING_DESC_F_WRITE, 0);
		break;
	default:
		h->sector = 0;
		break;
	}
	set_desc(&chain[n++], st_gpa(q, head), 1, VRING_DESC_F_WRITE, 0);
	*(uint8_t *)gptr(self, st_gpa(q, head)) = 0xee;

place:
	if (indirect) {
		struct vring_desc *t = gptr(self, ind_gpa(q, head));

		for (i = 0; i < n; i++) {
			t[i] = chain[i];
			if (i + 1 < n) {
				t[i].flags |= VRING_DESC_F_NEXT;
				t[i].next = i + 1;
			}
		}
		set_desc(&desc[head], ind_gpa(q, head), n * 16,
			 VRING_DESC_F_INDIRECT, 0);
		self->next_desc[q] = (head + 1) % vq->num;
	} else {
		uint16_t d = head;

		for (i = 0; i < n; i++) {
			d = (head + i) % vq->num;
			desc[d] = chain[i];
			if (i + 1 < n) {
				desc[d].flags |= VRING_DESC_F_NEXT;
				desc[d].next = (d + 1) % vq->num;
			}
		}
		self->next_desc[q] = (head + n) % vq->num;
	}
	publish(gptr(self, vq->driver), vq->num, head);
	return head;
}

static void *guest_thread(void *arg)
{
	struct thr *t = arg;
	FIXTURE_DATA(hostile) *self = t->self;
	static const int types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
				     VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID };

	while (!stopping(self)) {
		int q = rn(&t->rng, NQ);

		pthread_mutex_lock(&self->layout_lock);
		/* Did the request last posted on this head complete OK? */
		if (!self->net &&
		    *(uint8_t *)gptr(self, st_gpa(q, self->next_desc[q])) ==
		    VIRTIO_BLK_S_OK)
			CNT(status_ok);
		post_valid(self, q, &t->rng, types[rn(&t->rng, 4)]);
		pthread_mutex_unlock(&self->layout_lock);
		CNT(posts);
		if (fg_notify(&self->fg, t->cpu, ZONE_A,
			      MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, q) == 0)
			CNT(kicks);
		usleep(200);
	}
	return NULL;
}

/* ---- the daemon: fetch and complete ------------------------------------- */

/*
 * A net op: the queue's type, segments inside zone RAM adding up to len
 * (TX: len less the checked header, which travels in the slot).
 */
static bool op_sane_net(FIXTURE_DATA(hostile) *self, int q,
			const struct hvio_op *op, uint16_t tag)
{
	uint64_t sum = q == HVIO_NET_TX_QUEUE ? HVIO_NET_HDR_LEN : 0;
	int i;

	if (op->tag != tag || op->nr_segs > HVIO_OP_MAX_SEGS ||
	    op->type != (q == HVIO_NET_RX_QUEUE ? HVIO_OP_NET_RX :
			 HVIO_OP_NET_TX))
		return false;
	for (i = 0; i < op->nr_segs; i++) {
		uint64_t a = op->segs[i].gpa, l = op->segs[i].len;

		if (!l || a < GUEST_RAM || a + l < a || a + l > GUEST_RAM + ZSIZE)
			return false;
		sum += l;
	}
	if (sum != op->len || op->len < HVIO_NET_HDR_LEN)
		return false;
	if (q == HVIO_NET_TX_QUEUE &&
	    op->len > HVIO_NET_HDR_LEN + HVIO_NET_MAX_FRAME)
		return false;
	return true;
}

/* What the fake daemon reports for a fetched op. */
static int32_t fake_result(FIXTURE_DATA(hostile) *self, int q, uint16_t tag,
			   uint64_t *rng)
{
	uint32_t len = tag < QN ? (uint32_t)self->ops[q][tag].len : 100;

	if (!self->net)
		return rn(rng, 8) ? 0 : -EIO;
	if (q == HVIO_NET_TX_QUEUE)
		return rn(rng, 8) ? (int32_t)len : -EIO;
	switch (rn(rng, 8)) {
	case 0:
		return len + 1 + rn(rng, 100);		/* truncated */
	case 1:
		return -ECANCELED;
	case 2:
		return rn(rng, 2) ? -EIO : (int32_t)rn(rng, HVIO_NET_HDR_LEN);
	default:
		return HVIO_NET_HDR_LEN + rn(rng, len - HVIO_NET_HDR_LEN + 1);
	}
}

static bool op_sane(FIXTURE_DATA(hostile) *self, int q, uint16_t tag)
{
	const struct hvio_op *op;
	uint64_t sum = 0;
	int i;

	if (tag >= QN)
		return false;
	op = &self->ops[q][tag];
	if (self->net)
		return op_sane_net(self, q, op, tag);
	if (op->tag != tag || op->type < HVIO_OP_READ ||
	    op->type > HVIO_OP_WRITE_ZEROES || op->nr_segs > HVIO_OP_MAX_SEGS)
		return false;
	for (i = 0; i < op->nr_segs; i++) {
		uint64_t a = op->segs[i].gpa, l = op->segs[i].len;

		if (!l || a < GUEST_RAM || a + l < a || a + l > GUEST_RAM + ZSIZE)
			return false;
		sum += l;
	}
	if ((op->type == HVIO_OP_READ || op->type == HVIO_OP_WRITE) &&
	    sum != op->len)
		return false;
	if (op->offset + op->len > (uint64_t)CAPACITY * 512 ||
	    op->offset + op->len < op->offset)
		return false;
	return true;
}

static void note_ioctl_ms(FIXTURE_DATA(hostile) *self, uint64_t ms)
{
	unsigned long cur = __atomic_load_n(&self->cnt.max_ioctl_ms,
					    __ATOMIC_RELAXED);

	while (ms > cur && !__atomic_compare_exchange_n(&self->cnt.max_ioctl_ms,
			&cur, ms, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (ms > HANG_MS)
		CNT(slow_ioctl);
}

static void *daemon_thread(void *arg)
{
	struct thr *t = arg;
	FIXTURE_DATA(hostile) *self = t->self;
	struct hvio_completion held[NQ][QN + 1];
	int nheld[NQ] = { 0 };
	uint16_t tags[QN];

	while (!stopping(self)) {
		int q, idle = 1;

		for (q = 0; q < NQ; q++) {
			struct hvio_queue_run r = {
				.queue = q, .nr_commit = nheld[q],
				.max_fetch = QN,
				.commits_addr = (uintptr_t)held[q],
				.tags_addr = (uintptr_t)tags,
			};
			uint64_t t0 = fg_now_ms();
			int i, ret;

			ret = ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r) ? -errno : 0;
			note_ioctl_ms(self, fg_now_ms() - t0);
			CNT(runs);
			if (ret == -EINVAL)
				CNT(run_einval);
			else if (ret)
				CNT(run_other);
			else
				__atomic_add_fetch(&self->cnt.committed,
						   nheld[q], __ATOMIC_RELAXED);
			/* EINVAL: completions before the bad one applied; drop
			 * the batch (the tags of this generation that stay
			 * in flight go away at the next reset). */
			nheld[q] = 0;
			if (ret)
				continue;
			if (r.nr_fetched)
				idle = 0;
			__atomic_add_fetch(&self->cnt.fetched, r.nr_fetched,
					   __ATOMIC_RELAXED);
			for (i = 0; i < r.nr_fetched && i < QN; i++) {
				struct hvio_completion *c = &held[q][nheld[q]++];

				if (!op_sane(self, q, tags[i]))
					CNT(op_bad);
				c->tag = tags[i];
				c->reserved0 = 0;
				c->generation_hi = 0;
				c->result = fake_result(self, q, tags[i],
							&t->rng);
				c->generation = tags[i] < QN ?
					self->ops[q][tags[i]].generation :
					r.generation;
				if (!rn(&t->rng, 64)) {
					c->generation += 1 + rn(&t->rng, 3);
					CNT(gen_mismatch);
				}
			}
			/* The daemon's own bug: a tag that cannot be in
			 * flight, at the end of a batch (EINVAL expected). */
			if (!rn(&t->rng, 128)) {
				held[q][nheld[q]++] = (struct hvio_completion){
					.tag = rn(&t->rng, 2) ? 0xffff :
					       QN + rn(&t->rng, 100),
					.generation = r.generation };
				CNT(bogus_commits);
			}
		}
		if (idle)
			usleep(300);
	}
	return NULL;
}

/* ---- chaos: the hostile driver -------------------------------------------- */

/* Addresses no descriptor may ever make the kernel touch. */
static uint64_t evil_addr(FIXTURE_DATA(hostile) *self, uint64_t *rng)
{
	uint64_t canary_phys = self->fg.info.ram_base + self->zone_off;

	switch (rn(rng, 14)) {
	case 0: return 0;
	case 1: return GUEST_RAM - 8;
	case 2: return GUEST_RAM - 4096;
	case 3: return GUEST_RAM + ZSIZE;
	case 4: return GUEST_RAM + ZSIZE - 8;		/* crosses the end */
	case 5: return ~0ULL - rn(rng, 4096);		/* wraps */
	case 6: return 1ULL << 63;
	case 7: return HVIO_IPA_LIMIT - 16;
	case 8: return canary_phys - CANARY + rn(rng, CANARY);	/* host phys */
	case 9: return canary_phys + ZSIZE + rn(rng, CANARY);
	case 10: return canary_phys;			/* zone0 side */
	case 11: return self->fg.info.ram_base;
	case 12: return GUEST_RAM + rn(rng, ZSIZE);	/* inside, random */
	default: return rnd(rng);
	}
}

static uint32_t evil_len(uint64_t *rng)
{
	static const uint32_t l[] = { 0, 1, 16, 512, 4096, 0x100000, 0x7fffffff,
				      0xffffffff, 0xfffffff0 };

	return rn(rng, 3) ? l[rn(rng, 9)] : (uint32_t)rnd(rng);
}

static void chaos_ring_garbage(FIXTURE_DATA(hostile) *self, uint64_t *rng)
{
	int q = rn(rng, NQ);
	struct fg_vq *vq = &self->vq[q];
	struct vring_avail *avail;
	struct vring_used *used;
	uint8_t *p;
	int i, n;

	pthread_mutex_lock(&self->layout_lock);
	avail = gptr(self, vq->driver);
	used = gptr(self, vq->device);
	switch (rn(rng, 4)) {
	case 0:		/* random bytes into the descriptor table */
		p = gptr(self, vq->desc);
		n = 1 + rn(rng, 32);
		for (i = 0; i < n; i++)
			p[rn(rng, 16 * vq->num)] = (uint8_t)rnd(rng);
		CNT(garbage_desc);
		break;
	case 1:		/* random heads / flags / used_event */
		p = (uint8_t *)avail;
		n = 1 + rn(rng, 8);
		for (i = 0; i < n; i++)
			p[rn(rng, 6 + 2 * vq->num)] = (uint8_t)rnd(rng);
		CNT(garbage_avail);
		break;
	case 2:		/* avail index jumps */
		__atomic_store_n(&avail->idx, (uint16_t)(avail->idx +
				 (rn(rng, 2) ? rn(rng, 2 * QN) : rnd(rng))),
				 __ATOMIC_RELEASE);
		CNT(avail_jump);
		break;
	default:	/* the used ring is the device's; the guest scribbles */
		p = (uint8_t *)used;
		n = 1 + rn(rng, 8);
		for (i = 0; i < n; i++)
			p[rn(rng, 6 + 8 * vq->num)] = (uint8_t)rnd(rng);
		CNT(garbage_used);
		break;
	}
	pthread_mutex_unlock(&self->layout_lock);
	fg_notify(&self->fg, CPU_CHAOS, ZONE_A,
		  MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

/* A chain whose buffers / indirect table point anywhere. */
static void chaos_evil_chain(FIXTURE_DATA(hostile) *self, uint64_t *rng)
{
	int q = rn(rng, NQ), kind = rn(rng, 5), i, n;
	struct fg_vq *vq = &self->vq[q];
	struct vring_desc *desc, *t;
	uint16_t head;

	pthread_mutex_lock(&self->layout_lock);
	desc = gptr(self, vq->desc);
	head = self->next_desc[q];
	if (kind == 0) {		/* direct chain, one evil buffer */
		n = 2 + rn(rng, 3);
		for (i = 0; i < n; i++) {
			uint16_t d = (head + i) % vq->num;

			set_desc(&desc[d], i == 0 ? hdr_gpa(q, head) :
				 i == n - 1 ? st_gpa(q, head) :
				 evil_addr(self, rng),
				 i == 0 ? 16 : i == n - 1 ? 1 : evil_len(rng),
				 (i ? VRING_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VRING_DESC_F_NEXT : 0),
				 (d + 1) % vq->num);
		}
		if (!rn(rng, 3))	/* evil status byte or header too */
			desc[(head + (rn(rng, 2) ? 0 : n - 1)) % vq->num].addr =
				evil_addr(self, rng);
		self->next_desc[q] = (head + n) % vq->num;
		CNT(evil_chain);
	} else if (kind == 1) {		/* indirect table pointing anywhere */
		set_desc(&desc[head], evil_addr(self, rng), evil_len(rng),
			 VRING_DESC_F_INDIRECT |
			 (rn(rng, 4) ? 0 : VRING_DESC_F_NEXT), rn(rng, QN));
		self->next_desc[q] = (head + 1) % vq->num;
		CNT(evil_indirect);
	} else if (kind == 2) {		/* indirect table of garbage */
		uint64_t tbl = JUNK + (rn(rng, JUNK_LEN / 16 - 64) * 16);

		t = gptr(self, tbl);
		n = 1 + rn(rng, 32);
		for (i = 0; i < n; i++) {
			if (rn(rng, 2))
				set_desc(&t[i], evil_addr(self, rng),
					 evil_len(rng), (uint16_t)rnd(rng),
					 (uint16_t)rnd(rng) % (n + 2));
			else
				set_desc(&t[i], buf_gpa(q, rn(rng, QN)),
					 512, rn(rng, 2) ? VRING_DESC_F_WRITE : 0,
					 i + 1);
		}
		set_desc(&desc[head], tbl, rn(rng, 4) ? n * 16 : evil_len(rng),
			 VRING_DESC_F_INDIRECT, 0);
		self->next_desc[q] = (head + 1) % vq->num;
		CNT(evil_indirect);
	} else if (kind == 3) {		/* well placed, badly shaped */
		uint64_t tbl = JUNK + JUNK_LEN - 0x1000;

		switch (rn(rng, 3)) {
		case 0:		/* readable after writable */
			n = 3;
			set_desc(&desc[head], hdr_gpa(q, head), 16,
				 VRING_DESC_F_NEXT, (head + 1) % vq->num);
			set_desc(&desc[(head + 1) % vq->num], st_gpa(q, head), 1,
				 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
				 (head + 2) % vq->num);
			set_desc(&desc[(head + 2) % vq->num], buf_gpa(q, head),
				 512, 0, 0);
			break;
		case 1:		/* more data segments than an op holds */
			t = gptr(self, tbl);
			n = 2 + HVIO_OP_MAX_SEGS + rn(rng, 100);
			for (i = 0; i < n; i++)
				set_desc(&t[i], i == 0 ? hdr_gpa(q, head) :
					 i == n - 1 ? st_gpa(q, head) :
					 buf_gpa(q, rn(rng, QN)),
					 i == 0 ? 16 : i == n - 1 ? 1 : 512,
					 (i ? VRING_DESC_F_WRITE : 0) |
					 (i + 1 < n ? VRING_DESC_F_NEXT : 0),
					 i + 1);
			set_desc(&desc[head], tbl, n * 16,
				 VRING_DESC_F_INDIRECT, 0);
			n = 1;
			break;
		default:	/* a zero-length data buffer */
			n = 3;
			set_desc(&desc[head], hdr_gpa(q, head), 16,
				 VRING_DESC_F_NEXT, (head + 1) % vq->num);
			set_desc(&desc[(head + 1) % vq->num], buf_gpa(q, head), 0,
				 VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
				 (head + 2) % vq->num);
			set_desc(&desc[(head + 2) % vq->num], st_gpa(q, head), 1,
				 VRING_DESC_F_WRITE, 0);
			break;
		}
		self->next_desc[q] = (head + n) % vq->num;
		CNT(bad_shape);
	} else {			/* loops and next out of range */
		set_desc(&desc[head], hdr_gpa(q, head), 16, VRING_DESC_F_NEXT,
			 rn(rng, 2) ? head : QN + rn(rng, 1000));
		self->next_desc[q] = (head + 1) % vq->num;
		CNT(loops);
	}
	publish(gptr(self, vq->driver), vq->num, head);
	pthread_mutex_unlock(&self->layout_lock);
	fg_notify(&self->fg, CPU_CHAOS, ZONE_A,
		  MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, q);
}

static void chaos_registers(FIXTURE_DATA(hostile) *self, uint64_t *rng)
{
	static const unsigned int widths[] = { 1, 2, 4, 8, 4, 4, 3, 0, 16 };
	uint64_t off;
	unsigned int w;

	switch (rn(rng, 5)) {
	case 0:		/* QueueReady toggles (mid-flight) */
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_SEL, rn(rng, NQ));
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_READY, 0);
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_READY, 1);
		CNT(ready_toggles);
		break;
	case 1:		/* re-configure a queue with bad rings, ready = 1 */
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_SEL, rn(rng, NQ));
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_READY, 0);
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_NUM,
			   rn(rng, 2) ? rn(rng, 64) : (uint32_t)rnd(rng));
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_DESC_LOW,
			   (uint32_t)evil_addr(self, rng));
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_DESC_HIGH,
			   rn(rng, 2) ? 0 : (uint32_t)rnd(rng));
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_AVAIL_LOW,
			   (uint32_t)evil_addr(self, rng));
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_USED_LOW,
			   (uint32_t)evil_addr(self, rng));
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_READY, 1);
		CNT(bad_ready);
		break;
	case 2:		/* QueueSel / QueueNum with random values */
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_SEL,
			   rn(rng, 2) ? rn(rng, 20) : (uint32_t)rnd(rng));
		fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_NUM, (uint32_t)rnd(rng));
		fg_vdev_rd(&self->v, VIRTIO_MMIO_QUEUE_NUM_MAX);
		CNT(qsel_writes);
		break;
	default:	/* random offset, random width, read or write */
		off = rn(rng, 4) ? rn(rng, 0x200) : rn(rng, 0x1000);
		w = widths[rn(rng, 9)];
		if (rn(rng, 2)) {
			fg_read(&self->fg, CPU_CHAOS, ZONE_A, MMIO_BASE + off, w);
			CNT(rand_reads);
		} else {
			/* Status writes are left to the reset action, so
			 * they do not make every other write a no-op. */
			if (off == VIRTIO_MMIO_STATUS && rn(rng, 4))
				off = VIRTIO_MMIO_QUEUE_NUM;
			fg_write(&self->fg, CPU_CHAOS, ZONE_A, MMIO_BASE + off,
				 w, rnd(rng));
			CNT(rand_writes);
		}
		break;
	}
}

static void *chaos_thread(void *arg)
{
	struct thr *t = arg;
	FIXTURE_DATA(hostile) *self = t->self;

	while (!stopping(self)) {
		unsigned int a = rn(&t->rng, 20);

		if (a < 5) {
			chaos_ring_garbage(self, &t->rng);
		} else if (a < 11) {
			chaos_evil_chain(self, &t->rng);
		} else if (a < 17) {
			chaos_registers(self, &t->rng);
		} else if (a < 18) {	/* reset mid-flight, nothing else */
			fg_vdev_wr(&self->v, VIRTIO_MMIO_STATUS, 0);
			CNT(resets);
		} else {		/* reset + re-probe with new rings */
			CNT(resets);
			CNT(reprobes);
			if (reprobe(self, rn(&t->rng, RING_SLOTS))) {
				if (__atomic_add_fetch(&self->cnt.probe_fail,
						       1, __ATOMIC_RELAXED) == 1)
					fprintf(stderr, "# re-probe: %s\n",
						self->v.err);
			}
		}
		usleep(100);
	}
	return NULL;
}

/* ---- vCPUs: notify and read storms ---------------------------------------- */

static void *vcpu_thread(void *arg)
{
	struct thr *t = arg;
	FIXTURE_DATA(hostile) *self = t->self;
	static const unsigned int widths[] = { 4, 4, 4, 1, 2, 8 };
	unsigned int i = 0;

	while (!stopping(self)) {
		unsigned int a = rn(&t->rng, 16);

		if (a < 7) {
			uint32_t qv = rn(&t->rng, 3) ? rn(&t->rng, NQ + 2) :
				      (uint32_t)rnd(&t->rng);

			fg_notify(&self->fg, t->cpu, ZONE_A,
				  MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, qv);
			CNT(storm_notifies);
		} else if (a < 14) {
			fg_read(&self->fg, t->cpu, ZONE_A, MMIO_BASE +
				(rn(&t->rng, 0x110) & ~3u),
				widths[rn(&t->rng, 6)]);
			CNT(storm_reads);
		} else if (a < 15) {	/* a src_cpu nobody can answer */
			struct hvio_device_req req = {
				.src_cpu = HVIO_BRIDGE_MAX_CPUS +
					   rn(&t->rng, 1000),
				.address = MMIO_BASE + VIRTIO_MMIO_STATUS,
				.size = 4, .src_zone = ZONE_A,
			};

			if (fg_push(&self->fg, &req, FG_RAISE_IF_NEEDED, NULL))
				__atomic_add_fetch(&self->fg.errors, 1,
						   __ATOMIC_RELAXED);
			CNT(bad_cpu_pushes);
		} else {		/* a zone with no device there */
			fg_read(&self->fg, t->cpu, ZONE_B + rn(&t->rng, 100),
				MMIO_BASE, 4);
			CNT(wrong_zone);
		}
		if (++i % 8 == 0)
			usleep(100);
	}
	return NULL;
}

/* ---- afterwards ----------------------------------------------------------- */

static struct hvio_queue_stats qstats(FIXTURE_DATA(hostile) *self, int q)
{
	struct hvio_queue_stats st = { .queue = q };

	ioctl(self->fd, HVIO_DEV_GET_QUEUE_STATS, &st);
	return st;
}

/* fork + exec /bin/true: -1 if it did not finish within ms. */
static int exec_true_ms(unsigned int ms)
{
	uint64_t t0 = fg_now_ms();
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid) {
		execl("/bin/true", "true", (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (fg_now_ms() - t0 > ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(1000);
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ?
	       (int)(fg_now_ms() - t0) : -1;
}

static unsigned long ld(unsigned long *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Four valid requests per queue complete with status 0. */
static void recover_io(struct __test_metadata *_metadata,
		       FIXTURE_DATA(hostile) *self)
{
	static const int types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT,
				     VIRTIO_BLK_T_FLUSH };
	struct hvio_completion c[QN];
	struct vring_used *used;
	uint16_t heads[NQ][4], tags[QN];
	uint64_t rng = self->seed;
	uint32_t gen;
	unsigned int q;
	int n, j, k;

	for (q = 0; q < NQ; q++) {
		for (j = 0; j < 4; j++)
			heads[q][j] = post_valid(self, q, &rng, types[j % 3]);
		fg_notify(&self->fg, CPU_GUEST, ZONE_A, MMIO_BASE +
			  VIRTIO_MMIO_QUEUE_NOTIFY, q);
	}
	fg_wait_consumed(&self->fg, FG_TIMEOUT_MS);
	for (q = 0; q < NQ; q++) {
		struct hvio_queue_run r = {
			.queue = q, .max_fetch = QN,
			.tags_addr = (uintptr_t)tags,
		};

		ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r));
		n = r.nr_fetched;
		gen = r.generation;
		EXPECT_EQ(4, n) TH_LOG("queue %u fetched %d", q, n);
		if (n > QN)
			n = QN;
		for (j = 0; j < n; j++) {
			EXPECT_TRUE(op_sane(self, q, tags[j]));
			EXPECT_EQ(gen, self->ops[q][tags[j]].generation);
			c[j] = (struct hvio_completion){
				.tag = tags[j], .generation = gen };
		}
		r = (struct hvio_queue_run){
			.queue = q, .nr_commit = n,
			.commits_addr = (uintptr_t)c,
		};
		ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r));
		used = gptr(self, self->vq[q].device);
		EXPECT_EQ(4, __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE));
		for (j = 0; j < 4; j++) {
			bool found = false;

			for (k = 0; k < 4; k++)
				found |= used->ring[k].id == heads[q][j];
			EXPECT_TRUE(found) TH_LOG("queue %u head %u not used",
						  q, heads[q][j]);
			EXPECT_EQ(VIRTIO_BLK_S_OK, *(uint8_t *)gptr(self,
				  st_gpa(q, heads[q][j])));
		}
	}
}

/*
 * virtio-net: four frames go out and come back used with length 0; four
 * receive chains become one or more ops, and a small packet committed to
 * each lands in the used ring with its length.
 */
static void recover_net(struct __test_metadata *_metadata,
			FIXTURE_DATA(hostile) *self)
{
	struct hvio_completion c[QN];
	struct vring_used *used;
	uint16_t tags[QN];
	uint64_t rng = self->seed;
	unsigned int q;
	int n, j;

	for (q = 0; q < NQ; q++) {
		for (j = 0; j < 4; j++)
			post_valid(self, q, &rng, 0);
		fg_notify(&self->fg, CPU_GUEST, ZONE_A, MMIO_BASE +
			  VIRTIO_MMIO_QUEUE_NOTIFY, q);
	}
	fg_wait_consumed(&self->fg, FG_TIMEOUT_MS);
	for (q = 0; q < NQ; q++) {
		struct hvio_queue_run r = {
			.queue = q, .max_fetch = QN,
			.tags_addr = (uintptr_t)tags,
		};

		ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r));
		n = r.nr_fetched;
		if (q == HVIO_NET_TX_QUEUE) {
			EXPECT_EQ(4, n);
		} else {
			EXPECT_LE(1, n);
		}
		ASSERT_GE(4, n);
		for (j = 0; j < n; j++) {
			EXPECT_TRUE(op_sane(self, q, tags[j]));
			c[j] = (struct hvio_completion){
				.tag = tags[j], .generation = r.generation,
				.result = HVIO_NET_HDR_LEN + 8 };
		}
		r = (struct hvio_queue_run){
			.queue = q, .nr_commit = n,
			.commits_addr = (uintptr_t)c,
		};
		ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_QUEUE_RUN, &r));
		used = gptr(self, self->vq[q].device);
		EXPECT_EQ(n, __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE));
		for (j = 0; j < n; j++)
			EXPECT_EQ(q == HVIO_NET_TX_QUEUE ? 0 :
				  HVIO_NET_HDR_LEN + 8, used->ring[j].len);
	}
}

/*
 * Real daemon: four valid requests per queue complete with status 0 (the
 * used ring is polled; the daemon answers asynchronously).
 */
static void recover_daemon(struct __test_metadata *_metadata,
			   FIXTURE_DATA(hostile) *self)
{
	static const int types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT };
	uint16_t heads[NQ][4];
	uint64_t rng = self->seed, t0;
	struct vring_used *used;
	unsigned int q;
	int j;

	for (q = 0; q < NQ; q++) {
		for (j = 0; j < 4; j++)
			heads[q][j] = post_valid(self, q, &rng, types[j % 2]);
		fg_notify(&self->fg, CPU_GUEST, ZONE_A, MMIO_BASE +
			  VIRTIO_MMIO_QUEUE_NOTIFY, q);
	}
	for (q = 0; q < NQ; q++) {
		used = gptr(self, self->vq[q].device);
		t0 = fg_now_ms();
		while (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) < 4 &&
		       fg_now_ms() - t0 < 5000)
			usleep(1000);
		EXPECT_EQ(4, __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE))
			TH_LOG("queue %u: daemon completed %u of 4 in 5 s", q,
			       used->idx);
		for (j = 0; j < 4; j++) {
			EXPECT_EQ(VIRTIO_BLK_S_OK, *(uint8_t *)gptr(self,
				  st_gpa(q, heads[q][j])));
		}
	}
}

static void log_counts(struct __test_metadata *_metadata,
		       FIXTURE_DATA(hostile) *self, bool real_daemon)
{
	TH_LOG("guest: %lu valid posts, %lu kicks, %lu status OK seen on reuse",
	       ld(&self->cnt.posts), ld(&self->cnt.kicks),
	       ld(&self->cnt.status_ok));
	if (!real_daemon)
		TH_LOG("daemon: %lu runs (%lu EINVAL after %lu bogus commits, %lu other errors), %lu ops fetched, %lu committed, %lu generation mismatches, max ioctl %lu ms",
		       ld(&self->cnt.runs), ld(&self->cnt.run_einval),
		       ld(&self->cnt.bogus_commits), ld(&self->cnt.run_other),
		       ld(&self->cnt.fetched), ld(&self->cnt.committed),
		       ld(&self->cnt.gen_mismatch),
		       ld(&self->cnt.max_ioctl_ms));
	TH_LOG("chaos: desc garbage %lu, avail garbage %lu, avail jumps %lu, used garbage %lu, evil chains %lu, evil indirect %lu, loops %lu, bad shapes %lu",
	       ld(&self->cnt.garbage_desc), ld(&self->cnt.garbage_avail),
	       ld(&self->cnt.avail_jump), ld(&self->cnt.garbage_used),
	       ld(&self->cnt.evil_chain), ld(&self->cnt.evil_indirect),
	       ld(&self->cnt.loops), ld(&self->cnt.bad_shape));
	TH_LOG("chaos: resets %lu (re-probes %lu, failed %lu), ready toggles %lu, bad-ring ready %lu, QueueSel/Num %lu, random reads %lu writes %lu",
	       ld(&self->cnt.resets), ld(&self->cnt.reprobes),
	       ld(&self->cnt.probe_fail), ld(&self->cnt.ready_toggles),
	       ld(&self->cnt.bad_ready), ld(&self->cnt.qsel_writes),
	       ld(&self->cnt.rand_reads), ld(&self->cnt.rand_writes));
	TH_LOG("vcpus: %lu notifies, %lu reads, %lu bad src_cpu pushes, %lu wrong-zone reads; bridge pushes %lu raises %lu",
	       ld(&self->cnt.storm_notifies), ld(&self->cnt.storm_reads),
	       ld(&self->cnt.bad_cpu_pushes), ld(&self->cnt.wrong_zone),
	       self->fg.pushes, self->fg.raises);
}

/* Per-queue and per-device counters (fake_daemon: we hold the fd). */
static void check_dev_counters(struct __test_metadata *_metadata,
			       FIXTURE_DATA(hostile) *self)
{
	struct hvio_queue_stats qs;
	struct hvio_dev_stats ds;
	uint64_t vq_err = 0, bad_req = 0;
	unsigned int q, i;

	ASSERT_EQ(0, fg_dev_stats(self->fd, &ds));
	for (q = 0; q < NQ; q++) {
		qs = qstats(self, q);
		for (i = 0; i < 16; i++)
			vq_err += qs.vq_errors[i];
		bad_req += qs.bad_request;
		TH_LOG("queue %u: kicks %llu reqs %llu ops %llu in-kernel %llu completed %llu stale %llu irqs %llu suppressed %llu bad_request %llu",
		       q, (unsigned long long)qs.kicks,
		       (unsigned long long)qs.reqs, (unsigned long long)qs.ops,
		       (unsigned long long)qs.done_in_kernel,
		       (unsigned long long)qs.completed,
		       (unsigned long long)qs.stale, (unsigned long long)qs.irqs,
		       (unsigned long long)qs.irqs_suppressed,
		       (unsigned long long)qs.bad_request);
		TH_LOG("queue %u vq_errors: head %llu next %llu loop %llu nested %llu ind_len %llu ind_next %llu ind_off %llu zero %llu addr %llu order %llu segs %llu big %llu jump %llu",
		       q, (unsigned long long)qs.vq_errors[3],
		       (unsigned long long)qs.vq_errors[4],
		       (unsigned long long)qs.vq_errors[5],
		       (unsigned long long)qs.vq_errors[6],
		       (unsigned long long)qs.vq_errors[7],
		       (unsigned long long)qs.vq_errors[8],
		       (unsigned long long)qs.vq_errors[9],
		       (unsigned long long)qs.vq_errors[10],
		       (unsigned long long)qs.vq_errors[11],
		       (unsigned long long)qs.vq_errors[12],
		       (unsigned long long)qs.vq_errors[13],
		       (unsigned long long)qs.vq_errors[14],
		       (unsigned long long)qs.vq_errors[15]);
	}
	TH_LOG("device: reads %llu writes %llu notifies %llu irqs %llu resets %llu bad_width %llu bad_offset %llu bad_queue %llu bad_state %llu features_refused %llu queue_refused %llu config_writes %llu",
	       (unsigned long long)ds.reg_reads,
	       (unsigned long long)ds.reg_writes,
	       (unsigned long long)ds.notifies, (unsigned long long)ds.irqs,
	       (unsigned long long)ds.resets,
	       (unsigned long long)ds.bad_width,
	       (unsigned long long)ds.bad_offset,
	       (unsigned long long)ds.bad_queue,
	       (unsigned long long)ds.bad_state,
	       (unsigned long long)ds.features_refused,
	       (unsigned long long)ds.queue_refused,
	       (unsigned long long)ds.config_writes);
	EXPECT_LT(0, vq_err);
	EXPECT_LT(0, bad_req);
	EXPECT_LT(0, ds.bad_width + ds.bad_offset);
	EXPECT_LT(0, ds.bad_queue);
	EXPECT_LT(0, ds.queue_refused);
	EXPECT_LE(ld(&self->cnt.resets), ds.resets);
	/* I/O flowed during the storm, and every bogus commit was refused. */
	EXPECT_LT(0, ld(&self->cnt.fetched));
	EXPECT_LT(0, ld(&self->cnt.committed));
	EXPECT_EQ(0, ld(&self->cnt.op_bad))
		TH_LOG("ops outside zone RAM / capacity handed to the daemon");
	EXPECT_EQ(0, ld(&self->cnt.slow_ioctl))
		TH_LOG("QUEUE_RUN took %lu ms", ld(&self->cnt.max_ioctl_ms));
	EXPECT_EQ(0, ld(&self->cnt.run_other));
	if (ld(&self->cnt.bogus_commits)) {
		EXPECT_LT(0, ld(&self->cnt.run_einval));
	}
}

TEST_F_TIMEOUT(hostile, storm_then_recover, 110)
{
	/* A guest that scribbles on rings and descriptors, points buffers and
	 * indirect tables anywhere, resets and re-configures mid-flight and
	 * storms notifies and reads from several vCPUs cannot make hvio touch
	 * memory outside zone RAM, hang an ioctl, hand the daemon an op
	 * outside zone RAM, or break the device beyond a reset; the counters
	 * see the rejections, root Linux stays responsive, and (real_daemon)
	 * the daemon survives it and exits 0 on SIGTERM. */
	struct thr th[3 + NR_VCPU];
	pthread_t tid[3 + NR_VCPU];
	void *(*fn[3 + NR_VCPU])(void *) = { daemon_thread, guest_thread,
					      chaos_thread };
	unsigned int storm_ms = variant->storm_ms, i;
	struct hvio_stats gs0, gs;
	uint64_t t0;
	const char *s;
	long bad;
	int ms, st;

	NEED_SETUP();
	s = getenv("HVIO_STORM_MS");
	if (s)
		storm_ms = strtoul(s, NULL, 0);
	ASSERT_EQ(0, fg_stats(&self->fg, &gs0));
	TH_LOG("seed %#llx (HVIO_SEED to replay), storm %u ms",
	       (unsigned long long)self->seed, storm_ms);

	for (i = 0; i < 3 + NR_VCPU; i++) {
		th[i].self = self;
		th[i].rng = self->seed * (2 * i + 1) + i;
		th[i].cpu = i == 1 ? CPU_GUEST : i == 2 ? CPU_CHAOS :
			    CPU_VCPU0 + (i - 3);
		if (i >= 3)
			fn[i] = vcpu_thread;
		tid[i] = 0;
		if (i == 0 && variant->daemon)
			continue;	/* the real daemon serves */
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, fn[i], &th[i]));
	}
	t0 = fg_now_ms();
	while (fg_now_ms() - t0 < storm_ms && !ld(&self->cnt.slow_ioctl))
		usleep(50000);
	__atomic_store_n(&self->stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < 3 + NR_VCPU; i++) {
		struct timespec ts;

		if (!tid[i])
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		ASSERT_EQ(0, pthread_timedjoin_np(tid[i], NULL, &ts))
			TH_LOG("thread %u did not stop within 10 s", i);
	}
	log_counts(_metadata, self, variant->daemon);
	/* I/O flowed during the storm. */
	if (self->net) {
		EXPECT_LT(0, qstats(self, HVIO_NET_RX_QUEUE).packets);
		EXPECT_LT(0, qstats(self, HVIO_NET_TX_QUEUE).packets);
		TH_LOG("net: rx packets %llu dropped %llu chains %llu, tx packets %llu",
		       (unsigned long long)qstats(self, 0).packets,
		       (unsigned long long)qstats(self, 0).rx_dropped,
		       (unsigned long long)qstats(self, 0).rx_chains,
		       (unsigned long long)qstats(self, 1).packets);
	} else {
		EXPECT_LT(0, ld(&self->cnt.status_ok));
	}

	/* Nothing outside zone RAM was touched. */
	bad = check_canaries(self);
	EXPECT_EQ(-1, bad) TH_LOG("canary byte %ld (%s the zone) overwritten",
				  (long)(bad < (long)CANARY ? (long)CANARY - bad :
					 bad - (long)CANARY),
				  bad < (long)CANARY ? "before" : "after");
	EXPECT_EQ(0, ld(&self->cnt.probe_fail));
	EXPECT_EQ(0, self->fg.errors) TH_LOG("bridge: %s", self->fg.err);
	if (!variant->daemon)
		check_dev_counters(_metadata, self);

	/* Root Linux is responsive: the control device and fork+exec. */
	t0 = fg_now_ms();
	ASSERT_EQ(0, fg_stats(&self->fg, &gs));
	EXPECT_GT(1000, fg_now_ms() - t0);
	TH_LOG("bridge: irqs +%llu reqs +%llu unknown_addr +%llu bad_cpu +%llu bad_index +%llu res_full +%llu",
	       (unsigned long long)(gs.irqs - gs0.irqs),
	       (unsigned long long)(gs.reqs - gs0.reqs),
	       (unsigned long long)(gs.unknown_addr - gs0.unknown_addr),
	       (unsigned long long)(gs.bad_cpu - gs0.bad_cpu),
	       (unsigned long long)(gs.bad_index - gs0.bad_index),
	       (unsigned long long)(gs.res_full - gs0.res_full));
	EXPECT_LT(gs0.bad_cpu, gs.bad_cpu);
	EXPECT_LT(gs0.unknown_addr, gs.unknown_addr);
	EXPECT_EQ(gs0.bad_index, gs.bad_index);
	ms = exec_true_ms(5000);
	EXPECT_LE(0, ms) TH_LOG("fork+exec of /bin/true did not finish in 5 s");
	TH_LOG("fork+exec /bin/true: %d ms", ms);

	/* The device works again after a reset. */
	fg_flush_res(&self->fg);
	ASSERT_EQ(0, reprobe(self, 0)) TH_LOG("%s", self->v.err);
	EXPECT_EQ(0, fg_vdev_rd(&self->v, VIRTIO_MMIO_STATUS) & 0x40);
	if (variant->daemon)
		recover_daemon(_metadata, self);
	else if (self->net)
		recover_net(_metadata, self);
	else
		recover_io(_metadata, self);
	EXPECT_EQ(0, fg_vdev_rd(&self->v, VIRTIO_MMIO_STATUS) & 0x40);
	/* And still nothing outside the zone was touched. */
	EXPECT_EQ(-1, check_canaries(self));

	if (variant->daemon) {
		t0 = fg_now_ms();
		st = daemon_stop(self, SIGTERM, STOP_MS);
		EXPECT_TRUE(st >= 0 && WIFEXITED(st) && !WEXITSTATUS(st))
			TH_LOG("daemon after SIGTERM: wait status %#x (%s); stderr \"%s\"",
			       st, st == -ETIMEDOUT ? "did not exit in time" :
			       "", log_tail(self));
		TH_LOG("daemon exited %lu ms after SIGTERM",
		       (unsigned long)(fg_now_ms() - t0));
	}
}

TEST_HARNESS_MAIN
