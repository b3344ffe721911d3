"""Catalog ops on two GPUs; prints a hash per result, to compare plain against the shim.

  multigpu.py single  one process: ops on cuda:0 and cuda:1 with either current, side streams
                      of each device, copies between the devices, reductions, layer norm, cat
  multigpu.py dp      nn.DataParallel over both devices (one launching thread a replica), SGD
  multigpu.py ddp     DistributedDataParallel, two processes, NCCL all-reduce of the gradients
                      (on NCCL's own stream, ordered after the backward by events), AdamW
Needs two GPUs (the test skips without them).
"""
import hashlib
import os
import sys
import tempfile

import torch


def digest(t):
    t = t.detach().contiguous().cpu()
    return hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()[:16]


def single():
    torch.manual_seed(0)
    out = []
    x = [torch.randn(3000, device=f"cuda:{d}") for d in (0, 1)]
    w = [torch.randn(64, device=f"cuda:{d}") for d in (0, 1)]
    side = [torch.cuda.Stream(device=d) for d in (0, 1)]
    for it in range(40):
        for d in (0, 1):
            # ops on device d with the other device current: ATen's guard switches for them
            with torch.cuda.device(1 - d):
                y = torch.sigmoid(x[d] * 1.5 + 0.25).mul_(2.0)
                x[d] = torch.where(y > 1.0, y - 1.0, y)
            s = torch.nn.functional.layer_norm(x[d].view(-1, 60)[:, :56], (56,))
            r = x[d].sum() + s.abs().amax()
            out.append(r)
        # a result of device 0's worker copied to device 1 and used there, and back
        a = (x[0] * 0.5).to("cuda:1")
        x[1] = torch.lerp(x[1], a, 0.25)
        b = torch.tanh(x[1]).to("cuda:0", non_blocking=True)
        x[0] = x[0] + b * 0.125
        # each device's side stream, ordered by events against its default stream
        for d in (0, 1):
            side[d].wait_stream(torch.cuda.default_stream(d))
            with torch.cuda.stream(side[d]):
                z = torch.cat([x[d][:1000] * 2, w[d].neg()])
                z = torch.relu(z - 0.5)
            torch.cuda.default_stream(d).wait_stream(side[d])
            z.record_stream(torch.cuda.default_stream(d))
            x[d][:1064].add_(z, alpha=0.5)
            out.append(z.sum())
    for d in (0, 1):
        torch.cuda.synchronize(d)
        print(f"x{d}", digest(x[d]))
    print("partials", digest(torch.stack([o.to("cuda:0") for o in out])))


def mlp(seed, device):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.LayerNorm(64),
        torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 8)).to(device)


def dp():
    model = mlp(1, "cuda:0")
    par = torch.nn.DataParallel(model, device_ids=[0, 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, foreach=False)
    g = torch.Generator().manual_seed(2)
    for step in range(15):
        x = torch.randn(16, 32, generator=g).to("cuda:0")
        y = torch.randn(16, 8, generator=g).to("cuda:0")
        loss = torch.nn.functional.mse_loss(par(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        print(f"step {step} loss {loss.item().hex()}")
    for n, p in model.named_parameters():
        print(n, digest(p))


def ddp_worker(rank, path, outdir):
    import torch.distributed as dist
    torch.cuda.set_device(rank)
    dist.init_process_group("nccl", init_method=f"file://{path}", rank=rank, world_size=2)
    model = torch.nn.parallel.DistributedDataParallel(mlp(3, f"cuda:{rank}"), device_ids=[rank])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, foreach=False)
    g = torch.Generator().manual_seed(10 + rank)
    lines = []
    for step in range(15):
        x = torch.randn(8, 32, generator=g).to(f"cuda:{rank}")
        y = torch.randn(8, 8, generator=g).to(f"cuda:{rank}")
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        lines.append(f"rank {rank} step {step} loss {loss.item().hex()}")
    for n, p in model.module.named_parameters():
        lines.append(f"rank {rank} {n} {digest(p)}")
    dist.destroy_process_group()
    with open(os.path.join(outdir, f"rank{rank}"), "w") as f:
        f.write("\n".join(lines) + "\n")


def ddp():
    import torch.multiprocessing as mp
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(ddp_worker, args=(os.path.join(d, "rendezvous"), d), nprocs=2)
        for r in (0, 1):
            sys.stdout.write(open(os.path.join(d, f"rank{r}")).read())


if __name__ == "__main__":
    {"single": single, "dp": dp, "ddp": ddp}[sys.argv[1]]()
