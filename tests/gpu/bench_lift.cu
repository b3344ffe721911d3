// SPDX-License-Identifier: MIT
/*
 * The dependent tiny-kernel chain as an unmodified program: N launches of y = a*y + b on 1024
 * floats (<<<4, 256>>>, each reading the last one's output) on one stream, timed from the
 * first launch to the end of a sync. Run plainly, under the shim (the launches become lifted
 * tasks) and as one CUDA graph of the same N launches (scripts/bench_lift.sh).
 *
 *   bench_lift eager|graph N     prints "us_per_launch=... hash=..."
 */
#include <chrono>
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

__global__ void axpb(float *y, float a, float b, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		y[i] = a * y[i] + b;
}

static double now_us(void)
{
	return std::chrono::duration<double, std::micro>(
		   std::chrono::steady_clock::now().time_since_epoch())
	    .count();
}

int main(int argc, char **argv)
{
	const int n = 1024;
	bool graph = argc > 1 && !strcmp(argv[1], "graph");
	int N = argc > 2 ? atoi(argv[2]) : 10000;
	float *y, h[n];
	cudaStream_t s;

	CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	CK(cudaMalloc(&y, n * sizeof(float)));
	CK(cudaMemsetAsync(y, 0, n * sizeof(float), s));
	/* warm up; under the shim the first launches run while the operator builds */
	for (int w = 0; w < 6; w++) {
		for (int i = 0; i < 1000; i++)
			axpb<<<4, 256, 0, s>>>(y, 0.999f, 0.001f, n);
		CK(cudaStreamSynchronize(s));
		usleep(200000);
	}
	CK(cudaMemsetAsync(y, 0, n * sizeof(float), s));
	CK(cudaStreamSynchronize(s));
	double t0, t1;
	if (graph) {
		cudaGraph_t g;
		cudaGraphExec_t ge;
		CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
		for (int i = 0; i < N; i++)
			axpb<<<4, 256, 0, s>>>(y, 0.999f, 0.001f, n);
		CK(cudaStreamEndCapture(s, &g));
		CK(cudaGraphInstantiate(&ge, g, 0));
		CK(cudaGraphUpload(ge, s));
		CK(cudaStreamSynchronize(s));
		t0 = now_us();
		CK(cudaGraphLaunch(ge, s));
		CK(cudaStreamSynchronize(s));
		t1 = now_us();
	} else {
		t0 = now_us();
		for (int i = 0; i < N; i++)
			axpb<<<4, 256, 0, s>>>(y, 0.999f, 0.001f, n);
		CK(cudaStreamSynchronize(s));
		t1 = now_us();
	}
	CK(cudaMemcpy(h, y, sizeof(h), cudaMemcpyDeviceToHost));
	unsigned long long hash = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < sizeof(h); i++)
		hash = (hash ^ ((unsigned char *)h)[i]) * 0x100000001b3ull;
	printf("%s N=%d us_per_launch=%.3f hash=%016llx\n", graph ? "graph" : "eager", N,
	       (t1 - t0) / N, hash);
	return 0;
}
