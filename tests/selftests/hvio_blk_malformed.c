// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_blk_malformed: chains and rings a hostile or broken guest makes.
 * Each malformed chain (bad next, loops, buffers outside zone RAM, every
 * indirect abuse, ...) comes back with used length 0 and the queue goes
 * on; what breaks the ring itself (a head >= queue size, an avail index
 * jump, a head made available twice) stops the queue with
 * DEVICE_NEEDS_RESET and a configuration interrupt, and a reset and
 * re-probe bring the device back.
 * Fixture, daemon and guest helpers: blkdaemon.h.
 */
#include "hvio_test.h"

#include "blkdaemon.h"

enum mal {
	M_NEXT_OOB, M_LOOP, M_ADDR_BEYOND, M_ADDR_STRADDLE, M_ADDR_LOW,
	M_ZERO_LEN, M_ORDER, M_NO_STATUS, M_NESTED_INDIRECT, M_INDIRECT_LEN0,
	M_INDIRECT_LEN_ODD, M_INDIRECT_NEXT, M_INDIRECT_OUTSIDE,
	M_INDIRECT_NEXT_OOB, M_INDIRECT_LOOP, M_INDIRECT_HUGE,
	M_TOO_MANY_SEGS, M_HDR_SHORT, M_NR
};

static const char *const mal_name[M_NR] = {
	"next >= queue size", "descriptor loop", "buffer beyond zone RAM",
	"buffer straddling the end of zone RAM", "buffer below zone RAM",
	"zero-length buffer", "readable after writable", "no writable status",
	"nested indirect", "indirect length 0", "indirect length not 16*n",
	"INDIRECT with NEXT", "indirect table outside zone RAM",
	"indirect next out of table", "loop inside an indirect table",
	"indirect table of 1025 entries", "100 data segments",
	"header shorter than 16 bytes",
};

/* A table of n descriptors in zone RAM. */
static struct vring_desc *tab_new(struct __test_metadata *_metadata,
				  FIXTURE_DATA(blk) *self, unsigned int n,
				  uint64_t *gpa)
{
	*gpa = galloc(self, 16ULL * n, 16);
	ASSERT_NE(0, *gpa);
	memset(gp(self, *gpa), 0, 16ULL * n);
	return gp(self, *gpa);
}

static void tset(struct vring_desc *t, unsigned int i, uint64_t addr,
		 uint32_t len, uint16_t flags, uint16_t next)
{
	t[i].addr = htole64(addr);
	t[i].len = htole32(len);
	t[i].flags = htole16(flags);
	t[i].next = htole16(next);
}

/*
 * Build malformed chain `m` on queue qi for request r (an IN of 512 bytes:
 * header at gpa, data at +16, status at +528) and make it available.
 */
static void post_malformed(struct __test_metadata *_metadata,
			   FIXTURE_DATA(blk) *self, int qi, struct breq *r,
			   enum mal m)
{
	const uint64_t end = GUEST_RAM + ZONE_SIZE;
	uint64_t h = r->gpa, d = r->gpa + 16, s = r->gpa + 16 + r->len;
	struct gq *q = &self->q[qi];
	struct vring_desc *t, *t2;
	uint64_t tg, tg2;
	int x[4], i;
	const uint16_t N = VRING_DESC_F_NEXT, W = VRING_DESC_F_WRITE;
	const uint16_t I = VRING_DESC_F_INDIRECT;

	for (i = 0; i < 4; i++) {
		x[i] = dget(q);
		ASSERT_LE(0, x[i]);
		r->desc[r->ndesc++] = x[i];
	}
	switch (m) {
	case M_NEXT_OOB:
		dset(q, x[0], h, 16, N, q->num);
		break;
	case M_LOOP:
		dset(q, x[0], h, 16, N, x[1]);
		dset(q, x[1], d, 512, N | W, x[2]);
		dset(q, x[2], s, 1, N | W, x[1]);
		break;
	case M_ADDR_BEYOND:
		dset(q, x[0], h, 16, N, x[1]);
		dset(q, x[1], end, 512, N | W, x[2]);
		dset(q, x[2], s, 1, W, 0);
		break;
	case M_ADDR_STRADDLE:
		dset(q, x[0], h, 16, N, x[1]);
		dset(q, x[1], end - 256, 512, N | W, x[2]);
		dset(q, x[2], s, 1, W, 0);
		break;
	case M_ADDR_LOW:
		dset(q, x[0], GUEST_RAM - 4096, 16, N, x[1]);
		dset(q, x[1], d, 512, N | W, x[2]);
		dset(q, x[2], s, 1, W, 0);
		break;
	case M_ZERO_LEN:
		dset(q, x[0], h, 16, N, x[1]);
		dset(q, x[1], d, 0, N | W, x[2]);
		dset(q, x[2], d, 512, N | W, x[3]);
		dset(q, x[3], s, 1, W, 0);
		break;
	case M_ORDER:
		dset(q, x[0], h, 16, N, x[1]);
		dset(q, x[1], d, 512, N | W, x[2]);
		dset(q, x[2], d, 16, N, x[3]);
		dset(q, x[3], s, 1, W, 0);
		break;
	case M_NO_STATUS:
		dset(q, x[0], h, 16, N, x[1]);
		dset(q, x[1], d, 512, 0, 0);
		break;
	case M_NESTED_INDIRECT:
		t2 = tab_new(_metadata, self, 3, &tg2);
		tset(t2, 0, h, 16, N, 1);
		tset(t2, 1, d, 512, N | W, 2);
		tset(t2, 2, s, 1, W, 0);
		t = tab_new(_metadata, self, 1, &tg);
		tset(t, 0, tg2, 48, I, 0);
		dset(q, x[0], tg, 16, I, 0);
		break;
	case M_INDIRECT_LEN0:
	case M_INDIRECT_LEN_ODD:
	case M_INDIRECT_NEXT:
	case M_INDIRECT_OUTSIDE:
		t = tab_new(_metadata, self, 3, &tg);
		tset(t, 0, h, 16, N, 1);
		tset(t, 1, d, 512, N | W, 2);
		tset(t, 2, s, 1, W, 0);
		if (m == M_INDIRECT_LEN0)
			dset(q, x[0], tg, 0, I, 0);
		else if (m == M_INDIRECT_LEN_ODD)
			dset(q, x[0], tg, 40, I, 0);
		else if (m == M_INDIRECT_NEXT) {
			dset(q, x[0], tg, 48, I | N, x[1]);
			dset(q, x[1], s, 1, W, 0);
		} else
			dset(q, x[0], end - 16, 48, I, 0);
		break;
	case M_INDIRECT_NEXT_OOB:
		t = tab_new(_metadata, self, 3, &tg);
		tset(t, 0, h, 16, N, 5);
		tset(t, 1, d, 512, N | W, 2);
		tset(t, 2, s, 1, W, 0);
		dset(q, x[0], tg, 48, I, 0);
		break;
	case M_INDIRECT_LOOP:
		t = tab_new(_metadata, self, 3, &tg);
		tset(t, 0, h, 16, N, 1);
		tset(t, 1, d, 512, N | W, 2);
		tset(t, 2, s, 1, N | W, 1);
		dset(q, x[0], tg, 48, I, 0);
		break;
	case M_INDIRECT_HUGE:
		t = tab_new(_metadata, self, 1025, &tg);
		tset(t, 0, h, 16, N, 1);
		for (i = 1; i < 1024; i++)
			tset(t, i, d, 512, N | W, i + 1);
		tset(t, 1024, s, 1, W, 0);
		dset(q, x[0], tg, 16 * 1025, I, 0);
		break;
	case M_TOO_MANY_SEGS:
		t = tab_new(_metadata, self, 102, &tg);
		tset(t, 0, h, 16, N, 1);
		for (i = 1; i <= 100; i++)
			tset(t, i, d, 512, N | W, i + 1);	/* same buffer */
		tset(t, 101, s, 1, W, 0);
		dset(q, x[0], tg, 16 * 102, I, 0);
		break;
	case M_HDR_SHORT:
		dset(q, x[0], h, 8, N, x[1]);
		dset(q, x[1], s, 1, W, 0);
		break;
	case M_NR:
		break;
	}
	avail_add(self, qi, x[0], r);
}

TEST_F_TIMEOUT(blk, malformed_chains_returned_len0, 60)
{
	/* Each malformed chain (bad next, loop, buffers outside zone RAM, zero length, order, missing status, every indirect abuse, too many segments) comes back with used length 0 and the queue goes on; a short header gets S_IOERR; indirect without INDIRECT_DESC is refused after a re-probe. */
	struct breq *r, *ok;
	unsigned int m;
	uint32_t st;

	NEED_SETUP();
	UP();
	ASSERT_TRUE(self->indirect);
	for (m = 0; m < M_NR; m++) {
		r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 8, 512);
		post_malformed(_metadata, self, m % NQ, r, m);
		publish(self, m % NQ);
		kick(self, m % NQ);
		EXPECT_EQ(0, wait_done(self, &r, 1, IO_MS))
			TH_LOG("%s: not returned; %s", mal_name[m], diag(self));
		if (m == M_HDR_SHORT) {
			EXPECT_DONE(r, ST_IOERR, 1);
		} else {
			EXPECT_EQ(0, r->used_len)
				TH_LOG("%s: used len %u", mal_name[m], r->used_len);
		}
		if (m != M_HDR_SHORT && m != M_NO_STATUS) {
			/* nothing was written into it */
			EXPECT_EQ(ST_UNTOUCHED, *r->status)
				TH_LOG("%s: status byte written (%u)", mal_name[m], *r->status);
		}
		/* the queue goes on */
		ok = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 16 + m, 512);
		RUN_EXPECT(m % NQ, ok, ST_OK, 513);
		EXPECT_DATA(ok);
	}
	st = RD(VIRTIO_MMIO_STATUS);
	EXPECT_FALSE(st & VIRTIO_CONFIG_S_NEEDS_RESET) TH_LOG("Status %#x", st);

	/* indirect without VIRTIO_F_INDIRECT_DESC */
	probe(_metadata, self, WANT_ALL & ~F_INDIRECT);
	ASSERT_FALSE(self->indirect);
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 8, 512);
	r->indirect = true;
	run1(_metadata, self, 0, r);
	EXPECT_TRUE(r->done) TH_LOG("indirect when not negotiated: not returned; %s", diag(self));
	EXPECT_EQ(0, r->used_len);
	EXPECT_EQ(ST_UNTOUCHED, *r->status);
	ok = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 24, 512);
	RUN_EXPECT(0, ok, ST_OK, 513);
	EXPECT_DATA(ok);
	EXPECT_IMG();
}

/* After NEEDS_RESET: reset, probe again, and the device works. */
static void recover(struct __test_metadata *_metadata, FIXTURE_DATA(blk) *self)
{
	struct breq *r[2], *w;

	WR(VIRTIO_MMIO_STATUS, 0);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
	probe(_metadata, self, WANT_ALL);
	r[0] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 4, 4096);
	r[1] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 1004, 4096);
	rq_post(_metadata, self, 0, r[0]);
	rq_post(_metadata, self, 1, r[1]);
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, r, 2, IO_MS)) TH_LOG("after reset: %s", diag(self));
	EXPECT_DONE(r[0], ST_OK, 4097);
	EXPECT_DATA(r[0]);
	EXPECT_DONE(r[1], ST_OK, 4097);
	EXPECT_DATA(r[1]);
	w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 2004, 4096);
	RUN_EXPECT(0, w, ST_OK, 1);
	if (w->done && *w->status == ST_OK)
		shadow_write(self, w);
	EXPECT_IMG();
}

/* Expect DEVICE_NEEDS_RESET with a configuration interrupt. */
static void expect_needs_reset(struct __test_metadata *_metadata,
			       FIXTURE_DATA(blk) *self, unsigned long irqs0,
			       const char *what)
{
	uint32_t st, isr;

	st = wait_status_bit(self, VIRTIO_CONFIG_S_NEEDS_RESET, IO_MS);
	EXPECT_TRUE(st & VIRTIO_CONFIG_S_NEEDS_RESET)
		TH_LOG("%s: Status %#x; %s", what, st, diag(self));
	EXPECT_TRUE(wait_irqs(self, irqs0, 1, IRQ_MS))
		TH_LOG("%s: no configuration interrupt", what);
	isr = RD(VIRTIO_MMIO_INTERRUPT_STATUS);
	EXPECT_TRUE(isr & VIRTIO_MMIO_INT_CONFIG) TH_LOG("%s: InterruptStatus %#x", what, isr);
	WR(VIRTIO_MMIO_INTERRUPT_ACK, isr);
}

TEST_F(blk, bad_head_needs_reset)
{
	/* An avail entry naming a head >= queue size stops the queue with DEVICE_NEEDS_RESET and a configuration interrupt, nothing in the used ring; after reset and re-probe the device works. */
	unsigned long irqs0;
	struct breq *ok;
	uint16_t u0;

	NEED_SETUP();
	UP();
	ok = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 512);
	RUN_EXPECT(0, ok, ST_OK, 513);
	u0 = used_idx(&self->q[0]);
	irqs0 = self->irqs;
	self->q[0].avail->ring[self->q[0].avail_idx & (QSIZE - 1)] = htole16(QSIZE + 44);
	self->q[0].avail_idx++;
	publish(self, 0);
	kick_now(self, 0);
	expect_needs_reset(_metadata, self, irqs0, "head 300");
	EXPECT_EQ(u0, used_idx(&self->q[0]));
	recover(_metadata, self);
}

TEST_F(blk, avail_jump_needs_reset)
{
	/* An avail index that moves by more than the queue size sets DEVICE_NEEDS_RESET with a configuration interrupt; after reset and re-probe the device works. */
	unsigned long irqs0;
	struct breq *ok;
	uint16_t u0;

	NEED_SETUP();
	UP();
	ok = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 512);
	RUN_EXPECT(1, ok, ST_OK, 513);
	u0 = used_idx(&self->q[1]);
	irqs0 = self->irqs;
	self->q[1].avail_idx += QSIZE + 1;
	publish(self, 1);
	kick_now(self, 1);
	expect_needs_reset(_metadata, self, irqs0, "avail jump");
	EXPECT_EQ(u0, used_idx(&self->q[1]));
	recover(_metadata, self);
}

TEST_F(blk, head_reposted_in_flight_needs_reset)
{
	/* Making a head available again while the daemon still holds it is a protocol violation: DEVICE_NEEDS_RESET; reset and re-probe recover. */
	unsigned long irqs0;
	struct breq *r;

	NEED_SETUP();
	UP();
	irqs0 = self->irqs;
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 65536);
	rq_post(_metadata, self, 0, r);
	avail_add(self, 0, r->head, r);		/* the same head again */
	publish(self, 0);
	kick_now(self, 0);
	expect_needs_reset(_metadata, self, irqs0, "head reposted");
	recover(_metadata, self);
}

TEST_HARNESS_MAIN
