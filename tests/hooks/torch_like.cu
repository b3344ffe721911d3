// A program whose kernels carry PyTorch 2.11's names and argument layouts, for the catalog's
// tests without PyTorch: at::native::vectorized_elementwise_kernel<4, F, std::array<char*, NT>>
// (int N, F f, std::array<char*, NT> data) with CUDAFunctor_add<float>, BinaryFunctor<...,
// MulFunctor<float>> and FillFunctor<float>, launched as PyTorch launches them (128 threads,
// ceil(N / 1024) blocks). Its kernels compute what PyTorch's do, in the same expressions.
// It prints a checksum of its results: under the shim with the catalog on, the same one.
// On the CPU test double kernels do not run; the report still says how each launch went.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>
#include <unistd.h>

namespace at {
namespace native {

template <typename T> struct CUDAFunctor_add {
	T alpha_;
	__device__ T operator()(T a, T b) const { return a + alpha_ * b; }
};

namespace binary_internal {
template <typename T> struct MulFunctor {
	__device__ T operator()(T a, T b) const { return a * b; }
};
} // namespace binary_internal

template <typename arg1_t, typename arg2_t, typename return_t, typename func_t>
struct BinaryFunctor {
	func_t f;
	__device__ return_t operator()(arg1_t a, arg2_t b) const { return f(a, b); }
};

template <typename T> struct FillFunctor {
	T value;
	__device__ T operator()() const { return value; }
};

template <typename F> __device__ float apply(const F &f, char *const *d, int i, char (*)[1])
{
	(void)d, (void)i;
	return f();
}

template <typename F> __device__ float apply(const F &f, char *const *d, int i, char (*)[3])
{
	return f(((const float *)d[1])[i], ((const float *)d[2])[i]);
}

template <int vec_size, typename func_t, typename array_t>
__global__ void vectorized_elementwise_kernel(int N, func_t f, array_t data)
{
	char *const *d = reinterpret_cast<char *const *>(&data);
	for (int j = 0; j < 8; j++) {
		int i = blockIdx.x * 1024 + j * 128 + threadIdx.x;
		if (i < N)
			((float *)d[0])[i] = apply(f, d, i, (char (*)[sizeof(array_t) / 8])0);
	}
}

} // namespace native
} // namespace at

using namespace at::native;

static unsigned checksum(const void *p, size_t n)
{
	const unsigned char *b = (const unsigned char *)p;
	unsigned h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static void launch_add(float *z, const float *x, const float *y, float alpha, int n)
{
	std::array<char *, 3> d = {(char *)z, (char *)x, (char *)y};
	vectorized_elementwise_kernel<4><<<(n + 1023) / 1024, 128>>>(n, CUDAFunctor_add<float>{alpha},
								     d);
}

static void launch_mul(float *z, const float *x, const float *y, int n)
{
	std::array<char *, 3> d = {(char *)z, (char *)x, (char *)y};
	BinaryFunctor<float, float, float, binary_internal::MulFunctor<float>> f{};
	vectorized_elementwise_kernel<4><<<(n + 1023) / 1024, 128>>>(n, f, d);
}

static void launch_fill(float *z, float v, int n)
{
	std::array<char *, 1> d = {(char *)z};
	vectorized_elementwise_kernel<4><<<(n + 1023) / 1024, 128>>>(n, FillFunctor<float>{v}, d);
}

int main(int argc, char **argv)
{
	/* iterations, elements, and a pause after the first iteration (ms): time for the shim to
	 * build its operators, so that the later launches run in the worker */
	int iters = argc > 1 ? atoi(argv[1]) : 10, n = argc > 2 ? atoi(argv[2]) : 1000;
	int pause_ms = argc > 3 ? atoi(argv[3]) : 0;
	size_t bytes = (size_t)n * sizeof(float);
	float *h = (float *)malloc(bytes), *x, *y, *z, *w;
	const float special[] = {1e-40f, -0.0f, 3e38f, -1.5f, 0.75f};

	for (int i = 0; i < n; i++)
		h[i] = i < 5 ? special[i] : (float)((i * 37) % 101) * 0.01f - 0.5f;
	if (cudaMalloc(&x, bytes) || cudaMalloc(&y, bytes) || cudaMalloc(&z, bytes) ||
	    cudaMalloc(&w, bytes)) {
		printf("no memory\n");
		return 1;
	}
	cudaMemcpy(x, h, bytes, cudaMemcpyHostToDevice);
	launch_fill(y, 0.5f, n);
	for (int k = 0; k < iters; k++) {
		launch_add(z, x, y, 2.5f, n); /* z = x + 2.5 y */
		/* device-to-device copies, as PyTorch's copy_ makes them: whole words, then
		 * all bytes but the first (neither end 4-byte aligned) */
		cudaMemcpyAsync(w, z, bytes, cudaMemcpyDeviceToDevice, 0);
		launch_mul(y, w, x, n);	       /* y = z x */
		launch_add(x, y, z, -1.0f, n); /* x = y - z */
		cudaMemcpyAsync((char *)y + 1, (char *)x + 1, bytes - 1, cudaMemcpyDeviceToDevice, 0);
		if (k == 0 && pause_ms) {
			cudaDeviceSynchronize();
			usleep(pause_ms * 1000);
		}
	}
	cudaError_t rc = cudaDeviceSynchronize();
	cudaMemcpy(h, x, bytes, cudaMemcpyDeviceToHost);
	printf("sync: %d\nx checksum %08x x[0..2] %a %a %a\n", (int)rc, checksum(h, bytes), h[0],
	       n > 1 ? h[1] : 0.0f, n > 2 ? h[2] : 0.0f);
	return 0;
}
