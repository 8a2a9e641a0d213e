"""/settings end to end: "Match me with: women · men · anyone", remembered per user in the bot's SQLite file, in
private chats and in groups, through a restart and a broken store; and never a word about what the bot took anyone
for. Real faces, real workers, the fake Bot API over loopback HTTP."""

from __future__ import annotations

import html
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from lookalike.engine.matcher import MATCH_SEX_CHOICES
from lookalike.telegram import keyboards
from lookalike.telegram.texts import TEXTS
from testkit.data import BuiltCatalog, loaded_catalog
from testkit.fake_bot_api import FakeBotApi, Request
from testkit.running import bot_settings, polling_bot, running_bot

EN, RU = TEXTS["en"], TEXTS["ru"]
LABEL = {choice: EN[f"match_{choice}"] for choice in MATCH_SEX_CHOICES}
# The people of ../shared/faces who are women (checked by eye); everyone else there is a man.
WOMEN = {
    "amy", "angelina_jolie", "bernadette", "deepface_id_02", "deepface_id_08", "kate_siegel",
    "katy_perry", "madonna", "mindy_kaling", "penny", "rose_leslie", "scarlett_johansson",
}  # fmt: skip
# Words that would tell a user what the bot took them for. Only the fixed /settings and /help texts (which name
# the choices, not the user) and the button labels may hold them.
SEX_WORDS = re.compile(
    r"\b(fe)?males?\b|\bwom[ae]n\b|\bm[ae]n\b|\bgirls?\b|\bboys?\b|\bladys?\b|\bladies\b|\bguys?\b|\bsex\b|\bgender\b"
    r"|женщин|мужчин|девушк|парн|\bпол[аеу]?\b",
    re.IGNORECASE,
)
FIXED = {TEXTS[lang][key] for lang in TEXTS for key in ("settings", "help")}
LABELS = sorted((TEXTS[lang][f"match_{c}"] for lang in TEXTS for c in MATCH_SEX_CHOICES), key=len, reverse=True)

_users = iter(range(200_000, 300_000))


@pytest.fixture(scope="module")
def bot(api: FakeBotApi, catalog: BuiltCatalog, tmp_path_factory: pytest.TempPathFactory):
    with polling_bot(api, catalog.assets, tmp_path_factory.mktemp("bot")) as running:
        yield running
    assert_nothing_told_about_sex(api)


@pytest.fixture()
def user() -> int:
    return next(_users)


def plain(html: str) -> str:
    return re.sub(r"</?\w+>", "", html)


def said(request: Request) -> str | None:
    """What a user reads from one request of the bot: a message, a caption, a button notice."""
    return request.params.get("text", request.params.get("caption")) if request.ok else None


def assert_nothing_told_about_sex(api: FakeBotApi) -> None:
    """No message, caption, button or notice the bot sent says anything like "you look female"."""
    texts = [said(r) for r in api.requests()]
    texts += [b["text"] for r in api.requests() if r.ok for row in (r.reply_markup or {}).get("inline_keyboard", [])
              for b in row]  # fmt: skip
    assert any(texts)
    for sent in filter(None, texts):
        if sent in FIXED:
            continue
        for label in LABELS:
            sent = sent.replace(label, "")
        assert not SEX_WORDS.search(sent), sent


def labels(request: Request) -> list[str]:
    return [b["text"] for b in request.buttons]


def open_settings(api: FakeBotApi, user: int, chat: int | None = None, **origin: str) -> Request:
    """``user`` sends /settings (in ``chat``, a group, if given); the bot's answer."""
    where = {"chat_id": chat, "chat_type": "supergroup"} if chat else {}
    since = time.monotonic()
    api.send_text(user, "/settings", **where, **origin)
    [answer] = api.wait_for(lambda r: r.method == "sendMessage" and r.chat_id == (chat or user) and r.at > since, 10)
    return answer


def press(api: FakeBotApi, user: int, message_id: int, data: str, check: bool = True) -> str:
    """``user`` presses the button with ``data`` (``check``: one the message has); the notice the bot answers with."""
    query = api.press_button(user, message_id, data, check=check)["callback_query"]
    done = api.wait_for(
        lambda r: r.method == "answerCallbackQuery" and str(r.params.get("callback_query_id")) == query["id"], 10
    )
    return done[0].params.get("text", "")


def choose(api: FakeBotApi, user: int, message_id: int, choice: str) -> str:
    return press(api, user, message_id, f"{keyboards.MATCH_SEX}:{choice}")


def matched(api: FakeBotApi, catalog: BuiltCatalog, user: int, photo: Path, chat: int | None = None) -> list[str]:
    """``user`` sends ``photo`` (in ``chat``, a group, mentioning the bot); the five persons of its card, best
    first, read from the card and its "More matches"."""
    names = {p.name: p.id for p in loaded_catalog(catalog.assets).persons.values()}
    where = {"chat_id": chat, "chat_type": "supergroup"} if chat else {}
    caption = f"@{api.bot_user['username']}" if chat else None
    since = time.monotonic()
    api.send_photo(user, photo.read_bytes(), caption=caption, **where)
    [card] = api.wait_for(lambda r: r.method == "sendPhoto" and r.chat_id == (chat or user) and r.at > since, 30)
    api.press_button(user, card.message["message_id"], text=EN["more_button"])
    [edit] = api.wait_for(lambda r: r.method == "editMessageCaption" and r.at > since, 10)
    lines = edit.text.split("\n")  # as sent: each name in <b></b>
    shown = [lines[0], *lines[lines.index(EN["more_header"]) + 1 :]]
    return [names[html.unescape(re.search("<b>(.+?)</b>", line)[1])] for line in shown]


def sexes(catalog: BuiltCatalog, persons: list[str]) -> set[str | None]:
    """The catalog's own idea of each person's sex: what the engine filters on."""
    people = loaded_catalog(catalog.assets).persons
    return {people[p].sex for p in persons}


def stored(db: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM preferences ORDER BY user_id").fetchall()


def test_settings_shows_the_choices_and_help_and_the_command_list_name_it(api: FakeBotApi, bot, user: int) -> None:
    answer = open_settings(api, user)
    assert answer.message["text"] == plain(EN["settings"])
    auto, *others = MATCH_SEX_CHOICES
    assert labels(answer) == [keyboards.CHOSEN + LABEL[auto]] + [LABEL[c] for c in others]  # nothing chosen: default
    assert [b["callback_data"] for b in answer.buttons] == [f"s:{c}" for c in MATCH_SEX_CHOICES]

    russian = open_settings(api, next(_users), language_code="ru")
    assert russian.message["text"] == plain(RU["settings"])
    assert labels(russian)[1:] == [RU["match_F"], RU["match_M"], RU["match_any"]]

    api.send_text(user, "/help")
    [*_, help_answer] = api.wait_for_sent(chat_id=user, count=2, timeout=10)
    assert "/settings" in help_answer.message["text"]
    assert "/settings" in RU["help"]
    assert "settings" in [c["command"] for c in api.commands()]
    assert RU["cmd_settings"] in [c["description"] for c in api.commands(language_code="ru")]


def test_forged_settings_buttons_are_refused(api: FakeBotApi, bot, user: int) -> None:
    message_id = open_settings(api, user).message["message_id"]
    for forged in ("s:f", "s:F\n", "s:any ", "s:", "s:auto:1", "S:M", "s:F:M", "s:male"):
        assert press(api, user, message_id, forged, check=False) == EN["invalid_button"], forged
    assert keyboards.parse("m:AAAAAAAA:0\n") is None  # result buttons are as strict
    assert user not in dict(stored(bot.settings.feedback_db))


def test_a_choice_is_remembered_and_changes_the_match(api: FakeBotApi, bot, user: int, catalog: BuiltCatalog) -> None:
    """A woman's photo gets a woman by default, men once she picks men, on every photo until she changes it; a
    man's photo gets women when he picks women. The file holds the choice and nothing else."""
    her, him = catalog.queries["angelina_jolie"], catalog.queries["obama"]
    assert matched(api, catalog, user, her[0])[0] == "angelina_jolie"

    settings = open_settings(api, user)
    message_id = settings.message["message_id"]
    since = time.monotonic()
    assert choose(api, user, message_id, "M") == EN["match_saved"].format(choice=LABEL["M"])
    [edit] = api.wait_for(lambda r: r.method == "editMessageReplyMarkup" and r.at > since, 10)
    assert keyboards.CHOSEN + LABEL["M"] in labels(edit) and sum(keyboards.CHOSEN in t for t in labels(edit)) == 1
    assert dict(stored(bot.settings.feedback_db))[user] == "M"

    for photo in her[1:3]:  # every photo from now on
        persons = matched(api, catalog, user, photo)
        assert persons[0] not in WOMEN, persons  # a man, by eye
        assert sexes(catalog, persons) == {"M"}, persons
    assert keyboards.CHOSEN + LABEL["M"] in labels(open_settings(api, user))  # a new /settings shows it too

    assert choose(api, user, message_id, "F") == EN["match_saved"].format(choice=LABEL["F"])
    assert matched(api, catalog, user, him[0])[0] in WOMEN
    assert sexes(catalog, matched(api, catalog, user, her[0])) == {"F"}

    assert choose(api, user, message_id, "any") == EN["match_saved"].format(choice=LABEL["any"])
    anyone = matched(api, catalog, user, him[0])
    assert anyone[0] == "obama"
    assert choose(api, user, message_id, "auto") == EN["match_saved"].format(choice=LABEL["auto"])
    assert sexes(catalog, matched(api, catalog, user, him[0])) == {"M"}
    assert dict(stored(bot.settings.feedback_db))[user] == "auto"
    with sqlite3.connect(bot.settings.feedback_db) as db:
        assert [row[1] for row in db.execute("PRAGMA table_info(preferences)")] == ["user_id", "match_sex"]


def test_in_a_group_each_press_sets_only_the_pressers_choice(api: FakeBotApi, bot, catalog: BuiltCatalog) -> None:
    """Anyone in the group may press; the press sets the presser's choice, told in a notice only they see. The
    message shows nobody's choice, and nothing about anyone is said in the group."""
    group, a, b = -100_000_000_019, next(_users), next(_users)
    own = open_settings(api, a)  # A picks men in private first
    assert choose(api, a, own.message["message_id"], "M") == EN["match_saved"].format(choice=LABEL["M"])

    settings = open_settings(api, a, chat=group)
    assert labels(settings) == [LABEL[c] for c in MATCH_SEX_CHOICES]  # A's choice is not shown to the group
    message_id = settings.message["message_id"]
    since = time.monotonic()
    assert choose(api, b, message_id, "F") == EN["match_saved"].format(choice=LABEL["F"])  # B presses A's message
    assert dict(stored(bot.settings.feedback_db))[a] == "M" and dict(stored(bot.settings.feedback_db))[b] == "F"
    assert matched(api, catalog, b, catalog.queries["obama"][0], chat=group)[0] in WOMEN  # B's photo: B's choice
    assert matched(api, catalog, a, catalog.queries["angelina_jolie"][0], chat=group)[0] not in WOMEN  # A's: A's choice
    assert not api.requests("editMessageReplyMarkup", chat_id=group)
    assert api.message(message_id)["reply_markup"] == settings.message["reply_markup"]
    in_group = [r for r in api.sent(chat_id=group) if r.at > since]
    assert [r.method for r in in_group] == ["sendPhoto", "sendPhoto"]  # the two cards; no text about anyone


def test_the_choice_survives_a_restart_and_beats_the_bots_default(catalog: BuiltCatalog, tmp_path: Path) -> None:
    """Chosen, stopped, started again on the same file (with ``--match-sex any`` this time): the choice still
    holds; someone who chose nothing gets the new default."""
    user, newcomer = next(_users), next(_users)
    with FakeBotApi() as api, running_bot(bot_settings(api, catalog.assets, tmp_path, workers=1)):
        api.wait_for_poller(timeout=60)
        assert choose(api, user, open_settings(api, user).message["message_id"], "M").startswith("Saved")
    with FakeBotApi() as api, running_bot(bot_settings(api, catalog.assets, tmp_path, workers=1, match_sex="any")):
        api.wait_for_poller(timeout=60)
        assert keyboards.CHOSEN + LABEL["M"] in labels(open_settings(api, user))
        assert keyboards.CHOSEN + LABEL["any"] in labels(open_settings(api, newcomer))
        persons = matched(api, catalog, user, catalog.queries["angelina_jolie"][0])
        assert persons[0] not in WOMEN and sexes(catalog, persons) == {"M"}, persons
        assert_nothing_told_about_sex(api)


def _break(db: Path, how: str) -> None:
    if how == "read-only":
        if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not supported here: cannot make the store read-only for root")
    else:
        db.write_bytes(b"this is not an SQLite file " * 200)


@pytest.mark.parametrize("how", ["read-only", "corrupt"])
def test_a_broken_store_still_answers_photos_and_says_a_choice_was_not_saved(
    catalog: BuiltCatalog, tmp_path: Path, how: str
) -> None:
    """Read-only: the saved choice still applies, a new one is "not saved". Corrupt: the default applies. Either
    way every photo, /settings and press is answered."""
    user = next(_users)
    db = tmp_path / "feedback.sqlite3"
    with FakeBotApi() as api, running_bot(bot_settings(api, catalog.assets, tmp_path, workers=1)):
        api.wait_for_poller(timeout=60)
        message_id = open_settings(api, user).message["message_id"]
        assert choose(api, user, message_id, "M").startswith("Saved")
        _break(db, how)
        try:
            assert choose(api, user, message_id, "F") == EN["match_not_saved"]
            persons = matched(api, catalog, user, catalog.queries["angelina_jolie"][1])
            settings = open_settings(api, user)
        finally:
            subprocess.run(["chattr", "-i", str(db)], check=False)
        if how == "read-only":  # still readable: the choice saved before holds
            assert persons[0] not in WOMEN and keyboards.CHOSEN + LABEL["M"] in labels(settings)
        else:  # unreadable: the default, and /settings marks what applies
            assert persons[0] == "angelina_jolie" and keyboards.CHOSEN + LABEL["auto"] in labels(settings)
        assert_nothing_told_about_sex(api)
