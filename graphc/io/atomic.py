"""Writing files so that a crash never leaves half of one: a temporary file, then a rename.

A process killed between the two (SIGKILL, power loss) leaves its temporary file behind. The
name says whose it is, ``.<target>.graphc-save-<pid>-<random>.tmp``, and the next write into the
same folder removes those of processes that are gone.
"""
from __future__ import annotations

import os
import re
import secrets
import stat
import time
from typing import Union

from ..errors import FileError

#: A leftover of a dead process is removed once it is this old (seconds): a fresh one may
#: belong to a process that has just been started with a recycled pid on another machine.
STALE_AFTER = 60.0
#: Any leftover is removed once it is this old, whoever wrote it (no save takes a day).
ABANDONED_AFTER = 24 * 3600.0

_TEMPORARY = re.compile(r"\..*\.graphc-save-(\d+)-[0-9a-f]{16}\.tmp\Z", re.DOTALL)
_OLD_TEMPORARY = re.compile(r"\.graphc-[0-9a-f]{16}\.tmp\Z")  # graphc 0.1's names


def write_atomic(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file gets the permissions a plain ``open(path, "w")`` would give: those of the file it
    replaces, or else 0o666 less the umask. A symbolic link at ``path`` stays a link and its
    target gets the data, as with ``open``. Failures raise :class:`~graphc.FileError` (an
    ``OSError`` too) naming the path.
    """
    shown = os.fspath(path)
    path = os.path.realpath(shown)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileError(f"cannot write {shown}: the folder {folder} does not exist")
    remove_stale_temporaries(folder)
    # Created with 0o666 so that the kernel applies the umask, as open() does (mkstemp would
    # make the file private, and reading the umask means setting it, which races with threads).
    base = os.path.basename(path)[:80]
    tmp = os.path.join(folder, f".{base}.graphc-save-{os.getpid()}-{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
    except OSError as exc:
        raise FileError(f"cannot write {shown}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass  # a new file: the umask already gave it its mode
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise FileError(f"cannot write {shown}: {exc.strerror or exc}") from None
        raise


def remove_stale_temporaries(folder: str) -> list:
    """Remove the temporary files that interrupted writes left in ``folder``; return their
    paths. Only graphc's own names are touched, and only those of dead writers (or ancient)."""
    removed: list[str] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None and not _OLD_TEMPORARY.match(entry.name):
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if not entry.is_file(follow_symlinks=False):
                continue
        except OSError:
            continue
        pid = int(match.group(1)) if match else None
        dead = pid is not None and age > STALE_AFTER and not _running(pid)
        if dead or age > ABANDONED_AFTER or (pid is None and age > STALE_AFTER * 60):
            try:
                os.unlink(entry.path)
                removed.append(entry.path)
            except OSError:
                pass  # another process cleaned it first, or we may not: leave it
    return removed


def _running(pid: int) -> bool:
    """Whether a process with this pid exists (on Windows, where signal 0 would terminate the
    process, every pid counts as running: leftovers are then removed by age alone)."""
    if os.name == "nt":
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's process, or a pid we cannot ask about
    return True
