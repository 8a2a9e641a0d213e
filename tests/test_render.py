"""The card and the numbered-faces image, checked on real photos from ../shared/faces (read in place, never copied)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.build.describe import describe_photo
from lookalike.engine import render
from lookalike.engine.analysis import face_crop
from lookalike.engine.images import load_rgb
from lookalike.errors import NotAnImage
from testkit.data import FACES


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


def _photo(name: str) -> Image.Image:
    return Image.open(FACES / name).convert("RGB")


def _user_crop(name: str = "obama/1.jpg") -> Image.Image:
    """The kind of square face crop the worker hands over: 320 px, already cropped."""
    return ImageOps.fit(_photo(name), (render.FACE, render.FACE), Image.Resampling.LANCZOS)


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.convert("RGB")


def _face_on_card(card: Image.Image, right: bool) -> Image.Image:
    """The outer 60% of a face square on the card (away from the badge on the seam and the rounded corners)."""
    x = render.MARGIN + (render.FACE + render.GAP if right else 0)
    band = int(render.FACE * 0.6)
    left = x + render.FACE - band if right else x
    return card.crop((left, render.MARGIN + 20, left + band, render.MARGIN + render.FACE - 20))


def _same_part(expected: Image.Image, right: bool) -> Image.Image:
    """The region of a 320 px source square that ``_face_on_card`` shows."""
    band = int(render.FACE * 0.6)
    left = render.FACE - band if right else 0
    return expected.crop((left, 20, left + band, render.FACE - 20))


def _mad(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two images compared at 24x24, in 0..255."""
    small = [np.asarray(im.convert("RGB").resize((24, 24), Image.Resampling.BOX), dtype=np.float32) for im in (a, b)]
    return float(np.abs(small[0] - small[1]).mean())


def _footer(card: Image.Image) -> np.ndarray:
    return np.asarray(card.crop((0, render.FOOTER_TOP, render.CARD_W, render.CARD_H)), dtype=np.int16)


def _card(celebrity: bytes, name: str = "George Clooney", similarity: float = 87.4) -> Image.Image:
    return _decode(render.render_card(_jpeg(_user_crop()), celebrity, name, similarity))


def test_card_is_a_small_jpeg_of_the_card_size():
    data = render.render_card(_jpeg(_user_crop()), (FACES / "george_clooney/2.jpg").read_bytes(), "George Clooney", 87)
    assert len(data) < 100_000
    assert _decode(data).size == (render.CARD_W, render.CARD_H)


def test_user_is_on_the_left_and_the_centre_cropped_celebrity_on_the_right():
    celebrity = _photo("george_clooney/2.jpg")  # 1177x1600: must be centre-cropped to a square
    card = _card(_jpeg(celebrity))
    user = _user_crop()
    expected = ImageOps.fit(celebrity, (render.FACE, render.FACE), Image.Resampling.LANCZOS)
    left, right = _face_on_card(card, right=False), _face_on_card(card, right=True)
    assert _mad(left, _same_part(user, right=False)) < 8
    assert _mad(right, _same_part(expected, right=True)) < 8
    assert _mad(left, _same_part(expected, right=False)) > 25
    assert _mad(right, _same_part(user, right=True)) > 25


def test_cyrillic_names_render_as_real_glyphs():
    """Two Cyrillic names of the same length differ only if the font has the glyphs (no identical empty boxes)."""
    celebrity = (FACES / "vladimir_putin/1.jpg").read_bytes()
    first = _footer(_card(celebrity, "Жанна Фриске"))
    second = _footer(_card(celebrity, "Олег Табаков"))
    assert np.abs(first - second).mean() > 3


def test_long_name_is_fitted_inside_the_margins():
    celebrity = (FACES / "george_clooney/1.jpg").read_bytes()
    long_name = "Hubert Blaine Wolfeschlegelsteinhausenbergerdorff Sr. " * 3
    footer = _footer(_card(celebrity, long_name))
    short = _footer(_card(celebrity, "Cher"))
    assert np.abs(footer - short).mean() > 3
    margins = np.concatenate([footer[:, : render.MARGIN - 4], footer[:, -(render.MARGIN - 4) :]], axis=1)
    assert np.abs(margins - np.array(render.BACKGROUND)).max() < 24  # text never spills into the side margins


def _ring_share(similarity: float) -> float:
    """Share of the badge's ring pixels in the accent colour."""
    card = np.asarray(_card((FACES / "george_clooney/1.jpg").read_bytes(), "X", similarity), dtype=np.int16)
    cx, cy = render.CARD_W // 2, render.MARGIN + render.FACE // 2
    yy, xx = np.mgrid[: card.shape[0], : card.shape[1]]
    radius = np.hypot(xx - cx, yy - cy)
    ring = card[(radius > render.BADGE_R - 10) & (radius < render.BADGE_R - 7)]
    accent = np.abs(ring - np.array(render.ACCENT)).sum(axis=1) < 90
    return float(accent.mean())


def test_ring_fills_in_proportion_to_similarity_and_clamps():
    assert _ring_share(0) < 0.02
    assert _ring_share(25) == pytest.approx(0.25, abs=0.05)
    assert _ring_share(90) == pytest.approx(0.9, abs=0.05)
    full = _ring_share(100)
    assert full > 0.97
    assert _ring_share(140) == pytest.approx(full, abs=0.01)


def _gray_jpeg(image: Image.Image) -> bytes:
    return _jpeg(image.convert("L"))


def _rgba_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGBA").save(out, "PNG")
    return out.getvalue()


def _wide_jpeg(image: Image.Image) -> bytes:
    return _jpeg(image.crop((0, 100, image.width, 400)))


@pytest.mark.parametrize("encode", [_gray_jpeg, _rgba_png, _wide_jpeg, _jpeg])
def test_odd_celebrity_inputs_are_squared_onto_the_card(encode):
    celebrity = _photo("elon_musk/3.jpg")  # 1280x811
    data = encode(celebrity)
    card = _card(data)
    expected = ImageOps.fit(Image.open(io.BytesIO(data)).convert("RGB"), (render.FACE, render.FACE))
    assert card.size == (render.CARD_W, render.CARD_H)
    assert _mad(_face_on_card(card, right=True), _same_part(expected, right=True)) < 8


def test_non_square_user_crop_is_accepted():
    user = _jpeg(_photo("biden/1.jpg"))  # 704x1600
    card = _decode(render.render_card(user, _jpeg(_user_crop()), "Joe", 50))
    assert card.size == (render.CARD_W, render.CARD_H)


def test_undecodable_celebrity_raises_not_an_image():
    with pytest.raises(NotAnImage):
        render.render_card(_jpeg(_user_crop()), b"not an image", "X", 50)


def _edge_change(before: np.ndarray, after: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Mean absolute change along the four edges of ``box``."""
    left, top, right, bottom = box
    edges = [np.s_[top:bottom, left], np.s_[top:bottom, right], np.s_[top, left:right], np.s_[bottom, left:right]]
    return float(np.mean([np.abs(after[e].astype(np.int16) - before[e]).mean() for e in edges]))


def test_render_faces_draws_at_every_box_and_leaves_the_rest():
    photo = np.asarray(_photo("angelina_jolie/8.jpg"))  # 600x800, under the 1280 limit: not resized
    boxes = [(150, 120, 420, 420), (20, 500, 200, 700), (400, 0, 590, 150)]  # the last one touches the top
    out = np.asarray(_decode(render.render_faces(photo, boxes)))
    assert out.shape == photo.shape
    for box in boxes:
        assert _edge_change(photo, out, box) > 40
    assert np.abs(out[720:, 300:].astype(np.int16) - photo[720:, 300:]).mean() < 4  # far from every box


def test_render_faces_numbers_boxes_in_the_given_order():
    photo = np.asarray(_photo("angelina_jolie/8.jpg"))
    a, b = (150, 120, 420, 420), (20, 500, 200, 700)
    assert not np.array_equal(
        np.asarray(_decode(render.render_faces(photo, [a, b]))), np.asarray(_decode(render.render_faces(photo, [b, a])))
    )


def test_render_faces_downscales_big_photos_and_their_boxes():
    photo = np.asarray(_photo("angelina_jolie/1.jpg").resize((2560, 1600)))
    box = (800, 600, 1400, 1200)
    out = np.asarray(_decode(render.render_faces(photo, [box])))
    assert out.shape == (800, 1280, 3)
    small = np.asarray(Image.fromarray(photo).resize((1280, 800), Image.Resampling.BILINEAR, reducing_gap=2.0))
    assert _edge_change(small, out, (400, 300, 700, 600)) > 40
    unscaled_left_edge = np.s_[610:795, 795:805]  # where the box would be drawn had it not been scaled
    assert np.abs(out[unscaled_left_edge].astype(np.int16) - small[unscaled_left_edge]).mean() < 4


def _bars(rgb: np.ndarray) -> int:
    """Rows and columns at the image's four edges that are dark all the way across (letterbox bars)."""
    dark = rgb.max(axis=2) < 24
    count = 0
    for line in (dark.all(axis=1), dark.all(axis=0)):
        for run in (line, line[::-1]):
            count += int(np.argmin(run)) if not run.all() else len(run)
    return count


def test_celebrity_side_fills_its_square_for_tight_and_portrait_catalog_photos() -> None:
    """Tight crops (LFW-style 250 px, madonna/13 at 150 px) and 225×275 portraits give a square with no bars, on
    the celebrity's side and on the user's (whose square moves or shrinks inside the photo); a black-framed square
    shows the measure would catch them."""
    small = [p for p in sorted(FACES.glob("*/*.jpg")) if max(Image.open(p).size) <= 260][::6]
    small.append(FACES / "madonna/13.jpg")
    padded = 0
    for path in small:
        data = path.read_bytes()
        described = describe_photo(data, 0)
        if described.vector is None:
            continue
        rgb = load_rgb(data)
        thumb = np.asarray(_decode(described.thumb_jpeg))
        assert thumb.shape == (render.FACE, render.FACE, 3)
        allowed = _bars(rgb) * render.FACE / min(rgb.shape[:2]) + 2  # dark edges the photo itself has, scaled
        assert _bars(thumb) <= allowed, path
        padded += _bars(np.asarray(face_crop(rgb, described))) > allowed
    framed = np.zeros((render.FACE, render.FACE, 3), np.uint8)
    framed[30:-30, 30:-30] = 128
    assert len(small) > 20 and padded == 0 and _bars(framed) >= 30
