"""Per-photo cost by stage, ours side by side with the article's pipeline, plus the experiments behind our choices.

The article's pipeline (what ``face_recognition`` does): full decode, HOG with upsample 1 on the full image,
5-point landmarks, ``compute_face_descriptor(img, shape)`` on the full image, and a Python loop of
``np.linalg.norm`` over every catalog embedding. Both pipelines share the same catalog, calibration, face crop
and card, so the ratio is the cost of the engineering choices alone. Runs are interleaved (ours/article
alternating, order flipped every other time) so that noise from the shared machine hits both alike.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench.common import (
    BuiltCatalog,
    Section,
    big_query_photos,
    dev_catalog,
    median,
    ms,
    person_photos,
    scaled_jpeg,
    table,
    timed,
    verdict,
)
from lookalike.assets import CatalogData, ThumbnailRef
from lookalike.engine.analysis import analyze_photo, analyzer, face_crop_jpeg
from lookalike.engine.dlib_runtime import dlib
from lookalike.engine.faces import CHIP_PADDING, CHIP_SIZE, DetectOptions, FaceAnalyzer
from lookalike.engine.images import load_rgb
from lookalike.engine.matcher import Matcher
from lookalike.engine.render import render_card
from lookalike.errors import PhotoError

SIZES = (320, 640, 1280)
STAGES = ("decode", "detection", "landmarks", "descriptor", "face crop", "index query", "similarity", "card")


@dataclass(frozen=True)
class Box:
    """Just enough of a face for ``face_crop_jpeg``."""

    box: tuple[int, int, int, int]


@dataclass
class Run:
    """One photo through one pipeline: seconds per stage and the top-1 person (None when no face was found)."""

    stages: dict[str, float]
    top1: str | None

    @property
    def total(self) -> float:
        return sum(self.stages.values())


Pipeline = Callable[[bytes], Run]


class Pipelines:
    """Both pipelines over one loaded catalog, so each is a plain ``bytes -> Run`` call."""

    def __init__(self, catalog: BuiltCatalog) -> None:
        self.matcher = Matcher(catalog.assets)
        self.store = CatalogData.load(catalog.assets)  # the article's loop scans every vector in Python
        self.vectors = self.store.vectors
        self.persons = [p.person for p in self.store.photos]
        self.az = analyzer()

    def ours(self, data: bytes) -> Run:
        """What the bot does: analyze_photo's steps (detection on a ≤640 px copy, batched chips) then Matcher."""
        t: dict[str, float] = {}
        rgb, t["decode"] = timed(load_rgb, data)
        rects, t["detection"] = timed(self.az.detect, rgb, DetectOptions())
        rects = sorted(rects, key=lambda r: -r.area())[: DetectOptions().max_faces]
        if not rects:
            return Run(t, None)
        shapes, t["landmarks"] = timed(self.shapes, rgb, rects)
        vectors, t["descriptor"] = timed(self._chip_descriptors, rgb, shapes)
        crops, t["face crop"] = timed(lambda: [face_crop_jpeg(rgb, Box(rect_box(r))) for r in rects])
        matches, t["index query"] = timed(self.matcher.match, vectors[0], 5)
        return self.finish(t, crops[0], matches[0].person, matches[0].distance, matches[0].thumb)

    def article(self, data: bytes) -> Run:
        """The article's bot: face_recognition-style full-image work and a Python loop over the catalog."""
        t: dict[str, float] = {}
        rgb, t["decode"] = timed(lambda: np.array(Image.open(io.BytesIO(data)).convert("RGB")))
        rects, t["detection"] = timed(self.az.detector, rgb, 1)
        rects = sorted(rects, key=lambda r: -r.area())
        if not rects:
            return Run(t, None)
        shapes, t["landmarks"] = timed(lambda: [self.az.predictor(rgb, r) for r in rects])
        vectors, t["descriptor"] = timed(
            lambda: [np.array(self.az.encoder.compute_face_descriptor(rgb, s)) for s in shapes]
        )
        crops, t["face crop"] = timed(lambda: [face_crop_jpeg(rgb, Box(rect_box(r))) for r in rects])
        (row, dist), t["index query"] = timed(self._loop_nearest, vectors[0])
        thumb = self.matcher.catalog.thumb(self.store.photos[row].sha256)
        return self.finish(t, crops[0], self.persons[row], dist, thumb)

    def finish(self, t: dict[str, float], crop: bytes, person: str, distance: float, thumb: ThumbnailRef) -> Run:
        """The stages both pipelines share (similarity, card), timed into ``t``."""
        similarity, t["similarity"] = timed(self.matcher.calibration.similarity, distance)
        name = self.store.persons[person].name
        _, t["card"] = timed(lambda: render_card(crop, thumb.read_bytes(), name, similarity))
        return Run(t, person)

    def shapes(self, rgb: np.ndarray, rects: list[dlib.rectangle]) -> dlib.full_object_detections:
        """Our landmarks: one batch object, as ``get_face_chips`` takes them."""
        shapes = dlib.full_object_detections()
        for rect in rects:
            shapes.append(self.az.predictor(rgb, rect))
        return shapes

    def _chip_descriptors(self, rgb: np.ndarray, shapes: dlib.full_object_detections) -> list[np.ndarray]:
        chips = dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING)
        return [np.asarray(v, dtype=np.float32) for v in self.az.encoder.compute_face_descriptor(chips, 0)]

    def _loop_nearest(self, query: np.ndarray) -> tuple[int, float]:
        distances = [np.linalg.norm(query - e) for e in self.vectors]
        row = int(np.argmin(distances))
        return row, float(distances[row])


def rect_box(rect: dlib.rectangle) -> tuple[int, int, int, int]:
    return rect.left(), rect.top(), rect.right(), rect.bottom()


def interleaved(
    pipes: dict[str, Pipeline], inputs: list[tuple[str, bytes]], repeats: int
) -> dict[str, dict[str, list[Run]]]:
    """Runs[pipeline][input key], alternating pipelines and flipping their order on every other input."""
    names = list(pipes)
    for _, data in inputs[:1]:  # warm-up: first-call allocations and page faults are not what we measure
        for name in names:
            pipes[name](data)
    runs: dict[str, dict[str, list[Run]]] = {n: defaultdict(list) for n in names}
    turn = 0
    for _ in range(repeats):
        for key, data in inputs:
            order = names if turn % 2 == 0 else names[::-1]
            turn += 1
            for name in order:
                runs[name][key].append(pipes[name](data))
    return runs


def stage_medians(runs: list[Run]) -> dict[str, float]:
    """Median seconds per stage, and 'total' as the median of per-photo totals (not the sum of medians)."""
    out = {s: median([r.stages[s] for r in runs if s in r.stages]) for s in STAGES}
    out["total"] = median([r.total for r in runs if r.top1 is not None])
    return out


def by_stage(section: Section, pipes: Pipelines, quick: bool) -> None:
    """Item 1: the stage table per Telegram size, ratio article/ours, and top-1 agreement on the timed photos."""
    photos = big_query_photos(4 if quick else 12)
    repeats = 2 if quick else 3
    inputs = [(f"{size}:{p}", scaled_jpeg(p, size)) for p in photos for size in SIZES]
    runs = interleaved({"ours": pipes.ours, "article": pipes.article}, inputs, repeats)
    results: dict[int, dict[str, dict[str, float]]] = {}
    agree = {size: [0, 0] for size in SIZES}
    for size in SIZES:
        keys = [k for k, _ in inputs if k.startswith(f"{size}:")]
        ours = [r for k in keys for r in runs["ours"][k]]
        art = [r for k in keys for r in runs["article"][k]]
        results[size] = {"ours": stage_medians(ours), "article": stage_medians(art)}
        for k in keys:
            agree[size][0] += runs["ours"][k][0].top1 == runs["article"][k][0].top1
            agree[size][1] += 1
    rows = []
    for stage in (*STAGES, "total"):
        row: list[object] = [stage]
        for size in SIZES:
            o, a = results[size]["ours"][stage], results[size]["article"][stage]
            row += [f"{ms(o):.2f}", f"{ms(a):.2f}", f"{a / o:.1f}×" if o > 0 else "–"]
        rows.append(row)
    headers = ["stage (median ms)"] + [f"{h} {s}px" for s in SIZES for h in ("ours", "article", "ratio")]
    section.add(
        f"{len(photos)} dev-set photos (not in the catalog, long side ≥ 1200 px, one per person), scaled to each "
        f"size and re-encoded as JPEG q87; {repeats} interleaved repeats each. 'total' is the median of per-photo "
        "totals, so it is not the sum of the stage medians.\n\n" + table(headers, rows)
    )
    o1280 = results[1280]["ours"]
    share = o1280["descriptor"] / o1280["total"]
    ratio = results[1280]["article"]["total"] / o1280["total"]
    same = ", ".join(f"{s} px: {agree[s][0]}/{agree[s][1]}" for s in SIZES)
    section.add(
        f"- **Speed-up at 1280 px: {ratio:.1f}×** (target ≥ 5×: {verdict(ratio >= 5)}).\n"
        f"- Descriptor share of our per-photo time at 1280 px: **{share:.0%}** "
        f"(target ≥ 80%: {verdict(share >= 0.8)}).\n"
        f"- Same top-1 person on these photos, ours vs article: {same}."
    )
    section.data["stages"] = {str(s): v for s, v in results.items()}
    section.data["speedup_1280"] = ratio
    section.data["descriptor_share_1280"] = share


def dev_top1(section: Section, pipes: Pipelines, catalog: BuiltCatalog, quick: bool) -> None:
    """Item 1's check on the whole dev set (photos as they are): do both pipelines name the same person?"""
    queries = [(person, p) for person, paths in catalog.queries.items() for p in paths]
    if quick:
        queries = queries[::4]
    same = correct_ours = correct_article = found = 0
    for person, path in queries:
        data = path.read_bytes()
        ours, art = pipes.ours(data), pipes.article(data)
        if ours.top1 is None or art.top1 is None:
            continue
        found += 1
        same += ours.top1 == art.top1
        correct_ours += ours.top1 == person
        correct_article += art.top1 == person
    section.add(
        table(
            ["dev-set queries", "face found by both", "same top-1", "top-1 correct (ours)", "top-1 correct (article)"],
            [[len(queries), found, f"{same}/{found}", f"{correct_ours}/{found}", f"{correct_article}/{found}"]],
        )
        + "\n\nCatalog: first photo of each of the 45 persons (as in tests/conftest.py); queries: their other photos."
    )
    section.data["dev_top1"] = {"queries": len(queries), "found": found, "same": same}


def draft_decode(section: Section, quick: bool) -> None:
    """Item 2: decode + downscale to the 640 px detection copy, with and without Pillow's JPEG draft mode."""
    photos = big_query_photos(4 if quick else 12)
    inputs = [scaled_jpeg(p, 1280) for p in photos]
    az = analyzer()

    def full(data: bytes) -> np.ndarray:
        rgb = load_rgb(data)
        return np.asarray(Image.fromarray(rgb).resize(_half(rgb.shape), Image.Resampling.BILINEAR))

    def draft(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            im.draft("RGB", (im.width // 2, im.height // 2))
            return np.asarray(im.convert("RGB"))

    times: dict[str, list[float]] = {"full decode + resize": [], "draft decode (1/2 scale)": []}
    for turn in range(3 if quick else 10):
        for i, data in enumerate(inputs):
            pair = [("full decode + resize", full), ("draft decode (1/2 scale)", draft)]
            for name, func in pair if (turn + i) % 2 == 0 else pair[::-1]:
                times[name].append(timed(func, data)[1])
    # Does describing on the draft-decoded half-size image change the descriptor? (chips are 150 px either way)
    shifts = []
    for data in inputs:
        a, b = largest_descriptor(az, load_rgb(data)), largest_descriptor(az, draft(data))
        if a is not None and b is not None:
            shifts.append(float(np.linalg.norm(a - b)))
    full_ms, draft_ms = ms(median(times["full decode + resize"])), ms(median(times["draft decode (1/2 scale)"]))
    section.add(
        table(
            ["1280 px JPEG → 640 px RGB", "median ms"],
            [[k, f"{ms(median(v)):.2f}"] for k, v in times.items()] + [["ratio", f"{full_ms / draft_ms:.1f}×"]],
        )
        + f"\n\nDescriptor computed on the draft-decoded 640 px image vs on the full 1280 px image: median L2 shift "
        f"{median(shifts):.3f} over {len(shifts)} faces (same-person distances are ~0.3–0.5, the match threshold ~0.6)."
        " The engine already uses draft mode where it matters most: JPEGs larger than 1600 px (catalog photos) are "
        "draft-decoded in `load_rgb`; bot photos are ≤ 1280 px, where decode is a few ms of the total."
    )
    section.data["draft"] = {"full_ms": full_ms, "draft_ms": draft_ms, "shift": median(shifts)}


def largest_descriptor(
    az: FaceAnalyzer, rgb: np.ndarray, options: DetectOptions = DetectOptions()
) -> np.ndarray | None:
    """The descriptor of the largest face the engine finds, or None."""
    rects = sorted(az.detect(rgb, options), key=lambda r: -r.area())
    return az.describe(rgb, rects[:1])[0].descriptor if rects else None


def hog_at(az: FaceAnalyzer, rgb: np.ndarray, side: int) -> list[dlib.rectangle]:
    """One HOG pass (no upsampling) on a copy whose long side is ``side`` px; boxes in ``rgb`` coordinates."""
    scale = min(1.0, side / max(rgb.shape[:2]))
    if scale < 1.0:
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
    return [
        dlib.rectangle(*(round(v / scale) for v in (r.left(), r.top(), r.right(), r.bottom())))
        for r in az.detector(rgb, 0)
    ]


def detect_side(section: Section, pipes: Pipelines, quick: bool) -> None:
    """How small may the detection copy be? One HOG pass per size on 1280 px photos, and the engine's own cascade.

    HOG's cost grows with the pixel count, so after the descriptor it is the one knob that moves the total.
    """
    photos = big_query_photos(6 if quick else 20, min_side=900)
    inputs = [load_rgb(scaled_jpeg(p, 1280)) for p in photos]
    engine = "engine's detect()"
    passes: dict[str, Callable[[np.ndarray], list[dlib.rectangle]]] = {
        str(side): (lambda rgb, side=side: hog_at(pipes.az, rgb, side)) for side in (320, 400, 480, 640)
    }
    passes[engine] = pipes.az.detect
    times: dict[str, list[float]] = {k: [] for k in passes}
    found: dict[str, list[dlib.rectangle | None]] = {k: [] for k in passes}
    names = list(passes)
    for turn in range(2 if quick else 3):
        for i, rgb in enumerate(inputs):
            for name in names if (turn + i) % 2 == 0 else names[::-1]:
                rects, seconds = timed(passes[name], rgb)
                times[name].append(seconds)
                if turn == 0:
                    found[name].append(max(rects, key=lambda r: r.area()) if rects else None)
    rows = []
    reference = [largest_descriptor(pipes.az, rgb) for rgb in inputs]
    for name in names:
        same = 0
        for rgb, rect, ref in zip(inputs, found[name], reference):
            if rect is None or ref is None:
                continue
            vector = pipes.az.describe(rgb, [rect])[0].descriptor
            same += pipes.matcher.match(vector, 1)[0].person == pipes.matcher.match(ref, 1)[0].person
        hits = sum(r is not None for r in found[name])
        rows.append([name, f"{ms(median(times[name])):.1f}", f"{hits}/{len(inputs)}", f"{same}/{hits}"])
    section.add(
        f"Detection alone on {len(inputs)} dev photos at 1280 px (long side ≥ 900 px originals): one HOG pass "
        f"(no upsampling) on a copy of each size, and the engine's `detect()` with its defaults "
        f"({DetectOptions()}). 'same top-1' compares with the engine's full pipeline.\n\n"
        + table(["detection copy (long side px)", "detection ms (median)", "face found", "same top-1"], rows)
    )
    section.data["detect_side"] = {name: ms(median(times[name])) for name in names}


def _half(shape: tuple[int, ...]) -> tuple[int, int]:
    return shape[1] // 2, shape[0] // 2


def batching(section: Section, quick: bool) -> None:
    """Item 2: descriptors for n faces in one compute_face_descriptor call vs n calls (per-face ms)."""
    az = analyzer()
    chips = []
    for path in big_query_photos(8):
        rgb = load_rgb(path.read_bytes())
        rects = az.detect(rgb)
        if rects:
            chips.append(dlib.get_face_chip(rgb, az.predictor(rgb, rects[0]), size=CHIP_SIZE, padding=CHIP_PADDING))
    rows, data = [], {}
    for n in (1, 2, 4, 8):
        batch = [chips[i % len(chips)] for i in range(n)]
        single, batched = [], []
        for turn in range(3 if quick else 8):
            calls = [
                (single, lambda b=batch: [az.encoder.compute_face_descriptor(c, 0) for c in b]),
                (batched, lambda b=batch: az.encoder.compute_face_descriptor(b, 0)),
            ]
            for out, func in calls if turn % 2 == 0 else calls[::-1]:
                out.append(timed(func)[1] / n)
        s, b = ms(median(single)), ms(median(batched))
        rows.append([n, f"{s:.1f}", f"{b:.1f}", f"{s / b:.2f}×"])
        data[n] = (s, b)
    section.add(
        table(["faces", "one call per face (ms/face)", "one batched call (ms/face)", "gain"], rows)
        + "\n\nThe 1-face row compares two identical calls: its 'gain' is the noise floor of this machine. "
        "The ResNet's cost is per chip, so a batched call can only save per-call overhead."
    )
    section.data["batching"] = data


def person_distance(section: Section, quick: bool) -> None:
    """Nearest photo vs centroid as a person's distance, with several photos per person in the catalog."""
    faces = person_photos()
    vectors: dict[str, list[np.ndarray]] = {}
    for person, paths in faces.items():
        for path in paths[: 6 if quick else None]:
            try:
                found = analyze_photo(path.read_bytes()).faces
            except PhotoError:
                continue
            vectors.setdefault(person, []).append(found[0].descriptor)
    rows, data = [], {}
    for min_photos in (2, 4):
        persons = [p for p, v in vectors.items() if len(v) >= min_photos]
        cat_vecs, cat_person, queries = [], [], []
        for p in persons:
            half = math.ceil(len(vectors[p]) / 2)
            cat_vecs += vectors[p][:half]
            cat_person += [p] * half
            queries += [(p, v) for v in vectors[p][half:]]
        cat = np.array(cat_vecs)
        owner = np.array(cat_person)
        centroids = np.array([cat[owner == p].mean(axis=0) for p in persons])
        hits = {"nearest photo": 0, "centroid": 0}
        margins: dict[str, list[float]] = {"nearest photo": [], "centroid": []}
        for truth, q in queries:
            d = np.linalg.norm(cat - q, axis=1)
            by_method = {
                "nearest photo": {p: float(d[owner == p].min()) for p in persons},
                "centroid": dict(zip(persons, np.linalg.norm(centroids - q, axis=1).tolist())),
            }
            for method, dist in by_method.items():
                hits[method] += min(dist, key=dist.get) == truth
                # how far the best wrong person is behind the right one: a larger margin survives noisier photos
                margins[method].append(min(v for p, v in dist.items() if p != truth) - dist[truth])
        n = len(queries)
        rows.append(
            [f"≥ {min_photos}", len(persons), len(cat), n]
            + [f"{hits[m] / n:.1%}" for m in hits]
            + [f"{median(margins[m]):.3f}" for m in margins]
        )
        data[min_photos] = {m: hits[m] / n for m in hits} | {f"{m} margin": median(margins[m]) for m in margins}
    section.add(
        "Catalog = first half (rounded up) of each person's photos, queries = the rest; exact search. Margin = "
        "distance to the nearest wrong person minus distance to the right one (median; larger is safer).\n\n"
        + table(
            [
                "persons with",
                "persons",
                "catalog photos",
                "queries",
                "top-1 nearest photo",
                "top-1 centroid",
                "margin nearest photo",
                "margin centroid",
            ],
            rows,
        )
    )
    section.data["person_distance"] = data


def run(quick: bool) -> list[Section]:
    catalog = dev_catalog()
    pipes = Pipelines(catalog)
    stages = Section("Per-photo pipeline by stage")
    by_stage(stages, pipes, quick)
    dev_top1(stages, pipes, catalog, quick)
    floor = Section("Lowering the floor: decode, detection size, batching")
    draft_decode(floor, quick)
    detect_side(floor, pipes, quick)
    batching(floor, quick)
    return [stages, floor]


def run_persons(quick: bool) -> list[Section]:
    choice = Section("Person distance: nearest photo vs centroid")
    person_distance(choice, quick)
    return [choice]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args().quick)
