// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: virtio-blk requests (virtio 1.2, section 5.2.6).
 *
 * A request is a 16-byte header, data, and a one-byte status, with any
 * descriptor layout (VERSION_1 implies ANY_LAYOUT): the header is gathered
 * from the first readable bytes wherever they lie, the status is the last
 * writable byte.  Everything the guest can get wrong is answered here with
 * the spec's status code and never reaches the daemon or the image.
 */
#include <linux/kernel.h>
#include <linux/limits.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/virtio_blk.h>
#include <uapi/linux/virtio_ids.h>

#include "hvio_devtype.h"

#define HVIO_SECTOR_SHIFT	9

/* Largest capacity whose byte offsets (sector << 9) fit in 64 bits. */
#define HVIO_BLK_MAX_SECTORS	(U64_MAX >> HVIO_SECTOR_SHIFT)

#define HVIO_BLK_BIT(b)		(1ULL << (b))

/*
 * Feature bits the request engine implements.  Everything here is either
 * carried out by hvio_blk_prepare() or only describes config space; ring
 * and transport features the engine lacks (RING_PACKED, IN_ORDER,
 * ACCESS_PLATFORM, NOTIFICATION_DATA, ...) and request types it does not
 * parse (LIFETIME, SECURE_ERASE, ZONED) are refused at creation
 * (hvio_blk_type.features): a guest that negotiated them would speak a
 * protocol nobody answers.
 */
#define HVIO_BLK_FEATURES						\
	(HVIO_BLK_BIT(VIRTIO_BLK_F_SIZE_MAX) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_SEG_MAX) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_GEOMETRY) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_RO) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_BLK_SIZE) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_FLUSH) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_TOPOLOGY) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_CONFIG_WCE) |			\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_MQ) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_DISCARD) |				\
	 HVIO_BLK_BIT(VIRTIO_BLK_F_WRITE_ZEROES) |			\
	 HVIO_BLK_BIT(28) /* INDIRECT_DESC */ |				\
	 HVIO_BLK_BIT(29) /* EVENT_IDX */ |				\
	 HVIO_BLK_BIT(HVIO_F_VERSION_1))

/*
 * Config space is the daemon's little-endian virtio_blk_config.  It
 * changes under dev->lock (HVIO_DEV_SET_CONFIG, the guest's wce byte), and
 * requests are prepared under the queue's mutex only: read it locked so a
 * field is never half old, half new.
 */
static u64 hvio_blk_cfg_locked(struct hvio_dev *dev, size_t off, size_t len)
{
	u64 v = 0;
	size_t i;

	lockdep_assert_held(&dev->lock);
	for (i = 0; i < len && off + i < dev->mmio.config_len; i++)
		v |= (u64)dev->mmio.config[off + i] << (8 * i);
	return v;
}

static u64 hvio_blk_cfg(struct hvio_dev *dev, size_t off, size_t len)
{
	unsigned long flags;
	u64 v;

	spin_lock_irqsave(&dev->lock, flags);
	v = hvio_blk_cfg_locked(dev, off, len);
	spin_unlock_irqrestore(&dev->lock, flags);
	return v;
}

#define HVIO_BLK_OFF(field) offsetof(struct virtio_blk_config, field)
#define HVIO_BLK_LEN(field) sizeof(((struct virtio_blk_config *)0)->field)
#define HVIO_BLK_CFG(dev, field)					\
	hvio_blk_cfg(dev, HVIO_BLK_OFF(field), HVIO_BLK_LEN(field))
#define HVIO_BLK_CFG_LOCKED(dev, field)					\
	hvio_blk_cfg_locked(dev, HVIO_BLK_OFF(field), HVIO_BLK_LEN(field))

static bool hvio_blk_has(struct hvio_dev *dev, unsigned int bit)
{
	return dev->mmio.driver_features & (1ULL << bit);
}

/*
 * Setup at creation: the wce byte is the one config field the driver may
 * write, once it negotiated VIRTIO_BLK_F_CONFIG_WCE.
 */
static void hvio_blk_init(struct hvio_dev *dev)
{
	if (dev->mmio.config_len <= offsetof(struct virtio_blk_config, wce))
		return;
	dev->mmio.cfg_wr_off = offsetof(struct virtio_blk_config, wce);
	dev->mmio.cfg_wr_feature = VIRTIO_BLK_F_CONFIG_WCE;
}

/**
 * hvio_blk_status() - virtio-blk status for a daemon result
 * @result: 0 or positive for success, a negative errno
 *
 * Return: VIRTIO_BLK_S_OK, S_UNSUPP for -EOPNOTSUPP, else S_IOERR.
 */
static u8 hvio_blk_status(s32 result)
{
	if (result >= 0)
		return VIRTIO_BLK_S_OK;
	if (result == -EOPNOTSUPP)
		return VIRTIO_BLK_S_UNSUPP;
	return VIRTIO_BLK_S_IOERR;
}

/*
 * Bytes [skip, total - drop) of the readable (@write false) or writable
 * part of the chain become the op's data segments.  Returns the number of
 * segments or -1 when there are more than HVIO_OP_MAX_SEGS.
 */
static int hvio_blk_slice(struct hvio_queue *q, u16 nr, bool write, u32 skip,
			  u32 keep, struct hvio_op *op)
{
	const struct hvio_vq_seg *s;
	int n = 0;
	u32 i, take;

	for (i = 0; i < nr && keep; i++) {
		s = &q->segs[i];
		if (!!s->write != write)
			continue;
		if (skip >= s->len) {
			skip -= s->len;
			continue;
		}
		if (n == HVIO_OP_MAX_SEGS)
			return -1;
		take = min(s->len - skip, keep);
		op->segs[n].gpa = s->gpa + skip;
		op->segs[n].len = take;
		op->segs[n].reserved = 0;
		n++;
		keep -= take;
		skip = 0;
	}
	return n;
}

/*
 * q->lock held: bring the queue's copy of capacity and write cache mode
 * up to date.  Only a change of config space (the daemon's resize, the
 * driver's wce) or of generation (features) takes dev->lock; a request
 * racing such a change sees it before or after, as with a locked read.
 */
static void hvio_blk_cfg_refresh(struct hvio_queue *q)
{
	struct hvio_dev *dev = q->dev;

	if (q->blk_cfg_gen == READ_ONCE(dev->mmio.generation) &&
	    q->blk_cfg_seq == READ_ONCE(dev->mmio.config_seq))
		return;
	spin_lock_irq(&dev->lock);
	q->blk_cfg_gen = dev->mmio.generation;
	q->blk_cfg_seq = dev->mmio.config_seq;
	q->blk_capacity = min_t(u64, HVIO_BLK_CFG_LOCKED(dev, capacity),
				HVIO_BLK_MAX_SECTORS);
	/* Writes are durable at completion unless the guest chose writeback. */
	if (hvio_blk_has(dev, VIRTIO_BLK_F_CONFIG_WCE))
		q->blk_writethrough = !HVIO_BLK_CFG_LOCKED(dev, wce);
	else
		q->blk_writethrough = !hvio_blk_has(dev, VIRTIO_BLK_F_FLUSH);
	spin_unlock_irq(&dev->lock);
}

/* Is [sector, sector + bytes / 512) inside the disk? */
static bool hvio_blk_in_range(struct hvio_queue *q, u64 sector, u64 bytes)
{
	u64 capacity = q->blk_capacity;
	u64 sectors = bytes >> HVIO_SECTOR_SHIFT;

	return sector <= capacity && sectors <= capacity - sector;
}

/* DISCARD and WRITE_ZEROES: one range segment of 16 bytes. */
static u8 hvio_blk_range_op(struct hvio_queue *q, u16 nr, u32 data_len,
			    u32 type, struct hvio_op *op)
{
	struct hvio_dev *dev = q->dev;
	struct virtio_blk_discard_write_zeroes seg;
	bool zeroes = type == VIRTIO_BLK_T_WRITE_ZEROES;
	u32 flags, max;
	u64 sector, num;

	if (!hvio_blk_has(dev, zeroes ? VIRTIO_BLK_F_WRITE_ZEROES :
					VIRTIO_BLK_F_DISCARD))
		return VIRTIO_BLK_S_UNSUPP;
	if (dev->mmio.device_features & (1ULL << VIRTIO_BLK_F_RO))
		return VIRTIO_BLK_S_IOERR;
	/* We offer max_*_seg = 1: exactly one range. */
	if (data_len != sizeof(seg) ||
	    !hvio_queue_gather(q, nr, sizeof(struct virtio_blk_outhdr), &seg,
			     sizeof(seg)))
		return VIRTIO_BLK_S_IOERR;
	sector = le64_to_cpu(seg.sector);
	num = le32_to_cpu(seg.num_sectors);
	flags = le32_to_cpu(seg.flags);
	if (flags & ~(zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0))
		return VIRTIO_BLK_S_UNSUPP;
	max = zeroes ? HVIO_BLK_CFG(dev, max_write_zeroes_sectors) :
		       HVIO_BLK_CFG(dev, max_discard_sectors);
	/*
	 * discard_sector_alignment only tells the driver how to split
	 * (virtio 1.2, 5.2.4); Linux's ext4 with 1 KiB blocks sends discards
	 * off it, and punching any sector range is fine for the backends.
	 */
	if (!num || num > max || !hvio_blk_in_range(q, sector, num << 9))
		return VIRTIO_BLK_S_IOERR;

	op->type = zeroes ? HVIO_OP_WRITE_ZEROES : HVIO_OP_DISCARD;
	op->flags = (flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP) ?
		    HVIO_OP_F_UNMAP : 0;
	op->offset = sector << HVIO_SECTOR_SHIFT;
	op->len = num << HVIO_SECTOR_SHIFT;
	return VIRTIO_BLK_S_OK;
}

/* IN and OUT: data between header and status, in whole sectors. */
static u8 hvio_blk_rw_op(struct hvio_queue *q, u16 nr, bool in, u64 sector,
			 u32 len, struct hvio_op *op)
{
	struct hvio_dev *dev = q->dev;
	u32 skip = in ? 0 : sizeof(struct virtio_blk_outhdr);
	int segs;

	if (!in && (dev->mmio.device_features & (1ULL << VIRTIO_BLK_F_RO)))
		return VIRTIO_BLK_S_IOERR;
	if (len & ((1U << HVIO_SECTOR_SHIFT) - 1) ||
	    !hvio_blk_in_range(q, sector, len))
		return VIRTIO_BLK_S_IOERR;
	segs = hvio_blk_slice(q, nr, in, skip, len, op);
	if (segs < 0)
		return VIRTIO_BLK_S_IOERR;
	op->type = in ? HVIO_OP_READ : HVIO_OP_WRITE;
	op->nr_segs = segs;
	op->flags = (!in && q->blk_writethrough) ? HVIO_OP_F_FUA : 0;
	op->offset = sector << HVIO_SECTOR_SHIFT;
	op->len = len;
	return VIRTIO_BLK_S_OK;
}

/**
 * hvio_blk_prepare() - turn a checked chain into an op or an answer
 * @q: queue the chain came from; q->segs holds its segments
 * @chain: the chain (head, counts)
 * @op: op slot of the head (not in flight)
 * @tag: per-tag state to fill for an op
 * @done: answer to fill when the kernel finishes the request itself
 *
 * Return: HVIO_REQ_OP when @op goes to the daemon, HVIO_REQ_DONE otherwise.
 */
static enum hvio_req_kind hvio_blk_prepare(struct hvio_queue *q,
					   const struct hvio_vq_chain *chain,
					   struct hvio_op *op,
					   struct hvio_tag *tag,
					   struct hvio_done *done)
{
	const u32 hdr_len = sizeof(struct virtio_blk_outhdr);
	const struct hvio_vq_seg *last = &q->segs[chain->nr_segs - 1];
	struct virtio_blk_outhdr hdr;
	u32 type, in_data;
	int segs;
	u8 status;

	done->used_len = 0;
	if (!chain->in_bytes || !chain->nr_segs || !last->write) {
		/* Nowhere to put a status: hand the buffer back empty. */
		q->stats.bad_request++;
		return HVIO_REQ_DONE;
	}
	done->has_status = true;
	done->status_gpa = last->gpa + last->len - 1;
	done->used_len = 1;
	done->status = VIRTIO_BLK_S_IOERR;
	in_data = chain->in_bytes - 1;

	if (chain->out_bytes < hdr_len ||
	    !hvio_queue_gather(q, chain->nr_segs, 0, &hdr, hdr_len)) {
		q->stats.bad_request++;
		return HVIO_REQ_DONE;
	}
	type = le32_to_cpu(hdr.type);
	hvio_blk_cfg_refresh(q);
	memset(op, 0, offsetof(struct hvio_op, segs));
	op->tag = chain->head;

	switch (type) {
	case VIRTIO_BLK_T_IN:
		status = hvio_blk_rw_op(q, chain->nr_segs, true,
					le64_to_cpu(hdr.sector), in_data, op);
		break;
	case VIRTIO_BLK_T_OUT:
		status = hvio_blk_rw_op(q, chain->nr_segs, false,
					le64_to_cpu(hdr.sector),
					chain->out_bytes - hdr_len, op);
		break;
	case VIRTIO_BLK_T_FLUSH:
		status = hvio_blk_has(q->dev, VIRTIO_BLK_F_FLUSH) ?
			 VIRTIO_BLK_S_OK : VIRTIO_BLK_S_UNSUPP;
		op->type = HVIO_OP_FLUSH;
		break;
	case VIRTIO_BLK_T_GET_ID:
		/*
		 * Answered here.  The op slot (not in flight, never fetched)
		 * keeps the data segments until the serial is copied at
		 * write-back, under the generation check.
		 */
		in_data = min_t(u32, in_data, VIRTIO_BLK_ID_BYTES);
		segs = hvio_blk_slice(q, chain->nr_segs, true, 0, in_data, op);
		if (segs < 0)
			return HVIO_REQ_DONE;
		op->nr_segs = segs;
		done->fill = true;
		done->status = VIRTIO_BLK_S_OK;
		done->used_len = 1 + in_data;
		return HVIO_REQ_DONE;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		status = hvio_blk_range_op(q, chain->nr_segs,
					   chain->out_bytes - hdr_len, type,
					   op);
		break;
	default:
		status = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	if (status != VIRTIO_BLK_S_OK) {
		if (status == VIRTIO_BLK_S_IOERR)
			q->stats.bad_request++;
		done->status = status;
		return HVIO_REQ_DONE;
	}
	if ((op->type == HVIO_OP_READ || op->type == HVIO_OP_WRITE) &&
	    !op->len) {
		/* A zero-length transfer moves no data. */
		done->status = VIRTIO_BLK_S_OK;
		return HVIO_REQ_DONE;
	}
	tag->status = (u8 *)last->va + last->len - 1;
	tag->used_len = 1 + (op->type == HVIO_OP_READ ? (u32)op->len : 0);
	return HVIO_REQ_OP;
}

/**
 * hvio_blk_finish_get_id() - copy the serial into a GET_ID request
 * @q: queue; dev->lock held, generation checked
 * @done: the GET_ID answer; ops[head].segs holds its data segments
 */
static void hvio_blk_finish_get_id(struct hvio_queue *q,
				   struct hvio_done *done)
{
	const struct hvio_op *op = &q->ops[done->head];
	u32 i, off = 0, n;
	u8 *p;

	for (i = 0; i < op->nr_segs && off < VIRTIO_BLK_ID_BYTES; i++) {
		n = min_t(u32, op->segs[i].len, VIRTIO_BLK_ID_BYTES - off);
		p = hvio_zone_map(q->dev->zone, op->segs[i].gpa, n);
		if (p)
			memcpy(p, q->dev->serial + off, n);
		off += n;
	}
}

/**
 * hvio_blk_complete() - apply the daemon's result to a request
 * @q: queue; dev->lock held, generation checked, @tag is an op's head
 * @tag: the op
 * @result: 0 or positive for success, a negative errno
 */
static void hvio_blk_complete(struct hvio_queue *q, u16 tag, s32 result)
{
	struct hvio_tag *t = &q->tags[tag];
	u8 status = hvio_blk_status(result);

	t->state = HVIO_TAG_FREE;
	WRITE_ONCE(*t->status, status);
	hvio_vq_add_used(&q->vq, tag, status ? 1 : t->used_len);
}

/* Any number of request queues (MQ), no budget: the daemon's max_fetch. */
const struct hvio_devtype hvio_blk_type = {
	.name = "blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = HVIO_BLK_FEATURES,
	.init = hvio_blk_init,
	.prepare = hvio_blk_prepare,
	.complete = hvio_blk_complete,
	.fill_done = hvio_blk_finish_get_id,
};
