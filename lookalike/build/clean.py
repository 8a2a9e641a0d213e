"""Catalog cleaning from descriptors alone: which photos to leave out, and which persons may be one human.

Pure functions (no dlib; the only I/O is the neighbour cache below). ``build_embeddings`` runs :func:`clean` on
every build over every described photo, the ones left out last time included: the rules depend on the other photos,
so a photo comes back once what made it doubtful is fixed. Limits are L2 distances between dlib descriptors,
measured on ``../shared/lfw`` (jitters=0, 5,596 photos with a usable face, 2,792 people; ``bench/cleaning.py``
has the method and the table):

- one person's photos are 0.435 apart at the median, 0.636 at the 99th percentile (19,508 pairs); different
  people 0.80 at the median, 0.594 at the 1st percentile, 0.377 at the millionth (16.7M pairs).
- a copy of a photo (96 LFW photos): re-encoded as JPEG q60 0.086 median / 0.19 max, shrunk to 60% 0.10 / 0.17,
  enlarged 2× 0.05 / 0.13, cropped 8% 0.05 / 0.13, mirrored 0.19 / 0.28. Under DUPLICATE_LIMIT=0.25 every copy
  but some mirrored ones counts as the same image; no two LFW photos of different people come that close
  except real duplicates (3 pairs, 0.00 to 0.18: one press photo filed under both people in it).
- wrong person (WRONG_LIMIT=0.50, :func:`_wrong_person`): 10 of the 2,860 photos of LFW people with ≥3 photos
  are left out (0.35%; some are LFW's own errors); a photo moved from one person's folder to another's is left out
  100 times out of 100, while 0.51% of the genuine photos go with them.
- 2 photos (PAIR_LIMIT=0.64, the 99th percentile above): 0.6% of LFW's 357 two-photo people are reported; a
  pair made of two different people would be 97% of the time. Which one is wrong cannot be told: both stay.
- same human under two names (SAME_HUMAN_LIMIT=0.36 between the persons' mean descriptors): one human split
  under two names is found 48 times out of 50 with ≥2 photos on each side, 15 out of 50 with a single photo on
  one side (a lone photo is as close to a lookalike as to a second photo of the same human). LFW as it is gives
  11 pairs among its 2,792 people: one real (Chyung Dai-chul / Dai Chul Chyung), the others lookalikes (Serena
  and Venus Williams; 7 pairs of East Asian men: dlib's descriptor separates them less well). Reported only.

Incremental builds. The rules need, for every photo, the nearest photo of another person, and for every person's mean
the nearest other mean: exact, that is O(N²) (~65 s at 100k photos, ~2 h at 1M). :func:`clean` therefore takes
the previous build's answers and returns this build's, and computes afresh only what changed::

    cache = CleaningCache.load(assets / "neighbours.npz", made_by)  # None: missing, unreadable or made otherwise
    found = clean(persons, sha256s, vectors, labels, cache=cache)
    found.cache.save(assets / "neighbours.npz", made_by)  # atomic (temp file + os.replace)

``made_by`` names how the descriptors were made (e.g. ``"jitters 0; <describer>"``): a cache made otherwise is not
used. Each row has a 16-byte key (blake2b) of what fixes its vector and its person: a photo's person id, sha256 and
occurrence number (the same file twice in one folder is two rows), a mean's person id and the sorted sha256s of its
kept photos. A row whose key and whose cached neighbour's key are both still there keeps its cached answer; every
other row (new, or its neighbour gone) is *dirty*: its distances to all rows are computed, which also offers each
kept answer the dirty rows as closer candidates. That is exact: the cached neighbour was the nearest among a superset
of the surviving old rows, and every new row is dirty. Adding one person of 10 photos costs 0.7 s at 100k photos,
4 s at 1M (``bench/cleaning.py --incremental``); without a cache every row is dirty and the cost is N².
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WRONG_PERSON = "wrong person"
DUPLICATE = "duplicate"
SAME_HUMAN = "same human under two names?"
DISAGREE = "2 photos disagree"

WRONG_LIMIT = 0.50  # a photo's scaled distance to the mean of its person's other photos
PAIR_LIMIT = 0.64  # between the 2 photos of a person: the 99th percentile of one person's photos
DUPLICATE_LIMIT = 0.25  # beyond every re-encoded, resized or cropped copy; below any two different LFW people
SAME_HUMAN_LIMIT = 0.36  # between two persons' mean descriptors

KEY = np.dtype("S16")  # a row's key: blake2b, 16 bytes, of what fixes its vector and its person
NO_KEY = b""  # (all zero bytes) the neighbour of a row that has none: no row of another code
CACHE_VERSION = 1
_TILE = 1 << 22  # float32 distances computed at once (16 MB whatever the size: never an N×N matrix)
_ROWS = 512  # rows per tile of the exact search: 512 × 8192 columns (2-3× faster at 1M than whole rows)
_SCREEN = 1e-3  # vectorised screening margin: groups this close to a limit are judged exactly as before
_CHUNK = 1 << 16  # rows per chunk of per-row vector arithmetic (bounded temporaries)


@dataclass(frozen=True, eq=False)
class Neighbours:
    """Nearest other-code row of each row, by key: ``keys``, ``near`` (NO_KEY: none), ``dist`` (inf: none).

    What a build saves for the next one (see the module doc). ``dirty`` is how many rows were computed afresh when
    these were made (not saved): the work the cache could not spare.
    """

    keys: np.ndarray  # (n,) S16
    near: np.ndarray  # (n,) S16
    dist: np.ndarray  # (n,) float32
    dirty: int = 0

    @classmethod
    def empty(cls) -> Neighbours:
        return cls(np.empty(0, KEY), np.empty(0, KEY), np.empty(0, np.float32))

    def save(self, path: Path | str, made_by: str) -> None:
        """Write ``path`` (npz, no pickle) atomically: a temp file beside it, then os.replace."""
        _save_npz(Path(path), made_by, self._arrays(""))

    @classmethod
    def load(cls, path: Path | str, made_by: str) -> Neighbours | None:
        """The neighbours saved at ``path`` with this ``made_by``; None if missing, unreadable or made otherwise."""
        arrays = _load_npz(Path(path), made_by)
        return None if arrays is None else cls._from(arrays, "")

    def _arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}keys": self.keys, f"{prefix}near": self.near, f"{prefix}dist": self.dist}

    @classmethod
    def _from(cls, arrays: dict[str, np.ndarray], prefix: str) -> Neighbours | None:
        try:
            keys, near, dist = (arrays[f"{prefix}{name}"] for name in ("keys", "near", "dist"))
        except KeyError:
            return None
        if keys.dtype != KEY or near.dtype != KEY or dist.dtype != np.float32:
            return None
        if keys.ndim != 1 or keys.shape != near.shape or keys.shape != dist.shape:
            return None
        return cls(keys, near, dist)


@dataclass(frozen=True, eq=False)
class CleaningCache:
    """What :func:`clean` keeps between builds: neighbours of the photos and of the persons' means (one npz)."""

    photos: Neighbours = field(default_factory=Neighbours.empty)
    means: Neighbours = field(default_factory=Neighbours.empty)

    def save(self, path: Path | str, made_by: str) -> None:
        """Write ``path`` (npz, no pickle) atomically: a temp file beside it, then os.replace."""
        _save_npz(Path(path), made_by, self.photos._arrays("photos_") | self.means._arrays("means_"))

    @classmethod
    def load(cls, path: Path | str, made_by: str) -> CleaningCache | None:
        """The cache saved at ``path`` with this ``made_by``; None if missing, unreadable or made otherwise."""
        arrays = _load_npz(Path(path), made_by)
        if arrays is None:
            return None
        photos, means = Neighbours._from(arrays, "photos_"), Neighbours._from(arrays, "means_")
        return None if photos is None or means is None else cls(photos, means)


def _save_npz(path: Path, made_by: str, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            np.savez(out, version=np.int64(CACHE_VERSION), made_by=np.str_(made_by), **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_npz(path: Path, made_by: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if int(npz["version"]) != CACHE_VERSION or str(npz["made_by"]) != made_by:
                return None
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


@dataclass
class Cleaning:
    """What the rules found: photos to leave out (index, reason) and pairs of persons to look at.

    A suspicious pair with ``person_a == person_b`` is a person with 2 photos that disagree: which one is wrong
    cannot be told, so both stay and the report shows them. ``cache`` holds this build's neighbours, for the next.
    """

    excluded: list[tuple[int, str]] = field(default_factory=list)
    suspicious: list[tuple[str, str, float, str]] = field(default_factory=list)
    cache: CleaningCache = field(default_factory=CleaningCache, compare=False, repr=False)


def clean(
    persons: Sequence[str],
    sha256s: Sequence[str],
    vectors: np.ndarray,
    labels: Sequence[str] | None = None,
    cache: CleaningCache | None = None,
) -> Cleaning:
    """Apply the rules in order: duplicates, then wrong person (over what duplicates left), then same human.

    ``labels`` name the photos in the reasons (their paths); by default ``photo <index>``. ``cache``: the previous
    build's ``Cleaning.cache`` (same descriptors, see the module doc); the result is the same with or without it.
    """
    n = len(persons)
    if n == 0:
        return Cleaning()
    labels = list(labels) if labels is not None else [f"photo {i}" for i in range(n)]
    sha256s = list(sha256s)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(n, -1)
    pids = [str(p) for p in persons]
    names = np.array(sorted(set(pids)))
    index = {p: c for c, p in enumerate(names.tolist())}
    codes = np.fromiter((index[p] for p in pids), dtype=np.int64, count=n)
    keys = photo_keys(pids, sha256s)
    near_ids, near_dist, photo_nb = nearest_other_cached(vectors, codes, keys, cache.photos if cache else None)
    out = Cleaning()
    order = np.argsort(codes, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(codes, minlength=len(names)))[:-1])
    excluded = _duplicates(codes, groups, sha256s, vectors, near_ids, near_dist, names, labels)
    kept = np.ones(n, dtype=bool)
    kept[list(excluded)] = False
    count, sums = _group_sums(vectors, codes, order[kept[order]], len(names))
    wrong: dict[int, str] = {}
    for c in _doubtful(vectors, codes, order, kept, count, sums):
        members = groups[c][kept[groups[c]]]
        if len(members) >= 3:
            wrong.update(_wrong_person(members, vectors, codes, near_ids, near_dist, names))
        else:
            d = float(np.linalg.norm(vectors[members[0]] - vectors[members[1]]))
            if d > PAIR_LIMIT:
                pid = str(names[c])
                why = f"{DISAGREE}: distance {d:.2f} > {PAIR_LIMIT:.2f}; which one is wrong cannot be told, both kept"
                out.suspicious.append((pid, pid, d, why))
    if wrong:
        kept[list(wrong)] = False
        redo = np.unique(codes[list(wrong)])
        rows = np.concatenate([groups[c][kept[groups[c]]] for c in redo])
        count[redo], sums[redo] = 0, 0.0
        if len(rows):
            again, again_sums = _group_sums(vectors, codes, rows, len(names))
            count[redo], sums[redo] = again[redo], again_sums[redo]
        excluded.update(wrong)
    same, mean_nb = _same_human(codes, order, kept, count, sums, sha256s, names, cache.means if cache else None)
    out.suspicious += same
    out.excluded = sorted((int(i), why) for i, why in excluded.items())
    out.cache = CleaningCache(photo_nb, mean_nb)
    return out


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def photo_keys(persons: Sequence[str], sha256s: Sequence[str]) -> np.ndarray:
    """Each photo row's key: person id, sha256 and occurrence number (0, 1, … for the same file twice in a folder)."""
    blake2b = hashlib.blake2b
    digests = [blake2b(f"{p}\t{s}\t0".encode(), digest_size=16).digest() for p, s in zip(persons, sha256s, strict=True)]
    if len(set(digests)) != len(digests):  # the same file more than once in one folder: number the copies
        seen: dict[bytes, int] = {}
        for i, digest in enumerate(digests):
            copy = seen.get(digest, 0)
            seen[digest] = copy + 1
            if copy:
                digests[i] = _key(f"{persons[i]}\t{sha256s[i]}\t{copy}")
    return np.array(digests, dtype=KEY).reshape(len(digests))


def mean_key(person: str, sha256s: Sequence[str]) -> bytes:
    """A person's mean row key: the person id and the sorted sha256s of the photos averaged (kept ones)."""
    return _key("\t".join([person, *sorted(sha256s)]))


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


def nearest_other(vectors: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the nearest row with another code: (ids, L2 distances); -1 and inf where there is none.

    Exact, in tiles (16 MB whatever the size: never an N×N matrix); time grows as N² (see bench/cleaning.py).
    :func:`nearest_other_cached` is the same, given the previous answers.
    """
    n = len(vectors)
    ids = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf, dtype=np.float32)
    _search(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(codes), None, ids, dist)
    return ids, dist


def nearest_other_cached(
    vectors: np.ndarray, codes: np.ndarray, keys: np.ndarray, cache: Neighbours | None = None
) -> tuple[np.ndarray, np.ndarray, Neighbours]:
    """:func:`nearest_other` for rows with unique ``keys``, reusing ``cache`` (see the module doc): exact all the same.

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
    _search(vectors, codes, dirty, ids, dist)
    near_keys = np.where(ids >= 0, keys[np.maximum(ids, 0)], np.array(NO_KEY, dtype=KEY)).astype(KEY)
    return ids, dist, Neighbours(keys, near_keys, dist.copy(), int(dirty.sum()))


def _search(
    vectors: np.ndarray, codes: np.ndarray, dirty: np.ndarray | None, ids: np.ndarray, dist: np.ndarray
) -> None:
    """Exact nearest other-code row for the ``dirty`` rows (None: all); the others keep ``ids``/``dist`` unless a
    dirty row of another code is closer. In place.

    Distances ``|a|² + |b|² - 2a·b`` of blocks of dirty rows to all rows, in float32 tiles of at most _TILE; each
    tile gives the dirty rows their nearest column and the other rows (columns) their nearest dirty row. The chosen
    pairs' distances are then computed directly (``|a - b|``), so that they do not depend on the tiling.
    """
    n = len(vectors)
    todo = np.arange(n) if dirty is None else np.flatnonzero(dirty)
    if n < 2 or not len(todo):
        return
    sq = np.einsum("ij,ij->i", vectors, vectors)
    by_code = np.argsort(codes, kind="stable")
    sorted_codes = codes[by_code]
    fixed = None if dirty is None or dirty.all() else ~dirty  # rows kept unless a dirty row is closer
    row_best = np.full(len(todo), np.inf, dtype=np.float32)
    row_col = np.full(len(todo), -1, dtype=np.int64)
    col_best = np.full(n if fixed is not None else 0, np.inf, dtype=np.float32)
    col_row = np.full(n if fixed is not None else 0, -1, dtype=np.int64)
    for b0 in range(0, len(todo), _ROWS):
        b1 = min(len(todo), b0 + _ROWS)
        block = todo[b0:b1]
        own_row, own_col = _same_code(codes[block], by_code, sorted_codes)
        left = vectors[block] * np.float32(-2.0)
        width = max(1024, _TILE // len(block))
        for c0 in range(0, n, width):
            c1 = min(n, c0 + width)
            t = left @ vectors[c0:c1].T
            t += sq[None, c0:c1]
            if own_col is None:
                t[codes[block][:, None] == codes[None, c0:c1]] = np.inf
            else:
                s0, s1 = np.searchsorted(own_col, (c0, c1))
                t[own_row[s0:s1], own_col[s0:s1] - c0] = np.inf
            j = t.argmin(axis=1)
            val = t[np.arange(len(block)), j]
            better = val < row_best[b0:b1]
            row_best[b0:b1][better] = val[better]
            row_col[b0:b1][better] = j[better] + c0
            if fixed is not None and fixed[c0:c1].any():
                t += sq[block][:, None]
                k = t.argmin(axis=0)
                val = t[k, np.arange(c1 - c0)]
                better = val < col_best[c0:c1]
                col_best[c0:c1][better] = val[better]
                col_row[c0:c1][better] = block[k[better]]
    found = np.isfinite(row_best)
    rows, cols = todo[found], row_col[found]
    ids[rows] = cols
    dist[rows] = _distances(vectors, rows, cols)
    if fixed is not None:  # a dirty row about as close as the kept answer, or closer: measured exactly
        slack = 1e-4 * (1.0 + float(sq.max()))  # float32 error of |a|² + |b|² - 2a·b, with a wide margin
        rows = np.flatnonzero(fixed & (col_best <= np.square(dist.astype(np.float64)) + slack))
        cols = col_row[rows]
        d = _distances(vectors, rows, cols)
        closer = d < dist[rows]
        ids[rows[closer]], dist[rows[closer]] = cols[closer], d[closer]


def _same_code(
    block_codes: np.ndarray, by_code: np.ndarray, sorted_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """(row in block, column) of every pair of the same code, by column; (…, None) if too many to list."""
    lo = np.searchsorted(sorted_codes, block_codes, side="left")
    size = np.searchsorted(sorted_codes, block_codes, side="right") - lo
    total = int(size.sum())
    if total > _TILE:  # persons with thousands of photos: compare codes tile by tile instead
        return np.empty(0, dtype=np.int64), None
    rows = np.repeat(np.arange(len(block_codes)), size)
    cols = by_code[np.arange(total) + np.repeat(lo - (np.cumsum(size) - size), size)]
    order = np.argsort(cols, kind="stable")
    return rows[order], cols[order]


def _distances(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``|vectors[a] - vectors[b]|`` row by row, in chunks: the same float32 value whichever way it is asked."""
    out = np.empty(len(a), dtype=np.float32)
    for s in range(0, len(a), _CHUNK):
        d = vectors[a[s : s + _CHUNK]] - vectors[b[s : s + _CHUNK]]
        out[s : s + _CHUNK] = np.sqrt(np.einsum("ij,ij->i", d, d))
    return out


def _group_sums(vectors: np.ndarray, codes: np.ndarray, rows: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per code: how many of ``rows`` (sorted by code) it has, and their vectors' sum (float64, in row order)."""
    count = np.bincount(codes[rows], minlength=size)
    dim = vectors.shape[1]
    sums = np.zeros((size, dim), dtype=np.float64)
    for s in range(0, len(rows), _CHUNK):  # bincount over (code, dimension) cells: one pass, any group sizes
        part, c = rows[s : s + _CHUNK], codes[rows[s : s + _CHUNK]]
        first, span = int(c[0]), int(c[-1] - c[0] + 1)
        cells = ((c - first)[:, None] * dim + np.arange(dim)).ravel()
        sums[first : first + span] += np.bincount(cells, vectors[part].ravel(), span * dim).reshape(span, dim)
    return count, sums


def _doubtful(
    vectors: np.ndarray, codes: np.ndarray, order: np.ndarray, kept: np.ndarray, count: np.ndarray, sums: np.ndarray
) -> np.ndarray:
    """Codes that the wrong-person or 2-photo rule may flag (the rest cannot be: screened at once, with a margin).

    A photo's wrong-person score is sqrt((k+1)/k) × its distance to the mean of all k+1 kept photos; two photos are
    twice their distance to their mean apart.
    """
    rows = order[kept[order]]
    c = codes[rows]
    k = np.maximum(count - 1, 1).astype(np.float64)
    scale = np.where(count == 2, 2.0, np.sqrt((k + 1) / k))
    limit = np.where(count == 2, PAIR_LIMIT, WRONG_LIMIT) - _SCREEN
    means = (sums / np.maximum(count, 1)[:, None]).astype(np.float32)
    worst = np.zeros(len(count))
    for s in range(0, len(rows), _CHUNK):
        pc = c[s : s + _CHUNK]
        d = vectors[rows[s : s + _CHUNK]] - means[pc]
        np.maximum.at(worst, pc, np.sqrt(np.einsum("ij,ij->i", d, d)) * scale[pc])
    return np.flatnonzero((count >= 2) & (worst > limit))


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def _score(v: np.ndarray, others: np.ndarray) -> float:
    """How far a photo is from the person's ``others``: see :func:`_wrong_person`; inf if there are none."""
    k = len(others)
    if not k:
        return float("inf")
    return float(np.sqrt(k / (k + 1)) * np.linalg.norm(v - others.mean(axis=0)))


def _closest(i: int, near_ids: np.ndarray, near_dist: np.ndarray, codes: np.ndarray, names: np.ndarray) -> str:
    j = near_ids[i]
    return f"; closest to {names[codes[j]]} ({near_dist[i]:.2f})" if j >= 0 else ""


def _duplicates(
    codes: np.ndarray,
    groups: list[np.ndarray],
    sha256s: list[str],
    vectors: np.ndarray,
    near_ids: np.ndarray,
    near_dist: np.ndarray,
    names: np.ndarray,
    labels: list[str],
) -> dict[int, str]:
    """Copies of one image (same file, or descriptors under DUPLICATE_LIMIT apart) filed under different persons.

    The copy is kept under the person whose other photos it agrees with best (the wrong-person score, within
    WRONG_LIMIT) and left out elsewhere; if no person's other photos vouch for it, every copy is left out.
    """
    links: list[tuple[int, int]] = []
    if len(set(sha256s)) != len(sha256s):  # the same file twice: linked to its first row
        first = dict(zip(reversed(sha256s), range(len(sha256s) - 1, -1, -1)))
        same = np.fromiter((first[digest] for digest in sha256s), dtype=np.int64, count=len(sha256s))
        repeated = np.flatnonzero(same != np.arange(len(sha256s)))
        links += zip(repeated.tolist(), same[repeated].tolist())
    close = np.flatnonzero((near_dist < DUPLICATE_LIMIT) & (near_ids >= 0))
    links += zip(close.tolist(), near_ids[close].tolist())
    parent: dict[int, int] = {}  # union-find over the linked rows only (a few, even at 1M photos)

    def root(i: int) -> int:
        parent.setdefault(i, i)
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in links:
        parent[root(i)] = root(j)
    clusters: dict[int, list[int]] = {}
    for i in sorted(parent):
        clusters.setdefault(root(i), []).append(i)
    excluded: dict[int, str] = {}
    for copies in clusters.values():
        if len({codes[i] for i in copies}) < 2:
            continue
        in_cluster = set(copies)
        agree = {i: _score(vectors[i], vectors[[m for m in groups[codes[i]] if m not in in_cluster]]) for i in copies}
        best = min(copies, key=agree.__getitem__)
        if agree[best] <= WRONG_LIMIT:
            home = names[codes[best]]
            for i in copies:
                if codes[i] != codes[best]:
                    how = "same file as" if sha256s[i] == sha256s[best] else "near-identical to"
                    vs = f"{agree[i]:.2f}" if np.isfinite(agree[i]) else "no other photos"
                    excluded[i] = (
                        f"{DUPLICATE}: {how} {labels[best]}, kept under {home} whose other photos it matches "
                        f"({agree[best]:.2f} vs {vs} here)"
                    )
        else:
            where = ", ".join(sorted({str(names[codes[i]]) for i in copies}))
            for i in copies:
                excluded[i] = f"{DUPLICATE}: the same image is filed under {where}; no one's other photos vouch for it"
    return excluded


def _wrong_person(
    kept: np.ndarray,
    vectors: np.ndarray,
    codes: np.ndarray,
    near_ids: np.ndarray,
    near_dist: np.ndarray,
    names: np.ndarray,
) -> dict[int, str]:
    """Photos too far from the mean of the person's other photos, worst first, one at a time.

    Score: distance to the mean of the other k photos times sqrt(k/(k+1)), which makes its spread the same for 3
    photos as for 50 (a mean of 2 photos is noisier). Unscaled, the limit that flagged 0.8% of LFW's genuine
    photos flagged 2.7% of those of 3-photo people; scaled, 0.3%. The worst photo goes first and the rest are
    scored again without it, so one wrong photo does not drag the genuine ones out with it. The mean rather than
    the median distance to the others: fewer false flags and more planted photos caught (0.60% / 99.2% against
    0.84% / 98.9%). A person whose photos are
    mostly someone else's loses the genuine ones instead: the report shows them beside the rest.
    """
    members = list(kept)
    name = names[codes[kept[0]]]
    out: dict[int, str] = {}
    while len(members) >= 3:
        v = vectors[members]
        k = len(members) - 1
        scores = np.sqrt(k / (k + 1)) * np.linalg.norm(v - (v.sum(axis=0) - v) / k, axis=1)
        worst = int(np.argmax(scores))
        if scores[worst] <= WRONG_LIMIT:
            break
        i = members.pop(worst)
        out[i] = (
            f"{WRONG_PERSON}: {scores[worst]:.2f} from the other {k} photos of {name} (limit {WRONG_LIMIT:.2f})"
            f"{_closest(i, near_ids, near_dist, codes, names)}"
        )
    return out


def _same_human(
    codes: np.ndarray,
    order: np.ndarray,
    kept: np.ndarray,
    count: np.ndarray,
    sums: np.ndarray,
    sha256s: list[str],
    names: np.ndarray,
    cache: Neighbours | None,
) -> tuple[list[tuple[str, str, float, str]], Neighbours]:
    """Pairs of persons whose mean descriptors (over kept photos) are under SAME_HUMAN_LIMIT apart; the means'
    neighbours for the next build.

    Means, because averaging removes pose and light: for one human split under two names with ≥2 photos on each
    side the means are close, for lookalikes they are not. With a single photo on one side the mean is that photo
    and a lookalike is as close as a second photo of the same human: few such pairs are found (see module doc).
    """
    present = np.flatnonzero(count)
    if not len(present):
        return [], Neighbours.empty()
    means = (sums[present] / count[present, None]).astype(np.float32)
    shas = [sha256s[i] for i in order[kept[order]].tolist()]  # by person, as ``present``
    ends = np.cumsum(count[present]).tolist()
    keys = [mean_key(str(names[c]), shas[s:e]) for c, s, e in zip(present.tolist(), [0, *ends[:-1]], ends)]
    ids, dist, neighbours = nearest_other_cached(means, np.arange(len(present)), np.array(keys, dtype=KEY), cache)
    found = []
    for a, b in sorted({(min(r, int(ids[r])), max(r, int(ids[r]))) for r in np.flatnonzero(dist < SAME_HUMAN_LIMIT)}):
        ca, cb = present[a], present[b]
        d = float(np.linalg.norm(means[a] - means[b]))
        why = (
            f"{SAME_HUMAN}: their {count[ca]} and {count[cb]} photos average {d:.2f} apart "
            f"(limit {SAME_HUMAN_LIMIT:.2f}); reported, not merged"
        )
        found.append((str(names[ca]), str(names[cb]), d, why))
    return found, neighbours
