"""Any table (CSV, TSV, JSON lines, Parquet) with a column mapping.

The mapping names the source column of each role: ``user``, ``item`` (required),
``rating``, ``time``, ``title``, ``text``. Unmapped roles are guessed from common names.
``time`` may be unix seconds or a date string.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lmmrec.data.readers._io import (
    RawData,
    interactions_frame,
    items_frame,
    iter_records,
    to_unix_seconds,
)
from lmmrec.data.readers.recbole import ROLES
from lmmrec.errors import DataError

FORMAT = "table"
SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".csv.gz", ".tsv.gz",
            ".jsonl.gz")
ROLE_KEYS = {"user": "user_id", "item": "item_id", "rating": "rating", "time": "timestamp",
             "title": "title", "text": "text"}


def _tables(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIXES))


def detect(folder: Path) -> bool:
    return bool(_tables(folder))


def parse_mapping(spec: str | None) -> dict[str, str]:
    """``user=uid,item=iid,time=ts`` -> {"user": "uid", ...}."""
    out: dict[str, str] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        role, sep, col = part.partition("=")
        role = role.strip()
        if not sep or role not in ROLE_KEYS or not col.strip():
            raise DataError(f"bad column mapping {part!r}: expected ROLE=COLUMN with ROLE in "
                            f"{', '.join(ROLE_KEYS)}", field="columns")
        out[role] = col.strip()
    return out


def load_table(path: Path) -> pd.DataFrame:
    name = path.name
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(path)
        if ".jsonl" in name or name.endswith(".ndjson"):
            return pd.DataFrame([rec for _, rec in iter_records(path)])
        sep = "\t" if ".tsv" in name else ","
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError as e:
        raise DataError("empty file", path=path) from e
    except UnicodeDecodeError as e:
        raise DataError(f"invalid UTF-8 at byte {e.start}", path=path) from e
    except (pd.errors.ParserError, OSError, ValueError) as e:
        raise DataError(f"unreadable table: {e}", path=path) from e


def read(path: Path, columns: str | dict[str, str] | None = None, **_: Any) -> RawData:
    path = Path(path)
    files = [path] if path.is_file() else _tables(path)
    if not files:
        raise DataError(f"no table file ({', '.join(SUFFIXES)})", path=path)
    f = files[0]
    df = load_table(f)
    if df.empty:
        raise DataError("empty file: no rows", path=f)
    mapping = parse_mapping(columns) if not isinstance(columns, dict) else columns
    lower = {str(c).lower(): c for c in df.columns}
    cols: dict[str, list[Any]] = {}
    for role, key in ROLE_KEYS.items():
        col = mapping.get(role) or next((lower[n] for n in ROLES[key] if n in lower), None)
        if col is not None and col not in df.columns:
            raise DataError("missing column (named in the mapping)", path=f, field=col)
        if col is None:
            if role in ("user", "item"):
                raise DataError(f"missing column for '{role}' (map it with --columns "
                                f"{role}=NAME)", path=f, field=role)
            continue
        cols[key] = df[col].tolist()
    if "timestamp" in cols:
        cols["timestamp"] = _times(pd.Series(cols["timestamp"]))
    return RawData(interactions_frame(cols, f), items_frame(), [f], FORMAT,
                   notes={"columns": mapping})


def _times(s: pd.Series) -> list[int]:
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().mean() >= 0.5:
        return num.fillna(-1).astype("int64").tolist()
    ts = pd.to_datetime(s, errors="coerce", utc=True)
    out = pd.Series(-1, index=s.index, dtype="int64")
    ok = ts.notna()
    out[ok] = to_unix_seconds(ts[ok])
    return out.tolist()
