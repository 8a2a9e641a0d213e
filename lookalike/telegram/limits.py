"""Telegram's flood limits and ours: 30 msg/s overall and 20/min per group (PTB's AIORateLimiter, which also
retries after RetryAfter), plus 1 msg/s per chat (pacing added here), plus a per-user photo allowance."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

# Methods that put a message in a chat (or change one): these count against Telegram's per-chat limit.
PACED_PREFIXES = ("send", "edit", "copy", "forward")
CHAT_INTERVAL = 1.05  # a little over 1 s: timer and network jitter must not squeeze two into one second


class PacedRateLimiter(AIORateLimiter):
    """AIORateLimiter plus at most one message per ``interval`` seconds in any one chat."""

    def __init__(self, interval: float = CHAT_INTERVAL, max_retries: int = 3, **limits: float) -> None:
        super().__init__(max_retries=max_retries, **limits)
        self.interval = interval
        self._next: dict[int | str, float] = {}

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        chat_id = data.get("chat_id")
        if chat_id is not None and endpoint.lower().startswith(PACED_PREFIXES) and endpoint != "sendChatAction":
            await self._pace(chat_id)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

    async def _pace(self, chat_id: int | str) -> None:
        """Reserve this chat's next free slot, then wait for it (reserving before any await keeps call order)."""
        now = time.monotonic()
        slot = max(now, self._next.get(chat_id, 0.0))
        self._next[chat_id] = slot + self.interval
        if len(self._next) > 10_000:
            self._next = {c: t for c, t in self._next.items() if t > now}
        if slot > now:
            await asyncio.sleep(slot - now)


class PhotoAllowance:
    """At most ``per_minute`` photos per user in any 60 s window (a sliding log per user)."""

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.per_minute = per_minute
        self.window = window
        self._seen: dict[int, deque[float]] = {}

    def allow(self, user_id: int) -> bool:
        now = time.monotonic()
        log = self._seen.setdefault(user_id, deque())
        while log and now - log[0] >= self.window:
            log.popleft()
        if len(log) >= self.per_minute:
            return False
        log.append(now)
        if len(self._seen) > 50_000:
            self._seen = {u: q for u, q in self._seen.items() if q and now - q[-1] < self.window}
        return True


class MemoryBudget:
    """Bytes of users' photos the bot holds at once (downloading, queued for a worker, being analysed).

    A photo reserves its size before its download starts; when the budget is spent the user hears "busy" at once,
    so a flood of 20 MB files cannot take the process's memory with it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> bool:
        if self.held + size > self.limit and self.held > 0:  # one photo always fits, whatever the limit
            return False
        self.held += size
        return True

    def give(self, size: int) -> None:
        self.held -= size
