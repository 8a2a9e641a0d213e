"""Process facts from /proc (Linux): children of a process and resident memory, for fault and soak tests."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int | None = None) -> list[int]:
    """Direct child processes of ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _status_bytes(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/PID/status in bytes (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (0 if it is gone)."""
    return _status_bytes(pid, "VmRSS")


def peak_rss(pid: int) -> int:
    """The most memory ``pid`` has held so far (VmHWM, 0 if it is gone)."""
    return _status_bytes(pid, "VmHWM")


def tree_rss(pid: int) -> int:
    """RSS of ``pid`` and its children (the bot and its workers)."""
    return rss_bytes(pid) + sum(rss_bytes(child) for child in children(pid))


def spawn_workers(pid: int | None = None) -> list[int]:
    """Children started by multiprocessing's spawn (the pool's workers, not its resource tracker)."""
    found = []
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            found.append(child)
    return found
