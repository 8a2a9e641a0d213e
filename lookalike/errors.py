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


class ClusterError(RuntimeError):
    """The Dask scheduler is unreachable or was lost, or its workers cannot describe; the message names the address."""
