// SPDX-License-Identifier: MIT
/*
 * interpose/cupti.c: the id table against the CUDA headers (complete for stream-ordered
 * work, the right stream and function out of real params structs), the callback's
 * ENTER/EXIT protocol with fusion, and gpuos_cupti_start on a machine without a GPU.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cupti.h>

#include "fusion/fusion.h"
#include "interpose/cupti.h"

#ifndef GPUOS_CUDA_INCLUDE
#define GPUOS_CUDA_INCLUDE "/usr/local/cuda/include"
#endif

#define ID(name) CUPTI_DRIVER_TRACE_CBID_##name

/* ---- fusion, recorded ----
 * Weak: the real fusion wins where the archive provides it; the protocol tests then skip
 * (stubs_live). Each call appends a letter to rec.seq. */
static struct {
	char seq[64];
	CUstream stream;
	bool ptsz;
	CUcontext ctx;
	unsigned call;
	const void *func;
} rec;
static bool fake_active = true, fake_first;

static void note(char c)
{
	size_t n = strlen(rec.seq);

	if (n + 1 < sizeof(rec.seq))
		rec.seq[n] = c;
}

__thread int gpuos_fusion_in_engine;
bool gpuos_fusion_active(void)
{
	return fake_active;
}
void gpuos_fusion_stream_op(CUstream s, bool ptsz)
{
	rec.stream = s;
	rec.ptsz = ptsz;
	note('S');
}
unsigned gpuos_fusion_call_begin(CUstream s, bool ptsz, CUcontext ctx)
{
	rec.stream = s;
	rec.ptsz = ptsz;
	rec.ctx = ctx;
	rec.call = 40 + (unsigned)((uintptr_t)s % 17); /* a bucket the end must get back */
	note('S');
	return rec.call;
}
void gpuos_fusion_call_end(unsigned call)
{
	ck_assert_uint_eq(call, rec.call);
	note('D');
}
void gpuos_fusion_stream_gone(CUstream s)
{
	rec.stream = s;
	note('G');
}
void gpuos_fusion_park(void)
{
	note('P');
}
void gpuos_fusion_unpark(void)
{
	note('U');
}
void gpuos_fusion_capture_begin(void)
{
	note('B');
}
void gpuos_fusion_capture_end(void)
{
	note('E');
}
bool gpuos_fusion_first_launch(const void *f)
{
	rec.func = f;
	note(fake_first ? 'F' : 'f');
	return fake_first;
}
void gpuos_fusion_loaded(const void *f)
{
	ck_assert_ptr_eq(f, rec.func);
	note('L');
}
void gpuos_fusion_device_reset(void)
{
	note('R');
}
void gpuos_fusion_forget(void)
{
	note('X');
}

static bool stubs_live(void)
{
	memset(&rec, 0, sizeof(rec));
	gpuos_fusion_park();
	/* the test links interpose/cupti.o alone (Makefile), with these fakes of fusion */
	ck_assert_str_eq(rec.seq, "P");
	memset(&rec, 0, sizeof(rec));
	return true;
}

/* ---- the CUDA headers, parsed independently of scripts/gen_cupti_ids.py ---- */

struct fn {
	char name[128];
	unsigned id;
	bool has_params; /* a cuXxx_params struct in generated_cuda_meta.h */
	bool has_stream; /* ... with a CUstream member or a CUlaunchConfig pointer */
};
static struct fn fns[1024];
static int nfns;

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	ck_assert_msg(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = malloc(n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, n, f), n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static struct fn *fn_find(const char *name, size_t len)
{
	for (int i = 0; i < nfns; i++)
		if (strlen(fns[i].name) == len && !strncmp(fns[i].name, name, len))
			return &fns[i];
	return NULL;
}

static bool is_ident(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

/* "CUstream hStream" or "const CUlaunchConfig *config" (member text without the ';') */
static bool member_is_stream(const char *m, size_t len)
{
	char buf[256], *p;

	while (len && (*m == ' ' || *m == '\n' || *m == '\t'))
		m++, len--;
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, m, len);
	buf[len] = '\0';
	if (!strncmp(buf, "CUstream", 8) && (buf[8] == ' ') && !strchr(buf, '*'))
		return true;
	p = strstr(buf, "CUlaunchConfig");
	return p && (p == buf || p[-1] == ' ') && !is_ident(p[14]) && strchr(p, '*');
}

static void load_headers(void)
{
	char *cbid, *meta, *p;

	if (nfns)
		return;
	cbid = slurp(GPUOS_CUDA_INCLUDE "/cupti_driver_cbid.h");
	for (p = cbid; (p = strstr(p, "CUPTI_DRIVER_TRACE_CBID_"));) {
		char *name = p + strlen("CUPTI_DRIVER_TRACE_CBID_"), *q = name;
		struct fn *f;

		while (is_ident(*q))
			q++;
		p = q;
		while (*p == ' ')
			p++;
		if (*p != '=' || q == name)
			continue;
		if (!strncmp(name, "SIZE", 4) || !strncmp(name, "FORCE_INT", 9) ||
		    !strncmp(name, "INVALID", 7))
			continue;
		ck_assert_int_lt(nfns, (int)(sizeof(fns) / sizeof(fns[0])));
		f = &fns[nfns++];
		ck_assert_int_lt(q - name, (int)sizeof(f->name));
		memcpy(f->name, name, q - name);
		f->id = strtoul(p + 1, NULL, 0);
	}
	free(cbid);

	meta = slurp(GPUOS_CUDA_INCLUDE "/generated_cuda_meta.h");
	for (p = meta; (p = strstr(p, "typedef struct "));) {
		char *name = p + strlen("typedef struct "), *q = name, *body, *end;
		struct fn *f;

		p = name;
		while (is_ident(*q))
			q++;
		if (q - name < 10 || strncmp(q - 10, "_params_st", 10) != 0)
			continue;
		body = strchr(q, '{');
		end = body ? strchr(body, '}') : NULL;
		ck_assert_ptr_nonnull(end);
		f = fn_find(name, q - 10 - name);
		ck_assert_msg(f, "%.*s_params has no callback id", (int)(q - 10 - name), name);
		f->has_params = true;
		for (char *m = body + 1, *semi; m < end && (semi = memchr(m, ';', end - m));
		     m = semi + 1)
			f->has_stream |= member_is_stream(m, semi - m);
		p = end;
	}
	free(meta);
	ck_assert_int_gt(nfns, 700);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

/* Hold a stream but order nothing on it: deliberately not stream ops. */
static bool is_query(const char *name)
{
	static const char *const prefixes[] = {
		"cuStreamGet", "cuStreamIsCapturing", "cuStreamSetAttribute",
		"cuStreamCopyAttributes", "cuStreamUpdateCaptureDependencies", "cuOccupancy",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (starts_with(name, prefixes[i]))
			return true;
	return false;
}

/* ---- the table ---- */

static int kind_of(CUpti_CallbackId id)
{
	struct gpuos_cupti_action a;

	return gpuos_cupti_classify(id, NULL, &a);
}

START_TEST(test_known_entries)
{
	static const struct {
		CUpti_CallbackId id;
		int kind;
	} want[] = {
		{ ID(cuLaunchKernel), GPUOS_CUPTI_LAUNCH },
		{ ID(cuLaunchKernel_ptsz), GPUOS_CUPTI_LAUNCH },
		{ ID(cuLaunchKernelEx), GPUOS_CUPTI_LAUNCH },
		{ ID(cuLaunchKernelEx_ptsz), GPUOS_CUPTI_LAUNCH },
		{ ID(cuLaunchCooperativeKernel), GPUOS_CUPTI_LAUNCH },
		{ ID(cuMemcpyHtoD_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemcpyDtoH_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemsetD32_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemcpy), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemcpyAsync), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemcpyAsync_ptsz), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemcpyHtoDAsync_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemsetD8Async), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemcpyBatchAsync_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuGraphLaunch), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuGraphLaunch_ptsz), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuLaunchHostFunc), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuStreamAddCallback), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuStreamBatchMemOp_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuStreamWriteValue32_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuStreamWaitValue32_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemPrefetchAsync_v2), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemAllocAsync), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuMemFreeAsync), GPUOS_CUPTI_UNMAP },
		{ ID(cuMemFreeAsync_ptsz), GPUOS_CUPTI_UNMAP },
		{ ID(cuMemUnmap), GPUOS_CUPTI_UNMAP },
		{ ID(cuMemRelease), GPUOS_CUPTI_UNMAP },
		{ ID(cuMemAddressFree), GPUOS_CUPTI_UNMAP },
		{ ID(cuMemPoolTrimTo), GPUOS_CUPTI_UNMAP },
		{ ID(cuIpcCloseMemHandle), GPUOS_CUPTI_UNMAP },
		{ ID(cuStreamAttachMemAsync), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuEventRecord), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuEventRecordWithFlags), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuStreamWaitEvent), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuStreamSynchronize), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuStreamQuery), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuGraphicsMapResources), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuSignalExternalSemaphoresAsync), GPUOS_CUPTI_STREAM_OP },
		{ ID(cuStreamDestroy_v2), GPUOS_CUPTI_STREAM_DESTROY },
		{ ID(cuStreamDestroy), GPUOS_CUPTI_STREAM_DESTROY },
		{ ID(cuCtxSynchronize), GPUOS_CUPTI_PARK },
		{ ID(cuCtxSynchronize_v2), GPUOS_CUPTI_PARK },
		{ ID(cuModuleLoadData), GPUOS_CUPTI_PARK },
		{ ID(cuModuleLoadDataEx), GPUOS_CUPTI_PARK },
		{ ID(cuModuleUnload), GPUOS_CUPTI_PARK },
		{ ID(cuLibraryLoadData), GPUOS_CUPTI_PARK },
		{ ID(cuLibraryUnload), GPUOS_CUPTI_PARK },
		{ ID(cuMemFree_v2), GPUOS_CUPTI_PARK },
		{ ID(cuMemFreeHost), GPUOS_CUPTI_PARK },
		{ ID(cuMemHostUnregister), GPUOS_CUPTI_PARK },
		{ ID(cuArrayDestroy), GPUOS_CUPTI_PARK },
		{ ID(cuCtxDestroy_v2), GPUOS_CUPTI_PARK },
		{ ID(cuDevicePrimaryCtxReset_v2), GPUOS_CUPTI_RESET },
		{ ID(cuDevicePrimaryCtxRelease_v2), GPUOS_CUPTI_PARK },
		{ ID(cuDevicePrimaryCtxSetFlags_v2), GPUOS_CUPTI_PARK },
		{ ID(cuCtxSetFlags), GPUOS_CUPTI_PARK },
		{ ID(cuStreamBeginCapture_v2), GPUOS_CUPTI_CAPTURE_BEGIN },
		{ ID(cuStreamBeginCapture_v2_ptsz), GPUOS_CUPTI_CAPTURE_BEGIN },
		{ ID(cuStreamBeginCaptureToGraph), GPUOS_CUPTI_CAPTURE_BEGIN },
		{ ID(cuStreamEndCapture), GPUOS_CUPTI_CAPTURE_END },
		{ ID(cuStreamEndCapture_ptsz), GPUOS_CUPTI_CAPTURE_END },
		{ ID(cuKernelGetFunction), GPUOS_CUPTI_FIRST_USE },
		{ ID(cuFuncGetAttribute), GPUOS_CUPTI_FIRST_USE },
		/* not stream-ordered, or hot and harmless */
		{ ID(cuStreamIsCapturing), GPUOS_CUPTI_NONE },
		{ ID(cuStreamGetCaptureInfo_v3), GPUOS_CUPTI_NONE },
		{ ID(cuStreamGetFlags), GPUOS_CUPTI_NONE },
		{ ID(cuStreamCreate), GPUOS_CUPTI_NONE },
		{ ID(cuEventSynchronize), GPUOS_CUPTI_NONE },
		{ ID(cuEventQuery), GPUOS_CUPTI_NONE },
		{ ID(cuMemAlloc_v2), GPUOS_CUPTI_NONE },
		{ ID(cuLibraryGetKernel), GPUOS_CUPTI_NONE },
		{ ID(cuCtxGetCurrent), GPUOS_CUPTI_NONE },
		{ ID(cuInit), GPUOS_CUPTI_NONE },
		{ ID(cuLinkComplete), GPUOS_CUPTI_NONE },
		{ CUPTI_DRIVER_TRACE_CBID_INVALID, GPUOS_CUPTI_NONE },
		{ CUPTI_DRIVER_TRACE_CBID_SIZE, GPUOS_CUPTI_NONE },
		{ 0xffffffffu, GPUOS_CUPTI_NONE },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(kind_of(want[i].id) == want[i].kind, "id %u: kind %d, want %d",
			      want[i].id, kind_of(want[i].id), want[i].kind);
}
END_TEST

/* Without params: the synchronous copies name their stream, the rest leave it NULL. */
START_TEST(test_implicit_streams)
{
	struct gpuos_cupti_action a;

	ck_assert_int_eq(gpuos_cupti_classify(ID(cuMemcpyHtoD_v2), NULL, &a),
			 GPUOS_CUPTI_STREAM_OP);
	ck_assert_ptr_eq(a.stream, CU_STREAM_LEGACY);
	ck_assert(!a.ptsz);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuMemsetD8_v2), NULL, &a), GPUOS_CUPTI_STREAM_OP);
	ck_assert_ptr_eq(a.stream, CU_STREAM_LEGACY);
	ck_assert(!a.ptsz);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuMemcpyHtoD_v2_ptds), NULL, &a),
			 GPUOS_CUPTI_STREAM_OP);
	ck_assert_ptr_null(a.stream);
	ck_assert(a.ptsz);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuMemcpy3DPeer_ptds), NULL, &a),
			 GPUOS_CUPTI_STREAM_OP);
	ck_assert(a.ptsz);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuLaunchKernel), NULL, &a), GPUOS_CUPTI_LAUNCH);
	ck_assert_ptr_null(a.stream);
	ck_assert_ptr_null(a.func);
	ck_assert(!a.ptsz);
}
END_TEST

/* A call that holds a stream is ordered on it unless it is a query; a synchronous copy or
 * memset runs on the legacy (or, _ptds, the thread's) default stream. */
static void check_complete(const struct fn *f, int kind, const struct gpuos_cupti_action *a)
{
	bool sync_copy = (starts_with(f->name, "cuMemcpy") || starts_with(f->name, "cuMemset")) &&
			 !strstr(f->name, "Async");

	if (f->has_stream && is_query(f->name)) {
		ck_assert_msg(kind == GPUOS_CUPTI_NONE || kind == GPUOS_CUPTI_FIRST_USE,
			      "%s is a query, kind %d", f->name, kind);
	} else if (f->has_stream) {
		ck_assert_msg(kind != GPUOS_CUPTI_NONE && kind != GPUOS_CUPTI_PARK &&
				      kind != GPUOS_CUPTI_FIRST_USE &&
				      (kind != GPUOS_CUPTI_UNMAP || a->ordered),
			      "%s holds a stream, kind %d", f->name, kind);
	} else if (sync_copy) {
		ck_assert_msg(kind == GPUOS_CUPTI_STREAM_OP, "%s: kind %d", f->name, kind);
		if (ends_with(f->name, "_ptds"))
			ck_assert_msg(!a->stream && a->ptsz, "%s", f->name);
		else
			ck_assert_msg(a->stream == CU_STREAM_LEGACY && !a->ptsz, "%s", f->name);
	}
}

START_TEST(test_complete_against_headers)
{
	int with_stream = 0, observed = 0;

	load_headers();
	for (int i = 0; i < nfns; i++) {
		struct gpuos_cupti_action a;
		int kind = gpuos_cupti_classify(fns[i].id, NULL, &a);

		observed += kind != GPUOS_CUPTI_NONE;
		with_stream += fns[i].has_stream;
		if (fns[i].has_params)
			check_complete(&fns[i], kind, &a);
	}
	/* CUDA 13.0: 165 params hold a stream, 132 of them are ordered on it; 240 ids observed */
	ck_assert_int_gt(with_stream, 150);
	ck_assert_int_gt(observed, 200);
}
END_TEST

START_TEST(test_ptsz_flags)
{
	int nptsz = 0;

	load_headers();
	for (int i = 0; i < nfns; i++) {
		struct gpuos_cupti_action a;

		if (gpuos_cupti_classify(fns[i].id, NULL, &a) == GPUOS_CUPTI_NONE)
			continue;
		if (ends_with(fns[i].name, "_ptsz") || ends_with(fns[i].name, "_ptds")) {
			nptsz++;
			ck_assert_msg(a.ptsz, "%s: ptsz not set", fns[i].name);
		} else {
			ck_assert_msg(!a.ptsz, "%s: ptsz set", fns[i].name);
		}
	}
	ck_assert_int_gt(nptsz, 60);
}
END_TEST

/* ---- reading real params structs ---- */

START_TEST(test_params_launch)
{
	cuLaunchKernel_params p = { .f = (CUfunction)0x1230, .hStream = (CUstream)0x4560 };
	struct gpuos_cupti_action a;

	ck_assert_int_eq(gpuos_cupti_classify(ID(cuLaunchKernel), &p, &a), GPUOS_CUPTI_LAUNCH);
	ck_assert_ptr_eq(a.stream, (CUstream)0x4560);
	ck_assert_ptr_eq(a.func, (void *)0x1230);
	ck_assert(!a.ptsz);

	/* _ptsz params have the same layout; NULL stream: the thread's default stream */
	cuLaunchKernel_ptsz_params q = { .f = (CUfunction)0x1231, .hStream = NULL };
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuLaunchKernel_ptsz), &q, &a), GPUOS_CUPTI_LAUNCH);
	ck_assert_ptr_null(a.stream);
	ck_assert_ptr_eq(a.func, (void *)0x1231);
	ck_assert(a.ptsz);
}
END_TEST

START_TEST(test_params_launch_ex)
{
	CUlaunchConfig cfg = { .gridDimX = 1, .hStream = (CUstream)0x7770 };
	cuLaunchKernelEx_params p = { .config = &cfg, .f = (CUfunction)0x8880 };
	struct gpuos_cupti_action a;

	ck_assert_int_eq(gpuos_cupti_classify(ID(cuLaunchKernelEx), &p, &a), GPUOS_CUPTI_LAUNCH);
	ck_assert_ptr_eq(a.stream, (CUstream)0x7770);
	ck_assert_ptr_eq(a.func, (void *)0x8880);
	ck_assert(!a.ptsz);

	cuLaunchKernelEx_ptsz_params q = { .config = &cfg, .f = (CUfunction)0x8881 };
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuLaunchKernelEx_ptsz), &q, &a),
			 GPUOS_CUPTI_LAUNCH);
	ck_assert_ptr_eq(a.stream, (CUstream)0x7770);
	ck_assert(a.ptsz);

	/* a NULL config makes the call fail; reading it must not */
	p.config = NULL;
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuLaunchKernelEx), &p, &a), GPUOS_CUPTI_LAUNCH);
	ck_assert_ptr_null(a.stream);
}
END_TEST

START_TEST(test_params_copy_and_events)
{
	cuMemcpyAsync_params cp = { .ByteCount = 4, .hStream = (CUstream)0x1110 };
	cuEventRecord_params er = { .hEvent = (CUevent)0x2220, .hStream = (CUstream)0x3330 };
	cuStreamWaitEvent_params we = { .hStream = (CUstream)0x4440, .hEvent = (CUevent)0x5550 };
	cuStreamBatchMemOp_v2_params bm = { .stream = (CUstream)0x6660, .count = 1 };
	cuLaunchHostFunc_params hf = { .hStream = (CUstream)0x9990 };
	struct gpuos_cupti_action a;

	ck_assert_int_eq(gpuos_cupti_classify(ID(cuMemcpyAsync), &cp, &a), GPUOS_CUPTI_STREAM_OP);
	ck_assert_ptr_eq(a.stream, (CUstream)0x1110);
	ck_assert_ptr_null(a.func);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuEventRecord), &er, &a), GPUOS_CUPTI_STREAM_OP);
	ck_assert_ptr_eq(a.stream, (CUstream)0x3330);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuStreamWaitEvent), &we, &a),
			 GPUOS_CUPTI_STREAM_OP);
	ck_assert_ptr_eq(a.stream, (CUstream)0x4440);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuStreamBatchMemOp_v2), &bm, &a),
			 GPUOS_CUPTI_STREAM_OP);
	ck_assert_ptr_eq(a.stream, (CUstream)0x6660);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuLaunchHostFunc), &hf, &a),
			 GPUOS_CUPTI_STREAM_OP);
	ck_assert_ptr_eq(a.stream, (CUstream)0x9990);
	ck_assert_ptr_null(a.func);
}
END_TEST

START_TEST(test_params_first_use)
{
	cuKernelGetFunction_params kg = { .kernel = (CUkernel)0xabc0 };
	cuFuncGetAttribute_params fa = { .hfunc = (CUfunction)0xdef0 };
	struct gpuos_cupti_action a;

	ck_assert_int_eq(gpuos_cupti_classify(ID(cuKernelGetFunction), &kg, &a),
			 GPUOS_CUPTI_FIRST_USE);
	ck_assert_ptr_eq(a.func, (void *)0xabc0);
	ck_assert_ptr_null(a.stream);
	ck_assert_int_eq(gpuos_cupti_classify(ID(cuFuncGetAttribute), &fa, &a),
			 GPUOS_CUPTI_FIRST_USE);
	ck_assert_ptr_eq(a.func, (void *)0xdef0);
}
END_TEST

/* The committed table is what the generator writes from these headers. */
START_TEST(test_table_is_generated)
{
	char cmd[512], *want, *got;
	size_t n = 0, cap = 1 << 20;
	FILE *p;

	if (access("scripts/gen_cupti_ids.py", R_OK) || system("python3 -c 1 2>/dev/null")) {
		fprintf(stderr, "check_cupti: no python3 or not in the source tree; skipped\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "python3 scripts/gen_cupti_ids.py --include '%s'",
		 GPUOS_CUDA_INCLUDE);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	got = malloc(cap);
	ck_assert_ptr_nonnull(got);
	n = fread(got, 1, cap - 1, p);
	got[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	want = slurp("interpose/cupti_ids.h");
	ck_assert_msg(!strcmp(want, got), "interpose/cupti_ids.h is stale: run make cupti-ids");
	free(want);
	free(got);
}
END_TEST

/* ---- the callback ---- */

struct call {
	CUpti_CallbackData cb;
	uint64_t corr;
	CUresult ret;
};

static void call_init(struct call *c, const void *params)
{
	memset(c, 0, sizeof(*c));
	c->corr = 0xdeadbeef; /* CUPTI does not promise zero */
	c->cb.functionParams = params;
	c->cb.functionReturnValue = &c->ret;
	c->cb.correlationData = &c->corr;
}

static void enter(struct call *c, CUpti_CallbackId id)
{
	c->cb.callbackSite = CUPTI_API_ENTER;
	gpuos_cupti_callback(NULL, CUPTI_CB_DOMAIN_DRIVER_API, id, &c->cb);
}

static void leave(struct call *c, CUpti_CallbackId id, CUresult ret)
{
	c->cb.callbackSite = CUPTI_API_EXIT;
	c->ret = ret;
	gpuos_cupti_callback(NULL, CUPTI_CB_DOMAIN_DRIVER_API, id, &c->cb);
}

START_TEST(test_cb_launch)
{
	cuLaunchKernel_params p = { .f = (CUfunction)0x10, .hStream = (CUstream)0x20 };
	struct call c;

	if (!stubs_live())
		return;
	fake_first = false;
	call_init(&c, &p);
	c.cb.context = (CUcontext)0x30; /* whose legacy stream a NULL one would be */
	enter(&c, ID(cuLaunchKernel));
	leave(&c, ID(cuLaunchKernel), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "SfD");
	ck_assert_ptr_eq(rec.stream, (CUstream)0x20);
	ck_assert_ptr_eq(rec.ctx, (CUcontext)0x30);
	ck_assert_ptr_eq(rec.func, (void *)0x10);

	/* first launch: parked inside first_launch, unparked after the call, failed or not;
	 * the function counts as loaded (no more parks for it) only once a call worked, and
	 * before the unpark */
	memset(&rec, 0, sizeof(rec));
	fake_first = true;
	call_init(&c, &p);
	enter(&c, ID(cuLaunchKernel));
	ck_assert_str_eq(rec.seq, "SF");
	leave(&c, ID(cuLaunchKernel), CUDA_ERROR_INVALID_VALUE);
	ck_assert_str_eq(rec.seq, "SFDU");
	memset(&rec, 0, sizeof(rec));
	call_init(&c, &p);
	enter(&c, ID(cuLaunchKernel));
	leave(&c, ID(cuLaunchKernel), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "SFDLU");
	fake_first = false;
}
END_TEST

/* A device reset: parked before, then the engine is dropped instead of unparked. */
START_TEST(test_cb_reset)
{
	struct call c;

	if (!stubs_live())
		return;
	call_init(&c, NULL);
	enter(&c, ID(cuDevicePrimaryCtxReset_v2));
	ck_assert_str_eq(rec.seq, "P");
	leave(&c, ID(cuDevicePrimaryCtxReset_v2), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "PR");
}
END_TEST

START_TEST(test_cb_park_and_first_use)
{
	cuFuncGetAttribute_params fa = { .hfunc = (CUfunction)0x30 };
	struct call c;

	if (!stubs_live())
		return;
	call_init(&c, NULL);
	enter(&c, ID(cuCtxSynchronize));
	leave(&c, ID(cuCtxSynchronize), CUDA_ERROR_LAUNCH_FAILED);
	ck_assert_str_eq(rec.seq, "PU");

	memset(&rec, 0, sizeof(rec));
	fake_first = true;
	call_init(&c, &fa);
	enter(&c, ID(cuFuncGetAttribute));
	leave(&c, ID(cuFuncGetAttribute), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "FLU");
	ck_assert_ptr_eq(rec.func, (void *)0x30);
	fake_first = false;
}
END_TEST

/* Memory taken away without a wait: the ranges copies may use are forgotten before and after
 * the call; a stream-ordered free is a stream op as well. */
START_TEST(test_cb_unmap)
{
	cuMemFreeAsync_params fa = { .dptr = 0x1000, .hStream = (CUstream)0x50 };
	cuMemUnmap_params um = { .ptr = 0x2000, .size = 4096 };
	struct call c;

	if (!stubs_live())
		return;
	call_init(&c, &um);
	enter(&c, ID(cuMemUnmap));
	leave(&c, ID(cuMemUnmap), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "XX");

	memset(&rec, 0, sizeof(rec));
	call_init(&c, &fa);
	enter(&c, ID(cuMemFreeAsync));
	leave(&c, ID(cuMemFreeAsync), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "SXDX");
	ck_assert_ptr_eq(rec.stream, (CUstream)0x50);
}
END_TEST

START_TEST(test_cb_stream_destroy)
{
	cuStreamDestroy_v2_params p = { .hStream = (CUstream)0x40 };
	struct call c;

	if (!stubs_live())
		return;
	call_init(&c, &p);
	enter(&c, ID(cuStreamDestroy_v2));
	leave(&c, ID(cuStreamDestroy_v2), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "SDG");
	ck_assert_ptr_eq(rec.stream, (CUstream)0x40);

	/* a destroy that failed destroyed nothing */
	memset(&rec, 0, sizeof(rec));
	call_init(&c, &p);
	enter(&c, ID(cuStreamDestroy_v2));
	leave(&c, ID(cuStreamDestroy_v2), CUDA_ERROR_INVALID_HANDLE);
	ck_assert_str_eq(rec.seq, "SD");
}
END_TEST

START_TEST(test_cb_capture)
{
	cuStreamBeginCapture_v2_params b = { .hStream = (CUstream)0x50 };
	cuStreamEndCapture_params e = { .hStream = (CUstream)0x50 };
	struct call c;

	if (!stubs_live())
		return;
	call_init(&c, &b);
	enter(&c, ID(cuStreamBeginCapture_v2));
	leave(&c, ID(cuStreamBeginCapture_v2), CUDA_SUCCESS);
	call_init(&c, &e);
	enter(&c, ID(cuStreamEndCapture));
	ck_assert_str_eq(rec.seq, "SB");
	leave(&c, ID(cuStreamEndCapture), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "SBE");

	/* a begin that failed began nothing */
	memset(&rec, 0, sizeof(rec));
	call_init(&c, &b);
	enter(&c, ID(cuStreamBeginCapture_v2));
	leave(&c, ID(cuStreamBeginCapture_v2), CUDA_ERROR_ILLEGAL_STATE);
	ck_assert_str_eq(rec.seq, "SBE");

	/* an end from the wrong thread leaves the capture going; an invalidated one ends it */
	memset(&rec, 0, sizeof(rec));
	call_init(&c, &e);
	enter(&c, ID(cuStreamEndCapture));
	leave(&c, ID(cuStreamEndCapture), CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD);
	ck_assert_str_eq(rec.seq, "");
	call_init(&c, &e);
	enter(&c, ID(cuStreamEndCapture));
	leave(&c, ID(cuStreamEndCapture), CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
	ck_assert_str_eq(rec.seq, "E");
}
END_TEST

/* Before any engine runs only captures and stream calls in flight are counted (the call's
 * end pairs with its begin even if an engine started in between, and a park's does not);
 * the engine's own calls never count. */
START_TEST(test_cb_inactive_and_engine)
{
	cuMemcpyAsync_params cp = { .hStream = (CUstream)0x60 };
	cuStreamBeginCapture_v2_params b = { .hStream = (CUstream)0x60 };
	struct call c, park;

	if (!stubs_live())
		return;
	fake_active = false;
	call_init(&c, &cp);
	enter(&c, ID(cuMemcpyAsync));
	ck_assert_str_eq(rec.seq, "S");
	fake_active = true;
	leave(&c, ID(cuMemcpyAsync), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "SD");
	fake_active = false;
	call_init(&park, NULL);
	enter(&park, ID(cuCtxSynchronize));
	fake_active = true; /* an engine starts meanwhile: no unpark without a park */
	leave(&park, ID(cuCtxSynchronize), CUDA_SUCCESS);
	ck_assert_str_eq(rec.seq, "SD");
	fake_active = false;
	call_init(&c, &b);
	enter(&c, ID(cuStreamBeginCapture_v2));
	ck_assert_str_eq(rec.seq, "SDSB");
	fake_active = true;

	memset(&rec, 0, sizeof(rec));
	gpuos_fusion_in_engine = 1;
	call_init(&c, &cp);
	enter(&c, ID(cuMemcpyAsync));
	enter(&c, ID(cuCtxSynchronize));
	leave(&c, ID(cuCtxSynchronize), CUDA_SUCCESS);
	gpuos_fusion_in_engine = 0;
	ck_assert_str_eq(rec.seq, "");

	/* other domains and unobserved ids */
	call_init(&c, &cp);
	c.cb.callbackSite = CUPTI_API_ENTER;
	gpuos_cupti_callback(NULL, CUPTI_CB_DOMAIN_RUNTIME_API, ID(cuMemcpyAsync), &c.cb);
	enter(&c, ID(cuMemAlloc_v2));
	gpuos_cupti_callback(NULL, CUPTI_CB_DOMAIN_DRIVER_API, ID(cuMemcpyAsync), NULL);
	ck_assert_str_eq(rec.seq, "");
}
END_TEST

/* ---- start/stop (this machine may have no GPU, no driver, or even no libcupti) ---- */

static int count_lines(const char *path)
{
	char *s = slurp(path);
	int n = 0;

	for (char *p = s; *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

START_TEST(test_start_without_gpu)
{
	char path[] = "/tmp/check_cupti.XXXXXX";
	int fd = mkstemp(path), saved = dup(2), rc, rc2;

	ck_assert_int_ge(fd, 0);
	gpuos_cupti_stop(); /* never started: harmless */
	dup2(fd, 2);
	rc = gpuos_cupti_start();
	rc2 = gpuos_cupti_start(); /* cached: same answer, no second line */
	dup2(saved, 2);
	close(saved);
	close(fd);
	fprintf(stderr, "check_cupti: gpuos_cupti_start() = %d (%s)\n", rc, strerror(-rc));
	ck_assert_int_eq(rc, rc2);
	ck_assert_int_le(rc, 0);
	ck_assert_int_le(count_lines(path), 1);
	if (rc < 0)
		ck_assert_int_eq(count_lines(path), 1);
	unlink(path);
	gpuos_cupti_stop();
	gpuos_cupti_stop();
}
END_TEST

static Suite *cupti_suite(void)
{
	Suite *s = suite_create("cupti");
	TCase *tc = tcase_create("table");

	tcase_add_test(tc, test_known_entries);
	tcase_add_test(tc, test_implicit_streams);
	tcase_add_test(tc, test_complete_against_headers);
	tcase_add_test(tc, test_ptsz_flags);
	tcase_add_test(tc, test_table_is_generated);
	suite_add_tcase(s, tc);

	tc = tcase_create("params");
	tcase_add_test(tc, test_params_launch);
	tcase_add_test(tc, test_params_launch_ex);
	tcase_add_test(tc, test_params_copy_and_events);
	tcase_add_test(tc, test_params_first_use);
	suite_add_tcase(s, tc);

	tc = tcase_create("callback");
	tcase_add_test(tc, test_cb_launch);
	tcase_add_test(tc, test_cb_reset);
	tcase_add_test(tc, test_cb_park_and_first_use);
	tcase_add_test(tc, test_cb_unmap);
	tcase_add_test(tc, test_cb_stream_destroy);
	tcase_add_test(tc, test_cb_capture);
	tcase_add_test(tc, test_cb_inactive_and_engine);
	suite_add_tcase(s, tc);

	tc = tcase_create("start");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_start_without_gpu);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cupti_suite());
	int failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
