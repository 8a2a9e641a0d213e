"""A fake Telegram Bot API HTTP server for end-to-end tests and benchmarks, serving only what the bot uses.

The real bot (python-telegram-bot) talks to it over 127.0.0.1 as it talks to Telegram, so httpx, PTB's request
encoding, retries, rate limiting and timeouts are all exercised::

    with FakeBotApi() as api:                    # a random port on 127.0.0.1, served by a daemon thread
        app = api.application_builder().build()  # token, base_url and base_file_url set
        api.send_photo(42, make_image())         # a user sends a photo (queued for getUpdates)
        [card] = api.wait_for_sent(chat_id=42)   # blocks until the bot answered; await the *_async twins instead
                                                 # when the bot runs in the caller's event loop

Served: getMe, getUpdates, setWebhook, deleteWebhook, setMyCommands, getFile and downloads, sendMessage, sendPhoto,
sendAnimation, sendVideo, sendDocument, sendChatAction, editMessageCaption, editMessageReplyMarkup and
answerCallbackQuery; other methods get 404 and a wrong token 401, like Telegram.  HTML is the only ``parse_mode``:
messages hold the plain text and entities, markup Telegram refuses gets 400 "can't parse entities".  Nothing is
logged: request lines contain the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import html
import http.client
import io
import itertools
import json
import mimetypes
import re
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from types import EllipsisType
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, TypeVar, Unpack

import pytest

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import ApplicationBuilder

__all__ = ["FakeBotApi", "Origin", "RateStats", "Request", "UploadedFile", "WaitTimeout", "fake_bot_api", "make_image"]

JSON = dict[str, Any]
Files = dict[str, "UploadedFile"]
ChatId = int | str
Secret = str | EllipsisType | None  # ...: the secret setWebhook stored; None: no header
T = TypeVar("T")

DEFAULT_TOKEN = "123456789:TEST-fake-token_ABCdefGHIjkl"
DEFAULT_GROUP_ID = -1001234567890  # the chat of group messages injected without a chat_id
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files
CALLBACK_QUERY_TTL = 15.0  # seconds Telegram accepts answerCallbackQuery for a press
#: Successful calls of these are messages in a chat: what ``sent()`` and the rate statistics count.
MESSAGE_METHODS = frozenset({"sendMessage", "sendPhoto", "sendAnimation", "sendVideo", "sendDocument"})
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_DESCRIPTIONS = {  # Telegram's words where they differ from the HTTP reason phrase
    403: "Forbidden: bot was blocked by the user",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
}
_WEBHOOK_CONFLICT = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook first"
_NOT_MODIFIED = "message is not modified: specified new message content and reply markup are exactly the same"
_LIMITS = {"text": 4096, "caption": 1024}  # UTF-16 units after parsing
# PTB sends strings raw and JSON-encodes all other values, so only these stay strings ("123" may be a text).
_STRING_FIELDS = frozenset(
    "text caption parse_mode callback_query_id url secret_token language_code action file_id photo animation video "
    "document".split()
)


class WaitTimeout(AssertionError, TimeoutError):
    """A ``wait_*`` gave up; an AssertionError so pytest reports a failed test, not an error."""


@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part the bot uploaded (the bytes of a sent photo, animation, ...)."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Request:
    """One HTTP request the bot made and its answer; ``status`` 0: its connection was dropped by an ``outage``.

    ``params`` are decoded (ints, bools, JSON objects such as ``reply_markup``); ``at`` is ``time.monotonic()``
    on arrival; ``injected`` marks answers made by fault injection.  Downloads are recorded as "download".
    """

    method: str
    params: JSON
    files: Files
    at: float
    chat_id: ChatId | None
    status: int
    response: JSON
    injected: bool = False

    @property
    def ok(self) -> bool:
        """Whether the bot got a successful answer."""
        return 200 <= self.status < 300

    @property
    def result(self) -> Any:
        """The answer's ``result`` (None for errors)."""
        return self.response.get("result")

    @property
    def message(self) -> JSON | None:
        """The Message a send*/edit* returned: its text or caption as users see it, tags stripped."""
        return self.result if isinstance(self.result, dict) and "message_id" in self.result else None

    @property
    def text(self) -> str | None:
        """The ``text`` (or ``caption``) parameter exactly as the bot sent it, markup included."""
        value = self.params.get("text", self.params.get("caption"))
        return value if isinstance(value, str) else None

    @property
    def reply_markup(self) -> JSON | None:
        """The ``reply_markup`` parameter (any keyboard type)."""
        markup = self.params.get("reply_markup")
        return markup if isinstance(markup, dict) else None

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard's buttons, row by row."""
        return [button for row in (self.reply_markup or {}).get("inline_keyboard") or [] for button in row]

    def upload(self, name: str | None = None) -> UploadedFile | None:
        """The uploaded file part ``name`` (default: the first one)."""
        return next(iter(self.files.values()), None) if name is None else self.files.get(name)


class WebhookConfig(NamedTuple):
    """What the bot passed to setWebhook."""

    url: str
    secret_token: str | None
    allowed_updates: list[str] | None


class RateStats(NamedTuple):
    """Most messages the bot sent within any ``window`` seconds: overall and per chat; ``total`` sent."""

    window: float
    overall: int
    per_chat: dict[ChatId, int]
    total: int


class Origin(TypedDict, total=False):
    """Where an injected user message comes from; a private chat unless ``chat_type`` says otherwise."""

    chat_id: ChatId
    chat_type: str  # "private", "group" or "supergroup"
    reply_to: int  # the id of a message in the same chat
    language_code: str  # sticks to the user for later messages


class _File(NamedTuple):
    file_id: str
    unique_id: str
    path: str
    data: bytes
    size: int  # what getFile reports: may lie, to test the 20 MB limit


class _Answer(NamedTuple):
    status: int
    response: JSON
    body: bytes | None = None  # sent instead of the JSON: a download, fail_next(body=...)
    content_type: str = "application/json"
    injected: bool = False


_DROPPED = _Answer(0, {}, injected=True)  # an outage: the connection is closed without an answer


@dataclass
class _Fault:
    method: str  # lower-case method, "download" or "*"
    chat_id: ChatId | None
    delay: float
    answer: _Answer | None  # None: only the delay, then a normal answer
    remaining: int


class ApiError(Exception):
    """A Telegram error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.payload: JSON = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            self.payload["parameters"] = {"retry_after": retry_after}


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# ------------------------------------------------------------------------------------------------ text


def _utf16(text: str) -> int:
    """Telegram counts entity offsets and length limits in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


_USER_ENTITIES = {
    "bot_command": re.compile(r"(?<!\S)/\w{1,64}(?:@\w{3,32})?(?![\w@/])"),
    "mention": re.compile(r"(?<![\w@/])@[A-Za-z]\w{3,31}(?![\w@])"),
}


def _user_entities(text: str) -> list[JSON]:
    """The entities Telegram adds to what users write: PTB's CommandHandler and mention checks rely on them."""
    found = sorted((m.start(), m.end(), kind) for kind, regex in _USER_ENTITIES.items() for m in regex.finditer(text))
    return [{"type": kind, "offset": _utf16(text[:a]), "length": _utf16(text[a:b])} for a, b, kind in found]


_HTML_RE = re.compile(r"<(/?)([A-Za-z][\w-]*)([^<>]*)>|&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);|<")
_HTML_TYPES = dict(
    pair.split(":")
    for pair in "b:bold strong:bold i:italic em:italic u:underline ins:underline s:strikethrough strike:strikethrough "
    "del:strikethrough span:spoiler tg-spoiler:spoiler a:text_link code:code pre:pre blockquote:blockquote "
    "tg-emoji:custom_emoji".split()
)


def parse_html(src: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse_mode: (plain text, entities); 400 "can't parse entities" for markup Telegram refuses."""
    text, entities, cursor = "", [], 0
    stack: list[tuple[str, int, str]] = []  # open tags: (tag, UTF-16 start, attributes)
    for m in _HTML_RE.finditer(src):
        text += src[cursor : m.start()]
        cursor = m.end()
        where = f"at byte offset {len(src[: m.start()].encode())}"
        tag = (m[2] or "").lower()
        if m[0].startswith("&"):
            text += html.unescape(m[0])
        elif m[0] == "<" or (not m[1] and (tag not in _HTML_TYPES or (tag == "span" and "tg-spoiler" not in m[3]))):
            raise _bad(f'can\'t parse entities: Unsupported start tag "{tag}" {where}')
        elif not m[1]:
            stack.append((tag, _utf16(text), m[3]))
        elif not stack or stack[-1][0] != tag:
            raise _bad(f'can\'t parse entities: Unmatched end tag "{tag}" {where}')
        elif (length := _utf16(text) - stack[-1][1]) > 0:
            _, start, attributes = stack.pop()
            entities.append({"type": _HTML_TYPES[tag], "offset": start, "length": length})
            if tag == "a":
                href = re.search(r"""href\s*=\s*["']([^"']*)""", attributes)
                entities[-1]["url"] = html.unescape(href[1]) if href else ""
        else:
            stack.pop()
    if stack:
        raise _bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    return text + src[cursor:], sorted(entities, key=lambda e: (e["offset"], -e["length"]))


# -------------------------------------------------------------------------------------------- requests


def _parse_multipart(body: bytes, boundary: bytes) -> tuple[list[tuple[str, str]], Files]:
    """httpx's multipart/form-data, as PTB uploads files: (form fields, file parts)."""
    fields: list[tuple[str, str]] = []
    files: Files = {}
    for part in body.split(b"--" + boundary)[1:-1]:
        raw_head, _, content = part.partition(b"\r\n\r\n")
        head, content = raw_head.decode("utf-8", "replace"), content.removesuffix(b"\r\n")
        name = re.search(r'\bname="([^"]*)"', head)
        filename = re.search(r'\bfilename="([^"]*)"', head)
        content_type = re.search(r"(?im)^content-type:\s*(\S+)", head)
        if name and filename:
            mime = content_type[1] if content_type else "application/octet-stream"
            files[name[1]] = UploadedFile(name[1], filename[1], mime, content)
        elif name:
            fields.append((name[1], content.decode("utf-8", "replace")))
    return fields, files


def _decode(content_type: str, body: bytes) -> tuple[JSON, Files]:
    """Parameters from a form or multipart body (PTB's encodings), JSON values decoded."""
    files: Files = {}
    if boundary := re.search(r'multipart/form-data;.*boundary="?([^";]+)', content_type, re.I):
        fields, files = _parse_multipart(body, boundary[1].encode("latin-1"))
    else:
        fields = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    params: JSON = {}
    for key, raw in fields:
        params[key] = raw
        if key not in _STRING_FIELDS:
            with contextlib.suppress(ValueError):
                params[key] = json.loads(raw)
    return params, files


# ---------------------------------------------------------------------------------------------- images


def make_image(
    width: int = 640, height: int = 480, *, color: tuple[int, int, int] = (180, 120, 90), fmt: str = "JPEG"
) -> bytes:
    """A small synthetic picture (an ellipse on a background) for tests that need *some* valid image."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), color)
    inverse = (255 - color[0], 255 - color[1], 255 - color[2])
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=inverse)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _photo_sizes(data: bytes) -> list[tuple[bytes, int, int]] | None:
    """Telegram's PhotoSizes as (bytes, width, height): a 90 px JPEG thumbnail, then ``data``; None if undecodable.

    A real thumbnail, so a bot that downloads anything but the largest size gets caught.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
            image.draft("RGB", (90, 90))  # JPEGs decode at a reduced scale: cheap under load
            image.thumbnail((90, 90))
            thumbnail = io.BytesIO()
            image.convert("RGB").save(thumbnail, "JPEG")
    except Exception:  # whatever Pillow makes of arbitrary bytes: Telegram would not see a photo either
        return None
    return [(thumbnail.getvalue(), image.width, image.height), (data, *size)]


# -------------------------------------------------------------------------------------------- the fake


class FakeBotApi:
    """The fake Telegram Bot API on 127.0.0.1, served by a thread: independent of any event loop or process.

    Every public method is thread-safe.  Injected updates stay pending until the bot confirms them with a
    getUpdates ``offset`` (or a webhook delivery succeeds), as on Telegram.
    """

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_username: str = "lookalike_test_bot") -> None:
        bot_id, sep, _ = token.partition(":")
        if not (sep and bot_id.isdigit()):
            raise ValueError("token must look like '<digits>:<secret>'")
        self.token, self.bot_id = token, int(bot_id)
        self.bot_user: JSON = {"id": self.bot_id, "is_bot": True, "first_name": "Lookalike", "username": bot_username}
        self.internal_errors: list[str] = []  # tracebacks of bugs in the fake itself
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._cond = threading.Condition(threading.RLock())  # guards all state below
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._records: list[Request] = []
        self._updates: list[tuple[int, JSON]] = []  # (update_id or a stand-in, update) not yet confirmed
        self._ids = itertools.count(100_000_001)  # update, message, file and callback query ids
        self._users: dict[int, JSON] = {}
        self._chats: dict[ChatId, JSON] = {}
        self._messages: dict[int, JSON] = {}  # the current state of user and bot messages
        self._callback_queries: dict[str, JSON] = {}
        self._files: dict[str, _File] = {}
        self._files_by_path: dict[str, _File] = {}
        self._media: dict[str, tuple[str, Any]] = {}  # file_id -> (kind, Telegram object): sending a file_id again
        self._faults: list[_Fault] = []
        self._blocked: set[ChatId] = set()
        self._served_paths: dict[str, str] = {}
        self._rate_limit: tuple[int | None, int | None, float, int] | None = None
        self._recent_sends: list[tuple[float, ChatId | None]] = []
        self._outage_until = self._poll_generation = self._waiting_polls = 0
        self._allowed_updates: list[str] | None = None
        self._webhook: WebhookConfig | None = None
        self._commands: dict[str, list[JSON]] = {}  # language_code ("" for all) -> commands
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
            "editMessageCaption": lambda params, files: self._edit(params, self._formatted(params, "caption")),
            "editMessageReplyMarkup": lambda params, files: self._edit(params, {}),
            "answerCallbackQuery": self._answer_callback_query,
        }
        self._methods = {name.lower(): handler for name, handler in methods.items()}

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeBotApi:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread; returns self."""
        if self._server is None:
            self._closing.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: ends pending long-polls and hangs, closes the socket, joins the thread."""
        server, self._server = self._server, None
        if server is not None and self._thread is not None:
            self._closing.set()
            with self._cond:
                self._notify()
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The TCP port bound on 127.0.0.1."""
        if self._server is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For ``base_url`` of PTB's Bot or ApplicationBuilder (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``base_file_url`` of PTB's Bot or ApplicationBuilder (PTB appends the token and the file path)."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def bot(self, **kwargs: Any) -> Bot:
        """A ``telegram.Bot`` wired to this server (``async with api.bot() as bot``)."""
        from telegram import Bot

        return Bot(self.token, base_url=self.base_url, base_file_url=self.base_file_url, **kwargs)

    def application_builder(self) -> ApplicationBuilder:
        """An ``ApplicationBuilder`` with token, base_url and base_file_url set."""
        from telegram.ext import ApplicationBuilder

        return ApplicationBuilder().token(self.token).base_url(self.base_url).base_file_url(self.base_file_url)

    def assert_no_internal_errors(self) -> None:
        """Fail if the fake itself crashed handling a request (a bug here, not in the bot)."""
        if self.internal_errors:
            raise AssertionError("the fake Bot API crashed:\n" + "\n".join(self.internal_errors))

    # ------------------------------------------------------------------------- users, files, updates

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

    # ------------------------------------------------------------------------- what users do

    def send_text(
        self, user_id: int, text: str, *, entities: list[JSON] | None = None, **origin: Unpack[Origin]
    ) -> JSON:
        """A user writes ``text``; /commands and @mentions get entities as Telegram adds them (or pass ``entities``)."""
        found = _user_entities(text) if entities is None else entities
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

    # ------------------------------------------------------------------------- what the bot did

    def requests(self, method: str | None = None, chat_id: ChatId | None = None) -> list[Request]:
        """Every request (failed, injected and dropped ones too), oldest first."""
        with self._cond:
            return [r for r in self._records if _matches(r, method, chat_id)]

    def sent(self, chat_id: ChatId | None = None, method: str | None = None) -> list[Request]:
        """Successful message sends (``MESSAGE_METHODS``), or successful calls of ``method``."""
        with self._cond:
            return [r for r in self._records if _is_sent(r, chat_id, method)]

    def last_sent(self, chat_id: ChatId | None = None) -> Request | None:
        """The latest successful message send, if any."""
        return next(reversed(self.sent(chat_id)), None)

    def message(self, message_id: int) -> JSON:
        """The current state of a message (bot messages reflect later edits)."""
        with self._cond:
            return copy.deepcopy(self._messages[message_id])

    @property
    def webhook(self) -> WebhookConfig | None:
        """The webhook the bot set, or None."""
        return self._webhook

    def commands(self, language_code: str = "") -> list[JSON]:
        """The commands setMyCommands stored for a language ("" for all)."""
        with self._cond:
            return copy.deepcopy(self._commands.get(language_code, []))

    def max_rate(self, window: float = 1.0, *, chat_id: ChatId | None = None) -> int:
        """Most messages sent within any ``window`` seconds, overall or to ``chat_id``."""
        return _max_in_window([r.at for r in self.sent(chat_id)], window)

    def rate_stats(self, window: float = 1.0) -> RateStats:
        """Overall and per-chat maximum of messages sent within any ``window`` seconds."""
        per_chat: dict[ChatId, list[float]] = {}
        for record in (sends := self.sent()):
            per_chat.setdefault(record.chat_id, []).append(record.at)
        per_chat_max = {chat: _max_in_window(times, window) for chat, times in per_chat.items()}
        return RateStats(window, _max_in_window([r.at for r in sends], window), per_chat_max, len(sends))

    # ------------------------------------------------------------------------- waiting without sleeping

    def wait_for(self, predicate: Callable[[Request], bool], timeout: float = 5.0, count: int = 1) -> list[Request]:
        """Block until ``count`` requests satisfy ``predicate``; returns all matching ones."""
        return self._wait(lambda: self._matching(predicate, count), timeout, f"{count} matching request(s)")

    def wait_for_sent(
        self, chat_id: ChatId | None = None, count: int = 1, timeout: float = 5.0, *, method: str | None = None
    ) -> list[Request]:
        """Block until the bot sent ``count`` messages (to ``chat_id``, by ``method``); returns them all."""
        return self.wait_for(lambda r: _is_sent(r, chat_id, method), timeout, count)

    def wait_for_poller(self, timeout: float = 5.0) -> None:
        """Block until a getUpdates long-poll is waiting (the bot polls and is idle)."""
        self._wait(lambda: self._waiting_polls > 0 or None, timeout, "a waiting getUpdates long-poll")

    def wait_until_consumed(self, timeout: float = 5.0) -> None:
        """Block until the bot confirmed every queued update."""
        self._wait(lambda: not self._updates or None, timeout, "all updates to be confirmed")

    async def wait_for_async(
        self, predicate: Callable[[Request], bool], timeout: float = 5.0, count: int = 1
    ) -> list[Request]:
        """``wait_for`` that yields to the event loop (for a bot running in the same loop)."""
        return await self._wait_async(lambda: self._matching(predicate, count), timeout, f"{count} request(s)")

    async def wait_for_sent_async(
        self, chat_id: ChatId | None = None, count: int = 1, timeout: float = 5.0, *, method: str | None = None
    ) -> list[Request]:
        """``wait_for_sent`` that yields to the event loop."""
        return await self.wait_for_async(lambda r: _is_sent(r, chat_id, method), timeout, count)

    async def wait_for_poller_async(self, timeout: float = 5.0) -> None:
        """``wait_for_poller`` that yields to the event loop."""
        await self._wait_async(lambda: self._waiting_polls > 0 or None, timeout, "a waiting getUpdates long-poll")

    async def wait_until_consumed_async(self, timeout: float = 5.0) -> None:
        """``wait_until_consumed`` that yields to the event loop."""
        await self._wait_async(lambda: not self._updates or None, timeout, "all updates to be confirmed")

    # ------------------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int = 2,
        description: str | None = None,
        count: int = 1,
        chat_id: ChatId | None = None,
        delay: float = 0.0,
        body: bytes | None = None,
    ) -> None:
        """Answer the next ``count`` calls of ``method`` ("*": any, "download": file downloads) with ``status``.

        Any status gets a Telegram-shaped body; 429 carries ``parameters.retry_after`` (PTB raises RetryAfter).
        ``chat_id`` limits the fault to one chat, ``delay`` answers late, ``body`` replaces the JSON (e.g. a
        proxy's HTML 502 page).
        """
        default = f"Too Many Requests: retry after {retry_after}" if status == 429 else None
        description = description or default or _DESCRIPTIONS.get(status) or http.client.responses.get(status, "Error")
        error = ApiError(status, description, retry_after if status == 429 else None).payload
        answer = _Answer(status, error, body, "text/html" if body else "application/json", injected=True)
        with self._cond:
            self._faults.append(_Fault(method.lower(), chat_id, delay, answer, count))

    def hang_next(self, method: str, seconds: float, *, count: int = 1, chat_id: ChatId | None = None) -> None:
        """Delay the next ``count`` calls of ``method`` by ``seconds``, then answer them normally.

        Triggers client timeouts; as on Telegram the message still arrives although the client gave up.
        """
        with self._cond:
            self._faults.append(_Fault(method.lower(), chat_id, seconds, None, count))

    def block_user(self, chat_id: ChatId) -> None:
        """From now on sending to ``chat_id`` fails with 403 (the user blocked the bot)."""
        with self._cond:
            self._blocked.add(chat_id)

    def unblock_user(self, chat_id: ChatId) -> None:
        """Undo ``block_user``."""
        with self._cond:
            self._blocked.discard(chat_id)

    def enforce_rate_limit(
        self, per_chat: int | None = None, overall: int | None = None, *, window: float = 1.0, retry_after: int = 1
    ) -> None:
        """Answer 429 to a send beyond ``per_chat`` / ``overall`` messages in ``window`` seconds; none: off.

        Telegram allows about 1/s per chat and 30/s overall.
        """
        with self._cond:
            self._rate_limit = (per_chat, overall, window, retry_after) if per_chat or overall else None
            self._recent_sends.clear()

    def outage(self, seconds: float) -> None:
        """For ``seconds`` every request (API and downloads) gets its connection closed without an answer.

        The client sees a network error, as when Telegram is unreachable; pending long-polls are cut too.  The
        requests are recorded with status 0.  Service resumes by itself.
        """
        with self._cond:
            self._outage_until = time.monotonic() + seconds
            self._notify()

    @property
    def outage_active(self) -> bool:
        """Whether an ``outage`` is in progress."""
        return time.monotonic() < self._outage_until

    def serve_file_path(self, file_id: str, path: str) -> None:
        """getFile for the known ``file_id`` answers ``file_path`` = ``path`` verbatim.

        E.g. an absolute local path such as "/etc/hostname": PTB would read that local file; the bot must not.
        """
        with self._cond:
            if file_id not in self._files:
                raise KeyError(file_id)
            self._served_paths[file_id] = path

    def clear_faults(self) -> None:
        """Remove pending fail_next/hang_next faults, blocks, the rate limit, an outage and served paths."""
        with self._cond:
            self._faults.clear()
            self._blocked.clear()
            self._served_paths.clear()
            self._rate_limit, self._outage_until = None, 0.0

    # ------------------------------------------------------------------------- webhooks

    def deliver_webhook(
        self, url: str | None = None, update: JSON | None = None, secret_token: Secret = ..., *, timeout: float = 10.0
    ) -> int:
        """POST ``update`` (default: the oldest pending) to the webhook like Telegram; returns the HTTP status.

        ``url`` and ``secret_token`` default to what setWebhook stored; ``secret_token=None`` omits the header.
        A 2xx answer confirms the update.  Blocking: from the bot's own loop use ``deliver_webhook_async``.
        """
        update = dict(update or next(iter(self.pending_updates()), {}))
        if not update:
            raise ValueError("no pending update to deliver")
        status = self.deliver_webhook_raw(url, json.dumps(update).encode(), secret_token, timeout=timeout)
        if 200 <= status < 300:
            with self._cond:
                self._updates = [(k, u) for k, u in self._updates if u.get("update_id") != update.get("update_id")]
                self._notify()
        return status

    def deliver_webhook_raw(
        self, url: str | None, body: bytes, secret_token: Secret = ..., *, timeout: float = 10.0
    ) -> int:
        """POST arbitrary ``body`` bytes (e.g. b"null", b"[]") to the webhook; returns the HTTP status."""
        config = self._webhook
        target = url or (config.url if config else "")
        if urllib.parse.urlsplit(target).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"webhooks are only delivered to a loopback url, not {target!r}")
        token = (config.secret_token if config else None) if secret_token is ... else secret_token
        headers = {"Content-Type": "application/json"} | ({SECRET_HEADER: token} if token is not None else {})
        request = urllib.request.Request(target, data=body, headers=headers, method="POST")
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=timeout) as answer:
                answer.read()
                return int(answer.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code

    async def deliver_webhook_async(
        self, url: str | None = None, update: JSON | None = None, secret_token: Secret = ..., *, timeout: float = 10.0
    ) -> int:
        """``deliver_webhook`` from a worker thread, so a webhook server in the caller's loop can answer."""
        return await asyncio.to_thread(self.deliver_webhook, url, update, secret_token, timeout=timeout)

    async def deliver_webhook_raw_async(
        self, url: str | None, body: bytes, secret_token: Secret = ..., *, timeout: float = 10.0
    ) -> int:
        """``deliver_webhook_raw`` from a worker thread."""
        return await asyncio.to_thread(self.deliver_webhook_raw, url, body, secret_token, timeout=timeout)

    # ================================================================================== internals

    def _notify(self) -> None:
        """Wake sync and async waiters; call with the lock held after any change."""
        self._cond.notify_all()
        for loop, event in list(self._async_waiters):
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(event.set)

    def _wait(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while (value := check()) is None:
                if (remaining := deadline - time.monotonic()) <= 0:
                    raise WaitTimeout(self._timeout_message(what, timeout))
                self._cond.wait(remaining)
            return value

    async def _wait_async(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        loop = asyncio.get_running_loop()
        waiter = (loop, asyncio.Event())
        deadline = loop.time() + timeout
        with self._cond:
            self._async_waiters.add(waiter)
        try:
            while True:
                waiter[1].clear()
                with self._cond:
                    if (value := check()) is not None:
                        return value
                if (remaining := deadline - loop.time()) <= 0:
                    raise WaitTimeout(self._timeout_message(what, timeout))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), remaining)
        finally:
            with self._cond:
                self._async_waiters.discard(waiter)

    def _timeout_message(self, what: str, timeout: float) -> str:
        """What the bot did lately, so a failed wait explains itself."""
        with self._cond:
            recent = [r for r in self._records if r.method != "getUpdates"][-15:]
            pending = len(self._updates)
        lines = [f"  {r.method} {r.chat_id} -> {r.status} {r.response.get('description', '')}" for r in recent]
        return f"timed out after {timeout}s waiting for {what}; {pending} unconfirmed update(s); recent requests:\n" + (
            "\n".join(lines) or "  (none besides getUpdates)"
        )

    def _matching(self, predicate: Callable[[Request], bool], count: int) -> list[Request] | None:
        matches = [r for r in self._records if predicate(r)]
        return matches if len(matches) >= count else None

    def _queue(self, key: int, update: JSON) -> JSON:
        with self._cond:
            self._updates.append((key, update))
            self._notify()
        return update

    def _user(self, user_id: int) -> JSON:
        name = {"first_name": f"User{user_id}", "username": f"user{user_id}", "language_code": "en"}
        with self._cond:
            return self._users.setdefault(user_id, {"id": user_id, "is_bot": False, **name})

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
            message = _without_none(message | {"reply_to_message": reply} | content)
            self._messages[message["message_id"]] = message
            return self.push_update({"message": message})

    def _reply_copy(self, message_id: Any, chat_id: ChatId) -> JSON | None:
        """The replied-to message as Telegram embeds it (not nested further), if it is in ``chat_id``."""
        original = self._messages.get(message_id)
        if original is None or original["chat"]["id"] != chat_id:
            return None
        return copy.deepcopy({k: v for k, v in original.items() if k != "reply_to_message"})

    def _store(self, data: bytes, path_hint: str, file_size: int | None = None) -> _File:
        hint, n = PurePosixPath(path_hint), next(self._ids)
        path = f"{hint.parent if hint.parent.name else 'documents'}/file_{n}{hint.suffix}"
        size = len(data) if file_size is None else file_size
        stored = _File(f"AgACAgIAAxkBAAI{n}", f"AQAD{n}", path, bytes(data), size)
        with self._cond:
            self._files[stored.file_id] = self._files_by_path[stored.path] = stored
        return stored

    def _photo(self, data: bytes, file_size: int | None = None, *, strict: bool) -> list[JSON]:
        """Register a photo's PhotoSizes; ``strict`` (the bot's uploads): undecodable -> 400 like Telegram."""
        variants = _photo_sizes(data)
        if variants is None and strict:
            raise _bad("IMAGE_PROCESS_FAILED")
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

    # ------------------------------------------------------------------------- HTTP dispatch

    def _internal_error(self, text: str) -> None:
        with self._cond:
            self.internal_errors.append(text)

    def _handle(self, raw_path: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        """Answer and record one HTTP request (before the client can see the answer); ``_DROPPED``: hang up."""
        at, split = time.monotonic(), urllib.parse.urlsplit(raw_path)
        route = re.fullmatch(r"/(file/)?bot([^/]*)/(.*)", urllib.parse.unquote(split.path), re.S)
        method = ("download" if route[1] else route[3]) if route else split.path
        params: JSON = {"file_path": route[3]} if route and route[1] else {}
        files: Files = {}
        try:
            if route is None:
                raise ApiError(404, "Not Found")
            if not route[1]:
                params, files = _decode(headers.get("Content-Type", ""), body)
            answer = _DROPPED if self.outage_active else self._answer(route[2], method, params, files)
        except ApiError as exc:
            answer = _Answer(exc.status, exc.payload)
        except Exception:
            self._internal_error(traceback.format_exc())
            answer = _Answer(500, ApiError(500, "Internal Server Error: a bug in the fake Bot API").payload)
        answer = _DROPPED if self.outage_active else answer  # went down meanwhile: the answer is lost on the way
        record = Request(method, params, files, at, params.get("chat_id"), answer.status, answer.response)
        with self._cond:
            self._records.append(replace(record, injected=answer.injected))
            self._notify()
        return answer

    def _answer(self, token: str, method: str, params: JSON, files: Files) -> _Answer:
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        handler = self._download if method == "download" else self._methods.get(method.lower())
        if handler is None:
            raise ApiError(404, "Not Found")
        chat_id = params.get("chat_id")
        if fault := self._take_fault(method, chat_id):
            self._closing.wait(fault.delay)
            if fault.answer is not None:
                return fault.answer
        if (retry_after := self._rate_limited(method, chat_id)) is not None:
            error = ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after).payload
            return _Answer(429, error, injected=True)
        result = handler(params, files)
        return result if isinstance(result, _Answer) else _Answer(200, {"ok": True, "result": result})

    def _take_fault(self, method: str, chat_id: ChatId | None) -> _Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.method in ("*", method.lower()) and fault.chat_id in (None, chat_id):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _rate_limited(self, method: str, chat_id: ChatId | None) -> int | None:
        """retry_after when ``enforce_rate_limit`` forbids this send; otherwise the send takes a slot."""
        with self._cond:
            if self._rate_limit is None or method not in MESSAGE_METHODS:
                return None
            per_chat, overall, window, retry_after = self._rate_limit
            now = time.monotonic()
            self._recent_sends = [(at, chat) for at, chat in self._recent_sends if at > now - window]
            in_chat = sum(chat == chat_id for _, chat in self._recent_sends)
            if len(self._recent_sends) >= (overall or sys.maxsize) or in_chat >= (per_chat or sys.maxsize):
                return retry_after
            self._recent_sends.append((now, chat_id))
            return None

    def _download(self, params: JSON, files: Files) -> _Answer:
        with self._cond:
            stored = self._files_by_path.get(params["file_path"])
        if stored is None:
            raise ApiError(404, "Not Found")
        content_type = mimetypes.guess_type(stored.path)[0] or "application/octet-stream"
        return _Answer(200, {"ok": True, "result": {"file_size": len(stored.data)}}, stored.data, content_type)

    # ------------------------------------------------------------------------- Bot API methods

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
                    raise ApiError(409, _DESCRIPTIONS[409])
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
            raise _bad("BOT_COMMAND_INVALID")
        with self._cond:
            self._commands[params.get("language_code", "")] = commands
        return True

    def _get_file(self, params: JSON, files: Files) -> JSON:
        file_id = str(params.get("file_id"))
        with self._cond:
            stored, path = self._files.get(file_id), self._served_paths.get(file_id)
        if stored is None:
            raise _bad("invalid file_id")
        if stored.size > MAX_DOWNLOAD_SIZE:
            raise _bad("file is too big")
        ids = {"file_id": file_id, "file_unique_id": stored.unique_id, "file_size": stored.size}
        return ids | {"file_path": stored.path if path is None else path}

    def _check_can_send(self, params: JSON) -> ChatId:
        if (chat_id := params.get("chat_id")) in (None, ""):
            raise _bad("chat_id is empty")
        if chat_id in self._blocked:
            raise ApiError(403, _DESCRIPTIONS[403])
        return chat_id

    @staticmethod
    def _formatted(params: JSON, key: str) -> JSON:
        """The ``text`` or ``caption`` message fields (HTML parsed) with their entities; None means absent."""
        entities_key = "entities" if key == "text" else "caption_entities"
        mode = str(params.get("parse_mode") or "").lower()
        if mode not in ("", "html"):
            raise _bad(f"unsupported parse_mode {mode!r}: the fake Bot API only speaks HTML")
        raw = params.get(key) or ""
        text, entities = parse_html(raw) if mode else (raw, params.get(entities_key))
        if key == "text" and not text.strip():
            raise _bad("message text is empty")
        if _utf16(text) > _LIMITS[key]:
            raise _bad(f"message {'' if key == 'text' else 'caption '}is too long")
        return {key: text or None, entities_key: entities or None}

    @staticmethod
    def _inline_markup(params: JSON) -> JSON | None:
        """The inline keyboard the message will carry (reply keyboards are not echoed), checked like Telegram."""
        markup = params.get("reply_markup")
        if not isinstance(markup, dict) or not markup.get("inline_keyboard"):
            return None
        for button in (button for row in markup["inline_keyboard"] for button in row):
            if not button.get("text"):
                raise _bad("can't parse inline keyboard button: Text must be non-empty")
            if not 1 <= len(button.get("callback_data", "-").encode()) <= 64:
                raise _bad("BUTTON_DATA_INVALID")
        return markup

    def _send(self, kind: str, params: JSON, files: Files) -> JSON:
        chat_id = self._check_can_send(params)
        content = self._formatted(params, "text" if kind == "text" else "caption")
        content["reply_markup"] = self._inline_markup(params)
        content |= {} if kind == "text" else self._sent_media(kind, params, files)
        reply = params.get("reply_parameters") or {}
        with self._cond:
            private = isinstance(chat_id, int) and chat_id > 0
            chat = self._chats.get(chat_id, {"id": chat_id, "type": "private" if private else "group"})
            message = {"message_id": next(self._ids), "from": self.bot_user, "chat": chat, "date": int(time.time())}
            if "message_id" in reply:
                message["reply_to_message"] = self._reply_copy(reply["message_id"], chat_id)
                if message["reply_to_message"] is None and not reply.get("allow_sending_without_reply"):
                    raise _bad("message to be replied not found")
            message = _without_none(copy.deepcopy(message | content))
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
                raise _bad("wrong file identifier/HTTP URL specified")
            if known_kind != kind:
                raise _bad(f"can't use file of type {known_kind.title()} as {kind.title()}")
            return self._media_copy(kind, media)
        if kind == "photo":
            return {"photo": self._photo(upload.data, strict=True)}
        mime = None if upload.content_type == "application/octet-stream" else upload.content_type
        clip = {k: int(params.get(k) or 0) for k in ("width", "height", "duration")} if kind != "document" else {}
        return self._media_fields(kind, upload.data, upload.filename, mime, extra=clip)

    def _edit(self, params: JSON, changes: JSON) -> JSON:
        """Apply ``changes`` and the given inline keyboard (none: removed) to a bot message."""
        changes = changes | {"reply_markup": self._inline_markup(params)}
        with self._cond:
            message = self._messages.get(params.get("message_id"))
            if message is None or message["chat"]["id"] != params.get("chat_id"):
                raise _bad("message to edit not found")
            if message["from"]["id"] != self.bot_id:
                raise _bad("message can't be edited")
            if all(message.get(key) == value for key, value in changes.items()):
                raise _bad(_NOT_MODIFIED)
            message.update(changes, edit_date=int(time.time()))
            self._messages[message["message_id"]] = _without_none(message)
            return copy.deepcopy(self._messages[message["message_id"]])

    def _answer_callback_query(self, params: JSON, files: Files) -> bool:
        """Each press may be answered once, within ``CALLBACK_QUERY_TTL`` seconds."""
        with self._cond:
            query = self._callback_queries.get(str(params.get("callback_query_id")))
            if query is None or query["answered"] or time.monotonic() - query["at"] > CALLBACK_QUERY_TTL:
                raise _bad("query is too old and response timeout expired or query ID is invalid")
            query["answered"] = True
        return True


def _caption(caption: str | None) -> JSON:
    """A user's caption with the entities Telegram adds."""
    return {"caption": caption, "caption_entities": _user_entities(caption or "") or None}


def _without_none(fields: JSON) -> JSON:
    """Telegram leaves absent fields out; the fake builds messages with None for "absent"."""
    return {key: value for key, value in fields.items() if value is not None}


def _matches(record: Request, method: str | None, chat_id: ChatId | None) -> bool:
    return (method is None or record.method.lower() == method.lower()) and chat_id in (None, record.chat_id)


def _is_sent(record: Request, chat_id: ChatId | None, method: str | None) -> bool:
    return record.ok and (method is not None or record.method in MESSAGE_METHODS) and _matches(record, method, chat_id)


def _max_in_window(times: list[float], window: float) -> int:
    """Most timestamps inside any half-open interval ``(t - window, t]``."""
    times, best, start = sorted(times), 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


# ------------------------------------------------------------------------------------------------ HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: FakeBotApi) -> None:
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (cancelled long-polls, timeouts) are normal; anything else is a bug of the fake."""
        if not isinstance(sys.exc_info()[1], OSError):
            self.api._internal_error(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx's connection pool expects
    disable_nagle_algorithm = True  # and one buffered write per response: no delayed-ACK stalls
    wbufsize = 64 * 1024
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.api._handle(self.path, self.headers, body)
        if answer is _DROPPED:  # an outage: hang up without a response
            self.close_connection = True
            return
        payload = json.dumps(answer.response).encode() if answer.body is None else answer.body
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: request lines contain the token."""


@pytest.fixture
def fake_bot_api() -> Iterator[FakeBotApi]:
    """A started :class:`FakeBotApi`; the test fails if the fake itself crashed."""
    with FakeBotApi() as api:
        yield api
        api.assert_no_internal_errors()
