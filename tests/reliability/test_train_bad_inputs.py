"""Damaged or foreign inputs of training and of loading a run: one `error:` line, exit 2,
nothing overwritten. Also: numbers that cannot train, a diverging loss, a full disk."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from lmmrec.errors import ConfigError
from lmmrec.train import checkpoint as ckpt
from lmmrec.train.callbacks import Callback, StopAfter
from lmmrec.train.trainer import fit

from .train_helpers import config, make_data, one_line_error, snapshot, train_args


@pytest.fixture(scope="module")
def tiny(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(data_dir, tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="module")
def runs(tiny: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A finished MF run, and finished runs of another model and of another dataset."""
    root = tmp_path_factory.mktemp("runs")
    other_data = root / "data80"
    other_data.mkdir()
    from lmmrec.train.rlmrec_splits import load_rlmrec_splits

    load_rlmrec_splits(data_dir / "rlmrec-splits" / "amazon", max_users=80).save(other_data)
    fit(config(tiny, "train.max_epochs=3"), root / "mf")
    fit(config(tiny, "train.max_epochs=1", backbone="lightgcn"), root / "lightgcn")
    fit(config(other_data, "train.max_epochs=1"), root / "other-data")
    return {"mf": root / "mf", "lightgcn": root / "lightgcn", "other-data": root / "other-data"}


def _damage(runs: dict, run: Path, name: str, how: str) -> None:
    path = run / name
    if how == "corrupt":
        path.write_bytes(bytes(range(256)) * 40)
    elif how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif how == "other-model":
        shutil.copyfile(runs["lightgcn"] / name, path)
    elif how == "other-dataset":
        shutil.copyfile(runs["other-data"] / name, path)


LOADERS = {
    "evaluate": lambda run: ["evaluate", run],
    "recommend": lambda run: ["recommend", "--run", run, "--user", "0"],
    "serve": lambda run: ["serve", "--run", run, "--port", "9"],
}
DAMAGES = ["corrupt", "truncated", "other-model", "other-dataset"]


@pytest.fixture
def run_copy(runs, tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LMMREC_API_KEY", "a-key")  # serve: a keyed service on loopback
    run = tmp_path / "run"
    shutil.copytree(runs["mf"], run)
    return run


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("command", sorted(LOADERS))
def test_damaged_or_foreign_best_pt(runs, run_copy, command, how, cli):
    _damage(runs, run_copy, "best.pt", how)
    before = snapshot(run_copy)
    one_line_error(cli(*LOADERS[command](run_copy)), str(run_copy / "best.pt"))
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_or_foreign_checkpoint_on_resume(runs, run_copy, how, cli):
    (run_copy / "metrics.json").unlink()  # a resume with work left to do
    _damage(runs, run_copy, "checkpoint.pt", how)
    before = snapshot(run_copy)
    one_line_error(cli("train", "--out", run_copy, "--resume"),
                   str(run_copy / "checkpoint.pt"))
    assert snapshot(run_copy) == before


@pytest.mark.parametrize("text,needle", [
    ('{"data": "x", "backbone": {"name"', "invalid JSON"),
    ('["not", "a", "mapping"]', "expected a JSON object"),
    ('{"backbone": {"name": "mf", "dim": "wide"}}', "backbone"),
    ('{"train": {"patience": 0}}', "train.patience"),
])
@pytest.mark.parametrize("command", ["evaluate", "recommend", "serve", "resume"])
def test_malformed_config_json(run_copy, command, text, needle, cli):
    (run_copy / "config.json").write_text(text)
    before = snapshot(run_copy)
    args = (["train", "--out", run_copy, "--resume"] if command == "resume"
            else LOADERS[command](run_copy))
    one_line_error(cli(*args), str(run_copy / "config.json"), needle)
    assert snapshot(run_copy) == before


def test_truncated_interactions_parquet(tiny, tmp_path, cli):
    data = tmp_path / "data"
    shutil.copytree(tiny, data)
    table = data / "interactions.parquet"
    table.write_bytes(table.read_bytes()[:-100])
    one_line_error(cli(*train_args(data, tmp_path / "run")), str(table))


def test_huge_learning_rate_stops_naming_the_setting(tiny, tmp_path, cli):
    one_line_error(cli(*train_args(tiny, tmp_path / "run", "optim.lr=1e30")), "optim.lr",
                   "not finite")


def test_divergence_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    import torch

    from lmmrec.train.trainer import Diverged

    saves = []
    real_save = ckpt.save
    monkeypatch.setattr(ckpt, "save", lambda obj, path: (saves.append(path),
                                                         real_save(obj, path)))

    class BlowUp(Callback):
        def extra_losses(self, batch, user_emb, item_emb):  # noqa: ANN001, ANN202
            # NaN in the third epoch, after two checkpoints
            return {"aux": user_emb.sum() * (torch.nan if len(saves) >= 2 else 0.0)}

    with pytest.raises(Diverged, match=r"epoch 3: .*optim\.lr=0\.01.*last good checkpoint"):
        fit(config(tiny), tmp_path, callbacks=[BlowUp()])
    saved = ckpt.load(tmp_path / "checkpoint.pt")
    assert saved["state"]["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
    assert not (tmp_path / "best.pt").exists() and not list(tmp_path.glob(".*.tmp"))


def test_partial_last_log_line_does_not_block_resume(tiny, tmp_path, cli):
    ref = fit(config(tiny), tmp_path / "ref")
    run = tmp_path / "run"
    fit(config(tiny), run, callbacks=[StopAfter(3)])
    with open(run / "log.jsonl", "a") as f:
        f.write('{"epoch": 4, "loss": {"bpr": 0.6')  # a write cut short by a kill
    res = cli("train", "--out", run, "--resume")
    assert res.code == 0, res.err
    assert json.loads((run / "metrics.json").read_text())["test"] == ref["test"]
    [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]  # all parse


def test_full_disk_during_a_checkpoint_write(tiny, tmp_path, cli, monkeypatch):
    run = tmp_path / "run"
    fit(config(tiny), run, callbacks=[StopAfter(2)])
    before = (run / "checkpoint.pt").read_bytes()

    def full(obj, f, *a, **kw):  # noqa: ANN001
        f.write(b"\0" * 4096)  # part of it made it to disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt.torch, "save", full)
    one_line_error(cli("train", "--out", run, "--resume"), str(run / "checkpoint.pt"),
                   "No space left on device")
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not list(run.glob(".*.tmp"))
    monkeypatch.undo()
    assert ckpt.load(run / "checkpoint.pt")["state"]["epoch"] == 2


@pytest.mark.parametrize("setting", ["backbone.dim=0", "backbone.dim=-4"])
def test_non_positive_sizes_are_refused(tiny, tmp_path, setting, cli):
    one_line_error(cli(*train_args(tiny, tmp_path / "run", setting)), "backbone", "dim")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="dim"):
        config(tiny, setting, backbone="lightgcn")


def test_orphaned_temp_files_are_cleaned_at_start(tiny, tmp_path, cli):
    run = tmp_path / "run"
    fit(config(tiny), run, callbacks=[StopAfter(2)])
    orphans = [run / ".checkpoint.pt.k1ll3d.tmp", run / ".metrics.json.x0.tmp"]
    for p in orphans:
        p.write_bytes(b"half")
    keep = run.parent / ".checkpoint.pt.not-in-the-run.tmp"
    keep.write_bytes(b"not ours")
    assert cli("train", "--out", run, "--resume").code == 0
    assert not any(p.exists() for p in orphans) and keep.exists()


def test_demo_with_an_unknown_dataset_leaves_no_folder(tmp_path, cli):
    out = tmp_path / "a" / "demo"
    res = cli("demo", "--dataset", "nosuch", "--out", out)
    assert res.code == 2 and "error: nosuch: not a known dataset" in res.err
    assert "Traceback" not in res.err
    assert list(tmp_path.iterdir()) == []
