"""CLI: `lmmrec extract [...]`, `extract stats | merge | export`, and `lmmrec embed`.

`lmmrec --help` imports this module: lmmrec modules that pull pandas, pydantic or torch
(the dataset, the job, prompts, backends, artifacts, embeddings) are imported inside the
commands that use them; the light ones (the store, the worker launcher) at the top.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from lmmrec.errors import ConfigError, LmmrecError
from lmmrec.llm.store import Store, check_store_path, merge_stores
from lmmrec.llm.workers import run_workers

extract_app = typer.Typer(help="LLM motivation extraction (resumable, sharded, budgeted).",
                          invoke_without_command=True, rich_markup_mode=None)

Overrides = Annotated[list[str] | None, typer.Option(
    "--set", help="config override key=value, e.g. openai.base_url=http://host:8000/v1")]


@extract_app.callback()
def extract_cmd(
    ctx: typer.Context,
    data: Annotated[Path | None, typer.Option(help="prepared dataset folder")] = None,
    store: Annotated[Path | None, typer.Option(help="SQLite store (created if missing)")] = None,
    backend: Annotated[str, typer.Option(help="local | openai")] = "local",
    config: Annotated[Path | None, typer.Option(help="backend YAML")] = None,
    overrides: Overrides = None,
    limit: Annotated[int | None, typer.Option(help="at most N calls this run")] = None,
    shard: Annotated[str | None, typer.Option(help="i/n: this process's share")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="estimate, run nothing")] = False,
    retry_failed: Annotated[bool, typer.Option(help="retry reviews recorded as failed")] = False,
    price_prompt: Annotated[float, typer.Option(help="price per 1k prompt tokens")] = 0.0,
    price_output: Annotated[float, typer.Option(help="price per 1k output tokens")] = 0.0,
    workers: Annotated[int, typer.Option(
        help="run N shard processes into the same store (local: one core each)")] = 1,
    items: Annotated[bool, typer.Option(
        "--items", help="extract what each item's listing (title, description, tags) offers, "
        "into a store of its own")] = False,
    prompt: Annotated[str | None, typer.Option(
        help="review prompt version: review_v2n (grounded, rating as context), review_v2 "
        "(the same with a reasoning sentence first) or review_v1; default: the store's own "
        "version, review_v2n for a new store")] = None,
    budget: Annotated[str | None, typer.Option(
        help="extract only this share of the training reviews (a seeded subsample keeping "
        "every user and item where possible; 1: every training review; without --budget: "
        "every review, validation and test too); with --dry-run, several: 0.25,0.5,1")] = None,
) -> None:
    """Extract per-review motivations of DATA into STORE; a rerun does only what is missing.
    With --items: per-item offers from the item listings (prompt item_v1)."""
    if ctx.invoked_subcommand is not None:
        return
    data, store = _check_options(data, store, limit, shard, workers, dry_run)
    prompt = prompt or _store_prompt(store)
    if workers > 1 and not dry_run:
        typer.echo(json.dumps(run_workers(data, store, backend, config, overrides or [], workers,
                                          retry_failed, items=items, prompt=prompt), indent=2))
        return
    from lmmrec.data.dataset import PreparedDataset  # pandas, pydantic: lazy (see the top)
    from lmmrec.llm import inputs as llm_inputs
    from lmmrec.llm import job
    from lmmrec.llm.backends import backend_config
    from lmmrec.llm.prompts import ITEM_PROMPT_VERSION, review_prompt

    review_prompt(prompt)  # an unknown version fails before anything loads
    version = ITEM_PROMPT_VERSION if items else prompt
    cfg = backend_config(backend, config, overrides)
    ds = PreparedDataset.load(data, require_splits=False)
    inputs = llm_inputs.inputs_for(ds, version)
    if items and not inputs:
        raise ConfigError(f"{data}: no item has a title, description or tags to extract from")
    sh, shares = job.parse_shard(shard), _shares(budget, items, dry_run)
    if dry_run:
        ests = _estimates(ds, inputs, store, sh, shares, limit, retry_failed, price_prompt,
                          price_output)
        out = [{"dataset": ds.name, "backend": cfg.kind, "shard": shard or "0/1",
                **({"budget": share} if budget else {}), **e}
               for share, e in zip(shares, ests, strict=True)]
        typer.echo(json.dumps(out if len(out) > 1 else out[0], indent=2))
        return
    inputs = llm_inputs.within_budget(ds, inputs, shares[0])  # None: every review
    _run(cfg, ds.name, inputs, store, sh, limit, retry_failed, version)


def _check_options(data: Path | None, store: Path | None, limit: int | None,
                   shard: str | None, workers: int, dry_run: bool) -> tuple[Path, Path]:
    """(data, store), once the options make sense; before a model or a dataset is loaded."""
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit {limit}: must be 0 or more")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be 1 or more")
    if store is not None:
        check_store_path(store, writable=not dry_run)  # before a model is loaded
    if workers > 1 and not dry_run and (shard is not None or limit is not None):
        raise ConfigError("--workers cannot be combined with --shard or --limit")
    if data is None or store is None:
        # LmmrecError, not typer.BadParameter: main() maps it to a message and exit code 2
        raise ConfigError("--data and --store are required")
    return data, store


def _estimates(ds, inputs, store: Path, sh, shares: list[float | None], limit: int | None,
               retry_failed: bool, price_prompt: float, price_output: float) -> list[dict]:
    """The cost estimate of each budget share; reads the store if there is one, never
    creates it."""
    from lmmrec.llm import inputs as llm_inputs  # pandas: lazy (see the top)
    from lmmrec.llm import job

    with Store(store if store.exists() else ":memory:") as st:
        avg = _avg_output_tokens(st)
        return [job.plan(llm_inputs.within_budget(ds, inputs, share), st, sh, limit, retry_failed)
                .estimate(price_prompt, price_output, avg) for share in shares]


def _shares(budget: str | None, items: bool, dry_run: bool) -> list[float | None]:
    """The --budget shares; [None] without one: every review, validation and test too
    (a share of 1 is every training review)."""
    from lmmrec.llm.budget import parse_shares  # pandas: lazy (see the top)

    if budget is None:
        return [None]
    if items:
        raise ConfigError("--budget applies to reviews, not to --items")
    shares: list[float | None] = list(parse_shares(budget))
    if len(shares) > 1 and not dry_run:
        raise ConfigError("several --budget shares need --dry-run (an extraction has one)")
    return shares


def _store_prompt(store: Path | None) -> str:
    """The review prompt a store was made with (resuming keeps it), else the default."""
    from lmmrec.llm.prompts import PROMPT_VERSION  # pydantic: lazy (see the top)

    if store is not None and store.is_file():
        with Store(store) as st:
            version = st.meta().get("prompt_version")
        if version and not version.startswith("item_"):
            return version
    return PROMPT_VERSION


def _avg_output_tokens(st) -> float:
    from lmmrec.llm.job import DEFAULT_OUTPUT_TOKENS  # pandas: lazy (see the top)

    c = st.counts()
    n = c["done"] + c["failed"]
    return c["output_tokens"] / n if n else DEFAULT_OUTPUT_TOKENS


def _run(cfg, name, inputs, store_path, sh, limit, retry_failed, version) -> None:
    from lmmrec.llm.backends import make_backend  # pydantic: lazy (see the top)

    backend = make_backend(cfg)
    try:
        _run_with(backend, name, inputs, store_path, sh, limit, retry_failed, version)
    finally:
        backend.close()


def _run_with(backend, name, inputs, store_path, sh, limit, retry_failed, version) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from lmmrec.llm import job  # pandas, pydantic: lazy (see the top)
    from lmmrec.llm.prompts import prompt_fingerprint

    with Store(store_path, backend.model_id, version, prompt_fingerprint(version)) as st:
        p = job.plan(inputs, st, sh, limit, retry_failed)
        what = "items" if version.startswith("item_") else "reviews"
        typer.echo(f"{name}: {p.n_total} {what}, {p.n_done} done, {p.n_failed} failed, "
                   f"{len(p.todo)} to do now ({backend.model_id}, prompt {version})", err=True)
        stats = {"ok": 0, "failed": 0, "tokens": 0}
        with Progress(TextColumn("[bold]extract"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]} tok/s  failed {task.fields[failed]}"),
                      TimeElapsedColumn(), TimeRemainingColumn(), transient=False,
                      console=Console(stderr=True)) as bar:  # stdout: the JSON summary only
            task = bar.add_task("extract", total=len(p.todo), rate="-", failed=0)
            start = time.perf_counter()

            def tick(rec) -> None:
                stats["ok" if rec.status == "ok" else "failed"] += 1
                stats["tokens"] += rec.prompt_tokens + rec.output_tokens
                rate = stats["tokens"] / max(1e-9, time.perf_counter() - start)
                bar.update(task, advance=1, rate=f"{rate:.0f}", failed=stats["failed"])

            with _graceful_stop() as stop:
                try:
                    summary = job.run(backend, st, p, on_result=tick, stop=stop)
                except job.Interrupted as e:
                    bar.stop()
                    typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
                    raise SystemExit(128 + stop.signum) from None
        typer.echo(json.dumps({"run": summary.as_dict(), "store": st.counts()}, indent=2))


class _StopEvent(threading.Event):
    signum: int = signal.SIGTERM


@contextlib.contextmanager
def _graceful_stop() -> Iterator[_StopEvent]:
    """SIGTERM or SIGINT: send nothing more, let the requests in flight land (they are
    paid for), then stop; a second signal stops at once (what landed is kept)."""
    stop = _StopEvent()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.signum = signum
        stop.set()
        typer.echo(f"\n{signal.Signals(signum).name}: finishing the requests in flight "
                   "(signal again to stop at once)", err=True)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


@extract_app.command("stats")
def stats_cmd(
    store: Annotated[Path, typer.Option(help="SQLite store")],
    data: Annotated[Path | None, typer.Option(help="prepared dataset, to count pending")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    items: Annotated[bool, typer.Option("--items", help="an item store (--items)")] = False,
) -> None:
    """Counts of a store: done, failed, pending (distinct texts, one LLM request each),
    tokens; with --data, progress on DATA in reviews and in texts, as `extract export`
    reports it."""
    if not store.exists():
        raise LmmrecError(f"{store}: store not found")
    with Store(store) as st:
        out = {**st.meta(), **st.counts()}
        out["pending"] = None
        if data is not None:
            from lmmrec.data.dataset import PreparedDataset  # pandas: lazy (see the top)
            from lmmrec.llm import inputs as llm_inputs
            from lmmrec.llm import job

            ds = PreparedDataset.load(data, require_splits=False)
            inputs = llm_inputs.inputs_for(ds, st.meta().get("prompt_version") or
                                           ("item_v1" if items else "review_v1"))
            out["pending"] = len(job.plan(inputs, st).todo)
            unit = "items" if items else "reviews"
            out.update(llm_inputs.unit_counts(inputs, st.statuses(), unit))
            if not items:  # this split's training reviews
                out["train"] = llm_inputs.training_coverage(ds, inputs, st)
    out["unit"] = "texts (distinct inputs, one LLM request each)"  # of done/failed/pending
    if as_json:
        typer.echo(json.dumps(out, indent=2))
    else:
        for k, v in out.items():
            typer.echo(f"{k:>16}: {v}")


@extract_app.command("merge")
def merge_cmd(
    sources: Annotated[list[Path], typer.Argument(help="shard stores to join")],
    out: Annotated[Path, typer.Option(help="target store (created or extended)")],
) -> None:
    """Join shard stores; idempotent; refuses stores of another model or prompt version."""
    typer.echo(json.dumps(merge_stores(out, sources)))


@extract_app.command("export")
def export_cmd(
    store: Annotated[Path, typer.Option(help="SQLite store")],
    out: Annotated[Path, typer.Option(help="artifact folder")],
    data: Annotated[Path, typer.Option(help="prepared dataset the store was extracted from")],
    item_store: Annotated[Path | None, typer.Option(
        help="item store (`extract --items`); without it, OUT's item offers are kept")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="replace OUT when it is already a motivation artifact")] = False,
) -> None:
    """Write the motivation artifact (Parquet + manifest) of DATA's reviews from a store.
    An existing OUT is replaced only with --overwrite, and only if it is an artifact."""
    from lmmrec.text.artifact import export_artifact  # pandas: lazy (see the top)

    manifest = export_artifact(store, out, data, item_store, overwrite=overwrite)
    counts = manifest["counts"]  # reviews; "texts": the same in distinct LLM requests
    if "items" in manifest:
        counts = {**counts, "items": manifest["items"]["counts"]}
    typer.echo(json.dumps(counts, indent=2))


@extract_app.command("import")
def import_cmd(
    artifact: Annotated[Path, typer.Argument(help="a released motivation artifact")],
    store: Annotated[Path, typer.Option(help="store to seed (created if missing)")],
    items: Annotated[bool, typer.Option("--items", help="seed an item store")] = False,
) -> None:
    """Seed a store from an artifact, so extraction resumes where the artifact ends."""
    from lmmrec.text.artifact import import_artifact  # pandas: lazy (see the top)

    typer.echo(json.dumps({"imported": import_artifact(artifact, store, items)}))


def embed_cmd(
    artifact: Annotated[Path, typer.Argument(help="motivation artifact folder")],
    backend: Annotated[str, typer.Option(help="local (sentence-transformers, offline) | openai")] = "local",
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible embeddings URL")] = None,
    model: Annotated[str | None, typer.Option(help="embedding model name")] = None,
    batch_size: Annotated[int, typer.Option(help="texts per batch")] = 256,
) -> None:
    """Embed every distinct phrase and summary of an artifact (cached by text hash)."""
    from lmmrec.text.embed import EmbedConfig, embed_artifact  # pandas: lazy (see the top)

    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be 1 or more")
    cfg = EmbedConfig(kind=backend, batch_size=batch_size,
                      **({"base_url": base_url} if base_url else {}),
                      **({"model": model} if model else {}))
    info = embed_artifact(artifact, cfg)
    typer.echo(json.dumps(info, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(extract_app, name="extract")
    app.command("embed")(embed_cmd)
