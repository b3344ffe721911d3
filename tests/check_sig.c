// SPDX-License-Identifier: MIT
/*
 * The catalog's first stage on PyTorch 2.11's own names (tests/data): every recorded launch
 * of the four families parses to the family, widths, functor and element type its op says,
 * and the recorded argument bytes of vectorized kernels decode (N, then the arrays'
 * pointers after the functor) consistently with the launch configuration.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/sig.h"

#include "tests/records.h"

START_TEST(test_normalize)
{
	char out[256];

	ck_assert_int_eq(gpuos_sig_normalize("a::f(int)::{lambda()#12}::operator()() const::"
					     "{lambda(float)#3}",
					     out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "a::f(int)::{lambda()#}::operator()() const::{lambda(float)#}");
	ck_assert_int_eq(gpuos_sig_normalize("at::native::_GLOBAL__N__d2ba64fb_11_Foo_cu::k<int>",
					     out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "at::native::(anonymous namespace)::k<int>");
	ck_assert_int_eq(gpuos_sig_normalize("abcdef", out, 4), -ENAMETOOLONG);
}
END_TEST

/* op key of the record -> what the name must say */
static const struct {
	const char *op;
	int family;
	unsigned vec, narrays;
	const char *fop, *dtype;
} want[] = {
    {"add", GPUOS_SIG_VECTORIZED, 4, 3, "CUDAFunctor_add", "float"},
    {"add_s", GPUOS_SIG_VECTORIZED, 4, 2, "CUDAFunctorOnSelf_add", "float"},
    {"rsub_s", GPUOS_SIG_VECTORIZED, 4, 2, "CUDAFunctorOnOther_add", "float"},
    {"mul", GPUOS_SIG_VECTORIZED, 4, 3, "BinaryFunctor:MulFunctor", "float"},
    {"mul_s", GPUOS_SIG_VECTORIZED, 4, 2, "AUnaryFunctor:MulFunctor", "float"},
    {"div", GPUOS_SIG_VECTORIZED, 4, 3, "BinaryFunctor:DivFunctor", "float"},
    {"div_s", GPUOS_SIG_VECTORIZED, 4, 2, "BUnaryFunctor:MulFunctor", "float"},
    {"neg", GPUOS_SIG_VECTORIZED, 4, 2, "neg_kernel_cuda", "float"},
    {"sigmoid", GPUOS_SIG_VECTORIZED, 4, 2, "sigmoid_kernel_cuda", "float"},
    {"tanh", GPUOS_SIG_VECTORIZED, 4, 2, "tanh_kernel_cuda", "float"},
    {"gelu", GPUOS_SIG_VECTORIZED, 4, 2, "GeluCUDAKernelImpl", "float"},
    {"silu", GPUOS_SIG_VECTORIZED, 4, 2, "silu_kernel", "float"},
    {"exp", GPUOS_SIG_VECTORIZED, 4, 2, "exp_kernel_cuda", "float"},
    {"fill", GPUOS_SIG_VECTORIZED, 4, 1, "FillFunctor", "float"},
    {"to_half", GPUOS_SIG_VECTORIZED, 8, 2, "float16_copy_kernel_cuda", "float"},
    {"mixed_add", GPUOS_SIG_UNROLLED, 0, 3, "CUDAFunctor_add", "float"},
    {"mul_bcast", GPUOS_SIG_ELEMENTWISE, 128, 0, "BinaryFunctor:MulFunctor", "float"},
    {"amax", GPUOS_SIG_REDUCE, 512, 0, "func_wrapper_t", "float"},
    {"argmax", GPUOS_SIG_REDUCE, 512, 0, "ArgMaxOps", "float"},
};

START_TEST(test_recorded_names)
{
	unsigned checked = 0, families = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		ck_assert_int_eq(gpuos_sig_parse(recs[i].demangled, &s), 0);
		families += s.family != GPUOS_SIG_NONE;
		for (size_t k = 0; recs[i].op && k < sizeof(want) / sizeof(want[0]); k++) {
			if (strcmp(recs[i].op, want[k].op))
				continue;
			ck_assert_msg(
			    s.family == want[k].family && s.vec == want[k].vec &&
				s.narrays == want[k].narrays && !strcmp(s.op, want[k].fop) &&
				!strcmp(s.dtype, want[k].dtype),
			    "%s: family %d vec %u narrays %u op '%s' dtype '%s' (functor %s)",
			    recs[i].op, s.family, s.vec, s.narrays, s.op, s.dtype, s.functor);
			checked++;
		}
	}
	ck_assert_uint_eq(checked, sizeof(want) / sizeof(want[0]));
	ck_assert_uint_ge(families, 45);
}
END_TEST

/* "P 0:4=00040000 4:4=0000803f 8:24=..." -> the parameter at offset @off, as bytes */
static int param_bytes(const char *p, unsigned off, uint8_t *out, unsigned *size)
{
	char key[16];
	int n = snprintf(key, sizeof(key), " %u:", off);
	const char *q = strstr(p, key);

	if (!q)
		return -1;
	q += n;
	*size = (unsigned)strtoul(q, (char **)&q, 10);
	if (*q++ != '=')
		return -1;
	for (unsigned i = 0; i < *size && i < 4096; i++)
		sscanf(q + 2 * i, "%2hhx", &out[i]);
	return 0;
}

/*
 * Vectorized kernels: (int N, F f, std::array<char*, NT> data). N is at 0, the array is the
 * last parameter and holds NT device pointers; the grid is ceil(N / 1024): 128 threads of 8
 * elements each in 2.11 (shared/data's README), whatever the vector width.
 */
START_TEST(test_vectorized_layout)
{
	unsigned checked = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		uint8_t b[4096];
		unsigned size, grid = 0, block = 0;
		int32_t n;

		gpuos_sig_parse(recs[i].demangled, &s);
		if (s.family != GPUOS_SIG_VECTORIZED)
			continue;
		ck_assert_int_eq(param_bytes(recs[i].params, 0, b, &size), 0);
		ck_assert_uint_eq(size, 4);
		memcpy(&n, b, 4);
		sscanf(recs[i].launch, "G %u 1 1 B %u", &grid, &block);
		ck_assert_uint_eq(block, 128);
		ck_assert_int_gt(n, 0);
		unsigned per_block = 128 * 8;
		ck_assert_msg(grid == (unsigned)((n + per_block - 1) / per_block),
			      "%s: N %d grid %u", recs[i].op ? recs[i].op : "?", n, grid);
		/* the last parameter: NT pointers */
		const char *last = strrchr(recs[i].params, ' ');
		unsigned off = (unsigned)strtoul(last + 1, NULL, 10);
		ck_assert_int_eq(param_bytes(recs[i].params, off, b, &size), 0);
		ck_assert_uint_eq(size, 8 * s.narrays);
		for (unsigned k = 0; k < s.narrays; k++) {
			uint64_t ptr;
			memcpy(&ptr, b + 8 * k, 8);
			ck_assert_uint_ne(ptr, 0);
		}
		checked++;
	}
	ck_assert_uint_ge(checked, 30);
}
END_TEST

static const struct {
	const char *op;
	int rc;
	unsigned nscalars;
	double s0, s1;
} decoded[] = {
    {"add", 0, 1, 1.0, 0},	 {"add_alpha", 0, 1, 2.0, 0},
    {"add_s", 0, 2, 1.5, 1.0},	 {"sub_s", 0, 2, 1.5, -1.0},
    {"rsub_s", 0, 2, 1.5, -1.0}, {"mul", 0, 0, 0, 0},
    {"mul_s", 0, 1, 2.5, 0},	 {"div", 0, 0, 0, 0},
    {"div_s", 0, 1, 0.4f, 0},	 {"neg", 0, 0, 0, 0},
    {"sigmoid", 0, 0, 0, 0},	 {"fill", 0, 1, 1.0, 0},
    {"zero", 0, 1, 0.0, 0},	 {"to_half", 0, 0, 0, 0},
    {"relu", 0, 2, 0, 0},	 {"threshold", 0, 2, 0.1f, 0.0},
    {"pow2", 0, 0, 0, 0},	 {"addcmul", 0, 1, 0.5, 0},
    {"where", 0, 0, 0, 0},	 {"add_half", 0, 1, 1.0, 0},
    {"mul_bf16", 0, 0, 0, 0},	 {"silu_bf16", 0, 0, 0, 0},
};

/* The recorded vectorized launches decode to the scalars their ops were called with. */
START_TEST(test_decode_vectorized)
{
	unsigned checked = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_kparam kp[16];
		struct gpuos_ew_args a;
		static uint8_t store[8192];
		void *args[16];

		if (!rec_of(i, GPUOS_SIG_VECTORIZED, &s))
			continue;
		unsigned n = layout(recs[i].params, kp, args, store);
		int rc = gpuos_sig_decode_vectorized(&s, kp, n, args, &a);
		for (size_t k = 0; k < sizeof(decoded) / sizeof(decoded[0]); k++) {
			if (strcmp(decoded[k].op, recs[i].op))
				continue;
			ck_assert_msg(rc == decoded[k].rc, "%s: rc %d", recs[i].op, rc);
			if (!rc) {
				ck_assert_int_eq(a.n, 1024);
				ck_assert_uint_eq(a.nscalars, decoded[k].nscalars);
				ck_assert_msg(a.nscalars < 1 || a.scalar[0] == decoded[k].s0,
					      "%s: %g", recs[i].op, a.scalar[0]);
				ck_assert(a.nscalars < 2 || a.scalar[1] == decoded[k].s1);
			}
			checked++;
		}
		/* whatever the op: a null output pointer or a wrong layout is refused */
		if (!rc) {
			memset(args[2], 0, 8);
			ck_assert_int_eq(gpuos_sig_decode_vectorized(&s, kp, n, args, &a), -EINVAL);
			kp[2].size += 8;
			ck_assert_int_eq(gpuos_sig_decode_vectorized(&s, kp, n, args, &a), -EINVAL);
			ck_assert_int_eq(gpuos_sig_decode_vectorized(&s, kp, n - 1, args, &a),
					 -EINVAL);
		}
	}
	ck_assert_uint_eq(checked, sizeof(decoded) / sizeof(decoded[0]));
}
END_TEST

/* The recorded broadcast, strided and 0-dim launches decode to their shapes and strides;
 * a divisor whose magic numbers do not match, or dims out of range, is refused. */
START_TEST(test_decode_elementwise)
{
	unsigned checked = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_kparam kp[16];
		struct gpuos_oc_args a;
		static uint8_t store[8192];
		void *args[16];

		if (!rec_of(i, GPUOS_SIG_ELEMENTWISE, &s))
			continue;
		unsigned n = layout(recs[i].params, kp, args, store);
		int rc = gpuos_sig_decode_elementwise(&s, kp, n, args, &a);
		ck_assert_msg(rc == 0, "%s: %d", recs[i].op, rc);
		if (!strcmp(recs[i].op, "mul_0dim_cuda")) {
			ck_assert_int_eq(a.dims, 1);
			ck_assert_uint_eq(a.sizes[0], 1024);
			ck_assert_uint_eq(a.ew.narrays, 3);
			ck_assert_uint_eq(a.strides[0][2], 0); /* the 0-dim operand */
			ck_assert_uint_eq(a.ew.nscalars, 0);
		} else if (!strcmp(recs[i].op, "mul_bcast")) {
			ck_assert_int_eq(a.dims, 2);
			ck_assert_uint_eq(a.sizes[0], 256);
			ck_assert_uint_eq(a.sizes[1], 4);
			ck_assert_uint_eq(a.strides[0][1], 4);
			ck_assert_uint_eq(a.strides[1][1], 1024);
			ck_assert_uint_eq(a.strides[1][2], 0); /* broadcast along dim 1 */
		} else if (!strcmp(recs[i].op, "mul_strided")) {
			ck_assert_int_eq(a.dims, 1);
			ck_assert_uint_eq(a.ew.narrays, 2);
			ck_assert_uint_eq(a.strides[0][0], 4);
			ck_assert_uint_eq(a.strides[0][1], 8);
			ck_assert_uint_eq(a.ew.nscalars, 1);
			ck_assert(a.ew.scalar[0] == 2.0);
		} else {
			continue;
		}
		checked++;
		/* a wrong magic number, then dims out of range */
		uint8_t *c = args[1];
		c[8] ^= 1;
		ck_assert_int_eq(gpuos_sig_decode_elementwise(&s, kp, n, args, &a), -EINVAL);
		c[8] ^= 1;
		int bad = 26;
		memcpy(c, &bad, 4);
		ck_assert_int_eq(gpuos_sig_decode_elementwise(&s, kp, n, args, &a), -EINVAL);
	}
	ck_assert_uint_eq(checked, 3);
}
END_TEST

/* The recorded reductions: their ReduceOp decoded; the big sum (128 blocks an output) is
 * valid but not the simple form; broken ones do not validate. */
START_TEST(test_decode_reduce)
{
	unsigned simple = 0, other = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_kparam kp[16];
		struct gpuos_reduce_args a;
		static uint8_t store[8192];
		unsigned g[3], b[3], smem;
		void *args[16];

		if (!rec_of(i, GPUOS_SIG_REDUCE, &s))
			continue;
		ck_assert_int_eq(sscanf(recs[i].launch, "G %u %u %u B %u %u %u S %u", &g[0], &g[1],
					&g[2], &b[0], &b[1], &b[2], &smem),
				 7);
		unsigned n = layout(recs[i].params, kp, args, store);
		int rc = gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a);
		const char *op = recs[i].op;

		/* the accumulator's size: (float, int64) for argmax */
		ck_assert_int_eq(a.element_size_bytes, strcmp(recs[i].op, "argmax") ? 4 : 16);
		ck_assert(a.src && a.dst[0]);
		if (!strcmp(op, "sum_big")) {
			ck_assert_int_eq(rc, -ENOTSUP);
			ck_assert_int_eq(a.ctas_per_output, 128);
			other++;
			continue;
		}
		ck_assert_msg(rc == 0, "%s: %d", op, rc);
		simple++;
		ck_assert_uint_eq(a.head, strcmp(op, "argmax") ? 8 : 24);
		ck_assert_int_eq(a.num_threads, (int)(b[0] * b[1]));
		if (!strcmp(op, "sum")) {
			ck_assert_int_eq(a.num_inputs, 1024);
			ck_assert_int_eq(a.num_outputs, 1);
			ck_assert(a.vectorize_input);
			ck_assert_int_eq(a.in_dims, 1);
			ck_assert_uint_eq(a.in_sizes[0], 1024);
			ck_assert_uint_eq(a.in_strides[0], 4);
			ck_assert_int_eq(a.out_dims, 0);
			float ident;
			memcpy(&ident, a.head_bytes + 4, 4);
			ck_assert(ident == 0.0f);
		} else if (!strcmp(op, "mean")) {
			float factor;
			memcpy(&factor, a.head_bytes, 4); /* MeanOps' factor, read from the bytes */
			ck_assert(factor == 1.0f / 1024);
		}
		/* not the simple form: a scratch buffer, or blocks sharing an output */
		uint8_t *p = args[0];
		unsigned ptrs = (a.head + 64 + 404 + 504 + 7) & ~7u;
		p[ptrs + 24] ^= 0x10; /* acc_buf */
		ck_assert_int_eq(gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a), -ENOTSUP);
		p[ptrs + 24] ^= 0x10;
		p[ptrs + 56] = 1; /* accumulate */
		ck_assert_int_eq(gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a), -ENOTSUP);
		p[ptrs + 56] = 0;
		/* broken: a grid that does not match the config, a wrong divider, no source */
		g[0]++;
		ck_assert_int_eq(gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a), -EINVAL);
		g[0]--;
		p[a.head + 64 + 8] ^= 1; /* the input calculator's first m1 */
		ck_assert_int_eq(gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a), -EINVAL);
		p[a.head + 64 + 8] ^= 1;
		uint64_t src;
		memcpy(&src, p + ptrs, 8);
		memset(p + ptrs, 0, 8);
		ck_assert_int_eq(gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a), -EINVAL);
		memcpy(p + ptrs, &src, 8);
		ck_assert_int_eq(gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a), 0);
		kp[0].size += 8; /* a ReduceOp of a size no layout gives */
		ck_assert_int_eq(gpuos_sig_decode_reduce(&s, kp, n, args, g, b, &a), -EINVAL);
	}
	ck_assert_uint_eq(simple, 7);
	ck_assert_uint_eq(other, 1);
}
END_TEST

/* The recorded float + half add (mixed dtypes): casts on load and store, decoded. */
/* Every family has a name (gpuos inspect prints it); other values have none. */
/* The worker's strided operators divide by IntDivider's magic: exact for every n they meet. */
static bool div_ok(uint32_t n, uint32_t d)
{
	uint32_t m1, sh;

	gpuos_sig_divider(d, &m1, &sh);
	uint64_t t = (((uint64_t)n * m1) >> 32) + n;

	return t < (1ull << 32) && (uint32_t)(t >> sh) == n / d;
}

START_TEST(test_divider)
{
	uint64_t x = 88172645463325252ull; /* xorshift: a fixed, wide spread of n and d */

	/* plain checks, one assertion at the end: Check marks every assertion it passes */
	for (uint32_t d = 1; d <= 4096; d++)
		for (uint32_t n = 0; n < 3 * d + 8; n++)
			if (!div_ok(n, d))
				ck_abort_msg("%u / %u", n, d);
	for (int k = 0; k < 200000; k++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint32_t d = (uint32_t)(x >> 33) % INT32_MAX + 1, n = (uint32_t)x & INT32_MAX;

		if (k & 1) /* small divisors, as tensor sizes mostly are */
			d = d % 5000 + 1;
		/* n, the multiple of d at or below it and the number before that, the largest */
		if (!div_ok(n, d) || !div_ok(n - n % d, d) || !div_ok(INT32_MAX, d) ||
		    (n >= d && !div_ok(n - n % d - 1, d)))
			ck_abort_msg("%u / %u", n, d);
	}
	for (uint32_t s = 1; s < 31; s++)
		for (uint32_t d = (1u << s) - 1; d <= (1u << s) + 1; d++)
			if (!div_ok(INT32_MAX, d) || !div_ok(INT32_MAX - 1, d) ||
			    !div_ok(INT32_MAX - INT32_MAX % d, d))
				ck_abort_msg("2^%u: %u", s, d);
	ck_assert(div_ok(INT32_MAX, INT32_MAX) && div_ok(INT32_MAX - 1, INT32_MAX));
}
END_TEST

START_TEST(test_family_names)
{
	for (int f = GPUOS_SIG_VECTORIZED; f <= GPUOS_SIG_SOFTMAX; f++)
		ck_assert_msg(gpuos_sig_family_name(f)[0], "family %d has no name", f);
	ck_assert_str_eq(gpuos_sig_family_name(GPUOS_SIG_LAYER_NORM), "layer_norm");
	ck_assert_str_eq(gpuos_sig_family_name(GPUOS_SIG_CONCAT), "concat");
	ck_assert_str_eq(gpuos_sig_family_name(GPUOS_SIG_NONE), "");
	ck_assert_str_eq(gpuos_sig_family_name(GPUOS_SIG_ARANGE), "arange");
	ck_assert_str_eq(gpuos_sig_family_name(GPUOS_SIG_INDEX_SELECT), "index_select");
	ck_assert_str_eq(gpuos_sig_family_name(GPUOS_SIG_SOFTMAX), "softmax");
	ck_assert_str_eq(gpuos_sig_family_name(GPUOS_SIG_SOFTMAX + 1), "");
	ck_assert_str_eq(gpuos_sig_family_name(-1), "");
}
END_TEST

START_TEST(test_decode_unrolled)
{
	unsigned checked = 0;

	for (size_t i = 0; i < NRECS; i++) {
		struct gpuos_sig s;
		struct gpuos_kparam kp[16];
		struct gpuos_ur_args a;
		static uint8_t store[8192];
		void *args[16];

		if (!rec_of(i, GPUOS_SIG_UNROLLED, &s))
			continue;
		unsigned n = layout(recs[i].params, kp, args, store);
		ck_assert_int_eq(gpuos_sig_decode_unrolled(&s, kp, n, args, &a), 0);
		ck_assert_str_eq(recs[i].op, "mixed_add");
		ck_assert_uint_eq(a.nin, 2);
		ck_assert_int_eq(a.in_dtype[0], 6); /* Float */
		ck_assert_int_eq(a.in_dtype[1], 5); /* Half */
		ck_assert_int_eq(a.out_dtype, 6);
		ck_assert(a.ew.scalar[0] == 1.0); /* alpha */
		/* an element size that is not the type's, an unknown type */
		uint8_t *l = args[5];
		l[4] = 8;
		ck_assert_int_eq(gpuos_sig_decode_unrolled(&s, kp, n, args, &a), -EINVAL);
		l[4] = 4;
		l[1] = 9; /* ComplexFloat */
		ck_assert_int_eq(gpuos_sig_decode_unrolled(&s, kp, n, args, &a), -EINVAL);
		checked++;
	}
	ck_assert_uint_eq(checked, 1);
}
END_TEST

char *gpuos_demangle(const char *mangled); /* interpose/registry.c */

/*
 * Every name of the four families (mangled at::native::...) among the ~131k kernels
 * libtorch_cuda.so 2.11 registers (tests/data/torch211_family_names.gz): each parses, and names its
 * functor and element type.
 */
START_TEST(test_libtorch_names)
{
	FILE *f = popen("gzip -dc tests/data/torch211_family_names.gz", "r");
	static char line[65536];
	unsigned n = 0, fam = 0, named = 0, typed = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		struct gpuos_sig s;
		line[strcspn(line, "\n")] = 0;
		char *dm = gpuos_demangle(line);
		ck_assert_ptr_nonnull(dm);
		ck_assert_msg(gpuos_sig_parse(dm, &s) == 0, "does not parse: %s", dm);
		n++;
		fam += s.family != GPUOS_SIG_NONE;
		named += s.op[0] != 0;
		typed += s.dtype[0] != 0;
		free(dm);
	}
	pclose(f);
	fprintf(stderr,
		"libtorch: %u names, %u of a family, %u with a functor name, %u with "
		"a type\n",
		n, fam, named, typed);
	ck_assert_uint_gt(n, 10000);
	ck_assert_uint_ge(fam * 100, n * 99);
	ck_assert_uint_ge(named * 100, fam * 95);
	ck_assert_uint_ge(typed * 100, fam * 90);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("sig");
	TCase *tc = tcase_create("names");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_normalize);
	tcase_add_test(tc, test_recorded_names);
	tcase_add_test(tc, test_vectorized_layout);
	tcase_add_test(tc, test_libtorch_names);
	tcase_add_test(tc, test_decode_vectorized);
	tcase_add_test(tc, test_decode_elementwise);
	tcase_add_test(tc, test_decode_reduce);
	tcase_add_test(tc, test_decode_unrolled);
	tcase_add_test(tc, test_family_names);
	tcase_add_test(tc, test_divider);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
