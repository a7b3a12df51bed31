"""How much LLM does a split need? A seeded subsample of the training reviews to extract
(or to use), at a share of them, that keeps every user and item with at least one reviewed
interaction where the budget allows.

The draw: the training reviews in a seeded random order; a first pass takes each review
whose user or item has none yet (the cover), a second pass fills up with the rest in the
same order. When the cover alone is larger than the budget, its first ``share * n`` reviews
are kept (some users or items then have none: the budget does not allow all of them).
"""

from __future__ import annotations

import numpy as np

from lmmrec.data.dataset import PreparedDataset
from lmmrec.data.leakage import training_reviews
from lmmrec.errors import ConfigError


def parse_shares(spec: str) -> list[float]:
    """'0.25,0.5,1' -> [0.25, 0.5, 1.0]; each in (0, 1]."""
    try:
        shares = [float(x) for x in spec.split(",") if x.strip()]
    except ValueError as e:
        raise ConfigError(f"--budget {spec!r}: expected shares like 0.25,0.5,1") from e
    if not shares or any(not 0 < s <= 1 for s in shares):
        raise ConfigError(f"--budget {spec!r}: every share must be in (0, 1]")
    return shares


def draw(users: np.ndarray, items: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Indices (sorted) of the reviews kept at ``share``; see the module docstring."""
    n = len(users)
    if not 0 < share <= 1:
        raise ConfigError(f"review share {share} must be in (0, 1]")
    target = min(n, max(1, int(round(share * n)))) if n else 0
    order = np.random.default_rng(seed).permutation(n)
    seen_u: set[int] = set()
    seen_i: set[int] = set()
    cover, rest = [], []
    for k in order.tolist():
        u, i = int(users[k]), int(items[k])
        if u not in seen_u or i not in seen_i:
            seen_u.add(u)
            seen_i.add(i)
            cover.append(k)
        else:
            rest.append(k)
    kept = (cover + rest)[:target]
    return np.sort(np.array(kept, dtype=np.int64))


def budget_pairs(ds: PreparedDataset, share: float, seed: int = 0) -> set[tuple[str, str]]:
    """Raw (user_id, item_id) pairs of the training reviews (with text) kept at ``share``."""
    tr = training_reviews(ds)
    has_text = (tr["text"].fillna("").astype(str).str.strip() != "").to_numpy()
    tr = tr[has_text]
    users, items = tr["user"].to_numpy(np.int64), tr["item"].to_numpy(np.int64)
    kept = draw(users, items, share, seed)
    u_raw = ds.users["raw_id"].astype(str).to_numpy()
    i_raw = ds.items["raw_id"].astype(str).to_numpy()
    return {(str(u_raw[users[k]]), str(i_raw[items[k]])) for k in kept.tolist()}
