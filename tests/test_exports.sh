#!/usr/bin/env bash
# The shim exports exactly the HOOK entries of interpose/hooks.def, the C API of gpuos.h and
# the two ways into exit (interpose/exit.c).
set -eu
. tests/lib.sh
printf '#define HOOK(r, n, p, a) HOOK_NAME n\n#include "interpose/hooks.def"\n' |
	${CC:-gcc} -E -P -I. -x c - | grep -o 'HOOK_NAME [A-Za-z0-9_]*' | cut -d' ' -f2 >"$T/hooks"
# and the C API: every function include/gpuos.h declares
grep -oE '^(int|void) gpuos_[a-z_]+\(' include/gpuos.h | sed -E 's/^(int|void) //; s/\($//' >"$T/api"
# and the process's exit (interpose/exit.c), and CUPTI's subscriber calls (interpose/cupti.c)
printf '__libc_start_main\nexit\n' >"$T/exit"
sed -n 's/^\t\(cupti[A-Za-z_0-9]*\);$/\1/p' interpose/shim.map.in >"$T/cupti"
[ "$(wc -l <"$T/cupti")" -eq 8 ] || fail "CUPTI names not found in shim.map.in"
sort "$T/hooks" "$T/api" "$T/exit" "$T/cupti" >"$T/want"
nm -D --defined-only "$SHIM" | awk '$2 != "A" {print $3}' | sed 's/@.*//' | sort >"$T/have"
[ -s "$T/want" ] || fail "no hooks listed"
diff "$T/want" "$T/have" || fail "exports differ from hooks.def (- listed, + exported)"
echo "exports: $(wc -l <"$T/have") symbols, as listed"
