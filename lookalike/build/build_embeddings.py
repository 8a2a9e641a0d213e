"""Catalog build: photos/ → one descriptor per usable photo, incremental by content hash, in worker processes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType

import numpy as np
from tqdm import tqdm

from lookalike.assets import DESCRIPTOR_SIZE, CatalogData, PhotoRecord, Skipped, ThumbnailWriter
from lookalike.build.clean import DUPLICATE, WRONG_PERSON, Cleaning, CleaningCache, clean
from lookalike.build.describe import DESCRIBER_VERSION, Described, QualityRules, describe_photo, thumbnail
from lookalike.build.report import write_report
from lookalike.build.scan import CatalogError, PhotoFolder, scan
from lookalike.engine.analysis import analyzer
from lookalike.engine.pool import imap_unordered


@dataclass
class BuildReport:
    computed: int = 0
    reused: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    removed: int = 0
    persons: int = 0
    photos: int = 0
    excluded: list[Skipped] = field(default_factory=list)  # left out by cleaning (wrong person, duplicate)
    suspicious: list[tuple[str, str, float, str]] = field(default_factory=list)  # (person, person, distance, why)
    cleaning_report: Path | None = None


PHOTO_TIMEOUT = 300.0  # s one catalog photo may take (jitters 10 on a huge photo is seconds, not minutes)


def _describe_file(job: tuple[Path, str, int, QualityRules]) -> Described:
    path, _, jitters, rules = job
    return describe_photo(path.read_bytes(), jitters, rules)


def _describe_all(
    jobs: list[tuple[Path, str, int, QualityRules]], workers: int, scheduler: str = ""
) -> Iterator[Described]:
    """Each job's result as it completes: on the Dask cluster at ``scheduler`` if one is given, else in the worker
    pool the bot uses too (models loaded once per worker either way).

    A photo that crashes or hangs its worker is skipped with the reason; the worker is replaced, the build goes on.
    """
    if scheduler:
        from lookalike.build.distributed import describe_on_cluster  # Dask is imported only by cluster builds

        yield from describe_on_cluster(jobs, scheduler)
        return
    for (_, digest, _, _), result in imap_unordered(_describe_file, jobs, workers, analyzer, PHOTO_TIMEOUT):
        if isinstance(result, Exception):
            yield Described(digest, reason=f"could not be analysed: {type(result).__name__}: {result}")
        else:
            yield result


def build_embeddings(
    photos_dir: Path,
    assets: Path,
    jitters: int = 10,
    workers: int = 1,
    rules: QualityRules = QualityRules(),
    progress: bool = True,
    scheduler: str = "",
    keep_outliers: bool = False,
) -> BuildReport:
    """Bring ``assets/`` up to date with ``photos_dir``: reuse unchanged photos, compute new ones, drop removed ones."""
    folder = scan(photos_dir)
    if not folder.photos:
        raise CatalogError(
            f"{photos_dir}: no photos found; add a folder per person ({photos_dir}/brad_pitt/1.jpg) "
            f"or a file per person ({photos_dir}/brad-pitt.jpg)"
        )
    try:
        old = CatalogData.load(assets)
    except Exception:
        old = CatalogData()
    reusable = _reusable(old, jitters, set(_load_excluded(assets, old)))
    files = [(pid, path) for pid, paths in folder.photos.items() for path in paths]
    fresh = {}
    with _Checkpoint(assets, f"jitters {jitters}; {DESCRIBER_VERSION}; {rules}") as checkpoint:
        digests = checkpoint.hashes([path for _, path in files], progress)
        reusable.update(checkpoint.results(set(digests) - reusable.keys()))
        todo = list(  # one job per content: a photo filed twice is described once
            {d: (path, d, jitters, rules) for (_, path), d in zip(files, digests) if d not in reusable}.values()
        )
        with (
            closing(_describe_all(todo, workers, scheduler)) as results,  # stopped at once, however the loop ends
            tqdm(total=len(todo), desc="describing", unit="photo", disable=not progress) as bar,
        ):
            for described in results:
                fresh[described.sha256] = checkpoint.add(described)
                bar.update()
    store, report = _assemble(folder, photos_dir, files, digests, reusable, fresh, jitters)
    with ThumbnailWriter(assets) as thumbs:
        _clean(store, report, folder, photos_dir, assets, thumbs, keep_outliers, progress)
        report.removed = len(({p.sha256 for p in old.photos} | {s.sha256 for s in old.skipped}) - set(digests))
        store.save(assets)
        thumbs.remove(thumbs.keys() - {p.sha256 for p in store.photos})
    return report


def _reusable(old: CatalogData, jitters: int, excluded: set[str]) -> dict[str, Described]:
    """Previous results by content hash, if made with the same jitters by the same describer.

    A photo the cleaning left out is reusable only while its descriptor is kept in EXCLUDED_FILE: cleaning judges
    it again on every build, and without the descriptor it must be described again.
    """
    if (old.jitters, old.describer) != (jitters, DESCRIBER_VERSION):
        return {}
    done = {
        p.sha256: Described(p.sha256, old.vectors[i], p.box, p.eye_distance, p.roll) for i, p in enumerate(old.photos)
    }
    judged = (WRONG_PERSON, DUPLICATE)
    done.update(
        {
            s.sha256: Described(s.sha256, reason=s.reason)
            for s in old.skipped
            if not s.reason.startswith(judged) or s.sha256 in excluded
        }
    )
    return done


CHECKPOINT_FILE = "described.sqlite3"
COMMIT_EVERY = 50  # results per commit, or
COMMIT_SECONDS = 2.0  # s between commits: a build killed outright loses at most this much work


class _Checkpoint:
    """Every result as it arrives, in ``assets/described.sqlite3``, so that a build stopped at any point (Ctrl-C, a
    kill, a lost cluster) and run again describes only the photos not stored yet.

    SQLite: one file, atomic batched commits, plain columns (never pickle). Rows are kept only for the settings
    ``key`` (jitters, describer, rules) they were made with; once the store holds them they are dropped. The
    thumbnail goes straight to ``thumbs.sqlite3``, committed with its row, not into memory. The file also
    remembers each photo file's hash by (size, mtime, inode), so an unchanged folder is stat'ed, not read.
    """

    def __init__(self, assets: Path, key: str) -> None:
        self._assets = assets
        assets.mkdir(parents=True, exist_ok=True)
        self._thumbs = ThumbnailWriter(assets)
        try:
            self._db = self._open(key)
        except sqlite3.DatabaseError:  # not a database (a truncated copy): it only saves time, start it afresh
            (assets / CHECKPOINT_FILE).unlink()
            self._db = self._open(key)
        self._pending = 0
        self._committed = time.monotonic()

    def _open(self, key: str) -> sqlite3.Connection:
        db = sqlite3.connect(self._assets / CHECKPOINT_FILE)
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS settings (key TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS described (
                sha256 TEXT PRIMARY KEY, vector BLOB, left INTEGER, top INTEGER, right INTEGER, bottom INTEGER,
                eye_distance REAL, roll REAL, reason TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS hashed (
                path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
                sha256 TEXT NOT NULL
            );
            """
        )
        if db.execute("SELECT key FROM settings").fetchall() != [(key,)]:  # other jitters, describer or rules
            with db:
                db.execute("DELETE FROM described")
                db.execute("DELETE FROM settings")
                db.execute("INSERT INTO settings VALUES (?)", (key,))
        return db

    def hashes(self, paths: list[Path], progress: bool) -> list[str]:
        """Each file's SHA-256: remembered while its size, mtime and inode stay the same, else read and hashed."""
        known = {path: rest for path, *rest in self._db.execute("SELECT * FROM hashed")}
        digests, changed = [], []
        for path in tqdm(paths, desc="hashing", unit="photo", disable=not progress):
            name, st = os.path.abspath(path), path.stat()
            seen = known.pop(name, None)
            if seen is not None and tuple(seen[:3]) == (st.st_size, st.st_mtime_ns, st.st_ino):
                digests.append(seen[3])
                continue
            digests.append(_sha256(path))
            changed.append((name, st.st_size, st.st_mtime_ns, st.st_ino, digests[-1]))
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO hashed VALUES (?, ?, ?, ?, ?)", changed)
            self._db.executemany("DELETE FROM hashed WHERE path = ?", ((name,) for name in known))  # gone
        return digests

    def results(self, wanted: set[str]) -> dict[str, Described]:
        """The stored results among ``wanted``; the others (saved in the store since, or photos gone) are dropped."""
        found, dropped = {}, []
        for sha, vector, left, top, right, bottom, eye, roll, reason in self._db.execute("SELECT * FROM described"):
            if sha not in wanted:
                dropped.append((sha,))
            elif vector is None:
                found[sha] = Described(sha, reason=reason)
            else:
                box = (left, top, right, bottom)
                found[sha] = Described(sha, np.frombuffer(vector, np.float32).copy(), box, eye, roll)
        with self._db:
            self._db.executemany("DELETE FROM described WHERE sha256 = ?", dropped)
        return found

    def add(self, d: Described) -> Described:
        """Store one result (committed in batches); returns it without the thumbnail bytes, now on disk."""
        if d.thumb_jpeg:
            self._thumbs.put_many([(d.sha256, d.thumb_jpeg)])
        vector = None if d.vector is None else np.asarray(d.vector, np.float32).tobytes()
        self._db.execute(
            "INSERT OR REPLACE INTO described VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (d.sha256, vector, *(int(x) for x in d.box), float(d.eye_distance), float(d.roll), d.reason),
        )
        self._pending += 1
        if self._pending >= COMMIT_EVERY or time.monotonic() - self._committed >= COMMIT_SECONDS:
            self._commit()
        return replace(d, thumb_jpeg=b"")

    def _commit(self) -> None:
        self._thumbs.commit()  # first: a row is never stored without its thumbnail
        self._db.commit()
        self._pending, self._committed = 0, time.monotonic()

    def __enter__(self) -> _Checkpoint:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Keep what arrived, however the describing ended (Ctrl-C, a lost cluster)."""
        self._commit()
        self._db.close()
        self._thumbs.close()


def _assemble(
    folder: PhotoFolder,
    photos_dir: Path,
    files: list[tuple[str, Path]],
    digests: list[str],
    reusable: dict[str, Described],
    fresh: dict[str, Described],
    jitters: int,
) -> tuple[CatalogData, BuildReport]:
    report = BuildReport()
    store = CatalogData(jitters=jitters, describer=DESCRIBER_VERSION)
    vectors = []
    for (pid, path), digest in zip(files, digests):
        described = fresh.get(digest) or reusable[digest]
        if digest in fresh:
            report.computed += 1
        else:
            report.reused += 1
        rel = path.relative_to(photos_dir).as_posix()
        if described.vector is None:
            skip = Skipped(rel, digest, described.reason)
            store.skipped.append(skip)
            report.skipped.append(skip)
            continue
        store.photos.append(PhotoRecord(rel, digest, pid, described.box, described.eye_distance, described.roll))
        vectors.append(described.vector)
    used = {p.person for p in store.photos}
    store.persons = {pid: person for pid, person in folder.persons.items() if pid in used}
    store.vectors = np.array(vectors, dtype=np.float32).reshape(-1, DESCRIPTOR_SIZE)
    report.persons, report.photos = len(store.persons), len(store.photos)
    return store, report


EXCLUDED_FILE = "excluded.npz"  # descriptors of the photos cleaning left out: judged again next build, not described
NEIGHBOURS_FILE = "neighbours.npz"  # each photo's and person's nearest other person last build: cleaning's cache


def _clean(
    store: CatalogData,
    report: BuildReport,
    folder: PhotoFolder,
    photos_dir: Path,
    assets: Path,
    thumbs: ThumbnailWriter,
    keep_outliers: bool,
    progress: bool,
) -> None:
    """Leave out wrong-person photos and duplicates (unless ``keep_outliers``), then write the cleaning report.

    The rules depend on the other photos, so every build judges every described photo: the ones left out last
    time come back first, with their descriptors from EXCLUDED_FILE (they sit in ``store.skipped`` meanwhile, so
    an unchanged photo is never described again).
    """
    files = [(pid, path) for pid, paths in folder.photos.items() for path in paths]
    order = {path.relative_to(photos_dir).as_posix(): (n, pid) for n, (pid, path) in enumerate(files)}
    saved = _load_excluded(assets, store)
    photos = list(zip(store.photos, store.vectors))
    unusable = []
    for skip in store.skipped:
        if skip.sha256 in saved:
            vector, box, eye, roll = saved[skip.sha256]
            photos.append((PhotoRecord(skip.path, skip.sha256, order[skip.path][1], box, eye, roll), vector))
        else:
            unusable.append(skip)
    photos.sort(key=lambda pv: order[pv[0].path][0])
    vectors = np.array([v for _, v in photos], dtype=np.float32).reshape(-1, DESCRIPTOR_SIZE)
    records = [p for p, _ in photos]
    found = Cleaning()
    if not keep_outliers:  # the neighbour searches redo only what changed since the last build (see clean.py)
        made_by = f"jitters {store.jitters}; {store.describer}"
        cache = CleaningCache.load(assets / NEIGHBOURS_FILE, made_by)
        persons, digests, labels = [p.person for p in records], [p.sha256 for p in records], [p.path for p in records]
        found = clean(persons, digests, vectors, labels, cache=cache)
        found.cache.save(assets / NEIGHBOURS_FILE, made_by)
    out = dict(found.excluded)
    kept = [i for i in range(len(photos)) if i not in out]
    _draw_missing_thumbs([records[i] for i in kept], photos_dir, assets, thumbs, progress)
    left_out = [(records[i], why) for i, why in found.excluded]
    store.photos, store.vectors = [records[i] for i in kept], vectors[kept]
    report.excluded = [Skipped(p.path, p.sha256, why) for p, why in left_out]
    report.skipped, store.skipped = unusable, unusable + report.excluded
    used = {p.person for p in store.photos}
    store.persons = {pid: person for pid, person in folder.persons.items() if pid in used}
    report.persons, report.photos, report.suspicious = len(store.persons), len(store.photos), found.suspicious
    _save_excluded(assets, store, [(records[i], vectors[i]) for i, _ in found.excluded])
    report.cleaning_report = write_report(
        assets, photos_dir, store, thumbs, left_out, found.suspicious, unusable, cleaning=not keep_outliers
    )


def _draw_missing_thumbs(
    photos: list[PhotoRecord], photos_dir: Path, assets: Path, thumbs: ThumbnailWriter, progress: bool
) -> None:
    """Portraits for kept photos without one: a shipped catalog's (descriptors only), or a photo back from being
    left out."""
    have = thumbs.keys()
    missing = [p for p in photos if p.sha256 not in have]
    for photo in tqdm(missing, desc="thumbnails", unit="photo", disable=not progress or not missing):
        thumbs.put_many([(photo.sha256, thumbnail((photos_dir / photo.path).read_bytes(), photo.box))])
    thumbs.commit()


def _load_excluded(
    assets: Path, store: CatalogData
) -> dict[str, tuple[np.ndarray, tuple[int, int, int, int], float, float]]:
    """sha256 → (descriptor, box, eye distance, roll) of the photos left out last time, if made the same way."""
    try:
        with np.load(assets / EXCLUDED_FILE, allow_pickle=False) as npz:
            if str(npz["made_by"]) != f"jitters {store.jitters}; {store.describer}":
                return {}
            columns = (npz["sha256"].tolist(), npz["vectors"], npz["boxes"], npz["eye_distance"], npz["roll"])
            return {s: (v, tuple(int(x) for x in b), float(e), float(r)) for s, v, b, e, r in zip(*columns)}
    except (OSError, ValueError, KeyError):
        return {}


def _save_excluded(assets: Path, store: CatalogData, left_out: list[tuple[PhotoRecord, np.ndarray]]) -> None:
    path = assets / EXCLUDED_FILE
    if not left_out:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(
            f,
            made_by=np.array(f"jitters {store.jitters}; {store.describer}"),
            sha256=np.array([p.sha256 for p, _ in left_out]),
            vectors=np.array([v for _, v in left_out], dtype=np.float32),
            boxes=np.array([p.box for p, _ in left_out], dtype=np.int64),
            eye_distance=np.array([p.eye_distance for p, _ in left_out]),
            roll=np.array([p.roll for p, _ in left_out]),
        )
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
