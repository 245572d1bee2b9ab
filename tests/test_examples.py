"""Smoke tests of examples/: each script runs (with small settings) and prints what it should."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, tmp_path: Path, *args: str) -> str:
    """Run ``examples/name`` as a user would, in a fresh interpreter; return its stdout."""
    result = subprocess.run([sys.executable, str(EXAMPLES / name), "--out", str(tmp_path), *args],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def number(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not found in:\n{text}"
    return float(match.group(1))


def assert_plots(stem: Path) -> None:
    """matplotlib wrote the figure as PNG and as SVG."""
    assert stem.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = stem.with_suffix(".svg").read_text()
    assert "<svg" in svg and "Matplotlib" in svg


def test_quickstart(tmp_path):
    out = run_example("quickstart.py", tmp_path, "--steps", "50")
    assert number(r"finite differences: (\S+)", out) < 1e-6
    first, last = (float(v) for v in re.search(r"loss (\S+) -> (\S+) after", out).groups())
    assert last < first / 10
    assert "gives the same loss: True" in out
    assert (tmp_path / "quickstart.dot").read_text().startswith("digraph")
    assert '"format": "graphc"' in (tmp_path / "quickstart.json").read_text()


def test_quickstart_default_output_folder(tmp_path):
    """With no flags (as README runs it), the outputs go to ./out."""
    result = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "quickstart.json").exists()


def test_cs231n_circuits(tmp_path):
    out = run_example("cs231n_circuits.py", tmp_path)
    # Rows "name  graphc  by-hand", in order: (x + y) z, the neuron twice, the staged function.
    table = re.findall(r"^\s+(f|df/d\w+)\s+(-?\d+\.\d+)\s+(-?\d+\.\d+)$", out, re.M)
    assert table[:4] == [("f", "-12.000000", "-12.000000"), ("df/dx", "-4.000000", "-4.000000"),
                         ("df/dy", "-4.000000", "-4.000000"), ("df/dz", "3.000000", "3.000000")]
    neuron = {name: float(ours) for name, ours, _ in table[4:10]}
    assert neuron == pytest.approx({"f": 0.731059, "df/dw0": -0.196612, "df/dw1": -0.393224,
                                    "df/dw2": 0.196612, "df/dx0": 0.393224,
                                    "df/dx1": -0.589836}, abs=1e-6)
    assert [(n, float(a)) for n, a, _ in table[-3:]] == [
        ("f", pytest.approx(1.545645, abs=1e-6)), ("df/dx", pytest.approx(2.059570, abs=1e-6)),
        ("df/dy", pytest.approx(1.592233, abs=1e-6))]
    assert all(ours == theirs for _, ours, theirs in table)
    assert len(table) == 4 + 6 + 6 + 3 and "all circuits agree with the notes" in out
    # The notes' figures: forward values (green) and gradients (red) on each node.
    add_multiply = pictured(tmp_path / "cs231n_add_multiply.dot")
    assert add_multiply == {"x": ("-2", "-4"), "y": ("5", "-4"), "z": ("-4", "3"),
                            "q": ("3", "-4"), "f": ("-12", "1")}
    neuron = pictured(tmp_path / "cs231n_neuron.dot")
    assert {k: neuron[k] for k in ("w0", "x0", "w1", "x1", "w2", "f")} == {
        "w0": ("2", "-0.2"), "x0": ("-1", "0.39"), "w1": ("-3", "-0.39"), "x1": ("-2", "-0.59"),
        "w2": ("-3", "0.2"), "f": ("0.73", "1")}
    gates = sorted(v for k, v in neuron.items() if k not in ("w0", "x0", "w1", "x1", "w2", "f"))
    assert ("0.37", "-0.53") in gates and ("-1", "-0.2") in gates  # exp and *-1, as drawn
    vector = pictured(tmp_path / "cs231n_neuron_vector.dot")
    assert vector["w"] == ("(3,) [2, -3, -3]", "(3,) [-0.2, -0.39, 0.2]")
    assert vector["x"] == ("(2,) [-1, -2]", "(2,) [0.39, -0.59]")
    assert vector["f"] == ("0.73", "1")
    backward = (tmp_path / "cs231n_neuron_backward.dot").read_text()
    assert "subgraph cluster_derivative_1" in backward and "d(f)/d(w0)" in backward


def pictured(path: Path) -> dict:
    """``{node name: (value, gradient)}`` from an annotated DOT file."""
    found = re.findall(r'label=<<font color="#1a7f37">([^<]*)</font><br/>[^<]*<br/>([^<]*)<br/>'
                       r'[^<]*<br/><font color="#c62828">([^<]*)</font>>', path.read_text())
    return {name: (value, grad) for value, name, grad in found}


def test_mlp_digits(tmp_path):
    pytest.importorskip("sklearn")
    out = run_example("mlp_digits.py", tmp_path, "--epochs", "10")
    assert number(r"test accuracy (\S+)", out) >= 0.95
    assert out.count("batches  loss") == 10  # one progress line per epoch when not a terminal
    assert_plots(tmp_path / "mlp_digits_loss")
    assert "softmax_cross_entropy" in (tmp_path / "mlp_digits.dot").read_text()


def test_newton_logistic(tmp_path):
    out = run_example("newton_logistic.py", tmp_path, "--n", "300", "--d", "4",
                      "--gd-steps", "20")
    iterations = number(r"Newton: \|grad\| < \S+ after (\d+) iterations", out)
    assert iterations <= 10
    # After 20 steps gradient descent is still on its way (2.7e-7 above Newton's minimum, far
    # above rounding), and its gradient is larger than Newton's stopping tolerance.
    gap = number(r"after 20 steps loss is (\S+) above Newton's", out)
    assert gap > 1e-9
    assert number(r"above Newton's, \|grad\| = (\S+)", out) > 1e-10
    assert (tmp_path / "newton_logistic.json").exists()
    assert_plots(tmp_path / "newton_logistic")


def test_xor(tmp_path):
    out = run_example("xor.py", tmp_path, "--steps", "600")
    assert "book solution exact: True" in out
    assert "linear model stuck at 0.5: True" in out
    assert "ReLU network learned XOR: True" in out
    assert "rounded [0 1 1 0]" in out
    assert_plots(tmp_path / "xor_loss")


def test_higher_order(tmp_path):
    out = run_example("higher_order.py", tmp_path, "--n", "40")
    errors = [float(e) for e in re.findall(r"max \|graphc - closed form\| = (\S+)", out)]
    assert len(errors) == 4 and max(errors) < 1e-12
    assert "match SymPy: True" in out
    assert number(r"max relative difference\s+(\S+)", out) < 1e-12
    assert "H is symmetric: True; tridiagonal: True" in out


def test_scipy_logistic(tmp_path):
    pytest.importorskip("sklearn")
    out = run_example("scipy_logistic.py", tmp_path)
    rows = re.findall(r"^\s+(\S+)\s+(hess|hessp|-)\s+(\d+)\s+\S+\s+(\S+)\s+\S+$", out, re.M)
    assert [r[0] for r in rows] == ["trust-exact", "trust-krylov", "trust-ncg", "Newton-CG",
                                    "L-BFGS-B", "BFGS"]
    assert all(float(r[3]) < 1e-6 for r in rows)  # each method finds scikit-learn's coefficients
    assert all(int(r[2]) <= 20 for r in rows if r[1] != "-")  # second order: a few iterations
    assert number(r"largest difference from scikit-learn: (\S+)", out) < 1e-6
    assert number(r"training accuracy (\S+)", out) > 0.95
    try:
        import onnx
    except ImportError:
        return
    onnx.checker.check_model(str(tmp_path / "scipy_logistic.onnx"))


def test_graphc_itself_imports_no_plotting_or_progress_library():
    code = ("import sys, numpy as np, graphc as gc\n"
            "g = gc.Graph(); x = g.placeholder('x'); f = gc.sin(x, name='f')\n"
            "gc.to_text(f); gc.to_dot(f, feed={x: 1.0}, grad_of=f); g._repr_mimebundle_()\n"
            "gc.function([x], f, updates=None)\n"
            "print(sorted(m for m in ('matplotlib', 'tqdm') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_sparse_newton(tmp_path):
    out = run_example("sparse_newton.py", tmp_path, "--n", "12")
    assert "converged: True" in out
    colours = number(r"nonzeros, (\d+) colours", out)
    assert colours <= number(r"a row has up to (\d+) nonzeros", out) + 2
    assert 1.0 < number(r"area (\S+) \(a flat", out) < 2.0


def test_gaussian_process(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    out = run_example("gaussian_process.py", tmp_path, "--n", "25")
    ours = number(r"\nNLML (\S+), \|grad\|", out)
    assert number(r"\|grad\| (\S+), Hessian", out) < 1e-8  # Newton polished the optimum
    assert ours < number(r"NLML at the start (\S+);", out)
    assert ours == pytest.approx(number(r"scikit-learn's NLML at these hyper-parameters: (\S+)",
                                        out), abs=1e-8)
    assert re.search(r"fitted: lengthscale \S+, signal sd \S+, noise sd \S+", out)
    assert (tmp_path / "gaussian_process.png").read_bytes()[:4] == b"\x89PNG"


def test_cnn_digits(tmp_path):
    pytest.importorskip("sklearn")
    out = run_example("cnn_digits.py", tmp_path, "--epochs", "2")
    assert out.count("  loss ") == 2
    assert number(r"test accuracy (\S+)", out) >= 0.85  # two epochs; 30 reach about 98.5%
    if "matplotlib is not installed" not in out:
        assert (tmp_path / "cnn_digits_loss.png").read_bytes()[:4] == b"\x89PNG"


def test_dask_logistic(tmp_path):
    pytest.importorskip("dask.array")
    out = run_example("dask_logistic.py", tmp_path, "--rows", "40000", "--chunk", "7000",
                      "--gd-steps", "3")
    assert "6 chunks of 7000 rows" in out
    first, last = (float(v) for v in re.search(r"loss (\S+) -> (\S+) after 3", out).groups())
    assert last < first
    assert number(r"Newton: \|grad\| < 1e-10 after (\d+) iterations", out) <= 8
    assert number(r"max \|theta_dask - theta_memory\| = (\S+)", out) < 1e-10
    assert number(r"max \|theta - theta_true\| = (\S+)", out) < 0.1
