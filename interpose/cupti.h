/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_INTERPOSE_CUPTI_H
#define GPUOS_INTERPOSE_CUPTI_H

/*
 * The driver-call observer. Libraries with their own static runtime (cuBLAS, cuDNN, NCCL,
 * jiterator) launch and copy through the driver API, where the runtime hooks never see
 * them; the shared libcudart goes through the driver too. One CUPTI callback subscription
 * (driver domain, only the ids of interpose/cupti_ids.h enabled) sees all of it and tells
 * fusion, before each call proceeds, what it is about to do (fusion/fusion.h says why).
 *
 * libcupti is dlopen'ed, never linked: the shim must load where it is absent.
 */
#include <stdbool.h>

#include <cuda.h>
#include <cupti_callbacks.h>

/* What a driver call means to fusion; interpose/cupti_ids.h gives each id its kind. */
enum gpuos_cupti_kind {
	GPUOS_CUPTI_NONE = 0,	    /* not observed */
	GPUOS_CUPTI_STREAM_OP,	    /* stream-ordered work on .stream: gpuos_fusion_call_begin */
	GPUOS_CUPTI_STREAM_DESTROY, /* call_begin, then (after success) gpuos_fusion_stream_gone */
	GPUOS_CUPTI_LAUNCH,	    /* call_begin, then the first-launch check of .func */
	GPUOS_CUPTI_FIRST_USE,	    /* may load .func (lazy loading): the first-launch check */
	GPUOS_CUPTI_PARK,	    /* waits for the device/context or loads code: park around it */
	GPUOS_CUPTI_CAPTURE_BEGIN,  /* stream_op, capture_begin; capture_end if it fails */
	GPUOS_CUPTI_CAPTURE_END,    /* capture_end after it returns (unless it never ended one) */
	GPUOS_CUPTI_RESET, /* destroys the context's allocations: park, then device_reset */
	GPUOS_CUPTI_UNMAP, /* takes memory away unwaited: gpuos_fusion_forget (call_begin too if
			    * it has a stream: .ordered) */
	GPUOS_CUPTI_KIND_COUNT
};

struct gpuos_cupti_action {
	int kind;	  /* enum gpuos_cupti_kind */
	CUstream stream;  /* STREAM_OP, STREAM_DESTROY, LAUNCH, CAPTURE_*; CU_STREAM_LEGACY for
			   * the synchronous copies and memsets that take none */
	bool ptsz;	  /* a _ptsz/_ptds variant: a NULL stream is the thread's default stream */
	bool ordered;	  /* stream-ordered on .stream (STREAM_OP, STREAM_DESTROY, LAUNCH, an
			   * UNMAP with a stream): in flight from call_begin to call_end */
	const void *func; /* LAUNCH, FIRST_USE: the CUfunction or CUkernel */
};

/*
 * Load libcupti, subscribe (once) and enable the driver callbacks of interpose/cupti_ids.h.
 * Looks for libcupti.so.13 by soname (an already loaded one first), next to the loaded
 * libcudart.so.13 (PyTorch wheels), in $CUDA_HOME/lib64, /usr/local/cuda/lib64 and
 * /usr/local/cuda/extras/CUPTI/lib64.
 *
 * Returns 0 when observing; -EBUSY when another CUPTI subscriber (a profiler: nsys, ncu,
 * torch.profiler/kineto, cuda-gdb) holds CUPTI; -ENOENT without libcupti; another negative
 * errno when CUPTI refuses (no driver or GPU: -ENODEV; not allowed: -EPERM; else -EIO). On
 * any error nothing is observed, so the caller must divert nothing (pure pass-through);
 * one line was logged. Thread-safe; later calls return the first call's result without
 * logging again, until gpuos_cupti_stop.
 */
int gpuos_cupti_start(void);

/*
 * Disable the callbacks and unsubscribe. Safe if never started or failed. Call it when no
 * other thread is inside a driver call: a call that entered observed and leaves unobserved
 * would never unpark.
 */
void gpuos_cupti_stop(void);

/*
 * What the driver call @cbid (CUPTI_DRIVER_TRACE_CBID_*) with params @params (its
 * cuXxx_params, as CUPTI passes it; NULL to ask about the id alone, which leaves stream
 * and func NULL) means. Fills @out and returns out->kind; GPUOS_CUPTI_NONE for ids it
 * does not observe or knows nothing of. Pure, lock-free, no allocation.
 */
int gpuos_cupti_classify(CUpti_CallbackId cbid, const void *params, struct gpuos_cupti_action *out);

/*
 * The callback gpuos_cupti_start registers (a CUpti_CallbackFunc), declared for tests that
 * feed it fabricated calls. Ignores other domains and the engine's own calls
 * (gpuos_fusion_in_engine).
 */
void CUPTIAPI gpuos_cupti_callback(void *userdata, CUpti_CallbackDomain domain,
				   CUpti_CallbackId cbid, const void *cbdata);

#endif
