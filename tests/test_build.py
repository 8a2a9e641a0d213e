"""Operators' tools: build_embeddings.py (layouts, catalog.json, skips, incremental) and build_index.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.assets import AssetsError, CatalogData, Person, PhotoRecord, ThumbnailWriter
from lookalike.build import checkpoint as checkpoint_module
from lookalike.build.build_embeddings import build_embeddings
from lookalike.build.describe import QualityRules, describe_photo
from lookalike.build.scan import CatalogError, scan
from lookalike.engine.hnsw import INDEX_FILE
from lookalike.engine.matcher import Matcher
from testkit.data import ROOT
from testkit.images import encode


def _link(folder: Path, name: str, target: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).symlink_to(target)


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def photos(tmp_path: Path, faces: dict[str, list[Path]]) -> Path:
    """Two layouts side by side: folders with several photos, and a single file per person."""
    root = tmp_path / "photos"
    for person in ("obama", "madonna", "tony_blair"):
        for path in faces[person][:3]:
            _link(root / person, path.name, path)
    _link(root, "Katy-Perry.jpg", faces["katy_perry"][0])
    (root / "catalog.json").write_text(
        json.dumps(
            [
                {"name": "Barack Obama", "alias": "obama", "role": "president", "n_movies": 3},
                {"name": "Katy Perry", "alias": "katy_perry", "role": "singer"},
            ]
        )
    )
    return root


def test_scan_layouts_and_catalog_json(photos: Path) -> None:
    catalog = scan(photos)
    assert set(catalog.persons) == {"obama", "madonna", "tony_blair", "katy_perry"}
    assert catalog.persons["obama"] == Person("obama", "Barack Obama", "obama", "president", 3)
    assert catalog.persons["katy_perry"].name == "Katy Perry"
    assert catalog.persons["tony_blair"].name == "Tony Blair"  # no entry: name from the folder
    assert len(catalog.photos["madonna"]) == 3 and len(catalog.photos["katy_perry"]) == 1


def test_empty_photos_folder_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    run = _run("build_embeddings.py", "--photos", str(tmp_path / "photos"), "--assets", str(tmp_path / "a"))
    assert run.returncode == 2 and "no photos found; add a folder per person" in run.stderr


def test_malformed_catalog_json_names_the_file(photos: Path) -> None:
    (photos / "catalog.json").write_text('{"name": "x"}')
    with pytest.raises(CatalogError, match=r"catalog\.json"):
        scan(photos)


def test_incremental_rebuild_recomputes_only_changes(photos: Path, tmp_path: Path, faces) -> None:
    assets = tmp_path / "assets"
    first = build_embeddings(photos, assets, jitters=0, progress=False)
    assert (first.computed, first.reused, first.persons) == (10, 0, 4)
    before = CatalogData.load(assets)

    again = build_embeddings(photos, assets, jitters=0, progress=False)
    assert (again.computed, again.reused) == (0, 10)
    assert np.array_equal(CatalogData.load(assets).vectors, before.vectors)

    for path in faces["vladimir_putin"][:2]:
        _link(photos / "vladimir_putin", path.name, path)
    added = build_embeddings(photos, assets, jitters=0, progress=False)
    assert (added.computed, added.reused, added.persons) == (2, 10, 5)

    (photos / "madonna" / faces["madonna"][0].name).unlink()
    removed = build_embeddings(photos, assets, jitters=0, progress=False)
    assert (removed.computed, removed.removed) == (0, 1)
    store = CatalogData.load(assets)
    assert sum(p.person == "madonna" for p in store.photos) == 2
    with ThumbnailWriter(assets) as thumbs:
        assert thumbs.keys() == {p.sha256 for p in store.photos}
        lost = sorted(thumbs.keys())[:3]
        drawn = {sha: thumbs.get(sha) for sha in lost}
        thumbs.remove(lost)  # a lost thumbnail is drawn again from its photo and stored face box, nothing re-described
    mended = build_embeddings(photos, assets, jitters=0, progress=False)
    assert (mended.computed, mended.reused) == (0, 11)
    with ThumbnailWriter(assets) as thumbs:
        assert {sha: thumbs.get(sha) for sha in lost} == drawn
    assert sorted(p.name for p in assets.iterdir()) == [
        "catalog.sqlite3", "cleaning-report.html", "described.sqlite3", "embeddings.npz", "neighbours.npz",
        "thumbs.sqlite3",
    ]  # fmt: skip


def test_unchanged_photos_are_not_read_again_and_changed_ones_are(
    photos: Path, tmp_path: Path, faces, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild stats each photo; only a file whose size, mtime or inode changed is read and hashed again (a
    million-photo catalog is not read end to end to add one person)."""
    assets = tmp_path / "assets"
    build_embeddings(photos, assets, jitters=0, progress=False)
    hashed: list[Path] = []
    real = checkpoint_module.sha256_file
    monkeypatch.setattr(checkpoint_module, "sha256_file", lambda path: hashed.append(path) or real(path))
    again = build_embeddings(photos, assets, jitters=0, progress=False)
    assert (again.computed, again.reused, hashed) == (0, 10, [])

    target = photos / "obama" / faces["obama"][0].name
    target.unlink()  # was a link to ../shared: a different photo under the same name
    target.write_bytes(faces["vladimir_putin"][0].read_bytes())
    changed = build_embeddings(photos, assets, jitters=0, progress=False)
    assert (changed.computed, changed.reused, hashed) == (1, 9, [target])


def test_unusable_photos_are_skipped_with_reasons(photos: Path, tmp_path: Path, faces) -> None:
    gradient = np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))
    (photos / "madonna" / "landscape.png").write_bytes(encode(Image.fromarray(gradient), "PNG"))
    (photos / "madonna" / "broken.jpg").write_bytes(faces["madonna"][0].read_bytes()[:500])
    pair = Image.new("RGB", (800, 500), (90, 90, 90))
    for x, path in ((0, faces["george_w_bush"][0]), (400, faces["tony_blair"][0])):
        pair.paste(Image.open(path).convert("RGB").resize((400, 500)), (x, 0))
    (photos / "obama" / "pair.jpg").write_bytes(encode(pair))

    run = _run(
        "build_embeddings.py",
        "--photos",
        str(photos),
        "--assets",
        str(tmp_path / "a"),
        "--catalog-jitters",
        "0",
        "--workers",
        "2",
        "--quiet",
    )
    assert run.returncode == 0, run.stderr
    skipped = {
        line.split(":")[0].removeprefix("skipped "): line
        for line in run.stdout.splitlines()
        if line.startswith("skipped")
    }
    assert "no face" in skipped[str(photos / "madonna" / "landscape.png")]
    assert "not_an_image" in skipped[str(photos / "madonna" / "broken.jpg")]
    assert "faces" in skipped[str(photos / "obama" / "pair.jpg")]
    assert len(skipped) == 3
    assert "4 persons, 10 photos" in run.stdout


def test_quality_rules_skip_small_and_tilted_faces(faces) -> None:
    data = faces["obama"][1].read_bytes()  # eyes ~118 px apart, head tilted ~5°
    assert describe_photo(data, 0, QualityRules()).vector is not None
    small = describe_photo(data, 0, QualityRules(min_eye_distance=150))
    assert small.vector is None and small.reason.startswith("face too small (eyes 1")
    tilted = describe_photo(data, 0, QualityRules(max_roll=2))
    assert tilted.vector is None and tilted.reason.startswith("head tilted 5°")


def test_build_index_cli_checks_recall(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(4000, 128)).astype(np.float32)
    people = {f"p{i}": Person(f"p{i}", f"P {i}") for i in range(400)}
    records = [
        PhotoRecord(f"p{i % 400}/{i}.jpg", f"{i:064x}", f"p{i % 400}", (0, 0, 1, 1), 30.0, 0.0) for i in range(4000)
    ]
    CatalogData(people, records, vectors).save(tmp_path)

    weak = _run(
        "build_index.py", "--assets", str(tmp_path), "--hnsw-m", "2", "--ef-construction", "2", "--ef-search", "1"
    )
    assert weak.returncode == 1 and "not saved" in weak.stderr
    assert not (tmp_path / INDEX_FILE).exists()

    forced = _run(
        "build_index.py",
        "--assets",
        str(tmp_path),
        "--hnsw-m",
        "2",
        "--ef-construction",
        "2",
        "--ef-search",
        "1",
        "--force",
    )
    assert forced.returncode == 0 and (tmp_path / INDEX_FILE).exists()

    good = _run("build_index.py", "--assets", str(tmp_path))
    assert good.returncode == 0, good.stderr
    stale = CatalogData.load(tmp_path)
    stale.vectors = stale.vectors[::-1].copy()  # embeddings rebuilt, index not: refused, not served wrong
    stale.save(tmp_path)
    with pytest.raises(AssetsError, match=r"run build_index\.py"):
        Matcher(tmp_path)
    assert _run("build_index.py", "--assets", str(tmp_path)).returncode == 0
    recall = float(good.stdout.split("recall@1 of HNSW against exact search: ")[1].split()[0])
    assert recall >= 0.99
    assert len(Matcher(tmp_path).match(vectors[7], 3)) == 3


def test_store_refuses_pickled_vectors(tmp_path: Path) -> None:
    catalog = CatalogData({"a": Person("a", "A")}, [], np.zeros((0, 128), np.float32))
    catalog.save(tmp_path)
    np.savez(
        tmp_path / "embeddings.npz",
        vectors=np.array([object()], dtype=object),
        person_rows=catalog.person_rows(),
        fingerprint=np.array(catalog.fingerprint()),
    )
    with pytest.raises(AssetsError, match=r"embeddings\.npz: damaged or not an npz file \(ValueError\)"):
        CatalogData.load(tmp_path)
