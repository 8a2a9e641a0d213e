"""The worker pool: results and exceptions cross the process boundary, workers run in parallel, a full queue
says busy, a lost or hung worker costs only its own job, and shutdown lets running jobs finish."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lookalike.engine import analysis
from lookalike.engine.pool import (
    PoolBusy,
    PoolClosed,
    PoolEvent,
    RemoteError,
    RemoteTraceback,
    WorkerDied,
    WorkerPool,
    WorkerStartError,
    WorkerTimeout,
)
from lookalike.engine.pool_map import imap_unordered
from lookalike.errors import NoFace
from testkit import pool_jobs
from testkit.data import FACES
from testkit.procs import spawn_workers


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` without blocking the loop: the pool's state changes as the loop runs."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_results_and_exception_types_cross_the_boundary() -> None:
    async def main() -> None:
        async with WorkerPool(1, queue_size=4) as pool:
            assert await pool.run(pool_jobs.add, 2, 3) == 5
            with pytest.raises(NoFace) as no_face:
                await pool.run(pool_jobs.raise_no_face)
            assert no_face.value.code == "no_face"
            assert isinstance(no_face.value.__cause__, RemoteTraceback)
            assert "raise_no_face" in str(no_face.value.__cause__)
            with pytest.raises(ValueError, match="bad value"):
                await pool.run(pool_jobs.raise_value_error, "bad value")
            with pytest.raises(TypeError):  # pickling the result failed in the worker
                await pool.run(pool_jobs.return_a_lock)
            assert await pool.run(pool_jobs.add, 1, 1) == 2
            assert pool.restarts == 0

    run(main())


@pytest.mark.parametrize(
    ("job", "text"),
    [(pool_jobs.raise_needs_two_args, "NeedsTwoArgs: this and that"), (pool_jobs.raise_holds_a_lock, "HoldsALock")],
)
def test_exception_that_cannot_cross_comes_back_as_remote_error(job: Callable[[], None], text: str) -> None:
    async def main() -> None:
        async with WorkerPool(1, queue_size=1) as pool:
            with pytest.raises(RemoteError, match=text):
                await pool.run(job)
            assert await pool.run(pool_jobs.add, 1, 2) == 3
            assert pool.restarts == 0

    run(main())


def test_two_workers_run_two_jobs_in_parallel() -> None:
    async def main() -> None:
        async with WorkerPool(2, queue_size=0) as pool:
            (pid_a, start_a, end_a), (pid_b, start_b, end_b) = await asyncio.gather(
                pool.run(pool_jobs.interval, 0.5), pool.run(pool_jobs.interval, 0.5)
            )
            assert pid_a != pid_b
            assert max(start_a, start_b) < min(end_a, end_b)  # the two intervals overlap

    run(main())


def test_the_event_loop_keeps_ticking_through_start_jobs_and_recovery() -> None:
    """Start-up, a long job and a timed-out job's replacement all wait in threads, never on the loop."""

    async def main() -> None:
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beating = asyncio.create_task(heartbeat())
        async with WorkerPool(1, pool_jobs.slow_initializer, queue_size=1) as pool:
            assert ticks >= 10, "initializers ran on the loop"
            ticks = 0
            await pool.run(pool_jobs.interval, 0.5)
            assert ticks >= 10, "waiting for the job blocked the loop"
            ticks = 0
            with pytest.raises(WorkerTimeout):
                await pool.run(pool_jobs.interval, 30.0, timeout=0.2)
            await pool.run(pool_jobs.add, 1, 1)  # on the replacement, after its 0.5 s initializer
            assert ticks >= 20, "replacing the worker blocked the loop"
        beating.cancel()

    run(main())


def test_full_queue_raises_busy_at_once() -> None:
    async def main() -> None:
        events: list[PoolEvent] = []
        async with WorkerPool(1, queue_size=1, on_event=events.append) as pool:
            running = asyncio.create_task(pool.run(pool_jobs.interval, 0.5))
            await until(lambda: pool.busy_workers == 1)
            waiting = asyncio.create_task(pool.run(pool_jobs.add, 1, 2))
            await until(lambda: pool.queue_depth == 1)
            with pytest.raises(PoolBusy):
                await pool.run(pool_jobs.add, 3, 4)
            assert pool.rejected == 1 and PoolEvent.REJECTED in events
            assert (await running)[0] > 0
            assert await waiting == 3
            assert pool.queue_depth == 0 and pool.busy_workers == 0

    run(main())


def test_idle_workers_take_jobs_beyond_queue_size() -> None:
    """Jobs submitted in one tick that idle workers are about to take are not 'waiting'."""

    async def main() -> None:
        async with WorkerPool(2, queue_size=0) as pool:
            jobs = [asyncio.create_task(pool.run(pool_jobs.interval, 0.2)) for _ in range(3)]
            results = await asyncio.gather(*jobs, return_exceptions=True)
            assert [type(r) for r in results] == [tuple, tuple, PoolBusy]

    run(main())


def test_killed_worker_fails_only_its_job_and_is_replaced(tmp_path: Path) -> None:
    async def main() -> None:
        events: list[PoolEvent] = []
        pid_file = tmp_path / "pid"
        async with WorkerPool(1, queue_size=2, on_event=events.append) as pool:
            doomed = asyncio.create_task(pool.run(pool_jobs.report_pid_then_sleep, str(pid_file), 30.0))
            queued = asyncio.create_task(pool.run(pool_jobs.add, 2, 3))
            await until(pid_file.exists)
            killed = int(pid_file.read_text())
            os.kill(killed, signal.SIGKILL)
            with pytest.raises(WorkerDied, match="-9"):
                await doomed
            assert pool.restarts == 1
            assert await queued == 5  # ran on the replacement
            assert await pool.run(pool_jobs.pid) != killed
            assert events == [PoolEvent.STARTED, PoolEvent.DIED, PoolEvent.STARTED]

    run(main())


def test_segfault_leaves_the_other_worker_alone() -> None:
    async def main() -> None:
        async with WorkerPool(2, queue_size=0) as pool:
            other = asyncio.create_task(pool.run(pool_jobs.interval, 0.5))
            await until(lambda: pool.busy_workers == 1)
            with pytest.raises(WorkerDied, match="-11"):
                await pool.run(pool_jobs.segfault)
            assert (await other)[0] > 0
            assert await pool.run(pool_jobs.add, 1, 1) == 2
            assert pool.restarts == 1

    run(main())


def test_hung_job_times_out_and_the_worker_is_replaced() -> None:
    async def main() -> None:
        events: list[PoolEvent] = []
        async with WorkerPool(1, queue_size=1, on_event=events.append) as pool:
            hung_pid = await pool.run(pool_jobs.pid)
            with pytest.raises(WorkerTimeout):
                await pool.run(pool_jobs.interval, 30.0, timeout=0.3)
            assert pool.restarts == 1 and PoolEvent.TIMED_OUT in events
            assert await pool.run(pool_jobs.pid) != hung_pid
            assert await pool.run(pool_jobs.interval, 0.01, timeout=10.0)

    run(main())


def test_close_lets_running_and_queued_jobs_finish() -> None:
    async def main() -> None:
        pool = WorkerPool(1, queue_size=2)
        await pool.start()
        running = asyncio.create_task(pool.run(pool_jobs.interval, 0.5))
        await until(lambda: pool.busy_workers == 1)
        queued = asyncio.create_task(pool.run(pool_jobs.add, 4, 5))
        await until(lambda: pool.queue_depth == 1)
        await pool.close(timeout=10.0)
        assert (await running)[0] > 0
        assert await queued == 9
        with pytest.raises(PoolClosed):
            await pool.run(pool_jobs.add, 1, 2)

    run(main())


def test_close_kills_what_is_left_after_its_timeout(tmp_path: Path) -> None:
    async def main() -> None:
        pid_file = tmp_path / "pid"
        pool = WorkerPool(1, queue_size=1)
        await pool.start()
        running = asyncio.create_task(pool.run(pool_jobs.report_pid_then_sleep, str(pid_file), 30.0))
        queued = asyncio.create_task(pool.run(pool_jobs.add, 1, 2))
        await until(pid_file.exists)
        await pool.close(timeout=0.3)
        with pytest.raises(PoolClosed):
            await running
        with pytest.raises(PoolClosed):
            await queued
        with pytest.raises(ProcessLookupError):  # killed and reaped
            os.kill(int(pid_file.read_text()), 0)

    run(main())


def test_failing_initializer_fails_start() -> None:
    async def main() -> None:
        with pytest.raises(WorkerStartError, match="models missing"):
            await WorkerPool(1, pool_jobs.fail_to_initialize).start()

    run(main())


def test_imap_unordered_a_crash_or_hang_costs_only_its_item() -> None:
    items = ["a", "crash", "b", "hang", "raise", "c", "d"]
    got = dict(imap_unordered(pool_jobs.item_job, items, 2, pool_jobs.remember_initializer, timeout=1.0))
    assert set(got) == set(items)
    assert isinstance(got["crash"], WorkerDied)
    assert isinstance(got["hang"], WorkerTimeout)
    assert isinstance(got["raise"], ValueError)
    done = [got[item] for item in "abcd"]
    assert [upper for upper, _ in done] == list("ABCD")
    initialized_by = {pid for _, pid in done}
    assert 0 not in initialized_by and os.getpid() not in initialized_by  # ran in workers that ran the initializer


def test_imap_unordered_runs_in_process_with_one_worker() -> None:
    got = list(imap_unordered(pool_jobs.item_job, ["x", "raise"], 1, pool_jobs.remember_initializer))
    assert got[0] == ("x", ("X", os.getpid()))
    assert got[1][0] == "raise" and isinstance(got[1][1], ValueError)


def test_imap_unordered_stopped_early_leaves_no_workers() -> None:
    results = imap_unordered(pool_jobs.item_job, list("abcdef"), 2)
    next(results)
    results.close()  # what a `break` out of the build's loop does
    assert spawn_workers() == []


def test_real_analysis_through_the_pool() -> None:
    photo = (FACES / "obama" / "1.jpg").read_bytes()
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    blank = io.BytesIO()
    Image.fromarray(np.dstack([gradient] * 3)).save(blank, format="PNG")

    async def main() -> None:
        async with WorkerPool(1, analysis.analyzer, queue_size=2) as pool:
            found = await pool.run(analysis.analyze_photo, photo)
            assert len(found.faces) == 1
            assert found.faces[0].descriptor.shape == (128,)
            with pytest.raises(NoFace):
                await pool.run(analysis.analyze_photo, blank.getvalue())

    run(main())
