"""Full ranking over all items, chunked over users (and optionally items).

Memory is bounded by user_chunk x item_chunk scores (item_chunk defaults to all items).
Training items are masked; everything else, val/test included, competes for the top K.
Ties are broken by torch.topk, i.e. in no specified order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lmmrec.eval.metrics import METRICS, metric_sums


def _mask_train(scores: torch.Tensor, train: sp.csr_matrix, users: np.ndarray,
                lo: int, hi: int) -> None:
    """Set scores of training items (columns lo..hi-1 of `scores`) to -inf, in place."""
    sub = train[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    cols = sub.indices
    keep = (cols >= lo) & (cols < hi)
    if keep.any():
        r = torch.from_numpy(rows[keep]).to(scores.device)
        c = torch.from_numpy(cols[keep] - lo).to(scores.device)
        scores[r, c] = -torch.inf


def topk_items(user_emb: torch.Tensor, item_emb: torch.Tensor, users: np.ndarray,
               train: sp.csr_matrix, k: int, item_chunk: int | None = None) -> torch.Tensor:
    """Top-k item ids (len(users) x k) by dot product, training items excluded."""
    return topk_scored(user_emb, item_emb, users, train, k, item_chunk)[1]


def topk_scored(user_emb: torch.Tensor, item_emb: torch.Tensor, users: np.ndarray,
                train: sp.csr_matrix, k: int, item_chunk: int | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, item ids) of the top k, each len(users) x k; training items score -inf.
    With `item_chunk`, at most len(users) x item_chunk scores exist at once."""
    u = user_emb[torch.from_numpy(users).to(user_emb.device)]
    n_items = item_emb.shape[0]
    step = item_chunk or n_items
    best_s = best_i = None
    for lo in range(0, n_items, step):
        hi = min(lo + step, n_items)
        scores = u @ item_emb[lo:hi].T
        _mask_train(scores, train, users, lo, hi)
        s, i = torch.topk(scores, min(k, hi - lo), dim=1)
        i = i + lo
        if best_s is not None:  # merge with the best so far
            both = torch.cat([best_s, s], 1)
            s, j = torch.topk(both, min(k, both.shape[1]), dim=1)
            i = torch.gather(torch.cat([best_i, i], 1), 1, j)
        best_s, best_i = s, i
    return best_s, best_i


def evaluate(user_emb: torch.Tensor, item_emb: torch.Tensor, train: sp.csr_matrix,
             heldout: sp.csr_matrix, ks: list[int] | tuple[int, ...] = (5, 10, 20),
             user_chunk: int = 2048, item_chunk: int | None = None,
             metrics: tuple[str, ...] = METRICS) -> dict[str, float]:
    """Mean of every metric@K over users with at least one held-out item.

    Returns {"recall@20": ..., "ndcg@20": ..., ..., "n_users": count}.
    """
    train, heldout = sp.csr_matrix(train), sp.csr_matrix(heldout)
    heldout.sort_indices()
    n_pos_all = np.diff(heldout.indptr)
    users_all = np.flatnonzero(n_pos_all > 0)
    kmax = max(ks)
    sums: dict[str, float] = {}
    with torch.no_grad():
        for start in range(0, len(users_all), user_chunk):
            users = users_all[start:start + user_chunk]
            top = topk_items(user_emb, item_emb, users, train, kmax, item_chunk).cpu()
            hits = _hits(top.numpy(), heldout, users)
            part = metric_sums(torch.from_numpy(hits), torch.from_numpy(n_pos_all[users]),
                               list(ks), metrics)
            for key, v in part.items():
                sums[key] = sums.get(key, 0.0) + v
    n = max(len(users_all), 1)
    out = {key: v / n for key, v in sums.items()}
    out["n_users"] = int(len(users_all))
    return out


def _hits(top: np.ndarray, heldout: sp.csr_matrix, users: np.ndarray) -> np.ndarray:
    """hits[r, j] = 1 if top[r, j] is a held-out item of users[r] (sorted-key lookup)."""
    n_items = heldout.shape[1]
    sub = heldout[users]
    keys = (np.repeat(np.arange(len(users), dtype=np.int64), np.diff(sub.indptr)) * n_items
            + sub.indices)  # sorted: rows ascending, indices sorted within rows
    q = np.arange(len(users), dtype=np.int64)[:, None] * n_items + top
    pos = np.searchsorted(keys, q).clip(max=max(len(keys) - 1, 0))
    return (keys[pos] == q).astype(np.float64) if len(keys) else np.zeros(q.shape)
