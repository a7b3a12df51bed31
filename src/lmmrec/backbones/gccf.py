"""GCCF / LR-GCCF (Chen et al. 2020) as RLMRec runs it: self-loop graph, linear layers
without weights, layer outputs concatenated (output width dim * (layers + 1))."""

from __future__ import annotations

import torch
from pydantic import Field

from lmmrec.backbones.base import BackboneConfig, BaseBackbone, split, xavier_embedding
from lmmrec.backbones.graph import norm_adj, spmm


class GCCFConfig(BackboneConfig):
    layers: int = Field(2, ge=0)  # graph propagation layers


class GCCF(BaseBackbone):
    Config = GCCFConfig

    def __init__(self, n_users, n_items, train, cfg):  # noqa: ANN001
        super().__init__(n_users, n_items, train, cfg)
        self.dim = cfg.dim * (cfg.layers + 1)
        self.user_emb = xavier_embedding(n_users, cfg.dim)
        self.item_emb = xavier_embedding(n_items, cfg.dim)
        self.graph = norm_adj(train, self_loop=True)

    def forward(self, graph=None):  # noqa: ANN001
        g = graph if graph is not None else self.graph
        x = torch.cat([self.user_emb, self.item_emb])
        layers = [x]
        for _ in range(self.cfg.layers):
            x = spmm(g, x)
            layers.append(x)
        return split(torch.cat(layers, dim=-1), self.n_users)
