// SPDX-License-Identifier: MIT
/*
 * Demangled kernel names by their structure (sig.h): balanced-bracket splitting of template
 * argument lists, nothing that depends on a build's hashes or lambda numbering.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/catalog.h"
#include "kernels/sig.h"

int gpuos_sig_normalize(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (const char *p = in; *p;) {
		if (!strncmp(p, "_GLOBAL__N__", 12)) {
			/* _GLOBAL__N__<hash>_<len><file> as mangled into a demangled name */
			static const char anon[] = "(anonymous namespace)";
			if (o + sizeof(anon) > len)
				return -ENAMETOOLONG;
			memcpy(out + o, anon, sizeof(anon) - 1);
			o += sizeof(anon) - 1;
			p += 12;
			while (*p && *p != ':' && *p != '<' && *p != '>' && *p != ',' && *p != ' ')
				p++;
			continue;
		}
		if (*p == '#' && p[1] >= '0' && p[1] <= '9') { /* lambda index */
			if (o + 2 > len)
				return -ENAMETOOLONG;
			out[o++] = '#';
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
			continue;
		}
		if (o + 2 > len)
			return -ENAMETOOLONG;
		out[o++] = *p++;
	}
	out[o] = 0;
	return 0;
}

/* The position just after the bracket that closes the one at s[i], or 0 when none does. */
static size_t close_of(const char *s, size_t i)
{
	int depth = 0;

	for (size_t k = i; s[k]; k++) {
		char c = s[k];
		if (c == '<' || c == '(' || c == '{' || c == '[')
			depth++;
		else if (c == '>' || c == ')' || c == '}' || c == ']') {
			if (--depth == 0)
				return k + 1;
			if (depth < 0)
				return 0;
		}
	}
	return 0;
}

/* Template argument @n (0-based) of the list opening at s[lt] == '<', into buf. */
static int targ(const char *s, size_t lt, unsigned n, char *buf, size_t len)
{
	size_t end = close_of(s, lt), k = lt + 1, start = k;
	unsigned idx = 0;
	int depth = 0;

	if (!end)
		return -EINVAL;
	for (; k < end - 1; k++) {
		char c = s[k];
		if (c == '<' || c == '(' || c == '{' || c == '[')
			depth++;
		else if (c == '>' || c == ')' || c == '}' || c == ']')
			depth--;
		else if (c == ',' && depth == 0) {
			if (idx++ == n)
				break;
			start = k + 1;
		}
	}
	if (idx < n)
		return -ENOENT;
	while (s[start] == ' ')
		start++;
	size_t stop = k;
	while (stop > start && s[stop - 1] == ' ')
		stop--;
	if (stop - start + 1 > len)
		return -EINVAL;
	memcpy(buf, s + start, stop - start);
	buf[stop - start] = 0;
	return 0;
}

/* The kernel's own template list: the first top-level '<' after its name. */
static const char *kernel_lt(const char *s, const char *name)
{
	const char *p = strstr(s, name);
	size_t n = strlen(name);

	while (p && (p[n] != '<' || (p > s && p[-1] != ':' && p[-1] != ' ')))
		p = strstr(p + 1, name);
	return p ? p + n : NULL;
}

/*
 * The functor's short name and element type: "ns::Name<T, ...>" -> Name, T; a lambda
 * "ns::func(args)::{lambda()#}::...::{lambda(T)#}" -> func, T; BinaryFunctor-style wrappers
 * <T, T, T, Inner<T>> name the inner functor.
 */
static void functor_names(struct gpuos_sig *s)
{
	const char *f = s->functor, *lam = strstr(f, "::{lambda");
	char head[4096];
	size_t n;

	s->op[0] = s->dtype[0] = 0;
	if (lam) {
		/* the enclosing function: the last "::name(" before the first lambda */
		const char *paren = NULL;
		for (const char *p = f; p < lam && !paren; p++) {
			if (!strncmp(p, "(anonymous namespace)", 21))
				p += 20;
			else if (*p == '(')
				paren = p;
		}
		const char *b = paren;
		/* back over the name, and over its template arguments ("name<float, float>") */
		for (int depth = 0; b && b > f && (depth || (b[-1] != ':' && b[-1] != ' ')); b--)
			depth += b[-1] == '>' ? 1 : b[-1] == '<' ? -1 : 0;
		/* a templated function: "name<float, float>" -> name, float */
		const char *nlt = b ? memchr(b, '<', (size_t)(paren - b)) : NULL;
		const char *nend = nlt ? nlt : paren;
		if (paren && b && (size_t)(nend - b) < sizeof(s->op)) {
			memcpy(s->op, b, nend - b);
			s->op[nend - b] = 0;
			if (nlt)
				targ(f, (size_t)(nlt - f), 0, s->dtype, sizeof(s->dtype));
		}
		/* the innermost lambda's parameter type */
		const char *last = lam, *q;
		while ((q = strstr(last + 1, "{lambda(")))
			last = q;
		const char *a = strchr(last, '('), *z = a ? strchr(a + 1, ')') : NULL;
		if (a)
			a++;
		if (!s->dtype[0] && a && z && z > a && (size_t)(z - a) < sizeof(s->dtype)) {
			memcpy(s->dtype, a, z - a);
			s->dtype[z - a] = 0;
			char *comma = strchr(s->dtype, ',');
			if (comma)
				*comma = 0;
		}
		return;
	}
	/* ns::Name<args> */
	const char *lt = strchr(f, '<');
	n = lt ? (size_t)(lt - f) : strlen(f);
	if (n >= sizeof(head))
		return;
	memcpy(head, f, n);
	head[n] = 0;
	const char *b = strrchr(head, ':');
	snprintf(s->op, sizeof(s->op), "%.*s", (int)sizeof(s->op) - 1, b ? b + 1 : head);
	if (!lt)
		return;
	targ(f, (size_t)(lt - f), 0, s->dtype, sizeof(s->dtype));
	/* wrappers whose last argument is the functor that computes */
	if (!strcmp(s->op, "BinaryFunctor") || !strcmp(s->op, "AUnaryFunctor") ||
	    !strcmp(s->op, "BUnaryFunctor")) {
		char inner[4096];
		for (unsigned k = 3; !targ(f, (size_t)(lt - f), k, inner, sizeof(inner)); k++) {
			const char *ilt = strchr(inner, '<');
			size_t in = ilt ? (size_t)(ilt - inner) : strlen(inner);
			char ih[256];
			if (in >= sizeof(ih))
				break;
			memcpy(ih, inner, in);
			ih[in] = 0;
			const char *ib = strrchr(ih, ':');
			char wrapped[sizeof(s->op)];
			snprintf(wrapped, sizeof(wrapped), "%.40s:%.50s", s->op, ib ? ib + 1 : ih);
			memcpy(s->op, wrapped, sizeof(wrapped));
			break;
		}
	}
}

static int functor_layout(const struct gpuos_sig *s, struct gpuos_sig_functor *l);

/*
 * The index of the first lambda in the functor as the raw name spells it (the same template
 * argument that s->functor is of the normalised name), 0 if it has none.
 */
static unsigned first_lambda(const char *dm, int family)
{
	static __thread char raw[8192], closure[8192];
	const char *lt, *p, *q;
	int rc = -1;

	switch (family) {
	case GPUOS_SIG_VECTORIZED:
		if ((lt = kernel_lt(dm, "vectorized_elementwise_kernel")))
			rc = targ(dm, (size_t)(lt - dm), 1, raw, sizeof(raw));
		break;
	case GPUOS_SIG_UNROLLED:
		if ((lt = kernel_lt(dm, "unrolled_elementwise_kernel")))
			rc = targ(dm, (size_t)(lt - dm), 0, raw, sizeof(raw));
		break;
	case GPUOS_SIG_ELEMENTWISE:
		if ((lt = kernel_lt(dm, "elementwise_kernel")) &&
		    !targ(dm, (size_t)(lt - dm), 2, closure, sizeof(closure)) &&
		    (p = strchr(closure, '<')))
			rc = targ(closure, (size_t)(p - closure), 0, raw, sizeof(raw));
		break;
	}
	if (rc || !(p = strstr(raw, "{lambda(")) || !(q = strstr(p, ")#")))
		return 0;
	return (unsigned)strtoul(q + 2, NULL, 10);
}

/* The functor's names, then its layout, worked out once for the decoders. */
static int functor_done(struct gpuos_sig *s, const char *dm)
{
	int rc;

	functor_names(s);
	s->lam = first_lambda(dm, s->family);
	rc = functor_layout(s, &s->fl);
	s->fl.rc = rc;
	s->fl_set = true;
	return 0;
}

const char *gpuos_sig_family_name(int family)
{
	static const char *const names[] = {
	    [GPUOS_SIG_VECTORIZED] = "vectorized",   [GPUOS_SIG_UNROLLED] = "unrolled",
	    [GPUOS_SIG_ELEMENTWISE] = "elementwise", [GPUOS_SIG_REDUCE] = "reduce",
	    [GPUOS_SIG_LAYER_NORM] = "layer_norm",   [GPUOS_SIG_CONCAT] = "concat",
	    [GPUOS_SIG_ARANGE] = "arange",	     [GPUOS_SIG_INDEX_SELECT] = "index_select",
	    [GPUOS_SIG_SOFTMAX] = "softmax",
	};

	if (family <= 0 || (size_t)family >= sizeof(names) / sizeof(names[0]) || !names[family])
		return "";
	return names[family];
}

/*
 * torch.cat's kernels: true if @buf names one, with s->family CONCAT and s->concat filled
 * from its template <T, IndexType, Dims, batch_size, stride_size, ...>, or family NONE when
 * an argument does not read. T is OpaqueType<N>: cat moves bytes, whatever the dtype.
 */
static bool concat_parse(const char *buf, struct gpuos_sig *s)
{
	static const struct {
		const char *name;
		int kind;
		unsigned nextra; /* numbers after stride_size */
	} kinds[] = {
	    {"CatArrayBatchedCopy_vectorized", GPUOS_CONCAT_VECTORIZED, 2},
	    {"CatArrayBatchedCopy_alignedK_contig", GPUOS_CONCAT_ALIGNED, 1},
	    {"CatArrayBatchedCopy_contig", GPUOS_CONCAT_CONTIG, 0},
	    {"CatArrayBatchedCopy", GPUOS_CONCAT_STRIDED, 0},
	};
	struct gpuos_sig_concat *c = &s->concat;
	unsigned *num[6] = {&c->dims, &c->batch, &c->ssize, &c->vbytes, &c->epv};
	const char *lt = NULL, *ot;
	char arg[256];
	size_t at;
	unsigned k;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]) && !lt; k++)
		lt = kernel_lt(buf, kinds[k].name);
	if (!lt)
		return false;
	k--;
	at = (size_t)(lt - buf);
	snprintf(s->op, sizeof(s->op), "%s", kinds[k].name);
	c->kind = kinds[k].kind;
	s->fl.rc = -ENOTSUP; /* no functor */
	s->fl_set = true;
	if (targ(buf, at, 0, arg, sizeof(arg)) || !(ot = strstr(arg, "OpaqueType<")))
		return true;
	snprintf(s->dtype, sizeof(s->dtype), "%.*s", (int)sizeof(s->dtype) - 1, ot);
	c->elem = (unsigned)strtoul(ot + 11, NULL, 10);
	if (targ(buf, at, 1, arg, sizeof(arg)))
		return true;
	c->index32 = !strcmp(arg, "unsigned int");
	for (unsigned i = 0; i < 3 + kinds[k].nextra; i++) {
		if (targ(buf, at, 2 + i, arg, sizeof(arg)))
			return true;
		*num[i] = (unsigned)strtoul(arg, NULL, 10);
	}
	s->family = GPUOS_SIG_CONCAT;
	return true;
}

/*
 * torch.arange's kernel (RangeFactories.cu): true if @buf names elementwise_kernel_with_index
 * of arange_cuda_out's lambda, with s->family ARANGE; false for other functions' lambdas
 * (linspace, logspace) and for a structure it does not know. The name does not spell the
 * element type: the second lambda's index in @dm (the raw name) does, being the case of
 * AT_DISPATCH_ALL_TYPES_AND2(Half, BFloat16) that the lambda is in.
 */
static unsigned type_size(const char *t);

static bool arange_parse(const char *buf, const char *dm, struct gpuos_sig *s)
{
	/* the dispatch's cases in PyTorch 2.11's order: the element type and its accumulator
	 * (at::acc_type<T, true>). The libtorch symbols pair each case with its lambda's
	 * return type, and the GPU test runs arange in every one. */
	static const char *const types[][2] = {
	    {"unsigned char", "long"}, {"signed char", "long"}, {"int", "long"},
	    {"long", "long"},	       {"short", "long"},	{"double", "double"},
	    {"float", "float"},	       {"c10::Half", "float"},	{"c10::BFloat16", "float"},
	};
	static const char fn[] = "at::native::arange_cuda_out(",
			  tail[] = ")::{lambda()#}::operator()() const::{lambda()#}::operator()() "
				   "const::{lambda(long)#}";
	const char *lt = kernel_lt(buf, "elementwise_kernel_with_index"), *p;
	char functor[512], index[16];
	unsigned outer, k;

	if (!lt || targ(buf, (size_t)(lt - buf), 1, functor, sizeof(functor)) ||
	    targ(buf, (size_t)(lt - buf), 0, index, sizeof(index)) ||
	    strncmp(functor, fn, sizeof(fn) - 1) || !(p = strstr(functor, tail)) ||
	    p[sizeof(tail) - 1] || (strcmp(index, "int") && strcmp(index, "long")))
		return false;
	/* the raw name's first arange_cuda_out is the template argument's: its two lambdas */
	if (!(p = strstr(dm, fn)) || !(p = strstr(p, "::{lambda()#")))
		return false;
	outer = (unsigned)strtoul(p + 12, NULL, 10);
	if (!(p = strstr(p + 12, "::{lambda()#")))
		return false;
	k = (unsigned)strtoul(p + 12, NULL, 10);
	if (outer != 1 || k < 1 || k > sizeof(types) / sizeof(types[0]))
		return false;
	s->family = GPUOS_SIG_ARANGE;
	snprintf(s->functor, sizeof(s->functor), "%s", functor);
	snprintf(s->op, sizeof(s->op), "arange_cuda_out");
	snprintf(s->dtype, sizeof(s->dtype), "%s", types[k - 1][0]);
	snprintf(s->out_dtype, sizeof(s->out_dtype), "%s", types[k - 1][1]);
	s->arange.index = strcmp(index, "int") ? 8 : 4;
	s->arange.elem = type_size(s->dtype);
	s->arange.acc = type_size(s->out_dtype);
	s->fl.rc = -ENOTSUP; /* the decoder reads the lambda's captures itself */
	s->fl_set = true;
	return true;
}

/*
 * index_select's kernel (Indexing.cu; embedding looks rows up with it): true if @buf names
 * at::native's indexSelectSmallIndex, with s->family INDEX_SELECT when its template reads
 * <T, long|int, unsigned int, D, D, I>: T an element type of known size (its bits move as
 * they are, whatever it is), D 1..3 or -1, I -2 or -1. Family NONE otherwise.
 */
static bool isel_parse(const char *buf, struct gpuos_sig *s)
{
	/* the dispatch's element types (AT_DISPATCH_V2 in index_select_out_cuda, and the
	 * quantized ones' AT_DISPATCH_QINT_TYPES) and their bytes */
	static const struct {
		const char *name;
		unsigned size;
	} types[] = {
	    {"bool", 1},
	    {"unsigned char", 1},
	    {"signed char", 1},
	    {"c10::Float8_e5m2", 1},
	    {"c10::Float8_e4m3fn", 1},
	    {"c10::Float8_e5m2fnuz", 1},
	    {"c10::Float8_e4m3fnuz", 1},
	    {"c10::Float8_e8m0fnu", 1},
	    {"c10::qint8", 1},
	    {"c10::quint8", 1},
	    {"short", 2},
	    {"unsigned short", 2},
	    {"c10::Half", 2},
	    {"c10::BFloat16", 2},
	    {"int", 4},
	    {"unsigned int", 4},
	    {"float", 4},
	    {"c10::complex<c10::Half>", 4},
	    {"c10::qint32", 4},
	    {"long", 8},
	    {"unsigned long", 8},
	    {"double", 8},
	    {"c10::complex<float>", 8},
	    {"c10::complex<double>", 16},
	};
	static const char name[] = "at::native::(anonymous namespace)::indexSelectSmallIndex<";
	const char *p = strstr(buf, name);
	char arg[6][48];
	size_t lt;
	long dd, sd, id;

	if (!p)
		return false;
	lt = (size_t)(p - buf) + sizeof(name) - 2;
	snprintf(s->op, sizeof(s->op), "indexSelectSmallIndex");
	s->fl.rc = -ENOTSUP; /* no functor */
	s->fl_set = true;
	for (unsigned i = 0; i < 6; i++)
		if (targ(buf, lt, i, arg[i], sizeof(arg[i])))
			return true;
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(arg[0], types[i].name))
			s->isel.elem = types[i].size;
	dd = strtol(arg[3], NULL, 10);
	sd = strtol(arg[4], NULL, 10);
	id = strtol(arg[5], NULL, 10);
	if (!s->isel.elem || (strcmp(arg[1], "long") && strcmp(arg[1], "int")) ||
	    strcmp(arg[2], "unsigned int") || dd != sd || dd < -1 || !dd || dd > 3 ||
	    (id != -2 && id != -1))
		return true;
	snprintf(s->dtype, sizeof(s->dtype), "%s", arg[0]);
	s->isel.index = strcmp(arg[1], "int") ? 8 : 4;
	s->isel.dst_dims = s->isel.src_dims = (int)dd;
	s->isel.idx_dims = (int)id;
	s->family = GPUOS_SIG_INDEX_SELECT;
	return true;
}

/*
 * softmax's and log_softmax's kernels for rows of up to 2048 elements (PersistentSoftmax.cuh),
 * and their gradients': true if @buf names softmax_warp_forward or softmax_warp_backward in
 * the anonymous namespace, with s->family SOFTMAX when its template reads <input_t,
 * output_t, acc_t, 0..11, bool, bool>; family NONE otherwise. The types' names are kept for
 * the catalog to judge.
 */
static bool softmax_parse(const char *buf, struct gpuos_sig *s)
{
	static const char fwd[] = "void (anonymous namespace)::softmax_warp_forward<",
			  bwd[] = "void (anonymous namespace)::softmax_warp_backward<";
	const bool backward = !strncmp(buf, bwd, sizeof(bwd) - 1);
	char arg[6][48];
	size_t lt;
	char *end;
	long l2e;

	if (!backward && strncmp(buf, fwd, sizeof(fwd) - 1))
		return false;
	lt = (backward ? sizeof(bwd) : sizeof(fwd)) - 2;
	snprintf(s->op, sizeof(s->op), backward ? "softmax_warp_backward" : "softmax_warp_forward");
	s->softmax.backward = backward;
	s->fl.rc = -ENOTSUP; /* no functor */
	s->fl_set = true;
	for (unsigned i = 0; i < 6; i++)
		if (targ(buf, lt, i, arg[i], sizeof(arg[i])))
			return true;
	l2e = strtol(arg[3], &end, 10);
	if (*end || end == arg[3] || l2e < 0 || l2e > 11 ||
	    (strcmp(arg[4], "true") && strcmp(arg[4], "false")) ||
	    (strcmp(arg[5], "true") && strcmp(arg[5], "false")))
		return true;
	snprintf(s->dtype, sizeof(s->dtype), "%s", arg[0]);
	snprintf(s->out_dtype, sizeof(s->out_dtype), "%s", arg[1]);
	snprintf(s->softmax.acc, sizeof(s->softmax.acc), "%s", arg[2]);
	s->softmax.l2e = (unsigned)l2e;
	/* dispatch_softmax_forward's launch: warps of min(2^l2e, 32) lanes, 128 threads a
	 * block, each warp two rows up to 128 wide and one beyond */
	s->softmax.ws = (1u << l2e) < 32 ? 1u << l2e : 32;
	s->softmax.rows = 128 / s->softmax.ws * ((1u << l2e) <= 128 ? 2 : 1);
	s->softmax.in_size = type_size(s->dtype);
	s->softmax.out_size = type_size(s->out_dtype);
	s->softmax.log = !strcmp(arg[4], "true");
	s->softmax.masked = !strcmp(arg[5], "true");
	s->family = GPUOS_SIG_SOFTMAX;
	return true;
}

int gpuos_sig_parse(const char *dm, struct gpuos_sig *s)
{
	static __thread char buf[32768];
	char arg[8192];
	const char *lt;

	memset(s, 0, sizeof(*s));
	if (gpuos_sig_normalize(dm, buf, sizeof(buf)))
		return -EINVAL;
	if ((lt = kernel_lt(buf, "vectorized_elementwise_kernel"))) {
		s->family = GPUOS_SIG_VECTORIZED;
		if (targ(buf, (size_t)(lt - buf), 0, arg, sizeof(arg)))
			return -EINVAL;
		s->vec = (unsigned)strtoul(arg, NULL, 10);
		if (targ(buf, (size_t)(lt - buf), 1, s->functor, sizeof(s->functor)) ||
		    targ(buf, (size_t)(lt - buf), 2, arg, sizeof(arg)))
			return -EINVAL;
	} else if ((lt = kernel_lt(buf, "unrolled_elementwise_kernel"))) {
		s->family = GPUOS_SIG_UNROLLED;
		if (targ(buf, (size_t)(lt - buf), 0, s->functor, sizeof(s->functor)) ||
		    targ(buf, (size_t)(lt - buf), 5, s->loader, sizeof(s->loader)) ||
		    targ(buf, (size_t)(lt - buf), 6, s->storer, sizeof(s->storer)) ||
		    targ(buf, (size_t)(lt - buf), 1, arg, sizeof(arg)))
			return -EINVAL;
	} else if ((lt = kernel_lt(buf, "elementwise_kernel"))) {
		s->family = GPUOS_SIG_ELEMENTWISE;
		if (targ(buf, (size_t)(lt - buf), 0, arg, sizeof(arg)))
			return -EINVAL;
		s->vec = (unsigned)strtoul(arg, NULL, 10);
		/* the closure: gpu_kernel_impl_nocast<F>::{lambda(int)#} or similar */
		if (targ(buf, (size_t)(lt - buf), 2, arg, sizeof(arg)))
			return -EINVAL;
		/* gpu_kernel_impl<F> casts each operand: its closure also holds their dtypes and
		 * can have the size of a _nocast one */
		s->dyncast = !strstr(arg, "gpu_kernel_impl_nocast<");
		const char *ilt = strchr(arg, '<');
		if (ilt && targ(arg, (size_t)(ilt - arg), 0, s->functor, sizeof(s->functor)))
			return -EINVAL;
		if (!ilt)
			snprintf(s->functor, sizeof(s->functor), "%.*s",
				 (int)sizeof(s->functor) - 1, arg);
		return functor_done(s, dm);
	} else if ((lt = kernel_lt(buf, "vectorized_layer_norm_kernel"))) {
		/* <T, T_ACC, rms_norm>: no functor; the flag where the functor goes */
		s->family = GPUOS_SIG_LAYER_NORM;
		if (targ(buf, (size_t)(lt - buf), 0, s->dtype, sizeof(s->dtype)) ||
		    targ(buf, (size_t)(lt - buf), 1, s->out_dtype, sizeof(s->out_dtype)) ||
		    targ(buf, (size_t)(lt - buf), 2, s->functor, sizeof(s->functor)))
			return -EINVAL;
		snprintf(s->op, sizeof(s->op), "vectorized_layer_norm_kernel");
		s->fl.rc = -ENOTSUP;
		s->fl_set = true;
		return 0;
	} else if (arange_parse(buf, dm, s)) {
		return 0;
	} else if (isel_parse(buf, s)) {
		return 0;
	} else if (softmax_parse(buf, s)) {
		return 0;
	} else if (concat_parse(buf, s)) {
		return s->family ? 0 : -EINVAL;
	} else if ((lt = kernel_lt(buf, "reduce_kernel"))) {
		s->family = GPUOS_SIG_REDUCE;
		if (targ(buf, (size_t)(lt - buf), 0, arg, sizeof(arg)))
			return -EINVAL;
		s->vec = (unsigned)strtoul(arg, NULL, 10);
		if (targ(buf, (size_t)(lt - buf), 2, arg, sizeof(arg)))
			return -EINVAL;
		/* ReduceOp<scalar_t, ops_t, index_t, out_scalar_t, vt0, input_vec_size> */
		const char *ilt = strchr(arg, '<');
		if (!ilt || targ(arg, (size_t)(ilt - arg), 1, s->functor, sizeof(s->functor)) ||
		    targ(arg, (size_t)(ilt - arg), 0, s->dtype, sizeof(s->dtype)))
			return -EINVAL;
		char dtype[48];
		memcpy(dtype, s->dtype, sizeof(dtype));
		functor_names(s);
		memcpy(s->dtype, dtype, sizeof(dtype)); /* the reduced type, not the ops' */
		char n[16];
		s->vt0 = s->ivs = 4;
		if (!targ(buf, (size_t)(lt - buf), 1, n, sizeof(n)))
			s->ovs = (unsigned)strtoul(n, NULL, 10);
		if (targ(arg, (size_t)(ilt - arg), 3, s->out_dtype, sizeof(s->out_dtype)))
			snprintf(s->out_dtype, sizeof(s->out_dtype), "%s", s->dtype);
		if (!targ(arg, (size_t)(ilt - arg), 4, n, sizeof(n)))
			s->vt0 = s->ivs = (unsigned)strtoul(n, NULL, 10);
		if (!targ(arg, (size_t)(ilt - arg), 5, n, sizeof(n)))
			s->ivs = (unsigned)strtoul(n, NULL, 10);
		s->fl.rc = -ENOTSUP; /* reductions: no functor read */
		s->fl_set = true;
		return 0;
	} else {
		return 0;
	}
	/* std::array<char*, NTul> */
	const char *a = strstr(arg, "std::array<char*,");
	if (a)
		s->narrays = (unsigned)strtoul(a + strlen("std::array<char*,"), NULL, 10);
	return functor_done(s, dm);
}

int gpuos_sig_targ(const char *s, size_t lt, unsigned n, char *buf, size_t len)
{
	return targ(s, lt, n, buf, len);
}

/* The size of element type @t, or 0 for types this decoder does not read. */
static unsigned type_size(const char *t)
{
	if (!strcmp(t, "float") || !strcmp(t, "int"))
		return 4;
	if (!strcmp(t, "double") || !strcmp(t, "long"))
		return 8;
	if (!strcmp(t, "c10::Half") || !strcmp(t, "c10::BFloat16") || !strcmp(t, "short"))
		return 2;
	if (!strcmp(t, "bool") || !strcmp(t, "unsigned char") || !strcmp(t, "signed char"))
		return 1;
	return 0;
}

/* A functor scalar's C type, known at parse time: the launch path reads no type names. */
enum scalar_kind { SK_OTHER, SK_FLOAT, SK_DOUBLE, SK_INT, SK_LONG };

static uint8_t scalar_kind(const char *t)
{
	return !strcmp(t, "float")    ? SK_FLOAT
	       : !strcmp(t, "double") ? SK_DOUBLE
	       : !strcmp(t, "int")    ? SK_INT
	       : !strcmp(t, "long")   ? SK_LONG
				      : SK_OTHER;
}

static double load_scalar(uint8_t kind, const uint8_t *p)
{
	float f;
	double d;
	int32_t i;
	int64_t l;

	switch (kind) {
	case SK_FLOAT:
		memcpy(&f, p, 4);
		return f;
	case SK_DOUBLE:
		memcpy(&d, p, 8);
		return d;
	case SK_INT:
		memcpy(&i, p, 4);
		return i;
	case SK_LONG:
		memcpy(&l, p, 8);
		return (double)l;
	default: /* half, bfloat16: raw bits in scalar_off/size; the operator reads them */
		return 0;
	}
}

static int functor_scalars(const struct gpuos_sig *s, const uint8_t *f, unsigned fsize,
			   struct gpuos_ew_args *out);

/* (int N, F f, std::array<char*, NT> data): the parameters both contiguous families start with */
static int decode_n_f_data(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			   void *const *args, struct gpuos_ew_args *out)
{
	memset(out, 0, sizeof(*out));
	if (!args || params[0].size != 4 || !s->narrays || s->narrays > 8 ||
	    params[2].size != 8 * s->narrays)
		return -EINVAL;
	memcpy(&out->n, args[0], 4);
	if (out->n <= 0)
		return -EINVAL;
	out->narrays = s->narrays;
	memcpy(out->ptr, args[2], 8 * s->narrays);
	for (unsigned k = 0; k < s->narrays; k++)
		if (!out->ptr[k])
			return -EINVAL;
	return functor_scalars(s, args[1], params[1].size, out);
}

int gpuos_sig_decode_vectorized(const struct gpuos_sig *s, const struct gpuos_kparam *params,
				unsigned nparams, void *const *args, struct gpuos_ew_args *out)
{
	if (s->family != GPUOS_SIG_VECTORIZED || nparams != 3) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	return decode_n_f_data(s, params, args, out);
}

/*
 * What a functor kind holds (PyTorch 2.11, BinaryOps.h, Loops.cuh): its size and where its
 * scalars of the element type lie; an empty functor inside another takes one byte, padded
 * to the next field; a lambda that captures nothing is one byte. The catalog's entries say
 * it for the kinds they list (catalog.h). -ENOTSUP for other kinds.
 */
static int functor_shape(const struct gpuos_sig *s, struct gpuos_sig_functor *l)
{
	unsigned ts = type_size(s->dtype);

	*l = (struct gpuos_sig_functor){.elem = ts};
	/* at::opmath_type: the functors of 2-byte floats hold floats */
	if (!strcmp(s->dtype, "c10::Half") || !strcmp(s->dtype, "c10::BFloat16"))
		ts = 4;
	if (!gpuos_cat_functor(s, &l->size, &l->n, l->off, l->ssize))
		return 0;
	if (strstr(s->functor, "{lambda(") && !strstr(s->op, "Functor"))
		l->size = 1, l->lambda = true;
	else if (!strcmp(s->op, "CUDAFunctor_add") || !strcmp(s->op, "FillFunctor"))
		l->size = ts, l->n = 1;
	else if (!strcmp(s->op, "CUDAFunctorOnSelf_add") ||
		 !strcmp(s->op, "CUDAFunctorOnOther_add"))
		l->size = 2 * ts, l->n = 2, l->off[1] = ts;
	else if (!strncmp(s->op, "AUnaryFunctor:", 14) || !strncmp(s->op, "BUnaryFunctor:", 14))
		l->size = 2 * ts, l->n = 1, l->off[0] = ts; /* {f; T a} */
	else if (!strncmp(s->op, "BinaryFunctor:", 14))
		l->size = 1;
	else
		return -ENOTSUP;
	return ts || l->size == 1 ? 0 : -ENOTSUP;
}

/* functor_shape, and each scalar's C type: opmath float where it is 4 bytes of a wider or
 * narrower element, else the element type */
static int functor_layout(const struct gpuos_sig *s, struct gpuos_sig_functor *l)
{
	int rc = functor_shape(s, l);

	for (unsigned k = 0; !rc && k < l->n && k < 2; k++) {
		unsigned ss = l->ssize[k] ? l->ssize[k] : l->elem;
		l->kind[k] = ss == 4 && l->elem != 4 ? SK_FLOAT : scalar_kind(s->dtype);
	}
	return rc;
}

/* The functor's scalars from its @fsize bytes at @f: no string work when parse cached it. */
static int functor_scalars(const struct gpuos_sig *s, const uint8_t *f, unsigned fsize,
			   struct gpuos_ew_args *out)
{
	struct gpuos_sig_functor mine;
	const struct gpuos_sig_functor *l = &s->fl;

	if (!s->fl_set) {
		mine.rc = functor_layout(s, &mine);
		l = &mine;
	}
	if (l->rc)
		return -ENOTSUP;
	if (fsize != l->size) /* a lambda that captures: not read yet */
		return l->lambda ? -ENOTSUP : -EINVAL;
	out->nscalars = l->n;
	for (unsigned k = 0; k < l->n; k++) {
		unsigned ss = l->ssize[k] ? l->ssize[k] : l->elem;
		out->scalar_off[k] = l->off[k];
		out->scalar_size[k] = ss;
		out->scalar[k] = load_scalar(l->kind[k], f + l->off[k]);
		if (ss <= 8 && l->off[k] + ss <= fsize)
			memcpy(&out->scalar_bits[k], f + l->off[k], ss);
	}
	return 0;
}

/* PyTorch's IntDivider<unsigned>: the magic numbers a divisor implies. */
void gpuos_sig_divider(uint32_t d, uint32_t *m1, uint32_t *shift)
{
	uint32_t sh = 0;

	while (sh < 32 && (1ull << sh) < d)
		sh++;
	*shift = sh;
	*m1 = (uint32_t)(((1ull << 32) * ((1ull << sh) - d)) / d + 1);
}

/* An IntDivider as PyTorch's constructor makes it. */
static bool divider_ok(uint32_t d, uint32_t m1, uint32_t shift)
{
	uint32_t m, sh;

	if (!d || d > INT32_MAX)
		return false;
	gpuos_sig_divider(d, &m, &sh);
	return shift == sh && m1 == m;
}

int gpuos_sig_decode_elementwise(const struct gpuos_sig *s, const struct gpuos_kparam *params,
				 unsigned nparams, void *const *args, struct gpuos_oc_args *out)
{
	const uint8_t *c = nparams == 2 ? args[1] : NULL;
	unsigned csize = nparams == 2 ? params[1].size : 0, fsize = 0, nt = 0;
	uint64_t prod = 1;

	memset(out, 0, sizeof(*out));
	if (s->family != GPUOS_SIG_ELEMENTWISE || nparams != 2 || params[0].size != 4)
		return -EINVAL;
	if (s->dyncast)
		return -ENOTSUP; /* another closure layout */
	struct gpuos_sig_functor l = s->fl;
	if (!s->fl_set)
		l.rc = functor_layout(s, &l);
	if (l.rc)
		return -ENOTSUP;
	fsize = l.size;
	/* NT: the arity whose layout fills the closure exactly */
	for (unsigned k = 1; k <= 8 && !nt; k++) {
		unsigned ptrs = (304 + 100 * k + 7) & ~7u, end = ptrs + 8 * k;
		if (((end + fsize + 7) & ~7u) + 8 == csize)
			nt = k;
	}
	if (!nt)
		return -EINVAL;
	memcpy(&out->ew.n, args[0], 4);
	memcpy(&out->dims, c, 4);
	if (out->ew.n <= 0 || out->dims < 1 || out->dims > GPUOS_OC_MAX_DIMS)
		return -EINVAL;
	for (int d = 0; d < out->dims; d++) {
		uint32_t div[3];
		memcpy(div, c + 4 + 12 * d, 12);
		if (!divider_ok(div[0], div[1], div[2]))
			return -EINVAL;
		out->sizes[d] = div[0];
		prod *= div[0];
		memcpy(out->strides[d], c + 304 + 4 * nt * d, 4 * nt);
	}
	if (prod != (uint64_t)out->ew.n)
		return -EINVAL;
	unsigned ptrs = (304 + 100 * nt + 7) & ~7u;
	out->ew.narrays = nt;
	memcpy(out->ew.ptr, c + ptrs, 8 * nt);
	for (unsigned k = 0; k < nt; k++)
		if (!out->ew.ptr[k])
			return -EINVAL;
	return functor_scalars(s, c + ptrs + 8 * nt, fsize, &out->ew);
}

/* c10::ScalarType -> bytes, for the types a cast load or store handles here (0: other). */
static unsigned scalar_type_size(int t)
{
	switch (t) {
	case 0:	 /* Byte */
	case 1:	 /* Char */
	case 11: /* Bool */
		return 1;
	case 2:	 /* Short */
	case 5:	 /* Half */
	case 15: /* BFloat16 */
		return 2;
	case 3: /* Int */
	case 6: /* Float */
		return 4;
	case 4: /* Long */
	case 7: /* Double */
		return 8;
	default:
		return 0;
	}
}

int gpuos_sig_decode_unrolled(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			      unsigned nparams, void *const *args, struct gpuos_ur_args *out)
{
	bool load_cast, store_cast;
	unsigned nin;
	int rc;

	memset(out, 0, sizeof(*out));
	out->out_dtype = -1;
	if (s->family != GPUOS_SIG_UNROLLED || nparams != 7 || params[0].size != 4 || !s->narrays ||
	    s->narrays > 8 || params[2].size != 8 * s->narrays)
		return -EINVAL;
	nin = s->narrays - 1;
	load_cast = strstr(s->loader, "LoadWithCast") != NULL;
	store_cast = strstr(s->storer, "StoreWithCast") != NULL;
	if ((!load_cast && !strstr(s->loader, "LoadWithoutCast")) ||
	    (!store_cast && !strstr(s->storer, "StoreWithoutCast")))
		return -ENOTSUP;
	rc = decode_n_f_data(s, params, args, &out->ew);
	if (rc)
		return rc;
	out->nin = nin;
	for (unsigned k = 0; k < nin && k < 7; k++)
		out->in_dtype[k] = -1;
	if (load_cast) {
		const uint8_t *l = args[5];
		unsigned want = ((nin + 3) & ~3u) + 4 * nin; /* dtypes padded to 4, then sizes */
		if (params[5].size != want || nin > 7)
			return -EINVAL;
		for (unsigned k = 0; k < nin; k++) {
			uint32_t esz;
			memcpy(&esz, l + ((nin + 3) & ~3u) + 4 * k, 4);
			if (!scalar_type_size(l[k]) || scalar_type_size(l[k]) != esz)
				return -EINVAL;
			out->in_dtype[k] = l[k];
		}
	}
	if (store_cast) {
		const uint8_t *st = args[6];
		uint32_t esz;
		if (params[6].size != 8)
			return -EINVAL;
		memcpy(&esz, st + 4, 4);
		if (!scalar_type_size(st[0]) || scalar_type_size(st[0]) != esz)
			return -EINVAL;
		out->out_dtype = st[0];
	}
	return 0;
}

/* ---- reduce_kernel ---- */

/* ReduceOp after its config: input OffsetCalculator<1> (404 bytes), output <2> (504), then
 * aligned to 8 the pointers src, dst[2], acc_buf, cta_buf, semaphores, int64 base_idx, bools
 * accumulate and final_output, int noutputs_per_thread. */
#define RED_CFG	    64u
#define RED_IN	    (4u + 12u * GPUOS_OC_MAX_DIMS + 4u * GPUOS_OC_MAX_DIMS)
#define RED_OUT	    (4u + 12u * GPUOS_OC_MAX_DIMS + 8u * GPUOS_OC_MAX_DIMS)
#define RED_TAIL    64u
#define RED_HEAD_MAX 24u /* ops (MeanOps: a float), ident (ArgMaxOps: pair<float, int64>) */

static unsigned red_ptrs(unsigned c)
{
	return (c + RED_CFG + RED_IN + RED_OUT + 7u) & ~7u;
}

/* One OffsetCalculator at @p with @nargs strides a dim into sizes[] and strides[] (dims
 * 0..25, PyTorch's dividers). -EINVAL otherwise. */
static int red_calc(const uint8_t *p, unsigned nargs, int *dims, uint32_t *sizes,
		    uint32_t *strides)
{
	memcpy(dims, p, 4);
	if (*dims < 0 || *dims > GPUOS_OC_MAX_DIMS)
		return -EINVAL;
	for (int d = 0; d < *dims; d++) {
		uint32_t div[3];

		memcpy(div, p + 4 + 12 * d, 12);
		if (!divider_ok(div[0], div[1], div[2]))
			return -EINVAL;
		sizes[d] = div[0];
		memcpy(strides + nargs * d, p + 4 + 12 * GPUOS_OC_MAX_DIMS + 4 * nargs * d,
		       4 * nargs);
	}
	return 0;
}

/* The config at @c of @p, and what follows it, into @out; -EINVAL if it does not hold. */
static int red_read(const uint8_t *p, unsigned c, const unsigned grid[3],
		    const unsigned block[3], unsigned nt, struct gpuos_reduce_args *out)
{
	const uint8_t *q = p + red_ptrs(c);
	int32_t cfg[15];
	uint64_t ptr[6];

	memset(out, 0, sizeof(*out));
	out->head = c;
	memcpy(out->head_bytes, p, c);
	memcpy(cfg, p + c, sizeof(cfg));
	out->element_size_bytes = cfg[0];
	out->num_inputs = cfg[1];
	out->num_outputs = cfg[2];
	out->step_input = cfg[3];
	out->step_output = cfg[4];
	out->ctas_per_output = cfg[5];
	memcpy(out->input_mult, cfg + 6, sizeof(out->input_mult));
	memcpy(out->output_mult, cfg + 9, sizeof(out->output_mult));
	out->block_width = cfg[11];
	out->block_height = cfg[12];
	out->num_threads = cfg[13];
	out->vectorize_input = p[c + 56] != 0;
	memcpy(&out->output_vec_size, p + c + 60, 4);
	if (out->element_size_bytes < 1 ||
	    out->element_size_bytes > 16 || out->num_inputs < 1 || out->num_outputs < 1 ||
	    out->step_input < 1 || out->step_output < 1 || out->ctas_per_output < 1 ||
	    out->block_width < 1 || out->block_height < 1 || p[c + 56] > 1 ||
	    out->num_threads != (int64_t)out->block_width * out->block_height ||
	    (nt && (unsigned)out->num_threads > nt) || out->output_vec_size < 1 ||
	    out->output_vec_size > 4)
		return -EINVAL;
	/* the launch as PyTorch sizes it from the config */
	int64_t gx = ((int64_t)out->num_outputs + (int64_t)out->output_vec_size * out->step_output -
		      1) / ((int64_t)out->output_vec_size * out->step_output);
	if (block[0] != (unsigned)out->block_width || block[1] != (unsigned)out->block_height ||
	    block[2] != 1 || grid[0] != gx || grid[1] != (unsigned)out->ctas_per_output ||
	    grid[2] != 1)
		return -EINVAL;
	if (red_calc(p + c + RED_CFG, 1, &out->in_dims, out->in_sizes, out->in_strides) ||
	    red_calc(p + c + RED_CFG + RED_IN, 2, &out->out_dims, out->out_sizes,
		     &out->out_strides[0][0]))
		return -EINVAL;
	memcpy(ptr, q, sizeof(ptr));
	out->src = ptr[0];
	out->dst[0] = ptr[1];
	out->dst[1] = ptr[2];
	out->acc_buf = ptr[3];
	out->cta_buf = ptr[4];
	out->semaphores = ptr[5];
	memcpy(&out->base_idx, q + 48, 8);
	if (q[56] > 1 || q[57] > 1)
		return -EINVAL;
	out->accumulate = q[56];
	out->final_output = q[57];
	memcpy(&out->noutputs, q + 60, 4);
	if (!out->src || !out->dst[0] || out->noutputs < 1)
		return -EINVAL;
	return 0;
}

int gpuos_sig_decode_reduce(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			    unsigned nparams, void *const *args, const unsigned grid[3],
			    const unsigned block[3], struct gpuos_reduce_args *out)
{
	unsigned size = nparams == 1 ? params[0].size : 0;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (s->family != GPUOS_SIG_REDUCE || nparams != 1 || !args || !args[0])
		return -EINVAL;
	/* the config's place: the first that gives the parameter's size and reads right (at
	 * 8 and at 12 give the same size: the config, the launch and the dividers must hold) */
	for (unsigned c = 4; c <= RED_HEAD_MAX && rc; c += 4)
		if (red_ptrs(c) + RED_TAIL == size)
			rc = red_read(args[0], c, grid, block, s->vec, out);
	if (rc)
		return rc;
	if (out->ctas_per_output != 1 || out->input_mult[2] || out->acc_buf || out->cta_buf ||
	    out->semaphores || out->accumulate || !out->final_output || out->noutputs != 1 ||
	    (unsigned)out->output_vec_size != s->ovs || out->output_vec_size == 3 ||
	    (out->vectorize_input && out->output_vec_size != 1))
		return -ENOTSUP;
	return 0;
}

/* The cubin's layout is @n parameters at @off of @size bytes, and the launch gave each. */
static bool layout_is(const struct gpuos_kparam *params, unsigned nparams, void *const *args,
		      const unsigned *off, const unsigned *size, unsigned n)
{
	if (nparams != n || !args)
		return false;
	for (unsigned k = 0; k < n; k++)
		if (params[k].offset != off[k] || params[k].size != size[k] || !args[k])
			return false;
	return true;
}

int gpuos_sig_decode_layer_norm(const struct gpuos_sig *s, const struct gpuos_kparam *params,
				unsigned nparams, void *const *args, const unsigned grid[3],
				const unsigned block[3], struct gpuos_cat_ln *out)
{
	static const unsigned off[8] = {0, 4, 8, 16, 24, 32, 40, 48};
	static const unsigned size[8] = {4, 4, 8, 8, 8, 8, 8, 8};
	uint64_t *ptr[6] = {&out->x, &out->gamma, &out->beta, &out->mean, &out->rstd, &out->y};

	memset(out, 0, sizeof(*out));
	if (s->family != GPUOS_SIG_LAYER_NORM || !layout_is(params, nparams, args, off, size, 8))
		return -EINVAL;
	memcpy(&out->n, args[0], 4);
	memcpy(&out->eps, args[1], 4);
	for (unsigned k = 0; k < 6; k++)
		memcpy(ptr[k], args[2 + k], 8);
	out->rows = (int32_t)grid[0];
	out->by = (int32_t)block[1];
	if (out->n <= 0 || out->n % 4 || !out->x || !out->y || !out->mean || !out->rstd ||
	    (out->x | out->y | out->gamma | out->beta) % 16 || grid[1] != 1 || grid[2] != 1 ||
	    !grid[0] || grid[0] > INT32_MAX || block[0] != 32 || block[2] != 1 || !block[1] ||
	    block[1] > 32 || (block[1] & (block[1] - 1)))
		return -EINVAL;
	return 0;
}

/* CatArrInputTensorMetadata<T, unsigned, n, ss>'s bytes: pointers, then offset, dimSize and
 * nElements of each input, isContiguous, then ss TensorSizeStride<unsigned, 4>. */
static unsigned concat_meta_size(unsigned n, unsigned ss)
{
	unsigned b = 8 * n + 3 * 4 * n + n;

	b = (b + 3) / 4 * 4 + 32 * ss;
	return (b + 7) / 8 * 8;
}

/*
 * The units of a tensor read or written through @sizes and @strides (@dsz at the cat
 * dimension), from @base: true if there are exactly @n of them and no offset passes 2^32.
 */
static bool concat_fits(const uint32_t sizes[4], const uint32_t strides[4], unsigned dims,
			unsigned cdim, uint32_t dsz, uint32_t base, uint32_t n)
{
	uint64_t prod = 1, reach = base;

	for (unsigned i = 0; i < dims; i++) {
		uint64_t sz = i == cdim ? dsz : sizes[i];
		prod *= sz;
		reach += (sz ? sz - 1 : 0) * strides[i];
		if (prod > UINT32_MAX || reach > UINT32_MAX)
			return false;
	}
	return prod == n;
}

bool gpuos_sig_concat_known(const struct gpuos_sig_concat *c)
{
	return c->ssize == (c->kind == GPUOS_CONCAT_STRIDED ? c->batch : 1) && c->index32 &&
	       c->batch && c->batch <= 4096 && c->elem && c->elem <= 16 &&
	       !(c->elem & (c->elem - 1)) && c->dims >= 1 && c->dims <= 4 &&
	       (c->kind != GPUOS_CONCAT_VECTORIZED || (c->vbytes == 16 && c->epv * c->elem == 16));
}

int gpuos_sig_decode_concat(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			    unsigned nparams, void *const *args, const unsigned grid[3],
			    const unsigned block[3], struct gpuos_cat_concat *out, uint64_t *units)
{
	const struct gpuos_sig_concat *k = &s->concat;
	const unsigned n = k->batch, meta = concat_meta_size(n, k->ssize);
	const unsigned off[5] = {0, 8, 8 + meta, 8 + meta + 32, 8 + meta + 36};
	const unsigned size[5] = {8, meta, 32, 4, 4};
	const bool vec = k->kind == GPUOS_CONCAT_VECTORIZED;
	const uint8_t *md;
	uint32_t last;
	int32_t cdim;
	unsigned align;

	memset(out, 0, sizeof(*out));
	*units = 0;
	if (s->family != GPUOS_SIG_CONCAT || !gpuos_sig_concat_known(k) ||
	    !layout_is(params, nparams, args, off, size, 5))
		return -EINVAL;
	out->unit = align = vec ? 16 : k->elem; /* align: what the kernel's loads need */
	if (k->kind == GPUOS_CONCAT_ALIGNED) {
		/* kILP elements a load: aligned_vec_load_bytes of them, or 16 bytes' */
		unsigned ilp = k->vbytes / k->elem ? k->vbytes / k->elem : 16 / k->elem;
		if (!ilp)
			return -EINVAL;
		align = ilp * k->elem;
	}
	memcpy(&out->out, args[0], 8);
	md = args[1];
	memcpy(out->sizes, args[2], 16);
	memcpy(out->strides, (const uint8_t *)args[2] + 16, 16);
	memcpy(&cdim, args[3], 4);
	memcpy(&last, args[4], 4);
	out->dims = k->dims;
	out->nin = grid[1];
	if (cdim < 0 || (unsigned)cdim >= k->dims || !out->out || out->out % out->unit ||
	    !grid[0] || !grid[1] || grid[1] > n || grid[2] != 1 || !block[0] || block[1] != 1 ||
	    block[2] != 1)
		return -EINVAL;
	if (out->nin > GPUOS_SIG_CONCAT_INPUTS)
		return -ENOTSUP;
	out->cdim = (unsigned)cdim;
	for (unsigned b = 0; b < out->nin; b++) {
		struct gpuos_cat_concat_in *in = &out->in[b];
		uint32_t o, dsz, ne;

		memcpy(&in->src, md + 8 * b, 8);
		memcpy(&o, md + 8 * n + 4 * b, 4);
		memcpy(&dsz, md + 12 * n + 4 * b, 4);
		memcpy(&ne, md + 16 * n + 4 * b, 4);
		in->contig = k->kind != GPUOS_CONCAT_STRIDED || md[20 * n + b];
		if (!in->contig) { /* its TensorSizeStride */
			const uint8_t *ts = md + (21 * n + 3) / 4 * 4 + 32 * b;
			memcpy(in->sizes, ts, 16);
			memcpy(in->strides, ts + 16, 16);
		}
		/* the kernel's own 32-bit arithmetic: (offset * trailingSize) / elems_per_vec */
		in->n = vec ? ne / k->epv : ne;
		in->base = vec ? o * last / k->epv : o * last;
		in->dsz = vec ? dsz * last / k->epv : dsz;
		if (!in->n)
			continue;
		if (!in->src || in->src % align ||
		    !concat_fits(out->sizes, out->strides, k->dims, out->cdim, in->dsz, in->base,
				 in->n) ||
		    (!in->contig &&
		     !concat_fits(in->sizes, in->strides, k->dims, out->cdim, in->dsz, 0, in->n)))
			return -EINVAL;
		*units += in->n;
	}
	return 0;
}

int gpuos_sig_decode_arange(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			    unsigned nparams, void *const *args, const unsigned grid[3],
			    const unsigned block[3], struct gpuos_arange_args *out)
{
	const unsigned isz = s->arange.index, esz = s->arange.elem, asz = s->arange.acc;
	unsigned off[3], size[3];
	int64_t n;

	memset(out, 0, sizeof(*out));
	if (s->family != GPUOS_SIG_ARANGE || (isz != 4 && isz != 8) || !esz ||
	    (asz != 4 && asz != 8))
		return -EINVAL;
	/* N; the lambda, an extended one: {acc xstart, xstep}, 8-aligned, then its 8-byte host
	 * pointer (catalog.c's lambdas); the output pointer */
	off[0] = 0, size[0] = isz;
	off[1] = 8, size[1] = (2 * asz + 7) / 8 * 8 + 8;
	off[2] = off[1] + size[1], size[2] = 8;
	if (!layout_is(params, nparams, args, off, size, 3))
		return -EINVAL;
	if (isz == 4) {
		int32_t n32;
		memcpy(&n32, args[0], 4);
		n = n32;
	} else {
		memcpy(&n, args[0], 8);
	}
	memcpy(&out->start, args[1], asz);
	memcpy(&out->step, (const uint8_t *)args[1] + asz, asz);
	memcpy(&out->out, args[2], 8);
	if (n <= 0 || !out->out || out->out % esz || block[0] != 64 || block[1] != 1 ||
	    block[2] != 1 || grid[1] != 1 || grid[2] != 1 ||
	    (uint64_t)grid[0] != ((uint64_t)n + 63) / 64)
		return -EINVAL;
	out->n = (uint64_t)n;
	return 0;
}

/* TensorInfo<T, unsigned int>: data, sizes[25], strides[25], dims; 216 bytes. */
#define TI_DIMS	 25
#define TI_BYTES 216

/* One TensorInfo's dims (@want, or 1..GPUOS_CAT_ISEL_DIMS for -1), its sizes non-zero, with
 * @sel a dimension of size 1 (the select one, reduced): the product of its sizes, or 0. */
static uint64_t isel_info(const uint8_t *ti, int want, int sel, uint64_t *ptr, uint32_t *dims,
			  uint32_t *sizes, uint32_t *strides)
{
	uint32_t sz[TI_DIMS], st[TI_DIMS];
	uint64_t prod = 1;
	int32_t n;

	memcpy(ptr, ti, 8);
	memcpy(sz, ti + 8, sizeof(sz));
	memcpy(st, ti + 8 + sizeof(sz), sizeof(st));
	memcpy(&n, ti + 8 + 2 * sizeof(sz), 4);
	if (n < 1 || n > GPUOS_CAT_ISEL_DIMS || (want > 0 && n != want) || sel < 0 || sel >= n ||
	    sz[sel] != 1)
		return 0;
	for (int i = 0; i < n; i++) {
		if (!sz[i])
			return 0;
		prod *= sz[i];
		sizes[i] = sz[i];
		strides[i] = st[i];
	}
	*dims = (uint32_t)n;
	return prod;
}

int gpuos_sig_decode_index_select(const struct gpuos_sig *s, const struct gpuos_kparam *params,
				  unsigned nparams, void *const *args, const unsigned grid[3],
				  const unsigned block[3], struct gpuos_cat_isel *out,
				  uint64_t *elems)
{
	static const unsigned off[7] = {0,
					TI_BYTES,
					2 * TI_BYTES,
					3 * TI_BYTES,
					3 * TI_BYTES + 4,
					3 * TI_BYTES + 8,
					3 * TI_BYTES + 16};
	static const unsigned size[7] = {TI_BYTES, TI_BYTES, TI_BYTES, 4, 4, 4, 8};
	int32_t dsel, ssel, idims;
	uint32_t inner, isz[TI_DIMS], ist[TI_DIMS];
	const uint8_t *ix;

	memset(out, 0, sizeof(*out));
	*elems = 0;
	if (s->family != GPUOS_SIG_INDEX_SELECT || !layout_is(params, nparams, args, off, size, 7))
		return -EINVAL;
	memcpy(&dsel, args[3], 4);
	memcpy(&ssel, args[4], 4);
	memcpy(&inner, args[5], 4);
	memcpy(&out->limit, args[6], 8);
	out->unit = s->isel.elem;
	out->isize = s->isel.index;
	out->inner = inner;
	if (!inner ||
	    isel_info(args[0], s->isel.dst_dims, dsel, &out->dst, &out->dst_dims, out->dst_sizes,
		      out->dst_strides) != inner ||
	    isel_info(args[1], s->isel.src_dims, ssel, &out->src, &out->src_dims, out->src_sizes,
		      out->src_strides) != inner)
		return -EINVAL;
	out->dst_sel = out->dst_strides[dsel];
	out->src_sel = out->src_strides[ssel];
	/* the indices: one dimension (collapsed; a 0-dim index is one element), read through
	 * its stride, or as contiguous where the template says so */
	ix = args[2];
	memcpy(&out->idx, ix, 8);
	memcpy(isz, ix + 8, sizeof(isz));
	memcpy(ist, ix + 8 + sizeof(isz), sizeof(ist));
	memcpy(&idims, ix + 8 + 2 * sizeof(isz), 4);
	out->nidx = isz[0];
	out->istride = s->isel.idx_dims == -2 ? 1 : ist[0];
	if (idims != 1 || !out->nidx || !out->dst || !out->src || !out->idx || !out->unit ||
	    out->dst % out->unit || out->src % out->unit || !out->isize || out->idx % out->isize)
		return -EINVAL;
	/* Indexing.cu's launch: min(innerSize, 128) threads, up to ceil(innerSize / 128) blocks */
	if (block[0] != (inner < 128 ? inner : 128) || block[1] != 1 || block[2] != 1 ||
	    grid[1] != 1 || grid[2] != 1 || !grid[0] || (uint64_t)(grid[0] - 1) * block[0] >= inner)
		return -EINVAL;
	*elems = (uint64_t)out->nidx * inner;
	return 0;
}

int gpuos_sig_decode_softmax(const struct gpuos_sig *s, const struct gpuos_kparam *params,
			     unsigned nparams, void *const *args, const unsigned grid[3],
			     const unsigned block[3], struct gpuos_softmax_args *out)
{
	/* forward: dst, src, batch_size, stride, element_count, mask, head_chunk_size,
	 * is_transformer_mask; backward: gradInput, grad, output, batch_size, stride,
	 * element_count, mask */
	static const unsigned foff[8] = {0, 8, 16, 20, 24, 32, 40, 44};
	static const unsigned fsize[8] = {8, 8, 4, 4, 4, 8, 4, 1};
	static const unsigned boff[7] = {0, 8, 16, 24, 28, 32, 40};
	static const unsigned bsize[7] = {8, 8, 8, 4, 4, 4, 8};
	const bool bw = s->softmax.backward;
	const unsigned *off = bw ? boff : foff, *size = bw ? bsize : fsize, np = bw ? 7 : 8;
	const unsigned np2 = 1u << s->softmax.l2e, ws = s->softmax.ws, rows = s->softmax.rows;
	const unsigned isz = s->softmax.in_size, osz = s->softmax.out_size;
	const unsigned at = bw ? 3 : 2; /* batch_size's parameter */
	int32_t stride;
	uint64_t mask;
	uint8_t tmask = 0;

	memset(out, 0, sizeof(*out));
	if (s->family != GPUOS_SIG_SOFTMAX || !isz || !osz ||
	    !layout_is(params, nparams, args, off, size, np))
		return -EINVAL;
	memcpy(&out->dst, args[0], 8);
	memcpy(&out->src, args[1], 8);
	if (bw)
		memcpy(&out->output, args[2], 8);
	memcpy(&out->batch, args[at], 4);
	memcpy(&stride, args[at + 1], 4);
	memcpy(&out->count, args[at + 2], 4);
	memcpy(&mask, args[at + 3], 8);
	if (!bw)
		memcpy(&tmask, args[7], 1);
	/* element_count's next power of two is the template's (1 for 2^0) */
	if (out->batch <= 0 || out->count <= 0 || stride != out->count ||
	    (uint32_t)out->count > np2 || (np2 > 1 && (uint32_t)out->count <= np2 / 2) ||
	    (uint64_t)out->batch * (uint64_t)out->count > INT32_MAX || mask || tmask || !out->dst ||
	    !out->src || out->dst % osz || out->src % isz ||
	    (bw && (!out->output || out->output % isz)))
		return -EINVAL;
	/* warps of ws lanes, 128 threads a block, blocks to cover the rows (no division) */
	if (block[0] != ws || block[0] * block[1] != 128 || block[2] != 1 || grid[1] != 1 ||
	    grid[2] != 1 || !grid[0] || (uint64_t)grid[0] * rows < (uint64_t)out->batch ||
	    (uint64_t)(grid[0] - 1) * rows >= (uint64_t)out->batch)
		return -EINVAL;
	return 0;
}
