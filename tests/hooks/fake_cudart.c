// SPDX-License-Identifier: MIT
/*
 * A CPU test double of libcudart.so.13: just enough of the runtime for tests/hooks/prog.cu
 * to run without a GPU, so CI can test the hooks (registration, launch family, error state)
 * on nvcc-built binaries. Kernels do not run; each launch is appended to $FAKE_CUDART_LOG.
 * Launch errors follow the runtime's rule: a launch error is returned and becomes the last
 * error, which cudaGetLastError returns and clears and cudaPeekAtLastError only returns.
 * The same behaviour is tested against the real runtime on the GPU (tests/gpu/).
 */
#include <cuda_runtime_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define API __attribute__((visibility("default")))

struct fn {
	const void *stub;
	const char *name;
	struct fn *next;
};

static struct fn *fns;
static __thread cudaError_t last_error;
static __thread struct {
	dim3 g, b;
	size_t sm;
	void *st;
} pushed;

static const char *name_of(const void *key)
{
	for (struct fn *f = fns; f; f = f->next)
		if (f->stub == key || (const void *)f == key)
			return f->name;
	return "?";
}

static cudaError_t launch(const char *api, const void *key, dim3 g, dim3 b, size_t sm, void *st)
{
	const char *path = getenv("FAKE_CUDART_LOG");
	cudaError_t rc = cudaSuccess;

	if ((uint64_t)b.x * b.y * b.z > 1024 || !g.x || !g.y || !g.z)
		rc = cudaErrorInvalidConfiguration;
	if (!strcmp(name_of(key), "?"))
		rc = cudaErrorInvalidDeviceFunction;
	if (path) {
		FILE *f = fopen(path, "a");

		if (f) {
			fprintf(f, "%s %s grid=%u,%u,%u block=%u,%u,%u smem=%zu stream=%s rc=%d\n",
				api, name_of(key), g.x, g.y, g.z, b.x, b.y, b.z, sm,
				st ? "s" : "0", rc);
			fclose(f);
		}
	}
	if (rc)
		last_error = rc;
	return rc;
}

API void **__cudaRegisterFatBinary(void *fatCubin)
{
	void **h = malloc(sizeof(void *));

	*h = fatCubin;
	return h;
}

API void __cudaRegisterFatBinaryEnd(void **h)
{
	(void)h;
}

API void __cudaUnregisterFatBinary(void **h)
{
	free(h);
}

API char __cudaInitModule(void **h)
{
	(void)h;
	return 1;
}

API void __cudaRegisterFunction(void **h, const char *hostFun, char *deviceFun,
				const char *deviceName, int tl, uint3 *tid, uint3 *bid, dim3 *bd,
				dim3 *gd, int *ws)
{
	struct fn *f = malloc(sizeof(*f));

	(void)h, (void)deviceFun, (void)tl, (void)tid, (void)bid, (void)bd, (void)gd, (void)ws;
	f->stub = hostFun;
	f->name = deviceName;
	f->next = fns;
	fns = f;
}

API cudaError_t __cudaGetKernel(cudaKernel_t *k, const void *stub)
{
	for (struct fn *f = fns; f; f = f->next)
		if (f->stub == stub) {
			*k = (cudaKernel_t)f; /* a handle distinct from the stub, as the runtime's */
			return cudaSuccess;
		}
	return cudaErrorInvalidDeviceFunction;
}

API unsigned __cudaPushCallConfiguration(dim3 g, dim3 b, size_t sm, void *st)
{
	pushed.g = g, pushed.b = b, pushed.sm = sm, pushed.st = st;
	return 0;
}

API cudaError_t __cudaPopCallConfiguration(dim3 *g, dim3 *b, size_t *sm, void *st)
{
	*g = pushed.g, *b = pushed.b, *sm = pushed.sm, *(void **)st = pushed.st;
	return cudaSuccess;
}

API cudaError_t __cudaLaunchKernel(cudaKernel_t k, dim3 g, dim3 b, void **a, size_t sm,
				   cudaStream_t st)
{
	(void)a;
	return launch("__cudaLaunchKernel", k, g, b, sm, st);
}

API cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t k, dim3 g, dim3 b, void **a, size_t sm,
					cudaStream_t st)
{
	(void)a;
	return launch("__cudaLaunchKernel_ptsz", k, g, b, sm, st);
}

API cudaError_t cudaLaunchKernel(const void *f, dim3 g, dim3 b, void **a, size_t sm,
				 cudaStream_t st)
{
	(void)a;
	return launch("cudaLaunchKernel", f, g, b, sm, st);
}

API cudaError_t cudaLaunchKernel_ptsz(const void *f, dim3 g, dim3 b, void **a, size_t sm,
				      cudaStream_t st)
{
	(void)a;
	return launch("cudaLaunchKernel_ptsz", f, g, b, sm, st);
}

API cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t *c, const void *f, void **a)
{
	(void)a;
	return launch("cudaLaunchKernelExC", f, c->gridDim, c->blockDim, c->dynamicSmemBytes,
		      c->stream);
}

API cudaError_t cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *c, const void *f, void **a)
{
	(void)a;
	return launch("cudaLaunchKernelExC_ptsz", f, c->gridDim, c->blockDim, c->dynamicSmemBytes,
		      c->stream);
}

API cudaError_t cudaGetLastError(void)
{
	cudaError_t e = last_error;

	last_error = cudaSuccess;
	return e;
}

API cudaError_t cudaPeekAtLastError(void)
{
	return last_error;
}

API cudaError_t cudaGetDevice(int *d)
{
	*d = 0;
	return cudaSuccess;
}

API cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int d)
{
	const char *sm = getenv("FAKE_CUDART_SM");
	int s = sm ? atoi(sm) : 90;

	(void)d;
	if (a == cudaDevAttrComputeCapabilityMajor)
		*v = s / 10;
	else if (a == cudaDevAttrComputeCapabilityMinor)
		*v = s % 10;
	else
		*v = 0;
	return cudaSuccess;
}

API cudaError_t cudaMalloc(void **p, size_t n)
{
	*p = calloc(1, n);
	return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}

API cudaError_t cudaFree(void *p)
{
	free(p);
	return cudaSuccess;
}

API cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind k)
{
	(void)k;
	memcpy(d, s, n);
	return cudaSuccess;
}

static cudaError_t copy_async(const char *api, void *d, const void *s, size_t n,
			      enum cudaMemcpyKind k, cudaStream_t st)
{
	const char *path = getenv("FAKE_CUDART_LOG");
	FILE *f = path ? fopen(path, "a") : NULL;

	if (f) {
		fprintf(f, "%s bytes=%zu kind=%d stream=%s\n", api, n, (int)k, st ? "s" : "0");
		fclose(f);
	}
	memmove(d, s, n);
	return cudaSuccess;
}

API cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k,
				cudaStream_t st)
{
	return copy_async("cudaMemcpyAsync", d, s, n, k, st);
}

API cudaError_t cudaMemcpyAsync_ptsz(void *d, const void *s, size_t n, enum cudaMemcpyKind k,
				     cudaStream_t st)
{
	return copy_async("cudaMemcpyAsync_ptsz", d, s, n, k, st);
}

API cudaError_t cudaMemset(void *d, int v, size_t n)
{
	memset(d, v, n);
	return cudaSuccess;
}

API cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
	(void)flags;
	*s = (cudaStream_t)malloc(8);
	return cudaSuccess;
}

API cudaError_t cudaStreamDestroy(cudaStream_t s)
{
	free(s);
	return cudaSuccess;
}

API cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
	(void)s;
	return cudaSuccess;
}

API cudaError_t cudaDeviceSynchronize(void)
{
	return cudaSuccess;
}

/* Per-thread default stream variants (--default-stream per-thread) and the registry probe. */
API cudaError_t cudaMemcpy_ptds(void *d, const void *s, size_t n, enum cudaMemcpyKind k)
{
	return cudaMemcpy(d, s, n, k);
}

API cudaError_t cudaMemset_ptds(void *d, int v, size_t n)
{
	return cudaMemset(d, v, n);
}

API cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t s)
{
	return cudaStreamSynchronize(s);
}

API cudaError_t cudaFuncGetName(const char **name, const void *f)
{
	*name = name_of(f);
	return cudaSuccess;
}

API cudaError_t cudaFuncGetParamInfo(const void *f, size_t i, size_t *off, size_t *size)
{
	(void)f, (void)i, (void)off, (void)size;
	return cudaErrorNotSupported;
}
