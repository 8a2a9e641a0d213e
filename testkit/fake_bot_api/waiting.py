"""Waiting without sleeping: block (or await) until the bot did something, woken by every change of state."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from testkit.fake_bot_api.history import is_sent
from testkit.fake_bot_api.model import ChatId, Request, WaitTimeout
from testkit.fake_bot_api.state import State

T = TypeVar("T")


class Waiting(State):
    """Each ``wait_*`` has an ``_async`` twin for a bot that runs in the caller's event loop."""

    def wait_for(self, predicate: Callable[[Request], bool], timeout: float = 5.0, count: int = 1) -> list[Request]:
        """Block until ``count`` requests satisfy ``predicate``; returns all matching ones."""
        return self._wait(lambda: self._matching(predicate, count), timeout, f"{count} matching request(s)")

    def wait_for_sent(
        self, chat_id: ChatId | None = None, count: int = 1, timeout: float = 5.0, *, method: str | None = None
    ) -> list[Request]:
        """Block until the bot sent ``count`` messages (to ``chat_id``, by ``method``); returns them all."""
        return self.wait_for(lambda r: is_sent(r, chat_id, method), timeout, count)

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
        return await self.wait_for_async(lambda r: is_sent(r, chat_id, method), timeout, count)

    async def wait_for_poller_async(self, timeout: float = 5.0) -> None:
        """``wait_for_poller`` that yields to the event loop."""
        await self._wait_async(lambda: self._waiting_polls > 0 or None, timeout, "a waiting getUpdates long-poll")

    async def wait_until_consumed_async(self, timeout: float = 5.0) -> None:
        """``wait_until_consumed`` that yields to the event loop."""
        await self._wait_async(lambda: not self._updates or None, timeout, "all updates to be confirmed")

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
