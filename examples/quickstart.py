"""graphc in one page: build a graph, run it, differentiate it, export it."""
import numpy as np

import graphc as gc

rng = np.random.default_rng(0)

# Define: placeholders are fed at run time, variables hold values between runs.
g = gc.Graph()
x = g.placeholder("x", shape=(None, 3))
W = g.variable("W", rng.standard_normal((3,)))
y = gc.mean(gc.tanh(x * W + 1.0) ** 2) + 1e-4 * gc.sum(W * W)

# Run: only what the fetch needs is computed.
X = rng.standard_normal((5, 3))
print("y =", g.run(y, feed={x: X}))

# Differentiate: the derivatives are new nodes of the same graph...
(gW,) = gc.gradients(y, [W])
print("dy/dW =", g.run(gW, feed={"x": X}))
print("largest error against finite differences:", gc.check_gradients(y, [W], {x: X}))

# ...so they can be differentiated again.
H = gc.hessian(y, W)
print("Hessian:\n", g.run(H, feed={x: X}))
print(f"the graph now has {len(g)} nodes")
