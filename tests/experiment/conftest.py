"""A tiny real dataset (amazon-beauty-2023-mini, ~250 users) prepared once per session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def beauty(beauty_dir: Path) -> Path:
    """The shared prepared amazon-beauty-2023-mini (tests/conftest.py)."""
    return beauty_dir
