"""Votes and request outcomes in SQLite: who was matched, how similar, how it went — never a photo.

An outcome row does not say whose photo it was: under "match me like my photo" the person matched shows the sex the
bot took the user for, and the bot keeps only the preference a user chose (lookalike/telegram/preferences.py).

Calls are quick (one row) but still do file I/O, so the bot runs them in a thread (``asyncio.to_thread``);
one connection per call keeps that thread-safe without a lock.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from lookalike.telegram.sqlite import StorageError, transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS votes (
    token TEXT NOT NULL, face INTEGER NOT NULL, user_id INTEGER NOT NULL,
    person TEXT NOT NULL, similarity REAL NOT NULL, vote INTEGER NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (token, face, user_id)
);
CREATE TABLE IF NOT EXISTS outcomes (
    ts REAL NOT NULL, outcome TEXT NOT NULL, faces INTEGER NOT NULL, person TEXT, similarity REAL,
    seconds REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_ts ON outcomes (ts);
"""
# Files written before outcomes stopped naming the user: their rows move over without the user, once.
FORGET_USERS = """
INSERT INTO outcomes SELECT ts, outcome, faces, person, similarity, seconds FROM requests;
DROP TABLE requests;
"""


LATENCY_WINDOW = 10_000  # latency percentiles are over the most recent photos, not the bot's whole life


@dataclass(frozen=True)
class Stats:
    requests: int
    outcomes: dict[str, int]
    faces: int
    up: int
    down: int
    top_persons: list[tuple[str, int]]
    p50: float
    p95: float


class FeedbackStore:
    """Every call raises StorageError (naming the file) when the file cannot be used; the bot carries on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"{path}: {exc.strerror or exc}") from exc
        with self._connect() as db:  # refuse an unusable path at start-up, not on the first vote
            if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'requests'").fetchone():
                db.executescript(FORGET_USERS)

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, SCHEMA)

    def vote(self, token: str, face: int, user_id: int, person: str, similarity: float, up: bool) -> None:
        """One vote per user per card: pressing the other button changes it."""
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO votes VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token, face, user_id, person, similarity, 1 if up else -1, time.time()),
            )

    def record(self, outcome: str, faces: int, person: str | None, similarity: float | None, seconds: float) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), outcome, faces, person, similarity, seconds),
            )

    def stats(self, top: int = 5) -> Stats:
        with self._connect() as db:
            outcomes = dict(db.execute("SELECT outcome, COUNT(*) FROM outcomes GROUP BY outcome").fetchall())
            faces = db.execute("SELECT COALESCE(SUM(faces), 0) FROM outcomes").fetchone()[0]
            up, down = db.execute("SELECT COALESCE(SUM(vote > 0), 0), COALESCE(SUM(vote < 0), 0) FROM votes").fetchone()
            persons = db.execute(
                "SELECT person, COUNT(*) AS n FROM outcomes WHERE person IS NOT NULL "
                "GROUP BY person ORDER BY n DESC, person LIMIT ?",
                (top,),
            ).fetchall()
            recent = db.execute("SELECT seconds FROM outcomes ORDER BY ts DESC LIMIT ?", (LATENCY_WINDOW,))
            latencies = sorted(row[0] for row in recent)
        return Stats(
            requests=sum(outcomes.values()),
            outcomes=outcomes,
            faces=int(faces),
            up=int(up),
            down=int(down),
            top_persons=[(p, int(n)) for p, n in persons],
            p50=_quantile(latencies, 0.5),
            p95=_quantile(latencies, 0.95),
        )


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
