/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_INTERPOSE_H
#define GPUOS_INTERPOSE_H

/*
 * interpose: the hooks (hooks_*.c), the kernel registry (registry.c), the report (report.c)
 * and the shim's lazily initialised state (shim.c). What the other parts may call.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <cuda_runtime_api.h>

#include "interpose/config.h"
#include "ptx_lift/ptx_lift.h"

/* Why a launch went where it went; the report's columns. */
#define GPUOS_WHY_LIST(X)                                                                          \
	X(DIVERTED, "diverted", "diverted")                                                       \
	X(DISABLED, "disabled", "gpuos disabled")                                                 \
	X(DENIED, "denied", "denied by config")                                                   \
	X(NOT_ALLOWED, "not_allowed", "not in allowlist")                                         \
	X(NO_CATALOG, "no_catalog", "no catalog match")                                           \
	X(NOT_LIFTABLE, "not_liftable", "not liftable")                                           \
	X(BUILDING, "building", "operator building")                                              \
	X(NO_ENGINE, "no_engine", "no engine")                                                    \
	X(ENGINE_BUSY, "engine_busy", "engine busy")                                              \
	X(OPS_FULL, "ops_full", "operator table full")                                            \
	X(LAUNCH_CONFIG, "launch_config", "launch config")                                        \
	X(TOO_LARGE, "too_large", "too large")                                                    \
	X(BAD_ARGS, "unexpected_args", "arguments not as the catalog expects")                    \
	X(CAPTURING, "capturing", "stream capturing")                                             \
	X(STREAM_BUSY, "stream_busy", "stream in another thread's call")                          \
	X(OTHER_DEVICE, "other_device", "stream of another device than the current")             \
	X(UNKNOWN, "unknown_kernel", "kernel not registered")

enum gpuos_why {
#define X(id, key, text) GPUOS_WHY_##id,
	GPUOS_WHY_LIST(X)
#undef X
	GPUOS_WHY_COUNT
};

extern const char *const gpuos_why_key[GPUOS_WHY_COUNT];
extern const char *const gpuos_why_text[GPUOS_WHY_COUNT];

/* What the cubin says of a kernel: its parameter layout and resources. */
struct gpuos_kmeta {
	unsigned nparams, param_bytes;
	struct gpuos_kparam *params;
	int regs;
	unsigned static_smem, local_bytes, max_threads, flags;
};

/* A registered fatbinary (one per __cudaRegisterFatBinary). */
struct gpuos_fatbin_reg {
	void **handle;
	const void *wrapper;
	struct gpuos_kernel *kernels; /* registered from it, linked by next_in_fb */
	int info_state;		      /* 0 not read, 1 read, <0 errno; under the registry lock */
	struct gpuos_kmeta *meta;     /* one per kernel of the cubin read, when info_state == 1 */
	unsigned ptx_archs[8], nptx;  /* PTX entries it carries */
	unsigned sass_archs[8], nsass;
	unsigned sm;		      /* arch the cubin was picked for */
	char *path;		      /* object file it came from (dladdr) */
	char *ptx;		      /* the PTX lifted from (lifted.c), once read; NUL-ended */
	size_t ptx_len;
	int ptx_state;		      /* 0 not read, 1 read, <0 errno */
};

/* What the launch path needs of a kernel once it has launched; allocated at first launch. */
struct gpuos_live {
	_Atomic int why;	  /* enum gpuos_why of its launches unless lifted says more */
	_Atomic int info_pending; /* set until the cubin layout was read after a launch */
	_Atomic bool loaded;	  /* a real launch of it worked: the driver has its code */
	char *demangled;	  /* owned */
	char *mangled;		  /* owned copy */
	_Atomic uint64_t count[GPUOS_WHY_COUNT];
	struct gpuos_live *next; /* every live record, for the report */
	struct gpuos_kernel *kernel;
	_Atomic bool prepared;	/* catalog or lifted prepare ran (or runs) for it: once */
	int lift;		/* enum gpuos_lift_reason once tried, else -1 */
	char lift_detail[160];	/* and where (ptx_lift's detail) */
	struct gpuos_lifted *_Atomic lifted; /* its operator, once defined (lifted.c) */
	bool catalog;			     /* the catalog knows it (set at first launch) */
	struct gpuos_catk *_Atomic cat;	     /* its catalog operator, once defined (catalog.c) */
};

/* A registered kernel (one per __cudaRegisterFunction). */
struct gpuos_kernel {
	const void *stub;	      /* host stub: the key of cudaLaunchKernel */
	cudaKernel_t handle;	      /* from __cudaGetKernel: the key of __cudaLaunchKernel */
	const char *mangled;	      /* the registering module's string */
	struct gpuos_fatbin_reg *fb;
	struct gpuos_kernel *next_in_fb;
	struct gpuos_live *_Atomic live; /* NULL until its first launch */
	const struct gpuos_kmeta *meta;	 /* cubin layout; NULL until read (or not found) */
};

/* ---- registry.c ---- */
void gpuos_reg_add_fatbin(void **handle, const void *wrapper);
void gpuos_reg_add_function(void **handle, const void *stub, const char *mangled);
void gpuos_reg_add_handle(const void *stub, cudaKernel_t handle);
void gpuos_reg_remove_fatbin(void **handle);

/* O(1): the kernel a host stub or cudaKernel_t names, or NULL. Lock-free. */
struct gpuos_kernel *gpuos_reg_lookup(const void *key);

/* What @cfg and the catalog say of a kernel by its demangled name (also gpuos inspect's). */
enum gpuos_why gpuos_reg_decide(const struct gpuos_cfg *cfg, const char *demangled);

/*
 * First launch of @k (NULL: an unregistered handle): demangle, ask the config, publish the
 * live record. Slow path, once per kernel.
 */
struct gpuos_live *gpuos_reg_first_launch(struct gpuos_kernel *k);

/*
 * Read the cubin layout of @l's kernel, and of every other kernel of its fatbin, for the
 * current device. Once per fatbin; then k->meta is set (or the fatbin's info_state < 0).
 */
void gpuos_reg_read_info(struct gpuos_live *l);

/* Every live record, newest first (acquire; pairs with the release in first_launch). */
struct gpuos_live *gpuos_reg_live_list(void);

/* Put @l, a record of the shim's own (interpose/copies.c), on the live list: reported. */
void gpuos_reg_publish(struct gpuos_live *l);

/* The record that counts launches of handles nobody registered. */
struct gpuos_live *gpuos_reg_unknown(void);

/* Counters to zero (fork child). */
void gpuos_reg_reset_counts(void);
void gpuos_reg_lock(void);
void gpuos_reg_unlock(void);
uint64_t gpuos_reg_nkernels(void);

/* Demangle with libstdc++'s __cxa_demangle; malloc'd copy of @mangled if it is no C++ name. */
char *gpuos_demangle(const char *mangled);

/* The current device's compute capability (0 if unknown); keeps the runtime's error state. */
unsigned gpuos_reg_current_sm(void);

/* Where a launch went, from what the engine's submit said (catalog.c, lifted.c). */
static inline enum gpuos_why gpuos_why_submitted(int rc)
{
	switch (rc) {
	case 0:
		return GPUOS_WHY_DIVERTED;
	case -EBUSY:
		return GPUOS_WHY_CAPTURING;
	case -EINPROGRESS:
		return GPUOS_WHY_STREAM_BUSY;
	case -EXDEV: /* the operator's device is not the stream's */
		return GPUOS_WHY_OTHER_DEVICE;
	case -ENODEV:
		return GPUOS_WHY_NO_ENGINE;
	default: /* -EAGAIN: a park, or no parameter chunk came free */
		return GPUOS_WHY_ENGINE_BUSY;
	}
}

/* Why an operator's kernel falls through when defining it failed with @rc. */
static inline enum gpuos_why gpuos_why_undefined(int rc)
{
	return rc == -ENOSPC ? GPUOS_WHY_OPS_FULL : GPUOS_WHY_NO_ENGINE;
}

/* Why a catalog launch falls through when gpuos_catalog_op said @op (<= 0). */
static inline enum gpuos_why gpuos_why_op(int op)
{
	return op ? gpuos_why_undefined(op) : GPUOS_WHY_BUILDING;
}

/* ---- lifted.c ---- */
struct gpuos_lifted;

/*
 * After the first launch of @l's kernel went through (the device is set up, its layout read):
 * lift it and define its operator, or set why it cannot be. Once per kernel; slow path.
 */
void gpuos_lifted_prepare(struct gpuos_live *l);

/*
 * A launch of a lifted kernel: GPUOS_WHY_DIVERTED if it became a task, else why it falls
 * through (the caller launches it for real).
 */
enum gpuos_why gpuos_lifted_launch(const struct gpuos_lifted *x, dim3 g, dim3 b, void **args,
				   size_t smem, cudaStream_t st, bool ptsz);

/* ---- catalog.c ---- */
struct gpuos_catk;
struct gpuos_cat_match;

#define GPUOS_CAT_DEVS 16 /* devices a catalog operator may be on (as fusion's engines) */

/* A catalog operator (a kernel's, or the copies'), defined on each device at its first task
 * there. */
struct gpuos_cat_ops {
	_Atomic int op[GPUOS_CAT_DEVS]; /* 0 not yet; its id, or a negative errno (none there) */
};

/*
 * The operator @o (@m's, or with @m NULL the copy operator) for a task of this thread: its
 * id once ready, with its device in *dev; 0 while it builds; a negative errno if it cannot
 * be. The device is the one of this thread's last task where that has the operator ready
 * (no driver call), else the current one, where it is defined at this first use. @recheck:
 * the current device in any case (a task to the other failed with -EXDEV).
 */
int gpuos_catalog_op(struct gpuos_cat_ops *o, const struct gpuos_cat_match *m, bool recheck,
		     int *dev);

/* 0 if the catalog has an operator for this kernel (its demangled name), with its key
 * ("add.float32.contig") in (key, len) unless key is NULL; -ENOENT if not. */
int gpuos_catalog_key(const char *demangled, char *key, size_t len);

/*
 * After the first launch of @l's kernel went through (its layout read): define its catalog
 * operator, or set why it cannot run in the worker. Once per kernel; slow path.
 */
void gpuos_catalog_prepare(struct gpuos_live *l);

/* A launch of a catalog kernel: GPUOS_WHY_DIVERTED if it became a task, else why not. */
enum gpuos_why gpuos_catalog_launch(struct gpuos_catk *c, dim3 g, dim3 b, void **args, size_t smem,
				    cudaStream_t st, bool ptsz);

/* ---- shim.c ---- */
struct gpuos_shim {
	struct gpuos_cfg cfg;
};
extern struct gpuos_shim gpuos_shim;
/* Lazy, thread-safe initialisation; every hook calls it first. */
void gpuos_shim_init(void);

/* ---- report.c ---- */
/* Write the report to @dest ("1"/"stderr": table on stderr; *.json: JSON; else a table in
 * that file; %p: the pid). 0, or -errno if it could not be written. */
int gpuos_report_write(const char *dest);
/* @s as a JSON string literal (quoted, escaped) on @f. */
void gpuos_report_json_str(FILE *f, const char *s);
/* A short display form of a demangled kernel name into buf. */
void gpuos_report_short_name(const char *demangled, char *buf, size_t len);

#endif
