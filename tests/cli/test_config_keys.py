"""Config keys lead somewhere: typos get the closest real key, `lmmrec config show` lists
every key from the models, a missing --motivations says what to do, help shows a:b:c."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from lmmrec.errors import ConfigError
from lmmrec.train.config import resolve_config


@pytest.mark.parametrize("override, hint", [
    ("train.epochs=30", "did you mean train.max_epochs?"),
    ("trian.max_epochs=3", "did you mean train?"),
    ("eval.k=[5]", "did you mean eval.ks?"),
    ("backbone.layer=2", "did you mean backbone.layers?"),
    ("optim.reg_wieght=0.1", "did you mean optim.reg_weight?"),
])
def test_typo_gets_the_closest_key(override: str, hint: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve_config("lightgcn", overrides=[override])
    assert hint in str(e.value) and "unknown key" in str(e.value)
    assert "Extra inputs" not in str(e.value)


def test_align_typo_and_cli_exit_code(cli, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"align\.mcs_wieght: unknown key; did you mean "
                                          r"align\.mcs_weight\?"):
        resolve_config("lightgcn", overrides=["align.mcs_wieght=1"],
                       base={"method": "lmmrec", "motivations": "x"})
    r = cli("train", "--backbone", "lightgcn", "--data", tmp_path, "--out", tmp_path / "r",
            "--set", "train.epochs=30")
    assert r.code == 2 and "did you mean train.max_epochs?" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_missing_motivations_says_what_to_do(cli, tmp_path) -> None:
    r = cli("train", "--backbone", "lightgcn", "--data", tmp_path, "--out", tmp_path / "r",
            "--method", "lmmrec")
    assert r.code == 2
    assert "--method lmmrec needs motivations: pass --motivations DIR" in r.err
    assert "align.text_input=reviews" in r.err
    assert "Value error" not in r.err and "<root>" not in r.err and ".yaml" not in r.err
    # no motivations needed for the raw-review text side
    cfg = resolve_config("lightgcn", overrides=["align.text_input=reviews"],
                         base={"method": "lmmrec"})
    assert cfg.motivations is None


def _walk(cls: type[BaseModel], prefix: str = "") -> set[str]:
    out = set()
    for name, info in cls.model_fields.items():
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            out |= _walk(info.annotation, f"{prefix}{name}.")
        else:
            out.add(prefix + name)
    return out


def test_config_show_lists_every_key_with_default_and_help(cli) -> None:
    from lmmrec.align import aligners as a
    from lmmrec.backbones import REGISTRY, backbone_class
    from lmmrec.train.config import RunConfig

    r = cli("config", "show", "--json")
    assert r.code == 0, r.err
    shown = json.loads(r.out)
    keys = {k["key"]: k for sec in shown.values() for k in sec}
    expect = _walk(RunConfig) - {"align", "backbone"}
    for cls in (a.LMMRecConfig, a.RLMRecConConfig, a.RLMRecGenConfig, a.IRLLRecConfig):
        expect |= _walk(cls, "align.")
    for name in REGISTRY:
        expect |= _walk(backbone_class(name).Config, "backbone.") | {"backbone.name"}
    assert expect <= set(keys)
    for key in expect:
        assert keys[key]["help"].strip(), f"{key} has no help line: comment its field"
        assert "\n" not in keys[key]["help"]
    assert keys["train.max_epochs"]["default"] == 3000
    assert keys["eval.ks"]["default"] == [5, 10, 20]
    # the text form, filtered to one method and a preset's values
    r = cli("config", "show", "--method", "lmmrec", "--backbone", "lightgcn-ref")
    assert r.code == 0, r.err
    assert "align.mcs_weight" in r.out and "align.mask_ratio" not in r.out
    line = next(ln for ln in r.out.splitlines() if ln.strip().startswith("backbone.dim"))
    assert " 64 " in line  # lightgcn-ref.yaml sets dim 64
    r = cli("config", "show", "--backbone", "nope")
    assert r.code == 2 and "unknown backbone" in r.err


def test_help_shows_ratios_as_written(cli) -> None:
    r = cli("data", "prepare", "--help")
    assert r.code == 0
    assert "a:b:c" in r.out and "\U0001f171" not in r.out
    r = cli("train", "--help")
    assert "lmmrec config show" in r.out


def test_training_warns_when_the_selection_metric_saturates(tmp_path) -> None:
    from pathlib import Path

    from lmmrec.data.pipeline import prepare_to
    from lmmrec.train.trainer import load_dataset

    src = Path(__file__).resolve().parents[1] / "fixtures" / "own-data" / "split-column.csv"
    prepare_to(str(src), tmp_path / "d")
    cfg = resolve_config("mf", overrides=[f"data={tmp_path / 'd'}", "eval.ks=[1,5]",
                                          "eval.select=recall@5"])
    with pytest.warns(UserWarning, match="recall@5 on 6 items: near 1"):
        load_dataset(cfg)
    cfg = resolve_config("mf", overrides=[f"data={tmp_path / 'd'}", "eval.ks=[1]",
                                          "eval.select=recall@1"])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(cfg)
