# SPDX-License-Identifier: GPL-2.0
#
# Top-level build of hvio: the module (kbuild), the userspace daemon (CMake,
# C++20), the kselftest programs, and the test entry points.  Everything
# goes to build/<arch>/.
#
#   make [ARCH=..] [CROSS_COMPILE=..] [KDIR=..]   module + daemon (builds only)
#   make module | userspace                       one of the two
#   make install | uninstall [DESTDIR=] [PREFIX=/usr/local]
#   make dkms-src [DESTDIR=]                      the module's sources for DKMS
#   make selftest [ARCH=..] [T=group]  run the selftests in a QEMU VM (T=blk: all hvio_blk_*)
#   make selftest KERNEL=6.12|6.12-rt  the same on Debian's 6.12 / PREEMPT_RT kernel
#   make kcompile                      hvio.ko against every tested kernel's headers, -Werror
#   make selftests                     build the selftest programs only
#   make unit                          GoogleTest unit tests on the host
#   make check                         unit + install + selftests on both arches
#   make check-debug [T=group]         selftests on a KASAN/lockdep/kmemleak kernel
#   make checkpatch | format | format-check | clean | deps
#   make cross-check                   hypercall code for riscv64 etc.
#   make fuzz-vq [FUZZ_SECONDS=10]     libFuzzer on the virtqueue parser
#   make bench [BENCH=all|blk|net]      benchmarks in the VM (build/bench/*.jsonl)
#   make profile [PROFILE_QD=32]        perf profile of the blk path in the VM
#   make profile-host [PROFILE_QD=32]   QEMU profiled from the host during one blk row
#   PERF=1 (selftest, bench)           Debian's perf in the VM as /usr/bin/perf
#   make e2e [ARCH=..]                 a Debian kernel as a zone under hvemu (KVM)
#
# make, make module and make userspace install nothing: what is missing is
# listed with the command that installs it (scripts/build-check).  Only
# `make deps` and the test and demo targets run scripts/deps, which
# installs the tools, kernels and headers they need (a fast no-op once
# everything is there).  Documentation/install.md has the details.

HOST_ARCH := $(shell uname -m | sed 's/aarch64/arm64/')
ARCH ?= $(HOST_ARCH)
override ARCH := $(patsubst aarch64,arm64,$(patsubst amd64,x86_64,$(patsubst x86,x86_64,$(ARCH))))
ifeq ($(ARCH),x86_64)
KARCH := x86
else ifeq ($(ARCH),arm64)
KARCH := arm64
else
$(error ARCH must be x86_64 or arm64, not '$(ARCH)')
endif
# The kernel's convention: CROSS_COMPILE prefixes gcc, g++, ld.  Native
# builds need none; a cross build defaults to Debian's cross compilers.
ifeq ($(ARCH),$(HOST_ARCH))
CROSS_COMPILE ?=
else ifeq ($(ARCH),arm64)
CROSS_COMPILE ?= aarch64-linux-gnu-
else
CROSS_COMPILE ?= x86_64-linux-gnu-
endif

OUT := build/$(ARCH)
VM_TIMEOUT ?= 900
# Per-program limit inside the VM, from the kselftest settings file.
PROG_TIMEOUT := $(or $(shell sed -n 's/^timeout=//p' tests/selftests/settings 2>/dev/null),0)
T ?=

# Paths that depend on what is installed: evaluated only when used, i.e.
# after scripts/deps has run.  ($(shell) does not see exported variables
# before make 4.4: HVIO_KERNEL is passed by hand.)
common = HVIO_KERNEL=$(KERNEL); . scripts/common.sh;
# The kernel the test VM boots: Debian's, headers from scripts/deps.  The
# test targets always build their module (build/<arch>/test/<krel>/)
# against it.  KERNEL=6.12 or KERNEL=6.12-rt (any SERIES[-rt]): the newest
# Debian kernel of that series and flavour instead of Debian 12's default
# (6.1); scripts/deps fetches it (Documentation/kernels.md).
KERNEL ?=
export HVIO_KERNEL := $(KERNEL)
VM_KDIR = $(shell bash -c '$(common) hvio_kdir $(ARCH)')
VM_KREL = $(shell bash -c '$(common) hvio_krel $(ARCH)')
# The VM's work directory: build/<arch>/vm, build/<arch>/vm-6.12, ...
VM_NAME := vm$(if $(KERNEL),-$(KERNEL))
# KDIR: the kernel build tree `make module` builds against (KDIR=... on the
# command line or in the environment).  Default: the running kernel's,
# when it is there and ARCH is this machine's, else the test VM's.
RUNNING_KDIR := /lib/modules/$(shell uname -r)/build
ifeq ($(origin KDIR),undefined)
ifeq ($(ARCH):$(wildcard $(RUNNING_KDIR)/Makefile),$(HOST_ARCH):$(RUNNING_KDIR)/Makefile)
KDIR := $(RUNNING_KDIR)
else
KDIR = $(VM_KDIR)
endif
endif
KSFT_DIR := $(shell bash -c '$(common) hvio_kselftest_dir')
CHECKPATCH := $(shell bash -c '$(common) hvio_checkpatch')

MOD_SRCS := $(wildcard module/*.c)
MOD_HDRS := $(wildcard module/*.h)
UAPI_HDRS := $(wildcard uapi/linux/*.h)

# Selftests: each tests/selftests/hvio_<group>.c is one program, linked
# with every other tests/selftests/*.c (shared helpers).
ST_CC := $(CROSS_COMPILE)gcc
ST_CFLAGS := -static -O2 -g -Wall -pthread -I uapi -I $(KSFT_DIR) -I tests/selftests
ST_SRCS := $(wildcard tests/selftests/hvio_*.c)
ST_HELPERS := $(filter-out $(ST_SRCS),$(wildcard tests/selftests/*.c))
ST_HDRS := $(wildcard tests/selftests/*.h)
ST_BINS := $(patsubst tests/selftests/%.c,$(OUT)/selftests/%,$(ST_SRCS))
# T=group runs hvio_<group>; a T with no program of that name runs every
# hvio_<T>_* (T=blk: hvio_blk_data, hvio_blk_errors, ...).
ST_PICK = $(or $(wildcard tests/selftests/hvio_$(T).c),$(wildcard tests/selftests/hvio_$(T)_*.c))
ST_RUN := $(if $(T),$(patsubst tests/selftests/%.c,$(OUT)/selftests/%,$(ST_PICK)),$(ST_BINS))

# The daemon: build/<arch>/userspace/hvio, linked dynamically unless
# HVIO_STATIC=ON; the test VMs (an initramfs without shared libraries) get
# hvio-static, the same objects linked statically.
CMAKE_DIR := $(OUT)/userspace
HVIO_STATIC ?= OFF
CMAKE_ARGS := -S userspace -B $(CMAKE_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHVIO_STATIC=$(HVIO_STATIC)
ifneq ($(ARCH),$(HOST_ARCH))
TOOLCHAIN_FILE := userspace/cmake/$(CROSS_COMPILE)toolchain.cmake
CMAKE_ARGS += $(if $(wildcard $(TOOLCHAIN_FILE)),-DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/$(TOOLCHAIN_FILE),\
	-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_C_COMPILER=$(CROSS_COMPILE)gcc -DCMAKE_CXX_COMPILER=$(CROSS_COMPILE)g++)
endif
VM_HVIO := $(CMAKE_DIR)/hvio-static
JOBS := $(shell nproc)
# -jN for CMake's make, unless we already run under a jobserver (make -j).
JOBSFLAG = $(if $(findstring jobserver,$(MAKEFLAGS)),,-j$(JOBS))

FORMAT_SRCS = $(shell find userspace tests/unit tests/hvemu -name '*.cc' -o -name '*.h' \
		-o -name '*.cpp' -o -name '*.hpp' 2>/dev/null)

.PHONY: all deps module userspace selftests selftest unit check check-debug clean bench fuzz profile profile-host \
	checkpatch format format-check cross-check vm-build vm-module vm-userspace

all: module userspace

deps:
	@scripts/deps $(ARCH)

# The goals that install what they need first: every build rule they reach
# waits for `deps` (order-only).  Plain builds (all, module, userspace,
# install) never run it.  unit, check, check-debug and cross-check run
# scripts/deps themselves; the e2e and fuzz rules always wait for it.
DEPS_GOALS := selftest selftests vm-build vm-module vm-userspace bench profile profile-host e2e e2e-build demo \
	checkpatch format format-check
DEPS_FIRST := $(if $(filter $(DEPS_GOALS),$(MAKECMDGOALS)),deps)

# ---- module ---------------------------------------------------------------
# kbuild writes objects next to the sources, and several builds (arches,
# kernels) share one tree, so each builds in its own directory of symlinks.
# $(call kbuild_module,DIR,KDIR,KO[,ARGS]): build in DIR against KDIR, copy
# to KO; ARGS go to kbuild.
define kbuild_module
	@scripts/build-check module "$(ARCH)" "$(CROSS_COMPILE)" "$(2)"
	@[ -n "$(MOD_SRCS)" ] || { echo "make: no module/*.c yet" >&2; exit 1; }
	@mkdir -p $(1)/module
	@ln -sfn $(CURDIR)/Kbuild $(1)/Kbuild
	@ln -sfn $(CURDIR)/uapi $(1)/uapi
	@find $(1)/module -maxdepth 1 -type l -xtype l -delete
	@for f in $(MOD_SRCS) $(MOD_HDRS); do ln -sfn $(CURDIR)/$$f $(1)/$$f; done
	$(MAKE) -C $(2) M=$(CURDIR)/$(1) ARCH=$(KARCH) CROSS_COMPILE=$(CROSS_COMPILE) $(4) modules
	@cp $(1)/hvio.ko $(3)
	@echo "  MODULE  $(3)"
endef

KB := $(OUT)/kbuild
# Keyed by kernel release: builds for 6.1 and 6.12 never mix.
TEST_OUT = $(OUT)/test/$(VM_KREL)

module: | $(DEPS_FIRST)
	$(call kbuild_module,$(KB),$(KDIR),$(OUT)/hvio.ko)

# The module the test VMs load (scripts/vm-run's default --ko); a
# compiler warning is an error here.
vm-module: | $(DEPS_FIRST)
	@[ -n "$(VM_KREL)" ] || { echo "make: no kernel $(or $(KERNEL),default) for $(ARCH) (make deps)" >&2; exit 1; }
	@mkdir -p $(TEST_OUT)
	$(call kbuild_module,$(TEST_OUT)/kbuild,$(VM_KDIR),$(TEST_OUT)/hvio.ko,KCFLAGS=-Werror)

# ---- userspace ------------------------------------------------------------
# Configured once (again when HVIO_STATIC changes); unit tests only when
# `make unit` asks for them (they need GoogleTest, which a board lacks).
userspace: | $(DEPS_FIRST)
	@scripts/build-check userspace "$(ARCH)" "$(CROSS_COMPILE)"
	@grep -qx 'HVIO_STATIC:BOOL=$(HVIO_STATIC)' $(CMAKE_DIR)/CMakeCache.txt 2>/dev/null || \
		cmake $(CMAKE_ARGS) $(if $(wildcard $(CMAKE_DIR)/CMakeCache.txt),,-DHVIO_UNIT_TESTS=OFF) >/dev/null
	+cmake --build $(CMAKE_DIR) --target hvio $(JOBSFLAG)

vm-userspace: userspace
	+cmake --build $(CMAKE_DIR) --target hvio-static $(JOBSFLAG)

# What the test VMs run: module, static daemon, selftest programs.
vm-build: vm-module vm-userspace selftests

# ---- install --------------------------------------------------------------
# As any out-of-tree driver and daemon: hvio.ko into the updates/ directory
# of the kernel it was built for (then depmod, unless DESTDIR: a staging
# root runs its own), the daemon into $(PREFIX)/sbin, the systemd unit,
# the man page when doc/hvio.8 exists, and an example config that never
# replaces one already there.  `make uninstall` removes exactly these (the
# example config only while unchanged).  Install builds nothing: `make`
# first, as your user, then `sudo make install`.
PREFIX ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
# The release the module was built for (its vermagic); KRELEASE=...
# names another for uninstall.
KRELEASE ?= $(or $(shell modinfo -F vermagic $(OUT)/hvio.ko 2>/dev/null | cut -d' ' -f1),$(shell uname -r))
MODDIR = /lib/modules/$(KRELEASE)/updates
# The daemon's version (CMake's project VERSION), else git's name for HEAD.
HVIO_VERSION ?= $(or $(shell sed -n 's/^project(hvio VERSION \([^ )]*\).*/\1/p' userspace/CMakeLists.txt),\
	$(shell git describe --tags --always 2>/dev/null),0)
DKMS_SRC = /usr/src/hvio-$(HVIO_VERSION)

.PHONY: install uninstall dkms-src

install:
	@for f in $(OUT)/hvio.ko $(CMAKE_DIR)/hvio; do [ -f $$f ] || \
		{ echo "make install: no $$f; build first: make ARCH=$(ARCH)" >&2; exit 1; }; done
	install -D -m 644 $(OUT)/hvio.ko $(DESTDIR)$(MODDIR)/hvio.ko
	install -D -m 755 $(CMAKE_DIR)/hvio $(DESTDIR)$(SBINDIR)/hvio
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' dist/hvio@.service.in >$(DESTDIR)$(UNITDIR)/hvio@.service
	chmod 644 $(DESTDIR)$(UNITDIR)/hvio@.service
	@if [ -f doc/hvio.8 ]; then \
		echo install -D -m 644 doc/hvio.8 $(DESTDIR)$(MANDIR)/man8/hvio.8; \
		install -D -m 644 doc/hvio.8 $(DESTDIR)$(MANDIR)/man8/hvio.8; fi
	install -d $(DESTDIR)$(SYSCONFDIR)/hvio
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/hvio/example.json ]; then \
		echo "  KEEP    $(DESTDIR)$(SYSCONFDIR)/hvio/example.json"; else \
		echo install -m 644 dist/example.json $(DESTDIR)$(SYSCONFDIR)/hvio/example.json; \
		install -m 644 dist/example.json $(DESTDIR)$(SYSCONFDIR)/hvio/example.json; fi
	$(if $(DESTDIR),,depmod -a $(KRELEASE))

uninstall:
	rm -f $(DESTDIR)$(MODDIR)/hvio.ko $(DESTDIR)$(SBINDIR)/hvio \
		$(DESTDIR)$(UNITDIR)/hvio@.service $(DESTDIR)$(MANDIR)/man8/hvio.8
	@if cmp -s dist/example.json $(DESTDIR)$(SYSCONFDIR)/hvio/example.json; then \
		echo rm -f $(DESTDIR)$(SYSCONFDIR)/hvio/example.json; \
		rm -f $(DESTDIR)$(SYSCONFDIR)/hvio/example.json; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/hvio/example.json ]; then \
		echo "  KEEP    $(DESTDIR)$(SYSCONFDIR)/hvio/example.json (changed)"; fi
	-@rmdir $(DESTDIR)$(SYSCONFDIR)/hvio 2>/dev/null
	$(if $(DESTDIR),,[ ! -d /lib/modules/$(KRELEASE) ] || depmod -a $(KRELEASE))

# The module's sources and dkms.conf in $(DESTDIR)/usr/src/hvio-VERSION,
# for `dkms install hvio/VERSION` (Documentation/install.md).
dkms-src:
	rm -rf $(DESTDIR)$(DKMS_SRC)
	install -d $(DESTDIR)$(DKMS_SRC)/module $(DESTDIR)$(DKMS_SRC)/uapi/linux
	install -m 644 Kbuild $(DESTDIR)$(DKMS_SRC)/
	install -m 644 $(MOD_SRCS) $(MOD_HDRS) $(DESTDIR)$(DKMS_SRC)/module/
	install -m 644 $(UAPI_HDRS) $(DESTDIR)$(DKMS_SRC)/uapi/linux/
	sed 's|@VERSION@|$(HVIO_VERSION)|g' dist/dkms.conf.in >$(DESTDIR)$(DKMS_SRC)/dkms.conf
	@echo "  DKMS    $(DESTDIR)$(DKMS_SRC): dkms install hvio/$(HVIO_VERSION)"

# ---- selftests ------------------------------------------------------------
# Test modules the selftests load in the VM (tests/selftests/kmod: a
# stand-in for hvisor-tool's hvisor.ko on the root IRQ line).
# Built against the test VM's kernel, like hvio.ko, in the same
# build/<arch>/test/<krel>/ (kbuild is incremental: always asked).
ST_KMOD_DIR = $(TEST_OUT)/kmod
ST_KMOD = $(ST_KMOD_DIR)/hvtool_stub.ko

.PHONY: selftests-kmod
selftests: $(ST_BINS) selftests-kmod

selftests-kmod: | $(DEPS_FIRST)
	@[ -n "$(VM_KREL)" ] || { echo "make: no kernel $(or $(KERNEL),default) for $(ARCH) (make deps)" >&2; exit 1; }
	@mkdir -p $(ST_KMOD_DIR)
	@ln -sfn $(CURDIR)/tests/selftests/kmod/hvtool_stub.c $(ST_KMOD_DIR)/hvtool_stub.c
	@ln -sfn $(CURDIR)/tests/selftests/kmod/Kbuild $(ST_KMOD_DIR)/Kbuild
	$(MAKE) -C $(VM_KDIR) M=$(CURDIR)/$(ST_KMOD_DIR) ARCH=$(KARCH) CROSS_COMPILE=$(CROSS_COMPILE) modules

$(OUT)/selftests/%: tests/selftests/%.c $(ST_HELPERS) $(ST_HDRS) $(UAPI_HDRS) | $(DEPS_FIRST)
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

selftest: vm-build
	@[ -n "$(ST_RUN)" ] || { echo "make: no tests/selftests/hvio_$(or $(T),*).c$(if $(T), or hvio_$(T)_*.c)" >&2; exit 1; }
	scripts/vm-run --arch $(ARCH) --name $(VM_NAME) --timeout $(VM_TIMEOUT) --prog-timeout $(PROG_TIMEOUT) \
		$(VM_SIM_RAM) $(VM_PERF) --kmod tun --kmod "$(NULLB_KMOD)" --extra-file $(VM_HVIO):/bin/hvio \
		--extra-file $(ST_KMOD):/lib/hvio/hvtool_stub.ko -- $(ST_RUN)

# ---- benchmarks -----------------------------------------------------------
# The bench programs play hvisor and a Linux-like guest driver against the
# real daemon and run a plain baseline in the same VM: blk (io_uring on the
# same file, liburing linked statically; for a cross build only liburing's
# own headers are taken from /usr/include via a directory of symlinks) and
# net (write()s / read()s on a TAP of its own, same frame sink and source).
#   make bench [BENCH=all|blk|net] [BENCH_SECONDS=3] [BENCH_POLL_US=N] [SIM_RAM_DT=1] [BENCH_CPU=N] [BENCH_GUEST_POLL=1]
#              [BENCH_QDS=1,32,128] [BENCH_RW=randread|randwrite] [BENCH_DIRECT=0|only] [BENCH_NET_DIR=tx|rx] [BENCH_RX_WINDOW=384]
# (BENCH_POLL_US: the devices' poll_us; unset: the daemon's default, -1 in
# the JSON lines.  BENCH_CPU=N, blk: the fake guest and the daemon on vCPU N
# only, no cross-vCPU wakeups.  BENCH_GUEST_POLL=1, blk: the fake guest
# polls its used ring, no completion interrupts; Documentation/performance.md.
# BENCH_QDS, BENCH_RW, BENCH_DIRECT=0: only those blk rows (BENCH_QDS also
# sets the direct rows' depths, default 1,32; BENCH_DIRECT=only: only the
# direct rows); BENCH_NET_DIR:
# only those net rows, no idle line.  BENCH_RX_WINDOW: frames the RX source
# keeps in flight, 0: flood the TAP.)  blk ends with the "direct" rows: a daemon serving a
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
# Debian's arm64 6.1 kernel has no struct pages for the default (mem=) sim
# window, so O_DIRECT into zone RAM falls back to buffered I/O there: the
# direct rows would measure that fallback.  On that kernel they run in a VM
# of their own whose window /reserved-memory sets aside (struct pages, as
# SIM_RAM_DT=1), so that they measure zero-copy as on x86_64 and 6.12.
BENCH_DIRECT_VM := $(if $(and $(filter arm64,$(ARCH)),$(filter-out 1,$(SIM_RAM_DT)),$(if $(KERNEL),,1),$(filter blk,$(BENCH_KINDS)),$(if $(filter 0,$(BENCH_DIRECT)),,1)),1)
BENCH_RUN := $(if $(filter blk,$(BENCH_KINDS)),$(if $(and $(BENCH_DIRECT_VM),$(filter only,$(BENCH_DIRECT))),,$(BENCH_BIN))) \
	$(if $(filter net,$(BENCH_KINDS)),$(NETBENCH_BIN))

$(BENCH_BIN): tests/bench/hvio_blkbench.c $(ST_HELPERS) $(ST_HDRS) $(UAPI_HDRS) | $(DEPS_FIRST)
	@mkdir -p $(@D) $(URING_INC)
	@ln -sfn /usr/include/liburing.h $(URING_INC)/liburing.h
	@ln -sfn /usr/include/liburing $(URING_INC)/liburing
	$(ST_CC) $(ST_CFLAGS) -I $(URING_INC) -o $@ $< $(ST_HELPERS) \
		-L$(URING_LIB) -l:liburing.a

# hvio_uring drives the device fd through io_uring: liburing, as the bench.
$(OUT)/selftests/hvio_uring: tests/selftests/hvio_uring.c $(ST_HELPERS) $(ST_HDRS) $(UAPI_HDRS) | $(DEPS_FIRST)
	@mkdir -p $(@D) $(URING_INC)
	@ln -sfn /usr/include/liburing.h $(URING_INC)/liburing.h
	@ln -sfn /usr/include/liburing $(URING_INC)/liburing
	$(ST_CC) $(ST_CFLAGS) -I $(URING_INC) -o $@ $< $(ST_HELPERS) \
		-L$(URING_LIB) -l:liburing.a

$(NETBENCH_BIN): tests/bench/hvio_netbench.c $(ST_HELPERS) $(ST_HDRS) $(UAPI_HDRS) | $(DEPS_FIRST)
	@mkdir -p $(@D)
	$(ST_CC) $(ST_CFLAGS) -o $@ $< $(ST_HELPERS)

BENCH_VM_ENV = --env HVIO_BENCH_SECONDS=$(BENCH_SECONDS) --env HVIO_BENCH_POLL_US=$(BENCH_POLL_US) \
	--env HVIO_BENCH_CPU=$(BENCH_CPU) --env HVIO_BENCH_GUEST_POLL=$(BENCH_GUEST_POLL) \
	--env HVIO_BENCH_QDS=$(BENCH_QDS) --env HVIO_BENCH_RW=$(BENCH_RW) \
	--env HVIO_BENCH_NET_DIR=$(BENCH_NET_DIR) --env HVIO_BENCH_RX_WINDOW=$(BENCH_RX_WINDOW)
bench: vm-build $(BENCH_RUN) $(if $(BENCH_DIRECT_VM),$(BENCH_BIN))
	@[ -n "$(strip $(BENCH_RUN) $(BENCH_DIRECT_VM))" ] || { echo "bench: BENCH=all|blk|net, not '$(BENCH)'" >&2; exit 1; }
	@mkdir -p build/bench
	@echo 0 > $(OUT)/bench.rc; : > $(OUT)/bench.log
	@$(if $(strip $(BENCH_RUN)),{ scripts/vm-run --arch $(ARCH) --timeout $(VM_TIMEOUT) $(VM_SIM_RAM) $(VM_PERF) \
		--kmod tun --kmod "null_blk nr_devices=0" --extra-file $(VM_HVIO):/bin/hvio $(BENCH_VM_ENV) \
		--env HVIO_BENCH_DIRECT=$(if $(BENCH_DIRECT_VM),0,$(BENCH_DIRECT)) \
		-- $(BENCH_RUN) || echo 1 > $(OUT)/bench.rc; } | tee -a $(OUT)/bench.log,:)
	@$(if $(BENCH_DIRECT_VM),{ echo "bench: the direct rows in a VM whose sim window has struct pages (--sim-ram-dt)"; \
		scripts/vm-run --arch $(ARCH) --timeout $(VM_TIMEOUT) --sim-ram-dt $(VM_PERF) \
		--kmod "null_blk nr_devices=0" --extra-file $(VM_HVIO):/bin/hvio $(BENCH_VM_ENV) \
		--env HVIO_BENCH_DIRECT=only -- $(BENCH_BIN) || echo 1 > $(OUT)/bench.rc; } | tee -a $(OUT)/bench.log,:)
	@[ "$$(cat $(OUT)/bench.rc)" = 0 ] || { echo "bench: the VM run failed" >&2; exit 1; }
	@for k in $(BENCH_KINDS); do \
		grep -a "^{\"bench\":\"$$k\"" $(OUT)/bench.log | tr -d '\r' > build/bench/$$k-$(ARCH).jsonl; \
		cat build/bench/$$k-*.jsonl > build/bench/$$k.jsonl; \
		echo "bench: build/bench/$$k-$(ARCH).jsonl"; \
	done

# ---- profile --------------------------------------------------------------
# `perf record -a -g -e cpu-clock` (TCG has no PMU) of the VM while the
# bench's guest runs randread (PROFILE_RW) at PROFILE_QD (one row, no baseline in the
# recording, no direct rows), then the top 40 symbols of the whole VM, of
# the daemon's queue thread and of the fake guest (perf report --stdio
# --no-children, kernel and user).  Log: build/<arch>/profile-qd<QD>.log,
# tables: build/profile/<arch>-qd<QD>.txt.
#   make profile [ARCH=..] [PROFILE_QD=32] [PROFILE_RW=randread|randwrite] [BENCH_SECONDS=3] [BENCH_POLL_US=N] [BENCH_CPU=N]
# PROFILE_DIRECT=1: the direct row instead (randread, O_DIRECT on null_blk),
# tables build/profile/<arch>-direct-qd<QD>.txt.
# The net bench's row PROFILE_DIR (rx) and PROFILE_FRAME (64|1514|gso, 1514),
# each leg recorded (the baseline's too), tables build/profile/<arch>-net-<dir>-<frame>.txt:
#   make profile BENCH=net [ARCH=..] [PROFILE_DIR=rx|tx] [PROFILE_FRAME=1514] [BENCH_RX_WINDOW=N]
PROFILE_QD ?= 32
PROFILE_RW ?= randread
PROFILE_DIR ?= rx
PROFILE_FRAME ?= 1514
ifeq ($(BENCH),net)
PROFILE_NAME := net-$(PROFILE_DIR)-$(PROFILE_FRAME)
PROFILE_BIN := $(NETBENCH_BIN)
PROFILE_ENV := --kmod tun --env HVIO_BENCH_NET_DIR=$(PROFILE_DIR) \
	--env HVIO_BENCH_NET_FRAME=$(PROFILE_FRAME) --env HVIO_BENCH_RX_WINDOW=$(BENCH_RX_WINDOW)
else
PROFILE_NAME := $(if $(filter 1,$(PROFILE_DIRECT)),direct-,$(if $(filter randwrite,$(PROFILE_RW)),write-))qd$(PROFILE_QD)
PROFILE_BIN := $(BENCH_BIN)
PROFILE_ENV := --env HVIO_BENCH_QDS=$(PROFILE_QD) --env HVIO_BENCH_CPU=$(BENCH_CPU) \
	--env HVIO_BENCH_RW=$(PROFILE_RW) \
	--env HVIO_BENCH_DIRECT=$(if $(filter 1,$(PROFILE_DIRECT)),only,0)
endif
PROFILE_OUT := build/profile/$(ARCH)-$(PROFILE_NAME).txt
profile: vm-build $(PROFILE_BIN)
	@mkdir -p build/profile
	@{ scripts/vm-run --arch $(ARCH) --timeout $(VM_TIMEOUT) $(VM_SIM_RAM) --perf --name profile \
		--kmod "null_blk nr_devices=0" --extra-file $(VM_HVIO):/bin/hvio \
		--env HVIO_BENCH_SECONDS=$(BENCH_SECONDS) --env HVIO_BENCH_POLL_US=$(BENCH_POLL_US) \
		--env HVIO_BENCH_PERF=1 $(PROFILE_ENV) \
		-- $(PROFILE_BIN); echo $$? > $(OUT)/profile.rc; } | tee $(OUT)/profile-$(PROFILE_NAME).log
	@[ "$$(cat $(OUT)/profile.rc)" = 0 ] || { echo "profile: the VM run failed" >&2; exit 1; }
	@tr -d '\r' < $(OUT)/profile-$(PROFILE_NAME).log | \
		grep -a -e '^# perf' -e '^{"bench":"' > $(PROFILE_OUT)
	@echo "profile: $(PROFILE_OUT)"

# QEMU itself profiled from the build host (scripts/host-profile) while the
# VM runs one blk row in one slice of HOST_PROFILE_SECONDS per side: host
# CPU per request of the vCPU thread that ran the daemon and of the one
# that ran the baseline, by where QEMU was (translated guest code, its
# helpers, soft-MMU, TB lookups, host kernel).  Needs perf on the host
# (scripts/deps installs linux-perf) and a quiet host.
# Reads only: tmpfs punts writes to io-wq workers on either vCPU, and the
# turns and threads cannot be told apart then.
#   make profile-host [ARCH=..] [PROFILE_QD=32] [HOST_PROFILE_SECONDS=10]
HOST_PROFILE_SECONDS ?= 10
profile-host: vm-build $(BENCH_BIN)
	@mkdir -p build/profile
	@command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf; }
	scripts/host-profile --out build/profile/$(ARCH)-host-qd$(PROFILE_QD).txt -- \
		scripts/vm-run --arch $(ARCH) --timeout $(VM_TIMEOUT) $(VM_SIM_RAM) --name hostprof \
		--kmod "null_blk nr_devices=0" --extra-file $(VM_HVIO):/bin/hvio \
		--env HVIO_BENCH_SECONDS=$(HOST_PROFILE_SECONDS) --env HVIO_BENCH_SLICES=1 \
		--env HVIO_BENCH_QDS=$(PROFILE_QD) --env HVIO_BENCH_RW=randread \
		--env HVIO_BENCH_DIRECT=0 --env HVIO_BENCH_POLL_US=$(BENCH_POLL_US) \
		-- $(BENCH_BIN)

# ---- host tests -----------------------------------------------------------
unit:
	@scripts/deps $(HOST_ARCH)
	@grep -qx 'HVIO_UNIT_TESTS:BOOL=ON' build/$(HOST_ARCH)/userspace/CMakeCache.txt 2>/dev/null || \
		cmake -S userspace -B build/$(HOST_ARCH)/userspace \
			-DCMAKE_BUILD_TYPE=RelWithDebInfo -DHVIO_UNIT_TESTS=ON >/dev/null
	+cmake --build build/$(HOST_ARCH)/userspace $(JOBSFLAG)
	cd build/$(HOST_ARCH)/userspace && ctest --output-on-failure --no-tests=ignore -j$(JOBS)

check:
	@scripts/check

# The selftests on a debug kernel (KASAN, lockdep, kmemleak), x86_64; the
# kernel is built once into /var/cache/hvio (scripts/debug-kernel).
check-debug:
	@scripts/check-debug

# ---- style ----------------------------------------------------------------
checkpatch: | $(DEPS_FIRST)
	$(CHECKPATCH) --no-tree -f $(MOD_SRCS) $(MOD_HDRS) $(UAPI_HDRS)

format: | $(DEPS_FIRST)
	@[ -z "$(FORMAT_SRCS)" ] || clang-format -i $(FORMAT_SRCS)

format-check: | $(DEPS_FIRST)
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
