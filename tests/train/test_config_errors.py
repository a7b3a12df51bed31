"""Bad configuration fails with a clear ConfigError / DataError before training starts."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from lmmrec.cli.main import main
from lmmrec.errors import ConfigError, DataError
from lmmrec.train.config import resolve_config
from lmmrec.train.trainer import fit


def test_unknown_backbone_lists_valid_ones():
    with pytest.raises(ConfigError, match="unknown backbone 'nope'.*lightgcn.*simgcl"):
        resolve_config("nope")
    with pytest.raises(ConfigError, match="unknown backbone 'nope'"):
        resolve_config("lightgcn", overrides=["backbone.name=nope"])


@pytest.mark.parametrize("override, match", [
    ("optim.lr=-0.1", "optim.lr"),
    ("backbone.layerz=2", "layerz"),
    ("train.device=tpu", "train.device"),
    ("eval.select=recall@50", "select"),
    ("method=lmmrec-typo", "unknown method"),
    ("backbone.keep_rate=1.5", "keep_rate"),
])
def test_bad_values(override, match):
    with pytest.raises(ConfigError, match=match):
        resolve_config("lightgcn", overrides=[override])


def test_k_larger_than_catalogue(amazon_cut, tmp_path):
    cfg = resolve_config("mf", overrides=[f"data={amazon_cut}", "eval.ks=[20, 100000]"])
    with pytest.raises(ConfigError, match="larger than the catalogue"):
        fit(cfg, tmp_path)
    assert not (tmp_path / "log.jsonl").exists()


def test_dataset_missing_a_split(amazon_cut, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(amazon_cut, broken)
    inter = pd.read_parquet(broken / "interactions.parquet")
    inter[inter["split"] != "val"].to_parquet(broken / "interactions.parquet", index=False)
    cfg = resolve_config("mf", overrides=[f"data={broken}"])
    with pytest.raises(DataError, match="val"):
        fit(cfg, tmp_path / "run")


def test_cli_exit_code_and_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--backbone", "nope", "--data", str(tmp_path), "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "unknown backbone" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_train_then_evaluate(amazon_cut, tmp_path, capsys):
    run = tmp_path / "run"
    main(["train", "--backbone", "mf", "--data", str(amazon_cut), "--out", str(run),
          "--set", "train.max_epochs=2", "--set", "train.progress=false",
          "--motivations", str(tmp_path)])
    assert (run / "metrics.json").exists() and (run / "best.pt").exists()
    capsys.readouterr()
    main(["evaluate", str(run)])
    assert "recall@20" in capsys.readouterr().out
    main(["train", "--out", str(run), "--resume"])  # finished run: nothing to do
