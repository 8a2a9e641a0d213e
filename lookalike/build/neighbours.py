"""The neighbours a build saves for the next one (``neighbours.npz``), so that cleaning computes afresh only what
changed.

The rules need, for every photo, the nearest photo of another person, and for every person's mean the nearest other
mean: exact, that is O(N²) (:mod:`lookalike.build.knn`), hours at a million photos. :func:`~lookalike.build.clean.clean`
therefore takes the previous build's answers and returns this build's::

    cache = CleaningCache.load(assets / "neighbours.npz", made_by)  # None: missing, unreadable or made otherwise
    found = clean(persons, sha256s, vectors, labels, cache=cache)
    found.cache.save(assets / "neighbours.npz", made_by)

``made_by`` names how the descriptors were made (jitters, describer): a cache made otherwise is not used. Each row has
a 16-byte key of what fixes its vector and its person: a photo's person id, sha256 and occurrence number (the same
file twice in one folder is two rows), a mean's person id and the sorted sha256s of its kept photos. A row whose key
and whose cached neighbour's key are both still there keeps its cached answer; every other row (new, or its neighbour
gone) is *dirty*: its distances to all rows are computed, which also offers each kept answer the dirty rows as closer
candidates. That is exact: the cached neighbour was the nearest among a superset of the surviving old rows, and every
new row is dirty. Adding one person costs their rows against all rows, not N² (bench/RESULTS.md, "Cleaning at scale").
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.build.knn import refine_nearest_other
from lookalike.build.npz import load_npz, save_npz

NEIGHBOURS_FILE = "neighbours.npz"
KEY = np.dtype("S16")  # a row's key: blake2b, 16 bytes, of what fixes its vector and its person
NO_KEY = b""  # (all zero bytes) the neighbour of a row that has none: no row of another code
CACHE_VERSION = 1
_FIELDS = ("keys", "near", "dist")


@dataclass(frozen=True, eq=False)
class Neighbours:
    """Nearest other-code row of each row, by key: ``keys``, ``near`` (NO_KEY: none), ``dist`` (inf: none).

    ``dirty`` is how many rows were computed afresh when these were made (not saved): the work the cache could not
    spare.
    """

    keys: np.ndarray  # (n,) S16
    near: np.ndarray  # (n,) S16
    dist: np.ndarray  # (n,) float32
    dirty: int = 0

    @classmethod
    def empty(cls) -> Neighbours:
        return cls(np.empty(0, KEY), np.empty(0, KEY), np.empty(0, np.float32))

    def _arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{name}": getattr(self, name) for name in _FIELDS}

    @classmethod
    def _from(cls, arrays: dict[str, np.ndarray], prefix: str) -> Neighbours | None:
        keys, near, dist = (arrays[f"{prefix}{name}"] for name in _FIELDS)
        if keys.dtype != KEY or near.dtype != KEY or dist.dtype != np.float32:
            return None
        if keys.ndim != 1 or keys.shape != near.shape or keys.shape != dist.shape:
            return None
        return cls(keys, near, dist)


@dataclass(frozen=True, eq=False)
class CleaningCache:
    """What :func:`~lookalike.build.clean.clean` keeps between builds: neighbours of the photos and of the persons'
    means (one npz)."""

    photos: Neighbours = field(default_factory=Neighbours.empty)
    means: Neighbours = field(default_factory=Neighbours.empty)

    def save(self, path: Path | str, made_by: str) -> None:
        """Write ``path`` (npz, no pickle) atomically."""
        _save(Path(path), made_by, self.photos._arrays("photos_") | self.means._arrays("means_"))

    @classmethod
    def load(cls, path: Path | str, made_by: str) -> CleaningCache | None:
        """The cache saved at ``path`` with this ``made_by``; None if missing, unreadable or made otherwise."""
        arrays = _load(Path(path), made_by, "photos_", "means_")
        if arrays is None:
            return None
        photos, means = Neighbours._from(arrays, "photos_"), Neighbours._from(arrays, "means_")
        return None if photos is None or means is None else cls(photos, means)


def _save(path: Path, made_by: str, arrays: dict[str, np.ndarray]) -> None:
    save_npz(path, made_by, {"version": np.int64(CACHE_VERSION), **arrays})


def _load(path: Path, made_by: str, *prefixes: str) -> dict[str, np.ndarray] | None:
    """The arrays of the neighbours saved under ``prefixes``, if this version of the code wrote them."""
    arrays = load_npz(path, made_by, "version", *(f"{prefix}{name}" for prefix in prefixes for name in _FIELDS))
    return arrays if arrays is not None and np.array_equal(arrays.pop("version"), CACHE_VERSION) else None


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def photo_keys(persons: Sequence[str], sha256s: Sequence[str]) -> np.ndarray:
    """Each photo row's key: person id, sha256 and occurrence number (0, 1, … for the same file twice in a folder)."""
    keys = [_key(f"{p}\t{s}\t0") for p, s in zip(persons, sha256s, strict=True)]
    if len(set(keys)) != len(keys):  # the same file more than once in one folder: number the copies
        seen: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            copy = seen.get(key, 0)
            seen[key] = copy + 1
            if copy:
                keys[i] = _key(f"{persons[i]}\t{sha256s[i]}\t{copy}")
    return np.array(keys, dtype=KEY).reshape(len(keys))


def mean_key(person: str, sha256s: Sequence[str]) -> bytes:
    """A person's mean row key: the person id and the sorted sha256s of the photos averaged (kept ones)."""
    return _key("\t".join([person, *sorted(sha256s)]))


def nearest_other_cached(
    vectors: np.ndarray, codes: np.ndarray, keys: np.ndarray, cache: Neighbours | None = None
) -> tuple[np.ndarray, np.ndarray, Neighbours]:
    """:func:`~lookalike.build.knn.nearest_other` for rows with unique ``keys``, reusing ``cache`` (see the module
    doc): exact all the same.

    A key must fix the row's vector and its code (rows with the same key in two calls are the same row). Returns
    (ids, dist, this call's Neighbours, whose ``dirty`` counts the rows computed afresh).
    """
    n = len(vectors)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    codes = np.asarray(codes)
    keys = np.asarray(keys, dtype=KEY).reshape(n)
    ids = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf, dtype=np.float32)
    by_head = np.argsort(_heads(keys), kind="stable")
    if not _unique(keys, by_head):
        raise ValueError("nearest_other_cached: keys must be unique")
    dirty = np.ones(n, dtype=bool)
    if cache is not None and n and len(cache.keys):
        rows = np.flatnonzero((at := _lookup(cache.keys, keys)) >= 0)
        at = at[rows]
        alone = cache.near[at] == NO_KEY  # had no other-code row then: all of today's are new, hence dirty
        near = _lookup(keys, cache.near[at], by_head)
        ok = alone | ((near >= 0) & (codes[near] != codes[rows]) & np.isfinite(cache.dist[at]))
        rows, at, near, alone = rows[ok], at[ok], near[ok], alone[ok]
        dirty[rows] = False
        ids[rows] = np.where(alone, -1, near)
        dist[rows] = np.where(alone, np.inf, cache.dist[at])
    refine_nearest_other(vectors, codes, dirty, ids, dist)
    near_keys = np.where(ids >= 0, keys[np.maximum(ids, 0)], np.array(NO_KEY, dtype=KEY)).astype(KEY)
    return ids, dist, Neighbours(keys, near_keys, dist.copy(), int(dirty.sum()))


def _heads(keys: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each key, as numbers: what keys are sorted and searched by."""
    return np.ascontiguousarray(keys, dtype=KEY).view(np.uint64)[::2]


def _lookup(table: np.ndarray, query: np.ndarray, by_head: np.ndarray | None = None) -> np.ndarray:
    """Row of each ``query`` key in ``table`` (unique keys), -1 where absent; ``by_head``: argsort of its heads."""
    if not len(table) or not len(query):
        return np.full(len(query), -1, dtype=np.int64)
    head = _heads(table)
    by_head = np.argsort(head, kind="stable") if by_head is None else by_head
    asked = _heads(query)
    ask_order = np.argsort(asked, kind="stable")  # sorted queries: a cache-friendly search
    at = np.empty(len(query), dtype=np.int64)
    at[ask_order] = np.searchsorted(head[by_head], asked[ask_order])
    at = by_head[np.minimum(at, len(table) - 1)]
    found = table[at] == query
    if not found.all() and (np.diff(head[by_head]) == 0).any():  # two keys share 8 bytes (never, in practice)
        index = {k: i for i, k in enumerate(table.tolist())}
        return np.array([index.get(k, -1) for k in query.tolist()], dtype=np.int64)
    return np.where(found, at, -1)


def _unique(keys: np.ndarray, by_head: np.ndarray) -> bool:
    """Are ``keys`` all different? ``by_head``: argsort of their heads."""
    s = keys[by_head]
    same_head = np.flatnonzero(np.diff(_heads(s)) == 0)
    return not (s[same_head] == s[same_head + 1]).any()
