// SPDX-License-Identifier: MIT
/*
 * gpuos: the front end.
 *   gpuos run [--config F] [--report[=F]] [--log LEVEL] [--] CMD...  run CMD under the shim
 *   gpuos inspect [--json] [--arch N] [--config F] FILE...         kernels in a binary
 *   gpuos config-check [--options] FILE                             validate a config file
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interpose/config.h"
#include "interpose/interpose.h"
#include "kernels/sig.h"
#include "ptx_lift/ptx_lift.h"

extern char **environ;

static void usage(FILE *f)
{
	fprintf(f, "usage: gpuos run [--config FILE] [--report[=FILE]] [--log LEVEL] [--] CMD...\n"
		   "       gpuos inspect [--json] [--arch SM] [--config FILE] BINARY...\n"
		   "       gpuos config-check [--options] FILE\n"
		   "\n"
		   "run           run CMD with libgpuos_shim.so preloaded; --report prints the\n"
		   "              per-kernel table on stderr at exit (or writes FILE; .json = JSON,\n"
		   "              %%p = pid)\n"
		   "inspect       list the kernels an executable or library carries, and what\n"
		   "              GPUOS would do with each (no GPU needed)\n"
		   "config-check  validate a config file; exit 2 on error\n");
}

/* The shim next to this program (build tree) or in ../lib (installed). */
static int find_shim(char *out, size_t len)
{
	char exe[PATH_MAX], *dir;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	static const char *const rel[] = { "libgpuos_shim.so", "../lib/libgpuos_shim.so" };

	if (n < 0)
		return -errno;
	exe[n] = '\0';
	dir = dirname(exe);
	for (size_t i = 0; i < 2; i++) {
		snprintf(out, len, "%s/%s", dir, rel[i]);
		if (!access(out, R_OK)) {
			char *r = realpath(out, NULL);

			if (r) {
				snprintf(out, len, "%s", r);
				free(r);
			}
			return 0;
		}
	}
	return -ENOENT;
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, 0, 'c' },
					      { "report", optional_argument, 0, 'r' },
					      { "log", required_argument, 0, 'l' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	char shim[PATH_MAX], *preload;
	const char *old;
	int c;

	while ((c = getopt_long(argc, argv, "+c:r::l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			setenv("GPUOS_CONFIG", optarg, 1);
			break;
		case 'r':
			setenv("GPUOS_REPORT", optarg ? optarg : "1", 1);
			break;
		case 'l':
			setenv("GPUOS_LOG", optarg, 1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "gpuos run: no command given\n");
		return 2;
	}
	if (find_shim(shim, sizeof(shim))) {
		fprintf(stderr, "gpuos run: libgpuos_shim.so not found next to gpuos or in ../lib\n");
		return 127;
	}
	old = getenv("LD_PRELOAD");
	if (old && *old) {
		if (asprintf(&preload, "%s:%s", shim, old) < 0)
			return 1;
	} else {
		preload = strdup(shim);
	}
	setenv("LD_PRELOAD", preload, 1);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "gpuos run: %s: %s\n", argv[optind], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}

struct inspect {
	const char *file;
	unsigned arch; /* 0: each fatbin's newest cubin */
	int json;
	int nfat, nkernels, first;
	struct gpuos_cfg cfg;
};

static void action(const struct inspect *in, const char *demangled, char *buf, size_t len)
{
	enum gpuos_why why = gpuos_reg_decide(&in->cfg, demangled);
	char key[64];

	if (why == GPUOS_WHY_DIVERTED && !gpuos_catalog_key(demangled, key, sizeof(key)))
		snprintf(buf, len, "divert (catalog: %.40s)", key);
	else
		snprintf(buf, len, "%s (%s)", why == GPUOS_WHY_DIVERTED ? "divert" : "fall through",
			 gpuos_why_text[why]);
}

static void archs_str(char *buf, size_t len, const unsigned *a, unsigned n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < n && o < len; i++)
		o += snprintf(buf + o, len - o, "%s%u", i ? "," : "", a[i]);
}

/* What ptx_lift says of kernel @k: "ok", "no PTX", or the reason key and its detail. */
static void lift_status(const char *ptx, size_t len, const struct gpuos_kinfo *k, unsigned sm,
			char *buf, size_t blen)
{
	struct gpuos_lift_opts o = { .sm = sm };
	struct gpuos_lift_result r;
	int rc;

	if (!ptx) {
		snprintf(buf, blen, "no PTX");
		return;
	}
	rc = gpuos_lift(ptx, len, k->name, &o, &r);
	if (rc < 0)
		snprintf(buf, blen, "error (%s)", strerror(-rc));
	else if (rc == 0 && r.param_bytes != k->param_bytes)
		snprintf(buf, blen, "ptx_parse (PTX parameters %u bytes, cubin %u)", r.param_bytes,
			 k->param_bytes);
	else if (rc == 0)
		snprintf(buf, blen, "ok%s", r.barriers ? " (barriers: whole warps)" : "");
	else
		snprintf(buf, blen, "%s (%s)", gpuos_lift_reason_key(r.reason), r.detail);
	gpuos_lift_free(&r);
}

static int inspect_fatbin(const void *fat, size_t len, void *arg)
{
	struct inspect *in = arg;
	struct gpuos_fatbin_entry e;
	struct gpuos_cubin *cubin = NULL;
	unsigned ptx[16], sass[16], nptx = 0, nsass = 0, best = 0, want, arch = 0;
	char ptxs[96], sasss[96];
	size_t pos = 0;
	int rc;

	in->nfat++;
	while ((rc = gpuos_fatbin_next(fat, len, &pos, &e)) == 1) {
		if (e.kind == GPUOS_FATBIN_PTX && nptx < 16)
			ptx[nptx++] = e.arch;
		if (e.kind == GPUOS_FATBIN_CUBIN && nsass < 16) {
			sass[nsass++] = e.arch;
			if (e.arch > best)
				best = e.arch;
		}
	}
	if (rc < 0) {
		fprintf(stderr, "gpuos inspect: %s: fatbin %d: %s\n", in->file, in->nfat,
			strerror(-rc));
		return 0;
	}
	archs_str(ptxs, sizeof(ptxs), ptx, nptx);
	archs_str(sasss, sizeof(sasss), sass, nsass);
	want = in->arch ? in->arch : best;
	rc = want ? gpuos_cubin_from_fatbin(fat, len, want, &cubin, &arch) : -ENOENT;
	if (rc == -ENOENT) {
		if (!in->json)
			printf("# fatbin %d: no cubin for sm_%u (sass %s, ptx %s)\n", in->nfat, want,
			       sasss[0] ? sasss : "none", ptxs[0] ? ptxs : "none");
		return 0;
	}
	if (rc) {
		fprintf(stderr, "gpuos inspect: %s: fatbin %d: cubin for sm_%u: %s\n", in->file,
			in->nfat, want, strerror(-rc));
		return 0;
	}
	/* the PTX ptx_lift would start from: the newest not newer than the device */
	void *ptxtext = NULL;
	size_t ptxlen = 0;
	if (!gpuos_fatbin_pick(fat, len, GPUOS_FATBIN_PTX, want, &e) &&
	    gpuos_fatbin_payload(&e, &ptxtext, &ptxlen))
		ptxtext = NULL;
	for (unsigned i = 0; i < gpuos_cubin_count(cubin); i++) {
		const struct gpuos_kinfo *k = gpuos_cubin_kernel(cubin, i);
		char *dm = gpuos_demangle(k->name);
		const char *name = dm ? dm : k->name;
		char act[64], lift[224];

		lift_status(ptxtext, ptxlen, k, want, lift, sizeof(lift));
		char sig[160] = "";
		struct gpuos_sig sg;
		if (!gpuos_sig_parse(name, &sg) && sg.family)
			snprintf(sig, sizeof(sig), "%s %u, %s, %s",
				 gpuos_sig_family_name(sg.family), sg.vec, sg.op,
				 sg.dtype[0] ? sg.dtype : "?");
		in->nkernels++;
		if (in->json) {
			printf("%s  {\"name\": ", in->first ? "" : ",\n");
			in->first = 0;
			gpuos_report_json_str(stdout, name);
			printf(", \"mangled\": ");
			gpuos_report_json_str(stdout, k->name);
			printf(", \"params\": [");
			for (unsigned p = 0; p < k->nparams; p++)
				printf("%s[%u, %u]", p ? ", " : "", k->params[p].offset,
				       k->params[p].size);
			printf("], \"param_bytes\": %u, \"regs\": %d, \"static_smem\": %u, "
			       "\"cubin_sm\": %u, \"sass_archs\": [%s], \"ptx_archs\": [%s], "
			       "\"action\": ",
			       k->param_bytes, k->regs, k->static_smem, arch, sasss, ptxs);
			action(in, name, act, sizeof(act));
			gpuos_report_json_str(stdout, act);
			printf(", \"lift\": ");
			gpuos_report_json_str(stdout, lift);
			if (sig[0]) {
				printf(", \"signature\": ");
				gpuos_report_json_str(stdout, sig);
			}
			putchar('}');
		} else {
			action(in, name, act, sizeof(act));
			printf("%s\n    params", name);
			for (unsigned p = 0; p < k->nparams; p++)
				printf(" %u:%u", k->params[p].offset, k->params[p].size);
			printf("%s  regs %d  smem %u  sm_%u  sass %s  ptx %s\n    %s\n    lift: %s\n",
			       k->nparams ? "" : " none", k->regs, k->static_smem, arch, sasss,
			       ptxs[0] ? ptxs : "none", act, lift);
			if (sig[0])
				printf("    signature: %s\n", sig);
		}
		free(dm);
	}
	free(ptxtext);
	gpuos_cubin_close(cubin);
	return 0;
}

static int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, 0, 'j' },
					      { "arch", required_argument, 0, 'a' },
					      { "config", required_argument, 0, 'c' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	struct inspect in = { .first = 1 };
	char err[512];
	int c, status = 0;

	while ((c = getopt_long(argc, argv, "ja:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			in.json = 1;
			break;
		case 'a':
			in.arch = strtoul(optarg + strspn(optarg, "sm_"), NULL, 10);
			break;
		case 'c':
			setenv("GPUOS_CONFIG", optarg, 1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (gpuos_cfg_load(&in.cfg, environ, err, sizeof(err))) {
		fprintf(stderr, "gpuos: %s\n", err);
		return 2;
	}
	if (in.json)
		printf("[\n");
	for (int i = optind; i < argc; i++) {
		int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
		struct stat st;
		void *map;
		int rc;

		in.file = argv[i];
		if (fd < 0 || fstat(fd, &st)) {
			fprintf(stderr, "gpuos inspect: %s: %s\n", argv[i], strerror(errno));
			status = 1;
			if (fd >= 0)
				close(fd);
			continue;
		}
		map = st.st_size ? mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
		close(fd);
		if (map == MAP_FAILED) {
			fprintf(stderr, "gpuos inspect: %s: cannot map\n", argv[i]);
			status = 1;
			continue;
		}
		if (!in.json)
			printf("# %s\n", argv[i]);
		rc = gpuos_hostelf_for_each_fatbin(map, st.st_size, inspect_fatbin, &in);
		if (rc == -ENOENT)
			fprintf(stderr, "gpuos inspect: %s: no CUDA fatbinary in it\n", argv[i]);
		else if (rc < 0)
			fprintf(stderr, "gpuos inspect: %s: %s\n", argv[i], strerror(-rc));
		if (rc < 0)
			status = 1;
		munmap(map, st.st_size);
	}
	if (in.json)
		printf("\n]\n");
	else
		printf("# %d kernels in %d fatbins\n", in.nkernels, in.nfat);
	gpuos_cfg_free(&in.cfg);
	return status;
}

static int cmd_config_check(int argc, char **argv)
{
	struct gpuos_cfg cfg;
	char err[512];
	int rc;

	if (argc >= 2 && !strcmp(argv[1], "--options")) {
		gpuos_cfg_print_options(stdout);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: gpuos config-check [--options] FILE\n");
		return 2;
	}
	gpuos_cfg_init(&cfg);
	rc = gpuos_cfg_load_file(&cfg, argv[1], err, sizeof(err));
	gpuos_cfg_free(&cfg);
	if (rc) {
		fprintf(stderr, "gpuos: %s\n", err);
		return 2;
	}
	printf("%s: ok\n", argv[1]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "inspect"))
		return cmd_inspect(argc - 1, argv + 1);
	if (!strcmp(argv[1], "config-check"))
		return cmd_config_check(argc - 1, argv + 1);
	fprintf(stderr, "gpuos: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
