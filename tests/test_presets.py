"""Backbone presets hold only what differs from the config models' defaults (one place for
each default), and still resolve to the published settings they name."""

from __future__ import annotations

import pytest

from lmmrec.backbones import backbone_class
from lmmrec.config import read_yaml
from lmmrec.train.config import OptimConfig, TrainSection, backbone_files, resolve_config, resolved

PRESETS = backbone_files()

# The settings each preset stands for (RLMRec's configs; the LightGCN paper's for -ref).
PUBLISHED = {
    "lightgcn": {"dim": 32, "layers": 3, "combine": "sum", "keep_rate": 0.8, "reg_weight": 1e-6,
                 "batch_size": 4096},
    "lightgcn-ref": {"dim": 64, "layers": 3, "combine": "mean", "keep_rate": 1.0,
                     "reg_weight": 1e-4, "reg": "batch", "batch_size": 2048},
    "sgl": {"dim": 32, "layers": 3, "keep_rate": 0.8, "cl_weight": 0.1, "temperature": 0.2,
            "reg_weight": 1e-5},
    "simgcl": {"dim": 32, "layers": 3, "cl_weight": 0.1, "temperature": 0.2, "eps": 0.9,
               "reg_weight": 1e-5},
    "dccf": {"dim": 32, "layers": 2, "intents": 128, "cl_weight": 1e-3, "temperature": 0.1,
             "reg_weight": 1e-4},
    "gccf": {"dim": 32, "layers": 2, "reg_weight": 1e-6},
    "mf": {"dim": 32, "reg_weight": 1e-6},
    "autocf": {"dim": 32, "layers": 2, "gt_layers": 1, "heads": 4, "seeds": 100, "mask_depth": 2,
               "sample_rate": 0.2, "fix_steps": 10, "ssl_weight": 5.0, "reg_weight": 1e-6,
               "batch_size": 4096, "lr": 1e-3},
}


def test_every_preset_is_pinned() -> None:
    assert set(PRESETS) == set(PUBLISHED)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_holds_only_differences(name: str) -> None:
    raw = read_yaml(PRESETS[name])
    defaults = {"backbone": backbone_class(raw["backbone"]["name"]).Config(),
                "optim": OptimConfig(), "train": TrainSection()}
    same = [f"{section}.{key}" for section, values in raw.items()
            for key, value in values.items()
            if key != "name" and getattr(defaults[section], key) == value]
    assert not same, f"{name}.yaml repeats defaults: {same}"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_resolves_to_published_settings(name: str) -> None:
    r = resolved(resolve_config(name))
    flat = {**r["backbone"], **r["optim"], **r["train"]}
    for key, want in PUBLISHED[name].items():
        assert flat[key] == want, f"{name}: {key} = {flat[key]!r}, published {want!r}"
