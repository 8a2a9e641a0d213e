"""Frames → a short looping animation for Telegram's sendAnimation: MP4 (H.264 through PyAV) or GIF (Pillow only).

Knows nothing of faces: lookalike/engine/blend.py makes the frames. Choices and sizes are measured in
bench/blend.py.
"""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np
from PIL import Image

FRAMES = 30  # of the MP4: user → celebrity → (almost) user, the last frame leading into the first when it loops…
FPS = 15  # …in 2 s
FORMATS = {"mp4": (FRAMES, FPS), "gif": (20, 10)}  # frames and fps of each encoding, 2 s each
MAX_BYTES = 1_000_000  # what the bot promises to send at most
GIF_COLOURS = (128, 64)  # palette sizes to try in turn: 128 keeps the GIF near 750 KB (bench/blend.py)


def timing(fmt: str) -> tuple[int, int]:
    """Frames and fps of ``fmt``; ValueError for a format that is not encoded here."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown animation format {fmt!r}: one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def encode(frames: list[np.ndarray], fmt: str = "mp4", fps: int = FPS) -> bytes:
    """MP4 (H.264 yuv420p, no audio: what sendAnimation plays inline and loops) or a looping GIF (fewer colours
    when needed to stay under MAX_BYTES). Frames are RGB uint8 (h, w, 3), all the same size."""
    timing(fmt)
    return _mp4(frames, fps) if fmt == "mp4" else _gif(frames, fps)


def _mp4(frames: list[np.ndarray], fps: int) -> bytes:
    """H.264 (yuv420p, so even sides) in MP4 via PyAV, imported here so that the GIF path needs no extra package.
    x264's "veryfast" preset: a third of "medium"'s time for the same size at this length (bench/blend.py)."""
    import av

    height, width = frames[0].shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"H.264 yuv420p needs even sides, not {width}x{height}")
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:  # moov at the end: +faststart cannot seek in memory
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        stream.codec_context.thread_count = 1  # one core per animation: the bot's worker pool shares the machine
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return out.getvalue()


def _gif(frames: list[np.ndarray], fps: int) -> bytes:
    """A looping GIF with one palette made from the two ends (every frame of a morph is a mix of them),
    undithered: dithering noise does not compress, and a full-frame morph leaves GIF no unchanged areas to skip."""
    ends = Image.fromarray(np.concatenate([frames[0], frames[len(frames) // 2]], axis=0))
    for colours in GIF_COLOURS:
        palette = ends.quantize(colours, method=Image.Quantize.MEDIANCUT)
        images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
        out = io.BytesIO()
        images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
        if out.tell() <= MAX_BYTES:
            break
    return out.getvalue()
