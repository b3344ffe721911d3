// SPDX-License-Identifier: MIT
/*
 * interpose/catalog.c's operators on several devices (gpuos_catalog_op), over recording fakes
 * of fusion: an operator is defined on each device at its first task there, shared by the
 * kernels that compute the same thing on that device; a thread's tasks go to the device of its
 * last one without asking the driver while that device has the operator ready, and to the
 * current device otherwise or when told to look again.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/atomics.h"
#include "interpose/interpose.h"
#include "kernels/catalog.h"
#include "kernels/sig.h"
#include "kernels/task.h" /* before gpuos.h, as in catalog.c */
#include "include/gpuos.h"

/* ---- fusion, faked ---- */

#define MAX_DEFS 16

static int cur_dev;	   /* what the "driver" says is current */
static unsigned ndev_asks; /* gpuos_fusion_current_dev calls */
static struct {
	char name[64];
	int dev, ready;
} defs[MAX_DEFS];
static unsigned ndefs;
static int fail_define;

struct gpuos_shim gpuos_shim;

int gpuos_fusion_current_dev(void)
{
	ndev_asks++;
	return cur_dev;
}

int gpuos_fusion_define(const char *name, const char *src, const char *ptx, size_t ptx_len,
			int *dev)
{
	(void)ptx, (void)ptx_len;
	ck_assert_ptr_nonnull(src);
	if (fail_define)
		return fail_define;
	ck_assert_uint_lt(ndefs, MAX_DEFS);
	snprintf(defs[ndefs].name, sizeof(defs[ndefs].name), "%s", name);
	defs[ndefs].dev = cur_dev;
	*dev = cur_dev;
	return GPUOS_OP_INJECTED + (int)ndefs++;
}

int gpuos_op_ready(unsigned id)
{
	ck_assert_uint_ge(id, GPUOS_OP_INJECTED);
	ck_assert_uint_lt(id - GPUOS_OP_INJECTED, ndefs);
	return defs[id - GPUOS_OP_INJECTED].ready;
}

int gpuos_init(const struct gpuos_options *opt)
{
	(void)opt;
	return 0;
}

unsigned gpuos_fusion_worker_threads(void)
{
	return 512;
}

int gpuos_fusion_submit_params(void *stream, unsigned op, const uint64_t *a, unsigned flags,
			       const void *params, size_t n, int dev)
{
	(void)stream, (void)op, (void)a, (void)flags, (void)params, (void)n, (void)dev;
	ck_abort_msg("no task is submitted here");
	return -EIO;
}

/* ---- helpers ---- */

static const char add_name[] =
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
    "std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul>)";

static struct gpuos_cat_match match_of(const char *demangled)
{
	static struct gpuos_sig sig; /* large */
	struct gpuos_cat_match m;

	ck_assert_int_eq(gpuos_sig_parse(demangled, &sig), 0);
	ck_assert_int_eq(gpuos_cat_match(&sig, &m), 0);
	return m;
}

static void reset(void)
{
	memset(defs, 0, sizeof(defs));
	ndefs = 0;
	ndev_asks = 0;
	cur_dev = 0;
	fail_define = 0;
}

/* ---- tests ---- */

static struct gpuos_cat_match m;
static struct gpuos_cat_ops ops;

/* Each check runs in a thread of its own: the device of a thread's last task starts unknown. */
static void *on_new_thread(void *(*fn)(void *))
{
	pthread_t th;
	void *ret;

	ck_assert_int_eq(pthread_create(&th, NULL, fn, NULL), 0);
	ck_assert_int_eq(pthread_join(th, &ret), 0);
	return ret;
}

static void *devices_body(void *arg)
{
	struct gpuos_cat_ops other = {0};
	int dev = -1, op0, op1;

	(void)arg;
	/* first task: the current device, defined there; building until ready */
	ck_assert_int_eq(gpuos_catalog_op(&ops, &m, false, &dev), 0);
	ck_assert_int_eq(dev, 0);
	ck_assert_uint_eq(ndefs, 1);
	ck_assert_str_eq(defs[0].name, "add.float32.contig");
	ck_assert_int_eq(defs[0].dev, 0);
	defs[0].ready = 1;
	op0 = gpuos_catalog_op(&ops, &m, false, &dev);
	ck_assert_int_eq(op0, GPUOS_OP_INJECTED);
	ck_assert_int_eq(dev, 0);

	/* ready on the last task's device: no driver call, even if the thread moved */
	cur_dev = 1;
	ndev_asks = 0;
	ck_assert_int_eq(gpuos_catalog_op(&ops, &m, false, &dev), op0);
	ck_assert_int_eq(dev, 0);
	ck_assert_uint_eq(ndev_asks, 0);

	/* told to look again (its task went to another device's stream): device 1's own */
	ck_assert_int_eq(gpuos_catalog_op(&ops, &m, true, &dev), 0);
	ck_assert_int_eq(dev, 1);
	ck_assert_uint_eq(ndefs, 2);
	ck_assert_int_eq(defs[1].dev, 1);
	/* while it builds the thread asks the driver each time (it may have moved back) */
	ndev_asks = 0;
	ck_assert_int_eq(gpuos_catalog_op(&ops, &m, false, &dev), 0);
	ck_assert_uint_eq(ndev_asks, 1);
	defs[1].ready = 1;
	op1 = gpuos_catalog_op(&ops, &m, false, &dev);
	ck_assert_int_eq(op1, GPUOS_OP_INJECTED + 1);
	ck_assert_int_eq(dev, 1);
	ck_assert_int_eq(load_acquire(&ops.op[0]), op0);
	ck_assert_int_eq(load_acquire(&ops.op[1]), op1);

	/* another kernel computing the same: the same operators, nothing defined */
	ck_assert_int_eq(gpuos_catalog_op(&other, &m, false, &dev), op1);
	cur_dev = 0;
	ck_assert_int_eq(gpuos_catalog_op(&other, &m, true, &dev), op0);
	ck_assert_uint_eq(ndefs, 2);

	/* the copy operator is one of its own */
	ck_assert_int_eq(gpuos_catalog_op(&(struct gpuos_cat_ops){0}, NULL, true, &dev), 0);
	ck_assert_uint_eq(ndefs, 3);
	ck_assert_str_eq(defs[2].name, GPUOS_CAT_COPY_KEY);
	return NULL;
}

START_TEST(catops_per_device)
{
	reset();
	m = match_of(add_name);
	memset(&ops, 0, sizeof(ops));
	on_new_thread(devices_body);
}
END_TEST

static void *failure_body(void *arg)
{
	struct gpuos_cat_ops o = {0};
	int dev = -1;

	(void)arg;
	/* a device where it cannot be defined: that device's launches fall through for good */
	cur_dev = 2;
	fail_define = -ENOSPC;
	ck_assert_int_eq(gpuos_catalog_op(&o, &m, false, &dev), -ENOSPC);
	ck_assert_int_eq(gpuos_why_op(-ENOSPC), GPUOS_WHY_OPS_FULL);
	fail_define = 0;
	ck_assert_int_eq(gpuos_catalog_op(&o, &m, false, &dev), -ENOSPC);
	ck_assert_uint_eq(ndefs, 0);
	/* another device still gets its own */
	cur_dev = 3;
	ck_assert_int_eq(gpuos_catalog_op(&o, &m, false, &dev), 0);
	ck_assert_int_eq(dev, 3);
	ck_assert_uint_eq(ndefs, 1);
	/* beyond the devices an operator may be on */
	cur_dev = GPUOS_CAT_DEVS;
	ck_assert_int_eq(gpuos_catalog_op(&o, &m, false, &dev), -ENODEV);
	ck_assert_int_eq(gpuos_why_op(0), GPUOS_WHY_BUILDING);
	return NULL;
}

START_TEST(catops_failures)
{
	reset();
	m = match_of(add_name);
	on_new_thread(failure_body);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("catops");
	TCase *tc = tcase_create("catops");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, catops_per_device);
	tcase_add_test(tc, catops_failures);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
