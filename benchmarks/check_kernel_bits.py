"""Bit-for-bit comparison of registry kernels between two checkouts (issue 15's in-place
kernels against the ones they replaced).

    python benchmarks/check_kernel_bits.py --against DIR          # DIR: e.g. a worktree of main
    python benchmarks/check_kernel_bits.py --against DIR --ops sigmoid,silu

Each kernel runs, in one subprocess per checkout, on the same inputs: float16/32/64 and
integer arrays of random values at several scales and of special values (+-0, +-inf, NaN,
subnormals, the largest floats), of shapes 0-d, empty, short, in several pieces (70001, 3x90001),
F-ordered, transposed and strided, and NumPy scalars and Python numbers; binary kernels also
with targets of other dtypes and broadcast. Results must agree in type, dtype, shape and every
byte, but for the bits of NaNs (NumPy's own loops give a NaN made from two NaNs the sign of
either, by the element's position in the array); the inputs must be left as they were. NaN
bits and layout (strides) differences are listed apart.
"""
from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
UNARY = ["sigmoid", "softplus", "silu", "log_sigmoid", "softsign", "selu", "elu", "leaky_relu",
         "gelu"]
ATTRS = {"elu": [{"alpha": 1.0}, {"alpha": 0.5}], "leaky_relu": [{"negative_slope": 0.01},
                                                                 {"negative_slope": 0.2}],
         "gelu": [{"approximate": False}, {"approximate": True}],
         "log_softmax": [{"axis": (-1,)}, {"axis": (0,)}, {"axis": (-2, -1)}]}
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1e-310, -1e-310, 5e-324, 1e-45,
           1.7e308, -1.7e308, 3.4e38, -3.4e38, 65504.0, -65504.0, 1e4, -1e4, 708.0, -745.0,
           88.0, -104.0, 1e-8, -1e-8, 0.5, -0.5, 1.0, -1.0, 30.0, -30.0]


def _arrays(dtype, rng):
    """(label, array) inputs of one dtype."""
    def draw(shape, scale=3.0):
        if np.dtype(dtype).kind in "iu":
            return rng.integers(-50, 50, shape).astype(dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            v = (rng.standard_normal(shape) * scale).astype(dtype)
        flat = v.reshape(-1)
        if flat.size >= len(SPECIAL):  # specials sprinkled at random places
            with np.errstate(over="ignore"):
                flat[rng.choice(flat.size, len(SPECIAL), replace=False)] = np.array(
                    SPECIAL).astype(dtype)
        return v
    out = [("0-d", draw(())), ("empty", draw((0,))), ("empty2", draw((3, 0))),
           ("7", draw((7,))), ("8193", draw((8193,), 30.0)), ("70001", draw((70001,), 30.0)),
           ("3x90001", draw((3, 90001))), ("128x1000", draw((128, 1000), 1e3)),
           ("F 400x300", np.asfortranarray(draw((400, 300)))), ("T", draw((300, 401)).T),
           ("strided", draw((400, 360))[:, ::3]), ("reversed", draw((70000,))[::-1]),
           ("20000x20", draw((20000, 20))), ("9000x10", draw((9000, 10), 30.0))]
    if np.dtype(dtype).kind == "f":
        with np.errstate(over="ignore"):
            out.append(("specials", np.array(SPECIAL).astype(dtype)))
    return out


def inputs():
    """(label, args) for each unary call; binary ones for sigmoid_cross_entropy."""
    rng = np.random.default_rng(0)
    unary = []
    for dtype in ("float16", "float32", "float64", "int64", "int32"):
        unary += [(f"{dtype} {label}", (a,)) for label, a in _arrays(dtype, rng)]
    unary += [("np.float64", (np.float64(-0.3),)), ("np.float32", (np.float32(2.5),)),
              ("python float", (-1.25,)), ("python int", (3,)), ("np -0.0", (np.float64(-0.0),))]
    binary = []
    for dtype in ("float32", "float64"):
        for label, x in _arrays(dtype, rng):
            shape = np.shape(x)
            t = rng.uniform(0, 1, shape)
            binary += [(f"{dtype} {label} t same", (x, t.astype(dtype))),
                       (f"{dtype} {label} t float64", (x, t)),
                       (f"{dtype} {label} t bool", (x, t > 0.5)),
                       (f"{dtype} {label} t int", (x, (t > 0.5).astype(np.int64))),
                       (f"{dtype} {label} t float", (x, 0.25))]
            if len(shape) == 2:
                binary += [(f"{dtype} {label} t row", (x, t[0].astype(dtype))),
                           (f"{dtype} {label} x row", (x[:1], t.astype(dtype)))]
    binary += [("ints", (np.arange(-4, 5), np.linspace(0, 1, 9))),
               ("0-d", (np.float64(0.7), np.float64(1.0)))]
    return unary, binary


def run(root: str, ops) -> dict:
    """{(op, attrs, label): (type name, dtype, shape, bytes, strides)} under ``root``."""
    sys.path.insert(0, root)
    from graphc.ops.registry import REGISTRY
    unary, binary = inputs()
    out = {}
    for name in ops:
        kernel = REGISTRY[name].kernel
        calls = binary if name == "sigmoid_cross_entropy" else unary
        for attrs in ATTRS.get(name, [{}]):
            for label, args in calls:
                before = [np.array(a, copy=True) for a in args]
                try:
                    with np.errstate(all="ignore"):
                        r = kernel(*args, **attrs)
                except Exception as exc:  # (the same error from both, or a difference)
                    out[(name, repr(attrs), label)] = (type(exc).__name__,) * 7
                    continue
                for a, b in zip(args, before):
                    if not np.array_equal(np.asarray(a), b, equal_nan=True):
                        raise AssertionError(f"{name} {label}: the kernel wrote into an input")
                a = np.asarray(r)
                nan = np.isnan(a) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
                out[(name, repr(attrs), label)] = (type(r).__name__, a.dtype.str, a.shape,
                                                   np.where(nan, 0, a).tobytes(),
                                                   nan.tobytes(), a.tobytes(), a.strides)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the other checkout (the old code)")
    parser.add_argument("--root", default=os.path.dirname(HERE))
    parser.add_argument("--ops", default=",".join(UNARY + ["log_softmax",
                                                                "sigmoid_cross_entropy"]))
    parser.add_argument("--pickle", help="(internal) write one checkout's results here")
    args = parser.parse_args()
    ops = args.ops.split(",")
    if args.pickle:
        with open(args.pickle, "wb") as fh:
            pickle.dump(run(args.root, ops), fh)
        return
    results = []
    for root in (args.against, args.root):
        with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as tmp:
            path = tmp.name
        subprocess.run([sys.executable, __file__, "--against", args.against, "--root",
                        os.path.abspath(root), "--ops", args.ops, "--pickle", path], check=True,
                       cwd=os.path.abspath(root))
        with open(path, "rb") as fh:
            results.append(pickle.load(fh))
        os.unlink(path)
    old, new = results
    bad = layout = nan_sign = 0
    for key, want in old.items():
        got = new[key]
        if got[:5] != want[:5]:
            bad += 1
            print("DIFFERS", *key, "old", want[:3], "new", got[:3],
                  "(bytes differ)" if got[:3] == want[:3] else "")
            continue
        if got[5] != want[5]:
            nan_sign += 1  # (NumPy's loops pick either NaN of two by an element's position)
            print("NaN bits", *key)
        if got[6] != want[6]:
            layout += 1
            print("layout", *key, "old strides", want[6], "new", got[6])
    print(f"{len(old)} calls over {len(ops)} kernels: {bad} differ in a value, type, dtype or "
          f"shape; {nan_sign} in the sign or payload of a NaN only; {layout} in layout")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
