// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_direct: zero-copy O_DIRECT between a real block device and zone RAM.
 * A "direct": true blk device on a memory-backed null_blk moves 64 MiB
 * (writes, then reads, checksummed) with O_DIRECT from and into zone RAM:
 * no fallback in the daemon's counters, and root Linux's page cache
 * (Cached + Buffers: a block device's pages count as Buffers) does not
 * grow by the data.  What O_DIRECT cannot do (a guest buffer that is
 * not block aligned, zone RAM mapped as raw PFNs) goes through the page
 * cache, is counted by reason in `hvio status`, and still moves the right
 * bytes.  Documentation/abi.md, "Zone RAM mappings and O_DIRECT".
 * Fixture, daemon and guest helpers: blkdaemon.h.
 */
#define _GNU_SOURCE
#include <fcntl.h>

#include "hvio_test.h"

#include "blkdaemon.h"

#define NULLB_MIB	96
#define DATA_SIZE	(64 * MIB)
#define CHUNK		(256 * 1024)	/* bytes per request */
#define BATCH		16		/* requests in flight */
#define RAM_PAGES_DIR	"/sys/module/hvio/parameters"

/* The null_blk device a test made, removed by finish(). */
struct nullb {
	char dir[96];
	char dev[48];
};

static int nullb_create(struct nullb *nb, const char *name)
{
	return fg_nullb_create(name, NULLB_MIB, nb->dir, sizeof(nb->dir),
			       nb->dev, sizeof(nb->dev));
}

/* Stop the daemon (it must exit 0), then drop the device it served. */
static void finish(struct __test_metadata *_metadata,
		   FIXTURE_DATA(blk) *self, struct nullb *nb)
{
	int st = 0;

	if (self->pid > 0)
		st = daemon_stop(self, SIGTERM);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("daemon after SIGTERM: %s; stderr \"%s\"",
		       wstatus_str(st), log_tail(self));
	fg_nullb_remove(nb->dir);
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);

	sync();
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			perror("drop_caches");
		close(fd);
	}
}

/* The daemon's report (`hvio status --json`) into buf; 0 or -1. */
static int status_json(FIXTURE_DATA(blk) *self, char *buf, size_t len)
{
	return fg_daemon_status(self->sock, buf, len);
}

/* A fallback counter of the report ("total", "misaligned", ...); -1 if none. */
static long long fallbacks(const char *json, const char *key)
{
	const char *f = fg_json_val(json, "direct_fallbacks");
	const char *v = fg_json_val(f, key);

	if (!f || *f != '{' || !v || v > strchr(f, '}'))
		return -1;
	return strtoll(v, NULL, 10);
}

/* The daemon on nb->dev with "direct": true. */
static void direct_up(struct __test_metadata *_metadata,
		      FIXTURE_DATA(blk) *self, const struct nullb *nb)
{
	char json[1024];
	int r;

	snprintf(json, sizeof(json),
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"queues\":%u,"
		 "\"queue_size\":%u,\"direct\":true,\"serial\":\"%s\"}]}]}\n",
		 ZONE_A,
		 (unsigned long long)fg_zone_phys(&self->fg, &self->zone),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)MMIO_BASE, DEV_IRQ, nb->dev, NQ, QSIZE,
		 SERIAL);
	ASSERT_EQ(0, write_all(self->cfg, json, strlen(json)));
	ASSERT_EQ(0, daemon_spawn(self));
	r = daemon_wait_ready(self, READY_MS);
	ASSERT_EQ(0, r)
		TH_LOG("daemon not ready (%s): stderr \"%s\"", errname(r),
		       log_tail(self));
	probe(_metadata, self, WANT_ALL);
}

/*
 * A request like rq_new()'s whose payload starts mis bytes past a 512-byte
 * boundary (rq_new() aligns it): not something O_DIRECT can take.
 */
static struct breq *rq_mis(struct __test_metadata *_metadata,
			   FIXTURE_DATA(blk) *self, uint32_t type,
			   uint64_t sector, uint32_t len, unsigned int mis)
{
	struct breq *r = rq_new(_metadata, self, type, sector, len + 512);
	struct virtio_blk_outhdr h = {
		.type = htole32(type),
		.sector = htole64(sector),
	};

	r->len = len;
	r->gpa += mis;
	r->hdr += mis;
	r->data = r->hdr + 16;
	r->status = r->data + len;
	memcpy(r->hdr, &h, sizeof(h));
	if (payload_in(type))
		memset(r->data, FILL_IN, len);
	else
		fill_rand(&self->rng, r->data, len);
	*r->status = ST_UNTOUCHED;
	return r;
}

/* Read the device with O_DIRECT (bypassing the page cache): equal to exp? */
static long dev_diff(const char *dev, const uint8_t *exp, uint64_t off,
		     size_t len)
{
	uint8_t *buf = NULL;
	long ret = -1;
	size_t i;
	int fd;

	fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0 || posix_memalign((void **)&buf, 4096, len) ||
	    pread(fd, buf, len, off) != (ssize_t)len) {
		ret = -2;
		goto out;
	}
	for (i = 0; i < len; i++)
		if (buf[i] != exp[i]) {
			ret = (long)i;
			break;
		}
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

/*
 * Move DATA_SIZE through the device in BATCH x CHUNK rounds that reuse the
 * same zone RAM: writes of exp, then reads compared with it.
 */
static void move_data(struct __test_metadata *_metadata,
		      FIXTURE_DATA(blk) *self, uint8_t *exp)
{
	uint64_t heap = self->heap, t0, wr_ms = 0, rd_ms = 0;
	unsigned int npool = self->npool;
	struct breq *rs[BATCH];
	uint64_t off, sum = 0;
	int pass, i, left;

	for (pass = 0; pass < 2; pass++) {
		bool wr = pass == 0;

		t0 = fg_now_ms();
		for (off = 0; off < DATA_SIZE; off += BATCH * CHUNK) {
			self->heap = heap;
			self->npool = npool;
			for (i = 0; i < BATCH; i++) {
				uint64_t at = off + (uint64_t)i * CHUNK;

				rs[i] = rq_new(_metadata, self,
					       wr ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN,
					       at / 512, CHUNK);
				if (wr)
					memcpy(exp + at, rs[i]->data, CHUNK);
				rq_post(_metadata, self, i % NQ, rs[i]);
			}
			for (i = 0; i < NQ; i++) {
				publish(self, i);
				kick(self, i);
			}
			left = wait_done(self, rs, BATCH, IO_MS);
			ASSERT_EQ(0, left) TH_LOG("%s at %llu MiB: %d requests not done; %s",
						  wr ? "write" : "read",
						  (unsigned long long)(off / MIB), left,
						  diag(self));
			for (i = 0; i < BATCH; i++) {
				uint64_t at = off + (uint64_t)i * CHUNK;

				ASSERT_EQ(ST_OK, *rs[i]->status)
					TH_LOG("%s", rq_str(rs[i]));
				if (!wr) {
					ASSERT_EQ(0, memcmp(rs[i]->data, exp + at, CHUNK))
						TH_LOG("read at %llu differs from what was written",
						       (unsigned long long)at);
					sum ^= fnv1a(rs[i]->data, CHUNK) + at;
				}
			}
		}
		if (wr)
			wr_ms = fg_now_ms() - t0;
		else
			rd_ms = fg_now_ms() - t0;
	}
	self->heap = heap;
	self->npool = npool;
	TH_LOG("%llu MiB written in %llu ms, read back in %llu ms, checksum %016llx",
	       (unsigned long long)(DATA_SIZE / MIB), (unsigned long long)wr_ms,
	       (unsigned long long)rd_ms, (unsigned long long)sum);
}

TEST_F_TIMEOUT(blk, direct_64mib_zero_copy, 240)
{
	/* 64 MiB written and read back through a direct device on null_blk: O_DIRECT into zone RAM, zero fallbacks, root's page cache does not grow by the data. */
	struct nullb nb = { 0 };
	char json[16384];
	long long before, after, grown;
	uint8_t *exp;
	int r;

	NEED_SETUP();
	r = nullb_create(&nb, "direct");
	if (r == -ENOENT)
		SKIP(return, "no null_blk configfs: the runner loads null_blk");
	ASSERT_EQ(0, r) TH_LOG("null_blk device: %s", errname(r));
	exp = malloc(DATA_SIZE);
	ASSERT_NE(NULL, exp);
	direct_up(_metadata, self, &nb);
	ASSERT_EQ(0, status_json(self, json, sizeof(json)));
	if (fg_ram_pfnmap(json)) {
		finish(_metadata, self, &nb);
		free(exp);
		SKIP(return, "zone RAM is mapped as raw PFNs on this kernel (no struct pages, no ZONE_DEVICE: arm64 6.1 with mem=): no O_DIRECT to prove");
	}

	drop_caches();
	before = fg_page_cache_kb();
	move_data(_metadata, self, exp);
	after = fg_page_cache_kb();
	grown = after - before;
	TH_LOG("page cache (Cached + Buffers): %lld kB before, %lld kB after (%+lld kB for %llu MiB moved)",
	       before, after, grown, (unsigned long long)(2 * DATA_SIZE / MIB));
	EXPECT_LT(grown, (long long)(DATA_SIZE / 1024 / 2))
		TH_LOG("root's page cache grew by %lld kB: the data went through it", grown);

	ASSERT_EQ(0, status_json(self, json, sizeof(json)));
	EXPECT_EQ(0, fallbacks(json, "total"))
		TH_LOG("fallbacks to buffered I/O: %s", fg_json_val(json, "direct_fallbacks") ?:
		       "no direct_fallbacks in the report");
	EXPECT_NE(0, strncmp(fg_json_val(json, "buffered_fallback") ?: "", "true", 4));
	EXPECT_EQ(-1, dev_diff(nb.dev, exp, 0, DATA_SIZE))
		TH_LOG("the device does not hold what was written");
	finish(_metadata, self, &nb);
	free(exp);
}

TEST_F_TIMEOUT(blk, direct_misaligned_buffer_falls_back, 120)
{
	/* A guest buffer 16 bytes off a block boundary cannot go O_DIRECT: the write and the read go buffered, are counted as misaligned, and move the right bytes; aligned I/O next to them stays direct. */
	struct nullb nb = { 0 };
	char json[16384];
	struct breq *w, *rd, *ra;
	uint8_t data[8192];
	int r;

	NEED_SETUP();
	r = nullb_create(&nb, "dmis");
	if (r == -ENOENT)
		SKIP(return, "no null_blk configfs: the runner loads null_blk");
	ASSERT_EQ(0, r) TH_LOG("null_blk device: %s", errname(r));
	direct_up(_metadata, self, &nb);
	ASSERT_EQ(0, status_json(self, json, sizeof(json)));
	if (fg_ram_pfnmap(json)) {
		finish(_metadata, self, &nb);
		SKIP(return, "zone RAM is mapped as raw PFNs on this kernel: every I/O falls back");
	}

	w = rq_mis(_metadata, self, VIRTIO_BLK_T_OUT, 64, sizeof(data), 16);
	memcpy(data, w->data, sizeof(data));
	RUN_EXPECT(0, w, ST_OK, 1);
	EXPECT_EQ(-1, dev_diff(nb.dev, data, 64 * 512, sizeof(data)))
		TH_LOG("the misaligned write did not land");
	rd = rq_mis(_metadata, self, VIRTIO_BLK_T_IN, 64, sizeof(data), 16);
	RUN_EXPECT(1, rd, ST_OK, sizeof(data) + 1);
	EXPECT_EQ(0, memcmp(rd->data, data, sizeof(data)));
	ra = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 64, sizeof(data));
	RUN_EXPECT(0, ra, ST_OK, sizeof(data) + 1);
	EXPECT_EQ(0, memcmp(ra->data, data, sizeof(data)));

	ASSERT_EQ(0, status_json(self, json, sizeof(json)));
	EXPECT_EQ(2, fallbacks(json, "misaligned"))
		TH_LOG("report: %.200s", fg_json_val(json, "direct_fallbacks") ?: "none");
	EXPECT_EQ(2, fallbacks(json, "total"));
	finish(_metadata, self, &nb);
}

TEST_F_TIMEOUT(blk, direct_on_pfnmap_zone_counted, 120)
{
	/* Zone RAM mapped as raw PFNs (hvio.ko ram_pages=0, what a kernel without struct pages for it does): the kernel says so, every read and write of a direct device goes buffered, counted as pfnmap, with the right bytes. */
	struct nullb nb = { 0 };
	char json[16384];
	uint8_t data[4096];
	struct breq *w, *rd;
	int r;

	NEED_SETUP();
	r = nullb_create(&nb, "dpfn");
	if (r == -ENOENT)
		SKIP(return, "no null_blk configfs: the runner loads null_blk");
	ASSERT_EQ(0, r) TH_LOG("null_blk device: %s", errname(r));
	ASSERT_EQ(0, fg_put(RAM_PAGES_DIR, "ram_pages", "0"))
		TH_LOG("%s: hvio.ko without the ram_pages parameter", RAM_PAGES_DIR);
	direct_up(_metadata, self, &nb);
	fg_put(RAM_PAGES_DIR, "ram_pages", "1");

	w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 8, sizeof(data));
	memcpy(data, w->data, sizeof(data));
	RUN_EXPECT(0, w, ST_OK, 1);
	rd = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 8, sizeof(data));
	RUN_EXPECT(1, rd, ST_OK, sizeof(data) + 1);
	EXPECT_EQ(0, memcmp(rd->data, data, sizeof(data)));
	EXPECT_EQ(-1, dev_diff(nb.dev, data, 8 * 512, sizeof(data)));

	ASSERT_EQ(0, status_json(self, json, sizeof(json)));
	EXPECT_TRUE(fg_ram_pfnmap(json)) TH_LOG("report: %.60s", fg_json_val(json, "ram_modes") ?: "no ram_modes");
	EXPECT_EQ(2, fallbacks(json, "pfnmap"))
		TH_LOG("report: %.200s", fg_json_val(json, "direct_fallbacks") ?: "none");
	EXPECT_EQ(2, fallbacks(json, "total"));
	finish(_metadata, self, &nb);
}

TEST_HARNESS_MAIN
