"""Aligners: what `--method NAME` adds to a backbone (registered in lmmrec.align.registry).

- base.py: `AlignConfig` and `Aligner`, the contract every aligner implements;
- lmmrec.py: LMMRec (dual encoder, MCS, ITCM, motivation prototypes);
- rlmrec.py: the RLMRec-Con and RLMRec-Gen baselines.
"""

from lmmrec.align.aligners.base import AlignConfig, Aligner
from lmmrec.align.aligners.lmmrec import LMMRecAligner, LMMRecConfig
from lmmrec.align.aligners.rlmrec import (
    RLMRecConAligner,
    RLMRecConConfig,
    RLMRecGenAligner,
    RLMRecGenConfig,
)

__all__ = ["AlignConfig", "Aligner", "LMMRecAligner", "LMMRecConfig", "RLMRecConAligner",
           "RLMRecConConfig", "RLMRecGenAligner", "RLMRecGenConfig"]
