"""No val/test review text can reach leakage.training_reviews / entity_texts.

Every review of a real-data fixture gets a unique marker naming its pair; after
preparing, markers of val/test pairs must be absent from everything the guard returns
and markers of train pairs present.
"""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import head_lines, write_gz


def test_no_val_test_text_reaches_training_side(cli, dataset, tmp_path: Path) -> None:
    from lmmrec.data import leakage
    from lmmrec.data.dataset import PreparedDataset

    lines = head_lines(dataset("amazon-mi-2014") / "reviews_Musical_Instruments_5.json.gz", 3000)
    planted = []
    for line in lines:
        rec = json.loads(line)
        rec["reviewText"] = f"MARK|{rec['reviewerID']}|{rec['asin']}| {rec['reviewText']}"
        rec["summary"] = f"TMARK|{rec['reviewerID']}|{rec['asin']}"
        planted.append((json.dumps(rec) + "\n").encode())
    src = tmp_path / "amz"
    write_gz(src / "reviews_Musical_Instruments_5.json.gz", planted)
    out = tmp_path / "prep"
    r = cli("data", "prepare", src, "--out", out, "--kcore", "2")
    assert r.code == 0, r.err
    ds = PreparedDataset.load(out)
    inter = ds.interactions
    uid, iid = ds.user_ids, ds.item_ids

    def marker(row) -> str:
        return f"MARK|{uid[row.user]}|{iid[row.item]}|"

    held_out = {marker(r) for r in inter[inter.split != "train"].itertuples()}
    trained = {marker(r) for r in inter[inter.split == "train"].itertuples()}
    assert len(held_out) > 500 and len(trained) > 1000

    tr = leakage.training_reviews(ds)
    blob = "\n".join(tr["text"].tolist() + tr["title"].tolist())
    assert not [m for m in held_out if m in blob]
    assert not [m for m in held_out if "T" + m in blob]
    assert all(m in blob for m in trained)  # positive control: train text does flow

    test_users = inter.loc[inter.split != "train", "user"].unique()[:40]
    test_items = inter.loc[inter.split != "train", "item"].unique()[:40]
    seen = [t for u in test_users for t in leakage.entity_texts(ds, "user", int(u))]
    seen += [t for i in test_items for t in leakage.entity_texts(ds, "item", int(i))]
    assert seen and not [m for m in held_out if any(m in t for t in seen)]
    pairs = leakage.training_pairs(ds)
    assert {tuple(m.split("|")[1:3]) for m in held_out}.isdisjoint(pairs)


def test_extraction_reviews_label_splits(prepared) -> None:
    from lmmrec.data import leakage

    ds = prepared("amazon-mi-2014")
    ex = leakage.extraction_reviews(ds)
    assert len(ex) == 10261
    assert ex["split"].iloc[0] == "train" and ex["split"].iloc[-1] == "test"
