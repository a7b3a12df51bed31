"""The motivation artifact: per-review motivations of a dataset, split-independent.

Folder layout::

    reviews.parquet     one row per extracted review: input_hash, user_id, item_id (raw ids),
                        status, why, pos, neg, attr (lists of phrases), tokens, error
    manifest.json       format, dataset, model, prompt version, counts, coverage
    phrases.parquet     (after `lmmrec embed`) distinct texts, row i <-> embeddings row i
    embeddings.npy      (after `lmmrec embed`) float16 [n_texts, dim], L2-normalised

Profiles of a split are amassed from it by :mod:`lmmrec.text.profiles`, through the
leakage guard.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from lmmrec.data.leakage import split_pairs
from lmmrec.errors import DataError
from lmmrec.llm.store import UNANSWERED

FORMAT = "lmmrec-motivations/1"
REVIEW_COLUMNS = ["input_hash", "user_id", "item_id", "status", "why", "pos", "neg", "attr",
                  "prompt_tokens", "output_tokens", "cached_tokens", "latency_s", "attempts",
                  "error"]


def _records_frame(store_path: Path, inputs: list[Any]) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per review input that has a result. Results are looked up by input hash, so
    two interactions with the same review text both get the one extraction; successful
    answers are parsed again from the model's raw text with today's phrase rules (a rule made
    stricter drops phrases, one made looser recovers them), or from the stored parse when a
    store has no raw text (imported from an artifact)."""
    from lmmrec.llm.schemas import ReviewMotivations
    from lmmrec.llm.store import Store

    def today(r: Any) -> dict[str, Any]:
        if r.status != "ok":
            return {}
        src = r.parsed
        if r.raw:
            try:
                src = json.loads(r.raw)
            except ValueError:
                pass
        return ReviewMotivations.model_validate(src).model_dump() if src else {}

    with Store(store_path) as st:
        meta = st.meta()
        by_hash = {r.input_hash: r for r in st.records()}
    rows = []
    for inp in inputs:
        h = inp.input_hash()
        r = by_hash.get(h)
        if r is None:
            continue
        p = today(r)
        rows.append({"input_hash": h, "user_id": inp.user_id, "item_id": inp.item_id,
                     "status": r.status, "why": p.get("why", ""), "pos": p.get("pos", []),
                     "neg": p.get("neg", []), "attr": p.get("attr", []),
                     "prompt_tokens": r.prompt_tokens, "output_tokens": r.output_tokens,
                     "cached_tokens": r.cached_tokens, "latency_s": r.latency_s,
                     "attempts": r.attempts, "error": r.error or ""})
    df = pd.DataFrame(rows, columns=REVIEW_COLUMNS)
    return df, meta


def export_artifact(store_path: str | Path, out: str | Path,
                    data: str | Path) -> dict[str, Any]:
    """Write the artifact of ``store_path`` for dataset ``data`` into ``out`` atomically."""
    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.llm.job import review_inputs

    store_path, out = Path(store_path), Path(out)
    if not store_path.exists():
        raise DataError("store not found", path=store_path)
    ds = PreparedDataset.load(data)
    inputs = review_inputs(ds)
    df, meta = _records_frame(store_path, inputs)
    ok = int((df["status"] == "ok").sum())
    # unanswered requests (server down) are pending, not failures: a rerun retries them
    failed = int(((df["status"] == "failed") & ~df["error"].str.startswith(UNANSWERED)).sum())
    counts: dict[str, Any] = {
        "reviews_total": len(inputs), "extracted": ok, "failed": failed,
        "pending": len(inputs) - ok - failed, "complete": ok + failed == len(inputs),
        "failure_rate": round(failed / max(1, ok + failed), 4)}
    have = set(zip(df.loc[df["status"] == "ok", "user_id"],
                   df.loc[df["status"] == "ok", "item_id"], strict=True))
    coverage: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        keys = split_pairs(ds, split)
        coverage[split] = {"interactions": len(keys), "extracted": len(keys & have)}
    coverage["split_of"] = ds.manifest.get("split", {})
    calls = df.drop_duplicates("input_hash")
    manifest = {
        "format": FORMAT,
        "dataset": ds.name,
        "model_id": meta.get("model_id"),
        "prompt_version": meta.get("prompt_version"),
        "counts": counts,
        "coverage": coverage,
        # per distinct request (identical reviews share one), not per review row
        "tokens": {"prompt": int(calls["prompt_tokens"].sum()),
                   "output": int(calls["output_tokens"].sum()),
                   "cached": int(calls["cached_tokens"].sum())},
        # summed request latency: above the wall time when requests ran in parallel
        "request_seconds_sum": round(float(calls["latency_s"].sum()), 1),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        df.to_parquet(tmp / "reviews.parquet", index=False, compression="zstd")
        # The previous embeddings carry over only when they cover every phrase of this
        # export; otherwise the artifact has none until `lmmrec embed` (training refuses it).
        if _embedded_all(out, df):
            for name in ("phrases.parquet", "embeddings.npy"):
                shutil.copy2(out / name, tmp / name)
            manifest["embedding"] = read_manifest(out)["embedding"]
        write_manifest(tmp, manifest)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return manifest


def _embedded_all(folder: Path, reviews: pd.DataFrame) -> bool:
    """Whether ``folder`` holds embeddings of every phrase of ``reviews``."""
    from lmmrec.text.embed import artifact_texts

    if not all((folder / n).exists() for n in ("phrases.parquet", "embeddings.npy",
                                               "manifest.json")):
        return False
    if "embedding" not in read_manifest(folder):
        return False
    have = set(pd.read_parquet(folder / "phrases.parquet")["text"].tolist())
    return set(artifact_texts(reviews)) <= have


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "manifest.json"
    if not path.exists():
        raise DataError("not a motivation artifact (no manifest.json)", path=folder)
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", path=path, line=e.lineno) from e
    if m.get("format") != FORMAT:
        raise DataError(f"unsupported artifact format {m.get('format')!r}, expected {FORMAT}",
                        path=path, field="format")
    return m


def load_reviews(folder: str | Path) -> pd.DataFrame:
    """The artifact's successfully extracted reviews."""
    folder = Path(folder)
    read_manifest(folder)
    df = pd.read_parquet(folder / "reviews.parquet")
    missing = [c for c in ("user_id", "item_id", "status", "pos", "neg", "attr")
               if c not in df.columns]
    if missing:
        raise DataError("missing column", path=folder / "reviews.parquet", field=missing[0])
    return df[df["status"] == "ok"].reset_index(drop=True)


def import_artifact(folder: str | Path, store_path: str | Path) -> int:
    """Seed a store from a released artifact so extraction resumes instead of restarting."""
    from lmmrec.llm.store import Record, Store

    folder = Path(folder)
    m = read_manifest(folder)
    df = pd.read_parquet(folder / "reviews.parquet")
    n = 0
    with Store(store_path, m["model_id"], m["prompt_version"]) as st:
        st.db.execute("BEGIN IMMEDIATE")
        for r in df.itertuples(index=False):
            parsed = ({"why": r.why, "pos": list(r.pos), "neg": list(r.neg),
                       "attr": list(r.attr)} if r.status == "ok" else None)
            st.put(Record(m["model_id"], m["prompt_version"], r.input_hash, r.user_id,
                          r.item_id, r.status, raw=None, parsed=parsed,
                          prompt_tokens=int(r.prompt_tokens), output_tokens=int(r.output_tokens),
                          cached_tokens=int(r.cached_tokens), latency_s=float(r.latency_s),
                          attempts=int(r.attempts), error=r.error or None))
            n += 1
        st.db.execute("COMMIT")
    return n
