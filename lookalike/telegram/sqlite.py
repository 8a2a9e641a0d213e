"""Short SQLite transactions for the bot's small stores (feedback, journal), with storage faults made explicit."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path


class StorageError(Exception):
    """The SQLite file cannot be used (read-only, its folder gone, disk full, corrupt); the message names it."""


@contextmanager
def transaction(path: Path, schema: str) -> Iterator[sqlite3.Connection]:
    """One connection for one short job, committed when the block ends. The schema is applied every time (a few
    microseconds), so a file deleted while the bot runs is simply made again."""
    try:
        with closing(sqlite3.connect(path, timeout=10)) as db, db:
            db.executescript(schema)
            yield db
    except sqlite3.Error as exc:
        raise StorageError(f"{path}: {exc}") from exc
