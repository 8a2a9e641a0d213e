"""What a worker process runs, nameable without loading dlib: the seam between the bot's main process and its pool.

A pool pickles a job's function by reference (module and name), so the bot's main process must import the function
it hands over, and the worker imports the same name to run it. Every function here imports the dlib-backed engine
module that does the work when it is called: only the processes that call them (the workers, the CLI) load dlib
and its models, the bot's main process (Telegram, the catalog, the queue) never does. Their results and errors are
plain data from modules that load no dlib either (photo.py, errors.py).
"""

from __future__ import annotations

from lookalike.engine.images import ImageLimits
from lookalike.engine.photo import DetectOptions, PhotoAnalysis


def load_models() -> None:
    """A worker's initializer: the face models, loaded before the first photo is waiting for them."""
    from lookalike.engine.analysis import analyzer

    analyzer()


def analyze_photo(
    data: bytes | bytearray,
    options: DetectOptions = DetectOptions(),
    limits: ImageLimits = ImageLimits(),
    annotate: bool = False,
) -> PhotoAnalysis:
    """``analysis.analyze_photo``: every face of the photo described. Raises NotAnImage, TooLarge or NoFace."""
    from lookalike.engine.analysis import analyze_photo

    return analyze_photo(data, options, limits, annotate)


def blend_animation(user_jpeg: bytes, celeb_jpeg: bytes, fmt: str = "mp4") -> bytes:
    """``blend.blend_animation``: the user's face turning into the celebrity's, encoded as ``fmt``.
    Raises NoLandmarks, NotAnImage or TooLarge."""
    from lookalike.engine.blend import blend_animation

    return blend_animation(user_jpeg, celeb_jpeg, fmt)
