"""Fault injection: error answers, hangs, blocked users, Telegram's rate limit, outages and hostile file paths."""

from __future__ import annotations

import http.client
import sys
import time
from dataclasses import dataclass

from testkit.fake_bot_api.model import DESCRIPTIONS, MESSAGE_METHODS, Answer, ApiError, ChatId
from testkit.fake_bot_api.state import State


@dataclass
class Fault:
    """A pending ``fail_next`` or ``hang_next``."""

    method: str  # lower-case method, "download" or "*"
    chat_id: ChatId | None
    delay: float
    answer: Answer | None  # None: only the delay, then a normal answer
    remaining: int


class Faults(State):
    """Faults stay in force until used up, undone or ``clear_faults``."""

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
        description = description or default or DESCRIPTIONS.get(status) or http.client.responses.get(status, "Error")
        error = ApiError(status, description, retry_after if status == 429 else None).payload
        answer = Answer(status, error, body, "text/html" if body else "application/json", injected=True)
        with self._cond:
            self._faults.append(Fault(method.lower(), chat_id, delay, answer, count))

    def hang_next(self, method: str, seconds: float, *, count: int = 1, chat_id: ChatId | None = None) -> None:
        """Delay the next ``count`` calls of ``method`` by ``seconds``, then answer them normally.

        Triggers client timeouts; as on Telegram the message still arrives although the client gave up.
        """
        with self._cond:
            self._faults.append(Fault(method.lower(), chat_id, seconds, None, count))

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

    def _take_fault(self, method: str, chat_id: ChatId | None) -> Fault | None:
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
