#!/usr/bin/env python3
"""Start the bot: ``TELEGRAM_TOKEN=... python bot.py`` (long polling) or with ``--webhook-url`` (webhook).

Every setting is a flag and an environment variable (see ``--help`` and lookalike/config.py).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from lookalike.config import Settings
from lookalike.store import StoreError
from lookalike.telegram.app import serve
from lookalike.telegram.logs import setup_logging

log = logging.getLogger("lookalike.bot")


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop)


def main(argv: list[str] | None = None) -> int:
    try:
        settings, _ = Settings.from_args(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    secret_part = settings.token.partition(":")[2]
    setup_logging(settings.log_level, settings.log_format == "json", [settings.token, secret_part])
    if not settings.token:
        log.error("no bot token: set TELEGRAM_TOKEN (from @BotFather) or pass --token")
        return 2
    try:
        asyncio.run(_main(settings))
    except StoreError as exc:
        log.error("cannot start: %s", exc)
        return 2
    except Exception:  # logged through the redacting formatter: PTB's InvalidToken message contains the token
        log.exception("cannot start")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
