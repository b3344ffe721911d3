# SPDX-License-Identifier: MIT
"""Tasks ordered against work the runtime hooks never see: cuBLAS GEMMs (launched through the
driver by cuBLAS's own runtime) read a diverted task's output on the same stream, with no
flush in between; the worker is slowed by a spin task so that a GEMM not ordered after it
would read stale data. Also ("profiler"): torch.profiler, which subscribes to CUPTI first,
and the engine share the subscription: gpuos_init works, the task is right, and the
profiler's kernel records hold both PyTorch's kernel and the worker."""
import ctypes, os, struct, sys, time
import torch

lib = ctypes.CDLL(os.environ["GPUOS_SHIM"])
lib.gpuos_submit.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.POINTER(ctypes.c_uint64),
                             ctypes.c_uint, ctypes.c_uint]
OP_AXPB, OP_SPIN = 1, 5


def fbits(f):
    return struct.unpack("<I", struct.pack("<f", f))[0]


def submit(stream, op, *args):
    """Queue a task; -EAGAIN (workers parked a moment, e.g. while the catalog loads an operator
    of PyTorch's kernels) says nothing was queued: try again."""
    a = (ctypes.c_uint64 * 6)(*args)
    for _ in range(100000):
        rc = lib.gpuos_submit(ctypes.c_void_p(stream.cuda_stream), op, a, len(args), 0)
        if rc != -11:
            break
        time.sleep(0.0001)
    assert rc == 0, f"gpuos_submit: {rc}"


if sys.argv[1:] == ["profiler"]:
    x = torch.arange(1024, device="cuda", dtype=torch.float32)
    y = torch.zeros(1024, device="cuda")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        torch.ones(4, device="cuda").sum().item()
        rc = lib.gpuos_init(None)
        if rc == 0:
            submit(torch.cuda.current_stream(), OP_AXPB, y.data_ptr(), x.data_ptr(), 1024,
                   fbits(2.0), fbits(1.0))
        torch.cuda.synchronize()
    names = [e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    ok = rc == 0 and torch.equal(y, x * 2 + 1)
    seen = any("reduce_kernel" in n for n in names), any("gpuos_worker" in n for n in names)
    print(f"gpuos_init under torch.profiler: {rc}; task right: {ok}; profiler saw "
          f"{len(names)} kernels (PyTorch's sum: {seen[0]}, the worker: {seen[1]})")
    sys.exit(0 if ok and all(seen) else 1)

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
