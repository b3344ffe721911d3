#!/usr/bin/env bash
# PyTorch eager under the shim: a small MLP training step gives bit-identical losses and
# weights, and the report counts every runtime launch (checked against CUPTI's count, taken
# by torch.profiler in a separate run).
set -eu
. tests/gpu/lib.sh
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || exit 77
python3 tests/gpu/mlp.py >"$T/plain.out"
GPUOS_CONFIG=/dev/null "$G" run --report="$T/shim.json" -- python3 tests/gpu/mlp.py >"$T/shim.out" 2>"$T/shim.err"
cmp "$T/plain.out" "$T/shim.out" || { diff "$T/plain.out" "$T/shim.out"; fail "MLP differs under the shim"; }
grep -v "^gpuos: " "$T/shim.err" >/dev/null && { cat "$T/shim.err"; fail "shim.err not empty"; } || true
GPUOS_CONFIG=/dev/null "$G" run --report="$T/prof.json" -- python3 tests/gpu/mlp.py --profile "$T/prof.txt" >"$T/prof.out" 2>&1
cmp "$T/plain.out" "$T/prof.out" || fail "profiled run differs"
python3 - "$T/shim.json" "$T/prof.json" "$T/prof.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = json.load(open(sys.argv[2]))
cupti = dict(l.split()[:2] for l in open(sys.argv[3]) if not l.startswith("api"))
apis = [l.split()[1:] for l in open(sys.argv[3]) if l.startswith("api")]
print("runtime launches seen by CUPTI:", cupti["runtime_launches"], "| kernels run:", cupti["kernels"], "| APIs:", apis)
print("report:", p["launches"], "launches of", len(p["kernels"]), "kernels; unprofiled run:", r["launches"])
assert p["launches"] == int(cupti["runtime_launches"]), "report misses launches"
assert r["launches"] == p["launches"], "profiled and plain runs launch differently"
assert all(k["name"] != "<kernel not registered with the runtime>" for k in r["kernels"])
assert all("params" in k for k in r["kernels"]), [k["name"] for k in r["kernels"] if "params" not in k]
PY
echo "$DEVICE: MLP 20 steps bit-identical under the shim"
