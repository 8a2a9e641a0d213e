"""The one front door: ``lookalike {bot,build,index,match,blend}`` (or ``python -m lookalike``); bot.py,
build_embeddings.py and build_index.py are the same commands under the names operators know.

Each command parses its flags into one ``Settings`` (lookalike/settings.py), calls the package and turns its
errors into one line on stderr and an exit code: 0 done, 1 failed, 2 cannot start (bad settings or assets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lookalike.assets import AssetsError
from lookalike.build.build_index import MIN_RECALL, build_index
from lookalike.build.scan import CatalogError
from lookalike.engine.animation import FORMATS
from lookalike.engine.images import ImageLimits
from lookalike.engine.jobs import blend_animation
from lookalike.engine.lookup import FaceMatches, Lookup
from lookalike.engine.matcher import Matcher
from lookalike.errors import ClusterError, PhotoError
from lookalike.logs import setup_logging
from lookalike.settings import Settings, add_arguments, from_namespace

log = logging.getLogger(__name__)

AMONG = {"F": "women", "M": "men", None: "anyone"}
REASONS = {
    "no_face": "no face found",
    "not_an_image": "not an image",
    "too_large": "image too large",
    "no_landmarks": "no face landmarks to blend",
}


def run_bot(settings: Settings, args: argparse.Namespace) -> int:
    """Serve Telegram until SIGTERM/SIGINT (long polling, or a webhook with ``--webhook-url``)."""
    from lookalike.telegram.app import serve  # only the bot needs PTB
    from lookalike.telegram.polling import PollingStopped
    from lookalike.telegram.sqlite import StorageError

    if not settings.token:
        log.error("no bot token: set TELEGRAM_TOKEN (from @BotFather) or pass --token")
        return 2
    os.environ.pop("TELEGRAM_TOKEN", None)  # worker processes inherit the environment and never talk to Telegram

    async def main() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    try:
        asyncio.run(main())
    except (AssetsError, StorageError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    except PollingStopped as exc:
        log.error("stopped: %s", exc)
        return 1
    except Exception:  # logged through the redacting formatter: PTB's InvalidToken message contains the token
        log.exception("stopped on an unexpected error")
        return 1
    return 0


def run_build(settings: Settings, args: argparse.Namespace) -> int:
    """photos/ → the built catalog in assets/ (incremental, cleaned, with a visual report); then run ``index``."""
    from lookalike.build.build_embeddings import build_embeddings  # loads dlib: bot.py's process never does

    try:
        report = build_embeddings(
            settings.photos,
            settings.assets,
            settings.catalog_jitters,
            settings.workers,
            progress=not settings.quiet,
            scheduler=settings.scheduler,
            keep_outliers=settings.keep_outliers,
        )
    except (FileNotFoundError, CatalogError, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for skip in report.skipped:
        print(f"skipped {settings.photos / skip.path}: {skip.reason}")
    for left in report.excluded:
        print(f"left out {settings.photos / left.path}: {left.reason}")
    for first, second, _, reason in report.suspicious:
        print(f"check {first} / {second}: {reason}")
    for doubt in report.sex_doubts:
        print(f"check {doubt.person}'s sex: {doubt.reason}")
    print(
        f"{report.persons} persons, {report.photos} photos in {settings.assets}: {report.computed} computed, "
        f"{report.reused} unchanged, {len(report.skipped)} skipped, {len(report.excluded)} left out by cleaning, "
        f"{report.removed} removed"
    )
    if report.cleaning_report is not None:
        print(f"cleaning report: {report.cleaning_report}")
    return 0


def run_index(settings: Settings, args: argparse.Namespace) -> int:
    """The built catalog → HNSW index checked against exact search, and the similarity calibration."""
    try:
        report = build_index(settings.assets, settings.hnsw, settings.force)
    except AssetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cal = report.calibration
    print(f"{report.photos} photos of {report.persons} persons indexed in {report.build_seconds:.2f} s")
    print(f"recall@1 of HNSW against exact search: {report.recall:.4f}")
    print(
        f"calibration: {cal.samples} reference strangers' best match at {cal.mean:.3f} ± {cal.std:.3f} "
        f"(fitted in {report.calibration_seconds:.1f} s)"
    )
    if not report.saved:
        print(f"error: recall@1 {report.recall:.4f} < {MIN_RECALL}: not saved", file=sys.stderr)
        print("raise --ef-search or --hnsw-m, or save anyway with --force", file=sys.stderr)
        return 1
    print(f"saved to {settings.assets}")
    return 0


def run_match(settings: Settings, args: argparse.Namespace) -> int:
    """Rank the catalog's persons for every face of every photo: text, or one JSON object per photo per line."""
    try:
        matcher = Matcher(settings.assets, settings.ef_search, settings.min_similarity)
    except AssetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    lookup = Lookup(matcher, settings.detect, ImageLimits(), settings.top_k)
    failed = False
    for path in args.inputs:
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"error: {path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            failed = True
            continue
        try:
            faces, error = lookup.find(data, settings.match_sex), None
        except PhotoError as exc:
            faces, error = [], exc
        print(_json_line(path, error, faces) if args.json else _text(path, error, faces), flush=True)
    return 1 if failed else 0


def run_blend(settings: Settings, args: argparse.Namespace) -> int:
    """Animate the photo's largest face turning into its best match (MP4, or GIF when --out ends in .gif)."""
    fmt = args.out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        print(f"error: {args.out}: the animation is written as .mp4 or .gif", file=sys.stderr)
        return 2
    try:
        lookup = Lookup(
            Matcher(settings.assets, settings.ef_search, settings.min_similarity), settings.detect, ImageLimits(), 1
        )
        found = lookup.find(args.photo.read_bytes(), settings.match_sex)[0]
        best = found.matches[0]
        animation = blend_animation(found.face.crop_jpeg, best.thumb.read_bytes(), fmt)
        args.out.write_bytes(animation)
    except AssetsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PhotoError as exc:
        print(f"error: {args.photo}: {REASONS.get(exc.code, exc.code)} ({exc})", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: you → {best.name} ({best.similarity:.0f}%), {len(animation) / 1024:.0f} KB")
    return 0


def _json_line(path: Path, error: PhotoError | None, faces: list[FaceMatches]) -> str:
    return json.dumps(
        {
            "photo": str(path),
            "error": error.code if error else None,
            "faces": [
                {
                    "box": list(f.face.box),
                    "female": round(f.female, 3),
                    "match_sex": f.sex,
                    "matches": [
                        {
                            "person": m.person,
                            "name": m.name,
                            "role": m.role,
                            "url": m.url,
                            "distance": round(m.distance, 4),
                            "similarity": round(m.similarity, 1),
                            "sex": m.sex,
                        }
                        for m in f.matches
                    ],
                }
                for f in faces
            ],
        },
        ensure_ascii=False,
    )


def _text(path: Path, error: PhotoError | None, faces: list[FaceMatches]) -> str:
    if error is not None:
        return f"{path}: {REASONS.get(error.code, error.code)} ({error})"
    lines = [f"{path}: {len(faces)} face{'s' if len(faces) > 1 else ''}"]
    for n, found in enumerate(faces, 1):
        lines.append(f"  face {n} at {tuple(found.face.box)}, matched with {AMONG[found.sex]}:")
        width = max(len(m.name) for m in found.matches)
        lines += [
            f"    {rank}. {m.name:<{width}}  {m.similarity:5.1f}%  (distance {m.distance:.3f})"
            + (f"  {m.role}" if m.role else "")
            for rank, m in enumerate(found.matches, 1)
        ]
    return "\n".join(lines)


COMMANDS: dict[str, tuple[Callable[[Settings, argparse.Namespace], int], str]] = {
    "bot": (run_bot, "serve Telegram: long polling, or a webhook with --webhook-url"),
    "build": (run_build, "describe the catalog's photos (photos/ → assets/, incremental)"),
    "index": (run_index, "build the HNSW index and the similarity calibration from the embeddings"),
    "match": (run_match, "who does each face in these photos look like?"),
    "blend": (run_blend, "animate a face turning into its best match"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m lookalike", description="Which celebrity does a face look like?")
    commands = top.add_subparsers(dest="command", required=True)
    for name, (func, help) in COMMANDS.items():
        sub = commands.add_parser(name, help=help, description=func.__doc__)
        add_arguments(sub, name)
        if name == "match":
            sub.add_argument("--json", action="store_true", help="one JSON object per photo per line")
            sub.add_argument("inputs", nargs="+", type=Path, metavar="PHOTO")
        if name == "blend":
            sub.add_argument("photo", type=Path, metavar="SELFIE")
            sub.add_argument("--out", type=Path, default=Path("blend.mp4"), help="where to write it (.mp4 or .gif)")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = from_namespace(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    secret_part = settings.token.partition(":")[2]
    setup_logging(settings.log_level, settings.log_format == "json", [settings.token, secret_part])
    chosen = settings.with_default_catalog()
    if chosen is not settings and args.command != "index":
        log.info(
            "photos/ is empty: using the default catalog in %s (put your own photos in photos/ to use them)",
            chosen.photos,
        )
    return COMMANDS[args.command][0](chosen, args)
