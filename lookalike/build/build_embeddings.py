"""Catalog build: photos/ → one descriptor per usable photo, incremental by content hash, in worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lookalike.assets import DESCRIPTOR_SIZE, CatalogData, PhotoRecord, Skipped, ThumbnailWriter
from lookalike.build.checkpoint import Checkpoint
from lookalike.build.clean import DUPLICATE, WRONG_PERSON, Cleaning, clean
from lookalike.build.describe import (
    DESCRIBER_VERSION,
    Described,
    QualityRules,
    could_not_analyse,
    describe_photo,
    thumbnail,
)
from lookalike.build.excluded import load_excluded, save_excluded
from lookalike.build.neighbours import NEIGHBOURS_FILE, CleaningCache
from lookalike.build.report import write_report
from lookalike.build.scan import CatalogError, PhotoFolder, scan
from lookalike.build.sexes import SexDoubt, settle_sexes
from lookalike.engine.analysis import analyzer
from lookalike.engine.pool_map import imap_unordered


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
    sex_doubts: list[SexDoubt] = field(default_factory=list)  # photos that disagree, or disagree with catalog.json


PHOTO_TIMEOUT = 300.0  # s one catalog photo may take (even jitters 10 on a huge photo is seconds, not minutes)


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
            yield could_not_analyse(digest, result)
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
    reusable = _reusable(old, jitters, set(load_excluded(assets, made_by(old.jitters, old.describer))))
    files = [(pid, path) for pid, paths in folder.photos.items() for path in paths]
    fresh = {}
    with Checkpoint(assets, f"{made_by(jitters, DESCRIBER_VERSION)}; {rules}") as checkpoint:
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


def made_by(jitters: int, describer: str) -> str:
    """How descriptors were made: stamped on what a build keeps for the next one, which uses only what matches, since
    descriptors made otherwise are not comparable."""
    return f"jitters {jitters}; {describer}"


def _reusable(old: CatalogData, jitters: int, excluded: set[str]) -> dict[str, Described]:
    """Previous results by content hash, if made with the same jitters by the same describer.

    A photo the cleaning left out is reusable only while its descriptor is kept in excluded.npz: cleaning judges
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
    time come back first, with their descriptors from excluded.npz (they sit in ``store.skipped`` meanwhile, so
    an unchanged photo is never described again).
    """
    files = [(pid, path) for pid, paths in folder.photos.items() for path in paths]
    order = {path.relative_to(photos_dir).as_posix(): (n, pid) for n, (pid, path) in enumerate(files)}
    stamp = made_by(store.jitters, store.describer)
    saved = load_excluded(assets, stamp)
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
    if not keep_outliers:  # the neighbour searches redo only what changed since the last build (neighbours.py)
        cache = CleaningCache.load(assets / NEIGHBOURS_FILE, stamp)
        persons, digests, labels = [p.person for p in records], [p.sha256 for p in records], [p.path for p in records]
        found = clean(persons, digests, vectors, labels, cache=cache)
        found.cache.save(assets / NEIGHBOURS_FILE, stamp)
    out = dict(found.excluded)
    kept = [i for i in range(len(photos)) if i not in out]
    _draw_missing_thumbs([records[i] for i in kept], photos_dir, assets, thumbs, progress)
    left_out = [(records[i], why) for i, why in found.excluded]
    store.photos, store.vectors = [records[i] for i in kept], vectors[kept]
    report.excluded = [Skipped(p.path, p.sha256, why) for p, why in left_out]
    report.skipped, store.skipped = unusable, unusable + report.excluded
    used = {p.person for p in store.photos}
    store.persons = {pid: person for pid, person in folder.persons.items() if pid in used}
    store.persons, report.sex_doubts = settle_sexes(store.persons, store.person_rows(), store.vectors)
    report.persons, report.photos, report.suspicious = len(store.persons), len(store.photos), found.suspicious
    save_excluded(assets, stamp, [(records[i], vectors[i]) for i, _ in found.excluded])
    report.cleaning_report = write_report(
        assets, photos_dir, store, thumbs, left_out, found.suspicious, unusable, report.sex_doubts, not keep_outliers
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
