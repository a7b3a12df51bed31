"""AutoCF (Xia et al., "Automated Self-Supervised Learning for Recommendation", WWW 2023) as
SSLRec / RLMRec run it (encoder/models/general_cf/autocf.py, AutoCFTrainer).

Every `fix_steps` training steps (counted from each epoch's first) the augmentation in
`lmmrec.backbones.subgraph` picks seeds by local-global infomax and masks their subgraphs;
the GCN encoder propagates over the kept edges, a graph-transformer decoder over the kept
edges plus random pairs among the masked nodes, and the output is the sum of every layer's.
The masked edges are reconstructed through the training loss, which covers all training
pairs, masked ones included:

- `rec`: −mean u·i over the batch's (user, positive item) pairs (no negatives);
- `ssl`: ssl_weight × (log Σ exp u·u' over all users for the batch's distinct users, plus the
  same for its distinct positive items): uniformity;
- `cross`: log Σ exp u·i over all items for the batch's users (weight 1, as in the source);
- `infomax`: −mean of the seeds' noisy log-scores, on the steps that re-mask.

At evaluation (and when `forward` is given a graph) the encoder propagates over the whole
graph and the decoder attends over its entries.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator
from torch import nn

from lmmrec.backbones.base import BackboneConfig, BaseBackbone, split, xavier_embedding
from lmmrec.backbones.graph import Graph, edge_index, norm_adj, sddmm, spmm
from lmmrec.backbones.subgraph import (
    add_random_nodes,
    decoder_graph,
    encoder_graph,
    gumbel_top_k,
    local_global_scores,
    mask_subgraphs,
)
from lmmrec.losses import log_sum_exp_mean


class AutoCFConfig(BackboneConfig):
    layers: int = Field(2, ge=0)  # GCN encoder layers (gcn_layer)
    gt_layers: int = Field(1, ge=0)  # graph-transformer decoder layers (gt_layer)
    heads: int = Field(4, ge=1)  # attention heads of each decoder layer (head_num)
    seeds: int = Field(100, ge=1)  # seed nodes per masking (seed_num)
    mask_depth: int = Field(2, ge=1)  # hops masked around a seed (mask_depth)
    # random nodes added to the decoder's pool, a share of all nodes (RLMRec's `keep_rate`)
    sample_rate: float = Field(0.2, ge=0.0, le=1.0)
    fix_steps: int = Field(10, ge=1)  # re-mask every N training steps (fix_steps)
    ssl_weight: float = Field(1.0, ge=0.0)  # weight of the uniformity terms (ssl_reg)

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> AutoCFConfig:
        if self.dim % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide dim ({self.dim})")
        return self


class GraphAttention(nn.Module):
    """One decoder layer: multi-head attention of each node over its stored entries in the
    decoder's pattern, logits clamped to ±10, softmax per node and head, no residual or
    output projection. Σ_e softmax_e v_e is computed as (Σ_e w_e v_e) / (Σ_e w_e + 1e-8),
    w = exp(logit), the numerator and denominator in one sparse product per head: the
    source's per-edge division, without any edges x dim tensor."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v = (xavier_embedding(dim, dim) for _ in range(3))

    def forward(self, pattern: Graph, x: torch.Tensor) -> torch.Tensor:
        q, k, v = x @ self.q, x @ self.k, x @ self.v
        ones = x.new_ones(x.shape[0], 1)
        out = []
        for h in torch.arange(x.shape[1]).chunk(self.heads):
            w = sddmm(pattern, q[:, h], k[:, h]).clamp(-10.0, 10.0).exp()
            sums = spmm(pattern.with_values(w), torch.cat([v[:, h], ones], dim=1))
            out.append(sums[:, :-1] / (sums[:, -1:] + 1e-8))
        return torch.cat(out, dim=1)


class AutoCF(BaseBackbone):
    Config = AutoCFConfig

    def __init__(self, n_users, n_items, train, cfg):  # noqa: ANN001
        super().__init__(n_users, n_items, train, cfg)
        self.user_emb = xavier_embedding(n_users, cfg.dim)
        self.item_emb = xavier_embedding(n_items, cfg.dim)
        self.decoder = nn.ModuleList(GraphAttention(cfg.dim, cfg.heads)
                                     for _ in range(cfg.gt_layers))
        self.graph = norm_adj(train)
        self._reset_views()

    def _reset_views(self) -> None:
        self._step = 0  # training steps this epoch (the source's batch index)
        self._masked_at = -1  # the step whose masking `_views` holds
        self._views: tuple[Graph, Graph] | None = None
        self._infomax: torch.Tensor | None = None  # set on a re-masking step, used once

    def on_epoch_start(self, epoch: int) -> None:
        self._reset_views()  # the source re-masks at each epoch's first batch

    def forward(self, graph: Graph | None = None):  # noqa: ANN201
        if graph is not None or not self.training:  # the decoder attends over its entries
            encoder = decoder = graph if graph is not None else self.graph
        else:
            encoder, decoder = self._training_views()
        x = torch.cat([self.user_emb, self.item_emb])
        layers = [x]
        for _ in range(self.cfg.layers):
            x = spmm(encoder, x)
            layers.append(x)
        for gt in self.decoder:
            x = gt(decoder, x)
            layers.append(x)
        return split(torch.stack(layers).sum(0), self.n_users)

    def _training_views(self) -> tuple[Graph, Graph]:
        due = self._step % self.cfg.fix_steps == 0 and self._masked_at != self._step
        if due or self._views is None:
            self._views = self._mask()
            self._masked_at = self._step
        return self._views

    def _mask(self) -> tuple[Graph, Graph]:
        """Seeds by infomax, their subgraphs masked: (encoder graph, decoder pattern)."""
        cfg, g = self.cfg, self.graph
        ego = torch.cat([self.user_emb, self.item_emb])
        scores = local_global_scores(g.with_values(torch.ones_like(g.vals)), ego)
        noisy, seeds = gumbel_top_k(scores, cfg.seeds)
        self._infomax = -noisy.mean()
        rows, cols = edge_index(g)
        keep, masked = mask_subgraphs(rows, cols, seeds, cfg.mask_depth)
        pool = add_random_nodes(masked, g.n, cfg.sample_rate)
        return encoder_graph(g, rows, keep), decoder_graph(rows, cols, keep, pool, g.n)

    def rec_loss(self, batch, user_emb, item_emb):  # noqa: ANN001, ANN201
        users, pos, _ = batch
        return {"rec": -(user_emb[users] * item_emb[pos]).sum(-1).mean()}

    def extra_losses(self, batch, user_emb, item_emb):  # noqa: ANN001, ANN201
        users, pos, _ = batch
        uniform = (log_sum_exp_mean(user_emb[torch.unique(users)], user_emb)
                   + log_sum_exp_mean(item_emb[torch.unique(pos)], item_emb))
        out = {"ssl": self.cfg.ssl_weight * uniform,
               "cross": log_sum_exp_mean(user_emb[users], item_emb)}
        if self._infomax is not None:
            out["infomax"] = self._infomax
            self._infomax = None
        self._step += 1
        return out

