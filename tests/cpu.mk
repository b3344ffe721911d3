# CPU integration tests: nvcc-built programs run against a CPU test double of libcudart
# (tests/hooks/fake_cudart.c), with and without the shim.
HOOKS := $(BUILD)/hooks

$(HOOKS)/fake/libcudart.so.13: tests/hooks/fake_cudart.c tests/hooks/fake_cudart.map
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -O1 -g -shared -fPIC -fvisibility=hidden -I$(CUDA_HOME)/include \
		-Wl,--version-script=tests/hooks/fake_cudart.map -Wl,-soname,libcudart.so.13 -o $@ $<

$(HOOKS)/prog: tests/hooks/prog.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -cudart shared -gencode arch=compute_90,code=[sm_90,compute_90] -o $@ $<

$(HOOKS)/prog_ptsz: tests/hooks/prog.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -cudart shared --default-stream per-thread \
		-gencode arch=compute_90,code=[sm_90,compute_90] -o $@ $<

$(HOOKS)/libuser.so: tests/hooks/user_lib.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -cudart shared -shared -Xcompiler -fPIC -gencode arch=compute_90,code=sm_90 -o $@ $<

# kernels with PyTorch's names and layouts (the catalog without PyTorch)
$(HOOKS)/torch_like: tests/hooks/torch_like.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $@")
	$(Q)$(NVCC) -cudart shared -gencode arch=compute_90,code=[sm_90,compute_90] -o $@ $<

$(HOOKS)/dlopen_main: tests/hooks/dlopen_main.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -O1 -g -o $@ $< -ldl

cpu-test-deps: $(HOOKS)/fake/libcudart.so.13 $(HOOKS)/prog $(HOOKS)/prog_ptsz \
	$(HOOKS)/libuser.so $(HOOKS)/dlopen_main $(HOOKS)/torch_like
.PHONY: cpu-test-deps
