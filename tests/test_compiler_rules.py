"""Every rewrite rule of the compiler's table fires on its pattern and leaves values unchanged."""
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.compiler import DEFAULT_PASSES, RULES
from graphc.ops.broadcast import broadcast_to, sum_to
from graphc.ops.shape import reshape_like

RNG = np.random.default_rng(0)
POSITIVE = RNG.uniform(0.5, 2.0, (3, 4))
SIGNED = RNG.uniform(-2.0, 2.0, (3, 4))
LARGE = RNG.uniform(-2.0, 2.0, (16, 20))  # (rules that rewrite large arrays only)


def _unary(build, value=SIGNED):
    def case():
        g = gc.Graph()
        x = g.placeholder("x", value.shape)
        return [x], build(x), {x: value}
    return case


def _binary(build, a=SIGNED, b=POSITIVE):
    def case():
        g = gc.Graph()
        x = g.placeholder("x", a.shape)
        y = g.placeholder("y", b.shape)
        return [x, y], build(x, y), {x: a, y: b}
    return case


CASES = {
    "neutral_operand": [_unary(lambda x: x * 1.0), _unary(lambda x: 1.0 * x),
                        _unary(lambda x: 0.0 + x), _unary(lambda x: x - 0),
                        _unary(lambda x: x / 1)],
    "zero_sub": _unary(lambda x: 0.0 - x),
    "mul_by_zero": _unary(lambda x: gc.exp(x) * 0.0),
    "mul_by_minus_one": _unary(lambda x: -1.0 * gc.exp(x)),
    "neg_neg": _unary(lambda x: -(-gc.exp(x))),
    "inverse_pair": [_unary(lambda x: gc.exp(gc.log(x)), POSITIVE),
                     _unary(lambda x: gc.log(gc.exp(x)))],
    "neg_sub": _binary(lambda x, y: -(x - y)),
    "add_neg": _binary(lambda x, y: x + (-y)),
    "sub_neg": _binary(lambda x, y: x - (-y)),
    "lift_neg": _binary(lambda x, y: gc.exp(-x * y)),
    "sub_self": _unary(lambda x: gc.exp(x) - gc.exp(x)),
    "mul_self": _unary(lambda x: gc.sin(x) * gc.sin(x)),
    "scalar_constant": _unary(lambda x: x * np.full((3, 4), 2.5)),
    "add_twice": _binary(lambda x, y: (x + y) + y),
    "scalar_factors": _unary(lambda x: 2.0 * (3.0 * x)),
    "mask_to_mul": _binary(lambda x, y: gc.where(x > 0, y, 0.0)),
    "pow_one": _unary(lambda x: x ** 1),
    "pow_const": [_unary(lambda x: x ** np.array(2.0)), _unary(lambda x: x ** np.array(0.5),
                                                             POSITIVE)],
    "transpose_transpose": _unary(lambda x: gc.transpose(gc.transpose(x)), SIGNED),
    "reshape_reshape": _unary(lambda x: gc.reshape(gc.reshape(x, (12,)), (2, 6))),
    "reshape_like_noop": _binary(lambda x, y: reshape_like(x, y)),
    "broadcast_noop": _unary(lambda x: broadcast_to(x, (3, 4))),
    "broadcast_broadcast": _unary(lambda x: broadcast_to(broadcast_to(x, (2, 3, 4)),
                                                         (5, 2, 3, 4))),
    "sum_to_noop": _binary(lambda x, y: sum_to(x, y)),
    "sum_nothing": _unary(lambda x: gc.sum(x, axis=())),
    "sum_of_broadcast": _unary(lambda x: gc.sum(broadcast_to(x, (5, 3, 4)), axis=0)),
    "sum_of_products": [_binary(lambda x, y: gc.sum(x * y), LARGE, LARGE[::-1]),
                        _unary(lambda x: gc.sum(x * x), LARGE),
                        _unary(lambda x: gc.sum(gc.square(x), keepdims=True), LARGE),
                        _binary(lambda x, y: gc.mean((x - y) ** 2), LARGE, LARGE.T.copy().T),
                        _binary(lambda x, y: gc.mean(x * y, keepdims=True), LARGE, -LARGE)],
    "squeeze_expand": _unary(lambda x: gc.squeeze(gc.expand_dims(x, 0), 0)),
    "expand_squeeze": _unary(lambda x: gc.expand_dims(gc.squeeze(x, 1), 1),
                             SIGNED[:, :1]),
    "cast_same": _unary(lambda x: gc.cast(x, "float64")),
    "stop_gradient_identity": _unary(lambda x: gc.stop_gradient(x) * 2.0),
    "fill_like": _binary(lambda x, y: gc.ones_like(x) * y),
    "matmul_identity": _unary(lambda x: gc.matmul(np.eye(3), x)),
    "batched_matvec": _binary(lambda x, y: gc.squeeze(gc.matmul(y, gc.expand_dims(x, -1)), -1),
                              RNG.standard_normal((5, 4))),
    "fuse_softmax": _unary(lambda x: [gc.log_softmax(x), gc.softmax(x)]),
}


def test_every_active_rule_has_a_case():
    active = {r.name for r in RULES if r.active}
    assert active <= set(CASES), f"rules without a test case: {sorted(active - set(CASES))}"


def test_rule_names_are_unique_and_documented():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert all(r.doc for r in RULES)
    table = (Path(__file__).parent.parent / "docs" / "compiler.md").read_text()
    rows = {line.split("|")[1].strip(" `") for line in table.splitlines()
            if line.startswith("| `") and line.count("|") == 5}  # rule | stage | ops | doc
    assert rows == set(names), "docs/compiler.md's rule table is out of date"


def _all_cases():
    for name, cases in sorted(CASES.items()):
        cases = cases if isinstance(cases, list) else [cases]
        yield from (pytest.param(name, case, id=f"{name}-{k}") for k, case in enumerate(cases))


@pytest.mark.parametrize("name, case", list(_all_cases()))
def test_rule_fires_and_keeps_values(name, case):
    rule = next(r for r in RULES if r.name == name)
    if not rule.active:
        pytest.skip(f"ops {rule.ops + rule.requires} not all registered")
    inputs, outputs, feed = case()
    stages = DEFAULT_PASSES + ((rule.stage,) if rule.stage not in DEFAULT_PASSES else ())
    f = gc.function(inputs, outputs, passes=stages)
    assert f.stats["rules"].get(name, 0) >= 1, (name, f.stats["rules"], f.source)
    got = f(*[feed[x] for x in inputs])
    want = inputs[0].graph.run(outputs, feed)
    for a, b in zip(got if isinstance(got, list) else [got],
                    want if isinstance(want, list) else [want]):
        assert np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _same_but_zero_signs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per element: complex values equal part by part, any NaN matching any NaN and a zero
    part matching a zero of either sign (the one difference simplify allows)."""
    a, b = (np.ascontiguousarray(v).view(v.real.dtype).reshape(-1, 2) for v in (a, b))
    return ((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=1)


@pytest.mark.parametrize("backend", ["source", "vm"])
@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_neutral_and_sign_rules_keep_numpys_complex_values(dtype, backend):
    """NumPy's complex * and / are not part by part ((inf + 0j) * 1 is inf + nanj, a zero
    divisor has its own branch): x * 1, x / 1, x * -1 and x / -y keep g.run's values."""
    parts = [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf, np.nan, 1e30, 1e-40]
    values = np.array([complex(a, b) for a in parts for b in parts], dtype=dtype)
    xs, ys = np.repeat(values, values.size), np.tile(values, values.size)
    g = gc.Graph()
    x, y = g.placeholder("x", (None,), dtype=dtype), g.placeholder("y", (None,), dtype=dtype)
    one, minus_one = g.constant(np.ones((), dtype)), g.constant(-np.ones((), dtype))
    outs = {"x*1": x * 1, "1.0*x": 1.0 * x, "x*one": x * one, "x/1": x / 1, "x/one": x / one,
            "x*-1": x * -1, "minus_one*x": minus_one * x, "x+0": x + 0, "0.0+x": 0.0 + x,
            "x-0": x - 0, "0-x": 0 - x, "--x": -(-x), "-(x-y)": -(x - y), "x+-y": x + (-y),
            "x--y": x - (-y), "-x*y": (-x) * y, "-x*-y": (-x) * (-y), "-x/y": (-x) / y,
            "x/-y": x / (-y), "-x/-y": (-x) / (-y)}
    with np.errstate(all="ignore"):  # (the oracle: NumPy on the graph as built)
        by_hand = {"x*1": xs * 1, "x/1": xs / 1, "x*-1": xs * -1, "x/-y": xs / -ys,
                   "-x/-y": -xs / -ys}
    want = g.run(outs, {x: xs, y: ys})
    for key, value in by_hand.items():
        assert value.tobytes() == want[key].tobytes(), key
    assert not _same_but_zero_signs(want["x*1"], xs).all()  # (inf + 0j) * 1 is not x
    f = gc.function([x, y], outs, backend=backend)
    assert f.stats["rules"].get("neutral_operand", 0) >= 3  # the + and - cases still fire
    got = f(xs, ys)
    for key in outs:
        assert got[key].dtype == want[key].dtype, key
        bad = ~_same_but_zero_signs(got[key], want[key])
        assert not bad.any(), (key, xs[bad][:3], ys[bad][:3], got[key][bad][:3])
