/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * hvio: the hypervisor-facing shared page, byte-compatible with hvisor.
 *
 * hvisor (EL2 / HS / VMX root) and root Linux exchange trapped virtio-mmio
 * accesses of non-root zones through one page, the "virtio bridge". Its
 * layout, the ring protocol and the hypercall numbers below are hvisor's
 * existing ABI and must not change: a module built from this header drops
 * into a board running an unmodified hvisor.
 *
 * Rings: 32 entries, empty when front == rear, full when
 * ((rear + 1) & 31) == front.  hvisor produces req_list (advances req_rear)
 * and consumes res_list (advances res_front); root Linux does the opposite.
 */
#ifndef _UAPI_LINUX_HVIO_BRIDGE_H
#define _UAPI_LINUX_HVIO_BRIDGE_H

#include <linux/types.h>
#ifndef __KERNEL__
#include <stddef.h>
#endif

#define HVIO_BRIDGE_MAX_REQ	32
#define HVIO_BRIDGE_MAX_CPUS	32
#define HVIO_BRIDGE_MAX_DEVS	8

/* hvisor's hypercall codes used by the virtio backend. */
#define HVISOR_HC_INIT_VIRTIO		0	/* arg0: phys addr of the bridge */
#define HVISOR_HC_FINISH_REQ		1	/* drain res_list, inject IRQs */
#define HVISOR_HC_GET_VIRTIO_IRQ	86	/* x86_64: arg0: phys of a __u32 */

/* hvisor's hypercall instruction immediates / selectors. */
#define HVISOR_HVC_IMM_ARM64		0x4856
#define HVISOR_ECALL_EID_RISCV		0x114514

/*
 * One trapped access.  need_interrupt == 0: the vCPU spins until
 * cfg_flags[src_cpu] changes and then takes cfg_values[src_cpu] as the read
 * result (writes are acknowledged the same way).  need_interrupt != 0
 * (QueueNotify): the vCPU has already resumed; nothing is acknowledged.
 */
struct hvio_device_req {
	__u64 src_cpu;
	__u64 address;		/* zone IPA of the access */
	__u64 size;		/* access width in bytes */
	__u64 value;		/* value written (is_write) */
	__u32 src_zone;
	__u8 is_write;
	__u8 need_interrupt;
	__u16 padding;
};

/* One interrupt to inject: hvisor raises irq_id in target_zone. */
struct hvio_device_res {
	__u32 target_zone;
	__u32 irq_id;
};

struct hvio_bridge {
	__u32 req_front;
	__u32 req_rear;
	__u32 res_front;
	__u32 res_rear;
	struct hvio_device_req req_list[HVIO_BRIDGE_MAX_REQ];
	struct hvio_device_res res_list[HVIO_BRIDGE_MAX_REQ];
	__u64 cfg_flags[HVIO_BRIDGE_MAX_CPUS];
	__u64 cfg_values[HVIO_BRIDGE_MAX_CPUS];
	__u64 mmio_addrs[HVIO_BRIDGE_MAX_DEVS];	/* unused by hvio, kept zero */
	__u8 mmio_avail;			/* unused by hvio, kept zero */
	__u8 need_wakeup;	/* 1: consumer sleeps, hvisor must raise IRQ */
};

/* virtio-mmio QueueNotify: the one access hvisor does not wait for. */
#define HVIO_MMIO_QUEUE_NOTIFY	0x050

#ifdef __cplusplus
#define __HVIO_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define __HVIO_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

__HVIO_STATIC_ASSERT(sizeof(struct hvio_device_req) == 40, "device_req");
__HVIO_STATIC_ASSERT(sizeof(struct hvio_device_res) == 8, "device_res");
__HVIO_STATIC_ASSERT(offsetof(struct hvio_bridge, req_list) == 16, "req");
__HVIO_STATIC_ASSERT(offsetof(struct hvio_bridge, res_list) == 1296, "res");
__HVIO_STATIC_ASSERT(offsetof(struct hvio_bridge, cfg_flags) == 1552, "flg");
__HVIO_STATIC_ASSERT(offsetof(struct hvio_bridge, cfg_values) == 1808, "val");
__HVIO_STATIC_ASSERT(offsetof(struct hvio_bridge, mmio_addrs) == 2064, "mm");
__HVIO_STATIC_ASSERT(offsetof(struct hvio_bridge, need_wakeup) == 2129, "nw");
__HVIO_STATIC_ASSERT(sizeof(struct hvio_bridge) == 2136, "bridge size");

#endif /* _UAPI_LINUX_HVIO_BRIDGE_H */
