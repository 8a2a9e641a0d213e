"""Run the real bot (``lookalike.telegram.app.serve``) in a background thread with its own event loop, talking
to the fake Bot API server over loopback HTTP. Tests stay synchronous and use the fake's blocking waits."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fake_bot_api import FakeBotApi

from lookalike.config import Settings
from lookalike.telegram.app import serve


def bot_settings(api: FakeBotApi, assets: Path, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "token": api.token,
        "base_url": api.base_url,
        "base_file_url": api.base_file_url,
        "assets": assets,
        "workers": 2,
        "queue_size": 16,
        "photos_per_minute": 1000,
        "feedback_db": tmp / "feedback.sqlite3",
        "max_faces": 5,
    }
    values.update(overrides)
    return Settings(**values)


class RunningBot:
    """The bot in a thread: ``stop()`` sets its stop event, as SIGTERM does in bot.py, and waits for it to end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bot", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the test by stop()
            self.error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._ready.set()
        await serve(self.settings, self._stop)

    def start(self) -> RunningBot:
        self._thread.start()
        self._ready.wait(30)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the bot did not stop in time")
        if self.error is not None:
            raise self.error


@contextmanager
def running_bot(settings: Settings) -> Iterator[RunningBot]:
    bot = RunningBot(settings).start()
    try:
        yield bot
    finally:
        bot.stop()
