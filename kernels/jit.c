// SPDX-License-Identifier: MIT
/*
 * Operator sources to executable cubins: NVRTC (-rdc) then nvJitLink, cached on disk.
 *
 * The cache key must be computable without loading NVRTC, or a warm start would pay for
 * mapping 100 MB of compiler to read a few KiB. So it does not use nvrtcVersion(): it hashes
 * the identity of the library files (size, mtime, real name) that a miss would load, found by
 * path. That changes with every release, patch releases included, which nvrtcVersion() (major
 * and minor only) would not show.
 *
 * Cache file: the cubin, then SHA-256(key || cubin), so that a torn or flipped file is a miss
 * rather than a bad image handed to the driver.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <nvJitLink.h>
#include <nvrtc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomics.h"
#include "common/log.h"
#include "kernels/jit.h"
#include "ptx_lift/ptx_lift.h"

#ifndef EM_CUDA
#define EM_CUDA 190
#endif
#define JIT_FORMAT    2u	  /* bump when the file format or the fixed options change */
#define JIT_DIGEST    32u	  /* SHA-256 */
#define JIT_MAX_IMAGE (64u << 20) /* operators are KiBs: anything bigger is not ours */

/*
 * The headers an operator may include: kernels/task.h, made into a C string by the Makefile
 * ($(BUILD)/gen/task_h.inc), and the <stdint.h> it needs, which NVRTC does not ship. The
 * 64-bit types are glibc's (LP64), so both sides agree on them.
 */
static const char jit_task_h[] =
#include "task_h.inc"
    ;
static const char jit_stdint_h[] =
    "#pragma once\n"
    "typedef signed char int8_t; typedef short int16_t; typedef int int32_t;\n"
    "typedef long int64_t; typedef unsigned char uint8_t; typedef unsigned short uint16_t;\n"
    "typedef unsigned int uint32_t; typedef unsigned long uint64_t;\n"
    "typedef long intptr_t; typedef unsigned long uintptr_t;\n";

static _Atomic unsigned st_nvrtc_loaded, st_compiles, st_hits, st_misses;

static pthread_once_t jit_once = PTHREAD_ONCE_INIT;
static void jit_atfork(void);
/* Held shared by each compile, exclusive by fork (see gpuos_jit_build); a waiting fork goes
 * before new compiles, so that a busy pool cannot hold it off. */
static pthread_rwlock_t compile_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

/* ---- SHA-256 (FIPS 180-4), for the key and the file digest ---- */

struct jit_sha {
	uint32_t h[8];
	uint64_t n;
	unsigned char buf[64];
};

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) ((x) >> (n) | (x) << (32 - (n)))

static void sha_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], s[8];

	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++)
		w[i] = w[i - 16] + w[i - 7] +
		       (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ w[i - 15] >> 3) +
		       (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ w[i - 2] >> 10);
	memcpy(s, h, sizeof(s));
	for (int i = 0; i < 64; i++) {
		uint32_t t1 = s[7] + (ROR(s[4], 6) ^ ROR(s[4], 11) ^ ROR(s[4], 25)) +
			      ((s[4] & s[5]) ^ (~s[4] & s[6])) + sha_k[i] + w[i];
		uint32_t t2 = (ROR(s[0], 2) ^ ROR(s[0], 13) ^ ROR(s[0], 22)) +
			      ((s[0] & s[1]) ^ (s[0] & s[2]) ^ (s[1] & s[2]));

		memmove(s + 1, s, 7 * sizeof(*s)); /* h=g, g=f, ..., e=d, ..., b=a */
		s[4] += t1;
		s[0] = t1 + t2;
	}
	for (int i = 0; i < 8; i++)
		h[i] += s[i];
}

static void sha_init(struct jit_sha *c)
{
	static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
				       0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

	memcpy(c->h, h0, sizeof(h0));
	c->n = 0;
}

static void sha_update(struct jit_sha *c, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len) {
		size_t used = c->n % 64, k = 64 - used < len ? 64 - used : len;

		memcpy(c->buf + used, p, k);
		c->n += k;
		p += k;
		len -= k;
		if (c->n % 64 == 0)
			sha_block(c->h, c->buf);
	}
}

static void sha_final(struct jit_sha *c, unsigned char out[JIT_DIGEST])
{
	unsigned char pad[64] = {0x80};
	uint64_t bits = c->n * 8;

	sha_update(c, pad, (c->n % 64 < 56 ? 56 : 120) - c->n % 64);
	for (int i = 0; i < 8; i++)
		pad[i] = (unsigned char)(bits >> (56 - 8 * i));
	sha_update(c, pad, 8);
	for (int i = 0; i < 32; i++)
		out[i] = (unsigned char)(c->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* Length-prefixed, so that no two different field lists hash the same bytes. */
static void sha_field(struct jit_sha *c, const void *p, size_t len)
{
	uint64_t n = len;

	sha_update(c, &n, sizeof(n));
	sha_update(c, p, len);
}

static void sha_u64(struct jit_sha *c, uint64_t v)
{
	sha_update(c, &v, sizeof(v));
}

/* ---- the toolchain: found by path, loaded on the first miss ---- */

struct jit_lib {
	const char *soname;
	char path[PATH_MAX];
	struct stat st;
	void *h;
};

static struct {
	pthread_mutex_t lock;
	int found; /* 0: not looked for yet; 1: both found; -ENOENT (logged once) */
	bool loaded;
	struct jit_lib rtc, lnk;
	unsigned char id[JIT_DIGEST]; /* the two files' identity, for the key */
} tc = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .rtc.soname = "libnvrtc.so.13",
    .lnk.soname = "libnvJitLink.so.13",
};

#define JIT_RTC_FNS(X)                                                                             \
	X(nvrtcVersion)                                                                            \
	X(nvrtcCreateProgram)                                                                      \
	X(nvrtcCompileProgram) X(nvrtcGetProgramLogSize) X(nvrtcGetProgramLog)                     \
	    X(nvrtcGetCUBINSize) X(nvrtcGetCUBIN) X(nvrtcDestroyProgram) X(nvrtcGetErrorString)
/* nvJitLink.h wraps these versioned entry points in static inline functions. */
#define JIT_LNK_FNS(X)                                                                             \
	X(nvJitLinkVersion)                                                                        \
	X(__nvJitLinkCreate_13_0)                                                                  \
	X(__nvJitLinkAddData_13_0) X(__nvJitLinkComplete_13_0)                                     \
	    X(__nvJitLinkGetLinkedCubinSize_13_0) X(__nvJitLinkGetLinkedCubin_13_0)                \
		X(__nvJitLinkGetErrorLogSize_13_0) X(__nvJitLinkGetErrorLog_13_0)                  \
		    X(__nvJitLinkDestroy_13_0)

static struct {
#define X(f) __typeof__(f) *f;
	JIT_RTC_FNS(X) JIT_LNK_FNS(X)
#undef X
} fn;

struct jit_mapped {
	const char *base;
	char *dir;
	size_t len;
};

static int jit_mapped_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct jit_mapped *m = arg;
	const char *slash = strrchr(info->dlpi_name, '/');

	(void)size;
	if (!slash || strcmp(slash + 1, m->base))
		return 0;
	snprintf(m->dir, m->len, "%.*s", (int)(slash - info->dlpi_name), info->dlpi_name);
	return 1;
}

/* The folder of a mapped library named @base: one already loaded wins, as with dlopen. */
static bool jit_mapped_dir(const char *base, char *dir, size_t len)
{
	struct jit_mapped m = {base, dir, len};

	return dl_iterate_phdr(jit_mapped_cb, &m) == 1;
}

static bool jit_try_dir(struct jit_lib *l, const char *dir, size_t dlen)
{
	int n = snprintf(l->path, sizeof(l->path), "%.*s/%s", (int)dlen, dir, l->soname);

	return dlen && n > 0 && (size_t)n < sizeof(l->path) && !stat(l->path, &l->st) &&
	       S_ISREG(l->st.st_mode);
}

/*
 * Where a miss would load @l from, without loading it: a copy already mapped, then the
 * folders the dynamic linker or a CUDA install would use, then the folder of the process's
 * libcudart (PyTorch wheels keep libcudart, libnvrtc and libnvJitLink together). Only when
 * none holds it do we ask the dynamic linker itself (ld.so.cache), which loads it.
 */
static int jit_locate(struct jit_lib *l)
{
	const char *env = secure_getenv("LD_LIBRARY_PATH"), *home = secure_getenv("CUDA_HOME");
	char dir[PATH_MAX];
	struct link_map *lm;

	if (jit_mapped_dir(l->soname, dir, sizeof(dir)) && jit_try_dir(l, dir, strlen(dir)))
		return 0;
	for (const char *p = env; p && *p; p += *p == ':') {
		size_t n = strcspn(p, ":");

		if (jit_try_dir(l, p, n))
			return 0;
		p += n;
	}
	if (home && snprintf(dir, sizeof(dir), "%s/lib64", home) < (int)sizeof(dir) &&
	    jit_try_dir(l, dir, strlen(dir)))
		return 0;
	if (jit_try_dir(l, "/usr/local/cuda/lib64", 21))
		return 0;
	if (jit_mapped_dir("libcudart.so.13", dir, sizeof(dir)) && jit_try_dir(l, dir, strlen(dir)))
		return 0;
	l->h = dlopen(l->soname, RTLD_NOW | RTLD_LOCAL);
	if (!l->h)
		return -ENOENT;
	if (l == &tc.rtc)
		fetch_add_relaxed(&st_nvrtc_loaded, 1);
	if (dlinfo(l->h, RTLD_DI_LINKMAP, &lm) ||
	    snprintf(l->path, sizeof(l->path), "%s", lm->l_name) >= (int)sizeof(l->path) ||
	    stat(l->path, &l->st))
		return -ENOENT;
	return 0;
}

/* A new release or patch changes the size and mtime; some installs also the real name. */
static void jit_lib_id(struct jit_sha *c, const struct jit_lib *l)
{
	char real[PATH_MAX];
	const char *base;

	if (!realpath(l->path, real))
		snprintf(real, sizeof(real), "%s", l->path);
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	sha_field(c, base, strlen(base));
	sha_u64(c, (uint64_t)l->st.st_size);
	sha_u64(c, (uint64_t)l->st.st_mtim.tv_sec);
	sha_u64(c, (uint64_t)l->st.st_mtim.tv_nsec);
}

static int jit_find_locked(void)
{
	struct jit_sha c;

	if (tc.found)
		return tc.found < 0 ? tc.found : 0;
	if (jit_locate(&tc.rtc) || jit_locate(&tc.lnk)) {
		gpuos_warn("jit: no %s and %s (set CUDA_HOME): operators stay uncompiled",
			   tc.rtc.soname, tc.lnk.soname);
		return tc.found = -ENOENT;
	}
	sha_init(&c);
	jit_lib_id(&c, &tc.rtc);
	jit_lib_id(&c, &tc.lnk);
	sha_final(&c, tc.id);
	tc.found = 1;
	return 0;
}

static int jit_find(void)
{
	int ret;

	pthread_once(&jit_once, jit_atfork);
	pthread_mutex_lock(&tc.lock);
	ret = jit_find_locked();
	pthread_mutex_unlock(&tc.lock);
	return ret;
}

/* Load both libraries (first miss only) and resolve what we call. */
static int jit_load(void)
{
	const char *missing = NULL, *slash;
	char builtins[PATH_MAX];
	int ret = 0, a = 0, b = 0;
	unsigned c = 0, d = 0;
	void *h;

	pthread_mutex_lock(&tc.lock);
	if (tc.loaded || (ret = jit_find_locked()))
		goto out;
	ret = -ENOENT;
	if (!tc.rtc.h && (tc.rtc.h = dlopen(tc.rtc.path, RTLD_NOW | RTLD_LOCAL)))
		fetch_add_relaxed(&st_nvrtc_loaded, 1);
	if (!tc.lnk.h)
		tc.lnk.h = dlopen(tc.lnk.path, RTLD_NOW | RTLD_LOCAL);
	if (!tc.rtc.h || !tc.lnk.h) {
		gpuos_warn("jit: cannot load %s: %s", tc.rtc.h ? tc.lnk.path : tc.rtc.path,
			   dlerror());
		goto out;
	}
#define X(f)                                                                                       \
	if (!missing && !(*(void **)&fn.f = dlsym(h, #f)))                                         \
		missing = #f;
	h = tc.rtc.h;
	JIT_RTC_FNS(X)
	h = tc.lnk.h;
	JIT_LNK_FNS(X)
#undef X
	if (missing) {
		gpuos_warn("jit: the CUDA toolchain lacks %s", missing);
		goto out;
	}
	fn.nvrtcVersion(&a, &b);
	fn.nvJitLinkVersion(&c, &d);
	gpuos_debug("jit: NVRTC %d.%d (%s), nvJitLink %u.%u", a, b, tc.rtc.path, c, d);
	/*
	 * NVRTC dlopens libnvrtc-builtins.so.<major>.<minor> by name at its first compile, which
	 * fails outside the linker's path (a PyTorch wheel) unless the one beside it is loaded.
	 */
	slash = strrchr(tc.rtc.path, '/');
	if (slash &&
	    snprintf(builtins, sizeof(builtins), "%.*s/libnvrtc-builtins.so.%d.%d",
		     (int)(slash - tc.rtc.path), tc.rtc.path, a, b) < (int)sizeof(builtins))
		dlopen(builtins, RTLD_NOW | RTLD_LOCAL);
	/* Registered after the libraries' own exit-time destructors (their dlopen registered
	 * those), so it runs before them: a compile in progress at exit finishes before the
	 * compiler's state is destroyed under it. */
	atexit(gpuos_jit_cancel);
	tc.loaded = true;
	ret = 0;
out:
	if (ret)
		tc.found = ret; /* logged once: later misses fail without trying again */
	pthread_mutex_unlock(&tc.lock);
	return ret;
}

/* ---- requests, keys and the cache ---- */

static int jit_req_check(const struct gpuos_jit_req *req)
{
	if (!req || !req->src || !req->len || !req->sm || req->sm > 255 ||
	    req->nopts > GPUOS_JIT_MAX_OPTS || (req->nopts && !req->opts) ||
	    (req->ptx_len && !req->ptx))
		return -EINVAL;
	for (unsigned i = 0; i < req->nopts; i++)
		if (!req->opts[i])
			return -EINVAL;
	return 0;
}

/* Must follow jit_find(). */
static void jit_key(const struct gpuos_jit_req *req, unsigned char key[JIT_DIGEST])
{
	struct jit_sha c;

	sha_init(&c);
	sha_u64(&c, JIT_FORMAT);
	sha_u64(&c, req->sm);
	sha_u64(&c, (uint64_t)(int64_t)req->driver_version);
	sha_update(&c, tc.id, sizeof(tc.id));
	sha_field(&c, jit_task_h, sizeof(jit_task_h) - 1);
	sha_field(&c, jit_stdint_h, sizeof(jit_stdint_h) - 1);
	sha_u64(&c, req->nopts);
	for (unsigned i = 0; i < req->nopts; i++)
		sha_field(&c, req->opts[i], strlen(req->opts[i]));
	sha_field(&c, req->src, req->len);
	if (req->ptx_len) /* absent and empty differ from any real PTX */
		sha_field(&c, req->ptx, req->ptx_len);
	sha_final(&c, key);
}

static void jit_digest(const unsigned char key[JIT_DIGEST], const void *img, size_t len,
		       unsigned char out[JIT_DIGEST])
{
	struct jit_sha c;

	sha_init(&c);
	sha_update(&c, key, JIT_DIGEST);
	sha_update(&c, img, len);
	sha_final(&c, out);
}

/* The cache folder and file of @req in dir and path; -ENOENT if there is no folder. */
static int jit_paths(const struct gpuos_jit_req *req, const unsigned char key[JIT_DIGEST],
		     char *dir, size_t dlen, char *path, size_t plen)
{
	const char *xdg = secure_getenv("XDG_CACHE_HOME"), *home = secure_getenv("HOME");
	char hex[2 * JIT_DIGEST + 1];
	int n;

	if (req->cache_dir && req->cache_dir[0])
		n = snprintf(dir, dlen, "%s", req->cache_dir);
	else if (xdg && xdg[0] == '/') /* the XDG spec: relative values are to be ignored */
		n = snprintf(dir, dlen, "%s/gpuos", xdg);
	else if (home && home[0])
		n = snprintf(dir, dlen, "%s/.cache/gpuos", home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= dlen)
		return -ENAMETOOLONG;
	for (unsigned i = 0; i < JIT_DIGEST; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	n = snprintf(path, plen, "%s/%s.cubin", dir, hex);
	return n < 0 || (size_t)n >= plen ? -ENAMETOOLONG : 0;
}

/* An executable cubin for @sm, or -EINVAL. */
static int jit_check_cubin(const void *buf, size_t len, unsigned sm)
{
	struct gpuos_cubin *c;
	Elf64_Ehdr eh;
	unsigned arch;
	int ret;

	if (len < sizeof(eh))
		return -EINVAL;
	memcpy(&eh, buf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_type != ET_EXEC || eh.e_machine != EM_CUDA)
		return -EINVAL;
	/* The ptx_lift parser checks the tables fit and reads the sm out of e_flags. */
	ret = gpuos_cubin_open(buf, len, &c);
	if (ret)
		return ret;
	arch = gpuos_cubin_arch(c);
	gpuos_cubin_close(c);
	return arch == sm ? 0 : -EINVAL;
}

static int jit_read_file(const char *path, void **buf, size_t *len)
{
	struct stat st;
	size_t got = 0;
	int fd, ret = 0;

	*buf = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > JIT_MAX_IMAGE ||
	    !(*buf = malloc(st.st_size ? st.st_size : 1))) {
		ret = -EINVAL;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, (char *)*buf + got, st.st_size - got);

		if (n <= 0 && !(n < 0 && errno == EINTR)) {
			ret = -EIO;
			goto out;
		}
		got += n > 0 ? n : 0;
	}
	*len = got;
out:
	close(fd);
	if (ret) {
		free(*buf);
		*buf = NULL;
	}
	return ret;
}

static int jit_cache_read(const char *path, const unsigned char key[JIT_DIGEST], unsigned sm,
			  struct gpuos_jit_image *out)
{
	unsigned char d[JIT_DIGEST];
	void *buf;
	size_t len = 0;
	int ret = jit_read_file(path, &buf, &len);

	if (ret)
		return ret;
	ret = -EINVAL;
	if (len > JIT_DIGEST) {
		len -= JIT_DIGEST;
		jit_digest(key, buf, len, d);
		if (!memcmp(d, (char *)buf + len, JIT_DIGEST))
			ret = jit_check_cubin(buf, len, sm);
	}
	if (ret) {
		free(buf);
		return ret;
	}
	*out = (struct gpuos_jit_image){.data = buf, .size = len, .cached = true};
	return 0;
}

static int jit_write_all(int fd, const void *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p = (const char *)p + n;
		len -= n;
	}
	return 0;
}

static int jit_mkdirs(char *dir)
{
	for (char *p = dir + 1;; p++) {
		char c = *p;

		if (c && c != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST) {
			*p = c;
			return -errno;
		}
		*p = c;
		if (!c)
			return 0;
	}
}

/* Best effort: readers see the old file or the whole new one (rename), never a torn one. */
static void jit_cache_write(char *dir, const char *path, const unsigned char key[JIT_DIGEST],
			    const struct gpuos_jit_image *img)
{
	char tmp[PATH_MAX];
	unsigned char d[JIT_DIGEST];
	int fd = -1, ret;

	ret = jit_mkdirs(dir);
	if (!ret && snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		ret = -ENAMETOOLONG;
	if (!ret && (fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		ret = -errno;
	if (fd >= 0) {
		jit_digest(key, img->data, img->size, d);
		ret = jit_write_all(fd, img->data, img->size);
		if (!ret)
			ret = jit_write_all(fd, d, sizeof(d));
		if (close(fd) && !ret)
			ret = -errno;
		if (!ret && rename(tmp, path))
			ret = -errno;
		if (ret)
			unlink(tmp);
	}
	if (ret)
		gpuos_debug("jit: not caching %s: %s", path, strerror(-ret));
}

/* ---- compile and link ---- */

static int jit_rtc_errno(nvrtcResult r)
{
	if (r == NVRTC_ERROR_OUT_OF_MEMORY)
		return -ENOMEM;
	if (r == NVRTC_ERROR_COMPILATION || r == NVRTC_ERROR_INVALID_OPTION ||
	    r == NVRTC_ERROR_INVALID_INPUT)
		return -EINVAL;
	return -EIO;
}

/* The first lines of a compiler log as one line, so that a failure is one message. */
static void jit_log_head(const char *log, char *buf, size_t len)
{
	size_t o = 0;
	int lines = 0;

	for (const char *p = log; *p && lines < 3 && o + 4 < len; p++) {
		if (*p != '\n')
			buf[o++] = *p;
		else if (p[1] && ++lines < 3)
			o += (size_t)snprintf(buf + o, len - o, " | ");
	}
	buf[o < len ? o : len - 1] = '\0';
}

static int jit_link(const char *name, const char *arch, const void *rel, size_t n,
		    const struct gpuos_jit_req *req, struct gpuos_jit_image *out)
{
	nvJitLinkHandle h = NULL;
	nvJitLinkResult r;
	char *log = NULL, head[400] = "";
	size_t loglen = 0;
	int ret = -EIO;

	/* the PTX is compiled here: it gets the register cap the source got (see ops.c) */
	const char *lopts[2] = {arch, NULL};
	uint32_t nl = 1;
	for (unsigned i = 0; req->ptx_len && i < req->nopts; i++)
		if (!strncmp(req->opts[i], "-maxrregcount=", 14)) {
			lopts[1] = req->opts[i];
			nl = 2;
		}
	r = fn.__nvJitLinkCreate_13_0(&h, nl, lopts);
	if (!r)
		r = fn.__nvJitLinkAddData_13_0(h, NVJITLINK_INPUT_CUBIN, rel, n, name);
	if (!r && req->ptx_len) {
		/* compiled by nvJitLink for the same arch, then linked; it wants the text
		 * NUL-terminated, the NUL counted */
		char *ptx = malloc(req->ptx_len + 1);
		if (!ptx) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(ptx, req->ptx, req->ptx_len);
		ptx[req->ptx_len] = 0;
		r = fn.__nvJitLinkAddData_13_0(h, NVJITLINK_INPUT_PTX, ptx, req->ptx_len + 1,
					       "lifted.ptx");
		free(ptx);
	}
	if (!r)
		r = fn.__nvJitLinkComplete_13_0(h);
	if (!r)
		r = fn.__nvJitLinkGetLinkedCubinSize_13_0(h, &out->size);
	if (!r && !(out->data = malloc(out->size))) {
		ret = -ENOMEM;
		goto out;
	}
	if (!r)
		r = fn.__nvJitLinkGetLinkedCubin_13_0(h, out->data);
	if (!r) {
		ret = 0;
		goto out;
	}
	if (h && !fn.__nvJitLinkGetErrorLogSize_13_0(h, &loglen) && loglen &&
	    (log = malloc(loglen)) && !fn.__nvJitLinkGetErrorLog_13_0(h, log))
		jit_log_head(log, head, sizeof(head));
	gpuos_warn("jit: %s: link failed (nvJitLink error %d): %s", name, (int)r, head);
	/* An undefined reference is NVJITLINK_ERROR_INTERNAL too: blame the source. */
	ret = -EINVAL;
out:
	if (ret)
		gpuos_jit_image_free(out);
	free(log);
	if (h)
		fn.__nvJitLinkDestroy_13_0(&h);
	return ret;
}

/* Never launched; keeps what the operator calls in the linked image (see jit.h). */
static const char jit_anchor[] =
	"\nextern \"C\" __global__ void gpuos_op_anchor(void)\n"
	"{\n"
	"\tif (gpuos_op_entry)\n"
	"\t\tgpuos_op_entry(nullptr, 0, nullptr);\n"
	"}\n";

static int jit_compile(const struct gpuos_jit_req *req, const char *name,
		       struct gpuos_jit_image *out)
{
	const char *opts[4 + GPUOS_JIT_MAX_OPTS], *hdrs[] = {jit_task_h, jit_stdint_h};
	const char *hdr_names[] = {"gpuos_task.h", "stdint.h"};
	char arch[16], head[400] = "", *src, *log = NULL;
	nvrtcProgram prog = NULL;
	void *rel = NULL;
	size_t n = 0;
	nvrtcResult r;
	int ret = -ENOMEM;

	snprintf(arch, sizeof(arch), "-arch=sm_%u", req->sm);
	opts[0] = arch;
	opts[1] = "-rdc=true"; /* absolute code addresses: see the header */
	opts[2] = "-default-device";
	opts[3] = "-std=c++17";
	if (req->nopts)
		memcpy(opts + 4, req->opts, req->nopts * sizeof(*opts));
	n = strnlen(req->src, req->len); /* NVRTC wants a C string */
	src = malloc(n + sizeof(jit_anchor));
	if (!src)
		return -ENOMEM;
	memcpy(src, req->src, n);
	memcpy(src + n, jit_anchor, sizeof(jit_anchor));
	n = 0;
	r = fn.nvrtcCreateProgram(&prog, src, name, 2, hdrs, hdr_names);
	if (!r) {
		fetch_add_relaxed(&st_compiles, 1);
		r = fn.nvrtcCompileProgram(prog, 4 + req->nopts, opts);
	}
	if (r && prog && !fn.nvrtcGetProgramLogSize(prog, &n) && n > 1 && (log = malloc(n)) &&
	    !fn.nvrtcGetProgramLog(prog, log))
		jit_log_head(log, head, sizeof(head));
	if (r) {
		gpuos_warn("jit: %s: %s: %s", name, fn.nvrtcGetErrorString(r), head);
		ret = jit_rtc_errno(r);
		goto out;
	}
	if (fn.nvrtcGetCUBINSize(prog, &n) || !n || !(rel = malloc(n)) ||
	    fn.nvrtcGetCUBIN(prog, rel)) {
		gpuos_warn("jit: %s: NVRTC gave no cubin", name);
		ret = rel ? -EIO : -ENOMEM;
		goto out;
	}
	ret = jit_link(name, arch, rel, n, req, out);
out:
	if (prog)
		fn.nvrtcDestroyProgram(&prog);
	free(rel);
	free(log);
	free(src);
	return ret;
}

int gpuos_jit_cache_path(const struct gpuos_jit_req *req, char *buf, size_t len)
{
	unsigned char key[JIT_DIGEST];
	char dir[PATH_MAX];
	int ret = jit_req_check(req);

	if (ret || !buf)
		return ret ? ret : -EINVAL;
	ret = jit_find();
	if (ret)
		return ret;
	jit_key(req, key);
	return jit_paths(req, key, dir, sizeof(dir), buf, len);
}

int gpuos_jit_build(const struct gpuos_jit_req *req, struct gpuos_jit_image *out)
{
	const char *name = req && req->name ? req->name : "gpuos_op";
	unsigned char key[JIT_DIGEST];
	char dir[PATH_MAX], path[PATH_MAX];
	bool cache;
	int ret = jit_req_check(req);

	if (ret || !out)
		return -EINVAL;
	*out = (struct gpuos_jit_image){0};
	ret = jit_find();
	if (ret)
		return ret;
	jit_key(req, key);
	cache = !jit_paths(req, key, dir, sizeof(dir), path, sizeof(path));
	if (cache) {
		ret = jit_cache_read(path, key, req->sm, out);
		if (!ret) {
			fetch_add_relaxed(&st_hits, 1);
			return 0;
		}
		if (ret != -ENOENT)
			gpuos_info("jit: %s: cache file %s is unusable, rebuilding", name, path);
	}
	fetch_add_relaxed(&st_misses, 1);
	ret = jit_load();
	if (!ret) {
		/* NVRTC and nvJitLink keep locks of their own: a fork() in the middle of a
		 * compile would leave the child's copies held. jit_fork_prepare takes this lock,
		 * so a fork waits for the compile to end. */
		pthread_rwlock_rdlock(&compile_lock);
		ret = jit_compile(req, name, out);
		pthread_rwlock_unlock(&compile_lock);
	}
	if (!ret && jit_check_cubin(out->data, out->size, req->sm)) {
		gpuos_warn("jit: %s: nvJitLink gave no executable cubin for sm_%u", name, req->sm);
		ret = -EIO;
	}
	if (ret) {
		gpuos_jit_image_free(out);
		return ret;
	}
	if (cache)
		jit_cache_write(dir, path, key, out);
	return 0;
}

void gpuos_jit_image_free(struct gpuos_jit_image *img)
{
	if (!img)
		return;
	free(img->data);
	*img = (struct gpuos_jit_image){0};
}

void gpuos_jit_get_stats(struct gpuos_jit_stats *st)
{
	st->nvrtc_loaded = load_relaxed(&st_nvrtc_loaded);
	st->compiles = load_relaxed(&st_compiles);
	st->hits = load_relaxed(&st_hits);
	st->misses = load_relaxed(&st_misses);
}

/* ---- the background thread ---- */

struct jit_job {
	struct jit_job *next;
	struct gpuos_jit_req req; /* points into the job's own allocation */
	void (*done)(void *ctx, int err, struct gpuos_jit_image *img);
	void *ctx;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct jit_job *head, **tail;
	pthread_t thread[GPUOS_JIT_MAX_THREADS];
	unsigned nthreads, idle, want;
	unsigned queued; /* jobs in the list */
	bool stopping;
} jq = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
    .tail = &jq.head,
    .want = 1,
};

/* Fork with every lock held (no compile under way), so that the child's copies are
 * consistent and unlocked. Order: compile_lock, jq.lock, tc.lock; nothing takes them in
 * another order (a compile holds compile_lock alone). */
static void jit_fork_prepare(void)
{
	pthread_rwlock_wrlock(&compile_lock);
	pthread_mutex_lock(&jq.lock);
	pthread_mutex_lock(&tc.lock);
}

static void jit_fork_parent(void)
{
	pthread_mutex_unlock(&tc.lock);
	pthread_mutex_unlock(&jq.lock);
	pthread_rwlock_unlock(&compile_lock);
}

/*
 * The child has no jit threads; its queue holds the parent's requests, which are not ours.
 * Its one thread is the one that took the locks in jit_fork_prepare, so it may unlock them.
 */
static void jit_fork_child(void)
{
	while (jq.head) {
		struct jit_job *j = jq.head;

		jq.head = j->next;
		free(j);
	}
	jq.tail = &jq.head;
	jq.nthreads = jq.idle = jq.queued = 0;
	jq.stopping = false;
	pthread_cond_init(&jq.cond, NULL); /* the parent's jit threads may have been waiting */
	pthread_mutex_unlock(&tc.lock);
	pthread_mutex_unlock(&jq.lock);
	/* made anew, not unlocked: glibc takes an unlock by another thread id than the
	 * writer's (the child's is new) for a reader's and would leave it write-locked */
	compile_lock = (pthread_rwlock_t)PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
}

static void jit_atfork(void)
{
	pthread_atfork(jit_fork_prepare, jit_fork_parent, jit_fork_child);
}

static void *jit_thread(void *arg)
{
	(void)arg;
	for (;;) {
		struct gpuos_jit_image img = {0};
		struct jit_job *j;
		int err;

		pthread_mutex_lock(&jq.lock);
		jq.idle++;
		while (!jq.head && !jq.stopping)
			pthread_cond_wait(&jq.cond, &jq.lock);
		jq.idle--;
		j = jq.head;
		if (j && !(jq.head = j->next))
			jq.tail = &jq.head;
		jq.queued -= j != NULL;
		pthread_mutex_unlock(&jq.lock);
		if (!j)
			return NULL; /* stopping, and the queue is empty */
		err = gpuos_jit_build(&j->req, &img);
		j->done(j->ctx, err, err ? NULL : &img);
		gpuos_jit_image_free(&img);
		free(j);
	}
}

/* Under jq.lock: whether the calling thread is one of the pool's. */
static bool jit_is_pool_thread(void)
{
	for (unsigned i = 0; i < jq.nthreads; i++)
		if (pthread_equal(jq.thread[i], pthread_self()))
			return true;
	return false;
}

void gpuos_jit_set_threads(unsigned n)
{
	if (!n) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		n = cpus >= 8 ? (unsigned)(cpus / 4) : 1;
	}
	pthread_mutex_lock(&jq.lock);
	jq.want = n < GPUOS_JIT_MAX_THREADS ? n : GPUOS_JIT_MAX_THREADS;
	pthread_mutex_unlock(&jq.lock);
}

static char *jit_put(char **p, const char *s, size_t n)
{
	char *r = *p;

	memcpy(r, s, n);
	r[n] = '\0';
	*p += n + 1;
	return r;
}

/* One allocation holding the job, the option array, the strings and the source. */
static struct jit_job *jit_job_new(const struct gpuos_jit_req *req)
{
	size_t size =
	    sizeof(struct jit_job) + req->nopts * sizeof(char *) + req->len + 1 + req->ptx_len + 1;
	struct jit_job *j;
	const char **opts;
	char *p;

	size += (req->name ? strlen(req->name) : 0) + 1;
	size += (req->cache_dir ? strlen(req->cache_dir) : 0) + 1;
	for (unsigned i = 0; i < req->nopts; i++)
		size += strlen(req->opts[i]) + 1;
	j = calloc(1, size);
	if (!j)
		return NULL;
	j->req = *req;
	opts = (const char **)(j + 1);
	p = (char *)(opts + req->nopts);
	j->req.src = jit_put(&p, req->src, req->len);
	j->req.ptx = req->ptx_len ? jit_put(&p, req->ptx, req->ptx_len) : NULL;
	j->req.name = req->name ? jit_put(&p, req->name, strlen(req->name)) : NULL;
	j->req.cache_dir =
	    req->cache_dir ? jit_put(&p, req->cache_dir, strlen(req->cache_dir)) : NULL;
	for (unsigned i = 0; i < req->nopts; i++)
		opts[i] = jit_put(&p, req->opts[i], strlen(req->opts[i]));
	j->req.opts = req->nopts ? opts : NULL;
	return j;
}

int gpuos_jit_request(const struct gpuos_jit_req *req,
		      void (*done)(void *ctx, int err, struct gpuos_jit_image *img), void *ctx)
{
	struct jit_job *j;
	sigset_t all, old;
	int ret = 0;

	if (!done || jit_req_check(req))
		return -EINVAL;
	j = jit_job_new(req);
	if (!j)
		return -ENOMEM;
	j->done = done;
	j->ctx = ctx;
	pthread_once(&jit_once, jit_atfork);
	pthread_mutex_lock(&jq.lock);
	if (jq.stopping) {
		ret = -ESHUTDOWN;
	} else if (jq.queued >= jq.idle && jq.nthreads < jq.want) {
		/* no idle thread left for this one: one more, up to the pool's size. The
		 * application's signals are not for our threads: they start with all blocked. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = -pthread_create(&jq.thread[jq.nthreads], NULL, jit_thread, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (!ret)
			pthread_setname_np(jq.thread[jq.nthreads++], "gpuos-jit");
		else if (jq.nthreads)
			ret = 0; /* the threads there are will build it */
	}
	if (!ret) {
		*jq.tail = j;
		jq.tail = &j->next;
		jq.queued++;
		pthread_cond_signal(&jq.cond);
	}
	pthread_mutex_unlock(&jq.lock);
	if (ret)
		free(j);
	return ret;
}

void gpuos_jit_cancel(void)
{
	struct jit_job *j;

	pthread_mutex_lock(&jq.lock);
	j = jq.head;
	jq.head = NULL;
	jq.tail = &jq.head;
	jq.queued = 0;
	pthread_mutex_unlock(&jq.lock);
	while (j) {
		struct jit_job *next = j->next;

		j->done(j->ctx, -ECANCELED, NULL);
		free(j);
		j = next;
	}
	gpuos_jit_shutdown(); /* waits for the build in progress, if any */
}

void gpuos_jit_shutdown(void)
{
	pthread_t t[GPUOS_JIT_MAX_THREADS];
	unsigned n;

	pthread_mutex_lock(&jq.lock);
	if (!jq.nthreads || jq.stopping || jit_is_pool_thread()) {
		pthread_mutex_unlock(&jq.lock);
		return;
	}
	jq.stopping = true;
	n = jq.nthreads;
	memcpy(t, jq.thread, n * sizeof(t[0]));
	pthread_cond_broadcast(&jq.cond);
	pthread_mutex_unlock(&jq.lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_lock(&jq.lock);
	jq.nthreads = 0;
	jq.stopping = false;
	pthread_mutex_unlock(&jq.lock);
}
