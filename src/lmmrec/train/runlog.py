"""A run's log.jsonl (one JSON record a line) and its progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lmmrec import io


def append(path: Path, record: dict[str, Any]) -> None:
    """Add one record; a failed write names the file."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as e:
        raise io.WriteError(f"{path}: could not append to it ({e.strerror or e})") from e


def truncate(path: Path, epoch: int) -> None:
    """Drop log lines past the checkpoint being resumed, so the log reads as one run.
    Lines that do not parse (a write cut short by a kill) are dropped too."""
    if not path.exists():
        return
    kept = []
    for ln in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(ln)
        except ValueError:
            continue
        if isinstance(rec, dict) and "test" not in rec and rec.get("epoch", 0) <= epoch:
            kept.append(ln)
    io.atomic_write_text(path, "".join(ln + "\n" for ln in kept))


def progress_bar(enabled: bool) -> Progress:
    """The epoch bar; on stderr, so stdout stays free for machine-readable output."""
    return Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(),
                    TextColumn("{task.description}"), TimeElapsedColumn(), disable=not enabled,
                    console=Console(stderr=True))
