// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: the root-Linux side of hvisor's virtio bridge.
 *
 * The consumer of req_list runs in the root IRQ handler: every access but
 * QueueNotify stalls a zone vCPU until it is answered, so answers never wait
 * for userspace.  It is also the producer of res_list (zone interrupts).
 * Layout and protocol: Documentation/abi.md section 1.
 */
#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/gfp.h>
#include <linux/interrupt.h>
#include <linux/kernel.h>
#include <linux/moduleparam.h>
#include <linux/printk.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include "hvio_internal.h"
#include "hvio_trace.h"

/*
 * Requests handled per handler run before the rest is deferred to a work
 * item: a zone storming QueueNotify (which never stalls its vCPU) could
 * otherwise keep a root CPU in hard IRQ context for ever.
 */
#define HVIO_BRIDGE_BUDGET	256

/*
 * Root IRQs in a row that found req_list empty before hvio says that
 * another driver seems to have the bridge.  hvisor keeps one bridge, the
 * page of the last HVISOR_HC_INIT_VIRTIO, and raises the root IRQ only
 * while that page's need_wakeup is 1: once hvisor-tool's `hvisor virtio
 * start` hands it its own page, every IRQ on the (shared) line finds
 * hvio's ring empty.  A lone empty IRQ is normal (the handler's re-check
 * took the request the IRQ was raised for); a run of them is not.
 */
#define HVIO_BRIDGE_EMPTY_WARN	64

/* Delay before retrying interrupts that found res_list full. */
#define HVIO_RES_RETRY_JIFFIES	1

#define HVIO_RING_MASK		(HVIO_BRIDGE_MAX_REQ - 1)

/*
 * hvisor's FINISH_REQ handler keeps a list of the virtio interrupts each
 * CPU is to inject, skips an IRQ already listed, and panics on
 * assert!(len + 1 < MAX_DEVS) before appending another (MAX_DEVS is 8 in
 * hvisor today, 4 in older releases).  Only a zone's own devices' IRQs
 * can be in the list of its CPU, so hvio_dev.c refuses a device whose IRQ
 * would give its zone more than max_pending_irqs distinct ones: whatever
 * the guest does, the list cannot overflow.  More devices share an IRQ.
 */
static unsigned int max_pending_irqs = 7;

static int hvio_max_pending_set(const char *val, const struct kernel_param *kp)
{
	return param_set_uint_minmax(val, kp, 1, HVIO_MAX_DEVS);
}

static const struct kernel_param_ops hvio_max_pending_ops = {
	.set = hvio_max_pending_set,
	.get = param_get_uint,
};
module_param_cb(max_pending_irqs, &hvio_max_pending_ops, &max_pending_irqs,
		0444);
MODULE_PARM_DESC(max_pending_irqs,
		 "distinct interrupts the devices of one zone may use: hvisor's MAX_DEVS - 1 (default 7; 3 for hvisor with MAX_DEVS 4)");

/**
 * hvio_bridge_max_irqs() - distinct interrupts a zone may use
 *
 * Return: max_pending_irqs (hvio_dev.c refuses a device whose IRQ would
 * exceed it in its zone).
 */
u32 hvio_bridge_max_irqs(void)
{
	return max_pending_irqs;
}

/**
 * hvio_bridge_setup() - start consuming a zeroed bridge page
 * @bridge: the page handed to the hypervisor
 *
 * The consumer starts asleep: the hypervisor must raise the IRQ for the
 * first request.
 */
void hvio_bridge_setup(struct hvio_bridge *bridge)
{
	hvio.bridge = bridge;
	WRITE_ONCE(bridge->need_wakeup, 1);
	smp_mb(); /* need_wakeup visible before the hypervisor gets the page */
}

static void hvio_bridge_answer(struct hvio_bridge *b, u32 cpu, u64 value)
{
	/*
	 * The vCPU polls cfg_flags and then reads cfg_values: the value must
	 * be visible before the flag changes.
	 */
	WRITE_ONCE(b->cfg_values[cpu], value);
	smp_wmb(); /* pairs with the vCPU's read of cfg_flags, then value */
	WRITE_ONCE(b->cfg_flags[cpu], READ_ONCE(b->cfg_flags[cpu]) + 1);
	hvio.stats.acks++;
}

static void hvio_bridge_process(struct hvio_bridge *b,
				const struct hvio_device_req *req)
{
	enum hvio_access done;
	u64 value = 0;
	u32 size;

	hvio.stats.reqs++;
	if (req->src_cpu >= HVIO_BRIDGE_MAX_CPUS) {
		hvio.stats.bad_cpu++;
		pr_warn_ratelimited(HVIO_NAME ": request from cpu %llu dropped\n",
				    req->src_cpu);
		return;
	}
	/* A width the register file does not know reads as invalid (0). */
	size = req->size <= 8 ? (u32)req->size : 0;
	/* A vCPU that is not waiting (QueueNotify) cannot be held. */
	done = hvio_dev_access(req->src_zone, req->address, size,
			       req->is_write, req->value,
			       req->need_interrupt ? HVIO_BRIDGE_MAX_CPUS :
						     (u32)req->src_cpu,
			       &value);
	if (done == HVIO_ACCESS_NONE) {
		hvio.stats.unknown_addr++;
		pr_debug_ratelimited(HVIO_NAME ": zone %u: no device at %llx\n",
				     req->src_zone, req->address);
		value = 0;
	}
	if (!req->need_interrupt && done != HVIO_ACCESS_HELD)
		hvio_bridge_answer(b, (u32)req->src_cpu, value);
}

/**
 * hvio_bridge_answer_late() - acknowledge writes the device held back
 * @cpus: bitmap of src_cpu values whose vCPU still spins on cfg_flags
 *
 * Process or IRQ context, no device lock held.  Each bit was taken from
 * the device under its lock, so every held write is answered exactly once.
 */
void hvio_bridge_answer_late(u32 cpus)
{
	unsigned long mask = cpus, cpu, flags;

	if (!mask || !hvio.bridge)
		return;
	spin_lock_irqsave(&hvio.bridge_lock, flags);
	for_each_set_bit(cpu, &mask, HVIO_BRIDGE_MAX_CPUS)
		hvio_bridge_answer(hvio.bridge, cpu, 0);
	spin_unlock_irqrestore(&hvio.bridge_lock, flags);
}

/*
 * Drain req_list, at most @budget entries.  Returns true when the ring was
 * found empty with need_wakeup set (the consumer is asleep), false when
 * the budget ran out first.
 */
static bool hvio_bridge_drain(struct hvio_bridge *b, unsigned int budget)
{
	struct hvio_device_req req;
	u32 front, rear;

	lockdep_assert_held(&hvio.bridge_lock);
	WRITE_ONCE(b->need_wakeup, 0);
	for (;;) {
		front = READ_ONCE(b->req_front);
		/* Entries up to rear are complete once we see rear. */
		rear = smp_load_acquire(&b->req_rear);
		if (front >= HVIO_BRIDGE_MAX_REQ ||
		    rear >= HVIO_BRIDGE_MAX_REQ) {
			/*
			 * Only the hypervisor writes req_rear; a value out of
			 * range means the page is corrupt.  Stop consuming
			 * rather than read beyond the ring.
			 */
			hvio.stats.bad_index++;
			pr_err_ratelimited(HVIO_NAME ": bridge index %u/%u out of range\n",
					   front, rear);
			WRITE_ONCE(b->req_front, rear & HVIO_RING_MASK);
			WRITE_ONCE(b->need_wakeup, 1);
			break;
		}
		if (front == rear) {
			/* Announce sleep, then look again (Dekker with hvisor). */
			WRITE_ONCE(b->need_wakeup, 1);
			/* Order the flag before the re-check of rear. */
			smp_mb();
			/* Pairs with hvisor's fence between rear and flag. */
			if (smp_load_acquire(&b->req_rear) == front)
				break;
			WRITE_ONCE(b->need_wakeup, 0);
			continue;
		}
		if (!budget--)
			return false;
		memcpy(&req, &b->req_list[front], sizeof(req));
		/* The slot is copied: hand it back to the producer. */
		smp_store_release(&b->req_front, (front + 1) & HVIO_RING_MASK);
		hvio_bridge_process(b, &req);
	}
	hvio.stats.sleeps++;
	return true;
}

/**
 * hvio_bridge_handle() - root IRQ handler body
 *
 * Called by the provider in hard IRQ context (a thread under PREEMPT_RT)
 * when the hypervisor signals new requests.
 *
 * Return: false when there was no request for us (a shared IRQ line
 * raised by another device, or a stopped bridge), for IRQ_NONE.
 */
bool hvio_bridge_handle(void)
{
	struct hvio_bridge *b = hvio.bridge;
	bool idle, had;

	if (!b)
		return false;
	spin_lock(&hvio.bridge_lock);
	if (hvio.bridge_stopped) {
		spin_unlock(&hvio.bridge_lock);
		return false;
	}
	had = READ_ONCE(b->req_front) != READ_ONCE(b->req_rear);
	hvio.stats.irqs++;
	if (had) {
		hvio.bridge_empty_run = 0;
	} else {
		hvio.stats.empty_irqs++;
		if (++hvio.bridge_empty_run == HVIO_BRIDGE_EMPTY_WARN)
			pr_warn_ratelimited(HVIO_NAME ": %u root IRQs in a row found the bridge empty: has another driver (hvisor-tool's `hvisor virtio start`) given hvisor its own bridge? hvio then gets no requests; stop it and reload hvio\n",
					    HVIO_BRIDGE_EMPTY_WARN);
	}
	idle = hvio_bridge_drain(b, HVIO_BRIDGE_BUDGET);
	spin_unlock(&hvio.bridge_lock);
	if (!idle)
		queue_work(system_highpri_wq, &hvio.bridge_work);
	return had;
}

/*
 * The line may be shared (IRQF_SHARED): say IRQ_NONE when the bridge held
 * no request, so the core's spurious-interrupt accounting sees the truth
 * and a driver sharing the line (hvisor-tool's hvisor.ko) gets its turn.
 */
static irqreturn_t hvio_bridge_isr(int irq, void *data)
{
	return hvio_bridge_handle() ? IRQ_HANDLED : IRQ_NONE;
}

/**
 * hvio_bridge_request_irq() - take the root IRQ line, shared
 * @irq: Linux IRQ number the hypervisor raises
 * @flags: trigger flags to add to IRQF_SHARED (0: the line's own)
 *
 * Process context, at provider init, after hvio_bridge_setup().  On an
 * hvisor root the only other driver of this line is hvisor-tool's
 * hvisor.ko, which requests it at its load (IRQF_SHARED, rising edge):
 * say so, since hvisor has one bridge and that driver's `hvisor virtio
 * start` would take it.
 *
 * Return: 0 or request_irq()'s error (-EBUSY: held unshared, or with
 * another trigger type).
 */
int hvio_bridge_request_irq(int irq, unsigned long flags)
{
	int ret;

	if (irq_has_action(irq))
		pr_info(HVIO_NAME ": root IRQ %d already has a handler (hvisor-tool's hvisor.ko?): sharing it; use hvisor.ko for zones only, `hvisor virtio start` would take hvisor's virtio bridge from hvio\n",
			irq);
	/* No IRQF_NO_THREAD: PREEMPT_RT threads it (hvio_internal.h). */
	ret = request_irq(irq, hvio_bridge_isr, IRQF_SHARED | flags, HVIO_NAME,
			  &hvio);
	if (ret)
		pr_err(HVIO_NAME ": root IRQ %d: request_irq: %d\n", irq, ret);
	return ret;
}

/**
 * hvio_bridge_free_irq() - give back the line hvio_bridge_request_irq() took
 * @irq: the same number
 */
void hvio_bridge_free_irq(int irq)
{
	free_irq(irq, &hvio);
}

static void hvio_bridge_work_fn(struct work_struct *work)
{
	bool idle = true;

	do {
		spin_lock_irq(&hvio.bridge_lock);
		/* A zone storming notifies must not keep unload waiting. */
		if (!hvio.bridge_stopped)
			idle = hvio_bridge_drain(hvio.bridge,
						 HVIO_BRIDGE_BUDGET);
		spin_unlock_irq(&hvio.bridge_lock);
		cond_resched();
	} while (!idle);
}

/* Push one interrupt; false when res_list is full. */
static bool hvio_bridge_push_res(struct hvio_bridge *b, u32 zone, u32 irq)
{
	u32 rear, front;

	lockdep_assert_held(&hvio.res_lock);
	rear = READ_ONCE(b->res_rear) & HVIO_RING_MASK;
	/* hvisor has finished reading entries before front. */
	front = smp_load_acquire(&b->res_front);
	if (((rear + 1) & HVIO_RING_MASK) == (front & HVIO_RING_MASK)) {
		hvio.stats.res_full++;
		return false;
	}
	WRITE_ONCE(b->res_list[rear].target_zone, zone);
	WRITE_ONCE(b->res_list[rear].irq_id, irq);
	/* Publish the entry before the index that covers it. */
	smp_store_release(&b->res_rear, (rear + 1) & HVIO_RING_MASK);
	hvio.stats.res_pushed++;
	return true;
}

static void hvio_bridge_finish(void)
{
	hvio.stats.finish_calls++;
	hvio.hv->finish_req();
}

/**
 * hvio_bridge_inject() - raise a device's interrupt in its zone
 * @dev: the device; dev->lock may be held or not (the queue engine
 *       injects after its hold, the register file's config interrupt
 *       inside it)
 *
 * Any context.  When res_list is full the interrupt is remembered per
 * device and retried from a work item; it is never dropped.
 */
void hvio_bridge_inject(struct hvio_dev *dev)
{
	unsigned long flags;
	bool pushed;

	spin_lock_irqsave(&hvio.res_lock, flags);
	pushed = hvio_bridge_push_res(hvio.bridge, dev->zone->id, dev->irq);
	if (!pushed)
		set_bit(dev->slot, hvio.res_pending);
	spin_unlock_irqrestore(&hvio.res_lock, flags);
	trace_hvio_inject(dev->zone->id, dev->irq, !pushed);

	/* Even when full: FINISH_REQ makes the hypervisor drain the ring. */
	hvio_bridge_finish();
	if (!pushed)
		mod_delayed_work(system_wq, &hvio.res_work,
				 HVIO_RES_RETRY_JIFFIES);
}

/**
 * hvio_bridge_forget() - drop a device's deferred interrupt
 * @dev: device whose slot is being released
 *
 * Caller holds hvio.lock and clears hvio.dev_slots[@dev->slot] in the same
 * critical section: a device created later in the slot must not lose its
 * own deferred interrupt to this one's cleanup, nor receive this one's.
 */
void hvio_bridge_forget(struct hvio_dev *dev)
{
	lockdep_assert_held(&hvio.lock);
	spin_lock(&hvio.res_lock);
	clear_bit(dev->slot, hvio.res_pending);
	spin_unlock(&hvio.res_lock);
}

static void hvio_res_work_fn(struct work_struct *work)
{
	struct hvio_dev *dev;
	bool again = false;
	unsigned long slot;

	spin_lock_irq(&hvio.lock);
	spin_lock(&hvio.res_lock);
	for_each_set_bit(slot, hvio.res_pending, HVIO_MAX_DEVS) {
		dev = hvio.dev_slots[slot];
		if (!dev) {
			clear_bit(slot, hvio.res_pending);
			continue;
		}
		if (!hvio_bridge_push_res(hvio.bridge, dev->zone->id,
					  dev->irq)) {
			again = true;
			break;
		}
		clear_bit(slot, hvio.res_pending);
		/* The deferred interrupt, pushed now. */
		trace_hvio_inject(dev->zone->id, dev->irq, false);
	}
	spin_unlock(&hvio.res_lock);
	spin_unlock_irq(&hvio.lock);

	hvio_bridge_finish();
	if (again)
		mod_delayed_work(system_wq, &hvio.res_work,
				 HVIO_RES_RETRY_JIFFIES);
}

/**
 * hvio_bridge_init_work() - prepare the deferred-work items
 */
void hvio_bridge_init_work(void)
{
	INIT_WORK(&hvio.bridge_work, hvio_bridge_work_fn);
	INIT_DELAYED_WORK(&hvio.res_work, hvio_res_work_fn);
}

/**
 * hvio_bridge_stop() - stop consuming requests (unload, failed load)
 *
 * First of the teardown steps, before the provider's exit.  No handler or
 * work item drains the ring after this; need_wakeup is cleared under the
 * consumer's lock, so none of them can set it again and the hypervisor
 * stops raising the root IRQ.  The continuation work is waited for here:
 * it stops at its next round however fast a zone pushes requests (before,
 * it drained for as long as the zone kept the ring busy, and unload
 * waited with it).
 */
void hvio_bridge_stop(void)
{
	spin_lock_irq(&hvio.bridge_lock);
	hvio.bridge_stopped = true;
	if (hvio.bridge)
		WRITE_ONCE(hvio.bridge->need_wakeup, 0);
	spin_unlock_irq(&hvio.bridge_lock);
	cancel_work_sync(&hvio.bridge_work);
}

/**
 * hvio_bridge_quiesce() - stop deferred work before teardown
 *
 * After hvio_bridge_stop(); the provider's IRQ source must already be
 * gone.
 */
void hvio_bridge_quiesce(void)
{
	cancel_work_sync(&hvio.bridge_work);
	cancel_delayed_work_sync(&hvio.res_work);
}

/**
 * hvio_bridge_release() - give up a bridge page the hypervisor was given
 * @bridge: the page, after hvio_bridge_quiesce()
 *
 * hvisor has no hypercall to retire a bridge page: it keeps the address it
 * was given at HVISOR_HC_INIT_VIRTIO and goes on writing req_list into it.
 * Freeing the page would let hvisor write into memory the kernel reuses,
 * so with the hvisor provider the page (4 KiB) stays allocated after
 * unload, or after a load that failed once the hypervisor had the page.
 */
void hvio_bridge_release(struct hvio_bridge *bridge)
{
	hvio.bridge = NULL;
	if (hvio.hv->id == HVIO_PROVIDER_SIM)
		free_page((unsigned long)bridge);
}
