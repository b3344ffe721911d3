// SPDX-License-Identifier: MIT
/*
 * The process's exit, before anyone's exit handlers: the jit thread's compile in progress
 * ends first (gpuos_jit_cancel).
 *
 * Why here and not in an atexit handler: exit runs its handlers last registered, first run,
 * and NVRTC registers destructors of its own during its first compile, after any handler we
 * could register before that compile. A program that exits while that compile runs (a short
 * program on a cold cache) destroyed NVRTC's state under it: SIGSEGV in nvrtcCompileProgram.
 * So the two ways a program ends normally come through here first: main returning (through
 * __libc_start_main, which the executable's _start calls through the PLT) and exit() called
 * by anyone through the PLT. _exit and a fatal signal run no destructors and need nothing.
 */
#include <dlfcn.h>
#include <stdlib.h>

#include "kernels/jit.h"

#define GPUOS_EXPORT __attribute__((visibility("default")))

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void),
			void *);

static main_fn real_main; /* set once, before main runs, by the one thread there is */

static int main_then_quiesce(int argc, char **argv, char **envp)
{
	int rc = real_main(argc, argv, envp);

	gpuos_jit_cancel();
	return rc;
}

GPUOS_EXPORT int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
				   void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
	start_fn real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");

	real_main = main;
	return real(main_then_quiesce, argc, argv, init, fini, rtld_fini, stack_end);
}

GPUOS_EXPORT void exit(int status)
{
	void (*real)(int) = (void (*)(int))dlsym(RTLD_NEXT, "exit");

	gpuos_jit_cancel();
	real(status);
	__builtin_unreachable();
}
