"""Signs of life while a photo is in hand: Telegram's "sending a photo…" kept showing, and one short note when the
answer is late.

Answers are retried through an outage for ``--reply-deadline`` (minutes) — an outage should delay answers, not drop
them — but minutes of silence read as a dead bot. The signs are best effort and cost the answer nothing: each is one
request with a bounded wait, never retried (the chat action is only renewed on its period), so during the very
outage that delays the answer they neither pile up requests nor hold the answer back.

The note says Telegram is slow, so its clock runs only while the photo waits on Telegram: time in the worker queue
and analysis (``own_work``) does not count. A bot slow from its own load sends no notes, which would only add
messages to the overload (and would not be true).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager

from telegram import Message
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError

from lookalike.telegram.texts import text

log = logging.getLogger(__name__)

RENEW_EVERY = 4.0  # s: Telegram shows a chat action for 5 s (or until the bot's next message)
NOTE_AFTER = 20.0  # s waiting on Telegram before the user is told Telegram is slow and the bot is still trying


class Waiting:
    """The signs of life for one photo, from ``start()`` until the block ends (the answer is out, or the request
    ended). The note replies to ``message``, as the answer will.

    Usage::

        async with Waiting(message, lang) as waiting:
            ...                      # admission: a refusal is answered at once and needs no sign
            waiting.start()
            ...                      # download, retries, sending
            with waiting.own_work():
                ...                  # the worker queue and analysis
    """

    def __init__(self, message: Message, lang: str) -> None:
        self._message = message
        self._lang = lang
        self._tasks: list[asyncio.Task[None]] = []
        self._started = 0.0  # loop time of start()
        self._own_since: float | None = None  # loop time the current own work began
        self._own_spent = 0.0  # s of own work before the current one
        self._telegram_again = asyncio.Event()
        self._telegram_again.set()

    async def __aenter__(self) -> Waiting:
        return self

    def start(self) -> None:
        self._started = _now()
        self._tasks = [asyncio.create_task(self._keep_action()), asyncio.create_task(self._late_note())]

    @contextmanager
    def own_work(self) -> Iterator[None]:
        """The block is the bot's own work, not Telegram's: the note's clock stops (the chat action goes on)."""
        self._own_since = _now()
        self._telegram_again.clear()
        try:
            yield
        finally:
            self._own_spent += _now() - self._own_since
            self._own_since = None
            self._telegram_again.set()

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._tasks:
            task.cancel()
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, Exception):  # a bug here must not turn an answer already sent into "failed"
                log.error("signs of life failed", exc_info=result)

    async def _keep_action(self) -> None:
        """The chat action, renewed before it lapses; a renewal that hangs is given up when the next one is due."""
        while True:
            due = _now() + RENEW_EVERY
            await _attempt(self._message.reply_chat_action(ChatAction.UPLOAD_PHOTO), "chat action", RENEW_EVERY)
            await asyncio.sleep(due - _now())

    async def _late_note(self) -> None:
        """One note once the photo has waited ``NOTE_AFTER`` on Telegram: one attempt (its fate unknown after a
        time-out, a second could double it); cancelled with the block, so it never follows the answer."""
        while True:
            if self._own_since is not None:
                await self._telegram_again.wait()
            elif (left := NOTE_AFTER - (_now() - self._started - self._own_spent)) > 0:
                await asyncio.sleep(left)
            else:
                break
        note = text(self._lang, "still_trying")
        await _attempt(self._message.reply_text(note, parse_mode=ParseMode.HTML), "late note")


def _now() -> float:
    return asyncio.get_running_loop().time()


async def _attempt(call: Awaitable[object], what: str, within: float | None = None) -> None:
    """Await ``call`` for at most ``within`` seconds; Telegram's refusals and time-outs are expected (an outage)."""
    try:
        async with asyncio.timeout(within):
            await call
    except (TelegramError, TimeoutError) as exc:
        log.debug("sign of life not sent", extra={"what": what, "error": type(exc).__name__})
