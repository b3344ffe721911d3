#!/usr/bin/env bash
# The catalog on the GPU without PyTorch: a program whose kernels carry PyTorch's names and
# layouts (tests/hooks/torch_like.cu) gives the same results with the catalog on, for sizes
# around the worker's unrolling and the size limit, and its launches after the first
# iteration (a pause lets the operators build) ran in the worker, its device-to-device copies
# too.
set -eu
. tests/gpu/lib.sh
need_python
export GPUOS_CONFIG=/dev/null GPUOS_CACHE_DIR="$T/cache"
for n in 1 1000 1024 1937 4096 16384 16385; do
	"$HOOKS/torch_like" 50 $n >"$T/plain.out"
	GPUOS_CATALOG=on "$G" run --report="$T/r.json" -- "$HOOKS/torch_like" 50 $n 2000 \
		>"$T/shim.out" 2>"$T/shim.err"
	cmp "$T/plain.out" "$T/shim.out" ||
		{ cat "$T/shim.err"; diff "$T/plain.out" "$T/shim.out"; fail "n=$n: results differ"; }
	python3 - "$T/r.json" $n <<'PY'
import json, sys
r, n = json.load(open(sys.argv[1])), int(sys.argv[2])
# 1 fill + 150 launches; the first iteration's 3 (and the fill) go through while building;
# and 100 copies, the first two going through while the copy operator builds (at most
# max_copy_bytes, 64 KiB: 16384 floats)
want = 0 if n > 16384 else 147 + 98
assert r["diverted"] == want, (n, r["diverted"], r["fell_through"])
cp = [k for k in r["kernels"] if k["name"] == "cudaMemcpyAsync (device to device)"][0]
assert cp["diverted"] == (0 if n > 16384 else 98), cp
print(f"n={n}: {r['diverted']} of {r['launches']} launches diverted, results identical")
PY
done
echo "$DEVICE: catalog kernels (PyTorch names, no PyTorch) identical with the catalog on"
