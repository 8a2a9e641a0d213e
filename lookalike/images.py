"""Bytes → RGB array: every format Pillow reads, EXIF orientation, and guards against bombs and absurd sizes."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import NotAnImage, TooLarge

# Pillow's own bomb guard warns at MAX_IMAGE_PIXELS and raises at twice that; we check the header ourselves
# first (cheap, before any pixel is decoded) and turn Pillow's warning into an error as a second line.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on what we agree to decode: file bytes, total pixels, and the long side after decoding."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    decode_max_side: int = 1600


def load_rgb(data: bytes, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Decode ``data`` into an upright ``(h, w, 3)`` uint8 RGB array.

    JPEGs much larger than ``decode_max_side`` are decoded at a reduced scale (Pillow's draft mode), which is
    several times cheaper than decoding everything and then downscaling; faces stay far above the 150 px chip.
    Raises NotAnImage for anything undecodable and TooLarge for files or pixel counts beyond ``limits``.
    """
    if len(data) > limits.max_bytes:
        raise TooLarge(f"file is {len(data)} bytes, limit {limits.max_bytes}")
    if not data:
        raise NotAnImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                if width * height > limits.max_pixels:
                    raise TooLarge(f"image is {width}x{height} pixels, limit {limits.max_pixels}")
                if im.format == "JPEG" and max(width, height) > limits.decode_max_side:
                    scale = limits.decode_max_side / max(width, height)
                    im.draft("RGB", (int(width * scale), int(height * scale)))
                im.seek(0)
                im.load()
                return _upright_rgb(im, limits.decode_max_side)
    except (TooLarge, NotAnImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(str(exc)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImage(f"{type(exc).__name__}: {exc}") from exc


def _upright_rgb(im: Image.Image, max_side: int) -> np.ndarray:
    """Apply EXIF orientation, flatten alpha on white, squash 16-bit/CMYK/palette modes to 8-bit RGB."""
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8), mode="L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    im = im.convert("RGB")
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
