"""Distributed build: photos/s describing the same catalog photos in the local worker pool
(2 processes) and on a 2-worker Dask LocalCluster on the same 2 cores, at --jitters 1 and 10; then the capacity
model extended to N machines.

Both contenders run the build's own describing code (``_describe_all`` for the pool, ``describe_on_cluster``
for Dask) on the same photo list, alternating, order flipped every round. Two rates per run:

- **stage**: all photos over the whole describing stage, start-up included (local: spawning the pool and loading
  the models, paid by every build; Dask: connecting and registering the plugin — its workers are long-lived and
  loaded their models when they joined);
- **steady**: the results after each worker's first one, over the time they took: the per-photo overhead of
  shipping bytes to a worker and the result back, which is what scales with the catalog;
- **CPU per photo**: CPU seconds of every process involved (this one — the client, and for the LocalCluster the
  scheduler — plus all worker processes) over the steady part, per photo. On a shared, loaded machine the
  wall-clock rates swing with the neighbours; the CPU a photo costs does not, so the overhead verdict uses it.

Run: ``python -m bench.cluster_build [--quick]`` (full: ~5 min on 2 idle cores).
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil

from bench.common import Section, median, person_photos, table, verdict
from lookalike.build.build_embeddings import _describe_all
from lookalike.build.checkpoint import sha256_file
from lookalike.build.describe import Described, QualityRules
from lookalike.build.distributed import connect, describe_on_cluster

WORKERS = 2
CATALOG_PHOTOS = 1_000_000
LINK_BYTES_PER_S = 125e6  # the client's upload link in the capacity model: 1 Gbit/s
MACHINES = (1, 4, 16, 64)
CORES = (8, 32)
NOOP_TASKS = 2000


def _photos(count: int) -> list[Path]:
    """``count`` dev-set photos, one person after another (round robin), so sizes and faces are mixed."""
    people = list(person_photos().values())
    ordered = [paths[i] for i in range(max(map(len, people))) for paths in people if i < len(paths)]
    return ordered[:count]


def _cpu_seconds() -> float:
    """CPU time of this process, its exited children and its live descendants (the cluster's workers)."""
    used = sum(sum(resource.getrusage(who)[:2]) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            used += times.user + times.system
        except psutil.NoSuchProcess:  # exited between listing and asking: its time moves to RUSAGE_CHILDREN
            pass
    return used


def _rates(describe: Callable[[], Iterator[Described]], photos: int) -> tuple[float, float, float]:
    """(stage photos/s, steady photos/s, steady CPU seconds per photo) of one run; steady: from each worker's first
    result to the last one, so neither the pool's start-up nor its shutdown counts."""
    start, stamps, cpu = time.perf_counter(), [], {}
    for _ in describe():
        stamps.append(time.perf_counter())
        if len(stamps) in (WORKERS, photos):
            cpu[len(stamps)] = _cpu_seconds()
    stage = len(stamps) / (stamps[-1] - start)
    steady = (photos - WORKERS) / (stamps[-1] - stamps[WORKERS - 1])
    return stage, steady, (cpu[photos] - cpu[WORKERS]) / (photos - WORKERS)


def _noop(x: int) -> int:
    return x


def _tasks_per_second(address: str) -> float:
    """Trivial tasks through one client and the scheduler: the ceiling on photos/s whatever the workers."""
    client = connect(address)
    try:
        start = time.perf_counter()
        client.gather(client.map(_noop, range(NOOP_TASKS), pure=False))
        return NOOP_TASKS / (time.perf_counter() - start)
    finally:
        client.close()


def run(quick: bool) -> list[Section]:
    from distributed import LocalCluster  # only this bench needs a cluster of its own

    section = Section("Distributed build: local pool against a Dask LocalCluster")
    counts = {1: 30 if quick else 60, 10: 12 if quick else 30}
    rounds = 1 if quick else 2
    photos = _photos(max(counts.values()))
    avg_bytes = sum(p.stat().st_size for p in photos) / len(photos)
    jobs = {j: [(p, sha256_file(p), j, QualityRules()) for p in photos[:n]] for j, n in counts.items()}
    with LocalCluster(
        n_workers=WORKERS,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # loopback, any free port (never 8787, which a real cluster may hold)
        silence_logs=logging.ERROR,
    ) as cluster:
        address = cluster.scheduler_address
        connect(address).close()  # the workers load their models now, as long-lived workers did long ago
        contenders: dict[str, Callable[[list], Iterator[Described]]] = {
            "local pool": lambda todo: _describe_all(todo, WORKERS),
            "Dask LocalCluster": lambda todo: describe_on_cluster(todo, address),
        }
        rates: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
        load = os.getloadavg()[0]
        for jitters, todo in jobs.items():
            for turn in range(rounds):
                for name in list(contenders)[:: 1 if turn % 2 == 0 else -1]:
                    rates.setdefault((jitters, name), []).append(_rates(lambda: contenders[name](todo), len(todo)))  # noqa: B023
        ceiling = _tasks_per_second(address)
        load = max(load, os.getloadavg()[0])

    rows, data = [], {}
    for jitters, n in counts.items():
        local = [median([r[i] for r in rates[jitters, "local pool"]]) for i in range(3)]
        for name in contenders:
            stage, steady, cpu = (median([r[i] for r in rates[jitters, name]]) for i in range(3))
            rows.append(
                [
                    jitters,
                    n,
                    name,
                    f"{stage:.2f}",
                    f"{steady:.2f}",
                    ", ".join(f"{r[1]:.2f}" for r in rates[jitters, name]),
                    f"{cpu * 1000:.0f}",
                    f"{(cpu / local[2] - 1) * 100:+.1f}%" if name != "local pool" else "—",
                    f"{(1 - steady / local[1]) * 100:+.1f}%" if name != "local pool" else "—",
                ]
            )
            data[f"{jitters}/{name}"] = {"stage": stage, "steady": steady, "cpu_s": cpu}
    section.add(
        f"{sum(counts.values())} photos of the dev set (mean {avg_bytes / 1024:.0f} KiB), {rounds} round(s) per "
        f"contender, alternating; {WORKERS} worker processes either way on {os.cpu_count()} cores; load average "
        f"up to {load:.1f} during the run (other work on the machine).\n\n"
        + table(
            [
                "jitters",
                "photos",
                "describing in",
                "stage photos/s",
                "steady photos/s",
                "steady, every round",
                "CPU ms/photo",
                "overhead CPU",
                "overhead steady",
            ],
            rows,
        )
    )
    worst = max(data[f"{j}/Dask LocalCluster"]["cpu_s"] / data[f"{j}/local pool"]["cpu_s"] - 1 for j in counts)
    section.add(
        f"- **Distributed overhead: at most {worst * 100:+.1f}% CPU per photo** (target ≤ 10%: "
        f"{verdict(worst <= 0.10)}); the wall-clock columns are only as steady as the machine was. Trivial tasks "
        f"through this client and scheduler: {ceiling:,.0f}/s (the ceiling on photos/s however many workers; "
        "measured on the same 2 busy cores, so a floor)."
    )

    per_core = {j: 1 / data[f"{j}/Dask LocalCluster"]["cpu_s"] for j in counts}  # a dedicated core, overhead in
    link_cap = LINK_BYTES_PER_S / avg_bytes
    cap = min(link_cap, ceiling)
    measured = ", ".join(f"jitters {j}: {per_core[j]:.2f}" for j in sorted(counts))
    model = []
    for machines in MACHINES:
        for cores in CORES:
            speeds = {j: min(machines * cores * per_core[j], cap) for j in counts}
            model.append(
                [
                    machines,
                    cores,
                    machines * cores,
                    *(f"{speeds[j]:,.0f}" for j in sorted(counts)),
                    *(f"{CATALOG_PHOTOS / speeds[j] / 3600:,.1f}" for j in sorted(counts)),
                ]
            )
    section.add(
        f"Capacity for a {CATALOG_PHOTOS:,}-photo catalog on N machines × C cores, one single-threaded Dask worker "
        f"per core, each doing 1 ÷ the CPU per photo measured above ({measured} photos/s), capped by the client's "
        f"upload ({LINK_BYTES_PER_S * 8 / 1e9:.0f} Gbit/s ÷ "
        f"{avg_bytes / 1024:.0f} KiB = {link_cap:,.0f} photos/s) and the scheduler's task rate ({ceiling:,.0f}/s).\n\n"
        + table(
            [
                "machines",
                "cores each",
                "cores",
                *(f"photos/s jitters {j}" for j in sorted(counts)),
                *(f"hours for 1M, jitters {j}" for j in sorted(counts)),
            ],
            model,
        )
        + f"\n\n- Linear in cores until {cap / per_core[10]:,.0f} cores at jitters 10 and {cap / per_core[1]:,.0f} at "
        "jitters 1, where the client's link or the scheduler saturates. The client also hashes every photo before "
        "describing (one read of the catalog), and the store is assembled and saved on the client at the end."
    )
    section.data["distributed"] = {"rates": data, "tasks_per_s": ceiling, "avg_photo_bytes": avg_bytes}
    return [section]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args().quick)
