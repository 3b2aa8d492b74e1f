// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: the "sim" provider, for machines without hvisor.
 *
 * A userspace program opens /dev/hvio-sim and plays hvisor's side of the
 * bridge byte for byte: it maps the bridge page, pushes requests, honours
 * need_wakeup by raising the root IRQ through an ioctl, spins on
 * cfg_flags, and drains res_list when the FINISH_REQ eventfd fires.  Zone
 * RAM is a physical window root Linux was booted without (sim_ram=), just
 * as hvisor zones get RAM root Linux does not own.  Everything above this
 * file is the code that runs on a real board.
 */
#include <linux/atomic.h>
#include <linux/eventfd.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/irq_work.h>
#include <linux/irq.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/of.h>
#include <linux/of_reserved_mem.h>
#include <linux/uaccess.h>

#include "hvio_compat.h"
#include "hvio_internal.h"

static char *sim_ram;
module_param(sim_ram, charp, 0444);
MODULE_PARM_DESC(sim_ram, "sim provider: zone RAM window SIZE@PHYS, a range root Linux was booted without (memmap=/mem=)");

/*
 * 0: HVIO_SIM_RAISE_IRQ calls the bridge handler from an irq_work.  N: it
 * raises Linux IRQ N, which hvio requests exactly as the hvisor provider
 * requests the root IRQ (shared); a line some other driver provides, so
 * the selftests can share it with a stand-in for hvisor-tool's hvisor.ko.
 */
static unsigned int sim_irq;
module_param(sim_irq, uint, 0444);
MODULE_PARM_DESC(sim_irq, "sim provider: raise this existing Linux IRQ (requested shared, as the hvisor provider does) instead of calling the handler directly");

static struct {
	u64 ram_base;
	u64 ram_size;
	struct hvio_bridge *bridge;
	struct irq_work irq_work;
	atomic_t open;
	spinlock_t efd_lock;		/* guards efd */
	struct eventfd_ctx *efd;
	atomic64_t finish_calls;
} hvio_sim;

/*
 * The root interrupt: hard IRQ context, as on a board, except under
 * PREEMPT_RT, where an irq_work without IRQ_WORK_HARD_IRQ runs in the
 * per-CPU irq_work thread, as a board's force-threaded IRQ does there; the
 * bridge handler's locks are spinlock_t (sleeping on RT) and need that.
 */
static void hvio_sim_irq(struct irq_work *work)
{
	if (sim_irq)
		generic_handle_irq_safe(sim_irq);
	else
		(void)hvio_bridge_handle();
}

static void hvio_sim_finish_req(void)
{
	unsigned long flags;

	atomic64_inc(&hvio_sim.finish_calls);
	spin_lock_irqsave(&hvio_sim.efd_lock, flags);
	if (hvio_sim.efd)
		hvio_eventfd_signal(hvio_sim.efd);
	spin_unlock_irqrestore(&hvio_sim.efd_lock, flags);
}

/*
 * Is [base, base + size) inside a device-tree /reserved-memory node with
 * compatible "hvio,sim-ram" (and without no-map)?  Such RAM is in root
 * Linux's memory map, so it has struct pages and a cacheable linear
 * mapping, but memblock keeps it from the page allocator: root Linux does
 * not use it.  arm64 needs this form for nested KVM, which maps memory
 * outside the memory map into stage 2 as Device memory (a Linux zone then
 * faults on its first unaligned access); scripts/vm-run --sim-ram-dt
 * boots the root VM that way.
 */
static bool hvio_sim_dt_reserved(u64 base, u64 size)
{
	struct device_node *parent, *np;
	struct reserved_mem *rmem;
	bool ok = false;

	parent = of_find_node_by_path("/reserved-memory");
	if (!parent)
		return false;
	for_each_available_child_of_node(parent, np) {
		if (!of_device_is_compatible(np, "hvio,sim-ram"))
			continue;
		rmem = of_reserved_mem_lookup(np);
		if (rmem && base >= rmem->base && size <= rmem->size &&
		    base - rmem->base <= rmem->size - size) {
			ok = true;
			of_node_put(np);
			break;
		}
	}
	of_node_put(parent);
	return ok;
}

/* Root Linux does not use this range: outside its RAM, or set aside. */
static bool hvio_sim_unused(u64 base, u64 size)
{
	return region_intersects(base, size, IORESOURCE_SYSTEM_RAM,
				 IORES_DESC_NONE) == REGION_DISJOINT ||
	       hvio_sim_dt_reserved(base, size);
}

static bool hvio_sim_region_ok(u64 phys, u64 size)
{
	if (!hvio_sim.ram_size || phys < hvio_sim.ram_base ||
	    size > hvio_sim.ram_size ||
	    phys - hvio_sim.ram_base > hvio_sim.ram_size - size)
		return false;
	return hvio_sim_unused(phys, size);
}

static void hvio_sim_set_efd(struct eventfd_ctx *ctx)
{
	struct eventfd_ctx *old;

	spin_lock_irq(&hvio_sim.efd_lock);
	old = hvio_sim.efd;
	hvio_sim.efd = ctx;
	spin_unlock_irq(&hvio_sim.efd_lock);
	if (old)
		eventfd_ctx_put(old);
}

static int hvio_sim_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	/* One hypervisor at a time. */
	if (atomic_cmpxchg(&hvio_sim.open, 0, 1))
		return -EBUSY;
	return 0;
}

static int hvio_sim_release(struct inode *inode, struct file *file)
{
	hvio_sim_set_efd(NULL);
	atomic_set(&hvio_sim.open, 0);
	return 0;
}

static int hvio_sim_mmap(struct file *file, struct vm_area_struct *vma)
{
	u64 len = vma->vm_end - vma->vm_start;
	u64 off = (u64)vma->vm_pgoff << PAGE_SHIFT;
	u64 pfn;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (off == HVIO_SIM_MMAP_BRIDGE) {
		if (len != PAGE_SIZE)
			return -EINVAL;
		pfn = virt_to_phys(hvio_sim.bridge) >> PAGE_SHIFT;
	} else if (off >= HVIO_SIM_MMAP_RAM) {
		off -= HVIO_SIM_MMAP_RAM;
		if (!hvio_sim.ram_size || off >= hvio_sim.ram_size ||
		    len > hvio_sim.ram_size - off)
			return -EINVAL;
		pfn = (hvio_sim.ram_base + off) >> PAGE_SHIFT;
	} else {
		return -EINVAL;
	}
	hvio_vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND |
			  VM_DONTDUMP);
	return remap_pfn_range(vma, vma->vm_start, pfn, len, vma->vm_page_prot);
}

static long hvio_sim_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct hvio_sim_info info;
	struct eventfd_ctx *ctx;
	s32 fd;

	switch (cmd) {
	case HVIO_SIM_GET_INFO:
		memset(&info, 0, sizeof(info));
		info.ram_base = hvio_sim.ram_base;
		info.ram_size = hvio_sim.ram_size;
		info.bridge_size = sizeof(struct hvio_bridge);
		info.max_cpus = HVIO_BRIDGE_MAX_CPUS;
		info.finish_calls = atomic64_read(&hvio_sim.finish_calls);
		if (copy_to_user((void __user *)arg, &info, sizeof(info)))
			return -EFAULT;
		return 0;
	case HVIO_SIM_RAISE_IRQ:
		irq_work_queue(&hvio_sim.irq_work);
		return 0;
	case HVIO_SIM_SET_FINISH_FD:
		if (get_user(fd, (s32 __user *)arg))
			return -EFAULT;
		if (fd == -1) {
			hvio_sim_set_efd(NULL);
			return 0;
		}
		ctx = eventfd_ctx_fdget(fd);
		if (IS_ERR(ctx))
			return PTR_ERR(ctx);
		hvio_sim_set_efd(ctx);
		return 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations hvio_sim_fops = {
	.owner = THIS_MODULE,
	.open = hvio_sim_open,
	.release = hvio_sim_release,
	.mmap = hvio_sim_mmap,
	.unlocked_ioctl = hvio_sim_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice hvio_sim_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "hvio-sim",
	.fops = &hvio_sim_fops,
	.mode = 0600,
};

static int hvio_sim_parse_ram(void)
{
	char *p = sim_ram;
	u64 size, base;

	if (!sim_ram || !*sim_ram)
		return 0;
	size = memparse(p, &p);
	if (*p != '@')
		goto bad;
	base = memparse(p + 1, &p);
	if (*p && *p != '\n')
		goto bad;
	if (!size || !PAGE_ALIGNED(size) || !PAGE_ALIGNED(base) ||
	    base + size < base)
		goto bad;
	if (!hvio_sim_unused(base, size)) {
		pr_err(HVIO_NAME ": sim_ram %s overlaps root Linux's RAM; boot with memmap=/mem= to leave it out, or reserve it in the device tree (compatible \"hvio,sim-ram\")\n",
		       sim_ram);
		return -EINVAL;
	}
	hvio_sim.ram_base = base;
	hvio_sim.ram_size = size;
	return 0;
bad:
	pr_err(HVIO_NAME ": sim_ram=%s: expected SIZE@PHYS, page aligned\n",
	       sim_ram);
	return -EINVAL;
}

static int hvio_sim_init(struct hvio_bridge *bridge)
{
	int ret;

	ret = hvio_sim_parse_ram();
	if (ret)
		return ret;
	hvio_sim.bridge = bridge;
	spin_lock_init(&hvio_sim.efd_lock);
	atomic_set(&hvio_sim.open, 0);
	atomic64_set(&hvio_sim.finish_calls, 0);
	init_irq_work(&hvio_sim.irq_work, hvio_sim_irq);
	hvio_bridge_setup(bridge);
	if (sim_irq) {
		ret = hvio_bridge_request_irq(sim_irq, 0);
		if (ret)
			return ret;
	}
	ret = misc_register(&hvio_sim_misc);
	if (ret)
		goto err_free_irq;
	pr_info(HVIO_NAME ": sim provider, zone RAM %#llx+%#llx, root IRQ %u\n",
		hvio_sim.ram_base, hvio_sim.ram_size, sim_irq);
	return 0;

err_free_irq:
	if (sim_irq)
		hvio_bridge_free_irq(sim_irq);
	return ret;
}

static void hvio_sim_exit(void)
{
	misc_deregister(&hvio_sim_misc);
	irq_work_sync(&hvio_sim.irq_work);
	if (sim_irq)
		hvio_bridge_free_irq(sim_irq);
	hvio_sim_set_efd(NULL);
}

const struct hvio_hv_ops hvio_hv_sim_ops = {
	.name = "sim",
	.id = HVIO_PROVIDER_SIM,
	.init = hvio_sim_init,
	.exit = hvio_sim_exit,
	.finish_req = hvio_sim_finish_req,
	.region_ok = hvio_sim_region_ok,
};
