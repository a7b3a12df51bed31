"""DCCF (Ren et al. 2023): disentangled intents plus adaptive, embedding-weighted graphs.

Per layer: graph message passing, intent-aware aggregation, and two adaptive graphs whose
edge weights come from cosine similarity of the gnn / intent embeddings; the four are
summed with a residual. InfoNCE ties the gnn view to the other three for the batch's
unique users and positive items (as RLMRec's version does).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from lmmrec.backbones.base import BackboneConfig, BaseBackbone, split, xavier_embedding
from lmmrec.backbones.graph import Graph, edge_index, norm_adj, spmm
from lmmrec.losses import info_nce_sum


class DCCFConfig(BackboneConfig):
    layers: int = Field(2, ge=1)  # graph propagation layers
    intents: int = Field(128, ge=1)  # latent intents
    cl_weight: float = Field(1e-3, ge=0.0)  # weight of the contrastive loss
    temperature: float = Field(0.1, gt=0.0)  # its temperature


class DCCF(BaseBackbone):
    Config = DCCFConfig

    def __init__(self, n_users, n_items, train, cfg):  # noqa: ANN001
        super().__init__(n_users, n_items, train, cfg)
        self.user_emb = xavier_embedding(n_users, cfg.dim)
        self.item_emb = xavier_embedding(n_items, cfg.dim)
        self.user_intent = nn.Parameter(nn.init.xavier_uniform_(torch.empty(cfg.dim, cfg.intents)))
        self.item_intent = nn.Parameter(nn.init.xavier_uniform_(torch.empty(cfg.dim, cfg.intents)))
        self.graph = norm_adj(train)
        self._views: list[tuple[torch.Tensor, ...]] = []

    def _adaptive(self, x: torch.Tensor) -> Graph:
        """Row-normalised graph with edge weight (cos(x_h, x_t) + 1) / 2."""
        head, tail = edge_index(self.graph)
        xn = nn.functional.normalize(x, dim=1)
        alpha = ((xn[head] * xn[tail]).sum(-1) + 1) / 2
        deg = torch.zeros(x.shape[0], device=x.device, dtype=x.dtype).index_add(0, head, alpha)
        return self.graph.with_values(alpha / deg.clamp_min(1e-12)[head])

    def forward(self, graph=None):  # noqa: ANN001
        g = graph if graph is not None else self.graph
        x = torch.cat([self.user_emb, self.item_emb])
        layers, views = [x], []
        for _ in range(self.cfg.layers):
            gnn = spmm(g, x)
            u, i = split(x, self.n_users)
            intent = torch.cat([torch.softmax(u @ self.user_intent, 1) @ self.user_intent.T,
                                torch.softmax(i @ self.item_intent, 1) @ self.item_intent.T])
            gaa = spmm(self._adaptive(gnn), x)
            iaa = spmm(self._adaptive(intent), x)
            views.append((gnn, intent, gaa, iaa))
            x = gnn + intent + gaa + iaa + x
            layers.append(x)
        self._views = views if self.training else []
        return split(torch.stack(layers).sum(0), self.n_users)

    def extra_losses(self, batch, user_emb, item_emb):  # noqa: ANN001
        if self.cfg.cl_weight == 0 or not self._views:
            return {}
        users = torch.unique(batch[0])
        items = torch.unique(batch[1]) + self.n_users
        t, cl = self.cfg.temperature, 0.0
        for gnn, *others in self._views:
            for other in others:
                for idx in (users, items):
                    a, b = gnn[idx], other[idx]
                    cl = cl + info_nce_sum(a, b, b, t)
        return {"cl": self.cfg.cl_weight * cl / users.numel()}
