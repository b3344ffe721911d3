#!/usr/bin/env bash
# ptx_lift on the GPU: an unmodified nvcc program (nvcc's default targets: sm_75 SASS and
# compute_75 PTX) prints the same results with its small kernels lifted into the worker as
# without the shim; the report shows each liftable kernel diverted and the hazard kernel
# falling through with its reason. The first run pauses after its first round (a slow start:
# the operators build meanwhile); the second does not, and finds them in the cache.
# Then engine_test's order mix (3 threads: launches, copies, events, host functions, syncs)
# with its kernels lifted, on cold and warm caches: same hash as plain, no hang, no crash at
# exit (a batch close once covered a task whose worker launch queued in the driver behind
# another thread's synchronous copy, and later a task that had only seen another thread's
# launch begin; a short run's exit once ran NVRTC's destructors under a compile).
set -eu
. tests/gpu/lib.sh
need_python
P=$PWD/$BUILD/gpu/lift_prog
export GPUOS_CONFIG=/dev/null GPUOS_CACHE_DIR=$T/cache GPUOS_LIFT=on
ROUNDS=${ROUNDS:-1500}
"$P" "$ROUNDS" >"$T/plain.out"
for run in 1 2; do
	rc=0
	pause=$([ $run = 1 ] && echo 10000 || echo 0)
	timeout 300 "$G" run --report="$T/r$run.json" -- "$P" "$ROUNDS" $pause >"$T/shim$run.out" \
		2>"$T/shim$run.err" || rc=$?
	[ $rc = 0 ] || { cat "$T/shim$run.err"; fail "run $run: exit $rc"; }
	cmp "$T/plain.out" "$T/shim$run.out" ||
		{ diff "$T/plain.out" "$T/shim$run.out"; fail "run $run: results differ"; }
	[ ! -s "$T/shim$run.err" ] || { cat "$T/shim$run.err"; fail "run $run: shim printed"; }
done
python3 - "$T/r1.json" "$T/r2.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    print(f"{path.split('/')[-1]}: {r['launches']} launches, {r['diverted']} diverted, "
          f"fell through {r['fell_through']}")
    for k in sorted(r["kernels"], key=lambda k: k["short"]):
        print(f"  {k['short']:<16} {k['diverted']:>6}/{k['launches']:<6} {k.get('lift')} "
              f"{k['fell_through']}")
for path in sys.argv[1:]:
  r = json.load(open(path))
  k = {x["short"]: x for x in r["kernels"]}
  liftable = [s for s in k if s != "early_exit"]
  assert len(liftable) == 10, sorted(k)
  for s in liftable:
      assert k[s]["lift"] == "ok", k[s]
      assert k[s]["diverted"] > 0, k[s]
  assert k["early_exit"]["lift"] == "exit_before_barrier", k["early_exit"]
  assert k["early_exit"]["diverted"] == 0, k["early_exit"]
  share = sum(k[s]["diverted"] for s in liftable) / sum(k[s]["launches"] for s in liftable)
  print(f"{path.split('/')[-1]}: liftable kernels: {share:.1%} of their launches diverted")
  assert share > 0.5, share
PY
E=$PWD/$BUILD/gpu/engine_test
LOOPS=${LOOPS:-24}
for seed in 1 2 3; do
	GPUOS_LIFT=off LD_PRELOAD=$SHIM timeout 60 "$E" order $seed >"$T/oref$seed" 2>&1 ||
		{ cat "$T/oref$seed"; fail "order $seed (lift off) failed"; }
done
for i in $(seq "$LOOPS"); do
	seed=$(( (i - 1) % 3 + 1 ))
	[ $((i % 2)) = 0 ] || rm -rf "$T/ocache" # odd runs cold, even runs warm
	# half the runs with workers that leave after 1 ms idle: many more worker launches,
	# each one a chance for another thread's synchronous copy to come in between
	idle=$(( (i / 2) % 2 ? 1 : 100 ))
	rc=0
	GPUOS=0 GPUOS_CACHE_DIR=$T/ocache GPUOS_WORKER_IDLE_MS=$idle GPUOS_TEST_STUCK_S=40 GPUOS_TEST_STUCK_WAIT=1 \
		LD_PRELOAD=$SHIM timeout 120 "$E" order $seed >"$T/o$i" 2>&1 || rc=$?
	[ $rc = 0 ] || { cat "$T/o$i"; fail "order run $i (seed $seed, lift on): exit $rc"; }
	a=$(grep -o 'hash=[0-9a-f]* hostfn=[0-9]*' "$T/oref$seed")
	b=$(grep -o 'hash=[0-9a-f]* hostfn=[0-9]*' "$T/o$i")
	[ "$a" = "$b" ] || fail "order run $i (seed $seed): lift off $a, lift on $b"
done
echo "lift: order mix, $LOOPS runs on cold and warm caches, results identical"
echo "lift: results identical, $DEVICE"
