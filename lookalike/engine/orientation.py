"""Which way up a photo is: a selfie taken lying down with rotation lock on, or one whose EXIF orientation was
lost, is turned by quarter turns until its faces stand upright, and a "face" that is one upside down is never
answered as it stands.

dlib's frontal HOG detector finds almost nothing in a photo turned 90°; in one turned 180° it often finds a weak
"face", and the 5-point predictor draws an upright layout (eyes above the nose) on whatever it is given, so the
landmarks cannot tell. The detector can: it scores a real upright face higher than the same patch turned 180°,
and an upside-down face lower. That check costs a HOG pass over a small crop (``CHECK_FACE`` px faces), and only
for faces scored below ``SURE_SCORE``. bench/RESULTS.md ("Rotation") has the scores behind
the constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from lookalike.engine.dlib_runtime import dlib
from lookalike.engine.faces import Detection, FaceAnalyzer, resize
from lookalike.engine.photo import DetectOptions

SURE_SCORE = 1.2  # a face scored at least this is upright without the check, and ends the search for a better turn
WEAK_SCORE = 0.3  # if the best upright face scores below this, the turned photo may hold a better one: look
CHECK_REACH = 2.0  # the check's crop spans this many face sides around the face
CHECK_FACE = 100  # px the box is scaled to for the check: a real face a little smaller still fills the 80 px window
CHECK_FLOOR = -1.0  # the weakest candidate the check considers: "nothing there" scores this
CHECK_OVERLAP = 0.3  # a candidate is this face when it covers this share of the smaller of the two boxes
CHECK_MARGIN = 0.2  # the check tells only when one way up scores this much better than the other
TURNS = (1, 3, 2)  # quarter turns counter-clockwise tried: sideways either way, then upside down
DOUBT_FIRST = (2, 1, 3)  # ... when a "face" was upside down or could not be told


@dataclass(frozen=True)
class Upright:
    """The photo turned so that its faces stand upright, and those faces as ``FaceAnalyzer.detections`` found
    them (in the turned photo's coordinates)."""

    rgb: np.ndarray
    turns: int  # quarter turns counter-clockwise applied to the photo as decoded (0: none)
    detections: list[Detection]  # the faces not found upside down
    doubtful: bool = False  # some "face" was upside down (and dropped) or could not be told: look at other ways up

    @property
    def best(self) -> float:
        """The best face's score: how plausible this way up is."""
        return max((d.score for d in self.detections), default=-math.inf)


def find_upright(analyzer: FaceAnalyzer, rgb: np.ndarray, options: DetectOptions = DetectOptions()) -> Upright | None:
    """The way up (as it is, or turned by 90°, 270° or 180°) whose upright faces are the most plausible; None if
    no way up has any.

    The photo as it is gets the whole detection cascade; a face of at least WEAK_SCORE there, with no doubtful one
    beside it, ends the search, so an upright photo costs what it did. Otherwise the turned copies compete
    until one holds a face of SURE_SCORE. They get the cascade without its upsampled last pass (the costliest, for
    small faces in big photos: a selfie's face is found without it), unless the photo is small enough for that
    pass to be cheap (a 150 px close-up needs it).
    """
    best = _look(analyzer, rgb, 0, options)
    if best.best >= WEAK_SCORE and not best.doubtful:
        return best
    small = max(rgb.shape[:2]) <= options.detect_max_side
    cheap = options if small else replace(options, fallback_upsample=0)
    for turns in DOUBT_FIRST if best.doubtful else TURNS:
        if best.best >= SURE_SCORE:
            break
        turned = _look(analyzer, np.ascontiguousarray(np.rot90(rgb, turns)), turns, cheap)
        best = max(best, turned, key=lambda u: u.best)
    return best if best.detections else None


def _look(analyzer: FaceAnalyzer, rgb: np.ndarray, turns: int, options: DetectOptions) -> Upright:
    """Detect in ``rgb`` as it is and drop the faces that are upside down (see ``is_upright``)."""
    found = analyzer.detections(rgb, options)
    verdicts = [is_upright(analyzer, rgb, d) for d in found]
    kept = [d for d, upright in zip(found, verdicts) if upright is not False]
    return Upright(rgb, turns, kept, doubtful=not all(verdicts))


def is_upright(analyzer: FaceAnalyzer, rgb: np.ndarray, detection: Detection) -> bool | None:
    """True if the detector sees this face better as it stands than turned 180° (sure faces are not checked),
    False if better turned, None if it cannot tell (a blurred face may score alike both ways)."""
    if detection.score >= SURE_SCORE:
        return True
    as_is, turned = check_scores(analyzer, rgb, detection.rect)
    return None if abs(as_is - turned) < CHECK_MARGIN else as_is > turned


def check_scores(analyzer: FaceAnalyzer, rgb: np.ndarray, rect: dlib.rectangle) -> tuple[float, float]:
    """The detector's best score for this face in a small crop around it, as it stands and turned 180°."""
    side = max(rect.width(), rect.height())
    half = side * CHECK_REACH / 2
    centre = rect.center()
    height, width = rgb.shape[:2]
    x0, y0 = max(0, round(centre.x - half)), max(0, round(centre.y - half))
    x1, y1 = min(width, round(centre.x + half)), min(height, round(centre.y + half))
    scale = CHECK_FACE / side
    crop = resize(rgb[y0:y1, x0:x1], scale)
    box = dlib.rectangle(
        *(round(v * scale) for v in (rect.left() - x0, rect.top() - y0, rect.right() - x0, rect.bottom() - y0))
    )
    h, w = crop.shape[:2]
    flipped = dlib.rectangle(w - 1 - box.right(), h - 1 - box.bottom(), w - 1 - box.left(), h - 1 - box.top())
    return _best(analyzer, crop, box), _best(analyzer, np.ascontiguousarray(crop[::-1, ::-1]), flipped)


def _best(analyzer: FaceAnalyzer, rgb: np.ndarray, box: dlib.rectangle) -> float:
    """The highest score among candidates that overlap ``box``; CHECK_FLOOR if none does."""
    scores = [
        d.score
        for d in analyzer.scored(rgb, 0, CHECK_FLOOR)
        if d.rect.intersect(box).area() >= CHECK_OVERLAP * min(d.rect.area(), box.area())
    ]
    return max(scores, default=CHECK_FLOOR)
