#!/usr/bin/env bash
# The engine's figures in one run on this machine's GPU (tests/gpu/bench_engine.cu): a
# dependent chain of 10,000 tiny tasks against plain launches and a CUDA graph, the host cost
# per submit, and independent tasks from several threads and streams.
# Usage: scripts/bench_engine.sh [N] [reps]    (needs `make gpu-deps`)
set -eu
BUILD=${BUILD:-build}
B=$BUILD/gpu/bench_engine
[ -x "$B" ] || { echo "build it first: make gpu-deps" >&2; exit 2; }
nvidia-smi -L >/dev/null 2>&1 || { echo "no GPU on this machine: nothing to measure" >&2; exit 77; }
export GPUOS_CONFIG=/dev/null
echo "== default worker (2 rings x 512 threads)"
LD_PRELOAD=$PWD/$BUILD/libgpuos_shim.so "$B" "${1:-10000}" "${2:-5}"
echo "== 4 rings, 8 producer threads"
GPUOS_WORKERS=4 BENCH_THREADS=8 LD_PRELOAD=$PWD/$BUILD/libgpuos_shim.so "$B" "${1:-10000}" "${2:-5}"
