"""Bad and odd images made on the fly from real photos (nothing of ../shared/faces is copied into the repo)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def encode(image: Image.Image, fmt: str = "JPEG", **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming ``width``×``height`` pixels with a tiny body: decoding it would take ~30 GB."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def with_orientation(path: Path, orientation: int) -> bytes:
    """The photo stored rotated, with the EXIF tag that tells a viewer how to turn it upright again."""
    upright = Image.open(path).convert("RGB")
    stored = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(upright.transpose(stored), exif=exif.tobytes())


def huge_small_jpeg(width: int = 12_000, height: int = 12_000) -> bytes:
    """A JPEG of a flat colour: many megapixels, a few hundred kilobytes."""
    return encode(Image.new("RGB", (width, height), (200, 180, 160)), quality=30)


def noise_jpeg(megabytes: float) -> bytes:
    """A large image file with no face, about ``megabytes`` big (random pixels: ~1.4 bytes a pixel at quality 97)."""
    side = int((megabytes * 2**20 / 1.4) ** 0.5)
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG", quality=97)
