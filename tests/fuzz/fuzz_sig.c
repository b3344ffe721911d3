// SPDX-License-Identifier: MIT
/* libFuzzer: the catalog's name parser on arbitrary text (as a demangled name), then its
 * matcher and, for a match, the operator source it generates; and the same bytes as a
 * reduce_kernel's ReduceOp (both sizes PyTorch's reductions have) for its decoder. */
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

	/* the bytes as a ReduceOp: a float sum's (1048) and argmax's (1064) */
	static struct gpuos_sig rs;
	static int rs_ok = -1;
	if (rs_ok < 0)
		rs_ok = gpuos_sig_parse(
		    "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, "
		    "at::native::func_wrapper_t<float, at::native::sum_functor<float, float, "
		    "float>::operator()(at::TensorIterator&)::{lambda(float, float)#1}>, unsigned "
		    "int, float, 4, 4> >(at::native::ReduceOp<float, at::native::func_wrapper_t<"
		    "float, at::native::sum_functor<float, float, float>::operator()(at::"
		    "TensorIterator&)::{lambda(float, float)#1}>, unsigned int, float, 4, 4>)",
		    &rs);
	if (rs_ok == 0 && rs.family == GPUOS_SIG_REDUCE) {
		static uint8_t op[1064];
		unsigned g[3] = {1, 1, 1}, b[3] = {1, 1, 1};
		struct gpuos_reduce_args a;
		for (unsigned sz = 1048; sz <= 1064; sz += 16) {
			struct gpuos_kparam kp = {0, 0, sz};
			void *args[1] = {op};

			memset(op, 0, sizeof(op));
			memcpy(op, data, size < sz ? size : sz);
			if (size >= 8) { /* the launch: from the config the bytes claim */
				b[0] = op[8 + 44] | op[8 + 45] << 8;
				b[1] = op[8 + 48] | op[8 + 49] << 8;
			}
			int rc = gpuos_sig_decode_reduce(&rs, &kp, 1, args, g, b, &a);
			if (rc == 0 && (a.in_dims > 25 || a.out_dims > 25 || a.head > 24 ||
					a.ctas_per_output != 1))
				abort();
		}
	}
	return 0;
}
