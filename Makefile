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
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/kernels/worker_blob.o
CHECKS   := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)

all: $(BUILD)/libgpuos_shim.so $(BUILD)/gpuos

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

# The worker: relocatable device code (-rdc, so injected operators can be called through the
# table), linked into one executable cubin per arch, packed into a fatbin, built into the shim.
WORKER_ARCHS ?= 75 80 90 100 120
KBUILD := build/kernels

$(KBUILD)/worker_sm%.cubin: kernels/worker.cu kernels/task.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -arch=sm_$* -rdc=true -cubin -maxrregcount=64 -I. -o $(@:.cubin=.rel.cubin) $<
	$(Q)$(CUDA_HOME)/bin/nvlink -arch=sm_$* $(@:.cubin=.rel.cubin) -o $@

$(KBUILD)/worker.fatbin: $(WORKER_ARCHS:%=$(KBUILD)/worker_sm%.cubin)
	$(Q)$(CUDA_HOME)/bin/fatbinary --create=$@ -64 \
		$(foreach a,$(WORKER_ARCHS),--image3=kind=elf,sm=$(a),file=$(KBUILD)/worker_sm$(a).cubin)

$(BUILD)/obj/kernels/worker_blob.o: kernels/worker_blob.S $(KBUILD)/worker.fatbin
	@mkdir -p $(dir $@)
	$(Q)$(CC) -c -Wa,-I$(KBUILD) -o $@ $<

# Symbol versions (what is exported is what has default visibility: test_exports.sh).
$(BUILD)/shim.map: interpose/shim.map.in
	@mkdir -p $(dir $@)
	$(Q)$(CC) -E -P -x c -I. interpose/shim.map.in -o $@

# kernels/jit.c hands kernels/task.h to NVRTC as "gpuos_task.h": a C string made from the file.
$(BUILD)/gen/task_h.inc: kernels/task.h
	@mkdir -p $(dir $@)
	$(Q)sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< >$@
$(BUILD)/obj/kernels/jit.o: $(BUILD)/gen/task_h.inc
$(BUILD)/obj/kernels/jit.o: override CFLAGS += -I$(BUILD)/gen

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

# The driver-call observer's id table comes from the CUDA headers (check_cupti compares).
cupti-ids:
	$(Q)scripts/gen_cupti_ids.py --include $(CUDA_HOME)/include -o interpose/cupti_ids.h
$(BUILD)/obj/tests/check_cupti.o: override CFLAGS += -DGPUOS_CUDA_INCLUDE='"$(CUDA_HOME)/include"'
# The observer alone, with the test's recording fakes of fusion (not the real engine).
$(BUILD)/tests/check_cupti: $(BUILD)/obj/tests/check_cupti.o $(BUILD)/obj/interpose/cupti.o \
		$(BUILD)/obj/common/log.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS) $(CHECK_LIBS) -ldl -lpthread
# The catalog's operators on several devices, with the test's recording fakes of fusion.
$(BUILD)/tests/check_catops: $(BUILD)/obj/tests/check_catops.o $(BUILD)/obj/interpose/catalog.o \
		$(BUILD)/obj/kernels/catalog.o $(BUILD)/obj/kernels/sig.o $(BUILD)/obj/common/log.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $^ $(LDFLAGS) $(CHECK_LIBS) -lpthread
# The observer sharing its subscription, against the test double of libcupti, by soname.
$(BUILD)/hooks/cupti/libcupti.so.13: tests/hooks/fake_cupti.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -O1 -g -shared -fPIC -fvisibility=hidden -I$(CUDA_HOME)/include \
		-Wl,-Bsymbolic -Wl,-soname,libcupti.so.13 -o $@ $<
$(BUILD)/tests/check_cupti_share: $(BUILD)/obj/tests/check_cupti_share.o \
		$(BUILD)/obj/interpose/cupti.o $(BUILD)/obj/common/log.o \
		$(BUILD)/hooks/cupti/libcupti.so.13
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -o $@ $(filter %.o,$^) $(LDFLAGS) $(CHECK_LIBS) \
		$(BUILD)/hooks/cupti/libcupti.so.13 -Wl,-rpath,$(abspath $(BUILD))/hooks/cupti \
		-ldl -lpthread
.PHONY: cupti-ids

include tests/fixtures/fixtures.mk
include tests/fixtures/lift/lift.mk
include tests/cpu.mk
include tests/gpu/gpu.mk
include tests/fuzz/fuzz.mk

check: all $(CHECKS) fixtures cpu-test-deps
	$(Q)BUILD=$(BUILD) tests/run-checks.sh $(CHECKS)

# The concurrent parts (ring, batches, alias, registry) once more under ThreadSanitizer.
TSAN_CHECKS := check_fusion check_table check_interpose
check-tsan:
	$(Q)$(MAKE) --no-print-directory SANITIZE=thread $(TSAN_CHECKS:%=build/san-thread/tests/%)
	$(Q)BUILD=build/san-thread TESTS_ONLY=1 tests/run-checks.sh \
		$(TSAN_CHECKS:%=build/san-thread/tests/%)

# The README's test command: unit and integration tests, the same under ASan/UBSan and TSan,
# fuzzing.
test: check
	$(Q)$(MAKE) --no-print-directory check SANITIZE=address,undefined
	$(Q)$(MAKE) --no-print-directory check-tsan
	$(Q)$(MAKE) --no-print-directory fuzz

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BUILD)/libgpuos_shim.so $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/gpuos $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build

format:
	clang-format -i $(wildcard */*.c */*.h tests/*/*.c)

.PHONY: all check check-tsan test install clean format
# keep the intermediate objects of the test binaries (no rebuilds, no "rm" at the end)
.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# The recorded PyTorch launches (tests/data) as a C initialiser for check_sig.
$(BUILD)/gen/records.inc: tests/data/torch211_decoded_records.json scripts/gen_records_inc.py
	@mkdir -p $(dir $@)
	$(Q)scripts/gen_records_inc.py $< $@
$(BUILD)/obj/tests/check_sig.o $(BUILD)/obj/tests/check_catalog.o: $(BUILD)/gen/records.inc
$(BUILD)/obj/tests/check_sig.o $(BUILD)/obj/tests/check_catalog.o: override CFLAGS += -I$(BUILD)/gen
