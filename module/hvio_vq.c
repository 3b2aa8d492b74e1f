// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: split-virtqueue engine (virtio 1.2, section 2.7).
 *
 * Runs in the daemon's syscall context on rings that live in zone RAM.
 * The guest can rewrite any of it at any moment, so:
 *  - each avail ring entry and each descriptor is read once into a local
 *    (READ_ONCE, or memcpy followed by a compiler barrier for descriptors,
 *    which may be unaligned inside an indirect table) and only the local
 *    is checked and used: no double fetch;
 *  - every index is bounded before it indexes anything, loops are caught
 *    by counting visits, and one chain costs at most num + MAX_INDIRECT
 *    descriptor reads;
 *  - the only guest memory written is the used ring, whose location was
 *    checked once at setup.
 * A bad chain is a guest error: it is counted, the head is given back
 * with length 0 and the queue goes on.  Only errors that leave no head to
 * give back (a bad head index, an avail index that jumped) stop the queue.
 */
#ifdef __KERNEL__
#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/limits.h>
#include <linux/nospec.h>
#include <linux/string.h>
#include <asm/barrier.h>
#include <asm/byteorder.h>
#else
#include <errno.h>
#include <string.h>

/*
 * Userspace stand-ins for the kernel primitives used below, on the
 * compiler's atomics: relaxed single accesses for READ_ONCE/WRITE_ONCE,
 * a signal fence as the compiler-only barrier.
 */
#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define barrier()		__atomic_signal_fence(__ATOMIC_SEQ_CST)
/* smp_rmb(): orders earlier loads before later loads. */
#define smp_rmb()		__atomic_thread_fence(__ATOMIC_ACQUIRE)
/* smp_mb(): orders everything, stores before later loads included. */
#define smp_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
/* smp_store_release(): earlier accesses are visible before the store. */
#define smp_store_release(p, v)	__atomic_store_n(p, v, __ATOMIC_RELEASE)
#define array_index_nospec(i, n) (i)
#define unlikely(x)		__builtin_expect(!!(x), 0)
#define U32_MAX			((u32)~0U)
#endif

#include "hvio_vq.h"

/*
 * Ring alignment (virtio 1.2, 2.7): the descriptor table 16, the driver
 * area 2 and the device area 4 bytes.  The ring indices are accessed with
 * single loads and a store-release, which must not straddle alignment.
 */
#define HVIO_VQ_ALIGN_DESC	16
#define HVIO_VQ_ALIGN_AVAIL	2
#define HVIO_VQ_ALIGN_USED	4

static enum hvio_vq_err hvio_vq_fail(struct hvio_vq *vq, enum hvio_vq_err err)
{
	vq->errors[err]++;
	return err;
}

static void *hvio_vq_map(struct hvio_vq *vq, u64 gpa, u64 len)
{
	/* map() must refuse these too; do not depend on it for safety. */
	if (!len || gpa + len < gpa)
		return NULL;
	return vq->mem.map(vq->mem.ctx, gpa, len);
}

/**
 * hvio_vq_setup() - attach to a split ring the driver made ready
 * @vq: queue state, fully (re)initialised; error counters start at 0
 * @mem: guest memory translation, copied into @vq
 * @num: queue size: a power of two, at most HVIO_VQ_MAX_NUM
 * @desc: guest address of the descriptor table (16 * @num bytes)
 * @avail: guest address of the driver area (6 + 2 * @num bytes)
 * @used: guest address of the device area (6 + 8 * @num bytes)
 * @event_idx: VIRTIO_F_EVENT_IDX was negotiated
 * @indirect: VIRTIO_F_INDIRECT_DESC was negotiated
 *
 * The three areas are mapped once here, with the event index fields
 * included whether or not EVENT_IDX is used, so that later accesses need
 * no check beyond the ring index mask.
 *
 * Return: 0, or -EINVAL if @num is invalid or an area is misaligned or not
 * inside zone RAM.
 */
int hvio_vq_setup(struct hvio_vq *vq, const struct hvio_vq_mem *mem, u16 num,
		  u64 desc, u64 avail, u64 used, bool event_idx,
		  bool indirect)
{
	memset(vq, 0, sizeof(*vq));
	if (!mem || !mem->map)
		return -EINVAL;
	if (!num || (num & (num - 1)) || num > HVIO_VQ_MAX_NUM)
		return -EINVAL;
	if ((desc % HVIO_VQ_ALIGN_DESC) || (avail % HVIO_VQ_ALIGN_AVAIL) ||
	    (used % HVIO_VQ_ALIGN_USED))
		return -EINVAL;

	vq->mem = *mem;
	vq->desc = hvio_vq_map(vq, desc, 16ULL * num);
	vq->avail = hvio_vq_map(vq, avail, 6 + 2ULL * num);
	vq->used = hvio_vq_map(vq, used, 6 + 8ULL * num);
	if (!vq->desc || !vq->avail || !vq->used) {
		memset(vq, 0, sizeof(*vq));
		return -EINVAL;
	}
	vq->num = num;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	return 0;
}

/**
 * hvio_vq_avail() - how many new heads the driver made available
 * @vq: queue set up by hvio_vq_setup()
 *
 * Reads avail->idx once.  The driver can never have more than @num heads
 * outstanding, so a larger distance from what we consumed is a corrupt or
 * hostile ring: the queue is marked broken and the caller should set
 * DEVICE_NEEDS_RESET.
 *
 * Return: the number of heads hvio_vq_pop() can take, or -EIO if the
 * queue is broken.
 */
int hvio_vq_avail(struct hvio_vq *vq)
{
	u16 idx, n;

	if (unlikely(vq->broken))
		return -EIO;
	idx = le16_to_cpu(READ_ONCE(vq->avail->idx));
	n = (u16)(idx - vq->last_avail);
	if (unlikely(n > vq->num)) {
		vq->broken = true;
		hvio_vq_fail(vq, HVIO_VQ_E_AVAIL_JUMP);
		return -EIO;
	}
	vq->avail_idx = idx;
	/*
	 * Pairs with the driver's write barrier between filling avail->ring
	 * (and the descriptors) and bumping avail->idx: read no ring entry
	 * or descriptor before the index that published it.
	 */
	smp_rmb();
	return n;
}

/*
 * One snapshot of a descriptor.  The table may be an unaligned indirect
 * table, so copy it whole; the compiler barrier stops the compiler from
 * re-reading guest memory in place of the local copy.
 */
static void hvio_vq_read_desc(const struct hvio_vq_desc *src,
			      struct hvio_vq_desc *dst)
{
	memcpy(dst, src, sizeof(*dst));
	barrier();
}

/* Add one buffer to the chain after checking it. */
static enum hvio_vq_err hvio_vq_add_seg(struct hvio_vq *vq, u64 gpa, u32 len,
					bool write, struct hvio_vq_seg *segs,
					u16 max_segs, struct hvio_vq_chain *out)
{
	u64 total;
	void *va;

	if (!len)
		return HVIO_VQ_E_ZERO_LEN;
	va = hvio_vq_map(vq, gpa, len);
	if (!va)
		return HVIO_VQ_E_ADDR;
	/* 2.7.4.2: device-readable buffers come before device-writable. */
	if (!write && out->in_bytes)
		return HVIO_VQ_E_ORDER;
	if (out->nr_segs >= max_segs)
		return HVIO_VQ_E_SEGS;
	/* Used lengths are 32 bits: keep both sums and their total in u32. */
	total = (u64)out->out_bytes + out->in_bytes + len;
	if (total > U32_MAX)
		return HVIO_VQ_E_TOO_BIG;

	segs[out->nr_segs].gpa = gpa;
	segs[out->nr_segs].len = len;
	segs[out->nr_segs].write = write;
	segs[out->nr_segs].va = va;
	out->nr_segs++;
	if (write)
		out->in_bytes += len;
	else
		out->out_bytes += len;
	return HVIO_VQ_OK;
}

/*
 * Walk the chain starting at @head.  One loop serves the direct table and
 * at most one indirect table: an INDIRECT descriptor cannot carry NEXT, so
 * it ends the direct part and the walk continues inside its table, which
 * may not contain another.  @visits counts descriptors read in the current
 * table; more than the table holds means the chain loops.
 */
static enum hvio_vq_err hvio_vq_walk(struct hvio_vq *vq, u16 head,
				     struct hvio_vq_seg *segs, u16 max_segs,
				     struct hvio_vq_chain *out)
{
	const struct hvio_vq_desc *table = vq->desc;
	u32 count = vq->num;
	bool in_indirect = false;
	u32 visits = 0;
	u32 i = head;
	enum hvio_vq_err err;

	for (;;) {
		struct hvio_vq_desc d;
		u16 flags;
		u64 addr;
		u32 len;

		if (unlikely(++visits > count))
			return HVIO_VQ_E_LOOP;
		i = array_index_nospec(i, count);
		hvio_vq_read_desc(&table[i], &d);
		flags = le16_to_cpu(d.flags);
		addr = le64_to_cpu(d.addr);
		len = le32_to_cpu(d.len);

		if (flags & HVIO_VQ_DESC_F_INDIRECT) {
			if (in_indirect)
				return HVIO_VQ_E_NESTED_INDIRECT;
			if (!vq->indirect)
				return HVIO_VQ_E_INDIRECT_OFF;
			if (flags & HVIO_VQ_DESC_F_NEXT)
				return HVIO_VQ_E_INDIRECT_NEXT;
			if (!len || len % sizeof(d) ||
			    len / sizeof(d) > HVIO_VQ_MAX_INDIRECT)
				return HVIO_VQ_E_INDIRECT_LEN;
			table = hvio_vq_map(vq, addr, len);
			if (!table)
				return HVIO_VQ_E_ADDR;
			count = len / sizeof(d);
			in_indirect = true;
			visits = 0;
			i = 0;
			continue;
		}

		err = hvio_vq_add_seg(vq, addr, len,
				      flags & HVIO_VQ_DESC_F_WRITE, segs,
				      max_segs, out);
		if (err)
			return err;
		if (!(flags & HVIO_VQ_DESC_F_NEXT))
			return HVIO_VQ_OK;
		i = le16_to_cpu(d.next);
		if (unlikely(i >= count))
			return HVIO_VQ_E_NEXT;
	}
}

/**
 * hvio_vq_pop() - take the next available chain and check all of it
 * @vq: queue set up by hvio_vq_setup()
 * @segs: array the buffers are stored in
 * @max_segs: capacity of @segs; a longer chain fails with HVIO_VQ_E_SEGS
 * @out: the head, the number of segments and the byte counts
 *
 * Refreshes avail->idx itself when everything seen so far was consumed.
 * On HVIO_VQ_OK, @out and @segs describe the chain.  On an HVIO_VQ_E_*
 * error other than E_HEAD and E_AVAIL_JUMP the head has been consumed:
 * @out->head is valid, @out->nr_segs is 0, and the caller completes the
 * head with a used length of 0.  E_HEAD and E_AVAIL_JUMP leave nothing to
 * complete and mark the queue broken.
 *
 * Return: HVIO_VQ_OK, HVIO_VQ_EMPTY, HVIO_VQ_BROKEN or an HVIO_VQ_E_* error
 * (counted in @vq->errors).
 */
enum hvio_vq_err hvio_vq_pop(struct hvio_vq *vq, struct hvio_vq_seg *segs,
			     u16 max_segs, struct hvio_vq_chain *out)
{
	enum hvio_vq_err err;
	u16 head;

	out->head = 0;
	out->nr_segs = 0;
	out->out_bytes = 0;
	out->in_bytes = 0;
	if (unlikely(vq->broken))
		return HVIO_VQ_BROKEN;
	if (vq->last_avail == vq->avail_idx) {
		int n = hvio_vq_avail(vq);

		if (n < 0)
			return HVIO_VQ_E_AVAIL_JUMP;
		if (!n)
			return HVIO_VQ_EMPTY;
	}

	head = le16_to_cpu(READ_ONCE(vq->avail->ring[vq->last_avail &
						     (vq->num - 1)]));
	if (unlikely(head >= vq->num)) {
		/* Not a valid used ring id: nothing can complete it. */
		vq->broken = true;
		return hvio_vq_fail(vq, HVIO_VQ_E_HEAD);
	}
	vq->last_avail++;
	out->head = head;

	err = hvio_vq_walk(vq, head, segs, max_segs, out);
	if (err) {
		out->nr_segs = 0;
		out->out_bytes = 0;
		out->in_bytes = 0;
		return hvio_vq_fail(vq, err);
	}
	return HVIO_VQ_OK;
}

/**
 * hvio_vq_add_used() - fill one used ring entry without publishing it
 * @vq: queue set up by hvio_vq_setup()
 * @head: head returned by hvio_vq_pop()
 * @len: bytes the device wrote into the chain's writable buffers
 *
 * Batches end with hvio_vq_publish_used().  The entry written is chosen by
 * our own used_idx, never by anything read from the guest.
 */
void hvio_vq_add_used(struct hvio_vq *vq, u16 head, u32 len)
{
	struct hvio_vq_used_elem *e;

	e = &vq->used->ring[vq->used_idx & (vq->num - 1)];
	WRITE_ONCE(e->id, cpu_to_le32(head));
	WRITE_ONCE(e->len, cpu_to_le32(len));
	vq->used_idx++;
}

/**
 * hvio_vq_publish_used() - make the entries added so far visible
 * @vq: queue set up by hvio_vq_setup()
 */
void hvio_vq_publish_used(struct hvio_vq *vq)
{
	/*
	 * Release: the used entries (and the data written into the guest's
	 * buffers) must be visible before the index that hands them over.
	 */
	smp_store_release(&vq->used->idx, cpu_to_le16(vq->used_idx));
}

/**
 * hvio_vq_push_used() - complete one chain and publish it
 * @vq: queue set up by hvio_vq_setup()
 * @head: head returned by hvio_vq_pop()
 * @len: bytes the device wrote into the chain's writable buffers
 */
void hvio_vq_push_used(struct hvio_vq *vq, u16 head, u32 len)
{
	hvio_vq_add_used(vq, head, len);
	hvio_vq_publish_used(vq);
}

/**
 * hvio_vq_need_event() - the spec's vring_need_event()
 * @event_idx: the other side's event index
 * @new_idx: index after the update
 * @old_idx: index before the update
 *
 * Return: true if @event_idx lies in [@old_idx, @new_idx) modulo 2^16,
 * i.e. the update moved the index past the entry the other side asked to
 * be told about (virtio 1.2, 2.7.10).
 */
bool hvio_vq_need_event(u16 event_idx, u16 new_idx, u16 old_idx)
{
	return (u16)(new_idx - event_idx - 1) < (u16)(new_idx - old_idx);
}

/**
 * hvio_vq_need_interrupt() - should the guest be interrupted now
 * @vq: queue set up by hvio_vq_setup()
 *
 * Call after hvio_vq_publish_used().  With EVENT_IDX it decides over the
 * entries published since the previous call; otherwise it honours
 * VRING_AVAIL_F_NO_INTERRUPT.
 *
 * Return: true if the caller must inject the queue interrupt.
 */
bool hvio_vq_need_interrupt(struct hvio_vq *vq)
{
	u16 old, event;

	/*
	 * Full barrier: our used->idx store must be visible to the driver
	 * before we read its used_event or flags, or we could miss the
	 * driver re-enabling interrupts and both sides would wait.
	 */
	smp_mb();
	if (!vq->event_idx) {
		/* Nothing new in the used ring (net RX gave buffers back). */
		if (vq->used_idx == vq->signalled_used)
			return false;
		vq->signalled_used = vq->used_idx;
		return !(le16_to_cpu(READ_ONCE(vq->avail->flags)) &
			 HVIO_VQ_AVAIL_F_NO_INTERRUPT);
	}

	/*
	 * Unlike vhost, which cannot know what was signalled before it took
	 * over a ring, we attach at a reset: the driver has seen nothing, so
	 * signalled_used = 0 is exact and used_event is honoured from the
	 * first completion on (virtio 1.2, 2.7.10: SHOULD NOT interrupt).
	 */
	old = vq->signalled_used;
	vq->signalled_used = vq->used_idx;
	event = le16_to_cpu(READ_ONCE(vq->avail->ring[vq->num]));
	return hvio_vq_need_event(event, vq->used_idx, old);
}

/**
 * hvio_vq_unpop() - give back the chain hvio_vq_pop() just took
 * @vq: queue whose last hvio_vq_pop() consumed a head
 *
 * The next hvio_vq_pop() returns the same avail ring entry again (read
 * again from guest memory: it is checked again like any other).
 */
void hvio_vq_unpop(struct hvio_vq *vq)
{
	vq->last_avail--;
}

/**
 * hvio_vq_disable_notify() - the device is busy: kicks are not needed
 * @vq: queue set up by hvio_vq_setup()
 *
 * Without EVENT_IDX, sets VRING_USED_F_NO_NOTIFY (a hint: the driver may
 * still kick).  With EVENT_IDX avail_event simply stays behind, which
 * suppresses kicks by itself.
 */
void hvio_vq_disable_notify(struct hvio_vq *vq)
{
	if (vq->event_idx || vq->no_notify)
		return;
	WRITE_ONCE(vq->used->flags, cpu_to_le16(HVIO_VQ_USED_F_NO_NOTIFY));
	vq->no_notify = true;
}

/**
 * hvio_vq_suppress_notify() - the device is polling: no kick wanted at all
 * @vq: queue set up by hvio_vq_setup()
 *
 * Unlike hvio_vq_disable_notify() this also works right after
 * hvio_vq_enable_notify(): with EVENT_IDX avail_event goes one behind
 * last_avail, which no index the driver can publish before we consume
 * more crosses; without it, VRING_USED_F_NO_NOTIFY.  The caller must end
 * the suppression with hvio_vq_enable_notify() and its re-check.
 */
void hvio_vq_suppress_notify(struct hvio_vq *vq)
{
	if (vq->event_idx)
		WRITE_ONCE(*(__le16 *)&vq->used->ring[vq->num],
			   cpu_to_le16((u16)(vq->last_avail - 1)));
	else
		hvio_vq_disable_notify(vq);
}

/**
 * hvio_vq_enable_notify() - ask for a kick at the next new buffer
 * @vq: queue set up by hvio_vq_setup()
 *
 * With EVENT_IDX, writes avail_event = last_avail; without it, clears
 * VRING_USED_F_NO_NOTIFY.  A buffer the driver added before seeing the
 * change sends no kick, so the caller must call hvio_vq_avail() afterwards
 * and keep going if it is not 0 (vhost's enable_notify re-check).
 */
void hvio_vq_enable_notify(struct hvio_vq *vq)
{
	if (vq->event_idx) {
		/* avail_event is the __le16 right after the used entries. */
		WRITE_ONCE(*(__le16 *)&vq->used->ring[vq->num],
			   cpu_to_le16(vq->last_avail));
	} else if (vq->no_notify) {
		WRITE_ONCE(vq->used->flags, 0);
		vq->no_notify = false;
	} else {
		return;
	}
	/*
	 * Full barrier: the change must be visible before the caller
	 * re-reads avail->idx, or a buffer added in between is missed.
	 */
	smp_mb();
}
