"""The Deep Learning Book's section 6.5.7 network, trained on handwritten digits.

Section 6.5.7 ("Example: Back-Propagation for MLP Training") draws the graph of a one-hidden-
layer ReLU network trained with the cross-entropy loss and weight decay, without biases:

    H = max(0, X W1),   U2 = H W2,
    J = J_MLE + lambda (sum W1^2 + sum W2^2),   J_MLE = cross_entropy(softmax(U2), y).

Here it learns scikit-learn's bundled 8x8 digits (1,797 images that ship inside the package,
no download), by minibatch SGD with momentum. Each step is one call of a function compiled
with ``gc.function([X, y], [J, J_MLE], updates=gc.optimizers.momentum(J, [W1, W2], ...))``;
the updates of the weights and their velocities are graph nodes, all computed from the old
values and written together:

    v <- mu v - eps dJ/dW,    W <- W + v.

Run:  python examples/mlp_digits.py [--epochs 30] [--hidden 64] [--batch 32] [--out DIR]
Needs: scikit-learn, matplotlib and tqdm (``pip install -e ".[examples]"``).
Shows a progress bar per epoch on a terminal (one line per epoch otherwise).
Writes: DIR/mlp_digits_loss.png and .svg (log-scale loss curves), DIR/mlp_digits.dot (the
cost's graph) and, when Graphviz is installed, DIR/mlp_digits.svg (the same graph drawn).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

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


def plot_losses(series: dict, out: Path, name: str) -> list:
    """Log-scale loss curves with matplotlib (Agg: no display needed), as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for label, values in series.items():
        ax.plot(range(len(values)), values, label=label, linewidth=2)
    ax.set_yscale("log")
    ax.set(xlabel="epoch", ylabel="cross-entropy J_MLE",
           title="MLP on digits: cross-entropy after each epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    paths = [out / f"{name}.{fmt}" for fmt in ("png", "svg")]
    for path in paths:
        fig.savefig(path, dpi=120)
    plt.close(fig)
    return paths


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

    # SGD with momentum: gc.optimizers adds one velocity variable per weight (momentum/v/W1,
    # momentum/v/W2) and returns the updates, graph nodes computed from the old values.
    updates = gc.optimizers.momentum(J, [W1, W2], lr=args.lr, momentum=args.momentum)
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
    quiet = not sys.stdout.isatty()  # a log file gets one line per epoch, no progress bar
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(y_train))
        losses = []
        bar = tqdm(range(batches), desc=f"epoch {epoch:>3}/{args.epochs}", unit="batch",
                   leave=False, disable=quiet)
        for b in bar:
            idx = order[b * args.batch:(b + 1) * args.batch]
            loss, _ = train_step(X_train[idx], y_train[idx])
            losses.append(float(loss))
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", refresh=False)
        train_curve.append(float(evaluate(X_train, y_train)))
        test_curve.append(float(evaluate(X_test, y_test)))
        tqdm.write(f"epoch {epoch:>3}/{args.epochs}  {batches} batches  loss "
                   f"{np.mean(losses):.4f}  test J_MLE {test_curve[-1]:.4f}  "
                   f"{time.perf_counter() - start:5.1f}s", file=sys.stdout)

    train_acc = np.mean(np.argmax(predict(X_train), axis=1) == y_train)
    test_acc = np.mean(np.argmax(predict(X_test), axis=1) == y_test)
    print(f"cross-entropy J_MLE: train {train_curve[-1]:.4f}, test {test_curve[-1]:.4f}")
    print(f"train accuracy {train_acc:.4f}")
    print(f"test accuracy {test_acc:.4f}")

    # Outputs: the loss curves, the cost's graph as DOT and, with Graphviz, drawn as SVG.
    curves = plot_losses({"training": train_curve, "test": test_curve}, args.out,
                         "mlp_digits_loss")
    (args.out / "mlp_digits.dot").write_text(forward_dot)
    written = [p.name for p in curves] + ["mlp_digits.dot"]
    if shutil.which("dot"):
        gc.render(J, args.out / "mlp_digits.svg")
        written.append("mlp_digits.svg")
    print("wrote " + ", ".join(str(args.out / name) for name in written))


if __name__ == "__main__":
    main()
