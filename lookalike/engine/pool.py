"""A pool of worker processes that asyncio code can await without ever blocking the event loop.

Why not ``concurrent.futures.ProcessPoolExecutor``: one worker dying (a segfault in native code, the OOM killer)
breaks it for good (BrokenProcessPool). Here each worker is one spawned process with a pipe of its own. A slot
task per worker takes jobs from a bounded queue and waits for the reply — or the process's exit, or the job's
deadline — in a thread of the pool's own, so a lost worker costs only the job it was running and is replaced.

Why not pebble's ProcessPool (``bench/pool.py``, side by side on 2 cores, pebble 5.2.3): it loses the whole pool
when a worker dies while no job is running (every later job: RuntimeError "Unexpected error within the Pool"); a
job past its timeout gets SIGTERM and 3 s later SIGKILL, so for one stuck in native code the error comes 3.1 s and
a next job 3.3 s after the deadline (2 ms and 0.18 s here: SIGKILL at once); it notices a kill or a deadline by
polling every 0.1 s (error 29 ms after kill -9 vs 2.8 ms, 35 ms after the deadline vs 1.9 ms). A next job after
either takes ~0.2 s in both: a fresh spawn. Overhead is no reason either way (round trip with 100 KB in, 50 KB out:
0.34 vs 0.19 ms; small jobs on 2 workers: 7,900 vs 9,000/s, noisy). Its workers also share one pipe under a lock,
so a worker killed while holding it stalls the others (pebble issue #163).

The catalog build uses the same workers through ``imap_unordered``: synchronous, and a photo that crashes or
hangs its worker costs that photo only.

A job is a top-level function and picklable arguments; pickle only ever crosses our own pipes. Exceptions keep
their type (the worker's traceback is attached as ``__cause__``); one that cannot make the trip becomes
RemoteError. As with any "spawn" pool, workers re-import the main module: start the program with ``python -m``
or behind ``if __name__ == "__main__"``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum, StrEnum
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
Item = TypeVar("Item")

logger = logging.getLogger(__name__)

STOP_GRACE = 5.0  # s an idle worker gets to exit after its pipe is closed, before it is killed
RESPAWN_DELAY = 1.0  # s between attempts to start a replacement whose initializer keeps failing
_PROTOCOL = pickle.HIGHEST_PROTOCOL


class PoolError(Exception):
    """Base for failures of the pool itself, as opposed to exceptions raised by the job."""


class PoolBusy(PoolError):
    """The queue is full: the caller should tell the user to try again a little later."""


class PoolClosed(PoolError):
    """The pool is not running, or was shut down before the job could finish."""


class WorkerDied(PoolError):
    """The process running the job exited (crash, kill, out of memory); a fresh one has taken its place."""


class WorkerTimeout(PoolError):
    """The job ran past its timeout; its worker was killed and replaced."""


class WorkerStartError(PoolError):
    """A worker process exited, hung or failed its initializer before it became ready."""


class RemoteError(PoolError):
    """The job failed with an exception (or returned a value) that could not be pickled back; its text is kept."""


class RemoteTraceback(Exception):
    """The worker-side traceback, attached as ``__cause__`` so logs show where in the worker a job failed."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


class PoolEvent(StrEnum):
    """What ``on_event`` is told about, for metrics."""

    STARTED = "started"  # a worker process ran its initializer and is ready (at start-up and on every restart)
    DIED = "died"  # a worker process exited on its own; it is being replaced
    TIMED_OUT = "timed_out"  # a job overran its timeout; its worker is being killed and replaced
    REJECTED = "rejected"  # run() raised PoolBusy
    START_FAILED = "start_failed"  # a replacement worker could not be started; retried after RESPAWN_DELAY


class _Outcome(Enum):
    OK = "ok"
    ERROR = "error"
    DIED = "died"
    TIMED_OUT = "timed_out"


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


class _Worker:
    """The parent's end of one worker process. Its methods block, so they run in the pool's threads."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn

    def wait_ready(self, timeout: float) -> str | None:
        """None once the worker has run its initializer, else why it never will."""
        try:
            if not wait([self.conn, self.process.sentinel], timeout):
                return f"not ready after {timeout} s"
            status, detail = self.conn.recv()
        except (EOFError, OSError):
            self.process.join(1.0)
            return f"exited during start-up (exit code {self.process.exitcode})"
        return None if status == "ready" else f"initializer failed:\n{detail}"

    def call(self, request: bytes, timeout: float | None) -> tuple[_Outcome, Any]:
        """Send one job and wait for its reply, the process's exit, or the deadline, whichever comes first."""
        try:
            self.conn.send_bytes(request)
            ready = wait([self.conn, self.process.sentinel], timeout)
            if not ready:
                return _Outcome.TIMED_OUT, None
            if self.conn in ready:  # read even if the process has exited too: it may have replied first
                return _decode_reply(self.conn.recv_bytes())
        except (EOFError, OSError):  # broken pipe or end of file: the process is gone
            pass
        self.process.join(1.0)
        return _Outcome.DIED, self.process.exitcode


def _decode_reply(data: bytes) -> tuple[_Outcome, Any]:
    try:
        reply = pickle.loads(data)
    except Exception as exc:
        return _Outcome.ERROR, RemoteError(f"the job's reply could not be unpickled: {exc!r}")
    if reply[0] == "ok":
        return _Outcome.OK, reply[1]
    _, error, text = reply
    error.__cause__ = RemoteTraceback(text)
    return _Outcome.ERROR, error


def _worker_main(conn: Connection, initializer: Callable[[], object] | None) -> None:
    """A worker process: run the initializer, report ready, then serve jobs until the parent closes the pipe."""
    # Ctrl-C reaches the whole process group; stopping is the parent's call, so that running jobs can finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if initializer is not None:
            initializer()
    except Exception:
        conn.send(("failed", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv_bytes()
            conn.send_bytes(_execute(request))
        except (EOFError, OSError):  # the parent closed the pipe (shutdown) or is gone
            return


def _execute(request: bytes) -> bytes:
    """Run one pickled ``(func, args)`` and pickle what came of it."""
    try:
        func, args = pickle.loads(request)
        return pickle.dumps(("ok", func(*args)), _PROTOCOL)
    except Exception as exc:
        return _error_reply(exc)


def _error_reply(error: Exception) -> bytes:
    """The pickled exception, or a RemoteError with its text if it would not survive the trip."""
    text = "".join(traceback.format_exception(error))
    try:
        data = pickle.dumps(("error", error, text), _PROTOCOL)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt (an __init__ with other arguments)
        return data
    except Exception:
        summary = traceback.format_exception_only(error)[-1].strip()
        return pickle.dumps(("error", RemoteError(summary), text), _PROTOCOL)


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
        workers = [w for w in started if isinstance(w, _Worker)]
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
        request = pickle.dumps((func, args), _PROTOCOL)
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

    async def _serve(self, worker: _Worker) -> None:
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
                if outcome is _Outcome.OK:
                    job.succeed(value)
                elif outcome is _Outcome.ERROR:
                    job.fail(value)
                elif self._aborting:
                    job.fail(PoolClosed("the pool was shut down before the job finished"))
                elif outcome is _Outcome.DIED:
                    job.fail(WorkerDied(f"the worker exited (exit code {value}) while running the job"))
                    worker = await self._replace(worker, PoolEvent.DIED)
                else:
                    job.fail(WorkerTimeout(f"the job ran longer than {job.timeout} s"))
                    worker = await self._replace(worker, PoolEvent.TIMED_OUT)
                # Let go of the job before waiting for the next one: its request (a photo, pickled) and its future
                # (whose exception's traceback holds the caller's arguments) would otherwise stay alive while the
                # slot idles — measured: ~75 MB per 19 MB photo, per slot, after a burst.
                del job, value
        finally:
            await loop.run_in_executor(self._threads, self._retire, worker, STOP_GRACE)

    async def _next_job(self) -> _Job | None:
        self._idle += 1
        try:
            return await self._queue.get()
        finally:
            self._idle -= 1

    async def _replace(self, worker: _Worker, event: PoolEvent) -> _Worker:
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

    async def _start_worker(self) -> _Worker:
        worker = await asyncio.get_running_loop().run_in_executor(self._threads, self._spawn)
        logger.debug("worker %s ready", worker.process.pid)  # "ready" (service) or "replacement" say it
        self._emit(PoolEvent.STARTED)
        return worker

    def _spawn(self) -> _Worker:
        """Start one worker process and wait until it has run the initializer (blocks: runs in a pool thread)."""
        conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child_conn, self._initializer), name="lookalike-worker", daemon=True
        )
        process.start()
        self._processes.add(process)
        child_conn.close()  # so the parent sees end of file if the child goes away
        worker = _Worker(process, conn)
        problem = worker.wait_ready(self._start_timeout)
        if problem is not None:
            self._retire(worker, 0.0)
            raise WorkerStartError(f"worker {process.pid} {problem}")
        return worker

    def _retire(self, worker: _Worker, grace: float) -> None:
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


def imap_unordered(
    func: Callable[[Item], T],
    items: Iterable[Item],
    workers: int,
    initializer: Callable[[], object] | None = None,
    timeout: float | None = None,
) -> Iterator[tuple[Item, T | Exception]]:
    """Yield ``(item, func(item))`` for every item, in completion order, from synchronous code (the catalog build).

    An item whose job raised, crashed its worker (WorkerDied) or ran past ``timeout`` seconds (WorkerTimeout) comes
    with the exception instead, and the others carry on. ``workers`` > 1: a WorkerPool of that many (at most one per
    item), fed ``2 * workers`` items at a time so large inputs are not all pickled up front. ``workers`` <= 1: in
    this process, no pool to start (the initializer runs here; no crash isolation, ``timeout`` not enforced).
    Must not be called from a thread that runs an event loop.
    """
    items = list(items)
    if workers <= 1:
        if initializer is not None and items:
            initializer()
        for item in items:
            try:
                yield item, func(item)
            except Exception as exc:
                yield item, exc
        return
    if not items:
        return
    loop = asyncio.new_event_loop()
    pool = WorkerPool(min(workers, len(items)), initializer, queue_size=2 * workers)

    async def one(item: Item) -> tuple[Item, T | Exception]:
        try:
            return item, await pool.run(func, item, timeout=timeout)
        except Exception as exc:
            return item, exc

    todo = iter(items)
    pending: set[asyncio.Task[tuple[Item, T | Exception]]] = set()
    try:
        loop.run_until_complete(pool.start())
        while True:
            pending |= {loop.create_task(one(item)) for item in itertools.islice(todo, 2 * workers - len(pending))}
            if not pending:
                return
            done, pending = loop.run_until_complete(asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED))
            for task in done:
                yield task.result()
    finally:
        for task in pending:  # the caller stopped early: running jobs get STOP_GRACE, then their workers are killed
            task.cancel()
        loop.run_until_complete(pool.close(STOP_GRACE))
        loop.close()
