/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_FUSION_H
#define GPUOS_FUSION_H

/*
 * fusion: the host side of the engine. What the hooks (interpose/) and the driver-call
 * observer (interpose/cupti.c) must tell it so that stream order holds:
 *   - when a stream-ordered driver call on a stream enters, that stream's open batch is
 *     closed (and the legacy stream's rules applied), and until it returns no batch opens on
 *     it: gpuos_fusion_call_begin / _end (gpuos_fusion_stream_op closes only);
 *   - around any call that waits for the whole device or context, the workers are parked
 *     (DESIGN.md invariant 4): gpuos_fusion_park / gpuos_fusion_unpark;
 *   - captures: gpuos_fusion_capture_begin / _end (no tasks, no shim CUDA calls inside);
 *   - the first launch of a function (lazy module loading may sync the context): park.
 * All but call_begin/_end are cheap no-ops while no engine is running (one relaxed load);
 * those count the call even then (an engine may start during it): two atomic adds a call.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda.h>

/* Nonzero while this thread is inside the engine's own driver calls: observers ignore them. */
extern __thread int gpuos_fusion_in_engine;

/* True once any engine was started (observers may skip all work before that). */
bool gpuos_fusion_active(void);

/* The current context's device (0 without one): where a launch's stream is. Two driver calls. */
int gpuos_fusion_current_dev(void);

/*
 * Before a stream-ordered call (launch, copy, memset, event record, stream wait, host
 * function, graph launch, stream sync/query/destroy, memop) on @s. @ptsz: the call is a
 * per-thread-default-stream variant (_ptsz/_ptds), so a NULL @s means this thread's stream.
 */
void gpuos_fusion_stream_op(CUstream s, bool ptsz);

/*
 * A stream-ordered driver call on @s enters (CUPTI_API_ENTER) / returned (CUPTI_API_EXIT),
 * on the same thread: begin does gpuos_fusion_stream_op, and in between tasks of other threads
 * that would open a batch on @s, or on a stream @s orders with, fall through. @ctx: the
 * call's context (CUPTI's), NULL if not known; it tells whose legacy stream @s is. begin
 * returns what end takes.
 */
unsigned gpuos_fusion_call_begin(CUstream s, bool ptsz, CUcontext ctx);
void gpuos_fusion_call_end(unsigned call);

/* After @s was destroyed: forget it (its batch was closed by stream_op before). */
void gpuos_fusion_stream_gone(CUstream s);

/* Around a call that waits for the whole device/context: workers drained and kept off. */
void gpuos_fusion_park(void);
void gpuos_fusion_unpark(void);

/* After the current device's primary context was reset (cudaDeviceReset): its engine's memory,
 * streams and modules are gone; drop the engine (parked before the reset) and its streams'
 * batches; the next task starts a new one. Injected operators must be defined again. */
void gpuos_fusion_device_reset(void);

/* Before a capture begins (any mode) and after it ends. While any capture is in progress
 * nothing is diverted and the engine makes no CUDA call. */
void gpuos_fusion_capture_begin(void);
void gpuos_fusion_capture_end(void);

/* Before a launch (or attribute query) of @f (CUfunction or CUkernel): true if no such call
 * has returned yet and the workers were parked for it; the caller then calls
 * gpuos_fusion_loaded(@f) if the call worked, and gpuos_fusion_unpark. */
bool gpuos_fusion_first_launch(const void *f);
void gpuos_fusion_loaded(const void *f);

/* Threads a worker block has: the running engines', else what gpuos_init would choose. */
unsigned gpuos_fusion_worker_threads(void);

/*
 * The shim's operators (interpose/catalog.c, interpose/lifted.c). An operator from @src,
 * linked with the PTX module @ptx (ptx_len bytes, a lifted kernel) if there is one, on the
 * current device (*dev), built in the background like gpuos_op_define's: its id or a negative
 * errno.
 */
int gpuos_fusion_define(const char *name, const char *src, const char *ptx, size_t ptx_len,
			int *dev);

/*
 * gpuos_submit with all GPUOS_TASK_ARGS arguments @a and, if @n, a parameter buffer (@params,
 * @n <= GPUOS_ARENA_CHUNK bytes) copied to device @dev's arena, its address in a[2]. @op must
 * be an injected operator of @dev. Same returns as gpuos_submit, and -EXDEV.
 */
int gpuos_fusion_submit_params(void *stream, unsigned op, const uint64_t *a, unsigned flags,
			       const void *params, size_t n, int dev);

/*
 * 0 if [@p, @p + @n) lies in one allocation of device @dev's memory that its engine's
 * workers may use (plain device memory of the engine's context, not managed): a copy of
 * it can run as a task. -EFAULT if not, -ENODEV without an engine on @dev. The ranges the
 * driver confirmed are remembered until memory may be taken away: every park (frees wait
 * for the device) and gpuos_fusion_forget.
 */
int gpuos_fusion_owns(int dev, const void *p, size_t n);

/* True while a capture is in progress (no task is accepted then; relaxed: a hint). */
bool gpuos_fusion_capturing(void);

/* Memory may be unmapped, released or freed without a wait: forget the ranges owns knew. */
void gpuos_fusion_forget(void);

#endif
