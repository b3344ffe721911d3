#!/usr/bin/env bash
# The catalog on a real workload, as a user gets it (the default config, no GPUOS_CATALOG): the
# MLP training step of test_torch_mlp.sh gives the same losses and weights bit for bit; the report says how many of its
# elementwise launches ran in the worker; and CUPTI's kernel records (torch.profiler, in a
# separate run) show each kernel ran exactly as often as the report says it fell through:
# the diverted launches never reached the GPU as kernels of their own.
set -eu
. tests/gpu/lib.sh
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || exit 77
unset GPUOS_CATALOG
export GPUOS_CACHE_DIR="$T/cache" GPUOS_CONFIG=/dev/null
python3 tests/gpu/mlp.py --warm >"$T/plain.out"
"$G" run --report="$T/shim.json" -- python3 tests/gpu/mlp.py --warm >"$T/shim.out" 2>"$T/shim.err" ||
	{ cat "$T/shim.err"; fail "mlp.py failed under the shim"; }
cmp "$T/plain.out" "$T/shim.out" || { diff "$T/plain.out" "$T/shim.out"; fail "MLP differs with the catalog on"; }
# the warm-up run starts the engine (and its CUPTI subscription) before the profiler's
"$G" run --report="$T/prof.json" -- python3 tests/gpu/mlp.py --warm \
	--report-before "$T/before.json" --profile "$T/prof.txt" \
	>"$T/prof.out" 2>"$T/prof.err" || { cat "$T/prof.err"; fail "profiled run failed"; }
cmp "$T/plain.out" "$T/prof.out" || fail "profiled run differs"
python3 - "$T/shim.json" "$T/prof.json" "$T/prof.txt" "$T/before.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
lines = open(sys.argv[3]).read().splitlines()
# the profiled run alone: the report at exit minus the one written just before it
before = {k["name"]: k for k in json.load(open(sys.argv[4]))["kernels"]}
for k in p["kernels"]:
    b = before.get(k["name"], {"launches": 0, "diverted": 0})
    k["launches"] -= b["launches"]
    k["diverted"] -= b["diverted"]
    for w in k["fell_through"]:
        k["fell_through"][w] -= b.get("fell_through", {}).get(w, 0)
p["diverted"] = sum(k["diverted"] for k in p["kernels"])
ran = {}
for l in lines:
    if l.startswith("kernel "):
        _, n, name = l.split(" ", 2)
        ran[name.replace(" ", "")] = int(n)
ew = [k for k in r["kernels"] if "elementwise_kernel" in k["name"] or "reduce_kernel" in k["name"]]
n, d = sum(k["launches"] for k in ew), sum(k["diverted"] for k in ew)
print(f"whole process (warm-up included): elementwise and reduction launches {n}, diverted {d} "
      f"({100 * d / max(n, 1):.1f} %); all launches {r['launches']}, diverted {r['diverted']}")
pew = [k for k in p["kernels"] if "elementwise_kernel" in k["name"] or "reduce_kernel" in k["name"]]
pn, pd = sum(k["launches"] for k in pew), sum(k["diverted"] for k in pew)
print(f"measured run (20 steps, operators built): elementwise and reduction launches {pn}, "
      f"diverted {pd} ({100 * pd / max(pn, 1):.1f} %)")
for k in sorted(pew, key=lambda k: k["diverted"] - k["launches"])[:12]:
    ft = {w: c for w, c in k["fell_through"].items() if c}
    print(f"  {k['launches']:5d} {k['diverted']:5d} {ft} {k['short'][:80]}")
assert p["diverted"] > 0, "the profiled run diverted nothing (CUPTI taken by the profiler?)"
assert ran, "torch.profiler recorded no kernels (its CUPTI subscription failed?)"
# CUPTI's kernel records: each kernel ran as often as it fell through (the profiled run's
# diverted launches ran inside the worker, which CUPTI sees as gpuos_worker)
bad = []
# the shim's row of device-to-device copies is CUPTI's memcpy records of that kind
cupti_name = {"cudaMemcpyAsync (device to device)": "Memcpy DtoD (Device -> Device)"}
for k in p["kernels"]:
    got = ran.pop(cupti_name.get(k["name"], k["name"]).replace(" ", ""), 0)
    want = k["launches"] - k["diverted"]
    if got != want:
        bad.append(f"  CUPTI saw {got}, report says {want} fell through: {k['name'][:150]}")
workers = sum(v for name, v in ran.items() if "gpuos_worker" in name)
# (libraries launching through the driver, cuBLAS, are not in the report: PyTorch's own are)
others = {n: v for n, v in ran.items() if "at::native" in n}
for n, v in others.items():
    bad.append(f"  CUPTI saw {v} of a kernel the report does not list: {n[:150]}")
print("\n".join(bad))
assert not bad, f"{len(bad)} kernels disagree"
print(f"CUPTI agrees for all {len(p['kernels'])} kernels: {p['diverted']} diverted launches "
      f"ran as none of their own; {workers} worker kernel runs")
PY

# Device-to-device copies (clone): CUPTI's memcpy records show that the diverted ones never
# reached the GPU as copies, and the clones hold their sources' bytes.
"$G" run --report="$T/copies.json" -- python3 - "$T/copies.txt" >"$T/copies.out" 2>&1 <<'PY' ||
import ctypes, sys
import torch
from torch.profiler import ProfilerActivity, profile
x = torch.randn(1000, device="cuda")
big = torch.randn(32768, device="cuda")  # 128 KiB: over max_copy_bytes, a copy of its own
def work():
    outs = []
    for k in range(50):
        y = (x[k % 3:] if k % 2 else x).clone()  # 16-byte aligned, or 4-byte
        y.mul_(2.0)
        outs.append(y)
    return outs
work()
torch.cuda.synchronize()
ctypes.CDLL(None).gpuos_op_wait_all()
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    outs = work()
    big2 = big.clone()
    torch.cuda.synchronize()
assert torch.equal(big2, big)
for k, y in enumerate(outs):
    src = (x[k % 3:] if k % 2 else x) * 2.0
    assert torch.equal(y.view(torch.int32), src.view(torch.int32)), k
dtod = sum(1 for e in prof.events() if e.name.startswith("Memcpy DtoD"))
worker = sum(1 for e in prof.events() if "gpuos_worker" in e.name)
open(sys.argv[1], "w").write(f"{dtod} {worker}\n")
PY
	{ cat "$T/copies.out"; fail "copies run failed"; }
read -r dtod worker <"$T/copies.txt"
# the one over the limit: CUPTI does see copies of that kind
[ "$dtod" -eq 1 ] || { cat "$T/copies.out"; fail "CUPTI saw $dtod device-to-device copies, not 1"; }
python3 -c "
import json, sys
k = [k for k in json.load(open(sys.argv[1]))['kernels'] if k['name'].startswith('cudaMemcpyAsync')]
assert k and k[0]['diverted'] >= 50, k
print(f'copies: {k[0][\"diverted\"]} of {k[0][\"launches\"]} diverted; CUPTI saw none of the measured 50, and the one too large')
" "$T/copies.json"
echo "$DEVICE: MLP bit-identical with the catalog on; diverted copies never reached the GPU"
