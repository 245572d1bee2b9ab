"""gc.scipy_objective: fun/jac/hess/hessp over one flat vector, checked against scikit-learn's
LogisticRegression and against finite differences of the objective itself."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

minimize = pytest.importorskip("scipy.optimize").minimize

METHODS = ["trust-ncg", "trust-krylov", "Newton-CG", "L-BFGS-B", "BFGS", "trust-exact"]
# |gradient| < 1e-8 puts the iterate within 1e-8 of the optimum here (the Hessian's smallest
# eigenvalue is at least 1, from the penalty); tighter, the trust-region methods report a loss
# of precision rather than success.
TIGHT = {"trust-ncg": {"gtol": 1e-8}, "trust-krylov": {"gtol": 1e-8},
         "trust-exact": {"gtol": 1e-8}, "Newton-CG": {"xtol": 1e-12},
         "L-BFGS-B": {"gtol": 1e-10, "ftol": 1e-15}, "BFGS": {"gtol": 1e-7}}


def logistic_problem(n=150, d=4, C=0.5, seed=0):
    rng = np.random.default_rng(seed)
    X_data = rng.standard_normal((n, d)) * np.array([1.0, 2.0, 0.5, 1.0])[:d]
    logits = X_data @ rng.standard_normal(d) + 0.7
    y_data = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    g = gc.Graph()
    X = g.placeholder("X", (None, d))
    y = g.placeholder("y", (None,))
    w = g.variable("w", np.zeros(d))
    b = g.variable("b", 0.0)
    # scikit-learn's L2 objective: 1/2 |w|^2 + C sum_i logloss_i, the intercept unpenalised.
    loss = C * gc.sum(gc.sigmoid_cross_entropy(X @ w + b, y)) + 0.5 * gc.sum(w * w)
    return (X_data, y_data), (X, y, w, b, loss)


@pytest.fixture(scope="module")
def sklearn_solution():
    sklearn = pytest.importorskip("sklearn.linear_model")
    (X_data, y_data), _ = logistic_problem()
    clf = sklearn.LogisticRegression(C=0.5, tol=1e-12, max_iter=1000,
                                     solver="newton-cholesky").fit(X_data, y_data)
    return clf.coef_[0], clf.intercept_[0]


@pytest.mark.parametrize("method", METHODS)
def test_logistic_regression_matches_scikit_learn(method, sklearn_solution):
    (X_data, y_data), (X, y, w, b, loss) = logistic_problem()
    obj = gc.scipy_objective(loss, [w, b], feed={X: X_data, "y": y_data})
    kwargs = {"hess": obj.hess} if method == "trust-exact" else \
        {"hessp": obj.hessp} if method in ("trust-ncg", "trust-krylov", "Newton-CG") else {}
    result = minimize(obj.fun, obj.x0, jac=obj.jac, method=method, options=TIGHT[method],
                      **kwargs)
    assert result.success, result.message
    coef, intercept = sklearn_solution
    np.testing.assert_allclose(result.x, np.r_[coef, intercept], atol=1e-6, rtol=0)
    np.testing.assert_array_equal(w.value, np.zeros(4))  # SciPy's iterates were only fed
    obj.assign(result.x)
    np.testing.assert_allclose(w.value, coef, atol=1e-6)
    assert b.value.shape == () and abs(b.value - intercept) < 1e-6


def test_minimize_picks_hess_or_hessp_and_assigns(sklearn_solution):
    (X_data, y_data), (X, y, w, b, loss) = logistic_problem()
    obj = gc.scipy_objective(loss, [w, b], feed={X: X_data, y: y_data})
    for method in ("trust-exact", "trust-krylov", "L-BFGS-B"):
        w.value, b.value = np.zeros(4), 0.0
        result = obj.minimize(method, options=TIGHT[method])
        assert result.success
        np.testing.assert_allclose(w.value, sklearn_solution[0], atol=1e-6)
    assert (obj._hess is not None) and (obj._hessp is not None)


def central_differences(f, x, eps=1e-5):
    """d f / d x_k by central differences, stacked along the last axis."""
    return np.stack([(np.asarray(f(x + eps * e)) - np.asarray(f(x - eps * e))) / (2 * eps)
                     for e in np.eye(x.size)], axis=-1)


def several_variables(dtype="float64"):
    """A non-quadratic loss coupling three variables of shapes (3, 2), (2,) and ()."""
    rng = np.random.default_rng(1)
    g = gc.Graph()
    x = g.placeholder("x", (None, 3), dtype)
    W = g.variable("W", rng.standard_normal((3, 2)), dtype)
    b = g.variable("b", rng.standard_normal(2), dtype)
    s = g.variable("s", 0.3, dtype)
    h = gc.tanh(x @ W + b)
    loss = gc.mean(gc.logsumexp(h * s, axis=-1)) + gc.sum(W * W) * s * s + gc.sum(b ** 3)
    return rng.standard_normal((5, 3)), x, (W, b, s), loss


def test_several_variables_pack_in_c_order_and_derivatives_agree_with_differences():
    x_data, x, (W, b, s), loss = several_variables()
    obj = gc.scipy_objective(loss, [W, b, s], feed={x: x_data})
    assert obj.size == 9 and obj.x0.dtype == np.float64
    np.testing.assert_array_equal(obj.x0, np.r_[W.value.ravel(), b.value, s.value])
    point = obj.x0 + 0.1 * np.arange(9)
    W2, b2, s2 = obj.unpack(point)
    assert W2.shape == (3, 2) and b2.shape == (2,) and s2.shape == ()
    np.testing.assert_array_equal(W2, point[:6].reshape(3, 2))
    # the loss at a point is the graph's loss with the variables set to the unpacked values
    want = loss.eval({x: x_data, W: W2, b: b2, s: s2})
    assert obj.fun(point) == pytest.approx(float(want), rel=1e-12)
    np.testing.assert_allclose(obj.jac(point), central_differences(obj.fun, point), atol=1e-7)
    H = obj.hess(point)
    np.testing.assert_allclose(H, central_differences(obj.jac, point), atol=1e-7)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    assert np.abs(H[:6, 6:]).max() > 0.1  # cross terms between variables exist and are right
    p = np.random.default_rng(2).standard_normal(9)
    np.testing.assert_allclose(obj.hessp(point, p), H @ p, atol=1e-12)


def test_one_variable_hessp_is_the_hessian_times_p():
    x_data, x, (W, b, s), loss = several_variables()
    obj = gc.scipy_objective(loss, W, feed={"x": x_data})
    p = np.linspace(-1, 1, 6)
    np.testing.assert_allclose(obj.hessp(obj.x0, p), obj.hess(obj.x0) @ p, atol=1e-12)


def test_float32_variables_keep_their_dtype_and_scipy_sees_float64():
    x_data, x, (W, b, s), loss = several_variables("float32")
    obj = gc.scipy_objective(loss, [W, b, s], feed={x: x_data})
    assert [a.dtype for a in obj.unpack(obj.x0)] == [np.float32] * 3
    assert obj.jac(obj.x0).dtype == np.float64 and obj.hess(obj.x0).dtype == np.float64
    obj.assign(obj.x0 + 1)
    assert W.value.dtype == np.float32


def test_fun_and_jac_at_the_same_point_run_once(monkeypatch):
    (X_data, y_data), (X, y, w, b, loss) = logistic_problem()
    obj = gc.scipy_objective(loss, [w, b], feed={X: X_data, y: y_data})
    calls = []
    compiled = obj._fun_jac
    monkeypatch.setattr(obj, "_fun_jac", lambda *a: calls.append(1) or compiled(*a))
    x = obj.x0 + 0.5
    obj.fun(x), obj.jac(x.copy()), obj.fun_and_jac(x)
    assert len(calls) == 1
    obj.jac(x + 1)
    assert len(calls) == 2


def test_bad_arguments_are_graphc_errors():
    (X_data, y_data), (X, y, w, b, loss) = logistic_problem()
    with pytest.raises(gc.ShapeError, match="must be a scalar"):
        gc.scipy_objective(X @ w, [w], feed={X: X_data})
    with pytest.raises(gc.GraphcError, match="must be variables"):
        gc.scipy_objective(loss, [X])
    with pytest.raises(gc.GraphcError, match="given twice"):
        gc.scipy_objective(loss, [w, w], feed={X: X_data, y: y_data})
    with pytest.raises(gc.FeedError, match="no node of that name"):
        gc.scipy_objective(loss, [w, b], feed={"X": X_data, "Y": y_data})
    with pytest.raises(gc.GraphcError, match="both optimised and fed"):
        gc.scipy_objective(loss, [w, b], feed={X: X_data, y: y_data, w: np.ones(4)})
    with pytest.raises(gc.MissingFeedError, match="'y'"):
        gc.scipy_objective(loss, [w, b], feed={X: X_data})
    obj = gc.scipy_objective(loss, [w, b], feed={X: X_data, y: y_data})
    with pytest.raises(gc.ShapeError, match="has 5 entries"):
        obj.fun(np.zeros(4))
