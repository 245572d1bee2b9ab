"""The circuits of the CS231n back-propagation notes, by hand and by graphc.

CS231n's "Backpropagation, Intuitions" (https://cs231n.github.io/optimization-2/) derives the
gradients of three small circuits by hand. This script rebuilds each circuit as a graphc graph,
asks ``gc.gradients`` for the derivatives, and prints them beside the notes' numbers, which it
recomputes the way the notes do: a forward pass that keeps every intermediate value, then a
backward pass, written out line by line, that multiplies local gradients by upstream ones.

1. f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4.
2. A 2-input sigmoid neuron f(w, x) = sigmoid(w0 x0 + w1 x1 + w2), w = [2, -3, -3],
   x = [-1, -2]; once with ``gc.sigmoid`` and once gate by gate (*, +, exp, 1/x) as drawn in
   the notes.
3. The "staged computation" f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) at x = 3,
   y = -4.

The notes draw each circuit with the forward values above the wires (green) and the gradients
below (red); ``gc.to_dot(f, feed=..., grad_of=f)`` annotates graphc's pictures the same way,
and this script redraws the notes' two figures with their numbers.

Run:  python examples/cs231n_circuits.py [--out DIR]
Writes: DIR/cs231n_add_multiply.dot and DIR/cs231n_neuron.dot (the notes' figures: values and
gradients on every gate), DIR/cs231n_neuron_vector.dot (the neuron with w and x as vectors),
DIR/cs231n_neuron_backward.dot (the gate-level neuron with its derivative nodes), and the same
as SVG when Graphviz is installed.
"""
from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np

import graphc as gc


def show(title: str, rows: list) -> float:
    """Print ``(name, graphc, by hand)`` rows; return the largest difference."""
    print(f"\n{title}")
    print(f"  {'':<8} {'graphc':>12} {'by hand':>12}")
    worst = 0.0
    for name, ours, theirs in rows:
        print(f"  {name:<8} {float(ours):>12.6f} {float(theirs):>12.6f}")
        worst = max(worst, abs(float(ours) - float(theirs)))
    return worst


def draw(out: Path, name: str, target, **annotate) -> Path:
    """Write ``target``'s picture as DOT (and SVG with Graphviz); two significant digits, as
    the notes' figures print them."""
    path = out / f"{name}.dot"
    path.write_text(gc.to_dot(target, digits=2, **annotate))
    if shutil.which("dot"):
        gc.render(target, out / f"{name}.svg", digits=2, **annotate)
    return path


def add_gate(out: Path) -> float:
    """f = (x + y) z: the add gate routes the gradient, the multiply gate swaps its inputs."""
    g = gc.Graph()
    x, y, z = (g.placeholder(n) for n in "xyz")
    q = gc.add(x, y, name="q")
    f = gc.mul(q, z, name="f")
    feed = {x: -2.0, y: 5.0, z: -4.0}
    # The notes' first figure: q = 3 and f = -12 in green; -4, -4, 3 (and -4 on q) in red.
    draw(out, "cs231n_add_multiply", f, feed=feed, grad_of=f)
    gx, gy, gz = gc.gradients(f, [x, y, z])
    ours = g.run([f, gx, gy, gz], feed)

    # The notes, by hand.
    xv, yv, zv = -2.0, 5.0, -4.0
    qv = xv + yv        # forward: q = 3
    fv = qv * zv        #          f = -12
    dfdz = qv           # backward: df/dz = q = 3
    dfdq = zv           #           df/dq = z = -4
    dfdx = 1.0 * dfdq   #           df/dx = df/dq * dq/dx = -4
    dfdy = 1.0 * dfdq   #           df/dy = -4
    return show("1. f(x, y, z) = (x + y) z at x = -2, y = 5, z = -4",
                [("f", ours[0], fv), ("df/dx", ours[1], dfdx), ("df/dy", ours[2], dfdy),
                 ("df/dz", ours[3], dfdz)])


def neuron(out: Path) -> float:
    """f = sigmoid(w0 x0 + w1 x1 + w2), with gc.sigmoid and gate by gate."""
    g = gc.Graph()
    w0, x0, w1, x1, w2 = (g.placeholder(n) for n in ("w0", "x0", "w1", "x1", "w2"))
    inputs = [w0, w1, w2, x0, x1]
    dot = w0 * x0 + w1 * x1 + w2
    f = gc.sigmoid(dot)
    grads = gc.gradients(f, inputs)
    # The notes' drawing: every gate a node, so the sigmoid is *-1, exp, +1, 1/x.
    f_gates = gc.div(1.0, 1.0 + gc.exp(-dot), name="f")
    feed = {w0: 2.0, w1: -3.0, w2: -3.0, x0: -1.0, x1: -2.0}
    # The notes' second figure, drawn before the derivative nodes exist: 0.73 out, and the
    # gradients -0.2 (w0), 0.39 (x0), -0.39 (w1), -0.59 (x1), 0.2 (w2) on the inputs.
    draw(out, "cs231n_neuron", f_gates, feed=feed, grad_of=f_gates)
    grads_gates = gc.gradients(f_gates, inputs)
    draw(out, "cs231n_neuron_backward", [f_gates, *grads_gates])
    fv_, *grads_ = g.run([f, *grads], feed)
    fg_, *grads_gates_ = g.run([f_gates, *grads_gates], feed)
    vector_neuron(out)

    # The notes, by hand: the sigmoid's local gradient is (1 - f) f.
    wv, xv = [2.0, -3.0, -3.0], [-1.0, -2.0]
    dotv = wv[0] * xv[0] + wv[1] * xv[1] + wv[2]
    fv = 1.0 / (1 + math.exp(-dotv))
    ddot = (1 - fv) * fv
    dx = [wv[0] * ddot, wv[1] * ddot]
    dw = [xv[0] * ddot, xv[1] * ddot, 1.0 * ddot]
    # The figure's rounded values: output 0.73; w0 -0.20, x0 0.39, w1 -0.39, x1 -0.59, w2 0.20.
    figure = {"f": 0.73, "df/dw0": -0.20, "df/dx0": 0.39, "df/dw1": -0.39, "df/dx1": -0.59,
              "df/dw2": 0.20}
    names = ["df/dw0", "df/dw1", "df/dw2", "df/dx0", "df/dx1"]
    by_hand = [dw[0], dw[1], dw[2], dx[0], dx[1]]
    rows = [("f", fv_, fv)] + list(zip(names, grads_, by_hand))
    worst = show("2. sigmoid neuron, w = [2, -3, -3], x = [-1, -2]  (gc.sigmoid)", rows)
    worst = max(worst, show("   the same neuron gate by gate: 1 / (1 + exp(-(w0 x0 + w1 x1 + w2)))",
                            [("f", fg_, fv)] + list(zip(names, grads_gates_, by_hand))))
    print("   the notes' figure (2 decimals): "
          + ", ".join(f"{k} {v:+.2f}" for k, v in figure.items()))
    for name, ours, _ in rows:
        assert round(float(ours), 2) == figure[name], name
    return worst


def vector_neuron(out: Path) -> None:
    """The same neuron with the weights as one variable w and the inputs as one vector x:
    the picture summarises each array by its shape and entries."""
    g = gc.Graph()
    w = g.variable("w", np.array([2.0, -3.0, -3.0]))
    x = g.placeholder("x", (2,))
    f = gc.sigmoid(w[:2] @ x + w[2], name="f")
    draw(out, "cs231n_neuron_vector", f, feed={x: np.array([-1.0, -2.0])}, grad_of=f)


def staged() -> float:
    """f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2), in the notes' stages."""
    g = gc.Graph()
    x, y = g.placeholder("x"), g.placeholder("y")
    f = (x + gc.sigmoid(y)) / (gc.sigmoid(x) + (x + y) ** 2)
    gx, gy = gc.gradients(f, [x, y])
    ours = g.run([f, gx, gy], {x: 3.0, y: -4.0})

    # The notes' forward pass, caching every stage...
    xv, yv = 3.0, -4.0
    sigy = 1.0 / (1 + math.exp(-yv))   # (1) sigmoid in the numerator
    num = xv + sigy                    # (2) numerator
    sigx = 1.0 / (1 + math.exp(-xv))   # (3) sigmoid in the denominator
    xpy = xv + yv                      # (4)
    xpysqr = xpy ** 2                  # (5)
    den = sigx + xpysqr                # (6) denominator
    invden = 1.0 / den                 # (7)
    fv = num * invden                  # (8)
    # ...and its backward pass, stage by stage in reverse; gradients add up where paths meet.
    dnum = invden                              # (8)
    dinvden = num                              # (8)
    dden = (-1.0 / den ** 2) * dinvden         # (7)
    dsigx = 1.0 * dden                         # (6)
    dxpysqr = 1.0 * dden                       # (6)
    dxpy = (2 * xpy) * dxpysqr                 # (5)
    dx = 1.0 * dxpy                            # (4)
    dy = 1.0 * dxpy                            # (4)
    dx += ((1 - sigx) * sigx) * dsigx          # (3)  note the +=
    dx += 1.0 * dnum                           # (2)
    dsigy = 1.0 * dnum                         # (2)
    dy += ((1 - sigy) * sigy) * dsigy          # (1)
    return show("3. staged f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) at x = 3, y = -4",
                [("f", ours[0], fv), ("df/dx", ours[1], dx), ("df/dy", ours[2], dy)])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    worst = max(add_gate(args.out), neuron(args.out), staged())
    print(f"\nlargest difference between graphc and the hand-derived numbers: {worst:.2e}")
    assert worst < 1e-12, worst
    print("all circuits agree with the notes")
    pictures = sorted(p.name for p in args.out.glob("cs231n_*") if p.suffix in (".dot", ".svg"))
    print(f"wrote {', '.join(pictures)} to {args.out}")


if __name__ == "__main__":
    np.set_printoptions(precision=6, suppress=True)
    main()
