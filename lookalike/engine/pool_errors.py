"""Failures of the worker pool itself, as opposed to the exceptions a job raises (those keep their type)."""

from __future__ import annotations


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
