"""Long polling of our own rather than PTB's Updater, for three reasons measured against the Updater:

- one update the library cannot parse made it fetch the same batch again forever (5,174 getUpdates calls and
  21 MB of log in 30 s); here each update is parsed alone and a poison one is skipped, logged by its id only;
- a 401/404 from getUpdates (token revoked) stopped its loop for good while the process looked alive; here the
  poller raises PollingStopped, ``/healthz`` turns unhealthy and the process exits for its supervisor;
- it confirmed updates to Telegram before they were answered, so ``kill -9`` lost them; here photo updates are
  written to the journal first, and only then confirmed by the next getUpdates.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from telegram import Update
from telegram.error import Conflict, EndPointNotFound, InvalidToken, RetryAfter, TelegramError
from telegram.ext import Application
from telegram.warnings import PTBUserWarning

from lookalike.logs import Throttled
from lookalike.telegram.journal import Journal, is_photo_update
from lookalike.telegram.sqlite import StorageError

# We ask for raw getUpdates on purpose (to parse each update alone); PTB warns that Bot.get_updates exists.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)
log = logging.getLogger(__name__)
throttled = Throttled(log)
POLL_TIMEOUT = 30  # s Telegram holds a getUpdates call open when there is nothing new
MAX_PAUSE = 30.0  # s between attempts while getUpdates keeps failing
T = TypeVar("T")


class PollingStopped(Exception):
    """getUpdates refused us for good (401/404: the token; 409: another instance or a webhook)."""


async def poll(app: Application, journal: Journal, allowed_updates: Sequence[str], stop: asyncio.Event) -> None:
    """Feed ``app.update_queue`` until ``stop`` is set; raise PollingStopped when retrying cannot help."""
    offset, pause = 0, 1.0
    while not stop.is_set():
        request = app.bot.do_api_request(
            "getUpdates",
            api_kwargs={"offset": offset, "timeout": POLL_TIMEOUT, "allowed_updates": list(allowed_updates)},
            read_timeout=POLL_TIMEOUT + 10,
        )
        try:
            batch = await _unless_stopped(request, stop)
        except (InvalidToken, EndPointNotFound, Conflict) as exc:  # 401, 404 (what an unknown token gets), 409
            raise PollingStopped(f"getUpdates refused: {type(exc).__name__}: {exc}") from exc
        except RetryAfter as exc:
            wait = exc.retry_after
            await _sleep(wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait), stop)
            continue
        except TelegramError as exc:  # network down, 5xx, an answer that is not JSON: wait and try again
            throttled.warning("getUpdates", "getUpdates failed, retrying", error=f"{type(exc).__name__}: {exc}")
            await _sleep(pause, stop)
            pause = min(MAX_PAUSE, pause * 2)
            continue
        pause = 1.0
        if isinstance(batch, list):
            offset = await _accept(app, journal, batch, offset)
    await _confirm(app, offset)


async def _accept(app: Application, journal: Journal, batch: list[Any], offset: int) -> int:
    """Parse each update alone, journal the photo ones, queue the new ones; returns the next offset."""
    parsed: list[tuple[dict[str, Any], Update]] = []
    for raw in batch:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        if not isinstance(update_id, int):
            throttled.warning("poison", "skipped an update without an id")
            continue
        offset = max(offset, update_id + 1)
        try:
            parsed.append((raw, Update.de_json(raw, app.bot)))
        except Exception as exc:  # a newer update type, a malformed message: skip it, never its neighbours
            throttled.warning(
                "poison", "skipped an update that cannot be parsed", update_id=update_id, error=type(exc).__name__
            )
    try:
        known = await asyncio.to_thread(journal.accept, [raw for raw, _ in parsed if is_photo_update(raw)])
    except StorageError as exc:  # answering goes on; only the kill -9 guarantee is lost while the store is down
        throttled.warning("journal", "journal unavailable", error=str(exc))
        known = set()
    for _, update in parsed:
        if update.update_id not in known:  # known: redelivered after a restart, the journal replays it
            await app.update_queue.put(update)
    return offset


async def _confirm(app: Application, offset: int) -> None:
    """Tell Telegram what we took before stopping, so a restart does not get it again (best effort)."""
    if offset:
        try:
            await app.bot.do_api_request("getUpdates", api_kwargs={"offset": offset, "timeout": 0, "limit": 1})
        except TelegramError as exc:
            log.info("could not confirm the last updates", extra={"error": type(exc).__name__})


async def _unless_stopped(call: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``call``'s result, or None as soon as ``stop`` is set (the call is then cancelled)."""
    task = asyncio.ensure_future(call)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait((task, stopped), return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        return None
    return task.result()


async def _sleep(seconds: float, stop: asyncio.Event) -> None:
    await _unless_stopped(asyncio.sleep(seconds), stop)


async def replay(app: Application, journal: Journal) -> int:
    """Queue the photo updates received but never answered before the last stop (a crash, ``kill -9``)."""
    try:
        pending = await asyncio.to_thread(journal.unanswered)
    except StorageError as exc:
        log.warning("journal unavailable: nothing replayed", extra={"error": str(exc)})
        return 0
    for body in pending:
        await app.update_queue.put(Update.de_json(body, app.bot))
    if pending:
        log.info("answering photos left unanswered by the last run", extra={"count": len(pending)})
    return len(pending)
