// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: virtio-mmio version 2 register file.
 *
 * Every value here comes from a guest vCPU through hvisor, so nothing is
 * trusted: offsets, widths and values are checked, a violation is ignored
 * and counted, and no input can make the device touch memory outside its
 * own state.  Offsets follow virtio 1.2 section 4.2.2.
 */
#ifdef __KERNEL__
#include <linux/string.h>
#include <linux/bits.h>
#include <linux/nospec.h>
#else
#include <string.h>
/* No speculation barrier needed for the userspace build (tests, fuzzer). */
#define array_index_nospec(i, n) (i)
#endif

#include "hvio_mmio.h"

/*
 * Queue ring alignment (virtio 1.2, 2.7.2 for split rings): descriptor
 * table 16, available ring 2, used ring 4 bytes.
 */
#define HVIO_ALIGN_DESC		16
#define HVIO_ALIGN_DRIVER	2
#define HVIO_ALIGN_DEVICE	4

/**
 * hvio_mmio_init() - set a register file to its power-on state
 * @m: register file with identity fields already filled in
 * @ops: callbacks into the owning device
 * @stats: counters to account violations in
 */
void hvio_mmio_init(struct hvio_mmio *m, const struct hvio_mmio_ops *ops,
		    struct hvio_dev_stats *stats)
{
	m->ops = ops;
	m->stats = stats;
	m->config_generation = 0;
	m->generation = 0;
	hvio_mmio_reset(m);
}

/**
 * hvio_mmio_reset() - device reset (Status written 0)
 * @m: register file
 *
 * Clears everything the driver negotiated or set up; identity, config
 * space and ConfigGeneration are the device's and stay.
 */
void hvio_mmio_reset(struct hvio_mmio *m)
{
	m->driver_features = 0;
	m->dev_feat_sel = 0;
	m->drv_feat_sel = 0;
	m->queue_sel = 0;
	m->status = 0;
	m->int_status = 0;
	memset(m->queues, 0, sizeof(m->queues));
	m->generation++;
}

/**
 * hvio_mmio_latch() - set InterruptStatus bits, inject later
 * @m: register file
 * @bits: HVIO_INT_VRING and/or HVIO_INT_CONFIG
 *
 * The caller passes @bits to hvio_mmio_inject() once it has dropped the
 * device lock: the injection (a hypercall on hvisor) then runs with
 * interrupts on and without blocking the bridge handler.  A guest that
 * reads InterruptStatus before the interrupt comes finds the bits set.
 */
void hvio_mmio_latch(struct hvio_mmio *m, u32 bits)
{
	m->int_status |= bits;
	m->stats->irqs++;
}

/**
 * hvio_mmio_inject() - inject the interrupt for bits already latched
 * @m: register file; the device lock need not be held
 * @bits: what hvio_mmio_latch() set
 */
void hvio_mmio_inject(struct hvio_mmio *m, u32 bits)
{
	if (m->ops->interrupt)
		m->ops->interrupt(m, bits);
}

/**
 * hvio_mmio_raise() - set InterruptStatus bits and inject the interrupt
 * @m: register file
 * @bits: HVIO_INT_VRING and/or HVIO_INT_CONFIG
 */
void hvio_mmio_raise(struct hvio_mmio *m, u32 bits)
{
	hvio_mmio_latch(m, bits);
	hvio_mmio_inject(m, bits);
}

/*
 * QueueSel is a guest value: clamp it under speculation too before it
 * indexes queues[] (Spectre v1).
 */
static struct hvio_mmio_queue *hvio_mmio_selq(struct hvio_mmio *m)
{
	if (m->queue_sel >= m->num_queues) {
		m->stats->bad_queue++;
		return NULL;
	}
	return &m->queues[array_index_nospec(m->queue_sel, m->num_queues)];
}

static bool hvio_mmio_pow2(u32 v)
{
	return v && !(v & (v - 1));
}

/*
 * Sizes of the three split-ring areas for @num entries, with the event
 * index fields included whether or not EVENT_IDX is negotiated (the larger
 * bound is the safe one).
 */
static bool hvio_mmio_queue_ok(struct hvio_mmio *m, struct hvio_mmio_queue *q)
{
	u64 desc_len = 16ULL * q->num;
	u64 avail_len = 6 + 2ULL * q->num;
	u64 used_len = 6 + 8ULL * q->num;

	if (!hvio_mmio_pow2(q->num) || q->num > m->queue_size_max)
		return false;
	if ((q->desc % HVIO_ALIGN_DESC) || (q->driver % HVIO_ALIGN_DRIVER) ||
	    (q->device % HVIO_ALIGN_DEVICE))
		return false;
	if (!m->ops->ram_ok)
		return false;
	return m->ops->ram_ok(m, q->desc, desc_len) &&
	       m->ops->ram_ok(m, q->driver, avail_len) &&
	       m->ops->ram_ok(m, q->device, used_len);
}

/**
 * hvio_mmio_needs_reset() - the device cannot go on: ask for a reset
 * @m: register file
 *
 * Sets DEVICE_NEEDS_RESET and raises a configuration interrupt the first
 * time; the bit stays until the driver resets the device.
 */
void hvio_mmio_needs_reset(struct hvio_mmio *m)
{
	u32 old = m->status;

	if (old & HVIO_S_NEEDS_RESET)
		return;
	m->status |= HVIO_S_NEEDS_RESET;
	if (m->ops->status)
		m->ops->status(m, old, m->status, false);
	hvio_mmio_raise(m, HVIO_INT_CONFIG);
}

static void hvio_mmio_set_ready(struct hvio_mmio *m, u32 value)
{
	struct hvio_mmio_queue *q = hvio_mmio_selq(m);

	if (!q)
		return;
	if (!value) {
		/*
		 * The driver takes the queue back: a new epoch tells the
		 * engine to stop using the rings and to attach again at the
		 * next QueueReady = 1 (virtio 1.2, 4.2.3.2).
		 */
		if (q->ready)
			q->epoch++;
		q->ready = 0;
		return;
	}
	if (q->ready)
		return;
	if (!hvio_mmio_queue_ok(m, q)) {
		/*
		 * The spec gives no way to fail QueueReady; a device that
		 * cannot use the queue asks the driver for a reset.
		 */
		m->stats->queue_refused++;
		hvio_mmio_needs_reset(m);
		return;
	}
	q->ready = 1;
}

static void hvio_mmio_set_status(struct hvio_mmio *m, u32 value)
{
	u32 old = m->status;
	u32 new = value;

	/* The status is one byte; bits above it are reserved, never a reset. */
	if (new > 0xff) {
		m->stats->bad_state++;
		return;
	}
	if (!new) {
		m->stats->resets++;
		hvio_mmio_reset(m);
		if (m->ops->status)
			m->ops->status(m, old, 0, true);
		return;
	}
	/* The driver never clears a bit except by writing 0. */
	if ((old & ~new) & ~HVIO_S_NEEDS_RESET) {
		m->stats->bad_state++;
		return;
	}
	/* NEEDS_RESET is the device's bit: the driver cannot set or clear it. */
	new = (new & ~HVIO_S_NEEDS_RESET) | (old & HVIO_S_NEEDS_RESET);

	if ((new & HVIO_S_FEATURES_OK) && !(old & HVIO_S_FEATURES_OK)) {
		u64 drv = m->driver_features;

		if ((drv & ~m->device_features) ||
		    !(drv & (1ULL << HVIO_F_VERSION_1))) {
			m->stats->features_refused++;
			new &= ~HVIO_S_FEATURES_OK;
		}
	}
	if ((new & HVIO_S_DRIVER_OK) && !(new & HVIO_S_FEATURES_OK)) {
		m->stats->bad_state++;
		new &= ~HVIO_S_DRIVER_OK;
	}
	m->status = new;
	if (new != old && m->ops->status)
		m->ops->status(m, old, new, false);
}

static void hvio_mmio_set_features(struct hvio_mmio *m, u32 value)
{
	if (m->status & HVIO_S_FEATURES_OK) {
		m->stats->bad_state++;
		return;
	}
	switch (m->drv_feat_sel) {
	case 0:
		m->driver_features = (m->driver_features & ~0xffffffffULL) |
				     value;
		break;
	case 1:
		m->driver_features = (m->driver_features & 0xffffffffULL) |
				     ((u64)value << 32);
		break;
	default:
		/* Words beyond 64 bits: no feature exists there. */
		if (value)
			m->stats->bad_state++;
		break;
	}
}

/* Write one half of a 64-bit queue address, only while not ready. */
static void hvio_mmio_set_addr(struct hvio_mmio *m, u32 offset, u32 value)
{
	struct hvio_mmio_queue *q = hvio_mmio_selq(m);
	u64 *addr;

	if (!q)
		return;
	if (q->ready) {
		m->stats->bad_state++;
		return;
	}
	switch (offset & ~0x4U) {
	case HVIO_REG_QUEUE_DESC_LO:
		addr = &q->desc;
		break;
	case HVIO_REG_QUEUE_DRV_LO:
		addr = &q->driver;
		break;
	default:
		addr = &q->device;
		break;
	}
	if (offset & 0x4)
		*addr = (*addr & 0xffffffffULL) | ((u64)value << 32);
	else
		*addr = (*addr & ~0xffffffffULL) | value;
}

static u64 hvio_mmio_read_config(struct hvio_mmio *m, u64 off, u32 size)
{
	u64 v = 0;
	u32 i;

	if ((size != 1 && size != 2 && size != 4 && size != 8) ||
	    (off & (size - 1)) || off >= m->config_len ||
	    size > m->config_len - off) {
		m->stats->bad_offset++;
		return 0;
	}
	/* Config space is little endian whatever the host is. */
	for (i = 0; i < size; i++)
		v |= (u64)m->config[off + i] << (8 * i);
	return v;
}

/**
 * hvio_mmio_read() - a guest read of the register window
 * @m: register file (device lock held)
 * @offset: offset inside the device's MMIO window
 * @size: access width in bytes
 *
 * Return: the value the guest reads; 0 for anything invalid.
 */
u64 hvio_mmio_read(struct hvio_mmio *m, u64 offset, u32 size)
{
	struct hvio_mmio_queue *q;

	m->stats->reg_reads++;
	if (offset >= HVIO_REG_CONFIG)
		return hvio_mmio_read_config(m, offset - HVIO_REG_CONFIG, size);
	if (size != 4 || (offset & 3)) {
		m->stats->bad_width++;
		return 0;
	}

	switch (offset) {
	case HVIO_REG_MAGIC:
		return HVIO_MMIO_MAGIC;
	case HVIO_REG_VERSION:
		return HVIO_MMIO_VERSION;
	case HVIO_REG_DEVICE_ID:
		return m->device_id;
	case HVIO_REG_VENDOR_ID:
		return HVIO_MMIO_VENDOR;
	case HVIO_REG_DEV_FEAT:
		if (m->dev_feat_sel == 0)
			return (u32)m->device_features;
		if (m->dev_feat_sel == 1)
			return (u32)(m->device_features >> 32);
		return 0;
	case HVIO_REG_QUEUE_NUM_MAX:
		/* Probing for queues that do not exist is legal: read 0. */
		if (m->queue_sel >= m->num_queues)
			return 0;
		return m->queue_size_max;
	case HVIO_REG_QUEUE_READY:
		if (m->queue_sel >= m->num_queues)
			return 0;
		q = &m->queues[array_index_nospec(m->queue_sel,
						  m->num_queues)];
		return q->ready;
	case HVIO_REG_INT_STATUS:
		return m->int_status;
	case HVIO_REG_STATUS:
		return m->status;
	case HVIO_REG_SHM_LEN_LO:
	case HVIO_REG_SHM_LEN_HI:
	case HVIO_REG_SHM_BASE_LO:
	case HVIO_REG_SHM_BASE_HI:
		/* No shared memory regions: length and base read all ones. */
		return 0xffffffff;
	case HVIO_REG_CONFIG_GEN:
		return m->config_generation;
	default:
		m->stats->bad_offset++;
		return 0;
	}
}

/**
 * hvio_mmio_write() - a guest write to the register window
 * @m: register file (device lock held)
 * @offset: offset inside the device's MMIO window
 * @size: access width in bytes
 * @value: value written
 */
void hvio_mmio_write(struct hvio_mmio *m, u64 offset, u32 size, u64 value)
{
	struct hvio_mmio_queue *q;
	u32 v = (u32)value;

	m->stats->reg_writes++;
	if (offset >= HVIO_REG_CONFIG) {
		m->stats->config_writes++;
		if (m->cfg_wr_off >= 0 && size == 1 && value <= 1 &&
		    offset - HVIO_REG_CONFIG == (u64)m->cfg_wr_off &&
		    (m->driver_features & (1ULL << m->cfg_wr_feature))) {
			m->config[m->cfg_wr_off] = (u8)value;
			WRITE_ONCE(m->config_seq, m->config_seq + 1);
		}
		return;
	}
	if (size != 4 || (offset & 3)) {
		m->stats->bad_width++;
		return;
	}

	switch (offset) {
	case HVIO_REG_DEV_FEAT_SEL:
		m->dev_feat_sel = v;
		break;
	case HVIO_REG_DRV_FEAT:
		hvio_mmio_set_features(m, v);
		break;
	case HVIO_REG_DRV_FEAT_SEL:
		m->drv_feat_sel = v;
		break;
	case HVIO_REG_QUEUE_SEL:
		m->queue_sel = v;
		break;
	case HVIO_REG_QUEUE_NUM:
		q = hvio_mmio_selq(m);
		if (!q)
			break;
		if (q->ready)
			m->stats->bad_state++;
		else
			q->num = v;
		break;
	case HVIO_REG_QUEUE_READY:
		hvio_mmio_set_ready(m, v);
		break;
	case HVIO_REG_QUEUE_NOTIFY:
		/*
		 * Without VIRTIO_F_NOTIFICATION_DATA the value is the queue
		 * index.  A notify for a queue that is not live is noise.
		 */
		if (v >= m->num_queues ||
		    !m->queues[array_index_nospec(v, m->num_queues)].ready) {
			m->stats->bad_queue++;
			break;
		}
		m->stats->notifies++;
		if (m->ops->kick)
			m->ops->kick(m, v);
		break;
	case HVIO_REG_INT_ACK:
		m->int_status &= ~v;
		break;
	case HVIO_REG_STATUS:
		hvio_mmio_set_status(m, v);
		break;
	case HVIO_REG_QUEUE_DESC_LO:
	case HVIO_REG_QUEUE_DESC_HI:
	case HVIO_REG_QUEUE_DRV_LO:
	case HVIO_REG_QUEUE_DRV_HI:
	case HVIO_REG_QUEUE_DEV_LO:
	case HVIO_REG_QUEUE_DEV_HI:
		hvio_mmio_set_addr(m, (u32)offset, v);
		break;
	case HVIO_REG_SHM_SEL:
		/* No shared memory regions; every selector reads "none". */
		break;
	default:
		m->stats->bad_offset++;
		break;
	}
}

/**
 * hvio_mmio_set_config() - the device updates its configuration space
 * @m: register file (device lock held)
 * @offset: first byte to replace; caller checked @offset + @len fits
 * @buf: new bytes
 * @len: number of bytes
 * @notify: raise a configuration change interrupt
 */
void hvio_mmio_set_config(struct hvio_mmio *m, u32 offset, const u8 *buf,
			  u32 len, bool notify)
{
	memcpy(m->config + offset, buf, len);
	m->config_generation++;
	WRITE_ONCE(m->config_seq, m->config_seq + 1);
	if (notify)
		hvio_mmio_raise(m, HVIO_INT_CONFIG);
}
