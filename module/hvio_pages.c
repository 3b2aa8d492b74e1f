// SPDX-License-Identifier: GPL-2.0
/*
 * hvio: zone RAM as the daemon maps it, so that O_DIRECT works on it.
 *
 * The daemon's backing I/O points into its mapping of zone RAM.  Buffered
 * I/O copies through that mapping and works on anything; O_DIRECT (and
 * every other path that pins user pages with get_user_pages) needs a
 * struct page behind each PTE, which a remap_pfn_range() mapping
 * (VM_IO | VM_PFNMAP) never has.  So each region gets one of three modes
 * at HVIO_ZONE_ADD, reported to userspace in hvio_dev_info.ram_mode[]:
 *
 *  PAGES   every pfn already has a struct page that root Linux set aside
 *          (PageReserved: the arm64 sim's /reserved-memory window without
 *          no-map, a memmap hole inside a present section).  Mapped page by
 *          page from the fault handler with vmf_insert_page(); a normal,
 *          refcounted PTE that GUP follows like any file page.
 *  DEVMAP  no pfn has a struct page (hvisor zone RAM outside root Linux's
 *          memory, the x86 sim's memmap= window) and the kernel has
 *          ZONE_DEVICE: memremap_pages() with MEMORY_DEVICE_GENERIC gives
 *          the range struct pages, as device-dax does, and the fault
 *          handler inserts devmap PFNs, which GUP pins through the
 *          pagemap.  Freed by memunmap_pages() at zone delete.
 *  PFNMAP  neither (Debian's arm64 6.1 has no ZONE_DEVICE; a range that
 *          is not aligned to a memory subsection; memremap_pages failed):
 *          remap_pfn_range() as before; the daemon uses buffered I/O.
 *
 * Faults map one page at a time: zones have gigabytes of RAM and the
 * daemon touches what the guest uses for I/O.
 *
 * Lifetime: a mapping holds the device file, the device holds the zone
 * (zone->nr_devs), and zone delete is refused while devices exist, so no
 * PTE into a region outlives its zone.  What can outlive every mapping is
 * a pin: O_DIRECT in flight when the daemon dies keeps its pages until
 * the I/O ends.  A device release waits (bounded) for those pins before
 * it lets the guest reuse its buffers, zone delete waits and then refuses
 * (-EBUSY) while a page is still pinned, and module exit waits for them
 * before it frees DEVMAP struct pages.  PAGES regions free nothing.
 */
#include <linux/delay.h>
#include <linux/ioport.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/pfn_t.h>
#include <linux/slab.h>

#include "hvio_compat.h"
#include "hvio_internal.h"

static bool ram_pages = true;
module_param(ram_pages, bool, 0644);
MODULE_PARM_DESC(ram_pages,
		 "give zone RAM struct pages so O_DIRECT works on it (0: raw PFN maps, for tests)");

/*
 * How long module exit waits for O_DIRECT pins on DEVMAP pages to drop
 * before it leaks the pagemap instead of freeing struct pages in use.
 */
#define HVIO_PAGES_EXIT_WAIT_MS	10000

/* How long a device release waits for the zone's pins (see quiesce). */
#define HVIO_PAGES_QUIESCE_MS	5000

static const char *const hvio_ram_mode_name[] = {
	[HVIO_RAM_UNKNOWN] = "unknown",
	[HVIO_RAM_PFNMAP] = "pfnmap",
	[HVIO_RAM_PAGES] = "pages",
	[HVIO_RAM_DEVMAP] = "devmap",
};

/*
 * PAGES applies when every pfn has a struct page that root Linux keeps for
 * itself (reserved) and nobody else manages.  The provider already refused
 * root Linux's own RAM; a page that is not reserved would be allocator
 * memory, never ours to hand out.
 */
static bool hvio_pages_all_reserved(u64 phys, u64 size)
{
	unsigned long pfn, end = PHYS_PFN(phys + size);
	struct page *page;

	for (pfn = PHYS_PFN(phys); pfn < end; pfn++) {
		if (!pfn_valid(pfn))
			return false;
		page = pfn_to_page(pfn);
		if (!PageReserved(page) || is_zone_device_page(page))
			return false;
		if (!(pfn & 0xffff))
			cond_resched();
	}
	return true;
}

static bool hvio_pages_none_valid(u64 phys, u64 size)
{
	unsigned long pfn, end = PHYS_PFN(phys + size);

	for (pfn = PHYS_PFN(phys); pfn < end; pfn++) {
		if (pfn_valid(pfn))
			return false;
		if (!(pfn & 0xffff))
			cond_resched();
	}
	return true;
}

#ifdef CONFIG_ZONE_DEVICE
/*
 * Memory hotplug adds whole subsections (whole sections without
 * SPARSEMEM_VMEMMAP) and WARNs on anything else: check first.
 */
static u64 hvio_pages_hotplug_align(void)
{
#ifdef CONFIG_SPARSEMEM_VMEMMAP
	return SUBSECTION_SIZE;
#else
	return PAGES_PER_SECTION << PAGE_SHIFT;
#endif
}

/*
 * memremap_pages() WARNs on a range that is System RAM or shares a pfn
 * with another pagemap; those are refused here, quietly, with a reason.
 */
static struct dev_pagemap *hvio_pages_devmap(u32 zone_id, u64 phys, u64 size,
					     const char **why)
{
	struct dev_pagemap *pgmap, *other;
	u64 align = hvio_pages_hotplug_align();
	void *addr;

	if (!IS_ALIGNED(phys, align) || !IS_ALIGNED(size, align)) {
		*why = "not aligned to a memory hotplug subsection";
		return NULL;
	}
	if (region_intersects(phys, size, IORESOURCE_SYSTEM_RAM,
			      IORES_DESC_NONE) != REGION_DISJOINT) {
		*why = "overlaps System RAM";
		return NULL;
	}
	other = get_dev_pagemap(PHYS_PFN(phys), NULL);
	if (!other)
		other = get_dev_pagemap(PHYS_PFN(phys + size - 1), NULL);
	if (other) {
		put_dev_pagemap(other);
		*why = "another ZONE_DEVICE map covers it";
		return NULL;
	}
	pgmap = kzalloc(sizeof(*pgmap), GFP_KERNEL);
	if (!pgmap) {
		*why = "out of memory";
		return NULL;
	}
	pgmap->type = MEMORY_DEVICE_GENERIC;
	pgmap->range.start = phys;
	pgmap->range.end = phys + size - 1;
	pgmap->nr_range = 1;
	addr = memremap_pages(pgmap, NUMA_NO_NODE);
	if (IS_ERR(addr)) {
		pr_info(HVIO_NAME ": zone %u: %#llx+%#llx: memremap_pages: %pe\n",
			zone_id, phys, size, addr);
		kfree(pgmap);
		*why = "memremap_pages failed";
		return NULL;
	}
	return pgmap;
}
#else
static struct dev_pagemap *hvio_pages_devmap(u32 zone_id, u64 phys, u64 size,
					     const char **why)
{
	*why = "this kernel has no ZONE_DEVICE";
	return NULL;
}
#endif

/**
 * hvio_pages_setup() - choose how region @i of a new zone is mapped
 * @zone: the zone, not yet on hvio.zones
 * @i: region index
 *
 * Caller holds hvio.ctl_mutex; sleeps.  Always succeeds: the worst mode
 * is PFNMAP, which is what every kernel can do.
 */
void hvio_pages_setup(struct hvio_zone *zone, u32 i)
{
	const struct hvio_mem_region *r = &zone->regions[i];
	const char *why = "disabled (ram_pages=0)";

	zone->pgmap[i] = NULL;
	zone->ram_mode[i] = HVIO_RAM_PFNMAP;
	if (ram_pages) {
		if (hvio_pages_all_reserved(r->zone0_ipa, r->size)) {
			zone->ram_mode[i] = HVIO_RAM_PAGES;
		} else if (!hvio_pages_none_valid(r->zone0_ipa, r->size)) {
			why = "some of its pages belong to root Linux";
		} else {
			zone->pgmap[i] = hvio_pages_devmap(zone->id,
							   r->zone0_ipa,
							   r->size, &why);
			if (zone->pgmap[i])
				zone->ram_mode[i] = HVIO_RAM_DEVMAP;
		}
	}
	if (zone->ram_mode[i] == HVIO_RAM_PFNMAP)
		pr_info(HVIO_NAME ": zone %u: RAM %#llx+%#llx mapped as raw PFNs, no O_DIRECT: %s\n",
			zone->id, r->zone0_ipa, r->size, why);
	else
		pr_debug(HVIO_NAME ": zone %u: RAM %#llx+%#llx mapped as %s\n",
			 zone->id, r->zone0_ipa, r->size,
			 hvio_ram_mode_name[zone->ram_mode[i]]);
}

/*
 * Does a reference other than a mapping (a pin: O_DIRECT in flight) hold
 * a page of region i?  A MEMORY_DEVICE_GENERIC page rests at refcount 1
 * (devmap PTEs take no reference); a reserved page at 1 plus one per PTE
 * (vmf_insert_page takes one with the mapcount).  A fault or an unmap in
 * progress can look like a pin for a moment; callers poll.
 */
static bool hvio_pages_pinned(const struct hvio_zone *zone, u32 i)
{
	unsigned long pfn = PHYS_PFN(zone->regions[i].zone0_ipa);
	unsigned long end = pfn + PHYS_PFN(zone->regions[i].size);
	bool mapped = zone->ram_mode[i] == HVIO_RAM_PAGES;
	struct page *page;

	if (zone->ram_mode[i] != HVIO_RAM_PAGES &&
	    zone->ram_mode[i] != HVIO_RAM_DEVMAP)
		return false;
	for (; pfn < end; pfn++) {
		page = pfn_to_page(pfn);
		if (page_ref_count(page) !=
		    1 + (mapped ? hvio_page_mapcount(page) : 0))
			return true;
		if (!(pfn & 0xffff))
			cond_resched();
	}
	return false;
}

/**
 * hvio_pages_busy() - does I/O still pin the zone's RAM?
 * @zone: the zone
 *
 * Caller keeps the zone alive (hvio.ctl_mutex, or a device of it).
 *
 * Return: 0, or -EBUSY while I/O that pinned a page is in flight.
 */
int hvio_pages_busy(const struct hvio_zone *zone)
{
	u32 i;

	for (i = 0; i < zone->nr_regions; i++)
		if (hvio_pages_pinned(zone, i))
			return -EBUSY;
	return 0;
}

/**
 * hvio_pages_quiesce() - let O_DIRECT of a gone daemon land first
 * @dev: the device whose file is being released
 *
 * The file goes when the daemon's last mapping and descriptor do, but
 * O_DIRECT it issued keeps running until the disk completes it, and a
 * read still writes zone RAM then.  The release answers a held reset and
 * requeues the daemon's ops, after which the guest may reuse that memory:
 * so first wait, bounded, for the zone's pins to drop.  A slow disk
 * delays the release; a hung one is logged and not waited for.  Pins of
 * a live daemon serving other devices of the zone wait too, at most as
 * long.
 *
 * Sleeps; no locks held.
 */
void hvio_pages_quiesce(struct hvio_dev *dev)
{
	unsigned int ms = 0;

	while (hvio_pages_busy(dev->zone)) {
		if (ms >= HVIO_PAGES_QUIESCE_MS) {
			pr_warn_ratelimited(HVIO_NAME ": zone %u dev %#llx: I/O of a gone daemon still pins zone RAM after %u ms\n",
					    dev->zone->id, dev->mmio_base, ms);
			return;
		}
		msleep(20);
		ms += 20;
	}
}

/**
 * hvio_pages_teardown() - free what hvio_pages_setup() made
 * @zone: a zone without devices, off hvio.zones (or being set up)
 * @wait: module exit: wait for pins to drop (hvio_pages_busy() was not
 *        asked); a map still pinned after that is leaked, not freed
 *
 * Sleeps.
 */
void hvio_pages_teardown(struct hvio_zone *zone, bool wait)
{
	unsigned int ms = 0;
	u32 i;

	for (i = 0; i < zone->nr_regions; i++) {
		if (!zone->pgmap[i])
			continue;
		while (wait && hvio_pages_pinned(zone, i) &&
		       ms < HVIO_PAGES_EXIT_WAIT_MS) {
			msleep(20);
			ms += 20;
		}
#ifdef CONFIG_ZONE_DEVICE
		if (wait && hvio_pages_pinned(zone, i)) {
			pr_err(HVIO_NAME ": zone %u: RAM %#llx still pinned by I/O: its struct pages are leaked\n",
			       zone->id, zone->regions[i].zone0_ipa);
		} else {
			memunmap_pages(zone->pgmap[i]);
			kfree(zone->pgmap[i]);
		}
#endif
		zone->pgmap[i] = NULL;
	}
}

static vm_fault_t hvio_pages_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct hvio_dev *dev = vma->vm_file->private_data;
	const struct hvio_zone *zone = dev->zone;
	u64 gpa = (u64)vmf->pgoff << PAGE_SHIFT;
	u64 phys;
	int i;

	/* The zone's regions are fixed while it has devices. */
	i = hvio_zone_region(zone, gpa, PAGE_SIZE);
	if (i < 0)
		return VM_FAULT_SIGBUS;
	phys = zone->regions[i].zone0_ipa + (gpa - zone->regions[i].zonex_ipa);
	switch (zone->ram_mode[i]) {
	case HVIO_RAM_PAGES:
		return vmf_insert_page(vma, vmf->address,
				       pfn_to_page(PHYS_PFN(phys)));
	case HVIO_RAM_DEVMAP:
		return vmf_insert_mixed(vma, vmf->address,
					phys_to_pfn_t(phys, PFN_DEV | PFN_MAP));
	default:
		return VM_FAULT_SIGBUS;
	}
}

static const struct vm_operations_struct hvio_pages_vm_ops = {
	.fault = hvio_pages_fault,
};

/**
 * hvio_pages_mmap() - map zone RAM into the daemon
 * @dev: the device whose fd is mapped
 * @vma: the mapping, VM_SHARED, entirely inside one region
 * @gpa: guest physical address of the start of @vma
 * @phys: host physical address of the start of @vma
 *
 * Return: 0 or a negative errno from remap_pfn_range().
 */
int hvio_pages_mmap(struct hvio_dev *dev, struct vm_area_struct *vma, u64 gpa,
		    u64 phys)
{
	int i = hvio_zone_region(dev->zone, gpa, vma->vm_end - vma->vm_start);

	if (i >= 0 && (dev->zone->ram_mode[i] == HVIO_RAM_PAGES ||
		       dev->zone->ram_mode[i] == HVIO_RAM_DEVMAP)) {
		/* No VM_IO / VM_PFNMAP: those make GUP refuse the range. */
		hvio_vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND |
				    VM_DONTDUMP);
		vma->vm_ops = &hvio_pages_vm_ops;
		return 0;
	}
	hvio_vm_flags_set(vma, VM_IO | VM_PFNMAP | VM_DONTEXPAND |
			    VM_DONTDUMP);
	return remap_pfn_range(vma, vma->vm_start, PHYS_PFN(phys),
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}
