// A library with kernels, loaded by tests/hooks/dlopen_main.c in a local scope.
#include <cuda_runtime.h>

__global__ void user_fill(int *p, int v)
{
	p[threadIdx.x] = v;
}

extern "C" __attribute__((visibility("default"))) int user_run(int times)
{
	int *p;
	int rc = cudaMalloc(&p, 32 * sizeof(int));
	for (int i = 0; i < times; i++)
		user_fill<<<1, 32>>>(p, i);
	rc |= cudaGetLastError();
	cudaFree(p);
	return rc;
}
