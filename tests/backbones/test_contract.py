"""Every registered backbone trains for a few epochs on real data: finite, decreasing loss,
the interface's shapes, and every metric key."""

from __future__ import annotations

import json
import os

import pytest
import torch

from lmmrec.backbones import REGISTRY, build_backbone
from lmmrec.backbones.base import Backbone
from lmmrec.data.dataset import PreparedDataset
from lmmrec.train.config import resolve_config
from lmmrec.train.trainer import fit


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_backbone_trains(name, amazon_cut, tmp_path):
    cfg = resolve_config(name, overrides=[
        f"data={amazon_cut}", "train.max_epochs=3", "train.eval_every=3", "train.batch_size=1024",
        "train.progress=false", "optim.lr=0.01", "train.threads=1",
        f"train.device={os.environ.get('LMMREC_TEST_DEVICE', 'cpu')}"])
    result = fit(cfg, tmp_path)
    log = [json.loads(ln) for ln in (tmp_path / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 3
    assert all(torch.isfinite(torch.tensor(list(ls.values()))).all() for ls in losses)
    rec = next(iter(losses[0]))  # the recommendation loss comes first: bpr, or AutoCF's rec
    assert rec in {"bpr", "rec"}
    assert losses[-1][rec] < losses[0][rec]
    for m in ("recall", "ndcg", "precision", "hit", "mrr"):
        for k in (5, 10, 20):
            assert 0.0 <= result["test"][f"{m}@{k}"] <= 1.0
    assert result["test"]["recall@20"] > 0  # better than nothing after 3 epochs
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) >= {"test", "val", "best_epoch", "seconds_per_epoch"}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_interface(name, amazon_cut):
    ds = PreparedDataset.load(amazon_cut)
    torch.manual_seed(0)
    cfg = resolve_config(name).backbone_config
    model = build_backbone(name, ds.n_users, ds.n_items, ds.train, cfg)
    assert isinstance(model, Backbone)  # the protocol the trainer and the aligners rely on
    assert (model.n_users, model.n_items) == (ds.n_users, ds.n_items)
    model.train()
    u, i = model(None)
    assert u.shape == (ds.n_users, model.dim) and i.shape == (ds.n_items, model.dim)
    batch = (torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 3]))
    extra = model.extra_losses(batch, u, i)
    assert all(v.ndim == 0 for v in extra.values())
    model.eval()
    with torch.no_grad():
        u1, _ = model(None)
        u2, _ = model(None)
    assert torch.equal(u1, u2)  # no augmentation at evaluation
