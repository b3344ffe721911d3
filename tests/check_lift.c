// SPDX-License-Identifier: MIT
/*
 * ptx_lift on the corpus nvcc built (tests/fixtures/lift): every .entry gets the answer
 * expect.h gives it; every lifted kernel assembles with ptxas as relocatable code for the
 * target it came for (sm_90 for the sm_90 and sm_75 PTX, sm_90a for the sm_90a file); the
 * default nvcc build's embedded PTX (compute_75, ZSTD) lifts the same.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/jit.h"
#include "ptx_lift/ptx_lift.h"
#include "tests/fixtures/lift/expect.h"

/* LeakSanitizer: nvJitLink keeps part of its state when a link fails (the wrapper alone, in
 * test_links_into_an_operator), even after nvJitLinkDestroy. Only its own allocations. */
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libnvJitLink.so\n";
}

static const char *fixtures(void)
{
	const char *f = getenv("GPUOS_FIXTURES");
	return f && *f ? f : "build/fixtures";
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = 0;
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static char *read_fixture(const char *file, size_t *len)
{
	char path[4096];
	char *b;

	snprintf(path, sizeof(path), "%s/lift/%s", fixtures(), file);
	b = slurp(path, len);
	ck_assert_msg(b, "%s missing: make fixtures builds it (needs nvcc)", path);
	return b;
}

/* ptxas -arch=@arch -c on @ptx: 0 when it assembles. */
static int assemble(const char *ptx, size_t len, const char *arch, const char *what)
{
	char dir[] = "/tmp/gpuos-lift-XXXXXX", path[256], cmd[1024];
	const char *cuda = getenv("CUDA_HOME");
	int fd, rc;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lifted.ptx", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, ptx, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s/bin/ptxas -arch=%s -c -o %s/lifted.o %s 2>%s/err",
		 cuda && *cuda ? cuda : "/usr/local/cuda", arch, dir, path, dir);
	rc = system(cmd);
	if (rc) {
		snprintf(cmd, sizeof(cmd), "echo '--- %s:'; head -c 2000 %s/err; head -c 3000 %s",
			 what, dir, path);
		if (system(cmd)) {
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
	return rc;
}

static bool answer_ok(const struct lift_expect *x, const struct gpuos_lift_result *r)
{
	const char *got = gpuos_lift_reason_key(r->reason);
	return !strcmp(got, x->expect) || (x->alt && !strcmp(got, x->alt));
}

static void check_row(const struct lift_expect *x, const char *buf, size_t len)
{
	struct gpuos_lift_opts o = {.max_threads = 480, .smem_window = 44 * 1024};
	struct gpuos_lift_result r;
	int rc = gpuos_lift(buf, len, x->entry, &o, &r);

	ck_assert_int_ge(rc, 0);
	ck_assert_msg(answer_ok(x, &r), "%s %s: got %s (%s), want %s%s%s", x->file, x->entry,
		      gpuos_lift_reason_key(r.reason), r.detail, x->expect, x->alt ? " or " : "",
		      x->alt ? x->alt : "");
	if (r.reason == GPUOS_LIFT_OK) {
		char what[256];
		ck_assert_ptr_nonnull(r.ptx);
		ck_assert_ptr_nonnull(strstr(r.ptx, r.func));
		snprintf(what, sizeof(what), "%s %s", x->file, x->entry);
		ck_assert_msg(assemble(r.ptx, r.ptx_len,
				       strstr(x->file, "sm90a") ? "sm_90a" : "sm_90", what) == 0,
			      "%s: the lifted PTX does not assemble", what);
	}
	gpuos_lift_free(&r);
}

START_TEST(test_corpus_row)
{
	const struct lift_expect *x = &lift_expect[_i];
	size_t len;
	char *buf = read_fixture(x->file, &len);

	check_row(x, buf, len);
	free(buf);
}
END_TEST

/* Every .entry of every file has a row (a new kernel in the corpus needs an answer). */
struct seen {
	const char *file;
	int missing;
};

static void on_entry(const char *name, void *arg)
{
	struct seen *s = arg;
	for (size_t k = 0; k < LIFT_NEXPECT; k++)
		if (!strcmp(lift_expect[k].file, s->file) && !strcmp(lift_expect[k].entry, name))
			return;
	fprintf(stderr, "%s: .entry %s has no row in expect.h\n", s->file, name);
	s->missing++;
}

START_TEST(test_every_entry_has_a_row)
{
	for (size_t f = 0; f < LIFT_NFILES; f++) {
		size_t len;
		char *buf = read_fixture(lift_files[f].file, &len);
		struct seen s = {lift_files[f].file, 0};
		ck_assert_int_eq(gpuos_lift_entries(buf, len, on_entry, &s), 0);
		ck_assert_int_eq(s.missing, 0);
		free(buf);
	}
}
END_TEST

/* What a default nvcc build embeds (compute_75 PTX, ZSTD) lifts as corpus_sm75.ptx does. */
static int on_fatbin(const void *fb, size_t len, void *arg)
{
	struct gpuos_fatbin_entry e;
	void *ptx;
	size_t plen;

	if (gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_PTX, 90, &e))
		return 0;
	ck_assert_uint_eq(e.arch, 75);
	ck_assert_int_eq(gpuos_fatbin_payload(&e, &ptx, &plen), 0);
	for (size_t k = 0; k < LIFT_NEXPECT; k++)
		if (!strcmp(lift_expect[k].file, "corpus_sm75.ptx")) {
			struct lift_expect x = lift_expect[k];
			x.file = "corpus_default (embedded PTX)";
			check_row(&x, ptx, plen);
			++*(int *)arg;
		}
	free(ptx);
	return 0;
}

START_TEST(test_default_build_embedded_ptx)
{
	size_t len;
	char *buf = read_fixture("corpus_default", &len);
	int rows = 0;

	ck_assert_int_eq(gpuos_hostelf_for_each_fatbin(buf, len, on_fatbin, &rows), 0);
	ck_assert_int_gt(rows, 20);
	free(buf);
}
END_TEST

/* The lifted function's shape: no entry-only directives, no %ctaid, no exit; the ABI. */
START_TEST(test_rewrites)
{
	size_t len;
	char *buf = read_fixture("corpus.ptx", &len);
	struct gpuos_lift_result r;
	static const char *const entries[] = {"ok_grid_stride", "ok_smem_reverse", "ok_maxntid1024",
					      "ok_param_index", "ok_call_helper",  "ok_dyn_smem"};

	for (size_t k = 0; k < sizeof(entries) / sizeof(entries[0]); k++) {
		ck_assert_int_eq(gpuos_lift(buf, len, entries[k], NULL, &r), 0);
		ck_assert_msg(!strstr(r.ptx, "%ctaid") && !strstr(r.ptx, "%nctaid") &&
				  !strstr(r.ptx, "%tid.") && !strstr(r.ptx, ".entry") &&
				  !strstr(r.ptx, ".maxntid") && !strstr(r.ptx, "exit;") &&
				  !strstr(r.ptx, "bar.sync 0"),
			      "%s:\n%s", entries[k], r.ptx);
		ck_assert_ptr_nonnull(strstr(r.ptx, ".visible .func gpuos_lift_"));
		gpuos_lift_free(&r);
	}
	ck_assert_int_eq(gpuos_lift(buf, len, "ok_smem_reverse", NULL, &r), 0);
	ck_assert(r.barriers);
	ck_assert_uint_eq(r.static_smem, 1024);
	ck_assert_ptr_nonnull(strstr(r.ptx, "2, %gpuos_nthreads;"));
	gpuos_lift_free(&r);
	ck_assert_int_eq(gpuos_lift(buf, len, "ok_struct", NULL, &r), 0);
	ck_assert_uint_eq(r.nparams, 2);
	ck_assert_uint_eq(r.params[1].offset, 8);
	ck_assert_uint_eq(r.params[1].size, 24);
	ck_assert_uint_eq(r.param_bytes, 32);
	gpuos_lift_free(&r);
	ck_assert_int_eq(gpuos_lift(buf, len, "ok_dyn_smem", NULL, &r), 0);
	ck_assert(r.dynamic_smem);
	gpuos_lift_free(&r);
	/* CUDA's constant tables come along; a user's module variable does not */
	ck_assert_int_eq(gpuos_lift(buf, len, "ok_sinf", NULL, &r), 0);
	ck_assert_ptr_nonnull(strstr(r.ptx, "__cudart_i2opi_f[24] ="));
	gpuos_lift_free(&r);
	ck_assert_int_eq(gpuos_lift(buf, len, "no_such_kernel", NULL, &r), 1);
	ck_assert_int_eq(r.reason, GPUOS_LIFT_NO_ENTRY);
	/* a device whose arch is older than the PTX target */
	struct gpuos_lift_opts old = {.sm = 80};
	ck_assert_int_eq(gpuos_lift(buf, len, "ok_axpb", &old, &r), 1);
	ck_assert_str_eq(gpuos_lift_reason_key(r.reason), "target_too_new");
	/* the worker's block is smaller than a kernel's required one */
	struct gpuos_lift_opts small = {.max_threads = 64};
	ck_assert_int_eq(gpuos_lift(buf, len, "ok_reqntid128", &small, &r), 1);
	ck_assert_str_eq(gpuos_lift_reason_key(r.reason), "block_too_large");
	free(buf);
}
END_TEST

/*
 * A lifted kernel becomes an operator image: a wrapper compiled by NVRTC that calls the
 * lifted function, linked with the lifted PTX by nvJitLink into one executable cubin (what
 * the worker's table will point into). No GPU needed; skipped without the CUDA libraries.
 */
static const char wrapper[] =
    "#include \"gpuos_task.h\"\n"
    "extern \"C\" __device__ void gpuos_lift_ok_grid_stride(const void *args,\n"
    "  unsigned cx, unsigned cy, unsigned cz, unsigned nx, unsigned ny, unsigned nz,\n"
    "  unsigned tx, unsigned ty, unsigned tz, unsigned bx, unsigned by, unsigned bz,\n"
    "  unsigned nthreads, unsigned smem);\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(op_lifted) {\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    unsigned gx = (unsigned)t[k].a[1], bx = (unsigned)(t[k].a[1] >> 32);\n"
    "    for (unsigned b = 0; b < gx; b++) {\n"
    "      if (gpuos_tid() < bx)\n"
    "        gpuos_lift_ok_grid_stride((const void *)t[k].a[0], b, 0, 0, gx, 1, 1,\n"
    "                                  gpuos_tid(), 0, 0, bx, 1, 1, (bx + 31) & ~31u, 0);\n"
    "      gpuos_sync();\n"
    "    }\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = op_lifted;\n";

/*
 * The generated operator (wrap.c) for kernels of each mode compiles and links with the lifted
 * PTX: warps mode, blocks mode (barriers, static and dynamic shared memory), parameters in the
 * task and copied from the arena, a carried constant table.
 */
START_TEST(test_generated_wrapper_links)
{
	static const struct {
		const char *entry;
		bool warps;
		unsigned force_bytes; /* pretend a larger parameter buffer: the arena path */
	} cases[] = {
	    {"ok_axpb", true, 0},	    {"ok_smem_reverse", false, 0}, {"ok_struct", true, 0},
	    {"ok_dyn_smem", false, 0},	    {"ok_sinf", true, 0},	   {"ok_axpb", true, 200},
	    {"ok_block_reduce", false, 64},
	};
	size_t len;
	char *buf = read_fixture("corpus_sm75.ptx", &len);
	char dir[] = "/tmp/gpuos-liftwrap-XXXXXX", src[4096];
	const char *opts[] = {"-maxrregcount=64"};

	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gpuos_lift_result r;
		struct gpuos_jit_image img;

		ck_assert_int_eq(gpuos_lift(buf, len, cases[i].entry, NULL, &r), 0);
		ck_assert_int_eq(gpuos_lift_warps_mode(&r), cases[i].warps);
		if (cases[i].force_bytes)
			r.param_bytes = cases[i].force_bytes;
		int n = gpuos_lift_wrapper(&r, src, sizeof(src));
		ck_assert_int_gt(n, 0);
		ck_assert_ptr_nonnull(strstr(src, r.func));
		ck_assert_ptr_nonnull(
		    strstr(src, r.param_bytes <= GPUOS_LIFT_INLINE ? "#define INLINE 1" : "#define INLINE 0"));
		ck_assert_int_eq(gpuos_lift_wrapper(&r, src, 100), -ENOSPC);
		n = gpuos_lift_wrapper(&r, src, sizeof(src));
		struct gpuos_jit_req req = {.src = src, .len = (size_t)n, .name = cases[i].entry,
					    .sm = 90, .opts = opts, .nopts = 1, .cache_dir = dir,
					    .ptx = r.ptx, .ptx_len = r.ptx_len};
		int rc = gpuos_jit_build(&req, &img);
		gpuos_lift_free(&r);
		if (rc == -ENOENT) /* no NVRTC/nvJitLink here */
			break;
		ck_assert_msg(rc == 0, "%s: %d", cases[i].entry, rc);
		ck_assert_ptr_nonnull(memmem(img.data, img.size, "gpuos_op_entry", 14));
		/* the lifted function's code is in the image (the linker dropped it, once, and
		 * left the wrapper's call aimed at address 0) */
		char text[200];
		snprintf(text, sizeof(text), ".text.gpuos_lift_%s", cases[i].entry);
		ck_assert_msg(memmem(img.data, img.size, text, strlen(text)), "%s: no %s",
			      cases[i].entry, text);
		gpuos_jit_image_free(&img);
	}
	free(buf);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
}
END_TEST

START_TEST(test_links_into_an_operator)
{
	size_t len;
	char *buf = read_fixture("corpus.ptx", &len);
	char dir[] = "/tmp/gpuos-liftjit-XXXXXX";
	const char *opts[] = {"-maxrregcount=32"};
	struct gpuos_lift_result r;
	struct gpuos_jit_image img;
	struct gpuos_jit_req req = {.src = wrapper,
				    .len = sizeof(wrapper) - 1,
				    .name = "lifted",
				    .sm = 90,
				    .opts = opts,
				    .nopts = 1};

	ck_assert_int_eq(gpuos_lift(buf, len, "ok_grid_stride", NULL, &r), 0);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	req.cache_dir = dir;
	req.ptx = r.ptx;
	req.ptx_len = r.ptx_len;
	int rc = gpuos_jit_build(&req, &img);
	if (rc == -ENOENT) { /* no NVRTC/nvJitLink here */
		gpuos_lift_free(&r);
		free(buf);
		return;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert(!img.cached);
	/* an executable cubin for sm_90 (the jit checked type and arch) with the entry */
	ck_assert_uint_gt(img.size, 64);
	ck_assert_int_eq(memcmp(img.data, "\177ELF", 4), 0);
	ck_assert_ptr_nonnull(memmem(img.data, img.size, "gpuos_op_entry", 14));
	gpuos_jit_image_free(&img);
	/* without the lifted PTX the wrapper's call has nothing to land on */
	struct gpuos_jit_req alone = req;
	alone.ptx = NULL;
	alone.ptx_len = 0;
	ck_assert_int_eq(gpuos_jit_build(&alone, &img), -EINVAL);
	/* the PTX is part of the key: the same build hits, another PTX misses */
	ck_assert_int_eq(gpuos_jit_build(&req, &img), 0);
	ck_assert(img.cached);
	gpuos_jit_image_free(&img);
	req.ptx_len--; /* drop the last byte (a newline): other PTX */
	ck_assert_int_eq(gpuos_jit_build(&req, &img), 0);
	ck_assert(!img.cached);
	gpuos_jit_image_free(&img);
	gpuos_lift_free(&r);
	free(buf);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd)) {
	}
}
END_TEST

/* Garbage in, a refusal out: never a crash, never a lift. */
START_TEST(test_garbage)
{
	static const char *const bad[] = {
	    "",
	    ".version 8.8\n.target sm_90\n.entry k( {",
	    ".entry k() { ld.param.u64 %rd1",
	    ".entry k(.param .u64 p) { ret; }",
	    "\x01\x02",
	    ".entry k() {\n}", /* an empty body (the fuzzer's: emitted a negative length) */
	};
	struct gpuos_lift_result r;

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		int rc = gpuos_lift(bad[k], strlen(bad[k]), "k", NULL, &r);
		ck_assert_int_ge(rc, 0);
		if (rc == 0) /* the well-formed trivial kernels */
			ck_assert(k == 3 || k == 5);
		gpuos_lift_free(&r);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lift");
	TCase *tc = tcase_create("corpus");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_corpus_row, 0, (int)LIFT_NEXPECT);
	tcase_add_test(tc, test_every_entry_has_a_row);
	tcase_add_test(tc, test_default_build_embedded_ptx);
	tcase_add_test(tc, test_rewrites);
	tcase_add_test(tc, test_garbage);
	tcase_add_test(tc, test_links_into_an_operator);
	tcase_add_test(tc, test_generated_wrapper_links);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
