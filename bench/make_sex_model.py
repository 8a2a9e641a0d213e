"""Make ``lookalike/engine/sex_model.npz``: a logistic regression from a face descriptor to P(female).

Trained on the LFW people of ``make_reference_faces.split()["reference"]`` (sex labels from
``../shared/lfw/sex.csv``): the split that ``bench/quality.py`` and ``bench/sex_classifier.py`` never evaluate on,
so every figure they report is on people the model has never seen. Every photo of those people is described the
way the bot describes a user's photo (``analyze_photo``, jitters=0; the face nearest the centre, because LFW
centres the labelled person), cached under /tmp/quality_cache like the other benchmarks.

Each person weighs the same whatever their number of photos (one person with 500 photos would otherwise teach
the model that person), and women and men weigh the same in all (women are ~25% of LFW): the probability is
then even at 0.5 rather than leaning towards the majority. The L2 penalty is chosen by person-disjoint
cross-validation inside the training people; the fit is Newton's method on standardised descriptors, folded
back into descriptor units, so the file is deterministic (no seed) and holds 129 numbers.

    python -m bench.make_sex_model
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np

from bench.make_reference_faces import LFW, ROOT, describe, lfw_people, share, split
from lookalike.engine.sex import MODEL_FILE, SexEstimator

PENALTIES = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)  # L2 strength (× mean loss per sample)
FOLDS = 5


@dataclass(frozen=True)
class Labelled:
    """Descriptors with their photo, person, label and sample weight; photos without a face are left out."""

    vectors: np.ndarray  # (n, 128) float32
    path: np.ndarray  # (n,) str
    person: np.ndarray  # (n,) str
    female: np.ndarray  # (n,) bool
    weight: np.ndarray  # (n,) float64: each person sums to 1, then each sex to the same total

    def subset(self, keep: np.ndarray) -> Labelled:
        return labelled(self.vectors[keep], self.path[keep], self.person[keep], self.female[keep])


def lfw_sex() -> dict[str, bool]:
    """LFW folder name → is female, from sex.csv."""
    with open(LFW / "sex.csv", encoding="utf-8") as f:
        return {row["name"]: row["sex"] == "F" for row in csv.DictReader(f)}


def labelled(vectors: np.ndarray, path: np.ndarray, person: np.ndarray, female: np.ndarray) -> Labelled:
    """Rows with a face (no NaN) of the given arrays, weighted: each person sums to 1, then each sex alike."""
    found = ~np.isnan(vectors).any(axis=1)
    vectors, path, person, female = vectors[found], path[found], person[found], female[found]
    _, inverse, counts = np.unique(person, return_inverse=True, return_counts=True)
    weight = 1.0 / counts[inverse]
    for sex in (True, False):
        weight[female == sex] /= weight[female == sex].sum()
    return Labelled(vectors, path, person, female, weight)


def lfw_labelled(names: list[str]) -> Labelled:
    """Every photo of ``names`` (those with a sex label), described; photos without a face dropped."""
    people, sexes = lfw_people(), lfw_sex()
    pairs = [(name, path) for name in names if name in sexes for path in people[name]]
    paths = [path for _, path in pairs]
    person = np.array([name for name, _ in pairs])
    return labelled(describe(paths, "centre"), np.array(paths, dtype=str), person, np.array([sexes[n] for n in person]))


def fit(data: Labelled, penalty: float) -> SexEstimator:
    """Weighted L2-penalised logistic regression by Newton's method (convex: converges in ~10 steps)."""
    mean = np.average(data.vectors, axis=0, weights=data.weight).astype(np.float64)
    std = np.sqrt(np.average((data.vectors - mean) ** 2, axis=0, weights=data.weight))
    x = np.hstack([(data.vectors - mean) / std, np.ones((len(data.vectors), 1))])
    y, w = data.female.astype(np.float64), data.weight / data.weight.sum()
    ridge = np.full(x.shape[1], penalty / len(x))
    ridge[-1] = 0.0  # the intercept is not penalised
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = 0.5 * (1.0 + np.tanh(0.5 * (x @ beta)))
        gradient = x.T @ (w * (p - y)) + ridge * beta
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(ridge)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    weights = beta[:-1] / std
    return SexEstimator(weights, float(beta[-1] - weights @ mean))


def weighted_log_loss(estimator: SexEstimator, data: Labelled) -> float:
    p = np.clip(estimator.female_probability(data.vectors), 1e-12, 1 - 1e-12)
    losses = -np.where(data.female, np.log(p), np.log(1 - p))
    return float(np.average(losses, weights=data.weight))


def choose_penalty(data: Labelled) -> tuple[float, dict[float, float]]:
    """The penalty with the lowest balanced log loss over person-disjoint folds (by name hash, no seed)."""
    fold = np.array([int(share(p) * 1000) % FOLDS for p in data.person])
    losses = {}
    for penalty in PENALTIES:
        held_out = [
            weighted_log_loss(fit(data.subset(fold != k), penalty), data.subset(fold == k)) for k in range(FOLDS)
        ]
        losses[penalty] = float(np.mean(held_out))
    return min(losses, key=losses.__getitem__), losses


def main() -> int:
    data = lfw_labelled(split()["reference"])
    penalty, losses = choose_penalty(data)
    print("cross-validated balanced log loss by penalty:", {k: round(v, 4) for k, v in losses.items()})
    model = fit(data, penalty)
    np.savez(
        MODEL_FILE,
        weights=model.weights,
        bias=np.float64(model.bias),
        about=np.array(
            f"bench/make_sex_model.py: logistic regression, L2 penalty {penalty}, on {len(data.vectors)} photos of "
            f"{len(set(data.person))} LFW people ({int(data.female.sum())} photos of women), "
            'make_reference_faces.split()["reference"]; descriptors as analyze_photo, jitters=0'
        ),
    )
    people = len(set(data.person))
    print(f"{MODEL_FILE.relative_to(ROOT)}: penalty {penalty}, {len(data.vectors)} photos of {people} people")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
