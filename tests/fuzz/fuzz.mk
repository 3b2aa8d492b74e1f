# SPDX-License-Identifier: GPL-2.0
# Fuzz targets, included from the top-level Makefile (paths are relative to
# the repository root).
#
#   make fuzz-vq [FUZZ_SECONDS=10]   build and run the virtqueue fuzzer
#   make fuzz-vq-seeds               regenerate tests/fuzz/corpus/vq
#
# The fuzzer runs on a copy of the seed corpus in $(FUZZ_BUILD)/corpus-vq
# (which keeps what it learns between runs); a crash, a trapped invariant or
# a timeout makes the target fail and leaves the input in
# $(FUZZ_BUILD)/artifacts-vq/.

FUZZ_SECONDS ?= 10
FUZZ_CC ?= clang
FUZZ_BUILD ?= build/fuzz
FUZZ_CFLAGS ?= -g -O1 -std=gnu11 -Wall -Wextra -Iuapi -Imodule
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# 16-byte header + 8 KiB of guest RAM, see tests/fuzz/vq_fuzz.c.
FUZZ_VQ_MAX_LEN := 8208

FUZZ_VQ_SRCS := tests/fuzz/vq_fuzz.c module/hvio_vq.c
FUZZ_VQ_DEPS := $(FUZZ_VQ_SRCS) module/hvio_vq.h

$(FUZZ_BUILD)/vq_fuzz: $(FUZZ_VQ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $(FUZZ_VQ_SRCS)

$(FUZZ_BUILD)/vq_fuzz_gen: $(FUZZ_VQ_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DHVIO_VQ_FUZZ_GEN -o $@ $(FUZZ_VQ_SRCS)

.PHONY: fuzz-vq fuzz-vq-seeds
fuzz-vq: $(FUZZ_BUILD)/vq_fuzz
	@mkdir -p $(FUZZ_BUILD)/corpus-vq $(FUZZ_BUILD)/artifacts-vq
	cp tests/fuzz/corpus/vq/* $(FUZZ_BUILD)/corpus-vq/
	$(FUZZ_BUILD)/vq_fuzz -max_total_time=$(FUZZ_SECONDS) \
		-max_len=$(FUZZ_VQ_MAX_LEN) -timeout=10 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/artifacts-vq/ \
		$(FUZZ_BUILD)/corpus-vq

fuzz-vq-seeds: $(FUZZ_BUILD)/vq_fuzz_gen
	@mkdir -p tests/fuzz/corpus/vq
	$(FUZZ_BUILD)/vq_fuzz_gen tests/fuzz/corpus/vq

# The register file (module/hvio_mmio.c): accesses in, invariants checked.
FUZZ_MMIO_SRCS := tests/fuzz/mmio_fuzz.c module/hvio_mmio.c

$(FUZZ_BUILD)/mmio_fuzz: $(FUZZ_MMIO_SRCS) module/hvio_mmio.h uapi/linux/hvio.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $(FUZZ_MMIO_SRCS)

.PHONY: fuzz-mmio
fuzz-mmio: $(FUZZ_BUILD)/mmio_fuzz
	@mkdir -p $(FUZZ_BUILD)/corpus-mmio $(FUZZ_BUILD)/artifacts-mmio
	cp tests/fuzz/corpus/mmio/* $(FUZZ_BUILD)/corpus-mmio/
	$(FUZZ_BUILD)/mmio_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-timeout=10 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/artifacts-mmio/ \
		$(FUZZ_BUILD)/corpus-mmio
