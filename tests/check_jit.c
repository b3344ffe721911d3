// SPDX-License-Identifier: MIT
/*
 * kernels/jit.c: NVRTC + nvJitLink builds of operator sources into executable cubins, the
 * on-disk cache (keys, hits without loading NVRTC, corrupt and unwritable caches), compile
 * errors, and the background thread (order, shutdown, fork). Needs the CUDA 13 NVRTC and
 * nvJitLink libraries, not a GPU; exits 77 (skip) without them.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/jit.h"
#include "ptx_lift/ptx_lift.h"

/*
 * The operator shape the worker expects. NVRTC rejects `(void *)op_scale` as the pointer's
 * initializer ("dynamic initialization is not supported for a __device__ variable"): the
 * entry is a typed function pointer, a constant the driver relocates at load.
 */
#define OP_SCALE(factor)                                                                           \
	"#include \"gpuos_task.h\"\n"                                                              \
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE(op_scale)\n"                                   \
	"{\n"                                                                                      \
	"	for (int k = 0; k < ntasks; k++) {\n"                                              \
	"		float *y = (float *)t[k].a[0];\n"                                          \
	"		unsigned long long n = t[k].a[1];\n"                                       \
	"		for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x)\n"        \
	"			y[i] *= " factor ";\n"                                             \
	"		__syncthreads();\n"                                                        \
	"	}\n"                                                                               \
	"}\n"                                                                                      \
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = op_scale;\n"

static const char op_scale[] = OP_SCALE("2.0f");
static const char op_scale3[] = OP_SCALE("3.0f");
static const char op_syntax[] =
	"#include \"gpuos_task.h\"\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE(op_bad) { int x = ; }\n";
/* Compiles (-rdc allows the undefined call) but cannot link. */
static const char op_unresolved[] =
	"#include \"gpuos_task.h\"\n"
	"extern \"C\" __device__ void gpuos_nowhere(void);\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE(op_u) { gpuos_nowhere(); }\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = op_u;\n";

/* Calls a helper of its own and IEEE division (whose slow path is a call) */
static const char op_calls[] =
	"#include \"gpuos_task.h\"\n"
	"extern \"C\" __device__ __noinline__ float gpuos_test_helper(float x) { return x * 3.0f; }\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE(op_calls)\n"
	"{\n"
	"	float *y = (float *)t[0].a[0], *b = (float *)t[0].a[1];\n"
	"	y[threadIdx.x] = gpuos_test_helper(y[threadIdx.x]) / b[threadIdx.x];\n"
	"}\n"
	"extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = op_calls;\n";

static char suitedir[] = "/tmp/check_jit.XXXXXX";

/*
 * LeakSanitizer: nvJitLink keeps part of its state when a link fails, even after
 * nvJitLinkDestroy (test_link_error). Only allocations made inside libnvJitLink match.
 */
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libnvJitLink.so\n";
}

/* ThreadSanitizer cannot follow a thread started in the child of a multi-threaded fork. */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifndef TSAN
#define TSAN 0
#endif

/*
 * AddressSanitizer (gcc 12's) holds no allocator lock across fork(): a parent thread in
 * malloc at that moment leaves the child's malloc waiting forever (seen: the child's jit
 * thread in asan's SizeClassAllocator64 lock, 2 runs in 40). glibc's malloc has fork
 * handlers; the fork test's child side runs without the sanitizers only.
 */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif

/* A fresh folder under the suite's, so that tests share no cache. */
static const char *newdir(void)
{
	static char dir[256];

	snprintf(dir, sizeof(dir), "%s/t.XXXXXX", suitedir);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	return dir;
}

static struct gpuos_jit_req mkreq(const char *src, unsigned sm, const char *dir)
{
	return (struct gpuos_jit_req){ .src = src, .len = strlen(src), .name = "op_scale",
				       .sm = sm, .cache_dir = dir, .driver_version = 13000 };
}

static void stats(struct gpuos_jit_stats *st)
{
	gpuos_jit_get_stats(st);
}

static const char *cache_path(const struct gpuos_jit_req *req)
{
	static char path[4][512];
	static int which;
	char *p = path[which++ % 4];

	ck_assert_int_eq(gpuos_jit_cache_path(req, p, sizeof(path[0])), 0);
	return p;
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) ? -1 : st.st_size;
}

/* The ELF type of symbol @name in the image, or -1 if it has none. */
static int sym_type(const struct gpuos_jit_image *img, const char *name)
{
	void *copy = malloc(img->size);
	Elf_Scn *scn = NULL;
	int type = -1;
	Elf *e;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, img->data, img->size);
	ck_assert_uint_ne(elf_version(EV_CURRENT), EV_NONE);
	e = elf_memory(copy, img->size);
	ck_assert_ptr_nonnull(e);
	while (type < 0 && (scn = elf_nextscn(e, scn))) {
		Elf_Data *d = elf_getdata(scn, NULL);
		GElf_Shdr sh;
		GElf_Sym s;

		ck_assert_ptr_nonnull(gelf_getshdr(scn, &sh));
		if (sh.sh_type != SHT_SYMTAB || !d || !sh.sh_entsize)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			const char *n;

			ck_assert_ptr_nonnull(gelf_getsym(d, (int)i, &s));
			n = elf_strptr(e, sh.sh_link, s.st_name);
			if (n && !strcmp(n, name))
				type = GELF_ST_TYPE(s.st_info);
		}
	}
	elf_end(e);
	free(copy);
	return type;
}

/* An executable cubin for @sm holding the operator and its entry pointer. */
static void check_image(const struct gpuos_jit_image *img, unsigned sm)
{
	struct gpuos_cubin *c = NULL;
	Elf64_Ehdr eh;

	ck_assert_ptr_nonnull(img->data);
	ck_assert_uint_ge(img->size, sizeof(eh));
	memcpy(&eh, img->data, sizeof(eh));
	ck_assert_int_eq(memcmp(eh.e_ident, ELFMAG, SELFMAG), 0);
	ck_assert_int_eq(eh.e_ident[EI_CLASS], ELFCLASS64);
	ck_assert_int_eq(eh.e_type, ET_EXEC);
	ck_assert_int_eq(eh.e_machine, 190); /* EM_CUDA */
	ck_assert_uint_eq((eh.e_flags >> 8) & 0xff, sm);
	ck_assert_int_eq(gpuos_cubin_open(img->data, img->size, &c), 0);
	ck_assert_uint_eq(gpuos_cubin_arch(c), sm);
	gpuos_cubin_close(c);
	ck_assert_int_eq(sym_type(img, "op_scale"), STT_FUNC);
	ck_assert_int_eq(sym_type(img, "gpuos_op_entry"), STT_OBJECT);
}

static void build_ok(const struct gpuos_jit_req *req, struct gpuos_jit_image *img, bool cached)
{
	ck_assert_int_eq(gpuos_jit_build(req, img), 0);
	ck_assert_int_eq(img->cached, cached);
	check_image(img, req->sm);
}

START_TEST(test_compile)
{
	static const unsigned sms[] = { 80, 90 };
	const char *dir = newdir();
	struct gpuos_jit_req req = mkreq(op_scale, sms[_i], dir);
	struct gpuos_jit_stats a, b;
	struct gpuos_jit_image img;
	const char *path = cache_path(&req);

	ck_assert_int_eq(strncmp(path, dir, strlen(dir)), 0);
	ck_assert_int_eq(file_size(path), -1);
	stats(&a);
	build_ok(&req, &img, false);
	stats(&b);
	ck_assert_uint_eq(b.compiles, a.compiles + 1);
	ck_assert_uint_eq(b.misses, a.misses + 1);
	ck_assert_uint_eq(b.hits, a.hits);
	ck_assert_uint_eq(b.nvrtc_loaded, 1);
	/* The file: the image, then its 32-byte digest. */
	ck_assert_int_eq(file_size(path), (off_t)img.size + 32);
	gpuos_jit_image_free(&img);
	ck_assert_ptr_null(img.data);
	gpuos_jit_image_free(&img);
	gpuos_jit_image_free(NULL);
}
END_TEST

/*
 * What the operator calls is in the image: nvlink drops code no kernel reaches, and these
 * calls became calls to address 0 (an illegal address on an H100) until the build added an
 * anchor kernel.
 */
START_TEST(test_callees_kept)
{
	static const unsigned sms[] = { 80, 90 };
	struct gpuos_jit_req req = mkreq(op_calls, sms[_i], newdir());
	struct gpuos_jit_image img;

	ck_assert_int_eq(gpuos_jit_build(&req, &img), 0);
	ck_assert_int_eq(sym_type(&img, "op_calls"), STT_FUNC);
	ck_assert_int_eq(sym_type(&img, "gpuos_test_helper"), STT_FUNC);
	ck_assert_int_eq(sym_type(&img, "__cuda_sm3x_div_rn_noftz_f32_slowpath"), STT_FUNC);
	gpuos_jit_image_free(&img);
}
END_TEST

START_TEST(test_hit)
{
	struct gpuos_jit_req req = mkreq(op_scale, 90, newdir());
	struct gpuos_jit_image cold, warm;
	struct gpuos_jit_stats a, b;

	build_ok(&req, &cold, false);
	stats(&a);
	build_ok(&req, &warm, true);
	stats(&b);
	ck_assert_uint_eq(b.hits, a.hits + 1);
	ck_assert_uint_eq(b.compiles, a.compiles);
	ck_assert_uint_eq(b.misses, a.misses);
	ck_assert_uint_eq(warm.size, cold.size);
	ck_assert_int_eq(memcmp(warm.data, cold.data, cold.size), 0);
	gpuos_jit_image_free(&cold);
	gpuos_jit_image_free(&warm);
}
END_TEST

static int find_toolchain(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	return strstr(info->dlpi_name, "libnvrtc") || strstr(info->dlpi_name, "libnvJitLink");
}

/* `check_jit --hit-child DIR SM`: a fresh process whose one build must hit without NVRTC. */
static int hit_child(const char *dir, unsigned sm)
{
	struct gpuos_jit_req req = mkreq(op_scale, sm, dir);
	struct gpuos_jit_image img;
	struct gpuos_jit_stats st;
	int ret = gpuos_jit_build(&req, &img);

	gpuos_jit_get_stats(&st);
	if (ret || !img.cached)
		return 10;
	if (st.nvrtc_loaded || st.compiles || st.hits != 1 || st.misses)
		return 11;
	if (dl_iterate_phdr(find_toolchain, NULL))
		return 12; /* mapped anyway */
	gpuos_jit_image_free(&img);
	return 0;
}

START_TEST(test_hit_without_nvrtc)
{
	const char *dir = newdir();
	struct gpuos_jit_req req = mkreq(op_scale, 90, dir);
	struct gpuos_jit_image img;
	char sm[8];
	int status;
	pid_t pid;

	build_ok(&req, &img, false);
	gpuos_jit_image_free(&img);
	/* exec, not just fork: this process has NVRTC mapped now. */
	snprintf(sm, sizeof(sm), "%u", req.sm);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		execl("/proc/self/exe", "check_jit", "--hit-child", dir, sm, (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

START_TEST(test_keys)
{
	const char *dir = newdir(), *opt = "-DGPUOS_X=1";
	struct gpuos_jit_req req = mkreq(op_scale, 90, dir), r;
	char base[512], home[512], want[600], path[600];

	snprintf(base, sizeof(base), "%s", cache_path(&req));
	ck_assert_str_eq(cache_path(&req), base); /* stable */
	r = req;
	r.sm = 80;
	ck_assert_str_ne(cache_path(&r), base);
	r = req;
	r.src = op_scale3;
	r.len = strlen(op_scale3);
	ck_assert_str_ne(cache_path(&r), base);
	r = req;
	r.driver_version = 13010;
	ck_assert_str_ne(cache_path(&r), base);
	r = req;
	r.opts = &opt;
	r.nopts = 1;
	ck_assert_str_ne(cache_path(&r), base);
	r = req;
	r.name = "another_name"; /* only for messages */
	ck_assert_str_eq(cache_path(&r), base);

	/* The default folder: $XDG_CACHE_HOME/gpuos, else $HOME/.cache/gpuos. */
	snprintf(home, sizeof(home), "%s", newdir());
	r = req;
	r.cache_dir = "";
	setenv("XDG_CACHE_HOME", home, 1);
	snprintf(want, sizeof(want), "%s/gpuos/%s", home, strrchr(base, '/') + 1);
	ck_assert_int_eq(gpuos_jit_cache_path(&r, path, sizeof(path)), 0);
	ck_assert_str_eq(path, want);
	setenv("XDG_CACHE_HOME", "relative", 1); /* ignored, as the XDG spec says */
	setenv("HOME", home, 1);
	r.cache_dir = NULL;
	snprintf(want, sizeof(want), "%s/.cache/gpuos/%s", home, strrchr(base, '/') + 1);
	ck_assert_int_eq(gpuos_jit_cache_path(&r, path, sizeof(path)), 0);
	ck_assert_str_eq(path, want);
	ck_assert_int_eq(gpuos_jit_cache_path(&r, path, 10), -ENAMETOOLONG);
	unsetenv("XDG_CACHE_HOME");
	unsetenv("HOME");
	ck_assert_int_eq(gpuos_jit_cache_path(&r, path, sizeof(path)), -ENOENT);
}
END_TEST

/* Builds that differ only in driver version or options are separate entries. */
START_TEST(test_keys_build)
{
	const char *opt = "-DGPUOS_X=1";
	struct gpuos_jit_req req = mkreq(op_scale, 90, newdir()), r = req;
	struct gpuos_jit_image img;
	struct gpuos_jit_stats a, b;

	build_ok(&req, &img, false);
	gpuos_jit_image_free(&img);
	stats(&a);
	r.driver_version = 13010;
	build_ok(&r, &img, false);
	gpuos_jit_image_free(&img);
	r = req;
	r.opts = &opt;
	r.nopts = 1;
	build_ok(&r, &img, false);
	gpuos_jit_image_free(&img);
	build_ok(&req, &img, true);
	gpuos_jit_image_free(&img);
	stats(&b);
	ck_assert_uint_eq(b.compiles, a.compiles + 2);
	ck_assert_uint_eq(b.hits, a.hits + 1);
}
END_TEST

static void corrupt_then_rebuild(const struct gpuos_jit_req *req, int how)
{
	const char *path = cache_path(req);
	struct gpuos_jit_image img;
	struct gpuos_jit_stats a, b;
	off_t size = file_size(path);
	unsigned char c;
	int fd;

	ck_assert_int_gt(size, 64);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	switch (how) {
	case 0: /* torn */
		ck_assert_int_eq(ftruncate(fd, size / 2), 0);
		break;
	case 1: /* empty */
		ck_assert_int_eq(ftruncate(fd, 0), 0);
		break;
	case 2: /* one bit in the code, which no header check would notice */
	case 3: /* the ELF magic */
	case 4: /* the digest */
		size = how == 2 ? size / 2 : how == 3 ? 1 : size - 1;
		ck_assert_int_eq(pread(fd, &c, 1, size), 1);
		c ^= 0x10;
		ck_assert_int_eq(pwrite(fd, &c, 1, size), 1);
		break;
	}
	close(fd);
	stats(&a);
	build_ok(req, &img, false);
	stats(&b);
	ck_assert_uint_eq(b.compiles, a.compiles + 1);
	ck_assert_uint_eq(b.misses, a.misses + 1);
	ck_assert_int_eq(file_size(path), (off_t)img.size + 32); /* repaired */
	gpuos_jit_image_free(&img);
	build_ok(req, &img, true);
	gpuos_jit_image_free(&img);
}

START_TEST(test_corrupt)
{
	struct gpuos_jit_req req = mkreq(op_scale, 90, newdir());
	struct gpuos_jit_image img;

	build_ok(&req, &img, false);
	gpuos_jit_image_free(&img);
	for (int how = 0; how < 5; how++)
		corrupt_then_rebuild(&req, how);
}
END_TEST

START_TEST(test_unwritable)
{
	const char *dir = newdir();
	char file[512], sub[600];
	struct gpuos_jit_req req;
	struct gpuos_jit_image img;
	struct gpuos_jit_stats a, b;
	int fd;

	/* A folder under a regular file: unwritable even for root. */
	snprintf(file, sizeof(file), "%s/file", dir);
	fd = open(file, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(sub, sizeof(sub), "%s/cache", file);
	req = mkreq(op_scale, 90, sub);
	stats(&a);
	build_ok(&req, &img, false);
	gpuos_jit_image_free(&img);
	build_ok(&req, &img, false);
	gpuos_jit_image_free(&img);
	stats(&b);
	ck_assert_uint_eq(b.compiles, a.compiles + 2);
	if (geteuid()) {
		/* A read-only folder, where permissions apply. */
		snprintf(sub, sizeof(sub), "%s/ro", dir);
		ck_assert_int_eq(mkdir(sub, 0500), 0);
		req.cache_dir = sub;
		build_ok(&req, &img, false);
		gpuos_jit_image_free(&img);
	}
}
END_TEST

static void build_fails(const char *src, int want)
{
	const char *dir = newdir();
	struct gpuos_jit_req req = mkreq(src, 90, dir);
	struct gpuos_jit_image img = { .data = (void *)1 };
	struct gpuos_jit_stats a, b;
	const char *path = cache_path(&req);

	stats(&a);
	ck_assert_int_eq(gpuos_jit_build(&req, &img), want);
	stats(&b);
	ck_assert_ptr_null(img.data);
	ck_assert_uint_eq(img.size, 0);
	ck_assert_uint_eq(b.compiles, a.compiles + 1);
	ck_assert_int_eq(file_size(path), -1);
	/* Failures are not cached: the next attempt compiles again. */
	ck_assert_int_eq(gpuos_jit_build(&req, &img), want);
	stats(&a);
	ck_assert_uint_eq(a.compiles, b.compiles + 1);
}

START_TEST(test_syntax_error)
{
	build_fails(op_syntax, -EINVAL);
}
END_TEST

START_TEST(test_link_error)
{
	build_fails(op_unresolved, -EINVAL);
}
END_TEST

START_TEST(test_bad_option)
{
	const char *opt = "--no-such-option";
	struct gpuos_jit_req req = mkreq(op_scale, 90, newdir());
	struct gpuos_jit_image img;

	req.opts = &opt;
	req.nopts = 1;
	ck_assert_int_eq(gpuos_jit_build(&req, &img), -EINVAL);
	ck_assert_ptr_null(img.data);
}
END_TEST

START_TEST(test_bad_args)
{
	struct gpuos_jit_req req = mkreq(op_scale, 90, newdir()), r;
	struct gpuos_jit_image img;
	char path[512];

	ck_assert_int_eq(gpuos_jit_build(NULL, &img), -EINVAL);
	ck_assert_int_eq(gpuos_jit_build(&req, NULL), -EINVAL);
	r = req;
	r.src = NULL;
	ck_assert_int_eq(gpuos_jit_build(&r, &img), -EINVAL);
	r = req;
	r.len = 0;
	ck_assert_int_eq(gpuos_jit_build(&r, &img), -EINVAL);
	r = req;
	r.sm = 0;
	ck_assert_int_eq(gpuos_jit_build(&r, &img), -EINVAL);
	r.sm = 256;
	ck_assert_int_eq(gpuos_jit_build(&r, &img), -EINVAL);
	r = req;
	r.nopts = 1;
	ck_assert_int_eq(gpuos_jit_build(&r, &img), -EINVAL);
	r.nopts = GPUOS_JIT_MAX_OPTS + 1;
	ck_assert_int_eq(gpuos_jit_cache_path(&r, path, sizeof(path)), -EINVAL);
	ck_assert_int_eq(gpuos_jit_cache_path(&req, NULL, 0), -EINVAL);
	ck_assert_int_eq(gpuos_jit_request(&req, NULL, NULL), -EINVAL);
	ck_assert_int_eq(gpuos_jit_request(NULL, NULL, NULL), -EINVAL);
}
END_TEST

/* ---- the background thread ---- */

#define NREQ 12

static struct {
	pthread_mutex_t lock;
	int n, ctx[NREQ + 4], err[NREQ + 4];
	unsigned sm[NREQ + 4];
	bool cached[NREQ + 4];
	struct gpuos_jit_image kept;
	pthread_t thread;
} cb = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Under CK_FORK=no the tests share one process. */
static void cb_reset(void)
{
	pthread_mutex_lock(&cb.lock);
	cb.n = 0;
	cb.kept = (struct gpuos_jit_image){ 0 };
	pthread_mutex_unlock(&cb.lock);
}

static void done(void *ctx, int err, struct gpuos_jit_image *img)
{
	pthread_mutex_lock(&cb.lock);
	ck_assert_int_lt(cb.n, NREQ + 4);
	cb.thread = pthread_self();
	cb.ctx[cb.n] = (int)(intptr_t)ctx;
	cb.err[cb.n] = err;
	ck_assert(err ? !img : img && img->data);
	if (img) {
		struct gpuos_jit_image tmp = *img;

		cb.sm[cb.n] = (*(const Elf64_Ehdr *)img->data).e_flags >> 8 & 0xff;
		cb.cached[cb.n] = img->cached;
		/* Keep the first image: moved out, the thread must not free it. */
		if (!cb.kept.data) {
			cb.kept = tmp;
			img->data = NULL;
		}
	}
	cb.n++;
	pthread_mutex_unlock(&cb.lock);
}

START_TEST(test_async)
{
	struct gpuos_jit_req req = mkreq(op_scale, 90, newdir());

	cb_reset();
	ck_assert_int_eq(gpuos_jit_request(&req, done, (void *)7), 0);
	gpuos_jit_shutdown();
	ck_assert_int_eq(cb.n, 1);
	ck_assert_int_eq(cb.ctx[0], 7);
	ck_assert_int_eq(cb.err[0], 0);
	ck_assert(!pthread_equal(cb.thread, pthread_self()));
	check_image(&cb.kept, 90);
	gpuos_jit_image_free(&cb.kept);
	gpuos_jit_shutdown(); /* twice */
}
END_TEST

START_TEST(test_async_order)
{
	const char *dir = newdir();
	char src[NREQ][sizeof(op_scale) + 32];
	struct gpuos_jit_req req;

	cb_reset();
	/* The request owns copies: the caller's buffers change right after each call. */
	for (int i = 0; i < NREQ; i++) {
		snprintf(src[i], sizeof(src[i]), "%s", i == 5 ? op_syntax : op_scale);
		req = mkreq(src[i], i % 2 ? 80 : 90, dir);
		ck_assert_int_eq(gpuos_jit_request(&req, done, (void *)(intptr_t)i), 0);
		memset(src[i], 0, sizeof(src[i]));
	}
	gpuos_jit_shutdown();
	ck_assert_int_eq(cb.n, NREQ);
	for (int i = 0; i < NREQ; i++) {
		ck_assert_int_eq(cb.ctx[i], i);
		ck_assert_int_eq(cb.err[i], i == 5 ? -EINVAL : 0);
		if (i == 5)
			continue;
		ck_assert_uint_eq(cb.sm[i], i % 2 ? 80 : 90);
		ck_assert_int_eq(cb.cached[i], i >= 2); /* two compiles, then hits */
	}
	gpuos_jit_image_free(&cb.kept);

	/* After a shutdown the next request starts a new thread. */
	cb.n = 0;
	req = mkreq(op_scale, 90, dir);
	ck_assert_int_eq(gpuos_jit_request(&req, done, (void *)42), 0);
	gpuos_jit_shutdown();
	ck_assert_int_eq(cb.n, 1);
	ck_assert_int_eq(cb.ctx[0], 42);
	gpuos_jit_image_free(&cb.kept);
}
END_TEST

/*
 * A pool of three: six cold compiles of different sources, queued at once, run on more than
 * one thread; each is answered once, built for its sm, and the cache serves them afterwards.
 */
static struct {
	pthread_mutex_t lock;
	pthread_t seen[NREQ];
	unsigned nseen;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void done_pool(void *ctx, int err, struct gpuos_jit_image *img)
{
	bool known = false;

	pthread_mutex_lock(&pool.lock);
	for (unsigned i = 0; i < pool.nseen; i++)
		known |= pthread_equal(pool.seen[i], pthread_self());
	if (!known && pool.nseen < NREQ)
		pool.seen[pool.nseen++] = pthread_self();
	pthread_mutex_unlock(&pool.lock);
	done(ctx, err, img);
}

START_TEST(test_async_pool)
{
	const char *dir = newdir();
	char src[6][sizeof(op_scale) + 32];
	struct gpuos_jit_req req;
	bool got[6] = {false};

	cb_reset();
	pool.nseen = 0;
	gpuos_jit_set_threads(3);
	for (int i = 0; i < 6; i++) {
		snprintf(src[i], sizeof(src[i]), OP_SCALE("%d.0f"), i + 2);
		req = mkreq(src[i], i % 2 ? 80 : 90, dir);
		ck_assert_int_eq(gpuos_jit_request(&req, done_pool, (void *)(intptr_t)i), 0);
	}
	gpuos_jit_shutdown();
	gpuos_jit_set_threads(1);
	ck_assert_int_eq(cb.n, 6);
	for (int i = 0; i < 6; i++) {
		int k = cb.ctx[i];

		ck_assert(k >= 0 && k < 6 && !got[k]);
		got[k] = true;
		ck_assert_int_eq(cb.err[i], 0);
		ck_assert_uint_eq(cb.sm[i], k % 2 ? 80 : 90);
		ck_assert(!cb.cached[i]);
	}
	ck_assert_uint_ge(pool.nseen, 2);
	ck_assert_uint_le(pool.nseen, 3);
	gpuos_jit_image_free(&cb.kept);

	/* the same six again: every one from the cache */
	cb_reset();
	for (int i = 0; i < 6; i++) {
		req = mkreq(src[i], i % 2 ? 80 : 90, dir);
		ck_assert_int_eq(gpuos_jit_request(&req, done, (void *)(intptr_t)i), 0);
	}
	gpuos_jit_shutdown();
	ck_assert_int_eq(cb.n, 6);
	for (int i = 0; i < 6; i++)
		ck_assert(cb.cached[i] && cb.err[i] == 0);
	gpuos_jit_image_free(&cb.kept);
}
END_TEST

/* At exit: queued requests are dropped with -ECANCELED, each answered once, none hangs. */
START_TEST(test_cancel)
{
	const char *dir = newdir();
	struct gpuos_jit_req req = mkreq(op_scale, 90, dir);
	int cancelled = 0;

	cb_reset();
	for (int i = 0; i < NREQ; i++)
		ck_assert_int_eq(gpuos_jit_request(&req, done, (void *)(intptr_t)i), 0);
	gpuos_jit_cancel();
	ck_assert_int_eq(cb.n, NREQ);
	for (int i = 0; i < NREQ; i++) {
		ck_assert(cb.err[i] == 0 || cb.err[i] == -ECANCELED);
		cancelled += cb.err[i] == -ECANCELED;
	}
	ck_assert_int_gt(cancelled, 0); /* the first compile takes far longer than the cancel */
	gpuos_jit_image_free(&cb.kept);
	gpuos_jit_cancel(); /* nothing queued, no thread: returns */
}
END_TEST

static void done_quiet(void *ctx, int err, struct gpuos_jit_image *img)
{
	(void)ctx, (void)err, (void)img;
}

/*
 * A program that exits while the first compile runs (interpose/exit.c): exit waits for the
 * compile instead of running NVRTC's destructors under it. Without that, about one child in
 * six exiting 3 to 10 ms after its request died of SIGSEGV in nvrtcCompileProgram.
 */
START_TEST(test_exit_during_compile)
{
	for (int i = 0; i < 12; i++) {
		const char *dir = newdir(); /* each child a cold cache: it compiles */
		pid_t p = fork();
		int st = 0;

		ck_assert_int_ge(p, 0);
		if (p == 0) {
			struct gpuos_jit_req req = mkreq(op_scale, 90, dir);

			if (gpuos_jit_request(&req, done_quiet, NULL))
				_exit(3);
			usleep(2000 + 1000 * i);
			exit(0);
		}
		ck_assert_int_eq(waitpid(p, &st, 0), p);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "child %d: %s %d", i, WIFSIGNALED(st) ? "signal" : "exit status",
			      WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
	}
}
END_TEST

START_TEST(test_shutdown_unstarted)
{
	gpuos_jit_shutdown();
	gpuos_jit_shutdown();
}
END_TEST

static void done_shutdown(void *ctx, int err, struct gpuos_jit_image *img)
{
	gpuos_jit_shutdown(); /* on the jit thread: returns instead of joining itself */
	done(ctx, err, img);
}

START_TEST(test_shutdown_from_callback)
{
	struct gpuos_jit_req req = mkreq(op_scale, 90, newdir());

	cb_reset();
	ck_assert_int_eq(gpuos_jit_request(&req, done_shutdown, (void *)1), 0);
	ck_assert_int_eq(gpuos_jit_request(&req, done, (void *)2), 0);
	gpuos_jit_shutdown();
	ck_assert_int_eq(cb.n, 2);
	gpuos_jit_image_free(&cb.kept);
}
END_TEST

/* A child of fork() has no jit thread: its first request starts one; the parent's stay. */
START_TEST(test_fork)
{
	struct gpuos_jit_req req = mkreq(op_scale, 90, newdir());
	int status;
	pid_t pid;

	cb_reset();
	ck_assert_int_eq(gpuos_jit_request(&req, done, (void *)1), 0);
	for (int i = 2; i < 6; i++)
		ck_assert_int_eq(gpuos_jit_request(&req, done, (void *)(intptr_t)i), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (!pid) {
		if (TSAN || ASAN)
			_exit(0);
		cb_reset(); /* cb.kept, if set, is the parent's */
		if (gpuos_jit_request(&req, done, (void *)100))
			_exit(1);
		gpuos_jit_shutdown();
		/* Exactly ours: none of the parent's queued requests ran here. */
		_exit(cb.n == 1 && cb.ctx[0] == 100 && !cb.err[0] ? 0 : 2);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	gpuos_jit_shutdown();
	ck_assert_int_eq(cb.n, 5);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(cb.ctx[i], i + 1);
	gpuos_jit_image_free(&cb.kept);
}
END_TEST

static Suite *jit_suite(void)
{
	Suite *s = suite_create("jit");
	TCase *tc = tcase_create("build");

	/* Each test process loads NVRTC and compiles: seconds, more under the sanitizers. */
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_compile, 0, 2);
	tcase_add_loop_test(tc, test_callees_kept, 0, 2);
	tcase_add_test(tc, test_hit);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_hit_without_nvrtc);
	tcase_add_test(tc, test_keys);
	tcase_add_test(tc, test_keys_build);
	tcase_add_test(tc, test_corrupt);
	tcase_add_test(tc, test_unwritable);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_link_error);
	tcase_add_test(tc, test_bad_option);
	tcase_add_test(tc, test_bad_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("async");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_async);
	tcase_add_test(tc, test_async_order);
	tcase_add_test(tc, test_async_pool);
	tcase_add_test(tc, test_shutdown_unstarted);
	tcase_add_test(tc, test_shutdown_from_callback);
	tcase_add_test(tc, test_exit_during_compile);
	tcase_add_test(tc, test_fork);
	suite_add_tcase(s, tc);
	return s;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	struct gpuos_jit_req probe = mkreq(op_scale, 90, "/nonexistent");
	char path[512];
	SRunner *sr;
	int failed;

	if (argc == 4 && !strcmp(argv[1], "--hit-child"))
		return hit_child(argv[2], (unsigned)atoi(argv[3]));
	/* Finding the libraries loads neither. */
	if (gpuos_jit_cache_path(&probe, path, sizeof(path)) == -ENOENT) {
		fprintf(stderr, "check_jit: no NVRTC/nvJitLink: skipped\n");
		return 77;
	}
	if (!mkdtemp(suitedir)) {
		perror("mkdtemp");
		return 1;
	}
	sr = srunner_create(jit_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(suitedir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return failed ? 1 : 0;
}
