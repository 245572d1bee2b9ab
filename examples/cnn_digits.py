"""A small convolutional network on scikit-learn's 8x8 digits, trained with Adam.

    conv 3x3 (1 -> 16, same) - ReLU - conv 3x3 (16 -> 32, same) - ReLU - max-pool 2x2
    - dropout - dense (512 -> 64) - ReLU - dropout - dense (64 -> 10) - softmax cross-entropy

Everything is one graph: ``gc.conv2d``, ``gc.max_pool2d``, ``gc.random.dropout`` (driven by a
random key that the compiled training step advances after every call, so each step draws fresh
masks, and the same seed replays the same run), and Adam as graph updates
(``gc.optimizers.adam``).

Evaluation uses a second graph output without dropout (``training=False`` builds the same
network on the same weights with no dropout nodes).

Run:  python examples/cnn_digits.py [--epochs 30] [--batch 32] [--lr 2e-3] [--out DIR]
Needs: scikit-learn; matplotlib for the loss plot (skipped when missing).
Writes: DIR/cnn_digits_loss.png (training loss per epoch) when --out is given.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import graphc as gc


def load_data(seed: int, test_fraction: float = 0.2):
    """Digits as (N, 1, 8, 8) images in [0, 1], split stratified by class."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for label in range(10):
        members = rng.permutation(np.flatnonzero(y == label))
        test[members[: round(test_fraction * len(members))]] = True
    return X[~test], y[~test], X[test], y[test]


def he(rng, shape, fan_in):
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def build(seed: int, lr: float, rate: float):
    g = gc.Graph()
    rng = np.random.default_rng(seed)
    X = g.placeholder("X", (None, 1, 8, 8))
    y = g.placeholder("y", (None,), "int64")
    params = {
        "K1": g.variable("K1", he(rng, (16, 1, 3, 3), 9)), "c1": g.variable("c1", np.zeros(16)),
        "K2": g.variable("K2", he(rng, (32, 16, 3, 3), 144)),
        "c2": g.variable("c2", np.zeros(32)),
        "W3": g.variable("W3", he(rng, (512, 64), 512)), "b3": g.variable("b3", np.zeros(64)),
        "W4": g.variable("W4", he(rng, (64, 10), 64)), "b4": g.variable("b4", np.zeros(10)),
    }
    key = gc.random.key(g, seed, name="dropout_key")

    def network(training: bool):
        p = params
        h = gc.relu(gc.conv2d(X, p["K1"], padding="same") + gc.reshape(p["c1"], (16, 1, 1)))
        h = gc.relu(gc.conv2d(h, p["K2"], padding="same") + gc.reshape(p["c2"], (32, 1, 1)))
        h = gc.max_pool2d(h, 2)                                    # (N, 32, 4, 4)
        h = gc.random.dropout(h, rate / 2, key, training=training)
        h = gc.relu(gc.reshape(h, (-1, 512)) @ p["W3"] + p["b3"])
        h = gc.random.dropout(h, rate, key, training=training)
        return h @ p["W4"] + p["b4"]

    loss = gc.mean(gc.softmax_cross_entropy(network(training=True), y))
    predict = gc.argmax(network(training=False), axis=-1)

    updates = gc.optimizers.adam(loss, list(params.values()), lr=lr)
    train = gc.function([X, y], loss, updates=updates)
    evaluate = gc.function([X], predict)
    return train, evaluate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    try:  # small matrices: BLAS threads cost more in hand-offs than they save
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass
    Xtr, ytr, Xte, yte = load_data(args.seed)
    train, evaluate = build(args.seed, args.lr, args.dropout)
    rng = np.random.default_rng(args.seed + 1)
    start = time.perf_counter()
    losses = []
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(ytr))
        total = 0.0
        for k in range(0, len(order), args.batch):
            batch = order[k:k + args.batch]
            total += float(train(Xtr[batch], ytr[batch])) * len(batch)
        losses.append(total / len(ytr))
        print(f"epoch {epoch:>3}/{args.epochs}  loss {losses[-1]:.4f}  "
              f"{time.perf_counter() - start:5.1f}s", flush=True)
    accuracy = float(np.mean(evaluate(Xte) == yte))
    train_accuracy = float(np.mean(evaluate(Xtr) == ytr))
    print(f"train accuracy {train_accuracy:.4f}  test accuracy {accuracy:.4f}  "
          f"({len(yte)} test images, {time.perf_counter() - start:.1f}s)")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no loss plot")
        else:
            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.plot(range(1, len(losses) + 1), losses, marker="o")
            ax.set(xlabel="epoch", ylabel="training cross-entropy", title="CNN on digits",
                   yscale="log")
            fig.tight_layout()
            fig.savefig(args.out / "cnn_digits_loss.png", dpi=100)
            plt.close(fig)
            print(f"wrote {args.out / 'cnn_digits_loss.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
