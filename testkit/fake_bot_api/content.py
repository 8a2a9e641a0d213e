"""Users, files and queued updates: what tests put into the fake, and the registry both sides' messages use."""

from __future__ import annotations

import copy
import mimetypes
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

from testkit.fake_bot_api.images import photo_sizes
from testkit.fake_bot_api.model import JSON, ChatId, StoredFile, bad
from testkit.fake_bot_api.state import State


def without_none(fields: JSON) -> JSON:
    """Telegram leaves absent fields out; the fake builds messages with None for "absent"."""
    return {key: value for key, value in fields.items() if value is not None}


class Content(State):
    """Users, files and updates: set up by tests, registered by messages either side sends."""

    def set_user(self, user_id: int, **fields: str | bool) -> JSON:
        """Set User fields (first_name, last_name, username, language_code, is_premium) for later messages."""
        with self._cond:
            user = self._user(user_id)
            user.update(fields)
            return dict(user)

    def add_file(
        self, data: bytes, file_path_hint: str = "documents/file.bin", *, file_size: int | None = None
    ) -> tuple[str, str, int]:
        """Make ``data`` downloadable via getFile; returns (file_id, file_unique_id, reported file_size).

        ``file_path_hint`` gives folder and extension; ``file_size`` may lie (e.g. 25 MB) to hit the 20 MB limit.
        """
        stored = self._store(data, file_path_hint, file_size)
        return stored.file_id, stored.unique_id, stored.size

    def file_bytes(self, file_id: str) -> bytes:
        """The content behind a file_id (uploaded by the bot, injected or added)."""
        with self._cond:
            return self._files[file_id].data

    def media_bytes(self, message: Mapping[str, Any]) -> bytes:
        """The file of a message's media (the largest PhotoSize of a photo)."""
        if message.get("photo"):
            return self.file_bytes(message["photo"][-1]["file_id"])
        media = next((message[k] for k in ("animation", "video", "document", "sticker") if message.get(k)), None)
        if media is None:
            raise ValueError("message has no media")
        return self.file_bytes(media["file_id"])

    def push_update(self, update: Mapping[str, Any]) -> JSON:
        """Queue an Update for getUpdates (``update_id`` is assigned when missing); returns it."""
        body = {"update_id": next(self._ids)} | copy.deepcopy(dict(update))
        return self._queue(body["update_id"], body)

    def push_raw_update(self, update: Mapping[str, Any]) -> JSON:
        """Queue ``update`` verbatim, however malformed (no ``update_id``, a message without ``chat``, ...).

        Telegram never sends such updates, but the bot must survive them.  One without an integer ``update_id``
        counts as confirmed once the bot confirms a later update.
        """
        key = update.get("update_id")
        return self._queue(key if type(key) is int else next(self._ids), copy.deepcopy(dict(update)))

    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates ``offset`` or a webhook delivery."""
        with self._cond:
            return [copy.deepcopy(update) for _, update in self._updates]

    def _queue(self, key: int, update: JSON) -> JSON:
        with self._cond:
            self._updates.append((key, update))
            self._notify()
        return update

    def _user(self, user_id: int) -> JSON:
        name = {"first_name": f"User{user_id}", "username": f"user{user_id}", "language_code": "en"}
        with self._cond:
            return self._users.setdefault(user_id, {"id": user_id, "is_bot": False, **name})

    def _reply_copy(self, message_id: Any, chat_id: ChatId) -> JSON | None:
        """The replied-to message as Telegram embeds it (not nested further), if it is in ``chat_id``."""
        original = self._messages.get(message_id)
        if original is None or original["chat"]["id"] != chat_id:
            return None
        return copy.deepcopy({k: v for k, v in original.items() if k != "reply_to_message"})

    def _store(self, data: bytes, path_hint: str, file_size: int | None = None) -> StoredFile:
        hint, n = PurePosixPath(path_hint), next(self._ids)
        path = f"{hint.parent if hint.parent.name else 'documents'}/file_{n}{hint.suffix}"
        size = len(data) if file_size is None else file_size
        stored = StoredFile(f"AgACAgIAAxkBAAI{n}", f"AQAD{n}", path, bytes(data), size)
        with self._cond:
            self._files[stored.file_id] = self._files_by_path[stored.path] = stored
        return stored

    def _photo(self, data: bytes, file_size: int | None = None, *, strict: bool) -> list[JSON]:
        """Register a photo's PhotoSizes; ``strict`` (the bot's uploads): undecodable -> 400 like Telegram."""
        variants = photo_sizes(data)
        if variants is None and strict:
            raise bad("IMAGE_PROCESS_FAILED")
        variants = variants or [(data, 0, 0)]
        sizes = []
        for index, (blob, width, height) in enumerate(variants, 1):
            stored = self._store(blob, "photos/photo.jpg", file_size if index == len(variants) else None)
            ids = {"file_id": stored.file_id, "file_unique_id": stored.unique_id, "file_size": stored.size}
            sizes.append(ids | {"width": width, "height": height})
        with self._cond:
            self._media.update((size["file_id"], ("photo", sizes)) for size in sizes)
        return copy.deepcopy(sizes)

    def _media_fields(
        self,
        kind: str,
        data: bytes,
        file_name: str,
        mime_type: str | None = None,
        file_size: int | None = None,
        extra: JSON | None = None,
    ) -> JSON:
        """Register a document, animation, video or sticker; returns the message fields that carry it.

        Telegram adds a ``document`` to every animation message: bots that treat documents as images must cope.
        """
        stored = self._store(data, f"{kind}s/{file_name}", file_size)
        media: JSON = {"file_id": stored.file_id, "file_unique_id": stored.unique_id, "file_size": stored.size}
        if kind != "sticker":
            media["file_name"] = file_name
            media["mime_type"] = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        media |= extra or {}
        with self._cond:
            self._media[stored.file_id] = (kind, media)
        return self._media_copy(kind, media)

    @staticmethod
    def _media_copy(kind: str, media: JSON) -> JSON:
        fields = {kind: copy.deepcopy(media)}
        if kind == "animation":
            keys = ("file_id", "file_unique_id", "file_size", "file_name", "mime_type")
            fields["document"] = {k: media[k] for k in keys if k in media}
        return fields
