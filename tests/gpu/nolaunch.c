// SPDX-License-Identifier: MIT
/*
 * Benchmarks only: a preload that makes every runtime kernel launch return success without
 * launching anything. Under it a small-tensor PyTorch loop costs what it would under a shim
 * whose diverted launches were free: the ceiling the speed targets are measured
 * against (scripts/bench_torch.py, mode "ceiling"). Results are garbage by design.
 */
#define NOLAUNCH(name)                                                                             \
	__attribute__((visibility("default"))) int name(void)                                      \
	{                                                                                          \
		return 0; /* cudaSuccess */                                                        \
	}

NOLAUNCH(cudaLaunchKernel)
NOLAUNCH(cudaLaunchKernel_ptsz)
NOLAUNCH(__cudaLaunchKernel)
NOLAUNCH(__cudaLaunchKernel_ptsz)
NOLAUNCH(cudaLaunchKernelExC)
NOLAUNCH(cudaLaunchKernelExC_ptsz)
