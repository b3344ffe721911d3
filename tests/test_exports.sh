#!/usr/bin/env bash
# The shim exports exactly the HOOK entries of interpose/hooks.def, nothing else.
set -eu
. tests/lib.sh
printf '#define HOOK(r, n, p, a) HOOK_NAME n\n#include "interpose/hooks.def"\n' |
	${CC:-gcc} -E -P -I. -x c - | grep -o 'HOOK_NAME [A-Za-z0-9_]*' | cut -d' ' -f2 | sort >"$T/want"
nm -D --defined-only "$SHIM" | awk '{print $3}' | sed 's/@.*//' | sort >"$T/have"
[ -s "$T/want" ] || fail "no hooks listed"
diff "$T/want" "$T/have" || fail "exports differ from hooks.def (- listed, + exported)"
echo "exports: $(wc -l <"$T/have") symbols, as listed"
