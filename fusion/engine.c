// SPDX-License-Identifier: MIT
/*
 * The per-device engine: worker module, rings, go/done arrays, worker streams, and the worker
 * lifecycle. A worker is one block on a non-blocking stream of its own, per ring; it starts
 * when a publication finds its ring's worker EXITED, leaves after idle_ns without tasks, and
 * is parked around calls that wait for the whole device (DESIGN.md invariant 4): told to
 * leave once its ring is empty and waited for; until unparked, workers started for new
 * tasks drain them and leave, never waiting idle.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomics.h"
#include "common/log.h"
#include "common/where.h"
#include "fusion/engine.h"
#include "fusion/fusion.h"
#include "kernels/cu.h"

extern const char gpuos_worker_fatbin[];

__thread int gpuos_fusion_in_engine;

struct gpuos_engines gpuos_engines = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

/* The worker's parameters (kernels/worker.cu struct gpuos_worker_params). */
struct worker_params {
	struct gpuos_task *tasks;
	struct gpuos_ring_sh *sh;
	uint32_t *go, *done;
	unsigned long long idle_ns;
	unsigned poll_ns;
};

#define RING_BYTES (GPUOS_RING_SIZE * sizeof(struct gpuos_task) + sizeof(struct gpuos_ring_sh))
#define ARENA_OFF(e) (((e)->nrings * RING_BYTES + 4095) & ~(size_t)4095)
#define ARENA_BYTES  ((size_t)GPUOS_ARENA_CHUNKS * GPUOS_ARENA_CHUNK)

/* Run driver calls as the engine's own: the driver-call observer ignores them. */
#define ENGINE_ENTER() (gpuos_fusion_in_engine++)
#define ENGINE_LEAVE() (gpuos_fusion_in_engine--)

/* Make @ctx current for a moment; returns the previous one to restore. */
static CUcontext ctx_push(const struct gpuos_cu *cu, CUcontext ctx)
{
	CUcontext cur = NULL;

	cu->cuCtxGetCurrent(&cur);
	if (cur != ctx)
		cu->cuCtxSetCurrent(ctx);
	return cur;
}

static void ctx_pop(const struct gpuos_cu *cu, CUcontext ctx, CUcontext prev)
{
	if (prev != ctx)
		cu->cuCtxSetCurrent(prev);
}

int gpuos_engine_current_dev(void)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	CUcontext c = NULL;
	CUdevice d = 0;

	if (!cu)
		return 0;
	ENGINE_ENTER();
	if (cu->cuCtxGetCurrent(&c) || !c || cu->cuCtxGetDevice(&d))
		d = 0;
	ENGINE_LEAVE();
	return (int)d;
}

/* The range of @e's memory around @p, from the driver: 0 with [*start, *end), or -EFAULT. */
static int owns_query(struct gpuos_engine *e, uint64_t p, uint64_t *start, uint64_t *end)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	CUpointer_attribute at[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
				    CU_POINTER_ATTRIBUTE_CONTEXT,
				    CU_POINTER_ATTRIBUTE_IS_MANAGED,
				    CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
				    CU_POINTER_ATTRIBUTE_RANGE_SIZE};
	/* each attribute's value, zeroed: IS_MANAGED writes fewer bytes than 8 */
	uint64_t type = 0, managed = 0, size = 0;
	CUcontext ctx = NULL;
	void *data[] = {&type, &ctx, &managed, start, &size};
	CUresult r;

	*start = 0;
	ENGINE_ENTER();
	r = cu->cuPointerGetAttributes(5, at, data, (CUdeviceptr)p);
	ENGINE_LEAVE();
	if (r != CUDA_SUCCESS || (unsigned)type != CU_MEMORYTYPE_DEVICE || managed ||
	    ctx != e->ctx || *start + size < *start)
		return -EFAULT;
	*end = *start + size;
	return 0;
}

int gpuos_engine_owns(struct gpuos_engine *e, uint64_t p, uint64_t n)
{
	/* acquire: pairs with the release of each bump (gpuos_fusion_forget, park): a range
	 * remembered before a bump is not used after it */
	uint64_t epoch = load_acquire(&gpuos_engines.epoch), start, end;
	unsigned i;

	if (!gpuos_cu_get() || !p || !n || p + n < p)
		return -EFAULT;
	pthread_mutex_lock(&e->olock);
	for (i = 0; i < GPUOS_OWNED; i++)
		if (e->owned[i].epoch == epoch && e->owned[i].start <= p &&
		    p + n <= e->owned[i].end)
			break;
	pthread_mutex_unlock(&e->olock);
	if (i < GPUOS_OWNED)
		return 0;
	if (owns_query(e, p, &start, &end) || p < start || p + n > end)
		return -EFAULT;
	/* remembered under the epoch read before the query: a bump meanwhile voids it */
	pthread_mutex_lock(&e->olock);
	i = e->onext++ % GPUOS_OWNED;
	e->owned[i].start = start;
	e->owned[i].end = end;
	e->owned[i].epoch = epoch;
	pthread_mutex_unlock(&e->olock);
	return 0;
}

static struct gpuos_ring_sh *ring_sh(struct gpuos_engine *e, unsigned r)
{
	return (struct gpuos_ring_sh *)((char *)e->pinned + r * RING_BYTES +
					GPUOS_RING_SIZE * sizeof(struct gpuos_task));
}

static int launch(struct gpuos_engine *e, unsigned r)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	size_t off_tasks = r * RING_BYTES;
	struct worker_params p = {
	    .tasks = (struct gpuos_task *)(uintptr_t)(e->pinned_dev + off_tasks),
	    .sh = (struct gpuos_ring_sh *)(uintptr_t)(e->pinned_dev + off_tasks +
						      GPUOS_RING_SIZE * sizeof(struct gpuos_task)),
	    .go = (uint32_t *)(uintptr_t)e->go,
	    .done = (uint32_t *)(uintptr_t)e->done,
	    .idle_ns = e->idle_ns,
	    .poll_ns = e->poll_ns,
	};
	void *args[] = {&p};
	CUcontext prev;
	int err = 0;

	ENGINE_ENTER();
	prev = ctx_push(cu, e->ctx);
	gpuos_where("worker launch, ring", r);
	GPUOS_CU_GOTO(
	    cu->cuLaunchKernel(e->wfn, 1, 1, 1, e->threads, 1, 1, GPUOS_SMEM_WINDOW, e->wstream[r],
			       args, NULL),
	    err, out);
	fetch_add_relaxed(&e->launches, 1);
out:
	gpuos_where(NULL, 0);
	ctx_pop(cu, e->ctx, prev);
	ENGINE_LEAVE();
	return err;
}

/*
 * While parked, the ring's stop flag is set: a worker started now drains what is published and
 * leaves, it never waits idle, so a published task is never stranded behind a park. No start
 * happens during the call parked for: the park fenced submits (gpuos_batch_park_begin) and
 * drained what they had reserved, and a start with nothing left to run launches nothing (a
 * launch there could queue in the driver behind that call).
 */
void gpuos_engine_start_worker(struct gpuos_engine *e, unsigned r)
{
	_Atomic uint32_t *state = (_Atomic uint32_t *)&ring_sh(e, r)->sh_state;

	/* Also called when the ring read STARTING: another thread may still be inside the
	 * launch (it holds the lock). Our task is not ready (gpuos_batch_ready) before that
	 * launch returned: a stream made to wait for the task could hold up a synchronous call
	 * of a third thread, and that call can hold up the launch in the driver (a pageable
	 * cudaMemcpy keeps launches of every thread out until it is done). */
	gpuos_where("worker lock, to start ring", r);
	pthread_mutex_lock(&e->wlock);
	gpuos_where(NULL, 0);
	/* acquire: pairs with the worker's release of EXITED (try_exit). Nothing to do if
	 * every reserved task has run (a park's drain worker ran ours): a needless launch
	 * during the call parked for would wait behind it. */
	if (!load_relaxed(&e->dead) && load_acquire(state) == GPUOS_WORKER_EXITED &&
	    gpuos_ring_tail(&e->ring[r]) != gpuos_ring_done(&e->ring[r])) {
		/* STARTING keeps other producers from launching more; a worker that turned
		 * back from exiting may overwrite it with RUNNING, which is just as good */
		store_relaxed(state, GPUOS_WORKER_STARTING);
		if (launch(e, r)) {
			store_relaxed(state, GPUOS_WORKER_EXITED);
			gpuos_err("cannot start the worker: queued tasks wait for the next try");
		}
	}
	pthread_mutex_unlock(&e->wlock);
}

/*
 * Park: every task reserved on a ring runs and every worker leaves before we return, so the
 * call we park for (a device sync, a module load, a reset) finds no worker and no stream
 * waiting on a task that no worker would run. Submits say -EAGAIN meanwhile (the caller,
 * gpuos_fusion_park, fenced them first), so the drain ends; a descriptor still being written
 * when a worker left gets a new drain worker.
 */
void gpuos_engine_park(struct gpuos_engine *e)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	CUcontext prev;
	CUresult failed;
	bool pending;

	gpuos_where("worker lock, to park", 0);
	pthread_mutex_lock(&e->wlock);
	gpuos_where(NULL, 0);
	if (load_relaxed(&e->dead)) {
		pthread_mutex_unlock(&e->wlock);
		return;
	}
	if (e->park_depth++ == 0) {
		fetch_add_relaxed(&e->parks, 1);
		for (unsigned r = 0; r < e->nrings; r++)
			/* release: nothing to order but the flag; the worker reads it with an
			 * acquire when its ring is empty */
			store_release((_Atomic uint32_t *)&ring_sh(e, r)->sh_stop, 1);
		ENGINE_ENTER();
		prev = ctx_push(cu, e->ctx);
		do {
			pending = false;
			failed = CUDA_SUCCESS;
			for (unsigned r = 0; r < e->nrings; r++) {
				gpuos_where("park: worker stream sync, ring", r);
				/* drained and left */
				CUresult rc = cu->cuStreamSynchronize(e->wstream[r]);
				if (rc != CUDA_SUCCESS)
					failed = rc;
			}
			gpuos_where(NULL, 0);
			/* A worker that faulted (an illegal address...) left the context broken:
			 * its tasks will never be done and every CUDA call now fails. Waiting for
			 * them would hang the program (at exit, or in its next sync). */
			if (failed != CUDA_SUCCESS) {
				gpuos_cu_err(failed, "worker", __FILE__, __LINE__);
				gpuos_err("the GPU context failed under the workers: the engine stops; "
					  "its queued tasks are lost");
				store_relaxed(&e->dead, true);
				e->park_depth = 0;
				break;
			}
			for (unsigned r = 0; r < e->nrings; r++) {
				_Atomic uint32_t *state =
				    (_Atomic uint32_t *)&ring_sh(e, r)->sh_state;
				if (gpuos_ring_tail(&e->ring[r]) == gpuos_ring_done(&e->ring[r]))
					continue;
				pending = true;
				/* acquire: pairs with the worker's release of EXITED */
				if (load_acquire(state) == GPUOS_WORKER_EXITED) {
					store_relaxed(state, GPUOS_WORKER_STARTING);
					if (launch(e, r))
						store_relaxed(state, GPUOS_WORKER_EXITED);
				}
			}
			if (pending)
				sched_yield();
		} while (pending);
		ctx_pop(cu, e->ctx, prev);
		ENGINE_LEAVE();
	}
	pthread_mutex_unlock(&e->wlock);
}

void gpuos_engine_kill(struct gpuos_engine *e)
{
	pthread_mutex_lock(&e->wlock);
	store_relaxed(&e->dead, true);
	e->park_depth = 0;
	pthread_mutex_unlock(&e->wlock);
}

void gpuos_engine_unpark(struct gpuos_engine *e)
{
	bool restart[GPUOS_MAX_RINGS] = {0};

	pthread_mutex_lock(&e->wlock);
	if (!load_relaxed(&e->dead) && e->park_depth > 0 && --e->park_depth == 0) {
		for (unsigned r = 0; r < e->nrings; r++) {
			struct gpuos_ring *ring = &e->ring[r];
			store_release((_Atomic uint32_t *)&ring_sh(e, r)->sh_stop, 0);
			/* a drain worker may have left with a descriptor still being written */
			restart[r] = gpuos_ring_tail(ring) != gpuos_ring_done(ring);
		}
	}
	pthread_mutex_unlock(&e->wlock);
	for (unsigned r = 0; r < e->nrings; r++)
		if (restart[r])
			gpuos_engine_start_worker(e, r);
}

void gpuos_engine_done(struct gpuos_engine *e, uint32_t *done)
{
	for (unsigned r = 0; r < e->nrings; r++)
		done[r] = gpuos_ring_done(&e->ring[r]);
}

void gpuos_engine_tails(struct gpuos_engine *e, uint32_t *tails)
{
	for (unsigned r = 0; r < e->nrings; r++)
		tails[r] = gpuos_ring_tail(&e->ring[r]);
}

int gpuos_engine_table_write(struct gpuos_engine *e, unsigned phys, uint64_t fn)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	static __thread uint64_t staging; /* pageable source: the copy completes before return */
	CUcontext prev;
	int err = 0;

	ENGINE_ENTER();
	prev = ctx_push(cu, e->ctx);
	staging = fn;
	GPUOS_CU_GOTO(cu->cuMemcpyHtoDAsync(e->table + phys * sizeof(uint64_t), &staging,
					    sizeof(staging), e->aux),
		      err, out);
	/* the entry is in device memory before any task naming it is published (the caller
	 * publishes after this returns; the worker reads the entry at L2) */
	GPUOS_CU_GOTO(cu->cuStreamSynchronize(e->aux), err, out);
out:
	ctx_pop(cu, e->ctx, prev);
	ENGINE_LEAVE();
	return err;
}

static int create(int dev, struct gpuos_engine **out)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	struct gpuos_engines *g = &gpuos_engines;
	struct gpuos_engine *e;
	CUcontext prev = NULL;
	int err = 0, major = 0, minor = 0;
	size_t bytes;

	if (!cu)
		return -ENODEV;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->dev = dev;
	e->nrings = g->rings;
	e->threads = g->threads;
	e->idle_ns = (uint64_t)g->idle_ms * 1000000ull;
	/* pause between looks at an empty ring: each look is a PCIe read of the line the next
	 * producer writes; GPUOS_POLL_NS tunes it for measurements */
	e->poll_ns = getenv("GPUOS_POLL_NS") ? (unsigned)atoi(getenv("GPUOS_POLL_NS")) : 200;
	pthread_mutex_init(&e->wlock, NULL);
	pthread_mutex_init(&e->olock, NULL);

	ENGINE_ENTER();
	GPUOS_CU_GOTO(cu->cuInit(0), err, fail);
	cu->cuCtxGetCurrent(&prev);
	GPUOS_CU_GOTO(cu->cuDevicePrimaryCtxRetain(&e->ctx, dev), err, fail);
	GPUOS_CU_GOTO(cu->cuCtxSetCurrent(e->ctx), err, fail);
	cu->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
	cu->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
	e->sm = major * 10 + minor;
	GPUOS_CU_GOTO(cu->cuModuleLoadData(&e->wmod, gpuos_worker_fatbin), err, fail);
	GPUOS_CU_GOTO(cu->cuModuleGetFunction(&e->wfn, e->wmod, "gpuos_worker"), err, fail);
	GPUOS_CU_GOTO(cu->cuModuleGetGlobal(&e->table, &bytes, e->wmod, "gpuos_op_table"), err,
		      fail);
	/* An operator called through the table runs in the worker's register allocation:
	 * one that uses more faults (illegal instruction). They are compiled to fit. */
	GPUOS_CU_GOTO(cu->cuFuncGetAttribute(&e->regs, CU_FUNC_ATTRIBUTE_NUM_REGS, e->wfn), err,
		      fail);
	/* the operators' shared-memory window (kernels/task.h) is its dynamic shared memory;
	 * with the queue it is over the 48 KiB a launch gets without asking */
	GPUOS_CU_GOTO(cu->cuFuncSetAttribute(e->wfn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
					     GPUOS_SMEM_WINDOW),
		      err, fail);
	GPUOS_CU_GOTO(cu->cuMemAlloc(&e->go, 2 * GPUOS_MAX_SLOTS * sizeof(uint32_t)), err, fail);
	e->done = e->go + GPUOS_MAX_SLOTS * sizeof(uint32_t);
	GPUOS_CU_GOTO(cu->cuStreamCreate(&e->aux, CU_STREAM_NON_BLOCKING), err, fail);
	GPUOS_CU_GOTO(cu->cuMemsetD8Async(e->go, 0, 2 * GPUOS_MAX_SLOTS * sizeof(uint32_t), e->aux),
		      err, fail);
	GPUOS_CU_GOTO(cu->cuStreamSynchronize(e->aux), err, fail);
	/* the rings, then the parameter arena (fusion/arena.h) */
	GPUOS_CU_GOTO(cu->cuMemHostAlloc(&e->pinned, ARENA_OFF(e) + ARENA_BYTES,
					 CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP),
		      err, fail);
	memset(e->pinned, 0, ARENA_OFF(e) + ARENA_BYTES);
	GPUOS_CU_GOTO(cu->cuMemHostGetDevicePointer(&e->pinned_dev, e->pinned, 0), err, fail);
	gpuos_arena_init(&e->arena, (char *)e->pinned + ARENA_OFF(e),
			 e->pinned_dev + ARENA_OFF(e));
	for (unsigned r = 0; r < e->nrings; r++) {
		GPUOS_CU_GOTO(cu->cuStreamCreate(&e->wstream[r], CU_STREAM_NON_BLOCKING), err,
			      fail);
		gpuos_ring_init(&e->ring[r],
				(struct gpuos_task *)((char *)e->pinned + r * RING_BYTES),
				ring_sh(e, r));
	}
	cu->cuCtxSetCurrent(prev ? prev : e->ctx);
	ENGINE_LEAVE();
	gpuos_info("engine on device %d (sm_%d): %u worker(s) of %u threads, %d registers, idle "
		   "exit %u ms",
		   dev, e->sm, e->nrings, e->threads, e->regs, g->idle_ms);
	*out = e;
	return 0;
fail:
	if (prev)
		cu->cuCtxSetCurrent(prev);
	ENGINE_LEAVE();
	gpuos_engine_destroy(e);
	return err;
}

CUstreamCaptureMode gpuos_engine_relaxed(void)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;

	if (cu)
		cu->cuThreadExchangeStreamCaptureMode(&m);
	return m;
}

void gpuos_engine_restore(CUstreamCaptureMode m)
{
	const struct gpuos_cu *cu = gpuos_cu_get();

	if (cu)
		cu->cuThreadExchangeStreamCaptureMode(&m);
}

int gpuos_engine_get(int dev, struct gpuos_engine **out)
{
	struct gpuos_engines *g = &gpuos_engines;
	struct gpuos_engine *e;
	int err = 0;

	if (dev < 0 || dev >= GPUOS_MAX_DEVICES)
		return -ENODEV;
	/* acquire: pairs with the release below; the engine's fields are set */
	e = atomic_load_explicit(&g->eng[dev], memory_order_acquire);
	if (e) {
		*out = e;
		return 0;
	}
	pthread_mutex_lock(&g->lock);
	e = atomic_load_explicit(&g->eng[dev], memory_order_relaxed);
	if (!e) {
		CUstreamCaptureMode m = gpuos_engine_relaxed();

		err = create(dev, &e);
		gpuos_engine_restore(m);
		if (!err) {
			g->batches.rings[dev] = e->ring;
			/* release: rings[dev] before nrings; pairs with the acquire in
			 * gpuos_batch_submit (which may run under the batch lock while we are
			 * here: no lock of ours is taken under that one) */
			store_release(&g->batches.nrings[dev], e->nrings);
			atomic_store_explicit(&g->eng[dev], e, memory_order_release);
		}
	}
	pthread_mutex_unlock(&g->lock);
	if (!err)
		*out = e;
	return err;
}

void gpuos_engine_destroy(struct gpuos_engine *e)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	CUcontext prev;

	if (!e)
		return;
	if (cu && e->ctx) {
		ENGINE_ENTER();
		prev = ctx_push(cu, e->ctx);
		for (unsigned r = 0; r < e->nrings; r++)
			if (e->wstream[r])
				cu->cuStreamDestroy(e->wstream[r]);
		if (e->aux)
			cu->cuStreamDestroy(e->aux);
		if (e->pinned)
			cu->cuMemFreeHost(e->pinned);
		if (e->go)
			cu->cuMemFree(e->go);
		if (e->wmod)
			cu->cuModuleUnload(e->wmod);
		ctx_pop(cu, e->ctx, prev);
		ENGINE_LEAVE();
	}
	free(e);
}
