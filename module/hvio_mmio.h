/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hvio: the virtio-mmio version 2 register file of one device.
 *
 * Pure state machine: no locks, no allocation, no I/O.  The caller holds
 * the device lock around every call (but hvio_mmio_inject(), which
 * touches no state); side effects that need the outside
 * world (queue address checks, interrupts, waking the daemon) go through
 * struct hvio_mmio_ops.  The file also builds in userspace (without
 * __KERNEL__) for the unit tests and the fuzzer.
 */
#ifndef _HVIO_MMIO_H
#define _HVIO_MMIO_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stdint.h>
typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
#define WRITE_ONCE(x, val) __atomic_store_n(&(x), (val), __ATOMIC_RELAXED)
#endif

#include <linux/hvio.h>

#define HVIO_MMIO_MAGIC		0x74726976	/* "virt" */
#define HVIO_MMIO_VERSION	2
#define HVIO_MMIO_VENDOR	0x48564953	/* "HVIS" */

/* Register offsets (virtio 1.2, 4.2.2). */
#define HVIO_REG_MAGIC		0x000
#define HVIO_REG_VERSION	0x004
#define HVIO_REG_DEVICE_ID	0x008
#define HVIO_REG_VENDOR_ID	0x00c
#define HVIO_REG_DEV_FEAT	0x010
#define HVIO_REG_DEV_FEAT_SEL	0x014
#define HVIO_REG_DRV_FEAT	0x020
#define HVIO_REG_DRV_FEAT_SEL	0x024
#define HVIO_REG_QUEUE_SEL	0x030
#define HVIO_REG_QUEUE_NUM_MAX	0x034
#define HVIO_REG_QUEUE_NUM	0x038
#define HVIO_REG_QUEUE_READY	0x044
#define HVIO_REG_QUEUE_NOTIFY	0x050
#define HVIO_REG_INT_STATUS	0x060
#define HVIO_REG_INT_ACK	0x064
#define HVIO_REG_STATUS		0x070
#define HVIO_REG_QUEUE_DESC_LO	0x080
#define HVIO_REG_QUEUE_DESC_HI	0x084
#define HVIO_REG_QUEUE_DRV_LO	0x090
#define HVIO_REG_QUEUE_DRV_HI	0x094
#define HVIO_REG_QUEUE_DEV_LO	0x0a0
#define HVIO_REG_QUEUE_DEV_HI	0x0a4
#define HVIO_REG_SHM_SEL	0x0ac
#define HVIO_REG_SHM_LEN_LO	0x0b0
#define HVIO_REG_SHM_LEN_HI	0x0b4
#define HVIO_REG_SHM_BASE_LO	0x0b8
#define HVIO_REG_SHM_BASE_HI	0x0bc
#define HVIO_REG_CONFIG_GEN	0x0fc
#define HVIO_REG_CONFIG		0x100

/* Device status bits (virtio 1.2, 2.1). */
#define HVIO_S_ACKNOWLEDGE	0x01
#define HVIO_S_DRIVER		0x02
#define HVIO_S_DRIVER_OK	0x04
#define HVIO_S_FEATURES_OK	0x08
#define HVIO_S_NEEDS_RESET	0x40
#define HVIO_S_FAILED		0x80

/* InterruptStatus bits. */
#define HVIO_INT_VRING		0x1
#define HVIO_INT_CONFIG		0x2

#define HVIO_F_VERSION_1	32

/*
 * epoch counts the queue's QueueReady 1 -> 0 transitions within a
 * generation: the engine stops using a queue whose epoch moved on and
 * attaches again at the next QueueReady = 1 (virtio 1.2, 4.2.3.2).
 */
struct hvio_mmio_queue {
	u32 num;
	u32 ready;
	u32 epoch;
	u64 desc;
	u64 driver;
	u64 device;
};

struct hvio_mmio;

/*
 * Callbacks into the device.  All run with the device lock held (but
 * interrupt, see there), possibly in hard IRQ context: they must not
 * sleep.
 */
struct hvio_mmio_ops {
	/* Is [gpa, gpa + len) entirely inside the zone's registered RAM? */
	bool (*ram_ok)(struct hvio_mmio *m, u64 gpa, u64 len);
	/* A ready queue was notified. */
	void (*kick)(struct hvio_mmio *m, u32 queue);
	/* Status byte changed; reset is true for a write of 0. */
	void (*status)(struct hvio_mmio *m, u32 old_status, u32 new_status,
		       bool reset);
	/*
	 * InterruptStatus gained @bits: inject the zone interrupt.  Called
	 * with the device lock held, or after the caller dropped it
	 * (hvio_mmio_inject()).
	 */
	void (*interrupt)(struct hvio_mmio *m, u32 bits);
};

struct hvio_mmio {
	/* Identity, fixed at creation. */
	u32 device_id;
	u16 num_queues;
	u32 queue_size_max;
	u64 device_features;
	u32 config_len;
	/*
	 * One config byte the driver may write (0 or 1) once it negotiated
	 * feature bit cfg_wr_feature: virtio-blk's wce.  -1: none.
	 */
	int cfg_wr_off;
	u32 cfg_wr_feature;

	/* Driver-visible state, reset by Status = 0. */
	u64 driver_features;
	u32 dev_feat_sel;
	u32 drv_feat_sel;
	u32 queue_sel;
	u32 status;
	u32 int_status;
	u32 config_generation;
	/*
	 * Resets so far, not guest visible.  64 bits so that it never wraps
	 * (2^64 resets take longer than any machine runs): the queue engine
	 * takes 0 to mean "not attached", and a completion of an op fetched
	 * in an earlier generation must never match the current one.
	 */
	u64 generation;
	/*
	 * Changes of config[] so far, the device's and the driver's (wce),
	 * not guest visible.  Written under the device lock; read with
	 * READ_ONCE by code that caches config fields outside it.
	 */
	u32 config_seq;
	struct hvio_mmio_queue queues[HVIO_MAX_QUEUES];
	u8 config[HVIO_MAX_CONFIG_LEN];

	const struct hvio_mmio_ops *ops;
	struct hvio_dev_stats *stats;
};

void hvio_mmio_init(struct hvio_mmio *m, const struct hvio_mmio_ops *ops,
		    struct hvio_dev_stats *stats);
void hvio_mmio_reset(struct hvio_mmio *m);
u64 hvio_mmio_read(struct hvio_mmio *m, u64 offset, u32 size);
void hvio_mmio_write(struct hvio_mmio *m, u64 offset, u32 size, u64 value);
void hvio_mmio_set_config(struct hvio_mmio *m, u32 offset, const u8 *buf,
			  u32 len, bool notify);
void hvio_mmio_latch(struct hvio_mmio *m, u32 bits);
void hvio_mmio_inject(struct hvio_mmio *m, u32 bits);
void hvio_mmio_raise(struct hvio_mmio *m, u32 bits);
void hvio_mmio_needs_reset(struct hvio_mmio *m);

#endif /* _HVIO_MMIO_H */
