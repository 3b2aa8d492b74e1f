/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hvio: the split-virtqueue engine (virtio 1.2, section 2.7).
 *
 * Parses the available ring and descriptor chains a guest wrote into its
 * RAM and fills the used ring, vhost style.  The guest is hostile and may
 * rewrite its rings while we read them, so every ring entry and descriptor
 * is read exactly once into a local copy and only that copy is used; every
 * index, length and address is checked; the only guest memory ever written
 * is the used ring.  No locks, no allocation: the caller serialises all
 * calls on one queue.  Like hvio_mmio.c, the file also builds in userspace
 * (without __KERNEL__) for the unit tests and the fuzzer.
 */
#ifndef _HVIO_VQ_H
#define _HVIO_VQ_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

/* The kernel's byte-order helpers, for the userspace build. */
#ifndef le16_to_cpu
#define le16_to_cpu(x)	le16toh(x)
#define le32_to_cpu(x)	le32toh(x)
#define le64_to_cpu(x)	le64toh(x)
#define cpu_to_le16(x)	htole16(x)
#define cpu_to_le32(x)	htole32(x)
#define cpu_to_le64(x)	htole64(x)
#endif
#endif

/* Split ring flags (virtio 1.2, 2.7.5, 2.7.6, 2.7.8). */
#define HVIO_VQ_DESC_F_NEXT		1
#define HVIO_VQ_DESC_F_WRITE		2
#define HVIO_VQ_DESC_F_INDIRECT		4
#define HVIO_VQ_AVAIL_F_NO_INTERRUPT	1
#define HVIO_VQ_USED_F_NO_NOTIFY	1

/* Largest queue size a split ring may have (virtio 1.2, 2.7). */
#define HVIO_VQ_MAX_NUM			32768

/*
 * Largest indirect table we walk, in descriptors.  The spec sets no limit
 * (a table may be longer than the queue); QEMU refuses more than its
 * VIRTQUEUE_MAX_SIZE of 1024 and Linux drivers stay far below, so this
 * bounds the work one chain can cost without refusing real drivers.
 */
#define HVIO_VQ_MAX_INDIRECT		1024

/* Ring layouts, little endian in guest memory (virtio 1.2, 2.7.5-2.7.8). */
struct hvio_vq_desc {
	__le64 addr;
	__le32 len;
	__le16 flags;
	__le16 next;
};

struct hvio_vq_avail_ring {
	__le16 flags;
	__le16 idx;
	__le16 ring[];		/* num entries, then used_event */
};

struct hvio_vq_used_elem {
	__le32 id;
	__le32 len;
};

struct hvio_vq_used_ring {
	__le16 flags;
	__le16 idx;
	struct hvio_vq_used_elem ring[];	/* num entries, then avail_event */
};

/*
 * Guest memory.  map() translates [gpa, gpa + len) into a host pointer, or
 * returns NULL when len is 0, the range wraps, or it is not entirely inside
 * one RAM region of the zone.  It must not sleep if the caller cannot.
 */
struct hvio_vq_mem {
	void *(*map)(void *ctx, u64 gpa, u64 len);
	void *ctx;
};

/* One buffer segment of a chain; write: the device writes into it. */
struct hvio_vq_seg {
	u64 gpa;
	u32 len;
	u32 write;
	void *va;	/* map()'s pointer to all @len bytes: no second lookup */
};

/*
 * A popped chain.  The segments are in the caller's array passed to
 * hvio_vq_pop(): device-readable ones first, then device-writable ones.
 */
struct hvio_vq_chain {
	u16 head;
	u16 nr_segs;
	u32 out_bytes;		/* sum of device-readable lengths */
	u32 in_bytes;		/* sum of device-writable lengths */
};

/*
 * Results of hvio_vq_pop().  HVIO_VQ_EMPTY and HVIO_VQ_BROKEN are states,
 * not guest errors, and are not counted.  Every HVIO_VQ_E_* is a guest
 * error counted in hvio_vq.errors[].  After E_HEAD or E_AVAIL_JUMP the
 * queue is broken (no head to complete; the device needs a reset); after
 * any other error the head was consumed and must be completed with a used
 * length of 0.
 */
enum hvio_vq_err {
	HVIO_VQ_OK = 0,
	HVIO_VQ_EMPTY,			/* no new buffer */
	HVIO_VQ_BROKEN,			/* queue stopped by an earlier error */
	HVIO_VQ_E_HEAD,			/* avail ring entry >= num */
	HVIO_VQ_E_NEXT,			/* next >= num (or table entries) */
	HVIO_VQ_E_LOOP,			/* more descriptors than the table */
	HVIO_VQ_E_NESTED_INDIRECT,	/* INDIRECT inside an indirect table */
	HVIO_VQ_E_INDIRECT_LEN,		/* 0, not 16*n, or > MAX_INDIRECT */
	HVIO_VQ_E_INDIRECT_NEXT,	/* INDIRECT together with NEXT */
	HVIO_VQ_E_INDIRECT_OFF,		/* INDIRECT without INDIRECT_DESC */
	HVIO_VQ_E_ZERO_LEN,		/* buffer of length 0 */
	HVIO_VQ_E_ADDR,			/* buffer or table outside zone RAM */
	HVIO_VQ_E_ORDER,		/* device-readable after writable */
	HVIO_VQ_E_SEGS,			/* more buffers than max_segs */
	HVIO_VQ_E_TOO_BIG,		/* chain longer than 4 GiB - 1 */
	HVIO_VQ_E_AVAIL_JUMP,		/* avail->idx moved more than num */
	HVIO_VQ_E_MAX
};

struct hvio_vq {
	/* Fixed by hvio_vq_setup(). */
	u16 num;
	bool event_idx;
	bool indirect;
	struct hvio_vq_mem mem;
	struct hvio_vq_desc *desc;
	struct hvio_vq_avail_ring *avail;
	struct hvio_vq_used_ring *used;

	/* Device-side state; the guest never sees these directly. */
	u16 avail_idx;		/* avail->idx as last read */
	u16 last_avail;		/* next avail ring entry to pop */
	u16 used_idx;		/* next used ring entry to fill */
	u16 signalled_used;	/* used_idx at the last interrupt decision */
	bool broken;
	bool no_notify;		/* VRING_USED_F_NO_NOTIFY is set */
	u64 errors[HVIO_VQ_E_MAX];
};

int hvio_vq_setup(struct hvio_vq *vq, const struct hvio_vq_mem *mem, u16 num,
		  u64 desc, u64 avail, u64 used, bool event_idx,
		  bool indirect);
int hvio_vq_avail(struct hvio_vq *vq);
enum hvio_vq_err hvio_vq_pop(struct hvio_vq *vq, struct hvio_vq_seg *segs,
			     u16 max_segs, struct hvio_vq_chain *out);
void hvio_vq_add_used(struct hvio_vq *vq, u16 head, u32 len);
void hvio_vq_publish_used(struct hvio_vq *vq);
void hvio_vq_push_used(struct hvio_vq *vq, u16 head, u32 len);
bool hvio_vq_need_interrupt(struct hvio_vq *vq);
void hvio_vq_unpop(struct hvio_vq *vq);
void hvio_vq_disable_notify(struct hvio_vq *vq);
void hvio_vq_enable_notify(struct hvio_vq *vq);
void hvio_vq_suppress_notify(struct hvio_vq *vq);
bool hvio_vq_need_event(u16 event_idx, u16 new_idx, u16 old_idx);

#endif /* _HVIO_VQ_H */
