"""CLI: `lmmrec report RUN_DIR... --out report.html` - an offline HTML report of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmmrec.report.build import write_report  # light: matplotlib and torch load inside


def report_cmd(
    runs: Annotated[list[Path], typer.Argument(help="finished run folders")],
    out: Annotated[Path, typer.Option("--out", help="HTML file to write")] = Path("report.html"),
    examples: Annotated[bool, typer.Option(
        help="explained example recommendations for runs with motivations")] = True,
) -> None:
    """Loss and validation plots per run, a test-metric comparison, explained examples."""
    rep = write_report(runs, out, examples)
    typer.echo(f"wrote {out} ({len(rep.runs)} runs, {len(rep.plots)} plots)")


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
