"""The Bot API methods the bot uses, checked and answered as Telegram does."""

from __future__ import annotations

import copy
import functools
import re
import time
from collections.abc import Callable
from typing import Any

from testkit.fake_bot_api.content import Content, without_none
from testkit.fake_bot_api.faults import Faults
from testkit.fake_bot_api.model import DESCRIPTIONS, JSON, ApiError, ChatId, Files, WebhookConfig, bad
from testkit.fake_bot_api.text import formatted

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files
CALLBACK_QUERY_TTL = 15.0  # seconds Telegram accepts answerCallbackQuery for a press
_WEBHOOK_CONFLICT = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook first"
_NOT_MODIFIED = "message is not modified: specified new message content and reply markup are exactly the same"


def _inline_markup(params: JSON) -> JSON | None:
    """The inline keyboard the message will carry (reply keyboards are not echoed), checked like Telegram."""
    markup = params.get("reply_markup")
    if not isinstance(markup, dict) or not markup.get("inline_keyboard"):
        return None
    for button in (button for row in markup["inline_keyboard"] for button in row):
        if not button.get("text"):
            raise bad("can't parse inline keyboard button: Text must be non-empty")
        if not 1 <= len(button.get("callback_data", "-").encode()) <= 64:
            raise bad("BUTTON_DATA_INVALID")
    return markup


class BotMethods(Faults, Content):
    """Handlers take the decoded (params, files) and return the ``result`` or raise ``ApiError``."""

    @functools.cached_property
    def _methods(self) -> dict[str, Callable[[JSON, Files], Any]]:
        """Handlers by lower-case method name: Telegram's method names are case-insensitive."""
        methods: dict[str, Callable[[JSON, Files], Any]] = {
            "getMe": lambda params, files: self.bot_user,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": lambda params, files: self._set_webhook({**params, "url": ""}, files),
            "setMyCommands": self._set_my_commands,
            "getFile": self._get_file,
            "sendMessage": lambda params, files: self._send("text", params, files),
            "sendPhoto": lambda params, files: self._send("photo", params, files),
            "sendAnimation": lambda params, files: self._send("animation", params, files),
            "sendVideo": lambda params, files: self._send("video", params, files),
            "sendDocument": lambda params, files: self._send("document", params, files),
            "sendChatAction": lambda params, files: self._check_can_send(params) is not None,
            "editMessageCaption": lambda params, files: self._edit(params, formatted(params, "caption")),
            "editMessageReplyMarkup": lambda params, files: self._edit(params, {}),
            "answerCallbackQuery": self._answer_callback_query,
        }
        return {name.lower(): handler for name, handler in methods.items()}

    def _get_updates(self, params: JSON, files: Files) -> list[JSON]:
        """Long-poll; ``offset`` confirms older updates; a newer getUpdates or a webhook ends it with 409."""
        offset, limit = int(params.get("offset") or 0), min(max(int(params.get("limit") or 100), 1), 100)
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self._cond:
            self._poll_generation += 1
            generation = self._poll_generation
            self._notify()
            if isinstance(params.get("allowed_updates"), list):
                self._allowed_updates = params["allowed_updates"] or None
            if offset:
                self._updates = self._updates[offset:] if offset < 0 else [e for e in self._updates if e[0] >= offset]
            while True:
                if self._webhook is not None:
                    raise ApiError(409, _WEBHOOK_CONFLICT)
                if generation != self._poll_generation:
                    raise ApiError(409, DESCRIPTIONS[409])
                allowed = self._allowed_updates
                batch = [u for _, u in self._updates if not allowed or any(k in allowed for k in u)][:limit]
                if batch or time.monotonic() >= deadline or self._closing.is_set() or self.outage_active:
                    return copy.deepcopy(batch)
                self._waiting_polls += 1
                self._notify()
                try:
                    self._cond.wait(deadline - time.monotonic())
                finally:
                    self._waiting_polls -= 1

    def _set_webhook(self, params: JSON, files: Files) -> bool:
        """Also deleteWebhook (an empty url); pending long-polls end with 409."""
        allowed = params.get("allowed_updates")
        with self._cond:
            if params.get("drop_pending_updates"):
                self._updates.clear()
            config = WebhookConfig(params.get("url", ""), params.get("secret_token"), allowed or None)
            self._webhook = config if config.url else None
            self._notify()
        return True

    def _set_my_commands(self, params: JSON, files: Files) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not all(re.fullmatch(r"[a-z0-9_]{1,32}", c["command"]) for c in commands):
            raise bad("BOT_COMMAND_INVALID")
        with self._cond:
            self._commands[params.get("language_code", "")] = commands
        return True

    def _get_file(self, params: JSON, files: Files) -> JSON:
        file_id = str(params.get("file_id"))
        with self._cond:
            stored, path = self._files.get(file_id), self._served_paths.get(file_id)
        if stored is None:
            raise bad("invalid file_id")
        if stored.size > MAX_DOWNLOAD_SIZE:
            raise bad("file is too big")
        ids = {"file_id": file_id, "file_unique_id": stored.unique_id, "file_size": stored.size}
        return ids | {"file_path": stored.path if path is None else path}

    def _check_can_send(self, params: JSON) -> ChatId:
        if (chat_id := params.get("chat_id")) in (None, ""):
            raise bad("chat_id is empty")
        if chat_id in self._blocked:
            raise ApiError(403, DESCRIPTIONS[403])
        return chat_id

    def _send(self, kind: str, params: JSON, files: Files) -> JSON:
        chat_id = self._check_can_send(params)
        content = formatted(params, "text" if kind == "text" else "caption")
        content["reply_markup"] = _inline_markup(params)
        content |= {} if kind == "text" else self._sent_media(kind, params, files)
        reply = params.get("reply_parameters") or {}
        with self._cond:
            private = isinstance(chat_id, int) and chat_id > 0
            chat = self._chats.get(chat_id, {"id": chat_id, "type": "private" if private else "group"})
            message = {"message_id": next(self._ids), "from": self.bot_user, "chat": chat, "date": int(time.time())}
            if "message_id" in reply:
                message["reply_to_message"] = self._reply_copy(reply["message_id"], chat_id)
                if message["reply_to_message"] is None and not reply.get("allow_sending_without_reply"):
                    raise bad("message to be replied not found")
            message = without_none(copy.deepcopy(message | content))
            self._messages[message["message_id"]] = message
            return copy.deepcopy(message)

    def _sent_media(self, kind: str, params: JSON, files: Files) -> JSON:
        """Message fields for the bot's ``kind`` parameter: a multipart upload or a file_id sent before."""
        value = params.get(kind)
        attached = value[len("attach://") :] if isinstance(value, str) and value.startswith("attach://") else kind
        if (upload := files.get(attached)) is None:
            with self._cond:
                known_kind, media = self._media.get(value, (None, None)) if isinstance(value, str) else (None, None)
            if known_kind is None:
                raise bad("wrong file identifier/HTTP URL specified")
            if known_kind != kind:
                raise bad(f"can't use file of type {known_kind.title()} as {kind.title()}")
            return self._media_copy(kind, media)
        if kind == "photo":
            return {"photo": self._photo(upload.data, strict=True)}
        mime = None if upload.content_type == "application/octet-stream" else upload.content_type
        clip = {k: int(params.get(k) or 0) for k in ("width", "height", "duration")} if kind != "document" else {}
        return self._media_fields(kind, upload.data, upload.filename, mime, extra=clip)

    def _edit(self, params: JSON, changes: JSON) -> JSON:
        """Apply ``changes`` and the given inline keyboard (none: removed) to a bot message."""
        changes = changes | {"reply_markup": _inline_markup(params)}
        with self._cond:
            message = self._messages.get(params.get("message_id"))
            if message is None or message["chat"]["id"] != params.get("chat_id"):
                raise bad("message to edit not found")
            if message["from"]["id"] != self.bot_id:
                raise bad("message can't be edited")
            if all(message.get(key) == value for key, value in changes.items()):
                raise bad(_NOT_MODIFIED)
            message.update(changes, edit_date=int(time.time()))
            self._messages[message["message_id"]] = without_none(message)
            return copy.deepcopy(self._messages[message["message_id"]])

    def _answer_callback_query(self, params: JSON, files: Files) -> bool:
        """Each press may be answered once, within ``CALLBACK_QUERY_TTL`` seconds."""
        with self._cond:
            query = self._callback_queries.get(str(params.get("callback_query_id")))
            if query is None or query["answered"] or time.monotonic() - query["at"] > CALLBACK_QUERY_TTL:
                raise bad("query is too old and response timeout expired or query ID is invalid")
            query["answered"] = True
        return True
