// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: the "hvisor" provider: real hypercalls and the real root IRQ.
 *
 * The bridge page goes to hvisor with HVISOR_HC_INIT_VIRTIO; hvisor raises
 * the root IRQ (from the /hvisor_virtio_device device-tree node, or on
 * x86_64 the number hypercall 86 returns) when need_wakeup is set, and
 * injects zone interrupts on HVISOR_HC_FINISH_REQ.
 *
 * Beside hvisor-tool's hvisor.ko: that driver requests the same root IRQ
 * at its load (IRQF_SHARED; on device-tree machines also
 * IRQF_TRIGGER_RISING), and only its HVISOR_INIT_VIRTIO ioctl (`hvisor
 * virtio start`) allocates a bridge page and hands it to hvisor.  Its
 * handler returns IRQ_NONE while no daemon gave it an eventfd.  So both
 * modules can be loaded (hvisor.ko first, or either order on a
 * rising-edge line: Documentation/architecture.md, "Providers"): hvio
 * serves virtio, hvisor.ko starts, stops and lists zones.  hvisor keeps only the last bridge it was given and tells nobody
 * when it is replaced; hvio cannot see hvisor.ko's page, so a `hvisor
 * virtio start` after hvio's load silently takes the bridge (hvio_bridge.c
 * then warns after a run of empty IRQs), and hvio loaded after it
 * silently takes it back.
 */
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/irq.h>
#include <linux/ioport.h>
#include <linux/mm.h>
#include <linux/of.h>
#include <linux/of_irq.h>
#include <linux/slab.h>

#include "hvio_hypercall.h"
#include "hvio_internal.h"

static int hvio_hvisor_irq = -1;

#ifdef CONFIG_X86_64
static int hvio_hvisor_get_irq(void)
{
	u32 *irq;
	u64 ret;
	int val;

	irq = kzalloc(sizeof(*irq), GFP_KERNEL);
	if (!irq)
		return -ENOMEM;
	ret = hvio_hvisor_call(HVISOR_HC_GET_VIRTIO_IRQ, virt_to_phys(irq), 0);
	val = ret ? -ENODEV : (int)*irq;
	kfree(irq);
	return val;
}

static unsigned long hvio_hvisor_irq_flags(int irq)
{
	return 0;
}
#else
static int hvio_hvisor_get_irq(void)
{
	struct device_node *node;
	int irq;

	node = of_find_node_by_path("/hvisor_virtio_device");
	if (!node) {
		pr_err(HVIO_NAME ": no /hvisor_virtio_device node in the device tree\n");
		return -ENODEV;
	}
	irq = of_irq_get(node, 0);
	of_node_put(node);
	return irq > 0 ? irq : -ENODEV;
}

/*
 * of_irq_get() already configured the trigger the device tree gives (the
 * third cell of interrupts = <...>); passing a trigger to request_irq()
 * would override it.  hvisor's example trees say edge rising, so that is
 * the default only when the tree gives none.
 */
static unsigned long hvio_hvisor_irq_flags(int irq)
{
	if (irq_get_trigger_type(irq) == IRQ_TYPE_NONE)
		return IRQF_TRIGGER_RISING;
	return 0;
}
#endif

static int hvio_hvisor_init(struct hvio_bridge *bridge)
{
	u64 hret;
	int ret;

	ret = hvio_hvisor_get_irq();
	if (ret < 0)
		return ret;
	hvio_hvisor_irq = ret;

	hvio_bridge_setup(bridge);
	ret = hvio_bridge_request_irq(hvio_hvisor_irq,
				      hvio_hvisor_irq_flags(hvio_hvisor_irq));
	if (ret)
		goto err_irq;

	hret = hvio_hvisor_call(HVISOR_HC_INIT_VIRTIO, virt_to_phys(bridge), 0);
	if (hret) {
		pr_err(HVIO_NAME ": HVISOR_HC_INIT_VIRTIO failed: %lld\n",
		       (s64)hret);
		ret = -EIO;
		goto err_free_irq;
	}
	pr_info(HVIO_NAME ": hvisor provider, root IRQ %d\n", hvio_hvisor_irq);
	return 0;

err_free_irq:
	hvio_bridge_free_irq(hvio_hvisor_irq);
err_irq:
	hvio_hvisor_irq = -1;
	return ret;
}

static void hvio_hvisor_exit(void)
{
	/*
	 * hvio_bridge_stop() cleared need_wakeup for good, so hvisor raises
	 * the IRQ no more; one already raised finds the bridge stopped.
	 */
	hvio_bridge_free_irq(hvio_hvisor_irq);
	hvio_hvisor_irq = -1;
}

static void hvio_hvisor_finish_req(void)
{
	hvio_hvisor_call(HVISOR_HC_FINISH_REQ, 0, 0);
}

/* Zone RAM is memory hvisor gave the zone: never root Linux's own RAM. */
static bool hvio_hvisor_region_ok(u64 phys, u64 size)
{
	return region_intersects(phys, size, IORESOURCE_SYSTEM_RAM,
				 IORES_DESC_NONE) == REGION_DISJOINT;
}

const struct hvio_hv_ops hvio_hv_hvisor_ops = {
	.name = "hvisor",
	.id = HVIO_PROVIDER_HVISOR,
	.init = hvio_hvisor_init,
	.exit = hvio_hvisor_exit,
	.finish_req = hvio_hvisor_finish_req,
	.region_ok = hvio_hvisor_region_ok,
};
