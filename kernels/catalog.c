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
	{"add",          "CUDAFunctor_add",            0, 2, F, -1, -1, 1, GPUOS_SC_OPMATH, false, false, "fmaf(s0, b, a)"},
	{"add_scalar",   "CUDAFunctorOnSelf_add",      0, 1, F, -1, -1, 2, GPUOS_SC_OPMATH, false, false, "fmaf(s1, s0, a)"},
	{"rsub_scalar",  "CUDAFunctorOnOther_add",     0, 1, F, -1, -1, 2, GPUOS_SC_OPMATH, false, false, "fmaf(s1, a, s0)"},
	{"mul",          "BinaryFunctor:MulFunctor",   0, 2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a * b"},
	{"mul_scalar_a", "AUnaryFunctor:MulFunctor",   0, 1, F, -1, -1, 1, GPUOS_SC_OPMATH, true,  false, "s0 * a"},
	{"mul_scalar_b", "BUnaryFunctor:MulFunctor",   0, 1, F, -1, -1, 1, GPUOS_SC_OPMATH, true,  false, "a * s0"},
	{"div",          "BinaryFunctor:DivFunctor",   0, 2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a / b"},
	/* DivFunctor<T> takes T: a Half scalar is a Half */
	{"div_scalar_a", "AUnaryFunctor:DivFunctor",   0, 1, F, -1, -1, 1, GPUOS_SC_ELEM,   true,  false, "s0 / a"},
	{"reciprocal",   "reciprocal_kernel_cuda",     0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "1.0f / a"},
	{"neg",          "neg_kernel_cuda",            0, 1, GPUOS_DT_BIT(GPUOS_DT_F32) | GPUOS_DT_BIT(GPUOS_DT_BF16), -1, -1, 0, GPUOS_SC_OPMATH, false, false, "-a"},
	{"neg_half",     "neg_kernel_cuda",            0, 1, GPUOS_DT_BIT(GPUOS_DT_F16), -1, -1, 0, GPUOS_SC_OPMATH, false, false, RAW "hneg(ra)"},
	{"sigmoid",      "sigmoid_kernel_cuda",        0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "1.0f / (1.0f + expf(-a))"},
	{"tanh",         "tanh_kernel_cuda",           0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "tanhf(a)"},
	{"exp",          "exp_kernel_cuda",            0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "expf(a)"},
	{"log",          "log_kernel_cuda",            0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "logf(a)"},
	{"sqrt",         "sqrt_kernel_cuda",           0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "sqrtf(a)"},
	{"rsqrt",        "rsqrt_kernel_cuda",          0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "rsqrtf(a)"},
	{"silu",         "silu_kernel",                0, 1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a / (1.0f + expf(-a))"},
	{"gelu",         "GeluCUDAKernelImpl",         2,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "(a * 0.5f) * (1.0f + erff(a * 0.70710678118654752440f))"},
	{"gelu_tanh",    "GeluCUDAKernelImpl",         1,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "(0.5f * a) * (1.0f + tanhf(0.79788456080286535588f * fmaf(0.044715f, (a * a) * a, a)))"},
	/* backward of both (inputs dy, x): PyTorch's statements as written, so that NVRTC makes
	 * the contractions nvcc made; 0x1.988454p-2f = (float)(M_2_SQRTPI * M_SQRT1_2 * 0.5) */
	{"gelu_bwd",     "GeluBackwardCUDAKernelImpl", 2,
	                                                     2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false,
	 "([&] { const O cdf = 0.5f * (1.0f + erff(b * 0.70710678118654752440f));"
	 " const O pdf = expf(-0.5f * b * b) * 0x1.988454p-2f; return a * (cdf + b * pdf); }())"},
	{"gelu_tanh_bwd", "GeluBackwardCUDAKernelImpl", 1,
	                                                     2, F, -1, -1, 0, GPUOS_SC_OPMATH, false, false,
	 "([&] { const O kB = 0.79788456080286535588f, kK = 0.044715f; const O x_sq = b * b;"
	 " const O x_cube = x_sq * b; const O inner = kB * (b + kK * x_cube); const O t = tanhf(inner);"
	 " const O left = 0.5f * b; const O right = 1.0f + t; const O ld = 0.5f * right;"
	 " const O td = 1.0f - t * t; const O id = kB * (1.0f + 3.0f * kK * x_sq);"
	 " const O rd = left * td * id; return a * (ld + rd); }())"},
	{"fill",         "FillFunctor",                0, 0, F | I | B, -1, -1, 1, GPUOS_SC_ELEM,   false, false, RAW "rs0"},
	/* its Half and BFloat16 kernels are of the dynamic-cast kind: not yet */
	{"threshold",    "threshold_kernel_impl",      0, 2, GPUOS_DT_BIT(GPUOS_DT_F32), -1, -1, 2, GPUOS_SC_ELEM,   false, true,  RAW "a <= s0 ? rs1 : rb"},
	{"addcmul",      "addcmul_cuda_kernel",        0, 3, F, -1, -1, 1, GPUOS_SC_OPMATH, false, true,  "s0 == 1.0f ? fmaf(b, c, a) : fmaf(s0, b * c, a)"},
	{"addcdiv",      "addcdiv_cuda_kernel",        0, 3, F, -1, -1, 1, GPUOS_SC_OPMATH, false, true,  "s0 == 1.0f ? a + b / c : fmaf(s0, b / c, a)"},
	{"lerp_scalar",  "lerp_scalar_kernel",         0, 2, F, -1, -1, 1, GPUOS_SC_OPMATH, false, true,  "fabsf(s0) < 0.5f ? fmaf(s0, b - a, a) : fmaf(-(b - a), 1.0f - s0, b)"},
	{"lerp_tensor",  "lerp_tensor_kernel",         0, 3, F, -1, -1, 0, GPUOS_SC_OPMATH, false, true,  "fabsf(c) < 0.5f ? fmaf(c, b - a, a) : fmaf(-(b - a), 1.0f - c, b)"},
	{"where",        "where_kernel_impl",          0, 3, F | I | B, GPUOS_DT_BOOL, -1, 0, GPUOS_SC_OPMATH, false, true, RAW "ra ? rb : rc"},
	/* integers and bools: C's arithmetic in the type itself (opmath_type<T> is T) */
	{"add_int",      "CUDAFunctor_add",            0, 2, I, -1, -1, 1, GPUOS_SC_OPMATH, false, false, "a + s0 * b"},
	{"add_scalar_int", "CUDAFunctorOnSelf_add",    0, 1, I, -1, -1, 2, GPUOS_SC_OPMATH, false, false, "a + s1 * s0"},
	{"rsub_scalar_int", "CUDAFunctorOnOther_add",  0, 1, I, -1, -1, 2, GPUOS_SC_OPMATH, false, false, "s0 + s1 * a"},
	{"mul_int",      "BinaryFunctor:MulFunctor",   0, 2, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a * b"},
	{"mul_scalar_int", "AUnaryFunctor:MulFunctor", 0, 1, I, -1, -1, 1, GPUOS_SC_OPMATH, true,  false, "s0 * a"},
	{"mul_bool",     "BinaryFunctor:MulFunctor",   0, 2, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a && b"},
	{"and",          "BinaryFunctor:BitwiseAndFunctor", 0, 2, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a & b"},
	{"and_bool",     "BinaryFunctor:BitwiseAndFunctor", 0, 2, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a && b"},
	{"or",           "BinaryFunctor:BitwiseOrFunctor", 0, 2, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a | b"},
	{"or_bool",      "BinaryFunctor:BitwiseOrFunctor", 0, 2, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a || b"},
	{"xor",          "BinaryFunctor:BitwiseXorFunctor", 0, 2, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a ^ b"},
	{"xor_bool",     "BinaryFunctor:BitwiseXorFunctor", 0, 2, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "a != b"},
	{"not",          "bitwise_not_kernel_cuda",    0, 1, I, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "~a"},
	{"not_bool",     "bitwise_not_kernel_cuda",    0, 1, B, -1, -1, 0, GPUOS_SC_OPMATH, false, false, "!a"},
	/* comparisons, in T (Half through float): op_ is GE, GT, LE, LT = 0..3; EQ, NE = 0, 1 */
	{"compare",      "CompareFunctor",             0, 2, F | I, -1, GPUOS_DT_BOOL, 1, GPUOS_SC_INT, false, false,
	 RAW "(bool)(rs0 == 0 ? a >= b : rs0 == 1 ? a > b : rs0 == 2 ? a <= b : a < b)"},
	{"compare_eq",   "BinaryFunctor:CompareEqFunctor", 0, 2, F | I | B, -1, GPUOS_DT_BOOL, 1, GPUOS_SC_INT, false, false,
	 RAW "(bool)(rs0 == 0 ? a == b : a != b)"},
	/* tensor <op> CPU scalar: {CompareFunctor (int op_); T rhs} captured; lhs op rhs */
	{"compare_scalar", "compare_scalar_kernel",    0, 1, F | I, -1, GPUOS_DT_BOOL, 2, GPUOS_SC_OP_ELEM, false, true,
	 RAW "(bool)((int)sc0 == 0 ? a >= s1 : (int)sc0 == 1 ? a > s1 : (int)sc0 == 2 ? a <= s1 : a < s1)"},
	/* x ** scalar: exponents 2, 3, -2 and the rest are four lambdas of one function, in
	 * that order; 3 and -2 round to T after each step as PyTorch's T arithmetic does */
	{"pow_square",   "pow_tensor_scalar_kernel_impl", 1,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, true, "a * a"},
	{"pow_cube",     "pow_tensor_scalar_kernel_impl", 2,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, true, "I0_LD(OUT_ST(a * a)) * a"},
	{"pow_m2",       "pow_tensor_scalar_kernel_impl", 3,
	                                                     1, F, -1, -1, 0, GPUOS_SC_OPMATH, false, true, "(float)(1.0 / (double)I0_LD(OUT_ST(a * a)))"},
	{"pow_scalar",   "pow_tensor_scalar_kernel_impl", 4,
	                                                     1, F, -1, -1, 1, GPUOS_SC_ELEM, false, true, "powf(a, s0)"},
	{"to_half",      "float16_copy_kernel_cuda",   0, 1, GPUOS_DT_BIT(GPUOS_DT_F32), -1, GPUOS_DT_F16, 0, GPUOS_SC_OPMATH, false, false, "a"},
	{"to_bfloat16",  "bfloat16_copy_kernel_cuda",  0, 1, GPUOS_DT_BIT(GPUOS_DT_F32), -1, GPUOS_DT_BF16, 0, GPUOS_SC_OPMATH, false, false, "a"},
};
/* clang-format on */
const unsigned gpuos_cat_nentries = sizeof(gpuos_cat_entries) / sizeof(gpuos_cat_entries[0]);

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
	return gpuos_cat_dtype_of(s->dtype);
}

static unsigned scalar_size(const struct gpuos_cat_entry *e, int dtype)
{
	int i = dt_index(dtype);

	if (e->scalar_kind == GPUOS_SC_INT)
		return 4;
	if (e->scalar_kind == GPUOS_SC_ELEM || e->scalar_kind == GPUOS_SC_OP_ELEM)
		return i < 0 ? 0 : dtypes[i].size;
	/* opmath: float for the 2-byte floats, else the type itself */
	return dtype == GPUOS_DT_F16 || dtype == GPUOS_DT_BF16 ? 4 : i < 0 ? 0 : dtypes[i].size;
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

int gpuos_cat_match(const struct gpuos_sig *s, struct gpuos_cat_match *m)
{
	memset(m, 0, sizeof(*m));
	if (s->family == GPUOS_SIG_VECTORIZED || s->family == GPUOS_SIG_UNROLLED)
		m->layout = GPUOS_CAT_CONTIG;
	else if (s->family == GPUOS_SIG_ELEMENTWISE && !s->dyncast)
		m->layout = GPUOS_CAT_STRIDED;
	else
		return -ENOENT;
	/* casts on load or store need their own operators: not yet */
	if (s->family == GPUOS_SIG_UNROLLED &&
	    (!strstr(s->loader, "LoadWithoutCast") || !strstr(s->storer, "StoreWithoutCast")))
		return -ENOENT;
	for (unsigned i = 0; i < gpuos_cat_nentries; i++) {
		const struct gpuos_cat_entry *e = &gpuos_cat_entries[i];
		int dt;
		if (strcmp(s->op, e->op) || (e->lam && s->lam != e->lam))
			continue;
		dt = elem_dtype(e, s);
		if (dt < 0 || !(e->dtypes & GPUOS_DT_BIT(dt)))
			continue; /* another entry may take this type */
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

	if (gpuos_cat_match(s, &m))
		return -ENOENT;
	*size = layout(m.e, m.dtype, off, ssize);
	*nscalars = m.e->nscalars;
	for (unsigned k = m.e->nscalars; k < 2; k++)
		ssize[k] = 0;
	return 0;
}

void gpuos_cat_key(const struct gpuos_cat_match *m, char *buf, size_t len)
{
	snprintf(buf, len, "%s.%s.%s", m->e->name, gpuos_cat_dtype_name(m->dtype),
		 m->layout == GPUOS_CAT_STRIDED ? "strided" : "contig");
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
    "#define LDI(k, T, p, i) ((k) < NIN ? ((const T *)(p))[i] : (T)0)\n"
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
    "    uint4 *win = (uint4 *)smem;\n"
    "    const uint4 *src = (const uint4 *)tk->a[2];\n"
    "    for (unsigned i = me; i < (PBLOCK + 15) / 16; i += all)\n"
    "      win[i] = src[i];\n"
    "    gpuos_sync();\n"
    "    const uint64_t *ptr = (const uint64_t *)win;\n"
    "    const unsigned *sizes = (const unsigned *)(ptr + 4);\n"
    "    const unsigned (*strides)[4] = (const unsigned (*)[4])(sizes + MAXDIMS);\n"
    "    for (unsigned i = me; i < n; i += all) {\n"
    "      unsigned off[4] = {0, 0, 0, 0}, lin = i;\n"
    "      for (unsigned d = 0; d < dims; d++) {\n"
    "        const unsigned q = lin / sizes[d], r = lin - q * sizes[d];\n"
    "        lin = q;\n"
    "        for (int j = 0; j <= NIN; j++)\n"
    "          off[j] += r * strides[d][j];\n"
    "      }\n"
    "      *(OUT_T *)(ptr[0] + off[0]) =\n"
    "          elem(NIN > 0 ? *(const I0_T *)(ptr[1] + off[1]) : (I0_T)0,\n"
    "               NIN > 1 ? *(const I1_T *)(ptr[2] + off[2]) : (I1_T)0,\n"
    "               NIN > 2 ? *(const I2_T *)(ptr[3] + off[3]) : (I2_T)0, rs0, rs1, s0, s1, sc0);\n"
    "    }\n"
    "#else\n"
    "    OUT_T *out = (OUT_T *)tk->a[0];\n"
    "    const unsigned n = (unsigned)tk->a[4];\n"
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
    "        out[i + j * all] = elem(x0[j], x1[j], x2[j], rs0, rs1, s0, s1, sc0);\n"
    "    }\n"
    "    for (; i < n; i += all)\n"
    "      out[i] = elem(LDI(0, I0_T, tk->a[1], i), LDI(1, I1_T, tk->a[2], i),\n"
    "                    LDI(2, I2_T, tk->a[3], i), rs0, rs1, s0, s1, sc0);\n"
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

int gpuos_cat_source(const struct gpuos_cat_match *m, char *buf, size_t len)
{
	const struct gpuos_cat_entry *e = m->e;
	const char *it[3], *il[3], *ot, *ost, *dummy, *expr = e->expr, *sct, *scl, *scraw, *opm;
	int odt = e->out_dtype >= 0 ? e->out_dtype : m->dtype, n, di = dt_index(m->dtype);
	bool raw = expr[0] == RAW[0];

	if (raw)
		expr++;
	if (di < 0)
		return -EINVAL;
	opm = dtypes[di].opm;
	for (unsigned k = 0; k < 3; k++) {
		int dt = k == 0 && e->in0_dtype >= 0 ? e->in0_dtype : m->dtype;
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
	default: /* opmath: float for the 16-bit floats */
		sct = opm, scl = "(O)";
		scraw = scalar_raw(!strcmp(opm, "float") ? GPUOS_DT_F32 : m->dtype);
		break;
	}
	n = snprintf(buf, len,
		     "%s"
		     "#define STRIDED %d\n#define NIN %u\n#define NSC %u\n#define MAXDIMS %u\n"
		     "#define PBLOCK %zuu\n#define OPM %s\n"
		     "#define OUT_T %s\n#define OUT_ST %s\n"
		     "#define I0_T %s\n#define I0_LD %s\n#define I1_T %s\n#define I1_LD %s\n"
		     "#define I2_T %s\n#define I2_LD %s\n"
		     "#define SC_T %s\n#define SC_RAW(x) %s\n#define SC_LD %s\n"
		     "#define RET_RAW %d\n#define EXPR %s\n"
		     "%s",
		     prelude, m->layout == GPUOS_CAT_STRIDED, e->nin, e->nscalars,
		     GPUOS_OC_MAX_DIMS, sizeof(struct gpuos_cat_strided), opm, ot, ost, it[0],
		     il[0], it[1], il[1], it[2], il[2], sct, scraw, scl, raw, expr, body);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}
