"""Index build: embeddings → HNSW graph checked against exact search, plus the similarity calibration."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lookalike import similarity
from lookalike.index import HnswIndex, HnswParams, recall_at_1
from lookalike.store import Store, StoreError

MIN_RECALL = 0.99


@dataclass(frozen=True)
class IndexReport:
    photos: int
    persons: int
    recall: float
    build_seconds: float
    calibration: similarity.Calibration
    saved: bool


def build_index(assets: Path, params: HnswParams = HnswParams(), force: bool = False) -> IndexReport:
    """Build and check the index; save it with the calibration unless recall@1 < 0.99 (then only with ``force``)."""
    store = Store.load(assets)
    if len(store.persons) < 2:
        raise StoreError(f"{assets}: {len(store.persons)} person(s) with usable photos; need at least 2")
    started = time.perf_counter()
    index = HnswIndex.build(store.vectors, params)
    seconds = time.perf_counter() - started
    recall = recall_at_1(index, store.vectors)
    calibration = similarity.fit(store.vectors, store.person_rows())
    saved = recall >= MIN_RECALL or force
    if saved:
        index.save(assets, {"recall_at_1": recall, "embeddings": store.fingerprint()})
        calibration.save(assets)
    return IndexReport(len(store.photos), len(store.persons), recall, seconds, calibration, saved)
