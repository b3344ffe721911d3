/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_TESTS_RECORDS_H
#define GPUOS_TESTS_RECORDS_H

/*
 * The recorded PyTorch 2.11 launches (tests/data, made a C initialiser by
 * scripts/gen_records_inc.py) for the catalog's tests: the op, the kernel's names, the
 * launch configuration and each parameter's bytes ("P off:size=hex ...").
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/sig.h"
#include "ptx_lift/ptx_lift.h" /* struct gpuos_kparam */

struct rec {
	const char *op, *mangled, *demangled, *launch, *params;
};

static const struct rec recs[] = {
#include "records.inc"
};
#define NRECS (sizeof(recs) / sizeof(recs[0]))

/* Whether record @i is a launch of @family; its name parsed into @s. */
static inline int rec_of(size_t i, int family, struct gpuos_sig *s)
{
	return recs[i].op && !gpuos_sig_parse(recs[i].demangled, s) && s->family == family;
}

/* The recorded P string as a cubin layout and a launch's args[] (pointing into @store). */
static inline unsigned layout(const char *p, struct gpuos_kparam *kp, void **args, uint8_t *store)
{
	unsigned n = 0, used = 0;

	for (const char *q = strchr(p, ' '); q && n < 16; q = strchr(q + 1, ' ')) {
		unsigned off, size;
		if (sscanf(q + 1, "%u:%u=", &off, &size) != 2)
			break;
		const char *hex = strchr(q + 1, '=') + 1;
		kp[n] = (struct gpuos_kparam){n, off, size};
		args[n] = store + used;
		for (unsigned i = 0; i < size; i++)
			sscanf(hex + 2 * i, "%2hhx", &store[used + i]);
		used += size;
		n++;
	}
	return n;
}

#endif
