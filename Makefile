# SPDX-License-Identifier: GPL-2.0
#
# Top-level build of hvio: the module (kbuild against Debian's kernel
# headers), the userspace daemon (CMake, C++20), the kselftest programs, and
# the test entry points.  Everything goes to build/<arch>/.
#
#   make [ARCH=x86_64|arm64]           module + userspace + selftests
#   make selftest [ARCH=..] [T=group]  run the selftests in a QEMU VM (T=blk: all hvio_blk_*)
#   make unit                          GoogleTest unit tests on the host
#   make check                         unit + selftests on both arches
#   make check-debug [T=group]         selftests on a KASAN/lockdep/kmemleak kernel
#   make checkpatch | format | format-check | clean | deps
#   make cross-check                   hypercall code for riscv64 etc.
#   make fuzz-vq [FUZZ_SECONDS=10]     libFuzzer on the virtqueue parser
#   make bench [BENCH=all|blk|net]      benchmarks in the VM (build/bench/*.jsonl)
#   make profile [PROFILE_QD=32]        perf profile of the blk path in the VM
#   PERF=1 (selftest, bench)           Debian's perf in the VM as /usr/bin/perf
#   make e2e [ARCH=..]                 a Debian kernel as a zone under hvemu (KVM)
#
# Missing tools, kernels and headers are installed by scripts/deps, which is
# a fast no-op once everything is there.

ARCH ?= x86_64
override ARCH := $(patsubst aarch64,arm64,$(patsubst amd64,x86_64,$(ARCH)))
ifeq ($(ARCH),x86_64)
KARCH := x86
XCOMPILE :=
else ifeq ($(ARCH),arm64)
KARCH := arm64
XCOMPILE := aarch64-linux-gnu-
else
$(error ARCH must be x86_64 or arm64, not '$(ARCH)')
endif

HOST_ARCH := $(shell uname -m | sed 's/aarch64/arm64/')
OUT := build/$(ARCH)
VM_TIMEOUT ?= 900
# Per-program limit inside the VM, from the kselftest settings file.
PROG_TIMEOUT := $(or $(shell sed -n 's/^timeout=//p' tests/selftests/settings 2>/dev/null),0)
T ?=

# Paths that depend on what is installed: evaluated only when used, i.e.
# after scripts/deps has run.
common = . scripts/common.sh;
KDIR = $(shell bash -c '$(common) hvio_kdir $(ARCH)')
KSFT_DIR := $(shell bash -c '$(common) hvio_kselftest_dir')
CHECKPATCH := $(shell bash -c '$(common) hvio_checkpatch')

MOD_SRCS := $(wildcard module/*.c)
MOD_HDRS := $(wildcard module/*.h)
UAPI_HDRS := $(wildcard uapi/linux/*.h)

# Selftests: each tests/selftests/hvio_<group>.c is one program, linked
# with every other tests/selftests/*.c (shared helpers).
ST_CC := $(XCOMPILE)gcc
ST_CFLAGS := -static -O2 -g -Wall -pthread -I uapi -I $(KSFT_DIR) -I tests/selftests
ST_SRCS := $(wildcard tests/selftests/hvio_*.c)
ST_HELPERS := $(filter-out $(ST_SRCS),$(wildcard tests/selftests/*.c))
ST_HDRS := $(wildcard tests/selftests/*.h)
ST_BINS := $(patsubst tests/selftests/%.c,$(OUT)/selftests/%,$(ST_SRCS))
# T=group runs hvio_<group>; a T with no program of that name runs every
# hvio_<T>_* (T=blk: hvio_blk_data, hvio_blk_errors, ...).
ST_PICK = $(or $(wildcard tests/selftests/hvio_$(T).c),$(wildcard tests/selftests/hvio_$(T)_*.c))
ST_RUN := $(if $(T),$(patsubst tests/selftests/%.c,$(OUT)/selftests/%,$(ST_PICK)),$(ST_BINS))

CMAKE_DIR := $(OUT)/userspace
CMAKE_ARGS := -S userspace -B $(CMAKE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo
ifneq ($(ARCH),$(HOST_ARCH))
CMAKE_ARGS += -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/userspace/cmake/$(XCOMPILE)toolchain.cmake
endif
JOBS := $(shell nproc)
# -jN for CMake's make, unless we already run under a jobserver (make -j).
JOBSFLAG = $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(JOBS))

FORMAT_SRCS = $(shell find userspace tests/unit tests/hvemu -name '*.cc' -o -name '*.h' \
		-o -name '*.cpp' -o -name '*.hpp' 2>/dev/null)

.PHONY: all deps module userspace selftests selftest unit check check-debug clean bench fuzz profile \
	checkpatch format format-check cross-check

all: module userspace selftests

deps:
	@scripts/deps $(ARCH)

# ---- module ---------------------------------------------------------------
# kbuild writes objects next to the sources, and both arches build from the
# same tree, so each arch builds in its own directory of symlinks.
KB := $(OUT)/kbuild

module: | deps
	@[ -n "$(MOD_SRCS)" ] || { echo "make: no module/*.c yet" >&2; exit 1; }
	@mkdir -p $(KB)/module
	@ln -sfn ../../../Kbuild $(KB)/Kbuild
	@ln -sfn ../../../uapi $(KB)/uapi
	@find $(KB)/module -maxdepth 1 -type l -xtype l -delete
	@for f in $(MOD_SRCS) $(MOD_HDRS); do \
		ln -sfn ../../../../$$f $(KB)/$$f; done
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(KB) ARCH=$(KARCH) \
		CROSS_COMPILE=$(XCOMPILE) modules
	@cp $(KB)/hvio.ko $(OUT)/hvio.ko
	@echo "  MODULE  $(OUT)/hvio.ko"

# ---- userspace ------------------------------------------------------------
userspace: | deps
	@[ -f $(CMAKE_DIR)/CMakeCache.txt ] || cmake $(CMAKE_ARGS) >/dev/null
	+cmake --build $(CMAKE_DIR) $(JOBSFLAG)

# ---- selftests ------------------------------------------------------------
# Test modules the selftests load in the VM (tests/selftests/kmod: a
# stand-in for hvisor-tool's hvisor.ko on the root IRQ line).
ST_KMOD := $(OUT)/selftests/kmod/hvtool_stub.ko

selftests: $(ST_BINS) $(ST_KMOD)

$(ST_KMOD): tests/selftests/kmod/hvtool_stub.c tests/selftests/kmod/Kbuild | deps
	@mkdir -p $(@D)
	@ln -sfn ../../../../tests/selftests/kmod/hvtool_stub.c $(@D)/hvtool_stub.c
	@ln -sfn ../../../../tests/selftests/kmod/Kbuild $(@D)/Kbuild
	$(MAKE) -C $(KDIR) M=$(CURDIR)/$(@D) ARCH=$(KARCH) CROSS_COMPILE=$(XCOMPILE) modules

$(OUT)/selftests/%: tests/selftests/%.c $(ST_HELPERS) $(ST_HDRS) $(UAPI_HDRS) | deps
	@mkdir -p $(@D)
	$(ST_CC) $(ST_CFLAGS) -o $@ $< $(ST_HELPERS)

# A slow disk for the lifecycle tests (a drain that takes time): /dev/nullb0,
# 1 GiB, every I/O completes after 2 s.
NULLB_KMOD := null_blk nr_devices=1 gb=1 irqmode=2 completion_nsec=2000000000
# SIM_RAM_DT=1 (arm64): the sim window set aside by /reserved-memory instead
# of mem=, so it has struct pages and O_DIRECT reaches it (T=direct, bench).
SIM_RAM_DT ?= 0
VM_SIM_RAM := $(if $(filter 1,$(SIM_RAM_DT)),$(if $(filter arm64,$(ARCH)),--sim-ram-dt))
# PERF=1: Debian's perf (scripts/perf-stage) in the VM, for a look inside.
PERF ?= 0
VM_PERF := $(if $(filter 1,$(PERF)),--perf)

selftest: all
	@[ -n "$(ST_RUN)" ] || { echo "make: no tests/selftests/hvio_$(or $(T),*).c$(if $(T), or hvio_$(T)_*.c)" >&2; exit 1; }
	scripts/vm-run --arch $(ARCH) --timeout $(VM_TIMEOUT) --prog-timeout $(PROG_TIMEOUT) $(VM_SIM_RAM) $(VM_PERF) \
		--kmod tun --kmod "$(NULLB_KMOD)" --extra-file $(CMAKE_DIR)/hvio:/bin/hvio \
		--extra-file $(ST_KMOD):/lib/hvio/hvtool_stub.ko -- $(ST_RUN)

# ---- benchmarks -----------------------------------------------------------
# The bench programs play hvisor and a Linux-like guest driver against the
# real daemon and run a plain baseline in the same VM: blk (io_uring on the
# same file, liburing linked statically; for a cross build only liburing's
# own headers are taken from /usr/include via a directory of symlinks) and
# net (write()s / read()s on a TAP of its own, same frame sink and source).
#   make bench [BENCH=all|blk|net] [BENCH_SECONDS=3] [BENCH_POLL_US=N] [SIM_RAM_DT=1] [BENCH_CPU=N]
# (BENCH_POLL_US: the devices' poll_us; unset: the daemon's default, -1 in
# the JSON lines.  BENCH_CPU=N, blk: the fake guest and the daemon on vCPU N
# only, no cross-vCPU wakeups; Documentation/performance.md.)  blk ends with the "direct" rows: a daemon serving a
# memory-backed null_blk with O_DIRECT against plain io_uring O_DIRECT on
# it (null_blk is loaded without devices; the bench makes its own through
# configfs).
BENCH_BIN := $(OUT)/bench/hvio_blkbench
NETBENCH_BIN := $(OUT)/bench/hvio_netbench
URING_INC := $(OUT)/uring-inc
URING_LIB := /usr/lib/$(patsubst arm64,aarch64,$(ARCH))-linux-gnu
BENCH_SECONDS ?= 3
BENCH ?= all
BENCH_KINDS := $(if $(filter all,$(BENCH)),blk net,$(BENCH))
BENCH_RUN := $(if $(filter blk,$(BENCH_KINDS)),$(BENCH_BIN)) \
	$(if $(filter net,$(BENCH_KINDS)),$(NETBENCH_BIN))

$(BENCH_BIN): tests/bench/hvio_blkbench.c $(ST_HELPERS) $(ST_HDRS) $(UAPI_HDRS) | deps
	@mkdir -p $(@D) $(URING_INC)
	@ln -sfn /usr/include/liburing.h $(URING_INC)/liburing.h
	@ln -sfn /usr/include/liburing $(URING_INC)/liburing
	$(ST_CC) $(ST_CFLAGS) -I $(URING_INC) -o $@ $< $(ST_HELPERS) \
		-L$(URING_LIB) -l:liburing.a

# hvio_uring drives the device fd through io_uring: liburing, as the bench.
$(OUT)/selftests/hvio_uring: tests/selftests/hvio_uring.c $(ST_HELPERS) $(ST_HDRS) $(UAPI_HDRS) | deps
	@mkdir -p $(@D) $(URING_INC)
	@ln -sfn /usr/include/liburing.h $(URING_INC)/liburing.h
	@ln -sfn /usr/include/liburing $(URING_INC)/liburing
	$(ST_CC) $(ST_CFLAGS) -I $(URING_INC) -o $@ $< $(ST_HELPERS) \
		-L$(URING_LIB) -l:liburing.a

$(NETBENCH_BIN): tests/bench/hvio_netbench.c $(ST_HELPERS) $(ST_HDRS) $(UAPI_HDRS) | deps
	@mkdir -p $(@D)
	$(ST_CC) $(ST_CFLAGS) -o $@ $< $(ST_HELPERS)

bench: all $(BENCH_RUN)
	@[ -n "$(strip $(BENCH_RUN))" ] || { echo "bench: BENCH=all|blk|net, not '$(BENCH)'" >&2; exit 1; }
	@mkdir -p build/bench
	@{ scripts/vm-run --arch $(ARCH) --timeout $(VM_TIMEOUT) $(VM_SIM_RAM) $(VM_PERF) \
		--kmod tun --kmod "null_blk nr_devices=0" --extra-file $(CMAKE_DIR)/hvio:/bin/hvio \
		--env HVIO_BENCH_SECONDS=$(BENCH_SECONDS) --env HVIO_BENCH_POLL_US=$(BENCH_POLL_US) \
		--env HVIO_BENCH_CPU=$(BENCH_CPU) \
		-- $(BENCH_RUN); echo $$? > $(OUT)/bench.rc; } | tee $(OUT)/bench.log
	@[ "$$(cat $(OUT)/bench.rc)" = 0 ] || { echo "bench: the VM run failed" >&2; exit 1; }
	@for k in $(BENCH_KINDS); do \
		grep -a "^{\"bench\":\"$$k\"" $(OUT)/bench.log | tr -d '\r' > build/bench/$$k-$(ARCH).jsonl; \
		cat build/bench/$$k-*.jsonl > build/bench/$$k.jsonl; \
		echo "bench: build/bench/$$k-$(ARCH).jsonl"; \
	done

# ---- profile --------------------------------------------------------------
# `perf record -a -g -e cpu-clock` (TCG has no PMU) of the VM while the
# bench's guest runs randread at PROFILE_QD (one row, no baseline in the
# recording, no direct rows), then the top 40 symbols of the whole VM, of
# the daemon's queue thread and of the fake guest (perf report --stdio
# --no-children, kernel and user).  Log: build/<arch>/profile-qd<QD>.log,
# tables: build/profile/<arch>-qd<QD>.txt.
#   make profile [ARCH=..] [PROFILE_QD=32] [BENCH_SECONDS=3] [BENCH_POLL_US=N] [BENCH_CPU=N]
PROFILE_QD ?= 32
PROFILE_OUT := build/profile/$(ARCH)-qd$(PROFILE_QD).txt
profile: all $(BENCH_BIN)
	@mkdir -p build/profile
	@{ scripts/vm-run --arch $(ARCH) --timeout $(VM_TIMEOUT) $(VM_SIM_RAM) --perf --name profile \
		--kmod "null_blk nr_devices=0" --extra-file $(CMAKE_DIR)/hvio:/bin/hvio \
		--env HVIO_BENCH_SECONDS=$(BENCH_SECONDS) --env HVIO_BENCH_POLL_US=$(BENCH_POLL_US) \
		--env HVIO_BENCH_PERF=1 --env HVIO_BENCH_QDS=$(PROFILE_QD) --env HVIO_BENCH_CPU=$(BENCH_CPU) \
		--env HVIO_BENCH_RW=randread --env HVIO_BENCH_DIRECT=0 \
		-- $(BENCH_BIN); echo $$? > $(OUT)/profile.rc; } | tee $(OUT)/profile-qd$(PROFILE_QD).log
	@[ "$$(cat $(OUT)/profile.rc)" = 0 ] || { echo "profile: the VM run failed" >&2; exit 1; }
	@tr -d '\r' < $(OUT)/profile-qd$(PROFILE_QD).log | \
		grep -a -e '^# perf' -e '^{"bench":"blk"' > $(PROFILE_OUT)
	@echo "profile: $(PROFILE_OUT)"

# ---- host tests -----------------------------------------------------------
unit:
	@scripts/deps $(HOST_ARCH)
	@[ -f build/$(HOST_ARCH)/userspace/CMakeCache.txt ] || \
		cmake -S userspace -B build/$(HOST_ARCH)/userspace \
			-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	+cmake --build build/$(HOST_ARCH)/userspace $(JOBSFLAG)
	cd build/$(HOST_ARCH)/userspace && ctest --output-on-failure --no-tests=ignore -j$(JOBS)

check:
	@scripts/check

# The selftests on a debug kernel (KASAN, lockdep, kmemleak), x86_64; the
# kernel is built once into /var/cache/hvio (scripts/debug-kernel).
check-debug:
	@scripts/check-debug

# ---- style ----------------------------------------------------------------
checkpatch: | deps
	$(CHECKPATCH) --no-tree -f $(MOD_SRCS) $(MOD_HDRS) $(UAPI_HDRS)

format: | deps
	@[ -z "$(FORMAT_SRCS)" ] || clang-format -i $(FORMAT_SRCS)

format-check: | deps
	@[ -z "$(FORMAT_SRCS)" ] || clang-format --dry-run --Werror $(FORMAT_SRCS)

cross-check:
	@scripts/deps $(HOST_ARCH)
	scripts/cross-check

# End to end under hvemu (tests/e2e/e2e.mk).
include tests/e2e/e2e.mk

# Fuzz targets (fuzz-vq, fuzz-vq-seeds); deps first, as for the rest.
-include tests/fuzz/fuzz.mk
-include tests/fuzz/config.mk
build/fuzz/vq_fuzz build/fuzz/vq_fuzz_gen build/fuzz/config_fuzz build/fuzz/mmio_fuzz: | deps

# Every fuzz target for FUZZ_SECONDS each (ASan + UBSan, libFuzzer).
fuzz: fuzz-vq fuzz-config fuzz-mmio

clean:
	rm -rf build
