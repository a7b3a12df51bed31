"""The run configuration: what `lmmrec train` validates before any work starts.

Layers: defaults < configs/backbones/<name>.yaml < --config FILE < --set key=value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from lmmrec.align.registry import ALIGNERS, BASE, text_input_of
from lmmrec.backbones import REGISTRY, backbone_config
from lmmrec.config import Strict, load_config, packaged_config, read_yaml
from lmmrec.errors import ConfigError
from lmmrec.layout import ARTIFACT

if TYPE_CHECKING:  # torch: validating a config imports only the chosen classes
    from lmmrec.align.aligners.base import AlignConfig
    from lmmrec.backbones.base import BackboneConfig


class OptimConfig(Strict):
    lr: float = Field(1e-3, gt=0, allow_inf_nan=False)  # Adam learning rate
    reg_weight: float = Field(1e-6, ge=0)  # L2 weight (see optim.reg for what it covers)
    # params: reg_weight * sum of squared parameters (RLMRec); batch: on the batch's layer-0
    # embeddings / (2 * batch size) (the LightGCN paper's code)
    reg: Literal["params", "batch"] = "params"


class TrainSection(Strict):
    batch_size: int = Field(4096, ge=1)  # BPR triples per step (global, over all processes)
    max_epochs: int = Field(3000, ge=1)  # upper bound; early stopping usually ends sooner
    eval_every: int = Field(3, ge=1)  # validate every N epochs
    patience: int = Field(5, ge=1)  # stop after N validations without a new best
    seed: int = 2023  # seeds torch, numpy and the sampler
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps
    threads: int | None = Field(None, ge=1)  # torch CPU threads (None: torch's default)
    progress: bool = True  # show a progress bar

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return v


class EvalSection(Strict):
    ks: list[int] = Field(default_factory=lambda: [5, 10, 20], min_length=1)  # K of metric@K
    select: str = "recall@20"  # early stopping / best model criterion on validation
    user_chunk: int = Field(2048, ge=1)  # users ranked at a time (memory)
    item_chunk: int | None = Field(None, ge=1)  # items scored at a time (None: all)

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        if any(k < 1 for k in v):
            raise ValueError("every K must be >= 1")
        return sorted(set(v))

    @model_validator(mode="after")
    def _select(self) -> EvalSection:
        from lmmrec.eval.metrics import METRICS  # imports torch; config stays torch-free

        name, _, k = self.select.partition("@")
        if name not in METRICS or not k.isdigit() or int(k) not in self.ks:
            raise ValueError(f"select {self.select!r} must be one of METRIC@K with METRIC in "
                             f"{', '.join(METRICS)} and K in {self.ks}")
        return self


class RunConfig(Strict):
    """A run's settings. `align` and `backbone` stay plain dicts, the stored form (YAML,
    `--set`, config.json); they are validated once, here, into the typed `align_config` and
    `backbone_config` that training, `resolved` and the experiment harness all use."""

    data: str | None = None  # prepared dataset folder (--data)
    method: str = "base"  # base, lmmrec, rlmrec-con, rlmrec-gen or irllrec (--method)
    motivations: str | None = None  # motivation artifact folder (--motivations)
    align: dict[str, Any] = Field(default_factory=dict)  # the method's aligner settings
    backbone: dict[str, Any] = Field(default_factory=lambda: {"name": "lightgcn"})  # name+keys
    optim: OptimConfig = Field(default_factory=OptimConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    _align_config: Any = PrivateAttr(None)  # set by the validators below
    _backbone_config: Any = PrivateAttr(None)

    @property
    def align_config(self) -> AlignConfig | None:
        """The method's typed aligner settings (None for base)."""
        return self._align_config

    @property
    def backbone_config(self) -> BackboneConfig:
        """The backbone's typed settings (without its name: `backbone["name"]`)."""
        return self._backbone_config

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        return ALIGNERS.check(v)

    @model_validator(mode="after")
    def _align(self) -> RunConfig:
        if self.method == BASE:
            if self.align:
                raise ValueError("align settings given but method is 'base'")
            self._align_config = None
            return self
        acfg = ALIGNERS.config(self.method, self.align)  # raises ConfigError naming the key
        if not self.motivations and text_input_of(acfg) != "reviews":
            alt = ("; or train on the raw review text, no LLM needed: --set "
                   "align.text_input=reviews" if self.method == "lmmrec" else
                   "; or use --method lmmrec --set align.text_input=reviews (raw review "
                   "text, no LLM needed)")
            # ConfigError, not ValueError: pydantic passes it through unwrapped
            raise ConfigError(f"--method {self.method} needs motivations: pass "
                              "--motivations DIR (made by `lmmrec extract export` and "
                              f"`lmmrec embed`){alt}")
        self._align_config = acfg
        return self

    @model_validator(mode="after")
    def _backbone(self) -> RunConfig:
        if "name" not in self.backbone:
            raise ValueError("backbone.name is required")
        self._backbone_config = backbone_config(self.backbone["name"], self.backbone)
        return self


def resolved(cfg: RunConfig) -> dict[str, Any]:
    """The run's settings with every default spelled out, the aligner's and the
    backbone's included: two runs with equal dicts train the same way, so a changed default
    shows up here (config.json keeps only what was set)."""
    out = cfg.model_dump(mode="json")
    if cfg.align_config is not None:
        out["align"] = cfg.align_config.model_dump(mode="json")
        if cfg.motivations and (Path(cfg.motivations) / ARTIFACT.manifest).exists():
            # pandas (1 s): imported only when a run has motivations to fingerprint
            from lmmrec.text.artifact import artifact_fingerprint

            # what the text side read: the same path with new contents is another input
            out["motivations_fingerprint"] = artifact_fingerprint(cfg.motivations)
    out["backbone"] = {"name": cfg.backbone["name"],
                       **cfg.backbone_config.model_dump(mode="json")}
    return out


def backbone_files() -> dict[str, Path]:
    """Shipped backbone presets: configs/backbones/<preset>.yaml."""
    folder = packaged_config("backbones")
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def resolve_config(backbone: str | None, files: list[str | Path] | None = None,
                   overrides: list[str] | None = None,
                   base: dict[str, Any] | None = None) -> RunConfig:
    """Preset for `backbone` (a shipped YAML name or a registered backbone), then files,
    then overrides."""
    layers: list[str | Path] = []
    if backbone is not None:
        presets = backbone_files()
        if backbone in presets:
            layers.append(presets[backbone])
        elif backbone in REGISTRY:
            base = {**(base or {}), "backbone": {"name": backbone}}
        else:
            valid = sorted(set(presets) | set(REGISTRY))
            raise ConfigError(f"unknown backbone {backbone!r}; valid: {', '.join(valid)}")
    for f in files or []:
        read_yaml(f)  # fail on a missing/invalid file before merging
    return load_config(RunConfig, layers + list(files or []), overrides, base=base)
