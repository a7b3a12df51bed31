"""Tables users bring: split folders and split columns keep their split, ambiguous folders
are refused with their file list, .json.gz is JSON lines, and prepare says its settings."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

OWN = Path(__file__).resolve().parents[1] / "fixtures" / "own-data"


def _rows(folder: Path) -> pd.DataFrame:
    parts = []
    for name, split in (("trn", "train"), ("val", "val"), ("tst", "test")):
        df = pd.read_csv(folder / f"total_{name}.csv", dtype=str)
        parts.append(df.assign(split=split))
    return pd.concat(parts, ignore_index=True)


def _split_pairs(out: Path) -> set[tuple[str, str, str]]:
    from lmmrec.data.dataset import PreparedDataset

    ds = PreparedDataset.load(out)
    inter = ds.interactions
    users = ds.users["raw_id"].astype(str).to_numpy()[inter["user"].to_numpy()]
    items = ds.items["raw_id"].astype(str).to_numpy()[inter["item"].to_numpy()]
    return set(zip(users, items, inter["split"], strict=True))


def test_split_folder_keeps_every_file_and_its_split(cli, tmp_path: Path) -> None:
    src = OWN / "split-files"
    expect = {(r.user_id, r.item_id, r.split) for r in _rows(src).itertuples()}
    for args in ([], ["--split", "keep"]):
        out = tmp_path / f"o{len(args)}"
        r = cli("data", "prepare", src, "--out", out, "--format", "table", *args)
        assert r.code == 0, r.err
        assert _split_pairs(out) == expect  # all three files read, each row in its split
        assert "split kept from the input (split files)" in r.out
        m = json.loads((out / "manifest.json").read_text())
        assert m["split"] == {"method": "given", "requested": "keep", "from": "split files"}
        assert [s["file"] for s in m["sources"]] == ["total_trn.csv", "total_val.csv",
                                                     "total_tst.csv"]
    # an explicit ratio splits anew, and says so
    out = tmp_path / "ratio"
    r = cli("data", "prepare", src, "--out", out, "--split", "2:1:1", "--seed", "5")
    assert r.code == 0, r.err
    assert "split 2:1:1 (seed 5)" in r.out
    assert _split_pairs(out) != expect


def test_split_column_is_kept(cli, tmp_path: Path) -> None:
    src = OWN / "split-column.csv"
    df = pd.read_csv(src, dtype=str)
    names = {"train": "train", "valid": "val", "test": "test"}
    expect = {(r.uid, r.iid, names[r.split]) for r in df.itertuples()}
    out = tmp_path / "o"
    r = cli("data", "prepare", src, "--out", out)
    assert r.code == 0, r.err
    assert _split_pairs(out) == expect
    assert "split kept from the input (split column)" in r.out
    bad = tmp_path / "bad.csv"
    bad.write_text(src.read_text().replace(",valid\n", ",holdout\n", 1))
    r = cli("data", "prepare", bad, "--out", tmp_path / "o2")
    assert r.code == 2 and "'holdout'" in r.err and "line" in r.err and "split" in r.err
    assert not (tmp_path / "o2").exists()


def test_keep_without_a_split_is_refused(cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    pd.read_csv(OWN / "split-column.csv").drop(columns="split").to_csv(plain, index=False)
    r = cli("data", "prepare", plain, "--out", tmp_path / "o", "--split", "keep")
    assert r.code == 2 and "no split of its own" in r.err


@pytest.mark.parametrize("extra", [["total.csv"], ["other.csv"], ["total_trn2.csv"]])
def test_ambiguous_folder_lists_its_files(cli, tmp_path: Path, extra: list[str]) -> None:
    folder = tmp_path / "data"
    shutil.copytree(OWN / "split-files", folder)
    for name in extra:
        if name == "total_trn2.csv":
            name = "more_train.csv"
        shutil.copy(folder / "total_trn.csv", folder / name)
    r = cli("data", "prepare", folder, "--out", tmp_path / "o", "--format", "table")
    assert r.code == 2
    for p in folder.iterdir():
        assert p.name in r.err, (p.name, r.err)
    assert len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_two_plain_tables_are_ambiguous(cli, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("a.csv", "b.csv"):
        shutil.copy(OWN / "split-column.csv", folder / name)
    r = cli("data", "prepare", folder, "--out", tmp_path / "o")
    assert r.code == 2 and "a.csv" in r.err and "b.csv" in r.err


def test_json_gz_is_json_lines(cli, tmp_path: Path) -> None:
    src = OWN / "Beauty_5.json.gz"
    raw = pd.read_json(src, lines=True)
    for target in (src, tmp_path / "folder"):
        if target != src:
            target.mkdir()
            shutil.copy(src, target / src.name)
        out = tmp_path / f"o-{target.name}"
        r = cli("data", "prepare", target, "--out", out, "--format", "table")
        assert r.code == 0, r.err
        pairs = _split_pairs(out)
        assert {(u, i) for u, i, _ in pairs} == set(zip(raw.reviewerID, raw.asin, strict=True))
        assert "1 duplicate rows merged" in r.out


def test_summary_names_defaults_and_removals(cli, tmp_path: Path) -> None:
    src = OWN / "split-column.csv"
    plain = tmp_path / "plain.csv"
    pd.read_csv(src).drop(columns="split").to_csv(plain, index=False)
    r = cli("data", "prepare", plain, "--out", tmp_path / "o", "--rating-threshold", "2",
            "--kcore", "2")
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    st = m["stats"]
    line = r.out.splitlines()[1]
    assert "k-core 2" in line and "split 3:1:1 (seed 2024)" in line and "rating >= 2" in line
    assert (f"{st['n_below_rating_threshold']} below the rating threshold, "
            f"{st['n_kcore_dropped']} by the k-core") in line
    assert st["n_below_rating_threshold"] > 0
    kept = pd.read_csv(plain)
    assert st["n_below_rating_threshold"] == int((kept["rating"] < 2).sum())
    r = cli("data", "prepare", plain, "--out", tmp_path / "o2")
    assert "k-core off (0)" in r.out and "no rating threshold" in r.out
    # a catalogue this small saturates Recall@20: said on stderr
    assert "warning: only 6 items: Recall@20" in r.err


def _write(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "rating"])
        w.writerows(rows)
    return path


def test_warns_when_merging_duplicates_breaks_a_kcore(cli, tmp_path: Path) -> None:
    # every user and item has 2 rows, but u1-i1 twice: after merging, u1 and i1 have one
    rows = [("u1", "i1", 5), ("u1", "i1", 4), ("u2", "i2", 5), ("u2", "i3", 5),
            ("u3", "i2", 5), ("u3", "i3", 5)]
    r = cli("data", "prepare", _write(tmp_path / "k.csv", rows), "--out", tmp_path / "o",
            "--split", "1:1:1")
    assert r.code == 0, r.err
    assert "looks 2-core" in r.err and "1 of 3 users and 1 of 3 items" in r.err
    assert "--kcore 2" in r.err
    r = cli("data", "prepare", tmp_path / "k.csv", "--out", tmp_path / "o2", "--kcore", "2",
            "--split", "1:1:1")
    assert "looks 2-core" not in r.err


def test_warns_when_loo_has_no_time(cli, tmp_path: Path) -> None:
    rows = [(f"u{u}", f"i{i}", 5) for u in range(4) for i in range(4)]
    r = cli("data", "prepare", _write(tmp_path / "l.csv", rows), "--out", tmp_path / "o",
            "--split", "loo")
    assert r.code == 0, r.err
    assert "loo without a time column" in r.err
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert any("loo without a time column" in w for w in m["warnings"])
    r = cli("data", "prepare", OWN / "split-column.csv", "--out", tmp_path / "o2",
            "--split", "loo")
    assert r.code == 0 and "loo without" not in r.err
