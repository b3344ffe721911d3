"""Catalog ops around a CUDA graph and torch.compile(mode="reduce-overhead"): eager ops
(diverted under the shim) make the inputs of graph replays and compiled calls and consume
their outputs on the same stream, with no synchronization in between. Saves every result
to the file named, for a bitwise comparison of a plain run with a shim run."""
import ctypes
import sys

import torch


def work(x, y):
    a = x * 1.5 + y
    b = torch.sigmoid(a) * torch.tanh(y)
    c = torch.addcmul(b, a, y, value=0.5)
    d = torch.where(c > 0, c, -c)
    return torch.exp(-d) / 3.0 + torch.sqrt(d + 1.0)


def wait_for_operators():
    try:
        wait = ctypes.CDLL(None).gpuos_op_wait_all
    except AttributeError:
        return
    torch.cuda.synchronize()
    wait()


def main(out):
    torch.manual_seed(0)
    x = torch.randn(4096, device="cuda")
    y = torch.randn(4096, device="cuda")
    res = {}
    for i in range(3):  # the operators these ops need start building
        work(x, y + i)
    wait_for_operators()
    res["eager"] = work(x, y)

    # a CUDA graph: captured on a side stream after warm-up, replayed on inputs that eager
    # (diverted) ops just wrote, its output read by eager ops
    gx, gy = x.clone(), y.clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            work(gx, gy)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        gout = work(gx, gy)
    for i in range(5):
        torch.mul(x, float(i + 1), out=gx)
        torch.add(y, float(i), out=gy)
        g.replay()
        res[f"graph{i}"] = gout * 2.0 + 1.0

    # torch.compile(mode="reduce-overhead"): its own kernels in cudagraph trees, fed and
    # read by eager ops
    cf = torch.compile(work, mode="reduce-overhead")
    mark = getattr(torch.compiler, "cudagraph_mark_step_begin", lambda: None)
    for i in range(6):
        mark()
        o = cf(x * float(i + 1), y - float(i))
        res[f"compile{i}"] = o * 2.0 + 1.0
    torch.cuda.synchronize()
    torch.save({k: v.cpu() for k, v in res.items()}, out)
    print(f"{len(res)} results")


if __name__ == "__main__":
    main(sys.argv[1])
