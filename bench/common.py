"""Shared helpers for the benchmarks: the dev set, a dev catalog, synthetic descriptors, timing statistics, memory,
Markdown tables, other interpreters, and the results the last runs saved.

Every part returns ``Section``s (Markdown text plus raw numbers) so that ``bench/run.py`` can write RESULTS.md and
the plots from one place, and ``capacity.py`` can reuse what the other sections measured.
"""

from __future__ import annotations

import io
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.assets import CatalogData
from testkit.data import BuiltCatalog, build_catalog, person_photos

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RAW = BENCH / "results.json"  # every part's last sections and numbers, so RESULTS.md is always written whole
WORK = Path(os.environ.get("LOOKALIKE_BENCH_TMP", "/tmp/lookalike-bench"))  # built catalogs: never in the repo
PHOTOS_PER_PERSON = 10  # synthetic catalogs: photos per synthetic person
WITHIN_SIGMA = 0.025  # per dimension: puts same-person distances near 0.35, as dlib's model gives for real photos
BETWEEN_SCALE = 0.8  # person centres spread this fraction of the real per-dimension spread around their anchor


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


@dataclass(frozen=True)
class Synthetic:
    vectors: np.ndarray  # (n, 128) float32
    persons: np.ndarray  # (n,) person number: photo i belongs to person i % (n // PHOTOS_PER_PERSON)
    queries: np.ndarray  # (q, 128) float32, not in vectors


def synthesize(n: int, queries: int, seed: int = 0) -> Synthetic:
    """``n`` descriptor-like vectors (PHOTOS_PER_PERSON per person) around real anchors, and ``queries`` fresh
    photos of catalog persons.

    Each synthetic person's centre is a real dev-set descriptor plus Gaussian noise (per-dimension spread taken from
    the real descriptors), each photo that centre plus a smaller within-person noise: catalogs of any size whose
    distances look like real ones (bench/index_scale.py prints how they compare).
    """
    anchors = CatalogData.load(dev_catalog().assets).vectors.astype(np.float32)
    spread = anchors.std(axis=0) * BETWEEN_SCALE
    rng = np.random.default_rng(seed)
    n_persons = max(2, n // PHOTOS_PER_PERSON)
    centres = anchors[rng.integers(len(anchors), size=n_persons)]
    centres += rng.standard_normal(centres.shape, dtype=np.float32) * spread
    persons = np.arange(n) % n_persons
    vectors = centres[persons] + rng.standard_normal((n, 128), dtype=np.float32) * WITHIN_SIGMA
    asked = rng.integers(n_persons, size=queries)
    fresh = centres[asked] + rng.standard_normal((queries, 128), dtype=np.float32) * WITHIN_SIGMA
    return Synthetic(vectors.astype(np.float32), persons, fresh.astype(np.float32))


def saved_index_dir(n: int) -> Path:
    """Where the HNSW index of ``synthesize(n, …)`` is kept between parts (index_scale saves, nmslib_builds loads)."""
    return WORK / f"index-{n}"


def last_data(part: str) -> dict[str, Any]:
    """The numbers ``part`` saved in its last run (bench/results.json), for a part that adds to them."""
    if not RAW.is_file():
        return {}
    saved = json.loads(RAW.read_text(encoding="utf-8")).get("parts", {}).get(part, {})
    return {k: v for s in saved.get("sections", []) for k, v in s.get("data", {}).items()}


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


def revision() -> str:
    """The checked-out commit, and whether the tree had local changes: what the figures were measured on."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = " + local changes" if git("status", "--porcelain") else ""
    return f"{git('rev-parse', '--short', 'HEAD') or 'unknown'}{dirty}"


def machine() -> str:
    """Where the numbers come from: CPU model, cores, memory."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {memory:.1f} GiB memory"


def interpreter_has(python: str | Path, module: str) -> bool:
    """Whether ``python`` exists and can import ``module`` (a half-built venv must not break the run)."""
    try:
        return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, timeout=60).returncode == 0
    except OSError:
        return False


def alternate_interpreters(
    configs: dict[str, tuple[str, dict[str, str | None]]], module: str, args: list[str], rounds: int
) -> dict[str, list[dict[str, Any]]]:
    """Run ``python -m module *args`` once per configuration per round, alternating the order every round.

    ``configs`` maps a name to (interpreter, extra environment: None unsets a variable); each run must print one
    JSON object as its last line. Used to compare builds of a native library that cannot live in one process side
    by side. The other interpreters are venvs of their own, perhaps without this project installed: PYTHONPATH
    tells them where it is.
    """
    names = list(configs)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for turn in range(rounds):
        for name in names if turn % 2 == 0 else names[::-1]:
            python, extra = configs[name]
            done = subprocess.run(
                [python, "-m", module, *args],
                cwd=ROOT,
                env={k: v for k, v in {**os.environ, "PYTHONPATH": str(ROOT), **extra}.items() if v is not None},
                capture_output=True,
                text=True,
                check=True,
            )
            out[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out
