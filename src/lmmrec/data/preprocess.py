"""Raw frame -> prepared tables: dedup, rating threshold, k-core, dense ids, split.

Order of steps, all vectorised:

1. Duplicates: one row per (user, item) pair. The row with the latest timestamp is kept;
   among equal timestamps (including unknown, -1) the one that came last in the input.
   Its rating, timestamp and review are the pair's.
2. ``rating_threshold``: keep pairs with rating >= threshold (unknown ratings are dropped).
3. ``kcore``: iteratively drop users and items with fewer than k pairs until none remain.
4. Dense ids 0..n-1 in sorted raw-id order: numeric order when every raw id is an
   integer, else lexicographic (so RLMRec matrix indices map to themselves).
5. Split: kept from the source when it has one (``split`` None or "keep"), else
   :func:`lmmrec.data.splits.assign`.

For sources that ship a split (RLMRec, RecBole benchmark files, split tables) steps 1-3
still apply when asked for, and each surviving pair keeps its given split; a ratio or
``loo`` asked for explicitly splits them anew.

What each step removed, and what the user should know about the defaults (a k-cored input
that merging duplicates un-cored, ``loo`` without times, a catalogue too small for
Recall@K), goes into the manifest: ``stats`` and ``warnings``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lmmrec.data.catalog import DEFAULT_SPLIT
from lmmrec.data.dataset import PreparedDataset, pairs_fingerprint
from lmmrec.data.readers._io import RawData
from lmmrec.data.splits import assign
from lmmrec.errors import DataError
from lmmrec.layout import FINGERPRINT

DEDUP_POLICY = "keep latest timestamp per (user, item); ties: last in input order"


def dedup(df: pd.DataFrame) -> pd.DataFrame:
    df = df.sort_values(["timestamp", "_order"], kind="stable")
    return df.drop_duplicates(["user_id", "item_id"], keep="last")


def kcore(df: pd.DataFrame, k: int) -> pd.DataFrame:
    if k <= 1:
        return df
    u = pd.factorize(df["user_id"])[0]
    i = pd.factorize(df["item_id"])[0]
    keep = np.ones(len(df), dtype=bool)
    while True:
        cu = np.bincount(u[keep], minlength=u.max() + 1 if len(u) else 0)
        ci = np.bincount(i[keep], minlength=i.max() + 1 if len(i) else 0)
        bad = keep & ((cu[u] < k) | (ci[i] < k))
        if not bad.any():
            return df[keep]
        keep &= ~bad


def sorted_ids(raw: pd.Series) -> np.ndarray:
    """Unique raw ids in their dense order (numeric when all are integers)."""
    uniq = pd.unique(raw.astype(str))
    s = pd.Series(uniq, dtype=object)
    if s.str.fullmatch(r"-?\d{1,18}").all():
        return uniq[np.argsort(s.astype("int64").to_numpy(), kind="stable")]
    return np.sort(uniq.astype(object))


def _text(s: pd.Series) -> pd.Series:
    return s.where(s.notna(), None).astype("string")


# Below this many items per K, Recall@K of any model is near 1 and early stopping on it is
# arbitrary (24 items: Recall@20 ~0.98 for every model).
SATURATION_ITEMS_PER_K = 5
SELECT_K = 20  # the K of the default early-stopping metric (eval.select = recall@20)


def _min_degree(df: pd.DataFrame) -> int:
    if df.empty:
        return 0
    return int(min(df["user_id"].value_counts().min(), df["item_id"].value_counts().min()))


def _uncored(raw_df: pd.DataFrame, df: pd.DataFrame, kcore_k: int) -> str | None:
    """A warning when the input looks k-cored (every user and item has >= k rows, k >= 2)
    but is no longer after merging duplicate pairs, and no k-core >= k was asked for."""
    k = _min_degree(raw_df)
    if k < 2 or kcore_k >= k or len(df) == len(raw_df):
        return None
    users, items = df["user_id"].value_counts(), df["item_id"].value_counts()
    nu, ni = int((users < k).sum()), int((items < k).sum())
    if not nu and not ni:
        return None
    return (f"the input looks {k}-core (every user and item has >= {k} rows), but after "
            f"merging {len(raw_df) - len(df)} duplicate (user, item) rows {nu} of "
            f"{len(users)} users and {ni} of {len(items)} items have fewer than {k}; pass "
            f"--kcore {k} to make it {k}-core again")


def prepare(raw: RawData, *, kcore_k: int = 0, rating_threshold: float | None = None,
            split: str | None = None, seed: int = 2024, name: str = "dataset",
            extra_manifest: dict[str, Any] | None = None) -> PreparedDataset:
    """Turn a reader's output into a :class:`PreparedDataset` (not yet written).

    ``split``: "keep" (the source's own; the default when it has one), "loo" or a ratio
    "a:b:c" (default 3:1:1 for a source without a split)."""
    if split == "keep" and not raw.presplit:
        raise DataError("--split keep: the input has no split of its own (no train/val/test "
                        "files, no split column); use a ratio like 3:1:1 or 'loo'",
                        path=_first_source(raw), field="split")
    keep = raw.presplit and split in (None, "keep")
    split = "keep" if keep else (split or DEFAULT_SPLIT)
    warns: list[str] = []
    df, counts = _filter(raw, kcore_k, rating_threshold, warns)
    df, user_raw, item_raw = _dense_ids(raw, df, kcore_k, rating_threshold)
    if keep:
        split_col, split_method = _given_split(raw, df), "given"
    else:
        split_col, split_method = _new_split(df, split, seed, warns), split
    if len(item_raw) <= SATURATION_ITEMS_PER_K * SELECT_K:
        warns.append(f"only {len(item_raw)} items: Recall@{SELECT_K} (the default "
                     "early-stopping metric) is near 1 for any model on so small a catalogue; "
                     "evaluate with smaller K (--set eval.ks=[1,3,5] --set "
                     "eval.select=recall@5)")
    reviews = _reviews(df)
    manifest: dict[str, Any] = {
        "name": name,
        "format": raw.format,
        "schema_version": 1,
        "filters": {"dedup": DEDUP_POLICY, "kcore": int(kcore_k),
                    "rating_threshold": rating_threshold},
        "split": ({"method": "given", "requested": "keep",
                   "from": raw.notes.get("split_from", f"the {raw.format} source")}
                  if keep else {"method": split_method, "seed": int(seed),
                                "requested": split}),
        "reader_notes": raw.notes,
        "warnings": warns,
    }
    manifest.update(extra_manifest or {})
    ds = PreparedDataset(interactions=_interactions(df, split_col),
                         users=_users(user_raw), items=_items(raw, item_raw),
                         manifest=manifest, _reviews=reviews)
    manifest["stats"] = {**counts, "n_reviews": len(reviews)}
    manifest["stats"].update(ds.stats())
    manifest[FINGERPRINT] = pairs_fingerprint(df["user_id"].to_numpy(), df["item_id"].to_numpy())
    return ds


def _first_source(raw: RawData) -> Any:
    return raw.sources[0] if raw.sources else None


def _filter(raw: RawData, kcore_k: int, rating_threshold: float | None,
            warns: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Steps 1-3 (dedup, rating threshold, k-core); what each removed."""
    df = raw.interactions.copy()
    df["_order"] = np.arange(len(df), dtype=np.int64)
    n_raw = len(df)
    raw_pairs = df[["user_id", "item_id"]]
    df = dedup(df)
    n_unique = len(df)
    uncored = _uncored(raw_pairs, df[["user_id", "item_id"]], kcore_k)
    if rating_threshold is not None:
        df = df[df["rating"] >= rating_threshold]
    n_rated = len(df)
    df = kcore(df, kcore_k)
    if uncored:
        warns.append(uncored)
    if df.empty:
        raise DataError("no interactions left after filtering "
                        f"(kcore={kcore_k}, rating_threshold={rating_threshold})",
                        path=_first_source(raw))
    return df, {"n_raw_rows": n_raw, "n_duplicates_dropped": n_raw - n_unique,
                "n_below_rating_threshold": n_unique - n_rated,
                "n_kcore_dropped": n_rated - len(df)}


def _dense_ids(raw: RawData, df: pd.DataFrame, kcore_k: int, rating_threshold: float | None
               ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Step 4: dense ``user`` and ``item`` columns, rows sorted by them; the raw ids."""
    user_raw = sorted_ids(df["user_id"])
    item_raw = sorted_ids(df["item_id"])
    if raw.presplit and raw.notes.get("shape") and kcore_k <= 1 and rating_threshold is None:
        # keep empty rows/columns of a given matrix so ids stay the source's indices
        item_raw = np.array([str(i) for i in range(raw.notes["shape"][1])], dtype=object)
        user_raw = np.array([str(i) for i in range(raw.notes["shape"][0])], dtype=object)
    df["user"] = pd.Index(user_raw).get_indexer(df["user_id"].astype(str)).astype(np.int32)
    df["item"] = pd.Index(item_raw).get_indexer(df["item_id"].astype(str)).astype(np.int32)
    df = df.sort_values(["user", "item"], kind="stable").reset_index(drop=True)
    return df, user_raw, item_raw


def _given_split(raw: RawData, df: pd.DataFrame) -> pd.Series:
    """Step 5, kept from the source: all three splits must survive the filters."""
    split_col = df["split"].astype(object)
    for s in ("train", "val", "test"):
        if not (split_col == s).any():
            raise DataError(f"no {s} interactions left after filtering: the kept split "
                            "needs all three", path=_first_source(raw), field="split")
    return split_col


def _new_split(df: pd.DataFrame, split: str, seed: int, warns: list[str]) -> pd.Series:
    """Step 5, a new split (``loo`` or a ratio)."""
    if split == "loo":
        unknown = int((df["timestamp"] < 0).sum())
        if unknown == len(df):
            warns.append("--split loo without a time column: each user's last rows are "
                         "the last in input order")
        elif unknown:
            warns.append(f"--split loo: {unknown} interactions have no time; they count "
                         "as each user's earliest")
    return assign(df, split, seed)


def _interactions(df: pd.DataFrame, split_col: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({
        "user": df["user"].to_numpy(np.int32), "item": df["item"].to_numpy(np.int32),
        "rating": df["rating"].to_numpy(np.float32),
        "timestamp": df["timestamp"].to_numpy(np.int64),
        "split": split_col.to_numpy(dtype=object),
    })


def _reviews(df: pd.DataFrame) -> pd.DataFrame:
    """The interactions that have a review (a title or a text)."""
    has_review = (df["text"].fillna("").astype(str).str.len() > 0) | (
        df["title"].fillna("").astype(str).str.len() > 0)
    rv = df[has_review.to_numpy()]
    return pd.DataFrame({
        "user": rv["user"].to_numpy(np.int32), "item": rv["item"].to_numpy(np.int32),
        "title": _text(rv["title"]).fillna("").to_numpy(), "text": _text(rv["text"])
        .fillna("").to_numpy()}).astype({"title": "string", "text": "string"})


def _users(user_raw: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"user": np.arange(len(user_raw), dtype=np.int32),
                         "raw_id": pd.array(user_raw, dtype="string")})


def _items(raw: RawData, item_raw: np.ndarray) -> pd.DataFrame:
    meta = raw.items.set_index("raw_id").reindex(item_raw).fillna("")
    items = pd.DataFrame({"item": np.arange(len(item_raw), dtype=np.int32),
                          "raw_id": pd.array(item_raw, dtype="string")})
    for c in ("title", "description", "tags"):
        items[c] = pd.array(meta[c].to_numpy(), dtype="string") if c in meta else ""
    return items
