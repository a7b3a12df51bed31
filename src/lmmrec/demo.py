"""The end-to-end demo pipeline behind `lmmrec demo` (and `make demo`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from lmmrec.data.dataset import PreparedDataset, is_prepared
from lmmrec.data.pipeline import prepare_to
from lmmrec.errors import LmmrecError
from lmmrec.explain.recommender import Recommender
from lmmrec.llm import inputs as llm_inputs
from lmmrec.llm import job
from lmmrec.llm.backends import LocalBackend, LocalConfig
from lmmrec.llm.prompts import PROMPT_VERSION, prompt_fingerprint
from lmmrec.llm.store import Store
from lmmrec.report.build import write_report
from lmmrec.text.artifact import covers_training, export_artifact, import_artifact, read_manifest
from lmmrec.text.embed import embed_artifact
from lmmrec.train.config import resolve_config
from lmmrec.train.files import METRICS
from lmmrec.train.trainer import fit


def prepare(dataset: str, out: Path, console: Console) -> Any:
    folder = out / "data"
    if is_prepared(folder):
        ds = PreparedDataset.load(folder)
        console.print(f"[bold]1. data[/] reusing {folder}")
    else:
        console.print(f"[bold]1. data[/] preparing {dataset} -> {folder}")
        ds = prepare_to(dataset, folder)
    s = ds.stats()
    console.print(f"   {s['n_users']} users, {s['n_items']} items, train/val/test "
                  f"{s['n_train']}/{s['n_val']}/{s['n_test']}, {s['n_reviews']} reviews")
    return folder, ds


def pick_release(name: str, roots: list[Path]) -> Path:
    """The dataset's release in the first root where it answers every training review, else
    in the first root that has it at all (the rest is extracted within the demo's limit)."""
    have = [r / name for r in roots if (r / name / "manifest.json").exists()]
    for folder in have:
        if covers_training(read_manifest(folder)):
            return folder
    return have[0] if have else roots[0] / name


def motivations(data: Path, ds: Any, out: Path, release: Path, limit: int,
                console: Console) -> Path | None:
    """Released artifact + extraction of up to `limit` missing training reviews (validation
    and test reviews never reach a model) -> embedded artifact."""
    store, item_store = out / "motivations.sqlite", out / "items.sqlite"
    if release.exists():
        n = import_artifact(release, store)
        n_items = import_artifact(release, item_store, items=True)  # 0 if it has no offers
        console.print(f"[bold]2. motivations[/] {n} reviews and {n_items} item listings from "
                      f"the released artifact {release}")
    else:
        console.print(f"[bold]2. motivations[/] no released artifact at {release}")
    if limit > 0:
        with Store(store) as st:  # a release keeps its own prompt version
            version = st.meta().get("prompt_version") or PROMPT_VERSION
            inputs = llm_inputs.within_budget(ds, llm_inputs.review_inputs(ds, version), 1.0)
            todo = job.plan(inputs, st, limit=limit).todo
        if todo:
            console.print(f"   extracting {len(todo)} missing reviews with the local LLM ...")
            backend = LocalBackend(LocalConfig())
            with Store(store, backend.model_id, version, prompt_fingerprint(version)) as st:
                summary = job.run(backend, st, job.plan(inputs, st, limit=limit))
            backend.close()
            r = summary.as_dict()
            console.print(f"   {r['ok']} ok, {r['failed']} failed, "
                          f"{r['reviews_per_minute']} reviews/min")
    if not store.exists():
        return None
    artifact = out / "motivations"
    m = export_artifact(store, artifact, data, item_store if item_store.exists() else None,
                        overwrite=True)  # the demo's own folder, rebuilt on a rerun
    c, t = m["counts"], m["coverage"]["train"]
    console.print(f"   artifact: {t['extracted']} of {t['interactions']} training reviews "
                  f"extracted ({c['extracted']} of {c['reviews_total']} in all); embedding "
                  "phrases ...")
    if c["extracted"] == 0:
        return None
    embed_artifact(artifact)
    return artifact


def train(data: Path, artifact: Path | None, out: Path, backbone: str, methods: list[str],
          max_epochs: int, seed: int, console: Console) -> dict[str, dict[str, Any]]:
    results = {}
    for method in methods:
        if method != "base" and artifact is None:
            console.print(f"   skipping {method}: no motivations available")
            continue
        run = out / "runs" / method
        if (run / METRICS).exists():
            results[method] = json.loads((run / METRICS).read_text())
            console.print(f"[bold]3. train[/] {method}: reusing {run}")
            continue
        console.print(f"[bold]3. train[/] {backbone} + {method} -> {run}")
        base: dict[str, Any] = {"data": str(data), "method": method}
        if method != "base":
            base["motivations"] = str(artifact)
        cfg = resolve_config(backbone, [], [f"train.max_epochs={max_epochs}",
                                            f"train.seed={seed}"], base=base)
        results[method] = fit(cfg, run)
    return results


def comparison(results: dict[str, dict[str, Any]], console: Console) -> list[dict[str, Any]]:
    table = Table(title="test metrics (full ranking)")
    keys = ["recall@10", "recall@20", "ndcg@10", "ndcg@20"]
    table.add_column("method", no_wrap=True, min_width=max(map(len, results)))
    for k in keys:
        table.add_column(k, justify="right")
    table.add_column("best epoch", justify="right")
    # milliseconds: the demo set is small enough that an epoch takes a few of them
    table.add_column("ms/epoch", justify="right")
    rows = []
    for method, r in results.items():
        t = r["test"]
        table.add_row(method, *(f"{t[k]:.4f}" for k in keys), str(r["best_epoch"]),
                      f"{1000 * r['seconds_per_epoch']:.1f}")
        rows.append({"method": method, **{k: t[k] for k in keys},
                     "best_epoch": r["best_epoch"]})
    console.print(table)
    return rows


def explained(run: Path, console: Console, n_users: int = 3) -> list[dict[str, Any]]:
    rec = Recommender.load(run)
    if rec.profiles is None:
        return []
    have = np.flatnonzero(rec.profiles.user_pos.getnnz(axis=1) > 0)
    out = []
    for u in have[:n_users]:
        uid = str(rec.ds.user_ids[u])
        items = rec.recommend(uid, k=3)
        console.print(f"[bold]user {uid}[/] ({rec.profiles.summary('user', int(u))})")
        for r in items:
            console.print(f"  - {r.item} {r.title[:50]!r}: {r.reason}")
        out.append({"user": uid, "recommendations": [r.as_dict() for r in items]})
    return out


def run_demo(dataset: str, out: Path, backbone: str, methods: list[str], max_epochs: int,
             extract_limit: int, seed: int, releases: list[Path], console: Console
             ) -> dict[str, Any]:
    made = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    try:
        data, ds = prepare(dataset, out, console)
    except BaseException:
        for p in made:  # a failed start leaves no empty folders behind
            if p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        raise
    artifact = motivations(data, ds, out, pick_release(ds.name, releases), extract_limit,
                           console)
    results = train(data, artifact, out, backbone, methods, max_epochs, seed, console)
    if not results:
        raise LmmrecError("no method could be trained")
    rows = comparison(results, console)
    examples = []
    aligned = [m for m in methods if m in results and m != "base"]
    if aligned:
        console.print("[bold]4. explained recommendations[/]")
        examples = explained(out / "runs" / aligned[-1], console)
    report = out / "report.html"
    write_report([out / "runs" / m for m in results], report)
    console.print(f"[bold]5. report[/] {report}")
    return {"summary": {"dataset": ds.name, "comparison": rows, "examples": examples,
                        "report": str(report)}}
