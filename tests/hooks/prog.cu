// A plain CUDA program for the hook tests: launches through every entry point of the launch
// family, makes one bad launch, and prints what it computed and every error code it saw. Run
// with and without the shim, its output must be the same (on a GPU, and on the CPU test
// double of the runtime, where kernels do not run and results stay as initialised).
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>

struct affine {
	float a, b;
	int pad;
	double c;
};

__global__ void axpb(float *y, const float *x, struct affine f, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = f.a * x[i] + f.b + (float)f.c;
}

__global__ void block_sum(float *out, const float *x, int n)
{
	__shared__ float tile[256];
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	tile[threadIdx.x] = i < n ? x[i] : 0.0f;
	__syncthreads();
	for (int s = blockDim.x / 2; s > 0; s >>= 1) {
		if (threadIdx.x < s)
			tile[threadIdx.x] += tile[threadIdx.x + s];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		out[blockIdx.x] = tile[0];
}

template <typename T> __global__ void scale(T *p, T k, long n)
{
	long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
	if (i < n)
		p[i] *= k;
}

static unsigned checksum(const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *)p;
	unsigned h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

/* The runtime's own view of the parameter layouts, for the registry cross-check on a GPU. */
static int paraminfo(void)
{
	const void *fns[] = { (const void *)axpb, (const void *)block_sum,
			      (const void *)scale<float>, (const void *)scale<double> };
	for (const void *f : fns) {
		const char *name = 0;
		size_t off, size;
		if (cudaFuncGetName(&name, f) != cudaSuccess)
			return 1;
		for (size_t i = 0; cudaFuncGetParamInfo(f, i, &off, &size) == cudaSuccess; i++)
			printf("paraminfo %s %zu %zu %zu\n", name, i, off, size);
	}
	cudaGetLastError(); /* the probe past the last parameter fails */
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "paraminfo"))
		return paraminfo();
	int n = 4096, iters = argc > 1 ? atoi(argv[1]) : 10;
	float hs[16];
	size_t bytes = n * sizeof(float);
	float *hx = (float *)malloc(bytes), *hy = (float *)malloc(bytes);
	float *x, *y, *sums;
	struct affine f = { 1.5f, -0.25f, 0, 0.125 };
	cudaStream_t s;

	for (int i = 0; i < n; i++)
		hx[i] = (float)((i * 7919) % 1000) / 997.0f;
	printf("malloc %d %d %d\n", cudaMalloc(&x, bytes), cudaMalloc(&y, bytes),
	       cudaMalloc(&sums, 16 * sizeof(float)));
	printf("memcpy %d\n", cudaMemcpy(x, hx, bytes, cudaMemcpyHostToDevice));
	printf("memset %d %d\n", cudaMemset(y, 0, bytes), cudaMemset(sums, 0, 16 * sizeof(float)));
	printf("stream %d\n", cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

	for (int it = 0; it < iters; it++) {
		/* <<<>>>: __cudaLaunchKernel (or _ptsz with per-thread default stream) */
		axpb<<<n / 256, 256>>>(y, x, f, n);
		/* s does not wait for the default stream, nor it for s: without these syncs the
		 * three kernels would race on y and the output would depend on timing */
		cudaStreamSynchronize(0);
		scale<float><<<n / 128, 128, 0, s>>>(y, 0.5f, n);
		cudaStreamSynchronize(s);
		block_sum<<<16, 256>>>(sums, y, n);
	}
	/* cudaLaunchKernel with the host stub */
	{
		void *args[] = { &y, &x, &f, &n };
		printf("cudaLaunchKernel %d\n",
		       cudaLaunchKernel((const void *)axpb, dim3(n / 256), dim3(256), args, 0, 0));
	}
	/* cudaLaunchKernelExC through the C++ cudaLaunchKernelEx */
	{
		cudaLaunchConfig_t cfg;
		memset(&cfg, 0, sizeof(cfg));
		cfg.gridDim = dim3(n / 256);
		cfg.blockDim = dim3(256);
		cfg.stream = s;
		double k = 2.0;
		double *dd;
		cudaMalloc(&dd, n * sizeof(double));
		cudaMemset(dd, 0, n * sizeof(double));
		printf("cudaLaunchKernelEx %d\n", cudaLaunchKernelEx(&cfg, scale<double>, dd, k, (long)n));
		cudaFree(dd);
	}
	/* A bad launch: the error codes must be the same with and without the shim. */
	axpb<<<1, 4096>>>(y, x, f, n);
	printf("bad launch: peek %d\n", cudaPeekAtLastError());
	printf("bad launch: get %d\n", cudaGetLastError());
	printf("after: get %d\n", cudaGetLastError());

	printf("sync %d %d\n", cudaStreamSynchronize(s), cudaDeviceSynchronize());
	printf("memcpy back %d\n", cudaMemcpy(hy, y, bytes, cudaMemcpyDeviceToHost));
	printf("memcpy sums %d\n", cudaMemcpy(hs, sums, sizeof(hs), cudaMemcpyDeviceToHost));
	printf("y checksum %08x sums checksum %08x y[5]=%.9g sums[3]=%.9g\n", checksum(hy, bytes),
	       checksum(hs, sizeof(hs)), hy[5], hs[3]);
	cudaStreamDestroy(s);
	cudaFree(x);
	cudaFree(y);
	cudaFree(sums);
	printf("done %d\n", cudaGetLastError());
	return 0;
}
