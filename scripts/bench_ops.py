#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Host cost of single PyTorch ops, plain and under shim configurations, each in its own
child process, the configurations alternating round by round; prints the medians and each
configuration's difference from plain per op. What it separates: a diverted op alone
(add, softmax; clone, a device-to-device copy), an op the catalog lacks alone (ln, mm, addmm, query,
cat: what the shim adds to a launch it passes through, the driver-call observer included),
a diverted op next to one it lacks (add_ln, add_mm, add3_mm, clone_mm: a batch opened and
closed per iteration), and the driver's pointer query a diverted copy makes (ptrq, less ctx).

  scripts/bench_ops.py ROUNDS [NAME:SHIM=PATH;KEY=VALUE;...]...

e.g. scripts/bench_ops.py 4 shim:SHIM=build/libgpuos_shim.so \
       "nocupti:SHIM=build/libgpuos_shim.so;GPUOS_DEBUG_NO_CUPTI=1"
Children run pinned to CPU 2 and 3 (taskset). A probe build's spans print for its last round.
Exit status: 0, or 77 without torch or a GPU.
"""
import os, subprocess, sys, json, statistics, time
if len(sys.argv) > 1 and sys.argv[1] == "child":
    import torch, torch.nn.functional as F
    d = "cuda"
    x = torch.randn(1, 128, device=d); y = torch.randn(1, 128, device=d); z = torch.empty_like(x)
    w = torch.randn(128, device=d); b = torch.randn(128, device=d)
    W = torch.randn(128, 128, device=d)
    kv = torch.randn(1, 2, 16, 64, device=d); kv1 = torch.randn(1, 2, 1, 64, device=d)
    ops = {
        "add": lambda: torch.add(x, y, out=z),
        "softmax": lambda: torch.softmax(x, -1),
        "ln": lambda: F.layer_norm(x, (128,), w, b),
        "mm": lambda: torch.mm(x, W),
        "addmm": lambda: torch.addmm(b, x, W),
        "clone": lambda: x.clone(),
        "query": lambda: torch.cuda.current_stream().query(),
        "cat": lambda: torch.cat([kv, kv1], dim=-2),
        "add_ln": lambda: (torch.add(x, y, out=z), F.layer_norm(z, (128,), w, b)),
        "add_mm": lambda: (torch.add(x, y, out=z), torch.mm(z, W)),
        "add3_mm": lambda: (torch.add(x, y, out=z), torch.add(z, y, out=z), torch.add(z, y, out=z), torch.mm(z, W)),
        "add_clone": lambda: (torch.add(x, y, out=z), z.clone()),
        "clone_mm": lambda: torch.mm(x.clone(), W),
    }
    # the driver's pointer query the shim makes of a copy's two ends (through ctypes: the
    # call's own cost is the difference from ctx, a call that only reads a thread local)
    import ctypes
    cu = ctypes.CDLL("libcuda.so.1")
    attrs = (ctypes.c_int * 5)(2, 1, 8, 11, 12)  # type, context, managed, range start, size
    vals = [ctypes.c_uint64(0) for _ in range(5)]
    data = (ctypes.c_void_p * 5)(*[ctypes.cast(ctypes.byref(v), ctypes.c_void_p) for v in vals])
    ctx, xp = ctypes.c_void_p(), ctypes.c_uint64(x.data_ptr())
    q = cu.cuPointerGetAttributes
    g = cu.cuCtxGetCurrent
    ops["ptrq"] = lambda: q(5, attrs, data, xp)
    ops["ctx"] = lambda: g(ctypes.byref(ctx))
    assert q(5, attrs, data, xp) == 0 and vals[0].value == 2, [v.value for v in vals]
    for f in ops.values():
        for _ in range(200): f()
    torch.cuda.synchronize()
    try:  # under the shim: the operators those ops started are in before timing
        ctypes.CDLL(None).gpuos_op_wait_all()
    except AttributeError:
        pass
    out = {}
    names = list(ops)
    for rep in range(5):
        for n in (names if rep % 2 == 0 else names[::-1]):
            f = ops[n]; k = 4000
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(k): f()
            t1 = time.perf_counter()
            torch.cuda.synchronize()
            out.setdefault(n, []).append((t1 - t0) / k * 1e6)
    print(json.dumps({n: min(v) for n, v in out.items()}))
    sys.exit(0)
from benchcfg import run_rounds


def probe_lines(last, name, p):  # a probe build's spans, from its last round
    for l in p.stderr.splitlines() if last else []:
        if l.startswith("gpuos probe"):
            print(f"  {name} {l}")


cfgs, res = run_rounds("bench_ops", __file__, __doc__, 120, probe_lines)
print("median us per op, and the difference from plain")
keys = list(res["plain"][0])
for name, _ in cfgs:
    med = {k: statistics.median(x[k] for x in res[name]) for k in keys}
    pm = {k: statistics.median(x[k] for x in res["plain"]) for k in keys}
    print(f"{name:10s} " + " ".join(f"{k}={med[k]:.2f}({med[k]-pm[k]:+.2f})" for k in keys))
