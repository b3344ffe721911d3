// SPDX-License-Identifier: MIT
/* The dual-slot alias state machine (kernels/table.c), and a randomized run against a model. */
#include <check.h>
#include <stdlib.h>

#include "kernels/table.h"

static const uint32_t zero[GPUOS_MAX_RINGS];

START_TEST(first_load_then_update_retires_old)
{
	struct gpuos_alias a;
	unsigned s;
	uint32_t tails[2] = {10, 20}, done[2] = {0, 0};

	gpuos_alias_init(&a, 2);
	ck_assert_int_eq(gpuos_alias_phys(&a, 3), -EAGAIN);
	ck_assert_int_eq(gpuos_alias_prepare(&a, zero, &s), 0);
	ck_assert_uint_eq(s, 0);
	gpuos_alias_commit(&a, s, 1, tails);
	ck_assert_int_eq(gpuos_alias_phys(&a, 3), 6);
	ck_assert_int_eq(gpuos_alias_prepare(&a, done, &s), 0);
	ck_assert_uint_eq(s, 1);
	gpuos_alias_commit(&a, s, 2, tails);
	ck_assert_int_eq(gpuos_alias_phys(&a, 3), 7);
	ck_assert_int_eq(a.state[0], GPUOS_PHYS_RETIRING);
	/* the third version must wait until both rings passed the fence */
	ck_assert_int_eq(gpuos_alias_prepare(&a, done, &s), -EBUSY);
	done[0] = 10;
	ck_assert_int_eq(gpuos_alias_prepare(&a, done, &s), -EBUSY);
	done[1] = 19;
	ck_assert_int_eq(gpuos_alias_prepare(&a, done, &s), -EBUSY);
	done[1] = 20;
	ck_assert_int_eq(gpuos_alias_prepare(&a, done, &s), 0);
	ck_assert_uint_eq(s, 0);
	ck_assert_int_eq(a.state[0], GPUOS_PHYS_STANDBY);
}
END_TEST

START_TEST(rollback)
{
	struct gpuos_alias a;
	unsigned s;
	uint32_t t1[1] = {5}, t2[1] = {9}, done[1] = {0};

	gpuos_alias_init(&a, 1);
	ck_assert_int_eq(gpuos_alias_rollback(&a, t1), -ENOENT);
	gpuos_alias_prepare(&a, done, &s);
	gpuos_alias_commit(&a, s, 1, t1);
	ck_assert_int_eq(gpuos_alias_rollback(&a, t1), -ENOENT); /* nothing before v1 */
	gpuos_alias_prepare(&a, done, &s);
	gpuos_alias_commit(&a, s, 2, t1);
	/* back to v1 while its tasks may still run: fine, it is the same code */
	ck_assert_int_eq(gpuos_alias_rollback(&a, t2), 0);
	ck_assert_uint_eq(a.version[a.active], 1);
	ck_assert_int_eq(a.state[1], GPUOS_PHYS_RETIRING);
	ck_assert_int_eq(gpuos_alias_prepare(&a, done, &s), -EBUSY);
	done[0] = 9;
	ck_assert_int_eq(gpuos_alias_prepare(&a, done, &s), 0);
	ck_assert_uint_eq(s, 1);
}
END_TEST

/* Random updates, rollbacks and progress against a model of which tasks are in flight: a slot
 * is handed out for loading only when no in-flight task names it. */
START_TEST(random_against_model)
{
	struct gpuos_alias a;
	uint32_t tail = 0, done = 0, ver = 0;
	/* the slot each in-flight position names */
	static unsigned char named[1 << 20];
	unsigned s;

	srand(42);
	gpuos_alias_init(&a, 1);
	for (int step = 0; step < 200000; step++) {
		int r = rand() % 10;
		if (r < 5 && gpuos_alias_phys(&a, 0) >= 0) {
			named[tail % (1 << 20)] = (unsigned char)gpuos_alias_phys(&a, 0);
			tail++;
		} else if (r < 8 && done != tail) {
			done += 1 + rand() % (tail - done);
		} else if (r < 9) {
			if (gpuos_alias_prepare(&a, &done, &s) == 0) {
				for (uint32_t p = done; p != tail; p++)
					ck_assert_uint_ne(named[p % (1 << 20)], s);
				gpuos_alias_commit(&a, s, ++ver, &tail);
			}
		} else {
			gpuos_alias_rollback(&a, &tail);
		}
	}
	ck_assert_uint_gt(ver, 1000);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("table");
	TCase *tc = tcase_create("alias");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, first_load_then_update_retires_old);
	tcase_add_test(tc, rollback);
	tcase_add_test(tc, random_against_model);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
