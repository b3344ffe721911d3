# Shared by the GPU tests: skip (77) without a GPU.
. tests/lib.sh
if ! nvidia-smi -L >/dev/null 2>&1; then
	echo "no GPU: skipped" >&2
	exit 77
fi
DEVICE=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
G=$PWD/$BUILD/gpuos
