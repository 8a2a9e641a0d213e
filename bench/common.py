"""Shared helpers for the benchmarks: the dev set, a dev catalog, timing statistics, memory, Markdown tables.

Every section returns a ``Section`` (Markdown text plus raw numbers) so that ``run.py`` can write RESULTS.md and
the plots from one place, and ``capacity.py`` can reuse what the other sections measured.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = Path(os.environ.get("LOOKALIKE_BENCH_TMP", "/tmp/lookalike-bench"))  # built catalogs: never in the repo

if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/ first, not the project root
    sys.path.insert(0, str(ROOT))

from testkit.data import BuiltCatalog, build_catalog, person_photos  # noqa: E402  (after the path fix above)


@dataclass
class Section:
    """One part of RESULTS.md: its Markdown body and the raw numbers behind it (for plots and the capacity model)."""

    title: str
    markdown: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, text: str) -> None:
        self.markdown += text.rstrip() + "\n\n"
        print(text.rstrip() + "\n", flush=True)


def big_query_photos(limit: int, min_side: int = 1200) -> list[Path]:
    """Dev photos that are not in the one-photo-per-person catalog and large enough to be scaled *down* to 1280."""
    found = []
    for paths in person_photos().values():
        for path in paths[1:]:
            with Image.open(path) as im:
                if im.format == "JPEG" and max(im.size) >= min_side:
                    found.append(path)
                    break  # one per person: more identities rather than more of one face
    return found[:limit]


def scaled_jpeg(path: Path, long_side: int, quality: int = 87) -> bytes:
    """The photo as Telegram would send it: long side ``long_side`` px, re-encoded as JPEG."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = long_side / max(im.size)
        size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
        out = io.BytesIO()
        im.resize(size, Image.Resampling.LANCZOS).save(out, "JPEG", quality=quality)
        return out.getvalue()


@cache
def dev_catalog() -> BuiltCatalog:
    """The tests' catalog (first photo of each person), brought up to date in WORK and indexed.

    Rebuilt on every run rather than trusted from a previous one: the engine's files may have changed since.
    """
    return build_catalog(WORK / "dev-catalog")


def timed(func: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """``func(*args)`` and its wall time in seconds."""
    start = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def rss_mb() -> float:
    """Current resident set size of this process in MiB (VmRSS)."""
    return _status_kb("VmRSS") / 1024


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (VmHWM)."""
    return _status_kb("VmHWM") / 1024


def _status_kb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; floats get 3 significant digits unless already formatted."""
    cells = [[_cell(v) for v in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def verdict(ok: bool) -> str:
    """How a target reads in RESULTS.md."""
    return "met" if ok else "**missed**"


def interpreter_has(python: str | Path, module: str) -> bool:
    """Whether ``python`` exists and can import ``module`` (a half-built venv must not break the run)."""
    import subprocess

    try:
        return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def alternate_interpreters(
    configs: dict[str, tuple[str, dict[str, str]]], module: str, args: list[str], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Run ``python -m module *args`` once per configuration per round, alternating the order every round.

    ``configs`` maps a name to (interpreter, extra environment); each run must print one JSON object as its last
    line. Used to compare builds of a native library that cannot live in one process side by side.
    """
    import json
    import subprocess

    names = list(configs)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for turn in range(rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            python, extra = configs[name]
            done = subprocess.run(
                [python, "-m", module, *args],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), **extra},
                capture_output=True,
                text=True,
                check=True,
            )
            out[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out
