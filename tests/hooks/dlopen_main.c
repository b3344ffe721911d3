// SPDX-License-Identifier: MIT
/*
 * The PyTorch pattern: a plain program dlopen()s, in a local scope, a library that carries
 * kernels and needs libcudart. The shim's hooks then find the runtime with RTLD_NEXT failing
 * and must fall back to the loaded libcudart by name.
 */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	void *h = dlopen(argc > 1 ? argv[1] : "libuser.so", RTLD_NOW | RTLD_LOCAL);
	int (*run)(int);

	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	run = (int (*)(int))dlsym(h, "user_run");
	if (!run)
		return 1;
	printf("user_run %d\n", run(5));
	return 0;
}
