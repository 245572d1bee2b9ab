"""Saving: interrupted writes leave recognisable temporaries that the next save cleans up, and
failures are graphc errors naming the path."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import graphc as gc
from graphc.io import atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _graph():
    g = gc.Graph()
    x = g.placeholder("x", (3,))
    gc.sum(x * g.variable("w", np.arange(3.0)), name="total")
    return g


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _age(path, seconds):
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_stale_temporaries_of_dead_writers_are_removed_by_the_next_save(tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    names = {
        "dead_old": f".model.json.graphc-save-{dead}-{'a' * 16}.tmp",
        "dead_new": f".model.json.graphc-save-{dead}-{'b' * 16}.tmp",
        "alive_old": f".model.json.graphc-save-{alive}-{'c' * 16}.tmp",
        "ancient": f".other.json.graphc-save-{alive}-{'d' * 16}.tmp",
        "v01_old": f".graphc-{'e' * 16}.tmp",
        "not_ours": f".model.json.{'f' * 16}.tmp",
    }
    for key, name in names.items():
        (tmp_path / name).write_text("half a file")
    for key in ("dead_old", "alive_old", "not_ours"):
        _age(tmp_path / names[key], 2 * atomic.STALE_AFTER)
    _age(tmp_path / names["ancient"], 2 * atomic.ABANDONED_AFTER)
    _age(tmp_path / names["v01_old"], 2 * atomic.ABANDONED_AFTER)
    gc.save(_graph(), tmp_path / "model.json")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"model.json", names["dead_new"], names["alive_old"], names["not_ours"]}
    loaded = gc.load(tmp_path / "model.json")
    assert loaded.run(loaded["total"], {"x": np.ones(3)}) == 3.0


def test_a_killed_save_leaves_a_recognisable_file_that_a_later_save_cleans(tmp_path):
    """SIGKILL a process in the middle of writing a large graph, many times."""
    script = (
        "import sys, numpy as np, graphc as gc\n"
        "g = gc.Graph(); g.variable('w', np.zeros(2_000_000))\n"
        "print('ready', flush=True)\n"
        "while True: gc.save(g, sys.argv[1])\n")
    env = {**os.environ, "PYTHONPATH": ROOT}
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "big.json")],
                             stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline().strip() == b"ready"
        deadline = time.time() + 20
        while time.time() < deadline and not any(p.name.endswith(".tmp")
                                                 for p in tmp_path.iterdir()):
            time.sleep(0.005)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers  # killed while writing: what the issue saw in 15 of 30 tries
    for p in leftovers:  # named after the target and the writer
        assert p.name.startswith(".big.json.graphc-save-") and f"-{child.pid}-" in p.name
        _age(p, 2 * atomic.STALE_AFTER)
    gc.save(_graph(), tmp_path / "small.json")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_save_failures_are_graphc_errors_naming_the_path(tmp_path):
    with pytest.raises(gc.FileError, match="nowhere"):
        gc.save(_graph(), tmp_path / "nowhere" / "m.json")
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(gc.FileError, match="a_folder") as info:
        gc.save(_graph(), folder)  # a folder where the file should go
    assert isinstance(info.value, OSError)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
