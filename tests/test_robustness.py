"""Bad input, dying workers and Bot API weather: every user gets an answer and the bot carries on."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from lookalike.telegram.texts import TEXTS
from testkit.data import BuiltCatalog
from testkit.fake_bot_api import FakeBotApi
from testkit.images import encode, huge_small_jpeg, png_bomb, with_orientation
from testkit.procs import rss_bytes, spawn_workers
from testkit.running import bot_settings, free_port, running_bot

EN = TEXTS["en"]
CARD = "card"  # the outcome "a sendPhoto card naming someone"


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def bot(api: FakeBotApi, catalog: BuiltCatalog, tmp_path_factory: pytest.TempPathFactory, metrics_port: int):
    settings = bot_settings(
        api, catalog.assets, tmp_path_factory.mktemp("robust"), metrics_port=metrics_port, api_timeout=1.5
    )
    with running_bot(settings) as running:
        api.wait_for_poller(timeout=60)
        yield running


def metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = [float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name + " ")]
    return values[0] if values else 0.0


def _face(catalog: BuiltCatalog, person: str = "obama") -> Image.Image:
    return Image.open(catalog.queries[person][0]).convert("RGB")


def _crowd(faces: dict[str, list[Path]], count: int = 36) -> bytes:
    """A 6x6 grid of tight face crops of different photos: a crowd photo with 36 faces."""
    paths = [p for person in sorted(faces) for p in faces[person] if Image.open(p).size == (250, 250)][:count]
    side = 200
    grid = Image.new("RGB", (side * 6, side * 6), (40, 40, 40))
    for n, path in enumerate(paths):
        face = Image.open(path).convert("RGB").crop((50, 50, 200, 200)).resize((side, side))
        grid.paste(face, (side * (n % 6), side * (n // 6)))
    return encode(grid, quality=90)


def _animated_gif(catalog: BuiltCatalog) -> bytes:
    frames = [_face(catalog), _face(catalog).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)


def _border_cut(catalog: BuiltCatalog) -> bytes:
    face = _face(catalog, "tony_blair")
    return encode(face.crop((face.width // 2, 0, face.width, face.height)))


HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(2000)

# name -> (how to make it, how it is sent, expected outcome: a text key of EN or CARD)
CORPUS: dict[str, tuple[Callable[[BuiltCatalog], bytes], str, str]] = {
    "truncated-jpeg": (lambda c: c.queries["obama"][0].read_bytes()[:4000], "document", "not_an_image"),
    "zero-bytes": (lambda c: b"", "document", "not_an_image"),
    "html-as-jpg": (lambda c: b"<!doctype html><html><body>404</body></html>", "document", "not_an_image"),
    "png-bomb": (lambda c: png_bomb(), "document", "too_large"),
    "1x1": (lambda c: encode(Image.new("RGB", (1, 1))), "photo", "no_face"),
    "strip-10000x10": (lambda c: encode(Image.new("RGB", (10000, 10), (90, 60, 30))), "document", "no_face"),
    "cmyk-jpeg": (lambda c: encode(_face(c).convert("CMYK")), "document", CARD),
    "png-16bit": (lambda c: encode(Image.fromarray(_gray16(c)), "PNG"), "document", CARD),
    "animated-gif": (_animated_gif, "document", CARD),
    "heic": (lambda c: HEIC, "document", "not_an_image"),
    "avif": (lambda c: encode(_face(c), "AVIF"), "document", CARD),
    "exif-3": (lambda c: with_orientation(c.queries["obama"][0], 3), "document", CARD),
    "exif-6": (lambda c: with_orientation(c.queries["obama"][0], 6), "document", CARD),
    "exif-8": (lambda c: with_orientation(c.queries["obama"][0], 8), "document", CARD),
    "huge-dimensions-small-file": (lambda c: huge_small_jpeg(), "document", "too_large"),
    "jpeg-named-png": (lambda c: c.queries["obama"][0].read_bytes(), "document:image/png", CARD),
}


def _gray16(catalog: BuiltCatalog):
    import numpy as np

    return np.asarray(_face(catalog).convert("L"), dtype=np.uint16) * 257


def _send(api: FakeBotApi, user: int, data: bytes, how: str, name: str) -> None:
    if how == "photo":
        api.send_photo(user, data)
    else:
        mime = how.partition(":")[2] or None
        suffix = {"heic": ".heic", "avif": ".avif", "png-bomb": ".png", "animated-gif": ".gif"}.get(name, ".jpg")
        api.send_document(user, data, f"{name}{suffix}", mime or _mime(suffix))


def _mime(suffix: str) -> str:
    return (
        {".heic": "image/heic", ".avif": "image/avif", ".png": "image/png", ".gif": "image/gif"}[suffix]
        if suffix != ".jpg"
        else "image/jpeg"
    )


def test_bad_input_corpus_gets_defined_answers(api: FakeBotApi, bot, catalog: BuiltCatalog, metrics_port: int) -> None:
    users = {name: 20_000 + n for n, name in enumerate(CORPUS)}
    for name, (make, how, _) in CORPUS.items():
        _send(api, users[name], make(catalog), how, name)
    for name, (_, _, expected) in CORPUS.items():
        [answer] = api.wait_for_sent(chat_id=users[name], timeout=60)
        if expected == CARD:
            assert answer.method == "sendPhoto", (name, answer.message)
            assert "Barack Obama" in answer.message["caption"] or name == "avif", name
        else:
            assert answer.message.get("text") == EN[expected], (name, answer.message)
    assert metric(metrics_port, "lookalike_worker_restarts") == 0


def test_crowd_and_cut_faces(api: FakeBotApi, bot, catalog: BuiltCatalog, faces, metrics_port: int) -> None:
    api.send_photo(20_100, _crowd(faces))
    [crowd] = api.wait_for_sent(chat_id=20_100, timeout=60)
    lines = crowd.message["caption"].split("\n")
    found = int(lines[0].split()[2])
    assert found >= 30 and lines[0] == EN["faces_header"].format(count=found)
    assert EN["faces_limit"].format(limit=5) in lines  # described and numbered: the 5 largest (max_faces)
    assert [b["text"] for b in crowd.buttons] == ["1", "2", "3", "4", "5"]
    api.send_photo(20_101, _border_cut(catalog))
    [cut] = api.wait_for_sent(chat_id=20_101, timeout=60)
    assert cut.method == "sendPhoto" or cut.message["text"] == EN["no_face"]
    workers = spawn_workers()
    assert workers and all(rss_bytes(pid) < 1_500 * 2**20 for pid in workers)
    assert metric(metrics_port, "lookalike_worker_restarts") == 0


def test_worker_killed_mid_job_apologises_and_recovers(
    api: FakeBotApi, bot, catalog: BuiltCatalog, faces, metrics_port: int
) -> None:
    before = metric(metrics_port, "lookalike_worker_restarts")
    api.send_photo(20_200, _crowd(faces))
    deadline = time.monotonic() + 30
    while metric(metrics_port, "lookalike_busy_workers") < 1:
        assert time.monotonic() < deadline, "the photo never reached a worker"
    for pid in spawn_workers():
        os.kill(pid, signal.SIGKILL)
    [apology] = api.wait_for_sent(chat_id=20_200, timeout=30)
    assert apology.message["text"] == EN["failed"]
    assert metric(metrics_port, "lookalike_worker_restarts") > before
    api.send_photo(20_201, catalog.queries["obama"][0].read_bytes())
    [card] = api.wait_for_sent(chat_id=20_201, timeout=60)
    assert "Barack Obama" in card.message["caption"]


def test_bot_api_errors_are_retried_or_dropped(api: FakeBotApi, bot, catalog: BuiltCatalog) -> None:
    photo = catalog.queries["obama"][0].read_bytes()
    api.fail_next("sendPhoto", status=502, chat_id=20_300)  # a 5xx: retried
    api.send_photo(20_300, photo)
    [card] = api.wait_for_sent(chat_id=20_300, method="sendPhoto", timeout=30)
    assert len(api.requests("sendPhoto", chat_id=20_300)) == 2 and "Barack Obama" in card.message["caption"]

    api.block_user(20_301)  # 403: dropped, nothing retried
    api.send_text(20_301, "/help")
    api.wait_for(lambda r: r.method == "sendMessage" and r.chat_id == 20_301, timeout=10)
    api.hang_next("sendMessage", 3.0, chat_id=20_302)  # a timeout: retried (better twice than never)
    api.send_text(20_302, "/help")
    api.wait_for(lambda r: r.method == "sendMessage" and r.chat_id == 20_302, timeout=10, count=2)
    time.sleep(1.0)
    assert len(api.requests("sendMessage", chat_id=20_301)) == 1

    api.fail_next("download", status=502)  # a 5xx on the download is retried: the card still comes
    api.send_photo(20_305, photo)
    assert "Barack Obama" in api.wait_for_sent(chat_id=20_305, method="sendPhoto", timeout=30)[0].message["caption"]
    api.fail_next("download", status=400)  # the photo itself cannot be fetched: an apology, not silence
    api.send_photo(20_304, photo)
    assert api.wait_for_sent(chat_id=20_304, timeout=30)[0].message["text"] == EN["failed"]

    api.send_text(20_303, "/help")  # and the bot carries on
    assert api.wait_for_sent(chat_id=20_303, timeout=10)[0].message["text"].startswith("👋")
