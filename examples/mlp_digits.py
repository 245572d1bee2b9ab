"""The Deep Learning Book's section 6.5.7 network, trained on handwritten digits.

Section 6.5.7 ("Example: Back-Propagation for MLP Training") draws the graph of a one-hidden-
layer ReLU network trained with the cross-entropy loss and weight decay, without biases:

    H = max(0, X W1),   U2 = H W2,
    J = J_MLE + lambda (sum W1^2 + sum W2^2),   J_MLE = cross_entropy(softmax(U2), y).

Here it learns scikit-learn's bundled 8x8 digits (1,797 images that ship inside the package,
no download), by minibatch SGD with momentum. Each step is one call of a function compiled
with ``gc.function([X, y], [J, J_MLE], updates=...)``; the updates of the weights and their
velocities are graph nodes, all computed from the old values and written together:

    v <- mu v - eps dJ/dW,    W <- W + (mu v - eps dJ/dW).

Run:  python examples/mlp_digits.py [--epochs 30] [--hidden 64] [--batch 32] [--out DIR]
Needs: scikit-learn (``pip install -e ".[examples]"``).
Writes: DIR/mlp_digits_loss.svg (loss curve), DIR/mlp_digits.dot (the cost's graph) and, when
Graphviz is installed, DIR/mlp_digits.svg (the same graph drawn).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import graphc as gc


def load_data(seed: int, test_fraction: float = 0.25):
    """Digits scaled to [0, 1], split into train and test sets (stratified by class)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X, y = digits.data / 16.0, digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in range(10):
        members = rng.permutation(np.flatnonzero(y == label))
        test[members[: round(test_fraction * len(members))]] = True
    return X[~test], y[~test], X[test], y[test]


def progress(epoch: int, epochs: int, done: int, total: int, loss: float, start: float) -> None:
    """A one-line text progress bar, redrawn in place on a terminal."""
    width = 30
    filled = round(width * done / total)
    bar = "#" * filled + "." * (width - filled)
    line = (f"epoch {epoch:>3}/{epochs} [{bar}] {done:>4}/{total} batches  loss {loss:.4f}  "
            f"{time.perf_counter() - start:5.1f}s")
    if sys.stdout.isatty():
        end = "\n" if done == total else ""
        print("\r" + line, end=end, flush=True)
    elif done == total:  # a log file gets one line per epoch
        print(line, flush=True)


def loss_curve_svg(series: dict, path: Path, width: int = 640, height: int = 360) -> None:
    """A tiny hand-written SVG line chart: one polyline per series, axes and labels."""
    left, right, top, bottom = 60, 20, 30, 40
    longest = max(len(v) for v in series.values())
    high = max(max(v) for v in series.values())
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]

    def xy(i, value, n):
        x = left + (width - left - right) * i / max(1, n - 1)
        y = top + (height - top - bottom) * (1 - value / high)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="Helvetica, Arial, sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">'
             'MLP on digits: cross-entropy after each epoch</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
             f'y2="{height - bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">epoch</text>']
    for k in range(5):  # y ticks
        value = high * k / 4
        y = top + (height - top - bottom) * (1 - k / 4)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.2f}</text>')
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                     'stroke="#ddd"/>')
    epochs = len(next(iter(series.values()))) - 1 if series else 0
    for e in range(0, epochs + 1, max(1, epochs // 10)):  # x ticks, in epochs
        x = left + (width - left - right) * e / max(1, epochs)
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" '
                     f'text-anchor="middle">{e}</text>')
    for k, (name, values) in enumerate(series.items()):
        points = " ".join(xy(i, v, len(values)) for i, v in enumerate(values))
        colour = colours[k % len(colours)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}"/>')
        parts.append(f'<text x="{width - right - 150}" y="{top + 16 * (k + 1)}" '
                     f'fill="{colour}">{name}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=64, help="hidden ReLU units")
    parser.add_argument("--batch", type=int, default=32, help="minibatch size")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate eps")
    parser.add_argument("--momentum", type=float, default=0.9, help="momentum mu")
    parser.add_argument("--weight-decay", type=float, default=1e-4, help="lambda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    X_train, y_train, X_test, y_test = load_data(args.seed)
    rng = np.random.default_rng(args.seed)

    # The book's graph (figure 6.11), no biases.
    g = gc.Graph()
    X = g.placeholder("X", shape=(None, 64))
    y = g.placeholder("y", shape=(None,), dtype="int64")
    W1 = g.variable("W1", rng.normal(0.0, np.sqrt(2 / 64), (64, args.hidden)))
    W2 = g.variable("W2", rng.normal(0.0, np.sqrt(2 / args.hidden), (args.hidden, 10)))
    H = gc.relu(X @ W1, name="H")
    U2 = H @ W2
    J_MLE = gc.mean(gc.softmax_cross_entropy(U2, y), name="J_MLE")
    J = J_MLE + args.weight_decay * (gc.sum(gc.square(W1)) + gc.sum(gc.square(W2)))
    forward_dot = gc.to_dot(J)  # the forward graph only, before the derivatives exist

    # SGD with momentum: one velocity variable per weight; every update is a graph node.
    params = [W1, W2]
    grads = gc.gradients(J, params)
    updates = {}
    for W, gW in zip(params, grads):
        v = g.variable(f"v_{W.name}", np.zeros(W.shape))
        step = args.momentum * v - args.lr * gW
        updates[v] = step
        updates[W] = W + step
    train_step = gc.function([X, y], [J, J_MLE], updates=updates)
    predict = gc.function([X], U2)
    print(f"digits: {len(y_train)} training and {len(y_test)} test images; network 64-"
          f"{args.hidden}-10; graph of {len(g)} nodes")
    nodes = train_step.stats["nodes"]
    print(f"compiled training step: {nodes['source']} nodes, {nodes['final']} after rewriting")

    evaluate = gc.function([X, y], J_MLE)
    train_curve, test_curve = [float(evaluate(X_train, y_train))], [float(evaluate(X_test, y_test))]
    batches = -(-len(y_train) // args.batch)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(y_train))
        losses = []
        for b in range(batches):
            idx = order[b * args.batch:(b + 1) * args.batch]
            loss, _ = train_step(X_train[idx], y_train[idx])
            losses.append(float(loss))
            progress(epoch, args.epochs, b + 1, batches, np.mean(losses), start)
        train_curve.append(float(evaluate(X_train, y_train)))
        test_curve.append(float(evaluate(X_test, y_test)))

    train_acc = np.mean(np.argmax(predict(X_train), axis=1) == y_train)
    test_acc = np.mean(np.argmax(predict(X_test), axis=1) == y_test)
    print(f"cross-entropy J_MLE: train {train_curve[-1]:.4f}, test {test_curve[-1]:.4f}")
    print(f"train accuracy {train_acc:.4f}")
    print(f"test accuracy {test_acc:.4f}")

    # Outputs: the loss curves, the cost's graph as DOT and, with Graphviz, drawn as SVG.
    loss_curve_svg({"training J_MLE": train_curve, "test J_MLE": test_curve},
                   args.out / "mlp_digits_loss.svg")
    (args.out / "mlp_digits.dot").write_text(forward_dot)
    written = ["mlp_digits_loss.svg", "mlp_digits.dot"]
    if shutil.which("dot"):
        gc.render(J, args.out / "mlp_digits.svg")
        written.append("mlp_digits.svg")
    print("wrote " + ", ".join(str(args.out / name) for name in written))


if __name__ == "__main__":
    main()
