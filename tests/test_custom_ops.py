"""Your own ops: gc.define_op with the built-in contract, gc.testing.check_op, the errors for
broken rules, saving and loading graphs that use them; composites and custom gradients."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.custom import USER_OPS
from graphc.ops.attrs import integer
from graphc.ops.registry import REGISTRY, Case
from graphc.testing import OpCheckError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_ops():
    """Ops a test defines are removed again, so the registry test never sees them."""
    before = set(REGISTRY)
    yield
    for name in set(REGISTRY) - before:
        del REGISTRY[name]
        USER_OPS.pop(name, None)


def _softclip_infer(x, *, power=1):
    return x.shape, x.dtype, {"power": power}  # the attrs in full: the kernel sees a default


def _softclip_kernel(x, *, power=1):
    return np.tanh(x) ** power


def _softclip_bprop(node, g, i):
    (x,) = node.inputs
    power = node.attrs["power"]
    t = gc.tanh(x)
    return g * power * t ** (power - 1) * (1 - t * t)


def define_softclip(**overrides):
    spec = dict(infer=_softclip_infer, kernel=_softclip_kernel, bprop=_softclip_bprop,
                attrs={"power": integer(1, 5)},
                reference=lambda x, *, power=1: np.tanh(x) ** power,
                cases=[Case(((3,),)), Case(((2, 3),), {"power": 3})])
    spec.update(overrides)
    return gc.define_op(overrides.pop("name", "test_softclip"), **spec)


# -- define_op and check_op ----------------------------------------------------------------------
def test_a_user_op_works_like_a_builtin(fresh_ops):
    softclip = define_softclip()
    assert softclip.op == "test_softclip" and softclip.version == 1
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    y = softclip(x, power=2, name="y")
    X = np.linspace(-2, 2, 6).reshape(2, 3)
    np.testing.assert_allclose(g.run(y, {x: X}), np.tanh(X) ** 2, rtol=1e-14)
    f = gc.function([x], [y, gc.grad(gc.sum(y), x)])
    value, dx = f(X)
    np.testing.assert_allclose(value, np.tanh(X) ** 2, rtol=1e-14)
    np.testing.assert_allclose(dx, 2 * np.tanh(X) * (1 - np.tanh(X) ** 2), rtol=1e-12)
    J = g.run(gc.jacobian(gc.sum(y, axis=1), x, mode="fwd"), {x: X})
    assert J.shape == (2, 2, 3)
    assert gc.testing.check_op(softclip) == {name: 2 for name in (
        "check_kernel", "check_derivatives", "check_batched_cotangents", "check_forward",
        "check_jacfwd")}
    with pytest.raises(gc.ShapeError, match="attr 'power'"):
        softclip(x, power=9)


def test_check_op_catches_a_wrong_gradient(fresh_ops):
    wrong = define_softclip(bprop=lambda node, g, i: g * 2 * (1 - gc.tanh(node.inputs[0]) ** 2))
    with pytest.raises(OpCheckError, match="order-1 derivative for input 0 is wrong"):
        gc.testing.check_op(wrong)


def test_check_op_catches_a_wrong_reference_and_missing_cases(fresh_ops):
    define_softclip(reference=lambda x, *, power=1: np.tanh(x) ** power + 1e-6)
    with pytest.raises(OpCheckError, match="kernel vs reference"):
        gc.testing.check_op("test_softclip")
    define_softclip(cases=())
    with pytest.raises(gc.GraphcError, match="has no test cases"):
        gc.testing.check_op("test_softclip")


def test_a_kernel_that_breaks_its_rule_fails_naming_the_node(fresh_ops):
    longer = define_softclip(kernel=lambda x, *, power=1: np.concatenate([x, x]))
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    y = longer(x, name="clipped")
    for run in (lambda: g.run(y, {x: np.ones(3)}), lambda: gc.function([x], y)(np.ones(3))):
        with pytest.raises(gc.ShapeError, match=r"test_softclip node 'clipped' \(built at "
                           r".*test_custom_ops.py:\d+\).*returned shape \(6,\).*says \(3,\)"):
            run()
    single = define_softclip(kernel=lambda x, *, power=1: np.tanh(x).astype(np.float32))
    y = single(x, name="single")
    for run in (lambda: g.run(y, {x: np.ones(3)}), lambda: gc.function([x], y)(np.ones(3))):
        with pytest.raises(gc.DTypeError, match="'single'.*returned dtype float32.*float64"):
            run()
    with pytest.raises(gc.DTypeError, match="returned dtype float32"):
        gc.testing.check_op(single)  # check_op reports it too


def test_broken_rules_give_clear_errors(fresh_ops):
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    as_array = define_softclip(bprop=lambda node, g, i: np.ones(3))
    y = as_array(x, name="y")
    with pytest.raises(gc.GraphcError, match=r"bprop of op 'test_softclip' returned a ndarray "
                       r"for input 0 of test_softclip node 'y'.*returns a graphc node"):
        gc.grad(gc.sum(y), x)
    unknown = define_softclip(bprop=lambda node, g, i: gc.graph.apply("no_such_op", [g]))
    y = unknown(x, name="y2")
    with pytest.raises(gc.GraphcError, match=r"builds an unknown op 'no_such_op'.*registered"):
        gc.grad(gc.sum(y), x)
    shaped = define_softclip(bprop=lambda node, g, i: gc.concatenate([g, g]))
    y = shaped(x, name="y3")
    with pytest.raises(gc.ShapeError, match=r"returned shape \(6,\) for input 0"):
        gc.grad(gc.sum(y), x)
    with pytest.raises(gc.ShapeError, match=r"jvp of op 'test_softclip' returned shape \(6,\)"):
        jvp_bad = define_softclip(jvp=lambda node, ts: gc.concatenate([ts[0], ts[0]]))
        gc.jvp(jvp_bad(x), x, np.ones(3))


def test_definitions_are_checked(fresh_ops):
    with pytest.raises(gc.GraphcError, match="'sin' is a built-in op"):
        gc.define_op("sin", infer=lambda x: (x.shape, x.dtype), kernel=np.sin)
    with pytest.raises(gc.GraphcError, match="infer takes attrs"):
        define_softclip(attrs={})
    with pytest.raises(gc.GraphcError, match="version must be a positive integer"):
        define_softclip(version=0)
    with pytest.raises(gc.GraphcError, match="identifier"):
        gc.define_op("two words", infer=lambda x: (x.shape, x.dtype), kernel=np.sin)
    define_softclip()
    define_softclip(version=2)  # a user op may be defined again (a notebook cell re-run)
    assert USER_OPS["test_softclip"] == 2


# -- saving graphs that use them --------------------------------------------------------------------
def test_a_graph_with_a_user_op_saves_it_by_name_and_version(fresh_ops, tmp_path):
    softclip = define_softclip()
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    softclip(x, power=2, name="y")
    text = gc.to_json(g)
    assert json.loads(text)["ops"] == {"test_softclip": {"version": 1}}
    X = np.array([0.5, -1.0, 2.0])
    loaded = gc.from_json(text, ops=[softclip])
    np.testing.assert_allclose(loaded.run(loaded["y"], {"x": X}), np.tanh(X) ** 2, rtol=1e-14)
    gc.save(g, tmp_path / "g.json")
    again = gc.load(tmp_path / "g.json", ops=["test_softclip"])
    assert again.run(again["y"], {"x": X}).shape == (3,)

    newer = define_softclip(version=2)
    with pytest.raises(gc.GraphFormatError, match="version 1 of the op 'test_softclip', but "
                       "version 2 is registered"):
        gc.from_json(text)
    with pytest.raises(gc.GraphFormatError, match="this builder of 'test_softclip' is version 1"):
        gc.from_json(text.replace('"version": 1}', '"version": 2}'), ops=[softclip])
    assert gc.from_json(text.replace('"version": 1}', '"version": 2}'), ops=[newer])

    del REGISTRY["test_softclip"], USER_OPS["test_softclip"]
    with pytest.raises(gc.GraphFormatError, match=r"uses the op 'test_softclip' \(version 1\), "
                       r"which is not registered.*gc.define_op.*ops="):
        gc.from_json(text)
    doc = json.loads(text)
    del doc["ops"]  # a hand-written file without "ops": the node itself names the op
    with pytest.raises(gc.GraphFormatError, match="unknown op 'test_softclip'.*gc.define_op"):
        gc.from_json(json.dumps(doc))
    with pytest.raises(gc.GraphFormatError, match="is not registered"):
        gc.from_json(gc.to_json(gc.Graph()), ops=["test_softclip"])


def test_an_op_used_only_in_a_composite_body_is_recorded(fresh_ops):
    softclip = define_softclip()
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    y = gc.composite(lambda a: softclip(a, power=3) * 2.0, name="scaled")(x)
    text = gc.to_json(g)
    assert json.loads(text)["ops"] == {"test_softclip": {"version": 1}}
    X = np.array([0.1, 0.5, -2.0])
    loaded = gc.from_json(text, ops=[softclip])
    np.testing.assert_allclose(loaded.run(loaded[y.name], {"x": X}), 2 * np.tanh(X) ** 3)
    # uncompiled, the composite runs its body, user kernel (and its output check) included
    np.testing.assert_allclose(gc.function([x], y, optimize=False)(X), 2 * np.tanh(X) ** 3)
    del REGISTRY["test_softclip"], USER_OPS["test_softclip"]
    with pytest.raises(gc.GraphFormatError, match="'test_softclip'.*not registered"):
        gc.from_json(text)


def test_the_ops_entry_is_validated():
    base = {"format": "graphc", "version": 1, "nodes": []}
    for bad, message in [({"sin": {"version": 1}}, "built-in op"),
                         ({"x": {"version": "1"}}, "must be"), ([], "must be an object")]:
        with pytest.raises(gc.GraphFormatError, match=message):
            gc.from_json(json.dumps({**base, "ops": bad}))


# -- composites -----------------------------------------------------------------------------------
def _problem():
    rng = np.random.default_rng(4)
    g = gc.Graph()
    x = g.placeholder("x", (4,))
    W = g.variable("W", rng.standard_normal((4, 3)))
    return g, x, W, rng.standard_normal(4)


def dense(x, W):
    return gc.tanh(x @ W) * 2.0


def test_a_composite_is_one_node_that_runs_differentiates_and_compiles():
    g, x, W, X = _problem()
    layer = gc.composite(dense)
    y = layer(x, W)
    assert y.op == "composite" and y.attrs["label"] == "dense" and len(g) == 3
    assert layer(x, W).attrs["body"] == y.attrs["body"]  # traced once, shared
    want = 2 * np.tanh(X @ W.value)
    np.testing.assert_allclose(g.run(y, {x: X}), want, rtol=1e-14)
    loss = gc.sum(y ** 2)
    dW = gc.grad(loss, W)
    d = 2 * want * 2 * (1 - np.tanh(X @ W.value) ** 2)
    np.testing.assert_allclose(g.run(dW, {x: X}), np.outer(X, d), rtol=1e-12)
    f = gc.function([x], [y, dW])
    assert "composite" not in f.stats["ops"] and f.stats["rules"]["inline:dense"] == 1
    for a, b in zip(f(X), g.run([y, dW], {x: X})):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    gc.check_gradients(loss, [x, W], {x: X})
    H = g.run(gc.hessian(gc.sum(layer(x, W)), x, mode="fwd"), {x: X})
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    assert gc.jacobian(y, x, mode="fwd").shape == (3, 4)
    np.testing.assert_allclose(g.run(gc.jacobian(y, x, mode="fwd"), {x: X}),
                               g.run(gc.jacobian(y, x, mode="rev"), {x: X}), rtol=1e-12)


def test_composites_nest_and_repeat_arguments():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    square = gc.composite(lambda a, b: a * b, name="square")
    twice = gc.composite(lambda a: square(a, a) + square(a, 1.0), name="twice")
    y = twice(x)
    X = np.array([0.5, -1.0, 3.0])
    np.testing.assert_allclose(g.run(y, {x: X}), X * X + X)
    np.testing.assert_allclose(g.run(gc.grad(gc.sum(y), x), {x: X}), 2 * X + 1)
    np.testing.assert_allclose(g.run(gc.jvp(y, x, np.ones(3)), {x: X}), 2 * X + 1)
    f = gc.function([x], y)
    assert "composite" not in f.stats["ops"]
    np.testing.assert_allclose(f(X), X * X + X)


def test_dot_draws_one_box_or_the_body():
    g, x, W, _ = _problem()
    y = gc.composite(dense)(x, W)
    closed, opened = gc.to_dot(y), gc.to_dot(y, expand=True)
    assert "composite dense" in closed and "tanh" not in closed
    assert 'cluster_n2' in opened and "tanh" in opened and "matmul" in opened
    assert f"n0 -> n{y.id}_0" in opened  # the composite's input wired to the body's argument


def softplus_with_stable_gradient(x):
    # written so that no build-time stabilisation recognises it: its own gradient overflows
    return gc.log(gc.exp(x) + gc.ones_like(x))


def test_custom_gradients_replace_the_body_in_both_modes():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    plain = gc.composite(softplus_with_stable_gradient)
    stable = gc.composite(softplus_with_stable_gradient,
                          grad=lambda inputs, output, g: [g * gc.sigmoid(inputs[0])])
    X = np.array([-3.0, 1.0, 1000.0])
    with np.errstate(all="ignore"):
        assert np.isnan(g.run(gc.grad(gc.sum(plain(x)), x), {x: X})[2])  # inf / inf
    dx = g.run(gc.grad(gc.sum(stable(x)), x), {x: X})
    np.testing.assert_allclose(dx, 1 / (1 + np.exp(-X)), rtol=1e-14)
    np.testing.assert_allclose(g.run(gc.jvp(stable(x), x, np.ones(3)), {x: X}), dx,
                               rtol=1e-14)
    H = g.run(gc.hessian(gc.sum(stable(x)), x), {x: X[:2].tolist() + [0.0]})
    s = 1 / (1 + np.exp(-np.array([-3.0, 1.0, 0.0])))
    np.testing.assert_allclose(H, np.diag(s * (1 - s)), rtol=1e-12)

    @gc.custom_gradient
    def straight_through(v):
        return gc.sign(v), lambda g: [g]
    y = straight_through(x)
    np.testing.assert_array_equal(g.run(y, {x: X}), np.sign(X))
    np.testing.assert_array_equal(g.run(gc.grad(gc.sum(y * 3.0), x), {x: X}), 3 * np.ones(3))
    J = g.run(gc.jacobian(y, x), {x: X})  # batched cotangents through the traced gradient
    np.testing.assert_array_equal(J, np.eye(3))


def test_composite_errors_say_what_is_wrong():
    g, x, W, _ = _problem()
    with pytest.raises(gc.GraphcError, match="may use only its arguments"):
        gc.composite(lambda a: a @ W)(x)
    with pytest.raises(gc.GraphcError, match="must return one node"):
        gc.composite(lambda a: [a, a])(x)
    with pytest.raises(gc.GraphcError, match="gave 2 gradients for 1 inputs"):
        gc.composite(gc.sin, grad=lambda i, o, c: [c, c])(x)
    with pytest.raises(gc.GraphcError, match=r"must return \(output, grad\)"):
        gc.custom_gradient(gc.sin)(x)
    with pytest.raises(gc.GraphcError, match="is not a registered op.*check_gradients"):
        gc.testing.check_op(gc.composite(dense))
    layer = gc.composite(dense)
    y = layer(x, W)
    with pytest.raises(gc.ShapeError, match=r"input 0 is \(5,\) float64, its body takes \(4,\)"):
        gc.graph.apply("composite", [g.placeholder("z", (5,)), W], dict(y.attrs))


def test_composites_load_and_run_with_no_user_code(tmp_path):
    g, x, W, X = _problem()
    stable = gc.composite(softplus_with_stable_gradient,
                          grad=lambda inputs, output, g: [g * gc.sigmoid(inputs[0])])
    y = gc.sum(stable(gc.composite(dense)(x, W)), name="y")
    gc.save(g, tmp_path / "g.json")
    want = g.run([y, gc.grad(y, x)], {x: X})
    loaded = gc.load(tmp_path / "g.json")
    assert [n.op for n in loaded.nodes].count("composite") == 2
    assert gc.to_json(loaded) == gc.to_json(gc.from_json(gc.to_json(loaded)))
    np.save(tmp_path / "x.npy", X)
    script = textwrap.dedent(f"""
        import json, numpy as np, graphc as gc
        g = gc.load({str(tmp_path / 'g.json')!r})
        x, y = g["x"], g["y"]
        X = np.load({str(tmp_path / 'x.npy')!r})
        value, dx = g.run([y, gc.grad(y, x)], {{x: X}})
        f = gc.function([x], [y, gc.grad(y, x)])
        print(json.dumps([float(value), dx.tolist(), f(X)[1].tolist()]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    value, dx, compiled = json.loads(done.stdout)
    assert value == pytest.approx(float(want[0]), rel=1e-14)
    np.testing.assert_allclose(dx, want[1], rtol=1e-12)
    np.testing.assert_allclose(compiled, want[1], rtol=1e-12)


def test_malformed_bodies_are_format_errors():
    g, x, W, _ = _problem()
    gc.composite(dense)(x, W)
    doc = json.loads(gc.to_json(g))
    body = doc["nodes"][2]["attrs"]["body"]["$graph"]
    for change, message in [(lambda b: b.update(inputs=[1]), "every placeholder"),
                            (lambda b: b.update(outputs=[99]), "not the id"),
                            (lambda b: b["nodes"][3].update(op="nope"), "unknown op 'nope'"),
                            (lambda b: b.pop("outputs"), "exactly")]:
        broken = json.loads(json.dumps(doc))
        change(broken["nodes"][2]["attrs"]["body"]["$graph"])
        with pytest.raises(gc.GraphFormatError, match=message):
            gc.from_json(json.dumps(broken))
    assert body["inputs"] == [0, 1]
