/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fakevring: the guest driver's half of one split virtqueue, in zone RAM
 * the test maps through /dev/hvio-sim.  It does what Linux's virtio_ring.c
 * does for a driver, and nothing the device should do: free descriptor
 * list, chains (direct or through an indirect table), avail ring
 * publication, virtqueue_kick_prepare() with EVENT_IDX or NO_NOTIFY, used
 * ring harvesting and used_event re-arming.
 *
 * Used entries naming a head that was not posted are counted (bad_used),
 * never followed: the device is under test.  Nothing here blocks.
 */
#ifndef HVIO_FAKEVRING_H
#define HVIO_FAKEVRING_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

#define FV_MAX_NUM		1024	/* largest queue the helper drives */
#define FV_MAX_CHAIN		80	/* descriptors of one built chain */

/* One buffer of a chain: guest physical address, length, device-writable. */
struct fv_buf {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

struct fv_ring {
	uint16_t num;
	bool event_idx;			/* VIRTIO_RING_F_EVENT_IDX negotiated */
	struct vring_desc *desc;	/* host pointers into zone RAM */
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;		/* shadow of avail->idx */
	uint16_t kicked_idx;		/* avail_idx at the last kick decision */
	uint16_t last_used;
	uint16_t nfree;
	unsigned long bad_used;		/* used ids that were not in flight */
	unsigned long kicks_needed;	/* fv_kick_prepare() said yes */
	unsigned long kicks_skipped;	/* ... said no */
	uint16_t freel[FV_MAX_NUM];
	uint16_t ndesc[FV_MAX_NUM];	/* by head: descriptors of the chain */
	unsigned long bad_chain;	/* descriptor table changed under us */
	void *token[FV_MAX_NUM];	/* by head; NULL: not in flight */
};

/*
 * Attach to the rings at the given host pointers (zero them first: a
 * fresh ring after a probe).  num must be a power of two <= FV_MAX_NUM.
 */
void fv_init(struct fv_ring *r, uint16_t num, void *desc, void *avail,
	     void *used, bool event_idx);

/* Descriptors free. */
static inline unsigned int fv_free(const struct fv_ring *r)
{
	return r->nfree;
}

/*
 * Build a chain of n buffers and put its head in the next avail slot (not
 * yet visible to the device: fv_publish()).  With table != NULL the
 * buffers go into that indirect table (host pointer table, guest address
 * table_gpa, room for n entries) and the ring holds one INDIRECT
 * descriptor.  token (non-NULL) comes back from fv_get_used().
 * Returns the head, or -ENOSPC (not enough free descriptors) / -EINVAL.
 */
int fv_add(struct fv_ring *r, const struct fv_buf *bufs, unsigned int n,
	   struct vring_desc *table, uint64_t table_gpa, void *token);

/*
 * Like fv_add but with raw descriptor flags for each buffer (write bit
 * taken from bufs[i].write, NEXT added by the helper): lets tests build
 * chains the device must refuse.
 */
int fv_add_flags(struct fv_ring *r, const struct fv_buf *bufs, unsigned int n,
		 const uint16_t *extra_flags, void *token);

/* Make every added head visible (avail->idx, release). */
void fv_publish(struct fv_ring *r);

/*
 * virtqueue_kick_prepare(): does the device want a notification for what
 * was published since the last call?  (avail_event with EVENT_IDX, else
 * VRING_USED_F_NO_NOTIFY.)
 */
bool fv_kick_prepare(struct fv_ring *r);

/* used->idx as the device published it (acquire). */
uint16_t fv_used_idx(const struct fv_ring *r);

/*
 * Take the next used entry: 1 with *len and *token filled in (its
 * descriptors freed), 0 when none is pending.
 */
int fv_get_used(struct fv_ring *r, uint32_t *len, void **token);

/* virtqueue_enable_cb(): with EVENT_IDX, used_event = last_used. */
void fv_enable_cb(struct fv_ring *r);
/* With EVENT_IDX, put used_event far away (no interrupts wanted). */
void fv_disable_cb(struct fv_ring *r);

/* Heads in flight (added, not yet used). */
unsigned int fv_inflight(const struct fv_ring *r);

#endif /* HVIO_FAKEVRING_H */
