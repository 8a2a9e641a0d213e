"""Every benchmark, one command: ``python -m bench.run [--quick] [--only pool,cleaning] [--report-only]``.

Writes bench/RESULTS.md whole, and its plots: one header (date, commit, machine), then a section per part of PARTS,
in this order, then what is derived from them. The parts this run measures replace their last results in
bench/results.json; every other part's section comes from there, dated under its heading. --quick trims repeats
and sizes and skips the parts too long for it, which keep their last results; the full run builds a 1M-vector index
and 1M-photo catalogs and streams photos through the bot (hours on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import RAW, ROOT, Section, machine, revision

README = ROOT / "bench" / "README.md"
README_START = "<!-- parts: written by `python -m bench.run --readme` from PARTS in bench/run.py -->"
README_END = "<!-- end of parts -->"


@dataclass(frozen=True)
class Part:
    """One part of RESULTS.md: what ``--only`` calls it, the module that measures it, and what it measures."""

    name: str
    module: str
    title: str  # its RESULTS.md heading
    measure: Callable[[bool], list[Section]] | None = None  # None: the module's ``run(quick)``
    quick: bool = True  # False: too long for --quick, which keeps its last results


def persons_part(quick: bool) -> list[Section]:
    from bench.pipeline import run_persons

    return run_persons(quick)


def printed(title: str, func: Callable[[], object]) -> list[Section]:
    """A benchmark that prints its own Markdown tables: what it prints becomes one section."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        func()
    print(out.getvalue(), flush=True)
    return [Section(title, out.getvalue().strip() + "\n\n")]


def blend_part(quick: bool) -> list[Section]:
    from bench import blend

    return printed("Face blend render time", lambda: blend.stages(blend.pairs(4 if quick else 10), 3))


def quality_part(quick: bool) -> list[Section]:
    from bench import quality

    return [Section("Match quality and calibration", quality.run(quick) + "\n\n")]


def sex_part(quick: bool) -> list[Section]:
    """bench/sex_classifier.py has no ``run``: its table as ``python -m bench.sex_classifier`` prints it."""
    done = subprocess.run([sys.executable, "-m", "bench.sex_classifier"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"bench.sex_classifier exited {done.returncode}: {done.stderr.strip()[-500:]}")
    table = "\n".join(line for line in done.stdout.splitlines() if not line.startswith("→"))  # not its file's name
    print(table, flush=True)
    return [Section("Apparent sex", table.strip() + "\n\nMethods and faces: `bench/sex_classifier.py`.\n\n")]


PARTS = (
    Part("pipeline", "bench.pipeline", "Per-photo pipeline: ours against the article's, stage by stage"),
    Part("persons", "bench.pipeline", "Person distance: nearest photo against centroid", persons_part),
    Part("dlib", "bench.dlib_builds", "dlib builds: dlib-bin, the fast build and the article, per stage"),
    Part("index", "bench.index_scale", "Index scale: HNSW against brute force"),
    Part("nmslib", "bench.nmslib_builds", "nmslib wheel against nmslib built with -march=native"),
    Part("throughput", "bench.throughput", "Throughput through the worker pool"),
    Part("bot", "bench.bot_latency", "Bot latency under load"),
    Part("soak", "bench.soak", "Soak: 200 users, restart halfway"),
    Part("burst", "bench.burst", "Bursts: large files, and kill -9 mid-burst"),
    Part("pool", "bench.pool", "Worker pool: ours against pebble"),
    Part("blend", "bench.blend", "Face blend render time", blend_part),
    Part("quality", "bench.quality", "Match quality and calibration", quality_part),
    Part("jitters", "bench.jitters", "Catalog jitters: build cost against match quality"),
    Part("cleaning", "bench.cleaning", "Catalog cleaning on LFW"),
    Part("cleaning-scale", "bench.cleaning_scale", "Cleaning at scale: from scratch and incremental", quick=False),
    Part("distributed", "bench.cluster_build", "Distributed build: local pool against a Dask LocalCluster"),
    Part("assets", "bench.assets_scale", "Assets at a million photos"),
    Part("rotation", "bench.rotation", "Rotation: sideways and upside-down photos"),
    Part("sex", "bench.sex_classifier", "Apparent sex: the descriptor model against dlib's gender network", sex_part),
)
DERIVED = (  # (title, module, function of every part's numbers): arithmetic on the sections above, never measured
    ("HNSW parameters: the choice", "bench.index_scale", "recommend"),
    ("Capacity model", "bench.capacity", "run"),
)


def measure(part: Part, quick: bool) -> list[Section]:
    run = part.measure or importlib.import_module(part.module).run
    return run(quick)


# ----------------------------------------------------------------------------------------------- saved results


def load() -> dict[str, dict[str, Any]]:
    """Each registered part's last results: its sections and when, where and how they were measured."""
    if not RAW.is_file():
        return {}
    saved = json.loads(RAW.read_text(encoding="utf-8")).get("parts", {})
    return {p.name: saved[p.name] for p in PARTS if p.name in saved}


def save(saved: dict[str, dict[str, Any]]) -> None:
    tmp = RAW.with_suffix(".tmp")
    tmp.write_text(json.dumps({"parts": saved}, indent=1, ensure_ascii=False) + "\n", "utf-8")
    tmp.replace(RAW)


def record(sections: list[Section], quick: bool, seconds: float, host: str) -> dict[str, Any]:
    """A part's results as results.json keeps them (through JSON now, so that a fresh part reads as a saved one)."""
    made = {
        "measured": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "commit": revision(),
        "mode": "--quick" if quick else "full",
        "machine": host,
        "seconds": round(seconds, 1),
        "sections": [asdict(s) for s in sections],
    }
    return json.loads(json.dumps(made, default=float))  # default: numpy scalars


# ------------------------------------------------------------------------------------------------- RESULTS.md


def body(part: Part, saved: dict[str, Any] | None, fresh: bool, host: str) -> str:
    """A part's section: its provenance if another run measured it, then its one section or its subsections."""
    if saved is None:
        return f"Not measured yet: `python -m bench.run --only {part.name}`."
    lines = []
    if not fresh:
        where = "" if saved["machine"] == host else f", on {saved['machine']}"
        lines.append(f"*Measured {saved['measured']} at {saved['commit']}, {saved['mode']} mode{where}.*")
    sections = saved["sections"]
    for s in sections:
        heading = f"### {s['title']}\n\n" if len(sections) > 1 else ""
        lines.append(heading + _demoted(s["markdown"].strip()))
    return "\n\n".join(lines)


def _demoted(markdown: str) -> str:
    """Level-2 headings inside a part's text become level 3: the part's own heading is level 2."""
    return "\n".join("#" + line if line.startswith("## ") else line for line in markdown.splitlines())


def derived(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The sections computed from every part's numbers (the capacity model, the HNSW choice)."""
    out = []
    for title, module, function in DERIVED:
        for s in getattr(importlib.import_module(module), function)(data):
            out.append((title, s.markdown.strip()))
    return out


def header(command: str, host: str, versions: str, fresh: list[str], failed: list[str], quick: bool) -> str:
    if not fresh:
        measured = "No part was measured by this run: every section is the last run of its part, dated under its title."
    elif len(fresh) == len(PARTS):
        measured = f"Every part was measured by this run ({'--quick' if quick else 'full'} mode)."
    else:
        measured = (
            f"Measured by this run ({'--quick' if quick else 'full'} mode): {', '.join(fresh)}. Every other section is "
            "the last run of its part (bench/results.json), dated under its title."
        )
    if failed:
        measured += f" **Failed in this run: {', '.join(failed)}** (their last results are shown; see the console)."
    return (
        "# Benchmarks\n\n"
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{command}`, code at commit {revision()}, on "
        f"{host} ({versions}).\n\n"
        f"{measured} The machine is shared and noisy: absolute times move between runs; the ratios are measured side "
        "by side in the same run (interleaved) and are what to compare. How and why: bench/README.md."
    )


def write(saved: dict[str, dict[str, Any]], fresh: list[str], failed: list[str], quick: bool) -> Path:
    from bench import report

    here = machine()
    command = "python -m bench.run " + " ".join(sys.argv[1:])
    sections = [(p.title, body(p, saved.get(p.name), p.name in fresh, here)) for p in PARTS]
    data = {k: v for rec in saved.values() for s in rec["sections"] for k, v in s["data"].items()}
    text = header(command.strip(), here, report.versions(), fresh, failed, quick)
    return report.write(text, sections + derived(data), data)


# ------------------------------------------------------------------------------------------------------- README


def readme_table() -> str:
    """The parts table of bench/README.md, from PARTS and DERIVED."""
    rows = [
        f"| `{p.name}` | `bench/{p.module.removeprefix('bench.')}.py` | {p.title} | {'yes' if p.quick else 'no'} |"
        for p in PARTS
    ]
    rows += [f"| (derived) | `bench/{m.removeprefix('bench.')}.py` | {t} | yes |" for t, m, _ in DERIVED]
    lines = [README_START, "| part | module | RESULTS.md section | in --quick |", "|---|---|---|---|", *rows]
    return "\n".join([*lines, README_END])


def readme_with_table(text: str) -> str:
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    return text[:start] + readme_table() + text[end:]


# --------------------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [p.name for p in PARTS]
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes; full-only parts are kept")
    parser.add_argument("--only", help=f"comma-separated parts to measure, of: {', '.join(names)}")
    parser.add_argument("--report-only", action="store_true", help="measure nothing: RESULTS.md from results.json")
    parser.add_argument("--readme", action="store_true", help="rewrite bench/README.md's table of parts")
    args = parser.parse_args()
    if args.readme:
        README.write_text(readme_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
        return
    if args.only:
        chosen = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(chosen) - set(names))
        if unknown:
            parser.error(f"unknown part(s): {', '.join(unknown)}")
    else:
        chosen = [p.name for p in PARTS if p.quick or not args.quick]
    if args.report_only:
        chosen = []
    saved, fresh, failed = load(), [], []
    started = time.perf_counter()
    for part in (p for p in PARTS if p.name in chosen):
        print(f"== {part.name}", flush=True)
        part_start = time.perf_counter()
        try:
            sections = measure(part, args.quick)
        except Exception:  # one broken part must not cost the others' figures: its last results stay
            traceback.print_exc()
            failed.append(part.name)
            continue
        seconds = time.perf_counter() - part_start
        saved[part.name] = record(sections, args.quick, seconds, machine())
        fresh.append(part.name)
        save(saved)  # after every part: a run stopped midway keeps what it measured
        print(f"   ({seconds:.0f} s)", flush=True)
    print(f"wrote {write(saved, fresh, failed, args.quick)} in {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
