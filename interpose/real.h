/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_INTERPOSE_REAL_H
#define GPUOS_INTERPOSE_REAL_H

/*
 * The real CUDA runtime functions behind the hooks. Resolved lazily, each on first use:
 * dlsym(RTLD_NEXT) first; if the runtime was loaded in a local scope (a dlopen'ed framework)
 * then the already loaded libcudart by name. Never resolves to the shim itself.
 */
#include <cuda_runtime_api.h>

#include "common/atomics.h"

/* Entry points the public headers do not declare. */
cudaError_t __cudaLaunchKernel(cudaKernel_t, dim3, dim3, void **, size_t, cudaStream_t);
cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t, dim3, dim3, void **, size_t, cudaStream_t);
cudaError_t cudaLaunchKernel_ptsz(const void *, dim3, dim3, void **, size_t, cudaStream_t);
cudaError_t cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *, const void *, void **);
void **__cudaRegisterFatBinary(void *);
void __cudaRegisterFatBinaryEnd(void **);
void __cudaUnregisterFatBinary(void **);
void __cudaRegisterFunction(void **, const char *, char *, const char *, int, uint3 *, uint3 *,
			    dim3 *, dim3 *, int *);
cudaError_t __cudaGetKernel(cudaKernel_t *, const void *);

enum gpuos_hook_id {
#define HOOK(ret, name, params, args) GPUOS_HOOK_##name,
#define USE HOOK
#include "interpose/hooks.def"
	GPUOS_HOOK_COUNT
};

/* Prototype check: a hooks.def line that disagrees with the header fails to compile here. */
#define HOOK(ret, name, params, args)                                                              \
	typedef ret(*gpuos_real_##name##_t) params;                                                \
	ret name params;
#define USE HOOK
#include "interpose/hooks.def"

extern void *_Atomic gpuos_real_ptr[GPUOS_HOOK_COUNT];
extern const char *const gpuos_hook_names[GPUOS_HOOK_COUNT];

/* Slow path: find the real symbol; NULL (logged once) if no runtime provides it. */
void *gpuos_real_resolve(enum gpuos_hook_id id);

static inline void *gpuos_real_fn(enum gpuos_hook_id id)
{
	/* relaxed: the pointer is the only datum; the code it points to never changes */
	void *p = load_relaxed(&gpuos_real_ptr[id]);
	return p ? p : gpuos_real_resolve(id);
}

#define REAL(name) ((gpuos_real_##name##_t)gpuos_real_fn(GPUOS_HOOK_##name))

#endif
