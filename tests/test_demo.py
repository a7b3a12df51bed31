"""The demo path end to end on the shipped beauty-mini set (frozen real motivations), with
no LMMREC_DATA_DIR, as on a fresh clone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lmmrec.cli.main import main


def test_demo_end_to_end(beauty_motivations: Path, tmp_path: Path, monkeypatch,
                         capsys) -> None:
    releases = tmp_path / "releases"
    shutil.copytree(beauty_motivations, releases / "amazon-beauty-2023-mini")
    monkeypatch.delenv("LMMREC_DATA_DIR", raising=False)  # the shipped copy, as on a clone
    monkeypatch.setenv("LMMREC_RELEASES_DIR", str(releases))
    out = tmp_path / "demo"
    try:
        main(["demo", "--out", str(out), "--extract-limit", "0", "--max-epochs", "3",
              "--methods", "base,lmmrec"])
    except SystemExit as e:
        assert e.code in (0, None)
    summary = json.loads(capsys.readouterr().out)
    methods = [r["method"] for r in summary["comparison"]]
    assert methods == ["base", "lmmrec"]
    for r in summary["comparison"]:
        assert 0.0 <= r["recall@20"] <= 1.0
    for m in methods:
        metrics = json.loads((out / "runs" / m / "metrics.json").read_text())
        assert metrics["epochs"] == 3
    assert summary["examples"], "explained recommendations expected for users with profiles"
    for ex in summary["examples"]:
        assert len(ex["recommendations"]) == 3
        assert all(r["reason"] for r in ex["recommendations"])
    report = Path(summary["report"])
    assert report.exists() and "<img" in report.read_text()
    manifest = json.loads((out / "motivations" / "manifest.json").read_text())
    assert manifest["counts"]["extracted"] > 0
