"""The engine on the real dev set: catalog = first photo of each person, queries = every other photo."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from lookalike.engine.analysis import analyze_photo
from lookalike.engine.hnsw import exact_knn
from lookalike.engine.matcher import Matcher
from lookalike.engine.similarity import PROBS, Calibration
from lookalike.errors import PhotoError
from testkit.data import BuiltCatalog, loaded_catalog
from testkit.running import lookalike_cli


@pytest.fixture(scope="module")
def matcher(catalog: BuiltCatalog) -> Matcher:
    return Matcher(catalog.assets)


@pytest.fixture(scope="module")
def query_vectors(catalog: BuiltCatalog) -> list[tuple[str, Path, np.ndarray]]:
    """The largest face of every query photo (photos where no face is found are left out and counted)."""
    found = []
    for person, paths in catalog.queries.items():
        for path in paths:
            try:
                found.append((person, path, analyze_photo(path.read_bytes()).faces[0].descriptor))
            except PhotoError:
                continue
    total = sum(len(p) for p in catalog.queries.values())
    assert len(found) >= 0.95 * total, f"faces found in only {len(found)} of {total} query photos"
    return found


def test_top1_accuracy_on_dev_set(matcher: Matcher, query_vectors: list[tuple[str, Path, np.ndarray]]) -> None:
    wrong = [(p.name, person, matcher.match(v, 1)[0].person) for person, p, v in query_vectors]
    wrong = [w for w in wrong if w[1] != w[2]]
    accuracy = 1 - len(wrong) / len(query_vectors)
    assert accuracy >= 0.95, f"top-1 accuracy {accuracy:.3f}; misses: {wrong}"


def test_hnsw_top1_equals_exact_top1(matcher: Matcher, query_vectors: list[tuple[str, Path, np.ndarray]]) -> None:
    """The HNSW window (widened as needed) ranks like an exact scan of every photo's hub-corrected score."""
    vectors = np.stack([v for _, _, v in query_vectors])
    ids, dists = exact_knn(loaded_catalog(matcher.assets).vectors, vectors, len(loaded_catalog(matcher.assets).vectors))
    exact = ids[np.arange(len(ids)), np.argmin(dists - matcher.hubs.offsets[ids], axis=1)]
    for (_, path, vector), row in zip(query_vectors, exact):
        assert matcher.match(vector, 1)[0].person == loaded_catalog(matcher.assets).photos[row].person, path


def test_matches_are_distinct_persons_best_first(matcher: Matcher, query_vectors) -> None:
    _, _, vector = query_vectors[0]
    matches = matcher.match(vector, 10)
    assert len(matches) == 10
    assert len({m.person for m in matches}) == 10
    assert [m.similarity for m in matches] == sorted((m.similarity for m in matches), reverse=True)
    store = loaded_catalog(matcher.assets)
    rows = {p.path: i for i, p in enumerate(store.photos)}
    for m in matches:  # the plain L2 distance to the matched photo, whatever the ranking's correction
        assert m.distance == pytest.approx(float(np.linalg.norm(store.vectors[rows[m.photo]] - vector)), 1e-4)
    assert all(m.thumb.read_bytes()[:2] == b"\xff\xd8" for m in matches)  # JPEG portraits


def test_same_person_scores_high_and_strangers_low(matcher: Matcher, query_vectors) -> None:
    """The right person near 100%; the runner-up near 50% (it *is* a nearest other person); the 10th far below."""
    top = [matcher.match(v, 10) for _, _, v in query_vectors]
    first, second, tenth = (np.median([m[i].similarity for m in top]) for i in (0, 1, 9))
    assert first > 95 and 20 < second < 80 and tenth < 10, (first, second, tenth)


def test_similarity_monotone_and_bounded(catalog: BuiltCatalog) -> None:
    calibration = Calibration.load(catalog.assets)
    assert 0.3 < calibration.mean < 1.0 and 0 < calibration.std < 0.3
    distances = np.linspace(0, 2, 401)
    values = [calibration.similarity(d, minimum=1.0) for d in distances]
    assert all(1.0 <= v <= 100.0 for v in values)
    assert all(a >= b for a, b in itertools.pairwise(values))
    median = calibration.knots[PROBS.index(0.5)]  # half the reference faces' best matches score below it
    assert calibration.similarity(median) == pytest.approx(50.0)
    mid = [calibration.similarity(median + k * calibration.std) for k in (-1, 0, 1)]
    assert mid[0] > mid[1] > mid[2]
    low, high = calibration.knots[0] - 0.05, calibration.knots[-1] + 0.05
    tails = [calibration.similarity(d, minimum=0.0) for d in (low, high)]
    assert 99.0 < tails[0] < 100.0 and 0.0 < tails[1] < 1.0  # beyond the knots: still strictly decreasing
    assert calibration.similarity(5.0, minimum=7.5) == 7.5


def test_cli_json_names_the_person_and_reports_bad_files(catalog: BuiltCatalog, tmp_path: Path) -> None:
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("not a photo")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    queries = [catalog.queries["obama"][0], catalog.queries["madonna"][0]]
    run = lookalike_cli(
        "match",
        "--assets",
        str(catalog.assets),
        "--top-k",
        "3",
        "--json",
        *map(str, queries),
        str(text_file),
        str(empty),
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line["photo"] for line in lines] == [*map(str, queries), str(text_file), str(empty)]
    for line, person in zip(lines, ["obama", "madonna"]):
        assert line["error"] is None
        face = line["faces"][0]
        assert len(face["box"]) == 4 and len(face["matches"]) == 3
        assert face["matches"][0]["person"] == person
        assert set(face["matches"][0]) == {"person", "name", "role", "url", "distance", "similarity", "sex"}
        assert face["match_sex"] == face["matches"][0]["sex"] == ("M" if person == "obama" else "F")
    assert lines[2] == {"photo": str(text_file), "error": "not_an_image", "faces": []}
    assert lines[3]["error"] == "not_an_image"


def test_cli_text_output_and_missing_file(catalog: BuiltCatalog, tmp_path: Path) -> None:
    query = catalog.queries["george_w_bush"][0]
    run = lookalike_cli("match", "--assets", str(catalog.assets), str(query), str(tmp_path / "missing.jpg"))
    assert run.returncode == 1
    assert "George W Bush" in run.stdout.splitlines()[2]
    assert "%" in run.stdout
    assert "missing.jpg: cannot read" in run.stderr


def test_cli_without_assets_says_what_to_run(tmp_path: Path) -> None:
    run = lookalike_cli("match", "--assets", str(tmp_path), "x.jpg")
    assert run.returncode == 2
    assert "build_embeddings.py" in run.stderr


def test_cli_blend_writes_an_animation_of_the_best_match(catalog: BuiltCatalog, tmp_path: Path) -> None:
    selfie, out = str(catalog.queries["madonna"][1]), tmp_path / "me.gif"
    run = lookalike_cli("blend", "--assets", str(catalog.assets), "--out", str(out), selfie)
    assert run.returncode == 0, run.stderr
    assert "you → Madonna" in run.stdout and out.read_bytes()[:6] == b"GIF89a"
    bad = lookalike_cli("blend", "--assets", str(catalog.assets), "--out", str(tmp_path / "x.avi"), selfie)
    assert bad.returncode == 2 and ".mp4 or .gif" in bad.stderr
