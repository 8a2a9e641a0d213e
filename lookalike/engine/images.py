"""Bytes → RGB array: every format Pillow reads, EXIF orientation, and guards against bombs and absurd sizes."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from lookalike.errors import NotAnImage, TooLarge

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".jfif"})

# Our own pixel limit is checked on the header before any pixel is decoded; Pillow's bomb guard
# (MAX_IMAGE_PIXELS, left at its default) is a second line, its warning turned into an error below.


@dataclass(frozen=True)
class ImageLimits:
    """Bounds on what we agree to decode: file bytes, total pixels, and the long side after decoding."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 50_000_000
    decode_max_side: int = 1600


def load_rgb(data: bytes | bytearray, limits: ImageLimits = ImageLimits()) -> np.ndarray:
    """Decode ``data`` into an upright ``(h, w, 3)`` uint8 RGB array, no larger than ``decode_max_side``.

    JPEGs are decoded at a reduced scale when much larger than needed (Pillow's draft mode: several times cheaper
    than decoding everything, and the pixel limit applies to what is really decoded); every other format is
    shrunk right after decoding, before any mode conversion, so a small file with huge dimensions never gets
    copied at full size. Raises NotAnImage for anything undecodable, TooLarge beyond ``limits``.
    """
    if len(data) > limits.max_bytes:
        raise TooLarge(f"file is {len(data) / 2**20:.1f} MB, limit {limits.max_bytes / 2**20:.0f} MB")
    if not data:
        raise NotAnImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                if im.format == "JPEG" and max(im.size) > limits.decode_max_side:
                    scale = limits.decode_max_side / max(im.size)
                    im.draft("RGB", (int(im.width * scale), int(im.height * scale)))
                if im.width * im.height > limits.max_pixels:
                    raise TooLarge(f"image is {im.width}x{im.height} pixels, limit {limits.max_pixels}")
                orientation = im.getexif().get(EXIF_ORIENTATION)
                im.load()
                return _upright_rgb(_shrunk(im, limits.decode_max_side), orientation)
    except (TooLarge, NotAnImage):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise TooLarge(str(exc)) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise NotAnImage(_reason(exc)) from exc


EXIF_ORIENTATION = 0x0112
# What a viewer does to show each EXIF orientation upright (as PIL.ImageOps.exif_transpose does).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "unknown or unsupported image format"
    return f"{type(exc).__name__}: {exc}"


def _shrunk(im: Image.Image, max_side: int) -> Image.Image:
    """At most ``max_side`` px on the long side: integer ``reduce`` (box filter, cheap) first where the mode
    allows it, then an exact resize; palette images are expanded first so they resize smoothly."""
    if max(im.size) <= max_side:
        return im
    if im.mode in ("P", "1"):
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    factor = max(im.size) // max_side
    if factor >= 2 and im.mode not in _NO_REDUCE:
        im = im.reduce(factor)
    return im.resize(_fit(im.size, max_side), Image.Resampling.BILINEAR) if max(im.size) > max_side else im


_NO_REDUCE = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    scale = max_side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _upright_rgb(im: Image.Image, orientation: int | None) -> np.ndarray:
    """Turn upright, flatten alpha on white, squash 16-bit/CMYK/palette modes to 8-bit RGB (on the shrunk image)."""
    if orientation in _TRANSPOSE:
        im = im.transpose(_TRANSPOSE[orientation])
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        peak = 65535.0 if arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8), mode="L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
