/* SPDX-License-Identifier: MIT */
/* The worker's fatbinary (kernels/worker.cu, one exec cubin per arch), built into the shim. */
	.section .rodata
	.balign 64
	.globl gpuos_worker_fatbin
	.hidden gpuos_worker_fatbin
gpuos_worker_fatbin:
	.incbin "worker.fatbin"
	.globl gpuos_worker_fatbin_end
	.hidden gpuos_worker_fatbin_end
gpuos_worker_fatbin_end:
	.section .note.GNU-stack,"",@progbits
