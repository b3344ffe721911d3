// SPDX-License-Identifier: MIT
/* libFuzzer: the input is a cubin; open it and read everything a launch would. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ptx_lift/ptx_lift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gpuos_cubin *c = NULL;
	unsigned long sum = 0;

	if (gpuos_cubin_open(data, size, &c))
		return 0;
	sum += gpuos_cubin_arch(c);
	for (unsigned i = 0; i < gpuos_cubin_count(c); i++) {
		const struct gpuos_kinfo *k = gpuos_cubin_kernel(c, i);

		sum += strlen(k->name) + k->param_bytes + k->static_smem + k->max_threads;
		for (unsigned j = 0; j < k->nparams; j++)
			sum += k->params[j].offset + k->params[j].size;
		if (gpuos_cubin_find(c, k->name) != k &&
		    strcmp(gpuos_cubin_find(c, k->name)->name, k->name))
			__builtin_trap();
	}
	gpuos_cubin_close(c);
	return (int)(sum & 0);
}
