"""The one wrapper: any backbone + one aligner, offering the backbone interface itself.

The trainer cannot tell it from a plain backbone: `forward` gives the backbone's
embeddings while training and the aligner's scoring embeddings (cold start, optional text
fusion) in eval mode; `extra_losses` adds the aligner's terms to the backbone's own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lmmrec.align.aligners import Aligner, Batch


class AlignedModel(nn.Module):
    def __init__(self, backbone: nn.Module, aligner: Aligner) -> None:
        super().__init__()
        self.backbone, self.aligner = backbone, aligner
        self.n_users, self.n_items = backbone.n_users, backbone.n_items
        self.dim = backbone.dim
        self._step = 0  # within the epoch: which steps align (`align.every`)

    def forward(self, graph: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        user_emb, item_emb = self.backbone(graph)
        if self.training:
            return user_emb, item_emb
        return self.aligner.score_embeddings(user_emb, item_emb)

    def extra_losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        out = dict(self.backbone.extra_losses(batch, user_emb, item_emb))
        every = self.aligner.every
        if self._step % every == 0:
            aligned = self.aligner.losses(batch, user_emb, item_emb, self.backbone)
            out.update({k: v * every if every > 1 else v for k, v in aligned.items()})
        self._step += 1
        return out

    def ego_embeddings(self, batch: Batch) -> list[torch.Tensor]:
        return self.backbone.ego_embeddings(batch)

    def on_epoch_start(self, epoch: int) -> None:
        self._step = 0
        self.backbone.on_epoch_start(epoch)
        self.aligner.on_epoch_start(epoch)
