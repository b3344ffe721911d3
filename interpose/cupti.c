// SPDX-License-Identifier: MIT
/*
 * interpose/cupti.c: the driver-call observer (interpose/cupti.h). One CUPTI subscription,
 * the driver-domain ids of interpose/cupti_ids.h enabled, one callback that turns each
 * call into what fusion must hear before (CUPTI_API_ENTER) and after (CUPTI_API_EXIT) it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cupti.h>

#include "common/atomics.h"
#include "common/probe.h"
#include "common/log.h"
#include "fusion/fusion.h"
#include "interpose/cupti.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Where a call's stream is; see interpose/cupti_ids.h. */
enum stream_src { SRC_NONE, SRC_FIELD, SRC_CONFIG, SRC_LEGACY, SRC_PER_THREAD };

struct id_entry {
	uint8_t kind, src, ptsz;
	uint16_t stream_off, func_off;
};

/* Indexed by callback id; ids absent from the list are zero: GPUOS_CUPTI_NONE. */
static const struct id_entry id_table[CUPTI_DRIVER_TRACE_CBID_SIZE] = {
#define GPUOS_CUPTI_ID(name, kind, src, ptsz, soff, foff)                                          \
	[CUPTI_DRIVER_TRACE_CBID_##name] = {GPUOS_CUPTI_##kind, SRC_##src, ptsz, soff, foff},
#include "interpose/cupti_ids.h"
};

int gpuos_cupti_classify(CUpti_CallbackId cbid, const void *params, struct gpuos_cupti_action *out)
{
	const struct id_entry *e;
	const CUlaunchConfig *cfg;

	*out = (struct gpuos_cupti_action){.kind = GPUOS_CUPTI_NONE};
	if (cbid >= ARRAY_SIZE(id_table) || id_table[cbid].kind == GPUOS_CUPTI_NONE)
		return GPUOS_CUPTI_NONE;
	e = &id_table[cbid];
	out->kind = e->kind;
	out->ptsz = e->ptsz;
	switch (e->src) {
	case SRC_LEGACY:
		out->stream = CU_STREAM_LEGACY;
		break;
	case SRC_PER_THREAD:
		out->stream = NULL; /* with ptsz: the calling thread's default stream */
		break;
	case SRC_FIELD:
		if (params)
			memcpy(&out->stream, (const char *)params + e->stream_off,
			       sizeof(out->stream));
		break;
	case SRC_CONFIG:
		if (!params)
			break;
		memcpy(&cfg, (const char *)params + e->stream_off, sizeof(cfg));
		/* a NULL config fails the call itself; treat it as the default stream */
		out->stream = cfg ? cfg->hStream : NULL;
		break;
	}
	out->ordered = e->kind == GPUOS_CUPTI_STREAM_OP || e->kind == GPUOS_CUPTI_STREAM_DESTROY ||
		       e->kind == GPUOS_CUPTI_LAUNCH ||
		       (e->kind == GPUOS_CUPTI_UNMAP && e->src != SRC_NONE);
	if (params && (e->kind == GPUOS_CUPTI_LAUNCH || e->kind == GPUOS_CUPTI_FIRST_USE))
		memcpy(&out->func, (const char *)params + e->func_off, sizeof(void *));
	return out->kind;
}

/* ---- the callback ---- */

/* What ENTER did, for EXIT, in the call's correlation data. */
#define CORR_ENTERED 1u /* fusion heard of the call (an engine had been started) */
#define CORR_PARKED  2u /* the workers were parked for it: unpark after it */
#define CORR_LOADING 4u /* parked for a function's first call: it is loaded once that works */
#define CORR_IN_CALL 8u /* counted in flight on its stream (gpuos_fusion_call_begin) */
#define CORR_CALL_SHIFT 8  /* above the flags: what gpuos_fusion_call_begin returned */

/* cuStreamEndCapture failed in a way that still ended the capture. When unsure, keep the
 * capture counted: diverting nothing is safe, diverting into a capture is not. */
static bool capture_ended(CUresult r)
{
	return r == CUDA_SUCCESS || r == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED ||
	       r == CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
}

static uint64_t before_call(const struct gpuos_cupti_action *a, CUcontext ctx)
{
	uint64_t corr = CORR_ENTERED;

	/* Captures are counted even before any engine runs: one may start before it. */
	if (a->kind == GPUOS_CUPTI_CAPTURE_BEGIN) {
		gpuos_fusion_stream_op(a->stream, a->ptsz);
		gpuos_fusion_capture_begin();
		return corr;
	}
	if (a->kind == GPUOS_CUPTI_CAPTURE_END)
		return corr;
	/* Stream-ordered calls close their stream's batches, and count as in flight until they
	 * return: a batch another thread opened in between would have its go before the
	 * call's work. Counted even before any engine runs: one may start during the call.
	 * @ctx (the call's current context) tells whose legacy stream a NULL stream is. */
	if (a->ordered)
		corr |= CORR_IN_CALL | (uint64_t)gpuos_fusion_call_begin(a->stream, a->ptsz, ctx)
					   << CORR_CALL_SHIFT;
	if (!gpuos_fusion_active())
		return corr & ~(uint64_t)CORR_ENTERED; /* the count and its bucket only */

	switch (a->kind) {
	case GPUOS_CUPTI_LAUNCH:
		if (gpuos_fusion_first_launch(a->func))
			corr |= CORR_PARKED | CORR_LOADING;
		break;
	case GPUOS_CUPTI_FIRST_USE:
		if (gpuos_fusion_first_launch(a->func))
			corr |= CORR_PARKED | CORR_LOADING;
		break;
	case GPUOS_CUPTI_PARK:
	case GPUOS_CUPTI_RESET:
		gpuos_fusion_park();
		corr |= CORR_PARKED;
		break;
	case GPUOS_CUPTI_UNMAP:
		gpuos_fusion_forget();
		break;
	}
	return corr;
}

static void after_call(const struct gpuos_cupti_action *a, uint64_t corr, CUresult r)
{
	/* the call's work (if any) is on its stream now: batches may open there again */
	if (corr & CORR_IN_CALL)
		gpuos_fusion_call_end((unsigned)(corr >> CORR_CALL_SHIFT));
	if (!(corr & CORR_ENTERED))
		return;
	switch (a->kind) {
	case GPUOS_CUPTI_STREAM_DESTROY:
		if (r == CUDA_SUCCESS)
			gpuos_fusion_stream_gone(a->stream);
		break;
	case GPUOS_CUPTI_CAPTURE_BEGIN:
		if (r != CUDA_SUCCESS)
			gpuos_fusion_capture_end();
		break;
	case GPUOS_CUPTI_CAPTURE_END:
		if (capture_ended(r))
			gpuos_fusion_capture_end();
		break;
	case GPUOS_CUPTI_UNMAP:
		/* and after: a copy that looked at the range during the call saw it mapped */
		gpuos_fusion_forget();
		break;
	case GPUOS_CUPTI_RESET:
		/* the engine's memory is gone with the context's: drop it, never unpark it */
		gpuos_fusion_device_reset();
		return;
	}
	/* before unparking: a launch racing ours that finds it loaded need not park */
	if ((corr & CORR_LOADING) && r == CUDA_SUCCESS)
		gpuos_fusion_loaded(a->func);
	if (corr & CORR_PARKED)
		gpuos_fusion_unpark();
}

#ifdef GPUOS_PROBE
/* probe builds: how many calls of each driver id reach the callback, at exit */
static _Atomic uint64_t probe_cbid[CUPTI_DRIVER_TRACE_CBID_SIZE];

__attribute__((destructor)) static void probe_cbid_dump(void)
{
	for (unsigned i = 0; i < CUPTI_DRIVER_TRACE_CBID_SIZE; i++)
		if (load_relaxed(&probe_cbid[i]) > 1000)
			fprintf(stderr, "gpuos probe: driver cbid %u: %llu callbacks\n", i,
				(unsigned long long)load_relaxed(&probe_cbid[i]));
}
#endif

/* Hot path: every observed driver call in the process, twice. No allocation, no lock, no
 * log. */
void CUPTIAPI gpuos_cupti_callback(void *userdata, CUpti_CallbackDomain domain,
				   CUpti_CallbackId cbid, const void *cbdata)
{
	const CUpti_CallbackData *cb = cbdata;
	struct gpuos_cupti_action a;
	uint64_t scratch = 0, *corr;
	CUresult r;

	(void)userdata;
	GPUOS_PROBE_BEGIN(t0);
#ifdef GPUOS_PROBE
	if (domain == CUPTI_CB_DOMAIN_DRIVER_API && cbid < CUPTI_DRIVER_TRACE_CBID_SIZE)
		store_relaxed(&probe_cbid[cbid], load_relaxed(&probe_cbid[cbid]) + 1);
#endif
	if (domain != CUPTI_CB_DOMAIN_DRIVER_API || gpuos_fusion_in_engine || !cb)
		return;
	if (gpuos_cupti_classify(cbid, cb->functionParams, &a) == GPUOS_CUPTI_NONE)
		return;
	corr = cb->correlationData ? cb->correlationData : &scratch;
	if (cb->callbackSite == CUPTI_API_ENTER) {
		*corr = before_call(&a, cb->context);
	} else if (cb->callbackSite == CUPTI_API_EXIT) {
		r = cb->functionReturnValue ? *(const CUresult *)cb->functionReturnValue
					    : CUDA_SUCCESS;
		after_call(&a, *corr, r);
	}
	GPUOS_PROBE_END(CUPTI, t0);
}

/* ---- loading ---- */

#define CUPTI_SONAME  "libcupti.so.13"
#define CUDART_SONAME "libcudart.so.13"

struct cupti_api {
	CUptiResult (*subscribe)(CUpti_SubscriberHandle *, CUpti_CallbackFunc, void *);
	CUptiResult (*subscribe_v2)(CUpti_SubscriberHandle *, CUpti_CallbackFunc, void *,
				    CUpti_SubscriberParams *);
	CUptiResult (*unsubscribe)(CUpti_SubscriberHandle);
	CUptiResult (*enable_callback)(uint32_t, CUpti_SubscriberHandle, CUpti_CallbackDomain,
				       CUpti_CallbackId);
	CUptiResult (*enable_domain)(uint32_t, CUpti_SubscriberHandle, CUpti_CallbackDomain);
	CUptiResult (*finalize)(void);
	CUptiResult (*result_string)(CUptiResult, const char **);
};

/* All under lock (the hot path reads only observing and the guest's atomics). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int start_rc = 1;		  /* 1: not tried; else gpuos_cupti_start's result */
static CUpti_SubscriberHandle subscriber; /* the one real subscription, ours or a guest's */
static _Atomic bool observing;		  /* our driver ids are enabled */
static struct cupti_api api;		  /* filled once */

static int cudart_dir_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	const char *name = info->dlpi_name, *slash;
	char *dir = data;

	(void)size;
	slash = name ? strrchr(name, '/') : NULL;
	if (!slash || strncmp(slash + 1, CUDART_SONAME, strlen(CUDART_SONAME)) != 0)
		return 0;
	if ((size_t)(slash - name) >= PATH_MAX)
		return 0;
	memcpy(dir, name, slash - name);
	dir[slash - name] = '\0';
	return 1;
}

static void *open_in(const char *dir, const char *sub)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s%s/" CUPTI_SONAME, dir, sub);

	if (n < 0 || (size_t)n >= sizeof(path))
		return NULL;
	return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/*
 * By soname first: that finds one already loaded (a profiler's, PyTorch's) and the loader's
 * search path; then the copy beside the loaded runtime (PyTorch wheels keep both in
 * site-packages/nvidia/cu13/lib), which matches the toolkit the program runs with; then
 * the usual toolkit places. dlsym on the handle finds libcupti's own functions, never the
 * same-named ones this file exports.
 */
static void *open_cupti(void)
{
	static const char *const fixed[] = {"/usr/local/cuda/lib64",
					    "/usr/local/cuda/extras/CUPTI/lib64"};
	char dir[PATH_MAX];
	const char *home = getenv("CUDA_HOME");
	void *h = dlopen(CUPTI_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (!h && dl_iterate_phdr(cudart_dir_cb, dir))
		h = open_in(dir, "");
	if (!h && home && *home)
		h = open_in(home, "/lib64");
	for (size_t i = 0; !h && i < ARRAY_SIZE(fixed); i++)
		h = open_in(fixed[i], "");
	return h;
}

static int load_api(void)
{
	void *h = open_cupti();

	if (!h)
		return -ENOENT;
	/* never dlclose'd: CUPTI may still be running a callback on another thread */
	api.subscribe = (__typeof__(api.subscribe))dlsym(h, "cuptiSubscribe");
	api.subscribe_v2 = (__typeof__(api.subscribe_v2))dlsym(h, "cuptiSubscribe_v2");
	api.unsubscribe = (__typeof__(api.unsubscribe))dlsym(h, "cuptiUnsubscribe");
	api.enable_callback = (__typeof__(api.enable_callback))dlsym(h, "cuptiEnableCallback");
	api.enable_domain = (__typeof__(api.enable_domain))dlsym(h, "cuptiEnableDomain");
	api.finalize = (__typeof__(api.finalize))dlsym(h, "cuptiFinalize");
	api.result_string = (__typeof__(api.result_string))dlsym(h, "cuptiGetResultString");
	if (!api.subscribe || !api.unsubscribe || !api.enable_callback) {
		api = (struct cupti_api){0};
		return -ENOSYS;
	}
	return 0;
}

static const char *result_name(CUptiResult r)
{
	const char *s = NULL;

	if (!api.result_string || api.result_string(r, &s) != CUPTI_SUCCESS || !s)
		return "CUPTI_ERROR_?";
	return s;
}

static int cupti_errno(CUptiResult r)
{
	switch (r) {
	case CUPTI_SUCCESS:
		return 0;
	case CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED:
		return -EBUSY;
	case CUPTI_ERROR_NOT_INITIALIZED:
	case CUPTI_ERROR_INVALID_DEVICE:
	case CUPTI_ERROR_INVALID_CONTEXT:
		return -ENODEV;
	case CUPTI_ERROR_INSUFFICIENT_PRIVILEGES:
	case CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES:
		return -EPERM;
	case CUPTI_ERROR_NOT_SUPPORTED:
	case CUPTI_ERROR_NOT_COMPATIBLE:
	case CUPTI_ERROR_VIRTUALIZED_DEVICE_NOT_SUPPORTED:
	case CUPTI_ERROR_CONFIDENTIAL_COMPUTING_NOT_SUPPORTED:
		return -ENOTSUP;
	default:
		return -EIO;
	}
}

/* ---- the guest: a profiler in the process sharing the subscription ----
 *
 * CUPTI takes one callback subscriber a process. A profiler that subscribes after us
 * (torch.profiler's Kineto, any tool linking libcupti) would fail and lose its GPU trace,
 * one that came first would leave us blind. So this file exports CUPTI's subscriber calls
 * (with libcupti's symbol version, interpose/shim.map.in) and keeps one real subscription
 * for both: the guest gets a handle of its own, the callbacks it enables, its own
 * correlation data, and its callback called after ours. While we observe, a guest's
 * cuptiFinalize only drops the guest (a real one would end our subscription too); the
 * activity API (kernel records) is not ours and goes straight to libcupti.
 */
#define GUEST_IDS 1024 /* callback ids a domain (CUDA 13: 807 driver, 523 runtime) */

static struct {
	_Atomic(CUpti_CallbackFunc) fn; /* NULL: no guest */
	void *userdata;
	_Atomic uint64_t on[CUPTI_CB_DOMAIN_SIZE][GUEST_IDS / 64]; /* its enabled ids */
} guest;

#define GUEST ((CUpti_SubscriberHandle)&guest)

static bool guest_wants(CUpti_CallbackDomain d, CUpti_CallbackId id)
{
	if ((unsigned)d >= CUPTI_CB_DOMAIN_SIZE || id >= GUEST_IDS)
		return false;
	return load_relaxed(&guest.on[d][id / 64]) >> (id % 64) & 1;
}

static void guest_set(CUpti_CallbackDomain d, CUpti_CallbackId id, bool on)
{
	uint64_t bit = 1ull << (id % 64);

	if (on)
		atomic_fetch_or_explicit(&guest.on[d][id / 64], bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&guest.on[d][id / 64], ~bit, memory_order_relaxed);
}

/* Whether our observer needs (d, id) enabled. */
static bool ours_wants(CUpti_CallbackDomain d, CUpti_CallbackId id)
{
	return d == CUPTI_CB_DOMAIN_DRIVER_API && id < ARRAY_SIZE(id_table) &&
	       id_table[id].kind != GPUOS_CUPTI_NONE && load_relaxed(&observing);
}

/*
 * The guest's correlation data: a slot per API call, pushed at ENTER, popped at the EXIT of
 * the same (domain, id) (runtime calls enclose driver calls), so that it never sees ours.
 */
struct corr_slot {
	uint64_t data;
	uint32_t key;
};
static __thread struct corr_slot corr_stack[16];
static __thread unsigned corr_depth;

static void to_guest(CUpti_CallbackFunc fn, CUpti_CallbackDomain d, CUpti_CallbackId id,
		     const void *cbdata)
{
	const CUpti_CallbackData *cb = cbdata;
	struct corr_slot scratch = {0}, *slot = &scratch;
	uint32_t key = (uint32_t)d << 16 | id;
	CUpti_CallbackData copy;

	if ((d != CUPTI_CB_DOMAIN_DRIVER_API && d != CUPTI_CB_DOMAIN_RUNTIME_API) || !cb) {
		fn(guest.userdata, d, id, cbdata);
		return;
	}
	copy = *cb;
	if (cb->callbackSite == CUPTI_API_ENTER && corr_depth < ARRAY_SIZE(corr_stack)) {
		slot = &corr_stack[corr_depth++];
		*slot = (struct corr_slot){.key = key};
	} else if (cb->callbackSite == CUPTI_API_EXIT && corr_depth &&
		   corr_stack[corr_depth - 1].key == key) {
		slot = &corr_stack[--corr_depth];
	}
	copy.correlationData = &slot->data;
	fn(guest.userdata, d, id, &copy);
}

/* The real subscription's callback: ours, then the guest's. */
static void CUPTIAPI dispatch(void *userdata, CUpti_CallbackDomain d, CUpti_CallbackId id,
			      const void *cbdata)
{
	/* acquire: pairs with the release in guest_subscribe (its userdata before fn) */
	CUpti_CallbackFunc fn = load_acquire(&guest.fn);

	if (d == CUPTI_CB_DOMAIN_DRIVER_API && load_relaxed(&observing))
		gpuos_cupti_callback(userdata, d, id, cbdata);
	if (fn && guest_wants(d, id))
		to_guest(fn, d, id, cbdata);
}

/* ---- the real subscription ---- */

/* Subscribe for real unless we already have; @other gets the holder's name on failure. */
static CUptiResult hold_locked(char *other, size_t other_len)
{
	CUpti_SubscriberParams p = {
	    .structSize = CUpti_SubscriberParams_STRUCT_SIZE,
	    .subscriberName = "gpuos",
	    .oldSubscriberName = other,
	    .oldSubscriberSize = other_len,
	};
	CUptiResult r;

	other[0] = '\0';
	if (subscriber)
		return CUPTI_SUCCESS;
	if (!api.subscribe && load_api() < 0)
		return CUPTI_ERROR_NOT_INITIALIZED;
	/* _v2 names us to the tool that comes second, and names the one that came first */
	if (api.subscribe_v2)
		r = api.subscribe_v2(&subscriber, dispatch, NULL, &p);
	else
		r = api.subscribe(&subscriber, dispatch, NULL);
	if (r != CUPTI_SUCCESS)
		subscriber = NULL;
	return r;
}

/* Unsubscribe when neither we nor a guest use the subscription. */
static void release_locked(void)
{
	if (subscriber && !load_relaxed(&observing) && !load_relaxed(&guest.fn)) {
		api.unsubscribe(subscriber);
		subscriber = NULL;
	}
}

/* Turn our driver ids on or off, leaving on those the guest wants; stops at the first
 * hard failure while turning on. */
static CUptiResult enable_ours(bool on, CUpti_CallbackId *failed)
{
	for (CUpti_CallbackId id = 0; id < ARRAY_SIZE(id_table); id++) {
		CUptiResult r;

		if (id_table[id].kind == GPUOS_CUPTI_NONE)
			continue;
		r = api.enable_callback(on || guest_wants(CUPTI_CB_DOMAIN_DRIVER_API, id),
					subscriber, CUPTI_CB_DOMAIN_DRIVER_API, id);
		/* an id this libcupti does not know: the driver has no such call either */
		if (r == CUPTI_ERROR_INVALID_PARAMETER && on) {
			gpuos_debug("CUPTI does not know driver callback id %u", id);
			continue;
		}
		if (r != CUPTI_SUCCESS && on) {
			*failed = id;
			return r;
		}
	}
	return CUPTI_SUCCESS;
}

static int start_locked(void)
{
	char other[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN];
	CUpti_CallbackId failed = 0;
	CUptiResult r = hold_locked(other, sizeof(other));

	if (r == CUPTI_ERROR_NOT_INITIALIZED && !api.subscribe) {
		gpuos_warn(CUPTI_SONAME " not found or without the callback API (set CUDA_HOME?); "
					"driver calls cannot be observed, so nothing is diverted");
		return -ENOENT;
	}
	if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
		/* an unnamed subscriber (cuptiSubscribe) reads "CUPTI for <not provided>" */
		other[sizeof(other) - 1] = '\0';
		gpuos_warn("CUPTI is in use by another tool (%s); driver calls cannot be observed, "
			   "so nothing is diverted",
			   other[0] && !strchr(other, '<') ? other : "profiler?");
		return -EBUSY;
	}
	if (r != CUPTI_SUCCESS) {
		gpuos_warn("cuptiSubscribe: %s; driver calls cannot be observed, so nothing is "
			   "diverted",
			   result_name(r));
		return cupti_errno(r);
	}
	/* before the enables: a call observed at ENTER must be observed at EXIT too, and
	 * before this no callback of ours could fire */
	store_relaxed(&observing, true);
	r = enable_ours(true, &failed);
	if (r != CUPTI_SUCCESS) {
		gpuos_warn("cuptiEnableCallback(driver id %u): %s; driver calls cannot be "
			   "observed, so nothing is diverted",
			   failed, result_name(r));
		store_relaxed(&observing, false);
		enable_ours(false, &failed);
		release_locked();
		return cupti_errno(r);
	}
	gpuos_debug("observing driver calls through CUPTI");
	return 0;
}

int gpuos_cupti_start(void)
{
	int rc;

	pthread_mutex_lock(&lock);
	/* DEBUG ONLY (unsafe: nothing orders tasks against other work): lets
	 * compute-sanitizer, which holds CUPTI, look at the worker */
	if (start_rc == 1 && getenv("GPUOS_DEBUG_NO_CUPTI"))
		start_rc = 0;
	if (start_rc == 1)
		start_rc = start_locked();
	rc = start_rc;
	pthread_mutex_unlock(&lock);
	return rc;
}

void gpuos_cupti_stop(void)
{
	CUpti_CallbackId unused;

	pthread_mutex_lock(&lock);
	if (load_relaxed(&observing)) {
		store_relaxed(&observing, false);
		enable_ours(false, &unused);
	}
	release_locked();
	start_rc = 1;
	pthread_mutex_unlock(&lock);
}

/* ---- CUPTI's subscriber calls, as a guest sees them ---- */
#define GPUOS_EXPORT __attribute__((visibility("default")))

static CUptiResult guest_subscribe(CUpti_SubscriberHandle *h, CUpti_CallbackFunc fn, void *ud,
				   CUpti_SubscriberParams *p)
{
	char other[CUPTI_OLD_SUBSCRIBER_NAME_MIN_LEN];
	CUptiResult r;

	if (!h || !fn)
		return CUPTI_ERROR_INVALID_PARAMETER;
	pthread_mutex_lock(&lock);
	if (load_relaxed(&guest.fn)) {
		r = CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
		snprintf(other, sizeof(other), "another profiler");
	} else {
		r = hold_locked(other, sizeof(other));
	}
	if (r == CUPTI_SUCCESS) {
		for (unsigned d = 0; d < CUPTI_CB_DOMAIN_SIZE; d++)
			for (unsigned w = 0; w < GUEST_IDS / 64; w++)
				store_relaxed(&guest.on[d][w], 0);
		guest.userdata = ud;
		/* release: userdata before fn; pairs with the acquire in dispatch */
		store_release(&guest.fn, fn);
		*h = GUEST;
		gpuos_debug("a profiler subscribed to CUPTI: it shares gpuos's subscription");
	} else if (p && p->oldSubscriberName && p->oldSubscriberSize) {
		snprintf(p->oldSubscriberName, p->oldSubscriberSize, "%s", other);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

GPUOS_EXPORT CUptiResult cuptiSubscribe(CUpti_SubscriberHandle *h, CUpti_CallbackFunc fn,
					void *userdata)
{
	return guest_subscribe(h, fn, userdata, NULL);
}

GPUOS_EXPORT CUptiResult cuptiSubscribe_v2(CUpti_SubscriberHandle *h, CUpti_CallbackFunc fn,
					   void *userdata, CUpti_SubscriberParams *p)
{
	return guest_subscribe(h, fn, userdata, p);
}

/* (d, id) on for the guest, or off unless ours; under lock */
static CUptiResult guest_enable_locked(bool on, CUpti_CallbackDomain d, CUpti_CallbackId id)
{
	CUptiResult r = api.enable_callback(on || ours_wants(d, id), subscriber, d, id);

	if (r == CUPTI_SUCCESS)
		guest_set(d, id, on);
	return r;
}

GPUOS_EXPORT CUptiResult cuptiEnableCallback(uint32_t enable, CUpti_SubscriberHandle h,
					     CUpti_CallbackDomain d, CUpti_CallbackId id)
{
	CUptiResult r = CUPTI_ERROR_INVALID_PARAMETER;

	pthread_mutex_lock(&lock);
	if (h == GUEST && load_relaxed(&guest.fn) && (unsigned)d < CUPTI_CB_DOMAIN_SIZE &&
	    id < GUEST_IDS)
		r = guest_enable_locked(enable != 0, d, id);
	pthread_mutex_unlock(&lock);
	return r;
}

static CUptiResult guest_domain_locked(bool on, CUpti_CallbackDomain d)
{
	CUpti_CallbackId unused;
	CUptiResult r;

	if (!api.enable_domain)
		return CUPTI_ERROR_NOT_SUPPORTED;
	r = api.enable_domain(on, subscriber, d);
	if (r != CUPTI_SUCCESS)
		return r;
	for (CUpti_CallbackId id = 0; id < GUEST_IDS; id++)
		guest_set(d, id, on);
	if (!on && d == CUPTI_CB_DOMAIN_DRIVER_API && load_relaxed(&observing))
		r = enable_ours(true, &unused); /* the domain-wide off took ours too */
	return r;
}

GPUOS_EXPORT CUptiResult cuptiEnableDomain(uint32_t enable, CUpti_SubscriberHandle h,
					   CUpti_CallbackDomain d)
{
	CUptiResult r = CUPTI_ERROR_INVALID_PARAMETER;

	pthread_mutex_lock(&lock);
	if (h == GUEST && load_relaxed(&guest.fn) && d > CUPTI_CB_DOMAIN_INVALID &&
	    d < CUPTI_CB_DOMAIN_SIZE)
		r = guest_domain_locked(enable != 0, d);
	pthread_mutex_unlock(&lock);
	return r;
}

GPUOS_EXPORT CUptiResult cuptiEnableAllDomains(uint32_t enable, CUpti_SubscriberHandle h)
{
	CUptiResult r = CUPTI_ERROR_INVALID_PARAMETER;

	pthread_mutex_lock(&lock);
	if (h == GUEST && load_relaxed(&guest.fn)) {
		r = CUPTI_SUCCESS;
		for (int d = CUPTI_CB_DOMAIN_INVALID + 1; d < CUPTI_CB_DOMAIN_SIZE && !r; d++)
			r = guest_domain_locked(enable != 0, (CUpti_CallbackDomain)d);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

GPUOS_EXPORT CUptiResult cuptiGetCallbackState(uint32_t *enable, CUpti_SubscriberHandle h,
					       CUpti_CallbackDomain d, CUpti_CallbackId id)
{
	if (!enable || h != GUEST || (unsigned)d >= CUPTI_CB_DOMAIN_SIZE)
		return CUPTI_ERROR_INVALID_PARAMETER;
	*enable = guest_wants(d, id);
	return CUPTI_SUCCESS;
}

/* Every id the guest enabled off (unless ours), and no guest; under lock. */
static void guest_drop_locked(void)
{
	for (unsigned d = 0; d < CUPTI_CB_DOMAIN_SIZE; d++)
		for (CUpti_CallbackId id = 0; id < GUEST_IDS; id++)
			if (guest_wants(d, id))
				guest_enable_locked(false, d, id);
	store_relaxed(&guest.fn, NULL);
}

GPUOS_EXPORT CUptiResult cuptiUnsubscribe(CUpti_SubscriberHandle h)
{
	CUptiResult r = CUPTI_ERROR_INVALID_PARAMETER;

	pthread_mutex_lock(&lock);
	if (h == GUEST && load_relaxed(&guest.fn)) {
		guest_drop_locked();
		release_locked();
		r = CUPTI_SUCCESS;
	}
	pthread_mutex_unlock(&lock);
	return r;
}

/*
 * A profiler detaching CUPTI (Kineto does with TEARDOWN_CUPTI=1). While we observe, that
 * would end our subscription with it, and tasks would lose their order against the driver
 * calls: only the guest goes.
 */
GPUOS_EXPORT CUptiResult cuptiFinalize(void)
{
	CUptiResult r = CUPTI_SUCCESS;

	pthread_mutex_lock(&lock);
	if (load_relaxed(&guest.fn))
		guest_drop_locked();
	if (load_relaxed(&observing)) {
		gpuos_debug("cuptiFinalize: kept CUPTI attached (gpuos observes driver calls)");
	} else {
		release_locked();
		if (!api.finalize && !api.subscribe)
			load_api();
		r = api.finalize ? api.finalize() : CUPTI_ERROR_NOT_INITIALIZED;
	}
	pthread_mutex_unlock(&lock);
	return r;
}
