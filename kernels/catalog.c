// SPDX-License-Identifier: MIT
/*
 * The catalog's entries and the operators generated from them (catalog.h). Each expression
 * is PyTorch 2.11's own, in the same order and types (at::opmath_type, the same math
 * function), so that nvcc and NVRTC make the same instructions of it: bitwise-identical
 * results are checked on the GPU (tests/gpu/test_torch_ops.sh), an op that cannot be made
 * identical is not listed.
 *
 * Expressions see the inputs as a, b, c (opmath) and ra, rb, rc (as stored), the scalars as
 * s0, s1 (opmath) and rs0, rs1 (as stored). They return opmath, rounded to the output type
 * once, unless the entry says RAW (the value is stored as it is: where, fill, threshold).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "kernels/catalog.h"

#define F   GPUOS_DT_FLOATS
#define I   GPUOS_DT_INTS
#define B   GPUOS_DT_BIT(GPUOS_DT_BOOL)
#define RAW "\x01" /* expression prefix: its value is of the storage type */

/*
 * PyTorch 2.11's expressions (CUDA 13.0, nvcc defaults: FMA contraction on, IEEE division and
 * square root, no flush to zero). Where PyTorch's compile contracts a multiply-add the
 * expression says fmaf, so that nothing depends on NVRTC contracting the same way. Gelu's two
 * forms differ only in the index of their dispatch lambda (lam). F16 negation is __hneg
 * (neg.f16, which does not keep a NaN's sign and payload: a bit flip differed on an H100);
 * BFloat16's goes through float like the rest.
 */
/* clang-format off */
const struct gpuos_cat_entry gpuos_cat_entries[] = {
	/* name          sig op                        lam  nin dtypes in0 out  n kind          after_f lambda expr */
	{"add",          "CUDAFunctor_add",            0, 2, F, -1, -1, 1, GPUOS_SC_OPMATH, false, false, "fmaf(s0, b, a)", false},
	{"add_scalar",   "CUDAFunctorOnSelf_add",      0, 1, F, -1, -1, 2, GPUOS_SC_OPMATH, false, false, "fmaf(s1, s0, a)", false},
	{"rsub_scalar",  "CUDAFunctorOnOther_add",     0, 1, F, -1, -1, 2, GPUOS_SC_OPMATH, false, false, "fmaf(s1, a, s0)", false},
	{"mul",          "BinaryFunctor:MulFunctor",   0, 2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a * b", false},
	{"mul_scalar_a", "AUnaryFunctor:MulFunctor",   0, 1, F, -1, -1, 1, GPUOS_SC_OPMATH, true,  false, "s0 * a", false},
	{"mul_scalar_b", "BUnaryFunctor:MulFunctor",   0, 1, F, -1, -1, 1, GPUOS_SC_OPMATH, true,  false, "a * s0", false},
	{"div",          "BinaryFunctor:DivFunctor",   0, 2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a / b", false},
	/* DivFunctor<T> takes T: a Half scalar is a Half */
	{"div_scalar_a", "AUnaryFunctor:DivFunctor",   0, 1, F, -1, -1, 1, GPUOS_SC_ELEM,   true,  false, "s0 / a", false},
	{"reciprocal",   "reciprocal_kernel_cuda",     0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "1.0f / a", false},
	{"neg",          "neg_kernel_cuda",            0, 1, GPUOS_DT_BIT(GPUOS_DT_F32) | GPUOS_DT_BIT(GPUOS_DT_BF16), -1, -1, 0, GPUOS_SC_OPMATH, false, false, "-a", false},
	{"neg_half",     "neg_kernel_cuda",            0, 1, GPUOS_DT_BIT(GPUOS_DT_F16), -1, -1, 0, GPUOS_SC_OPMATH, false, false, RAW "hneg(ra)", false},
	{"sigmoid",      "sigmoid_kernel_cuda",        0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "1.0f / (1.0f + expf(-a))", false},
	{"tanh",         "tanh_kernel_cuda",           0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "tanhf(a)", false},
	{"exp",          "exp_kernel_cuda",            0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "expf(a)", false},
	{"log",          "log_kernel_cuda",            0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "logf(a)", false},
	{"sqrt",         "sqrt_kernel_cuda",           0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "sqrtf(a)", false},
	{"rsqrt",        "rsqrt_kernel_cuda",          0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "rsqrtf(a)", false},
	{"silu",         "silu_kernel",                0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a / (1.0f + expf(-a))", false},
	{"gelu",         "GeluCUDAKernelImpl",         2,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "(a * 0.5f) * (1.0f + erff(a * 0.70710678118654752440f))", false},
	{"gelu_tanh",    "GeluCUDAKernelImpl",         1,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "(0.5f * a) * (1.0f + tanhf(0.79788456080286535588f * fmaf(0.044715f, (a * a) * a, a)))", false},
	/* backward of both (inputs dy, x): PyTorch's statements as written, so that NVRTC makes
	 * the contractions nvcc made; 0x1.988454p-2f = (float)(M_2_SQRTPI * M_SQRT1_2 * 0.5) */
	{"gelu_bwd",     "GeluBackwardCUDAKernelImpl", 2,
	                                                     2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false,
	 "([&] { const O cdf = 0.5f * (1.0f + erff(b * 0.70710678118654752440f));"
	 " const O pdf = expf(-0.5f * b * b) * 0x1.988454p-2f; return a * (cdf + b * pdf); }())", false},
	{"gelu_tanh_bwd", "GeluBackwardCUDAKernelImpl", 1,
	                                                     2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false,
	 "([&] { const O kB = 0.79788456080286535588f, kK = 0.044715f; const O x_sq = b * b;"
	 " const O x_cube = x_sq * b; const O inner = kB * (b + kK * x_cube); const O t = tanhf(inner);"
	 " const O left = 0.5f * b; const O right = 1.0f + t; const O ld = 0.5f * right;"
	 " const O td = 1.0f - t * t; const O id = kB * (1.0f + 3.0f * kK * x_sq);"
	 " const O rd = left * td * id; return a * (ld + rd); }())", false},
	/* silu's gradient (inputs dy, x): its statements, the one multiply-add nvcc contracts */
	{"silu_bwd",     "silu_backward_kernel",       0, 2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false,
	 "([&] { const O s = 1.0f / (1.0f + expf(-b)); return a * s * fmaf(b, 1.0f - s, 1.0f); }())", false},
	/* clamp with CPU scalars, relu (clamp_min 0) and relu6 among them: one lambda that
	 * captures {ClampLimits minmax (Min, Max, MinMax); opmath lim0, lim1}; a NaN comes back
	 * as stored, the rest through ::max and ::min (fmaxf, fminf: relu(-0.0) is +0.0) */
	{"clamp_scalar", "launch_clamp_scalar",        0, 1, F, -1, -1, 2, GPUOS_SC_CLAMP,  false, true,
	 RAW "([&] { const O l0 = __uint_as_float((unsigned)rs1), l1 = __uint_as_float((unsigned)(rs1 >> 32));"
	 " const O hi = fmaxf(a, l0), lo = fminf(a, l0), both = fminf(hi, l1);"
	 " const O r = (int)sc0 == 0 ? hi : (int)sc0 == 1 ? lo : both;"
	 " return a != a ? ra : OUT_ST(r); }())", false},
	/* {lambda(T v, T lower, T upper)}: a NaN of v, lower, upper in turn, else
	 * ::min(::max(v, lower), upper) in opmath (fminf, fmaxf) */
	{"clamp_tensor", "clamp_kernel_impl",          0, 3, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false,
	 RAW "(a != a ? ra : b != b ? rb : c != c ? rc : OUT_ST(fminf(fmaxf(a, b), c)))", false},
	{"isneginf",     "isneginf_kernel_impl",       0, 1, F, -1, GPUOS_DT_BOOL, 0, GPUOS_SC_OPMATH, false, false,
	 RAW "(bool)(a == -__int_as_float(0x7f800000))", false},
	{"isposinf",     "isposinf_kernel_impl",       0, 1, F, -1, GPUOS_DT_BOOL, 0, GPUOS_SC_OPMATH, false, false,
	 RAW "(bool)(a == __int_as_float(0x7f800000))", false},
	{"fill",         "FillFunctor",                0, 0, F | I | B, -1, -1, 1, GPUOS_SC_ELEM,   false, false, RAW "rs0", false},
	/* its Half and BFloat16 kernels are of the dynamic-cast kind: not yet */
	{"threshold",    "threshold_kernel_impl",      0, 2, GPUOS_DT_BIT(GPUOS_DT_F32), -1, -1, 2, GPUOS_SC_ELEM,   false, true,  RAW "a <= s0 ? rs1 : rb", false},
	{"addcmul",      "addcmul_cuda_kernel",        0, 3, F, -1, -1, 1, GPUOS_SC_OPMATH, false, true,  "s0 == 1.0f ? fmaf(b, c, a) : fmaf(s0, b * c, a)", false},
	{"addcdiv",      "addcdiv_cuda_kernel",        0, 3, F, -1, -1, 1, GPUOS_SC_OPMATH, false, true,  "s0 == 1.0f ? a + b / c : fmaf(s0, b / c, a)", false},
	{"lerp_scalar",  "lerp_scalar_kernel",         0, 2, F, -1, -1, 1, GPUOS_SC_OPMATH, false, true,  "fabsf(s0) < 0.5f ? fmaf(s0, b - a, a) : fmaf(-(b - a), 1.0f - s0, b)", false},
	{"lerp_tensor",  "lerp_tensor_kernel",         0, 3, F, -1, -1, 0, GPUOS_SC_OPMATH, false, true,  "fabsf(c) < 0.5f ? fmaf(c, b - a, a) : fmaf(-(b - a), 1.0f - c, b)", false},
	{"where",        "where_kernel_impl",          0, 3, F | I | B, GPUOS_DT_BOOL, -1, 0, GPUOS_SC_OPMATH, false, true, RAW "ra ? rb : rc", false},
	/* {lambda(T, bool)#}: its one capture, the value as T, where the mask is set */
	{"masked_fill",  "masked_fill_kernel",         0, 2, F | I | B, -1, -1, 1, GPUOS_SC_ELEM,   false, true,  RAW "rb ? rs0 : ra", true},
	/* integers and bools: C's arithmetic in the type itself (opmath_type<T> is T) */
	{"add_int",      "CUDAFunctor_add",            0, 2, I, -1, -1, 1, GPUOS_SC_OPMATH, false, false, "a + s0 * b", false},
	{"add_scalar_int", "CUDAFunctorOnSelf_add",    0, 1, I, -1, -1, 2, GPUOS_SC_OPMATH, false, false, "a + s1 * s0", false},
	{"rsub_scalar_int", "CUDAFunctorOnOther_add",  0, 1, I, -1, -1, 2, GPUOS_SC_OPMATH, false, false, "s0 + s1 * a", false},
	{"mul_int",      "BinaryFunctor:MulFunctor",   0, 2, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a * b", false},
	{"mul_scalar_int", "AUnaryFunctor:MulFunctor", 0, 1, I, -1, -1, 1, GPUOS_SC_OPMATH, true,  false, "s0 * a", false},
	{"mul_bool",     "BinaryFunctor:MulFunctor",   0, 2, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a && b", false},
	{"and",          "BinaryFunctor:BitwiseAndFunctor", 0, 2, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a & b", false},
	{"and_bool",     "BinaryFunctor:BitwiseAndFunctor", 0, 2, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a && b", false},
	{"or",           "BinaryFunctor:BitwiseOrFunctor", 0, 2, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a | b", false},
	{"or_bool",      "BinaryFunctor:BitwiseOrFunctor", 0, 2, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a || b", false},
	{"xor",          "BinaryFunctor:BitwiseXorFunctor", 0, 2, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a ^ b", false},
	{"xor_bool",     "BinaryFunctor:BitwiseXorFunctor", 0, 2, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a != b", false},
	{"not",          "bitwise_not_kernel_cuda",    0, 1, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "~a", false},
	{"not_bool",     "bitwise_not_kernel_cuda",    0, 1, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "!a", false},
	/* comparisons, in T (Half through float): op_ is GE, GT, LE, LT = 0..3; EQ, NE = 0, 1.
	 * The op is picked without branches: ptxas may make a four-way branch a jump table in
	 * the module's constant bank, which a call from the worker cannot read (ops.c). */
	{"compare",      "CompareFunctor",             0, 2, F | I, -1, GPUOS_DT_BOOL, 1, GPUOS_SC_INT, false, false,
	 RAW "(bool)((rs0 == 0) & (a >= b) | (rs0 == 1) & (a > b) | (rs0 == 2) & (a <= b) | (rs0 == 3) & (a < b))", false},
	{"compare_eq",   "BinaryFunctor:CompareEqFunctor", 0, 2, F | I | B, -1, GPUOS_DT_BOOL, 1, GPUOS_SC_INT, false, false,
	 RAW "(bool)(rs0 == 0 ? a == b : a != b)", false},
	/* tensor == / != a CPU scalar: AUnaryFunctor {CompareEqFunctor (int op_); opmath_t a},
	 * f(a, x); opmath is T itself for float and the integers (Half's holds a float) */
	{"compare_eq_scalar", "AUnaryFunctor:CompareEqFunctor", 0, 1, GPUOS_DT_BIT(GPUOS_DT_F32) | I, -1, GPUOS_DT_BOOL, 2, GPUOS_SC_OP_ELEM, false, false,
	 RAW "(bool)((int)sc0 == 0 ? s1 == a : s1 != a)", false},
	/* tensor <op> CPU scalar: {CompareFunctor (int op_); T rhs} captured; lhs op rhs */
	{"compare_scalar", "compare_scalar_kernel",    0, 1, F | I, -1, GPUOS_DT_BOOL, 2, GPUOS_SC_OP_ELEM, false, true,
	 RAW "(bool)(((int)sc0 == 0) & (a >= s1) | ((int)sc0 == 1) & (a > s1) | ((int)sc0 == 2) & (a <= s1) | ((int)sc0 == 3) & (a < s1))", false},
	/* x ** scalar: exponents 2, 3, -2 and the rest are four lambdas of one function, in
	 * that order; 3 and -2 round to T after each step as PyTorch's T arithmetic does */
	{"pow_square",   "pow_tensor_scalar_kernel_impl", 1,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, true, "a * a", false},
	{"pow_cube",     "pow_tensor_scalar_kernel_impl", 2,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, true, "I0_LD(OUT_ST(a * a)) * a", false},
	{"pow_m2",       "pow_tensor_scalar_kernel_impl", 3,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, true, "(float)(1.0 / (double)I0_LD(OUT_ST(a * a)))", false},
	{"pow_scalar",   "pow_tensor_scalar_kernel_impl", 4,
	                                                     1, F, -1, -1, 1, GPUOS_SC_ELEM, false, true, "powf(a, s0)", false},
	/* mse_loss: c10's T arithmetic, rounded to T after each step (Half, BFloat16);
	 * the backward's lambda captures alpha (2/numel for a mean), a T */
	{"mse",          "mse_kernel_cuda",            0, 2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "I0_LD(OUT_ST(a - b)) * I0_LD(OUT_ST(a - b))", false},
	{"mse_bwd",      "mse_backward_cuda_kernel",   0, 3, F, -1, -1, 1, GPUOS_SC_ELEM,   false, true,  "I0_LD(OUT_ST(s0 * I0_LD(OUT_ST(a - b)))) * c", false},
	/* Tensor.copy_ and .to(dtype) that are no memcpy: its identity lambda (lambda()#3's,
	 * one a dtype), cast on load and store where the types differ */
	{"copy",         "direct_copy_kernel_cuda",    3, 1, F | I | B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, RAW "ra", false},
	{"to_half",      "float16_copy_kernel_cuda",   0, 1, GPUOS_DT_BIT(GPUOS_DT_F32), -1, GPUOS_DT_F16, 0, GPUOS_SC_OPMATH, false, false, "a", false},
	{"to_bfloat16",  "bfloat16_copy_kernel_cuda",  0, 1, GPUOS_DT_BIT(GPUOS_DT_F32), -1, GPUOS_DT_BF16, 0, GPUOS_SC_OPMATH, false, false, "a", false},
};
/* clang-format on */
const unsigned gpuos_cat_nentries = sizeof(gpuos_cat_entries) / sizeof(gpuos_cat_entries[0]);

/*
 * Reductions: the ops of ReduceOp<scalar_t, ops_t, index_t, out_scalar_t, vt0, ivs> whose
 * combine is one expression (SharedReduceOps.h, ReduceSumProdKernel.cu, ReduceLogicKernel.cu):
 * sum and mean add (mean stores sum * factor, its factor the float numel/outputs), max and min
 * keep a NaN (MaxNanFunctor: isnan(a) || a > b), any and all are bool's || and &&. Their
 * input and output types are the ReduceOp's; the value is converted to the accumulator on
 * load and to the output on store, as c10 converts.
 */
#define RED_FI (GPUOS_DT_BIT(GPUOS_DT_F32) | GPUOS_DT_BIT(GPUOS_DT_I32) | GPUOS_DT_BIT(GPUOS_DT_I64))
/* clang-format off */
const struct gpuos_cat_red gpuos_cat_reds[] = {
	/* name     ops type             acc factor arg   dtypes                       combine */
	{"sum",     "sum_functor<",      1, false, false, RED_FI,                      "a + b"},
	{"mean",    "MeanOps<",          1, true,  false, GPUOS_DT_BIT(GPUOS_DT_F32),  "a + b"},
	{"max",     "MaxNanFunctor<",    0, false, false, RED_FI,                      "(a != a || a > b) ? a : b"},
	{"min",     "MinNanFunctor<",    0, false, false, RED_FI,                      "(a != a || a < b) ? a : b"},
	{"any",     "or_kernel_cuda(",  -1, false, false, GPUOS_DT_BIT(GPUOS_DT_BOOL), "a || b"},
	{"all",     "and_kernel_cuda(", -1, false, false, GPUOS_DT_BIT(GPUOS_DT_BOOL), "a && b"},
	/* GreaterOrNan / LessOrNan: a NaN first, equal values by the lower index; a total
	 * order, so any order of combining gives PyTorch's index */
	{"argmax",  "ArgMaxOps<",        0, false, true,  GPUOS_DT_BIT(GPUOS_DT_F32),
	 "a != a ? (b != b ? ia < ib : true) : (a == b ? ia < ib : a > b)"},
	{"argmin",  "ArgMinOps<",        0, false, true,  GPUOS_DT_BIT(GPUOS_DT_F32),
	 "a != a ? (b != b ? ia < ib : true) : (a == b ? ia < ib : a < b)"},
};
/* clang-format on */
const unsigned gpuos_cat_nreds = sizeof(gpuos_cat_reds) / sizeof(gpuos_cat_reds[0]);

static const struct {
	int dtype;
	const char *text, *name;
	unsigned size;
	const char *ctype; /* storage type in the operator */
	const char *opm;   /* at::opmath_type */
} dtypes[] = {
    {GPUOS_DT_F32, "float", "float32", 4, "float", "float"},
    {GPUOS_DT_F16, "c10::Half", "float16", 2, "unsigned short", "float"},
    {GPUOS_DT_BF16, "c10::BFloat16", "bfloat16", 2, "unsigned short", "float"},
    {GPUOS_DT_F64, "double", "float64", 8, "double", "double"},
    {GPUOS_DT_I32, "int", "int32", 4, "int", "int"},
    {GPUOS_DT_I64, "long", "int64", 8, "long", "long"},
    {GPUOS_DT_I16, "short", "int16", 2, "short", "short"},
    {GPUOS_DT_I8, "signed char", "int8", 1, "signed char", "signed char"},
    {GPUOS_DT_U8, "unsigned char", "uint8", 1, "unsigned char", "unsigned char"},
    {GPUOS_DT_BOOL, "bool", "bool", 1, "bool", "bool"},
};
#define NDTYPES (sizeof(dtypes) / sizeof(dtypes[0]))

int gpuos_cat_dtype_of(const char *text)
{
	for (unsigned i = 0; i < NDTYPES; i++)
		if (!strcmp(text, dtypes[i].text))
			return dtypes[i].dtype;
	return -1;
}

static int dt_index(int dtype)
{
	for (unsigned i = 0; i < NDTYPES; i++)
		if (dtypes[i].dtype == dtype)
			return (int)i;
	return -1;
}

const char *gpuos_cat_dtype_name(int dtype)
{
	int i = dt_index(dtype);

	return i < 0 ? "?" : dtypes[i].name;
}

/* The element type: the sig's, except where the lambda's second parameter says it. */
static int elem_dtype(const struct gpuos_cat_entry *e, const struct gpuos_sig *s)
{
	if (e->in0_dtype >= 0) {
		/* {lambda(bool, T, T)#}: T is the element type */
		const char *l = strstr(s->functor, "{lambda(bool, ");
		char t[48];
		size_t n;
		if (!l)
			return -1;
		l += strlen("{lambda(bool, ");
		n = strcspn(l, ",)");
		if (n >= sizeof(t))
			return -1;
		memcpy(t, l, n);
		t[n] = 0;
		return gpuos_cat_dtype_of(t);
	}
	if (e->in1_bool) { /* {lambda(T, bool)#}: a mask of another type is not read */
		const char *l = strrchr(s->functor, '{');
		if (!l || !strstr(l, ", bool)#}"))
			return -1;
	}
	return gpuos_cat_dtype_of(s->dtype);
}

static unsigned dt_size(int dt)
{
	int i = dt_index(dt);

	return i < 0 ? 0 : dtypes[i].size;
}

static unsigned scalar_size(const struct gpuos_cat_entry *e, int dtype)
{
	if (e->scalar_kind == GPUOS_SC_INT)
		return 4;
	if (e->scalar_kind == GPUOS_SC_ELEM || e->scalar_kind == GPUOS_SC_OP_ELEM)
		return dt_size(dtype);
	/* opmath: float for the 2-byte floats, else the type itself */
	return dtype == GPUOS_DT_F16 || dtype == GPUOS_DT_BF16 ? 4 : dt_size(dtype);
}

/*
 * Where an entry's scalars lie for element type @dtype, and the functor's bytes: a struct of
 * its scalars (an empty one is one byte), or a lambda that captures them and then holds an
 * 8-byte host pointer.
 */
static unsigned layout(const struct gpuos_cat_entry *e, int dtype, unsigned off[2],
		       unsigned ss[2])
{
	unsigned s = scalar_size(e, dtype), end, align;

	if (e->scalar_kind == GPUOS_SC_OP_ELEM) { /* {int op; T v} */
		ss[0] = 4, ss[1] = s;
		off[0] = 0, off[1] = s > 4 ? s : 4;
	} else if (e->scalar_kind == GPUOS_SC_CLAMP) { /* {int; float lim0, lim1} */
		ss[0] = 4, ss[1] = 8;
		off[0] = 0, off[1] = 4;
	} else {
		for (unsigned k = 0; k < 2; k++) {
			ss[k] = s;
			off[k] = (e->after_f ? s : 0) + k * s;
		}
	}
	end = e->nscalars ? off[e->nscalars - 1] + ss[e->nscalars - 1] : 0;
	if (e->lambda)
		return ((end + 7) & ~7u) + 8;
	if (!e->nscalars)
		return 1;
	align = ss[e->nscalars - 1] > ss[0] ? ss[e->nscalars - 1] : ss[0];
	return (end + align - 1) / align * align;
}

/* Template argument @n of the template @p names ("sum_functor<float, ...>"), as a dtype. */
static int targ_dtype(const char *p, unsigned n)
{
	const char *lt = strchr(p, '<');
	char t[48];

	if (!lt || gpuos_sig_targ(p, (size_t)(lt - p), n, t, sizeof(t)))
		return -1;
	return gpuos_cat_dtype_of(t);
}

static int red_match(const struct gpuos_sig *s, struct gpuos_cat_match *m)
{
	for (unsigned i = 0; i < gpuos_cat_nreds; i++) {
		const struct gpuos_cat_red *r = &gpuos_cat_reds[i];
		const char *p = strstr(s->functor, r->ops);
		/* the whole name: not nansum_functor for sum_functor */
		if (!p || (p > s->functor && p[-1] != ':' && p[-1] != ' ' && p[-1] != '<'))
			continue;
		m->acc = r->acc_arg < 0 ? GPUOS_DT_BOOL : targ_dtype(p, (unsigned)r->acc_arg);
		m->dtype = gpuos_cat_dtype_of(s->dtype);
		m->out = gpuos_cat_dtype_of(s->out_dtype);
		/* MeanOps<scalar_t, acc_t, factor_t, out_t>: the factor of the accumulator type */
		if (m->acc < 0 || m->dtype < 0 || m->out < 0 ||
		    !(r->dtypes & GPUOS_DT_BIT(m->acc)) ||
		    (r->factor && targ_dtype(p, 2) != m->acc) || (r->arg && m->dtype != m->acc) ||
		    s->vt0 < 1 || s->vt0 > 8 ||
		    (s->ivs != 1 && s->ivs != 2 && s->ivs != 4 && s->ivs != 8) || s->ovs < 1 ||
		    s->ovs > 4 || s->ovs == 3 || (r->arg && s->ovs != 1)) /* pairs: one a thread */
			return -ENOENT;
		m->r = r;
		m->layout = GPUOS_CAT_REDUCE;
		m->vt0 = s->vt0;
		m->ivs = s->ivs;
		m->ovs = s->ovs;
		return 0;
	}
	return -ENOENT;
}

int gpuos_cat_match(const struct gpuos_sig *s, struct gpuos_cat_match *m)
{
	memset(m, 0, sizeof(*m));
	if (s->family == GPUOS_SIG_REDUCE)
		return red_match(s, m);
	if (s->family == GPUOS_SIG_LAYER_NORM) {
		/* float32 layer norm (rms_norm's variant computes other statistics) */
		if (strcmp(s->dtype, "float") || strcmp(s->out_dtype, "float") ||
		    strcmp(s->functor, "false"))
			return -ENOENT;
		m->layout = GPUOS_CAT_LAYER_NORM;
		m->dtype = m->acc = m->out = GPUOS_DT_F32;
		return 0;
	}
	if (s->family == GPUOS_SIG_CONCAT) {
		if (!gpuos_sig_concat_known(&s->concat))
			return -ENOENT;
		m->layout = GPUOS_CAT_CONCAT;
		m->dtype = m->acc = m->out = -1; /* bytes */
		return 0;
	}
	if (s->family == GPUOS_SIG_ARANGE) {
		m->dtype = gpuos_cat_dtype_of(s->dtype);
		m->acc = m->out = gpuos_cat_dtype_of(s->out_dtype);
		if (m->dtype < 0 || m->acc < 0 ||
		    !(GPUOS_CAT_ARANGE_DTYPES & GPUOS_DT_BIT(m->dtype)))
			return -ENOENT;
		m->layout = GPUOS_CAT_ARANGE;
		return 0;
	}
	if (s->family == GPUOS_SIG_INDEX_SELECT) {
		/* elements move as words of their size; 4- or 8-byte indices */
		if (s->isel.elem != 1 && s->isel.elem != 2 && s->isel.elem != 4 &&
		    s->isel.elem != 8 && s->isel.elem != 16)
			return -ENOENT;
		if (s->isel.index != 4 && s->isel.index != 8)
			return -ENOENT;
		m->layout = GPUOS_CAT_INDEX_SELECT;
		m->dtype = m->acc = m->out = -1; /* bytes */
		return 0;
	}
	if (s->family == GPUOS_SIG_SOFTMAX) {
		/* unmasked, of float and the 16-bit floats (float accumulators; double's exp
		 * reads a constant bank of its own on sm_80), rows that fit the worker's
		 * registers and stack. half_to_float: the forward reads the 16-bit type and
		 * writes float, the backward reads float and writes the 16-bit gradient */
		m->dtype = gpuos_cat_dtype_of(s->dtype);
		m->out = gpuos_cat_dtype_of(s->out_dtype);
		m->acc = gpuos_cat_dtype_of(s->softmax.acc);
		if (s->softmax.masked || m->dtype < 0 || m->out < 0 ||
		    !(GPUOS_DT_FLOATS & GPUOS_DT_BIT(m->dtype)) ||
		    !(GPUOS_DT_FLOATS & GPUOS_DT_BIT(m->out)) || m->acc != GPUOS_DT_F32 ||
		    (m->out != m->dtype &&
		     (s->softmax.backward ? m->dtype : m->out) != GPUOS_DT_F32) ||
		    s->softmax.l2e > GPUOS_CAT_SOFTMAX_L2E)
			return -ENOENT;
		m->layout = GPUOS_CAT_SOFTMAX;
		m->l2e = s->softmax.l2e;
		m->log = s->softmax.log;
		m->backward = s->softmax.backward;
		return 0;
	}
	if (s->family == GPUOS_SIG_VECTORIZED || s->family == GPUOS_SIG_UNROLLED)
		m->layout = GPUOS_CAT_CONTIG;
	else if (s->family == GPUOS_SIG_ELEMENTWISE && !s->dyncast)
		m->layout = GPUOS_CAT_STRIDED;
	else
		return -ENOENT;
	/* casts on load or store: the cast layout, for elements of the types it converts */
	if (s->family == GPUOS_SIG_UNROLLED &&
	    (!strstr(s->loader, "LoadWithoutCast") || !strstr(s->storer, "StoreWithoutCast")))
		m->layout = GPUOS_CAT_CAST;
	for (unsigned i = 0; i < gpuos_cat_nentries; i++) {
		const struct gpuos_cat_entry *e = &gpuos_cat_entries[i];
		int dt;
		if (strcmp(s->op, e->op) || (e->lam && s->lam != e->lam))
			continue;
		dt = elem_dtype(e, s);
		if (dt < 0 || !(e->dtypes & GPUOS_DT_BIT(dt)))
			continue; /* another entry may take this type */
		if (m->layout == GPUOS_CAT_CAST &&
		    (!(GPUOS_CAT_CAST_TYPES & GPUOS_DT_BIT(dt)) || e->in0_dtype >= 0 || e->in1_bool ||
		     (e->out_dtype >= 0 && !(GPUOS_CAT_CAST_TYPES & GPUOS_DT_BIT(e->out_dtype)))))
			return -ENOENT;
		/* the contiguous families name their arrays: outputs + inputs */
		if (s->family != GPUOS_SIG_ELEMENTWISE && s->narrays != e->nin + 1)
			return -ENOENT;
		m->e = e;
		m->dtype = dt;
		return 0;
	}
	return -ENOENT;
}

int gpuos_cat_functor(const struct gpuos_sig *s, unsigned *size,
		      unsigned *nscalars, unsigned off[2], unsigned ssize[2])
{
	struct gpuos_cat_match m;

	if (gpuos_cat_match(s, &m) || !m.e)
		return -ENOENT;
	*size = layout(m.e, m.dtype, off, ssize);
	*nscalars = m.e->nscalars;
	for (unsigned k = m.e->nscalars; k < 2; k++)
		ssize[k] = 0;
	return 0;
}

void gpuos_cat_key(const struct gpuos_cat_match *m, char *buf, size_t len)
{
	if (m->layout == GPUOS_CAT_LAYER_NORM) {
		snprintf(buf, len, "layer_norm.float32.rows");
		return;
	}
	if (m->layout == GPUOS_CAT_CONCAT) {
		snprintf(buf, len, "%s", GPUOS_CAT_CONCAT_KEY);
		return;
	}
	if (m->layout == GPUOS_CAT_ARANGE) {
		snprintf(buf, len, "arange.%s", gpuos_cat_dtype_name(m->dtype));
		return;
	}
	if (m->layout == GPUOS_CAT_INDEX_SELECT) {
		snprintf(buf, len, "%s", GPUOS_CAT_ISEL_KEY);
		return;
	}
	if (m->layout == GPUOS_CAT_SOFTMAX) { /* log_softmax.float16.float32.7: in, out, rows */
		snprintf(buf, len, "%s%s.%s.%s.%u", m->log ? "log_softmax" : "softmax",
			 m->backward ? "_backward" : "", gpuos_cat_dtype_name(m->dtype),
			 gpuos_cat_dtype_name(m->out), m->l2e);
		return;
	}
	if (m->r) { /* sum.float16.float32.float16.reduce: input, accumulator, output */
		int n = snprintf(buf, len, "%s.%s.%s.%s.reduce", m->r->name,
				 gpuos_cat_dtype_name(m->dtype), gpuos_cat_dtype_name(m->acc),
				 gpuos_cat_dtype_name(m->out));
		/* vt0 and the input vector width, where they are not PyTorch's usual 4 and 4 */
		if ((m->vt0 != 4 || m->ivs != 4) && n > 0 && (size_t)n < len)
			n += snprintf(buf + n, len - (size_t)n, "%u%u", m->vt0, m->ivs);
		/* outputs a thread, where more than one */
		if (m->ovs > 1 && n > 0 && (size_t)n < len)
			snprintf(buf + n, len - (size_t)n, ".x%u", m->ovs);
		return;
	}
	snprintf(buf, len, "%s.%s.%s", m->e->name, gpuos_cat_dtype_name(m->dtype),
		 m->layout == GPUOS_CAT_STRIDED ? "strided"
		 : m->layout == GPUOS_CAT_CAST	? "cast"
						: "contig");
}

int gpuos_cat_cast_word(const struct gpuos_cat_match *m, const struct gpuos_ur_args *ur,
			uint64_t *a4)
{
	int out = m->e->out_dtype >= 0 ? m->e->out_dtype : m->dtype;
	int t[4] = {ur->out_dtype >= 0 ? ur->out_dtype : out};
	uint64_t w = 0;

	if (m->e->nin > 3)
		return -ENOTSUP;
	for (unsigned k = 0; k < m->e->nin; k++)
		t[k + 1] = ur->in_dtype[k] >= 0 ? ur->in_dtype[k] : m->dtype;
	for (unsigned k = 0; k <= m->e->nin; k++) {
		if (t[k] < 0 || t[k] > 31 || !(GPUOS_CAT_CAST_TYPES & GPUOS_DT_BIT(t[k])))
			return -ENOTSUP;
		w |= (uint64_t)t[k] << (32 + 8 * k);
	}
	*a4 |= w;
	return 0;
}

/* Whether indices below @n stay below the product of @dims sizes (no dims: any index). */
static bool index_fits(const uint32_t *sizes, int dims, uint64_t n)
{
	uint64_t prod = 1;

	if (!dims)
		return true;
	for (int d = 0; d < dims && prod < n; d++)
		if (__builtin_mul_overflow(prod, sizes[d], &prod))
			return true;
	return n <= prod;
}

int gpuos_cat_reduce_params(const struct gpuos_cat_match *m, const struct gpuos_reduce_args *a,
			    struct gpuos_cat_reduce *p)
{
	/* an arg reduction's accumulator: (value, int64 index), aligned as the index */
	unsigned acc = m->r && m->r->arg ? 16 : dt_size(m->acc), ops = m->r && m->r->factor ? acc : 1;
	unsigned al = acc > 8 ? 8 : acc, ident = (ops + al - 1) / al * al; /* after the ops */

	memset(p, 0, sizeof(*p));
	if (!m->r || !acc || (unsigned)a->element_size_bytes != acc ||
	    a->head != (ident + acc + 3) / 4 * 4 || a->in_dims > GPUOS_CAT_RED_DIMS ||
	    a->out_dims > GPUOS_CAT_RED_DIMS || a->input_mult[2] || a->block_width < 1 ||
	    (a->block_width & (a->block_width - 1)) || a->block_height < 1 ||
	    (a->block_height & (a->block_height - 1))) /* the operator's shifts and lanes */
		return -ENOTSUP;
	memcpy(&p->ident, a->head_bytes + ident, acc);
	if (m->r->factor)
		memcpy(&p->factor, a->head_bytes, 4);
	p->src = a->src;
	p->dst = a->dst[0];
	p->num_inputs = a->num_inputs;
	p->num_outputs = a->num_outputs;
	p->step_input = a->step_input;
	p->step_output = a->step_output;
	memcpy(p->input_mult, a->input_mult, sizeof(p->input_mult));
	memcpy(p->output_mult, a->output_mult, sizeof(p->output_mult));
	p->block_width = a->block_width;
	p->block_height = a->block_height;
	p->output_vec_size = a->output_vec_size;
	p->vectorize = a->vectorize_input;
	p->grid_x = (a->num_outputs + a->output_vec_size * a->step_output - 1) /
		    (a->output_vec_size * a->step_output);
	/* the calculators' last dims take what is left of an index without a division:
	 * every index they get must be below their sizes' product (catalog.c's out_offs) */
	if (!index_fits(a->in_sizes, a->in_dims, (uint64_t)a->num_inputs) ||
	    !index_fits(a->out_sizes, a->out_dims,
			((uint64_t)a->num_outputs + a->output_vec_size - 1) / a->output_vec_size *
			    a->output_vec_size))
		return -ENOTSUP;
	p->in_dims = a->in_dims;
	p->out_dims = a->out_dims;
	for (int d = 0; d < a->in_dims; d++) {
		p->in_sizes[d] = a->in_sizes[d];
		p->in_strides[d] = a->in_strides[d];
	}
	for (int d = 0; d < a->out_dims; d++) {
		p->out_sizes[d] = a->out_sizes[d];
		p->out_strides[d][0] = a->out_strides[d][0];
		p->out_strides[d][1] = a->out_strides[d][1];
	}
	return 0;
}

/*
 * Conversions as c10 does them on the device: Half through cvt.rn (__float2half), BFloat16
 * through cvt.rn.bf16 from sm_80 on and c10's round-to-nearest-even (NaN 0x7fc0) before.
 */
static const char prelude[] =
    "#include \"gpuos_task.h\"\n"
    "static __device__ __forceinline__ float h2f(unsigned short h)\n"
    "{ float f; asm(\"cvt.f32.f16 %0, %1;\" : \"=f\"(f) : \"h\"(h)); return f; }\n"
    "static __device__ __forceinline__ unsigned short f2h(float f)\n"
    "{ unsigned short h; asm(\"cvt.rn.f16.f32 %0, %1;\" : \"=h\"(h) : \"f\"(f)); return h; }\n"
    "static __device__ __forceinline__ unsigned short hneg(unsigned short h)\n"
    "{ unsigned short r; asm(\"neg.f16 %0, %1;\" : \"=h\"(r) : \"h\"(h)); return r; }\n"
    "static __device__ __forceinline__ float b2f(unsigned short b)\n"
    "{ return __uint_as_float((unsigned)b << 16); }\n"
    "static __device__ __forceinline__ unsigned short f2b(float f)\n"
    "{\n"
    "#if __CUDA_ARCH__ >= 800\n"
    "  unsigned short b; asm(\"cvt.rn.bf16.f32 %0, %1;\" : \"=h\"(b) : \"f\"(f)); return b;\n"
    "#else\n"
    "  unsigned u = __float_as_uint(f);\n"
    "  if (f != f) return 0x7fc0;\n"
    "  return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);\n"
    "#endif\n"
    "}\n";

/*
 * The operator: one launch per task, in order, a barrier between tasks (the next may read
 * what this one wrote). Every element is computed by elem(), as PyTorch's functor does.
 */
static const char body[] =
    "typedef OPM O;\n"
    "static __device__ __forceinline__ OUT_T elem(I0_T ra, I1_T rb, I2_T rc, SC_T rs0, SC_T rs1,\n"
    "                                             O s0, O s1, uint64_t sc0)\n"
    "{\n"
    "  const O a = I0_LD(ra), b = I1_LD(rb), c = I2_LD(rc);\n"
    "  (void)a; (void)b; (void)c; (void)s0; (void)s1; (void)rs0; (void)rs1; (void)sc0;\n"
    "#if RET_RAW\n"
    "  return (OUT_T)(EXPR);\n"
    "#else\n"
    "  return OUT_ST((O)(EXPR));\n"
    "#endif\n"
    "}\n"
    "#if CAST /* c10::fetch_and_cast / cast_and_store: C's conversions between these */\n"
    "template <typename T> static __device__ __forceinline__ T ldc(uint64_t p, unsigned i, unsigned c)\n"
    "{\n"
    "  switch (c) {\n"
    "  case 3: return (T)((const int *)p)[i];\n"
    "  case 4: return (T)((const long long *)p)[i];\n"
    "  case 6: return (T)((const float *)p)[i];\n"
    "  default: return (T)((const bool *)p)[i]; /* 11: the host sends no other */\n"
    "  }\n"
    "}\n"
    "template <typename T> static __device__ __forceinline__ void stc(uint64_t p, unsigned i, unsigned c, T v)\n"
    "{\n"
    "  switch (c) {\n"
    "  case 3: ((int *)p)[i] = (int)v; break;\n"
    "  case 4: ((long long *)p)[i] = (long long)v; break;\n"
    "  case 6: ((float *)p)[i] = (float)v; break;\n"
    "  default: ((bool *)p)[i] = (bool)v; break;\n"
    "  }\n"
    "}\n"
    "#define LDI(k, T, p, i) ((k) < NIN ? ldc<T>(p, i, (unsigned)(tk->a[4] >> (40 + 8 * (k))) & 0xffu) : (T)0)\n"
    "#define STO(i, v) stc<OUT_T>(tk->a[0], i, (unsigned)(tk->a[4] >> 32) & 0xffu, v)\n"
    "#else\n"
    "#define LDI(k, T, p, i) ((k) < NIN ? ((const T *)(p))[i] : (T)0)\n"
    "#define STO(i, v) (out[i] = (v))\n"
    "#endif\n"
    "#if !STRIDED && !CAST\n"
    "/*\n"
    " * Contiguous arrays each aligned to four of its elements: four elements a load, VG loads\n"
    " * an array a thread in flight together (where the registers allow), so that the one\n"
    " * block has many bytes on their way at once; the tail (n % 4) one by one. The same\n"
    " * elem() of each element's own inputs as the scalar loop, so the same results.\n"
    " */\n"
    "template <typename T> struct alignas(4 * sizeof(T)) v4 { T x[4]; };\n"
    "#define VMIS(p, T) ((p) & (4 * sizeof(T) - 1))\n"
    "#define VG 2 /* four: the registers of a loop of one input, slower at 1024 elements */\n"
    "static __device__ __forceinline__ void contig4(const struct gpuos_task *tk, unsigned n,\n"
    "    unsigned me, unsigned all, SC_T rs0, SC_T rs1, O s0, O s1, uint64_t sc0)\n"
    "{\n"
    "  OUT_T *out = (OUT_T *)tk->a[0];\n"
    "  const unsigned ng = n / 4;\n"
    "  for (unsigned g = me; g < ng; g += VG * all) {\n"
    "    v4<I0_T> x0[VG]; v4<I1_T> x1[VG]; v4<I2_T> x2[VG];\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < VG; j++)\n"
    "      if (g + j * all < ng) {\n"
    "        x0[j] = NIN > 0 ? ((const v4<I0_T> *)tk->a[1])[g + j * all] : v4<I0_T>{};\n"
    "        x1[j] = NIN > 1 ? ((const v4<I1_T> *)tk->a[2])[g + j * all] : v4<I1_T>{};\n"
    "        x2[j] = NIN > 2 ? ((const v4<I2_T> *)tk->a[3])[g + j * all] : v4<I2_T>{};\n"
    "      }\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < VG; j++)\n"
    "      if (g + j * all < ng) {\n"
    "        v4<OUT_T> o;\n"
    "#pragma unroll\n"
    "        for (int e = 0; e < 4; e++)\n"
    "          o.x[e] = elem(x0[j].x[e], x1[j].x[e], x2[j].x[e], rs0, rs1, s0, s1, sc0);\n"
    "        ((v4<OUT_T> *)out)[g + j * all] = o;\n"
    "      }\n"
    "  }\n"
    "  for (unsigned i = 4 * ng + me; i < n; i += all)\n"
    "    STO(i, elem(LDI(0, I0_T, tk->a[1], i), LDI(1, I1_T, tk->a[2], i),\n"
    "                LDI(2, I2_T, tk->a[3], i), rs0, rs1, s0, s1, sc0));\n"
    "}\n"
    "#endif\n"
    "#if STRIDED\n"
    "/*\n"
    " * The strided layout's elements: the block (catalog.h) at b, its first D dims (D 1..3,\n"
    " * in registers) or, D 0, its dims (read where it is). An element's offsets: its index\n"
    " * split by the sizes, innermost first, IntDivider's way; the outermost of D needs no\n"
    " * division (N is the sizes' product). Four elements a thread at once, their loads in\n"
    " * flight together: PyTorch's overlap checks leave each element's inputs to it alone.\n"
    " */\n"
    "#define PW (PDIM / 4) /* words a dim: size, magic, shift, a stride an array */\n"
    "template <int D>\n"
    "static __device__ __forceinline__ void strided(const unsigned char *b, unsigned dims,\n"
    "    unsigned n, unsigned me, unsigned all, SC_T rs0, SC_T rs1, O s0, O s1, uint64_t sc0)\n"
    "{\n"
    "  const uint64_t *ptr = (const uint64_t *)b;\n"
    "  const uint64_t p0 = ptr[0], p1 = ptr[1], p2 = ptr[2], p3 = ptr[3];\n"
    "  const unsigned *w = (const unsigned *)(b + PHEAD);\n"
    "  unsigned r[D ? D * PW : 1];\n"

    "#pragma unroll\n"
    "  for (int k = 0; k < (D ? D * PW : 0); k++)\n"
    "    r[k] = w[k];\n"
    "  (void)p1; (void)p2; (void)p3; (void)r;\n"
    "#define DV(k) (D ? r[(k)] : w[(k)])\n"
    "  for (unsigned i = me; i < n; i += 4 * all) {\n"
    "    unsigned off[4][NIN + 1];\n"
    "    I0_T x0[4]; I1_T x1[4]; I2_T x2[4];\n"
    "#pragma unroll\n"
    "    for (int e = 0; e < 4; e++) {\n"
    "      if (i + e * all >= n)\n"
    "        continue;\n"
    "      unsigned lin = i + e * all;\n"
    "#pragma unroll\n"
    "      for (int j = 0; j <= NIN; j++)\n"
    "        off[e][j] = 0;\n"
    "#define STEP(d)                                                                  \\\n"
    "      do {                                                                       \\\n"
    "        const unsigned q = (__umulhi(lin, DV((d) * PW + 1)) + lin) >> DV((d) * PW + 2); \\\n"
    "        const unsigned rem = lin - q * DV((d) * PW);                             \\\n"
    "        lin = q;                                                                 \\\n"
    "        for (int j = 0; j <= NIN; j++)                                           \\\n"
    "          off[e][j] += rem * DV((d) * PW + 3 + j);                               \\\n"
    "      } while (0)\n"
    "#pragma unroll\n"
    "      for (int d = 0; d < D - 1; d++)\n"
    "        STEP(d);\n"
    "      /* D 0: the outermost too, its quotient 0 (one division more, no index\n"
    "       * arithmetic that ptxas would keep in the module's constant bank) */\n"
    "#pragma unroll 1\n"
    "      for (unsigned d = 0; !D && d < dims; d++)\n"
    "        STEP(d);\n"
    "#undef STEP\n"
    "#pragma unroll\n"
    "      for (int j = 0; D && j <= NIN; j++)\n"
    "        off[e][j] += lin * r[(D ? D - 1 : 0) * PW + 3 + j];\n"
    "      x0[e] = NIN > 0 ? *(const I0_T *)(p1 + off[e][NIN > 0]) : (I0_T)0;\n"
    "      x1[e] = NIN > 1 ? *(const I1_T *)(p2 + off[e][NIN > 1 ? 2 : 0]) : (I1_T)0;\n"
    "      x2[e] = NIN > 2 ? *(const I2_T *)(p3 + off[e][NIN > 2 ? 3 : 0]) : (I2_T)0;\n"
    "    }\n"
    "#pragma unroll\n"
    "    for (int e = 0; e < 4; e++)\n"
    "      if (i + e * all < n)\n"
    "        *(OUT_T *)(p0 + off[e][0]) = elem(x0[e], x1[e], x2[e], rs0, rs1, s0, s1, sc0);\n"
    "  }\n"
    "#undef DV\n"
    "}\n"
    "#endif\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  const unsigned me = gpuos_tid(), all = gpuos_nthreads();\n"
    "  (void)smem;\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    const struct gpuos_task *tk = &t[k];\n"
    "    const uint64_t sc0 = tk->a[5], sc1 = NSC > 1 ? tk->a[3] : 0;\n"
    "    const SC_T rs0 = SC_RAW(sc0), rs1 = SC_RAW(sc1);\n"
    "    const O s0 = SC_LD(rs0), s1 = SC_LD(rs1);\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written what this one reads */\n"
    "#if STRIDED\n"
    "    const unsigned n = (unsigned)tk->a[0], dims = (unsigned)tk->a[1];\n"
    "    const uint4 *blk = (const uint4 *)tk->a[2];\n"
    "    /* the block: the worker fetched it into shared memory, or it is in mapped host\n"
    "     * memory (too large) and every thread would wait on the bus: copy it once */\n"
    "    if (!__isShared(blk)) {\n"
    "      uint4 *win = (uint4 *)smem;\n"
    "      /* not unrolled: ptxas would jump into the copies through a table in the\n"
    "       * module's constant bank, which a call from the worker cannot read */\n"
    "#pragma unroll 1\n"
    "      for (unsigned i = me; i < (PHEAD + dims * PDIM + 15) / 16; i += all)\n"
    "        win[i] = blk[i];\n"
    "      gpuos_sync();\n"
    "      blk = win;\n"
    "    }\n"
    "    const unsigned char *b = (const unsigned char *)blk;\n"
    "    if (dims == 1)\n"
    "      strided<1>(b, dims, n, me, all, rs0, rs1, s0, s1, sc0);\n"
    "    else if (dims == 2)\n"
    "      strided<2>(b, dims, n, me, all, rs0, rs1, s0, s1, sc0);\n"
    "    else if (dims == 3)\n"
    "      strided<3>(b, dims, n, me, all, rs0, rs1, s0, s1, sc0);\n"
    "    else\n"
    "      strided<0>(b, dims, n, me, all, rs0, rs1, s0, s1, sc0);\n"
    "#else\n"
    "    OUT_T *out = (OUT_T *)tk->a[0];\n"
    "    const unsigned n = (unsigned)tk->a[4];\n"
    "    (void)out;\n"
    "#if !CAST\n"
    "    if (!(VMIS(tk->a[0], OUT_T) | (NIN > 0 ? VMIS(tk->a[1], I0_T) : 0) |\n"
    "          (NIN > 1 ? VMIS(tk->a[2], I1_T) : 0) | (NIN > 2 ? VMIS(tk->a[3], I2_T) : 0))) {\n"
    "      contig4(tk, n, me, all, rs0, rs1, s0, s1, sc0);\n"
    "      continue;\n"
    "    }\n"
    "#endif\n"
    "    unsigned i = me;\n"
    "    /* four elements a thread at once: their loads in flight together */\n"
    "    for (; i + 3 * all < n; i += 4 * all) {\n"
    "      I0_T x0[4]; I1_T x1[4]; I2_T x2[4];\n"
    "#pragma unroll\n"
    "      for (int j = 0; j < 4; j++) {\n"
    "        x0[j] = LDI(0, I0_T, tk->a[1], i + j * all);\n"
    "        x1[j] = LDI(1, I1_T, tk->a[2], i + j * all);\n"
    "        x2[j] = LDI(2, I2_T, tk->a[3], i + j * all);\n"
    "      }\n"
    "#pragma unroll\n"
    "      for (int j = 0; j < 4; j++)\n"
    "        STO(i + j * all, elem(x0[j], x1[j], x2[j], rs0, rs1, s0, s1, sc0));\n"
    "    }\n"
    "    for (; i < n; i += all)\n"
    "      STO(i, elem(LDI(0, I0_T, tk->a[1], i), LDI(1, I1_T, tk->a[2], i),\n"
    "                  LDI(2, I2_T, tk->a[3], i), rs0, rs1, s0, s1, sc0));\n"
    "#endif\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

/* Storage type, load (storage -> opmath) and store (opmath -> storage) of element type @dt. */
static void conv(int dt, const char **ctype, const char **ld, const char **st)
{
	int i = dt_index(dt);

	*ctype = i < 0 ? "float" : dtypes[i].ctype;
	switch (dt) {
	case GPUOS_DT_F16:
		*ld = "h2f", *st = "f2h";
		break;
	case GPUOS_DT_BF16:
		*ld = "b2f", *st = "f2b";
		break;
	default:
		*ld = *st = "(O)";
		break;
	}
}

/* SC_RAW(x): a scalar of type @dt from its bytes zero-extended in x (a uint64_t). */
static const char *scalar_raw(int dt)
{
	switch (dt) {
	case GPUOS_DT_F32:
		return "__uint_as_float((unsigned)(x))";
	case GPUOS_DT_F64:
		return "__longlong_as_double((long long)(x))";
	case GPUOS_DT_BOOL:
		return "(((x) & 0xffu) != 0)";
	default:
		return "((SC_T)(x))";
	}
}

/*
 * A reduction (catalog.h): PyTorch's kernel, its threads folded by the worker's so that a
 * worker warp holds 32 of one block's threads, lane for lane. Without a tree across warps (no
 * block_y_reduce, x within a warp) every block runs at once, shuffling as PyTorch's warps
 * do; otherwise the blocks run one after another, every shared-memory tree step a barrier,
 * then the warp's shuffles. RED_XDESC: the
 * warp's shuffles take decreasing offsets (16, 8, ... 1) as PyTorch 2.11's block_x_reduce
 * does; 0 would be the increasing order of older releases.
 */
#define RED_XSTR(...) #__VA_ARGS__
#define RED_STR(...)  RED_XSTR(__VA_ARGS__)
static const char red_body[] =
    "typedef VAL_T O; /* conv()'s loads name the type they load into O */\n"
    "#if ARG /* (value, index): ArgReductionOps' pair; the index is the input's place */\n"
    "struct red_pair { VAL_T v; long long i; };\n"
    "typedef struct red_pair A;\n"
    "static __device__ __forceinline__ bool first(VAL_T a, VAL_T b, long long ia, long long ib)\n"
    "{ return COMBINE; }\n"
    "static __device__ __forceinline__ A comb(A a, A b) { return first(a.v, b.v, a.i, b.i) ? a : b; }\n"
    "#define RED(acc, x, k) comb(acc, A{ld(x), (long long)(k)})\n"
    "#else\n"
    "typedef VAL_T A;\n"
    "static __device__ __forceinline__ A comb(A a, A b) { return COMBINE; }\n"
    "#define RED(acc, x, k) comb(acc, ld(x))\n"
    "#endif\n"
    "struct gpuos_red { " RED_STR(GPUOS_CAT_RED_FIELDS(MAXD)) " };\n"
    "#define RED_HEAD ((sizeof(struct gpuos_red) + 15) & ~(size_t)15)\n"
    "static __device__ __forceinline__ VAL_T ld(IN_T x) { return IN_LD(x); }\n"
    "/* aligned_vector<IN_T, IVS>: the vectors vec_fold loads, one load each as PyTorch's */\n"
    "struct __align__(IVS * sizeof(IN_T)) ivec { IN_T v[IVS]; };\n"
    "/* OffsetCalculator<2>: output i's byte offsets in both arrays (x the output's, y the\n"
    " * input's), a division a dim but the last: i < num_outputs <= the sizes' product (the\n"
    " * host checks), so what is left of i there is its index in the last dim */\n"
    "static __device__ __forceinline__ uint2 out_offs(const struct gpuos_red *r, unsigned i)\n"
    "{\n"
    "  uint2 off = {0, 0};\n"
    "  int d = 0;\n"
    "#pragma unroll 1 /* dims are few: code the i-cache holds */\n"
    "  for (; d < r->out_dims - 1; d++) {\n"
    "    const unsigned q = i / r->out_sizes[d], m = i - q * r->out_sizes[d];\n"
    "    off.x += m * r->out_strides[d][0];\n"
    "    off.y += m * r->out_strides[d][1];\n"
    "    i = q;\n"
    "  }\n"
    "  if (d < r->out_dims) {\n"
    "    off.x += i * r->out_strides[d][0];\n"
    "    off.y += i * r->out_strides[d][1];\n"
    "  }\n"
    "  return off;\n"
    "}\n"
    "/* OffsetCalculator<1> of the input, in elements, the last dim as above (i < num_inputs\n"
    " * <= the sizes' product) */\n"
    "static __device__ unsigned in_off(const struct gpuos_red *r, unsigned i)\n"
    "{\n"
    "  unsigned off = 0;\n"
    "  int d = 0;\n"
    "#pragma unroll 1\n"
    "  for (; d < r->in_dims - 1; d++) {\n"
    "    const unsigned q = i / r->in_sizes[d];\n"
    "    off += (i - q * r->in_sizes[d]) * r->in_strides[d];\n"
    "    i = q;\n"
    "  }\n"
    "  if (d < r->in_dims)\n"
    "    off += i * r->in_strides[d];\n"
    "  return off / (unsigned)sizeof(IN_T);\n"
    "}\n"
    "/* input_vectorized_thread_reduce_impl: the unaligned head by lanes shift..IVS-1, IVS\n"
    " * accumulators over aligned vectors, the tail into the first */\n"
    "static __device__ __forceinline__ A vec_fold(const struct gpuos_red *r, const IN_T *data,\n"
    "                                              unsigned idx, unsigned tx, bool tail, A ident)\n"
    "{\n"
    "  unsigned end = (unsigned)r->num_inputs;\n"
    "  A value = ident, v[IVS];\n"
    "  int shift = (int)(((unsigned long long)data % (IVS * sizeof(IN_T))) / sizeof(IN_T));\n"
    "  if (shift > 0) {\n"
    "    data -= shift;\n"
    "    end += shift;\n"
    "    if (tx >= (unsigned)shift && tx < IVS && tail)\n"
    "      value = RED(value, data[tx], (int)tx - shift);\n"
    "    end -= IVS;\n"
    "    data += IVS;\n"
    "    shift = IVS - shift;\n"
    "  }\n"
    "  v[0] = value;\n"
    "#pragma unroll\n"
    "  for (int i = 1; i < IVS; i++)\n"
    "    v[i] = ident;\n"
    "  while (idx * IVS + IVS - 1 < end) {\n"
    "    const struct ivec x = ((const struct ivec *)data)[idx]; /* data is aligned now */\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < IVS; i++)\n"
    "      v[i] = RED(v[i], x.v[i], shift + idx * IVS + i);\n"
    "    idx += (unsigned)r->step_input;\n"
    "  }\n"
    "  if (tail && end - end % IVS + tx < end)\n"
    "    v[0] = RED(v[0], data[end - end % IVS + tx], end - end % IVS + tx + shift);\n"
    "#pragma unroll\n"
    "  for (int i = 1; i < IVS; i++)\n"
    "    v[0] = comb(v[0], v[i]);\n"
    "  return v[0];\n"
    "}\n"
    "/* thread_reduce_impl: VT0 accumulators (each of OVM outputs) over inputs a stride apart,\n"
    " * the tail into the first ones in turn, then folded in order */\n"
    "static __device__ __forceinline__ void fold(const struct gpuos_red *r, const IN_T *data,\n"
    "                                            unsigned idx, A ident, A *res)\n"
    "{\n"
    "  const unsigned end = (unsigned)r->num_inputs, stride = (unsigned)r->step_input;\n"
    "  A v[VT0][OVM];\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < VT0; i++)\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < OVM; j++)\n"
    "      v[i][j] = ident;\n"
    "  while (idx + (VT0 - 1) * stride < end) {\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < VT0; i++) {\n"
    "      const unsigned o = in_off(r, idx + i * stride) / OVM * OVM;\n"
    "#pragma unroll\n"
    "      for (unsigned j = 0; j < OVM; j++)\n"
    "        v[i][j] = RED(v[i][j], data[o + j], idx + i * stride);\n"
    "    }\n"
    "    idx += stride * VT0;\n"
    "  }\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < VT0; i++) {\n"
    "    if (idx >= end)\n"
    "      break;\n"
    "    const unsigned o = in_off(r, idx) / OVM * OVM;\n"
    "#pragma unroll\n"
    "    for (unsigned j = 0; j < OVM; j++)\n"
    "      v[i][j] = RED(v[i][j], data[o + j], idx);\n"
    "    idx += stride;\n"
    "  }\n"
    "#pragma unroll\n"
    "  for (int i = 1; i < VT0; i++)\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < OVM; j++)\n"
    "      v[0][j] = comb(v[0][j], v[i][j]);\n"
    "#pragma unroll\n"
    "  for (int j = 0; j < OVM; j++)\n"
    "    res[j] = v[0][j];\n"
    "}\n"
    "/* __shfl_down_sync of an A (a 16-bit or bool value goes as an int): lanes past the\n"
    " * warp's end keep theirs */\n"
    "static __device__ __forceinline__ VAL_T shfl_val(VAL_T v, int d)\n"
    "{ return (VAL_T)__shfl_down_sync(0xffffffffu, v, d); }\n"
    "#if ARG\n"
    "static __device__ __forceinline__ A shfl_down(A a, int d)\n"
    "{ return A{shfl_val(a.v, d), __shfl_down_sync(0xffffffffu, a.i, d)}; }\n"
    "#else\n"
    "static __device__ __forceinline__ A shfl_down(A a, int d) { return shfl_val(a, d); }\n"
    "#endif\n"
    "/* block_x_reduce's warp part over dim (a power of two <= 32) lanes, on every lane of the\n"
    " * warp as PyTorch does; the caller's lanes are its threads' x modulo 32 */\n"
    "static __device__ __forceinline__ void warp_tree(A *v, int dim)\n"
    "{\n"
    "#if RED_XDESC\n"
    "#pragma unroll\n"
    "  for (int off = 16; off > 0; off >>= 1)\n"
    "#else\n"
    "#pragma unroll\n"
    "  for (int off = 1; off < 32; off <<= 1)\n"
    "#endif\n"
    "    if (off < dim)\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < OVM; j++)\n"
    "      v[j] = comb(v[j], shfl_down(v[j], off));\n"
    "}\n"
    "/* one step of a tree: slot l takes slot l + d's partial, for l's in step */\n"
    "#define RED_STEP(cond, d)                                                  \\\n"
    "  do {                                                                    \\\n"
    "    for (int l = me; l < nt; l += all) {                                  \\\n"
    "      const int tx = l & (bw - 1), ty = l >> lbw;                         \\\n"
    "      (void)tx; (void)ty;                                                 \\\n"
    "      if (cond)                                                           \\\n"
    "        for (int j = 0; j < OVM; j++)                                     \\\n"
    "          buf[l * OVM + j] = comb(buf[l * OVM + j], buf[(l + (d)) * OVM + j]); \\\n"
    "    }                                                                     \\\n"
    "    gpuos_sync();                                                         \\\n"
    "  } while (0)\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  const int me = (int)gpuos_tid(), all = (int)gpuos_nthreads();\n"
    "  A *buf = (A *)((char *)smem + RED_HEAD);\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written what this one reads */\n"
    "    /* the block: fetched into shared memory with the task, or in mapped host\n"
    "     * memory (sm_75), where every read would wait on the bus: copy it once */\n"
    "    const struct gpuos_red *r = (const struct gpuos_red *)t[k].a[2];\n"
    "    if (!__isShared(r)) {\n"
    "#pragma unroll 1 /* no jump table (the parameter block's copy, above) */\n"
    "      for (int i = me; i < (int)(RED_HEAD / 16); i += all)\n"
    "        ((uint4 *)smem)[i] = ((const uint4 *)t[k].a[2])[i];\n"
    "      gpuos_sync();\n"
    "      r = (const struct gpuos_red *)smem;\n"
    "    }\n"
    "    const int bw = r->block_width, bh = r->block_height, nt = bw * bh;\n"
    "    const bool xr = r->input_mult[0] != 0, yr = r->input_mult[1] != 0;\n"
    "    const A ident = *(const A *)&r->ident;\n"
    "    /* worker warps hold 32 of a block's threads each (l = g % nt32, g = me + i * all):\n"
    "     * lane == tx % 32, the block's x and y being powers of two (the host checks) */\n"
    "    const int nt32 = nt < 32 ? 32 : nt, lbw = __ffs(bw) - 1, lnt = __ffs(nt32) - 1;\n"
    "    /* no tree across warps: every block at once, no barrier */\n"
    "    const bool flat = !yr && (!xr || bw <= 32);\n"
    "    const int nb = flat ? r->grid_x : 1;\n"
    "    const int om0 = r->output_mult[0], om1 = r->output_mult[1], so = r->step_output;\n"
    "    const int im0 = r->input_mult[0], im1 = r->input_mult[1];\n"
    "    const unsigned nout = (unsigned)r->num_outputs, nin = (unsigned)r->num_inputs;\n"
    "    for (int b0 = 0; b0 < r->grid_x; b0 += nb) {\n"
    "      for (int g = me; g < nb << lnt; g += all) {\n"
    "        const int bx = b0 + (g >> lnt), l = g & (nt32 - 1);\n"
    "        const int tx = l & (bw - 1), ty = l >> lbw;\n"
    "        const unsigned oi = (unsigned)((tx * om0 + ty * om1 + bx * so) * OVM);\n"
    "        const unsigned ii = (unsigned)(tx * im0 + ty * im1);\n"
    "        const bool live = l < nt && oi < nout;\n"
    "        const uint2 off = live ? out_offs(r, oi) : make_uint2(0, 0);\n"
    "        A v[OVM];\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < OVM; j++)\n"
    "          v[j] = ident;\n"
    "        if (live && ii < nin) {\n"
    "          const IN_T *data = (const IN_T *)(r->src + off.y);\n"
    "          if (r->vectorize)\n"
    "            v[0] = vec_fold(r, data, ii, (unsigned)tx, !yr || ty == 0, ident);\n"
    "          else\n"
    "            fold(r, data, ii, ident, v);\n"
    "        }\n"
    "        if (flat) { /* block_x_reduce is its warp part alone: shuffle, store */\n"
    "          if (xr)\n"
    "            warp_tree(v, bw);\n"
    "          if (live && (!xr || tx == 0))\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < OVM; j++) {\n"
    "              const A a = v[j];\n"
    "              *(OUT_T *)(r->dst + (j ? out_offs(r, oi + j).x : off.x)) = OUT_ST(PROJECT);\n"
    "            }\n"
    "        } else if (l < nt) {\n"
    "#pragma unroll\n"
    "          for (int j = 0; j < OVM; j++)\n"
    "            buf[l * OVM + j] = v[j];\n"
    "        }\n"
    "      }\n"
    "      if (flat)\n"
    "        continue;\n"
    "      const int bx = b0;\n"
    "      gpuos_sync();\n"
    "      if (yr) /* block_y_reduce: rows halve */\n"
    "        for (int off = bh / 2; off > 0; off >>= 1)\n"
    "          RED_STEP(ty < off && ty + off < bh, off * bw);\n"
    "      int dim = bw; /* block_x_reduce: shared memory down to a warp, then shuffles */\n"
    "      if (xr && dim > 32) {\n"
    "        for (int off = dim / 2; off >= 32; off >>= 1)\n"
    "          RED_STEP(tx < off && tx + off < bw, off);\n"
    "        dim = 32;\n"
    "      }\n"
    "      for (int l = me; l < nt32; l += all) {\n"
    "        const int tx = l & (bw - 1), ty = l >> lbw;\n"
    "        const unsigned oi = (unsigned)((tx * om0 + ty * om1 + bx * so) * OVM);\n"
    "        A v[OVM];\n"
    "#pragma unroll\n"
    "        for (int j = 0; j < OVM; j++)\n"
    "          v[j] = l < nt ? buf[l * OVM + j] : ident;\n"
    "        if (xr)\n"
    "          warp_tree(v, dim);\n"
    "        if (l < nt && oi < nout && (!xr || tx == 0) && (!yr || ty == 0))\n"
    "#pragma unroll\n"
    "          for (int j = 0; j < OVM; j++) {\n"
    "            const A a = v[j];\n"
    "            *(OUT_T *)(r->dst + out_offs(r, oi + j).x) = OUT_ST(PROJECT);\n"
    "          }\n"
    "      }\n"
    "      gpuos_sync(); /* the next block's partials go where these were */\n"
    "    }\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

/* A reduction's source (gpuos_cat_source). */
static int red_source(const struct gpuos_cat_match *m, char *buf, size_t len)
{
	const char *it, *il, *at, *ot, *ost, *dummy;
	int n;

	if (dt_index(m->dtype) < 0 || dt_index(m->acc) < 0 || dt_index(m->out) < 0)
		return -EINVAL;
	conv(m->dtype, &it, &il, &dummy);
	conv(m->acc, &at, &dummy, &dummy);
	conv(m->out, &ot, &dummy, &ost);
	n = snprintf(buf, len,
		     "%s"
		     "#define MAXD %u\n#define VT0 %u\n#define IVS %u\n#define RED_XDESC 1\n"
		     "#define IN_T %s\n#define IN_LD(x) ((O)%s(x))\n#define VAL_T %s\n#define ARG %d\n"
		     "#define OVM %u /* outputs a thread: output_vec_size (sig.c: the launch's) */\n"
		     "#define OUT_T %s\n#define OUT_ST(x) %s(x)\n#define COMBINE (%s)\n"
		     "#define PROJECT %s\n"
		     "%s",
		     prelude, GPUOS_CAT_RED_DIMS, m->vt0, m->ivs, it, il, at, m->r->arg, m->ovs, ot,
		     m->out == GPUOS_DT_F16 || m->out == GPUOS_DT_BF16 ? ost : "(OUT_T)", m->r->combine,
		     m->r->arg ? "(a.i)" : m->r->factor ? "(a * __uint_as_float(r->factor))" : "(a)",
		     red_body);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

/*
 * Layer norm (catalog.h). The worker's compute threads make as many of PyTorch's blocks as
 * fit, one row each at a time; PyTorch's thread (x, y) of a block is its 32 y + x, so each
 * warp shuffles with the partners it has there; threads left over only take the barriers. Welford steps as layer_norm_kernel.cu writes them: the reciprocal
 * of the count times delta (IEEE reciprocal, as without fast math), the combine with its
 * operands in PyTorch's order (own, then the partner's), the same expressions, so that the
 * compiler contracts the same multiply-adds.
 */
static const char ln_src[] =
    "#include \"gpuos_task.h\"\n"
    "struct gpuos_ln { " RED_STR(GPUOS_CAT_LN_FIELDS) " };\n"
    "struct wf { float mean, m2, count; };\n"
    "static __device__ __forceinline__ wf wf_step(const float v, const wf &cur)\n"
    "{\n"
    "  float delta = v - cur.mean;\n"
    "  float count = cur.count + 1.f;\n"
    "  float mean = cur.mean + delta * (1.f / count);\n"
    "  return {mean, cur.m2 + delta * (v - mean), count};\n"
    "}\n"
    "static __device__ __forceinline__ wf wf_join(const wf b, const wf a)\n"
    "{\n"
    "  float delta = b.mean - a.mean;\n"
    "  float count = a.count + b.count;\n"
    "  float mean, m2;\n"
    "  if (count > 0.f) {\n"
    "    float k = 1.f / count;\n"
    "    float na = a.count * k;\n"
    "    float nb = b.count * k;\n"
    "    mean = na * a.mean + nb * b.mean;\n"
    "    m2 = a.m2 + b.m2 + delta * delta * a.count * nb;\n"
    "  } else {\n"
    "    mean = 0.f;\n"
    "    m2 = 0.f;\n"
    "  }\n"
    "  return {mean, m2, count};\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  const unsigned me = gpuos_tid(), all = gpuos_nthreads();\n"
    "#pragma unroll 1\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    const struct gpuos_ln p = *(const struct gpuos_ln *)t[k].a[2];\n"
    "    /* as many rows at once as the worker has PyTorch blocks of threads */\n"
    "    const int numx = 32 * p.by, nv = p.n / 4, groups = (int)all / numx;\n"
    "    const int gid = (int)me / numx, lme = (int)me % numx;\n"
    "    const unsigned lane = (unsigned)lme & 31u, wy = (unsigned)lme >> 5;\n"
    "    float *buf = (float *)smem + gid * (3 * p.by + 2);\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written what this one reads */\n"
    "#pragma unroll 1\n"
    "    for (int r0 = 0; r0 < p.rows; r0 += groups) {\n"
    "      const int r = r0 + gid;\n"
    "      const bool mine = gid < groups && r < p.rows;\n"
    "      const float4 *x = (const float4 *)(p.x + (uint64_t)r * p.n * 4);\n"
    "      wf w = {0.f, 0.f, 0.f};\n"
    "      if (mine) {\n"
    "#pragma unroll 1\n"
    "        for (int i = lme; i < nv; i += numx) {\n"
    "          const float4 v = x[i];\n"
    "          w = wf_step(v.x, w);\n"
    "          w = wf_step(v.y, w);\n"
    "          w = wf_step(v.z, w);\n"
    "          w = wf_step(v.w, w);\n"
    "        }\n"
    "#pragma unroll\n"
    "        for (int off = 16; off > 0; off >>= 1) {\n"
    "          wf o = {__shfl_down_sync(0xffffffffu, w.mean, off),\n"
    "                  __shfl_down_sync(0xffffffffu, w.m2, off),\n"
    "                  __shfl_down_sync(0xffffffffu, w.count, off)};\n"
    "          w = wf_join(w, o);\n"
    "        }\n"
    "      }\n"
    "      /* the warps' tree: the upper half hands its sums to the lower */\n"
    "#pragma unroll 1\n"
    "      for (int off = p.by / 2; off > 0; off /= 2) {\n"
    "        if (mine && lane == 0 && (int)wy >= off && (int)wy < 2 * off) {\n"
    "          buf[3 * (wy - off)] = w.mean;\n"
    "          buf[3 * (wy - off) + 1] = w.m2;\n"
    "          buf[3 * (wy - off) + 2] = w.count;\n"
    "        }\n"
    "        gpuos_sync();\n"
    "        if (mine && lane == 0 && (int)wy < off) {\n"
    "          wf o = {buf[3 * wy], buf[3 * wy + 1], buf[3 * wy + 2]};\n"
    "          w = wf_join(w, o);\n"
    "        }\n"
    "        gpuos_sync();\n"
    "      }\n"
    "      if (mine && lme == 0) {\n"
    "        buf[0] = w.mean;\n"
    "        buf[1] = w.m2 / (float)p.n;\n"
    "      }\n"
    "      gpuos_sync();\n"
    "      if (mine) {\n"
    "        const float mean = buf[0], var = buf[1];\n"
    "        const float rs = rsqrtf(var + p.eps);\n"
    "        float4 *y = (float4 *)(p.y + (uint64_t)r * p.n * 4);\n"
    "        const float4 *g = (const float4 *)p.gamma, *b = (const float4 *)p.beta;\n"
    "#pragma unroll 1\n"
    "        for (int i = lme; i < nv; i += numx) {\n"
    "          const float4 v = x[i];\n"
    "          float in[4] = {v.x, v.y, v.z, v.w}, out[4];\n"
    "          if (g && b) {\n"
    "            const float4 gv = g[i], bv = b[i];\n"
    "            const float gs[4] = {gv.x, gv.y, gv.z, gv.w}, bs[4] = {bv.x, bv.y, bv.z, bv.w};\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 4; j++)\n"
    "              out[j] = gs[j] * (rs * (in[j] - mean)) + bs[j];\n"
    "          } else if (g) {\n"
    "            const float4 gv = g[i];\n"
    "            const float gs[4] = {gv.x, gv.y, gv.z, gv.w};\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 4; j++)\n"
    "              out[j] = gs[j] * (rs * (in[j] - mean));\n"
    "          } else if (b) {\n"
    "            const float4 bv = b[i];\n"
    "            const float bs[4] = {bv.x, bv.y, bv.z, bv.w};\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 4; j++)\n"
    "              out[j] = (rs * (in[j] - mean)) + bs[j];\n"
    "          } else {\n"
    "#pragma unroll\n"
    "            for (int j = 0; j < 4; j++)\n"
    "              out[j] = rs * (in[j] - mean);\n"
    "          }\n"
    "          y[i] = make_float4(out[0], out[1], out[2], out[3]);\n"
    "        }\n"
    "        if (lme == 0) {\n"
    "          ((float *)p.mean)[r] = mean;\n"
    "          ((float *)p.rstd)[r] = rs;\n"
    "        }\n"
    "      }\n"
    "      gpuos_sync(); /* buf again for the next rows */\n"
    "    }\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

/*
 * torch.cat (catalog.h): every unit of every input to where CatArrIndexToOffset puts it, in
 * the kernel's 32-bit arithmetic, read where the input's own offset puts it if it has one. Units are bytes moved as one word of their size; no two go
 * to one place and PyTorch refuses inputs that overlap the output, so any order of them
 * leaves what the kernel leaves.
 */
static const char concat_src[] =
    "#include \"gpuos_task.h\"\n"
    "#define MAXIN " RED_STR(GPUOS_SIG_CONCAT_INPUTS) "\n"
    "struct gpuos_concat { " RED_STR(GPUOS_CAT_CONCAT_FIELDS(MAXIN)) " };\n"
    "/* CatArrIndexToOffset */\n"
    "static __device__ __forceinline__ uint32_t offset(uint32_t lin, const uint32_t *sizes,\n"
    "                                                  const uint32_t *strides, uint32_t dims,\n"
    "                                                  uint32_t cdim, uint32_t dsz)\n"
    "{\n"
    "  uint32_t o = 0;\n"
    "#pragma unroll 1\n"
    "  for (int i = (int)dims - 1; i >= 1; --i) {\n"
    "    const uint32_t cur = (uint32_t)i == cdim ? dsz : sizes[i];\n"
    "    const uint32_t next = lin / cur;\n"
    "    o += (lin - cur * next) * strides[i];\n"
    "    lin = next;\n"
    "  }\n"
    "  return o + lin * strides[0];\n"
    "}\n"
    "template <typename W> static __device__ __forceinline__ void\n"
    "move(unsigned char *out, const unsigned char *src, const struct gpuos_concat &p, uint32_t b)\n"
    "{\n"
    "  const uint32_t n = p.in[b].n, base = p.in[b].base, dsz = p.in[b].dsz;\n"
    "#pragma unroll 1\n"
    "  for (uint32_t u = gpuos_tid(); u < n; u += gpuos_nthreads()) {\n"
    "    const uint32_t o = offset(u, p.sizes, p.strides, p.dims, p.cdim, dsz);\n"
    "    const uint32_t i = p.in[b].contig ? u\n"
    "                       : offset(u, p.in[b].sizes, p.in[b].strides, p.dims, p.cdim, dsz);\n"
    "    ((W *)out)[base + o] = ((const W *)src)[i];\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  (void)smem;\n"
    "#pragma unroll 1\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    const struct gpuos_concat &p = *(const struct gpuos_concat *)t[k].a[2];\n"
    "    unsigned char *out = (unsigned char *)p.out;\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written what this one reads */\n"
    "#pragma unroll 1\n"
    "    for (uint32_t b = 0; b < p.nin; b++) {\n"
    "      const unsigned char *src = (const unsigned char *)p.in[b].src;\n"
    "      /* ifs, not a switch: a jump table would be a constant bank of its own */\n"
    "      if (p.unit == 16)\n"
    "        move<uint4>(out, src, p, b);\n"
    "      else if (p.unit == 8)\n"
    "        move<unsigned long long>(out, src, p, b);\n"
    "      else if (p.unit == 4)\n"
    "        move<unsigned>(out, src, p, b);\n"
    "      else if (p.unit == 2)\n"
    "        move<unsigned short>(out, src, p, b);\n"
    "      else\n"
    "        move<unsigned char>(out, src, p, b);\n"
    "    }\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

/*
 * index_select (catalog.h): row d of the output is row si of the source, si the d-th index
 * cut to 32 bits as the kernel's IndexType; an index at or past the source's size asserts,
 * as CUDA_KERNEL_ASSERT does (the program gets cudaErrorAssert). Offsets are IndexToOffset's
 * in the kernel's 32-bit arithmetic. PyTorch refuses an output that overlaps the source or
 * the indices, and no two elements go to one place, so any order leaves what the kernel does.
 */
static const char isel_src[] =
    "#include \"gpuos_task.h\"\n"
    "#define IDIMS " RED_STR(GPUOS_CAT_ISEL_DIMS) "\n"
    "struct gpuos_isel { " RED_STR(GPUOS_CAT_ISEL_FIELDS(IDIMS)) " };\n"
    "extern \"C\" __device__ void __assertfail(const char *, const char *, unsigned,\n"
    "                                         const char *, unsigned long);\n"
    "/* IndexToOffset: the inner dims by division, the outermost by its stride alone */\n"
    "static __device__ __forceinline__ uint32_t offset(uint32_t lin, const uint32_t *sizes,\n"
    "                                                  const uint32_t *strides, uint32_t dims)\n"
    "{\n"
    "  uint32_t o = 0;\n"
    "#pragma unroll 1\n"
    "  for (int i = (int)dims - 1; i > 0; --i) {\n"
    "    o += (lin % sizes[i]) * strides[i];\n"
    "    lin /= sizes[i];\n"
    "  }\n"
    "  return o + lin * strides[0];\n"
    "}\n"
    "template <typename W>\n"
    "static __device__ __forceinline__ void rows(const struct gpuos_isel &p)\n"
    "{\n"
    "#pragma unroll 1\n"
    "  for (uint32_t d = 0; d < p.nidx; d++) {\n"
    "    const uint32_t at = d * p.istride;\n"
    "    const uint32_t si = p.isize == 8 ? (uint32_t)((const long long *)p.idx)[at]\n"
    "                                     : (uint32_t)((const int *)p.idx)[at];\n"
    "    if (!((long long)si < p.limit))\n"
    "      __assertfail(\"srcIndex < srcSelectDimSize\", \"gpuos catalog (index_select)\", 0,\n"
    "                   \"indexSelectSmallIndex\", 1);\n"
    "#pragma unroll 1\n"
    "    for (uint32_t e = gpuos_tid(); e < p.inner; e += gpuos_nthreads()) {\n"
    "      const uint32_t o = offset(e, p.dst_sizes, p.dst_strides, p.dst_dims) + d * p.dst_sel;\n"
    "      const uint32_t i = offset(e, p.src_sizes, p.src_strides, p.src_dims) + si * p.src_sel;\n"
    "      ((W *)p.dst)[o] = ((const W *)p.src)[i];\n"
    "    }\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  (void)smem;\n"
    "#pragma unroll 1\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    const struct gpuos_isel &p = *(const struct gpuos_isel *)t[k].a[2];\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written what this one reads */\n"
    "    /* ifs, not a switch: a jump table would be a constant bank of its own */\n"
    "    if (p.unit == 16)\n"
    "      rows<uint4>(p);\n"
    "    else if (p.unit == 8)\n"
    "      rows<unsigned long long>(p);\n"
    "    else if (p.unit == 4)\n"
    "      rows<unsigned>(p);\n"
    "    else if (p.unit == 2)\n"
    "      rows<unsigned short>(p);\n"
    "    else\n"
    "      rows<unsigned char>(p);\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

/*
 * softmax and log_softmax over rows of up to 2^L2E elements (catalog.h), as PyTorch's
 * softmax_warp_forward computes them: a warp of WS lanes takes WB rows, each lane the
 * elements lane + it * WS; the lane's max in that order, then the warp's by a butterfly of
 * shuffles (offsets WS / 2 down to 1), the same for the sum of exp(x - max), then x - max -
 * log(sum) or exp(x - max) / sum. A worker warp runs 32 / WS of PyTorch's warps side by side,
 * as a block of PyTorch's does (shuffles of width WS stay inside each), so every row meets
 * the same operations in the same order.
 */
static const char softmax_src[] =
    "typedef float O; /* acc_t */\n"
    "#define NEG_INF __uint_as_float(0xff800000u)\n"
    "#define QNAN __uint_as_float(0x7fc00000u) /* numeric_limits<float>::quiet_NaN() */\n"
    "#define NP2 (1 << L2E)\n"
    "#define WS (NP2 < 32 ? NP2 : 32)\n"
    "#define WI (NP2 / WS)\n"
    "#define WB (NP2 <= 128 ? 2 : 1)\n"
    "static __device__ __forceinline__ void warp_rows(OUT_T *dst, const IN_T *src, int batch,\n"
    "                                                 int count, int first, int lane)\n"
    "{\n"
    "  int local_batches = batch - first;\n"
    "  if (local_batches > WB)\n"
    "    local_batches = WB;\n"
    "  const int off = first * count + lane;\n"
    "  src += off;\n"
    "  dst += off;\n"
    "  O e[WB][WI];\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < WB; ++i) {\n"
    "    const int n = i >= local_batches ? 0 : count;\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < WI; ++it)\n"
    "      e[i][it] = lane + it * WS < n ? IN_LD(src[i * count + it * WS]) : NEG_INF;\n"
    "  }\n"
    "  O mx[WB], sum[WB];\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < WB; ++i) {\n"
    "    mx[i] = e[i][0];\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < WI; ++it)\n"
    "      mx[i] = mx[i] > e[i][it] ? mx[i] : e[i][it];\n"
    "  }\n"
    "#pragma unroll\n"
    "  for (int o = WS / 2; o > 0; o /= 2)\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < WB; ++i) {\n"
    "      const O b = __shfl_xor_sync(0xffffffffu, mx[i], o, WS);\n"
    "      mx[i] = mx[i] < b ? b : mx[i];\n"
    "    }\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < WB; ++i) {\n"
    "    sum[i] = 0;\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < WI; ++it) {\n"
    "#if IS_LOG\n"
    "      sum[i] += expf(e[i][it] - mx[i]);\n"
    "#else\n"
    "      e[i][it] = expf(e[i][it] - mx[i]);\n"
    "      sum[i] += e[i][it];\n"
    "#endif\n"
    "    }\n"
    "  }\n"
    "#pragma unroll\n"
    "  for (int o = WS / 2; o > 0; o /= 2)\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < WB; ++i)\n"
    "      sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], o, WS);\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < WB; ++i) {\n"
    "    if (i >= local_batches)\n"
    "      break;\n"
    "#if IS_LOG\n"
    "    sum[i] = logf(sum[i]);\n"
    "#endif\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < WI; ++it) {\n"
    "      if (lane + it * WS >= count)\n"
    "        break;\n"
    "#if IS_LOG\n"
    "      dst[i * count + it * WS] = OUT_ST(e[i][it] - mx[i] - sum[i]);\n"
    "#else\n"
    "      dst[i * count + it * WS] = OUT_ST(sum[i] == 0 ? QNAN : e[i][it] / sum[i]);\n"
    "#endif\n"
    "    }\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  /* PyTorch's warps (WB rows each), 32 / WS of them a worker warp */\n"
    "  const unsigned me = gpuos_tid(), per = 32 / WS, hw = me / 32, nhw = gpuos_nthreads() / 32;\n"
    "  const int seg = (int)((me % 32) / WS), lane = (int)(me % WS);\n"
    "  (void)smem;\n"
    "#pragma unroll 1\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    OUT_T *dst = (OUT_T *)t[k].a[0];\n"
    "    const IN_T *src = (const IN_T *)t[k].a[1];\n"
    "    const int batch = (int)t[k].a[2], count = (int)t[k].a[3];\n"
    "    const unsigned warps = ((unsigned)batch + WB - 1) / WB;\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written what this one reads */\n"
    "    /* the whole worker warp goes round together: the shuffles need every lane */\n"
    "#pragma unroll 1\n"
    "    for (unsigned base = hw * per; base < warps; base += nhw * per)\n"
    "      warp_rows(dst, src, batch, count, (int)(base + (unsigned)seg) * WB, lane);\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

/*
 * Their gradients, as softmax_warp_backward computes them: the lanes' sums of grad in the
 * elements' order from 0, the warp's butterfly, then grad - exp(output) * sum (log_softmax)
 * or grad - output * sum, written as the kernel writes it (nvcc and NVRTC contract it alike;
 * the GPU test compares every element). The kernel holds output from the start; the operator
 * reads each element where it uses it (a lane reads and writes only its own elements, so
 * even a gradient written over output reads what the kernel read).
 */
static const char softmax_bwd_src[] =
    "typedef float O; /* acc_t */\n"
    "#define NP2 (1 << L2E)\n"
    "#define WS (NP2 < 32 ? NP2 : 32)\n"
    "#define WI (NP2 / WS)\n"
    "#define WB (NP2 <= 128 ? 2 : 1)\n"
    "static __device__ __forceinline__ void warp_rows(OUT_T *gi, const IN_T *grad,\n"
    "                                                 const IN_T *output, int batch, int count,\n"
    "                                                 int first, int lane)\n"
    "{\n"
    "  int local_batches = batch - first;\n"
    "  if (local_batches > WB)\n"
    "    local_batches = WB;\n"
    "  const int off = first * count + lane;\n"
    "  grad += off;\n"
    "  output += off;\n"
    "  gi += off;\n"
    "  O g[WB][WI], sum[WB];\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < WB; ++i) {\n"
    "    const int n = i >= local_batches ? 0 : count;\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < WI; ++it)\n"
    "      g[i][it] = lane + it * WS < n ? IN_LD(grad[i * count + it * WS]) : (O)0;\n"
    "  }\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < WB; ++i) {\n"
    "    sum[i] = 0;\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < WI; ++it)\n"
    "      sum[i] += g[i][it];\n"
    "  }\n"
    "#pragma unroll\n"
    "  for (int s = WS / 2; s > 0; s /= 2)\n"
    "#pragma unroll\n"
    "    for (int i = 0; i < WB; ++i)\n"
    "      sum[i] += __shfl_xor_sync(0xffffffffu, sum[i], s, WS);\n"
    "#pragma unroll\n"
    "  for (int i = 0; i < WB; ++i) {\n"
    "    if (i >= local_batches)\n"
    "      break;\n"
    "#pragma unroll\n"
    "    for (int it = 0; it < WI; ++it) {\n"
    "      if (lane + it * WS >= count)\n"
    "        continue;\n"
    "      /* read here, not held from the start: the same value, fewer registers */\n"
    "      const O o = IN_LD(output[i * count + it * WS]);\n"
    "#if IS_LOG\n"
    "      gi[i * count + it * WS] = OUT_ST((g[i][it] - expf(o) * sum[i]));\n"
    "#else\n"
    "      gi[i * count + it * WS] = OUT_ST((g[i][it] - o * sum[i]));\n"
    "#endif\n"
    "    }\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  const unsigned me = gpuos_tid(), per = 32 / WS, hw = me / 32, nhw = gpuos_nthreads() / 32;\n"
    "  const int seg = (int)((me % 32) / WS), lane = (int)(me % WS);\n"
    "  (void)smem;\n"
    "#pragma unroll 1\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    OUT_T *gi = (OUT_T *)t[k].a[0];\n"
    "    const IN_T *grad = (const IN_T *)t[k].a[1], *output = (const IN_T *)t[k].a[4];\n"
    "    const int batch = (int)t[k].a[2], count = (int)t[k].a[3];\n"
    "    const unsigned warps = ((unsigned)batch + WB - 1) / WB;\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written what this one reads */\n"
    "#pragma unroll 1\n"
    "    for (unsigned base = hw * per; base < warps; base += nhw * per)\n"
    "      warp_rows(gi, grad, output, batch, count, (int)(base + (unsigned)seg) * WB, lane);\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

static int softmax_source(const struct gpuos_cat_match *m, char *buf, size_t len)
{
	const char *it, *ild, *ot, *ost, *dummy;
	int n;

	if (m->layout != GPUOS_CAT_SOFTMAX || m->acc != GPUOS_DT_F32 ||
	    !(GPUOS_DT_FLOATS & GPUOS_DT_BIT(m->dtype)) ||
	    !(GPUOS_DT_FLOATS & GPUOS_DT_BIT(m->out)))
		return -EINVAL;
	conv(m->dtype, &it, &ild, &dummy);
	conv(m->out, &ot, &dummy, &ost);
	n = snprintf(buf, len,
		     "#define L2E %u\n#define IS_LOG %d\n#define IN_T %s\n#define IN_LD %s\n"
		     "#define OUT_T %s\n#define OUT_ST %s\n%s%s",
		     m->l2e, m->log, it, ild, ot, ost, prelude,
		     m->backward ? softmax_bwd_src : softmax_src);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

/*
 * torch.arange (catalog.h): element i is start + step * i in the accumulator type, as
 * RangeFactories.cu's lambda computes it, then converted to the element type: wrapping
 * 64-bit integers, or one fused multiply-add (nvcc contracts the lambda's product and sum;
 * the GPU test compares every element type bit for bit with PyTorch's kernel).
 */
static const char arange_src[] =
    "typedef T_STORE T;\n"
    "typedef float O; /* STORE's (O) for float itself */\n"
    "static __device__ __forceinline__ T val(uint64_t s, uint64_t d, uint64_t i)\n"
    "{\n"
    "#if ACC_INT\n"
    "  return (T)(long long)(s + d * i);\n"
    "#elif ACC_DOUBLE\n"
    "  return __fma_rn(__longlong_as_double((long long)d), (double)i,\n"
    "                  __longlong_as_double((long long)s));\n"
    "#else\n"
    "  return STORE(__fmaf_rn(__uint_as_float((unsigned)d), (float)i,\n"
    "                        __uint_as_float((unsigned)s)));\n"
    "#endif\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  const unsigned me = gpuos_tid(), all = gpuos_nthreads();\n"
    "  (void)smem;\n"
    "#pragma unroll 1\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    T *out = (T *)t[k].a[0];\n"
    "    const uint64_t n = t[k].a[1], s = t[k].a[2], d = t[k].a[3];\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written these elements */\n"
    "#pragma unroll 1\n"
    "    for (uint64_t i = me; i < n; i += all)\n"
    "      out[i] = val(s, d, i);\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

static int arange_source(const struct gpuos_cat_match *m, char *buf, size_t len)
{
	const char *ctype, *dummy, *st;
	int n;

	if (!(GPUOS_CAT_ARANGE_DTYPES & GPUOS_DT_BIT(m->dtype)))
		return -EINVAL;
	conv(m->dtype, &ctype, &dummy, &st);
	n = snprintf(buf, len,
		     "#define T_STORE %s\n#define ACC_INT %d\n#define ACC_DOUBLE %d\n"
		     "#define STORE %s\n%s%s",
		     ctype, m->acc == GPUOS_DT_I64, m->acc == GPUOS_DT_F64, st, prelude, arange_src);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int gpuos_cat_source(const struct gpuos_cat_match *m, char *buf, size_t len)
{
	const struct gpuos_cat_entry *e = m->e;
	const char *it[3], *il[3], *ot, *ost, *dummy, *expr, *sct, *scl, *scraw, *opm;
	int odt, n, di = dt_index(m->dtype);
	bool raw;

	if (m->r)
		return red_source(m, buf, len);
	if (m->layout == GPUOS_CAT_ARANGE)
		return arange_source(m, buf, len);
	if (m->layout == GPUOS_CAT_SOFTMAX)
		return softmax_source(m, buf, len);
	if (m->layout == GPUOS_CAT_INDEX_SELECT) {
		n = snprintf(buf, len, "%s", isel_src);
		return n < 0 || (size_t)n >= len ? -ENOSPC : n;
	}
	if (m->layout == GPUOS_CAT_LAYER_NORM || m->layout == GPUOS_CAT_CONCAT) {
		n = snprintf(buf, len, "%s", m->layout == GPUOS_CAT_CONCAT ? concat_src : ln_src);
		return n < 0 || (size_t)n >= len ? -ENOSPC : n;
	}
	odt = e->out_dtype >= 0 ? e->out_dtype : m->dtype;
	expr = e->expr;
	raw = expr[0] == RAW[0];
	if (raw)
		expr++;
	if (di < 0)
		return -EINVAL;
	opm = dtypes[di].opm;
	for (unsigned k = 0; k < 3; k++) {
		int dt = k == 0 && e->in0_dtype >= 0 ? e->in0_dtype
			 : k == 1 && e->in1_bool     ? GPUOS_DT_BOOL
						     : m->dtype;
		conv(dt, &it[k], &il[k], &dummy);
	}
	conv(odt, &ot, &dummy, &ost);
	switch (e->scalar_kind) {
	case GPUOS_SC_ELEM: /* as stored: Half bits, or the type itself */
	case GPUOS_SC_OP_ELEM: /* the first is the op, read from sc0 */
		conv(m->dtype, &sct, &scl, &dummy);
		scraw = scalar_raw(m->dtype);
		break;
	case GPUOS_SC_INT:
		sct = "int", scl = "(O)", scraw = "((int)(x))";
		break;
	case GPUOS_SC_CLAMP: /* the expression reads the words sc0 and rs1 itself */
		sct = "uint64_t", scl = "(O)", scraw = "(x)";
		break;
	default: /* opmath: float for the 16-bit floats */
		sct = opm, scl = "(O)";
		scraw = scalar_raw(!strcmp(opm, "float") ? GPUOS_DT_F32 : m->dtype);
		break;
	}
	n = snprintf(buf, len,
		     "%s"
		     "#define STRIDED %d\n#define CAST %d\n#define NIN %u\n#define NSC %u\n"
		     "#define PHEAD %zuu\n#define PDIM %zuu\n#define OPM %s\n"
		     "#define OUT_T %s\n#define OUT_ST %s\n"
		     "#define I0_T %s\n#define I0_LD %s\n#define I1_T %s\n#define I1_LD %s\n"
		     "#define I2_T %s\n#define I2_LD %s\n"
		     "#define SC_T %s\n#define SC_RAW(x) %s\n#define SC_LD %s\n"
		     "#define RET_RAW %d\n#define EXPR %s\n"
		     "%s",
		     prelude, m->layout == GPUOS_CAT_STRIDED, m->layout == GPUOS_CAT_CAST, e->nin,
		     e->nscalars,
		     offsetof(struct gpuos_cat_strided, dim), sizeof(struct gpuos_cat_dim), opm, ot, ost, it[0],
		     il[0], it[1], il[1], it[2], il[2], sct, scraw, scl, raw, expr, body);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

/*
 * The copy operator: a cudaMemcpyAsync from device to device memory (interpose/copies.c),
 * a0 destination, a1 source, a4 bytes. Bytes are bytes: the result is the copy engine's.
 * 16-byte words where both ends are 16-byte aligned, 4-byte words where they are 4-byte
 * aligned, else bytes; each thread loads four words before it stores them, so that a copy
 * costs about one memory round trip per 4 * threads words.
 */
static const char copy_src[] =
    "#include \"gpuos_task.h\"\n"
    "template <typename W> static __device__ __forceinline__ void copy_words(W *d, const W *s,\n"
    "                                                                      unsigned n)\n"
    "{\n"
    "  const unsigned me = gpuos_tid(), all = gpuos_nthreads();\n"
    "  unsigned i = me;\n"
    "#pragma unroll 1\n"
    "  for (; i + 3 * all < n; i += 4 * all) {\n"
    "    W w[4];\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < 4; j++)\n"
    "      w[j] = s[i + j * all];\n"
    "#pragma unroll\n"
    "    for (int j = 0; j < 4; j++)\n"
    "      d[i + j * all] = w[j];\n"
    "  }\n"
    "#pragma unroll 1\n"
    "  for (; i < n; i += all)\n"
    "    d[i] = s[i];\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_cat_op)\n"
    "{\n"
    "  (void)smem;\n"
    "#pragma unroll 1\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    const struct gpuos_task *tk = &t[k];\n"
    "    unsigned char *d = (unsigned char *)tk->a[0];\n"
    "    const unsigned char *s = (const unsigned char *)tk->a[1];\n"
    "    const unsigned n = (unsigned)tk->a[4], al = (unsigned)(tk->a[0] | tk->a[1]);\n"
    "    unsigned done = 0;\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the task before may have written what this one reads */\n"
    "    if (al % 16 == 0)\n"
    "      copy_words((uint4 *)d, (const uint4 *)s, n / 16), done = n / 16 * 16;\n"
    "    else if (al % 4 == 0)\n"
    "      copy_words((unsigned *)d, (const unsigned *)s, n / 4), done = n / 4 * 4;\n"
    "    copy_words(d + done, s + done, n - done);\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_cat_op;\n";

int gpuos_cat_copy_source(char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s", copy_src);

	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}
