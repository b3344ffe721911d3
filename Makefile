# GPUOS build. `make` builds build/libgpuos_shim.so and build/gpuos; `make check` runs the
# CPU tests (no GPU needed); `make gpu-check` runs the GPU tests (exit 77 = skipped).
# SANITIZE=address,undefined|thread builds the unit tests into their own build folder.

CUDA_HOME ?= /usr/local/cuda
NVCC      ?= $(CUDA_HOME)/bin/nvcc
CC        ?= gcc
PREFIX    ?= /usr/local
CFLAGS    ?= -O2 -g -Wall -Wextra
FUZZ_CC   ?= clang
FUZZ_SECONDS ?= 20

override CFLAGS += -std=gnu11 -fPIC -fvisibility=hidden -MMD -MP -I. -Icommon \
	-I$(CUDA_HOME)/include -D_GNU_SOURCE
override CFLAGS += $(if $(WERROR),-Werror)
LIBS := -lelf -lzstd -llz4 -ldl -lpthread -lstdc++

comma := ,
BUILD := build
ifneq ($(SANITIZE),)
BUILD := build/san-$(subst $(comma),-,$(SANITIZE))
override CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
override LDFLAGS += -fsanitize=$(SANITIZE)
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRCS := $(wildcard common/*.c interpose/*.c ptx_lift/*.c fusion/*.c kernels/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CHECKS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)

all: $(BUILD)/libgpuos_shim.so $(BUILD)/gpuos

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The export list is generated from the one hook list.
$(BUILD)/shim.map: interpose/hooks.def interpose/shim.map.in
	@mkdir -p $(dir $@)
	$(Q)$(CC) -E -P -x c -I. interpose/shim.map.in -o $@

$(BUILD)/libgpuos_shim.so: $(LIB_OBJS) $(BUILD)/shim.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ $(LIB_OBJS) $(LDFLAGS) -Wl,--version-script=$(BUILD)/shim.map \
		-Wl,-z,nodelete -Wl,-z,defs $(LIBS)

$(BUILD)/libgpuos.a: $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/gpuos: $(BUILD)/obj/scripts/gpuos.o $(BUILD)/libgpuos.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS) $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libgpuos.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS) $(CHECK_LIBS) $(LIBS)

include tests/fixtures/fixtures.mk
include tests/cpu.mk
include tests/gpu/gpu.mk
include tests/fuzz/fuzz.mk

check: all $(CHECKS) fixtures cpu-test-deps
	$(Q)BUILD=$(BUILD) tests/run-checks.sh $(CHECKS)

# The README's test command: unit and integration tests, the same under ASan/UBSan, fuzzing.
test: check
	$(Q)$(MAKE) --no-print-directory check SANITIZE=address,undefined
	$(Q)$(MAKE) --no-print-directory fuzz

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/libgpuos_shim.so $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/gpuos $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build

format:
	clang-format -i $(wildcard */*.c */*.h tests/*/*.c)

.PHONY: all check test install clean format
# keep the intermediate objects of the test binaries (no rebuilds, no "rm" at the end)
.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
