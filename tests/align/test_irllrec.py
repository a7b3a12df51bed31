"""The IRLLRec baseline: its intent prototypes, edge weights and losses on hand-checked tiny
cases, its EMA teacher, where gradients go, and training with every backbone."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from test_aligner_grads import tiny_profiles  # tests/align is on the path (no packages)

from lmmrec.align.aligners import IRLLRecAligner, IRLLRecConfig
from lmmrec.align.aligners.irllrec import IntentGraph, intent_embeddings
from lmmrec.align.aligners.rlmrec import batch_info_nce
from lmmrec.align.wrapper import AlignedModel
from lmmrec.backbones import REGISTRY, backbone_config, build_backbone
from lmmrec.losses import soft_cross_entropy
from lmmrec.text.inputs import build_inputs

BATCH = (torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 4, 0, 1]))


def make_model(backbone: str = "lightgcn", **cfg) -> AlignedModel:
    torch.manual_seed(0)
    p = tiny_profiles()
    train = sp.csr_matrix((np.ones(len(p.review_user)), (p.review_user, p.review_item)),
                          shape=(6, 5))
    train.data[:] = 1.0  # a user reviewing an item twice is one edge
    bb = build_backbone(backbone, 6, 5, train, backbone_config(backbone, {"dim": 8}))
    cfg.setdefault("text_input", "phrases")  # the tiny profiles have no summaries
    aligner = IRLLRecAligner.create(build_inputs(p), bb, IRLLRecConfig(**cfg), train)
    return AlignedModel(bb, aligner)


def test_defaults_are_the_published_settings() -> None:
    cfg = IRLLRecConfig()
    assert (cfg.weight, cfg.temp, cfg.intent_weight, cfg.intent_temp) == (0.01, 0.2, 0.02, 0.2)
    assert (cfg.n_intents, cfg.momentum, cfg.noise_weight, cfg.teacher_weight) == (
        128, 0.999, 1e-7, 1e-7)
    assert cfg.every == 1 and cfg.text_input == "summary"


def test_intent_embedding_by_hand() -> None:
    # E·W = [[1, 0], [0, 2]]; softmax rows, then times Wᵀ = diag(1, 2)
    e = math.e
    got = intent_embeddings(torch.eye(2), torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    want = torch.tensor([[e / (e + 1), 2 / (e + 1)], [1 / (1 + e**2), 2 * e**2 / (1 + e**2)]])
    assert torch.allclose(got, want, atol=1e-6)


def hand_graph() -> IntentGraph:
    """User 0 - items 0 and 1, user 1 - item 1; item 2 has no edge. Prototypes 100·I make
    each intent (nearly) the axis of the embedding's largest coordinate."""
    train = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], dtype=np.float32))
    g = IntentGraph(train, dim=2, n_intents=2)
    with torch.no_grad():
        g.user_intent.copy_(100 * torch.eye(2))
        g.item_intent.copy_(100 * torch.eye(2))
    return g


def test_edges_weighted_by_intent_cosine_by_hand() -> None:
    g = hand_graph()
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # intents: axis 0, axis 1
    items = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])  # axis 0, axis 1, -
    # (1 + cos) / 2: same axis 1, orthogonal axes 0.5; edges in CSR order (0,0) (0,1) (1,1)
    assert torch.allclose(g.edge_weights(users, items), torch.tensor([1.0, 0.5, 1.0]),
                          atol=1e-5)
    gu, gi = g(users, items)
    # user 0: (1·[2, 0] + 0.5·[0, 3]) / 1.5; user 1: item 1 alone
    assert torch.allclose(gu, torch.tensor([[4 / 3, 1.0], [0.0, 3.0]]), atol=1e-5)
    # item 1: (0.5·user 0 + 1·user 1) / 1.5; item 2 has no edge: zeros
    assert torch.allclose(gi, torch.tensor([[1.0, 0.0], [1 / 3, 2 / 3], [0.0, 0.0]]),
                          atol=1e-5)


def test_batch_info_nce_by_hand() -> None:
    # every embedding equals its own text vector, the two users (and items) orthogonal: each
    # row costs log(1 + e^(-1/t)); users are ranked against all users' text vectors, items
    # against the batch's own, so the 2 + 2 + 2 rows / B = 2 make 3 of them
    t, eye = 0.2, torch.eye(2)
    batch = (torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([1, 0]))
    got = batch_info_nce(batch, eye, eye, eye, eye, t)
    assert torch.isclose(got, torch.tensor(3 * math.log(1 + math.exp(-1 / t))), atol=1e-5)
    # a batch of one user: its items have no other candidate (0), the user still has one
    one = (torch.tensor([0]), torch.tensor([0]), torch.tensor([1]))
    got = batch_info_nce(one, eye, eye, eye, eye, t)
    assert torch.isclose(got, torch.tensor(math.log(1 + math.exp(-1 / t))), atol=1e-5)


def test_soft_cross_entropy_by_hand() -> None:
    logits = torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]])
    # row 0: uniform against uniform, log 2; row 1: its own entropy of (1/4, 3/4)
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert torch.isclose(soft_cross_entropy(logits, logits), torch.tensor((math.log(2) + h) / 2))


def test_losses_are_the_published_terms() -> None:
    model = make_model(noise_weight=0.0, teacher_weight=1.0, intent_weight=0.5)
    a = model.aligner
    ue, ie = model(None)
    out = model.extra_losses(BATCH, ue, ie)
    assert set(out) == {"rlmrec_con", "irllrec_intent", "irllrec_noise", "irllrec_teacher"}
    with torch.no_grad():
        pu, pi = a.mlp(a.prf_user), a.mlp(a.prf_item)
        assert torch.isclose(out["rlmrec_con"], 0.01 * batch_info_nce(BATCH, ue, ie, pu, pi, 0.2))
        gu, gi = a.graph(ue, ie)
        tu, ti = a.intent_mlp(a.int_user), a.intent_mlp(a.int_item)
        want = 0.5 * batch_info_nce(BATCH, gu, gi, tu, ti, 0.2)
        assert torch.isclose(out["irllrec_intent"], want)
        # a fresh teacher equals the tower: the target is the tower's own softmax, and the
        # term is 0.6 · its entropy over the batch's 4 users and 5 items
        text = torch.cat([tu[:4], ti])
        p = text.softmax(1)
        assert torch.isclose(out["irllrec_teacher"], 0.6 * -(p * p.log()).sum(1).mean())
    assert float(out["irllrec_noise"].detach()) == 0.0


def test_noise_and_teacher_terms_can_be_left_out() -> None:
    model = make_model(noise_weight=0.0, teacher_weight=0.0)
    ue, ie = model(None)
    assert set(model.extra_losses(BATCH, ue, ie)) == {"rlmrec_con", "irllrec_intent"}


def test_teacher_moves_by_momentum_each_step() -> None:
    model = make_model(momentum=0.9, every=3)
    a = model.aligner
    with torch.no_grad():
        a.intent_mlp[0].weight.add_(1.0)  # the student drifts from the teacher
    student = a.intent_mlp[0].weight.detach().clone()
    for aligned in (True, False, False):  # every step, aligned or not
        before = a.teacher[0].weight.clone()
        ue, ie = model(None)
        assert bool(model.extra_losses(BATCH, ue, ie)) == aligned
        assert torch.allclose(a.teacher[0].weight, 0.9 * before + 0.1 * student, atol=1e-6)


def test_gradients_reach_towers_prototypes_and_backbone_not_teacher() -> None:
    model = make_model(noise_weight=1.0, teacher_weight=1.0)
    ue, ie = model(None)
    losses = model.extra_losses(BATCH, ue, ie)
    a = model.aligner
    for name in ("irllrec_intent", "irllrec_noise", "irllrec_teacher"):
        grads = torch.autograd.grad(losses[name], a.intent_mlp[0].weight, retain_graph=True)
        assert grads[0].abs().sum() > 0, name
    g = torch.autograd.grad(losses["irllrec_intent"],
                            [a.graph.user_intent, a.graph.item_intent, model.backbone.user_emb],
                            retain_graph=True)
    assert all(x.abs().sum() > 0 for x in g)  # through the edge weights, to the backbone
    sum(losses.values()).backward()
    assert a.mlp[0].weight.grad is not None and a.mlp[0].weight.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in a.teacher.parameters())


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_trains_with_every_backbone(name: str) -> None:
    model = make_model(name, noise_weight=1e-3, teacher_weight=1e-3, intent_weight=1.0)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.05)
    first = last = None
    for _ in range(30):
        ue, ie = model(None)
        loss = model.extra_losses(BATCH, ue, ie)["irllrec_intent"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = float(loss) if first is None else first
        last = float(loss)
    assert math.isfinite(last) and last < first, (name, first, last)


@pytest.mark.slow
def test_trains_end_to_end(beauty_dir: Path, beauty_motivations: Path, tmp_path: Path) -> None:
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    cfg = resolve_config("lightgcn", [], [
        "train.max_epochs=2", "train.eval_every=1", "train.progress=false", "train.threads=1",
        "align.intent_weight=0.01"],
        base={"method": "irllrec", "data": str(beauty_dir),
              "motivations": str(beauty_motivations)})
    result = fit(cfg, tmp_path)
    assert 0 <= result["test"]["recall@20"] <= 1
    log = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    terms = {k for r in log if "loss" in r for k in r["loss"]}
    assert {"rlmrec_con", "irllrec_intent", "irllrec_noise", "irllrec_teacher"} <= terms
    resolved = json.loads((tmp_path / "resolved.json").read_text())
    assert resolved["align"]["intent_weight"] == 0.01 and resolved["align"]["n_intents"] == 128
