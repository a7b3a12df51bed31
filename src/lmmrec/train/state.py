"""Everything one training run carries from epoch to epoch, in one object."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from rich.progress import Progress, TaskID

from lmmrec.data.dataset import PreparedDataset
from lmmrec.train.config import RunConfig
from lmmrec.train.distributed import Dist
from lmmrec.train.sampler import BPRSampler

if TYPE_CHECKING:  # callbacks.py imports this module
    from lmmrec.train.callbacks import Callback


def new_counters() -> dict[str, Any]:
    """A fresh run's counters. A plain dict, not a dataclass: it is stored as-is under the
    checkpoint's "state" key, and old checkpoints must keep loading."""
    return {"epoch": 0, "best_score": -math.inf, "best_epoch": -1, "best_val": {},
            "bad_checks": 0, "epoch_seconds": [], "stopped": False}


def weights_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class TrainState:
    """The model, its optimiser and sampler, the counters and best weights, and where the
    run lives (process group, device, folder, config)."""

    cfg: RunConfig
    out: Path
    dist: Dist
    device: torch.device
    ds: PreparedDataset
    model: Any  # a Backbone (or a wrapper around one): an nn.Module with the trainer hooks
    optimizer: torch.optim.Optimizer
    sampler: BPRSampler
    counters: dict[str, Any] = field(default_factory=new_counters)
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    callbacks: list[Callback] = field(default_factory=list)
    progress: Progress | None = None
    task: TaskID | None = None

    @property
    def main(self) -> bool:
        """Rank 0: the one process that evaluates and writes."""
        return self.dist.rank == 0

    @property
    def epoch(self) -> int:
        """Epochs trained so far."""
        return int(self.counters["epoch"])

    def show(self, description: str, advance: int | None = None) -> None:
        """Update the progress bar's text (and advance it by epochs done)."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, advance=advance, description=description)
