// SPDX-License-Identifier: MIT
/*
 * An unmodified CUDA program for ptx_lift on the GPU: built by nvcc's default (sm_75 SASS +
 * compute_75 PTX, -cudart shared), so on a newer GPU the driver runs its PTX, and so may
 * GPUOS's worker once lifted. Small kernels of every shape the lifter handles, in dependent
 * chains on several streams with events, copies and syncs between them; prints a hash of
 * every result. The same output with and without the shim is the test (test_lift.sh).
 *
 *   lift_prog ROUNDS [PAUSE_MS]
 *
 * PAUSE_MS: sleep that long after the first round, as a program with a slow start would (under
 * the shim its lifted operators build in the background meanwhile).
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>
#include <unistd.h>

#define CK(x)                                                                                      \
	do {                                                                                       \
		cudaError_t e_ = (x);                                                              \
		if (e_ != cudaSuccess) {                                                           \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

struct affine {
	float a, b;
};

/* elementwise, a struct by value (params 28 bytes: inline in the task) */
__global__ void axpb(float *y, const float *x, affine f, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = f.a * x[i] + f.b;
}

/* grid-stride loop: reads gridDim */
__global__ void stride_sin(float *y, int n)
{
	for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
		y[i] = sinf(y[i]) * 0.5f + y[i];
}

/* shared-memory tile with a barrier: reverse each block's slice */
__global__ void reverse_tile(float *y, const float *x)
{
	__shared__ float tile[256];
	int base = blockIdx.x * blockDim.x;
	tile[threadIdx.x] = x[base + threadIdx.x];
	__syncthreads();
	y[base + threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}

/* block reduction: warp shuffles, shared memory, an atomic (integers: order-independent) */
__global__ void sum_bits(unsigned long long *out, const float *x, int n)
{
	__shared__ unsigned long long part[32];
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	unsigned long long v = i < n ? (unsigned long long)__float_as_uint(x[i]) : 0;
	for (int o = 16; o; o >>= 1)
		v += __shfl_down_sync(0xffffffffu, v, o);
	if ((threadIdx.x & 31) == 0)
		part[threadIdx.x >> 5] = v;
	__syncthreads();
	if (threadIdx.x < 32) {
		v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0;
		for (int o = 16; o; o >>= 1)
			v += __shfl_down_sync(0xffffffffu, v, o);
		if (threadIdx.x == 0)
			atomicAdd(out, v);
	}
}

/* 2D grid and block */
__global__ void add_2d(float *c, const float *a, const float *b, int w, int h)
{
	int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
	if (x < w && y < h)
		c[y * w + x] = a[y * w + x] + b[x * h % (w * h)];
}

/* 3D grid and block */
__global__ void fill_3d(int *v, int nx, int ny, int nz)
{
	int x = blockIdx.x * blockDim.x + threadIdx.x;
	int y = blockIdx.y * blockDim.y + threadIdx.y;
	int z = blockIdx.z * blockDim.z + threadIdx.z;
	if (x < nx && y < ny && z < nz)
		v[(z * ny + y) * nx + x] += x * 7 + y * 131 + z * 1031 + blockIdx.z;
}

/* a template */
template <typename T> __global__ void scale(T *p, T k, long n)
{
	long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
	if (i < n)
		p[i] = p[i] * k + (T)1;
}

/* a large parameter block (over the task's 32 bytes: through the arena) */
struct poly {
	float c[48];
	int deg;
};
__global__ void horner(float *y, const float *x, poly p, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n) {
		float v = 0.f;
		for (int k = p.deg; k >= 0; k--)
			v = v * x[i] + p.c[k];
		y[i] = v;
	}
}

/* dynamic shared memory */
__global__ void rotate_dyn(float *y, const float *x, int shift)
{
	extern __shared__ float buf[];
	int base = blockIdx.x * blockDim.x;
	buf[threadIdx.x] = x[base + threadIdx.x];
	__syncthreads();
	y[base + threadIdx.x] = buf[(threadIdx.x + shift) % blockDim.x];
}

/* a hazard: an early return before a barrier (falls through, and the report says why) */
__global__ void early_exit(float *y, int n)
{
	__shared__ float s[128];
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i >= n)
		return;
	s[threadIdx.x] = y[i];
	__syncthreads();
	y[i] = s[threadIdx.x ^ 1];
}

static unsigned long long fnv(const void *p, size_t n, unsigned long long h)
{
	const unsigned char *c = (const unsigned char *)p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 0x100000001b3ull;
	return h;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 200;
	int pause_ms = argc > 2 ? atoi(argv[2]) : 0;
	const int n = 1024, w = 40, h = 24, nx = 10, ny = 6, nz = 5;
	float *x, *y, *z, *a2, *c2, *hy = (float *)malloc(n * sizeof(float));
	int *v3;
	double *dd;
	unsigned long long *acc, hacc = 0, hash = 0xcbf29ce484222325ull;
	cudaStream_t s1, s2;
	cudaEvent_t ev;

	CK(cudaMalloc(&x, n * sizeof(float)));
	CK(cudaMalloc(&y, n * sizeof(float)));
	CK(cudaMalloc(&z, n * sizeof(float)));
	CK(cudaMalloc(&a2, w * h * sizeof(float)));
	CK(cudaMalloc(&c2, w * h * sizeof(float)));
	CK(cudaMalloc(&v3, nx * ny * nz * sizeof(int)));
	CK(cudaMalloc(&dd, n * sizeof(double)));
	CK(cudaMalloc(&acc, sizeof(*acc)));
	CK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
	CK(cudaStreamCreate(&s2));
	CK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
	for (int i = 0; i < n; i++)
		hy[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
	CK(cudaMemcpy(x, hy, n * sizeof(float), cudaMemcpyHostToDevice));
	CK(cudaMemset(y, 0, n * sizeof(float)));
	CK(cudaMemset(z, 0, n * sizeof(float)));
	CK(cudaMemset(a2, 0, w * h * sizeof(float)));
	CK(cudaMemset(v3, 0, nx * ny * nz * sizeof(int)));
	CK(cudaMemset(dd, 0, n * sizeof(double)));
	CK(cudaMemset(acc, 0, sizeof(*acc)));

	poly p;
	for (int k = 0; k < 48; k++)
		p.c[k] = 1.0f / (k + 1);
	p.deg = 47;

	for (int r = 0; r < rounds; r++) {
		affine f = {0.999f, 0.001f * (r % 7)};
		/* legacy stream: a dependent chain */
		axpb<<<n / 256, 256>>>(y, x, f, n);
		stride_sin<<<2, 128>>>(y, n);
		reverse_tile<<<n / 256, 256>>>(z, y);
		horner<<<n / 128, 128>>>(x, z, p, n);
		scale<float><<<n / 256, 256>>>(x, 0.5f, n);
		/* another stream, after an event */
		CK(cudaEventRecord(ev, 0));
		CK(cudaStreamWaitEvent(s1, ev, 0));
		sum_bits<<<n / 256, 256, 0, s1>>>(acc, x, n);
		add_2d<<<dim3((w + 15) / 16, (h + 7) / 8), dim3(16, 8), 0, s1>>>(a2, a2, x, w, h);
		rotate_dyn<<<n / 128, 128, 128 * sizeof(float), s1>>>(c2, a2, r % 5 + 1);
		fill_3d<<<dim3(2, 2, 3), dim3(5, 3, 2), 0, s1>>>(v3, nx, ny, nz);
		scale<double><<<n / 256, 256, 0, s1>>>(dd, 1.0001, n);
		/* a blocking stream waits for s1's work through an event */
		CK(cudaEventRecord(ev, s1));
		CK(cudaStreamWaitEvent(s2, ev, 0));
		early_exit<<<n / 128 + 1, 128, 0, s2>>>(y, n);
		axpb<<<n / 256, 256, 0, s2>>>(z, c2, f, w * h < n ? w * h : n);
		if (r == 0 && pause_ms) {
			CK(cudaDeviceSynchronize());
			usleep(pause_ms * 1000);
		}
		if (r % 50 == 49) {
			/* a synchronous copy on the legacy stream sees everything before it */
			CK(cudaMemcpy(hy, z, n * sizeof(float), cudaMemcpyDeviceToHost));
			hash = fnv(hy, n * sizeof(float), hash);
		}
	}
	CK(cudaDeviceSynchronize());
	CK(cudaMemcpy(hy, x, n * sizeof(float), cudaMemcpyDeviceToHost));
	printf("x %016llx\n", fnv(hy, n * sizeof(float), 0xcbf29ce484222325ull));
	CK(cudaMemcpy(hy, y, n * sizeof(float), cudaMemcpyDeviceToHost));
	printf("y %016llx\n", fnv(hy, n * sizeof(float), 0xcbf29ce484222325ull));
	CK(cudaMemcpy(hy, z, n * sizeof(float), cudaMemcpyDeviceToHost));
	printf("z %016llx\n", fnv(hy, n * sizeof(float), 0xcbf29ce484222325ull));
	CK(cudaMemcpy(&hacc, acc, sizeof(hacc), cudaMemcpyDeviceToHost));
	printf("sum %llu\n", hacc);
	float *h2 = (float *)malloc(w * h * sizeof(float));
	CK(cudaMemcpy(h2, c2, w * h * sizeof(float), cudaMemcpyDeviceToHost));
	printf("c2 %016llx\n", fnv(h2, w * h * sizeof(float), 0xcbf29ce484222325ull));
	int *h3 = (int *)malloc(nx * ny * nz * sizeof(int));
	CK(cudaMemcpy(h3, v3, nx * ny * nz * sizeof(int), cudaMemcpyDeviceToHost));
	printf("v3 %016llx\n", fnv(h3, nx * ny * nz * sizeof(int), 0xcbf29ce484222325ull));
	double *hd = (double *)malloc(n * sizeof(double));
	CK(cudaMemcpy(hd, dd, n * sizeof(double), cudaMemcpyDeviceToHost));
	printf("dd %016llx\n", fnv(hd, n * sizeof(double), 0xcbf29ce484222325ull));
	printf("copies %016llx\n", hash);
	return 0;
}
