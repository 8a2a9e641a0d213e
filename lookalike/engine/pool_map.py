"""The worker pool for synchronous code (the catalog build): ``imap_unordered`` over a WorkerPool of its own.

The build gets what the bot gets: models loaded once per worker, and a photo that crashes or hangs its worker costs
that photo only.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from lookalike.engine.pool import STOP_GRACE, WorkerPool

T = TypeVar("T")
Item = TypeVar("Item")


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
