#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Device time of dependent PyTorch ops, plain and under shim configurations: each case runs
K ops queued behind a sleep kernel long enough for the host to submit them all, so the GPU
runs them back to back and the time between two events around them is the device's alone
(plain: the kernels one after another; under the shim: the worker's tasks). What it
separates from bench_ops (host cost): the worker's cost a task, tiny to optimizer-sized.

  scripts/bench_tasks.py ROUNDS [NAME:SHIM=PATH;KEY=VALUE;...]...

e.g. scripts/bench_tasks.py 3 "shim:SHIM=build/libgpuos_shim.so;GPUOS_MAX_ELEMENTS=262144"
BENCH_CASES=sum,colsum (a comma-separated list of case names) runs only those.
Prints µs an op per case (median of the rounds) and each configuration's ratio to plain, and
the share of the case's ops each shim configuration ran in its worker. Children run pinned
to CPUs 2 and 3. Exit status: 0, or 77 without torch or a GPU.
"""
import os, subprocess, sys, json, statistics, time

SIZES = (1024, 4096, 16384, 65536, 131072, 262144)
K = 200


def child():
    import ctypes, torch
    d = "cuda"
    try:
        lib = ctypes.CDLL(None)
        lib.gpuos_get_stats
    except AttributeError:
        lib = None

    class Stats(ctypes.Structure):
        _fields_ = [(f, ctypes.c_uint64) for f in
                    ("submitted", "opened", "closed", "launches", "parks", "swaps", "retired",
                     "compiles", "hits", "nvrtc")] + [("prof", ctypes.c_uint64 * 7),
                                                       ("elided", ctypes.c_uint64)]

    def submitted():
        if not lib:
            return 0
        st = Stats()
        lib.gpuos_get_stats(ctypes.byref(st))
        return st.submitted

    cases = {}
    for n in SIZES:
        x = torch.randn(n, device=d); y = torch.randn(n, device=d); z = torch.empty_like(x)
        h = x.half(); hy = y.half()
        m = x.view(-1, 128); b = torch.randn(128, device=d); mo = torch.empty_like(m)
        cases[f"add/{n}"] = lambda x=x, y=y, z=z: torch.add(x, y, out=z)
        cases[f"add_/{n}"] = lambda x=x, y=y: x.add_(y, alpha=1e-3)
        cases[f"mul_/{n}"] = lambda x=x: x.mul_(0.999)
        cases[f"addcmul_/{n}"] = lambda x=x, y=y, z=z: z.addcmul_(x, y, value=1e-3)
        cases[f"hadd/{n}"] = lambda h=h, hy=hy: h.add_(hy)
        cases[f"bcast/{n}"] = lambda m=m, b=b, mo=mo: torch.add(m, b, out=mo)
        rs = torch.empty(n // 128, device=d)
        cases[f"sum/{n}"] = lambda m=m, rs=rs: torch.sum(m, 1, out=rs)
        cs = torch.empty(128, device=d); s0 = torch.empty((), device=d)
        cases[f"colsum/{n}"] = lambda m=m, cs=cs: torch.sum(m, 0, out=cs)
        cases[f"sumall/{n}"] = lambda x=x, s0=s0: torch.sum(x, 0, out=s0)
        m32, r32 = x.view(-1, 32), torch.empty(n // 32, device=d)
        cases[f"sum32/{n}"] = lambda m=m32, r=r32: torch.sum(m, 1, out=r)
        m1k, r1k = x.view(-1, 1024), torch.empty(n // 1024, device=d)
        cases[f"sum1k/{n}"] = lambda m=m1k, r=r1k: torch.sum(m, 1, out=r)
        hm, hr = h.view(-1, 128), torch.empty(n // 128, device=d, dtype=torch.half)
        cases[f"hsum/{n}"] = lambda m=hm, r=hr: torch.sum(m, 1, out=r)
        ia = torch.empty(n // 128, device=d, dtype=torch.long)
        cases[f"argmax/{n}"] = lambda m=m, ia=ia: torch.argmax(m, 1, out=ia)
    only = os.environ.get("BENCH_CASES")  # a comma-separated list of case prefixes
    if only:
        cases = {k: f for k, f in cases.items() if k.split("/")[0] in only.split(",")}
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
    for f in cases.values():
        for _ in range(50):
            f()
    torch.cuda.synchronize()
    if lib:
        lib.gpuos_op_wait_all()
    # the sleep's length: twice the host's time for K ops at three times the mean op
    t = time.perf_counter()
    for f in cases.values():
        for _ in range(100):
            f()
    host = (time.perf_counter() - t) / (100 * len(cases)) * 3
    torch.cuda.synchronize()
    ev[0].record()
    torch.cuda._sleep(1000000)
    ev[1].record()
    torch.cuda.synchronize()
    cyc = int(2 * host * K * 1e3 * 1e6 / ev[0].elapsed_time(ev[1]))  # cycles a second
    out = {}
    for name, f in cases.items():
        best, s0 = 1e9, submitted()
        for rep in range(3):
            torch.cuda.synchronize()
            ev[2].record()
            t0 = time.perf_counter()
            torch.cuda._sleep(cyc)
            ev[0].record()
            for _ in range(K):
                f()
            t1 = time.perf_counter()
            ev[1].record()
            torch.cuda.synchronize()
            dev = ev[0].elapsed_time(ev[1]) * 1e3 / K
            # the host must have finished before the sleep did, or it timed the host
            if (t1 - t0) * 1e3 >= 0.9 * ev[2].elapsed_time(ev[0]):
                dev = float("nan")
            best = min(best, dev) if dev == dev else best  # 1e9: no valid repetition
        out[name] = [best, (submitted() - s0) / (3 * K)]
    print(json.dumps(out))


def main():
    from benchcfg import run_rounds
    cfgs, res = run_rounds("bench_tasks", __file__, __doc__, 300)
    keys = list(res["plain"][0])
    def med_of(c, k):  # of the rounds whose host finished before the sleep did
        v = [x[k][0] for x in res[c] if x[k][0] < 1e9]
        return statistics.median(v) if v else float("nan")
    med = {c: {k: med_of(c, k) for k in keys} for c, _ in cfgs}
    print(f"{'case':16s} " + " ".join(f"{c:>16s}" for c, _ in cfgs))
    for k in keys:
        cells = []
        for c, _ in cfgs:
            v = med[c][k]
            if c == "plain":
                cells.append(f"{v:16.2f}")
            else:
                div = statistics.median(x[k][1] for x in res[c])
                cells.append(f"{v:7.2f} {med['plain'][k] / v:4.2f}x {100 * div:3.0f}%")
        print(f"{k:16s} " + " ".join(cells))
    print("µs an op on the device (median of rounds); under a shim: ratio plain/shim, share in "
          "the worker")


if __name__ == "__main__":
    child() if len(sys.argv) > 1 and sys.argv[1] == "child" else main()
