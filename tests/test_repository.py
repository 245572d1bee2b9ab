"""The repository itself: no merge left half done."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_no_conflict_markers_in_tracked_files():
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):  # not a checkout (an sdist): walk the tree
        listed = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
    bad = []
    for name in listed:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".toml", ".json", ".txt", ".cfg", ""} or \
                not path.is_file():
            continue
        for k, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if line.startswith(("<<<<<<< ", ">>>>>>> ")) or line == "=======" and \
                    path.suffix != ".md":
                bad.append(f"{name}:{k}")
    assert not bad, f"merge conflict markers at {bad}"
