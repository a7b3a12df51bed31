"""Readers, one module per source format, each returning a :class:`RawData`.

Modules are imported lazily by name. Detection goes most specific first: a folder with
RLMRec pickles is "rlmrec" even if it also holds a CSV.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from lmmrec.data.readers._io import RawData
from lmmrec.errors import DataError

READERS = {
    "rlmrec": "lmmrec.data.readers.rlmrec",
    "recbole": "lmmrec.data.readers.recbole",
    "steam-au": "lmmrec.data.readers.steam",
    "amazon2023": "lmmrec.data.readers.amazon2023",
    "amazon2014": "lmmrec.data.readers.amazon2014",
    "table": "lmmrec.data.readers.table",
}

__all__ = ["READERS", "RawData", "detect_format", "read_raw"]


def _module(fmt: str) -> Any:
    if fmt not in READERS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(READERS)}",
                        field="format")
    return importlib.import_module(READERS[fmt])


def detect_format(path: str | Path) -> str:
    path = Path(path)
    if not path.exists():
        raise DataError("dataset path not found", path=path)
    if path.is_file():
        return "table"
    for fmt in READERS:
        if _module(fmt).detect(path):
            return fmt
    raise DataError("cannot tell the dataset format from the files here; pass --format "
                    f"({', '.join(READERS)})", path=path)


def read_raw(path: str | Path, fmt: str | None = None, **options: Any) -> RawData:
    """Read a dataset folder (or a table file) in ``fmt``, detected when not given."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    if not path.exists():
        raise DataError("dataset path not found", path=path)
    return _module(fmt).read(path, **options)
