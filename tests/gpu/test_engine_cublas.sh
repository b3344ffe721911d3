#!/usr/bin/env bash
# cuBLAS GEMMs (driver-API launches of another runtime) read diverted tasks' output in order;
# torch.profiler (its CUPTI subscription first) and the engine share CUPTI: both work.
set -eu
. tests/gpu/lib.sh
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || exit 77
export GPUOS_SHIM=$SHIM GPUOS_CONFIG=/dev/null
LD_PRELOAD=$GPUOS_SHIM timeout 300 python3 tests/gpu/engine_cublas.py || fail "GEMMs read stale task output"
LD_PRELOAD=$GPUOS_SHIM timeout 300 python3 tests/gpu/engine_cublas.py profiler 2>"$T/err" ||
	{ cat "$T/err"; fail "engine and torch.profiler did not share CUPTI"; }
grep "^gpuos: .*CUPTI" "$T/err" && fail "a CUPTI message under torch.profiler" || true
