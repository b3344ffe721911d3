// SPDX-License-Identifier: MIT
/* libFuzzer: the input is a fatbin; do everything the shim does with one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "ptx_lift/ptx_lift.h"

static void use_entry(const struct gpuos_fatbin_entry *e)
{
	struct gpuos_cubin *c = NULL;
	size_t len;
	void *raw;

	if (gpuos_fatbin_payload(e, &raw, &len))
		return;
	if (e->kind == GPUOS_FATBIN_CUBIN && !gpuos_cubin_open(raw, len, &c)) {
		for (unsigned i = 0; i < gpuos_cubin_count(c); i++)
			(void)gpuos_cubin_find(c, gpuos_cubin_kernel(c, i)->name);
		gpuos_cubin_close(c);
	}
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gpuos_fatbin_entry e;
	size_t pos = 0;
	int n = 0;

	(void)gpuos_fatbin_size(data, size);
	while (gpuos_fatbin_next(data, size, &pos, &e) == 1 && n++ < 64)
		use_entry(&e);
	if (!gpuos_fatbin_pick(data, size, GPUOS_FATBIN_CUBIN, 90, &e))
		use_entry(&e);
	if (!gpuos_fatbin_pick(data, size, GPUOS_FATBIN_PTX, 90, &e))
		use_entry(&e);
	return 0;
}
