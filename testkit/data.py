"""Where the real faces live (../shared, read in place, never copied) and the small catalog built from them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lookalike.assets import CatalogData

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LOOKALIKE_SHARED", ROOT.parent / "shared"))
FACES = SHARED / "faces"  # 45 public figures, a folder each
LFW = SHARED / "lfw"  # 2,849 public figures' news photos, a folder each
CONGRESS = SHARED / "congress"  # the default catalog's source


def _photo_key(path: Path) -> tuple[int, str]:
    return (int(path.stem), path.suffix) if path.stem.isdigit() else (10**9, path.name)


@cache
def person_photos() -> dict[str, list[Path]]:
    """Every person of ../shared/faces and their photos in numeric order (1.jpg, 2.jpg, …, 10.jpg)."""
    if not FACES.is_dir():
        raise FileNotFoundError(f"{FACES} not found: tests and benchmarks read real faces from ../shared/faces")
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


def build_catalog(root: Path, workers: int = 2) -> BuiltCatalog:
    """A catalog of the first photo of each person (file per person, Obama named by catalog.json), built and
    indexed into ``root`` — incrementally, so a second call on the same folder only checks it."""
    from lookalike.build.build_embeddings import build_embeddings
    from lookalike.build.build_index import build_index

    faces = person_photos()
    photos, assets = root / "photos", root / "assets"
    photos.mkdir(parents=True, exist_ok=True)
    for person, paths in faces.items():
        link = photos / f"{person}{paths[0].suffix}"
        if not link.is_symlink():
            link.symlink_to(paths[0])
    entries = [{"name": "Barack Obama", "alias": "obama", "role": "politician"}]
    (photos / "catalog.json").write_text(json.dumps(entries), encoding="utf-8")
    build_embeddings(photos, assets, jitters=0, workers=workers, progress=False)
    if not build_index(assets).saved:
        raise RuntimeError(f"{assets}: the dev catalog's index missed its recall bar")
    return BuiltCatalog(photos, assets, {p: paths[1:] for p, paths in faces.items() if len(paths) > 1})


@cache
def loaded_catalog(assets: Path) -> CatalogData:
    """The whole built catalog as objects (vectors, photo rows), once per assets folder: what tests compare the
    bot's matcher against (the matcher itself keeps only person numbers and reads rows on demand)."""
    return CatalogData.load(assets)
