"""SGL (Wu et al. 2021), edge-drop variant as in RLMRec: BPR on the full graph; InfoNCE between
two edge-dropped views for the batch's users, positive and negative items."""

from __future__ import annotations

from pydantic import Field

from lmmrec.backbones.base import split
from lmmrec.backbones.lightgcn import LightGCN, LightGCNConfig
from lmmrec.losses import info_nce_sum


class SGLConfig(LightGCNConfig):
    cl_weight: float = Field(0.1, ge=0.0)  # weight of the contrastive loss
    temperature: float = Field(0.2, gt=0.0)  # its temperature


class SGL(LightGCN):
    Config = SGLConfig

    def train_graph(self):  # noqa: ANN201
        return self.graph  # dropout is for the contrastive views only

    def extra_losses(self, batch, user_emb, item_emb):  # noqa: ANN001
        if self.cfg.cl_weight == 0:
            return {}
        users, pos, neg = batch
        keep = self.cfg.keep_rate
        u1, i1 = split(self.propagate(self.graph.edge_dropout(keep)), self.n_users)
        u2, i2 = split(self.propagate(self.graph.edge_dropout(keep)), self.n_users)
        t = self.cfg.temperature
        cl = (info_nce_sum(u1[users], u2[users], u2, t)
              + info_nce_sum(i1[pos], i2[pos], i2, t)
              + info_nce_sum(i1[neg], i2[neg], i2, t))
        return {"cl": self.cfg.cl_weight * cl / users.numel()}
