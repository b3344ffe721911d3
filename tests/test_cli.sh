#!/usr/bin/env bash
# The gpuos front end without a GPU: inspect, config-check, run's errors.
set -eu
. tests/lib.sh
need_python
G=$PWD/$BUILD/gpuos

# inspect: kernels, parameter layout, resources, archs and the verdict under the config.
GPUOS_CONFIG=/dev/null "$G" inspect "$HOOKS/prog" >"$T/inspect.txt"
grep -q '^axpb(float\*, float const\*, affine, int)$' "$T/inspect.txt" || { cat "$T/inspect.txt"; fail "inspect: axpb"; }
grep -q 'params 0:8 8:8 16:24 40:4  regs [0-9]*  smem 0  sm_90  sass 90  ptx 90' "$T/inspect.txt" ||
	{ cat "$T/inspect.txt"; fail "inspect: axpb layout"; }
grep -q '^# 4 kernels in [0-9]* fatbins' "$T/inspect.txt" || fail "inspect: count"
printf 'deny = block_sum*\n' >"$T/deny.conf"
"$G" inspect --json --config "$T/deny.conf" "$HOOKS/prog" >"$T/inspect.json"
python3 - "$T/inspect.json" <<'PY'
import json, sys
ks = {k["mangled"]: k for k in json.load(open(sys.argv[1]))}
assert len(ks) == 4, ks.keys()
assert ks["_Z9block_sumPfPKfi"]["action"] == "fall through (denied by config)"
assert ks["_Z9block_sumPfPKfi"]["static_smem"] == 1024
assert ks["_Z4axpbPfPKf6affinei"]["action"] == "fall through (no catalog match)"
assert ks["_Z5scaleIdEvPT_S0_l"]["params"] == [[0, 8], [8, 8], [16, 8]]
PY
# a file with no fatbin: clean message, exit 1
if "$G" inspect /bin/sh >"$T/sh.out" 2>"$T/sh.err"; then fail "inspect /bin/sh succeeded"; fi
grep -q "no CUDA fatbinary" "$T/sh.err" || fail "inspect /bin/sh message"

# config-check: ok / exit 2 with FILE:LINE
printf 'log = info\nallow = *elementwise*\n' >"$T/ok.conf"
"$G" config-check "$T/ok.conf" | grep -q ": ok$" || fail "config-check ok"
printf 'log = info\nfrobnicate = 1\n' >"$T/bad.conf"
set +e
"$G" config-check "$T/bad.conf" 2>"$T/cc.err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "config-check exit $rc"
grep -q "^gpuos: $T/bad.conf:2: " "$T/cc.err" || { cat "$T/cc.err"; fail "config-check message"; }

# run: a missing command is 127, like a shell
set +e
"$G" run -- /nonexistent/cmd 2>/dev/null
rc=$?
set -e
[ $rc -eq 127 ] || fail "run missing command: exit $rc"
# inspect says what ptx_lift makes of each kernel of a default nvcc build (compute_75 PTX, ZSTD)
L=${GPUOS_FIXTURES:-build/fixtures}/lift/corpus_default
if [ -e "$L" ]; then
	"$G" inspect "$L" >"$T/lift.txt"
	grep -A3 '^ok_block_reduce$' "$T/lift.txt" | grep -q 'lift: ok (barriers' || fail "inspect: ok_block_reduce"
	grep -A3 '^hz_texture$' "$T/lift.txt" | grep -q 'lift: texture (tex at line' || fail "inspect: hz_texture"
	grep -A3 '^hz_grid_sync$' "$T/lift.txt" | grep -q 'lift: grid_sync' || fail "inspect: hz_grid_sync"
	"$G" inspect --json "$L" | python3 -c 'import json,sys; k={x["name"]: x["lift"] for x in json.load(sys.stdin)}; assert k["ok_axpb"] == "ok", k; assert k["hz_big_params"].startswith("params_too_large"), k'
fi
echo "cli: ok"
