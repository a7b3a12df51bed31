"""The files `fit` writes into a run folder, by name (a leaf module: the trainer, resume
and the CLI/report code all name them)."""

from __future__ import annotations

CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
CONFIG = "config.json"
LOG = "log.jsonl"
METRICS = "metrics.json"
RESOLVED = "resolved.json"
