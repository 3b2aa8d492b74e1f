// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: devices and their file descriptors.
 *
 * A device is a virtio-mmio window in one zone.  The bridge handler finds
 * it by (zone, address) and runs the access against its register file; the
 * daemon holds it through a file descriptor (close = destroy) which maps
 * the zone's RAM, reports events through poll() and reads state and
 * counters.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/nospec.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hvio_compat.h"
#include "hvio_devtype.h"
#include "hvio_trace.h"

/* Largest virtio device type id the spec allocates room for today. */
#define HVIO_MAX_DEVICE_ID	63

/*
 * How long a vCPU's Status = 0 write may stay unanswered while the daemon
 * still holds ops of the old generation.  The daemon cancels them when it
 * sees the reset, so this is only reached when it cannot (a backing store
 * that hangs, a stopped daemon): then the write is answered anyway and
 * counted (reset_timeouts), and a late write is possible again.  Below
 * the guest's soft-lockup threshold; capped so no setting hangs a vCPU.
 */
#define HVIO_RESET_TIMEOUT_MAX_MS	60000
static unsigned int reset_timeout_ms = 5000;
module_param(reset_timeout_ms, uint, 0644);
MODULE_PARM_DESC(reset_timeout_ms,
		 "longest a guest reset waits for the daemon's old ops (ms, max 60000)");

static struct hvio_dev *hvio_mmio_to_dev(struct hvio_mmio *m)
{
	return container_of(m, struct hvio_dev, mmio);
}

static bool hvio_dev_ram_ok(struct hvio_mmio *m, u64 gpa, u64 len)
{
	return hvio_zone_ram_ok(hvio_mmio_to_dev(m)->zone, gpa, len);
}

static void hvio_dev_kick(struct hvio_mmio *m, u32 queue)
{
	struct hvio_dev *dev = hvio_mmio_to_dev(m);

	lockdep_assert_held(&dev->lock);
	trace_hvio_kick(dev->zone->id, dev->mmio_base, queue, 0);
	/* A queue with a parked FETCH or an eventfd is woken through it. */
	if (hvio_queue_kick(dev, queue))
		return;
	dev->kicked |= 1U << queue;
	dev->events |= HVIO_EV_KICK;
	wake_up_interruptible(&dev->wq);
}

static void hvio_dev_status(struct hvio_mmio *m, u32 old, u32 new, bool reset)
{
	struct hvio_dev *dev = hvio_mmio_to_dev(m);
	u32 i;

	lockdep_assert_held(&dev->lock);
	dev->events |= HVIO_EV_STATUS;
	if (reset) {
		dev->events |= HVIO_EV_RESET;
		dev->kicked = 0;
		/* Parked FETCHes complete with the new generation. */
		for (i = 0; i < dev->mmio.num_queues; i++)
			hvio_uring_wake(&dev->queues[i], false);
	}
	wake_up_interruptible(&dev->wq);
}

/*
 * Reset drain.  A reset takes the guest's buffers back, but ops the daemon
 * is executing still name them: a read landing after the guest saw the
 * reset done would write into memory it reuses (a rebooted zone's new
 * kernel).  Linux's virtio_mmio only writes Status = 0 and never reads it
 * back, so the read-back delay virtio allows is not enough; but under
 * hvisor a trapped write also stalls its vCPU until it is acknowledged.
 * So the reset happens at once (new generation: nothing old is committed)
 * while the acknowledgement waits until every op of the old generation
 * came back, the daemon is gone (orphan or destroy: nothing can write),
 * or reset_timeout_ms passed.  Other vCPUs reading Status meanwhile see
 * the value before the reset.
 */

/* Under dev->lock: ops of old generations the daemon still holds. */
static u32 hvio_dev_ops_old(struct hvio_dev *dev)
{
	u32 i, n = 0;

	for (i = 0; i < dev->mmio.num_queues; i++)
		n += dev->queues[i].ops_old;
	return n;
}

/* Under dev->lock: a Status = 0 write of @cpu; true if it is held. */
static bool hvio_dev_reset_hold(struct hvio_dev *dev, u32 cpu, u32 old_status)
{
	struct hvio_queue *q;
	u32 i, old;

	lockdep_assert_held(&dev->lock);
	for (i = 0; i < dev->mmio.num_queues; i++) {
		q = &dev->queues[i];
		q->ops_old += q->ops_live;
		q->ops_live = 0;
	}
	old = hvio_dev_ops_old(dev);
	if (!old || cpu >= HVIO_BRIDGE_MAX_CPUS)
		return false;
	if (!dev->reset_cpus) {
		dev->reset_status = old_status;
		dev->reset_start = jiffies;
		mod_delayed_work(system_wq, &dev->reset_work,
				 msecs_to_jiffies(min_t(unsigned int,
							READ_ONCE(reset_timeout_ms),
							HVIO_RESET_TIMEOUT_MAX_MS)));
	}
	dev->reset_cpus |= BIT(cpu);
	dev->stats.reset_waits++;
	pr_debug_ratelimited(HVIO_NAME ": zone %u dev %#llx: reset held for %u ops of the old generation\n",
			     dev->zone->id, dev->mmio_base, old);
	/* A queue thread sleeping on its kicks learns of the reset too. */
	for (i = 0; i < dev->mmio.num_queues; i++) {
		q = &dev->queues[i];
		if (q->efd)
			hvio_eventfd_signal(q->efd);
	}
	return true;
}

/**
 * hvio_dev_reset_drained() - take the held vCPUs if the drain is over
 * @dev: device, dev->lock held
 *
 * Return: the vCPUs to pass to hvio_dev_reset_answer() after unlocking,
 * 0 while ops of an old generation are still out.
 */
u32 hvio_dev_reset_drained(struct hvio_dev *dev)
{
	u32 cpus;

	lockdep_assert_held(&dev->lock);
	if (!dev->reset_cpus || hvio_dev_ops_old(dev))
		return 0;
	cpus = dev->reset_cpus;
	dev->reset_cpus = 0;
	return cpus;
}

/**
 * hvio_dev_reset_answer() - acknowledge held Status writes
 * @dev: device, dev->lock not held
 * @cpus: from hvio_dev_reset_drained(); 0 does nothing
 */
void hvio_dev_reset_answer(struct hvio_dev *dev, u32 cpus)
{
	if (!cpus)
		return;
	cancel_delayed_work(&dev->reset_work);
	pr_debug_ratelimited(HVIO_NAME ": zone %u dev %#llx: reset answered after %u ms\n",
			     dev->zone->id, dev->mmio_base,
			     jiffies_to_msecs(jiffies - dev->reset_start));
	hvio_bridge_answer_late(cpus);
}

static void hvio_dev_reset_timeout(struct work_struct *work)
{
	struct hvio_dev *dev = container_of(to_delayed_work(work),
					    struct hvio_dev, reset_work);
	u32 cpus, left;

	spin_lock_irq(&dev->lock);
	cpus = dev->reset_cpus;
	dev->reset_cpus = 0;
	left = hvio_dev_ops_old(dev);
	if (cpus)
		dev->stats.reset_timeouts++;
	spin_unlock_irq(&dev->lock);
	if (!cpus)
		return;
	pr_warn_ratelimited(HVIO_NAME ": zone %u dev %#llx: reset answered after %u ms with %u ops of the old generation still out\n",
			    dev->zone->id, dev->mmio_base,
			    jiffies_to_msecs(jiffies - dev->reset_start), left);
	hvio_bridge_answer_late(cpus);
}

/*
 * The daemon is gone (every mapping of zone RAM with it): nothing it held
 * can land any more.  Ops it fetched are requeued, or dropped by a reset,
 * and counted again when handed out.
 */
static void hvio_dev_reset_forget(struct hvio_dev *dev)
{
	u32 cpus, i;

	spin_lock_irq(&dev->lock);
	for (i = 0; i < dev->mmio.num_queues; i++) {
		dev->queues[i].ops_live = 0;
		dev->queues[i].ops_old = 0;
	}
	cpus = hvio_dev_reset_drained(dev);
	spin_unlock_irq(&dev->lock);
	hvio_dev_reset_answer(dev, cpus);
}

static void hvio_dev_interrupt(struct hvio_mmio *m, u32 bits)
{
	hvio_bridge_inject(hvio_mmio_to_dev(m));
}

static const struct hvio_mmio_ops hvio_dev_mmio_ops = {
	.ram_ok = hvio_dev_ram_ok,
	.kick = hvio_dev_kick,
	.status = hvio_dev_status,
	.interrupt = hvio_dev_interrupt,
};

/**
 * hvio_dev_access() - run one trapped access against the device there
 * @zone_id: the zone the vCPU belongs to
 * @addr: zone IPA accessed
 * @size: access width in bytes (0 for an invalid width)
 * @is_write: write access
 * @value: value written
 * @cpu: src_cpu of a vCPU waiting for the answer; HVIO_BRIDGE_MAX_CPUS
 *       when none waits
 * @result: value read
 *
 * Called by the bridge handler, interrupts off.
 *
 * Return: HVIO_ACCESS_NONE when no device of the zone covers @addr,
 * HVIO_ACCESS_HELD for a reset whose answer waits for the daemon
 * (hvio_bridge_answer_late() gives it), else HVIO_ACCESS_DONE.
 */
enum hvio_access hvio_dev_access(u32 zone_id, u64 addr, u32 size,
				 bool is_write, u64 value, u32 cpu,
				 u64 *result)
{
	enum hvio_access ret = HVIO_ACCESS_NONE;
	struct hvio_dev *dev;
	u32 gen, status;
	u64 off;

	spin_lock(&hvio.lock);
	list_for_each_entry(dev, &hvio.devs, node) {
		if (dev->zone->id != zone_id || addr < dev->mmio_base ||
		    addr - dev->mmio_base >= dev->mmio_len)
			continue;
		ret = HVIO_ACCESS_DONE;
		off = addr - dev->mmio_base;
		spin_lock(&dev->lock);
		if (is_write) {
			gen = dev->mmio.generation;
			status = dev->mmio.status;
			hvio_mmio_write(&dev->mmio, off, size, value);
			if (dev->mmio.generation != gen) {
				if (hvio_dev_reset_hold(dev, cpu, status))
					ret = HVIO_ACCESS_HELD;
				trace_hvio_reset(zone_id, dev->mmio_base,
						 dev->mmio.generation,
						 ret == HVIO_ACCESS_HELD);
			}
		} else {
			*result = hvio_mmio_read(&dev->mmio, off, size);
			/* The reset is not complete until it is answered. */
			if (off == HVIO_REG_STATUS && size == 4 &&
			    dev->reset_cpus && !*result)
				*result = dev->reset_status;
		}
		spin_unlock(&dev->lock);
		break;
	}
	spin_unlock(&hvio.lock);
	return ret;
}

static void hvio_dev_destroy(struct hvio_dev *dev)
{
	mutex_lock(&hvio.ctl_mutex);
	spin_lock_irq(&hvio.lock);
	list_del(&dev->node);
	hvio.dev_slots[dev->slot] = NULL;
	/* With the slot: a device created in it later starts clean. */
	hvio_bridge_forget(dev);
	hvio.stats.devs--;
	spin_unlock_irq(&hvio.lock);
	dev->zone->nr_devs--;
	mutex_unlock(&hvio.ctl_mutex);

	/* Off the list: no bridge handler can reach it any more. */
	cancel_delayed_work_sync(&dev->reset_work);
	hvio_uring_stop(dev);
	hvio_dev_reset_forget(dev);
	hvio_queues_free(dev);
	kfree(dev);
}

/*
 * The last reference to a device fd is gone.  A recoverable device that
 * was not told HVIO_DEV_DESTROY becomes an orphan: it stays on the bridge
 * and keeps the module loaded until a new daemon attaches (and then
 * closes it with HVIO_DEV_DESTROY) -- see Documentation/architecture.md.
 */
static int hvio_dev_release(struct inode *inode, struct file *file)
{
	struct hvio_dev *dev = file->private_data;

	/* O_DIRECT of a killed daemon may still write the guest's buffers. */
	hvio_pages_quiesce(dev);
	mutex_lock(&hvio.ctl_mutex);
	if (dev->recoverable) {
		dev->attached = false;
		spin_lock_irq(&hvio.lock);
		hvio.stats.orphans++;
		spin_unlock_irq(&hvio.lock);
		/* The file's module reference goes when we return. */
		__module_get(THIS_MODULE);
		hvio_queues_orphan(dev);
		hvio_dev_reset_forget(dev);
		mutex_unlock(&hvio.ctl_mutex);
		pr_info(HVIO_NAME ": zone %u dev %#llx: daemon gone, device kept for recovery\n",
			dev->zone->id, dev->mmio_base);
		return 0;
	}
	mutex_unlock(&hvio.ctl_mutex);
	hvio_dev_destroy(dev);
	return 0;
}

/*
 * Every close of a device fd.  A killed daemon closes its fds while
 * exiting: its parked io_uring FETCHes must let go of the file now, or
 * the device would be released (orphaned) only after the process is gone.
 */
static int hvio_dev_flush(struct file *file, fl_owner_t id)
{
	hvio_uring_reap_exiting(file->private_data);
	return 0;
}

static __poll_t hvio_dev_poll(struct file *file, poll_table *wait)
{
	struct hvio_dev *dev = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &dev->wq, wait);
	spin_lock_irq(&dev->lock);
	if (dev->events)
		mask |= EPOLLIN | EPOLLRDNORM;
	spin_unlock_irq(&dev->lock);
	return mask;
}

static int hvio_dev_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct hvio_dev *dev = file->private_data;
	u64 len = vma->vm_end - vma->vm_start;
	u64 gpa, phys;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= (HVIO_DEV_MMAP_RING_BASE >> PAGE_SHIFT))
		return hvio_queue_mmap(dev, vma);
	if (vma->vm_pgoff > (HVIO_IPA_LIMIT >> PAGE_SHIFT))
		return -EINVAL;
	gpa = (u64)vma->vm_pgoff << PAGE_SHIFT;
	/* The zone's regions are fixed while it has devices. */
	if (!hvio_zone_gpa_to_phys(dev->zone, gpa, len, &phys))
		return -EINVAL;
	return hvio_pages_mmap(dev, vma, gpa, phys);
}

static void hvio_dev_fill_info(struct hvio_dev *dev, struct hvio_dev_info *info)
{
	struct hvio_mmio *m = &dev->mmio;
	u32 i;

	memset(info, 0, sizeof(*info));
	info->zone_id = dev->zone->id;
	info->device_id = m->device_id;
	info->mmio_base = dev->mmio_base;
	info->mmio_len = dev->mmio_len;
	info->irq = dev->irq;
	info->num_queues = m->num_queues;
	info->queue_size_max = m->queue_size_max;
	/* Fixed while the zone has devices. */
	for (i = 0; i < dev->zone->nr_regions; i++)
		info->ram_mode[i] = dev->zone->ram_mode[i];

	spin_lock_irq(&dev->lock);
	info->status = m->status;
	info->device_features = m->device_features;
	info->driver_features = m->driver_features;
	info->generation = m->generation;
	info->config_generation = m->config_generation;
	info->interrupt_status = m->int_status;
	for (i = 0; i < m->num_queues; i++) {
		info->queues[i].num = m->queues[i].num;
		info->queues[i].ready = m->queues[i].ready;
		info->queues[i].desc = m->queues[i].desc;
		info->queues[i].driver = m->queues[i].driver;
		info->queues[i].device = m->queues[i].device;
	}
	spin_unlock_irq(&dev->lock);
}

static long hvio_dev_set_config(struct hvio_dev *dev, void __user *argp)
{
	struct hvio_dev_config cfg;
	u8 buf[HVIO_MAX_CONFIG_LEN];

	if (copy_from_user(&cfg, argp, sizeof(cfg)))
		return -EFAULT;
	if (cfg.reserved || (cfg.flags & ~HVIO_CONFIG_F_NOTIFY))
		return -EINVAL;
	if (!cfg.len || cfg.offset >= dev->mmio.config_len ||
	    cfg.len > dev->mmio.config_len - cfg.offset)
		return -EINVAL;
	if (copy_from_user(buf, u64_to_user_ptr(cfg.addr), cfg.len))
		return -EFAULT;

	spin_lock_irq(&dev->lock);
	hvio_mmio_set_config(&dev->mmio, cfg.offset, buf, cfg.len,
			     cfg.flags & HVIO_CONFIG_F_NOTIFY);
	spin_unlock_irq(&dev->lock);
	return 0;
}

static long hvio_dev_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct hvio_dev *dev = file->private_data;
	void __user *argp = (void __user *)arg;
	struct hvio_dev_events ev;
	struct hvio_dev_stats st;
	struct hvio_dev_info *info;
	long ret;

	switch (cmd) {
	case HVIO_DEV_GET_INFO:
		info = kmalloc(sizeof(*info), GFP_KERNEL);
		if (!info)
			return -ENOMEM;
		hvio_dev_fill_info(dev, info);
		ret = copy_to_user(argp, info, sizeof(*info)) ? -EFAULT : 0;
		kfree(info);
		return ret;
	case HVIO_DEV_GET_STATS:
		spin_lock_irq(&dev->lock);
		st = dev->stats;
		spin_unlock_irq(&dev->lock);
		return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
	case HVIO_DEV_SET_CONFIG:
		return hvio_dev_set_config(dev, argp);
	case HVIO_DEV_DESTROY:
		mutex_lock(&hvio.ctl_mutex);
		dev->recoverable = false;
		mutex_unlock(&hvio.ctl_mutex);
		return 0;
	case HVIO_DEV_GET_EVENTS:
		memset(&ev, 0, sizeof(ev));
		spin_lock_irq(&dev->lock);
		ev.events = dev->events;
		ev.kicked_queues = dev->kicked;
		ev.status = dev->mmio.status;
		ev.generation = dev->mmio.generation;
		dev->events = 0;
		dev->kicked = 0;
		spin_unlock_irq(&dev->lock);
		return copy_to_user(argp, &ev, sizeof(ev)) ? -EFAULT : 0;
	default:
		return hvio_queue_ioctl(dev, cmd, argp);
	}
}

static const struct file_operations hvio_dev_fops = {
	.owner = THIS_MODULE,
	.release = hvio_dev_release,
	.flush = hvio_dev_flush,
	.unlocked_ioctl = hvio_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = hvio_dev_mmap,
	.poll = hvio_dev_poll,
	.uring_cmd = hvio_uring_cmd,
	.llseek = noop_llseek,
};

/*
 * The device types with a request engine.  Any other virtio device id
 * gets a register file only (HVIO_DEV_QUEUE_RUN: -EOPNOTSUPP), so a
 * daemon can still present a device the module does not parse.
 */
static const struct hvio_devtype *const hvio_devtypes[] = {
	&hvio_net_type,
	&hvio_blk_type,
	&hvio_console_type,
};

/* The type of virtio device @device_id, or NULL. */
static const struct hvio_devtype *hvio_devtype_find(u32 device_id)
{
	u32 i;

	for (i = 0; i < ARRAY_SIZE(hvio_devtypes); i++)
		if (hvio_devtypes[i]->device_id == device_id)
			return hvio_devtypes[i];
	return NULL;
}

static int hvio_dev_check(const struct hvio_dev_create *a)
{
	const struct hvio_devtype *type;
	u64 end;

	if ((a->flags & ~HVIO_DEV_F_RECOVERABLE) || a->reserved0 ||
	    a->reserved1 || a->reserved2 ||
	    memchr_inv(a->reserved, 0, sizeof(a->reserved)))
		return -EINVAL;
	if (!a->device_id || a->device_id > HVIO_MAX_DEVICE_ID)
		return -EINVAL;
	if (!a->mmio_len || a->mmio_len > HVIO_MMIO_MAX_LEN ||
	    (a->mmio_base % HVIO_MMIO_ALIGN) || (a->mmio_len % HVIO_MMIO_ALIGN))
		return -EINVAL;
	if (check_add_overflow(a->mmio_base, a->mmio_len, &end) ||
	    end > HVIO_IPA_LIMIT)
		return -EINVAL;
	if (!a->irq || a->irq > HVIO_MAX_IRQ)
		return -EINVAL;
	if (!a->num_queues || a->num_queues > HVIO_MAX_QUEUES)
		return -EINVAL;
	if (a->queue_size_max < 2 || a->queue_size_max > HVIO_MAX_QUEUE_SIZE ||
	    !is_power_of_2(a->queue_size_max))
		return -EINVAL;
	if (a->config_len > HVIO_MAX_CONFIG_LEN ||
	    HVIO_MMIO_CONFIG_OFF + a->config_len > a->mmio_len)
		return -EINVAL;
	if (!(a->features & (1ULL << HVIO_F_VERSION_1)))
		return -EINVAL;
	type = hvio_devtype_find(a->device_id);
	if (!type)
		return 0;
	if (type->num_queues && a->num_queues != type->num_queues)
		return -EINVAL;
	if (a->features & ~type->features)
		return -EINVAL;
	return 0;
}

/* Under hvio.ctl_mutex: is the window free in its zone and outside RAM? */
static int hvio_dev_place(struct hvio_zone *zone, u64 base, u64 len)
{
	struct hvio_dev *d;
	u32 i;

	for (i = 0; i < zone->nr_regions; i++)
		if (base < zone->regions[i].zonex_ipa + zone->regions[i].size &&
		    zone->regions[i].zonex_ipa < base + len)
			return -EINVAL;
	list_for_each_entry(d, &hvio.devs, node)
		if (d->zone == zone && base < d->mmio_base + d->mmio_len &&
		    d->mmio_base < base + len)
			return -EBUSY;
	return 0;
}

/*
 * Under hvio.ctl_mutex: may a device of @zone use @irq?  hvisor keeps the
 * virtio interrupts pending for a zone's CPU in a list that panics the
 * hypervisor at MAX_DEVS distinct entries (hvio_bridge.c); only this
 * zone's devices' IRQs can be in it, so a zone never gets more distinct
 * IRQs than the list holds, whatever its guest does.
 */
static int hvio_dev_irq_fits(struct hvio_zone *zone, u32 irq)
{
	u32 seen[HVIO_MAX_DEVS], n = 0, i;
	struct hvio_dev *d;

	list_for_each_entry(d, &hvio.devs, node) {
		if (d->zone != zone)
			continue;
		if (d->irq == irq)
			return 0;
		for (i = 0; i < n && seen[i] != d->irq; i++)
			;
		if (i == n && n < ARRAY_SIZE(seen))
			seen[n++] = d->irq;
	}
	if (n < hvio_bridge_max_irqs())
		return 0;
	pr_warn_ratelimited(HVIO_NAME ": zone %u: irq %u would be its %u-th distinct interrupt; hvisor holds %u per zone CPU (max_pending_irqs): share an irq\n",
			    zone->id, irq, n + 1, hvio_bridge_max_irqs());
	return -ENOSPC;
}

/**
 * hvio_dev_create() - create a device (HVIO_DEV_CREATE)
 * @arg: copied from userspace, validated here
 *
 * Return: a new file descriptor or a negative errno.
 */
int hvio_dev_create(const struct hvio_dev_create *arg)
{
	struct hvio_zone *zone;
	struct hvio_dev *dev;
	struct file *file;
	int fd, ret;
	u32 slot;

	ret = hvio_dev_check(arg);
	if (ret)
		return ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	spin_lock_init(&dev->lock);
	init_waitqueue_head(&dev->wq);
	INIT_DELAYED_WORK(&dev->reset_work, hvio_dev_reset_timeout);
	hvio_uring_init(dev);
	dev->mmio_base = arg->mmio_base;
	dev->mmio_len = arg->mmio_len;
	dev->irq = arg->irq;
	dev->type = hvio_devtype_find(arg->device_id);
	dev->mmio.device_id = arg->device_id;
	dev->mmio.num_queues = arg->num_queues;
	dev->mmio.queue_size_max = arg->queue_size_max;
	dev->mmio.device_features = arg->features;
	dev->mmio.config_len = arg->config_len;
	if (arg->config_len &&
	    copy_from_user(dev->mmio.config, u64_to_user_ptr(arg->config_addr),
			   arg->config_len)) {
		ret = -EFAULT;
		goto err_free;
	}
	memcpy(dev->serial, arg->serial, sizeof(dev->serial));
	dev->mmio.cfg_wr_off = -1;
	if (dev->type && dev->type->init)
		dev->type->init(dev);
	hvio_mmio_init(&dev->mmio, &hvio_dev_mmio_ops, &dev->stats);
	ret = hvio_queues_alloc(dev);
	if (ret)
		goto err_free;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_free;
	}

	mutex_lock(&hvio.ctl_mutex);
	zone = hvio_zone_find(arg->zone_id);
	if (!zone) {
		ret = -ENOENT;
		goto err_unlock;
	}
	ret = hvio_dev_place(zone, arg->mmio_base, arg->mmio_len);
	if (ret)
		goto err_unlock;
	ret = hvio_dev_irq_fits(zone, arg->irq);
	if (ret)
		goto err_unlock;
	for (slot = 0; slot < HVIO_MAX_DEVS; slot++)
		if (!hvio.dev_slots[slot])
			break;
	if (slot == HVIO_MAX_DEVS) {
		ret = -ENOSPC;
		goto err_unlock;
	}
	dev->zone = zone;
	dev->slot = slot;
	dev->recoverable = arg->flags & HVIO_DEV_F_RECOVERABLE;
	dev->attached = true;

	file = anon_inode_getfile("[hvio-dev]", &hvio_dev_fops, dev, O_RDWR);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_unlock;
	}

	zone->nr_devs++;
	spin_lock_irq(&hvio.lock);
	hvio.dev_slots[slot] = dev;
	list_add_tail(&dev->node, &hvio.devs);
	hvio.stats.devs++;
	spin_unlock_irq(&hvio.lock);
	mutex_unlock(&hvio.ctl_mutex);

	fd_install(fd, file);
	return fd;

err_unlock:
	mutex_unlock(&hvio.ctl_mutex);
	put_unused_fd(fd);
err_free:
	hvio_queues_free(dev);
	kfree(dev);
	return ret;
}

/**
 * hvio_dev_attach() - a new daemon takes over an orphan (HVIO_DEV_ATTACH)
 * @arg: copied from userspace, validated here
 *
 * Return: a new file descriptor, -ENOENT (no such device, or no orphan for
 * a wildcard), -EBUSY (not an orphan) or -EINVAL.
 */
int hvio_dev_attach(const struct hvio_dev_attach *arg)
{
	struct hvio_dev *dev, *found = NULL;
	struct file *file;
	int fd, ret;

	if (arg->flags || arg->reserved[0] || arg->reserved[1] ||
	    (!arg->zone_id && arg->mmio_base))
		return -EINVAL;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;

	mutex_lock(&hvio.ctl_mutex);
	list_for_each_entry(dev, &hvio.devs, node) {
		if (arg->zone_id && dev->zone->id != arg->zone_id)
			continue;
		if (!arg->zone_id || arg->mmio_base == HVIO_ATTACH_ANY) {
			/* Any orphan (of the zone). */
			if (dev->attached)
				continue;
		} else if (dev->mmio_base != arg->mmio_base) {
			continue;
		}
		found = dev;
		break;
	}
	ret = -ENOENT;
	if (!found)
		goto err_unlock;
	ret = -EBUSY;
	if (found->attached)
		goto err_unlock;
	file = anon_inode_getfile("[hvio-dev]", &hvio_dev_fops, found, O_RDWR);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto err_unlock;
	}
	found->attached = true;
	spin_lock_irq(&hvio.lock);
	hvio.stats.orphans--;
	spin_unlock_irq(&hvio.lock);
	mutex_unlock(&hvio.ctl_mutex);
	/* The new file holds the module now; drop the orphan's reference. */
	module_put(THIS_MODULE);
	fd_install(fd, file);
	return fd;

err_unlock:
	mutex_unlock(&hvio.ctl_mutex);
	put_unused_fd(fd);
	return ret;
}
