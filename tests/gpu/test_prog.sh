#!/usr/bin/env bash
# An unmodified nvcc -cudart shared program on the GPU: bitwise-identical output with and
# without the shim, the report counts every launch, and the registry's parameter layouts agree
# with the runtime's own (cudaFuncGetParamInfo).
set -eu
. tests/gpu/lib.sh
need_python
for prog in prog prog_ptsz; do
	"$HOOKS/$prog" 50 >"$T/plain.out"
	GPUOS_CONFIG=/dev/null "$G" run --report="$T/$prog.json" -- "$HOOKS/$prog" 50 >"$T/shim.out" 2>"$T/shim.err"
	cmp "$T/plain.out" "$T/shim.out" || { diff "$T/plain.out" "$T/shim.out"; fail "$prog output differs"; }
	[ ! -s "$T/shim.err" ] || { cat "$T/shim.err"; fail "$prog: shim printed"; }
	grep -qE "bad launch: get [1-9][0-9]*$" "$T/shim.out" || fail "$prog: no error from the bad launch"
	python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['launches']==153, r['launches']" "$T/$prog.json"
done
echo "$DEVICE: prog output identical; $(grep checksum "$T/shim.out")"

"$HOOKS/prog" paraminfo >"$T/paraminfo.txt"
python3 - "$T/prog.json" "$T/paraminfo.txt" <<'PY'
import json, sys
r = {k["mangled"]: k for k in json.load(open(sys.argv[1]))["kernels"]}
rt = {}
for line in open(sys.argv[2]):
    _, name, i, off, size = line.split()
    rt.setdefault(name, []).append([int(off), int(size)])
assert len(rt) == 4, rt
for name, params in rt.items():
    assert r[name]["params"] == params, (name, r[name]["params"], params)
print("registry layouts = cudaFuncGetParamInfo for", len(rt), "kernels")
PY
