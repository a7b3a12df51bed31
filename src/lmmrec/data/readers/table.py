"""Any table (CSV, TSV, JSON lines, Parquet) with a column mapping.

The mapping names the source column of each role: ``user``, ``item`` (required),
``rating``, ``time``, ``title``, ``text``, ``split``. Unmapped roles are guessed from common
names. ``time`` may be unix seconds or a date string.

A folder holds either one table, or one table per split (``*_train``/``*_trn``/``train``,
``*_val``/``*_valid``/``valid``, ``*_test``/``*_tst``/``test``): the split is then the
source's own, as it is for a single table with a ``split`` column. Any other mix is refused
with the list of files, never resolved by picking one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from lmmrec.data.readers._io import (
    RawData,
    interactions_frame,
    items_frame,
    iter_lines,
    iter_records,
    read_document,
    to_unix_seconds,
)
from lmmrec.data.readers.recbole import ROLES
from lmmrec.errors import DataError

FORMAT = "table"
SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".csv.gz", ".tsv.gz",
            ".jsonl.gz", ".ndjson.gz", ".json.gz")
ROLE_KEYS = {"user": "user_id", "item": "item_id", "rating": "rating", "time": "timestamp",
             "title": "title", "text": "text", "split": "split"}
# column names guessed for each role (lower case); the Amazon 2018 names included
GUESSES = {**ROLES, "user_id": (*ROLES["user_id"], "reviewerid", "user_name"),
           "timestamp": (*ROLES["timestamp"], "unixreviewtime", "ts"),
           "split": ("split",)}
SPLIT_WORDS = {"train": ("train", "trn", "training"),
               "val": ("val", "valid", "validation", "dev"),
               "test": ("test", "tst", "testing")}
SPLIT_OF_WORD = {w: s for s, words in SPLIT_WORDS.items() for w in words}


def _tables(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(SUFFIXES))


def detect(folder: Path) -> bool:
    return bool(_tables(folder))


def split_of_file(path: Path) -> str | None:
    """'train' | 'val' | 'test' when the file name says so (``total_trn.csv``, ``valid.tsv``,
    ``ml.test.jsonl``), else None."""
    name = path.name
    stem = name[:-len(next(s for s in SUFFIXES if name.endswith(s)))] if name.endswith(
        SUFFIXES) else path.stem
    last = re.split(r"[._\-\s]", stem.lower())[-1]
    return SPLIT_OF_WORD.get(last)


def layout(path: Path) -> list[tuple[str | None, Path]]:
    """The files to read and the split each one holds (None: no split of its own)."""
    if path.is_file():
        return [(None, path)]
    files = _tables(path)
    if not files:
        raise DataError(f"no table file ({', '.join(SUFFIXES)})", path=path)
    listing = ", ".join(p.name for p in files)
    by_split = {p: split_of_file(p) for p in files}
    split_files = [p for p in files if by_split[p]]
    plain = [p for p in files if not by_split[p]]
    if not split_files:
        if len(plain) > 1:
            raise DataError(f"{len(plain)} tables and no way to tell which one to read "
                            f"({listing}): pass one file as the path, or name them "
                            "*_train, *_val, *_test", path=path)
        return [(None, plain[0])]
    if plain:
        raise DataError(f"both split files ({', '.join(p.name for p in split_files)}) and "
                        f"other tables ({', '.join(p.name for p in plain)}): ambiguous; pass "
                        "one file as the path, or keep only the split files in the folder",
                        path=path)
    out: list[tuple[str | None, Path]] = []
    for split in SPLIT_WORDS:
        mine = [p for p in split_files if by_split[p] == split]
        if len(mine) != 1:
            what = "no" if not mine else f"{len(mine)}"
            raise DataError(f"{what} {split} file among the split files ({listing}): a "
                            "split folder needs exactly one train, one val and one test "
                            "table", path=path)
        out.append((split, mine[0]))
    return out


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


def _json_table(path: Path) -> pd.DataFrame:
    """JSON lines, or one JSON array of objects (a ``.json`` file may hold either)."""
    first = next((line for _, line in iter_lines(path)), "")
    if first.lstrip().startswith("["):
        doc = read_document(path)
        if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
            raise DataError("expected JSON lines or an array of objects", path=path)
        return pd.DataFrame(doc)
    return pd.DataFrame([rec for _, rec in iter_records(path)])


def load_table(path: Path) -> pd.DataFrame:
    name = path.name
    try:
        if name.endswith(".parquet"):
            return pd.read_parquet(path)
        if name.endswith((".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")):
            return _json_table(path)
        sep = "\t" if ".tsv" in name else ","
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError as e:
        raise DataError("empty file", path=path) from e
    except UnicodeDecodeError as e:
        raise DataError(f"invalid UTF-8 at byte {e.start}", path=path) from e
    except (pd.errors.ParserError, OSError, ValueError, json.JSONDecodeError) as e:
        raise DataError(f"unreadable table: {e}", path=path) from e


def _columns(df: pd.DataFrame, f: Path, mapping: dict[str, str]) -> dict[str, list[Any]]:
    lower = {str(c).lower(): c for c in df.columns}
    cols: dict[str, list[Any]] = {}
    for role, key in ROLE_KEYS.items():
        col = mapping.get(role) or next((lower[n] for n in GUESSES[key] if n in lower), None)
        if col is not None and col not in df.columns:
            raise DataError("missing column (named in the mapping)", path=f, field=col)
        if col is None:
            if role in ("user", "item"):
                raise DataError(f"missing column for '{role}' (map it with --columns "
                                f"{role}=NAME)", path=f, field=role)
            continue
        cols[key] = df[col].tolist()
        if key == "split":
            cols[key] = _split_values(df[col], f, str(col))
    if "timestamp" in cols:
        cols["timestamp"] = _times(pd.Series(cols["timestamp"]))
    return cols


def _split_values(s: pd.Series, f: Path, col: str) -> list[str]:
    norm = s.astype(str).str.strip().str.lower().map(SPLIT_OF_WORD)
    bad = norm.isna().to_numpy().nonzero()[0]
    if len(bad):
        row = int(bad[0])
        line = row + 2 if f.name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")) else None
        raise DataError(f"unknown split value {s.iloc[row]!r} (expected train/val/test, "
                        "trn/valid/tst, ...)", path=f, line=line, field=col)
    return norm.tolist()


def read(path: Path, columns: str | dict[str, str] | None = None, **_: Any) -> RawData:
    path = Path(path)
    files = layout(path)
    mapping = parse_mapping(columns) if not isinstance(columns, dict) else columns
    merged: dict[str, list[Any]] = {}
    for split, f in files:
        df = load_table(f)
        if df.empty:
            raise DataError("empty file: no rows", path=f)
        cols = _columns(df, f, mapping)
        if split is not None:
            cols["split"] = [split] * len(df)
        if merged and set(cols) != set(merged):
            raise DataError(f"columns differ from {files[0][1].name}'s "
                            f"({', '.join(sorted(set(cols) ^ set(merged)))})", path=f)
        for k, v in cols.items():
            merged.setdefault(k, []).extend(v)
    presplit = "split" in merged
    notes: dict[str, Any] = {"columns": mapping}
    if presplit:
        notes["split_from"] = ("split files" if files[0][0] is not None
                               else "split column")
        missing = [s for s in SPLIT_WORDS if s not in set(merged["split"])]
        if missing:
            raise DataError(f"the split column has no {', '.join(missing)} rows",
                            path=files[0][1], field="split")
    return RawData(interactions_frame(merged, files[0][1]), items_frame(),
                   [f for _, f in files], FORMAT, presplit=presplit, notes=notes)


def _times(s: pd.Series) -> list[int]:
    num = pd.to_numeric(s, errors="coerce")
    if num.notna().mean() >= 0.5:
        return num.fillna(-1).astype("int64").tolist()
    ts = pd.to_datetime(s, errors="coerce", utc=True)
    out = pd.Series(-1, index=s.index, dtype="int64")
    ok = ts.notna()
    out[ok] = to_unix_seconds(ts[ok])
    return out.tolist()
