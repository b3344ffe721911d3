// SPDX-License-Identifier: MIT
/*
 * ptx_lift: one PTX .entry to a .func the persistent worker can call, on tokens (ptx_tok.c),
 * never on lines. The lifted function's ABI:
 *
 *   .visible .func gpuos_lift_<entry>(.param .b64 args,      the kernel's parameter buffer
 *       .param .b32 ctaid_x, _y, _z, .param .b32 nctaid_x, _y, _z,   the virtual block, grid
 *       .param .b32 tid_x, _y, _z, .param .b32 ntid_x, _y, _z,       the virtual thread, block
 *       .param .b32 nthreads,   threads of the block rounded to warps (barrier count)
 *       .param .b32 smem)       shared-window address of the task's shared memory
 *
 * Rewrites: ld.param of the entry's parameters reads the buffer (generic ld at the ABI
 * offset); a parameter's address is args + offset; %ctaid/%nctaid/%tid/%ntid come from the
 * arguments; exit returns; block barriers use ids 2.. with the block's thread count (the
 * worker keeps 0 and 1); static and dynamic .shared variables live in the window; device
 * functions of the module it calls come along, renamed. What it cannot rewrite safely is a
 * hazard with a named reason (ptx_lift.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_lift/ptx_lift.h"
#include "ptx_lift/ptx_tok.h"

#define MAX_FNS	  256
#define MAX_VARS  512
#define MAX_PATCH 8192

enum space { SP_OTHER, SP_SHARED, SP_GLOBAL, SP_CONST, SP_TEX };

struct fn {
	size_t name;	       /* token */
	size_t lparen;	       /* its parameter list (entry) */
	size_t lbrace, rbrace; /* body; 0 for a prototype */
	size_t start;	       /* first token of its statement */
	bool entry;
};

struct var {
	size_t name;
	int space;
	bool ext; /* extern .shared: dynamic shared memory */
	unsigned size, align;
	unsigned off; /* in the window (shared) */
	bool used;
	bool init;	  /* declared with an initialiser */
	bool carried;	  /* a constant table of CUDA's math library: copied into the lifted module */
	size_t decl;	  /* the first token of its declaration */
};

struct patch {
	size_t from, to; /* tokens [from, to) replaced */
	char *text;
};

struct lx {
	const char *b;
	size_t len;
	struct gpuos_ptx_tok *t;
	size_t n;
	struct fn fns[MAX_FNS];
	unsigned nfns;
	struct var vars[MAX_VARS];
	unsigned nvars;
	size_t version_tok, target_tok;
	struct patch *p;
	unsigned np;
	bool nomem;
	struct gpuos_lift_result *r;
};

static const char *const reason_key[] = {
#define X(id, key, text) key,
    GPUOS_LIFT_REASONS(X)
#undef X
};
static const char *const reason_text[] = {
#define X(id, key, text) text,
    GPUOS_LIFT_REASONS(X)
#undef X
};

const char *gpuos_lift_reason_key(int r)
{
	return r >= 0 && r < GPUOS_LIFT_REASON_COUNT ? reason_key[r] : "?";
}

const char *gpuos_lift_reason_text(int r)
{
	return r >= 0 && r < GPUOS_LIFT_REASON_COUNT ? reason_text[r] : "?";
}

/* ---- tokens ---- */

static bool is(const struct lx *x, size_t i, const char *s)
{
	return i < x->n && gpuos_ptx_tok_is(x->b, &x->t[i], s);
}

static bool kind(const struct lx *x, size_t i, int k)
{
	return i < x->n && x->t[i].kind == k;
}

static bool same(const struct lx *x, size_t i, size_t j)
{
	return x->t[i].len == x->t[j].len &&
	       !memcmp(x->b + x->t[i].off, x->b + x->t[j].off, x->t[i].len);
}

static bool prefix(const struct lx *x, size_t i, const char *s)
{
	size_t l = strlen(s);
	return i < x->n && x->t[i].len >= l && !memcmp(x->b + x->t[i].off, s, l);
}

/* Reject: the first reason found wins. Returns 1 (the caller's "stop"). */
static int fail(struct lx *x, int reason, size_t tok, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (x->r->reason != GPUOS_LIFT_OK)
		return 1;
	x->r->reason = reason;
	va_start(ap, fmt);
	n = vsnprintf(x->r->detail, sizeof(x->r->detail), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(x->r->detail) && tok < x->n)
		snprintf(x->r->detail + n, sizeof(x->r->detail) - n, " at line %u", x->t[tok].line);
	return 1;
}

/* Token @i from its byte @skip on, NUL-terminated in @buf (cut to fit): the module need not
 * end in a NUL, so libc's scanners read this copy. Returns its length. */
static size_t tok_str(const struct lx *x, size_t i, size_t skip, char *buf, size_t size)
{
	size_t l = x->t[i].len > skip ? x->t[i].len - skip : 0;

	l = l < size - 1 ? l : size - 1;
	memcpy(buf, x->b + x->t[i].off + skip, l);
	buf[l] = 0;
	return l;
}

static unsigned long long num(const struct lx *x, size_t i)
{
	char buf[40];
	size_t l = tok_str(x, i, 0, buf, sizeof(buf));

	if (l > 2 && buf[0] == '0' && (buf[1] == 'b' || buf[1] == 'B'))
		return strtoull(buf + 2, NULL, 2);
	return strtoull(buf, NULL, 0); /* 0x.., 0.., decimal; a U suffix stops it */
}

/* Matching close of the open bracket at i ('{', '(' or '['), or n. */
static size_t match(const struct lx *x, size_t i)
{
	char open = x->b[x->t[i].off], close = open == '{' ? '}' : open == '(' ? ')' : ']';
	int depth = 0;

	for (size_t k = i; k < x->n; k++) {
		if (x->t[k].kind != GPUOS_PTX_PUNCT)
			continue;
		char c = x->b[x->t[k].off];
		if (c == open)
			depth++;
		else if (c == close && --depth == 0)
			return k;
	}
	return x->n;
}

/* ---- the module's top level ---- */

static unsigned type_size(const struct lx *x, size_t i)
{
	static const struct {
		const char *t;
		unsigned s;
	} ty[] = {
	    {".b8", 1},	 {".u8", 1},  {".s8", 1},    {".b16", 2},    {".u16", 2},
	    {".s16", 2}, {".f16", 2}, {".bf16", 2},  {".b32", 4},    {".u32", 4},
	    {".s32", 4}, {".f32", 4}, {".f16x2", 4}, {".bf16x2", 4}, {".b64", 8},
	    {".u64", 8}, {".s64", 8}, {".f64", 8},   {".b128", 16},  {".pred", 1},
	};
	for (size_t k = 0; k < sizeof(ty) / sizeof(ty[0]); k++)
		if (is(x, i, ty[k].t))
			return ty[k].s;
	return 0;
}

/* A variable declaration in tokens [s, e): state space, type, name, array size. */
static void add_var(struct lx *x, size_t s, size_t e)
{
	struct var v = {0};
	unsigned vec = 1;

	for (size_t i = s; i < e; i++) {
		if (is(x, i, ".shared"))
			v.space = SP_SHARED;
		else if (is(x, i, ".global"))
			v.space = v.space ? v.space : SP_GLOBAL;
		else if (is(x, i, ".const"))
			v.space = SP_CONST;
		else if (is(x, i, ".extern"))
			v.ext = true;
		else if (is(x, i, ".texref") || is(x, i, ".surfref") || is(x, i, ".samplerref"))
			v.space = SP_TEX;
		else if (is(x, i, ".align") && kind(x, i + 1, GPUOS_PTX_INT))
			v.align = (unsigned)num(x, ++i);
		else if (is(x, i, ".v2"))
			vec = 2;
		else if (is(x, i, ".v4"))
			vec = 4;
		else if (type_size(x, i))
			v.size = type_size(x, i) * vec;
		else if (kind(x, i, GPUOS_PTX_IDENT) && !v.name) {
			v.name = i;
			if (is(x, i + 1, "[")) {
				if (kind(x, i + 2, GPUOS_PTX_INT))
					v.size *= (unsigned)num(x, i + 2);
				else
					v.size = 0; /* [] : extern, sized at launch */
			}
		} else if (is(x, i, "=")) {
			v.init = true;
			break; /* initialiser */
		}
	}
	if (!v.name || x->nvars == MAX_VARS)
		return;
	v.decl = s;
	if (!v.align)
		v.align = v.size && v.size < 16 ? v.size : 16;
	x->vars[x->nvars++] = v;
}

static int scan_module(struct lx *x)
{
	size_t i = 0;

	while (i < x->n && x->t[i].kind != GPUOS_PTX_EOF) {
		size_t s = i;
		bool is_fn = false, entry = false;

		if (is(x, i, ".version")) {
			x->version_tok = i + 1;
			i += 2;
			continue;
		}
		if (is(x, i, ".target")) {
			x->target_tok = i + 1;
			while (i < x->n && x->t[i].line == x->t[s].line && !is(x, i, ";") &&
			       x->t[i].kind != GPUOS_PTX_EOF)
				i++;
			continue;
		}
		if (is(x, i, ".address_size") || is(x, i, ".file") || is(x, i, ".loc")) {
			size_t line = x->t[i].line;
			while (i < x->n && x->t[i].line == line && x->t[i].kind != GPUOS_PTX_EOF)
				i++;
			continue;
		}
		/* a statement: up to ';' or a function body */
		size_t e = i, name = 0, lparen = 0;
		for (; e < x->n && x->t[e].kind != GPUOS_PTX_EOF; e++) {
			if (is(x, e, ".entry") || is(x, e, ".func")) {
				is_fn = true;
				entry = is(x, e, ".entry");
				size_t k = e + 1;
				if (!entry && is(x, k, "(")) /* return parameters */
					k = match(x, k) + 1;
				if (!kind(x, k, GPUOS_PTX_IDENT))
					return -EINVAL;
				name = k;
				lparen = is(x, k + 1, "(") ? k + 1 : 0;
				e = lparen ? match(x, lparen) : k;
				continue;
			}
			if (is(x, e, "(") || is(x, e, "["))
				e = match(x, e);
			else if (is(x, e, ";") || is(x, e, "{"))
				break;
		}
		if (e >= x->n || x->t[e].kind == GPUOS_PTX_EOF)
			return -EINVAL;
		if (is_fn) {
			struct fn f = {.name = name, .lparen = lparen, .start = s, .entry = entry};
			if (is(x, e, "{")) {
				f.lbrace = e;
				f.rbrace = match(x, e);
				if (f.rbrace >= x->n)
					return -EINVAL;
				e = f.rbrace;
			}
			if (x->nfns < MAX_FNS)
				x->fns[x->nfns++] = f;
		} else {
			add_var(x, s, e);
		}
		i = e + 1;
	}
	return 0;
}

/* The function named by token @name_tok: its definition if the module has one. */
static struct fn *find_fn(struct lx *x, size_t name_tok, bool entry)
{
	struct fn *proto = NULL;

	for (unsigned k = 0; k < x->nfns; k++) {
		if (x->fns[k].entry != entry || !same(x, x->fns[k].name, name_tok))
			continue;
		if (x->fns[k].lbrace)
			return &x->fns[k];
		proto = &x->fns[k];
	}
	return proto;
}

static struct var *find_var(struct lx *x, size_t tok)
{
	for (unsigned k = 0; k < x->nvars; k++)
		if (same(x, x->vars[k].name, tok))
			return &x->vars[k];
	return NULL;
}

/* ---- parameters ---- */

struct param {
	size_t name;
	unsigned off, size;
};

/* The entry's parameters, laid out as the ABI does: each at its alignment, in order. */
static int params(struct lx *x, const struct fn *f, struct param *ps, unsigned *np)
{
	size_t i = f->lparen + 1, end = f->lparen ? match(x, f->lparen) : 0;
	unsigned off = 0, n = 0;

	if (!f->lparen)
		return 0;
	while (i < end) {
		unsigned size = 0, align = 0, count = 1, vec = 1;
		size_t name = 0;
		for (; i < end && !is(x, i, ","); i++) {
			if (is(x, i, ".align") && kind(x, i + 1, GPUOS_PTX_INT))
				align = (unsigned)num(x, ++i);
			else if (is(x, i, ".v2"))
				vec = 2;
			else if (is(x, i, ".v4"))
				vec = 4;
			else if (type_size(x, i) && !size)
				size = type_size(x, i) * vec;
			else if (kind(x, i, GPUOS_PTX_IDENT))
				name = i;
			else if (is(x, i, "[") && kind(x, i + 1, GPUOS_PTX_INT))
				count = (unsigned)num(x, i + 1);
		}
		i++; /* ',' */
		if (!name || !size || n == 64)
			return fail(x, GPUOS_LIFT_PARSE, f->lparen, "parameter %u", n);
		if (!align)
			align = size;
		off = (off + align - 1) & ~(align - 1);
		ps[n++] = (struct param){.name = name, .off = off, .size = size * count};
		off += size * count;
	}
	*np = n;
	x->r->param_bytes = off;
	return 0;
}

static const struct param *find_param(const struct lx *x, const struct param *ps, unsigned np,
				      size_t tok)
{
	for (unsigned k = 0; k < np; k++)
		if (same(x, ps[k].name, tok))
			return &ps[k];
	return NULL;
}

/* ---- patches ---- */

static void patch(struct lx *x, size_t from, size_t to, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	if (x->np == MAX_PATCH) {
		fail(x, GPUOS_LIFT_UNSUPPORTED, from, "too many rewrites");
		return;
	}
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0) {
		x->nomem = true;
		s = NULL;
	}
	va_end(ap);
	if (s)
		x->p[x->np++] = (struct patch){from, to, s};
}

/* ---- the body ---- */

struct body {
	const struct fn *f;
	const struct param *ps;
	unsigned np;
	bool entry;
	size_t *calls; /* names of module functions it calls (tokens) */
	unsigned ncalls;
	size_t barrier_at[256];
	unsigned nbarriers;
	size_t exits[256]; /* exit/ret tokens */
	unsigned nexits;
	bool pred_exit;
	size_t last_stmt; /* first token of the last statement */
};

static const char *const special[][2] = {
    {"%ctaid.x", "%gpuos_ctaid_x"},   {"%ctaid.y", "%gpuos_ctaid_y"},
    {"%ctaid.z", "%gpuos_ctaid_z"},   {"%nctaid.x", "%gpuos_nctaid_x"},
    {"%nctaid.y", "%gpuos_nctaid_y"}, {"%nctaid.z", "%gpuos_nctaid_z"},
    {"%tid.x", "%gpuos_tid_x"},	      {"%tid.y", "%gpuos_tid_y"},
    {"%tid.z", "%gpuos_tid_z"},	      {"%ntid.x", "%gpuos_ntid_x"},
    {"%ntid.y", "%gpuos_ntid_y"},     {"%ntid.z", "%gpuos_ntid_z"},
};

/* Special registers that make no sense, or another sense, inside the worker. */
static int check_reg(struct lx *x, size_t i, bool entry)
{
	/* cooperative groups' grid sync reads the grid workspace from %envreg1/2 (inlined) */
	if (prefix(x, i, "%envreg"))
		return fail(x, GPUOS_LIFT_GRID_SYNC, i, "%.*s (grid workspace)", (int)x->t[i].len,
			    x->b + x->t[i].off);
	if (prefix(x, i, "%cluster") || prefix(x, i, "%nclusterid") ||
	    prefix(x, i, "%is_explicit_cluster"))
		return fail(x, GPUOS_LIFT_CLUSTER, i, "%.*s", (int)x->t[i].len, x->b + x->t[i].off);
	if (is(x, i, "%gridid") || is(x, i, "%ctaid") || is(x, i, "%nctaid") || is(x, i, "%tid") ||
	    is(x, i, "%ntid") || prefix(x, i, "%dynamic_smem_size") ||
	    prefix(x, i, "%total_smem_size") || prefix(x, i, "%aggr_smem_size"))
		return fail(x, GPUOS_LIFT_UNSUPPORTED, i, "%.*s", (int)x->t[i].len,
			    x->b + x->t[i].off);
	for (size_t k = 0; k < sizeof(special) / sizeof(special[0]); k++) {
		if (is(x, i, special[k][0])) {
			if (!entry)
				return fail(x, GPUOS_LIFT_UNSUPPORTED, i, "%s in a device function",
					    special[k][0]);
			patch(x, i, i + 1, "%s", special[k][1]);
			return 0;
		}
	}
	return 0;
}

/* One statement [s, e) (e is the ';'). */
static int statement(struct lx *x, struct body *bd, size_t s, size_t e)
{
	size_t op = s;

	if (is(x, op, "@")) { /* guard predicate */
		op += is(x, op + 1, "!") ? 3 : 2;
		if (is(x, op, "exit") || is(x, op, "ret"))
			bd->pred_exit = true;
	}
	if (!kind(x, op, GPUOS_PTX_IDENT)) {
		/* a declaration (.reg, .local, .pragma); a static __shared__ array of the
		 * kernel is declared in its body: it moves into the window */
		if (is(x, s, ".shared")) {
			unsigned nv = x->nvars;
			add_var(x, s, e);
			if (x->nvars == nv)
				return fail(x, GPUOS_LIFT_UNSUPPORTED, s, "a .shared declaration");
			x->vars[nv].used = true;
			patch(x, s, e + 1, "%s", "");
		}
		return 0;
	}
	bd->last_stmt = s;

	/* hazards by opcode */
	if (is(x, op, "tex") || is(x, op, "tld4") || is(x, op, "txq"))
		return fail(x, GPUOS_LIFT_TEXTURE, op, "%.*s", (int)x->t[op].len,
			    x->b + x->t[op].off);
	if (is(x, op, "suld") || is(x, op, "sust") || is(x, op, "sured") || is(x, op, "suq"))
		return fail(x, GPUOS_LIFT_SURFACE, op, "%.*s", (int)x->t[op].len,
			    x->b + x->t[op].off);
	if (is(x, op, "griddepcontrol"))
		return fail(x, GPUOS_LIFT_GRIDDEPCONTROL, op, "griddepcontrol");
	if (is(x, op, "setmaxnreg"))
		return fail(x, GPUOS_LIFT_SETMAXNREG, op, "setmaxnreg");
	if (is(x, op, "mapa") || (is(x, op, "barrier") && is(x, op + 1, ".cluster")))
		return fail(x, GPUOS_LIFT_CLUSTER, op, "cluster instruction");
	for (size_t i = op; i < e; i++) {
		if (x->t[i].kind == GPUOS_PTX_DIRECTIVE && prefix(x, i, ".shared::cluster"))
			return fail(x, GPUOS_LIFT_CLUSTER, i, ".shared::cluster");
		if (x->t[i].kind == GPUOS_PTX_REG && check_reg(x, i, bd->entry))
			return 1;
	}

	/* exits */
	if (is(x, op, "exit") || is(x, op, "ret")) {
		if (bd->nexits < 256)
			bd->exits[bd->nexits++] = op;
		if (is(x, op, "exit"))
			patch(x, op, op + 1, "ret");
		return 0;
	}

	/* block barriers: ids 0.. become 2.., the count is the block's threads */
	if ((is(x, op, "bar") || is(x, op, "barrier")) && !is(x, op + 1, ".warp")) {
		size_t a = op + 1, n_ops = 1;
		bool red = false;
		while (kind(x, a, GPUOS_PTX_DIRECTIVE)) {
			red |= is(x, a, ".red");
			a++;
		}
		for (size_t i = a; i < e; i++)
			n_ops += is(x, i, ",");
		size_t id = red ? a + 2 : a; /* bar.red: d, a{, b}, {!}c */
		bool has_count = red ? n_ops == 4 : n_ops == 2;
		if (!kind(x, id, GPUOS_PTX_INT) || num(x, id) > 13)
			return fail(x, GPUOS_LIFT_UNSUPPORTED, op,
				    "barrier id not a constant 0..13");
		if (!bd->entry)
			return fail(x, GPUOS_LIFT_UNSUPPORTED, op,
				    "a barrier in a device function");
		if (bd->nbarriers < 256)
			bd->barrier_at[bd->nbarriers++] = op;
		x->r->barriers = true;
		if (has_count)
			patch(x, id, id + 1, "%llu", num(x, id) + 2);
		else
			patch(x, id, id + 1, "%llu, %%gpuos_nthreads", num(x, id) + 2);
		return 0;
	}

	/* calls */
	if (is(x, op, "call")) {
		size_t i = op + 1;
		while (kind(x, i, GPUOS_PTX_DIRECTIVE))
			i++;
		if (is(x, i, "("))
			i = match(x, i) + 2; /* (retvals), */
		if (!kind(x, i, GPUOS_PTX_IDENT))
			return fail(x, GPUOS_LIFT_UNSUPPORTED, op, "an indirect call");
		const struct fn *callee = find_fn(x, i, false);
		if (!callee || !callee->lbrace) {
			if (prefix(x, i, "cudaCG"))
				return fail(x, GPUOS_LIFT_GRID_SYNC, i, "%.*s", (int)x->t[i].len,
					    x->b + x->t[i].off);
			if (prefix(x, i, "__cudaCDP") || prefix(x, i, "cudaLaunchDevice") ||
			    prefix(x, i, "cudaGetParameterBuffer") || prefix(x, i, "cudaStream") ||
			    prefix(x, i, "cudaDeviceSynchronize"))
				return fail(x, GPUOS_LIFT_DYNAMIC_PARALLELISM, i, "%.*s",
					    (int)x->t[i].len, x->b + x->t[i].off);
			return fail(x, GPUOS_LIFT_EXTERN_CALL, i, "call to %.*s", (int)x->t[i].len,
				    x->b + x->t[i].off);
		}
		bool seen = false;
		for (unsigned k = 0; k < bd->ncalls; k++)
			seen |= same(x, bd->calls[k], i);
		if (!seen && bd->ncalls < 64)
			bd->calls[bd->ncalls++] = i;
		patch(x, i, i + 1, "gpuos_lift_%.*s", (int)x->t[i].len, x->b + x->t[i].off);
		return 0;
	}

	/* parameters of the entry */
	bool ldparam = (is(x, op, "ld") && is(x, op + 1, ".param"));
	if (ldparam && bd->entry) {
		/* through a register: the address of a parameter taken before (mov below) is
		 * now a generic address into the buffer. Call sequences read their own .param
		 * symbols, never through a register. */
		for (size_t i = op + 2; i < e; i++)
			if (is(x, i, "[") && kind(x, i + 1, GPUOS_PTX_REG)) {
				patch(x, op + 1, op + 2, "%s", "");
				break;
			}
	}
	if (is(x, op, "cvta") && is(x, op + 1, ".param")) {
		/* the address is already generic: cvta.param.u64 d, a -> mov.b64 d, a */
		size_t d = op + 2;
		while (kind(x, d, GPUOS_PTX_DIRECTIVE))
			d++;
		patch(x, op, d, "mov.b64");
		return 0;
	}
	for (size_t i = op + 1; i < e; i++) {
		if (x->t[i].kind != GPUOS_PTX_IDENT)
			continue;
		const struct param *p = bd->entry ? find_param(x, bd->ps, bd->np, i) : NULL;
		struct var *v = p ? NULL : find_var(x, i);
		if (p) {
			long long add = 0;
			size_t last = i;
			if (is(x, i + 1, "+") && kind(x, i + 2, GPUOS_PTX_INT)) {
				add = (long long)num(x, i + 2);
				last = i + 2;
			}
			if (is(x, i - 1, "[") && ldparam) {
				patch(x, op + 1, op + 2, "%s", ""); /* ld.param -> ld (generic) */
				patch(x, i, last + 1, "%%gpuos_args+%lld", (long long)p->off + add);
			} else if (is(x, op, "mov") && !is(x, i - 1, "[")) {
				/* mov.b64 d, param -> add.s64 d, args, offset */
				size_t d = op + 1;
				while (kind(x, d, GPUOS_PTX_DIRECTIVE))
					d++;
				patch(x, op, d, "add.s64");
				patch(x, i, last + 1, "%%gpuos_args, %lld",
				      (long long)p->off + add);
			} else {
				return fail(x, GPUOS_LIFT_UNSUPPORTED, i,
					    "a parameter used by %.*s", (int)x->t[op].len,
					    x->b + x->t[op].off);
			}
			i = last;
			continue;
		}
		if (!v)
			continue;
		/* CUDA's math functions read constant tables (sinf's __cudart_i2opi_f): read-only,
		 * initialised, the same in every module; a copy of its own serves the lifted one */
		if ((v->space == SP_GLOBAL || v->space == SP_CONST) && v->init &&
		    prefix(x, v->name, "__cudart_")) {
			v->carried = true;
			continue;
		}
		if (v->space == SP_GLOBAL)
			return fail(x, GPUOS_LIFT_MODULE_GLOBAL, i, "%.*s", (int)x->t[i].len,
				    x->b + x->t[i].off);
		if (v->space == SP_CONST)
			return fail(x, GPUOS_LIFT_MODULE_CONST, i, "%.*s", (int)x->t[i].len,
				    x->b + x->t[i].off);
		if (v->space == SP_TEX)
			return fail(x, GPUOS_LIFT_TEXTURE, i, "%.*s", (int)x->t[i].len,
				    x->b + x->t[i].off);
		if (v->space != SP_SHARED)
			continue;
		v->used = true;
		long long add = 0;
		size_t last = i;
		if (is(x, i + 1, "+") && kind(x, i + 2, GPUOS_PTX_INT)) {
			add = (long long)num(x, i + 2);
			last = i + 2;
		}
		/* placeholder: the offset is known once every used variable is placed */
		if (is(x, i - 1, "[")) {
			patch(x, i, last + 1, "\x01%u:%lld", (unsigned)(v - x->vars), add);
		} else if (is(x, op, "mov") || is(x, op, "cvta")) {
			/* mov.u32 d, var -> add.u32 d, smem, off (a window address) */
			bool wide = false;
			size_t d = op + 1;
			for (; kind(x, d, GPUOS_PTX_DIRECTIVE); d++)
				wide |= is(x, d, ".u64") || is(x, d, ".b64") || is(x, d, ".s64");
			if (is(x, op, "cvta")) /* cvta.shared.u64 d, var: generic address */
				return fail(x, GPUOS_LIFT_UNSUPPORTED, i,
					    "cvta of a shared variable");
			patch(x, op, d, wide ? "add.s64" : "add.s32");
			patch(x, i, last + 1, "%s, \x01%u:%lld",
			      wide ? "%gpuos_smem64" : "%gpuos_smem", (unsigned)(v - x->vars), add);
		} else {
			return fail(x, GPUOS_LIFT_UNSUPPORTED, i, "a shared variable used by %.*s",
				    (int)x->t[op].len, x->b + x->t[op].off);
		}
		i = last;
	}
	return 0;
}

/* Walk a body's statements; nested { } scopes (call sequences) included. */
static int walk(struct lx *x, struct body *bd)
{
	size_t i = bd->f->lbrace + 1, end = bd->f->rbrace;

	while (i < end && x->r->reason == GPUOS_LIFT_OK) {
		if (is(x, i, "{") || is(x, i, "}")) {
			i++;
			continue;
		}
		if (kind(x, i, GPUOS_PTX_IDENT) && is(x, i + 1, ":")) { /* label */
			i += 2;
			continue;
		}
		size_t e = i;
		while (e < end && !is(x, e, ";"))
			e++;
		if (e >= end)
			return fail(x, GPUOS_LIFT_PARSE, i, "statement without ';'");
		if (statement(x, bd, i, e))
			return 1;
		i = e + 1;
	}
	return x->r->reason != GPUOS_LIFT_OK;
}

/*
 * A barrier some threads may never reach because others have left: any exit before the end,
 * a predicated exit, or a forward branch over a barrier (the pattern of an early return).
 * Conservative: a kernel this rejects may be fine, never the other way round.
 */
static int barrier_hazard(struct lx *x, const struct body *bd)
{
	if (!bd->nbarriers)
		return 0;
	for (unsigned k = 0; k < bd->nexits; k++)
		if (bd->pred_exit || bd->exits[k] < bd->last_stmt)
			return fail(x, GPUOS_LIFT_EXIT_BEFORE_BARRIER, bd->exits[k],
				    "an exit with barriers in the kernel");
	for (size_t i = bd->f->lbrace; i < bd->f->rbrace; i++) {
		if (!is(x, i, "bra"))
			continue;
		size_t target = i + 1;
		while (kind(x, target, GPUOS_PTX_DIRECTIVE))
			target++;
		for (size_t l = i; l < bd->f->rbrace; l++) {
			if (!(kind(x, l, GPUOS_PTX_IDENT) && is(x, l + 1, ":") &&
			      same(x, l, target)))
				continue;
			for (unsigned k = 0; k < bd->nbarriers; k++)
				if (bd->barrier_at[k] > i && bd->barrier_at[k] < l)
					return fail(x, GPUOS_LIFT_EXIT_BEFORE_BARRIER, i,
						    "a branch over a barrier");
		}
	}
	return 0;
}

/* ---- output ---- */

struct out {
	char *s;
	size_t len, cap;
	bool nomem;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		size_t cap = (o->cap ? 2 * o->cap : 4096) + n;
		char *p = realloc(o->s, cap);
		if (!p) {
			o->nomem = true;
			return;
		}
		o->s = p;
		o->cap = cap;
	}
	memcpy(o->s + o->len, s, n);
	o->len += n;
	o->s[o->len] = 0;
}

static void putf(struct out *o, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static int cmp_patch(const void *a, const void *b)
{
	const struct patch *p = a, *q = b;
	return p->from < q->from ? -1 : p->from > q->from;
}

/* The source text of tokens [from, to) with the patches applied (placeholders resolved). */
static void emit(struct lx *x, struct out *o, size_t from, size_t to)
{
	size_t pos = x->t[from].off;
	unsigned k = 0;

	if (from >= to) /* an empty body */
		return;
	while (k < x->np && x->p[k].from < from)
		k++;
	for (size_t i = from; i < to;) {
		if (k < x->np && x->p[k].from == i) {
			if (x->p[k].to > to) { /* malformed text: an instruction past the body */
				fail(x, GPUOS_LIFT_PARSE, i, "an instruction runs past its function");
				return;
			}
			put(o, x->b + pos, x->t[i].off - pos);
			for (const char *c = x->p[k].text; *c;) {
				if (*c == '\x01') { /* \1VAR:ADD -> window offset */
					char *endp;
					unsigned v = (unsigned)strtoul(c + 1, &endp, 10);
					long long add = strtoll(endp + 1, &endp, 10);
					bool in_brackets = o->len && o->s[o->len - 1] == '[';
					if (in_brackets)
						putf(o, "%%gpuos_smem+%u",
						     (unsigned)(x->vars[v].off + add));
					else
						putf(o, "%u", (unsigned)(x->vars[v].off + add));
					c = endp;
				} else {
					put(o, c, 1);
					c++;
				}
			}
			size_t last = x->p[k].to;
			/* several patches may start at one token (ld.param -> ld): take them all */
			while (k + 1 < x->np && x->p[k + 1].from == i)
				k++;
			k++;
			i = last;
			pos = x->t[i - 1].off + x->t[i - 1].len;
			continue;
		}
		i++;
	}
	put(o, x->b + pos, x->t[to - 1].off + x->t[to - 1].len - pos);
}

/* ---- the whole lift ---- */

static void lift_fn(struct lx *x, struct out *o, const struct fn *f, bool entry)
{
	if (entry) {
		putf(o, ".visible .func %s(.param .b64 gpuos_p_args", x->r->func);
		static const char *const v[] = {
		    "ctaid_x", "ctaid_y", "ctaid_z", "nctaid_x", "nctaid_y", "nctaid_z", "tid_x",
		    "tid_y",   "tid_z",	  "ntid_x",  "ntid_y",	 "ntid_z",   "nthreads", "smem"};
		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
			putf(o, ", .param .b32 gpuos_p_%s", v[k]);
		putf(o, ")\n{\n\t.reg .b64 %%gpuos_args, %%gpuos_smem64;\n\t.reg .b32 ");
		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
			putf(o, "%s%%gpuos_%s", k ? ", " : "", v[k]);
		putf(o, ";\n\tld.param.b64 %%gpuos_args, [gpuos_p_args];\n");
		for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
			putf(o, "\tld.param.b32 %%gpuos_%s, [gpuos_p_%s];\n", v[k], v[k]);
		putf(o, "\tcvt.u64.u32 %%gpuos_smem64, %%gpuos_smem;\n");
		emit(x, o, f->lbrace + 1, f->rbrace);
		putf(o, "\n}\n");
		return;
	}
	/* a device function: its own text, renamed (patches did the calls inside it) */
	emit(x, o, f->start, f->name);
	putf(o, "gpuos_lift_%.*s", (int)x->t[f->name].len, x->b + x->t[f->name].off);
	emit(x, o, f->name + 1, f->rbrace + 1);
	putf(o, "\n");
}

int gpuos_lift(const char *buf, size_t len, const char *entry, const struct gpuos_lift_opts *o,
	       struct gpuos_lift_result *r)
{
	struct lx *x = calloc(1, sizeof(*x));
	struct param ps[64];
	unsigned np = 0, max_threads, window;
	struct fn *order[MAX_FNS];
	unsigned norder = 0;
	struct out out = {0};
	int rc = 1;

	memset(r, 0, sizeof(*r));
	if (!x)
		return -ENOMEM;
	max_threads = o && o->max_threads ? o->max_threads : 480;
	window = o && o->smem_window ? o->smem_window : GPUOS_LIFT_WINDOW;
	x->r = r;
	x->b = buf;
	x->len = len;
	x->p = calloc(MAX_PATCH, sizeof(*x->p));
	if (!x->p) {
		free(x);
		return -ENOMEM;
	}
	snprintf(r->func, sizeof(r->func), "gpuos_lift_%s", entry);
	if (gpuos_ptx_tokenize(buf, len, &x->t, &x->n, NULL) || scan_module(x)) {
		fail(x, GPUOS_LIFT_PARSE, 0, "the module does not parse");
		goto out;
	}
	if (x->version_tok && x->t[x->version_tok].len < 8) {
		unsigned maj = 0, min = 0;
		char v[8];

		tok_str(x, x->version_tok, 0, v, sizeof(v));
		sscanf(v, "%u.%u", &maj, &min);
		r->ptx_version = maj * 10 + min;
	}
	if (x->target_tok && prefix(x, x->target_tok, "sm_")) {
		char t[16];

		tok_str(x, x->target_tok, 3, t, sizeof(t));
		r->target_sm = (unsigned)strtoul(t, NULL, 10);
	}

	/* the entry */
	struct fn *f = NULL;
	for (unsigned k = 0; k < x->nfns && !f; k++)
		if (x->fns[k].entry && x->fns[k].lbrace && is(x, x->fns[k].name, entry))
			f = &x->fns[k];
	if (!f) {
		fail(x, GPUOS_LIFT_NO_ENTRY, 0, "no .entry %s", entry);
		goto out;
	}
	if (o && o->sm && r->target_sm > o->sm) {
		fail(x, GPUOS_LIFT_TARGET_TOO_NEW, x->target_tok, "sm_%u PTX for an sm_%u device",
		     r->target_sm, o->sm);
		goto out;
	}
	if (params(x, f, ps, &np))
		goto out;
	r->nparams = np;
	for (unsigned k = 0; k < np; k++)
		r->params[k] = (struct gpuos_kparam){k, ps[k].off, ps[k].size};
	if (r->param_bytes > 4096) {
		fail(x, GPUOS_LIFT_PARAMS_TOO_LARGE, f->lparen, "%u bytes of parameters",
		     r->param_bytes);
		goto out;
	}
	/* performance directives between the parameters and the body */
	for (size_t i = match(x, f->lparen) + 1; i < f->lbrace; i++) {
		unsigned *dst = is(x, i, ".reqntid")   ? r->reqntid
				: is(x, i, ".maxntid") ? r->maxntid
						       : NULL;
		/* a cluster of one block is a block (__block_size__ emits those directives
		 * with .reqntid); anything bigger needs the cluster hardware */
		if (is(x, i, ".reqnctapercluster") || is(x, i, ".maxclusterrank")) {
			unsigned long long prod = 1;
			for (size_t v = i + 1; kind(x, v, GPUOS_PTX_INT); v += 2) {
				prod *= num(x, v);
				if (!is(x, v + 1, ","))
					break;
			}
			if (prod > 1) {
				fail(x, GPUOS_LIFT_CLUSTER, i, "%.*s", (int)x->t[i].len,
				     x->b + x->t[i].off);
				goto out;
			}
		}
		if (is(x, i, ".explicitcluster")) {
			fail(x, GPUOS_LIFT_CLUSTER, i, ".explicitcluster");
			goto out;
		}
		for (unsigned d = 0; dst && d < 3; d++) {
			dst[d] = 1;
			size_t v = i + 1 + 2 * d;
			if (kind(x, v, GPUOS_PTX_INT) && (d == 0 || is(x, v - 1, ",")))
				dst[d] = (unsigned)num(x, v);
			else
				break;
		}
	}
	if (r->reqntid[0] &&
	    (unsigned long long)r->reqntid[0] * r->reqntid[1] * r->reqntid[2] > max_threads) {
		fail(x, GPUOS_LIFT_BLOCK_TOO_LARGE, f->lbrace, ".reqntid %u,%u,%u", r->reqntid[0],
		     r->reqntid[1], r->reqntid[2]);
		goto out;
	}

	/* the entry's body, then every device function it reaches */
	size_t calls[64];
	struct body bd = {.f = f, .ps = ps, .np = np, .entry = true, .calls = calls};
	if (walk(x, &bd) || barrier_hazard(x, &bd))
		goto out;
	order[norder++] = f;
	for (unsigned c = 0; c < bd.ncalls; c++) {
		struct fn *g = find_fn(x, bd.calls[c], false);
		bool done = false;
		for (unsigned k = 0; k < norder; k++)
			done |= order[k] == g;
		if (done || norder == MAX_FNS)
			continue;
		order[norder++] = g;
		struct body gb = {.f = g, .calls = calls, .ncalls = bd.ncalls};
		gb.calls = bd.calls;
		if (walk(x, &gb))
			goto out;
		bd.ncalls = gb.ncalls; /* callees of callees, appended */
	}

	/* place the shared variables it uses in the window: static first, then dynamic */
	unsigned off = 0;
	for (unsigned k = 0; k < x->nvars; k++) {
		struct var *v = &x->vars[k];
		if (v->space != SP_SHARED || !v->used || v->ext)
			continue;
		off = (off + v->align - 1) & ~(v->align - 1);
		v->off = off;
		off += v->size;
	}
	r->static_smem = off;
	off = (off + 15) & ~15u;
	for (unsigned k = 0; k < x->nvars; k++) {
		struct var *v = &x->vars[k];
		if (v->space == SP_SHARED && v->used && v->ext) {
			v->off = off;
			r->dynamic_smem = true;
		}
	}
	if (r->static_smem > window) {
		fail(x, GPUOS_LIFT_SHARED_TOO_LARGE, f->lbrace, "%u bytes of static shared memory",
		     r->static_smem);
		goto out;
	}
	if (x->nomem) {
		rc = -ENOMEM;
		goto out;
	}

	/* the module */
	qsort(x->p, x->np, sizeof(*x->p), cmp_patch);
	if (x->version_tok)
		putf(&out, ".version %.*s\n", (int)x->t[x->version_tok].len,
		     x->b + x->t[x->version_tok].off);
	if (x->target_tok)
		putf(&out, ".target %.*s\n", (int)x->t[x->target_tok].len,
		     x->b + x->t[x->target_tok].off);
	putf(&out, ".address_size 64\n\n");
	for (unsigned k = 0; k < x->nvars; k++) {
		size_t d = x->vars[k].decl, e = d;
		int depth = 0;

		if (!x->vars[k].carried)
			continue;
		/* the declaration through its ';' (the initialiser's braces hold none) */
		while (e < x->n && x->t[e].kind != GPUOS_PTX_EOF && !(depth == 0 && is(x, e, ";"))) {
			depth += is(x, e, "{") - is(x, e, "}");
			e++;
		}
		if (e >= x->n || !is(x, e, ";")) {
			fail(x, GPUOS_LIFT_PARSE, d, "an unterminated declaration");
			goto out;
		}
		putf(&out, "%.*s\n\n", (int)(x->t[e].off + 1 - x->t[d].off), x->b + x->t[d].off);
	}
	/* prototypes first: the functions may call each other in any order */
	for (unsigned k = 1; k < norder; k++) {
		emit(x, &out, order[k]->start, order[k]->name);
		putf(&out, "gpuos_lift_%.*s", (int)x->t[order[k]->name].len,
		     x->b + x->t[order[k]->name].off);
		emit(x, &out, order[k]->name + 1, order[k]->lbrace);
		putf(&out, ";\n");
	}
	for (unsigned k = 1; k < norder; k++)
		lift_fn(x, &out, order[k], false);
	lift_fn(x, &out, f, true);
	if (x->r->reason != GPUOS_LIFT_OK) {
		rc = 1;
		goto out;
	}
	if (out.nomem) {
		rc = -ENOMEM;
		goto out;
	}
	r->ptx = out.s;
	r->ptx_len = out.len;
	out.s = NULL;
	rc = 0;
out:
	if (rc == 1 && r->reason == GPUOS_LIFT_OK)
		fail(x, GPUOS_LIFT_PARSE, 0, "internal");
	for (unsigned k = 0; k < x->np; k++)
		free(x->p[k].text);
	free(x->p);
	free(x->t);
	free(x);
	free(out.s);
	return rc;
}

void gpuos_lift_free(struct gpuos_lift_result *r)
{
	if (!r)
		return;
	free(r->ptx);
	r->ptx = NULL;
	r->ptx_len = 0;
}

int gpuos_lift_entries(const char *buf, size_t len, void (*fn)(const char *name, void *arg),
		       void *arg)
{
	struct gpuos_lift_result r;
	struct lx *x = calloc(1, sizeof(*x));
	int rc = 0;

	if (!x)
		return -ENOMEM;
	x->r = &r;
	memset(&r, 0, sizeof(r));
	x->b = buf;
	x->len = len;
	if (gpuos_ptx_tokenize(buf, len, &x->t, &x->n, NULL) || scan_module(x)) {
		rc = -EINVAL;
		goto out;
	}
	for (unsigned k = 0; k < x->nfns; k++) {
		char name[512];
		const struct gpuos_ptx_tok *t = &x->t[x->fns[k].name];
		if (!x->fns[k].entry || !x->fns[k].lbrace || t->len >= sizeof(name))
			continue;
		memcpy(name, buf + t->off, t->len);
		name[t->len] = 0;
		fn(name, arg);
	}
out:
	free(x->t);
	free(x);
	return rc;
}
