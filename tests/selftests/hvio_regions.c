// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_regions: a zone whose RAM is two disjoint regions, the second one
 * high, as in hvisor-tool's x86_64 example (0x0 + 512 MiB and 4 GiB +
 * 1.75 GiB).  The daemon registers both from its config (HVIO_ZONE_ADD
 * with nr_regions 2); the rings sit in the low region, data buffers and an
 * indirect table in the high one or in both, and reads and writes are
 * checked byte for byte against the image.  A buffer that runs across
 * the gap between the regions (or off the end of one) is refused with
 * used length 0, counted in the queue's vq_errors[ADDR], and nothing is
 * written: not the low region's tail, and not the high region's first
 * bytes, which follow the low region in host memory here, so a
 * translation that ran on past a region's end would land in them.
 * Fixture, daemon and guest helpers: blkdaemon.h.
 */
#include "hvio_test.h"

#include "blkdaemon.h"

/*
 * Region A is the fixture's zone (GUEST_RAM, ZONE_SIZE at sim_ram offset
 * 0); region B follows it in the sim window, at a guest address 4 GiB up.
 */
#define HIGH_RAM	0x100000000ULL
#define HIGH_OFF	ZONE_SIZE
#define HIGH_SIZE	(8 * MIB)
#define LOW_END		(GUEST_RAM + ZONE_SIZE)
#define HIGH_END	(HIGH_RAM + HIGH_SIZE)
#define E_ADDR_INDEX	11	/* HVIO_VQ_E_ADDR in module/hvio_vq.h */
#define GUARD		0x5a

/* Host pointer for a guest address in either region (NULL: in neither). */
static uint8_t *hp(FIXTURE_DATA(blk) *self, uint64_t gpa)
{
	if (gpa >= GUEST_RAM && gpa < LOW_END)
		return gp(self, gpa);
	if (gpa >= HIGH_RAM && gpa < HIGH_END)
		return self->fg.ram + HIGH_OFF + (gpa - HIGH_RAM);
	return NULL;
}

/* `hvio run` on a config with both regions. */
static void daemon_up2(struct __test_metadata *_metadata,
		       FIXTURE_DATA(blk) *self)
{
	uint64_t phys = fg_zone_phys(&self->fg, &self->zone);
	char json[1024];

	snprintf(json, sizeof(json),
		 "{\"zones\":[{\"id\":%u,\"memory_region\":["
		 "{\"zone0_ipa\":\"%#llx\",\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"},"
		 "{\"zone0_ipa\":\"%#llx\",\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"queues\":%u,"
		 "\"queue_size\":%u,\"serial\":\"%s\"}]}]}\n",
		 ZONE_A, (unsigned long long)phys,
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)(phys + HIGH_OFF),
		 (unsigned long long)HIGH_RAM, (unsigned long long)HIGH_SIZE,
		 (unsigned long long)MMIO_BASE, DEV_IRQ, self->img, NQ, QSIZE,
		 SERIAL);
	daemon_up_json(_metadata, self, json);
}

#define UP2() do {							\
	ASSERT_LE(HIGH_OFF + HIGH_SIZE, self->fg.info.ram_size);	\
	memset(self->fg.ram + HIGH_OFF, 0, HIGH_SIZE);			\
	daemon_up2(_metadata, self);					\
	probe(_metadata, self, WANT_ALL);				\
} while (0)

/* A payload piece: guest address and length. */
struct piece {
	uint64_t gpa;
	uint32_t len;
};

/*
 * Post a request whose header and status sit in the low heap and whose
 * payload is the given pieces (device-writable for IN), as a direct chain
 * or through an indirect table at table_gpa (0: direct).  An OUT's payload
 * is filled with random bytes, an IN's with FILL_IN.
 */
static struct breq *post_pieces(struct __test_metadata *_metadata,
				FIXTURE_DATA(blk) *self, int qi, uint32_t type,
				uint64_t sector, const struct piece *p,
				unsigned int n, uint64_t table_gpa)
{
	struct virtio_blk_outhdr h = {
		.type = htole32(type), .sector = htole64(sector),
	};
	uint16_t wr = payload_in(type) ? VRING_DESC_F_WRITE : 0;
	struct vring_desc *tab = NULL;
	struct gq *q = &self->q[qi];
	uint64_t gpa[MAX_DESC];
	uint32_t len[MAX_DESC];
	uint16_t flags[MAX_DESC];
	unsigned int i, nd = 0;
	struct breq *r;
	uint64_t hdr;
	uint8_t *b;

	ASSERT_GT(MAX_REQS, self->npool);
	ASSERT_GE(MAX_DESC - 2, n);
	r = &self->pool[self->npool++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->sector = sector;
	r->q = -1;
	hdr = galloc(self, 32, 16);
	ASSERT_NE(0, hdr);
	r->hdr = gp(self, hdr);
	memcpy(r->hdr, &h, sizeof(h));
	r->status = r->hdr + 16;
	*r->status = ST_UNTOUCHED;
	gpa[nd] = hdr, len[nd] = 16, flags[nd++] = 0;
	for (i = 0; i < n; i++) {
		b = hp(self, p[i].gpa);
		if (b && hp(self, p[i].gpa + p[i].len - 1) == b + p[i].len - 1) {
			if (wr)
				memset(b, FILL_IN, p[i].len);
			else
				fill_rand(&self->rng, b, p[i].len);
		}
		r->len += p[i].len;
		gpa[nd] = p[i].gpa, len[nd] = p[i].len, flags[nd++] = wr;
	}
	gpa[nd] = hdr + 16, len[nd] = 1, flags[nd++] = VRING_DESC_F_WRITE;

	if (table_gpa) {
		tab = (struct vring_desc *)hp(self, table_gpa);
		ASSERT_NE(NULL, tab);
		for (i = 0; i < nd; i++) {
			tab[i].addr = htole64(gpa[i]);
			tab[i].len = htole32(len[i]);
			tab[i].flags = htole16(flags[i] |
					       (i + 1 < nd ? VRING_DESC_F_NEXT : 0));
			tab[i].next = htole16(i + 1 < nd ? i + 1 : 0);
		}
		r->desc[0] = dget(q);
		r->ndesc = 1;
		dset(q, r->desc[0], table_gpa, 16 * nd, VRING_DESC_F_INDIRECT, 0);
	} else {
		ASSERT_GE(q->nfree, nd);
		for (i = 0; i < nd; i++)
			r->desc[i] = dget(q);
		r->ndesc = nd;
		for (i = 0; i < nd; i++)
			dset(q, r->desc[i], gpa[i], len[i],
			     flags[i] | (i + 1 < nd ? VRING_DESC_F_NEXT : 0),
			     i + 1 < nd ? r->desc[i + 1] : 0);
	}
	avail_add(self, qi, r->desc[0], r);
	return r;
}

/* Post, publish, kick, wait. */
static struct breq *run_pieces(struct __test_metadata *_metadata,
			       FIXTURE_DATA(blk) *self, int qi, uint32_t type,
			       uint64_t sector, const struct piece *p,
			       unsigned int n, uint64_t table_gpa)
{
	struct breq *r = post_pieces(_metadata, self, qi, type, sector, p, n,
				     table_gpa);

	publish(self, qi);
	kick(self, qi);
	EXPECT_EQ(0, wait_done(self, &r, 1, IO_MS)) TH_LOG("%s", diag(self));
	return r;
}

/* The pieces hold exactly the image bytes from sector on. */
static bool pieces_match(FIXTURE_DATA(blk) *self, uint64_t sector,
			 const struct piece *p, unsigned int n)
{
	const uint8_t *img = self->shadow + sector * 512;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (memcmp(hp(self, p[i].gpa), img, p[i].len))
			return false;
		img += p[i].len;
	}
	return true;
}

/* What an OUT request's pieces carried goes into the shadow image. */
static void pieces_to_shadow(FIXTURE_DATA(blk) *self, uint64_t sector,
			     const struct piece *p, unsigned int n)
{
	uint8_t *img = self->shadow + sector * 512;
	unsigned int i;

	for (i = 0; i < n; i++) {
		memcpy(img, hp(self, p[i].gpa), p[i].len);
		img += p[i].len;
	}
}

/* Sum of vq_errors[ADDR] over the queues in `hvio status --json`. */
static long addr_errors(FIXTURE_DATA(blk) *self)
{
	static char buf[65536];
	const char *s = buf, *v;
	long sum = 0;
	int i;

	if (fg_daemon_status(self->sock, buf, sizeof(buf)))
		return -1;
	while ((v = fg_json_val(s, "vq_errors")) && *v == '[') {
		v++;
		for (i = 0; i < E_ADDR_INDEX && v; i++) {
			v = strchr(v, ',');
			if (v)
				v++;
		}
		if (!v)
			return -1;
		sum += strtol(v, NULL, 10);
		s = v;
	}
	return sum;
}

/* The largest value of @key over the queues in `hvio status --json`. */
static long long status_max(FIXTURE_DATA(blk) *self, const char *key)
{
	static char buf[65536];
	const char *s = buf, *v;
	long long max = -1, n;

	if (fg_daemon_status(self->sock, buf, sizeof(buf)))
		return -1;
	while ((v = fg_json_val(s, key))) {
		n = strtoll(v, NULL, 10);
		if (n > max)
			max = n;
		s = v;
	}
	return max;
}

TEST_F(blk, io_in_both_regions)
{
	/* With zone RAM in two regions 4 GiB apart, reads and writes whose buffers lie in the high region, or in both, through direct chains and an indirect table in the high region, move exactly the image's bytes on both queues. */
	const struct piece high_only[] = { { HIGH_RAM + 0x10000, 65536 } };
	const struct piece both[] = {
		{ HEAP_GPA + 0x200000, 4096 },
		{ HIGH_RAM + 0x40000, 8192 },
		{ HEAP_GPA + 0x300000, 512 },
		{ HIGH_END - 4096, 4096 },
	};
	const struct piece wr_both[] = {
		{ HIGH_RAM + 0x80000, 4096 },
		{ LOW_END - 8192, 8192 },
		{ HIGH_RAM + 0x90000, 1024 },
	};
	const uint64_t table = HIGH_RAM + 0x100000;
	struct breq *r;

	NEED_SETUP();
	UP2();
	r = run_pieces(_metadata, self, 0, VIRTIO_BLK_T_IN, 40, high_only, 1, 0);
	EXPECT_DONE(r, ST_OK, 65536 + 1);
	EXPECT_TRUE(pieces_match(self, 40, high_only, 1)) TH_LOG("high-region read differs");

	r = run_pieces(_metadata, self, 1, VIRTIO_BLK_T_IN, 3001, both,
		       ARRAY_SIZE(both), 0);
	EXPECT_DONE(r, ST_OK, 4096 + 8192 + 512 + 4096 + 1);
	EXPECT_TRUE(pieces_match(self, 3001, both, ARRAY_SIZE(both)))
		TH_LOG("read split over both regions differs");

	r = run_pieces(_metadata, self, 0, VIRTIO_BLK_T_IN, 9000, both,
		       ARRAY_SIZE(both), table);
	EXPECT_DONE(r, ST_OK, 4096 + 8192 + 512 + 4096 + 1);
	EXPECT_TRUE(pieces_match(self, 9000, both, ARRAY_SIZE(both)))
		TH_LOG("read through an indirect table in the high region differs");

	r = run_pieces(_metadata, self, 1, VIRTIO_BLK_T_OUT, 500, wr_both,
		       ARRAY_SIZE(wr_both), 0);
	EXPECT_DONE(r, ST_OK, 1);
	pieces_to_shadow(self, 500, wr_both, ARRAY_SIZE(wr_both));
	r = run_pieces(_metadata, self, 0, VIRTIO_BLK_T_OUT, 7000, high_only, 1,
		       table);
	EXPECT_DONE(r, ST_OK, 1);
	pieces_to_shadow(self, 7000, high_only, 1);

	/* read both back into the other region's buffers */
	r = run_pieces(_metadata, self, 1, VIRTIO_BLK_T_IN, 500, both, 3, 0);
	EXPECT_DONE(r, ST_OK, 4096 + 8192 + 512 + 1);
	EXPECT_TRUE(pieces_match(self, 500, both, 3)) TH_LOG("written data read back differs");
	r = run_pieces(_metadata, self, 0, VIRTIO_BLK_T_IN, 7000, wr_both, 2, 0);
	EXPECT_DONE(r, ST_OK, 4096 + 8192 + 1);
	EXPECT_TRUE(pieces_match(self, 7000, wr_both, 2)) TH_LOG("written data read back differs");
	EXPECT_EQ(0, addr_errors(self));
	/* The report shows the engine's dev->lock holds (interrupts off). */
	EXPECT_LE(1, status_max(self, "hold_entries_max"));
	EXPECT_GE(HVIO_QUEUE_HOLD_ENTRIES, status_max(self, "hold_entries_max"));
	EXPECT_LT(0, status_max(self, "hold_ns_max"));
	EXPECT_IMG();
}

TEST_F(blk, buffer_across_the_gap_refused)
{
	/* A buffer that runs from the low region's end into the gap, from the gap into the high region, or off the high region's end is refused (used length 0, status untouched, vq_errors[ADDR] counted) without a byte written in either region; the queue goes on. */
	const struct piece bad[][2] = {
		{ { HIGH_RAM + 0x1000, 512 }, { LOW_END - 2048, 4096 } },
		{ { HIGH_RAM - 512, 1024 }, { 0, 0 } },
		{ { HIGH_END - 512, 1024 }, { 0, 0 } },
		{ { LOW_END - 512, (uint32_t)(HIGH_RAM - LOW_END + 1024) }, { 0, 0 } },
	};
	const char *what[] = {
		"low region's end into the gap", "gap into the high region",
		"off the high region's end", "low region's end over the gap into the high region",
	};
	const struct piece ok[] = { { HIGH_RAM + 0x3000, 4096 } };
	uint8_t *low_tail, *high_head, *high_tail;
	long before, after;
	unsigned int i, n;
	struct breq *r;
	uint32_t st;

	NEED_SETUP();
	UP2();
	low_tail = hp(self, LOW_END - 4096);
	high_head = hp(self, HIGH_RAM);
	high_tail = hp(self, HIGH_END - 4096);
	ASSERT_EQ(low_tail + 4096, high_head) TH_LOG("regions not adjacent in host memory");
	before = addr_errors(self);
	ASSERT_LE(0, before);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		n = bad[i][1].len ? 2 : 1;
		memset(low_tail, GUARD, 4096);
		memset(high_head, GUARD, 0x2000);
		memset(high_tail, GUARD, 4096);
		r = run_pieces(_metadata, self, i % NQ, VIRTIO_BLK_T_IN, 64, bad[i], n,
			       0);
		EXPECT_TRUE(r->done) TH_LOG("%s: not returned", what[i]);
		EXPECT_EQ(0, r->used_len) TH_LOG("%s: used len %u", what[i], r->used_len);
		EXPECT_EQ(ST_UNTOUCHED, *r->status) TH_LOG("%s: status %u", what[i], *r->status);
		/* post_pieces() filled only pieces inside one region */
		EXPECT_TRUE(all_bytes(low_tail, GUARD, 4096))
			TH_LOG("%s: the low region's tail was written", what[i]);
		/* [0x1000, 0x1200) is the first chain's good piece */
		EXPECT_TRUE(all_bytes(high_head, GUARD, 0x1000) &&
			    all_bytes(high_head + 0x1200, GUARD, 0x2000 - 0x1200))
			TH_LOG("%s: the high region's head was written", what[i]);
		EXPECT_TRUE(all_bytes(high_tail, GUARD, 4096))
			TH_LOG("%s: the high region's tail was written", what[i]);

		r = run_pieces(_metadata, self, i % NQ, VIRTIO_BLK_T_IN, 80 + i, ok, 1, 0);
		EXPECT_DONE(r, ST_OK, 4096 + 1);
		EXPECT_TRUE(pieces_match(self, 80 + i, ok, 1)) TH_LOG("queue broken after %s", what[i]);
	}
	/* a write across the gap reaches neither the image nor zone RAM */
	r = run_pieces(_metadata, self, 0, VIRTIO_BLK_T_OUT, 100, bad[0] + 1, 1, 0);
	EXPECT_EQ(0, r->used_len);
	EXPECT_EQ(ST_UNTOUCHED, *r->status);
	after = addr_errors(self);
	EXPECT_EQ(before + (long)ARRAY_SIZE(bad) + 1, after)
		TH_LOG("vq_errors[ADDR] %ld before, %ld after", before, after);
	st = RD(VIRTIO_MMIO_STATUS);
	EXPECT_FALSE(st & VIRTIO_CONFIG_S_NEEDS_RESET) TH_LOG("Status %#x", st);
	EXPECT_IMG();
}

TEST_HARNESS_MAIN
