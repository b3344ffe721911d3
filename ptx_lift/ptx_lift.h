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

/*
 * The cubin a device of compute capability @sm would run from the fatbin (buf, len): pick,
 * decompress, parse. *arch (if not NULL) gets the picked cubin's arch. -ENOENT if none fits.
 */
int gpuos_cubin_from_fatbin(const void *buf, size_t len, unsigned sm, struct gpuos_cubin **out,
			    unsigned *arch);

/* ---- hostelf.c ---- */
/*
 * For each fatbin in a host ELF file (executable or shared library) held in (buf, len):
 * the .nv_fatbin section (fatbins back to back, each aligned), then __nv_relfatbin.
 * Stops early and returns fn's value when fn returns non-zero. -ENOENT if no section.
 */
int gpuos_hostelf_for_each_fatbin(const void *buf, size_t len,
				  int (*fn)(const void *fatbin, size_t len, void *arg), void *arg);

#endif
