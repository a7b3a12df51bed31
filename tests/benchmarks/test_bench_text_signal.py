"""benchmarks/bench_text_signal.py: pooled text vectors are unit (or zero without text), and
the scorer ranks a user's held-out items first when the vectors say so."""

from __future__ import annotations

import numpy as np
import torch

from lmmrec.data.dataset import PreparedDataset
from lmmrec.text.profiles import amass

from .bench_module import load_bench


def test_side_vectors_are_the_profiles_pooled(beauty_dir, beauty_motivations) -> None:
    mod = load_bench("bench_text_signal")
    ds = PreparedDataset.load(beauty_dir)
    u, i, stats = mod.side_vectors(ds, beauty_motivations, {}, 1.0)
    p = amass(ds, beauty_motivations)
    assert stats["users_with_text"] == p.stats["users_with_profile"]
    norms = u.norm(dim=1)
    has = torch.from_numpy(p.user_pos.getnnz(axis=1) > 0)
    assert torch.allclose(norms[has], torch.ones(int(has.sum())), atol=1e-5)
    assert torch.all(norms[~has] == 0)
    # user 0's vector is the normalised weighted mean of its profile phrases
    row = p.user_pos.getrow(int(np.flatnonzero(has.numpy())[0]))
    want = (row.data[:, None] * p.embeddings[row.indices].astype(np.float32)).sum(0)
    got = u[int(np.flatnonzero(has.numpy())[0])].numpy()
    assert np.allclose(got, want / np.linalg.norm(want), atol=1e-4)


def test_scores_rank_an_oracles_items_first(beauty_dir) -> None:
    """Vectors that put every user on their own test items score Recall@20 1 on test
    (every beauty user has at most 20 of them); random ones far less."""
    mod = load_bench("bench_text_signal")
    ds = PreparedDataset.load(beauty_dir)
    test = ds.test.toarray().astype(np.float32)
    oracle = mod.scores(ds, torch.from_numpy(test), torch.eye(ds.n_items))
    assert oracle["test_recall@20"] == 1.0 and oracle["test_ndcg@20"] == 1.0
    gen = torch.Generator().manual_seed(0)
    rand = mod.scores(ds, torch.randn(ds.n_users, 8, generator=gen),
                      torch.randn(ds.n_items, 8, generator=gen))
    assert rand["test_recall@20"] < 0.5
