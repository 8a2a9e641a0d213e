"""Exact nearest neighbours among a set's own rows, in bounded memory: for each row, the nearest row of another code.

Cleaning asks it of every photo (the nearest photo of another person) and of every person's mean descriptor. Exact,
because a cleaning rule must not change with an approximation's luck; in tiles of at most _TILE float32 distances,
because an N×N matrix does not fit at a million photos. Time grows as N²: the saved neighbours
(``lookalike/build/neighbours.py``) spare a build all but the rows that changed. Timings: bench/RESULTS.md,
"Cleaning at scale".

``lookalike.engine.hnsw.exact_knn`` is a different question: the k nearest rows to queries from outside the set,
with no codes to skip, as the reference HNSW's recall is checked against.
"""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 16  # rows per chunk of per-row vector arithmetic (bounded temporaries)
_TILE = 1 << 22  # float32 distances computed at once (16 MB whatever the size: never an N×N matrix)
_ROWS = 512  # rows per tile: 512 × 8192 columns, faster at 1M than whole rows


def nearest_other(vectors: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the nearest row with another code: (ids, L2 distances); -1 and inf where there is none."""
    n = len(vectors)
    ids = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.inf, dtype=np.float32)
    refine_nearest_other(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(codes), None, ids, dist)
    return ids, dist


def refine_nearest_other(
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
    for s in range(0, len(a), CHUNK):
        d = vectors[a[s : s + CHUNK]] - vectors[b[s : s + CHUNK]]
        out[s : s + CHUNK] = np.sqrt(np.einsum("ij,ij->i", d, d))
    return out
