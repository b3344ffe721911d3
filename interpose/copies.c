// SPDX-License-Identifier: MIT
/*
 * Device-to-device copies as worker tasks. PyTorch makes a same-type copy_ of contiguous
 * tensors (clone, contiguous(), a KV cache's update...) a cudaMemcpyAsync; between tiny
 * kernels each one costs as much as a launch and ends its stream's batch. With the catalog
 * on, a copy of at most max_copy_bytes whose two ranges each lie in one allocation of plain
 * device memory of the engine's context becomes one task of the copy operator
 * (kernels/catalog.c) in its stream's order. Any other copy goes to the runtime unchanged,
 * so its checks and errors are the runtime's own.
 *
 * The report counts them in one row, "cudaMemcpyAsync (device to device)": the config's
 * patterns see that name (deny = cudaMemcpyAsync* keeps every copy a copy).
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "common/atomics.h"
#include "common/log.h"
#include "common/probe.h"
#include "fusion/fusion.h"
#include "interpose/interpose.h"
#include "interpose/real.h"
#include "kernels/task.h" /* before gpuos.h: its enum, then gpuos.h's same-valued macros */
#include "include/gpuos.h"

#define GPUOS_EXPORT __attribute__((visibility("default")))
#define unlikely(x)  __builtin_expect(!!(x), 0)

static char name[] = "cudaMemcpyAsync (device to device)";
static struct gpuos_live copies = {.why = GPUOS_WHY_BUILDING, .lift = -1, .demangled = name};
static pthread_once_t published = PTHREAD_ONCE_INIT;
static struct gpuos_cat_ops copy_ops; /* its operator, on each device it ran on */
static _Atomic bool prepared;	      /* it was defined on the first copy's device */

/* The row, on the report's list, with what the config says of it: at the first copy. */
static void publish(void)
{
	int why;

	gpuos_shim_init();
	why = gpuos_reg_decide(&gpuos_shim.cfg, name); /* no kernel: at best "no catalog" */
	if (why == GPUOS_WHY_NO_CATALOG && gpuos_shim.cfg.catalog)
		why = GPUOS_WHY_BUILDING; /* until prepare has defined the operator */
	store_relaxed(&copies.why, why);
	gpuos_reg_publish(&copies);
}

/*
 * After a copy went through, the operator, once (other copies fall through meanwhile): as a
 * catalog kernel's after its first launch, when the caller's context is set up.
 */
static void prepare(void)
{
	static _Atomic bool once;
	int op, dev = 0;

	if (load_relaxed(&copies.why) != GPUOS_WHY_BUILDING || atomic_exchange(&once, true))
		return;
	op = gpuos_init(NULL);
	op = op ? op : gpuos_catalog_op(&copy_ops, NULL, true, &dev);
	if (op < 0) {
		store_relaxed(&copies.why, gpuos_why_undefined(op));
		gpuos_debug("copies: no operator (%s)", strerror(-op));
		return;
	}
	/* release: nothing of ours to publish but the flag (copy_ops has its own order) */
	store_release(&prepared, true);
}

/* GPUOS_WHY_DIVERTED if the copy became a task, else why not. */
static int divert(void *d, const void *s, size_t n, cudaStream_t st, bool ptsz)
{
	uint64_t a[GPUOS_TASK_ARGS] = {0};
	int op, dev, rc;

	/* acquire: pairs with the release in prepare */
	if (!load_acquire(&prepared))
		return load_relaxed(&copies.why);
	/* acquire inside: the operator is in */
	if ((op = gpuos_catalog_op(&copy_ops, NULL, false, &dev)) <= 0)
		return gpuos_why_op(op);
	if (!n)
		return GPUOS_WHY_LAUNCH_CONFIG; /* nothing to order: the runtime's no-op */
	if (n > gpuos_shim.cfg.max_copy_bytes || n > UINT32_MAX)
		return GPUOS_WHY_TOO_LARGE;
	if (gpuos_fusion_capturing())
		return GPUOS_WHY_CAPTURING; /* no driver query of ours inside a capture */
	/* both in memory the workers can reach, the whole range in one allocation: else the
	 * runtime says what is wrong with it, and a worker never faults on it */
	a[0] = (uint64_t)(uintptr_t)d;
	a[1] = (uint64_t)(uintptr_t)s;
	a[4] = n;
	for (int tried = -1;;) {
		GPUOS_PROBE_BEGIN(t0);
		rc = gpuos_fusion_owns(dev, d, n);
		if (!rc)
			rc = gpuos_fusion_owns(dev, s, n);
		GPUOS_PROBE_END(OWNS, t0);
		if (!rc)
			rc = gpuos_fusion_submit_params(st, (unsigned)op, a, ptsz ? GPUOS_PTSZ : 0,
							NULL, 0, dev);
		/* not that device's memory or stream: the thread may have changed devices
		 * since its last task; once more, on the current one if that is another */
		if (tried >= 0 || (rc != -EFAULT && rc != -EXDEV))
			break;
		tried = dev;
		if ((op = gpuos_catalog_op(&copy_ops, NULL, true, &dev)) <= 0)
			return gpuos_why_op(op);
		if (dev == tried)
			break;
	}
	/* -ENODEV: no engine there (a fork's child); -EFAULT: not memory the workers reach */
	return rc == -EFAULT ? GPUOS_WHY_BAD_ARGS : gpuos_why_submitted(rc);
}

#define COPY_HOOK(hook, ptsz)                                                                      \
	GPUOS_EXPORT cudaError_t hook(void *d, const void *s, size_t n, enum cudaMemcpyKind k,     \
				      cudaStream_t st)                                             \
	{                                                                                          \
		gpuos_real_##hook##_t real = REAL(hook);                                           \
		cudaError_t rc;                                                                    \
		int why;                                                                           \
                                                                                                   \
		if (unlikely(!real))                                                               \
			return cudaErrorSharedObjectSymbolNotFound;                                \
		if (k != cudaMemcpyDeviceToDevice && k != cudaMemcpyDefault)                       \
			return real(d, s, n, k, st);                                               \
		GPUOS_PROBE_BEGIN(t0_);                                                            \
		pthread_once(&published, publish);                                                 \
		why = divert(d, s, n, st, ptsz);                                                   \
		fetch_add_relaxed(&copies.count[why], 1);                                          \
		if (why == GPUOS_WHY_DIVERTED) {                                                   \
			GPUOS_PROBE_END(COPY, t0_);                                                \
			return cudaSuccess;                                                        \
		}                                                                                  \
		rc = real(d, s, n, k, st);                                                         \
		if (unlikely(!load_relaxed(&prepared)) && rc == cudaSuccess)                       \
			prepare();                                                                 \
		GPUOS_PROBE_END(COPY_FALL, t0_);                                                   \
		return rc;                                                                         \
	}

COPY_HOOK(cudaMemcpyAsync, false)
COPY_HOOK(cudaMemcpyAsync_ptsz, true)
