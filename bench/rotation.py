"""Sideways and upside-down photos: faces found and named right at each rotation, before and after the
photo is turned upright (lookalike/engine/orientation.py), and what that costs an upright photo.

    python -m bench.rotation [--quick] [--out FILE]

Catalog: the dev catalog (first photo of each ../shared/faces person); queries: every other photo of each person,
turned by each angle (90/180/270 exactly, the others with black corners) and sent as JPEG (quality 90).
"Before" is ``analyze_photo`` as it was: the photo as decoded, every face the detection cascade finds, largest
first. "Named right": the largest face's top match is the person. Scores (what the constants in
lookalike/engine/orientation.py rest on): every face HOG finds in the dev photos and in the first photo of every
other LFW person (a third of them upright, all turned 180°). Cost: the two paths alternate photo by photo over
several rounds (wall time, this process, models loaded); HOG passes are counted on the detector itself.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from bench.common import Section, dev_catalog, median, table
from lookalike.engine.analysis import analyze_photo, analyzer, face_crop_jpeg
from lookalike.engine.images import load_rgb
from lookalike.engine.matcher import Matcher
from lookalike.engine.orientation import CHECK_MARGIN, SURE_SCORE, WEAK_SCORE, check_scores
from lookalike.engine.photo import DetectOptions
from lookalike.errors import NoFace
from testkit.data import LFW

ANGLES = (0, 20, 35, 50, 90, 180, 270)
QUARTERS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
TARGET_FOUND, TARGET_NAMED = 0.95, 0.90  # at 90°, 180° and 270°
RESULTS = Path("/tmp/brief/rotation_results.md")


def rotated_jpeg(path: Path, degrees: int) -> bytes:
    """The photo turned ``degrees`` counter-clockwise (right angles exactly, others with black corners), as JPEG."""
    with Image.open(path) as im:
        photo = im.convert("RGB")
    if degrees in QUARTERS:
        photo = photo.transpose(QUARTERS[degrees])
    elif degrees:
        photo = photo.rotate(degrees, Image.Resampling.BICUBIC, expand=True)
    out = io.BytesIO()
    photo.save(out, "JPEG", quality=90)
    return out.getvalue()


def before(data: bytes, options: DetectOptions = DetectOptions()) -> list[np.ndarray]:
    """``analyze_photo`` before this change: no turning, no upright check. Returns the descriptors, largest first."""
    rgb = load_rgb(data)
    rects = sorted(analyzer().detect(rgb, options), key=lambda r: -r.area())
    faces = analyzer().describe(rgb, rects[: options.max_faces], options.jitters)
    for face in faces:
        face_crop_jpeg(rgb, face)
    return [f.descriptor for f in faces]


def after(data: bytes) -> list[np.ndarray]:
    try:
        return [f.descriptor for f in analyze_photo(data).faces]
    except NoFace:
        return []


class PassCounter:
    """Counts the HOG passes of this process's detector (every pass goes through ``FaceAnalyzer.scored``)."""

    def __init__(self) -> None:
        self.count = 0
        az = analyzer()
        self._scored = az.scored

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return self._scored(*args, **kwargs)

        az.scored = counted  # type: ignore[method-assign]

    def close(self) -> None:
        analyzer().scored = self._scored  # type: ignore[method-assign]


def accuracy(queries: list[tuple[str, Path]], matcher: Matcher, quick: bool) -> tuple[str, dict[str, Any]]:
    """Faces found / named right at each angle, before and after."""
    rows, data = [], {}
    for degrees in ANGLES:
        counts = {"before": [0, 0], "after": [0, 0]}
        for person, path in queries:
            jpeg = rotated_jpeg(path, degrees)
            for name, func in (("before", before), ("after", after)):
                vectors = func(jpeg)
                if vectors:
                    counts[name][0] += 1
                    counts[name][1] += matcher.match(vectors[0], 1)[0].person == person
        n = len(queries)
        shares = {k: (f / n, r / n) for k, (f, r) in counts.items()}
        data[degrees] = shares
        rows.append([f"{degrees}°", *(f"{v:.2f}" for k in ("before", "after") for v in shares[k])])
        print(f"{degrees}°: {shares}", flush=True)
    text = table(["rotation", "found before", "named right before", "found after", "named right after"], rows)
    turned = [data[d]["after"] for d in (90, 180, 270)]
    met = all(f >= TARGET_FOUND and r >= TARGET_NAMED for f, r in turned)
    text += (
        f"\n\n{len(queries)} query photos of {len({p for p, _ in queries})} people{' (quick)' if quick else ''}. "
        f"Target at 90°, 180° and 270°: found ≥ {TARGET_FOUND}, named right ≥ {TARGET_NAMED}: "
        f"{'met' if met else '**missed**'}."
    )
    return text, data


def scores(sets: dict[str, tuple[list[Path], int]]) -> tuple[str, dict[str, Any]]:
    """What tells a real upright face from what HOG finds in the same photos turned 180°: the detector's score,
    the 5-point landmarks (is the nose below the eyes?), and the upright check (``check_scores``). ``sets`` maps a
    label to photos and the angle they are turned by."""
    rows, data, turned_best = [], {}, -np.inf
    for label, (paths, degrees) in sets.items():
        found = []
        for path in paths:
            rgb = load_rgb(rotated_jpeg(path, degrees))
            for d in analyzer().detections(rgb):
                points = analyzer().predictor(rgb, d.rect).parts()
                eyes_y = sum(p.y for p in list(points)[:4]) / 4
                as_is, turned = check_scores(analyzer(), rgb, d.rect)
                found.append((d.score, points[4].y > eyes_y, as_is - turned))
        data[label] = found
        score, nose_below, margin = (np.array(column, dtype=float) for column in zip(*found))
        upright, upside_down = margin >= CHECK_MARGIN, margin <= -CHECK_MARGIN
        turned_best = max(turned_best, float(score.max())) if degrees == 180 else turned_best
        rows.append(
            [
                f"{label} ({len(paths)} photos)",
                len(score),
                " / ".join(f"{np.percentile(score, q):.2f}" for q in (0, 5, 50, 95, 100)),
                f"{np.mean(score >= SURE_SCORE):.2f}",
                f"{np.mean(score < WEAK_SCORE):.2f}",
                f"{np.mean(nose_below):.2f}",
                f"{np.min(margin):.2f} / {np.max(margin):.2f}",
                f"{np.mean(upright):.2f} / {np.mean(~upright & ~upside_down):.2f} / {np.mean(upside_down):.2f}",
                int(np.sum(~upside_down & (score >= WEAK_SCORE))),
            ]
        )
    text = table(
        [
            "faces HOG finds in",
            "faces",
            "score min / 5% / median / 95% / max",
            f"≥ SURE_SCORE {SURE_SCORE}",
            f"< WEAK_SCORE {WEAK_SCORE}",
            "nose below the eyes",
            "check: as is − turned, min / max",
            "check says upright / cannot tell / upside down",
            "not upside down, ≥ WEAK_SCORE",
        ],
        rows,
    )
    text += (
        "\n\nThe 5-point predictor draws an upright layout on whatever it is given, so the landmarks cannot tell. The"
        f' score tells most of the time (the best an upside-down "face" scored is {turned_best:.2f}, SURE_SCORE is'
        f" {SURE_SCORE}), and the check (the detector on a small crop around the face as it stands and turned 180°)"
        " tells the rest; it is run only below SURE_SCORE."
        " A face is dropped when the check finds it upside down by CHECK_MARGIN; when it cannot tell (a blurred"
        ' face), the face is kept and the other ways up compete by score. The few turned "faces" the check does not'
        " drop are mostly not faces (text, part of a larger upside-down face) and score below WEAK_SCORE, so the"
        " turned copies are tried and the real face, upright in one of them, wins; one at or above WEAK_SCORE is"
        ' answered as it stands only if no other "face" in the photo was upside down or doubtful.'
    )
    return text, data


def lfw_firsts(count: int) -> list[Path]:
    """The first photo of every other LFW person (alphabetical), at most ``count`` of them."""
    people = sorted(d for d in LFW.iterdir() if d.is_dir())[::2]
    return [min(d.glob("*.jpg")) for d in people[:count]]


def cost(paths: list[Path], rounds: int) -> tuple[str, dict[str, Any]]:
    """Per-photo wall time of both paths on upright photos (interleaved), the HOG passes each made, and the
    extra time a sideways, an upside-down and a faceless photo costs now."""
    counter = PassCounter()
    try:
        upright = [rotated_jpeg(p, 0) for p in paths]
        times: dict[str, list[list[float]]] = {"before": [[] for _ in paths], "after": [[] for _ in paths]}
        passes: dict[str, list[int]] = {"before": [], "after": []}
        paths_by_name: dict[str, Callable[[bytes], list[np.ndarray]]] = {"before": before, "after": after}
        for turn in range(rounds):
            for i, jpeg in enumerate(upright):
                order = ("before", "after") if (turn + i) % 2 == 0 else ("after", "before")
                for name in order:
                    counter.count = 0
                    start = time.perf_counter()
                    paths_by_name[name](jpeg)
                    times[name][i].append(time.perf_counter() - start)
                    if turn == 0:
                        passes[name].append(counter.count)
        best = {k: [min(t) for t in v] for k, v in times.items()}
        diff = [a - b for a, b in zip(best["after"], best["before"])]
        extra = [d for d, a, b in zip(diff, passes["after"], passes["before"]) if a > b]
        rows = [
            ["before (as decoded)", f"{1000 * median(best['before']):.1f}", f"{np.mean(passes['before']):.2f}"],
            ["after (turned if need be)", f"{1000 * median(best['after']):.1f}", f"{np.mean(passes['after']):.2f}"],
        ]
        text = table(["upright photo", "median ms (best of rounds)", "HOG passes per photo (mean)"], rows)
        text += (
            f"\n\n{len(paths)} upright photos × {rounds} rounds, the two paths alternating. After − before per photo:"
            f" median {1000 * median(diff):+.1f} ms, mean {1000 * float(np.mean(diff)):+.1f} ms. {len(extra)} of"
            f" {len(paths)} photos made extra HOG passes (the upright check on a small crop around a face scored"
            " below SURE_SCORE, or turned copies when the best face was weak or a doubtful one was seen): after −"
            f" before for them, median {1000 * median(extra):+.1f} ms, max {1000 * max(extra, default=0.0):+.1f} ms."
        )
        data: dict[str, Any] = {"upright_ms": {k: 1000 * median(v) for k, v in best.items()}, "diff_ms": diff}
        kinds = {f"turned {d}°": [rotated_jpeg(p, d) for p in paths] for d in (90, 180, 270)}
        kinds["no face (the photo blurred)"] = [_faceless(p) for p in paths[:5]]
        rows = [
            [kind, *_mean_cost(before, jpegs, counter), *_mean_cost(after, jpegs, counter)]
            for kind, jpegs in kinds.items()
        ]
        text += "\n\n" + table(["photo", "before ms (mean)", "before HOG passes", "after ms", "after HOG passes"], rows)
        text += (
            "\n\nBefore, the turned photos are answered from whatever the cascade finds (mostly nothing); after, they"
            " pay the whole upright cascade (its upsampled last pass included) and then the cheap cascade on turned"
            " copies. A faceless photo tries all three turns."
        )
        return text, data
    finally:
        counter.close()


def _mean_cost(func: Callable[[bytes], Any], jpegs: list[bytes], counter: PassCounter) -> tuple[str, str]:
    """Mean ms and HOG passes per photo of ``func`` over ``jpegs``."""
    counter.count = 0
    start = time.perf_counter()
    for jpeg in jpegs:
        func(jpeg)
    return f"{1000 * (time.perf_counter() - start) / len(jpegs):.0f}", f"{counter.count / len(jpegs):.1f}"


def _faceless(path: Path) -> bytes:
    """The photo blurred past recognition: its size and colours, no face."""
    with Image.open(path) as im:
        photo = im.convert("RGB")
    out = io.BytesIO()
    photo.filter(ImageFilter.GaussianBlur(max(photo.size) / 30)).save(out, "JPEG", quality=90)
    return out.getvalue()


def run(quick: bool = False) -> list[Section]:
    catalog = dev_catalog()
    matcher = Matcher(catalog.assets)
    queries = [(person, path) for person, paths in catalog.queries.items() for path in paths]
    if quick:
        queries = queries[::4]
    section = Section("Sideways and upside-down photos")
    text, data = accuracy(queries, matcher, quick)
    section.add(text)
    section.data["accuracy"] = data
    dev, lfw = [p for _, p in queries], lfw_firsts(300 if quick else 1500)
    sets = {"dev set": (dev, 0), "dev set turned 180°": (dev, 180)}
    sets.update({"LFW": (lfw[: len(lfw) // 3], 0), "LFW turned 180°": (lfw, 180)})
    text, data = scores(sets)
    section.add(text)
    section.data["scores"] = data
    text, data = cost([p for _, p in queries[:: 8 if quick else 4]], 2 if quick else 3)
    section.add(text)
    section.data["cost"] = data
    return [section]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a quarter of the queries")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Markdown file the tables are written to")
    args = parser.parse_args()
    (section,) = run(args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"## {section.title}\n\n{section.markdown}", encoding="utf-8")


if __name__ == "__main__":
    main()
