// SPDX-License-Identifier: MIT
/* libFuzzer: ptx_lift on arbitrary text. Every .entry found is lifted (the first few); the
 * lifter must refuse or lift, never crash, read out of bounds or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_lift/ptx_lift.h"
#include "tests/fuzz/guard.h"

struct names {
	char name[4][128];
	int n;
};

static void on_entry(const char *name, void *arg)
{
	struct names *ns = arg;
	if (ns->n < 4 && strlen(name) < sizeof(ns->name[0]))
		strcpy(ns->name[ns->n++], name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct names ns = {.n = 0};
	struct gpuos_lift_opts o = {.max_threads = 480, .smem_window = 44 * 1024, .sm = 90};
	struct gpuos_lift_result r;

	if (size > 1 << 20)
		return 0;
	data = gpuos_fuzz_guard(data, size);
	if (gpuos_lift_entries((const char *)data, size, on_entry, &ns) < 0)
		return 0;
	for (int i = 0; i < ns.n; i++) {
		if (gpuos_lift((const char *)data, size, ns.name[i], &o, &r) == 0 &&
		    (!r.ptx || strlen(r.ptx) != r.ptx_len))
			abort();
		gpuos_lift_free(&r);
	}
	return 0;
}
