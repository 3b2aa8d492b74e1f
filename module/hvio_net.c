// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: virtio-net queues (virtio 1.2, section 5.1.6).
 *
 * Transmit: each chain is a 12-byte virtio_net_hdr and a frame; it becomes
 * one NET_TX op.  The header is read from guest memory once, checked
 * against the negotiated features and handed over in the op itself
 * (op->net_hdr); the op's segments start after it.  The daemon writes
 * that copy and the segments to the TAP, so a guest rewriting its header
 * after the check cannot get a GSO or ECN type it never negotiated into
 * root's tun/GSO code.  (The TAP checks the header again; this check
 * keeps what the driver did not negotiate away from it and counts the
 * culprits.)  The frame itself stays zero-copy: nothing here reads it.
 *
 * Receive: the daemon reads one packet into the buffers of an NET_RX op
 * and commits the byte count; the kernel spreads it over the op's chains,
 * writes num_buffers and the used entries.  With MRG_RXBUF an op gathers
 * as many chains as the largest packet the guest negotiated needs; chains
 * that a packet did not reach go back to the queue's spare list for a
 * later op, so nothing is ever returned to the guest unused and nothing
 * is read into a buffer the guest did not post.  A chain keeps its own
 * segments at the front of ops[head].segs while the kernel holds it; an op
 * lists the segments of all its chains in the first chain's slot.
 *
 * Everything here runs under the queue's lock (HVIO_DEV_QUEUE_RUN);
 * hvio_net_complete() also under dev->lock with the generation checked.
 */
#include <linux/kernel.h>
#include <linux/string.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/virtio_ids.h>
#include <uapi/linux/virtio_net.h>

#include "hvio_devtype.h"

#define HVIO_NET_BIT(b)		(1ULL << (b))

/* Feature bits the device model implements (device, ring, transport). */
#define HVIO_NET_FEATURES						\
	(HVIO_NET_BIT(VIRTIO_NET_F_CSUM) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_GUEST_CSUM) |			\
	 HVIO_NET_BIT(VIRTIO_NET_F_MTU) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_MAC) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_GUEST_TSO4) |			\
	 HVIO_NET_BIT(VIRTIO_NET_F_GUEST_TSO6) |			\
	 HVIO_NET_BIT(VIRTIO_NET_F_GUEST_ECN) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_GUEST_UFO) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_HOST_TSO4) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_HOST_TSO6) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_HOST_ECN) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_HOST_UFO) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_MRG_RXBUF) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_STATUS) |				\
	 HVIO_NET_BIT(VIRTIO_NET_F_SPEED_DUPLEX) |			\
	 HVIO_NET_BIT(28) /* INDIRECT_DESC */ |				\
	 HVIO_NET_BIT(29) /* EVENT_IDX */ |				\
	 HVIO_NET_BIT(HVIO_F_VERSION_1))

/* Room for a VLAN tag and the Ethernet header around an MTU of payload. */
#define HVIO_NET_L2_OVERHEAD	(ETH_HLEN + 4)
#define HVIO_NET_DEFAULT_MTU	1500
#define HVIO_NET_NUM_BUFFERS_OFF \
	offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers)

static_assert(sizeof(struct virtio_net_hdr_mrg_rxbuf) == HVIO_NET_HDR_LEN);
/* The op layout of API version 2: net_hdr padded to the segments. */
static_assert(offsetof(struct hvio_op, net_hdr) == 32);
static_assert(offsetof(struct hvio_op, segs) == 48);
static_assert(sizeof(struct hvio_op) ==
	      48 + HVIO_OP_MAX_SEGS * sizeof(struct hvio_op_seg));

static bool hvio_net_has(const struct hvio_dev *dev, unsigned int bit)
{
	return dev->mmio.driver_features & HVIO_NET_BIT(bit);
}

static void hvio_net_bad(struct hvio_queue *q, const char *why)
{
	q->stats.bad_request++;
	pr_info_ratelimited(HVIO_NAME ": zone %u dev %#llx queue %u: %s\n",
			    q->dev->zone->id, q->dev->mmio_base, q->index, why);
}

/**
 * hvio_net_attach() - per-generation setup of a net queue
 * @q: queue being attached after DRIVER_OK
 *
 * Empties the spare list (the tags it linked belong to the old rings) and
 * works out how many bytes one RX op must be able to hold: the largest
 * packet the negotiated features let the TAP hand us.
 */
static void hvio_net_attach(struct hvio_queue *q)
{
	struct hvio_dev *dev = q->dev;
	u32 mtu = HVIO_NET_DEFAULT_MTU;
	const size_t mtu_off = offsetof(struct virtio_net_config, mtu);
	bool gso;

	q->spare_head = HVIO_NO_TAG;
	q->spare_tail = HVIO_NO_TAG;
	q->nr_spare = 0;
	q->spare_bytes = 0;
	q->rx_ops = 0;
	/*
	 * The daemon may rewrite config space (HVIO_DEV_SET_CONFIG) and the
	 * bridge handler runs the register file: read both under dev->lock.
	 */
	spin_lock_irq(&dev->lock);
	q->rx_mrg = hvio_net_has(dev, VIRTIO_NET_F_MRG_RXBUF);
	if ((dev->mmio.device_features & HVIO_NET_BIT(VIRTIO_NET_F_MTU)) &&
	    dev->mmio.config_len >= mtu_off + 2)
		mtu = dev->mmio.config[mtu_off] |
		      dev->mmio.config[mtu_off + 1] << 8;
	gso = hvio_net_has(dev, VIRTIO_NET_F_GUEST_TSO4) ||
	      hvio_net_has(dev, VIRTIO_NET_F_GUEST_TSO6) ||
	      hvio_net_has(dev, VIRTIO_NET_F_GUEST_UFO);
	spin_unlock_irq(&dev->lock);
	if (gso)
		q->rx_target = HVIO_NET_HDR_LEN + HVIO_NET_MAX_FRAME;
	else
		q->rx_target = HVIO_NET_HDR_LEN +
			       min_t(u32, mtu + HVIO_NET_L2_OVERHEAD,
				     HVIO_NET_MAX_FRAME);
}

/* Is the TX header's offload request one the driver negotiated? */
static const char *hvio_net_tx_hdr_bad(struct hvio_dev *dev,
				       const struct virtio_net_hdr *h,
				       u32 frame)
{
	u8 gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	u32 start, off;

	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return "tx: header flags";
	if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		if (!hvio_net_has(dev, VIRTIO_NET_F_CSUM))
			return "tx: NEEDS_CSUM without CSUM";
		start = le16_to_cpu(h->csum_start);
		off = le16_to_cpu(h->csum_offset);
		if (start + off + 2 > frame)
			return "tx: checksum beyond the frame";
	}
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return (h->gso_type & VIRTIO_NET_HDR_GSO_ECN) ?
		       "tx: ECN without GSO" : NULL;
	if ((gso == VIRTIO_NET_HDR_GSO_TCPV4 &&
	     !hvio_net_has(dev, VIRTIO_NET_F_HOST_TSO4)) ||
	    (gso == VIRTIO_NET_HDR_GSO_TCPV6 &&
	     !hvio_net_has(dev, VIRTIO_NET_F_HOST_TSO6)) ||
	    (gso == VIRTIO_NET_HDR_GSO_UDP &&
	     !hvio_net_has(dev, VIRTIO_NET_F_HOST_UFO)) ||
	    (gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
	     gso != VIRTIO_NET_HDR_GSO_TCPV6 &&
	     gso != VIRTIO_NET_HDR_GSO_UDP))
		return "tx: gso_type not negotiated";
	if ((h->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !hvio_net_has(dev, VIRTIO_NET_F_HOST_ECN))
		return "tx: ECN not negotiated";
	if (!h->gso_size)
		return "tx: gso_size 0";
	return NULL;
}

/**
 * hvio_net_tx_prepare() - turn a transmit chain into an op
 * @q: transmit queue; q->segs holds the chain
 * @chain: the chain
 * @op: op slot of the head
 * @tag: the head's tag (nothing to keep for a TX op)
 * @done: the answer for a refused chain (left as it is: used length 0)
 *
 * Return: HVIO_REQ_OP, or HVIO_REQ_DONE (used length 0) for a chain the
 * device refuses (counted in bad_request).
 */
static enum hvio_req_kind hvio_net_tx_prepare(struct hvio_queue *q,
					      const struct hvio_vq_chain *chain,
					      struct hvio_op *op,
					      struct hvio_tag *tag,
					      struct hvio_done *done)
{
	struct virtio_net_hdr_mrg_rxbuf hdr;
	u32 frame, i, n = 0, skip = HVIO_NET_HDR_LEN;
	const char *why;

	if (chain->in_bytes) {
		hvio_net_bad(q, "tx: device-writable buffer");
		return HVIO_REQ_DONE;
	}
	if (chain->out_bytes < HVIO_NET_HDR_LEN + ETH_HLEN) {
		hvio_net_bad(q, "tx: shorter than header and Ethernet header");
		return HVIO_REQ_DONE;
	}
	frame = chain->out_bytes - HVIO_NET_HDR_LEN;
	if (frame > HVIO_NET_MAX_FRAME) {
		hvio_net_bad(q, "tx: frame over 64 KiB");
		return HVIO_REQ_DONE;
	}
	if (chain->nr_segs > HVIO_OP_MAX_SEGS) {
		hvio_net_bad(q, "tx: too many segments");
		return HVIO_REQ_DONE;
	}
	if (!hvio_queue_gather(q, chain->nr_segs, 0, &hdr, sizeof(hdr)))
		return HVIO_REQ_DONE;
	why = hvio_net_tx_hdr_bad(q->dev, &hdr.hdr, frame);
	if (why) {
		hvio_net_bad(q, why);
		return HVIO_REQ_DONE;
	}

	memset(op, 0, offsetof(struct hvio_op, segs));
	op->tag = chain->head;
	op->type = HVIO_OP_NET_TX;
	op->len = chain->out_bytes;
	memcpy(op->net_hdr, &hdr, sizeof(op->net_hdr));
	/* The frame: the chain without the header's first 12 bytes. */
	for (i = 0; i < chain->nr_segs; i++) {
		if (skip >= q->segs[i].len) {
			skip -= q->segs[i].len;
			continue;
		}
		op->segs[n].gpa = q->segs[i].gpa + skip;
		op->segs[n].len = q->segs[i].len - skip;
		op->segs[n].reserved = 0;
		skip = 0;
		n++;
	}
	op->nr_segs = n;
	return HVIO_REQ_OP;
}

/* ---- receive --------------------------------------------------------- */

static void hvio_net_spare_push(struct hvio_queue *q, u16 head)
{
	struct hvio_tag *t = &q->tags[head];

	t->state = HVIO_TAG_HELD;
	t->next = HVIO_NO_TAG;
	if (q->spare_tail == HVIO_NO_TAG)
		q->spare_head = head;
	else
		q->tags[q->spare_tail].next = head;
	q->spare_tail = head;
	q->nr_spare++;
	q->spare_bytes += t->used_len;
}

static u16 hvio_net_spare_pop(struct hvio_queue *q)
{
	u16 head = q->spare_head;
	struct hvio_tag *t = &q->tags[head];

	q->spare_head = t->next;
	if (q->spare_head == HVIO_NO_TAG)
		q->spare_tail = HVIO_NO_TAG;
	q->nr_spare--;
	q->spare_bytes -= t->used_len;
	t->next = HVIO_NO_TAG;
	return head;
}

/*
 * A chain popped for receiving: writable only, at least a header long, no
 * more segments than an op holds.  Its segments move to its own op slot
 * and it joins the spare list.  Returns false for a refused chain (already
 * queued back with length 0).
 */
static bool hvio_net_rx_keep(struct hvio_queue *q,
			     const struct hvio_vq_chain *chain)
{
	struct hvio_op *op = &q->ops[chain->head];
	struct hvio_tag *t = &q->tags[chain->head];
	const char *why = NULL;
	u32 i;

	if (chain->out_bytes)
		why = "rx: device-readable buffer";
	else if (chain->in_bytes < HVIO_NET_HDR_LEN)
		why = "rx: buffer shorter than the header";
	else if (chain->nr_segs > HVIO_OP_MAX_SEGS)
		why = "rx: too many segments";
	if (why) {
		hvio_net_bad(q, why);
		hvio_queue_done_next(q, chain->head);
		q->nr_done++;
		return false;
	}
	for (i = 0; i < chain->nr_segs; i++) {
		op->segs[i].gpa = q->segs[i].gpa;
		op->segs[i].len = q->segs[i].len;
		op->segs[i].reserved = 0;
	}
	t->nr_segs = chain->nr_segs;
	t->used_len = chain->in_bytes;
	hvio_net_spare_push(q, chain->head);
	return true;
}

/* Build one op from the spare list's leading chains; returns its tag. */
static u16 hvio_net_rx_build(struct hvio_queue *q)
{
	u16 first = hvio_net_spare_pop(q), last = first, h;
	struct hvio_op *op = &q->ops[first];
	struct hvio_tag *t = &q->tags[first];
	u64 cap = t->used_len;
	u32 nsegs = t->nr_segs, i;
	u16 chains = 1;

	while (q->rx_mrg && cap < q->rx_target && q->nr_spare &&
	       nsegs + q->tags[q->spare_head].nr_segs <= HVIO_OP_MAX_SEGS) {
		h = hvio_net_spare_pop(q);
		for (i = 0; i < q->tags[h].nr_segs; i++)
			op->segs[nsegs + i] = q->ops[h].segs[i];
		nsegs += q->tags[h].nr_segs;
		cap += q->tags[h].used_len;
		q->tags[last].next = h;
		last = h;
		chains++;
	}
	op->tag = first;
	op->type = HVIO_OP_NET_RX;
	op->nr_segs = nsegs;
	op->flags = 0;
	op->offset = 0;
	op->len = cap;
	hvio_queue_op_gen(q, op);
	t->state = HVIO_TAG_OP;
	t->rx_last = last;
	t->rx_chains = chains;
	q->rx_ops++;
	q->stats.ops++;
	return first;
}

/**
 * hvio_net_rx_fetch() - hand the daemon receive ops
 * @q: receive queue, attached, q->lock held
 * @tags: where the tags of new ops go
 * @max: at most this many ops
 * @out_flags: HVIO_RUN_OUT_MORE when the budget stopped the fetch
 *
 * The spare list is topped up from the avail ring until it can fill an op
 * (rx_target bytes with MRG_RXBUF, one chain without).  With MRG_RXBUF an
 * op that cannot reach rx_target waits for more buffers, unless no op is
 * out at all: then it goes with what there is, so a guest that posts few
 * buffers still receives what fits.
 *
 * Return: number of tags stored.
 */
static u16 hvio_net_rx_fetch(struct hvio_queue *q, u16 *tags, u16 max,
			     u32 *out_flags)
{
	u32 size = q->dev->mmio.queue_size_max, pops = 0;
	struct hvio_vq_chain chain;
	enum hvio_take took;
	bool drained, broken = false, budget = false;
	u16 n = 0;

again:
	drained = false;
	while (n < max) {
		if (n >= HVIO_NET_BUDGET_PKTS) {
			budget = q->nr_spare || hvio_queue_more(q);
			break;
		}
		/* Top up the spare list (bounded: done[] has size slots). */
		while ((q->rx_mrg ? q->spare_bytes < q->rx_target :
				    !q->nr_spare) && pops < size) {
			took = hvio_queue_take(q, &chain);
			if (took == HVIO_TAKE_EMPTY) {
				drained = true;
				break;
			}
			if (took == HVIO_TAKE_BROKEN) {
				broken = true;
				break;
			}
			if (took == HVIO_TAKE_WAIT)
				break;
			pops++;
			if (took == HVIO_TAKE_OK)
				hvio_net_rx_keep(q, &chain);
		}
		if (broken || !q->nr_spare)
			break;
		if (q->spare_bytes < q->rx_target && q->rx_mrg && q->rx_ops)
			break;
		tags[n++] = hvio_net_rx_build(q);
		if (pops >= size && !drained)
			break;
	}

	/* Generation or epoch changed: the caller's hand-out frees the ops. */
	if (!hvio_queue_flush_done(q, drained, broken))
		return n;
	/* The re-check after re-arming avail_event, as for other queues. */
	if (drained && !broken && n < max && pops < size &&
	    hvio_queue_more(q))
		goto again;
	if (budget) {
		q->stats.budget_stops++;
		*out_flags |= HVIO_RUN_OUT_MORE;
	}
	return n;
}

/* Write @len bytes at byte @off of the op's buffers (checked zone RAM). */
static void hvio_net_put(struct hvio_queue *q, const struct hvio_op *op,
			 u32 off, const void *buf, u32 len)
{
	u32 i, n;
	u8 *p;

	for (i = 0; i < op->nr_segs && len; i++) {
		if (off >= op->segs[i].len) {
			off -= op->segs[i].len;
			continue;
		}
		n = min(op->segs[i].len - off, len);
		p = hvio_zone_map(q->dev->zone, op->segs[i].gpa + off, n);
		if (WARN_ON_ONCE(!p))
			return;
		memcpy(p, buf, n);
		buf += n;
		len -= n;
		off = 0;
	}
}

/*
 * Give the chains of an op that a packet did not reach back to the end
 * of the spare list: @h to @last, linked in the op's order, @n chains of
 * @bytes.  One step whatever their number (an op sized for a 64 KiB GSO
 * packet has 17 chains of 4 KiB, a 1514-byte frame uses one).  The op's
 * head is HVIO_TAG_OP, the others are still HVIO_TAG_HELD.
 */
static void hvio_net_rx_give_back(struct hvio_queue *q, u16 h, u16 last,
				  u32 n, u64 bytes)
{
	if (h == HVIO_NO_TAG || WARN_ON_ONCE(!n))
		return;
	q->tags[h].state = HVIO_TAG_HELD;
	if (q->spare_tail == HVIO_NO_TAG)
		q->spare_head = h;
	else
		q->tags[q->spare_tail].next = h;
	q->spare_tail = last;
	q->nr_spare += n;
	q->spare_bytes += bytes;
}

static void hvio_net_rx_complete(struct hvio_queue *q, u16 tag, s32 result)
{
	struct hvio_op *op = &q->ops[tag];
	const struct hvio_tag *t = &q->tags[tag];
	u16 h, next, count = 0, last = t->rx_last, chains = t->rx_chains;
	u64 cap = op->len;	/* the op slot is read-only to the daemon */
	u32 left, give;
	__le16 nbufs;

	q->rx_ops--;
	if (result < HVIO_NET_HDR_LEN || result > cap) {
		/* Truncated, failed or cancelled: the guest sees nothing. */
		if (result != -ECANCELED)
			q->stats.rx_dropped++;
		hvio_net_rx_give_back(q, tag, last, chains, cap);
		return;
	}
	h = tag;
	left = result;
	while (h != HVIO_NO_TAG && left) {
		next = q->tags[h].next;
		give = min(left, q->tags[h].used_len);
		cap -= q->tags[h].used_len;
		q->tags[h].state = HVIO_TAG_FREE;
		hvio_vq_add_used(&q->vq, h, give);
		left -= give;
		count++;
		h = next;
	}
	/*
	 * The entries are not visible yet: the commit publishes the used
	 * index after every completion of its hold, so the guest reads this
	 * num_buffers before it can see them.
	 */
	nbufs = cpu_to_le16(count);
	hvio_net_put(q, op, HVIO_NET_NUM_BUFFERS_OFF, &nbufs, sizeof(nbufs));
	hvio_net_rx_give_back(q, h, last, chains - count, cap);
	q->stats.packets++;
	q->stats.bytes += result - HVIO_NET_HDR_LEN;
	q->stats.rx_chains += count;
}

/**
 * hvio_net_complete() - apply one completion of a net queue
 * @q: queue; dev->lock held, generation checked, @tag is an op's head
 * @tag: the op
 * @result: the daemon's result (bytes or -errno)
 */
static void hvio_net_complete(struct hvio_queue *q, u16 tag, s32 result)
{
	lockdep_assert_held(&q->dev->lock);
	if (q->index == HVIO_NET_RX_QUEUE) {
		hvio_net_rx_complete(q, tag, result);
		return;
	}
	q->tags[tag].state = HVIO_TAG_FREE;
	if (result >= 0) {
		q->stats.packets++;
		q->stats.bytes += q->ops[tag].len - HVIO_NET_HDR_LEN;
	}
	hvio_vq_add_used(&q->vq, tag, 0);
}

/*
 * receiveq1 and transmitq1 only (no MQ, no control queue).  Every fetch
 * is bounded so that one busy queue cannot hold the daemon thread that
 * serves both (the RX fetch applies the same packet budget itself).
 */
const struct hvio_devtype hvio_net_type = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.features = HVIO_NET_FEATURES,
	.num_queues = 2,
	.rx_queues = BIT(HVIO_NET_RX_QUEUE),
	.budget_pkts = HVIO_NET_BUDGET_PKTS,
	.budget_bytes = HVIO_NET_BUDGET_BYTES,
	.cancel_ok = true,
	.attach = hvio_net_attach,
	.prepare = hvio_net_tx_prepare,
	.rx_fetch = hvio_net_rx_fetch,
	.complete = hvio_net_complete,
};
