#!/usr/bin/env bash
# Run the CPU test binaries and shell tests given on the command line (or found under
# tests/), print each one's result and a closing "N passed, N failed, N skipped" line.
# Exit status 77 from a test means skipped.
set -u
BUILD=${BUILD:-build}
export GPUOS_BUILD=$BUILD GPUOS_FIXTURES=${GPUOS_FIXTURES:-build/fixtures}
export CK_FORK=yes
pass=0 fail=0 skip=0
tests=("$@")
if [ -z "${TESTS_ONLY:-}" ]; then
	for t in tests/test_*.sh; do [ -e "$t" ] && tests+=("$t"); done
fi
for t in "${tests[@]}"; do
	log=$BUILD/tests/$(basename "$t").log
	mkdir -p "$BUILD/tests"
	"$t" >"$log" 2>&1
	rc=$?
	case $rc in
	0) pass=$((pass + 1)); printf '  PASS    %s\n' "$t" ;;
	77) skip=$((skip + 1)); printf '  SKIP    %s\n' "$t" ;;
	*) fail=$((fail + 1)); printf '  FAIL    %s (exit %d)\n' "$t" "$rc"; tail -n 30 "$log" | sed 's/^/    /' ;;
	esac
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
