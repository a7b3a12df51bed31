"""Amazon 2014 (UCSD/SNAP) review JSON lines: ``reviews_<Category>[_5].json(.gz)``.

``overall`` -> rating, ``unixReviewTime`` -> timestamp, ``summary`` -> title,
``reviewText`` -> text. An optional ``meta_<Category>.json(.gz)`` (Python-literal lines in
the original release) supplies item titles, descriptions and categories.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmmrec.data.readers._io import (
    RawData,
    as_text,
    first_record,
    interactions_frame,
    items_frame,
    iter_records,
    join_unique,
    need,
)
from lmmrec.errors import DataError

FORMAT = "amazon2014"
KEYS = ("reviewerID", "asin")


def _review_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json*") if not p.name.startswith("meta")
                  and p.name.endswith((".json", ".json.gz", ".jsonl", ".jsonl.gz")))


def detect(folder: Path) -> bool:
    files = _review_files(folder)
    rec = first_record(files[0]) if files else None
    return rec is not None and all(k in rec for k in KEYS)


def _meta(path: Path) -> Any:
    rows: dict[str, list[Any]] = {"raw_id": [], "title": [], "description": [], "tags": []}
    for lineno, rec in iter_records(path, literal=not path.name.endswith(("l", "l.gz"))):
        rows["raw_id"].append(need(rec, "asin", path, lineno))
        rows["title"].append(as_text(rec.get("title")))
        rows["description"].append(as_text(rec.get("description"), sep=" "))
        cats = rec.get("categories") or []
        flat = [c for group in cats for c in (group if isinstance(group, list) else [group])]
        rows["tags"].append(join_unique(flat))
    return items_frame(rows)


def read(path: Path, **_: Any) -> RawData:
    folder = Path(path)
    files = [folder] if folder.is_file() else _review_files(folder)
    if not files:
        raise DataError("no Amazon 2014 review file (reviews_*.json.gz)", path=folder)
    cols: dict[str, list[Any]] = {k: [] for k in
                                  ("user_id", "item_id", "rating", "timestamp", "title", "text")}
    for f in files:
        for lineno, rec in iter_records(f):
            cols["user_id"].append(need(rec, "reviewerID", f, lineno))
            cols["item_id"].append(need(rec, "asin", f, lineno))
            cols["rating"].append(need(rec, "overall", f, lineno))
            cols["timestamp"].append(rec.get("unixReviewTime", -1))
            cols["title"].append(rec.get("summary"))
            cols["text"].append(rec.get("reviewText"))
    metas = sorted(folder.glob("meta_*.json*")) if folder.is_dir() else []
    items = _meta(metas[0]) if metas else items_frame()
    return RawData(interactions_frame(cols, files[0]), items, files + metas[:1], FORMAT)
