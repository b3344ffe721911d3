// SPDX-License-Identifier: MIT
/*
 * ptx_lift: the fatbinary container and the host ELF walker, on nvcc-built fixtures
 * (tests/fixtures/fixtures.mk) and on truncated and corrupted copies of them.
 */
#include <check.h>
#include <errno.h>
#include <fatbinary_section.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_lift/ptx_lift.h"
#include "tests/fixtures/expect.h"

#define MAX_FATBINS 8

struct fatbins {
	unsigned n;
	const void *fb[MAX_FATBINS];
	size_t len[MAX_FATBINS];
};

static int collect(const void *fatbin, size_t len, void *arg)
{
	struct fatbins *f = arg;

	ck_assert_uint_lt(f->n, MAX_FATBINS);
	f->fb[f->n] = fatbin;
	f->len[f->n] = len;
	f->n++;
	return 0;
}

/* Entries of one fatbin as (kind, arch, flags) triples, for exact comparisons. */
static unsigned list_entries(const void *fb, size_t len, struct gpuos_fatbin_entry *e, unsigned max)
{
	size_t pos = 0;
	unsigned n = 0;
	int ret;

	while ((ret = gpuos_fatbin_next(fb, len, &pos, &e[n])) == 1) {
		ck_assert_uint_lt(n, max);
		n++;
	}
	ck_assert_int_eq(ret, 0);
	return n;
}

/* Decompress the picked cubin and check every kernel against the source's layout. */
static void check_cubin_entry(const struct gpuos_fatbin_entry *e, unsigned arch)
{
	struct gpuos_cubin *c = NULL;
	size_t len;
	void *raw;

	ck_assert_int_eq(gpuos_fatbin_payload(e, &raw, &len), 0);
	ck_assert_uint_eq(len, e->raw_len);
	ck_assert(!memcmp(raw,
			  "\x7f"
			  "ELF",
			  4));
	ck_assert_int_eq(gpuos_cubin_open(raw, len, &c), 0);
	fx_check_cubin(c, arch);
	gpuos_cubin_close(c);
	free(raw);
}

static void check_ptx_entry(const struct gpuos_fatbin_entry *e, unsigned arch)
{
	char target[32];
	size_t len;
	char *ptx;

	ck_assert_int_eq(gpuos_fatbin_payload(e, (void **)&ptx, &len), 0);
	ck_assert_uint_eq(strlen(ptx), len);
	ck_assert_uint_le(len, e->raw_len);
	ck_assert_ptr_nonnull(strstr(ptx, ".version "));
	snprintf(target, sizeof(target), ".target sm_%u", arch);
	ck_assert_ptr_nonnull(strstr(ptx, target));
	for (unsigned i = 0; i < FX_NKERNELS; i++)
		ck_assert_msg(strstr(ptx, fx_kernels[i].name), "%s not in PTX", fx_kernels[i].name);
	free(ptx);
}

/* The fatbin of a host fixture that holds the kernels: the last of .nv_fatbin. */
static void load_exe(const char *name, void **buf, struct fatbins *f)
{
	size_t len;

	*buf = fx_load(name, &len);
	memset(f, 0, sizeof(*f));
	ck_assert_int_eq(gpuos_hostelf_for_each_fatbin(*buf, len, collect, f), 0);
	for (unsigned i = 0; i < f->n; i++)
		ck_assert_int_eq(gpuos_fatbin_size(f->fb[i], f->len[i]), (ssize_t)f->len[i]);
}

/*
 * Each --compress-mode, sm_90 + compute_90. Found on nvcc 13.0: none stores both plain,
 * speed LZ4-compresses the PTX only, balance (the default) ZSTD-compresses the PTX only,
 * size ZSTD-compresses the cubin too.
 */
static const struct {
	const char *file;
	unsigned cubin_flags, ptx_flags;
} modes[] = {
    {"kernels_none", 0, 0},
    {"kernels_speed", 0, GPUOS_FATBIN_F_LZ4},
    {"kernels_balance", 0, GPUOS_FATBIN_F_ZSTD},
    {"kernels_size", GPUOS_FATBIN_F_ZSTD, GPUOS_FATBIN_F_ZSTD},
};

START_TEST(test_compress_modes)
{
	struct gpuos_fatbin_entry e[8], pick;
	struct fatbins f;
	const void *fb;
	size_t len;
	void *buf;

	load_exe(modes[_i].file, &buf, &f);
	/* nvcc's device-link stub fatbin (no kernels), then ours. */
	ck_assert_uint_eq(f.n, 2);
	fb = f.fb[1];
	len = f.len[1];
	ck_assert_uint_eq(list_entries(fb, len, e, 8), 2);
	ck_assert_uint_eq(e[0].kind, GPUOS_FATBIN_CUBIN);
	ck_assert_uint_eq(e[0].arch, 90);
	ck_assert_uint_eq(e[0].flags, modes[_i].cubin_flags);
	ck_assert_uint_eq(e[1].kind, GPUOS_FATBIN_PTX);
	ck_assert_uint_eq(e[1].arch, 90);
	ck_assert_uint_eq(e[1].flags, modes[_i].ptx_flags);

	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_CUBIN, 90, &pick), 0);
	check_cubin_entry(&pick, 90);
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_PTX, 90, &pick), 0);
	check_ptx_entry(&pick, 90);
	/* PTX runs on newer devices; a cubin only within its major version. */
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_PTX, 120, &pick), 0);
	ck_assert_uint_eq(pick.arch, 90);
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_CUBIN, 100, &pick), -ENOENT);
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_PTX, 89, &pick), -ENOENT);
	free(buf);
}
END_TEST

/* Plain `nvcc`: sm_75 SASS + compute_75 PTX (ZSTD). */
START_TEST(test_default_build)
{
	struct gpuos_fatbin_entry e[8], pick;
	struct fatbins f;
	void *buf;

	load_exe("kernels_default", &buf, &f);
	ck_assert_uint_eq(f.n, 2);
	ck_assert_uint_eq(list_entries(f.fb[1], f.len[1], e, 8), 2);
	ck_assert_uint_eq(e[0].kind, GPUOS_FATBIN_CUBIN);
	ck_assert_uint_eq(e[0].arch, 75);
	ck_assert_uint_eq(e[1].kind, GPUOS_FATBIN_PTX);
	ck_assert_uint_eq(e[1].arch, 75);
	ck_assert_uint_eq(e[1].flags, GPUOS_FATBIN_F_ZSTD);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_CUBIN, 90, &pick),
			 -ENOENT);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_PTX, 90, &pick), 0);
	check_ptx_entry(&pick, 75);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_CUBIN, 75, &pick), 0);
	check_cubin_entry(&pick, 75);
	/* sm_75 SASS runs on sm_7x only. */
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_CUBIN, 86, &pick),
			 -ENOENT);
	free(buf);
}
END_TEST

/* -gencode compute_75,[sm_75,compute_75] -gencode compute_90,sm_90 */
START_TEST(test_two_archs)
{
	struct gpuos_fatbin_entry e[8], pick;
	struct fatbins f;
	void *buf;

	load_exe("kernels_twoarch", &buf, &f);
	ck_assert_uint_eq(f.n, 2);
	ck_assert_uint_eq(list_entries(f.fb[1], f.len[1], e, 8), 3);
	ck_assert_uint_eq(e[0].kind, GPUOS_FATBIN_CUBIN);
	ck_assert_uint_eq(e[0].arch, 75);
	ck_assert_uint_eq(e[1].kind, GPUOS_FATBIN_PTX);
	ck_assert_uint_eq(e[1].arch, 75);
	ck_assert_uint_eq(e[2].kind, GPUOS_FATBIN_CUBIN);
	ck_assert_uint_eq(e[2].arch, 90);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_CUBIN, 90, &pick), 0);
	ck_assert_uint_eq(pick.arch, 90);
	check_cubin_entry(&pick, 90);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_CUBIN, 75, &pick), 0);
	check_cubin_entry(&pick, 75);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_CUBIN, 80, &pick),
			 -ENOENT);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_PTX, 90, &pick), 0);
	check_ptx_entry(&pick, 75);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_PTX, 70, &pick),
			 -ENOENT);
	free(buf);
}
END_TEST

/* -rdc=true: the device-linked cubin in .nv_fatbin, the prelink cubin + PTX after it. */
START_TEST(test_rdc)
{
	struct gpuos_fatbin_entry e[8], pick;
	struct fatbins f;
	void *buf;

	load_exe("kernels_rdc", &buf, &f);
	ck_assert_uint_eq(f.n, 2);
	ck_assert_uint_eq(list_entries(f.fb[0], f.len[0], e, 8), 1);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[0], f.len[0], GPUOS_FATBIN_CUBIN, 90, &pick), 0);
	check_cubin_entry(&pick, 90);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[0], f.len[0], GPUOS_FATBIN_PTX, 90, &pick),
			 -ENOENT);

	ck_assert_uint_eq(list_entries(f.fb[1], f.len[1], e, 8), 2);
	ck_assert_uint_eq(e[0].flags, GPUOS_FATBIN_F_ZSTD);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_CUBIN, 90, &pick), 0);
	check_cubin_entry(&pick, 90);
	ck_assert_int_eq(gpuos_fatbin_pick(f.fb[1], f.len[1], GPUOS_FATBIN_PTX, 90, &pick), 0);
	check_ptx_entry(&pick, 90);
	free(buf);
}
END_TEST

/* nvcc -fatbin: sm_90, compute_90 (ZSTD), sm_120. */
START_TEST(test_fatbin_file)
{
	struct gpuos_fatbin_entry e[8], pick;
	size_t len;
	void *fb;

	fb = fx_load("kernels.fatbin", &len);
	ck_assert_int_eq(gpuos_fatbin_size(fb, len), (ssize_t)len);
	ck_assert_uint_eq(list_entries(fb, len, e, 8), 3);
	ck_assert_uint_eq(e[0].kind, GPUOS_FATBIN_CUBIN);
	ck_assert_uint_eq(e[0].arch, 90);
	ck_assert_uint_eq(e[1].kind, GPUOS_FATBIN_PTX);
	ck_assert_uint_eq(e[1].flags, GPUOS_FATBIN_F_ZSTD);
	ck_assert_uint_eq(e[2].kind, GPUOS_FATBIN_CUBIN);
	ck_assert_uint_eq(e[2].arch, 120);

	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_CUBIN, 120, &pick), 0);
	check_cubin_entry(&pick, 120);
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_CUBIN, 121, &pick), 0);
	ck_assert_uint_eq(pick.arch, 120);
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_CUBIN, 90, &pick), 0);
	check_cubin_entry(&pick, 90);
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_CUBIN, 100, &pick), -ENOENT);
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_PTX, 100, &pick), 0);
	ck_assert_uint_eq(pick.arch, 90);
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, 7, 90, &pick), -EINVAL);

	/* Trailing bytes after the fatbin are not part of it. */
	fb = realloc(fb, len + 64);
	memset((char *)fb + len, 0xab, 64);
	ck_assert_int_eq(gpuos_fatbin_size(fb, len + 64), (ssize_t)len);
	ck_assert_uint_eq(list_entries(fb, len + 64, e, 8), 3);
	free(fb);
}
END_TEST

/* The argument of __cudaRegisterFatBinary. */
START_TEST(test_wrapper)
{
	__fatBinC_Wrapper_t w = {0};
	const void *out = NULL;
	unsigned char junk[64] = {0};
	size_t len, olen = 0;
	void *fb;

	fb = fx_load("kernels.fatbin", &len);
	w.magic = FATBINC_MAGIC;
	w.version = FATBINC_VERSION;
	w.data = fb;
	ck_assert_int_eq(gpuos_fatbin_from_wrapper(&w, &out, &olen), 0);
	ck_assert_ptr_eq(out, fb);
	ck_assert_uint_eq(olen, len);

	w.version = FATBINC_LINK_VERSION;
	out = NULL;
	ck_assert_int_eq(gpuos_fatbin_from_wrapper(&w, &out, &olen), 0);
	ck_assert_ptr_eq(out, fb);
	ck_assert_uint_eq(olen, len);

	w.version = 3;
	ck_assert_int_eq(gpuos_fatbin_from_wrapper(&w, &out, &olen), -ENOTSUP);
	w.version = FATBINC_VERSION;
	w.magic = 0x12345678;
	ck_assert_int_eq(gpuos_fatbin_from_wrapper(&w, &out, &olen), -EINVAL);
	w.magic = FATBINC_MAGIC;
	w.data = (const unsigned long long *)junk;
	ck_assert_int_eq(gpuos_fatbin_from_wrapper(&w, &out, &olen), -EINVAL);
	w.data = NULL;
	ck_assert_int_eq(gpuos_fatbin_from_wrapper(&w, &out, &olen), -EINVAL);
	ck_assert_int_eq(gpuos_fatbin_from_wrapper(NULL, &out, &olen), -EINVAL);
	free(fb);
}
END_TEST

/* Everything a caller does with a fatbin; must not crash, any error must be negative. */
static void exercise_fatbin(const void *buf, size_t len)
{
	struct gpuos_fatbin_entry e;
	size_t pos = 0;
	unsigned guard = 0;
	int ret;

	(void)gpuos_fatbin_size(buf, len);
	while ((ret = gpuos_fatbin_next(buf, len, &pos, &e)) == 1) {
		ck_assert_uint_lt(++guard, 1000);
		ck_assert((const char *)e.data >= (const char *)buf);
		ck_assert_uint_le((const char *)e.data + e.data_len - (const char *)buf, len);
	}
	ck_assert_int_le(ret, 0);
	for (unsigned kind = GPUOS_FATBIN_PTX; kind <= GPUOS_FATBIN_CUBIN; kind++) {
		struct gpuos_cubin *c = NULL;
		void *raw = NULL;
		size_t rlen;

		ret = gpuos_fatbin_pick(buf, len, kind, 90, &e);
		ck_assert_int_le(ret, 0);
		if (ret)
			continue;
		ret = gpuos_fatbin_payload(&e, &raw, &rlen);
		ck_assert_int_le(ret, 0);
		if (ret) {
			ck_assert_ptr_null(raw);
			continue;
		}
		if (kind == GPUOS_FATBIN_CUBIN) {
			ret = gpuos_cubin_open(raw, rlen, &c);
			ck_assert_int_le(ret, 0);
			for (unsigned i = 0; i < gpuos_cubin_count(c); i++)
				ck_assert_ptr_nonnull(gpuos_cubin_kernel(c, i)->name);
			gpuos_cubin_close(c);
		}
		free(raw);
	}
}

/* The smallest fatbin of the fixtures: kernels_size's, both entries ZSTD. */
static void *small_fatbin(size_t *len)
{
	struct fatbins f;
	void *buf, *fb;

	load_exe("kernels_size", &buf, &f);
	ck_assert_uint_eq(f.n, 2);
	*len = f.len[1];
	fb = malloc(*len);
	memcpy(fb, f.fb[1], *len);
	free(buf);
	return fb;
}

START_TEST(test_truncated)
{
	size_t len;
	void *fb = small_fatbin(&len);

	for (size_t n = 0; n < len; n++) {
		unsigned char *t = malloc(n ? n : 1);
		uint64_t sz;

		memcpy(t, fb, n);
		ck_assert_int_eq(gpuos_fatbin_size(t, n), -EINVAL);
		exercise_fatbin(t, n);
		/* Consistently truncated: the header agrees, an entry is cut short. */
		if (n >= 16) {
			sz = n - 16;
			memcpy(t + 8, &sz, sizeof(sz));
			ck_assert_int_eq(gpuos_fatbin_size(t, n), (ssize_t)n);
			exercise_fatbin(t, n);
		}
		free(t);
	}
	free(fb);
}
END_TEST

START_TEST(test_corrupted)
{
	size_t len;
	unsigned char *fb = small_fatbin(&len), *t = malloc(len);
	unsigned seed = 12345;

	for (int iter = 0; iter < 3000; iter++) {
		int flips = 1 + rand_r(&seed) % 4;

		memcpy(t, fb, len);
		for (int i = 0; i < flips; i++) {
			/* Mostly headers: that is where the interesting failures are. */
			size_t at = rand_r(&seed) % (iter & 1 ? len : 256);

			t[at] ^= 1u << (rand_r(&seed) % 8);
		}
		exercise_fatbin(t, len);
	}
	free(t);
	free(fb);
}
END_TEST

START_TEST(test_payload_corrupt)
{
	struct gpuos_fatbin_entry e;
	unsigned char *copy;
	void *raw = (void *)1;
	size_t len, rlen;
	void *fb = small_fatbin(&len);

	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_CUBIN, 90, &e), 0);
	ck_assert_uint_eq(e.flags, GPUOS_FATBIN_F_ZSTD);
	copy = malloc(e.data_len);
	memcpy(copy, e.data, e.data_len);
	/* The frames carry no checksum: break the frame header, not the data. */
	memset(copy + 4, 0xff, 4);
	e.data = copy;
	ck_assert_int_lt(gpuos_fatbin_payload(&e, &raw, &rlen), 0);
	ck_assert_ptr_null(raw);
	/* Intact data with a wrong raw size is caught as well. */
	ck_assert_int_eq(gpuos_fatbin_pick(fb, len, GPUOS_FATBIN_CUBIN, 90, &e), 0);
	e.raw_len += 1;
	ck_assert_int_lt(gpuos_fatbin_payload(&e, &raw, &rlen), 0);
	ck_assert_ptr_null(raw);
	free(copy);
	free(fb);
}
END_TEST

static int stop_at_first(const void *fatbin, size_t len, void *arg)
{
	(void)fatbin;
	(void)len;
	(*(int *)arg)++;
	return 42;
}

START_TEST(test_hostelf)
{
	unsigned char junk[256] = {0x7f, 'E', 'L', 'F'};
	struct fatbins f = {0};
	size_t len;
	void *buf, *self;
	int calls = 0;

	buf = fx_load("kernels_none", &len);
	ck_assert_int_eq(gpuos_hostelf_for_each_fatbin(buf, len, stop_at_first, &calls), 42);
	ck_assert_int_eq(calls, 1);
	ck_assert_int_eq(gpuos_hostelf_for_each_fatbin(buf, 10, collect, &f), -EINVAL);
	ck_assert_int_eq(gpuos_hostelf_for_each_fatbin(junk, sizeof(junk), collect, &f), -ENOTSUP);
	ck_assert_int_eq(gpuos_hostelf_for_each_fatbin(junk + 1, 100, collect, &f), -EINVAL);
	/* A cubin is an ELF without .nv_fatbin. */
	self = fx_load("kernels_sm90.cubin", &len);
	ck_assert_int_eq(gpuos_hostelf_for_each_fatbin(self, len, collect, &f), -ENOENT);
	ck_assert_uint_eq(f.n, 0);
	free(self);
	free(buf);
}
END_TEST

/* Every truncation and many corruptions of a host executable: errors, never crashes. */
static int exercise_cb(const void *fatbin, size_t len, void *arg)
{
	(void)arg;
	exercise_fatbin(fatbin, len);
	return 0;
}

START_TEST(test_hostelf_corrupted)
{
	unsigned seed = 777;
	size_t len;
	unsigned char *buf = fx_load("kernels_size", &len), *t = malloc(len);
	int ret;

	for (size_t n = 0; n < len; n += (n < 4096 ? 1 : 61)) {
		ret = gpuos_hostelf_for_each_fatbin(buf, n, exercise_cb, NULL);
		ck_assert_int_le(ret, 0);
	}
	for (int iter = 0; iter < 300; iter++) {
		memcpy(t, buf, len);
		for (int i = 0; i < 4; i++)
			t[rand_r(&seed) % (iter & 1 ? 128 : len)] ^= 1u << (rand_r(&seed) % 8);
		ret = gpuos_hostelf_for_each_fatbin(t, len, exercise_cb, NULL);
		ck_assert_int_le(ret, 0);
	}
	free(t);
	free(buf);
}
END_TEST

static Suite *fatbin_suite(void)
{
	Suite *s = suite_create("fatbin");
	TCase *tc = tcase_create("fixtures");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_compress_modes, 0, sizeof(modes) / sizeof(modes[0]));
	tcase_add_test(tc, test_default_build);
	tcase_add_test(tc, test_two_archs);
	tcase_add_test(tc, test_rdc);
	tcase_add_test(tc, test_fatbin_file);
	tcase_add_test(tc, test_wrapper);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_corrupted);
	tcase_add_test(tc, test_payload_corrupt);
	tcase_add_test(tc, test_hostelf);
	tcase_add_test(tc, test_hostelf_corrupted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	fx_require("kernels.fatbin");
	sr = srunner_create(fatbin_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
