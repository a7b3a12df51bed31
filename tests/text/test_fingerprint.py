"""Artifacts are matched to data by the interactions' fingerprint, not the file's name; old
artifacts without one still load by name; stats and export count the same, labelled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lmmrec.data.dataset import PreparedDataset
from lmmrec.errors import DataError
from lmmrec.text.profiles import amass

OWN = Path(__file__).resolve().parents[1] / "fixtures" / "own-reviews" / "reviews.csv"
COLUMNS = "user=customer,item=product,rating=stars,time=date,text=review"


def _prepare(cli, src: Path, out: Path, *extra: str) -> PreparedDataset:
    r = cli("data", "prepare", src, "--out", out, "--columns", COLUMNS, *extra)
    assert r.code == 0, r.err
    return PreparedDataset.load(out)


def _store(ds: PreparedDataset, path: Path, n: int | None = None) -> Path:
    """A store as an extraction leaves it: the first ``n`` texts answered, one failed."""
    from lmmrec.llm.inputs import review_inputs
    from lmmrec.llm.store import Record, Store

    inputs = review_inputs(ds, "review_v1")
    hashes = list(dict.fromkeys(i.input_hash() for i in inputs))[:n]
    with Store(path, "test:model", "review_v1") as st:
        for k, inp in enumerate(i for i in inputs if i.input_hash() in hashes):
            if k == 0:
                st.put(Record("test:model", "review_v1", inp.input_hash(), inp.user_id,
                              inp.item_id, "failed", error="bad answer"))
                continue
            words = inp.text.lower().strip(".").split()[:2] or ["plain"]
            st.put(Record("test:model", "review_v1", inp.input_hash(), inp.user_id,
                          inp.item_id, "ok", parsed={"why": "", "pos": [" ".join(words)],
                                                     "neg": [], "attr": ["good value"]}))
    return path


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory):
    """(prepared data, its embedded artifact) from the own-reviews CSV."""
    from lmmrec.data.pipeline import prepare_to
    from lmmrec.text.artifact import export_artifact
    from lmmrec.text.embed import embed_artifact

    root = tmp_path_factory.mktemp("fp")
    data = root / "data"
    prepare_to(str(OWN), data, columns=COLUMNS)
    ds = PreparedDataset.load(data)
    art = root / "art"
    export_artifact(_store(ds, root / "s.sqlite"), art, data)
    embed_artifact(art)
    return data, art


def test_renamed_file_still_matches_its_artifact(cli, artifact, tmp_path: Path) -> None:
    data, art = artifact
    m = json.loads((art / "manifest.json").read_text())
    ds = PreparedDataset.load(data)
    assert m["interactions_fingerprint"] == ds.fingerprint == ds.manifest[
        "interactions_fingerprint"]
    renamed = tmp_path / "my-shop-export.csv"
    shutil.copy(OWN, renamed)
    # another name, another split: the same interactions
    other = _prepare(cli, renamed, tmp_path / "renamed", "--split", "2:1:1", "--seed", "9")
    assert other.name != ds.name and other.fingerprint == ds.fingerprint
    p = amass(other, art)
    assert p.stats["train_reviews_used"] > 0
    # the old check, for an artifact exported before fingerprints: the name decides
    old = tmp_path / "old-art"
    shutil.copytree(art, old)
    del m["interactions_fingerprint"]
    (old / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataError, match="artifact is for dataset"):
        amass(other, old)
    assert amass(ds, old).stats["train_reviews_used"] == amass(ds, art).stats[
        "train_reviews_used"]


def test_other_interactions_do_not_match(cli, artifact, tmp_path: Path) -> None:
    _, art = artifact
    changed = tmp_path / "reviews.csv"  # the same name, other people
    text = OWN.read_text().replace("\nC0", "\nX0").replace("\nC1", "\nX1")
    changed.write_text(text)
    other = _prepare(cli, changed, tmp_path / "other")
    assert other.name == json.loads((art / "manifest.json").read_text())["dataset"]
    with pytest.raises(DataError, match="ids do not match this dataset"):
        amass(other, art)


def test_released_artifacts_without_fingerprint_still_load(beauty_dir: Path) -> None:
    from lmmrec.text.artifact import read_manifest

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "motivations-beauty-mini"
    release = Path(__file__).resolve().parents[2] / "releases" / "motivations"
    for folder in (fixture, release / "amazon-beauty-2023-mini"):
        assert "interactions_fingerprint" not in read_manifest(folder)
    ds = PreparedDataset.load(beauty_dir)
    p = amass(ds, release / "amazon-beauty-2023-mini")  # embedded release: matched by name
    assert p.stats["train_reviews_used"] > 0


def test_stats_and_export_report_the_same_labelled_units(cli, artifact, tmp_path) -> None:
    data, _ = artifact
    ds = PreparedDataset.load(data)
    store = _store(ds, tmp_path / "partial.sqlite", n=6)
    r = cli("extract", "stats", "--store", store, "--data", data, "--json")
    assert r.code == 0, r.err
    stats = json.loads(r.out)
    r = cli("extract", "export", "--store", store, "--data", data, "--out", tmp_path / "a")
    assert r.code == 0, r.err
    exported = json.loads(r.out)
    assert stats["reviews"] == exported["reviews"] and stats["texts"] == exported["texts"]
    assert stats["texts"] == {"total": stats["texts"]["total"], "extracted": 5, "failed": 1,
                              "pending": stats["texts"]["total"] - 6}
    assert stats["pending"] == stats["texts"]["pending"]  # the unlabelled key counts texts
    assert exported["pending"] == exported["reviews"]["pending"]  # export's: reviews
    # identical review texts share one request: more reviews than texts here
    assert exported["reviews"]["total"] > exported["texts"]["total"]
    assert "texts" in stats["unit"]
