"""The job a worker runs on one photo: bytes → upright image → faces with descriptors and face crops.

Everything returned is plain data (numbers, bytes, numpy arrays), so it crosses a process boundary cheaply and
knows nothing of who asked: the CLI calls it in-process, the bot in its worker pool.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from lookalike.engine.faces import Face, FaceAnalyzer
from lookalike.engine.images import ImageLimits, load_rgb
from lookalike.engine.orientation import find_upright
from lookalike.engine.photo import DetectOptions, FoundFace, PhotoAnalysis
from lookalike.engine.render import render_faces
from lookalike.errors import NoFace

CROP_SIZE = 320  # px of the square face crop kept for the reply card
CROP_MARGIN = 0.45  # crop reaches this fraction of the box size beyond each side


_analyzer: FaceAnalyzer | None = None


def analyzer() -> FaceAnalyzer:
    """This process's models, loaded on first use and kept: loading costs ~0.5 s, a photo ~0.2 s."""
    global _analyzer
    if _analyzer is None:
        _analyzer = FaceAnalyzer()
    return _analyzer


def analyze_photo(
    data: bytes | bytearray,
    options: DetectOptions = DetectOptions(),
    limits: ImageLimits = ImageLimits(),
    annotate: bool = False,
) -> PhotoAnalysis:
    """Decode ``data`` and describe every upright face (largest first), turning a sideways or upside-down photo
    first; boxes, crops and the annotated photo are those of the turned photo. Raises NotAnImage, TooLarge or
    NoFace."""
    decoded = load_rgb(data, limits)
    upright = find_upright(analyzer(), decoded, options)
    if upright is None:
        raise NoFace(f"no face found in a {decoded.shape[1]}x{decoded.shape[0]} image, nor with it turned")
    rgb, detected = upright.rgb, len(upright.detections)
    rects = sorted((d.rect for d in upright.detections), key=lambda r: -r.area())
    faces = analyzer().describe(rgb, rects[: options.max_faces], options.jitters)
    found = [FoundFace(f.box, f.eye_distance, f.roll, f.descriptor, face_crop_jpeg(rgb, f)) for f in faces]
    annotated = render_faces(rgb, [f.box for f in faces]) if annotate and len(faces) > 1 else None
    return PhotoAnalysis(rgb.shape[1], rgb.shape[0], found, detected, annotated)


def face_crop(rgb: np.ndarray, face: Face | FoundFace, size: int = CROP_SIZE) -> Image.Image:
    """The square of the photo around the face, ``size`` px: CROP_MARGIN of the box beyond each side where the
    photo allows. Near an edge the square moves inside the photo, and where the photo is narrower than the square
    the square shrinks to fit (a close-up selfie fills it): the card never shows bars of padding, and the face is
    centred as far as the edges allow.

    Only the square is sliced out and scaled (box-reduced, then bilinear): no copy of the whole photo, which halves
    the cost on a 1280 px photo (bench/RESULTS.md, "face crop").
    """
    x0, y0, side = square_around(rgb, face.box, 1 + 2 * CROP_MARGIN)
    part = Image.fromarray(rgb[y0 : y0 + side, x0 : x0 + side])
    return part.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)


def face_crop_jpeg(rgb: np.ndarray, face: Face | FoundFace, size: int = CROP_SIZE) -> bytes:
    """``face_crop`` encoded as JPEG (quality 88)."""
    return _jpeg(face_crop(rgb, face, size))


PORTRAIT_REACH = 3.2  # the portrait's side is at most this many face widths: the face stays the subject


def portrait_jpeg(rgb: np.ndarray, box: tuple[int, int, int, int], size: int = CROP_SIZE) -> bytes:
    """The largest square of the photo around the face (at most PORTRAIT_REACH face widths), as JPEG ``size`` px.

    It never leaves the photo, so there are no bars: a 150 px tight crop fills the square whole, a 225×275 portrait
    gives its upper 225×225 square, a big photo a square framing head and shoulders. The face is centred as far as
    the photo's edges allow.
    """
    x0, y0, side = square_around(rgb, box, PORTRAIT_REACH)
    part = Image.fromarray(rgb[y0 : y0 + side, x0 : x0 + side])
    return _jpeg(part.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0))


def square_around(rgb: np.ndarray, box: tuple[int, int, int, int], reach: float) -> tuple[int, int, int]:
    """``(x0, y0, side)`` of the largest square inside the photo of at most ``reach`` times the box's longer side,
    centred on the box as far as the photo's edges allow."""
    height, width = rgb.shape[:2]
    left, top, right, bottom = box
    side = min(width, height, max(1, round(reach * max(right - left, bottom - top))))
    x0 = min(max(0, round((left + right - side) / 2)), width - side)
    y0 = min(max(0, round((top + bottom - side) / 2)), height - side)
    return x0, y0, side


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()
