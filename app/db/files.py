"""Files that hold readers' data are created readable by their owner only (0600).

The database file is created here, empty, with mode 0600 before SQLite opens it; SQLite then
gives its -wal, -shm and -journal files the database file's own mode. Snapshots and dumps are
created the same way. The mode is set as the file is created (never chmod after the data is
in it), so no other user of the machine can open it in between. A file that already exists
keeps the mode its operator gave it, except a dump that is overwritten (below).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

PRIVATE = 0o600


def create_private(path: str | Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (an empty file is a new SQLite
    database). A path that cannot be created is left for SQLite to report."""
    if str(path) == ":memory:" or str(path).startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except OSError:
        return
    os.close(fd)


def open_private_text(path: str | Path) -> TextIO:
    """Open `path` for writing text, created 0600 or emptied and set to 0600 before anything is
    written (O_TRUNC alone would keep an existing file's wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)
        return os.fdopen(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
