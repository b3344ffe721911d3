"""A small MLP training step (Linear/GELU/LayerNorm, AdamW foreach=False, batch 8), 20
steps from a fixed seed. Prints every loss as float.hex and a hash of the final weights, so
two runs can be compared bit for bit. With --profile, also writes the number of kernel
launches CUPTI saw through the runtime API, and the kernels that ran, to the file named.
With --warm, runs the 20 steps once first (not profiled) and, under the shim, waits for the
operators that run asked for: the measured run is then the diverted one. With
--report-before FILE.json, under the shim, writes its launch report just before the measured
run (gpuos_report), so that the report at exit minus this one is the measured run alone."""
import hashlib
import sys

import torch


def workload():
    torch.manual_seed(0)
    dev = "cuda"
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.LayerNorm(128),
        torch.nn.Linear(128, 128), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(128, 16),
    ).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False)
    x = torch.randn(8, 64, device=dev)
    y = torch.randn(8, 16, device=dev)
    losses = []
    for _ in range(20):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().numpy().tobytes())
    return losses, h.hexdigest()


def wait_for_operators():
    """Under the shim (its C API in the process), wait for every operator it is building."""
    import ctypes
    try:
        lib = ctypes.CDLL(None)
        wait = lib.gpuos_op_wait_all
    except (OSError, AttributeError):
        return
    wait()


def main():
    prof_out = sys.argv[sys.argv.index("--profile") + 1] if "--profile" in sys.argv else None
    if "--warm" in sys.argv:
        workload()
        torch.cuda.synchronize()
        wait_for_operators()
    if "--report-before" in sys.argv:
        import ctypes
        path = sys.argv[sys.argv.index("--report-before") + 1]
        torch.cuda.synchronize()
        if ctypes.CDLL(None).gpuos_report(path.encode()) != 0:
            sys.exit("gpuos_report failed")
    if prof_out:
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            losses, digest = workload()
        names = {}
        kernels = 0
        per_kernel = {}
        for e in prof.events():
            if e.device_type == torch.autograd.DeviceType.CUDA:
                kernels += 1
                per_kernel[e.name] = per_kernel.get(e.name, 0) + 1
            elif "LaunchKernel" in e.name:
                names[e.name] = names.get(e.name, 0) + 1
        runtime = sum(v for k, v in names.items() if k.lstrip("_").startswith("cuda"))
        with open(prof_out, "w") as f:
            f.write(f"runtime_launches {runtime}\nkernels {kernels}\n")
            for k, v in sorted(names.items()):
                f.write(f"api {k} {v}\n")
            for k, v in sorted(per_kernel.items()):
                f.write(f"kernel {v} {k}\n")
    else:
        losses, digest = workload()
    for i, l in enumerate(losses):
        print(f"step {i:2d} loss {l.hex()}")
    print("weights", digest)


main()
