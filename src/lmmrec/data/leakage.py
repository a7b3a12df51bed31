"""The leakage guard: the only door through which later stages read review text.

Training-time consumers (profiles, text-side inputs, explanations) call
:func:`training_reviews` / :func:`entity_texts`, which return text of *training*
interactions only. Per-review extraction is split-independent and reads every review
through :func:`extraction_reviews`; what it produces is filtered again by
:func:`training_reviews` keys when profiles are amassed for a split.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from lmmrec.data.dataset import PreparedDataset

Entity = Literal["user", "item"]


def training_reviews(ds: PreparedDataset) -> pd.DataFrame:
    """Reviews (user, item, title, text) of the training interactions of ``ds``."""
    reviews = ds.load_reviews()
    train = ds.split_frame("train")[["user", "item"]]
    out = reviews.merge(train, on=["user", "item"], how="inner")
    return out.sort_values(["user", "item"], kind="stable").reset_index(drop=True)


def entity_texts(ds: PreparedDataset, entity: Entity, index: int) -> list[str]:
    """Review texts of one user or item, from training interactions only."""
    if entity not in ("user", "item"):
        raise ValueError(f"entity must be 'user' or 'item', not {entity!r}")
    tr = training_reviews(ds)
    return tr.loc[tr[entity] == index, "text"].astype(str).tolist()


def _raw_pairs(ds: PreparedDataset, frame: pd.DataFrame) -> set[tuple[str, str]]:
    u = ds.users["raw_id"].astype(str).to_numpy()[frame["user"].to_numpy()]
    i = ds.items["raw_id"].astype(str).to_numpy()[frame["item"].to_numpy()]
    return set(zip(u.tolist(), i.tolist(), strict=True))


def split_pairs(ds: PreparedDataset, split: str) -> set[tuple[str, str]]:
    """Raw (user_id, item_id) pairs of one split."""
    return _raw_pairs(ds, ds.split_frame(split))


def training_pairs(ds: PreparedDataset) -> set[tuple[str, str]]:
    """Raw (user_id, item_id) pairs of the training split: the keys profiles may use."""
    return split_pairs(ds, "train")


def interaction_pairs(ds: PreparedDataset) -> set[tuple[str, str]]:
    """Raw (user_id, item_id) pairs of every interaction, all splits (to match artifacts)."""
    return _raw_pairs(ds, ds.interactions)


def extraction_reviews(ds: PreparedDataset) -> pd.DataFrame:
    """Every review with raw ids and its split, training first (extraction input only).

    Extraction is split-independent by design; profiles are later amassed through
    :func:`training_pairs`, so nothing here reaches a model without that filter.
    """
    reviews = ds.load_reviews()
    splits = ds.interactions[["user", "item", "split"]]
    out = reviews.merge(splits, on=["user", "item"], how="inner")
    out["user_id"] = ds.users["raw_id"].astype(str).to_numpy()[out["user"].to_numpy()]
    out["item_id"] = ds.items["raw_id"].astype(str).to_numpy()[out["item"].to_numpy()]
    order = {"train": 0, "val": 1, "test": 2}
    out["_o"] = out["split"].map(order)
    out = out.sort_values(["_o", "user", "item"], kind="stable").drop(columns="_o")
    return out.reset_index(drop=True)
