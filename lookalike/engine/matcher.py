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

Matches can be drawn from one sex (``Lookup.matches`` asks for the face's own apparent sex by default, see
``choose_sex``). The filter is one byte a person and the same HNSW window, started as much wider as that sex's
photos are rarer. One index per sex was the alternative: beside the index for everyone it would double the
index's memory (~1.3 GB more at a million photos), and instead of it every match among everyone would be two
searches and the assets another layout. Measured (bench/quality.py, "Apparent sex", up to a million photos): the
face's own sex costs what a match among everyone costs and finds the same best person as an exact scan; the
*other* sex, asked for explicitly, is exact up to EXACT_ROWS photos, but beyond them a near answer rather than
the nearest (a man's nearest women can lie beyond windows of thousands of men): per-sex indexes are the way if
that matters for a catalog that large.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from lookalike.assets import SEXES, AssetsError, CatalogReader, ThumbnailRef, sex_code
from lookalike.engine.hnsw import HnswIndex
from lookalike.engine.sex import MODEL_FILE, SexEstimator
from lookalike.engine.similarity import Calibration, HubCorrection

MatchSex = Literal["auto", "F", "M", "any"]  # whom a face is matched with: its own apparent sex, women, men, anyone
MATCH_SEX_CHOICES: tuple[MatchSex, ...] = ("auto", "F", "M", "any")
Sex = Literal["F", "M"]
NEIGHBOURS = 10  # best-matching persons whose sexes weigh in on a face's apparent sex
NEIGHBOUR_WEIGHT = 0.5  # their log-odds' weight against the estimator's (bench/quality.py, "Apparent sex")
SAME_PERSON = 98.0  # % (the curve for everyone) from which the best match is taken for the face's own person
EXACT_ROWS = 10_000  # photos up to which a widened window is searched exactly (bench/quality.py, "Apparent sex")


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
    sex: str | None = None  # the person's, "F" or "M"


class Matcher:
    """Loaded once per bot or CLI process from ``assets/``; ``match`` costs well under a millisecond.

    Holds the index, one person number and one hub offset per photo, one sex byte per person and the sex model's
    129 numbers; names and paths are read from the catalog for the rows a match shows (at a million photos: the
    index's ~2 GB, and ~10 MB besides)."""

    def __init__(self, assets: Path, ef_search: int = 0, min_similarity: float = 1.0) -> None:
        self.assets = assets
        self.catalog = CatalogReader(assets)
        try:
            self.index = HnswIndex.load(assets)
            self.calibration = Calibration.load(assets)
            self.hubs = HubCorrection.load(assets, self.index.size)
        except ValueError as exc:  # each loader names its file and what is wrong with it
            raise AssetsError(f"{exc}; run build_index.py --assets {assets}") from None
        if self.index.extra.get("embeddings") != self.catalog.fingerprint:
            raise AssetsError(
                f"{assets}: the index was built from other embeddings than this catalog's; "
                f"run build_index.py --assets {assets}"
            )
        if ef_search:
            self.index.set_ef(ef_search)
        self.ef_search = ef_search or self.index.params.ef_search
        self._widening = threading.Lock()
        self.min_similarity = min_similarity
        self.person_sex = self.catalog.person_sexes()  # one byte a person: what a match is filtered by
        try:
            self.sexes = SexEstimator.load()
        except (OSError, KeyError, ValueError) as exc:
            raise AssetsError(f"{MODEL_FILE}: cannot read the sex model ({exc}); reinstall lookalike") from None
        row_sex = np.bincount(self.person_sex[self.catalog.person_of], minlength=len(SEXES) + 1)
        person_sex = np.bincount(self.person_sex, minlength=len(SEXES) + 1)
        self._rows_of = dict(zip(SEXES, row_sex[1:].tolist()))  # photos of each sex: sizes the first window
        self._persons_of = dict(zip(SEXES, person_sex[1:].tolist()))

    def choose_sex(self, descriptor: np.ndarray, match_sex: MatchSex = "auto") -> tuple[Sex | None, float]:
        """Whom this face is matched with (None: everyone) and its P(female).

        "F" or "M" is that sex, "any" everyone, "auto" the face's apparent sex (``_apparent_sex``). Everyone when
        the catalog has nobody of the chosen sex.
        """
        female = float(self.sexes.female_probability(descriptor)[0])
        if match_sex == "auto":
            sex: Sex | None = self._apparent_sex(descriptor, female)
        else:
            sex = None if match_sex == "any" else match_sex
        return (sex if sex and self._persons_of[sex] else None), female

    def _apparent_sex(self, descriptor: np.ndarray, female: float) -> Sex:
        """The estimator's log-odds plus NEIGHBOUR_WEIGHT times the log-odds the NEIGHBOURS best-matching persons
        give (their count of women and men against the catalog's mix): the estimator decides where it is sure,
        the neighbours near 0.5. A face as close to a person as few strangers come to anyone (SAME_PERSON) is
        likely that person, and takes their sex: a celebrity's own photo must find them whatever it looks like.
        The neighbours come from the first HNSW window, unwidened: they vote, they are not shown."""
        ids, dists = self._nearest(descriptor, max(4 * NEIGHBOURS, 32))
        scores = dists - self.hubs.offsets[ids]
        order = np.argsort(scores, kind="stable")
        persons = list(dict.fromkeys(self.catalog.person_of[ids[order]].tolist()))[:NEIGHBOURS]
        votes = self.person_sex[persons]
        if votes[0] and self.calibration.similarity(float(scores[order[0]])) >= SAME_PERSON:
            return SEXES[votes[0] - 1]
        evidence = math.log(max(female, 1e-9) / max(1.0 - female, 1e-9))
        women, men = self._persons_of["F"], self._persons_of["M"]
        if women and men:
            for_women = int((votes == sex_code("F")).sum())
            evidence += NEIGHBOUR_WEIGHT * (
                math.log((for_women + 0.5) / (len(votes) - for_women + 0.5)) - math.log(women / men)
            )
        return "F" if evidence >= 0 else "M"

    def match(self, descriptor: np.ndarray, k: int = 5, sex: Sex | None = None) -> list[Match]:
        """The ``k`` best persons (of ``sex`` only, unless None or the catalog has nobody of it), best first, each
        once (at their best-scoring photo), with the % of the curve fitted for that sex's matches."""
        if sex and not self._persons_of[sex]:
            sex = None
        curve = self.calibration.for_sex(sex)
        return [self._match(curve, score, dist, row) for score, dist, row in self._ranked(descriptor, k, sex)]

    def _ranked(self, descriptor: np.ndarray, k: int, sex: Sex | None = None) -> list[tuple[float, float, int]]:
        """(score, distance, row) of the ``k`` best persons of ``sex`` (None: everyone), best first.

        HNSW gives the nearest rows; a row beyond the window scores at least the window's last distance minus
        the largest offset, so the window widens until the ``k`` best scores are below that bound. Filtered to a
        sex, the first window is as much wider as that sex's photos are rarer, so one query usually holds them
        (bench/RESULTS.md: the cost at a million photos).
        """
        code = sex_code(sex)
        wanted = min(k, self._persons_of[sex] if sex else self.catalog.n_persons)
        n = max(4 * k, 32)
        if sex:
            n = math.ceil(n * self.index.size / self._rows_of[sex])
        n = min(self.index.size, n)
        while True:
            ids, dists = self._nearest(descriptor, n)
            bound = float(dists[-1]) - self.hubs.max_offset
            persons = self.catalog.person_of[ids]
            if code:
                keep = self.person_sex[persons] == code
                ids, dists, persons = ids[keep], dists[keep], persons[keep]
            scores = dists - self.hubs.offsets[ids]
            best: dict[int, tuple[float, float, int]] = {}
            for i in np.argsort(scores, kind="stable"):
                if int(persons[i]) not in best:
                    best[int(persons[i])] = (float(scores[i]), float(dists[i]), int(ids[i]))
            ranked = list(best.values())[:wanted]
            if n >= self.index.size or (len(ranked) == wanted and ranked[-1][0] <= bound):
                return ranked
            n = min(self.index.size, n * 4)

    def _nearest(self, descriptor: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """HNSW's ``n`` nearest rows. Asked for more rows than efSearch, nmslib returns fewer or farther ones (720
        of 879 at efSearch 64: 425), which can hide all of a sex's persons; so on a catalog of up to EXACT_ROWS
        photos, where it costs at most a millisecond or two, efSearch is raised to the window for this query.
        Larger catalogs are searched at their efSearch, as their hub-corrected windows always were."""
        if n <= self.ef_search or self.index.size > EXACT_ROWS:
            return self.index.query(descriptor, n)
        with self._widening:
            self.index.set_ef(n)
            try:
                return self.index.query(descriptor, n)
            finally:
                self.index.set_ef(self.ef_search)

    def _match(self, curve: Calibration, score: float, distance: float, row: int) -> Match:
        photo = self.catalog.photo(row)
        person = self.catalog.person(photo.person)
        if person is None:
            raise AssetsError(f"{self.assets}: photo {photo.path} names {photo.person}, not in the catalog; rebuild")
        return Match(
            person=photo.person,
            name=person.name,
            distance=distance,
            similarity=curve.similarity(score, self.min_similarity),
            alias=person.alias,
            role=person.role,
            url=person.url,
            thumb=self.catalog.thumb(photo.sha256),
            photo=photo.path,
            sex=person.sex,
        )
