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
