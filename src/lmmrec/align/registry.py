"""Aligners registered by `--method` name (torch-free, so validating a run config is light).

Adding a method is one Aligner class (its `Config` is its `align.*` settings model) and one
line in `ALIGNERS`; "base" is the backbone alone, without an aligner.
"""

from __future__ import annotations

from typing import Any

from lmmrec.registry import Registry

BASE = "base"

# --method name -> "module:Class" of its Aligner; imported on use (docs/DEVELOPING.md).
ALIGNERS = Registry({
    "lmmrec": "lmmrec.align.aligners.lmmrec:LMMRecAligner",
    "rlmrec-con": "lmmrec.align.aligners.rlmrec:RLMRecConAligner",
    "rlmrec-gen": "lmmrec.align.aligners.rlmrec:RLMRecGenAligner",
    "irllrec": "lmmrec.align.aligners.irllrec:IRLLRecAligner",
}, what="method", prefix="align.", source="align ({})", extra=(BASE,))

# The text side an aligner reads when its Config has no `text_input` setting.
DEFAULT_TEXT_INPUT = "phrases"


def text_input_of(align_cfg: Any) -> str:
    """Which text side (a key of lmmrec.text.inputs.TEXT_INPUTS) an aligner's config asks for."""
    return getattr(align_cfg, "text_input", DEFAULT_TEXT_INPUT)
