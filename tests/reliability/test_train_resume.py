"""Resume after a finished early stop: nothing retrains, nothing is rewritten, and a run
killed while writing best.pt finishes exactly as the uninterrupted run."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from lmmrec.train import checkpoint as ckpt
from lmmrec.train.trainer import fit

from .train_helpers import config, make_data, python, snapshot, train_args


@pytest.fixture(scope="module")
def tiny(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(data_dir, tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="module")
def reference(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """metrics.json of the uninterrupted run (it stops early, before max_epochs)."""
    out = tmp_path_factory.mktemp("ref") / "run"
    result = fit(config(tiny), out)
    assert result["epochs"] < 40  # early-stopped: resuming it must not train on
    return result


def _epochs_logged(run: Path) -> list[int]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [json.loads(ln)["epoch"] for ln in lines if "loss" in json.loads(ln)]


def _same_result(got: dict, ref: dict) -> None:
    for key in ("test", "val", "best_epoch", "epochs"):
        assert got[key] == ref[key], key


def test_resume_of_a_finished_run_is_a_no_op(tiny, reference, tmp_path, cli):
    run = tmp_path / "run"
    assert cli(*train_args(tiny, run)).code == 0
    before = snapshot(run)

    res = cli("train", "--out", run, "--resume")
    assert res.code == 0, res.err
    assert "already finished" in res.err and "nothing to do" in res.err
    assert snapshot(run) == before  # metrics.json, best.pt, log and checkpoint untouched
    _same_result(json.loads((run / "metrics.json").read_text()), reference)


def test_checkpoint_records_the_stop(tiny, tmp_path):
    fit(config(tiny), tmp_path)
    state = ckpt.load(tmp_path / "checkpoint.pt")["state"]
    assert state["stopped"] is True


def test_checkpoint_without_the_stop_flag_is_judged_by_the_same_rule(tiny, reference,
                                                                       tmp_path):
    fit(config(tiny), tmp_path)
    saved = ckpt.load(tmp_path / "checkpoint.pt")
    saved["state"].pop("stopped", None)  # as written before the flag existed
    ckpt.save(saved, tmp_path / "checkpoint.pt")
    (tmp_path / "metrics.json").unlink()
    again = fit(config(tiny), tmp_path, resume=True)
    _same_result(again, reference)
    assert _epochs_logged(tmp_path) == list(range(1, reference["epochs"] + 1))


KILL_IN_BEST = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from reliability.train_helpers import config
from lmmrec import io
from lmmrec.train import checkpoint as ckpt
from lmmrec.train.trainer import fit

real = ckpt.save
def half_then_killed(f):
    f.write(b"PK\\x03\\x04 half a zip")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
def save(obj, path):
    if Path(path).name == "best.pt":  # the write after the final check, cut short
        io.atomic_write(Path(path), half_then_killed)
    return real(obj, path)
ckpt.save = save
fit(config(Path({data!r})), Path({out!r}))
"""


def test_kill_while_best_pt_is_written_resumes_to_the_same_result(tiny, reference, tmp_path,
                                                                  cli):
    run = tmp_path / "run"
    tests = str(Path(__file__).resolve().parents[1])
    proc = python(KILL_IN_BEST.format(tests=tests, data=str(tiny), out=str(run)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (run / "best.pt").exists() and not (run / "metrics.json").exists()
    orphans = list(run.glob(".best.pt.*.tmp"))
    assert orphans  # what the kill left

    res = cli("train", "--out", run, "--resume")
    assert res.code == 0, res.err
    _same_result(json.loads((run / "metrics.json").read_text()), reference)
    assert _epochs_logged(run) == list(range(1, reference["epochs"] + 1))  # no epoch trained
    assert not list(run.glob(".*.tmp"))  # the orphan was cleaned at start
    assert ckpt.load(run / "best.pt", keys=("model",))["best_epoch"] == reference["best_epoch"]


def test_experiment_never_retrains_a_finished_cell(tiny, reference, tmp_path):
    from lmmrec.experiment.grid import run_experiment
    from lmmrec.experiment.spec import experiment_from_dict

    from .train_helpers import SETS

    spec = {"out": str(tmp_path / "exp"), "datasets": {"tiny": str(tiny)},
            "backbones": ["mf"], "variants": {"base": {"method": "base"}}, "seeds": [2023],
            "common": list(SETS)}
    exp = experiment_from_dict(spec, tmp_path)
    assert run_experiment(exp)["ran"] == 1
    (cell,) = [p.parent for p in (tmp_path / "exp").rglob("metrics.json")]
    first = json.loads((cell / "metrics.json").read_text())
    _same_result(first, reference)

    # killed after the final check, before the test pass wrote metrics.json
    (cell / "metrics.json").unlink()
    (cell / "best.pt").unlink()
    summary = run_experiment(exp)
    assert summary["ran"] == 1 and summary["partial"] == 1
    _same_result(json.loads((cell / "metrics.json").read_text()), first)
    assert _epochs_logged(cell) == list(range(1, first["epochs"] + 1))
