"""SimGCL (Yu et al. 2022): InfoNCE between two views made by adding random noise of norm
`eps` (sign-aligned with the embedding) after each propagation layer."""

from __future__ import annotations

import torch
from pydantic import Field

from lmmrec.backbones.base import split
from lmmrec.backbones.lightgcn import LightGCN, LightGCNConfig
from lmmrec.losses import info_nce_sum


class SimGCLConfig(LightGCNConfig):
    keep_rate: float = Field(1.0, gt=0.0, le=1.0)  # edges kept per step (dropout)
    cl_weight: float = Field(0.1, ge=0.0)  # weight of the contrastive loss
    temperature: float = Field(0.2, gt=0.0)  # its temperature
    eps: float = Field(0.9, ge=0.0)  # size of the embedding noise


class SimGCL(LightGCN):
    Config = SimGCLConfig

    def _perturb(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.nn.functional.normalize(torch.rand_like(x), dim=1)
        return x + noise * torch.sign(x) * self.cfg.eps

    def extra_losses(self, batch, user_emb, item_emb):  # noqa: ANN001
        if self.cfg.cl_weight == 0:
            return {}
        users, pos, _ = batch
        u1, i1 = split(self.propagate(self.graph, self._perturb), self.n_users)
        u2, i2 = split(self.propagate(self.graph, self._perturb), self.n_users)
        t = self.cfg.temperature
        cl = (info_nce_sum(u1[users], u2[users], u2, t)
              + info_nce_sum(i1[pos], i2[pos], i2, t))
        return {"cl": self.cfg.cl_weight * cl / users.numel()}
