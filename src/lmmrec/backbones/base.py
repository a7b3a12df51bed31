"""The one interface every backbone (and any wrapper around one) offers the trainer and
the aligners: the `Backbone` protocol. `BaseBackbone` is the convenient way to implement it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from lmmrec.backbones.graph import Graph
from lmmrec.config import Strict
from lmmrec.losses import bpr

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (users, positive items, negative items)


@runtime_checkable
class Backbone(Protocol):
    """What the trainer and the alignment wrapper rely on; implementations are nn.Modules.

    - ``forward(graph=None) -> (user_emb [U, dim], item_emb [I, dim])``: ``None`` means the
      backbone's own training graph (with its training-time augmentation in ``train()`` mode).
    - ``rec_loss(batch, user_emb, item_emb) -> {name: loss}``: the recommendation loss,
      ``{"bpr": ...}`` unless the backbone trains with another (AutoCF).
    - ``extra_losses(batch, user_emb, item_emb) -> {name: weighted loss}``: the backbone's own
      self-supervised terms; the trainer adds them to the recommendation loss and L2.
    - ``ego_embeddings(batch)``: the layer-0 embeddings of a batch's rows (L2 on the batch).
    - ``on_epoch_start(epoch)``: a hook, called before each training epoch.

    Randomness comes from torch's global RNG, which the trainer seeds and checkpoints.
    """

    n_users: int
    n_items: int
    dim: int  # width of the output embeddings

    def forward(self, graph: Any = None) -> tuple[torch.Tensor, torch.Tensor]: ...

    def rec_loss(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor
                 ) -> dict[str, torch.Tensor]: ...

    def extra_losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor
                     ) -> dict[str, torch.Tensor]: ...

    def ego_embeddings(self, batch: Batch) -> list[torch.Tensor]: ...

    def on_epoch_start(self, epoch: int) -> None: ...


class BackboneConfig(Strict):
    """Hyper-parameters every backbone has; subclasses add their own."""

    dim: int = Field(32, ge=1)  # embedding width


class BaseBackbone(nn.Module):
    """`Backbone` with defaults: BPR, no extra losses, no epoch hook, `ego_embeddings` from
    the `user_emb` / `item_emb` tables, and graphs moved with the module. A subclass sets
    ``Config`` and implements ``forward``."""

    Config: ClassVar[type[BackboneConfig]] = BackboneConfig

    def __init__(self, n_users: int, n_items: int, train: sp.csr_matrix, cfg: Any) -> None:
        super().__init__()
        self.n_users, self.n_items, self.cfg = n_users, n_items, cfg
        self.dim = cfg.dim

    def forward(self, graph: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def rec_loss(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
        users, pos, neg = batch
        return {"bpr": bpr(user_emb[users], item_emb[pos], item_emb[neg])}

    def extra_losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        return {}

    def on_epoch_start(self, epoch: int) -> None:
        return None

    def ego_embeddings(self, batch: Batch) -> list[torch.Tensor]:
        users, pos, neg = batch
        return [self.user_emb[users], self.item_emb[pos], self.item_emb[neg]]

    # Graphs are plain attributes (not buffers: they'd bloat every state_dict), so move them here.
    def _apply(self, fn, recurse=True):  # noqa: ANN001
        out = super()._apply(fn, recurse)
        device = fn(torch.zeros(1)).device
        for name, value in list(vars(self).items()):
            if isinstance(value, Graph):
                setattr(self, name, value.to(device))
        return out


def xavier_embedding(n: int, dim: int) -> nn.Parameter:
    return nn.Parameter(nn.init.xavier_uniform_(torch.empty(n, dim)))


def split(x: torch.Tensor, n_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    return x[:n_users], x[n_users:]
