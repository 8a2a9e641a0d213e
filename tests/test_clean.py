"""Catalog cleaning on real LFW faces: planted wrong-person photos and duplicates are left out, genuine ones kept.

A catalog of 12 LFW people (3–5 photos each, 48 photos, 2 of them unusable: two faces) plus two planted files: a
photo of Sean Penn (not in the catalog) in Aaron Peirsol's folder, and Alan Greenspan's first photo filed under
Diana Munz too.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from lookalike.assets import Store
from lookalike.catalog.build_embeddings import BuildReport, build_embeddings
from lookalike.catalog.clean import DISAGREE, DUPLICATE, SAME_HUMAN, WRONG_PERSON, clean, nearest_other
from lookalike.catalog.report import REPORT_FILE

LFW = Path(__file__).resolve().parents[2] / "shared" / "lfw"
PEOPLE = [  # no photo of theirs is doubtful, and no two of them look alike (checked on their descriptors)
    "Aaron_Peirsol", "Alan_Greenspan", "Anne_McLellan", "Christine_Baumgartner", "Daniel_Radcliffe", "Diana_Munz",
    "Edward_Kennedy", "Habib_Rizieq", "Jong_Wook_Lee", "Michael_Jordan", "Paul-Henri_Mathieu", "Prince_Charles",
]  # fmt: skip
WRONG = "Aaron_Peirsol/planted_sean_penn.jpg"
DUPLICATE_COPY = "Diana_Munz/planted_greenspan.jpg"
DUPLICATE_ORIGINAL = "Alan_Greenspan/Alan_Greenspan_0001.jpg"


@dataclass(frozen=True)
class Built:
    photos: Path
    assets: Path
    report: BuildReport
    genuine: int  # usable genuine photos


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    if not LFW.is_dir():
        pytest.fail(f"{LFW} not found: the cleaning tests read real faces from ../shared/lfw")
    root = tmp_path_factory.mktemp("clean")
    photos, assets = root / "photos", root / "assets"
    genuine = 0
    for name in PEOPLE:
        for path in sorted((LFW / name).glob("*.jpg")):
            _link(photos / name / path.name, path)
            genuine += 1
    _link(photos / WRONG, LFW / "Sean_Penn" / "Sean_Penn_0001.jpg")
    _link(photos / DUPLICATE_COPY, LFW / DUPLICATE_ORIGINAL)
    report = build_embeddings(photos, assets, jitters=0, workers=2, progress=False)
    return Built(photos, assets, report, genuine - len(report.skipped))


def test_planted_photos_are_left_out_with_their_reason(built: Built) -> None:
    why = {skip.path: skip.reason for skip in built.report.excluded}
    assert set(why) == {WRONG, DUPLICATE_COPY}
    assert why[WRONG].startswith(WRONG_PERSON) and "aaron_peirsol" in why[WRONG]
    assert why[DUPLICATE_COPY].startswith(DUPLICATE) and DUPLICATE_ORIGINAL in why[DUPLICATE_COPY]
    store = Store.load(built.assets)
    assert len(store.photos) == built.report.photos == built.genuine  # every genuine photo kept, the original too
    assert {p.path for p in store.photos} >= {DUPLICATE_ORIGINAL}
    assert {s.path: s.reason for s in store.skipped if s.path in why} == why  # not described again next build
    assert built.report.suspicious == []
    assert {s.path: s.reason for s in built.report.skipped} == {  # unusable: the describe stage's own reason
        f"Habib_Rizieq/Habib_Rizieq_000{n}.jpg": "2 faces of similar size: which one is the person?" for n in (1, 4)
    }


def test_report_shows_the_planted_files_and_reasons(built: Built) -> None:
    page = (built.assets / REPORT_FILE).read_text(encoding="utf-8")
    assert built.report.cleaning_report == built.assets / REPORT_FILE
    for text in (WRONG, DUPLICATE_COPY, DUPLICATE_ORIGINAL, "Wrong person (1)", "Duplicate under another name (1)"):
        assert text in page
    assert page.count("data:image/jpeg;base64,") == 4  # photos left out or unusable have no thumbnail: drawn


def test_keep_outliers_keeps_everything_and_cleaning_comes_back(built: Built, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(built.assets, assets)
    kept = build_embeddings(built.photos, assets, jitters=0, workers=2, progress=False, keep_outliers=True)
    assert kept.computed == 0  # the photos left out before come back from their saved descriptors
    assert kept.excluded == [] and kept.photos == built.genuine + 2
    assert {p.path for p in Store.load(assets).photos} >= {WRONG, DUPLICATE_COPY}
    assert "Cleaning is off" in (assets / REPORT_FILE).read_text(encoding="utf-8")
    again = build_embeddings(built.photos, assets, jitters=0, workers=2, progress=False)
    assert again.computed == 0
    assert {s.path for s in again.excluded} == {WRONG, DUPLICATE_COPY}


def test_lost_descriptors_of_left_out_photos_are_made_again(built: Built, tmp_path: Path) -> None:
    """Without excluded.npz the photos left out last time cannot be judged again: they are described again."""
    assets = tmp_path / "assets"
    shutil.copytree(built.assets, assets)
    (assets / "excluded.npz").unlink()
    (assets / "described.sqlite3").unlink(missing_ok=True)  # the build's checkpoint would still hold them
    again = build_embeddings(built.photos, assets, jitters=0, workers=2, progress=False)
    assert again.computed == 1  # the wrong photo; the duplicate shares its bytes with the original, kept
    assert {s.path for s in again.excluded} == {WRONG, DUPLICATE_COPY}


@pytest.fixture(scope="module")
def real(built: Built) -> tuple[list[str], list[str], np.ndarray]:
    """The 46 usable genuine photos' persons, sha256s and descriptors (jitters=0) from the built catalog."""
    store = Store.load(built.assets)
    return [p.person for p in store.photos], [p.sha256 for p in store.photos], store.vectors


def test_genuine_catalog_is_left_alone(real: tuple[list[str], list[str], np.ndarray]) -> None:
    found = clean(*real)
    assert found.excluded == [] and found.suspicious == []


def test_photo_moved_to_another_person_is_left_out(real: tuple[list[str], list[str], np.ndarray]) -> None:
    persons, shas, vectors = real
    moved = persons.index("michael_jordan")
    persons = [*persons[:moved], "prince_charles", *persons[moved + 1 :]]
    found = clean(persons, shas, vectors)
    assert [i for i, _ in found.excluded] == [moved]
    assert found.excluded[0][1].startswith(WRONG_PERSON) and "closest to michael_jordan" in found.excluded[0][1]


def test_duplicates_are_kept_where_they_belong(real: tuple[list[str], list[str], np.ndarray]) -> None:
    persons, shas, vectors = real
    i, j = persons.index("edward_kennedy"), persons.index("habib_rizieq")
    near = vectors[j] + np.float32(0.1 / np.sqrt(128))  # a re-encoded copy is 0.05–0.19 away (measured)
    found = clean(
        [*persons, "anne_mclellan", "sean_penn", "a_stranger", "another_stranger"],
        [*shas, shas[i], "other bytes", "same bytes", "same bytes"],
        np.vstack([vectors, vectors[i], near, vectors[0], vectors[0]]),
    )
    n = len(persons)
    why = dict(found.excluded)
    assert set(why) == {n, n + 1, n + 2, n + 3}  # the originals (i, j, 0) stay where they belong
    assert why[n].startswith(DUPLICATE) and "same file as" in why[n]
    assert why[n + 1].startswith(DUPLICATE) and "near-identical" in why[n + 1]
    assert "no one's other photos vouch for it" not in why[n + 2]  # its original's person vouches for it


def test_same_image_under_two_new_names_is_left_out_of_both(real: tuple[list[str], list[str], np.ndarray]) -> None:
    persons, shas, vectors = real
    found = clean([*persons, "x", "y"], [*shas, "s", "s"], np.vstack([vectors, vectors[:1] + 1.0, vectors[:1] + 1.0]))
    assert [i for i, _ in found.excluded] == [len(persons), len(persons) + 1]
    assert all("vouch" in why for _, why in found.excluded)


def test_one_human_under_two_names_is_reported_not_merged(real: tuple[list[str], list[str], np.ndarray]) -> None:
    persons, shas, vectors = real
    rows = [k for k, p in enumerate(persons) if p == "alan_greenspan"]  # 5 photos: 3 + 2
    renamed = ["greenspan_alias" if k in rows[3:] else p for k, p in enumerate(persons)]
    found = clean(renamed, shas, vectors)
    assert found.excluded == []
    assert [(a, b) for a, b, _, why in found.suspicious if why.startswith(SAME_HUMAN)] == [
        ("alan_greenspan", "greenspan_alias")
    ]


def test_two_photos_that_disagree_are_reported_not_excluded(real: tuple[list[str], list[str], np.ndarray]) -> None:
    persons, shas, vectors = real
    a, b = persons.index("diana_munz"), persons.index("michael_jordan")
    found = clean(["pair", "pair"], [shas[a], shas[b]], vectors[[a, b]])
    assert found.excluded == []
    assert [(p, q, why.split(":")[0]) for p, q, _, why in found.suspicious] == [("pair", "pair", DISAGREE)]


def test_nearest_other_is_exact_in_blocks() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5000, 16)).astype(np.float32)  # > 4096 rows: several blocks
    codes = rng.integers(0, 1500, 5000)
    ids, dist = nearest_other(vectors, codes)
    sample = rng.choice(5000, 200, replace=False)
    d = np.linalg.norm(vectors[sample, None] - vectors[None], axis=2)
    d[codes[sample, None] == codes[None]] = np.inf
    assert np.array_equal(ids[sample], d.argmin(axis=1))
    assert np.allclose(dist[sample], d.min(axis=1), atol=1e-4)
    assert (ids >= 0).all() and (codes[ids] != codes).all()
