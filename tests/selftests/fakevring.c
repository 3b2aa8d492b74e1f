// SPDX-License-Identifier: GPL-2.0
/*
 * fakevring: a guest driver's split virtqueue.  See fakevring.h.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "fakevring.h"

static uint16_t *used_event_p(struct fv_ring *r)
{
	return &r->avail->ring[r->num];
}

static uint16_t *avail_event_p(struct fv_ring *r)
{
	return (uint16_t *)&r->used->ring[r->num];
}

void fv_init(struct fv_ring *r, uint16_t num, void *desc, void *avail,
	     void *used, bool event_idx)
{
	unsigned int d;

	memset(r, 0, sizeof(*r));
	r->num = num;
	r->event_idx = event_idx;
	r->desc = desc;
	r->avail = avail;
	r->used = used;
	r->nfree = num;
	for (d = 0; d < num; d++)
		r->freel[d] = num - 1 - d;
}

static int dget(struct fv_ring *r)
{
	return r->nfree ? r->freel[--r->nfree] : -1;
}

static void dput(struct fv_ring *r, uint16_t d)
{
	if (r->nfree < r->num)
		r->freel[r->nfree++] = d;
}

static void dset(struct vring_desc *t, uint16_t d, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	t[d].addr = htole64(addr);
	t[d].len = htole32(len);
	t[d].flags = htole16(flags);
	t[d].next = htole16(next);
}

static void avail_put(struct fv_ring *r, uint16_t head, uint16_t ndesc,
		      void *token)
{
	r->ndesc[head] = ndesc;
	r->token[head] = token ? token : (void *)r;
	r->avail->ring[r->avail_idx & (r->num - 1)] = htole16(head);
	r->avail_idx++;
}

int fv_add_flags(struct fv_ring *r, const struct fv_buf *bufs, unsigned int n,
		 const uint16_t *extra_flags, void *token)
{
	uint16_t d[FV_MAX_CHAIN];
	unsigned int i;
	uint16_t fl;

	if (!n || n > FV_MAX_CHAIN)
		return -EINVAL;
	if (r->nfree < n)
		return -ENOSPC;
	for (i = 0; i < n; i++)
		d[i] = dget(r);
	for (i = 0; i < n; i++) {
		fl = (bufs[i].write ? VRING_DESC_F_WRITE : 0) |
		     (extra_flags ? extra_flags[i] : 0) |
		     (i + 1 < n ? VRING_DESC_F_NEXT : 0);
		dset(r->desc, d[i], bufs[i].gpa, bufs[i].len, fl,
		     i + 1 < n ? d[i + 1] : 0);
	}
	avail_put(r, d[0], n, token);
	return d[0];
}

int fv_add(struct fv_ring *r, const struct fv_buf *bufs, unsigned int n,
	   struct vring_desc *table, uint64_t table_gpa, void *token)
{
	unsigned int i;
	int d;

	if (!table)
		return fv_add_flags(r, bufs, n, NULL, token);
	if (!n || n > FV_MAX_CHAIN)
		return -EINVAL;
	for (i = 0; i < n; i++)
		dset(table, i, bufs[i].gpa, bufs[i].len,
		     (bufs[i].write ? VRING_DESC_F_WRITE : 0) |
		     (i + 1 < n ? VRING_DESC_F_NEXT : 0), i + 1 < n ? i + 1 : 0);
	d = dget(r);
	if (d < 0)
		return -ENOSPC;
	dset(r->desc, d, table_gpa, 16 * n, VRING_DESC_F_INDIRECT, 0);
	avail_put(r, d, 1, token);
	return d;
}

void fv_publish(struct fv_ring *r)
{
	__atomic_store_n(&r->avail->idx, htole16(r->avail_idx), __ATOMIC_RELEASE);
}

bool fv_kick_prepare(struct fv_ring *r)
{
	uint16_t old = r->kicked_idx, new = r->avail_idx;
	bool need;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (r->event_idx)
		need = vring_need_event(le16toh(__atomic_load_n(avail_event_p(r),
							       __ATOMIC_RELAXED)),
					new, old);
	else
		need = !(le16toh(__atomic_load_n(&r->used->flags, __ATOMIC_RELAXED)) &
			 VRING_USED_F_NO_NOTIFY);
	r->kicked_idx = new;
	if (need)
		r->kicks_needed++;
	else
		r->kicks_skipped++;
	return need;
}

uint16_t fv_used_idx(const struct fv_ring *r)
{
	return le16toh(__atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE));
}

/* Return a chain's descriptors to the free list, following our own links. */
static void free_chain(struct fv_ring *r, uint16_t head)
{
	uint16_t d = head, fl;
	unsigned int i;

	for (i = 0; i < r->ndesc[head]; i++) {
		fl = le16toh(r->desc[d].flags);
		dput(r, d);
		if (i + 1 < r->ndesc[head]) {
			if (!(fl & VRING_DESC_F_NEXT)) {
				r->bad_chain++;
				return;
			}
			d = le16toh(r->desc[d].next) & (r->num - 1);
		}
	}
}

int fv_get_used(struct fv_ring *r, uint32_t *len, void **token)
{
	struct vring_used_elem e;
	uint32_t id;

	for (;;) {
		if (r->last_used == fv_used_idx(r))
			return 0;
		e = r->used->ring[r->last_used & (r->num - 1)];
		r->last_used++;
		id = le32toh(e.id);
		if (id >= r->num || !r->token[id]) {
			r->bad_used++;
			continue;
		}
		if (token)
			*token = r->token[id] == (void *)r ? NULL : r->token[id];
		if (len)
			*len = le32toh(e.len);
		r->token[id] = NULL;
		free_chain(r, id);
		return 1;
	}
}

void fv_enable_cb(struct fv_ring *r)
{
	if (r->event_idx)
		__atomic_store_n(used_event_p(r), htole16(r->last_used),
				 __ATOMIC_RELEASE);
}

void fv_disable_cb(struct fv_ring *r)
{
	if (r->event_idx)
		__atomic_store_n(used_event_p(r),
				 htole16((uint16_t)(r->last_used + 0x8000)),
				 __ATOMIC_RELEASE);
}

unsigned int fv_inflight(const struct fv_ring *r)
{
	unsigned int i, n = 0;

	for (i = 0; i < r->num; i++)
		n += r->token[i] != NULL;
	return n;
}
