/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_FUSION_ENGINE_H
#define GPUOS_FUSION_ENGINE_H

/*
 * One engine per device: the worker module, its rings in pinned memory, the go/done arrays,
 * the worker streams, and the worker lifecycle (start on demand, idle exit, park). Batches
 * (fusion/batch.c) are process-wide: a stream slot is tied to one device.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <cuda.h>

#include "fusion/arena.h"
#include "fusion/batch.h"
#include "fusion/ring.h"
#include "kernels/table.h"

#define GPUOS_MAX_DEVICES 16
#define GPUOS_OWNED	  16 /* device ranges an engine remembers for copies */

struct gpuos_op {
	char name[64];
	_Atomic int ready;	  /* 1 ready, 0 building, < 0 failed (errno) */
	struct gpuos_alias alias; /* under the batch lock */
	uint32_t version;
	bool used;
	int dev; /* the device whose table holds it (operators are single-device) */
};

struct gpuos_engine {
	int dev;
	CUcontext ctx;
	CUmodule wmod;
	CUfunction wfn;
	CUdeviceptr table;    /* gpuos_op_table in the worker module */
	CUdeviceptr go, done; /* GPUOS_MAX_SLOTS each */
	CUstream wstream[GPUOS_MAX_RINGS], aux;
	void *pinned; /* rings' descriptors and shared fields */
	CUdeviceptr pinned_dev;
	struct gpuos_ring ring[GPUOS_MAX_RINGS];
	struct gpuos_arena arena; /* lifted launches' parameter buffers */
	unsigned nrings, threads;
	uint64_t idle_ns;
	unsigned poll_ns;
	int sm;
	int regs; /* the worker's registers a thread: injected operators may use no more */

	/* ranges gpuos_engine_owns confirmed, each valid while its epoch is the engines' */
	pthread_mutex_t olock;
	unsigned onext; /* the entry to replace next */
	struct {
		uint64_t start, end, epoch;
	} owned[GPUOS_OWNED];

	pthread_mutex_t wlock; /* worker launches and parking */
	int park_depth;
	_Atomic bool dead; /* its context was reset or failed: nothing may touch its memory */

	_Atomic uint64_t launches, parks;
};

struct gpuos_engines {
	pthread_mutex_t lock; /* creation, ops */
	struct gpuos_engine *_Atomic eng[GPUOS_MAX_DEVICES];
	struct gpuos_batches batches;
	struct gpuos_op ops[GPUOS_MAX_OPS];
	unsigned nops;
	unsigned rings, threads, idle_ms;
	char cache_dir[4096];
	_Atomic bool started;
	_Atomic bool exiting; /* the process exits: no engine starts again */
	_Atomic uint64_t epoch; /* +1 whenever memory may go away: remembered ranges lapse */
	_Atomic uint64_t swaps, retired;
};
extern struct gpuos_engines gpuos_engines;

/*
 * This thread's capture mode set to relaxed, the old one returned for gpuos_engine_restore:
 * around the engine's allocations, module loads and syncs of its own streams, which a capture
 * in global mode on another thread would otherwise take for unsafe and invalidate (CUDA's
 * rule for libraries).
 */
CUstreamCaptureMode gpuos_engine_relaxed(void);
void gpuos_engine_restore(CUstreamCaptureMode m);

/* The engine of @dev, created on first use (needs a current or primary context). */
int gpuos_engine_get(int dev, struct gpuos_engine **out);
/* The device of the calling thread's current context; 0 if none. */
int gpuos_engine_current_dev(void);
/* 0 if [p, p + n) lies in one allocation of device memory (not managed) that @e's context
 * owns, so @e's workers may read and write it; -EFAULT if not, or if the driver cannot say.
 * Asks the driver only for ranges not confirmed since the last gpuos_engines.epoch bump. */
int gpuos_engine_owns(struct gpuos_engine *e, uint64_t p, uint64_t n);
/* Make sure ring @r has a worker (after a publication found it EXITED). Never blocks on a
 * park: a worker started while parked drains the ring and leaves. */
void gpuos_engine_start_worker(struct gpuos_engine *e, unsigned r);
/* Drain and stop every worker of @e, keep them off until unpark. */
void gpuos_engine_park(struct gpuos_engine *e);
void gpuos_engine_unpark(struct gpuos_engine *e);
/* Each ring's finished count / reserve position (for retirement). */
void gpuos_engine_done(struct gpuos_engine *e, uint32_t *done);
void gpuos_engine_tails(struct gpuos_engine *e, uint32_t *tails);
/* Write table entry @phys = @fn (device address), ordered before later publications. */
int gpuos_engine_table_write(struct gpuos_engine *e, unsigned phys, uint64_t fn);
void gpuos_engine_destroy(struct gpuos_engine *e);
/* @e's context was reset under it: mark it dead, wake whoever waits to start a worker. */
void gpuos_engine_kill(struct gpuos_engine *e);

#endif
