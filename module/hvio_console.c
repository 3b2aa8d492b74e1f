// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: virtio-console queues (virtio 1.2, section 5.3), port 0 only.
 *
 * transmitq0 (queue 1): each chain is bytes the guest wrote to its
 * console, device-readable only; it becomes one HVIO_OP_WRITE op whose
 * segments are the chain's.  The daemon writes them to its backend (a PTY
 * or a socket) and commits once every byte is out, so a backend nobody
 * reads holds the op and the guest's ring fills: nothing is dropped.
 *
 * receiveq0 (queue 0): each chain is an empty buffer, device-writable
 * only; it becomes one HVIO_OP_READ op.  The daemon keeps such ops until
 * its backend has input, reads at most len bytes into them and commits
 * the count, which becomes the used length.  Input typed while the guest
 * posts no buffers waits in the backend.  Unlike virtio-net there is no
 * header and no packet to keep whole, so one chain is one op.
 *
 * Not offered: MULTIPORT (more queues and a control queue whose messages
 * the device must answer: nothing here parses them), EMERG_WRITE (a
 * config-space write the register file does not forward).  F_SIZE is only
 * config space: the daemon updates cols/rows with HVIO_DEV_SET_CONFIG and
 * its config-change interrupt.
 *
 * Everything here runs under the queue's lock (HVIO_DEV_QUEUE_RUN);
 * hvio_console_complete() also under dev->lock with the generation checked.
 */
#include <linux/kernel.h>
#include <linux/string.h>
#include <uapi/linux/virtio_console.h>
#include <uapi/linux/virtio_ids.h>

#include "hvio_devtype.h"

#define HVIO_CONSOLE_BIT(b)	(1ULL << (b))

#define HVIO_CONSOLE_RX_QUEUE	0	/* receiveq0; transmitq0 is 1 */

/* Feature bits the device model implements (device, ring, transport). */
#define HVIO_CONSOLE_FEATURES						\
	(HVIO_CONSOLE_BIT(VIRTIO_CONSOLE_F_SIZE) |			\
	 HVIO_CONSOLE_BIT(28) /* INDIRECT_DESC */ |			\
	 HVIO_CONSOLE_BIT(29) /* EVENT_IDX */ |				\
	 HVIO_CONSOLE_BIT(HVIO_F_VERSION_1))

static void hvio_console_bad(struct hvio_queue *q, const char *why)
{
	q->stats.bad_request++;
	pr_info_ratelimited(HVIO_NAME ": zone %u dev %#llx queue %u: %s\n",
			    q->dev->zone->id, q->dev->mmio_base, q->index, why);
}

/**
 * hvio_console_prepare() - turn a chain of either queue into an op
 * @q: queue; q->segs holds the chain
 * @chain: the chain
 * @op: op slot of the head
 * @tag: the head's tag (nothing to keep)
 * @done: the answer for a refused chain (left as it is: used length 0)
 *
 * Return: HVIO_REQ_OP, or HVIO_REQ_DONE for a chain with buffers of the
 * wrong direction or more segments than an op holds (counted in
 * bad_request).
 */
static enum hvio_req_kind hvio_console_prepare(struct hvio_queue *q,
					       const struct hvio_vq_chain *chain,
					       struct hvio_op *op,
					       struct hvio_tag *tag,
					       struct hvio_done *done)
{
	bool rx = q->index == HVIO_CONSOLE_RX_QUEUE;
	u32 i;

	if (rx && chain->out_bytes) {
		hvio_console_bad(q, "rx: device-readable buffer");
		return HVIO_REQ_DONE;
	}
	if (!rx && chain->in_bytes) {
		hvio_console_bad(q, "tx: device-writable buffer");
		return HVIO_REQ_DONE;
	}
	if (chain->nr_segs > HVIO_OP_MAX_SEGS) {
		hvio_console_bad(q, "too many segments");
		return HVIO_REQ_DONE;
	}
	memset(op, 0, offsetof(struct hvio_op, segs));
	op->tag = chain->head;
	op->type = rx ? HVIO_OP_READ : HVIO_OP_WRITE;
	op->len = rx ? chain->in_bytes : chain->out_bytes;
	for (i = 0; i < chain->nr_segs; i++) {
		op->segs[i].gpa = q->segs[i].gpa;
		op->segs[i].len = q->segs[i].len;
		op->segs[i].reserved = 0;
	}
	op->nr_segs = chain->nr_segs;
	return HVIO_REQ_OP;
}

/**
 * hvio_console_complete() - apply one completion of a console queue
 * @q: queue; dev->lock held, generation checked, @tag is an op's head
 * @tag: the op
 * @result: bytes written or read, or -errno
 *
 * A receive op becomes a used entry of @result bytes; 0, an error, a
 * cancelled op or a count above the op's length return the buffer empty
 * (the guest posts it again).  A transmit op's chain goes back with used
 * length 0.
 */
static void hvio_console_complete(struct hvio_queue *q, u16 tag, s32 result)
{
	const struct hvio_op *op = &q->ops[tag];
	u32 used = 0;

	lockdep_assert_held(&q->dev->lock);
	q->tags[tag].state = HVIO_TAG_FREE;
	if (q->index == HVIO_CONSOLE_RX_QUEUE) {
		if (result > 0 && result <= op->len)
			used = result;
		else if (result > 0)
			q->stats.rx_dropped++;
		if (used) {
			q->stats.packets++;
			q->stats.bytes += used;
		}
	} else if (result >= 0) {
		q->stats.packets++;
		q->stats.bytes += op->len;
	}
	hvio_vq_add_used(&q->vq, tag, used);
}

/*
 * receiveq0 and transmitq0 (no MULTIPORT).  receiveq0's buffers wait for
 * input, so it is never polled; each of its chains is one op through
 * prepare (no rx_fetch).  Receive ops not used at shutdown come back
 * cancelled.
 */
const struct hvio_devtype hvio_console_type = {
	.name = "console",
	.device_id = VIRTIO_ID_CONSOLE,
	.features = HVIO_CONSOLE_FEATURES,
	.num_queues = 2,
	.rx_queues = BIT(HVIO_CONSOLE_RX_QUEUE),
	.cancel_ok = true,
	.prepare = hvio_console_prepare,
	.complete = hvio_console_complete,
};
