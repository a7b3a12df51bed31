"""An offline HTML report of one or more run folders, from their real files.

For each run: training loss per epoch (one line per named loss term, from log.jsonl),
validation metrics per evaluation; across runs: a test-metric table and bar chart (from
metrics.json), baselines (method 'base') first; and, for runs trained with motivations,
explained example recommendations for three users. Plots are matplotlib (Agg) PNGs embedded
as base64 data URIs, so the page needs nothing outside itself.

Each :class:`Plot` keeps the exact series it drew (read back from the drawn lines), so what
the picture shows can be checked against the run's files.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmmrec.errors import LmmrecError
from lmmrec.io import atomic_write_text
from lmmrec.train.files import CONFIG, LOG, METRICS

EXAMPLE_USERS = 3
EXAMPLE_K = 5
TABLE_METRICS = ("recall", "ndcg", "precision", "hit", "mrr")


@dataclass
class Plot:
    name: str
    title: str
    png: bytes
    series: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class RunData:
    path: Path
    config: dict[str, Any]
    log: list[dict[str, Any]]
    metrics: dict[str, Any]

    @property
    def method(self) -> str:
        return str(self.config.get("method") or self.metrics.get("method") or "base")

    @property
    def backbone(self) -> str:
        b = self.config.get("backbone") or {}
        return str(b.get("name") if isinstance(b, dict) else b or self.metrics.get("backbone"))

    @property
    def label(self) -> str:
        return f"{self.path.name} ({self.backbone}/{self.method})"

    @property
    def loss_records(self) -> list[dict[str, Any]]:
        return [r for r in self.log if "loss" in r]

    @property
    def val_records(self) -> list[dict[str, Any]]:
        return [r for r in self.log if "val" in r]


@dataclass
class Report:
    html: str
    runs: list[RunData]
    plots: dict[str, Plot]  # key: "<run index>:loss", "<run index>:val", "test"
    examples: dict[int, list[dict[str, Any]]]  # run index -> users with their recommendations


def load_run(path: str | Path) -> RunData:
    p = Path(path)
    if not (p / CONFIG).exists() or not (p / LOG).exists():
        raise LmmrecError(f"{p}: not a run folder (needs {CONFIG} and {LOG})")
    config = json.loads((p / CONFIG).read_text(encoding="utf-8"))
    log = []
    for n, line in enumerate((p / LOG).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                log.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise LmmrecError(f"{p / LOG}:{n}: invalid JSON: {e.msg}") from e
    metrics = (json.loads((p / METRICS).read_text(encoding="utf-8"))
               if (p / METRICS).exists() else {})
    return RunData(p, config, log, metrics)


# -- plots --------------------------------------------------------------------------------

def _figure(width: float = 5.5, height: float = 3.4) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _epoch_axes(ax: Any, ylabel: str, title: str, drawn: bool, empty: str) -> None:
    """Labels, grid and legend of a per-epoch plot; ``empty`` is written on one with no
    line."""
    _integer_epochs(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", transform=ax.transAxes)


def _drawn(ax: Any) -> dict[str, tuple[list[float], list[float]]]:
    """The series exactly as drawn: read back from the axes' lines."""
    return {ln.get_label(): ([float(x) for x in ln.get_xdata()],
                             [float(y) for y in ln.get_ydata()])
            for ln in ax.get_lines()}


def loss_plot(run: RunData) -> Plot:
    recs = run.loss_records
    terms = list(dict.fromkeys(k for r in recs for k in r["loss"]))
    fig = _figure()
    ax = fig.add_subplot()
    for term in terms:
        pts = [(r["epoch"], r["loss"][term]) for r in recs if term in r["loss"]]
        ax.plot([e for e, _ in pts], [v for _, v in pts], marker="o", markersize=3,
                label=term, linewidth=2.2 if term == "total" else 1.2)
    positive = all(v > 0 for r in recs for v in r["loss"].values())
    if positive and terms:
        ax.set_yscale("log")
    _epoch_axes(ax, "loss (mean per batch)", f"training loss: {run.label}", bool(terms),
                "no training epochs logged")
    return Plot("loss", f"Training loss per epoch: {run.label}", _png(fig), _drawn(ax))


def _select_k(run: RunData) -> str:
    sel = str((run.config.get("eval") or {}).get("select") or "recall@20")
    return sel.partition("@")[2] or "20"


def val_plot(run: RunData) -> Plot:
    recs = run.val_records
    k = _select_k(run)
    names = [m for m in TABLE_METRICS if any(f"{m}@{k}" in r["val"] for r in recs)]
    fig = _figure()
    ax = fig.add_subplot()
    for m in names:
        key = f"{m}@{k}"
        pts = [(r["epoch"], r["val"][key]) for r in recs if key in r["val"]]
        ax.plot([e for e, _ in pts], [v for _, v in pts], marker="o", label=key)
    best = run.metrics.get("best_epoch")
    if isinstance(best, int) and best > 0 and recs:
        ax.axvline(best, color="grey", linestyle=":", linewidth=1)
        ax.text(best, ax.get_ylim()[1], " best", va="top", fontsize=8, color="grey")
    _epoch_axes(ax, "validation metric", f"validation: {run.label}", bool(names),
                "no validation logged")
    series = {label: d for label, d in _drawn(ax).items() if not label.startswith("_")}
    return Plot("val", f"Validation metrics per evaluation: {run.label}", _png(fig), series)


def test_plot(runs: list[RunData]) -> Plot:
    import numpy as np

    with_test = [r for r in runs if r.metrics.get("test")]
    k = _select_k(with_test[0]) if with_test else "20"
    keys = [f"{m}@{k}" for m in ("recall", "ndcg", "hit")]
    fig = _figure(7.2, 3.6)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(with_test))
    series: dict[str, tuple[list[float], list[float]]] = {}
    for n, r in enumerate(with_test):
        x = np.arange(len(keys)) + n * width
        y = [float(r.metrics["test"].get(key, float("nan"))) for key in keys]
        ax.bar(x, y, width, label=r.label)
        series[r.label] = ([float(v) for v in x], y)
    ax.set_xticks(np.arange(len(keys)) + width * (len(with_test) - 1) / 2, keys)
    ax.set_ylabel("test")
    ax.set_title("test metrics (best epoch)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    if with_test:
        ax.legend(fontsize=8)
    return Plot("test", "Test metrics compared", _png(fig), series)


# -- examples -----------------------------------------------------------------------------

def example_recommendations(run_dir: Path, n_users: int = EXAMPLE_USERS, k: int = EXAMPLE_K
                            ) -> list[dict[str, Any]]:
    """Explained top-k for the users with the richest motivation profiles (ties: id order)."""
    import numpy as np

    from lmmrec.explain.recommender import Recommender  # local: loads torch, for examples only

    rec = Recommender.load(run_dir)
    if rec.profiles is None:
        return []
    nnz = rec.profiles.user_pos.getnnz(axis=1)
    order = np.argsort(-nnz, kind="stable")
    users = [int(u) for u in order[:n_users] if nnz[u] > 0]
    out = []
    for u in users:
        uid = rec.user_ids[u]
        out.append({"user": uid, "profile": rec.user_profile(uid),
                    "items": [r.as_dict() for r in rec.recommend(uid, k)]})
    return out


# -- the page -----------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    return html.escape(str(v))


def _test_table(runs: list[RunData]) -> str:
    with_test = [r for r in runs if r.metrics.get("test")]
    if not with_test:
        return "<p>No run has test metrics (metrics.json).</p>"
    keys = [key for key in with_test[0].metrics["test"] if "@" in key]
    for r in with_test[1:]:
        keys += [key for key in r.metrics["test"] if "@" in key and key not in keys]
    best = {key: max((r.metrics["test"].get(key, -math.inf) for r in with_test),
                     default=-math.inf) for key in keys}
    head = "".join(f"<th>{html.escape(key)}</th>" for key in keys)
    rows = []
    for r in with_test:
        t = r.metrics["test"]
        cells = "".join(
            f"<td class=\"num{' best' if t.get(key) == best[key] else ''}\">"
            f"{_fmt(t.get(key, float('nan')))}</td>" for key in keys)
        kind = "baseline" if r.method == "base" else "aligned"
        rows.append(f"<tr class=\"{kind}\"><th>{html.escape(r.path.name)}</th>"
                    f"<td>{html.escape(r.backbone)}</td><td>{html.escape(r.method)}</td>"
                    f"<td class=\"num\">{_fmt(r.metrics.get('best_epoch', ''))}</td>"
                    f"<td class=\"num\">{_fmt(r.metrics.get('epochs', ''))}</td>{cells}</tr>")
    return ("<div class=\"scroll\"><table id=\"test-table\"><thead><tr><th>run</th>"
            f"<th>backbone</th><th>method</th>"
            f"<th>best epoch</th><th>epochs</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _examples_html(examples: list[dict[str, Any]]) -> str:
    parts = []
    for ex in examples:
        prof = ex["profile"]
        phrases = ", ".join(m["phrase"] for m in prof.get("motivations", [])[:6])
        items = []
        for it in ex["items"]:
            matches = "".join(
                f"<li><q>{html.escape(m['user_phrase'])}</q> &harr; "
                f"<q>{html.escape(m['item_phrase'])}</q> "
                f"<span class=\"sim\">{m['similarity']:.2f}</span></li>"
                for m in it["matches"])
            title = html.escape(it["title"][:90]) if it.get("title") else ""
            items.append(f"<li><b>{html.escape(it['item'])}</b> {title} "
                         f"<span class=\"sim\">score {it['score']:.3f}</span>"
                         f"<div class=\"reason\">{html.escape(it['reason'])}</div>"
                         f"<ul class=\"matches\">{matches}</ul></li>")
        parts.append(f"<div class=\"example\"><h4>user {html.escape(ex['user'])}</h4>"
                     f"<p class=\"profile\">motivations: {html.escape(phrases) or '&mdash;'}"
                     f"</p><ol>{''.join(items)}</ol></div>")
    return "".join(parts)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
color:#222;background:#fff;max-width:1150px}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:2px solid #ddd;padding-bottom:4px}
.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 6px}td.num{text-align:right;font-family:monospace}
td.best{background:#d9f2d9;font-weight:bold}tr.baseline th{color:#555}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0}
figcaption{font-size:.85em;color:#555}img{border:1px solid #eee;max-width:100%}
.example{border:1px solid #e3e3e3;border-radius:6px;padding:6px 12px;margin:8px 0}
.reason{color:#333;font-style:italic}.matches{font-size:.85em;color:#444}
.sim{color:#888;font-size:.85em}q{color:#1a5a96}.scroll{overflow-x:auto}
"""


def build_report(run_dirs: list[str | Path], examples: bool = True) -> Report:
    if not run_dirs:
        raise LmmrecError("no run folders given")
    runs = [load_run(p) for p in run_dirs]
    order = sorted(range(len(runs)), key=lambda n: (runs[n].method != "base", n))
    runs = [runs[n] for n in order]  # baselines first
    plots: dict[str, Plot] = {}
    sections = []
    ex_all: dict[int, list[dict[str, Any]]] = {}
    for n, r in enumerate(runs):
        plots[f"{n}:loss"] = lp = loss_plot(r)
        plots[f"{n}:val"] = vp = val_plot(r)
        ex = []
        if examples and r.config.get("motivations") and r.metrics:
            ex = example_recommendations(r.path)
            ex_all[n] = ex
        test = r.metrics.get("test") or {}
        k = _select_k(r)
        summary = ", ".join(f"{m}@{k} {test[f'{m}@{k}']:.4f}" for m in ("recall", "ndcg")
                            if f"{m}@{k}" in test)
        sections.append(
            f"<section class=\"run\" id=\"run-{n}\"><h2>{html.escape(r.label)}</h2>"
            f"<p class=\"meta\">{len(r.loss_records)} epochs logged, "
            f"{len(r.val_records)} validation checks, best epoch "
            f"{_fmt(r.metrics.get('best_epoch', 'n/a'))}"
            f"{'; test ' + html.escape(summary) if summary else ''}; data "
            f"<code>{html.escape(str(r.config.get('data')))}</code></p>"
            f"<div class=\"plots\">"
            f"<figure><img alt=\"{html.escape(lp.title)}\" src=\"{lp.data_uri()}\">"
            f"<figcaption>{html.escape(lp.title)}</figcaption></figure>"
            f"<figure><img alt=\"{html.escape(vp.title)}\" src=\"{vp.data_uri()}\">"
            f"<figcaption>{html.escape(vp.title)}</figcaption></figure></div>"
            + (f"<h3>Explained recommendations</h3>{_examples_html(ex)}" if ex else "")
            + "</section>")
    plots["test"] = tp = test_plot(runs)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>lmmrec report</title><style>{CSS}</style></head><body>"
        f"<h1>lmmrec report</h1><p class=\"meta\">{len(runs)} run(s), generated {when}</p>"
        "<h2>Test metrics</h2>" + _test_table(runs)
        + f"<figure><img alt=\"{html.escape(tp.title)}\" src=\"{tp.data_uri()}\">"
        f"<figcaption>{html.escape(tp.title)}</figcaption></figure>"
        + "".join(sections) + "</body></html>\n")
    return Report(page, runs, plots, ex_all)


def write_report(run_dirs: list[str | Path], out: str | Path, examples: bool = True) -> Report:
    """Write the report to the HTML file ``out`` atomically (a folder there is refused)."""
    out = Path(out)
    if out.is_dir():
        raise LmmrecError(f"{out}: is a folder; --out names the HTML file to write")
    rep = build_report(run_dirs, examples)
    atomic_write_text(out, rep.html)
    return rep
