"""The npz files a build leaves for the next one (``neighbours.npz``, ``excluded.npz``): written atomically, read
without pickle, and used only if ``made_by`` matches, since descriptors made otherwise (other jitters, another
describer) are not comparable. A missing, damaged or foreign file only costs the work it would have spared."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lookalike.files import atomic_write, read_npz


def save_npz(path: Path, made_by: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` and ``made_by`` to ``path``: the old file or the new one, never half of one."""
    atomic_write(path, lambda out: np.savez(out, made_by=np.str_(made_by), **arrays))


def load_npz(path: Path, made_by: str, *names: str) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` saved at ``path`` with this ``made_by``; None if missing, damaged or made otherwise."""
    try:
        arrays = read_npz(path, "made_by", *names)
    except ValueError:
        return None
    return arrays if str(arrays.pop("made_by")) == made_by else None
