// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_blk_data: the virtio-blk data path, well-formed requests.  The
 * device is a virtio-blk of the image's size with the documented features
 * and config space; reads return exactly the image bytes, writes land
 * where they belong (checked in the file), FLUSH, GET_ID, DISCARD and
 * WRITE_ZEROES do what the spec says, on both queues, with 128 requests in
 * flight, through indirect tables and any descriptor layout.
 * Fixture, daemon and guest helpers: blkdaemon.h.
 */
#include "hvio_test.h"

#include "blkdaemon.h"

TEST_F(blk, config_space)
{
	/* The daemon's device is a virtio-blk of the image's size with the documented features, two queues of 256, a sane config space, and a guest-writable wce byte. */
	static const struct { uint64_t bit; const char *name; } need[] = {
		{ FG_F_VERSION_1, "VERSION_1" },
		{ F_EVENT_IDX, "EVENT_IDX" },
		{ F_INDIRECT, "INDIRECT_DESC" },
		{ F_BLK(SEG_MAX), "SEG_MAX" },
		{ F_BLK(BLK_SIZE), "BLK_SIZE" },
		{ F_BLK(FLUSH), "FLUSH" },
		{ F_BLK(CONFIG_WCE), "CONFIG_WCE" },
		{ F_BLK(MQ), "MQ" },
		{ F_BLK(DISCARD), "DISCARD" },
		{ F_BLK(WRITE_ZEROES), "WRITE_ZEROES" },
	};
	unsigned int i;
	uint64_t off;

	NEED_SETUP();
	UP();
	off = self->v.device_features;
	EXPECT_EQ(2, self->v.device_id);
	EXPECT_EQX(FG_VENDOR_HVIS, self->v.vendor_id);
	for (i = 0; i < ARRAY_SIZE(need); i++) {
		EXPECT_TRUE(off & need[i].bit)
			TH_LOG("feature %s not offered (features %#llx)",
			       need[i].name, (unsigned long long)off);
	}
	EXPECT_FALSE(off & F_BLK(RO)) TH_LOG("RO offered for a read-write image");
	EXPECT_EQ(CAPACITY, self->capacity);
	EXPECT_EQ(NQ, self->num_queues);
	EXPECT_EQ(NQ, self->nq);
	WR(VIRTIO_MMIO_QUEUE_SEL, 0);
	EXPECT_EQ(QSIZE, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));
	WR(VIRTIO_MMIO_QUEUE_SEL, 1);
	EXPECT_EQ(QSIZE, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));
	WR(VIRTIO_MMIO_QUEUE_SEL, NQ);
	EXPECT_EQ(0, RD(VIRTIO_MMIO_QUEUE_NUM_MAX));
	/* Linux sizes its scatterlists from seg_max: the module takes 64. */
	EXPECT_LE(1, self->seg_max);
	EXPECT_GE(HVIO_OP_MAX_SEGS, self->seg_max);
	if (off & F_BLK(BLK_SIZE)) {
		EXPECT_LE(512, self->blk_size);
		EXPECT_EQ(0, self->blk_size & (self->blk_size - 1));
	}
	if (off & F_BLK(SIZE_MAX)) {
		EXPECT_LE(4096, self->size_max);
	}
	if (off & F_BLK(DISCARD)) {
		EXPECT_LE(1, self->max_discard_sectors);
		EXPECT_LE(1, self->max_discard_seg);
		EXPECT_LE(1, self->discard_align);
	}
	if (off & F_BLK(WRITE_ZEROES)) {
		EXPECT_LE(1, self->max_wz_sectors);
		EXPECT_LE(1, self->max_wz_seg);
	}
	EXPECT_EQ(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
		  RD(VIRTIO_MMIO_STATUS));
	/* cache mode: the guest may switch it (sysfs cache_type) */
	if (self->v.driver_features & F_BLK(CONFIG_WCE)) {
		EXPECT_GE(1, self->wce);
		fg_write(&self->fg, 0, ZONE_A, MMIO_BASE + HVIO_MMIO_CONFIG_OFF +
			 CFG_OFF(wce), 1, 0);
		EXPECT_EQ(0, CFG(wce));
		fg_write(&self->fg, 0, ZONE_A, MMIO_BASE + HVIO_MMIO_CONFIG_OFF +
			 CFG_OFF(wce), 1, 1);
		EXPECT_EQ(1, CFG(wce));
	}
	TH_LOG("features %#llx seg_max %u size_max %u blk_size %u discard max %u seg %u align %u, write zeroes max %u seg %u unmap %u, wce %u",
	       (unsigned long long)off, self->seg_max, self->size_max,
	       self->blk_size, self->max_discard_sectors, self->max_discard_seg,
	       self->discard_align, self->max_wz_sectors, self->max_wz_seg,
	       self->wz_may_unmap, self->wce);
}

TEST_F(blk, read_known_sectors)
{
	/* Reads of the first, a middle and the last sectors, in one or many segments, on both queues, return exactly the image bytes with used length = data + 1. */
	static const struct { uint64_t sector; uint32_t len; unsigned int nseg; } rd[] = {
		{ 0, 512, 1 },
		{ 1, 4096, 1 },
		{ CAPACITY / 2 + 3, 65536, 16 },
		{ CAPACITY - 8, 4096, 2 },
		{ CAPACITY - 1, 512, 1 },
		{ 12345, 3 * 512, 3 },
	};
	struct breq *r[ARRAY_SIZE(rd)];
	unsigned int i;

	NEED_SETUP();
	UP();
	for (i = 0; i < ARRAY_SIZE(rd); i++) {
		r[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, rd[i].sector, rd[i].len);
		rq_split(r[i], rd[i].nseg < self->seg_max ? rd[i].nseg : self->seg_max);
		rq_post(_metadata, self, i % NQ, r[i]);
	}
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, r, ARRAY_SIZE(rd), IO_MS)) TH_LOG("%s", diag(self));
	for (i = 0; i < ARRAY_SIZE(rd); i++) {
		EXPECT_DONE(r[i], ST_OK, rd[i].len + 1);
		EXPECT_DATA(r[i]);
	}
}

TEST_F(blk, write_then_read_back)
{
	/* Writes complete with status OK and used length 1, read back identical through the device, and land at the right place in the image file (the rest of the file unchanged). */
	static const struct { uint64_t sector; uint32_t len; unsigned int nseg; } wr[] = {
		{ 100, 512, 1 },
		{ 1000, 8192, 2 },
		{ CAPACITY - 16, 8192, 4 },
		{ 777, 3 * 4096, 3 },
		{ 0, 512, 1 },
	};
	struct breq *r, *rb[ARRAY_SIZE(wr)];
	unsigned int i;
	uint64_t h;

	NEED_SETUP();
	UP();
	for (i = 0; i < ARRAY_SIZE(wr); i++) {
		r = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, wr[i].sector, wr[i].len);
		rq_split(r, wr[i].nseg);
		RUN_EXPECT(i % NQ, r, ST_OK, 1);
		if (r->done && *r->status == ST_OK)
			shadow_write(self, r);
	}
	for (i = 0; i < ARRAY_SIZE(wr); i++) {
		rb[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, wr[i].sector, wr[i].len);
		rq_post(_metadata, self, (i + 1) % NQ, rb[i]);
	}
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, rb, ARRAY_SIZE(wr), IO_MS)) TH_LOG("%s", diag(self));
	for (i = 0; i < ARRAY_SIZE(wr); i++) {
		EXPECT_DONE(rb[i], ST_OK, wr[i].len + 1);
		EXPECT_DATA(rb[i]);
	}
	EXPECT_IMG();
	h = fnv1a(self->shadow, IMG_SIZE);
	TH_LOG("image checksum %016llx", (unsigned long long)h);
}

TEST_F(blk, flush)
{
	/* FLUSH after writes completes with status OK and used length 1 on both queues, and the written data is in the image. */
	struct breq *w, *f;
	int qi;

	NEED_SETUP();
	UP();
	ASSERT_TRUE(self->v.driver_features & F_BLK(FLUSH));
	for (qi = 0; qi < NQ; qi++) {
		w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 4096 + qi * 64, 8192);
		RUN_EXPECT(qi, w, ST_OK, 1);
		if (w->done && *w->status == ST_OK)
			shadow_write(self, w);
		f = rq_new(_metadata, self, VIRTIO_BLK_T_FLUSH, 0, 0);
		RUN_EXPECT(qi, f, ST_OK, 1);
	}
	/* writethrough mode: writes still complete and land */
	if (self->v.driver_features & F_BLK(CONFIG_WCE)) {
		fg_write(&self->fg, 0, ZONE_A, MMIO_BASE + HVIO_MMIO_CONFIG_OFF +
			 CFG_OFF(wce), 1, 0);
		w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 5000, 4096);
		RUN_EXPECT(0, w, ST_OK, 1);
		if (w->done && *w->status == ST_OK)
			shadow_write(self, w);
	}
	EXPECT_IMG();
}

TEST_F(blk, get_id_returns_serial)
{
	/* GET_ID fills the 20-byte buffer with the configured serial, NUL padded, and writes nothing past 20 bytes of a larger buffer; used length 21. */
	char want[VIRTIO_BLK_ID_BYTES] = { 0 };
	struct breq *r;

	NEED_SETUP();
	UP();
	memcpy(want, SERIAL, strlen(SERIAL));
	r = rq_new(_metadata, self, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
	RUN_EXPECT(0, r, ST_OK, VIRTIO_BLK_ID_BYTES + 1);
	EXPECT_EQ(0, memcmp(r->data, want, VIRTIO_BLK_ID_BYTES))
		TH_LOG("serial \"%.20s\", expected \"%s\"", r->data, SERIAL);

	r = rq_new(_metadata, self, VIRTIO_BLK_T_GET_ID, 0, 64);
	RUN_EXPECT(1, r, ST_OK, VIRTIO_BLK_ID_BYTES + 1);
	EXPECT_EQ(0, memcmp(r->data, want, VIRTIO_BLK_ID_BYTES));
	EXPECT_TRUE(all_bytes(r->data + VIRTIO_BLK_ID_BYTES, FILL_IN,
			      64 - VIRTIO_BLK_ID_BYTES))
		TH_LOG("GET_ID wrote past 20 bytes");

	/* an indirect one */
	if (self->indirect) {
		r = rq_new(_metadata, self, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
		r->indirect = true;
		RUN_EXPECT(0, r, ST_OK, VIRTIO_BLK_ID_BYTES + 1);
		EXPECT_EQ(0, memcmp(r->data, want, VIRTIO_BLK_ID_BYTES));
	}
}

TEST_F(blk, discard_punches_hole)
{
	/* DISCARD of an aligned range completes OK; the range then reads as zeroes through the device and in the file, whose allocated blocks drop; the rest of the image is unchanged. */
	uint64_t align, start, n;
	long long b0, b1;
	struct breq *r;

	NEED_SETUP();
	UP();
	ASSERT_TRUE(self->v.driver_features & F_BLK(DISCARD));
	align = self->discard_align ? self->discard_align : 1;
	n = 2048 < self->max_discard_sectors ? 2048 : self->max_discard_sectors;
	n -= n % align;
	ASSERT_LT(0, n) TH_LOG("max_discard_sectors %u < alignment %u",
			       self->max_discard_sectors, self->discard_align);
	start = (8192 + align - 1) / align * align;
	ASSERT_GE(CAPACITY, start + n);

	b0 = img_blocks(self->img);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_DISCARD, start, n, 0);
	RUN_EXPECT(0, r, ST_OK, 1);
	b1 = img_blocks(self->img);
	EXPECT_GE(b0 - (long long)n, b1)
		TH_LOG("st_blocks %lld -> %lld after discarding %llu sectors",
		       b0, b1, (unsigned long long)n);
	shadow_zero(self, start, n);
	EXPECT_IMG();

	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, start, 4096);
	RUN_EXPECT(1, r, ST_OK, 4097);
	EXPECT_TRUE(all_bytes(r->data, 0, 4096));
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, start + n - 8, 8192);
	RUN_EXPECT(1, r, ST_OK, 8193);
	EXPECT_DATA(r);
}

TEST_F(blk, write_zeroes)
{
	/* WRITE_ZEROES without UNMAP, aligned or not (no alignment applies), zeroes exactly the range through the device and in the file. */
	static const struct { uint64_t sector; uint32_t num; } wz[] = {
		{ 12288, 64 }, { 12345, 7 }, { CAPACITY - 3, 3 }, { 20001, 1 },
	};
	struct breq *r;
	unsigned int i;
	uint32_t n;

	NEED_SETUP();
	UP();
	ASSERT_TRUE(self->v.driver_features & F_BLK(WRITE_ZEROES));
	for (i = 0; i < ARRAY_SIZE(wz); i++) {
		n = wz[i].num < self->max_wz_sectors ? wz[i].num : self->max_wz_sectors;
		r = rq_range(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES,
			     wz[i].sector, n, 0);
		RUN_EXPECT(i % NQ, r, ST_OK, 1);
		if (r->done && *r->status == ST_OK)
			shadow_zero(self, wz[i].sector, n);
	}
	EXPECT_IMG();
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 12280, 80 * 512);
	rq_split(r, 10);
	RUN_EXPECT(0, r, ST_OK, 80 * 512 + 1);
	EXPECT_DATA(r);
}

TEST_F(blk, write_zeroes_unmap)
{
	/* WRITE_ZEROES with the UNMAP flag zeroes the range (whether or not it deallocates) and leaves the rest of the image alone. */
	uint32_t n;
	long long b0, b1;
	struct breq *r;

	NEED_SETUP();
	UP();
	ASSERT_TRUE(self->v.driver_features & F_BLK(WRITE_ZEROES));
	n = 2048 < self->max_wz_sectors ? 2048 : self->max_wz_sectors;
	b0 = img_blocks(self->img);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 16384, n,
		     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	RUN_EXPECT(0, r, ST_OK, 1);
	if (r->done && *r->status == ST_OK)
		shadow_zero(self, 16384, n);
	b1 = img_blocks(self->img);
	EXPECT_IMG();
	r = rq_range(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 30001, 5,
		     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	RUN_EXPECT(1, r, ST_OK, 1);
	if (r->done && *r->status == ST_OK)
		shadow_zero(self, 30001, 5);
	EXPECT_IMG();
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 16384 - 8, 16384);
	RUN_EXPECT(1, r, ST_OK, 16385);
	EXPECT_DATA(r);
	TH_LOG("write_zeroes_may_unmap %u: st_blocks %lld -> %lld",
	       self->wz_may_unmap, b0, b1);
}

TEST_F_TIMEOUT(blk, inflight_128_two_queues, 60)
{
	/* 128 requests in flight at once, 64 per queue, random reads and writes of disjoint sectors: all complete OK, reads return the image data, writes land, and a read-back sees them. */
	enum { N = 128, SLOTS = CAPACITY / 8 };
	static uint8_t used_slot[CAPACITY / 8];
	struct breq *r[N], *rb[N];
	unsigned int i, nw = 0, slot;
	uint64_t rng = 42;

	NEED_SETUP();
	UP();
	memset(used_slot, 0, sizeof(used_slot));
	for (i = 0; i < N; i++) {
		do {
			slot = rnd(&rng) % SLOTS;
		} while (used_slot[slot]);
		used_slot[slot] = 1;
		r[i] = rq_new(_metadata, self, rnd(&rng) & 1 ? VIRTIO_BLK_T_OUT :
			      VIRTIO_BLK_T_IN, slot * 8ULL, 4096);
		rq_post(_metadata, self, i % NQ, r[i]);
	}
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, r, N, 4 * IO_MS)) TH_LOG("%s", diag(self));
	for (i = 0; i < N; i++) {
		if (r[i]->type == VIRTIO_BLK_T_IN) {
			EXPECT_DONE(r[i], ST_OK, 4097);
			EXPECT_DATA(r[i]);
		} else {
			EXPECT_DONE(r[i], ST_OK, 1);
		}
	}
	for (i = 0; i < N; i++)
		if (r[i]->type == VIRTIO_BLK_T_OUT && r[i]->done && *r[i]->status == ST_OK)
			shadow_write(self, r[i]);
	EXPECT_IMG();

	for (i = 0; i < N; i++) {
		if (r[i]->type != VIRTIO_BLK_T_OUT)
			continue;
		rb[nw] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, r[i]->sector, 4096);
		rq_post(_metadata, self, nw % NQ, rb[nw]);
		nw++;
	}
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, rb, nw, 4 * IO_MS)) TH_LOG("%s", diag(self));
	for (i = 0; i < nw; i++) {
		EXPECT_DONE(rb[i], ST_OK, 4097);
		EXPECT_DATA(rb[i]);
	}
	TH_LOG("%u writes, %u reads; %lu kicks, %lu interrupts", nw, N - nw,
	       self->kicks, self->irqs);
}

TEST_F(blk, indirect_descriptors)
{
	/* Reads and writes through indirect tables (up to seg_max data segments), mixed with direct chains in flight together, move the right data. */
	struct breq *r[6], *rb;
	unsigned int nseg, i;

	NEED_SETUP();
	UP();
	ASSERT_TRUE(self->indirect);
	nseg = self->seg_max < HVIO_OP_MAX_SEGS ? self->seg_max : HVIO_OP_MAX_SEGS;

	r[0] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 2000, 16384);
	rq_split(r[0], 4 < nseg ? 4 : nseg);
	r[0]->indirect = true;
	r[1] = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 3000, 8192);
	rq_split(r[1], 8 < nseg ? 8 : nseg);
	r[1]->indirect = true;
	r[2] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 4000, nseg * 512);
	rq_split(r[2], nseg);
	r[2]->indirect = true;
	r[3] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 5000, 4096);	/* direct */
	r[4] = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 6000, 4096);
	rq_cuts(r[4], (const uint32_t[]){ 16 + 4096, 0 }, NULL);
	r[4]->indirect = true;
	r[5] = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 7000, nseg * 512);
	rq_split(r[5], nseg);
	r[5]->indirect = true;
	for (i = 0; i < 6; i++)
		rq_post(_metadata, self, i < 4 ? 0 : 1, r[i]);
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, r, 6, IO_MS)) TH_LOG("%s", diag(self));
	EXPECT_DONE(r[0], ST_OK, 16385);
	EXPECT_DATA(r[0]);
	EXPECT_DONE(r[1], ST_OK, 1);
	EXPECT_DONE(r[2], ST_OK, nseg * 512 + 1);
	EXPECT_DATA(r[2]);
	EXPECT_DONE(r[3], ST_OK, 4097);
	EXPECT_DATA(r[3]);
	EXPECT_DONE(r[4], ST_OK, 1);
	EXPECT_DONE(r[5], ST_OK, 1);
	for (i = 1; i < 6; i++)
		if (r[i]->type == VIRTIO_BLK_T_OUT && r[i]->done && *r[i]->status == ST_OK)
			shadow_write(self, r[i]);
	EXPECT_IMG();
	rb = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 3000, 8192);
	rq_split(rb, 2);
	rb->indirect = true;
	RUN_EXPECT(1, rb, ST_OK, 8193);
	EXPECT_DATA(rb);
}

TEST_F(blk, any_descriptor_layout)
{
	/* The device accepts any layout (VERSION_1): header and data in one descriptor, data and status in one, the header split, data cut at odd byte counts; each request moves the right data. */
	struct breq *r[7];
	char want[VIRTIO_BLK_ID_BYTES] = { 0 };
	unsigned int i;

	NEED_SETUP();
	UP();
	memcpy(want, SERIAL, strlen(SERIAL));
	/* OUT: header + data in one readable descriptor */
	r[0] = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 900, 4096);
	rq_cuts(r[0], (const uint32_t[]){ 16 + 4096, 0 }, NULL);
	/* IN: data + status in one writable descriptor */
	r[1] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 910, 4096);
	rq_cuts(r[1], NULL, (const uint32_t[]){ 4096 + 1, 0 });
	/* OUT: header split 8 + 8, data 1000 + 3096 */
	r[2] = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 920, 4096);
	rq_cuts(r[2], (const uint32_t[]){ 8, 8, 1000, 3096, 0 }, NULL);
	/* IN: header 4 + 12, data 100 + (412 + status) */
	r[3] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 930, 512);
	rq_cuts(r[3], (const uint32_t[]){ 4, 12, 0 }, (const uint32_t[]){ 100, 413, 0 });
	/* OUT: header glued to the first 100 data bytes, then the rest */
	r[4] = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 940, 1024);
	rq_cuts(r[4], (const uint32_t[]){ 116, 1, 923, 0 }, NULL);
	/* GET_ID: serial and status in one descriptor */
	r[5] = rq_new(_metadata, self, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES);
	rq_cuts(r[5], NULL, (const uint32_t[]){ VIRTIO_BLK_ID_BYTES + 1, 0 });
	/* IN: header in 16 single bytes */
	r[6] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 950, 1024);
	rq_cuts(r[6], (const uint32_t[]){ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 },
		(const uint32_t[]){ 512, 511, 1, 1, 0 });
	for (i = 0; i < 7; i++)
		rq_post(_metadata, self, i % NQ, r[i]);
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, r, 7, IO_MS)) TH_LOG("%s", diag(self));
	EXPECT_DONE(r[0], ST_OK, 1);
	EXPECT_DONE(r[1], ST_OK, 4097);
	EXPECT_DATA(r[1]);
	EXPECT_DONE(r[2], ST_OK, 1);
	EXPECT_DONE(r[3], ST_OK, 513);
	EXPECT_DATA(r[3]);
	EXPECT_DONE(r[4], ST_OK, 1);
	EXPECT_DONE(r[5], ST_OK, VIRTIO_BLK_ID_BYTES + 1);
	EXPECT_EQ(0, memcmp(r[5]->data, want, VIRTIO_BLK_ID_BYTES));
	EXPECT_DONE(r[6], ST_OK, 1025);
	EXPECT_DATA(r[6]);
	for (i = 0; i < 7; i++)
		if (r[i]->type == VIRTIO_BLK_T_OUT && r[i]->done && *r[i]->status == ST_OK)
			shadow_write(self, r[i]);
	EXPECT_IMG();
}

TEST_HARNESS_MAIN
