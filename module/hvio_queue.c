// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: virtqueues between the guest and the daemon.
 *
 * The guest's split rings are parsed here, in the daemon's syscall context
 * (HVIO_DEV_QUEUE_RUN), like vhost does in its worker: chains become op
 * slots the daemon reads from a read-only mapping, or are finished in the
 * kernel (bad requests, answers the device type gives itself).  What a
 * chain means is the device type's business (struct hvio_devtype, one per
 * type, reached through dev->type).  Completions come back through the same
 * ioctl, batched: one used-index update and at most one interrupt per call.
 *
 * Reset safety: a device reset (Status = 0, answered in the bridge IRQ
 * path) bumps the device generation.  Everything that writes guest memory
 * (status bytes, used ring, avail_event) checks under dev->lock that the
 * generation the queue was attached in is still current, so nothing is
 * written into rings the guest has taken back; ops of an old generation
 * complete as "stale" and are dropped; the guest's reset is acknowledged
 * only once those are back (hvio_dev.c, reset drain), so no old op writes
 * into memory the guest already reuses.  A QueueReady = 0 does the same for
 * one queue: the register file moves the queue's ready epoch on, the
 * engine stops touching the old rings, attaches to the new ones at the
 * next QueueReady = 1, and drops completions of ops fetched before.
 *
 * Every dev->lock hold here writes back at most HVIO_QUEUE_HOLD_ENTRIES
 * entries and checks the generation again: the lock is taken with
 * interrupts off and the bridge handler answers every register access of
 * every zone behind it, so a guest that fills a 32768-entry ring must not
 * stall the other vCPUs for the whole ring.
 */
#include <linux/eventfd.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "hvio_compat.h"
#include "hvio_internal.h"
#include "hvio_trace.h"

static void *hvio_queue_mem_map(void *ctx, u64 gpa, u64 len)
{
	return hvio_zone_map(ctx, gpa, len);
}

/**
 * hvio_queues_alloc() - allocate queue state and op slots for a new device
 * @dev: device with mmio identity filled in
 *
 * Return: 0 or -ENOMEM.
 */
int hvio_queues_alloc(struct hvio_dev *dev)
{
	u32 n = dev->mmio.num_queues, size = dev->mmio.queue_size_max;
	struct hvio_queue *q;
	u32 i;

	dev->queues = kcalloc(n, sizeof(*dev->queues), GFP_KERNEL);
	if (!dev->queues)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		q = &dev->queues[i];
		q->dev = dev;
		q->index = i;
		mutex_init(&q->lock);
		q->ops_size = PAGE_ALIGN(size * sizeof(struct hvio_op));
		q->ops = vmalloc_user(q->ops_size);
		q->tags = kvcalloc(size, sizeof(*q->tags), GFP_KERNEL);
		q->done = kvcalloc(size, sizeof(*q->done), GFP_KERNEL);
		q->fetch_tags = kvcalloc(size, sizeof(*q->fetch_tags),
					 GFP_KERNEL);
		if (!q->ops || !q->tags || !q->done || !q->fetch_tags)
			goto err;
	}
	return 0;
err:
	hvio_queues_free(dev);
	return -ENOMEM;
}

/**
 * hvio_queues_free() - free queue state (device off the bridge already)
 * @dev: device being destroyed
 */
void hvio_queues_free(struct hvio_dev *dev)
{
	struct hvio_queue *q;
	u32 i;

	if (!dev->queues)
		return;
	for (i = 0; i < dev->mmio.num_queues; i++) {
		q = &dev->queues[i];
		vfree(q->ops);
		kvfree(q->tags);
		kvfree(q->done);
		kvfree(q->fetch_tags);
		if (q->efd)
			eventfd_ctx_put(q->efd);
		mutex_destroy(&q->lock);
	}
	kfree(dev->queues);
	dev->queues = NULL;
}

/**
 * hvio_queue_kick() - the guest notified a ready queue (bridge IRQ path)
 * @dev: device, dev->lock held
 * @queue: queue index, checked by the register file
 *
 * A parked io_uring FETCH is completed instead of the eventfd.
 *
 * Return: true when the daemon was woken (FETCH or eventfd).
 */
bool hvio_queue_kick(struct hvio_dev *dev, u32 queue)
{
	struct hvio_queue *q;

	lockdep_assert_held(&dev->lock);
	q = &dev->queues[array_index_nospec(queue, dev->mmio.num_queues)];
	q->stats.kicks++;
	q->kick_seq++;
	if (READ_ONCE(q->poll_missed_ns) && !READ_ONCE(q->poll_kick_ns))
		WRITE_ONCE(q->poll_kick_ns, ktime_get_ns());
	if (q->fetch_parked) {
		hvio_uring_wake(q, false);
		return true;
	}
	if (!q->efd)
		return false;
	hvio_eventfd_signal(q->efd);
	return true;
}

/*
 * Under dev->lock: is the queue attached in the current generation, and
 * still ready in the epoch it was attached in?
 */
static bool hvio_queue_current(struct hvio_queue *q)
{
	const struct hvio_mmio_queue *r = &q->dev->mmio.queues[q->index];

	lockdep_assert_held(&q->dev->lock);
	return q->live && q->vq_gen == q->dev->mmio.generation &&
	       r->ready && q->vq_epoch == r->epoch;
}

/* Start of a bounded dev->lock hold; returns the time it started. */
static u64 hvio_queue_hold_begin(struct hvio_queue *q)
	__acquires(&q->dev->lock)
{
	spin_lock_irq(&q->dev->lock);
	return ktime_get_ns();
}

/* End of a hold that wrote back @entries entries: account it. */
static void hvio_queue_hold_end(struct hvio_queue *q, u64 start, u32 entries)
	__releases(&q->dev->lock)
{
	u64 ns = ktime_get_ns() - start;

	WARN_ON_ONCE(entries > HVIO_QUEUE_HOLD_ENTRIES);
	if (entries > q->stats.hold_entries_max)
		q->stats.hold_entries_max = entries;
	if (ns > q->stats.hold_ns_max)
		q->stats.hold_ns_max = ns;
	spin_unlock_irq(&q->dev->lock);
}

/*
 * Under dev->lock: does the used ring ask for an interrupt?  If so,
 * InterruptStatus gets the bit now and the caller injects the interrupt
 * with hvio_queue_inject() once it has dropped dev->lock: the injection
 * (FINISH_REQ, a hypercall on hvisor) is no part of the hold.
 */
static bool hvio_queue_signal(struct hvio_queue *q)
{
	if (!hvio_vq_need_interrupt(&q->vq)) {
		q->stats.irqs_suppressed++;
		return false;
	}
	q->stats.irqs++;
	hvio_mmio_latch(&q->dev->mmio, HVIO_INT_VRING);
	return true;
}

/* After the hold in which hvio_queue_signal() returned true. */
static void hvio_queue_inject(struct hvio_queue *q)
{
	hvio_mmio_inject(&q->dev->mmio, HVIO_INT_VRING);
}

/**
 * hvio_queue_write_status() - write a request's status byte
 * @q: queue; dev->lock held, generation checked
 * @gpa: the byte, inside a chain checked to lie in zone RAM
 * @status: the value
 */
void hvio_queue_write_status(struct hvio_queue *q, u64 gpa, u8 status)
{
	u8 *p = hvio_zone_map(q->dev->zone, gpa, 1);

	/* The chain was checked to lie in zone RAM; the map cannot fail. */
	if (!WARN_ON_ONCE(!p))
		WRITE_ONCE(*p, status);
}

/*
 * A new ready epoch in the same generation: the daemon still holds ops of
 * the old rings under tags the new rings may use again.  They turn stale
 * (their completion is dropped, and a head of the new rings that collides
 * waits for it); what the kernel held of the old rings is forgotten.
 */
static void hvio_queue_forget_epoch(struct hvio_queue *q)
{
	u32 i, size = q->dev->mmio.queue_size_max;

	for (i = 0; i < size; i++) {
		if (q->tags[i].state == HVIO_TAG_OP)
			q->tags[i].state = HVIO_TAG_STALE;
		else if (q->tags[i].state == HVIO_TAG_HELD)
			q->tags[i].state = HVIO_TAG_FREE;
	}
}

/*
 * Attach the queue to the rings the driver set up, once per generation
 * and ready epoch after DRIVER_OK.  Returns true when the queue is live.
 */
static bool hvio_queue_attach(struct hvio_queue *q)
{
	struct hvio_dev *dev = q->dev;
	struct hvio_mmio_queue regs;
	struct hvio_vq_mem mem;
	u64 features, gen;
	u32 status;
	int i;

	spin_lock_irq(&dev->lock);
	gen = dev->mmio.generation;
	status = dev->mmio.status;
	regs = dev->mmio.queues[q->index];
	features = dev->mmio.driver_features;
	spin_unlock_irq(&dev->lock);

	/*
	 * The generation never reads 0 (it starts at 1 and does not wrap),
	 * so vq_gen 0 is "no generation yet".
	 */
	if (q->vq_gen && q->vq_gen == gen) {
		if (q->live && q->vq_epoch == regs.epoch && regs.ready)
			return !q->vq.broken;
		/* QueueReady went 0 since the attach: once per epoch. */
		if (q->live)
			hvio_queue_forget_epoch(q);
	} else {
		/* A new generation: ops of the old one are the daemon's. */
		memset(q->tags, 0,
		       dev->mmio.queue_size_max * sizeof(*q->tags));
		q->requeue = false;
		q->vq_gen = gen;
	}
	q->poll_suppressed = false;
	q->live = false;
	q->nr_done = 0;
	if (!(status & HVIO_S_DRIVER_OK) || (status & HVIO_S_NEEDS_RESET) ||
	    !regs.ready)
		return false;
	/* Keep the counts of the generation that ends. */
	for (i = 0; i < HVIO_VQ_E_MAX; i++)
		q->stats.vq_errors[i] += q->vq.errors[i];
	memset(&q->vq, 0, sizeof(q->vq));
	mem.map = hvio_queue_mem_map;
	mem.ctx = dev->zone;
	if (hvio_vq_setup(&q->vq, &mem, regs.num, regs.desc, regs.driver,
			  regs.device, features & (1ULL << 29),
			  features & (1ULL << 28)))
		return false;
	q->live = true;
	q->vq_epoch = regs.epoch;
	if (dev->type->attach)
		dev->type->attach(q);
	return true;
}

/* Under dev->lock: the guest broke the queue protocol. */
static void hvio_queue_broken(struct hvio_queue *q)
{
	q->vq.broken = true;
	pr_warn_ratelimited(HVIO_NAME ": zone %u dev %#llx queue %u: ring corrupt, device needs reset\n",
			    q->dev->zone->id, q->dev->mmio_base, q->index);
	hvio_mmio_needs_reset(&q->dev->mmio);
}

/**
 * hvio_queue_gather() - copy readable bytes of the popped chain
 * @q: queue; q->segs holds the chain (checked to lie in zone RAM)
 * @nr: segments in the chain
 * @skip: bytes of the readable part to skip
 * @buf: destination
 * @len: bytes wanted
 *
 * Return: true when all @len bytes were there.
 */
bool hvio_queue_gather(struct hvio_queue *q, u16 nr, u32 skip, void *buf,
		       u32 len)
{
	const struct hvio_vq_seg *s;
	u32 i, n;

	for (i = 0; i < nr && len; i++) {
		s = &q->segs[i];
		if (s->write)
			break;
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		n = min(s->len - skip, len);
		memcpy(buf, (const u8 *)s->va + skip, n);
		buf += n;
		len -= n;
		skip = 0;
	}
	return !len;
}

/**
 * hvio_queue_done_next() - the answer slot for a chain finished here
 * @q: queue, q->lock held
 * @head: the chain's head
 *
 * The slot counts only once the caller bumps q->nr_done.  There is room:
 * a fetch takes at most queue_size_max chains between two flushes.
 *
 * Return: the zeroed slot with @head filled in.
 */
struct hvio_done *hvio_queue_done_next(struct hvio_queue *q, u16 head)
{
	struct hvio_done *d = &q->done[q->nr_done];

	memset(d, 0, sizeof(*d));
	d->head = head;
	return d;
}

/**
 * hvio_queue_take() - pop the next chain for a request engine
 * @q: queue, q->lock held, attached
 * @chain: the chain, its segments in q->segs
 *
 * A malformed chain (counted by the parser per reason) is queued for
 * write-back with used length 0 and reported as HVIO_TAKE_BAD; a head the
 * kernel or the daemon still holds, a head out of range or an avail jump
 * stop the queue.
 *
 * Return: enum hvio_take.
 */
enum hvio_take hvio_queue_take(struct hvio_queue *q,
			       struct hvio_vq_chain *chain)
{
	enum hvio_vq_err err;

	err = hvio_vq_pop(&q->vq, q->segs, ARRAY_SIZE(q->segs), chain);
	if (err == HVIO_VQ_EMPTY)
		return HVIO_TAKE_EMPTY;
	if (err == HVIO_VQ_E_HEAD || err == HVIO_VQ_E_AVAIL_JUMP)
		trace_hvio_vq_error(q->dev->zone->id, q->dev->mmio_base,
				    q->index, err);
	if (err == HVIO_VQ_BROKEN || err == HVIO_VQ_E_HEAD ||
	    err == HVIO_VQ_E_AVAIL_JUMP)
		return HVIO_TAKE_BROKEN;
	/*
	 * A head of the old rings the daemon still holds (after a
	 * QueueReady = 0): leave the entry for after its commit.
	 */
	if (q->tags[chain->head].state == HVIO_TAG_STALE) {
		hvio_vq_unpop(&q->vq);
		return HVIO_TAKE_WAIT;
	}
	/* The guest reposted a head we still hold. */
	if (q->tags[chain->head].state != HVIO_TAG_FREE)
		return HVIO_TAKE_BROKEN;
	q->stats.reqs++;
	if (err != HVIO_VQ_OK) {
		trace_hvio_vq_error(q->dev->zone->id, q->dev->mmio_base,
				    q->index, err);
		hvio_queue_done_next(q, chain->head);
		q->nr_done++;
		return HVIO_TAKE_BAD;
	}
	return HVIO_TAKE_OK;
}

/**
 * hvio_queue_flush_done() - write back what the kernel finished itself
 * @q: queue, q->lock held
 * @drained: the avail ring is empty: re-arm guest notifications
 * @broken: the guest broke the ring protocol: stop the queue
 *
 * Neither drained nor broken: the caller stops with chains left (or
 * waits for a commit), so guest notifications are turned off meanwhile.
 * At most HVIO_QUEUE_HOLD_ENTRIES entries per dev->lock hold, each hold
 * checking the generation again.
 *
 * Return: false if the generation changed meanwhile (the rest not written).
 */
bool hvio_queue_flush_done(struct hvio_queue *q, bool drained, bool broken)
{
	struct hvio_done *d;
	bool current_gen, irq = false;
	u32 i = 0, first, end;
	u64 t0;

	do {
		first = i;
		end = min_t(u32, q->nr_done, i + HVIO_QUEUE_HOLD_ENTRIES);
		t0 = hvio_queue_hold_begin(q);
		current_gen = hvio_queue_current(q);
		if (!current_gen) {
			hvio_queue_hold_end(q, t0, 0);
			break;
		}
		for (; i < end; i++) {
			d = &q->done[i];
			if (d->fill)
				q->dev->type->fill_done(q, d);
			if (d->has_status)
				hvio_queue_write_status(q, d->status_gpa,
							d->status);
			hvio_vq_add_used(&q->vq, d->head, d->used_len);
		}
		if (q->nr_done)
			hvio_vq_publish_used(&q->vq);
		if (i == q->nr_done) {
			if (q->nr_done)
				irq = hvio_queue_signal(q);
			if (broken)
				hvio_queue_broken(q);
			else if (drained)
				hvio_vq_enable_notify(&q->vq);
			else
				hvio_vq_disable_notify(&q->vq);
		}
		hvio_queue_hold_end(q, t0, end - first);
		if (irq)
			hvio_queue_inject(q);
		cond_resched();
	} while (i < q->nr_done);
	q->nr_done = 0;
	return current_gen;
}

/**
 * hvio_queue_more() - does the avail ring hold more, after a fetch?
 * @q: queue, q->lock held
 *
 * A look at avail->idx outside hvio_queue_take() can find the guest
 * jumping it; that stops the queue like any other ring violation.
 *
 * Return: true when there are chains to take.
 */
bool hvio_queue_more(struct hvio_queue *q)
{
	int n = hvio_vq_avail(&q->vq);

	if (n < 0)
		hvio_queue_flush_done(q, false, true);
	return n > 0;
}

/* Does the queue fetch buffers for the device to fill (receive queues)? */
static bool hvio_queue_is_rx(const struct hvio_queue *q)
{
	return q->dev->type->rx_queues & BIT(q->index);
}

/*
 * Busy-polling after a commit (HVIO_DEV_SET_POLL), vhost's busyloop for a
 * daemon in its own context: when the commit of this call gave the guest
 * completions, guest notifications are suppressed before the used index
 * moves (so a guest that sees its completions sees the suppression too),
 * and a fetch that then finds the avail ring empty waits up to the poll
 * window for the guest's next requests instead of returning and waiting
 * for a kick.  Only request queues: a queue that fetches buffers has them
 * used when the backend has data, not when the guest posts more.
 */
static bool hvio_queue_poll_on(const struct hvio_queue *q)
{
	return READ_ONCE(q->dev->poll_ns) && !hvio_queue_is_rx(q);
}

/*
 * The poll itself, q->lock held, notifications suppressed: until the
 * window ends, the CPU is wanted elsewhere, a signal or a reset comes.
 * Returns true when the avail ring holds something (or turned out
 * broken: the fetch loop stops the queue then).
 */
static bool hvio_queue_poll(struct hvio_queue *q)
{
	struct hvio_dev *dev = q->dev;
	u64 win = READ_ONCE(dev->poll_ns) >> q->poll_miss;
	u64 start = ktime_get_ns(), now = start;
	bool hit = false;

	while (now - start < win) {
		if (hvio_vq_avail(&q->vq)) {
			hit = true;
			break;
		}
		if (need_resched() || signal_pending(current) ||
		    READ_ONCE(dev->mmio.generation) != q->vq_gen)
			break;
		cpu_relax();
		now = ktime_get_ns();
	}
	if (hit) {
		q->stats.poll_hits++;
		q->poll_miss = 0;
		WRITE_ONCE(q->poll_missed_ns, 0);
	} else {
		if (q->poll_miss < 3)
			q->poll_miss++;
		WRITE_ONCE(q->poll_kick_ns, 0);
		WRITE_ONCE(q->poll_missed_ns, start);
	}
	spin_lock_irq(&dev->lock);
	dev->stats.poll_ns += ktime_get_ns() - start;
	spin_unlock_irq(&dev->lock);
	return hit;
}

/*
 * A fetch took requests after a poll that missed: if the guest kicked for
 * them within the full window, counted from that poll's start, a longer
 * poll would have found them, and the window grows back to poll_us.
 * Without this, a guest slower than poll_us / 8 would keep the window at
 * its floor after three misses and never be polled for again.
 */
static void hvio_queue_poll_learn(struct hvio_queue *q)
{
	u64 missed = READ_ONCE(q->poll_missed_ns);
	u64 kick = READ_ONCE(q->poll_kick_ns);

	WRITE_ONCE(q->poll_missed_ns, 0);
	WRITE_ONCE(q->poll_kick_ns, 0);
	if (kick > missed && kick - missed <= READ_ONCE(q->dev->poll_ns))
		q->poll_miss = 0;
}

/*
 * A commit suppressed notifications and no fetch re-armed them: the fetch
 * did not run (an error, a queue not live) or stopped before the end of
 * the ring without MORE (at a stale op's head, which the daemon's commit
 * unblocks).  Re-arm them.
 */
static void hvio_queue_poll_end(struct hvio_queue *q)
{
	q->poll_suppressed = false;
	spin_lock_irq(&q->dev->lock);
	if (hvio_queue_current(q))
		hvio_vq_enable_notify(&q->vq);
	spin_unlock_irq(&q->dev->lock);
}

/*
 * After an orphaning: hand out again the ops the old daemon fetched and
 * never committed (their slots are unchanged), at most @max per call.
 */
static u16 hvio_queue_requeue(struct hvio_queue *q, u16 *tags, u16 max)
{
	u32 size = q->dev->mmio.queue_size_max;
	u16 n = 0;

	while (q->requeue_pos < size && n < max) {
		if (q->tags[q->requeue_pos].state == HVIO_TAG_OP) {
			tags[n++] = q->requeue_pos;
			q->stats.requeued++;
		}
		q->requeue_pos++;
	}
	if (q->requeue_pos == size)
		q->requeue = false;
	return n;
}

/*
 * Take up to @max chains, one op or answer each (request queues: the
 * type's prepare); tags of ops for the daemon go to @tags.  A queue that
 * fetches buffers goes to the type's rx_fetch instead, if it has one.  A
 * type with a fairness budget stops there.
 *
 * Whenever the loop stops with chains left in the avail ring (at @max,
 * which counts chains answered in the kernel too, or at the budget) it
 * sets HVIO_RUN_OUT_MORE and leaves guest notifications off: the daemon
 * calls again without a kick.  Only a drained ring re-arms them (then
 * looks once more), so "fewer ops than asked" never means "drained".
 */
static u16 hvio_queue_fetch(struct hvio_queue *q, u16 *tags, u16 max,
			    u32 *out_flags)
{
	const struct hvio_devtype *type = q->dev->type;
	struct hvio_vq_chain chain;
	enum hvio_req_kind kind;
	enum hvio_take took;
	struct hvio_done *d;
	struct hvio_op *op;
	u16 n = 0, taken = 0;
	bool drained, broken, more, rearm, budget = false, polled = false;
	u64 bytes = 0, now;
	int avail;

	/* Ops an earlier daemon left uncommitted come first. */
	if (q->requeue) {
		n = hvio_queue_requeue(q, tags, max);
		if (n == max) {
			*out_flags |= HVIO_RUN_OUT_MORE;
			return n;
		}
	}
	if (hvio_queue_is_rx(q) && type->rx_fetch)
		return n + type->rx_fetch(q, tags + n, max - n, out_flags);
	max -= n;
again:
	now = ktime_get_ns();
	drained = false;
	broken = false;
	more = false;
	while (taken < max) {
		if ((type->budget_pkts && taken >= type->budget_pkts) ||
		    (type->budget_bytes && bytes >= type->budget_bytes)) {
			budget = hvio_queue_more(q);
			break;
		}
		took = hvio_queue_take(q, &chain);
		if (took == HVIO_TAKE_EMPTY) {
			drained = true;
			break;
		}
		if (took == HVIO_TAKE_BROKEN) {
			broken = true;
			break;
		}
		/* The daemon's commit of a stale op comes first. */
		if (took == HVIO_TAKE_WAIT)
			break;
		taken++;
		/* A 32768-entry ring is long work for a non-preemptible kernel. */
		if (!(taken % HVIO_QUEUE_HOLD_ENTRIES))
			cond_resched();
		if (took == HVIO_TAKE_BAD)
			continue;
		op = &q->ops[chain.head];
		d = hvio_queue_done_next(q, chain.head);
		kind = type->prepare(q, &chain, op, &q->tags[chain.head], d);
		if (kind == HVIO_REQ_DONE) {
			q->stats.done_in_kernel++;
			q->nr_done++;
			continue;
		}
		hvio_queue_op_gen(q, op);
		q->tags[chain.head].state = HVIO_TAG_OP;
		q->tags[chain.head].taken_ns = now;
		q->stats.ops++;
		bytes += op->len;
		tags[n++] = chain.head;
	}
	if (n && READ_ONCE(q->poll_missed_ns))
		hvio_queue_poll_learn(q);
	/* Stopped at @max: is that the end of the ring? */
	if (taken == max && !budget) {
		avail = hvio_vq_avail(&q->vq);
		if (avail < 0)
			broken = true;
		else if (avail)
			more = true;
		else
			drained = true;
	}

	/*
	 * The commit just now gave the guest completions and nothing new is
	 * here: poll for its next requests (notifications stay suppressed
	 * meanwhile), once per call, only when the daemon has nothing else
	 * from us to start.
	 */
	if (drained && !n && q->poll_suppressed && !polled) {
		polled = true;
		if (q->nr_done && !hvio_queue_flush_done(q, false, false))
			return n;
		if (hvio_queue_poll(q))
			goto again;
	}
	/*
	 * Ops for a daemon that fetches again once it has started them
	 * (HVIO_FETCH_F_AGAIN): kicks stay off until that fetch, as vhost
	 * keeps them off while it has work.
	 */
	rearm = drained && !(n && q->fetch_again);
	/*
	 * Reset or QueueReady = 0 meanwhile: the ops go back to the caller
	 * all the same, whose hand-out sees the change and frees their
	 * heads (left in flight, they would wait for a commit for ever).
	 */
	if (!hvio_queue_flush_done(q, rearm, broken))
		return n;
	if (drained)
		q->poll_suppressed = false;
	/*
	 * Notifications were just re-armed (avail_event, or NO_NOTIFY
	 * cleared): a buffer made available before the guest saw that
	 * would not be kicked, so look once more (vhost's enable_notify
	 * re-check).
	 */
	if (rearm && hvio_queue_more(q)) {
		if (taken < max)
			goto again;
		more = true;
	}
	if (budget)
		q->stats.budget_stops++;
	if (budget || more)
		*out_flags |= HVIO_RUN_OUT_MORE;
	return n;
}

/**
 * hvio_queues_orphan() - the daemon is gone, the device stays
 * @dev: recoverable device whose last file reference went away
 *
 * Ops in flight are handed out again in the next HVIO_DEV_QUEUE_RUN of
 * their generation; the old daemon's eventfds are dropped (a new daemon
 * sets its own).
 */
void hvio_queues_orphan(struct hvio_dev *dev)
{
	struct eventfd_ctx *efd;
	struct hvio_queue *q;
	u32 i, t;

	for (i = 0; i < dev->mmio.num_queues; i++) {
		q = &dev->queues[i];
		mutex_lock(&q->lock);
		q->requeue = true;
		q->requeue_pos = 0;
		/* A new daemon learns the generation before it parks. */
		WRITE_ONCE(q->gen_reported, 0);
		/* Stale ops die with their daemon: nobody will commit them. */
		for (t = 0; t < dev->mmio.queue_size_max; t++)
			if (q->tags[t].state == HVIO_TAG_STALE)
				q->tags[t].state = HVIO_TAG_FREE;
		spin_lock_irq(&dev->lock);
		efd = q->efd;
		q->efd = NULL;
		/* The old daemon's stop is not the new one's. */
		q->unpark = false;
		spin_unlock_irq(&dev->lock);
		mutex_unlock(&q->lock);
		if (efd)
			eventfd_ctx_put(efd);
	}
}

/* A completion's 64-bit generation. */
static u64 hvio_completion_gen(const struct hvio_completion *c)
{
	return ((u64)c->generation_hi << 32) | c->generation;
}

/*
 * Under dev->lock: apply one completion of the current generation.
 * Returns 1 when it was written into the used ring's batch, 0 when it was
 * dropped, -EINVAL for a tag that is not in flight.
 */
/* Under dev->lock: one request of @ns for the latency histogram. */
static void hvio_queue_lat_add(struct hvio_queue *q, u64 ns)
{
	struct hvio_queue_latency *l = &q->lat;

	l->count++;
	l->sum_ns += ns;
	if (ns > l->max_ns)
		l->max_ns = ns;
	l->buckets[min_t(u32, fls64(div_u64(ns, NSEC_PER_USEC)),
			 HVIO_LAT_BUCKETS - 1)]++;
}

static int hvio_queue_complete_one(struct hvio_queue *q,
				   const struct hvio_completion *c, u64 now)
{
	const struct hvio_devtype *type = q->dev->type;
	u32 size = q->dev->mmio.queue_size_max;
	struct hvio_tag *t;
	u16 tag;

	/* Nothing is in flight on a queue not attached in this gen. */
	if (q->vq_gen != q->dev->mmio.generation || c->tag >= size)
		return -EINVAL;
	tag = array_index_nospec(c->tag, size);
	t = &q->tags[tag];
	if (t->state != HVIO_TAG_OP && t->state != HVIO_TAG_STALE)
		return -EINVAL;
	/*
	 * Fetched from rings the driver took back with QueueReady = 0
	 * (stale already, or the queue not re-attached yet): the old rings
	 * are not written once QueueReady = 0 was answered.  A receive op's
	 * further chains are forgotten at the next attach.
	 */
	if (t->state == HVIO_TAG_STALE || !hvio_queue_current(q)) {
		t->state = HVIO_TAG_FREE;
		q->stats.stale++;
		return 0;
	}
	q->stats.completed++;
	/* Unused receive ops come back cancelled: no error. */
	if (c->result < 0 && !(type->cancel_ok && c->result == -ECANCELED))
		q->stats.errors++;
	if (!hvio_queue_is_rx(q))
		hvio_queue_lat_add(q, now - t->taken_ns);
	type->complete(q, tag, c->result);
	return 1;
}

/*
 * Apply completions, at most HVIO_QUEUE_HOLD_ENTRIES per dev->lock hold;
 * one interrupt decision at the end.  -EINVAL for a tag that is not in
 * flight or a reserved field that is not 0 (nothing after it is applied).
 */
static int hvio_queue_commit(struct hvio_queue *q,
			     const struct hvio_completion *c, u16 nr)
{
	u32 i = 0, first, end;
	bool any = false, added, irq = false;
	int ret = 0, r;
	u32 cpus;
	u64 t0;

	while (i < nr && !ret) {
		first = i;
		end = min_t(u32, nr, i + HVIO_QUEUE_HOLD_ENTRIES);
		added = false;
		t0 = hvio_queue_hold_begin(q);
		for (; i < end; i++) {
			if (c[i].reserved0) {
				ret = -EINVAL;
				break;
			}
			if (hvio_completion_gen(&c[i]) !=
			    q->dev->mmio.generation) {
				q->stats.stale++;
				/* One op of a reset's drain is back. */
				if (q->ops_old)
					q->ops_old--;
				continue;
			}
			r = hvio_queue_complete_one(q, &c[i], t0);
			if (r < 0) {
				ret = r;
				break;
			}
			if (q->ops_live)
				q->ops_live--;
			added |= r;
		}
		/*
		 * Anything added was added while the queue was current.  A
		 * fetch follows that will poll, or the daemon promised one:
		 * suppress kicks before the guest can see its completions
		 * (the release orders it).
		 */
		if (added && q->poll_next && !q->poll_suppressed) {
			hvio_vq_suppress_notify(&q->vq);
			q->poll_suppressed = true;
		} else if (added && q->fetch_next) {
			hvio_vq_suppress_notify(&q->vq);
		}
		if (added)
			hvio_vq_publish_used(&q->vq);
		any |= added;
		if ((i == nr || ret) && any && hvio_queue_current(q))
			irq = hvio_queue_signal(q);
		cpus = hvio_dev_reset_drained(q->dev);
		hvio_queue_hold_end(q, t0, i - first);
		if (irq)
			hvio_queue_inject(q);
		hvio_dev_reset_answer(q->dev, cpus);
		cond_resched();
	}
	return ret;
}

/*
 * The daemon gets @n ops only if they are still of the current generation:
 * a reset then moves them to the ones it waits for.  Ops fetched just
 * before a reset are never handed out (their tags are dropped at the next
 * attach), so a reset never waits for an op the daemon does not know.
 */
static bool hvio_queue_hand_out(struct hvio_queue *q, const u16 *tags, u16 n)
{
	struct hvio_dev *dev = q->dev;
	bool current_gen;
	u16 i;

	spin_lock_irq(&dev->lock);
	current_gen = hvio_queue_current(q);
	if (current_gen)
		q->ops_live += n;
	spin_unlock_irq(&dev->lock);
	if (current_gen)
		return true;
	/*
	 * Nobody will commit these: free their heads now, or a QueueReady
	 * 0 -> 1 in between would leave them stale and a new chain on the
	 * same head would wait for them for ever.
	 */
	for (i = 0; i < n; i++)
		if (q->tags[tags[i]].state == HVIO_TAG_OP)
			q->tags[tags[i]].state = HVIO_TAG_FREE;
	return false;
}

/**
 * hvio_queue_check() - the common checks of QUEUE_RUN, FETCH and COMMIT
 * @dev: device
 * @queue: queue index from userspace
 * @nr_commit: completions to commit
 * @max_fetch: ops to fetch at most
 *
 * Return: 0, -EINVAL, or -EOPNOTSUPP for a device type without a request
 * engine (no entry in hvio_devtypes[]).
 */
int hvio_queue_check(struct hvio_dev *dev, u16 queue, u16 nr_commit,
		     u16 max_fetch)
{
	u32 size = dev->mmio.queue_size_max;

	if (queue >= dev->mmio.num_queues || nr_commit > size ||
	    max_fetch > size)
		return -EINVAL;
	if (!dev->type)
		return -EOPNOTSUPP;
	return 0;
}

/**
 * hvio_queue_serve() - commit completions, then fetch new ops
 * @q: queue (q->lock not held)
 * @c: @nr_commit completions, copied from userspace
 * @nr_commit: may be 0
 * @tags: room for @max_fetch tags
 * @max_fetch: may be 0
 * @hints: HVIO_SERVE_POLL: a fetch follows the commit (this call's, or a
 *        parked FETCH's that the caller wakes when this returns with
 *        q->poll_suppressed): with polling on, the commit suppresses guest
 *        notifications and that fetch polls, then re-arms them;
 *        HVIO_SERVE_FETCH_NEXT: the daemon fetches after this commit, which
 *        suppresses them (no poll); HVIO_SERVE_AGAIN: a fetch that takes
 *        ops leaves them off, the daemon fetches again after starting them
 * @out_flags: HVIO_RUN_OUT_* (set here)
 * @nr_fetched: tags written (set here)
 *
 * The one engine behind HVIO_DEV_QUEUE_RUN and the io_uring commands.
 * Fetched ops are handed out (counted for a reset's drain) only if they
 * are still of the current generation.  Takes q->lock.
 *
 * Return: 0, or -EINVAL from the commit (nothing fetched then).
 */
int hvio_queue_serve(struct hvio_queue *q, const struct hvio_completion *c,
		     u16 nr_commit, u16 *tags, u16 max_fetch, u32 hints,
		     u32 *out_flags, u16 *nr_fetched)
{
	int ret;

	mutex_lock(&q->lock);
	q->poll_next = (hints & HVIO_SERVE_POLL) && hvio_queue_poll_on(q);
	q->fetch_next = hints & HVIO_SERVE_FETCH_NEXT;
	q->fetch_again = hints & HVIO_SERVE_AGAIN;
	ret = hvio_queue_commit(q, c, nr_commit);
	q->poll_next = false;
	q->fetch_next = false;
	*nr_fetched = 0;
	*out_flags = 0;
	if (!ret && max_fetch && hvio_queue_attach(q))
		*nr_fetched = hvio_queue_fetch(q, tags, max_fetch, out_flags);
	/* This call's fetch did not re-arm: do it (a parked one will). */
	if (q->poll_suppressed && max_fetch &&
	    !(*out_flags & HVIO_RUN_OUT_MORE))
		hvio_queue_poll_end(q);
	q->fetch_again = false;
	if (*nr_fetched && !hvio_queue_hand_out(q, tags, *nr_fetched))
		*nr_fetched = 0;
	mutex_unlock(&q->lock);
	if (nr_commit)
		trace_hvio_commit(q->dev->zone->id, q->dev->mmio_base, q->index,
				  nr_commit);
	if (*nr_fetched)
		trace_hvio_fetch(q->dev->zone->id, q->dev->mmio_base, q->index,
				 *nr_fetched);
	return ret;
}

/**
 * hvio_queue_poll_cancel() - nobody will poll after the commit: re-arm
 * @q: queue (q->lock not held)
 *
 * For a caller of hvio_queue_serve() with HVIO_SERVE_POLL whose fetch did
 * not come (the FETCH it meant to wake was gone).
 */
void hvio_queue_poll_cancel(struct hvio_queue *q)
{
	mutex_lock(&q->lock);
	if (q->poll_suppressed)
		hvio_queue_poll_end(q);
	mutex_unlock(&q->lock);
}

static long hvio_queue_run(struct hvio_dev *dev, void __user *argp)
{
	struct hvio_completion *commits = NULL;
	struct hvio_queue_run run;
	struct hvio_queue *q;
	u16 *tags = NULL;
	long ret;

	if (copy_from_user(&run, argp, sizeof(run)))
		return -EFAULT;
	if (run.flags || run.reserved1 || run.reserved)
		return -EINVAL;
	ret = hvio_queue_check(dev, run.queue, run.nr_commit, run.max_fetch);
	if (ret)
		return ret;
	q = &dev->queues[array_index_nospec(run.queue, dev->mmio.num_queues)];

	if (run.nr_commit) {
		commits = memdup_user(u64_to_user_ptr(run.commits_addr),
				      run.nr_commit * sizeof(*commits));
		if (IS_ERR(commits))
			return PTR_ERR(commits);
	}
	if (run.max_fetch) {
		tags = kmalloc_array(run.max_fetch, sizeof(*tags), GFP_KERNEL);
		if (!tags) {
			ret = -ENOMEM;
			goto out;
		}
	}

	ret = hvio_queue_serve(q, commits, run.nr_commit, tags, run.max_fetch,
			       run.max_fetch ? HVIO_SERVE_POLL : 0,
			       &run.out_flags, &run.nr_fetched);
	if (ret)
		goto out;

	WRITE_ONCE(q->gen_reported, READ_ONCE(dev->mmio.generation));
	run.generation = lower_32_bits(q->gen_reported);
	if (run.nr_fetched &&
	    copy_to_user(u64_to_user_ptr(run.tags_addr), tags,
			 run.nr_fetched * sizeof(*tags)))
		ret = -EFAULT;
	else if (copy_to_user(argp, &run, sizeof(run)))
		ret = -EFAULT;
out:
	kfree(tags);
	kfree(commits);
	return ret;
}

static long hvio_queue_set_eventfd(struct hvio_dev *dev, void __user *argp)
{
	struct eventfd_ctx *ctx = NULL, *old;
	struct hvio_queue_eventfd qe;
	struct hvio_queue *q;

	if (copy_from_user(&qe, argp, sizeof(qe)))
		return -EFAULT;
	if (qe.reserved0 || qe.reserved || qe.queue >= dev->mmio.num_queues)
		return -EINVAL;
	if (qe.fd != -1) {
		ctx = eventfd_ctx_fdget(qe.fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
	}
	q = &dev->queues[array_index_nospec(qe.queue, dev->mmio.num_queues)];
	spin_lock_irq(&dev->lock);
	old = q->efd;
	q->efd = ctx;
	spin_unlock_irq(&dev->lock);
	if (old)
		eventfd_ctx_put(old);
	return 0;
}

static long hvio_queue_get_stats(struct hvio_dev *dev, void __user *argp)
{
	struct hvio_queue_stats st;
	struct hvio_queue *q;
	u16 idx;
	int i;

	if (copy_from_user(&st, argp, sizeof(st)))
		return -EFAULT;
	if (st.queue >= dev->mmio.num_queues || st.reserved0 ||
	    st.reserved1)
		return -EINVAL;
	idx = array_index_nospec(st.queue, dev->mmio.num_queues);
	q = &dev->queues[idx];

	mutex_lock(&q->lock);
	spin_lock_irq(&dev->lock);
	st = q->stats;
	spin_unlock_irq(&dev->lock);
	BUILD_BUG_ON(ARRAY_SIZE(st.vq_errors) < HVIO_VQ_E_MAX);
	for (i = 0; i < HVIO_VQ_E_MAX; i++)
		st.vq_errors[i] = q->vq.errors[i] + q->stats.vq_errors[i];
	mutex_unlock(&q->lock);
	st.queue = idx;
	return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
}

static long hvio_queue_get_latency(struct hvio_dev *dev, void __user *argp)
{
	struct hvio_queue_latency lat;
	u16 idx;

	if (copy_from_user(&lat, argp, sizeof(lat)))
		return -EFAULT;
	if (lat.queue >= dev->mmio.num_queues || lat.reserved0)
		return -EINVAL;
	idx = array_index_nospec(lat.queue, dev->mmio.num_queues);
	spin_lock_irq(&dev->lock);
	lat = dev->queues[idx].lat;
	spin_unlock_irq(&dev->lock);
	lat.queue = idx;
	lat.reserved0 = 0;
	lat.nr_buckets = HVIO_LAT_BUCKETS;
	return copy_to_user(argp, &lat, sizeof(lat)) ? -EFAULT : 0;
}

/**
 * hvio_queue_ioctl() - queue ioctls of a device fd
 * @dev: device
 * @cmd: HVIO_DEV_QUEUE_RUN, HVIO_DEV_SET_QUEUE_EVENTFD,
 *       HVIO_DEV_GET_QUEUE_STATS, HVIO_DEV_GET_QUEUE_LATENCY,
 *       HVIO_DEV_QUEUE_UNPARK or HVIO_DEV_SET_POLL
 * @argp: user argument
 *
 * Return: 0, a negative errno, or -ENOTTY for another command.
 */
long hvio_queue_ioctl(struct hvio_dev *dev, unsigned int cmd,
		      void __user *argp)
{
	struct hvio_dev_poll poll;

	switch (cmd) {
	case HVIO_DEV_SET_POLL:
		if (copy_from_user(&poll, argp, sizeof(poll)))
			return -EFAULT;
		if (poll.flags || poll.reserved ||
		    poll.poll_us > HVIO_MAX_POLL_US)
			return -EINVAL;
		WRITE_ONCE(dev->poll_ns, poll.poll_us * NSEC_PER_USEC);
		return 0;
	case HVIO_DEV_QUEUE_RUN:
		return hvio_queue_run(dev, argp);
	case HVIO_DEV_SET_QUEUE_EVENTFD:
		return hvio_queue_set_eventfd(dev, argp);
	case HVIO_DEV_GET_QUEUE_STATS:
		return hvio_queue_get_stats(dev, argp);
	case HVIO_DEV_GET_QUEUE_LATENCY:
		return hvio_queue_get_latency(dev, argp);
	case HVIO_DEV_QUEUE_UNPARK:
		return hvio_uring_unpark(dev, argp);
	default:
		return -ENOTTY;
	}
}

/**
 * hvio_queue_mmap() - map a queue's op slots read-only
 * @dev: device
 * @vma: mapping at HVIO_DEV_MMAP_RING_BASE + q * HVIO_DEV_MMAP_RING_STRIDE
 *
 * Return: 0 or -EINVAL.
 */
int hvio_queue_mmap(struct hvio_dev *dev, struct vm_area_struct *vma)
{
	u64 off = ((u64)vma->vm_pgoff << PAGE_SHIFT) - HVIO_DEV_MMAP_RING_BASE;
	u64 len = vma->vm_end - vma->vm_start;
	u64 idx = off / HVIO_DEV_MMAP_RING_STRIDE;
	struct hvio_queue *q;

	if (off % HVIO_DEV_MMAP_RING_STRIDE || idx >= dev->mmio.num_queues)
		return -EINVAL;
	q = &dev->queues[array_index_nospec(idx, dev->mmio.num_queues)];
	if (len > q->ops_size || (vma->vm_flags & VM_WRITE))
		return -EINVAL;
	hvio_vm_flags_clear(vma, VM_MAYWRITE);
	return remap_vmalloc_range(vma, q->ops, 0);
}
