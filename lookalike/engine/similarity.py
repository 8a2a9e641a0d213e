"""Distance → similarity %: the percentile among ordinary people, and a hubness correction of the ranking.

The promise: a stranger (someone not in the catalog) sees a % that is uniform on [0, 100]. So the curve is fitted
on strangers: at build time each *reference face* (``lookalike/build/reference_faces.npz``, ~1100 ordinary
faces described like a user's photo) is matched against the catalog, and a user whose best match scores s is
shown 100·(1 − F(s)), F being the CDF of the reference faces' best scores. Fitting on the catalog's own
nearest-other-person distances (the old method) promised uniform and showed strangers 2/9/23/45/67 at the
10/25/50/75/90th percentiles on the congress catalog (studio portraits sit closer to each other than any user
photo sits to them); fitted on reference faces, strangers see 9/25/50/71/89 there, and within 3 points of the
promise on the faces and an LFW catalog (bench/quality.py; 1,739 / 1,696 / 945 strangers).

The best score is a minimum over the catalog, so it is skewed, and not always the same way (skewness −0.7 on the
LFW catalog, +0.2 on congress). One normal curve still lands within 4 points here (worst gaps congress/faces/LFW
3.7/1.6/2.9), but nothing bounds it on other catalogs; F is stored as ``erf`` on a monotone piecewise-linear
transform instead (3.7/1.6/3.0): the score at the reference quantiles ``PROBS`` maps to the matching normal
quantile, linearly in between and beyond (normal tails), so whatever the shape, the curve follows it.

Hubs, catalog photos that are many strangers' nearest face, are pushed back CSLS-style: photo y's score for a
query q is d(q, y) − α·(r_y − mean r), r_y the mean distance from y to its ``k`` nearest reference faces.
α=0.5, k=10 by measurement on congress (jitters 0; α 0/0.25/0.5/0.75/1 at k=10: hub share 0.086/0.069/0.063/
0.064/0.067, members' top-1 0.913/0.930/0.930/0.939/0.930, top-5 best at 0.5: 0.974; k 5/20/50 at α=0.5: hub
share 0.064/0.060/0.060, same top-5): the middle of a flat optimum.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from lookalike.assets import SEXES
from lookalike.files import read_npz

CALIBRATION_FILE = "calibration.json"
HUBNESS_FILE = "hubness.npz"
FORMAT = 3  # 1: mean/std of nearest-other-person distances (no hub correction); 2: one curve, none per sex
PROBS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975, 0.99)
HUB_K = 10
MIN_SEX_SAMPLES = 100  # reference faces of a sex needed for a curve of its own (the 1st/99th percentile knots)
HUB_ALPHA = 0.5


def _probit(p: float) -> float:
    """Φ⁻¹(p) by bisection on ``math.erf`` (build time only, a few dozen calls)."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Calibration:
    """F(score) = Φ(z(score)), z piecewise linear through (knots[i], z[i]) and extended by the end slopes."""

    knots: tuple[float, ...]  # reference best scores at the quantiles PROBS, strictly increasing
    z: tuple[float, ...]  # Φ⁻¹(PROBS)
    samples: int  # reference faces the curve was fitted on
    mean: float  # of the reference best scores, for the build report
    std: float
    by_sex: Mapping[str, Calibration] = field(default_factory=dict)  # "F"/"M": the curve of a sex-filtered match

    def for_sex(self, sex: str | None) -> Calibration:
        """The curve for matches restricted to persons of ``sex`` (None: everyone), fitted on reference faces of
        that sex matched against that sex only; this one if the catalog had none of them."""
        return self.by_sex.get(sex, self) if sex else self

    def similarity(self, score: float, minimum: float = 1.0) -> float:
        """Percent in [minimum, 100]: the share of ordinary people whose best match scores worse than ``score``;
        strictly decreasing in ``score`` until the clamps."""
        knots, z = self.knots, self.z
        if score <= knots[0]:
            zs = z[0] - (knots[0] - score) * (z[2] - z[0]) / (knots[2] - knots[0])
        elif score >= knots[-1]:
            zs = z[-1] + (score - knots[-1]) * (z[-1] - z[-3]) / (knots[-1] - knots[-3])
        else:
            zs = float(np.interp(score, knots, z))
        phi = 0.5 * (1.0 + math.erf(zs / math.sqrt(2.0)))
        return min(100.0, max(minimum, 100.0 * (1.0 - phi)))

    def save(self, assets: Path) -> None:
        (assets / CALIBRATION_FILE).write_text(json.dumps({"format": FORMAT, **asdict(self)}, indent=1), "utf-8")

    @classmethod
    def load(cls, assets: Path) -> Calibration:
        """Raises ValueError for a file of another format (an index built by an older version: rebuild it)."""
        path = assets / CALIBRATION_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != FORMAT:
                raise ValueError(f"format {raw.get('format', 1)}, this version reads {FORMAT}")
            by_sex = {sex: cls._curve(curve) for sex, curve in raw["by_sex"].items() if sex in SEXES}
            return replace(cls._curve(raw), by_sex=by_sex)
        except FileNotFoundError:
            raise ValueError(f"{path}: missing") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: damaged ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _curve(cls, raw: dict) -> Calibration:
        knots, z = tuple(map(float, raw["knots"])), tuple(map(float, raw["z"]))
        if len(knots) != len(z) or len(knots) < 3 or any(b <= a for a, b in itertools.pairwise(knots)):
            raise ValueError("knots must be at least 3, strictly increasing, one z each")
        return cls(knots, z, int(raw["samples"]), float(raw["mean"]), float(raw["std"]))


def fit_calibration(scores: np.ndarray) -> Calibration:
    """The curve through the reference best scores' quantiles (ties nudged apart so z stays a function)."""
    knots = np.quantile(np.asarray(scores, dtype=np.float64), PROBS)
    for i in range(1, len(knots)):
        knots[i] = max(knots[i], knots[i - 1] + 1e-6)
    z = tuple(_probit(p) for p in PROBS)
    return Calibration(tuple(map(float, knots)), z, len(scores), float(np.mean(scores)), float(np.std(scores)))


@dataclass(frozen=True)
class HubCorrection:
    """Per catalog row, what is subtracted from its distance to rank it: α·(r_y − mean r)."""

    offsets: np.ndarray  # (rows,) float32
    alpha: float
    k: int

    @property
    def max_offset(self) -> float:
        """No row's score is below its distance minus this: bounds the rows beyond an HNSW candidate window."""
        return float(self.offsets.max()) if len(self.offsets) else 0.0

    def save(self, assets: Path) -> None:
        np.savez(assets / HUBNESS_FILE, offsets=self.offsets.astype(np.float32), alpha=self.alpha, k=self.k)

    @classmethod
    def load(cls, assets: Path, rows: int) -> HubCorrection:
        npz = read_npz(assets / HUBNESS_FILE, "offsets", "alpha", "k")
        offsets = np.asarray(npz["offsets"], dtype=np.float32)
        if offsets.shape != (rows,):
            raise ValueError(f"{assets / HUBNESS_FILE}: offsets of shape {offsets.shape} for {rows} catalog photos")
        alpha, k = float(npz["alpha"]), int(npz["k"])
        return cls(offsets, alpha, k)


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * a @ b.T
    return np.maximum(d2, 0.0)


def fit(
    vectors: np.ndarray,
    reference: np.ndarray,
    row_sex: np.ndarray | None = None,
    reference_sex: np.ndarray | None = None,
    alpha: float = HUB_ALPHA,
    k: int = HUB_K,
    block: int = 4096,
) -> tuple[Calibration, HubCorrection]:
    """Hub offsets of the catalog rows and the curve of the reference faces' best (corrected) scores; given the
    ``sex_code`` of the rows and of the reference faces, a curve per sex too: its reference faces' best scores
    among the rows of that sex only, as a match filtered to it ranks them (on one curve for everyone, strangers of
    the sex with fewer persons in the catalog see lower %: their best match among fewer people is farther).

    A reference face's own distance is left out of the r_y it is scored with (leave-one-out): otherwise each
    face would make its nearest catalog photos look like hubs to itself. Blocked over the catalog, so memory is
    ``block`` × references whatever the catalog size.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    reference = np.asarray(reference, dtype=np.float32)
    k = min(k, len(reference) - 1)
    r = np.empty(len(vectors), dtype=np.float64)
    for start in range(0, len(vectors), block):
        d = np.sqrt(_sq_dist(vectors[start : start + block], reference))
        r[start : start + block] = np.partition(d, k - 1, axis=1)[:, :k].mean(axis=1)
    mean_r = float(r.mean())
    codes = range(1, len(SEXES) + 1) if row_sex is not None and reference_sex is not None else range(0)
    best = np.full((1 + len(codes), len(reference)), np.inf)  # everyone's rows, then each sex's
    for start in range(0, len(vectors), block):
        d = np.sqrt(_sq_dist(vectors[start : start + block], reference))
        near = np.partition(d, [k - 1, k], axis=1)
        kth, next_ = near[:, k - 1 : k], near[:, k : k + 1]
        r_loo = np.where(d <= kth, r[start : start + block, None] + (next_ - d) / k, r[start : start + block, None])
        scores = d - alpha * (r_loo - mean_r)
        best[0] = np.minimum(best[0], scores.min(axis=0))
        for code in codes:
            rows = row_sex[start : start + block] == code
            if rows.any():
                best[code] = np.minimum(best[code], scores[rows].min(axis=0))
    offsets = (alpha * (r - mean_r)).astype(np.float32)
    by_sex = {
        SEXES[code - 1]: fit_calibration(best[code][reference_sex == code])
        for code in codes
        if np.isfinite(best[code]).all() and (reference_sex == code).sum() >= MIN_SEX_SAMPLES
    }
    return replace(fit_calibration(best[0]), by_sex=by_sex), HubCorrection(offsets, alpha, k)
