"""Run an experiment's cells, in order or several at once (``jobs``), resumably.

A cell whose folder holds a finished ``metrics.json`` is skipped; one that holds a
``checkpoint.pt`` (an interrupted run) resumes from it with ``fit(resume=True)``; any other
starts fresh. The plan, with every cell's status, is kept in OUT/experiment.json (written
after each cell), so `lmmrec experiment table OUT` knows the cells and the reference.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console
from rich.table import Table

from lmmrec.data.dataset import is_prepared
from lmmrec.data.pipeline import prepare_to
from lmmrec.errors import ConfigError
from lmmrec.experiment.noise import (
    inject_interactions,
    noise_markdown,
    noise_summary,
    noise_text,
    plot_noise,
)
from lmmrec.experiment.plan import Cell, Plan, plan
from lmmrec.experiment.spec import DATA_DIR, NOISE_DIR, SPEC_FILE, STATE_FILE, Experiment
from lmmrec.io import atomic_write_text as write_text
from lmmrec.train import trainer
from lmmrec.train.files import CHECKPOINT, METRICS


def cell_status(cell: Cell) -> str:
    """done (metrics.json), partial (checkpoint.pt: resumes) or new."""
    m = cell.dir / METRICS
    if m.exists():
        try:
            json.loads(m.read_text(encoding="utf-8"))
            return "done"
        except (OSError, json.JSONDecodeError):
            pass
    return "partial" if (cell.dir / CHECKPOINT).exists() else "new"


def _write_state(p: Plan, statuses: dict[Path, dict[str, Any]],
                 only: list[str] | None = None) -> None:
    exp = p.exp
    cells = []
    for c in p.cells:
        rec = c.record()
        rec.update(statuses.get(c.dir, {"status": cell_status(c)}))
        cells.append(rec)
    if only is not None:  # keep the cells of the datasets this run left out
        cells += [c for c in _stored_cells(exp.out / STATE_FILE)
                  if c.get("base", c["dataset"]) not in only]
    state = {"file": str(exp.file) if exp.file else None,
             "spec": exp.spec.model_dump(mode="json"),
             "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "cells": cells,
             "noise_jobs": [{"kind": j.kind, "level": j.level, "src": str(j.src),
                             "dst": str(j.dst), "seed": j.seed} for j in p.jobs]}
    write_text(exp.out / STATE_FILE, json.dumps(state, indent=2) + "\n")


def _stored_cells(path: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads(path.read_text(encoding="utf-8")).get("cells", []))
    except (OSError, json.JSONDecodeError):
        return []


def _prepare_data(p: Plan, todo: list[Cell], say: Any) -> None:
    """Prepare raw datasets and build noised copies that the cells to run read."""
    exp = p.exp
    wanted = {Path(c.config.data) for c in todo}
    wanted |= {Path(c.config.motivations) for c in todo
               if getattr(c.config, "motivations", None)}
    job_dst = {j.dst for j in p.jobs if j.dst in wanted}
    for j in p.jobs:
        if j.dst in job_dst:
            wanted.add(j.src)
    for name, d in exp.spec.datasets.items():
        target = exp.out / DATA_DIR / name
        if d.prepare is None or target not in wanted or is_prepared(target):
            continue
        a = d.prepare
        say(f"preparing {name} -> {target}")
        prepare_to(a.source or name, target, overwrite=True, fmt=a.format, kcore=a.kcore,
                   split=a.split, seed=a.seed, rating_threshold=a.rating_threshold,
                   columns=a.columns)
    for j in p.jobs:
        if j.dst not in job_dst:
            continue
        if j.kind == "interactions":
            rec = inject_interactions(j.src, j.dst, j.level, j.seed)
            say(f"noise {j.level * 100:g} %: {rec['n_added']} fake training interactions "
                f"-> {j.dst}")
        else:
            rec = noise_text(j.src, j.dst, j.level, j.seed)
            say(f"noise {j.level * 100:g} %: {sum(rec['n_replaced'].values())} phrases "
                f"replaced -> {j.dst}")


def run_experiment(exp: Experiment, *, grid: bool = True, noise: bool = True,
                   keep_going: bool = False, dry_run: bool = False,
                   console: Any = None, only: list[str] | None = None,
                   variants: list[str] | None = None, jobs: int = 1) -> dict[str, Any]:
    """Validate every cell, then run the selected ones; returns a summary.
    ``only``: run these datasets alone; the state file keeps the other datasets' cells.
    ``variants``: run only the variants matching these names or globs (``irllrec*``); the
    others stay in the plan and the state file as they are on disk.
    ``jobs``: cells trained at once, each in its own process (see `_run_parallel`)."""
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: expected at least 1")
    out = console if console is not None else Console()

    def say(msg: str) -> None:
        out.print(msg, highlight=False)

    p = plan(exp, only=only)  # the whole plan is validated, whatever part runs
    chosen: dict[Path, Cell] = {}
    for c in p.cells:  # one per run folder (noise level 0 shares the grid's folders)
        if (grid and c.source == "grid") or (noise and c.source == "noise"):
            chosen.setdefault(c.dir, c)
    selected = _of_variants(list(chosen.values()), variants, exp)
    status = {c.dir: cell_status(c) for c in selected}
    counts = {s: sum(1 for v in status.values() if v == s) for s in ("done", "partial", "new")}
    say(f"experiment {exp.out}: {len(selected)} run(s): {counts['done']} done, "
        f"{counts['partial']} to resume, {counts['new']} to start")
    if dry_run:
        for c in selected:
            say(f"  {status[c.dir]:8s} {c.label}  {c.dir}")
        return {"cells": len(selected), **counts, "ran": 0, "failed": []}

    exp.out.mkdir(parents=True, exist_ok=True)
    write_text(exp.out / SPEC_FILE, yaml.safe_dump(exp.spec.model_dump(mode="json"),
                                                   sort_keys=False))
    ledger = _Ledger(p, only, say)
    ledger.save()
    todo = [c for c in selected if status[c.dir] != "done"]
    _prepare_data(p, todo, say)
    heads = {c.dir: f"[{k}/{len(selected)}] {c.label}" for k, c in enumerate(selected, 1)}
    for c in selected:
        if status[c.dir] == "done":
            say(f"{heads[c.dir]}: done, skipped")
    if jobs > 1 and len(todo) > 1:
        _run_parallel(todo, status, ledger, jobs, keep_going, heads)
    else:
        _run_serial(todo, status, ledger, keep_going, heads)
    return {"cells": len(selected), **counts, "ran": ledger.ran, "failed": ledger.failed,
            "plan": p}


def _of_variants(cells: list[Cell], patterns: list[str] | None, exp: Experiment) -> list[Cell]:
    """The cells whose variant matches one of ``patterns`` (all of them for None); a pattern
    that matches no variant of the file is an error, not an empty run."""
    if patterns is None:
        return cells
    names = list(exp.spec.variants)
    for i, pat in enumerate(patterns):
        if not any(fnmatchcase(n, pat) for n in names):
            raise ConfigError(f"--variants[{i}]: {pat!r} matches no variant "
                              f"({', '.join(names)})")
    return [c for c in cells if any(fnmatchcase(c.variant, pat) for pat in patterns)]


class _Ledger:
    """The cells' statuses this run, written to the state file at every change."""

    def __init__(self, p: Plan, only: list[str] | None, say: Callable[[str], None]) -> None:
        self.p, self.only, self.say = p, only, say
        self.statuses: dict[Path, dict[str, Any]] = {}
        self.ran = 0
        self.failed: list[str] = []

    def save(self) -> None:
        _write_state(self.p, self.statuses, self.only)

    def finished(self, head: str, c: Cell, result: dict[str, Any], secs: float) -> None:
        self.ran += 1
        self.statuses[c.dir] = {"status": "done", "seconds": round(secs, 1)}
        self.save()
        # the selection metric on validation: a search driven by this log never sees test
        sel = c.config.eval.select
        val = (result or {}).get("val", {})
        self.say(f"{head}: done in {secs:.1f}s (best epoch {result.get('best_epoch')}, "
                 f"val {sel} {val.get(sel, float('nan')):.4f})")

    def broke(self, head: str, c: Cell, e: Exception) -> None:
        self.statuses[c.dir] = {"status": "failed", "error": f"{type(e).__name__}: {e}"}
        self.save()
        self.failed.append(c.label)
        self.say(f"{head}: FAILED: {type(e).__name__}: {e}")


def _run_serial(todo: list[Cell], status: dict[Path, str], ledger: _Ledger,
                keep_going: bool, heads: dict[Path, str]) -> None:
    """The cells one after the other, in this process."""
    for c in todo:
        head = heads[c.dir]
        resume = status[c.dir] == "partial"
        ledger.say(f"{head}: {'resuming' if resume else 'starting'} in {c.dir}")
        t0 = time.perf_counter()
        ledger.statuses[c.dir] = {"status": "running"}
        try:
            result = trainer.fit(c.config, c.dir, resume=resume)
        except KeyboardInterrupt:
            ledger.statuses[c.dir] = {"status": "interrupted"}
            ledger.save()
            raise
        except Exception as e:
            if not keep_going:
                ledger.statuses[c.dir] = {"status": "failed",
                                          "error": f"{type(e).__name__}: {e}"}
                ledger.save()
                raise
            ledger.broke(head, c, e)
            continue
        ledger.finished(head, c, result, time.perf_counter() - t0)


def _fit_cell(config: Any, out_dir: Path, resume: bool, threads: int) -> dict[str, Any]:
    """One cell in a pool process (top level, so that spawn can pickle it)."""
    torch.set_num_threads(threads)  # the cell's own train.threads, if set, wins inside fit
    return trainer.fit(config, out_dir, resume=resume)


def _run_parallel(todo: list[Cell], status: dict[Path, str], ledger: _Ledger, jobs: int,
                  keep_going: bool, heads: dict[Path, str]) -> None:
    """Train `jobs` cells at once, each in a fresh (spawned) process with cores/jobs threads.

    Small models use many cores poorly, so several cells at once finish a grid sooner. Each
    cell writes only its own folder; this process alone writes the state file. A failure
    without --keep-going lets the running cells finish, starts no more and is raised; on
    Ctrl-C the running cells are marked interrupted and resume from their checkpoints.
    """
    threads = max(1, (os.cpu_count() or 1) // jobs)
    ledger.say(f"{len(todo)} cell(s) on {jobs} processes, {threads} thread(s) each")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"))
    running: dict[Future[dict[str, Any]], tuple[Cell, float]] = {}
    queue = list(todo)
    error: BaseException | None = None
    try:
        while queue or running:
            while queue and len(running) < jobs and error is None:
                c = queue.pop(0)
                resume = status[c.dir] == "partial"
                ledger.say(f"{heads[c.dir]}: {'resuming' if resume else 'starting'} in {c.dir}")
                ledger.statuses[c.dir] = {"status": "running"}
                running[pool.submit(_fit_cell, c.config, c.dir, resume, threads)] = (
                    c, time.perf_counter())
            ledger.save()
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in done:
                c, t0 = running.pop(f)
                try:
                    result = f.result()
                except Exception as e:
                    ledger.broke(heads[c.dir], c, e)
                    if not keep_going and error is None:
                        error = e
                    continue
                ledger.finished(heads[c.dir], c, result, time.perf_counter() - t0)
    except KeyboardInterrupt:
        for c, _ in running.values():
            ledger.statuses[c.dir] = {"status": "interrupted"}
        ledger.save()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    if error is not None:
        raise error


def noise_report(p: Plan, metric: str | None = None, split: str = "test",
                 console: Any = None) -> dict[str, Any] | None:
    """The noise study's table (OUT/noise/results.md|json) and plot (OUT/noise/noise-*.png)."""
    n = p.exp.spec.noise
    if n is None:
        return None
    metric = metric or n.metric
    cells = [c.record() for c in p.cells if c.source == "noise"]
    summary = noise_summary(cells, metric, split)
    summary.update({"dataset": n.dataset, "kind": n.kind, "levels": n.levels,
                    "noise_seed": n.seed})
    root = p.exp.out / NOISE_DIR
    root.mkdir(parents=True, exist_ok=True)
    title = f"{n.dataset} ({n.kind} noise)"
    write_text(root / "results.json", json.dumps(summary, indent=2) + "\n")
    write_text(root / "results.md", noise_markdown(summary, title))
    png = plot_noise(summary, root / f"noise-{metric.replace('@', '')}.png", title)
    summary["plot"] = str(png)
    if console is not None:
        levels = sorted({r["level"] for r in summary["rows"]})
        t = Table(title=f"noise robustness: {title}, {split} {metric}")
        t.add_column("backbone")
        t.add_column("method")
        for lv in levels:
            t.add_column(f"{lv * 100:g} %", justify="right")
        for b, m in dict.fromkeys((r["backbone"], r["method"]) for r in summary["rows"]):
            vals = {r["level"]: r for r in summary["rows"]
                    if r["backbone"] == b and r["method"] == m}
            t.add_row(b, m, *(f"{vals[lv]['mean']:.4f}" if lv in vals else "—"
                              for lv in levels))
        console.print(t)
        console.print(f"plot: {png}", highlight=False)
    return summary
