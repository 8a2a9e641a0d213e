"""dlib-bin vs the fast dlib build (BLAS + SIMD flags) vs the article's pipeline: per stage, side by side.

Each dlib build lives in its own interpreter: the default one is the project venv's dlib-bin; the fast build is
``$LOOKALIKE_FAST_PYTHON`` (by default /tmp/venv-fast/bin/python, made by ``make dlib-fast VENV=/tmp/venv-fast``,
see bench/README.md). More builds can join the comparison with ``LOOKALIKE_DLIB_BUILDS="label=/path/python;..."``
(e.g. to compare compile flags). The parent runs one short subprocess per configuration, alternating their order
round after round, so that every build sees the same noise of the shared machine.

In each subprocess, every photo goes through our pipeline stage by stage (decode, detection — HOG on the engine's
400 px copy —, landmarks, chip, descriptor, face crop, index query, similarity, card: what ``Pipelines.ours`` in
bench/pipeline.py does, with the chip timed apart from the descriptor) and, in the dlib-bin interpreter, through
the article's pipeline (``Pipelines.article``, reused as it is), ours and the article's alternating photo by photo.
Every build runs as an operator runs it, with nothing exported (lookalike/engine/dlib_runtime.py picks the OpenBLAS
kernels for the CPU and one BLAS thread); the fast build also runs with the recipe operators used to have to export
(Haswell kernels, one thread) and with a BLAS thread per core, to show what the project's choice buys.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bench.common import Section, alternate_interpreters, interpreter_has, median, table, verdict

FAST_PYTHON = Path(
    os.environ.get("LOOKALIKE_FAST_PYTHON", os.environ.get("LOOKALIKE_OPENBLAS_PYTHON", "/tmp/venv-fast/bin/python"))
)
# As an operator runs it: nothing exported. This machine's own OPENBLAS_* settings are unset too, so that the
# project's choice (lookalike/engine/dlib_runtime.py: the kernels for this CPU, one BLAS thread) is what is measured.
NOTHING_EXPORTED: dict[str, str | None] = {
    "OPENBLAS_CORETYPE": None,
    "OPENBLAS_NUM_THREADS": None,
    "OPENBLAS_L2_SIZE": None,
}
ARTICLE = "LOOKALIKE_BENCH_ARTICLE"  # set in the environment of the interpreter that also runs the article's pipeline
BIN, FAST = "dlib-bin", "fast build, nothing exported"
RECIPE = "fast build, the old recipe (Haswell, 1 thread exported)"
THREADS = "fast build, a BLAS thread per core exported"
STAGES = (
    "decode",
    "detection (HOG, 400 px copy)",
    "landmarks",
    "chip",
    "descriptor",
    "face crop",
    "index query",
    "similarity",
    "card",
)
ARTICLE_STAGES = {"detection": "detection (HOG, 400 px copy)"}  # the article's HOG runs on the full image, upsampled


def configurations() -> dict[str, tuple[str, dict[str, str | None]]]:
    """Name → (interpreter, environment changes) for every build that is available here."""
    configs = {BIN: (sys.executable, {**NOTHING_EXPORTED, ARTICLE: "1"})}
    if interpreter_has(FAST_PYTHON, "dlib"):
        configs[FAST] = (str(FAST_PYTHON), NOTHING_EXPORTED)
        configs[RECIPE] = (
            str(FAST_PYTHON),
            {**NOTHING_EXPORTED, "OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"},
        )
        configs[THREADS] = (str(FAST_PYTHON), {**NOTHING_EXPORTED, "OPENBLAS_NUM_THREADS": str(os.cpu_count() or 1)})
    for entry in filter(None, os.environ.get("LOOKALIKE_DLIB_BUILDS", "").split(";")):
        label, _, python = entry.partition("=")
        if interpreter_has(python, "dlib"):
            configs[label] = (python, NOTHING_EXPORTED)
    return configs


def staged(pipes, data: bytes):  # untyped: bench.pipeline (and dlib) are imported in the worker only
    """Our pipeline on one photo, stage by stage: ``Pipelines.ours`` with the chip timed apart from the descriptor."""
    import numpy as np

    from bench.common import timed
    from bench.pipeline import Box, Run, rect_box
    from lookalike.engine.analysis import face_crop_jpeg
    from lookalike.engine.dlib_runtime import dlib
    from lookalike.engine.faces import CHIP_PADDING, CHIP_SIZE, DetectOptions
    from lookalike.engine.images import load_rgb

    az = pipes.az
    t: dict[str, float] = {}
    rgb, t["decode"] = timed(load_rgb, data)
    rects, t[STAGES[1]] = timed(az.detect, rgb, DetectOptions())
    rects = sorted(rects, key=lambda r: -r.area())[: DetectOptions().max_faces]
    if not rects:
        return Run(t, None)
    shapes, t["landmarks"] = timed(pipes.shapes, rgb, rects)
    chips, t["chip"] = timed(dlib.get_face_chips, rgb, shapes, CHIP_SIZE, CHIP_PADDING)
    vectors, t["descriptor"] = timed(
        lambda: [np.asarray(v, dtype=np.float32) for v in az.encoder.compute_face_descriptor(chips, 0)]
    )
    crops, t["face crop"] = timed(lambda: [face_crop_jpeg(rgb, Box(rect_box(r))) for r in rects])
    matches, t["index query"] = timed(pipes.matcher.match, vectors[0], 5)
    return pipes.finish(t, crops[0], matches[0].person, matches[0].distance, matches[0].thumb)


def _loaded_blas() -> str:
    """The BLAS library this process mapped for dlib (Linux), e.g. 'libopenblasp-r0.3.21.so', or 'none'."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return "?"
    names = {Path(line.split()[-1]).name for line in maps.splitlines() if "/" in line}
    kinds = ("openblas", "libblas", "blis", "mkl_rt", "atlas")
    found = sorted(n for n in names if any(k in n for k in kinds) and "scipy_openblas" not in n)  # not numpy's own
    return ", ".join(found) or "none"


def worker(reps: int, photos_n: int) -> None:
    """In the measured interpreter: ms per stage and per photo (ours, and the article's if asked) on 1280 px photos."""
    from bench.common import big_query_photos, dev_catalog, scaled_jpeg
    from bench.pipeline import Pipelines
    from lookalike.engine.dlib_runtime import dlib

    pipes = Pipelines(dev_catalog())
    photos = [(f"{p.parent.name}/{p.name}", scaled_jpeg(p, 1280)) for p in big_query_photos(photos_n)]
    article = bool(os.environ.get(ARTICLE))
    runners = {"ours": lambda d: staged(pipes, d)} | ({"article": pipes.article} if article else {})
    for run in runners.values():  # warm-up: first-call allocations and page faults are not what we measure
        run(photos[0][1])
    out: dict[str, dict[str, list[float]]] = {name: {} for name in runners}
    top1: dict[str, dict[str, str | None]] = {name: {} for name in runners}
    by_photo: dict[str, dict[str, list[float]]] = {name: {} for name in runners}  # totals, for the best-of estimate
    turn = 0
    for _ in range(reps):
        for key, data in photos:
            names = list(runners) if turn % 2 == 0 else list(runners)[::-1]
            turn += 1
            for name in names:
                result = runners[name](data)
                for stage, seconds in result.stages.items():
                    out[name].setdefault(ARTICLE_STAGES.get(stage, stage), []).append(seconds * 1000)
                if result.top1 is not None:
                    out[name].setdefault("total", []).append(result.total * 1000)
                    by_photo[name].setdefault(key, []).append(result.total * 1000)
                top1[name][key] = result.top1
    info = {
        "blas": bool(getattr(dlib, "DLIB_USE_BLAS", False)),
        "blas_lib": _loaded_blas(),
        "module": dlib.__file__,
        "coretype": os.environ.get("OPENBLAS_CORETYPE", "OpenBLAS's own"),
        "threads": os.environ.get("OPENBLAS_NUM_THREADS", "OpenBLAS's own"),
    }
    print(json.dumps({"stages": out, "by_photo": by_photo, "top1": top1, "photos": len(photos), **info}))


def run(quick: bool) -> list[Section]:
    section = Section("dlib builds: dlib-bin, the fast build and the article, per stage")
    configs = configurations()
    if len(configs) == 1:
        section.add(
            f"Skipped: no fast build of dlib at {FAST_PYTHON} (`make dlib-fast VENV=/tmp/venv-fast`, then set "
            "LOOKALIKE_FAST_PYTHON; see bench/README.md)."
        )
        return [section]
    rounds, reps, photos_n = (2, 1, 4) if quick else (4, 2, 8)
    runs = alternate_interpreters(configs, "bench.dlib_builds", ["--worker", str(reps), str(photos_n)], rounds)
    names = list(configs)
    columns: list[tuple[str, dict[str, list[float]]]] = []
    for name in names:
        merged: dict[str, list[float]] = {}
        for r in runs[name]:
            for stage, values in r["stages"]["ours"].items():
                merged.setdefault(stage, []).extend(values)
        columns.append((name, merged))
    article: dict[str, list[float]] = {}
    for r in runs[BIN]:
        for stage, values in r["stages"].get("article", {}).items():
            article.setdefault(stage, []).extend(values)
    columns.append(("article (dlib-bin)", article))
    med = {name: {s: median(v) for s, v in col.items()} for name, col in columns}
    # Median over photos of each photo's fastest run: on a shared machine the other tenants only ever add time, so
    # the fastest of a photo's runs is the closest to its cost on an idle machine.
    best: dict[str, float] = {}
    for name, key in [(n, "ours") for n in names] + [("article (dlib-bin)", "article")]:
        source = runs[BIN] if key == "article" else runs[name]
        per_photo: dict[str, list[float]] = {}
        for r in source:
            for photo, values in r.get("by_photo", {}).get(key, {}).items():
                per_photo.setdefault(photo, []).extend(values)
        if per_photo:
            best[name] = median([min(v) for v in per_photo.values()])
    rows = []
    for stage in (*STAGES, "total"):
        rows.append([stage] + [f"{med[name][stage]:.2f}" if stage in med[name] else "–" for name, _ in columns])
    rows.append(
        ["total, best run of each photo"] + [f"{best[name]:.2f}" if name in best else "–" for name, _ in columns]
    )
    blas_row = (
        ["BLAS (library loaded)"]
        + [f"{'on' if runs[n][0]['blas'] else 'off'} ({runs[n][0]['blas_lib']})" for n in names]
        + ["off (none)"]
    )
    kernels_row = (
        ["OpenBLAS kernels, threads (as loaded)"]
        + [f"{runs[n][0].get('coretype', '?')}, {runs[n][0].get('threads', '?')}" for n in names]
        + ["–"]
    )
    base, fast, art = med[BIN]["total"], med.get(FAST, {}).get("total"), med["article (dlib-bin)"]["total"]
    reference = runs[BIN][0]["top1"]["ours"]
    same = [sum(runs[n][0]["top1"]["ours"].get(k) == person for k, person in reference.items()) for n in names[1:]]
    lines = [
        f"{rounds} rounds alternating one subprocess per build; in each, {photos_n} dev photos at 1280 px (JPEG q87) "
        f"× {reps}, ours and the article's alternating photo by photo. Median ms per stage; 'total' is the median of "
        "per-photo totals (decode → card), not the sum of the medians; 'best run' is the median over photos of each "
        "photo's fastest run. The article's 'detection' is HOG with upsample "
        "1 on the full image, and its 'descriptor' includes the chip (computed from the full image).\n",
        table(["stage (median ms)", *[name for name, _ in columns]], [*rows, blas_row, kernels_row]),
        "",
    ]
    if fast is not None:
        hog_b, hog_f = med[BIN][STAGES[1]], med[FAST][STAGES[1]]
        b_bin, b_fast, b_art = best[BIN], best[FAST], best["article (dlib-bin)"]
        lines += [
            f"- Best run of each photo (least disturbed by the machine's other tenants): fast build "
            f"{b_bin / b_fast:.2f}× dlib-bin ({b_bin:.1f} → {b_fast:.1f} ms), {b_art / b_fast:.1f}× the article "
            f"({b_art:.1f} ms).",
            f"- **Whole photo, fast build vs dlib-bin: {base / fast:.2f}×** ({base:.1f} → {fast:.1f} ms; target ≥ 2×: "
            f"{verdict(base / fast >= 2)}).",
            f"- **Whole photo, fast build vs the article: {art / fast:.1f}×** ({art:.1f} → {fast:.1f} ms; target ≥ 9×: "
            f"{verdict(art / fast >= 9)}); dlib-bin vs the article: {art / base:.1f}×.",
            f"- HOG at 400 px: dlib-bin {hog_b:.1f} ms, fast build {hog_f:.1f} ms ({hog_b / hog_f:.2f}×; target: at "
            f"least as fast: {verdict(hog_f <= hog_b * 1.03)}, 3% noise allowed). Descriptor: "
            f"{med[BIN]['descriptor'] / med[FAST]['descriptor']:.1f}× faster.",
        ]
    lines.append(
        "- Same top-1 person as dlib-bin on the timed photos: "
        + ", ".join(f"{n}: {s}/{runs[BIN][0]['photos']}" for n, s in zip(names[1:], same))
        + "."
    )
    section.add("\n".join(lines))
    section.data["dlib_builds"] = med
    section.data["dlib_builds_best"] = best
    return [section]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", type=int, nargs=2, metavar=("REPS", "PHOTOS"), help="internal: measure here")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
    else:
        run(args.quick)
