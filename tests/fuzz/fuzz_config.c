// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the config parser: the input is parsed as a config file, then, split
 * at newlines, used as an environment list for gpuos_cfg_apply_env; whatever patterns result
 * are matched against real kernel names. gpuos_cfg_load is left out: a fuzzed GPUOS_CONFIG
 * could name any file (/dev/stdin would block).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interpose/config.h"
#include "tests/fuzz/guard.h"

#define MAX_ENV 64

static const char *const names[] = {
	"void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
	"std::array<char*, 3ul> >(int, at::native::CUDAFunctor_add<float>, std::array<char*, 3ul>)",
	"void (anonymous namespace)::softmax_warp_forward<float, float, float, 8, false, false>("
	"float*, float const*, int, int, int, bool const*, int, bool)",
	"void at::native::vectorized_elementwise_kernel<4, at::native::exp_kernel_cuda(at::"
	"TensorIteratorBase&)::{lambda()#2}::operator()() const::{lambda()#2}::operator()() const::"
	"{lambda(float)#1}, std::array<char*, 2ul> >(int, at::native::exp_kernel_cuda(at::"
	"TensorIteratorBase&)::{lambda()#2}::operator()() const::{lambda()#2}::operator()() const::"
	"{lambda(float)#1}, std::array<char*, 2ul>)",
	"",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gpuos_cfg cfg;
	char err[256], *text, *env[MAX_ENV + 1];
	size_t n = 0;

	/* as a file, against a guard page: exactly size bytes, no NUL after */
	gpuos_cfg_init(&cfg);
	gpuos_cfg_parse(&cfg, gpuos_fuzz_guard(data, size), size, "fuzz", err, sizeof(err));

	/* as an environment: one "K=V" a line */
	text = malloc(size + 1);
	if (!text)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *p = text; n < MAX_ENV;) {
		char *nl = strchr(p, '\n');

		env[n++] = p;
		if (!nl)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	env[n] = NULL;
	gpuos_cfg_apply_env(&cfg, env, err, sizeof(err));
	gpuos_cfg_apply_env(&cfg, NULL, err, sizeof(err));

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		gpuos_cfg_match(&cfg, names[i]);
	gpuos_cfg_match(&cfg, NULL);
out:
	free(text);
	gpuos_cfg_free(&cfg);
	return 0;
}
