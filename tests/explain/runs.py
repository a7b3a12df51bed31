"""One small trained lmmrec run (and one baseline) shared by the explain, serve and report
tests: trained once per session however many test folders ask for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

_RUNS: dict[tuple[str, str], Path] = {}
_RECS: dict[str, Any] = {}
EPOCHS = 3


def trained_run(tmp_path_factory: pytest.TempPathFactory, data: Path,
                motivations: Path | None) -> Path:
    """`lmmrec train --backbone lightgcn --method lmmrec|base --set train.max_epochs=3`."""
    from lmmrec.train.config import resolve_config
    from lmmrec.train.trainer import fit

    method = "lmmrec" if motivations else "base"
    key = (str(data), method)
    if key not in _RUNS:
        base: dict[str, Any] = {"method": method, "data": str(data)}
        if motivations:
            base["motivations"] = str(motivations)
        cfg = resolve_config("lightgcn", [], [f"train.max_epochs={EPOCHS}",
                                              "train.progress=false", "train.threads=1"],
                             base=base)
        out = tmp_path_factory.mktemp("runs") / method
        fit(cfg, out)
        _RUNS[key] = out
    return _RUNS[key]


def loaded(run: Path) -> Any:
    from lmmrec.explain.recommender import Recommender

    if str(run) not in _RECS:
        _RECS[str(run)] = Recommender.load(run)
    return _RECS[str(run)]
