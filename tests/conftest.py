"""Shared fixtures: real data from $LMMREC_DATA_DIR (../shared/data in this repo's CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("LMMREC_DATA_DIR")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _data_dir()
    if not path.is_dir():
        pytest.fail(f"real datasets not found at {path}: set LMMREC_DATA_DIR")
    return path
