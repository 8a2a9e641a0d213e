#!/usr/bin/env python3
"""Start the bot: ``TELEGRAM_TOKEN=... python bot.py`` (long polling) or with ``--webhook-url`` (webhook).

The same as ``python -m lookalike bot``; every setting is a flag and an environment variable (``--help``).
"""

import sys

from lookalike.cli import main

if __name__ == "__main__":
    sys.exit(main(["bot", *sys.argv[1:]]))
