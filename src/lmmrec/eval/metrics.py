"""Ranking metrics from a hit matrix.

`hits[u, r]` is 1 when the item ranked r+1 for user u is one of u's held-out items, and
`n_pos[u]` = |held-out items of u|. Every function returns per-user values; callers
average over users with n_pos >= 1 (RLMRec's protocol).
"""

from __future__ import annotations

import torch

METRICS = ("recall", "ndcg", "precision", "hit", "mrr")


def recall(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """Recall@K = (# hits in the top K) / |held-out|."""
    return hits[:, :k].sum(1) / n_pos.clamp_min(1)


def precision(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """Precision@K = (# hits in the top K) / K."""
    return hits[:, :k].sum(1) / k


def hit(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """Hit@K = 1 if any held-out item is in the top K, else 0."""
    return (hits[:, :k].sum(1) > 0).to(hits.dtype)


def ndcg(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """NDCG@K = DCG@K / IDCG@K with binary gains: DCG = sum_{r<=K} hit_r / log2(r + 1),
    IDCG = sum_{r <= min(K, |held-out|)} 1 / log2(r + 1)."""
    disc = 1.0 / torch.log2(torch.arange(2, k + 2, device=hits.device, dtype=hits.dtype))
    dcg = (hits[:, :k] * disc).sum(1)
    ideal = torch.cumsum(disc, 0)[(n_pos.clamp(1, k) - 1).long()]
    return dcg / ideal


def mrr(hits: torch.Tensor, n_pos: torch.Tensor, k: int) -> torch.Tensor:
    """MRR@K = 1 / rank of the first hit within the top K (0 when there is none)."""
    h = hits[:, :k] > 0
    first = h.to(torch.int8).argmax(1)  # first maximum: the first hit when there is one
    return torch.where(h.any(1), 1.0 / (first + 1).to(hits.dtype), torch.zeros_like(first,
                       dtype=hits.dtype))


FUNCS = {"recall": recall, "ndcg": ndcg, "precision": precision, "hit": hit, "mrr": mrr}


def metric_sums(hits: torch.Tensor, n_pos: torch.Tensor, ks: list[int],
                names: tuple[str, ...] = METRICS) -> dict[str, float]:
    """Per-metric sums over the users with n_pos >= 1 (divide by their count to average)."""
    keep = n_pos > 0
    hits, n_pos = hits[keep].double(), n_pos[keep]
    return {f"{m}@{k}": float(FUNCS[m](hits, n_pos, k).sum()) for m in names for k in ks}
