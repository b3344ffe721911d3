// Launch cost, for the fall-through benchmark (scripts/bench_fallthrough.sh): N launches of
// a tiny kernel back to back; prints host ns per launch and end-to-end ns per launch.
//   bench_launch valid N     real launches
//   bench_launch rejected N  launches the runtime rejects (grid 0): the hook's own cost
//                            stands out against a cheap real call
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

__global__ void tiny(float *p, int i)
{
	if (i < 0)
		p[threadIdx.x] = 0.0f;
}

int main(int argc, char **argv)
{
	bool rejected = argc > 1 && !strcmp(argv[1], "rejected");
	int n = argc > 2 ? atoi(argv[2]) : 100000;
	float *p;
	cudaStream_t s;

	cudaMalloc(&p, 1024);
	cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
	for (int i = 0; i < 2000; i++)
		tiny<<<1, 32, 0, s>>>(p, i);
	cudaStreamSynchronize(s);

	auto t0 = std::chrono::steady_clock::now();
	if (rejected)
		for (int i = 0; i < n; i++)
			tiny<<<0, 32, 0, s>>>(p, i);
	else
		for (int i = 0; i < n; i++)
			tiny<<<1, 32, 0, s>>>(p, i);
	auto t1 = std::chrono::steady_clock::now();
	cudaStreamSynchronize(s);
	auto t2 = std::chrono::steady_clock::now();
	cudaError_t last = cudaGetLastError();
	if (rejected != (last != cudaSuccess)) {
		fprintf(stderr, "unexpected error state %d\n", last);
		return 1;
	}
	printf("%.2f %.2f\n", std::chrono::duration<double, std::nano>(t1 - t0).count() / n,
	       std::chrono::duration<double, std::nano>(t2 - t0).count() / n);
	return 0;
}
