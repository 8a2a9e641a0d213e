"""Shared fixtures: the real faces in ../shared/faces and a catalog built from them (never copied into the repo)."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.data import BuiltCatalog, build_catalog, person_photos


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
