// What a batch's stream operations cost the host, next to a launch, and what cuStreamQuery
// tells about the legacy stream: the figures behind fusion/batch.c's open/close choices.
//   bench_memops [N]   host ns per call of each step in a host-bound loop (N/10 steps), back
//                      to back costs (N calls), and the semantics probes' results
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cuda.h>
#include <cuda_runtime.h>
#include <functional>
#include <vector>

__global__ void tiny(float *p, int i)
{
	if (i < 0)
		p[threadIdx.x] = 0.0f;
}

/* spins until *flag (host-mapped) is non-zero */
__global__ void hold(volatile unsigned *flag)
{
	while (!*flag)
		__nanosleep(1000);
}

#define CK(x)                                                                                      \
	do {                                                                                       \
		CUresult r_ = (x);                                                                 \
		if (r_ != CUDA_SUCCESS) {                                                          \
			fprintf(stderr, "%s:%d: %s failed (%d)\n", __FILE__, __LINE__, #x,         \
				(int)r_);                                                          \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static double per_call(int n, const std::function<void(int)> &body, CUstream sync_on)
{
	std::vector<double> v;
	for (int round = 0; round < 5; round++) {
		cuStreamSynchronize(sync_on);
		auto t0 = std::chrono::steady_clock::now();
		for (int i = 0; i < n; i++)
			body(i);
		auto t1 = std::chrono::steady_clock::now();
		cuStreamSynchronize(sync_on);
		v.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / n);
	}
	std::sort(v.begin(), v.end());
	return v[2];
}

static const char *qs(CUresult r)
{
	return r == CUDA_SUCCESS ? "idle" : r == CUDA_ERROR_NOT_READY ? "busy" : "error";
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 20000;
	CUstream L = CU_STREAM_LEGACY, nb, blk;
	CUdeviceptr word;
	float *p;
	unsigned *flag, *dflag;
	cudaDeviceProp prop;

	cudaFree(0);
	cudaGetDeviceProperties(&prop, 0);
	printf("device: %s\n", prop.name);
	cudaMalloc(&p, 1024);
	CK(cuMemAlloc(&word, 64));
	CK(cuMemsetD8(word, 0, 64));
	CK(cuStreamCreate(&nb, CU_STREAM_NON_BLOCKING));
	CK(cuStreamCreate(&blk, CU_STREAM_DEFAULT));
	cudaHostAlloc(&flag, 4, cudaHostAllocMapped);
	cudaHostGetDevicePointer(&dflag, flag, 0);
	for (int i = 0; i < 2000; i++)
		tiny<<<1, 32>>>(p, i);
	cudaDeviceSynchronize();

	CUstreamBatchMemOpParams ops[2] = {};
	ops[0].writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32;
	ops[0].writeValue.address = word;
	ops[0].writeValue.flags = CU_STREAM_WRITE_VALUE_DEFAULT;
	ops[1].waitValue.operation = CU_STREAM_MEM_OP_WAIT_VALUE_32;
	ops[1].waitValue.address = word + 4;
	ops[1].waitValue.value = 0;
	ops[1].waitValue.flags = CU_STREAM_WAIT_VALUE_GEQ;

	/* Host cost of one call where the program is host-bound: the GPU has caught up before
	 * each step (idle gaps), as in an eager PyTorch loop. Mean ns of the timed call. */
	auto gap = [](int us) {
		auto t0 = std::chrono::steady_clock::now();
		while (std::chrono::steady_clock::now() - t0 < std::chrono::microseconds(us))
			;
	};
	auto timed = [](const std::function<void()> &f) {
		auto t0 = std::chrono::steady_clock::now();
		f();
		return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() -
								t0)
		    .count();
	};
	int m = n / 10;
	struct row {
		const char *what;
		std::function<double(int)> step;
	} rows[] = {
	    {"launch, GPU idle", [&](int i) { return timed([&] { tiny<<<1, 32>>>(p, i); }); }},
	    {"write, 5 us after a launch",
	     [&](int i) {
		     tiny<<<1, 32>>>(p, i);
		     gap(5);
		     return timed([&] { cuStreamWriteValue32(L, word, i, 0); });
	     }},
	    {"write, right after a launch",
	     [&](int i) {
		     tiny<<<1, 32>>>(p, i);
		     return timed([&] { cuStreamWriteValue32(L, word, i, 0); });
	     }},
	    {"wait (met), 5 us after a launch",
	     [&](int i) {
		     tiny<<<1, 32>>>(p, i);
		     gap(5);
		     return timed(
			 [&] { cuStreamWaitValue32(L, word + 4, 0, CU_STREAM_WAIT_VALUE_GEQ); });
	     }},
	    {"batch {write, wait}, 5 us after a launch",
	     [&](int i) {
		     tiny<<<1, 32>>>(p, i);
		     gap(5);
		     ops[0].writeValue.value = i;
		     return timed([&] { cuStreamBatchMemOp(L, 2, ops, 0); });
	     }},
	    {"query, 5 us after a launch",
	     [&](int i) {
		     tiny<<<1, 32>>>(p, i);
		     gap(5);
		     return timed([&] { cuStreamQuery(L); });
	     }},
	    {"query, right after a launch",
	     [&](int i) {
		     tiny<<<1, 32>>>(p, i);
		     return timed([&] { cuStreamQuery(L); });
	     }},
	    {"launch, 5 us after a write",
	     [&](int i) {
		     cuStreamWriteValue32(L, word, i, 0);
		     gap(5);
		     return timed([&] { tiny<<<1, 32>>>(p, i); });
	     }},
	    {"launch, 5 us after a launch",
	     [&](int i) {
		     tiny<<<1, 32>>>(p, i);
		     gap(5);
		     return timed([&] { tiny<<<1, 32>>>(p, i); });
	     }},
	};
	printf("host ns per call, GPU idle before each step (20 us gaps), mean of %d\n", m);
	for (auto &r : rows) {
		double sum = 0;
		for (int i = 0; i < m; i++) {
			gap(20);
			sum += r.step(i);
		}
		cuStreamSynchronize(L);
		printf("  %-44s %8.1f\n", r.what, sum / m);
	}
	int idle_after_launch = 0;
	for (int i = 0; i < m; i++) {
		tiny<<<1, 32>>>(p, i);
		gap(5); /* what a batch opening a few microseconds after a tiny kernel would see */
		idle_after_launch += cuStreamQuery(L) == CUDA_SUCCESS;
	}
	cuStreamSynchronize(L);
	printf("query 5 us after a tiny launch: idle %d of %d\n", idle_after_launch, m);

	double launch = per_call(
	    n, [&](int i) { tiny<<<1, 32>>>(p, i); }, L);
	double wr = per_call(
	    n, [&](int i) { cuStreamWriteValue32(L, word, i, 0); }, L);
	double batch = per_call(
	    n,
	    [&](int i) {
		    ops[0].writeValue.value = i;
		    cuStreamBatchMemOp(L, 2, ops, 0);
	    },
	    L);
	printf("back to back (the GPU may be the bottleneck), ns per call, median of 5 x %d\n", n);
	printf("  launch %.1f, write %.1f, batch {write, wait} %.1f\n", launch, wr, batch);

	/* semantics: does a query of the legacy stream see a blocking stream's work? */
	*flag = 0;
	hold<<<1, 1, 0, (cudaStream_t)blk>>>(dflag);
	std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
	while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(20))
		;
	CUresult ql = cuStreamQuery(L), qb = cuStreamQuery(blk), qn = cuStreamQuery(nb),
		 qp = cuStreamQuery(CU_STREAM_PER_THREAD);
	printf(
	    "blocking stream busy: query legacy %s, blocking %s, non-blocking %s, per-thread %s\n",
	    qs(ql), qs(qb), qs(qn), qs(qp));
	*flag = 1;
	cuStreamSynchronize(blk);
	*flag = 0;
	hold<<<1, 1, 0, 0>>>(dflag);
	t0 = std::chrono::steady_clock::now();
	while (std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(20))
		;
	ql = cuStreamQuery(L), qb = cuStreamQuery(blk), qn = cuStreamQuery(nb),
	qp = cuStreamQuery(CU_STREAM_PER_THREAD);
	printf("legacy stream busy: query legacy %s, blocking %s, non-blocking %s, per-thread %s\n",
	       qs(ql), qs(qb), qs(qn), qs(qp));
	*flag = 1;
	cuStreamSynchronize(L);
	return 0;
}
