"""CLI commands: `lmmrec data prepare | stats | download`.

Heavy imports (pandas, pyarrow) happen inside the commands so `lmmrec --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lmmrec.data.catalog import data_root
from lmmrec.errors import DataError

# rich_markup_mode=None: help texts are shown as written ("a:b:c" is no emoji code)
data_app = typer.Typer(help="Prepare, inspect and download datasets.", no_args_is_help=True,
                       rich_markup_mode=None)


@data_app.command("prepare")
def prepare_cmd(
    source: Annotated[str, typer.Argument(help="known dataset NAME or a PATH")],
    out: Annotated[Path, typer.Option("--out", help="output folder (created atomically)")],
    fmt: Annotated[str | None, typer.Option("--format", help="force a reader format")] = None,
    kcore: Annotated[int | None, typer.Option(
        help="iterative k-core (default: 0, off, for a path; a known dataset's own)")]
    = None,
    split: Annotated[str | None, typer.Option(
        help="'keep' (the input's own train/val/test files or split column; the default "
             "when it has one), a ratio a:b:c (default 3:1:1) or 'loo' (leave last out)")]
    = None,
    seed: Annotated[int | None, typer.Option(help="split seed (default 2024)")] = None,
    rating_threshold: Annotated[float | None, typer.Option(
        "--rating-threshold", help="keep interactions with rating >= X")] = None,
    columns: Annotated[str | None, typer.Option(
        help="table format column mapping, e.g. user=uid,item=iid,rating=r,time=ts,text=t "
             "(also title=, split=: a column of train/valid/test)")]
    = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out folder")] = False,
) -> None:
    """Read a raw dataset, filter, split and write the canonical prepared folder."""
    from lmmrec.data.pipeline import prepare_to  # pandas: lazy, keeps `lmmrec --help` fast

    ds = prepare_to(source, out, overwrite=overwrite, fmt=fmt, kcore=kcore, split=split,
                    seed=seed, rating_threshold=rating_threshold, columns=columns)
    s = ds.stats()
    typer.echo(f"prepared {ds.name} -> {out}: {s['n_users']} users, {s['n_items']} items, "
               f"train/val/test {s['n_train']}/{s['n_val']}/{s['n_test']}, "
               f"{s['n_reviews']} reviews")
    typer.echo(settings_line(ds.manifest))
    for w in ds.manifest.get("warnings", []):
        typer.secho(f"warning: {w}", fg=typer.colors.YELLOW, err=True)


def settings_line(m: dict) -> str:
    """The settings a prepare used, defaults included, and what each filter removed."""
    f, sp, st = m.get("filters", {}), m.get("split", {}), m.get("stats", {})
    k = f.get("kcore", 0)
    kcore = f"k-core {k}" if k and k > 1 else "k-core off (0)"
    if sp.get("method") == "given":
        split = f"split kept from the input ({sp.get('from', 'its own')})"
    else:
        split = f"split {sp.get('method')} (seed {sp.get('seed')})"
    thr = f.get("rating_threshold")
    rating = f"rating >= {thr}" if thr is not None else "no rating threshold"
    removed = (f"{st.get('n_duplicates_dropped', 0)} duplicate rows merged, "
               f"{st.get('n_below_rating_threshold', 0)} below the rating threshold, "
               f"{st.get('n_kcore_dropped', 0)} by the k-core")
    return f"settings: {kcore}, {split}, {rating}; removed: {removed}"


@data_app.command("stats")
def stats_cmd(
    folder: Annotated[Path, typer.Argument(help="a prepared dataset folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print the statistics of a prepared dataset."""
    from lmmrec.data.dataset import PreparedDataset  # pandas: lazy, as in `prepare`

    ds = PreparedDataset.load(folder, require_splits=False)  # an empty split counts 0
    stats = {"name": ds.name, "format": ds.manifest.get("format"),
             "split": ds.manifest.get("split", {}).get("method"), **ds.stats()}
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    for key, value in stats.items():
        typer.echo(f"{key:>15}: {value:.6f}" if isinstance(value, float)
                   else f"{key:>15}: {value}")


@data_app.command("download")
def download_cmd(
    name: Annotated[str, typer.Argument(help="a known dataset name")],
    dest: Annotated[Path | None, typer.Option(help="root folder (default $LMMREC_DATA_DIR)")]
    = None,
) -> None:
    """Download a known dataset's public originals into $LMMREC_DATA_DIR, sha256-verified."""
    from lmmrec.data.download import download  # urllib, tarfile: lazy, keeps --help fast

    root = dest or data_root()
    if root is None:
        raise DataError("set LMMREC_DATA_DIR (where datasets are looked up by name) or "
                        "pass --dest")
    target = download(name, root, say=lambda line: typer.echo(line, err=True))
    typer.echo(f"downloaded {name} -> {target}")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(data_app, name="data")
