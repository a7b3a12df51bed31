"""Train/val/test splits over deduplicated, dense-id interactions.

``ratio`` (e.g. 3:1:1, the RLMRec recipe), exact algorithm:

1. Order interactions by (user, item); draw one permutation with
   ``numpy.random.default_rng(seed)``.
2. The first ``round(n * a / (a+b+c))`` permuted rows are train, the next
   ``round(n * b / (a+b+c))`` val, the rest test.
3. Every user without a train interaction gets one moved to train: its val/test row that
   came first in the permutation. Then the same for every item. Moves only add training
   rows, so after these two passes every user and item has at least one.

``loo`` (temporal leave-last-out): per user, rows ordered by (timestamp, input order);
the last is test, the one before val, the rest train. Users with fewer than 3 rows keep
all of them in train. Unknown timestamps (-1) sort first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmmrec.errors import DataError

SPLIT_NAMES = np.array(["train", "val", "test"], dtype=object)


def parse_ratio(spec: str) -> tuple[float, float, float]:
    parts = spec.split(":")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        vals = ()
    if len(vals) != 3 or min(vals) < 0 or vals[0] <= 0:
        raise DataError(f"bad split {spec!r}: use 'keep', 'loo' or a ratio like 3:1:1", field="split")
    return vals  # type: ignore[return-value]


def ratio_split(inter: pd.DataFrame, ratio: tuple[float, float, float], seed: int) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test) aligned with ``inter`` (sorted by user, item)."""
    n = len(inter)
    rank = np.empty(n, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(n)] = np.arange(n)
    total = sum(ratio)
    n_train = int(round(n * ratio[0] / total))
    n_val = int(round(n * ratio[1] / total))
    code = np.where(rank < n_train, 0, np.where(rank < n_train + n_val, 1, 2)).astype(np.int8)
    for col in ("user", "item"):
        ids = inter[col].to_numpy()
        has_train = np.zeros(ids.max() + 1, dtype=bool)
        has_train[ids[code == 0]] = True
        lacking = np.flatnonzero(~has_train[ids])  # rows (all val/test) of entities lacking
        if len(lacking):
            order = lacking[np.argsort(rank[lacking], kind="stable")]
            _, first = np.unique(ids[order], return_index=True)
            code[order[first]] = 0
    return code


def loo_split(inter: pd.DataFrame) -> np.ndarray:
    """Leave-last-out codes; ``inter`` needs ``user``, ``timestamp`` and ``_order``."""
    order = np.lexsort((inter["_order"].to_numpy(), inter["timestamp"].to_numpy(),
                        inter["user"].to_numpy()))
    users = inter["user"].to_numpy()[order]
    # position from the end within each user's run
    ends = np.r_[np.flatnonzero(users[1:] != users[:-1]), len(users) - 1]
    starts = np.r_[0, ends[:-1] + 1]
    size = np.repeat(ends - starts + 1, ends - starts + 1)
    from_end = np.repeat(ends, ends - starts + 1) - np.arange(len(users))
    code_sorted = np.where(size < 3, 0, np.where(from_end == 0, 2, np.where(from_end == 1, 1, 0)))
    code = np.empty(len(users), dtype=np.int8)
    code[order] = code_sorted
    return code


def assign(inter: pd.DataFrame, method: str, seed: int) -> pd.Series:
    """The ``split`` column for ``inter`` by ``method`` ('loo' or 'a:b:c')."""
    if method == "loo":
        code = loo_split(inter)
    else:
        code = ratio_split(inter, parse_ratio(method), seed)
    return pd.Series(SPLIT_NAMES[code], index=inter.index, dtype=object)
