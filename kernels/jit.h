/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_KERNELS_JIT_H
#define GPUOS_KERNELS_JIT_H

/*
 * Run-time compilation of operator sources into executable cubins, with an on-disk cache.
 *
 * NVRTC compiles the source as relocatable device code (-rdc=true: the host reads a device
 * function's address and the worker calls it through a pointer from another module, which
 * needs absolute code addresses) and nvJitLink links it into an executable cubin. Operators
 * include only "gpuos_task.h" (kernels/task.h). Both libraries are dlopen'ed on the first
 * build that misses the cache; a process whose builds all hit the cache never loads them.
 *
 * The caller must pass "-maxrregcount=<R>" in opts, R = the calling kernel's register count:
 * nothing fixes up registers across an indirect call into another module, and an operator
 * using more than its caller has faults (seen on sm_90: CUDA_ERROR_ILLEGAL_INSTRUCTION).
 *
 * The source must define gpuos_op_entry (include/gpuos.h). The build appends a kernel that
 * calls through it and is never launched: nvlink keeps only code it can reach from a kernel,
 * and a module without one lost the helpers its operator calls (IEEE division's slow path
 * became a call to address 0, an illegal address on sm_90). An indirect call reaches every
 * function whose address is taken, so with the anchor all of them and their callees stay.
 */
#include <stdbool.h>
#include <stddef.h>

#define GPUOS_JIT_MAX_OPTS 32

struct gpuos_jit_req {
	const char *src; /* operator source: len bytes, need not end in NUL */
	size_t len;
	const char *name;	 /* for messages and NVRTC's file name; NULL: "gpuos_op" */
	unsigned sm;		 /* target, e.g. 90 for sm_90 */
	const char *cache_dir;	 /* NULL or "": $XDG_CACHE_HOME/gpuos, else $HOME/.cache/gpuos */
	int driver_version;	 /* cuDriverGetVersion(); only part of the cache key */
	const char *const *opts; /* extra NVRTC options (nopts of them), part of the key */
	unsigned nopts;
	const char *ptx; /* optional: a PTX module linked in with the source's code (a
			  * lifted kernel, ptx_lift), ptx_len bytes; part of the key */
	size_t ptx_len;
};

struct gpuos_jit_image {
	void *data; /* the executable cubin (ELF ET_EXEC, EM_CUDA); malloc'd */
	size_t size;
	bool cached; /* read from the cache, not compiled */
};

struct gpuos_jit_stats {
	unsigned nvrtc_loaded; /* times libnvrtc was dlopen'ed: 0 or 1 a process */
	unsigned compiles;     /* NVRTC compilations attempted */
	unsigned hits;	       /* builds answered from the cache */
	unsigned misses;       /* builds the cache could not answer (compiled or failed) */
};

/*
 * Build @req into @out: from the cache when it holds a valid image for the same key (source,
 * sm, options, driver version, the identity of the NVRTC and nvJitLink files, gpuos_task.h),
 * else compile, link and store it. The cache is best effort: a corrupt file is rebuilt and
 * an unwritable folder only means no caching. Free @out with gpuos_jit_image_free().
 * Returns 0; -EINVAL for a bad request or a source that does not compile or link (the
 * compiler log's first lines are logged); -ENOENT without NVRTC or nvJitLink; -ENOMEM; -EIO.
 * Thread-safe; a miss blocks for the compile (40-350 ms measured): see gpuos_jit_request().
 */
int gpuos_jit_build(const struct gpuos_jit_req *req, struct gpuos_jit_image *out);

/* Threads that may build queued requests at once (1 until set; at most
 * GPUOS_JIT_MAX_THREADS); 0: a quarter of the online CPUs from 8 on, else 1. The pool grows
 * as requests find every thread busy and shrinks only at gpuos_jit_shutdown(). */
#define GPUOS_JIT_MAX_THREADS 8
void gpuos_jit_set_threads(unsigned n);

/*
 * Queue a build of @req for the background jit threads (started on first use) so that a cold
 * compile never blocks the caller. @req is copied. Requests start in order, and with one
 * thread complete in order: @done runs once for each, on a jit thread, with
 * gpuos_jit_build()'s result; @img (NULL on error)
 * lives until @done returns, which may keep the image by moving it out (*mine = *img;
 * img->data = NULL). Returns 0, -EINVAL, -ENOMEM, -ESHUTDOWN while gpuos_jit_shutdown() runs,
 * or a pthread_create() error. In a child of fork() the parent's queued requests are dropped
 * without a call and the next request starts a new thread.
 */
int gpuos_jit_request(const struct gpuos_jit_req *req,
		      void (*done)(void *ctx, int err, struct gpuos_jit_image *img), void *ctx);

/*
 * Finish the queued requests and join the jit threads. Safe when none started, twice, and
 * from @done (which returns at once: a thread cannot join itself).
 */
void gpuos_jit_shutdown(void);

/*
 * Drop the queued requests (each @done gets -ECANCELED), wait for those being built and
 * join the jit threads: at process exit, before the CUDA runtime tears the context down under
 * a build that would load its module.
 */
void gpuos_jit_cancel(void);

/* Free the image's data (NULL is fine); *img is left empty. */
void gpuos_jit_image_free(struct gpuos_jit_image *img);

/*
 * The cache file a build of @req would read and write, in buf. Finds the libraries without
 * loading them (unless only the dynamic linker knows where they are). Returns 0, -EINVAL,
 * -ENOENT without a toolchain or a cache folder, -ENAMETOOLONG.
 */
int gpuos_jit_cache_path(const struct gpuos_jit_req *req, char *buf, size_t len);

void gpuos_jit_get_stats(struct gpuos_jit_stats *st);

#endif
