"""Hooks into `fit` for code that is not the model: extra loss terms, leaving early.

Subclass `Callback` and override what you need; `fit(cfg, out, callbacks=[...])` calls
every callback's hooks in list order.
"""

from __future__ import annotations

import torch

from lmmrec.train.state import TrainState


class Callback:
    """No-op hooks; a subclass overrides the ones it needs."""

    def extra_losses(self, batch: tuple[torch.Tensor, ...], user_emb: torch.Tensor,
                     item_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms added to every training batch's loss (and logged)."""
        return {}

    def on_checkpoint(self, state: TrainState) -> bool:
        """Called on every rank after each validation's checkpoint (rank 0 wrote it).
        True leaves `fit` right there, as a kill would: no best.pt, no test pass, and
        `fit` returns {"stopped_after": epoch}; `--resume` carries on from it."""
        return False


class StopAfter(Callback):
    """Leave `fit` after the first checkpoint at or past `epochs` (simulates a kill)."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_checkpoint(self, state: TrainState) -> bool:
        return state.epoch >= self.epochs
