"""Job functions for tests/test_pool.py: module-level so spawned workers can import them by name.

Workers import it by name, like any installed module.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from pathlib import Path

from lookalike.errors import NoFace


class NeedsTwoArgs(Exception):
    """Pickles fine but cannot be rebuilt: unpickling calls ``__init__`` with the single message argument."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a} and {b}")


class HoldsALock(Exception):
    """Cannot be pickled at all."""

    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def add(a: int, b: int) -> int:
    return a + b


def pid() -> int:
    return os.getpid()


def interval(seconds: float) -> tuple[int, float, float]:
    """Sleep, and say who did it and when: parallelism is judged from overlapping intervals, not wall time."""
    start = time.time()
    time.sleep(seconds)
    return os.getpid(), start, time.time()


def report_pid_then_sleep(path: str, seconds: float) -> int:
    """Write this worker's pid to ``path`` (atomically), then sleep: lets a test kill the worker mid-job."""
    tmp = Path(path + ".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.rename(path)
    time.sleep(seconds)
    return os.getpid()


def segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a crash in native code would


def raise_no_face() -> None:
    raise NoFace("no face in this test image")


def raise_value_error(message: str) -> None:
    raise ValueError(message)


def raise_needs_two_args() -> None:
    raise NeedsTwoArgs("this", "that")


def raise_holds_a_lock() -> None:
    raise HoldsALock()


def return_a_lock() -> threading.Lock:
    return threading.Lock()


def fail_to_initialize() -> None:
    raise RuntimeError("models missing")


INITIALIZED_BY = 0  # pid of the process whose initializer ran: tells a pooled item from one run in-process


def remember_initializer() -> None:
    global INITIALIZED_BY
    INITIALIZED_BY = os.getpid()


def item_job(item: str) -> tuple[str, int]:
    """For imap_unordered: "crash", "hang" and "raise" misbehave, any other item comes back upper-cased."""
    if item == "crash":
        segfault()
    elif item == "hang":
        time.sleep(30.0)
    elif item == "raise":
        raise ValueError("bad item")
    return item.upper(), INITIALIZED_BY


def slow_initializer() -> None:
    time.sleep(0.5)  # as loading models does
