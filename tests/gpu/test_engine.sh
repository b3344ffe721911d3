#!/usr/bin/env bash
# The engine on the GPU (tests/gpu/engine_test.cu through the C API, run under the shim):
# random mixes give the same results with tasks as with plain kernels; every parking call
# returns with a worker resident; captures stay valid; operator swaps are never torn or
# stale; a second process loads its operator from the cache without NVRTC; an operator with a
# stack frame runs; a faulting operator's error reaches the program, which exits.
set -eu
. tests/gpu/lib.sh
E=$BUILD/gpu/engine_test
export GPUOS_CONFIG=/dev/null GPUOS_CACHE_DIR=$T/cache
run() { LD_PRELOAD=$SHIM timeout 300 "$@"; }

elided=0
for seed in 1 2 3; do
	rc=0; GPUOS=0 run "$E" order $seed >"$T/ref$seed" 2>&1 || rc=$?
	[ $rc = 0 ] || { cat "$T/ref$seed"; fail "order $seed (plain) failed: exit $rc"; }
	rc=0; GPUOS=1 run "$E" order $seed >"$T/gpu$seed" 2>&1 || rc=$?
	[ $rc = 0 ] || { cat "$T/gpu$seed"; fail "order $seed (gpuos) failed: exit $rc"; }
	cat "$T/gpu$seed"
	a=$(grep -o 'hash=[0-9a-f]* hostfn=[0-9]*' "$T/ref$seed")
	b=$(grep -o 'hash=[0-9a-f]* hostfn=[0-9]*' "$T/gpu$seed")
	[ "$a" = "$b" ] || fail "order seed $seed: plain $a, gpuos $b"
	elided=$((elided + $(sed -n 's/.* elided=\([0-9]*\).*/\1/p' "$T/gpu$seed")))
done
# batch closes that found their tasks run put no wait on the stream: the mixes must have
# gone through that path too, or they did not test it
[ "$elided" -gt 0 ] || fail "order: no batch close was elided"
echo "order: 3 seeds, results identical with and without tasks ($elided closes elided)"

run "$E" park "$BUILD/gpu/park_mod.cubin" || fail "park"
run "$E" capture || fail "capture"
run "$E" swap 2000 4 || fail "swap (loads park the workers)"
GPUOS_LOAD_PARK=0 run "$E" swap 2000 4 || fail "swap (loads under a running worker)"
run "$E" cache | tee "$T/c1"
run "$E" cache | tee "$T/c2"
grep -q "compiles=0 hits=1 nvrtc_loaded=0" "$T/c2" || fail "second run did not hit the cache without NVRTC"
run "$E" fork || fail "fork"
run "$E" stack || fail "stack: an operator with a stack frame"
# a faulting operator: the error reaches the program, and exit does not hang (exit 3)
rc=0; LD_PRELOAD=$SHIM timeout 60 "$E" fault >"$T/fault" 2>&1 || rc=$?
cat "$T/fault"
[ $rc = 3 ] || fail "fault: exit $rc (124: hung)"
rc=0; run "$E" multigpu || rc=$?
[ $rc = 0 ] || [ $rc = 77 ] || fail "multigpu"
echo "engine: all passed on $DEVICE"
