"""Describing catalog photos on a Dask cluster: the local pool's jobs and results, spread over many machines.

Why Dask (``dask[distributed]``): an existing engine with its own scheduler, worker lifecycle, rescheduling of a
lost worker's tasks and deployment recipes (``dask scheduler``/``dask worker``, Helm chart, dask-kubernetes), so we
add no scheduler of our own. What we add:

- the models are loaded once per worker process, by a WorkerPlugin, when the worker joins — never once per photo;
- the client reads each photo and ships its bytes inside the task: workers need no shared filesystem, and at
  most ``TASKS_PER_THREAD`` tasks per worker thread (and ``MAX_BYTES_IN_FLIGHT``) are out at once, so memory on
  the client, the scheduler and the workers stays flat at any catalog size;
- results stream back as they complete; tasks are keyed by the photo's SHA-256, so a task Dask reruns after a
  worker died still yields one result, never two.

Workers must run the same code and models (``DESCRIBER_VERSION``): the plugin refuses a worker whose describer differs,
since its descriptors would not be comparable with the rest of the catalog.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distributed import Client, Future, as_completed
from distributed.comm import connect as connect_comm
from distributed.comm import get_address_host_port
from distributed.diagnostics.plugin import WorkerPlugin
from distributed.security import Security

from lookalike.build.describe import DESCRIBER_VERSION, Described, QualityRules, could_not_analyse, describe_photo
from lookalike.engine.analysis import analyzer
from lookalike.errors import ClusterError

log = logging.getLogger(__name__)

Job = tuple[Path, str, int, QualityRules]  # photo file, its SHA-256, jitters, rules: as the local build's jobs

CONNECT_TIMEOUT = 5.0  # s to reach the scheduler: a wrong address fails fast instead of Dask's default 30 s
TASKS_PER_THREAD = 4  # in flight per worker thread: every worker stays busy while results travel back
MIN_IN_FLIGHT = 8  # while no worker has joined yet, the scheduler holds this many tasks for the first ones
MAX_BYTES_IN_FLIGHT = 256 * 1024 * 1024  # photo bytes out at once (the scheduler holds them until a task is done)
RESUME = "run the build again to resume where it stopped"
RETRIES = 1  # a task that raised runs once more (a transient MemoryError); a lost worker's tasks are rescheduled anyway


class LoadModels(WorkerPlugin):
    """Loads the dlib models when a worker process joins (once per process), after checking it describes like us."""

    name = "lookalike-models"

    def __init__(self, describer: str) -> None:
        self.describer = describer

    def setup(self, worker: Any) -> None:
        if DESCRIBER_VERSION != self.describer:
            raise RuntimeError(
                f"worker describes with {DESCRIBER_VERSION!r} but the build with {self.describer!r}: "
                "install the same versions"
            )
        analyzer()


def connect(scheduler: str) -> Client:
    """A client of ``scheduler`` whose workers have the models loaded; ClusterError within seconds if it cannot be."""
    try:
        kind = asyncio.run(asyncio.wait_for(_identify(scheduler), CONNECT_TIMEOUT + 2))
    except TimeoutError:  # connected, but what listens there does not speak Dask (a dashboard port, a web server)
        kind = f"no answer in {CONNECT_TIMEOUT + 2:.0f} s"
    except Exception as exc:
        kind = f"{exc}"
    if kind != "Scheduler":
        raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: {kind}")
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except OSError as exc:  # it went away since it answered
        raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: {exc}") from None
    try:
        client.register_plugin(LoadModels(DESCRIBER_VERSION))
    except Exception as exc:
        client.close()
        raise ClusterError(f"the workers of the Dask scheduler at {scheduler} cannot describe photos: {exc}") from None
    if not client.nthreads():
        log.warning("the Dask scheduler at %s has no workers yet: start them with `dask worker %s`", *[scheduler] * 2)
    return client


async def _identify(address: str) -> str:
    """What listens at ``address`` ("Scheduler", "Worker"…), asked before making a Client: a Client of a malformed
    address hangs 10 s at exit, and one of a port that is no Dask scheduler (the dashboard's) waits forever."""
    get_address_host_port(address)  # ValueError naming what is wrong with it
    comm = await connect_comm(address, timeout=CONNECT_TIMEOUT, **Security().get_connection_args("client"))
    try:
        await comm.write({"op": "identity", "reply": True})
        answer = await comm.read()
    finally:
        await comm.close()
    return str(answer.get("type")) if isinstance(answer, dict) else f"unexpected answer {answer!r}"


def describe_on_cluster(jobs: list[Job], scheduler: str) -> Iterator[Described]:
    """Each job's result as it completes, described on the Dask cluster at ``scheduler``.

    A drop-in for the local pool's iterator: a photo that cannot be read, or whose task failed (raised twice, or
    killed ``distributed.scheduler.allowed-failures`` workers), comes back with the reason. Losing the scheduler
    raises ClusterError: what was yielded before stays valid, and the build run again resumes from there.
    """
    if not jobs:
        return
    client = connect(scheduler)
    try:
        yield from _stream(client, jobs, scheduler)
    except OSError as exc:  # the scheduler went away while we asked it something (unreadable photos are handled)
        raise ClusterError(f"lost the Dask scheduler at {scheduler} ({exc}): {RESUME}") from None
    finally:
        client.close()


def _stream(client: Client, jobs: list[Job], scheduler: str) -> Iterator[Described]:
    """Submit photos while fewer than the in-flight limits are out; yield each result as it comes back."""
    running = as_completed(loop=client.loop, with_results=True, raise_errors=False)
    in_flight: dict[Future, tuple[str, int]] = {}  # future → (photo digest, bytes sent)
    sent = 0
    limit = _task_limit(client)
    for path, digest, jitters, rules in jobs:
        while len(in_flight) >= limit or (in_flight and sent >= MAX_BYTES_IN_FLIGHT):
            future, result = next(running)
            done, size = in_flight.pop(future)
            sent -= size
            yield _described(future, result, done, scheduler)
            limit = _task_limit(client)  # workers may have joined or left
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield could_not_analyse(digest, exc)
            continue
        key = f"lookalike-describe-{_settings_tag(jitters, rules)}-{digest}"
        future = client.submit(describe_photo, data, jitters, rules, key=key, retries=RETRIES)
        in_flight[future] = (digest, len(data))
        sent += len(data)
        running.add(future)
    for future, result in running:
        yield _described(future, result, in_flight.pop(future)[0], scheduler)


def _task_limit(client: Client) -> int:
    return max(MIN_IN_FLIGHT, TASKS_PER_THREAD * sum(client.nthreads().values()))


def _settings_tag(jitters: int, rules: QualityRules) -> str:
    """Part of the task key, so builds with other settings sharing a scheduler never share a photo's result."""
    return hashlib.sha256(f"{jitters}; {rules}; {DESCRIBER_VERSION}".encode()).hexdigest()[:12]


def _described(future: Future, result: Any, digest: str, scheduler: str) -> Described:
    """The result of a finished task, the reason of a failed one; a cancelled one means the cluster is gone."""
    if future.status == "finished":
        return result
    if future.status == "error":  # result is (type, exception, traceback)
        return could_not_analyse(digest, result[1])
    raise ClusterError(f"lost the Dask scheduler at {scheduler} ({result!r}): {RESUME}")
