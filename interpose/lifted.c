// SPDX-License-Identifier: MIT
/*
 * Kernels that ship PTX, run in the worker (ptx_lift). At a kernel's first launch that went
 * through, its fatbinary's PTX for the device is lifted (ptx_lift/lift.c), the operator that
 * runs it is generated (ptx_lift/wrap.c) and handed to the engine to build in the background;
 * its launches fall through ("operator building") until it is in. Then each launch that fits
 * the worker becomes a task on the launch's stream, in its order: the parameters copied as the
 * runtime copies them, the geometry with them (ptx_lift.h). Anything else falls through, and
 * the report says why.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomics.h"
#include "common/log.h"
#include "fusion/fusion.h"
#include "interpose/interpose.h"
#include "kernels/task.h" /* before gpuos.h: its enum, then gpuos.h's same-valued macros */
#include "include/gpuos.h"

/* What the launch path needs of a lifted kernel. */
struct gpuos_lifted {
	unsigned op; /* its injected operator */
	int dev;     /* whose engine holds it */
	unsigned nparams, param_bytes;
	struct gpuos_kparam params[64];
	unsigned max_block;	    /* the worker's compute threads */
	unsigned smem_room;	    /* dynamic shared memory a launch may ask (0 if it has none) */
	bool barriers;		    /* blocks must be whole warps */
	unsigned reqntid[3];	    /* .reqntid: the launch must have this block, else it errs */
	unsigned long long maxntid; /* .maxntid: no bigger block (0: none) */
	uint64_t max_threads, max_blocks;
};

/* Under the registry lock: the fatbin's PTX for its device, read once. */
static int fatbin_ptx(struct gpuos_fatbin_reg *fb)
{
	struct gpuos_fatbin_entry e;
	const void *fat;
	void *out = NULL;
	size_t len, out_len = 0;
	int rc;

	if (fb->ptx_state)
		return fb->ptx_state < 0 ? fb->ptx_state : 0;
	rc = gpuos_fatbin_from_wrapper(fb->wrapper, &fat, &len);
	if (!rc)
		rc = gpuos_fatbin_pick(fat, len, GPUOS_FATBIN_PTX, fb->sm, &e);
	if (!rc)
		rc = gpuos_fatbin_payload(&e, &out, &out_len);
	if (!rc) {
		fb->ptx = out;
		fb->ptx_len = out_len;
	}
	fb->ptx_state = rc ? rc : 1;
	return rc;
}

static void not_liftable(struct gpuos_live *l, int reason, const char *detail)
{
	l->lift = reason;
	snprintf(l->lift_detail, sizeof(l->lift_detail), "%s", detail);
	store_relaxed(&l->why, GPUOS_WHY_NOT_LIFTABLE);
	gpuos_debug("lift: %s: %s (%s)", l->demangled ? l->demangled : l->mangled,
		    gpuos_lift_reason_text(reason), detail);
}

void gpuos_lifted_prepare(struct gpuos_live *l)
{
	const struct gpuos_cfg *cfg = &gpuos_shim.cfg;
	struct gpuos_kernel *k = l->kernel;
	struct gpuos_fatbin_reg *fb = k ? k->fb : NULL;
	struct gpuos_lift_result r;
	struct gpuos_lifted *x;
	char src[4096], name[64];
	unsigned threads;
	int rc, op, dev = 0;

	if (load_relaxed(&l->why) != GPUOS_WHY_BUILDING || atomic_exchange(&l->prepared, true))
		return; /* the config said no, lifting is off, or another thread does it */
	if (!fb) {
		not_liftable(l, GPUOS_LIFT_NO_PTX, "no fatbinary registered");
		return;
	}
	threads = gpuos_fusion_worker_threads() - 32 * GPUOS_FETCH_WARPS;
	struct gpuos_lift_opts o = {
	    .max_threads = threads, .smem_window = GPUOS_LIFT_WINDOW, .sm = fb->sm};

	gpuos_reg_lock();
	/* fb->sm is the device's, set when its cubin was looked for (found or not: a default
	 * nvcc build has no cubin newer GPUs can run, and its PTX is what runs there) */
	rc = fb->sm ? fatbin_ptx(fb) : -ENOENT;
	if (rc) {
		gpuos_reg_unlock();
		not_liftable(l, GPUOS_LIFT_NO_PTX,
			     rc == -ENOENT ? "no PTX the device can use" : strerror(-rc));
		return;
	}
	rc = gpuos_lift(fb->ptx, fb->ptx_len, k->mangled, &o, &r);
	gpuos_reg_unlock();
	if (rc < 0) {
		not_liftable(l, GPUOS_LIFT_UNSUPPORTED, strerror(-rc));
		return;
	}
	if (rc) {
		not_liftable(l, r.reason, r.detail);
		goto out;
	}
	x = calloc(1, sizeof(*x));
	if (!x || gpuos_lift_wrapper(&r, src, sizeof(src)) < 0) {
		free(x);
		not_liftable(l, GPUOS_LIFT_UNSUPPORTED, "no memory for its operator");
		goto out;
	}
	x->nparams = r.nparams;
	x->param_bytes = r.param_bytes;
	memcpy(x->params, r.params, sizeof(x->params));
	/* the cubin's layout is what the runtime copies from args[]: they must agree */
	if (k->meta && (k->meta->nparams != r.nparams || k->meta->param_bytes != r.param_bytes)) {
		free(x);
		not_liftable(l, GPUOS_LIFT_UNSUPPORTED, "PTX and cubin parameter layouts differ");
		goto out;
	}
	x->max_block = threads;
	x->smem_room = r.dynamic_smem ? GPUOS_LIFT_WINDOW - ((r.static_smem + 15) & ~15u) : 0;
	x->barriers = r.barriers;
	memcpy(x->reqntid, r.reqntid, sizeof(x->reqntid));
	x->maxntid =
	    r.maxntid[0] ? (unsigned long long)r.maxntid[0] * r.maxntid[1] * r.maxntid[2] : 0;
	x->max_threads = cfg->lift_max_threads;
	x->max_blocks = cfg->max_blocks;

	/* the engine (and its observer of driver calls) starts with the first lifted kernel */
	gpuos_report_short_name(l->demangled ? l->demangled : k->mangled, name, sizeof(name));
	rc = gpuos_init(NULL);
	if (!rc) {
		op = gpuos_fusion_define(name, src, r.ptx, r.ptx_len, &dev);
		rc = op < 0 ? op : 0;
	}
	if (rc) {
		free(x);
		l->lift = GPUOS_LIFT_OK;
		store_relaxed(&l->why, gpuos_why_undefined(rc));
		gpuos_debug("lift: %s: lifted, but no engine (%s)", name, strerror(-rc));
		goto out;
	}
	x->op = (unsigned)op;
	x->dev = dev;
	/* the engine now runs: its blocks are what launches must fit (a program's own
	 * gpuos_init may have chosen fewer threads than the config says) */
	if (x->max_block > gpuos_fusion_worker_threads() - 32 * GPUOS_FETCH_WARPS)
		x->max_block = gpuos_fusion_worker_threads() - 32 * GPUOS_FETCH_WARPS;
	l->lift = GPUOS_LIFT_OK;
	gpuos_debug("lift: %s lifted (%u parameter bytes, %s), operator %u", name, r.param_bytes,
		    gpuos_lift_warps_mode(&r) ? "warps" : "blocks", x->op);
	/* release: x's fields before the pointer; pairs with the launch path's acquire */
	store_release(&l->lifted, x);
out:
	gpuos_lift_free(&r);
}

enum gpuos_why gpuos_lifted_launch(const struct gpuos_lifted *x, dim3 g, dim3 b, void **args,
				   size_t smem, cudaStream_t st, bool ptsz)
{
	unsigned long long nb = (unsigned long long)g.x * g.y * g.z,
			   nt = (unsigned long long)b.x * b.y * b.z;
	unsigned char buf[GPUOS_LIFT_PARAMS_MAX] __attribute__((aligned(16)));
	unsigned char *p;
	uint64_t a[GPUOS_TASK_ARGS] = {0};
	size_t n = 0;
	int rc = gpuos_op_ready(x->op);

	if (rc <= 0) /* acquire inside: the operator is in before its tasks go */
		return rc ? GPUOS_WHY_NO_ENGINE : GPUOS_WHY_BUILDING;
	if (!nb || !nt)
		return GPUOS_WHY_LAUNCH_CONFIG; /* the runtime's error to give */
	if (nb * nt > x->max_threads || nb > x->max_blocks)
		return GPUOS_WHY_TOO_LARGE;
	if (nt > x->max_block || (x->barriers && nt % 32) || g.y > 0xffff || g.z > 0xffff ||
	    smem > x->smem_room || (x->maxntid && nt > x->maxntid) ||
	    (x->reqntid[0] &&
	     (b.x != x->reqntid[0] || b.y != x->reqntid[1] || b.z != x->reqntid[2])))
		return GPUOS_WHY_LAUNCH_CONFIG;
	a[0] = g.x | (uint64_t)g.y << 32 | (uint64_t)g.z << 48;
	a[1] = b.x | (uint64_t)b.y << 16 | (uint64_t)b.z << 32 | (uint64_t)smem << 48;
	/* the parameter buffer, as the runtime builds it: each argument at its offset */
	if (x->param_bytes <= GPUOS_LIFT_INLINE) {
		p = (unsigned char *)&a[2];
	} else {
		p = buf;
		n = (x->param_bytes + 15) & ~15u; /* wrap.c copies 16-byte pieces */
		memset(p, 0, n);
	}
	for (unsigned i = 0; i < x->nparams; i++)
		memcpy(p + x->params[i].offset, args[i], x->params[i].size);
	return gpuos_why_submitted(gpuos_fusion_submit_params(st, x->op, a, ptsz ? GPUOS_PTSZ : 0,
							     n ? buf : NULL, n, x->dev));
}
