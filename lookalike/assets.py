"""The built catalog on disk: a handful of files, whatever the catalog's size.

- ``catalog.sqlite3``: the persons, the photos (row ``i`` ↔ vector row ``i``), the photos not used and why, and
  how the descriptors were made;
- ``embeddings.npz``: the descriptors (float32, N×128) and each row's person number;
- ``thumbs.sqlite3``: each photo's portrait JPEG by SHA-256 (the card's celebrity side), written while describing.

Why not JSON and a file per thumbnail: at a million photos the bot spent seconds parsing a JSON catalog into a
million objects, over its memory budget, and the thumbnails were a million files in one folder (bench/RESULTS.md,
"Assets at a million photos"). Serving reads only what a match shows (:class:`CatalogReader`); builds rewrite
the catalog in seconds and touch only new thumbnails. Safe formats only (SQLite rows,
``np.load(allow_pickle=False)``): a file fed in never runs code. Photos are keyed by the SHA-256 of their bytes so
that a rebuild recomputes only what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lookalike.files import atomic_write, read_npz, replacing

CATALOG_FILE = "catalog.sqlite3"
VECTORS_FILE = "embeddings.npz"
THUMBS_FILE = "thumbs.sqlite3"
FORMAT_VERSION = 2
DESCRIPTOR_SIZE = 128  # dlib's ResNet face descriptor: float32 values per photo


@dataclass(frozen=True)
class Person:
    """A celebrity: ``id`` is the normalised folder/file name, the rest is for display and links."""

    id: str
    name: str
    alias: str | None = None
    role: str | None = None
    n_movies: int | None = None
    url: str | None = None  # a page about the person; without one, the bot's link template and the alias make it
    sex: str | None = None  # "F" or "M" (SEXES): from catalog.json, else estimated from the photos at build time


SEXES = ("F", "M")  # a person's sex as stored; serving keeps it as a code per person (sex_code)


def sex_code(sex: str | None) -> int:
    """1 + the index of ``sex`` in SEXES; 0 for unknown: one byte a person or a row."""
    return SEXES.index(sex) + 1 if sex in SEXES else 0


class AssetsError(RuntimeError):
    """The assets folder is missing or inconsistent; the message says which file and what to run."""


@dataclass(frozen=True)
class PhotoRecord:
    """A catalog photo that produced a descriptor (row ``i`` of the vectors for ``photos[i]``)."""

    path: str  # relative to the photos folder
    sha256: str  # of the file's bytes; also the key of its thumbnail
    person: str
    box: tuple[int, int, int, int]
    eye_distance: float
    roll: float


@dataclass(frozen=True)
class Skipped:
    """A catalog photo that was not used, and why (kept so an unchanged bad photo is not re-analysed)."""

    path: str
    sha256: str
    reason: str


_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE persons (number INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, alias TEXT,
                      role TEXT, n_movies INTEGER, url TEXT, sex TEXT);
CREATE TABLE photos (row INTEGER PRIMARY KEY, path TEXT NOT NULL, sha256 TEXT NOT NULL, person TEXT NOT NULL,
                     left INTEGER, top INTEGER, right INTEGER, bottom INTEGER, eye_distance REAL, roll REAL);
CREATE TABLE skipped (path TEXT NOT NULL, sha256 TEXT NOT NULL, reason TEXT NOT NULL);
"""


@dataclass
class CatalogData:
    """The whole catalog in memory, for builds and tests; the bot reads through :class:`CatalogReader` instead."""

    persons: dict[str, Person] = field(default_factory=dict)
    photos: list[PhotoRecord] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, DESCRIPTOR_SIZE), np.float32))
    skipped: list[Skipped] = field(default_factory=list)
    jitters: int = 0
    describer: str = ""  # the code and models that made the descriptors: other ones mean describing again

    def save(self, assets: Path) -> None:
        """Write the vectors, then the catalog, each atomically (temp file + rename). Files already holding this
        exact content are left be (a shipped catalog's files stay byte for byte as committed)."""
        assets.mkdir(parents=True, exist_ok=True)
        fingerprint = self.fingerprint()
        content = self._content_digest(fingerprint)
        if _read_meta(assets / CATALOG_FILE).get("content") == content and _npz_fingerprint(assets) == fingerprint:
            return
        vectors = np.ascontiguousarray(self.vectors, dtype=np.float32).reshape(-1, DESCRIPTOR_SIZE)
        atomic_write(
            assets / VECTORS_FILE,
            lambda f: np.savez(f, vectors=vectors, person_rows=self.person_rows(), fingerprint=np.array(fingerprint)),
        )
        with replacing(assets / CATALOG_FILE) as tmp, contextlib.closing(sqlite3.connect(tmp)) as db:
            db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + _SCHEMA)
            meta = {
                "version": FORMAT_VERSION,
                "jitters": self.jitters,
                "describer": self.describer,
                "fingerprint": fingerprint,
                "content": content,
                "persons": len(self.persons),
                "photos": len(self.photos),
            }
            db.executemany("INSERT INTO meta VALUES (?, ?)", ((k, str(v)) for k, v in meta.items()))
            db.executemany(
                "INSERT INTO persons VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (n, p.id, p.name, p.alias, p.role, p.n_movies, p.url, p.sex)
                    for n, p in enumerate(self.persons.values())
                ),
            )
            db.executemany(
                "INSERT INTO photos VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (i, p.path, p.sha256, p.person, *(int(x) for x in p.box), float(p.eye_distance), float(p.roll))
                    for i, p in enumerate(self.photos)
                ),
            )
            db.executemany("INSERT INTO skipped VALUES (?, ?, ?)", ((s.path, s.sha256, s.reason) for s in self.skipped))
            db.commit()

    def _content_digest(self, fingerprint: str) -> str:
        digest = hashlib.sha256(f"{FORMAT_VERSION}\t{self.jitters}\t{self.describer}\t{fingerprint}\n".encode())
        for person in self.persons.values():
            digest.update(json.dumps(asdict(person), ensure_ascii=False).encode())
        for p in self.photos:
            digest.update(f"{p.path}\t{p.box}\t{p.eye_distance!r}\t{p.roll!r}\n".encode())
        for s in self.skipped:
            digest.update(f"{s.path}\t{s.sha256}\t{s.reason}\n".encode())
        return digest.hexdigest()

    @classmethod
    def load(cls, assets: Path) -> CatalogData:
        """Everything, as objects (a catalog made before persons had a sex loads with ``sex`` None, so that the
        next build reuses its descriptors and fills the sexes in)."""
        reader = CatalogReader(assets)
        try:
            with reader.lock:
                persons = {
                    row[1]: Person(*row[1:]) for row in reader.db.execute("SELECT * FROM persons ORDER BY number")
                }
                photos = [
                    PhotoRecord(path, sha, person, (left, top, right, bottom), eye, roll)
                    for _, path, sha, person, left, top, right, bottom, eye, roll in reader.db.execute(
                        "SELECT * FROM photos ORDER BY row"
                    )
                ]
                skipped = [Skipped(*row) for row in reader.db.execute("SELECT path, sha256, reason FROM skipped")]
            return cls(persons, photos, reader.vectors(), skipped, reader.jitters, reader.describer)
        except sqlite3.Error as exc:
            raise AssetsError(f"{assets / CATALOG_FILE}: malformed ({exc}); rebuild") from exc
        finally:
            reader.close()

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


class CatalogReader:
    """What serving needs, without a Python object per photo: each row's person number in memory (4 bytes a
    photo), the rest read from ``catalog.sqlite3`` for the few rows a match shows. Safe to share between threads."""

    def __init__(self, assets: Path) -> None:
        self.assets = assets
        path = assets / CATALOG_FILE
        if not path.exists():
            raise AssetsError(f"{assets}: no embeddings here; run build_embeddings.py --assets {assets} first")
        rebuild = rebuild_hint(assets)
        meta = _read_meta(path)
        if meta.get("version") != str(FORMAT_VERSION):
            raise AssetsError(f"{path}: format version {meta.get('version')}, expected {FORMAT_VERSION}; {rebuild}")
        try:
            self.jitters, self.describer = int(meta["jitters"]), meta["describer"]
            self.fingerprint = meta["fingerprint"]
            self.n_persons, self.n_photos = int(meta["persons"]), int(meta["photos"])
        except (ValueError, KeyError) as exc:
            raise AssetsError(f"{path}: damaged ({type(exc).__name__}: {exc}); {rebuild}") from None
        try:
            npz = read_npz(assets / VECTORS_FILE, "person_rows", "fingerprint")  # a zip: not the vectors
        except ValueError as exc:
            raise AssetsError(f"{exc}; {rebuild}") from None
        self.person_of, saved = np.asarray(npz["person_rows"], dtype=np.int32).ravel(), str(npz["fingerprint"])
        if saved != self.fingerprint or len(self.person_of) != self.n_photos:
            raise AssetsError(f"{assets / VECTORS_FILE} does not belong to {path} (an interrupted copy?); {rebuild}")
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.lock = threading.Lock()
        self.has_thumbs = (assets / THUMBS_FILE).exists()
        if self.has_thumbs:  # one connection for rows and portraits, opened once: a card reads one of each
            try:
                self.db.execute("ATTACH DATABASE ? AS t", (f"file:{assets / THUMBS_FILE}?mode=ro",))
                self.db.execute("SELECT count(*) FROM t.thumbs LIMIT 1").fetchone()
            except sqlite3.Error as exc:
                self.db.close()
                raise AssetsError(f"{assets / THUMBS_FILE}: damaged ({exc}); {rebuild}") from None

    def person_sexes(self) -> np.ndarray:
        """Each person's ``sex_code`` by person number (uint8): one byte a person, what serving filters matches by."""
        try:
            with self.lock:
                rows = self.db.execute("SELECT sex FROM persons ORDER BY number").fetchall()
        except sqlite3.OperationalError as exc:  # no such column: made before persons had a sex
            raise AssetsError(
                f"{self.assets / CATALOG_FILE}: made by an older version ({exc}); {rebuild_hint(self.assets)} "
                "(nothing is described again)"
            ) from None
        codes = np.array([sex_code(sex) for (sex,) in rows], dtype=np.uint8)
        if len(codes) != self.n_persons:
            raise AssetsError(
                f"{self.assets / CATALOG_FILE}: {len(codes)} persons, meta says {self.n_persons}; "
                f"{rebuild_hint(self.assets)}"
            )
        return codes

    def vectors(self) -> np.ndarray:
        try:
            vectors = np.asarray(read_npz(self.assets / VECTORS_FILE, "vectors")["vectors"], dtype=np.float32)
        except ValueError as exc:
            raise AssetsError(f"{exc}; {rebuild_hint(self.assets)}") from None
        if vectors.shape != (self.n_photos, DESCRIPTOR_SIZE):
            raise AssetsError(
                f"{self.assets / VECTORS_FILE}: vectors of shape {vectors.shape}, expected "
                f"({self.n_photos}, {DESCRIPTOR_SIZE}); {rebuild_hint(self.assets)}"
            )
        return vectors

    def photo(self, row: int) -> PhotoRecord:
        with self.lock:
            found = self.db.execute("SELECT * FROM photos WHERE row = ?", (int(row),)).fetchone()
        _, path, sha, person, left, top, right, bottom, eye, roll = found
        return PhotoRecord(path, sha, person, (left, top, right, bottom), eye, roll)

    def person(self, pid: str) -> Person | None:
        with self.lock:
            found = self.db.execute("SELECT * FROM persons WHERE id = ?", (pid,)).fetchone()
        return Person(*found[1:]) if found else None

    def thumb(self, sha256: str) -> ThumbnailRef:
        return ThumbnailRef(self, sha256)

    def thumb_jpeg(self, sha256: str) -> bytes:
        """The portrait of the photo with this hash; FileNotFoundError if the build has none for it."""
        try:
            with self.lock:
                found = self.db.execute("SELECT jpeg FROM t.thumbs WHERE sha256 = ?", (sha256,)).fetchone()
        except sqlite3.Error as exc:
            raise OSError(f"{self.assets / THUMBS_FILE}: {exc}") from exc
        if found is None:
            raise FileNotFoundError(f"{self.assets / THUMBS_FILE}: no thumbnail for {sha256}")
        return found[0]

    def check_thumbs(self) -> None:
        """Raise AssetsError if any photo's thumbnail (the card's celebrity side) is missing: refuse to start rather
        than fail on every match. One lookup in the thumbnails' index per photo: a few seconds at a million
        photos, while the workers load their models."""
        missing, example = self.n_photos, "all of them"
        if self.has_thumbs:
            query = "FROM photos p WHERE NOT EXISTS (SELECT 1 FROM t.thumbs x WHERE x.sha256 = p.sha256)"
            with self.lock:
                try:
                    missing = self.db.execute(f"SELECT count(*) {query}").fetchone()[0]
                    if missing:
                        example = self.db.execute(f"SELECT path {query} LIMIT 1").fetchone()[0]
                except sqlite3.Error as exc:
                    example = f"{self.assets / THUMBS_FILE}: {exc}"
        if missing:
            raise AssetsError(
                f"{self.assets / THUMBS_FILE}: {missing} of {self.n_photos} thumbnails missing (e.g. {example}); "
                f"run build_embeddings.py --assets {self.assets} to draw them again"
            )

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True)
class ThumbnailRef:
    """A catalog photo's portrait, read when a card is drawn (matches stay small in the bot's result cache)."""

    catalog: CatalogReader
    sha256: str

    def read_bytes(self) -> bytes:
        return self.catalog.thumb_jpeg(self.sha256)


class ThumbnailWriter:
    """``thumbs.sqlite3`` for writing: portraits arrive while describing and leave when their photo does."""

    def __init__(self, assets: Path) -> None:
        assets.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(assets / THUMBS_FILE)
        self.db.execute("CREATE TABLE IF NOT EXISTS thumbs (sha256 TEXT PRIMARY KEY, jpeg BLOB NOT NULL)")

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO thumbs VALUES (?, ?)", items)

    def keys(self) -> set[str]:
        return {sha for (sha,) in self.db.execute("SELECT sha256 FROM thumbs")}

    def get(self, sha256: str) -> bytes | None:
        found = self.db.execute("SELECT jpeg FROM thumbs WHERE sha256 = ?", (sha256,)).fetchone()
        return found[0] if found else None

    def remove(self, shas: Iterable[str]) -> None:
        self.db.executemany("DELETE FROM thumbs WHERE sha256 = ?", ((s,) for s in shas))

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.commit()
        self.db.close()

    def __enter__(self) -> ThumbnailWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_meta(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return dict(db.execute("SELECT key, value FROM meta"))
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise AssetsError(f"{path}: not a catalog ({exc}); {rebuild_hint(path.parent)}") from None


def rebuild_hint(assets: Path) -> str:
    """What an operator runs to make a damaged assets folder whole again (every damage message ends with it)."""
    return f"run build_embeddings.py --assets {assets}, then build_index.py --assets {assets}"


def _npz_fingerprint(assets: Path) -> str | None:
    try:
        return str(read_npz(assets / VECTORS_FILE, "fingerprint")["fingerprint"])
    except ValueError:
        return None
