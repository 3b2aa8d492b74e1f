/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hvio: hvisor's hypercall instruction, per architecture.
 *
 * Conventions are hvisor's (see Documentation/abi.md section 1).  arm64 and
 * x86_64 are built and exercised by the test suite's compile; riscv64 and
 * loongarch64 are written to hvisor's convention and only compile-checked
 * (scripts/cross-check) until they run on a board.
 */
#ifndef _HVIO_HYPERCALL_H
#define _HVIO_HYPERCALL_H

#include <linux/types.h>

#if defined(__aarch64__)
static inline u64 hvio_hvisor_call(u64 code, u64 arg0, u64 arg1)
{
	register u64 x0 asm("x0") = code;
	register u64 x1 asm("x1") = arg0;
	register u64 x2 asm("x2") = arg1;

	asm volatile("hvc #0x4856" : "+r"(x0) : "r"(x1), "r"(x2) : "memory");
	return x0;
}
#elif defined(__x86_64__)
static inline u64 hvio_hvisor_call(u64 code, u64 arg0, u64 arg1)
{
	u64 rax = code;

	asm volatile("vmcall" : "+a"(rax) : "D"(arg0), "S"(arg1) : "memory");
	return rax;
}
#elif defined(__riscv) && __riscv_xlen == 64
/* SBI-style call: a7 = hvisor's extension id, error in a0, value in a1. */
static inline u64 hvio_hvisor_call(u64 code, u64 arg0, u64 arg1)
{
	register u64 a0 asm("a0") = code;
	register u64 a1 asm("a1") = arg0;
	register u64 a2 asm("a2") = arg1;
	register u64 a7 asm("a7") = 0x114514;

	asm volatile("ecall" : "+r"(a0), "+r"(a1) : "r"(a2), "r"(a7)
		     : "memory");
	return a1;
}
#elif defined(__loongarch64)
/* hvcl 0, spelled as its encoding for assemblers that lack it. */
static inline u64 hvio_hvisor_call(u64 code, u64 arg0, u64 arg1)
{
	register u64 a0 asm("a0") = code;
	register u64 a1 asm("a1") = arg0;
	register u64 a2 asm("a2") = arg1;

	asm volatile(".word 0x002b8000" : "+r"(a0), "+r"(a1), "+r"(a2)
		     : : "memory");
	return a0;
}
#else
#error "hvio: no hvisor hypercall for this architecture"
#endif

#endif /* _HVIO_HYPERCALL_H */
