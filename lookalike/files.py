"""Files that survive accidents: written so that a crash, a full disk or kill -9 leaves the old file or the new one,
never half; read so that a damaged one (truncated, empty, another kind of file) is one clear error, never a crash."""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np


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


def read_npz(path: Path, *names: str) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` (only those: a zip reads members on demand), never unpickling anything.

    Raises ValueError naming the file and what is wrong with it, whatever the damage: numpy and zipfile raise
    half a dozen exception types for a missing, empty, truncated or foreign file."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("an .npy array, not an .npz archive")
        with loaded:
            return {name: loaded[name] for name in names}
    except FileNotFoundError:
        raise ValueError(f"{path}: missing") from None
    except KeyError as exc:
        raise ValueError(f"{path}: no array {exc} in it") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path}: damaged or not an npz file ({type(exc).__name__})") from None
