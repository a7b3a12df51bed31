from __future__ import annotations

from pathlib import Path

import pytest
from explain.runs import loaded, trained_run


@pytest.fixture(scope="session")
def lmmrec_run(tmp_path_factory, beauty_dir: Path, beauty_motivations: Path) -> Path:
    return trained_run(tmp_path_factory, beauty_dir, beauty_motivations)


@pytest.fixture(scope="session")
def recommender(lmmrec_run: Path):
    return loaded(lmmrec_run)


@pytest.fixture(scope="session")
def base_run(tmp_path_factory, beauty_dir: Path) -> Path:
    return trained_run(tmp_path_factory, beauty_dir, None)
