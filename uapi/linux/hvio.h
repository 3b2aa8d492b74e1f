/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hvio: the daemon-facing ABI of hvio.ko.
 *
 * /dev/hvio (CAP_SYS_ADMIN) registers zones' RAM and creates devices; each
 * device is a file descriptor (close = destroy).  /dev/hvio-sim exists only
 * with hypervisor=sim and lets a userspace program play hvisor's part.
 *
 * Every struct has explicit padding and reserved fields; the kernel refuses
 * a call whose reserved fields or unknown flags are not zero (-EINVAL), so
 * they can gain meaning later without breaking old binaries.
 */
#ifndef _UAPI_LINUX_HVIO_H
#define _UAPI_LINUX_HVIO_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* 2: net_hdr, 64-bit generation, reset drain; 3: FETCH_NEXT, F_AGAIN */
#define HVIO_API_VERSION	3
#define HVIO_IOC_MAGIC		0xB9

/* Limits (also reported by HVIO_GET_VERSION). */
#define HVIO_MAX_ZONES		32
#define HVIO_MAX_ZONE_ID	0xffff	/* zone 0 is root Linux: refused */
#define HVIO_MAX_REGIONS	16	/* RAM regions per zone */
#define HVIO_MAX_DEVS		64	/* devices in all zones */
#define HVIO_MAX_QUEUES		16	/* virtqueues per device */
#define HVIO_MAX_QUEUE_SIZE	32768	/* QueueNumMax upper bound */
#define HVIO_MMIO_ALIGN		0x200	/* MMIO window alignment and granule */
#define HVIO_MMIO_MAX_LEN	0x10000
#define HVIO_MMIO_CONFIG_OFF	0x100	/* device config space offset */
#define HVIO_MAX_CONFIG_LEN	256
#define HVIO_MAX_IRQ		1019	/* largest GIC SPI INTID */
#define HVIO_IPA_LIMIT		(1ULL << 52)

/* Providers: who plays the hypervisor. */
#define HVIO_PROVIDER_HVISOR	1
#define HVIO_PROVIDER_SIM	2

/* HVIO_GET_VERSION */
struct hvio_version {
	__u32 api_version;	/* HVIO_API_VERSION */
	__u32 provider;		/* HVIO_PROVIDER_* */
	__u32 max_zones;
	__u32 max_regions;
	__u32 max_devs;
	__u32 max_queues;
	__u32 max_queue_size;
	__u32 max_config_len;
	__u64 reserved[4];
};

/*
 * A zone RAM region: zone0_ipa is the host physical address (root Linux's
 * view), zonex_ipa the guest physical address, size in bytes.  All three
 * page aligned, size > 0, and the physical range must be RAM that root
 * Linux does not use (hvisor: not System RAM; sim: inside sim_ram).
 */
struct hvio_mem_region {
	__u64 zone0_ipa;
	__u64 zonex_ipa;
	__u64 size;
	__u64 reserved;
};

/*
 * HVIO_ZONE_ADD returns 0 for a new zone.  With HVIO_ZONE_F_REUSE a zone
 * that already exists with exactly these regions (a restarted daemon's)
 * is accepted and the call returns 1; with other regions it is -EEXIST.
 */
#define HVIO_ZONE_F_REUSE	(1U << 0)
struct hvio_zone_add {
	__u32 zone_id;
	__u32 nr_regions;	/* 1 .. HVIO_MAX_REGIONS */
	__u32 flags;		/* HVIO_ZONE_F_* */
	__u32 reserved0;
	__u64 reserved;
	struct hvio_mem_region regions[HVIO_MAX_REGIONS];
};

/* HVIO_ZONE_DEL: refused with -EBUSY while the zone has devices. */
struct hvio_zone_del {
	__u32 zone_id;
	__u32 reserved;
};

/*
 * HVIO_DEV_CREATE returns a new device file descriptor (O_CLOEXEC).
 * device_id is the virtio device type (1 net, 2 block, ...).  features must
 * contain VIRTIO_F_VERSION_1.  config_addr points at config_len bytes of
 * initial device configuration space (little endian, as the guest sees it).
 */
struct hvio_dev_create {
	__u32 zone_id;
	__u32 device_id;
	__u64 mmio_base;	/* zone IPA, HVIO_MMIO_ALIGN aligned */
	__u64 mmio_len;		/* multiple of HVIO_MMIO_ALIGN */
	__u32 irq;		/* interrupt injected into the zone */
	__u16 num_queues;	/* 1 .. HVIO_MAX_QUEUES */
	__u16 reserved0;
	__u32 queue_size_max;	/* power of two, 2 .. HVIO_MAX_QUEUE_SIZE */
	__u32 config_len;	/* 0 .. HVIO_MAX_CONFIG_LEN */
	__u64 features;		/* offered device features */
	__u64 config_addr;	/* user pointer */
	__u32 flags;		/* HVIO_DEV_F_* */
	__u32 reserved1;
	__u8 serial[20];	/* blk: VIRTIO_BLK_T_GET_ID answer, NUL padded */
	__u32 reserved2;
	__u64 reserved[4];
};

/*
 * A recoverable device outlives its file descriptor: when the last
 * reference goes without HVIO_DEV_DESTROY (the daemon crashed or was
 * killed), the device becomes an orphan.  The guest still sees it (register
 * accesses are answered, kicks recorded), ops the daemon had fetched but
 * not committed are handed out again by the next HVIO_DEV_QUEUE_RUN, and
 * HVIO_DEV_ATTACH gives a new daemon a file descriptor for it.  An orphan
 * keeps the module loaded.
 */
#define HVIO_DEV_F_RECOVERABLE	(1U << 0)

/*
 * HVIO_DEV_ATTACH returns a new device fd (O_CLOEXEC) for the orphan at
 * (zone_id, mmio_base): -ENOENT if there is no device there, -EBUSY if it
 * is not an orphan.  mmio_base HVIO_ATTACH_ANY takes any orphan of the
 * zone; zone_id 0 (with mmio_base 0) any orphan at all.
 */
#define HVIO_ATTACH_ANY		(~0ULL)
struct hvio_dev_attach {
	__u32 zone_id;
	__u32 flags;		/* none yet: 0 */
	__u64 mmio_base;
	__u64 reserved[2];
};

/* Global counters of the bridge consumer (HVIO_GET_STATS). */
struct hvio_stats {
	__u64 irqs;		/* root IRQs (or sim kicks) handled */
	__u64 reqs;		/* requests consumed from req_list */
	__u64 acks;		/* cfg_flags answers written */
	__u64 unknown_addr;	/* no device at (zone, address): read as 0 */
	__u64 bad_cpu;		/* src_cpu >= HVIO_BRIDGE_MAX_CPUS: dropped */
	__u64 bad_index;	/* req_rear out of range: ring resynced */
	__u64 res_pushed;	/* interrupts queued in res_list */
	__u64 res_full;		/* res_list full: interrupt deferred */
	__u64 finish_calls;	/* HVISOR_HC_FINISH_REQ issued */
	__u64 sleeps;		/* need_wakeup set to 1 */
	__u64 zones;		/* live objects */
	__u64 devs;		/* orphans included */
	__u64 orphans;		/* recoverable devices without an fd */
	__u64 empty_irqs;	/* root IRQs that found req_list empty */
	__u64 reserved[2];
};

#define HVIO_GET_VERSION _IOR(HVIO_IOC_MAGIC, 0x00, struct hvio_version)
#define HVIO_ZONE_ADD	_IOW(HVIO_IOC_MAGIC, 0x01, struct hvio_zone_add)
#define HVIO_ZONE_DEL	_IOW(HVIO_IOC_MAGIC, 0x02, struct hvio_zone_del)
#define HVIO_DEV_CREATE	_IOW(HVIO_IOC_MAGIC, 0x03, struct hvio_dev_create)
#define HVIO_GET_STATS	_IOR(HVIO_IOC_MAGIC, 0x04, struct hvio_stats)
#define HVIO_DEV_ATTACH	_IOW(HVIO_IOC_MAGIC, 0x05, struct hvio_dev_attach)

/* ---- device file descriptor ---------------------------------------- */

/*
 * mmap of a device fd: offset = a guest physical address (zonex_ipa side);
 * the whole mapping must lie inside one registered region, and it maps the
 * zone RAM behind it.  Anything else is refused with -EINVAL.  Offsets from HVIO_DEV_MMAP_RING_BASE up are
 * reserved for the per-queue op rings.
 */
#define HVIO_DEV_MMAP_RING_BASE	(1ULL << 60)
#define HVIO_DEV_MMAP_RING_STRIDE (1ULL << 32)	/* queue q at BASE + q * STRIDE */

struct hvio_queue_info {
	__u32 num;		/* QueueNum the driver chose */
	__u32 ready;
	__u64 desc;		/* guest physical addresses */
	__u64 driver;
	__u64 device;
};

/* HVIO_DEV_GET_INFO: the device's state as the guest driver set it up. */
struct hvio_dev_info {
	__u32 zone_id;
	__u32 device_id;
	__u64 mmio_base;
	__u64 mmio_len;
	__u32 irq;
	__u16 num_queues;
	__u16 reserved0;
	__u32 queue_size_max;
	__u32 status;		/* virtio device status byte */
	__u64 device_features;
	__u64 driver_features;	/* valid once FEATURES_OK */
	__u32 generation;	/* +1 at every device reset */
	__u32 config_generation;
	__u32 interrupt_status;
	__u32 reserved1;
	/* HVIO_RAM_* per region, in HVIO_ZONE_ADD order; 0 past the last */
	__u8 ram_mode[HVIO_MAX_REGIONS];
	__u64 reserved[2];
	struct hvio_queue_info queues[HVIO_MAX_QUEUES];
};

/*
 * How the device fd maps a zone RAM region (hvio_dev_info.ram_mode[]):
 * O_DIRECT and anything else that pins user pages (get_user_pages) works
 * on a PAGES or DEVMAP mapping, never on a PFNMAP one.  0 is a kernel
 * older than this field, which maps PFNMAP: O_DIRECT fails with EFAULT.
 */
#define HVIO_RAM_UNKNOWN	0
#define HVIO_RAM_PFNMAP		1	/* raw PFNs (remap_pfn_range) */
#define HVIO_RAM_PAGES		2	/* root Linux's own struct pages */
#define HVIO_RAM_DEVMAP		3	/* ZONE_DEVICE pages (memremap_pages) */

/* HVIO_DEV_GET_STATS: per-device counters. */
struct hvio_dev_stats {
	__u64 reg_reads;
	__u64 reg_writes;
	__u64 notifies;		/* QueueNotify writes for a valid queue */
	__u64 irqs;		/* interrupts raised towards the guest */
	__u64 resets;		/* Status written 0 */
	__u64 bad_width;	/* non-32-bit access to a register: ignored */
	__u64 bad_offset;	/* unknown or wrong-direction register */
	__u64 bad_queue;	/* queue access with QueueSel out of range */
	__u64 bad_state;	/* write refused in the current state */
	__u64 features_refused;	/* FEATURES_OK refused */
	__u64 queue_refused;	/* QueueReady=1 refused (bad size/address) */
	__u64 config_writes;	/* guest writes to config space (ignored) */
	__u64 reset_waits;	/* Status = 0 answered only once the daemon
				 * gave back the ops of the old generation
				 */
	__u64 reset_timeouts;	/* ... answered at reset_timeout_ms instead */
	__u64 poll_ns;		/* time spent polling avail rings (was reserved) */
	__u64 reserved[1];
};

/*
 * HVIO_DEV_SET_CONFIG: the daemon changes config space (capacity, link
 * status, ...).  With HVIO_CONFIG_F_NOTIFY the guest gets a configuration
 * change interrupt; ConfigGeneration always advances.
 */
#define HVIO_CONFIG_F_NOTIFY	(1U << 0)
struct hvio_dev_config {
	__u32 offset;
	__u32 len;
	__u64 addr;		/* user pointer to len bytes */
	__u32 flags;
	__u32 reserved;
};

/*
 * HVIO_DEV_GET_EVENTS: read and clear what happened since the last call.
 * poll() on the device fd reports POLLIN while any event is pending.
 */
#define HVIO_EV_STATUS		(1U << 0)	/* status byte changed */
#define HVIO_EV_RESET		(1U << 1)	/* device was reset */
#define HVIO_EV_KICK		(1U << 2)	/* see kicked_queues; only
						 * queues without an eventfd
						 */
struct hvio_dev_events {
	__u32 events;
	__u32 status;		/* current status byte */
	__u32 kicked_queues;	/* bit n: queue n was notified */
	__u32 generation;
	__u64 reserved[2];
};

/* ---- queues and I/O operations ----------------------------------------- */

/*
 * The module parses the guest's virtqueues and hands the daemon plain I/O
 * operations.  Each queue has queue_size_max op slots, indexed by tag (the
 * descriptor head), in a read-only mapping of the device fd at
 * HVIO_DEV_MMAP_RING_BASE + queue * HVIO_DEV_MMAP_RING_STRIDE (length
 * queue_size_max * sizeof(struct hvio_op), rounded up to pages).  A slot is
 * valid from the HVIO_DEV_QUEUE_RUN that fetched its tag to the one that
 * commits it.  Segments are guest physical addresses of data buffers inside
 * zone RAM (map them through the device fd); request headers and status
 * bytes never reach userspace.
 */
#define HVIO_OP_MAX_SEGS	64

#define HVIO_OP_READ		1	/* backing store -> guest buffers */
#define HVIO_OP_WRITE		2	/* guest buffers -> backing store */
#define HVIO_OP_FLUSH		3	/* make completed writes durable */
#define HVIO_OP_DISCARD		4	/* [offset, offset + len) may be dropped */
#define HVIO_OP_WRITE_ZEROES	5	/* [offset, offset + len) reads as 0 */

/*
 * virtio-net (device 1: queue 0 receives, queue 1 transmits; the TAP is
 * opened with IFF_VNET_HDR and TUNSETVNETHDRSZ = HVIO_NET_HDR_LEN).
 * NET_TX: net_hdr is the chain's 12-byte virtio_net_hdr as the kernel
 *	read and checked it (once: the guest may rewrite its copy at any
 *	time); segs are the rest of the device-readable chain, the frame
 *	(the header's bytes are cut off, even where they share or span
 *	descriptors).  writev() net_hdr, then segs, to the TAP; never the
 *	header from guest memory.  len is HVIO_NET_HDR_LEN plus the sum of
 *	segs.  Completion: bytes written or -errno (either way the chain
 *	goes back to the guest with used length 0).
 * NET_RX: segs are guest buffers (one chain, or with MRG_RXBUF several)
 *	of len bytes in all: readv() one packet (header + frame) from the
 *	TAP into them.  Completion: the byte count the read returned.  The
 *	kernel writes num_buffers and the used entries.  A count above len
 *	(the TAP truncated the packet), below the header, or a negative
 *	errno drops nothing the guest sees: the buffers are offered again in
 *	a later op.  Commit RX ops not used at shutdown with -ECANCELED.
 */
#define HVIO_OP_NET_TX		6
#define HVIO_OP_NET_RX		7

#define HVIO_NET_HDR_LEN	12	/* struct virtio_net_hdr_mrg_rxbuf */
#define HVIO_NET_MAX_FRAME	65550	/* 64 KiB + Ethernet header */
#define HVIO_NET_RX_QUEUE	0
#define HVIO_NET_TX_QUEUE	1

#define HVIO_OP_F_UNMAP		(1U << 0)	/* write zeroes: may deallocate */
/* write: durable before completion (the guest chose writethrough) */
#define HVIO_OP_F_FUA		(1U << 1)

struct hvio_op_seg {
	__u64 gpa;
	__u32 len;
	__u32 reserved;
};

struct hvio_op {
	__u16 tag;
	__u8 type;		/* HVIO_OP_* */
	__u8 nr_segs;
	__u32 flags;		/* HVIO_OP_F_* */
	__u64 offset;		/* bytes into the backing store */
	__u64 len;		/* bytes; equals the sum of segs for READ/WRITE */
	/*
	 * Device generation the op belongs to: low and high 32 bits of a
	 * 64-bit count that never wraps.  A completion carries both back.
	 */
	__u32 generation;
	__u32 generation_hi;	/* was reserved (always 0 below 2^32 resets) */
	__u8 net_hdr[HVIO_NET_HDR_LEN];	/* NET_TX: the header as checked */
	__u32 reserved2;
	struct hvio_op_seg segs[HVIO_OP_MAX_SEGS];
};

/*
 * One completion: result >= 0 success, a negative errno failure
 * (-EOPNOTSUPP becomes VIRTIO_BLK_S_UNSUPP, anything else S_IOERR).
 * generation and generation_hi are copied from the op.  A completion whose
 * 64-bit generation is not the device's current one is dropped: the guest
 * reset the device after the op was fetched.  So is one for an op fetched
 * before the driver wrote QueueReady = 0 to its queue.  reserved0 must be
 * 0 (-EINVAL).
 */
struct hvio_completion {
	__u16 tag;
	__u16 reserved0;
	__s32 result;
	__u32 generation;
	__u32 generation_hi;	/* was reserved1 */
};

/*
 * HVIO_DEV_QUEUE_RUN: commit nr_commit completions, then fetch up to
 * max_fetch new ops (their tags are written to tags_addr).  Returns 0;
 * nr_fetched says how many.  When the queue is drained the module re-arms
 * guest notifications (EVENT_IDX) before returning, so a kick arriving
 * after this call signals the queue's eventfd.
 */
struct hvio_queue_run {
	__u16 queue;
	__u16 nr_commit;
	__u16 max_fetch;
	__u16 nr_fetched;	/* out */
	__u32 flags;		/* none yet: 0 */
	__u32 generation;	/* out: device generation now */
	__u64 commits_addr;	/* struct hvio_completion[nr_commit] */
	__u64 tags_addr;	/* __u16[max_fetch] */
	__u32 out_flags;	/* out: HVIO_RUN_OUT_*; ignored on input */
	__u32 reserved1;
	__u64 reserved;
};

/*
 * The fetch stopped before the avail ring was drained: at max_fetch (the
 * chains it took may have been answered in the kernel, so nr_fetched can
 * be below max_fetch) or at the per-call budget (net: HVIO_NET_BUDGET_PKTS
 * packets or HVIO_NET_BUDGET_BYTES bytes).  Guest notifications are not
 * re-armed: serve the other queues, then call again without waiting for a
 * kick.  Without this flag the queue is drained (or waits for a commit of
 * the daemon's own) and a new buffer kicks the eventfd.
 */
#define HVIO_RUN_OUT_MORE	(1U << 0)
#define HVIO_NET_BUDGET_PKTS	256
#define HVIO_NET_BUDGET_BYTES	(1U << 20)

/*
 * The same through io_uring (IORING_OP_URING_CMD on the device fd, a
 * normal 64-byte SQE; cmd_op is one of the HVIO_URING_* below, the 16-byte
 * payload in sqe->cmd).  A queue thread submits its backing I/O, its
 * fetches and its commits to one ring and sleeps only in io_uring_enter.
 *
 * HVIO_URING_FETCH fetches up to max_fetch ops exactly as QUEUE_RUN does
 * and writes a struct hvio_fetch_result (followed by max_fetch tags) to
 * result_addr before its CQE; cqe->res is nr_fetched or -errno.  With
 * HVIO_FETCH_F_WAIT, a fetch that finds nothing (the ring drained, guest
 * notifications re-armed, HVIO_RUN_OUT_MORE clear) parks instead of
 * completing: the next guest kick of the queue, a device reset, or
 * HVIO_DEV_QUEUE_UNPARK completes it (a kick that brings nothing parks it
 * again).  A kick does not signal the queue's eventfd while a FETCH is
 * parked.  One FETCH per queue may be outstanding (-EBUSY).  A parked
 * FETCH whose task exits completes with -ECANCELED.  A FETCH never parks
 * when the device generation moved on since the last result of this queue
 * (QUEUE_RUN or FETCH), so the daemon always learns of a reset.
 *
 * HVIO_URING_COMMIT commits nr_commit completions; cqe->res is 0 or
 * -errno (as QUEUE_RUN's commit part).  It never parks.
 *
 * A module built without io_uring support, or a kernel without
 * CONFIG_IO_URING, refuses both with -EOPNOTSUPP: use QUEUE_RUN.
 */
struct hvio_uring_fetch {
	__u16 queue;
	__u16 max_fetch;	/* 1 .. queue_size_max */
	__u32 flags;		/* HVIO_FETCH_F_* */
	__u64 result_addr;	/* struct hvio_fetch_result + __u16[max_fetch] */
};
#define HVIO_FETCH_F_WAIT	(1U << 0)
/*
 * When this fetch takes ops, the same task fetches again once it has
 * started them: the guest's kicks stay off until then (the fetch that
 * finds the ring empty re-arms them), as vhost leaves them off while it
 * has work.  Such a fetch may return ops without HVIO_RUN_OUT_MORE and
 * kicks still off.
 */
#define HVIO_FETCH_F_AGAIN	(1U << 1)

struct hvio_fetch_result {
	__u32 generation;	/* device generation now, low and high half */
	__u32 generation_hi;
	__u32 out_flags;	/* HVIO_RUN_OUT_*, HVIO_FETCH_OUT_* */
	__u16 nr_fetched;	/* also in cqe->res */
	__u16 reserved;		/* written as 0 */
	__u16 tags[];		/* nr_fetched of max_fetch */
};
/* Completed by HVIO_DEV_QUEUE_UNPARK (the daemon is stopping). */
#define HVIO_FETCH_OUT_UNPARKED	(1U << 16)

struct hvio_uring_commit {
	__u16 queue;
	__u16 nr_commit;	/* 1 .. queue_size_max */
	__u32 flags;		/* HVIO_COMMIT_F_* */
	__u64 commits_addr;	/* struct hvio_completion[nr_commit] */
};
/*
 * A FETCH of this queue follows from the same task before it waits: the
 * commit turns the guest's kicks off before the guest can see its
 * completions, and that FETCH re-arms them when it finds the ring empty.
 * Until it comes, the guest's new requests wait for it.
 */
#define HVIO_COMMIT_F_FETCH_NEXT	(1U << 0)

#define HVIO_URING_FETCH \
	_IOWR(HVIO_IOC_MAGIC, 0x20, struct hvio_uring_fetch)
#define HVIO_URING_COMMIT \
	_IOW(HVIO_IOC_MAGIC, 0x21, struct hvio_uring_commit)

/*
 * HVIO_DEV_QUEUE_UNPARK: complete the queue's parked FETCH now (with
 * HVIO_FETCH_OUT_UNPARKED); if none is parked, the next FETCH with
 * HVIO_FETCH_F_WAIT that would park completes instead.  The stop path of
 * a daemon whose queue thread sleeps in io_uring.
 */
struct hvio_queue_unpark {
	__u16 queue;
	__u16 reserved0;
	__u32 reserved;
};

/* HVIO_DEV_SET_QUEUE_EVENTFD: signalled when the guest kicks the queue. */
struct hvio_queue_eventfd {
	__u16 queue;
	__u16 reserved0;
	__s32 fd;		/* -1 detaches */
	__u64 reserved;
};

/* HVIO_DEV_GET_QUEUE_STATS: reserved fields must be 0 on input (-EINVAL). */
struct hvio_queue_stats {
	__u16 queue;		/* in */
	__u16 reserved0;
	__u32 reserved1;
	__u64 kicks;		/* QueueNotify for this queue */
	__u64 reqs;		/* chains taken from the avail ring */
	__u64 ops;		/* ops handed to userspace */
	__u64 done_in_kernel;	/* GET_ID, bad requests: never left the kernel */
	__u64 completed;	/* completions written to the used ring */
	__u64 stale;		/* completions dropped: older generation */
	__u64 irqs;		/* used-buffer interrupts injected */
	__u64 irqs_suppressed;	/* completions that needed no interrupt */
	__u64 bad_request;	/* malformed request: status IOERR / UNSUPP */
	__u64 vq_errors[16];	/* per hvio_vq_err reason (module/hvio_vq.h) */
	__u64 packets;		/* net: frames sent / received by the guest */
	__u64 bytes;		/* net: their bytes, virtio_net_hdr excluded */
	__u64 errors;		/* completions with a negative result */
	__u64 rx_dropped;	/* net RX: ops given back (truncated, failed) */
	__u64 rx_chains;	/* net RX: chains used (num_buffers summed) */
	__u64 budget_stops;	/* fetches that stopped at the budget */
	__u64 requeued;		/* ops handed out again after an orphaning */
	/*
	 * The engine writes back at most HVIO_QUEUE_HOLD_ENTRIES completions
	 * per hold of the device lock (interrupts off, every register access
	 * of the bridge waits): the most one hold did, and the longest hold.
	 */
	__u64 hold_entries_max;
	__u64 hold_ns_max;
	/* batches found by polling the avail ring (HVIO_DEV_SET_POLL) */
	__u64 poll_hits;	/* was reserved */
};
#define HVIO_QUEUE_HOLD_ENTRIES	64

/*
 * HVIO_DEV_GET_QUEUE_LATENCY: how long a queue's requests took, from the
 * kernel taking the chain off the avail ring to its completion written to
 * the used ring: the daemon's I/O and every hand-off in between.  Counted
 * for completions written in the current device's life (stale ones are
 * not); receive queues count nothing (their buffers wait for traffic).
 * buckets[0] counts requests under 1 us, buckets[i] those of
 * [2^(i-1), 2^i) us, the last bucket everything from 2^22 us (4.2 s) on.
 */
#define HVIO_LAT_BUCKETS	24
struct hvio_queue_latency {
	__u16 queue;		/* in */
	__u16 reserved0;	/* in: 0 */
	__u32 nr_buckets;	/* out: HVIO_LAT_BUCKETS */
	__u64 count;		/* requests counted */
	__u64 sum_ns;		/* their total time */
	__u64 max_ns;		/* the longest */
	__u64 buckets[HVIO_LAT_BUCKETS];
};

#define HVIO_DEV_GET_INFO   _IOR(HVIO_IOC_MAGIC, 0x10, struct hvio_dev_info)
#define HVIO_DEV_GET_STATS  _IOR(HVIO_IOC_MAGIC, 0x11, struct hvio_dev_stats)
#define HVIO_DEV_SET_CONFIG _IOW(HVIO_IOC_MAGIC, 0x12, struct hvio_dev_config)
#define HVIO_DEV_GET_EVENTS _IOR(HVIO_IOC_MAGIC, 0x13, struct hvio_dev_events)
#define HVIO_DEV_QUEUE_RUN  _IOWR(HVIO_IOC_MAGIC, 0x14, struct hvio_queue_run)
#define HVIO_DEV_SET_QUEUE_EVENTFD \
	_IOW(HVIO_IOC_MAGIC, 0x15, struct hvio_queue_eventfd)
#define HVIO_DEV_GET_QUEUE_STATS \
	_IOWR(HVIO_IOC_MAGIC, 0x16, struct hvio_queue_stats)
#define HVIO_DEV_GET_QUEUE_LATENCY \
	_IOWR(HVIO_IOC_MAGIC, 0x19, struct hvio_queue_latency)
/*
 * HVIO_DEV_SET_POLL: after a QUEUE_RUN committed completions and then
 * found the queue's avail ring empty, poll it for up to poll_us before
 * returning, with guest notifications suppressed from the commit on: a
 * guest that answers its interrupt with new requests within the window
 * needs no kick, and the same call fetches them.  On the io_uring path a
 * HVIO_URING_COMMIT issued while the queue's HVIO_URING_FETCH is parked
 * suppresses notifications the same way and wakes that FETCH, which
 * polls and completes with what it found.  Adaptive per queue:
 * every poll that finds nothing halves the next window (down to
 * poll_us / 8); a hit restores it, and so does a kick that comes within
 * poll_us of the start of the poll that missed.  Only after a commit: an
 * idle queue never polls.  The poll ends early when the CPU is wanted
 * elsewhere, at a signal, or at a device reset.  0 (the default) turns it
 * off; above HVIO_MAX_POLL_US, or flags or reserved not 0: -EINVAL.
 * Applies to blk queues and the net TX queue.
 */
#define HVIO_MAX_POLL_US	10000
struct hvio_dev_poll {
	__u32 poll_us;
	__u32 flags;		/* none yet: 0 */
	__u64 reserved;
};

/* Destroy the device when this fd closes, even if it is recoverable. */
#define HVIO_DEV_DESTROY    _IO(HVIO_IOC_MAGIC, 0x17)
#define HVIO_DEV_SET_POLL   _IOW(HVIO_IOC_MAGIC, 0x1e, struct hvio_dev_poll)
#define HVIO_DEV_QUEUE_UNPARK \
	_IOW(HVIO_IOC_MAGIC, 0x18, struct hvio_queue_unpark)

/* ---- /dev/hvio-sim (hypervisor=sim only) ----------------------------- */

/*
 * mmap offset 0, one page: the bridge (struct hvio_bridge).
 * mmap offset HVIO_SIM_MMAP_RAM: the sim_ram window (zone RAM), whose host
 * physical base is hvio_sim_info.ram_base.
 */
#define HVIO_SIM_MMAP_BRIDGE	0ULL
#define HVIO_SIM_MMAP_RAM	(1ULL << 32)

struct hvio_sim_info {
	__u64 ram_base;		/* host physical address of sim_ram */
	__u64 ram_size;
	__u32 bridge_size;	/* sizeof(struct hvio_bridge) */
	__u32 max_cpus;		/* HVIO_BRIDGE_MAX_CPUS */
	__u64 finish_calls;	/* FINISH_REQ "hypercalls" so far */
	__u64 reserved[3];
};

#define HVIO_SIM_GET_INFO	_IOR(HVIO_IOC_MAGIC, 0x40, struct hvio_sim_info)
/* Raise the root IRQ: the module's bridge handler runs in hard IRQ context. */
#define HVIO_SIM_RAISE_IRQ	_IO(HVIO_IOC_MAGIC, 0x41)
/* Signal this eventfd at every FINISH_REQ; -1 detaches. */
#define HVIO_SIM_SET_FINISH_FD	_IOW(HVIO_IOC_MAGIC, 0x42, __s32)

#endif /* _UAPI_LINUX_HVIO_H */
