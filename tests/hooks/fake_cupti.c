// SPDX-License-Identifier: MIT
/*
 * A CPU test double of libcupti.so.13's callback API, for tests/check_cupti_share.c: one
 * subscriber at most (as CUPTI), the enabled (domain, id) pairs, and fake_cupti_call() to
 * run a callback's ENTER and EXIT with one correlation slot, as CUPTI does for an API call.
 * Linked -Bsymbolic, as libcupti is: its own calls never reach the shim's same-named ones.
 */
#include <stdint.h>
#include <string.h>

#include <cupti.h>

#define API __attribute__((visibility("default")))
#define IDS 1024

static CUpti_CallbackFunc sub_fn;
static void *sub_ud;
static int sub_token;
static unsigned char on[CUPTI_CB_DOMAIN_SIZE][IDS];

API int fake_cupti_finalized;

API int fake_cupti_enabled(int d, int id)
{
	return sub_fn && on[d][id];
}

API int fake_cupti_subscribed(void)
{
	return sub_fn != NULL;
}

/* One API call: ENTER then EXIT with the same correlation data, as CUPTI gives them. */
API void fake_cupti_call(int d, int id, const void *params)
{
	uint64_t corr = 0;
	CUpti_CallbackData cb = {
	    .callbackSite = CUPTI_API_ENTER, .functionParams = params, .correlationData = &corr};

	if (!fake_cupti_enabled(d, id))
		return;
	sub_fn(sub_ud, (CUpti_CallbackDomain)d, (CUpti_CallbackId)id, &cb);
	cb.callbackSite = CUPTI_API_EXIT;
	if (fake_cupti_enabled(d, id))
		sub_fn(sub_ud, (CUpti_CallbackDomain)d, (CUpti_CallbackId)id, &cb);
}

API CUptiResult cuptiSubscribe(CUpti_SubscriberHandle *h, CUpti_CallbackFunc fn, void *ud)
{
	if (sub_fn)
		return CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
	sub_fn = fn;
	sub_ud = ud;
	memset(on, 0, sizeof(on));
	*h = (CUpti_SubscriberHandle)&sub_token;
	return CUPTI_SUCCESS;
}

API CUptiResult cuptiSubscribe_v2(CUpti_SubscriberHandle *h, CUpti_CallbackFunc fn, void *ud,
				  CUpti_SubscriberParams *p)
{
	CUptiResult r = cuptiSubscribe(h, fn, ud);

	if (r && p && p->oldSubscriberName && p->oldSubscriberSize)
		strncpy(p->oldSubscriberName, "fake tool", p->oldSubscriberSize - 1);
	return r;
}

API CUptiResult cuptiUnsubscribe(CUpti_SubscriberHandle h)
{
	if (!sub_fn || h != (CUpti_SubscriberHandle)&sub_token)
		return CUPTI_ERROR_INVALID_PARAMETER;
	sub_fn = NULL;
	return CUPTI_SUCCESS;
}

API CUptiResult cuptiEnableCallback(uint32_t enable, CUpti_SubscriberHandle h,
				    CUpti_CallbackDomain d, CUpti_CallbackId id)
{
	if (!sub_fn || h != (CUpti_SubscriberHandle)&sub_token || d <= 0 ||
	    d >= CUPTI_CB_DOMAIN_SIZE || id >= IDS)
		return CUPTI_ERROR_INVALID_PARAMETER;
	on[d][id] = enable != 0;
	return CUPTI_SUCCESS;
}

API CUptiResult cuptiEnableDomain(uint32_t enable, CUpti_SubscriberHandle h, CUpti_CallbackDomain d)
{
	if (!sub_fn || h != (CUpti_SubscriberHandle)&sub_token || d <= 0 ||
	    d >= CUPTI_CB_DOMAIN_SIZE)
		return CUPTI_ERROR_INVALID_PARAMETER;
	memset(on[d], enable != 0, IDS);
	return CUPTI_SUCCESS;
}

API CUptiResult cuptiFinalize(void)
{
	sub_fn = NULL;
	fake_cupti_finalized++;
	return CUPTI_SUCCESS;
}

API CUptiResult cuptiGetResultString(CUptiResult r, const char **s)
{
	*s = r ? "CUPTI_ERROR_FAKE" : "CUPTI_SUCCESS";
	return CUPTI_SUCCESS;
}
