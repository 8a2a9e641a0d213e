"""Photo updates received and answered, in SQLite: a photo counts as done only when its answer has gone out.

The poller (or the webhook) writes an update here *before* confirming it to Telegram; the bot marks it answered
after its handler ran. After a crash or ``kill -9``, what was received but not answered is handled again, and
what was answered is never answered twice. Only what answering needs is kept — ids, chat type, language,
``file_id``s, the caption's mentions — never photo bytes, never names.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from lookalike.telegram.sqlite import transaction

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    update_id INTEGER PRIMARY KEY, body TEXT NOT NULL, received REAL NOT NULL, answered REAL
);
"""
KEEP_ANSWERED = 24 * 3600.0  # s an answered entry is kept, so a late redelivery from Telegram is still recognised
USER_KEYS = ("id", "is_bot", "language_code")
FILE_KEYS = ("file_id", "file_unique_id", "file_size", "width", "height", "mime_type", "file_name")


def is_photo_update(raw: dict[str, Any]) -> bool:
    """Updates worth journaling: a photo or a file (possibly an image), or a command replying to one."""
    message = raw.get("message")
    if not isinstance(message, dict):
        return False
    replied = message.get("reply_to_message")
    return any(isinstance(m, dict) and ("photo" in m or "document" in m) for m in (message, replied))


def slim(raw: dict[str, Any]) -> dict[str, Any]:
    """The update with only what answering it needs (a valid Bot API update, smaller and without personal text)."""
    return {"update_id": raw["update_id"], "message": _slim_message(raw["message"])}


def _slim_message(message: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: message[k] for k in ("message_id", "date") if k in message}
    out["chat"] = {k: message["chat"][k] for k in ("id", "type") if k in message.get("chat", {})}
    if isinstance(message.get("from"), dict):
        out["from"] = {"first_name": "", **{k: message["from"][k] for k in USER_KEYS if k in message["from"]}}
    if isinstance(message.get("photo"), list) and message["photo"]:
        largest = max(message["photo"], key=lambda p: (p.get("width", 0) * p.get("height", 0), p.get("file_size", 0)))
        out["photo"] = [{k: largest[k] for k in FILE_KEYS if k in largest}]
    if isinstance(message.get("document"), dict):
        out["document"] = {k: message["document"][k] for k in FILE_KEYS if k in message["document"]}
    text_key = "caption" if "caption" in message else "text"
    entities = message.get("caption_entities" if text_key == "caption" else "entities")
    if isinstance(entities, list) and isinstance(message.get(text_key), str):  # mentions and commands: group rules
        kept = [e for e in entities if isinstance(e, dict) and e.get("type") in ("mention", "bot_command")]
        text, spans = _keep_spans(message[text_key], kept)
        out[text_key] = text
        out["caption_entities" if text_key == "caption" else "entities"] = spans
    if isinstance(message.get("reply_to_message"), dict):
        out["reply_to_message"] = _slim_message(message["reply_to_message"])
    return out


def _keep_spans(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The text reduced to its entities' spans (``@bot``, ``/lookalike``), with offsets shifted to match.

    Offsets count UTF-16 code units, as Telegram's do.
    """
    units = text.encode("utf-16-le")
    parts, kept, at = [], [], 0
    for entity in sorted(entities, key=lambda e: e["offset"]):
        span = units[2 * entity["offset"] : 2 * (entity["offset"] + entity["length"])].decode("utf-16-le")
        parts.append(span)
        kept.append({"type": entity["type"], "offset": at, "length": entity["length"]})
        at += entity["length"] + 1
    return " ".join(parts), kept


class Journal:
    """One SQLite table in the feedback store's file; one short connection per call (called through a thread).

    Calls raise StorageError when the file cannot be used: the bot then answers without a journal."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path, SCHEMA)

    def accept(self, raws: list[dict[str, Any]]) -> set[int]:
        """Record photo updates; returns the ids of those already known (redelivered: skip them)."""
        now = time.time()
        known = set()
        with self._connect() as db:
            for raw in raws:
                added = db.execute(
                    "INSERT OR IGNORE INTO journal VALUES (?, ?, ?, NULL)",
                    (raw["update_id"], json.dumps(slim(raw), ensure_ascii=False), now),
                )
                if added.rowcount == 0:
                    known.add(raw["update_id"])
        return known

    def answered(self, update_id: int) -> None:
        with self._connect() as db:
            db.execute("UPDATE journal SET answered = ? WHERE update_id = ?", (time.time(), update_id))

    def unanswered(self) -> list[dict[str, Any]]:
        """Updates received but never answered (a crash, ``kill -9``), oldest first; old answered ones pruned."""
        with self._connect() as db:
            db.execute(
                "DELETE FROM journal WHERE answered IS NOT NULL AND answered < ?", (time.time() - KEEP_ANSWERED,)
            )
            rows = db.execute("SELECT body FROM journal WHERE answered IS NULL ORDER BY update_id").fetchall()
        return [json.loads(body) for (body,) in rows]
