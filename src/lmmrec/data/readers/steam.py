"""Steam Australian reviews (UCSD): flattened JSON lines or the original Python-literal files.

``recommend`` becomes rating 1/0; ``posted`` ("Posted November 5, 2011.") becomes a UTC
timestamp when it names a year, else -1 (unknown), as ~10k reviews omit the year.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lmmrec.data.readers._io import (
    RawData,
    as_text,
    interactions_frame,
    items_frame,
    iter_records,
    join_unique,
    need,
    to_unix_seconds,
)
from lmmrec.errors import DataError

FORMAT = "steam-au"
REVIEW_FILES = ("user_reviews.jsonl.gz", "user_reviews.jsonl", "australian_user_reviews.json.gz")
GAME_FILES = ("steam_games.jsonl.gz", "steam_games.jsonl", "steam_games.json.gz")


def detect(folder: Path) -> bool:
    return any((folder / n).exists() for n in REVIEW_FILES)


def _find(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


def parse_posted(posted: pd.Series) -> pd.Series:
    """Vectorised 'Posted Month D, YYYY.' -> unix seconds; -1 where the year is missing."""
    date = posted.astype(str).str.extract(r"([A-Z][a-z]+ \d{1,2}, \d{4})", expand=False)
    ts = pd.to_datetime(date, format="%B %d, %Y", errors="coerce", utc=True)
    out = pd.Series(-1, index=posted.index, dtype="int64")
    ok = ts.notna()
    out[ok] = to_unix_seconds(ts[ok])
    return out


def _reviews(path: Path) -> pd.DataFrame:
    literal = not path.name.endswith((".jsonl", ".jsonl.gz"))
    cols: dict[str, list[Any]] = {k: [] for k in ("user_id", "item_id", "rating", "text")}
    posted: list[str] = []

    def add(user: Any, rec: dict[str, Any], lineno: int) -> None:
        cols["user_id"].append(user)
        cols["item_id"].append(need(rec, "item_id", path, lineno))
        rec_ok = need(rec, "recommend", path, lineno)
        cols["rating"].append(1.0 if rec_ok is True or str(rec_ok).lower() == "true" else 0.0)
        cols["text"].append(rec.get("review"))
        posted.append(rec.get("posted") or "")

    for lineno, rec in iter_records(path, literal=literal):
        user = need(rec, "user_id", path, lineno)
        if "reviews" in rec and "item_id" not in rec:  # original: one user per line
            for r in rec["reviews"]:
                add(user, r, lineno)
        else:
            add(user, rec, lineno)
    cols["timestamp"] = parse_posted(pd.Series(posted, dtype=object)).tolist()
    cols["title"] = [None] * len(posted)
    return interactions_frame(cols, path)


def _games(path: Path) -> pd.DataFrame:
    literal = not path.name.endswith((".jsonl", ".jsonl.gz"))
    rows: dict[str, list[Any]] = {"raw_id": [], "title": [], "description": [], "tags": []}
    for _, rec in iter_records(path, literal=literal):
        if rec.get("id") in (None, ""):
            continue  # a handful of catalogue rows have no app id: nothing can refer to them
        rows["raw_id"].append(str(rec["id"]))
        rows["title"].append(as_text(rec.get("title") or rec.get("app_name")))
        parts = []
        if rec.get("specs"):
            parts.append("Specs: " + as_text(rec["specs"]))
        if rec.get("developer"):
            parts.append("Developer: " + as_text(rec["developer"]))
        rows["description"].append(". ".join(parts))
        rows["tags"].append(join_unique(rec.get("genres"), rec.get("tags")))
    return items_frame(rows)


def read(path: Path, **_: Any) -> RawData:
    folder = Path(path)
    reviews = _find(folder, REVIEW_FILES)
    if reviews is None:
        raise DataError(f"no Steam review file (one of {', '.join(REVIEW_FILES)})", path=folder)
    games = _find(folder, GAME_FILES)
    inter = _reviews(reviews)
    items = _games(games) if games else items_frame()
    return RawData(inter, items, [p for p in (reviews, games) if p], FORMAT)
