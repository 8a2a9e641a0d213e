"""Throughput: photos/s through the bot's WorkerPool with 1 and 2 workers on the same photo stream.

Each round pushes the whole stream into the pool at once (queue large enough to hold it) and times until the
last result; rounds alternate 1 and 2 workers so machine noise hits both. The job is the bot's own
``analyze_photo`` on 1280 px JPEGs, models loaded by the pool's initializer before timing starts.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.common import Section, big_query_photos, median, scaled_jpeg, table, verdict
from lookalike.engine.analysis import analyze_photo, analyzer
from lookalike.engine.pool import WorkerPool

WORKERS = (1, 2)


async def _stream(pool: WorkerPool, photos: list[bytes]) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(pool.run(analyze_photo, data) for data in photos))
    return len(photos) / (time.perf_counter() - start)


async def _measure(photos: list[bytes], rounds: int) -> dict[int, list[float]]:
    pools = {n: WorkerPool(n, initializer=analyzer, queue_size=len(photos)) for n in WORKERS}
    rates: dict[int, list[float]] = {n: [] for n in WORKERS}
    try:
        for pool in pools.values():
            await pool.start()
        for pool in pools.values():  # warm-up: first job per worker pays allocations
            await _stream(pool, photos[: pool.size])
        for turn in range(rounds):
            for n in WORKERS if turn % 2 == 0 else WORKERS[::-1]:
                rates[n].append(await _stream(pools[n], photos))
    finally:
        for pool in pools.values():
            await pool.close()
    return rates


def run(quick: bool) -> list[Section]:
    section = Section("Throughput through the worker pool")
    sources = big_query_photos(12)
    photos = [scaled_jpeg(p, 1280) for p in sources] * (1 if quick else 2)
    rounds = 2 if quick else 4
    rates = asyncio.run(_measure(photos, rounds))
    one, two = median(rates[1]), median(rates[2])
    section.add(
        f"{len(photos)} photos at 1280 px per round, {rounds} rounds alternating; machine: {os.cpu_count()} cores.\n\n"
        + table(
            ["workers", "photos/s (median)", "all rounds", "vs 1 worker"],
            [
                [
                    n,
                    f"{median(rates[n]):.2f}",
                    ", ".join(f"{r:.2f}" for r in rates[n]),
                    f"{median(rates[n]) / one:.2f}×",
                ]
                for n in WORKERS
            ],
        )
        + f"\n\n- **2 workers / 1 worker: {two / one:.2f}×** (target ≥ 1.8×: {verdict(two / one >= 1.8)})."
    )
    section.data["throughput"] = {n: median(rates[n]) for n in WORKERS}
    return [section]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args().quick)
