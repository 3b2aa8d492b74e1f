/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hvio: the one place for kernel-version differences.
 *
 * Kbuild probes the headers it builds against and defines HVIO_HAVE_*;
 * nothing else in the module looks at kernel versions.
 */
#ifndef _HVIO_COMPAT_H
#define _HVIO_COMPAT_H

#include <linux/mm.h>
#include <linux/eventfd.h>

static inline void hvio_vm_flags_set(struct vm_area_struct *vma,
				     unsigned long flags)
{
#ifdef HVIO_HAVE_VM_FLAGS_SET		/* 6.3+: vm_flags is read-only */
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

static inline void hvio_vm_flags_clear(struct vm_area_struct *vma,
				       unsigned long flags)
{
#ifdef HVIO_HAVE_VM_FLAGS_SET
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

static inline void hvio_eventfd_signal(struct eventfd_ctx *ctx)
{
#ifdef HVIO_HAVE_EVENTFD_SIGNAL_1	/* 6.8+: no count argument */
	eventfd_signal(ctx);
#else
	eventfd_signal(ctx, 1);
#endif
}

#endif /* _HVIO_COMPAT_H */
