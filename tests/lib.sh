# Shared helpers of the shell tests. Sourced; expects to run from the repository root.
BUILD=${GPUOS_BUILD:-build}
SHIM=$PWD/$BUILD/libgpuos_shim.so
HOOKS=$PWD/$BUILD/hooks
FAKE=$HOOKS/fake
T=$(mktemp -d "${TMPDIR:-/tmp}/gpuos-test.XXXXXX")
# GPUOS_TEST_KEEP=DIR: keep each test's files (reports, logs) under DIR, for a look later
trap '[ -n "${GPUOS_TEST_KEEP:-}" ] && mkdir -p "$GPUOS_TEST_KEEP" &&
	cp -r "$T" "$GPUOS_TEST_KEEP/$(basename "$0" .sh).$$" 2>/dev/null; rm -rf "$T"' EXIT

# A sanitized shim needs its sanitizer runtime loaded first.
PRELOAD=$SHIM
for rt in $(ldd "$SHIM" 2>/dev/null | grep -oE '/[^ ]*lib[at]san[^ ]*'); do
	PRELOAD=$rt:$PRELOAD
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# The JSON checks use python3's json module.
need_python() {
	command -v python3 >/dev/null || { echo "python3 missing" >&2; exit 77; }
}
