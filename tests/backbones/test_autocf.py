"""AutoCF's parts on graphs small enough to check by hand: the infomax scores, the k-hop
masking, the encoder and decoder graphs, the attention decoder, the losses, the re-masking
schedule, and seeded determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lmmrec.backbones import backbone_config, build_backbone
from lmmrec.backbones.autocf import GraphAttention
from lmmrec.backbones.graph import Graph, edge_index, norm_adj
from lmmrec.backbones.subgraph import (
    add_random_nodes,
    decoder_graph,
    encoder_graph,
    gumbel_top_k,
    local_global_scores,
    mask_subgraphs,
)
from lmmrec.losses import log_sum_exp_mean

# users u0 u1 u2 = nodes 0 1 2, items i0 i1 i2 = nodes 3 4 5; edges u0-i0, u1-i0, u1-i1, u2-i2
TINY = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=np.float32))


def tiny_edges() -> tuple[Graph, torch.Tensor, torch.Tensor]:
    g = norm_adj(TINY)
    return (g, *edge_index(g))


def undirected(rows: torch.Tensor, cols: torch.Tensor, keep: torch.Tensor) -> set:
    return {(int(r), int(c)) for r, c in zip(rows[keep], cols[keep], strict=True) if r < c}


@pytest.mark.parametrize(("depth", "kept", "masked"), [
    (1, {(1, 3), (1, 4), (2, 5)}, {0}),  # u0's own edge
    (2, {(1, 4), (2, 5)}, {0, 3}),  # then i0's other edge, u1-i0; masked: u0 and i0
    (3, {(2, 5)}, {0, 1, 3}),  # then u1's other edge, u1-i1; u1 joins the masked nodes
])
def test_mask_subgraphs_removes_the_k_hop_edges_of_a_seed(depth, kept, masked):
    _, rows, cols = tiny_edges()
    keep, nodes = mask_subgraphs(rows, cols, torch.tensor([0]), depth)
    assert undirected(rows, cols, keep) == kept
    assert set(nodes.tolist()) == masked
    # both directions of an edge go together (the encoder's graph stays symmetric)
    assert {(int(c), int(r)) for r, c in zip(rows[keep], cols[keep], strict=True)} == \
        {(int(r), int(c)) for r, c in zip(rows[keep], cols[keep], strict=True)}


def test_mask_subgraphs_matches_a_seed_by_seed_loop():
    """The level-at-once version equals removing seed by seed, in order, as the source does."""
    rng = np.random.default_rng(3)
    g = norm_adj(sp.random(40, 30, density=0.08, random_state=rng, format="csr"))
    rows, cols = edge_index(g)
    seeds = torch.tensor([2, 45, 7, 61])
    for depth in (1, 2, 3):
        keep, nodes = mask_subgraphs(rows, cols, seeds, depth)
        alive = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]
        masked, frontier = set(seeds.tolist()), list(seeds.tolist())
        for level in range(depth):
            nxt = set()
            for s in frontier:
                hit = [e for e in alive if s in e]
                alive = [e for e in alive if s not in e]
                nxt |= {v for e in hit for v in e}
            if level < depth - 1:
                masked |= nxt
                frontier = sorted(nxt)
        assert undirected(rows, cols, keep) == {e for e in alive if e[0] < e[1]}
        assert set(nodes.tolist()) == masked


def test_encoder_graph_is_the_normalised_kept_graph():
    g, rows, cols = tiny_edges()
    keep, _ = mask_subgraphs(rows, cols, torch.tensor([0]), 2)  # kept: u1-i1, u2-i2
    enc = encoder_graph(g, rows, keep)
    assert torch.equal(enc.col, g.col)  # same structure, removed entries stored as zeros
    left = TINY.copy().tolil()
    left[0, 0] = left[1, 0] = 0
    want = norm_adj(sp.csr_matrix(left)).csr().to_dense()
    torch.testing.assert_close(enc.csr().to_dense(), want)
    assert set(enc.vals[enc.vals != 0].tolist()) == {1.0}  # every kept edge joins degree-1 nodes


def test_decoder_graph_keeps_edges_adds_loops_and_pairs_from_the_pool():
    g, rows, cols = tiny_edges()
    keep, masked = mask_subgraphs(rows, cols, torch.tensor([0]), 2)  # masked {0, 3}
    torch.manual_seed(0)
    dec = decoder_graph(rows, cols, keep, masked, g.n)
    dense = dec.csr().to_dense()
    assert torch.equal(dense, dense.T)  # symmetric, so `perm` transposes exactly
    torch.testing.assert_close(dec.csr_t().to_dense(), dense.T)
    assert torch.equal(dense.diagonal(), torch.ones(6))  # a self-loop on every node
    r, c = edge_index(dec)
    extra = {(int(a), int(b)) for a, b in zip(r, c, strict=True) if a != b} - \
        {(int(a), int(b)) for a, b in zip(rows[keep], cols[keep], strict=True)}
    assert extra and extra <= {(0, 3), (3, 0)}  # random pairs only among the masked nodes
    assert len(set(zip(r.tolist(), c.tolist(), strict=True))) == dec.nnz  # no duplicates


def test_add_random_nodes_adds_a_share_of_all_nodes():
    torch.manual_seed(0)
    pool = add_random_nodes(torch.tensor([5]), 1000, 0.2)
    assert 5 in pool.tolist() and torch.equal(pool, pool.unique())
    assert 150 < pool.numel() <= 201  # 200 draws with replacement, plus the masked node


def test_local_global_scores_by_hand():
    # u0-i0, u1-i0: nodes 0, 1 (users) and 2 (item)
    g = norm_adj(sp.csr_matrix(np.array([[1.0], [1.0]], dtype=np.float32)))
    ones = g.with_values(torch.ones_like(g.vals))
    x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # 1-hop A·x − x: [-1,0] [1,-1] [1,1]; 2-hop A·(1-hop) − (1-hop) − deg·x: [0,1] [0,1] [-3,-2];
    # counts deg + (A·deg − 2·deg): 1, 1, 0 (+1e-8); so s ∝ [-1,1], [1,0], [-2,-1], and
    # cos(x, s) = -1/√2, 0, -2/√5
    want = torch.sigmoid(torch.tensor([-1 / math.sqrt(2), 0.0, -2 / math.sqrt(5)]))
    torch.testing.assert_close(local_global_scores(ones, x), want)


def test_gumbel_top_k_adds_standard_gumbel_noise_and_takes_the_top():
    torch.manual_seed(0)
    scores = torch.full((200_000,), 0.5)
    noisy, seeds = gumbel_top_k(scores, 10)
    noise = noisy - math.log(0.5)
    assert abs(noise.mean().item() - 0.5772) < 0.01  # Euler-Mascheroni: the Gumbel mean
    assert abs(noise.var().item() - math.pi ** 2 / 6) < 0.03
    assert torch.equal(seeds, torch.topk(noisy, 10).indices)
    assert gumbel_top_k(torch.rand(5), 100)[1].numel() == 5  # k is capped at the nodes


def test_gumbel_top_k_favours_high_scores():
    torch.manual_seed(1)
    scores = torch.tensor([0.9, 0.1, 0.1, 0.1])
    first = [int(gumbel_top_k(scores, 1)[1]) for _ in range(2000)]
    assert abs(first.count(0) / 2000 - 0.9 / 1.2) < 0.04  # P(first) = score / sum of scores


def reference_attention(gt: GraphAttention, rows, cols, x):  # noqa: ANN001, ANN201
    """The source's per-edge formulation: softmax over each row's edges, then sum."""
    n, d = x.shape
    h = gt.heads
    q = (x[rows] @ gt.q).view(-1, h, d // h)
    k = (x[cols] @ gt.k).view(-1, h, d // h)
    v = (x[cols] @ gt.v).view(-1, h, d // h)
    att = (q * k).sum(-1).clamp(-10, 10).exp()
    att = att / (torch.zeros(n, h, dtype=x.dtype).index_add(0, rows, att)[rows] + 1e-8)
    return torch.zeros(n, d, dtype=x.dtype).index_add(0, rows, (att[..., None] * v).view(-1, d))


def test_graph_attention_matches_the_per_edge_softmax_and_its_gradients():
    torch.manual_seed(0)
    g, rows, cols = tiny_edges()
    gt = GraphAttention(8, 4).double()
    x = torch.randn(6, 8, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(gt(g, x), reference_attention(gt, rows, cols, x))
    assert torch.autograd.gradcheck(lambda z: gt(g, z), (x,))


def test_graph_attention_over_self_loops_only_is_the_value_projection():
    torch.manual_seed(0)
    loops = torch.arange(4)
    gt = GraphAttention(4, 2)
    x = torch.randn(4, 4)
    out = gt(Graph.from_edges(loops, loops, 4), x)
    torch.testing.assert_close(out, x @ gt.v, rtol=1e-6, atol=1e-6)  # one edge: weight 1


def test_log_sum_exp_mean_by_hand():
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    want = (math.log(2) + math.log(math.e + 1)) / 2
    assert log_sum_exp_mean(a, c).item() == pytest.approx(want, rel=1e-6)


def test_log_sum_exp_mean_over_many_blocks_matches_autograd():
    torch.manual_seed(0)
    a = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
    c = torch.randn(300_000, 3, dtype=torch.float64, requires_grad=True)  # 3 rows a block
    ours = log_sum_exp_mean(a, c)
    ref = torch.logsumexp(a @ c.T, dim=1).mean()
    torch.testing.assert_close(ours, ref)
    for g1, g2 in zip(torch.autograd.grad(ours, (a, c)), torch.autograd.grad(ref, (a, c)),
                      strict=True):
        torch.testing.assert_close(g1, g2)
    assert torch.autograd.gradcheck(log_sum_exp_mean, (a.detach()[:3].requires_grad_(),
                                                       c.detach()[:5].requires_grad_()))


def tiny_model(**cfg):  # noqa: ANN003, ANN201
    params = {"dim": 4, "heads": 2, "seeds": 2, "fix_steps": 3, **cfg}
    return build_backbone("autocf", 3, 3, TINY, backbone_config("autocf", params))


def test_losses_by_hand():
    model = tiny_model(dim=2, ssl_weight=5.0)
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    items = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    batch = (torch.tensor([0, 0]), torch.tensor([0, 0]), torch.tensor([1, 2]))
    assert model.rec_loss(batch, users, items)["rec"].item() == pytest.approx(-1.0)
    out = model.extra_losses(batch, users, items)
    # distinct batch users against all users, distinct positives against all items
    uniform = math.log(math.e + 2) + math.log(math.e + 2)
    assert out["ssl"].item() == pytest.approx(5.0 * uniform, rel=1e-6)
    assert out["cross"].item() == pytest.approx(math.log(math.e + 2), rel=1e-6)
    assert "infomax" not in out  # no masking happened (no training forward)


def test_eval_forward_is_gcn_layers_then_the_decoder_all_summed():
    torch.manual_seed(0)
    model = tiny_model().eval()
    a = model.graph.csr().to_dense()
    x0 = torch.cat([model.user_emb, model.item_emb]).detach()
    x1, x2 = a @ x0, a @ a @ x0
    g, rows, cols = tiny_edges()
    x3 = reference_attention(model.decoder[0], rows, cols, x2)  # over the training edges
    with torch.no_grad():
        u, i = model(None)
    torch.testing.assert_close(torch.cat([u, i]), x0 + x1 + x2 + x3)


def run_steps(model, n: int) -> list[tuple[bool, object]]:  # noqa: ANN001
    """n training steps without an optimiser: (infomax term present, the views used)."""
    batch = (torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 2]))
    out = []
    for _ in range(n):
        u, i = model(None)
        losses = model.extra_losses(batch, u, i)
        out.append(("infomax" in losses, model._views))
    return out


def test_remasking_every_fix_steps_from_each_epoch_start():
    torch.manual_seed(0)
    model = tiny_model(fix_steps=3).train()
    model.on_epoch_start(0)
    steps = run_steps(model, 7)
    assert [s[0] for s in steps] == [True, False, False, True, False, False, True]
    views = [s[1] for s in steps]
    assert views[0] is views[1] is views[2] and views[3] is not views[2]
    assert views[4] is views[3] and views[6] is not views[5]
    model.on_epoch_start(1)  # a new epoch re-masks at its first step
    again = run_steps(model, 2)
    assert [s[0] for s in again] == [True, False] and again[0][1] is not views[-1]


def test_training_infomax_term_reaches_the_embeddings():
    torch.manual_seed(0)
    model = tiny_model().train()
    model.on_epoch_start(0)
    model(None)
    model._infomax.backward()
    assert model.user_emb.grad.abs().sum() > 0


def test_seeded_runs_are_identical_and_seeds_differ():
    def masks(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(seed)
        train = sp.random(60, 50, density=0.1, random_state=0, format="csr")
        model = build_backbone("autocf", 60, 50, train, backbone_config("autocf", {"seeds": 5}))
        model.train().on_epoch_start(0)
        u, _ = model(None)
        enc, dec = model._views
        return enc.vals, torch.cat([dec.crow, dec.col, u.detach().flatten()])

    a, b, c = masks(1), masks(1), masks(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[1], c[1])


@pytest.mark.slow
def test_trains_with_every_method(beauty_dir, beauty_motivations, tmp_path):
    """Through the one wrapper: AutoCF's own loss terms and each aligner's, every method."""
    import json

    from lmmrec.align.registry import ALIGNERS
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    for method in ALIGNERS.names():
        base = {"method": method, "data": str(beauty_dir)}
        if method != "base":
            base["motivations"] = str(beauty_motivations)
        cfg = resolve_config("autocf", [], ["train.max_epochs=2", "train.eval_every=1",
                                            "train.progress=false", "train.threads=1"], base=base)
        result = fit(cfg, tmp_path / method)
        assert 0 < result["test"]["recall@20"] <= 1, method
        log = (tmp_path / method / "log.jsonl").read_text().splitlines()
        terms = {k for r in map(json.loads, log) if "loss" in r for k in r["loss"]}
        assert {"rec", "ssl", "cross", "infomax"} <= terms and "bpr" not in terms, method
        if method != "base":
            assert terms - {"rec", "ssl", "cross", "infomax", "l2", "total"}, method
