"""The real bot against the fake Bot API: in a thread of this process (``running_bot``), or as ``python bot.py``
in a process of its own (``BotProcess``), exactly as operators start it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lookalike.settings import Settings
from lookalike.telegram.app import serve
from testkit.data import ROOT
from testkit.fake_bot_api import FakeBotApi
from testkit.procs import tree_rss


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

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


@contextmanager
def polling_bot(api: FakeBotApi, assets: Path, tmp: Path, **overrides: Any) -> Iterator[RunningBot]:
    """The bot in a thread, polling the fake once it is up; the fake must not have crashed when it stops."""
    with running_bot(bot_settings(api, assets, tmp, **overrides)) as running:
        api.wait_for_poller(timeout=60)
        yield running
    api.assert_no_internal_errors()


def lookalike_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m lookalike *args`` as an operator runs it, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "lookalike", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


class BotProcess:
    """``python bot.py`` against the fake, its stderr in ``log``; stopped with SIGTERM like systemd does."""

    def __init__(
        self,
        api: FakeBotApi,
        assets: Path,
        workdir: Path,
        *flags: str,
        workers: int = 1,
        metrics_port: int = 0,
        env: dict[str, str] | None = None,
        root: Path = ROOT,
    ) -> None:
        """``root``: the checkout whose ``bot.py`` runs (its working directory), e.g. another worktree."""
        self.log = workdir / "bot.log"
        self.metrics_port = metrics_port
        environment = {
            **os.environ,
            "TELEGRAM_TOKEN": api.token,
            "LOOKALIKE_BASE_URL": api.base_url,
            "LOOKALIKE_BASE_FILE_URL": api.base_file_url,
            "LOOKALIKE_METRICS_PORT": str(metrics_port),
            **(env or {}),
        }
        command = [
            sys.executable,
            "bot.py",
            "--assets",
            str(assets),
            "--workers",
            str(workers),
            "--feedback-db",
            str(workdir / "feedback.sqlite3"),
            *flags,
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=root, env=environment, stdout=subprocess.DEVNULL, stderr=log)

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()

    def requests_total(self) -> float:
        """The sum of ``lookalike_requests_total`` over outcomes, scraped from /metrics."""
        lines = self.metrics().splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("lookalike_requests_total{"))

    def rss(self) -> int:
        return tree_rss(self.process.pid)

    def stop(self, timeout: float = 120) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")
