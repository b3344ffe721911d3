/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_PTX_LIFT_H
#define GPUOS_PTX_LIFT_H

/*
 * ptx_lift: what the other parts may call. Reading CUDA binaries without a GPU:
 *   fatbin.c  - the fatbinary container (wrapper, header, entries, LZ4/ZSTD payloads)
 *   cubin.c   - a cubin (device ELF): kernels, parameter layout, registers, shared memory
 *   hostelf.c - a host executable or shared library: the fatbins it carries
 * Every parser takes (buf, len), checks every offset, and returns 0 or a negative errno
 * (-EINVAL malformed, -ENOENT not there, -ENOMEM, -ENOTSUP unknown compression/kind).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- fatbin.c ---- */
enum gpuos_fatbin_kind {
	GPUOS_FATBIN_PTX = 1,
	GPUOS_FATBIN_CUBIN = 2,
};

#define GPUOS_FATBIN_F_LZ4  0x1u /* payload LZ4-compressed (entry flag 0x2000) */
#define GPUOS_FATBIN_F_ZSTD 0x2u /* payload ZSTD-compressed (entry flag 0x8000) */
#define GPUOS_FATBIN_F_ARCH_SPECIFIC 0x4u /* sm_XXa / compute_XXa: that exact arch only */
#define GPUOS_FATBIN_F_FAMILY 0x8u /* sm_XXf: the arch family (same major) */

struct gpuos_fatbin_entry {
	unsigned kind;	     /* enum gpuos_fatbin_kind; other kinds are skipped by _next */
	unsigned arch;	     /* 90 for sm_90 / compute_90 */
	unsigned flags;	     /* GPUOS_FATBIN_F_* */
	const void *data;    /* payload as stored (inside the caller's buffer) */
	size_t data_len;     /* stored bytes (compressed size when compressed) */
	size_t raw_len;	     /* bytes after decompression (== data_len when stored plain) */
};

/*
 * In-process: the argument of __cudaRegisterFatBinary (a __fatBinC_Wrapper_t, version 1 or 2)
 * to the fatbin it points at and that fatbin's total size from its header. The wrapper is
 * trusted memory of the running program; the fatbin header is still validated.
 */
int gpuos_fatbin_from_wrapper(const void *wrapper, const void **fatbin, size_t *len);

/* Total size (header + entries) of the fatbin starting at buf; -EINVAL if not one. */
ssize_t gpuos_fatbin_size(const void *buf, size_t len);

/*
 * Iterate entries: *pos starts at 0; returns 1 and fills *e for each PTX or cubin entry,
 * 0 at the end, negative errno on a malformed entry.
 */
int gpuos_fatbin_next(const void *buf, size_t len, size_t *pos, struct gpuos_fatbin_entry *e);

/*
 * Choose the entry of @kind to use on a device of compute capability @sm (e.g. 90):
 * cubin: exact arch, else the newest cubin of the same major not newer than @sm;
 * PTX: the newest PTX not newer than @sm. Returns 0, or -ENOENT when none fits.
 */
int gpuos_fatbin_pick(const void *buf, size_t len, unsigned kind, unsigned sm,
		      struct gpuos_fatbin_entry *e);

/*
 * The entry's payload, decompressed if needed, into a new malloc'd buffer (*out, *out_len;
 * PTX text is NUL-terminated, the NUL not counted). Caller frees.
 */
int gpuos_fatbin_payload(const struct gpuos_fatbin_entry *e, void **out, size_t *out_len);

/* ---- cubin.c ---- */
struct gpuos_kparam {
	uint32_t ordinal;
	uint32_t offset; /* bytes from the start of the parameter buffer */
	uint32_t size;	 /* bytes */
};

#define GPUOS_KI_COOP	  0x1u /* uses grid-wide sync / cooperative launch */
#define GPUOS_KI_CLUSTER  0x2u /* cluster dimensions or cluster features */
#define GPUOS_KI_EXIT_BAR 0x4u /* reserved for ptx_lift hazard checks */

struct gpuos_kinfo {
	const char *name;	     /* mangled; owned by the gpuos_cubin */
	unsigned nparams;
	const struct gpuos_kparam *params; /* sorted by ordinal */
	unsigned param_bytes;	     /* size of the whole parameter buffer */
	int regs;		     /* -1 if the cubin does not say */
	unsigned static_smem;	     /* bytes of static shared memory */
	unsigned local_bytes;	     /* per-thread local memory (stack frame) */
	unsigned max_threads;	     /* from .maxntid/__launch_bounds__, 0 if none */
	unsigned flags;		     /* GPUOS_KI_* */
};

struct gpuos_cubin;

/* Parse a cubin (device ELF) from (buf, len); the result keeps its own copy. */
int gpuos_cubin_open(const void *buf, size_t len, struct gpuos_cubin **out);
void gpuos_cubin_close(struct gpuos_cubin *c); /* NULL is fine */
unsigned gpuos_cubin_arch(const struct gpuos_cubin *c); /* e.g. 90 */
unsigned gpuos_cubin_count(const struct gpuos_cubin *c);
const struct gpuos_kinfo *gpuos_cubin_kernel(const struct gpuos_cubin *c, unsigned i);
const struct gpuos_kinfo *gpuos_cubin_find(const struct gpuos_cubin *c, const char *name);
/* The stack frames of all its functions, kernels or not, added up: a bound on the stack any
 * call chain inside it needs (it has no recursion; nvlink refuses none, we assume it). */
unsigned gpuos_cubin_frames(const struct gpuos_cubin *c);
/* The constant banks its data sections fill (bit n: .nv.constant<n>): 0 holds a kernel's
 * parameters; 2 the compiler's own constants (a switch's jump table, say), 3 __constant__
 * variables. Banks are bound per launched kernel: a function called from another module's
 * kernel reads that kernel's bank 2 and 3, not its own. */
unsigned gpuos_cubin_const_banks(const struct gpuos_cubin *c);

/*
 * The cubin a device of compute capability @sm would run from the fatbin (buf, len): pick,
 * decompress, parse. *arch (if not NULL) gets the picked cubin's arch. -ENOENT if none fits.
 */
int gpuos_cubin_from_fatbin(const void *buf, size_t len, unsigned sm, struct gpuos_cubin **out,
			    unsigned *arch);

/* ---- lift.c ---- */
/*
 * Why a kernel cannot be lifted into the worker (gpuos inspect and the report show the key).
 * X(id, key, text)
 */
#define GPUOS_LIFT_REASONS(X)                                                                      \
	X(OK, "ok", "liftable")                                                                   \
	X(PARSE, "ptx_parse", "PTX the lifter does not understand")                               \
	X(NO_ENTRY, "no_entry", "no such .entry in the PTX")                                      \
	X(NO_PTX, "no_ptx", "no PTX the device can use in the binary")                            \
	X(GRID_SYNC, "grid_sync", "grid-wide sync (cooperative launch)")                          \
	X(DYNAMIC_PARALLELISM, "dynamic_parallelism", "launches kernels from the device")          \
	X(CLUSTER, "cluster", "thread-block cluster features")                                    \
	X(TEXTURE, "texture", "texture instructions")                                             \
	X(SURFACE, "surface", "surface instructions")                                             \
	X(GRIDDEPCONTROL, "griddepcontrol", "programmatic dependent launch (griddepcontrol)")      \
	X(SETMAXNREG, "setmaxnreg", "setmaxnreg")                                                 \
	X(EXIT_BEFORE_BARRIER, "exit_before_barrier", "a barrier reachable after an early exit")   \
	X(BLOCK_TOO_LARGE, "block_too_large", "requires more threads a block than the worker's")   \
	X(SHARED_TOO_LARGE, "shared_too_large", "static shared memory beyond the worker's window") \
	X(PARAMS_TOO_LARGE, "params_too_large", "parameters over 4 KiB")                          \
	X(MODULE_GLOBAL, "module_global", "uses a module-scope .global variable")                 \
	X(MODULE_CONST, "module_const", "uses a module-scope .const variable")                    \
	X(EXTERN_CALL, "extern_call", "calls a function outside its module")                      \
	X(TARGET_TOO_NEW, "target_too_new", "PTX target newer than the device")                   \
	X(UNSUPPORTED, "unsupported", "a construct the lifter does not rewrite")

enum gpuos_lift_reason {
#define X(id, key, text) GPUOS_LIFT_##id,
	GPUOS_LIFT_REASONS(X)
#undef X
	GPUOS_LIFT_REASON_COUNT
};

const char *gpuos_lift_reason_key(int reason);
const char *gpuos_lift_reason_text(int reason);

struct gpuos_lift_opts {
	unsigned max_threads; /* the worker's compute threads a block (0: 480) */
	unsigned smem_window; /* bytes of shared memory the worker lends a task (0: GPUOS_LIFT_WINDOW) */
	unsigned sm;	      /* the device, e.g. 90 (0: no target check) */
};

struct gpuos_lift_result {
	int reason;	      /* enum gpuos_lift_reason */
	char detail[160];     /* what and where, e.g. "tex.1d.v4.f32.s32 at line 42" */
	char *ptx;	      /* the lifted module (NUL-terminated), when reason == OK */
	size_t ptx_len;
	char func[160];	      /* its .func: gpuos_lift_<entry> */
	unsigned nparams, param_bytes;
	struct gpuos_kparam params[64]; /* offsets from the PTX ABI (the cubin's agree) */
	unsigned static_smem; /* bytes of the window its static .shared variables take */
	bool dynamic_smem;    /* uses extern .shared: the launch's bytes follow static_smem */
	bool barriers;	      /* has block barriers: needs whole warps (block size % 32 == 0) */
	unsigned reqntid[3], maxntid[3];
	unsigned ptx_version, target_sm;
};

/*
 * Lift the .entry @entry of the PTX module (buf, len) into a module holding one
 * `.visible .func` the worker can call (the ABI is written at the top of lift.c), plus the
 * module's device functions it calls, renamed. Returns 0 with r->reason OK and r->ptx set;
 * 1 with r->reason and r->detail saying why it cannot be lifted; -ENOMEM.
 * Free with gpuos_lift_free (r may be reused after).
 */
int gpuos_lift(const char *buf, size_t len, const char *entry, const struct gpuos_lift_opts *o,
	       struct gpuos_lift_result *r);
void gpuos_lift_free(struct gpuos_lift_result *r);

/* Call fn(name, arg) for every .entry of the PTX module; -EINVAL if it does not tokenize. */
int gpuos_lift_entries(const char *buf, size_t len, void (*fn)(const char *name, void *arg),
		       void *arg);

/* ---- wrap.c ---- */
/*
 * A lifted kernel's launch as a worker task (kernels/task.h):
 *   a[0] = grid.x | grid.y << 32 | grid.z << 48
 *   a[1] = block.x | block.y << 16 | block.z << 32 | dynamic shared bytes << 48
 *   a[2..5] = the parameter buffer when it fits (GPUOS_LIFT_INLINE bytes), else a[2] = the
 *             device address of a 16-byte aligned copy of it (fusion's arena)
 * The lifted kernel's shared memory takes up to GPUOS_LIFT_WINDOW bytes of the worker's
 * window; the parameter copy the rest.
 */
#define GPUOS_LIFT_INLINE      32u
#define GPUOS_LIFT_PARAMS_MAX  4096u
#define GPUOS_LIFT_WINDOW      (40u * 1024)

/* True when the kernel's blocks need no barrier and no shared memory (see wrap.c). */
bool gpuos_lift_warps_mode(const struct gpuos_lift_result *r);

/*
 * The operator source (CUDA C++ for the jit) that runs @r's lifted function for each task:
 * its length, -EINVAL if @r is not a lifted kernel, -ENOSPC if buf is too small (4 KiB is
 * enough).
 */
int gpuos_lift_wrapper(const struct gpuos_lift_result *r, char *buf, size_t len);

/* ---- hostelf.c ---- */
/*
 * For each fatbin in a host ELF file (executable or shared library) held in (buf, len):
 * the .nv_fatbin section (fatbins back to back, each aligned), then __nv_relfatbin.
 * Stops early and returns fn's value when fn returns non-zero. -ENOENT if no section.
 */
int gpuos_hostelf_for_each_fatbin(const void *buf, size_t len,
				  int (*fn)(const void *fatbin, size_t len, void *arg), void *arg);

#endif
