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

from lookalike.assets import CatalogData
from lookalike.build import knn as knn_module
from lookalike.build.build_embeddings import BuildReport, build_embeddings
from lookalike.build.clean import DISAGREE, DUPLICATE, SAME_HUMAN, WRONG_PERSON, clean
from lookalike.build.knn import nearest_other
from lookalike.build.neighbours import CleaningCache, nearest_other_cached, photo_keys
from lookalike.build.report import REPORT_FILE

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
    store = CatalogData.load(built.assets)
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
    images = page.count("<img")  # every picture is in the page: kept photos' thumbnails, left-out photos drawn
    assert images > 4 and page.count('<img src="data:image/jpeg;base64,') == images


def test_keep_outliers_keeps_everything_and_cleaning_comes_back(built: Built, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(built.assets, assets)
    kept = build_embeddings(built.photos, assets, jitters=0, workers=2, progress=False, keep_outliers=True)
    assert kept.computed == 0  # the photos left out before come back from their saved descriptors
    assert kept.excluded == [] and kept.photos == built.genuine + 2
    assert {p.path for p in CatalogData.load(assets).photos} >= {WRONG, DUPLICATE_COPY}
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
    store = CatalogData.load(built.assets)
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


# Incremental cleaning: the cache of the previous build's neighbours gives the same answers as a computation from
# scratch, for less work.

MADE_BY = "jitters 0; test describer"


def _synthetic(anchors: np.ndarray, persons: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """Descriptor-like photos as bench/index_scale.py makes them, around the real descriptors: 1–15 per person."""
    rng = np.random.default_rng(seed)
    centres = anchors[rng.integers(len(anchors), size=persons)]
    centres = centres + rng.standard_normal(centres.shape).astype(np.float32) * anchors.std(axis=0) * 0.8
    sizes = rng.integers(1, 16, persons)
    codes = np.repeat(np.arange(persons), sizes)
    vectors = (centres[codes] + rng.standard_normal((len(codes), anchors.shape[1])) * 0.025).astype(np.float32)
    return [f"p{seed}_{c}" for c in codes], [f"{seed}-{i:06d}" for i in range(len(codes))], vectors


def _codes(persons: list[str]) -> np.ndarray:
    return np.unique(np.array(persons), return_inverse=True)[1]


def _assert_same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], codes: np.ndarray) -> None:
    """Equal distances (1e-5); equal ids but where two rows tie."""
    (ids, dist), (want_ids, want_dist) = got, want
    assert np.allclose(dist, want_dist, atol=1e-5, rtol=0)
    differ = np.flatnonzero(ids != want_ids)
    assert (ids[differ] >= 0).all() and (codes[ids[differ]] != codes[differ]).all()
    assert np.allclose(dist[differ], want_dist[differ], atol=1e-5, rtol=0)


def _edit(persons: list[str], shas: list[str], vectors: np.ndarray, gone: set[int], rng: np.random.Generator):
    """Remove ``gone``, move a photo to another person, file one photo twice in its folder, add photos to an
    existing person and a new person: what an operator does between two builds."""
    keep = [i for i in range(len(persons)) if i not in gone]
    persons, shas, vectors = [persons[i] for i in keep], [shas[i] for i in keep], vectors[keep]
    moved = int(rng.integers(len(persons)))
    persons[moved] = persons[(moved + len(persons) // 2) % len(persons)]
    twice = int(rng.integers(len(persons)))
    old = persons[0]
    new_vectors = [vectors[twice], *(vectors[persons.index(old)] + rng.normal(0, 0.03, (3, vectors.shape[1])))]
    new_vectors += list(vectors[1] + rng.normal(0, 0.2, (5, vectors.shape[1])))
    persons += [persons[twice], old, old, old, *["newcomer"] * 5]
    shas += [shas[twice], *(f"new-{len(shas)}-{k}" for k in range(8))]
    return persons, shas, np.vstack([vectors, np.array(new_vectors, dtype=np.float32)])


def test_nearest_other_cached_equals_a_computation_from_scratch(real: tuple[list[str], list[str], np.ndarray]) -> None:
    persons, shas, vectors = _synthetic(real[2], 300, seed=1)  # ~2,400 photos, as dense as real ones
    codes = _codes(persons)
    keys = photo_keys(persons, shas)
    ids, dist, first = nearest_other_cached(vectors, codes, keys)
    assert first.dirty == len(persons)  # no cache: every row computed
    _assert_same((ids, dist), nearest_other(vectors, codes), codes)
    rng = np.random.default_rng(2)
    someones_neighbour = int(ids[rng.integers(len(ids))])
    gone = {someones_neighbour, *rng.choice(len(persons), 20, replace=False).tolist()}
    was_near = int(np.isin(ids, list(gone)).sum())
    cache = first
    for step in range(3):  # the cache of an incremental run serves the next one as well
        persons, shas, vectors = _edit(persons, shas, vectors, gone if step == 0 else {step, 7 * step}, rng)
        codes = _codes(persons)
        keys = photo_keys(persons, shas)
        assert len(set(keys.tolist())) == len(persons)  # the file filed twice in one folder: two rows, two keys
        ids, dist, cache = nearest_other_cached(vectors, codes, keys, cache)
        _assert_same((ids, dist), nearest_other(vectors, codes), codes)
        assert 10 <= cache.dirty < len(persons) / 10  # the new rows, the moved one and those whose neighbour left
        if step == 0:
            assert cache.dirty >= 10 + was_near
    ids_again, dist_again, same = nearest_other_cached(vectors, codes, keys, cache)
    assert same.dirty == 0 and np.array_equal(ids_again, ids) and np.array_equal(dist_again, dist)


def test_nearest_other_cached_in_small_tiles_and_without_a_list_of_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many tiles per block, and a person too large to list its pairs (codes compared tile by tile instead)."""
    monkeypatch.setattr(knn_module, "_TILE", 4096)
    monkeypatch.setattr(knn_module, "_ROWS", 64)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(3000, 8)).astype(np.float32)
    codes = np.where(rng.random(3000) < 0.1, 0, rng.integers(1, 400, 3000))  # person 0: ~300 rows
    d = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    d[codes[:, None] == codes[None]] = np.inf
    keys = np.array([str(i).encode() for i in range(3000)], dtype="S16")
    _, _, cache = nearest_other_cached(vectors[:2900], codes[:2900], keys[:2900])
    for got in (nearest_other(vectors, codes), nearest_other_cached(vectors, codes, keys, cache)[:2]):
        _assert_same(got, (d.argmin(axis=1), d.min(axis=1).astype(np.float32)), codes)


def test_clean_with_a_cache_finds_the_same(real: tuple[list[str], list[str], np.ndarray]) -> None:
    lfw_persons, lfw_shas, lfw_vectors = real
    persons, shas, vectors = _synthetic(lfw_vectors, 150, seed=4)
    persons, shas, vectors = [*lfw_persons, *persons], [*lfw_shas, *shas], np.vstack([lfw_vectors, vectors])
    before = clean(persons, shas, vectors)
    assert before.cache.photos.dirty == len(persons) and before.cache.means.dirty == len(set(persons))
    n = len(persons)
    jordan = persons.index("michael_jordan")
    greenspan = [k for k, p in enumerate(persons) if p == "alan_greenspan"]
    persons = ["prince_charles" if k == jordan else p for k, p in enumerate(persons)]  # moved: wrong person
    persons = ["greenspan_alias" if k in greenspan[3:] else p for k, p in enumerate(persons)]  # same human
    kennedy = persons.index("edward_kennedy")
    persons += ["anne_mclellan", "edward_kennedy", "newcomer", "newcomer"]  # a duplicate; a file filed twice
    shas += [shas[0], shas[kennedy], "new-1", "new-2"]
    newcomer = lfw_vectors.mean(axis=0) + np.float32(0.02) * np.sign(lfw_vectors[:2] - lfw_vectors.mean(axis=0))
    vectors = np.vstack([vectors, vectors[0], vectors[kennedy], newcomer])
    scratch = clean(persons, shas, vectors)
    found = clean(persons, shas, vectors, cache=before.cache)
    assert found.excluded == scratch.excluded and found.suspicious == scratch.suspicious
    assert {i for i, _ in found.excluded} >= {jordan, n}
    assert ("alan_greenspan", "greenspan_alias") in [(a, b) for a, b, _, _ in found.suspicious]
    assert 4 <= found.cache.photos.dirty < n / 5 and 3 <= found.cache.means.dirty < len(set(persons)) / 2
    for level in ("photos", "means"):
        got, want = getattr(found.cache, level), getattr(scratch.cache, level)
        assert np.array_equal(got.keys, want.keys)
        assert np.allclose(got.dist, want.dist, atol=1e-5, rtol=0)
    again = clean(persons, shas, vectors, cache=found.cache)
    assert (again.cache.photos.dirty, again.cache.means.dirty) == (0, 0)
    assert again.excluded == scratch.excluded and again.suspicious == scratch.suspicious


def test_one_more_person_costs_only_their_rows(real: tuple[list[str], list[str], np.ndarray]) -> None:
    persons, shas, vectors = _synthetic(real[2], 200, seed=5)
    before = clean(persons, shas, vectors)
    extra = vectors[:10] + np.float32(0.3)
    after = clean([*persons, *["one_more"] * 10], [*shas, *(f"x{k}" for k in range(10))], np.vstack([vectors, extra]),
                  cache=before.cache)  # fmt: skip
    assert (after.cache.photos.dirty, after.cache.means.dirty) == (10, 1)


def test_cleaning_cache_file(tmp_path: Path, real: tuple[list[str], list[str], np.ndarray]) -> None:
    found = clean(*real)
    path = tmp_path / "neighbours.npz"
    assert CleaningCache.load(path, MADE_BY) is None  # missing
    found.cache.save(path, MADE_BY)
    assert [p.name for p in tmp_path.iterdir()] == ["neighbours.npz"]  # the temp file is gone
    loaded = CleaningCache.load(path, MADE_BY)
    assert loaded is not None
    for level in ("photos", "means"):
        got, want = getattr(loaded, level), getattr(found.cache, level)
        assert np.array_equal(got.keys, want.keys) and np.array_equal(got.near, want.near)
        assert np.array_equal(got.dist, want.dist) and got.keys.dtype == np.dtype("S16")
    assert clean(*real, cache=loaded).cache.photos.dirty == 0
    assert CleaningCache.load(path, "jitters 1; test describer") is None  # descriptors made otherwise
    data = path.read_bytes()
    for size in (0, 10, len(data) // 2, len(data) - 30):
        path.write_bytes(data[:size])
        assert CleaningCache.load(path, MADE_BY) is None  # truncated
    path.write_bytes(b"not a zip file at all")
    assert CleaningCache.load(path, MADE_BY) is None
