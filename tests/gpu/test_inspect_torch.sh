#!/usr/bin/env bash
# gpuos inspect on libtorch_cuda.so: lists its kernels, and the parameter layouts agree with
# the argument bytes recorded from real launches (tests/data/torch211_decoded_records.json).
set -eu
. tests/gpu/lib.sh
lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib', 'libtorch_cuda.so'))" 2>/dev/null) || exit 77
[ -f "$lib" ] || exit 77
start=$(date +%s.%N)
"$G" inspect --json --arch 90 "$lib" >"$T/torch.json"
end=$(date +%s.%N)
"$G" inspect --arch 90 "$lib" | tail -1 >"$T/count.txt"
# the fatbins an independent walk of .nv_fatbin finds with an sm_90 cubin: inspect read them all
python3 tests/gpu/fatbin_census.py "$lib" 90 | tee "$T/census.txt"
want=$(grep -o '[0-9]* with an sm_90 cubin' "$T/census.txt" | head -1 | cut -d' ' -f1)
grep -q "kernels in $want fatbins" "$T/count.txt" || { cat "$T/count.txt"; fail "inspect read other fatbins than the census"; }
python3 - "$T/torch.json" tests/data/torch211_decoded_records.json "$lib" "$start" "$end" <<'PY'
import json, sys
ks = json.load(open(sys.argv[1]))
by = {k["mangled"]: k for k in ks}
rec = json.load(open(sys.argv[2]))
checked = 0
for r in rec:
    m = r[1]
    params = [[int(x.split(":")[0]), int(x.split(":")[1].split("=")[0])] for x in r[4].split()[1:]]
    assert m in by, "not listed: " + m[:100]
    assert by[m]["params"] == params, (m[:100], by[m]["params"], params)
    checked += 1
print(f"inspect {sys.argv[3]}: {len(ks)} kernels ({len(by)} distinct) in "
      f"{float(sys.argv[5]) - float(sys.argv[4]):.1f} s; layouts agree with {checked} recorded launches")
assert len(by) > 10000
PY
