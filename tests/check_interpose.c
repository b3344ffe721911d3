// SPDX-License-Identifier: MIT
/* The interposer's own logic without any runtime: registry, decisions, report names. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "interpose/interpose.h"

static char stubs[200000]; /* distinct addresses to register as host stubs */
static const char *const name_add =
	"_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_15CUDAFunctor_addIfEESt5arrayIPcLm3EEEEviT0_T1_";

START_TEST(register_lookup_remove)
{
	void **h = malloc(sizeof(void *));
	cudaKernel_t handle = (cudaKernel_t)(stubs + 1);

	gpuos_reg_add_fatbin(h, NULL);
	gpuos_reg_add_function(h, stubs, name_add);
	ck_assert_ptr_null(gpuos_reg_lookup(handle));
	gpuos_reg_add_handle(stubs, handle);
	struct gpuos_kernel *k = gpuos_reg_lookup(stubs);
	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_eq(gpuos_reg_lookup(handle), k);
	ck_assert_str_eq(k->mangled, name_add);
	gpuos_reg_remove_fatbin(h);
	ck_assert_ptr_null(gpuos_reg_lookup(stubs));
	ck_assert_ptr_null(gpuos_reg_lookup(handle));
	/* a new module at the same addresses gets the keys back */
	gpuos_reg_add_fatbin(h, NULL);
	gpuos_reg_add_function(h, stubs, "_Z3foov");
	ck_assert_str_eq(gpuos_reg_lookup(stubs)->mangled, "_Z3foov");
}
END_TEST

START_TEST(first_launch_decides_once)
{
	void **h = malloc(sizeof(void *));

	setenv("GPUOS_CONFIG", "/dev/null", 1);
	setenv("GPUOS_DENY", "*CUDAFunctor_add*", 1);
	gpuos_reg_add_fatbin(h, NULL);
	gpuos_reg_add_function(h, stubs + 10, name_add);
	gpuos_reg_add_function(h, stubs + 11, "_Z3barPf");
	struct gpuos_live *a = gpuos_reg_first_launch(gpuos_reg_lookup(stubs + 10));
	struct gpuos_live *b = gpuos_reg_first_launch(gpuos_reg_lookup(stubs + 11));
	ck_assert_int_eq(a->why, GPUOS_WHY_DENIED);
	/* lift is off by default: no catalog entry, nothing else would run it */
	ck_assert_int_eq(b->why, GPUOS_WHY_NO_CATALOG);
	ck_assert_int_eq(b->lift, -1);
	ck_assert_str_eq(b->demangled, "bar(float*)");
	ck_assert_ptr_eq(gpuos_reg_first_launch(gpuos_reg_lookup(stubs + 10)), a);
	ck_assert_ptr_eq(gpuos_reg_first_launch(NULL), gpuos_reg_unknown());
	ck_assert_int_eq(gpuos_reg_unknown()->why, GPUOS_WHY_UNKNOWN);
}
END_TEST

static _Atomic int stop;

static void *reader(void *arg)
{
	long misses = 0;

	(void)arg;
	while (!stop)
		/* the first kernel was registered before the readers started: always found */
		if (!gpuos_reg_lookup(stubs))
			misses++;
	return (void *)misses;
}

/* Readers never lose a key while the table grows under them (run under TSan too). */
START_TEST(lookup_during_growth)
{
	void **h = malloc(sizeof(void *));
	pthread_t t[3];

	gpuos_reg_add_fatbin(h, NULL);
	gpuos_reg_add_function(h, stubs, "_Z1av");
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, reader, NULL);
	for (size_t i = 1; i < sizeof(stubs); i++)
		gpuos_reg_add_function(h, stubs + i, "_Z1bv");
	stop = 1;
	for (int i = 0; i < 3; i++) {
		void *misses;

		pthread_join(t[i], &misses);
		ck_assert_ptr_null(misses);
	}
	for (size_t i = 0; i < sizeof(stubs); i += 997)
		ck_assert_ptr_nonnull(gpuos_reg_lookup(stubs + i));
	ck_assert_uint_ge(gpuos_reg_nkernels(), sizeof(stubs));
}
END_TEST

START_TEST(short_names)
{
	char buf[100];

	gpuos_report_short_name(
		"void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
		"std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul>)",
		buf, sizeof(buf));
	ck_assert_str_eq(buf,
			 "vectorized_elementwise_kernel<4, CUDAFunctor_add<float>, std::array<char*, 3ul>>");
	gpuos_report_short_name("axpb(float*, float const*, affine, int)", buf, sizeof(buf));
	ck_assert_str_eq(buf, "axpb");
	gpuos_report_short_name("void at::native::(anonymous namespace)::foo<(c10::ScalarType)5>(int)",
				buf, sizeof(buf));
	ck_assert_str_eq(buf, "foo<(ScalarType)5>");
	/* too long: head and tail kept, cut in the middle, always terminated */
	char longname[600];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[0] = 'A';
	longname[sizeof(longname) - 2] = 'Z';
	longname[sizeof(longname) - 1] = '\0';
	gpuos_report_short_name(longname, buf, 20);
	ck_assert_uint_eq(strlen(buf), 19);
	ck_assert_int_eq(buf[0], 'A');
	ck_assert_int_eq(buf[18], 'Z');
	ck_assert_ptr_nonnull(strstr(buf, "..."));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("interpose");
	TCase *tc = tcase_create("registry");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, register_lookup_remove);
	tcase_add_test(tc, first_launch_decides_once);
	tcase_add_test(tc, lookup_during_growth);
	tcase_add_test(tc, short_names);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
