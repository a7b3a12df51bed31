"""How much ranking signal does each text side carry on its own? No training: every user and
item is its text side's pooled vector (the weighted mean of its phrase or review vectors,
as LMMRec pools them before its encoder), items are ranked for a user by cosine, training
items masked, and Recall@20 / NDCG@20 are computed on validation and test as for a model.

    python benchmarks/bench_text_signal.py [--dataset amazon-mi-2014] [--share 0.25]

Text sides: the v1 and v2 releases' phrases, the v2 phrases without verdicts, each review's
v2 phrases joined into one text, the v2 phrases with shared sides (users and items both pool
every phrase of their reviews), the raw training reviews (no LLM), and, for scale, the
most popular training items and random vectors. ``--share`` reads the same seeded share of
the training reviews on every side (``align.review_share``), so a release still being
extracted compares at equal coverage. A user or item without text scores 0 (ties broken by
item index), as it would have no text side in training either. Writes
``results/text-signal-<dataset>[-<share>].md`` and ``.json``. Deterministic: one number a
cell, no seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name -> (release folder or None, align.* settings)
SIDES: dict[str, tuple[str | None, dict[str, Any]]] = {
    "v1 phrases": ("motivations", {}),
    "v2 phrases": ("motivations-v2", {}),
    "v2 phrases, no verdicts": ("motivations-v2", {"drop_verdicts": True}),
    "v2 phrases joined a review": ("motivations-v2", {"text_input": "phrase-reviews"}),
    "v2 phrases, shared sides": ("motivations-v2", {"profile_sides": "shared"}),
    "raw reviews (no LLM)": ("motivations-v2", {"text_input": "reviews"}),
}


def prepared(dataset: str, work: Path) -> Path:
    out = work / "prepared" / dataset
    if not out.exists():
        subprocess.run([sys.executable, "-m", "lmmrec", "data", "prepare", dataset, "--out",
                        str(out)], check=True)
    return out


def side_vectors(ds: Any, artifact: Path, settings: dict[str, Any], share: float
                 ) -> tuple[Any, Any, dict[str, Any]]:
    """Unit-norm pooled text vectors of every user and item (zeros without text)."""
    import torch

    from lmmrec.align.aligners.base import entity_vectors
    from lmmrec.align.registry import ALIGNERS, text_input_of
    from lmmrec.text.inputs import TEXT_INPUTS

    cfg = ALIGNERS.config("lmmrec", {**settings, "review_share": share})
    inputs = TEXT_INPUTS[text_input_of(cfg)](ds, artifact, cfg, "lmmrec")
    u, i = entity_vectors(inputs, "mean")
    unit = (lambda x: x / x.norm(dim=1, keepdim=True).clamp_min(1e-12))  # noqa: E731
    stats = {"users_with_text": int(inputs.user_has_text.sum()),
             "items_with_text": int(inputs.item_has_text.sum()),
             "train_reviews_used": int(inputs.stats.get("train_reviews_used", 0))}
    return unit(u).to(torch.float32), unit(i).to(torch.float32), stats


def scores(ds: Any, user: Any, item: Any) -> dict[str, float]:
    from lmmrec.eval.ranking import evaluate

    out = {}
    for split, held in (("val", ds.val), ("test", ds.test)):
        m = evaluate(user, item, ds.train, held, ks=(20,), metrics=("recall", "ndcg"))
        out.update({f"{split}_{k}": round(v, 4) for k, v in m.items() if "@" in k})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="amazon-mi-2014")
    ap.add_argument("--share", type=float, default=1.0)
    ap.add_argument("--work", type=Path, default=Path("work/bench-text-signal"))
    args = ap.parse_args()
    import numpy as np
    import torch

    from lmmrec.data.dataset import PreparedDataset

    ds = PreparedDataset.load(prepared(args.dataset, args.work))
    rows: list[dict[str, Any]] = []
    for name, (release, settings) in SIDES.items():
        art = ROOT / "releases" / str(release) / args.dataset
        u, i, stats = side_vectors(ds, art, settings, args.share)
        rows.append({"side": name, **stats, **scores(ds, u, i)})
        print(rows[-1], flush=True)
    # scale: popularity (one dimension: every user scores an item by its training degree)
    deg = torch.from_numpy(np.asarray(ds.train.sum(axis=0)).ravel().astype(np.float32))
    rows.append({"side": "most popular (no text)", **scores(ds, torch.ones(ds.n_users, 1),
                                                             deg[:, None])})
    gen = torch.Generator().manual_seed(0)
    rows.append({"side": "random vectors", **scores(ds, torch.randn(ds.n_users, 64,
                                                                     generator=gen),
                                                    torch.randn(ds.n_items, 64,
                                                                generator=gen))})
    suffix = "" if args.share == 1 else f"-{round(100 * args.share)}"
    out = HERE / "results" / f"text-signal-{args.dataset}{suffix}"
    result = {"dataset": args.dataset, "share": args.share, "rows": rows}
    tmp = out.with_suffix(f".json.tmp{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, out.with_suffix(".json"))
    cmd = f"python benchmarks/bench_text_signal.py --dataset {args.dataset}" + (
        f" --share {args.share}" if args.share != 1 else "")
    lines = [f"# Ranking signal of each text side alone: {args.dataset}", "",
             f"Made by `{cmd}`: no training; users and items are their pooled text vectors, "
             "ranked by cosine, training items masked (see the script's docstring). "
             f"Share of the training reviews read: {100 * args.share:g} %.", "",
             "| text side | training reviews read | users with text | items with text | "
             "val Recall@20 | val NDCG@20 | test Recall@20 | test NDCG@20 |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['side']} | {r.get('train_reviews_used', '')} | "
                     f"{r.get('users_with_text', '')} | {r.get('items_with_text', '')} | "
                     f"{r['val_recall@20']:.4f} | {r['val_ndcg@20']:.4f} | "
                     f"{r['test_recall@20']:.4f} | {r['test_ndcg@20']:.4f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(out.with_suffix(".md"))


if __name__ == "__main__":
    main()
