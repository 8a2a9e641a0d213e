"""One catalog photo → its descriptor and portrait thumbnail, or the one reason it is left out. Runs in workers.

Everything returned is plain data, so it crosses a process (or machine) boundary cheaply.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from lookalike.engine.analysis import PORTRAIT_REACH, analyzer, portrait_jpeg
from lookalike.engine.faces import PIPELINE, DetectOptions
from lookalike.engine.images import ImageLimits, load_rgb
from lookalike.errors import PhotoError

# Catalog photos come from operators, not strangers: allow big files, but decode at most 1600 px like user photos.
CATALOG_LIMITS = ImageLimits(max_bytes=200 * 1024 * 1024, max_pixels=120_000_000)
DESCRIBER_VERSION = f"{PIPELINE}; portrait thumbnails reaching {PORTRAIT_REACH} face widths"


@dataclass(frozen=True)
class QualityRules:
    """What makes a catalog photo usable. A second face is tolerated only if much smaller than the main one."""

    min_eye_distance: float = 16.0  # px; below this the 150 px chip is an upscaled blur
    max_roll: float = 30.0  # degrees; beyond this the 5-point alignment is unreliable
    dominance: float = 0.25  # other faces must be under this fraction of the main face's area


@dataclass(frozen=True)
class Described:
    """What a worker sends back for one catalog photo: a descriptor and thumbnail, or the reason it was skipped."""

    sha256: str
    vector: np.ndarray | None = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    eye_distance: float = 0.0
    roll: float = 0.0
    thumb_jpeg: bytes = b""
    reason: str = ""


def could_not_analyse(sha256: str, error: BaseException) -> Described:
    """A photo whose describing failed (unreadable, raised, crashed or hung its worker): the reason names the error."""
    return Described(sha256, reason=f"could not be analysed: {type(error).__name__}: {error}")


def describe_photo(data: bytes, jitters: int, rules: QualityRules = QualityRules()) -> Described:
    """Analyse one catalog photo: the largest face, if it is clearly the only subject and good enough."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        rgb = load_rgb(data, CATALOG_LIMITS)
    except PhotoError as exc:
        return Described(digest, reason=f"{exc.code}: {exc}")
    rects = sorted(analyzer().detect(rgb, DetectOptions()), key=lambda r: -r.area())
    if not rects:
        return Described(digest, reason="no face found")
    crowd = [r for r in rects[1:] if r.area() > rules.dominance * rects[0].area()]
    if crowd:
        return Described(digest, reason=f"{len(crowd) + 1} faces of similar size: which one is the person?")
    main = analyzer().describe(rgb, rects[:1], jitters)[0]
    if main.eye_distance < rules.min_eye_distance:
        return Described(
            digest, reason=f"face too small (eyes {main.eye_distance:.0f} px apart, need {rules.min_eye_distance:.0f})"
        )
    if abs(main.roll) > rules.max_roll:
        return Described(digest, reason=f"head tilted {main.roll:.0f}° (limit {rules.max_roll:.0f}°)")
    return Described(digest, main.descriptor, main.box, main.eye_distance, main.roll, portrait_jpeg(rgb, main.box))


def thumbnail(data: bytes, box: tuple[int, int, int, int]) -> bytes:
    """The portrait thumbnail again from the photo and its stored face box: no detection, a few milliseconds."""
    return portrait_jpeg(load_rgb(data, CATALOG_LIMITS), box)
