"""Amazon Reviews 2023 (Hou et al.): the per-review JSONL release and the "mini" layout.

Official: ``<Category>.jsonl(.gz)`` rows ``rating, title, text, asin, parent_asin, user_id,
timestamp`` (milliseconds; stored as seconds) and ``meta_<Category>.jsonl(.gz)``. Items are
keyed by ``parent_asin`` as in the release's own benchmarks. Mini: ``history_reviews.json.gz``
``{user: {parent_asin: {rating, title, text}}}`` (no timestamps) + ``meta_data.json.gz``
``{parent_asin: {...}}``.
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
    read_document,
)
from lmmrec.errors import DataError

FORMAT = "amazon2023"
MINI = ("history_reviews.json.gz", "history_reviews.json")
MINI_META = ("meta_data.json.gz", "meta_data.json")


def _official(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.jsonl*") if not p.name.startswith("meta_")
                  and p.name.endswith((".jsonl", ".jsonl.gz")))


def detect(folder: Path) -> bool:
    if any((folder / n).exists() for n in MINI):
        return True
    files = _official(folder)
    rec = first_record(files[0]) if files else None
    return rec is not None and "parent_asin" in rec and "user_id" in rec


def _item_row(rows: dict[str, list[Any]], asin: str, meta: dict[str, Any]) -> None:
    rows["raw_id"].append(asin)
    rows["title"].append(as_text(meta.get("title")))
    rows["description"].append(" ".join(
        t for t in (as_text(meta.get("description"), " "), as_text(meta.get("features"), " "))
        if t))
    rows["tags"].append(join_unique(meta.get("main_category"), meta.get("categories"),
                                    meta.get("store")))


def _mini(folder: Path, hist: Path) -> RawData:
    doc = read_document(hist)
    if not isinstance(doc, dict):
        raise DataError("expected {user: {item: review}}", path=hist)
    cols: dict[str, list[Any]] = {k: [] for k in ("user_id", "item_id", "rating", "title", "text")}
    for user, items in doc.items():
        if not isinstance(items, dict):
            raise DataError("expected {item: review} for user", path=hist, field=str(user))
        for asin, r in items.items():
            if not isinstance(r, dict) or "rating" not in r:
                raise DataError("missing column", path=hist, field=f"{user}.{asin}.rating")
            cols["user_id"].append(user)
            cols["item_id"].append(asin)
            cols["rating"].append(r["rating"])
            cols["title"].append(r.get("title"))
            cols["text"].append(r.get("text"))
    meta_path = next((folder / n for n in MINI_META if (folder / n).exists()), None)
    rows: dict[str, list[Any]] = {"raw_id": [], "title": [], "description": [], "tags": []}
    if meta_path is not None:
        meta = read_document(meta_path)
        if not isinstance(meta, dict):
            raise DataError("expected {parent_asin: metadata}", path=meta_path)
        for asin, m in meta.items():
            _item_row(rows, asin, m if isinstance(m, dict) else {})
    sources = [hist] + ([meta_path] if meta_path else [])
    return RawData(interactions_frame(cols, hist), items_frame(rows), sources, FORMAT,
                   notes={"layout": "mini"})


def read(path: Path, **_: Any) -> RawData:
    folder = Path(path)
    hist = next((folder / n for n in MINI if (folder / n).exists()), None)
    if hist is not None:
        return _mini(folder, hist)
    files = [folder] if folder.is_file() else _official(folder)
    if not files:
        raise DataError("no Amazon 2023 review file (<Category>.jsonl[.gz])", path=folder)
    cols: dict[str, list[Any]] = {k: [] for k in
                                  ("user_id", "item_id", "rating", "timestamp", "title", "text")}
    for f in files:
        for lineno, rec in iter_records(f):
            cols["user_id"].append(need(rec, "user_id", f, lineno))
            cols["item_id"].append(rec.get("parent_asin") or need(rec, "asin", f, lineno))
            cols["rating"].append(need(rec, "rating", f, lineno))
            ts = rec.get("timestamp")
            cols["timestamp"].append(int(ts) // 1000 if ts is not None else -1)
            cols["title"].append(rec.get("title"))
            cols["text"].append(rec.get("text"))
    rows: dict[str, list[Any]] = {"raw_id": [], "title": [], "description": [], "tags": []}
    metas = sorted(folder.glob("meta_*.jsonl*")) if folder.is_dir() else []
    for m in metas[:1]:
        for lineno, rec in iter_records(m):
            _item_row(rows, str(need(rec, "parent_asin", m, lineno)), rec)
    return RawData(interactions_frame(cols, files[0]), items_frame(rows), files + metas[:1],
                   FORMAT, notes={"layout": "official"})
