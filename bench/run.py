"""One command for every benchmark: ``python bench/run.py [--quick] [--only pipeline,index,...]``.

Writes bench/RESULTS.md and bench/*.png. --quick trims repeats and skips the 1M index (a few minutes in all);
the full run builds a 1M-vector index (~1.5 GB RAM, several minutes) and streams photos through the bot.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/ on sys.path, not the project root
    sys.path.insert(0, str(ROOT))

from bench import (  # noqa: E402
    assets_scale,
    blend,
    bot_latency,
    burst,
    capacity,
    cleaning,
    cluster_build,
    dlib_builds,
    index_scale,
    nmslib_builds,
    pipeline,
    pool,
    quality,
    report,
    soak,
    throughput,
)
from bench.common import BENCH, Section  # noqa: E402

RAW = BENCH / "results.json"  # every section's text and numbers, so the report can be redone without measuring


def printed(title: str, func: Callable[[], object]) -> list[Section]:
    """A benchmark that prints its own Markdown tables: what it prints becomes one section."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        func()
    print(out.getvalue(), flush=True)
    return [Section(title, out.getvalue().strip() + "\n\n")]


def pool_part(quick: bool) -> list[Section]:
    return printed("Worker pool: ours against pebble (issue 8)", pool.main)


def blend_part(quick: bool) -> list[Section]:
    return printed("Face blend render time (issue 12)", lambda: blend.stages(blend.pairs(4 if quick else 10), 3))


def quality_part(quick: bool) -> list[Section]:
    return [Section("Match quality and calibration (issues 9, 15)", quality.run(quick) + "\n\n")]


def cleaning_part(quick: bool) -> list[Section]:
    return printed("Catalog cleaning on LFW (issue 9)", lambda: cleaning.main(2, quick))


def assets_part(quick: bool) -> list[Section]:
    """The tables from the results bench/assets_scale.py saved: measuring both formats at 1M takes over an hour (run
    it by itself, see its docstring), so this part reports rather than measures."""
    return [Section("Assets at a million photos (issue 10)", assets_scale.report(assets_scale.WORK) + "\n\n")]


PARTS = {
    "pipeline": pipeline.run,
    "persons": pipeline.run_persons,
    "dlib": dlib_builds.run,
    "index": index_scale.run,
    "nmslib": nmslib_builds.run,
    "throughput": throughput.run,
    "bot": bot_latency.run,
    "soak": soak.run,
    "burst": burst.run,
    "pool": pool_part,
    "blend": blend_part,
    "quality": quality_part,
    "cleaning": cleaning_part,
    "distributed": cluster_build.run,
    "assets": assets_part,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no 1M index: a few minutes")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of: {', '.join(PARTS)}")
    parser.add_argument("--report-only", action="store_true", help="rewrite RESULTS.md and plots from results.json")
    args = parser.parse_args()
    if args.report_only:
        saved = json.loads(RAW.read_text(encoding="utf-8"))
        sections = merge(saved["sections"], [], [])
        finish(sections, saved["header"])
        return
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(chosen) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    sections: list[Section] = []
    for name in chosen:
        print(f"== {name}", flush=True)
        part_start = time.perf_counter()
        try:
            sections += PARTS[name](args.quick)
        except Exception as exc:  # one broken part must not cost the others' figures
            traceback.print_exc()
            sections.append(Section(f"{name}: failed", f"`{type(exc).__name__}: {exc}` (see the console output)\n"))
        print(f"   ({time.perf_counter() - part_start:.0f} s)", flush=True)
    elapsed = time.perf_counter() - started
    mode = "--quick" if args.quick else "full"
    header = (
        "# Benchmarks\n\n"
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python bench/run.py{' --quick' if args.quick else ''}`"
        f" ({mode} mode, parts: {', '.join(chosen)}) in {elapsed / 60:.1f} min, code at {revision()}, on: "
        f"{report.machine()}.\n\n"
        "The machine is shared and noisy: absolute times move between runs; the ratios are measured side by side "
        "in the same run (interleaved) and are what to compare. See bench/README.md for how and why."
    )
    if set(chosen) != set(PARTS) and RAW.is_file():  # a partial run updates its sections, keeps the others
        saved = json.loads(RAW.read_text(encoding="utf-8"))
        sections = merge(saved["sections"], sections, chosen)
        header = (
            f"{saved['header']}\n\nUpdated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: "
            f"{', '.join(chosen)} re-measured by `python bench/run.py {' '.join(sys.argv[1:])}` at {revision()}."
        )
    raw = {"header": header, "sections": [asdict(s) for s in sections]}
    RAW.write_text(json.dumps(raw, indent=1, default=float), "utf-8")  # default: numpy scalars
    finish(sections, header)
    print(f"done in {elapsed / 60:.1f} min")


def revision() -> str:
    """The checked-out commit (and whether the tree had local changes), so figures can be tied to code."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = " + local changes" if git("status", "--porcelain") else ""
    return f"{git('rev-parse', '--short', 'HEAD') or 'unknown'}{dirty}"


def merge(saved: list[dict], fresh: list[Section], parts: list[str]) -> list[Section]:
    """The saved sections with those measured again replaced in place (by title); new ones appended."""
    by_title = {s.title: s for s in fresh}
    stale = {f"{part}: failed" for part in parts} | {"Capacity model (item 6)", index_scale.RECOMMENDATION}
    kept = [by_title.pop(s["title"], None) or Section(**s) for s in saved if s["title"] not in stale]
    return kept + list(by_title.values())


def finish(sections: list[Section], header: str) -> None:
    """Add the capacity model (arithmetic on the measured figures), then write RESULTS.md and the plots."""
    data = {k: v for s in sections for k, v in s.data.items()}
    sections = sections + index_scale.recommend(data) + capacity.run(data)
    print(f"wrote {report.write(sections, data, header)}")


if __name__ == "__main__":
    main()
