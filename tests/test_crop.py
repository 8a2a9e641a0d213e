"""The user's side of the card: a square of their photo around the face, never bars of padding, whether the face
is near the photo's edge or fills it; and the crop is still a face the blend can morph."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lookalike.engine import blend
from lookalike.engine.analysis import CROP_SIZE, analyze_photo, square_around
from lookalike.engine.images import load_rgb
from testkit.data import FACES
from testkit.images import encode

PHOTO = FACES / "obama" / "2.jpg"  # a speech: the face mid-sized, well inside the photo
CELEB = FACES / "tony_blair" / "1.jpg"
SAME_FACE = 0.3  # descriptor distance of the crop's face to the photo's (another person is ~0.6 away)


def dark_edges(rgb: np.ndarray) -> int:
    """Rows and columns at the four edges that are dark all the way across (bars of padding)."""
    dark = rgb.max(axis=2) < 24
    count = 0
    for line in (dark.all(axis=1), dark.all(axis=0)):
        for run in (line, line[::-1]):
            count += len(run) if run.all() else int(np.argmin(run))
    return count


@pytest.fixture(scope="module")
def original() -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """The photo, its face box and descriptor."""
    data = PHOTO.read_bytes()
    face = analyze_photo(data).faces[0]
    return load_rgb(data), face.box, face.descriptor


def cuts(rgb: np.ndarray, box: tuple[int, int, int, int]) -> dict[str, np.ndarray]:
    """The photo cut so that the face touches one edge, two edges, or fills the photo (a close-up)."""
    left, top, right, bottom = box
    w, h = right - left, bottom - top
    return {
        "left edge": rgb[:, left + w // 10 :],
        "top edge": rgb[top + h // 10 :, :],
        "bottom-right corner": rgb[: bottom - h // 10, : right - w // 10],
        "close-up": rgb[max(0, top - h // 5) : bottom + h // 5, max(0, left - w // 10) : right + w // 10],
    }


def test_a_face_near_the_edge_gets_a_crop_without_bars(original) -> None:
    rgb, box, descriptor = original
    celeb = CELEB.read_bytes()
    for name, cut in cuts(rgb, box).items():
        assert dark_edges(cut) == 0, name  # the photo itself has no dark edges
        analysis = analyze_photo(encode(Image.fromarray(np.ascontiguousarray(cut)), quality=92))
        crop_jpeg = analysis.faces[0].crop_jpeg
        with Image.open(io.BytesIO(crop_jpeg)) as im:
            crop = np.asarray(im.convert("RGB"))
        assert crop.shape == (CROP_SIZE, CROP_SIZE, 3), name
        assert dark_edges(crop) == 0, name
        again = analyze_photo(crop_jpeg).faces[0]  # the face is still in the crop, whole enough to be described
        assert np.linalg.norm(again.descriptor - descriptor) < SAME_FACE, name
        user, _ = blend.align_pair(crop_jpeg, celeb)  # and the blend finds its landmarks, its frame filled too
        assert user.image.shape == (320, 320, 3) and dark_edges(user.image) == 0, name


def test_the_square_moves_inside_the_photo_and_keeps_the_face_centred_where_it_can(original) -> None:
    rgb, box, _ = original
    height, width = rgb.shape[:2]
    left, top, right, bottom = box
    x0, y0, side = square_around(rgb, box, 1.9)  # well inside: centred, full size
    assert abs(x0 + side / 2 - (left + right) / 2) <= 1 and abs(y0 + side / 2 - (top + bottom) / 2) <= 1
    assert side == round(1.9 * max(right - left, bottom - top))
    x0, y0, side = square_around(rgb, (5, 300, 105, 400), 1.9)  # a face 5 px from the left edge
    assert (x0, y0, side) == (0, 255, 190)  # moved right to the edge, still centred up and down
    x0, y0, side = square_around(rgb, (width - 80, height - 100, width, height), 1.9)  # in the corner
    assert (x0, y0, side) == (width - 190, height - 190, 190)
    x0, y0, side = square_around(rgb, (0, 200, width, 200 + width), 1.9)  # wider than the photo allows
    assert (x0, side) == (0, width) and abs(y0 + side / 2 - (400 + width) / 2) <= 1
