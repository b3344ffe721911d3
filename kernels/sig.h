/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_KERNELS_SIG_H
#define GPUOS_KERNELS_SIG_H

/*
 * The first stage of the PyTorch signature catalog: what a demangled kernel name says, by its
 * structure. The template family (vectorized_elementwise_kernel and the others of Loops.cuh
 * and Reduce.cuh), its numeric arguments, the functor and the element type; lambda indices
 * and anonymous-namespace hashes normalised away, since they change between builds.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptx_lift/ptx_lift.h" /* struct gpuos_kparam */

enum gpuos_sig_family {
	GPUOS_SIG_NONE = 0,
	GPUOS_SIG_VECTORIZED,  /* vectorized_elementwise_kernel<vec, F, std::array<char*, NT>> */
	GPUOS_SIG_UNROLLED,    /* unrolled_elementwise_kernel<F, std::array<char*, NT>, ...> */
	GPUOS_SIG_ELEMENTWISE, /* elementwise_kernel<nt, vt, closure> (OffsetCalculator) */
	GPUOS_SIG_REDUCE,      /* reduce_kernel<nt, output_vec_size, ReduceOp<...>> */
	GPUOS_SIG_LAYER_NORM,  /* vectorized_layer_norm_kernel<T, T_ACC, rms_norm> */
	GPUOS_SIG_CONCAT,      /* CatArrayBatchedCopy{,_contig,_alignedK_contig,_vectorized}<...> */
	GPUOS_SIG_ARANGE,      /* elementwise_kernel_with_index<index_t, arange's lambda> */
	GPUOS_SIG_INDEX_SELECT, /* indexSelectSmallIndex<T, IndicesType, unsigned, D, D, I> */
	GPUOS_SIG_SOFTMAX,	/* softmax_warp_forward and _backward<in, out, acc, l2e, ...> */
};

/* torch.cat's kernels (Shape.cu): which one, and the numbers of its template. */
enum gpuos_sig_concat_kind {
	GPUOS_CONCAT_STRIDED = 0, /* CatArrayBatchedCopy: inputs of any strides */
	GPUOS_CONCAT_CONTIG,	  /* _contig: contiguous inputs, element by element */
	GPUOS_CONCAT_ALIGNED,	  /* _alignedK_contig: contiguous, vector loads of the input */
	GPUOS_CONCAT_VECTORIZED,  /* _vectorized: 16-byte units in and out */
};
struct gpuos_sig_concat {
	int kind;		     /* enum gpuos_sig_concat_kind */
	unsigned elem;		     /* OpaqueType<elem>: the element's bytes */
	bool index32;		     /* IndexType unsigned int (the only one PyTorch uses) */
	unsigned dims, batch, ssize; /* Dims, batch_size, stride_size */
	unsigned vbytes, epv;	     /* ALIGNED: aligned_vec_load_bytes; VECTORIZED: alignment and
				      * elems_per_vec */
};

/* How a functor holds its scalars (sig.c works it out once, at parse time). */
struct gpuos_sig_functor {
	int rc;		   /* 0, or -ENOTSUP: a kind the decoders do not read */
	unsigned size, n;  /* its bytes; its scalars */
	unsigned off[2];   /* where they lie */
	unsigned ssize[2]; /* each scalar's bytes (0: the element type's) */
	unsigned elem;	   /* the element type's bytes (0: a type the decoders do not read) */
	bool lambda;	   /* a lambda (a capturing one is not read unless the catalog lists it) */
	uint8_t kind[2];   /* each scalar's C type (sig.c's enum scalar_kind), for its value */
};

struct gpuos_sig {
	int family;	    /* enum gpuos_sig_family */
	unsigned vec;	    /* VECTORIZED: vector width; ELEMENTWISE: threads; REDUCE: threads */
	unsigned narrays;   /* VECTORIZED, UNROLLED: NT of std::array<char*, NT> (outputs+inputs) */
	char functor[4096]; /* the functor type, normalised; LAYER_NORM: rms_norm (true/false) */
	char op[96];	    /* its short name: CUDAFunctor_add, MulFunctor, sigmoid_kernel_cuda */
	char dtype[48];	    /* the first template argument of the functor, or the lambda's */
	char loader[96];    /* UNROLLED: LoadWithCast<N> or LoadWithoutCast */
	char storer[96];    /* UNROLLED: StoreWithCast<N> or StoreWithoutCast */
	char out_dtype[48]; /* REDUCE: ReduceOp's out_scalar_t; LAYER_NORM: T_ACC */
	unsigned vt0, ivs;  /* REDUCE: ReduceOp's vt0 and input_vec_size (4 and 4 if not named) */
	unsigned ovs;	    /* REDUCE: reduce_kernel's output_vec_size */
	int dyncast;	    /* ELEMENTWISE: gpu_kernel_impl's closure (dynamic casts), not _nocast */
	unsigned lam;	    /* the index of the functor's first lambda ({lambda()#2} -> 2), 0 if none:
			     * what tells gelu's two forms or pow's special exponents apart */
	struct gpuos_sig_functor fl; /* filled by gpuos_sig_parse; fl_set says so */
	bool fl_set;
	struct gpuos_sig_concat concat; /* CONCAT */
	struct {
		unsigned index, elem, acc; /* bytes of index_t (int 4, long 8), the element and
					    * the accumulator (dtype and out_dtype name them) */
	} arange;			   /* ARANGE */
	struct {
		unsigned elem, index;	/* bytes of T (its bits are copied) and of IndicesType */
		int dst_dims, src_dims; /* DstDim, SrcDim: 1..3, or -1 (the TensorInfo's dims) */
		int idx_dims;		/* IdxDim: -2 (contiguous) or -1 */
	} isel;				/* INDEX_SELECT */
	struct {
		unsigned l2e; /* log2_elements: rows of up to 2^l2e elements */
		bool log;     /* is_log_softmax */
		bool masked;  /* is_masked */
		bool backward; /* softmax_warp_backward (its gradient) */
		unsigned ws, rows;	    /* its launch: lanes a warp, rows a block of 128 */
		unsigned in_size, out_size; /* input_t's and output_t's bytes (0: other types) */
		char acc[48]; /* acc_t (dtype: input_t, out_dtype: output_t) */
	} softmax;	      /* SOFTMAX */
};

/* A family's short name ("vectorized", "layer_norm"); "" for NONE and unknown values. */
const char *gpuos_sig_family_name(int family);

/*
 * Parse a demangled kernel name (as __cxa_demangle prints it, "void ns::kernel<...>(...)").
 * Returns 0 with *s filled (family NONE for other kernels), -EINVAL if the brackets do not
 * balance or a field does not fit.
 */
int gpuos_sig_parse(const char *demangled, struct gpuos_sig *s);

/*
 * Template argument @n (0-based) of the template whose '<' is at @s[lt], into (buf, len), its
 * spaces trimmed. -ENOENT if it has fewer, -EINVAL if the brackets do not close or it does
 * not fit.
 */
int gpuos_sig_targ(const char *s, size_t lt, unsigned n, char *buf, size_t len);

/*
 * Normalise a demangled name into (out, len): "{lambda(float)#3}" -> "{lambda(float)#}",
 * "_GLOBAL__N__d2ba64fb_..." hashes -> "(anonymous namespace)". -ENAMETOOLONG if it does
 * not fit.
 */
int gpuos_sig_normalize(const char *in, char *out, size_t len);

/* A vectorized_elementwise_kernel launch, decoded from its arguments. */
struct gpuos_ew_args {
	int32_t n;	  /* elements */
	unsigned narrays; /* pointers: data[0] the output, then the inputs */
	uint64_t ptr[8];
	unsigned nscalars; /* the functor's scalars (its fields that are not empty functors) */
	double scalar[2];  /* as the functor holds them: alpha; other, alpha; a; b; value */
	unsigned scalar_off[2], scalar_size[2];
	uint64_t scalar_bits[2]; /* their bytes (zero-extended) */
};

/*
 * Decode the arguments of a vectorized_elementwise_kernel launch (s from gpuos_sig_parse)
 * against its cubin layout (params, nparams) and the launch's args (void *args[], each
 * pointing to a parameter). Validates: three parameters, int N > 0, the array of narrays
 * non-null pointers, a functor whose size is what its kind needs (the catalog's layout for
 * the kinds it lists, catalog.h; scalars of Half and BFloat16 functors are floats). -EINVAL when anything
 * differs (the launch falls through), -ENOTSUP for a functor kind it does not know.
 */
int gpuos_sig_decode_vectorized(const struct gpuos_sig *s, const struct gpuos_kparam *params,
				unsigned nparams, void *const *args, struct gpuos_ew_args *out);

/* An unrolled_elementwise_kernel launch (misaligned, or dtype casts on load/store). */
struct gpuos_ur_args {
	struct gpuos_ew_args ew;
	unsigned nin;	 /* inputs (narrays - 1) */
	int in_dtype[7]; /* c10::ScalarType of each input as stored; -1 without a cast */
	int out_dtype;	 /* of the output as stored; -1 without a cast */
};

/*
 * Decode unrolled_elementwise_kernel<F, array, vt, TrivialOffsetCalculator<NI>,
 * TrivialOffsetCalculator<1>, Loader, Storer>(int N, F, array, ic, oc, loader, storer):
 * LoadWithCast<NI> holds {ScalarType dtypes[NI] (1 byte each); uint32 element_sizes[NI]},
 * StoreWithCast<1> {ScalarType dtype; uint32 element_size}. Validates the layout, that every
 * dtype is one of the element types PyTorch casts between here and that its element size
 * is that type's.
 */
int gpuos_sig_decode_unrolled(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			      unsigned nparams, void *const *args, struct gpuos_ur_args *out);

#define GPUOS_OC_MAX_DIMS 25 /* OffsetCalculator's MAX_DIMS */

/*
 * IntDivider's magic for a divisor @d in 1..INT32_MAX, as PyTorch derives it: for every n in
 * 0..INT32_MAX, n / d == (umulhi(n, *m1) + n) >> *shift (the sum fits 32 bits).
 */
void gpuos_sig_divider(uint32_t d, uint32_t *m1, uint32_t *shift);

/* An elementwise_kernel launch (broadcast, strided, 0-dim operands), decoded. */
struct gpuos_oc_args {
	struct gpuos_ew_args ew; /* n, the pointers, the functor's scalars */
	int dims;
	uint32_t sizes[GPUOS_OC_MAX_DIMS];	/* IntDivider divisors, innermost first */
	uint32_t strides[GPUOS_OC_MAX_DIMS][8]; /* bytes, per dimension per array */
};

/*
 * Decode elementwise_kernel<nt, vt, gpu_kernel_impl_nocast<F>::{lambda(int)}>(int N,
 * closure): the closure holds OffsetCalculator<NT> {int dims; IntDivider sizes[25]
 * {divisor, m1, shift}; uint32 strides[25][NT]}, the NT data pointers, the functor, and the
 * lambda's 8-byte host pointer. NT is found from the closure's size and the functor's kind.
 * Validates dims in 1..25, every divisor with the m1 and shift PyTorch derives from it, N
 * equal to the product of the sizes, non-null pointers. -EINVAL / -ENOTSUP as above; -ENOTSUP
 * for gpu_kernel_impl's closure (dynamic casts), whose layout differs.
 */
int gpuos_sig_decode_elementwise(const struct gpuos_sig *s, const struct gpuos_kparam *params,
				 unsigned nparams, void *const *args, struct gpuos_oc_args *out);

/*
 * A reduce_kernel launch, decoded from its one parameter, the ReduceOp: the ops and ident
 * (whose bytes come first: MeanOps' factor, the identity), the ReduceConfig, the input and
 * output OffsetCalculators and the pointers.
 */
struct gpuos_reduce_args {
	unsigned head;	    /* bytes before the config: ops, then ident (8 a float sum) */
	uint8_t head_bytes[24];
	/* ReduceConfig (element_size_bytes: of the accumulator, arg_t: 16 for argmax) */
	int32_t element_size_bytes, num_inputs, num_outputs, step_input, step_output;
	int32_t ctas_per_output, input_mult[3], output_mult[2];
	int32_t block_width, block_height, num_threads, output_vec_size;
	bool vectorize_input;
	/* OffsetCalculator<1> of the input, <2> of the output (its strides, then the input's) */
	int in_dims, out_dims;
	uint32_t in_sizes[GPUOS_OC_MAX_DIMS], in_strides[GPUOS_OC_MAX_DIMS];
	uint32_t out_sizes[GPUOS_OC_MAX_DIMS], out_strides[GPUOS_OC_MAX_DIMS][2];
	uint64_t src, dst[2], acc_buf, cta_buf, semaphores;
	int64_t base_idx;
	bool accumulate, final_output;
	int32_t noutputs; /* outputs a thread writes */
};

/*
 * Decode reduce_kernel<nt, output_vec_size, ReduceOp<...>>(ReduceOp) (s from gpuos_sig_parse)
 * against its cubin layout and the launch's args. The ReduceOp's size says where its config
 * starts: ops and ident come first, and what follows is the same for every reduction.
 * Validates: one parameter of a size that fits, accumulator size 1..16, dims 0..25 with every
 * divider PyTorch's, non-null source and destination, the block of the config (threads of
 * the kernel's template) and a grid covering the outputs (@grid, @block: the launch's, x y z).
 * Returns 0 for the simple form a worker block can compute alone: one block an output
 * (ctas_per_output 1, no cross-block state: acc_buf, cta_buf and semaphores null), no
 * accumulation into the output, the final output written, one output tensor, and the
 * kernel's output_vec_size (1, 2 or 4; 1 with a vectorized input).
 * -EINVAL if the arguments do not validate; -ENOTSUP for a valid launch not in that form.
 */
int gpuos_sig_decode_reduce(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			    unsigned nparams, void *const *args, const unsigned grid[3],
			    const unsigned block[3], struct gpuos_reduce_args *out);

/* The layer norm and cat decoders write their task's parameter block (catalog.h). */
struct gpuos_cat_ln;
struct gpuos_cat_concat;

/*
 * Decode vectorized_layer_norm_kernel<float, float, rms_norm>(int N, float eps, const T *X,
 * const T *gamma, const T *beta, T_ACC *mean, T_ACC *rstd, T *Y): eight parameters at
 * PyTorch's offsets. Validates what PyTorch's launch promises its vectorized loads: N > 0 a
 * multiple of 4, X and Y (and gamma and beta where given) 16-byte aligned and non-null, mean
 * and rstd non-null; the grid (rows, 1, 1) and the block (32, by, 1), by a power of two up
 * to 32. -EINVAL otherwise. *out gets the rows (the grid's x) and by (the block's y) too.
 */
int gpuos_sig_decode_layer_norm(const struct gpuos_sig *s, const struct gpuos_kparam *params,
				unsigned nparams, void *const *args, const unsigned grid[3],
				const unsigned block[3], struct gpuos_cat_ln *out);

#define GPUOS_SIG_CONCAT_INPUTS 16 /* inputs a launch may have here (its grid's y) */

/* True for the cat kernels the decoder reads: stride_size 1 (contiguous inputs) or one
 * entry an input (the strided kernel), 32-bit indices, OpaqueType<1..16>, Dims 1..4, and the
 * vector sizes PyTorch gives the vectorized kernel. */
bool gpuos_sig_concat_known(const struct gpuos_sig_concat *c);

/*
 * Decode CatArrayBatchedCopy{,_contig,_alignedK_contig,_vectorized}<T, unsigned int, Dims,
 * batch_size, stride_size, ...>(T *out, CatArrInputTensorMetadata inputs, TensorSizeStride
 * os, int concatDim, unsigned dimStride or trailingSize): five parameters at the offsets the
 * metadata's batch and stride sizes give (stride_size 1, or for CatArrayBatchedCopy each
 * input's sizes and strides). Validates what the kernel relies on: the grid's y inputs,
 * Dims 1..4 and the cat dimension below it, non-null pointers aligned for the kernel's loads
 * and stores, and for each input that its units are exactly what the sizes say (its own
 * too, where it is read through them) and that no offset passes 2^32 (so 32-bit arithmetic
 * computes what the kernel's computes). -EINVAL otherwise; -ENOTSUP for a valid launch of
 * more than GPUOS_SIG_CONCAT_INPUTS inputs. *out is the task's block (catalog.h: its units),
 * *units the inputs' units together.
 */
int gpuos_sig_decode_concat(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			    unsigned nparams, void *const *args, const unsigned grid[3],
			    const unsigned block[3], struct gpuos_cat_concat *out, uint64_t *units);

/* A torch.arange launch, decoded: element i of out is start + step * i, in the accumulator
 * type of the element type (long for the integers, float for the 16-bit floats), cast. */
struct gpuos_arange_args {
	uint64_t out;	      /* the elements */
	uint64_t n;	      /* how many */
	uint64_t start, step; /* the accumulator's bytes, zero-extended */
};

/*
 * Decode elementwise_kernel_with_index<index_t, F>(index_t N, F f, result_type *data), F
 * arange's lambda holding {acc xstart, xstep} and a host pointer: three parameters at the
 * offsets index_t and the accumulator give. Validates what the launch promises: N > 0, data
 * non-null and aligned for the element, the block (64, 1, 1) of one element a thread and the
 * grid (ceil(N / 64), 1, 1) (RangeFactories.cu's). -EINVAL otherwise.
 */
int gpuos_sig_decode_arange(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			    unsigned nparams, void *const *args, const unsigned grid[3],
			    const unsigned block[3], struct gpuos_arange_args *out);

/* index_select's parameter block (catalog.h) */
struct gpuos_cat_isel;

/*
 * Decode indexSelectSmallIndex<T, IndicesType, unsigned int, DstDim, SrcDim, IdxDim>(
 * TensorInfo<T, unsigned> dst, TensorInfo<const T, unsigned> src, TensorInfo<const
 * IndicesType, unsigned> indices, int dstSelectDim, int srcSelectDim, unsigned innerSize,
 * int64_t srcSelectDimSize): seven parameters at the offsets TensorInfo's layout gives (a
 * pointer, sizes[25], strides[25], dims: 216 bytes). Validates what Indexing.cu's launch
 * promises: each TensorInfo's dims the template's (or 1..GPUOS_CAT_ISEL_DIMS for -1), sizes
 * non-zero, the select dimension inside them and reduced to size 1, innerSize the product of
 * dst's and of src's sizes, one dimension of indices, non-null pointers aligned for their
 * elements, the block (min(innerSize, 128), 1, 1) and a grid of 1..ceil(innerSize / 128)
 * blocks (1, 1). -EINVAL otherwise. *out is the task's block; *elems the elements it copies.
 */
int gpuos_sig_decode_index_select(const struct gpuos_sig *s, const struct gpuos_kparam *params,
				  unsigned nparams, void *const *args, const unsigned grid[3],
				  const unsigned block[3], struct gpuos_cat_isel *out,
				  uint64_t *elems);

/* A softmax_warp_forward launch, decoded: batch rows of count elements, dst[r][e] from
 * src[r][...] (rows count elements apart); a backward one reads the softmax's output too. */
struct gpuos_softmax_args {
	uint64_t dst, src; /* backward: gradInput, grad */
	uint64_t output;   /* backward: the forward's output */
	int32_t batch, count;
};

/*
 * Decode softmax_warp_forward<input_t, output_t, acc_t, log2_elements, is_log_softmax,
 * is_masked>(output_t *dst, const input_t *src, int batch_size, int stride, int
 * element_count, const bool *mask, int head_chunk_size, bool is_transformer_mask) (PyTorch's
 * PersistentSoftmax.cuh): eight parameters at their offsets. Validates what
 * dispatch_softmax_forward's launch promises for an unmasked softmax: batch_size > 0, stride
 * equal to element_count, whose next power of two is 2^log2_elements, no mask, non-null
 * pointers aligned for their elements, the block (warp_size, 128 / warp_size, 1) and the grid
 * (ceil(batch_size / rows a block), 1, 1). -EINVAL otherwise. softmax_warp_backward's seven,
 * (output_t *gradInput, const input_t *grad, const input_t *output, int batch_size, int
 * stride, int element_count, const bool *mask), are checked the same way.
 */
int gpuos_sig_decode_softmax(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			     unsigned nparams, void *const *args, const unsigned grid[3],
			     const unsigned block[3], struct gpuos_softmax_args *out);

#endif
