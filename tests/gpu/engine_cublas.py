# SPDX-License-Identifier: MIT
"""Tasks ordered against work the runtime hooks never see: cuBLAS GEMMs (launched through the
driver by cuBLAS's own runtime) read a diverted task's output on the same stream, with no
flush in between; the worker is slowed by a spin task so that a GEMM not ordered after it
would read stale data. Also: with a profiler holding CUPTI, gpuos_init refuses (-EBUSY)."""
import ctypes, os, struct, sys
import torch

lib = ctypes.CDLL(os.environ["GPUOS_SHIM"])
lib.gpuos_submit.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint64),
                             ctypes.c_uint, ctypes.c_uint]
OP_AXPB, OP_SPIN = 1, 5


def fbits(f):
    return struct.unpack("<I", struct.pack("<f", f))[0]


def submit(stream, op, *args):
    a = (ctypes.c_uint64 * 6)(*args)
    rc = lib.gpuos_submit(ctypes.c_void_p(stream.cuda_stream), op, a, len(args), 0)
    assert rc == 0, f"gpuos_submit: {rc}"


if sys.argv[1:] == ["profiler"]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]):
        torch.ones(4, device="cuda").sum().item()
        rc = lib.gpuos_init(None)
    print("gpuos_init under torch.profiler:", rc)
    sys.exit(0 if rc == -16 else 1)

torch.manual_seed(0)
assert lib.gpuos_init(None) == 0
s = torch.cuda.Stream()
n = 256
w = torch.randn(n, n, device="cuda")
bad = 0
with torch.cuda.stream(s):
    for it in range(200):
        x = torch.randn(n, n, device="cuda")
        x2 = torch.zeros(n, n, device="cuda")
        a, b = 0.5, float(it % 7)
        submit(s, OP_SPIN, 200_000)  # 0.2 ms: the GEMM below would win a race
        submit(s, OP_AXPB, x2.data_ptr(), x.data_ptr(), n * n, fbits(a), fbits(b))
        y = torch.mm(x2, w)  # cuBLAS, through the driver; no flush
        ref = torch.mm(x * a + b, w)
        if not torch.equal(y, ref):
            bad += 1
torch.cuda.synchronize()
print(f"cublas after tasks: {200 - bad}/200 GEMMs bit-identical to the reference")
sys.exit(1 if bad else 0)
