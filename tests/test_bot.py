"""The bot end to end: real PTB Application, real worker processes, real faces, fake Bot API over loopback HTTP."""

from __future__ import annotations

import io
import shutil
import sqlite3
import time

import pytest
from PIL import Image

from lookalike.assets import ThumbnailWriter
from lookalike.engine import render
from lookalike.telegram.texts import TEXTS
from testkit.captions import matched
from testkit.data import BuiltCatalog
from testkit.fake_bot_api import FakeBotApi
from testkit.images import encode
from testkit.running import bot_settings, polling_bot, running_bot

EN, RU = TEXTS["en"], TEXTS["ru"]


@pytest.fixture(scope="module")
def bot(api: FakeBotApi, catalog: BuiltCatalog, tmp_path_factory: pytest.TempPathFactory):
    with polling_bot(api, catalog.assets, tmp_path_factory.mktemp("bot"), admin_ids="999") as running:
        yield running


_users = iter(range(1000, 100000))


@pytest.fixture()
def user() -> int:
    """A fresh private chat per test, so tests never see each other's messages."""
    return next(_users)


def test_selfie_gets_a_card_naming_the_person(api: FakeBotApi, bot, user: int, catalog: BuiltCatalog) -> None:
    api.send_photo(user, catalog.queries["obama"][1].read_bytes())
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    name, similarity, band = matched(card.message["caption"])
    assert (name, band) == ("Barack Obama", "look_striking") and similarity >= 90
    assert "https://en.wikipedia.org/wiki/obama" in str(card.message.get("caption_entities"))
    image = Image.open(io.BytesIO(card.upload().data))
    assert image.format == "JPEG" and image.size == (render.CARD_W, render.CARD_H)
    assert [b["text"] for b in card.buttons] == ["More matches", "🎭 Blend", "👍", "👎"]
    actions = api.requests("sendChatAction", chat_id=user)
    assert actions and actions[0].params["action"] == "upload_photo" and actions[0].at < card.at


def test_image_sent_as_a_file_is_matched(api: FakeBotApi, bot, user: int, catalog: BuiltCatalog) -> None:
    data = encode(Image.open(catalog.queries["madonna"][0]).convert("RGBA"), "PNG")
    api.send_document(user, data, file_name="me.png", mime_type="image/png")
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    assert matched(card.message["caption"])[0] == "Madonna"


def test_image_file_with_generic_mime_type_is_matched(api: FakeBotApi, bot, user: int, catalog) -> None:
    api.send_document(user, catalog.queries["tony_blair"][0].read_bytes(), "IMG_0001.JPG", "application/octet-stream")
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    assert "Tony Blair" in card.message["caption"]


def test_more_matches_lists_the_next_four(api: FakeBotApi, bot, user: int, catalog: BuiltCatalog) -> None:
    api.send_photo(user, catalog.queries["george_w_bush"][0].read_bytes())
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    api.press_button(user, card.message["message_id"], text="More matches")
    [edit] = api.wait_for(lambda r: r.method == "editMessageCaption" and r.chat_id == user, timeout=10)
    lines = edit.message["caption"].split("\n")
    assert matched(lines[0])[0] == "George W Bush"
    more = lines[lines.index(EN["more_header"]) + 1 :]
    assert [line.split(".")[0] for line in more] == ["2", "3", "4", "5"]
    assert all(line.endswith("%") for line in more)
    assert "George W Bush" not in " ".join(more)
    assert [b["text"] for b in edit.buttons] == ["🎭 Blend", "👍", "👎"]
    [answer] = api.requests("answerCallbackQuery")[-1:]
    assert answer.ok


def test_blend_sends_an_animation_of_the_user_becoming_the_match(
    api: FakeBotApi, bot, user: int, catalog: BuiltCatalog
) -> None:
    api.send_photo(user, catalog.queries["madonna"][1].read_bytes())
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    api.press_button(user, card.message["message_id"], text="🎭 Blend")
    [animation] = api.wait_for_sent(chat_id=user, method="sendAnimation", timeout=60)
    assert animation.message["caption"] == "You → Madonna"
    assert animation.message["reply_to_message"]["message_id"] == card.message["message_id"]
    video = animation.upload().data
    assert 10_000 < len(video) < 1_000_000 and video[4:8] == b"ftyp"  # an MP4 under Telegram's 1 MB promise
    actions = [r.params["action"] for r in api.requests("sendChatAction", chat_id=user)]
    assert "upload_video" in actions

    api.press_button(user + 1000, card.message["message_id"], text="🎭 Blend", check=False)  # someone else's card
    api.wait_for(lambda r: r.method == "answerCallbackQuery" and r.params.get("text") == EN["not_yours"], timeout=10)
    assert len(api.sent(chat_id=user, method="sendAnimation")) == 1


def test_blend_without_landmarks_says_whose_face(user: int, catalog: BuiltCatalog, tmp_path) -> None:
    """The match's thumbnail replaced by a blank square: no 68 landmarks to hold on to, and the user is told."""
    assets = tmp_path / "assets"
    shutil.copytree(catalog.assets, assets)
    with ThumbnailWriter(assets) as thumbs:
        blank = encode(Image.new("RGB", (320, 320), (128, 128, 128)))
        thumbs.put_many((sha, blank) for sha in thumbs.keys())
    with FakeBotApi() as api, running_bot(bot_settings(api, assets, tmp_path, workers=1)):
        api.wait_for_poller(timeout=60)
        api.send_photo(user, catalog.queries["madonna"][1].read_bytes())
        [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
        api.press_button(user, card.message["message_id"], text="🎭 Blend")
        [answer] = api.wait_for_sent(chat_id=user, method="sendMessage", timeout=60)
    assert answer.message["text"] == EN["no_landmarks"].format(whose=EN["celebrity_face"])


def test_votes_are_stored_without_the_photo(api: FakeBotApi, bot, user: int, catalog: BuiltCatalog) -> None:
    api.send_photo(user, catalog.queries["vladimir_putin"][0].read_bytes())
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    api.press_button(user, card.message["message_id"], text="👍")
    api.wait_for(lambda r: r.method == "answerCallbackQuery" and r.params.get("text") == EN["thanks"], timeout=10)
    with sqlite3.connect(bot.settings.feedback_db) as db:
        rows = db.execute("SELECT person, similarity, vote FROM votes WHERE user_id = ?", (user,)).fetchall()
    assert len(rows) == 1 and rows[0][0] == "vladimir_putin" and rows[0][1] > 50 and rows[0][2] == 1
    columns = {row[1] for table in ("votes", "outcomes") for row in db.execute(f"PRAGMA table_info({table})")}
    assert not any("photo" in c or "image" in c for c in columns)
    outcomes = {row[1] for row in db.execute("PRAGMA table_info(outcomes)")}
    assert "person" in outcomes and "user_id" not in outcomes  # whose match it was is not kept


@pytest.mark.parametrize(
    ("send", "key"),
    [
        pytest.param(lambda api, u: api.send_text(u, "hello"), "help", id="text"),
        pytest.param(lambda api, u: api.send_text(u, "/start"), "help", id="start"),
        pytest.param(lambda api, u: api.send_text(u, "/help"), "help", id="help"),
        pytest.param(lambda api, u: api.send_text(u, "/nosuchcommand"), "help", id="unknown-command"),
        pytest.param(lambda api, u: api.send_sticker(u), "sticker", id="sticker"),
        pytest.param(
            lambda api, u: api.send_document(u, b"%PDF-1.4 fake", "cv.pdf", "application/pdf"), "not_a_photo", id="pdf"
        ),
        pytest.param(lambda api, u: api.send_video(u), "video", id="video"),
        pytest.param(lambda api, u: api.send_animation(u), "video", id="gif"),
        pytest.param(lambda api, u: api.send_text(u, "/lookalike"), "reply_to_photo", id="lookalike-alone"),
    ],
)
def test_everything_else_gets_a_short_explanation(api: FakeBotApi, bot, user: int, send, key: str) -> None:
    send(api, user)
    [answer] = api.wait_for_sent(chat_id=user, timeout=10)
    assert answer.method == "sendMessage"
    assert answer.message["text"] == EN[key].replace("<b>", "").replace("</b>", "")


def test_photo_without_a_face_is_explained(api: FakeBotApi, bot, user: int) -> None:
    api.send_photo(user, encode(Image.radial_gradient("L").resize((640, 480)).convert("RGB")))
    [answer] = api.wait_for_sent(chat_id=user, timeout=30)
    assert answer.message["text"] == EN["no_face"]


def test_broken_image_file_is_explained(api: FakeBotApi, bot, user: int, catalog: BuiltCatalog) -> None:
    api.send_document(user, catalog.queries["obama"][0].read_bytes()[:3000], "cut.jpg", "image/jpeg")
    [answer] = api.wait_for_sent(chat_id=user, timeout=30)
    assert answer.message["text"] == EN["not_an_image"]


def test_file_over_20_mb_is_explained(api: FakeBotApi, bot, user: int, catalog: BuiltCatalog) -> None:
    api.send_document(user, catalog.queries["obama"][0].read_bytes(), "huge.jpg", "image/jpeg", file_size=25 << 20)
    [answer] = api.wait_for_sent(chat_id=user, timeout=10)
    assert answer.message["text"] == EN["file_too_big"]
    assert not api.requests("getFile", chat_id=user)


def test_edited_messages_are_not_answered_again(api: FakeBotApi, bot, user: int) -> None:
    message = api.send_text(user, "/help")["message"]
    api.wait_for_sent(chat_id=user, timeout=10)
    api.push_update({"edited_message": {**message, "edit_date": message["date"] + 5, "text": "/start"}})
    api.send_text(user, "hello")  # the bot is past the edit once this is answered
    api.wait_for_sent(chat_id=user, count=2, timeout=10)
    time.sleep(0.5)
    assert len(api.sent(chat_id=user)) == 2


def test_russian_user_gets_russian(api: FakeBotApi, bot, user: int, catalog: BuiltCatalog) -> None:
    api.send_text(user, "привет", language_code="ru")
    [answer] = api.wait_for_sent(chat_id=user, timeout=10)
    assert answer.message["text"].startswith("👋 Пришлите селфи")
    assert api.commands(language_code="ru")[0]["description"] == RU["cmd_start"]
    assert [c["command"] for c in api.commands()] == ["start", "help", "lookalike", "settings"]


def test_buttons_of_others_stale_and_forged_are_answered(api: FakeBotApi, bot, user: int, catalog) -> None:
    api.send_photo(user, catalog.queries["jacques_chirac"][0].read_bytes())
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    message_id = card.message["message_id"]
    more = card.buttons[0]["callback_data"]
    stranger = next(_users)
    presses = [
        (stranger, more, EN["not_yours"]),
        (user, "m:AAAAAAAA:0", EN["expired"]),
        (user, more[:-1] + "7", EN["expired"]),
        (user, "v:" + more[2:] + ":x", EN["invalid_button"]),
        (user, "<script>" * 4, EN["invalid_button"]),
    ]
    since = time.monotonic()
    for who, data, _ in presses:
        api.press_button(who, message_id, data, check=False)
    answers = api.wait_for(lambda r: r.method == "answerCallbackQuery" and r.at > since, timeout=10, count=len(presses))
    assert sorted(a.params.get("text") for a in answers) == sorted(expected for _, _, expected in presses)
    assert api.message(message_id)["caption"] == card.message["caption"]  # nothing leaked into the card
    assert not api.sent(chat_id=stranger)


def test_group_photo_needs_a_mention_a_reply_or_lookalike(api: FakeBotApi, bot, catalog: BuiltCatalog) -> None:
    group, member = -100_000_000_001, next(_users)
    photo = catalog.queries["hugo_chavez"][0].read_bytes()
    plain = api.send_photo(member, photo, chat_id=group, chat_type="supergroup")["message"]
    mention = api.send_photo(
        member, photo, caption=f"who is this @{api.bot_user['username']}?", chat_id=group, chat_type="supergroup"
    )["message"]
    [first] = api.wait_for_sent(chat_id=group, method="sendPhoto", timeout=30)
    assert "Hugo Chavez" in first.message["caption"]
    to_bot = api.send_photo(member, photo, chat_id=group, chat_type="supergroup", reply_to=first.message["message_id"])[
        "message"
    ]
    command = api.send_text(member, "/lookalike", chat_id=group, chat_type="supergroup", reply_to=plain["message_id"])[
        "message"
    ]
    cards = api.wait_for_sent(chat_id=group, method="sendPhoto", count=3, timeout=30)
    assert all("Hugo Chavez" in c.message["caption"] for c in cards)
    answered = {c.message["reply_to_message"]["message_id"] for c in cards}
    assert answered == {mention["message_id"], to_bot["message_id"], command["message_id"]}
    time.sleep(1.5)  # nothing else may arrive: the un-addressed photo stays unanswered
    assert len(api.sent(chat_id=group, method="sendPhoto")) == 3
    assert not api.sent(chat_id=group, method="sendMessage")


def test_several_faces_get_numbered_boxes_and_a_card_each(api: FakeBotApi, bot, user: int, catalog) -> None:
    people = ["colin_powell", "donald_rumsfeld", "gerhard_schroeder"]
    group = Image.new("RGB", (750, 250))
    for n, person in enumerate(people):
        group.paste(Image.open(catalog.queries[person][0]).convert("RGB").resize((250, 250)), (250 * n, 0))
    api.send_photo(user, encode(group))
    [numbered] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    lines = numbered.message["caption"].split("\n")
    assert lines[0] == EN["faces_header"].format(count=3)
    named = " ".join(lines[1:4])
    assert all(p.replace("_", " ").title() in named for p in people)
    assert [b["text"] for b in numbered.buttons] == ["1", "2", "3"]
    api.press_button(user, numbered.message["message_id"], text="2")
    cards = api.wait_for_sent(chat_id=user, method="sendPhoto", count=2, timeout=30)
    name_of_2 = lines[2].split(". ", 1)[1].rsplit(" — ", 1)[0]
    assert matched(cards[1].message["caption"])[0] == name_of_2


def test_injected_429_is_retried_after_retry_after(api: FakeBotApi, bot, user: int, catalog) -> None:
    api.fail_next("sendPhoto", status=429, retry_after=2, chat_id=user)
    api.send_photo(user, catalog.queries["arnold_schwarzenegger"][0].read_bytes())
    [card] = api.wait_for_sent(chat_id=user, method="sendPhoto", timeout=30)
    [refused] = [r for r in api.requests("sendPhoto", chat_id=user) if r.status == 429]
    assert card.at - refused.at >= 2.0
    assert "Arnold Schwarzenegger" in card.message["caption"]


def test_two_users_at_once_are_both_answered(api: FakeBotApi, bot, catalog: BuiltCatalog) -> None:
    first, second = next(_users), next(_users)
    api.send_photo(first, catalog.queries["elton_john"][0].read_bytes())
    api.send_photo(second, catalog.queries["ariel_sharon"][0].read_bytes())
    api.send_text(second, "/help")
    [one] = api.wait_for_sent(chat_id=first, method="sendPhoto", timeout=30)
    replies = api.wait_for_sent(chat_id=second, count=2, timeout=30)
    assert "Elton John" in one.message["caption"]
    assert "Ariel Sharon" in next(r for r in replies if r.method == "sendPhoto").message["caption"]
    help_reply = next(r for r in replies if r.method == "sendMessage")
    assert help_reply.at < next(r for r in replies if r.method == "sendPhoto").at  # /help did not wait


def test_admin_stats(api: FakeBotApi, bot, user: int) -> None:
    api.send_text(user, "/stats")
    [denied] = api.wait_for_sent(chat_id=user, timeout=10)
    assert denied.message["text"] == EN["admins_only"]
    api.send_text(999, "/stats")
    [stats] = api.wait_for_sent(chat_id=999, timeout=10)
    text = stats.message["text"]
    assert "Requests:" in text and "matched" in text and "Top matches:" in text and "p95" in text
