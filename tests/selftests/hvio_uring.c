// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_uring: op delivery through io_uring commands on the device fd
 * (HVIO_URING_FETCH / HVIO_URING_COMMIT, Documentation/abi.md).  This
 * program plays hvisor, the guest driver and the daemon's queue thread:
 * it parks a FETCH in its own ring, kicks as the guest, and checks what
 * completes the FETCH, the result it writes, the op slots, the used ring,
 * and that a parked FETCH never outlives the task that parked it.
 */
#include <liburing.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "hvio_test.h"

#define QN		16		/* queue size */
#define NQ		2
#define IRQ		41
#define CAPACITY	2048		/* sectors */
#define DATA		(GUEST_RAM + 0x40000)
#define HDR		(DATA)
#define STATUS		(DATA + 0x800)
#define BUF		(DATA + 0x1000)
#define CQE_MS		2000		/* longest wait for an expected CQE */
#define NO_CQE_MS	200		/* how long "nothing completes" is watched */
#define BLK_FEATURES	(FG_F_VERSION_1 | (1ULL << VIRTIO_BLK_F_FLUSH) | \
			 (1ULL << VIRTIO_RING_F_EVENT_IDX))

/* The result a FETCH writes: header and room for every tag. */
struct fetch_res {
	struct hvio_fetch_result r;
	uint16_t tags[QN];
};

FIXTURE(uring) {
	struct fg fg;
	struct fg_zone z;
	bool skip;
	bool zone;
	int fd;
	struct fg_vdev v;
	struct hvio_op *ops;
	size_t ops_len;
	uint16_t avail_idx;
	struct io_uring ring;
	bool ring_ok;
};

static void *gptr(FIXTURE_DATA(uring) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->z, gpa);
}

static int make_dev(FIXTURE_DATA(uring) *self, uint32_t flags)
{
	struct virtio_blk_config cfg;
	struct hvio_dev_create c;

	memset(&cfg, 0, sizeof(cfg));
	cfg.capacity = CAPACITY;
	cfg.seg_max = HVIO_OP_MAX_SEGS;
	fg_dev_init(&c, ZONE_A, VIRTIO_ID_BLOCK, MMIO_BASE, IRQ, NQ, QN,
		    BLK_FEATURES, &cfg, 60);
	c.flags = flags;
	return fg_dev_create(&self->fg, &c);
}

static int probe(FIXTURE_DATA(uring) *self)
{
	self->avail_idx = 0;
	memset(gptr(self, GUEST_RAM), 0, 0x40000);
	return fg_vdev_probe(&self->v, BLK_FEATURES, NQ, QN, GUEST_RAM);
}

FIXTURE_SETUP(uring)
{
	self->fd = -1;
	self->z = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				    .ram_off = 0, .size = MIB };
	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	ASSERT_EQ(0, fg_zone_add(&self->fg, &self->z));
	self->zone = true;
	self->fd = make_dev(self, 0);
	ASSERT_LE(0, self->fd) TH_LOG("DEV_CREATE: %s", errname(self->fd));
	self->ops_len = (QN * sizeof(struct hvio_op) + 4095) & ~4095UL;
	self->ops = mmap(NULL, self->ops_len, PROT_READ, MAP_SHARED, self->fd,
			 HVIO_DEV_MMAP_RING_BASE);
	ASSERT_NE(MAP_FAILED, self->ops);
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	ASSERT_EQ(0, probe(self)) TH_LOG("%s", self->v.err);
	fg_flush_res(&self->fg);
	ASSERT_EQ(0, io_uring_queue_init(8, &self->ring, 0));
	self->ring_ok = true;
}

FIXTURE_TEARDOWN(uring)
{
	struct hvio_queue_unpark up = { 0 };

	/* A FETCH a failed test left parked would keep the device. */
	for (up.queue = 0; self->fd >= 0 && up.queue < NQ; up.queue++)
		ioctl(self->fd, HVIO_DEV_QUEUE_UNPARK, &up);
	if (self->ring_ok)
		io_uring_queue_exit(&self->ring);
	if (self->ops && self->ops != MAP_FAILED)
		munmap(self->ops, self->ops_len);
	if (self->fd >= 0) {
		ioctl(self->fd, HVIO_DEV_DESTROY);
		close(self->fd);
	}
	if (self->zone)
		fg_zone_del(&self->fg, ZONE_A);
	hvio_fixture_close(_metadata, &self->fg);
}

/* Queue one uring_cmd (not submitted yet). */
static void prep_cmd(struct io_uring *ring, int fd, uint32_t op,
		     const void *payload, uint64_t ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe)
		return;
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = fd;
	sqe->cmd_op = op;
	memcpy(sqe->cmd, payload, 16);
	io_uring_sqe_set_data64(sqe, ud);
}

static int submit_fetch(struct io_uring *ring, int fd, uint16_t queue,
			uint16_t max, uint32_t flags, struct fetch_res *res,
			uint64_t ud)
{
	struct hvio_uring_fetch f = {
		.queue = queue, .max_fetch = max, .flags = flags,
		.result_addr = (uintptr_t)res,
	};

	prep_cmd(ring, fd, HVIO_URING_FETCH, &f, ud);
	return io_uring_submit(ring);
}

static int submit_commit_flags(struct io_uring *ring, int fd, uint16_t queue,
			       const struct hvio_completion *c, uint16_t n,
			       uint32_t flags, uint64_t ud)
{
	struct hvio_uring_commit cm = {
		.queue = queue, .nr_commit = n, .flags = flags,
		.commits_addr = (uintptr_t)c,
	};

	prep_cmd(ring, fd, HVIO_URING_COMMIT, &cm, ud);
	return io_uring_submit(ring);
}

static int submit_commit(struct io_uring *ring, int fd, uint16_t queue,
			 const struct hvio_completion *c, uint16_t n,
			 uint64_t ud)
{
	return submit_commit_flags(ring, fd, queue, c, n, 0, ud);
}

/* The next CQE within ms: its res, *ud its user_data; -ETIME if none. */
static int wait_cqe(struct io_uring *ring, int ms, uint64_t *ud)
{
	struct __kernel_timespec ts = { .tv_sec = ms / 1000,
					.tv_nsec = (ms % 1000) * 1000000L };
	struct io_uring_cqe *cqe;
	int r;

	r = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	if (r < 0)
		return r;
	r = cqe->res;
	if (ud)
		*ud = io_uring_cqe_get_data64(cqe);
	io_uring_cqe_seen(ring, cqe);
	return r;
}

/*
 * A FETCH without wait on an empty queue: 0.  A queue's first FETCH
 * returns at once (the daemon learns the generation), so a test that
 * wants one to park primes the queue with this first.
 */
static int prime(struct io_uring *ring, int fd, uint16_t queue)
{
	struct fetch_res fr;

	if (submit_fetch(ring, fd, queue, QN, 0, &fr, 99) != 1)
		return -EIO;
	return wait_cqe(ring, CQE_MS, NULL);
}

/* A read request of 512 bytes at sector 9; returns the head. */
static uint16_t post_read(FIXTURE_DATA(uring) *self)
{
	struct fg_vq *vq = &self->v.vq[0];
	struct vring_desc *desc = gptr(self, vq->desc);
	struct vring_avail *avail = gptr(self, vq->driver);
	struct virtio_blk_outhdr *h = gptr(self, HDR);
	uint16_t head = 0;

	h->type = VIRTIO_BLK_T_IN;
	h->ioprio = 0;
	h->sector = 9;
	desc[0] = (struct vring_desc){ HDR, 16, VRING_DESC_F_NEXT, 1 };
	desc[1] = (struct vring_desc){ BUF, 512,
				       VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
				       2 };
	desc[2] = (struct vring_desc){ STATUS, 1, VRING_DESC_F_WRITE, 0 };
	*(uint8_t *)gptr(self, STATUS) = 0xee;
	avail->ring[self->avail_idx % QN] = head;
	__atomic_store_n(&avail->idx, ++self->avail_idx, __ATOMIC_RELEASE);
	return head;
}

static void kick(FIXTURE_DATA(uring) *self, int q)
{
	fg_notify(&self->fg, 0, ZONE_A, MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, q);
	fg_wait_consumed(&self->fg, FG_TIMEOUT_MS);
}

static uint16_t used_idx(FIXTURE_DATA(uring) *self)
{
	struct vring_used *used = gptr(self, self->v.vq[0].device);

	return __atomic_load_n(&used->idx, __ATOMIC_ACQUIRE);
}

static struct hvio_queue_stats qstats(int fd, int q)
{
	struct hvio_queue_stats st = { .queue = q };

	ioctl(fd, HVIO_DEV_GET_QUEUE_STATS, &st);
	return st;
}

static uint64_t dev_generation(int fd)
{
	struct hvio_dev_info info;

	if (fg_dev_info(fd, &info))
		return 0;
	return info.generation;
}

TEST_F(uring, kick_completes_parked_fetch)
{
	/* A FETCH that finds nothing parks; the guest's kick completes it
	 * with the op, written byte for byte before the CQE; a COMMIT
	 * through the same ring writes status, used entry and interrupt.
	 * The queue's eventfd stays silent: the FETCH took the kick. */
	struct hvio_completion c = { 0 };
	struct hvio_device_res res[2];
	struct fetch_res fr;
	struct hvio_op *op;
	uint64_t ud, cnt;
	uint16_t head;
	int efd;

	NEED_SETUP();
	efd = eventfd(0, EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	struct hvio_queue_eventfd qe = { .queue = 0, .fd = efd };
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_SET_QUEUE_EVENTFD, &qe));

	ASSERT_EQ(0, prime(&self->ring, self->fd, 0));
	memset(&fr, 0xcc, sizeof(fr));
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT, &fr, 7));
	EXPECT_EQ(-ETIME, wait_cqe(&self->ring, NO_CQE_MS, NULL));
	EXPECT_EQ(0xcccc, fr.r.nr_fetched);

	head = post_read(self);
	kick(self, 0);
	ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, &ud));
	EXPECT_EQ(7, ud);
	EXPECT_EQ(1, fr.r.nr_fetched);
	EXPECT_EQ(head, fr.tags[0]);
	EXPECT_EQ(0xcccc, fr.tags[1]);
	EXPECT_EQ(0, fr.r.reserved);
	EXPECT_EQ(0, fr.r.out_flags);
	EXPECT_EQ(dev_generation(self->fd),
		  fr.r.generation | (uint64_t)fr.r.generation_hi << 32);
	EXPECT_EQ(-1, read(efd, &cnt, sizeof(cnt)));
	EXPECT_EQ(1, qstats(self->fd, 0).kicks);

	op = &self->ops[head];
	EXPECT_EQ(HVIO_OP_READ, op->type);
	EXPECT_EQ(head, op->tag);
	EXPECT_EQX(9 * 512, op->offset);
	EXPECT_EQ(512, op->len);
	ASSERT_EQ(1, op->nr_segs);
	EXPECT_EQX(BUF, op->segs[0].gpa);
	EXPECT_EQ(512, op->segs[0].len);
	EXPECT_EQ(fr.r.generation, op->generation);
	EXPECT_EQ(0, used_idx(self));

	fg_flush_res(&self->fg);
	c.tag = head;
	c.generation = fr.r.generation;
	c.generation_hi = fr.r.generation_hi;
	ASSERT_EQ(1, submit_commit(&self->ring, self->fd, 0, &c, 1, 8));
	ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, &ud));
	EXPECT_EQ(8, ud);
	ASSERT_EQ(1, used_idx(self));
	EXPECT_EQ(VIRTIO_BLK_S_OK, *(uint8_t *)gptr(self, STATUS));
	EXPECT_EQ(1, fg_collect_res(&self->fg, res, 2, 1, FG_TIMEOUT_MS));
	EXPECT_EQ(1, qstats(self->fd, 0).completed);
	close(efd);
}

static uint16_t avail_event(FIXTURE_DATA(uring) *self)
{
	uint64_t gpa = self->v.vq[0].device + 4 + 8ULL * QN;

	return __atomic_load_n((uint16_t *)gptr(self, gpa), __ATOMIC_ACQUIRE);
}

TEST_F(uring, commit_under_a_parked_fetch_polls)
{
	/*
	 * Polling on (HVIO_DEV_SET_POLL), a FETCH parked: the COMMIT
	 * suppresses kicks before the guest can see its completion and
	 * wakes the FETCH, whose fetch (task work, in this ring's wait:
	 * DEFER_TASKRUN) polls and then re-arms.  So a guest that sees the
	 * completion and posts at once, before that fetch ran, needs no
	 * kick, and the FETCH takes its request.
	 */
	struct hvio_dev_poll p = { .poll_us = HVIO_MAX_POLL_US };
	struct hvio_completion c = { 0 };
	struct fetch_res fr, fw;
	struct io_uring ring;
	uint16_t old, head;
	uint64_t ud = 0;
	int i, r, got = -1;

	NEED_SETUP();
	r = io_uring_queue_init(8, &ring, IORING_SETUP_SINGLE_ISSUER |
				IORING_SETUP_DEFER_TASKRUN);
	if (r)
		SKIP(return, "no IORING_SETUP_DEFER_TASKRUN: %s", strerror(-r));
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_SET_POLL, &p));
	ASSERT_EQ(0, prime(&ring, self->fd, 0));
	post_read(self);
	ASSERT_EQ(1, submit_fetch(&ring, self->fd, 0, QN, 0, &fr, 1));
	ASSERT_EQ(1, wait_cqe(&ring, CQE_MS, NULL));
	ASSERT_EQ(1, submit_fetch(&ring, self->fd, 0, QN, HVIO_FETCH_F_WAIT,
				  &fw, 2));
	EXPECT_EQ(-ETIME, wait_cqe(&ring, NO_CQE_MS, NULL));

	c.tag = fr.tags[0];
	c.generation = fr.r.generation;
	c.generation_hi = fr.r.generation_hi;
	ASSERT_EQ(1, submit_commit(&ring, self->fd, 0, &c, 1, 3));
	/* The guest: its completion is there, its next request follows. */
	ASSERT_EQ(1, used_idx(self));
	old = self->avail_idx;
	head = post_read(self);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	EXPECT_FALSE(vring_need_event(avail_event(self), self->avail_idx, old))
		TH_LOG("avail_event %u: the guest must kick", avail_event(self));

	for (i = 0; i < 2; i++) {
		r = wait_cqe(&ring, CQE_MS, &ud);
		if (ud == 2) {
			got = r;
		} else {
			EXPECT_EQ(3, ud);
			EXPECT_EQ(0, r);
		}
	}
	EXPECT_EQ(1, got);
	EXPECT_EQ(1, fw.r.nr_fetched);
	EXPECT_EQ(head, fw.tags[0]);
	EXPECT_EQ(0, qstats(self->fd, 0).kicks);
	/* Armed again: the request after would kick. */
	EXPECT_EQ(self->avail_idx, avail_event(self));
	io_uring_queue_exit(&ring);
}

TEST_F(uring, commit_with_fetch_next_suppresses_kicks_until_that_fetch)
{
	/*
	 * Polling on, no FETCH parked (a daemon that starts a large fetch
	 * in parts commits each part before its next FETCH): a plain COMMIT
	 * leaves the guest's kicks armed, one with HVIO_COMMIT_F_FETCH_NEXT
	 * suppresses them, and the FETCH that follows takes the guest's
	 * request without a kick and re-arms them.
	 */
	struct hvio_dev_poll p = { .poll_us = HVIO_MAX_POLL_US };
	struct hvio_completion c = { 0 };
	struct fetch_res fr;
	uint16_t old, head, used = 0;
	int round;

	NEED_SETUP();
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_SET_POLL, &p));
	for (round = 0; round < 2; round++) {
		post_read(self);
		ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN, 0, &fr,
					  1));
		ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
		c.tag = fr.tags[0];
		c.generation = fr.r.generation;
		c.generation_hi = fr.r.generation_hi;
		ASSERT_EQ(1, submit_commit_flags(&self->ring, self->fd, 0, &c,
						 1, round ?
						 HVIO_COMMIT_F_FETCH_NEXT : 0,
						 2));
		/* A COMMIT posts a CQE of its own (no CQE_SKIP here). */
		ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
		ASSERT_EQ(++used, used_idx(self));
		/* The guest sees its completion and posts the next request. */
		old = self->avail_idx;
		head = post_read(self);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		EXPECT_EQ(!round, vring_need_event(avail_event(self),
						   self->avail_idx, old))
			TH_LOG("round %d: avail_event %u, avail %u", round,
			       avail_event(self), self->avail_idx);
		if (!round) {
			/* Armed: the guest kicks, the fetch takes it. */
			kick(self, 0);
			ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
						  0, &fr, 3));
			ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
			c.tag = fr.tags[0];
			ASSERT_EQ(1, submit_commit(&self->ring, self->fd, 0,
						   &c, 1, 4));
			ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
			ASSERT_EQ(++used, used_idx(self));
			continue;
		}
		ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
					  HVIO_FETCH_F_WAIT, &fr, 5));
		ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
		EXPECT_EQ(head, fr.tags[0]);
	}
	EXPECT_EQ(1, qstats(self->fd, 0).kicks);
	/* Armed again: the request after would kick. */
	EXPECT_EQ(self->avail_idx, avail_event(self));
}

TEST_F(uring, fetch_next_under_a_parked_fetch_keeps_kicks_armed)
{
	/*
	 * Polling off, the FETCH parked: that FETCH is the one the daemon
	 * promised, and only a kick completes it, so a COMMIT with
	 * HVIO_COMMIT_F_FETCH_NEXT must leave kicks armed (suppressed, the
	 * guest's next request would wait for ever).
	 */
	struct hvio_completion c = { 0 };
	struct fetch_res fr, fw;
	uint16_t old, head;
	uint64_t ud;

	NEED_SETUP();
	ASSERT_EQ(0, prime(&self->ring, self->fd, 0));
	post_read(self);
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN, 0, &fr, 1));
	ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT | HVIO_FETCH_F_AGAIN, &fw,
				  2));
	EXPECT_EQ(-ETIME, wait_cqe(&self->ring, NO_CQE_MS, NULL));
	c.tag = fr.tags[0];
	c.generation = fr.r.generation;
	c.generation_hi = fr.r.generation_hi;
	ASSERT_EQ(1, submit_commit_flags(&self->ring, self->fd, 0, &c, 1,
					 HVIO_COMMIT_F_FETCH_NEXT, 3));
	ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, &ud));
	EXPECT_EQ(3, ud);
	ASSERT_EQ(1, used_idx(self));
	old = self->avail_idx;
	head = post_read(self);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	ASSERT_TRUE(vring_need_event(avail_event(self), self->avail_idx, old))
		TH_LOG("avail_event %u: kicks off, nobody would fetch",
		       avail_event(self));
	kick(self, 0);
	ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, &ud));
	EXPECT_EQ(2, ud);
	EXPECT_EQ(head, fw.tags[0]);
}

TEST_F(uring, fetch_again_keeps_kicks_off_until_the_next_fetch)
{
	/*
	 * A FETCH that takes the ring's last request re-arms kicks; with
	 * HVIO_FETCH_F_AGAIN it leaves them off (the daemon fetches again
	 * once it has started its ops), and the next FETCH, finding the
	 * ring empty, re-arms them.
	 */
	struct hvio_completion c = { 0 };
	struct fetch_res fr;
	uint16_t old;
	int round;

	NEED_SETUP();
	for (round = 0; round < 2; round++) {
		post_read(self);
		ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
					  round ? HVIO_FETCH_F_AGAIN : 0, &fr,
					  1));
		ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
		EXPECT_EQ(0, fr.r.out_flags & HVIO_RUN_OUT_MORE);
		/* A plain COMMIT leaves kicks as they are (the head is reused). */
		c.tag = fr.tags[0];
		c.generation = fr.r.generation;
		c.generation_hi = fr.r.generation_hi;
		ASSERT_EQ(1, submit_commit(&self->ring, self->fd, 0, &c, 1, 4));
		ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
		old = self->avail_idx;
		post_read(self);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		EXPECT_EQ(!round, vring_need_event(avail_event(self),
						   self->avail_idx, old))
			TH_LOG("round %d: avail_event %u, avail %u", round,
			       avail_event(self), self->avail_idx);
		/* The next fetch takes it either way. */
		ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN, 0, &fr,
					  2));
		ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
		EXPECT_EQ(self->avail_idx, avail_event(self));
		c.tag = fr.tags[0];
		ASSERT_EQ(1, submit_commit(&self->ring, self->fd, 0, &c, 1, 4));
		ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
		/* Back to empty and armed for the next round. */
		ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
					  HVIO_FETCH_F_AGAIN, &fr, 3));
		ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
		EXPECT_EQ(self->avail_idx, avail_event(self));
	}
	EXPECT_EQ(0, qstats(self->fd, 0).kicks);
}

TEST_F(uring, fetch_without_wait_and_more)
{
	/* Without HVIO_FETCH_F_WAIT an empty queue completes at once with 0;
	 * a fetch stopped at max_fetch says MORE. */
	struct fetch_res fr;

	NEED_SETUP();
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN, 0, &fr, 1));
	EXPECT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
	EXPECT_EQ(0, fr.r.nr_fetched);
	post_read(self);
	post_read(self);
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, 1,
				  HVIO_FETCH_F_WAIT, &fr, 1));
	EXPECT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
	EXPECT_EQ(HVIO_RUN_OUT_MORE, fr.r.out_flags & HVIO_RUN_OUT_MORE);
}

TEST_F(uring, reset_completes_parked_fetch_with_new_generation)
{
	/* A device reset completes the parked FETCH with nothing fetched and
	 * the new generation; after the new probe a kick works again. */
	struct fetch_res fr;
	uint64_t gen0, gen1, flag;

	NEED_SETUP();
	gen0 = dev_generation(self->fd);
	/* The daemon has seen gen0 once: the FETCH may park. */
	ASSERT_EQ(0, prime(&self->ring, self->fd, 0));
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT, &fr, 2));
	EXPECT_EQ(-ETIME, wait_cqe(&self->ring, NO_CQE_MS, NULL));
	ASSERT_EQ(0, fg_vdev_reset_start(&self->v, &flag));
	ASSERT_EQ(0, fg_vdev_reset_wait(&self->v, flag)) TH_LOG("%s", self->v.err);
	EXPECT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
	gen1 = dev_generation(self->fd);
	EXPECT_NE(gen0, gen1);
	EXPECT_EQ(gen1, fr.r.generation | (uint64_t)fr.r.generation_hi << 32);

	ASSERT_EQ(0, probe(self)) TH_LOG("%s", self->v.err);
	ASSERT_EQ(0, prime(&self->ring, self->fd, 0));
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT, &fr, 3));
	EXPECT_EQ(-ETIME, wait_cqe(&self->ring, NO_CQE_MS, NULL));
	post_read(self);
	kick(self, 0);
	EXPECT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
}

TEST_F(uring, fetch_never_parks_over_an_unseen_reset)
{
	/* A reset the daemon has not been told of (no result since) makes
	 * a FETCH complete at once with the new generation instead of
	 * parking: the daemon must cancel its old ops. */
	struct fetch_res fr;
	uint64_t flag;

	NEED_SETUP();
	ASSERT_EQ(0, prime(&self->ring, self->fd, 0));
	ASSERT_EQ(0, fg_vdev_reset_start(&self->v, &flag));
	ASSERT_EQ(0, fg_vdev_reset_wait(&self->v, flag)) TH_LOG("%s", self->v.err);
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT, &fr, 2));
	EXPECT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
	EXPECT_EQ(dev_generation(self->fd),
		  fr.r.generation | (uint64_t)fr.r.generation_hi << 32);
}

TEST_F(uring, second_fetch_is_ebusy_and_unpark_completes)
{
	/* One FETCH per queue: a second one fails with EBUSY while the first
	 * stays parked (the other queue may have its own); UNPARK completes
	 * the parked one with HVIO_FETCH_OUT_UNPARKED. */
	struct fetch_res fr, fr2, fr3;
	struct hvio_queue_unpark up = { .queue = 0 };
	uint64_t ud;

	NEED_SETUP();
	ASSERT_EQ(0, prime(&self->ring, self->fd, 0));
	ASSERT_EQ(0, prime(&self->ring, self->fd, 1));
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT, &fr, 1));
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT, &fr2, 2));
	EXPECT_EQ(-EBUSY, wait_cqe(&self->ring, CQE_MS, &ud));
	EXPECT_EQ(2, ud);
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 1, QN,
				  HVIO_FETCH_F_WAIT, &fr3, 3));
	EXPECT_EQ(-ETIME, wait_cqe(&self->ring, NO_CQE_MS, NULL));

	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_QUEUE_UNPARK, &up));
	EXPECT_EQ(0, wait_cqe(&self->ring, CQE_MS, &ud));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(HVIO_FETCH_OUT_UNPARKED, fr.r.out_flags);
	up.queue = 1;
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_QUEUE_UNPARK, &up));
	EXPECT_EQ(0, wait_cqe(&self->ring, CQE_MS, &ud));
	EXPECT_EQ(3, ud);

	/* An UNPARK with nothing parked: the next FETCH does not park. */
	up.queue = 0;
	ASSERT_EQ(0, ioctl(self->fd, HVIO_DEV_QUEUE_UNPARK, &up));
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT, &fr, 4));
	EXPECT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
	EXPECT_EQ(HVIO_FETCH_OUT_UNPARKED, fr.r.out_flags);
	up.reserved = 1;
	EXPECT_ERR(EINVAL, sys_ret(ioctl(self->fd, HVIO_DEV_QUEUE_UNPARK, &up)));
	up.reserved = 0;
	up.queue = NQ;
	EXPECT_ERR(EINVAL, sys_ret(ioctl(self->fd, HVIO_DEV_QUEUE_UNPARK, &up)));
}

TEST_F(uring, bad_payloads_are_einval)
{
	/* Unknown flags, queue out of range, max_fetch 0 or above the queue
	 * size, an empty or flagged COMMIT, an unknown command: EINVAL. */
	struct hvio_uring_fetch f = { .max_fetch = QN };
	struct hvio_uring_commit cm = { .nr_commit = 1 };
	struct hvio_completion c = { .tag = 3 };
	struct fetch_res fr;

	NEED_SETUP();
	f.result_addr = (uintptr_t)&fr;
	cm.commits_addr = (uintptr_t)&c;
#define TRY(_op, _p) do {						\
	prep_cmd(&self->ring, self->fd, (_op), (_p), 0);		\
	ASSERT_EQ(1, io_uring_submit(&self->ring));			\
	EXPECT_EQ(-EINVAL, wait_cqe(&self->ring, CQE_MS, NULL));	\
} while (0)
	f.flags = HVIO_FETCH_F_AGAIN << 1;
	TRY(HVIO_URING_FETCH, &f);
	f.flags = 0;
	f.queue = NQ;
	TRY(HVIO_URING_FETCH, &f);
	f.queue = 0;
	f.max_fetch = 0;
	TRY(HVIO_URING_FETCH, &f);
	f.max_fetch = QN + 1;
	TRY(HVIO_URING_FETCH, &f);
	cm.flags = HVIO_COMMIT_F_FETCH_NEXT << 1;
	TRY(HVIO_URING_COMMIT, &cm);
	cm.flags = 0;
	cm.nr_commit = 0;
	TRY(HVIO_URING_COMMIT, &cm);
	cm.nr_commit = 1;
	cm.queue = NQ;
	TRY(HVIO_URING_COMMIT, &cm);
	cm.queue = 0;
	/* A tag that is not in flight, as QUEUE_RUN says. */
	c.generation = (uint32_t)dev_generation(self->fd);
	TRY(HVIO_URING_COMMIT, &cm);
	TRY(_IO(HVIO_IOC_MAGIC, 0x2f), &f);
#undef TRY
	/* Nothing was fetched or parked by any of them. */
	EXPECT_EQ(0, qstats(self->fd, 0).ops);
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN, 0, &fr, 1));
	EXPECT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
}

TEST_F(uring, stale_commit_wakes_fetch_waiting_on_its_head)
{
	/* After QueueReady = 0 the guest reuses, in new rings, the head of
	 * an op the daemon still holds: the fetch stops there and parks.
	 * The daemon's COMMIT of the old op (dropped as stale) frees the
	 * head and must wake the FETCH, which then fetches the new chain. */
	struct hvio_completion c = { 0 };
	struct fetch_res fr;
	struct fg_vq nvq;

	NEED_SETUP();
	ASSERT_EQ(0, prime(&self->ring, self->fd, 0));
	ASSERT_EQ(0, post_read(self));
	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN, 0, &fr, 1));
	ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
	ASSERT_EQ(0, fr.tags[0]);

	fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_SEL, 0);
	fg_vdev_wr(&self->v, VIRTIO_MMIO_QUEUE_READY, 0);
	ASSERT_EQ(0, fg_vdev_rd(&self->v, VIRTIO_MMIO_QUEUE_READY));
	fg_vring_layout(GUEST_RAM + 0x30000, QN, &nvq);
	fg_vdev_setup_queue(&self->v, 0, &nvq);
	ASSERT_EQ(1, fg_vdev_rd(&self->v, VIRTIO_MMIO_QUEUE_READY));
	self->v.vq[0] = nvq;
	self->avail_idx = 0;
	ASSERT_EQ(0, post_read(self));
	kick(self, 0);

	ASSERT_EQ(1, submit_fetch(&self->ring, self->fd, 0, QN,
				  HVIO_FETCH_F_WAIT, &fr, 2));
	EXPECT_EQ(-ETIME, wait_cqe(&self->ring, NO_CQE_MS, NULL));
	c.tag = 0;
	c.generation = (uint32_t)dev_generation(self->fd);
	ASSERT_EQ(1, submit_commit(&self->ring, self->fd, 0, &c, 1, 3));
	ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
	EXPECT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
	EXPECT_EQ(0, fr.tags[0]);
	EXPECT_EQ(1, qstats(self->fd, 0).stale);
}

/* /sys/module/hvio/refcnt, or -1. */
static int module_refs(void)
{
	FILE *f = fopen("/sys/module/hvio/refcnt", "r");
	int n = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

/* Wait until the module-wide device count is want; the last count seen. */
static long wait_devs(struct fg *fg, uint64_t want, int ms)
{
	struct hvio_stats st;
	int i;

	for (i = 0; i <= ms / 20; i++) {
		if (fg_stats(fg, &st))
			return -1;
		if (st.devs == want)
			return (long)st.devs;
		usleep(20000);
	}
	return (long)st.devs;
}

/*
 * A child parks a FETCH in a ring of its own on the device, then closes
 * its ring and its copy of the device fd and ends (exit or SIGKILL).
 */
static pid_t park_in_child(int fd, bool kill_self, bool fetch_op)
{
	struct io_uring ring;
	struct fetch_res fr;
	pid_t pid = fork();

	if (pid)
		return pid;
	if (io_uring_queue_init(4, &ring, 0))
		_exit(2);
	/* With fetch_op, hold an op uncommitted (requeued after death). */
	if (submit_fetch(&ring, fd, 0, QN, 0, &fr, 1) != 1 ||
	    wait_cqe(&ring, CQE_MS, NULL) != fetch_op)
		_exit(3);
	if (submit_fetch(&ring, fd, 0, QN, HVIO_FETCH_F_WAIT, &fr, 2) != 1 ||
	    wait_cqe(&ring, NO_CQE_MS, NULL) != -ETIME)
		_exit(4);
	if (kill_self)
		raise(SIGKILL);
	io_uring_queue_exit(&ring);
	close(fd);
	_exit(0);
}

TEST_F(uring, parked_fetch_of_exited_task_lets_device_go)
{
	/* A task that closed its ring with a FETCH parked and exited: the
	 * command (which holds the device file) completes, the device is
	 * destroyed when the last fd closes, and the module's reference
	 * count is back where it was, so rmmod can work. */
	int refs0, st;
	pid_t pid;

	NEED_SETUP();
	refs0 = module_refs();
	pid = park_in_child(self->fd, false, false);
	ASSERT_LT(0, pid);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	munmap(self->ops, self->ops_len);
	self->ops = NULL;
	close(self->fd);
	self->fd = -1;
	EXPECT_EQ(0, wait_devs(&self->fg, 0, 5000));
	if (refs0 >= 0)
		EXPECT_GT(refs0, module_refs());
}

TEST_F(uring, sigkill_with_fetch_parked_then_takeover)
{
	/* A recoverable device's daemon is SIGKILLed with one op fetched and
	 * a FETCH parked: the device becomes an orphan, a new daemon
	 * attaches and its FETCH gets the uncommitted op again, which it
	 * completes. */
	struct hvio_dev_attach at = { .zone_id = ZONE_A,
				      .mmio_base = MMIO_BASE };
	struct hvio_completion c = { 0 };
	struct hvio_stats gst;
	struct fetch_res fr;
	uint16_t head;
	int fd, st, i;
	pid_t pid;

	NEED_SETUP();
	munmap(self->ops, self->ops_len);
	self->ops = NULL;
	ioctl(self->fd, HVIO_DEV_DESTROY);
	close(self->fd);
	self->fd = make_dev(self, HVIO_DEV_F_RECOVERABLE);
	ASSERT_LE(0, self->fd);
	ASSERT_EQ(0, probe(self)) TH_LOG("%s", self->v.err);
	head = post_read(self);
	kick(self, 0);

	pid = park_in_child(self->fd, true, true);
	ASSERT_LT(0, pid);
	close(self->fd);
	self->fd = -1;
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFSIGNALED(st)) TH_LOG("child exit %d", WEXITSTATUS(st));
	for (i = 0; i < 250; i++) {
		ASSERT_EQ(0, fg_stats(&self->fg, &gst));
		if (gst.orphans == 1)
			break;
		usleep(20000);
	}
	ASSERT_EQ(1, gst.orphans);

	fd = ioctl(self->fg.ctl_fd, HVIO_DEV_ATTACH, &at);
	ASSERT_LE(0, fd) TH_LOG("ATTACH: %s", strerror(errno));
	self->fd = fd;
	ASSERT_EQ(1, submit_fetch(&self->ring, fd, 0, QN, HVIO_FETCH_F_WAIT,
				  &fr, 1));
	ASSERT_EQ(1, wait_cqe(&self->ring, CQE_MS, NULL));
	EXPECT_EQ(head, fr.tags[0]);
	c.tag = head;
	c.generation = fr.r.generation;
	c.generation_hi = fr.r.generation_hi;
	ASSERT_EQ(1, submit_commit(&self->ring, fd, 0, &c, 1, 2));
	ASSERT_EQ(0, wait_cqe(&self->ring, CQE_MS, NULL));
	EXPECT_EQ(1, used_idx(self));
	EXPECT_EQ(VIRTIO_BLK_S_OK, *(uint8_t *)gptr(self, STATUS));
}

TEST_HARNESS_MAIN
