"""CLI commands: `lmmrec train` and `lmmrec evaluate`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer

from lmmrec.cli.openmp import prefer_passive_wait
from lmmrec.errors import ConfigError, LmmrecError
from lmmrec.train.files import CONFIG
from lmmrec.train.runfolder import claim


def train(
    out: Path = typer.Option(..., "--out", help="Run folder (checkpoints, log.jsonl, metrics)."),
    backbone: str | None = typer.Option(None, "--backbone",
                                        help="Backbone or preset (configs/backbones/*.yaml)."),
    data: Path | None = typer.Option(None, "--data", help="Prepared dataset folder."),
    config: list[Path] = typer.Option([], "--config", help="Extra YAML config layer(s)."),
    sets: list[str] = typer.Option([], "--set", help="Override any key: a.b=value "
                                   "(every key, default and help: `lmmrec config show`)."),
    method: str = typer.Option("base", "--method",
                               help="base, lmmrec, rlmrec-con, rlmrec-gen or irllrec."),
    motivations: Path | None = typer.Option(
        None, "--motivations", help="Motivation artifact folder (aligned methods; not needed "
        "with --set align.text_input=reviews)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace the training run in --out (it is kept until "
                                        "the new run has finished)."),
    nproc: int = typer.Option(1, "--nproc", min=1,
                              help="Data-parallel processes on this machine (re-launches "
                                   "through torchrun; train.batch_size stays the global "
                                   "batch)."),
) -> None:
    """Train a backbone: BPR, early stopping on validation Recall@20, then one test pass."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite: use one or the other")
    prefer_passive_wait()  # before torch loads
    # pydantic, torch: imported when a run starts, so `lmmrec --help` stays fast
    from lmmrec.train.trainer import fit

    if resume:
        cfg = _stored_config(out, bool(backbone or data or config or sets or motivations))
    else:
        cfg = _new_config(out, overwrite, backbone, data, config, sets, method, motivations)
    if nproc > 1:
        _relaunch(nproc, out, backbone, data, config, sets, method, motivations, resume)
        return
    result = fit(cfg, out, resume=resume,
                 say=lambda msg: typer.secho(f"note: {msg}", err=True))
    if not result:  # a non-zero rank of a distributed run: rank 0 reports
        return
    _print_metrics(result.get("test", {}), f"test (best epoch {result.get('best_epoch')})")


def _stored_config(out: Path, other_options: bool) -> Any:
    """--resume: the run's own config.json (any other option given is ignored)."""
    from lmmrec.train.trainer import read_config  # torch: lazy, as in `train`

    stored = out / CONFIG
    if not stored.exists():
        raise ConfigError(f"--resume: {stored} not found")
    if other_options:
        typer.secho("note: --resume uses the run's stored config; other options ignored",
                    err=True)
    return read_config(out)


def _new_config(out: Path, overwrite: bool, backbone: str | None, data: Path | None,
                config: list[Path], sets: list[str], method: str,
                motivations: Path | None) -> Any:
    """The run's config from the options; rank 0 then claims the run folder."""
    from lmmrec.train.config import resolve_config  # pydantic: lazy, as in `train`

    if backbone is None:
        raise ConfigError("--backbone is required (unless --resume)")
    base = {"method": method}
    if data is not None:
        base["data"] = str(data.resolve())
    if motivations is not None:
        base["motivations"] = str(motivations.resolve())
    cfg = resolve_config(backbone, config, sets, base=base)  # a bad config moves nothing
    if int(os.environ.get("RANK", "0")) == 0:  # rank 0 alone writes the run folder
        old = claim(out, overwrite)
        if old is not None:
            typer.secho(f"note: replacing the run in {out}; the old one waits in {old} "
                        "until the new one has finished", err=True)
    return cfg


def _relaunch(nproc: int, out: Path, backbone: str | None, data: Path | None,
              config: list[Path], sets: list[str], method: str, motivations: Path | None,
              resume: bool) -> None:
    """`torchrun --standalone --nproc_per_node N -m lmmrec train ...` with these options."""
    from torch.distributed.run import main as torchrun

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--nproc inside a distributed launch: use one or the other")
    args = ["train", "--out", str(out.resolve()), "--method", method]
    if backbone is not None:
        args += ["--backbone", backbone]
    if data is not None:
        args += ["--data", str(data.resolve())]
    if motivations is not None:
        args += ["--motivations", str(motivations.resolve())]
    for c in config:
        args += ["--config", str(c.resolve())]
    for s in sets:
        args += ["--set", s]
    if resume:
        args.append("--resume")
    try:
        torchrun(["--standalone", "--nproc_per_node", str(nproc), "-m", "lmmrec", *args])
    except Exception as e:  # ChildFailedError: the failing rank already printed its error
        raise LmmrecError(f"distributed training failed ({type(e).__name__}): see the "
                          "ranks' messages above") from None


def evaluate(run_dir: Path = typer.Argument(..., help="A finished run folder."),
             split: str = typer.Option("test", "--split", help="test or val.")) -> None:
    """Reload a run's best weights and recompute its metrics."""
    from lmmrec.train.trainer import evaluate_run  # torch: lazy, as in `train`

    if split not in ("test", "val"):
        raise ConfigError(f"--split must be test or val, got {split!r}")
    _print_metrics(evaluate_run(run_dir, split), split)


def _print_metrics(metrics: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for k in sorted({int(key.split("@")[1]) for key in metrics if "@" in key}):
        table.add_column(f"@{k}", justify="right")
    names = list(dict.fromkeys(key.split("@")[0] for key in metrics if "@" in key))
    ks = sorted({int(key.split("@")[1]) for key in metrics if "@" in key})
    for name in names:
        table.add_row(name, *(f"{metrics.get(f'{name}@{k}', float('nan')):.4f}" for k in ks))
    Console().print(table)
    typer.echo(json.dumps(metrics))


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("train")(train)
    app.command("evaluate")(evaluate)
