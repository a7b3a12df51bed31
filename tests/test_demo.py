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


def _release(root: Path, name: str, extracted: int, failed: int | None = None,
             interactions: int = 10) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    train = {"interactions": interactions, "extracted": extracted}
    if failed is not None:
        train["failed"] = failed
    (folder / "manifest.json").write_text(json.dumps(
        {"format": "lmmrec-motivations/1", "counts": {"failed": 1},
         "coverage": {"train": train}}))
    return folder


def test_demo_reads_the_first_release_that_answers_every_training_review(tmp_path: Path
                                                                         ) -> None:
    from lmmrec.demo import pick_release

    v2, v1 = tmp_path / "v2", tmp_path / "v1"
    roots = [v2, v1]
    assert pick_release("beauty", roots) == v2 / "beauty"  # none at all: "no release" later
    partial = _release(v2, "beauty", extracted=4, failed=0)
    assert pick_release("beauty", roots) == partial  # the only one there is
    full = _release(v1, "beauty", extracted=10, failed=0)
    assert pick_release("beauty", roots) == full  # a partial v2 loses to a complete v1
    shutil.rmtree(partial)
    _release(v2, "beauty", extracted=9, failed=1)  # one failed for good: still complete
    assert pick_release("beauty", roots) == v2 / "beauty"
    # a manifest without per-split failures counts the artifact's (here 1) against training
    _release(v2, "old", extracted=9)
    assert pick_release("old", roots) == v2 / "old"
    _release(v2, "short", extracted=8)
    _release(v1, "short", extracted=8, failed=0)
    assert pick_release("short", roots) == v2 / "short"  # neither complete: the first
