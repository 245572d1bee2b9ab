"""The documentation is complete and true: every public name is in docs/api.md with a docstring,
every ```python block of the docs and README runs on its own, and every relative link resolves."""
from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

import graphc as gc

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md", ROOT / "examples" / "README.md"]
# Only blocks fenced exactly as ```python run, each on its own; ```python excerpt marks a
# snippet that must appear verbatim in a runnable block of the same page (a tutorial's steps,
# run whole at its end); write other fragments as ```py, ```pycon or ```text.
BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
EXCERPT = re.compile(r"^```python excerpt[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
CODE = re.compile(r"^```.*?^```|`[^`\n]*`", re.M | re.S)  # fenced blocks and inline code


def public_names() -> list:
    names = getattr(gc, "__all__", None) or dir(gc)
    return sorted(n for n in names if not n.startswith("_")
                  and not isinstance(getattr(gc, n), types.ModuleType))


def test_every_public_name_is_in_the_api_reference():
    text = (DOCS / "api.md").read_text()
    missing = [n for n in public_names() if not re.search(rf"`gc\.{re.escape(n)}\b", text)]
    assert not missing, f"docs/api.md does not document: {missing}"


@pytest.mark.parametrize("cls", [gc.Graph, gc.Node])
def test_graph_and_node_members_are_in_the_api_reference(cls):
    text = (DOCS / "api.md").read_text()
    members = [m for m in dir(cls) if not m.startswith("_")]
    missing = [m for m in members if not re.search(rf"\.{m}\b", text)]
    assert not missing, f"docs/api.md does not document {cls.__name__}.{missing}"


def test_every_public_name_has_a_docstring():
    undocumented = [n for n in public_names()
                    if callable(getattr(gc, n)) and not inspect.getdoc(getattr(gc, n))]
    assert not undocumented, f"public names without a docstring: {undocumented}"


# Packages of graphc's extras that a block may import: without them it is skipped, not failed.
OPTIONAL = {"onnx", "onnxruntime", "sklearn", "scipy", "matplotlib", "tqdm", "dask",
            "distributed"}
BLOCKS = [(page, k, code) for page in PAGES for k, code in enumerate(BLOCK.findall(page.read_text()), 1)]


@pytest.mark.parametrize("page,k,code", BLOCKS,
                         ids=[f"{p.relative_to(ROOT)}-{k}" for p, k, _ in BLOCKS])
def test_python_blocks_run_on_their_own(page, k, code, tmp_path, monkeypatch):
    """Each block is self-contained: it runs alone, in a fresh namespace (its imports
    included), in an empty folder, as a reader who copies just that block would run it."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": f"docs_{page.stem}_{k}"}
    try:
        exec(compile(code, f"{page.name} block {k}", "exec"), namespace)
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name in OPTIONAL:
            pytest.skip(f"{page.name}, python block {k} needs {exc.name}, not installed")
        pytest.fail(f"{page.name}, python block {k} raised {type(exc).__name__}: {exc}\n"
                    f"{code}")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_excerpts_are_parts_of_a_block_that_runs(page):
    text = page.read_text()
    blocks = BLOCK.findall(text)
    orphans = [excerpt for excerpt in EXCERPT.findall(text)
               if not any(excerpt in block for block in blocks)]
    assert not orphans, f"{page.name}: excerpts found in no runnable block:\n{orphans}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = [target for target in LINK.findall(CODE.sub("", page.read_text()))
              if "://" not in target and not target.startswith("mailto:")
              and not (page.parent / target).exists()]
    assert not broken, f"{page.name} links to missing files: {broken}"


def test_index_links_every_page():
    index = (DOCS / "index.md").read_text()
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "index.md" and p.name not in index]
    assert not missing, f"docs/index.md does not link {missing}"


def test_readme_keeps_the_quickstart_commands():
    readme = (ROOT / "README.md").read_text()
    assert "python -m pip install -e . && python examples/quickstart.py" in readme
    assert 'python -m pip install -e ".[test]" && python -m pytest' in readme
