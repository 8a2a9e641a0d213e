#!/usr/bin/env python3
"""Make ``lookalike/build/reference_faces.npz``: descriptors of ordinary non-catalog faces, one per LFW person.

The similarity % and the hub correction are fitted on how far *strangers* sit from a catalog (see
``lookalike/engine/similarity.py``); these descriptors stand in for the strangers. Each is the largest face of
the person's first LFW photo described the way the bot describes a user's photo (``analyze_photo``, jitters=0),
stored as float16 (no photos, no names beyond the README), with the person's sex from ``../shared/lfw/sex.csv``
("F"/"M", "" where LFW has no label): ``build_index`` fits a curve per sex on them for sex-filtered matches.

Which LFW people: a deterministic split by the SHA-256 of the folder name (``split``) puts ~40% of the people in
the reference set; ``bench/quality.py`` takes catalogs and evaluation strangers only from the other ~60%, so the
numbers it reports are measured on people the reference set has never seen. Members of the US Congress found in
LFW (``CONGRESS_IN_LFW``, checked by eye against the official portraits) and the people of ``../shared/faces``
are left out of every split: they are catalog people or test queries.

    .venv/bin/python bench/make_reference_faces.py          # descriptors cached under /tmp/quality_cache/
"""

from __future__ import annotations

import csv
import hashlib
import multiprocessing
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
LFW = Path(os.environ.get("LOOKALIKE_LFW", SHARED / "lfw"))
FACES = Path(os.environ.get("LOOKALIKE_FACES", SHARED / "faces"))
CONGRESS = Path(os.environ.get("LOOKALIKE_CONGRESS", SHARED / "congress"))
CACHE = Path(os.environ.get("LOOKALIKE_QUALITY_CACHE", "/tmp/quality_cache"))
OUT = ROOT / "lookalike" / "build" / "reference_faces.npz"

REFERENCE_SHARE = 0.4  # name-hash below this: reference set
CATALOG_SHARE = 0.7  # name-hash in [REFERENCE_SHARE, this): bench's LFW catalog; above: bench's strangers

# LFW folder → bioguide id: members of Congress in LFW, matched by name and checked by eye against the official
# portrait (bench/quality.py uses their LFW photos as identification queries on the congress catalog).
CONGRESS_IN_LFW: dict[str, str] = {
    "Ben_Chandler": "C001058",
    "Bill_Nelson": "N000032",
    "Bob_Menendez": "M000639",
    "Carl_Levin": "L000261",
    "Charles_Grassley": "G000386",
    "Charles_Schumer": "S000148",
    "Chuck_Hagel": "H001028",
    "Darrell_Issa": "I000056",
    "David_Obey": "O000007",
    "Dennis_Kucinich": "K000336",
    "Edward_Kennedy": "K000105",
    "Elizabeth_Dole": "D000601",
    "Frank_Pallone": "P000034",
    "Hillary_Clinton": "C001041",
    "James_Sensenbrenner": "S000244",
    "John_Kerry": "K000148",
    "John_McCain": "M000303",
    "John_Sununu": "S001078",
    "John_Thune": "T000250",
    "John_Warner": "W000154",
    "Kit_Bond": "B000611",
    "Mark_Warner": "W000805",
    "Max_Baucus": "B000243",
    "Mike_Johanns": "J000291",
    "Nick_Rahall": "R000011",
    "Orrin_Hatch": "H000338",
    "Patrick_Leahy": "L000174",
    "Richard_Lugar": "L000504",
    "Richard_Shelby": "S000320",
    "Steny_Hoyer": "H000874",
    "Tom_Harkin": "H000206",
    "Trent_Lott": "L000447",
    "Wayne_Allard": "A000109",
    "William_Delahunt": "D000210",
}
# Namesakes, checked by eye and kept as ordinary people: Jerry_Lewis (the comedian), John_Salazar (neither John nor
# Ken Salazar), Geoffrey_Davis (not Geoff Davis).


def name_key(name: str) -> str:
    """``Joseph_Biden`` / ``joseph biden`` / ``Joséph-Biden`` → ``joseph_biden``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "_".join(w for w in re.split(r"[^a-z]+", ascii_name) if w)


def share(name: str) -> float:
    """A stable number in [0, 1) from the person's name: the split never depends on file order or a seed."""
    return int(hashlib.sha256(name_key(name).encode()).hexdigest()[:8], 16) / 2**32


def lfw_people() -> dict[str, list[Path]]:
    """Every LFW person folder and its photos in file order."""
    return {d.name: sorted(d.glob("*.jpg")) for d in sorted(LFW.iterdir()) if d.is_dir()}


def lfw_sexes() -> dict[str, str]:
    """LFW folder name → "F" or "M" (``sex.csv``; a few public labels are wrong, see bench/RESULTS.md)."""
    with open(LFW / "sex.csv", encoding="utf-8") as f:
        return {row["name"]: row["sex"] for row in csv.DictReader(f)}


def split() -> dict[str, list[str]]:
    """LFW people (not members of Congress, not in ../shared/faces) in three disjoint groups, by name hash."""
    faces = {name_key(d.name) for d in FACES.iterdir() if d.is_dir()}
    groups: dict[str, list[str]] = {"reference": [], "catalog": [], "strangers": []}
    for name in lfw_people():
        if name in CONGRESS_IN_LFW or name_key(name) in faces:
            continue
        h = share(name)
        groups["reference" if h < REFERENCE_SHARE else "catalog" if h < CATALOG_SHARE else "strangers"].append(name)
    return groups


def _user_vector(path: Path) -> np.ndarray:
    """The bot's view of a user photo: largest face, default DetectOptions (jitters=0); NaN if no face."""
    from lookalike.engine.analysis import analyze_photo
    from lookalike.errors import PhotoError

    try:
        return analyze_photo(path.read_bytes()).faces[0].descriptor
    except PhotoError:
        return np.full(128, np.nan, np.float32)


def _centre_vector(path: Path) -> np.ndarray:
    """As ``_user_vector``, but the face nearest the image centre: LFW centres the labelled person, while the
    largest face is sometimes a bystander (e.g. Charles_Schumer_0002). For identification queries only."""
    from lookalike.engine.analysis import analyze_photo
    from lookalike.errors import PhotoError

    try:
        found = analyze_photo(path.read_bytes())
    except PhotoError:
        return np.full(128, np.nan, np.float32)

    def off_centre(face) -> float:
        left, top, right, bottom = face.box
        return abs(left + right - found.width) + abs(top + bottom - found.height)

    return min(found.faces, key=off_centre).descriptor


def _catalog_vector(args: tuple[Path, int]) -> np.ndarray:
    """build_embeddings' view of a catalog photo (quality rules included); NaN if it would be skipped."""
    from lookalike.build.build_embeddings import QualityRules, describe_photo

    path, jitters = args
    described = describe_photo(path.read_bytes(), jitters, QualityRules())
    return np.full(128, np.nan, np.float32) if described.vector is None else described.vector


def _run(fn: Callable, jobs: Sequence, workers: int) -> np.ndarray:
    from lookalike.engine.analysis import analyzer

    if workers <= 1:
        return np.stack([fn(job) for job in jobs]).astype(np.float32)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=analyzer) as pool:
        return np.stack(list(pool.map(fn, jobs, chunksize=4))).astype(np.float32)


def describe(paths: Sequence[Path], kind: str, jitters: int = 0, workers: int = 2) -> np.ndarray:
    """Descriptors of ``paths`` as a user photo (``kind="user"``, ``"centre"``: the face nearest the centre) or a
    catalog photo (``kind="catalog"``), rows NaN where there is no usable face. Cached per photo in
    CACHE/<kind>_j<jitters>.npz: each is computed once."""
    cached = CACHE / f"{kind}_j{jitters}.npz"
    known = _cached(cached)
    todo = [p for p in dict.fromkeys(map(str, paths)) if p not in known]
    if todo:
        if kind in ("user", "centre"):
            fresh = _run(_user_vector if kind == "user" else _centre_vector, [Path(p) for p in todo], workers)
        else:
            fresh = _run(_catalog_vector, [(Path(p), jitters) for p in todo], workers)
        known = {**_cached(cached), **dict(zip(todo, fresh))}  # what other runs cached meanwhile is kept
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, paths=np.array(list(known)), vectors=np.stack(list(known.values())))
        tmp.replace(cached)
    return np.stack([known[str(p)] for p in paths]) if len(paths) else np.zeros((0, 128), np.float32)


def _cached(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as npz:
        return dict(zip(npz["paths"].tolist(), npz["vectors"]))


def main() -> int:
    people, sexes = lfw_people(), lfw_sexes()
    names = split()["reference"]
    vectors = describe([people[n][0] for n in names], "user")
    found = ~np.isnan(vectors).any(axis=1)
    sex = np.array([sexes.get(n, "") for n, f in zip(names, found) if f], dtype="<U1")
    np.savez_compressed(OUT, vectors=vectors[found].astype(np.float16), sex=sex)
    counts = ", ".join(f"{s or 'unlabelled'} {int((sex == s).sum())}" for s in ("F", "M", ""))
    print(f"{found.sum()} reference faces of {len(names)} LFW people ({counts}; no face in {(~found).sum()}) → {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
