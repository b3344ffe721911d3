// SPDX-License-Identifier: MIT
/*
 * Engine benchmark, every figure measured in this one run on this device:
 *   chain   a dependent chain of N tiny tasks (y = a*y + b on 1024 floats, one stream):
 *           plain launches, a CUDA graph of the same chain, GPUOS tasks; end to end per task,
 *           and the host cost per gpuos_submit; results compared bit for bit
 *   multi   independent tasks from several streams and threads: tasks per second, GPUOS and
 *           plain launches
 * Usage: bench_engine [N] [reps]   (GPUOS_WORKERS, GPUOS_WORKER_THREADS set the worker shape)
 */
#include <cuda_runtime.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <algorithm>
#include <vector>

#include "include/gpuos.h"

#define CK(x)                                                                                      \
	do {                                                                                       \
		cudaError_t e_ = (x);                                                              \
		if (e_ != cudaSuccess) {                                                           \
			fprintf(stderr, "%s:%d: %s\n", #x, __LINE__, cudaGetErrorString(e_));      \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

__global__ void k_spin(unsigned long long ns)
{
	unsigned long long t0, t;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
	do
		asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
	while (t - t0 < ns);
}

__global__ void k_axpb(float *y, const float *x, unsigned long long n, float a, float b)
{
	for (unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += gridDim.x * blockDim.x)
		y[i] = __fmaf_rn(a, x[i], b);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t fbits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v[v.size() / 2];
}

static const size_t n = 1024;
static const float A = 0.999f, B = 0.001f;

static void submit_axpb(cudaStream_t s, float *y)
{
	uint64_t args[5] = { (uint64_t)y, (uint64_t)y, n, fbits(A), fbits(B) };
	int rc = gpuos_submit(s, GPUOS_OP_AXPB, args, 5, 0);
	if (rc == -EAGAIN) /* parked a moment for a device-wide call: the kernel instead */
		k_axpb<<<4, 256, 0, s>>>(y, y, n, A, B);
	else if (rc) {
		fprintf(stderr, "gpuos_submit: %d\n", rc);
		exit(1);
	}
}

/* ---- multi ---- */
struct mctx {
	cudaStream_t s[2];
	float *y[2];
	int m;
	bool gpuos;
	pthread_barrier_t *bar;
};

static void *multi_thread(void *arg)
{
	struct mctx *c = (struct mctx *)arg;
	pthread_barrier_wait(c->bar);
	for (int i = 0; i < c->m; i++) {
		int k = i & 1;
		if (c->gpuos)
			submit_axpb(c->s[k], c->y[k]);
		else
			k_axpb<<<4, 256, 0, c->s[k]>>>(c->y[k], c->y[k], n, A, B);
	}
	for (int k = 0; k < 2; k++) {
		if (c->gpuos)
			gpuos_flush(c->s[k], 0);
		CK(cudaStreamSynchronize(c->s[k]));
	}
	return NULL;
}

static double multi(int threads, int m, bool gpuos)
{
	std::vector<mctx> c(threads);
	std::vector<pthread_t> th(threads);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, threads + 1);
	for (int t = 0; t < threads; t++) {
		for (int k = 0; k < 2; k++) {
			CK(cudaStreamCreateWithFlags(&c[t].s[k], cudaStreamNonBlocking));
			CK(cudaMalloc(&c[t].y[k], n * 4));
			CK(cudaMemset(c[t].y[k], 0, n * 4));
		}
		c[t].m = m;
		c[t].gpuos = gpuos;
		c[t].bar = &bar;
		pthread_create(&th[t], NULL, multi_thread, &c[t]);
	}
	CK(cudaDeviceSynchronize());
	double t0 = now();
	pthread_barrier_wait(&bar);
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	double dt = now() - t0;
	for (int t = 0; t < threads; t++)
		for (int k = 0; k < 2; k++) {
			CK(cudaFree(c[t].y[k]));
			CK(cudaStreamDestroy(c[t].s[k]));
		}
	return (double)threads * m / dt;
}

int main(int argc, char **argv)
{
	int N = argc > 1 ? atoi(argv[1]) : 10000, reps = argc > 2 ? atoi(argv[2]) : 5;
	int ndev = 0;
	cudaDeviceProp prop;
	cudaStream_t s;
	float *y;
	std::vector<float> hp(n), hg(n);
	std::vector<double> tplain, tgraph, tgpuos, tsubmit;
	struct gpuos_options o = { 0 };

	if (cudaGetDeviceCount(&ndev) != cudaSuccess || !ndev) {
		printf("no GPU: skipped\n");
		return 77;
	}
	CK(cudaGetDeviceProperties(&prop, 0));
	/* GPUOS_WORKERS / GPUOS_WORKER_THREADS reach the engine through the shim's config */
	o.idle_ms = 1000;
	CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
	CK(cudaMalloc(&y, n * 4));

	/* a CUDA graph of 1000 nodes of the same kernel */
	cudaGraph_t g;
	cudaGraphExec_t ge;
	const int GN = 1000;
	CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
	for (int i = 0; i < GN; i++)
		k_axpb<<<4, 256, 0, s>>>(y, y, n, A, B);
	CK(cudaStreamEndCapture(s, &g));
	CK(cudaGraphInstantiate(&ge, g, 0));

	/* plain launches and the graph first: before gpuos_init, no driver-call observer */
	std::vector<double> tplain_obs;
	auto plain_chain = [&](std::vector<double> *out) {
		CK(cudaMemsetAsync(y, 0, n * 4, s));
		CK(cudaStreamSynchronize(s));
		double t0 = now();
		for (int i = 0; i < N; i++)
			k_axpb<<<4, 256, 0, s>>>(y, y, n, A, B);
		CK(cudaStreamSynchronize(s));
		double t1 = now();
		CK(cudaMemcpy(hp.data(), y, n * 4, cudaMemcpyDeviceToHost));
		if (out)
			out->push_back((t1 - t0) / N);
	};
	for (int r = 0; r < reps + 1; r++) {
		plain_chain(r ? &tplain : NULL);
		CK(cudaMemsetAsync(y, 0, n * 4, s));
		CK(cudaStreamSynchronize(s));
		double t2 = now();
		for (int i = 0; i < N / GN; i++)
			CK(cudaGraphLaunch(ge, s));
		CK(cudaStreamSynchronize(s));
		double t3 = now();
		if (r)
			tgraph.push_back((t3 - t2) / (N / GN * GN));
	}
	int threads = getenv("BENCH_THREADS") ? atoi(getenv("BENCH_THREADS")) : 4;
	int m = 100000;
	std::vector<double> mg, mp;
	for (int r = 0; r < 3; r++)
		mp.push_back(multi(threads, m / 4, false));

	int rc = gpuos_init(&o);
	if (rc) {
		printf("gpuos_init: %d\n", rc);
		return 1;
	}
	for (int r = 0; r < reps + 1; r++) {
		CK(cudaMemsetAsync(y, 0, n * 4, s));
		CK(cudaStreamSynchronize(s));
		double t4 = now();
		for (int i = 0; i < N; i++)
			submit_axpb(s, y);
		double t5 = now();
		gpuos_flush(s, 0);
		CK(cudaStreamSynchronize(s));
		double t6 = now();
		CK(cudaMemcpy(hg.data(), y, n * 4, cudaMemcpyDeviceToHost));
		if (memcmp(hp.data(), hg.data(), n * 4)) {
			printf("FAIL: chain results differ (plain %a, gpuos %a)\n", hp[0], hg[0]);
			return 1;
		}
		if (r == 0)
			continue; /* warm-up */
		tgpuos.push_back((t6 - t4) / N);
		tsubmit.push_back((t5 - t4) / N);
		/* plain launches again, now with the driver-call observer on */
		plain_chain(&tplain_obs);
	}
	/* The worker alone: N tasks queued behind a 20 ms kernel (their batch's go waits for
	 * it), timed with events from its end to the batch's done: the GPU cost per task,
	 * whatever the host's submit rate. The submits meet an idle worker here. */
	std::vector<double> tworker, tsub_idle;
	const int NG = 4000; /* fits the ring: nobody waits for room */
	cudaEvent_t e0, e1;
	CK(cudaEventCreate(&e0));
	CK(cudaEventCreate(&e1));
	/* kind 0: AXPB on 1024 floats (the chain's task); 1: NOP; 2: AXPB on 32 floats */
	auto gated = [&](int kind, std::vector<double> *wk, std::vector<double> *sub) {
		CK(cudaMemsetAsync(y, 0, n * 4, s));
		k_spin<<<1, 1, 0, s>>>(20 * 1000 * 1000ull);
		CK(cudaEventRecord(e0, s));
		double t0 = now();
		for (int i = 0; i < NG; i++) {
			if (kind == 0) {
				submit_axpb(s, y);
			} else {
				uint64_t args[5] = { (uint64_t)y, (uint64_t)y, 32, fbits(A), fbits(B) };
				if (gpuos_submit(s, kind == 1 ? GPUOS_OP_NOP : GPUOS_OP_AXPB, args, 5, 0))
					exit(1);
			}
		}
		double t1 = now();
		CK(cudaEventRecord(e1, s));
		CK(cudaEventSynchronize(e1));
		float ms = 0;
		CK(cudaEventElapsedTime(&ms, e0, e1));
		wk->push_back(ms * 1e-3 / NG);
		if (sub)
			sub->push_back((t1 - t0) / NG);
	};
	std::vector<double> tnop, t32;
	for (int r = 0; r < reps; r++) {
		gated(0, &tworker, &tsub_idle);
		gated(1, &tnop, NULL);
		gated(2, &t32, NULL);
	}
	gpuos_park(); /* the workers exit and add up their profiles */
	gpuos_unpark();
	struct gpuos_stats ps;
	gpuos_get_stats(&ps);
	double p = median(tplain), gr = median(tgraph), go = median(tgpuos), su = median(tsubmit);
	struct gpuos_stats st;
	gpuos_get_stats(&st);
	printf("device: %s (sm_%d%d), worker: %s ring(s) x %s threads\n", prop.name, prop.major,
	       prop.minor, getenv("GPUOS_WORKERS") ? getenv("GPUOS_WORKERS") : "2",
	       getenv("GPUOS_WORKER_THREADS") ? getenv("GPUOS_WORKER_THREADS") : "512");
	printf("chain of %d dependent tasks (1024 floats), median of %d runs, results bit-identical:\n",
	       N, reps);
	printf("  plain launches      %7.3f us/task\n", p * 1e6);
	printf("  CUDA graph          %7.3f us/task\n", gr * 1e6);
	printf("  GPUOS end to end    %7.3f us/task   plain/GPUOS %.2fx   graph/GPUOS %.2fx\n",
	       go * 1e6, p / go, gr / go);
	printf("  GPUOS host submit   %7.3f us/task\n", su * 1e6);
	printf("  worker alone (%d tasks queued behind a kernel, event-timed) %.3f us/task\n", NG,
	       median(tworker) * 1e6);
	printf("  host submit while the worker waits                          %.3f us/task\n",
	       median(tsub_idle) * 1e6);
	printf("  worker alone, NOP tasks %.3f us/task, AXPB on 32 floats %.3f us/task\n",
	       median(tnop) * 1e6, median(t32) * 1e6);
	{
		double f = ps.prof[0] ? (double)ps.prof[0] : 1, st = ps.prof[4] ? (double)ps.prof[4] : 1;
		printf("  worker profile (all runs above): %llu fetches, %.1f tasks and %.2f us each; "
		       "fetcher waited for room %.1f ms; compute: %llu stretches of %.1f tasks, "
		       "starved %.1f ms, on go %.1f ms\n",
		       (unsigned long long)ps.prof[0], ps.prof[1] / f, ps.prof[2] / 1e3 / f,
		       ps.prof[3] / 1e6, (unsigned long long)ps.prof[4], ps.prof[1] / st,
		       ps.prof[5] / 1e6, ps.prof[6] / 1e6);
	}
	printf("  plain launches with the driver-call observer on: %.3f us/task (+%.3f us)\n",
	       median(tplain_obs) * 1e6, (median(tplain_obs) - p) * 1e6);

	for (int r = 0; r < 3; r++)
		mg.push_back(multi(threads, m, true));
	printf("independent tasks, %d threads x 2 streams, median of 3:\n", threads);
	printf("  plain launches      %7.2f M tasks/s\n", median(mp) / 1e6);
	printf("  GPUOS               %7.2f M tasks/s   GPUOS/plain %.2fx\n", median(mg) / 1e6,
	       median(mg) / median(mp));
	gpuos_get_stats(&st);
	printf("stats: %llu tasks, %llu batches, %llu worker launches, %llu parks\n",
	       (unsigned long long)st.submitted, (unsigned long long)st.batches_opened,
	       (unsigned long long)st.worker_launches, (unsigned long long)st.parks);
	return 0;
}
