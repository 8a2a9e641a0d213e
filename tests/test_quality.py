"""Does the similarity % keep its promise to strangers, and does the hub correction spread their answers?

CI-sized version of bench/quality.py: the tests' faces catalog (first photo of each of 45 people) against
LFW strangers who are never reference faces (``bench/make_reference_faces.split``), described like a user's photo.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import BuiltCatalog

from bench.make_reference_faces import LFW, lfw_people, share, split
from lookalike.assets import AssetsError
from lookalike.build.build_index import REFERENCE_FACES, reference_faces
from lookalike.engine.analysis import analyze_photo
from lookalike.engine.hnsw import exact_knn
from lookalike.engine.matcher import Matcher
from lookalike.engine.similarity import CALIBRATION_FILE
from lookalike.errors import PhotoError
from testkit.data import loaded_catalog

STRANGERS = 160
LEVELS = (10, 25, 50, 75, 90)
TOLERANCE = 10.0  # points; 160 strangers leave ~4 points of sampling noise at the median (bench: ±5 on 1,700)


@pytest.fixture(scope="module")
def strangers() -> np.ndarray:
    if not LFW.is_dir():
        pytest.skip(f"{LFW} not found: the quality tests read strangers from ../shared/lfw")
    photos = lfw_people()
    vectors = []
    for name in sorted(split()["strangers"], key=share)[:STRANGERS]:
        try:
            vectors.append(analyze_photo(photos[name][0].read_bytes()).faces[0].descriptor)
        except PhotoError:
            continue
    assert len(vectors) >= 0.95 * STRANGERS
    return np.stack(vectors)


@pytest.fixture(scope="module")
def matcher(catalog: BuiltCatalog) -> Matcher:
    return Matcher(catalog.assets)


def _gap(shown: list[float]) -> float:
    return max(abs(float(np.percentile(shown, p)) - p) for p in LEVELS)


def _old_similarity(matcher: Matcher, distances: np.ndarray) -> np.ndarray:
    """The method before reference faces: a normal curve on the catalog's nearest-other-person distances."""
    from scipy.special import erf

    store = loaded_catalog(matcher.assets)
    vectors, persons = store.vectors, np.array([p.person for p in store.photos])
    ids, dists = exact_knn(vectors, vectors, len(vectors))
    nearest = np.array([d[persons[i] != persons[row]][0] for row, (i, d) in enumerate(zip(ids, dists))])
    z = (distances - nearest.mean()) / nearest.std()
    return np.clip(100.0 * (1.0 - 0.5 * (1.0 + erf(z / np.sqrt(2.0)))), 1.0, 100.0)


def test_strangers_see_uniform_percentages(matcher: Matcher, strangers: np.ndarray) -> None:
    """The % shown to strangers is uniform on [0, 100]: its percentiles sit on the promise (the old method's
    do not: it fits the catalog's own distances, not where strangers land)."""
    shown = [matcher.match(q, 1)[0].similarity for q in strangers]
    _, nearest = exact_knn(loaded_catalog(matcher.assets).vectors, strangers, 1)
    old = _old_similarity(matcher, nearest[:, 0])
    assert _gap(shown) <= TOLERANCE, [round(float(np.percentile(shown, p))) for p in LEVELS]
    assert _gap(list(old)) > TOLERANCE


def test_hub_correction_spreads_answers(matcher: Matcher, strangers: np.ndarray) -> None:
    """Fewer strangers are sent to the most frequent answers than by plain nearest photo."""
    corrected = Counter(matcher.match(q, 1)[0].person for q in strangers)
    ids, _ = exact_knn(loaded_catalog(matcher.assets).vectors, strangers, 1)
    plain = Counter(loaded_catalog(matcher.assets).photos[i].person for i in ids[:, 0])
    top = 10
    assert sum(n for _, n in corrected.most_common(top)) <= sum(n for _, n in plain.most_common(top))
    assert max(corrected.values()) <= max(plain.values())


def test_reference_faces_ship_as_descriptors() -> None:
    with np.load(REFERENCE_FACES, allow_pickle=False) as npz:
        assert list(npz) == ["vectors", "sex"] and npz["vectors"].dtype == np.float16
        assert set(npz["sex"].tolist()) <= {"F", "M", ""} and (npz["sex"] == "F").sum() > 250
    vectors = reference_faces()
    assert vectors.shape[0] >= 1000 and vectors.shape[1] == 128 and np.isfinite(vectors).all()


def test_old_calibration_file_says_rebuild(catalog: BuiltCatalog, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(catalog.assets, assets)
    (assets / CALIBRATION_FILE).write_text(json.dumps({"mean": 0.5, "std": 0.05, "samples": 45}), encoding="utf-8")
    with pytest.raises(AssetsError, match=r"format 1.*run build_index\.py"):
        Matcher(assets)
    (assets / "hubness.npz").unlink()
    with pytest.raises(AssetsError, match=r"run build_index\.py"):
        Matcher(assets)
