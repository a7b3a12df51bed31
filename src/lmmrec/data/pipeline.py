"""prepare = resolve source -> read -> preprocess -> write atomically, with checksums.

The output is built in a temporary folder beside ``out`` and renamed into place at the
end, so a failure leaves no (partial) output folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lmmrec.data.catalog import DEFAULT_SEED, resolve
from lmmrec.data.dataset import PreparedDataset, is_prepared
from lmmrec.data.preprocess import prepare
from lmmrec.data.readers import read_raw
from lmmrec.data.splits import parse_ratio
from lmmrec.errors import DataError
from lmmrec.io import check_replaceable, clean_orphans, new_dir, sha256


def source_entries(paths: list[Path], base: Path) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        try:
            rel = str(p.relative_to(base)) if base.is_dir() else p.name
        except ValueError:
            rel = p.name
        out.append({"file": rel, "bytes": p.stat().st_size, "sha256": sha256(p)})
    return out


def build(source: str, *, fmt: str | None = None, kcore: int | None = None,
          split: str | None = None, seed: int | None = None,
          rating_threshold: float | None = None, columns: str | None = None
          ) -> PreparedDataset:
    """Read and preprocess ``source`` (a known name or a path) in memory. ``split``:
    "keep", "loo" or "a:b:c"; by default the source's own split, else 3:1:1."""
    path, name, known = resolve(source)
    fmt = fmt or (known.format if known else None)
    kcore = kcore if kcore is not None else (known.kcore if known else 0)
    split = split or (known.split if known else None)  # None: kept if the source has one
    seed = seed if seed is not None else (known.seed if known else DEFAULT_SEED)
    if kcore < 0:
        raise DataError("kcore must be >= 0", field="kcore")
    if split not in (None, "keep", "loo"):
        parse_ratio(split)  # a bad split fails before the data is read
    raw = read_raw(path, fmt, columns=columns)
    extra = {"sources": source_entries(raw.sources, path)}
    return prepare(raw, kcore_k=kcore, rating_threshold=rating_threshold, split=split,
                   seed=seed, name=name, extra_manifest=extra)


def _check_out(out: Path, overwrite: bool) -> None:
    clean_orphans(out)
    check_replaceable(out, overwrite, is_prepared(out), "a prepared dataset")


def write_atomic(ds: PreparedDataset, out: Path, overwrite: bool = False) -> Path:
    """Save ``ds`` to ``out`` in one swap; an existing ``out`` is replaced only when it is a
    prepared dataset and ``overwrite`` is given."""
    out = Path(out)
    _check_out(out, overwrite)
    with new_dir(out) as tmp:
        ds.save(tmp)
    ds.root = out
    return out


def prepare_to(source: str, out: str | Path, overwrite: bool = False,
               **options: Any) -> PreparedDataset:
    _check_out(Path(out), overwrite)  # before the (slow) build
    ds = build(source, **options)
    write_atomic(ds, Path(out), overwrite=overwrite)
    return ds
