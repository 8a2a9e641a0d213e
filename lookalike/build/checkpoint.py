"""The build's checkpoint (``assets/described.sqlite3``): every result as it arrives, so that a build stopped at any
point (Ctrl-C, a kill, a lost cluster) and run again describes only the photos not stored yet.

SQLite: one file, atomic batched commits, plain columns (never pickle). Rows are kept only for the settings ``key``
(jitters, describer, rules) they were made with; once the catalog holds them they are dropped. The thumbnail goes
straight to ``thumbs.sqlite3``, committed with its row, not into memory. The file also remembers each photo file's
hash by (size, mtime, inode), so an unchanged folder is stat'ed, not read.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import numpy as np
from tqdm import tqdm

from lookalike.assets import ThumbnailWriter
from lookalike.build.describe import Described

CHECKPOINT_FILE = "described.sqlite3"
COMMIT_EVERY = 50  # results per commit, or
COMMIT_SECONDS = 2.0  # s between commits: a build killed outright loses at most this much work


class Checkpoint:
    """The checkpoint of the build in ``assets``, for results made with the settings ``key``. A context manager:
    leaving it commits what arrived, however the describing ended."""

    def __init__(self, assets: Path, key: str) -> None:
        self._assets = assets
        assets.mkdir(parents=True, exist_ok=True)
        self._thumbs = ThumbnailWriter(assets)
        try:
            self._db = self._open(key)
        except sqlite3.DatabaseError:  # not a database (a truncated copy): it only saves time, start it afresh
            (assets / CHECKPOINT_FILE).unlink()
            self._db = self._open(key)
        self._pending = 0
        self._committed = time.monotonic()

    def _open(self, key: str) -> sqlite3.Connection:
        db = sqlite3.connect(self._assets / CHECKPOINT_FILE)
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS settings (key TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS described (
                sha256 TEXT PRIMARY KEY, vector BLOB, left INTEGER, top INTEGER, right INTEGER, bottom INTEGER,
                eye_distance REAL, roll REAL, reason TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS hashed (
                path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
                sha256 TEXT NOT NULL
            );
            """
        )
        if db.execute("SELECT key FROM settings").fetchall() != [(key,)]:  # other jitters, describer or rules
            with db:
                db.execute("DELETE FROM described")
                db.execute("DELETE FROM settings")
                db.execute("INSERT INTO settings VALUES (?)", (key,))
        return db

    def hashes(self, paths: list[Path], progress: bool) -> list[str]:
        """Each file's SHA-256: remembered while its size, mtime and inode stay the same, else read and hashed."""
        known = {path: rest for path, *rest in self._db.execute("SELECT * FROM hashed")}
        digests, changed = [], []
        for path in tqdm(paths, desc="hashing", unit="photo", disable=not progress):
            name, st = os.path.abspath(path), path.stat()
            seen = known.pop(name, None)
            if seen is not None and tuple(seen[:3]) == (st.st_size, st.st_mtime_ns, st.st_ino):
                digests.append(seen[3])
                continue
            digests.append(sha256_file(path))
            changed.append((name, st.st_size, st.st_mtime_ns, st.st_ino, digests[-1]))
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO hashed VALUES (?, ?, ?, ?, ?)", changed)
            self._db.executemany("DELETE FROM hashed WHERE path = ?", ((name,) for name in known))  # gone
        return digests

    def results(self, wanted: set[str]) -> dict[str, Described]:
        """The stored results among ``wanted``; the others (saved in the catalog since, or photos gone) are dropped."""
        found, dropped = {}, []
        for sha, vector, left, top, right, bottom, eye, roll, reason in self._db.execute("SELECT * FROM described"):
            if sha not in wanted:
                dropped.append((sha,))
            elif vector is None:
                found[sha] = Described(sha, reason=reason)
            else:
                box = (left, top, right, bottom)
                found[sha] = Described(sha, np.frombuffer(vector, np.float32).copy(), box, eye, roll)
        with self._db:
            self._db.executemany("DELETE FROM described WHERE sha256 = ?", dropped)
        return found

    def add(self, d: Described) -> Described:
        """Store one result (committed in batches); returns it without the thumbnail bytes, now on disk."""
        if d.thumb_jpeg:
            self._thumbs.put_many([(d.sha256, d.thumb_jpeg)])
        vector = None if d.vector is None else np.asarray(d.vector, np.float32).tobytes()
        self._db.execute(
            "INSERT OR REPLACE INTO described VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (d.sha256, vector, *(int(x) for x in d.box), float(d.eye_distance), float(d.roll), d.reason),
        )
        self._pending += 1
        if self._pending >= COMMIT_EVERY or time.monotonic() - self._committed >= COMMIT_SECONDS:
            self._commit()
        return replace(d, thumb_jpeg=b"")

    def _commit(self) -> None:
        self._thumbs.commit()  # first: a row is never stored without its thumbnail
        self._db.commit()
        self._pending, self._committed = 0, time.monotonic()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Keep what arrived, however the describing ended (Ctrl-C, a lost cluster)."""
        self._commit()
        self._db.close()
        self._thumbs.close()


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file's content: what a photo's results are stored and reused by."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
