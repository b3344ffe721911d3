# libFuzzer harnesses (clang): tests/fuzz/fuzz_<name>.c, seeds in tests/fuzz/seeds_<name>/.
# `make fuzz` runs each for FUZZ_SECONDS; crashes land in build/fuzz/.
FUZZ_HARNESSES := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_SRCS  := $(wildcard common/*.c ptx_lift/*.c) interpose/config.c kernels/sig.c \
	kernels/catalog.c
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-std=gnu11 -D_GNU_SOURCE -I. -Icommon -I$(CUDA_HOME)/include

build/fuzz/%: tests/fuzz/%.c tests/fuzz/guard.h $(FUZZ_LIB_SRCS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIB_SRCS) -lelf -lzstd -llz4 -ldl -lpthread

fuzz: $(FUZZ_HARNESSES) fixtures
	$(Q)for h in $(FUZZ_HARNESSES); do \
		n=$${h#build/fuzz/}; mkdir -p build/fuzz/corpus_$$n build/fuzz/crash_$$n; \
		seeds=tests/fuzz/seeds_$$n; [ -d $$seeds ] || seeds=; \
		extra=build/fuzz/extra_seeds_$$n; [ -d $$extra ] || extra=; \
		echo "  FUZZ    $$n ($(FUZZ_SECONDS) s)"; \
		$$h -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -print_final_stats=0 \
			-artifact_prefix=build/fuzz/crash_$$n/ build/fuzz/corpus_$$n $$seeds $$extra \
			>build/fuzz/$$n.log 2>&1 || { tail -40 build/fuzz/$$n.log; exit 1; }; \
		grep -E '^#[0-9]+.*DONE|Done [0-9]+ runs' build/fuzz/$$n.log | tail -1; \
	done; \
	echo "fuzz: $(words $(FUZZ_HARNESSES)) passed, 0 failed"

.PHONY: fuzz
