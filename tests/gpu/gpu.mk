gpu-check:
.PHONY: gpu-check
