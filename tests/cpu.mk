cpu-test-deps:
.PHONY: cpu-test-deps
