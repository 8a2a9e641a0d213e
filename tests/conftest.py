"""Shared fixtures: the real faces in ../shared/faces, a catalog built from them (never copied into the repo), and a
fake Bot API per test module (modules that need a fresh one per test define their own ``api``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.data import BuiltCatalog, build_catalog, person_photos
from testkit.fake_bot_api import FakeBotApi


@pytest.fixture(scope="session")
def faces() -> dict[str, list[Path]]:
    try:
        return person_photos()
    except FileNotFoundError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory, faces: dict[str, list[Path]]) -> BuiltCatalog:
    """A catalog of the first photo of each person (file per person, one named by catalog.json), built and indexed."""
    return build_catalog(tmp_path_factory.mktemp("catalog"))


@pytest.fixture(scope="module")
def api() -> Iterator[FakeBotApi]:
    with FakeBotApi() as fake:
        yield fake
