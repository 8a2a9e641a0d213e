"""Distance → similarity %: the percentile of the distance among "nearest other person" distances.

Fitted as a normal distribution (mean μ, std σ) of the distance from each catalog face to the nearest photo of
a *different* person; a user at distance d gets 100·(1 − Φ((d − μ)/σ)): the share of catalog look-alike pairs
that are farther apart than the user and the match. Φ is computed with ``math.erf``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    mean: float
    std: float
    samples: int

    def similarity(self, distance: float, minimum: float = 1.0) -> float:
        """Percent in [minimum, 100], strictly decreasing in distance until the clamps."""
        z = (distance - self.mean) / self.std
        phi = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
        return min(100.0, max(minimum, 100.0 * (1.0 - phi)))

    def save(self, assets: Path) -> None:
        (assets / CALIBRATION_FILE).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, assets: Path) -> Calibration:
        raw = json.loads((assets / CALIBRATION_FILE).read_text(encoding="utf-8"))
        return cls(float(raw["mean"]), float(raw["std"]), int(raw["samples"]))


def nearest_other_person(vectors: np.ndarray, persons: np.ndarray, block: int = 2048) -> np.ndarray:
    """For each vector, the exact L2 distance to the nearest vector of another person (blocked to bound memory)."""
    sq = np.einsum("ij,ij->i", vectors, vectors)
    out = np.empty(len(vectors), dtype=np.float32)
    for start in range(0, len(vectors), block):
        chunk = vectors[start : start + block]
        d2 = sq[start : start + block, None] + sq[None, :] - 2.0 * chunk @ vectors.T
        d2[persons[start : start + block, None] == persons[None, :]] = np.inf
        out[start : start + block] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def fit(vectors: np.ndarray, persons: np.ndarray) -> Calibration:
    """Fit μ and σ on the nearest-other-person distances of the catalog (needs at least two persons)."""
    if len(np.unique(persons)) < 2:
        raise ValueError("calibration needs photos of at least two different persons")
    distances = nearest_other_person(vectors.astype(np.float32), persons)
    return Calibration(float(distances.mean()), float(max(distances.std(), 1e-3)), len(distances))
