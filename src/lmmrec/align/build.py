"""Build the model a run asks for: a plain backbone, or the wrapper with an aligner."""

from __future__ import annotations

from pathlib import Path

from lmmrec.align.aligners.base import AlignConfig
from lmmrec.align.registry import ALIGNERS, BASE, text_input_of
from lmmrec.align.wrapper import AlignedModel
from lmmrec.backbones.base import Backbone
from lmmrec.data.dataset import PreparedDataset
from lmmrec.text.inputs import TEXT_INPUTS


def wrap(backbone: Backbone, method: str, cfg: AlignConfig | None, ds: PreparedDataset,
         motivations: str | Path | None) -> Backbone:
    """`backbone` itself for base; otherwise the aligned wrapper, its aligner built from
    ``cfg`` (the run's validated `align` settings, `RunConfig.align_config`) and fed by the
    text side its `text_input` names (lmmrec.text.inputs.TEXT_INPUTS)."""
    if method == BASE:
        return backbone
    aligner_cls = ALIGNERS.cls(method)
    if not isinstance(cfg, aligner_cls.Config):  # settings validated for another method
        raise TypeError(f"method {method!r} needs a {aligner_cls.Config.__name__}, "
                        f"not {type(cfg).__name__}")
    inputs = TEXT_INPUTS[text_input_of(cfg)](ds, motivations, cfg, method)
    model = AlignedModel(backbone, aligner_cls.create(inputs, backbone, cfg, ds.train))
    model.text_stats = dict(inputs.stats)  # written to the run's metrics.json
    return model
