"""Who each user wants to be matched with: the one choice they made in /settings, in the bot's SQLite file.

Only that choice is stored, never what the bot took anyone for: apparent sex picks matches inside one request
and is dropped with it. A user with no row gets the bot's default. One short connection per call (called through
a thread), as for the feedback store; calls raise StorageError when the file cannot be used.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path
from typing import cast

from lookalike.engine.matcher import MATCH_SEX_CHOICES, MatchSex
from lookalike.telegram.sqlite import transaction

SCHEMA = """
CREATE TABLE IF NOT EXISTS preferences (user_id INTEGER PRIMARY KEY, match_sex TEXT NOT NULL);
"""


class PreferenceStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, SCHEMA)

    def match_sex(self, user_id: int) -> MatchSex | None:
        """The user's choice; None if they made none (or the row holds a value this version does not know)."""
        with self._connect() as db:
            row = db.execute("SELECT match_sex FROM preferences WHERE user_id = ?", (user_id,)).fetchone()
        return cast(MatchSex, row[0]) if row and row[0] in MATCH_SEX_CHOICES else None

    def set_match_sex(self, user_id: int, choice: MatchSex) -> None:
        if choice not in MATCH_SEX_CHOICES:
            raise ValueError(f"match_sex: one of {', '.join(MATCH_SEX_CHOICES)}, got {choice!r}")
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO preferences VALUES (?, ?)", (user_id, choice))
