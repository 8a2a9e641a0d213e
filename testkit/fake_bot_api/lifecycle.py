"""Lifecycle: serving from a daemon thread, and wiring PTB's Bot and ApplicationBuilder to the fake."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Self

from testkit.fake_bot_api.dispatch import Dispatch, Server

if TYPE_CHECKING:
    from telegram import Bot
    from telegram.ext import ApplicationBuilder


class Lifecycle(Dispatch):
    """Start and stop serving; a context manager for both."""

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve from a daemon thread; returns self."""
        if self._server is None:
            self._closing.clear()
            self._server = Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: ends pending long-polls and hangs, closes the socket, joins the thread."""
        server, self._server = self._server, None
        if server is not None and self._thread is not None:
            self._closing.set()
            with self._cond:
                self._notify()
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The TCP port bound on 127.0.0.1."""
        if self._server is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For ``base_url`` of PTB's Bot or ApplicationBuilder (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``base_file_url`` of PTB's Bot or ApplicationBuilder (PTB appends the token and the file path)."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    def bot(self, **kwargs: Any) -> Bot:
        """A ``telegram.Bot`` wired to this server (``async with api.bot() as bot``)."""
        from telegram import Bot

        return Bot(self.token, base_url=self.base_url, base_file_url=self.base_file_url, **kwargs)

    def application_builder(self) -> ApplicationBuilder:
        """An ``ApplicationBuilder`` with token, base_url and base_file_url set."""
        from telegram.ext import ApplicationBuilder

        return ApplicationBuilder().token(self.token).base_url(self.base_url).base_file_url(self.base_file_url)

    def assert_no_internal_errors(self) -> None:
        """Fail if the fake itself crashed handling a request (a bug here, not in the bot)."""
        if self.internal_errors:
            raise AssertionError("the fake Bot API crashed:\n" + "\n".join(self.internal_errors))
