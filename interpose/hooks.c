// SPDX-License-Identifier: MIT
/*
 * Every exported CUDA entry point, and nothing else (the export list comes from hooks.def).
 * A hook never aborts and never prints to stdout; it returns what the real call returns, so
 * the runtime's error state (cudaGetLastError) is the real call's.
 */
#include "common/atomics.h"
#include "common/probe.h"
#include "interpose/interpose.h"
#include "interpose/real.h"
#include "fusion/fusion.h"

#define GPUOS_EXPORT __attribute__((visibility("default")))
#define unlikely(x)  __builtin_expect(!!(x), 0)

/*
 * The launch path: find the kernel (one hash probe); a catalog kernel's launch
 * (interpose/catalog.c) or a lifted kernel's (interpose/lifted.c) becomes a task when it
 * fits; anything else goes to the real launch. Each launch is
 * counted under where it went and why.
 */
static inline struct gpuos_live *live_of(const void *key)
{
	struct gpuos_kernel *k = gpuos_reg_lookup(key);
	/* acquire: pairs with the release of k->live in gpuos_reg_first_launch */
	struct gpuos_live *l = k ? load_acquire(&k->live) : NULL;

	if (unlikely(!l))
		l = gpuos_reg_first_launch(k);
	return l;
}

/*
 * GPUOS_WHY_DIVERTED if the launch became a task, else why not (counted either way). Launch
 * attributes (clusters, cooperative, priorities, programmatic launches...) always take the
 * real launch.
 */
static inline int divert(struct gpuos_live *l, dim3 g, dim3 b, void **a, size_t sm,
			 cudaStream_t st, bool ptsz, bool attrs)
{
	/* acquire: pairs with the release in gpuos_catalog_prepare */
	struct gpuos_catk *c = load_acquire(&l->cat);
	/* acquire: pairs with the release in gpuos_lifted_prepare */
	const struct gpuos_lifted *x = c ? NULL : load_acquire(&l->lifted);
	int why = attrs && (c || x) ? GPUOS_WHY_LAUNCH_CONFIG
		  : c		    ? (int)gpuos_catalog_launch(c, g, b, a, sm, st, ptsz)
		  : x		    ? (int)gpuos_lifted_launch(x, g, b, a, sm, st, ptsz)
				    : load_relaxed(&l->why);

	GPUOS_PROBE_BEGIN(t0);
	fetch_add_relaxed(&l->count[why], 1);
	GPUOS_PROBE_END(WHYCNT, t0);
	return why;
}

/*
 * Lazy loading: a launch that goes to the runtime may be the one that loads the kernel, and a
 * load may wait for the whole context idle, behind a task of ours whose worker another thread
 * has yet to launch (that launch then waits for the load: a deadlock). The runtime may load
 * through calls CUPTI does not report, so until a real launch of the kernel has worked the
 * workers park here, before the runtime is called; interpose/cupti.c does the same for the
 * driver's launches.
 */
static inline bool load_begin(struct gpuos_live *l, const void *key)
{
	return unlikely(!load_relaxed(&l->loaded)) && gpuos_fusion_first_launch(key);
}

static inline cudaError_t launch_end(struct gpuos_live *l, const void *key, bool parked,
				     cudaError_t rc)
{
	if (unlikely(parked)) {
		if (rc == cudaSuccess)
			gpuos_fusion_loaded(key);
		gpuos_fusion_unpark();
	}
	/* After the first real launch that worked the driver has the kernel's code (no more
	 * parks for it; relaxed: the flag only saves the park's probe) and the device is set up:
	 * read the cubin layout, then lift the kernel if it can be (each once, whoever races).
	 * The unknown record stands for many kernels: it never counts as loaded. */
	if (unlikely(!load_relaxed(&l->loaded)) && rc == cudaSuccess && l != gpuos_reg_unknown()) {
		store_relaxed(&l->loaded, true);
		gpuos_reg_read_info(l);
		gpuos_catalog_prepare(l);
		gpuos_lifted_prepare(l);
	}
	return rc;
}

#define LAUNCH_HOOK(name, keytype, ptsz)                                                           \
	GPUOS_EXPORT cudaError_t name(keytype f, dim3 g, dim3 b, void **a, size_t sm,              \
				      cudaStream_t st)                                             \
	{                                                                                          \
		gpuos_real_##name##_t real = REAL(name);                                           \
		struct gpuos_live *l;                                                              \
		bool parked;                                                                       \
                                                                                                   \
		if (unlikely(!real))                                                               \
			return cudaErrorSharedObjectSymbolNotFound;                                \
		GPUOS_PROBE_BEGIN(t0_);                                                            \
		l = live_of((const void *)f);                                                      \
		if (divert(l, g, b, a, sm, st, ptsz, false) == GPUOS_WHY_DIVERTED) {               \
			GPUOS_PROBE_END(HOOK, t0_);                                                \
			return cudaSuccess;                                                        \
		}                                                                                  \
		parked = load_begin(l, (const void *)f);                                           \
		cudaError_t rc_ = launch_end(l, (const void *)f, parked, real(f, g, b, a, sm, st)); \
		GPUOS_PROBE_END(FALL, t0_);                                                        \
		return rc_;                                                                        \
	}

LAUNCH_HOOK(__cudaLaunchKernel, cudaKernel_t, false)
LAUNCH_HOOK(__cudaLaunchKernel_ptsz, cudaKernel_t, true)
LAUNCH_HOOK(cudaLaunchKernel, const void *, false)
LAUNCH_HOOK(cudaLaunchKernel_ptsz, const void *, true)

static const cudaLaunchConfig_t no_config;

#define LAUNCH_EX_HOOK(name, ptsz)                                                                 \
	GPUOS_EXPORT cudaError_t name(const cudaLaunchConfig_t *c, const void *f, void **a)        \
	{                                                                                          \
		gpuos_real_##name##_t real = REAL(name);                                           \
		struct gpuos_live *l;                                                              \
		bool parked;                                                                       \
                                                                                                   \
		if (unlikely(!real))                                                               \
			return cudaErrorSharedObjectSymbolNotFound;                                \
		const cudaLaunchConfig_t *k = c ? c : &no_config; /* the runtime's error to give */ \
		l = live_of(f);                                                                    \
		if (divert(l, k->gridDim, k->blockDim, a, k->dynamicSmemBytes, k->stream, ptsz,    \
			   !c || c->numAttrs != 0) == GPUOS_WHY_DIVERTED)                          \
			return cudaSuccess;                                                        \
		parked = load_begin(l, f);                                                         \
		return launch_end(l, f, parked, real(c, f, a));                                    \
	}

LAUNCH_EX_HOOK(cudaLaunchKernelExC, false)
LAUNCH_EX_HOOK(cudaLaunchKernelExC_ptsz, true)

GPUOS_EXPORT void **__cudaRegisterFatBinary(void *fatCubin)
{
	gpuos_real___cudaRegisterFatBinary_t real = REAL(__cudaRegisterFatBinary);
	void **h;

	gpuos_shim_init();
	if (!real)
		return NULL;
	h = real(fatCubin);
	if (h)
		gpuos_reg_add_fatbin(h, fatCubin);
	return h;
}

GPUOS_EXPORT void __cudaRegisterFatBinaryEnd(void **h)
{
	gpuos_real___cudaRegisterFatBinaryEnd_t real = REAL(__cudaRegisterFatBinaryEnd);

	if (real)
		real(h);
}

GPUOS_EXPORT void __cudaUnregisterFatBinary(void **h)
{
	gpuos_real___cudaUnregisterFatBinary_t real = REAL(__cudaUnregisterFatBinary);

	gpuos_reg_remove_fatbin(h);
	if (real)
		real(h);
}

GPUOS_EXPORT void __cudaRegisterFunction(void **h, const char *hostFun, char *deviceFun,
					 const char *deviceName, int thread_limit, uint3 *tid,
					 uint3 *bid, dim3 *bDim, dim3 *gDim, int *wSize)
{
	gpuos_real___cudaRegisterFunction_t real = REAL(__cudaRegisterFunction);

	if (!real)
		return;
	real(h, hostFun, deviceFun, deviceName, thread_limit, tid, bid, bDim, gDim, wSize);
	gpuos_reg_add_function(h, hostFun, deviceName);
}

GPUOS_EXPORT cudaError_t __cudaGetKernel(cudaKernel_t *k, const void *f)
{
	gpuos_real___cudaGetKernel_t real = REAL(__cudaGetKernel);
	cudaError_t rc;

	if (!real)
		return cudaErrorSharedObjectSymbolNotFound;
	rc = real(k, f);
	if (rc == cudaSuccess && k)
		gpuos_reg_add_handle(f, *k);
	return rc;
}
