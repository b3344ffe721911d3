// SPDX-License-Identifier: MIT
#include <dlfcn.h>
#include <stddef.h>

#include "common/log.h"
#include "interpose/real.h"

void *_Atomic gpuos_real_ptr[GPUOS_HOOK_COUNT];

const char *const gpuos_hook_names[GPUOS_HOOK_COUNT] = {
#define HOOK(ret, name, params, args) [GPUOS_HOOK_##name] = #name,
#define USE HOOK
#include "interpose/hooks.def"
};

static const char *const runtime_names[] = { "libcudart.so.13", "libcudart.so.12",
					     "libcudart.so" };

static int is_self(void *p)
{
	Dl_info self, other;

	if (!dladdr((void *)gpuos_real_resolve, &self) || !dladdr(p, &other))
		return 0;
	return self.dli_fbase == other.dli_fbase;
}

void *gpuos_real_resolve(enum gpuos_hook_id id)
{
	static _Atomic int warned;
	const char *name = gpuos_hook_names[id];
	void *p = dlsym(RTLD_NEXT, name);

	if (p && is_self(p))
		p = NULL;
	for (size_t i = 0; !p && i < sizeof(runtime_names) / sizeof(runtime_names[0]); i++) {
		void *h = dlopen(runtime_names[i], RTLD_LAZY | RTLD_NOLOAD);

		if (!h)
			continue;
		p = dlsym(h, name);
		if (p && is_self(p))
			p = NULL;
		dlclose(h); /* NOLOAD took a reference; the runtime stays loaded */
	}
	if (!p) {
		if (!atomic_exchange(&warned, 1))
			gpuos_err("no CUDA runtime provides %s; is libcudart loaded?", name);
		return NULL;
	}
	/* relaxed: see gpuos_real_fn; racing resolvers store the same value */
	store_relaxed(&gpuos_real_ptr[id], p);
	return p;
}
