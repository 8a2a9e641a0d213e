"""The engine's lookup: a face descriptor → the top-k *persons* of the catalog with distance and similarity %.

A person's distance is the distance to their nearest photo, not to the centroid of their photos. Measured in
bench/RESULTS.md (half of each person's photos as catalog, the rest as queries): both rank the right person
first on every query (100% vs 100%), the centroid's margin over the runner-up is 5% wider (0.283 vs 0.269).
With accuracy tied, nearest photo wins on the rest: the calibration is fitted on photo-to-photo distances, so
percentages mean the same thing for one-photo and many-photo persons, and the card shows the very photo that
matched rather than an average nobody looks like.

Ranking is by the hub-corrected score (``similarity.HubCorrection``): distance minus the photo's offset. On the
congress catalog it cuts the share of strangers sent to the 10 most frequent answers from 0.085 to 0.061, and
costs no identification: members' news photos top-1 0.939 either way (bench/quality.py; built at jitters 0:
0.913 → 0.930). ``distance`` stays the plain L2 distance to the matched photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.assets import AssetsError, CatalogReader, ThumbnailRef
from lookalike.engine.hnsw import HnswIndex
from lookalike.engine.similarity import Calibration, HubCorrection


@dataclass(frozen=True)
class Match:
    person: str
    name: str
    distance: float
    similarity: float
    alias: str | None
    role: str | None
    url: str | None  # the person's page from catalog.json, if it gives one
    thumb: ThumbnailRef  # portrait of the matched catalog photo (read when drawn)
    photo: str  # the matched catalog photo, relative to the photos folder


class Matcher:
    """Loaded once per bot or CLI process from ``assets/``; ``match`` costs well under a millisecond.

    Holds the index, one person number and one hub offset per photo; names and paths are read from the catalog
    for the rows a match shows (at a million photos: the index's ~2 GB, and ~10 MB besides)."""

    def __init__(self, assets: Path, ef_search: int = 0, min_similarity: float = 1.0) -> None:
        self.assets = assets
        self.catalog = CatalogReader(assets)
        try:
            self.index = HnswIndex.load(assets)
            self.calibration = Calibration.load(assets)
            self.hubs = HubCorrection.load(assets, self.index.size)
        except (OSError, KeyError, ValueError, RuntimeError) as exc:  # nmslib raises RuntimeError on a bad file
            raise AssetsError(
                f"{assets}: no usable index or calibration ({exc}); run build_index.py --assets {assets}"
            ) from exc
        if self.index.extra.get("embeddings") != self.catalog.fingerprint:
            raise AssetsError(
                f"{assets}: the index was built from other embeddings than this catalog's; "
                f"run build_index.py --assets {assets}"
            )
        if ef_search:
            self.index.set_ef(ef_search)
        self.min_similarity = min_similarity

    def match(self, descriptor: np.ndarray, k: int = 5) -> list[Match]:
        """The ``k`` best persons, best first, each once (at their best-scoring photo).

        HNSW gives the nearest rows; a row beyond the window scores at least the window's last distance minus
        the largest offset, so the window widens until the ``k`` best scores are below that bound.
        """
        wanted = min(k, self.catalog.n_persons)
        n = min(self.index.size, max(4 * k, 32))
        while True:
            ids, dists = self.index.query(descriptor, n)
            scores = dists - self.hubs.offsets[ids]
            best: dict[int, tuple[float, float, int]] = {}
            for i in np.argsort(scores, kind="stable"):
                person = int(self.catalog.person_of[ids[i]])
                if person not in best:
                    best[person] = (float(scores[i]), float(dists[i]), int(ids[i]))
            ranked = list(best.values())[:wanted]
            bound = float(dists[-1]) - self.hubs.max_offset
            if n >= self.index.size or (len(ranked) == wanted and ranked[-1][0] <= bound):
                break
            n = min(self.index.size, n * 4)
        return [self._match(score, dist, row) for score, dist, row in ranked]

    def _match(self, score: float, distance: float, row: int) -> Match:
        photo = self.catalog.photo(row)
        person = self.catalog.person(photo.person)
        if person is None:
            raise AssetsError(f"{self.assets}: photo {photo.path} names {photo.person}, not in the catalog; rebuild")
        return Match(
            person=photo.person,
            name=person.name,
            distance=distance,
            similarity=self.calibration.similarity(score, self.min_similarity),
            alias=person.alias,
            role=person.role,
            url=person.url,
            thumb=self.catalog.thumb(photo.sha256),
            photo=photo.path,
        )
