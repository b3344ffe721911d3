#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Time small PyTorch workloads plain (eager), under the GPUOS shim (LD_PRELOAD), as one
CUDA graph replay, and under torch.compile(mode="reduce-overhead").

Two more modes: "ceiling" preloads build/gpu/libnolaunch.so, under which every kernel launch
returns at once without running: what a shim whose diverted launches cost nothing would reach
(results are garbage there, and not compared); "base" runs a second shim (--base-shim), to
time a change against the build before it in the same run.

Every (workload, mode) runs in its own child process (this script re-executed with the
hidden --child WORKLOAD MODE); the child prints one JSON line, its last line on stdout.
In shim mode the shim writes its report (GPUOS_REPORT=....json) at exit and the parent
reads how many launches were diverted from it.

--interleave N runs eager and the shims differently: one long-lived child each (hidden
--serve WORKLOAD MODE), timing N segments in turn, the order shuffled every round; a shim's
workers are parked between its segments, so only one child uses the GPU at a time. The host's
speed drifts by several per cent between child processes, which is the size of what a shim
saves in the model workloads; paired segments cancel it, and their per-round differences
give the time saved per diverted launch with quartiles. Pin it to one core (taskset -c 2):
on two, each child kept to the core it started on and two arms of one build read up to
4 % apart; on one they read within 1 %, but on other hosts still up to 4 % (a process's own
speed: its layout in memory). --processes K gives each mode K children that take the rounds
in turn, so that no single process sets a mode's figure.

Exit status: 0 all well, 1 a child failed or shim results differ from eager,
2 bad arguments, 77 no GPU (or no torch).
"""
import argparse
import functools
import hashlib
import importlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODES = ["eager", "shim", "base", "ceiling", "graph", "compile"]
SHIMS = ("shim", "base")  # the modes that preload a GPUOS shim
# which modes apply to which workload (the parent must know this without torch); "ceiling"
# only where every launch in the timed loop is a kernel the catalog diverts
WORKLOADS = {
    "add1024": ["eager", "shim", "base", "ceiling", "graph", "compile"],
    "chain8": ["eager", "shim", "base", "ceiling", "graph", "compile"],
    "mlp_step": ["eager", "shim", "base"],  # optimizer with capturable=False: no graph/compile
    "gpt2": ["eager", "shim", "base"],  # generate(): host-side loop, no graph/compile
    "big": ["eager", "shim", "base", "graph", "compile"],
}
UNIT = {"add1024": "op", "chain8": "chain", "mlp_step": "step", "gpt2": "token", "big": "iter"}


# ---------------------------------------------------------------------------- child side

def tensor_hash(t):
    """sha256 of a tensor's bytes (numpy if there; else a weaker sum-based fingerprint)."""
    t = t.detach().contiguous().cpu()
    try:
        return hashlib.sha256(t.numpy().tobytes()).hexdigest()[:16]
    except Exception:  # no numpy: fingerprint from the sum and a few elements
        f = t.double().flatten()
        vals = [f.sum().item()] + f[:64].tolist()
        s = ",".join(float.hex(float(v)) for v in vals)
        return "sum-" + hashlib.sha256(s.encode()).hexdigest()[:16]


def fn_spec(torch, fn, args, cfn, cargs, iters, warmup):
    """A workload that is one function of fixed CUDA tensors: eager, shim, graph, compile.
    make(mode) returns (step, check, setup_iters, check_iters): step() runs one iteration,
    check() hashes the output; setup_iters/check_iters: iterations that make() and check()
    run themselves, so the child can count every iteration it ran."""

    def make(mode):
        if mode in ("eager", "ceiling") or mode in SHIMS:
            # functools.partial keeps the per-call Python overhead as low as possible
            return functools.partial(fn, *args), lambda: tensor_hash(fn(*args)), 0, 1
        if mode == "graph":
            # warm up on a side stream (as torch.cuda.graphs asks), then capture once
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):
                    fn(*args)
            torch.cuda.current_stream().wait_stream(s)
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                out = fn(*args)
            return g.replay, lambda: tensor_hash(out), 3, 0  # capture launches nothing
        if mode == "compile":
            # fixed addresses, as in graph mode: else cudagraph trees copy every input
            # into its static buffers on each call (64 MiB a matrix for `big`)
            # (importlib: an `import torch._dynamo` here would make `torch` a local name)
            try:
                dynamo = importlib.import_module("torch._dynamo")
                static = getattr(dynamo, "mark_static_address", None)
            except ImportError:
                static = None
            for t in cargs if static else ():
                static(t)
            cf = torch.compile(cfn, mode="reduce-overhead")
            mark = getattr(torch.compiler, "cudagraph_mark_step_begin", None)

            def step():
                if mark:
                    mark()  # each call is a new cudagraph-trees iteration
                return cf(*cargs)
            return step, lambda: tensor_hash(step().clone()), 0, 1
        raise ValueError(mode)

    return {"make": make, "iters": iters, "warmup": warmup, "per_iter": 1}


def wl_add1024(torch):
    x = torch.randn(1024, device="cuda")
    y = torch.randn(1024, device="cuda")
    z = torch.empty(1024, device="cuda")
    return fn_spec(torch, lambda a, b, c: torch.add(a, b, out=c), (x, y, z),
                   lambda a, b: a + b, (x, y), iters=10000, warmup=1000)


def chain8(torch, x):
    y = x * 1.5
    y = y + x
    y = torch.sigmoid(y)
    y = y * y
    y = y - 0.25
    y = torch.tanh(y)
    y = torch.exp(y)
    return y / 3.0


def wl_chain8(torch):
    x = torch.randn(1024, device="cuda")
    f = lambda a: chain8(torch, a)
    return fn_spec(torch, f, (x,), f, (x,), iters=2000, warmup=200)


def wl_big(torch):
    x = torch.randn(4096, 4096, device="cuda")
    w = torch.randn(4096, 4096, device="cuda")
    b = torch.randn(4096, device="cuda")
    f = lambda x_, w_, b_: torch.relu(torch.addmm(b_, x_, w_))
    return fn_spec(torch, f, (x, w, b), f, (x, w, b), iters=20, warmup=3)


def wl_mlp_step(torch):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.GELU(), nn.LayerNorm(512),
                          nn.Linear(512, 256)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
    x = torch.randn(8, 256, device="cuda")
    target = torch.randn(8, 256, device="cuda")
    losses = []  # detached loss tensors: read (synchronizing) only at the end

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.detach())

    def check():
        hexes = [float.hex(v.item()) for v in losses]
        spec["last_loss"] = hexes[-1]
        return hashlib.sha256(",".join(hexes).encode()).hexdigest()[:16]

    spec = {"make": lambda mode: (step, check, 0, 0), "iters": 20, "warmup": 5, "per_iter": 1}
    return spec


def wl_gpt2(torch):
    from transformers import GPT2Config, GPT2LMHeadModel
    new = 32
    config = GPT2Config(n_layer=2, n_embd=128, n_head=2, vocab_size=1000, n_positions=128)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).cuda().eval()
    ids = torch.tensor([[11, 22, 33, 44, 55, 66, 77, 88]], device="cuda")
    mask = torch.ones_like(ids)
    last = [None]

    def step():
        with torch.no_grad():
            last[0] = model.generate(ids, attention_mask=mask, max_new_tokens=new,
                                     do_sample=False, pad_token_id=0)

    def check():
        toks = last[0][0, ids.shape[1]:].tolist()
        if len(toks) != new:
            print(f"gpt2: generated {len(toks)} tokens, not {new}", file=sys.stderr)
        return " ".join(str(t) for t in toks)

    # one iteration = one generate() call = `new` tokens; the child reports per token
    return {"make": lambda mode: (step, check, 0, 0), "iters": 3, "warmup": 2, "per_iter": new}


BUILDERS = {"add1024": wl_add1024, "chain8": wl_chain8, "mlp_step": wl_mlp_step,
            "gpt2": wl_gpt2, "big": wl_big}


def shim_api():
    """The shim's C API (include/gpuos.h) when it is preloaded, else None."""
    import ctypes
    try:
        lib = ctypes.CDLL(None)
        lib.gpuos_get_stats
        return lib
    except (OSError, AttributeError):
        return None


# fields of struct gpuos_stats (gpuos.h) by their index there
STATS = (("tasks", 0), ("batches", 1), ("batches_closed", 2), ("worker_launches", 3),
         ("parks", 4), ("closes_elided", 17))
STAT_FIELDS = tuple(name for name, _ in STATS)


def engine_stats(lib):
    """The engine's counters so far (struct gpuos_stats, gpuos.h)."""
    if not lib:
        return [0] * len(STAT_FIELDS)
    import ctypes
    buf = (ctypes.c_uint64 * 64)()
    lib.gpuos_get_stats(buf)
    return [buf[i] for _, i in STATS]


def timed_report(lib, tag):
    """The shim's report as it stands (gpuos_report), parsed; None without the shim."""
    if not lib or not hasattr(lib, "gpuos_report"):
        return None
    path = os.path.join(tempfile.gettempdir(), f"bench_torch.{os.getpid()}.{tag}.json")
    try:
        if lib.gpuos_report(path.encode()) != 0:
            return None
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
    finally:
        if os.path.exists(path):
            os.unlink(path)


def ew_red_delta(a, b):
    """[launches, diverted] of elementwise and reduction kernels between two reports."""
    if not a or not b:
        return None
    old = {k["name"]: k for k in a.get("kernels", [])}
    tot = [0, 0]
    for k in b.get("kernels", []):
        if "elementwise_kernel" not in k["name"] and "reduce_kernel" not in k["name"]:
            continue
        o = old.get(k["name"], {"launches": 0, "diverted": 0})
        tot[0] += k["launches"] - o["launches"]
        tot[1] += k["diverted"] - o["diverted"]
    return tot


def fell_through_delta(a, b, most=12):
    """The kernels that fell through between two reports, most launches first:
    [[launches, short name, {why: count}], ...]."""
    if not a or not b:
        return None
    old = {k["name"]: k for k in a.get("kernels", [])}
    rows = []
    for k in b.get("kernels", []):
        o = old.get(k["name"], {})
        why = {w: n - o.get("fell_through", {}).get(w, 0)
               for w, n in k.get("fell_through", {}).items()}
        why = {w: n for w, n in why.items() if n > 0}
        if why:
            rows.append([sum(why.values()), k.get("short") or k["name"][:80], why])
    rows.sort(key=lambda r: -r[0])
    return rows[:most]


def setup_child(wl, mode):
    """torch, the workload's spec, step, check, the shim's API (or None) and the
    iterations run so far, once the workload is built and warm; None without a GPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network on the GPU machine
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    if not torch.cuda.is_available():
        print("no GPU: bench_torch needs a CUDA device", file=sys.stderr)
        return None
    # Shim mode: the report counts the whole process, so input/model setup and the
    # check below count too. Setup launches are few next to warmup + timed iterations,
    # so dividing the diverted total by `iters_total` is a close approximation.
    torch.manual_seed(0)  # the same inputs in every child: results compare across modes
    spec = BUILDERS[wl](torch)
    step, check, ran, check_ran = spec["make"](mode)
    warmup = spec["warmup"] if mode != "compile" else max(spec["warmup"], 10)
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    lib = shim_api() if mode in SHIMS else None
    if lib:  # the operators the warmup asked for are built before timing starts
        lib.gpuos_op_wait_all()
    # a second warm-up in every mode: the shim's runs diverted, and stateful workloads
    # (the MLP's weights) take as many steps in every mode, so their results compare
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    return {"torch": torch, "spec": spec, "step": step, "check": check, "lib": lib,
            "ran": ran + warmup * 2, "check_ran": check_ran}


def start_counting(c):
    """From here on the shim's counters and report count for the result (finish_child)."""
    c["before"] = (engine_stats(c["lib"]), timed_report(c["lib"], "before"), c["ran"])


def finish_child(c, wl, mode, times):
    """The child's result line: times (us per timed iteration) and, under the shim, what
    its counters and report saw over the iterations run since start_counting (the timed
    ones, and --interleave's untimed one a turn)."""
    torch, spec, lib = c["torch"], c["spec"], c["lib"]
    before, rep_before, ran_before = c["before"]
    per_iter = [(b - a) / ((c["ran"] - ran_before) * spec["per_iter"])
                for a, b in zip(before, engine_stats(lib))]
    chk = c["check"]()
    ran = c["ran"] + c["check_ran"]
    torch.cuda.synchronize()
    per = spec["per_iter"]  # gpt2: tokens per generate(); we report per token
    res = {"workload": wl, "mode": mode, "us": min(times) / per,
           "us_median": statistics.median(times) / per, "us_all": [t / per for t in times],
           "iters_total": ran * per, "check": chk, "device": torch.cuda.get_device_name()}
    if lib:  # the timed runs alone: their elementwise and reduction launches diverted
        rep_after = timed_report(lib, "after")
        res["timed_ew_red"] = ew_red_delta(rep_before, rep_after)
        res["timed_fell_through"] = fell_through_delta(rep_before, rep_after)
    if lib:  # per timed iteration: tasks (diverted launches), batches, parks...
        res["engine_per_iter"] = dict(zip(STAT_FIELDS, per_iter))
        res["tasks_per_iter"] = per_iter[0]
    if "last_loss" in spec:
        res["last_loss"] = spec["last_loss"]
    print(json.dumps(res), flush=True)
    return 0


def timed_segment(c):
    """One timing: spec['iters'] iterations, us per iteration."""
    torch, spec, step = c["torch"], c["spec"], c["step"]
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(spec["iters"]):
        step()
    torch.cuda.synchronize()
    c["ran"] += spec["iters"]
    return (time.perf_counter() - t0) / spec["iters"] * 1e6


def run_child(wl, mode, repeat):
    """Measure one workload in one mode; print the result as the last stdout line."""
    c = setup_child(wl, mode)
    if c is None:
        return 77
    start_counting(c)
    times = [timed_segment(c) for _ in range(repeat)]
    return finish_child(c, wl, mode, times)


def run_serve(wl, mode):
    """--interleave's child: builds and warms the workload, says "ready", then for each
    "run" line on stdin runs one iteration untimed and times one segment, answering its us
    per unit; "done" ends it with the result line. Under a shim the workers are parked between segments, so no worker
    kernel sits on the GPU while another child's segment runs."""
    c = setup_child(wl, mode)
    if c is None:
        return 77
    lib, per = c["lib"], c["spec"]["per_iter"]
    if lib:
        lib.gpuos_park()
    start_counting(c)
    print("ready", flush=True)
    times = []
    for line in sys.stdin:
        if line.strip() != "run":
            break
        if lib:
            lib.gpuos_unpark()
        c["step"]()  # untimed: after another child's turn, caches and worker warm again
        c["ran"] += 1
        times.append(timed_segment(c))
        if lib:
            lib.gpuos_park()
        print(json.dumps({"us": times[-1] / per}), flush=True)
    if lib:
        lib.gpuos_unpark()
    if not times:
        return 2
    return finish_child(c, wl, mode, times)


# --------------------------------------------------------------------------- parent side

_structure_printed = False


def diverted_from_report(rep):
    """Total diverted launches in a shim report (None if the format is not understood)."""
    global _structure_printed
    total = None
    for k in rep.get("kernels") or []:
        if not isinstance(k, dict):
            continue
        v = k.get("diverted")
        for sub in ("why", "counts"):
            if v is None and isinstance(k.get(sub), dict):
                v = k[sub].get("diverted")
        if isinstance(v, (int, float)):
            total = (total or 0) + int(v)
    if total is None and isinstance(rep.get("diverted"), (int, float)):
        total = int(rep["diverted"])
    if total is None and not _structure_printed:
        _structure_printed = True
        ks = rep.get("kernels") or [{}]
        print("shim report: no 'diverted' count found; its structure is:", file=sys.stderr)
        print("  top level: " + ", ".join(f"{k}: {type(v).__name__}" for k, v in rep.items()),
              file=sys.stderr)
        if isinstance(ks[0], dict):
            print("  kernels[0]: " + json.dumps(ks[0])[:600], file=sys.stderr)
    return total


def read_report(tmpdir, pid):
    """The report the child wrote (report-<pid>.json), else the busiest one in tmpdir."""
    path = os.path.join(tmpdir, f"report-{pid}.json")
    files = [path] if os.path.exists(path) else \
        [os.path.join(tmpdir, f) for f in sorted(os.listdir(tmpdir)) if f.endswith(".json")]
    best = None
    for f in files:
        try:
            with open(f) as fh:
                rep = json.load(fh)
        except (OSError, ValueError) as e:
            print(f"shim report {f}: {e}", file=sys.stderr)
            continue
        if best is None or (rep.get("launches") or 0) > (best.get("launches") or 0):
            best = rep
    return best


def child_env(mode, args, tmpdir):
    env = dict(os.environ)
    # never let a shim preloaded around this script leak into the non-shim children
    pre = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if "gpuos" not in p]
    if pre:
        env["LD_PRELOAD"] = " ".join(pre)
    else:
        env.pop("LD_PRELOAD", None)
    for k in ("GPUOS_REPORT", "GPUOS_CONFIG"):
        env.pop(k, None)
    if mode == "ceiling":
        env["LD_PRELOAD"] = args.nolaunch
    if mode in SHIMS:
        env["LD_PRELOAD"] = args.shim if mode == "shim" else args.base_shim
        env["GPUOS_CONFIG"] = "/dev/null"
        # on by default (an older base shim's default was off); GPUOS_CATALOG=off around
        # this script measures the shim's pass-through cost alone
        env.setdefault("GPUOS_CATALOG", "on")
        env["GPUOS_REPORT"] = os.path.join(tmpdir, "report-%p.json")  # %p: the pid
        if mode == "base":
            env.update(kv.split("=", 1) for kv in args.base_env.split(",") if "=" in kv)
    return env


def run_one(wl, mode, args):
    """Run one child; returns its result dict, or None on failure (stderr tail printed)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", wl, mode,
           "--repeat", str(args.repeat)]
    with tempfile.TemporaryDirectory(prefix="bench_torch.") as tmpdir:
        print(f"  {wl}/{mode} ...", file=sys.stderr, flush=True)
        try:
            p = subprocess.Popen(cmd, env=child_env(mode, args, tmpdir), cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = p.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err += f"\n(timed out after {args.timeout} s)"
            p.returncode = -1
        return collect(wl, mode, p, out, err, tmpdir)


def collect(wl, mode, p, out, err, tmpdir):
    """A finished child's result dict (its last JSON line, and under a shim what its report
    says), or None if it failed (its stderr's tail printed)."""
    res = None
    # the child's result is its last JSON line (the shim may print after it at exit)
    for line in reversed(out.splitlines() if p.returncode == 0 else []):
        try:
            res = json.loads(line)
        except ValueError:
            continue
        if isinstance(res, dict) and "workload" in res:
            break
        res = None
    if res is None:
        print(f"FAILED {wl}/{mode} (exit {p.returncode}); stderr tail:", file=sys.stderr)
        for l in (err.splitlines() or ["(empty)"])[-25:]:
            print("    " + l, file=sys.stderr)
        return None
    # a probe build of the shim (scripts/probe_build.sh) prints its host-time spans
    for l in err.splitlines():
        if l.startswith("gpuos probe:"):
            print(f"  {wl}/{mode} {l}", file=sys.stderr)
    if mode in SHIMS:
        rep = read_report(tmpdir, p.pid)
        if rep is None:
            print(f"{wl}/{mode}: the shim wrote no report (is it really preloaded?)",
                  file=sys.stderr)
        else:
            res["launches"] = rep.get("launches")
            res["diverted"] = diverted_from_report(rep)
            if res.get("tasks_per_iter") is not None:  # counted over the timed loop
                res["diverted_per_iter"] = res["tasks_per_iter"]
            elif res["diverted"] is not None and res.get("iters_total"):
                res["diverted_per_iter"] = res["diverted"] / res["iters_total"]
    return res


def read_line(p, timeout):
    """The child's next stdout line ('' at its end or after timeout seconds)."""
    import select
    if not select.select([p.stdout], [], [], timeout)[0]:
        return ""
    return p.stdout.readline()


def run_interleaved(wl, modes, args):
    """--interleave: --processes long-lived children per mode, each round one segment of
    every mode, in a shuffled order, each mode's K-th child in round K (mod the count), so
    that the host's drift and each process's own speed hit every mode alike. Returns
    {mode: result}, with us = the median segment and us_rounds = the segments; the rest of
    a result (counters, report) is the first child's."""
    kids, rows, nproc = {}, {}, args.processes
    tmp = tempfile.TemporaryDirectory(prefix="bench_torch.")
    for mode in modes:
        for j in range(nproc):
            d = os.path.join(tmp.name, f"{mode}.{j}")
            os.mkdir(d)
            err = open(os.path.join(d, "stderr"), "w+")
            print(f"  {wl}/{mode} (interleaved, process {j}) ...", file=sys.stderr, flush=True)
            p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve", wl,
                                  mode], env=child_env(mode, args, d), cwd=REPO,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                 text=True)
            kids[mode, j] = (p, err, d)
    segs = {m: [] for m in modes}
    alive = dict(kids)
    for key, (p, _, _) in kids.items():
        while True:
            line = read_line(p, args.timeout)
            if not line or line.strip() == "ready":
                break
        if not line:
            alive.pop(key)
    names, rng = list(modes), random.Random(0)
    for rnd in range(args.interleave if len(alive) == len(kids) else 0):
        # a fresh random order each round: no mode keeps a place or a predecessor (ABBA
        # kept the middle one of three from ever following itself, and it read 4 % slow;
        # a fixed rotation gave each mode one predecessor, and two arms of one build
        # read 1.8 % apart)
        for mode in rng.sample(names, len(names)):
            p = alive[mode, rnd % nproc][0]
            try:
                p.stdin.write("run\n")
                p.stdin.flush()
                segs[mode].append(json.loads(read_line(p, args.timeout))["us"])
            except (OSError, ValueError, KeyError):
                alive.pop((mode, rnd % nproc))
                break
        if len(alive) < len(kids):
            break  # a child died: the rounds would no longer pair
    for (mode, j), (p, err, d) in kids.items():
        try:
            out, _ = p.communicate("done\n", timeout=args.timeout)
        except (OSError, ValueError):  # it had died: its stdin is gone
            p.wait()
            out = ""
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            p.returncode = -1
        err.seek(0)
        res = collect(wl, mode, p, out, err.read(), d)
        err.close()
        if res is None or len(segs[mode]) != args.interleave:
            rows[mode] = None
            continue
        if j:  # the first child's result stands for the mode; the others only time
            continue
        res["us"] = statistics.median(segs[mode])
        res["us_rounds"] = segs[mode]
        rows[mode] = res
    tmp.cleanup()
    return rows


def paired_summary(wl, rows):
    """Per-round pairs of --interleave: ratio eager/mode and, where launches were diverted,
    (eager - mode) per diverted launch; medians and quartiles. Every row run_interleaved
    keeps has all N >= 2 segments."""
    eager = rows.get("eager")
    if not eager:
        return
    for mode, r in rows.items():
        if mode == "eager" or not r:
            continue
        ratios = [e / m for e, m in zip(eager["us_rounds"], r["us_rounds"])]
        diffs = [e - m for e, m in zip(eager["us_rounds"], r["us_rounds"])]
        qr, q = statistics.quantiles(ratios, n=4), statistics.quantiles(diffs, n=4)
        r["ratio"] = statistics.median(ratios)
        r["ratio_rounds"] = ratios
        r["saved_median"] = statistics.median(diffs)
        line = (f"  {mode} vs eager, {len(ratios)} interleaved pairs: ratio median "
                f"{r['ratio']:.3f}x (quartiles {qr[0]:.3f}x to {qr[2]:.3f}x); saved "
                f"{r['saved_median']:.2f} us per {UNIT[wl]} (quartiles {q[0]:.2f} to {q[2]:.2f})")
        dpi = r.get("diverted_per_iter")
        if dpi:
            line += (f"; per diverted launch {r['saved_median'] / dpi:.2f} us "
                     f"(quartiles {q[0] / dpi:.2f} to {q[2] / dpi:.2f})")
        print(line)
    shim, base = rows.get("shim"), rows.get("base")
    if shim and base:
        ab = [b / s for s, b in zip(shim["us_rounds"], base["us_rounds"])]
        q = statistics.quantiles(ab, n=4)
        print(f"  base / shim time, {len(ab)} pairs: median {statistics.median(ab):.3f} "
              f"(quartiles {q[0]:.3f} to {q[2]:.3f}); above 1: the shim is faster")


def fmt(v, f="{:.2f}", none="-"):
    return none if v is None else f.format(v)


def print_table(wl, rows):
    eager = rows.get("eager")
    print(f"\n{wl} (per {UNIT[wl]})")
    print(f"  {'mode':8} {'us/' + UNIT[wl]:>11} {'vs eager':>9} {'diverted/it':>12} "
          f"{'saved/div us':>13} {'tok/s':>9}  check")
    for mode in MODES:
        if mode not in rows:
            print(f"  {mode:8} {'n/a':>11}")
            continue
        r = rows[mode]
        if r is None:
            print(f"  {mode:8} {'FAILED':>11}")
            continue
        dpi = r.get("diverted_per_iter")
        saved = None
        if eager and dpi:  # (eager - shim) / diverted launches per iteration
            saved = r.get("saved_median", eager["us"] - r["us"]) / dpi
        tok = 1e6 / r["us"] if wl == "gpt2" else None
        same = "-" if not eager or mode == "eager" else "not run (no launches)" \
            if mode == "ceiling" else \
            ("identical" if r["check"] == eager["check"] else
             "differs (its own fused kernels)" if mode == "compile" else "DIFFERENT")
        print(f"  {mode:8} {r['us']:11.2f} {fmt(r.get('ratio'), '{:.2f}x'):>9} "
              f"{fmt(dpi):>12} {fmt(saved, '{:.3f}'):>13} {fmt(tok, '{:.0f}'):>9}  {same}")
    ceil, shim = rows.get("ceiling"), rows.get("shim")
    if eager and ceil and shim and eager["us"] > ceil["us"]:
        # of what free launches would save, how much the shim saves
        print(f"  shim saves {eager['us'] - shim['us']:.2f} of the {eager['us'] - ceil['us']:.2f}"
              f" us free launches would save ({100 * (eager['us'] - shim['us']) / (eager['us'] - ceil['us']):.0f} %);"
              f" it adds {shim['us'] - ceil['us']:.2f} us per {UNIT[wl]} over the ceiling")
    t = (rows.get("shim") or {}).get("timed_ew_red")
    if t and t[0]:
        print(f"  shim, timed runs: {t[1]} of {t[0]} elementwise and reduction launches "
              f"diverted ({100 * t[1] / t[0]:.1f} %)")
    for n, name, why in (rows.get("shim") or {}).get("timed_fell_through") or []:
        print(f"  shim, timed runs, fell through: {n:7d}  {name[:70]}  "
              + ", ".join(f"{w} {c}" for w, c in why.items()))
    e = (rows.get("shim") or {}).get("engine_per_iter")
    if e:
        print("  shim engine per " + UNIT[wl] + ": " +
              ", ".join(f"{k} {v:.3g}" for k, v in e.items()))
    for mode in ("eager", "shim"):
        r = rows.get(mode)
        if r and r.get("last_loss"):
            print(f"  {mode} last loss {r['last_loss']}  (check {r['check']})")
        elif r and wl == "gpt2":
            print(f"  {mode} tokens: {r['check']}")


def plot(path, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:
        print(f"no plot: matplotlib unavailable ({e})")
        return
    wls = list(results)
    modes = ["shim", "graph", "compile"]
    width = 0.8 / len(modes)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(wls)), 4))
    for i, mode in enumerate(modes):
        xs, ys = [], []
        for j, wl in enumerate(wls):
            r = results[wl].get(mode)
            if r and r.get("ratio"):
                xs.append(j + (i - (len(modes) - 1) / 2) * width)
                ys.append(r["ratio"])
        ax.bar(xs, ys, width, label=mode)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(wls)))
    ax.set_xticklabels(wls)
    ax.set_ylabel("speed vs eager (eager time / mode time)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shim", default=os.path.join(REPO, "build", "libgpuos_shim.so"),
                    help="the shim to preload (default: build/libgpuos_shim.so)")
    ap.add_argument("--base-shim", metavar="PATH",
                    help="a second shim, mode 'base' (say, the build before a change)")
    ap.add_argument("--base-env", metavar="K=V,...", default="",
                    help="environment for mode 'base' only (a setting to A/B: pass the same "
                         "shim as --base-shim)")
    ap.add_argument("--nolaunch", default=os.path.join(REPO, "build", "gpu", "libnolaunch.so"),
                    help="mode 'ceiling''s preload (default: build/gpu/libnolaunch.so)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated, from: " + ",".join(WORKLOADS))
    ap.add_argument("--modes", default=",".join(MODES),
                    help="comma-separated, from: " + ",".join(MODES))
    ap.add_argument("--repeat", type=int, default=5, help="timings per child; best kept")
    ap.add_argument("--rounds", type=int, default=2,
                    help="children per mode, run in turn (eager, shim, eager, shim...) so that "
                         "the host's drift hits both; best kept, and each round's ratio shown")
    ap.add_argument("--interleave", type=int, metavar="N",
                    help="eager and the shims in long-lived children that time N segments "
                         "each, in turn (shuffled); figures are medians of the segments and of "
                         "the per-round pairs. The other modes run as without it")
    ap.add_argument("--processes", type=int, default=1, metavar="K",
                    help="--interleave: K children per mode, taking the rounds in turn, so "
                         "that no one process's speed sets a mode's figure")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per child")
    ap.add_argument("--plot", metavar="FILE.png", help="bar chart of ratios vs eager")
    ap.add_argument("--json", metavar="FILE", help="write all results as JSON")
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.repeat < 1 or args.rounds < 1 or args.processes < 1 or \
            (args.interleave is not None and args.interleave < 2):
        ap.error("--repeat, --rounds and --processes must be at least 1, --interleave at "
                 "least 2")
    if args.child:
        return run_child(args.child[0], args.child[1], args.repeat)
    if args.serve:
        return run_serve(args.serve[0], args.serve[1])

    wls = [w for w in args.workloads.split(",") if w]
    modes = [m for m in args.modes.split(",") if m]
    bad = [w for w in wls if w not in WORKLOADS] + [m for m in modes if m not in MODES]
    if bad:
        ap.error("unknown workload/mode: " + ", ".join(bad))
    args.shim = os.path.abspath(args.shim)
    if "shim" in modes and not os.path.exists(args.shim):
        print(f"no shim at {args.shim}: build it (make) or pass --shim", file=sys.stderr)
        return 2
    if not args.base_shim:
        modes = [m for m in modes if m != "base"]
    elif not os.path.exists(args.base_shim):
        print(f"no shim at {args.base_shim} (--base-shim)", file=sys.stderr)
        return 2
    else:
        args.base_shim = os.path.abspath(args.base_shim)
    if "ceiling" in modes and not os.path.exists(args.nolaunch):
        print(f"no {args.nolaunch}: mode 'ceiling' left out (make gpu-deps builds it)",
              file=sys.stderr)
        modes = [m for m in modes if m != "ceiling"]
    try:
        import torch
    except ImportError:
        print("no torch: bench_torch needs PyTorch with CUDA")
        return 77
    if not torch.cuda.is_available():
        print("no GPU: bench_torch needs a CUDA device")
        return 77
    device = torch.cuda.get_device_name()
    print(f"device: {device}  (torch {torch.__version__}, CUDA {torch.version.cuda})")
    print(f"shim: {args.shim}" + (f"  base: {args.base_shim}" if args.base_shim else "") +
          (f" with {args.base_env}" if args.base_shim and args.base_env else "") +
          f"  repeat: {args.repeat}  rounds: {args.rounds}" +
          (f"  interleave: {args.interleave} x {args.processes} processes a mode"
           if args.interleave else "") +
          f"  cpus: {','.join(map(str, sorted(os.sched_getaffinity(0))))}", flush=True)

    results, failed, differ = {}, [], []
    for wl in wls:
        rows, per_round = {}, {}
        paired = [m for m in modes if m in ("eager",) + SHIMS and m in WORKLOADS[wl]] \
            if args.interleave else []
        if paired:
            for mode, r in run_interleaved(wl, paired, args).items():
                if r is None:
                    failed.append(f"{wl}/{mode}")
                else:
                    rows[mode] = r
        for rnd in range(args.rounds):
            for mode in modes:
                if mode not in WORKLOADS[wl] or f"{wl}/{mode}" in failed or mode in paired:
                    continue
                r = run_one(wl, mode, args)
                if r is None:
                    failed.append(f"{wl}/{mode}")
                    rows.pop(mode, None)
                    continue
                per_round.setdefault(mode, []).append(r["us"])
                if mode not in rows or r["us"] < rows[mode]["us"]:
                    rows[mode] = r
        for mode, r in rows.items():
            if mode not in paired:
                r["us_rounds"] = per_round.get(mode, [])
        eager = rows.get("eager")
        for mode, r in rows.items():
            if r and eager:
                r["ratio"] = eager["us"] / r["us"] if r["us"] > 0 else None
        if paired:
            paired_summary(wl, {m: r for m, r in rows.items() if m in paired})
        for m in SHIMS:
            if eager and rows.get(m) and rows[m]["check"] != eager["check"]:
                differ.append(f"{wl}/{m}")
        results[wl] = rows
        print_table(wl, rows)
        if args.rounds > 1 and eager and not paired:
            for mode, r in rows.items():
                pairs = [e / m for e, m in zip(per_round["eager"], per_round.get(mode, [])) if m]
                if mode != "eager" and pairs:
                    r["ratio_rounds"] = pairs
                    print(f"  {mode} vs eager, round by round: " +
                          " ".join(f"{x:.2f}x" for x in pairs) +
                          f"  (median {statistics.median(pairs):.2f}x)")
        sys.stdout.flush()

    parts = []
    for wl, rows in results.items():
        r = rows.get("shim")
        if r and r.get("ratio"):
            parts.append(f"{wl} {r['ratio']:.2f}x")
    print("\nsummary: shim vs eager: " + (", ".join(parts) or "-") +
          f"; {len(failed)} failed" + (f" ({', '.join(failed)})" if failed else "") +
          f"; {len(differ)} shim results differ" + (f" ({', '.join(differ)})" if differ else ""))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device, "shim": args.shim, "repeat": args.repeat,
                       "rounds": args.rounds,
                       "results": results, "failed": failed, "differ": differ}, f, indent=1)
        print(f"results written to {args.json}")
    if args.plot:
        plot(args.plot, results)
    return 1 if failed or differ else 0


if __name__ == "__main__":
    sys.exit(main())
