// SPDX-License-Identifier: MIT
/*
 * Injected operators: sources compiled by the jit (kernels/jit.c, on-disk cache), loaded as
 * modules, their entry address checked and written into the worker's table at the free
 * physical slot, then made active by the alias switch (kernels/table.h). Until an operator's
 * first version is in, submits say -EAGAIN and the caller runs the work itself.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/atomics.h"
#include "common/log.h"
#include "common/where.h"
#include "fusion/engine.h"
#include "fusion/fusion.h"
#include "include/gpuos.h"
#include "kernels/cu.h"
#include "kernels/jit.h"
#include "ptx_lift/ptx_lift.h" /* the cubin reader */

#define GPUOS_EXPORT __attribute__((visibility("default")))

static pthread_mutex_t op_lock = PTHREAD_MUTEX_INITIALIZER; /* one install at a time */

struct pending {
	unsigned op;
	int dev;
	uint32_t version;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Whether loading and unloading our modules parks the workers (DESIGN.md invariant 4). */
static bool load_parks(void)
{
	const char *v = getenv("GPUOS_LOAD_PARK");
	return !v || strcmp(v, "0");
}

/*
 * Whether the worker can call the operator: its stack fits in what the worker reserves for
 * it (GPUOS_OP_STACK, kernels/worker.cu; -E2BIG if not) and it uses no constant bank of its
 * own module (-ENOEXEC); -EINVAL if its image cannot be read.
 */
static int callable(const struct gpuos_jit_image *img, const char *name)
{
	struct gpuos_cubin *c;
	unsigned need, banks;
	int err = gpuos_cubin_open(img->data, img->size, &c);

	if (err)
		return err;
	need = gpuos_cubin_frames(c);
	banks = gpuos_cubin_const_banks(c) & ~1u;
	gpuos_cubin_close(c);
	/* Called from the worker, code reads the worker's constant banks: its own jump
	 * tables or __constant__ data would be the worker's bytes (a jump into nowhere, a
	 * hang). Bank 0's driver part (thread counts, the global window) is every kernel's. */
	if (banks) {
		gpuos_warn("operator %s uses constant bank %d (a jump table or __constant__ "
			   "data), which a call from the worker cannot reach; not installed",
			   name, __builtin_ctz(banks));
		return -ENOEXEC;
	}
	if (need <= GPUOS_OP_STACK)
		return 0;
	gpuos_warn("operator %s needs %u bytes of stack, the worker has %u", name, need,
		   GPUOS_OP_STACK);
	return -E2BIG;
}

/*
 * Load @img for operator @l into its free slot and switch to it. -EBUSY if the free slot's
 * old tasks did not finish within 10 s; -EFAULT if the module's entry is not a code address.
 */
static int install(struct gpuos_engine *e, unsigned l, const void *img, uint32_t version)
{
	const struct gpuos_cu *cu = gpuos_cu_get();
	struct gpuos_engines *g = &gpuos_engines;
	struct gpuos_op *op = &g->ops[l];
	uint32_t done[GPUOS_MAX_RINGS], tails[GPUOS_MAX_RINGS];
	uint64_t deadline = now_ms() + 10000, fn = 0;
	CUmodule mod = NULL, old;
	CUdeviceptr entry;
	CUcontext prev = NULL;
	size_t bytes;
	unsigned slot;
	bool parked = false;
	int err = 0;

	pthread_mutex_lock(&op_lock);
	for (;;) {
		gpuos_engine_done(e, done);
		pthread_mutex_lock(&g->batches.lock);
		err = gpuos_alias_prepare(&op->alias, done, &slot);
		if (!err && gpuos_alias_poll(&op->alias, done))
			fetch_add_relaxed(&g->retired, 1);
		pthread_mutex_unlock(&g->batches.lock);
		if (err != -EBUSY || now_ms() > deadline)
			break;
		sched_yield(); /* the slot's last tasks are still running */
	}
	if (err)
		goto out_unlock;

	gpuos_fusion_in_engine++;
	cu->cuCtxGetCurrent(&prev);
	cu->cuCtxSetCurrent(e->ctx);
	if (load_parks()) {
		/* every engine, and no task is taken until the load is over: a worker launched
		 * while the driver loads waits behind the load, which may wait for streams
		 * waiting on that worker's tasks */
		gpuos_fusion_park();
		parked = true;
	}
	gpuos_where("operator module load, op", l);
	old = op->alias.module[slot];
	if (old) {
		cu->cuModuleUnload((CUmodule)old);
		op->alias.module[slot] = NULL;
	}
	GPUOS_CU_GOTO(cu->cuModuleLoadData(&mod, img), err, out);
	GPUOS_CU_GOTO(cu->cuModuleGetGlobal(&entry, &bytes, mod, "gpuos_op_entry"), err, out);
	if (bytes != sizeof(fn)) {
		err = -EINVAL;
		goto out;
	}
	GPUOS_CU_GOTO(cu->cuMemcpyDtoHAsync(&fn, entry, sizeof(fn), e->aux), err, out);
	GPUOS_CU_GOTO(cu->cuStreamSynchronize(e->aux), err, out);
	/*
	 * A function compiled without -rdc has a module-relative address (small, and the call
	 * hangs the GPU); code of a loaded module lies in the device's code window, well above
	 * any module offset. Refuse anything that is not such an address, or that equals the
	 * other slot's (a relative offset would).
	 */
	if (fn < (1ull << 32) || (op->alias.module[!slot] && fn == op->alias.entry[!slot])) {
		gpuos_err("operator %s: entry 0x%llx is not an absolute code address (built "
			  "without -rdc?); not installed",
			  op->name, (unsigned long long)fn);
		err = -EFAULT;
		goto out;
	}
	err = gpuos_engine_table_write(e, 2 * l + slot, fn);
	if (err)
		goto out;
	gpuos_debug("operator %s v%u at 0x%llx in slot %u", op->name, version,
		    (unsigned long long)fn, slot);
	/* frozen: no submit between its resolve and its reservation, fast path included */
	gpuos_batch_freeze(&g->batches);
	/* tasks reserved from here on name the new slot; the old retires behind these tails */
	gpuos_engine_tails(e, tails);
	gpuos_alias_commit(&op->alias, slot, version, tails);
	op->alias.module[slot] = mod;
	op->alias.entry[slot] = fn;
	mod = NULL;
	gpuos_batch_thaw(&g->batches);
	fetch_add_relaxed(&g->swaps, 1);
out:
	gpuos_where(NULL, 0);
	if (mod)
		cu->cuModuleUnload(mod);
	if (parked)
		gpuos_fusion_unpark();
	cu->cuCtxSetCurrent(prev);
	gpuos_fusion_in_engine--;
out_unlock:
	pthread_mutex_unlock(&op_lock);
	return err;
}

static void build_done(void *ctx, int err, struct gpuos_jit_image *img)
{
	struct pending *p = ctx;
	struct gpuos_op *op = &gpuos_engines.ops[p->op];
	struct gpuos_engine *e;

	if (!err)
		err = callable(img, op->name);
	if (!err)
		err = gpuos_engine_get(p->dev, &e);
	/* No module load while a capture records (it could invalidate it): the operator
	 * goes in once the captures are over, or not at all if the process exits first. */
	while (!err && load_relaxed(&gpuos_engines.batches.capture)) {
		if (load_relaxed(&gpuos_engines.exiting))
			err = -ECANCELED;
		else
			usleep(1000);
	}
	if (!err) {
		CUstreamCaptureMode m = gpuos_engine_relaxed();

		err = install(e, p->op, img->data, p->version);
		gpuos_engine_restore(m);
	}
	/* release: the install (table, alias) before ready; pairs with gpuos_op_ready */
	store_release(&op->ready, err ? err : 1);
	if (err && err != -ECANCELED)
		gpuos_warn("operator %s not available (%d): its work stays on normal launches",
			   op->name, err);
	free(p);
}

/* The request for an operator of engine @e; @opt holds its one option (the register cap). */
static void make_req(struct gpuos_jit_req *r, const char *src, const char *name,
		     struct gpuos_engine *e, char opt[32], const char **opts)
{
	int drv = 0;

	gpuos_cu_get()->cuDriverGetVersion(&drv);
	memset(r, 0, sizeof(*r));
	/* no more registers than the worker has: the call runs in its allocation */
	snprintf(opt, 32, "-maxrregcount=%d", e->regs);
	opts[0] = opt;
	r->opts = opts;
	r->nopts = 1;
	r->src = src;
	r->len = strlen(src);
	r->name = name;
	r->sm = (unsigned)e->sm;
	r->cache_dir = gpuos_engines.cache_dir;
	r->driver_version = drv;
}

/* A new operator from @src (and @ptx, ptx_len bytes, linked in), built in the background. */
static int define(const char *name, const char *src, const char *ptx, size_t ptx_len, int *devp)
{
	struct gpuos_engines *g = &gpuos_engines;
	struct gpuos_engine *e;
	struct gpuos_jit_req req;
	struct pending *p;
	char opt[32];
	const char *opts[1];
	int dev, err;
	unsigned l;

	if (!name || !src)
		return -EINVAL;
	if (!load_acquire(&g->started) && (err = gpuos_init(NULL)))
		return err;
	dev = gpuos_engine_current_dev();
	if ((err = gpuos_engine_get(dev, &e)))
		return err;
	pthread_mutex_lock(&g->lock);
	l = g->nops;
	if (l < GPUOS_MAX_OPS) {
		g->nops++;
		snprintf(g->ops[l].name, sizeof(g->ops[l].name), "%s", name);
		gpuos_alias_init(&g->ops[l].alias, e->nrings);
		g->ops[l].version = 1;
		g->ops[l].dev = dev;
		g->ops[l].used = true;
	}
	pthread_mutex_unlock(&g->lock);
	if (l >= GPUOS_MAX_OPS)
		return -ENOSPC;
	p = malloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct pending){.op = l, .dev = dev, .version = 1};
	make_req(&req, src, name, e, opt, opts);
	req.ptx = ptx;
	req.ptx_len = ptx_len;
	err = gpuos_jit_request(&req, build_done, p);
	if (err) {
		free(p);
		return err;
	}
	if (devp)
		*devp = dev;
	return (int)(GPUOS_OP_INJECTED + l);
}

GPUOS_EXPORT int gpuos_op_define(const char *name, const char *src)
{
	return define(name, src, NULL, 0, NULL);
}

int gpuos_fusion_define(const char *name, const char *src, const char *ptx, size_t ptx_len,
			int *dev)
{
	return define(name, src, ptx, ptx_len, dev);
}

static struct gpuos_op *op_of(unsigned id)
{
	struct gpuos_engines *g = &gpuos_engines;

	if (id < GPUOS_OP_INJECTED || id - GPUOS_OP_INJECTED >= GPUOS_MAX_OPS ||
	    !g->ops[id - GPUOS_OP_INJECTED].used)
		return NULL;
	return &g->ops[id - GPUOS_OP_INJECTED];
}

GPUOS_EXPORT int gpuos_op_ready(unsigned id)
{
	struct gpuos_op *op = op_of(id);

	/* acquire: pairs with the release in build_done */
	return op ? load_acquire(&op->ready) : -EINVAL;
}

GPUOS_EXPORT int gpuos_op_wait(unsigned id)
{
	int r;

	while ((r = gpuos_op_ready(id)) == 0)
		sched_yield();
	return r < 0 ? r : 0;
}

GPUOS_EXPORT int gpuos_op_wait_all(void)
{
	struct gpuos_engines *g = &gpuos_engines;
	unsigned n;
	int r, first = 0;

	pthread_mutex_lock(&g->lock);
	n = g->nops;
	pthread_mutex_unlock(&g->lock);
	for (unsigned l = 0; l < n; l++)
		if ((r = gpuos_op_wait(GPUOS_OP_INJECTED + l)) && !first)
			first = r;
	return first;
}

GPUOS_EXPORT int gpuos_op_update(unsigned id, const char *src)
{
	struct gpuos_op *op = op_of(id);
	struct gpuos_engine *e;
	struct gpuos_jit_req req;
	struct gpuos_jit_image img = {0};
	char opt[32];
	const char *opts[1];
	int err;

	if (!op || !src)
		return -EINVAL;
	if ((err = gpuos_engine_get(gpuos_engine_current_dev(), &e)))
		return err;
	make_req(&req, src, op->name, e, opt, opts);
	err = gpuos_jit_build(&req, &img);
	if (!err)
		err = callable(&img, op->name);
	if (!err)
		err = install(e, id - GPUOS_OP_INJECTED, img.data, ++op->version);
	gpuos_jit_image_free(&img);
	if (!err)
		store_release(&op->ready, 1);
	return err;
}

GPUOS_EXPORT int gpuos_op_rollback(unsigned id)
{
	struct gpuos_engines *g = &gpuos_engines;
	struct gpuos_op *op = op_of(id);
	struct gpuos_engine *e;
	uint32_t tails[GPUOS_MAX_RINGS];
	int err;

	if (!op)
		return -EINVAL;
	if ((err = gpuos_engine_get(gpuos_engine_current_dev(), &e)))
		return err;
	pthread_mutex_lock(&op_lock);
	gpuos_batch_freeze(&g->batches); /* as install's switch */
	gpuos_engine_tails(e, tails);
	err = gpuos_alias_rollback(&op->alias, tails);
	gpuos_batch_thaw(&g->batches);
	pthread_mutex_unlock(&op_lock);
	return err;
}
