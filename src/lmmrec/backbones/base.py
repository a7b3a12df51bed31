"""The one interface every backbone (and any wrapper around one) offers the trainer."""

from __future__ import annotations

from typing import Any, ClassVar

import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from lmmrec.config import Strict

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (users, positive items, negative items)


class BackboneConfig(Strict):
    """Hyper-parameters every backbone has; subclasses add their own."""

    dim: int = Field(32, ge=1)  # embedding width


class Backbone(nn.Module):
    """Embeds all users and items from the training graph.

    - ``forward(graph=None) -> (user_emb [U, d], item_emb [I, d])``: ``None`` means the
      backbone's own training graph (with its training-time augmentation in ``train()`` mode).
    - ``extra_losses(batch, user_emb, item_emb) -> {name: weighted loss}``: the backbone's own
      self-supervised terms; the trainer adds them to BPR and L2.
    - ``on_epoch_start(epoch)``: optional hook.
    - ``n_users``, ``n_items``, ``dim`` (width of the output embeddings).

    Randomness comes from torch's global RNG, which the trainer seeds and checkpoints.
    """

    Config: ClassVar[type[BackboneConfig]] = BackboneConfig

    def __init__(self, n_users: int, n_items: int, train: sp.csr_matrix, cfg: Any) -> None:
        super().__init__()
        self.n_users, self.n_items, self.cfg = n_users, n_items, cfg
        self.dim = cfg.dim

    def forward(self, graph: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def extra_losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        return {}

    def on_epoch_start(self, epoch: int) -> None:
        return None

    def ego_embeddings(self, batch: Batch) -> list[torch.Tensor]:
        """The layer-0 embeddings of a batch's rows (for L2 on batch embeddings)."""
        users, pos, neg = batch
        return [self.user_emb[users], self.item_emb[pos], self.item_emb[neg]]

    # Graphs are plain attributes (not buffers: they'd bloat every state_dict), so move them here.
    def _apply(self, fn, recurse=True):  # noqa: ANN001
        from lmmrec.backbones.graph import Graph

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


def info_nce(a: torch.Tensor, b: torch.Tensor, all_b: torch.Tensor, temp: float) -> torch.Tensor:
    """Sum over rows of -log softmax(cos(a, all_b)/t) at the positive cos(a, b)/t (RLMRec's
    cal_infonce_loss, logsumexp for stability)."""
    a = nn.functional.normalize(a, dim=-1, eps=1e-8)
    b = nn.functional.normalize(b, dim=-1, eps=1e-8)
    all_b = nn.functional.normalize(all_b, dim=-1, eps=1e-8)
    pos = (a * b).sum(-1) / temp
    return (torch.logsumexp(a @ all_b.T / temp, dim=-1) - pos).sum()
