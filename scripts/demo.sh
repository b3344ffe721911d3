#!/usr/bin/env bash
# The demo: a CUDA program and, if PyTorch is there, a small MLP training step, each run plain
# and under the shim with the report on, outputs compared. Needs a GPU; says so without one.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if ! nvidia-smi -L >/dev/null 2>&1; then
	echo "gpuos demo: no GPU found (nvidia-smi -L failed); the demo runs CUDA programs and needs one."
	echo "gpuos demo: without a GPU, 'make test' runs the CPU tests, and 'build/gpuos inspect FILE' works."
	exit 1
fi
[ -x "$BUILD/gpuos" ] && [ -x "$BUILD/hooks/prog" ] && [ -x "$BUILD/gpu/bench_engine" ] ||
	make --no-print-directory -s all cpu-test-deps gpu-deps
G=$BUILD/gpuos
echo "== $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
echo "== a CUDA program (nvcc -cudart shared), plain vs under gpuos run --report"
"$BUILD/hooks/prog" 100 >/tmp/gpuos-demo-plain.out
"$G" run --report -- "$BUILD/hooks/prog" 100 >/tmp/gpuos-demo-shim.out
cmp -s /tmp/gpuos-demo-plain.out /tmp/gpuos-demo-shim.out && echo "== outputs identical" ||
	{ echo "== OUTPUTS DIFFER"; exit 1; }
if python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null; then
	echo "== PyTorch: MLP training step, 20 steps, plain vs under the shim"
	python3 tests/gpu/mlp.py >/tmp/gpuos-demo-plain.out
	"$G" run --report -- python3 tests/gpu/mlp.py >/tmp/gpuos-demo-shim.out
	cmp -s /tmp/gpuos-demo-plain.out /tmp/gpuos-demo-shim.out && echo "== losses and weights bit-identical" ||
		{ echo "== OUTPUTS DIFFER"; exit 1; }
fi
echo "== the engine (C API): 10,000 dependent tiny tasks vs plain launches and a CUDA graph"
scripts/bench_engine.sh 10000 3
