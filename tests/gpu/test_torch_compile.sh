#!/usr/bin/env bash
# Catalog ops (diverted) feeding and reading a CUDA graph replay and torch.compile
# (mode="reduce-overhead") on one stream: the same bytes with and without the shim, and the
# eager ops did run in the worker.
set -eu
. tests/gpu/lib.sh
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || exit 77
export GPUOS_CACHE_DIR="$T/cache" GPUOS_CATALOG=on GPUOS_CONFIG=/dev/null
export TORCHINDUCTOR_CACHE_DIR="$T/inductor"
timeout 600 python3 tests/gpu/torch_compile.py "$T/plain.pt" >/dev/null
timeout 600 "$G" run --report="$T/r.json" -- python3 tests/gpu/torch_compile.py "$T/shim.pt" \
	>"$T/shim.out" 2>"$T/shim.err" || { cat "$T/shim.err"; fail "torch_compile.py under the shim"; }
python3 - "$T/plain.pt" "$T/shim.pt" "$T/r.json" <<'PY'
import json, sys
import torch
p, s = torch.load(sys.argv[1]), torch.load(sys.argv[2])
bad = [k for k in p if not torch.equal(p[k].view(torch.uint8), s[k].view(torch.uint8))]
r = json.load(open(sys.argv[3]))
print(f"{len(p)} results, {len(p) - len(bad)} bit-identical; report: {r['diverted']} of "
      f"{r['launches']} launches diverted")
assert not bad, f"differ: {bad}"
assert r["diverted"] > 0, "nothing diverted"
PY
echo "$DEVICE: catalog ops around a CUDA graph and torch.compile, bit-identical"
