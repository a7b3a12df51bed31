"""Large catalogues: recommendation ranks in item chunks like evaluation, and nothing in
the library builds a dense users x items matrix."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
import torch

from lmmrec.explain.recommender import Recommender

SRC = Path(__file__).resolve().parents[2] / "src" / "lmmrec"


def _recommender(item_chunk: int | None) -> Recommender:
    rng = np.random.default_rng(0)
    n_users, n_items = 23, 57
    train = sp.random(n_users, n_items, density=0.2, format="lil", random_state=3)
    train[0, :] = 1  # a user who has seen every item: nothing left to recommend
    train = sp.csr_matrix(train)
    train.data[:] = 1
    ds = SimpleNamespace(n_users=n_users, n_items=n_items, train=train)
    cfg = SimpleNamespace(eval=SimpleNamespace(item_chunk=item_chunk))
    user = torch.from_numpy(rng.normal(size=(n_users, 8)).astype(np.float32))
    item = torch.from_numpy(rng.normal(size=(n_items, 8)).astype(np.float32))
    return Recommender(ds, user, item, None, cfg=cfg)


def test_precompute_in_item_chunks_equals_whole_catalogue() -> None:
    whole, chunked = _recommender(None), _recommender(5)
    assert chunked.item_chunk == 5
    whole.precompute(max_k=12, chunk=7)
    chunked.precompute(max_k=12, chunk=7)
    assert np.array_equal(whole._top[0][1:], chunked._top[0][1:])
    assert np.allclose(whole._top[1], chunked._top[1])
    s = whole.user_emb @ whole.item_emb.T
    s[torch.from_numpy(whole.train.toarray()).bool()] = -torch.inf  # tiny: fine in a test
    ref = torch.topk(s, 12, dim=1)
    assert np.allclose(ref.values.numpy(), chunked._top[1])
    assert not np.isfinite(chunked._top[1][0]).any()  # nothing left for user 0


def test_no_dense_users_by_items_in_the_library() -> None:
    pattern = re.compile(r"\.toarray\(\)|\.todense\(\)|\.to_dense\(\)|\.A\b")
    hits = [f"{p.relative_to(SRC)}:{n}" for p in SRC.rglob("*.py")
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if pattern.search(line)]
    assert hits == []
