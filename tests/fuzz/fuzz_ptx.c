// SPDX-License-Identifier: MIT
/*
 * libFuzzer: the input is PTX text. Tokenize it; for a success check that the tokens are in
 * order inside the input, that only whitespace and comments lie between them, that lines
 * count the '\n's, and that the token texts joined by single spaces lex to the same stream
 * (so every token is one whole token on its own, and no token depends on its neighbours).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx_lift/ptx_tok.h"
#include "tests/fuzz/guard.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x)) {                                                                        \
			fprintf(stderr, "fuzz_ptx.c:%d: %s\n", __LINE__, #x);                      \
			__builtin_trap();                                                          \
		}                                                                                  \
	} while (0)

/* The gap between two tokens: whitespace and whole comments only. */
static void check_gap(const char *s, size_t from, size_t to)
{
	size_t i = from;

	while (i < to) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n' || s[i] == '\v' ||
		    s[i] == '\f') {
			i++;
		} else if (s[i] == '/' && i + 1 < to && s[i + 1] == '/') {
			while (i < to && s[i] != '\n')
				i++;
		} else {
			CHECK(s[i] == '/' && i + 1 < to && s[i + 1] == '*');
			for (i += 2;; i++) {
				CHECK(i + 1 < to);
				if (s[i] == '*' && s[i + 1] == '/')
					break;
			}
			i += 2;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *src = (const char *)gpuos_fuzz_guard(data, size);
	struct gpuos_ptx_tok *t = NULL, *u = NULL;
	size_t n = 0, m = 0, at = 0, prev_end = 0, jlen = 0, o = 0;
	unsigned line = 1, err_line = 0;
	char *joined;
	int ret;

	ret = gpuos_ptx_tokenize(src, size, &t, &n, &err_line);
	if (ret) {
		CHECK(ret == -EINVAL && !t && !n);
		CHECK(err_line >= 1 && err_line <= size + 1);
		return 0;
	}
	CHECK(n >= 1 && t[n - 1].kind == GPUOS_PTX_EOF && t[n - 1].off == size && !t[n - 1].len);
	for (size_t i = 0; i < n; i++) {
		CHECK(t[i].off >= prev_end && (size_t)t[i].off + t[i].len <= size);
		CHECK(t[i].kind <= GPUOS_PTX_PUNCT && (t[i].kind == GPUOS_PTX_EOF) == (i + 1 == n));
		CHECK(i + 1 == n || t[i].len > 0);
		check_gap(src, prev_end, t[i].off);
		for (; at < t[i].off; at++)
			line += src[at] == '\n';
		CHECK(t[i].line == line);
		CHECK(gpuos_ptx_tok_is(src, &t[i], "") == !t[i].len);
		prev_end = t[i].off + t[i].len;
		jlen += t[i].len + 1;
	}

	joined = malloc(jlen);
	CHECK(joined);
	for (size_t i = 0; i + 1 < n; i++) {
		memcpy(joined + o, src + t[i].off, t[i].len);
		o += t[i].len;
		joined[o++] = ' ';
	}
	CHECK(gpuos_ptx_tokenize(joined, o, &u, &m, NULL) == 0 && m == n);
	for (size_t i = 0; i + 1 < n; i++) {
		CHECK(u[i].kind == t[i].kind && u[i].len == t[i].len && u[i].line == 1);
		CHECK(!memcmp(joined + u[i].off, src + t[i].off, t[i].len));
	}
	free(u);
	free(joined);
	free(t);
	return 0;
}
