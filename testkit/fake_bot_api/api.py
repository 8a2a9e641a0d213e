"""``FakeBotApi``, composed of its parts."""

from __future__ import annotations

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
