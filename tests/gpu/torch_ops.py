#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Catalog ops x dtypes x layouts, for test_torch_ops.sh.

Run once plain and once under the shim: each case's output goes to OUT (torch.save), with
how many tasks the shim's engine took while the case ran (gpuos_get_stats, when the shim is
loaded). The shell test compares the two files bit for bit and checks that every case that
should run in the worker did (expect True), that none that should not did (False: above the
size limit, empty), and leaves the rest (None) to the comparison.

Inputs hold the awkward values (NaN, +-inf, -0.0, denormals, huge and tiny numbers) next to
ordinary ones. A first pass over every case starts the operators building; the script waits
for them (gpuos_op_wait_all) and then runs the measured pass.
"""
import ctypes
import sys

import torch

LIMIT = 16384  # the shim's max_elements default
COPY_LIMIT = 65536  # and its max_copy_bytes
# (op, dtype) the catalog does not run: no expectation either way (threshold's Half and
# BFloat16 kernels cast their operands, a closure the catalog does not decode yet)
NOT_YET = {("threshold", "float16"), ("threshold", "bfloat16")}
DEV = "cuda"


def engine():
    """The shim's C API when it is loaded, else None."""
    try:
        lib = ctypes.CDLL(None)
        lib.gpuos_get_stats
        return lib
    except (OSError, AttributeError):
        return None


LIB = engine()


def submitted():
    if not LIB:
        return 0
    buf = (ctypes.c_uint64 * 64)()
    LIB.gpuos_get_stats(buf)
    return buf[0]


def values(n, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return (torch.randn(n, generator=g) > 0).to(DEV)
    if not dtype.is_floating_point:  # around 0, and the type's limits (int64 wraps)
        info = torch.iinfo(dtype)
        x = torch.randint(-1000, 1000, (n,), generator=g, dtype=torch.int64)
        k = min(n, 4)
        x[:k] = torch.tensor([info.min, info.max, -1, 0])[:k]
        return x.to(dtype).to(DEV)
    x = torch.randn(n, generator=g) * 3
    special = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1e-40,
                            -1e-42, 3e38, -3e38, 1e-7, 65504.0, 70000.0, 1.0, -1.0, 0.5])
    k = min(n, special.numel())
    x[:k] = special[:k]
    return x.to(dtype).to(DEV)


def positive(x):
    return x.abs()


GRAD0 = {}


def grad0(like):
    """A 0-dim gradient of like's dtype, made once: its fill runs in the first pass, so a
    measured case counts only the op's own launches."""
    if like.dtype not in GRAD0:
        GRAD0[like.dtype] = torch.full((), 0.75, dtype=like.dtype, device=DEV)
    return GRAD0[like.dtype]


# name -> (function of (a, b, c), inputs it needs, dtypes)
FLOATS = (torch.float32, torch.float16, torch.bfloat16)
OPS = {
    "add": (lambda a, b, c: a + b, 2),
    "add_alpha": (lambda a, b, c: torch.add(a, b, alpha=2.5), 2),
    "sub": (lambda a, b, c: a - b, 2),
    "add_scalar": (lambda a, b, c: a + 1.5, 1),
    "sub_scalar": (lambda a, b, c: a - 0.3, 1),
    "rsub_scalar": (lambda a, b, c: 1.5 - a, 1),
    "mul": (lambda a, b, c: a * b, 2),
    "mul_scalar": (lambda a, b, c: a * 2.5, 1),
    "div": (lambda a, b, c: a / b, 2),
    "div_scalar": (lambda a, b, c: a / 3.0, 1),
    "rdiv_scalar": (lambda a, b, c: 3.0 / a, 1),
    "neg": (lambda a, b, c: -a, 1),
    "sigmoid": (lambda a, b, c: torch.sigmoid(a), 1),
    "tanh": (lambda a, b, c: torch.tanh(a), 1),
    "exp": (lambda a, b, c: torch.exp(a), 1),
    "log": (lambda a, b, c: torch.log(a), 1),
    "sqrt": (lambda a, b, c: torch.sqrt(a), 1),
    "rsqrt": (lambda a, b, c: torch.rsqrt(a), 1),
    "silu": (lambda a, b, c: torch.nn.functional.silu(a), 1),
    "gelu": (lambda a, b, c: torch.nn.functional.gelu(a), 1),
    "gelu_tanh": (lambda a, b, c: torch.nn.functional.gelu(a, approximate="tanh"), 1),
    "gelu_bwd": (lambda a, b, c: torch.ops.aten.gelu_backward(a, b), 2),
    "gelu_tanh_bwd": (lambda a, b, c: torch.ops.aten.gelu_backward(a, b, approximate="tanh"), 2),
    "threshold": (lambda a, b, c: torch.nn.functional.threshold(a, 0.1, 20.0), 1),
    # clamp with CPU scalars (launch_clamp_scalar: Min, Max, MinMax); relu is clamp_min(0),
    # relu6 a MinMax whose lower limit is 0.0 (its bits those of Min's tag)
    "relu": (lambda a, b, c: torch.relu(a), 1),
    "relu6": (lambda a, b, c: torch.nn.functional.relu6(a), 1),
    "clamp": (lambda a, b, c: torch.clamp(a, -0.5, 0.7), 1),
    "clamp_min": (lambda a, b, c: torch.clamp(a, min=0.25), 1),
    "clamp_max": (lambda a, b, c: torch.clamp(a, max=-0.3), 1),
    # tensor limits (clamp_kernel_impl), lower above upper where b > c
    "clamp_tensor": (lambda a, b, c: torch.clamp(a, b, c), 3),
    "silu_bwd": (lambda a, b, c: torch.ops.aten.silu_backward(a, b), 2),
    "isneginf": (lambda a, b, c: torch.isneginf(a), 1),
    "isposinf": (lambda a, b, c: torch.isposinf(a), 1),
    "addcmul": (lambda a, b, c: torch.addcmul(a, b, c, value=0.5), 3),
    "addcmul1": (lambda a, b, c: torch.addcmul(a, b, c), 3),
    "addcdiv": (lambda a, b, c: torch.addcdiv(a, b, c, value=0.3), 3),
    "addcdiv1": (lambda a, b, c: torch.addcdiv(a, b, c), 3),
    "lerp_small": (lambda a, b, c: torch.lerp(a, b, 0.3), 2),
    "lerp_big": (lambda a, b, c: torch.lerp(a, b, 0.7), 2),
    "lerp_tensor": (lambda a, b, c: torch.lerp(a, b, c.abs() / 4), 3),
    "reciprocal": (lambda a, b, c: torch.reciprocal(a), 1),
    "pow2": (lambda a, b, c: a ** 2, 1),
    "pow3": (lambda a, b, c: a ** 3, 1),
    "pow_m2": (lambda a, b, c: a ** -2, 1),
    "pow_2_5": (lambda a, b, c: a ** 2.5, 1),
    "where": (lambda a, b, c: torch.where(c > 0, a, b), 3),
    # an attention mask's fill (its value captured as T, the mask read as bool); in place:
    # Tensor.masked_fill clones first, a copy the shim may divert at any size here
    "masked_fill": (lambda a, b, c: a.masked_fill_(c > 0, -float("inf")), 3),
    "masked_fill_v": (lambda a, b, c: a.masked_fill_(c > 0, 2.5), 3),
    # (full_like, not clone().fill_(): a clone is a copy the shim may divert too)
    "fill": (lambda a, b, c: torch.full_like(a, 1.25), 1),
    "zero": (lambda a, b, c: torch.zeros_like(a), 1),
    # expand_as: the same broadcast without mse_loss's warning about sizes (stderr must stay empty)
    "mse": (lambda a, b, c: torch.nn.functional.mse_loss(a, b.expand_as(a), reduction="none"), 2),
    "mse_bwd": (lambda a, b, c: torch.ops.aten.mse_loss_backward(c, a, b, 1), 3),
    # as autograd calls it: the gradient of a mean is one number
    "mse_bwd_0dim_grad": (lambda a, b, c: torch.ops.aten.mse_loss_backward(grad0(a), a, b, 1), 2),
    "to_half": (lambda a, b, c: a.half() if a.dtype == torch.float32 else a * 1, 1),
    "to_bfloat16": (lambda a, b, c: a.bfloat16() if a.dtype == torch.float32 else a * 1, 1),
}

INT_TYPES = (torch.int64, torch.int32)
INT_OPS = {
    "iadd": (lambda a, b, c: a + b, INT_TYPES),
    "iadd_alpha": (lambda a, b, c: torch.add(a, b, alpha=3), INT_TYPES),
    "iadd_scalar": (lambda a, b, c: a + 7, INT_TYPES),
    "isub_scalar": (lambda a, b, c: a - 7, INT_TYPES),
    "irsub_scalar": (lambda a, b, c: 7 - a, INT_TYPES),
    "imul": (lambda a, b, c: a * b, INT_TYPES),
    "imul_scalar": (lambda a, b, c: a * 3, INT_TYPES),
    "ifill": (lambda a, b, c: torch.full_like(a, -5), INT_TYPES + (torch.bool,)),
    "iwhere": (lambda a, b, c: torch.where(c > 0, a, b), INT_TYPES + (torch.bool,)),
    "imasked_fill": (lambda a, b, c: a.masked_fill_(c > 0, True if a.dtype == torch.bool else -5),
                     INT_TYPES + (torch.bool,)),
    "iand": (lambda a, b, c: a & b, INT_TYPES + (torch.bool,)),
    "ior": (lambda a, b, c: a | b, INT_TYPES + (torch.bool,)),
    "ixor": (lambda a, b, c: a ^ b, INT_TYPES + (torch.bool,)),
    "inot": (lambda a, b, c: ~a, INT_TYPES + (torch.bool,)),
    "bmul": (lambda a, b, c: a * b, (torch.bool,)),
    "eq": (lambda a, b, c: a == b, INT_TYPES + FLOATS + (torch.bool,)),
    "ne": (lambda a, b, c: a != b, INT_TYPES + FLOATS),
    "lt": (lambda a, b, c: a < b, INT_TYPES + FLOATS),
    "le": (lambda a, b, c: a <= b, INT_TYPES + FLOATS),
    "gt": (lambda a, b, c: a > b, INT_TYPES + FLOATS),
    "ge": (lambda a, b, c: a >= b, INT_TYPES + FLOATS),
    "gt_s": (lambda a, b, c: a > 5, INT_TYPES + FLOATS),
    "lt_s": (lambda a, b, c: a < -5, INT_TYPES + FLOATS),
    "ge_s": (lambda a, b, c: a >= 0, INT_TYPES + FLOATS),
    "le_s": (lambda a, b, c: a <= 1, INT_TYPES + FLOATS),
    "rgt_s": (lambda a, b, c: 5 > a, INT_TYPES + FLOATS),
    "eq_s": (lambda a, b, c: a == 5, INT_TYPES + (torch.float32,)),
    "ne_s": (lambda a, b, c: a != -1, INT_TYPES + (torch.float32,)),
    "eq_t0": (lambda a, b, c: a == torch.tensor(5), INT_TYPES + (torch.float32,)),
}


# operands of two types (contiguous: unrolled_elementwise_kernel with casts on load and
# store): name -> (function of (a, b), type of a, type of b)
MIX_OPS = {
    "and_long_bool": (lambda a, b: a & (b > 0), torch.int64, torch.int64),
    "and_int_bool": (lambda a, b: a & (b > 0), torch.int32, torch.int32),
    "add_int_long": (lambda a, b: a + b, torch.int32, torch.int64),
    "mul_float_bool": (lambda a, b: a * (b > 0), torch.float32, torch.float32),
    "add_float_long": (lambda a, b: a + b, torch.float32, torch.int64),
    "eq_int_long": (lambda a, b: a == b, torch.int32, torch.int64),
    # bool > 0 compares in int64: compare_scalar's four-way op (once a jump table: a hang)
    "gt_bool_scalar": (lambda a, b: a > 0, torch.bool, torch.bool),
    "add_float_half": (lambda a, b: a + b, torch.float32, torch.float16),  # a half: no
    # .to(dtype): direct_copy's identity lambda with casts on load and store
    "to_long_from_int": (lambda a, b: a.long(), torch.int32, torch.int32),
    "to_long_from_bool": (lambda a, b: a.long(), torch.bool, torch.bool),
    "to_bool_from_float": (lambda a, b: a.bool(), torch.float32, torch.float32),
    "to_float_from_long": (lambda a, b: a.float(), torch.int64, torch.int64),
    "to_int_from_float": (lambda a, b: a.int(), torch.float32, torch.float32),
}

# reductions: name -> (function of (x, dim), dtypes); dim None reduces everything
RED_OPS = {
    "sum": (lambda x, d: x.sum() if d is None else x.sum(d), FLOATS + INT_TYPES),
    "mean": (lambda x, d: x.mean() if d is None else x.mean(d), FLOATS),
    "amax": (lambda x, d: x.amax() if d is None else x.amax(d), (torch.float32,) + INT_TYPES),
    "amin": (lambda x, d: x.amin() if d is None else x.amin(d), (torch.float32,) + INT_TYPES),
    "any": (lambda x, d: x.any() if d is None else x.any(d), (torch.bool,)),
    "all": (lambda x, d: x.all() if d is None else x.all(d), (torch.bool,)),
    "argmax": (lambda x, d: x.argmax() if d is None else x.argmax(d), (torch.float32,)),
    "argmin": (lambda x, d: x.argmin() if d is None else x.argmin(d), (torch.float32,)),
}
# shape -> (view of 1024 elements, dim): rows, columns (outputs vectorized), a bias
# gradient's sum over the batch, and a middle dim of three
RED_DIMS = {
    "rows": ((64, 16), 1),
    "cols": ((64, 16), 0),
    "batch": ((8, 128), 0),
    "wide": ((2, 512), 1),
    "mid": ((4, 16, 16), 1),
}


def finite(x):
    """@x without NaN and infinities (a sum of them tells nothing of the order)."""
    if not x.dtype.is_floating_point:
        return x
    return torch.where(torch.isfinite(x), x, torch.full_like(x, 0.5))


def ints(make, n, dt, seed):
    """Inputs for INT_OPS, in the layout make() gives (values() makes each type)."""
    return make(n, dt, seed)


# layout -> function making the inputs of n elements (a new tensor each call)
def contiguous(n, dt, s):
    return values(n, dt, s)


def misaligned(n, dt, s):
    return values(n + 1, dt, s)[1:]


def strided(n, dt, s):
    return values(2 * n, dt, s)[::2]


LAYOUTS = {
    "contig": contiguous,
    "misaligned": misaligned,
    "strided": strided,
}
SIZES = {"one": 1, "n1000": 1000, "n1024": 1024, "below": LIMIT, "above": LIMIT + 1}


def cases():
    for op, (fn, nin) in OPS.items():
        for dt in FLOATS:
            if op in ("to_half", "to_bfloat16") and dt != torch.float32:
                continue
            skip = (op, str(dt)[6:]) in NOT_YET
            for lay, make in LAYOUTS.items():
                for sz, n in SIZES.items():
                    if lay != "contig" and sz in ("one", "n1000"):
                        continue
                    name = f"{op}.{str(dt)[6:]}.{lay}.{sz}"

                    def run(fn=fn, nin=nin, dt=dt, make=make, n=n, op=op):
                        a = make(n, dt, 1)
                        b = make(n, dt, 2)
                        c = make(n, dt, 3)
                        if op in ("log", "sqrt", "rsqrt"):
                            a = a.abs()
                        if op.startswith("addcdiv"):
                            c = c + 0.25
                        if op == "div":
                            b = b + 0.25
                        return fn(a, b, c)

                    yield name, run, None if skip else n <= LIMIT
            # broadcast, a 0-dim tensor operand, in place, empty
            if nin >= 2:
                def bcast(fn=fn, dt=dt):
                    a = values(1024, dt, 1).view(64, 16)
                    b = values(16, dt, 2)
                    c = values(64, dt, 3).view(64, 1)
                    return fn(a, b, c)
                yield f"{op}.{str(dt)[6:]}.broadcast", bcast, None if skip else True

                def zerodim(fn=fn, dt=dt):
                    a = values(1024, dt, 1)
                    b = torch.tensor(2.5, dtype=dt, device=DEV)
                    c = values(1024, dt, 3)
                    return fn(a, b, c)
                yield f"{op}.{str(dt)[6:]}.0dim", zerodim, None if skip else True

                # operands in two orders, so that no dims coalesce: 3 (the operator's
                # last in registers), 5 (read where the worker fetched them) and 10 (a
                # block of 312 bytes, over the worker's fetch: read from the arena)
                for shape in ((8, 8, 16), (4,) * 5, (2,) * 10):
                    def dims(fn=fn, dt=dt, shape=shape):
                        rev = range(len(shape) - 1, -1, -1)
                        a = values(1024, dt, 1).view(shape).permute(*rev)
                        b = values(1024, dt, 2).view(shape[::-1])
                        c = values(1024, dt, 3).view(shape[::-1])
                        return fn(a, b, c)
                    yield (f"{op}.{str(dt)[6:]}.dims{len(shape)}", dims,
                           None if skip else True)

    # integers and bools (int64 wraps at its limits)
    for op, (fn, types) in INT_OPS.items():
        for dt in types:
            for lay, make in LAYOUTS.items():
                for sz in ("n1000", "n1024", "above"):
                    n = SIZES[sz]
                    def irun(fn=fn, dt=dt, make=make, n=n):
                        return fn(ints(make, n, dt, 1), ints(make, n, dt, 2), ints(make, n, dt, 3))
                    yield f"{op}.{str(dt)[6:]}.{lay}.{sz}", irun, n <= LIMIT

    # two types: the cast layout for int32, int64, bool and float32 (contiguous and
    # misaligned); strided operands cast in gpu_kernel_impl's closure, not decoded
    for op, (fn, ta, tb) in MIX_OPS.items():
        for lay, make in LAYOUTS.items():
            for sz in ("n1000", "n1024", "above"):
                n = SIZES[sz]
                def mrun(fn=fn, ta=ta, tb=tb, make=make, n=n):
                    return fn(make(n, ta, 1), make(n, tb, 2))
                # the integer ones surely take the cast layout; float's may convert
                # their other operand first
                want = (None if lay == "strided" else
                        False if op == "add_float_half" else
                        n <= LIMIT if ta != torch.float32 or op.startswith("to_") else None)
                yield f"mix.{op}.{lay}.{sz}", mrun, want

    # reductions: whole tensors in every layout and size, and along a dim; floating-point
    # sums of finite values (the order of their additions shows) and of the awkward ones
    for op, (fn, types) in RED_OPS.items():
        for dt in types:
            kinds = ("finite", "special") if dt.is_floating_point else ("any",)
            for kind in kinds:
                prep = finite if kind == "finite" else (lambda x: x)
                tag = f"red.{op}.{str(dt)[6:]}.{kind}"
                for lay, make in LAYOUTS.items():
                    for sz, n in SIZES.items():
                        if lay != "contig" and sz == "one":
                            continue
                        def rrun(fn=fn, dt=dt, make=make, n=n, prep=prep):
                            return fn(prep(make(n, dt, 4)), None)
                        # one element: PyTorch may copy; at the limit it may split the
                        # input over blocks (not the simple form): no expectation
                        want = None if sz in ("one", "below") else n <= LIMIT
                        yield f"{tag}.{lay}.{sz}", rrun, want
                for shape, (view, dim) in RED_DIMS.items():
                    def drun(fn=fn, dt=dt, view=view, dim=dim, prep=prep):
                        return fn(prep(values(1024, dt, 5)).view(*view), dim)
                    # an arg reduction along a dim that is not the fastest may store
                    # vectors of outputs: not the operator's form (one pair a thread)
                    want = None if op.startswith("arg") and dim != len(view) - 1 else True
                    yield f"{tag}.{shape}", drun, want
                if op == "sum" and dt == torch.float32 and kind == "special":
                    # reduce_max_threads either side: 32 rows of 32 take 2 blocks of 512
                    # threads, 64 rows 4 (the input made on the host: no task of its own)
                    for rows, want in ((32, True), (64, False)):
                        def trun(rows=rows):
                            return values(rows * 32, torch.float32, 5).view(rows, 32).sum(1)
                        yield f"{tag}.rows32x{rows}", trun, want

    # a strided tensor made contiguous: direct_copy in elementwise_kernel, same type
    for dt in FLOATS + INT_TYPES + (torch.bool,):
        for sz in ("n1000", "n1024", "above"):
            n = SIZES[sz]
            def crun(dt=dt, n=n):
                return strided(n, dt, 6).contiguous()
            yield f"copy.{str(dt)[6:]}.strided.{sz}", crun, n <= LIMIT

    # a contiguous copy of the same type: a device-to-device cudaMemcpyAsync, diverted up to
    # COPY_LIMIT bytes; ends 16-byte aligned, 4-byte aligned (float32 misaligned) or neither
    for dt in (torch.float32, torch.float16, torch.int64, torch.bool):
        esize = torch.empty(0, dtype=dt).element_size()
        sizes = dict(SIZES, limit=COPY_LIMIT // esize, over=COPY_LIMIT // esize + 1)
        for lay in ("contig", "misaligned"):
            make = LAYOUTS[lay]
            for sz, n in sizes.items():
                def clone(dt=dt, make=make, n=n):
                    return make(n, dt, 7).clone()
                yield f"memcpy.{str(dt)[6:]}.{lay}.{sz}", clone, n * esize <= COPY_LIMIT

                def into(dt=dt, make=make, n=n):  # both ends where make() puts them
                    d = make(n, dt, 8)
                    return d.copy_(make(n, dt, 9))
                yield f"memcpy_into.{str(dt)[6:]}.{lay}.{sz}", into, n * esize <= COPY_LIMIT

    # layer norm rows (vectorized_layer_norm_kernel, float32): with weight and bias, weight
    # only, neither; ordinary values, or the awkward ones in the first row; output, mean and
    # rstd. Widths that are no multiple of 4 and misaligned rows take PyTorch's other kernel.
    def cpu_values(n, seed):  # made on the CPU: no GPU op of its own in the measured case
        g = torch.Generator().manual_seed(seed)
        return (torch.randn(n, generator=g) * 2 + 0.5).to(DEV)

    for rows, n in ((1, 128), (8, 128), (4, 256), (3, 1024), (16, 1024), (2, 4096),
                    (5, 30), (17, 1024)):
        for aff in ("affine", "weight", "plain"):
            for kind in ("normal", "special", "misaligned"):
                def ln(rows=rows, n=n, aff=aff, kind=kind):
                    if kind == "special":
                        x = values(rows * n, torch.float32, 11)
                    elif kind == "misaligned":
                        x = values(rows * n + 1, torch.float32, 11)[1:]
                    else:
                        x = cpu_values(rows * n, 11)
                    w = cpu_values(n, 12) if aff != "plain" else None
                    b = cpu_values(n, 13) if aff == "affine" else None
                    y, mean, rstd = torch.native_layer_norm(x.view(rows, n), (n,), w, b, 1e-5)
                    # joined on the host: a cat on the GPU would be a task of its own
                    return torch.cat([y.cpu().flatten(), mean.cpu().flatten(),
                                      rstd.cpu().flatten()])
                want = (kind != "misaligned" and n % 4 == 0 and rows * n <= LIMIT)
                yield f"layer_norm.{rows}x{n}.{aff}.{kind}", ln, want

    # torch.cat (Shape.cu's batched copies): 16-byte units where every slice is a multiple of
    # 16 bytes, else element by element (vector loads of inputs that are aligned for them);
    # inputs of other strides (a step, transposed, permuted) through their sizes and strides;
    # more inputs than a task holds and sizes over the limit fall through; channels-last
    # inputs need a conversion first (no expectation)
    CATS = {
        "vec1d": (((1000,), (24,)), 0, contiguous, True),
        "kv": (((1, 2, 7, 64), (1, 2, 1, 64)), 2, contiguous, True),
        "ids": (((1, 7), (1, 1)), 1, contiguous, True),
        "odd": (((3, 5), (3, 7), (3, 1)), 1, contiguous, True),
        "last": (((2, 3, 5), (2, 3, 4)), -1, contiguous, True),
        "dim0": (((2, 3, 4, 5), (1, 3, 4, 5)), 0, contiguous, True),
        "misaligned": (((1000,), (23,)), 0, misaligned, True),
        "many": (tuple((2, k + 1) for k in range(12)), 1, contiguous, True),
        "empty_in": (((0,), (100,), (28,)), 0, contiguous, True),
        "limit": (((LIMIT - 16,), (16,)), 0, contiguous, True),
        "strided": (((100,), (28,)), 0, strided, True),
        "transposed": (((3, 5), (2, 5)), 0, contiguous, True),
        "permuted": (((2, 3, 4, 5), (2, 3, 4, 5)), 1, contiguous, True),
        "too_many": (tuple((2, 3) for _ in range(17)), 1, contiguous, False),
        "above": (((LIMIT - 15,), (16,)), 0, contiguous, False),
        "channels_last": (((2, 3, 4, 4), (2, 5, 4, 4)), 1, contiguous, None),
    }
    for dt in (torch.float32, torch.float16, torch.int64, torch.bool):
        for name, (shapes, dim, make, want) in CATS.items():
            def cat(dt=dt, shapes=shapes, dim=dim, make=make, name=name):
                ins = []
                for k, sh in enumerate(shapes):
                    n = 1
                    for d in sh:
                        n *= d
                    if name == "transposed" and k == 0:
                        x = make(n, dt, 20 + k).view(sh[1], sh[0]).t()
                    elif name == "permuted" and k == 0:
                        x = make(n, dt, 20 + k).view(2, 4, 3, 5).permute(0, 2, 1, 3)
                    else:
                        x = make(n, dt, 20 + k).view(sh)
                    if name == "channels_last":
                        x = x.contiguous(memory_format=torch.channels_last)
                    ins.append(x)
                return torch.cat(ins, dim)
            yield f"cat.{str(dt)[6:]}.{name}", cat, want

    # torch.arange (RangeFactories.cu's elementwise_kernel_with_index) in every element type
    # of its dispatch: steps up and down, fractional ones (a fused multiply-add and a product
    # then a sum round apart), wide starts, the size limit; one-byte types stay in range
    AR_TYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float64,
                torch.float32, torch.float16, torch.bfloat16)
    ARANGES = {
        "n1": ((5, 6, 1), True),  # GPT-2's position of the next token
        "n7": ((0, 7, 1), True),
        "n117": ((3, 120, 1), True),
        "down": ((120, 1, -3), True),
        "limit": ((0, LIMIT, 1), True),
        "above": ((0, LIMIT + 1, 1), False),
        "wide": ((-2 ** 30, -2 ** 30 + 500, 3), True),
        "wide64": ((2 ** 40, 2 ** 40 + 100, 7), True),
        "tenth": ((0.1, 50.0, 0.1), True),
        "odd": ((-3.5, 100.25, 0.37), True),
        "frac_down": ((10.0, -10.0, -0.3), True),
        "big": ((1e6, 1e6 + 900, 0.75), True),
    }
    for dt in AR_TYPES:
        small = dt in (torch.uint8, torch.int8)
        for name, (args, want) in ARANGES.items():
            frac = any(isinstance(x, float) for x in args)
            if (frac and not dt.is_floating_point) or (small and name in ("limit", "above")):
                continue
            if (name == "wide" and dt not in (torch.int32, torch.int64, torch.float64,
                                              torch.float32)) or \
                    (name == "wide64" and dt not in (torch.int64, torch.float64)):
                continue
            def ar(dt=dt, args=args):
                return torch.arange(*args, dtype=dt, device=DEV)
            yield f"arange.{str(dt)[6:]}.{name}", ar, want

    # index_select (Indexing.cu's indexSelectSmallIndex; embedding's lookups): each of the
    # kernel's variants (1, 2 and 3 dims, any dims with strided indices or a 4-dim source),
    # every element size, int64 and int32 indices with repeats, a 0-dim source and index,
    # the size limit; more than 16 indices take PyTorch's gather, not this kernel
    def isel_values(n, dt, seed):  # made on the CPU: the case's one GPU op is the lookup
        g = torch.Generator().manual_seed(seed)
        if dt.is_complex:
            part = torch.float64 if dt == torch.complex128 else torch.float32
            x = torch.randn(2 * n, generator=g, dtype=part).view(dt)
        elif dt == torch.bool:
            x = torch.randn(n, generator=g) > 0
        elif dt.is_floating_point:
            x = (torch.randn(n, generator=g) * 3).to(dt)
            x[:1] = float("nan")
        else:  # wraps into the narrow and unsigned types
            x = torch.randint(-1000, 1000, (n,), generator=g).to(dt)
        return x.to(DEV)

    def isel_index(k, size, dt=torch.int64, seed=3):
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, size, (k,), generator=g).to(dt).to(DEV)

    ISELS = {
        # name: (source shape, dim, indices, how the source is made, expect)
        "embedding": ((50, 128), 0, 1, None, True),  # GPT-2's token and position lookups
        "rows": ((30, 16), 0, 5, None, True),
        "cols": ((16, 30), 1, 4, None, True),
        "vec": ((100,), 0, 7, None, True),
        "mid": ((4, 6, 5), 1, 3, None, True),
        "last": ((3, 4, 5), 2, 16, None, True),
        "dims4": ((4, 6, 8, 10), 2, 3, "strided4", True),
        "idx_strided": ((30, 16), 0, 6, "idx_strided", True),
        "idx_int32": ((30, 16), 0, 5, "int32", True),
        "src_scalar": ((), 0, 1, None, True),
        "idx_scalar": ((30, 16), 0, 0, None, True),
        "misaligned": ((30, 16), 0, 5, "misaligned", True),
        "limit": ((20, 1024), 0, 16, None, True),
        "above": ((20, 1025), 0, 16, None, False),
        "gather": ((30, 16), 0, 17, None, False),
    }
    ISEL_TYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64,
                  torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
                  torch.complex64, torch.complex128, torch.uint16, torch.float8_e4m3fn)
    for dt in ISEL_TYPES:
        for name, (shape, dim, k, how, want) in ISELS.items():
            if dt not in (torch.float32, torch.float16, torch.int64, torch.bool) and \
                    name not in ("embedding", "cols", "dims4", "misaligned", "src_scalar"):
                continue

            def isel(dt=dt, shape=shape, dim=dim, k=k, how=how, name=name):
                n = 1
                for d in shape:
                    n *= d
                if how == "strided4":
                    x = isel_values(4 * n, dt, 31).view(8, 12, 8, 10)[::2, ::2, :, ::2]
                elif how == "misaligned":
                    x = isel_values(n + 1, dt, 31)[1:].view(shape)
                else:
                    x = isel_values(n, dt, 31).view(shape)
                size = x.shape[dim] if shape else 1
                if name == "idx_scalar":
                    idx = torch.tensor(size - 1, device=DEV)
                elif how == "idx_strided":
                    idx = isel_index(2 * k, size)[::2]
                else:
                    idx = isel_index(k, size, torch.int32 if how == "int32" else torch.int64)
                if name == "embedding":
                    return torch.nn.functional.embedding(idx.view(1, 1), x)
                return torch.index_select(x, dim, idx)
            yield f"index_select.{str(dt)[6:]}.{name}", isel, want

    # softmax and log_softmax over the last dim (PersistentSoftmax.cuh's softmax_warp_forward):
    # every row width class up to 1024, odd widths, the awkward values, a row of -inf, half
    # to float, the size limit; rows of 1025..2048 (a kernel too wide for the worker) and
    # other dims (another kernel) fall through
    SOFTMAXES = {
        # name: (shape, dim, expect)
        "w1": ((3, 1), -1, True),
        "w2": ((3, 2), -1, True),
        "w7": ((5, 7), -1, True),
        "w16": ((4, 16), -1, True),
        "w31": ((3, 31), -1, True),
        "w32": ((2, 32), -1, True),
        "w33": ((3, 33), -1, True),
        "w64": ((9, 64), -1, True),
        "w100": ((3, 100), -1, True),
        "w128": ((2, 128), -1, True),
        "w129": ((3, 129), -1, True),
        "w256": ((5, 256), -1, True),
        "w500": ((2, 500), -1, True),
        "w1000": ((3, 1000), -1, True),
        "w1024": ((2, 1024), -1, True),
        "rows3d": ((2, 3, 50), -1, True),
        "many_rows": ((300, 3), -1, True),
        "limit": ((16, 1024), -1, True),
        "above": ((17, 1024), -1, False),
        "w1500": ((2, 1500), -1, False),
        "dim0": ((50, 3), 0, False),
        "neg_inf_row": ((2, 40), -1, True),
    }
    for fname, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
        for dt in FLOATS:
            for name, (shape, dim, want) in SOFTMAXES.items():
                if dt != torch.float32 and name in ("w2", "w31", "w33", "w129", "w500",
                                                    "rows3d", "many_rows", "dim0"):
                    continue

                def sm(fn=fn, dt=dt, shape=shape, dim=dim, name=name):
                    n = 1
                    for d in shape:
                        n *= d
                    g = torch.Generator().manual_seed(41)
                    x = torch.randn(n, generator=g) * 4
                    special = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0,
                                            1e-40, 3e38, -3e38, 88.7, -104.0])
                    if n >= 64:  # one row of each width holds them
                        x[n // 2:n // 2 + special.numel()] = special
                    if name == "neg_inf_row":
                        x[:40] = -float("inf")
                    x = x.view(shape).to(dt).to(DEV)
                    return fn(x, dim)
                yield f"{fname}.{str(dt)[6:]}.{name}", sm, want
        for name in ("w7", "w100", "w1024", "neg_inf_row"):  # half in, float out
            def h2f(fn=fn, name=name):
                shape = SOFTMAXES[name][0]
                g = torch.Generator().manual_seed(43)
                x = (torch.randn(shape, generator=g) * 4)
                if name == "neg_inf_row":
                    x[0] = -float("inf")
                return fn(x.to(torch.float16).to(DEV), -1, dtype=torch.float32)
            yield f"{fname}.float16_to_float32.{name}", h2f, True

    # their gradients (softmax_warp_backward), called directly so that the case's GPU ops are
    # the gradient's (log_softmax's: the kernel alone; softmax's: a mul of grad by output,
    # then the kernel), half_to_float's (float grads, float16 gradient) too
    SM_BACKWARDS = {
        "w1": ((3, 1), True),
        "w7": ((5, 7), True),
        "w32": ((2, 32), True),
        "w33": ((3, 33), True),
        "w100": ((3, 100), True),
        "w256": ((5, 256), True),
        "w500": ((2, 500), True),
        "limit": ((32, 512), True),
        "above": ((33, 512), False),
        "w1000": ((3, 1000), True),
    }
    for fname, bw, fwd in (("softmax", torch._softmax_backward_data, torch.softmax),
                           ("log_softmax", torch._log_softmax_backward_data,
                            torch.log_softmax)):
        for dt in FLOATS + (None,):  # None: half_to_float's, float in, float16 out
            for name, (shape, want) in SM_BACKWARDS.items():
                if dt is not torch.float32 and name not in ("w7", "w100", "w500", "limit"):
                    continue

                def smb(bw=bw, fwd=fwd, dt=dt, shape=shape, name=name):
                    g = torch.Generator().manual_seed(47)
                    x = torch.randn(shape, generator=g) * 3
                    go = torch.randn(shape, generator=g)
                    if name == "w100":
                        go.view(-1)[7:12] = torch.tensor([float("nan"), float("inf"),
                                                          -float("inf"), 3e38, -0.0])
                    store = torch.float32 if dt is None else dt
                    out = fwd(x, -1).to(store).to(DEV)
                    go = go.to(store).to(DEV)
                    return bw(go, out, -1, torch.float16 if dt is None else dt)
                label = "float32_to_float16" if dt is None else str(dt)[6:]
                yield f"{fname}_backward.{label}.{name}", smb, want

    def copies_in_order():
        """Copies between diverted ops, a cuBLAS matmul and another stream, in order."""
        x = values(1024, torch.float32, 1).view(32, 32)
        w = values(1024, torch.float32, 2).view(32, 32).tanh()
        y = x.clone()
        y.mul_(0.5)
        z = y @ w  # cuBLAS reads the diverted copy's and mul's output
        z2 = z.clone()
        z2.add_(1.0)
        t = torch.empty(1025, device=DEV)[1:].view(32, 32)
        t.copy_(z2)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            u = t.clone()
            u.sub_(y)
        torch.cuda.current_stream().wait_stream(s)
        v = u @ w
        return torch.cat([y.flatten(), z.flatten(), z2.flatten(), t.flatten(), u.flatten(),
                          v.flatten()])
    yield "memcpy.ordered", copies_in_order, True

    for dt in FLOATS:
        def inplace(dt=dt):
            a = values(1024, dt, 1)
            a.add_(values(1024, dt, 2), alpha=0.75)
            a.mul_(1.5)
            a.sigmoid_()
            return a
        yield f"inplace.{str(dt)[6:]}", inplace, True

        def empty(dt=dt):
            a = torch.empty(0, dtype=dt, device=DEV)
            return a + a
        yield f"empty.{str(dt)[6:]}", empty, False  # no launch at all

    def graph():
        """A chain of catalog ops captured in a CUDA graph and replayed."""
        x = values(1024, torch.float32, 1)
        y = values(1024, torch.float32, 2)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                z = torch.tanh(x * 1.5 + y).sigmoid() - 0.25
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            z = torch.tanh(x * 1.5 + y).sigmoid() - 0.25
        outs = []
        for k in range(3):
            x.add_(0.125)  # eager, between replays: in order with them
            g.replay()
            outs.append(z.clone())
        return torch.cat(outs)
    yield "graph.replay", graph, None  # capture falls through; the eager adds divert


def watchdog(seconds):
    """Stuck for @seconds: every thread's Python stack, the engine's state, then exit 3."""
    import faulthandler
    import os
    import threading

    def fire():
        if LIB:
            LIB.gpuos_debug_dump(2)
        faulthandler.dump_traceback(all_threads=True)
        os._exit(3)
    faulthandler.dump_traceback_later(seconds + 5, exit=True)  # if the GIL is held
    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


def main():
    import os
    import time
    out = sys.argv[1]
    if os.environ.get("TORCH_OPS_STUCK_S"):
        watchdog(float(os.environ["TORCH_OPS_STUCK_S"]))
    todo = list(cases())
    # TORCH_OPS_ONLY=prefix[,prefix...]: only the cases named so (a hang's hunt)
    only = [p for p in os.environ.get("TORCH_OPS_ONLY", "").split(",") if p]
    if only:
        todo = [c for c in todo if any(c[0].startswith(p) for p in only)]
    t0 = time.time()
    trace = bool(os.environ.get("TORCH_OPS_TRACE"))
    for name, run, _ in todo:  # start the operators building
        run()
        if trace:
            torch.cuda.synchronize()
            print(name, submitted(), file=sys.stderr, flush=True)
    torch.cuda.synchronize()
    print(f"first pass {time.time() - t0:.1f} s")
    if LIB:
        LIB.gpuos_op_wait_all()
        print(f"operators built {time.time() - t0:.1f} s")
    results, diverted = {}, {}
    for name, run, _ in todo:
        if trace:  # the name first: a case that hangs is the last one printed
            print("measured", name, file=sys.stderr, flush=True)
        before = submitted()
        results[name] = run().cpu()
        torch.cuda.synchronize()
        diverted[name] = submitted() - before
    torch.save({"results": results, "diverted": diverted,
                "expect": {n: e for n, _, e in todo}}, out)
    print(f"{len(todo)} cases, shim {'loaded' if LIB else 'not loaded'}")


if __name__ == "__main__":
    main()
