"""Extraction budgets: a seeded subsample of training reviews that keeps every user and item
where the budget allows, in `extract --budget` and in training (`align.review_share`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lmmrec.data.dataset import PreparedDataset
from lmmrec.errors import ConfigError
from lmmrec.llm.budget import budget_pairs, draw, parse_shares

from .conftest import run_cli


def test_draw_covers_every_user_and_item_then_fills() -> None:
    rng = np.random.default_rng(1)
    users = rng.integers(0, 30, 400)
    items = rng.integers(0, 50, 400)
    for share in (0.25, 0.5, 1.0):
        kept = draw(users, items, share, seed=3)
        assert len(kept) == round(share * 400)
        assert set(users[kept]) == set(users) and set(items[kept]) == set(items)
    assert np.array_equal(draw(users, items, 0.25, 3), draw(users, items, 0.25, 3))
    assert not np.array_equal(draw(users, items, 0.25, 3), draw(users, items, 0.25, 4))
    # a budget smaller than the cover keeps what it can, never more than asked
    assert len(draw(users, items, 0.05, 3)) == 20


def test_parse_shares_rejects_bad_budgets() -> None:
    assert parse_shares("0.25, 0.5,1") == [0.25, 0.5, 1.0]
    for bad in ("0", "1.5", "x", ""):
        with pytest.raises(ConfigError):
            parse_shares(bad)


def test_budget_pairs_are_training_reviews(beauty_dir: Path) -> None:
    from lmmrec.data.leakage import training_pairs

    ds = PreparedDataset.load(beauty_dir)
    half = budget_pairs(ds, 0.5)
    train = training_pairs(ds)
    assert half <= train and abs(len(half) - len(train) / 2) <= 1
    assert budget_pairs(ds, 1.0) == train


@pytest.mark.timeout(120)
def test_dry_run_prints_the_estimate_of_each_budget(beauty_dir: Path, tmp_path: Path) -> None:
    r = run_cli("extract", "--data", beauty_dir, "--store", tmp_path / "s.sqlite",
                "--dry-run", "--budget", "0.25,0.5,1")
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)
    assert [e["budget"] for e in est] == [0.25, 0.5, 1.0]
    calls = [e["calls"] for e in est]
    assert calls[0] < calls[1] < calls[2]
    assert not (tmp_path / "s.sqlite").exists()  # a dry run creates nothing
    # without --budget: every review, validation and test too; --budget 1: training only
    r = run_cli("extract", "--data", beauty_dir, "--store", tmp_path / "s.sqlite", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["calls"] > calls[2]
    r = run_cli("extract", "--data", beauty_dir, "--store", tmp_path / "s.sqlite",
                "--budget", "0.25,0.5")
    assert r.returncode == 2 and "--dry-run" in r.stderr


def test_a_budget_of_one_is_every_training_review_and_no_budget_every_review(
        beauty_dir: Path) -> None:
    from lmmrec.data.leakage import training_pairs
    from lmmrec.llm.inputs import inputs_for, within_budget

    ds = PreparedDataset.load(beauty_dir)
    inputs = inputs_for(ds, "review_v2n")
    train = training_pairs(ds)
    full = within_budget(ds, inputs, 1.0)
    assert full and all((i.user_id, i.item_id) in train for i in full)
    assert {(i.user_id, i.item_id) for i in inputs if (i.user_id, i.item_id) in train} == {
        (i.user_id, i.item_id) for i in full}
    assert within_budget(ds, inputs, None) == inputs and len(inputs) > len(full)
    half = within_budget(ds, inputs, 0.5)
    assert {(i.user_id, i.item_id) for i in half} <= {(i.user_id, i.item_id) for i in full}


@pytest.mark.timeout(300)
def test_training_on_a_review_share_uses_that_many_reviews(beauty_dir: Path,
                                                           beauty_motivations: Path,
                                                           tmp_path: Path) -> None:
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    cfg = resolve_config("lightgcn", [], ["train.max_epochs=1", "train.progress=false",
                                          "train.threads=1", "align.review_share=0.25"],
                         base={"method": "lmmrec", "data": str(beauty_dir),
                               "motivations": str(beauty_motivations)})
    fit(cfg, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    text = json.dumps(metrics)
    assert '"review_share": 0.25' in text
    ds = PreparedDataset.load(beauty_dir)
    assert f'"budget_reviews": {len(budget_pairs(ds, 0.25))}' in text
