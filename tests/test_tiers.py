"""Test tiers: a missing dataset skips by name, and LMMREC_REQUIRE_DATA=1 (CI, where the
data is present) turns such a skip into a failed run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEEDS_STEAM = "tests/data/test_splits.py::test_ratio_split_covers_every_user_and_item[steam-au]"


def _pytest(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LMMREC_DATA_DIR": str(tmp_path / "empty")}
    env.pop("LMMREC_REQUIRE_DATA", None)
    if require:
        env["LMMREC_REQUIRE_DATA"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           NEEDS_STEAM], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def test_missing_dataset_skips_by_name(tmp_path: Path) -> None:
    p = _pytest(tmp_path, require=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 skipped" in p.stdout
    assert "missing dataset steam-au" in p.stdout and "LMMREC_DATA_DIR" in p.stdout


def test_required_data_turns_the_skip_into_a_failure(tmp_path: Path) -> None:
    p = _pytest(tmp_path, require=True)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "LMMREC_REQUIRE_DATA=1: these skips fail the run" in p.stdout


def test_ci_requires_the_data_and_runs_make_test() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "LMMREC_REQUIRE_DATA=1" in ci and ci.rstrip().endswith("make test")
