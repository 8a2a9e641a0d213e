"""Apparent sex of a face from its 128-d descriptor, so that a woman is shown a woman's match by default (issue 19).

The descriptor is already computed in the worker, so the estimate costs one dot product: a logistic regression
whose weights ship in ``sex_model.npz`` (made by ``bench/make_sex_model.py`` from labelled LFW people that no
benchmark evaluates on). dlib's own gender network, run on the face's pixels, was measured against it and was
no more accurate, alone or combined, for a new dependency and over 100× the cost (bench/RESULTS.md, "Apparent sex").
It was trained with both sexes weighted equally, so 0.5 is the even point whatever the mix of users. Most errors
lie near 0.5: callers that act on the estimate can leave a margin there.

Usage::

    estimator = SexEstimator.load()                       # once per process
    p = estimator.female_probability(descriptors)          # (n, 128) → (n,) in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).with_name("sex_model.npz")


@dataclass(frozen=True)
class SexEstimator:
    """P(female) = σ(descriptor · weights + bias)."""

    weights: np.ndarray  # (128,) float64, in the descriptor's own units (standardisation folded in)
    bias: float

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> SexEstimator:
        """The shipped model (or another file written by ``bench/make_sex_model.py``)."""
        with np.load(path, allow_pickle=False) as npz:
            return cls(np.asarray(npz["weights"], dtype=np.float64), float(npz["bias"]))

    def female_probability(self, descriptors: np.ndarray) -> np.ndarray:
        """P(female) for each row of an (n, 128) array (a single (128,) descriptor gives shape (1,))."""
        logit = np.atleast_2d(np.asarray(descriptors, dtype=np.float64)) @ self.weights + self.bias
        return 0.5 * (1.0 + np.tanh(0.5 * logit))  # the logistic function, without overflow for large |logit|
