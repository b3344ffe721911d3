// SPDX-License-Identifier: MIT
/*
 * The kernel registry: every kernel registered by any module, found in O(1) by its host stub
 * or its cudaKernel_t. Writers (registration, rare) take one mutex; readers (every launch)
 * take none: open addressing over a table that is only ever replaced whole, published with a
 * release store; old tables are kept, since a reader may still be walking one.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomics.h"
#include "common/log.h"
#include "interpose/interpose.h"
#include "interpose/real.h"

char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

struct slot {
	const void *_Atomic key;
	void *_Atomic val; /* NULL: removed (the key stays as a tombstone) */
};

struct table {
	size_t mask, used;
	struct table *older; /* kept alive for readers still on it */
	struct slot slots[];
};

struct ptrmap {
	struct table *_Atomic tab;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ptrmap kernels_by_key; /* stub or cudaKernel_t -> struct gpuos_kernel */
static struct ptrmap fatbins;	     /* handle -> struct gpuos_fatbin_reg */
static struct gpuos_live *_Atomic live_list;
/* Launches of handles nobody registered. */
static struct gpuos_live unknown_live = { .why = GPUOS_WHY_UNKNOWN, .lift = -1 };
static uint64_t nkernels;

static inline size_t hash_ptr(const void *p)
{
	uint64_t h = (uintptr_t)p * 0x9e3779b97f4a7c15ull;

	return (size_t)(h ^ (h >> 29));
}

static void *map_get(struct ptrmap *m, const void *key)
{
	/* acquire: pairs with the release in map_grow, so the slots we walk are initialised */
	struct table *t = load_acquire(&m->tab);

	if (!t)
		return NULL;
	for (size_t i = hash_ptr(key) & t->mask;; i = (i + 1) & t->mask) {
		/* acquire: pairs with the release of key in map_put; val was stored before it */
		const void *k = load_acquire(&t->slots[i].key);

		if (k == key)
			/* acquire: pairs with the release of val in map_put (re-registration) */
			return load_acquire(&t->slots[i].val);
		if (!k)
			return NULL;
	}
}

/* Under reg_lock. */
static int map_grow(struct ptrmap *m)
{
	struct table *old = load_relaxed(&m->tab);
	size_t n = old ? (old->mask + 1) * 2 : 4096;
	struct table *t = calloc(1, sizeof(*t) + n * sizeof(struct slot));

	if (!t)
		return -ENOMEM;
	t->mask = n - 1;
	t->older = old;
	for (size_t j = 0; old && j <= old->mask; j++) {
		const void *k = load_relaxed(&old->slots[j].key);
		void *v = load_relaxed(&old->slots[j].val);
		size_t i;

		if (!k || !v)
			continue; /* tombstones are not carried over */
		for (i = hash_ptr(k) & t->mask; t->slots[i].key; i = (i + 1) & t->mask)
			;
		store_relaxed(&t->slots[i].val, v);
		store_relaxed(&t->slots[i].key, k);
		t->used++;
	}
	/* release: pairs with the acquire in map_get; the copied slots are visible first */
	store_release(&m->tab, t);
	return 0;
}

/* Under reg_lock. val == NULL removes. */
static int map_put(struct ptrmap *m, const void *key, void *val)
{
	struct table *t = load_relaxed(&m->tab);
	size_t i;

	if (!t || (t->used + 1) * 10 > (t->mask + 1) * 7) {
		if (!val && !t)
			return 0;
		if (map_grow(m))
			return -ENOMEM;
		t = load_relaxed(&m->tab);
	}
	for (i = hash_ptr(key) & t->mask;; i = (i + 1) & t->mask) {
		const void *k = load_relaxed(&t->slots[i].key);

		if (k == key) {
			/* release: pairs with the acquire of val in map_get */
			store_release(&t->slots[i].val, val);
			return 0;
		}
		if (!k)
			break;
	}
	if (!val)
		return 0;
	store_relaxed(&t->slots[i].val, val);
	/* release: pairs with the acquire of key in map_get; val is set before the key shows */
	store_release(&t->slots[i].key, key);
	t->used++;
	return 0;
}

/* Kernel records are small and many (libtorch_cuda registers ~131k): carve them from chunks. */
static struct gpuos_kernel *kernel_alloc(void)
{
	static struct gpuos_kernel *chunk;
	static size_t left;

	if (!left) {
		chunk = calloc(4096, sizeof(*chunk));
		if (!chunk)
			return NULL;
		left = 4096;
	}
	left--;
	return chunk++;
}

void gpuos_reg_add_fatbin(void **handle, const void *wrapper)
{
	struct gpuos_fatbin_reg *fb = calloc(1, sizeof(*fb));

	if (!fb || !handle)
		goto fail;
	fb->handle = handle;
	fb->wrapper = wrapper;
	pthread_mutex_lock(&reg_lock);
	if (map_put(&fatbins, handle, fb)) {
		pthread_mutex_unlock(&reg_lock);
		goto fail;
	}
	pthread_mutex_unlock(&reg_lock);
	return;
fail:
	free(fb);
	gpuos_debug("registry: fatbin %p not recorded", (void *)handle);
}

void gpuos_reg_add_function(void **handle, const void *stub, const char *mangled)
{
	struct gpuos_fatbin_reg *fb;
	struct gpuos_kernel *k;

	if (!stub || !mangled)
		return;
	pthread_mutex_lock(&reg_lock);
	fb = map_get(&fatbins, handle);
	k = kernel_alloc();
	if (!k)
		goto out;
	k->stub = stub;
	k->mangled = mangled;
	k->fb = fb;
	if (fb) {
		k->next_in_fb = fb->kernels;
		fb->kernels = k;
	}
	if (map_put(&kernels_by_key, stub, k) == 0)
		nkernels++;
out:
	pthread_mutex_unlock(&reg_lock);
}

void gpuos_reg_add_handle(const void *stub, cudaKernel_t handle)
{
	struct gpuos_kernel *k;

	if (!handle)
		return;
	pthread_mutex_lock(&reg_lock);
	k = map_get(&kernels_by_key, stub);
	if (k && k->handle != handle) {
		k->handle = handle;
		map_put(&kernels_by_key, handle, k);
	}
	pthread_mutex_unlock(&reg_lock);
}

/*
 * A module goes away (dlclose or exit): its stubs and handles may be reused by the next
 * module, so their keys go. Live records keep their own copies of the names for the report.
 */
void gpuos_reg_remove_fatbin(void **handle)
{
	struct gpuos_fatbin_reg *fb;

	pthread_mutex_lock(&reg_lock);
	fb = map_get(&fatbins, handle);
	if (fb) {
		for (struct gpuos_kernel *k = fb->kernels; k; k = k->next_in_fb) {
			map_put(&kernels_by_key, k->stub, NULL);
			if (k->handle)
				map_put(&kernels_by_key, k->handle, NULL);
		}
		map_put(&fatbins, handle, NULL);
	}
	pthread_mutex_unlock(&reg_lock);
}

struct gpuos_kernel *gpuos_reg_lookup(const void *key)
{
	return map_get(&kernels_by_key, key);
}

char *gpuos_demangle(const char *mangled)
{
	int status = 0;
	char *d = __cxa_demangle(mangled, NULL, NULL, &status);

	return d ? d : strdup(mangled);
}

enum gpuos_why gpuos_reg_decide(const struct gpuos_cfg *cfg, const char *demangled)
{
	if (!cfg->enable)
		return GPUOS_WHY_DISABLED;
	switch (gpuos_cfg_match(cfg, demangled)) {
	case GPUOS_CFG_DENY:
		return cfg->nallow ? GPUOS_WHY_NOT_ALLOWED : GPUOS_WHY_DENIED;
	default:
		break;
	}
	if (cfg->catalog && !gpuos_catalog_key(demangled, NULL, 0))
		return GPUOS_WHY_DIVERTED;
	return GPUOS_WHY_NO_CATALOG;
}

struct gpuos_live *gpuos_reg_first_launch(struct gpuos_kernel *k)
{
	struct gpuos_live *l;

	if (!k)
		return &unknown_live;
	gpuos_shim_init(); /* the config decides */
	pthread_mutex_lock(&reg_lock);
	l = load_relaxed(&k->live);
	if (l)
		goto out; /* another thread got here first */
	l = calloc(1, sizeof(*l));
	if (!l) {
		l = &unknown_live;
		goto out;
	}
	l->kernel = k;
	l->mangled = strdup(k->mangled);
	l->demangled = gpuos_demangle(k->mangled);
	l->why = gpuos_reg_decide(&gpuos_shim.cfg, l->demangled ? l->demangled : k->mangled);
	/* a catalog kernel, or no catalog entry but it may run lifted: this first launch goes
	 * through (it sets up the module), then gpuos_catalog_prepare or gpuos_lifted_prepare
	 * says */
	l->catalog = l->why == GPUOS_WHY_DIVERTED;
	if (l->catalog || (l->why == GPUOS_WHY_NO_CATALOG && gpuos_shim.cfg.lift))
		l->why = GPUOS_WHY_BUILDING;
	l->lift = -1;
	l->info_pending = 1;
	l->next = load_relaxed(&live_list);
	/* release: pairs with the acquire in gpuos_reg_live_list */
	store_release(&live_list, l);
	/* release: pairs with the acquire of k->live on the launch path */
	store_release(&k->live, l);
out:
	pthread_mutex_unlock(&reg_lock);
	return l;
}

void gpuos_reg_publish(struct gpuos_live *l)
{
	pthread_mutex_lock(&reg_lock);
	l->next = load_relaxed(&live_list);
	/* release: pairs with the acquire in gpuos_reg_live_list */
	store_release(&live_list, l);
	pthread_mutex_unlock(&reg_lock);
}

struct gpuos_live *gpuos_reg_live_list(void)
{
	return load_acquire(&live_list);
}

/* Under reg_lock: read the fatbin's entry list and its cubin for @sm, fill its kernels. */
static void read_fatbin(struct gpuos_fatbin_reg *fb, unsigned sm)
{
	struct gpuos_fatbin_entry e;
	struct gpuos_cubin *cubin = NULL;
	const void *fat;
	size_t len, pos = 0, nk = 0, nparams = 0;
	Dl_info dl;
	int rc;

	fb->sm = sm;
	if (dladdr(fb->wrapper, &dl) && dl.dli_fname)
		fb->path = strdup(dl.dli_fname);
	rc = gpuos_fatbin_from_wrapper(fb->wrapper, &fat, &len);
	if (rc)
		goto out;
	while ((rc = gpuos_fatbin_next(fat, len, &pos, &e)) == 1) {
		if (e.kind == GPUOS_FATBIN_PTX && fb->nptx < 8)
			fb->ptx_archs[fb->nptx++] = e.arch;
		if (e.kind == GPUOS_FATBIN_CUBIN && fb->nsass < 8)
			fb->sass_archs[fb->nsass++] = e.arch;
	}
	if (rc < 0)
		goto out;
	rc = gpuos_cubin_from_fatbin(fat, len, sm, &cubin, NULL);
	if (rc)
		goto out;

	/* One allocation for the metadata of all the fatbin's kernels, params after it. */
	for (struct gpuos_kernel *k = fb->kernels; k; k = k->next_in_fb) {
		const struct gpuos_kinfo *ki = gpuos_cubin_find(cubin, k->mangled);

		nk++;
		nparams += ki ? ki->nparams : 0;
	}
	fb->meta = calloc(1, nk * sizeof(*fb->meta) + nparams * sizeof(struct gpuos_kparam));
	if (!fb->meta) {
		rc = -ENOMEM;
		goto out;
	}
	{
		struct gpuos_kmeta *m = fb->meta;
		struct gpuos_kparam *p = (struct gpuos_kparam *)(fb->meta + nk);

		for (struct gpuos_kernel *k = fb->kernels; k; k = k->next_in_fb, m++) {
			const struct gpuos_kinfo *ki = gpuos_cubin_find(cubin, k->mangled);

			if (!ki)
				continue;
			memcpy(p, ki->params, ki->nparams * sizeof(*p));
			m->params = p;
			p += ki->nparams;
			m->nparams = ki->nparams;
			m->param_bytes = ki->param_bytes;
			m->regs = ki->regs;
			m->static_smem = ki->static_smem;
			m->local_bytes = ki->local_bytes;
			m->max_threads = ki->max_threads;
			m->flags = ki->flags;
			k->meta = m;
		}
	}
	rc = 0;
out:
	gpuos_cubin_close(cubin);
	fb->info_state = rc ? rc : 1;
	if (rc)
		gpuos_debug("registry: cannot read fatbin %p: %s", fb->wrapper, strerror(-rc));
}

/* The current device's compute capability, leaving the runtime's error state as it was. */
unsigned gpuos_reg_current_sm(void)
{
	int dev = 0, major = 0, minor = 0;
	cudaError_t before = REAL(cudaPeekAtLastError) ? REAL(cudaPeekAtLastError)() : cudaSuccess;
	cudaError_t rc = cudaErrorUnknown;

	if (REAL(cudaGetDevice) && REAL(cudaDeviceGetAttribute)) {
		rc = REAL(cudaGetDevice)(&dev);
		if (rc == cudaSuccess)
			rc = REAL(cudaDeviceGetAttribute)(&major, cudaDevAttrComputeCapabilityMajor,
							  dev);
		if (rc == cudaSuccess)
			rc = REAL(cudaDeviceGetAttribute)(&minor, cudaDevAttrComputeCapabilityMinor,
							  dev);
	}
	if (rc != cudaSuccess && before == cudaSuccess && REAL(cudaGetLastError))
		REAL(cudaGetLastError)(); /* drop the error we caused */
	return rc == cudaSuccess ? (unsigned)(major * 10 + minor) : 0;
}

void gpuos_reg_read_info(struct gpuos_live *l)
{
	struct gpuos_kernel *k = l->kernel;
	unsigned sm;

	/* Only one caller does the work; the launch path stops asking either way. */
	if (!k || !k->fb || !atomic_exchange(&l->info_pending, 0))
		return;
	sm = gpuos_reg_current_sm(); /* outside the lock: it calls into the runtime */
	pthread_mutex_lock(&reg_lock);
	if (k->fb->info_state == 0 && sm)
		read_fatbin(k->fb, sm);
	pthread_mutex_unlock(&reg_lock);
}

void gpuos_reg_reset_counts(void)
{
	for (struct gpuos_live *l = load_relaxed(&live_list); l; l = l->next)
		for (int i = 0; i < GPUOS_WHY_COUNT; i++)
			store_relaxed(&l->count[i], 0);
	for (int i = 0; i < GPUOS_WHY_COUNT; i++)
		store_relaxed(&unknown_live.count[i], 0);
}

void gpuos_reg_lock(void)
{
	pthread_mutex_lock(&reg_lock);
}

void gpuos_reg_unlock(void)
{
	pthread_mutex_unlock(&reg_lock);
}

uint64_t gpuos_reg_nkernels(void)
{
	return nkernels;
}

struct gpuos_live *gpuos_reg_unknown(void)
{
	return &unknown_live;
}
