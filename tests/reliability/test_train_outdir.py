"""`train --out`: a foreign or existing folder is refused, --overwrite replaces a run safely,
and one process at a time writes a run folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .train_helpers import make_data, one_line_error, snapshot, train_args


@pytest.fixture(scope="module")
def tiny(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(data_dir, tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture
def finished(tiny, tmp_path, cli) -> Path:
    run = tmp_path / "run"
    assert cli(*train_args(tiny, run)).code == 0
    return run


def test_a_folder_that_is_not_a_run_is_refused(tiny, tmp_path, cli):
    out = tmp_path / "thesis"
    (out / "figures").mkdir(parents=True)
    (out / "thesis.tex").write_text("\\chapter{One}\n")
    (out / "config.json").write_text("{}\n")  # a run's name among other files
    for extra in ([], ["--overwrite"]):
        one_line_error(cli(*train_args(tiny, out), *extra), str(out),
                       "not a training run folder")
    assert (out / "thesis.tex").read_text() == "\\chapter{One}\n"
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "figures", "thesis.tex"]


def test_an_existing_run_needs_overwrite(tiny, finished, cli):
    before = snapshot(finished)
    one_line_error(cli(*train_args(tiny, finished, backbone="lightgcn")), "--overwrite",
                   "--resume")
    assert snapshot(finished) == before  # the finished MF run is still whole


def test_overwrite_replaces_a_run(tiny, finished, cli):
    res = cli(*train_args(tiny, finished, "train.max_epochs=2", backbone="lightgcn"),
              "--overwrite")
    assert res.code == 0, res.err
    metrics = json.loads((finished / "metrics.json").read_text())
    assert metrics["backbone"] == "lightgcn" and metrics["epochs"] == 2
    assert not (finished.parent / ".run.replaced").exists()  # removed once the new one ended


def test_an_invalid_replacement_config_moves_nothing(tiny, finished, cli):
    before = snapshot(finished)
    one_line_error(cli(*train_args(tiny, finished, "train.patience=0"), "--overwrite"),
                   "train.patience")
    assert snapshot(finished) == before
    assert not (finished.parent / ".run.replaced").exists()


def test_a_failed_replacement_keeps_the_old_run(tiny, finished, cli):
    before = snapshot(finished)
    one_line_error(cli(*train_args(tiny, finished, "optim.lr=1e30"), "--overwrite"),
                   "optim.lr")
    kept = finished.parent / ".run.replaced"
    assert snapshot(kept) == before  # old run whole beside the failed new one

    res = cli(*train_args(tiny, finished, "train.max_epochs=2"), "--overwrite")
    assert res.code == 0, res.err
    assert json.loads((finished / "metrics.json").read_text())["epochs"] == 2
    assert not kept.exists()


HOLD = """
import sys, time
from pathlib import Path
from lmmrec.train.runfolder import locked
with locked(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_one_writer_at_a_time_and_a_dead_writer_does_not_block(finished, cli):
    before = snapshot(finished)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(finished)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        (finished / "metrics.json").unlink()  # so that a resume would have work to do
        line = one_line_error(cli("train", "--out", finished, "--resume"),
                              "another process", f"pid {holder.pid}")
        assert str(finished) in line
        assert "metrics.json" not in snapshot(finished)  # the refused writer wrote nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (finished / ".lock").exists()  # the dead holder's lock file stays, unheld
    res = cli("train", "--out", finished, "--resume")
    assert res.code == 0, res.err
    assert json.loads(before["metrics.json"])["test"] == json.loads(
        (finished / "metrics.json").read_text())["test"]


def test_two_fresh_runs_on_one_folder(tiny, tmp_path, cli):
    from lmmrec.train.runfolder import locked

    out = tmp_path / "run"
    with locked(out):  # the first run has just started: the folder is still empty
        one_line_error(cli(*train_args(tiny, out)), "another process")
        assert [p.name for p in out.iterdir()] == [".lock"]
    # once a run has written its files there, a second plain `train` is refused
    assert cli(*train_args(tiny, out, "train.max_epochs=1")).code == 0
    one_line_error(cli(*train_args(tiny, out)), "--overwrite")
