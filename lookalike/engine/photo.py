"""What crosses between the bot and its workers about a photo: how to look for faces, and what was found.

Plain data, in a module that loads no dlib: the bot's main process pickles the options and unpickles the results
(pickle finds a class by importing its module), and only its workers hold the models (lookalike/engine/jobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
class FoundFace:
    """A face found in a user's photo, ready to be matched and shown."""

    box: tuple[int, int, int, int]
    eye_distance: float
    roll: float
    descriptor: np.ndarray
    crop_jpeg: bytes  # square crop around the face (analysis.CROP_SIZE px), for the card


@dataclass(frozen=True)
class PhotoAnalysis:
    """Faces largest first, the size of the image they were found in, and (on request, with several faces) the
    photo with numbered boxes: drawn in the worker because only the worker holds the decoded image."""

    width: int
    height: int
    faces: list[FoundFace]
    detected: int  # faces found in all; only the largest ``max_faces`` are described
    annotated_jpeg: bytes | None = None
