// SPDX-License-Identifier: MIT
/*
 * The shim's configuration: one option table drives defaults, the config file, the
 * GPUOS_<NAME> environment overrides and `gpuos config-check --help`.
 *
 * File format (gpuos.conf), chosen so that a demangled C++ kernel name can be written as is:
 *
 *   - UTF-8 text, one setting per line; LF or CRLF line endings; a leading UTF-8 BOM is
 *     skipped. A line may hold at most 4096 bytes, not counting its line ending. NUL bytes,
 *     control characters other than tab, and malformed UTF-8 are errors.
 *   - Blank lines are ignored. `#` starts a comment when it is the first non-blank character
 *     of a line or follows a space or tab; anywhere else it is literal, because demangled names
 *     contain `#` (`{lambda(float)#1}`) but never " #". Quote a value to keep " #" in it.
 *   - `key = value`, spaces and tabs around key and value trimmed. Keys are lowercase and
 *     case-sensitive. A value whose first character is `"` runs to the next `"`, taken
 *     literally (no escapes; `#` and outer spaces kept); only blanks and a comment may follow.
 *   - Booleans: 1/0, true/false, yes/no, on/off (any case). Log levels: off, error, warn, info,
 *     debug (any case) or 0..3. Numbers: decimal, with an optional k/m/g suffix (any case)
 *     multiplying by 1024, 1024^2, 1024^3.
 *   - `allow` and `deny` may be repeated: each line adds one fnmatch(3) glob (flags 0, so `\`
 *     escapes and `[...]` is a bracket expression). Every other key may also repeat; the last
 *     one wins.
 *   - Any error (unknown key, missing `=`, bad value, empty pattern, more than
 *     GPUOS_CFG_MAX_PATTERNS patterns in one list, line too long, NUL byte...) stops the parse
 *     with "SOURCE:LINE: what is wrong".
 *
 * Environment: GPUOS_<NAME> for each option (GPUOS_MAX_BLOCKS=...) overrides the file; its
 * value is trimmed and taken literally (no quotes, no comments). GPUOS_ALLOW and GPUOS_DENY
 * hold ';'-separated patterns, added to the file's; empty items are skipped. GPUOS_CONFIG
 * names the file; set but empty, no file is read.
 *
 * Nothing here prints (this runs inside other programs) except gpuos_cfg_print_options, and
 * nothing here reads the process environment: callers pass envp, so tests can pass theirs.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "interpose/config.h"
#include "log.h"

#define CFG_LINE_MAX	4096	    /* bytes in one line, without its ending */
#define CFG_FILE_MAX	(1u << 20) /* a config file larger than this is a mistake */
#define CFG_PATTERN_MAX 4096	    /* bytes in one pattern (env items are not lines) */
#define CFG_SHOW_MAX	60	    /* bytes of a bad value quoted back in a message */

enum opt_type {
	OPT_BOOL,
	OPT_LEVEL,
	OPT_SIZE,
	OPT_STRING,
	OPT_REPORT, /* a string where the boolean spellings mean "off" and "stderr" */
	OPT_PATTERNS,
};

struct opt {
	const char *name;
	enum opt_type type;
	const char *def; /* default as text, parsed like a file value by gpuos_cfg_init */
	const char *help;
	size_t off;	 /* the field in struct gpuos_cfg (the array, for patterns) */
	size_t size;	 /* OPT_STRING/OPT_REPORT: sizeof the field; OPT_PATTERNS: offset of count */
};

#define FIELD(f) offsetof(struct gpuos_cfg, f), sizeof(((struct gpuos_cfg *)0)->f)

static const struct opt opts[] = {
	{ "enable", OPT_BOOL, "on", "divert kernels at all; off = pure pass-through",
	  FIELD(enable) },
	{ "log", OPT_LEVEL, "warn", "stderr messages up to this level: off|error|warn|info|debug",
	  FIELD(log_level) },
	{ "report", OPT_REPORT, "",
	  "at exit: '' none, 1/stderr table on stderr, else a file (.json = JSON)", FIELD(report) },
	{ "max_elements", OPT_SIZE, "16384", "largest catalog launch diverted, in elements",
	  FIELD(max_elements) },
	{ "max_copy_bytes", OPT_SIZE, "65536",
	  "largest device-to-device cudaMemcpyAsync diverted (with the catalog), in bytes",
	  FIELD(max_copy_bytes) },
	{ "reduce_max_threads", OPT_SIZE, "1024",
	  "largest catalog reduction diverted, in PyTorch's threads (grid x block)",
	  FIELD(reduce_max_threads) },
	{ "max_blocks", OPT_SIZE, "4096", "largest grid diverted, in blocks", FIELD(max_blocks) },
	{ "max_threads", OPT_SIZE, "1024", "largest block diverted, in threads",
	  FIELD(max_threads) },
	{ "catalog", OPT_BOOL, "on",
	  "run the PyTorch kernels the catalog knows in the worker; off = they launch as usual",
	  FIELD(catalog) },
	{ "lift", OPT_BOOL, "off", "run kernels that ship PTX in the worker (ptx_lift; experimental)",
	  FIELD(lift) },
	{ "lift_max_threads", OPT_SIZE, "8192",
	  "largest lifted launch diverted, in threads (grid x block)", FIELD(lift_max_threads) },
	{ "cache_dir", OPT_STRING, "", "compiled operators; '' = $XDG_CACHE_HOME/gpuos",
	  FIELD(cache_dir) },
	{ "jit_threads", OPT_SIZE, "1",
	  "operators compiled at once, 1..8; 0 = a quarter of the CPUs from 8 on",
	  FIELD(jit_threads) },
	{ "workers", OPT_SIZE, "2", "worker blocks (rings) a GPU, 1..16: one SM each",
	  FIELD(workers) },
	{ "worker_threads", OPT_SIZE, "512", "threads a worker block, 64..1024 (one warp fetches)",
	  FIELD(worker_threads) },
	{ "worker_idle_ms", OPT_SIZE, "100", "a worker leaves after this long without tasks",
	  FIELD(worker_idle_ms) },
	{ "allow", OPT_PATTERNS, "",
	  "glob on demangled names, repeatable; any allow pattern makes an allowlist",
	  offsetof(struct gpuos_cfg, allow), offsetof(struct gpuos_cfg, nallow) },
	{ "deny", OPT_PATTERNS, "", "glob on demangled names, repeatable; wins over allow",
	  offsetof(struct gpuos_cfg, deny), offsetof(struct gpuos_cfg, ndeny) },
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const char *const type_names[] = {
	[OPT_BOOL] = "bool",	 [OPT_LEVEL] = "level",	  [OPT_SIZE] = "size",
	[OPT_STRING] = "string", [OPT_REPORT] = "report", [OPT_PATTERNS] = "patterns",
};

static const char *const bool_true[] = { "1", "true", "yes", "on" };
static const char *const bool_false[] = { "0", "false", "no", "off" };

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char to_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* (s, n) equals the NUL-terminated word, ignoring ASCII case. */
static bool span_ieq(const char *s, size_t n, const char *word)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!word[i] || to_lower(s[i]) != word[i])
			return false;
	return word[i] == '\0';
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_blank(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_blank((*s)[*n - 1]))
		(*n)--;
}

/*
 * A value quoted back in a message: one line whatever it holds (env values can hold
 * newlines), and short.
 */
static void show(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t o = 0, i;

	for (i = 0; i < n && i < CFG_SHOW_MAX && o + 5 < dstlen; i++) {
		unsigned char c = s[i];

		if (c < 0x20 || c == 0x7f)
			o += snprintf(dst + o, dstlen - o, "\\x%02x", c);
		else
			dst[o++] = c;
	}
	if (i < n && o + 4 < dstlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	if (dstlen)
		dst[o < dstlen ? o : dstlen - 1] = '\0';
}

static const struct opt *opt_find(const char *key, size_t n)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == n && !memcmp(opts[i].name, key, n))
			return &opts[i];
	return NULL;
}

/* Edit distance ignoring case; keys longer than 32 bytes are not worth a suggestion. */
static size_t key_distance(const char *a, size_t na, const char *b)
{
	size_t nb = strlen(b), row[33], i, j;

	if (na > 32 || nb > 32)
		return SIZE_MAX;
	for (j = 0; j <= nb; j++)
		row[j] = j;
	for (i = 1; i <= na; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (j = 1; j <= nb; j++) {
			size_t up = row[j];
			size_t sub = diag + (to_lower(a[i - 1]) != to_lower(b[j - 1]) &&
					     !(a[i - 1] == '-' && b[j - 1] == '_'));
			size_t best = sub;

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[nb];
}

/* The option a mistyped key most likely meant, or NULL. */
static const struct opt *opt_suggest(const char *key, size_t n)
{
	const struct opt *best = NULL;
	size_t best_d = 3; /* at most two edits... */

	for (size_t i = 0; i < NOPTS; i++) {
		size_t d = key_distance(key, n, opts[i].name);

		/* ...and fewer than half the name, so "x" does not suggest "log" */
		if (d < best_d && 2 * d < strlen(opts[i].name)) {
			best = &opts[i];
			best_d = d;
		}
	}
	return best;
}

/* Decimal with an optional k/m/g (x1024) suffix; -ERANGE past UINT64_MAX. */
static int parse_size(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0, mul = 1;
	size_t i;

	if (n && (to_lower(s[n - 1]) == 'k' || to_lower(s[n - 1]) == 'm' ||
		  to_lower(s[n - 1]) == 'g')) {
		char c = to_lower(s[--n]);

		mul = c == 'k' ? 1ull << 10 : c == 'm' ? 1ull << 20 : 1ull << 30;
	}
	if (!n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = s[i] - '0';
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

static int parse_bool(const char *s, size_t n, bool *out)
{
	for (size_t i = 0; i < sizeof(bool_true) / sizeof(bool_true[0]); i++) {
		if (span_ieq(s, n, bool_true[i])) {
			*out = true;
			return 0;
		}
		if (span_ieq(s, n, bool_false[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_level(const char *s, size_t n, int *out)
{
	char word[16];
	int lvl;

	if (n >= sizeof(word))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		word[i] = to_lower(s[i]);
	word[n] = '\0';
	lvl = gpuos_log_parse_level(word);
	if (lvl < GPUOS_LOG_OFF)
		return -EINVAL;
	*out = lvl;
	return 0;
}

static int pattern_add(struct gpuos_cfg *cfg, const struct opt *o, const char *s, size_t n,
		       char *why, size_t whylen)
{
	char **list = (char **)((char *)cfg + o->off);
	unsigned *count = (unsigned *)((char *)cfg + o->size);
	size_t bs = 0;
	char *p;

	if (!n) {
		set_err(why, whylen, "empty pattern");
		return -EINVAL;
	}
	if (n > CFG_PATTERN_MAX) {
		set_err(why, whylen, "pattern too long (at most %u bytes)", CFG_PATTERN_MAX);
		return -EINVAL;
	}
	/* fnmatch never matches a pattern ending in an escape: say so instead of ignoring it */
	while (bs < n && s[n - 1 - bs] == '\\')
		bs++;
	if (bs % 2) {
		set_err(why, whylen, "pattern ends in a lone '\\'");
		return -EINVAL;
	}
	if (memchr(s, '\0', n)) {
		set_err(why, whylen, "NUL byte in pattern");
		return -EINVAL;
	}
	if (*count >= GPUOS_CFG_MAX_PATTERNS) {
		set_err(why, whylen, "too many patterns (at most %d)", GPUOS_CFG_MAX_PATTERNS);
		return -EINVAL;
	}
	p = malloc(n + 1);
	if (!p) {
		set_err(why, whylen, "out of memory");
		return -ENOMEM;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	list[(*count)++] = p;
	return 0;
}

/*
 * Set option @o from the value text (s, n), already trimmed and unquoted. On a bad value
 * returns -EINVAL (-ENOMEM) with what is wrong in @why, without the option's name: the caller
 * knows whether it came from a file line or a variable.
 */
static int opt_set(struct gpuos_cfg *cfg, const struct opt *o, const char *s, size_t n,
		   char *why, size_t whylen)
{
	void *field = (char *)cfg + o->off;
	const char *expect = NULL;
	char shown[CFG_SHOW_MAX * 4 + 8];
	bool b;
	int ret;

	switch (o->type) {
	case OPT_BOOL:
		if (parse_bool(s, n, &b) < 0) {
			expect = "expected on/off, true/false, yes/no or 1/0";
			break;
		}
		*(bool *)field = b;
		return 0;
	case OPT_LEVEL:
		if (parse_level(s, n, field) < 0)
			expect = "expected off, error, warn, info or debug";
		else
			return 0;
		break;
	case OPT_SIZE:
		ret = parse_size(s, n, field);
		if (ret == -ERANGE)
			expect = "number too large";
		else if (ret < 0)
			expect = "expected a number";
		else
			return 0;
		break;
	case OPT_REPORT:
		/* "report = off" must not write a file named "off" */
		if (parse_bool(s, n, &b) == 0) {
			s = b ? "stderr" : "";
			n = strlen(s);
		}
		/* fallthrough */
	case OPT_STRING:
		if (n >= o->size) {
			set_err(why, whylen, "value too long (at most %zu bytes)", o->size - 1);
			return -EINVAL;
		}
		if (memchr(s, '\0', n)) {
			set_err(why, whylen, "NUL byte in value");
			return -EINVAL;
		}
		memcpy(field, s, n);
		((char *)field)[n] = '\0';
		return 0;
	case OPT_PATTERNS:
		return pattern_add(cfg, o, s, n, why, whylen);
	}
	show(shown, sizeof(shown), s, n);
	set_err(why, whylen, "bad value '%s' (%s)", shown, expect ? expect : "unknown type");
	return -EINVAL;
}

void gpuos_cfg_init(struct gpuos_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	/* the defaults are text so that print_options shows what a file would say; the suite
	 * checks each one parses */
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].type != OPT_PATTERNS)
			opt_set(cfg, &opts[i], opts[i].def, strlen(opts[i].def), NULL, 0);
}

void gpuos_cfg_free(struct gpuos_cfg *cfg)
{
	if (!cfg)
		return;
	for (unsigned i = 0; i < cfg->nallow && i < GPUOS_CFG_MAX_PATTERNS; i++) {
		free(cfg->allow[i]);
		cfg->allow[i] = NULL;
	}
	for (unsigned i = 0; i < cfg->ndeny && i < GPUOS_CFG_MAX_PATTERNS; i++) {
		free(cfg->deny[i]);
		cfg->deny[i] = NULL;
	}
	cfg->nallow = 0;
	cfg->ndeny = 0;
}

static bool utf8_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Bytes in the well-formed UTF-8 sequence at p (n bytes left), 0 when it is malformed. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && utf8_cont(p[1]) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || !utf8_cont(p[1]) || !utf8_cont(p[2]))
			return 0;
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
			return 0; /* overlong, surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || !utf8_cont(p[1]) || !utf8_cont(p[2]) || !utf8_cont(p[3]))
			return 0;
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
			return 0; /* overlong, past U+10FFFF */
		return 4;
	}
	return 0;
}

struct parser {
	struct gpuos_cfg *cfg;
	const char *source;
	unsigned long line;
	char *err;
	size_t errlen;
};

/* Bytes a line may not hold; 0 with "SOURCE:LINE: ..." when it holds one. */
static int check_bytes(struct parser *ps, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		if (u[i] == '\0') {
			set_err(ps->err, ps->errlen, "%s:%lu: NUL byte (column %zu)", ps->source,
				ps->line, i + 1);
			return -EINVAL;
		}
		if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7f) {
			set_err(ps->err, ps->errlen, "%s:%lu: control character 0x%02x (column %zu)",
				ps->source, ps->line, u[i], i + 1);
			return -EINVAL;
		}
		k = utf8_len(u + i, n - i);
		if (!k) {
			set_err(ps->err, ps->errlen, "%s:%lu: invalid UTF-8 (column %zu)",
				ps->source, ps->line, i + 1);
			return -EINVAL;
		}
		i += k;
	}
	return 0;
}

/* Where the comment starts in (s, n): a '#' first on the line or after a blank; n if none. */
static size_t comment_start(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '#' && (i == 0 || is_blank(s[i - 1])))
			return i;
	return n;
}

static int parse_line(struct parser *ps, const char *s, size_t n)
{
	const char *key, *val;
	size_t nkey, nval, eq, end, i;
	const struct opt *o;
	char why[CFG_SHOW_MAX * 4 + 128], shown[CFG_SHOW_MAX * 4 + 8];
	int ret;

	if (n > CFG_LINE_MAX) {
		set_err(ps->err, ps->errlen, "%s:%lu: line too long (over %u bytes)", ps->source,
			ps->line, CFG_LINE_MAX);
		return -EINVAL;
	}
	ret = check_bytes(ps, s, n);
	if (ret < 0)
		return ret;

	end = comment_start(s, n);
	eq = end;
	for (i = 0; i < end; i++) {
		if (s[i] == '=') {
			eq = i;
			break;
		}
	}
	key = s;
	nkey = eq;
	trim(&key, &nkey);
	if (eq == end) {
		if (!nkey)
			return 0; /* blank or comment */
		show(shown, sizeof(shown), key, nkey);
		set_err(ps->err, ps->errlen, "%s:%lu: missing '=' in '%s' (expected 'key = value')",
			ps->source, ps->line, shown);
		return -EINVAL;
	}
	if (!nkey) {
		set_err(ps->err, ps->errlen, "%s:%lu: missing key before '='", ps->source, ps->line);
		return -EINVAL;
	}
	o = opt_find(key, nkey);
	if (!o) {
		const struct opt *hint = opt_suggest(key, nkey);

		show(shown, sizeof(shown), key, nkey);
		if (hint)
			set_err(ps->err, ps->errlen, "%s:%lu: unknown key '%s' (did you mean '%s'?)",
				ps->source, ps->line, shown, hint->name);
		else
			set_err(ps->err, ps->errlen, "%s:%lu: unknown key '%s'", ps->source, ps->line,
				shown);
		return -EINVAL;
	}

	/* the value: quoted runs to the next quote, else to the comment */
	i = eq + 1;
	while (i < n && is_blank(s[i]))
		i++;
	if (i < n && s[i] == '"') {
		const char *close = memchr(s + i + 1, '"', n - i - 1);

		if (!close) {
			set_err(ps->err, ps->errlen, "%s:%lu: %s: unterminated quoted value",
				ps->source, ps->line, o->name);
			return -EINVAL;
		}
		val = s + i + 1;
		nval = close - val;
		for (i = close - s + 1; i < n && is_blank(s[i]); i++)
			;
		if (i < n && s[i] != '#') {
			set_err(ps->err, ps->errlen, "%s:%lu: %s: unexpected text after closing quote",
				ps->source, ps->line, o->name);
			return -EINVAL;
		}
	} else {
		val = s + i;
		nval = i < end ? end - i : 0;
		trim(&val, &nval);
	}

	ret = opt_set(ps->cfg, o, val, nval, why, sizeof(why));
	if (ret < 0)
		set_err(ps->err, ps->errlen, "%s:%lu: %s: %s", ps->source, ps->line, o->name, why);
	return ret;
}

int gpuos_cfg_parse(struct gpuos_cfg *cfg, const void *buf, size_t len, const char *source,
		    char *err, size_t errlen)
{
	struct parser ps = { cfg, source ? source : "(config)", 0, err, errlen };
	const char *s = buf, *nl;
	size_t pos = 0, n;
	int ret = 0;

	if (!cfg || (!buf && len)) {
		set_err(err, errlen, "%s: no config given", ps.source);
		return -EINVAL;
	}
	if (len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
		pos = 3;
	while (pos < len) {
		ps.line++;
		nl = memchr(s + pos, '\n', len - pos);
		n = nl ? (size_t)(nl - (s + pos)) : len - pos;
		/* CRLF: the CR belongs to the line ending */
		if (n && s[pos + n - 1] == '\r')
			n--;
		ret = parse_line(&ps, s + pos, n);
		if (ret < 0)
			goto out;
		pos = nl ? (size_t)(nl - s) + 1 : len;
	}
out:
	return ret;
}

int gpuos_cfg_load_file(struct gpuos_cfg *cfg, const char *path, char *err, size_t errlen)
{
	char ebuf[128], *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	/* read to EOF rather than trust st_size: GPUOS_CONFIG=<(...) is a pipe */
	for (;;) {
		ssize_t r;

		if (len == cap) {
			/* room for one byte past the limit, to tell "at the limit" from "over" */
			size_t ncap = cap ? cap * 2 : 4096;
			char *nbuf;

			if (len > CFG_FILE_MAX) {
				set_err(err, errlen, "%s: file too large (over %u bytes)", path,
					CFG_FILE_MAX);
				ret = -EFBIG;
				goto out;
			}
			if (ncap > CFG_FILE_MAX + 1)
				ncap = CFG_FILE_MAX + 1;
			nbuf = realloc(buf, ncap);
			if (!nbuf) {
				ret = -ENOMEM;
				goto fail;
			}
			buf = nbuf;
			cap = ncap;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto fail;
		}
		if (r == 0)
			break;
		len += r;
	}
	ret = gpuos_cfg_parse(cfg, buf, len, path, err, errlen);
	goto out;
fail:
	set_err(err, errlen, "%s: %s", path, strerror_r(-ret, ebuf, sizeof(ebuf)));
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

/* The value of NAME in envp, or NULL; the first entry wins, as with getenv. */
static const char *env_get(char *const *envp, const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

static void env_name(const struct opt *o, char *buf, size_t len)
{
	size_t i = snprintf(buf, len, "GPUOS_");

	for (const char *p = o->name; *p && i + 1 < len; p++)
		buf[i++] = *p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p;
	buf[i] = '\0';
}

int gpuos_cfg_apply_env(struct gpuos_cfg *cfg, char *const *envp, char *err, size_t errlen)
{
	char name[32], why[CFG_SHOW_MAX * 4 + 128];
	int ret = 0;

	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];
		const char *v, *item, *semi;
		size_t n;

		env_name(o, name, sizeof(name));
		v = env_get(envp, name);
		if (!v)
			continue;
		if (o->type != OPT_PATTERNS) {
			n = strlen(v);
			trim(&v, &n);
			ret = opt_set(cfg, o, v, n, why, sizeof(why));
			if (ret < 0)
				goto fail;
			continue;
		}
		for (item = v; *item; item = semi + (*semi == ';')) {
			semi = strchrnul(item, ';');
			v = item;
			n = semi - item;
			trim(&v, &n);
			if (!n)
				continue; /* "a;b;" and "" are fine */
			ret = opt_set(cfg, o, v, n, why, sizeof(why));
			if (ret < 0)
				goto fail;
		}
	}
	return 0;
fail:
	set_err(err, errlen, "%s: %s", name, why);
	return ret;
}

int gpuos_cfg_default_path(char *const *envp, char *buf, size_t len)
{
	const char *xdg = env_get(envp, "XDG_CONFIG_HOME");
	const char *home = env_get(envp, "HOME");
	int n;

	/* the XDG spec says a relative XDG_CONFIG_HOME is invalid and to be ignored */
	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/gpuos/gpuos.conf", xdg);
	else if (home && home[0])
		n = snprintf(buf, len, "%s/.config/gpuos/gpuos.conf", home);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int gpuos_cfg_load(struct gpuos_cfg *cfg, char *const *envp, char *err, size_t errlen)
{
	const char *path = env_get(envp, "GPUOS_CONFIG");
	char def[4096];
	int ret;

	gpuos_cfg_init(cfg);
	if (err && errlen)
		err[0] = '\0';
	if (path) {
		/* GPUOS_CONFIG= (empty) reads no file at all */
		ret = path[0] ? gpuos_cfg_load_file(cfg, path, err, errlen) : 0;
	} else if (gpuos_cfg_default_path(envp, def, sizeof(def)) == 0) {
		ret = gpuos_cfg_load_file(cfg, def, err, errlen);
		/* no default file (or no ~/.config directory) is the usual case */
		if (ret == -ENOENT || ret == -ENOTDIR) {
			ret = 0;
			if (err && errlen)
				err[0] = '\0';
		}
	} else {
		ret = 0;
	}
	if (ret < 0)
		goto fail;
	ret = gpuos_cfg_apply_env(cfg, envp, err, errlen);
	if (ret < 0)
		goto fail;
	return 0;
fail:
	/* half a config is worse than none: pass everything through */
	gpuos_cfg_free(cfg);
	gpuos_cfg_init(cfg);
	cfg->enable = false;
	return -EINVAL;
}

enum gpuos_cfg_verdict gpuos_cfg_match(const struct gpuos_cfg *cfg, const char *name)
{
	if (!name)
		name = "";
	for (unsigned i = 0; i < cfg->ndeny; i++)
		if (fnmatch(cfg->deny[i], name, 0) == 0)
			return GPUOS_CFG_DENY;
	for (unsigned i = 0; i < cfg->nallow; i++)
		if (fnmatch(cfg->allow[i], name, 0) == 0)
			return GPUOS_CFG_ALLOW;
	return cfg->nallow ? GPUOS_CFG_DENY : GPUOS_CFG_DEFAULT;
}

void gpuos_cfg_print_options(void *file)
{
	FILE *f = file;
	char name[32];

	if (!f)
		return;
	fprintf(f, "%-13s %-9s %-9s %-19s %s\n", "option", "type", "default", "environment",
		"meaning");
	for (size_t i = 0; i < NOPTS; i++) {
		const struct opt *o = &opts[i];

		env_name(o, name, sizeof(name));
		fprintf(f, "%-13s %-9s %-9s %-19s %s\n", o->name, type_names[o->type],
			o->def[0] ? o->def : "''", name, o->help);
	}
	fprintf(f, "\nsizes take k/m/g (x1024); GPUOS_ALLOW/GPUOS_DENY hold ';'-separated "
		   "patterns; GPUOS_CONFIG names the file\n(default $XDG_CONFIG_HOME/gpuos/"
		   "gpuos.conf or ~/.config/gpuos/gpuos.conf; empty = none).\n");
}
