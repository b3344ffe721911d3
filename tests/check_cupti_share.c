// SPDX-License-Identifier: MIT
/*
 * interpose/cupti.c sharing its one CUPTI subscription with a profiler in the process (the
 * guest), against a test double of libcupti (tests/hooks/fake_cupti.c, linked by soname so
 * that the observer's dlopen finds it): whoever comes first, both see the calls they
 * enabled, each with its own correlation data; the guest's off switches and cuptiFinalize
 * never turn our observer off. The same on a GPU: tests/gpu/test_torch_catalog.sh
 * (torch.profiler's kernel records while the shim observes).
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cupti.h>

#include "interpose/cupti.h"

#define DRV(name) CUPTI_DRIVER_TRACE_CBID_##name
#define RT(name)  CUPTI_RUNTIME_TRACE_CBID_##name
#define D	  CUPTI_CB_DOMAIN_DRIVER_API
#define R	  CUPTI_CB_DOMAIN_RUNTIME_API

/* the test double's own calls (tests/hooks/fake_cupti.c) */
extern int fake_cupti_finalized;
int fake_cupti_enabled(int d, int id);
int fake_cupti_subscribed(void);
void fake_cupti_call(int d, int id, const void *params);

/* ---- fusion, recorded: park/unpark around a call shows our ENTER reached our EXIT ---- */
static char seq[64];
static void note(char c)
{
	size_t n = strlen(seq);

	if (n + 1 < sizeof(seq))
		seq[n] = c;
}
__thread int gpuos_fusion_in_engine;
bool gpuos_fusion_active(void)
{
	return true;
}
void gpuos_fusion_stream_op(CUstream s, bool ptsz)
{
	(void)s, (void)ptsz;
	note('S');
}
unsigned gpuos_fusion_call_begin(CUstream s, bool ptsz, CUcontext ctx)
{
	(void)s, (void)ptsz, (void)ctx;
	note('S');
	return 0;
}
void gpuos_fusion_call_end(unsigned call)
{
	(void)call;
	note('D');
}
void gpuos_fusion_stream_gone(CUstream s)
{
	(void)s;
}
void gpuos_fusion_park(void)
{
	note('P');
}
void gpuos_fusion_unpark(void)
{
	note('U');
}
void gpuos_fusion_capture_begin(void)
{
}
void gpuos_fusion_capture_end(void)
{
}
bool gpuos_fusion_first_launch(const void *f)
{
	(void)f;
	return false;
}
void gpuos_fusion_loaded(const void *f)
{
	(void)f;
}
void gpuos_fusion_device_reset(void)
{
}
void gpuos_fusion_forget(void)
{
}

/* ---- the guest: counts its calls; writes its correlation data at ENTER, checks at EXIT ---- */
static struct {
	int calls, corr_bad;
	void *userdata;
} g;

static void CUPTIAPI guest_cb(void *ud, CUpti_CallbackDomain d, CUpti_CallbackId id,
			      const void *cbdata)
{
	const CUpti_CallbackData *cb = cbdata;

	(void)d;
	g.calls++;
	g.userdata = ud;
	if (cb->callbackSite == CUPTI_API_ENTER)
		*cb->correlationData = 0x1000u + id; /* would wipe ours if it were the same slot */
	else if (*cb->correlationData != 0x1000u + id)
		g.corr_bad++;
}

static CUpti_SubscriberHandle guest_in(void)
{
	CUpti_SubscriberHandle h = NULL;

	ck_assert_int_eq(cuptiSubscribe(&h, guest_cb, &g), CUPTI_SUCCESS);
	ck_assert_ptr_nonnull(h);
	return h;
}

static void call(int d, int id)
{
	memset(seq, 0, sizeof(seq));
	g.calls = 0;
	fake_cupti_call(d, id, NULL);
}

START_TEST(test_ours_then_guest)
{
	CUpti_SubscriberHandle h;

	ck_assert_int_eq(gpuos_cupti_start(), 0);
	ck_assert(fake_cupti_enabled(D, DRV(cuCtxSynchronize)));
	h = guest_in();
	ck_assert(fake_cupti_subscribed());
	/* a runtime call the guest wants: only the guest */
	ck_assert_int_eq(cuptiEnableCallback(1, h, R, RT(cudaLaunchKernel_v7000)), CUPTI_SUCCESS);
	call(R, RT(cudaLaunchKernel_v7000));
	ck_assert_int_eq(g.calls, 2);
	ck_assert_ptr_eq(g.userdata, &g);
	ck_assert_str_eq(seq, "");
	/* a driver call only we want: only us */
	call(D, DRV(cuCtxSynchronize));
	ck_assert_int_eq(g.calls, 0);
	ck_assert_str_eq(seq, "PU");
	/* both: each its own correlation data (ours parked at ENTER, unparked at EXIT) */
	ck_assert_int_eq(cuptiEnableCallback(1, h, D, DRV(cuCtxSynchronize)), CUPTI_SUCCESS);
	uint32_t on = 0;
	ck_assert_int_eq(cuptiGetCallbackState(&on, h, D, DRV(cuCtxSynchronize)), CUPTI_SUCCESS);
	ck_assert_uint_eq(on, 1);
	call(D, DRV(cuCtxSynchronize));
	ck_assert_int_eq(g.calls, 2);
	ck_assert_str_eq(seq, "PU");
	ck_assert_int_eq(g.corr_bad, 0);
	/* the guest's off switches leave ours on */
	ck_assert_int_eq(cuptiEnableCallback(0, h, D, DRV(cuCtxSynchronize)), CUPTI_SUCCESS);
	ck_assert(fake_cupti_enabled(D, DRV(cuCtxSynchronize)));
	ck_assert_int_eq(cuptiEnableDomain(1, h, D), CUPTI_SUCCESS);
	ck_assert(fake_cupti_enabled(D, DRV(cuMemGetInfo_v2))); /* not ours: the guest's */
	ck_assert_int_eq(cuptiEnableDomain(0, h, D), CUPTI_SUCCESS);
	ck_assert(!fake_cupti_enabled(D, DRV(cuMemGetInfo_v2)));
	ck_assert(fake_cupti_enabled(D, DRV(cuCtxSynchronize)));
	ck_assert(fake_cupti_enabled(D, DRV(cuLaunchKernel)));
	call(D, DRV(cuCtxSynchronize));
	ck_assert_int_eq(g.calls, 0);
	ck_assert_str_eq(seq, "PU");
	/* unsubscribing the guest keeps our subscription */
	ck_assert_int_eq(cuptiUnsubscribe(h), CUPTI_SUCCESS);
	ck_assert(!fake_cupti_enabled(R, RT(cudaLaunchKernel_v7000)));
	ck_assert(fake_cupti_enabled(D, DRV(cuCtxSynchronize)));
	ck_assert_int_eq(cuptiUnsubscribe(h), CUPTI_ERROR_INVALID_PARAMETER);
	gpuos_cupti_stop();
	ck_assert(!fake_cupti_subscribed());
}
END_TEST

START_TEST(test_guest_then_ours)
{
	CUpti_SubscriberHandle h = guest_in(), h2 = NULL;

	ck_assert_int_eq(cuptiEnableCallback(1, h, R, RT(cudaMemcpy_v3020)), CUPTI_SUCCESS);
	/* one guest at a time, as CUPTI */
	ck_assert_int_eq(cuptiSubscribe(&h2, guest_cb, NULL),
			 CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED);
	/* the observer starts on the guest's subscription */
	ck_assert_int_eq(gpuos_cupti_start(), 0);
	call(D, DRV(cuCtxSynchronize));
	ck_assert_str_eq(seq, "PU");
	call(R, RT(cudaMemcpy_v3020));
	ck_assert_int_eq(g.calls, 2);
	/* our stop leaves the guest's */
	gpuos_cupti_stop();
	ck_assert(fake_cupti_subscribed());
	ck_assert(!fake_cupti_enabled(D, DRV(cuCtxSynchronize)));
	call(R, RT(cudaMemcpy_v3020));
	ck_assert_int_eq(g.calls, 2);
	ck_assert_int_eq(g.corr_bad, 0);
	ck_assert_int_eq(cuptiUnsubscribe(h), CUPTI_SUCCESS);
	ck_assert(!fake_cupti_subscribed());
}
END_TEST

/* Kineto's teardown (TEARDOWN_CUPTI=1) finalizes CUPTI: not while we observe. */
START_TEST(test_finalize)
{
	CUpti_SubscriberHandle h;

	ck_assert_int_eq(gpuos_cupti_start(), 0);
	h = guest_in();
	ck_assert_int_eq(cuptiEnableAllDomains(1, h), CUPTI_SUCCESS);
	ck_assert_int_eq(cuptiFinalize(), CUPTI_SUCCESS);
	ck_assert_int_eq(fake_cupti_finalized, 0);
	ck_assert(fake_cupti_enabled(D, DRV(cuCtxSynchronize)));
	ck_assert(!fake_cupti_enabled(R, RT(cudaMemcpy_v3020)));
	call(D, DRV(cuCtxSynchronize));
	ck_assert_int_eq(g.calls, 0);
	ck_assert_str_eq(seq, "PU");
	/* it may subscribe again, as after a real finalize */
	h = guest_in();
	gpuos_cupti_stop();
	/* not observing: a finalize is CUPTI's */
	ck_assert_int_eq(cuptiFinalize(), CUPTI_SUCCESS);
	ck_assert_int_eq(fake_cupti_finalized, 1);
	ck_assert(!fake_cupti_subscribed());
	(void)h;
}
END_TEST

static Suite *share_suite(void)
{
	Suite *s = suite_create("cupti_share");
	TCase *tc = tcase_create("share");

	tcase_add_test(tc, test_ours_then_guest);
	tcase_add_test(tc, test_guest_then_ours);
	tcase_add_test(tc, test_finalize);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(share_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
