// SPDX-License-Identifier: MIT
/*
 * interpose/config.c: the option table, the file format, environment overrides, the load
 * order and its failure mode (pass-through), and allow/deny matching on real PyTorch names.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interpose/config.h"
#include "log.h"

/* Demangled names as PyTorch 2.11 (cu130) registers them. */
#define K_ADD                                                                                      \
	"void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "   \
	"std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul>)"
#define K_MUL                                                                                      \
	"void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor<float, float, " \
	"float, at::native::binary_internal::MulFunctor<float> >, std::array<char*, 3ul> >(int, "  \
	"at::native::BinaryFunctor<float, float, float, at::native::binary_internal::MulFunctor<"  \
	"float> >, std::array<char*, 3ul>)"
#define K_GELU                                                                                     \
	"void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl(at::"    \
	"TensorIteratorBase&, at::native::GeluType)::{lambda()#1}::operator()() const::{lambda()#2}" \
	"::operator()() const::{lambda(float)#1}, std::array<char*, 2ul> >(int, at::native::"      \
	"GeluCUDAKernelImpl(at::TensorIteratorBase&, at::native::GeluType)::{lambda()#1}::"        \
	"operator()() const::{lambda()#2}::operator()() const::{lambda(float)#1}, std::array<char*, " \
	"2ul>)"
#define K_SOFTMAX                                                                                  \
	"void (anonymous namespace)::softmax_warp_forward<float, float, float, 8, false, false>("  \
	"float*, float const*, int, int, int, bool const*, int, bool)"
#define K_SUM                                                                                      \
	"void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::"          \
	"func_wrapper_t<float, at::native::sum_functor<float, float, float>::operator()(at::"      \
	"TensorIterator&)::{lambda(float, float)#1}>, unsigned int, float, 4, 4> >(at::native::"   \
	"ReduceOp<float, at::native::func_wrapper_t<float, at::native::sum_functor<float, float, " \
	"float>::operator()(at::TensorIterator&)::{lambda(float, float)#1}>, unsigned int, float, " \
	"4, 4>)"

static char tmpdir[] = "/tmp/check_config.XXXXXX";

/* A file under the suite's temporary folder holding exactly (text, len). */
static const char *write_file(const char *name, const char *text, size_t len)
{
	static char path[4][512];
	static int which;
	char *p = path[which++ % 4];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
	return p;
}

/* Parse from a malloc'd copy of exactly len bytes: under ASan, reading past it is caught. */
static int parse(struct gpuos_cfg *cfg, const char *text, size_t len, char *err, size_t errlen)
{
	char *copy = malloc(len ? len : 1);
	int ret;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, text, len);
	ret = gpuos_cfg_parse(cfg, copy, len, "t.conf", err, errlen);
	free(copy);
	return ret;
}

#define PARSE_OK(cfg, text)                                                                        \
	do {                                                                                       \
		char err_[512] = "";                                                               \
		int r_ = parse(cfg, text, strlen(text), err_, sizeof(err_));                       \
		ck_assert_msg(r_ == 0, "parse failed: %d %s", r_, err_);                           \
	} while (0)

static void assert_defaults(const struct gpuos_cfg *cfg, bool enable)
{
	ck_assert(cfg->enable == enable);
	ck_assert_int_eq(cfg->log_level, GPUOS_LOG_WARN);
	ck_assert_str_eq(cfg->report, "");
	ck_assert_uint_eq(cfg->max_elements, 16384);
	ck_assert_uint_eq(cfg->max_copy_bytes, 65536);
	ck_assert_uint_eq(cfg->max_blocks, 4096);
	ck_assert_uint_eq(cfg->max_threads, 1024);
	ck_assert_uint_eq(cfg->reduce_max_threads, 1024);
	ck_assert(!cfg->lift);
	ck_assert(cfg->catalog);
	ck_assert_uint_eq(cfg->lift_max_threads, 8192);
	ck_assert_uint_eq(cfg->workers, 2);
	ck_assert_uint_eq(cfg->worker_threads, 512);
	ck_assert_uint_eq(cfg->worker_idle_ms, 100);
	ck_assert_str_eq(cfg->cache_dir, "");
	ck_assert_uint_eq(cfg->nallow, 0);
	ck_assert_uint_eq(cfg->ndeny, 0);
}

START_TEST(test_defaults)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	assert_defaults(&cfg, true);
	gpuos_cfg_free(&cfg);
	gpuos_cfg_free(&cfg); /* twice is fine */
	gpuos_cfg_free(NULL);
}
END_TEST

static const char all_options[] = "# every option\n"
				  "enable = off\n"
				  "log = debug\n"
				  "report = /tmp/gpuos-report.json\n"
				  "max_elements = 65536\n"
				  "max_blocks = 128\n"
				  "max_threads = 256\n"
				  "reduce_max_threads = 2k\n"
				  "cache_dir = /var/cache/gpuos\n"
				  "workers = 4\n"
				  "worker_threads = 1024\n"
				  "worker_idle_ms = 5000\n"
				  "allow = *elementwise_kernel<*\n"
				  "allow = *reduce_kernel<*\n"
				  "deny = *Gelu*\n";

static void assert_all_options(const struct gpuos_cfg *cfg)
{
	ck_assert(!cfg->enable);
	ck_assert_int_eq(cfg->log_level, GPUOS_LOG_DEBUG);
	ck_assert_str_eq(cfg->report, "/tmp/gpuos-report.json");
	ck_assert_uint_eq(cfg->max_elements, 65536);
	ck_assert_uint_eq(cfg->max_blocks, 128);
	ck_assert_uint_eq(cfg->max_threads, 256);
	ck_assert_uint_eq(cfg->reduce_max_threads, 2048);
	ck_assert_str_eq(cfg->cache_dir, "/var/cache/gpuos");
	ck_assert_uint_eq(cfg->workers, 4);
	ck_assert_uint_eq(cfg->worker_threads, 1024);
	ck_assert_uint_eq(cfg->worker_idle_ms, 5000);
	ck_assert_uint_eq(cfg->nallow, 2);
	ck_assert_str_eq(cfg->allow[0], "*elementwise_kernel<*");
	ck_assert_str_eq(cfg->allow[1], "*reduce_kernel<*");
	ck_assert_uint_eq(cfg->ndeny, 1);
	ck_assert_str_eq(cfg->deny[0], "*Gelu*");
}

START_TEST(test_file_every_option)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, all_options);
	assert_all_options(&cfg);
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_env_every_option)
{
	char *env[] = { "PATH=/usr/bin",
			"GPUOS_ENABLE=off",
			"GPUOS_LOG=debug",
			"GPUOS_REPORT=/tmp/gpuos-report.json",
			"GPUOS_MAX_ELEMENTS=64k",
			"GPUOS_MAX_BLOCKS= 128 ",
			"GPUOS_MAX_THREADS=256",
			"GPUOS_REDUCE_MAX_THREADS=2k",
			"GPUOS_CACHE_DIR=/var/cache/gpuos",
			"GPUOS_WORKERS=4",
			"GPUOS_WORKER_THREADS=1k",
			"GPUOS_WORKER_IDLE_MS=5000",
			"GPUOS_ALLOW=*elementwise_kernel<*; *reduce_kernel<* ;;",
			"GPUOS_DENY=*Gelu*",
			"GPUOS_UNRELATED=whatever", /* other parts own other GPUOS_ names */
			NULL };
	struct gpuos_cfg cfg;
	char err[256] = "";

	gpuos_cfg_init(&cfg);
	ck_assert_int_eq(gpuos_cfg_apply_env(&cfg, env, err, sizeof(err)), 0);
	assert_all_options(&cfg);
	gpuos_cfg_free(&cfg);

	/* the same through the whole load, no file */
	char *env2[] = { "GPUOS_CONFIG=",
			 "GPUOS_ENABLE=off",
			 "GPUOS_LOG=debug",
			 "GPUOS_REPORT=/tmp/gpuos-report.json",
			 "GPUOS_MAX_ELEMENTS=65536",
			 "GPUOS_MAX_BLOCKS=128",
			 "GPUOS_MAX_THREADS=256",
			 "GPUOS_REDUCE_MAX_THREADS=2048",
			 "GPUOS_CACHE_DIR=/var/cache/gpuos",
			 "GPUOS_WORKERS=4",
			 "GPUOS_WORKER_THREADS=1024",
			 "GPUOS_WORKER_IDLE_MS=5000",
			 "GPUOS_ALLOW=*elementwise_kernel<*;*reduce_kernel<*",
			 "GPUOS_DENY=*Gelu*",
			 NULL };
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env2, err, sizeof(err)), 0);
	assert_all_options(&cfg);
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_env_first_entry_wins)
{
	char *env[] = { "GPUOS_MAX_BLOCKS=7", "GPUOS_MAX_BLOCKS=9", "GPUOS_MAX_BLOCKSX=1", NULL };
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	ck_assert_int_eq(gpuos_cfg_apply_env(&cfg, env, NULL, 0), 0);
	ck_assert_uint_eq(cfg.max_blocks, 7);
	ck_assert_int_eq(gpuos_cfg_apply_env(&cfg, NULL, NULL, 0), 0);
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_env_overrides_file)
{
	const char *path = write_file("over.conf", all_options, strlen(all_options));
	char cfgvar[600], err[512] = "";
	char *env[] = { cfgvar,		       "GPUOS_ENABLE=yes",  "GPUOS_MAX_BLOCKS=2k",
			"GPUOS_REPORT=stderr", "GPUOS_ALLOW=*softmax*", "GPUOS_LOG=off",
			NULL };
	struct gpuos_cfg cfg;

	snprintf(cfgvar, sizeof(cfgvar), "GPUOS_CONFIG=%s", path);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), 0);
	ck_assert(cfg.enable);
	ck_assert_int_eq(cfg.log_level, GPUOS_LOG_OFF);
	ck_assert_str_eq(cfg.report, "stderr");
	ck_assert_uint_eq(cfg.max_blocks, 2048);
	/* untouched by the environment: the file's */
	ck_assert_uint_eq(cfg.max_threads, 256);
	ck_assert_str_eq(cfg.cache_dir, "/var/cache/gpuos");
	/* patterns add up: file first, then environment */
	ck_assert_uint_eq(cfg.nallow, 3);
	ck_assert_str_eq(cfg.allow[2], "*softmax*");
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SOFTMAX), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_GELU), GPUOS_CFG_DENY);
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_bools)
{
	static const char *const on[] = { "1", "true", "TRUE", "True", "yes", "YES", "on", "On" };
	static const char *const off[] = { "0", "false", "FALSE", "no", "No", "off", "OFF" };
	char text[64], envvar[64];
	struct gpuos_cfg cfg;

	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		gpuos_cfg_init(&cfg);
		cfg.enable = false;
		snprintf(text, sizeof(text), "enable = %s\n", on[i]);
		PARSE_OK(&cfg, text);
		ck_assert_msg(cfg.enable, "%s", on[i]);

		cfg.enable = false;
		snprintf(envvar, sizeof(envvar), "GPUOS_ENABLE=%s", on[i]);
		char *env[] = { envvar, NULL };
		ck_assert_int_eq(gpuos_cfg_apply_env(&cfg, env, NULL, 0), 0);
		ck_assert_msg(cfg.enable, "env %s", on[i]);
	}
	for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		gpuos_cfg_init(&cfg);
		snprintf(text, sizeof(text), "enable=%s", off[i]);
		PARSE_OK(&cfg, text);
		ck_assert_msg(!cfg.enable, "%s", off[i]);

		cfg.enable = true;
		snprintf(envvar, sizeof(envvar), "GPUOS_ENABLE=%s", off[i]);
		char *env[] = { envvar, NULL };
		ck_assert_int_eq(gpuos_cfg_apply_env(&cfg, env, NULL, 0), 0);
		ck_assert_msg(!cfg.enable, "env %s", off[i]);
	}
}
END_TEST

START_TEST(test_levels)
{
	static const struct {
		const char *text;
		int level;
	} cases[] = {
		{ "off", GPUOS_LOG_OFF },   { "error", GPUOS_LOG_ERROR }, { "warn", GPUOS_LOG_WARN },
		{ "info", GPUOS_LOG_INFO }, { "debug", GPUOS_LOG_DEBUG }, { "DEBUG", GPUOS_LOG_DEBUG },
		{ "Info", GPUOS_LOG_INFO }, { "0", GPUOS_LOG_ERROR },	  { "3", GPUOS_LOG_DEBUG },
	};
	char text[64];
	struct gpuos_cfg cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gpuos_cfg_init(&cfg);
		snprintf(text, sizeof(text), "log = %s", cases[i].text);
		PARSE_OK(&cfg, text);
		ck_assert_int_eq(cfg.log_level, cases[i].level);
	}
}
END_TEST

START_TEST(test_sizes)
{
	static const struct {
		const char *text;
		uint64_t v;
	} cases[] = {
		{ "0", 0 },
		{ "1", 1 },
		{ "64k", 64 << 10 },
		{ "64K", 64 << 10 },
		{ "2m", 2 << 20 },
		{ "2M", 2 << 20 },
		{ "1g", 1ull << 30 },
		{ "3G", 3ull << 30 },
		{ "18446744073709551615", UINT64_MAX },
		{ "17179869183g", 17179869183ull << 30 },
		{ "007", 7 },
	};
	char text[256];
	struct gpuos_cfg cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gpuos_cfg_init(&cfg);
		snprintf(text, sizeof(text), "max_elements = %s\nmax_blocks=%s\nmax_threads\t=\t%s",
			 cases[i].text, cases[i].text, cases[i].text);
		PARSE_OK(&cfg, text);
		ck_assert_uint_eq(cfg.max_elements, cases[i].v);
		ck_assert_uint_eq(cfg.max_blocks, cases[i].v);
		ck_assert_uint_eq(cfg.max_threads, cases[i].v);
	}
}
END_TEST

START_TEST(test_last_wins)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "max_blocks = 1\nmax_blocks = 2\nlog = info\nlog = error\n");
	ck_assert_uint_eq(cfg.max_blocks, 2);
	ck_assert_int_eq(cfg.log_level, GPUOS_LOG_ERROR);
}
END_TEST

START_TEST(test_quoted)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "allow = \"*CUDAFunctor_add #1*\"\n"
		       "cache_dir = \"  /tmp/with space  \"   # kept as quoted\n"
		       "report = \"\"\n"
		       "deny = \"*Gelu*\"# comment right after the quote\n"
		       "max_blocks = \"64k\"\n"
		       "enable = \"no\"\n"
		       "allow = a\"b\n");
	ck_assert_str_eq(cfg.allow[0], "*CUDAFunctor_add #1*");
	ck_assert_str_eq(cfg.cache_dir, "  /tmp/with space  ");
	ck_assert_str_eq(cfg.report, "");
	ck_assert_str_eq(cfg.deny[0], "*Gelu*");
	ck_assert_uint_eq(cfg.max_blocks, 65536);
	ck_assert(!cfg.enable);
	/* a quote inside an unquoted value is just a character */
	ck_assert_str_eq(cfg.allow[1], "a\"b");
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_comments)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "# a comment = with an equals sign\n"
		       "   \t# indented comment\n"
		       "\n"
		       "   \t  \n"
		       "max_blocks = 8 # trailing comment\n"
		       "max_threads = 16\t# after a tab\n"
		       "allow = *{lambda(float)#1}*\n"
		       "deny = *#2}* #but this is a comment\n"
		       "enable = on #\n"
		       "#enable = off\n");
	ck_assert_uint_eq(cfg.max_blocks, 8);
	ck_assert_uint_eq(cfg.max_threads, 16);
	ck_assert(cfg.enable);
	/* '#' not after a blank is part of the value: demangled lambdas need it */
	ck_assert_str_eq(cfg.allow[0], "*{lambda(float)#1}*");
	ck_assert_str_eq(cfg.deny[0], "*#2}*");
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_crlf_and_bom)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "\xef\xbb\xbf# from Windows\r\nmax_blocks = 8\r\nallow = *add*\r\n\r\n"
		       "cache_dir = \"/x\"\r\nenable = off");
	ck_assert_uint_eq(cfg.max_blocks, 8);
	ck_assert_str_eq(cfg.allow[0], "*add*");
	ck_assert_str_eq(cfg.cache_dir, "/x");
	ck_assert(!cfg.enable);
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_utf8_values)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "# Grüße, 核函数 🚀\ncache_dir = /tmp/café\n");
	ck_assert_str_eq(cfg.cache_dir, "/tmp/café");
}
END_TEST

START_TEST(test_report_spellings)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "1", "stderr" },	 { "on", "stderr" },  { "stderr", "stderr" },
		{ "0", "" },		 { "off", "" },	      { "NO", "" },
		{ "/tmp/r.json", "/tmp/r.json" }, { "report.txt", "report.txt" }, { "./on", "./on" },
	};
	char text[64];
	struct gpuos_cfg cfg;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		gpuos_cfg_init(&cfg);
		snprintf(text, sizeof(text), "report = %s", cases[i].text);
		PARSE_OK(&cfg, text);
		ck_assert_str_eq(cfg.report, cases[i].want);
	}
}
END_TEST

START_TEST(test_longest_line)
{
	/* 4096 bytes is the limit, not counting "\r\n" */
	char *text = malloc(4096 + 2);
	struct gpuos_cfg cfg;
	char err[256] = "";

	ck_assert_ptr_nonnull(text);
	memcpy(text, "allow = ", 8);
	memset(text + 8, 'x', 4096 - 8);
	memcpy(text + 4096, "\r\n", 2);
	gpuos_cfg_init(&cfg);
	ck_assert_int_eq(parse(&cfg, text, 4096 + 2, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(cfg.allow[0]), 4096 - 8);
	gpuos_cfg_free(&cfg);
	free(text);
}
END_TEST

/* Errors: the text, and the message after "SOURCE:". */
static char long_line[4200], many_allow[300 * 12];

static const struct {
	const char *text;
	size_t len; /* 0: strlen */
	const char *msg;
} errors[] = {
	{ "enable = on\n\n# x\nmax_block = 3\n", 0,
	  "4: unknown key 'max_block' (did you mean 'max_blocks'?)" },
	{ "Enable = on", 0, "1: unknown key 'Enable' (did you mean 'enable'?)" },
	{ "max-threads = 4", 0, "1: unknown key 'max-threads' (did you mean 'max_threads'?)" },
	{ "frobnicate = 1", 0, "1: unknown key 'frobnicate'" },
	{ "x = 1", 0, "1: unknown key 'x'" },
	{ "enable on", 0, "1: missing '=' in 'enable on' (expected 'key = value')" },
	{ "enable # = on", 0, "1: missing '=' in 'enable' (expected 'key = value')" },
	{ "  = on", 0, "1: missing key before '='" },
	{ "max_blocks = x", 0, "1: max_blocks: bad value 'x' (expected a number)" },
	{ "max_blocks = ", 0, "1: max_blocks: bad value '' (expected a number)" },
	{ "max_blocks = -1", 0, "1: max_blocks: bad value '-1' (expected a number)" },
	{ "max_blocks = 12kb", 0, "1: max_blocks: bad value '12kb' (expected a number)" },
	{ "max_blocks = k", 0, "1: max_blocks: bad value 'k' (expected a number)" },
	{ "max_blocks = 8#x", 0, "1: max_blocks: bad value '8#x' (expected a number)" },
	{ "max_blocks = 1 2", 0, "1: max_blocks: bad value '1 2' (expected a number)" },
	{ "max_elements = 18446744073709551616", 0,
	  "1: max_elements: bad value '18446744073709551616' (number too large)" },
	{ "max_elements = 17179869184g", 0,
	  "1: max_elements: bad value '17179869184g' (number too large)" },
	{ "enable = maybe", 0,
	  "1: enable: bad value 'maybe' (expected on/off, true/false, yes/no or 1/0)" },
	{ "enable = ", 0, "1: enable: bad value '' (expected on/off, true/false, yes/no or 1/0)" },
	{ "log = loud", 0, "1: log: bad value 'loud' (expected off, error, warn, info or debug)" },
	{ "log = 4", 0, "1: log: bad value '4' (expected off, error, warn, info or debug)" },
	{ "allow = ", 0, "1: allow: empty pattern" },
	{ "deny = \"\"", 0, "1: deny: empty pattern" },
	{ "deny = # nothing", 0, "1: deny: empty pattern" },
	{ "allow = foo\\", 0, "1: allow: pattern ends in a lone '\\'" },
	{ "allow = \"foo", 0, "1: allow: unterminated quoted value" },
	{ "allow = \"foo\" bar", 0, "1: allow: unexpected text after closing quote" },
	{ "enable = o\0n\n", 13, "1: NUL byte (column 11)" },
	{ "\0", 1, "1: NUL byte (column 1)" },
	{ "enable = on\nlog = \x01", 0, "2: control character 0x01 (column 7)" },
	{ "enable = on\rlog = warn\n", 0, "1: control character 0x0d (column 12)" },
	{ "cache_dir = /tmp/\xff", 0, "1: invalid UTF-8 (column 18)" },
	{ "cache_dir = /tmp/\xc3", 0, "1: invalid UTF-8 (column 18)" },
	{ "cache_dir = /tmp/\xc0\xaf", 0, "1: invalid UTF-8 (column 18)" },
	{ "cache_dir = /tmp/\xed\xa0\x80", 0, "1: invalid UTF-8 (column 18)" },
	{ long_line, 0, "2: line too long (over 4096 bytes)" },
	{ many_allow, 0, "257: allow: too many patterns (at most 256)" },
};

static void make_error_inputs(void)
{
	size_t o = 0;

	/* the second line: 4097 bytes */
	o = snprintf(long_line, sizeof(long_line), "enable = on\n# ");
	memset(long_line + o, 'x', 4097 - 2);
	long_line[o + 4097 - 2] = '\0';

	o = 0;
	for (int i = 0; i < 257; i++)
		o += snprintf(many_allow + o, sizeof(many_allow) - o, "allow = k%d\n", i);
}

START_TEST(test_parse_errors)
{
	size_t len = errors[_i].len ? errors[_i].len : strlen(errors[_i].text);
	char err[512] = "", want[512];
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	ck_assert_int_eq(parse(&cfg, errors[_i].text, len, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "t.conf:%s", errors[_i].msg);
	ck_assert_str_eq(err, want);
	gpuos_cfg_free(&cfg);
}
END_TEST

/* The same through the whole load: message names the file, and everything passes through. */
START_TEST(test_load_errors)
{
	size_t len = errors[_i].len ? errors[_i].len : strlen(errors[_i].text);
	const char *path = write_file("bad.conf", errors[_i].text, len);
	char cfgvar[600], err[512] = "", want[512];
	char *env[] = { cfgvar, "GPUOS_MAX_BLOCKS=7", "GPUOS_ALLOW=*x*", NULL };
	struct gpuos_cfg cfg;

	snprintf(cfgvar, sizeof(cfgvar), "GPUOS_CONFIG=%s", path);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:%s", path, errors[_i].msg);
	ck_assert_str_eq(err, want);
	assert_defaults(&cfg, false);
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_env_errors)
{
	static char many[300 * 4], big[5000];
	static const struct {
		const char *var, *msg;
	} cases[] = {
		{ "GPUOS_MAX_BLOCKS=x", "GPUOS_MAX_BLOCKS: bad value 'x' (expected a number)" },
		{ "GPUOS_MAX_THREADS=", "GPUOS_MAX_THREADS: bad value '' (expected a number)" },
		{ "GPUOS_MAX_ELEMENTS=99999999999999999999",
		  "GPUOS_MAX_ELEMENTS: bad value '99999999999999999999' (number too large)" },
		{ "GPUOS_ENABLE=2",
		  "GPUOS_ENABLE: bad value '2' (expected on/off, true/false, yes/no or 1/0)" },
		{ "GPUOS_LOG=verbose",
		  "GPUOS_LOG: bad value 'verbose' (expected off, error, warn, info or debug)" },
		{ "GPUOS_LOG=a\nb", "GPUOS_LOG: bad value 'a\\x0ab' (expected off, error, warn, "
				    "info or debug)" },
		{ "GPUOS_DENY=ok;bad\\", "GPUOS_DENY: pattern ends in a lone '\\'" },
		{ many, "GPUOS_ALLOW: too many patterns (at most 256)" },
		{ big, "GPUOS_CACHE_DIR: value too long (at most 4095 bytes)" },
	};
	size_t o = snprintf(many, sizeof(many), "GPUOS_ALLOW=");

	for (int i = 0; i < 257; i++)
		o += snprintf(many + o, sizeof(many) - o, "k%d;", i);
	o = snprintf(big, sizeof(big), "GPUOS_CACHE_DIR=");
	memset(big + o, 'd', 4096);
	big[o + 4096] = '\0';

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* the bad variable first: with two entries of one name, the first counts */
		char *env[] = { (char *)cases[i].var, "GPUOS_CONFIG=", "GPUOS_MAX_THREADS=5",
				"GPUOS_DENY=*y*", NULL };
		struct gpuos_cfg cfg;
		char err[512] = "";

		/* apply_env alone */
		gpuos_cfg_init(&cfg);
		ck_assert_int_lt(gpuos_cfg_apply_env(&cfg, env, err, sizeof(err)), 0);
		ck_assert_str_eq(err, cases[i].msg);
		gpuos_cfg_free(&cfg);

		/* the whole load */
		err[0] = '\0';
		ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), -EINVAL);
		ck_assert_str_eq(err, cases[i].msg);
		assert_defaults(&cfg, false);
		gpuos_cfg_free(&cfg);
	}
}
END_TEST

START_TEST(test_long_value_shown_short)
{
	char text[200], err[512];
	struct gpuos_cfg cfg;

	snprintf(text, sizeof(text), "max_blocks = %0100d", 0);
	text[14] = 'x';
	gpuos_cfg_init(&cfg);
	ck_assert_int_eq(parse(&cfg, text, strlen(text), err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "...' (expected a number)"));
	ck_assert_uint_lt(strlen(err), 130);
	/* a small err buffer is truncated, not overrun */
	ck_assert_int_eq(parse(&cfg, text, strlen(text), err, 8), -EINVAL);
	ck_assert_str_eq(err, "t.conf:");
	ck_assert_int_eq(parse(&cfg, text, strlen(text), NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_unreadable_config)
{
	char cfgvar[600], err[600], want[600], dir[512];
	char *env[] = { cfgvar, NULL };
	struct gpuos_cfg cfg;

	/* missing file named by GPUOS_CONFIG is an error, unlike a missing default file */
	snprintf(cfgvar, sizeof(cfgvar), "GPUOS_CONFIG=%s/nonexistent.conf", tmpdir);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s/nonexistent.conf: No such file or directory", tmpdir);
	ck_assert_str_eq(err, want);
	assert_defaults(&cfg, false);

	snprintf(dir, sizeof(dir), "%s/adir", tmpdir);
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(cfgvar, sizeof(cfgvar), "GPUOS_CONFIG=%s", dir);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: Is a directory", dir);
	ck_assert_str_eq(err, want);
	assert_defaults(&cfg, false);

	/* no read permission: root reads anything, so drop to nobody (this is a forked child) */
	const char *path = write_file("noperm.conf", "enable = on\n", 12);
	ck_assert_int_eq(chmod(path, 0), 0);
	if (geteuid() == 0)
		ck_assert_int_eq(setresuid(65534, 65534, 65534), 0);
	snprintf(cfgvar, sizeof(cfgvar), "GPUOS_CONFIG=%s", path);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: Permission denied", path);
	ck_assert_str_eq(err, want);
	assert_defaults(&cfg, false);
}
END_TEST

START_TEST(test_too_large_file)
{
	size_t len = (1u << 20) + 1;
	char *text = malloc(len);
	char cfgvar[600], err[600], want[600];
	char *env[] = { cfgvar, NULL };
	struct gpuos_cfg cfg;
	const char *path;

	ck_assert_ptr_nonnull(text);
	memset(text, '\n', len);
	path = write_file("big.conf", text, len);
	snprintf(cfgvar, sizeof(cfgvar), "GPUOS_CONFIG=%s", path);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: file too large (over 1048576 bytes)", path);
	ck_assert_str_eq(err, want);

	/* exactly at the limit is fine */
	path = write_file("big.conf", text, len - 1);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), 0);
	assert_defaults(&cfg, true);
	free(text);
}
END_TEST

START_TEST(test_default_path)
{
	char buf[512];
	char *xdg[] = { "HOME=/home/u", "XDG_CONFIG_HOME=/xdg", NULL };
	char *home[] = { "HOME=/home/u", NULL };
	char *relxdg[] = { "XDG_CONFIG_HOME=rel", "HOME=/home/u", NULL };
	char *emptyxdg[] = { "XDG_CONFIG_HOME=", "HOME=/home/u", NULL };
	char *none[] = { "PATH=/bin", NULL };

	ck_assert_int_eq(gpuos_cfg_default_path(xdg, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/xdg/gpuos/gpuos.conf");
	ck_assert_int_eq(gpuos_cfg_default_path(home, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/home/u/.config/gpuos/gpuos.conf");
	/* the XDG spec: a relative or empty XDG_CONFIG_HOME is ignored */
	ck_assert_int_eq(gpuos_cfg_default_path(relxdg, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/home/u/.config/gpuos/gpuos.conf");
	ck_assert_int_eq(gpuos_cfg_default_path(emptyxdg, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "/home/u/.config/gpuos/gpuos.conf");
	ck_assert_int_eq(gpuos_cfg_default_path(none, buf, sizeof(buf)), -ENOENT);
	ck_assert_int_eq(gpuos_cfg_default_path(NULL, buf, sizeof(buf)), -ENOENT);
	ck_assert_int_eq(gpuos_cfg_default_path(xdg, buf, 10), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_default_file_missing)
{
	char homevar[600], err[512] = "x";
	char *env[] = { homevar, "GPUOS_MAX_BLOCKS=5", NULL };
	char *noenv[] = { NULL };
	struct gpuos_cfg cfg;

	/* no ~/.config at all */
	snprintf(homevar, sizeof(homevar), "HOME=%s", tmpdir);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), 0);
	ck_assert_str_eq(err, "");
	ck_assert(cfg.enable);
	ck_assert_uint_eq(cfg.max_blocks, 5);

	/* ~/.config a file, not a folder: still just "no config" */
	write_file(".config", "", 0);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), 0);
	ck_assert(cfg.enable);

	/* no HOME either */
	ck_assert_int_eq(gpuos_cfg_load(&cfg, noenv, err, sizeof(err)), 0);
	assert_defaults(&cfg, true);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, NULL, err, sizeof(err)), 0);
	assert_defaults(&cfg, true);
}
END_TEST

static void mkdir_p(const char *fmt, const char *arg, char *out, size_t outlen)
{
	char path[512];

	snprintf(path, sizeof(path), fmt, tmpdir, arg);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
	ck_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
	snprintf(out, outlen, "%s", path);
}

START_TEST(test_default_file_read)
{
	char dir[512], homevar[600], xdgvar[600], err[600] = "", path[600], want[700];
	char *home_env[] = { homevar, NULL };
	char *xdg_env[] = { xdgvar, homevar, NULL };
	struct gpuos_cfg cfg;
	FILE *f;

	/* $HOME/.config/gpuos/gpuos.conf */
	mkdir_p("%s/%s/.config/gpuos", "home", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/gpuos.conf", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("max_blocks = 11\n", f);
	fclose(f);
	snprintf(homevar, sizeof(homevar), "HOME=%s/home", tmpdir);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, home_env, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.max_blocks, 11);

	/* $XDG_CONFIG_HOME/gpuos/gpuos.conf takes the place of ~/.config */
	mkdir_p("%s/%s/gpuos", "xdg", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/gpuos.conf", dir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("max_blocks = 22\nmax_thread = 3\n", f);
	fclose(f);
	snprintf(xdgvar, sizeof(xdgvar), "XDG_CONFIG_HOME=%s/xdg", tmpdir);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, xdg_env, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: unknown key 'max_thread' (did you mean 'max_threads'?)",
		 path);
	ck_assert_str_eq(err, want);
	assert_defaults(&cfg, false);

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("max_blocks = 22\n", f);
	fclose(f);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, xdg_env, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.max_blocks, 22);

	/* GPUOS_CONFIG set but empty: no file at all, not even the default */
	char *nofile_env[] = { "GPUOS_CONFIG=", xdgvar, NULL };
	ck_assert_int_eq(gpuos_cfg_load(&cfg, nofile_env, err, sizeof(err)), 0);
	assert_defaults(&cfg, true);

	/* present but unreadable default: an error */
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, xdg_env, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: Is a directory", path);
	ck_assert_str_eq(err, want);
	assert_defaults(&cfg, false);
}
END_TEST

START_TEST(test_match_none)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_DEFAULT);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SOFTMAX), GPUOS_CFG_DEFAULT);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, ""), GPUOS_CFG_DEFAULT);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, NULL), GPUOS_CFG_DEFAULT);
}
END_TEST

START_TEST(test_match_allow_only)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "allow = void at::native::vectorized_elementwise_kernel<*\n");
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_MUL), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_GELU), GPUOS_CFG_ALLOW);
	/* an allowlist: whatever it does not name is denied */
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SOFTMAX), GPUOS_CFG_DENY);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SUM), GPUOS_CFG_DENY);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, NULL), GPUOS_CFG_DENY);
	gpuos_cfg_free(&cfg);

	/* '*' in the name itself: escaped, and as a bracket expression */
	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "allow = *std::array<char\\*, 3ul>)\n");
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_MUL), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_GELU), GPUOS_CFG_DENY);
	gpuos_cfg_free(&cfg);

	/* a pattern with the lambda's '#' and a '?' */
	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "allow = *GeluCUDAKernelImpl*{lambda(float)#?}*\n"
		       "allow = *sum_functor<float, float, float>*\n");
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_GELU), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SUM), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_DENY);
	gpuos_cfg_free(&cfg);

	/* exact name, no wildcard */
	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "allow = " K_SOFTMAX "\n");
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SOFTMAX), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_DENY);
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_match_deny_only)
{
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "deny = *softmax_warp_forward<*\ndeny = *ReduceOp<float, *\n");
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SOFTMAX), GPUOS_CFG_DENY);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SUM), GPUOS_CFG_DENY);
	/* no allow patterns: the rest is up to the catalog */
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_DEFAULT);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_GELU), GPUOS_CFG_DEFAULT);
	gpuos_cfg_free(&cfg);
}
END_TEST

START_TEST(test_match_deny_wins)
{
	char *env[] = { "GPUOS_DENY=*GeluCUDAKernelImpl*", NULL };
	struct gpuos_cfg cfg;

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "allow = *elementwise_kernel<*\nallow = *\n");
	ck_assert_int_eq(gpuos_cfg_apply_env(&cfg, env, NULL, 0), 0);
	/* allowed twice over, still denied */
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_GELU), GPUOS_CFG_DENY);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SOFTMAX), GPUOS_CFG_ALLOW);
	gpuos_cfg_free(&cfg);

	gpuos_cfg_init(&cfg);
	PARSE_OK(&cfg, "allow = *vectorized_elementwise_kernel<*\ndeny = *CUDAFunctor_add<*\n");
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_DENY);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_MUL), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SUM), GPUOS_CFG_DENY);
	gpuos_cfg_free(&cfg);
}
END_TEST

static const char prefix_text[] = "\xef\xbb\xbf# gpuos config\r\n"
				  "enable = on\r\n"
				  "log = \"info\"   # quoted\n"
				  "report = /tmp/r.json\n"
				  "max_elements = 64k\n"
				  "max_blocks=4096\n"
				  "max_threads = 1024 # x\n"
				  "cache_dir = \"/tmp/gpuos cache\"\n"
				  "allow = *{lambda(float)#1}*\n"
				  "deny = *softmax*\n"
				  "  \t\n"
				  "allow = \"void at::native::*\"";

/* Every prefix of a valid file, each in an exact-length buffer: no crash, no overread. */
START_TEST(test_every_prefix)
{
	size_t len = sizeof(prefix_text) - 1;
	char err[512];

	for (size_t n = 0; n <= len; n++) {
		struct gpuos_cfg cfg;
		int ret;

		gpuos_cfg_init(&cfg);
		err[0] = '\0';
		ret = parse(&cfg, prefix_text, n, err, sizeof(err));
		ck_assert_msg(ret == 0 || ret == -EINVAL, "prefix %zu: %d", n, ret);
		ck_assert_msg(ret == 0 || !strncmp(err, "t.conf:", 7), "prefix %zu: %s", n, err);
		gpuos_cfg_match(&cfg, K_GELU);
		gpuos_cfg_free(&cfg);
	}
}
END_TEST

/*
 * The input ends exactly at a PROT_NONE page: any read past len faults, with or without
 * ASan. Every suffix, so each way a file can end meets the guard.
 */
START_TEST(test_guard_page)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t len = sizeof(prefix_text) - 1;
	char *map = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char err[512];

	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(mprotect(map + pg, pg, PROT_NONE), 0);
	for (size_t n = 0; n <= len; n++) {
		char *at = map + pg - n;
		struct gpuos_cfg cfg;

		memcpy(at, prefix_text + len - n, n);
		gpuos_cfg_init(&cfg);
		gpuos_cfg_parse(&cfg, at, n, "guard", err, sizeof(err));
		gpuos_cfg_free(&cfg);
	}
	/* and the whole valid file, checked */
	{
		struct gpuos_cfg cfg;

		memcpy(map + pg - len, prefix_text, len);
		gpuos_cfg_init(&cfg);
		ck_assert_int_eq(gpuos_cfg_parse(&cfg, map + pg - len, len, "guard", err,
						 sizeof(err)),
				 0);
		ck_assert_int_eq(cfg.log_level, GPUOS_LOG_INFO);
		ck_assert_uint_eq(cfg.max_elements, 65536);
		ck_assert_str_eq(cfg.cache_dir, "/tmp/gpuos cache");
		ck_assert_uint_eq(cfg.nallow, 2);
		ck_assert_str_eq(cfg.allow[1], "void at::native::*");
		ck_assert_int_eq(gpuos_cfg_match(&cfg, K_GELU), GPUOS_CFG_ALLOW);
		ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SOFTMAX), GPUOS_CFG_DENY);
		gpuos_cfg_free(&cfg);
	}
	/* a line with no newline running into the guard, mid-token, in each state */
	static const char *const tails[] = { "max_blocks = 12", "allow = \"abc", "enable",
					     "report=", "# c", "allow = x\\", "log = \xc3" };
	for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
		size_t n = strlen(tails[i]);
		struct gpuos_cfg cfg;

		memcpy(map + pg - n, tails[i], n);
		gpuos_cfg_init(&cfg);
		gpuos_cfg_parse(&cfg, map + pg - n, n, "guard", err, sizeof(err));
		gpuos_cfg_free(&cfg);
	}
	munmap(map, 2 * pg);
}
END_TEST

START_TEST(test_parse_empty_and_null)
{
	struct gpuos_cfg cfg;
	char err[128];

	gpuos_cfg_init(&cfg);
	ck_assert_int_eq(gpuos_cfg_parse(&cfg, NULL, 0, "t.conf", err, sizeof(err)), 0);
	ck_assert_int_eq(gpuos_cfg_parse(&cfg, "", 0, NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(gpuos_cfg_parse(&cfg, NULL, 5, "t.conf", err, sizeof(err)), -EINVAL);
	assert_defaults(&cfg, true);
}
END_TEST

START_TEST(test_print_options)
{
	static const char *const names[] = { "enable",	    "log",	   "report",
					     "max_elements", "max_blocks",  "max_threads",
					     "cache_dir",    "allow",	   "deny",
					     "GPUOS_ENABLE", "GPUOS_MAX_ELEMENTS", "GPUOS_DENY",
					     "16384",	     "GPUOS_CONFIG" };
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(f);
	gpuos_cfg_print_options(f);
	gpuos_cfg_print_options(NULL);
	fclose(f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_msg(strstr(buf, names[i]), "no %s in:\n%s", names[i], buf);
	free(buf);
}
END_TEST

/* The shipped example parses, states the defaults, and its commented-out lines parse too. */
START_TEST(test_example_file)
{
	const char *path = "scripts/gpuos.conf.example";
	char err[512] = "", *text = NULL, *out;
	size_t len = 0, o = 0;
	struct gpuos_cfg cfg;
	FILE *f;

	gpuos_cfg_init(&cfg);
	if (access(path, R_OK) != 0)
		return; /* not run from the repository root */
	ck_assert_msg(gpuos_cfg_load_file(&cfg, path, err, sizeof(err)) == 0, "%s", err);
	assert_defaults(&cfg, true);

	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(getdelim(&text, &len, '\0', f) > 0, 1);
	fclose(f);
	out = malloc(strlen(text) + 1);
	ck_assert_ptr_nonnull(out);
	for (char *p = text; *p; p++) {
		bool bol = p == text || p[-1] == '\n';

		if (bol && (!strncmp(p, "#allow", 6) || !strncmp(p, "#deny", 5) ||
			    !strncmp(p, "#report", 7)))
			continue;
		out[o++] = *p;
	}
	ck_assert_msg(gpuos_cfg_parse(&cfg, out, o, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg.nallow, 2);
	ck_assert_uint_eq(cfg.ndeny, 2);
	ck_assert_str_eq(cfg.report, "/tmp/gpuos-report.json");
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_ADD), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_MUL), GPUOS_CFG_ALLOW);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_GELU), GPUOS_CFG_DENY);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SUM), GPUOS_CFG_DENY);
	ck_assert_int_eq(gpuos_cfg_match(&cfg, K_SOFTMAX), GPUOS_CFG_DENY);
	gpuos_cfg_free(&cfg);
	free(out);
	free(text);
}
END_TEST

/* Patterns already parsed are freed on the error path (LeakSanitizer checks this). */
START_TEST(test_error_frees)
{
	char cfgvar[600], err[512];
	const char *path = write_file("leak.conf", "allow = a\ndeny = b\nallow = c\nbogus\n", 35);
	char *env[] = { cfgvar, NULL };
	struct gpuos_cfg cfg;

	snprintf(cfgvar, sizeof(cfgvar), "GPUOS_CONFIG=%s", path);
	ck_assert_int_eq(gpuos_cfg_load(&cfg, env, err, sizeof(err)), -EINVAL);
	ck_assert_uint_eq(cfg.nallow, 0);
	ck_assert_uint_eq(cfg.ndeny, 0);
	ck_assert_ptr_null(cfg.allow[0]);
}
END_TEST

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	chmod(path, 0700);
	return remove(path);
}

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("format");
	size_t nerr = sizeof(errors) / sizeof(errors[0]);

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_file_every_option);
	tcase_add_test(tc, test_bools);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_sizes);
	tcase_add_test(tc, test_last_wins);
	tcase_add_test(tc, test_quoted);
	tcase_add_test(tc, test_comments);
	tcase_add_test(tc, test_crlf_and_bom);
	tcase_add_test(tc, test_utf8_values);
	tcase_add_test(tc, test_report_spellings);
	tcase_add_test(tc, test_longest_line);
	tcase_add_loop_test(tc, test_parse_errors, 0, nerr);
	tcase_add_test(tc, test_long_value_shown_short);
	tcase_add_test(tc, test_every_prefix);
	tcase_add_test(tc, test_guard_page);
	tcase_add_test(tc, test_parse_empty_and_null);
	tcase_add_test(tc, test_print_options);
	suite_add_tcase(s, tc);

	tc = tcase_create("env_and_load");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_env_every_option);
	tcase_add_test(tc, test_env_first_entry_wins);
	tcase_add_test(tc, test_env_overrides_file);
	tcase_add_test(tc, test_env_errors);
	tcase_add_loop_test(tc, test_load_errors, 0, nerr);
	tcase_add_test(tc, test_unreadable_config);
	tcase_add_test(tc, test_too_large_file);
	tcase_add_test(tc, test_default_path);
	tcase_add_test(tc, test_default_file_missing);
	tcase_add_test(tc, test_default_file_read);
	tcase_add_test(tc, test_error_frees);
	tcase_add_test(tc, test_example_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("match");
	tcase_add_test(tc, test_match_none);
	tcase_add_test(tc, test_match_allow_only);
	tcase_add_test(tc, test_match_deny_only);
	tcase_add_test(tc, test_match_deny_wins);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	/* the permission test runs as nobody when started as root */
	chmod(tmpdir, 0755);
	make_error_inputs();
	sr = srunner_create(config_suite());
	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return failed ? 1 : 0;
}
