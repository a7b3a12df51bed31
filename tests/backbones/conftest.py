"""A small real cut of RLMRec's Amazon-book split (committed under tests/fixtures),
prepared once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmmrec.train.rlmrec_splits import load_rlmrec_splits

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def amazon_cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """First 300 users of rlmrec-splits/amazon as a prepared dataset folder."""
    out = tmp_path_factory.mktemp("amazon300")
    load_rlmrec_splits(FIXTURES / "rlmrec-amazon-300", max_users=300).save(out)
    return out
