"""The images the bot sends: the match card and the photo with numbered face boxes. Pure Pillow, no Telegram.

Fonts: Pillow's built-in ``ImageFont.load_default(size=...)`` (Aileron) covers Latin only; Cyrillic and even
accented letters come out as empty boxes, and names are shown in Russian too. So we use DejaVu Sans Bold, looked
up once per process in this order: the copy matplotlib ships in ``mpl-data/fonts/ttf`` (a PyPI wheel, found with
``importlib.util.find_spec`` so matplotlib itself is never imported), Debian's ``fonts-dejavu-core``, and only then
``load_default`` so that a machine without either still renders Latin names instead of failing.
Layout is Pillow's BASIC engine: names need no shaping, and it behaves the same with or without libraqm.
"""

from __future__ import annotations

import importlib.util
import io
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lookalike.engine.images import ImageLimits, load_rgb

FACE = 320  # side of each face square on the card
CARD_W, CARD_H = 720, 424
MARGIN, GAP, FOOTER_TOP = 24, 32, 352
BADGE_R = 60  # radius of the percent badge on the seam between the two faces
FACES_MAX_SIDE = 1280
JPEG_QUALITY = 88

BACKGROUND = (23, 24, 30)
TEXT = (245, 245, 247)
MUTED = (170, 172, 182)
ACCENT = (255, 196, 0)
TRACK = (70, 72, 82)
ELLIPSIS = "…"

# Card inputs are thumbnails; decode big ones at reduced scale (JPEG draft) instead of at full size.
_THUMB_LIMITS = ImageLimits(decode_max_side=2 * FACE)
_FONT_FILES = (
    "mpl-data/fonts/ttf/DejaVuSans-Bold.ttf",  # relative to the matplotlib package
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
)


def render_card(
    user_face_jpeg: bytes, celebrity_jpeg: bytes, name: str, similarity: float, role: str | None = None
) -> bytes:
    """The match card as JPEG: user's face left, celebrity right, similarity badge between, name (and role) below.

    ``similarity`` is a percent in [0, 100] (``Calibration.similarity``); any image size or aspect is centre-cropped
    to a square. Raises ``NotAnImage``/``TooLarge`` from ``lookalike.engine.images`` for undecodable input.
    """
    card = Image.new("RGB", (CARD_W, CARD_H), BACKGROUND)
    card.paste(_square(user_face_jpeg), (MARGIN, MARGIN), _rounded_mask(FACE, 18))
    card.paste(_square(celebrity_jpeg), (MARGIN + FACE + GAP, MARGIN), _rounded_mask(FACE, 18))
    draw = ImageDraw.Draw(card)
    _draw_badge(draw, (CARD_W // 2, MARGIN + FACE // 2), min(100.0, max(0.0, similarity)))
    _draw_footer(draw, " ".join(name.split()), " ".join((role or "").split()))
    return _jpeg(card)


def render_faces(rgb: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> bytes:
    """The photo (long side at most 1280 px) as JPEG with boxes numbered 1, 2, 3… in the given order.

    ``rgb`` is the decoded ``(h, w, 3)`` uint8 image the worker already has; ``boxes`` are (left, top, right,
    bottom) in its coordinates and are scaled along with the photo.
    """
    image = Image.fromarray(rgb).convert("RGB")  # a copy: never draw on the worker's array
    scale = min(1.0, FACES_MAX_SIDE / max(image.size))
    if scale < 1.0:
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR, reducing_gap=2.0
        )
    draw = ImageDraw.Draw(image)
    line = max(2, round(max(image.size) / 320))
    font = _font(max(14, round(max(image.size) / 24)))
    for number, box in enumerate(boxes, start=1):
        scaled = tuple(round(v * scale) for v in box)
        _draw_box(draw, scaled, line)
        _draw_label(draw, scaled, str(number), font, image.size)
    return _jpeg(image)


def _square(data: bytes) -> Image.Image:
    """Decode (EXIF-upright, any mode), centre-crop to a square and resize to FACE x FACE."""
    image = Image.fromarray(load_rgb(data, _THUMB_LIMITS))
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.resize((FACE, FACE), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))


def _draw_badge(draw: ImageDraw.ImageDraw, centre: tuple[int, int], similarity: float) -> None:
    """A round badge with "87%" inside and a ring filled in proportion to the similarity."""
    x, y = centre
    outer = (x - BADGE_R, y - BADGE_R, x + BADGE_R, y + BADGE_R)
    draw.ellipse(outer, fill=BACKGROUND)
    ring = (x - BADGE_R + 5, y - BADGE_R + 5, x + BADGE_R - 5, y + BADGE_R - 5)
    draw.arc(ring, 0, 360, fill=TRACK, width=7)
    if similarity > 0:
        draw.arc(ring, -90, -90 + 360 * similarity / 100, fill=ACCENT, width=7)
    text = f"{round(similarity)}%"
    font = _fitting_font(text, 2 * BADGE_R - 30, sizes=range(38, 19, -2))
    draw.text(centre, text, font=font, fill=TEXT, anchor="mm")


def _draw_footer(draw: ImageDraw.ImageDraw, name: str, role: str) -> None:
    """The celebrity's name centred in the footer, the role smaller beneath it: each the largest size that fits,
    ellipsized at the smallest."""
    width = CARD_W - 2 * MARGIN
    middle = (FOOTER_TOP + CARD_H) // 2
    lines = [(name, range(34, 21, -2), TEXT, middle)]
    if role:
        lines = [(name, range(30, 19, -2), TEXT, middle - 14), (role, range(20, 13, -2), MUTED, middle + 20)]
    for text, sizes, colour, y in lines:
        font = _fitting_font(text, width, sizes)
        draw.text((CARD_W // 2, y), _ellipsize(text, font, width), font=font, fill=colour, anchor="mm")


def _draw_box(draw: ImageDraw.ImageDraw, box: tuple[int, ...], line: int) -> None:
    """A bright frame with a dark outline so it shows on light and dark backgrounds alike."""
    left, top, right, bottom = box
    draw.rectangle((left - line, top - line, right + line, bottom + line), outline=(0, 0, 0), width=3 * line)
    draw.rectangle((left, top, right, bottom), outline=ACCENT, width=line)


def _draw_label(
    draw: ImageDraw.ImageDraw, box: tuple[int, ...], text: str, font: ImageFont.FreeTypeFont, size: tuple[int, int]
) -> None:
    """A filled tab with the number above the box's top-left corner (inside the box when there is no room)."""
    left, top, _, _ = box
    pad = max(3, round(font.size * 0.25))
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font, anchor="lt")
    tab_w, tab_h = x1 - x0 + 2 * pad + pad, y1 - y0 + 2 * pad
    tab_x = min(max(0, left), size[0] - tab_w)
    tab_y = top - tab_h if top - tab_h >= 0 else max(0, top)
    draw.rectangle((tab_x, tab_y, tab_x + tab_w, tab_y + tab_h), fill=ACCENT, outline=(0, 0, 0), width=1)
    draw.text((tab_x + tab_w / 2, tab_y + tab_h / 2), text, font=font, fill=(0, 0, 0), anchor="mm")


def _fitting_font(text: str, width: int, sizes: range) -> ImageFont.FreeTypeFont:
    """The first (largest) size in ``sizes`` at which ``text`` fits ``width``, else the smallest."""
    for size in sizes:
        if _font(size).getlength(text) <= width:
            return _font(size)
    return _font(sizes[-1])


def _ellipsize(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """``text`` cut at the longest prefix that fits ``width`` together with "…" (binary search on length)."""
    if font.getlength(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if font.getlength(text[:mid].rstrip() + ELLIPSIS) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ELLIPSIS


def _jpeg(image: Image.Image) -> bytes:
    """JPEG bytes; 4:4:4 chroma keeps coloured text and thin lines sharp at a small cost in size."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=0, optimize=True)
    return out.getvalue()


@cache
def _rounded_mask(side: int, radius: int) -> Image.Image:
    """An L-mode mask with rounded corners, drawn once per size."""
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, side - 1, side - 1), radius=radius, fill=255)
    return mask


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    """The bold font at ``size`` px, loaded once per size for the life of the process."""
    path = _font_path()
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


@cache
def _font_path() -> str | None:
    """The first DejaVu Sans Bold found (matplotlib's copy, then the system's), or None for Pillow's default."""
    spec = importlib.util.find_spec("matplotlib")
    roots = [Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
    candidates = [root / _FONT_FILES[0] for root in roots] + [Path(_FONT_FILES[1])]
    return next((str(p) for p in candidates if p.is_file()), None)
