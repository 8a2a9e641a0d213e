"""Writing a file so that a crash, a full disk or kill -9 leaves either the old file or the new one, never half."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; on success it replaces ``path`` (os.replace is atomic on one
    filesystem), on any failure it is removed, so a failed write leaves no litter and the old file intact."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` with a binary file that becomes ``path`` only once ``write`` has returned."""
    with replacing(path) as tmp, open(tmp, "wb") as out:
        write(out)
