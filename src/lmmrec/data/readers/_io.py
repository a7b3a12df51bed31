"""Shared low-level reading: every input error becomes a DataError naming file and line.

Lines are read as bytes and decoded one by one, so invalid UTF-8 and broken JSON are
reported with the line they are on; a truncated gzip is caught where the stream ends.
"""

from __future__ import annotations

import ast
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from lmmrec.errors import DataError

RAW_COLUMNS = ("user_id", "item_id", "rating", "timestamp", "title", "text")
ITEM_COLUMNS = ("raw_id", "title", "description", "tags")


@dataclass
class RawData:
    """What every reader returns: one row per raw interaction, plus item side text.

    ``interactions``: ``user_id``/``item_id`` (str), ``rating`` (float64, NaN unknown),
    ``timestamp`` (int64 seconds, -1 unknown), ``title``/``text`` (str or None) and, for
    sources that ship their own split, ``split``. ``items``: ``raw_id``, ``title``,
    ``description``, ``tags`` (str, "" when unknown).
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    sources: list[Path]
    format: str
    presplit: bool = False
    notes: dict[str, Any] = field(default_factory=dict)


def open_bytes(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, decoded line) for non-blank lines of a plain or gzipped file."""
    lineno = 0
    try:
        with open_bytes(path) as f:
            for lineno, raw in enumerate(f, 1):  # noqa: B007 - lineno used after the loop
                if not raw.strip():
                    continue
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(f"invalid UTF-8 at byte {e.start}", path=path,
                                    line=lineno) from e
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"truncated or corrupt gzip stream ({e})", path=path,
                        line=lineno + 1) from e
    except FileNotFoundError as e:
        raise DataError("file not found", path=path) from e


def iter_records(path: Path, literal: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSON objects, one per line (``literal``: Python dict literals, the UCSD originals)."""
    n = 0
    for lineno, line in iter_lines(path):
        try:
            rec = ast.literal_eval(line) if literal else json.loads(line)
        except (json.JSONDecodeError, ValueError, SyntaxError, RecursionError,
                MemoryError) as e:  # deep nesting too (ast raises MemoryError for some)
            raise DataError(f"malformed {'record' if literal else 'JSON'}: "
                            f"{str(e) or type(e).__name__}", path=path, line=lineno) from e
        if not isinstance(rec, dict):
            raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=path,
                            line=lineno)
        n += 1
        yield lineno, rec
    if n == 0:
        raise DataError("empty file: no records", path=path)


def read_document(path: Path) -> Any:
    """A whole (possibly gzipped) JSON document."""
    chunks = []
    for _, line in iter_lines(path):
        chunks.append(line)
    text = "".join(chunks)
    if not text.strip():
        raise DataError("empty file: no records", path=path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON: {e.msg}", path=path, line=e.lineno) from e
    except RecursionError as e:
        raise DataError("malformed JSON: nested too deeply", path=path) from e


def need(rec: dict[str, Any], key: str, path: Path, lineno: int) -> Any:
    try:
        return rec[key]
    except KeyError:
        raise DataError("missing column", path=path, line=lineno, field=key) from None


def as_text(value: Any, sep: str = ", ") -> str:
    """Metadata values (str, list, None, number) as one string."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return sep.join(as_text(v) for v in value if v not in (None, ""))
    if isinstance(value, float) and value != value:
        return ""
    return str(value)


def join_unique(*lists: Any, sep: str = ", ") -> str:
    seen: dict[str, None] = {}
    for values in lists:
        if isinstance(values, str):
            values = [values]
        for v in values or []:
            if v not in (None, ""):
                seen.setdefault(str(v), None)
    return sep.join(seen)


def interactions_frame(cols: dict[str, list[Any]], path: Path) -> pd.DataFrame:
    """Typed raw frame from column lists (the readers' common exit)."""
    n = len(cols["user_id"])
    if n == 0:
        raise DataError("no interactions", path=path)
    df = pd.DataFrame({
        "user_id": pd.Series(cols["user_id"], dtype=object).astype(str),
        "item_id": pd.Series(cols["item_id"], dtype=object).astype(str),
        "rating": pd.to_numeric(pd.Series(cols.get("rating", [None] * n), dtype=object),
                                errors="coerce").astype("float64"),
        "timestamp": pd.Series(cols.get("timestamp", [-1] * n), dtype=object)
        .fillna(-1).astype("int64"),
        "title": pd.Series(cols.get("title", [None] * n), dtype=object),
        "text": pd.Series(cols.get("text", [None] * n), dtype=object),
    })
    if "split" in cols:
        df["split"] = pd.Series(cols["split"], dtype=object)
    return df


def items_frame(rows: dict[str, list[Any]] | None = None) -> pd.DataFrame:
    rows = rows or {c: [] for c in ITEM_COLUMNS}
    df = pd.DataFrame({c: pd.Series(rows.get(c, []), dtype=object) for c in ITEM_COLUMNS})
    df["raw_id"] = df["raw_id"].astype(str)
    for c in ITEM_COLUMNS[1:]:
        df[c] = df[c].fillna("").astype(str)
    return df.drop_duplicates("raw_id", keep="first").reset_index(drop=True)


def first_record(path: Path) -> dict[str, Any] | None:
    """Keys of the first line of a JSON-lines file, for format detection (None if not)."""
    try:
        with open_bytes(path) as f:
            line = f.readline(1 << 20)
        rec = json.loads(line)
    except Exception:  # detection only: anything unreadable is simply "not this format"
        return None
    return rec if isinstance(rec, dict) else None


def to_unix_seconds(ts: pd.Series) -> pd.Series:
    """tz-aware datetimes -> int64 unix seconds, whatever the datetime resolution."""
    epoch = pd.Timestamp(0, tz="UTC")
    return ((ts - epoch) // pd.Timedelta(seconds=1)).astype("int64")
