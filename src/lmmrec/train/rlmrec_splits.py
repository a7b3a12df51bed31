"""Build a PreparedDataset straight from RLMRec's split matrices ({trn,val,tst}_mat.pkl).

For tests and benchmarks (small user cuts included), without `lmmrec data prepare`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lmmrec.data.dataset import PreparedDataset, is_prepared
from lmmrec.data.pipeline import write_atomic
from lmmrec.data.readers.rlmrec import load_matrix  # restricted unpickler

FILES = {"train": "trn_mat.pkl", "val": "val_mat.pkl", "test": "tst_mat.pkl"}


def load_rlmrec_splits(root: str | Path, max_users: int | None = None) -> PreparedDataset:
    """The three split matrices as a PreparedDataset; `max_users` keeps the first N users
    (items re-indexed to those in their training rows) for small test cuts."""
    root = Path(root)
    mats = {s: load_matrix(root / f) for s, f in FILES.items()}
    n_users, n_items = mats["train"].shape
    frames = []
    for split, m in mats.items():
        keep = m.data != 0
        frames.append(pd.DataFrame({"user": m.row[keep].astype(np.int64),
                                    "item": m.col[keep].astype(np.int64), "split": split}))
    inter = pd.concat(frames, ignore_index=True).drop_duplicates(["user", "item"])
    if max_users is not None:
        inter = inter[inter["user"] < max_users]
        train_items = np.unique(inter.loc[inter["split"] == "train", "item"])
        inter = inter[inter["item"].isin(train_items)]
        remap = np.full(n_items, -1, dtype=np.int64)
        remap[train_items] = np.arange(len(train_items))
        inter = inter.assign(item=remap[inter["item"].to_numpy()])
        n_users, n_items = min(max_users, n_users), len(train_items)
    inter = inter.sort_values(["user", "item"]).reset_index(drop=True)
    inter = pd.DataFrame({
        "user": inter["user"].astype("int32"), "item": inter["item"].astype("int32"),
        "rating": np.float32(np.nan), "timestamp": np.int64(-1), "split": inter["split"]})
    users = pd.DataFrame({"user": np.arange(n_users, dtype=np.int32),
                          "raw_id": [str(i) for i in range(n_users)]})
    items = pd.DataFrame({"item": np.arange(n_items, dtype=np.int32),
                          "raw_id": [str(i) for i in range(n_items)],
                          "title": "", "description": "", "tags": ""})
    manifest = {"name": f"rlmrec-{root.name}", "source": str(root), "max_users": max_users}
    return PreparedDataset(interactions=inter, users=users, items=items, manifest=manifest)


def prepared_copy(root: str | Path, out: str | Path) -> Path:
    """A prepared folder of the split pickles in ``root``, written once to ``out``."""
    out = Path(out)
    if not is_prepared(out):
        write_atomic(load_rlmrec_splits(root), out)
    return out
