/* SPDX-License-Identifier: GPL-2.0 */
/*
 * blkdaemon: the fixture of the hvio_blk_* programs (virtio-blk end to
 * end, one program per area; see the top of each).  The fake guest drives
 * a block device served by hvio.ko's virtqueue engine and the hvio daemon
 * (io_uring on an image file in /tmp), as Documentation/abi.md describes
 * ("Queues and I/O operations", "virtio-blk requests").
 *
 * Each test starts its own daemon (`hvio run cfg.json --socket S`, with a
 * hvisor-tool style config; the daemon registers the zone itself) on a
 * fresh 16 MiB image with seeded content, then plays the
 * guest's virtio-mmio driver through /dev/hvio-sim: split rings and
 * requests in zone RAM, QueueNotify through the bridge, completions by
 * polling the used ring, interrupts from res_list.  Teardown stops the
 * daemon with SIGTERM and expects exit status 0.  The image content the
 * device must show is kept in a shadow copy and compared with the file.
 *
 * blkdaemon.c holds what needs no kselftest harness (it is linked into
 * every selftest program, which include the harness themselves); the
 * parts that ASSERT, and the fixture's setup and teardown, are at the end
 * of this header, compiled only in a program (after hvio_test.h).
 */
#ifndef HVIO_BLKDAEMON_H
#define HVIO_BLKDAEMON_H

#include <endian.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

#include "fakeguest.h"
#include "geometry.h"

#define DEV_IRQ		42
#define NQ		2
#define QSIZE		256
#define ZONE_SIZE	(8 * MIB)
#define IMG_SIZE	(16 * MIB)
#define CAPACITY	(IMG_SIZE / 512)
#define RING_GPA	(GUEST_RAM + 0x10000)	/* rings of both queues */
#define HEAP_GPA	(GUEST_RAM + 0x100000)	/* requests, buffers, tables */
#define SERIAL		"hvio-test-1"
#define READY_LINE	"hvio: ready (1 devices)"
#define IMG_SEED	0x68766f2d626c6b31ULL
#define READY_MS	20000
#define IO_MS		10000
#define STOP_MS		10000
#define IRQ_MS		2000
#define MAX_REQS	1024
#define MAX_DESC	72		/* descriptors of one direct chain */
#define MAX_CUTS	110		/* segments of one built chain */
#define HOLD_EVENT	0x8000		/* used_event this far ahead: never hit */

#define BITULL(b)	(1ULL << (b))
#define F_INDIRECT	BITULL(VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVENT_IDX	BITULL(VIRTIO_RING_F_EVENT_IDX)
#define F_BLK(x)	BITULL(VIRTIO_BLK_F_##x)
/* What Linux's virtio_blk driver accepts, and a bit more. */
#define WANT_ALL	(FG_F_VERSION_1 | F_INDIRECT | F_EVENT_IDX |	\
			 F_BLK(SIZE_MAX) | F_BLK(SEG_MAX) | F_BLK(BLK_SIZE) | \
			 F_BLK(TOPOLOGY) | F_BLK(FLUSH) | F_BLK(CONFIG_WCE) | \
			 F_BLK(RO) | F_BLK(MQ) | F_BLK(DISCARD) |	\
			 F_BLK(WRITE_ZEROES))

#define ST_OK		VIRTIO_BLK_S_OK
#define ST_IOERR	VIRTIO_BLK_S_IOERR
#define ST_UNSUPP	VIRTIO_BLK_S_UNSUPP
#define ST_UNTOUCHED	0xff		/* status byte before completion */
#define FILL_IN		0xa5		/* device-writable payload before I/O */

/* One virtio-blk request: header | payload | status, contiguous. */
struct breq {
	uint32_t type;
	uint64_t sector;
	uint32_t len;			/* payload bytes */
	const uint32_t *out_cuts;	/* readable segment lengths, 0-ended */
	const uint32_t *in_cuts;	/* writable segment lengths, 0-ended */
	bool indirect;
	uint32_t cut_store[2][MAX_CUTS];
	/* filled in */
	uint64_t gpa;			/* header; payload at +16 */
	uint8_t *hdr, *data, *status;
	int q;
	uint16_t head;
	uint16_t ndesc;
	uint16_t desc[MAX_DESC];	/* descriptors to free at completion */
	bool posted, done;
	uint32_t used_len;
};

/* The guest's view of one split virtqueue. */
struct gq {
	uint16_t num;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;		/* shadow of avail->idx */
	uint16_t kicked_idx;		/* avail_idx at the last kick decision */
	uint16_t last_used;
	uint16_t nfree;
	uint16_t freel[QSIZE];
	struct breq *owner[QSIZE];	/* by head */
};

/*
 * The fixture data, FIXTURE_DATA(blk) of the harness (struct
 * _test_data_blk), defined here so that blkdaemon.c sees it without the
 * harness; FIXTURE(blk) below only declares it again.
 */
#ifndef FIXTURE_DATA
#define FIXTURE_DATA(datatype_name) struct _test_data_##datatype_name
#endif

FIXTURE_DATA(blk) {
	struct fg fg;
	bool skip;
	bool opened;
	struct fg_zone zone;
	struct fg_vdev v;
	/* the daemon */
	pid_t pid;			/* 0: not running */
	int exit_status;		/* wait status once reaped, else -1 */
	int out_fd;			/* its stdout */
	char out[4096];
	size_t out_len;
	char img[64], cfg[64], log[64], sock[64], extra[64];
	char dev_json[64];	/* more keys of the device, e.g. ",\"poll_us\":0" */
	/* the guest */
	uint8_t *shadow;		/* what the image must contain */
	struct breq *pool;
	unsigned int npool;
	uint64_t heap;
	uint64_t rng;
	bool event_idx, indirect, hold_used_event;
	struct gq q[NQ];
	unsigned int nq;
	unsigned long irqs;		/* res_list entries {ZONE_A, DEV_IRQ} */
	unsigned long irqs_other;	/* anything else in res_list */
	unsigned long bad_used;		/* used entries naming no posted head */
	unsigned long kicks;
	/* config space, read at probe */
	uint64_t capacity;
	uint32_t size_max, seg_max, blk_size;
	uint16_t num_queues;
	uint8_t wce;
	uint32_t max_discard_sectors, max_discard_seg, discard_align;
	uint32_t max_wz_sectors, max_wz_seg;
	uint8_t wz_may_unmap;
};

/* The image file must hold exactly the shadow copy. */
#define EXPECT_IMG() do {						\
	long __d = img_diff(self->img, self->shadow, IMG_SIZE);	\
	EXPECT_EQ(-1, __d)						\
		TH_LOG("image file differs from the expected content at byte %ld (sector %ld)%s", \
		       __d, __d / 512, __d == -2 ? " (unreadable or wrong size)" : ""); \
} while (0)

#define CFG(field) cfg_rd(self, offsetof(struct virtio_blk_config, field), \
			  sizeof(((struct virtio_blk_config *)0)->field))
#define CFG_OFF(field) offsetof(struct virtio_blk_config, field)

#define RD(off)		fg_vdev_rd(&self->v, (off))
#define WR(off, val)	fg_vdev_wr(&self->v, (off), (val))

/* Daemon up with the default config, device probed with all features. */
#define UP() do {							\
	daemon_up(_metadata, self, NULL, false);			\
	probe(_metadata, self, WANT_ALL);				\
} while (0)

#define EXPECT_DONE(r, st, ulen) do {					\
	EXPECT_TRUE((r)->done) TH_LOG("%s: not completed; %s", rq_str(r), diag(self)); \
	if ((r)->done) {						\
		EXPECT_EQ((unsigned int)(st), (unsigned int)*(r)->status) \
			TH_LOG("%s: status %u, expected %u", rq_str(r),	\
			       *(r)->status, (unsigned int)(st));	\
		EXPECT_EQ((uint32_t)(ulen), (r)->used_len)		\
			TH_LOG("%s: used len %u, expected %u", rq_str(r), \
			       (r)->used_len, (uint32_t)(ulen));	\
	}								\
} while (0)

/* A read's data equals the expected image content. */
#define EXPECT_DATA(r) do {						\
	EXPECT_EQ(0, memcmp((r)->data, self->shadow + (r)->sector * 512, (r)->len)) \
		TH_LOG("%s: data differs from the image", rq_str(r));	\
} while (0)

/* Issue one request on queue qi and expect status / used length. */
#define RUN_EXPECT(qi, r, st, ulen) do {				\
	run1(_metadata, self, (qi), (r));				\
	EXPECT_DONE((r), (st), (ulen));					\
} while (0)

/* ---- blkdaemon.c: data, files, the daemon ------------------------------ */

/* splitmix64: the seeded image content and random payloads. */
uint64_t rnd(uint64_t *s);
void fill_rand(uint64_t *s, void *buf, size_t len);
/* Every byte of buf is c. */
bool all_bytes(const void *buf, int c, size_t len);
/* FNV-1a: a checksum to print or to see whether a buffer changed. */
uint64_t fnv1a(const void *buf, size_t len);
/* Create or truncate path with exactly buf; 0 or -errno. */
int write_all(const char *path, const void *buf, size_t len);
/*
 * Compare the file with what it must contain: -1 equal, else the offset
 * of the first differing byte (or -2 when it cannot be read whole).
 */
long img_diff(const char *path, const uint8_t *exp, size_t len);
/* st_blocks of the file (-1 if it cannot be stat'ed). */
long long img_blocks(const char *path);

/* The daemon's config: one zone, one blk device on img, NQ x QSIZE. */
void cfg_json(FIXTURE_DATA(blk) *self, char *buf, size_t len,
	      const char *img, bool ro);
/* Start `hvio run self->cfg`, stdout to a pipe; 0 or -errno. */
int daemon_spawn(FIXTURE_DATA(blk) *self);
/* Wait for READY_LINE on stdout: 0, -ETIMEDOUT, -ECHILD (it exited). */
int daemon_wait_ready(FIXTURE_DATA(blk) *self, unsigned int ms);
/*
 * Wait up to ms for the daemon to exit; SIGKILL it after that.  Returns
 * the wait status, or -ETIMEDOUT (it had to be killed).
 */
int daemon_wait_exit(FIXTURE_DATA(blk) *self, unsigned int ms);
/* Send sig, then daemon_wait_exit(STOP_MS). */
int daemon_stop(FIXTURE_DATA(blk) *self, int sig);
/* A wait status (or daemon_wait_exit's error) in words. */
const char *wstatus_str(int st);
/* The last bytes of the daemon's stderr, on one line for TH_LOG. */
const char *log_tail(FIXTURE_DATA(blk) *self);

/* ---- blkdaemon.c: the guest's memory, rings and requests ---------------- */

/* Host pointer to a guest physical address in zone RAM. */
void *gp(FIXTURE_DATA(blk) *self, uint64_t gpa);
/* Bump allocator in zone RAM: 0 when exhausted. */
uint64_t galloc(FIXTURE_DATA(blk) *self, uint64_t size, uint64_t align);
/* The EVENT_IDX fields after the rings, and used->idx (acquire). */
uint16_t *used_event(struct gq *q);
uint16_t *avail_event(struct gq *q);
uint16_t used_idx(struct gq *q);
/* Attach struct gq i to the rings the probe set up. */
void gq_init(FIXTURE_DATA(blk) *self, unsigned int i);
/* A free descriptor (-1: none); fill one in. */
int dget(struct gq *q);
void dset(struct gq *q, uint16_t d, uint64_t addr, uint32_t len,
	  uint16_t flags, uint16_t next);
/* A config space read of w bytes at off (see CFG()). */
uint64_t cfg_rd(FIXTURE_DATA(blk) *self, size_t off, unsigned int w);

/* The request's payload is device-writable (IN, GET_ID). */
bool payload_in(uint32_t type);
/* The request in words, for messages. */
const char *rq_str(const struct breq *r);
/* Header alone, payload in nseg pieces, status alone. */
void rq_split(struct breq *r, unsigned int nseg);
/* Custom segment lengths (0-terminated lists; NULL keeps the default). */
void rq_cuts(struct breq *r, const uint32_t *out, const uint32_t *in);

struct seg {
	uint64_t gpa;
	uint32_t len;
	uint16_t flags;
};

/* The request's descriptor segments; -1 if the cuts do not add up. */
int rq_segs(const struct breq *r, struct seg *s, int max);
/* Put head in the next avail slot (not yet published). */
void avail_add(FIXTURE_DATA(blk) *self, int qi, uint16_t head,
	       struct breq *r);
/* Make the added heads visible: avail->idx (release). */
void publish(FIXTURE_DATA(blk) *self, int qi);
/* QueueNotify, whatever the device asked for. */
void kick_now(FIXTURE_DATA(blk) *self, int qi);
/* virtqueue_kick_prepare() + notify: honours avail_event / NO_NOTIFY. */
void kick(FIXTURE_DATA(blk) *self, int qi);
/* Take what the device put in the used ring. */
void reap(FIXTURE_DATA(blk) *self, int qi);
/* Drain res_list (hvisor's part), counting our device's interrupts. */
void pump(FIXTURE_DATA(blk) *self, unsigned int wait_ms);
/* Ring indices, Status, ISR and the daemon's state, for messages. */
const char *diag(FIXTURE_DATA(blk) *self);
/* Wait until every request completed; returns how many did not. */
int wait_done(FIXTURE_DATA(blk) *self, struct breq **rs, int n,
	      unsigned int ms);
/* The image must now hold r's data / zeroes at the range. */
void shadow_write(FIXTURE_DATA(blk) *self, const struct breq *r);
void shadow_zero(FIXTURE_DATA(blk) *self, uint64_t sector, uint64_t num);
/* Wait for `want` more interrupts than `base`; true if they came. */
bool wait_irqs(FIXTURE_DATA(blk) *self, unsigned long base,
	       unsigned long want, unsigned int ms);
/* Poll Status until `bit` is set. */
uint32_t wait_status_bit(FIXTURE_DATA(blk) *self, uint32_t bit,
			 unsigned int ms);

#ifdef __KSELFTEST_HARNESS_H
/* ---- in the programs: the parts that ASSERT ---------------------------- */

FIXTURE(blk);

/* Write json as the daemon's config, start it, wait until it is ready. */
static inline void daemon_up_json(struct __test_metadata *_metadata,
				  FIXTURE_DATA(blk) *self, const char *json)
{
	int r;

	ASSERT_EQ(0, write_all(self->cfg, json, strlen(json)));
	ASSERT_EQ(0, daemon_spawn(self));
	r = daemon_wait_ready(self, READY_MS);
	ASSERT_EQ(0, r)
		TH_LOG("daemon not ready (%s; %s): stdout \"%s\", stderr \"%s\"",
		       errname(r), self->pid ? "running" :
		       wstatus_str(self->exit_status), self->out,
		       log_tail(self));
}

static inline void daemon_up(struct __test_metadata *_metadata,
			     FIXTURE_DATA(blk) *self, const char *img, bool ro)
{
	char json[1024];

	cfg_json(self, json, sizeof(json), img ? img : self->img, ro);
	daemon_up_json(_metadata, self, json);
}

/*
 * The guest driver's probe: fresh rings, Linux's virtio-mmio sequence up to
 * DRIVER_OK with the features wanted (and offered), then config space.
 */
static inline void probe(struct __test_metadata *_metadata,
			 FIXTURE_DATA(blk) *self, uint64_t want)
{
	unsigned int i;
	int r;

	memset(gp(self, RING_GPA), 0, HEAP_GPA - RING_GPA);
	memset(self->q, 0, sizeof(self->q));
	self->hold_used_event = false;
	fg_vdev_init(&self->v, &self->fg, 0, ZONE_A, MMIO_BASE);
	r = fg_vdev_probe(&self->v, want, NQ, QSIZE, RING_GPA);
	ASSERT_EQ(0, r) TH_LOG("probe: %s", self->v.err);
	self->nq = self->v.nq;
	for (i = 0; i < self->nq && i < NQ; i++)
		gq_init(self, i);
	self->event_idx = !!(self->v.driver_features & F_EVENT_IDX);
	self->indirect = !!(self->v.driver_features & F_INDIRECT);

	self->capacity = CFG(capacity);
	self->size_max = CFG(size_max);
	self->seg_max = CFG(seg_max);
	self->blk_size = CFG(blk_size);
	self->wce = CFG(wce);
	self->num_queues = CFG(num_queues);
	self->max_discard_sectors = CFG(max_discard_sectors);
	self->max_discard_seg = CFG(max_discard_seg);
	self->discard_align = CFG(discard_sector_alignment);
	self->max_wz_sectors = CFG(max_write_zeroes_sectors);
	self->max_wz_seg = CFG(max_write_zeroes_seg);
	self->wz_may_unmap = CFG(write_zeroes_may_unmap);
	ASSERT_EQ(0, self->fg.errors) TH_LOG("bridge: %s", self->fg.err);
}

/*
 * A new request with its memory in zone RAM: header filled in, a device-
 * writable payload set to FILL_IN, a readable one random, status 0xff.
 * The payload starts 512-byte aligned.
 */
static inline struct breq *rq_new(struct __test_metadata *_metadata,
				  FIXTURE_DATA(blk) *self, uint32_t type,
				  uint64_t sector, uint32_t len)
{
	struct virtio_blk_outhdr h;
	struct breq *r;
	uint64_t blk;

	ASSERT_GT(MAX_REQS, self->npool) TH_LOG("request pool exhausted");
	r = &self->pool[self->npool++];
	memset(r, 0, sizeof(*r));
	r->type = type;
	r->sector = sector;
	r->len = len;
	r->q = -1;
	blk = galloc(self, 512 + len + 1, 512);
	ASSERT_NE(0, blk) TH_LOG("zone RAM heap exhausted");
	r->gpa = blk + 512 - 16;
	r->hdr = gp(self, r->gpa);
	ASSERT_NE(NULL, r->hdr);
	r->data = r->hdr + 16;
	r->status = r->data + len;
	h.type = htole32(type);
	h.ioprio = 0;
	h.sector = htole64(sector);
	memcpy(r->hdr, &h, sizeof(h));
	if (payload_in(type))
		memset(r->data, FILL_IN, len);
	else
		fill_rand(&self->rng, r->data, len);
	*r->status = ST_UNTOUCHED;
	return r;
}

/* DISCARD / WRITE_ZEROES with one range segment. */
static inline struct breq *rq_range(struct __test_metadata *_metadata,
				    FIXTURE_DATA(blk) *self, uint32_t type,
				    uint64_t sector, uint32_t num, uint32_t flags)
{
	struct virtio_blk_discard_write_zeroes seg = {
		.sector = htole64(sector),
		.num_sectors = htole32(num),
		.flags = htole32(flags),
	};
	struct breq *r = rq_new(_metadata, self, type, 0, sizeof(seg));

	memcpy(r->data, &seg, sizeof(seg));
	r->sector = sector;	/* for messages */
	return r;
}

/* Build the request's chain (direct or indirect) and make it available. */
static inline void rq_post(struct __test_metadata *_metadata,
			   FIXTURE_DATA(blk) *self, int qi, struct breq *r)
{
	struct gq *q = &self->q[qi];
	struct seg s[MAX_CUTS];
	struct vring_desc *tab;
	uint64_t t;
	int n, i, d;

	ASSERT_LT(qi, (int)self->nq);
	n = rq_segs(r, s, MAX_CUTS);
	ASSERT_LT(0, n) TH_LOG("%s: segment lengths do not add up", rq_str(r));
	r->ndesc = 0;
	if (r->indirect) {
		t = galloc(self, 16ULL * n, 16);
		ASSERT_NE(0, t) TH_LOG("zone RAM heap exhausted");
		tab = gp(self, t);
		for (i = 0; i < n; i++) {
			tab[i].addr = htole64(s[i].gpa);
			tab[i].len = htole32(s[i].len);
			tab[i].flags = htole16(s[i].flags |
					       (i + 1 < n ? VRING_DESC_F_NEXT : 0));
			tab[i].next = htole16(i + 1 < n ? i + 1 : 0);
		}
		d = dget(q);
		ASSERT_LE(0, d) TH_LOG("queue %d: no free descriptor", qi);
		dset(q, d, t, 16 * n, VRING_DESC_F_INDIRECT, 0);
		r->desc[r->ndesc++] = d;
	} else {
		ASSERT_GE(MAX_DESC, n);
		ASSERT_GE(q->nfree, n) TH_LOG("queue %d: %u free descriptors, %d needed",
					      qi, q->nfree, n);
		for (i = 0; i < n; i++)
			r->desc[r->ndesc++] = dget(q);
		for (i = 0; i < n; i++)
			dset(q, r->desc[i], s[i].gpa, s[i].len,
			     s[i].flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0),
			     i + 1 < n ? r->desc[i + 1] : 0);
	}
	avail_add(self, qi, r->desc[0], r);
}

/* Post one request, kick, wait for it. */
static inline int run1(struct __test_metadata *_metadata,
		       FIXTURE_DATA(blk) *self, int qi, struct breq *r)
{
	rq_post(_metadata, self, qi, r);
	publish(self, qi);
	kick(self, qi);
	return wait_done(self, &r, 1, IO_MS);
}

FIXTURE_SETUP(blk)
{
	pid_t me = getpid();
	uint64_t seed = IMG_SEED;
	int r, i;

	self->pid = 0;
	self->exit_status = -1;
	self->out_fd = -1;
	snprintf(self->img, sizeof(self->img), "/tmp/hvio-blk-%d.img", me);
	snprintf(self->cfg, sizeof(self->cfg), "/tmp/hvio-blk-%d.json", me);
	snprintf(self->log, sizeof(self->log), "/tmp/hvio-blk-%d.log", me);
	snprintf(self->sock, sizeof(self->sock), "/tmp/hvio-blk-%d.sock", me);
	snprintf(self->extra, sizeof(self->extra), "/tmp/hvio-blk-%d-missing.img", me);

	hvio_fixture_open(_metadata, &self->fg, &self->skip);
	if (self->skip)
		return;
	self->opened = true;
	if (access(fg_daemon_bin(), X_OK) && !getenv("HVIO_KO")) {
		self->skip = true;
		SKIP(return, "%s: no daemon binary", fg_daemon_bin());
	}
	ASSERT_LE(ZONE_SIZE, self->fg.info.ram_size);
	/* A daemon of an earlier test may still be exiting with its devices. */
	for (i = 0; i < 300; i++) {
		r = fg_zone_del(&self->fg, ZONE_A);
		if (r == -ENOENT)
			break;
		if (r == 0)
			TH_LOG("removed zone %u left by an earlier test", ZONE_A);
		else
			fg_sleep_ms(10);
	}
	ASSERT_EQ(-ENOENT, r) TH_LOG("zone %u still busy: %s", ZONE_A, errname(r));

	self->zone = (struct fg_zone){ .id = ZONE_A, .zonex_ipa = GUEST_RAM,
				       .ram_off = 0, .size = ZONE_SIZE };
	memset(self->fg.ram, 0, ZONE_SIZE);
	self->heap = HEAP_GPA;
	self->rng = 0x74657374ULL;
	self->pool = calloc(MAX_REQS, sizeof(*self->pool));
	ASSERT_NE(NULL, self->pool);
	self->shadow = malloc(IMG_SIZE);
	ASSERT_NE(NULL, self->shadow);
	fill_rand(&seed, self->shadow, IMG_SIZE);
	ASSERT_EQ(0, write_all(self->img, self->shadow, IMG_SIZE));
	fg_flush_res(&self->fg);
}

FIXTURE_TEARDOWN(blk)
{
	int st;

	/*
	 * The 6.1 harness leaves trigger set when an ASSERT bailed out of the
	 * test: the first EXPECT here would print its message although it
	 * passes.
	 */
	_metadata->trigger = 0;
	if (self->pid > 0) {
		st = daemon_stop(self, SIGTERM);
		EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			TH_LOG("daemon after SIGTERM: %s; stderr \"%s\"",
			       wstatus_str(st), log_tail(self));
	}
	if (self->out_fd >= 0)
		close(self->out_fd);
	unlink(self->img);
	unlink(self->cfg);
	unlink(self->log);
	unlink(self->sock);
	unlink(self->extra);
	free(self->pool);
	free(self->shadow);
	if (self->opened) {
		EXPECT_EQ(0, self->bad_used)
			TH_LOG("used ring entries naming heads that were not posted");
		hvio_fixture_close(_metadata, &self->fg);
	}
}

#endif /* __KSELFTEST_HARNESS_H */

#endif /* HVIO_BLKDAEMON_H */
