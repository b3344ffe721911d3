// SPDX-License-Identifier: MIT
/*
 * The operator that runs a lifted kernel's launches in the worker: CUDA C++ for the jit,
 * linked with the lifted PTX (lift.c). One task is one launch, encoded as ptx_lift.h says.
 *
 * The worker's compute threads play the launch's blocks as virtual blocks:
 *   - "warps" mode (no block barrier, no shared memory): every virtual warp of every block is
 *     an independent piece of work; the compute warps take them round robin, one hardware
 *     warp for one virtual warp, so lanes, shuffles and votes are the kernel's own.
 *   - "blocks" mode (barriers or shared memory): one virtual block at a time, thread i of it
 *     on compute thread i, its shared memory in the window, its barriers named barriers 2..
 *     over the block's warps; a worker barrier between blocks (they reuse the window).
 * A parameter buffer that did not fit in the task is copied into the window's last
 * GPUOS_LIFT_PARAMS_MAX bytes first: later reads are shared-memory reads, and the host may
 * reuse its copy as soon as the task has run (every load of it completed before the barrier).
 */
#include <errno.h>
#include <stdio.h>

#include "kernels/task.h"
#include "ptx_lift/ptx_lift.h"

_Static_assert(GPUOS_LIFT_WINDOW + GPUOS_LIFT_PARAMS_MAX == GPUOS_SMEM_WINDOW,
	       "the lifted kernel's shared memory and its parameters share the worker's window");

static const char body[] =
    "#include \"gpuos_task.h\"\n"
    "extern \"C\" __device__ void %s(const void *args, unsigned cx, unsigned cy, unsigned cz,\n"
    "    unsigned nx, unsigned ny, unsigned nz, unsigned tx, unsigned ty, unsigned tz,\n"
    "    unsigned bx, unsigned by, unsigned bz, unsigned nthreads, unsigned smem);\n"
    "#define LIFTED %s\n"
    "#define PARAM_BYTES %uu\n"
    "#define INLINE %d\n"
    "#define WARPS %d\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE(gpuos_lifted_op)\n"
    "{\n"
    "  const unsigned me = gpuos_tid(), all = gpuos_nthreads();\n"
    "  unsigned char *win = (unsigned char *)smem;\n"
    "  (void)win;\n"
    "  for (int k = 0; k < ntasks; k++) {\n"
    "    const struct gpuos_task *tk = &t[k];\n"
    "    const unsigned gx = (unsigned)tk->a[0], gy = (unsigned)(tk->a[0] >> 32) & 0xffffu,\n"
    "                   gz = (unsigned)(tk->a[0] >> 48);\n"
    "    const unsigned bx = (unsigned)tk->a[1] & 0xffffu, by = (unsigned)(tk->a[1] >> 16) & "
    "0xffffu,\n"
    "                   bz = (unsigned)(tk->a[1] >> 32) & 0xffffu;\n"
    "    const unsigned nthr = bx * by * bz, nblk = gx * gy * gz, wpb = (nthr + 31) / 32;\n"
    "    const void *args;\n"
    "    if (k)\n"
    "      gpuos_sync(); /* the previous task (maybe of the same stream) is done */\n"
    "#if INLINE\n"
    "    args = &tk->a[2];\n"
    "#else\n"
    "    {\n"
    "      const uint4 *src = (const uint4 *)tk->a[2];\n"
    "      uint4 *dst = (uint4 *)(win + %uu);\n"
    "      for (unsigned i = me; i < (PARAM_BYTES + 15) / 16; i += all)\n"
    "        dst[i] = src[i];\n"
    "      gpuos_sync();\n"
    "      args = dst;\n"
    "    }\n"
    "#endif\n"
    "#if WARPS\n"
    "    if (gy == 1 && gz == 1 && by == 1 && bz == 1) { /* 1D: no divisions but one */\n"
    "      for (unsigned w = me / 32; w < nblk * wpb; w += all / 32) {\n"
    "        const unsigned b = w / wpb, th = (w - b * wpb) * 32 + me %% 32;\n"
    "        if (th < nthr)\n"
    "          LIFTED(args, b, 0, 0, gx, 1, 1, th, 0, 0, bx, 1, 1, wpb * 32, 0);\n"
    "      }\n"
    "      continue;\n"
    "    }\n"
    "    for (unsigned w = me / 32; w < nblk * wpb; w += all / 32) {\n"
    "      const unsigned b = w / wpb, th = (w - b * wpb) * 32 + me %% 32;\n"
    "      if (th < nthr)\n"
    "        LIFTED(args, b %% gx, (b / gx) %% gy, b / (gx * gy), gx, gy, gz,\n"
    "               th %% bx, (th / bx) %% by, th / (bx * by), bx, by, bz, wpb * 32, 0);\n"
    "    }\n"
    "#else\n"
    "    {\n"
    "      const unsigned sw = (unsigned)__cvta_generic_to_shared(win);\n"
    "      for (unsigned b = 0; b < nblk; b++) {\n"
    "        if (b)\n"
    "          gpuos_sync(); /* the block before is out of the window */\n"
    "        if (me < nthr)\n"
    "          LIFTED(args, b %% gx, (b / gx) %% gy, b / (gx * gy), gx, gy, gz,\n"
    "                 me %% bx, (me / bx) %% by, me / (bx * by), bx, by, bz, wpb * 32, sw);\n"
    "      }\n"
    "    }\n"
    "#endif\n"
    "  }\n"
    "}\n"
    "extern \"C\" __device__ GPUOS_OP_SIGNATURE((*gpuos_op_entry)) = gpuos_lifted_op;\n"
    "/* the linker keeps only functions whose address some data holds: without this it drops\n"
    " * the lifted function and leaves the call above pointing at address 0 */\n"
    "extern \"C\" __device__ decltype(&LIFTED) gpuos_lifted_keep = LIFTED;\n";

bool gpuos_lift_warps_mode(const struct gpuos_lift_result *r)
{
	return !r->barriers && !r->static_smem && !r->dynamic_smem;
}

int gpuos_lift_wrapper(const struct gpuos_lift_result *r, char *buf, size_t len)
{
	int n;

	if (r->reason != GPUOS_LIFT_OK || !r->func[0])
		return -EINVAL;
	n = snprintf(buf, len, body, r->func, r->func, r->param_bytes,
		     r->param_bytes <= GPUOS_LIFT_INLINE, gpuos_lift_warps_mode(r),
		     GPUOS_LIFT_WINDOW);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}
