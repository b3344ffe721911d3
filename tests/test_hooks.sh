#!/usr/bin/env bash
# The hooks on nvcc-built programs, over the CPU test double of libcudart: the program sees
# exactly what it sees without the shim (output, error codes, the launches the runtime gets),
# and the report counts every launch, with the cubin layout of each kernel.
set -eu
. tests/lib.sh
need_python

run() { # run NAME [env...] -- cmd...: stdout to $T/NAME.out, stderr .err, runtime log .log
	local name=$1
	shift
	env FAKE_CUDART_LOG="$T/$name.log" LD_LIBRARY_PATH="$FAKE" "$@" >"$T/$name.out" 2>"$T/$name.err"
}

for prog in prog prog_ptsz; do
	run plain_$prog "$HOOKS/$prog" 10
	run shim_$prog LD_PRELOAD="$PRELOAD" GPUOS_CONFIG=/dev/null GPUOS_LIFT=on \
		GPUOS_REPORT="$T/$prog.json" "$HOOKS/$prog" 10
	cmp "$T/plain_$prog.out" "$T/shim_$prog.out" || fail "$prog: output differs under the shim"
	cmp "$T/plain_$prog.log" "$T/shim_$prog.log" || fail "$prog: runtime saw other launches"
	[ ! -s "$T/shim_$prog.err" ] || { cat "$T/shim_$prog.err"; fail "$prog: shim printed"; }
	grep -q "bad launch: get 9" "$T/shim_$prog.out" || fail "$prog: error code lost"
	grep -q "after: get 0" "$T/shim_$prog.out" || fail "$prog: error state not cleared"
done
grep -q "^__cudaLaunchKernel_ptsz " "$T/shim_prog_ptsz.log" || fail "ptsz build did not use _ptsz"

python3 - "$T/prog.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
k = {x["mangled"]: x for x in r["kernels"]}
def want(c, m):
    assert c, m
want(r["launches"] == 33 and r["diverted"] == 0, f"totals {r['launches']} {r['diverted']}")
# no GPU driver here: each kernel's first launch goes through while it is lifted, then
# the lifted ones find no engine; block_sum's early exit before a barrier is named
want(r["fell_through"] == {"building": 4, "no_engine": 20, "not_liftable": 9}, r["fell_through"])
ax = k["_Z4axpbPfPKf6affinei"]
want(ax["launches"] == 12, ax)  # 10 <<<>>>, 1 cudaLaunchKernel, 1 bad launch
want(ax["params"] == [[0, 8], [8, 8], [16, 24], [40, 4]] and ax["param_bytes"] == 44, ax)
want(ax["cubin_sm"] == 90 and 90 in ax["sass_archs"] and 90 in ax["ptx_archs"], ax)
want(ax["name"].startswith("axpb(float*, float const*, affine, int)"), ax["name"])
bs = k["_Z9block_sumPfPKfi"]
want(bs["launches"] == 10 and bs["static_smem"] == 1024, bs)
want(bs["lift"] == "exit_before_barrier" and ax["lift"] == "ok", (bs, ax))
want(k["_Z5scaleIfEvPT_S0_l"]["launches"] == 10, "scale<float>")
sd = k["_Z5scaleIdEvPT_S0_l"]
want(sd["launches"] == 1 and sd["params"] == [[0, 8], [8, 8], [16, 8]], sd)
want(all(x["module"].endswith("/prog") for x in r["kernels"]), "module path")
PY

# The catalog on kernels with PyTorch's names and layouts: matched by name (each first launch
# goes through while its operator would build), then no engine here (no GPU driver); with
# the catalog off, no catalog match. The program sees the same either way.
run plain_tl "$HOOKS/torch_like" 3
for c in on off; do
	run tl_$c LD_PRELOAD="$PRELOAD" GPUOS_CONFIG=/dev/null GPUOS_CATALOG=$c \
		GPUOS_REPORT="$T/tl_$c.json" "$HOOKS/torch_like" 3
	cmp "$T/plain_tl.out" "$T/tl_$c.out" || fail "torch_like: output differs (catalog $c)"
	cmp "$T/plain_tl.log" "$T/tl_$c.log" || fail "torch_like: runtime saw other launches"
done
python3 - "$T/tl_on.json" "$T/tl_off.json" <<'PY'
import json, sys
on, off = (json.load(open(p)) for p in sys.argv[1:3])
got = {f: k["fell_through"] for k in on["kernels"]
       for f in ("CUDAFunctor_add", "MulFunctor", "FillFunctor") if f in k["name"]}
assert got == {"CUDAFunctor_add": {"building": 1, "no_engine": 5},
               "MulFunctor": {"building": 1, "no_engine": 2},
               "FillFunctor": {"building": 1}}, got
# its device-to-device copies: one row; the first goes through while the operator would
# build, then no engine (no GPU driver here)
cp = [k for k in on["kernels"] if k["name"] == "cudaMemcpyAsync (device to device)"]
assert cp and cp[0]["fell_through"] == {"building": 1, "no_engine": 5}, cp
assert on["fell_through"] == {"building": 4, "no_engine": 12}, on["fell_through"]
assert off["fell_through"] == {"no_catalog": 16}, off["fell_through"]
PY
GPUOS_CATALOG=on "$PWD/$BUILD/gpuos" inspect "$HOOKS/torch_like" >"$T/tl_inspect" 2>&1 || fail "inspect torch_like"
for op in add mul fill; do
	grep -q "divert (catalog: $op.float32.contig)" "$T/tl_inspect" || { cat "$T/tl_inspect"; fail "inspect: $op"; }
done

# The allowlist config: deny wins; the report says why.
printf 'deny = *block_sum*\n' >"$T/deny.conf"
run deny LD_PRELOAD="$PRELOAD" GPUOS_CONFIG="$T/deny.conf" GPUOS_LIFT=on GPUOS_REPORT="$T/deny.json" \
	"$HOOKS/prog" 3
python3 - "$T/deny.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
k = {x["mangled"]: x for x in r["kernels"]}
assert k["_Z9block_sumPfPKfi"]["fell_through"] == {"denied": 3}, k["_Z9block_sumPfPKfi"]
assert k["_Z4axpbPfPKf6affinei"]["fell_through"] == {"building": 1, "no_engine": 4}
PY

# lift = off (the default): nothing is lifted, nothing starts an engine.
run nolift LD_PRELOAD="$PRELOAD" GPUOS_CONFIG=/dev/null GPUOS_REPORT="$T/nolift.json" \
	"$HOOKS/prog" 10
cmp "$T/plain_prog.out" "$T/nolift.out" || fail "lift=off changed the output"
[ ! -s "$T/nolift.err" ] || { cat "$T/nolift.err"; fail "lift=off: shim printed"; }
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['fell_through']=={'no_catalog': 33}, r['fell_through']" "$T/nolift.json"

# A bad config: one line on stderr naming file and line, then pure pass-through.
printf 'enable = yes\nmax_blocks = lots\n' >"$T/bad.conf"
run bad LD_PRELOAD="$PRELOAD" GPUOS_CONFIG="$T/bad.conf" GPUOS_REPORT="$T/bad.json" \
	"$HOOKS/prog" 10
cmp "$T/plain_prog.out" "$T/bad.out" || fail "bad config changed the program's output"
[ "$(wc -l <"$T/bad.err")" -eq 1 ] || { cat "$T/bad.err"; fail "bad config: not one line"; }
grep -q "^gpuos: $T/bad.conf:2: " "$T/bad.err" || { cat "$T/bad.err"; fail "no FILE:LINE"; }
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['fell_through']=={'disabled': 33}, r['fell_through']" "$T/bad.json"

# An unreadable config named by GPUOS_CONFIG: the same.
run missing LD_PRELOAD="$PRELOAD" GPUOS_CONFIG="$T/nonexistent.conf" "$HOOKS/prog" 10
cmp "$T/plain_prog.out" "$T/missing.out" || fail "missing config changed the output"
grep -q "^gpuos: .*nonexistent.conf" "$T/missing.err" || fail "missing config not named"

# The table on stderr.
run table LD_PRELOAD="$PRELOAD" GPUOS_CONFIG=/dev/null GPUOS_LIFT=on GPUOS_REPORT=1 "$HOOKS/prog" 10
grep -q "^gpuos report (pid [0-9]*): 4 kernels launched, 33 launches, 0 diverted" "$T/table.err" ||
	{ cat "$T/table.err"; fail "table header"; }
grep -qE '^ +12 +0 +12  no engine +axpb$' "$T/table.err" || { cat "$T/table.err"; fail "table row"; }

# The PyTorch pattern: kernels in a library dlopen()ed in a local scope.
run local LD_PRELOAD="$PRELOAD" GPUOS_CONFIG=/dev/null GPUOS_REPORT="$T/local.json" \
	LD_LIBRARY_PATH="$FAKE:$HOOKS" "$HOOKS/dlopen_main" "$HOOKS/libuser.so"
grep -q "user_run 0" "$T/local.out" || { cat "$T/local.out" "$T/local.err"; fail "dlopen run"; }
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['launches']==5, r" "$T/local.json"

# gpuos_report(): the report as it stands, mid-run, where the caller says.
LD_PRELOAD="$PRELOAD" GPUOS_CONFIG=/dev/null LD_LIBRARY_PATH="$FAKE:$HOOKS" python3 - \
	"$HOOKS/libuser.so" "$T/mid.json" <<'PY' || fail "gpuos_report"
import ctypes, json, sys
lib = ctypes.CDLL(sys.argv[1])  # its kernels register with the fake runtime
shim = ctypes.CDLL(None)
assert shim.gpuos_report(sys.argv[2].encode()) == 0
r = json.load(open(sys.argv[2]))
assert r["launches"] == 0, r
lib.user_run.restype = ctypes.c_int
assert lib.user_run(5) == 0
assert shim.gpuos_report(sys.argv[2].encode()) == 0
assert json.load(open(sys.argv[2]))["launches"] == 5
assert shim.gpuos_report(b"/nonexistent/dir/r.json") < 0
assert shim.gpuos_op_wait_all() == 0  # none defined
PY

# gpuos run: same thing through the front end, report path with %p. (Not with a sanitized
# shim: its runtime must come first in LD_PRELOAD, and gpuos run puts the shim first.)
[ "$PRELOAD" = "$SHIM" ] || { echo "hooks: ok (front end skipped under a sanitizer)"; exit 0; }
run front GPUOS_CONFIG=/dev/null "$PWD/$BUILD/gpuos" run --report="$T/front-%p.json" -- \
	"$HOOKS/prog" 10
cmp "$T/plain_prog.out" "$T/front.out" || fail "gpuos run changed the output"
ls "$T"/front-[0-9]*.json >/dev/null || fail "gpuos run: no report with the pid in its name"
echo "hooks: ok"
