"""Packaging: the sdist carries docs/, examples/ and tests/, the package is marked typed, the
metadata is complete, and saved files hold no absolute path of the user's machine."""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np

import graphc as gc
from graphc.io.json_format import portable_site

ROOT = Path(__file__).resolve().parent.parent


def sdist_files(monkeypatch) -> set:
    """The files the sdist takes from MANIFEST.in, by setuptools' own template rules."""
    from setuptools._distutils.filelist import FileList

    monkeypatch.chdir(ROOT)
    files = FileList()
    files.findall()
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            files.process_template_line(line)
    return {Path(f).as_posix() for f in files.files}


def test_the_sdist_carries_docs_examples_and_tests(monkeypatch):
    files = sdist_files(monkeypatch)
    for wanted in ["docs/index.md", "docs/api.md", "examples/quickstart.py",
                   "examples/scipy_logistic.py", "tests/test_docs.py", "tests/test_examples.py",
                   "graphc/py.typed", "graphc/io/graphc.schema.json", "LICENSE"]:
        assert wanted in files, f"the sdist would miss {wanted}"
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    assert not [f for f in files if f.startswith("examples/out/")]


def test_metadata_classifiers_and_extras():
    # (no project URLs: the repository's public address is not decided yet)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.startswith("scipy") for d in project["dependencies"])
    assert "Typing :: Typed" in project["classifiers"]
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in
               project["classifiers"])
    extras = project["optional-dependencies"]
    names = {e: {r.split(">")[0].split("=")[0].split("[")[0] for r in reqs}
             for e, reqs in extras.items()}
    assert {"onnx", "onnxruntime"} <= names["onnx"]
    assert {"onnx", "onnxruntime", "mypy", "scikit-learn", "dask", "distributed"} <= names["test"]
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["graphc"]
    assert "py.typed" in package_data and (ROOT / "graphc" / "py.typed").exists()


MODEL = """\
import numpy as np
import graphc as gc

g = gc.Graph()
x = g.placeholder("x", (None, 2))
W = g.variable("W", np.ones((2, 3)))
loss = gc.mean(gc.tanh(x @ W))
gc.gradients(loss, [W])
"""


def build_in(path: Path) -> gc.Graph:
    """Run MODEL as the file ``path`` (as if a user's script there built the graph)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MODEL)
    namespace: dict = {}
    exec(compile(MODEL, str(path), "exec"), namespace)
    return namespace["g"]


def test_the_same_graph_saved_from_two_checkouts_is_the_same_file(tmp_path, monkeypatch):
    texts = []
    for checkout in ("one", "two"):
        root = tmp_path / checkout
        g = build_in(root / "src" / "model.py")
        assert g["x"].site == f"{root / 'src' / 'model.py'}:5"  # errors keep the full path
        monkeypatch.chdir(root)
        gc.save(g, root / "g.json")
        texts.append((root / "g.json").read_text())
    assert texts[0] == texts[1]
    sites = {n["site"] for n in json.loads(texts[0])["nodes"]}
    assert "src/model.py:5" in sites and not any(str(tmp_path) in s for s in sites if s)
    assert gc.load(tmp_path / "one" / "g.json")["x"].site == "src/model.py:5"


def test_a_site_outside_the_working_directory_keeps_the_file_name_only(tmp_path, monkeypatch):
    g = build_in(tmp_path / "elsewhere" / "train.py")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    doc = json.loads(gc.to_json(g))
    assert doc["nodes"][0]["site"] == "train.py:5"
    assert portable_site("relative/kept.py:3") == "relative/kept.py:3"
    assert portable_site("<stdin>:1") == "<stdin>:1" and portable_site(None) is None
    np.testing.assert_array_equal(gc.from_json(gc.to_json(g))["W"].value, np.ones((2, 3)))
