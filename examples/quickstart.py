"""graphc in one page: build a graph, run it, differentiate it, compile it, export it.

Run:  python examples/quickstart.py [--steps 100] [--out DIR]
Writes: DIR/quickstart.dot (Graphviz) and DIR/quickstart.json (graphc JSON).
"""
import argparse
from pathlib import Path

import numpy as np

import graphc as gc

parser = argparse.ArgumentParser(description="graphc in one page")
parser.add_argument("--steps", type=int, default=100, help="training steps")
parser.add_argument("--out", type=Path, default=Path("out"), help="output folder")
args = parser.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)

# 1. Define: placeholders are fed at run time, variables hold values between runs.
g = gc.Graph()
x = g.placeholder("x", shape=(None, 3))  # None: the batch size is known only at run time
t = g.placeholder("t", shape=(None,))
W = g.variable("W", rng.standard_normal(3))
b = g.variable("b", 0.0)
y = gc.tanh(x @ W + b)
loss = gc.add(gc.mean((y - t) ** 2), 1e-4 * gc.sum(W * W), name="loss")
print(loss)  # a node: op, name, static shape and dtype, no value yet
gc.show(loss, compact=True)  # the graph as text: one line per node (gc.to_text returns it)

# 2. Run: only what the fetches need is computed; feed by node or by name.
X = rng.standard_normal((8, 3))
T = np.tanh(X @ np.array([0.5, -1.0, 2.0]) + 0.3)
print("loss =", g.run(loss, feed={x: X, "t": T}))

# 3. Differentiate: the derivatives are new nodes of the same graph, named d(loss)/d(W)...
gW, gb = gc.gradients(loss, [W, b])
print(gW)
print("dloss/dW =", g.run(gW, feed={x: X, t: T}))
print("largest error against finite differences:",
      gc.check_gradients(loss, [W, b], {x: X, t: T}))

# ...so they can be differentiated again: a Hessian is the gradient's Jacobian.
H = gc.hessian(loss, W)
print("Hessian of the loss in W:\n", g.run(H, feed={x: X, t: T}))

# 4. Compile: gc.function prunes, rewrites and schedules once; each call runs NumPy code.
# The updates are computed from the old values, then written together, after the outputs;
# gc.optimizers.sgd(loss, [W, b], lr=0.5) is {W: W - 0.5 * gW, b: b - 0.5 * gb}.
step = gc.function([x, t], loss, updates=gc.optimizers.sgd(loss, [W, b], lr=0.5))
print(step)  # inputs, outputs, updated variables, compiled terms by op
losses = [float(step(X, T)) for _ in range(args.steps)]
print(f"training: loss {losses[0]:.4f} -> {losses[-1]:.6f} after {args.steps} steps")
print("learned W =", W.value, " b =", b.value)

# 5. Export: Graphviz DOT (derivative nodes set apart) and lossless JSON.
(args.out / "quickstart.dot").write_text(gc.to_dot(g))
gc.save(g, args.out / "quickstart.json")
g2 = gc.load(args.out / "quickstart.json")
same = g2.run(g2[loss.name], {"x": X, "t": T}) == g.run(loss, {x: X, t: T})
print(f"the graph has {len(g)} nodes; reloaded from JSON it gives the same loss: {same}")
print(f"wrote {args.out / 'quickstart.dot'} and {args.out / 'quickstart.json'}")
