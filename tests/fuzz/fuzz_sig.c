// SPDX-License-Identifier: MIT
/* libFuzzer: the catalog's name parser on arbitrary text (as a demangled name), then its
 * matcher and, for a match, the operator source it generates. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalog.h"
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
	struct gpuos_cat_match m;
	static char src[16384];
	if (gpuos_sig_parse(name, &s) == 0 && gpuos_cat_match(&s, &m) == 0 &&
	    (gpuos_cat_source(&m, src, sizeof(src)) <= 0 || strlen(src) >= sizeof(src)))
		abort();
	free(name);
	return 0;
}
