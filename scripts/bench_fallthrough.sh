#!/usr/bin/env bash
# What the shim adds to a launch that falls through: the same program, plain and under the
# shim, alternating, REPS times each; medians and the difference per launch, device named.
# usage: scripts/bench_fallthrough.sh [BUILD_DIR]   (needs a GPU; `make gpu-deps` first)
set -eu
BUILD=${1:-build}
B=$BUILD/gpu/bench_launch
SHIM=$PWD/$BUILD/libgpuos_shim.so
N=${N:-200000}
REPS=${REPS:-15}
nvidia-smi -L >/dev/null 2>&1 || { echo "no GPU: the benchmark needs one" >&2; exit 77; }
DEVICE=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "fall-through launch cost on $DEVICE, $N launches x $REPS runs each, medians"
printf '%-10s %12s %12s %12s %12s %10s\n' mode plain_host shim_host added_host plain_e2e shim_e2e
for mode in valid rejected; do
	: >/tmp/bench_p_$$ && : >/tmp/bench_s_$$
	for r in $(seq "$REPS"); do
		"$B" $mode "$N" >>/tmp/bench_p_$$
		GPUOS_CONFIG=/dev/null LD_PRELOAD=$SHIM "$B" $mode "$N" >>/tmp/bench_s_$$
	done
	ph=$(cut -d' ' -f1 /tmp/bench_p_$$ | median)
	sh=$(cut -d' ' -f1 /tmp/bench_s_$$ | median)
	pe=$(cut -d' ' -f2 /tmp/bench_p_$$ | median)
	se=$(cut -d' ' -f2 /tmp/bench_s_$$ | median)
	awk -v m=$mode -v ph="$ph" -v sh="$sh" -v pe="$pe" -v se="$se" 'BEGIN {
		printf "%-10s %9.1f ns %9.1f ns %9.1f ns %9.1f ns %7.1f ns  (shim/plain %.3f)\n",
			m, ph, sh, sh - ph, pe, se, sh / ph }'
	echo "  runs plain: $(cut -d' ' -f1 /tmp/bench_p_$$ | tr '\n' ' ')"
	echo "  runs shim:  $(cut -d' ' -f1 /tmp/bench_s_$$ | tr '\n' ' ')"
done
rm -f /tmp/bench_p_$$ /tmp/bench_s_$$
