"""Sideways and upside-down photos of real faces: turned upright before anything is answered, with the same face,
match and boxes as the upright photo; an upside-down "face" is never answered as it stands."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.engine.analysis import analyze_photo, analyzer
from lookalike.engine.images import load_rgb
from lookalike.engine.matcher import Matcher
from lookalike.engine.orientation import find_upright, is_upright
from lookalike.engine.photo import DetectOptions, PhotoAnalysis
from lookalike.errors import NoFace
from testkit.data import LFW, BuiltCatalog
from testkit.images import encode

TURNS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
CHEAP = DetectOptions(fallback_upsample=0)
SAME_FACE = 0.15  # descriptor distance: the same photo re-encoded (another person is ~0.6 away, the same one ~0.4)


def turned(image: Image.Image, degrees: int) -> bytes:
    """The photo as a phone with rotation lock would send it: turned ``degrees`` counter-clockwise, JPEG."""
    return encode(image.transpose(TURNS[degrees]) if degrees else image, quality=92)


def photo(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two boxes."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return inter / (area - inter)


@pytest.fixture(scope="module")
def matcher(catalog: BuiltCatalog) -> Matcher:
    return Matcher(catalog.assets)


@pytest.fixture(scope="module")
def samples(catalog: BuiltCatalog) -> list[tuple[str, Path]]:
    """One query photo (not in the catalog) of each of 12 people."""
    return [(person, paths[0]) for person, paths in sorted(catalog.queries.items())[::3]][:12]


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_turned_faces_are_found_upright_with_the_same_match(
    samples: list[tuple[str, Path]], matcher: Matcher, degrees: int
) -> None:
    for person, path in samples:
        image = photo(path)
        upright = analyze_photo(turned(image, 0))
        found = analyze_photo(turned(image, degrees))
        assert (found.width, found.height) == (upright.width, upright.height), path  # boxes of the upright photo
        face = found.faces[0]
        assert np.linalg.norm(face.descriptor - upright.faces[0].descriptor) < SAME_FACE, path
        assert overlap(face.box, upright.faces[0].box) > 0.7, path
        best = matcher.match(face.descriptor, 1)[0].person
        assert best == matcher.match(upright.faces[0].descriptor, 1)[0].person, path
        assert best == person, path  # a query photo of one of the catalog's people: the right name too


def test_the_turn_is_undone_exactly(samples: list[tuple[str, Path]]) -> None:
    """What the faces are found in is the upright photo itself, pixel for pixel."""
    _, path = samples[0]
    rgb = load_rgb(turned(photo(path), 0))
    for turns in (1, 2, 3):
        upright = find_upright(analyzer(), np.ascontiguousarray(np.rot90(rgb, -turns)))
        assert upright is not None and upright.turns == turns
        assert np.array_equal(upright.rgb, rgb)
    as_sent = find_upright(analyzer(), rgb)
    assert as_sent is not None and as_sent.turns == 0 and as_sent.rgb is rgb  # an upright photo is not copied


def _upside_down_decoys(faces: dict[str, list[Path]], wanted: int = 8) -> list[tuple[Path, Image.Image]]:
    """Photos in which HOG finds a "face" once they are turned upside down (a false face or the real one upside
    down), first photos of each person first."""
    found = []
    for index in range(3):
        for paths in faces.values():
            if index < len(paths):
                image = photo(paths[index])
                if analyzer().detections(load_rgb(turned(image, 180)), CHEAP):
                    found.append((paths[index], image))
                    if len(found) == wanted:
                        return found
    return found


def test_an_upside_down_face_is_never_answered_as_it_stands(faces: dict[str, list[Path]]) -> None:
    """HOG finds something in each of these photos turned 180°; what comes back is the face of the photo turned
    upright (its descriptor is the upright photo's), never one read off the upside-down "face"."""
    decoys = _upside_down_decoys(faces)
    assert len(decoys) == 8  # otherwise this test would show nothing
    answered = 0
    for path, image in decoys:
        upright = analyze_photo(turned(image, 0))
        try:
            found = analyze_photo(turned(image, 180))
        except NoFace:
            continue  # allowed: nothing is answered (but see the count below)
        answered += 1
        assert np.linalg.norm(found.faces[0].descriptor - upright.faces[0].descriptor) < SAME_FACE, path
        for face in found.faces:
            assert min(np.linalg.norm(face.descriptor - u.descriptor) for u in upright.faces) < SAME_FACE, path
    assert answered >= 6  # and most of them are answered, from the face turned upright


def test_an_upright_face_the_check_cannot_tell_stays_upright() -> None:
    """A blurred upright face scores alike as it stands and turned 180°: it is kept, and the photo turned upside
    down (where HOG finds only a weak "face") does not win over it."""
    rgb = load_rgb((LFW / "Doris_Schroeder" / "Doris_Schroeder_0001.jpg").read_bytes())
    [detection] = analyzer().detections(rgb)
    assert is_upright(analyzer(), rgb, detection) is None  # what makes this photo the case
    found = find_upright(analyzer(), rgb)
    assert found is not None and found.turns == 0 and found.detections == [detection]


def test_a_sideways_group_photo_is_annotated_upright(catalog: BuiltCatalog) -> None:
    """Three 150 px close-ups side by side, sent turned 90° clockwise."""
    tiles = [paths[0] for _, paths in sorted(catalog.queries.items()) if Image.open(paths[0]).size == (150, 150)]
    group = Image.new("RGB", (450, 150))
    for n, path in enumerate(tiles[:3]):
        group.paste(photo(path), (150 * n, 0))
    assert len(analyze_photo(turned(group, 0)).faces) == 3  # what the upright photo gives
    analysis: PhotoAnalysis = analyze_photo(turned(group, 270), annotate=True)
    assert (analysis.width, analysis.height) == (450, 150) and len(analysis.faces) == 3
    assert sorted((f.box[0] + f.box[2]) // 300 for f in analysis.faces) == [0, 1, 2]  # a box centred in each tile
    assert analysis.annotated_jpeg is not None
    with Image.open(io.BytesIO(analysis.annotated_jpeg)) as annotated:
        assert annotated.width > annotated.height  # drawn on the upright photo, like the boxes
