"""A short animation morphing the user's face into the celebrity's and back, for Telegram's sendAnimation.

The classic landmark morph: dlib's 68 points on both faces, both faces aligned on the same eye line and scale, one
Delaunay triangulation of the averaged points plus the frame's border, per-triangle affine warps of both faces
towards the in-between shape, and a cross-dissolve. Runs where the faces are analysed (a bot worker, the CLI): it
decodes like every photo (``images.load_rgb``, with its limits), detects with the process's HOG detector
(``analysis.analyzer``) and leaves the encoding to animation.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import face_recognition_models
import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage
from scipy.spatial import Delaunay

from lookalike.engine import animation
from lookalike.engine.analysis import analyzer
from lookalike.engine.dlib_runtime import dlib
from lookalike.engine.images import ImageLimits, load_rgb
from lookalike.errors import NoLandmarks

SIZE = 320  # px, square: what the bot sends
EYE_DISTANCE = 0.28  # of the frame: both faces' eye centres this far apart…
EYE_LINE = 0.41  # …on a horizontal line this far down, centred
OUTSIDE_BLUR = 16  # px: Gaussian radius for what lies beyond the photo's edge…
OUTSIDE_FEATHER = 16  # px: …fading in over this many frame pixels past the edge
MAX_ZOOM = 1.15  # at most this much closer than EYE_DISTANCE: more would crop ordinary faces too tightly
MOUTH_RATIO = 1.3  # eye-to-mouth over eye-to-eye distance above which a face counts as turned (90th percentile)
DETECT_MAX_SIDE = 640  # px: both photos decoded no larger (a catalog portrait's face stays > 100 px)
LIMITS = ImageLimits(decode_max_side=DETECT_MAX_SIDE)
SMALL_SIDE = 400  # px: below this, faces may be under dlib's 80 px HOG window, so look again upsampled

MIN_AREA = 1e-3  # px²: a triangle of the in-between shape smaller than this covers no pixel and has no affine


@dataclass(frozen=True)
class AlignedFace:
    """A face resampled so that its eye centres sit on the frame's two eye points."""

    image: np.ndarray  # (size, size, 3) uint8 RGB
    points: np.ndarray  # (68, 2) float64 landmarks (x, y) in frame pixels


@cache
def landmark_predictor() -> dlib.shape_predictor:
    """dlib's 68-point model, read on the first blend and kept for the process (about a second to read, ~100 MB):
    only the blend needs it, so workers that never blend never hold it. The detector is the analyzer's."""
    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def blend_frames(
    user_jpeg: bytes, celeb_jpeg: bytes, size: int = SIZE, frames: int = animation.FRAMES
) -> list[np.ndarray]:
    """The animation's frames, RGB uint8 (size, size, 3): first the user, middle the celebrity, last ≈ the user.

    Raises NoLandmarks (naming the face), NotAnImage or TooLarge. Frames with the same morph weight (on the way
    there and back) are the same array object.
    """
    user, celeb = align_pair(user_jpeg, celeb_jpeg, size)
    return morph(user, celeb, frames)


def blend_animation(user_jpeg: bytes, celeb_jpeg: bytes, fmt: str = "mp4", size: int = SIZE) -> bytes:
    """The ~2 s animation encoded for sendAnimation as ``fmt`` (see animation.FORMATS). Raises what
    ``blend_frames`` raises, and ValueError for an unknown format before any work."""
    frames, fps = animation.timing(fmt)
    return animation.encode(blend_frames(user_jpeg, celeb_jpeg, size, frames), fmt, fps)


def align_pair(user_jpeg: bytes, celeb_jpeg: bytes, size: int = SIZE) -> tuple[AlignedFace, AlignedFace]:
    """Both faces with the same eye line and scale, the user's first (the morph's two ends).

    Where the frame would reach past either photo's edge (a tight catalog crop), both are zoomed in together, up
    to MAX_ZOOM; what is still outside is filled with a blurred reflection of the photo's edge.
    """
    faces = [_locate(user_jpeg, NoLandmarks.USER), _locate(celeb_jpeg, NoLandmarks.CELEBRITY)]
    zoom = min(MAX_ZOOM, max(_zoom_to_cover(image, points, size) for image, points in faces))
    user, celeb = (_align(image, points, size, zoom) for image, points in faces)
    return user, celeb


def _locate(jpeg: bytes, whose: str) -> tuple[Image.Image, np.ndarray]:
    """The decoded photo and its face's 68 landmarks (``whose`` names the face in NoLandmarks)."""
    image = Image.fromarray(load_rgb(jpeg, LIMITS))
    return image, landmarks(image, whose)


def _zoom_to_cover(image: Image.Image, points: np.ndarray, size: int) -> float:
    """How much to zoom in, about the eyes, for the frame to stay inside the photo (≥ 1)."""
    a, b = _eye_similarity(points, size)
    centre = complex(size / 2, size * EYE_LINE)
    eyes = (centre - b) / a  # in the photo
    reach = (np.array([0, size - 1, (size - 1) * 1j, (size - 1) * (1 + 1j)]) - centre) / a  # eyes → frame corners
    room_x = np.where(reach.real > 0, image.width - 1 - eyes.real, eyes.real)
    room_y = np.where(reach.imag > 0, image.height - 1 - eyes.imag, eyes.imag)
    with np.errstate(divide="ignore"):
        fits = min(np.min(room_x / np.abs(reach.real)), np.min(room_y / np.abs(reach.imag)))  # fraction of reach
    return 1 / fits if fits > 1e-3 else MAX_ZOOM


def _align(image: Image.Image, points: np.ndarray, size: int, zoom: float) -> AlignedFace:
    """Resample the photo into the frame, eyes on the eye points, edges reflected where the frame leaves it."""
    a, b = _eye_similarity(points, size, zoom)
    if abs(a) < 0.75:  # shrink first: bilinear sampling alone would alias a big photo
        image, scale, origin = _crop_and_shrink(image, a, b, size)
        points = points * scale - origin
        a, b = _eye_similarity(points, size, zoom)
    # ndimage wants frame → photo in (row, column) order: z = (w − b) / a
    inv = 1 / a
    matrix = np.array([[inv.real, inv.imag, 0], [-inv.imag, inv.real, 0], [0, 0, 1]])
    offset = -inv * b
    aligned = ndimage.affine_transform(
        np.asarray(image),
        matrix,
        offset=(offset.imag, offset.real, 0),
        output_shape=(size, size, 3),
        order=1,
        mode="reflect",
    )
    aligned = _soften_outside(aligned, image.size, inv, offset, abs(a))
    frame = a * (points[:, 0] + 1j * points[:, 1]) + b
    return AlignedFace(aligned, np.stack([frame.real, frame.imag], axis=1))


def morph(user: AlignedFace, celeb: AlignedFace, frames: int = animation.FRAMES) -> list[np.ndarray]:
    """Warp both faces towards the in-between shape and cross-dissolve, eased so it lingers at both ends."""
    size = user.image.shape[0]
    edge = size - 1
    border = np.array(
        [(0, 0), (edge / 2, 0), (edge, 0), (edge, edge / 2), (edge, edge), (edge / 2, edge), (0, edge), (0, edge / 2)]
    )
    ends = [(np.vstack([face.points, border]), _planes(face.image)) for face in (user, celeb)]
    # One triangulation for every frame, of the average shape: valid (no flips) for both ends in practice
    triangles = Delaunay((ends[0][0] + ends[1][0]) / 2).simplices
    phase = np.arange(frames) / frames
    there_and_back = 1 - np.abs(2 * phase - 1)  # 0 → 1 (middle) → 0
    weights = there_and_back**2 * (3 - 2 * there_and_back)  # smoothstep
    ys, xs = np.mgrid[0:size, 0:size].reshape(2, -1).astype(np.float32)
    done: dict[float, np.ndarray] = {}
    out = []
    for w in weights:
        key = round(float(w), 9)
        if key not in done:
            shape = ((1 - w) * ends[0][0] + w * ends[1][0])[triangles]
            labels = _triangle_labels(shape, size)
            mixed = np.zeros((3, size * size), np.float32)
            for weight, (points, planes) in zip((1 - w, w), ends):
                if weight > 0:  # the ends need one warp, not two
                    warped = _warp(planes, size, _affines(shape, points[triangles]), labels, xs, ys)
                    mixed += np.float32(weight) * warped
            done[key] = np.ascontiguousarray((mixed + 0.5).astype(np.uint8).T).reshape(size, size, 3)
        out.append(done[key])
    return out


def landmarks(image: Image.Image, whose: str) -> np.ndarray:
    """The 68 points (x, y) of the largest face, in ``image`` pixels (no larger than LIMITS decodes). Looks harder
    only when it must: upsampled for small images, then with the edges extended for tight crops (the detector
    wants some context)."""
    rgb = np.asarray(image)
    upsample = 1 if max(rgb.shape) < SMALL_SIDE else 0
    pad_y, pad_x = rgb.shape[0] // 4, rgb.shape[1] // 4
    padded = np.pad(rgb, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode="edge")
    attempts = [(rgb, 0, (0, 0))]
    if upsample:
        attempts.append((rgb, 1, (0, 0)))
    attempts.append((padded, upsample, (pad_x, pad_y)))
    detector = analyzer().detector
    for pixels, times, offset in attempts:
        rects = detector(pixels, times)
        if rects:
            shape = landmark_predictor()(pixels, max(rects, key=lambda r: r.area()))
            return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) - offset
    raise NoLandmarks(whose)


def _eye_similarity(points: np.ndarray, size: int, zoom: float = 1.0) -> tuple[complex, complex]:
    """The similarity transform w = a·z + b (complex pixels z = x + iy) putting the eye centres on the frame's.

    A face turned sideways has foreshortened eyes: scaled by its eye distance alone it would fill the frame, so its
    scale comes from the eye-to-mouth distance then (its eyes stay on the eye line, just closer together).
    """
    left, right = complex(*points[36:42].mean(axis=0)), complex(*points[42:48].mean(axis=0))  # left as seen
    mouth = complex(*points[48:68].mean(axis=0))
    middle = (left + right) / 2
    span = max(abs(right - left), abs(mouth - middle) / MOUTH_RATIO)
    level = abs(right - left) / (right - left)  # the rotation that makes the eye line horizontal
    a = size * EYE_DISTANCE * zoom / span * level
    return a, complex(size / 2, size * EYE_LINE) - a * middle


def _soften_outside(
    aligned: np.ndarray, photo: tuple[int, int], inv: complex, offset: complex, scale: float
) -> np.ndarray:
    """Blur what the frame shows beyond the photo's edge (reflected there): a mirrored eye or ear in the corner of
    a tight crop reads as a second face, a soft wash of the same colours does not. Fades in over a few pixels."""
    size = aligned.shape[0]
    ys, xs = np.mgrid[0:size, 0:size]
    z = inv * (xs + 1j * ys) + offset  # each frame pixel's position in the photo
    width, height = photo
    inside = np.minimum.reduce([z.real + 0.5, width - 0.5 - z.real, z.imag + 0.5, height - 0.5 - z.imag]) * scale
    if inside.min() >= 0:
        return aligned
    keep = np.clip(1 + inside / OUTSIDE_FEATHER, 0, 1)[..., None]
    blurred = np.asarray(Image.fromarray(aligned).filter(ImageFilter.GaussianBlur(OUTSIDE_BLUR)), dtype=np.float32)
    return (keep * aligned + (1 - keep) * blurred + 0.5).astype(np.uint8)


def _crop_and_shrink(image: Image.Image, a: complex, b: complex, size: int) -> tuple[Image.Image, float, np.ndarray]:
    """The part of ``image`` the frame shows, scaled down to about the frame's scale, with the mapping of the
    original's pixels onto it (times ``scale``, minus ``origin``)."""
    corners = (np.array([0, size, size * 1j, size + size * 1j]) - b) / a
    x0, x1 = max(0, int(corners.real.min()) - 2), min(image.width, int(corners.real.max()) + 3)
    y0, y1 = max(0, int(corners.imag.min()) - 2), min(image.height, int(corners.imag.max()) + 3)
    scale = abs(a) * 1.25  # a little above the frame's scale: the final bilinear step still has detail to use
    part = image.crop((x0, y0, x1, y1))
    part = part.resize(
        (max(1, round(part.width * scale)), max(1, round(part.height * scale))),
        Image.Resampling.BILINEAR,
        reducing_gap=2.0,
    )
    return part, scale, np.array([x0, y0]) * scale


def _triangle_labels(triangles: np.ndarray, size: int) -> np.ndarray:
    """Which triangle each pixel of the frame lies in, flat (N,) int32. PIL rasterises; neighbouring affines agree
    on shared edges, and drawing the largest triangles last gives edge pixels to well-conditioned ones rather than
    to slivers (a closed mouth's inner lip points coincide, so some triangles have no area at all)."""
    canvas = Image.new("I", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    areas = _areas(triangles)
    for index in np.argsort(areas):
        if areas[index] > MIN_AREA:
            draw.polygon([tuple(p) for p in triangles[index]], fill=int(index))
    return np.asarray(canvas).ravel()


def _areas(triangles: np.ndarray) -> np.ndarray:
    """Unsigned areas (T,) in px² of (T, 3, 2) triangles."""
    ab, ac = triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0]
    return np.abs(ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0]) / 2


def _affines(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Per triangle, the affine (T, 3, 2) taking [x, y, 1] of the in-between shape to the source's (x, y);
    triangles with no area (which no pixel is labelled with) get an arbitrary one."""
    homogeneous = np.concatenate([dst, np.ones((*dst.shape[:2], 1))], axis=2)
    homogeneous[_areas(dst) <= MIN_AREA] = np.eye(3)
    return np.linalg.solve(homogeneous, src).astype(np.float32)


def _planes(image: np.ndarray) -> np.ndarray:
    """(3, N) float32, one contiguous row per channel: 1-D gathers are several times faster than (N, 3) ones."""
    return np.ascontiguousarray(image.reshape(-1, 3).T, dtype=np.float32)


def _warp(
    planes: np.ndarray, size: int, affines: np.ndarray, labels: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> np.ndarray:
    """Bilinear sampling of ``planes`` (a size x size image) at each frame pixel's position under its triangle's
    affine, (3, N)."""
    sx = affines[:, 0, 0].take(labels) * xs + affines[:, 1, 0].take(labels) * ys + affines[:, 2, 0].take(labels)
    sy = affines[:, 0, 1].take(labels) * xs + affines[:, 1, 1].take(labels) * ys + affines[:, 2, 1].take(labels)
    np.clip(sx, 0, size - 1, out=sx)
    np.clip(sy, 0, size - 1, out=sy)
    x0 = np.minimum(sx.astype(np.int32), size - 2)
    y0 = np.minimum(sy.astype(np.int32), size - 2)
    fx = sx - x0.astype(np.float32)  # in [0, 1]: the result stays within [0, 255]
    fy = sy - y0.astype(np.float32)
    i = y0 * size + x0
    out = np.empty_like(planes)
    for channel, plane in enumerate(planes):
        top, right = plane.take(i), plane.take(i + 1)
        bottom, corner = plane.take(i + size), plane.take(i + size + 1)
        right -= top
        right *= fx
        top += right
        corner -= bottom
        corner *= fx
        bottom += corner
        bottom -= top
        bottom *= fy
        out[channel] = top + bottom
    return out
