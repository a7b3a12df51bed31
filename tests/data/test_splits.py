"""Splits: 3:1:1 keeps every user and item in train; loo is temporal; output deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .conftest import STEAM_HEAD, tree_hashes


@pytest.mark.parametrize("name", ["steam-au", "amazon-mi-2014"])
def test_ratio_split_covers_every_user_and_item(prepared, name: str) -> None:
    ds = prepared(name)
    train = ds.train
    assert (np.diff(train.indptr) > 0).all(), "a user has no training interaction"
    assert (np.asarray((train > 0).sum(axis=0)).ravel() > 0).all(), "an item has none"
    n = len(ds.interactions)
    shares = np.array([ds.train.nnz, ds.val.nnz, ds.test.nnz]) / n
    assert abs(shares[0] - 0.6) < 0.03 and abs(shares[1] - 0.2) < 0.03
    assert abs(shares[2] - 0.2) < 0.03
    # one row per pair, splits disjoint
    assert not ds.interactions.duplicated(["user", "item"]).any()
    assert (ds.train.multiply(ds.test)).nnz == 0 and (ds.train.multiply(ds.val)).nnz == 0


def test_ratio_split_algorithm_on_a_frame() -> None:
    import pandas as pd

    from lmmrec.data.splits import assign

    # user 3 and item 9 have one interaction each: they must land in train
    df = pd.DataFrame({"user": [0, 0, 0, 1, 1, 1, 2, 2, 2, 3],
                       "item": [0, 1, 2, 0, 1, 2, 0, 1, 9, 0]})
    for seed in range(20):
        s = assign(df, "3:1:1", seed)
        assert s[df.user == 3].tolist() == ["train"] and s[df.item == 9].tolist() == ["train"]
        assert set(df.user[s == "train"]) == {0, 1, 2, 3}


def test_loo_is_temporal(cli, dataset, tmp_path: Path) -> None:
    from lmmrec.data.dataset import PreparedDataset

    out = tmp_path / "loo"
    r = cli("data", "prepare", dataset("amazon-mi-2014"), "--split", "loo", "--out", out)
    assert r.code == 0, r.err
    ds = PreparedDataset.load(out)
    inter = ds.interactions
    assert ds.test.nnz == ds.n_users and ds.val.nnz == ds.n_users  # 5-core: >= 3 each
    last_train = inter[inter.split == "train"].groupby("user")["timestamp"].max()
    val = inter[inter.split == "val"].set_index("user")["timestamp"]
    test = inter[inter.split == "test"].set_index("user")["timestamp"]
    assert (val >= last_train.reindex(val.index)).all()
    assert (test >= val.reindex(test.index)).all()


def test_same_input_same_seed_byte_identical(cli, tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        r = cli("data", "prepare", STEAM_HEAD, "--out", out, "--seed", "7")
        assert r.code == 0, r.err
        runs.append(tree_hashes(out))
    assert runs[0] == runs[1]
    assert {"interactions.parquet", "reviews.parquet", "users.parquet", "items.parquet",
            "manifest.json"} <= set(runs[0])
    out = tmp_path / "c"
    assert cli("data", "prepare", STEAM_HEAD, "--out", out, "--seed", "8").code == 0
    other = tree_hashes(out)
    assert other["interactions.parquet"] != runs[0]["interactions.parquet"]
    assert other["users.parquet"] == runs[0]["users.parquet"]  # ids do not depend on seed


def test_rating_threshold_and_kcore_options(cli, dataset, tmp_path: Path) -> None:
    from lmmrec.data.dataset import PreparedDataset

    out = tmp_path / "t"
    r = cli("data", "prepare", dataset("amazon-mi-2014"), "--out", out,
            "--rating-threshold", "4", "--kcore", "3", "--seed", "1")
    assert r.code == 0, r.err
    ds = PreparedDataset.load(out)
    assert ds.interactions["rating"].min() >= 4
    assert ds.interactions.groupby("user").size().min() >= 3
    assert ds.interactions.groupby("item").size().min() >= 3
    assert ds.manifest["filters"]["rating_threshold"] == 4
    assert ds.manifest["split"]["seed"] == 1


def test_dedup_keeps_latest_then_last_in_input() -> None:
    import pandas as pd

    from lmmrec.data.preprocess import prepare
    from lmmrec.data.readers._io import RawData, interactions_frame, items_frame

    cols = {"user_id": ["u", "u", "u", "v", "v"], "item_id": ["a", "a", "a", "b", "b"],
            "rating": [1, 5, 3, 2, 4], "timestamp": [10, 30, 30, -1, -1],
            "title": [None] * 5, "text": ["old", "late-first", "late-last", "x", "y"]}
    raw = RawData(interactions_frame(cols, Path("x")), items_frame(), [], "table")
    ds = prepare(raw, split="1:0:0")
    rv = ds._reviews.sort_values("user")
    assert rv["text"].tolist() == ["late-last", "y"]
    assert ds.interactions.sort_values("user")["rating"].tolist() == [3, 4]
    assert ds.manifest["stats"]["n_duplicates_dropped"] == 3
    assert isinstance(ds.interactions, pd.DataFrame)
