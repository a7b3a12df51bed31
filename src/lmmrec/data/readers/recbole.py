"""RecBole atomic files: ``NAME.inter`` / ``NAME.item`` with typed headers.

Headers look like ``user_id:token\titem_id:token\trating:float\ttimestamp:float``;
``token_seq`` values are space separated. Benchmark files ``NAME.train.inter``,
``NAME.valid.inter``, ``NAME.test.inter`` carry their own split, which is kept.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from lmmrec.data.readers._io import RawData, interactions_frame, items_frame
from lmmrec.errors import DataError

FORMAT = "recbole"
BENCH = {"train": ".train.inter", "val": ".valid.inter", "test": ".test.inter"}
ROLES = {
    "user_id": ("user_id", "user", "uid"),
    "item_id": ("item_id", "item", "iid", "business_id", "parent_asin", "asin"),
    "rating": ("rating", "overall", "stars", "score"),
    "timestamp": ("timestamp", "time", "date"),
    "title": ("title", "summary", "review_title"),
    "text": ("text", "review", "review_text", "reviewtext", "comment"),
}
ITEM_ROLES = {
    "raw_id": ("item_id", "iid", "business_id", "parent_asin", "asin"),
    "title": ("title", "movie_title", "item_title", "name", "app_name"),
    "description": ("description", "desc", "summary", "text"),
    "tags": ("tags", "genre", "genres", "categories", "category", "class", "brand"),
}


def detect(folder: Path) -> bool:
    return any(folder.glob("*.inter"))


def read_atomic(path: Path) -> pd.DataFrame:
    """A typed atomic file as strings, columns renamed to their bare field names."""
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False,
                         quoting=csv.QUOTE_NONE, encoding="utf-8")
    except pd.errors.EmptyDataError as e:
        raise DataError("empty file: no header", path=path) from e
    except UnicodeDecodeError as e:
        raise DataError(f"invalid UTF-8 at byte {e.start}", path=path) from e
    except pd.errors.ParserError as e:
        raise DataError(f"malformed atomic file: {e}", path=path) from e
    names = []
    for col in df.columns:
        name, _, kind = str(col).partition(":")
        if kind not in ("token", "token_seq", "float", "float_seq", ""):
            raise DataError(f"unknown RecBole field type {kind!r}", path=path, field=str(col))
        names.append(name)
    df.columns = names
    if df.empty:
        raise DataError("empty file: header only", path=path)
    return df


def pick(df: pd.DataFrame, role: str, roles: dict[str, tuple[str, ...]]) -> str | None:
    lower = {c.lower(): c for c in df.columns}
    return next((lower[n] for n in roles[role] if n in lower), None)


def _inter(df: pd.DataFrame, path: Path, split: str | None) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {}
    for role in ROLES:
        c = pick(df, role, ROLES)
        if c is None and role in ("user_id", "item_id"):
            raise DataError("missing column", path=path, field=role)
        cols[role] = df[c].tolist() if c else [None] * len(df)
    ts = pd.to_numeric(pd.Series(cols["timestamp"]), errors="coerce")
    cols["timestamp"] = ts.fillna(-1).astype("int64").tolist()
    if split:
        cols["split"] = [split] * len(df)
    return cols


def read(path: Path, **_: Any) -> RawData:
    folder = Path(path)
    bench = {s: sorted(folder.glob(f"*{suf}")) for s, suf in BENCH.items()}
    presplit = all(bench.values())
    if presplit:
        files = [(s, bench[s][0]) for s in BENCH]
    else:
        plain = sorted(p for p in folder.glob("*.inter")
                       if not any(p.name.endswith(suf) for suf in BENCH.values()))
        if not plain:
            raise DataError("no .inter file", path=folder)
        files = [(None, plain[0])]
    merged: dict[str, list[Any]] = {}
    for split, f in files:
        for k, v in _inter(read_atomic(f), f, split).items():
            merged.setdefault(k, []).extend(v)
    items_path = next(iter(sorted(folder.glob("*.item"))), None)
    rows: dict[str, list[Any]] = {}
    if items_path is not None:
        idf = read_atomic(items_path)
        for role in ITEM_ROLES:
            c = pick(idf, role, ITEM_ROLES)
            if c is None and role == "raw_id":
                raise DataError("missing column", path=items_path, field="item_id")
            rows[role] = idf[c].tolist() if c else [""] * len(idf)
    sources = [f for _, f in files] + ([items_path] if items_path else [])
    return RawData(interactions_frame(merged, files[0][1]), items_frame(rows or None), sources,
                   FORMAT, presplit=presplit)
