"""Model-agnostic alignment: one wrapper around any backbone, with pluggable aligners
(LMMRec, RLMRec-Con, RLMRec-Gen, IRLLRec)."""
