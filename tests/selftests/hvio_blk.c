// SPDX-License-Identifier: GPL-2.0
/*
 * hvio_blk: virtio-blk end to end.  The fake guest drives a block device
 * served by hvio.ko's virtqueue engine and the hvio daemon (io_uring on an
 * image file in /tmp) and checks what a guest and its user rely on
 * (Documentation/abi.md, "Queues and I/O operations" and "virtio-blk
 * requests"): data read and written where it belongs, every status code,
 * malformed chains, interrupt suppression, reset, daemon shutdown.
 *
 * Each test starts its own daemon (`hvio run cfg.json --socket S`, with a
 * hvisor-tool style config; the daemon registers the zone itself) on a
 * fresh 16 MiB image with seeded content, then plays the
 * guest's virtio-mmio driver through /dev/hvio-sim: split rings and
 * requests in zone RAM, QueueNotify through the bridge, completions by
 * polling the used ring, interrupts from res_list.  Teardown stops the
 * daemon with SIGTERM and expects exit status 0.  The image content the
 * device must show is kept in a shadow copy and compared with the file.
 */
#include "hvio_test.h"

#include <endian.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ring.h>

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

FIXTURE(blk) {
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

/* ---- small helpers --------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill_rand(uint64_t *s, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t v;

	while (len >= 8) {
		v = rnd(s);
		memcpy(p, &v, 8);
		p += 8;
		len -= 8;
	}
	while (len--)
		*p++ = (uint8_t)rnd(s);
}

static bool all_bytes(const void *buf, int c, size_t len)
{
	const uint8_t *p = buf;

	while (len--)
		if (*p++ != (uint8_t)c)
			return false;
	return true;
}

static uint64_t fnv1a(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

static int write_all(const char *path, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		p += n;
		len -= n;
	}
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/*
 * Compare the file with what it must contain: -1 equal, else the offset
 * of the first differing byte (or -2 when it cannot be read whole).
 */
static long img_diff(const char *path, const uint8_t *exp, size_t len)
{
	static uint8_t buf[1 << 20];
	size_t off = 0, i;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -2;
	if (fstat(fd, &st) || (size_t)st.st_size != len) {
		close(fd);
		return -2;
	}
	while (off < len) {
		n = pread(fd, buf, len - off < sizeof(buf) ? len - off : sizeof(buf),
			  off);
		if (n <= 0) {
			close(fd);
			return -2;
		}
		if (memcmp(buf, exp + off, n)) {
			for (i = 0; buf[i] == exp[off + i]; i++)
				;
			close(fd);
			return (long)(off + i);
		}
		off += n;
	}
	close(fd);
	return -1;
}

static long long img_blocks(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long long)st.st_blocks;
}

/* The image file must hold exactly the shadow copy. */
#define EXPECT_IMG() do {						\
	long __d = img_diff(self->img, self->shadow, IMG_SIZE);	\
	EXPECT_EQ(-1, __d)						\
		TH_LOG("image file differs from the expected content at byte %ld (sector %ld)%s", \
		       __d, __d / 512, __d == -2 ? " (unreadable or wrong size)" : ""); \
} while (0)

/* ---- the daemon ------------------------------------------------------ */

static void cfg_json(FIXTURE_DATA(blk) *self, char *buf, size_t len,
		     const char *img, bool ro)
{
	snprintf(buf, len,
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"queues\":%u,"
		 "\"queue_size\":%u,\"readonly\":%s,\"serial\":\"%s\"}]}]}\n",
		 ZONE_A,
		 (unsigned long long)fg_zone_phys(&self->fg, &self->zone),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)MMIO_BASE, DEV_IRQ, img, NQ, QSIZE,
		 ro ? "true" : "false", SERIAL);
}

static int daemon_spawn(FIXTURE_DATA(blk) *self)
{
	int pid = fg_daemon_spawn(self->cfg, self->sock, self->log,
				  &self->out_fd);

	if (pid < 0)
		return pid;
	self->pid = pid;
	self->exit_status = -1;
	self->out_len = 0;
	self->out[0] = 0;
	return 0;
}

/* Collect the daemon's stdout for up to timeout_ms; false at EOF. */
static bool daemon_read(FIXTURE_DATA(blk) *self, int timeout_ms)
{
	struct pollfd pfd = { .fd = self->out_fd, .events = POLLIN };
	char buf[1024];
	size_t keep;
	ssize_t n;

	if (self->out_fd < 0)
		return false;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return true;
	n = read(self->out_fd, buf, sizeof(buf));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0) {
		close(self->out_fd);
		self->out_fd = -1;
		return false;
	}
	if (self->out_len + n >= sizeof(self->out)) {
		keep = sizeof(self->out) / 2;
		if (keep > self->out_len)
			keep = self->out_len;
		memmove(self->out, self->out + self->out_len - keep, keep);
		self->out_len = keep;
		if ((size_t)n >= sizeof(self->out) - keep)
			n = sizeof(self->out) - keep - 1;
	}
	memcpy(self->out + self->out_len, buf, n);
	self->out_len += n;
	self->out[self->out_len] = 0;
	return true;
}

static bool has_line(const char *text, const char *line)
{
	size_t l = strlen(line);
	const char *p = text;

	while ((p = strstr(p, line))) {
		if ((p == text || p[-1] == '\n') && p[l] == '\n')
			return true;
		p++;
	}
	return false;
}

/* Reap the daemon if it exited; true while it runs. */
static bool daemon_alive(FIXTURE_DATA(blk) *self)
{
	int st;

	if (self->pid <= 0)
		return false;
	if (waitpid(self->pid, &st, WNOHANG) == self->pid) {
		self->pid = 0;
		self->exit_status = st;
		return false;
	}
	return true;
}

static int daemon_wait_ready(FIXTURE_DATA(blk) *self, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;

	for (;;) {
		if (has_line(self->out, READY_LINE))
			return 0;
		if (fg_now_ms() > deadline)
			return -ETIMEDOUT;
		if (!daemon_read(self, 20) && !has_line(self->out, READY_LINE)) {
			/* stdout closed: it exited (or closed it) */
			fg_sleep_ms(10);
			daemon_alive(self);
			return -ECHILD;
		}
	}
}

/*
 * Wait up to ms for the daemon to exit; SIGKILL it after that.  Returns
 * the wait status, or -ETIMEDOUT (it had to be killed).
 */
static int daemon_wait_exit(FIXTURE_DATA(blk) *self, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	int st;

	if (self->pid <= 0)
		return self->exit_status;
	for (;;) {
		if (!daemon_alive(self))
			break;
		if (fg_now_ms() > deadline) {
			kill(self->pid, SIGKILL);
			waitpid(self->pid, &st, 0);
			self->pid = 0;
			self->exit_status = st;
			return -ETIMEDOUT;
		}
		daemon_read(self, 10);
	}
	/* what it printed last */
	while (daemon_read(self, 50))
		;
	return self->exit_status;
}

static int daemon_stop(FIXTURE_DATA(blk) *self, int sig)
{
	if (self->pid > 0)
		kill(self->pid, sig);
	return daemon_wait_exit(self, STOP_MS);
}

static const char *wstatus_str(int st)
{
	static char buf[64];

	if (st == -ETIMEDOUT)
		snprintf(buf, sizeof(buf), "did not exit in %u ms (killed)", STOP_MS);
	else if (st < 0)
		snprintf(buf, sizeof(buf), "not started");
	else if (WIFEXITED(st))
		snprintf(buf, sizeof(buf), "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, sizeof(buf), "wait status %#x", st);
	return buf;
}

/* The last bytes of the daemon's stderr, on one line for TH_LOG. */
static const char *log_tail(FIXTURE_DATA(blk) *self)
{
	static char buf[768];
	ssize_t n = 0;
	off_t size;
	int fd, i;

	buf[0] = 0;
	fd = open(self->log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "(no stderr log)";
	size = lseek(fd, 0, SEEK_END);
	if (size > 0) {
		n = pread(fd, buf, sizeof(buf) - 1,
			  size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
		if (n < 0)
			n = 0;
	}
	close(fd);
	buf[n] = 0;
	for (i = 0; i < n; i++)
		if (buf[i] == '\n')
			buf[i] = '|';
	return n ? buf : "(empty)";
}

static void daemon_up(struct __test_metadata *_metadata,
		      FIXTURE_DATA(blk) *self, const char *img, bool ro)
{
	char json[1024];
	int r;

	cfg_json(self, json, sizeof(json), img ? img : self->img, ro);
	ASSERT_EQ(0, write_all(self->cfg, json, strlen(json)));
	ASSERT_EQ(0, daemon_spawn(self));
	r = daemon_wait_ready(self, READY_MS);
	ASSERT_EQ(0, r)
		TH_LOG("daemon not ready (%s; %s): stdout \"%s\", stderr \"%s\"",
		       errname(r), self->pid ? "running" :
		       wstatus_str(self->exit_status), self->out,
		       log_tail(self));
}

/* ---- guest memory and the guest's rings -------------------------------- */

static void *gp(FIXTURE_DATA(blk) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->zone, gpa);
}

/* Bump allocator in zone RAM: 0 when exhausted. */
static uint64_t galloc(FIXTURE_DATA(blk) *self, uint64_t size, uint64_t align)
{
	uint64_t a = (self->heap + align - 1) & ~(align - 1);

	if (a + size > GUEST_RAM + ZONE_SIZE)
		return 0;
	self->heap = a + size;
	return a;
}

static uint16_t *used_event(struct gq *q)
{
	return &q->avail->ring[q->num];
}

static uint16_t *avail_event(struct gq *q)
{
	return (uint16_t *)&q->used->ring[q->num];
}

static uint16_t used_idx(struct gq *q)
{
	return le16toh(__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE));
}

static void gq_init(FIXTURE_DATA(blk) *self, unsigned int i)
{
	struct gq *q = &self->q[i];
	const struct fg_vq *vq = &self->v.vq[i];
	unsigned int d;

	memset(q, 0, sizeof(*q));
	q->num = vq->num;
	q->desc = gp(self, vq->desc);
	q->avail = gp(self, vq->driver);
	q->used = gp(self, vq->device);
	q->nfree = q->num;
	for (d = 0; d < q->num; d++)
		q->freel[d] = q->num - 1 - d;
}

static int dget(struct gq *q)
{
	return q->nfree ? q->freel[--q->nfree] : -1;
}

static void dput(struct gq *q, uint16_t d)
{
	if (q->nfree < q->num)
		q->freel[q->nfree++] = d;
}

static void dset(struct gq *q, uint16_t d, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	q->desc[d].addr = htole64(addr);
	q->desc[d].len = htole32(len);
	q->desc[d].flags = htole16(flags);
	q->desc[d].next = htole16(next);
}

static uint64_t cfg_rd(FIXTURE_DATA(blk) *self, size_t off, unsigned int w)
{
	return fg_read(&self->fg, self->v.cpu, ZONE_A,
		       MMIO_BASE + HVIO_MMIO_CONFIG_OFF + off, w);
}

#define CFG(field) cfg_rd(self, offsetof(struct virtio_blk_config, field), \
			  sizeof(((struct virtio_blk_config *)0)->field))
#define CFG_OFF(field) offsetof(struct virtio_blk_config, field)

#define RD(off)		fg_vdev_rd(&self->v, (off))
#define WR(off, val)	fg_vdev_wr(&self->v, (off), (val))

/*
 * The guest driver's probe: fresh rings, Linux's virtio-mmio sequence up to
 * DRIVER_OK with the features wanted (and offered), then config space.
 */
static void probe(struct __test_metadata *_metadata, FIXTURE_DATA(blk) *self,
		  uint64_t want)
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

/* Daemon up with the default config, device probed with all features. */
#define UP() do {							\
	daemon_up(_metadata, self, NULL, false);			\
	probe(_metadata, self, WANT_ALL);				\
} while (0)

static bool payload_in(uint32_t type)
{
	return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
}

static const char *type_str(uint32_t type)
{
	static char buf[16];

	switch (type) {
	case VIRTIO_BLK_T_IN: return "IN";
	case VIRTIO_BLK_T_OUT: return "OUT";
	case VIRTIO_BLK_T_FLUSH: return "FLUSH";
	case VIRTIO_BLK_T_GET_ID: return "GET_ID";
	case VIRTIO_BLK_T_DISCARD: return "DISCARD";
	case VIRTIO_BLK_T_WRITE_ZEROES: return "WRITE_ZEROES";
	}
	snprintf(buf, sizeof(buf), "type %#x", type);
	return buf;
}

static const char *rq_str(const struct breq *r)
{
	static char buf[160];

	snprintf(buf, sizeof(buf), "%s sector %llu len %u (queue %d head %u%s)",
		 type_str(r->type), (unsigned long long)r->sector, r->len,
		 r->q, r->head, r->indirect ? ", indirect" : "");
	return buf;
}

/*
 * A new request with its memory in zone RAM: header filled in, a device-
 * writable payload set to FILL_IN, a readable one random, status 0xff.
 * The payload starts 512-byte aligned.
 */
static struct breq *rq_new(struct __test_metadata *_metadata,
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
static struct breq *rq_range(struct __test_metadata *_metadata,
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

/* Header alone, payload in nseg pieces, status alone. */
static void rq_split(struct breq *r, unsigned int nseg)
{
	uint32_t *c = r->cut_store[payload_in(r->type)];
	uint32_t left = r->len, piece;
	unsigned int i, n = 0;

	if (!nseg)
		nseg = 1;
	if (!payload_in(r->type))
		c[n++] = 16;
	for (i = 0; i < nseg && left; i++) {
		piece = i + 1 == nseg ? left : r->len / nseg;
		c[n++] = piece;
		left -= piece;
	}
	if (payload_in(r->type))
		c[n++] = 1;
	c[n] = 0;
	if (payload_in(r->type))
		r->in_cuts = c;
	else
		r->out_cuts = c;
}

/* Custom segment lengths (0-terminated lists; NULL keeps the default). */
static void rq_cuts(struct breq *r, const uint32_t *out, const uint32_t *in)
{
	unsigned int i;

	if (out) {
		for (i = 0; out[i] && i + 1 < MAX_CUTS; i++)
			r->cut_store[0][i] = out[i];
		r->cut_store[0][i] = 0;
		r->out_cuts = r->cut_store[0];
	}
	if (in) {
		for (i = 0; in[i] && i + 1 < MAX_CUTS; i++)
			r->cut_store[1][i] = in[i];
		r->cut_store[1][i] = 0;
		r->in_cuts = r->cut_store[1];
	}
}

struct seg {
	uint64_t gpa;
	uint32_t len;
	uint16_t flags;
};

/* The request's descriptor segments; -1 if the cuts do not add up. */
static int rq_segs(const struct breq *r, struct seg *s, int max)
{
	bool in = payload_in(r->type);
	uint32_t out_len = 16 + (in ? 0 : r->len);
	uint32_t in_len = (in ? r->len : 0) + 1;
	uint32_t def_out[3] = { 16, 0, 0 }, def_in[3] = { 0, 0, 0 };
	const uint32_t *c;
	uint64_t at = r->gpa;
	uint32_t sum;
	int n = 0;

	if (!in && r->len)
		def_out[1] = r->len;
	if (in && r->len) {
		def_in[0] = r->len;
		def_in[1] = 1;
	} else {
		def_in[0] = 1;
	}
	sum = 0;
	for (c = r->out_cuts ? r->out_cuts : def_out; *c; c++) {
		if (n == max)
			return -1;
		s[n++] = (struct seg){ at, *c, 0 };
		at += *c;
		sum += *c;
	}
	if (sum != out_len)
		return -1;
	sum = 0;
	for (c = r->in_cuts ? r->in_cuts : def_in; *c; c++) {
		if (n == max)
			return -1;
		s[n++] = (struct seg){ at, *c, VRING_DESC_F_WRITE };
		at += *c;
		sum += *c;
	}
	if (sum != in_len)
		return -1;
	return n;
}

/* Put head in the next avail slot (not yet published). */
static void avail_add(FIXTURE_DATA(blk) *self, int qi, uint16_t head,
		      struct breq *r)
{
	struct gq *q = &self->q[qi];

	r->q = qi;
	r->head = head;
	r->posted = true;
	r->done = false;
	q->owner[head & (q->num - 1)] = r;
	q->avail->ring[q->avail_idx & (q->num - 1)] = htole16(head);
	q->avail_idx++;
}

/* Build the request's chain (direct or indirect) and make it available. */
static void rq_post(struct __test_metadata *_metadata, FIXTURE_DATA(blk) *self,
		    int qi, struct breq *r)
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

static void publish(FIXTURE_DATA(blk) *self, int qi)
{
	struct gq *q = &self->q[qi];

	__atomic_store_n(&q->avail->idx, htole16(q->avail_idx), __ATOMIC_RELEASE);
}

static void kick_now(FIXTURE_DATA(blk) *self, int qi)
{
	self->q[qi].kicked_idx = self->q[qi].avail_idx;
	fg_notify(&self->fg, self->v.cpu, ZONE_A,
		  MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, qi);
	self->kicks++;
}

/* virtqueue_kick_prepare() + notify: honours avail_event / NO_NOTIFY. */
static void kick(FIXTURE_DATA(blk) *self, int qi)
{
	struct gq *q = &self->q[qi];
	uint16_t old = q->kicked_idx, new = q->avail_idx;
	bool need;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (self->event_idx)
		need = vring_need_event(le16toh(__atomic_load_n(avail_event(q),
							       __ATOMIC_RELAXED)),
					new, old);
	else
		need = !(le16toh(__atomic_load_n(&q->used->flags, __ATOMIC_RELAXED)) &
			 VRING_USED_F_NO_NOTIFY);
	q->kicked_idx = new;
	if (need)
		kick_now(self, qi);
}

/* Take what the device put in the used ring. */
static void reap(FIXTURE_DATA(blk) *self, int qi)
{
	struct gq *q = &self->q[qi];
	struct vring_used_elem e;
	uint16_t idx = used_idx(q);
	struct breq *r;
	unsigned int i;
	uint32_t id;

	while (q->last_used != idx) {
		e = q->used->ring[q->last_used & (q->num - 1)];
		q->last_used++;
		id = le32toh(e.id);
		if (id >= q->num || !q->owner[id]) {
			self->bad_used++;
			continue;
		}
		r = q->owner[id];
		q->owner[id] = NULL;
		r->done = true;
		r->used_len = le32toh(e.len);
		for (i = 0; i < r->ndesc; i++)
			dput(q, r->desc[i]);
	}
	/* virtqueue_enable_cb(): interrupt at the next completion */
	if (self->event_idx && !self->hold_used_event)
		__atomic_store_n(used_event(q), htole16(q->last_used),
				 __ATOMIC_RELEASE);
}

/* Drain res_list (hvisor's part), counting our device's interrupts. */
static void pump(FIXTURE_DATA(blk) *self, unsigned int wait_ms)
{
	struct hvio_device_res res[HVIO_BRIDGE_MAX_REQ];
	int n, i;

	if (wait_ms)
		fg_wait_finish(&self->fg, wait_ms);
	n = fg_drain_res(&self->fg, res, HVIO_BRIDGE_MAX_REQ);
	for (i = 0; i < n && i < HVIO_BRIDGE_MAX_REQ; i++) {
		if (res[i].target_zone == ZONE_A && res[i].irq_id == DEV_IRQ)
			self->irqs++;
		else
			self->irqs_other++;
	}
}

static const char *diag(FIXTURE_DATA(blk) *self)
{
	static char buf[512];
	unsigned int i;
	size_t n = 0;

	for (i = 0; i < self->nq; i++) {
		struct gq *q = &self->q[i];

		n += snprintf(buf + n, sizeof(buf) - n,
			      "q%u: avail %u used %u (seen %u) avail_event %u used_flags %#x; ",
			      i, q->avail_idx, used_idx(q), q->last_used,
			      le16toh(*avail_event(q)), le16toh(q->used->flags));
	}
	daemon_alive(self);
	snprintf(buf + n, sizeof(buf) - n, "Status %#x ISR %#x, daemon %s",
		 RD(VIRTIO_MMIO_STATUS), RD(VIRTIO_MMIO_INTERRUPT_STATUS),
		 self->pid > 0 ? "running" : wstatus_str(self->exit_status));
	return buf;
}

/* Wait until every request completed; returns how many did not. */
static int wait_done(FIXTURE_DATA(blk) *self, struct breq **rs, int n,
		     unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms, check = fg_now_ms() + 100;
	unsigned int q;
	int i, left;

	for (;;) {
		for (q = 0; q < self->nq; q++)
			reap(self, q);
		pump(self, 0);
		left = 0;
		for (i = 0; i < n; i++)
			left += !rs[i]->done;
		if (!left)
			return 0;
		if (fg_now_ms() > deadline)
			return left;
		if (fg_now_ms() > check) {
			/* a dead daemon completes nothing more */
			if (self->pid > 0 && !daemon_alive(self)) {
				fg_sleep_ms(20);
				deadline = 0;
			}
			check = fg_now_ms() + 100;
		}
		pump(self, 1);
	}
}

/* Post one request, kick, wait for it. */
static int run1(struct __test_metadata *_metadata, FIXTURE_DATA(blk) *self,
		int qi, struct breq *r)
{
	rq_post(_metadata, self, qi, r);
	publish(self, qi);
	kick(self, qi);
	return wait_done(self, &r, 1, IO_MS);
}

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

static void shadow_write(FIXTURE_DATA(blk) *self, const struct breq *r)
{
	memcpy(self->shadow + r->sector * 512, r->data, r->len);
}

static void shadow_zero(FIXTURE_DATA(blk) *self, uint64_t sector, uint64_t num)
{
	memset(self->shadow + sector * 512, 0, num * 512);
}

/* Wait for `want` more interrupts than `base`; true if they came. */
static bool wait_irqs(FIXTURE_DATA(blk) *self, unsigned long base,
		      unsigned long want, unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;

	while (self->irqs - base < want) {
		if (fg_now_ms() > deadline)
			return false;
		pump(self, 5);
	}
	return true;
}

/* Poll Status until `bit` is set. */
static uint32_t wait_status_bit(FIXTURE_DATA(blk) *self, uint32_t bit,
				unsigned int ms)
{
	uint64_t deadline = fg_now_ms() + ms;
	uint32_t st;

	for (;;) {
		st = RD(VIRTIO_MMIO_STATUS);
		if ((st & bit) || fg_now_ms() > deadline || self->fg.errors)
			return st;
		pump(self, 5);
	}
}

/* ---- fixture ---------------------------------------------------------- */

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

/* ---- tests ------------------------------------------------------------- */

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

/*
 * N requests one after the other, each waited for.  With expect_irq, each
 * completion must bring an interrupt, which is acknowledged as Linux's
 * vm_interrupt() does.  Returns the interrupts seen.
 */
static unsigned long serial_reads(struct __test_metadata *_metadata,
				  FIXTURE_DATA(blk) *self, int n, bool expect_irq)
{
	unsigned long base = self->irqs, b;
	struct breq *r;
	uint32_t isr;
	int i;

	for (i = 0; i < n; i++) {
		b = self->irqs;
		r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 64ULL * i, 512);
		RUN_EXPECT(0, r, ST_OK, 513);
		if (!r->done)
			break;
		if (expect_irq) {
			EXPECT_TRUE(wait_irqs(self, b, 1, IRQ_MS))
				TH_LOG("request %d: no interrupt", i);
			isr = RD(VIRTIO_MMIO_INTERRUPT_STATUS);
			EXPECT_TRUE(isr & VIRTIO_MMIO_INT_VRING)
				TH_LOG("request %d: InterruptStatus %#x", i, isr);
			WR(VIRTIO_MMIO_INTERRUPT_ACK, isr);
		}
	}
	return self->irqs - base;
}

TEST_F(blk, event_idx_suppresses_interrupts)
{
	/*
	 * Without EVENT_IDX every completion interrupts; with EVENT_IDX and
	 * used_event held far ahead the same completions raise none (the
	 * first one after attach included), every request needs exactly one
	 * kick because the device re-arms avail_event after draining, and
	 * moving used_event brings the interrupt back.
	 */
	enum { N = 24 };
	unsigned long without, with, first, b, irqs0;
	uint64_t deadline;
	struct breq *r;
	unsigned int q;
	uint16_t ae;

	NEED_SETUP();
	daemon_up(_metadata, self, NULL, false);
	probe(_metadata, self, WANT_ALL & ~F_EVENT_IDX);
	ASSERT_FALSE(self->event_idx);
	pump(self, 0);
	without = serial_reads(_metadata, self, N, true);

	probe(_metadata, self, WANT_ALL);
	ASSERT_TRUE(self->event_idx);
	self->hold_used_event = true;
	for (q = 0; q < self->nq; q++)
		*used_event(&self->q[q]) = htole16(self->q[q].last_used + HOLD_EVENT);
	/*
	 * The queue attaches at reset, so nothing was signalled before:
	 * used_event rules from the first completion on (virtio 1.2, 2.7.10).
	 */
	irqs0 = self->irqs;
	serial_reads(_metadata, self, 1, false);
	pump(self, 100);
	first = self->irqs - irqs0;
	EXPECT_EQ(0, first);
	b = self->kicks;
	irqs0 = self->irqs;
	serial_reads(_metadata, self, N, false);
	pump(self, 200);
	with = self->irqs - irqs0;
	b = self->kicks - b;
	/* every request found the queue drained and re-armed: one kick each */
	EXPECT_EQ(N, b) TH_LOG("%lu kicks for %d requests", b, N);
	/* avail_event re-armed to the next index once drained */
	deadline = fg_now_ms() + IRQ_MS;
	do {
		ae = le16toh(__atomic_load_n(avail_event(&self->q[0]), __ATOMIC_ACQUIRE));
		if (ae == self->q[0].avail_idx)
			break;
		pump(self, 5);
	} while (fg_now_ms() < deadline);
	EXPECT_EQ(self->q[0].avail_idx, ae) TH_LOG("avail_event not re-armed");

	TH_LOG("interrupts for %d completions: %lu without EVENT_IDX, %lu with used_event held (and %lu for the first completion after attach)",
	       N, without, with, first);
	EXPECT_LE(N, without);
	EXPECT_EQ(0, with);

	/* ask for the next one: it interrupts */
	b = self->irqs;
	*used_event(&self->q[0]) = htole16(self->q[0].last_used);
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 512);
	RUN_EXPECT(0, r, ST_OK, 513);
	EXPECT_TRUE(wait_irqs(self, b, 1, IRQ_MS)) TH_LOG("no interrupt at used_event");
	EXPECT_TRUE(RD(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_VRING);
	WR(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
}

TEST_F(blk, avail_no_interrupt_flag)
{
	/* Without EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT suppresses completion interrupts; clearing it brings them back. */
	enum { N = 16 };
	unsigned long with, b;
	struct breq *r;

	NEED_SETUP();
	daemon_up(_metadata, self, NULL, false);
	probe(_metadata, self, WANT_ALL & ~F_EVENT_IDX);
	self->q[0].avail->flags = htole16(VRING_AVAIL_F_NO_INTERRUPT);
	pump(self, 0);
	with = serial_reads(_metadata, self, N, false);
	pump(self, 200);
	EXPECT_EQ(0, with) TH_LOG("%lu interrupts with NO_INTERRUPT set", with);

	self->q[0].avail->flags = 0;
	b = self->irqs;
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 512);
	RUN_EXPECT(0, r, ST_OK, 513);
	EXPECT_TRUE(wait_irqs(self, b, 1, IRQ_MS)) TH_LOG("no interrupt");
}

/* ---- malformed chains ---------------------------------------------------- */

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

static uint64_t now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void spin_us(uint64_t us)
{
	uint64_t t0 = now_us();

	while (now_us() - t0 < us)
		;
}

TEST_F_TIMEOUT(blk, reset_drops_stale_completions, 90)
{
	/* Device resets at varying moments after a batch of reads was notified: nothing is ever written into the old used ring or status bytes after the reset is acknowledged (ops in flight complete as stale), the daemon survives every reset, and after a re-probe new requests complete with no stale entry in the new rings. */
	enum { N = 32, LEN = 16384, ROUNDS = 12 };
	struct breq *r[N], *nr[8];
	unsigned int round, partial = 0, none = 0, all = 0;
	uint64_t t0, batch_us, h0[N];
	unsigned int stale = 0;
	uint8_t st0[N];
	uint16_t u0;
	struct gq old;
	int i;

	NEED_SETUP();
	UP();
	/* how long a batch takes, to spread the resets over it */
	for (i = 0; i < N; i++) {
		r[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 64ULL * i, LEN);
		rq_split(r[i], 2);
		rq_post(_metadata, self, 0, r[i]);
	}
	t0 = now_us();
	publish(self, 0);
	kick_now(self, 0);
	while (used_idx(&self->q[0]) != N && now_us() - t0 < IO_MS * 1000ULL)
		sched_yield();
	batch_us = now_us() - t0;
	ASSERT_EQ(0, wait_done(self, r, N, IO_MS)) TH_LOG("%s", diag(self));
	self->heap = HEAP_GPA;

	for (round = 0; round < ROUNDS; round++) {
		probe(_metadata, self, WANT_ALL);
		for (i = 0; i < N; i++) {
			r[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 64ULL * i, LEN);
			rq_split(r[i], 2);
			rq_post(_metadata, self, 0, r[i]);
		}
		publish(self, 0);
		kick_now(self, 0);
		EXPECT_EQ(0, fg_wait_consumed(&self->fg, IRQ_MS));
		spin_us(batch_us * round / (ROUNDS - 2));
		WR(VIRTIO_MMIO_STATUS, 0);	/* acknowledged once the reset is done */
		old = self->q[0];
		u0 = used_idx(&old);
		for (i = 0; i < N; i++) {
			st0[i] = *r[i]->status;
			h0[i] = fnv1a(r[i]->data, LEN);
		}
		/* let whatever was in flight finish */
		fg_sleep_ms(100);
		/* zero-copy reads that landed after the reset were in flight */
		for (i = 0; i < N; i++)
			if (fnv1a(r[i]->data, LEN) != h0[i])
				break;
		stale += i < N;
		EXPECT_EQ(u0, used_idx(&old))
			TH_LOG("round %u: used ring written after the reset", round);
		for (i = 0; i < N; i++) {
			EXPECT_EQ(st0[i], *r[i]->status)
				TH_LOG("round %u request %d: status byte written after the reset",
				       round, i);
		}
		EXPECT_EQ(0, RD(VIRTIO_MMIO_STATUS));
		if (u0 == 0)
			none++;
		else if (u0 == N)
			all++;
		else
			partial++;
	}
	TH_LOG("batch of %d reads: %llu us; %u rounds: %u reset before any completion (%u with reads in flight, dropped as stale), %u in the middle, %u after all",
	       N, (unsigned long long)batch_us, ROUNDS, none, stale, partial, all);

	probe(_metadata, self, WANT_ALL);
	for (i = 0; i < 8; i++) {
		nr[i] = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 5000 + 8ULL * i, 4096);
		rq_post(_metadata, self, i % NQ, nr[i]);
	}
	publish(self, 0);
	publish(self, 1);
	kick(self, 0);
	kick(self, 1);
	EXPECT_EQ(0, wait_done(self, nr, 8, IO_MS)) TH_LOG("%s", diag(self));
	for (i = 0; i < 8; i++) {
		EXPECT_DONE(nr[i], ST_OK, 4097);
		EXPECT_DATA(nr[i]);
	}
	pump(self, 100);
	EXPECT_EQ(4, used_idx(&self->q[0]));
	EXPECT_EQ(4, used_idx(&self->q[1]));
}

/*
 * 64 writes over both queues, notified and taken by the module, then
 * SIGTERM: every one must come back with status OK before the daemon exits
 * 0, and be in the image.  after_first: SIGTERM once the first completion
 * is back (the daemon has fetched the batch: ops in flight); else right
 * after the notifies.  split_us >= 0: the second half of the writes is
 * posted and notified split_us after the first (the daemon is then busy
 * with the first half when the second half and SIGTERM arrive).
 */
static void sigterm_writes(struct __test_metadata *_metadata,
			   FIXTURE_DATA(blk) *self, bool after_first,
			   int split_us)
{
	enum { N = 64, LEN = 65536 };
	struct breq *r[N], *missing = NULL;
	unsigned int at_term = 0, ok = 0, done = 0;
	int i, st, first = split_us >= 0 ? N / 2 : N;
	uint64_t deadline;

	for (i = 0; i < N; i++)
		r[i] = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 128ULL * i, LEN);
	for (i = 0; i < N; i++) {
		rq_post(_metadata, self, i % NQ, r[i]);
		if (i + 1 != first && i + 1 != N)
			continue;
		publish(self, 0);
		publish(self, 1);
		kick_now(self, 0);
		kick_now(self, 1);
		/* the notifies reached the module (not just the bridge ring) */
		EXPECT_EQ(0, fg_wait_consumed(&self->fg, IRQ_MS));
		if (i + 1 == first && first != N)
			spin_us(split_us);
	}
	if (after_first) {
		deadline = fg_now_ms() + IO_MS;
		while (!used_idx(&self->q[0]) && !used_idx(&self->q[1]) &&
		       fg_now_ms() < deadline)
			sched_yield();
	}
	at_term = used_idx(&self->q[0]) + used_idx(&self->q[1]);
	if (after_first) {
		EXPECT_LT(0, at_term) TH_LOG("no completion at all: %s", diag(self));
	}
	ASSERT_EQ(0, kill(self->pid, SIGTERM));
	st = daemon_wait_exit(self, STOP_MS);
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("daemon: %s; stderr \"%s\"", wstatus_str(st), log_tail(self));
	reap(self, 0);
	reap(self, 1);
	for (i = 0; i < N; i++) {
		done += r[i]->done;
		if (r[i]->done && *r[i]->status == ST_OK && r[i]->used_len == 1) {
			ok++;
			shadow_write(self, r[i]);
		} else if (!missing) {
			missing = r[i];
		}
	}
	TH_LOG("%u of %d writes had completed when SIGTERM was sent, %u when the daemon had exited",
	       at_term, N, done);
	EXPECT_EQ(N, ok)
		TH_LOG("%u of %d writes completed OK; first missing: %s (done %d, status %u, used len %u)",
		       ok, N, missing ? rq_str(missing) : "-", missing ? missing->done : 0,
		       missing ? *missing->status : 0, missing ? missing->used_len : 0);
	EXPECT_IMG();
}

TEST_F_TIMEOUT(blk, sigterm_completes_ops_in_flight, 60)
{
	/* SIGTERM while the daemon holds fetched writes: it completes every one (status OK in the used ring) before exiting with status 0, and all the data is in the image. */
	NEED_SETUP();
	UP();
	sigterm_writes(_metadata, self, true, -1);
}

TEST_F_TIMEOUT(blk, sigterm_loses_no_kicked_request, 90)
{
	/* SIGTERM right after the guest's notifies reached the module (five daemons in a row, with the writes in one batch or in two a little apart): the 64 writes the guest made available are all completed with status OK before the daemon exits 0, none is silently dropped, and the data is in the image. */
	static const int split[] = { -1, 0, 200, 500, 1000 };
	unsigned int round;

	NEED_SETUP();
	for (round = 0; round < ARRAY_SIZE(split); round++) {
		UP();
		self->heap = HEAP_GPA;
		sigterm_writes(_metadata, self, false, split[round]);
	}
}

TEST_F(blk, daemon_restart)
{
	/* Stopping the daemon (exit 0) and starting it again with the same config works: the zone comes back, the device probes, and data written before the restart reads back. */
	struct breq *w, *r;
	int st;

	NEED_SETUP();
	UP();
	w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 3333, 8192);
	RUN_EXPECT(0, w, ST_OK, 1);
	if (w->done && *w->status == ST_OK)
		shadow_write(self, w);
	st = daemon_stop(self, SIGTERM);
	ASSERT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("first daemon: %s; stderr \"%s\"", wstatus_str(st), log_tail(self));
	EXPECT_IMG();

	UP();
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 3333, 8192);
	RUN_EXPECT(1, r, ST_OK, 8193);
	EXPECT_DATA(r);
	w = rq_new(_metadata, self, VIRTIO_BLK_T_OUT, 4444, 4096);
	RUN_EXPECT(0, w, ST_OK, 1);
	if (w->done && *w->status == ST_OK)
		shadow_write(self, w);
	EXPECT_IMG();
}

/* Run the daemon on a config it must refuse: exit 2, one line on stderr. */
static void expect_refused(struct __test_metadata *_metadata,
			   FIXTURE_DATA(blk) *self, const char *json,
			   const char *what)
{
	char errbuf[1024] = "";
	ssize_t n = 0;
	int st, fd, lines = 0, i;

	ASSERT_EQ(0, write_all(self->cfg, json, strlen(json)));
	ASSERT_EQ(0, daemon_spawn(self));
	st = daemon_wait_exit(self, STOP_MS);
	fd = open(self->log, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, errbuf, sizeof(errbuf) - 1);
		close(fd);
	}
	if (n < 0)
		n = 0;
	errbuf[n] = 0;
	for (i = 0; i < n; i++)
		lines += errbuf[i] == '\n';
	EXPECT_TRUE(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 2)
		TH_LOG("%s: %s (expected exit status 2); stderr \"%s\"", what,
		       wstatus_str(st), log_tail(self));
	EXPECT_EQ(1, lines) TH_LOG("%s: stderr should be one line: \"%s\"", what, log_tail(self));
	EXPECT_LT(1, n) TH_LOG("%s: empty error", what);
	EXPECT_TRUE(strstr(self->out, "ready") == NULL) TH_LOG("%s: stdout \"%s\"", what, self->out);
	TH_LOG("%s: %s", what, errbuf);
}

TEST_F(blk, bad_config_exits_2)
{
	/* A config naming a missing image, or that is not JSON, makes the daemon exit with status 2 and a one-line error; the daemon then starts fine with a good config. */
	char json[1024];
	struct breq *r;

	NEED_SETUP();
	unlink(self->extra);
	cfg_json(self, json, sizeof(json), self->extra, false);
	expect_refused(_metadata, self, json, "missing image");
	expect_refused(_metadata, self, "{\"zones\":[{\"id\":1,\n", "truncated JSON");

	UP();
	r = rq_new(_metadata, self, VIRTIO_BLK_T_IN, 0, 4096);
	RUN_EXPECT(0, r, ST_OK, 4097);
	EXPECT_DATA(r);
}

TEST_HARNESS_MAIN
