"""The reliability tests need only tiny real data: a folder laid out like $LMMREC_DATA_DIR
from what every clone carries (the shipped beauty set and the committed cut of RLMRec's
Amazon split, whose first users are those of the full split), so they never skip."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BEAUTY = "amazon-beauty-2023-mini"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory,
             dataset: Callable[[str], Path]) -> Path:
    root = tmp_path_factory.mktemp("reliability-data")
    (root / "rlmrec-splits").mkdir()
    (root / "rlmrec-splits" / "amazon").symlink_to(FIXTURES / "rlmrec-amazon-300")
    (root / BEAUTY).symlink_to(dataset(BEAUTY))
    return root
