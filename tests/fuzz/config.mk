# SPDX-License-Identifier: GPL-2.0
# Fuzz target for the daemon's config parser, included from the top-level
# Makefile (paths are relative to the repository root).
#
#   make fuzz-config [FUZZ_SECONDS=10]   build and run the config fuzzer
#
# The fuzzer runs on a copy of the seed corpus in
# $(FUZZ_BUILD)/corpus-config (which keeps what it learns between runs); a
# crash, an escaping exception, a broken invariant or a timeout makes the
# target fail and leaves the input in $(FUZZ_BUILD)/artifacts-config/.

FUZZ_SECONDS ?= 10
FUZZ_BUILD ?= build/fuzz
FUZZ_CXX ?= clang++
FUZZ_CXXFLAGS ?= -g -O1 -std=c++20 -Wall -Wextra -Iuapi -Iuserspace/lib
FUZZ_CONFIG_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_CONFIG_MAX_LEN := 4096

FUZZ_CONFIG_SRCS := tests/fuzz/config_fuzz.cc userspace/lib/config.cc
FUZZ_CONFIG_DEPS := $(FUZZ_CONFIG_SRCS) userspace/lib/config.h uapi/linux/hvio.h

$(FUZZ_BUILD)/config_fuzz: $(FUZZ_CONFIG_DEPS)
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) $(FUZZ_CONFIG_SAN) -o $@ $(FUZZ_CONFIG_SRCS)

.PHONY: fuzz-config
fuzz-config: $(FUZZ_BUILD)/config_fuzz
	@mkdir -p $(FUZZ_BUILD)/corpus-config $(FUZZ_BUILD)/artifacts-config
	cp tests/fuzz/corpus/config/* $(FUZZ_BUILD)/corpus-config/
	$(FUZZ_BUILD)/config_fuzz -max_total_time=$(FUZZ_SECONDS) \
		-max_len=$(FUZZ_CONFIG_MAX_LEN) -timeout=10 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/artifacts-config/ \
		$(FUZZ_BUILD)/corpus-config
