"""Ranking metrics against a brute-force numpy reference and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lmmrec.eval.ranking import evaluate

KS = (1, 3, 5)


def reference(scores: np.ndarray, train: np.ndarray, held: np.ndarray, ks) -> dict:
    """Plain-Python metrics: full sort per user, train items removed."""
    out: dict[str, list[float]] = {}
    for u in range(scores.shape[0]):
        pos = set(np.flatnonzero(held[u]))
        if not pos:
            continue
        cand = [i for i in np.argsort(-scores[u], kind="stable") if not train[u, i]]
        for k in ks:
            top = cand[:k]
            h = [1.0 if i in pos else 0.0 for i in top]
            dcg = sum(x / math.log2(r + 2) for r, x in enumerate(h))
            idcg = sum(1 / math.log2(r + 2) for r in range(min(k, len(pos))))
            first = next((r for r, x in enumerate(h) if x), None)
            vals = {"recall": sum(h) / len(pos), "precision": sum(h) / k,
                    "hit": float(sum(h) > 0), "ndcg": dcg / idcg,
                    "mrr": 0.0 if first is None else 1 / (first + 1)}
            for m, v in vals.items():
                out.setdefault(f"{m}@{k}", []).append(v)
    return {key: float(np.mean(v)) for key, v in out.items()}


def run(scores: np.ndarray, train: np.ndarray, held: np.ndarray, ks=KS, **kw) -> dict:
    # scores = user_emb @ item_emb.T with user_emb = scores, item_emb = identity
    u = torch.tensor(scores, dtype=torch.float64)
    i = torch.eye(scores.shape[1], dtype=torch.float64)
    return evaluate(u, i, sp.csr_matrix(train), sp.csr_matrix(held), ks, **kw)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunks", [dict(user_chunk=1000), dict(user_chunk=3, item_chunk=4)])
def test_matches_bruteforce(seed, chunks):
    rng = np.random.default_rng(seed)
    n_u, n_i = 17, 23
    scores = rng.normal(size=(n_u, n_i))  # continuous: no ties
    train = rng.random((n_u, n_i)) < 0.2
    held = (rng.random((n_u, n_i)) < 0.15) & ~train
    held[0] = False  # a user with nothing held out is skipped
    got = run(scores, train, held, **chunks)
    want = reference(scores, train, held, KS)
    assert got["n_users"] == int((held.sum(1) > 0).sum())
    for key, v in want.items():
        assert got[key] == pytest.approx(v, abs=1e-12), key


def test_hand_computed_fewer_heldout_than_k():
    # one user, items 0..5, scores descending by index; item 1 is a training item (masked)
    scores = np.array([[6, 5, 4, 3, 2, 1.0]])
    train = np.array([[0, 1, 0, 0, 0, 0]], bool)
    held = np.array([[0, 0, 1, 0, 0, 1]], bool)  # ranks after masking: 0,2,3,4,5 -> 2nd and 5th
    got = run(scores, train, held, ks=(1, 3, 5))
    assert got["recall@1"] == 0 and got["mrr@1"] == 0
    assert got["recall@3"] == pytest.approx(0.5)
    assert got["precision@3"] == pytest.approx(1 / 3)
    assert got["mrr@3"] == pytest.approx(0.5)
    assert got["recall@5"] == pytest.approx(1.0)
    idcg = 1 + 1 / math.log2(3)  # two held-out items < K=5
    assert got["ndcg@5"] == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / idcg)
    assert got["ndcg@3"] == pytest.approx((1 / math.log2(3)) / idcg)
    assert got["hit@1"] == 0 and got["hit@3"] == 1


def test_users_without_heldout_are_not_averaged():
    scores = np.array([[3, 2, 1.0], [3, 2, 1.0]])
    train = np.zeros((2, 3), bool)
    held = np.array([[1, 0, 0], [0, 0, 0]], bool)
    got = run(scores, train, held, ks=(1,))
    assert got["n_users"] == 1 and got["recall@1"] == 1.0 and got["ndcg@1"] == 1.0


def test_ties_do_not_change_tie_independent_metrics():
    # items 0 and 1 tie at the top and are both held out: any order gives the same metrics;
    # items 2 and 3 tie across the K=3 boundary and are both misses.
    scores = np.array([[5, 5, 1, 1, 0.0]])
    train = np.zeros((1, 5), bool)
    held = np.array([[1, 1, 0, 0, 0]], bool)
    got = run(scores, train, held, ks=(2, 3))
    assert got["recall@2"] == 1.0 and got["ndcg@2"] == pytest.approx(1.0)
    assert got["mrr@2"] == 1.0 and got["precision@3"] == pytest.approx(2 / 3)
    assert got["ndcg@3"] == pytest.approx(1.0)


def test_masked_training_items_never_recommended():
    scores = np.array([[9, 8, 1, 0.0]])
    train = np.array([[1, 1, 0, 0]], bool)
    held = np.array([[0, 0, 1, 0]], bool)
    assert run(scores, train, held, ks=(1,))["recall@1"] == 1.0
