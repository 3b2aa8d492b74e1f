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
 */
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/overflow.h>
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

/**
 * hvio_zone_del() - unregister a zone without devices (HVIO_ZONE_DEL)
 * @zone_id: zone to remove
 *
 * Return: 0, -ENOENT or -EBUSY.
 */
int hvio_zone_del(u32 zone_id)
{
	struct hvio_zone *zone;
	int ret = 0;

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
	spin_lock_irq(&hvio.lock);
	list_del(&zone->node);
	hvio.nr_zones--;
	hvio.stats.zones = hvio.nr_zones;
	spin_unlock_irq(&hvio.lock);
	hvio_zone_unmap_all(zone);
	kfree(zone);
out:
	mutex_unlock(&hvio.ctl_mutex);
	return ret;
}

/* Index of the region holding all of [gpa, gpa + len), or -1. */
static int hvio_zone_region(const struct hvio_zone *zone, u64 gpa, u64 len)
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
		hvio_zone_unmap_all(z);
		kfree(z);
	}
	hvio.nr_zones = 0;
}
