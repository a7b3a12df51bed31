"""A motivation artifact with random motivations, for measuring cost at scales no LLM run
here could reach (the growth, overhead and serving benchmarks). It is a real artifact
folder: training, `recommend` and the service read it as they read an extracted one.

Every phrase is "motivation k" from a vocabulary of about one per hundred interactions,
drawn Zipf(1) (a few motivations are common, most are rare, as in real extractions); its
vector is a random unit vector. The numbers measure cost, never quality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

TEXT_DIM = 384  # all-MiniLM-L6-v2's width, the default encoder's


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """P(rank k) ∝ k^-exponent over n ranks."""
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return w / w.sum()


def write_synthetic_artifact(data: str | Path, out: str | Path, share: float = 1.0,
                             seed: int = 0, dim: int = TEXT_DIM) -> dict[str, Any]:
    """Random motivations for a seeded ``share`` of the interactions of the prepared dataset
    ``data`` (every split, as a real export holds): 1-2 `pos`, 0-1 `neg` and 1-2 `attr`
    phrases each, embedded (float16, as `lmmrec embed` stores them). Written atomically to
    ``out``; returns what it wrote."""
    import pandas as pd

    from lmmrec.data.dataset import PreparedDataset
    from lmmrec.io import new_dir
    from lmmrec.layout import ARTIFACT, FINGERPRINT
    from lmmrec.text.artifact import FORMAT, write_manifest

    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], not {share}")
    ds = PreparedDataset.load(data)
    rng = np.random.default_rng(seed)
    inter = ds.interactions
    rows = np.sort(rng.choice(len(inter), max(2, int(len(inter) * share)), replace=False))
    n_phrases = max(64, len(inter) // 100)
    vocab = np.array([f"motivation {k}" for k in range(n_phrases)], dtype=object)
    p = zipf_weights(n_phrases, 1.0)
    lists = {}
    for col, lo, hi in (("pos", 1, 2), ("neg", 0, 1), ("attr", 1, 2)):
        counts = rng.integers(lo, hi + 1, size=len(rows))
        flat = vocab[rng.choice(n_phrases, counts.sum(), p=p)]
        lists[col] = [list(x) for x in np.split(flat, np.cumsum(counts)[:-1])]
    n = len(rows)
    reviews = pd.DataFrame({
        "input_hash": [f"synthetic{k}" for k in range(n)],
        "user_id": ds.users["raw_id"].astype(str).to_numpy()[inter["user"].to_numpy()[rows]],
        "item_id": ds.items["raw_id"].astype(str).to_numpy()[inter["item"].to_numpy()[rows]],
        "status": "ok", "why": "", **lists, "prompt_tokens": 0, "output_tokens": 0,
        "cached_tokens": 0, "latency_s": 0.0, "attempts": 1, "error": ""})
    emb = rng.normal(size=(n_phrases, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    with new_dir(out) as tmp:
        reviews[list(ARTIFACT.review_columns)].to_parquet(tmp / ARTIFACT.reviews, index=False)
        pd.DataFrame({ARTIFACT.phrase_text: vocab}).to_parquet(tmp / ARTIFACT.phrases,
                                                               index=False)
        np.save(tmp / ARTIFACT.embeddings, emb.astype(np.float16))
        write_manifest(tmp, {"format": FORMAT, "dataset": ds.name,
                             FINGERPRINT: ds.fingerprint, "model_id": "synthetic:random-unit",
                             "prompt_version": "synthetic", "counts": {"reviews_total": n},
                             "embedding": {"kind": "synthetic", "model": "random-unit",
                                           "dim": dim}})
    return {"reviews": n, "phrases": n_phrases, "dim": dim}
