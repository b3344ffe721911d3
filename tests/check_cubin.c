// SPDX-License-Identifier: MIT
/*
 * ptx_lift: cubin parsing (kernels, parameter layout, registers, shared memory, hazards) on
 * nvcc-built fixtures, and on truncated and corrupted copies of them.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_lift/ptx_lift.h"
#include "tests/fixtures/expect.h"

/* The cubin of @arch from one of the fatbin fixtures, decompressed. */
static void *cubin_from_fatbin(const char *file, unsigned arch, size_t *len)
{
	struct gpuos_fatbin_entry e;
	size_t flen;
	void *fb = fx_load(file, &flen), *raw;

	ck_assert_int_eq(gpuos_fatbin_pick(fb, flen, GPUOS_FATBIN_CUBIN, arch, &e), 0);
	ck_assert_uint_eq(e.arch, arch);
	ck_assert_int_eq(gpuos_fatbin_payload(&e, &raw, len), 0);
	free(fb);
	return raw;
}

static int kernels_fatbin(const void *fatbin, size_t len, void *arg)
{
	/* The host fixtures' first fatbin is nvcc's device-link stub; ours comes last. */
	const void **last = arg;

	last[0] = fatbin;
	last[1] = (const void *)(uintptr_t)len;
	return 0;
}

START_TEST(test_sm90)
{
	struct gpuos_cubin *c = NULL;
	size_t len;
	void *buf = fx_load("kernels_sm90.cubin", &len);

	ck_assert_int_eq(gpuos_cubin_open(buf, len, &c), 0);
	/* The cubin keeps its own copy: the caller may free or reuse the buffer at once. */
	memset(buf, 0, len);
	free(buf);
	fx_check_cubin(c, 90);
	ck_assert_ptr_null(gpuos_cubin_kernel(c, FX_NKERNELS));
	ck_assert_ptr_null(gpuos_cubin_find(c, "fx_nope"));
	ck_assert_ptr_null(gpuos_cubin_find(c, NULL));
	for (unsigned i = 0; i < gpuos_cubin_count(c); i++)
		ck_assert_ptr_eq(gpuos_cubin_find(c, gpuos_cubin_kernel(c, i)->name),
				 gpuos_cubin_kernel(c, i));
	gpuos_cubin_close(c);
}
END_TEST

/* sm_120 (e_flags 0x6007802) and sm_75 (0x6004b04): CUDA 13 keeps the SM in bits 8-15. */
START_TEST(test_sm120)
{
	struct gpuos_cubin *c = NULL;
	size_t len;
	void *buf = cubin_from_fatbin("kernels.fatbin", 120, &len);

	ck_assert_int_eq(gpuos_cubin_open(buf, len, &c), 0);
	fx_check_cubin(c, 120);
	gpuos_cubin_close(c);
	free(buf);
}
END_TEST

START_TEST(test_sm75)
{
	const void *last[2] = {0};
	struct gpuos_fatbin_entry e;
	struct gpuos_cubin *c = NULL;
	size_t len, rlen;
	void *buf = fx_load("kernels_default", &len), *raw;

	ck_assert_int_eq(gpuos_hostelf_for_each_fatbin(buf, len, kernels_fatbin, last), 0);
	ck_assert_int_eq(
	    gpuos_fatbin_pick(last[0], (size_t)(uintptr_t)last[1], GPUOS_FATBIN_CUBIN, 75, &e), 0);
	ck_assert_int_eq(gpuos_fatbin_payload(&e, &raw, &rlen), 0);
	ck_assert_int_eq(gpuos_cubin_open(raw, rlen, &c), 0);
	/* No clusters on sm_75; the grid-sync helper function is not counted as a kernel. */
	fx_check_cubin(c, 75);
	gpuos_cubin_close(c);
	free(raw);
	free(buf);
}
END_TEST

START_TEST(test_not_a_cubin)
{
	unsigned char junk[128] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
	struct gpuos_cubin *c = (struct gpuos_cubin *)1;
	size_t len;
	void *host = fx_load("kernels_none", &len);

	ck_assert_int_eq(gpuos_cubin_open(NULL, 100, &c), -EINVAL);
	ck_assert_int_eq(gpuos_cubin_open(junk, sizeof(junk), NULL), -EINVAL);
	ck_assert_int_eq(gpuos_cubin_open(junk, sizeof(junk), &c), -EINVAL);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(gpuos_cubin_open(junk + 1, sizeof(junk) - 1, &c), -EINVAL);
	/* A host executable is an ELF, but not for EM_CUDA. */
	ck_assert_int_eq(gpuos_cubin_open(host, len, &c), -EINVAL);
	gpuos_cubin_close(NULL);
	ck_assert_uint_eq(gpuos_cubin_arch(NULL), 0);
	ck_assert_uint_eq(gpuos_cubin_count(NULL), 0);
	ck_assert_ptr_null(gpuos_cubin_kernel(NULL, 0));
	free(host);
}
END_TEST

/* Everything a caller reads from a parsed cubin; -fsanitize catches bad pointers. */
static int exercise_cubin(const void *buf, size_t len)
{
	struct gpuos_cubin *c = NULL;
	unsigned long sum = 0;
	int ret;

	ret = gpuos_cubin_open(buf, len, &c);
	ck_assert_int_le(ret, 0);
	if (ret) {
		ck_assert_ptr_null(c);
		return ret;
	}
	for (unsigned i = 0; i < gpuos_cubin_count(c); i++) {
		const struct gpuos_kinfo *k = gpuos_cubin_kernel(c, i);

		sum += strlen(k->name);
		for (unsigned j = 0; j < k->nparams; j++) {
			ck_assert_uint_eq(k->params[j].ordinal, j);
			ck_assert_uint_le(k->params[j].offset + k->params[j].size, k->param_bytes);
		}
	}
	(void)sum;
	gpuos_cubin_close(c);
	return 0;
}

START_TEST(test_truncated)
{
	size_t len;
	void *buf = fx_load("kernels_sm90.cubin", &len);

	/* The section headers come last: every proper prefix must be refused. */
	for (size_t n = 0; n < len; n++) {
		void *t = malloc(n ? n : 1);

		memcpy(t, buf, n);
		ck_assert_msg(exercise_cubin(t, n) < 0, "prefix of %zu bytes accepted", n);
		free(t);
	}
	ck_assert_int_eq(exercise_cubin(buf, len), 0);
	free(buf);
}
END_TEST

START_TEST(test_corrupted)
{
	unsigned seed = 4242;
	size_t len;
	unsigned char *buf = fx_load("kernels_sm90.cubin", &len), *t = malloc(len);

	for (int iter = 0; iter < 3000; iter++) {
		memcpy(t, buf, len);
		for (int i = 0; i < 1 + iter % 4; i++) {
			/* Alternate: anywhere; the ELF header and the .nv.info sections up front.
			 */
			size_t at = rand_r(&seed) % (iter & 1 ? len : len / 3);

			t[at] ^= 1u << (rand_r(&seed) % 8);
		}
		exercise_cubin(t, len);
	}
	free(t);
	free(buf);
}
END_TEST

struct thread_arg {
	const void *buf;
	size_t len;
	int fails;
};

static void *open_many(void *p)
{
	struct thread_arg *a = p;

	for (int i = 0; i < 200; i++) {
		struct gpuos_cubin *c = NULL;

		if (gpuos_cubin_open(a->buf, a->len, &c) || gpuos_cubin_count(c) != FX_NKERNELS ||
		    gpuos_cubin_find(c, "fx_elementwise")->param_bytes != 58)
			a->fails++;
		gpuos_cubin_close(c);
	}
	return NULL;
}

START_TEST(test_threads)
{
	struct thread_arg a[4];
	pthread_t t[4];
	size_t len;
	void *buf = fx_load("kernels_sm90.cubin", &len);

	for (int i = 0; i < 4; i++) {
		a[i] = (struct thread_arg){.buf = buf, .len = len};
		ck_assert_int_eq(pthread_create(&t[i], NULL, open_many, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(a[i].fails, 0);
	}
	free(buf);
}
END_TEST

static Suite *cubin_suite(void)
{
	Suite *s = suite_create("cubin");
	TCase *tc = tcase_create("fixtures");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_sm90);
	tcase_add_test(tc, test_sm120);
	tcase_add_test(tc, test_sm75);
	tcase_add_test(tc, test_not_a_cubin);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_corrupted);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	fx_require("kernels_sm90.cubin");
	sr = srunner_create(cubin_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
