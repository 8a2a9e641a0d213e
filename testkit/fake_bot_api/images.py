"""Pictures: a synthetic one for tests, and the PhotoSizes Telegram makes of an uploaded photo."""

from __future__ import annotations

import io


def make_image(
    width: int = 640, height: int = 480, *, color: tuple[int, int, int] = (180, 120, 90), fmt: str = "JPEG"
) -> bytes:
    """A small synthetic picture (an ellipse on a background) for tests that need *some* valid image."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), color)
    inverse = (255 - color[0], 255 - color[1], 255 - color[2])
    ImageDraw.Draw(image).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=inverse)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def photo_sizes(data: bytes) -> list[tuple[bytes, int, int]] | None:
    """Telegram's PhotoSizes as (bytes, width, height): a 90 px JPEG thumbnail, then ``data``; None if undecodable.

    A real thumbnail, so a bot that downloads anything but the largest size gets caught.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            size = image.size
            image.draft("RGB", (90, 90))  # JPEGs decode at a reduced scale: cheap under load
            image.thumbnail((90, 90))
            thumbnail = io.BytesIO()
            image.convert("RGB").save(thumbnail, "JPEG")
    except Exception:  # whatever Pillow makes of arbitrary bytes: Telegram would not see a photo either
        return None
    return [(thumbnail.getvalue(), image.width, image.height), (data, *size)]
