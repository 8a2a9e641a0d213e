"""``assets/excluded.npz``: the descriptors of the photos cleaning left out.

Cleaning judges every photo again on every build (the rules depend on the other photos), so a photo left out today
may come back tomorrow; its descriptor is kept here rather than in the catalog, which holds only the photos kept.
Without it the photo would have to be described again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.assets import PhotoRecord
from lookalike.build.npz import load_npz, save_npz

EXCLUDED_FILE = "excluded.npz"
_COLUMNS = ("sha256", "vectors", "boxes", "eye_distance", "roll")

Box = tuple[int, int, int, int]


def load_excluded(assets: Path, made_by: str) -> dict[str, tuple[np.ndarray, Box, float, float]]:
    """sha256 → (descriptor, box, eye distance, roll) of the photos left out last time, if made by ``made_by``."""
    arrays = load_npz(assets / EXCLUDED_FILE, made_by, *_COLUMNS)
    if arrays is None:
        return {}
    shas, vectors, boxes, eyes, rolls = (arrays[name] for name in _COLUMNS)
    return {
        s: (v, tuple(int(x) for x in b), float(e), float(r))
        for s, v, b, e, r in zip(shas.tolist(), vectors, boxes, eyes, rolls)
    }


def save_excluded(assets: Path, made_by: str, left_out: list[tuple[PhotoRecord, np.ndarray]]) -> None:
    """Keep the descriptors of the photos ``left_out`` (none: the file is removed)."""
    path = assets / EXCLUDED_FILE
    if not left_out:
        path.unlink(missing_ok=True)
        return
    save_npz(
        path,
        made_by,
        {
            "sha256": np.array([p.sha256 for p, _ in left_out]),
            "vectors": np.array([v for _, v in left_out], dtype=np.float32),
            "boxes": np.array([p.box for p, _ in left_out], dtype=np.int64),
            "eye_distance": np.array([p.eye_distance for p, _ in left_out]),
            "roll": np.array([p.roll for p, _ in left_out]),
        },
    )
