// SPDX-License-Identifier: MIT
/*
 * kernels/catalog.c: the recorded PyTorch 2.11 kernels (tests/data) match the entries their
 * ops say, with the element type and layout; what the catalog does not compute (
 * casts, captured clamp limits, pow's lambdas) matches nothing; the recorded reductions give
 * their operator's parameter block; the recorded arguments decode
 * to the functor's scalars as the operator reads them; and every operator the catalog can
 * generate compiles and links with NVRTC and nvJitLink for sm_80 and sm_90 (skipped, 77,
 * without those libraries).
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/catalog.h"
#include "kernels/jit.h"
#include "kernels/sig.h"
#include "kernels/task.h"
#include "ptx_lift/ptx_lift.h"

#include "tests/records.h"

/* recorded op -> catalog operator key (NULL: must not match) */
static const struct {
	const char *op, *key;
} want[] = {
    {"add", "add.float32.contig"},
    {"add_alpha", "add.float32.contig"},
    {"add_s", "add_scalar.float32.contig"},
    {"sub_s", "add_scalar.float32.contig"},
    {"rsub_s", "rsub_scalar.float32.contig"},
    {"mul", "mul.float32.contig"},
    {"mul_s", "mul_scalar_a.float32.contig"},
    {"mul_0dim_cuda", "mul.float32.strided"},
    {"mul_bcast", "mul.float32.strided"},
    {"mul_strided", "mul_scalar_a.float32.strided"},
    {"div", "div.float32.contig"},
    {"div_s", "mul_scalar_b.float32.contig"},
    {"neg", "neg.float32.contig"},
    {"relu", "clamp_scalar.float32.contig"},
    {"threshold", "threshold.float32.contig"},
    {"sigmoid", "sigmoid.float32.contig"},
    {"tanh", "tanh.float32.contig"},
    {"silu", "silu.float32.contig"},
    {"exp", "exp.float32.contig"},
    {"sqrt", "sqrt.float32.contig"},
    {"rsqrt", "rsqrt.float32.contig"},
    {"pow2", "pow_square.float32.contig"},
    {"pow_t", NULL},
    {"fill", "fill.float32.contig"},
    {"zero", "fill.float32.contig"},
    {"to_half", "to_half.float32.contig"},
    {"mixed_add", "add.float32.cast"}, /* float + half: the launch refuses the half (cast) */
    {"addcmul", "addcmul.float32.contig"},
    {"where", "where.float32.contig"},
    {"add_half", "add.float16.contig"},
    {"mul_bf16", "mul.bfloat16.contig"},
    {"silu_bf16", "silu.bfloat16.contig"},
    {"gelu", "gelu.float32.contig"},
    {"gelu_tanh", "gelu_tanh.float32.contig"},
    {"sum", "sum.float32.float32.float32.reduce"},
    {"sum_dim", "sum.float32.float32.float32.reduce"},
    {"mean", "mean.float32.float32.float32.reduce"},
    {"amax", "max.float32.float32.float32.reduce"},
    {"argmax", "argmax.float32.float32.int64.reduce"},
    {"softmax", "softmax.float32.float32.8"},
    {"layer_norm", "layer_norm.float32.rows"},
    {"rms_norm", NULL},
};
#define NWANT (sizeof(want) / sizeof(want[0]))

START_TEST(test_recorded_match)
{
	unsigned checked = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_cat_match m;
		char key[64] = "";

		if (!recs[i].op)
			continue;
		for (size_t k = 0; k < NWANT; k++) {
			if (strcmp(want[k].op, recs[i].op))
				continue;
			ck_assert_int_eq(gpuos_sig_parse(recs[i].demangled, &s), 0);
			int rc = gpuos_cat_match(&s, &m);
			if (!rc)
				gpuos_cat_key(&m, key, sizeof(key));
			if (want[k].key)
				ck_assert_msg(!rc && !strcmp(key, want[k].key), "%s: %d %s",
					      recs[i].op, rc, key);
			else
				ck_assert_msg(rc == -ENOENT, "%s matched %s", recs[i].op, key);
			checked++;
		}
	}
	ck_assert_uint_ge(checked, NWANT);
}
END_TEST

/* gpu_kernel_impl's closure (casting every operand) is not _nocast's: never matched, and its
 * arguments never decoded as if it were. */
START_TEST(test_dyncast_refused)
{
	static const char name[] =
	    "void at::native::elementwise_kernel<128, 4, at::native::gpu_kernel_impl<at::native::"
	    "BinaryFunctor<float, float, float, at::native::binary_internal::MulFunctor<float> > "
	    ">(at::TensorIteratorBase&, at::native::BinaryFunctor<float, float, float, "
	    "at::native::binary_internal::MulFunctor<float> > const&)::{lambda(int)#1}>(int, "
	    "at::native::gpu_kernel_impl<at::native::BinaryFunctor<float, float, float, "
	    "at::native::binary_internal::MulFunctor<float> > >(at::TensorIteratorBase&, "
	    "at::native::BinaryFunctor<float, float, float, at::native::binary_internal::"
	    "MulFunctor<float> > const&)::{lambda(int)#1})";
	struct gpuos_sig s;
	struct gpuos_cat_match m;
	struct gpuos_kparam kp[2] = {{0, 0, 4}, {1, 8, 648}};
	static uint8_t closure[648];
	int n = 1024;
	void *args[2] = {&n, closure};
	struct gpuos_oc_args oc;

	ck_assert_int_eq(gpuos_sig_parse(name, &s), 0);
	ck_assert_int_eq(s.family, GPUOS_SIG_ELEMENTWISE);
	ck_assert_int_eq(s.dyncast, 1);
	ck_assert_int_eq(gpuos_cat_match(&s, &m), -ENOENT);
	ck_assert_int_eq(gpuos_sig_decode_elementwise(&s, kp, 2, args, &oc), -ENOTSUP);
}
END_TEST

/*
 * The lambda index tells operators apart that share a function (pow's special exponents,
 * gelu's forms): taken from the functor's first lambda, not from the closure around it, which
 * in a strided kernel is {lambda(int)#1} whatever the exponent.
 */
START_TEST(test_lambda_index)
{
	static const char cube[] =
	    "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl_nocast<a"
	    "t::native::(anonymous namespace)::pow_tensor_scalar_kernel_impl<float, float>(at"
	    "::TensorIteratorBase&, float)::{lambda(float)#2}>(at::TensorIteratorBase&, at::n"
	    "ative::(anonymous namespace)::pow_tensor_scalar_kernel_impl<float, float>(at::Te"
	    "nsorIteratorBase&, float)::{lambda(float)#2} const&)::{lambda(int)#1}>(int, at::"
	    "native::gpu_kernel_impl_nocast<at::native::(anonymous namespace)::pow_tensor_sca"
	    "lar_kernel_impl<float, float>(at::TensorIteratorBase&, float)::{lambda(float)#2}"
	    ">(at::TensorIteratorBase&, at::native::(anonymous namespace)::pow_tensor_scalar_"
	    "kernel_impl<float, float>(at::TensorIteratorBase&, float)::{lambda(float)#2} con"
	    "st&)::{lambda(int)#1})";
	struct gpuos_sig s;
	struct gpuos_cat_match m;
	char key[64];

	ck_assert_int_eq(gpuos_sig_parse(cube, &s), 0);
	ck_assert_int_eq(s.family, GPUOS_SIG_ELEMENTWISE);
	ck_assert_uint_eq(s.lam, 2);
	ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
	gpuos_cat_key(&m, key, sizeof(key));
	ck_assert_str_eq(key, "pow_cube.float32.strided");
	ck_assert_uint_eq(s.fl.size, 8); /* captures nothing: the host pointer */
	for (size_t i = 0; i < NRECS; i++) {
		if (!recs[i].op || (strcmp(recs[i].op, "gelu") && strcmp(recs[i].op, "gelu_tanh")))
			continue;
		ck_assert_int_eq(gpuos_sig_parse(recs[i].demangled, &s), 0);
		ck_assert_uint_eq(s.lam, strcmp(recs[i].op, "gelu") ? 1 : 2);
	}
}
END_TEST

static uint32_t fbits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

/* The scalars' bits as the operator gets them: opmath floats, also for half and bf16. */
START_TEST(test_recorded_scalars)
{
	static const struct {
		const char *op;
		uint32_t b0, b1;
	} sc[] = {
	    {"add_alpha", 0x40000000u, 0},
	    {"sub_s", 0x3fc00000u, 0xbf800000u},
	    {"rsub_s", 0x3fc00000u, 0xbf800000u},
	    {"mul_s", 0x40200000u, 0},
	    {"threshold", 0x3dcccccdu, 0},
	    {"addcmul", 0x3f000000u, 0},
	    {"fill", 0x3f800000u, 0},
	    {"add_half", 0x3f800000u, 0},
	    {"relu", 0, 0}, /* clamp_min(0): ClampLimits::Min, lim0 = lim1 = 0.0f */
	};
	unsigned checked = 0;

	ck_assert_uint_eq(fbits(0.1f), 0x3dcccccdu);
	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_kparam kp[16];
		struct gpuos_ew_args a;
		static uint8_t store[8192];
		void *args[16];

		if (!rec_of(i, GPUOS_SIG_VECTORIZED, &s))
			continue;
		for (size_t k = 0; k < sizeof(sc) / sizeof(sc[0]); k++) {
			if (strcmp(sc[k].op, recs[i].op))
				continue;
			unsigned n = layout(recs[i].params, kp, args, store);
			ck_assert_int_eq(gpuos_sig_decode_vectorized(&s, kp, n, args, &a), 0);
			ck_assert_msg(a.scalar_bits[0] == sc[k].b0 && a.scalar_bits[1] == sc[k].b1,
				      "%s: %08llx %08llx", recs[i].op,
				      (unsigned long long)a.scalar_bits[0],
				      (unsigned long long)a.scalar_bits[1]);
			checked++;
		}
	}
	ck_assert_uint_eq(checked, 9);
}
END_TEST

/*
 * The cast layout's a4 from the recorded mixed launch (float + half, unrolled with casts): the
 * half refuses it; with a bool in its place, float, float, bool above N; an array that does
 * not cast takes the element type.
 */
START_TEST(test_cast_word)
{
	unsigned checked = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_cat_match m;
		struct gpuos_kparam kp[16];
		struct gpuos_ur_args ur;
		static uint8_t store[8192];
		void *args[16];
		uint64_t a4 = 1000;

		if (!rec_of(i, GPUOS_SIG_UNROLLED, &s) || strcmp(recs[i].op, "mixed_add"))
			continue;
		ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
		ck_assert_int_eq(m.layout, GPUOS_CAT_CAST);
		unsigned n = layout(recs[i].params, kp, args, store);
		ck_assert_int_eq(gpuos_sig_decode_unrolled(&s, kp, n, args, &ur), 0);
		ck_assert_int_eq(ur.in_dtype[1], GPUOS_DT_F16);
		ck_assert_int_eq(gpuos_cat_cast_word(&m, &ur, &a4), -ENOTSUP);
		ck_assert_uint_eq(a4, 1000);
		ur.in_dtype[1] = GPUOS_DT_BOOL;
		ck_assert_int_eq(gpuos_cat_cast_word(&m, &ur, &a4), 0);
		ck_assert_uint_eq(a4, 1000 | (uint64_t)GPUOS_DT_F32 << 32 | (uint64_t)GPUOS_DT_F32 << 40 |
					  (uint64_t)GPUOS_DT_BOOL << 48);
		ur.out_dtype = -1;
		ur.in_dtype[0] = GPUOS_DT_I64;
		a4 = 0;
		ck_assert_int_eq(gpuos_cat_cast_word(&m, &ur, &a4), 0);
		ck_assert_uint_eq(a4, (uint64_t)GPUOS_DT_F32 << 32 | (uint64_t)GPUOS_DT_I64 << 40 |
					  (uint64_t)GPUOS_DT_BOOL << 48);
		checked++;
	}
	ck_assert_uint_eq(checked, 1);
}
END_TEST

/* Functor sizes the entries imply, for the types the recorded kernels do not cover. */
START_TEST(test_functor_sizes)
{
	struct gpuos_sig s;
	unsigned size, n, off[2], ss[2];

	memset(&s, 0, sizeof(s));
	s.family = GPUOS_SIG_VECTORIZED;
	s.narrays = 2;
	strcpy(s.op, "FillFunctor");
	strcpy(s.dtype, "c10::Half");
	s.narrays = 1;
	ck_assert_int_eq(gpuos_cat_functor(&s, &size, &n, off, ss), 0);
	ck_assert_uint_eq(size, 2); /* FillFunctor<Half> holds a Half */
	ck_assert_uint_eq(ss[0], 2);
	strcpy(s.op, "AUnaryFunctor:MulFunctor");
	strcpy(s.dtype, "c10::BFloat16");
	s.narrays = 2;
	ck_assert_int_eq(gpuos_cat_functor(&s, &size, &n, off, ss), 0);
	ck_assert_uint_eq(size, 8); /* {MulFunctor; float a} */
	ck_assert_uint_eq(off[0], 4);
	ck_assert_uint_eq(ss[0], 4);
	strcpy(s.op, "AUnaryFunctor:DivFunctor");
	strcpy(s.dtype, "c10::Half");
	s.narrays = 2;
	ck_assert_int_eq(gpuos_cat_functor(&s, &size, &n, off, ss), 0);
	ck_assert_uint_eq(size, 4); /* {DivFunctor<Half>; Half a}: DivFunctor takes T */
	ck_assert_uint_eq(off[0], 2);
	ck_assert_uint_eq(ss[0], 2);
	strcpy(s.op, "threshold_kernel_impl");
	strcpy(s.dtype, "float");
	s.narrays = 3;
	ck_assert_int_eq(gpuos_cat_functor(&s, &size, &n, off, ss), 0);
	ck_assert_uint_eq(size, 16); /* threshold, value, the host pointer */
	ck_assert_uint_eq(off[1], 4);
	/* two scalars travel in a5 and a3: such entries have at most two inputs */
	for (unsigned i = 0; i < gpuos_cat_nentries; i++)
		ck_assert_msg(gpuos_cat_entries[i].nscalars < 2 || gpuos_cat_entries[i].nin <= 2,
			      "%s", gpuos_cat_entries[i].name);
	strcpy(s.dtype, "double"); /* not a catalog type */
	ck_assert_int_eq(gpuos_cat_functor(&s, &size, &n, off, ss), -ENOENT);
}
END_TEST

char *gpuos_demangle(const char *mangled); /* interpose/registry.c */

/*
 * Every entry, in every element type it lists, names kernels that libtorch_cuda 2.11
 * registers (tests/data: its elementwise and reduction kernel names): a misspelt functor or
 * lambda text would match nothing. Vectorized (contiguous) and elementwise (strided) forms.
 */
START_TEST(test_libtorch_coverage)
{
	FILE *f = popen("gzip -dc tests/data/torch211_family_names.gz", "r");
	static char line[65536];
	static unsigned hits[64][32][GPUOS_CAT_LAYOUTS], rhits[16][32];
	unsigned matched = 0, missing = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_uint_le(gpuos_cat_nentries, 64);
	while (fgets(line, sizeof(line), f)) {
		struct gpuos_sig s;
		struct gpuos_cat_match m;
		line[strcspn(line, "\n")] = 0;
		char *dm = gpuos_demangle(line);
		if (dm && !gpuos_sig_parse(dm, &s) && !gpuos_cat_match(&s, &m)) {
			if (m.r)
				rhits[m.r - gpuos_cat_reds][m.acc]++;
			else
				hits[m.e - gpuos_cat_entries][m.dtype][m.layout]++;
			matched++;
		}
		free(dm);
	}
	pclose(f);
	for (unsigned i = 0; i < gpuos_cat_nentries; i++)
		for (int dt = 0; dt < 32; dt++) {
			if (!(gpuos_cat_entries[i].dtypes & GPUOS_DT_BIT(dt)))
				continue;
			for (int lay = 0; lay < GPUOS_CAT_LAYOUTS; lay++)
				if (!hits[i][dt][lay] && lay != GPUOS_CAT_CAST) { /* casts: few */
					fprintf(stderr,
						"check_catalog: no 2.11 kernel for %s %s %s\n",
						gpuos_cat_entries[i].name, gpuos_cat_dtype_name(dt),
						lay ? "strided" : "contig");
					missing += lay == GPUOS_CAT_CONTIG;
				}
		}
	/* reductions: every accumulator type a reduction lists */
	ck_assert_uint_le(gpuos_cat_nreds, 16);
	for (unsigned i = 0; i < gpuos_cat_nreds; i++)
		for (int dt = 0; dt < 32; dt++)
			if ((gpuos_cat_reds[i].dtypes & GPUOS_DT_BIT(dt)) && !rhits[i][dt]) {
				fprintf(stderr, "check_catalog: no 2.11 reduction %s %s\n",
					gpuos_cat_reds[i].name, gpuos_cat_dtype_name(dt));
				missing++;
			}
	fprintf(stderr, "check_catalog: %u libtorch 2.11 kernels matched\n", matched);
	ck_assert_uint_eq(missing, 0);
	ck_assert_uint_gt(matched, 100);
}
END_TEST

static char cachedir[] = "/tmp/check_catalog.XXXXXX";

/*
 * Build the operator @src (@n bytes, or a negative errno) named @key for sm_80 and sm_90
 * under the worker's register cap, as the engine does; the worker can call it only if it uses
 * no constant bank of its own (a jump table, say: it would read the worker's, kernels/ops.c).
 * Returns the builds made.
 */
static unsigned build_src(const char *key, const char *src, int n)
{
	const char *opt = "-maxrregcount=64";

	ck_assert_msg(n > 0, "%s: %d", key, n);
	for (unsigned sm = 80; sm <= 90; sm += 10) {
		struct gpuos_jit_req r = {.src = src,
					  .len = (size_t)n,
					  .name = key,
					  .sm = sm,
					  .cache_dir = cachedir,
					  .opts = &opt,
					  .nopts = 1};
		struct gpuos_jit_image img;
		struct gpuos_cubin *c;
		int rc = gpuos_jit_build(&r, &img);
		ck_assert_msg(rc == 0, "%s sm_%u: %d\n%s", key, sm, rc, src);
		ck_assert_int_eq(gpuos_cubin_open(img.data, img.size, &c), 0);
		ck_assert_msg(!(gpuos_cubin_const_banks(c) & ~1u), "%s sm_%u: constant banks %#x",
			      key, sm, gpuos_cubin_const_banks(c));
		/* more and kernels/ops.c would refuse to install it */
		ck_assert_msg(gpuos_cubin_frames(c) <= GPUOS_OP_STACK, "%s sm_%u: frames %u", key,
			      sm, gpuos_cubin_frames(c));
		gpuos_cubin_close(c);
		gpuos_jit_image_free(&img);
	}
	return 2;
}

static unsigned build_both(const struct gpuos_cat_match *m)
{
	static char src[16384];
	char key[96];

	gpuos_cat_key(m, key, sizeof(key));
	return build_src(key, src, gpuos_cat_source(m, src, sizeof(src)));
}

/* The constant banks an image fills are seen: __constant__ data is bank 3, and a kernel's
 * parameters bank 0 (the jit's anchor kernel has none, the worker some). */
START_TEST(test_const_banks)
{
	static const char src[] = "#include \"gpuos_task.h\"\n"
				  "__constant__ float k[4] = {1.0f, 2.0f, 3.0f, 4.0f};\n"
				  "extern \"C\" __device__ GPUOS_OP_SIGNATURE(op)\n"
				  "{\n"
				  "  float *o = (float *)t[0].a[0];\n"
				  "  o[gpuos_tid()] = k[t[0].a[1] & 3];\n"
				  "}\n"
				  "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = op;\n";
	struct gpuos_jit_req r = {
	    .src = src, .len = sizeof(src) - 1, .name = "banks", .sm = 90, .cache_dir = cachedir};
	struct gpuos_jit_image img;
	struct gpuos_cubin *c;
	FILE *f = fopen("build/kernels/worker_sm90.cubin", "rb");
	static char w[1 << 22];
	size_t n;

	ck_assert_int_eq(gpuos_jit_build(&r, &img), 0);
	ck_assert_int_eq(gpuos_cubin_open(img.data, img.size, &c), 0);
	ck_assert_uint_eq(gpuos_cubin_const_banks(c) & ~1u, 1u << 3);
	gpuos_cubin_close(c);
	gpuos_jit_image_free(&img);
	ck_assert_ptr_nonnull(f);
	n = fread(w, 1, sizeof(w), f);
	fclose(f);
	ck_assert_int_eq(gpuos_cubin_open(w, n, &c), 0);
	ck_assert(gpuos_cubin_const_banks(c) & 1u);
	gpuos_cubin_close(c);
}
END_TEST

/* Every operator the catalog can generate builds for sm_80 and sm_90. */
START_TEST(test_sources_build)
{
	static const int f16s[] = {GPUOS_DT_F32, GPUOS_DT_F16, GPUOS_DT_BF16};
	unsigned built = 0;

	for (unsigned i = 0; i < gpuos_cat_nentries; i++) {
		const struct gpuos_cat_entry *e = &gpuos_cat_entries[i];
		for (int dt = 0; dt < 32; dt++) {
			if (!(e->dtypes & GPUOS_DT_BIT(dt)))
				continue;
			for (int lay = 0; lay < GPUOS_CAT_LAYOUTS; lay++) {
				struct gpuos_cat_match m = {.e = e, .dtype = dt, .layout = lay};
				built += build_both(&m);
			}
		}
	}
	ck_assert_uint_ge(built, 4 * gpuos_cat_nentries);
	/* the copy operator (device-to-device cudaMemcpyAsync), layer norm, cat */
	{
		static char src[8192];
		struct gpuos_cat_match ln = {.layout = GPUOS_CAT_LAYER_NORM, .dtype = GPUOS_DT_F32};
		struct gpuos_cat_match cat = {.layout = GPUOS_CAT_CONCAT, .dtype = -1};
		static const int ar[][2] = {
		    {GPUOS_DT_U8, GPUOS_DT_I64},  {GPUOS_DT_I8, GPUOS_DT_I64},
		    {GPUOS_DT_I16, GPUOS_DT_I64}, {GPUOS_DT_I32, GPUOS_DT_I64},
		    {GPUOS_DT_I64, GPUOS_DT_I64}, {GPUOS_DT_F64, GPUOS_DT_F64},
		    {GPUOS_DT_F32, GPUOS_DT_F32}, {GPUOS_DT_F16, GPUOS_DT_F32},
		    {GPUOS_DT_BF16, GPUOS_DT_F32}};

		build_src(GPUOS_CAT_COPY_KEY, src, gpuos_cat_copy_source(src, sizeof(src)));
		struct gpuos_cat_match isel = {.layout = GPUOS_CAT_INDEX_SELECT, .dtype = -1};

		build_both(&ln);
		build_both(&cat);
		build_both(&isel);
		/* softmax: every width for float, three for the other types, both kinds */
		static const int sm[][2] = {{GPUOS_DT_F32, GPUOS_DT_F32},
					    {GPUOS_DT_F16, GPUOS_DT_F16},
					    {GPUOS_DT_F16, GPUOS_DT_F32},
					    {GPUOS_DT_BF16, GPUOS_DT_BF16},
					    {GPUOS_DT_BF16, GPUOS_DT_F32}};
		for (unsigned i = 0; i < sizeof(sm) / sizeof(sm[0]); i++)
			for (unsigned l = 0; l <= GPUOS_CAT_SOFTMAX_L2E; l++) {
				if (i && l && l != GPUOS_CAT_SOFTMAX_L2E && l != 5)
					continue;
				for (int lg = 0; lg < 4; lg++) { /* 2, 3: the gradient */
					struct gpuos_cat_match m = {.layout = GPUOS_CAT_SOFTMAX,
								    .dtype = sm[i][lg / 2],
								    .out = sm[i][1 - lg / 2],
								    .acc = GPUOS_DT_F32,
								    .l2e = l,
								    .log = lg & 1,
								    .backward = lg >= 2};
					build_both(&m);
				}
			}
		for (unsigned i = 0; i < sizeof(ar) / sizeof(ar[0]); i++) {
			struct gpuos_cat_match m = {
			    .layout = GPUOS_CAT_ARANGE, .dtype = ar[i][0], .acc = ar[i][1]};
			build_both(&m);
		}
	}
	/* reductions: each accumulator type, from and to itself; float's from and to the
	 * 16-bit floats too; vt0 and the input vector width as PyTorch names them; one output
	 * a thread and four (pairs: one) */
	for (unsigned i = 0; i < gpuos_cat_nreds; i++)
		for (int dt = 0; dt < 32; dt++) {
			if (!(gpuos_cat_reds[i].dtypes & GPUOS_DT_BIT(dt)))
				continue;
			for (unsigned k = 0; k < (dt == GPUOS_DT_F32 ? 3u : 1u); k++)
				for (unsigned ovs = 1; ovs <= (gpuos_cat_reds[i].arg ? 1u : 4u);
				     ovs *= 4) {
					struct gpuos_cat_match m = {
					    .r = &gpuos_cat_reds[i],
					    .dtype = dt == GPUOS_DT_F32 ? f16s[k] : dt,
					    .layout = GPUOS_CAT_REDUCE,
					    .acc = dt,
					    .out = dt == GPUOS_DT_F32 ? f16s[k] : dt,
					    .vt0 = 4,
					    .ivs = k ? 4 : 2,
					    .ovs = ovs};
					build_both(&m);
				}
		}
}
END_TEST

/* The stack frames @m's operator needs, built for sm_90 under the worker's register cap. */
static unsigned frames_of(const struct gpuos_cat_match *m, const char *name)
{
	static char src[16384];
	const char *opt = "-maxrregcount=64";
	int len = gpuos_cat_source(m, src, sizeof(src));
	struct gpuos_jit_req r = {.src = src,
				  .len = (size_t)len,
				  .name = name,
				  .sm = 90,
				  .cache_dir = cachedir,
				  .opts = &opt,
				  .nopts = 1};
	struct gpuos_jit_image img;
	struct gpuos_cubin *c;
	unsigned fr;

	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(gpuos_jit_build(&r, &img), 0);
	ck_assert_int_eq(gpuos_cubin_open(img.data, img.size, &c), 0);
	fr = gpuos_cubin_frames(c);
	gpuos_cubin_close(c);
	gpuos_jit_image_free(&img);
	return fr;
}

/*
 * Operators with a stack frame: the worker reserves GPUOS_OP_STACK bytes below every operator
 * call (its never-run stack_reserve), and the host measures an operator's frames before it
 * installs it. IEEE division's slow path needs a frame under the worker's register cap.
 */
START_TEST(test_stack)
{
	static const struct {
		const char *name;
		int min, max;
	} ops[] = {/* the registers its aligned loop needs beyond the call's scratch ones */
		   {"mul", 0, GPUOS_OP_STACK / 2},
		   {"div", 16, GPUOS_OP_STACK}};
	struct gpuos_cubin *c;
	FILE *f = fopen("build/kernels/worker_sm90.cubin", "rb");
	static char w[1 << 22];
	size_t n;

	ck_assert_ptr_nonnull(f);
	n = fread(w, 1, sizeof(w), f);
	fclose(f);
	ck_assert_int_eq(gpuos_cubin_open(w, n, &c), 0);
	ck_assert_uint_ge(gpuos_cubin_frames(c), GPUOS_OP_STACK);
	gpuos_cubin_close(c);
	for (unsigned k = 0; k < 2; k++) {
		const struct gpuos_cat_entry *e = NULL;
		for (unsigned i = 0; i < gpuos_cat_nentries; i++)
			if (!strcmp(gpuos_cat_entries[i].name, ops[k].name))
				e = &gpuos_cat_entries[i];
		ck_assert_ptr_nonnull(e);
		struct gpuos_cat_match m = {.e = e, .dtype = GPUOS_DT_F32, .layout = GPUOS_CAT_CONTIG};
		unsigned fr = frames_of(&m, ops[k].name);
		ck_assert_msg((int)fr >= ops[k].min && (int)fr <= ops[k].max, "%s: %u bytes",
			      ops[k].name, fr);
	}
	/* softmax's widest rows fit the worker's reserve: float, half to float, bfloat16 */
	for (unsigned k = 0; k < 3; k++) {
		const int in = k == 0 ? GPUOS_DT_F32 : k == 1 ? GPUOS_DT_F16 : GPUOS_DT_BF16;
		struct gpuos_cat_match m = {.layout = GPUOS_CAT_SOFTMAX,
					    .dtype = in,
					    .out = k == 2 ? GPUOS_DT_BF16 : GPUOS_DT_F32,
					    .acc = GPUOS_DT_F32,
					    .l2e = GPUOS_CAT_SOFTMAX_L2E};
		for (int lg = 0; lg < 4; lg++) { /* 2, 3: the gradient */
			m.log = lg & 1;
			m.backward = lg >= 2;
			if (lg == 2) { /* it reads float and writes the input's type */
				m.dtype = m.out;
				m.out = in;
			}
			unsigned fr = frames_of(&m, "softmax");
			fprintf(stderr, "check_catalog: %ssoftmax%s.%s 2^%u's frames: %u bytes\n",
				m.log ? "log_" : "", m.backward ? "_backward" : "",
				gpuos_cat_dtype_name(in), m.l2e, fr);
			ck_assert_uint_le(fr, GPUOS_OP_STACK);
		}
	}
	/* reductions keep their VT0 x 4 accumulators within the worker's reserve: sum of
	 * int64 and float32 four outputs a thread, argmax's (value, index) pairs one */
	for (unsigned k = 0; k < 3; k++) {
		int dt = k == 0 ? GPUOS_DT_I64 : GPUOS_DT_F32;
		const struct gpuos_cat_red *red = &gpuos_cat_reds[0];
		for (unsigned i = 0; k == 2 && i < gpuos_cat_nreds; i++)
			if (!strcmp(gpuos_cat_reds[i].name, "argmax"))
				red = &gpuos_cat_reds[i];
		struct gpuos_cat_match m = {.r = red,
					    .dtype = dt,
					    .layout = GPUOS_CAT_REDUCE,
					    .acc = dt,
					    .out = k == 2 ? GPUOS_DT_I64 : dt,
					    .vt0 = 4,
					    .ivs = 4,
					    .ovs = k == 2 ? 1 : 4};
		unsigned fr = frames_of(&m, "sum");
		ck_assert_msg(fr <= GPUOS_OP_STACK, "%s %s: %u bytes", red->name,
			      gpuos_cat_dtype_name(dt), fr);
		fprintf(stderr, "check_catalog: %s.%s's frames: %u bytes\n", red->name,
			gpuos_cat_dtype_name(dt), fr);
	}
}
END_TEST

/*
 * The recorded reductions decode into the operator's parameter block: the identity and the
 * mean's factor from their bytes, the config, one block per output; argmax's
 * (value, index) identity.
 */
START_TEST(test_reduce_params)
{
	unsigned n_ok = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_cat_match m;
		struct gpuos_kparam kp[16];
		struct gpuos_reduce_args a;
		struct gpuos_cat_reduce p;
		static uint8_t store[8192];
		unsigned g[3], b[3], smem;
		void *args[16];
		float f;

		if (!rec_of(i, GPUOS_SIG_REDUCE, &s))
			continue;
		ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
		ck_assert_int_eq(sscanf(recs[i].launch, "G %u %u %u B %u %u %u S %u", &g[0], &g[1],
					&g[2], &b[0], &b[1], &b[2], &smem),
				 7);
		unsigned n = layout(recs[i].params, kp, args, store);
		int rc = gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a);
		if (!strcmp(recs[i].op, "sum_big")) { /* 128 blocks an output */
			ck_assert_int_eq(rc, -ENOTSUP);
			continue;
		}
		ck_assert_int_eq(rc, 0);
		ck_assert_int_eq(gpuos_cat_reduce_params(&m, &a, &p), 0);
		ck_assert_int_eq(p.grid_x, (int)g[0]);
		ck_assert_int_eq(p.block_width * p.block_height, (int)(b[0] * b[1]));
		ck_assert_uint_eq(p.src, a.src);
		memcpy(&f, &p.ident, 4);
		if (m.r->arg) { /* (value, index): -inf's bytes with index 0 */
			int64_t ix;
			memcpy(&ix, (char *)p.ident + 8, 8);
			ck_assert(f < -3e38f && ix == 0);
		} else if (!strcmp(m.r->name, "max"))
			ck_assert(f < -3e38f && f * 0 != 0); /* -inf */
		else
			ck_assert(f == 0.0f);
		if (m.r->factor) {
			memcpy(&f, &p.factor, 4);
			ck_assert(f > 0 && f <= 1);
		}
		/* the calculators' last dims divide nothing: an index past the sizes' product
		 * (a config PyTorch never makes) is refused */
		if (a.in_dims) {
			uint32_t sz = a.in_sizes[a.in_dims - 1];
			a.in_sizes[a.in_dims - 1] = sz - 1;
			ck_assert_int_eq(gpuos_cat_reduce_params(&m, &a, &p), -ENOTSUP);
			a.in_sizes[a.in_dims - 1] = sz;
		}
		if (a.out_dims && a.num_outputs > 1) {
			a.num_outputs += a.output_vec_size;
			ck_assert_int_eq(gpuos_cat_reduce_params(&m, &a, &p), -ENOTSUP);
			a.num_outputs -= a.output_vec_size;
		}
		ck_assert_int_eq(gpuos_cat_reduce_params(&m, &a, &p), 0);
		/* an accumulator of another size than the config's is not this operator's */
		a.element_size_bytes = 12;
		ck_assert_int_eq(gpuos_cat_reduce_params(&m, &a, &p), -ENOTSUP);
		n_ok++;
	}
	ck_assert_uint_ge(n_ok, 6);
}
END_TEST

/*
 * The recorded layer norm matches its operator and decodes (N 256, eps 1e-5, 4 rows of (32, 4)
 * threads); what PyTorch's vectorized launch promises is checked; RMS norm's is no match.
 */
START_TEST(test_layer_norm_args)
{
	unsigned n_ok = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_cat_match m;
		struct gpuos_kparam kp[16];
		struct gpuos_cat_ln a;
		static uint8_t store[8192];
		unsigned g[3], b[3], smem, n;
		void *args[16];
		char key[64];
		uint64_t x;

		if (!rec_of(i, GPUOS_SIG_LAYER_NORM, &s))
			continue;
		if (!strcmp(recs[i].op, "rms_norm")) {
			ck_assert_int_eq(gpuos_cat_match(&s, &m), -ENOENT);
			continue;
		}
		ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
		gpuos_cat_key(&m, key, sizeof(key));
		ck_assert_str_eq(key, "layer_norm.float32.rows");
		ck_assert_int_eq(sscanf(recs[i].launch, "G %u %u %u B %u %u %u S %u", &g[0], &g[1],
					&g[2], &b[0], &b[1], &b[2], &smem),
				 7);
		n = layout(recs[i].params, kp, args, store);
		ck_assert_int_eq(gpuos_sig_decode_layer_norm(&s, kp, n, args, g, b, &a), 0);
		ck_assert_int_eq(a.n, 256);
		ck_assert(a.eps > 0.99e-5f && a.eps < 1.01e-5f);
		ck_assert_uint_eq(a.rows, 4);
		ck_assert_uint_eq(a.by, 4);
		ck_assert(a.x && a.gamma && a.beta && a.mean && a.rstd && a.y);
		/* a block of 3 warps, 64 threads wide, a row of 255: not PyTorch's vectorized form */
		b[1] = 3;
		ck_assert_int_eq(gpuos_sig_decode_layer_norm(&s, kp, n, args, g, b, &a), -EINVAL);
		b[1] = 4, b[0] = 64;
		ck_assert_int_eq(gpuos_sig_decode_layer_norm(&s, kp, n, args, g, b, &a), -EINVAL);
		b[0] = 32;
		*(int32_t *)args[0] = 255;
		ck_assert_int_eq(gpuos_sig_decode_layer_norm(&s, kp, n, args, g, b, &a), -EINVAL);
		*(int32_t *)args[0] = 256;
		memcpy(&x, args[2], 8);
		x += 4; /* X one float off its 16 bytes */
		memcpy(args[2], &x, 8);
		ck_assert_int_eq(gpuos_sig_decode_layer_norm(&s, kp, n, args, g, b, &a), -EINVAL);
		x -= 4;
		memcpy(args[2], &x, 8);
		memset(args[3], 0, 8); /* no gamma: fine */
		ck_assert_int_eq(gpuos_sig_decode_layer_norm(&s, kp, n, args, g, b, &a), 0);
		ck_assert(!a.gamma);
		ck_assert_int_eq(gpuos_sig_decode_layer_norm(&s, kp, n - 1, args, g, b, &a), -EINVAL);
		n_ok++;
	}
	ck_assert_uint_eq(n_ok, 1);
}
END_TEST

/* torch.cat's kernels, named as PyTorch 2.11 launches them (GPT-2's KV cache and input ids). */
#define CAT_NS "at::native::(anonymous namespace)::"
#define CAT_META(T, N, SS)                                                                         \
	CAT_NS "CatArrInputTensorMetadata<" CAT_NS T ", unsigned int, " N ", " SS ">"
#define CAT_PARAMS(T, N, SS, OUT)                                                                  \
	"(" OUT ", " CAT_META(T, N, SS) ", " CAT_NS "TensorSizeStride<unsigned int, 4u>, int, "    \
	"unsigned int)"
static const char cat_vec[] =
    "void " CAT_NS "CatArrayBatchedCopy_vectorized<" CAT_NS "OpaqueType<4u>, unsigned int, 3, "
    "128, 1, 16, 4>" CAT_PARAMS("OpaqueType<4u>", "128", "1", "char*");
static const char cat_aligned[] =
    "void " CAT_NS "CatArrayBatchedCopy_alignedK_contig<" CAT_NS "OpaqueType<8u>, unsigned int, "
    "2, 128, 1, 16>" CAT_PARAMS("OpaqueType<8u>", "128", "1", CAT_NS "OpaqueType<8u>*");
static const char cat_strided[] =
    "void " CAT_NS "CatArrayBatchedCopy<" CAT_NS "OpaqueType<4u>, unsigned int, 4, 64, 64>"
    CAT_PARAMS("OpaqueType<4u>", "64", "64", CAT_NS "OpaqueType<4u>*");

/* A cat launch's parameters as PyTorch lays them out: batch 128, stride_size 1. */
struct cat_launch {
	uint64_t out;
	struct {
		uint64_t input[128];
		uint32_t offset[128], dim_size[128], nelem[128];
		uint8_t contig[128];
		uint32_t sizes[4], strides[4];
	} md;
	uint32_t os[8];
	int32_t cdim;
	uint32_t last;
};

/* The strided kernel's: batch 64, each input's sizes and strides. */
struct cat_launch64 {
	uint64_t out;
	struct {
		uint64_t input[64];
		uint32_t offset[64], dim_size[64], nelem[64];
		uint8_t contig[64];
		struct {
			uint32_t sizes[4], strides[4];
		} ts[64];
	} md;
	uint32_t os[8];
	int32_t cdim;
	uint32_t last;
};

static unsigned cat_layout(struct cat_launch *l, struct gpuos_kparam *kp, void **args)
{
	static const unsigned off[5] = {0, 8, 2728, 2760, 2764}, size[5] = {8, 2720, 32, 4, 4};
	void *at[5] = {&l->out, &l->md, l->os, &l->cdim, &l->last};

	ck_assert_uint_eq(sizeof(l->md), 2720);
	for (unsigned i = 0; i < 5; i++) {
		kp[i] = (struct gpuos_kparam){.ordinal = i, .offset = off[i], .size = size[i]};
		args[i] = at[i];
	}
	return 5;
}

/*
 * The cat kernels match the one concat operator; a KV-cache cat (float [1, 2, 5, 64] and
 * [1, 2, 1, 64] along dim 2, in 16-byte units) and an input-ids cat (int64 [1, 5] and [1, 1] along dim 1) decode into the
 * units CatArrIndexToOffset moves, and a transposed input for the strided kernel with its
 * sizes and strides; what the kernels rely on is checked.
 */
START_TEST(test_concat_args)
{
	static struct cat_launch l;
	struct gpuos_kparam kp[5];
	struct gpuos_cat_concat a;
	uint64_t units;
	struct gpuos_cat_match m;
	static struct gpuos_sig s;
	unsigned g[3] = {264, 2, 1}, b[3] = {128, 1, 1}, n;
	void *args[5];
	char key[64];


	ck_assert_int_eq(gpuos_sig_parse(cat_vec, &s), 0);
	ck_assert_int_eq(s.family, GPUOS_SIG_CONCAT);
	ck_assert_int_eq(s.concat.kind, GPUOS_CONCAT_VECTORIZED);
	ck_assert_uint_eq(s.concat.elem, 4);
	ck_assert_uint_eq(s.concat.dims, 3);
	ck_assert_uint_eq(s.concat.epv, 4);
	ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
	gpuos_cat_key(&m, key, sizeof(key));
	ck_assert_str_eq(key, GPUOS_CAT_CONCAT_KEY);
	/* out [1, 2, 6, 64] flattened after dim 2: sizes {1, 2, 96}, strides {192, 96, 1} */
	memset(&l, 0, sizeof(l));
	n = cat_layout(&l, kp, args);
	l.out = 0x7f0000100000;
	l.md.input[0] = 0x7f0000200000, l.md.input[1] = 0x7f0000300000;
	l.md.offset[1] = 5;
	l.md.dim_size[0] = 5, l.md.dim_size[1] = 1;
	l.md.nelem[0] = 640, l.md.nelem[1] = 128;
	l.os[0] = 1, l.os[1] = 2, l.os[2] = 96;
	l.os[4] = 192, l.os[5] = 96, l.os[6] = 1;
	l.cdim = 2, l.last = 64;
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), 0);
	ck_assert_uint_eq(a.unit, 16);
	ck_assert_uint_eq(a.nin, 2);
	ck_assert_uint_eq(a.in[0].n, 160);
	ck_assert_uint_eq(a.in[0].dsz, 80);
	ck_assert_uint_eq(a.in[1].n, 32);
	ck_assert_uint_eq(a.in[1].base, 80); /* position 5 of 6: 320 floats, 80 units */
	ck_assert_uint_eq(a.in[1].dsz, 16);
	ck_assert_uint_eq(units, 192);
	/* what the kernel relies on, one at a time */
	l.md.input[1] += 4; /* a float off its 16 bytes */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), -EINVAL);
	l.md.input[1] -= 4;
	l.md.nelem[1] = 132; /* more than its sizes hold */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), -EINVAL);
	l.md.nelem[1] = 128;
	l.os[5] = 0xfffffff0u; /* an offset past 2^32: the second head's */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), -EINVAL);
	l.os[5] = 96;
	l.cdim = 3; /* past Dims */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), -EINVAL);
	l.cdim = 2;
	g[1] = 129; /* more inputs than the batch */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), -EINVAL);
	g[1] = GPUOS_SIG_CONCAT_INPUTS + 1; /* valid, more than a task holds */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), -ENOTSUP);
	g[1] = 2;
	kp[1].size -= 8; /* another batch size's metadata */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), -EINVAL);
	kp[1].size += 8;
	l.md.nelem[1] = 0, l.md.input[1] = 0; /* an empty input: nothing to move, no pointer */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), 0);
	ck_assert_uint_eq(units, 160);

	ck_assert_int_eq(gpuos_sig_parse(cat_aligned, &s), 0);
	ck_assert_int_eq(s.concat.kind, GPUOS_CONCAT_ALIGNED);
	ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
	/* out [1, 6] int64 along dim 1: sizes {1, 6}, strides {6, 1}, dimStride 1 */
	memset(&l, 0, sizeof(l));
	n = cat_layout(&l, kp, args);
	l.out = 0x7f0000100000;
	l.md.input[0] = 0x7f0000200000, l.md.input[1] = 0x7f0000300000;
	l.md.offset[1] = 5;
	l.md.dim_size[0] = 5, l.md.dim_size[1] = 1;
	l.md.nelem[0] = 5, l.md.nelem[1] = 1;
	l.os[0] = 1, l.os[1] = 6, l.os[4] = 6, l.os[5] = 1;
	l.cdim = 1, l.last = 1;
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), 0);
	ck_assert_uint_eq(a.unit, 8);
	ck_assert_uint_eq(a.in[1].base, 5);
	ck_assert_uint_eq(a.in[1].n, 1);
	ck_assert_uint_eq(units, 6);
	l.md.input[1] += 8; /* its 16-byte loads: 8 bytes off */
	ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, n, args, g, b, &a, &units), -EINVAL);

	/* the strided kernel: a transposed float [3, 2] (strides 1, 3) and a [1, 2] along dim 0 */
	{
		static struct cat_launch64 l64;
		static const unsigned off[5] = {0, 8, 3400, 3432, 3436};
		static const unsigned size[5] = {8, 3392, 32, 4, 4};
		void *at[5] = {&l64.out, &l64.md, l64.os, &l64.cdim, &l64.last};

		ck_assert_uint_eq(sizeof(l64.md), 3392);
		for (unsigned i = 0; i < 5; i++) {
			kp[i] = (struct gpuos_kparam){.ordinal = i, .offset = off[i], .size = size[i]};
			args[i] = at[i];
		}
		ck_assert_int_eq(gpuos_sig_parse(cat_strided, &s), 0);
		ck_assert_int_eq(s.concat.kind, GPUOS_CONCAT_STRIDED);
		ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
		s.concat.dims = 2; /* the recorded name's Dims is 4: the same kernel for 2 */
		memset(&l64, 0, sizeof(l64));
		l64.out = 0x7f0000100000;
		l64.md.input[0] = 0x7f0000200004, l64.md.input[1] = 0x7f0000300000;
		l64.md.offset[1] = 3;
		l64.md.dim_size[0] = 3, l64.md.dim_size[1] = 1;
		l64.md.nelem[0] = 6, l64.md.nelem[1] = 2;
		l64.md.ts[0].sizes[0] = 3, l64.md.ts[0].sizes[1] = 2;
		l64.md.ts[0].strides[0] = 1, l64.md.ts[0].strides[1] = 3;
		l64.md.ts[1].sizes[0] = 1, l64.md.ts[1].sizes[1] = 2;
		l64.md.ts[1].strides[0] = 2, l64.md.ts[1].strides[1] = 1;
		l64.os[0] = 4, l64.os[1] = 2, l64.os[4] = 2, l64.os[5] = 1;
		l64.cdim = 0, l64.last = 2;
		ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, 5, args, g, b, &a, &units), 0);
		ck_assert_uint_eq(a.unit, 4);
		ck_assert(!a.in[0].contig && !a.in[1].contig);
		ck_assert_uint_eq(a.in[0].strides[1], 3);
		ck_assert_uint_eq(a.in[1].base, 6);
		l64.md.contig[1] = 1; /* read as it lies */
		ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, 5, args, g, b, &a, &units), 0);
		ck_assert(a.in[1].contig);
		l64.md.ts[0].strides[1] = 0xffffffffu; /* an input offset past 2^32 */
		ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, 5, args, g, b, &a, &units), -EINVAL);
		l64.md.ts[0].strides[1] = 3;
		l64.md.ts[0].sizes[1] = 3; /* more than its units */
		ck_assert_int_eq(gpuos_sig_decode_concat(&s, kp, 5, args, g, b, &a, &units), -EINVAL);
	}
}
END_TEST

/*
 * masked_fill (GPT-2's prefill, every attention mask): {lambda(T, bool)#} capturing the
 * value as T, then the lambda's host pointer; its mask is read as bool whatever T is, and a
 * lambda whose second parameter is not bool is not this entry's.
 */
START_TEST(test_masked_fill)
{
	static const char gpt2[] =
	    "void at::native::vectorized_elementwise_kernel<2, at::native::(anonymous "
	    "namespace)::masked_fill_kernel(at::TensorIterator&, c10::Scalar "
	    "const&)::{lambda()#1}::operator()() const::{lambda()#4}::operator()() "
	    "const::{lambda(long, bool)#1}, std::array<char*, 3ul> >(int, at::native::(anonymous "
	    "namespace)::masked_fill_kernel(at::TensorIterator&, c10::Scalar "
	    "const&)::{lambda()#1}::operator()() const::{lambda()#4}::operator()() "
	    "const::{lambda(long, bool)#1}, std::array<char*, 3ul>)";
	static struct gpuos_sig s;
	static char name[sizeof(gpt2)], src[16384];
	struct gpuos_cat_match m;
	unsigned size, n, off[2], ss[2];
	char key[64], *p;

	ck_assert_int_eq(gpuos_sig_parse(gpt2, &s), 0);
	ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
	gpuos_cat_key(&m, key, sizeof(key));
	ck_assert_str_eq(key, "masked_fill.int64.contig");
	ck_assert_int_eq(gpuos_cat_functor(&s, &size, &n, off, ss), 0);
	ck_assert_uint_eq(size, 16); /* the value, the host pointer */
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ss[0], 8);
	/* the operator loads input 1 (the mask) as bool */
	ck_assert_int_gt(gpuos_cat_source(&m, src, sizeof(src)), 0);
	ck_assert_ptr_nonnull(strstr(src, "#define I1_T bool"));
	/* a uint8 mask (not in 2.11): not matched */
	memcpy(name, gpt2, sizeof(gpt2));
	while ((p = strstr(name, "long, bool)")))
		memcpy(p, "long, char)", 11);
	ck_assert_int_eq(gpuos_sig_parse(name, &s), 0);
	ck_assert_int_eq(gpuos_cat_match(&s, &m), -ENOENT);
}
END_TEST

/* The dispatch lambda's index in a mangled arange name: the second "UlvE" after
 * arange_cuda_out ("UlvE_" is #1, "UlvE<n>_" #n+2), 0 if absent. */
static unsigned mangled_lambda(const char *mangled)
{
	const char *p = strstr(mangled, "arange_cuda_out");

	if (!p || !(p = strstr(p, "UlvE")) || !(p = strstr(p + 4, "UlvE")))
		return 0;
	p += 4;
	return *p == '_' ? 1 : (unsigned)strtoul(p, NULL, 10) + 2;
}

/*
 * arange's kernels as libtorch_cuda 2.11 registers them (tests/data): the 18 of
 * arange_cuda_out (9 element types, int and long indices) are the family, linspace's,
 * logspace's and range's are not. The name does not spell the element type; the device
 * stubs' guard variables do, pairing each dispatch lambda with its return type: the type
 * sig.c reads from the lambda's index must be that one.
 */
START_TEST(test_arange_names)
{
	static const struct {
		const char *code, *type;
	} codes[] = {{"h", "unsigned char"}, {"a", "signed char"}, {"i", "int"},
		     {"l", "long"},	     {"s", "short"},	   {"d", "double"},
		     {"f", "float"},	     {"NS3_4HalfE", "c10::Half"},
		     {"NS3_8BFloat16E", "c10::BFloat16"}};
	FILE *f = popen("gzip -dc tests/data/torch211_range_names.gz", "r");
	static char line[4096];
	static struct gpuos_sig s;
	const char *type_of[16] = {0};
	static struct {
		unsigned k; /* its dispatch lambda */
		char dtype[48];
		int acc;
	} ar[18];
	unsigned nguards = 0, nkernels = 0, narange = 0, idx[2] = {0};

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned k = mangled_lambda(line);
		line[strcspn(line, "\n")] = 0;
		/* a guard: ...arange_cuda_outE<ordinal>_<return type>l... */
		if (!strncmp(line, "_ZGV", 4)) {
			const char *r = strstr(line, "arange_cuda_outE");
			while (r && !(r[16] >= '1' && r[16] <= '9'))
				r = strstr(r + 1, "arange_cuda_outE");
			ck_assert(r && k >= 1 && k < 16);
			r = strchr(r + 16, '_') + 1;
			for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
				if (!strncmp(r, codes[i].code, strlen(codes[i].code)) &&
				    r[strlen(codes[i].code)] == 'l')
					type_of[k] = codes[i].type;
			ck_assert_msg(type_of[k], "%s", line);
			nguards++;
			continue;
		}
		struct gpuos_cat_match m;
		char *dm = gpuos_demangle(line);
		ck_assert_ptr_nonnull(dm);
		ck_assert_int_eq(gpuos_sig_parse(dm, &s), 0);
		nkernels++;
		if (!strstr(line, "arange_cuda_out")) {
			ck_assert_msg(s.family == GPUOS_SIG_NONE, "%s", dm);
			free(dm);
			continue;
		}
		ck_assert_msg(s.family == GPUOS_SIG_ARANGE, "%s", dm);
		ck_assert_str_eq(gpuos_sig_family_name(s.family), "arange");
		ck_assert(s.arange.index == 4 || s.arange.index == 8);
		idx[s.arange.index == 8]++;
		ck_assert_uint_ge(k, 1);
		ck_assert_uint_lt(narange, 18);
		ar[narange].k = k;
		memcpy(ar[narange].dtype, s.dtype, sizeof(ar[narange].dtype));
		ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
		ck_assert_int_eq(m.layout, GPUOS_CAT_ARANGE);
		ar[narange].acc = m.acc;
		free(dm);
		narange++;
	}
	pclose(f);
	ck_assert_uint_eq(narange, 18);
	ck_assert_uint_eq(idx[0], 9);
	ck_assert_uint_eq(nguards, 18);
	ck_assert_uint_gt(nkernels, narange);
	/* now that the guards (they come last) said each lambda's type */
	for (unsigned i = 0; i < narange; i++) {
		const char *t = ar[i].dtype;
		/* at::acc_type<T, true>: float for the floats but double, long for the integers */
		int acc = GPUOS_DT_I64;
		if (!strcmp(t, "double"))
			acc = GPUOS_DT_F64;
		else if (strstr(t, "Half") || strstr(t, "BFloat16") || !strcmp(t, "float"))
			acc = GPUOS_DT_F32;
		ck_assert_str_eq(t, type_of[ar[i].k]);
		ck_assert_int_eq(ar[i].acc, acc);
	}
}
END_TEST

/*
 * index_select's kernels as libtorch_cuda 2.11 registers them (tests/data, from gpuos
 * inspect on the GPU machine): 24 element types, each in 8 variants (1, 2, 3 and any dims,
 * int and long indices). Every one is the family and matches the catalog's one operator.
 */
START_TEST(test_index_select_names)
{
	FILE *f = popen("gzip -dc tests/data/torch211_isel_names.gz", "r");
	static char line[4096];
	unsigned n = 0, by_index[2] = {0}, by_dims[5] = {0};

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		struct gpuos_sig s;
		struct gpuos_cat_match m;
		line[strcspn(line, "\n")] = 0;
		char *dm = gpuos_demangle(line);
		ck_assert_ptr_nonnull(dm);
		ck_assert_int_eq(gpuos_sig_parse(dm, &s), 0);
		ck_assert_msg(s.family == GPUOS_SIG_INDEX_SELECT, "%s", dm);
		ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
		ck_assert_int_eq(m.layout, GPUOS_CAT_INDEX_SELECT);
		by_index[s.isel.index == 8]++;
		by_dims[s.isel.dst_dims + 1]++;
		free(dm);
		n++;
	}
	pclose(f);
	ck_assert_uint_eq(n, 192);
	ck_assert_uint_eq(by_index[0], 96);
	ck_assert_uint_eq(by_dims[0], 48); /* -1 */
	ck_assert_uint_eq(by_dims[2], 48); /* 1 */
	ck_assert_uint_eq(by_dims[4], 48); /* 3 */
}
END_TEST

/*
 * softmax's kernels as libtorch_cuda 2.11 has them (tests/data: 16 type and flag
 * combinations x log2_elements 0..11): all are the family; the catalog takes the unmasked
 * ones of float and the 16-bit floats up to 2^10 elements a row, 110 of the 192.
 */
START_TEST(test_softmax_names)
{
	FILE *f = popen("gzip -dc tests/data/torch211_softmax_names.gz", "r");
	static char line[1024];
	unsigned n = 0, matched = 0, masked = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		struct gpuos_sig s;
		struct gpuos_cat_match m;
		line[strcspn(line, "\n")] = 0;
		ck_assert_int_eq(gpuos_sig_parse(line, &s), 0);
		ck_assert_msg(s.family == GPUOS_SIG_SOFTMAX, "%s", line);
		masked += s.softmax.masked;
		if (!gpuos_cat_match(&s, &m)) {
			ck_assert_int_eq(m.layout, GPUOS_CAT_SOFTMAX);
			ck_assert(!s.softmax.masked && m.l2e == s.softmax.l2e);
			matched++;
		}
		n++;
	}
	pclose(f);
	ck_assert_uint_eq(n, 192);
	ck_assert_uint_eq(masked, 48);
	ck_assert_uint_eq(matched, 110);
}
END_TEST

/* softmax_warp_forward's names and launches: what the catalog takes, and what dispatch's
 * launch promises (rows of the template's width, no mask, its block and grid). */
START_TEST(test_softmax_args)
{
	static const struct {
		bool bw; /* softmax_warp_backward */
		const char *targs;
		const char *key; /* NULL: not in the catalog */
	} names[] = {
	    {false, "float, float, float, 7, false, false", "softmax.float32.float32.7"},
	    {false, "c10::Half, float, float, 10, true, false", "log_softmax.float16.float32.10"},
	    {false, "c10::BFloat16, c10::BFloat16, float, 0, false, false",
	     "softmax.bfloat16.bfloat16.0"},
	    {false, "double, double, double, 9, true, false",
	     NULL},						    /* double's exp: its own bank */
	    {false, "float, float, float, 11, false, false", NULL}, /* past the registers */
	    {false, "float, float, float, 7, false, true", NULL},   /* masked */
	    {false, "c10::Half, c10::Half, double, 7, false, false", NULL}, /* not PyTorch's acc */
	    {false, "float, c10::Half, float, 7, false, false", NULL},	    /* nor its output */
	    {true, "float, float, float, 7, false, false", "softmax_backward.float32.float32.7"},
	    {true, "float, c10::Half, float, 10, true, false",
	     "log_softmax_backward.float32.float16.10"},
	    {true, "float, float, float, 11, false, false", NULL}, /* past the registers */
	    {true, "c10::BFloat16, c10::BFloat16, float, 3, true, false",
	     "log_softmax_backward.bfloat16.bfloat16.3"},
	    {true, "c10::Half, float, float, 7, false, false", NULL}, /* not half_to_float's way */
	    {true, "float, float, float, 7, false, true", NULL},
	};
	static struct gpuos_sig s;
	struct gpuos_cat_match m;
	struct gpuos_softmax_args a;
	struct gpuos_kparam kp[8];
	static const unsigned off[8] = {0, 8, 16, 20, 24, 32, 40, 44};
	static const unsigned size[8] = {8, 8, 4, 4, 4, 8, 4, 1};
	uint64_t dst = 0x7f0000200000, src = 0x7f0000100000, mask = 0;
	int32_t batch = 12, stride = 100, count = 100, chunk = -1;
	uint8_t tmask = 0;
	void *args[8] = {&dst, &src, &batch, &stride, &count, &mask, &chunk, &tmask};
	unsigned g[3] = {2, 1, 1}, b[3] = {32, 4, 1};
	char name[512], key[64];

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(name, sizeof(name), "void (anonymous namespace)::softmax_warp_%s<%s>(int)",
			 names[i].bw ? "backward" : "forward", names[i].targs);
		ck_assert_int_eq(gpuos_sig_parse(name, &s), 0);
		ck_assert_msg(s.family == GPUOS_SIG_SOFTMAX && (!names[i].bw || s.softmax.backward),
			      "%s", name);
		if (!names[i].key) {
			ck_assert_msg(gpuos_cat_match(&s, &m) == -ENOENT, "%s", name);
			continue;
		}
		ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
		gpuos_cat_key(&m, key, sizeof(key));
		ck_assert_str_eq(key, names[i].key);
	}
	/* another library's kernel of that name */
	ck_assert_int_eq(gpuos_sig_parse("void softmax_warp_forward<float, float, float, 7, "
					 "false, false>(int)",
					 &s),
			 0);
	ck_assert_int_eq(s.family, GPUOS_SIG_NONE);

	/* 12 rows of 100 (2^7): warps of 32 lanes, 4 a block, 2 rows each: 2 blocks */
	ck_assert_int_eq(gpuos_sig_parse("void (anonymous namespace)::softmax_warp_forward<float, "
					 "float, float, 7, false, false>(float*, float const*, "
					 "int, int, int, bool const*, int, bool)",
					 &s),
			 0);
	for (unsigned k = 0; k < 8; k++)
		kp[k] = (struct gpuos_kparam){.ordinal = k, .offset = off[k], .size = size[k]};
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), 0);
	ck_assert_uint_eq(a.dst, dst);
	ck_assert_uint_eq(a.src, src);
	ck_assert_int_eq(a.batch, 12);
	ck_assert_int_eq(a.count, 100);
	count = stride = 64; /* 2^6: another kernel's width */
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
	count = 100; /* rows further apart than their elements */
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
	stride = 100, mask = 0x7f0000300000;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
	mask = 0, g[0] = 3;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
	g[0] = 2, b[1] = 2;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
	b[1] = 4, dst += 2;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
	dst -= 2, batch = 0;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
	batch = 12, kp[7].size = 4;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
	kp[7].size = 1;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 7, args, g, b, &a), -EINVAL);
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), 0);

	/* the recorded launch: 4 rows of 256 (2^8), one a warp, one block */
	for (size_t i = 0; i < NRECS; i++) {
		static uint8_t store[256];
		struct gpuos_kparam rk[16];
		void *ra[16];
		unsigned rg[3] = {1, 1, 1}, rb[3] = {32, 4, 1};
		if (!recs[i].op || strcmp(recs[i].op, "softmax") ||
		    !rec_of(i, GPUOS_SIG_SOFTMAX, &s))
			continue;
		ck_assert_str_eq(recs[i].launch, "G 1 1 1 B 32 4 1 S 0");
		unsigned n = layout(recs[i].params, rk, ra, store);
		ck_assert_int_eq(gpuos_sig_decode_softmax(&s, rk, n, ra, rg, rb, &a), 0);
		ck_assert_int_eq(a.batch, 4);
		ck_assert_int_eq(a.count, 256);
	}

	/* one element a row (2^0): warps of one lane, 128 a block, 2 rows each */
	ck_assert_int_eq(gpuos_sig_parse("void (anonymous namespace)::softmax_warp_forward<float, "
					 "float, float, 0, true, false>(int)",
					 &s),
			 0);
	batch = 300, count = stride = 1, g[0] = 2, b[0] = 1, b[1] = 128;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), 0);
	count = stride = 2;
	ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);

	/* the gradient: gradInput, grad, output, then the forward's numbers and the mask */
	ck_assert_int_eq(gpuos_sig_parse("void (anonymous namespace)::softmax_warp_backward<float, "
					 "float, float, 7, true, false>(int)",
					 &s),
			 0);
	{
		static const unsigned boff[7] = {0, 8, 16, 24, 28, 32, 40};
		static const unsigned bsize[7] = {8, 8, 8, 4, 4, 4, 8};
		uint64_t out = 0x7f0000300000;
		void *bargs[7] = {&dst, &src, &out, &batch, &stride, &count, &mask};
		struct gpuos_kparam bk[7];
		for (unsigned k = 0; k < 7; k++)
			bk[k] = (struct gpuos_kparam){
			    .ordinal = k, .offset = boff[k], .size = bsize[k]};
		batch = 12, count = stride = 100, g[0] = 2, b[0] = 32, b[1] = 4;
		ck_assert_int_eq(gpuos_sig_decode_softmax(&s, bk, 7, bargs, g, b, &a), 0);
		ck_assert_uint_eq(a.output, out);
		ck_assert_int_eq(a.batch, 12);
		/* the forward's layout is not the backward's */
		ck_assert_int_eq(gpuos_sig_decode_softmax(&s, kp, 8, args, g, b, &a), -EINVAL);
		out = 0;
		ck_assert_int_eq(gpuos_sig_decode_softmax(&s, bk, 7, bargs, g, b, &a), -EINVAL);
		out = 0x7f0000300002; /* misaligned */
		ck_assert_int_eq(gpuos_sig_decode_softmax(&s, bk, 7, bargs, g, b, &a), -EINVAL);
	}
}
END_TEST

/* TensorInfo<T, unsigned int>'s 216 bytes: data, sizes[25], strides[25], dims. */
static void tinfo(uint8_t *b, uint64_t data, int32_t dims, const uint32_t *sizes,
		  const uint32_t *strides)
{
	memset(b, 0, 216);
	memcpy(b, &data, 8);
	memcpy(b + 8, sizes, 4 * (size_t)dims);
	memcpy(b + 108, strides, 4 * (size_t)dims);
	memcpy(b + 208, &dims, 4);
}

/*
 * index_select's kernel: GPT-2's embedding lookup (recorded in shared/data) and the other
 * variants parse to the family, element and index sizes; kernels of other templates or
 * types are not read. Its launch decodes into the task's block; what the launch promises
 * (dims, the reduced select dimension, innerSize, the block and grid) is checked.
 */
START_TEST(test_index_select)
{
	static const char gpt2[] =
	    "void at::native::(anonymous namespace)::indexSelectSmallIndex<float, long, unsigned "
	    "int, 2, 2, -2>(at::cuda::detail::TensorInfo<float, unsigned int>, "
	    "at::cuda::detail::TensorInfo<float const, unsigned int>, "
	    "at::cuda::detail::TensorInfo<long const, unsigned int>, int, int, unsigned int, long)";
	static const struct {
		const char *targs;
		unsigned elem, index; /* 0: not read */
		int dims, idx;
	} names[] = {
	    {"float, long, unsigned int, 2, 2, -2", 4, 8, 2, -2},
	    {"c10::complex<double>, int, unsigned int, -1, -1, -1", 16, 4, -1, -1},
	    {"bool, long, unsigned int, 1, 1, -2", 1, 8, 1, -2},
	    {"c10::BFloat16, int, unsigned int, 3, 3, -2", 2, 4, 3, -2},
	    {"float, long, unsigned int, 4, 4, -2", 0, 0, 0, 0},   /* not a variant of 2.11 */
	    {"float, long, unsigned int, 2, 3, -2", 0, 0, 0, 0},   /* nor mixed dims */
	    {"float, short, unsigned int, 2, 2, -2", 0, 0, 0, 0},  /* index types: int, long */
	    {"float, long, unsigned long, 2, 2, -2", 0, 0, 0, 0},  /* 32-bit indexing only */
	    {"at::Foo, long, unsigned int, 2, 2, -2", 0, 0, 0, 0}, /* a type of unknown size */
	};
	static struct gpuos_sig s;
	static uint8_t ti[3][216];
	struct gpuos_kparam kp[7];
	struct gpuos_cat_isel p;
	struct gpuos_cat_match m;
	char name[512], key[64];
	const uint32_t w_sizes[2] = {1, 128}, w_strides[2] = {128, 1};
	const uint32_t i_sizes[1] = {1}, i_strides[1] = {1};
	int32_t dsel = 0, ssel = 0;
	uint32_t inner = 128;
	int64_t limit = 50;
	void *args[7] = {ti[0], ti[1], ti[2], &dsel, &ssel, &inner, &limit};
	unsigned g[3] = {1, 1, 1}, b[3] = {128, 1, 1};
	uint64_t elems;

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(name, sizeof(name),
			 "void at::native::(anonymous namespace)::indexSelectSmallIndex<%s>(int)",
			 names[i].targs);
		ck_assert_int_eq(gpuos_sig_parse(name, &s), 0);
		if (!names[i].elem) {
			ck_assert_msg(s.family == GPUOS_SIG_NONE, "%s", name);
			ck_assert_int_eq(gpuos_cat_match(&s, &m), -ENOENT);
			continue;
		}
		ck_assert_msg(s.family == GPUOS_SIG_INDEX_SELECT, "%s", name);
		ck_assert_uint_eq(s.isel.elem, names[i].elem);
		ck_assert_uint_eq(s.isel.index, names[i].index);
		ck_assert_int_eq(s.isel.dst_dims, names[i].dims);
		ck_assert_int_eq(s.isel.idx_dims, names[i].idx);
		ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
		gpuos_cat_key(&m, key, sizeof(key));
		ck_assert_str_eq(key, GPUOS_CAT_ISEL_KEY);
	}
	/* another namespace's kernel of that name */
	ck_assert_int_eq(gpuos_sig_parse("void indexSelectSmallIndex<float, long, unsigned int, "
					 "2, 2, -2>(int)",
					 &s),
			 0);
	ck_assert_int_eq(s.family, GPUOS_SIG_NONE);

	/* GPT-2's lookup of one token in a 50-row table of width 128 */
	ck_assert_int_eq(gpuos_sig_parse(gpt2, &s), 0);
	ck_assert_int_eq(s.family, GPUOS_SIG_INDEX_SELECT);
	ck_assert_str_eq(s.dtype, "float");
	for (unsigned k = 0; k < 7; k++) {
		kp[k].ordinal = k;
		kp[k].offset = k < 3 ? 216 * k : 648 + 4 * (k - 3) + (k == 6 ? 4 : 0);
		kp[k].size = k < 3 ? 216 : k == 6 ? 8 : 4;
	}
	tinfo(ti[0], 0x7f0000200000, 2, w_sizes, w_strides);
	tinfo(ti[1], 0x7f0000100000, 2, w_sizes, w_strides);
	tinfo(ti[2], 0x7f0000300008, 1, i_sizes, i_strides);
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), 0);
	ck_assert_uint_eq(elems, 128);
	ck_assert_uint_eq(p.dst, 0x7f0000200000);
	ck_assert_uint_eq(p.src, 0x7f0000100000);
	ck_assert_uint_eq(p.idx, 0x7f0000300008);
	ck_assert_uint_eq(p.unit, 4);
	ck_assert_uint_eq(p.isize, 8);
	ck_assert_uint_eq(p.nidx, 1);
	ck_assert_uint_eq(p.istride, 1);
	ck_assert_uint_eq(p.inner, 128);
	ck_assert_uint_eq(p.dst_sel, 128);
	ck_assert_uint_eq(p.src_sel, 128);
	ck_assert_uint_eq(p.dst_dims, 2);
	ck_assert_uint_eq(p.src_sizes[1], 128);
	ck_assert_int_eq(p.limit, 50);

	/* what the launch promises */
	b[0] = 64; /* min(innerSize, 128) threads */
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), -EINVAL);
	b[0] = 128, g[0] = 2; /* a block with nothing to do */
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), -EINVAL);
	g[0] = 1, inner = 127; /* not the product of the sizes */
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), -EINVAL);
	inner = 128, ssel = 1; /* a select dimension that was not reduced */
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), -EINVAL);
	ssel = 0;
	tinfo(ti[2], 0x7f0000300004, 1, i_sizes, i_strides); /* not aligned for long */
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), -EINVAL);
	tinfo(ti[2], 0, 1, i_sizes, i_strides);
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), -EINVAL);
	tinfo(ti[2], 0x7f0000300008, 1, i_sizes, i_strides);
	{
		const uint32_t sz3[3] = {1, 1, 128}, st3[3] = {128, 128, 1};
		tinfo(ti[0], 0x7f0000200000, 3, sz3, st3); /* the template says 2 dims */
		ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems),
				 -EINVAL);
		tinfo(ti[0], 0x7f0000200002, 2, w_sizes, w_strides); /* misaligned float */
		ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems),
				 -EINVAL);
		tinfo(ti[0], 0x7f0000200000, 2, w_sizes, w_strides);
	}
	kp[5].size = 8; /* not the layout */
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), -EINVAL);
	kp[5].size = 4;
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 6, args, g, b, &p, &elems), -EINVAL);
	ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems), 0);

	/* any dims (-1): a 4-dim source, three indices read through their stride of 2 */
	snprintf(name, sizeof(name), "%s", gpt2);
	memcpy(strstr(name, "2, 2, -2"), "-1,-1,-1", 8);
	ck_assert_int_eq(gpuos_sig_parse(name, &s), 0);
	ck_assert_int_eq(s.isel.idx_dims, -1);
	{
		const uint32_t ssz[4] = {4, 6, 1, 5}, sst[4] = {1920, 160, 10, 2};
		const uint32_t dsz[3] = {24, 1, 5}, dst[3] = {15, 5, 1};
		const uint32_t isz[1] = {3}, ist[1] = {2};
		const uint32_t s5[5] = {4, 6, 1, 5, 1}, t5[5] = {1920, 160, 10, 2, 1};
		tinfo(ti[0], 0x7f0000200000, 3, dsz, dst);
		tinfo(ti[1], 0x7f0000100000, 4, ssz, sst);
		tinfo(ti[2], 0x7f0000300008, 1, isz, ist);
		dsel = 1, ssel = 2, inner = 120, limit = 8, b[0] = 120;
		ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems),
				 0);
		ck_assert_uint_eq(elems, 360);
		ck_assert_uint_eq(p.istride, 2);
		ck_assert_uint_eq(p.src_dims, 4);
		ck_assert_uint_eq(p.dst_sel, 5);
		ck_assert_uint_eq(p.src_sel, 10);
		tinfo(ti[1], 0x7f0000100000, 5, s5, t5); /* more dims than the operator takes */
		ck_assert_int_eq(gpuos_sig_decode_index_select(&s, kp, 7, args, g, b, &p, &elems),
				 -EINVAL);
	}
}
END_TEST

/* The GPT-2 decode's arange (int64 positions, int index) and a float one decode from the
 * lambda's captures; the launch's shape and the pointer's alignment are checked. */
START_TEST(test_arange_args)
{
	static const char gpt2[] =
	    "void (anonymous namespace)::elementwise_kernel_with_index<int, "
	    "at::native::arange_cuda_out(c10::Scalar const&, c10::Scalar const&, c10::Scalar "
	    "const&, at::Tensor&)::{lambda()#1}::operator()() const::{lambda()#4}::operator()() "
	    "const::{lambda(long)#1}>(int, at::native::arange_cuda_out(c10::Scalar const&, "
	    "c10::Scalar const&, c10::Scalar const&, at::Tensor&)::{lambda()#1}::operator()() "
	    "const::{lambda()#4}::operator()() const::{lambda(long)#1}, "
	    "function_traits<at::native::arange_cuda_out(c10::Scalar const&, c10::Scalar const&, "
	    "c10::Scalar const&, at::Tensor&)::{lambda()#1}::operator()() "
	    "const::{lambda()#4}::operator()() const::{lambda(long)#1}>::result_type*)";
	static struct gpuos_sig s;
	static char name[sizeof(gpt2)];
	struct gpuos_kparam kp[3] = {{.ordinal = 0, .offset = 0, .size = 4},
				     {.ordinal = 1, .offset = 8, .size = 24},
				     {.ordinal = 2, .offset = 32, .size = 8}};
	struct gpuos_arange_args a;
	struct gpuos_cat_match m;
	int32_t n = 130;
	int64_t cap[3] = {5, -3, 0x5000}; /* xstart, xstep, the lambda's host pointer */
	uint64_t out = 0x7f0000100008;
	void *args[3] = {&n, cap, &out};
	unsigned g[3] = {3, 1, 1}, b[3] = {64, 1, 1};
	char key[64], *p;

	ck_assert_int_eq(gpuos_sig_parse(gpt2, &s), 0);
	ck_assert_int_eq(s.family, GPUOS_SIG_ARANGE);
	ck_assert_str_eq(s.dtype, "long");
	ck_assert_uint_eq(s.arange.index, 4);
	ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
	gpuos_cat_key(&m, key, sizeof(key));
	ck_assert_str_eq(key, "arange.int64");
	ck_assert_int_eq(gpuos_sig_decode_arange(&s, kp, 3, args, g, b, &a), 0);
	ck_assert_uint_eq(a.n, 130);
	ck_assert_uint_eq(a.out, out);
	ck_assert_uint_eq(a.start, 5);
	ck_assert_uint_eq(a.step, (uint64_t)-3);
	/* what the kernel's launch promises */
	g[0] = 4; /* not ceil(N / 64) */
	ck_assert_int_eq(gpuos_sig_decode_arange(&s, kp, 3, args, g, b, &a), -EINVAL);
	g[0] = 3, b[0] = 128;
	ck_assert_int_eq(gpuos_sig_decode_arange(&s, kp, 3, args, g, b, &a), -EINVAL);
	b[0] = 64, out += 4; /* not aligned for int64 */
	ck_assert_int_eq(gpuos_sig_decode_arange(&s, kp, 3, args, g, b, &a), -EINVAL);
	out -= 4, n = 0;
	ck_assert_int_eq(gpuos_sig_decode_arange(&s, kp, 3, args, g, b, &a), -EINVAL);
	n = 130, kp[1].size = 16; /* not the lambda of long captures */
	ck_assert_int_eq(gpuos_sig_decode_arange(&s, kp, 3, args, g, b, &a), -EINVAL);
	kp[1].size = 24;
	ck_assert_int_eq(gpuos_sig_decode_arange(&s, kp, 2, args, g, b, &a), -EINVAL);

	/* float (#7): float captures and the host pointer at 8, the output at 24 */
	memcpy(name, gpt2, sizeof(gpt2));
	while ((p = strstr(name, "{lambda()#4}")))
		p[10] = '7';
	ck_assert_int_eq(gpuos_sig_parse(name, &s), 0);
	ck_assert_str_eq(s.dtype, "float");
	ck_assert_int_eq(gpuos_cat_match(&s, &m), 0);
	gpuos_cat_key(&m, key, sizeof(key));
	ck_assert_str_eq(key, "arange.float32");
	{
		struct gpuos_kparam fk[3] = {{.ordinal = 0, .offset = 0, .size = 4},
					     {.ordinal = 1, .offset = 8, .size = 16},
					     {.ordinal = 2, .offset = 24, .size = 8}};
		float fc[4] = {0.5f, 0.25f};
		uint32_t bits;
		void *fa[3] = {&n, fc, &out};
		ck_assert_int_eq(gpuos_sig_decode_arange(&s, fk, 3, fa, g, b, &a), 0);
		memcpy(&bits, &fc[1], 4);
		ck_assert_uint_eq(a.step, bits);
		ck_assert_int_eq(gpuos_sig_decode_arange(&s, kp, 3, fa, g, b, &a), -EINVAL);
	}
	/* a dispatch case past the nine (a type PyTorch would add): not read */
	{
		static char ten[sizeof(gpt2) + 8];
		const char *q = gpt2;
		size_t o = 0;
		while ((p = strstr(q, "{lambda()#4}"))) {
			o += (size_t)snprintf(ten + o, sizeof(ten) - o, "%.*s{lambda()#10}",
					      (int)(p - q), q);
			q = p + strlen("{lambda()#4}");
		}
		snprintf(ten + o, sizeof(ten) - o, "%s", q);
		ck_assert_int_eq(gpuos_sig_parse(ten, &s), 0);
		ck_assert_int_eq(s.family, GPUOS_SIG_NONE);
	}
}
END_TEST

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	struct gpuos_jit_req probe = {.src = "x", .len = 1, .sm = 90, .cache_dir = "/nonexistent"};
	char path[512];
	Suite *s = suite_create("catalog");
	TCase *tc = tcase_create("catalog");
	bool jit = gpuos_jit_cache_path(&probe, path, sizeof(path)) != -ENOENT;
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_recorded_match);
	tcase_add_test(tc, test_recorded_scalars);
	tcase_add_test(tc, test_cast_word);
	tcase_add_test(tc, test_functor_sizes);
	tcase_add_test(tc, test_dyncast_refused);
	tcase_add_test(tc, test_lambda_index);
	tcase_add_test(tc, test_libtorch_coverage);
	tcase_add_test(tc, test_reduce_params);
	tcase_add_test(tc, test_layer_norm_args);
	tcase_add_test(tc, test_concat_args);
	tcase_add_test(tc, test_masked_fill);
	tcase_add_test(tc, test_arange_names);
	tcase_add_test(tc, test_arange_args);
	tcase_add_test(tc, test_index_select);
	tcase_add_test(tc, test_index_select_names);
	tcase_add_test(tc, test_softmax_names);
	tcase_add_test(tc, test_softmax_args);
	if (jit && mkdtemp(cachedir)) {
		tcase_add_test(tc, test_sources_build);
		tcase_add_test(tc, test_stack);
		tcase_add_test(tc, test_const_banks);
	} else
		fprintf(stderr, "check_catalog: no NVRTC/nvJitLink: operator builds skipped\n");
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (jit)
		nftw(cachedir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed ? 1 : 0;
}
