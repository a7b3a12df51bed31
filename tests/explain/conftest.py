"""A run trained on the own-reviews fixture (motivations by a fake LLM), once a session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def own_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llm.fake_openai import FakeOpenAI

    from lmmrec.cli.main import main

    from .own_reviews import COLUMNS, REVIEWS, SMALL_K, responder

    root = tmp_path_factory.mktemp("own")
    data, store, art, run = (root / n for n in ("prepared", "store.sqlite", "art", "run"))

    def cli(*args: object) -> None:
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            assert not e.code, args

    cli("data", "prepare", REVIEWS, "--out", data, "--columns", COLUMNS)
    with FakeOpenAI(responder) as fake:
        cli("extract", "--data", data, "--store", store, "--backend", "openai",
            "--set", f"openai.base_url={fake.base_url}")
    cli("extract", "export", "--store", store, "--data", data, "--out", art)
    cli("embed", art)
    cli("train", "--backbone", "lightgcn", "--data", data, "--method", "lmmrec",
        "--motivations", art, "--out", run, "--set", "train.max_epochs=2",
        "--set", "train.progress=false", "--set", "train.threads=1", *SMALL_K)
    return run
