"""``python -m lookalike match [--assets DIR] [--top K] [--json] PHOTO...``: who does this photo look like?"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lookalike.analysis import PhotoAnalysis, analyze_photo
from lookalike.config import Settings, add_arguments
from lookalike.errors import PhotoError
from lookalike.faces import DetectOptions
from lookalike.matcher import Match, Matcher
from lookalike.store import StoreError

REASONS = {
    "no_face": "no face found",
    "not_an_image": "not an image",
    "too_large": "image too large",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lookalike", description="Which celebrity does a face look like?")
    commands = parser.add_subparsers(dest="command", required=True)
    match = commands.add_parser("match", help="rank the catalog's persons for every face of every photo")
    add_arguments(match, ["assets", "min_similarity", "jitters", "detect_max_side", "max_faces", "ef_search"])
    match.add_argument("--top", type=int, default=None, help="persons per face [env LOOKALIKE_TOP_K; default 5]")
    match.add_argument("--json", action="store_true", help="one JSON object per photo per line")
    match.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    args = parser.parse_args(argv)
    given = {k: v for k, v in vars(args).items() if v is not None and k in Settings.__dataclass_fields__}
    if args.top is not None:
        given["top_k"] = args.top
    settings = Settings.from_env(**given)
    try:
        matcher = Matcher(settings.assets, settings.ef_search, settings.min_similarity)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = DetectOptions(settings.detect_max_side, jitters=settings.jitters, max_faces=settings.max_faces)
    failed = False
    for path in args.photos:
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"error: {path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            failed = True
            continue
        try:
            analysis: PhotoAnalysis | None = analyze_photo(data, options)
            error = None
        except PhotoError as exc:
            analysis, error = None, exc
        found = analysis.faces if analysis is not None else []
        faces = [(f.box, matcher.match(f.descriptor, settings.top_k)) for f in found]
        print(_json_line(path, error, faces) if args.json else _text(path, error, faces), flush=True)
    return 1 if failed else 0


def _json_line(path: Path, error: PhotoError | None, faces: list[tuple[tuple[int, ...], list[Match]]]) -> str:
    return json.dumps(
        {
            "photo": str(path),
            "error": error.code if error else None,
            "faces": [
                {
                    "box": list(box),
                    "matches": [
                        {
                            "person": m.person,
                            "name": m.name,
                            "distance": round(m.distance, 4),
                            "similarity": round(m.similarity, 1),
                        }
                        for m in matches
                    ],
                }
                for box, matches in faces
            ],
        },
        ensure_ascii=False,
    )


def _text(path: Path, error: PhotoError | None, faces: list[tuple[tuple[int, ...], list[Match]]]) -> str:
    if error is not None:
        return f"{path}: {REASONS.get(error.code, error.code)} ({error})"
    lines = [f"{path}: {len(faces)} face{'s' if len(faces) > 1 else ''}"]
    for n, (box, matches) in enumerate(faces, 1):
        lines.append(f"  face {n} at {tuple(box)}:")
        width = max(len(m.name) for m in matches)
        lines += [
            f"    {rank}. {m.name:<{width}}  {m.similarity:5.1f}%  (distance {m.distance:.3f})"
            for rank, m in enumerate(matches, 1)
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
