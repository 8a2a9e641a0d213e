"""One worker process of the pool: its main loop (in the child), the parent's end of its pipe, and what crosses it.

A job goes out as pickled ``(func, args)`` and comes back as ``("ok", value)`` or ``("error", exception, traceback
text)``; pickle only ever crosses our own pipes. Whatever the parent waits for, it also waits for the process's
exit, so a worker that dies mid-job is noticed at once rather than by a timeout.
"""

from __future__ import annotations

import pickle
import signal
import traceback
from collections.abc import Callable
from enum import Enum
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from lookalike.engine.pool_errors import RemoteError, RemoteTraceback

PROTOCOL = pickle.HIGHEST_PROTOCOL


class Outcome(Enum):
    OK = "ok"
    ERROR = "error"
    DIED = "died"
    TIMED_OUT = "timed_out"


class Worker:
    """The parent's end of one worker process. Its methods block, so the pool runs them in threads of its own."""

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

    def call(self, request: bytes, timeout: float | None) -> tuple[Outcome, Any]:
        """Send one job and wait for its reply, the process's exit, or the deadline, whichever comes first."""
        try:
            self.conn.send_bytes(request)
            ready = wait([self.conn, self.process.sentinel], timeout)
            if not ready:
                return Outcome.TIMED_OUT, None
            if self.conn in ready:  # read even if the process has exited too: it may have replied first
                return _decode_reply(self.conn.recv_bytes())
        except (EOFError, OSError):  # broken pipe or end of file: the process is gone
            pass
        self.process.join(1.0)
        return Outcome.DIED, self.process.exitcode


def _decode_reply(data: bytes) -> tuple[Outcome, Any]:
    try:
        reply = pickle.loads(data)
    except Exception as exc:
        return Outcome.ERROR, RemoteError(f"the job's reply could not be unpickled: {exc!r}")
    if reply[0] == "ok":
        return Outcome.OK, reply[1]
    _, error, text = reply
    error.__cause__ = RemoteTraceback(text)
    return Outcome.ERROR, error


def worker_main(conn: Connection, initializer: Callable[[], object] | None) -> None:
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
        return pickle.dumps(("ok", func(*args)), PROTOCOL)
    except Exception as exc:
        return _error_reply(exc)


def _error_reply(error: Exception) -> bytes:
    """The pickled exception, or a RemoteError with its text if it would not survive the trip."""
    text = "".join(traceback.format_exception(error))
    try:
        data = pickle.dumps(("error", error, text), PROTOCOL)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt (an __init__ with other arguments)
        return data
    except Exception:
        summary = traceback.format_exception_only(error)[-1].strip()
        return pickle.dumps(("error", RemoteError(summary), text), PROTOCOL)
