#!/usr/bin/env bash
# Build the shim with host-time probes on its diverted launch path (common/probe.h) into
# build/probe/libgpuos_shim.so. At exit it prints, per span, calls and ns per call:
#   python3 scripts/bench_torch.py --shim build/probe/libgpuos_shim.so --workloads add1024
# Probes cost a few ns each; time figures for reports come from the normal build.
set -eu
cd "$(dirname "$0")/.."
make -j"$(nproc)" BUILD=build/probe CFLAGS='-O2 -g -Wall -Wextra -DGPUOS_PROBE' \
	build/probe/libgpuos_shim.so
