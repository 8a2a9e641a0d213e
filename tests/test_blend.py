"""The face-morph animation on real faces: frame count and size, ends equal to the aligned inputs, an in-between
frame that is itself one face (not a double exposure), encodings that decode back, and plain failures."""

from __future__ import annotations

import io
from functools import cache
from itertools import pairwise

import dlib
import numpy as np
import pytest
from PIL import Image, ImageSequence

from lookalike.engine import blend
from lookalike.engine.blend import LIMITS
from lookalike.errors import NoLandmarks, NotAnImage, PhotoError, TooLarge
from testkit.data import FACES
from testkit.images import png_bomb

USER_PHOTO = FACES / "angelina_jolie" / "1.jpg"  # 1184x1600: cropped to a 320 px square the way the bot does
CELEB_PORTRAIT = FACES / "tony_blair" / "1.jpg"  # 250x250, face with context, turned a little, mouth open
CELEB_TIGHT = FACES / "madonna" / "13.jpg"  # 150x150, the face fills (and overflows) the photo


def mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference per channel value, 0–255."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=88)
    return out.getvalue()


@cache
def user_crop() -> bytes:
    """A 320 px square around the face with 45 % margins, like the bot's face crop."""
    if not FACES.is_dir():
        pytest.fail(f"{FACES} not found: the tests read real faces from ../shared/faces")
    photo = Image.open(USER_PHOTO).convert("RGB")
    small = photo.resize((photo.width // 4, photo.height // 4))
    box = max(dlib.get_frontal_face_detector()(np.asarray(small), 0), key=lambda r: r.area())
    side = max(box.width(), box.height()) * 1.9 * 4
    cx, cy = box.center().x * 4, box.center().y * 4
    square = photo.crop((round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)))
    return jpeg(square.resize((320, 320), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def portrait_frames() -> list[np.ndarray]:
    return blend.blend_frames(user_crop(), CELEB_PORTRAIT.read_bytes(), size=320, frames=30)


def test_frames_start_and_end_at_the_user_and_reach_the_celebrity_midway(portrait_frames: list[np.ndarray]) -> None:
    user, celeb = blend.align_pair(user_crop(), CELEB_PORTRAIT.read_bytes(), size=320)
    assert len(portrait_frames) == 30
    assert all(f.shape == (320, 320, 3) and f.dtype == np.uint8 for f in portrait_frames)
    apart = mad(user.image, celeb.image)
    assert apart > 25  # two different people: the bounds below would catch a morph stuck at either end
    assert mad(portrait_frames[0], user.image) < 0.5
    assert mad(portrait_frames[15], celeb.image) < 0.5
    assert mad(portrait_frames[-1], user.image) < 3  # 2 % of the way: leads smoothly into the first when looping
    quarter = portrait_frames[7]  # about half-way there
    assert mad(quarter, user.image) < 0.75 * apart and mad(quarter, celeb.image) < 0.75 * apart
    steps = [mad(a, b) for a, b in pairwise(portrait_frames)]
    assert max(steps) < apart / 4  # no jump: eased over the whole way


def test_the_half_way_frame_is_one_face_with_the_average_shape() -> None:
    """dlib finds the in-between landmarks where the morph put them. A plain cross-dissolve (two faces showing
    through each other) is off by ~0.1 eye distance on this pair, the morph by ~0.02."""
    user, celeb = blend.align_pair(user_crop(), CELEB_PORTRAIT.read_bytes(), size=320)
    expected = (user.points + celeb.points) / 2
    eye_distance = np.linalg.norm(expected[42:48].mean(axis=0) - expected[36:42].mean(axis=0))
    assert np.linalg.norm(user.points - celeb.points, axis=1).mean() > 0.2 * eye_distance  # shapes differ enough
    halfway = blend.morph(user, celeb, frames=4)[1]  # weight exactly 0.5
    found = blend.landmarks(Image.fromarray(halfway), "the half-way face")
    assert np.linalg.norm(found - expected, axis=1).mean() < 0.045 * eye_distance


def test_a_tight_crop_celebrity_fills_the_frame_without_black() -> None:
    celeb_jpeg = CELEB_TIGHT.read_bytes()
    frames = blend.blend_frames(user_crop(), celeb_jpeg, frames=30)
    user, celeb = blend.align_pair(user_crop(), celeb_jpeg)
    assert len(frames) == 30 and frames[15].shape == (320, 320, 3)
    assert mad(frames[0], user.image) < 0.5 and mad(frames[15], celeb.image) < 0.5
    assert mad(user.image, celeb.image) > 25
    for edge in (celeb.image[:12], celeb.image[-12:], celeb.image[:, :12], celeb.image[:, -12:]):
        assert edge.mean() > 60  # the photo ends well inside the frame: filled from its own edge, not black


def test_mp4_decodes_to_30_frames_of_h264_yuv420p_without_audio_under_1_mb() -> None:
    av = pytest.importorskip("av")
    data = blend.blend_animation(user_crop(), CELEB_PORTRAIT.read_bytes(), fmt="mp4")
    assert len(data) < 1_000_000
    with av.open(io.BytesIO(data)) as container:
        assert not container.streams.audio
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(decoded) == 30 and decoded[0].shape == (320, 320, 3)
    assert float(stream.duration * stream.time_base) == pytest.approx(2.0, abs=0.1)


def test_gif_decodes_to_20_looping_frames_under_1_mb() -> None:
    data = blend.blend_animation(user_crop(), CELEB_PORTRAIT.read_bytes(), fmt="gif")
    assert len(data) < 1_000_000
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF" and gif.size == (320, 320) and gif.info.get("loop") == 0
        durations = [frame.info["duration"] for frame in ImageSequence.Iterator(gif)]
    assert len(durations) == 20 and sum(durations) == 2000


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="webm"):
        blend.blend_animation(user_crop(), CELEB_PORTRAIT.read_bytes(), fmt="webm")


def faceless(kind: str) -> bytes:
    if kind == "flat colour":
        return jpeg(Image.new("RGB", (320, 320), (120, 140, 160)))
    return jpeg(Image.open(FACES / "obama" / "1.jpg").convert("RGB").crop((0, 700, 910, 1137)))  # suit, arms


@pytest.mark.parametrize("kind", ["flat colour", "a photo's lower part"])
def test_no_landmarks_names_the_face(kind: str) -> None:
    with pytest.raises(NoLandmarks, match="your face") as raised:
        blend.blend_frames(faceless(kind), CELEB_PORTRAIT.read_bytes())
    assert isinstance(raised.value, PhotoError)
    assert raised.value.code == "no_landmarks" and raised.value.whose == NoLandmarks.USER
    with pytest.raises(NoLandmarks, match="the celebrity's face") as raised:
        blend.blend_frames(user_crop(), faceless(kind))
    assert raised.value.whose == NoLandmarks.CELEBRITY


def test_bytes_that_are_no_image_are_told_apart() -> None:
    with pytest.raises(NotAnImage):
        blend.blend_frames(b"not a jpeg", CELEB_PORTRAIT.read_bytes())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(png_bomb(8000, 8000), id="64-megapixel header"),  # under Pillow's own bomb guard, over ours
        pytest.param(b"\xff\xd8" + bytes(LIMITS.max_bytes), id="over the byte limit"),
    ],
)
def test_images_beyond_the_photo_limits_are_refused_before_decoding(data: bytes) -> None:
    with pytest.raises(TooLarge):
        blend.blend_frames(user_crop(), data)
