// SPDX-License-Identifier: GPL-2.0
/*
 * hvtool_stub: a selftest module that stands in for hvisor-tool's hvisor.ko
 * on the root IRQ line, and for the interrupt controller behind that line.
 *
 * At load it allocates a Linux IRQ (a software descriptor with a chip
 * that accepts every trigger type, simple flow handler), gives it the
 * trigger type "trigger" says (default rising edge: what of_irq_get()
 * sets up from hvisor's example device trees, <0x00 0x20 0x01>; 4 is
 * level high), and reports its number in parameter "irq"; hvio.ko
 * loaded with hypervisor=sim sim_irq=<irq> then requests that line and
 * raises it for HVIO_SIM_RAISE_IRQ, as hvisor raises the root IRQ.  Like
 * hvisor.ko at its load, the stub requests the line with IRQF_SHARED |
 * IRQF_TRIGGER_RISING under the name "hvisor_virtio_device"; "request"
 * (writable) takes or gives back that request at any time, so a test can
 * make the stub's request before or after hvio's.  Like hvisor.ko's
 * handler, the stub's returns IRQ_NONE unless "armed" (hvisor.ko: a
 * daemon gave it an eventfd) and counts its runs in "calls".
 *
 * Locking: stub_lock (a mutex) serialises request/free of the line; the
 * handler touches only the atomic counter.  The stub owns the IRQ
 * descriptor, so each request of the line (its own too) holds a reference
 * on the module: give the request back ("request" = 0) before rmmod.
 */
#include <linux/atomic.h>
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>

static DEFINE_MUTEX(stub_lock);
static int stub_irq;
static bool stub_requested;
static bool armed;
static atomic_long_t stub_calls = ATOMIC_LONG_INIT(0);
static bool request_at_load = true;
static char stub_cookie;

static unsigned int trigger = IRQ_TYPE_EDGE_RISING;
module_param(trigger, uint, 0444);
MODULE_PARM_DESC(trigger, "the line's trigger type, as a device tree sets it (1 rising edge, 4 level high)");

/* The interrupt controller: nothing to program, every type accepted. */
static void stub_chip_noop(struct irq_data *d)
{
}

static int stub_chip_set_type(struct irq_data *d, unsigned int type)
{
	return IRQ_SET_MASK_OK;
}

static struct irq_chip stub_chip = {
	.name = "hvtool_stub",
	.irq_mask = stub_chip_noop,
	.irq_unmask = stub_chip_noop,
	.irq_set_type = stub_chip_set_type,
};

static irqreturn_t stub_isr(int irq, void *data)
{
	atomic_long_inc(&stub_calls);
	return READ_ONCE(armed) ? IRQ_HANDLED : IRQ_NONE;
}

static int stub_set_request(bool want)
{
	int ret = 0;

	mutex_lock(&stub_lock);
	if (want && !stub_requested) {
		ret = request_irq(stub_irq, stub_isr,
				  IRQF_SHARED | IRQF_TRIGGER_RISING,
				  "hvisor_virtio_device", &stub_cookie);
		stub_requested = !ret;
	} else if (!want && stub_requested) {
		free_irq(stub_irq, &stub_cookie);
		stub_requested = false;
	}
	mutex_unlock(&stub_lock);
	return ret;
}

static int stub_request_set(const char *val, const struct kernel_param *kp)
{
	bool want;
	int ret = kstrtobool(val, &want);

	if (ret)
		return ret;
	if (!stub_irq)			/* during load: init decides */
		return param_set_bool(val, kp);
	return stub_set_request(want);
}

static int stub_request_get(char *buf, const struct kernel_param *kp)
{
	return sprintf(buf, "%d\n", READ_ONCE(stub_requested));
}

static const struct kernel_param_ops stub_request_ops = {
	.set = stub_request_set,
	.get = stub_request_get,
};
module_param_cb(request, &stub_request_ops, &request_at_load, 0644);
MODULE_PARM_DESC(request, "hold the line as hvisor.ko does (default 1 at load)");

static int stub_calls_get(char *buf, const struct kernel_param *kp)
{
	return sprintf(buf, "%ld\n", atomic_long_read(&stub_calls));
}

static int stub_calls_set(const char *val, const struct kernel_param *kp)
{
	return -EPERM;
}

static const struct kernel_param_ops stub_calls_ops = {
	.set = stub_calls_set,
	.get = stub_calls_get,
};
module_param_cb(calls, &stub_calls_ops, NULL, 0444);
MODULE_PARM_DESC(calls, "handler runs");

module_param_named(irq, stub_irq, int, 0444);
MODULE_PARM_DESC(irq, "the Linux IRQ number the stub allocated");
module_param(armed, bool, 0644);
MODULE_PARM_DESC(armed, "handler returns IRQ_HANDLED (hvisor.ko with its daemon running)");

static int __init stub_init(void)
{
	int irq, ret;

	irq = irq_alloc_desc(NUMA_NO_NODE);
	if (irq < 0)
		return irq;
	irq_set_chip_and_handler_name(irq, &stub_chip, handle_simple_irq,
				      "hvtool_stub");
	irq_modify_status(irq, IRQ_NOREQUEST | IRQ_NOAUTOEN, IRQ_NOPROBE);
	/*
	 * As irq_create_fwspec_mapping() does for a device-tree interrupt:
	 * program the type, then record it as the firmware's, which is what
	 * a later request with another trigger is checked against.
	 */
	ret = irq_set_irq_type(irq, trigger);
	if (ret)
		goto err_free_desc;
	irqd_set_trigger_type(irq_get_irq_data(irq), trigger);
	stub_irq = irq;
	if (request_at_load) {
		ret = stub_set_request(true);
		if (ret)
			goto err_free_desc;
	}
	pr_info("hvtool_stub: IRQ %d%s\n", irq,
		request_at_load ? ", requested as hvisor_virtio_device" : "");
	return 0;

err_free_desc:
	irq_free_desc(irq);
	return ret;
}

static void __exit stub_exit(void)
{
	stub_set_request(false);
	irq_free_desc(stub_irq);
}

module_init(stub_init);
module_exit(stub_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("hvio selftests: hvisor.ko's root IRQ request, on a software IRQ line");
