"""The one door from photo bytes to faces with their matches, shared by the CLI (in-process) and the bot (whose
heavy half runs in a worker process: ``job`` hands the pool the same call that ``analyze`` makes here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lookalike.engine.analysis import FoundFace, PhotoAnalysis, analyze_photo
from lookalike.engine.faces import DetectOptions
from lookalike.engine.images import ImageLimits
from lookalike.engine.matcher import Match, Matcher

Job = tuple[Callable[..., PhotoAnalysis], tuple[Any, ...]]


@dataclass(frozen=True)
class FaceMatches:
    """One face of the photo and the catalog's persons nearest to it, nearest first."""

    face: FoundFace
    matches: list[Match]


@dataclass(frozen=True)
class Lookup:
    """How photos are read, searched and matched: built once per process from the settings."""

    matcher: Matcher
    detect: DetectOptions
    limits: ImageLimits
    top_k: int

    def job(self, data: bytes | bytearray, annotate: bool = False) -> Job:
        """The analysis as a function and its arguments, for a worker pool (everything in it pickles)."""
        return analyze_photo, (data, self.detect, self.limits, annotate)

    def analyze(self, data: bytes | bytearray, annotate: bool = False) -> PhotoAnalysis:
        """Decode and describe every face here. Raises NotAnImage, TooLarge or NoFace."""
        func, args = self.job(data, annotate)
        return func(*args)

    def matches(self, analysis: PhotoAnalysis) -> list[FaceMatches]:
        """Each face's matches (the cheap half: well under a millisecond a face)."""
        return [FaceMatches(face, self.matcher.match(face.descriptor, self.top_k)) for face in analysis.faces]

    def find(self, data: bytes | bytearray) -> list[FaceMatches]:
        """Both halves in this process: what ``python -m lookalike match`` does for each photo."""
        return self.matches(self.analyze(data))
