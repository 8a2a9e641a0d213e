"""The one door from photo bytes to faces with their matches, shared by the CLI (in-process) and the bot (whose
heavy half runs in a worker process: ``job`` hands the pool the same call that ``analyze`` makes here). Loads no
dlib itself: the analysis is named through lookalike/engine/jobs.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lookalike.engine.images import ImageLimits
from lookalike.engine.jobs import analyze_photo
from lookalike.engine.matcher import Match, Matcher, MatchSex, Sex
from lookalike.engine.photo import DetectOptions, FoundFace, PhotoAnalysis

Job = tuple[Callable[..., PhotoAnalysis], tuple[Any, ...]]


@dataclass(frozen=True)
class FaceMatches:
    """One face of the photo and the catalog's persons nearest to it, nearest first."""

    face: FoundFace
    matches: list[Match]
    sex: Sex | None  # whom the matches were drawn from: women ("F"), men ("M"), or everyone (None)
    female: float  # the face's apparent sex: P(female) from its descriptor


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

    def matches(self, analysis: PhotoAnalysis, match_sex: MatchSex = "auto") -> list[FaceMatches]:
        """Each face's matches among persons of ``match_sex`` ("auto": the face's own apparent sex, see
        ``Matcher.choose_sex``; everyone if the catalog has nobody of that sex). The cheap half: about a
        millisecond a face."""
        found = []
        for face in analysis.faces:
            sex, female = self.matcher.choose_sex(face.descriptor, match_sex)
            found.append(FaceMatches(face, self.matcher.match(face.descriptor, self.top_k, sex), sex, female))
        return found

    def find(self, data: bytes | bytearray, match_sex: MatchSex = "auto") -> list[FaceMatches]:
        """Both halves in this process: what ``python -m lookalike match`` does for each photo."""
        return self.matches(self.analyze(data), match_sex)
