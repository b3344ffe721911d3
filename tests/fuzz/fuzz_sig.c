// SPDX-License-Identifier: MIT
/* libFuzzer: the catalog's name parser on arbitrary text (as a demangled name), then its
 * matcher and, for a match, the operator source it generates; and the same bytes as a
 * reduce_kernel's ReduceOp (both sizes PyTorch's reductions have), as index_select's seven
 * parameters (a fixed-dims and an any-dims variant) and as softmax's eight and its
 * gradient's seven for their decoders. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalog.h"
#include "kernels/sig.h"

/* The fuzz bytes as a launch's parameters laid out as @kp says: @pb (@len bytes, zeroed past
 * the input) holds them, @args points at each. */
static void as_params(const struct gpuos_kparam *kp, unsigned n, uint8_t *pb, size_t len,
		      void **args, const uint8_t *data, size_t size)
{
	memset(pb, 0, len);
	memcpy(pb, data, size < len ? size : len);
	for (unsigned i = 0; i < n; i++)
		args[i] = pb + kp[i].offset;
}

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

	/* the bytes as indexSelectSmallIndex's parameters, the block the bytes' innerSize asks */
	static struct gpuos_sig is[2];
	static int is_ok = -1;
	if (is_ok < 0)
		is_ok = gpuos_sig_parse("void at::native::(anonymous namespace)::indexSelectSmallIndex"
					"<float, long, unsigned int, 2, 2, -2>(int)",
					&is[0]) |
			gpuos_sig_parse("void at::native::(anonymous namespace)::indexSelectSmallIndex"
					"<c10::complex<double>, int, unsigned int, -1, -1, -1>(int)",
					&is[1]);
	if (is_ok == 0) {
		static const struct gpuos_kparam kp[7] = {{0, 0, 216},	 {1, 216, 216}, {2, 432, 216},
							  {3, 648, 4},	 {4, 652, 4},	{5, 656, 4},
							  {6, 664, 8}};
		static uint8_t pb[672];
		void *args[7];
		struct gpuos_cat_isel p;
		uint64_t elems;
		uint32_t inner;

		as_params(kp, 7, pb, sizeof(pb), args, data, size);
		memcpy(&inner, pb + 656, 4);
		unsigned g[3] = {1, 1, 1}, b[3] = {inner < 128 ? inner : 128, 1, 1};
		for (unsigned k = 0; k < 2; k++) {
			int rc = gpuos_sig_decode_index_select(&is[k], kp, 7, args, g, b, &p, &elems);
			if (rc == 0 &&
			    (p.dst_dims < 1 || p.dst_dims > GPUOS_CAT_ISEL_DIMS || p.src_dims < 1 ||
			     p.src_dims > GPUOS_CAT_ISEL_DIMS || !p.nidx || !p.inner ||
			     elems != (uint64_t)p.nidx * p.inner || !p.dst || !p.src || !p.idx))
				abort();
		}
	}

	/* the bytes as softmax_warp_forward's parameters (rows of 65..128), the grid they ask */
	static struct gpuos_sig sm;
	static int sm_ok = -1;
	if (sm_ok < 0)
		sm_ok = gpuos_sig_parse("void (anonymous namespace)::softmax_warp_forward<float, "
					"float, float, 7, false, false>(int)",
					&sm);
	if (sm_ok == 0) {
		static const struct gpuos_kparam kp[8] = {{0, 0, 8},  {1, 8, 8},  {2, 16, 4},
							  {3, 20, 4}, {4, 24, 4}, {5, 32, 8},
							  {6, 40, 4}, {7, 44, 1}};
		static uint8_t pb[48];
		void *args[8];
		struct gpuos_softmax_args a;
		int32_t batch;

		as_params(kp, 8, pb, sizeof(pb), args, data, size);
		memcpy(&batch, pb + 16, 4);
		unsigned g[3] = {batch > 0 ? (unsigned)(((int64_t)batch + 7) / 8) : 1, 1, 1};
		unsigned b[3] = {32, 4, 1};
		if (gpuos_sig_decode_softmax(&sm, kp, 8, args, g, b, &a) == 0 &&
		    (a.batch <= 0 || a.count <= 64 || a.count > 128 || !a.dst || !a.src ||
		     (int64_t)a.batch * a.count > INT32_MAX))
			abort();
	}

	/* the same bytes as softmax_warp_backward's seven (gradInput, grad, output first) */
	static struct gpuos_sig smb;
	static int smb_ok = -1;
	if (smb_ok < 0)
		smb_ok = gpuos_sig_parse("void (anonymous namespace)::softmax_warp_backward<float, "
					 "float, float, 7, true, false>(int)",
					 &smb);
	if (smb_ok == 0) {
		static const struct gpuos_kparam kp[7] = {{0, 0, 8},  {1, 8, 8},  {2, 16, 8},
							  {3, 24, 4}, {4, 28, 4}, {5, 32, 4},
							  {6, 40, 8}};
		static uint8_t pb[48];
		void *args[7];
		struct gpuos_softmax_args a;
		int32_t batch;

		as_params(kp, 7, pb, sizeof(pb), args, data, size);
		memcpy(&batch, pb + 24, 4);
		unsigned g[3] = {batch > 0 ? (unsigned)(((int64_t)batch + 7) / 8) : 1, 1, 1};
		unsigned b[3] = {32, 4, 1};
		if (gpuos_sig_decode_softmax(&smb, kp, 7, args, g, b, &a) == 0 &&
		    (a.batch <= 0 || a.count <= 64 || a.count > 128 || !a.dst || !a.src ||
		     !a.output || (int64_t)a.batch * a.count > INT32_MAX))
			abort();
	}
	return 0;
}
