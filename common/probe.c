// SPDX-License-Identifier: MIT
/* The probes' totals (common/probe.h), printed at exit in probe builds only. */
#ifdef GPUOS_PROBE
#include <stdio.h>
#include <time.h>

#include "common/probe.h"

_Atomic uint64_t gpuos_probe_ticks[GPUOS_PROBE_COUNT], gpuos_probe_calls[GPUOS_PROBE_COUNT];

static const char *const names[] = {
#define X(id, text) text,
    GPUOS_PROBES(X)
#undef X
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((destructor)) static void probe_dump(void)
{
	struct timespec ms20 = {0, 20000000};
	uint64_t t0 = now_ns(), c0 = __rdtsc();
	double per_ns;

	nanosleep(&ms20, NULL);
	per_ns = (double)(__rdtsc() - c0) / (double)(now_ns() - t0);
	for (int i = 0; i < GPUOS_PROBE_COUNT; i++) {
		uint64_t n = load_relaxed(&gpuos_probe_calls[i]);

		if (n)
			fprintf(stderr, "gpuos probe: %-46s %10llu calls %8.1f ns\n", names[i],
				(unsigned long long)n,
				(double)load_relaxed(&gpuos_probe_ticks[i]) / per_ns / (double)n);
	}
}
#endif
