/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_COMMON_PROBE_H
#define GPUOS_COMMON_PROBE_H

/*
 * Host-time probes for the diverted launch path, compiled in only with -DGPUOS_PROBE
 * (scripts/probe_build.sh): each names a span, adds its TSC ticks and a count, and the totals
 * go to stderr at exit as ns per call. Racy by design (relaxed load + store, no lock prefix):
 * a lost update between threads costs a sample, never a slower path.
 */
#ifdef GPUOS_PROBE
#include <stdint.h>
#include <x86intrin.h>

#include "common/atomics.h"

#define GPUOS_PROBES(X)                                                                            \
	X(HOOK, "launch hook, diverted (whole)")                                                   \
	X(DECODE, "  catalog: ready check + decode")                                               \
	X(SUBMIT, "  submit (whole)")                                                              \
	X(DEV, "    current device (driver calls)")                                                \
	X(BATCH, "    batch submit")                                                               \
	X(PUBLISH, "    wait room + publish + start + ready")                                      \
	X(PUB_STORE, "      descriptor stores")                                                    \
	X(PUB_FENCE, "      fence + worker state load")                                            \
	X(PUB_READY, "      ready count")                                                          \
	X(WHYCNT, "  why count")                                                                   \
	X(FALL, "launch hook, fell through (whole)")                                               \
	X(COPY, "copy hook, diverted (whole)")                                                     \
	X(OWNS, "  copy: pointer queries")                                                         \
	X(COPY_FALL, "copy hook, fell through (whole)")                                            \
	X(CUPTI, "CUPTI callback, ours (calls it acts on)")                                        \
	X(GO, "batch open: go write")                                                              \
	X(WAIT, "batch close: done wait (closes whose tasks had run put none)")

enum {
#define X(id, text) GPUOS_PROBE_##id,
	GPUOS_PROBES(X)
#undef X
	    GPUOS_PROBE_COUNT
};

extern _Atomic uint64_t gpuos_probe_ticks[GPUOS_PROBE_COUNT], gpuos_probe_calls[GPUOS_PROBE_COUNT];

#define GPUOS_PROBE_BEGIN(v) uint64_t v = __rdtsc()
#define GPUOS_PROBE_END(id, v)                                                                     \
	do {                                                                                       \
		store_relaxed(&gpuos_probe_ticks[GPUOS_PROBE_##id],                                \
			      load_relaxed(&gpuos_probe_ticks[GPUOS_PROBE_##id]) + __rdtsc() -     \
				  (v));                                                            \
		store_relaxed(&gpuos_probe_calls[GPUOS_PROBE_##id],                                \
			      load_relaxed(&gpuos_probe_calls[GPUOS_PROBE_##id]) + 1);             \
	} while (0)
#else
#define GPUOS_PROBE_BEGIN(v)
#define GPUOS_PROBE_END(id, v)                                                                     \
	do {                                                                                       \
	} while (0)
#endif

#endif
