#!/usr/bin/env python3
"""Catalog cleaning on LFW (``../shared/lfw``): false flags on genuine photos, planted errors caught, and speed.

    .venv/bin/python bench/cleaning.py [--workers 2]

Every LFW photo is described as ``build_embeddings`` describes a catalog photo (``describe_photo``, jitters=0,
quality rules on; ~20 min on 2 cores the first time), cached in ``$LOOKALIKE_CLEAN_CACHE`` (default
/tmp/clean_cache/lfw_catalog_j0.npz: ``paths``, ``vectors``, NaN rows for photos without a usable face). Then
``lookalike.build.clean.clean`` runs on:

- LFW as it is: genuine photos of people with ≥3 photos that get left out are false flags (LFW has a few real
  label errors and duplicates of its own: they count as false flags here);
- LFW with planted errors, on disjoint random people (seeded): a photo moved from person B to person A (wrong
  person), a photo of a person with ≥3 photos copied under another person (duplicate), people split under two
  names (same human: ≥4 photos split in halves, and 2–3 photos split 1 + the rest);
- a synthetic catalog of 100k photos (20k people × 5, LFW-like spreads) for time;
- incremental builds (``--incremental`` runs only this): a full ``clean`` against ``clean`` with the previous
  build's cache after one person of 10 photos is added, at 100k and 1M synthetic photos (``bench/index_scale.py``'s
  ``synthesize``: 10 per person around real dev-set descriptors).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lookalike.build.clean import DISAGREE, DUPLICATE, PAIR_LIMIT, SAME_HUMAN, WRONG_PERSON, clean  # noqa: E402
from lookalike.build.neighbours import KEY, CleaningCache, Neighbours, mean_key, photo_keys  # noqa: E402

LFW = ROOT.parent / "shared" / "lfw"
CACHE = Path(os.environ.get("LOOKALIKE_CLEAN_CACHE", "/tmp/clean_cache/lfw_catalog_j0.npz"))
PLANTS = 100  # of each kind


def _describe(path: str) -> np.ndarray:
    from lookalike.build.describe import describe_photo

    described = describe_photo(Path(path).read_bytes(), 0)
    return np.full(128, np.nan, np.float32) if described.vector is None else described.vector


def descriptors(paths: list[str], workers: int) -> np.ndarray:
    """Catalog descriptors (jitters=0) of ``paths``, NaN rows where the photo is skipped; cached in CACHE."""
    from lookalike.engine.analysis import analyzer

    known: dict[str, np.ndarray] = {}
    if CACHE.exists():
        with np.load(CACHE, allow_pickle=False) as npz:
            known = dict(zip(npz["paths"].tolist(), npz["vectors"]))
    todo = [p for p in paths if p not in known]
    if todo:
        print(f"describing {len(todo)} LFW photos with {workers} workers (cached in {CACHE})", flush=True)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=analyzer) as pool:
            known.update(zip(todo, pool.map(_describe, todo, chunksize=8)))
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = CACHE.with_name(CACHE.stem + ".tmp.npz")
        np.savez(tmp, paths=np.array(list(known)), vectors=np.stack(list(known.values())).astype(np.float32))
        tmp.replace(CACHE)
    return np.stack([known[p] for p in paths]).astype(np.float32)


def lfw(workers: int) -> tuple[list[str], list[str], list[str], np.ndarray]:
    """Photos with a usable face: persons, sha256s, paths (relative to LFW), descriptors."""
    paths = sorted(str(p) for p in LFW.glob("*/*.jpg"))
    vectors = descriptors(paths, workers)
    ok = ~np.isnan(vectors).any(axis=1)
    kept = [p for p, k in zip(paths, ok) if k]
    persons = [Path(p).parent.name for p in kept]
    shas = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in kept]
    print(f"{len(kept)} of {len(paths)} LFW photos have a usable face", flush=True)
    return persons, shas, [str(Path(p).relative_to(LFW)) for p in kept], vectors[ok]


def _timed(persons, shas, vectors, labels=None, cache=None):
    start = time.perf_counter()
    result = clean(persons, shas, vectors, labels, cache=cache)
    return result, time.perf_counter() - start


def genuine(persons: list[str], shas: list[str], labels: list[str], vectors: np.ndarray) -> list[str]:
    result, seconds = _timed(persons, shas, vectors, labels)
    size = Counter(persons)
    big = sum(1 for p in persons if size[p] >= 3)
    flagged = [(i, why) for i, why in result.excluded if size[persons[i]] >= 3]
    kinds = Counter(why.split(":")[0] for _, why in result.excluded)
    pairs = [s for s in result.suspicious if s[0] != s[1]]
    two = [s for s in result.suspicious if s[0] == s[1]]
    n_two = sum(1 for c in size.values() if c == 2)
    print("\n#### LFW as it is\n")
    for i, why in flagged:
        print(f"- flagged {labels[i]}: {why}")
    for i, why in result.excluded:
        if size[persons[i]] < 3:
            print(f"- left out {labels[i]}: {why}")
    for a, b, d, _ in pairs:
        print(f"- same human? {a} / {b}: {d:.2f}")
    return [
        f"| LFW as it is | genuine photos of people with ≥3 photos left out | **{len(flagged)} / {big} = "
        f"{100 * len(flagged) / big:.2f}%** |",
        f"| | left out, all people (by reason) | {dict(kinds)} |",
        f"| | 2-photo people whose photos disagree (> {PAIR_LIMIT}; reported, kept) | {len(two)} / {n_two} "
        f"= {100 * len(two) / n_two:.1f}% |",
        f"| | same-human pairs reported | {len(pairs)} |",
        f"| | time of `clean` ({len(persons)} photos, {len(size)} people) | {seconds:.2f} s |",
    ]


def planted(persons: list[str], shas: list[str], vectors: np.ndarray) -> list[str]:
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
    result, seconds = _timed(persons, shas, vectors)
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


def synthetic(n_people: int = 20_000, per: int = 5) -> list[str]:
    """LFW-like spreads (same-person ~0.43, different ~0.8) at 100k photos: time only."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 0.8 / np.sqrt(2 * 128), (n_people, 128)).astype(np.float32)
    vectors = np.repeat(centres, per, axis=0) + rng.normal(0, 0.43 / np.sqrt(2 * 128), (n_people * per, 128))
    persons = [f"p{i}" for i in range(n_people) for _ in range(per)]
    shas = [f"s{i}" for i in range(n_people * per)]
    result, seconds = _timed(persons, shas, vectors.astype(np.float32))
    return [
        f"| synthetic | time of `clean` ({len(persons):,} photos, {n_people:,} people; "
        f"{len(result.excluded)} left out) | {seconds:.1f} s |"
    ]


def _one_more_person(n: int) -> tuple[list[str], list[str], np.ndarray]:
    """``n`` + 10 synthetic photos, by person (10 each, as index_scale synthesizes them); the last 10: one more."""
    from bench.index_scale import synthesize

    data = synthesize(n + 10, 1)
    order = np.argsort(data.persons, kind="stable")
    persons = [f"person_{p:07d}" for p in data.persons[order].tolist()]
    shas = [hashlib.sha256(f"{n} {i}".encode()).hexdigest() for i in range(n + 10)]
    return persons, shas, data.vectors[order]


def seeded_cache(persons: list[str], shas: list[str], vectors: np.ndarray, per: int = 10) -> CleaningCache:
    """A cache as a build of these photos would leave it, but with the next person's photo (mean) as each photo's
    (mean's) neighbour instead of the nearest: what the incremental step spends depends on which rows changed,
    not on which rows the cache names, and the exact cache of 1M photos takes hours."""
    n = len(persons)
    keys, nxt = photo_keys(persons, shas), (np.arange(n) + per) % n
    photos = Neighbours(keys, keys[nxt], np.linalg.norm(vectors - vectors[nxt], axis=1).astype(np.float32))
    means = vectors.reshape(-1, per, vectors.shape[1]).mean(axis=1, dtype=np.float64).astype(np.float32)
    mkeys = np.array([mean_key(persons[s], shas[s : s + per]) for s in range(0, n, per)], dtype=KEY)
    mnxt = (np.arange(len(mkeys)) + 1) % len(mkeys)
    return CleaningCache(photos, Neighbours(mkeys, mkeys[mnxt], np.linalg.norm(means - means[mnxt], axis=1)))


def incremental(sizes: tuple[int, ...] = (100_000, 1_000_000), full_up_to: int = 100_000) -> list[str]:
    """Full ``clean`` vs ``clean`` with the previous build's cache, after one person of 10 photos is added.

    Up to ``full_up_to`` photos the previous build is a full ``clean`` (timed), and the incremental result is
    checked against a full ``clean`` of the new catalog (timed too). Above, the previous build's cache is seeded
    (:func:`seeded_cache`, not timed) and the full time is estimated as (n / n_measured)² × the faster full
    run measured.
    """
    rows = [
        "| photos | full `clean` | `clean` with the cache, 1 person (10 photos) added | rows computed afresh: photos, "
        "means | cache file: size, save, load |",
        "|---|---|---|---|---|",
    ]
    measured: tuple[int, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            persons, shas, vectors = _one_more_person(n)
            print(f"incremental: {n:,} photos + 10", flush=True)
            if n <= full_up_to:
                before, full_s = _timed(persons[:n], shas[:n], vectors[:n])
                cache = before.cache
            else:
                cache = seeded_cache(persons[:n], shas[:n], vectors[:n])
            path = Path(tmp) / "neighbours.npz"
            (_, save_s), size = _timed_call(cache.save, path, "bench"), path.stat().st_size
            loaded, load_s = _timed_call(CleaningCache.load, path, "bench")
            after, inc_s = _timed(persons, shas, vectors, cache=loaded)
            if n <= full_up_to:
                scratch, again_s = _timed(persons, shas, vectors)
                same = scratch.excluded == after.excluded and scratch.suspicious == after.suspicious
                same = same and np.allclose(scratch.cache.photos.dist, after.cache.photos.dist, atol=1e-5, rtol=0)
                assert same, "incremental clean differs from a full one"
                measured = (n, min(full_s, again_s))
                full = f"{_duration(full_s)}, {_duration(again_s)} (2 runs; same result as with the cache)"
            elif measured:
                estimate = _duration(measured[1] * (n / measured[0]) ** 2)
                full = f"~{estimate} (estimated: {measured[0]:,} photos' time × {n / measured[0]:.0f}²)"
            else:
                full = "not measured"
            rows.append(
                f"| {n:,} + 10 | {full} | **{inc_s:.2f} s** | {after.cache.photos.dirty:,} of {n + 10:,}, "
                f"{after.cache.means.dirty:,} of {len(after.cache.means.keys):,} | {size / 2**20:.0f} MiB, "
                f"{save_s:.2f} s, {load_s:.2f} s |"
            )
            print(rows[-1], flush=True)
    return rows


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _timed_call(func, *args):
    start = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - start


def main(workers: int, quick: bool, only_incremental: bool = False) -> int:
    rows = []
    if not only_incremental:
        persons, shas, labels, vectors = lfw(workers)
        rows += ["| catalog | measure | result |", "|---|---|---|"]
        rows += genuine(persons, shas, labels, vectors)
        rows += planted(persons, shas, vectors)
        if not quick:
            rows += synthetic()
        rows.append("")
    if not quick or only_incremental:
        rows += incremental()
    print("\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="processes describing LFW photos not yet cached")
    parser.add_argument("--quick", action="store_true", help="skip the 100k synthetic timing and incremental builds")
    parser.add_argument("--incremental", action="store_true", help="only the incremental builds (no LFW)")
    args = parser.parse_args()
    sys.exit(main(args.workers, args.quick, args.incremental))
