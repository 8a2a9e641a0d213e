"""The engine's lookup: a face descriptor → the top-k *persons* of the catalog with distance and similarity %.

A person's distance is the distance to their nearest photo, not to the centroid of their photos. Measured in
bench/RESULTS.md (half of each person's photos as catalog, the rest as queries): both rank the right person
first on every query (100% vs 100%), the centroid's margin over the runner-up is 5% wider (0.283 vs 0.269).
With accuracy tied, nearest photo wins on the rest: the calibration is fitted on photo-to-photo distances, so
percentages mean the same thing for one-photo and many-photo persons, and the card shows the very photo that
matched rather than an average nobody looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.index import HnswIndex
from lookalike.similarity import Calibration
from lookalike.store import Store, StoreError


@dataclass(frozen=True)
class Match:
    person: str
    name: str
    distance: float
    similarity: float
    alias: str | None
    role: str | None
    n_movies: int | None
    thumb: Path  # face crop of the matched catalog photo
    photo: str  # the matched catalog photo, relative to the photos folder


class Matcher:
    """Loaded once per bot or CLI process from ``assets/``; ``match`` costs well under a millisecond."""

    def __init__(self, assets: Path, ef_search: int = 0, min_similarity: float = 1.0) -> None:
        self.assets = assets
        self.store = Store.load(assets)
        try:
            self.index = HnswIndex.load(assets)
            self.calibration = Calibration.load(assets)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:  # nmslib raises RuntimeError on a bad file
            raise StoreError(
                f"{assets}: no usable index or calibration ({exc}); run build_index.py --assets {assets}"
            ) from exc
        if self.index.extra.get("embeddings") != self.store.fingerprint():
            raise StoreError(
                f"{assets}: the index was built from other embeddings than {assets}/embeddings.*; "
                f"run build_index.py --assets {assets}"
            )
        if ef_search:
            self.index.set_ef(ef_search)
        self.min_similarity = min_similarity

    def match(self, descriptor: np.ndarray, k: int = 5) -> list[Match]:
        """The ``k`` nearest persons, nearest first, each once (at their nearest photo)."""
        wanted = min(k, len(self.store.persons))
        n = min(self.index.size, max(4 * k, 16))
        while True:
            ids, dists = self.index.query(descriptor, n)
            best: dict[str, tuple[float, int]] = {}
            for row, dist in zip(ids, dists):
                pid = self.store.photos[row].person
                if pid not in best:
                    best[pid] = (float(dist), int(row))
            if len(best) >= wanted or n >= self.index.size:
                break
            n = min(self.index.size, n * 4)
        return [self._match(pid, dist, row) for pid, (dist, row) in list(best.items())[:wanted]]

    def _match(self, pid: str, distance: float, row: int) -> Match:
        person = self.store.persons[pid]
        photo = self.store.photos[row]
        return Match(
            person=pid,
            name=person.name,
            distance=distance,
            similarity=self.calibration.similarity(distance, self.min_similarity),
            alias=person.alias,
            role=person.role,
            n_movies=person.n_movies,
            thumb=self.assets / photo.thumb,
            photo=photo.path,
        )
