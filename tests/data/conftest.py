"""Helpers for data tests: run the CLI in-process, cut small fixtures from the real files."""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import pytest


def head_lines(src: Path, n: int) -> list[bytes]:
    """First ``n`` lines (bytes, with newline) of a gzipped real file."""
    out = []
    with gzip.open(src, "rb") as f:
        for line in f:
            out.append(line)
            if len(out) >= n:
                break
    return out


def write_gz(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.writelines(lines)
    return path


def tree_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir())}


def leftovers(parent: Path) -> list[str]:
    """Temporary folders a failed prepare may not leave behind."""
    return [n for n in os.listdir(parent) if ".tmp-" in n or ".old-" in n]


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STEAM_HEAD = FIXTURES / "steam-au-head"  # first 2,000 reviews of steam-au, their games
RLMREC_CUT = FIXTURES / "rlmrec-amazon-300"  # rlmrec-splits/amazon, first 300 users


@pytest.fixture(scope="session")
def prepared(dataset, tmp_path_factory: pytest.TempPathFactory):
    """Prepared real datasets (by catalog name) with their default settings, built once per
    session; the test skips when the dataset is not available."""
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.data.pipeline import prepare_to

    cache: dict[str, PreparedDataset] = {}

    def get(name: str) -> PreparedDataset:
        if name not in cache:
            src = dataset(name)
            out = tmp_path_factory.mktemp("prepared") / name
            prepare_to(str(src), out)
            cache[name] = PreparedDataset.load(out)
        return cache[name]

    return get
