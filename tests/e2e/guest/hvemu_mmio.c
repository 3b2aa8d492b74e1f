// SPDX-License-Identifier: GPL-2.0
/*
 * hvemu_mmio: registers virtio-mmio platform devices in an x86_64 zone run
 * by hvemu.  Debian's virtio_mmio is built without
 * CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, and x86 has no device tree, so the
 * zone's init loads this module with the windows hvemu put on the command
 * line, in virtio_mmio.device= syntax:
 *
 *   insmod hvemu_mmio.ko device=0x200@0xd0000000:10,0x200@0xd0000200:11
 *
 * Each becomes a "virtio-mmio" platform device with one MEM and one IRQ
 * resource; the unmodified virtio_mmio driver then probes it.
 */
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/platform_device.h>

#define HVEMU_MMIO_MAX	8

static char *device[HVEMU_MMIO_MAX];
static int ndevice;
module_param_array(device, charp, &ndevice, 0444);
MODULE_PARM_DESC(device, "virtio-mmio windows SIZE@BASE:IRQ, comma separated");

static struct platform_device *hvemu_mmio_pdev[HVEMU_MMIO_MAX];

static int hvemu_mmio_parse(const char *s, u64 *base, u64 *size, u32 *irq)
{
	char *p;

	*size = memparse(s, &p);
	if (p == s || *p != '@')
		return -EINVAL;
	s = p + 1;
	*base = memparse(s, &p);
	if (p == s || *p != ':')
		return -EINVAL;
	return kstrtou32(p + 1, 0, irq);
}

static void hvemu_mmio_remove_all(void)
{
	int i;

	for (i = 0; i < HVEMU_MMIO_MAX; i++) {
		if (hvemu_mmio_pdev[i])
			platform_device_unregister(hvemu_mmio_pdev[i]);
		hvemu_mmio_pdev[i] = NULL;
	}
}

static int __init hvemu_mmio_init(void)
{
	struct resource res[2];
	struct platform_device *pdev;
	u64 base, size;
	u32 irq;
	int i, ret;

	for (i = 0; i < ndevice; i++) {
		ret = hvemu_mmio_parse(device[i], &base, &size, &irq);
		if (ret || !size) {
			pr_err("hvemu_mmio: device=%s: want SIZE@BASE:IRQ\n",
			       device[i]);
			ret = -EINVAL;
			goto fail;
		}
		memset(res, 0, sizeof(res));
		res[0].flags = IORESOURCE_MEM;
		res[0].start = base;
		res[0].end = base + size - 1;
		res[1].flags = IORESOURCE_IRQ;
		res[1].start = irq;
		res[1].end = irq;
		pdev = platform_device_register_resndata(NULL, "virtio-mmio", i,
							  res, ARRAY_SIZE(res),
							  NULL, 0);
		if (IS_ERR(pdev)) {
			ret = PTR_ERR(pdev);
			pr_err("hvemu_mmio: device=%s: %d\n", device[i], ret);
			goto fail;
		}
		hvemu_mmio_pdev[i] = pdev;
		pr_info("hvemu_mmio: virtio-mmio at %#llx+%#llx irq %u\n",
			base, size, irq);
	}
	return 0;
fail:
	hvemu_mmio_remove_all();
	return ret;
}

static void __exit hvemu_mmio_exit(void)
{
	hvemu_mmio_remove_all();
}

module_init(hvemu_mmio_init);
module_exit(hvemu_mmio_exit);
MODULE_DESCRIPTION("virtio-mmio devices of an hvemu zone (x86_64)");
MODULE_LICENSE("GPL");
