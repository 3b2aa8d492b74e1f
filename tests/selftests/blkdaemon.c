// SPDX-License-Identifier: GPL-2.0
/*
 * blkdaemon: the hvio_blk_* programs' daemon, guest rings and requests,
 * without the kselftest harness.  See blkdaemon.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkdaemon.h"

uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void fill_rand(uint64_t *s, void *buf, size_t len)
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

bool all_bytes(const void *buf, int c, size_t len)
{
	const uint8_t *p = buf;

	while (len--)
		if (*p++ != (uint8_t)c)
			return false;
	return true;
}

uint64_t fnv1a(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (len--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h;
}

int write_all(const char *path, const void *buf, size_t len)
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

long img_diff(const char *path, const uint8_t *exp, size_t len)
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

long long img_blocks(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : (long long)st.st_blocks;
}

void cfg_json(FIXTURE_DATA(blk) *self, char *buf, size_t len,
	      const char *img, bool ro)
{
	snprintf(buf, len,
		 "{\"zones\":[{\"id\":%u,\"memory_region\":[{\"zone0_ipa\":\"%#llx\","
		 "\"zonex_ipa\":\"%#llx\",\"size\":\"%#llx\"}],"
		 "\"devices\":[{\"type\":\"blk\",\"addr\":\"%#llx\",\"len\":\"0x200\","
		 "\"irq\":%u,\"img\":\"%s\",\"status\":\"enable\",\"queues\":%u,"
		 "\"queue_size\":%u,\"readonly\":%s,\"serial\":\"%s\"%s}]}]}\n",
		 ZONE_A,
		 (unsigned long long)fg_zone_phys(&self->fg, &self->zone),
		 (unsigned long long)GUEST_RAM, (unsigned long long)ZONE_SIZE,
		 (unsigned long long)MMIO_BASE, DEV_IRQ, img, NQ, QSIZE,
		 ro ? "true" : "false", SERIAL, self->dev_json);
}

int daemon_spawn(FIXTURE_DATA(blk) *self)
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

int daemon_wait_ready(FIXTURE_DATA(blk) *self, unsigned int ms)
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

int daemon_wait_exit(FIXTURE_DATA(blk) *self, unsigned int ms)
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

int daemon_stop(FIXTURE_DATA(blk) *self, int sig)
{
	if (self->pid > 0)
		kill(self->pid, sig);
	return daemon_wait_exit(self, STOP_MS);
}

const char *wstatus_str(int st)
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

const char *log_tail(FIXTURE_DATA(blk) *self)
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

void *gp(FIXTURE_DATA(blk) *self, uint64_t gpa)
{
	return fg_zone_ptr(&self->fg, &self->zone, gpa);
}

uint64_t galloc(FIXTURE_DATA(blk) *self, uint64_t size, uint64_t align)
{
	uint64_t a = (self->heap + align - 1) & ~(align - 1);

	if (a + size > GUEST_RAM + ZONE_SIZE)
		return 0;
	self->heap = a + size;
	return a;
}

uint16_t *used_event(struct gq *q)
{
	return &q->avail->ring[q->num];
}

uint16_t *avail_event(struct gq *q)
{
	return (uint16_t *)&q->used->ring[q->num];
}

uint16_t used_idx(struct gq *q)
{
	return le16toh(__atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE));
}

void gq_init(FIXTURE_DATA(blk) *self, unsigned int i)
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

int dget(struct gq *q)
{
	return q->nfree ? q->freel[--q->nfree] : -1;
}

static void dput(struct gq *q, uint16_t d)
{
	if (q->nfree < q->num)
		q->freel[q->nfree++] = d;
}

void dset(struct gq *q, uint16_t d, uint64_t addr, uint32_t len,
	  uint16_t flags, uint16_t next)
{
	q->desc[d].addr = htole64(addr);
	q->desc[d].len = htole32(len);
	q->desc[d].flags = htole16(flags);
	q->desc[d].next = htole16(next);
}

uint64_t cfg_rd(FIXTURE_DATA(blk) *self, size_t off, unsigned int w)
{
	return fg_read(&self->fg, self->v.cpu, ZONE_A,
		       MMIO_BASE + HVIO_MMIO_CONFIG_OFF + off, w);
}

bool payload_in(uint32_t type)
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

const char *rq_str(const struct breq *r)
{
	static char buf[160];

	snprintf(buf, sizeof(buf), "%s sector %llu len %u (queue %d head %u%s)",
		 type_str(r->type), (unsigned long long)r->sector, r->len,
		 r->q, r->head, r->indirect ? ", indirect" : "");
	return buf;
}

void rq_split(struct breq *r, unsigned int nseg)
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

void rq_cuts(struct breq *r, const uint32_t *out, const uint32_t *in)
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

int rq_segs(const struct breq *r, struct seg *s, int max)
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

void avail_add(FIXTURE_DATA(blk) *self, int qi, uint16_t head,
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

void publish(FIXTURE_DATA(blk) *self, int qi)
{
	struct gq *q = &self->q[qi];

	__atomic_store_n(&q->avail->idx, htole16(q->avail_idx), __ATOMIC_RELEASE);
}

void kick_now(FIXTURE_DATA(blk) *self, int qi)
{
	self->q[qi].kicked_idx = self->q[qi].avail_idx;
	fg_notify(&self->fg, self->v.cpu, ZONE_A,
		  MMIO_BASE + VIRTIO_MMIO_QUEUE_NOTIFY, qi);
	self->kicks++;
}

void kick(FIXTURE_DATA(blk) *self, int qi)
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

void reap(FIXTURE_DATA(blk) *self, int qi)
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

void pump(FIXTURE_DATA(blk) *self, unsigned int wait_ms)
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

const char *diag(FIXTURE_DATA(blk) *self)
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

int wait_done(FIXTURE_DATA(blk) *self, struct breq **rs, int n,
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

void shadow_write(FIXTURE_DATA(blk) *self, const struct breq *r)
{
	memcpy(self->shadow + r->sector * 512, r->data, r->len);
}

void shadow_zero(FIXTURE_DATA(blk) *self, uint64_t sector, uint64_t num)
{
	memset(self->shadow + sector * 512, 0, num * 512);
}

bool wait_irqs(FIXTURE_DATA(blk) *self, unsigned long base,
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

uint32_t wait_status_bit(FIXTURE_DATA(blk) *self, uint32_t bit,
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
