"""A command in a fresh process, measured: wall time, its own peak RSS and that of its process tree, under a memory
limit and a timeout; and the size of a folder on disk. For benchmarks of what operators run (build_embeddings.py,
build_index.py, the CLI), where the figure must not include this process's own state.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from testkit.procs import tree_rss

SAMPLE_EVERY = 0.25  # s between RSS samples of a running command's process tree


def measured(command: Sequence[str], cwd: Path, env: dict[str, str], logs: Path, timeout: float) -> dict[str, Any]:
    """Run ``command`` in a session of its own; wall time, its own peak RSS (``ru_maxrss``), the peak of its and
    its children's RSS sampled every SAMPLE_EVERY s; killed (the whole session) after ``timeout`` s. Its output
    goes to ``logs``/stdout.txt and stderr.txt; the result keeps their last lines."""
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "stdout.txt").open("wb") as out, (logs / "stderr.txt").open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=_limit_memory,
        )
        peak_tree, killed = 0, False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_tree = max(peak_tree, tree_rss(proc.pid))
            if not killed and time.perf_counter() - started > timeout:
                os.killpg(proc.pid, signal.SIGKILL)  # the command and its workers: the session we started
                killed = True
            time.sleep(SAMPLE_EVERY)
        seconds = time.perf_counter() - started
    returncode = os.waitstatus_to_exitcode(status)
    if _session_alive(proc.pid):  # a worker outliving its parent: ours, end it
        os.killpg(proc.pid, signal.SIGKILL)
    stdout = (logs / "stdout.txt").read_text(errors="replace")
    stderr = (logs / "stderr.txt").read_text(errors="replace")
    oom = not killed and (
        (returncode == -signal.SIGKILL and _oom_killed(proc.pid))
        or (returncode != 0 and "MemoryError" in stderr[-5000:])
    )
    return {
        "command": [str(c) for c in command],
        "seconds": seconds,
        "returncode": None if killed else returncode,
        "killed": killed,
        "oom_killed": oom,
        "timeout_s": timeout,
        "peak_rss": usage.ru_maxrss * 1024,
        "peak_tree_rss": max(peak_tree, usage.ru_maxrss * 1024),
        "stdout_tail": stdout.splitlines()[-8:],
        "stderr_tail": [line[-300:] for line in stderr.replace("\r", "\n").splitlines() if line.strip()][-8:],
    }


def memory_limit() -> int:
    """Address space allowed to each measured command: 85% of the machine's memory. On a shared machine a command
    that wants more gets a MemoryError instead of sending the kernel's OOM killer after whichever process it picks."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(total * 0.85)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit(), memory_limit()))


def _oom_killed(pid: int) -> bool:
    """Did the kernel's OOM killer end ``pid``? (Its log line names the pid.)"""
    found = subprocess.run(["dmesg"], capture_output=True, text=True)
    return f"Killed process {pid} " in found.stdout


def _session_alive(sid: int) -> bool:
    try:
        os.killpg(sid, 0)
        return True
    except OSError:
        return False


def disk_usage(folder: Path) -> dict[str, Any]:
    """``du`` bytes on disk, entries at the top level, files in all."""

    def du(path: Path) -> int:
        return int(subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True, text=True).stdout.split()[0])

    entries = sorted(folder.iterdir())
    files = sum(sum(len(f) for _, _, f in os.walk(e)) if e.is_dir() else 1 for e in entries)
    return {"bytes": du(folder), "top_level": len(entries), "files": files}
