// SPDX-License-Identifier: MIT
/*
 * The report: per kernel, launches, diverted, fell through and why. A table on stderr
 * (GPUOS_REPORT=1) or a file (text, or JSON when the name ends in .json; %p becomes the pid,
 * so the processes of a job do not overwrite one another's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomics.h"
#include "common/log.h"
#include "interpose/interpose.h"

#define GPUOS_EXPORT __attribute__((visibility("default")))

const char *const gpuos_why_key[GPUOS_WHY_COUNT] = {
#define X(id, key, text) [GPUOS_WHY_##id] = key,
	GPUOS_WHY_LIST(X)
#undef X
};

const char *const gpuos_why_text[GPUOS_WHY_COUNT] = {
#define X(id, key, text) [GPUOS_WHY_##id] = text,
	GPUOS_WHY_LIST(X)
#undef X
};

/* Namespaces every PyTorch kernel carries; the display drops them. */
static const char *const noise[] = { "at::native::", "(anonymous namespace)::", "at::cuda::",
				     "c10::", "at::" };

void gpuos_report_short_name(const char *demangled, char *buf, size_t len)
{
	char tmp[1024];
	size_t n, o = 0;
	const char *s = demangled;

	if (!len)
		return;
	if (!strncmp(s, "void ", 5))
		s += 5;
	n = strlen(s);
	/* Drop the parameter list: the parenthesised group that ends the name. */
	if (n && s[n - 1] == ')') {
		int depth = 0;

		for (size_t i = n; i-- > 0;) {
			depth += s[i] == ')';
			depth -= s[i] == '(';
			if (!depth) {
				n = i;
				break;
			}
		}
	}
	for (size_t i = 0; i < n && o + 1 < sizeof(tmp);) {
		size_t j, skip = 0;

		for (j = 0; j < sizeof(noise) / sizeof(noise[0]); j++) {
			size_t l = strlen(noise[j]);

			if (i + l <= n && !strncmp(s + i, noise[j], l) &&
			    (o == 0 || strchr("<, (", tmp[o - 1]))) {
				skip = l;
				break;
			}
		}
		if (skip) {
			i += skip;
			continue;
		}
		if (s[i] == ' ' && i + 1 < n && s[i + 1] == '>' && o && tmp[o - 1] == '>') {
			i++; /* "> >" reads better as ">>" */
			continue;
		}
		tmp[o++] = s[i++];
	}
	tmp[o] = '\0';
	if (o < len) {
		memcpy(buf, tmp, o + 1);
	} else if (len > 8) {
		/* Keep the head (family, functor) and the tail, cut the middle. */
		size_t head = (len - 4) * 2 / 3, tail = len - 4 - head;

		memcpy(buf, tmp, head);
		memcpy(buf + head, "...", 3);
		memcpy(buf + head + 3, tmp + o - tail, tail);
		buf[len - 1] = '\0';
	} else {
		buf[0] = '\0';
	}
}

static uint64_t total_of(const struct gpuos_live *l)
{
	uint64_t t = 0;

	for (int i = 0; i < GPUOS_WHY_COUNT; i++)
		t += load_relaxed(&l->count[i]);
	return t;
}

static int by_launches(const void *a, const void *b)
{
	uint64_t x = total_of(*(struct gpuos_live *const *)a);
	uint64_t y = total_of(*(struct gpuos_live *const *)b);

	return x < y ? 1 : x > y ? -1 : 0;
}

static const char *display_name(const struct gpuos_live *l)
{
	if (l->demangled)
		return l->demangled;
	if (l->mangled)
		return l->mangled;
	return "<kernel not registered with the runtime>";
}

void gpuos_report_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_archs(FILE *f, const char *key, const unsigned *a, unsigned n)
{
	fprintf(f, ", \"%s\": [", key);
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "%s%u", i ? ", " : "", a[i]);
	fputc(']', f);
}

static void write_json(FILE *f, struct gpuos_live **v, size_t n, const uint64_t *sum)
{
	char shortn[160];

	fprintf(f, "{\"gpuos_report\": 1, \"pid\": %d, \"kernels_registered\": %llu",
		(int)getpid(), (unsigned long long)gpuos_reg_nkernels());
	fprintf(f, ", \"launches\": %llu, \"diverted\": %llu, \"fell_through\": {",
		(unsigned long long)sum[GPUOS_WHY_COUNT],
		(unsigned long long)sum[GPUOS_WHY_DIVERTED]);
	for (int w = 1, first = 1; w < GPUOS_WHY_COUNT; w++)
		if (sum[w]) {
			fprintf(f, "%s\"%s\": %llu", first ? "" : ", ", gpuos_why_key[w],
				(unsigned long long)sum[w]);
			first = 0;
		}
	fprintf(f, "},\n \"kernels\": [\n");
	for (size_t i = 0; i < n; i++) {
		const struct gpuos_live *l = v[i];
		const struct gpuos_kernel *k = l->kernel;
		const struct gpuos_kmeta *m = k ? k->meta : NULL;
		const struct gpuos_fatbin_reg *fb = k ? k->fb : NULL;

		gpuos_report_short_name(display_name(l), shortn, sizeof(shortn));
		fprintf(f, "  {\"name\": ");
		gpuos_report_json_str(f, display_name(l));
		fprintf(f, ", \"short\": ");
		gpuos_report_json_str(f, shortn);
		fprintf(f, ", \"mangled\": ");
		gpuos_report_json_str(f, l->mangled ? l->mangled : "");
		fprintf(f, ", \"launches\": %llu, \"diverted\": %llu, \"fell_through\": {",
			(unsigned long long)total_of(l),
			(unsigned long long)load_relaxed(&l->count[GPUOS_WHY_DIVERTED]));
		for (int w = 1, first = 1; w < GPUOS_WHY_COUNT; w++) {
			uint64_t c = load_relaxed(&l->count[w]);

			if (!c)
				continue;
			fprintf(f, "%s\"%s\": %llu", first ? "" : ", ", gpuos_why_key[w],
				(unsigned long long)c);
			first = 0;
		}
		fputc('}', f);
		if (l->lift >= 0) {
			fprintf(f, ", \"lift\": \"%s\", \"lift_detail\": ",
				gpuos_lift_reason_key(l->lift));
			gpuos_report_json_str(f, l->lift_detail);
		}
		if (m) {
			fprintf(f, ", \"params\": [");
			for (unsigned p = 0; p < m->nparams; p++)
				fprintf(f, "%s[%u, %u]", p ? ", " : "", m->params[p].offset,
					m->params[p].size);
			fprintf(f, "], \"param_bytes\": %u, \"regs\": %d, \"static_smem\": %u",
				m->param_bytes, m->regs, m->static_smem);
		}
		if (fb && fb->info_state == 1) {
			fprintf(f, ", \"cubin_sm\": %u", fb->sm);
			json_archs(f, "sass_archs", fb->sass_archs, fb->nsass);
			json_archs(f, "ptx_archs", fb->ptx_archs, fb->nptx);
		}
		if (fb && fb->path) {
			fprintf(f, ", \"module\": ");
			gpuos_report_json_str(f, fb->path);
		}
		fprintf(f, "}%s\n", i + 1 < n ? "," : "");
	}
	fprintf(f, " ]}\n");
}

static void write_table(FILE *f, struct gpuos_live **v, size_t n, const uint64_t *sum)
{
	char shortn[100], why[64];

	fprintf(f,
		"gpuos report (pid %d): %zu kernels launched, %llu launches, %llu diverted, "
		"%llu fell through\n",
		(int)getpid(), n, (unsigned long long)sum[GPUOS_WHY_COUNT],
		(unsigned long long)sum[GPUOS_WHY_DIVERTED],
		(unsigned long long)(sum[GPUOS_WHY_COUNT] - sum[GPUOS_WHY_DIVERTED]));
	fprintf(f, "%10s %9s %10s  %-26s %s\n", "launches", "diverted", "fell-thru", "why",
		"kernel");
	for (size_t i = 0; i < n; i++) {
		const struct gpuos_live *l = v[i];
		uint64_t t = total_of(l), d = load_relaxed(&l->count[GPUOS_WHY_DIVERTED]);
		int top = 0;
		uint64_t topc = 0;

		for (int w = 1; w < GPUOS_WHY_COUNT; w++)
			if (load_relaxed(&l->count[w]) > topc) {
				topc = load_relaxed(&l->count[w]);
				top = w;
			}
		gpuos_report_short_name(display_name(l), shortn, sizeof(shortn));
		/* not liftable: say what stopped it */
		if (top == GPUOS_WHY_NOT_LIFTABLE && l->lift >= 0)
			snprintf(why, sizeof(why), "lift: %s", gpuos_lift_reason_key(l->lift));
		else
			snprintf(why, sizeof(why), "%s", top ? gpuos_why_text[top] : "-");
		fprintf(f, "%10llu %9llu %10llu  %-26s %s\n", (unsigned long long)t,
			(unsigned long long)d, (unsigned long long)(t - d), why, shortn);
	}
}

int gpuos_report_write(const char *dest)
{
	uint64_t sum[GPUOS_WHY_COUNT + 1] = { 0 };
	struct gpuos_live **v = NULL, *unknown = gpuos_reg_unknown();
	size_t n = 0, cap = 0;
	char path[4200];
	FILE *f = stderr;
	int json = 0, rc = -ENOMEM;

	for (struct gpuos_live *l = gpuos_reg_live_list();; l = l->next) {
		if (!l)
			l = unknown; /* last, and only if it counted something */
		if (l == unknown && !total_of(l))
			break;
		if (n == cap) {
			struct gpuos_live **nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));

			if (!nv)
				goto out;
			v = nv;
		}
		v[n++] = l;
		for (int w = 0; w < GPUOS_WHY_COUNT; w++) {
			uint64_t c = load_relaxed(&l->count[w]);

			sum[w] += c;
			sum[GPUOS_WHY_COUNT] += c;
		}
		if (l == unknown)
			break;
	}
	qsort(v, n, sizeof(*v), by_launches);

	if (strcmp(dest, "1") && strcmp(dest, "stderr")) {
		/* %p in the name becomes the pid */
		size_t o = 0;

		for (const char *s = dest; *s && o + 16 < sizeof(path); s++) {
			if (s[0] == '%' && s[1] == 'p') {
				o += snprintf(path + o, sizeof(path) - o, "%d", (int)getpid());
				s++;
			} else {
				path[o++] = *s;
			}
		}
		path[o] = '\0';
		json = o > 5 && !strcmp(path + o - 5, ".json");
		f = fopen(path, "w");
		if (!f) {
			rc = -errno;
			gpuos_err("report: cannot write %s: %s", path, strerror(errno));
			goto out;
		}
	}
	if (json)
		write_json(f, v, n, sum);
	else
		write_table(f, v, n, sum);
	rc = 0;
	if (f != stderr && fclose(f))
		rc = -EIO;
out:
	free(v);
	return rc;
}

GPUOS_EXPORT int gpuos_report(const char *dest)
{
	if (!dest || !*dest)
		dest = gpuos_shim.cfg.report;
	if (!*dest || !strcmp(dest, "0"))
		return -EINVAL;
	return gpuos_report_write(dest);
}
