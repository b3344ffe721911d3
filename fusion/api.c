// SPDX-License-Identifier: MIT
/*
 * The C API (include/gpuos.h) and what the observers call (fusion/fusion.h): submit puts a
 * task into its stream's batch and onto a ring; everything else keeps stream order and the
 * workers' lifecycle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomics.h"
#include "common/probe.h"
#include "common/log.h"
#include "common/where.h"
#include "fusion/engine.h"
#include "fusion/fusion.h"
#include "include/gpuos.h"
#include "interpose/cupti.h"
#include "interpose/interpose.h"
#include "kernels/cu.h"
#include "kernels/jit.h"

#define GPUOS_EXPORT __attribute__((visibility("default")))

/* ---- the GPU side of batch.c ---- */

static struct gpuos_engine *engine_of(int dev)
{
	if (dev < 0 || dev >= GPUOS_MAX_DEVICES)
		return NULL;
	/* acquire: pairs with the release in gpuos_engine_get */
	return atomic_load_explicit(&gpuos_engines.eng[dev], memory_order_acquire);
}

static int describe(void *ctx, uintptr_t stream, int *dev, bool *blocking)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	unsigned flags = 0;
	CUdevice d = 0;
	int rc = 0;

	(void)ctx;
	gpuos_fusion_in_engine++;
	if (cu->cuStreamGetFlags((CUstream)stream, &flags) ||
	    cu->cuStreamGetDevice((CUstream)stream, &d))
		rc = -EINVAL;
	gpuos_fusion_in_engine--;
	if (rc)
		return rc;
	*blocking = !(flags & CU_STREAM_NON_BLOCKING);
	*dev = (int)d;
	return 0;
}

static CUstream cu_stream(uintptr_t stream)
{
	if (stream == GPUOS_STREAM_LEGACY)
		return CU_STREAM_LEGACY;
	if (stream == GPUOS_STREAM_PTDS)
		return CU_STREAM_PER_THREAD;
	return (CUstream)stream;
}

static int memop(int dev, uintptr_t stream, unsigned slot, uint32_t v, bool go)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	struct gpuos_engine *e = engine_of(dev);
	CUcontext prev = NULL;
	CUresult r;

	if (!e)
		return -ENODEV;
	gpuos_fusion_in_engine++;
	cu->cuCtxGetCurrent(&prev);
	if (prev != e->ctx)
		cu->cuCtxSetCurrent(e->ctx);
	gpuos_where(go ? "batch go write, slot" : "batch done wait, slot", slot);
	if (go) {
		CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;

		/* A capture our observer did not see begin (it began before the engine
		 * started) would record the write and the worker would run the task now: no
		 * batch opens on a capturing stream. Once a batch, not once a task. */
		if (cu->cuStreamIsCapturing(cu_stream(stream), &cs) ||
		    cs != CU_STREAM_CAPTURE_STATUS_NONE) {
			r = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
			goto out;
		}
		GPUOS_PROBE_BEGIN(m);
		/* default flags: a barrier before the write, so the stream's earlier work is
		 * visible to the worker once it sees the value (worker.cu gate) */
		r = cu->cuStreamWriteValue32(cu_stream(stream), e->go + slot * 4, v,
					     CU_STREAM_WRITE_VALUE_DEFAULT);
		GPUOS_PROBE_END(GO, m);
	} else {
		GPUOS_PROBE_BEGIN(m);
		/* signed compare: wraps safely; pairs with the worker's release of done */
		r = cu->cuStreamWaitValue32(cu_stream(stream), e->done + slot * 4, v,
					    CU_STREAM_WAIT_VALUE_GEQ);
		GPUOS_PROBE_END(WAIT, m);
	}
out:
	gpuos_where(NULL, 0);
	if (prev != e->ctx)
		cu->cuCtxSetCurrent(prev);
	gpuos_fusion_in_engine--;
	if (r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)
		return -EBUSY;
	return r == CUDA_SUCCESS
		   ? 0
		   : gpuos_cu_err(r, go ? "go write" : "done wait", __FILE__, __LINE__);
}

static int go(void *ctx, int dev, uintptr_t stream, unsigned slot, uint32_t batch)
{
	(void)ctx;
	return memop(dev, stream, slot, batch, true);
}

static int wait(void *ctx, int dev, uintptr_t stream, unsigned slot, uint32_t tseq)
{
	(void)ctx;
	return memop(dev, stream, slot, tseq, false);
}

static int resolve(void *ctx, unsigned op, int dev)
{
	struct gpuos_engines *g = ctx;
	unsigned l = op - GPUOS_BUILTIN_OPS;
	struct gpuos_engine *e = engine_of(dev);
	int p;

	if (l >= GPUOS_MAX_OPS || !g->ops[l].used)
		return -EINVAL;
	/* relaxed: a stale "alive" queues a task no worker runs, in a context that fails every
	 * call anyway (the park that marked it dead said so) */
	if (!e || load_relaxed(&e->dead))
		return -ENODEV;
	/* its code is in one device's table only */
	if (g->ops[l].dev != dev)
		return -EXDEV;
	p = gpuos_alias_phys(&g->ops[l].alias, l);
	return p < 0 ? p : GPUOS_BUILTIN_OPS + p;
}

static const struct gpuos_batch_ops batch_ops = {
    .describe = describe,
    .resolve = resolve,
    .go = go,
    .wait = wait,
};

/* ---- C API ---- */

static unsigned clampu(unsigned v, unsigned lo, unsigned hi, unsigned dflt)
{
	if (!v)
		return dflt;
	return v < lo ? lo : v > hi ? hi : v;
}

/* Threads a worker block: the caller's option, else the config's, clamped to whole warps. */
static unsigned threads_of(unsigned opt, const struct gpuos_cfg *cfg)
{
	return clampu(opt ? opt : (unsigned)cfg->worker_threads, 64, 1024, 512) & ~31u;
}

unsigned gpuos_fusion_worker_threads(void)
{
	struct gpuos_engines *g = &gpuos_engines;

	/* acquire: pairs with the release in gpuos_init; g->threads is set */
	if (load_acquire(&g->started))
		return g->threads;
	gpuos_shim_init();
	return threads_of(0, &gpuos_shim.cfg);
}

/*
 * fork(): the child has no GPU context, no worker and no CUPTI subscription of its own, and
 * copies of engines that name the parent's. It gets no engine: everything falls through
 * (one line if it asks for one), as under a bad config.
 */
static bool forked;

static void fork_child(void)
{
	forked = true;
	store_relaxed(&gpuos_engines.started, false);
	for (int d = 0; d < GPUOS_MAX_DEVICES; d++)
		atomic_store_explicit(&gpuos_engines.eng[d], NULL, memory_order_relaxed);
	pthread_mutex_init(&gpuos_engines.lock, NULL);
}

static void atfork_once(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

/*
 * Process exit, before the CUDA runtime tears the contexts down (registered when the engine
 * starts, after the runtime's own handler when the program used CUDA first, so it runs
 * before it): no build may still be loading a module, every batch is closed and every worker
 * drained and stopped, and nothing starts again; the observers go quiet.
 */
static void at_exit(void)
{
	struct gpuos_engines *g = &gpuos_engines;
	const struct gpuos_cu *cu = gpuos_cu_get();

	store_relaxed(&g->exiting, true);
	gpuos_jit_cancel();
	if (!load_acquire(&g->started) || forked)
		return;
	bool gone = false;
	for (int d = 0; d < GPUOS_MAX_DEVICES; d++) {
		struct gpuos_engine *e = engine_of(d);
		unsigned flags = 0;
		int active = 0;

		/* the runtime went first (a program that started us before using CUDA): its
		 * context and our memory in it are gone; nothing is left to drain */
		if (e && (cu->cuDevicePrimaryCtxGetState(d, &flags, &active) || !active)) {
			gpuos_engine_kill(e);
			gone = true;
		}
	}
	if (!gone)
		gpuos_shutdown();
	store_release(&g->started, false);
}

static void at_exit_once(void)
{
	atexit(at_exit);
}

GPUOS_EXPORT int gpuos_init(const struct gpuos_options *opt)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct gpuos_engines *g = &gpuos_engines;
	struct gpuos_options o = {0};
	struct gpuos_engine *e;
	int rc = 0;

	pthread_once(&once, atfork_once);
	if (forked) {
		static _Atomic bool said;
		if (!atomic_exchange(&said, true))
			gpuos_warn("no engine in a child of fork() (the parent's GPU state is "
				   "not its own): its work runs as plain launches");
		return -ENODEV;
	}
	if (load_relaxed(&g->exiting))
		return -ESHUTDOWN;
	if (opt)
		o = *opt;
	pthread_mutex_lock(&g->lock);
	if (!load_relaxed(&g->started)) {
		/* the caller's options, else the shim's config (file, GPUOS_* variables) */
		const struct gpuos_cfg *cfg = (gpuos_shim_init(), &gpuos_shim.cfg);
		g->rings =
		    clampu(o.rings ? o.rings : (unsigned)cfg->workers, 1, GPUOS_MAX_RINGS, 2);
		g->threads = threads_of(o.threads, cfg);
		g->idle_ms =
		    clampu(o.idle_ms ? o.idle_ms : (unsigned)cfg->worker_idle_ms, 1, 600000, 100);
		snprintf(g->cache_dir, sizeof(g->cache_dir), "%s",
			 o.cache_dir ? o.cache_dir : gpuos_shim.cfg.cache_dir);
		gpuos_jit_set_threads((unsigned)cfg->jit_threads);
		gpuos_batch_init(&g->batches, &batch_ops, g);
		if (!gpuos_cu_get())
			rc = -ENODEV;
		/* Without sight of the driver calls of libraries, no task could be ordered
		 * against them: no engine at all (the observer said why, once). */
		else if ((rc = gpuos_cupti_start()) == 0) {
			static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

			pthread_once(&exit_once, at_exit_once);
			store_release(&g->started, true);
		}
	}
	pthread_mutex_unlock(&g->lock);
	if (rc)
		return rc;
	return gpuos_engine_get(gpuos_engine_current_dev(), &e);
}

/*
 * @t (op and a[] set) onto @stream's batch and its ring. @n bytes of @params (0: none) go
 * into a chunk of device @pdev's arena first, whose address becomes a[2]: the operator must
 * live on @pdev (resolve says -EXDEV otherwise, before the task takes a position).
 */
/* A full ring's wait: its worker faulted and the engine died (gpuos_engine_park). */
static bool engine_dead(void *ctx)
{
	struct gpuos_engine *e = ctx;

	return load_relaxed(&e->dead);
}

/* a chunk's length in units fits the mask, its address (chunks are page-aligned) clears it */
_Static_assert(GPUOS_ARENA_CHUNK / 16 - 1 <= GPUOS_PBLK_LEN_MASK &&
		   GPUOS_ARENA_CHUNK % (GPUOS_PBLK_LEN_MASK + 1) == 0,
	       "arena chunks and the task's block length");

static int submit(void *stream, struct gpuos_task *t, unsigned flags, const void *params,
		  size_t n, int pdev)
{
	struct gpuos_engines *g = &gpuos_engines;
	struct gpuos_engine *e, *pe = NULL;
	struct gpuos_ring *ring;
	uint32_t pos;
	int dev, rc, chunk = -1;

	/* acquire: pairs with the release in gpuos_init */
	if (!load_acquire(&g->started) && (rc = gpuos_init(NULL)))
		return rc;
	/* relaxed: a hint that saves the arena; gpuos_batch_submit decides under its lock */
	if (load_relaxed(&g->batches.parking))
		return load_relaxed(&g->batches.capture) ? -EBUSY : -EAGAIN;
	if (n) {
		/* before the reservation: waiting for a chunk never holds up a position */
		if (!(pe = engine_of(pdev)))
			return -ENODEV;
		chunk = gpuos_arena_get(&pe->arena, pe->ring, params, n, 4 * GPUOS_ARENA_CHUNKS);
		if (chunk < 0)
			return chunk;
		t->a[2] = gpuos_arena_addr(&pe->arena, chunk);
	}
	GPUOS_PROBE_BEGIN(t0);
	/* the current device matters for the default streams only; a stream knows its own */
	dev = (!stream || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD)
		  ? gpuos_engine_current_dev()
		  : -1;
	GPUOS_PROBE_END(DEV, t0);
	GPUOS_PROBE_BEGIN(t1);
	for (int tries = 0;; tries++) {
		rc = gpuos_batch_submit(&g->batches, (uintptr_t)stream, flags & GPUOS_PTSZ, &dev, t,
					&ring, &pos);
		/* the stream's device has no engine yet: start it, once */
		if (rc != -ENODEV || tries || dev < 0 || (rc = gpuos_engine_get(dev, &e)))
			break;
	}
	if (rc) {
		if (chunk >= 0)
			gpuos_arena_put(&pe->arena, chunk);
		return rc;
	}
	GPUOS_PROBE_END(BATCH, t1);
	GPUOS_PROBE_BEGIN(t2);
	e = engine_of(dev);
	if (chunk >= 0) {
		gpuos_arena_tag(&pe->arena, chunk, (unsigned)(ring - e->ring), pos);
		/* after the batch resolved op: the fetcher copies the block (kernels/task.h) */
		t->op |= GPUOS_TASK_PBLK;
		t->a[2] |= (n + 15) / 16 - 1;
	}
	/* > 1: the ring was full and we spun: make sure its worker runs */
	if (gpuos_ring_wait_room(ring, pos, engine_dead, e) > 1)
		gpuos_engine_start_worker(e, (unsigned)(ring - e->ring));
	if (gpuos_ring_publish(ring, pos, t))
		gpuos_engine_start_worker(e, (unsigned)(ring - e->ring));
	GPUOS_PROBE_BEGIN(t3);
	gpuos_batch_ready(&g->batches, t);
	GPUOS_PROBE_END(PUB_READY, t3);
	GPUOS_PROBE_END(PUBLISH, t2);
	GPUOS_PROBE_END(SUBMIT, t0);
	return 0;
}

GPUOS_EXPORT int gpuos_submit(void *stream, unsigned op, const uint64_t *args, unsigned nargs,
			      unsigned flags)
{
	struct gpuos_task t;

	if (nargs > GPUOS_TASK_ARGS || op >= GPUOS_BUILTIN_OPS + GPUOS_MAX_OPS ||
	    (op >= GPUOS_OP_BUILTIN_COUNT && op < GPUOS_BUILTIN_OPS))
		return -EINVAL;
	memset(&t, 0, sizeof(t));
	t.op = (uint16_t)op;
	if (nargs)
		memcpy(t.a, args, nargs * sizeof(*args));
	return submit(stream, &t, flags, NULL, 0, -1);
}

int gpuos_fusion_submit_params(void *stream, unsigned op, const uint64_t *a, unsigned flags,
			       const void *params, size_t n, int dev)
{
	struct gpuos_task t;

	if (op < GPUOS_OP_INJECTED || op >= GPUOS_BUILTIN_OPS + GPUOS_MAX_OPS ||
	    n > GPUOS_ARENA_CHUNK)
		return -EINVAL;
	memset(&t, 0, sizeof(t));
	t.op = (uint16_t)op;
	memcpy(t.a, a, sizeof(t.a));
	return submit(stream, &t, flags, params, n, dev);
}

int gpuos_fusion_owns(int dev, const void *p, size_t n)
{
	struct gpuos_engine *e = engine_of(dev);

	return e ? gpuos_engine_owns(e, (uint64_t)(uintptr_t)p, n) : -ENODEV;
}

bool gpuos_fusion_capturing(void)
{
	return load_relaxed(&gpuos_engines.batches.capture) != 0;
}

void gpuos_fusion_forget(void)
{
	/* seq_cst: the bump is visible before the driver call that takes the memory away (ours
	 * comes first in the callback); pairs with the acquire in gpuos_engine_owns */
	atomic_fetch_add(&gpuos_engines.epoch, 1);
}

GPUOS_EXPORT int gpuos_flush(void *stream, unsigned flags)
{
	if (!gpuos_fusion_active())
		return 0;
	gpuos_batch_stream_op(&gpuos_engines.batches, (uintptr_t)stream, flags & GPUOS_PTSZ,
			      gpuos_engine_current_dev());
	return 0;
}

static void each_engine(void (*fn)(struct gpuos_engine *))
{
	for (int d = 0; d < GPUOS_MAX_DEVICES; d++) {
		struct gpuos_engine *e = engine_of(d);
		if (e)
			fn(e);
	}
}

GPUOS_EXPORT int gpuos_park(void)
{
	gpuos_fusion_park();
	return 0;
}

GPUOS_EXPORT int gpuos_unpark(void)
{
	gpuos_fusion_unpark();
	return 0;
}

GPUOS_EXPORT int gpuos_shutdown(void)
{
	struct gpuos_engines *g = &gpuos_engines;

	if (!load_acquire(&g->started))
		return 0;
	gpuos_batch_close_all(&g->batches);
	each_engine(gpuos_engine_park);
	return 0;
}

GPUOS_EXPORT void gpuos_get_stats(struct gpuos_stats *st)
{
	struct gpuos_engines *g = &gpuos_engines;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&g->batches.lock);
	st->batches_opened = g->batches.nopened;
	st->batches_closed = g->batches.nclosed;
	st->closes_elided = g->batches.nelided;
	pthread_mutex_unlock(&g->batches.lock);
	for (int d = 0; d < GPUOS_MAX_DEVICES; d++) {
		struct gpuos_engine *e = engine_of(d);
		if (e) {
			/* every position handed out is a task submitted */
			for (unsigned r = 0; r < e->nrings; r++) {
				st->submitted += gpuos_ring_tail(&e->ring[r]);
				for (int k = 0; k < GPUOS_PROF_COUNT && k < 7; k++)
					st->prof[k] += e->ring[r].sh->sh_prof[k];
			}
			st->worker_launches += load_relaxed(&e->launches);
			st->parks += load_relaxed(&e->parks);
		}
	}
	st->op_swaps = load_relaxed(&g->swaps);
	st->op_retired = load_relaxed(&g->retired);
	struct gpuos_jit_stats js;
	gpuos_jit_get_stats(&js);
	st->jit_compiles = js.compiles;
	st->jit_hits = js.hits;
	st->nvrtc_loaded = js.nvrtc_loaded;
}

GPUOS_EXPORT void gpuos_debug_dump(int fd)
{
	struct gpuos_engines *g = &gpuos_engines;

	for (int d = 0; d < GPUOS_MAX_DEVICES; d++) {
		struct gpuos_engine *e = engine_of(d);
		if (!e)
			continue;
		dprintf(fd, "gpuos: device %d: park depth %d%s, %llu worker launches\n", d,
			e->park_depth, load_relaxed(&e->dead) ? " (dead)" : "",
			(unsigned long long)load_relaxed(&e->launches));
		for (unsigned r = 0; r < e->nrings; r++) {
			volatile struct gpuos_ring_sh *sh = e->ring[r].sh;
			dprintf(fd, "gpuos:   ring %u: tail %u head %u done %u state %u stop %u%s",
				r, gpuos_ring_tail(&e->ring[r]), sh->sh_head, sh->sh_done,
				sh->sh_state, sh->sh_stop, sh->sh_wait_on ? "" : "\n");
			if (sh->sh_wait_on)
				dprintf(fd, "; waits on go[%u] >= %u (saw %u)\n", sh->sh_wait_slot,
					sh->sh_wait_gate, sh->sh_wait_go);
		}
	}
	for (unsigned i = 0; i < GPUOS_MAX_SLOTS; i++) {
		struct gpuos_slot *s = &g->batches.slot[i];
		if (load_relaxed(&s->key))
			dprintf(fd, "gpuos:   slot %u: stream %#lx dev %d %s batch %u tseq %u%s\n",
				i, (unsigned long)s->stream, s->dev,
				s->blocking ? "blocking" : "non-blocking", s->batch, s->tseq,
				s->open ? " OPEN" : "");
	}
	gpuos_where_dump(fd);
	/* last: a driver call, which may block if a driver lock is what everyone waits for */
	const struct gpuos_cu *cu = gpuos_cu_get();

	for (int d = 0; d < GPUOS_MAX_DEVICES; d++) {
		struct gpuos_engine *e = engine_of(d);

		for (unsigned r = 0; e && cu && r < e->nrings; r++) {
			CUresult q = cu->cuStreamQuery(e->wstream[r]);

			dprintf(fd, "gpuos:   device %d ring %u worker stream: %s\n", d, r,
				q == CUDA_SUCCESS	    ? "idle"
				: q == CUDA_ERROR_NOT_READY ? "busy"
							    : "error");
		}
	}
}

/* ---- fusion.h: what the observers call ---- */

bool gpuos_fusion_active(void)
{
	/* relaxed: a hint; see gpuos_batch_any_open for why a stale false is harmless */
	return load_relaxed(&gpuos_engines.started);
}

int gpuos_fusion_current_dev(void)
{
	return gpuos_engine_current_dev();
}

void gpuos_fusion_stream_op(CUstream s, bool ptsz)
{
	struct gpuos_batches *b = &gpuos_engines.batches;
	int dev = 0;

	if (!gpuos_fusion_active() || !gpuos_batch_any_open(b))
		return;
	if (!s || s == CU_STREAM_LEGACY || s == CU_STREAM_PER_THREAD)
		dev = gpuos_engine_current_dev();
	gpuos_batch_stream_op(b, (uintptr_t)s, ptsz, dev);
}

/* The device whose engine runs in @ctx (its primary context), -1 if none does yet. */
static int dev_of_ctx(CUcontext ctx)
{
	for (int d = 0; ctx && d < GPUOS_MAX_DEVICES; d++) {
		/* an engine is never freed (gpuos_fusion_device_reset): its ctx stays readable */
		struct gpuos_engine *e = engine_of(d);
		if (e && e->ctx == ctx)
			return d;
	}
	return -1;
}

unsigned gpuos_fusion_call_begin(CUstream s, bool ptsz, CUcontext ctx)
{
	bool legacy = s == CU_STREAM_LEGACY || (!s && !ptsz);
	unsigned bucket =
	    gpuos_batch_call_bucket((uintptr_t)s, ptsz, legacy ? dev_of_ctx(ctx) : -1);

	/* counted before the active check: an engine may start during the call */
	if (gpuos_batch_call_begin(&gpuos_engines.batches, bucket))
		gpuos_fusion_stream_op(s, ptsz);
	return bucket;
}

void gpuos_fusion_call_end(unsigned call)
{
	gpuos_batch_call_end(&gpuos_engines.batches, call);
}

void gpuos_fusion_stream_gone(CUstream s)
{
	if (gpuos_fusion_active())
		gpuos_batch_forget(&gpuos_engines.batches, (uintptr_t)s);
}

void gpuos_fusion_park(void)
{
	if (!gpuos_fusion_active())
		return;
	/* frees park: the ranges copies may use lapse */
	gpuos_fusion_forget();
	/* no submit takes a ring position from here on: the drains see every task */
	gpuos_batch_park_begin(&gpuos_engines.batches);
	each_engine(gpuos_engine_park);
}

void gpuos_fusion_unpark(void)
{
	if (!gpuos_fusion_active())
		return;
	each_engine(gpuos_engine_unpark);
	gpuos_batch_park_end(&gpuos_engines.batches);
}

void gpuos_fusion_device_reset(void)
{
	struct gpuos_engines *g = &gpuos_engines;
	int dev = gpuos_engine_current_dev();
	struct gpuos_engine *e = engine_of(dev);

	if (!gpuos_fusion_active() || !e)
		return;
	pthread_mutex_lock(&g->lock);
	gpuos_batch_drop_device(&g->batches, dev);
	atomic_store_explicit(&g->eng[dev], NULL, memory_order_release);
	/* the operators' modules and the table went with the context (frozen: a submit's
	 * fast path resolves an alias under its slot lock alone) */
	gpuos_batch_freeze(&g->batches);
	for (unsigned l = 0; l < g->nops; l++) {
		gpuos_alias_init(&g->ops[l].alias, g->rings);
		store_release(&g->ops[l].ready, -ENODEV);
	}
	gpuos_batch_thaw(&g->batches);
	pthread_mutex_unlock(&g->lock);
	/* Left allocated on purpose: another thread may still hold the pointer. */
	gpuos_engine_kill(e);
	gpuos_info("device %d was reset: its engine is dropped; the next task starts a new one",
		   dev);
}

void gpuos_fusion_capture_begin(void)
{
	if (!gpuos_fusion_active())
		return;
	/* Nothing of ours may be open or running while a capture records: close the batches
	 * and park the workers now, before the capture begins; submits say -EBUSY until the
	 * last capture ends, so the workers stay off and the shim makes no CUDA call. */
	gpuos_batch_capture_begin(&gpuos_engines.batches);
	gpuos_fusion_park();
}

void gpuos_fusion_capture_end(void)
{
	if (!gpuos_fusion_active())
		return;
	gpuos_batch_capture_end(&gpuos_engines.batches);
	gpuos_fusion_unpark();
}

/*
 * Functions the driver has loaded: a lock-free set of handles, never shrinks. A handle goes in
 * after its first call returned (gpuos_fusion_loaded), not before it: until then every thread
 * that launches it parks too, since its launch may be the one that loads it (and a load may
 * wait for the whole context, behind a task whose worker is not launched yet).
 */
#define SEEN_ORDER 16
#define SEEN_SIZE  (1u << SEEN_ORDER)
static _Atomic uintptr_t seen[SEEN_SIZE];

/* Is @key in the set? With @add, put it in if it is not (and half the set is not full). */
static bool seen_find(uintptr_t key, bool add)
{
	unsigned i = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> (64 - SEEN_ORDER));

	for (unsigned n = 0; n < SEEN_SIZE / 2; n++, i = (i + 1) & (SEEN_SIZE - 1)) {
		/* relaxed: the set only saves parks; a handle missed costs one more park, and two
		 * threads adding one handle leave one */
		uintptr_t v = load_relaxed(&seen[i]);

		if (v == key)
			return true;
		if (v)
			continue;
		if (!add)
			return false;
		if (atomic_compare_exchange_strong_explicit(&seen[i], &v, key, memory_order_relaxed,
							    memory_order_relaxed) ||
		    v == key) /* or another thread just put it here */
			return true;
	}
	return false;
}

/* This thread's last handle found in the set. cuBLAS asks a kernel's attributes a few times
 * before each launch: the repeats skip the set, a random line of half a megabyte. */
static __thread uintptr_t last_seen;

bool gpuos_fusion_first_launch(const void *f)
{
	uintptr_t key = (uintptr_t)f;

	if (!gpuos_fusion_active() || !key || key == last_seen)
		return false;
	if (seen_find(key, false)) {
		last_seen = key; /* the set never shrinks: it stays true */
		return false;
	}
	/* Not loaded yet (or the set is full): loading it may need the whole context idle. */
	gpuos_fusion_park();
	return true;
}

void gpuos_fusion_loaded(const void *f)
{
	if (f)
		(void)seen_find((uintptr_t)f, true);
}
