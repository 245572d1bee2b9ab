"""The ``graphc`` command, run through its real entry point (``python -m graphc``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def graphc(*args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "graphc", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def model(tmp_path):
    g = gc.Graph()
    x = g.placeholder("x", (None, 3))
    W = g.variable("W", np.arange(6.0).reshape(3, 2) / 10)
    b = g.variable("b", np.zeros(2))
    h = gc.tanh(gc.sum(x, axis=1, keepdims=True) * W[0] + b, name="h")
    gc.mean(h * h, name="loss")
    gc.save(g, tmp_path / "model.json")
    np.save(tmp_path / "x.npy", np.arange(6.0).reshape(2, 3))
    return g, tmp_path


def test_info_lists_ops_placeholders_variables_and_outputs(model):
    g, path = model
    code, out, err = graphc("info", "model.json", cwd=path)
    assert code == 0 and err == ""
    assert out.startswith(f"model.json: {len(g)} nodes")
    assert "placeholders:\n  x  (None, 3) float64" in out
    assert "W  (3, 2) float64  6 elements, 48 bytes" in out
    assert "outputs:\n  loss  mean () float64" in out
    assert "  variable" in out and "  tanh" in out


def test_run_feeds_npy_files_and_json_literals(model):
    g, path = model
    X = np.arange(6.0).reshape(2, 3)
    code, out, err = graphc("run", "model.json", "--feed", "x=x.npy", "--fetch", "loss", cwd=path)
    assert code == 0 and err == ""
    assert out == f"loss = {float(g.run(g['loss'], {'x': X}))!r}\n"
    code, out, _ = graphc("run", "model.json", "--feed", "x=[[0,1,2],[3,4,5]]", "--fetch", "h",
                          "-o", "h.npy", cwd=path)
    assert code == 0 and out == "wrote h.npy\n"
    assert np.array_equal(np.load(path / "h.npy"), g.run(g["h"], {"x": X}))
    code, _, _ = graphc("run", "model.json", "--feed", "x=x.npy", "--fetch", "h", "--fetch",
                        "loss", "-o", "both.npz", cwd=path)
    assert code == 0 and set(np.load(path / "both.npz").files) == {"h", "loss"}


def test_grad_appends_named_gradient_nodes_and_saves(model):
    g, path = model
    size = len(g)
    code, out, err = graphc("grad", "model.json", "--of", "loss", "--wrt", "W", "--wrt", "b",
                            "-o", "grad.json", cwd=path)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("appended ") and lines[0].endswith("wrote grad.json")
    name = lines[1].split("node '")[1].split("'")[0]
    assert lines[1].startswith("gradient of 'loss' with respect to 'W': node")
    loaded = gc.load(path / "grad.json")
    assert loaded[name].shape == (3, 2) and loaded[name].derivative == 1
    X = np.arange(6.0).reshape(2, 3)
    want = g.run(gc.grad(g["loss"], g["W"]), {"x": X})
    code, out, _ = graphc("run", "grad.json", "--feed", "x=x.npy", "--fetch", name, "-o",
                          "gW.npy", cwd=path)
    assert code == 0 and np.allclose(np.load(path / "gW.npy"), want)
    code, _, _ = graphc("grad", "model.json", "--of", "loss", "--wrt", "b", cwd=path)
    assert code == 0 and len(gc.load(path / "model.json")) > size  # in place without -o


def test_dot_to_stdout_and_files(model):
    g, path = model
    code, out, _ = graphc("dot", "model.json", cwd=path)
    assert code == 0 and out == gc.to_dot(gc.load(path / "model.json"))
    code, out, _ = graphc("dot", "model.json", "--node", "h", "-o", "h.dot", cwd=path)
    assert code == 0 and (path / "h.dot").read_text() == gc.to_dot(gc.load(path / "model.json")["h"])
    if shutil.which("dot"):
        code, _, _ = graphc("dot", "model.json", "-o", "model.svg", cwd=path)
        assert code == 0 and "<svg" in (path / "model.svg").read_text()


@pytest.mark.parametrize("args,message", [
    (["info", "missing.json"], "cannot read 'missing.json'"),
    (["info", "broken.json"], "not valid JSON"),
    (["run", "model.json", "--fetch", "loss"], "placeholder 'x' (None, 3) float64 must be fed"),
    (["run", "model.json", "--fetch", "nope"], "model.json has no node named 'nope'"),
    (["run", "model.json", "--feed", "x", "--fetch", "loss"], "write NAME=VALUE"),
    (["run", "model.json", "--feed", "x=abc", "--fetch", "loss"], "not a .npy file, a number"),
    (["run", "model.json", "--feed", "x=no.npy", "--fetch", "loss"], "cannot read 'no.npy'"),
    (["run", "model.json", "--feed", "x=[1,2]", "--fetch", "loss"], "cannot feed a value of "
                                                                     "shape (2,)"),
    (["run", "model.json", "--feed", "x=x.npy", "--fetch", "h", "--fetch", "loss", "-o",
      "a.npy"], "a .npy file holds one array"),
    (["grad", "model.json", "--of", "h", "--wrt", "W"], "y must be a scalar"),
    (["grad", "model.json", "--of", "loss", "--wrt", "nope"], "no node named 'nope'"),
    (["dot", "model.json", "-o", "g.txt"], "use a .svg, .png, .pdf or .dot path"),
])
def test_every_error_is_one_line_on_stderr_with_a_nonzero_exit(model, args, message):
    g, path = model
    (path / "broken.json").write_text('{"format": "graphc", "version": 1, "nodes": [')
    code, out, err = graphc(*args, cwd=path)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("graphc: error: ") and message in err, err


def test_help_and_usage_errors(tmp_path):
    code, out, _ = graphc("--help", cwd=tmp_path)
    assert code == 0 and all(c in out for c in ("info", "dot", "run", "grad"))
    code, out, _ = graphc("run", "--help", cwd=tmp_path)
    assert code == 0 and "--feed NAME=VALUE" in out and "--fetch NAME" in out
    code, _, err = graphc("grad", "model.json", "--wrt", "W", cwd=tmp_path)
    assert code == 2 and "--of" in err
    code, _, err = graphc(cwd=tmp_path)
    assert code == 2 and "COMMAND" in err


def test_the_console_script_points_at_main():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {"graphc": "graphc.cli:main"}
    from graphc.cli import main
    assert callable(main)


def test_npz_output_takes_any_node_name_and_bad_feeds_are_clear(tmp_path):
    """A node named "file" broke np.savez(path, **arrays); an .npz feed or a repeated feed gave
    a confusing error or was silently overridden."""
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    gc.sum(x * x, name="file")
    gc.exp(x, name="allow_pickle")
    gc.save(g, tmp_path / "m.json")
    np.save(tmp_path / "x.npy", np.ones(3))
    np.savez(tmp_path / "x.npz", x=np.ones(3))
    code, _, err = graphc("run", "m.json", "--feed", "x=x.npy", "--fetch", "file", "--fetch",
                          "allow_pickle", "-o", "out.npz", cwd=tmp_path)
    assert code == 0 and err == ""
    saved = np.load(tmp_path / "out.npz")
    assert saved["file"] == 3.0 and np.allclose(saved["allow_pickle"], np.e)
    for feeds, message in [(["x=x.npz"], "'x.npz' is not a .npy file"),
                           (["x=x.npy", "x=1"], "--feed x: given more than once"),
                           (["x=" + "[" * 5000 + "]" * 5000], "not a .npy file, a number")]:
        args = [a for f in feeds for a in ("--feed", f)]
        code, out, err = graphc("run", "m.json", *args, "--fetch", "file", cwd=tmp_path)
        assert code == 1 and out == "" and err.count("\n") == 1 and message in err, err
        assert len(err) < 200


def test_a_closed_pipe_is_not_reported_as_an_error(model):
    g, path = model
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(f"'{sys.executable}' -m graphc dot model.json | head -c 0", shell=True,
                          cwd=path, env=env, capture_output=True, text=True, timeout=60)
    assert done.stderr == ""


def test_importing_main_module_does_not_run_the_command():
    import importlib

    importlib.import_module("graphc.__main__")  # would raise SystemExit(2) before the guard
