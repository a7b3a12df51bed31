"""Noise injection: fake training interactions (RLMRec's protocol) and motivation-text noise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lmmrec.data.dataset import PreparedDataset
from lmmrec.experiment.noise import inject_interactions, noise_text
from lmmrec.text.artifact import FORMAT, load_reviews, write_manifest
from lmmrec.text.embed import load_embeddings


def _pairs(df: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(df["user"].tolist(), df["item"].tolist(), strict=True))


@pytest.mark.parametrize("share", [0.05, 0.25])
def test_fake_interactions_exact_share_train_only_no_duplicates(beauty, tmp_path, share):
    clean = PreparedDataset.load(beauty)
    rec = inject_interactions(beauty, tmp_path / "noised", share, seed=7)
    noised = PreparedDataset.load(tmp_path / "noised")
    n_train = len(clean.split_frame("train"))
    n_add = round(share * n_train)
    assert rec["n_added"] == n_add and n_add > 0
    assert len(noised.split_frame("train")) == n_train + n_add
    for split in ("val", "test"):  # untouched, row for row
        pd.testing.assert_frame_equal(clean.split_frame(split).reset_index(drop=True),
                                      noised.split_frame(split).reset_index(drop=True))
    old_train, new_train = _pairs(clean.split_frame("train")), _pairs(noised.split_frame("train"))
    assert old_train <= new_train
    fake = new_train - old_train
    assert len(fake) == n_add  # distinct pairs, none equal to an existing one
    assert not fake & _pairs(clean.interactions)  # not in ANY split
    assert not noised.interactions.duplicated(["user", "item"]).any()
    listed = pd.read_parquet(tmp_path / "noised" / "noise_pairs.parquet")
    assert _pairs(listed) == fake
    assert noised.name == clean.name and noised.n_users == clean.n_users
    assert noised.manifest["noise"]["share"] == share
    assert noised.manifest["stats"]["n_train"] == n_train + n_add
    assert noised.train.sum() == n_train + n_add


def test_fake_interactions_are_seeded(beauty, tmp_path):
    inject_interactions(beauty, tmp_path / "a", 0.1, seed=1)
    inject_interactions(beauty, tmp_path / "b", 0.1, seed=1)
    inject_interactions(beauty, tmp_path / "c", 0.1, seed=2)
    a, b, c = (pd.read_parquet(tmp_path / x / "interactions.parquet") for x in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert _pairs(a) != _pairs(c)


def _artifact(root, n_reviews: int = 60, seed: int = 0):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(seed)
    vocab = [f"phrase {k}" for k in range(40)]
    rows = []
    for r in range(n_reviews):
        ok = r % 10 != 9
        pick = lambda n: [vocab[j] for j in rng.choice(40, n, replace=False)]  # noqa: E731
        rows.append({"input_hash": f"h{r}", "user_id": f"u{r % 12}", "item_id": f"i{r % 17}",
                     "status": "ok" if ok else "failed", "why": "",
                     "pos": pick(int(rng.integers(1, 5))) if ok else [],
                     "neg": pick(int(rng.integers(0, 3))) if ok else [],
                     "attr": pick(int(rng.integers(1, 4))) if ok else [],
                     "error": "" if ok else "bad json"})
    root.mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(root / "reviews.parquet", index=False)
    pd.DataFrame({"text": vocab}).to_parquet(root / "phrases.parquet", index=False)
    np.save(root / "embeddings.npy", rng.normal(size=(40, 8)).astype(np.float16))
    write_manifest(root, {"format": FORMAT, "dataset": "toy", "model_id": "m",
                          "prompt_version": "v1", "embedding": {"dim": 8}})
    return root


@pytest.mark.parametrize("share", [0.1, 0.25])
def test_text_noise_replaces_the_requested_share(tmp_path, share):
    src = _artifact(tmp_path / "clean")
    rec = noise_text(src, tmp_path / "noised", share, seed=3)
    before = pd.read_parquet(src / "reviews.parquet")
    after = pd.read_parquet(tmp_path / "noised" / "reviews.parquet")
    ok = before["status"] == "ok"
    for col in ("pos", "neg", "attr"):
        n_slots = sum(len(x) for x in before.loc[ok, col])
        changed = 0
        for r in range(len(before)):
            old, new = list(before.at[r, col]), list(after.at[r, col])
            assert len(old) == len(new)  # phrases replaced, never added or dropped
            for j, (o, n) in enumerate(zip(old, new, strict=True)):
                if o == n:
                    continue
                changed += 1
                # the replacement comes from a review of another user and another item
                donors = before[(before["user_id"] != before.at[r, "user_id"])
                                & (before["item_id"] != before.at[r, "item_id"]) & ok]
                assert any(n in list(x) for x in donors[col]), (r, j, n)
        assert changed == round(share * n_slots) == rec["n_replaced"][col]
    assert (after.loc[~ok, ["pos", "neg", "attr"]].map(len) == 0).all().all()
    m = json.loads((tmp_path / "noised" / "manifest.json").read_text())
    assert m["noise"]["share"] == share and m["dataset"] == "toy"
    # embeddings copied and still cover every phrase of the noised artifact
    texts, emb = load_embeddings(tmp_path / "noised")
    assert emb.shape == (40, 8)
    used = {p for c in ("pos", "neg", "attr") for x in load_reviews(tmp_path / "noised")[c]
            for p in x}
    assert used <= set(texts)


def test_text_noise_keeps_item_offers(tmp_path):
    """Listings are not reviews: a noised artifact keeps the item offers unchanged, so each
    level differs from level 0 by the review phrases alone."""
    src = _artifact(tmp_path / "clean")
    offers = pd.DataFrame({"input_hash": ["x1"], "item_id": ["i3"], "status": ["ok"],
                           "what": [""], "attr": [["p1 word", "p2 word"]], "serves": [[]],
                           "error": [""]})
    offers.to_parquet(src / "items.parquet", index=False)
    noise_text(src, tmp_path / "noised", 0.25, seed=1)
    kept = pd.read_parquet(tmp_path / "noised" / "items.parquet")
    assert kept["attr"].map(list).tolist() == [["p1 word", "p2 word"]]


def test_text_noise_is_seeded(tmp_path):
    src = _artifact(tmp_path / "clean")
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        noise_text(src, tmp_path / name, 0.2, seed=seed)
    a, b, c = (pd.read_parquet(tmp_path / x / "reviews.parquet") for x in "abc")
    assert a["pos"].map(list).tolist() == b["pos"].map(list).tolist()
    assert a["pos"].map(list).tolist() != c["pos"].map(list).tolist()


def test_degradation_slopes_and_the_paired_test(tmp_path):
    """Hand-made runs: base loses 10 % of its clean Recall@20 per 10 points of noise,
    lmmrec 5 %; the slope is per seed and relative, so different clean levels compare."""
    from lmmrec.experiment.noise import noise_markdown, noise_summary, relative_slope

    cells = []
    for method, loss in (("base", 0.10), ("lmmrec", 0.05)):
        for seed, clean in ((1, 0.20), (2, 0.22), (3, 0.18), (4, 0.21)):
            jitter = 0.002 * seed if method == "lmmrec" else 0.0  # slopes differ by seed
            for level in (0.0, 0.1, 0.2):
                d = tmp_path / method / f"seed{seed}" / f"l{level}"
                d.mkdir(parents=True)
                v = clean * (1 - (loss + jitter) * level * 10)
                (d / "metrics.json").write_text(json.dumps({"test": {"recall@20": v}}))
                cells.append({"backbone": "lightgcn", "variant": method, "seed": seed,
                              "level": level, "dir": str(d)})
    s = noise_summary(cells, "recall@20")
    slopes = {r["method"]: r for r in s["degradation"]}
    assert slopes["base"]["slope_pct_per_10pt"] == pytest.approx(-10.0)
    assert slopes["lmmrec"]["slope_pct_per_10pt"] == pytest.approx(-5.5)  # 5 + 0.2*2.5
    assert slopes["lmmrec"]["n"] == 4
    (t,) = s["degradation_tests"]
    assert (t["focus"], t["method"], t["n_pairs"]) == ("lmmrec", "base", 4)
    assert t["diff_mean"] == pytest.approx(4.5) and t["t_p"] < 0.01
    md = noise_markdown(s)
    assert "| lightgcn | lmmrec vs base | 4 | +4.50 |" in md
    assert relative_slope({0.1: 0.2, 0.2: 0.1}) is None  # no clean run
