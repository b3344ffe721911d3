/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_KERNELS_SIG_H
#define GPUOS_KERNELS_SIG_H

/*
 * The first stage of the PyTorch signature catalog: what a demangled kernel name says, by its
 * structure. The template family (vectorized_elementwise_kernel and the others of Loops.cuh
 * and Reduce.cuh), its numeric arguments, the functor and the element type; lambda indices
 * and anonymous-namespace hashes normalised away, since they change between builds.
 */
#include <stddef.h>

enum gpuos_sig_family {
	GPUOS_SIG_NONE = 0,
	GPUOS_SIG_VECTORIZED,  /* vectorized_elementwise_kernel<vec, F, std::array<char*, NT>> */
	GPUOS_SIG_UNROLLED,    /* unrolled_elementwise_kernel<F, std::array<char*, NT>, ...> */
	GPUOS_SIG_ELEMENTWISE, /* elementwise_kernel<nt, vt, closure> (OffsetCalculator) */
	GPUOS_SIG_REDUCE,      /* reduce_kernel<nt, output_vec_size, ReduceOp<...>> */
};

struct gpuos_sig {
	int family;	    /* enum gpuos_sig_family */
	unsigned vec;	    /* VECTORIZED: vector width; ELEMENTWISE: threads; REDUCE: threads */
	unsigned narrays;   /* VECTORIZED, UNROLLED: NT of std::array<char*, NT> (outputs+inputs) */
	char functor[4096]; /* the functor type, normalised */
	char op[96];	    /* its short name: CUDAFunctor_add, MulFunctor, sigmoid_kernel_cuda */
	char dtype[48];	    /* the first template argument of the functor, or the lambda's */
};

/*
 * Parse a demangled kernel name (as __cxa_demangle prints it, "void ns::kernel<...>(...)").
 * Returns 0 with *s filled (family NONE for other kernels), -EINVAL if the brackets do not
 * balance or a field does not fit.
 */
int gpuos_sig_parse(const char *demangled, struct gpuos_sig *s);

/*
 * Normalise a demangled name into (out, len): "{lambda(float)#3}" -> "{lambda(float)#}",
 * "_GLOBAL__N__d2ba64fb_..." hashes -> "(anonymous namespace)". -ENAMETOOLONG if it does
 * not fit.
 */
int gpuos_sig_normalize(const char *in, char *out, size_t len);

#endif
