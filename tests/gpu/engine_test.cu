// SPDX-License-Identifier: MIT
/*
 * The engine on the GPU, driven through the C API (include/gpuos.h). Modes:
 *   order SEED     random tasks mixed with real launches, copies, memsets, events, host
 *                  functions and syncs on each thread's blocking, non-blocking, per-thread
 *                  and legacy streams, three threads; prints a hash of
 *                  everything, run with tasks (GPUOS=1) and with plain kernels (GPUOS=0)
 *   park           every parking call with a resident, busy worker: no hang, right results
 *   capture        stream capture in global, thread-local and relaxed mode: tasks refused,
 *                  capture valid, graph replays right, engine usable after
 *   swap           an injected operator updated thousands of times while tasks stream
 *   cache          define an operator; print whether it came from the cache (jit stats)
 * Exit 0 pass, 1 fail, 77 no GPU.
 */
#include <cuda.h>
#include <cuda_runtime.h>
#include <atomic>
#include <vector>
#include <execinfo.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/syscall.h>

#include "include/gpuos.h"

#define CK(x)                                                                                      \
	do {                                                                                       \
		cudaError_t e_ = (x);                                                              \
		if (e_ != cudaSuccess) {                                                           \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #x,                 \
				cudaGetErrorString(e_));                                           \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "FAIL: " __VA_ARGS__);                                             \
		fprintf(stderr, "\n");                                                             \
		exit(1);                                                                           \
	} while (0)

/* Reference kernels: the same arithmetic as the worker's built-in operators. */
__global__ void k_axpb(float *y, const float *x, unsigned long long n, float a, float b)
{
	for (unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += gridDim.x * blockDim.x)
		y[i] = __fmaf_rn(a, x[i], b);
}

__global__ void k_add(float *z, const float *x, const float *y, unsigned long long n)
{
	for (unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += gridDim.x * blockDim.x)
		z[i] = __fadd_rn(x[i], y[i]);
}

__global__ void k_scale2(float *y, unsigned long long n)
{
	for (unsigned long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n;
	     i += gridDim.x * blockDim.x)
		y[i] = y[i] * 2.0f + 1.0f;
}

static uint64_t fbits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static bool use_gpuos;

/* One AXPB: a task, or (reference) the kernel. */
static void axpb(cudaStream_t s, float *y, const float *x, size_t n, float a, float b,
		 unsigned flags = 0)
{
	if (use_gpuos) {
		uint64_t args[5] = { (uint64_t)y, (uint64_t)x, n, fbits(a), fbits(b) };
		int rc = gpuos_submit(s, GPUOS_OP_AXPB, args, 5, flags);
		if (rc == 0)
			return;
		/* capturing, parked for another thread's device-wide call, or another thread is
		 * in a call on the stream: run it here */
		if (rc != -EBUSY && rc != -EAGAIN && rc != -EINPROGRESS)
			FAIL("gpuos_submit: %d", rc);
	}
	k_axpb<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(y, x, n, a, b);
}

static void add(cudaStream_t s, float *z, const float *x, const float *y, size_t n)
{
	if (use_gpuos) {
		uint64_t args[4] = { (uint64_t)z, (uint64_t)x, (uint64_t)y, n };
		int rc = gpuos_submit(s, GPUOS_OP_ADD, args, 4, 0);
		if (rc == 0)
			return;
		/* capturing, parked for another thread's device-wide call, or another thread is
		 * in a call on the stream: run it here */
		if (rc != -EBUSY && rc != -EAGAIN && rc != -EINPROGRESS)
			FAIL("gpuos_submit: %d", rc);
	}
	k_add<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(z, x, y, n);
}

static uint64_t fnv(const void *p, size_t n, uint64_t h = 1469598103934665603ull)
{
	const unsigned char *c = (const unsigned char *)p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

/* ---- order ---- */

#define NBUF 6
#define MAXN 4096
#define NSTREAMS 4 /* a lane's streams, below */
struct lane {
	int id;
	unsigned seed;
	cudaStream_t s[NSTREAMS]; /* blocking, non-blocking, per-thread default, legacy default */
	float *buf[NSTREAMS][NBUF];
	uint64_t hash;
	std::atomic<unsigned> hostfn;
	std::vector<uint64_t> trace; /* GPUOS_TEST_ORDER_TRACE: each step's r k i j n, hash */
};

static volatile int lane_step[8], lane_op[8];

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) & 0xffffff;
}

static void CUDART_CB host_fn(void *p)
{
	((std::atomic<unsigned> *)p)->fetch_add(1);
}

/*
 * GPUOS_TEST_ORDER_SKIP: letters of the step kinds to leave out, to narrow down a mix that
 * differs (the random sequence stays the same): a axpb, d add, k kernel, c copy, m memset,
 * e cross-stream events, h host function, r async read, s sync copy, v event sync, q query;
 * L: every step on the legacy stream, P: on the per-thread stream.
 */
static bool order_skip(int kind, int k)
{
	static const char *skip = getenv("GPUOS_TEST_ORDER_SKIP");

	return skip && (strchr(skip, kind) || (k == 3 && strchr(skip, 'L')) ||
			(k == 2 && strchr(skip, 'P')));
}

static void *order_lane(void *arg)
{
	struct lane *L = (struct lane *)arg;
	float *host = (float *)malloc(MAXN * 4);
	const bool trace = getenv("GPUOS_TEST_ORDER_TRACE") != NULL;
	cudaEvent_t ev;

	CK(cudaStreamCreate(&L->s[0]));
	CK(cudaStreamCreateWithFlags(&L->s[1], cudaStreamNonBlocking));
	L->s[2] = cudaStreamPerThread;
	L->s[3] = cudaStreamLegacy;
	CK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
	for (int k = 0; k < NSTREAMS; k++)
		for (int i = 0; i < NBUF; i++) {
			CK(cudaMalloc(&L->buf[k][i], MAXN * 4));
			for (int j = 0; j < MAXN; j++)
				host[j] = (float)((L->id * 31 + k * 7 + i * 3 + j) % 97) * 0.01f;
			CK(cudaMemcpy(L->buf[k][i], host, MAXN * 4, cudaMemcpyHostToDevice));
		}
	L->hash = 1469598103934665603ull;
	for (int step = 0; step < 3000; step++) {
		unsigned r = rnd(&L->seed) % 100;
		int k = rnd(&L->seed) % NSTREAMS, i = rnd(&L->seed) % NBUF, j = rnd(&L->seed) % NBUF;
		size_t n = 1 + rnd(&L->seed) % MAXN;
		cudaStream_t s = L->s[k];
		float a = 0.5f + (rnd(&L->seed) % 64) / 128.0f, b = (rnd(&L->seed) % 16) / 16.0f;
		lane_step[L->id] = step;
		lane_op[L->id] = (int)r;

		if (order_skip("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaadddddddddddddddkkkkkkkkkkcc"
			       "cccccmmmmeeeeeeeehhhrrrrrsssvvqqq"[r], k))
			continue;
		if (r < 40) {
			axpb(s, L->buf[k][i], L->buf[k][j], n, a, b);
		} else if (r < 55) {
			add(s, L->buf[k][i], L->buf[k][j], L->buf[k][(j + 1) % NBUF], n);
		} else if (r < 65) {
			k_scale2<<<4, 256, 0, s>>>(L->buf[k][i], n); /* a real launch */
		} else if (r < 72) {
			if (i != j)
				CK(cudaMemcpyAsync(L->buf[k][i], L->buf[k][j], n * 4,
						   cudaMemcpyDeviceToDevice, s));
		} else if (r < 76) {
			CK(cudaMemsetAsync(L->buf[k][i], 0, n * 4, s));
		} else if (r < 84) {
			/* cross-stream: k2 waits for k, reads k's buffer, k waits back */
			int k2 = (k + 1) % NSTREAMS;
			CK(cudaEventRecord(ev, s));
			CK(cudaStreamWaitEvent(L->s[k2], ev, 0));
			add(L->s[k2], L->buf[k2][i], L->buf[k][j], L->buf[k2][i], n);
			CK(cudaEventRecord(ev, L->s[k2]));
			CK(cudaStreamWaitEvent(s, ev, 0));
		} else if (r < 87) {
			CK(cudaLaunchHostFunc(s, host_fn, (void *)&L->hostfn));
		} else if (r < 92) {
			/* the host reads a result: async copy + stream sync */
			CK(cudaMemcpyAsync(host, L->buf[k][i], n * 4, cudaMemcpyDeviceToHost, s));
			CK(cudaStreamSynchronize(s));
			L->hash = fnv(host, n * 4, L->hash);
		} else if (r < 95) {
			/* a synchronous copy: on the legacy stream (the non-blocking stream is not
			 * ordered with it, so sync that one first) */
			CK(cudaStreamSynchronize(L->s[1]));
			CK(cudaMemcpy(host, L->buf[k][i], n * 4, cudaMemcpyDeviceToHost));
			L->hash = fnv(host, n * 4, L->hash);
		} else if (r < 97) {
			CK(cudaEventRecord(ev, s));
			CK(cudaEventSynchronize(ev));
			CK(cudaMemcpy(host, L->buf[k][i], 16, cudaMemcpyDeviceToHost));
			L->hash = fnv(host, 16, L->hash);
		} else {
			while (cudaStreamQuery(s) == cudaErrorNotReady)
				;
			CK(cudaMemcpyAsync(host, L->buf[k][i], n * 4, cudaMemcpyDeviceToHost,
					   s));
			CK(cudaStreamSynchronize(s));
			L->hash = fnv(host, n * 4, L->hash);
		}
		if (trace) {
			L->trace.push_back((uint64_t)r << 48 | (uint64_t)k << 40 | (uint64_t)i << 32 |
					   (uint64_t)j << 24 | n);
			L->trace.push_back(L->hash);
		}
	}
	for (int k = 0; k < NSTREAMS; k++)
		CK(cudaStreamSynchronize(L->s[k]));
	for (int k = 0; k < NSTREAMS; k++)
		for (int i = 0; i < NBUF; i++) {
			CK(cudaMemcpy(host, L->buf[k][i], MAXN * 4, cudaMemcpyDeviceToHost));
			L->hash = fnv(host, MAXN * 4, L->hash);
			if (trace) {
				L->trace.push_back((uint64_t)k << 40 | (uint64_t)i << 32);
				L->trace.push_back(fnv(host, MAXN * 4));
			}
		}
	free(host);
	return NULL;
}

/* Stuck: each thread that takes signals prints its stack (the shim's threads block them). */
static std::atomic<int> bt_turn;
static void on_bt_signal(int sig)
{
	void *bt[48];
	int n = backtrace(bt, 48);

	(void)sig;
	while (bt_turn.exchange(1))
		;
	dprintf(2, "-- thread %ld:\n", (long)syscall(SYS_gettid));
	backtrace_symbols_fd(bt, n, 2);
	bt_turn.store(0);
}

static void print_stacks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	long me = (long)syscall(SYS_gettid);

	signal(SIGUSR2, on_bt_signal);
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && atol(de->d_name) != me) {
			syscall(SYS_tgkill, getpid(), atoi(de->d_name), SIGUSR2);
			usleep(100000);
		}
	if (d)
		closedir(d);
}

static void on_order_alarm(int sig)
{
	(void)sig;
	if (getenv("GPUOS_TEST_STUCK_WAIT"))
		print_stacks();
	for (int i = 0; i < 3; i++)
		dprintf(2, "lane %d: step %d, op %d\n", i, lane_step[i], lane_op[i]);
	dprintf(2, "FAIL: order test stuck; engine state:\n");
	gpuos_debug_dump(2);
	/* GPUOS_TEST_STUCK_WAIT=S: stay S seconds, so that a debugger can attach */
	const char *w = getenv("GPUOS_TEST_STUCK_WAIT");
	if (w)
		sleep((unsigned)atoi(w));
	_exit(1);
}

static int mode_order(unsigned seed)
{
	const char *lim = getenv("GPUOS_TEST_STUCK_S");

	signal(SIGALRM, on_order_alarm);
	alarm(lim ? (unsigned)atoi(lim) : 45);
	enum { LANES = 3 };
	struct lane L[LANES];
	pthread_t th[LANES];
	uint64_t h = 0;
	unsigned hostfn = 0;

	for (int i = 0; i < LANES; i++) {
		L[i].hostfn = 0;
		L[i].id = i;
		L[i].seed = seed * 7919u + (unsigned)i;
		pthread_create(&th[i], NULL, order_lane, &L[i]);
	}
	for (int i = 0; i < LANES; i++) {
		pthread_join(th[i], NULL);
		h = fnv(&L[i].hash, 8, h);
		hostfn += L[i].hostfn;
	}
	CK(cudaDeviceSynchronize());
	const char *tp = getenv("GPUOS_TEST_ORDER_TRACE");
	FILE *tf = tp ? fopen(tp, "w") : NULL;
	for (int i = 0; tf && i < LANES; i++)
		for (size_t s = 0; s + 1 < L[i].trace.size(); s += 2)
			fprintf(tf, "%d %zu %016llx %016llx\n", i, s / 2,
				(unsigned long long)L[i].trace[s], (unsigned long long)L[i].trace[s + 1]);
	if (tf)
		fclose(tf);
	struct gpuos_stats st;
	gpuos_get_stats(&st);
	printf("order seed=%u gpuos=%d hash=%016llx hostfn=%u tasks=%llu batches=%llu/%llu "
	       "elided=%llu launches=%llu parks=%llu\n",
	       seed, use_gpuos, (unsigned long long)h, hostfn, (unsigned long long)st.submitted,
	       (unsigned long long)st.batches_opened, (unsigned long long)st.batches_closed,
	       (unsigned long long)st.closes_elided, (unsigned long long)st.worker_launches,
	       (unsigned long long)st.parks);
	if (use_gpuos && st.submitted == 0)
		FAIL("nothing was submitted");
	return 0;
}

/* ---- park ---- */

static const char *current_call = "";
static void on_alarm(int sig)
{
	(void)sig;
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "FAIL: hang in %s (worker resident)\n", current_call);
	write(2, msg, n);
	_exit(1);
}

static float *px, *py;
static const size_t PN = 1 << 16;

/* A resident worker with work in flight: a long task, then an AXPB on y. */
static void busy(cudaStream_t s)
{
	uint64_t spin[1] = { 20 * 1000 * 1000 }; /* 20 ms */
	if (gpuos_submit(s, GPUOS_OP_SPIN, spin, 1, 0))
		FAIL("submit spin");
	axpb(s, py, px, PN, 1.0f, 1.0f);
}

static void check_y(cudaStream_t s, float want, const char *after)
{
	static float h[1 << 16];
	CK(cudaMemcpyAsync(h, py, PN * 4, cudaMemcpyDeviceToHost, s));
	CK(cudaStreamSynchronize(s));
	for (size_t i = 0; i < PN; i++)
		if (h[i] != want)
			FAIL("after %s: y[%zu] = %g, want %g", after, i, h[i], want);
}

#define PARK_CALL(name, ...)                                                                    \
	do {                                                                                       \
		current_call = name;                                                               \
		busy(s);                                                                           \
		alarm(20);                                                                         \
		__VA_ARGS__;                                                                          \
		alarm(0);                                                                          \
		ck++;                                                                              \
		val = val + 1.0f;                                                                  \
		check_y(s, val, name);                                                             \
		printf("park: %-28s ok\n", name);                                                  \
	} while (0)

__global__ void k_never_launched_before(float *y)
{
	y[threadIdx.x] += 0.0f;
}

static int mode_park(const char *modpath)
{
	cudaStream_t s;
	float val = 0.0f;
	int ck = 0;
	void *tmp, *htmp;

	signal(SIGALRM, on_alarm);
	struct gpuos_options o = { 0 };
	o.idle_ms = 60000; /* the worker stays resident unless parked */
	if (gpuos_init(&o))
		FAIL("gpuos_init");
	CK(cudaStreamCreate(&s));
	CK(cudaMalloc(&px, PN * 4));
	CK(cudaMalloc(&py, PN * 4));
	CK(cudaMemset(px, 0, PN * 4));
	CK(cudaMemset(py, 0, PN * 4));
	/* y = x + 1 each time: x stays 0 so y = 1 after every busy() */
	val = 0.0f;
	use_gpuos = true;
	PARK_CALL("cudaDeviceSynchronize", CK(cudaDeviceSynchronize()));
	val = 0.0f;
	CK(cudaMalloc(&tmp, 1 << 20));
	PARK_CALL("cudaFree", CK(cudaFree(tmp)));
	val = 0.0f;
	CK(cudaMallocHost(&htmp, 1 << 20));
	PARK_CALL("cudaFreeHost", CK(cudaFreeHost(htmp)));
	val = 0.0f;
	PARK_CALL("cudaMalloc", CK(cudaMalloc(&tmp, 1 << 24)));
	val = 0.0f;
	PARK_CALL("cudaFree (large)", CK(cudaFree(tmp)));
	val = 0.0f;
	PARK_CALL("cudaDeviceSetLimit(stack)", CK(cudaDeviceSetLimit(cudaLimitStackSize, 4096)));
	val = 0.0f;
	PARK_CALL("first launch (lazy loading)", {
		k_never_launched_before<<<1, 32, 0, s>>>(px);
		CK(cudaGetLastError());
	});
	val = 0.0f;
	if (modpath) {
		CUmodule m;
		PARK_CALL("cuModuleLoad", {
			if (cuModuleLoad(&m, modpath) != CUDA_SUCCESS)
				FAIL("cuModuleLoad %s", modpath);
		});
		val = 0.0f;
		PARK_CALL("cuModuleUnload", cuModuleUnload(m));
		val = 0.0f;
	}
	PARK_CALL("cudaStreamSynchronize(legacy)", CK(cudaStreamSynchronize(0)));
	val = 0.0f;
	PARK_CALL("cudaMemcpy (sync)", {
		float h;
		CK(cudaMemcpy(&h, px, 4, cudaMemcpyDeviceToHost));
	});
	val = 0.0f;
	PARK_CALL("gpuos_park/unpark", {
		gpuos_park();
		gpuos_unpark();
	});
	val = 0.0f;
	current_call = "cudaDeviceReset";
	busy(s);
	alarm(20);
	CK(cudaDeviceReset());
	alarm(0);
	/* everything of the old context is gone: new stream, buffers, engine */
	CK(cudaStreamCreate(&s));
	CK(cudaMalloc(&px, PN * 4));
	CK(cudaMalloc(&py, PN * 4));
	CK(cudaMemset(px, 0, PN * 4));
	CK(cudaMemset(py, 0, PN * 4));
	val = 0.0f;
	current_call = "a task after cudaDeviceReset";
	axpb(s, py, px, PN, 1.0f, 1.0f);
	check_y(s, 1.0f, current_call);
	printf("park: %-28s ok (a new engine)\n", "cudaDeviceReset");
	printf("park: %d calls, no hang, results right\n", ck + 1);
	return 0;
}

/* ---- capture ---- */

static int mode_capture(void)
{
	static const cudaStreamCaptureMode modes[3] = { cudaStreamCaptureModeGlobal,
							 cudaStreamCaptureModeThreadLocal,
							 cudaStreamCaptureModeRelaxed };
	static const char *names[3] = { "global", "thread-local", "relaxed" };
	const size_t n = 1024;
	float *x, *y, h[1024];
	cudaStream_t s, s2;

	if (gpuos_init(NULL))
		FAIL("gpuos_init");
	use_gpuos = true;
	CK(cudaStreamCreate(&s));
	CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
	CK(cudaMalloc(&x, n * 4));
	CK(cudaMalloc(&y, n * 4));
	for (int m = 0; m < 3; m++) {
		cudaGraph_t g;
		cudaGraphExec_t ge;
		cudaStreamCaptureStatus st;
		CK(cudaMemsetAsync(x, 0, n * 4, s));
		/* a task just before the capture: its batch must close before capture starts */
		axpb(s, x, x, n, 1.0f, 2.0f);	      /* x = 2 */
		axpb(s2, y, y, n, 0.0f, 5.0f);	      /* another stream's open batch: y = 5 */
		CK(cudaStreamBeginCapture(s, modes[m]));
		uint64_t args[5] = { (uint64_t)x, (uint64_t)x, n, fbits(1.0f), fbits(1.0f) };
		if (gpuos_submit(s, GPUOS_OP_AXPB, args, 5, 0) != -EBUSY)
			FAIL("%s: a task was accepted during capture", names[m]);
		if (gpuos_submit(s2, GPUOS_OP_AXPB, args, 5, 0) != -EBUSY)
			FAIL("%s: a task on another stream was accepted during capture", names[m]);
		k_axpb<<<4, 256, 0, s>>>(x, x, n, 3.0f, 0.0f); /* captured: x *= 3 */
		CK(cudaStreamGetCaptureInfo(s, &st, NULL));
		if (st != cudaStreamCaptureStatusActive)
			FAIL("%s: capture not active (%d)", names[m], (int)st);
		CK(cudaStreamEndCapture(s, &g));
		CK(cudaGraphInstantiate(&ge, g, 0));
		CK(cudaStreamSynchronize(s));
		CK(cudaMemcpy(h, x, n * 4, cudaMemcpyDeviceToHost));
		if (h[0] != 2.0f || h[n - 1] != 2.0f)
			FAIL("%s: before replay x = %g, want 2", names[m], h[0]);
		CK(cudaGraphLaunch(ge, s));
		CK(cudaGraphLaunch(ge, s));
		axpb(s, x, x, n, 1.0f, 1.0f); /* after replays, a task again: x = 19 */
		CK(cudaStreamSynchronize(s));
		CK(cudaMemcpy(h, x, n * 4, cudaMemcpyDeviceToHost));
		for (size_t i = 0; i < n; i++)
			if (h[i] != 19.0f)
				FAIL("%s: x[%zu] = %g after replay, want 19", names[m], i, h[i]);
		CK(cudaStreamSynchronize(s2));
		CK(cudaMemcpy(h, y, n * 4, cudaMemcpyDeviceToHost));
		if (h[0] != 5.0f)
			FAIL("%s: y = %g, want 5", names[m], h[0]);
		CK(cudaGraphExecDestroy(ge));
		CK(cudaGraphDestroy(g));
		printf("capture %-12s: tasks refused, capture valid, replay right\n", names[m]);
	}
	struct gpuos_stats st;
	gpuos_get_stats(&st);
	printf("capture: %llu tasks, %llu parks\n", (unsigned long long)st.submitted,
	       (unsigned long long)st.parks);
	return 0;
}

/* ---- swap ---- */

static const char *op_src_fmt =
	"#include \"gpuos_task.h\"\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE(op_stamp) {\n"
	"  for (int k = 0; k < ntasks; k++) {\n"
	"    unsigned *y = (unsigned *)t[k].a[0];\n"
	"    unsigned long long n = t[k].a[1];\n"
	"    for (unsigned long long i = gpuos_tid(); i < n; i += gpuos_nthreads())\n"
	"      y[i] = %uu;\n"
	"    gpuos_sync();\n"
	"  }\n"
	"}\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = op_stamp;\n";

static int mode_swap(int swaps, int variants)
{
	char src[2048];
	cudaStream_t s;
	const int per = 64; /* tasks between swaps */
	const size_t n = 256;
	unsigned *out, *h;
	int op, version = 1;
	struct timespec t0, t1;

	if (gpuos_init(NULL))
		FAIL("gpuos_init");
	CK(cudaStreamCreate(&s));
	snprintf(src, sizeof(src), op_src_fmt, 1u);
	op = gpuos_op_define("stamp", src);
	if (op < 0 || gpuos_op_wait(op))
		FAIL("define: %d", op);
	/* warm the cache with the variants so the swap loop measures loads, not NVRTC */
	for (int v = 2; v <= variants + 1; v++) {
		snprintf(src, sizeof(src), op_src_fmt, (unsigned)v);
		if (gpuos_op_update(op, src))
			FAIL("update v%d", v);
	}
	snprintf(src, sizeof(src), op_src_fmt, 1u);
	gpuos_op_update(op, src);
	size_t total = (size_t)swaps * per;
	CK(cudaMalloc(&out, total * n * 4));
	CK(cudaMemset(out, 0, total * n * 4));
	unsigned *expect = (unsigned *)malloc(total * 4);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	version = 1;
	int prev = 0, rollbacks = 0;
	for (int w = 0; w < swaps; w++) {
		for (int k = 0; k < per; k++) {
			size_t idx = (size_t)w * per + k;
			uint64_t args[2] = { (uint64_t)(out + idx * n), n };
			if (gpuos_submit(s, op, args, 2, 0))
				FAIL("submit");
			expect[idx] = (unsigned)version;
		}
		if (w % 10 == 5 && prev) {
			/* back to the code before the last update; tasks after it must see it */
			int rc = gpuos_op_rollback(op);
			if (rc)
				FAIL("rollback %d: %d", w, rc);
			int t = version;
			version = prev;
			prev = t;
			rollbacks++;
			continue;
		}
		int next = 2 + (w + 1) % variants;
		if (next == version)
			next = 2 + (w + 2) % variants;
		snprintf(src, sizeof(src), op_src_fmt, (unsigned)next);
		int rc = gpuos_op_update(op, src);
		if (rc)
			FAIL("update %d: %d", w, rc);
		prev = version;
		version = next;
	}
	printf("swap: %d rollbacks\n", rollbacks);
	CK(cudaStreamSynchronize(s));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	h = (unsigned *)malloc(total * n * 4);
	CK(cudaMemcpy(h, out, total * n * 4, cudaMemcpyDeviceToHost));
	size_t torn = 0, stale = 0;
	for (size_t i = 0; i < total; i++) {
		for (size_t j = 0; j < n; j++)
			if (h[i * n + j] != h[i * n]) {
				torn++;
				break;
			}
		if (h[i * n] != expect[i])
			stale++;
	}
	struct gpuos_stats st;
	gpuos_get_stats(&st);
	double sec = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
	printf("swap: %d updates (+%d variants precompiled), %zu tasks, %llu swaps total, %zu torn, "
	       "%zu wrong version, %.1f us per update, %llu parks\n",
	       swaps, variants, total, (unsigned long long)st.op_swaps, torn, stale,
	       sec * 1e6 / swaps, (unsigned long long)st.parks);
	if (torn || stale)
		FAIL("operator swap: %zu torn, %zu from the wrong version", torn, stale);
	return 0;
}

/* One engine per device: tasks on every GPU's streams, from one thread, interleaved. */
static int mode_multigpu(void)
{
	int ndev = 0;
	const size_t n = 4096;
	CK(cudaGetDeviceCount(&ndev));
	if (ndev < 2) {
		printf("multigpu: %d device(s): skipped\n", ndev);
		return 77;
	}
	std::vector<cudaStream_t> s(ndev);
	std::vector<float *> y(ndev);
	use_gpuos = true;
	for (int d = 0; d < ndev; d++) {
		CK(cudaSetDevice(d));
		CK(cudaStreamCreate(&s[d]));
		CK(cudaMalloc(&y[d], n * 4));
		CK(cudaMemset(y[d], 0, n * 4));
	}
	for (int i = 0; i < 1000; i++)
		for (int d = 0; d < ndev; d++) {
			CK(cudaSetDevice(d));
			axpb(s[d], y[d], y[d], n, 1.0f, (float)(d + 1)); /* y += d + 1 */
		}
	for (int d = 0; d < ndev; d++) {
		std::vector<float> h(n);
		CK(cudaSetDevice(d));
		CK(cudaMemcpyAsync(h.data(), y[d], n * 4, cudaMemcpyDeviceToHost, s[d]));
		CK(cudaStreamSynchronize(s[d]));
		for (size_t i = 0; i < n; i++)
			if (h[i] != 1000.0f * (d + 1))
				FAIL("device %d: y[%zu] = %g, want %g", d, i, h[i], 1000.0f * (d + 1));
	}
	struct gpuos_stats st;
	gpuos_get_stats(&st);
	printf("multigpu: %d devices, %llu tasks, %llu worker launches, results right\n", ndev,
	       (unsigned long long)st.submitted, (unsigned long long)st.worker_launches);
	return 0;
}

/* fork(): the child gets no engine (-ENODEV, no hang, no crash); the parent's goes on. */
static int mode_fork(void)
{
	const size_t n = 1024;
	float *y, h[1024];
	cudaStream_t s;
	int status;

	if (gpuos_init(NULL))
		FAIL("gpuos_init");
	use_gpuos = true;
	CK(cudaStreamCreate(&s));
	CK(cudaMalloc(&y, n * 4));
	CK(cudaMemset(y, 0, n * 4));
	axpb(s, y, y, n, 1.0f, 1.0f);
	pid_t pid = fork();
	if (pid == 0) {
		uint64_t args[5] = { 0, 0, 0, 0, 0 };
		int rc = gpuos_submit(NULL, GPUOS_OP_NOP, args, 5, 0);
		_exit(rc == -ENODEV ? 0 : 3);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		FAIL("fork child: status %d", status);
	axpb(s, y, y, n, 1.0f, 1.0f);
	CK(cudaMemcpyAsync(h, y, n * 4, cudaMemcpyDeviceToHost, s));
	CK(cudaStreamSynchronize(s));
	if (h[0] != 2.0f || h[n - 1] != 2.0f)
		FAIL("after fork: y = %g, want 2", h[0]);
	printf("fork: the child gets no engine; the parent's goes on\n");
	return 0;
}

static int mode_cache(void)
{
	char src[2048];
	struct gpuos_stats st;

	if (gpuos_init(NULL))
		FAIL("gpuos_init");
	snprintf(src, sizeof(src), op_src_fmt, 12345u);
	int op = gpuos_op_define("stamp_cache", src);
	if (op < 0 || gpuos_op_wait(op))
		FAIL("define: %d", op);
	unsigned *out, h[256];
	cudaStream_t s;
	CK(cudaStreamCreate(&s));
	CK(cudaMalloc(&out, 256 * 4));
	uint64_t args[2] = { (uint64_t)out, 256 };
	if (gpuos_submit(s, op, args, 2, 0))
		FAIL("submit");
	CK(cudaMemcpyAsync(h, out, 256 * 4, cudaMemcpyDeviceToHost, s));
	CK(cudaStreamSynchronize(s));
	if (h[0] != 12345u || h[255] != 12345u)
		FAIL("operator result %u", h[0]);
	gpuos_get_stats(&st);
	printf("cache: compiles=%llu hits=%llu nvrtc_loaded=%llu\n",
	       (unsigned long long)st.jit_compiles, (unsigned long long)st.jit_hits,
	       (unsigned long long)st.nvrtc_loaded);
	return 0;
}

/*
 * An operator with a stack frame: IEEE division over denormal, infinite and NaN divisors
 * takes its slow path, a call that saves registers on the stack under the worker's register
 * cap. The worker's reserve (GPUOS_OP_STACK) must hold it; the quotients equal a kernel's.
 */
static const char *div_src =
	"#include \"gpuos_task.h\"\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE(op_div)\n"
	"{\n"
	"	for (int k = 0; k < ntasks; k++) {\n"
	"		float *y = (float *)t[k].a[0];\n"
	"		const float *a = (const float *)t[k].a[1], *b = (const float *)t[k].a[2];\n"
	"		for (unsigned i = gpuos_tid(); i < t[k].a[3]; i += gpuos_nthreads())\n"
	"			y[i] = a[i] / b[i];\n"
	"		gpuos_sync();\n"
	"	}\n"
	"}\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = op_div;\n";

static __global__ void div_kernel(float *y, const float *a, const float *b, unsigned n)
{
	for (unsigned i = threadIdx.x + blockIdx.x * blockDim.x; i < n; i += blockDim.x * gridDim.x)
		y[i] = a[i] / b[i];
}

static int mode_stack(void)
{
	enum { N = 4096 };
	static float a[N], b[N], want[N], got[N];
	float *da, *db, *dy;
	cudaStream_t s;

	if (gpuos_init(NULL))
		FAIL("gpuos_init");
	int op = gpuos_op_define("div_slow", div_src);
	if (op < 0 || gpuos_op_wait(op))
		FAIL("define: %d (an operator needing more stack than the worker has is refused)", op);
	const float sp[] = {1e-40f, -1e-42f, 0.0f, -0.0f, INFINITY, -INFINITY, NAN, 3e38f, 1e-38f};
	for (int i = 0; i < N; i++) {
		a[i] = (float)(i % 97) * 1.37e-3f - 0.05f;
		b[i] = i % 3 ? sp[i % 9] : (float)(i % 13) - 6.0f;
	}
	CK(cudaStreamCreate(&s));
	CK(cudaMalloc(&da, N * 4));
	CK(cudaMalloc(&db, N * 4));
	CK(cudaMalloc(&dy, N * 4));
	CK(cudaMemcpyAsync(da, a, N * 4, cudaMemcpyHostToDevice, s));
	CK(cudaMemcpyAsync(db, b, N * 4, cudaMemcpyHostToDevice, s));
	div_kernel<<<8, 256, 0, s>>>(dy, da, db, N);
	CK(cudaMemcpyAsync(want, dy, N * 4, cudaMemcpyDeviceToHost, s));
	CK(cudaMemsetAsync(dy, 0, N * 4, s));
	uint64_t args[4] = {(uint64_t)dy, (uint64_t)da, (uint64_t)db, N};
	for (int k = 0; k < 16; k++)
		if (gpuos_submit(s, op, args, 4, 0))
			FAIL("submit");
	CK(cudaMemcpyAsync(got, dy, N * 4, cudaMemcpyDeviceToHost, s));
	CK(cudaStreamSynchronize(s));
	if (memcmp(want, got, sizeof(got)))
		FAIL("quotients differ from the kernel's");
	printf("stack: 16 division tasks over special divisors, bit-identical to a kernel\n");
	return 0;
}

/*
 * An operator that faults: the program gets the error from its next call and exits; nothing
 * of the shim waits forever for a worker that will never finish (exit 3 when all went so).
 */
static int mode_fault(void)
{
	cudaStream_t s;
	int op;

	if (gpuos_init(NULL))
		FAIL("gpuos_init");
	op = gpuos_op_define("fault",
			     "#include \"gpuos_task.h\"\n"
			     "extern \"C\" __device__ GPUOS_OP_SIGNATURE(op_fault)\n"
			     "{ *(volatile unsigned *)(8 + t[0].a[0]) = 1; }\n"
			     "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = op_fault;\n");
	if (op < 0 || gpuos_op_wait(op))
		FAIL("define: %d", op);
	CK(cudaStreamCreate(&s));
	uint64_t args[1] = {0};
	if (gpuos_submit(s, op, args, 1, 0))
		FAIL("submit");
	cudaError_t rc = cudaStreamSynchronize(s);
	printf("fault: the stream sync says %s\n", cudaGetErrorName(rc));
	if (rc == cudaSuccess)
		FAIL("the fault went unreported");
	rc = cudaDeviceSynchronize(); /* parks the workers: must not wait for the dead one */
	printf("fault: the device sync says %s\n", cudaGetErrorName(rc));
	return 3;
}

static void on_segv(int sig)
{
	void *bt[64];
	int n = backtrace(bt, 64);
	fprintf(stderr, "FAIL: signal %d in %s; backtrace:\n", sig, current_call);
	backtrace_symbols_fd(bt, n, 2);
	_exit(1);
}

int main(int argc, char **argv)
{
	int ndev = 0;

	signal(SIGSEGV, on_segv);
	signal(SIGBUS, on_segv);
	signal(SIGABRT, on_segv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
		fprintf(stderr, "no GPU: skipped\n");
		return 77;
	}
	if (argc < 2)
		FAIL("usage: engine_test order SEED | park [MODULE] | capture | swap N V");
	use_gpuos = getenv("GPUOS") && !strcmp(getenv("GPUOS"), "1");
	if (!strcmp(argv[1], "order"))
		return mode_order(argc > 2 ? (unsigned)atoi(argv[2]) : 1);
	if (!strcmp(argv[1], "park"))
		return mode_park(argc > 2 ? argv[2] : NULL);
	if (!strcmp(argv[1], "capture"))
		return mode_capture();
	if (!strcmp(argv[1], "swap"))
		return mode_swap(argc > 2 ? atoi(argv[2]) : 2000, argc > 3 ? atoi(argv[3]) : 4);
	if (!strcmp(argv[1], "cache"))
		return mode_cache();
	if (!strcmp(argv[1], "multigpu"))
		return mode_multigpu();
	if (!strcmp(argv[1], "fork"))
		return mode_fork();
	if (!strcmp(argv[1], "stack"))
		return mode_stack();
	if (!strcmp(argv[1], "fault"))
		return mode_fault();
	FAIL("unknown mode %s", argv[1]);
}
