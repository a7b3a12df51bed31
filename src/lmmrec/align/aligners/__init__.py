"""Aligners: what `--method NAME` adds to a backbone (registered in lmmrec.align.registry).

- base.py: `AlignConfig` and `Aligner`, the contract every aligner implements;
- lmmrec.py: LMMRec (dual encoder, MCS, ITCM, motivation prototypes);
- rlmrec.py: the RLMRec-Con and RLMRec-Gen baselines;
- irllrec.py: the IRLLRec baseline (RLMRec-Con plus intent prototypes and an EMA teacher).
"""

from lmmrec.align.aligners.base import AlignConfig, Aligner
from lmmrec.align.aligners.irllrec import IRLLRecAligner, IRLLRecConfig
from lmmrec.align.aligners.lmmrec import LMMRecAligner, LMMRecConfig
from lmmrec.align.aligners.rlmrec import (
    RLMRecConAligner,
    RLMRecConConfig,
    RLMRecGenAligner,
    RLMRecGenConfig,
)

__all__ = ["AlignConfig", "Aligner", "IRLLRecAligner", "IRLLRecConfig", "LMMRecAligner",
           "LMMRecConfig", "RLMRecConAligner", "RLMRecConConfig", "RLMRecGenAligner",
           "RLMRecGenConfig"]
