"""Typed errors: bad input carries a stable ``code`` that the CLI's JSON and the bot's replies key on; the rest live
here so that catching one imports nothing heavy (Dask, dlib) and no two modules import each other for an error."""

from __future__ import annotations


class PhotoError(Exception):
    """A photo that cannot be matched, for a reason the user can be told about."""

    code = "error"


class NotAnImage(PhotoError):
    """The bytes are not an image any installed decoder understands (or are truncated beyond repair)."""

    code = "not_an_image"


class TooLarge(PhotoError):
    """The image is too large to decode safely (file size, pixel count or a decompression bomb)."""

    code = "too_large"


class NoFace(PhotoError):
    """The image decoded but no face was found in it."""

    code = "no_face"


class NoLandmarks(PhotoError):
    """dlib found no face, hence no 68 landmarks, in one of the two images of a blend: the morph has nothing to
    hold on to. ``whose`` is USER or CELEBRITY, so that the bot can say which photo to change."""

    code = "no_landmarks"
    USER = "your face"
    CELEBRITY = "the celebrity's face"

    def __init__(self, whose: str) -> None:
        self.whose = whose
        super().__init__(f"could not find the 68 face landmarks on {whose}")

    def __reduce__(self) -> tuple[type[NoLandmarks], tuple[str]]:
        return NoLandmarks, (self.whose,)  # rebuilt from ``whose`` after crossing from a worker process


class ClusterError(RuntimeError):
    """The Dask scheduler is unreachable or was lost, or its workers cannot describe; the message names the address."""
