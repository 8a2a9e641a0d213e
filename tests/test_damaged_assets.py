"""Damaged asset files (a full disk, an interrupted copy, a wrong file put in place) are refused at start-up with
one line that names the file and the command that mends it: by the matcher (the bot's and the CLI's), by the CLI
as exit status 2, and by bot.py as one ``cannot start`` line and exit status 2. Never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from lookalike.assets import AssetsError, CatalogReader
from lookalike.engine.matcher import Matcher
from testkit import FakeBotApi
from testkit.data import ROOT, BuiltCatalog
from testkit.running import BotProcess

FILES = (
    "catalog.sqlite3",
    "embeddings.npz",
    "thumbs.sqlite3",
    "index.hnsw",
    "index.hnsw.dat",
    "index.json",
    "calibration.json",
    "hubness.npz",
)
# What mends each file: the catalog's files come from build_embeddings.py, the index's from build_index.py.
MENDED_BY = {name: "build_embeddings.py" for name in FILES[:3]} | {name: "build_index.py" for name in FILES[3:]}


def _truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(100)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(np.random.default_rng(len(path.name)).bytes(8192))


def _other_kind(path: Path) -> None:
    """A file of another kind under this name: a JPEG where an index or a database should be."""
    path.write_bytes((ROOT.parent / "shared" / "faces" / "biden" / "1.jpg").read_bytes())


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "empty": _empty,
    "garbage": _garbage,
    "another kind of file": _other_kind,
    "missing": Path.unlink,
}


@pytest.fixture()
def assets(catalog: BuiltCatalog, tmp_path: Path) -> Path:
    copy = tmp_path / "assets"
    shutil.copytree(catalog.assets, copy)
    return copy


def _open_as_the_bot_does(assets: Path) -> None:
    matcher = Matcher(assets)
    matcher.catalog.check_thumbs()


@pytest.mark.parametrize("how", DAMAGE)
@pytest.mark.parametrize("name", FILES)
def test_every_damaged_file_is_refused_in_one_line_naming_it(
    assets: Path, name: str, how: str, capfd: pytest.CaptureFixture[str]
) -> None:
    DAMAGE[how](assets / name)
    with pytest.raises(AssetsError) as refused:
        _open_as_the_bot_does(assets)
    message = str(refused.value)
    assert "\n" not in message
    assert MENDED_BY[name] in message
    # the file is named, except where its absence is the whole story (no catalog at all)
    assert name in message or (name == "catalog.sqlite3" and how == "missing" and "no embeddings here" in message)
    assert capfd.readouterr().err == ""  # nmslib's own "Check failed" lines are kept off stderr


def test_wrong_shapes_are_refused(assets: Path) -> None:
    """Arrays of the right names but the wrong shapes: vectors of another size, offsets for another catalog."""
    with np.load(assets / "embeddings.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    np.savez(assets / "embeddings.npz", **{**arrays, "vectors": arrays["vectors"][:, :64]})
    with pytest.raises(AssetsError, match=r"embeddings\.npz: vectors of shape \(\d+, 64\), expected \(\d+, 128\)"):
        CatalogReader(assets).vectors()

    with np.load(assets / "hubness.npz", allow_pickle=False) as npz:
        hubs = {name: npz[name] for name in npz.files}
    np.savez(assets / "hubness.npz", **{**hubs, "offsets": hubs["offsets"][:-1]})
    with pytest.raises(AssetsError, match=r"hubness\.npz: offsets of shape .* run build_index\.py"):
        Matcher(assets)


def test_an_index_of_other_embeddings_is_refused(assets: Path, tmp_path: Path) -> None:
    meta = json.loads((assets / "index.json").read_text())
    (assets / "index.json").write_text(json.dumps({**meta, "embeddings": "0" * 64}))
    with pytest.raises(AssetsError, match=r"index was built from other embeddings .* run build_index\.py"):
        Matcher(assets)


def test_the_cli_refuses_with_one_line_and_exit_2(assets: Path, faces: dict[str, list[Path]]) -> None:
    _truncate(assets / "embeddings.npz")
    run = subprocess.run(
        [sys.executable, "-m", "lookalike", "match", "--assets", str(assets), str(faces["biden"][0])],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LOOKALIKE_WORKERS": "1"},
    )
    assert run.returncode == 2
    [line] = run.stderr.splitlines()
    assert "embeddings.npz" in line and "build_embeddings.py" in line


@pytest.mark.parametrize("name", ["embeddings.npz", "index.hnsw.dat"])
def test_the_bot_refuses_to_start_with_one_line_and_exit_2(
    api: FakeBotApi, assets: Path, tmp_path: Path, name: str
) -> None:
    _garbage(assets / name)
    bot = BotProcess(api, assets, tmp_path)
    assert bot.process.wait(timeout=60) == 2
    [line] = bot.log_text().splitlines()
    assert "cannot start" in line and name in line and MENDED_BY[name] in line
