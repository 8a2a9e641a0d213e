"""Cleaning at scale: the time of ``lookalike.build.clean.clean`` on synthetic catalogs, from scratch and with the
previous build's neighbour cache after one person is added.

- From scratch: a synthetic catalog of 100k photos (20k people × 5, LFW-like spreads). Its exact neighbour searches
  grow as N².
- Incremental: a full ``clean`` against ``clean`` with the previous build's cache after one person of 10 photos is
  added, at 100k and 1M synthetic photos (``bench.common.synthesize``: 10 per person around real dev-set
  descriptors). Up to 100k the previous build is a full ``clean`` and the incremental result is checked equal to a
  full one; at 1M the previous build's cache is seeded (:func:`seeded_cache`) and the full time estimated.

    python -m bench.cleaning_scale          # ~10 min on 2 cores; not part of --quick
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import PHOTOS_PER_PERSON, Section, synthesize, table, timed
from lookalike.build.clean import Cleaning, clean
from lookalike.build.neighbours import KEY, CleaningCache, Neighbours, mean_key, photo_keys

SIZES = (100_000, 1_000_000)
FULL_UP_TO = 100_000  # above: the full clean is estimated, not run (~2 h at 1M on 2 cores)


def from_scratch(n_people: int = 20_000, per: int = 5) -> list[str]:
    """LFW-like spreads (same-person ~0.43, different ~0.8) at 100k photos: time only."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 0.8 / np.sqrt(2 * 128), (n_people, 128)).astype(np.float32)
    vectors = np.repeat(centres, per, axis=0) + rng.normal(0, 0.43 / np.sqrt(2 * 128), (n_people * per, 128))
    persons = [f"p{i}" for i in range(n_people) for _ in range(per)]
    shas = [f"s{i}" for i in range(n_people * per)]
    result, seconds = timed(clean, persons, shas, vectors.astype(np.float32))
    return [f"{len(persons):,} photos, {n_people:,} people", f"{seconds:.1f} s", f"{len(result.excluded)}"]


def one_more_person(n: int) -> tuple[list[str], list[str], np.ndarray]:
    """``n`` + 10 synthetic photos, by person (10 each, as ``synthesize`` makes them); the last 10: one more."""
    data = synthesize(n + 10, 1)
    order = np.argsort(data.persons, kind="stable")
    persons = [f"person_{p:07d}" for p in data.persons[order].tolist()]
    shas = [hashlib.sha256(f"{n} {i}".encode()).hexdigest() for i in range(n + 10)]
    return persons, shas, data.vectors[order]


def seeded_cache(
    persons: list[str], shas: list[str], vectors: np.ndarray, per: int = PHOTOS_PER_PERSON
) -> CleaningCache:
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


def same_result(a: Cleaning, b: Cleaning) -> bool:
    return (
        a.excluded == b.excluded
        and a.suspicious == b.suspicious
        and np.allclose(a.cache.photos.dist, b.cache.photos.dist, atol=1e-5, rtol=0)
    )


def incremental(sizes: tuple[int, ...] = SIZES) -> tuple[list[list[str]], dict[str, Any]]:
    """One table row per size: full ``clean``, ``clean`` with the cache after one person is added, the rows it
    computed afresh, the cache file; and the numbers behind them."""
    rows, data = [], {}
    measured: tuple[int, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            persons, shas, vectors = one_more_person(n)
            print(f"incremental: {n:,} photos + 10", flush=True)
            if n <= FULL_UP_TO:
                before, full_s = timed(clean, persons[:n], shas[:n], vectors[:n])
                cache = before.cache
            else:
                cache = seeded_cache(persons[:n], shas[:n], vectors[:n])
            path = Path(tmp) / "neighbours.npz"
            _, save_s = timed(cache.save, path, "bench")
            size = path.stat().st_size
            loaded, load_s = timed(CleaningCache.load, path, "bench")
            after, inc_s = timed(clean, persons, shas, vectors, None, loaded)  # no labels; the cache
            if n <= FULL_UP_TO:
                scratch, again_s = timed(clean, persons, shas, vectors)
                if not same_result(scratch, after):
                    raise AssertionError("incremental clean differs from a full one")
                measured = (n, min(full_s, again_s))
                full = f"{duration(full_s)}, {duration(again_s)} (2 runs; same result as with the cache)"
            elif measured:
                full = (
                    f"~{duration(measured[1] * (n / measured[0]) ** 2)} (estimated: {measured[0]:,} photos' time × "
                    f"{n / measured[0]:.0f}²; not run)"
                )
            else:
                full = "not measured"
            rows.append(
                [
                    f"{n:,} + 10",
                    full,
                    f"**{inc_s:.2f} s**",
                    f"{after.cache.photos.dirty:,} of {n + 10:,}; {after.cache.means.dirty:,} of "
                    f"{len(after.cache.means.keys):,}",
                    f"{size / 2**20:.0f} MiB, {save_s:.2f} s, {load_s:.2f} s",
                ]
            )
            data[str(n)] = {"incremental_s": inc_s, "cache_bytes": size}
            print(rows[-1], flush=True)
    return rows, data


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def run(quick: bool = False) -> list[Section]:
    """The same measurements either way: they are what a quick run cannot shorten (registered as full-only)."""
    section = Section("Cleaning at scale")
    section.add(
        "`clean` from scratch (exact neighbour searches, O(N²)):\n\n"
        + table(["synthetic catalog (LFW-like spreads)", "time of `clean`", "photos left out"], [from_scratch()])
    )
    rows, data = incremental()
    section.add(
        "Adding one person (10 photos) with the previous build's neighbour cache "
        "(`neighbours.npz`; synthetic descriptors, 10 photos per person):\n\n"
        + table(
            [
                "photos",
                "full `clean`",
                "`clean` with the cache",
                "rows computed afresh: photos; means",
                "cache file: size, save, load",
            ],
            rows,
        )
        + f"\n\nUp to {FULL_UP_TO:,} photos the incremental result is checked equal to the full one; above, the "
        "previous build's cache is seeded (`seeded_cache`: the next person's photo as each photo's neighbour; what "
        "the incremental step costs depends only on which rows changed). `tests/test_clean.py` checks the result "
        "after additions, removals, moves and files filed twice."
    )
    section.data["cleaning_scale"] = data
    return [section]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args()
    run()
