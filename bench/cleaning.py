"""Catalog cleaning on LFW (``../shared/lfw``): where the limits sit, false flags on genuine photos, planted errors
caught, and speed on a real catalog.

    python -m bench.cleaning [--quick] [--workers 2]

Every LFW photo is described as ``build_embeddings`` describes a catalog photo (``describe_photo``, jitters=0,
quality rules on; ~20 min on 2 cores the first time; cached by ``bench/make_reference_faces.py``'s ``describe``).
Then:

- the distances the limits of ``lookalike.build.clean`` are set against: every pair of photos of one person and of
  different people, copies of photos (re-encoded, resized, cropped, mirrored: described afresh), and the pairs closer
  than DUPLICATE_LIMIT;
- the wrong-person score against its variants (unscaled; median distance instead of the distance to the mean),
  each at the limit that flags as many genuine photos as the shipped one, on LFW as it is and with planted photos;
- ``clean`` on LFW as it is: genuine photos of people with ≥3 photos that get left out are false flags (LFW has a
  few real label errors and duplicates of its own: they count as false flags here);
- ``clean`` on LFW with planted errors, on disjoint random people (seeded): a photo moved from person B to person A
  (wrong person), a photo of a person with ≥3 photos copied under another person (duplicate), people split under two
  names (same human: ≥4 photos split in halves, and 2–3 photos split 1 + the rest).

Times at 100k and 1M photos: ``bench/cleaning_scale.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from bench.common import Section, median, percentile, table, timed
from bench.make_reference_faces import describe
from lookalike.build.clean import (
    DISAGREE,
    DUPLICATE,
    DUPLICATE_LIMIT,
    PAIR_LIMIT,
    SAME_HUMAN,
    WRONG_LIMIT,
    WRONG_PERSON,
    clean,
)
from testkit.data import LFW

PLANTS = 100  # of each kind
COPIES = 96  # LFW photos copied each way (24 with --quick)
SCORE_PLANTS = 2000  # B's photo among A's, for the wrong-person score's variants (arithmetic only)
COPY_KINDS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "re-encoded (JPEG q60)": lambda im: im,
    "shrunk to 60%": lambda im: im.resize((round(im.width * 0.6), round(im.height * 0.6)), Image.Resampling.LANCZOS),
    "enlarged 2×": lambda im: im.resize((im.width * 2, im.height * 2), Image.Resampling.LANCZOS),
    "cropped 8% (4% each side)": lambda im: im.crop(
        (round(im.width * 0.04), round(im.height * 0.04), round(im.width * 0.96), round(im.height * 0.96))
    ),
    "mirrored": ImageOps.mirror,
}


def _describe(data: bytes) -> np.ndarray:
    """A catalog photo's descriptor (jitters 0), NaN if the build would skip the photo."""
    from lookalike.build.describe import describe_photo

    described = describe_photo(data, 0)
    return np.full(128, np.nan, np.float32) if described.vector is None else described.vector


def describe_all(photos: list[bytes], workers: int) -> list[np.ndarray]:
    """``_describe`` of photos that are no files (copies made here, never cached), on ``workers`` spawned
    processes with the models loaded once each."""
    from lookalike.engine.analysis import analyzer

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=analyzer) as pool:
        return list(pool.map(_describe, photos, chunksize=8))


def lfw(workers: int) -> tuple[list[str], list[str], list[str], np.ndarray, int]:
    """Photos with a usable face: persons, sha256s, paths (relative to LFW), descriptors; and how many photos in all."""
    paths = sorted(str(p) for p in LFW.glob("*/*.jpg"))
    vectors = describe([Path(p) for p in paths], "catalog", 0, workers)
    ok = ~np.isnan(vectors).any(axis=1)
    kept = [p for p, k in zip(paths, ok) if k]
    persons = [Path(p).parent.name for p in kept]
    shas = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in kept]
    return persons, shas, [str(Path(p).relative_to(LFW)) for p in kept], vectors[ok], len(paths)


def pair_distances(persons: list[str], vectors: np.ndarray, block: int = 512) -> tuple[np.ndarray, np.ndarray, list]:
    """Distances of every pair of photos: (one person's pairs, different people's pairs, [(i, j, d) closer than
    DUPLICATE_LIMIT]), in blocks of rows (the whole matrix of 5,596 photos would be 125 MB at once)."""
    codes = np.unique(np.array(persons), return_inverse=True)[1]
    sq = np.einsum("ij,ij->i", vectors, vectors)
    same, other, close = [], [], []
    for b0 in range(0, len(vectors), block):
        rows = np.arange(b0, min(len(vectors), b0 + block))
        d2 = sq[rows, None] + sq[None, :] - 2.0 * (vectors[rows] @ vectors.T)
        d = np.sqrt(np.maximum(d2, 0.0))
        upper = np.arange(len(vectors))[None, :] > rows[:, None]  # each pair once
        one = codes[rows, None] == codes[None, :]
        same.append(d[upper & one])
        other.append(d[upper & ~one])
        for i, j in zip(*np.nonzero(upper & (d < DUPLICATE_LIMIT))):
            a, b = int(rows[i]), int(j)
            close.append((a, b, float(np.linalg.norm(vectors[a] - vectors[b]))))
    return np.concatenate(same), np.concatenate(other), close


def copies(paths: list[str], vectors: np.ndarray, count: int, workers: int) -> list[list[str]]:
    """``count`` random LFW photos copied each way of COPY_KINDS, described afresh: distance to the original."""
    chosen = np.random.default_rng(2).choice(len(paths), size=min(count, len(paths)), replace=False)
    jobs: list[bytes] = []
    for i in chosen:
        with Image.open(LFW / paths[i]) as im:
            photo = im.convert("RGB")
        for change in COPY_KINDS.values():
            out = io.BytesIO()
            change(photo).save(out, "JPEG", quality=60 if change is COPY_KINDS["re-encoded (JPEG q60)"] else 90)
            jobs.append(out.getvalue())
    described = np.stack(describe_all(jobs, workers)).reshape(len(chosen), len(COPY_KINDS), -1)
    rows = []
    for k, kind in enumerate(COPY_KINDS):
        found = ~np.isnan(described[:, k]).any(axis=1)
        d = np.linalg.norm(described[found, k] - vectors[chosen[found]], axis=1)
        beyond = int((d >= DUPLICATE_LIMIT).sum())
        rows.append([kind, f"{found.sum()} / {len(chosen)}", f"{median(list(d)):.3f}", f"{d.max():.3f}", beyond])
    return rows


def limits(persons: list[str], labels: list[str], vectors: np.ndarray, quick: bool, workers: int) -> str:
    """Where the limits sit: distances between LFW photos of one person, of different people, and of copies."""
    same, other, close = pair_distances(persons, vectors)
    rows = [
        [
            "one person's photos",
            f"{len(same):,}",
            f"{median(list(same)):.3f}",
            f"{percentile(same, 1):.3f}",
            f"{percentile(same, 99):.3f}",
            "–",
            f"{100 * (same > PAIR_LIMIT).mean():.1f}%",
        ],
        [
            "different people",
            f"{len(other):,}",
            f"{median(list(other)):.3f}",
            f"{percentile(other, 1):.3f}",
            f"{percentile(other, 99):.3f}",
            f"{percentile(other, 1e-4):.3f}",
            f"{100 * (other > PAIR_LIMIT).mean():.1f}%",
        ],
    ]
    text = (
        table(
            ["L2 distance", "pairs", "median", "1st pct", "99th pct", "millionth", f"> PAIR_LIMIT {PAIR_LIMIT}"],
            rows,
        )
        + f"\n\nCopies of a photo ({COPIES // 4 if quick else COPIES} random LFW photos, each copy described afresh; "
        "distance to the original):\n\n"
        + table(
            ["copy", "face found", "median", "max", f"≥ DUPLICATE_LIMIT {DUPLICATE_LIMIT}"],
            copies(labels, vectors, COPIES // 4 if quick else COPIES, workers),
        )
    )
    across = [f"{labels[a]} / {labels[b]}: {d:.2f}" for a, b, d in close if persons[a] != persons[b]]
    return (
        text
        + f"\n\nPairs of LFW photos closer than DUPLICATE_LIMIT ({DUPLICATE_LIMIT}): {len(close) - len(across)} of "
        f"one person's photos, {len(across)} of different people" + (f" ({'; '.join(across)})." if across else ".")
    )


def wrong_person_scores(persons: list[str], vectors: np.ndarray) -> str:
    """The shipped wrong-person score (distance to the mean of the person's other photos, scaled by sqrt(k/(k+1)))
    against its variants, each at the limit that flags the same share of genuine photos as the shipped limit does:
    genuine photos flagged among 3-photo people and the rest, and planted photos caught (B's photo among A's).
    One pass, no photo removed (the shipped rule then scores the rest again without the worst)."""
    rows_of: dict[str, list[int]] = {}
    for i, p in enumerate(persons):
        rows_of.setdefault(p, []).append(i)
    people = [p for p, rows in rows_of.items() if len(rows) >= 3]

    def scores(others: np.ndarray, photo: np.ndarray) -> dict[str, float]:
        k = len(others)
        to_mean = float(np.linalg.norm(photo - others.mean(axis=0)))
        return {
            "distance to the mean of the others × sqrt(k/(k+1)) (shipped)": np.sqrt(k / (k + 1)) * to_mean,
            "distance to the mean of the others, unscaled": to_mean,
            "median distance to each other photo": float(np.median(np.linalg.norm(others - photo, axis=1))),
        }

    genuine: dict[str, list[float]] = {}
    three: list[bool] = []
    for p in people:
        v = vectors[rows_of[p]]
        for j in range(len(v)):
            for name, score in scores(np.delete(v, j, axis=0), v[j]).items():
                genuine.setdefault(name, []).append(score)
            three.append(len(v) == 3)
    rng = np.random.default_rng(3)
    planted: dict[str, list[float]] = {}
    everyone = list(rows_of)
    for _ in range(SCORE_PLANTS):
        a = people[rng.integers(len(people))]
        b = everyone[rng.integers(len(everyone))]
        if a != b:
            for name, score in scores(vectors[rows_of[a]], vectors[rng.choice(rows_of[b])]).items():
                planted.setdefault(name, []).append(score)
    is3 = np.array(three)
    shipped = next(iter(genuine))
    share = float((np.array(genuine[shipped]) > WRONG_LIMIT).mean())
    rows = []
    for name, values in genuine.items():
        g = np.array(values)
        limit = WRONG_LIMIT if name == shipped else float(np.quantile(g, 1 - share))
        flagged = g > limit
        rows.append(
            [
                name,
                f"{limit:.3f}",
                f"{100 * flagged.mean():.2f}%",
                f"{100 * flagged[is3].mean():.2f}% of {is3.sum()}",
                f"{100 * flagged[~is3].mean():.2f}% of {(~is3).sum()}",
                f"{100 * (np.array(planted[name]) > limit).mean():.1f}% of {len(planted[name])}",
            ]
        )
    return table(
        [
            "wrong-person score",
            "limit",
            "genuine flagged (≥3 photos)",
            "… of 3-photo people",
            "… of people with ≥4",
            "planted caught",
        ],
        rows,
    ) + (
        "\n\nOne pass over LFW as it is (its own label errors count as genuine), no photo removed; each variant's "
        f"limit flags the same share of genuine photos as WRONG_LIMIT ({WRONG_LIMIT}) does with the shipped score. "
        "Planted: a random photo of another person B scored among the photos of A."
    )


def genuine(persons: list[str], shas: list[str], labels: list[str], vectors: np.ndarray) -> tuple[str, list[str]]:
    """LFW as it is: what cleaning leaves out and reports (a list), and the counts (table rows)."""
    result, seconds = timed(clean, persons, shas, vectors, labels)
    size = Counter(persons)
    big = sum(1 for p in persons if size[p] >= 3)
    flagged = [(i, why) for i, why in result.excluded if size[persons[i]] >= 3]
    kinds = Counter(why.split(":")[0] for _, why in result.excluded)
    pairs = [s for s in result.suspicious if s[0] != s[1]]
    two = [s for s in result.suspicious if s[0] == s[1]]
    n_two = sum(1 for c in size.values() if c == 2)
    found = [f"- flagged {labels[i]}: {why}" for i, why in flagged]
    found += [f"- left out {labels[i]}: {why}" for i, why in result.excluded if size[persons[i]] < 3]
    found += [f"- same human? {a} / {b}: {d:.2f}" for a, b, d, _ in pairs]
    return "\n".join(found), [
        f"| LFW as it is | genuine photos of people with ≥3 photos left out | **{len(flagged)} / {big} = "
        f"{100 * len(flagged) / big:.2f}%** |",
        f"| | left out, all people (by reason) | {dict(kinds)} |",
        f"| | 2-photo people whose photos disagree (> {PAIR_LIMIT}; reported, kept) | {len(two)} / {n_two} "
        f"= {100 * len(two) / n_two:.1f}% |",
        f"| | same-human pairs reported | {len(pairs)} |",
        f"| | time of `clean` ({len(persons)} photos, {len(size)} people) | {seconds:.2f} s |",
    ]


def planted(persons: list[str], shas: list[str], vectors: np.ndarray) -> list[str]:
    """LFW with planted errors on disjoint random people: what is caught (table rows)."""
    rng = np.random.default_rng(0)
    size = Counter(persons)
    rows: dict[str, list[int]] = {}
    for i, p in enumerate(persons):
        rows.setdefault(p, []).append(i)
    names = list(rng.permutation(sorted(size)))
    big = [p for p in names if size[p] >= 3]
    targets, dup_sources, splits_big = big[:PLANTS], big[PLANTS : 2 * PLANTS], big[2 * PLANTS :]
    splits_big = [p for p in splits_big if size[p] >= 4][: PLANTS // 2]
    used = set(targets) | set(dup_sources) | set(splits_big)
    rest = [p for p in names if p not in used]
    movers, rest = rest[:PLANTS], rest[PLANTS:]
    splits_small = [p for p in rest if size[p] in (2, 3)][: PLANTS // 2]
    dup_homes = [p for p in rest if p not in splits_small][:PLANTS]
    persons = list(persons)
    wrong = []
    for a, b in zip(targets, movers):  # B's photo moved into A's folder
        i = rows[b][0]
        persons[i] = a
        wrong.append(i)
    extra_p, extra_s, extra_v, dups = [], [], [], []
    for src, home in zip(dup_sources, dup_homes):  # a photo of src also filed under home
        i = rows[src][0]
        dups.append((i, len(persons) + len(extra_p)))
        extra_p.append(home)
        extra_s.append(shas[i])
        extra_v.append(vectors[i])
    split = {}
    for p in splits_big + splits_small:
        moved = rows[p][len(rows[p]) // 2 :] if size[p] >= 4 else rows[p][1:]
        for i in moved:
            persons[i] = p + "_alias"
        split[p] = size[p]
    persons += extra_p
    shas = list(shas) + extra_s
    vectors = np.vstack([vectors, *extra_v]) if extra_v else vectors
    result, seconds = timed(clean, persons, shas, vectors)
    why = dict(result.excluded)
    caught = sum(1 for i in wrong if why.get(i, "").startswith(WRONG_PERSON))
    dup_ok = sum(1 for keep, copy in dups if why.get(copy, "").startswith(DUPLICATE) and keep not in why)
    pairs = {tuple(sorted((a, b))) for a, b, _, r in result.suspicious if r.startswith(SAME_HUMAN)}
    found_big = sum(1 for p in splits_big if tuple(sorted((p, p + "_alias"))) in pairs)
    found_small = sum(1 for p in splits_small if tuple(sorted((p, p + "_alias"))) in pairs)
    planted_rows = set(wrong) | {c for _, c in dups}
    genuine_big = [i for i, p in enumerate(persons) if i not in planted_rows and Counter(persons)[p] >= 3]
    false = sum(1 for i in genuine_big if i in why)
    return [
        f"| planted | B's photo moved into A's folder ({len(wrong)}): left out as wrong person | **{caught} / "
        f"{len(wrong)}** |",
        f"| | photo copied under a second name ({len(dups)}): copy left out as duplicate, original kept | "
        f"**{dup_ok} / {len(dups)}** |",
        f"| | one human under two names, ≥2 photos on each side: pair reported | **{found_big} / {len(splits_big)}** |",
        f"| | one human under two names, 1 photo on one side: pair reported | {found_small} / {len(splits_small)} |",
        f"| | genuine photos of people with ≥3 photos left out meanwhile | {false} / {len(genuine_big)} = "
        f"{100 * false / len(genuine_big):.2f}% |",
        f"| | other same-human pairs reported / 2-photo disagreements | {len(pairs) - found_big - found_small} / "
        f"{sum(1 for s in result.suspicious if s[3].startswith(DISAGREE))} |",
        f"| | time of `clean` ({len(persons)} photos) | {seconds:.2f} s |",
    ]


def run(quick: bool, workers: int = 2) -> list[Section]:
    persons, shas, labels, vectors, total = lfw(workers)
    section = Section("Catalog cleaning on LFW")
    section.add(
        f"{len(persons)} of {total} LFW photos have a usable face ({len(set(persons))} people; described as catalog "
        "photos, jitters 0)."
    )
    section.add("#### Where the limits sit\n\n" + limits(persons, labels, vectors, quick, workers))
    section.add("#### The wrong-person score\n\n" + wrong_person_scores(persons, vectors))
    found, rows = genuine(persons, shas, labels, vectors)
    rows += planted(persons, shas, vectors)
    section.add("#### LFW as it is, and with planted errors\n\n" + found)
    section.add("| catalog | measure | result |\n|---|---|---|\n" + "\n".join(rows))
    return [section]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="processes describing LFW photos not yet cached")
    parser.add_argument("--quick", action="store_true", help=f"{COPIES // 4} copied photos instead of {COPIES}")
    args = parser.parse_args()
    run(args.quick, args.workers)
