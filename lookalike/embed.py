"""Catalog build: photos/ → one descriptor per usable photo, incremental by content hash, in worker processes."""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lookalike.analysis import analyzer, face_crop_jpeg
from lookalike.catalog import Catalog, CatalogError, scan
from lookalike.errors import PhotoError
from lookalike.faces import DetectOptions
from lookalike.images import ImageLimits, load_rgb
from lookalike.store import THUMBS_DIR, PhotoRecord, Skipped, Store


@dataclass(frozen=True)
class QualityRules:
    """What makes a catalog photo usable. A second face is tolerated only if much smaller than the main one."""

    min_eye_distance: float = 16.0  # px; below this the 150 px chip is an upscaled blur
    max_roll: float = 30.0  # degrees; beyond this the 5-point alignment is unreliable
    dominance: float = 0.25  # other faces must be under this fraction of the main face's area


@dataclass(frozen=True)
class Described:
    """What a worker sends back for one catalog photo: a descriptor and thumbnail, or the reason it was skipped."""

    sha256: str
    vector: np.ndarray | None = None
    box: tuple[int, int, int, int] = (0, 0, 0, 0)
    eye_distance: float = 0.0
    roll: float = 0.0
    thumb_jpeg: bytes = b""
    reason: str = ""


@dataclass
class BuildReport:
    computed: int = 0
    reused: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    removed: int = 0
    persons: int = 0
    photos: int = 0


def describe_photo(data: bytes, jitters: int, rules: QualityRules) -> Described:
    """Analyse one catalog photo; runs in a worker process."""
    digest = hashlib.sha256(data).hexdigest()
    try:
        rgb = load_rgb(data, ImageLimits(max_bytes=200 * 1024 * 1024, max_pixels=120_000_000))
    except PhotoError as exc:
        return Described(digest, reason=f"{exc.code}: {exc}")
    rects = sorted(analyzer().detect(rgb, DetectOptions()), key=lambda r: -r.area())
    if not rects:
        return Described(digest, reason="no face found")
    crowd = [r for r in rects[1:] if r.area() > rules.dominance * rects[0].area()]
    if crowd:
        return Described(digest, reason=f"{len(crowd) + 1} faces of similar size: which one is the person?")
    main = analyzer().describe(rgb, rects[:1], jitters)[0]
    if main.eye_distance < rules.min_eye_distance:
        return Described(
            digest, reason=f"face too small (eyes {main.eye_distance:.0f} px apart, need {rules.min_eye_distance:.0f})"
        )
    if abs(main.roll) > rules.max_roll:
        return Described(digest, reason=f"head tilted {main.roll:.0f}° (limit {rules.max_roll:.0f}°)")
    return Described(digest, main.descriptor, main.box, main.eye_distance, main.roll, face_crop_jpeg(rgb, main))


def _describe_file(args: tuple[Path, int, QualityRules]) -> Described:
    path, jitters, rules = args
    return describe_photo(path.read_bytes(), jitters, rules)


def _map(jobs: list[tuple[Path, int, QualityRules]], workers: int) -> Iterator[Described]:
    """Results in job order; worker processes (spawn, models loaded once each) when more than one is asked for."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_describe_file, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=analyzer) as pool:
        yield from pool.map(_describe_file, jobs, chunksize=1)


def build_embeddings(
    photos_dir: Path,
    assets: Path,
    jitters: int = 10,
    workers: int = 1,
    rules: QualityRules = QualityRules(),
    progress: bool = True,
) -> BuildReport:
    """Bring ``assets/`` up to date with ``photos_dir``: reuse unchanged photos, compute new ones, drop removed ones."""
    catalog = scan(photos_dir)
    if not catalog.photos:
        raise CatalogError(
            f"{photos_dir}: no photos found; add a folder per person ({photos_dir}/brad_pitt/1.jpg) "
            f"or a file per person ({photos_dir}/brad-pitt.jpg)"
        )
    try:
        old = Store.load(assets)
    except Exception:
        old = Store()
    reusable = _reusable(old, jitters, assets)
    files = [(pid, path) for pid, paths in catalog.photos.items() for path in paths]
    digests = [_sha256(path) for _, path in tqdm(files, desc="hashing", unit="photo", disable=not progress)]
    todo = [(path, jitters, rules) for (_, path), digest in zip(files, digests) if digest not in reusable]
    fresh = {}
    bar = tqdm(total=len(todo), desc="describing", unit="photo", disable=not progress)
    for described in _map(todo, workers):
        fresh[described.sha256] = described
        bar.update()
    bar.close()
    store, report = _assemble(catalog, photos_dir, assets, files, digests, reusable, fresh, jitters)
    report.removed = len(({p.sha256 for p in old.photos} | {s.sha256 for s in old.skipped}) - set(digests))
    store.save(assets)
    _prune_thumbs(assets, store)
    return report


def _reusable(old: Store, jitters: int, assets: Path) -> dict[str, Described]:
    """Previous results by content hash: computed with the same jitters, and with their thumbnail still on disk."""
    if old.jitters != jitters:
        return {}
    done = {
        p.sha256: Described(p.sha256, old.vectors[i], p.box, p.eye_distance, p.roll)
        for i, p in enumerate(old.photos)
        if (assets / p.thumb).is_file()
    }
    done.update({s.sha256: Described(s.sha256, reason=s.reason) for s in old.skipped})
    return done


def _assemble(
    catalog: Catalog,
    photos_dir: Path,
    assets: Path,
    files: list[tuple[str, Path]],
    digests: list[str],
    reusable: dict[str, Described],
    fresh: dict[str, Described],
    jitters: int,
) -> tuple[Store, BuildReport]:
    report = BuildReport()
    store = Store(jitters=jitters)
    vectors = []
    (assets / THUMBS_DIR).mkdir(parents=True, exist_ok=True)
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
        thumb = f"{THUMBS_DIR}/{digest[:20]}.jpg"
        if described.thumb_jpeg:
            (assets / thumb).write_bytes(described.thumb_jpeg)
        store.photos.append(PhotoRecord(rel, digest, pid, described.box, described.eye_distance, described.roll, thumb))
        vectors.append(described.vector)
    used = {p.person for p in store.photos}
    store.persons = {pid: person for pid, person in catalog.persons.items() if pid in used}
    store.vectors = np.array(vectors, dtype=np.float32).reshape(-1, 128)
    report.persons, report.photos = len(store.persons), len(store.photos)
    return store, report


def _prune_thumbs(assets: Path, store: Store) -> None:
    keep = {Path(p.thumb).name for p in store.photos}
    for thumb in (assets / THUMBS_DIR).glob("*.jpg"):
        if thumb.name not in keep:
            thumb.unlink()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
