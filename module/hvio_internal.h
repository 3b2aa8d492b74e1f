/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hvio: module-internal objects and their locking.
 *
 * Locking, outermost first:
 *   hvio.ctl_mutex   serialises zone/device creation and destruction
 *                    (sleeping context: ioctls, release).
 *   hvio.lock        spinlock (irq-safe) over the zone and device lists; the
 *                    bridge handler holds it while it looks a device up and
 *                    runs the access, so a device on the list cannot be
 *                    freed under it.
 *   hvio.bridge_lock serialises the req_list consumer.
 *   dev->lock        the device's register file, events and counters.
 *   hvio.res_lock    the res_list producer side and the deferred-IRQ set.
 * The bridge handler takes bridge_lock -> lock -> dev->lock -> res_lock;
 * the queue engine takes res_lock after dropping dev->lock (it injects a
 * queue's interrupt after the hold that decided it).
 * A queue's mutex (q->lock) is taken before dev->lock; it also covers the
 * per-head tags and the net RX spare list.
 * All four spinlocks are spinlock_t, sleeping locks under PREEMPT_RT: the
 * bridge handler runs in a thread there (sim: an irq_work that is not
 * IRQ_WORK_HARD_IRQ; hvisor: a force-threaded IRQ), and under them it
 * signals eventfds and completes io_uring commands, whose own locks are
 * spinlock_t too.  Neither entry point may become hard IRQ on RT.
 */
#ifndef _HVIO_INTERNAL_H
#define _HVIO_INTERNAL_H

#include <linux/types.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/hvio.h>
#include <linux/hvio_bridge.h>

#include "hvio_mmio.h"
#include "hvio_vq.h"

#define HVIO_NAME "hvio"

/**
 * struct hvio_hv_ops - who plays the hypervisor
 * @name: provider name for logs
 * @id: HVIO_PROVIDER_*
 * @init: take the bridge page, set up the root IRQ (calls
 *        hvio_bridge_handle() from it) and hand the bridge to the hypervisor
 * @exit: undo @init; no bridge handler runs after it returns
 * @finish_req: tell the hypervisor res_list has new entries (any context)
 * @region_ok: may physical range [@phys, @phys + @size) be zone RAM?
 */
struct hvio_hv_ops {
	const char *name;
	u32 id;
	int (*init)(struct hvio_bridge *bridge);
	void (*exit)(void);
	void (*finish_req)(void);
	bool (*region_ok)(u64 phys, u64 size);
};

extern const struct hvio_hv_ops hvio_hv_sim_ops;
extern const struct hvio_hv_ops hvio_hv_hvisor_ops;

struct dev_pagemap;

struct hvio_zone {
	struct list_head node;
	u32 id;
	u32 nr_regions;
	u32 nr_devs;			/* under hvio.ctl_mutex */
	struct hvio_mem_region regions[HVIO_MAX_REGIONS];
	void *va[HVIO_MAX_REGIONS];	/* memremap()ed regions */
	/*
	 * How the device fds map each region to the daemon (HVIO_RAM_*,
	 * hvio_pages.c), fixed at HVIO_ZONE_ADD; pgmap[i] is the
	 * ZONE_DEVICE map of a DEVMAP region, freed at zone delete.
	 */
	u8 ram_mode[HVIO_MAX_REGIONS];
	struct dev_pagemap *pgmap[HVIO_MAX_REGIONS];
};

/* Never a descriptor head (queue sizes are at most 32768). */
#define HVIO_NO_TAG		0xffff

enum hvio_tag_state {
	HVIO_TAG_FREE,			/* the guest owns the head */
	HVIO_TAG_OP,			/* first chain of an op the daemon holds */
	HVIO_TAG_HELD,			/* net RX: a spare chain, or a later
					 * chain of an op
					 */
	HVIO_TAG_STALE,			/* an op the daemon holds, fetched
					 * from rings the driver took back
					 * with QueueReady = 0: its completion
					 * is dropped
					 */
};

/*
 * Per-head state the kernel keeps while it holds a chain.  Net RX keeps a
 * chain's own segments at the front of ops[head].segs (nr_segs of them)
 * and links the chains of one op, and the spare list, through next.
 */
struct hvio_tag {
	u8 *status;			/* blk status byte (zone RAM, mapped
					 * for the zone's lifetime)
					 */
	u32 used_len;			/* blk: used length on success;
					 * net RX: the chain's capacity
					 */
	u64 taken_ns;			/* ktime the chain left the avail ring */
	u16 next;			/* net RX: next chain or HVIO_NO_TAG */
	u8 nr_segs;			/* net RX: the chain's own segments */
	u8 state;			/* enum hvio_tag_state */
	u16 rx_last;			/* net RX op's head: its last chain */
	u16 rx_chains;			/* net RX op's head: its chains */
};

/* A request finished inside the kernel, written back at the next commit. */
struct hvio_done {
	u16 head;
	u8 status;
	bool has_status;		/* write status to status_gpa */
	bool fill;			/* the type's fill_done() writes data */
	u64 status_gpa;
	u32 used_len;
};

/* Data segments beyond header and status, plus slack for them. */
#define HVIO_QUEUE_MAX_SEGS	(HVIO_OP_MAX_SEGS + 4)

/*
 * One virtqueue as the daemon sees it.  lock (a mutex) serialises
 * HVIO_DEV_QUEUE_RUN; everything that touches guest memory a reset or a
 * QueueReady = 0 may have taken back (status bytes, used ring, used flags,
 * avail_event) additionally runs under dev->lock after checking that the
 * device generation is still vq_gen and the queue's ready epoch still
 * vq_epoch (hvio_queue_current()).  Such a hold writes back at most
 * HVIO_QUEUE_HOLD_ENTRIES entries: every register access of every zone
 * waits for dev->lock with interrupts off.  kicks and efd are also used
 * from the bridge IRQ path and are under dev->lock.
 */
struct hvio_queue {
	struct hvio_dev *dev;
	u16 index;
	struct mutex lock;
	struct hvio_vq vq;
	u64 vq_gen;			/* generation the tags belong to; 0: none */
	u32 vq_epoch;			/* ready epoch vq is attached in */
	bool live;			/* vq is attached (in vq_gen, vq_epoch) */
	struct hvio_op *ops;		/* vmalloc_user: mmap'd read-only */
	size_t ops_size;
	struct hvio_tag *tags;
	struct hvio_done *done;		/* queue_size_max entries */
	u32 nr_done;
	struct eventfd_ctx *efd;
	struct hvio_queue_stats stats;
	struct hvio_queue_latency lat;	/* under dev->lock */
	/*
	 * Under dev->lock: ops handed to the daemon and not committed, of the
	 * current generation and of earlier ones (a reset moves the first
	 * into the second; each stale completion takes one back).
	 */
	u32 ops_live;
	u32 ops_old;
	struct hvio_vq_seg segs[HVIO_QUEUE_MAX_SEGS];

	/*
	 * io_uring FETCH (hvio_uring.c).  fetch_cmd, fetch_task and
	 * fetch_parked change under dev->lock: a FETCH owns the queue's
	 * fetch from issue to completion (fetch_tags is its buffer), and is
	 * parked while it waits for a kick.  kick_seq counts kicks and other
	 * wakeups (a parked FETCH must not miss one that came while it
	 * fetched); unpark asks the next park to complete instead.
	 * gen_reported: the generation the daemon last got from this queue
	 * (written by its serving thread, read under dev->lock).
	 */
	struct io_uring_cmd *fetch_cmd;
	struct task_struct *fetch_task;
	bool fetch_parked;
	bool unpark;
	u32 kick_seq;
	u64 gen_reported;
	u16 *fetch_tags;		/* queue_size_max entries */

	/* ops to hand out again after an orphaning (under lock) */
	bool requeue;
	u32 requeue_pos;		/* next tag to look at */

	/* net RX, under lock, set up again at every attach (hvio_net.c) */
	u16 spare_head;			/* chains popped, not in an op yet */
	u16 spare_tail;
	u32 nr_spare;
	u64 spare_bytes;
	u32 rx_ops;			/* RX ops the daemon holds */
	u32 rx_target;			/* bytes one RX op should hold */
	bool rx_mrg;			/* MRG_RXBUF negotiated */

	/*
	 * blk, under lock: the config fields every request needs, as of
	 * dev->mmio.config_seq blk_cfg_seq in generation blk_cfg_gen (0:
	 * none yet), so that a request takes no dev->lock for them
	 * (hvio_blk.c).
	 */
	u64 blk_cfg_gen;
	u32 blk_cfg_seq;
	bool blk_writethrough;
	u64 blk_capacity;		/* sectors, at most HVIO_BLK_MAX_SECTORS */

	/*
	 * Polling after a commit (HVIO_DEV_SET_POLL), under lock:
	 * poll_next: this call fetches after its commit, so the commit may
	 * suppress guest notifications; poll_suppressed: it did, and the
	 * fetch polls, then re-arms them; poll_miss: polls in a row that
	 * found nothing (the window shrinks with each, up to 3);
	 * poll_missed_ns: when the last of them began (0: the last poll
	 * hit), poll_kick_ns: when the kick that ended the wait after it
	 * came (0: none yet).  Both are written with WRITE_ONCE: the kick
	 * sets poll_kick_ns under dev->lock only, the fetch (q->lock) reads
	 * and clears them; a lost race costs one wrong window, no more.
	 */
	bool poll_next;
	bool poll_suppressed;
	/*
	 * Under lock, for one call: fetch_next: the daemon fetches after
	 * this commit (HVIO_COMMIT_F_FETCH_NEXT), so the commit turns the
	 * guest's kicks off; fetch_again: after taking ops the daemon
	 * fetches again (HVIO_FETCH_F_AGAIN), so a fetch that took some
	 * leaves them off.  Either way the next fetch that finds the ring
	 * empty re-arms them.
	 */
	bool fetch_next;
	bool fetch_again;
	u8 poll_miss;
	u64 poll_missed_ns;
	u64 poll_kick_ns;
};

/* What hvio_queue_take() found in the avail ring. */
enum hvio_take {
	HVIO_TAKE_OK,			/* a well-formed chain in q->segs */
	HVIO_TAKE_BAD,			/* malformed: queued back, length 0 */
	HVIO_TAKE_EMPTY,		/* nothing new */
	HVIO_TAKE_BROKEN,		/* queue stopped: needs a reset */
	HVIO_TAKE_WAIT,			/* the next head is a stale op's that
					 * the daemon still holds: not taken,
					 * try again after its commit
					 */
};

enum hvio_req_kind {
	HVIO_REQ_OP,			/* ops[head] filled for the daemon */
	HVIO_REQ_DONE,			/* finished here: see the hvio_done */
};

/**
 * struct hvio_devtype - a virtio device type as the queue engine sees it
 * @name: for logs
 * @device_id: virtio device id (virtio 1.2, 5)
 * @features: feature bits the type implements (device, ring, transport);
 *            HVIO_DEV_CREATE refuses an offer of any other
 * @num_queues: the queue count HVIO_DEV_CREATE must ask for, 0 for any
 * @rx_queues: bitmap of the queues whose chains are buffers the device
 *             fills when it has data: never polled, fetched by @rx_fetch
 *             (without one, chain by chain through @prepare); the chains
 *             of every other queue are requests (@prepare)
 * @budget_pkts: a fetch on a request queue stops after this many chains
 *               (0: only at max_fetch) ...
 * @budget_bytes: ... or once its ops hold this many bytes (0: no limit)
 * @cancel_ok: a completion of -ECANCELED is a buffer handed back unused,
 *             not an error
 * @init: at HVIO_DEV_CREATE, before the register file powers on; may set
 *        the one config byte the driver may write (cfg_wr_off).  May be NULL
 * @attach: the queue was attached to new rings (q->lock held, dev->lock
 *          not); set up the type's per-queue state.  May be NULL
 * @prepare: a well-formed chain of a request queue (or of a queue in
 *           @rx_queues when there is no @rx_fetch), segments in q->segs
 *           (each checked to lie in zone RAM, readable ones first), q->lock
 *           held: fill @op (@tag for the completion) and return
 *           HVIO_REQ_OP, or fill @done (zeroed, head set) and return
 *           HVIO_REQ_DONE
 * @rx_fetch: fetch of a queue in @rx_queues, q->lock held, attached (may
 *            be NULL: then @prepare takes those chains one by one): pop
 *            chains with hvio_queue_take(), build ops, flush what it
 *            answered itself with hvio_queue_flush_done(); return the tags
 * @complete: one completion of an op of this generation, dev->lock and
 *            q->lock held, queue current: free the op's tags, add the used
 *            entries (the engine publishes them and decides the interrupt)
 * @fill_done: write the data of an answer with hvio_done.fill set, dev->lock
 *             held, generation checked, before its used entry is added.
 *             May be NULL if @prepare never sets fill
 *
 * One per type, defined in the type's file and listed in hvio_devtypes[]
 * (hvio_dev.c, which sets dev->type at creation); the engine
 * (hvio_queue.c) reaches a type only through dev->type.
 */
struct hvio_devtype {
	const char *name;
	u32 device_id;
	u64 features;
	u16 num_queues;
	u32 rx_queues;
	u32 budget_pkts;
	u32 budget_bytes;
	bool cancel_ok;
	void (*init)(struct hvio_dev *dev);
	void (*attach)(struct hvio_queue *q);
	enum hvio_req_kind (*prepare)(struct hvio_queue *q,
				      const struct hvio_vq_chain *chain,
				      struct hvio_op *op, struct hvio_tag *tag,
				      struct hvio_done *done);
	u16 (*rx_fetch)(struct hvio_queue *q, u16 *tags, u16 max,
			u32 *out_flags);
	void (*complete)(struct hvio_queue *q, u16 tag, s32 result);
	void (*fill_done)(struct hvio_queue *q, struct hvio_done *done);
};

struct hvio_dev {
	struct list_head node;		/* hvio.devs, under hvio.lock */
	struct hvio_zone *zone;		/* pinned: zone->nr_devs counts us */
	u32 slot;			/* index in hvio.dev_slots */
	u64 mmio_base;
	u64 mmio_len;
	u32 irq;

	spinlock_t lock;
	struct hvio_mmio mmio;
	struct hvio_dev_stats stats;
	u32 events;			/* HVIO_EV_*, cleared by GET_EVENTS */
	u32 kicked;			/* queue bitmap, cleared likewise */
	wait_queue_head_t wq;

	/* The device's type; NULL: a register file without a request engine. */
	const struct hvio_devtype *type;
	struct hvio_queue *queues;	/* mmio.num_queues */
	u8 serial[20];

	/*
	 * Reset drain, under lock (hvio_dev.c): the vCPUs (bit per src_cpu)
	 * whose Status = 0 write stays unanswered until no queue has ops_old,
	 * the daemon is gone, or reset_work times out; the Status other vCPUs
	 * read meanwhile.
	 */
	u32 reset_cpus;
	u32 reset_status;
	unsigned long reset_start;	/* jiffies at the first held write */
	struct delayed_work reset_work;

	u32 poll_ns;			/* HVIO_DEV_SET_POLL; READ_ONCE */

	/*
	 * Runs while an io_uring FETCH is parked: completes those whose
	 * task is exiting (hvio_uring.c).
	 */
	struct delayed_work uring_work;

	/* Under hvio.ctl_mutex: see HVIO_DEV_F_RECOVERABLE. */
	bool recoverable;		/* orphan instead of destroy at close */
	bool attached;			/* a file descriptor holds the device */
};

struct hvio_ctx {
	const struct hvio_hv_ops *hv;
	struct hvio_bridge *bridge;

	struct mutex ctl_mutex;
	spinlock_t lock;
	struct list_head zones;
	struct list_head devs;
	u32 nr_zones;
	struct hvio_dev *dev_slots[HVIO_MAX_DEVS];

	spinlock_t bridge_lock;
	bool bridge_stopped;		/* under bridge_lock: unloading */
	u32 bridge_empty_run;		/* under bridge_lock: see hvio_bridge.c */
	struct work_struct bridge_work;	/* continues a handler over budget */

	spinlock_t res_lock;
	DECLARE_BITMAP(res_pending, HVIO_MAX_DEVS);
	struct delayed_work res_work;	/* retries interrupts on a full ring */

	struct hvio_stats stats;
};

extern struct hvio_ctx hvio;

/* hvio_bridge.c */
void hvio_bridge_init_work(void);
void hvio_bridge_setup(struct hvio_bridge *bridge);
int hvio_bridge_request_irq(int irq, unsigned long flags);
void hvio_bridge_free_irq(int irq);
bool hvio_bridge_handle(void);
void hvio_bridge_stop(void);
void hvio_bridge_quiesce(void);
void hvio_bridge_release(struct hvio_bridge *bridge);
void hvio_bridge_inject(struct hvio_dev *dev);
u32 hvio_bridge_max_irqs(void);
void hvio_bridge_forget(struct hvio_dev *dev);
void hvio_bridge_answer_late(u32 cpus);

/* hvio_zone.c */
int hvio_zone_add(const struct hvio_zone_add *arg);
int hvio_zone_del(u32 zone_id);
struct hvio_zone *hvio_zone_find(u32 zone_id);
bool hvio_zone_ram_ok(const struct hvio_zone *zone, u64 gpa, u64 len);
void *hvio_zone_map(const struct hvio_zone *zone, u64 gpa, u64 len);
bool hvio_zone_gpa_to_phys(const struct hvio_zone *zone, u64 gpa, u64 len,
			   u64 *phys);
void hvio_zone_free_all(void);
int hvio_zone_region(const struct hvio_zone *zone, u64 gpa, u64 len);

/* hvio_pages.c */
void hvio_pages_setup(struct hvio_zone *zone, u32 i);
int hvio_pages_busy(const struct hvio_zone *zone);
void hvio_pages_quiesce(struct hvio_dev *dev);
void hvio_pages_teardown(struct hvio_zone *zone, bool wait);
int hvio_pages_mmap(struct hvio_dev *dev, struct vm_area_struct *vma, u64 gpa,
		    u64 phys);

/* hvio_dev.c */
int hvio_dev_create(const struct hvio_dev_create *arg);
int hvio_dev_attach(const struct hvio_dev_attach *arg);
/* What hvio_dev_access() did with an access. */
enum hvio_access {
	HVIO_ACCESS_NONE,		/* no device there */
	HVIO_ACCESS_DONE,		/* answer the vCPU now */
	HVIO_ACCESS_HELD,		/* a reset: answered once drained */
};

enum hvio_access hvio_dev_access(u32 zone_id, u64 addr, u32 size,
				 bool is_write, u64 value, u32 cpu,
				 u64 *result);
u32 hvio_dev_reset_drained(struct hvio_dev *dev);
void hvio_dev_reset_answer(struct hvio_dev *dev, u32 cpus);

/* hvio_queue.c */
int hvio_queues_alloc(struct hvio_dev *dev);
void hvio_queues_free(struct hvio_dev *dev);
bool hvio_queue_kick(struct hvio_dev *dev, u32 queue);
long hvio_queue_ioctl(struct hvio_dev *dev, unsigned int cmd,
		      void __user *argp);
int hvio_queue_mmap(struct hvio_dev *dev, struct vm_area_struct *vma);
void hvio_queues_orphan(struct hvio_dev *dev);
int hvio_queue_check(struct hvio_dev *dev, u16 queue, u16 nr_commit,
		     u16 max_fetch);
/* hvio_queue_serve()'s hints */
#define HVIO_SERVE_POLL		BIT(0)	/* a fetch follows: it may poll */
#define HVIO_SERVE_FETCH_NEXT	BIT(1)	/* HVIO_COMMIT_F_FETCH_NEXT */
#define HVIO_SERVE_AGAIN	BIT(2)	/* HVIO_FETCH_F_AGAIN */
int hvio_queue_serve(struct hvio_queue *q, const struct hvio_completion *c,
		     u16 nr_commit, u16 *tags, u16 max_fetch, u32 hints,
		     u32 *out_flags, u16 *nr_fetched);
void hvio_queue_poll_cancel(struct hvio_queue *q);
void hvio_queue_write_status(struct hvio_queue *q, u64 gpa, u8 status);

bool hvio_queue_gather(struct hvio_queue *q, u16 nr, u32 skip, void *buf,
		       u32 len);
enum hvio_take hvio_queue_take(struct hvio_queue *q,
			       struct hvio_vq_chain *chain);
struct hvio_done *hvio_queue_done_next(struct hvio_queue *q, u16 head);
bool hvio_queue_flush_done(struct hvio_queue *q, bool drained, bool broken);
bool hvio_queue_more(struct hvio_queue *q);

/* Stamp an op with the generation its queue is attached in. */
static inline void hvio_queue_op_gen(const struct hvio_queue *q,
				     struct hvio_op *op)
{
	op->generation = lower_32_bits(q->vq_gen);
	op->generation_hi = upper_32_bits(q->vq_gen);
}

/* hvio_uring.c */
struct io_uring_cmd;
int hvio_uring_cmd(struct io_uring_cmd *cmd, unsigned int issue_flags);
void hvio_uring_init(struct hvio_dev *dev);
void hvio_uring_wake(struct hvio_queue *q, bool unpark);
long hvio_uring_unpark(struct hvio_dev *dev, void __user *argp);
void hvio_uring_stop(struct hvio_dev *dev);
bool hvio_uring_reap_exiting(struct hvio_dev *dev);

#endif /* _HVIO_INTERNAL_H */
