"""Shared fixtures: the real faces in ../shared/faces and a catalog built from them (never copied into the repo)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FACES = Path(os.environ.get("LOOKALIKE_FACES", ROOT.parent / "shared" / "faces"))


def _photo_key(path: Path) -> tuple[int, str]:
    return (int(path.stem), path.suffix) if path.stem.isdigit() else (10**9, path.name)


def person_photos() -> dict[str, list[Path]]:
    """Every person of the dev set and their photos, in numeric order (1.jpg, 2.jpg, …, 10.jpg)."""
    if not FACES.is_dir():
        pytest.fail(f"{FACES} not found: the tests read real faces from ../shared/faces")
    return {
        d.name: sorted((p for p in d.iterdir() if p.is_file()), key=_photo_key)
        for d in sorted(FACES.iterdir())
        if d.is_dir()
    }


@dataclass(frozen=True)
class BuiltCatalog:
    photos: Path  # folder of symlinks: one file per person (their first photo)
    assets: Path
    queries: dict[str, list[Path]]  # every other photo of each person


@pytest.fixture(scope="session")
def faces() -> dict[str, list[Path]]:
    return person_photos()


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory, faces: dict[str, list[Path]]) -> BuiltCatalog:
    """A catalog of the first photo of each person (file per person, one named by catalog.json), built and indexed."""
    from lookalike.embed import build_embeddings
    from lookalike.indexing import build_index

    root = tmp_path_factory.mktemp("catalog")
    photos, assets = root / "photos", root / "assets"
    photos.mkdir()
    for person, paths in faces.items():
        (photos / f"{person}{paths[0].suffix}").symlink_to(paths[0])
    entries = [{"name": "Barack Obama", "alias": "obama", "role": "politician"}]
    (photos / "catalog.json").write_text(json.dumps(entries), encoding="utf-8")
    build_embeddings(photos, assets, jitters=0, workers=2, progress=False)
    report = build_index(assets)
    assert report.saved
    return BuiltCatalog(photos, assets, {p: paths[1:] for p, paths in faces.items() if len(paths) > 1})
