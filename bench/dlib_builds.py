"""dlib-bin vs dlib built from source against OpenBLAS (item 2): descriptor and whole-photo time, side by side.

Each build lives in its own interpreter (the default one is the project venv's dlib-bin; the other is
``$LOOKALIKE_OPENBLAS_PYTHON``, by default /tmp/venv-openblas/bin/python, see bench/README.md). The parent runs
one short subprocess per configuration, alternating their order round after round, so both see the same noise.
OpenBLAS is measured with 1 thread (what each of 2 workers on 2 cores should use) and with its default threads.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from bench.common import Section, alternate_interpreters, interpreter_has, median, table

OPENBLAS_PYTHON = Path(os.environ.get("LOOKALIKE_OPENBLAS_PYTHON", "/tmp/venv-openblas/bin/python"))


def configurations() -> dict[str, tuple[str, dict[str, str]]]:
    """Name → (interpreter, extra environment) for every build that is available here."""
    configs = {"dlib-bin": (sys.executable, {})}
    if interpreter_has(OPENBLAS_PYTHON, "dlib"):
        configs["OpenBLAS, 1 thread"] = (str(OPENBLAS_PYTHON), {"OPENBLAS_NUM_THREADS": "1"})
        configs["OpenBLAS, default threads"] = (str(OPENBLAS_PYTHON), {})
    return configs


def worker(reps: int) -> None:
    """In the measured interpreter: per-chip descriptor ms and whole analyze_photo ms on 1280 px photos."""
    import time

    import dlib

    from bench.common import big_query_photos, scaled_jpeg
    from lookalike.analysis import analyze_photo, analyzer
    from lookalike.faces import CHIP_PADDING, CHIP_SIZE
    from lookalike.images import load_rgb

    az = analyzer()
    photos = [scaled_jpeg(p, 1280) for p in big_query_photos(6)]
    chips = []
    for data in photos:
        rgb = load_rgb(data)
        rects = az.detect(rgb)
        if rects:
            chips.append(dlib.get_face_chip(rgb, az.predictor(rgb, rects[0]), size=CHIP_SIZE, padding=CHIP_PADDING))
    az.encoder.compute_face_descriptor(chips[0], 0)  # warm-up
    descriptor, photo = [], []
    for _ in range(reps):
        for chip in chips:
            start = time.perf_counter()
            az.encoder.compute_face_descriptor(chip, 0)
            descriptor.append((time.perf_counter() - start) * 1000)
        for data in photos:
            start = time.perf_counter()
            analyze_photo(data)
            photo.append((time.perf_counter() - start) * 1000)
    blas = bool(getattr(dlib, "DLIB_USE_BLAS", False))
    print(json.dumps({"descriptor": descriptor, "photo": photo, "blas": blas, "module": dlib.__file__}))


def run(quick: bool) -> list[Section]:
    section = Section("dlib-bin vs dlib + OpenBLAS (item 2)")
    configs = configurations()
    if len(configs) == 1:
        section.add(
            f"Skipped: no OpenBLAS build of dlib at {OPENBLAS_PYTHON} "
            "(set LOOKALIKE_OPENBLAS_PYTHON; see bench/README.md)."
        )
        return [section]
    rounds, reps = (2, 1) if quick else (4, 2)
    runs = alternate_interpreters(configs, "bench.dlib_builds", ["--worker", str(reps)], rounds)
    names = list(configs)
    samples = {name: {k: [x for r in runs[name] for x in r[k]] for k in ("descriptor", "photo")} for name in names}
    info = {name: f"BLAS {'on' if runs[name][0]['blas'] else 'off'}" for name in names}
    base = {k: median(samples["dlib-bin"][k]) for k in ("descriptor", "photo")}
    rows = []
    for name in names:
        d, p = median(samples[name]["descriptor"]), median(samples[name]["photo"])
        gains = [f"{d:.1f}", f"{base['descriptor'] / d:.2f}×", f"{p:.1f}", f"{base['photo'] / p:.2f}×"]
        rows.append([name, info[name], *gains])
    section.add(
        f"{rounds} rounds alternating one subprocess per build; 1280 px photos, descriptor on one 150 px chip, "
        "'photo' = the worker's whole `analyze_photo`.\n\n"
        + table(["build", "dlib", "descriptor ms", "speed-up", "photo ms", "speed-up"], rows)
    )
    section.data["dlib_builds"] = {n: {k: median(v) for k, v in s.items()} for n, s in samples.items()}
    return [section]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker", type=int, default=0, help="internal: measure in this interpreter, print JSON")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
    else:
        run(args.quick)
