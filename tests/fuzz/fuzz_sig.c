// SPDX-License-Identifier: MIT
/* libFuzzer: the catalog's name parser on arbitrary text (as a demangled name). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/sig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gpuos_sig s;
	char *name = malloc(size + 1);

	if (!name)
		return 0;
	memcpy(name, data, size);
	name[size] = 0;
	if (gpuos_sig_parse(name, &s) == 0 &&
	    (strlen(s.functor) >= sizeof(s.functor) || strlen(s.op) >= sizeof(s.op) ||
	     strlen(s.dtype) >= sizeof(s.dtype)))
		abort();
	free(name);
	return 0;
}
