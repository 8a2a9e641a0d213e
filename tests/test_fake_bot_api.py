"""The fake Bot API server speaks Telegram well enough for a real python-telegram-bot Bot/Application.

Every test drives the fake through PTB (or raw httpx) over loopback HTTP, so a green run proves the
request decoding, the JSON shapes PTB de-serialises and the fault injection the bot's tests rely on.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import Awaitable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fake_bot_api import (
    DEFAULT_GROUP_ID,
    MAX_DOWNLOAD_SIZE,
    FakeBotApi,
    WaitTimeout,
    detect_entities,
    make_image,
    utf16_len,
)
from PIL import Image
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto, Update
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import AIORateLimiter, CommandHandler, ContextTypes, MessageHandler, filters

T = TypeVar("T")

# PTB 22.2+ warns on every int-valued duration/retry_after (even inside its own error handling).
pytestmark = pytest.mark.filterwarnings("ignore:.*datetime.timedelta:telegram.warnings.PTBDeprecationWarning")


def run(coro: Awaitable[T]) -> T:
    """These tests are plain sync tests (no pytest-asyncio): one event loop per scenario."""
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    """Same as the module's ``fake_bot_api`` fixture (which a conftest can re-export)."""
    with FakeBotApi() as server:
        yield server
        server.assert_no_internal_errors()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(d.upper(), callback_data=d) for d in data]])


def retry_after_seconds(exc: RetryAfter) -> float:
    value: Any = exc.retry_after  # an int today, a timedelta with PTB_TIMEDELTA=1 or in PTB 23
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# ------------------------------------------------------------------------------------------ basics


def test_get_me_wrong_token_and_unknown_method(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            me = await bot.get_me()
            assert (me.id, me.username, me.is_bot) == (api.bot_id, "lookalike_test_bot", True)
            with pytest.raises(EndPointNotFound):
                await bot.do_api_request("noSuchMethod")
        with pytest.raises(InvalidToken, match="rejected by the server"):
            async with Bot("999:WRONG", base_url=api.base_url, base_file_url=api.base_file_url):
                pass

    run(scenario())
    assert [r.status for r in api.requests("noSuchMethod")] == [404]
    assert api.requests("noSuchMethod")[0].response == {"ok": False, "error_code": 404, "description": "Not Found"}


def test_get_post_json_form_and_case_insensitive_methods(api: FakeBotApi) -> None:
    url = f"http://127.0.0.1:{api.port}/bot{api.token}"
    with httpx.Client(trust_env=False) as client:
        assert client.get(f"{url}/GETME").json()["result"]["id"] == api.bot_id
        assert client.get(f"{url}/sendmessage", params={"chat_id": "5", "text": "true"}).json()["ok"]
        assert client.post(f"{url}/sendMessage", data={"chat_id": "5", "text": "123"}).json()["ok"]
        assert client.post(f"{url}/sendMessage", json={"chat_id": "5", "text": "007"}).json()["ok"]
        wrong = client.post(f"http://127.0.0.1:{api.port}/bot1:nope/getMe")
        assert wrong.status_code == 401
        assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    sent = api.sent(chat_id=5)
    assert [(r.method, r.chat_id, r.text, r.http_method) for r in sent] == [
        ("sendMessage", 5, "true", "GET"),  # text stays a string although it looks like JSON
        ("sendMessage", 5, "123", "POST"),
        ("sendMessage", 5, "007", "POST"),
    ]


def test_send_message_records_and_parses_html(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            message = await bot.send_message(
                42, "<b>Привет</b>, <i>мир</i> 😀 &lt;3", parse_mode="HTML", reply_markup=keyboard("more")
            )
            assert message.text == "Привет, мир 😀 <3"
            assert message.parse_entities() == {message.entities[0]: "Привет", message.entities[1]: "мир"}
            assert message.chat.id == 42 and message.from_user.id == api.bot_id
            assert message.reply_markup == keyboard("more")

    run(scenario())
    [record] = api.wait_for_sent(chat_id=42)
    assert record.text == "<b>Привет</b>, <i>мир</i> 😀 &lt;3"  # raw, as the bot sent it
    assert record.params["parse_mode"] == "HTML"
    assert record.buttons == [{"text": "MORE", "callback_data": "more"}]
    assert record.message is not None and record.message["text"] == "Привет, мир 😀 <3"
    assert api.last_sent(42) == record


@pytest.mark.parametrize(
    ("text", "parse_mode", "error"),
    [
        ("line<br>break", "HTML", 'unsupported start tag "br"'),
        ("<b>unclosed", "HTML", "can't find end tag"),
        ("5 < 6", "HTML", "unsupported start tag"),
        ("Похожесть 87.5%", "MarkdownV2", "character '.' is reserved"),
        ("*bold", "MarkdownV2", "can't find end of bold entity"),
        ("", None, "Message text is empty"),
        ("x" * 4097, None, "Message is too long"),
    ],
)
def test_malformed_messages_are_rejected_like_telegram(
    api: FakeBotApi, text: str, parse_mode: str | None, error: str
) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            with pytest.raises(BadRequest, match=f"(?i){error}"):  # PTB capitalize()s descriptions
                await bot.send_message(1, text, parse_mode=parse_mode)

    run(scenario())
    assert api.sent() == []


def test_markdown_v2_and_long_callback_data(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            message = await bot.send_message(
                1, r"*Том Хэнкс* — 87\.5% [вики](https://example.org/a_\(b\))", parse_mode="MarkdownV2"
            )
            assert message.text == "Том Хэнкс — 87.5% вики"
            assert [(e.type, e.offset, e.length, e.url) for e in message.entities] == [
                ("bold", 0, 9, None),
                ("text_link", 18, 4, "https://example.org/a_(b)"),
            ]
            with pytest.raises(BadRequest, match="Button_data_invalid"):
                await bot.send_message(1, "x", reply_markup=keyboard("y" * 65))

    run(scenario())


def test_user_text_entities_use_utf16_offsets(api: FakeBotApi) -> None:
    text = "😀 /start@lookalike_test_bot привет @some_user https://t.me/x"
    assert [e["type"] for e in detect_entities(text)] == ["bot_command", "mention", "url"]
    api.send_text(7, text, language_code="ru")

    async def scenario() -> None:
        async with api.bot() as bot:
            [update] = await bot.get_updates()
            message = update.message
            assert message.from_user.language_code == "ru"
            assert list(message.parse_entities().values()) == [
                "/start@lookalike_test_bot",
                "@some_user",
                "https://t.me/x",
            ]
            assert message.entities[0].offset == utf16_len("😀 ") == 3

    run(scenario())


# ------------------------------------------------------------------------------------------ files


def test_send_photo_upload_then_get_file_and_download(api: FakeBotApi) -> None:
    image = make_image(1000, 750)

    async def scenario() -> None:
        async with api.bot() as bot:
            message = await bot.send_photo(
                77, image, caption="<b>Вы</b> похожи", parse_mode="HTML", reply_markup=keyboard("again")
            )
            assert message.caption == "Вы похожи" and message.caption_entities[0].type == "bold"
            assert [p.width for p in message.photo] == [90, 320, 800, 1000]
            file = await bot.get_file(message.photo[-1].file_id)
            assert file.file_size == len(image)
            assert bytes(await file.download_as_bytearray()) == image
            # re-sending by file_id uploads nothing and reuses the same sizes
            again = await bot.send_photo(77, message.photo[-1].file_id)
            assert again.photo == message.photo

    run(scenario())
    first, second = api.wait_for_sent(chat_id=77, count=2)
    upload = first.upload("photo")
    assert upload is not None and upload.data == image  # PTB names raw bytes "application.octet-stream"
    assert first.text == "<b>Вы</b> похожи"
    assert first.reply_markup == {"inline_keyboard": [[{"text": "AGAIN", "callback_data": "again"}]]}
    assert second.files == {}
    assert api.media_bytes(second.message or {}) == image
    assert [r.method for r in api.requests("download")] == ["download"]


def test_injected_photo_has_telegram_like_sizes(api: FakeBotApi) -> None:
    image = make_image(1600, 1200)
    update = api.send_photo(7, image, caption="кто я?")
    sizes = update["message"]["photo"]
    assert [(s["width"], s["height"]) for s in sizes] == [(90, 68), (320, 240), (800, 600), (1600, 1200)]
    assert [s["file_size"] for s in sizes] == sorted(s["file_size"] for s in sizes)
    assert api.file_bytes(sizes[-1]["file_id"]) == image
    for size in sizes[:-1]:
        with Image.open(io.BytesIO(api.file_bytes(size["file_id"]))) as thumb:
            assert thumb.size == (size["width"], size["height"])

    async def scenario() -> None:
        async with api.bot() as bot:
            [received] = await bot.get_updates()
            message = received.message
            assert message.caption == "кто я?"
            largest = await (await message.photo[-1].get_file()).download_as_bytearray()
            smallest = await (await message.photo[0].get_file()).download_as_bytearray()
            assert bytes(largest) == image
            assert len(smallest) < len(image)  # a bot picking photo[0] analyses a 90px thumbnail

    run(scenario())


def test_other_media_and_media_group(api: FakeBotApi) -> None:
    payload = b"binary\r\n--boundary-lookalike\r\n\x00\xff" * 100  # multipart delimiters inside the data
    api.send_document(3, payload, "face.png")
    api.send_sticker(3)
    api.send_video(3, caption="clip")
    api.send_animation(3)

    async def scenario() -> None:
        async with api.bot() as bot:
            document, sticker, video, animation = (u.message for u in await bot.get_updates())
            assert document.document.file_name == "face.png" and document.document.mime_type == "image/png"
            assert bytes(await (await document.document.get_file()).download_as_bytearray()) == payload
            assert sticker.sticker.emoji == "😀" and sticker.sticker.width == 512
            assert video.video.duration == 3 or video.video.duration == timedelta(seconds=3)
            assert animation.animation is not None and animation.document is not None
            sent = await bot.send_document(3, payload, filename="report.bin", caption="готово")
            assert sent.document.file_name == "report.bin"
            album = await bot.send_media_group(
                3, [InputMediaPhoto(make_image(200, 100)), InputMediaPhoto(make_image(100, 200))]
            )
            assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id
            assert await bot.send_chat_action(3, "upload_photo")

    run(scenario())
    document_request = api.sent(3, method="sendDocument")[0]
    assert document_request.upload("document") is not None
    assert document_request.upload("document").data == payload  # type: ignore[union-attr]
    assert len(api.sent(3, method="sendMediaGroup")[0].messages) == 2
    assert api.rate_stats().total == 3  # the document + two album messages; chat actions don't count


def test_get_file_refuses_files_over_20_mb(api: FakeBotApi) -> None:
    update = api.send_photo(7, make_image(400, 300), file_size=25 * 1024 * 1024)
    file_id = update["message"]["photo"][-1]["file_id"]
    small_id, _, small_size = api.add_file(b"x" * 10, "documents/a.txt")
    big_id, _, big_size = api.add_file(b"y", "photos/big.jpg", file_size=MAX_DOWNLOAD_SIZE + 1)
    assert (small_size, big_size) == (10, MAX_DOWNLOAD_SIZE + 1)

    async def scenario() -> None:
        async with api.bot() as bot:
            with pytest.raises(BadRequest, match="File is too big"):
                await bot.get_file(file_id)
            with pytest.raises(BadRequest, match="File is too big"):
                await bot.get_file(big_id)
            assert bytes(await (await bot.get_file(small_id)).download_as_bytearray()) == b"x" * 10
            with pytest.raises(BadRequest, match="Invalid file_id"):
                await bot.get_file("nonsense")

    run(scenario())


# ------------------------------------------------------------------------------------ getUpdates


def test_get_updates_offset_and_limit(api: FakeBotApi) -> None:
    ids = [api.send_text(1, f"m{i}")["update_id"] for i in range(3)]

    async def scenario() -> None:
        async with api.bot() as bot:
            assert [u.update_id for u in await bot.get_updates(limit=2)] == ids[:2]
            assert [u.update_id for u in await bot.get_updates()] == ids  # not confirmed yet
            assert [u.update_id for u in await bot.get_updates(offset=ids[1])] == ids[1:]
            assert [u.message.text for u in await bot.get_updates(offset=ids[1])] == ["m1", "m2"]
            assert await bot.get_updates(offset=ids[2] + 1) == ()
            assert api.pending_updates() == []
            api.send_text(1, "late")
            assert [u.message.text for u in await bot.get_updates(offset=ids[2] + 1)] == ["late"]

    run(scenario())


def test_long_poll_returns_as_soon_as_an_update_arrives(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            started = time.monotonic()
            poll = asyncio.create_task(bot.get_updates(timeout=10))
            await api.wait_for_poller_async()
            api.send_text(5, "/start")
            [update] = await poll
            assert update.message.text == "/start"
            assert time.monotonic() - started < 5

    run(scenario())


def test_long_poll_times_out_empty(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            started = time.monotonic()
            assert await bot.get_updates(timeout=1) == ()
            assert 0.9 <= time.monotonic() - started < 5

    run(scenario())


# ---------------------------------------------------------------------------------------- faults


def test_429_raises_retry_after(api: FakeBotApi) -> None:
    api.fail_next("sendMessage", 429, retry_after=2)

    async def scenario() -> None:
        async with api.bot() as bot:
            with pytest.raises(RetryAfter) as caught:
                await bot.send_message(1, "hi")
            assert retry_after_seconds(caught.value) == 2
            await bot.send_message(1, "hi again")

    run(scenario())
    first, second = api.requests("sendMessage")
    assert first.response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 2",
        "parameters": {"retry_after": 2},
    }
    assert first.injected and not second.injected
    assert [r.text for r in api.sent(1)] == ["hi again"]


def test_aio_rate_limiter_retries_through_an_injected_429(api: FakeBotApi) -> None:
    api.fail_next("sendMessage", 429, retry_after=1)

    async def scenario() -> None:
        app = api.application_builder().rate_limiter(AIORateLimiter(max_retries=2)).build()
        async with app:
            message = await app.bot.send_message(8, "дошло")
            assert message.text == "дошло"

    run(scenario())
    failed, succeeded = api.requests("sendMessage")
    assert (failed.status, succeeded.status) == (429, 200)
    assert succeeded.at - failed.at >= 1.0  # the limiter honoured retry_after
    assert [r.text for r in api.sent(8)] == ["дошло"]


def test_forbidden_bad_gateway_and_hang(api: FakeBotApi) -> None:
    api.fail_next("sendMessage", 403)
    api.fail_next("sendMessage", 502)
    api.fail_next("sendMessage", 502, body=b"<html><body>502 Bad Gateway</body></html>")
    api.hang_next("sendMessage", 1.0)

    async def scenario() -> None:
        async with api.bot() as bot:
            with pytest.raises(Forbidden, match="bot was blocked by the user"):
                await bot.send_message(1, "a")
            with pytest.raises(NetworkError, match="Bad Gateway"):
                await bot.send_message(1, "b")
            with pytest.raises(NetworkError):
                await bot.send_message(1, "c")
            with pytest.raises(TimedOut):
                await bot.send_message(1, "d", read_timeout=0.2)
            # like Telegram, the message arrives although the client gave up
            [delivered] = await api.wait_for_sent_async(chat_id=1)
            assert delivered.text == "d"
            api.block_user(2)
            with pytest.raises(Forbidden):
                await bot.send_message(2, "e")
            api.unblock_user(2)
            await bot.send_message(2, "f")

    run(scenario())
    assert [r.status for r in api.requests("sendMessage", chat_id=1)] == [403, 502, 502, 200]


def test_fault_for_one_chat_and_download_faults(api: FakeBotApi) -> None:
    api.fail_next("*", 403, chat_id=10)
    update = api.send_photo(1, make_image(100, 100))
    api.fail_next("download", 500)

    async def scenario() -> None:
        async with api.bot() as bot:
            await bot.send_message(11, "other chat unaffected")
            with pytest.raises(Forbidden):
                await bot.send_photo(10, make_image(50, 50))
            file = await bot.get_file(update["message"]["photo"][-1]["file_id"])
            with pytest.raises(NetworkError):
                await file.download_as_bytearray()
            assert len(await file.download_as_bytearray()) > 0

    run(scenario())


# ------------------------------------------------------------------------------ buttons and edits


def test_button_press_answer_and_edits(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            message = await bot.send_message(9, "Выберите", reply_markup=keyboard("a", "b"))
            api.press_button(9, message.message_id, "b")
            [update] = await bot.get_updates()
            query = update.callback_query
            assert (query.data, query.from_user.id, query.message.message_id) == ("b", 9, message.message_id)
            assert await bot.answer_callback_query(query.id, text="ok")
            with pytest.raises(BadRequest, match=r"(?i)query is too old"):
                await bot.answer_callback_query(query.id)
            edited = await bot.edit_message_text("Выбрано: B", chat_id=9, message_id=message.message_id)
            assert edited.text == "Выбрано: B" and edited.reply_markup is None  # no markup = keyboard removed
            assert edited.edit_date is not None
            with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
                await bot.edit_message_text("Выбрано: B", chat_id=9, message_id=message.message_id)
            with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
                await bot.edit_message_text("x", chat_id=9, message_id=10_000)
            await bot.edit_message_reply_markup(chat_id=9, message_id=message.message_id, reply_markup=keyboard("c"))
            photo = await bot.send_photo(9, make_image(300, 200), caption="до")
            recaptioned = await bot.edit_message_caption(chat_id=9, message_id=photo.message_id, caption="после")
            assert recaptioned.caption == "после"
            replaced = await bot.edit_message_media(
                InputMediaPhoto(make_image(64, 64), caption="новое"), chat_id=9, message_id=photo.message_id
            )
            assert replaced.photo[-1].width == 64 and replaced.caption == "новое"
            assert await bot.delete_message(9, photo.message_id)

    run(scenario())
    stored = api.message(api.sent(9)[0].message["message_id"])  # type: ignore[index]
    assert stored["text"] == "Выбрано: B"
    with pytest.raises(ValueError, match="no button"):
        api.press_button(9, stored["message_id"], "a")  # the old keyboard is gone
    update = api.press_button(9, stored["message_id"], text="C")
    assert update["callback_query"]["data"] == "c"


def test_reply_to_message_round_trip(api: FakeBotApi) -> None:
    question = api.send_text(4, "вопрос")["message"]

    async def scenario() -> None:
        async with api.bot() as bot:
            [update] = await bot.get_updates()
            answer = await update.message.reply_text("ответ", do_quote=True)
            assert answer.reply_to_message is not None
            assert answer.reply_to_message.message_id == question["message_id"]

    run(scenario())
    follow_up = api.send_text(4, "спасибо", reply_to=api.sent(4)[0].message["message_id"])  # type: ignore[index]
    assert follow_up["message"]["reply_to_message"]["text"] == "ответ"


def test_group_chat_messages_and_buttons(api: FakeBotApi) -> None:
    api.set_user(5, first_name="Ира", language_code="ru")
    api.send_text(5, "/who@lookalike_test_bot", chat_type="supergroup")
    api.send_text(6, "просто болтаем", chat_type="supergroup")

    async def scenario() -> None:
        async with api.bot() as bot:
            command, chatter = (u.message for u in await bot.get_updates())
            assert command.chat.type == "supergroup" and command.chat.id == DEFAULT_GROUP_ID
            assert command.from_user.language_code == "ru" and command.from_user.first_name == "Ира"
            assert chatter.from_user.id == 6 and chatter.entities == ()
            answer = await command.reply_text("Кто?", reply_markup=keyboard("x"))
            assert answer.chat.title == "Test group"

    run(scenario())
    [answer] = api.sent(DEFAULT_GROUP_ID)
    update = api.press_button(6, answer.message["message_id"], "x", chat_id=DEFAULT_GROUP_ID)  # type: ignore[index]
    assert update["callback_query"]["message"]["chat"]["id"] == DEFAULT_GROUP_ID
    assert update["callback_query"]["from"]["id"] == 6


# --------------------------------------------------------------------------------------- webhooks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_webhook_set_conflict_and_delivery_through_ptb(api: FakeBotApi) -> None:
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"

    async def scenario() -> None:
        app = api.application_builder().build()

        async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.message is not None
            await update.message.reply_text(f"echo: {update.message.text}")

        app.add_handler(MessageHandler(filters.TEXT, echo))
        async with app:
            await app.start()
            await app.updater.start_webhook(  # type: ignore[union-attr]
                listen="127.0.0.1", port=port, url_path="hook", webhook_url=hook, secret_token="s3cret"
            )
            try:
                assert api.webhook is not None
                assert (api.webhook.url, api.webhook.secret_token) == (hook, "s3cret")
                info = await app.bot.get_webhook_info()
                assert info.url == hook
                with pytest.raises(Conflict, match="webhook is active"):
                    await app.bot.get_updates()
                update = api.send_text(5, "привет")
                assert await api.deliver_webhook_async(update=update, secret_token="wrong") == 403
                assert await api.deliver_webhook_async(update=update, secret_token=None) == 403
                assert len(api.pending_updates()) == 1
                assert await api.deliver_webhook_async(update=update) == 200  # url and secret from setWebhook
                [reply] = await api.wait_for_sent_async(chat_id=5)
                assert reply.text == "echo: привет"
                assert api.pending_updates() == []
            finally:
                await app.updater.stop()  # type: ignore[union-attr]
                await app.stop()
            assert await app.bot.delete_webhook()
            assert api.webhook is None and await app.bot.get_updates() == ()

    run(scenario())


# ------------------------------------------------------------------------- a whole Application


def test_application_polling_end_to_end(api: FakeBotApi) -> None:
    image = make_image(1280, 960)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.effective_user is not None
        await update.message.reply_text(f"Привет, {update.effective_user.first_name}!")

    async def photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await context.bot.send_chat_action(update.message.chat_id, "typing")
        data = await (await update.message.photo[-1].get_file()).download_as_bytearray()
        await update.message.reply_photo(bytes(data), caption=f"{len(data)} bytes")

    async def scenario() -> None:
        app = api.application_builder().build()
        app.add_handler(CommandHandler("start", start))
        app.add_handler(MessageHandler(filters.PHOTO, photo))
        async with app:
            await app.start()
            await app.updater.start_polling(timeout=5)  # type: ignore[union-attr]
            try:
                api.set_user(42, first_name="Анна")
                api.send_text(42, "/start")
                [greeting] = await api.wait_for_sent_async(chat_id=42)
                assert greeting.text == "Привет, Анна!"
                api.send_photo(42, image)
                _, answer = await api.wait_for_sent_async(chat_id=42, count=2)
                assert answer.text == f"{len(image)} bytes"
                assert answer.upload("photo").data == image  # type: ignore[union-attr]
                await api.wait_until_consumed_async()
            finally:
                await app.updater.stop()  # type: ignore[union-attr]
                await app.stop()

    run(scenario())
    assert [r.params["file_id"] for r in api.requests("getFile")] != []
    assert api.requests("sendChatAction")[0].params["action"] == "typing"


# ------------------------------------------------------------------------ settings, stats, waits


def test_commands_and_webhook_housekeeping(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            assert await bot.set_my_commands([("start", "Начать"), ("help", "Помощь")], language_code="ru")
            assert [c.command for c in await bot.get_my_commands(language_code="ru")] == ["start", "help"]
            assert await bot.get_my_commands() == ()
            assert await bot.delete_my_commands(language_code="ru")
            assert await bot.get_my_commands(language_code="ru") == ()
            with pytest.raises(BadRequest):
                await bot.set_my_commands([("Bad Command", "x")])
            assert await bot.delete_webhook(drop_pending_updates=True)
            assert await bot.set_my_description("Кто вы из знаменитостей?")
            assert (await bot.get_my_description()).description == "Кто вы из знаменитостей?"

    api.send_text(1, "dropped")
    run(scenario())
    assert api.pending_updates() == []
    assert api.commands() == []


def test_rate_stats_and_enforced_rate_limit(api: FakeBotApi) -> None:
    async def scenario() -> None:
        async with api.bot() as bot:
            for i in range(5):
                await bot.send_message(1, f"a{i}")
            for i in range(3):
                await bot.send_message(2, f"b{i}")
            api.enforce_rate_limit(per_chat=2)
            await bot.send_message(3, "c0")
            await bot.send_message(3, "c1")
            with pytest.raises(RetryAfter):
                await bot.send_message(3, "c2")
            await bot.send_message(4, "d0")  # other chats are unaffected

    run(scenario())
    stats = api.rate_stats()
    assert stats.per_chat == {1: 5, 2: 3, 3: 2, 4: 1}
    assert stats.overall == stats.total == 11
    assert stats.max_per_chat == 5
    assert api.max_rate(chat_id=2) == 3
    assert api.max_rate(window=0.0) == 0


def test_wait_for_sent_times_out_with_context(api: FakeBotApi) -> None:
    api.fail_next("sendMessage", 403)

    async def scenario() -> None:
        async with api.bot() as bot:
            with pytest.raises(Forbidden):
                await bot.send_message(1, "nope")

    run(scenario())
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="sendMessage chat=1 -> 403"):
        api.wait_for_sent(chat_id=1, timeout=0.3)
    assert time.monotonic() - started < 2


def test_close_wakes_pending_long_poll() -> None:
    api = FakeBotApi().start()
    url = f"{api.base_url}{api.token}/getUpdates"

    async def scenario() -> float:
        async with httpx.AsyncClient(trust_env=False) as client:
            poll = asyncio.create_task(client.post(url, data={"timeout": "30"}, timeout=10))
            await api.wait_for_poller_async()
            started = time.monotonic()
            await asyncio.to_thread(api.close)
            try:
                assert (await poll).json()["result"] == []
            except httpx.HTTPError:
                pass  # the connection was dropped before the answer: just as good
            return time.monotonic() - started

    assert run(scenario()) < 5
    api.assert_no_internal_errors()
