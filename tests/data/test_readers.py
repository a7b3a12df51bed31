"""Every reader on fixtures converted from the real data; format detection and forcing."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pandas as pd
import pytest

from .conftest import RLMREC_CUT, STEAM_HEAD, head_lines, write_gz

AMZ = "reviews_Musical_Instruments_5.json.gz"


def _amazon_rows(folder: Path, n: int = 2000) -> pd.DataFrame:
    return pd.read_json(folder / AMZ, lines=True, nrows=n)


@pytest.fixture
def amazon_rows(dataset) -> pd.DataFrame:
    return _amazon_rows(dataset("amazon-mi-2014"))


def test_detect_real_folders(dataset) -> None:
    """The shipped copies and the cuts of the others (same file names as the originals)."""
    from lmmrec.data.readers import detect_format

    expect = {STEAM_HEAD: "steam-au", dataset("amazon-mi-2014"): "amazon2014",
              dataset("amazon-beauty-2023-mini"): "amazon2023", RLMREC_CUT: "rlmrec"}
    for folder, fmt in expect.items():
        assert detect_format(folder) == fmt


def test_recbole_atomic_and_benchmark(cli, amazon_rows: pd.DataFrame, tmp_path: Path) -> None:
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.data.readers import detect_format

    inter = pd.DataFrame({"user_id:token": amazon_rows.reviewerID,
                          "item_id:token": amazon_rows.asin,
                          "rating:float": amazon_rows.overall,
                          "timestamp:float": amazon_rows.unixReviewTime.astype(float),
                          "review:token_seq": amazon_rows.reviewText.str.replace(
                              r"[\t\n\r]", " ", regex=True)})
    items = pd.DataFrame({"item_id:token": amazon_rows.asin.unique(),
                          "title:token_seq": "t", "categories:token_seq": "Music Gear"})
    folder = tmp_path / "rb"
    folder.mkdir()
    inter.to_csv(folder / "mi.inter", sep="\t", index=False)
    items.to_csv(folder / "mi.item", sep="\t", index=False)
    assert detect_format(folder) == "recbole"
    out = tmp_path / "o1"
    assert cli("data", "prepare", folder, "--out", out).code == 0
    ds = PreparedDataset.load(out)
    assert len(ds.interactions) == amazon_rows[["reviewerID", "asin"]].drop_duplicates().shape[0]
    assert ds.manifest["stats"]["n_reviews"] > 0 and (ds.items["tags"] == "Music Gear").all()

    bench = tmp_path / "rbb"
    bench.mkdir()
    thirds = {"train": inter.iloc[:1200], "valid": inter.iloc[1200:1600],
              "test": inter.iloc[1600:]}
    for split, part in thirds.items():
        part.to_csv(bench / f"mi.{split}.inter", sep="\t", index=False)
    out = tmp_path / "o2"
    assert cli("data", "prepare", bench, "--out", out).code == 0
    ds = PreparedDataset.load(out)
    assert ds.manifest["split"]["method"] == "given"
    assert ds.stats()["n_test"] == thirds["test"][["user_id:token", "item_id:token"]] \
        .drop_duplicates().shape[0]


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl", "parquet"])
def test_table_formats(cli, amazon_rows: pd.DataFrame, tmp_path: Path, suffix: str) -> None:
    from lmmrec.data.dataset import PreparedDataset

    df = amazon_rows.rename(columns={"reviewerID": "who", "asin": "what", "overall": "stars",
                                     "unixReviewTime": "when", "reviewText": "body"})
    df = df[["who", "what", "stars", "when", "body"]]
    path = tmp_path / f"t.{suffix}"
    if suffix == "parquet":
        df.to_parquet(path)
    elif suffix == "jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_csv(path, sep="\t" if suffix == "tsv" else ",", index=False)
    out = tmp_path / "o"
    r = cli("data", "prepare", path, "--out", out, "--columns",
            "user=who,item=what,rating=stars,time=when,text=body", "--split", "loo")
    assert r.code == 0, r.err
    ds = PreparedDataset.load(out)
    assert len(ds.interactions) == df[["who", "what"]].drop_duplicates().shape[0]
    assert ds.interactions["timestamp"].min() > 10**9
    assert ds.manifest["stats"]["n_reviews"] == len(ds.interactions)


def test_amazon2023_official_jsonl(cli, dataset, tmp_path: Path) -> None:
    """The official per-review layout, converted from the real mini file."""
    import gzip

    from lmmrec.data.dataset import PreparedDataset

    src = dataset("amazon-beauty-2023-mini")
    hist = json.loads(gzip.open(src / "history_reviews.json.gz", "rt").read())
    meta = json.loads(gzip.open(src / "meta_data.json.gz", "rt").read())
    rows, t = [], 1_600_000_000_000
    for user, items in hist.items():
        for asin, rv in items.items():
            t += 1000
            rows.append(json.dumps({**rv, "asin": asin + "X", "parent_asin": asin,
                                    "user_id": user, "timestamp": t}).encode() + b"\n")
    folder = tmp_path / "off"
    write_gz(folder / "All_Beauty.jsonl.gz", rows)
    write_gz(folder / "meta_All_Beauty.jsonl.gz",
             [json.dumps({**m, "parent_asin": a}).encode() + b"\n" for a, m in meta.items()])
    out = tmp_path / "o"
    assert cli("data", "prepare", folder, "--out", out).code == 0
    ds = PreparedDataset.load(out)
    assert ds.manifest["format"] == "amazon2023"
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (253, 352, 2282)
    assert ds.interactions["timestamp"].min() > 1_600_000_000  # ms -> s
    assert (ds.items["title"] != "").all()


def test_steam_original_python_literal_layout(cli, tmp_path: Path) -> None:
    """UCSD's australian_user_reviews.json.gz: one user per line, Python literals."""
    from lmmrec.data.dataset import PreparedDataset

    by_user: dict[str, list[dict]] = {}
    for line in head_lines(STEAM_HEAD / "user_reviews.jsonl.gz", 500):
        rec = json.loads(line)
        by_user.setdefault(rec.pop("user_id"), []).append(rec)
    folder = tmp_path / "orig"
    write_gz(folder / "australian_user_reviews.json.gz",
             [repr({"user_id": u, "reviews": rs}).encode() + b"\n" for u, rs in by_user.items()])
    out = tmp_path / "o"
    r = cli("data", "prepare", folder, "--out", out, "--kcore", "0")
    assert r.code == 0, r.err
    ds = PreparedDataset.load(out)
    assert ds.manifest["format"] == "steam-au" and ds.n_users == len(by_user)


def test_forced_format_and_unknown_format(cli, tmp_path: Path) -> None:
    folder = tmp_path / "rl"
    shutil.copytree(RLMREC_CUT, folder)
    (folder / "extra.csv").write_text("a,b\n1,2\n")
    out = tmp_path / "o"
    r = cli("data", "prepare", folder, "--out", out, "--format", "nope")
    assert r.code == 2 and "unknown format" in r.err and not out.exists()
    assert cli("data", "prepare", folder, "--out", out, "--format", "rlmrec").code == 0
    assert json.loads((out / "manifest.json").read_text())["format"] == "rlmrec"


def test_known_name_resolves_through_data_dir(cli, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """$LMMREC_DATA_DIR's copy first, the shipped copy when it has none, else a clear error."""
    from lmmrec.data.catalog import embedded, resolve

    root = tmp_path / "data"
    write_gz(root / "amazon-mi-2014" / AMZ, head_lines(embedded("amazon-mi-2014") / AMZ, 400))
    monkeypatch.setenv("LMMREC_DATA_DIR", str(root))
    r = cli("data", "prepare", "amazon-mi-2014", "--out", tmp_path / "o", "--kcore", "0")
    assert r.code == 0, r.err
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["name"] == "amazon-mi-2014"
    assert m["stats"]["n_raw_rows"] == 400  # the cut in LMMREC_DATA_DIR, not the shipped file
    r = cli("data", "prepare", "amazon-beauty-2023-mini", "--out", tmp_path / "b")
    assert r.code == 0, r.err  # not in LMMREC_DATA_DIR: the copy shipped in the package
    monkeypatch.delenv("LMMREC_DATA_DIR")
    path, name, known = resolve("amazon-mi-2014")
    assert path == embedded("amazon-mi-2014") and known is not None and known.kcore == 5
    r = cli("data", "prepare", "steam-au", "--out", tmp_path / "s")
    assert r.code == 2 and "LMMREC_DATA_DIR is not set" in r.err
    assert "lmmrec data download steam-au" in r.err
    r = cli("data", "prepare", "no-such-dataset", "--out", tmp_path / "x")
    assert r.code == 2 and "not a known dataset" in r.err


def test_rlmrec_pickle_roundtrip_of_csr(tmp_path: Path) -> None:
    from lmmrec.data.readers.rlmrec import load_matrix

    m = load_matrix(RLMREC_CUT / "tst_mat.pkl")
    p = tmp_path / "csr.pkl"
    p.write_bytes(pickle.dumps(m.tocsr()))
    assert load_matrix(p).nnz == m.nnz
