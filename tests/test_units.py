"""Fast tests of the pure pieces: settings, button data, allowances, result cache, captions, per-chat pacing."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lookalike.assets import AssetsError, CatalogData, CatalogReader, Person, PhotoRecord
from lookalike.engine.matcher import Match
from lookalike.settings import DEFAULT_CATALOG, Settings, add_arguments, from_namespace
from lookalike.telegram import keyboards, limits
from lookalike.telegram.feedback import FeedbackStore
from lookalike.telegram.limits import PacedRateLimiter, PhotoAllowance
from lookalike.telegram.replies import card_caption
from lookalike.telegram.results import FaceResult, ResultCache
from lookalike.telegram.texts import percent
from testkit.captions import LIKENESS_KEYS, matched


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(limits.time, "monotonic", clock)
    return clock


def parse(command: str, *argv: str, env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, command)
    return from_namespace(parser.parse_args(argv), env or {})


def test_settings_flag_beats_environment_beats_default() -> None:
    assert parse("bot").top_k == 5
    assert parse("bot", env={"LOOKALIKE_TOP_K": "3"}).top_k == 3
    assert parse("bot", "--top-k", "7", env={"LOOKALIKE_TOP_K": "3"}).top_k == 7
    assert parse("bot", env={"TELEGRAM_TOKEN": "1:abc"}).token == "1:abc"
    assert parse("build", "--quiet").quiet and parse("build", env={"LOOKALIKE_QUIET": "yes"}).quiet


def test_settings_flags_belong_to_their_commands() -> None:
    with pytest.raises(SystemExit):
        parse("build", "--token", "1:abc")  # the build never talks to Telegram
    with pytest.raises(SystemExit):
        parse("match", "--catalog-jitters", "3")  # catalog jitters are a build setting, user-photo jitters are not
    assert parse("build", "--catalog-jitters", "3").catalog_jitters == 3
    assert parse("match", "--jitters", "1").jitters == 1


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"admin_ids": "12,abc"}, "admin_ids"),
        ({"link_template": "https://x/{nope}"}, "link_template"),
        ({"log_format": "xml"}, "log_format"),
        ({"workers": 0}, "workers"),
        ({"queue_size": -1}, "queue_size"),
    ],
)
def test_bad_settings_are_refused_by_name(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(**values)


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="LOOKALIKE_WORKERS"):
        Settings.from_env({"LOOKALIKE_WORKERS": "many"})


def test_default_catalog_only_when_the_operator_has_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings().with_default_catalog().assets == DEFAULT_CATALOG / "assets"
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "brad_pitt.jpg").write_bytes(b"x")
    assert Settings().with_default_catalog() == Settings()  # the operator's photos win
    assert Settings(photos=tmp_path / "empty").with_default_catalog().photos == tmp_path / "empty"


def test_button_data_round_trips_and_forgeries_are_refused() -> None:
    markup = keyboards.card_keyboard("en", "abcdEFG_", 1)
    data = [b.callback_data for row in markup.inline_keyboard for b in row]
    presses = [keyboards.parse(d) for d in data]
    assert [(p.action, p.token, p.face, p.vote) for p in presses] == [
        ("m", "abcdEFG_", 1, None),
        ("b", "abcdEFG_", 1, None),
        ("v", "abcdEFG_", 1, "u"),
        ("v", "abcdEFG_", 1, "d"),
    ]
    for forged in (None, "", "v:abcdEFG_:1", "m:abcdEFG_:1:u", "x:abcdEFG_:1", "m:short:1", "m:abcdEFG_:123"):
        assert keyboards.parse(forged) is None, forged


def test_photo_allowance_slides_per_user(clock: Clock) -> None:
    allowance = PhotoAllowance(per_minute=2)
    assert allowance.allow(1) and allowance.allow(1) and not allowance.allow(1)
    assert allowance.allow(2)  # another user has an allowance of their own
    clock.now += 59.9
    assert not allowance.allow(1)
    clock.now += 0.2
    assert allowance.allow(1)


def test_result_cache_expires_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr("lookalike.telegram.results.time.monotonic", clock)
    cache = ResultCache(capacity=2, ttl=10)
    first = cache.put(1, (FaceResult((), b""),))
    second, third = cache.put(2, ()), cache.put(3, ())
    assert cache.get(first) is None and len(cache) == 2  # the oldest made room
    assert cache.get(second).owner == 2
    clock.now += 10.1
    assert cache.get(third) is None


def _match(name: str, similarity: float, **extra: object) -> Match:
    values = {
        "person": name.lower(),
        "name": name,
        "distance": 0.4,
        "similarity": similarity,
        "alias": None,
        "role": None,
        "url": None,
        "thumb": Path("x.jpg"),
        "photo": "x.jpg",
        **extra,
    }
    return Match(**values)


def test_card_caption_escapes_and_lists_more_matches() -> None:
    best = _match("Tom <b> & Jerry", 87.4, alias="Tom_&_Jerry", role="Senator from Arizona")
    caption = card_caption("en", "https://en.wikipedia.org/wiki/{alias}", [best, _match("Ann", 50.0)], more=True)
    assert "Tom &lt;b&gt; &amp; Jerry" in caption and "<b>" in caption
    assert "Senator from Arizona" in caption
    assert 'href="https://en.wikipedia.org/wiki/Tom_%26_Jerry"' in caption
    assert "2. <b>Ann</b>" in caption
    assert "Ann" not in card_caption("ru", "", [best, _match("Ann", 50.0)])
    member = _match("Jo Smith", 40.0, alias="S000001", url="https://bioguide.congress.gov/search/bio/S000001")
    assert 'href="https://bioguide.congress.gov/search/bio/S000001"' in card_caption("en", "", [member])


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_caption_words_follow_the_band_and_leave_the_number_alone(lang: str) -> None:
    """Every % from 0 to 100 gets words of its band, and the first line still reads as "name — N%"."""
    seen = []
    for similarity in np.arange(0.0, 100.01, 0.5):
        first = card_caption(lang, "", [_match("Ann Lee", float(similarity))]).split("\n")[0]
        plain = first.replace("<b>", "").replace("</b>", "")
        name, shown, band = matched(plain, lang)
        assert (name, f"{shown}%") == ("Ann Lee", percent(similarity))
        seen.append(band)
    assert seen[0] == "look_unique" and seen[-1] == "look_striking"
    assert seen == sorted(seen, key=[*LIKENESS_KEYS[::-1]].index)  # bands only climb as the % does
    assert len(set(seen)) == len(LIKENESS_KEYS)


def test_pacing_spaces_messages_per_chat_but_not_across_chats(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))

    monkeypatch.setattr(limits.asyncio, "sleep", sleep)

    async def send(*args: object, **kwargs: object) -> bool:
        return True

    async def main() -> None:
        limiter = PacedRateLimiter(interval=1.0)
        await limiter.initialize()
        for chat, endpoint in (
            (1, "sendMessage"),
            (1, "sendPhoto"),
            (2, "sendMessage"),
            (1, "sendChatAction"),
            (1, "editMessageCaption"),
        ):
            await limiter.process_request(send, (), {}, endpoint, {"chat_id": chat}, None)

    asyncio.run(main())
    assert [w for w in waits if w > 0] == [1.0, 2.0]  # chat 1 waits its turn; chat 2 and chat actions do not


def test_vectors_of_another_catalog_are_refused(tmp_path: Path) -> None:
    """embeddings.npz copied from another build (or left by an interrupted copy) never serves this catalog's rows."""
    for name, persons in (("a", ["x", "y"]), ("b", ["x", "z"])):
        photos = [PhotoRecord(f"{p}.jpg", f"{i:064x}", p, (0, 0, 1, 1), 30.0, 0.0) for i, p in enumerate(persons)]
        vectors = np.full((2, 128), len(name), np.float32)
        CatalogData({p: Person(p, p) for p in persons}, photos, vectors).save(tmp_path / name)
    CatalogReader(tmp_path / "a").close()
    (tmp_path / "a" / "embeddings.npz").write_bytes((tmp_path / "b" / "embeddings.npz").read_bytes())
    with pytest.raises(AssetsError, match=r"embeddings\.npz does not belong to .*catalog\.sqlite3"):
        CatalogReader(tmp_path / "a")


def test_malformed_catalog_is_a_store_error_naming_it(tmp_path: Path) -> None:
    CatalogData(persons={"a": Person("a", "A")}).save(tmp_path)
    catalog = tmp_path / "catalog.sqlite3"
    with sqlite3.connect(catalog) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'version'")
    with pytest.raises(AssetsError, match="format version 1, expected 2"):
        CatalogData.load(tmp_path)
    catalog.write_bytes(b"not a database, a truncated copy")
    with pytest.raises(AssetsError, match=r"catalog\.sqlite3: not a catalog"):
        CatalogData.load(tmp_path)


def test_outcomes_forget_whose_photo_they_were(tmp_path: Path) -> None:
    """A feedback file from before: its request rows named the user; opened now, they keep only what /stats needs."""
    path = tmp_path / "feedback.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE requests (ts REAL NOT NULL, user_id INTEGER NOT NULL, outcome TEXT NOT NULL, "
            "faces INTEGER NOT NULL, person TEXT, similarity REAL, seconds REAL NOT NULL)"
        )
        db.executemany(
            "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(1.0, 7, "matched", 1, "obama", 91.0, 0.2), (2.0, 8, "no_face", 0, None, None, 0.1)],
        )
    store = FeedbackStore(path)
    store.record("matched", 1, "madonna", 80.0, 0.3)
    stats = store.stats()
    assert (stats.requests, stats.outcomes) == (3, {"matched": 2, "no_face": 1})
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {row[1] for row in db.execute("PRAGMA table_info(outcomes)")}
    assert "requests" not in tables and "user_id" not in columns
