"""Writing files so that a crash never leaves half of one: a temporary file, then a rename."""
from __future__ import annotations

import os
import secrets
import stat
from typing import Union

from ..errors import GraphcError


def write_atomic(path: Union[str, os.PathLike], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file gets the permissions a plain ``open(path, "w")`` would give: those of the file it
    replaces, or else 0o666 less the umask. A symbolic link at ``path`` stays a link and its
    target gets the data, as with ``open``.
    """
    shown = os.fspath(path)
    path = os.path.realpath(shown)
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise GraphcError(f"cannot write {shown}: the folder {folder} does not exist")
    # Created with 0o666 so that the kernel applies the umask, as open() does (mkstemp would
    # make the file private, and reading the umask means setting it, which races with threads).
    tmp = os.path.join(folder, f".graphc-{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
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
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
