#!/usr/bin/env bash
# PyTorch eager under the shim with the catalog off (every launch passes through): a small MLP
# training step gives bit-identical losses and weights, and the report counts every runtime
# launch (checked against CUPTI's count, taken by torch.profiler in a separate run).
set -eu
. tests/gpu/lib.sh
export GPUOS_CATALOG=off
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || exit 77
python3 tests/gpu/mlp.py >"$T/plain.out"
GPUOS_CONFIG=/dev/null "$G" run --report="$T/shim.json" -- python3 tests/gpu/mlp.py >"$T/shim.out" 2>"$T/shim.err"
cmp "$T/plain.out" "$T/shim.out" || { diff "$T/plain.out" "$T/shim.out"; fail "MLP differs under the shim"; }
grep -v "^gpuos: " "$T/shim.err" >/dev/null && { cat "$T/shim.err"; fail "shim.err not empty"; } || true
GPUOS_CONFIG=/dev/null "$G" run --report="$T/prof.json" -- python3 tests/gpu/mlp.py --profile "$T/prof.txt" >"$T/prof.out" 2>"$T/prof.err"
cmp "$T/plain.out" "$T/prof.out" || fail "profiled run differs"
python3 - "$T/shim.json" "$T/prof.json" "$T/prof.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
lines = open(sys.argv[3]).read().splitlines()
cupti = dict(l.split()[:2] for l in lines if l.split()[0] in ("runtime_launches", "kernels"))
ran = {}
for l in lines:
    if l.startswith("kernel "):
        _, n, name = l.split(" ", 2)
        ran[name.replace(" ", "")] = int(n)
print("CUPTI: runtime launch calls", cupti["runtime_launches"], "| kernels run", cupti["kernels"])
print("report:", p["launches"], "launches of", len(p["kernels"]), "kernels; unprofiled run:", r["launches"])
# Every kernel the report names ran exactly as often as the report counted it (CUPTI's kernel
# records, by name); what CUPTI saw beyond them is the work of libraries with their own
# runtime (cuBLAS), which these hooks do not see.
for k in p["kernels"]:
    n = ran.pop(k["name"].replace(" ", ""), None)
    assert n == k["launches"], (k["name"][:120], n, k["launches"])
print("per-kernel counts agree with CUPTI for all", len(p["kernels"]), "kernels; not seen by the hooks:")
for name, n in sorted(ran.items(), key=lambda x: -x[1]):
    print(f"  {n:5d}  {name[:110]}")
    assert not name.startswith("voidat::native::"), "a PyTorch kernel the hooks missed"
assert r["launches"] == p["launches"], "profiled and plain runs launch differently"
assert all("params" in k for k in r["kernels"]), [k["name"] for k in r["kernels"] if "params" not in k]
PY
echo "$DEVICE: MLP 20 steps bit-identical under the shim"
