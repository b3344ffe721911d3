# SPDX-License-Identifier: MIT
"""What the single-op benchmarks (bench_ops.py, bench_tasks.py) share: their configurations,
NAME:SHIM=PATH;KEY=VALUE;... on the command line, each run in a child process whose
environment says it."""
import os
import sys


def need_gpu(prog):
    """torch with a GPU, or exit 77 (skipped) saying so."""
    try:
        import torch
        if not torch.cuda.is_available():
            raise ImportError
    except ImportError:
        print(f"{prog}: needs torch with a GPU", file=sys.stderr)
        sys.exit(77)
    return torch


def configs(args):
    """[("plain", "")] and each NAME:SPEC of args."""
    return [("plain", "")] + [tuple(c.split(":", 1)) for c in args]


def child_env(spec):
    """The environment of a child for SPEC: no GPUOS_ variable or LD_PRELOAD of ours; with
    SHIM=PATH the shim preloaded, no config file, the catalog on; then the KEY=VALUEs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPUOS_") and k != "LD_PRELOAD"}
    kv = dict(x.split("=", 1) for x in spec.split(";") if x)
    if "SHIM" in kv:
        env.update(LD_PRELOAD=os.path.abspath(kv.pop("SHIM")), GPUOS_CONFIG="/dev/null",
                   GPUOS_CATALOG="on")
    env.update(kv)
    return env


def run_rounds(prog, script, doc, timeout, on_child=None):
    """The parent's part: usage from @doc unless argv is ROUNDS CONFIG..., 77 without a GPU,
    then ROUNDS rounds of one child (`script child`, pinned to CPUs 2 and 3) a configuration;
    each child prints one JSON object last. Returns (cfgs, {name: [objects]}), having exited 1
    if a configuration had no child that succeeded. @on_child(round, name, proc) may print."""
    import json
    import subprocess
    if len(sys.argv) < 2 or not sys.argv[1].isdigit():
        print(doc.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    torch = need_gpu(prog)
    print(f"device: {torch.cuda.get_device_name()}")
    rounds = int(sys.argv[1])
    cfgs = configs(sys.argv[2:])
    res = {c: [] for c, _ in cfgs}
    for r in range(rounds):
        for name, spec in cfgs:
            p = subprocess.run(["taskset", "-c", "2,3", sys.executable, script, "child"],
                               env=child_env(spec), capture_output=True, text=True,
                               timeout=timeout)
            if on_child:
                on_child(r == rounds - 1, name, p)
            try:
                res[name].append(json.loads(p.stdout.strip().splitlines()[-1]))
            except Exception:
                print(name, "failed", p.stderr[-800:])
                continue
            got = res[name][-1]
            flat = all(isinstance(v, float) for v in got.values())
            print(f"round {r} {name}: " + (" ".join(f"{k}={v:.2f}" for k, v in got.items())
                                           if flat else "done"), flush=True)
    if not all(res.values()):
        print(f"{prog}: a configuration had no successful child")
        sys.exit(1)
    return cfgs, res
