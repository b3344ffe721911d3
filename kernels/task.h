/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_KERNELS_TASK_H
#define GPUOS_KERNELS_TASK_H

/*
 * The ABI between the host (fusion/) and the worker (kernels/worker.cu): task descriptors,
 * the ring's shared fields and the operator table. Plain C, included by both sides.
 *
 * Ownership of every shared field (one writer each):
 *   ring tasks[]          host producers (the body, then seq with a release store)
 *   sh_head, sh_done,     the worker: tasks copied out / tasks finished; host reads them
 *   sh_done_sys           the worker: tasks finished, released at system scope
 *   sh_state              the worker, except GPUOS_WORKER_STARTING written by the host under
 *                         its launch lock while no worker of that ring can be running
 *   sh_stop               the host (park); the worker reads it when its ring is empty
 *   sh_tail               host producers (fetch-add: positions handed out); the worker reads
 *                         it before it leaves: it never leaves a handed-out position behind
 *   go[slot]              the application's stream (cuStreamWriteValue32 at batch open)
 *   done[slot]            the worker (the stream's cuStreamWaitValue32 at batch close)
 */
#include <stdint.h>

#define GPUOS_RING_ORDER  12 /* 4096 descriptors a ring */
#define GPUOS_RING_SIZE	  (1u << GPUOS_RING_ORDER)
#define GPUOS_MAX_RINGS	  16		      /* = most worker kernels a device */
#define GPUOS_MAX_SLOTS	  1024		      /* streams with tasks at once */
#define GPUOS_BUILTIN_OPS 64		      /* op < this: built in, switch dispatch */
#define GPUOS_MAX_OPS	  1024		      /* injected logical operators */
#define GPUOS_PHYS_OPS	  (2 * GPUOS_MAX_OPS) /* two physical slots each */
#define GPUOS_TASK_ARGS	  6
#define GPUOS_FETCH	  32 /* descriptors fetched at once: one warp, one lane each */

/* One task, 64 bytes, in pinned host memory. */
struct gpuos_task {
	uint32_t seq;  /* ring position + 1: the descriptor is valid; stored last */
	uint16_t op;   /* < GPUOS_BUILTIN_OPS built-in; else GPUOS_BUILTIN_OPS + physical slot */
	uint16_t slot; /* stream slot: go[slot] gates it, done[slot] reports it */
	uint32_t gate; /* != 0: run only once (int32_t)(go[slot] - gate) >= 0 */
	uint32_t tseq; /* done[slot] becomes tseq once this task and all before it ran */
	uint64_t a[GPUOS_TASK_ARGS]; /* the operator's arguments */
};

/*
 * A task with a parameter block (fusion/arena.h): op has GPUOS_TASK_PBLK set, and a[2] is the
 * block's arena address (4096-aligned) plus, in its low bits, the block's 16-byte units less
 * one. The worker's fetcher copies a block of up to GPUOS_PBLK_SLOT bytes into shared memory
 * with its descriptor (so the operator does not wait on the bus for it) and points a[2] at
 * the copy; a larger one it points at in the arena. Operators see op without the flag and
 * a[2] the block's plain address, in shared or mapped host memory (generic loads only).
 */
#define GPUOS_TASK_PBLK	    0x8000u
#define GPUOS_PBLK_LEN_MASK 0xfffu
#define GPUOS_PBLK_SLOT	    256u /* bytes a queue entry's copy may have (sm_80 and later) */
#if GPUOS_BUILTIN_OPS + GPUOS_PHYS_OPS > GPUOS_TASK_PBLK
#error "operator numbers reach the task's parameter-block flag"
#endif

/* Worker states in sh_state. */
#define GPUOS_WORKER_EXITED   0u /* no worker of this ring runs or will look at the ring */
#define GPUOS_WORKER_STARTING 1u /* host launched one; it has not started yet */
#define GPUOS_WORKER_RUNNING  2u

/* Worker profile counters (nanoseconds unless a count). */
enum gpuos_prof {
	GPUOS_PROF_FETCHES,   /* fetches that found tasks */
	GPUOS_PROF_FETCHED,   /* tasks fetched */
	GPUOS_PROF_FETCH_NS,  /* from the seq loads to the queue update, summed */
	GPUOS_PROF_ROOM_NS,   /* fetcher waiting for queue room */
	GPUOS_PROF_STRETCHES, /* runs of queued tasks the compute warps took */
	GPUOS_PROF_STARVE_NS, /* compute warps waiting for tasks */
	GPUOS_PROF_GATE_NS,   /* compute warps waiting on a batch's go */
	GPUOS_PROF_COUNT
};

/*
 * The fields of a ring shared with the worker, in pinned host memory, one 128-byte line each:
 * the worker's frequent stores to sh_head/sh_done must not evict what producers read often.
 */
struct gpuos_ring_sh {
	uint32_t sh_head; /* worker: descriptors copied out (free for producers) */
	uint32_t pad0[31];
	uint32_t sh_state; /* see above; changes only when a worker starts or leaves */
	uint32_t pad1[31];
	uint32_t sh_done; /* worker: descriptors whose tasks finished */
	/* worker: the same count, stored with a system-scope release whenever the worker has
	 * run out of queued tasks (never once per stretch: the fence costs ~0.6 us). Whoever
	 * acquires it sees the tasks' writes: a batch close that finds its tasks counted here
	 * puts no wait on the stream (fusion/batch.c). */
	uint32_t sh_done_sys;
	uint32_t pad2[30];
	uint32_t sh_stop; /* host: exit once the ring is empty */
	uint32_t pad3[31];
	/* host: the next position to hand out. Written by producers only (each reservation),
	 * read by the worker only when it would leave: it stays while a position before this
	 * one is still being filled. Leaving with one, a task published after it (its producer
	 * saw RUNNING, so its stream may already wait for it) would wait for a relaunch, and a
	 * launch can be held up in the driver by a synchronous copy waiting on that stream. */
	uint32_t sh_tail;
	uint32_t pad5[31];
	/* worker: where its time went, added at each exit (gpuos_get_stats; benchmarks) */
	uint64_t sh_prof[GPUOS_PROF_COUNT];
	/* worker: the gate it is waiting on, if any (gpuos_debug_dump) */
	uint32_t sh_wait_on, sh_wait_slot, sh_wait_gate, sh_wait_go;
	uint64_t pad4[14 - GPUOS_PROF_COUNT];
};

/*
 * Built-in operators (direct dispatch in the worker's switch). Each takes its arguments in
 * a[]: pointers and element counts as uint64_t, float scalars as their bits in the low half.
 */
enum gpuos_builtin_op {
	GPUOS_OP_NOP = 0,  /* nothing; orders and counts */
	GPUOS_OP_AXPB = 1, /* y[i] = a * x[i] + b:  a0 y, a1 x, a2 n, a3 a, a4 b */
	GPUOS_OP_ADD = 2,  /* z[i] = x[i] + y[i]:  a0 z, a1 x, a2 y, a3 n */
	GPUOS_OP_FILL = 3, /* y[i] = v:            a0 y, a1 n, a2 v (bits) */
	GPUOS_OP_INC = 4,  /* y[i] = y[i] + 1 (u32): a0 y, a1 n; counts how often a task ran */
	GPUOS_OP_SPIN = 5, /* wait a0 ns: a long task for parking/ordering tests */
	GPUOS_OP_BUILTIN_COUNT
};

/*
 * An injected operator: called once for a run of consecutive tasks of the same operator, by
 * every compute thread of the worker block (all threads but warp 0, which fetches tasks); it
 * runs them in order, with gpuos_sync() between dependent ones; smem is described below. It must use gpuos_tid(),
 * gpuos_nthreads() and gpuos_sync() instead of threadIdx.x, blockDim.x and __syncthreads().
 * Compiled with -rdc (absolute code addresses; see DESIGN.md).
 */
#define GPUOS_OP_SIGNATURE(name) void name(const struct gpuos_task *t, int ntasks, void *smem)
#define GPUOS_FETCH_WARPS	 1 /* warps of the block that fetch and do not compute */

/*
 * smem: the worker's shared-memory window, GPUOS_SMEM_WINDOW bytes (16-byte aligned) that an
 * operator may use as it likes between two gpuos_sync() (a lifted kernel's __shared__
 * variables live there). Its contents do not outlive the call.
 */
#define GPUOS_SMEM_WINDOW (44u * 1024)

/*
 * Stack an operator may use (its functions' frames added up), in bytes per thread: the worker
 * reserves it (kernels/worker.cu), the host refuses operators that need more. Every byte costs
 * local memory for every thread the GPU can hold (256: 69 MB on a 132-SM H100).
 */
#define GPUOS_OP_STACK 256u

#ifdef __CUDACC__
static __device__ __forceinline__ unsigned gpuos_tid(void)
{
	return threadIdx.x - 32 * GPUOS_FETCH_WARPS;
}

static __device__ __forceinline__ unsigned gpuos_nthreads(void)
{
	return blockDim.x - 32 * GPUOS_FETCH_WARPS;
}

/* The compute threads' barrier (named barrier 1; the fetching warp never joins it). */
static __device__ __forceinline__ void gpuos_sync(void)
{
	asm volatile("bar.sync 1, %0;" ::"r"(gpuos_nthreads()) : "memory");
}
#endif

#endif
