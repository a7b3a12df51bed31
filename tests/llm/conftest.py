"""Fixtures for the LLM pipeline tests: small real datasets (prepared once per session),
a fake OpenAI-compatible server, and a runner for the `lmmrec` CLI as a subprocess."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BEAUTY = "amazon-beauty-2023-mini"
# Two raw users that wrote identical reviews of the same items (distinct interactions).
TWIN_USERS = ("AEVFWS7JFEKHYDZKH4SI5YDSNGJQ", "AEVFWS7JFEKHYDZKH4SI5YDSNGJQ_1")


@pytest.fixture(scope="session")
def beauty_inputs(beauty_dir: Path):
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm.inputs import review_inputs

    return review_inputs(PreparedDataset.load(beauty_dir))


@pytest.fixture(scope="session")
def small_dir(dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~44-review cut of the real beauty file (4 users + the twin users), prepared once."""
    from lmmrec.data.pipeline import prepare_to

    src = dataset(BEAUTY)
    with gzip.open(src / "history_reviews.json.gz", "rt", encoding="utf-8") as f:
        history = json.load(f)
    keys = list(history)
    users = [keys[0], keys[1], keys[4], keys[5], *TWIN_USERS]
    raw = tmp_path_factory.mktemp("llm-raw") / "beauty-small"
    raw.mkdir()
    with gzip.open(raw / "history_reviews.json.gz", "wt", encoding="utf-8") as f:
        json.dump({u: history[u] for u in users}, f)
    (raw / "meta_data.json.gz").write_bytes((src / "meta_data.json.gz").read_bytes())
    out = tmp_path_factory.mktemp("llm-data") / "beauty-small"
    prepare_to(str(raw), out, fmt="amazon2023", split="loo")
    return out


@pytest.fixture(scope="session")
def small_inputs(small_dir: Path):
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm.inputs import review_inputs

    return review_inputs(PreparedDataset.load(small_dir))


def lmmrec_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "lmmrec.cli.main", *[str(a) for a in args]]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `lmmrec ARGS` in a subprocess (a real process, as a user would)."""
    return subprocess.run(lmmrec_cmd(*args), capture_output=True, text=True, env=cli_env(),
                          cwd=REPO, timeout=timeout)
