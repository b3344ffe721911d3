// SPDX-License-Identifier: MIT
/*
 * PyTorch kernels the catalog knows (kernels/catalog.h), run in the worker. At a kernel's
 * first launch (which goes through) its name is matched and its operator, shared by every
 * kernel that computes the same thing on the same layout, is handed to the jit; launches fall
 * through ("operator building") until it is in. Then each launch whose arguments decode and
 * validate (kernels/sig.c) and whose size is within max_elements becomes one task on the
 * launch's stream, in its order. Anything else falls through, and the report says why.
 */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomics.h"
#include "common/probe.h"
#include "common/log.h"
#include "fusion/fusion.h"
#include "interpose/interpose.h"
#include "kernels/catalog.h"
#include "kernels/task.h" /* before gpuos.h: its enum, then gpuos.h's same-valued macros */
#include "include/gpuos.h"

/* What the launch path needs of a catalog kernel. */
struct gpuos_catk {
	struct gpuos_cat_ops ops; /* its operator, on each device it ran on */
	struct gpuos_cat_match m;
	unsigned nparams;
	struct gpuos_kparam params[8];
	struct gpuos_sig sig; /* what the decoders read */
};

/* Operators already defined, by key and device: kernels that compute the same share one. */
static struct {
	pthread_mutex_t lock;
	unsigned n;
	struct {
		char key[64];
		int op, dev;
	} ops[GPUOS_MAX_OPS];
} defined = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The operator of @m, or with @m NULL the copy operator (interpose/copies.c), on device @dev,
 * which must be the current one: defined there if it is not yet. Its id, or a negative
 * errno as gpuos_fusion_define's. */
static int operator_of(const struct gpuos_cat_match *m, int dev)
{
	char key[64], src[16384];
	int op = -ENOSPC, got = -1;

	if (m)
		gpuos_cat_key(m, key, sizeof(key));
	else
		snprintf(key, sizeof(key), "%s", GPUOS_CAT_COPY_KEY);
	pthread_mutex_lock(&defined.lock);
	for (unsigned i = 0; i < defined.n; i++)
		if (defined.ops[i].dev == dev && !strcmp(defined.ops[i].key, key)) {
			op = defined.ops[i].op;
			goto out;
		}
	if (defined.n == GPUOS_MAX_OPS ||
	    (m ? gpuos_cat_source(m, src, sizeof(src)) : gpuos_cat_copy_source(src, sizeof(src))) < 0)
		goto out;
	op = gpuos_fusion_define(key, src, NULL, 0, &got);
	if (op >= 0) {
		snprintf(defined.ops[defined.n].key, sizeof(key), "%s", key);
		defined.ops[defined.n].op = op;
		defined.ops[defined.n].dev = got;
		defined.n++;
		if (got != dev) /* defined where the thread is: it was told another device */
			op = -EXDEV;
	}
out:
	pthread_mutex_unlock(&defined.lock);
	return op;
}

/* The device of this thread's last catalog task: where its next one most likely goes (a
 * launch's stream is the current device's), known without asking the driver. */
static __thread int last_dev = -1;

int gpuos_catalog_op(struct gpuos_cat_ops *o, const struct gpuos_cat_match *m, bool recheck,
		     int *devp)
{
	int dev = last_dev, op, ready;

	if (!recheck && dev >= 0) {
		/* acquire: pairs with the release below; the operator's id before its use */
		op = load_acquire(&o->op[dev]);
		if (op > 0 && gpuos_op_ready((unsigned)op) > 0) {
			*devp = dev;
			return op;
		}
	}
	/* this thread's first task, a device where the operator is not in (yet), or a device
	 * the thread has left: where its launches go now */
	dev = last_dev = gpuos_fusion_current_dev();
	*devp = dev;
	if (dev < 0 || dev >= GPUOS_CAT_DEVS)
		return -ENODEV;
	op = load_acquire(&o->op[dev]);
	if (!op) {
		/* racing threads get the same id from the table (never 0) */
		op = operator_of(m, dev);
		/* release: pairs with the acquires above */
		store_release(&o->op[dev], op);
	}
	if (op < 0)
		return op;
	ready = gpuos_op_ready((unsigned)op);
	return ready > 0 ? op : ready;
}

int gpuos_catalog_key(const char *demangled, char *key, size_t len)
{
	struct gpuos_sig *s = malloc(sizeof(*s));
	struct gpuos_cat_match m;
	int rc;

	if (!s)
		return -ENOMEM;
	rc = gpuos_sig_parse(demangled, s);
	if (!rc)
		rc = gpuos_cat_match(s, &m);
	if (!rc && key)
		gpuos_cat_key(&m, key, len);
	free(s);
	return rc;
}

void gpuos_catalog_prepare(struct gpuos_live *l)
{
	struct gpuos_kernel *k = l->kernel;
	struct gpuos_catk *c;
	int rc, op, dev = 0;
	char key[64];

	if (load_relaxed(&l->why) != GPUOS_WHY_BUILDING || !l->catalog ||
	    atomic_exchange(&l->prepared, true))
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto no;
	if (gpuos_sig_parse(l->demangled, &c->sig) || gpuos_cat_match(&c->sig, &c->m))
		goto no;
	/* the decoders validate against the cubin's layout: without it, no diverting */
	if (!k || !k->meta || k->meta->nparams > 8) {
		free(c);
		store_relaxed(&l->why, GPUOS_WHY_BAD_ARGS);
		gpuos_debug("catalog: %s: no parameter layout", l->mangled);
		return;
	}
	c->nparams = k->meta->nparams;
	memcpy(c->params, k->meta->params, c->nparams * sizeof(c->params[0]));
	/* its operator on this device (the launch's); on others at their first launch */
	rc = gpuos_init(NULL);
	op = rc ? rc : gpuos_catalog_op(&c->ops, &c->m, true, &dev);
	gpuos_cat_key(&c->m, key, sizeof(key));
	if (op < 0) {
		free(c);
		store_relaxed(&l->why, gpuos_why_op(op));
		gpuos_debug("catalog: %s: no operator (%s)", key, strerror(-op));
		return;
	}
	gpuos_debug("catalog: %s -> operator %s (%d on device %d)", l->mangled, key,
		    load_relaxed(&c->ops.op[dev]), dev);
	/* release: c's fields before the pointer; pairs with the launch path's acquire */
	store_release(&l->cat, c);
	return;
no:
	free(c);
	store_relaxed(&l->why, GPUOS_WHY_NO_CATALOG);
}

/*
 * PyTorch's grids cover N with blocks of b.x threads doing 1..16 elements each: g.x is
 * ceil(N / per), that is (g.x - 1) * per < N <= g.x * per (no division on the launch path).
 */
static bool grid_ok(dim3 g, dim3 b, int32_t n)
{
	uint64_t per;

	if (g.y != 1 || g.z != 1 || b.y != 1 || b.z != 1 || !b.x || !g.x || n <= 0)
		return false;
	for (unsigned w = 1; w <= 16; w *= 2) {
		per = (uint64_t)b.x * w;
		if ((uint64_t)(g.x - 1) * per < (uint64_t)n && (uint64_t)n <= (uint64_t)g.x * per)
			return true;
	}
	return false;
}

/* Where a launch's task goes: its stream, and the operator on that stream's device. */
struct cat_to {
	cudaStream_t st;
	bool ptsz;
	unsigned op;
	int dev;
};

/* One task of @to's operator: arguments @a (NULL: none) and the @n bytes at @blk, if any
 * (through the arena; the operator finds them at a2). */
static enum gpuos_why submit_task(const struct cat_to *to, const uint64_t *a, const void *blk,
				  size_t n)
{
	static const uint64_t none[GPUOS_TASK_ARGS];

	return gpuos_why_submitted(gpuos_fusion_submit_params(
	    to->st, to->op, a ? a : none, to->ptsz ? GPUOS_PTSZ : 0, blk, n, to->dev));
}

/* the worker fetches it with the task (kernels/task.h): not over the bus from the operator */
_Static_assert(sizeof(struct gpuos_cat_reduce) <= GPUOS_PBLK_SLOT, "reduction block size");

/*
 * A reduction: its ReduceOp decoded and validated (the simple form, sig.h), the operator's
 * parameter block from it. The launch's dynamic shared memory is the kernel's own tree
 * scratch; the operator has its own.
 */
static enum gpuos_why reduce_launch(const struct gpuos_catk *c, dim3 g, dim3 b, void **args,
				    const struct cat_to *to)
{
	const unsigned grid[3] = {g.x, g.y, g.z}, block[3] = {b.x, b.y, b.z};
	struct gpuos_reduce_args ra;
	struct gpuos_cat_reduce p;
	int rc;

	if (!args)
		return GPUOS_WHY_LAUNCH_CONFIG;
	/* the worker runs a block of PyTorch's threads a round (32 to a warp, lane for lane):
	 * past a couple of rounds the task costs the GPU more than the kernel would */
	if ((uint64_t)g.x * g.y * g.z * b.x * b.y * b.z > gpuos_shim.cfg.reduce_max_threads)
		return GPUOS_WHY_TOO_LARGE;
	rc = gpuos_sig_decode_reduce(&c->sig, c->params, c->nparams, args, grid, block, &ra);
	if (!rc)
		rc = gpuos_cat_reduce_params(&c->m, &ra, &p);
	if (rc) /* valid, but blocks share outputs or accumulate: "launch config" */
		return rc == -ENOTSUP ? GPUOS_WHY_LAUNCH_CONFIG : GPUOS_WHY_BAD_ARGS;
	if ((uint64_t)ra.num_inputs * (uint64_t)ra.num_outputs > gpuos_shim.cfg.max_elements)
		return GPUOS_WHY_TOO_LARGE;
	return submit_task(to, NULL, &p, sizeof(p));
}

/*
 * A layer norm: its eight arguments decoded and validated; one task for all its rows, PyTorch's
 * threads of a row mapped onto the worker's (its block must fit them). The launch's dynamic
 * shared memory is the kernel's scratch for the warps' tree; the operator has its own.
 */
static enum gpuos_why layer_norm_launch(const struct gpuos_catk *c, dim3 g, dim3 b, void **args,
					const struct cat_to *to)
{
	const unsigned grid[3] = {g.x, g.y, g.z}, block[3] = {b.x, b.y, b.z};
	struct gpuos_cat_ln p;

	if (gpuos_sig_decode_layer_norm(&c->sig, c->params, c->nparams, args, grid, block, &p))
		return GPUOS_WHY_BAD_ARGS;
	/* a row's threads must fit the worker's compute threads (all but the fetching warp) */
	if (32 * (unsigned)p.by + 32 > gpuos_fusion_worker_threads())
		return GPUOS_WHY_LAUNCH_CONFIG;
	if ((uint64_t)p.rows * (uint64_t)p.n > gpuos_shim.cfg.max_elements)
		return GPUOS_WHY_TOO_LARGE;
	return submit_task(to, NULL, &p, sizeof(p));
}

/*
 * torch.cat: its inputs' metadata decoded and validated into one task's block (only the
 * inputs the grid has go). Its size is its elements together, as max_elements counts.
 */
static enum gpuos_why concat_launch(const struct gpuos_catk *c, dim3 g, dim3 b, void **args,
				    const struct cat_to *to)
{
	const unsigned grid[3] = {g.x, g.y, g.z}, block[3] = {b.x, b.y, b.z};
	struct gpuos_cat_concat p;
	uint64_t units;
	int rc = gpuos_sig_decode_concat(&c->sig, c->params, c->nparams, args, grid, block, &p,
					 &units);

	if (rc)
		return rc == -ENOTSUP ? GPUOS_WHY_LAUNCH_CONFIG : GPUOS_WHY_BAD_ARGS;
	if (units * p.unit / c->sig.concat.elem > gpuos_shim.cfg.max_elements)
		return GPUOS_WHY_TOO_LARGE;
	return submit_task(to, NULL, &p,
			   offsetof(struct gpuos_cat_concat, in) + p.nin * sizeof(p.in[0]));
}

/* torch.arange: its three arguments decoded and validated into one task's (no block). */
static enum gpuos_why arange_launch(const struct gpuos_catk *c, dim3 g, dim3 b, void **args,
				    const struct cat_to *to)
{
	const unsigned grid[3] = {g.x, g.y, g.z}, block[3] = {b.x, b.y, b.z};
	struct gpuos_arange_args ar;
	uint64_t a[GPUOS_TASK_ARGS] = {0};

	if (gpuos_sig_decode_arange(&c->sig, c->params, c->nparams, args, grid, block, &ar))
		return GPUOS_WHY_BAD_ARGS;
	if (ar.n > gpuos_shim.cfg.max_elements)
		return GPUOS_WHY_TOO_LARGE;
	a[0] = ar.out;
	a[1] = ar.n;
	a[2] = ar.start;
	a[3] = ar.step;
	return submit_task(to, a, NULL, 0);
}

/* index_select (embedding's lookups): the three TensorInfos decoded and validated into one
 * task's block; its size is the elements it copies. */
static enum gpuos_why isel_launch(const struct gpuos_catk *c, dim3 g, dim3 b, void **args,
				  const struct cat_to *to)
{
	const unsigned grid[3] = {g.x, g.y, g.z}, block[3] = {b.x, b.y, b.z};
	struct gpuos_cat_isel p;
	uint64_t elems;

	if (gpuos_sig_decode_index_select(&c->sig, c->params, c->nparams, args, grid, block, &p,
					  &elems))
		return GPUOS_WHY_BAD_ARGS;
	if (elems > gpuos_shim.cfg.max_elements)
		return GPUOS_WHY_TOO_LARGE;
	return submit_task(to, NULL, &p, sizeof(p));
}

/* softmax and log_softmax over short rows, and their gradients: the launch decoded and
 * validated into one task's arguments (no block); its size is its rows' elements together. */
static enum gpuos_why softmax_launch(const struct gpuos_catk *c, dim3 g, dim3 b, void **args,
				     const struct cat_to *to)
{
	const unsigned grid[3] = {g.x, g.y, g.z}, block[3] = {b.x, b.y, b.z};
	struct gpuos_softmax_args sa;
	uint64_t a[GPUOS_TASK_ARGS] = {0};

	if (gpuos_sig_decode_softmax(&c->sig, c->params, c->nparams, args, grid, block, &sa))
		return GPUOS_WHY_BAD_ARGS;
	if ((uint64_t)sa.batch * (uint64_t)sa.count > gpuos_shim.cfg.max_elements)
		return GPUOS_WHY_TOO_LARGE;
	a[0] = sa.dst;
	a[1] = sa.src;
	a[2] = (uint32_t)sa.batch;
	a[3] = (uint32_t)sa.count;
	a[4] = sa.output; /* backward: the forward's output */
	return submit_task(to, a, NULL, 0);
}

/* A launch of @c as a task to @to (its operator ready). */
static enum gpuos_why launch_to(const struct gpuos_catk *c, dim3 g, dim3 b, void **args,
				size_t smem, const struct cat_to *to)
{
	uint64_t a[GPUOS_TASK_ARGS] = {0};
	struct gpuos_cat_strided blk;
	struct gpuos_oc_args oc;
	struct gpuos_ur_args ur;
	struct gpuos_ew_args *ew;
	GPUOS_PROBE_BEGIN(t0);
	int rc;

	/* reductions and layer norm take their dynamic shared memory as scratch */
	if (c->sig.family == GPUOS_SIG_REDUCE)
		return reduce_launch(c, g, b, args, to);
	if (c->sig.family == GPUOS_SIG_LAYER_NORM)
		return args ? layer_norm_launch(c, g, b, args, to) : GPUOS_WHY_LAUNCH_CONFIG;
	if (smem || !args)
		return GPUOS_WHY_LAUNCH_CONFIG;
	switch (c->sig.family) {
	case GPUOS_SIG_CONCAT:
		return concat_launch(c, g, b, args, to);
	case GPUOS_SIG_ARANGE:
		return arange_launch(c, g, b, args, to);
	case GPUOS_SIG_INDEX_SELECT:
		return isel_launch(c, g, b, args, to);
	case GPUOS_SIG_SOFTMAX:
		return softmax_launch(c, g, b, args, to);
	case GPUOS_SIG_VECTORIZED:
		rc = gpuos_sig_decode_vectorized(&c->sig, c->params, c->nparams, args, &ur.ew);
		ew = &ur.ew;
		break;
	case GPUOS_SIG_UNROLLED:
		rc = gpuos_sig_decode_unrolled(&c->sig, c->params, c->nparams, args, &ur);
		ew = &ur.ew;
		break;
	case GPUOS_SIG_ELEMENTWISE:
		rc = gpuos_sig_decode_elementwise(&c->sig, c->params, c->nparams, args, &oc);
		ew = &oc.ew;
		break;
	default:
		return GPUOS_WHY_BAD_ARGS;
	}
	if (rc || ew->narrays != c->m.e->nin + 1 || !grid_ok(g, b, ew->n))
		return GPUOS_WHY_BAD_ARGS;
	if ((uint64_t)ew->n > gpuos_shim.cfg.max_elements)
		return GPUOS_WHY_TOO_LARGE;
	/* clamp's ClampLimits: Min, Max or MinMax, or the captures are not where we read them */
	if (c->m.e->scalar_kind == GPUOS_SC_CLAMP && (uint32_t)ew->scalar_bits[0] > 2)
		return GPUOS_WHY_BAD_ARGS;
	if (c->m.layout != GPUOS_CAT_STRIDED) {
		for (unsigned k = 0; k < ew->narrays; k++)
			a[k] = ew->ptr[k];
		a[5] = ew->scalar_bits[0];
		if (c->m.e->nscalars > 1) /* such entries have at most two inputs: a3 is free */
			a[3] = ew->scalar_bits[1];
		a[4] = (uint32_t)ew->n;
		if (c->m.layout == GPUOS_CAT_CAST && gpuos_cat_cast_word(&c->m, &ur, &a[4]))
			return GPUOS_WHY_BAD_ARGS;
		GPUOS_PROBE_END(DECODE, t0);
		return submit_task(to, a, NULL, 0);
	}
	memset(&blk, 0, GPUOS_CAT_STRIDED_BYTES(oc.dims));
	memcpy(blk.ptr, ew->ptr, ew->narrays * sizeof(blk.ptr[0]));
	for (int d = 0; d < oc.dims; d++) {
		blk.dim[d].size = oc.sizes[d];
		gpuos_sig_divider(oc.sizes[d], &blk.dim[d].m1, &blk.dim[d].shift);
		memcpy(blk.dim[d].strides, oc.strides[d], ew->narrays * sizeof(uint32_t));
	}
	a[0] = (uint32_t)ew->n;
	a[1] = (uint32_t)oc.dims;
	a[3] = ew->scalar_bits[1];
	a[5] = ew->scalar_bits[0];
	return submit_task(to, a, &blk, GPUOS_CAT_STRIDED_BYTES(oc.dims));
}

enum gpuos_why gpuos_catalog_launch(struct gpuos_catk *c, dim3 g, dim3 b, void **args, size_t smem,
				    cudaStream_t st, bool ptsz)
{
	struct cat_to to = {.st = st, .ptsz = ptsz};
	/* acquire inside: the operator is in before its tasks go */
	int op = gpuos_catalog_op(&c->ops, &c->m, false, &to.dev), tried;
	enum gpuos_why why;

	if (op <= 0)
		return gpuos_why_op(op);
	to.op = (unsigned)op;
	why = launch_to(c, g, b, args, smem, &to);
	if (why != GPUOS_WHY_OTHER_DEVICE)
		return why;
	/* the thread's device changed since its last task: once more, on the current one (the
	 * same device again would only say the same) */
	tried = to.dev;
	if ((op = gpuos_catalog_op(&c->ops, &c->m, true, &to.dev)) <= 0)
		return gpuos_why_op(op);
	if (to.dev == tried)
		return why;
	to.op = (unsigned)op;
	return launch_to(c, g, b, args, smem, &to);
}
