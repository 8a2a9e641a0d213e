"""What the bot did: its requests and their answers, the messages as users now see them, and its send rates."""

from __future__ import annotations

import copy

from testkit.fake_bot_api.model import JSON, MESSAGE_METHODS, ChatId, RateStats, Request, WebhookConfig
from testkit.fake_bot_api.state import State


def _matches(record: Request, method: str | None, chat_id: ChatId | None) -> bool:
    return (method is None or record.method.lower() == method.lower()) and chat_id in (None, record.chat_id)


def is_sent(record: Request, chat_id: ChatId | None, method: str | None) -> bool:
    """Whether ``record`` is a successful message send (any of ``MESSAGE_METHODS`` unless ``method`` is given)."""
    return record.ok and (method is not None or record.method in MESSAGE_METHODS) and _matches(record, method, chat_id)


def _max_in_window(times: list[float], window: float) -> int:
    """Most timestamps inside any half-open interval ``(t - window, t]``."""
    times, best, start = sorted(times), 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - window:
            start += 1
        best = max(best, end - start + 1)
    return best


class History(State):
    """Read-only views of what the bot did, for assertions."""

    def requests(self, method: str | None = None, chat_id: ChatId | None = None) -> list[Request]:
        """Every request (failed, injected and dropped ones too), oldest first."""
        with self._cond:
            return [r for r in self._records if _matches(r, method, chat_id)]

    def sent(self, chat_id: ChatId | None = None, method: str | None = None) -> list[Request]:
        """Successful message sends (``MESSAGE_METHODS``), or successful calls of ``method``."""
        with self._cond:
            return [r for r in self._records if is_sent(r, chat_id, method)]

    def last_sent(self, chat_id: ChatId | None = None) -> Request | None:
        """The latest successful message send, if any."""
        return next(reversed(self.sent(chat_id)), None)

    def message(self, message_id: int) -> JSON:
        """The current state of a message (bot messages reflect later edits)."""
        with self._cond:
            return copy.deepcopy(self._messages[message_id])

    @property
    def webhook(self) -> WebhookConfig | None:
        """The webhook the bot set, or None."""
        return self._webhook

    def commands(self, language_code: str = "") -> list[JSON]:
        """The commands setMyCommands stored for a language ("" for all)."""
        with self._cond:
            return copy.deepcopy(self._commands.get(language_code, []))

    def max_rate(self, window: float = 1.0, *, chat_id: ChatId | None = None) -> int:
        """Most messages sent within any ``window`` seconds, overall or to ``chat_id``."""
        return _max_in_window([r.at for r in self.sent(chat_id)], window)

    def rate_stats(self, window: float = 1.0) -> RateStats:
        """Overall and per-chat maximum of messages sent within any ``window`` seconds."""
        per_chat: dict[ChatId, list[float]] = {}
        for record in (sends := self.sent()):
            per_chat.setdefault(record.chat_id, []).append(record.at)
        per_chat_max = {chat: _max_in_window(times, window) for chat, times in per_chat.items()}
        return RateStats(window, _max_in_window([r.at for r in sends], window), per_chat_max, len(sends))
