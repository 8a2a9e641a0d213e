"""The values the fake hands out (requests, uploads, statistics) and the Telegram-shaped errors it answers with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, TypedDict

JSON = dict[str, Any]
Files = dict[str, "UploadedFile"]
ChatId = int | str

#: Successful calls of these are messages in a chat: what ``sent()`` and the rate statistics count.
MESSAGE_METHODS = frozenset({"sendMessage", "sendPhoto", "sendAnimation", "sendVideo", "sendDocument"})
DESCRIPTIONS = {  # Telegram's words where they differ from the HTTP reason phrase
    403: "Forbidden: bot was blocked by the user",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
}


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


class StoredFile(NamedTuple):
    """A file getFile can serve: a user's upload, a PhotoSize, or what the bot uploaded."""

    file_id: str
    unique_id: str
    path: str
    data: bytes
    size: int  # what getFile reports: may lie, to test the 20 MB limit


class Answer(NamedTuple):
    """What the HTTP handler sends back for one request."""

    status: int
    response: JSON
    body: bytes | None = None  # sent instead of the JSON: a download, fail_next(body=...)
    content_type: str = "application/json"
    injected: bool = False


DROPPED = Answer(0, {}, injected=True)  # an outage: the connection is closed without an answer


class ApiError(Exception):
    """A Telegram error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.payload: JSON = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            self.payload["parameters"] = {"retry_after": retry_after}


def bad(description: str) -> ApiError:
    """Telegram's 400 answer, whose descriptions all start "Bad Request: "."""
    return ApiError(400, f"Bad Request: {description}")
