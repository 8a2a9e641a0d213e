"""Index build: embeddings → HNSW graph checked against exact search, plus the similarity calibration (for
everyone, and per sex for matches filtered to one) and the hub offsets, fitted on the shipped reference faces
(``reference_faces.npz``, see its README)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.assets import AssetsError, CatalogReader, sex_code
from lookalike.engine import similarity
from lookalike.engine.hnsw import HnswIndex, HnswParams, recall_at_1

MIN_RECALL = 0.99
REFERENCE_FACES = Path(__file__).with_name("reference_faces.npz")


@dataclass(frozen=True)
class IndexReport:
    photos: int
    persons: int
    recall: float
    build_seconds: float
    calibration: similarity.Calibration
    saved: bool
    calibration_seconds: float = 0.0


def reference_faces(path: Path = REFERENCE_FACES) -> np.ndarray:
    """The ordinary faces the calibration and hub offsets are fitted on, as float32 (stored as float16)."""
    return np.asarray(_reference(path, "vectors"), dtype=np.float32)


def reference_sexes(path: Path = REFERENCE_FACES) -> np.ndarray:
    """Each reference face's ``sex_code``, from its LFW person's label."""
    return np.array([sex_code(s) for s in _reference(path, "sex").tolist()], np.uint8)


def _reference(path: Path, name: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return npz[name]
    except (OSError, KeyError, ValueError) as exc:
        raise AssetsError(f"{path}: cannot read the reference faces ({exc}); reinstall lookalike") from exc


def build_index(assets: Path, params: HnswParams = HnswParams(), force: bool = False) -> IndexReport:
    """Build and check the index; save it with the calibration and hub offsets unless recall@1 < 0.99 (then only
    with ``force``)."""
    catalog = CatalogReader(assets)
    try:
        row_sex = catalog.person_sexes()[catalog.person_of]  # 1 byte a row while fitting
    finally:
        catalog.close()  # only its counts, fingerprint, vectors and sexes are needed
    if catalog.n_persons < 2:
        raise AssetsError(f"{assets}: {catalog.n_persons} person(s) with usable photos; need at least 2")
    vectors = catalog.vectors()
    started = time.perf_counter()
    index = HnswIndex.build(vectors, params)
    seconds = time.perf_counter() - started
    recall = recall_at_1(index, vectors)
    started = time.perf_counter()
    calibration, hubs = similarity.fit(vectors, reference_faces(), row_sex, reference_sexes())
    calibration_seconds = time.perf_counter() - started
    saved = recall >= MIN_RECALL or force
    if saved:
        index.save(assets, {"recall_at_1": recall, "embeddings": catalog.fingerprint})
        calibration.save(assets)
        hubs.save(assets)
    return IndexReport(catalog.n_photos, catalog.n_persons, recall, seconds, calibration, saved, calibration_seconds)
