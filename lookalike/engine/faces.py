"""Faces in an RGB image: HOG detection on a downscaled copy, 5-point landmarks, aligned chip, 128-d descriptor.

The dlib models are loaded once per process (``FaceAnalyzer`` is built once per worker), from the files the
``face-recognition-models`` package ships: nothing is fetched at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import face_recognition_models
import numpy as np
from PIL import Image

from lookalike.engine.dlib_runtime import dlib
from lookalike.engine.photo import DetectOptions

CHIP_SIZE = 150  # the ResNet model was trained on 150x150 chips aligned by dlib.get_face_chip
CHIP_PADDING = 0.25


# What makes a descriptor: descriptors made otherwise (another dlib, chip) are not comparable with these.
PIPELINE = f"dlib {dlib.__version__}, HOG + 5-point landmarks, chip {CHIP_SIZE}px padding {CHIP_PADDING}"

HOG_WINDOW = 80  # px: dlib's frontal HOG detector does not see faces smaller than its window


class Detection(NamedTuple):
    """A face rectangle and the HOG detector's score for it (0 is the detector's threshold; higher is surer)."""

    rect: dlib.rectangle
    score: float


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
        return [d.rect for d in self.detections(rgb, options)]

    def detections(self, rgb: np.ndarray, options: DetectOptions = DetectOptions()) -> list[Detection]:
        """``detect`` with the detector's score of each face: what tells a real face from an upside-down one."""
        longest = max(rgb.shape[:2])
        side = min(longest, options.detect_max_side)
        found = self._detect_at(rgb, side)
        near_floor = len(found) > 1 and min(d.rect.width() for d in found) * side / longest < 1.5 * HOG_WINDOW
        if longest > side and (not found or near_floor):
            refined = self._detect_at(rgb, min(longest, round(side * options.refine_factor)))
            found = max(found, refined, key=len)
        if not found and options.fallback_upsample > 0:
            found = self.scored(rgb, options.fallback_upsample)
        return found

    def scored(self, rgb: np.ndarray, upsample: int = 0, adjust_threshold: float = 0.0) -> list[Detection]:
        """One HOG pass over ``rgb`` as it is; ``adjust_threshold`` < 0 also returns weaker candidates."""
        rects, scores, _ = self.detector.run(_packed(rgb), upsample, adjust_threshold)
        return [Detection(r, float(s)) for r, s in zip(rects, scores)]

    def _detect_at(self, rgb: np.ndarray, side: int) -> list[Detection]:
        """HOG on a copy whose long side is ``side`` px, boxes mapped back to ``rgb``."""
        scale = side / max(rgb.shape[:2])
        small = rgb if scale >= 1.0 else resize(rgb, scale)
        return [Detection(_scale_rect(d.rect, 1.0 / scale), d.score) for d in self.scored(small)]

    def describe(self, rgb: np.ndarray, rects: list[dlib.rectangle], jitters: int = 0) -> list[Face]:
        """Landmarks, quality and descriptor for each rectangle; descriptors are computed in one batched call."""
        if not rects:
            return []
        rgb = _packed(rgb)
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


def resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))


def _packed(rgb: np.ndarray) -> np.ndarray:
    """``rgb`` as dlib takes it: rows of packed pixels. A slice or a turned view is copied, and so is an image one
    pixel wide, whose odd column stride numpy still calls contiguous; anything else is passed as it is."""
    return rgb if rgb.flags.c_contiguous and rgb.strides[1:] == (3, 1) else rgb.copy(order="C")


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
