/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_H
#define GPUOS_H

/*
 * The GPUOS engine as a C API: the interposer uses it for diverted launches; tests and
 * benchmarks drive it directly. Streams are CUstream/cudaStream_t values (NULL: the legacy
 * default stream, or the per-thread one with GPUOS_PTSZ). Every call returns 0 or a negative
 * errno. Thread-safe.
 *
 *   gpuos_init()                      start the engine for the current device (or device 0)
 *   gpuos_submit(s, op, args, n)      one task of operator op on stream s, in s's order
 *   gpuos_flush(s)                    close s's batch: later work on s (and the host, after a
 *                                     stream sync) waits for its tasks; any CUDA call on s
 *                                     does this by itself while the shim is loaded
 *   gpuos_op_define/update/rollback   injected operators (NVRTC) under a logical id
 *   gpuos_park() / gpuos_unpark()     drain and keep workers off (around whole-device waits)
 *   gpuos_shutdown()                  drain, stop the workers, free everything
 */
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built-in operators (kernels/task.h has their argument layouts). */
#define GPUOS_OP_NOP  0u
#define GPUOS_OP_AXPB 1u
#define GPUOS_OP_ADD  2u
#define GPUOS_OP_FILL 3u
#define GPUOS_OP_INC  4u
#define GPUOS_OP_SPIN 5u
/* Injected operators: the id gpuos_op_define returns (>= GPUOS_OP_INJECTED). */
#define GPUOS_OP_INJECTED 64u

/* gpuos_submit flags */
#define GPUOS_PTSZ 0x1u /* a NULL stream means this thread's per-thread default stream */

/* Zero fields take the shim's config (options workers, worker_threads, worker_idle_ms,
 * cache_dir; GPUOS_WORKERS etc.), whose defaults are 2, 512, 100 ms, $XDG_CACHE_HOME/gpuos. */
struct gpuos_options {
	unsigned rings;	       /* worker kernels, one block (one SM) each, 1..16 */
	unsigned threads;      /* threads a worker block, 64..1024; one warp fetches */
	unsigned idle_ms;      /* a worker exits after this long without tasks */
	const char *cache_dir; /* compiled operators */
};

int gpuos_init(const struct gpuos_options *opt); /* NULL: defaults (or GPUOS_* env) */
int gpuos_shutdown(void);

/*
 * Queue one task. @args: up to 6 64-bit arguments of the operator. -EAGAIN: the operator is
 * not ready yet (still compiling) or the workers are parked for a call that waits for the
 * whole device; -EBUSY: a stream capture is in progress; -EINPROGRESS: another thread is
 * inside a CUDA call on the stream, or on one it synchronises with (the task could land
 * before that call's work); -ENOSPC: too many streams; in each case nothing was queued and
 * the caller runs the work itself.
 */
int gpuos_submit(void *stream, unsigned op, const uint64_t *args, unsigned nargs, unsigned flags);
int gpuos_flush(void *stream, unsigned flags);

/*
 * Define an injected operator from CUDA C++ source: a `__device__` function with
 * GPUOS_OP_SIGNATURE (kernels/task.h, available as "gpuos_task.h"; it uses gpuos_tid(),
 * gpuos_nthreads() and gpuos_sync(), not threadIdx/blockDim/__syncthreads) and
 * `extern "C" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = my_op;`. Compiled in the
 * background with the worker's register cap (or loaded from the cache); until ready,
 * submits say -EAGAIN.
 * Returns the operator id (>= GPUOS_OP_INJECTED) or a negative errno.
 */
int gpuos_op_define(const char *name, const char *src);
/* Replace the operator's code (compiled now, in this thread); tasks queued before keep the old
 * version, tasks after get the new one. version: any number the caller uses to tell them. */
int gpuos_op_update(unsigned op, const char *src);
/* Back to the previous version, if it is still loaded. */
int gpuos_op_rollback(unsigned op);
/* 1 ready, 0 compiling, < 0 failed. */
int gpuos_op_ready(unsigned op);
/* Wait until ready or failed (tests, benchmarks). */
int gpuos_op_wait(unsigned op);
/* gpuos_op_wait for every operator defined so far (the shim's catalog and lifted ones
 * included): 0, or the first failure's errno. */
int gpuos_op_wait_all(void);

int gpuos_park(void);
int gpuos_unpark(void);

/* Counters for tests and benchmarks. */
struct gpuos_stats {
	uint64_t submitted, batches_opened, batches_closed, worker_launches, parks;
	uint64_t op_swaps, op_retired;
	uint64_t jit_compiles, jit_hits, nvrtc_loaded; /* operator builds; NVRTC dlopen'ed */
	/* where the workers' time went, summed over the runs that have exited (kernels/task.h
	 * enum gpuos_prof): fetches, tasks fetched, fetch ns, waiting-for-room ns, stretches,
	 * compute waiting-for-tasks ns, waiting-on-go ns */
	uint64_t prof[7];
	uint64_t closes_elided; /* batch closes that needed no wait: their tasks had run */
};
void gpuos_get_stats(struct gpuos_stats *st);

/*
 * The launch report (per kernel: launches, diverted, and why the others fell through) as it
 * stands now, written to @dest: "stderr", FILE.json (JSON) or FILE (a table); %p in it is the
 * pid; NULL: where the `report` setting says. Under the shim only (libgpuos.a alone counts
 * no launches). 0, -EINVAL (nowhere to write), or -errno of the write.
 */
int gpuos_report(const char *dest);

/* Diagnostics: each worker's ring and state, and every open batch, as text on @fd (no lock
 * taken: for a program that seems stuck). */
void gpuos_debug_dump(int fd);

#ifdef __cplusplus
}
#endif
#endif
