#!/usr/bin/env bash
# The catalog (on by default) with two GPUs: ops on either device with either current, side
# streams, copies between the devices (tests/gpu/multigpu.py single); nn.DataParallel, whose
# replicas launch from threads of their own (dp); DistributedDataParallel over NCCL, two
# processes (ddp). Each gives the same bytes with and without the shim, and tasks ran in the
# workers of both devices, none falling through for want of an operator on its device.
# Skips (77) with fewer than two GPUs.
set -eu
. tests/gpu/lib.sh
n=$(python3 -c "import torch; print(torch.cuda.device_count())" 2>/dev/null) || exit 77
[ "$n" -ge 2 ] || { echo "$n GPU(s): skipped" >&2; exit 77; }
unset GPUOS_CATALOG
export GPUOS_CACHE_DIR="$T/cache" GPUOS_CONFIG=/dev/null NCCL_NVLS_ENABLE=0
for mode in single dp ddp; do
	timeout 300 python3 tests/gpu/multigpu.py $mode >"$T/plain.$mode" 2>"$T/plain.$mode.err" ||
		{ cat "$T/plain.$mode.err"; fail "$mode: plain run failed"; }
	# the first run builds the operators (its launches fall through until they are in)
	for run in 1 2; do
		timeout 300 "$G" run --log info --report="$T/r.$mode.$run.%p.json" -- \
			python3 tests/gpu/multigpu.py $mode >"$T/shim.$mode" 2>"$T/shim.$mode.err" ||
			{ cat "$T/shim.$mode.err"; fail "$mode: run $run under the shim failed"; }
		cmp "$T/plain.$mode" "$T/shim.$mode" ||
			{ diff "$T/plain.$mode" "$T/shim.$mode"; fail "$mode: differs under the shim (run $run)"; }
	done
	python3 - "$mode" "$T"/r.$mode.2.*.json <<'PY'
import json, sys
rs = [json.load(open(f)) for f in sys.argv[2:]]
d, n = sum(r["diverted"] for r in rs), sum(r["launches"] for r in rs)
ft = {}
for r in rs:
    for k, v in r["fell_through"].items():
        ft[k] = ft.get(k, 0) + v
print(f"{sys.argv[1]}: bit-identical; {d} of {n} launches diverted in {len(rs)} process(es); "
      f"fell through: {ft}")
assert d > 0, "nothing diverted"
# each device has its own operators: a task never goes to another device's stream
assert "other_device" not in ft, ft
PY
	grep -q "engine on device 1 " "$T/shim.$mode.err" ||
		{ cat "$T/shim.$mode.err"; fail "$mode: no engine on device 1"; }
done
echo "$DEVICE x$n: catalog ops on two GPUs (one process, DataParallel, DDP over NCCL) bit-identical"
