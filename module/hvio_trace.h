/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hvio tracepoints: the data path of every device, for perf trace,
 * trace-cmd or /sys/kernel/tracing/events/hvio/.  Each event names the
 * zone and the device's MMIO base, as the log lines do.
 *
 * hvio_kick      a guest notify of a queue (bridge IRQ path)
 * hvio_fetch     ops handed to the daemon by one QUEUE_RUN or FETCH
 * hvio_commit    completions applied by one QUEUE_RUN or COMMIT
 * hvio_inject    an interrupt pushed to the hypervisor for a zone
 * hvio_reset     a guest's Status = 0 (held while old ops are out)
 * hvio_vq_error  a malformed chain or ring, by parser reason
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM hvio

#if !defined(_HVIO_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _HVIO_TRACE_H

#include <linux/tracepoint.h>

#include "hvio_vq.h"

/* Let perf and trace-cmd resolve the parser reasons in the format files. */
TRACE_DEFINE_ENUM(HVIO_VQ_E_HEAD);
TRACE_DEFINE_ENUM(HVIO_VQ_E_NEXT);
TRACE_DEFINE_ENUM(HVIO_VQ_E_LOOP);
TRACE_DEFINE_ENUM(HVIO_VQ_E_NESTED_INDIRECT);
TRACE_DEFINE_ENUM(HVIO_VQ_E_INDIRECT_LEN);
TRACE_DEFINE_ENUM(HVIO_VQ_E_INDIRECT_NEXT);
TRACE_DEFINE_ENUM(HVIO_VQ_E_INDIRECT_OFF);
TRACE_DEFINE_ENUM(HVIO_VQ_E_ZERO_LEN);
TRACE_DEFINE_ENUM(HVIO_VQ_E_ADDR);
TRACE_DEFINE_ENUM(HVIO_VQ_E_ORDER);
TRACE_DEFINE_ENUM(HVIO_VQ_E_SEGS);
TRACE_DEFINE_ENUM(HVIO_VQ_E_TOO_BIG);
TRACE_DEFINE_ENUM(HVIO_VQ_E_AVAIL_JUMP);

DECLARE_EVENT_CLASS(hvio_queue_class,
	TP_PROTO(u32 zone, u64 base, u16 queue, u32 nr),
	TP_ARGS(zone, base, queue, nr),
	TP_STRUCT__entry(
		__field(u32, zone)
		__field(u64, base)
		__field(u16, queue)
		__field(u32, nr)
	),
	TP_fast_assign(
		__entry->zone = zone;
		__entry->base = base;
		__entry->queue = queue;
		__entry->nr = nr;
	),
	TP_printk("zone=%u dev=%#llx queue=%u nr=%u", __entry->zone,
		  __entry->base, __entry->queue, __entry->nr)
);

/* nr: 0 */
DEFINE_EVENT(hvio_queue_class, hvio_kick,
	TP_PROTO(u32 zone, u64 base, u16 queue, u32 nr),
	TP_ARGS(zone, base, queue, nr));

/* nr: ops handed out */
DEFINE_EVENT(hvio_queue_class, hvio_fetch,
	TP_PROTO(u32 zone, u64 base, u16 queue, u32 nr),
	TP_ARGS(zone, base, queue, nr));

/* nr: completions the call carried */
DEFINE_EVENT(hvio_queue_class, hvio_commit,
	TP_PROTO(u32 zone, u64 base, u16 queue, u32 nr),
	TP_ARGS(zone, base, queue, nr));

TRACE_EVENT(hvio_inject,
	TP_PROTO(u32 zone, u32 irq, bool deferred),
	TP_ARGS(zone, irq, deferred),
	TP_STRUCT__entry(
		__field(u32, zone)
		__field(u32, irq)
		__field(bool, deferred)
	),
	TP_fast_assign(
		__entry->zone = zone;
		__entry->irq = irq;
		__entry->deferred = deferred;
	),
	TP_printk("zone=%u irq=%u%s", __entry->zone, __entry->irq,
		  __entry->deferred ? " deferred (res_list full)" : "")
);

TRACE_EVENT(hvio_reset,
	TP_PROTO(u32 zone, u64 base, u64 generation, bool held),
	TP_ARGS(zone, base, generation, held),
	TP_STRUCT__entry(
		__field(u32, zone)
		__field(u64, base)
		__field(u64, generation)
		__field(bool, held)
	),
	TP_fast_assign(
		__entry->zone = zone;
		__entry->base = base;
		__entry->generation = generation;
		__entry->held = held;
	),
	TP_printk("zone=%u dev=%#llx generation=%llu%s", __entry->zone,
		  __entry->base, __entry->generation,
		  __entry->held ? " held for old ops" : "")
);

TRACE_EVENT(hvio_vq_error,
	TP_PROTO(u32 zone, u64 base, u16 queue, int err),
	TP_ARGS(zone, base, queue, err),
	TP_STRUCT__entry(
		__field(u32, zone)
		__field(u64, base)
		__field(u16, queue)
		__field(int, err)
	),
	TP_fast_assign(
		__entry->zone = zone;
		__entry->base = base;
		__entry->queue = queue;
		__entry->err = err;
	),
	TP_printk("zone=%u dev=%#llx queue=%u err=%s", __entry->zone,
		  __entry->base, __entry->queue,
		  __print_symbolic(__entry->err,
				   { HVIO_VQ_E_HEAD, "head" },
				   { HVIO_VQ_E_NEXT, "next" },
				   { HVIO_VQ_E_LOOP, "loop" },
				   { HVIO_VQ_E_NESTED_INDIRECT, "nested_indirect" },
				   { HVIO_VQ_E_INDIRECT_LEN, "indirect_len" },
				   { HVIO_VQ_E_INDIRECT_NEXT, "indirect_next" },
				   { HVIO_VQ_E_INDIRECT_OFF, "indirect_off" },
				   { HVIO_VQ_E_ZERO_LEN, "zero_len" },
				   { HVIO_VQ_E_ADDR, "addr" },
				   { HVIO_VQ_E_ORDER, "order" },
				   { HVIO_VQ_E_SEGS, "segs" },
				   { HVIO_VQ_E_TOO_BIG, "too_big" },
				   { HVIO_VQ_E_AVAIL_JUMP, "avail_jump" }))
);

#endif /* _HVIO_TRACE_H */

/* Out of tree: define_trace.h finds this file through -I module/. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE hvio_trace
#include <trace/define_trace.h>
