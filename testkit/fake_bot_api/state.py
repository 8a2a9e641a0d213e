"""The state all parts of the fake share, guarded by one lock, and the wake-up call after every change.

Each part of ``FakeBotApi`` (a mixin in its own module) reads and changes this state under ``_cond``; one lock
for all keeps multi-step changes (a send that stores a message, takes a rate slot, ...) atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from typing import TYPE_CHECKING, Any

from testkit.fake_bot_api.model import JSON, ChatId, Request, StoredFile, WebhookConfig

if TYPE_CHECKING:
    from testkit.fake_bot_api.dispatch import Server
    from testkit.fake_bot_api.faults import Fault

DEFAULT_TOKEN = "123456789:TEST-fake-token_ABCdefGHIjkl"


class State:
    """The fake's bot identity and everything it remembers."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, bot_username: str = "lookalike_test_bot") -> None:
        bot_id, sep, _ = token.partition(":")
        if not (sep and bot_id.isdigit()):
            raise ValueError("token must look like '<digits>:<secret>'")
        self.token, self.bot_id = token, int(bot_id)
        self.bot_user: JSON = {"id": self.bot_id, "is_bot": True, "first_name": "Lookalike", "username": bot_username}
        self.internal_errors: list[str] = []  # tracebacks of bugs in the fake itself
        self._server: Server | None = None
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
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._media: dict[str, tuple[str, Any]] = {}  # file_id -> (kind, Telegram object): sending a file_id again
        self._faults: list[Fault] = []
        self._blocked: set[ChatId] = set()
        self._served_paths: dict[str, str] = {}
        self._rate_limit: tuple[int | None, int | None, float, int] | None = None
        self._recent_sends: list[tuple[float, ChatId | None]] = []
        self._outage_until = self._poll_generation = self._waiting_polls = 0
        self._allowed_updates: list[str] | None = None
        self._webhook: WebhookConfig | None = None
        self._commands: dict[str, list[JSON]] = {}  # language_code ("" for all) -> commands

    def _notify(self) -> None:
        """Wake sync and async waiters; call with the lock held after any change."""
        self._cond.notify_all()
        for loop, event in list(self._async_waiters):
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(event.set)
