// SPDX-License-Identifier: MIT
/*
 * The driver table: libcuda.so.1 is opened once, cuGetProcAddress_v2 gives every entry point
 * in kernels/cu.def at CUDA 12.0 semantics (default-stream variants: legacy).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#include "common/log.h"
#include "kernels/cu.h"

typedef CUresult (*get_proc_t)(const char *, void **, int, cuuint64_t,
			       CUdriverProcAddressQueryResult *);

static struct gpuos_cu cu;
static const struct gpuos_cu *cu_ok;
static pthread_once_t cu_once = PTHREAD_ONCE_INIT;

static void cu_load(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	get_proc_t get;

	if (!h) {
		gpuos_info("no CUDA driver (%s): the engine stays off", dlerror());
		return;
	}
	get = (get_proc_t)dlsym(h, "cuGetProcAddress_v2");
	if (!get) {
		gpuos_warn("libcuda.so.1 has no cuGetProcAddress_v2: the engine stays off");
		return;
	}
/* The name is stringified here, at the first macro level: cuda.h maps some names to _v2
 * macros, which cuGetProcAddress does not know. */
#define RESOLVE(str, ptr, version)                                                                 \
	{                                                                                          \
		CUdriverProcAddressQueryResult q;                                                  \
		if (get(str, (void **)&(ptr), version, CU_GET_PROC_ADDRESS_DEFAULT, &q) ||         \
		    !(ptr)) {                                                                      \
			gpuos_warn("driver lacks %s: the engine stays off", str);                  \
			return;                                                                    \
		}                                                                                  \
	}
#define CU(ret, name, params)		  RESOLVE(#name, cu.name, 12000)
#define CU_AT(ret, name, params, version) RESOLVE(#name, cu.name, version)
#include "kernels/cu.def"
	cu_ok = &cu;
}

const struct gpuos_cu *gpuos_cu_get(void)
{
	pthread_once(&cu_once, cu_load);
	return cu_ok;
}

int gpuos_cu_err(CUresult r, const char *what, const char *file, int line)
{
	const char *name = "?";

	if (cu_ok)
		cu.cuGetErrorName(r, &name);
	gpuos_warn("%s:%d: %s: %s", file, line, what, name ? name : "?");
	switch (r) {
	case CUDA_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CUDA_ERROR_NO_DEVICE:
	case CUDA_ERROR_NOT_INITIALIZED:
		return -ENODEV;
	case CUDA_ERROR_INVALID_VALUE:
	case CUDA_ERROR_INVALID_HANDLE:
		return -EINVAL;
	case CUDA_ERROR_NOT_READY:
		return -EAGAIN;
	case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED:
	case CUDA_ERROR_STREAM_CAPTURE_INVALIDATED:
		return -EBUSY;
	default:
		return -EIO;
	}
}
