"""Nearest catalog photos for a descriptor: nmslib HNSW (L2) for serving, exact numpy search for checking it."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """fd 2 on /dev/null, C stdio flushed before it is put back: nmslib writes to stderr from C++ (its import's
    "your CPU supports instructions…" hint, a "Check failed" line before it raises on a bad file), which an
    operator would read as a second error."""
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


with _stderr_silenced():
    import nmslib


INDEX_FILE = "index.hnsw"
INDEX_FILES = (INDEX_FILE, INDEX_FILE + ".dat")  # the graph, and the vectors nmslib saves beside it
PARAMS_FILE = "index.json"


@dataclass(frozen=True)
class HnswParams:
    """Defaults from bench/RESULTS.md (index section, up to 1M synthetic descriptors on 2 cores): M=32 with
    ef_search=64 gives recall@1 1.000 at 100k (0.19 ms) and 0.988–0.995 at 1M (0.46–0.55 ms) over two builds,
    where M=16 tops out at 0.98 and M=8 never reaches 0.99; ~20% more memory than M=16. For a 1M catalog,
    ``--ef-search 128`` secures 0.99 at ~1.4 ms a query."""

    M: int = 32
    ef_construction: int = 200
    ef_search: int = 64


def _new_index():
    return nmslib.init(method="hnsw", space="l2", data_type=nmslib.DataType.DENSE_VECTOR)


class HnswIndex:
    """An HNSW graph over float32 vectors; ids are row numbers. Distances returned are true L2 (not squared)."""

    def __init__(self, index, params: HnswParams, size: int, extra: dict | None = None) -> None:
        self._index = index
        self.params = params
        self.size = size
        self.extra = extra or {}  # what was saved beside the graph (recall, the embeddings' fingerprint)

    @classmethod
    def build(cls, vectors: np.ndarray, params: HnswParams = HnswParams(), threads: int = 0) -> HnswIndex:
        index = _new_index()
        index.addDataPointBatch(np.ascontiguousarray(vectors, dtype=np.float32))
        index.createIndex(
            {
                "M": params.M,
                "efConstruction": params.ef_construction,
                "post": 0,
                "indexThreadQty": threads or (os.cpu_count() or 1),
            },
            print_progress=False,
        )
        built = cls(index, params, len(vectors))
        built.set_ef(params.ef_search)
        return built

    def set_ef(self, ef_search: int) -> None:
        self._index.setQueryTimeParams({"efSearch": ef_search})

    def query(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and L2 distances of the ``k`` nearest rows, nearest first."""
        ids, d2 = self._index.knnQuery(np.asarray(vector, dtype=np.float32), k=min(k, self.size))
        return ids, np.sqrt(np.maximum(d2, 0.0))

    def query_batch(self, vectors: np.ndarray, k: int, threads: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        found = self._index.knnQueryBatch(
            np.asarray(vectors, dtype=np.float32), k=min(k, self.size), num_threads=threads
        )
        return [(ids, np.sqrt(np.maximum(d2, 0.0))) for ids, d2 in found]

    def save(self, assets: Path, extra: dict | None = None) -> None:
        """Graph and data (``index.hnsw`` + ``.dat``) and the parameters (``index.json``), with the two files'
        sizes: nmslib reads a truncated or foreign file into a crash or a wrong graph, so ``load`` checks first."""
        self._index.saveIndex(str(assets / INDEX_FILE), save_data=True)
        sizes = {name: (assets / name).stat().st_size for name in INDEX_FILES}
        meta = {**asdict(self.params), "size": self.size, "bytes": sizes, **(extra or {})}
        (assets / PARAMS_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, assets: Path) -> HnswIndex:
        """Raises ValueError naming the damaged file (missing, truncated, not an index, not this index's)."""
        try:
            meta = json.loads((assets / PARAMS_FILE).read_text(encoding="utf-8"))
            params = HnswParams(int(meta["M"]), int(meta["ef_construction"]), int(meta["ef_search"]))
            size, expected = int(meta["size"]), {name: int(meta["bytes"][name]) for name in INDEX_FILES}
        except KeyError as exc:
            raise ValueError(f"{assets / PARAMS_FILE}: no {exc} (made by an older version)") from None
        except FileNotFoundError:
            raise ValueError(f"{assets / PARAMS_FILE}: missing") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{assets / PARAMS_FILE}: damaged ({type(exc).__name__}: {exc})") from None
        for name, want in expected.items():
            have = (assets / name).stat().st_size if (assets / name).is_file() else None
            if have != want:
                found = "missing" if have is None else f"{have} bytes, {want} expected"
                raise ValueError(f"{assets / name}: {found}")
        index = _new_index()
        try:
            with _stderr_silenced():
                index.loadIndex(str(assets / INDEX_FILE), load_data=True)
        except (RuntimeError, MemoryError) as exc:  # nmslib's "Check failed", or a garbage length allocated
            raise ValueError(f"{assets / INDEX_FILE}: not a readable index ({type(exc).__name__})") from None
        if len(index) != size:
            raise ValueError(f"{assets / INDEX_FILE}: {len(index)} vectors, {PARAMS_FILE} says {size}")
        loaded = cls(index, params, size, meta)
        loaded.set_ef(params.ef_search)
        return loaded


def exact_knn(vectors: np.ndarray, queries: np.ndarray, k: int, block: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force L2 k-NN as a matrix product (the reference HNSW is checked against).

    ``block`` queries at a time: by default as many as keep each distance matrix near 64 MB, so that checking a
    million-photo index does not take ~12 GB (1,024 queries × 1M distances, a few temporaries of each).
    """
    queries = np.atleast_2d(queries).astype(np.float32)
    k = min(k, len(vectors))
    block = block or max(1, min(1024, (1 << 24) // max(len(vectors), 1)))
    sq = np.einsum("ij,ij->i", vectors, vectors)
    ids = np.empty((len(queries), k), dtype=np.int64)
    dist = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        d2 = np.einsum("ij,ij->i", q, q)[:, None] + sq[None, :] - 2.0 * q @ vectors.T
        part = np.argpartition(d2, k - 1, axis=1)[:, :k]
        rows = np.arange(len(q))[:, None]
        order = np.argsort(d2[rows, part], axis=1)
        ids[start : start + block] = part[rows, order]
        dist[start : start + block] = np.sqrt(np.maximum(d2[rows, part[rows, order]], 0.0))
    return ids, dist


def recall_at_1(index: HnswIndex, vectors: np.ndarray, sample: int = 5000, seed: int = 0) -> float:
    """How often HNSW's nearest *other* row equals the exact one, over catalog rows used as queries.

    Each query is a catalog vector; its own row (distance 0) is excluded from both answers. A different id at
    the same distance (duplicate photos) counts as a hit.
    """
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    exact_ids, exact_d = exact_knn(vectors, vectors[rows], 2)
    hits = 0
    for row, (ids, dists), ex_ids, ex_d in zip(rows, index.query_batch(vectors[rows], 2), exact_ids, exact_d):
        want = ex_d[1] if ex_ids[0] == row else ex_d[0]
        got = [d for i, d in zip(ids, dists) if i != row]
        hits += bool(got) and got[0] <= want + 1e-5
    return hits / len(rows)
