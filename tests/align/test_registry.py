"""One registry per kind of part, and a run's settings validated once: training, resolved()
and the experiment harness all use the same typed objects."""

from __future__ import annotations

import pytest

from lmmrec.align.registry import ALIGNERS
from lmmrec.backbones import REGISTRY
from lmmrec.errors import ConfigError
from lmmrec.registry import Registry
from lmmrec.train.config import RunConfig, resolve_config, resolved


def test_registries_name_their_valid_choices() -> None:
    assert ALIGNERS.names() == ["base", "irllrec", "lmmrec", "rlmrec-con", "rlmrec-gen"]
    assert ALIGNERS.check("base") == "base"
    with pytest.raises(ValueError, match="unknown method 'nope'; valid: base, irllrec, lmmrec"):
        ALIGNERS.check("nope")
    with pytest.raises(ConfigError, match="unknown backbone 'nope'; valid: autocf, dccf, gccf"):
        REGISTRY.cls("nope")
    with pytest.raises(ConfigError, match=r"align \(lmmrec\): .*align\.mcs_wieght"):
        ALIGNERS.config("lmmrec", {"mcs_wieght": 1})


def test_typed_settings_are_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = Registry.config

    def counting(self: Registry, name: str, params: dict) -> object:
        calls.append(name)
        return real(self, name, params)

    monkeypatch.setattr(Registry, "config", counting)
    cfg = resolve_config(None, overrides=["align.every=2", "backbone.layers=1"],
                         base={"method": "rlmrec-con", "motivations": "x",
                               "backbone": {"name": "sgl"}})
    assert sorted(calls) == ["rlmrec-con", "sgl"]
    assert cfg.align_config.every == 2 and cfg.backbone_config.layers == 1
    out = resolved(cfg)  # no second validation: the objects held by the config
    assert sorted(calls) == ["rlmrec-con", "sgl"]
    assert out["align"] == cfg.align_config.model_dump(mode="json")
    assert out["backbone"] == {"name": "sgl", **cfg.backbone_config.model_dump(mode="json")}
    # the stored form is unchanged: only what was set
    assert cfg.model_dump()["align"] == {"every": 2}
    assert cfg.model_dump()["backbone"] == {"name": "sgl", "layers": 1}


def test_base_has_no_aligner_settings() -> None:
    cfg = RunConfig()
    assert cfg.align_config is None and cfg.backbone_config.dim == 32
    with pytest.raises(ValueError, match="align settings given but method is 'base'"):
        RunConfig(align={"every": 2})


def test_reassigned_settings_are_validated_again() -> None:
    cfg = RunConfig(backbone={"name": "mf", "dim": 8})
    cfg.backbone = {"name": "lightgcn", "layers": 1}
    assert type(cfg.backbone_config).__name__ == "LightGCNConfig"
    assert cfg.backbone_config.layers == 1
