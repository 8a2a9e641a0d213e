"""A catalog build on a Dask cluster (a LocalCluster of 2 worker processes on loopback) against the local build:
the same store, a worker killed mid-build, a build stopped (Ctrl-C, the client killed) and run again, a wrong
scheduler address."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from distributed import Client, LocalCluster

import lookalike.build.distributed as on_cluster
from lookalike.assets import CatalogData, ThumbnailWriter
from lookalike.build.build_embeddings import BuildReport, build_embeddings
from lookalike.build.checkpoint import CHECKPOINT_FILE
from lookalike.build.describe import Described
from lookalike.errors import ClusterError

ROOT = Path(__file__).resolve().parents[1]
PERSONS, PER_PERSON = 8, 3


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, faces: dict[str, list[Path]]) -> Path:
    """8 persons × 3 photos as a folder per person, plus a photo filed twice and a file that is no image."""
    root = tmp_path_factory.mktemp("photos")
    people = [p for p, paths in faces.items() if len(paths) >= PER_PERSON][:PERSONS]
    for person in people:
        (root / person).mkdir()
        for path in faces[person][:PER_PERSON]:
            (root / person / path.name).symlink_to(path)
    (root / people[0] / "again.jpg").symlink_to(faces[people[0]][0])
    (root / people[1] / "broken.jpg").write_bytes(b"not an image at all")
    return root


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # loopback, any free port (never 8787, which a real cluster may hold)
        silence_logs=logging.ERROR,
    ) as local_cluster:
        yield local_cluster


@pytest.fixture(scope="module")
def local(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BuildReport]:
    """The reference: the same photos built by the local worker pool."""
    assets = tmp_path_factory.mktemp("local") / "assets"
    return assets, build_embeddings(photos, assets, jitters=0, workers=2, progress=False)


def _assert_same_store(built: Path, reference: Path) -> None:
    one, two = CatalogData.load(built), CatalogData.load(reference)
    assert (one.persons, one.photos, one.skipped) == (two.persons, two.photos, two.skipped)
    assert (one.jitters, one.describer) == (two.jitters, two.describer)
    np.testing.assert_allclose(one.vectors, two.vectors, rtol=0, atol=1e-6)
    with ThumbnailWriter(built) as a, ThumbnailWriter(reference) as b:
        assert a.keys() == b.keys() == {p.sha256 for p in one.photos}
        assert all(a.get(sha) == b.get(sha) for sha in a.keys())


def _same_report(one: BuildReport, two: BuildReport) -> bool:
    """The same counts, skips and cleaning verdicts (the cleaning report's path is in each build's own assets)."""
    return replace(one, cleaning_report=None) == replace(two, cleaning_report=None)


def _file_digests(photos: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.rglob("*") if p.is_file()]


def _stored(assets: Path) -> set[str]:
    with sqlite3.connect(assets / CHECKPOINT_FILE) as db:
        return {sha for (sha,) in db.execute("SELECT sha256 FROM described")}


def test_cluster_build_equals_local_build(
    photos: Path, cluster: LocalCluster, local: tuple[Path, BuildReport], tmp_path: Path
) -> None:
    reference, expected = local
    report = build_embeddings(photos, tmp_path, jitters=0, progress=False, scheduler=cluster.scheduler_address)
    assert _same_report(report, expected)
    assert (report.computed, report.photos, len(report.skipped)) == (PERSONS * PER_PERSON + 2, 25, 1)
    _assert_same_store(tmp_path, reference)
    with Client(cluster.scheduler_address, set_as_default=False) as client:  # models loaded by the plugin
        assert set(client.run(lambda dask_worker: "lookalike-models" in dask_worker.plugins).values()) == {True}


def test_worker_killed_mid_build_loses_and_doubles_nothing(
    photos: Path, cluster: LocalCluster, local: tuple[Path, BuildReport], tmp_path: Path, monkeypatch
) -> None:
    describe = on_cluster.describe_on_cluster
    yielded: list[str] = []
    victims: list[int] = []

    def describe_and_kill(jobs: list, scheduler: str) -> Iterator[Described]:
        for described in describe(jobs, scheduler):
            if not victims:  # after the first result: kill -9 a worker process that has a photo in hand
                with Client(scheduler, set_as_default=False) as client:
                    busy = max(client.processing().items(), key=lambda item: len(item[1]))
                    assert busy[1], "no worker had a task in hand"
                    victims.append(client.run(os.getpid, workers=[busy[0]])[busy[0]])
                os.kill(victims[0], signal.SIGKILL)
            yielded.append(described.sha256)
            yield described

    monkeypatch.setattr(on_cluster, "describe_on_cluster", describe_and_kill)
    report = build_embeddings(photos, tmp_path, jitters=0, progress=False, scheduler=cluster.scheduler_address)
    assert victims and sorted(yielded) == sorted(set(_file_digests(photos)))  # every photo once, none twice
    assert _same_report(report, local[1])
    _assert_same_store(tmp_path, local[0])


def test_interrupted_build_computes_only_what_is_missing(
    photos: Path, cluster: LocalCluster, local: tuple[Path, BuildReport], tmp_path: Path, monkeypatch
) -> None:
    describe = on_cluster.describe_on_cluster
    asked: list[int] = []

    def ctrl_c_after_5(jobs: list, scheduler: str) -> Iterator[Described]:
        yield from itertools.islice(describe(jobs, scheduler), 5)
        raise KeyboardInterrupt

    monkeypatch.setattr(on_cluster, "describe_on_cluster", ctrl_c_after_5)
    with pytest.raises(KeyboardInterrupt):
        build_embeddings(photos, tmp_path, jitters=0, progress=False, scheduler=cluster.scheduler_address)
    stored = _stored(tmp_path)
    assert len(stored) == 5

    def counting(jobs: list, scheduler: str) -> Iterator[Described]:
        asked.append(len(jobs))
        yield from describe(jobs, scheduler)

    monkeypatch.setattr(on_cluster, "describe_on_cluster", counting)
    report = build_embeddings(photos, tmp_path, jitters=0, progress=False, scheduler=cluster.scheduler_address)
    digests = _file_digests(photos)
    assert asked == [len(set(digests)) - 5]
    assert report.reused == sum(d in stored for d in digests) and report.computed == len(digests) - report.reused
    _assert_same_store(tmp_path, local[0])
    assert _stored(tmp_path) == set(digests)
    build_embeddings(photos, tmp_path, jitters=0, progress=False, scheduler=cluster.scheduler_address)
    assert _stored(tmp_path) == set()  # once the store holds them, the next run drops them


def test_killed_client_resumes(photos: Path, cluster: LocalCluster, local: tuple[Path, BuildReport], tmp_path: Path):
    """kill -9 of the build itself: what it had committed is not described again."""
    code = (
        "import sys; from pathlib import Path; from lookalike.build.build_embeddings import build_embeddings; "
        "build_embeddings(Path(sys.argv[1]), Path(sys.argv[2]), jitters=0, progress=False, scheduler=sys.argv[3])"
    )
    build = subprocess.Popen([sys.executable, "-c", code, photos, tmp_path, cluster.scheduler_address], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not ((tmp_path / CHECKPOINT_FILE).exists() and _stored(tmp_path)):
            assert build.poll() is None and time.monotonic() < deadline, "the build committed nothing"
            time.sleep(0.1)
    finally:
        build.kill()
        build.wait()
    stored = _stored(tmp_path)
    report = build_embeddings(photos, tmp_path, jitters=0, progress=False, scheduler=cluster.scheduler_address)
    assert 0 < report.reused == sum(d in stored for d in _file_digests(photos))
    assert report.computed + report.reused == local[1].computed
    _assert_same_store(tmp_path, local[0])


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:9", "127.0.0.1", "silent"])
def test_wrong_scheduler_is_named_in_one_line(photos: Path, tmp_path: Path, address: str) -> None:
    """Nothing listening, no port, and a port that accepts but is no Dask scheduler (a dashboard's, say)."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # never accepts, never answers
        if address == "silent":
            address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        start = time.monotonic()
        with pytest.raises(ClusterError, match=re.escape(f"Dask scheduler at {address}:")) as error:
            build_embeddings(photos, tmp_path, jitters=0, progress=False, scheduler=address)
    assert time.monotonic() - start < 15 and "\n" not in str(error.value)
