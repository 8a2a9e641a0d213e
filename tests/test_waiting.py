"""A user waiting through a fault sees the bot at work: the chat action renewed before it lapses, one note when the
answer is late, then the answer as always — through the fake Bot API's faults, the bot running in this process.

The note's delay is shortened here (a module constant the bot reads when it needs it); the renewal keeps its real
period, since "renewed before Telegram's 5 s run out" is what is tested.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from lookalike.engine.pool import WorkerPool
from lookalike.telegram import waiting
from lookalike.telegram.texts import TEXTS
from testkit.data import BuiltCatalog
from testkit.fake_bot_api import FakeBotApi, Request
from testkit.running import polling_bot

NOTE = TEXTS["en"]["still_trying"]
ACTION_SHOWN = 5.0  # s: how long Telegram shows a chat action


@pytest.fixture(scope="module")
def bot(api: FakeBotApi, catalog: BuiltCatalog, tmp_path_factory: pytest.TempPathFactory):
    with polling_bot(api, catalog.assets, tmp_path_factory.mktemp("bot")) as running:
        yield running


def send_photo(api: FakeBotApi, user: int, catalog: BuiltCatalog) -> tuple[int, float]:
    """The photo's message id and when it was sent."""
    sent_at = time.monotonic()
    update = api.send_photo(user, catalog.queries["obama"][0].read_bytes())
    return update["message"]["message_id"], sent_at


def replies_to(request: Request) -> int | None:
    return (request.message or {}).get("reply_to_message", {}).get("message_id")


def by_arrival(requests: list[Request]) -> list[Request]:
    return sorted(requests, key=lambda r: r.at)


def wait_past_next_renewal(api: FakeBotApi, user: int) -> None:
    """Wait until a chat action still being renewed (or a note still pending) would have arrived."""
    last = max((r.at for r in api.requests(chat_id=user)), default=time.monotonic())
    time.sleep(max(0.0, last + waiting.RENEW_EVERY + 0.5 - time.monotonic()))


def test_getfile_failing_for_a_while_shows_the_bot_at_work_then_answers_once(
    api: FakeBotApi, bot, catalog: BuiltCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "NOTE_AFTER", 2.0)
    user = 31
    api.fail_next("getFile", 500, count=4)  # tries at 0, 0.5, 1.5 and 3.5 s fail; the one at 7.5 s gets the file
    photo, sent_at = send_photo(api, user, catalog)
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=60)
    wait_past_next_renewal(api, user)

    assert [r.status for r in by_arrival(api.requests("getFile")) if r.at >= sent_at] == [500] * 4 + [200]
    [note, answer] = api.sent(chat_id=user)  # nothing doubled: one note, one card
    assert note.method == "sendMessage" and note.message["text"] == NOTE and replies_to(note) == photo
    assert answer == card and replies_to(card) == photo and "Barack Obama" in card.message["caption"]
    actions = by_arrival(api.requests("sendChatAction", chat_id=user))
    assert all(a.ok and a.params["action"] == "upload_photo" for a in actions)
    assert len(actions) >= 2 and note.at < card.at
    shown = [sent_at, *(a.at for a in actions if a.at < card.at), card.at]
    assert max(b - a for a, b in itertools.pairwise(shown)) < ACTION_SHOWN, shown  # never lapsed
    assert all(a.at < card.at + 1.0 for a in actions), "chat action renewed after the answer was out"


def test_a_fast_photo_gets_its_card_and_no_note(
    api: FakeBotApi, bot, catalog: BuiltCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "NOTE_AFTER", 6.0)
    user = 32
    photo, sent_at = send_photo(api, user, catalog)
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    assert card.at - sent_at < waiting.NOTE_AFTER, "the card itself was late: this run says nothing about the note"
    time.sleep(sent_at + waiting.NOTE_AFTER + 1.0 - time.monotonic())

    assert api.sent(chat_id=user) == [card] and replies_to(card) == photo
    assert api.requests("sendMessage", chat_id=user) == []
    actions = api.requests("sendChatAction", chat_id=user)
    assert actions and all(a.at < card.at + 1.0 for a in actions)


def test_a_photo_slow_in_the_bots_own_work_gets_the_chat_action_but_no_note(
    api: FakeBotApi, bot, catalog: BuiltCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The note says Telegram is slow: a long worker queue is the bot's own (and notes would only add to it)."""
    monkeypatch.setattr(waiting, "NOTE_AFTER", 1.5)
    queued, run = 4.5, WorkerPool.run

    async def after_a_queue(pool: WorkerPool, *args: object, **kwargs: object) -> object:
        await asyncio.sleep(queued)
        return await run(pool, *args, **kwargs)

    monkeypatch.setattr(WorkerPool, "run", after_a_queue)
    user = 34
    photo, sent_at = send_photo(api, user, catalog)
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    wait_past_next_renewal(api, user)

    assert card.at - sent_at > queued > waiting.NOTE_AFTER
    assert api.sent(chat_id=user) == [card] and replies_to(card) == photo
    actions = by_arrival(api.requests("sendChatAction", chat_id=user))
    assert len(actions) >= 2 and all(a.ok and a.at < card.at + 1.0 for a in actions)


def test_signs_of_life_that_fail_never_hold_back_or_double_the_answer(
    api: FakeBotApi, bot, catalog: BuiltCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(waiting, "NOTE_AFTER", 2.0)
    user, hang = 33, 20.0
    api.hang_next("sendChatAction", hang, chat_id=user)  # the first chat action hangs...
    api.fail_next("sendChatAction", 500, count=100, chat_id=user)  # ...the next ones are refused
    api.fail_next("sendMessage", 500, chat_id=user)  # and so is the note
    api.fail_next("getFile", 500, count=4)
    photo, sent_at = send_photo(api, user, catalog)
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=60)
    wait_past_next_renewal(api, user)

    assert card.at - sent_at < hang, "the answer waited for a hanging chat action"
    assert api.sent(chat_id=user) == [card] and replies_to(card) == photo
    [note] = api.requests("sendMessage", chat_id=user)  # refused once, never tried again
    assert note.status == 500 and note.params["text"] == NOTE
    refused = by_arrival([a for a in api.requests("sendChatAction", chat_id=user) if a.status == 500])
    assert refused, "renewals go on while the first chat action hangs"
    assert all(b.at - a.at > waiting.RENEW_EVERY - 0.5 for a, b in itertools.pairwise(refused))
    assert all(a.at < card.at + 1.0 for a in refused)
