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

/*
 * How many user PTEs map an order-0 page: page_mapcount() is gone in 6.12;
 * 6.1's folio_mapcount() is not exported, 6.12's is inline.
 */
static inline int hvio_page_mapcount(struct page *page)
{
#ifdef HVIO_HAVE_PAGE_MAPCOUNT
	return page_mapcount(page);
#else
	return folio_mapcount(page_folio(page));
#endif
}

/*
 * io_uring commands: the header moved (6.6+: <linux/io_uring/cmd.h>), the
 * payload moved from cmd->cmd to io_uring_sqe_cmd(cmd->sqe), and
 * io_uring_cmd_done() gained issue_flags (6.3, in Debian's 6.1 too).
 */
#if IS_ENABLED(CONFIG_IO_URING)
#ifdef HVIO_HAVE_IO_URING_CMD_H
#include <linux/io_uring/cmd.h>
#else
#include <linux/io_uring.h>
#endif

static inline const void *hvio_uring_payload(const struct io_uring_cmd *cmd)
{
#ifdef HVIO_HAVE_IO_URING_SQE_CMD
	return io_uring_sqe_cmd(cmd->sqe);
#else
	return cmd->cmd;
#endif
}

static inline void hvio_uring_done(struct io_uring_cmd *cmd, ssize_t ret,
				   unsigned int issue_flags)
{
#ifdef HVIO_HAVE_URING_CMD_DONE_2
	io_uring_cmd_done(cmd, ret, 0);
#else
	io_uring_cmd_done(cmd, ret, 0, issue_flags);
#endif
}
#endif /* CONFIG_IO_URING */

#endif /* _HVIO_COMPAT_H */
