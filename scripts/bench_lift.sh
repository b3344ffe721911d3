#!/usr/bin/env bash
# The dependent tiny-kernel chain through the lifted path, in one run on this machine's GPU:
# an unmodified program (tests/gpu/bench_lift.cu) launching N dependent <<<4, 256>>> kernels,
# plainly, as one CUDA graph, and under the shim (its kernel lifted into the worker).
# Usage: scripts/bench_lift.sh [N] [reps]     (needs `make gpu-deps`)
set -eu
BUILD=${BUILD:-build}
B=$BUILD/gpu/bench_lift
N=${1:-10000}
REPS=${2:-3}
[ -x "$B" ] || { echo "build it first: make gpu-deps" >&2; exit 2; }
nvidia-smi -L >/dev/null 2>&1 || { echo "no GPU on this machine: nothing to measure" >&2; exit 77; }
export GPUOS_CONFIG=/dev/null GPUOS_LIFT=on GPUOS_CACHE_DIR=${GPUOS_CACHE_DIR:-$(mktemp -d)}
SHIM=$PWD/$BUILD/libgpuos_shim.so
best() { # best of REPS runs of "$@": the us_per_launch and hash of the fastest
	local b= h= l
	for _ in $(seq "$REPS"); do
		l=$("$@" | grep us_per_launch)
		us=$(echo "$l" | sed 's/.*us_per_launch=\([0-9.]*\).*/\1/')
		h=$(echo "$l" | sed 's/.*hash=//')
		if [ -z "$b" ] || awk "BEGIN{exit !($us < $b)}"; then b=$us; fi
	done
	echo "$b $h"
}
read -r plain hp < <(best "$B" eager "$N")
read -r graph hg < <(best "$B" graph "$N")
read -r shim hs < <(best env LD_PRELOAD="$SHIM" GPUOS_REPORT="$GPUOS_CACHE_DIR/report.json" "$B" eager "$N")
[ "$hp" = "$hs" ] && [ "$hp" = "$hg" ] || { echo "results differ: $hp $hg $hs" >&2; exit 1; }
div=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['diverted'], '/', r['launches'])" "$GPUOS_CACHE_DIR/report.json" 2>/dev/null || echo "?")
echo "device: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
echo "dependent chain, $N launches of a 1024-float kernel, best of $REPS, results identical ($hp)"
printf '  plain launches   %7.3f us/launch\n' "$plain"
printf '  CUDA graph       %7.3f us/launch\n' "$graph"
printf '  GPUOS (lifted)   %7.3f us/launch   (last run: %s launches diverted)\n' "$shim" "$div"
awk -v p="$plain" -v g="$graph" -v s="$shim" 'BEGIN {
	printf "  GPUOS vs plain %.2fx, vs graph %.2fx\n", p / s, g / s }'
