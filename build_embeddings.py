#!/usr/bin/env python3
"""Operators: turn photos/ into assets/embeddings.* (incremental). Then run build_index.py."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lookalike.catalog import CatalogError
from lookalike.embed import build_embeddings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=Path, default=Path(os.environ.get("LOOKALIKE_PHOTOS", "photos")))
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("LOOKALIKE_ASSETS", "assets")))
    parser.add_argument("--jitters", type=int, default=10, help="descriptor jitters per catalog photo (default 10)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        report = build_embeddings(args.photos, args.assets, args.jitters, args.workers, progress=not args.quiet)
    except (FileNotFoundError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for skip in report.skipped:
        print(f"skipped {args.photos / skip.path}: {skip.reason}")
    print(
        f"{report.persons} persons, {report.photos} photos in {args.assets}: {report.computed} computed, "
        f"{report.reused} unchanged, {len(report.skipped)} skipped, {report.removed} removed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
