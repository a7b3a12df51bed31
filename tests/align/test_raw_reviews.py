"""The no-LLM ablation (align.text_input=reviews): raw training reviews as the text side."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmmrec.data.dataset import PreparedDataset
from lmmrec.text.embed import embed_texts
from lmmrec.text.inputs import raw_review_inputs


@pytest.mark.slow
def test_raw_review_inputs_use_training_reviews_only(beauty_dir):
    ds = PreparedDataset.load(beauty_dir)
    inp = raw_review_inputs(ds)
    train = ds.train.tocoo()
    train_pairs = set(zip(train.row.tolist(), train.col.tolist(), strict=True))
    # review r belongs to user_rows.row[r] and item_rows.row[r] (one entry per column)
    users = inp.user_rows.row[torch.argsort(inp.user_rows.col)].numpy()
    items = inp.item_rows.row[torch.argsort(inp.item_rows.col)].numpy()
    pairs = set(zip(users.tolist(), items.tolist(), strict=True))
    assert pairs == train_pairs  # every training review, and nothing else
    assert inp.phrases.shape == (len(train_pairs), 384)
    # each entity pools its reviews uniformly
    sums = np.bincount(inp.user_rows.row.numpy(), weights=inp.user_rows.val.numpy())
    assert np.allclose(sums[sums > 0], 1.0)
    # no validation or test review text is among the vectors
    held = ds.load_reviews().merge(ds.split_frame("test")[["user", "item"]],
                                   on=["user", "item"])
    probe = embed_texts([str(t) for t in held["text"].head(20)])
    sims = torch.from_numpy(probe) @ inp.phrases.T
    assert float(sims.max()) < 0.999


def test_lmmrec_trains_on_raw_reviews(beauty_dir, beauty_motivations, tmp_path):
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    cfg = resolve_config("lightgcn", [], ["train.max_epochs=2", "train.eval_every=1",
                                          "train.progress=false", "train.threads=1",
                                          "align.text_input=reviews"],
                         base={"data": str(beauty_dir), "method": "lmmrec",
                               "motivations": str(beauty_motivations)})
    out = fit(cfg, tmp_path / "run")
    assert out["test"]["recall@20"] > 0
    # the motivations' coverage of this split travels with the run's metrics
    assert 0 < out["text"]["train_reviews_used"] <= out["text"]["train_interactions"]
    losses = [ln for ln in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
              if '"loss"' in ln]
    # one batch an epoch here: the first step of the run aligns (align.every counts steps)
    assert losses and '"coord"' in losses[0] and '"mcs"' in losses[0]


def test_phrases_and_reviews_side_by_side(beauty_dir, beauty_motivations):
    """align.text_input=phrases+reviews: one vocabulary of both; an entity's pooled vector
    is the mean of its phrase-pooled and review-pooled vectors (or the one it has)."""
    from lmmrec.align.encoders import TextEncoder
    from lmmrec.text.inputs import SparseRows, build_inputs, combined_inputs
    from lmmrec.text.profiles import amass

    ds = PreparedDataset.load(beauty_dir)
    ph, rv = build_inputs(amass(ds, beauty_motivations)), raw_review_inputs(ds)
    # user 0 as if none of its reviews had phrases: the review side must stand alone
    r = ph.user_rows
    keep = r.row != 0
    ph.user_rows = SparseRows(r.row[keep], r.col[keep], r.val[keep], r.n_rows)
    ph.user_has_text = ph.user_rows.has_rows()
    both = combined_inputs(ph, rv)
    assert both.phrases.shape[0] == ph.phrases.shape[0] + rv.phrases.shape[0]
    enc = TextEncoder(both.text_dim, 1)
    pooled = {k: (enc.pool(x.user_rows, x.phrases), x.user_has_text)
              for k, x in (("ph", ph), ("rv", rv), ("both", both))}
    has_ph, has_rv = pooled["ph"][1], pooled["rv"][1]
    two = has_ph & has_rv
    assert two.sum() > 0
    expected = 0.5 * (pooled["ph"][0] + pooled["rv"][0])
    assert torch.allclose(pooled["both"][0][two], expected[two], atol=1e-5)
    one = has_rv & ~has_ph  # reviews but no extracted phrases: the review side alone
    assert bool(one[0]) and int(one.sum()) >= 1
    assert torch.allclose(pooled["both"][0][one], pooled["rv"][0][one], atol=1e-5)
    assert torch.equal(both.user_has_text, has_ph | has_rv)
    # coordination still pairs the motivations of two reviews
    assert both.review_user_vec is ph.review_user_vec


def test_raw_reviews_train_without_any_motivations(cli, tmp_path):
    """align.text_input=reviews: no --motivations, no extraction; the prepared data's
    review text is the whole text side."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "fixtures" / "own-reviews" / "reviews.csv"
    data = tmp_path / "prepared"
    r = cli("data", "prepare", src, "--out", data,
            "--columns", "user=customer,item=product,rating=stars,time=date,text=review")
    assert r.code == 0, r.err
    r = cli("train", "--backbone", "lightgcn", "--data", data, "--out", tmp_path / "run",
            "--method", "lmmrec", "--set", "align.text_input=reviews",
            "--set", "train.max_epochs=2", "--set", "train.eval_every=1",
            "--set", "train.progress=false", "--set", "train.threads=1",
            "--set", "eval.ks=[1,3,5]", "--set", "eval.select=recall@5")
    assert r.code == 0, r.err
    import json

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    text = metrics["text"]
    ds = PreparedDataset.load(data)
    with_text = ds.load_reviews().merge(ds.split_frame("train")[["user", "item"]])
    assert text["text_input"] == "reviews"
    assert text["train_reviews_used"] == int((with_text["text"].str.len() > 0).sum()) > 0
    assert text["train_interactions"] == ds.train.nnz
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["motivations"] is None


def test_rank_on_reviews_and_explain_with_phrases(beauty_dir, beauty_motivations, tmp_path):
    """align.text_input=reviews with --motivations: the raw reviews are the text side the
    model trains on, and the artifact's phrases (grounded, no verdicts) give the reasons."""
    from lmmrec.explain.recommender import Recommender
    from lmmrec.llm.grounding import is_grounded, is_verdict
    from lmmrec.text.profiles import own_texts
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    cfg = resolve_config("lightgcn", [], ["train.max_epochs=2", "train.progress=false",
                                          "train.threads=1", "align.text_input=reviews"],
                         base={"data": str(beauty_dir), "method": "lmmrec",
                               "motivations": str(beauty_motivations)})
    out = fit(cfg, tmp_path / "run")
    assert out["text"]["text_input"] == "reviews"  # trained on the reviews ...
    rec = Recommender.load(tmp_path / "run")
    by_user, _, _ = own_texts(rec.ds)
    shown = 0
    for user_id in rec.user_ids[:40]:
        u = rec.user_index(user_id)
        for r in rec.recommend(user_id, k=5):
            for m in r.matches:  # ... explained by the phrases
                shown += 1
                assert not is_verdict(m.user_phrase)
                assert any(is_grounded(m.user_phrase, t) for t in by_user.get(u, []))
    assert shown > 0
