"""`lmmrec demo`: the end-to-end main job on a real dataset.

prepare -> motivations (released artifact + local-LLM extraction of what is missing, within
a budget) -> embed -> train the backbone and LMMRec -> test metrics side by side -> explained
recommendations.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer


def release_roots() -> list[Path]:
    """Where released motivation artifacts live, in order of preference: $LMMREC_RELEASES_DIR,
    or the repo's v2 releases (grounded phrases), then its v1 releases."""
    env = os.environ.get("LMMREC_RELEASES_DIR")
    if env:
        return [Path(env)]
    repo = Path(__file__).resolve().parents[3] / "releases"
    return [repo / "motivations-v2", repo / "motivations"]


def demo(
    dataset: Annotated[str, typer.Option(help="dataset name or raw folder")]
    = "amazon-beauty-2023-mini",
    out: Annotated[Path, typer.Option(help="working folder")] = Path("runs/demo"),
    backbone: Annotated[str, typer.Option(help="backbone preset")] = "lightgcn",
    methods: Annotated[str, typer.Option(help="comma-separated methods to compare")]
    = "base,rlmrec-con,lmmrec",
    max_epochs: Annotated[int, typer.Option(help="epoch cap per training run")] = 60,
    extract_limit: Annotated[int, typer.Option(
        help="at most this many missing training reviews extracted by the local LLM "
        "(0: none)")] = 12,
    seed: Annotated[int, typer.Option(help="training seed")] = 2023,
) -> None:
    """Run the whole pipeline on a real dataset and print what it found."""
    from rich.console import Console

    from lmmrec.demo import run_demo  # torch, pandas: lazy, keeps `lmmrec --help` fast

    console = Console(stderr=True)
    result = run_demo(dataset, out, backbone, [m.strip() for m in methods.split(",") if m],
                      max_epochs, extract_limit, seed, release_roots(), console)
    typer.echo(json.dumps(result["summary"], indent=2))


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
