"""A fake Telegram Bot API *HTTP server* for end-to-end tests, load tests and benchmarks.

The real bot (a python-telegram-bot ``Application``) talks to it over loopback HTTP exactly as it talks
to Telegram, so the whole stack is exercised: httpx, PTB's request encoding, JSON de-serialisation,
retries, rate limiting, timeouts.  Nothing here touches the network beyond 127.0.0.1.

Quick start::

    from fake_bot_api import FakeBotApi          # tests/ is on sys.path under pytest

    with FakeBotApi() as api:                    # serves on 127.0.0.1:<random port> in a thread
        app = api.application_builder().build()  # token + base_url + base_file_url pre-set
        # ... or ApplicationBuilder().token(api.token).base_url(api.base_url).base_file_url(api.base_file_url)
        api.send_text(42, "/start")              # a user writes to the bot (queued for getUpdates)
        api.send_photo(42, jpeg_bytes)           # 3-4 PhotoSize entries; only the largest is the real file
        [reply] = api.wait_for_sent(chat_id=42)  # blocks (condition variable) until the bot answered
        assert "Привет" in reply.text

In ``async`` tests where the bot runs in the *same* event loop, never call the blocking ``wait_*``
helpers (they would freeze the loop and with it the bot); await the ``*_async`` twins instead::

    [reply] = await api.wait_for_sent_async(chat_id=42)

The pytest fixture ``fake_bot_api`` (defined at the bottom) yields a started server and fails the test
if the fake itself crashed.  Re-export it from ``tests/conftest.py`` with
``from fake_bot_api import fake_bot_api  # noqa: F401`` (``pytest_plugins`` is not allowed in a
non-root conftest, and in a test module it triggers an assert-rewrite warning), or write your own
fixture around ``with FakeBotApi() as api: yield api``.  Outside pytest (benchmarks) put ``tests/`` on
``sys.path`` or import ``tests.fake_bot_api``.

Public API of :class:`FakeBotApi` (every method is thread-safe):

Lifecycle / wiring
    ``FakeBotApi(token=..., bot_username=..., bot_first_name=..., callback_query_ttl=15.0)``,
    ``start()``, ``close()``, context manager; ``port``, ``base_url``, ``base_file_url``, ``token``,
    ``bot_id``, ``bot_user``; ``bot(**kw)`` -> ``telegram.Bot``; ``application_builder()``.
Injecting what users do (each returns the Update dict that getUpdates will deliver)
    ``send_text``, ``send_photo``, ``send_document``, ``send_sticker``, ``send_video``,
    ``send_animation``, ``send_content`` (any message content), ``press_button`` (callback_query),
    ``push_update`` (raw), ``set_user``, ``add_file(data, file_path_hint) -> (file_id, unique_id, size)``.
Inspecting what the bot did
    ``requests(method, chat_id)`` (everything, incl. failures), ``sent(chat_id, method)`` (successful
    messages), ``last_sent``, ``message(message_id)`` (current state after edits), ``file_bytes``,
    ``media_bytes(message)``, ``pending_updates``, ``polls_waiting``, ``webhook``, ``commands``,
    ``clear_records``, ``internal_errors`` / ``assert_no_internal_errors()``.  Each
    :class:`Request` has ``method, params, files, at, chat_id, status, response, injected`` and
    helpers ``ok, result, message, messages, text, reply_markup, buttons, upload(name)``.
Waiting without sleeping
    ``wait_for(predicate, timeout, count)``, ``wait_for_sent(chat_id, count, timeout)``,
    ``wait_for_poller()``, ``wait_until_consumed()`` and their ``*_async`` twins.  They raise
    :class:`WaitTimeout` (an ``AssertionError``) listing the recent requests.
Fault injection
    ``fail_next(method, status=429, retry_after=2, count=1, chat_id=None, delay=0, body=None)``,
    ``hang_next(method, seconds)``, ``block_user(chat_id)`` / ``unblock_user``,
    ``enforce_rate_limit(per_chat=..., overall=..., window=1.0)``, ``clear_faults()``.
    ``method`` may be ``"*"`` (any) or ``"download"`` (file downloads).
Webhooks
    ``setWebhook`` is stored (``api.webhook``); while set, getUpdates answers 409 like Telegram.
    ``deliver_webhook(url, update, secret_token)`` POSTs an update like Telegram (header
    ``X-Telegram-Bot-Api-Secret-Token``) and returns the HTTP status; ``deliver_webhook_async``
    (use it when the bot's webhook server runs in your loop); ``flush_webhook()``.
Rate statistics
    ``max_rate(window=1.0, chat_id=None)`` and ``rate_stats(window=1.0)`` (overall and per chat maximum
    number of messages sent in any window).
Module helpers
    ``make_image(width, height)`` -> JPEG bytes, ``detect_entities(text)``, ``utf16_len(text)``,
    constants ``DEFAULT_TOKEN``, ``DEFAULT_GROUP_ID`` (chat of ``chat_type="group"/"supergroup"``
    injections), ``MAX_DOWNLOAD_SIZE``, ``MESSAGE_METHODS``.

Emulated Telegram behaviour worth knowing (all of it is what the real API does):

* ``parse_mode`` HTML / MarkdownV2 / Markdown is parsed: the returned Message holds the plain text and
  entities; malformed markup -> 400 ``can't parse entities: ...`` (unsupported tags such as ``<br>``,
  unescaped ``.`` or ``-`` in MarkdownV2, unclosed tags).  ``Request.text`` is the raw text as sent.
* text > 4096 or caption > 1024 characters (UTF-16 units, after parsing) -> 400; empty text -> 400.
* callback_data longer than 64 bytes -> 400 ``BUTTON_DATA_INVALID``.
* edit* with identical content -> 400 ``message is not modified``; editing without ``reply_markup``
  removes the inline keyboard; unknown message -> 400 ``message to edit not found``.
* answerCallbackQuery: unknown, already answered or older than ``callback_query_ttl`` -> 400.
* getFile: unknown id -> 400 ``invalid file_id``; reported size > 20 MB -> 400 ``file is too big``.
* getUpdates: ``offset`` confirms (drops) older updates, negative offsets keep the last ``-offset``;
  a second getUpdates terminates a pending long-poll with 409; an active webhook -> 409.
* Unknown method -> 404 ``Not Found`` (PTB raises ``InvalidToken`` for that!); wrong token -> 401.
* Photos: only the largest PhotoSize is the uploaded/injected file itself; the smaller ones are JPEG
  thumbnails (longest side 90/320/800) made with Pillow.  Telegram would also re-encode the largest.
  A bot-sent photo Pillow cannot decode -> 400 ``IMAGE_PROCESS_FAILED``.
* Messages echo back only *inline* keyboards (a ReplyKeyboardMarkup is in ``Request.params`` only).
* Not emulated: inline mode, payments, chat administration, forum topics, message reactions; any
  method not listed in ``FakeBotApi._method_table`` answers 404.

Nothing is logged, so the token never appears in logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import io
import itertools
import json
import mimetypes
import re
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePosixPath
from types import EllipsisType
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import ApplicationBuilder

__all__ = [
    "DEFAULT_GROUP_ID",
    "DEFAULT_TOKEN",
    "MAX_DOWNLOAD_SIZE",
    "MESSAGE_METHODS",
    "FakeBotApi",
    "RateStats",
    "Request",
    "UploadedFile",
    "WaitTimeout",
    "WebhookConfig",
    "detect_entities",
    "fake_bot_api",
    "make_image",
    "utf16_len",
]

JSON = dict[str, Any]
ChatId = int | str
T = TypeVar("T")

# --------------------------------------------------------------------------------------------------
# Constants (values as documented by / observed from the real Bot API)
# --------------------------------------------------------------------------------------------------

DEFAULT_TOKEN = "123456789:TEST-fake-token_ABCdefGHIjkl"
DEFAULT_GROUP_ID = -1001234567890
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024  # getFile refuses bigger files
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
PHOTO_THUMB_SIDES = (90, 320, 800)  # Telegram's "s", "m", "x" photo sizes (longest side)

#: Methods whose success creates user-visible messages; ``sent()`` and the rate statistics count these.
MESSAGE_METHODS = frozenset(
    "sendMessage sendPhoto sendDocument sendVideo sendAnimation sendSticker sendAudio sendVoice sendMediaGroup".split()
)
CHAT_ACTIONS = frozenset(
    "typing upload_photo record_video upload_video record_voice upload_voice upload_document choose_sticker "
    "find_location record_video_note upload_video_note".split()
)
ERROR_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Form fields that must stay strings even when they look like JSON ("123", "true").
_STRING_FIELDS = frozenset(
    "text caption parse_mode callback_query_id inline_message_id url secret_token language_code action "
    "file_id photo document video animation audio voice sticker thumbnail emoji title description "
    "short_description name data query ip_address message_effect_id business_connection_id certificate".split()
)
# Fields carrying JSON objects/arrays; Telegram accepts them JSON-encoded inside form fields.
_JSON_FIELDS = frozenset(
    "reply_markup entities caption_entities allowed_updates commands scope media link_preview_options "
    "reply_parameters menu_button results".split()
)
_ID_FIELDS = ("chat_id", "from_chat_id", "user_id", "message_id", "offset", "limit")
_MEDIA_KEYS = ("photo", "document", "video", "animation", "audio", "voice", "sticker")


# --------------------------------------------------------------------------------------------------
# Records and small value types
# --------------------------------------------------------------------------------------------------


class WaitTimeout(AssertionError, TimeoutError):
    """A ``wait_*`` helper gave up; an AssertionError so pytest reports it as a test failure."""


@dataclass(frozen=True)
class UploadedFile:
    """One multipart file part of a request (PTB uploads bytes and file objects this way)."""

    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class StoredFile:
    """A file the fake can serve via getFile + download; ``file_size`` is what it *reports* (may lie)."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    file_size: int


@dataclass(frozen=True)
class Request:
    """One HTTP request the bot made, with what the fake answered.

    ``at`` is ``time.monotonic()`` at arrival; ``params`` are decoded (ints, bools, parsed JSON for
    ``reply_markup`` and friends) whatever the encoding (query, form, multipart or JSON body).
    """

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    at: float
    chat_id: ChatId | None
    status: int
    response: dict[str, Any]
    http_method: str = "POST"
    injected: bool = False  # True when the answer came from fail_next()/enforce_rate_limit()

    @property
    def ok(self) -> bool:
        """Whether the bot got a successful answer."""
        return 200 <= self.status < 300

    @property
    def result(self) -> Any:
        """The ``result`` field of the answer (None for errors)."""
        return self.response.get("result")

    @property
    def message(self) -> JSON | None:
        """The Message returned by send*/edit* (the first one for sendMediaGroup), else None."""
        messages = self.messages
        return messages[0] if messages else None

    @property
    def messages(self) -> list[JSON]:
        """All Messages returned (several for sendMediaGroup)."""
        result = self.result
        if isinstance(result, dict) and "message_id" in result:
            return [result]
        if isinstance(result, list):
            return [m for m in result if isinstance(m, dict) and "message_id" in m]
        return []

    @property
    def text(self) -> str | None:
        """Raw ``text`` (or ``caption``) parameter exactly as the bot sent it (markup not parsed)."""
        value = self.params.get("text", self.params.get("caption"))
        return value if isinstance(value, str) else None

    @property
    def reply_markup(self) -> JSON | None:
        """The decoded ``reply_markup`` parameter (any keyboard type)."""
        markup = self.params.get("reply_markup")
        return markup if isinstance(markup, dict) else None

    @property
    def buttons(self) -> list[JSON]:
        """The inline keyboard buttons, flattened row by row."""
        markup = self.reply_markup or {}
        return [button for row in markup.get("inline_keyboard") or [] for button in row]

    def upload(self, name: str | None = None) -> UploadedFile | None:
        """The uploaded file part ``name`` (default: the first one), e.g. the bytes of a sent photo."""
        if name is None:
            return next(iter(self.files.values()), None)
        return self.files.get(name)


@dataclass(frozen=True)
class WebhookConfig:
    """What the bot passed to setWebhook."""

    url: str
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int = 40
    ip_address: str | None = None
    has_custom_certificate: bool = False


@dataclass(frozen=True)
class RateStats:
    """Maximum number of messages the bot sent within any ``window`` seconds."""

    window: float
    overall: int
    per_chat: dict[ChatId, int]
    total: int

    @property
    def max_per_chat(self) -> int:
        """The busiest chat's maximum."""
        return max(self.per_chat.values(), default=0)


@dataclass
class _Fault:
    method: str  # lower-case method name or "*"
    status: int | None  # None: only delay, then answer normally
    description: str
    retry_after: int | None
    delay: float
    chat_id: ChatId | None
    body: bytes | None
    remaining: int


@dataclass
class _Call:
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    chat_id: ChatId | None
    at: float


@dataclass
class _Ok:
    """A handler's successful result with Telegram's optional ``description`` (setWebhook has one)."""

    result: Any
    description: str | None = None


class _ApiError(Exception):
    """Raised by method handlers; becomes ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}")


def _error_payload(status: int, description: str, parameters: JSON | None = None) -> JSON:
    payload: JSON = {"ok": False, "error_code": status, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return payload


# --------------------------------------------------------------------------------------------------
# Text helpers: UTF-16 offsets, entity detection, parse_mode parsing
# --------------------------------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: Telegram's unit for entity offsets and text limits."""
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(src: str, index: int) -> int:
    return len(src[:index].encode())


_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_@/])")
_MENTION_RE = re.compile(r"(?<![\w@/])@[A-Za-z][A-Za-z0-9_]{3,31}(?![\w@])")
_URL_RE = re.compile(r"https?://[^\s<>\"]+")


def detect_entities(text: str) -> list[JSON]:
    """The entities Telegram adds to a user's message: bot_command, mention and url (UTF-16 offsets)."""
    spans: list[tuple[int, int, str]] = []
    for kind, regex in (("bot_command", _COMMAND_RE), ("url", _URL_RE), ("mention", _MENTION_RE)):
        for m in regex.finditer(text):
            if not any(m.start() < end and start < m.end() for start, end, _ in spans):
                spans.append((m.start(), m.end(), kind))
    spans.sort()
    return [
        {"type": kind, "offset": utf16_len(text[:start]), "length": utf16_len(text[start:end])}
        for start, end, kind in spans
    ]


class _Out:
    """Accumulates parsed plain text while tracking the UTF-16 position for entity offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pos = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += utf16_len(text)

    def text(self) -> str:
        return "".join(self.parts)


def _parse_error(detail: str) -> _ApiError:
    return _bad(f"can't parse entities: {detail}")


_HTML_TOKEN_RE = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z_:][-\w:.]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)\s*/?>"
    r"|&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]+);"
    r"|<"
)
_HTML_ATTR_RE = re.compile(r"([A-Za-z_:][-\w:.]*)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s\"'=<>`]+)))?")
_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _parse_html(src: str) -> tuple[str, list[JSON]]:
    out, entities = _Out(), []
    stack: list[tuple[str, int, dict[str, str]]] = []
    cursor = 0
    for m in _HTML_TOKEN_RE.finditer(src):
        out.add(src[cursor : m.start()])
        cursor = m.end()
        where = _byte_offset(src, m.start())
        if m.group(0) == "<":
            raise _parse_error(f'Unsupported start tag "" at byte offset {where}')
        if m.group(4) is not None:
            name = m.group(4)
            if name.startswith("#"):
                out.add(chr(int(name[2:], 16) if name[1:2] in "xX" else int(name[1:])))
            else:
                out.add(_HTML_NAMED.get(name.lower(), m.group(0)))
            continue
        tag = m.group(2).lower()
        if m.group(1):  # end tag
            if not stack:
                raise _parse_error(f"Unexpected end tag at byte offset {where}")
            open_tag, start, attrs = stack.pop()
            if open_tag != tag:
                raise _parse_error(
                    f'Unmatched end tag at byte offset {where}, expected "</{open_tag}>", found "</{tag}>"'
                )
            language = attrs.get("class", "")
            if tag == "code" and language.startswith("language-") and stack and stack[-1][0] == "pre":
                stack[-1][2]["language"] = language[len("language-") :]
                continue
            if out.pos > start:
                entities.append(_html_entity(tag, start, out.pos - start, attrs))
            continue
        attrs = {
            a.group(1).lower(): next((v for v in a.group(2, 3, 4) if v is not None), "")
            for a in _HTML_ATTR_RE.finditer(m.group(3))
        }
        if tag not in _HTML_TAGS or (tag == "span" and attrs.get("class") != "tg-spoiler"):
            raise _parse_error(f'Unsupported start tag "{tag}" at byte offset {where}')
        stack.append((tag, out.pos, attrs))
    out.add(src[cursor:])
    if stack:
        raise _parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.text(), entities


def _html_entity(tag: str, offset: int, length: int, attrs: dict[str, str]) -> JSON:
    entity: JSON = {"type": _HTML_TAGS[tag], "offset": offset, "length": length}
    if tag == "a":
        entity["url"] = attrs.get("href", "")
    elif tag == "pre" and attrs.get("language"):
        entity["language"] = attrs["language"]
    elif tag == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif tag == "tg-emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    return entity


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
    "[": "TextUrl",
    "![": "CustomEmoji",
}
_MDV2_TYPES = {"*": "bold", "_": "italic", "__": "underline", "~": "strikethrough", "||": "spoiler"}


def _find_unescaped(src: str, token: str, start: int) -> int:
    j = start
    while j < len(src):
        if src[j] == "\\":
            j += 2
        elif src.startswith(token, j):
            return j
        else:
            j += 1
    return -1


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.S)


def _code_entity(fence: str, body: str) -> tuple[str, JSON]:
    if fence == "`":
        return body, {"type": "code"}
    entity: JSON = {"type": "pre"}
    first, newline, rest = body.partition("\n")
    if newline and not first.strip():
        body = rest
    elif newline and re.fullmatch(r"[\w#+.-]+", first):
        entity["language"], body = first, rest
    return body, entity


def _parse_markdown_v2(src: str) -> tuple[str, list[JSON]]:
    out, entities = _Out(), []
    stack: list[tuple[str, int, int]] = []  # (marker, utf-16 start, index in src)
    quote: list[int] = []  # [start, end-of-last-quoted-line] while inside a blockquote
    i, line_start = 0, True
    reserved = "Character '{}' is reserved and must be escaped with the preceding '\\'"
    while i < len(src):
        c = src[i]
        if line_start:
            line_start = False
            if c == ">":
                quote = quote or [out.pos, out.pos]
                i += 1
                continue
            if quote:
                entities.append({"type": "blockquote", "offset": quote[0], "length": quote[1] - quote[0]})
                quote = []
        if c == "\\":
            if i + 1 < len(src) and 0 < ord(src[i + 1]) < 127:
                out.add(src[i + 1])
                i += 2
                continue
            raise _parse_error(reserved.format("\\"))
        if c == "`":
            fence = "```" if src.startswith("```", i) else "`"
            end = _find_unescaped(src, fence, i + len(fence))
            if end < 0:
                kind = "Pre" if fence == "```" else "Code"
                raise _parse_error(f"Can't find end of {kind} entity at byte offset {_byte_offset(src, i)}")
            body, entity = _code_entity(fence, _unescape(src[i + len(fence) : end]))
            start = out.pos
            out.add(body)
            if body:
                entities.append({**entity, "offset": start, "length": out.pos - start})
            i = end + len(fence)
            continue
        if c == "[" or src.startswith("![", i):
            marker = "[" if c == "[" else "!["
            stack.append((marker, out.pos, i))
            i += len(marker)
            continue
        if c == "]":
            if not stack or stack[-1][0] not in ("[", "![") or not src.startswith("(", i + 1):
                raise _parse_error(reserved.format("]"))
            close = _find_unescaped(src, ")", i + 2)
            if close < 0:
                raise _parse_error(f"Can't find end of a URL at byte offset {_byte_offset(src, i + 2)}")
            url = _unescape(src[i + 2 : close])
            marker, start, _ = stack.pop()
            if out.pos > start:
                entity: JSON = {"type": "text_link", "offset": start, "length": out.pos - start, "url": url}
                if marker == "![":
                    entity = {"type": "custom_emoji", "offset": start, "length": out.pos - start}
                    entity["custom_emoji_id"] = url.rpartition("id=")[2]
                entities.append(entity)
            i = close + 1
            continue
        if c in "*_~" or src.startswith("||", i):
            marker = "||" if c == "|" else c
            if c == "_" and src.startswith("__", i) and not (stack and stack[-1][0] == "_"):
                marker = "__"
            depth = next((k for k in range(len(stack) - 1, -1, -1) if stack[k][0] == marker), None)
            if depth is None:
                stack.append((marker, out.pos, i))
            elif depth != len(stack) - 1:
                top, _, where = stack[-1]
                raise _parse_error(
                    f"Can't find end of {_MDV2_NAMES[top]} entity at byte offset {_byte_offset(src, where)}"
                )
            else:
                _, start, _ = stack.pop()
                if out.pos > start:
                    entities.append({"type": _MDV2_TYPES[marker], "offset": start, "length": out.pos - start})
            i += len(marker)
            continue
        if c in _MDV2_RESERVED:
            raise _parse_error(reserved.format(c))
        if c == "\n":
            line_start = True
            if quote:
                quote[1] = out.pos
        out.add(c)
        i += 1
    if quote:
        entities.append({"type": "blockquote", "offset": quote[0], "length": out.pos - quote[0]})
    if stack:
        top, _, where = stack[-1]
        raise _parse_error(f"Can't find end of {_MDV2_NAMES[top]} entity at byte offset {_byte_offset(src, where)}")
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return out.text(), entities


def _parse_markdown_legacy(src: str) -> tuple[str, list[JSON]]:
    out, entities = _Out(), []
    i = 0
    while i < len(src):
        c = src[i]
        unclosed = _parse_error(f"Can't find end of the entity starting at byte offset {_byte_offset(src, i)}")
        if c == "\\" and i + 1 < len(src) and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
        elif c in "*_`":
            fence = "```" if src.startswith("```", i) else c
            end = src.find(fence, i + len(fence))
            if end < 0:
                raise unclosed
            body = src[i + len(fence) : end]
            entity: JSON = {"type": {"*": "bold", "_": "italic"}.get(fence, "code")}
            if fence != "`" and c == "`":
                body, entity = _code_entity(fence, body)
            start = out.pos
            out.add(body)
            if body:
                entities.append({**entity, "offset": start, "length": out.pos - start})
            i = end + len(fence)
        elif c == "[":
            middle = src.find("](", i + 1)
            end = src.find(")", middle + 2) if middle >= 0 else -1
            if end < 0:
                raise unclosed
            start = out.pos
            out.add(src[i + 1 : middle])
            entities.append(
                {"type": "text_link", "offset": start, "length": out.pos - start, "url": src[middle + 2 : end]}
            )
            i = end + 1
        else:
            out.add(c)
            i += 1
    return out.text(), entities


def _format_text(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[JSON]]:
    """Text and entities as Telegram stores them, given the bot's parse_mode / explicit entities."""
    if isinstance(entities, list):
        return text, entities
    mode = parse_mode.lower() if isinstance(parse_mode, str) else ""
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown_v2(text)
    if mode == "markdown":
        return _parse_markdown_legacy(text)
    if mode:
        raise _bad(f"unsupported parse_mode {parse_mode!r}")
    return text, []


# --------------------------------------------------------------------------------------------------
# Request decoding (query strings, url-encoded forms, multipart, JSON)
# --------------------------------------------------------------------------------------------------

_DISPOSITION_PARAM_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _unquote_disposition(value: str) -> str:
    # httpx escapes per HTML5: '"' -> %22, '\' -> '\\', control characters -> %XX
    value = re.sub(r"%(22|[01][0-9A-F])", lambda m: chr(int(m.group(1), 16)), value)
    return value.replace("\\\\", "\\")


def _parse_multipart(body: bytes, boundary: str) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    for chunk in (b"\r\n" + body).split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = {
            k.lower(): _unquote_disposition(v)
            for k, v in _DISPOSITION_PARAM_RE.findall(headers.get("content-disposition", ""))
        }
        name = params.get("name", "")
        if "filename" in params:
            content_type = headers.get("content-type", "application/octet-stream")
            files[name] = UploadedFile(name, params["filename"], content_type, content)
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


def _coerce_form_value(name: str, raw: str) -> Any:
    """Decode a form/query value: PTB JSON-encodes everything that is not a string (ints, bools, objects)."""
    if name in _STRING_FIELDS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _normalize_id(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


def _decode_params(query: str, content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    params: dict[str, Any] = {
        k: _coerce_form_value(k, v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
    }
    files: dict[str, UploadedFile] = {}
    mime, _, rest = content_type.partition(";")
    mime = mime.strip().lower()
    if body.strip():
        if mime == "application/json":
            try:
                decoded = json.loads(body)
            except ValueError as exc:
                raise _bad("can't parse JSON request body") from exc
            if not isinstance(decoded, dict):
                raise _bad("JSON request body must be an object")
            params.update(decoded)
        elif mime == "multipart/form-data":
            boundary = re.search(r'boundary="?([^";]+)"?', rest)
            if not boundary:
                raise _bad("multipart request without boundary")
            fields, files = _parse_multipart(body, boundary.group(1))
            params.update({k: _coerce_form_value(k, v) for k, v in fields.items()})
        else:  # application/x-www-form-urlencoded (or no header at all)
            form = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
            params.update({k: _coerce_form_value(k, v) for k, v in form})
    for key in _JSON_FIELDS & params.keys():
        if isinstance(params[key], str) and params[key].strip()[:1] in ("{", "["):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    for key in _ID_FIELDS:
        if key in params:
            params[key] = _normalize_id(params[key])
    return params, files


def _as_int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _as_float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------------------------------
# Images (Pillow is imported lazily: only photo features need it)
# --------------------------------------------------------------------------------------------------


def make_image(
    width: int = 640, height: int = 480, *, color: tuple[int, int, int] = (180, 120, 90), fmt: str = "JPEG"
) -> bytes:
    """A small synthetic image (an ellipse on a background) for tests that need *some* valid picture."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(image).ellipse(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4),
        fill=(255 - color[0], 255 - color[1], 255 - color[2]),
    )
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def _photo_variants(data: bytes, sides: Sequence[int]) -> list[tuple[bytes, int, int]] | None:
    """Telegram-like PhotoSize variants: JPEG thumbnails for each side below the original, then the original.

    Fast enough for load tests: JPEGs are decoded at a reduced scale (``draft``) and each thumbnail is
    made from the next bigger one.  None when Pillow cannot decode ``data``.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as opened:
            width, height = opened.size
            if opened.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # EXIF orientation swaps the axes
                width, height = height, width
            wanted = sorted((side for side in sides if side < max(width, height)), reverse=True)
            if wanted:
                opened.draft("RGB", (wanted[0], wanted[0]))
            opened.load()
            image = (ImageOps.exif_transpose(opened) or opened).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    thumbs: list[tuple[bytes, int, int]] = []
    for side in wanted:
        image = image.copy()
        image.thumbnail((side, side), Image.Resampling.BILINEAR)  # good enough, 2-3x faster than LANCZOS
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        thumbs.append((buffer.getvalue(), image.width, image.height))
    return [*reversed(thumbs), (data, width, height)]


def _sticker_image() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", (512, 512), (255, 200, 0, 255)).save(buffer, "WEBP")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# The fake server
# --------------------------------------------------------------------------------------------------


class FakeBotApi:
    """A fake Telegram Bot API served over HTTP on 127.0.0.1 from a background thread.

    Independent of any asyncio loop, so the bot under test can run in the test's loop, in another
    thread or in another process.  See the module docstring for the full API tour.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "lookalike_test_bot",
        bot_first_name: str = "Lookalike",
        host: str = "127.0.0.1",
        port: int = 0,
        callback_query_ttl: float = 15.0,
    ) -> None:
        bot_id, sep, _ = token.partition(":")
        if not (sep and bot_id.isdigit()):
            raise ValueError("token must look like '<digits>:<secret>'")
        self.token = token
        self.bot_id = int(bot_id)
        self.bot_user: JSON = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.callback_query_ttl = callback_query_ttl
        self._host, self._requested_port = host, port
        self._server: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._closing = threading.Event()

        self._cond = threading.Condition(threading.RLock())
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._records: list[Request] = []
        self.internal_errors: list[str] = []  # tracebacks of bugs in the fake itself
        self._updates: list[JSON] = []  # not yet confirmed via getUpdates offset
        self._update_ids = itertools.count(100_000_001)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._media_groups = itertools.count(13_000_000_000_000_000)
        self._messages: dict[int, JSON] = {}  # message_id -> current message (user and bot messages)
        self._users: dict[int, JSON] = {}
        self._chats: dict[ChatId, JSON] = {}
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._media_objects: dict[str, tuple[str, Any]] = {}  # file_id -> (kind, Telegram object)
        self._variant_cache: dict[tuple[bytes, tuple[int, ...]], list[tuple[bytes, int, int]] | None] = {}
        self._callback_queries: dict[str, JSON] = {}
        self._faults: list[_Fault] = []
        self._blocked: set[ChatId] = set()
        self._rate_limit: tuple[int | None, int | None, float, int] | None = None
        self._recent_sends: deque[tuple[float, ChatId | None]] = deque()
        self._webhook: WebhookConfig | None = None
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self._waiting_polls = 0
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._bot_texts: dict[tuple[str, str], str] = {}
        self._methods: dict[str, tuple[str, Callable[[_Call], Any]]] = {
            name.lower(): (name, handler) for name, handler in self._method_table().items()
        }

    # ----------------------------------------------------------------------------------------- lifecycle

    def start(self) -> FakeBotApi:
        """Bind a free port and serve from a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._closing.clear()
        self._server = _HttpServer((self._host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-bot-api", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: wakes pending long-polls and hangs, drops open connections, joins the thread."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        with self._cond:
            self._notify()
        server.shutdown()
        with self._cond:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never show the token
        return f"<FakeBotApi 127.0.0.1:{self.port if self._server else '-'} bot_id={self.bot_id}>"

    @property
    def port(self) -> int:
        """The TCP port actually bound (random unless given)."""
        if self._server is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url(...)`` / ``Bot(base_url=...)``; PTB appends the token."""
        return f"http://{self._host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder().base_file_url(...)``; PTB appends the token and the file path."""
        return f"http://{self._host}:{self.port}/file/bot"

    def bot(self, **kwargs: Any) -> Bot:
        """A ``telegram.Bot`` wired to this server (use it as ``async with api.bot() as bot``)."""
        from telegram import Bot

        return Bot(self.token, base_url=self.base_url, base_file_url=self.base_file_url, **kwargs)

    def application_builder(self) -> ApplicationBuilder:
        """An ``ApplicationBuilder`` with token, base_url and base_file_url already set."""
        from telegram.ext import ApplicationBuilder

        return ApplicationBuilder().token(self.token).base_url(self.base_url).base_file_url(self.base_file_url)

    def assert_no_internal_errors(self) -> None:
        """Fail if the fake itself crashed while handling a request (a bug here, not in the bot)."""
        if self.internal_errors:
            raise AssertionError("fake_bot_api crashed:\n" + "\n".join(self.internal_errors))

    # ------------------------------------------------------------------------- users, chats, files

    def set_user(
        self,
        user_id: int,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        is_premium: bool | None = None,
    ) -> JSON:
        """Customise the User object sent for ``user_id`` (defaults: "User<id>", "user<id>", language "en")."""
        with self._cond:
            user = self._user(user_id)
            for key, value in (
                ("first_name", first_name),
                ("last_name", last_name),
                ("username", username),
                ("language_code", language_code),
                ("is_premium", is_premium),
            ):
                if value is not None:
                    user[key] = value
            return dict(user)

    def add_file(
        self, data: bytes, file_path_hint: str = "documents/file.bin", *, file_size: int | None = None
    ) -> tuple[str, str, int]:
        """Make ``data`` downloadable via getFile; returns (file_id, file_unique_id, reported file_size).

        ``file_path_hint`` gives the folder and extension (``"photos/x.jpg"`` -> ``photos/file_7.jpg``);
        ``file_size`` may lie (e.g. 25 MB) to exercise the 20 MB getFile limit.
        """
        hint = PurePosixPath(file_path_hint)
        stored = self._store_file(
            data, str(hint.parent) if str(hint.parent) != "." else "documents", hint.suffix, file_size
        )
        return stored.file_id, stored.file_unique_id, stored.file_size

    def file_bytes(self, file_id: str) -> bytes:
        """The content behind a file_id (of an uploaded, injected or added file)."""
        with self._cond:
            return self._files[file_id].data

    def media_bytes(self, message: Mapping[str, Any]) -> bytes:
        """The file of a message's media (the largest PhotoSize for photos)."""
        for key in _MEDIA_KEYS:
            media = message.get(key)
            if media:
                return self.file_bytes(media[-1]["file_id"] if key == "photo" else media["file_id"])
        raise ValueError("message has no media")

    # ----------------------------------------------------------------------------- update injection

    def push_update(self, update: Mapping[str, Any]) -> JSON:
        """Queue a raw Update (``update_id`` is assigned when missing); returns it."""
        body = copy.deepcopy(dict(update))
        with self._cond:
            if "update_id" not in body:
                body = {"update_id": next(self._update_ids), **body}
            self._updates.append(body)
            self._notify()
            return body

    def send_content(
        self,
        user_id: int,
        content: Mapping[str, Any],
        *,
        chat_id: ChatId | None = None,
        chat_type: str = "private",
        reply_to: int | Mapping[str, Any] | None = None,
        language_code: str | None = None,
    ) -> JSON:
        """A user sends a message with arbitrary ``content`` fields (location, contact, ...); returns the Update."""
        with self._cond:
            user = self._user(user_id)
            if language_code is not None:
                user["language_code"] = language_code
            chat = self._injected_chat(user, chat_id, chat_type)
            message: JSON = {
                "message_id": next(self._message_ids),
                "from": dict(user),
                "chat": dict(chat),
                "date": int(time.time()),
            }
            if reply_to is not None:
                message["reply_to_message"] = self._reply_copy(
                    reply_to if isinstance(reply_to, int) else reply_to["message_id"], chat["id"]
                )
            message.update(copy.deepcopy(dict(content)))
            self._messages[message["message_id"]] = message
            return self.push_update({"message": message})

    def send_text(
        self,
        user_id: int,
        text: str,
        chat_id: ChatId | None = None,
        chat_type: str = "private",
        language_code: str | None = None,
        reply_to: int | Mapping[str, Any] | None = None,
        entities: list[JSON] | None = None,
    ) -> JSON:
        """A user writes ``text``; /commands, @mentions and URLs get entities like Telegram adds them.

        ``language_code`` (users default to "en") sticks to the user for later messages; ``entities=[]``
        sends none.
        """
        content: JSON = {"text": text}
        found = detect_entities(text) if entities is None else entities
        if found:
            content["entities"] = found
        return self.send_content(
            user_id, content, chat_id=chat_id, chat_type=chat_type, reply_to=reply_to, language_code=language_code
        )

    def send_photo(
        self,
        user_id: int,
        data: bytes,
        caption: str | None = None,
        *,
        chat_id: ChatId | None = None,
        chat_type: str = "private",
        reply_to: int | Mapping[str, Any] | None = None,
        language_code: str | None = None,
        file_size: int | None = None,
        sizes: Sequence[int] = PHOTO_THUMB_SIDES,
        media_group_id: str | None = None,
    ) -> JSON:
        """A user sends a photo: ``photo`` lists PhotoSizes by increasing size, only the last is ``data`` itself.

        Smaller entries are JPEG thumbnails (longest side in ``sizes``).  Undecodable ``data`` yields a
        single 0x0 PhotoSize holding the raw bytes.  ``file_size`` overrides the largest size's reported size.
        """
        photo = self._register_photo(data, sides=sizes, file_size=file_size, strict=False)
        content: JSON = {"photo": photo}
        content.update(self._caption_fields(caption))
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return self.send_content(
            user_id, content, chat_id=chat_id, chat_type=chat_type, reply_to=reply_to, language_code=language_code
        )

    def send_document(
        self,
        user_id: int,
        data: bytes,
        file_name: str = "document.bin",
        mime_type: str | None = None,
        caption: str | None = None,
        *,
        chat_id: ChatId | None = None,
        chat_type: str = "private",
        reply_to: int | Mapping[str, Any] | None = None,
        file_size: int | None = None,
    ) -> JSON:
        """A user sends a file as a document (e.g. an uncompressed photo); ``mime_type`` defaults from the name."""
        document = self._new_media("document", data, file_name=file_name, mime_type=mime_type, file_size=file_size)
        content: JSON = {"document": document, **self._caption_fields(caption)}
        return self.send_content(user_id, content, chat_id=chat_id, chat_type=chat_type, reply_to=reply_to)

    def send_sticker(
        self,
        user_id: int,
        emoji: str = "😀",
        *,
        data: bytes | None = None,
        set_name: str | None = "FakeStickers",
        chat_id: ChatId | None = None,
        chat_type: str = "private",
    ) -> JSON:
        """A user sends a (static, 512x512 WEBP) sticker."""
        sticker = self._new_media("sticker", _sticker_image() if data is None else data, file_name="sticker.webp")
        sticker["emoji"] = emoji
        if set_name:
            sticker["set_name"] = set_name
        return self.send_content(user_id, {"sticker": sticker}, chat_id=chat_id, chat_type=chat_type)

    def send_video(
        self,
        user_id: int,
        data: bytes = b"\x00\x00\x00\x18ftypmp42fake-video",
        caption: str | None = None,
        *,
        duration: int = 3,
        width: int = 640,
        height: int = 360,
        file_name: str = "video.mp4",
        file_size: int | None = None,
        chat_id: ChatId | None = None,
        chat_type: str = "private",
    ) -> JSON:
        """A user sends a video (the bytes need not be a real video)."""
        clip = dict(duration=duration, width=width, height=height, file_name=file_name, file_size=file_size)
        return self._send_clip("video", user_id, data, caption, clip, chat_id, chat_type)

    def send_animation(
        self,
        user_id: int,
        data: bytes = b"GIF89a-fake-animation",
        caption: str | None = None,
        *,
        duration: int = 2,
        width: int = 320,
        height: int = 240,
        file_name: str = "animation.mp4",
        file_size: int | None = None,
        chat_id: ChatId | None = None,
        chat_type: str = "private",
    ) -> JSON:
        """A user sends a GIF; like Telegram the message has both ``animation`` and ``document``."""
        clip = dict(duration=duration, width=width, height=height, file_name=file_name, file_size=file_size)
        return self._send_clip("animation", user_id, data, caption, clip, chat_id, chat_type)

    def _send_clip(
        self,
        kind: str,
        user_id: int,
        data: bytes,
        caption: str | None,
        clip: JSON,
        chat_id: ChatId | None,
        chat_type: str,
    ) -> JSON:
        media = self._new_media(kind, data, **clip)
        content: JSON = {kind: media, **self._caption_fields(caption)}
        if kind == "animation":
            content["document"] = {
                k: media[k] for k in ("file_id", "file_unique_id", "file_name", "mime_type", "file_size")
            }
        return self.send_content(user_id, content, chat_id=chat_id, chat_type=chat_type)

    def press_button(
        self,
        user_id: int,
        message_id: int,
        data: str | None = None,
        chat_id: ChatId | None = None,
        *,
        text: str | None = None,
        check: bool = True,
    ) -> JSON:
        """A user presses an inline button of bot message ``message_id``: queues a callback_query Update.

        Give the button's ``data`` or its label ``text``.  With ``check`` the button must exist in the
        message's current keyboard (a real client cannot press anything else).
        """
        with self._cond:
            message = self._messages.get(message_id)
            if message is None or (chat_id is not None and message["chat"]["id"] != _normalize_id(chat_id)):
                raise ValueError(f"no message {message_id} in chat {chat_id}")
            if message["from"]["id"] != self.bot_id:
                raise ValueError(f"message {message_id} was not sent by the bot")
            buttons = [b for row in (message.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
            if text is not None:
                match = next((b for b in buttons if b.get("text") == text), None)
                if match is None:
                    raise ValueError(f"message {message_id} has no button {text!r}: {buttons}")
                data = match.get("callback_data")
            elif check and not any(b.get("callback_data") == data for b in buttons):
                raise ValueError(f"message {message_id} has no button with callback_data {data!r}: {buttons}")
            query_id = f"{next(self._callback_ids)}{self.bot_id % 100000:05d}"
            self._callback_queries[query_id] = {"at": time.monotonic(), "answered": False}
            query: JSON = {
                "id": query_id,
                "from": dict(self._user(user_id)),
                "message": copy.deepcopy(message),
                "chat_instance": str(abs(hash(message["chat"]["id"])) % 10**18),
            }
            if data is not None:
                query["data"] = data
            return self.push_update({"callback_query": query})

    def pending_updates(self) -> list[JSON]:
        """Updates not yet confirmed by a getUpdates ``offset`` (or delivered by webhook)."""
        with self._cond:
            return copy.deepcopy(self._updates)

    # --------------------------------------------------------------------------------- inspection

    def requests(self, method: str | None = None, chat_id: ChatId | None = None) -> list[Request]:
        """Every recorded request (including failed and injected ones), oldest first."""
        with self._cond:
            return [
                r
                for r in self._records
                if (method is None or r.method.lower() == method.lower())
                and (chat_id is None or r.chat_id == _normalize_id(chat_id))
            ]

    def sent(self, chat_id: ChatId | None = None, method: str | None = None) -> list[Request]:
        """Successful message-creating requests (``MESSAGE_METHODS``), or successful calls of ``method``."""
        with self._cond:
            return [r for r in self._records if self._is_sent(r, chat_id, method)]

    def last_sent(self, chat_id: ChatId | None = None) -> Request | None:
        """The most recent successful message-creating request, if any."""
        sent = self.sent(chat_id)
        return sent[-1] if sent else None

    def message(self, message_id: int) -> JSON:
        """The current state of a message (bot messages reflect later edits)."""
        with self._cond:
            return copy.deepcopy(self._messages[message_id])

    @property
    def webhook(self) -> WebhookConfig | None:
        """The webhook the bot set, or None."""
        with self._cond:
            return self._webhook

    @property
    def polls_waiting(self) -> int:
        """How many getUpdates long-polls are currently blocked waiting for updates."""
        with self._cond:
            return self._waiting_polls

    def commands(self, scope: Mapping[str, Any] | None = None, language_code: str = "") -> list[JSON]:
        """The commands set via setMyCommands for a scope (default scope) and language."""
        with self._cond:
            return copy.deepcopy(self._commands.get(self._commands_key(scope, language_code), []))

    def clear_records(self) -> None:
        """Forget recorded requests (e.g. after a warm-up phase of a benchmark)."""
        with self._cond:
            self._records.clear()
            self._recent_sends.clear()

    # ------------------------------------------------------------------------------------ waiting

    def wait_for(self, predicate: Callable[[Request], bool], timeout: float = 5.0, count: int = 1) -> list[Request]:
        """Block until ``count`` recorded requests satisfy ``predicate``; returns all matching ones."""
        return self._wait_sync(
            lambda: self._matching(predicate, count), timeout, f"{count} request(s) matching {predicate!r}"
        )

    def wait_for_sent(
        self, chat_id: ChatId | None = None, count: int = 1, timeout: float = 5.0, *, method: str | None = None
    ) -> list[Request]:
        """Block until the bot successfully sent ``count`` messages (to ``chat_id``); returns them all."""
        return self.wait_for(lambda r: self._is_sent(r, chat_id, method), timeout, count)

    def wait_for_poller(self, timeout: float = 5.0) -> None:
        """Block until some getUpdates long-poll is waiting (the bot is polling and idle)."""
        self._wait_sync(lambda: True if self._waiting_polls else None, timeout, "a waiting getUpdates long-poll")

    def wait_until_consumed(self, timeout: float = 5.0) -> None:
        """Block until every queued update was confirmed (the bot fetched them and moved its offset on)."""
        self._wait_sync(lambda: True if not self._updates else None, timeout, "all updates to be confirmed")

    async def wait_for_async(
        self, predicate: Callable[[Request], bool], timeout: float = 5.0, count: int = 1
    ) -> list[Request]:
        """``wait_for`` that yields to the event loop (use it when the bot runs in the same loop)."""
        return await self._wait_async(
            lambda: self._matching(predicate, count), timeout, f"{count} request(s) matching {predicate!r}"
        )

    async def wait_for_sent_async(
        self, chat_id: ChatId | None = None, count: int = 1, timeout: float = 5.0, *, method: str | None = None
    ) -> list[Request]:
        """``wait_for_sent`` that yields to the event loop."""
        return await self.wait_for_async(lambda r: self._is_sent(r, chat_id, method), timeout, count)

    async def wait_for_poller_async(self, timeout: float = 5.0) -> None:
        """``wait_for_poller`` that yields to the event loop."""
        await self._wait_async(lambda: True if self._waiting_polls else None, timeout, "a waiting getUpdates long-poll")

    async def wait_until_consumed_async(self, timeout: float = 5.0) -> None:
        """``wait_until_consumed`` that yields to the event loop."""
        await self._wait_async(lambda: True if not self._updates else None, timeout, "all updates to be confirmed")

    # ---------------------------------------------------------------------------- fault injection

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
        """Answer the next ``count`` calls of ``method`` (``"*"``: any; ``"download"``: file downloads) with an error.

        429 carries ``parameters.retry_after`` (PTB raises RetryAfter); 403 defaults to "bot was blocked
        by the user"; 502 to "Bad Gateway".  ``chat_id`` restricts the fault to one chat, ``delay``
        answers late, ``body`` replaces the JSON (e.g. nginx's HTML 502 page).
        """
        if status == 429:
            default = f"Too Many Requests: retry after {retry_after}"
        else:
            default = ERROR_DESCRIPTIONS.get(status, "Error")
        fault = _Fault(
            method.lower(),
            status,
            description or default,
            retry_after if status == 429 else None,
            delay,
            _normalize_id(chat_id),
            body,
            count,
        )
        with self._cond:
            self._faults.append(fault)

    def hang_next(self, method: str, seconds: float, *, count: int = 1, chat_id: ChatId | None = None) -> None:
        """Delay the next ``count`` calls of ``method`` by ``seconds``, then process them normally.

        Use it to trigger client timeouts: as with real Telegram the message still "arrives" although
        the client gave up (PTB raises TimedOut).
        """
        with self._cond:
            self._faults.append(_Fault(method.lower(), None, "", None, seconds, _normalize_id(chat_id), None, count))

    def block_user(self, chat_id: ChatId) -> None:
        """From now on sending to ``chat_id`` fails with 403 (user blocked the bot / bot was kicked)."""
        with self._cond:
            self._blocked.add(_normalize_id(chat_id))

    def unblock_user(self, chat_id: ChatId) -> None:
        """Undo ``block_user``."""
        with self._cond:
            self._blocked.discard(_normalize_id(chat_id))

    def enforce_rate_limit(
        self, per_chat: int | None = None, overall: int | None = None, *, window: float = 1.0, retry_after: int = 1
    ) -> None:
        """Answer 429 when a send would exceed ``per_chat`` / ``overall`` messages in ``window`` seconds.

        Telegram's documented limits are about 1/s per chat, 20/min per group and 30/s overall.
        Call with no limits to switch enforcement off.
        """
        with self._cond:
            self._rate_limit = (
                None if per_chat is None and overall is None else (per_chat, overall, window, retry_after)
            )
            self._recent_sends.clear()

    def clear_faults(self) -> None:
        """Remove pending fail_next/hang_next faults, blocks and rate limits."""
        with self._cond:
            self._faults.clear()
            self._blocked.clear()
            self._rate_limit = None

    # ------------------------------------------------------------------------------------ webhooks

    def deliver_webhook(
        self,
        url: str | None = None,
        update: Mapping[str, Any] | None = None,
        secret_token: str | EllipsisType | None = ...,
        *,
        timeout: float = 10.0,
    ) -> int:
        """POST ``update`` to the bot's webhook like Telegram does; returns the HTTP status.

        Defaults: ``url`` and ``secret_token`` from setWebhook (pass ``secret_token=None`` to omit the
        header, or a wrong one to test the bot's 403), ``update`` the oldest pending one.  A 2xx answer
        confirms the update.  Blocking: from async code use ``deliver_webhook_async``.
        """
        with self._cond:
            config = self._webhook
            if update is None:
                if not self._updates:
                    raise ValueError("no pending update to deliver")
                update = self._updates[0]
            payload = json.dumps(update, ensure_ascii=False).encode()
        target = url or (config.url if config else None)
        if not target:
            raise ValueError("no webhook url given and none set by the bot")
        host = urllib.parse.urlsplit(target).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("deliver_webhook only talks to loopback addresses")
        token = (config.secret_token if config else None) if secret_token is ... else secret_token
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers[SECRET_HEADER] = token
        request = urllib.request.Request(target, data=payload, headers=headers, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                response.read()
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        if 200 <= status < 300 and "update_id" in update:
            with self._cond:
                self._updates = [u for u in self._updates if u["update_id"] != update["update_id"]]
                self._notify()
        return status

    async def deliver_webhook_async(
        self,
        url: str | None = None,
        update: Mapping[str, Any] | None = None,
        secret_token: str | EllipsisType | None = ...,
        *,
        timeout: float = 10.0,
    ) -> int:
        """``deliver_webhook`` in a worker thread, so a webhook server in the same loop can answer."""
        return await asyncio.to_thread(self.deliver_webhook, url, update, secret_token, timeout=timeout)

    def flush_webhook(self, timeout: float = 10.0) -> list[int]:
        """Deliver every pending update to the webhook in order; returns the HTTP statuses."""
        statuses = []
        for update in self.pending_updates():
            statuses.append(self.deliver_webhook(update=update, timeout=timeout))
        return statuses

    # ---------------------------------------------------------------------------------- statistics

    def max_rate(
        self, window: float = 1.0, *, chat_id: ChatId | None = None, methods: Sequence[str] | None = None
    ) -> int:
        """Most messages sent (successfully) within any ``window`` seconds, overall or to ``chat_id``."""
        return _max_in_window(self._send_times(chat_id, methods), window)

    def rate_stats(self, window: float = 1.0, *, methods: Sequence[str] | None = None) -> RateStats:
        """Overall and per-chat maximum messages per ``window`` (sendMediaGroup counts each message)."""
        times = self._send_times(None, methods, with_chat=True)
        per_chat: dict[ChatId, list[tuple[float, int]]] = {}
        for at, weight, chat in times:
            per_chat.setdefault(chat, []).append((at, weight))
        return RateStats(
            window=window,
            overall=_max_in_window([(at, weight) for at, weight, _ in times], window),
            per_chat={chat: _max_in_window(items, window) for chat, items in per_chat.items()},
            total=sum(weight for _, weight, _ in times),
        )

    # ================================================================================== internals

    def _notify(self) -> None:
        """Wake sync and async waiters; call with the lock held after any state change."""
        self._cond.notify_all()
        for loop, event in list(self._async_waiters):
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)

    def _wait_sync(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = check()
                if value is not None:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(self._timeout_message(what, timeout))
                self._cond.wait(remaining)

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
                    value = check()
                if value is not None:
                    return value
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise WaitTimeout(self._timeout_message(what, timeout))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter[1].wait(), remaining)
        finally:
            with self._cond:
                self._async_waiters.discard(waiter)

    def _timeout_message(self, what: str, timeout: float) -> str:
        with self._cond:
            recent = [
                f"  {r.method} chat={r.chat_id} -> {r.status} {r.response.get('description', '')}".rstrip()
                for r in self._records
                if r.method != "getUpdates"
            ][-15:]
            pending = len(self._updates)
        summary = "\n".join(recent) or "  (no requests besides getUpdates)"
        return (
            f"timed out after {timeout}s waiting for {what}; {pending} unconfirmed update(s); "
            f"recent requests:\n{summary}"
        )

    def _matching(self, predicate: Callable[[Request], bool], count: int) -> list[Request] | None:
        matches = [r for r in self._records if predicate(r)]
        return matches if len(matches) >= count else None

    def _is_sent(self, record: Request, chat_id: ChatId | None, method: str | None) -> bool:
        if not record.ok:
            return False
        if method is None and record.method not in MESSAGE_METHODS:
            return False
        if method is not None and record.method.lower() != method.lower():
            return False
        return chat_id is None or record.chat_id == _normalize_id(chat_id)

    def _send_times(
        self, chat_id: ChatId | None, methods: Sequence[str] | None, *, with_chat: bool = False
    ) -> list[Any]:
        wanted = {m.lower() for m in methods} if methods else {m.lower() for m in MESSAGE_METHODS}
        with self._cond:
            records = [
                r
                for r in self._records
                if r.ok and r.method.lower() in wanted and (chat_id is None or r.chat_id == _normalize_id(chat_id))
            ]
        records.sort(key=lambda r: r.at)
        if with_chat:
            return [(r.at, max(1, len(r.messages)), r.chat_id) for r in records]
        return [(r.at, max(1, len(r.messages))) for r in records]

    def _user(self, user_id: int) -> JSON:
        user = self._users.get(user_id)
        if user is None:
            user = {
                "id": user_id,
                "is_bot": False,
                "first_name": f"User{user_id}",
                "username": f"user{user_id}",
                "language_code": "en",
            }
            self._users[user_id] = user
        return user

    def _injected_chat(self, user: JSON, chat_id: ChatId | None, chat_type: str) -> JSON:
        if chat_type == "private":
            if chat_id is not None and _normalize_id(chat_id) != user["id"]:
                raise ValueError("a private chat's id is the user's id")
            chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
            for key in ("last_name", "username"):
                if key in user:
                    chat[key] = user[key]
        else:
            cid = DEFAULT_GROUP_ID if chat_id is None else _normalize_id(chat_id)
            chat = self._chats.get(cid) or {"id": cid, "type": chat_type, "title": "Test group"}
            chat["type"] = chat_type
        self._chats[chat["id"]] = chat
        return chat

    def _chat_for(self, chat_id: ChatId) -> JSON:
        known = self._chats.get(chat_id)
        if known is not None:
            return dict(known)
        if isinstance(chat_id, str):
            return {
                "id": -1000000000001,
                "type": "channel",
                "title": chat_id.lstrip("@"),
                "username": chat_id.lstrip("@"),
            }
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
        chat_type = "supergroup" if str(chat_id).startswith("-100") else "group"
        return {"id": chat_id, "type": chat_type, "title": f"Group {chat_id}"}

    def _reply_copy(self, message_id: int, chat_id: ChatId) -> JSON:
        original = self._messages.get(message_id)
        if original is None or original["chat"]["id"] != chat_id:
            raise ValueError(f"no message {message_id} in chat {chat_id} to reply to")
        reply = copy.deepcopy(original)
        reply.pop("reply_to_message", None)  # Telegram does not nest replies
        return reply

    def _caption_fields(self, caption: str | None) -> JSON:
        if caption is None:
            return {}
        fields: JSON = {"caption": caption}
        entities = detect_entities(caption)
        if entities:
            fields["caption_entities"] = entities
        return fields

    def _store_file(self, data: bytes, folder: str, suffix: str, file_size: int | None = None) -> StoredFile:
        with self._cond:
            n = next(self._file_ids)
            digest = hashlib.sha1(f"{self.bot_id}:{n}".encode()).hexdigest()
            stored = StoredFile(
                file_id=f"AgACAgIAAxkBAAI{n:06d}{digest[:24]}",
                file_unique_id=f"AQAD{n:05d}{digest[24:32]}",
                file_path=f"{folder}/file_{n}{suffix}",
                data=bytes(data),
                file_size=len(data) if file_size is None else file_size,
            )
            self._files[stored.file_id] = stored
            self._files_by_path[stored.file_path] = stored
            return stored

    def _register_photo(
        self,
        data: bytes,
        *,
        sides: Sequence[int] = PHOTO_THUMB_SIDES,
        file_size: int | None = None,
        strict: bool = True,
    ) -> list[JSON]:
        key = (hashlib.sha1(data).digest(), tuple(sides))
        with self._cond:
            variants = self._variant_cache.get(key)
        if variants is None:
            variants = _photo_variants(data, sides)  # Pillow work happens outside the lock
            with self._cond:
                self._variant_cache[key] = variants
        if variants is None:
            if strict:
                raise _bad("IMAGE_PROCESS_FAILED")
            variants = [(data, 0, 0)]
        photo = []
        for index, (blob, width, height) in enumerate(variants):
            size = file_size if index == len(variants) - 1 else None
            stored = self._store_file(blob, "photos", ".jpg", size)
            photo.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size,
                    "width": width,
                    "height": height,
                }
            )
        with self._cond:
            for size_entry in photo:
                self._media_objects[size_entry["file_id"]] = ("photo", photo)
        return copy.deepcopy(photo)

    def _new_media(
        self,
        kind: str,
        data: bytes,
        *,
        file_name: str,
        mime_type: str | None = None,
        file_size: int | None = None,
        duration: int = 0,
        width: int = 0,
        height: int = 0,
    ) -> JSON:
        """Register ``data`` as a non-photo media object (document, video, sticker, ...) and build its JSON."""
        folder = {"document": "documents", "animation": "animations", "audio": "music"}.get(kind, kind + "s")
        if kind == "voice":
            folder = "voice"
        suffix = PurePosixPath(file_name).suffix
        stored = self._store_file(data, folder, suffix, file_size)
        obj: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": stored.file_size}
        mime = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        if kind == "sticker":
            obj.update(type="regular", width=512, height=512, is_animated=False, is_video=False)
        elif kind == "document":
            obj.update(file_name=file_name, mime_type=mime)
        elif kind in ("video", "animation"):
            obj.update(width=width, height=height, duration=duration, file_name=file_name, mime_type=mime)
        elif kind in ("audio", "voice"):
            obj.update(duration=duration, mime_type=mime)
            if kind == "audio":
                obj["file_name"] = file_name
        with self._cond:
            self._media_objects[stored.file_id] = (kind, obj)
        return copy.deepcopy(obj)

    def _commands_key(self, scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) else {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code if isinstance(language_code, str) else ""

    # ------------------------------------------------------------------------------- HTTP dispatch

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._cond:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _internal_error(self, text: str) -> None:
        with self._cond:
            self.internal_errors.append(text)

    def _handle_http(self, verb: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str, bytes]:
        """Route one HTTP request; returns (status, content type, body).  Never raises."""
        at = time.monotonic()
        split = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(split.path)  # PTB percent-encodes file URLs ("123%3AABC")
        try:
            if path.startswith("/file/bot"):
                token, _, file_path = path[len("/file/bot") :].partition("/")
                return self._download(token, file_path, verb, at)
            if path.startswith("/bot"):
                token, _, method = path[len("/bot") :].partition("/")
                return self._call_method(token, method.strip("/"), verb, split.query, headers, body, at)
            return 404, "application/json", _dumps(_error_payload(404, "Not Found"))
        except Exception:
            self._internal_error(traceback.format_exc())
            return 500, "application/json", _dumps(_error_payload(500, "Internal Server Error: bug in fake_bot_api"))

    def _call_method(
        self, token: str, method: str, verb: str, query: str, headers: Mapping[str, str], body: bytes, at: float
    ) -> tuple[int, str, bytes]:
        if token != self.token:
            return 401, "application/json", _dumps(_error_payload(401, "Unauthorized"))
        canonical, handler = self._methods.get(method.lower(), (method, None))
        try:
            params, files = _decode_params(query, headers.get("Content-Type", ""), body)
        except _ApiError as exc:
            return self._finish(canonical, {}, {}, at, verb, exc.status, _error_payload(exc.status, exc.description))
        chat_id = _normalize_id(params.get("chat_id"))
        if handler is None:
            return self._finish(canonical, params, files, at, verb, 404, _error_payload(404, "Not Found"))
        fault = self._take_fault(canonical, chat_id)
        if fault is not None and fault.delay:
            self._closing.wait(fault.delay)
        if fault is not None and fault.status is not None:
            params_json = {"retry_after": fault.retry_after} if fault.retry_after is not None else None
            payload = _error_payload(fault.status, fault.description, params_json)
            return self._finish(
                canonical, params, files, at, verb, fault.status, payload, injected=True, body=fault.body
            )
        limited = self._rate_limited(canonical, chat_id, at)
        if limited is not None:
            payload = _error_payload(429, f"Too Many Requests: retry after {limited}", {"retry_after": limited})
            return self._finish(canonical, params, files, at, verb, 429, payload, injected=True)
        try:
            outcome = handler(_Call(canonical, params, files, chat_id, at))
        except _ApiError as exc:
            return self._finish(
                canonical,
                params,
                files,
                at,
                verb,
                exc.status,
                _error_payload(exc.status, exc.description, exc.parameters),
            )
        ok = outcome if isinstance(outcome, _Ok) else _Ok(outcome)
        payload = {"ok": True, "result": ok.result}
        if ok.description:
            payload["description"] = ok.description
        return self._finish(canonical, params, files, at, verb, 200, payload)

    def _finish(
        self,
        method: str,
        params: dict[str, Any],
        files: dict[str, UploadedFile],
        at: float,
        verb: str,
        status: int,
        payload: JSON,
        *,
        injected: bool = False,
        body: bytes | None = None,
    ) -> tuple[int, str, bytes]:
        record = Request(
            method, params, files, at, _normalize_id(params.get("chat_id")), status, payload, verb, injected
        )
        with self._cond:
            self._records.append(record)
            self._notify()
        if body is not None:
            return status, "text/html", body
        return status, "application/json", _dumps(payload)

    def _take_fault(self, method: str, chat_id: ChatId | None) -> _Fault | None:
        with self._cond:
            for fault in self._faults:
                if fault.method in ("*", method.lower()) and (fault.chat_id is None or fault.chat_id == chat_id):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _rate_limited(self, method: str, chat_id: ChatId | None, now: float) -> int | None:
        """Returns retry_after when ``enforce_rate_limit`` forbids this send; otherwise reserves a slot."""
        if method not in MESSAGE_METHODS:
            return None
        with self._cond:
            if self._rate_limit is None:
                return None
            per_chat, overall, window, retry_after = self._rate_limit
            while self._recent_sends and self._recent_sends[0][0] <= now - window:
                self._recent_sends.popleft()
            if overall is not None and len(self._recent_sends) >= overall:
                return retry_after
            if per_chat is not None and sum(1 for _, c in self._recent_sends if c == chat_id) >= per_chat:
                return retry_after
            self._recent_sends.append((now, chat_id))
            return None

    def _download(self, token: str, file_path: str, verb: str, at: float) -> tuple[int, str, bytes]:
        with self._cond:
            stored = self._files_by_path.get(file_path) if token == self.token else None
        params: dict[str, Any] = {"file_path": file_path, "file_id": stored.file_id if stored else None}
        fault = self._take_fault("download", None)
        if fault is not None and fault.delay:
            self._closing.wait(fault.delay)
        if fault is not None and fault.status is not None:
            payload = _error_payload(fault.status, fault.description)
            return self._finish("download", params, {}, at, verb, fault.status, payload, injected=True, body=fault.body)
        if stored is None:
            return self._finish("download", params, {}, at, verb, 404, _error_payload(404, "Not Found"))
        self._finish("download", params, {}, at, verb, 200, {"ok": True, "result": {"file_size": len(stored.data)}})
        content_type = mimetypes.guess_type(stored.file_path)[0] or "application/octet-stream"
        return 200, content_type, stored.data

    # --------------------------------------------------------------------------- method handlers

    def _method_table(self) -> dict[str, Callable[[_Call], Any]]:
        return {
            "getMe": self._m_get_me,
            "logOut": lambda call: True,
            "close": lambda call: True,
            "getUpdates": self._m_get_updates,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "getFile": self._m_get_file,
            "sendMessage": self._m_send_message,
            "sendPhoto": lambda call: self._m_send_media(call, "photo"),
            "sendDocument": lambda call: self._m_send_media(call, "document"),
            "sendVideo": lambda call: self._m_send_media(call, "video"),
            "sendAnimation": lambda call: self._m_send_media(call, "animation"),
            "sendAudio": lambda call: self._m_send_media(call, "audio"),
            "sendVoice": lambda call: self._m_send_media(call, "voice"),
            "sendSticker": lambda call: self._m_send_media(call, "sticker"),
            "sendMediaGroup": self._m_send_media_group,
            "sendChatAction": self._m_send_chat_action,
            "answerCallbackQuery": self._m_answer_callback_query,
            "editMessageText": self._m_edit_message_text,
            "editMessageCaption": self._m_edit_message_caption,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "editMessageMedia": self._m_edit_message_media,
            "deleteMessage": self._m_delete_message,
            "setMyCommands": self._m_set_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "setMyDescription": lambda call: self._set_bot_text(call, "description"),
            "getMyDescription": lambda call: self._get_bot_text(call, "description"),
            "setMyShortDescription": lambda call: self._set_bot_text(call, "short_description"),
            "getMyShortDescription": lambda call: self._get_bot_text(call, "short_description"),
            "setMyName": lambda call: self._set_bot_text(call, "name"),
            "getMyName": lambda call: self._get_bot_text(call, "name"),
            "setChatMenuButton": lambda call: True,
            "getChatMenuButton": lambda call: {"type": "commands"},
        }

    def _m_get_me(self, call: _Call) -> JSON:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_get_updates(self, call: _Call) -> list[JSON]:
        offset = _as_int(call.params.get("offset"), 0)
        limit = min(max(_as_int(call.params.get("limit"), 100), 1), 100)
        deadline = time.monotonic() + max(0.0, _as_float(call.params.get("timeout"), 0.0))
        allowed = call.params.get("allowed_updates")
        with self._cond:
            if self._webhook is not None:
                raise _ApiError(409, WEBHOOK_CONFLICT)
            self._poll_generation += 1
            generation = self._poll_generation
            self._notify()  # a pending long-poll of another client gets terminated (409), as on Telegram
            if isinstance(allowed, list):
                self._allowed_updates = allowed or None
            if offset < 0:
                self._updates = self._updates[offset:]
            elif offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while True:
                if self._webhook is not None:
                    raise _ApiError(409, WEBHOOK_CONFLICT)
                if generation != self._poll_generation:
                    raise _ApiError(409, ERROR_DESCRIPTIONS[409])
                batch = [u for u in self._updates if self._update_allowed(u)][:limit]
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._closing.is_set():
                    return copy.deepcopy(batch)
                self._waiting_polls += 1
                self._notify()
                try:
                    self._cond.wait(remaining)
                finally:
                    self._waiting_polls -= 1

    def _update_allowed(self, update: JSON) -> bool:
        if not self._allowed_updates:
            return True
        return any(key in self._allowed_updates for key in update if key != "update_id")

    def _m_set_webhook(self, call: _Call) -> _Ok:
        url = call.params.get("url") or ""
        secret = call.params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise _bad("secret token contains unallowed characters")
        with self._cond:
            if call.params.get("drop_pending_updates"):
                self._updates.clear()
            if not url:
                self._webhook = None
                self._notify()
                return _Ok(True, "Webhook was deleted")
            allowed = call.params.get("allowed_updates")
            self._webhook = WebhookConfig(
                url=url,
                secret_token=secret,
                allowed_updates=allowed if isinstance(allowed, list) else None,
                max_connections=_as_int(call.params.get("max_connections"), 40),
                ip_address=call.params.get("ip_address"),
                has_custom_certificate="certificate" in call.files,
            )
            self._poll_generation += 1  # like Telegram, a webhook ends pending long-polls
            self._notify()
            return _Ok(True, "Webhook was set")

    def _m_delete_webhook(self, call: _Call) -> _Ok:
        with self._cond:
            existed = self._webhook is not None
            self._webhook = None
            if call.params.get("drop_pending_updates"):
                self._updates.clear()
            self._notify()
        return _Ok(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    def _m_get_webhook_info(self, call: _Call) -> JSON:
        with self._cond:
            info: JSON = {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}
            if self._webhook is not None:
                info.update(
                    url=self._webhook.url,
                    has_custom_certificate=self._webhook.has_custom_certificate,
                    max_connections=self._webhook.max_connections,
                    ip_address="127.0.0.1",
                )
                if self._webhook.allowed_updates is not None:
                    info["allowed_updates"] = self._webhook.allowed_updates
            return info

    def _m_get_file(self, call: _Call) -> JSON:
        with self._cond:
            stored = self._files.get(str(call.params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        if stored.file_size > MAX_DOWNLOAD_SIZE:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    # -- sending

    def _check_can_send(self, call: _Call) -> ChatId:
        chat_id = call.chat_id
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        with self._cond:
            blocked = chat_id in self._blocked
        if blocked:
            if isinstance(chat_id, int) and chat_id > 0:
                raise _ApiError(403, "Forbidden: bot was blocked by the user")
            raise _ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        return chat_id

    def _checked_markup(self, markup: Any) -> JSON | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad('can\'t parse inline keyboard button: field "inline_keyboard" must be an Array of Arrays')
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad("can't parse inline keyboard button: Text must be non-empty")
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad("BUTTON_DATA_INVALID")
        return markup

    @staticmethod
    def _message_markup(markup: JSON | None) -> JSON | None:
        """Messages only carry inline keyboards; reply keyboards are not echoed back."""
        if markup and markup.get("inline_keyboard"):
            return markup
        return None

    def _formatted(self, call: _Call, key: str, limit: int, *, required: bool) -> JSON:
        """``text``/``caption`` parsed per parse_mode, as the Message fields Telegram returns."""
        raw = call.params.get(key)
        if raw is None or raw == "":
            if required:
                raise _bad("message text is empty")
            return {}
        entities_key = "entities" if key == "text" else "caption_entities"
        text, entities = _format_text(str(raw), call.params.get("parse_mode"), call.params.get(entities_key))
        if required and not text.strip():
            raise _bad("message text is empty")
        if utf16_len(text) > limit:
            raise _bad("message is too long" if key == "text" else "message caption is too long")
        fields: JSON = {key: text}
        if entities:
            fields[entities_key] = entities
        return fields

    def _new_bot_message(self, call: _Call, content: JSON, markup: JSON | None) -> JSON:
        reply_params = call.params.get("reply_parameters")
        reply_to = (
            reply_params.get("message_id") if isinstance(reply_params, dict) else call.params.get("reply_to_message_id")
        )
        allow_missing = bool(
            (reply_params or {}).get("allow_sending_without_reply")
            if isinstance(reply_params, dict)
            else call.params.get("allow_sending_without_reply")
        )
        with self._cond:
            chat_id = call.chat_id
            assert chat_id is not None
            message: JSON = {
                "message_id": next(self._message_ids),
                "from": dict(self.bot_user),
                "chat": self._chat_for(chat_id),
                "date": int(time.time()),
            }
            if reply_to is not None:
                original = self._messages.get(_as_int(reply_to, -1))
                if original is not None and original["chat"]["id"] == message["chat"]["id"]:
                    message["reply_to_message"] = self._reply_copy(original["message_id"], original["chat"]["id"])
                elif not allow_missing:
                    raise _bad("message to be replied not found")
            message.update(content)
            inline = self._message_markup(markup)
            if inline:
                message["reply_markup"] = inline
            self._messages[message["message_id"]] = message
            return copy.deepcopy(message)

    def _m_send_message(self, call: _Call) -> JSON:
        self._check_can_send(call)
        content = self._formatted(call, "text", MAX_TEXT_LENGTH, required=True)
        markup = self._checked_markup(call.params.get("reply_markup"))
        return self._new_bot_message(call, content, markup)

    def _input_file(self, call: _Call, value: Any, field_name: str) -> UploadedFile | str:
        """What the bot passed for a file field: an upload (direct or attach://), a file_id or a URL."""
        if isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value[len("attach://") :])
            if upload is None:
                raise _bad(f"wrong file identifier/HTTP URL specified ({value} is not in the request)")
            return upload
        if value is None and field_name in call.files:
            return call.files[field_name]
        if isinstance(value, str) and value:
            return value
        raise _bad(f"there is no {field_name} in the request")

    def _media_from_input(self, source: UploadedFile | str, kind: str, params: Mapping[str, Any]) -> Any:
        """The Telegram object (PhotoSize list for photos) for an upload, a known file_id or a URL."""
        if isinstance(source, str):
            with self._cond:
                known = self._media_objects.get(source)
            if known is not None:
                if known[0] != kind:
                    raise _bad(f"can't use file of type {known[0].title()} as {kind.title()}")
                return copy.deepcopy(known[1])
            if not source.startswith(("http://", "https://")):
                raise _bad("wrong file identifier/HTTP URL specified")
            name = PurePosixPath(urllib.parse.urlsplit(source).path).name or f"{kind}.bin"
            source = UploadedFile(kind, name, "application/octet-stream", make_image() if kind == "photo" else b"")
        if kind == "photo":
            return self._register_photo(source.data)
        mime = source.content_type if source.content_type != "application/octet-stream" else None
        return self._new_media(
            kind,
            source.data,
            file_name=source.filename,
            mime_type=mime,
            duration=_as_int(params.get("duration"), 0),
            width=_as_int(params.get("width"), 0),
            height=_as_int(params.get("height"), 0),
        )

    def _m_send_media(self, call: _Call, kind: str) -> JSON:
        self._check_can_send(call)
        caption = self._formatted(call, "caption", MAX_CAPTION_LENGTH, required=False) if kind != "sticker" else {}
        markup = self._checked_markup(call.params.get("reply_markup"))
        media = self._media_from_input(self._input_file(call, call.params.get(kind), kind), kind, call.params)
        content: JSON = {kind: media, **caption}
        if kind == "animation":
            content["document"] = {
                k: media[k] for k in ("file_id", "file_unique_id", "file_name", "mime_type", "file_size")
            }
        if call.params.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._new_bot_message(call, content, markup)

    def _m_send_media_group(self, call: _Call) -> list[JSON]:
        self._check_can_send(call)
        items = call.params.get("media")
        if not isinstance(items, list) or not 2 <= len(items) <= 10:
            raise _bad("wrong number of media")
        group_id = str(next(self._media_groups))
        contents = []
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in ("photo", "video", "document", "audio"):
                raise _bad("can't parse InputMedia: unsupported media type")
            kind = item["type"]
            media = self._media_from_input(self._input_file(call, item.get("media"), "media"), kind, item)
            sub = _Call(call.method, {**item, "parse_mode": item.get("parse_mode")}, call.files, call.chat_id, call.at)
            caption = self._formatted(sub, "caption", MAX_CAPTION_LENGTH, required=False)
            contents.append({kind: media, "media_group_id": group_id, **caption})
        return [self._new_bot_message(call, content, None) for content in contents]

    def _m_send_chat_action(self, call: _Call) -> bool:
        self._check_can_send(call)
        if call.params.get("action") not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    def _m_answer_callback_query(self, call: _Call) -> bool:
        query_id = str(call.params.get("callback_query_id") or "")
        text = call.params.get("text")
        with self._cond:
            query = self._callback_queries.get(query_id)
            too_old = query is None or query["answered"] or call.at - query["at"] > self.callback_query_ttl
            if too_old:
                raise _bad("query is too old and response timeout expired or query ID is invalid")
            if isinstance(text, str) and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
                raise _bad("MESSAGE_TOO_LONG")
            assert query is not None
            query["answered"] = True
        return True

    # -- editing

    def _edit_target(self, call: _Call) -> JSON | None:
        """The stored message to edit (None for inline messages, which the fake does not track)."""
        if call.params.get("inline_message_id"):
            return None
        message = self._messages.get(_as_int(call.params.get("message_id"), -1))
        if message is None or call.chat_id is None or message["chat"]["id"] != call.chat_id:
            raise _bad("message to edit not found")
        if message["from"]["id"] != self.bot_id:
            raise _bad("message can't be edited")
        return message

    def _apply_edit(self, message: JSON, changes: JSON, remove: Sequence[str]) -> JSON:
        before = {k: message.get(k) for k in (*changes, *remove)}
        after = {**{k: None for k in remove}, **changes}
        if before == after:
            raise _bad(NOT_MODIFIED.removeprefix("Bad Request: "))
        for key, value in after.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        return copy.deepcopy(message)

    def _m_edit_message_text(self, call: _Call) -> JSON | bool:
        content = self._formatted(call, "text", MAX_TEXT_LENGTH, required=True)
        markup = self._message_markup(self._checked_markup(call.params.get("reply_markup")))
        with self._cond:
            message = self._edit_target(call)
            if message is None:
                return True
            if "text" not in message:
                raise _bad("there is no text in the message to edit")
            changes = {"text": content["text"], "entities": content.get("entities"), "reply_markup": markup}
            return self._apply_edit(message, changes, ())

    def _m_edit_message_caption(self, call: _Call) -> JSON | bool:
        content = self._formatted(call, "caption", MAX_CAPTION_LENGTH, required=False)
        markup = self._message_markup(self._checked_markup(call.params.get("reply_markup")))
        with self._cond:
            message = self._edit_target(call)
            if message is None:
                return True
            if not any(key in message for key in _MEDIA_KEYS):
                raise _bad("there is no caption in the message to edit")
            changes = {
                "caption": content.get("caption"),
                "caption_entities": content.get("caption_entities"),
                "reply_markup": markup,
            }
            return self._apply_edit(message, changes, ())

    def _m_edit_message_reply_markup(self, call: _Call) -> JSON | bool:
        markup = self._message_markup(self._checked_markup(call.params.get("reply_markup")))
        with self._cond:
            message = self._edit_target(call)
            if message is None:
                return True
            return self._apply_edit(message, {"reply_markup": markup}, ())

    def _m_edit_message_media(self, call: _Call) -> JSON | bool:
        item = call.params.get("media")
        if not isinstance(item, dict) or item.get("type") not in ("photo", "video", "document", "audio", "animation"):
            raise _bad("can't parse InputMedia")
        with self._cond:
            self._edit_target(call)  # fail fast before processing the upload
        kind = item["type"]
        media = self._media_from_input(self._input_file(call, item.get("media"), "media"), kind, item)
        sub = _Call(call.method, dict(item), call.files, call.chat_id, call.at)
        caption = self._formatted(sub, "caption", MAX_CAPTION_LENGTH, required=False)
        markup = self._message_markup(self._checked_markup(call.params.get("reply_markup")))
        with self._cond:
            message = self._edit_target(call)
            if message is None:
                return True
            changes: JSON = {
                kind: media,
                "caption": caption.get("caption"),
                "caption_entities": caption.get("caption_entities"),
                "reply_markup": markup,
            }
            return self._apply_edit(message, changes, [k for k in _MEDIA_KEYS if k != kind])

    def _m_delete_message(self, call: _Call) -> bool:
        with self._cond:
            message = self._messages.get(_as_int(call.params.get("message_id"), -1))
            if message is None or message["chat"]["id"] != call.chat_id:
                raise _bad("message to delete not found")
            del self._messages[message["message_id"]]
        return True

    # -- bot settings

    def _m_set_my_commands(self, call: _Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict) or not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                raise _bad("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad("command description must be non-empty")
        with self._cond:
            key = self._commands_key(call.params.get("scope"), call.params.get("language_code"))
            self._commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    def _m_get_my_commands(self, call: _Call) -> list[JSON]:
        with self._cond:
            key = self._commands_key(call.params.get("scope"), call.params.get("language_code"))
            return copy.deepcopy(self._commands.get(key, []))

    def _m_delete_my_commands(self, call: _Call) -> bool:
        with self._cond:
            self._commands.pop(self._commands_key(call.params.get("scope"), call.params.get("language_code")), None)
        return True

    def _set_bot_text(self, call: _Call, key: str) -> bool:
        with self._cond:
            self._bot_texts[(key, str(call.params.get("language_code") or ""))] = str(call.params.get(key) or "")
        return True

    def _get_bot_text(self, call: _Call, key: str) -> JSON:
        with self._cond:
            value = self._bot_texts.get((key, str(call.params.get("language_code") or "")))
        if value is None and key == "name":
            value = self.bot_user["first_name"]
        return {key: value or ""}


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def _max_in_window(times: list[tuple[float, int]], window: float) -> int:
    """Largest total weight of timestamps inside any half-open interval ``(t - window, t]``."""
    times = sorted(times)
    best = total = start = 0
    for end, (at, weight) in enumerate(times):
        total += weight
        while start <= end and times[start][0] <= at - window:
            total -= times[start][1]
            start += 1
        best = max(best, total)
    return best


# --------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: FakeBotApi) -> None:
        self.api = api
        super().__init__(address, _RequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (cancelled long-polls, timeouts) are normal; anything else is a fake bug."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        self.api._internal_error(traceback.format_exc())


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx's connection pool expects
    disable_nagle_algorithm = True  # and one buffered write per response: else ~40 ms delayed-ACK stalls
    wbufsize = 64 * 1024  # handle_one_request() flushes after each response
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.server.api._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, False)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self._read_body()
        status, content_type, payload = self.server.api._handle_http(self.command, self.path, self.headers, body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: request lines contain the bot token."""


# --------------------------------------------------------------------------------------------------
# pytest fixture
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def fake_bot_api() -> Iterator[FakeBotApi]:
    """A started :class:`FakeBotApi`; the test fails if the fake itself crashed."""
    with FakeBotApi() as api:
        yield api
        api.assert_no_internal_errors()
