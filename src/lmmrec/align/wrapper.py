"""The one wrapper: any backbone + one aligner, itself a `Backbone`.

The trainer cannot tell it from a plain backbone: `forward` gives the backbone's
embeddings while training and the aligner's scoring embeddings (cold start, optional text
fusion) in eval mode; `extra_losses` adds the aligner's terms to the backbone's own.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lmmrec.align.aligners.base import Aligner
from lmmrec.backbones.base import Backbone, Batch


class AlignedModel(nn.Module):
    def __init__(self, backbone: Backbone, aligner: Aligner) -> None:
        super().__init__()
        self.backbone, self.aligner = backbone, aligner
        self.n_users, self.n_items = backbone.n_users, backbone.n_items
        self.dim = backbone.dim
        self.text_stats: dict[str, Any] = {}  # the profiles' coverage (set by `wrap`)
        # Training steps so far, over the whole run (saved with the weights, so a resumed run
        # aligns on the same steps): every `align.every`-th one aligns.
        self.register_buffer("align_step", torch.zeros((), dtype=torch.long))

    def forward(self, graph: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        user_emb, item_emb = self.backbone(graph)
        if self.training:
            return user_emb, item_emb
        return self.aligner.score_embeddings(user_emb, item_emb)

    def rec_loss(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor
                 ) -> dict[str, torch.Tensor]:
        return self.backbone.rec_loss(batch, user_emb, item_emb)

    def extra_losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor
                     ) -> dict[str, torch.Tensor]:
        out = dict(self.backbone.extra_losses(batch, user_emb, item_emb))
        self.aligner.on_step(self.backbone)  # every step, aligned or not (the EMA teacher)
        every = self.aligner.every
        if int(self.align_step) % every == 0:
            aligned = self.aligner.losses(batch, user_emb, item_emb, self.backbone)
            out.update({k: v * every if every > 1 else v for k, v in aligned.items()})
        self.align_step += 1
        return out

    def ego_embeddings(self, batch: Batch) -> list[torch.Tensor]:
        return self.backbone.ego_embeddings(batch)

    def on_epoch_start(self, epoch: int) -> None:
        self.backbone.on_epoch_start(epoch)
        self.aligner.on_epoch_start(epoch)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        # weights saved before the step counter existed load as step 0
        state_dict.setdefault(prefix + "align_step", torch.zeros((), dtype=torch.long))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
