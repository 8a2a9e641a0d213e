"""A pool of worker processes that asyncio code can await without ever blocking the event loop.

Why not ``concurrent.futures.ProcessPoolExecutor``: one worker dying (a segfault in native code, the OOM killer)
breaks it for good (BrokenProcessPool). Here each worker is one spawned process with a pipe of its own. A slot
task per worker takes jobs from a bounded queue and waits for the reply — or the process's exit, or the job's
deadline — in a thread of the pool's own, so a lost worker costs only the job it was running and is replaced.

Why not pebble's ProcessPool (``bench/pool.py``; bench/RESULTS.md, "Worker pool: ours against pebble"): it loses the
whole pool when a worker dies while no job is running (every later job: RuntimeError "Unexpected error within the
Pool"); a job past its timeout gets SIGTERM and only seconds later SIGKILL, so one stuck in native code holds its
worker that long; it notices a kill or a deadline by polling, not at once. Overhead is no reason either way. Its
workers also share one pipe under a lock, so a worker killed while holding it stalls the others (pebble issue #163).

A job is a top-level function and picklable arguments (``lookalike/engine/pool_worker.py``). Exceptions keep their
type (the worker's traceback is attached as ``__cause__``); one that cannot make the trip becomes RemoteError. As
with any "spawn" pool, workers re-import the main module: start the program with ``python -m`` or behind
``if __name__ == "__main__"``. Synchronous code (the catalog build) uses the pool through
``lookalike.engine.pool_map.imap_unordered``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import pickle
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, TypeVar

from lookalike.engine.pool_errors import (
    PoolBusy,
    PoolClosed,
    PoolError,
    RemoteError,
    RemoteTraceback,
    WorkerDied,
    WorkerStartError,
    WorkerTimeout,
)
from lookalike.engine.pool_worker import PROTOCOL, Outcome, Worker, worker_main

__all__ = [  # the pool's public face: callers import its errors from here too
    "PoolBusy",
    "PoolClosed",
    "PoolError",
    "PoolEvent",
    "RemoteError",
    "RemoteTraceback",
    "WorkerDied",
    "WorkerPool",
    "WorkerStartError",
    "WorkerTimeout",
]

T = TypeVar("T")

logger = logging.getLogger(__name__)

STOP_GRACE = 5.0  # s an idle worker gets to exit after its pipe is closed, before it is killed
RESPAWN_DELAY = 1.0  # s between attempts to start a replacement whose initializer keeps failing


class PoolEvent(StrEnum):
    """What ``on_event`` is told about, for metrics."""

    STARTED = "started"  # a worker process ran its initializer and is ready (at start-up and on every restart)
    DIED = "died"  # a worker process exited on its own; it is being replaced
    TIMED_OUT = "timed_out"  # a job overran its timeout; its worker is being killed and replaced
    REJECTED = "rejected"  # run() raised PoolBusy
    START_FAILED = "start_failed"  # a replacement worker could not be started; retried after RESPAWN_DELAY


@dataclass
class _Job:
    request: bytes  # pickled (func, args)
    timeout: float | None
    future: asyncio.Future[Any]

    def succeed(self, value: object) -> None:
        if not self.future.done():  # the caller may have stopped waiting (cancelled)
            self.future.set_result(value)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


class WorkerPool:
    """``size`` worker processes (start method "spawn") running jobs from a queue of at most ``queue_size``.

    Counters for metrics: ``restarts`` (workers lost and replaced) and ``rejected`` (PoolBusy raised); the
    optional ``on_event`` is called on the event loop thread with each PoolEvent and must not block.
    """

    def __init__(
        self,
        size: int,
        initializer: Callable[[], object] | None = None,
        queue_size: int = 10,
        *,
        start_timeout: float = 60.0,
        on_event: Callable[[PoolEvent], None] | None = None,
    ) -> None:
        if size < 1 or queue_size < 0:
            raise ValueError(f"need size >= 1 and queue_size >= 0, got {size} and {queue_size}")
        self._size = size
        self._initializer = initializer
        self._queue_size = queue_size
        self._start_timeout = start_timeout
        self._on_event = on_event
        # One BLAS thread per worker, so N workers use N cores (a BLAS-linked dlib, `make dlib-fast`). OpenBLAS and
        # OpenMP read these when loaded, which in a spawned worker is while it unpickles the initializer, before it
        # runs: they must be in the environment the worker inherits.
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        self._context = multiprocessing.get_context("spawn")
        self._threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="pool-io")
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()  # None tells a slot to stop
        self._slots: list[asyncio.Task[None]] = []
        self._processes: set[BaseProcess] = set()  # every live worker process, so an abort can kill them all
        self._idle = 0  # slots waiting for a job
        self._busy = 0  # slots running a job
        self._closing = False
        self._aborting = False
        self.restarts = 0
        self.rejected = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def queue_depth(self) -> int:
        """Jobs waiting for a worker (a job an idle worker is about to pick up does not count)."""
        return max(0, self._queue.qsize() - self._idle)

    @property
    def full(self) -> bool:
        """Whether ``run`` would raise PoolBusy now (callers check before fetching a job's input)."""
        return self._queue.qsize() >= self._queue_size + self._idle

    @property
    def busy_workers(self) -> int:
        return self._busy

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Spawn every worker and return once each has run the initializer, so no user waits for model loading.

        Raises WorkerStartError (after stopping the workers that did start) if any worker fails to come up.
        """
        if self._slots or self._closing:
            raise RuntimeError("a WorkerPool can be started only once")
        loop = asyncio.get_running_loop()
        started = await asyncio.gather(*(self._start_worker() for _ in range(self._size)), return_exceptions=True)
        workers = [w for w in started if isinstance(w, Worker)]
        if len(workers) < self._size:
            await asyncio.gather(*(loop.run_in_executor(self._threads, self._retire, w, 0.0) for w in workers))
            raise next(e for e in started if isinstance(e, BaseException))
        self._slots = [asyncio.create_task(self._serve(w), name=f"pool-slot-{i}") for i, w in enumerate(workers)]

    async def run(self, func: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``func(*args)`` in a worker and return its result, or raise what it raised.

        ``func`` must be a module-level function. Raises PoolBusy at once when the queue is full, WorkerDied if
        the worker process is lost during the job, WorkerTimeout if the job runs longer than ``timeout`` seconds
        (counted from when a worker takes it), PoolClosed if the pool is not running.
        """
        if not self._slots or self._closing:
            raise PoolClosed("the pool is not running")
        request = pickle.dumps((func, args), PROTOCOL)
        if self.full:
            self.rejected += 1
            self._emit(PoolEvent.REJECTED)
            raise PoolBusy(f"all {self._size} workers busy and {self.queue_depth} jobs waiting")
        job = _Job(request, timeout, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def close(self, timeout: float = 30.0) -> None:
        """Take no more jobs; let queued and running ones finish, then stop the workers.

        Whatever is still unfinished after ``timeout`` seconds fails with PoolClosed and the workers are killed.
        Calls after the first return at once.
        """
        if self._closing:
            return
        self._closing = True
        if self._slots:
            for _ in self._slots:
                self._queue.put_nowait(None)  # behind every queued job, so those still run
            _, unfinished = await asyncio.wait(self._slots, timeout=timeout)
            if unfinished:
                self._abort()
                await asyncio.wait(unfinished)
        self._threads.shutdown(wait=False)  # every slot has finished, so the threads are idle and just exit

    def _abort(self) -> None:
        """Fail the queued jobs and kill every worker: the running jobs' slots then see them die and stop."""
        self._aborting = True
        logger.warning("worker pool did not drain in time; killing %d workers", len(self._processes))
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                job.fail(PoolClosed("the pool was shut down before the job started"))
        for _ in self._slots:
            self._queue.put_nowait(None)
        for process in list(self._processes):
            process.kill()

    async def _serve(self, worker: Worker) -> None:
        """One slot: run queued jobs on its worker one at a time, replacing the worker whenever it is lost."""
        loop = asyncio.get_running_loop()
        try:
            while (job := await self._next_job()) is not None:
                if job.future.cancelled():  # the caller stopped waiting while the job was queued
                    continue
                if worker.process.exitcode is not None:  # lost while idle: replace it, the job has not started
                    worker = await self._replace(worker, PoolEvent.DIED)
                self._busy += 1
                try:
                    outcome, value = await loop.run_in_executor(self._threads, worker.call, job.request, job.timeout)
                finally:
                    self._busy -= 1
                if outcome is Outcome.OK:
                    job.succeed(value)
                elif outcome is Outcome.ERROR:
                    job.fail(value)
                elif self._aborting:
                    job.fail(PoolClosed("the pool was shut down before the job finished"))
                elif outcome is Outcome.DIED:
                    job.fail(WorkerDied(f"the worker exited (exit code {value}) while running the job"))
                    worker = await self._replace(worker, PoolEvent.DIED)
                else:
                    job.fail(WorkerTimeout(f"the job ran longer than {job.timeout} s"))
                    worker = await self._replace(worker, PoolEvent.TIMED_OUT)
                # Let go of the job before waiting for the next one: its request (a photo, pickled) and its future
                # (whose exception's traceback holds the caller's arguments) would otherwise stay alive while the
                # slot idles: several times a large photo's size, per slot, after a burst (bench/burst.py).
                del job, value
        finally:
            await loop.run_in_executor(self._threads, self._retire, worker, STOP_GRACE)

    async def _next_job(self) -> _Job | None:
        self._idle += 1
        try:
            return await self._queue.get()
        finally:
            self._idle -= 1

    async def _replace(self, worker: Worker, event: PoolEvent) -> Worker:
        """Kill ``worker`` and start a fresh one, retrying while that fails; gives up only if the pool is aborting."""
        self.restarts += 1
        self._emit(event)
        logger.warning("worker %s %s; starting a replacement", worker.process.pid, event)
        await asyncio.get_running_loop().run_in_executor(self._threads, self._retire, worker, 0.0)
        while not self._aborting:
            try:
                return await self._start_worker()
            except WorkerStartError as exc:
                if self._aborting:  # close() killed it while it started
                    break
                logger.error("could not start a replacement worker: %s", exc)
                self._emit(PoolEvent.START_FAILED)
                await asyncio.sleep(RESPAWN_DELAY)
        return worker  # dead; its slot gets a stop marker next and fails nothing more

    async def _start_worker(self) -> Worker:
        worker = await asyncio.get_running_loop().run_in_executor(self._threads, self._spawn)
        logger.debug("worker %s ready", worker.process.pid)  # "ready" (service) or "replacement" say it
        self._emit(PoolEvent.STARTED)
        return worker

    def _spawn(self) -> Worker:
        """Start one worker process and wait until it has run the initializer (blocks: runs in a pool thread)."""
        conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=worker_main, args=(child_conn, self._initializer), name="lookalike-worker", daemon=True
        )
        process.start()
        self._processes.add(process)
        child_conn.close()  # so the parent sees end of file if the child goes away
        worker = Worker(process, conn)
        problem = worker.wait_ready(self._start_timeout)
        if problem is not None:
            self._retire(worker, 0.0)
            raise WorkerStartError(f"worker {process.pid} {problem}")
        return worker

    def _retire(self, worker: Worker, grace: float) -> None:
        """Close the pipe (an idle worker exits on end of file), wait ``grace`` s, then kill (blocks: pool thread)."""
        worker.conn.close()
        worker.process.join(grace)
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join()
        self._processes.discard(worker.process)

    def _emit(self, event: PoolEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a broken metrics hook must not take a slot down with it
                logger.exception("pool on_event hook failed for %s", event)
