"""A synthetic catalog of any size, as if every photo had been described: a photos folder and its assets.

    python -m bench.synthetic_catalog --size 100000 --base /tmp/lookalike-scale/100000

- ``<base>/photos``: a folder per person (``p0123456``, 10 photos each, named "Person 0123456" by a
  ``catalog.json``); each file one of ~270 real 160 px face crops (from ``../shared/faces``) plus unique trailing
  bytes after the JPEG's end marker (which decoders ignore), so that every file has its own SHA-256. Made once per
  size and reused, with ``<base>/synthetic.npz`` (vectors in catalog order, each file's SHA-256 and crop).
- ``<base>/assets``: written afresh by ``CatalogData.save`` as if every photo had been described at jitters 10
  (vectors from ``bench.common.synthesize``), thumbnails from the crops' bytes, and cleaning's neighbour cache
  seeded as a build would have left it (``bench.cleaning_scale.seeded_cache``: the exact one takes hours at 1M).

Prints one JSON line: what it made and how long each step took (a generator: not a measurement).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from bench.cleaning_scale import seeded_cache
from bench.common import PHOTOS_PER_PERSON, synthesize
from lookalike.assets import DESCRIPTOR_SIZE, CatalogData, Person, PhotoRecord, ThumbnailWriter
from lookalike.build.build_embeddings import made_by
from lookalike.build.describe import DESCRIBER_VERSION
from lookalike.build.neighbours import NEIGHBOURS_FILE
from testkit.data import FACES

CROP_SIDE = 160
JITTERS = 10


def ensure_crops(crops: Path) -> list[bytes]:
    """~270 small real JPEGs, made once: a centred square of each ../shared/faces JPEG at CROP_SIDE px."""
    done = crops / "done"
    if not done.exists():
        shutil.rmtree(crops, ignore_errors=True)
        crops.mkdir(parents=True)
        for n, source in enumerate(sorted(FACES.glob("*/*.jpg"))):
            with Image.open(source) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                side = min(im.size)
                left, top = (im.width - side) // 2, max(0, (im.height - side) // 3)  # faces sit above the middle
                square = im.crop((left, top, left + side, top + side)).resize((CROP_SIDE, CROP_SIDE), Image.LANCZOS)
                square.save(crops / f"{n:03d}.jpg", "JPEG", quality=85)
        done.write_text("")
    return [path.read_bytes() for path in sorted(crops.glob("*.jpg"))]


def ensure_photos(n: int, base: Path, jpegs: list[bytes]) -> dict[str, Any]:
    """``<base>/photos`` and ``<base>/synthetic.npz``, unless a previous run made them complete."""
    manifest, photos = base / "synthetic.npz", base / "photos"
    if manifest.exists() and photos.is_dir():
        return {"photos_reused": True}
    if n % PHOTOS_PER_PERSON:
        raise SystemExit(f"--size: {n} is not a multiple of {PHOTOS_PER_PERSON} photos per person")
    started = time.perf_counter()
    shutil.rmtree(photos, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    n_persons = n // PHOTOS_PER_PERSON
    # synthesize gives photo i to person i % n_persons; the catalog lists person by person, photos 0..9 in order
    vectors = synthesize(n, 1).vectors.reshape(PHOTOS_PER_PERSON, n_persons, -1).transpose(1, 0, 2)
    vectors = vectors.reshape(n, DESCRIPTOR_SIZE)
    crop_of = np.random.default_rng(n).integers(len(jpegs), size=n).astype(np.int16)
    digests = np.empty(n, dtype="S64")
    photos.mkdir(parents=True)
    for row in range(n):
        person, k = divmod(row, PHOTOS_PER_PERSON)
        pid = f"p{person:07d}"
        folder = photos / pid
        if k == 0:
            folder.mkdir()
        data = jpegs[crop_of[row]] + f"\nlookalike synthetic photo {pid}/{k} of {n}\n".encode()
        (folder / f"{k}.jpg").write_bytes(data)
        digests[row] = hashlib.sha256(data).hexdigest().encode()
    entries = [{"name": f"Person {p:07d}", "alias": f"p{p:07d}"} for p in range(n_persons)]
    (photos / "catalog.json").write_text(json.dumps(entries), encoding="utf-8")
    np.savez(base / "synthetic.tmp.npz", vectors=vectors.astype(np.float32), sha256=digests, crop=crop_of)
    os.replace(base / "synthetic.tmp.npz", manifest)  # last: its presence says the photos are complete
    return {"photos_reused": False, "photos_s": time.perf_counter() - started}


def write_assets(base: Path, jpegs: list[bytes]) -> dict[str, Any]:
    """``<base>/assets`` afresh, as a build that described every photo of ``<base>/photos`` would leave it."""
    timings: dict[str, Any] = {}
    assets = base / "assets"
    shutil.rmtree(assets, ignore_errors=True)
    started = time.perf_counter()
    with np.load(base / "synthetic.npz", allow_pickle=False) as npz:
        vectors, digests, crop_of = npz["vectors"], npz["sha256"].astype(str).tolist(), npz["crop"]
    persons, photos = {}, []
    for row, sha in enumerate(digests):
        person, k = divmod(row, PHOTOS_PER_PERSON)
        pid = f"p{person:07d}"
        if k == 0:
            persons[pid] = Person(pid, f"Person {person:07d}", alias=pid)
        photos.append(PhotoRecord(f"{pid}/{k}.jpg", sha, pid, (0, 0, CROP_SIDE, CROP_SIDE), 40.0, 0.0))
    timings["records_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with ThumbnailWriter(assets) as thumbs:
        thumbs.put_many((sha, jpegs[crop]) for sha, crop in zip(digests, crop_of))
    timings["thumbs_s"] = time.perf_counter() - started
    started = time.perf_counter()
    CatalogData(persons, photos, vectors, skipped=[], jitters=JITTERS, describer=DESCRIBER_VERSION).save(assets)
    timings["save_s"] = time.perf_counter() - started
    started = time.perf_counter()
    cache = seeded_cache([p.person for p in photos], digests, vectors, PHOTOS_PER_PERSON)
    cache.save(assets / NEIGHBOURS_FILE, made_by(JITTERS, DESCRIBER_VERSION))
    timings["neighbours_s"] = time.perf_counter() - started
    return {"photos": len(photos), "persons": len(persons), **timings}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, required=True, help=f"photos (a multiple of {PHOTOS_PER_PERSON})")
    parser.add_argument("--base", type=Path, required=True, help="where photos/ and assets/ go (not the repo)")
    parser.add_argument("--crops", type=Path, help="where the face crops are kept (default: <base>/../crops)")
    args = parser.parse_args()
    crops = ensure_crops(args.crops or args.base.parent / "crops")
    made = ensure_photos(args.size, args.base, crops)
    print(json.dumps({**made, **write_assets(args.base, crops)}))
