// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_blk_errors: well-formed requests the device must refuse, and the
 * status it answers them with.  Commands not negotiated or not
 * implemented get S_UNSUPP; writes to a read-only image, ranges past the
 * capacity or overflowing a byte offset, lengths that are not a multiple
 * of 512 and bad DISCARDs get S_IOERR; each with used length 1, no data
 * moved and the image file unchanged.
 * Fixture, daemon and guest helpers: blkdaemon.h.
 */
#include "hvio_test.h"

#include "blkdaemon.h"

TEST_F(blk, features_not_negotiated_unsupp)
{
	/* A driver that did not negotiate FLUSH, DISCARD or WRITE_ZEROES gets S_UNSUPP for them and nothing changes on disk; after a reset with the features, FLUSH works. */
	struct breq *r;
	long long b0;

	NEED_SETUP();
	daemon_up(_metadata, self, NULL, false);
	probe(_metadata, self, WANT_ALL & ~(F_BLK(FLUSH) | F_BLK(CONFIG_WCE) |
					    F_BLK(DISCARD) | F_BLK(WRITE_ZEROES)));
	b0 = img_blocks(self->img);
	r = rq_new(_metadata, self, VIRTIO_BLK_T_FLUSH, 0, 0);
	RUN_EXPECT(0, r, ST_UNSUPP, 1);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_DISCARD, 0, 2048, 0);
	RUN_EXPECT(0, r, ST_UNSUPP, 1);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 2048, 64, 0);
	RUN_EXPECT(1, r, ST_UNSUPP, 1);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 4096, 64,
		     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	RUN_EXPECT(1, r, ST_UNSUPP, 1);
	EXPECT_IMG();
	EXPECT_EQ(b0, img_blocks(self->img));
	/* writes without FLUSH (writethrough) work */
	r = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 300, 4096);
	RUN_EXPECT(0, r, ST_OK, 1);
	if (r->done && *r->status == ST_OK)
		shadow_write(self, r);
	EXPECT_IMG();

	/* negotiation is per reset */
	probe(_metadata, self, WANT_ALL);
	r = rq_new(_metadata, self, VIRTIO_BLK_T_FLUSH, 0, 0);
	RUN_EXPECT(0, r, ST_OK, 1);
}

TEST_F(blk, readonly_refuses_writes)
{
	/* With "readonly": true the device offers RO; OUT, DISCARD and WRITE_ZEROES fail with S_IOERR (or S_UNSUPP when not offered), reads work, and the image file is unchanged. */
	struct breq *r;
	struct stat st0, st1;

	NEED_SETUP();
	ASSERT_EQ(0, stat(self->img, &st0));
	daemon_up(_metadata, self, NULL, true);
	probe(_metadata, self, WANT_ALL);
	EXPECT_TRUE(self->v.device_features & F_BLK(RO));
	EXPECT_TRUE(self->v.driver_features & F_BLK(RO));
	EXPECT_EQ(CAPACITY, self->capacity);

	r = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 100, 4096);
	RUN_EXPECT(0, r, ST_IOERR, 1);
	r = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 0, 512);
	RUN_EXPECT(1, r, ST_IOERR, 1);
	if (self->indirect) {
		r = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 2000, 8192);
		r->indirect = true;
		RUN_EXPECT(0, r, ST_IOERR, 1);
	}
	r = rq_range(_metadata, self, VIRTIO_BLK_T_DISCARD, 8192, 2048, 0);
	RUN_EXPECT(0, r, self->v.driver_features & F_BLK(DISCARD) ?
		   ST_IOERR : ST_UNSUPP, 1);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 4096, 64, 0);
	RUN_EXPECT(1, r, self->v.driver_features & F_BLK(WRITE_ZEROES) ?
		   ST_IOERR : ST_UNSUPP, 1);

	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 100, 4096);
	RUN_EXPECT(0, r, ST_OK, 4097);
	EXPECT_DATA(r);
	EXPECT_IMG();
	ASSERT_EQ(0, stat(self->img, &st1));
	EXPECT_EQ(st0.st_blocks, st1.st_blocks);
	EXPECT_EQ(st0.st_mtim.tv_sec, st1.st_mtim.tv_sec);
	EXPECT_EQ(st0.st_mtim.tv_nsec, st1.st_mtim.tv_nsec);
}

TEST_F(blk, out_of_range_ioerr)
{
	/* Requests reaching past the capacity, or whose sector overflows a byte offset, fail with S_IOERR, used length 1, no data moved (buffers untouched, image unchanged); the last sector itself is fine. */
	static const struct { uint32_t type; uint64_t sector; uint32_t len; } bad[] = {
		{ VIRTIO_BLK_T_IN, CAPACITY, 512 },
		{ VIRTIO_BLK_T_IN, CAPACITY - 1, 1024 },
		{ VIRTIO_BLK_T_IN, CAPACITY + 100000, 4096 },
		{ VIRTIO_BLK_T_IN, 1ULL << 55, 512 },	/* byte offset wraps to 0 */
		{ VIRTIO_BLK_T_IN, 1ULL << 63, 512 },
		{ VIRTIO_BLK_T_IN, ~0ULL, 512 },
		{ VIRTIO_BLK_T_IN, ~0ULL - 1, 1024 },	/* sector + count wraps */
		{ VIRTIO_BLK_T_OUT, CAPACITY, 512 },
		{ VIRTIO_BLK_T_OUT, CAPACITY - 1, 1024 },
		{ VIRTIO_BLK_T_OUT, 1ULL << 55, 512 },
		{ VIRTIO_BLK_T_OUT, ~0ULL, 512 },
	};
	struct breq *r;
	unsigned int i;

	NEED_SETUP();
	UP();
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		r = rq_new(_metadata, self, bad[i].type, bad[i].sector, bad[i].len);
		RUN_EXPECT(i % NQ, r, ST_IOERR, 1);
		if (bad[i].type == VIRTIO_BLK_T_IN) {
			EXPECT_TRUE(all_bytes(r->data, FILL_IN, r->len))
				TH_LOG("%s: data was written", rq_str(r));
		}
	}
	EXPECT_IMG();
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, CAPACITY - 1, 512);
	RUN_EXPECT(0, r, ST_OK, 513);
	EXPECT_DATA(r);
	r = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, CAPACITY - 1, 512);
	RUN_EXPECT(1, r, ST_OK, 1);
	if (r->done && *r->status == ST_OK)
		shadow_write(self, r);
	EXPECT_IMG();
}

TEST_F(blk, length_not_sector_multiple_ioerr)
{
	/* IN and OUT whose data length is not a multiple of 512 fail with S_IOERR and used length 1, moving no data. */
	static const struct { uint32_t type; uint32_t len; } bad[] = {
		{ VIRTIO_BLK_T_IN, 513 }, { VIRTIO_BLK_T_IN, 511 },
		{ VIRTIO_BLK_T_IN, 1 }, { VIRTIO_BLK_T_IN, 4095 },
		{ VIRTIO_BLK_T_OUT, 100 }, { VIRTIO_BLK_T_OUT, 4097 },
		{ VIRTIO_BLK_T_OUT, 1 },
	};
	struct breq *r;
	unsigned int i;

	NEED_SETUP();
	UP();
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		r = rq_new(_metadata, self, bad[i].type, 64, bad[i].len);
		RUN_EXPECT(i % NQ, r, ST_IOERR, 1);
		if (bad[i].type == VIRTIO_BLK_T_IN) {
			EXPECT_TRUE(all_bytes(r->data, FILL_IN, r->len))
				TH_LOG("%s: data was written", rq_str(r));
		}
	}
	/* the same split into sector-sized pieces is fine */
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 64, 1024);
	rq_cuts(r, NULL, (const uint32_t[]){ 100, 924, 1, 0 });
	RUN_EXPECT(0, r, ST_OK, 1025);
	EXPECT_DATA(r);
	EXPECT_IMG();
}

TEST_F(blk, unsupported_type_unsupp)
{
	/* Request types the device does not implement, and DISCARD / WRITE_ZEROES with undefined flags, complete with S_UNSUPP and used length 1, changing nothing. */
	static const uint32_t types[] = {
		VIRTIO_BLK_T_SCSI_CMD, 3, 5, 10 /* GET_LIFETIME */,
		VIRTIO_BLK_T_SECURE_ERASE, 0x42, 0xffffffff,
		VIRTIO_BLK_T_BARRIER, VIRTIO_BLK_T_BARRIER | VIRTIO_BLK_T_OUT,
	};
	struct breq *r;
	unsigned int i;
	long long b0;

	NEED_SETUP();
	UP();
	b0 = img_blocks(self->img);
	for (i = 0; i < ARRAY_SIZE(types); i++) {
		r = rq_new(_metadata, self, types[i], 8, 0);
		RUN_EXPECT(i % NQ, r, ST_UNSUPP, 1);
	}
	/* with a payload */
	r = rq_new(_metadata, self, VIRTIO_BLK_T_SECURE_ERASE, 0, 16);
	RUN_EXPECT(0, r, ST_UNSUPP, 1);
	if (self->v.driver_features & F_BLK(DISCARD)) {
		r = rq_range(_metadata, self, VIRTIO_BLK_T_DISCARD, 8192, 2048,
			     VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
		RUN_EXPECT(0, r, ST_UNSUPP, 1);
	}
	if (self->v.driver_features & F_BLK(WRITE_ZEROES)) {
		r = rq_range(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 8192, 8, 2);
		RUN_EXPECT(1, r, ST_UNSUPP, 1);
		r = rq_range(_metadata, self, VIRTIO_BLK_T_WRITE_ZEROES, 8192, 8,
			     0x80000001);
		RUN_EXPECT(1, r, ST_UNSUPP, 1);
	}
	EXPECT_IMG();
	EXPECT_EQ(b0, img_blocks(self->img));
}

TEST_F(blk, bad_discard_ioerr)
{
	/* DISCARD past the capacity or over max_discard_sectors fails with S_IOERR; nothing is deallocated or changed.  (Off discard_sector_alignment is accepted: the hvio_queue group checks that.) */
	uint64_t align, start;
	struct breq *r;
	long long b0;

	NEED_SETUP();
	UP();
	ASSERT_TRUE(self->v.driver_features & F_BLK(DISCARD));
	align = self->discard_align ? self->discard_align : 1;
	start = (8192 + align - 1) / align * align;
	b0 = img_blocks(self->img);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_DISCARD, CAPACITY, align, 0);
	RUN_EXPECT(0, r, ST_IOERR, 1);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_DISCARD, CAPACITY - align,
		     2 * align, 0);
	RUN_EXPECT(1, r, ST_IOERR, 1);
	r = rq_range(_metadata, self, VIRTIO_BLK_T_DISCARD,
		     (~0ULL >> 9) / align * align, align, 0);
	RUN_EXPECT(0, r, ST_IOERR, 1);
	if ((uint64_t)self->max_discard_sectors + align <= CAPACITY - start) {
		uint64_t n = ((uint64_t)self->max_discard_sectors / align + 1) * align;

		r = rq_range(_metadata, self, VIRTIO_BLK_T_DISCARD, start, n, 0);
		RUN_EXPECT(1, r, ST_IOERR, 1);
	}
	EXPECT_IMG();
	EXPECT_EQ(b0, img_blocks(self->img));
}

TEST_HARNESS_MAIN
