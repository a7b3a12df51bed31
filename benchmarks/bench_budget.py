"""How much LLM does a dataset need? Recall@20 against the LLM calls of an extraction
budget: LMMRec on the phrases of 25 %, 50 % and 100 % of the training reviews (the seeded
subsample `lmmrec extract --budget` extracts, keeping every user and item where possible),
and the base at 0 calls. Variants whose text side is the raw reviews
(`align.text_input=reviews` at the same shares: no LLM at all) are the free alternative at
each budget: 0 calls, the same reviews read, drawn as a line of their own.

    python benchmarks/bench_budget.py [--file budget] [--render-only]

Runs `lmmrec experiment run FILE` (resumable: finished cells are skipped), then writes
``results/budget-<dataset>.md``, ``.json`` and ``.png``: per variant the LLM calls (the
training reviews its text side reads, from each run's metrics), mean ± std of each metric
over seeds, and paired tests against the full extraction and against the base.
`lmmrec extract --data D --store S --dry-run --budget 0.25,0.5,1` prints what each budget
costs before anything is extracted.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


def reviews_of(metrics: dict[str, Any]) -> int:
    """Training reviews a run's text side read (within its budget, if it has one; 0 for a
    run without text)."""
    return int((metrics.get("text") or {}).get("train_reviews_used", 0))


def text_of(metrics: dict[str, Any]) -> str:
    """What the run's text side is: 'phrases' (LLM), 'reviews' (raw, no LLM) or 'none'."""
    text = metrics.get("text") or {}
    if not text:
        return "none"
    return "reviews" if text.get("text_input") == "reviews" else "phrases"


def calls_of(metrics: dict[str, Any]) -> int:
    """LLM calls behind a run's text side: the extracted training reviews it read; 0 for raw
    review text (embedded, never sent to an LLM) and for a run without text."""
    return reviews_of(metrics) if text_of(metrics) == "phrases" else 0


def budget_summary(root: Path, metrics: list[str], full: str = "share-100",
                   base: str = "base") -> dict[str, Any]:
    """Per (dataset, variant): LLM calls and each metric's mean ± std and paired tests."""
    from lmmrec.experiment.stats import collect_cells, paired_tests, read_metrics, summarise

    cells, _ = collect_cells(root)
    cells = [c for c in cells if c.get("source", "grid") == "grid"]
    calls: dict[tuple[str, str], set[int]] = {}
    read: dict[tuple[str, str], set[int]] = {}
    kind: dict[tuple[str, str], str] = {}
    for c in cells:
        m = read_metrics(Path(c["dir"]))
        if m is not None:
            key = (c["dataset"], c["variant"])
            calls.setdefault(key, set()).add(calls_of(m))
            read.setdefault(key, set()).add(reviews_of(m))
            kind[key] = text_of(m)
    summary = summarise(cells, metrics, reference=full)
    rows = []
    for g in summary["groups"]:
        key = (g["dataset"], g["variant"])
        n_calls, n_read = sorted(calls.get(key, {0})), sorted(read.get(key, {0}))
        row = {"dataset": g["dataset"], "backbone": g["backbone"], "variant": g["variant"],
               "text": kind.get(key, "none"),
               "llm_calls": n_calls[0] if len(n_calls) == 1 else n_calls,
               "reviews_read": n_read[0] if len(n_read) == 1 else n_read, "n": g["n"],
               "metrics": {}}
        ref = next((h for h in summary["groups"] if h["dataset"] == g["dataset"]
                    and h["backbone"] == g["backbone"] and h["variant"] == base), None)
        for m in metrics:
            e = g["metrics"][m]
            vs_base = None
            if ref is not None and g["variant"] != base:
                common = sorted(set(e["values"]) & set(ref["metrics"][m]["values"]))
                vs_base = paired_tests([e["values"][s] for s in common],
                                       [ref["metrics"][m]["values"][s] for s in common])
            row["metrics"][m] = {"mean": e["mean"], "std": e["std"],
                                 "vs_full_pct": e["rel_improvement_pct"], "vs_full_t_p": e["t_p"],
                                 "vs_base_t_p": None if vs_base is None else vs_base["t_p"]}
        rows.append(row)
    first = (lambda x: x if isinstance(x, int) else x[0])  # noqa: E731
    rows.sort(key=lambda r: (r["dataset"], r["backbone"], r["text"] == "reviews",
                             first(r["llm_calls"]), first(r["reviews_read"])))
    return {"root": str(root), "metrics": metrics, "full": full, "base": base, "rows": rows,
            "unfinished_cells": summary["unfinished_cells"]}


def to_markdown(s: dict[str, Any], dataset: str, command: str) -> str:
    ms = s["metrics"]
    out = [f"# How much LLM does {dataset} need?", "", "Command (repository root):", "",
           "```bash", command, "```", "",
           "LLM calls: the training reviews whose motivations each variant's text side reads "
           "(a budget's seeded subsample; the base reads none; raw review text is embedded, "
           "never sent to an LLM: 0 calls). Reviews read: the training reviews behind the "
           "text side. Mean ± sample std over seeds; "
           f"Δ full and p_t full: against `{s['full']}` (paired t-test by seed); p_t base: "
           f"against `{s['base']}`. Test metrics; early stopping on validation.", "",
           "| backbone | variant | text | LLM calls | reviews read | n | "
           + " | ".join(f"{m} | Δ full | p_t full | p_t base" for m in ms) + " |",
           "|---|---|---|---|---|---|" + "---|---|---|---|" * len(ms)]

    def p(x: float | None) -> str:
        return "" if x is None else f"{x:.4f}"

    for r in s["rows"]:
        if r["dataset"] != dataset:
            continue
        cells = []
        for m in ms:
            e = r["metrics"][m]
            d = "" if e["vs_full_pct"] is None else f"{e['vs_full_pct']:+.2f} %"
            cells.append(f"{e['mean']:.4f} ± {(e['std'] or 0):.4f} | {d} | "
                         f"{p(e['vs_full_t_p'])} | {p(e['vs_base_t_p'])}")
        out.append(f"| {r['backbone']} | {r['variant']} | {r['text']} | {r['llm_calls']} | "
                   f"{r['reviews_read']} | {r['n']} | "
                   + " | ".join(cells) + " |")
    if s["unfinished_cells"]:
        out += ["", f"{s['unfinished_cells']} cell(s) without metrics are left out."]
    return "\n".join(out) + "\n"


def plot(s: dict[str, Any], dataset: str, metric: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmmrec.io import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    rows = [r for r in s["rows"] if r["dataset"] == dataset
            and isinstance(r["reviews_read"], int)]
    # x: the training reviews behind the text side, i.e. the LLM calls of the phrase line;
    # the base (no text) sits at 0 on both lines, raw reviews cost no call at any x
    for backbone in dict.fromkeys(r["backbone"] for r in rows):
        for text, label in (("phrases", "LLM phrases"), ("reviews", "raw reviews, no LLM")):
            if not any(r["backbone"] == backbone and r["text"] == text for r in rows):
                continue
            pts = sorted((r["reviews_read"], r["metrics"][metric]["mean"],
                          r["metrics"][metric]["std"] or 0) for r in rows
                         if r["backbone"] == backbone and r["text"] in (text, "none"))
            ax.errorbar([x for x, _, _ in pts], [y for _, y, _ in pts],
                        yerr=[e for _, _, e in pts], marker="o" if text == "phrases" else "s",
                        linestyle="-" if text == "phrases" else "--", capsize=3,
                        label=f"{backbone}, {label}")
    ax.set_xlabel("training reviews read (LLM calls for the phrases)")
    ax.set_ylabel(metric.replace("recall", "Recall").replace("ndcg", "NDCG"))
    ax.set_title(f"{dataset}: {metric} against the extraction budget", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=150)
    plt.close(fig)
    atomic_write_bytes(path, png.getvalue())
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", default="budget", help="experiment file (name or path)")
    ap.add_argument("--root", type=Path, default=ROOT / "runs" / "experiments" / "budget")
    ap.add_argument("--metrics", default="recall@20,ndcg@20")
    ap.add_argument("--render-only", action="store_true", help="do not run missing cells")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    command = f"python benchmarks/bench_budget.py --file {args.file}"
    if not args.render_only:
        subprocess.run([sys.executable, "-m", "lmmrec", "experiment", "run", args.file],
                       check=True, cwd=ROOT)
    from lmmrec.io import atomic_write_text

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    s = budget_summary(args.root, metrics)
    for ds in dict.fromkeys(r["dataset"] for r in s["rows"]):
        atomic_write_text(args.out / f"budget-{ds}.md", to_markdown(s, ds, command))
        atomic_write_text(args.out / f"budget-{ds}.json", json.dumps(
            {**s, "rows": [r for r in s["rows"] if r["dataset"] == ds]}, indent=2) + "\n")
        print(plot(s, ds, metrics[0], args.out / f"budget-{ds}.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
