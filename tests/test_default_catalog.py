"""The catalog a fresh clone serves (catalogs/us-congress): shipped embeddings that are what the build makes, a
first build that describes nothing, and the CLI and the bot answering with a member's name and role."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lookalike.assets import CatalogData
from lookalike.build.describe import DESCRIBER_VERSION, describe_photo
from lookalike.settings import DEFAULT_CATALOG
from testkit.captions import matched
from testkit.data import FACES
from testkit.fake_bot_api import FakeBotApi
from testkit.running import bot_settings, lookalike_cli, running_bot

SHIPPED = DEFAULT_CATALOG / "assets"


def lookalike(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return lookalike_cli(*args, cwd=cwd)


def test_shipped_embeddings_are_what_the_build_makes() -> None:
    """Describing a sample of the portraits again gives the shipped descriptors and boxes; and they were made by
    this code (DESCRIBER_VERSION), or every first build would describe the whole catalog again."""
    store = CatalogData.load(SHIPPED)
    assert (store.jitters, store.describer) == (0, DESCRIBER_VERSION)
    assert len(store.photos) == len(list((DEFAULT_CATALOG / "photos").glob("*.jpg"))) == 879
    for row in range(0, len(store.photos), 220):
        photo = store.photos[row]
        described = describe_photo((DEFAULT_CATALOG / "photos" / photo.path).read_bytes(), store.jitters)
        assert described.box == photo.box, photo.path
        # without jitters (no random crops) describing is deterministic: the very same descriptor
        distances = np.linalg.norm(store.vectors - described.vector, axis=1)
        assert distances.argmin() == row and distances[row] < 1e-5, (photo.path, distances[row])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's first command on a fresh clone: no photos of one's own, so the default catalog is built (its
    thumbnails drawn, its index made) from a folder that has nothing else."""
    fresh = tmp_path_factory.mktemp("fresh-clone")
    tracked = [SHIPPED / "catalog.sqlite3", SHIPPED / "embeddings.npz"]
    before = [(p.stat().st_ino, p.stat().st_mtime_ns) for p in tracked]
    build = lookalike(fresh, "build", "--quiet")
    assert build.returncode == 0, build.stderr
    assert "using the default catalog" in build.stderr and "0 computed, 879 unchanged" in build.stdout
    assert [(p.stat().st_ino, p.stat().st_mtime_ns) for p in tracked] == before  # git status stays clean
    index = lookalike(fresh, "index")
    assert index.returncode == 0, index.stderr
    return fresh


def test_cli_answers_against_the_default_catalog_without_noise(served: Path) -> None:
    run = lookalike(served, "match", "--json", str(FACES / "obama" / "2.jpg"))
    assert run.returncode == 0, run.stderr
    best = json.loads(run.stdout)["faces"][0]["matches"][0]
    assert (best["name"], best["role"]) == ("Barack Obama", "Senator from Illinois")
    assert "CPU supports" not in run.stderr and "nmslib" not in run.stderr  # no library notices for newcomers


def test_bot_card_names_the_member_with_role_and_link(served: Path, tmp_path: Path) -> None:
    with FakeBotApi() as api, running_bot(bot_settings(api, SHIPPED, tmp_path)):
        api.wait_for_poller(timeout=60)
        api.send_photo(1, (FACES / "biden" / "2.jpg").read_bytes())
        [card] = api.wait_for_sent(chat_id=1, method="sendPhoto", timeout=30)
    lines = card.message["caption"].split("\n")
    assert matched(lines[0])[0] == "Joseph Biden Jr." and lines[1] == "Senator from Delaware"
    assert "bioguide.congress.gov/search/bio/B000444" in str(card.message.get("caption_entities"))
