"""The job a worker runs on one photo: bytes → upright image → faces with descriptors and face crops.

Everything returned is plain data (numbers, bytes, numpy arrays), so it crosses a process boundary cheaply and
knows nothing of who asked: the CLI calls it in-process, the bot in its worker pool.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from lookalike.engine.faces import DetectOptions, Face, FaceAnalyzer
from lookalike.engine.images import ImageLimits, load_rgb
from lookalike.engine.render import render_faces
from lookalike.errors import NoFace

CROP_SIZE = 320  # px of the square face crop kept for the reply card
CROP_MARGIN = 0.45  # crop reaches this fraction of the box size beyond each side


@dataclass(frozen=True)
class FoundFace:
    """A face found in a user's photo, ready to be matched and shown."""

    box: tuple[int, int, int, int]
    eye_distance: float
    roll: float
    descriptor: np.ndarray
    crop_jpeg: bytes  # square crop around the face, CROP_SIZE px, for the card


@dataclass(frozen=True)
class PhotoAnalysis:
    """Faces largest first, the size of the image they were found in, and (on request, with several faces) the
    photo with numbered boxes: drawn here because only the worker holds the decoded image."""

    width: int
    height: int
    faces: list[FoundFace]
    detected: int  # faces found in all; only the largest ``max_faces`` are described
    annotated_jpeg: bytes | None = None


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
    """Decode ``data`` and describe every face (largest first). Raises NotAnImage, TooLarge or NoFace."""
    rgb = load_rgb(data, limits)
    faces, detected = analyzer().faces(rgb, options)
    if not faces:
        raise NoFace(f"no face found in a {rgb.shape[1]}x{rgb.shape[0]} image")
    found = [FoundFace(f.box, f.eye_distance, f.roll, f.descriptor, face_crop_jpeg(rgb, f)) for f in faces]
    annotated = render_faces(rgb, [f.box for f in faces]) if annotate and len(faces) > 1 else None
    return PhotoAnalysis(rgb.shape[1], rgb.shape[0], found, detected, annotated)


def face_crop(rgb: np.ndarray, face: Face | FoundFace, size: int = CROP_SIZE) -> Image.Image:
    """A square crop centred on the face with some margin (black where it leaves the image), ``size`` px.

    Only the pixels inside the image are sliced out and scaled (box-reduced, then bilinear): no copy of the
    whole photo, which halves the cost on a 1280 px photo (bench/RESULTS.md, "face crop").
    """
    left, top, right, bottom = face.box
    side = max(right - left, bottom - top) * (1 + 2 * CROP_MARGIN)
    x0, y0 = round((left + right - side) / 2), round((top + bottom - side) / 2)
    height, width = rgb.shape[:2]
    inside = (max(0, x0), max(0, y0), min(width, round(x0 + side)), min(height, round(y0 + side)))
    scale = size / side
    part = Image.fromarray(rgb[inside[1] : inside[3], inside[0] : inside[2]])
    part = part.resize(
        (max(1, round(part.width * scale)), max(1, round(part.height * scale))),
        Image.Resampling.BILINEAR,
        reducing_gap=2.0,
    )
    canvas = Image.new("RGB", (size, size))
    canvas.paste(part, (round((inside[0] - x0) * scale), round((inside[1] - y0) * scale)))
    return canvas


def face_crop_jpeg(rgb: np.ndarray, face: Face | FoundFace, size: int = CROP_SIZE) -> bytes:
    """``face_crop`` encoded as JPEG (quality 88)."""
    return _jpeg(face_crop(rgb, face, size))


PORTRAIT_REACH = 3.2  # the portrait's side is at most this many face widths: the face stays the subject


def portrait_jpeg(rgb: np.ndarray, box: tuple[int, int, int, int], size: int = CROP_SIZE) -> bytes:
    """The largest square of the photo around the face (at most PORTRAIT_REACH face widths), as JPEG ``size`` px.

    Unlike ``face_crop`` it never leaves the photo, so there are no bars: a 150 px tight crop fills the square
    whole, a 225×275 portrait gives its upper 225×225 square, a big photo a square framing head and shoulders.
    The face is centred as far as the photo's edges allow.
    """
    height, width = rgb.shape[:2]
    left, top, right, bottom = box
    side = min(width, height, max(1, round(PORTRAIT_REACH * max(right - left, bottom - top))))
    x0 = min(max(0, round((left + right - side) / 2)), width - side)
    y0 = min(max(0, round((top + bottom - side) / 2)), height - side)
    part = Image.fromarray(rgb[y0 : y0 + side, x0 : x0 + side])
    return _jpeg(part.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0))


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()
