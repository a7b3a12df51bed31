"""Counts of the real datasets after preparation match the published numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_steam_au_5core(prepared) -> None:
    ds = prepared("steam-au")
    s = ds.stats()
    assert (s["n_users"], s["n_items"], s["n_interactions"]) == (2416, 577, 15324)
    m = ds.manifest
    assert m["filters"]["kcore"] == 5 and m["split"] == {"method": "3:1:1", "seed": 2024,
                                                          "requested": "3:1:1"}
    assert m["stats"]["n_raw_rows"] == 59305 and m["stats"]["n_duplicates_dropped"] == 874
    assert m["stats"]["n_reviews"] > 15000
    # every user and item has at least 5 interactions (k-core holds)
    assert ds.interactions.groupby("user").size().min() >= 5
    assert ds.interactions.groupby("item").size().min() >= 5
    # item side text from steam_games: titles and joined genres+tags
    assert (ds.items["title"] != "").mean() > 0.8  # ~12% of games lack metadata
    assert ds.items["tags"].str.contains("Action").any()


def test_steam_sources_checksummed(prepared, data_dir: Path) -> None:
    sums = dict(line.split()[::-1] for line in
                (data_dir / "SHA256SUMS").read_text().splitlines() if line.strip())
    for src in prepared("steam-au").manifest["sources"]:
        assert sums[f"./steam-au/{src['file']}"] == src["sha256"]


def test_amazon_mi_2014(prepared) -> None:
    ds = prepared("amazon-mi-2014")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (1429, 900, 10261)
    assert ds.manifest["stats"]["n_reviews"] == 10261
    assert ds.interactions["timestamp"].min() > 10**9  # unixReviewTime kept
    assert set(ds.interactions["rating"].unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


@pytest.mark.parametrize("name,shape,counts", [
    ("rlmrec-amazon", (11000, 9332), (120464, 40290, 40106)),
    ("rlmrec-yelp", (11091, 11010), (166620, 55479, 55436)),
])
def test_rlmrec_splits_kept(prepared, dataset, name, shape, counts) -> None:
    from lmmrec.data.readers.rlmrec import load_matrix

    ds = prepared(name)
    assert (ds.n_users, ds.n_items) == shape
    assert (ds.train.nnz, ds.val.nnz, ds.test.nnz) == counts
    assert ds.manifest["split"]["method"] == "given"
    # ids are the matrix indices: the prepared train matrix equals the pickled one
    trn = load_matrix(dataset(name) / "trn_mat.pkl").tocsr()
    assert (ds.train != (trn > 0).astype("float32")).nnz == 0


def test_amazon_2023_mini(prepared) -> None:
    ds = prepared("amazon-beauty-2023-mini")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (253, 352, 2282)
    assert (ds.items["title"] != "").all()
    assert (ds.interactions["timestamp"] == -1).all()


def test_stats_json(cli, prepared) -> None:
    ds = prepared("amazon-mi-2014")
    r = cli("data", "stats", ds.root, "--json")
    assert r.code == 0
    s = json.loads(r.out)
    assert {k: s[k] for k in ("n_users", "n_items")} == {"n_users": 1429, "n_items": 900}
    assert s["n_train"] + s["n_val"] + s["n_test"] == 10261
