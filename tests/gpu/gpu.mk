# GPU tests: run on the GPU machine with `make gpu-check` (each exits 77 without a GPU).
GPU_BUILD := $(BUILD)/gpu

$(GPU_BUILD)/bench_launch: tests/gpu/bench_launch.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -O2 -cudart shared -gencode arch=compute_90,code=[sm_90,compute_90] -o $@ $<

gpu-deps: all cpu-test-deps $(GPU_BUILD)/bench_launch

gpu-check: gpu-deps
	$(Q)BUILD=$(BUILD) tests/run-checks.sh $(wildcard tests/gpu/test_*.sh)

.PHONY: gpu-check gpu-deps

# The engine through the C API (linked to the shim, which exports it).
$(GPU_BUILD)/engine_test: tests/gpu/engine_test.cu include/gpuos.h $(BUILD)/libgpuos_shim.so
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -O2 -cudart shared -I. -gencode arch=compute_90,code=[sm_90,compute_90] -o $@ $< \
		-L$(BUILD) -lgpuos_shim -lcuda -Xlinker -rpath,'$$ORIGIN/..'

$(GPU_BUILD)/park_mod.cubin: tests/gpu/engine_test.cu
	@mkdir -p $(dir $@)
	$(Q)$(NVCC) -cubin -arch=sm_90 -I. -o $@ $<

gpu-deps: $(GPU_BUILD)/engine_test $(GPU_BUILD)/park_mod.cubin

$(GPU_BUILD)/bench_engine: tests/gpu/bench_engine.cu include/gpuos.h $(BUILD)/libgpuos_shim.so
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -O2 -cudart shared -I. -gencode arch=compute_90,code=[sm_90,compute_90] -o $@ $< \
		-L$(BUILD) -lgpuos_shim -Xlinker -rpath,'$$ORIGIN/..'

gpu-deps: $(GPU_BUILD)/bench_engine

# ptx_lift on the GPU: unmodified programs, nvcc's default targets (compute_75 PTX runs on
# newer GPUs) and sm_90 with its PTX for the benchmark.
$(GPU_BUILD)/lift_prog: tests/gpu/lift_prog.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -O2 -cudart shared -o $@ $<

$(GPU_BUILD)/bench_lift: tests/gpu/bench_lift.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -O2 -cudart shared -gencode arch=compute_90,code=[sm_90,compute_90] -o $@ $<

gpu-deps: $(GPU_BUILD)/lift_prog $(GPU_BUILD)/bench_lift

# bench_torch's "ceiling" mode: every kernel launch free (tests/gpu/nolaunch.c).
$(GPU_BUILD)/libnolaunch.so: tests/gpu/nolaunch.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -O2 -shared -fPIC -fvisibility=hidden -o $@ $<

gpu-deps: $(GPU_BUILD)/libnolaunch.so

# What a batch's stream operations cost next to a launch (fusion/batch.c's choices).
$(GPU_BUILD)/bench_memops: tests/gpu/bench_memops.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -O2 -cudart shared -gencode arch=compute_90,code=[sm_90,compute_90] -o $@ $< -lcuda

gpu-deps: $(GPU_BUILD)/bench_memops
