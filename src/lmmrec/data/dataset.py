"""The canonical prepared dataset: Parquet tables plus a JSON manifest.

A prepared folder holds (file names and columns: :data:`lmmrec.layout.DATASET`):

- ``interactions.parquet``: ``user`` (int32), ``item`` (int32), ``rating`` (float32,
  NaN when unknown), ``timestamp`` (int64, -1 when unknown), ``split`` ("train" | "val" |
  "test"); one row per (user, item) pair, sorted by (user, item).
- ``reviews.parquet``: ``user``, ``item``, ``title``, ``text``: the review of each interaction
  that has one. Read it only through :mod:`lmmrec.data.leakage`.
- ``users.parquet``: ``user``, ``raw_id``.
- ``items.parquet``: ``item``, ``raw_id``, ``title``, ``description``, ``tags``.
- ``manifest.json``: source checksums, filters, split parameters, statistics, warnings and
  the interactions' fingerprint (what artifacts are matched on, not the folder's name).

Ids are dense 0..n-1; ``raw_id`` is the source's id, the one users see.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmmrec.errors import DataError
from lmmrec.io import atomic_write_json, read_json
from lmmrec.layout import DATASET, FINGERPRINT

SPLITS = ("train", "val", "test")


def pairs_fingerprint(user_ids: np.ndarray, item_ids: np.ndarray) -> str:
    """sha256 (16 hex) of a set of (raw user id, raw item id) pairs, in no particular order:
    what the data is, whatever its file was called or how it was split."""
    keys = (pd.Series(user_ids, dtype=object).astype(str) + "\t"
            + pd.Series(item_ids, dtype=object).astype(str)).to_numpy(dtype=str)
    keys = np.unique(keys)
    return hashlib.sha256("\n".join(keys.tolist()).encode("utf-8")).hexdigest()[:16]


@dataclass
class PreparedDataset:
    """A dataset ready for training: dense ids, a split, text kept apart."""

    interactions: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None
    _reviews: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.root.name if self.root else "dataset"))

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def split_frame(self, split: str) -> pd.DataFrame:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return self.interactions[self.interactions["split"] == split]

    def matrix(self, split: str) -> sp.csr_matrix:
        """Binary users x items CSR matrix of one split."""
        df = self.split_frame(split)
        data = np.ones(len(df), dtype=np.float32)
        m = sp.csr_matrix((data, (df["user"].to_numpy(), df["item"].to_numpy())),
                          shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        return m

    @cached_property
    def train(self) -> sp.csr_matrix:
        return self.matrix("train")

    @cached_property
    def val(self) -> sp.csr_matrix:
        return self.matrix("val")

    @cached_property
    def test(self) -> sp.csr_matrix:
        return self.matrix("test")

    @property
    def user_ids(self) -> np.ndarray:
        return self.users["raw_id"].to_numpy()

    @property
    def item_ids(self) -> np.ndarray:
        return self.items["raw_id"].to_numpy()

    @cached_property
    def fingerprint(self) -> str:
        """The interactions' fingerprint (:func:`pairs_fingerprint`), from the manifest when
        it has one (computed for folders prepared before it had)."""
        stored = self.manifest.get(FINGERPRINT)
        if stored:
            return str(stored)
        inter = self.interactions
        users = self.users["raw_id"].astype(str).to_numpy()[inter["user"].to_numpy()]
        items = self.items["raw_id"].astype(str).to_numpy()[inter["item"].to_numpy()]
        return pairs_fingerprint(users, items)

    @cached_property
    def user_index(self) -> dict[str, int]:
        return {str(r): i for i, r in enumerate(self.users["raw_id"])}

    @cached_property
    def item_index(self) -> dict[str, int]:
        return {str(r): i for i, r in enumerate(self.items["raw_id"])}

    def stats(self) -> dict[str, Any]:
        counts = self.interactions["split"].value_counts()
        n = len(self.interactions)
        return {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": int(n),
            "n_train": int(counts.get("train", 0)),
            "n_val": int(counts.get("val", 0)),
            "n_test": int(counts.get("test", 0)),
            "density": float(n / max(1, self.n_users * self.n_items)),
            "n_reviews": int(self.manifest.get("stats", {}).get("n_reviews", 0)),
        }

    # -- persistence -------------------------------------------------------------------------

    def save(self, out: str | Path) -> Path:
        """Write the tables and manifest into ``out`` (which must exist; a temp folder of
        :func:`lmmrec.io.new_dir`, so the whole folder appears at once)."""
        out = Path(out)
        self.interactions.to_parquet(out / DATASET.interactions, index=False)
        reviews = self._reviews if self._reviews is not None else _empty_reviews()
        reviews.to_parquet(out / DATASET.reviews, index=False)
        self.users.to_parquet(out / DATASET.users, index=False)
        self.items.to_parquet(out / DATASET.items, index=False)
        atomic_write_json(out / DATASET.manifest, self.manifest, sort_keys=True)
        return out

    @classmethod
    def load(cls, root: str | Path, require_splits: bool = True) -> PreparedDataset:
        """Read a prepared folder. Training and evaluation need every split
        (``require_splits``); extraction and statistics do not: a table prepared with no
        validation or test rows is still a dataset whose reviews can be extracted."""
        root = Path(root)
        _check_folder(root)
        manifest = read_json(root / DATASET.manifest)
        inter = pd.read_parquet(root / DATASET.interactions)
        for col in DATASET.required_interaction_columns:
            if col not in inter.columns:
                raise DataError("missing column", path=root / DATASET.interactions, field=col)
        ds = cls(interactions=inter, users=pd.read_parquet(root / DATASET.users),
                 items=pd.read_parquet(root / DATASET.items), manifest=manifest, root=root)
        present = set(inter["split"].unique())
        missing = [s for s in SPLITS if s not in present]
        if missing and require_splits:
            raise DataError(f"dataset has no {', '.join(missing)} interactions "
                            "(a split is missing)", path=root / DATASET.interactions,
                            field="split")
        return ds

    def load_reviews(self) -> pd.DataFrame:
        """All reviews, every split. Private door: use lmmrec.data.leakage instead."""
        if self._reviews is None:
            if self.root is None:
                raise DataError("dataset has no reviews table")
            self._reviews = pd.read_parquet(self.root / DATASET.reviews)
        return self._reviews


def is_prepared(folder: str | Path) -> bool:
    """Whether ``folder`` looks like a prepared dataset (it has the manifest)."""
    return (Path(folder) / DATASET.manifest).is_file()


def _empty_reviews() -> pd.DataFrame:
    user, item, title, text = DATASET.review_columns
    return pd.DataFrame({user: pd.Series([], dtype="int32"), item: pd.Series([], dtype="int32"),
                         title: pd.Series([], dtype="string"),
                         text: pd.Series([], dtype="string")})


def _check_folder(root: Path) -> None:
    """Every table (readable) and the manifest are there: else a DataError naming what."""
    if not root.is_dir():
        raise DataError("prepared dataset folder not found "
                        "(make one with `lmmrec data prepare`)", path=root)
    for file in DATASET.tables.values():
        if not (root / file).exists():
            raise DataError(f"missing {file}: not a prepared dataset folder", path=root)
        _check_parquet(root / file)
    if not (root / DATASET.manifest).exists():
        raise DataError(f"missing {DATASET.manifest}: not a prepared dataset folder",
                        path=root)


def _check_parquet(path: Path) -> None:
    """Read a table's footer (cheap): a truncated or foreign file fails here, by name."""
    import pyarrow.parquet as pq

    try:
        pq.ParquetFile(path).close()
    except (OSError, ValueError) as e:  # pyarrow: ArrowInvalid / ArrowIOError
        msg = " ".join(str(e).split())[:200]
        raise DataError(f"unreadable parquet (truncated or corrupt?): {msg}", path=path) from e
