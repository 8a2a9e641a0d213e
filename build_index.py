#!/usr/bin/env python3
"""Operators: build the HNSW index and the similarity calibration from assets/embeddings.*."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lookalike.index import HnswParams
from lookalike.indexing import MIN_RECALL, build_index
from lookalike.store import StoreError


def main(argv: list[str] | None = None) -> int:
    defaults = HnswParams()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=Path, default=Path(os.environ.get("LOOKALIKE_ASSETS", "assets")))
    parser.add_argument("--M", type=int, default=defaults.M, help=f"HNSW links per node (default {defaults.M})")
    parser.add_argument("--ef-construction", type=int, default=defaults.ef_construction)
    parser.add_argument("--ef-search", type=int, default=defaults.ef_search)
    parser.add_argument("--force", action="store_true", help=f"save even if recall@1 < {MIN_RECALL}")
    args = parser.parse_args(argv)
    try:
        report = build_index(args.assets, HnswParams(args.M, args.ef_construction, args.ef_search), args.force)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cal = report.calibration
    print(f"{report.photos} photos of {report.persons} persons indexed in {report.build_seconds:.2f} s")
    print(f"recall@1 of HNSW against exact search: {report.recall:.4f}")
    print(f"calibration: nearest other person at {cal.mean:.3f} ± {cal.std:.3f} (n={cal.samples})")
    if not report.saved:
        print(
            f"error: recall@1 {report.recall:.4f} < {MIN_RECALL}: not saved (raise --ef-search or --M, or --force)",
            file=sys.stderr,
        )
        return 1
    print(f"saved to {args.assets}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
