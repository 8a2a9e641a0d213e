"""The built catalog on disk: descriptors in ``embeddings.npz``, everything else in ``embeddings.json``.

Safe formats only (``np.load(allow_pickle=False)`` and JSON): a file fed in can never execute code.
Photos are keyed by the SHA-256 of their bytes so that a rebuild recomputes only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

VECTORS_FILE = "embeddings.npz"
META_FILE = "embeddings.json"
THUMBS_DIR = "thumbs"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Person:
    """A celebrity: ``id`` is the normalised folder/file name, the rest is for display and links."""

    id: str
    name: str
    alias: str | None = None
    role: str | None = None
    n_movies: int | None = None
    url: str | None = None  # a page about the person; without one, the bot's link template and the alias make it


class StoreError(RuntimeError):
    """The assets folder is missing or inconsistent; the message says which file and what to run."""


@dataclass(frozen=True)
class PhotoRecord:
    """A catalog photo that produced a descriptor (row ``i`` of the vectors for ``photos[i]``)."""

    path: str  # relative to the photos folder
    sha256: str
    person: str
    box: tuple[int, int, int, int]
    eye_distance: float
    roll: float
    thumb: str  # relative to the assets folder: the face crop the bot shows beside the user's face


@dataclass(frozen=True)
class Skipped:
    """A catalog photo that was not used, and why (kept so an unchanged bad photo is not re-analysed)."""

    path: str
    sha256: str
    reason: str


@dataclass
class Store:
    persons: dict[str, Person] = field(default_factory=dict)
    photos: list[PhotoRecord] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 128), np.float32))
    skipped: list[Skipped] = field(default_factory=list)
    jitters: int = 0
    describer: str = ""  # the code and models that made the descriptors: other ones mean describing again

    def save(self, assets: Path) -> None:
        """Write both files atomically (temp file + rename), vectors first; files already holding this are left be
        (a shipped catalog's files stay byte for byte as committed)."""
        assets.mkdir(parents=True, exist_ok=True)
        meta = {
            "version": FORMAT_VERSION,
            "jitters": self.jitters,
            "describer": self.describer,
            "persons": [asdict(p) for p in self.persons.values()],
            "photos": [asdict(p) for p in self.photos],
            "skipped": [asdict(s) for s in self.skipped],
        }
        text = json.dumps(meta, ensure_ascii=False, indent=1)
        if self._saved_in(assets, text):
            return
        _atomic(assets / VECTORS_FILE, lambda f: np.savez(f, vectors=self.vectors.astype(np.float32)))
        _atomic(assets / META_FILE, lambda f: f.write(text.encode("utf-8")))

    def _saved_in(self, assets: Path, meta_text: str) -> bool:
        try:
            if (assets / META_FILE).read_text(encoding="utf-8") != meta_text:
                return False
            with np.load(assets / VECTORS_FILE, allow_pickle=False) as npz:
                return np.array_equal(npz["vectors"], self.vectors.astype(np.float32))
        except (OSError, ValueError, KeyError):
            return False

    @classmethod
    def load(cls, assets: Path) -> Store:
        meta_path, vec_path = assets / META_FILE, assets / VECTORS_FILE
        if not meta_path.exists() or not vec_path.exists():
            raise StoreError(f"{assets}: no embeddings here; run build_embeddings.py --assets {assets} first")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            with np.load(vec_path, allow_pickle=False) as npz:
                vectors = np.asarray(npz["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(f"{assets}: cannot read embeddings: {exc}") from exc
        if not isinstance(meta, dict) or meta.get("version") != FORMAT_VERSION:
            version = meta.get("version") if isinstance(meta, dict) else None
            raise StoreError(f"{meta_path}: format version {version}, expected {FORMAT_VERSION}; rebuild")
        try:
            store = cls(
                persons={p["id"]: Person(**p) for p in meta["persons"]},
                photos=[PhotoRecord(**{**p, "box": tuple(p["box"])}) for p in meta["photos"]],
                vectors=vectors,
                skipped=[Skipped(**s) for s in meta["skipped"]],
                jitters=int(meta["jitters"]),
                describer=str(meta.get("describer", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:  # a hand-edited or truncated file
            raise StoreError(f"{meta_path}: malformed ({type(exc).__name__}: {exc}); rebuild") from exc
        if vectors.shape != (len(store.photos), 128):
            raise StoreError(f"{vec_path}: {vectors.shape[0]} vectors for {len(store.photos)} photos; rebuild")
        return store

    def check_thumbs(self, assets: Path) -> None:
        """Raise StoreError if any photo's thumbnail (the card's celebrity side) is missing: refuse to start rather
        than fail on every match. One directory listing, not a million stat calls."""
        try:
            present = {entry.name for entry in os.scandir(assets / THUMBS_DIR)}
        except OSError:
            present = set()
        missing = [p.thumb for p in self.photos if Path(p.thumb).name not in present]
        if missing:
            raise StoreError(
                f"{assets}: {len(missing)} of {len(self.photos)} thumbnails missing (e.g. {missing[0]}); "
                f"run build_embeddings.py --assets {assets} to draw them again"
            )

    def fingerprint(self) -> str:
        """Identifies these exact embeddings: an index built from others must not be served with them."""
        digest = hashlib.sha256(np.ascontiguousarray(self.vectors, dtype=np.float32).tobytes())
        for photo in self.photos:
            digest.update(f"{photo.person}\t{photo.sha256}\n".encode())
        return digest.hexdigest()

    def person_rows(self) -> np.ndarray:
        """For each vector row, the index of its person in ``list(self.persons)``."""
        order = {pid: i for i, pid in enumerate(self.persons)}
        return np.array([order[p.person] for p in self.photos], dtype=np.int32)


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)
