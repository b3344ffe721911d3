// SPDX-License-Identifier: MIT
/*
 * PTX text to tokens. One pass, no copies: tokens are (off, len) into the caller's buffer,
 * which need not be NUL-terminated, so every read goes through peek() and its bound.
 * Errors follow ptxas: it refuses non-ASCII bytes anywhere, comments and strings included,
 * and numbers that run into letters (0x1G, 08, 4u, 1.5f).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_lift/ptx_tok.h"

#define PTX_MAX_LEN ((size_t)1 << 30)

struct lexer {
	const char *buf;
	size_t len, pos;
	unsigned line, err_line;
	struct gpuos_ptx_tok *toks;
	size_t n, cap;
};

/* The byte at @at, or -1 past the end: lets every look-ahead be written without a bound. */
static int peek(const struct lexer *lx, size_t at)
{
	return at < lx->len ? (unsigned char)lx->buf[at] : -1;
}

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_bit(int c)
{
	return c == '0' || c == '1';
}

/* PTX's followsym: what may continue an identifier, register or directive. */
static bool is_sym(int c)
{
	return is_alpha(c) || is_digit(c) || c == '_' || c == '$';
}

static bool is_bad_byte(int c)
{
	return c == 0 || c >= 0x80;
}

static size_t skip_while(const struct lexer *lx, size_t p, bool (*pred)(int))
{
	while (pred(peek(lx, p)))
		p++;
	return p;
}

static int fail(struct lexer *lx, unsigned line)
{
	lx->err_line = line;
	return -EINVAL;
}

/* Whitespace and both kinds of comment; counts lines. */
static int skip_blank(struct lexer *lx)
{
	for (;;) {
		int c = peek(lx, lx->pos);

		if (c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f') {
			lx->pos++;
		} else if (c == '\n') {
			lx->pos++;
			lx->line++;
		} else if (c == '/' && peek(lx, lx->pos + 1) == '/') {
			/* Up to the '\n', which the next round counts. */
			for (lx->pos += 2; (c = peek(lx, lx->pos)) >= 0 && c != '\n'; lx->pos++)
				if (is_bad_byte(c))
					return fail(lx, lx->line);
		} else if (c == '/' && peek(lx, lx->pos + 1) == '*') {
			unsigned start = lx->line;

			for (lx->pos += 2;; lx->pos++) {
				c = peek(lx, lx->pos);
				if (c < 0)
					return fail(lx, start);
				if (is_bad_byte(c))
					return fail(lx, lx->line);
				if (c == '\n')
					lx->line++;
				if (c == '*' && peek(lx, lx->pos + 1) == '/')
					break;
			}
			lx->pos += 2;
		} else {
			return 0;
		}
	}
}

/* Decimal digits, then an optional exponent that must have digits. 0 if the exponent has none. */
static size_t dec_tail(const struct lexer *lx, size_t p)
{
	size_t d;

	p = skip_while(lx, p, is_digit);
	if (peek(lx, p) != 'e' && peek(lx, p) != 'E')
		return p;
	p++;
	if (peek(lx, p) == '+' || peek(lx, p) == '-')
		p++;
	d = skip_while(lx, p, is_digit);
	return d == p ? 0 : d;
}

/*
 * ".5", ".25e3" at p: the end of that number, or 0 when it is no number (".1d", ".x"). What
 * follows is not looked at beyond the word, so ".0.5" is a number (and then an error), not
 * a directive: a token must lex the same whatever comes after it.
 */
static size_t dot_number(const struct lexer *lx, size_t p)
{
	size_t e;

	if (!is_digit(peek(lx, p + 1)))
		return 0;
	e = dec_tail(lx, p + 1);
	return e && !is_sym(peek(lx, e)) ? e : 0;
}

/* A number starting with a digit at p: INT or FLOAT, *end past it; -EINVAL if malformed. */
static int lex_number(const struct lexer *lx, size_t p, uint8_t *kind, size_t *end)
{
	int c0 = peek(lx, p), c1 = peek(lx, p + 1);
	size_t e;

	*kind = GPUOS_PTX_INT;
	if (c0 == '0' && (c1 == 'f' || c1 == 'F' || c1 == 'd' || c1 == 'D')) {
		/* Hex bit patterns of an f32 / f64: exactly 8 / 16 digits. */
		size_t want = (c1 == 'f' || c1 == 'F') ? 8 : 16;

		*kind = GPUOS_PTX_FLOAT;
		for (e = p + 2; e - (p + 2) < want; e++)
			if (!is_hex(peek(lx, e)))
				return -EINVAL;
	} else if (c0 == '0' && (c1 == 'x' || c1 == 'X' || c1 == 'b' || c1 == 'B')) {
		e = skip_while(lx, p + 2, c1 == 'x' || c1 == 'X' ? is_hex : is_bit);
		if (e == p + 2)
			return -EINVAL;
		if (peek(lx, e) == 'U')
			e++;
	} else {
		e = skip_while(lx, p, is_digit);
		if (peek(lx, e) == '.' || peek(lx, e) == 'e' || peek(lx, e) == 'E') {
			*kind = GPUOS_PTX_FLOAT;
			e = dec_tail(lx, peek(lx, e) == '.' ? e + 1 : e);
			if (!e)
				return -EINVAL;
		} else {
			/* A leading 0 makes it octal. */
			for (size_t i = p; c0 == '0' && i < e; i++)
				if (peek(lx, i) > '7')
					return -EINVAL;
			if (peek(lx, e) == 'U')
				e++;
		}
	}
	if (is_sym(peek(lx, e)) || peek(lx, e) == '.')
		return -EINVAL;
	*end = e;
	return 0;
}

/* A "..." string at p; only \" and \\ escape, any other backslash is itself. */
static int lex_string(const struct lexer *lx, size_t p, size_t *end)
{
	for (size_t e = p + 1;; e++) {
		int c = peek(lx, e);

		if (c < 0 || c == '\n' || is_bad_byte(c))
			return -EINVAL;
		if (c == '"') {
			*end = e + 1;
			return 0;
		}
		if (c == '\\' && (peek(lx, e + 1) == '"' || peek(lx, e + 1) == '\\'))
			e++;
	}
}

/* The token at lx->pos (not blank, not the end): its kind and end. */
static int lex_one(const struct lexer *lx, uint8_t *kind, size_t *end)
{
	size_t p = lx->pos, e;
	int c = peek(lx, p);

	if (is_digit(c))
		return lex_number(lx, p, kind, end);
	if (c == '"') {
		*kind = GPUOS_PTX_STRING;
		return lex_string(lx, p, end);
	}
	e = skip_while(lx, p + 1, is_sym);
	if (is_alpha(c) || c == '_' || c == '$') {
		/* [_$] needs a followsym after it, except '_', the sink operand. */
		if (c == '$' && e == p + 1)
			return -EINVAL;
		*kind = GPUOS_PTX_IDENT;
	} else if (c == '%' && e > p + 1) {
		int x = peek(lx, e + 1);

		/* Special registers' component: %ctaid.x, but %r1.xy is %r1 then .xy. */
		if (peek(lx, e) == '.' && (x == 'x' || x == 'y' || x == 'z' || x == 'w') &&
		    !is_sym(peek(lx, e + 2)))
			e += 2;
		*kind = GPUOS_PTX_REG;
	} else if (c == '.' && dot_number(lx, p)) {
		/* .5 and .25e3 are numbers to ptxas; .1d .16x64b are directives. */
		e = dot_number(lx, p);
		if (peek(lx, e) == '.')
			return -EINVAL;
		*kind = GPUOS_PTX_FLOAT;
	} else if (c == '.' && e > p + 1) {
		/* State spaces and cache hints: .shared::cluster .L2::128B .a::b::c */
		while (peek(lx, e) == ':' && peek(lx, e + 1) == ':' && is_sym(peek(lx, e + 2)))
			e = skip_while(lx, e + 2, is_sym);
		*kind = GPUOS_PTX_DIRECTIVE;
	} else if (c > 0 && strchr(";,{}[]()+-!@<>=|:*/~&^?%", c)) {
		e = p + 1;
		*kind = GPUOS_PTX_PUNCT;
	} else {
		return -EINVAL;
	}
	*end = e;
	return 0;
}

static int push(struct lexer *lx, uint8_t kind, size_t off, size_t end, unsigned line)
{
	if (lx->n == lx->cap) {
		size_t cap = lx->cap ? lx->cap * 2 : 64;
		struct gpuos_ptx_tok *t;

		if (cap > SIZE_MAX / sizeof(*t))
			return -ENOMEM;
		t = realloc(lx->toks, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		lx->toks = t;
		lx->cap = cap;
	}
	/* len <= 1 GiB was checked up front: offsets and lines fit 32 bits. */
	lx->toks[lx->n++] = (struct gpuos_ptx_tok){
	    .kind = kind, .off = (uint32_t)off, .len = (uint32_t)(end - off), .line = line};
	return 0;
}

int gpuos_ptx_tokenize(const char *buf, size_t len, struct gpuos_ptx_tok **toks, size_t *ntoks,
		       unsigned *err_line)
{
	struct lexer lx = {.buf = buf, .len = len, .line = 1};
	int ret;

	*toks = NULL;
	*ntoks = 0;
	if (len > PTX_MAX_LEN)
		return -E2BIG;
	for (;;) {
		uint8_t kind;
		size_t end;

		ret = skip_blank(&lx);
		if (ret)
			goto out;
		if (lx.pos >= len) {
			ret = push(&lx, GPUOS_PTX_EOF, len, len, lx.line);
			goto out;
		}
		/* Tokens never span lines: an error inside one is on this line. */
		ret = lex_one(&lx, &kind, &end);
		if (ret) {
			lx.err_line = lx.line;
			goto out;
		}
		ret = push(&lx, kind, lx.pos, end, lx.line);
		if (ret)
			goto out;
		lx.pos = end;
	}
out:
	if (ret) {
		free(lx.toks);
		if (err_line && ret == -EINVAL)
			*err_line = lx.err_line;
		return ret;
	}
	*toks = lx.toks;
	*ntoks = lx.n;
	return 0;
}

bool gpuos_ptx_tok_is(const char *buf, const struct gpuos_ptx_tok *t, const char *s)
{
	size_t n = strlen(s);

	return t->len == n && !memcmp(buf + t->off, s, n);
}
