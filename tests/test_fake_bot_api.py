"""The fake Bot API driven through a real python-telegram-bot ``Bot`` over loopback HTTP, as the bot's tests use it.

Plain sync tests: each scenario runs in its own event loop while the fake serves from its thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, EndPointNotFound, Forbidden, InvalidToken, NetworkError, RetryAfter

from testkit import FakeBotApi, WaitTimeout, make_image

HTML = ParseMode.HTML
# PTB warns about do_api_request and about its own int-valued durations (RetryAfter.retry_after).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBUserWarning")


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as fake:
        yield fake
        fake.assert_no_internal_errors()


def seconds(value: Any) -> float:
    """RetryAfter.retry_after is an int in PTB 22 and a timedelta with PTB_TIMEDELTA=1 (and in PTB 23)."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def test_get_me_unknown_methods_and_wrong_token(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            assert (await bot.get_me()).username == api.bot_user["username"]
            with pytest.raises(EndPointNotFound):
                await bot.do_api_request("sendSticker", api_kwargs={"chat_id": 1, "sticker": "x"})  # not served
        with pytest.raises(InvalidToken):
            async with Bot("1:wrong", base_url=api.base_url):
                pass

    asyncio.run(scenario())
    assert [r.status for r in api.requests()][-2:] == [404, 401]


def test_get_updates_offset_long_poll_and_webhook_conflict(api: FakeBotApi) -> None:
    api.send_text(7, "/start now")
    api.push_update({"edited_message": {"message_id": 1}})  # not in allowed_updates: never delivered

    def user_writes_while_the_bot_waits() -> None:
        api.wait_for_poller()
        api.send_text(7, "hello")

    async def scenario() -> None:
        async with api.bot() as bot:
            [first] = await bot.get_updates(allowed_updates=["message"])
            assert first.message.text == "/start now" and first.message.entities[0].type == "bot_command"
            threading.Thread(target=user_writes_while_the_bot_waits).start()
            started = time.monotonic()
            [second] = await bot.get_updates(offset=first.update_id + 1, timeout=10)
            assert second.message.text == "hello" and time.monotonic() - started < 5
            assert await bot.get_updates(offset=second.update_id + 1) == ()
            assert await bot.set_webhook("http://127.0.0.1:9/hook", secret_token="s3cret", allowed_updates=["message"])
            with pytest.raises(Conflict, match="webhook is active"):
                await bot.get_updates()
            assert api.webhook == ("http://127.0.0.1:9/hook", "s3cret", ["message"])
            assert await bot.delete_webhook()

    asyncio.run(scenario())
    api.wait_until_consumed()
    assert api.webhook is None and not api.pending_updates()


def test_photo_download_thumbnail_and_20_mb_limit(api: FakeBotApi) -> None:
    photo = make_image(1280, 960)
    api.send_photo(8, photo)
    api.send_document(8, b"%PDF", "huge.pdf", file_size=25 << 20)

    async def scenario() -> None:
        async with api.bot() as bot:
            sent_photo, sent_document = await bot.get_updates()
            assert [(p.width, p.height) for p in sent_photo.message.photo] == [(90, 68), (1280, 960)]
            largest = await sent_photo.message.photo[-1].get_file()
            assert await largest.download_as_bytearray() == photo
            assert sent_document.message.document.mime_type == "application/pdf"
            with pytest.raises(BadRequest, match=r"(?i)file is too big"):
                await sent_document.message.document.get_file()

    asyncio.run(scenario())
    assert [r.method for r in api.requests()][-3:] == ["getFile", "download", "getFile"]


def test_sent_photo_is_recorded_parsed_editable_and_its_buttons_pressable(api: FakeBotApi) -> None:
    card, clip = make_image(720, 400), b"GIF89a-blend"
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("More", callback_data="m:1")]])
    caption = 'You look like <b>Ann</b> — <a href="https://e.org/?a=1&amp;b=2">Ann ↗</a>'

    async def scenario() -> None:
        async with api.bot() as bot:
            sent = await bot.send_photo(9, card, caption=caption, parse_mode=HTML, reply_markup=keyboard)
            assert (
                sent.caption == "You look like Ann — Ann ↗" and sent.caption_entities[1].url == "https://e.org/?a=1&b=2"
            )
            api.press_button(9, sent.message_id, text="More")
            [press] = await bot.get_updates()
            assert press.callback_query.data == "m:1" and await press.callback_query.answer("ok")
            with pytest.raises(BadRequest, match=r"(?i)query is too old"):
                await press.callback_query.answer()
            edited = await bot.edit_message_caption(9, sent.message_id, caption="<i>more</i>", parse_mode=HTML)
            assert edited.caption == "more" and edited.reply_markup is None
            with pytest.raises(BadRequest, match="not modified"):
                await bot.edit_message_caption(9, sent.message_id, caption="<i>more</i>", parse_mode=HTML)
            with pytest.raises(BadRequest, match=r"(?i)can.t parse entities"):
                await bot.send_message(9, "a <br> b", parse_mode=HTML)
            again = await bot.send_photo(9, sent.photo[-1].file_id, reply_to_message_id=sent.message_id)
            assert again.photo == sent.photo and again.reply_to_message.message_id == sent.message_id
            animation = await bot.send_animation(9, clip, filename="blend.mp4", width=720, height=400)
            assert animation.animation.width == 720 and animation.document.file_name == "blend.mp4"

    asyncio.run(scenario())
    first, _, animation = api.sent(9, method="sendPhoto") + api.sent(9, method="sendAnimation")
    assert first.upload().data == card and first.text == caption and first.buttons[0]["text"] == "More"
    assert api.media_bytes(api.message(first.message["message_id"])) == card
    assert api.media_bytes(animation.message) == clip and api.last_sent(9) == animation


def test_injected_errors_reach_ptb_as_telegram_errors(api: FakeBotApi) -> None:
    api.fail_next("sendMessage", 429, retry_after=3, chat_id=10)
    api.block_user(11)

    async def scenario() -> None:
        async with api.bot() as bot:
            with pytest.raises(RetryAfter) as refused:
                await bot.send_message(10, "hi")
            assert seconds(refused.value.retry_after) == 3
            with pytest.raises(Forbidden):
                await bot.send_message(11, "hi")
            assert (await bot.send_message(10, "hi")).text == "hi"

    asyncio.run(scenario())
    assert [(r.status, r.injected) for r in api.requests("sendMessage")] == [(429, True), (403, False), (200, False)]
    with pytest.raises(WaitTimeout, match="sendMessage 11 -> 403"):
        api.wait_for_sent(chat_id=11, timeout=0.1)


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, InvalidToken), (404, InvalidToken), (409, Conflict), (500, NetworkError), (502, NetworkError)],
)
def test_fail_next_get_updates_with_any_status(api: FakeBotApi, status: int, error: type[Exception]) -> None:
    api.fail_next("getUpdates", status)

    async def scenario() -> None:
        async with api.bot() as bot:
            with pytest.raises(error):
                await bot.get_updates()
            assert await bot.get_updates() == ()

    asyncio.run(scenario())
    [failed, _] = api.requests("getUpdates")
    assert failed.response["error_code"] == status and failed.response["description"]


def test_raw_updates_are_delivered_verbatim(api: FakeBotApi) -> None:
    malformed = [{"message": {"message_id": 1, "text": "no chat, no date"}}, {"update_id": 5, "callback_query": None}]
    for update in malformed:
        api.push_raw_update(update)
    later = api.send_text(12, "later")

    async def scenario() -> Any:
        async with api.bot() as bot:
            delivered = await bot.do_api_request("getUpdates")
            await bot.do_api_request("getUpdates", api_kwargs={"offset": later["update_id"] + 1})
            return delivered

    assert asyncio.run(scenario())[:2] == malformed
    assert not api.pending_updates()  # confirming a later update confirms them too


def test_outage_drops_connections_then_service_resumes(api: FakeBotApi) -> None:
    file_id, _, _ = api.add_file(b"abc", "documents/a.txt")

    async def scenario() -> None:
        async with api.bot() as bot:
            file = await bot.get_file(file_id)
            poll = asyncio.create_task(bot.get_updates(timeout=10))
            await api.wait_for_poller_async()
            api.outage(0.5)
            assert api.outage_active
            with pytest.raises(NetworkError):
                await poll  # the pending long-poll is cut
            for call in (bot.get_me(), file.download_as_bytearray()):
                with pytest.raises(NetworkError):
                    await call
            await asyncio.sleep(0.6)
            assert not api.outage_active and (await bot.get_me()).is_bot
            assert await file.download_as_bytearray() == b"abc"

    asyncio.run(scenario())
    assert [r.status for r in api.requests()][-5:] == [0, 0, 0, 200, 200]


def test_served_file_path_is_answered_verbatim(api: FakeBotApi, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("local file")
    file_id, _, _ = api.add_file(b"remote", "photos/p.jpg")
    api.serve_file_path(file_id, str(secret))

    async def scenario() -> str | None:
        async with api.bot() as bot:
            return (await bot.get_file(file_id)).file_path

    assert asyncio.run(scenario()) == str(secret)  # PTB keeps an existing local path and would read that file


def test_webhook_deliveries_raw_and_parsed(api: FakeBotApi) -> None:
    received: list[tuple[bytes, str | None]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers.get("X-Telegram-Bot-Api-Secret-Token")))
            self.send_response(200 if isinstance(json.loads(body), dict) else 400)
            self.end_headers()

        def log_message(self, *args: Any) -> None: ...

    with ThreadingHTTPServer(("127.0.0.1", 0), Hook) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        assert api.deliver_webhook_raw(url, b"null", "s") == 400
        assert asyncio.run(api.deliver_webhook_raw_async(url, b"[]", None)) == 400
        update = api.send_text(13, "/help")
        assert api.deliver_webhook(url, update, "s") == 200
        server.shutdown()
    assert received[:2] == [(b"null", "s"), (b"[]", None)] and json.loads(received[2][0]) == update
    assert not api.pending_updates()
