"""Cost and size of the face-morph animation (lookalike/engine/blend.py) on real pairs from ../shared/faces.

    .venv/bin/python bench/blend.py              # stages and totals, MP4 and GIF
    .venv/bin/python bench/blend.py --compare    # also the encoder options the choice was made between

Each pair is a user crop (a 320 px square around the face of one person's photo, as the bot makes it) and another
person's first photo as the celebrity. Times are CPU seconds of this process (``time.process_time``: the budget is
one core per animation, and the machine is shared, so wall time is shown beside it) and medians over pairs and
repeats; the models are loaded before timing (once per worker process in the bot).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.common import median, person_photos, table
from lookalike.engine import animation, blend
from lookalike.engine.dlib_runtime import dlib
from lookalike.errors import NoLandmarks

BUDGET_S = 1.5  # CPU seconds per animation (the target)
DETECTOR = dlib.get_frontal_face_detector()


def user_crop(path: Path, size: int = 320) -> bytes | None:
    """The bot's face crop: a square 1.9 times the face box around it, black where it leaves the photo."""
    photo = Image.open(path).convert("RGB")
    scale = min(1.0, 640 / max(photo.size))
    small = photo.resize((round(photo.width * scale), round(photo.height * scale)))
    rects = DETECTOR(np.asarray(small), 1 if max(small.size) < 400 else 0)
    if not rects:
        return None
    box: dlib.rectangle = max(rects, key=lambda r: r.area())
    side = max(box.width(), box.height()) * 1.9 / scale
    cx, cy = box.center().x / scale, box.center().y / scale
    square = photo.crop((round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2)))
    out = io.BytesIO()
    square.resize((size, size), Image.Resampling.BILINEAR).save(out, format="JPEG", quality=88)
    return out.getvalue()


def pairs(count: int) -> list[tuple[str, bytes, bytes]]:
    """(label, user crop, celebrity photo): users from the first half of the people, celebrities from the second,
    every photo JPEG (what the catalog holds) with a face dlib finds."""
    people = {p: [x for x in paths if x.suffix.lower() in (".jpg", ".jpeg")] for p, paths in person_photos().items()}
    people = {p: paths for p, paths in people.items() if paths}
    names = sorted(people)
    half = len(names) // 2
    found = []
    for user, celeb in zip(names[:half], names[half:]):
        crop = next((c for c in map(user_crop, people[user][1:] or people[user]) if c), None)
        celeb_jpeg = people[celeb][0].read_bytes()
        try:
            if crop is None:
                continue
            blend.align_pair(crop, celeb_jpeg)
        except NoLandmarks:
            continue
        size = Image.open(io.BytesIO(celeb_jpeg)).size
        found.append((f"{user} → {celeb} ({size[0]}x{size[1]})", crop, celeb_jpeg))
        if len(found) == count:
            break
    return found


def cpu_and_wall(func: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = func(*args)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def stages(samples: list[tuple[str, bytes, bytes]], repeats: int) -> None:
    """Per animation: align (decode, detect, 68 points, resample), warp (morph), encode; MP4 and GIF."""
    rows: dict[str, list[float]] = {}
    sizes: dict[str, list[int]] = {"mp4": [], "gif": []}
    for _ in range(repeats):
        for _label, user_jpeg, celeb_jpeg in samples:
            (user, celeb), *align = cpu_and_wall(blend.align_pair, user_jpeg, celeb_jpeg)
            for fmt, (frames, fps) in animation.FORMATS.items():
                video, *warp = cpu_and_wall(blend.morph, user, celeb, frames)
                data, *encode = cpu_and_wall(animation.encode, video, fmt, fps)
                sizes[fmt].append(len(data))
                for stage, (cpu, wall) in (("align", align), ("warp", warp), ("encode", encode)):
                    rows.setdefault(f"{fmt} {stage} cpu", []).append(cpu)
                    rows.setdefault(f"{fmt} {stage} wall", []).append(wall)
                rows.setdefault(f"{fmt} total cpu", []).append(align[0] + warp[0] + encode[0])
                rows.setdefault(f"{fmt} total wall", []).append(align[1] + warp[1] + encode[1])
    out = []
    for fmt, (frames, fps) in animation.FORMATS.items():
        ms = {key.removeprefix(f"{fmt} "): median(v) * 1000 for key, v in rows.items() if key.startswith(fmt)}
        worst = max(rows[f"{fmt} total cpu"])
        out.append(
            [
                f"{fmt} ({frames} frames, {fps} fps)",
                *(f"{ms[f'{s} cpu']:.0f} ({ms[f'{s} wall']:.0f})" for s in ("align", "warp", "encode", "total")),
                f"{worst * 1000:.0f}",
                f"{median(sizes[fmt]) / 1000:.0f} KB",
                f"{max(sizes[fmt]) / 1000:.0f} KB",
                "met" if worst <= BUDGET_S and max(sizes[fmt]) < animation.MAX_BYTES else "**missed**",
            ]
        )
    headers = ["format", "align ms", "warp ms", "encode ms", "total ms", "worst total ms", "median size", "max size"]
    print(f"Median CPU ms per animation (wall ms), {len(samples)} pairs x {repeats}; budget {BUDGET_S} s, < 1 MB:\n")
    print(table([*headers, "target"], out) + "\n")


def compare_encoders(samples: list[tuple[str, bytes, bytes]]) -> None:
    """The options behind the choice: x264 presets through PyAV, the ffmpeg binary of imageio-ffmpeg (a pipe to a
    subprocess, so its CPU is counted from the child's rusage), and Pillow GIF palettes."""
    import resource

    videos = {}
    for label, user_jpeg, celeb_jpeg in samples:
        user, celeb = blend.align_pair(user_jpeg, celeb_jpeg)
        videos[label] = {fmt: blend.morph(user, celeb, frames) for fmt, (frames, _) in animation.FORMATS.items()}

    def cpu() -> float:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    options: dict[str, tuple[str, Callable[[list[np.ndarray]], bytes]]] = {}
    try:
        import av

        for preset in ("ultrafast", "superfast", "veryfast", "medium"):
            options[f"PyAV libx264 crf 23 {preset}"] = ("mp4", lambda f, p=preset: _pyav(av, f, p))
    except ImportError:
        print("PyAV not installed: no MP4 rows\n")
    try:
        import imageio_ffmpeg

        options["imageio-ffmpeg libx264 crf 23 veryfast"] = ("mp4", lambda f: _imageio_ffmpeg(imageio_ffmpeg, f))
    except ImportError:
        print("imageio-ffmpeg not installed: no row for it\n")
    for colours in (256, 128, 64):
        options[f"Pillow GIF {colours} colours"] = ("gif", lambda f, c=colours: _gif(f, c))
    rows = []
    for name, (fmt, encode) in options.items():
        encode(next(iter(videos.values()))[fmt])  # warm-up: codec set-up, first subprocess
        times, sizes = [], []
        for video in videos.values():
            start = cpu()
            sizes.append(len(encode(video[fmt])))
            times.append(cpu() - start)
        frames, fps = animation.FORMATS[fmt]
        rows.append(
            [
                name,
                f"{frames} @ {fps} fps",
                f"{median(times) * 1000:.0f}",
                f"{median(sizes) / 1000:.0f} KB",
                f"{max(sizes) / 1000:.0f} KB",
            ]
        )
    print("Encoders, same frames (median CPU ms incl. child processes, sizes over the pairs):\n")
    print(table(["encoder", "frames", "encode ms", "median size", "max size"], rows) + "\n")


def _pyav(av: Any, frames: list[np.ndarray], preset: str) -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(animation.FPS))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "23", "preset": preset}
        stream.codec_context.thread_count = 1
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return out.getvalue()


def _imageio_ffmpeg(imageio_ffmpeg: Any, frames: list[np.ndarray]) -> bytes:
    path = Path("/tmp/lookalike-bench-blend.mp4")
    params = ["-crf", "23", "-preset", "veryfast", "-threads", "1", "-an"]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        frames[0].shape[1::-1],
        fps=animation.FPS,
        codec="libx264",
        pix_fmt_out="yuv420p",
        quality=None,
        output_params=params,
    )
    writer.send(None)
    for frame in frames:
        writer.send(frame)
    writer.close()
    return path.read_bytes()


def _gif(frames: list[np.ndarray], colours: int) -> bytes:
    ends = Image.fromarray(np.concatenate([frames[0], frames[len(frames) // 2]], axis=0))
    palette = ends.quantize(colours, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", action="store_true", help="also time the encoder options")
    args = parser.parse_args()
    _, load_cpu, load_wall = cpu_and_wall(blend.landmark_predictor)
    print(f"Models loaded once per process: {load_cpu * 1000:.0f} ms CPU ({load_wall * 1000:.0f} ms wall)\n")
    samples = pairs(args.pairs)
    print("Pairs: " + "; ".join(label for label, _, _ in samples) + "\n")
    blend.blend_frames(*samples[0][1:])  # warm-up: first-call allocations
    stages(samples, args.repeats)
    if args.compare:
        compare_encoders(samples)


if __name__ == "__main__":
    main()
