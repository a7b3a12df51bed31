"""The motivation artifact: per-review motivations of a dataset, split-independent.

Folder layout (file names and columns: :data:`lmmrec.layout.ARTIFACT`)::

    reviews.parquet     one row per extracted review: input_hash, user_id, item_id (raw ids),
                        status, why, pos, neg, attr (lists of phrases), tokens, error
    items.parquet       (optional, `extract --items`) one row per item listing: input_hash,
                        item_id, status, what, attr, serves, tokens, error
    manifest.json       format, dataset, model, prompt version, counts, coverage, items
    phrases.parquet     (after `lmmrec embed`) distinct texts, row i <-> embeddings row i
    embeddings.npy      (after `lmmrec embed`) float16 [n_texts, dim], L2-normalised

Profiles of a split are amassed from it by :mod:`lmmrec.text.profiles`, through the
leakage guard.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from lmmrec.data.dataset import PreparedDataset
from lmmrec.data.leakage import split_pairs
from lmmrec.errors import DataError, LmmrecError
from lmmrec.io import atomic_write_json, check_replaceable, clean_orphans, new_dir, read_json
from lmmrec.layout import ARTIFACT, FINGERPRINT
from lmmrec.llm.inputs import inputs_for, item_inputs, unit_counts
from lmmrec.llm.store import UNANSWERED, Record, Store

FORMAT = ARTIFACT.format


def _records_frame(store_path: Path, inputs: list[Any],
                   columns: Iterable[str] = ARTIFACT.review_columns
                   ) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per input (review or item) that has a result. Results are looked up by input
    hash, so two interactions with the same review text both get the one extraction;
    successful answers are parsed again from the model's raw text with today's phrase rules
    (a rule made stricter drops phrases, one made looser recovers them), or from the stored
    parse when a store has no raw text (imported from an artifact)."""
    def today(inp: Any, r: Any) -> dict[str, Any]:
        empty = inp.OUTPUT().model_dump()
        if r.status != "ok":
            return empty
        src = r.parsed
        if r.raw:
            try:
                src = json.loads(r.raw)
            except (ValueError, RecursionError):
                pass
        return inp.parse(src).model_dump() if src else empty

    with Store(store_path) as st:
        meta = st.meta()
        by_hash = {r.input_hash: r for r in st.records()}
    rows = []
    dropped: dict[str, int] = {}
    seen: set[str] = set()
    for inp in inputs:
        h = inp.input_hash()
        r = by_hash.get(h)
        if r is None:
            continue
        fields = today(inp, r)
        counts = fields.pop("dropped", None) or {}
        if h not in seen:  # one request, counted once however many rows share it
            seen.add(h)
            for k, v in counts.items():
                dropped[k] = dropped.get(k, 0) + int(v)
        rows.append({"input_hash": h, "user_id": inp.user_id, "item_id": inp.item_id,
                     "status": r.status, **fields,
                     "prompt_tokens": r.prompt_tokens, "output_tokens": r.output_tokens,
                     "cached_tokens": r.cached_tokens, "latency_s": r.latency_s,
                     "attempts": r.attempts, "error": r.error or ""})
    df = pd.DataFrame(rows, columns=list(columns))
    if dropped:  # a grounded prompt: what its filter removed, for the manifest
        meta = {**meta, "phrases_dropped": dropped}
    return df, meta


def _counts(df: pd.DataFrame, total: int) -> dict[str, Any]:
    ok = int((df["status"] == "ok").sum())
    # unanswered requests (server down) are pending, not failures: a rerun retries them
    failed = int(((df["status"] == "failed") & ~df["error"].str.startswith(UNANSWERED)).sum())
    return {"total": total, "extracted": ok, "failed": failed, "pending": total - ok - failed,
            "complete": ok + failed == total, "failure_rate": round(failed / max(1, ok + failed),
                                                                     4)}


def _unit_counts(store_path: Path, inputs: list[Any], unit: str = "reviews"
                 ) -> dict[str, Any]:
    """The labelled reviews/texts progress `extract stats --data` reports too."""
    with Store(store_path) as st:
        return unit_counts(inputs, st.statuses(), unit)


def _usage(df: pd.DataFrame) -> dict[str, Any]:
    """Tokens and summed request latency per distinct request (identical reviews or
    listings share one), not per row; the latency sum is above the wall time when requests
    ran in parallel."""
    calls = df.drop_duplicates("input_hash")
    return {"tokens": {"prompt": int(calls["prompt_tokens"].sum()),
                       "output": int(calls["output_tokens"].sum()),
                       "cached": int(calls["cached_tokens"].sum())},
            "request_seconds_sum": round(float(calls["latency_s"].sum()), 1)}


def is_artifact(folder: str | Path) -> bool:
    """Whether ``folder`` holds a motivation artifact (its manifest names this format)."""
    try:
        read_manifest(folder)
    except LmmrecError:
        return False
    return True


def export_artifact(store_path: str | Path, out: str | Path, data: str | Path,
                    item_store: str | Path | None = None,
                    overwrite: bool = False) -> dict[str, Any]:
    """Write the artifact of ``store_path`` for dataset ``data`` into ``out`` atomically.
    An existing ``out`` is replaced only when it is an artifact and ``overwrite`` is given.
    Item offers come from ``item_store`` (`extract --items`); without one, those of the
    artifact already at ``out`` are kept."""
    store_path, out = Path(store_path), Path(out)
    clean_orphans(out)
    check_replaceable(out, overwrite, is_artifact(out), "a motivation artifact")
    for path in (store_path, item_store):
        if path is not None and not Path(path).exists():
            raise DataError("store not found", path=path)
    ds = PreparedDataset.load(data, require_splits=False)
    df, meta, counts = _review_part(store_path, ds, data)
    items, items_info = _item_part(item_store, ds, out)
    manifest = _manifest(ds, df, meta, counts)
    if items is not None:
        manifest["items"] = items_info
    # The previous embeddings carry over only when they cover every phrase of this
    # export; otherwise the artifact has none until `lmmrec embed` (training refuses it).
    carried: tuple[str, ...] = ()
    if _embedded_all(out, df, items):
        carried = (ARTIFACT.phrases, ARTIFACT.embeddings)
        manifest["embedding"] = read_manifest(out)["embedding"]
    write_artifact(out, df, manifest, items, copy_from=out, copy=carried)
    return manifest


def _review_part(store_path: Path, ds: PreparedDataset, data: str | Path
                 ) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """The reviews' rows, the store's meta and the review counts."""
    with Store(store_path) as st:
        version = st.meta().get("prompt_version") or "review_v1"
    inputs = inputs_for(ds, version)
    df, meta = _records_frame(store_path, inputs)
    if inputs and df.empty and _has_records(store_path):
        raise DataError(f"none of the store's results is a review of dataset {ds.name!r} "
                        f"({data}); was it extracted from another dataset?", path=store_path)
    c = _counts(df, len(inputs))
    counts: dict[str, Any] = {"reviews_total": c.pop("total"), **c,
                              **_unit_counts(store_path, inputs)}
    return df, meta, counts


def _item_part(item_store: str | Path | None, ds: PreparedDataset, out: Path
               ) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
    """Item offers and their manifest entry: from ``item_store``, else those at ``out``."""
    if item_store is not None:
        listed = item_inputs(ds)
        items, item_meta = _records_frame(Path(item_store), listed, ARTIFACT.item_columns)
        return items, {"model_id": item_meta.get("model_id"),
                       "prompt_version": item_meta.get("prompt_version"),
                       "counts": {**_counts(items, len(listed)),
                                  **_unit_counts(Path(item_store), listed, "items")},
                       **_usage(items)}
    if (out / ARTIFACT.items).exists():
        return pd.read_parquet(out / ARTIFACT.items), read_manifest(out).get("items")
    return None, None


def _manifest(ds: PreparedDataset, df: pd.DataFrame, meta: dict[str, Any],
              counts: dict[str, Any]) -> dict[str, Any]:
    ok = df["status"] == "ok"
    failed = (df["status"] == "failed") & ~df["error"].str.startswith(UNANSWERED)  # for good
    have = set(zip(df.loc[ok, "user_id"], df.loc[ok, "item_id"], strict=True))
    lost = set(zip(df.loc[failed, "user_id"], df.loc[failed, "item_id"], strict=True))
    coverage: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        keys = split_pairs(ds, split)
        coverage[split] = {"interactions": len(keys), "extracted": len(keys & have),
                           "failed": len(keys & lost)}
    coverage["split_of"] = ds.manifest.get("split", {})
    return {
        "format": FORMAT,
        "dataset": ds.name,  # for people; datasets are matched on the fingerprint
        FINGERPRINT: ds.fingerprint,
        "model_id": meta.get("model_id"),
        "prompt_version": meta.get("prompt_version"),
        "counts": counts,
        **({"phrases_dropped": meta["phrases_dropped"]} if "phrases_dropped" in meta else {}),
        "coverage": coverage,
        **_usage(df),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def covers_training(manifest: dict[str, Any]) -> bool:
    """Whether an artifact has an answer for every training review of its split: extracted,
    or failed for good (the model gave no valid answer; a rerun would repeat it). Manifests
    from before per-split failures count the artifact's failures against training."""
    train = manifest.get("coverage", {}).get("train")
    if not train:
        return False
    failed = train.get("failed", manifest.get("counts", {}).get("failed", 0))
    return train["extracted"] + failed >= train["interactions"]


def write_artifact(out: Path, reviews: pd.DataFrame, manifest: dict[str, Any],
                   items: pd.DataFrame | None = None, copy_from: Path | None = None,
                   copy: Iterable[str] = ()) -> None:
    """Write an artifact folder at ``out`` in one swap: ``reviews``, ``items`` when given,
    the files ``copy`` that ``copy_from`` has (byte for byte), and ``manifest``."""
    with new_dir(out) as tmp:
        reviews.to_parquet(tmp / ARTIFACT.reviews, index=False, compression="zstd")
        if items is not None:
            items.to_parquet(tmp / ARTIFACT.items, index=False, compression="zstd")
        for name in copy:
            if copy_from is not None and (copy_from / name).exists():
                shutil.copy2(copy_from / name, tmp / name)
        write_manifest(tmp, manifest)


def _has_records(store_path: Path) -> bool:
    with Store(store_path) as st:
        c = st.counts()
    return c["done"] + c["failed"] + c["unanswered"] > 0


def _embedded_all(folder: Path, reviews: pd.DataFrame, items: pd.DataFrame | None) -> bool:
    """Whether ``folder`` holds embeddings of every phrase of ``reviews`` and ``items``."""
    if not all((folder / n).exists() for n in (ARTIFACT.phrases, ARTIFACT.embeddings,
                                               ARTIFACT.manifest)):
        return False
    if "embedding" not in read_manifest(folder):
        return False
    have = set(pd.read_parquet(folder / ARTIFACT.phrases)[ARTIFACT.phrase_text].tolist())
    return set(artifact_texts(reviews, items)) <= have


def artifact_texts(reviews: pd.DataFrame, items: pd.DataFrame | None = None) -> list[str]:
    """Every distinct phrase of an artifact's reviews and item offers, sorted (so row order
    is deterministic)."""
    texts: set[str] = set()
    for frame, cols in ((reviews, ARTIFACT.review_phrases), (items, ARTIFACT.item_phrases)):
        if frame is None:
            continue
        for col in cols:
            for phrases in frame[col]:
                texts.update(str(p) for p in phrases)
    return sorted(texts)


def artifact_fingerprint(folder: str | Path) -> str:
    """sha256 (16 hex) of what training reads from an artifact: its reviews, item offers,
    phrases and embeddings. A run records it, so a finished experiment cell is never reused
    once its artifact has changed (a re-export, more reviews, item offers added)."""
    folder = Path(folder)
    stamp = tuple((n, (folder / n).stat().st_mtime_ns, (folder / n).stat().st_size)
                  for n in ARTIFACT.data_files if (folder / n).exists())
    return _fingerprint(str(folder.resolve()), stamp)


@functools.lru_cache(maxsize=64)
def _fingerprint(folder: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in stamp:  # the stamp keys the cache: a rewritten file is hashed again
        h.update(name.encode())
        with open(Path(folder) / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    atomic_write_json(folder / ARTIFACT.manifest, manifest, sort_keys=True)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / ARTIFACT.manifest
    if not path.exists():
        raise DataError(f"not a motivation artifact (no {ARTIFACT.manifest})", path=folder)
    m = read_json(path)
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        m = m if isinstance(m, dict) else {}
        raise DataError(f"unsupported artifact format {m.get('format')!r}, expected {FORMAT}",
                        path=path, field="format")
    return m


def load_reviews(folder: str | Path, ok_only: bool = True) -> pd.DataFrame:
    """The artifact's successfully extracted reviews (``ok_only``), else every row."""
    folder = Path(folder)
    read_manifest(folder)
    df = _read_table(folder / ARTIFACT.reviews, ARTIFACT.required_review_columns)
    return df[df["status"] == "ok"].reset_index(drop=True) if ok_only else df


def load_items(folder: str | Path, ok_only: bool = True) -> pd.DataFrame:
    """The artifact's successfully extracted item offers (``ok_only``), else every row;
    empty if it has none."""
    path = Path(folder) / ARTIFACT.items
    if not path.exists():
        return pd.DataFrame(columns=list(ARTIFACT.item_columns))
    df = _read_table(path, ARTIFACT.required_item_columns)
    return df[df["status"] == "ok"].reset_index(drop=True) if ok_only else df


def _read_table(path: Path, required: Iterable[str]) -> pd.DataFrame:
    df = pd.read_parquet(path)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError("missing column", path=path, field=missing[0])
    return df


def import_artifact(folder: str | Path, store_path: str | Path, items: bool = False) -> int:
    """Seed a store from a released artifact so extraction resumes instead of restarting
    (``items``: an item store, from the artifact's item offers)."""
    folder = Path(folder)
    m = read_manifest(folder)
    if items:
        if "items" not in m or not (folder / ARTIFACT.items).exists():
            return 0
        model_id, version = m["items"]["model_id"], m["items"]["prompt_version"]
        df = load_items(folder, ok_only=False)
        fields = ("what", "attr", "serves")
    else:
        model_id, version = m["model_id"], m["prompt_version"]
        df = load_reviews(folder, ok_only=False)
        fields = ("why", "pos", "neg", "attr")
    with Store(store_path, model_id, version) as st:
        st.db.execute("BEGIN IMMEDIATE")
        for r in df.itertuples(index=False):
            st.put(_record(r, fields, model_id, version))
        st.db.execute("COMMIT")
    return len(df)


def _record(r: Any, fields: tuple[str, ...], model_id: str, version: str) -> Record:
    """A store record of one artifact row (its stored parse; no raw text)."""
    parsed = ({f: (getattr(r, f) if isinstance(getattr(r, f), str) else list(getattr(r, f)))
               for f in fields} if r.status == "ok" else None)
    return Record(model_id, version, r.input_hash, getattr(r, "user_id", ""), r.item_id,
                  r.status, raw=None, parsed=parsed, prompt_tokens=int(r.prompt_tokens),
                  output_tokens=int(r.output_tokens), cached_tokens=int(r.cached_tokens),
                  latency_s=float(r.latency_s), attempts=int(r.attempts),
                  error=r.error or None)
