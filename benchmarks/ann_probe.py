"""Exact scoring of one user against a whole catalogue, and what an approximate index would
change: timings, and recall@20 of a faiss HNSW index against exact scoring.

    python benchmarks/ann_probe.py RUN_DIR

faiss is not a dependency of lmmrec: the index part runs only where ``import faiss`` works
(e.g. `pip install --target DIR faiss-cpu` and DIR on PYTHONPATH), and is skipped otherwise.
Both sides rank the same way the service does: inner product of the run's final
embeddings, the user's training items removed, top 20.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

K = 20
SAMPLE = 1000
HNSW_M = 32
EF_SEARCH = (32, 64, 128)


def embeddings(run: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """(user, item) float32 embeddings of a finished run, and its training matrix."""
    import torch

    from lmmrec.train import trainer

    _, ds, model = trainer.load_run(run)
    with torch.no_grad():
        u, i = model(None)
    return u.numpy().astype(np.float32), i.numpy().astype(np.float32), ds.train


def exact_top(users_emb: np.ndarray, item_emb: np.ndarray, train: Any,
              users: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact top-K of each user (one at a time, as a request would) and ms per user."""
    import torch

    from lmmrec.eval.ranking import topk_scored

    ue, ie = torch.from_numpy(users_emb), torch.from_numpy(item_emb)
    out = np.zeros((len(users), K), dtype=np.int64)
    t = time.perf_counter()
    with torch.no_grad():
        for n, u in enumerate(users):
            out[n] = topk_scored(ue, ie, np.array([u]), train, K)[1][0].numpy()
    return out, (time.perf_counter() - t) / len(users) * 1e3


def hnsw(users_emb: np.ndarray, item_emb: np.ndarray, train: Any, users: np.ndarray,
         exact: np.ndarray) -> dict[str, Any] | None:
    """Build time, ms per single query and recall@K vs ``exact`` for a few efSearch."""
    try:
        import faiss
    except ImportError:
        return None
    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    index = faiss.IndexHNSWFlat(item_emb.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.add(item_emb)
    build_s = time.perf_counter() - t
    seen = [set(train.indices[train.indptr[u]:train.indptr[u + 1]].tolist()) for u in users]
    runs = []
    for ef in EF_SEARCH:
        found = []
        t = time.perf_counter()
        for u, s in zip(users, seen, strict=True):
            kq = min(item_emb.shape[0], K + len(s))  # room to drop the user's seen items
            index.hnsw.efSearch = max(ef, kq)
            found.append(index.search(users_emb[u:u + 1], kq)[1][0])
        ms = (time.perf_counter() - t) / len(users) * 1e3
        recall = [_recall(f, s, e) for f, s, e in zip(found, seen, exact, strict=True)]
        runs.append({"ef_search": ef, "ms_per_query": round(ms, 3),
                     "recall_at_20": round(float(np.mean(recall)), 4)})
    return {"faiss": faiss.__version__, "index": f"IndexHNSWFlat(M={HNSW_M}, inner product)",
            "build_s": round(build_s, 1), "runs": runs}


def _recall(found: np.ndarray, seen: set[int], exact: np.ndarray) -> float:
    """Share of the exact top K among the index's first K unseen items."""
    kept = [int(i) for i in found if i >= 0 and int(i) not in seen][:K]
    return len(set(kept) & set(exact.tolist())) / K


def probe(run: Path, seed: int = 7, sample: int = SAMPLE) -> dict[str, Any]:
    """Exact timings, and the HNSW figures where faiss is importable, with report lines."""
    users_emb, item_emb, train = embeddings(run)
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(len(users_emb), min(sample, len(users_emb)), replace=False))
    exact, exact_ms = exact_top(users_emb, item_emb, train, users)
    out: dict[str, Any] = {"items": int(item_emb.shape[0]), "dim": int(item_emb.shape[1]),
                           "users_sampled": int(len(users)), "seed": seed,
                           "exact_ms_per_user": round(exact_ms, 3), "hnsw": hnsw(
                               users_emb, item_emb, train, users, exact)}
    out["lines"] = lines(out)
    return out


def lines(p: dict[str, Any]) -> list[str]:
    text = [f"Exact scoring of one user against all {p['items']:,} items ({p['dim']}-d, "
            f"training items masked, top {K}, one thread): {p['exact_ms_per_user']:.2f} ms "
            f"(mean over {p['users_sampled']} seeded users)."]
    h = p["hnsw"]
    if h is None:
        return [*text, "", "faiss was not importable: no index measured."]
    text += ["", f"faiss {h['faiss']} {h['index']}, built in {h['build_s']} s, one thread; "
             f"each user's search asks for {K} + its seen items (efSearch at least that), so "
             f"{K} remain after removing them; recall@20 against exact scoring:", "",
             "| efSearch | ms per query | recall@20 |", "|---:|---:|---:|"]
    text += [f"| {r['ef_search']} | {r['ms_per_query']:.3f} | {r['recall_at_20']:.4f} |"
             for r in h["runs"]]
    return text


if __name__ == "__main__":
    result = probe(Path(sys.argv[1]))
    print("\n".join(result.pop("lines")))
    print(json.dumps(result, indent=2))
