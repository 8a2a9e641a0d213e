"""Faces in an RGB image: HOG detection on a downscaled copy, 5-point landmarks, aligned chip, 128-d descriptor.

The dlib models are loaded once per process (``FaceAnalyzer`` is built once per worker), from the files the
``face-recognition-models`` package ships: nothing is fetched at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import dlib
import face_recognition_models
import numpy as np
from PIL import Image

CHIP_SIZE = 150  # the ResNet model was trained on 150x150 chips aligned by dlib.get_face_chip
CHIP_PADDING = 0.25


# What makes a descriptor: descriptors made otherwise (another dlib, chip) are not comparable with these.
PIPELINE = f"dlib {dlib.__version__}, HOG + 5-point landmarks, chip {CHIP_SIZE}px padding {CHIP_PADDING}"

HOG_WINDOW = 80  # px: dlib's frontal HOG detector does not see faces smaller than its window


@dataclass(frozen=True)
class DetectOptions:
    """How hard to look, cheapest first (bench/RESULTS.md measures the sizes):

    1. a copy no larger than ``detect_max_side`` — a selfie's face is big, so most photos stop here;
    2. if nothing was found, or several faces of which some sit near the detector's 80 px floor (a group photo
       may hold more, smaller ones), a copy ``refine_factor`` times larger;
    3. if still nothing, the full image upsampled ``fallback_upsample`` times (small faces in big photos).
    """

    detect_max_side: int = 400
    refine_factor: float = 2.0
    fallback_upsample: int = 1
    jitters: int = 0
    max_faces: int = 10


@dataclass(frozen=True)
class Face:
    """One face in image coordinates (after EXIF rotation and decode downscale)."""

    box: tuple[int, int, int, int]  # left, top, right, bottom, clipped to the image
    landmarks: tuple[tuple[float, float], ...]  # dlib's 5 points: eye corners (2 per eye) and the nose base
    eye_distance: float  # px between the eye centres: how much detail the descriptor had to work with
    roll: float  # degrees the eye line is tilted from horizontal
    descriptor: np.ndarray  # (128,) float32

    @property
    def area(self) -> int:
        left, top, right, bottom = self.box
        return max(0, right - left) * max(0, bottom - top)


class FaceAnalyzer:
    """Holds the three dlib models; build one per process and reuse it for every image."""

    def __init__(self) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    def detect(self, rgb: np.ndarray, options: DetectOptions = DetectOptions()) -> list[dlib.rectangle]:
        """Face rectangles in ``rgb`` coordinates, from the cheapest pass that finds them (see DetectOptions)."""
        longest = max(rgb.shape[:2])
        side = min(longest, options.detect_max_side)
        rects = self._detect_at(rgb, side)
        near_floor = len(rects) > 1 and min(r.width() for r in rects) * side / longest < 1.5 * HOG_WINDOW
        if longest > side and (not rects or near_floor):
            refined = self._detect_at(rgb, min(longest, round(side * options.refine_factor)))
            rects = max(rects, refined, key=len)
        if not rects and options.fallback_upsample > 0:
            rects = list(self.detector(rgb, options.fallback_upsample))
        return rects

    def _detect_at(self, rgb: np.ndarray, side: int) -> list[dlib.rectangle]:
        """HOG on a copy whose long side is ``side`` px, boxes mapped back to ``rgb``."""
        scale = side / max(rgb.shape[:2])
        small = rgb if scale >= 1.0 else _resize(rgb, scale)
        return [_scale_rect(r, 1.0 / scale) for r in self.detector(small, 0)]

    def describe(self, rgb: np.ndarray, rects: list[dlib.rectangle], jitters: int = 0) -> list[Face]:
        """Landmarks, quality and descriptor for each rectangle; descriptors are computed in one batched call."""
        if not rects:
            return []
        shapes = dlib.full_object_detections()
        for rect in rects:
            shapes.append(self.predictor(rgb, rect))
        chips = dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING)
        vectors = self.encoder.compute_face_descriptor(chips, jitters)
        height, width = rgb.shape[:2]
        faces = []
        for rect, shape, vector in zip(rects, shapes, vectors):
            points = tuple((float(p.x), float(p.y)) for p in shape.parts())
            eye_distance, roll = _eye_geometry(points)
            box = (max(0, rect.left()), max(0, rect.top()), min(width, rect.right()), min(height, rect.bottom()))
            faces.append(Face(box, points, eye_distance, roll, np.asarray(vector, dtype=np.float32)))
        return faces

    def faces(self, rgb: np.ndarray, options: DetectOptions = DetectOptions()) -> tuple[list[Face], int]:
        """The largest ``options.max_faces`` faces described, largest first, and how many were detected in all."""
        rects = sorted(self.detect(rgb, options), key=lambda r: -r.area())
        return self.describe(rgb, rects[: options.max_faces], options.jitters), len(rects)


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def _scale_rect(rect: dlib.rectangle, factor: float) -> dlib.rectangle:
    return dlib.rectangle(
        round(rect.left() * factor),
        round(rect.top() * factor),
        round(rect.right() * factor),
        round(rect.bottom() * factor),
    )


def _eye_geometry(points: tuple[tuple[float, float], ...]) -> tuple[float, float]:
    """Eye distance and roll from dlib's 5-point layout: points 0-1 are one eye's corners, 2-3 the other's."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points[:4]
    a = ((x0 + x1) / 2, (y0 + y1) / 2)
    b = ((x2 + x3) / 2, (y2 + y3) / 2)
    left, right = (a, b) if a[0] <= b[0] else (b, a)
    dx, dy = right[0] - left[0], right[1] - left[1]
    return math.hypot(dx, dy), math.degrees(math.atan2(dy, dx))
