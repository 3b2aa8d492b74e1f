// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: module init/exit and the /dev/hvio control device.
 *
 * hvio.ko is a virtio-mmio backend for hvisor zones: it owns the bridge
 * page shared with the hypervisor, answers register accesses in the root
 * IRQ path and hands I/O to the hvio daemon.  See Documentation/.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "hvio_internal.h"

#define CREATE_TRACE_POINTS
#include "hvio_trace.h"

static char *hypervisor = "hvisor";
module_param(hypervisor, charp, 0444);
MODULE_PARM_DESC(hypervisor, "hvisor (default: real hypercalls) or sim (userspace stand-in through /dev/hvio-sim)");

struct hvio_ctx hvio = {
	.ctl_mutex = __MUTEX_INITIALIZER(hvio.ctl_mutex),
	.lock = __SPIN_LOCK_UNLOCKED(hvio.lock),
	.zones = LIST_HEAD_INIT(hvio.zones),
	.devs = LIST_HEAD_INIT(hvio.devs),
	.bridge_lock = __SPIN_LOCK_UNLOCKED(hvio.bridge_lock),
	.res_lock = __SPIN_LOCK_UNLOCKED(hvio.res_lock),
};

static int hvio_ctl_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return 0;
}

static long hvio_ctl_version(void __user *argp)
{
	struct hvio_version v = {
		.api_version = HVIO_API_VERSION,
		.provider = hvio.hv->id,
		.max_zones = HVIO_MAX_ZONES,
		.max_regions = HVIO_MAX_REGIONS,
		.max_devs = HVIO_MAX_DEVS,
		.max_queues = HVIO_MAX_QUEUES,
		.max_queue_size = HVIO_MAX_QUEUE_SIZE,
		.max_config_len = HVIO_MAX_CONFIG_LEN,
	};

	return copy_to_user(argp, &v, sizeof(v)) ? -EFAULT : 0;
}

static long hvio_ctl_zone_add(void __user *argp)
{
	struct hvio_zone_add *arg;
	long ret;

	arg = memdup_user(argp, sizeof(*arg));
	if (IS_ERR(arg))
		return PTR_ERR(arg);
	ret = hvio_zone_add(arg);
	kfree(arg);
	return ret;
}

static long hvio_ctl_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *argp = (void __user *)arg;
	struct hvio_dev_create create;
	struct hvio_dev_attach attach;
	struct hvio_zone_del del;
	struct hvio_stats st;

	switch (cmd) {
	case HVIO_GET_VERSION:
		return hvio_ctl_version(argp);
	case HVIO_ZONE_ADD:
		return hvio_ctl_zone_add(argp);
	case HVIO_ZONE_DEL:
		if (copy_from_user(&del, argp, sizeof(del)))
			return -EFAULT;
		if (del.reserved)
			return -EINVAL;
		return hvio_zone_del(del.zone_id);
	case HVIO_DEV_CREATE:
		if (copy_from_user(&create, argp, sizeof(create)))
			return -EFAULT;
		return hvio_dev_create(&create);
	case HVIO_DEV_ATTACH:
		if (copy_from_user(&attach, argp, sizeof(attach)))
			return -EFAULT;
		return hvio_dev_attach(&attach);
	case HVIO_GET_STATS:
		/* Counters are read without the locks that update them. */
		spin_lock_irq(&hvio.lock);
		st = hvio.stats;
		spin_unlock_irq(&hvio.lock);
		return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
	default:
		return -ENOTTY;
	}
}

static const struct file_operations hvio_ctl_fops = {
	.owner = THIS_MODULE,
	.open = hvio_ctl_open,
	.unlocked_ioctl = hvio_ctl_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice hvio_ctl_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "hvio",
	.fops = &hvio_ctl_fops,
	.mode = 0600,
};

static int __init hvio_init(void)
{
	struct hvio_bridge *bridge;
	int ret;

	if (!strcmp(hypervisor, "sim")) {
		hvio.hv = &hvio_hv_sim_ops;
	} else if (!strcmp(hypervisor, "hvisor")) {
		hvio.hv = &hvio_hv_hvisor_ops;
	} else {
		pr_err(HVIO_NAME ": hypervisor=%s: expected hvisor or sim\n",
		       hypervisor);
		return -EINVAL;
	}
	BUILD_BUG_ON(sizeof(struct hvio_bridge) > PAGE_SIZE);

	bridge = (struct hvio_bridge *)get_zeroed_page(GFP_KERNEL);
	if (!bridge)
		return -ENOMEM;
	hvio_bridge_init_work();

	ret = hvio.hv->init(bridge);
	if (ret)
		goto err_free_bridge;
	ret = misc_register(&hvio_ctl_misc);
	if (ret)
		goto err_hv_exit;
	return 0;

err_hv_exit:
	hvio_bridge_stop();
	hvio.hv->exit();
	hvio_bridge_quiesce();
	/* The hypervisor has the page now: see hvio_bridge_release(). */
	hvio_bridge_release(bridge);
	return ret;
err_free_bridge:
	/* init failed, so the hypervisor never got the page. */
	hvio.bridge = NULL;
	free_page((unsigned long)bridge);
	return ret;
}

static void __exit hvio_exit(void)
{
	misc_deregister(&hvio_ctl_misc);
	hvio_bridge_stop();
	hvio.hv->exit();
	hvio_bridge_quiesce();
	hvio_zone_free_all();
	hvio_bridge_release(hvio.bridge);
}

module_init(hvio_init);
module_exit(hvio_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("hvio: in-kernel virtio-mmio backend for hvisor zones");
