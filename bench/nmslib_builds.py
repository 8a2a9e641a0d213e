"""nmslib wheel vs nmslib compiled here with -march=native (SSE4/AVX): HNSW build and query time, side by side.

The PyPI wheel warns that it was built without SSE4/AVX. Both builds load the *same* saved index (the graph
format does not depend on the build) and answer the same queries, one subprocess per build, alternating.
The other interpreter is ``$LOOKALIKE_NMSLIB_PYTHON``, by default /tmp/venv-nmslib/bin/python (bench/README.md).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import (
    Section,
    alternate_interpreters,
    interpreter_has,
    median,
    percentile,
    saved_index_dir,
    synthesize,
    table,
)

NATIVE_PYTHON = Path(os.environ.get("LOOKALIKE_NMSLIB_PYTHON", "/tmp/venv-nmslib/bin/python"))


def worker(folder: Path) -> None:
    """In the measured interpreter: load the saved index, time single queries; rebuild a slice, time the build."""
    from lookalike.engine.hnsw import HnswIndex, HnswParams

    index = HnswIndex.load(folder)
    queries = np.load(folder / "queries.npy")
    for q in queries[:50]:  # warm-up: page in the graph
        index.query(q, 1)
    lat = []
    for q in queries:
        start = time.perf_counter()
        index.query(q, 1)
        lat.append((time.perf_counter() - start) * 1000)
    build_vectors = np.load(folder / "build.npy")
    start = time.perf_counter()
    HnswIndex.build(build_vectors, HnswParams())
    build_s = time.perf_counter() - start
    print(json.dumps({"lat": lat, "build_s": build_s}))


def run(quick: bool, n: int = 0) -> list[Section]:
    section = Section("nmslib wheel vs nmslib built with -march=native")
    if not interpreter_has(NATIVE_PYTHON, "nmslib"):
        section.add(f"Skipped: no native nmslib build at {NATIVE_PYTHON} (set LOOKALIKE_NMSLIB_PYTHON).")
        return [section]
    from lookalike.engine.hnsw import HnswIndex, HnswParams

    n = n or (100_000 if quick else 1_000_000)
    folder = saved_index_dir(n)
    folder.mkdir(parents=True, exist_ok=True)
    data = synthesize(n, 2000)  # the same vectors as index_scale's, which saves its largest index here
    if not (folder / "index.json").is_file():
        HnswIndex.build(data.vectors, HnswParams()).save(folder)
    np.save(folder / "queries.npy", data.queries)
    np.save(folder / "build.npy", data.vectors[:50_000])
    configs = {"PyPI wheel": (sys.executable, {}), "-march=native": (str(NATIVE_PYTHON), {})}
    runs = alternate_interpreters(configs, "bench.nmslib_builds", ["--worker", str(folder)], 2 if quick else 4)
    rows = []
    base = median([x for r in runs["PyPI wheel"] for x in r["lat"]])
    for name, results in runs.items():
        lat = [x for r in results for x in r["lat"]]
        build = median([r["build_s"] for r in results])
        p50 = median(lat)
        rows.append([name, f"{p50:.3f}", f"{percentile(lat, 99):.3f}", f"{base / p50:.2f}×", f"{build:.1f}"])
    section.add(
        f"Same saved index of {n:,} synthetic vectors (M=16, ef_construction=200, ef_search=64), 2000 single "
        "queries per run; build = a fresh 50k-vector index on 2 threads.\n\n"
        + table(["nmslib", "p50 ms", "p99 ms", "p50 speed-up", "build 50k s"], rows)
    )
    section.data["nmslib_builds"] = {name: row[1] for name, row in zip(runs, rows)}
    return [section]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", type=Path, help="internal: measure in this interpreter, print JSON")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
    else:
        run(args.quick)
