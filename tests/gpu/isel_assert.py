#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An embedding lookup past the table's end fails as PyTorch's kernel fails: a device-side
assert, reported at the next sync (for test_torch_ops.sh). Prints how many tasks the shim's
engine took for a good lookup and for the bad one, when the shim is loaded."""
import torch
import torch.nn.functional as F

from torch_ops import LIB, submitted  # the shim's C API when it is loaded


w = torch.randn(50, 128, device="cuda")
good = torch.tensor([3], device="cuda")
bad = torch.tensor([50], device="cuda")
F.embedding(good, w)  # starts the operator building
torch.cuda.synchronize()
if LIB:
    LIB.gpuos_op_wait_all()
before = submitted()
y = F.embedding(good, w)
torch.cuda.synchronize()
assert torch.equal(y[0], w[3])
n_good = submitted() - before
F.embedding(bad, w)
print(f"tasks: good {n_good}, bad {submitted() - before - n_good}", flush=True)
torch.cuda.synchronize()
print("no error")
