/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_KERNELS_CATALOG_H
#define GPUOS_KERNELS_CATALOG_H

/*
 * The PyTorch signature catalog: which operator computes what a PyTorch 2.11 elementwise
 * kernel computes, bit for bit. A kernel is matched by the structure of its demangled name
 * (sig.h: family, functor, element type); the entry says how the functor holds its scalars
 * and gives the element's expression, from which the operator's CUDA source is generated
 * (one operator per entry, element type and layout, built by the jit like any other).
 *
 * Operators run one task per launch. Contiguous layout (vectorized_elementwise_kernel and
 * unrolled_elementwise_kernel without casts), task arguments:
 *   a0 output, a1..a3 inputs, a4 N, a5 scalar 0, a3 scalar 1 (their bytes, zero-extended)
 * Cast layout (unrolled_elementwise_kernel with LoadWithCast/StoreWithCast): the same, and
 * a4's upper half the c10::ScalarType of the output and each input as stored, a byte each
 * (GPUOS_CAT_CAST_TYPES only: their conversions are C's casts, as c10::convert's).
 * Strided layout (elementwise_kernel with its OffsetCalculator): a0 N, a1 dims, a2 the
 * parameter block (struct gpuos_cat_strided, copied by the engine), a5 and a3 the scalars.
 * So an entry with two scalars has at most two inputs.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/sig.h"

/* c10::ScalarType values of the element types the catalog handles. */
enum gpuos_cat_dtype {
	GPUOS_DT_U8 = 0,
	GPUOS_DT_I8 = 1,
	GPUOS_DT_I16 = 2,
	GPUOS_DT_I32 = 3,
	GPUOS_DT_I64 = 4,
	GPUOS_DT_F16 = 5,
	GPUOS_DT_F32 = 6,
	GPUOS_DT_F64 = 7,
	GPUOS_DT_BOOL = 11,
	GPUOS_DT_BF16 = 15,
};
#define GPUOS_DT_BIT(t) (1u << (t))
#define GPUOS_DT_FLOATS                                                                            \
	(GPUOS_DT_BIT(GPUOS_DT_F32) | GPUOS_DT_BIT(GPUOS_DT_F16) | GPUOS_DT_BIT(GPUOS_DT_BF16))
#define GPUOS_DT_INTS (GPUOS_DT_BIT(GPUOS_DT_I32) | GPUOS_DT_BIT(GPUOS_DT_I64))
/* what the cast layout converts between, either way */
#define GPUOS_CAT_CAST_TYPES                                                                       \
	(GPUOS_DT_INTS | GPUOS_DT_BIT(GPUOS_DT_BOOL) | GPUOS_DT_BIT(GPUOS_DT_F32))

enum gpuos_cat_layout {
	GPUOS_CAT_CONTIG = 0,  /* vectorized, unrolled without casts: a pointer and N */
	GPUOS_CAT_STRIDED = 1, /* elementwise_kernel: OffsetCalculator */
	GPUOS_CAT_CAST = 2,    /* unrolled with casts: CONTIG's, each array's dtype in a4 */
	GPUOS_CAT_LAYOUTS,     /* (the elementwise entries' layouts) */
	GPUOS_CAT_REDUCE = GPUOS_CAT_LAYOUTS, /* reduce_kernel: a reduction entry's only one */
	GPUOS_CAT_LAYER_NORM,		      /* vectorized_layer_norm_kernel, float32 */
	GPUOS_CAT_CONCAT,		      /* torch.cat, any dtype */
	GPUOS_CAT_ARANGE,		      /* torch.arange: a0 out, a1 N, a2 start, a3 step */
	GPUOS_CAT_INDEX_SELECT,		      /* index_select (embedding), any dtype */
	GPUOS_CAT_SOFTMAX,		      /* softmax_warp_forward: a0 dst, a1 src, a2 rows,
					       * a3 elements a row; _backward: a0 gradInput,
					       * a1 grad, a4 the forward's output */
};

/* softmax: the widest rows (log2) whose elements a worker thread holds within its registers
 * and stack reserve (check_catalog measures the frames) */
#define GPUOS_CAT_SOFTMAX_L2E 10

/* arange's element types (every case of its dispatch) */
#define GPUOS_CAT_ARANGE_DTYPES                                                                    \
	(GPUOS_DT_FLOATS | GPUOS_DT_INTS | GPUOS_DT_BIT(GPUOS_DT_F64) |                            \
	 GPUOS_DT_BIT(GPUOS_DT_I16) | GPUOS_DT_BIT(GPUOS_DT_I8) | GPUOS_DT_BIT(GPUOS_DT_U8))

/* Where the functor's scalars come from, and in which type they are held. */
enum gpuos_cat_scalar {
	GPUOS_SC_OPMATH = 0,  /* at::opmath_type<T>: float for Half and BFloat16 */
	GPUOS_SC_ELEM = 1,    /* T itself (FillFunctor, threshold's captures) */
	GPUOS_SC_INT = 2,     /* a 4-byte int whatever T is (the comparisons' op_) */
	GPUOS_SC_OP_ELEM = 3, /* an int op at 0, then a T (compare_scalar's captures) */
	GPUOS_SC_CLAMP = 4,   /* an int at 0, then two 4-byte opmath values read as one word
			       * (launch_clamp_scalar's {ClampLimits; lim0; lim1}) */
};

struct gpuos_cat_entry {
	const char *name;  /* the operator, as the report and tests name it */
	const char *op;	   /* gpuos_sig.op it matches */
	unsigned lam;	   /* 0, or the index its functor's first lambda must have (sig.h) */
	unsigned nin;	   /* inputs (arrays after the output) */
	unsigned dtypes;   /* GPUOS_DT_BIT mask of element types */
	int in0_dtype;	   /* -1: input 0 is of the element type; else that type (where's bool) */
	int out_dtype;	   /* -1: the output is of the element type; else that type */
	unsigned nscalars; /* scalars the functor holds */
	int scalar_kind;   /* enum gpuos_cat_scalar */
	bool after_f;	   /* the scalars follow a 1-byte functor (A/BUnaryFunctor's f) */
	bool lambda;	   /* a lambda that captures: captures, 8-aligned, then a host pointer */
	const char *expr;  /* the element, in opmath: inputs a, b, c; scalars s0, s1 */
	bool in1_bool;	   /* input 1 is bool whatever the element type (masked_fill's mask) */
};

/*
 * A reduction: reduce_kernel in the simple form (sig.h), computed by one worker block in
 * PyTorch's order: each of the kernel's threads in turn folds its inputs as Reduce.cuh's
 * thread_reduce does, then the block's y and x trees combine them pairwise as the kernel's
 * shared-memory trees and warp shuffles do, so floating-point sums round the same.
 */
struct gpuos_cat_red {
	const char *name;    /* "sum" */
	const char *ops;     /* names it in the ReduceOp's ops type: "sum_functor<" */
	int acc_arg;	     /* the accumulator: that template's argument; -1 bool */
	bool factor;	     /* MeanOps: the ops hold a factor (of the accumulator type) */
	bool arg;	     /* ArgMax/MinOps: (value, index) pairs, the index stored; combine
			      * says whether (a, ia) comes before (b, ib) */
	unsigned dtypes;     /* accumulator types */
	const char *combine; /* of a (the fold so far, or the lower partial) and b */
};

/* A matched kernel: its entry and element type. */
struct gpuos_cat_match {
	const struct gpuos_cat_entry *e; /* elementwise, or NULL and: */
	const struct gpuos_cat_red *r;	 /* a reduction (layout GPUOS_CAT_REDUCE) */
	int dtype;			 /* enum gpuos_cat_dtype (a reduction's input) */
	int layout;
	int acc, out;	   /* a reduction's accumulator and output types */
	unsigned vt0, ivs; /* ReduceOp's accumulators a thread, input vector width */
	unsigned ovs;	   /* reduce_kernel's outputs a thread */
	unsigned l2e;	   /* softmax: log2_elements */
	bool log;	   /* softmax: log_softmax */
	bool backward;	   /* softmax: its gradient */
};

/*
 * A reduction task's parameter block (a2), from the decoded ReduceOp (sig.h): one
 * definition for the host and, stringised, the operator's source.
 */
#define GPUOS_CAT_RED_FIELDS(D)                                                                   \
	uint64_t src, dst, ident[2]; /* ident: the identity's bytes, zero-extended */              \
	uint32_t factor;	  /* MeanOps' factor's bytes */                                       \
	int32_t num_inputs, num_outputs, step_input, step_output, input_mult[2], output_mult[2];   \
	int32_t block_width, block_height, output_vec_size, vectorize, grid_x, in_dims, out_dims;  \
	uint32_t in_sizes[D], in_strides[D], out_sizes[D], out_strides[D][2];
#define GPUOS_CAT_RED_DIMS 8 /* dims a reduction's calculators may have */
struct gpuos_cat_reduce {
	GPUOS_CAT_RED_FIELDS(GPUOS_CAT_RED_DIMS)
};

/*
 * A layer norm task's parameter block (a2), as gpuos_sig_decode_layer_norm writes it (gamma
 * and beta may be null; rows is the grid's x, by the block's y): one definition for the
 * host and, stringised, the operator's source. The operator computes each row as PyTorch's
 * vectorized_layer_norm_kernel does with its (32, by) threads: each thread's Welford sums
 * over its vectors of four, the warps' shuffle trees, the tree over the warps, then
 * y = gamma * (rstd * (x - mean)) + beta, and the row's mean and rstd.
 */
#define GPUOS_CAT_LN_FIELDS                                                                        \
	uint64_t x, gamma, beta, mean, rstd, y;                                                    \
	int32_t n, rows, by;                                                                       \
	float eps;
struct gpuos_cat_ln {
	GPUOS_CAT_LN_FIELDS
};

/*
 * A cat task's parameter block (a2), as gpuos_sig_decode_concat writes it (only its first
 * nin inputs are copied): one definition for the host and, stringised, the operator's.
 * A unit is the bytes one load and store moves: 16 for the vectorized kernel, else the
 * element's. Unit u of input b goes to unit in[b].base + offset(u) of out, offset() being
 * PyTorch's CatArrIndexToOffset over the output's sizes and strides (in units) with the
 * input's size at the cat dimension (dsz), in 32 bits (the decoder proved nothing wraps);
 * it is the input's u-th, or where the input's own sizes and strides put it (not contig).
 */
#define GPUOS_CAT_CONCAT_FIELDS(N)                                                                 \
	uint64_t out;                                                                              \
	uint32_t unit, dims, cdim, nin, sizes[4], strides[4];                                      \
	struct gpuos_cat_concat_in {                                                               \
		uint64_t src;                                                                      \
		uint32_t n, base, dsz, contig, sizes[4], strides[4];                               \
	} in[N];
struct gpuos_cat_concat {
	GPUOS_CAT_CONCAT_FIELDS(GPUOS_SIG_CONCAT_INPUTS)
};

/*
 * An index_select task's parameter block (a2), as gpuos_sig_decode_index_select writes it:
 * one definition for the host and, stringised, the operator's. Row d < nidx of the output is
 * row si = (uint32_t)idx[d * istride] of src, si < limit or the task asserts as the kernel
 * does: element e < inner of it moves from src[off(e, src) + si * src_sel] to dst[off(e, dst)
 * + d * dst_sel], off() being IndexToOffset over the TensorInfo's sizes and strides (in
 * elements) in the kernel's 32-bit arithmetic. Elements are unit bytes moved as one word;
 * isize is the index's bytes (4 or 8).
 */
#define GPUOS_CAT_ISEL_DIMS 4 /* dims a TensorInfo may have here (after collapsing) */
#define GPUOS_CAT_ISEL_FIELDS(D)                                                                   \
	uint64_t dst, src, idx;                                                                    \
	int64_t limit;                                                                             \
	uint32_t unit, isize, nidx, istride, inner, dst_sel, src_sel, dst_dims, src_dims;          \
	uint32_t dst_sizes[D], dst_strides[D], src_sizes[D], src_strides[D];
struct gpuos_cat_isel {
	GPUOS_CAT_ISEL_FIELDS(GPUOS_CAT_ISEL_DIMS)
};
#define GPUOS_CAT_ISEL_KEY "index_select.units" /* every index_select kernel's one operator */

/*
 * The strided layout's parameter block (a2 of its tasks): only its first a1 dims are sent
 * (GPUOS_CAT_STRIDED_BYTES), so that a block of a few dims fits the worker's fetch of it.
 */
struct gpuos_cat_strided {
	uint64_t ptr[4];
	struct gpuos_cat_dim {
		uint32_t size;	     /* IntDivider divisor, and its magic (gpuos_sig_divider): */
		uint32_t m1, shift;  /* n / size = (umulhi(n, m1) + n) >> shift */
		uint32_t strides[4]; /* bytes, output then inputs */
	} dim[GPUOS_OC_MAX_DIMS];
};
#define GPUOS_CAT_STRIDED_BYTES(dims)                                                              \
	(offsetof(struct gpuos_cat_strided, dim) + (size_t)(dims) * sizeof(struct gpuos_cat_dim))

extern const struct gpuos_cat_entry gpuos_cat_entries[];
extern const unsigned gpuos_cat_nentries;
extern const struct gpuos_cat_red gpuos_cat_reds[];
extern const unsigned gpuos_cat_nreds;

/* The element type a sig's dtype text names ("float", "c10::Half"...), or -1. */
int gpuos_cat_dtype_of(const char *text);
const char *gpuos_cat_dtype_name(int dtype); /* "float32", "float16"... */

/*
 * Match a parsed kernel (@s from gpuos_sig_parse) against the catalog. 0 with *m filled;
 * -ENOENT when no entry computes it (other functors, element types or families).
 */
int gpuos_cat_match(const struct gpuos_sig *s, struct gpuos_cat_match *m);

/*
 * The functor layout the entry matching @s expects: its size in bytes, and the offset and
 * size of each scalar. Used by sig.c's decoders. -ENOENT if no entry matches.
 */
int gpuos_cat_functor(const struct gpuos_sig *s, unsigned *size,
		      unsigned *nscalars, unsigned off[2], unsigned ssize[2]);

/*
 * The operator's CUDA source for (entry, dtype, layout) into (buf, len): the length, or
 * -ENOSPC. Its entry point is what gpuos_op_define expects.
 */
int gpuos_cat_source(const struct gpuos_cat_match *m, char *buf, size_t len);

/*
 * The parameter block of a reduction task from its decoded launch (@a from
 * gpuos_sig_decode_reduce) into *p: 0, or -ENOTSUP if it does not fit the operator (the
 * accumulator's size or place, more dims than GPUOS_CAT_RED_DIMS).
 */
struct gpuos_reduce_args;
int gpuos_cat_reduce_params(const struct gpuos_cat_match *m, const struct gpuos_reduce_args *a,
			    struct gpuos_cat_reduce *p);

/*
 * The cast layout's dtypes from a decoded launch, a byte each above N in *a4: the output's,
 * then each input's, as stored (c10::ScalarType, which enum gpuos_cat_dtype follows); the
 * element type's where that side does not cast. -ENOTSUP for a type the operator does not
 * convert (GPUOS_CAT_CAST_TYPES).
 */
int gpuos_cat_cast_word(const struct gpuos_cat_match *m, const struct gpuos_ur_args *ur,
			uint64_t *a4);

/*
 * The copy operator's CUDA source into (buf, len): its length, or -ENOSPC. Its tasks copy
 * a4 bytes from a1 to a0 (device to device cudaMemcpyAsync, interpose/copies.c); its key is
 * GPUOS_CAT_COPY_KEY.
 */
#define GPUOS_CAT_COPY_KEY "memcpy.bytes"
#define GPUOS_CAT_CONCAT_KEY "concat.units" /* every cat kernel's one operator */
int gpuos_cat_copy_source(char *buf, size_t len);

/* A short key naming the operator ("add.float32.contig"), shared by every kernel it serves. */
void gpuos_cat_key(const struct gpuos_cat_match *m, char *buf, size_t len);

#endif
