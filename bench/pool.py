"""Worker pool: ours (``lookalike.engine.pool``) against pebble's ProcessPool, side by side.

Measures, interleaved and with medians over repeats: (a) round trip of a trivial job with a 100 KB argument and a
50 KB result on 1 and 2 workers; (b) kill -9 of a worker mid-job: time until the caller gets the error and until a
next job succeeds on the replacement; (c) a job past its timeout: time from the deadline to the error and to a next
job's success; (d) throughput of 200 small jobs on 2 workers; and, once per candidate, whether the pool survives
the kill -9 of an *idle* worker. pebble runs as the bot would use it: ``asyncio.wrap_future(pool.schedule(...))``
on a spawn context. No initializer: model loading would add the same seconds to every replacement of both. The jobs
are this module's functions: spawned workers import them by name (``bench.pool``, installed with the project).

    .venv/bin/pip install pebble==5.2.3     # once: pebble is only needed here
    python -m bench.pool [--quick]          # a few minutes on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from bench.common import Section

PEBBLE = "pebble==5.2.3"  # not a requirement of the bot or the build: only this comparison uses it
REPEATS = 5  # 3 with --quick
ROUND_TRIPS = 30  # per repeat and pool size
SMALL_JOBS = 200
THROUGHPUT_RUNS = 4  # per repeat: one run of 200 small jobs takes ~30 ms, too short to judge on its own
JOB_TIMEOUT = 0.5  # s, for (c)
ARGUMENT = os.urandom(100_000)


def echo_half(data: bytes) -> bytes:
    """The trivial job of (a): 100 KB in, 50 KB out."""
    return data[: len(data) // 2]


def small(x: int) -> int:
    return x + 1


def pid_then_sleep(path: str, seconds: float) -> None:
    """Write ``pid start`` (start on the system-wide monotonic clock) atomically, then hang for ``seconds``."""
    tmp = Path(path + ".tmp")
    tmp.write_text(f"{os.getpid()} {time.monotonic()}")
    tmp.rename(path)
    time.sleep(seconds)


def pid_then_hang_in_native_code(path: str, seconds: float) -> None:
    """Like a long dlib call: SIGTERM is noted but no Python handler runs until the call returns (here: never)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    pid_then_sleep(path, seconds)


class Candidate(Protocol):
    async def start(self) -> None: ...
    async def run(self, func: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any: ...
    async def close(self) -> None: ...


class Pebble:
    """pebble's ProcessPool driven from asyncio the way a pebble-based WorkerPool would drive it."""

    def __init__(self, size: int) -> None:
        import pebble

        self.size = size
        self.pool = pebble.ProcessPool(size, context=multiprocessing.get_context("spawn"))

    async def start(self) -> None:
        """pebble spawns on first use: make every worker serve once so no timing includes start-up."""
        await asyncio.gather(*(self.run(time.sleep, 0.3) for _ in range(self.size)))

    async def run(self, func: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        return await asyncio.wrap_future(self.pool.schedule(func, args=args, timeout=timeout))

    async def close(self) -> None:
        self.pool.stop()
        await asyncio.to_thread(self.pool.join)


def factories() -> dict[str, Callable[[int], Candidate]]:
    """The two candidates by name; our pool as this checkout has it."""
    try:
        import pebble
    except ImportError as exc:
        raise RuntimeError(f"bench/pool.py compares our pool with pebble's: .venv/bin/pip install {PEBBLE}") from exc
    from lookalike.engine.pool import WorkerPool

    logging.getLogger("lookalike.engine.pool").setLevel(logging.ERROR)  # a "replacement" line per kill is noise here
    return {
        "ours": lambda size: WorkerPool(size, queue_size=SMALL_JOBS),
        f"pebble {pebble.__version__}": Pebble,
    }


async def until_exists(path: Path, timeout: float = 30.0) -> tuple[int, float]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} never appeared")
        await asyncio.sleep(0.002)
    pid, start = path.read_text().split()
    return int(pid), float(start)


async def round_trips(pool: Candidate) -> list[float]:
    times = []
    for _ in range(ROUND_TRIPS):
        start = time.perf_counter()
        await pool.run(echo_half, ARGUMENT)
        times.append(time.perf_counter() - start)
    return times


async def kill_recovery(pool: Candidate, path: Path) -> tuple[float, float, str]:
    """(seconds to the caller's error, seconds to a next job's result, the error's type) after SIGKILL mid-job."""
    job = asyncio.create_task(pool.run(pid_then_sleep, str(path), 30.0))
    pid, _ = await until_exists(path)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    error = await _error_of(job)
    failed = time.monotonic()
    await pool.run(small, 1)
    return failed - killed, time.monotonic() - killed, error


async def timeout_recovery(
    pool: Candidate, path: Path, hang: Callable[[str, float], None] = pid_then_sleep
) -> tuple[float, float, str]:
    """(seconds from the deadline to the error, and to a next job's result, the error's type)."""
    job = asyncio.create_task(pool.run(hang, str(path), 30.0, timeout=JOB_TIMEOUT))
    _, started = await until_exists(path)
    deadline = started + JOB_TIMEOUT
    error = await _error_of(job)
    failed = time.monotonic()
    await pool.run(small, 1)
    return failed - deadline, time.monotonic() - deadline, error


async def throughput(pool: Candidate) -> float:
    start = time.perf_counter()
    await asyncio.gather(*(pool.run(small, i) for i in range(SMALL_JOBS)))
    return SMALL_JOBS / (time.perf_counter() - start)


async def idle_kill(factory: Callable[[int], Candidate], path: Path) -> str:
    """Kill -9 a worker between jobs, then ask for a job: what happens."""
    pool = factory(1)
    await pool.start()
    try:
        await pool.run(pid_then_sleep, str(path), 0.0)
        pid, _ = await until_exists(path)
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.5)  # let the pool notice
        start = time.monotonic()
        try:
            await asyncio.wait_for(pool.run(small, 1), 30.0)
        except Exception as exc:
            return f"fails: {type(exc).__name__}: {exc}"
        return f"next job ok in {time.monotonic() - start:.3f} s"
    finally:
        await pool.close()


async def _error_of(job: asyncio.Task[Any]) -> str:
    try:
        await job
    except Exception as exc:
        return type(exc).__name__
    raise RuntimeError("the job should have failed")


async def measure(folder: Path, repeats: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
    makers = factories()
    names = list(makers)
    raw: dict[str, dict[str, list[Any]]] = {name: {} for name in names}
    pools: dict[str, dict[int, Candidate]] = {name: {n: makers[name](n) for n in (1, 2)} for name in names}
    fault: dict[str, Candidate] = {name: makers[name](1) for name in names}  # kill and timeout victims
    for pool in [*fault.values(), *(p for by_size in pools.values() for p in by_size.values())]:
        await pool.start()
    try:
        for turn in range(repeats):
            for name in names if turn % 2 == 0 else names[::-1]:  # alternate who goes first
                got = raw[name]
                for size, pool in pools[name].items():
                    got.setdefault(f"rtt{size}", []).extend(await round_trips(pool))
                got.setdefault("kill", []).append(await kill_recovery(fault[name], folder / f"k{name}{turn}"))
                got.setdefault("timeout", []).append(await timeout_recovery(fault[name], folder / f"t{name}{turn}"))
                got.setdefault("native", []).append(
                    await timeout_recovery(fault[name], folder / f"n{name}{turn}", pid_then_hang_in_native_code)
                )
                for _ in range(THROUGHPUT_RUNS):
                    got.setdefault("throughput", []).append(await throughput(pools[name][2]))
    finally:
        for pool in [*fault.values(), *(p for by_size in pools.values() for p in by_size.values())]:
            await pool.close()
    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        got = raw[name]
        summary[name] = {
            "rtt1": statistics.median(got["rtt1"]),
            "rtt2": statistics.median(got["rtt2"]),
            "kill_error": statistics.median(k[0] for k in got["kill"]),
            "kill_next": statistics.median(k[1] for k in got["kill"]),
            "kill_type": "/".join(sorted({k[2] for k in got["kill"]})),
            "timeout_error": statistics.median(t[0] for t in got["timeout"]),
            "timeout_next": statistics.median(t[1] for t in got["timeout"]),
            "timeout_type": "/".join(sorted({t[2] for t in got["timeout"]})),
            "native_error": statistics.median(t[0] for t in got["native"]),
            "native_next": statistics.median(t[1] for t in got["native"]),
            "throughput": statistics.median(got["throughput"]),
            "idle_kill": await idle_kill(makers[name], folder / f"i{name}"),
        }
    return names, summary


def render(names: list[str], summary: dict[str, dict[str, Any]], repeats: int) -> str:
    rows = [
        ("(a) round trip, 100 KB in / 50 KB out, 1 worker", "rtt1", "ms"),
        ("(a) round trip, 100 KB in / 50 KB out, 2 workers", "rtt2", "ms"),
        ("(b) kill -9 mid-job → caller gets the error", "kill_error", "ms"),
        ("(b) kill -9 mid-job → next job done", "kill_next", "ms"),
        ("(b) error raised", "kill_type", ""),
        (f"(c) timeout {JOB_TIMEOUT} s: deadline → error", "timeout_error", "ms"),
        ("(c) deadline → next job done", "timeout_next", "ms"),
        ("(c) error raised", "timeout_type", ""),
        ("(c) same, job stuck in native code: deadline → error", "native_error", "ms"),
        ("(c) same, job stuck in native code: deadline → next job done", "native_next", "ms"),
        (f"(d) throughput, {SMALL_JOBS} small jobs, 2 workers", "throughput", "jobs/s"),
        ("kill -9 of an idle worker, then a job", "idle_kill", ""),
    ]
    samples = f"{repeats} repeats; (a) {repeats * ROUND_TRIPS} jobs, (d) {repeats * THROUGHPUT_RUNS} runs"
    lines = [f"| measure (median of {samples}) | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    for label, key, unit in rows:
        cells = []
        for name in names:
            value = summary[name][key]
            if unit == "ms":
                cells.append(f"{value * 1000:.2f} ms" if value < 0.01 else f"{value * 1000:.0f} ms")
            elif unit:
                cells.append(f"{value:.0f} {unit}")
            else:
                cells.append(str(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(quick: bool) -> list[Section]:
    repeats = 3 if quick else REPEATS
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as scratch:
        names, summary = asyncio.run(measure(Path(scratch), repeats))
    section = Section("Worker pool: ours against pebble")
    section.add(
        render(names, summary, repeats)
        + f"\n\n{os.cpu_count()} cores, Python {sys.version.split()[0]}, {time.monotonic() - started:.0f} s. 'next job"
        " done' includes starting the replacement worker (a spawn: a fresh interpreter importing the job's module)."
    )
    section.data["pool"] = summary
    return [section]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"3 repeats instead of {REPEATS}")
    run(parser.parse_args().quick)
