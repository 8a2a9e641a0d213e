"""What users do: write, send photos, files, stickers, videos and GIFs, and press inline buttons."""

from __future__ import annotations

import copy
import time
from typing import Unpack

from testkit.fake_bot_api.content import Content, without_none
from testkit.fake_bot_api.images import make_image
from testkit.fake_bot_api.model import JSON, Origin
from testkit.fake_bot_api.text import user_entities

DEFAULT_GROUP_ID = -1001234567890  # the chat of group messages injected without a chat_id


def _caption(caption: str | None) -> JSON:
    """A user's caption with the entities Telegram adds."""
    return {"caption": caption, "caption_entities": user_entities(caption or "") or None}


class UserActions(Content):
    """Each action queues the Update Telegram would deliver and returns it."""

    def send_text(
        self, user_id: int, text: str, *, entities: list[JSON] | None = None, **origin: Unpack[Origin]
    ) -> JSON:
        """A user writes ``text``; /commands and @mentions get entities as Telegram adds them (or pass ``entities``)."""
        found = user_entities(text) if entities is None else entities
        return self._inject(user_id, {"text": text, "entities": found or None}, origin)

    def send_photo(
        self,
        user_id: int,
        data: bytes,
        caption: str | None = None,
        *,
        file_size: int | None = None,
        **origin: Unpack[Origin],
    ) -> JSON:
        """A user sends a photo: a thumbnail and ``data`` (undecodable: one 0x0 size) reported as ``file_size``."""
        return self._inject(user_id, {"photo": self._photo(data, file_size, strict=False)} | _caption(caption), origin)

    def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str = "document.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        *,
        file_size: int | None = None,
        **origin: Unpack[Origin],
    ) -> JSON:
        """A user sends a file (e.g. an uncompressed photo); ``mime_type`` defaults from the name."""
        document = self._media_fields("document", data, file_name, mime_type, file_size)
        return self._inject(user_id, document | _caption(caption), origin)

    def send_sticker(self, user_id: int, emoji: str = "😀", **origin: Unpack[Origin]) -> JSON:
        """A user sends a static 512x512 WEBP sticker."""
        shape = {"type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False}
        extra = {**shape, "emoji": emoji, "set_name": "FakeStickers"}
        sticker = self._media_fields("sticker", make_image(512, 512, fmt="WEBP"), "sticker.webp", extra=extra)
        return self._inject(user_id, sticker, origin)

    def send_video(self, user_id: int, caption: str | None = None, **origin: Unpack[Origin]) -> JSON:
        """A user sends a 640x360, 3 s video (bytes that are no real video: the bot never needs them)."""
        clip = {"width": 640, "height": 360, "duration": 3}
        video = self._media_fields("video", b"\x00\x00\x00\x18ftypmp42fake-video", "video.mp4", extra=clip)
        return self._inject(user_id, video | _caption(caption), origin)

    def send_animation(self, user_id: int, caption: str | None = None, **origin: Unpack[Origin]) -> JSON:
        """A user sends a GIF; as on Telegram the message has both ``animation`` and ``document``."""
        clip = {"width": 320, "height": 240, "duration": 2}
        animation = self._media_fields("animation", b"GIF89a-fake-animation", "animation.mp4", extra=clip)
        return self._inject(user_id, animation | _caption(caption), origin)

    def press_button(
        self, user_id: int, message_id: int, data: str | None = None, *, text: str | None = None, check: bool = True
    ) -> JSON:
        """A user presses an inline button of bot message ``message_id``: queues a callback_query Update.

        Give the button's ``data`` or its label ``text``; with ``check`` the button must be in the message's
        current keyboard (a real client cannot press anything else).
        """
        with self._cond:
            message = copy.deepcopy(self._messages.get(message_id))
        if message is None or message["from"]["id"] != self.bot_id:
            raise ValueError(f"no message {message_id} of the bot")
        buttons = [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
        if text is not None:
            data = next((b.get("callback_data") for b in buttons if b.get("text") == text), None)
        if (check or text is not None) and (data is None or all(b.get("callback_data") != data for b in buttons)):
            raise ValueError(f"message {message_id} has no button {text or data!r}: {buttons}")
        query_id = str(next(self._ids))
        with self._cond:
            self._callback_queries[query_id] = {"at": time.monotonic(), "answered": False}
        user = self._user(user_id)
        query = {"id": query_id, "from": user, "message": message, "chat_instance": str(message["chat"]["id"])}
        return self.push_update({"callback_query": query | ({} if data is None else {"data": data})})

    def _inject(self, user_id: int, content: JSON, origin: Origin) -> JSON:
        """A user's message with ``content`` (None values left out) in the chat ``origin`` names; returns its Update."""
        chat_id, chat_type = origin.get("chat_id"), origin.get("chat_type", "private")
        with self._cond:
            user = self._user(user_id)
            user.update({"language_code": origin["language_code"]} if "language_code" in origin else {})
            if chat_type == "private" and chat_id not in (None, user_id):
                raise ValueError("a private chat's id is the user's id")
            chat = {"id": user_id, "type": "private", "first_name": user["first_name"], "username": user["username"]}
            if chat_type != "private":
                chat_id = DEFAULT_GROUP_ID if chat_id is None else chat_id
                chat = {"id": chat_id, "type": chat_type, "title": f"Group {chat_id}"}
            self._chats[chat["id"]] = chat
            reply_id = origin.get("reply_to")
            reply = self._reply_copy(reply_id, chat["id"])
            if reply_id is not None and reply is None:
                raise ValueError(f"no message {reply_id} in chat {chat['id']} to reply to")
            message = {"message_id": next(self._ids), "from": dict(user), "chat": chat, "date": int(time.time())}
            message = without_none(message | {"reply_to_message": reply} | content)
            self._messages[message["message_id"]] = message
            return self.push_update({"message": message})
