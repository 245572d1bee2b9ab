"""XOR with a 2-layer ReLU network (Deep Learning Book, section 6.1).

The book's example: no linear model can represent XOR (the least-squares fit answers 0.5
everywhere), but one hidden layer of two rectified linear units can:

    f(x; W, c, w, b) = w^T max(0, W^T x + c) + b,
    W = [[1, 1], [1, 1]],  c = [0, -1],  w = [1, -2],  b = 0.

This script

1. evaluates the book's hand-made solution on the four points,
2. fits a linear model by gradient descent (it converges to 0.5 everywhere, as the book says),
3. learns a ReLU network from random weights by gradient descent on the book's mean squared
   error, compiled once with ``gc.function(..., updates=gc.optimizers.sgd(...))``, and plots
   its loss on a log scale. With the book's two hidden
   units, gradient descent from random weights sometimes gets stuck (a unit whose ReLU is off
   on every input gets no gradient); the default of eight units learns XOR reliably.

Run:  python examples/xor.py [--hidden 8] [--steps 1500] [--lr 0.1] [--seed 0] [--out DIR]
Needs: matplotlib (``pip install -e ".[examples]"``).
Writes: DIR/xor.dot (the learned network's graph with its gradient nodes) and DIR/xor_loss.png
and .svg (the network's loss at each step, log scale).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import graphc as gc

X_XOR = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y_XOR = np.array([0.0, 1.0, 1.0, 0.0])


def book_solution() -> np.ndarray:
    g = gc.Graph()
    x = g.placeholder("x", shape=(None, 2))
    W = g.constant([[1.0, 1.0], [1.0, 1.0]], name="W")
    c = g.constant([0.0, -1.0], name="c")
    w = g.constant([1.0, -2.0], name="w")
    h = gc.relu(x @ W + c, name="h")
    f = h @ w + 0.0
    hidden, out = g.run([h, f], {x: X_XOR})
    print("1. the book's solution f(x) = w^T max(0, W^T x + c) + b")
    print("   x        h = max(0, W^T x + c)   f(x)")
    for xi, hi, fi in zip(X_XOR, hidden, out):
        print(f"   {xi.astype(int)}    {hi}               {fi:.0f}")
    return out


def linear_model(steps: int, lr: float) -> np.ndarray:
    g = gc.Graph()
    x = g.placeholder("x", shape=(None, 2))
    y = g.placeholder("y", shape=(None,))
    w = g.variable("w", np.array([0.3, -0.2]))
    b = g.variable("b", 0.1)
    f = x @ w + b
    loss = gc.mean((y - f) ** 2) / 2
    step = gc.function([x, y], loss, updates=gc.optimizers.sgd(loss, [w, b], lr=lr))
    for _ in range(steps):
        step(X_XOR, Y_XOR)
    out = g.run(f, {x: X_XOR})
    print(f"\n2. a linear model f(x) = x^T w + b after {steps} gradient steps: "
          f"w = {np.round(w.value, 4)}, b = {float(b.value):.4f}")
    print(f"   f(X) = {np.round(out, 4)}  (the book: w = 0, b = 1/2)")
    return out


def relu_network(hidden: int, steps: int, lr: float, seed: int, out_dir: Path) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = gc.Graph()
    x = g.placeholder("x", shape=(None, 2))
    y = g.placeholder("y", shape=(None,))
    W = g.variable("W", rng.normal(0.0, 1.0, (2, hidden)))
    c = g.variable("c", np.full(hidden, 0.1))
    w = g.variable("w", rng.normal(0.0, 1.0 / np.sqrt(hidden), hidden))
    b = g.variable("b", 0.0)
    f = gc.relu(x @ W + c) @ w + b
    loss = gc.mean((y - f) ** 2)  # the book's J(theta) = 1/4 sum (f*(x) - f(x))^2
    step = gc.function([x, y], loss, updates=gc.optimizers.sgd(loss, [W, c, w, b], lr=lr))
    print(f"\n3. a ReLU network with {hidden} hidden units, learned by gradient descent")
    losses = []
    for k in range(steps):
        losses.append(float(step(X_XOR, Y_XOR)))
        if k % max(1, steps // 5) == 0:
            print(f"   step {k:>5}  loss {losses[-1]:.6f}")
    out = g.run(f, {x: X_XOR})
    print(f"   step {steps:>5}  loss {float(g.run(loss, {x: X_XOR, y: Y_XOR})):.6f}")
    print(f"   f(X) = {np.round(out, 4)}  ->  rounded {np.round(out).astype(int)}, "
          f"target {Y_XOR.astype(int)}")
    (out_dir / "xor.dot").write_text(gc.to_dot(g))
    plots = plot_loss(losses, out_dir)
    print(f"   wrote {', '.join(str(p) for p in [out_dir / 'xor.dot', *plots])}")
    return out


def plot_loss(losses: list, out_dir: Path) -> list:
    """The training loss at each step on a log scale (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    ax.semilogy(losses, linewidth=2)
    ax.set(xlabel="gradient-descent step", ylabel="mean squared error",
           title="XOR: the ReLU network's training loss")
    ax.grid(True, which="both", alpha=0.3)
    paths = [out_dir / f"xor_loss.{fmt}" for fmt in ("png", "svg")]
    for path in paths:
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return paths


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=8, help="hidden ReLU units")
    parser.add_argument("--steps", type=int, default=1500, help="gradient-descent steps")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    exact = book_solution()
    linear = linear_model(args.steps, args.lr)
    learned = relu_network(args.hidden, args.steps, args.lr, args.seed, args.out)
    solved = bool(np.all(np.round(learned) == Y_XOR))
    print(f"\nbook solution exact: {bool(np.all(exact == Y_XOR))}; linear model stuck at 0.5: "
          f"{bool(np.allclose(linear, 0.5, atol=0.05))}; ReLU network learned XOR: {solved}")
    if not solved:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
