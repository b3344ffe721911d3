// SPDX-License-Identifier: MIT
/*
 * ptx_lift: the PTX tokenizer on hand-written snippets (token streams, lines, errors), on
 * every prefix of a small kernel, and on the whole PTX nvcc writes for tests/fixtures/kernels.cu.
 * Inputs are copied into buffers of their exact size, without a NUL, so that ASan sees any
 * read past len.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ptx_lift/ptx_tok.h"
#include "tests/fixtures/expect.h"

/* One letter per kind, in enum order, for the rendered streams. */
static const char kind_ch[] = "EIDRNFSP";

static char *exact_copy(const char *src, size_t len)
{
	char *buf = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, src, len);
	return buf;
}

/*
 * What is left of PTX text without whitespace and comments, strings kept whole: what the
 * token texts, put end to end, must spell. Written apart from the tokenizer on purpose.
 */
static char *strip_blank(const char *buf, size_t len, size_t *out_len)
{
	char *out = malloc(len + 1);
	size_t i = 0, o = 0;

	ck_assert_ptr_nonnull(out);
	while (i < len) {
		char c = buf[i];

		if (c == '"') {
			out[o++] = buf[i++];
			while (i < len && buf[i] != '"') {
				if (buf[i] == '\\' && i + 1 < len &&
				    (buf[i + 1] == '"' || buf[i + 1] == '\\'))
					out[o++] = buf[i++];
				out[o++] = buf[i++];
			}
			if (i < len)
				out[o++] = buf[i++];
		} else if (c == '/' && i + 1 < len && buf[i + 1] == '/') {
			while (i < len && buf[i] != '\n')
				i++;
		} else if (c == '/' && i + 1 < len && buf[i + 1] == '*') {
			for (i += 2;
			     i < len && !(buf[i] == '*' && i + 1 < len && buf[i + 1] == '/');)
				i++;
			i += 2;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' ||
			   c == '\f') {
			i++;
		} else {
			out[o++] = buf[i++];
		}
	}
	*out_len = o;
	return out;
}

/*
 * Invariants of any successful result: non-empty tokens in order inside the buffer, lines
 * that count the '\n's before each token, one EOF at the end, and the token texts spelling
 * every character that is not whitespace or comment.
 */
static void check_stream(const char *buf, size_t len, const struct gpuos_ptx_tok *t, size_t n)
{
	size_t prev_end = 0, line = 1, at = 0, slen, o = 0;
	char *stripped = strip_blank(buf, len, &slen);

	ck_assert_uint_ge(n, 1);
	for (size_t i = 0; i < n; i++) {
		ck_assert_uint_ge(t[i].off, prev_end);
		ck_assert_uint_le((size_t)t[i].off + t[i].len, len);
		for (; at < t[i].off; at++)
			line += buf[at] == '\n';
		ck_assert_uint_eq(t[i].line, line);
		if (i + 1 == n)
			break;
		ck_assert_uint_ne(t[i].kind, GPUOS_PTX_EOF);
		ck_assert_uint_gt(t[i].len, 0);
		ck_assert_uint_le(o + t[i].len, slen);
		ck_assert(!memcmp(stripped + o, buf + t[i].off, t[i].len));
		o += t[i].len;
		prev_end = t[i].off + t[i].len;
	}
	ck_assert_uint_eq(o, slen);
	ck_assert_uint_eq(t[n - 1].kind, GPUOS_PTX_EOF);
	ck_assert_uint_eq(t[n - 1].off, len);
	ck_assert_uint_eq(t[n - 1].len, 0);
	free(stripped);
}

/* Tokenize src (exact-size copy) and check the invariants; the copy is returned in *copy. */
static void lex(const char *src, size_t len, char **copy, struct gpuos_ptx_tok **t, size_t *n)
{
	unsigned err_line = 0;
	int ret;

	*copy = exact_copy(src, len);
	ret = gpuos_ptx_tokenize(*copy, len, t, n, &err_line);
	ck_assert_msg(ret == 0, "tokenize failed: %d at line %u", ret, err_line);
	check_stream(*copy, len, *t, *n);
}

/* The stream as "K:text" words (EOF left out), compared whole for readable failures. */
static void expect(const char *src, const char *want)
{
	struct gpuos_ptx_tok *t;
	size_t n, o = 0, cap = 1;
	char *copy, *got;

	lex(src, strlen(src), &copy, &t, &n);
	for (size_t i = 0; i + 1 < n; i++)
		cap += t[i].len + 3;
	got = malloc(cap);
	ck_assert_ptr_nonnull(got);
	for (size_t i = 0; i + 1 < n; i++) {
		ck_assert_uint_lt(t[i].kind, sizeof(kind_ch) - 1);
		o += sprintf(got + o, "%s%c:%.*s", i ? " " : "", kind_ch[t[i].kind], (int)t[i].len,
			     copy + t[i].off);
	}
	got[o] = 0;
	ck_assert_str_eq(got, want);
	free(got);
	free(t);
	free(copy);
}

START_TEST(test_entry_header)
{
	static const char src[] = ".visible .entry _Z3fooPfS_i(\n"
				  "\t.param .u64 _Z3fooPfS_i_param_0,\n"
				  "\t.param .align 8 .b8 _Z3fooPfS_i_param_1[16]\n"
				  ")\n"
				  ".maxntid 256, 1, 1\n"
				  "{\n";
	struct gpuos_ptx_tok *t;
	size_t n;
	char *copy;

	expect(src, "D:.visible D:.entry I:_Z3fooPfS_i P:( "
		    "D:.param D:.u64 I:_Z3fooPfS_i_param_0 P:, "
		    "D:.param D:.align N:8 D:.b8 I:_Z3fooPfS_i_param_1 P:[ N:16 P:] "
		    "P:) D:.maxntid N:256 P:, N:1 P:, N:1 P:{");
	lex(src, strlen(src), &copy, &t, &n);
	ck_assert_uint_eq(n, 25);
	ck_assert(gpuos_ptx_tok_is(copy, &t[1], ".entry"));
	ck_assert_uint_eq(t[1].line, 1);
	ck_assert(gpuos_ptx_tok_is(copy, &t[12], "_Z3fooPfS_i_param_1"));
	ck_assert_uint_eq(t[12].line, 3);
	ck_assert(gpuos_ptx_tok_is(copy, &t[16], ")"));
	ck_assert_uint_eq(t[16].line, 4);
	ck_assert(gpuos_ptx_tok_is(copy, &t[23], "{"));
	ck_assert_uint_eq(t[23].line, 6);
	ck_assert_uint_eq(t[24].line, 7);
	free(t);
	free(copy);
}
END_TEST

START_TEST(test_instructions)
{
	expect("ld.param.u64 %rd1, [k_param_0];",
	       "I:ld D:.param D:.u64 R:%rd1 P:, P:[ I:k_param_0 P:] P:;");
	expect("mov.u32 %r1, %ctaid.x;", "I:mov D:.u32 R:%r1 P:, R:%ctaid.x P:;");
	expect("@%p1 bra $L__BB0_2;", "P:@ R:%p1 I:bra I:$L__BB0_2 P:;");
	expect("@!%p2 ret;", "P:@ P:! R:%p2 I:ret P:;");
	expect("ld.global.v4.f32 {%f1, %f2, %f3, %f4}, [%rd2+16];",
	       "I:ld D:.global D:.v4 D:.f32 P:{ R:%f1 P:, R:%f2 P:, R:%f3 P:, R:%f4 P:} P:, "
	       "P:[ R:%rd2 P:+ N:16 P:] P:;");
	expect(".reg .b32 %r<10>;", "D:.reg D:.b32 R:%r P:< N:10 P:> P:;");
	expect("atom.global.add.u32 %r3, [%rd4], 1;",
	       "I:atom D:.global D:.add D:.u32 R:%r3 P:, P:[ R:%rd4 P:] P:, N:1 P:;");
	expect("$L__BB0_1:\n\tret;", "I:$L__BB0_1 P:: I:ret P:;");
	expect("setp.lt.s32 %p1|%p2, %r1, -4;",
	       "I:setp D:.lt D:.s32 R:%p1 P:| R:%p2 P:, R:%r1 P:, P:- N:4 P:;");
	expect("mov.u64 %rd1, __cudart_x;ld.shared.f32 %f1,[_ZZ7fx_smemE4tile+1020];",
	       "I:mov D:.u64 R:%rd1 P:, I:__cudart_x P:; I:ld D:.shared D:.f32 R:%f1 P:, "
	       "P:[ I:_ZZ7fx_smemE4tile P:+ N:1020 P:] P:;");
	expect("{ .reg .b64 %tmp; }", "P:{ D:.reg D:.b64 R:%tmp P:; P:}");
}
END_TEST

START_TEST(test_special_regs)
{
	expect("mov.u32 %r2, %tid.y; %nctaid.z %ntid.w %laneid %clock64 %envreg3",
	       "I:mov D:.u32 R:%r2 P:, R:%tid.y P:; R:%nctaid.z R:%ntid.w R:%laneid R:%clock64 "
	       "R:%envreg3");
	/* One component only, and only when nothing word-like follows it. */
	expect("%r1.xy %ctaid.x.y %tid.x1 %tid.x",
	       "R:%r1 D:.xy R:%ctaid.x D:.y R:%tid D:.x1 R:%tid.x");
	/* Modulo needs a space before a digit: to ptxas too, %3 is a name. */
	expect("%rd<12> % %r 10 % 3 10%3", "R:%rd P:< N:12 P:> P:% R:%r N:10 P:% N:3 N:10 R:%3");
	expect("%SP %SPL %_x %$y", "R:%SP R:%SPL R:%_x R:%$y");
}
END_TEST

START_TEST(test_directives)
{
	expect("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%r1], [%rd1], "
	       "16, [%r2];",
	       "I:cp D:.async D:.bulk D:.shared::cluster D:.global "
	       "D:.mbarrier::complete_tx::bytes P:[ R:%r1 P:] P:, P:[ R:%rd1 P:] P:, N:16 P:, "
	       "P:[ R:%r2 P:] P:;");
	expect("ld.global.L2::128B.v2.f16x2", "I:ld D:.global D:.L2::128B D:.v2 D:.f16x2");
	expect("atom.release.gpu.global.add.u32",
	       "I:atom D:.release D:.gpu D:.global D:.add D:.u32");
	expect("tex.1d.v4.s32.f32", "I:tex D:.1d D:.v4 D:.s32 D:.f32");
	expect("tcgen05.ld.sync.aligned.16x64b.x1",
	       "I:tcgen05 D:.ld D:.sync D:.aligned D:.16x64b D:.x1");
	/* '::' only joins when a word follows it. */
	expect(".shared:: x .shared::cta; .a::b:c", "D:.shared P:: P:: I:x D:.shared::cta P:; "
						    "D:.a::b P:: I:c");
	/* The sink operand. */
	expect("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%r1], 4;",
	       "I:mbarrier D:.arrive D:.expect_tx D:.shared::cta D:.b64 I:_ P:, P:[ R:%r1 P:] P:, "
	       "N:4 P:;");
	expect(".version 9.0\n.target sm_90, debug\n.address_size 64",
	       "D:.version F:9.0 D:.target I:sm_90 P:, I:debug D:.address_size N:64");
}
END_TEST

START_TEST(test_numbers)
{
	expect("42 0x1F 017 0b101 4U 0 0XffU 0B1 00 -1 -0x80000000",
	       "N:42 N:0x1F N:017 N:0b101 N:4U N:0 N:0XffU N:0B1 N:00 P:- N:1 P:- N:0x80000000");
	expect("0f3F800000 0F7FC00000 0fabcdef01 0d3FF0000000000000 0D7FF8000000000000",
	       "F:0f3F800000 F:0F7FC00000 F:0fabcdef01 F:0d3FF0000000000000 "
	       "F:0D7FF8000000000000");
	expect("1.5 2e-3 1E+10 3. 0.25 5.e2 0e1 09.5", "F:1.5 F:2e-3 F:1E+10 F:3. F:0.25 F:5.e2 "
						       "F:0e1 F:09.5");
	/* ptxas reads these as numbers too; .1d stays a directive (test_directives). */
	expect("mov.f32 %f1, .5; .25e3", "I:mov D:.f32 R:%f1 P:, F:.5 P:; F:.25e3");
	expect("[%rd1+-4]", "P:[ R:%rd1 P:+ P:- N:4 P:]");
}
END_TEST

START_TEST(test_comments)
{
	expect("a // b /* c\nd /* e // f\n */ g/**/h /***/ i // end", "I:a I:d I:g I:h I:i");
	expect("x/ a/ /b c*/", "I:x P:/ I:a P:/ P:/ I:b I:c P:* P:/");
	expect("//\n//", "");
	expect("/* a\n\n*/", "");
	expect("a//", "I:a");
	expect("\t// .globl\tfx_elementwise\n.visible", "D:.visible");
}
END_TEST

START_TEST(test_strings)
{
	expect(".file 1 \"a.cu\"", "D:.file N:1 S:\"a.cu\"");
	expect(".file 2 \"/usr/x y.h\", 1700000000, 123",
	       "D:.file N:2 S:\"/usr/x y.h\" P:, N:1700000000 P:, N:123");
	expect(".pragma \"nounroll\";", "D:.pragma S:\"nounroll\" P:;");
	expect("\"a\\\"b\" \"a\\\\\" \"//x\" \"/*\" \"\"",
	       "S:\"a\\\"b\" S:\"a\\\\\" S:\"//x\" S:\"/*\" S:\"\"");
	/* Any other backslash is itself. */
	expect("\"C:\\dir\\a.cu\" \"a\\nb\"", "S:\"C:\\dir\\a.cu\" S:\"a\\nb\"");
	expect("\"a\"\"b\"x", "S:\"a\" S:\"b\" I:x");
}
END_TEST

START_TEST(test_lines)
{
	static const char src[] = "a\r\nb\n\n/*\n\n*/c // x\n\"s\"\r\n  d";
	struct gpuos_ptx_tok *t;
	size_t n;
	char *copy;

	lex(src, strlen(src), &copy, &t, &n);
	ck_assert_uint_eq(n, 6);
	ck_assert_uint_eq(t[0].line, 1);
	ck_assert_uint_eq(t[1].line, 2);
	ck_assert(gpuos_ptx_tok_is(copy, &t[2], "c"));
	ck_assert_uint_eq(t[2].line, 6);
	ck_assert_uint_eq(t[3].kind, GPUOS_PTX_STRING);
	ck_assert_uint_eq(t[3].line, 7);
	ck_assert_uint_eq(t[4].line, 8);
	ck_assert_uint_eq(t[5].kind, GPUOS_PTX_EOF);
	ck_assert_uint_eq(t[5].line, 8);
	free(t);
	free(copy);
}
END_TEST

START_TEST(test_empty)
{
	struct gpuos_ptx_tok *t;
	size_t n;
	char *copy;

	ck_assert_int_eq(gpuos_ptx_tokenize(NULL, 0, &t, &n, NULL), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(t[0].kind, GPUOS_PTX_EOF);
	ck_assert_uint_eq(t[0].off, 0);
	ck_assert_uint_eq(t[0].line, 1);
	ck_assert(gpuos_ptx_tok_is("", &t[0], ""));
	free(t);
	lex("  \n// x\n\t", 9, &copy, &t, &n);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(t[0].line, 3);
	free(t);
	free(copy);
}
END_TEST

static const struct {
	const char *src;
	size_t len; /* 0: strlen */
	unsigned line;
} bad[] = {
    {"ld\n\0x", 5, 2},
    {"a\n// caf\xc3\xa9\n", 0, 2},
    {"a\n/* ok\n \x80 */", 0, 3},
    {"a\n\"str\xff\"", 0, 2},
    {"a\xc3\xa9", 0, 1},
    {".file 1 \"a.cu\n\"", 0, 1},
    {"a\n\"abc", 0, 2},
    {"a\n\"abc\\\"", 0, 2},
    {"a\n/* never\n\n", 0, 2},
    {"/*/", 0, 1},
    {"x\n\nmov.u32 %r1, 0x;", 0, 3},
    {"0x", 0, 1},
    {"0b;", 0, 1},
    {"0b2", 0, 1},
    {"08", 0, 1},
    {"019U", 0, 1},
    {"0f3F80000;", 0, 1},
    {"0f3F8000001", 0, 1},
    {"0f3F800000U", 0, 1},
    {"0d3FF;", 0, 1},
    {"0F", 0, 1},
    {"1e;", 0, 1},
    {"1e+;", 0, 1},
    {"1.5f", 0, 1},
    {"1.5.x", 0, 1},
    {"1..5", 0, 1},
    {".0.88", 0, 1},
    {".5.x", 0, 1},
    {"12abc", 0, 1},
    {"0x1G", 0, 1},
    {"4u", 0, 1},
    {"3_", 0, 1},
    {"$", 0, 1},
    {"a $ b", 0, 1},
    {".", 0, 1},
    {"a\n. x", 0, 2},
    {"#include <x>", 0, 1},
    {"`", 0, 1},
    {"a\\b", 0, 1},
    {"'a'", 0, 1},
    {"\x01", 0, 1},
    {"a\n\n\n\x7f", 0, 4},
};

START_TEST(test_errors)
{
	size_t len = bad[_i].len ? bad[_i].len : strlen(bad[_i].src);
	struct gpuos_ptx_tok *t = (void *)1;
	char *copy = exact_copy(bad[_i].src, len);
	unsigned line = 0;
	size_t n = 99;

	ck_assert_int_eq(gpuos_ptx_tokenize(copy, len, &t, &n, &line), -EINVAL);
	ck_assert_ptr_null(t);
	ck_assert_uint_eq(n, 0);
	ck_assert_msg(line == bad[_i].line, "case %d: line %u, want %u", _i, line, bad[_i].line);
	ck_assert_int_eq(gpuos_ptx_tokenize(copy, len, &t, &n, NULL), -EINVAL);
	free(copy);
}
END_TEST

START_TEST(test_e2big)
{
	struct gpuos_ptx_tok *t = (void *)1;
	unsigned line = 42;
	size_t n = 99;

	/* Refused on the size alone: nothing is read. */
	ck_assert_int_eq(gpuos_ptx_tokenize("x", ((size_t)1 << 30) + 1, &t, &n, &line), -E2BIG);
	ck_assert_ptr_null(t);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(line, 42);
}
END_TEST

START_TEST(test_tok_is)
{
	static const char src[] = "ld.param.u64 %ctaid.x";
	struct gpuos_ptx_tok *t;
	size_t n;
	char *copy;

	lex(src, strlen(src), &copy, &t, &n);
	ck_assert_uint_eq(n, 5);
	ck_assert(gpuos_ptx_tok_is(copy, &t[0], "ld"));
	ck_assert(!gpuos_ptx_tok_is(copy, &t[0], "l"));
	ck_assert(!gpuos_ptx_tok_is(copy, &t[0], "ld.param"));
	ck_assert(!gpuos_ptx_tok_is(copy, &t[0], ""));
	ck_assert(gpuos_ptx_tok_is(copy, &t[1], ".param"));
	ck_assert(!gpuos_ptx_tok_is(copy, &t[1], "param"));
	ck_assert(gpuos_ptx_tok_is(copy, &t[3], "%ctaid.x"));
	ck_assert(gpuos_ptx_tok_is(copy, &t[4], ""));
	free(t);
	free(copy);
}
END_TEST

static const char small_kernel[] =
    "//\n// Generated by hand\n//\n\n.version 9.0\n.target sm_90\n.address_size 64\n"
    ".file 1 \"/tmp/k.cu\"\n"
    ".visible .entry k(\n\t.param .u64 k_param_0,\n\t.param .u32 k_param_1\n)\n{\n"
    "\t.reg .pred %p<2>;\n\t.reg .b32 %r<6>;\n\t.reg .f32 %f<3>;\n\t.reg .b64 %rd<5>;\n"
    "\t.loc 1 3 5\n"
    "\tld.param.u64 %rd1, [k_param_0];\n\tld.param.u32 %r2, [k_param_1];\n"
    "\tmov.u32 %r3, %ctaid.x; /* block */ mov.u32 %r4, %ntid.x;\n"
    "\tmad.lo.s32 %r1, %r3, %r4, %tid.x;\n\tsetp.ge.s32 %p1, %r1, %r2;\n"
    "\t@%p1 bra $L__BB0_2;\n\tcvta.to.global.u64 %rd2, %rd1;\n"
    "\tmul.wide.s32 %rd3, %r1, 4;\n\tadd.s64 %rd4, %rd2, %rd3;\n"
    "\tld.global.f32 %f1, [%rd4+-4];\n\tmul.f32 %f2, %f1, 0f40000000;\n"
    "\tst.global.f32 [%rd4], %f2; // store\n$L__BB0_2:\n\tret;\n}\n";

/* Every prefix: a clean result or -EINVAL on a line that exists, never a read past len. */
START_TEST(test_prefixes)
{
	size_t len = strlen(small_kernel);
	unsigned lines = 1;

	for (size_t cut = 0; cut <= len; cut++) {
		char *copy = exact_copy(small_kernel, cut);
		struct gpuos_ptx_tok *t;
		unsigned line = 0;
		size_t n;
		int ret;

		if (cut && small_kernel[cut - 1] == '\n')
			lines++;
		ret = gpuos_ptx_tokenize(copy, cut, &t, &n, &line);
		if (ret == 0) {
			check_stream(copy, cut, t, n);
			free(t);
		} else {
			ck_assert_int_eq(ret, -EINVAL);
			ck_assert_uint_ge(line, 1);
			ck_assert_uint_le(line, lines);
		}
		free(copy);
	}
}
END_TEST

/* The PTX of the fixture kernels, as nvcc writes it with these extra flags. */
static const char *const nvcc_flags[] = {"", "-lineinfo", "-G"};

static char *nvcc_ptx(const char *flags, size_t *len)
{
	const char *nvcc = getenv("NVCC");
	char tmp[] = "/tmp/check_ptx_tok_XXXXXX", cmd[8192], path[4096];
	char *buf;
	FILE *f;
	int fd;

	/* Built by the fixture rules, when they build it. */
	if (!*flags && (f = fopen(fx_path("kernels_ptx.ptx", path, sizeof(path)), "rb"))) {
		fclose(f);
		return fx_load("kernels_ptx.ptx", len);
	}
	if (!nvcc || !*nvcc)
		nvcc = "/usr/local/cuda/bin/nvcc";
	if (access(nvcc, X_OK))
		return NULL;
	fd = mkstemp(tmp);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s -ptx -arch=compute_90 %s tests/fixtures/kernels.cu -o %s",
		 nvcc, flags, tmp);
	ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
	f = fopen(tmp, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(*len ? *len : 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, *len, f), *len);
	fclose(f);
	unlink(tmp);
	return buf;
}

START_TEST(test_nvcc_ptx)
{
	unsigned entries = 0, ctaid = 0, found[FX_NKERNELS] = {0};
	static const char brackets[] = "{}()[]";
	int depth[3] = {0};
	struct gpuos_ptx_tok *t;
	size_t len, n;
	char *ptx, *copy;

	ptx = nvcc_ptx(nvcc_flags[_i], &len);
	if (!ptx) {
		fprintf(stderr, "test_nvcc_ptx: no nvcc; skipped\n");
		return;
	}
	lex(ptx, len, &copy, &t, &n);
	for (size_t i = 0; i + 1 < n; i++) {
		const char *s = copy + t[i].off;

		if (t[i].kind == GPUOS_PTX_PUNCT && strchr(brackets, *s)) {
			size_t b = (size_t)(strchr(brackets, *s) - brackets);

			depth[b / 2] += b % 2 ? -1 : 1;
			ck_assert_int_ge(depth[b / 2], 0);
		}
		/* A component split off a special register would show up as ".x". */
		ck_assert(
		    !(t[i].kind == GPUOS_PTX_DIRECTIVE && gpuos_ptx_tok_is(copy, &t[i], ".x")));
		ctaid += t[i].kind == GPUOS_PTX_REG && gpuos_ptx_tok_is(copy, &t[i], "%ctaid.x");
		if (t[i].kind != GPUOS_PTX_DIRECTIVE || !gpuos_ptx_tok_is(copy, &t[i], ".entry"))
			continue;
		entries++;
		ck_assert_uint_eq(t[i + 1].kind, GPUOS_PTX_IDENT);
		for (unsigned k = 0; k < FX_NKERNELS; k++)
			found[k] += gpuos_ptx_tok_is(copy, &t[i + 1], fx_kernels[k].name);
	}
	ck_assert_int_eq(depth[0], 0);
	ck_assert_int_eq(depth[1], 0);
	ck_assert_int_eq(depth[2], 0);
	ck_assert_uint_eq(entries, FX_NKERNELS);
	for (unsigned k = 0; k < FX_NKERNELS; k++)
		ck_assert_msg(found[k] == 1, "%s: %u entries", fx_kernels[k].name, found[k]);
	ck_assert_uint_gt(ctaid, 0);
	free(t);
	free(copy);

	/* Cut short anywhere: clean or -EINVAL, never past the cut. */
	for (size_t cut = 0; cut < len; cut += 1 + cut % 61) {
		int ret;

		copy = exact_copy(ptx, cut);
		ret = gpuos_ptx_tokenize(copy, cut, &t, &n, NULL);
		ck_assert(ret == 0 || ret == -EINVAL);
		if (!ret)
			free(t);
		free(copy);
	}
	free(ptx);
}
END_TEST

static Suite *ptx_tok_suite(void)
{
	Suite *s = suite_create("ptx_tok");
	TCase *tc = tcase_create("snippets"), *nv = tcase_create("nvcc");

	tcase_add_test(tc, test_entry_header);
	tcase_add_test(tc, test_instructions);
	tcase_add_test(tc, test_special_regs);
	tcase_add_test(tc, test_directives);
	tcase_add_test(tc, test_numbers);
	tcase_add_test(tc, test_comments);
	tcase_add_test(tc, test_strings);
	tcase_add_test(tc, test_lines);
	tcase_add_test(tc, test_empty);
	tcase_add_loop_test(tc, test_errors, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_e2big);
	tcase_add_test(tc, test_tok_is);
	tcase_add_test(tc, test_prefixes);
	suite_add_tcase(s, tc);
	/* nvcc -G takes a few seconds. */
	tcase_set_timeout(nv, 120);
	tcase_add_loop_test(nv, test_nvcc_ptx, 0, sizeof(nvcc_flags) / sizeof(nvcc_flags[0]));
	suite_add_tcase(s, nv);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	sr = srunner_create(ptx_tok_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
