"""Result tables of an experiment: mean ± std over seeds, relative improvement vs a reference
variant, and paired significance tests (t-test, Wilcoxon signed-rank) paired by seed.

Only the test metrics of finished runs are read; every choice inside a run (early stopping,
best epoch) was made on validation by the trainer.

- mean: arithmetic mean over seeds; std: sample standard deviation (ddof=1; None for n=1);
- relative improvement: ``(mean_variant / mean_reference - 1) * 100`` (percent);
- ``scipy.stats.ttest_rel(variant, reference)`` and ``scipy.stats.wilcoxon(variant,
  reference)`` over the seeds both have. Degenerate cases (n < 2, all differences zero,
  constant differences) give no p-value and a note; Wilcoxon with fewer than 6 non-zero
  differences cannot reach p < 0.05 (two-sided exact minimum 2 / 2^n), which is noted.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmmrec.errors import ConfigError
from lmmrec.experiment.spec import DATA_DIR, MOTIVATIONS_DIR, STATE_FILE, check_metric
from lmmrec.io import atomic_write_text as write_text
from lmmrec.train.files import METRICS

RESULTS_MD, RESULTS_JSON = "results.md", "results.json"


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        return math.nan, None
    return float(x.mean()), (float(x.std(ddof=1)) if len(x) > 1 else None)


def relative_improvement(mean: float, reference_mean: float) -> float | None:
    """Percent change of ``mean`` over ``reference_mean`` (None when the reference is 0)."""
    if reference_mean == 0 or not math.isfinite(reference_mean) or not math.isfinite(mean):
        return None
    return (mean / reference_mean - 1.0) * 100.0


def _finite(v: Any) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def paired_tests(values: Sequence[float], reference: Sequence[float]) -> dict[str, Any]:
    """Paired t-test and Wilcoxon signed-rank of ``values`` vs ``reference`` (same order)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    y = np.asarray(reference, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError("paired samples must have the same length")
    n = len(x)
    out: dict[str, Any] = {"n_pairs": n, "t": None, "t_p": None, "w": None, "w_p": None,
                           "notes": []}
    notes: list[str] = out["notes"]
    if n < 2:
        notes.append(f"n={n} paired seed(s): no test")
        return out
    d = x - y
    n_zero = int((d == 0).sum())
    if n_zero == n:
        notes.append("identical to the reference on every seed: no test")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if np.ptp(d) <= 1e-12 * max(1e-12, float(np.abs(d).max())):
            notes.append("the same difference on every seed: t undefined (zero variance)")
        else:
            t = stats.ttest_rel(x, y)
            out["t"], out["t_p"] = _finite(t.statistic), _finite(t.pvalue)
        w = stats.wilcoxon(x, y)
        out["w"], out["w_p"] = _finite(w.statistic), _finite(w.pvalue)
    n_nonzero = n - n_zero
    if n_zero:
        notes.append(f"{n_zero} zero difference(s) dropped by Wilcoxon")
    if n_nonzero < 6:
        notes.append(f"Wilcoxon on {n_nonzero} non-zero pair(s): p >= "
                     f"{2 / 2 ** n_nonzero:.4g}, cannot reach 0.05")
    return out


# -- reading runs -----------------------------------------------------------------------------


def read_metrics(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / METRICS
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def collect_cells(root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The experiment's cell records (from experiment.json, else by scanning for
    .../<dataset>/<backbone>/<variant>/seed<k>/metrics.json) and its stored spec."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder")
    state_path = root / STATE_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        return state.get("cells", []), state.get("spec", {})
    cells = []
    for m in sorted(root.rglob(METRICS)):
        parts = m.parent.relative_to(root).parts
        if len(parts) < 4 or parts[0] in (DATA_DIR, MOTIVATIONS_DIR):
            continue
        ds, bb, var, seed = parts[-4:]
        if not re.fullmatch(r"seed-?\d+", seed):
            continue
        cells.append({"dataset": ds, "backbone": bb, "variant": var, "seed": int(seed[4:]),
                      "dir": str(m.parent), "level": None, "source": "scan"})
    return cells, {}


def summarise(cells: list[dict[str, Any]], metrics: list[str], reference: str | None,
              split: str = "test") -> dict[str, Any]:
    """Per (dataset, backbone, variant): values by seed, mean ± std, relative improvement
    and paired tests vs ``reference`` for each metric."""
    values: dict[tuple[str, str, str], dict[int, dict[str, float]]] = {}
    secs: dict[tuple[str, str, str], list[float]] = {}  # training seconds per epoch
    missing = 0
    for c in cells:
        m = read_metrics(Path(c["dir"]))
        if m is None:
            missing += 1
            continue
        key = (c["dataset"], c["backbone"], c["variant"])
        values.setdefault(key, {})[int(c["seed"])] = m.get(split, {})
        if isinstance(m.get("seconds_per_epoch"), (int, float)):
            secs.setdefault(key, []).append(float(m["seconds_per_epoch"]))
    variants = {k[2] for k in values}
    if reference is None and "base" in variants:
        reference = "base"
    groups = []
    for (ds, bb, var), by_seed in values.items():
        seeds = sorted(by_seed)
        ref = values.get((ds, bb, reference)) if reference else None
        g: dict[str, Any] = {"dataset": ds, "backbone": bb, "variant": var, "seeds": seeds,
                             "n": len(seeds), "is_reference": var == reference,
                             "metrics": {}, "seconds_per_epoch": None, "time_ratio": None}
        if secs.get((ds, bb, var)):
            g["seconds_per_epoch"] = float(np.mean(secs[(ds, bb, var)]))
            ref_secs = secs.get((ds, bb, reference or ""))
            if ref_secs:
                g["time_ratio"] = g["seconds_per_epoch"] / float(np.mean(ref_secs))
        for metric in metrics:
            have = [s for s in seeds if metric in by_seed[s]]
            vals = [float(by_seed[s][metric]) for s in have]
            mean, std = mean_std(vals)
            entry: dict[str, Any] = {"values": dict(zip(have, vals, strict=True)),
                                     "mean": _finite(mean) if vals else None, "std": std,
                                     "rel_improvement_pct": None, "n_pairs": 0,
                                     "t": None, "t_p": None, "w": None, "w_p": None,
                                     "notes": []}
            if not vals:
                entry["notes"].append(f"no {split} {metric} in these runs")
            elif ref is not None and var != reference:
                ref_seeds = [s for s in sorted(ref) if metric in ref[s]]
                ref_mean, _ = mean_std([float(ref[s][metric]) for s in ref_seeds])
                entry["rel_improvement_pct"] = relative_improvement(mean, ref_mean)
                common = [s for s in have if s in set(ref_seeds)]
                entry.update(paired_tests([float(by_seed[s][metric]) for s in common],
                                          [float(ref[s][metric]) for s in common]))
                if len(common) < max(len(have), len(ref_seeds)):
                    entry["notes"].append(f"paired over the {len(common)} seed(s) both have")
            elif var != reference:
                entry["notes"].append(f"no reference {reference!r} runs for this "
                                      "dataset and backbone")
            g["metrics"][metric] = entry
        groups.append(g)
    return {"reference": reference, "split": split, "metrics": metrics,
            "unfinished_cells": missing, "groups": groups}


# -- rendering --------------------------------------------------------------------------------


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "—" if v is None else format(v, spec)


def _fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    return "<1e-4" if p < 1e-4 else f"{p:.4f}"


def _row_cells(g: dict[str, Any], metric: str) -> list[str]:
    e = g["metrics"][metric]
    ms = "—" if e["mean"] is None else f"{e['mean']:.4f} ± {_fmt(e['std'])}"
    if g["is_reference"]:
        return [ms, "(ref)", "", ""]
    rel = e["rel_improvement_pct"]
    return [ms, "—" if rel is None else f"{rel:+.2f} %", _fmt_p(e["t_p"]), _fmt_p(e["w_p"])]


def _fmt_secs(g: dict[str, Any]) -> str:
    sec = g.get("seconds_per_epoch")
    if sec is None:
        return "—"
    ratio = g.get("time_ratio")
    return f"{sec:.3f}" + ("" if ratio is None or g["is_reference"] else f" (×{ratio:.2f})")


def to_markdown(summary: dict[str, Any], title: str = "") -> str:
    ref, metrics = summary["reference"], summary["metrics"]
    out = [f"# Results{': ' + title if title else ''}", "",
           f"{summary['split']} metrics, mean ± sample std over seeds. Δ: relative improvement "
           f"of the mean over the reference variant `{ref}`; p_t: paired t-test, p_W: "
           "Wilcoxon signed-rank, paired by seed. Model selection (early stopping, best "
           "epoch) used validation only. s/epoch: mean training seconds per epoch (× the "
           "reference's), as measured while the cells ran.", ""]
    if summary.get("unfinished_cells"):
        out += [f"{summary['unfinished_cells']} cell(s) without metrics.json are left out.", ""]
    notes: dict[str, list[str]] = {}  # note -> where it applies (one line per note)
    for ds in dict.fromkeys(g["dataset"] for g in summary["groups"]):
        out += [f"## {ds}", ""]
        head = ["backbone", "variant", "n"]
        for m in metrics:
            head += [m, "Δ", "p_t", "p_W"]
        head.append("s/epoch")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for g in (g for g in summary["groups"] if g["dataset"] == ds):
            row = [g["backbone"], g["variant"], str(g["n"])]
            for m in metrics:
                row += _row_cells(g, m)
                for note in g["metrics"][m]["notes"]:
                    notes.setdefault(note, []).append(
                        f"{ds} / {g['backbone']} / {g['variant']} / {m}")
            row.append(_fmt_secs(g))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    if notes:
        out += ["### Notes", ""]
        for note, where in notes.items():
            at = "; ".join(where) if len(where) <= 3 else f"{len(where)} rows"
            out.append(f"- {note} ({at})")
        out.append("")
    return "\n".join(out)


def print_summary(summary: dict[str, Any], console: Any = None) -> None:
    """One rich table per dataset; each metric cell: mean ± std, then Δ and the p-values."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for ds in dict.fromkeys(g["dataset"] for g in summary["groups"]):
        table = Table(title=f"{ds}: {summary['split']}, Δ / p_t / p_W vs "
                      f"{summary['reference']}")
        table.add_column("backbone", no_wrap=True)
        table.add_column("variant", no_wrap=True)
        table.add_column("n", justify="right")
        for m in summary["metrics"]:
            table.add_column(m, justify="right", no_wrap=True)
        for g in (g for g in summary["groups"] if g["dataset"] == ds):
            row = [g["backbone"], g["variant"], str(g["n"])]
            for m in summary["metrics"]:
                ms, rel, pt, pw = _row_cells(g, m)
                row.append(f"{ms}\n{rel}" + ("" if g["is_reference"]
                                               else f" {pt} / {pw}"))
            table.add_row(*row)
        console.print(table)


def write_results(root: Path, summary: dict[str, Any], title: str = "") -> tuple[Path, Path]:
    root = Path(root)
    md, js = root / RESULTS_MD, root / RESULTS_JSON
    write_text(md, to_markdown(summary, title))
    write_text(js, json.dumps(summary, indent=2) + "\n")
    return md, js


def table(root: str | Path, reference: str | None = None, metrics: list[str] | None = None,
          split: str | None = None, console: Any = None, show: bool = True) -> dict[str, Any]:
    """`lmmrec experiment table DIR`: summarise, print, write results.md / results.json."""
    root = Path(root)
    cells, spec = collect_cells(root)
    if not cells:
        raise ConfigError(f"{root}: no experiment runs found")
    metrics = metrics or spec.get("metrics") or ["recall@20", "ndcg@20"]
    for m in metrics:
        try:
            check_metric(m, "--metrics: ")
        except ValueError as e:
            raise ConfigError(str(e)) from None
    reference = reference or spec.get("reference")
    split = split or spec.get("split") or "test"
    variants = {c["variant"] for c in cells}
    if reference is not None and reference not in variants:
        raise ConfigError(f"--reference {reference!r} is not a variant of this experiment "
                          f"({', '.join(sorted(variants))})")
    # one record per (dataset, backbone, variant, seed)
    uniq: dict[tuple, dict[str, Any]] = {}
    for c in cells:
        uniq.setdefault((c["dataset"], c["backbone"], c["variant"], int(c["seed"])), c)
    summary = summarise(list(uniq.values()), metrics, reference, split)
    write_results(root, summary, root.name)
    if show:
        print_summary(summary, console)
    return summary
