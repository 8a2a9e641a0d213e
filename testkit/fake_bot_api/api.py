"""``FakeBotApi``, composed of its parts, and a pytest fixture serving one per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.fake_bot_api.history import History
from testkit.fake_bot_api.lifecycle import Lifecycle
from testkit.fake_bot_api.users import UserActions
from testkit.fake_bot_api.waiting import Waiting
from testkit.fake_bot_api.webhooks import Webhooks


class FakeBotApi(Lifecycle, UserActions, History, Waiting, Webhooks):
    """The fake Telegram Bot API on 127.0.0.1, served by a thread: independent of any event loop or process.

    Every public method is thread-safe.  Injected updates stay pending until the bot confirms them with a
    getUpdates ``offset`` (or a webhook delivery succeeds), as on Telegram.
    """


@pytest.fixture
def fake_bot_api() -> Iterator[FakeBotApi]:
    """A started :class:`FakeBotApi`; the test fails if the fake itself crashed."""
    with FakeBotApi() as api:
        yield api
        api.assert_no_internal_errors()
