"""Who is in ``photos/``: a folder per person or a file per person, named by an optional ``catalog.json``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.assets import SEXES, Person
from lookalike.engine.images import IMAGE_SUFFIXES

CATALOG_FILE = "catalog.json"


class CatalogError(ValueError):
    """``catalog.json`` is unreadable or malformed; the message names the file and the entry."""


@dataclass
class PhotoFolder:
    """Persons by id and the photo files of each."""

    persons: dict[str, Person] = field(default_factory=dict)
    photos: dict[str, list[Path]] = field(default_factory=dict)


def person_id(stem: str) -> str:
    """``Brad-Pitt``, ``brad pitt`` and ``brad_pitt`` are the same person: lowercase words joined by ``_``."""
    return "_".join(w for w in re.split(r"[\s_\-.]+", stem.strip().lower()) if w)


def display_name(pid: str) -> str:
    return " ".join(w.capitalize() for w in pid.split("_"))


def scan(photos_dir: Path) -> PhotoFolder:
    """Find every person and photo under ``photos_dir`` (a folder per person, or a file per person)."""
    if not photos_dir.is_dir():
        raise FileNotFoundError(f"{photos_dir}: photos folder not found")
    entries = read_catalog_json(photos_dir / CATALOG_FILE)
    folder = PhotoFolder()
    for path in sorted(photos_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _is_image(p))
            pid = person_id(path.name)
        elif _is_image(path):
            files, pid = [path], person_id(path.stem)
        else:
            continue
        if not files or not pid:
            continue
        folder.photos.setdefault(pid, []).extend(files)
        folder.persons[pid] = entries.get(pid) or Person(pid, display_name(pid))
    return folder


def read_catalog_json(path: Path) -> dict[str, Person]:
    """Entries of ``catalog.json`` (a list of {"name", "alias", "role", "n_movies", "url", "sex"}) by normalised
    alias. ``sex`` is "F" or "M" when given (without it the build estimates it from the photos)."""
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(raw, list):
        raise CatalogError(f"{path}: expected a JSON list of objects, got {type(raw).__name__}")
    persons: dict[str, Person] = {}
    for n, item in enumerate(raw):
        if not isinstance(item, dict) or not item.get("alias") or not item.get("name"):
            raise CatalogError(f'{path}: entry {n} needs at least "name" and "alias": {item!r}')
        pid = person_id(str(item["alias"]))
        sex = item.get("sex")
        if sex is not None and sex not in SEXES:
            raise CatalogError(f'{path}: entry {n} ({item["alias"]}): "sex" must be "F" or "M", got {sex!r}')
        persons[pid] = Person(
            id=pid,
            name=str(item["name"]),
            alias=str(item["alias"]),
            role=str(item["role"]) if item.get("role") else None,
            n_movies=item["n_movies"] if isinstance(item.get("n_movies"), int) else None,
            url=str(item["url"]) if item.get("url") else None,
            sex=sex,
        )
    return persons


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES
