"""Every format and orientation a user may send, and the typed errors for what cannot be read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.engine.analysis import analyze_photo
from lookalike.engine.images import ImageLimits, load_rgb
from lookalike.errors import NoFace, NotAnImage, TooLarge
from testkit.data import ROOT
from testkit.images import encode, huge_small_jpeg, png_bomb, with_orientation


@pytest.fixture(scope="module")
def obama(faces: dict[str, list[Path]]) -> Path:
    return faces["obama"][0]


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied_and_face_found(obama: Path, orientation: int) -> None:
    upright = load_rgb(obama.read_bytes())
    turned = load_rgb(with_orientation(obama, orientation))
    assert turned.shape == upright.shape
    assert np.abs(turned.astype(int) - upright.astype(int)).mean() < 6  # JPEG re-encoding noise only
    assert len(analyze_photo(with_orientation(obama, orientation)).faces) == 1


@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda im: encode(im.convert("L")), id="grayscale-jpeg"),
        pytest.param(lambda im: encode(im.convert("RGBA"), "PNG"), id="rgba-png"),
        pytest.param(lambda im: encode(im, "WEBP", quality=80), id="webp"),
        pytest.param(lambda im: encode(im.convert("CMYK")), id="cmyk-jpeg"),
        pytest.param(lambda im: encode(Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257), "PNG"), id="16b"),
        pytest.param(lambda im: encode(im.convert("P"), "GIF"), id="gif"),
    ],
)
def test_formats_decode_to_rgb_with_the_face(obama: Path, convert) -> None:
    data = convert(Image.open(obama))
    rgb = load_rgb(data)
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    analysis = analyze_photo(data)
    assert len(analysis.faces) == 1
    assert analysis.faces[0].descriptor.shape == (128,)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(b"", NotAnImage, id="zero-bytes"),
        pytest.param(b"Hello, I am a text file.\n" * 20, NotAnImage, id="text"),
        pytest.param(b"<html><body>not a photo</body></html>", NotAnImage, id="html"),
        pytest.param(bytes(range(256)) * 40, NotAnImage, id="random-bytes"),
        pytest.param(png_bomb(), TooLarge, id="png-bomb"),
        pytest.param(huge_small_jpeg(), TooLarge, id="huge-dimensions-small-file"),
    ],
)
def test_bad_bytes_raise_typed_errors(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        load_rgb(data)


def test_truncated_jpeg_is_not_an_image(obama: Path) -> None:
    with pytest.raises(NotAnImage):
        load_rgb(obama.read_bytes()[:2000])


def test_file_size_limit() -> None:
    with pytest.raises(TooLarge):
        load_rgb(b"\xff\xd8" + b"\0" * 2048, ImageLimits(max_bytes=1024))


def test_big_jpeg_is_decoded_at_reduced_size(obama: Path) -> None:
    big = Image.open(obama).resize((3640, 4548))
    rgb = load_rgb(encode(big), ImageLimits(decode_max_side=1600))
    assert max(rgb.shape[:2]) <= 1600
    assert len(analyze_photo(encode(big)).faces) == 1


def test_no_face_in_a_gradient() -> None:
    gradient = np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))
    with pytest.raises(NoFace):
        analyze_photo(encode(Image.fromarray(gradient)))


def test_decoding_a_small_file_with_huge_dimensions_stays_small() -> None:
    """A 7000x7000 16-bit PNG is ~100 KB; decoding it must not cost gigabytes (it is shrunk before conversion)."""
    script = (
        "import io, resource, numpy as np; from PIL import Image; from lookalike.engine.images import load_rgb\n"
        "im = Image.fromarray(np.tile(np.linspace(0, 65535, 7000, dtype=np.uint16), (7000, 1)))\n"
        "b = io.BytesIO(); im.save(b, 'PNG'); data = b.getvalue(); del im\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "rgb = load_rgb(data)\n"
        "print(rgb.shape, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    shape, grown_kb = run.stdout.rsplit(")", 1)
    assert shape + ")" == "(1600, 1600, 3)", run.stderr
    assert int(grown_kb) < 300 * 1024  # the 16-bit pixels alone are 98 MB; a float64 copy would be 392 MB
