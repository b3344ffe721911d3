#!/usr/bin/env bash
# The catalog on PyTorch: every op x dtype x layout (contiguous, misaligned, strided,
# broadcast, 0-dim operand, in place, empty, one element, at and above the size limit) gives
# the same bytes with and without the shim; the cases the catalog covers ran as worker tasks,
# and those over the limit did not. A CUDA graph captured under the shim replays the same.
set -eu
. tests/gpu/lib.sh
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || exit 77
export GPUOS_CACHE_DIR="$T/cache" GPUOS_CATALOG=on
python3 tests/gpu/torch_ops.py "$T/plain.pt" >/dev/null
GPUOS_CONFIG=/dev/null "$G" run --report="$T/report.json" -- \
	python3 tests/gpu/torch_ops.py "$T/shim.pt" >"$T/shim.out" 2>"$T/shim.err" ||
	{ cat "$T/shim.err"; fail "torch_ops.py failed under the shim"; }
grep -v "^gpuos: " "$T/shim.err" >/dev/null && { cat "$T/shim.err"; fail "shim.err not empty"; } || true
python3 - "$T/plain.pt" "$T/shim.pt" "$T/report.json" <<'PY'
import json, sys
import torch
p = torch.load(sys.argv[1])
s = torch.load(sys.argv[2])
bad, missed, extra = [], [], []
for name, a in p["results"].items():
    b = s["results"][name]
    ab = a.contiguous().view(-1).view(torch.uint8)
    bb = b.contiguous().view(-1).view(torch.uint8)
    if a.dtype != b.dtype or a.shape != b.shape or not torch.equal(ab, bb):
        # the first byte that differs (a -0.0 against a 0.0 compares equal as a value)
        d = (ab != bb).nonzero() if a.shape == b.shape and a.dtype == b.dtype else []
        i = int(d[0]) // a.element_size() if len(d) else 0
        bad.append(f"{name}: differs at {i}: {a.view(-1)[i].item()!r} vs {b.view(-1)[i].item()!r}"
                   if a.numel() else f"{name}: {a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}")
    want, got = s["expect"][name], s["diverted"][name]
    if want is True and got == 0:
        missed.append(name)
    if want is False and got != 0:
        extra.append(f"{name} ({got})")
n = len(p["results"])
div = sum(1 for v in s["diverted"].values() if v)
r = json.load(open(sys.argv[3]))
print(f"{n} cases; {n - len(bad)} bit-identical; {div} ran in the worker; "
      f"report: {r.get('diverted')} of {r.get('launches')} launches diverted")
print("fell through, by kernel:", r.get("fell_through"))
for k in sorted(r["kernels"], key=lambda k: -k["launches"]):
    ft = {w: c for w, c in k["fell_through"].items() if c}
    if ft:
        print(f"  {k['launches']:6d} {k['diverted']:6d} {ft} {k['short'][:90]}")
for what, l in (("DIFFERENT", bad), ("should have diverted", missed), ("should not have", extra)):
    for x in l:
        print(f"  {what}: {x}")
sys.exit(1 if bad or missed or extra else 0)
PY
echo "$DEVICE: catalog ops bit-identical under the shim"

# an index past the end asserts in the worker as in PyTorch's kernel, and nothing hangs
for mode in plain shim; do
	if [ $mode = plain ]; then
		run=(timeout 120 python3 tests/gpu/isel_assert.py)
	else
		run=(timeout 120 env GPUOS_CONFIG=/dev/null "$G" run -- python3 tests/gpu/isel_assert.py)
	fi
	rc=0
	"${run[@]}" >"$T/assert.$mode.out" 2>"$T/assert.$mode.err" || rc=$?
	cat "$T/assert.$mode.out"
	[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$T/assert.$mode.err"; fail "$mode: exit $rc"; }
	grep -q "device-side assert triggered" "$T/assert.$mode.err" ||
		{ cat "$T/assert.$mode.err"; fail "$mode: no device-side assert"; }
done
grep -q "tasks: good 1, bad 1" "$T/assert.shim.out" || fail "the lookups did not run in the worker"
echo "$DEVICE: an index out of range asserts under the shim as without it"
