"""LightGCN (He et al. 2020) as RLMRec runs it: layer outputs summed, edge dropout in training.

`combine: mean` with `keep_rate: 1.0` and dim 64 is the original paper's variant.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from lmmrec.backbones.base import BackboneConfig, BaseBackbone, split, xavier_embedding
from lmmrec.backbones.graph import Graph, norm_adj, spmm


class LightGCNConfig(BackboneConfig):
    layers: int = Field(3, ge=0)  # graph propagation layers
    combine: Literal["sum", "mean"] = "sum"  # how layer outputs combine
    keep_rate: float = Field(0.8, gt=0.0, le=1.0)  # edges kept per step (dropout)


class LightGCN(BaseBackbone):
    Config = LightGCNConfig
    self_loop = False

    def __init__(self, n_users, n_items, train, cfg):  # noqa: ANN001
        super().__init__(n_users, n_items, train, cfg)
        self.user_emb = xavier_embedding(n_users, cfg.dim)
        self.item_emb = xavier_embedding(n_items, cfg.dim)
        self.graph = norm_adj(train, self_loop=self.self_loop)

    def train_graph(self) -> Graph:
        keep = getattr(self.cfg, "keep_rate", 1.0)
        return self.graph.edge_dropout(keep) if self.training else self.graph

    def propagate(self, graph: Graph, perturb=None) -> torch.Tensor:  # noqa: ANN001
        """All layer outputs combined; `perturb` (SimGCL) is applied after each layer."""
        x = torch.cat([self.user_emb, self.item_emb])
        layers = [x]
        for _ in range(self.cfg.layers):
            x = spmm(graph, x)
            if perturb is not None:
                x = perturb(x)
            layers.append(x)
        out = torch.stack(layers).sum(0)
        return out / len(layers) if self.cfg.combine == "mean" else out

    def forward(self, graph: Graph | None = None):  # noqa: ANN001
        return split(self.propagate(graph if graph is not None else self.train_graph()),
                     self.n_users)
