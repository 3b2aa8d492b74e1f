// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: zones and their RAM.
 *
 * A zone's RAM is a list of regions mapping guest physical (zonex_ipa) to
 * host physical (zone0_ipa) addresses.  Everything the module or the daemon
 * later touches on a guest's behalf is translated through this list, so
 * registration is strict: page alignment, no wrap-around, no overlap inside
 * the zone or with another zone, and the provider must agree the host range
 * is RAM root Linux does not use.
 *
 * The daemon gets a write-back mapping of every region through its device
 * fd, so registering a range is as strong as mmap() of /dev/mem.  Beyond
 * the provider's rule ("not root Linux's System RAM"), a range is refused
 * when the kernel is locked down (LOCKDOWN_DEV_MEM, as /dev/mem is), and
 * when anything says it is a device rather than memory: a busy
 * IORESOURCE_MEM resource (a driver or the platform claimed it: HPET,
 * IOAPIC, ACPI tables and NVS, pmem namespaces, a bound BAR ...), a PCI
 * device's BAR or bridge window, claimed or not, or the reg of a
 * device-tree node other than /memory and /reserved-memory's children
 * (interrupt controllers map theirs without claiming it).  What is left is
 * memory nobody describes as a device; Documentation/abi.md lists the
 * rules per provider.
 */
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/of.h>
#include <linux/of_address.h>
#include <linux/overflow.h>
#include <linux/pci.h>
#include <linux/security.h>
#include <linux/slab.h>

#include "hvio_internal.h"

static bool hvio_range_overlap(u64 a, u64 alen, u64 b, u64 blen)
{
	return a < b + blen && b < a + alen;
}

static void hvio_zone_unmap_all(struct hvio_zone *zone)
{
	u32 i;

	for (i = 0; i < zone->nr_regions; i++) {
		if (zone->va[i])
			memunmap(zone->va[i]);
		zone->va[i] = NULL;
	}
}

/*
 * The module reads rings and writes used entries and status bytes in zone
 * RAM, so every region gets a cacheable kernel mapping for the zone's life.
 */
static int hvio_zone_map_all(struct hvio_zone *zone)
{
	const struct hvio_mem_region *r;
	u32 i;

	for (i = 0; i < zone->nr_regions; i++) {
		r = &zone->regions[i];
		zone->va[i] = memremap(r->zone0_ipa, r->size, MEMREMAP_WB);
		if (!zone->va[i]) {
			hvio_zone_unmap_all(zone);
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * walk_iomem_res_desc() callback for busy memory resources.  System RAM
 * and the resources nested in it carry IORESOURCE_SYSRAM: whether RAM may
 * be zone RAM is the provider's call (the sim accepts its device-tree
 * reserved window, which root Linux lists as System RAM).  Anything else
 * busy was claimed by a driver or the platform.
 */
static int hvio_zone_busy_cb(struct resource *res, void *arg)
{
	if (res->flags & IORESOURCE_SYSRAM)
		return 0;
	*(u64 *)arg = res->start;
	return 1;
}

/*
 * Callback for every memory resource (busy ones were refused already).
 * Outermost resources match first and their children are skipped with
 * them.  Root Linux's RAM is the provider's call, x86's "Reserved" (e820
 * type 2, where memmap=SIZE$PHYS puts a hidden window) is memory.
 * Anything else, e.g. the HPET (its resource is not busy), a PCI host
 * bridge window, pmem, ACPI tables or NVS, is refused; arm64 lists no-map
 * /reserved-memory as a plain "reserved" resource, which the caller lets
 * through for a range inside such a node.
 */
static int hvio_zone_mem_cb(struct resource *res, void *arg)
{
	if ((res->flags & IORESOURCE_SYSRAM) ||
	    res->desc == IORES_DESC_RESERVED)
		return 0;
	*(u64 *)arg = res->start;
	return 1;
}

/* Is any PCI BAR or bridge window (memory space) inside the range? */
static bool hvio_zone_pci_bar(u64 phys, u64 size, u64 *where)
{
	struct pci_dev *pdev = NULL;
	struct resource *r;
	int i;

	for_each_pci_dev(pdev) {
		for (i = 0; i < PCI_NUM_RESOURCES; i++) {
			r = &pdev->resource[i];
			if (resource_type(r) != IORESOURCE_MEM ||
			    (r->flags & IORESOURCE_UNSET) || !resource_size(r))
				continue;
			if (hvio_range_overlap(phys, size, r->start,
					       resource_size(r))) {
				*where = r->start;
				pci_dev_put(pdev);
				return true;
			}
		}
	}
	return false;
}

/*
 * Does a device-tree node other than memory describe registers inside the
 * range?  /memory nodes and the children of /reserved-memory are RAM (the
 * latter is where hvisor boards and the sim's "hvio,sim-ram" put zone RAM).
 */
#ifdef CONFIG_OF
static bool hvio_zone_dt_device(u64 phys, u64 size, u64 *where)
{
	struct device_node *np, *rsv;
	struct resource r;
	bool hit = false;
	int i;

	rsv = of_find_node_by_path("/reserved-memory");
	for (np = of_find_all_nodes(NULL); np; np = of_find_all_nodes(np)) {
		if (of_node_is_type(np, "memory") || np == rsv ||
		    (rsv && np->parent == rsv))
			continue;
		for (i = 0; !of_address_to_resource(np, i, &r); i++) {
			if (hvio_range_overlap(phys, size, r.start,
					       resource_size(&r))) {
				*where = r.start;
				hit = true;
				break;
			}
		}
		if (hit) {
			of_node_put(np);
			break;
		}
	}
	of_node_put(rsv);
	return hit;
}

/* Is the range inside one child of /reserved-memory? */
static bool hvio_zone_dt_reserved(u64 phys, u64 size)
{
	struct device_node *rsv, *np;
	struct resource r;
	bool in = false;

	rsv = of_find_node_by_path("/reserved-memory");
	if (!rsv)
		return false;
	for_each_available_child_of_node(rsv, np) {
		if (of_address_to_resource(np, 0, &r))
			continue;
		if (phys >= r.start && phys - r.start <= resource_size(&r) &&
		    size <= resource_size(&r) - (phys - r.start)) {
			in = true;
			of_node_put(np);
			break;
		}
	}
	of_node_put(rsv);
	return in;
}
#else
static bool hvio_zone_dt_device(u64 phys, u64 size, u64 *where)
{
	return false;
}

static bool hvio_zone_dt_reserved(u64 phys, u64 size)
{
	return false;
}
#endif

/*
 * The rules every provider shares (see the comment at the top).  Returns
 * 0 or -EPERM, with the reason in the log.
 */
static int hvio_zone_phys_policy(u32 zone_id, u64 phys, u64 size)
{
	const char *why = NULL;
	u64 where = phys;

	if (security_locked_down(LOCKDOWN_DEV_MEM))
		why = "kernel lockdown forbids raw physical memory access";
	else if (walk_iomem_res_desc(IORES_DESC_NONE,
				     IORESOURCE_MEM | IORESOURCE_BUSY, phys,
				     phys + size - 1, &where,
				     hvio_zone_busy_cb) > 0)
		why = "a busy device or firmware resource (/proc/iomem)";
	else if (!hvio_zone_dt_reserved(phys, size) &&
		 walk_iomem_res_desc(IORES_DESC_NONE, IORESOURCE_MEM, phys,
				     phys + size - 1, &where,
				     hvio_zone_mem_cb) > 0)
		why = "a device, bus or firmware resource (/proc/iomem)";
	else if (hvio_zone_pci_bar(phys, size, &where))
		why = "a PCI BAR";
	else if (hvio_zone_dt_device(phys, size, &where))
		why = "a device-tree device";
	if (!why)
		return 0;
	pr_warn_ratelimited(HVIO_NAME ": zone %u: %#llx+%#llx refused: %s at %#llx\n",
			    zone_id, phys, size, why, where);
	return -EPERM;
}

static int hvio_region_check(const struct hvio_mem_region *r)
{
	u64 end;

	if (r->reserved)
		return -EINVAL;
	if (!r->size || !PAGE_ALIGNED(r->size) ||
	    !PAGE_ALIGNED(r->zone0_ipa) || !PAGE_ALIGNED(r->zonex_ipa))
		return -EINVAL;
	if (check_add_overflow(r->zone0_ipa, r->size, &end))
		return -EINVAL;
	if (check_add_overflow(r->zonex_ipa, r->size, &end) ||
	    end > HVIO_IPA_LIMIT)
		return -EINVAL;
	return 0;
}

/**
 * hvio_zone_find() - look a zone up by id
 * @zone_id: hvisor zone id
 *
 * Caller holds hvio.ctl_mutex or hvio.lock.
 *
 * Return: the zone or NULL.
 */
struct hvio_zone *hvio_zone_find(u32 zone_id)
{
	struct hvio_zone *z;

	list_for_each_entry(z, &hvio.zones, node)
		if (z->id == zone_id)
			return z;
	return NULL;
}

/* Does any registered zone use host range [phys, phys + size)? */
static bool hvio_zone_phys_busy(u64 phys, u64 size)
{
	struct hvio_zone *z;
	u32 i;

	list_for_each_entry(z, &hvio.zones, node)
		for (i = 0; i < z->nr_regions; i++)
			if (hvio_range_overlap(phys, size,
					       z->regions[i].zone0_ipa,
					       z->regions[i].size))
				return true;
	return false;
}

/**
 * hvio_zone_add() - register a zone and its RAM (HVIO_ZONE_ADD)
 * @arg: validated here
 *
 * Return: 0 for a new zone, 1 for an identical existing one and
 * HVIO_ZONE_F_REUSE, or a negative errno as in Documentation/abi.md.
 */
int hvio_zone_add(const struct hvio_zone_add *arg)
{
	const struct hvio_mem_region *r, *o;
	struct hvio_zone *zone, *old;
	u32 i, j;
	int ret;

	if ((arg->flags & ~HVIO_ZONE_F_REUSE) || arg->reserved0 ||
	    arg->reserved)
		return -EINVAL;
	if (!arg->zone_id || arg->zone_id > HVIO_MAX_ZONE_ID)
		return -EINVAL;
	if (!arg->nr_regions || arg->nr_regions > HVIO_MAX_REGIONS)
		return -EINVAL;
	for (i = 0; i < arg->nr_regions; i++) {
		r = &arg->regions[i];
		ret = hvio_region_check(r);
		if (ret)
			return ret;
		for (j = 0; j < i; j++) {
			o = &arg->regions[j];
			if (hvio_range_overlap(r->zone0_ipa, r->size,
					       o->zone0_ipa, o->size) ||
			    hvio_range_overlap(r->zonex_ipa, r->size,
					       o->zonex_ipa, o->size))
				return -EINVAL;
		}
	}
	/* Unused entries must be zero as well: they may gain meaning. */
	for (; i < HVIO_MAX_REGIONS; i++)
		if (memchr_inv(&arg->regions[i], 0, sizeof(arg->regions[i])))
			return -EINVAL;

	zone = kzalloc(sizeof(*zone), GFP_KERNEL);
	if (!zone)
		return -ENOMEM;
	zone->id = arg->zone_id;
	zone->nr_regions = arg->nr_regions;
	memcpy(zone->regions, arg->regions,
	       arg->nr_regions * sizeof(arg->regions[0]));

	mutex_lock(&hvio.ctl_mutex);
	old = hvio_zone_find(arg->zone_id);
	if (old) {
		ret = -EEXIST;
		/* A restarted daemon finds its zone as it left it. */
		if ((arg->flags & HVIO_ZONE_F_REUSE) &&
		    old->nr_regions == zone->nr_regions &&
		    !memcmp(old->regions, zone->regions,
			    zone->nr_regions * sizeof(zone->regions[0])))
			ret = 1;
		goto err_unlock;
	}
	if (hvio.nr_zones >= HVIO_MAX_ZONES) {
		ret = -ENOSPC;
		goto err_unlock;
	}
	for (i = 0; i < zone->nr_regions; i++) {
		r = &zone->regions[i];
		if (hvio_zone_phys_busy(r->zone0_ipa, r->size)) {
			ret = -EBUSY;
			goto err_unlock;
		}
		ret = hvio_zone_phys_policy(zone->id, r->zone0_ipa, r->size);
		if (ret)
			goto err_unlock;
		if (!hvio.hv->region_ok(r->zone0_ipa, r->size)) {
			pr_warn_ratelimited(HVIO_NAME ": zone %u: %#llx+%#llx is not RAM the %s provider allows\n",
					    zone->id, r->zone0_ipa, r->size,
					    hvio.hv->name);
			ret = -EPERM;
			goto err_unlock;
		}
	}
	ret = hvio_zone_map_all(zone);
	if (ret)
		goto err_unlock;
	for (i = 0; i < zone->nr_regions; i++)
		hvio_pages_setup(zone, i);
	spin_lock_irq(&hvio.lock);
	list_add_tail(&zone->node, &hvio.zones);
	hvio.nr_zones++;
	hvio.stats.zones = hvio.nr_zones;
	spin_unlock_irq(&hvio.lock);
	mutex_unlock(&hvio.ctl_mutex);
	return 0;

err_unlock:
	mutex_unlock(&hvio.ctl_mutex);
	kfree(zone);
	return ret;
}

/*
 * How long HVIO_ZONE_DEL waits for I/O of a daemon that died to unpin the
 * zone's struct pages (the device fds are gone, the bios are not), before
 * it gives up with -EBUSY.  A disk completes in milliseconds; this covers
 * a slow one without letting a hung one block the caller for long.
 */
#define HVIO_ZONE_DEL_PIN_WAIT_MS	5000

/**
 * hvio_zone_del() - unregister a zone without devices (HVIO_ZONE_DEL)
 * @zone_id: zone to remove
 *
 * Sleeps (up to HVIO_ZONE_DEL_PIN_WAIT_MS while pages are pinned, without
 * hvio.ctl_mutex).
 *
 * Return: 0, -ENOENT or -EBUSY.
 */
int hvio_zone_del(u32 zone_id)
{
	unsigned long deadline = jiffies +
				 msecs_to_jiffies(HVIO_ZONE_DEL_PIN_WAIT_MS);
	struct hvio_zone *zone;
	int ret = 0;

again:
	mutex_lock(&hvio.ctl_mutex);
	zone = hvio_zone_find(zone_id);
	if (!zone) {
		ret = -ENOENT;
		goto out;
	}
	if (zone->nr_devs) {
		ret = -EBUSY;
		goto out;
	}
	/* O_DIRECT of a daemon that died may still be in flight. */
	ret = hvio_pages_busy(zone);
	if (ret) {
		mutex_unlock(&hvio.ctl_mutex);
		if (time_after(jiffies, deadline) ||
		    msleep_interruptible(20))
			return ret;
		goto again;
	}
	spin_lock_irq(&hvio.lock);
	list_del(&zone->node);
	hvio.nr_zones--;
	hvio.stats.zones = hvio.nr_zones;
	spin_unlock_irq(&hvio.lock);
	hvio_pages_teardown(zone, false);
	hvio_zone_unmap_all(zone);
	kfree(zone);
out:
	mutex_unlock(&hvio.ctl_mutex);
	return ret;
}

/**
 * hvio_zone_region() - which region holds a guest range?
 * @zone: the zone
 * @gpa: guest physical start
 * @len: length in bytes (> 0)
 *
 * Return: the index of the region holding all of [@gpa, @gpa + @len), or
 * -1.
 */
int hvio_zone_region(const struct hvio_zone *zone, u64 gpa, u64 len)
{
	const struct hvio_mem_region *r;
	u64 end;
	u32 i;

	if (!len || check_add_overflow(gpa, len, &end))
		return -1;
	for (i = 0; i < zone->nr_regions; i++) {
		r = &zone->regions[i];
		if (gpa >= r->zonex_ipa && end <= r->zonex_ipa + r->size)
			return i;
	}
	return -1;
}

/**
 * hvio_zone_gpa_to_phys() - translate a guest range inside one region
 * @zone: the zone
 * @gpa: guest physical start
 * @len: length in bytes (> 0)
 * @phys: host physical start, on success
 *
 * Return: true when [@gpa, @gpa + @len) lies entirely in one region.
 */
bool hvio_zone_gpa_to_phys(const struct hvio_zone *zone, u64 gpa, u64 len,
			   u64 *phys)
{
	int i = hvio_zone_region(zone, gpa, len);

	if (i < 0)
		return false;
	*phys = zone->regions[i].zone0_ipa + (gpa - zone->regions[i].zonex_ipa);
	return true;
}

/**
 * hvio_zone_map() - kernel pointer to a guest range inside one region
 * @zone: the zone
 * @gpa: guest physical start
 * @len: length in bytes (> 0)
 *
 * Any context.  The mapping lives as long as the zone, which outlives its
 * devices.
 *
 * Return: the pointer, or NULL when the range is not entirely inside one
 * registered region.
 */
void *hvio_zone_map(const struct hvio_zone *zone, u64 gpa, u64 len)
{
	int i = hvio_zone_region(zone, gpa, len);

	if (i < 0)
		return NULL;
	return (u8 *)zone->va[i] + (gpa - zone->regions[i].zonex_ipa);
}

/**
 * hvio_zone_ram_ok() - is a guest range entirely inside one RAM region?
 * @zone: the zone
 * @gpa: guest physical start
 * @len: length in bytes
 *
 * Return: true if so.
 */
bool hvio_zone_ram_ok(const struct hvio_zone *zone, u64 gpa, u64 len)
{
	return hvio_zone_region(zone, gpa, len) >= 0;
}

/**
 * hvio_zone_free_all() - module exit: drop every zone (no devices remain)
 */
void hvio_zone_free_all(void)
{
	struct hvio_zone *z, *tmp;

	list_for_each_entry_safe(z, tmp, &hvio.zones, node) {
		WARN_ON_ONCE(z->nr_devs);
		list_del(&z->node);
		hvio_pages_teardown(z, true);
		hvio_zone_unmap_all(z);
		kfree(z);
	}
	hvio.nr_zones = 0;
}
