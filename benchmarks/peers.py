"""The peers of run_all.py: each workload written for JAX (jit), PyTensor (C VM and numba,
each also with ``trust_input``), torch and autograd, whichever import (/tmp/venv_peers has
them all; none is a graphc dependency).

Every builder returns ``{label: common.Call}`` (the peer's function and its arguments, timed
as the statement ``fn(a, b)``, as run_all.py times graphc and NumPy: no wrapper frame in any
figure), after checking each peer's result against the NumPy reference it is given (a wrong
peer would time the wrong thing). Peers run
single-threaded like NumPy under ``OPENBLAS_NUM_THREADS=1``: run_all.py pins the process to
one CPU (XLA sizes its thread pools by the affinity) and torch is set to one thread.
Compiling a peer may take long (PyTensor and JAX unroll deep chains): ``within(seconds,
build)`` gives up on a build after a time limit.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from contextlib import contextmanager

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
from common import Call, available  # noqa: E402

#: PyTensor compile modes: the C virtual machine and the numba back end
PYTENSOR_MODES = {"pytensor cvm": "CVM", "pytensor numba": "NUMBA"}


# -- imports and helpers -------------------------------------------------------------------------
def _jax():
    import jax
    jax.config.update("jax_enable_x64", True)  # float64 workloads; float32 ones stay float32
    jax.config.update("jax_platforms", "cpu")
    return jax


def _torch():
    import torch
    torch.set_num_threads(1)
    return torch


def _pytensor():
    import pytensor
    import pytensor.tensor as pt
    return pytensor, pt


def _close(actual, expected, rtol, atol, who):
    for a, b in zip(actual, expected):
        np.testing.assert_allclose(np.asarray(a, dtype=np.float64), b, rtol=rtol, atol=atol,
                                   err_msg=f"{who} disagrees with NumPy")


def _jax_call(fn, *args) -> Call:
    """A jitted call and the wait for its result (JAX dispatches asynchronously)."""
    import jax
    return Call(fn, *args, then=jax.block_until_ready)


@contextmanager
def _reported(peer: str):
    """One peer's block: a failure (an error, or a result that disagrees with NumPy) is
    printed and that peer left out; the other systems still run."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - any peer failure is reported, none is fatal
        reason = " ".join(str(exc).split())[:300]
        print(f"peer {peer} left out: {type(exc).__name__}: {reason}", file=sys.stderr)


class _Timeout(BaseException):
    """Not an Exception: PyTensor's rewriter catches and logs those, and would carry on."""


def within(seconds: float, build):
    """``build()``, or None when it takes longer than ``seconds`` (main thread, Unix)."""
    if not hasattr(signal, "setitimer"):
        return build()

    def expire(signum, frame):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return build()
    except _Timeout:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _pytensor_functions(inputs, outputs, check, updates=None) -> dict:
    """One PyTensor function per mode, and the same with ``trust_input``, each checked."""
    pytensor, _ = _pytensor()
    out = {}
    for label, mode in PYTENSOR_MODES.items():
        fn = pytensor.function(inputs, outputs, mode=mode, updates=updates)
        check(fn, label)
        out[label] = fn
        trusted = pytensor.function(inputs, outputs, mode=mode, updates=updates,
                                    trust_input=True)
        check(trusted, label + " trust")
        out[label + " trust"] = trusted
    return out


# -- the MLP step --------------------------------------------------------------------------------
def mlp(dtype: str, X, Y, ps, expected, tol: float, decay: float) -> dict:
    """Loss and the six gradients of the 784-256-128-10 MLP (benchmarks/bench_mlp.py)."""
    peers = {}
    n = X.shape[0]

    def check(result, who):
        _close(result, expected, tol, tol, who)

    if available("jax"):
        with _reported("jax"):
            jax = _jax()
            jnp = jax.numpy

            def loss_fn(params, x, y):
                W1, b1, W2, b2, W3, b3 = params
                h = jax.nn.relu(x @ W1 + b1)
                h = jax.nn.relu(h @ W2 + b2)
                logp = jax.nn.log_softmax(h @ W3 + b3, axis=-1)
                nll = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
                return nll + decay * (jnp.sum(W1 * W1) + jnp.sum(W2 * W2) + jnp.sum(W3 * W3))

            step = jax.jit(jax.value_and_grad(loss_fn))
            jp, jx, jy = [jnp.asarray(p) for p in ps], jnp.asarray(X), jnp.asarray(Y)
            value, grads = step(jp, jx, jy)
            assert value.dtype == np.dtype(dtype)
            check([value, *grads], "jax")
            peers["jax jit"] = _jax_call(step, jp, jx, jy)
    if available("pytensor"):
        with _reported("pytensor"):
            pytensor, pt = _pytensor()
            from pytensor.tensor.special import log_softmax
            x, y = pt.matrix("x", dtype=dtype), pt.vector("y", dtype="int64")
            params = [pytensor.shared(p.copy(), name=f"p{k}") for k, p in enumerate(ps)]
            W1, b1, W2, b2, W3, b3 = params
            h = pt.maximum(x @ W1 + b1, 0)
            h = pt.maximum(h @ W2 + b2, 0)
            logp = log_softmax(h @ W3 + b3, axis=-1)
            c = pt.constant(np.asarray(decay, dtype))  # a Python float would upcast to float64
            loss = -pt.mean(logp[pt.arange(n), y]) + c * (
                pt.sum(W1 * W1) + pt.sum(W2 * W2) + pt.sum(W3 * W3))
            assert loss.dtype == dtype
            outputs = [loss, *pytensor.grad(loss, params)]
            for label, fn in _pytensor_functions(
                    [x, y], outputs, lambda fn, who: check(fn(X, Y), who)).items():
                peers[label] = Call(fn, X, Y)
    if available("torch"):
        with _reported("torch"):
            torch = _torch()
            tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
            tp = [torch.tensor(p, requires_grad=True) for p in ps]

            def torch_step(tX, tY, tp):
                h = tX
                for k in range(3):
                    h = h @ tp[2 * k] + tp[2 * k + 1]
                    if k < 2:
                        h = torch.relu(h)
                loss = torch.nn.functional.cross_entropy(h, tY) + decay * sum(
                    (tp[i] * tp[i]).sum() for i in (0, 2, 4))
                return (loss, *torch.autograd.grad(loss, tp))
            check([t.detach().numpy() for t in torch_step(tX, tY, tp)], "torch")
            peers["torch"] = Call(torch_step, tX, tY, tp)
    if available("autograd"):
        with _reported("autograd"):
            import autograd
            import autograd.numpy as anp

            def a_loss(params):
                W1, b1, W2, b2, W3, b3 = params
                h = anp.maximum(X @ W1 + b1, 0)
                h = anp.maximum(h @ W2 + b2, 0)
                z = h @ W3 + b3
                shifted = z - anp.max(z, axis=1, keepdims=True)
                logp = shifted - anp.log(anp.sum(anp.exp(shifted), axis=1, keepdims=True))
                return -anp.mean(logp[np.arange(n), Y]) + decay * (
                    anp.sum(W1 * W1) + anp.sum(W2 * W2) + anp.sum(W3 * W3))
            a_step = autograd.value_and_grad(a_loss)
            value, grads = a_step(list(ps))
            check([value, *grads], "autograd")
            peers["autograd"] = Call(a_step, list(ps))
    return peers


# -- the CS231n scalar function --------------------------------------------------------------------
def cs231n(fx: float, fy: float, expected) -> dict:
    """f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)^2) and both gradients."""
    peers = {}

    def check(result, who):
        _close(result, expected, 1e-12, 0, who)

    def f(x, y, sigmoid):
        return (x + sigmoid(y)) / (sigmoid(x) + (x + y) ** 2)

    if available("jax"):
        with _reported("jax"):
            jax = _jax()
            step = jax.jit(jax.value_and_grad(lambda x, y: f(x, y, jax.nn.sigmoid),
                                              argnums=(0, 1)))
            jx, jy = jax.numpy.asarray(fx), jax.numpy.asarray(fy)
            value, (dx, dy) = step(jx, jy)
            check([value, dx, dy], "jax")
            peers["jax jit"] = _jax_call(step, jx, jy)
    if available("pytensor"):
        with _reported("pytensor"):
            pytensor, pt = _pytensor()
            x, y = pt.dscalar("x"), pt.dscalar("y")
            out = f(x, y, pt.sigmoid)
            outputs = [out, *pytensor.grad(out, [x, y])]
            X, Y = np.array(fx), np.array(fy)
            for label, fn in _pytensor_functions(
                    [x, y], outputs, lambda fn, who: check(fn(X, Y), who)).items():
                peers[label + " 0-d"] = Call(fn, X, Y)
    if available("torch"):
        with _reported("torch"):
            torch = _torch()

            def torch_step(fx, fy):  # the leaves made from the floats at each call
                x = torch.tensor(fx, dtype=torch.float64, requires_grad=True)
                y = torch.tensor(fy, dtype=torch.float64, requires_grad=True)
                out = f(x, y, torch.sigmoid)
                return (out, *torch.autograd.grad(out, (x, y)))
            check([t.detach().numpy() for t in torch_step(fx, fy)], "torch")
            peers["torch"] = Call(torch_step, fx, fy)
    if available("autograd"):
        with _reported("autograd"):
            import autograd
            import autograd.numpy as anp
            a_f = lambda x, y: f(x, y, lambda v: 1 / (1 + anp.exp(-v)))  # noqa: E731
            a_step = autograd.value_and_grad(a_f, (0, 1))
            value, (dx, dy) = a_step(fx, fy)
            check([value, dx, dy], "autograd")
            peers["autograd float"] = Call(a_step, fx, fy)
    return peers


# -- the tanh chain with a scalar weight per layer -----------------------------------------------
def scalar_chain(X, W: list, expected, limit: float) -> dict:
    """loss = sum(h_D), h_k = tanh(w_k h_{k-1}), h_0 = x; loss and the gradients of x and of
    every w_k. A peer whose build exceeds ``limit`` seconds maps to None."""
    peers = {}

    def check(result, who):
        _close(result, expected, 1e-9, 1e-12, who)

    def loss(x, ws, tanh):
        h = x
        for w in ws:
            h = tanh(w * h)
        return h.sum()

    if available("jax"):
        with _reported("jax"):
            jax = _jax()
            step = jax.jit(jax.value_and_grad(lambda x, ws: loss(x, ws, jax.numpy.tanh),
                                              argnums=(0, 1)))
            jx, jw = jax.numpy.asarray(X), [jax.numpy.asarray(w) for w in W]

            def build():
                value, (dx, dws) = step(jx, jw)
                check([value, dx, *dws], "jax")
                return _jax_call(step, jx, jw)
            peers["jax jit"] = within(limit, build)
    if available("pytensor"):
        with _reported("pytensor"):
            pytensor, pt = _pytensor()
            x = pt.dvector("x")
            ws = [pt.dscalar(f"w{k}") for k in range(len(W))]
            out = loss(x, ws, pt.tanh)
            outputs = [out, *pytensor.grad(out, [x, *ws])]
            W0 = [np.asarray(w) for w in W]  # PyTensor takes 0-d arrays
            for label, mode in PYTENSOR_MODES.items():
                fn = within(limit, lambda: pytensor.function([x, *ws], outputs, mode=mode,
                                                             trust_input=True))
                if fn is not None:
                    check(fn(X, *W0), label)
                    fn = Call(fn, X, *W0)
                peers[label + " trust"] = fn
    if available("autograd"):
        with _reported("autograd"):
            import autograd
            import autograd.numpy as anp
            a_step = autograd.value_and_grad(lambda x, ws: loss(x, ws, anp.tanh), (0, 1))
            value, (dx, dws) = a_step(X, list(W))
            check([value, dx, *dws], "autograd")
            peers["autograd"] = Call(a_step, X, list(W))
    return peers


# -- the dense Hessian -----------------------------------------------------------------------------
def hessian(A, X, expected) -> dict:
    """The Hessian of sum(tanh(A x)) + x.x / 2 (benchmarks/common.py's tanh_hessian_problem)."""
    peers = {}

    def check(result, who):
        _close([result], [expected], 1e-10, 1e-12, who)

    if available("jax"):
        with _reported("jax"):
            jax = _jax()
            jnp = jax.numpy
            jA = jnp.asarray(A)
            H = jax.jit(jax.hessian(lambda x: jnp.sum(jnp.tanh(jA @ x)) + 0.5 * jnp.dot(x, x)))
            jX = jnp.asarray(X)
            check(H(jX), "jax")
            peers["jax jit"] = _jax_call(H, jX)
    if available("pytensor"):
        with _reported("pytensor"):
            pytensor, pt = _pytensor()
            from pytensor.gradient import grad, jacobian
            x = pt.dvector("x")
            z = pt.sum(pt.tanh(pt.constant(A) @ x)) + 0.5 * pt.dot(x, x)
            H = jacobian(grad(z, x), x, vectorize=True)  # no scan: one vectorised pass
            for label, fn in _pytensor_functions(
                    [x], H, lambda fn, who: check(fn(X), who)).items():
                peers[label] = Call(fn, X)
    if available("torch"):
        with _reported("torch"):
            torch = _torch()
            tA, tX = torch.from_numpy(A), torch.from_numpy(X)
            tH = torch.func.hessian(lambda x: torch.tanh(tA @ x).sum() + 0.5 * x.dot(x))
            check(tH(tX).numpy(), "torch")
            peers["torch func"] = Call(tH, tX)
    if available("autograd"):
        with _reported("autograd"):
            import autograd
            import autograd.numpy as anp
            aH = autograd.hessian(lambda x: anp.sum(anp.tanh(A @ x)) + 0.5 * anp.dot(x, x))
            check(aH(X), "autograd")
            peers["autograd"] = Call(aH, X)
    return peers


# -- compile time of a chain's gradient ------------------------------------------------------------
def compile_chain(depth: int, value, expected, limit: float, clock=time.perf_counter) -> dict:
    """Seconds (by ``clock``) to build and compile the gradient of sum(tanh(...tanh(x)))
    (depth deep) and call it once, per peer; None for a peer past ``limit`` seconds (wall)."""
    seconds = {}

    def chain(x, tanh):
        for _ in range(depth):
            x = tanh(x)
        return x.sum()

    def timed(who, build):
        start = clock()
        result = within(limit, build)
        if result is None:
            seconds[who] = None
            return
        elapsed = clock() - start
        _close(result, expected, 1e-12, 1e-14, who)
        seconds[who] = elapsed

    if available("jax"):
        with _reported("jax"):
            jax = _jax()
            jx = jax.numpy.asarray(value)
            timed("jax jit", lambda: jax.jit(jax.value_and_grad(
                lambda v: chain(v, jax.numpy.tanh)))(jx))
    if available("pytensor"):
        with _reported("pytensor"):
            pytensor, pt = _pytensor()
            for label, mode in PYTENSOR_MODES.items():
                def build(mode=mode):
                    x = pt.dvector("x")
                    out = chain(x, pt.tanh)
                    return pytensor.function([x], [out, pytensor.grad(out, x)], mode=mode)(value)
                timed(label, build)
    return seconds
