"""CLI commands: `lmmrec experiment run | noise | table | pick` (`--dry-run` validates and lists).

`lmmrec --help` imports this module: lmmrec.experiment (torch, via the metrics and the
aligners), lmmrec.config (pydantic) and rich are imported inside the commands, so it stays
fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmmrec.cli.openmp import prefer_passive_wait
from lmmrec.errors import ConfigError

experiment_app = typer.Typer(
    help="Grids of runs (datasets x backbones x variants x seeds), result tables with "
    "significance tests, and the noise-robustness study.", no_args_is_help=True,
    rich_markup_mode=None)

FileArg = Annotated[Path, typer.Argument(help="experiment file (YAML); shipped ones live in "
                                         "src/lmmrec/configs/experiments/")]


def _load(file: Path):  # noqa: ANN202
    from lmmrec.experiment.spec import load_experiment  # torch: lazy (see the top)

    return load_experiment(_shipped(file))


def _shipped(file: Path) -> Path:
    """FILE, or the name of a shipped experiment (main, ablations, noise)."""
    if file.exists():
        return file
    from lmmrec.config import packaged_config  # pydantic: lazy (see the top)

    cand = packaged_config("experiments", file.name if file.suffix else f"{file.name}.yaml")
    return cand if cand.exists() else file


KeepGoing = Annotated[bool, typer.Option("--keep-going", help="continue after a failed cell")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="validate and list the cells only")]
Only = Annotated[str | None, typer.Option(
    "--only", help="comma-separated datasets to run alone (others are not checked)")]
Variants = Annotated[str | None, typer.Option(
    "--variants", help="comma-separated variants (globs allowed: 'irllrec*') to run alone; "
    "the others are left as they are")]
Jobs = Annotated[int, typer.Option(
    "--jobs", "-j", min=1, help="cells trained at once, each in its own process with "
    "cores/jobs threads (small models use many cores poorly)")]


def _only(value: str | None) -> list[str] | None:
    return None if value is None else [x.strip() for x in value.split(",") if x.strip()]


@experiment_app.command("run")
def run_cmd(
    file: FileArg,
    keep_going: KeepGoing = False,
    dry_run: DryRun = False,
    only: Only = None,
    variants: Variants = None,
    jobs: Jobs = 1,
) -> None:
    """Run the grid (then the noise study, if the file has a noise: section), resumably:
    finished cells are skipped, interrupted ones resume from their checkpoint."""
    prefer_passive_wait()  # before torch loads (cells inherit it)
    from rich.console import Console

    from lmmrec.experiment.grid import noise_report, run_experiment  # torch: lazy (the top)
    from lmmrec.experiment.stats import table

    exp = _load(file)
    console = Console()
    res = run_experiment(exp, keep_going=keep_going, dry_run=dry_run, console=console,
                         only=_only(only), variants=_only(variants), jobs=jobs)
    if dry_run:
        return
    table(exp.out, console=console)
    if any(c.source == "noise" for c in res["plan"].cells):
        noise_report(res["plan"], console=console)
    if res["failed"]:
        typer.secho(f"{len(res['failed'])} cell(s) failed: {', '.join(res['failed'])}",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


@experiment_app.command("noise")
def noise_cmd(
    file: FileArg,
    keep_going: KeepGoing = False,
    dry_run: DryRun = False,
    variants: Variants = None,
    jobs: Jobs = 1,
) -> None:
    """Run the file's noise: section (base / rlmrec-con / lmmrec at each noise level) and
    write OUT/noise/results.md|json and the plot (metric vs noise level)."""
    prefer_passive_wait()  # before torch loads (cells inherit it)
    from rich.console import Console

    from lmmrec.experiment.grid import noise_report, run_experiment  # torch: lazy (the top)

    exp = _load(file)
    if exp.spec.noise is None:
        raise ConfigError(f"{file}: no noise: section")
    console = Console()
    res = run_experiment(exp, grid=False, keep_going=keep_going, dry_run=dry_run,
                         console=console, variants=_only(variants), jobs=jobs)
    if dry_run:
        return
    noise_report(res["plan"], console=console)
    if res["failed"]:
        raise typer.Exit(1)


@experiment_app.command("table")
def table_cmd(
    root: Annotated[Path, typer.Argument(help="the experiment's out folder")],
    reference: Annotated[str | None, typer.Option(
        "--reference", help="variant to compare with (default: the file's reference)")] = None,
    metrics: Annotated[str | None, typer.Option(
        "--metrics", help="comma-separated, e.g. recall@20,ndcg@20")] = None,
    split: Annotated[str | None, typer.Option(
        "--split", help="test or val (default: the experiment file's split, else test)")] = None,
) -> None:
    """Mean ± std per (dataset, backbone, variant), relative improvement vs the reference,
    paired t-test and Wilcoxon over seeds; writes DIR/results.md and DIR/results.json."""
    from lmmrec.experiment.stats import RESULTS_JSON, RESULTS_MD, table  # torch: lazy

    if split not in (None, "test", "val"):
        raise ConfigError(f"--split must be test or val, got {split!r}")
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    table(root, reference=reference, metrics=names, split=split)
    typer.echo(f"wrote {root / RESULTS_MD} and {root / RESULTS_JSON}")


@experiment_app.command("pick")
def pick_cmd(
    root: Annotated[Path, typer.Argument(help="a finished search experiment's out folder")],
    metric: Annotated[str, typer.Option("--metric", help="validation metric to maximise")]
    = "recall@20",
) -> None:
    """Best variant of each method per dataset on VALIDATION only (test is never read);
    prints the by_dataset overrides and writes DIR/picks.md and DIR/picks.json."""
    from lmmrec.experiment.pick import pick, to_yaml_hint, write_picks  # torch: lazy

    result = pick(root, metric)
    md, js = write_picks(root, result)
    typer.echo(to_yaml_hint(result), nl=False)
    typer.echo(f"wrote {md} and {js}", err=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(experiment_app, name="experiment")
