"""Test tools shared by tests/ and bench/: a fake Telegram Bot API server the real bot talks to over loopback."""

from testkit.fake_bot_api import FakeBotApi, Request, WaitTimeout, make_image

__all__ = ["FakeBotApi", "Request", "WaitTimeout", "make_image"]
