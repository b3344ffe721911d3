/* SPDX-License-Identifier: MIT */
#ifndef GPUOS_PTX_TOK_H
#define GPUOS_PTX_TOK_H

/*
 * ptx_tok: the first stage of ptx_lift, PTX text to a flat array of tokens that point into
 * the caller's buffer. No PTX grammar beyond the lexical one: which words are opcodes,
 * types or state spaces is for the stages after it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gpuos_ptx_tok_kind {
	GPUOS_PTX_EOF = 0,
	GPUOS_PTX_IDENT,     /* ld, add, $L__BB0_3, _Z3fooPf, my_var, __cudart_x */
	GPUOS_PTX_DIRECTIVE, /* a dot word: .entry .param .u64 .global .x (also opcode suffixes) */
	GPUOS_PTX_REG,	     /* %r1 %rd<12> is REG "%rd" then '<' ...; %ctaid.x %tid.y %nctaid.z
			      * are ONE token with the .x/.y/.z/.w component */
	GPUOS_PTX_INT,	     /* 42 0x1F 017 0b101 with optional U suffix, e.g. 4U */
	GPUOS_PTX_FLOAT,     /* 0f3F800000 0d3FF0000000000000 1.5 2e-3 */
	GPUOS_PTX_STRING,    /* "..." (no escapes other than \" and \\) */
	GPUOS_PTX_PUNCT,     /* one char of ; , { } [ ] ( ) + - ! @ < > = | : * / ~ & ^ ?
			      * % (lone) */
};

struct gpuos_ptx_tok {
	uint8_t kind;	   /* enum gpuos_ptx_tok_kind */
	uint32_t off, len; /* in the source buffer */
	uint32_t line;	   /* 1-based */
};

/*
 * Tokenize PTX text (buf, len); comments (// to end of line, and slash-star blocks) and
 * whitespace are dropped. buf need not be NUL-terminated and may be NULL when len is 0.
 * *toks is a malloc'd array of *ntoks tokens ending with one GPUOS_PTX_EOF (off == len,
 * len 0); the caller frees it. Returns 0, -EINVAL for text that is not PTX-lexable (a NUL
 * byte, a byte >= 0x80, an unterminated string or comment, a malformed number such as 0x
 * without digits), with *err_line set to the line of the offending byte, or of the string or
 * comment that never ends (err_line may be NULL); -ENOMEM. Sizes over 1 GiB: -E2BIG. On any
 * error *toks is NULL and *ntoks 0.
 *
 * Lexical choices beyond the PTX ISA's own grammar: a '.' followed by a digit is a FLOAT when
 * the number ends there (.5, .25e3) and a DIRECTIVE otherwise (.1d .16x64b); a directive may
 * carry "::word" parts (.shared::cluster .L2::128B .mbarrier::complete_tx::bytes); a lone '_'
 * (PTX's sink operand) is an IDENT; a number may not run into a letter, digit, '_', '$' or
 * '.' (0x1G, 08, 1.5f, 1.5.x are errors, as they are to ptxas).
 */
int gpuos_ptx_tokenize(const char *buf, size_t len, struct gpuos_ptx_tok **toks, size_t *ntoks,
		       unsigned *err_line);

/* Token text equality without copying: t's text in buf is exactly the C string s. */
bool gpuos_ptx_tok_is(const char *buf, const struct gpuos_ptx_tok *t, const char *s);

#endif
