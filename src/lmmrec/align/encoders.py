"""The two sides of the dual encoder.

Text side: an entity's motivation phrase vectors, pooled with the profile weights (weighted
mean, or attention over phrases scaled by the weights), then a 2-layer MLP into the
backbone's dimension. Interaction side: the backbone's embedding plus a softmax mixture of
learnable motivation prototypes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmmrec.text.inputs import SparseRows


def mlp(dim_in: int, dim_out: int, hidden: int | None = None, slope: float = 0.2,
        xavier: bool = False) -> nn.Sequential:
    """Linear, LeakyReLU, Linear; hidden width (in + out) / 2 by default."""
    hidden = hidden or (dim_in + dim_out) // 2
    net = nn.Sequential(nn.Linear(dim_in, hidden), nn.LeakyReLU(slope),
                        nn.Linear(hidden, dim_out))
    if xavier:  # RLMRec's init of its profile MLP (weights only; biases keep torch's)
        for m in net:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
    return net


class TextEncoder(nn.Module):
    """Pooled phrase vectors -> 2-layer MLP -> d."""

    def __init__(self, text_dim: int, dim: int, pooling: str = "mean",
                 hidden: int | None = None) -> None:
        super().__init__()
        if pooling not in ("mean", "attention"):
            raise ValueError(f"pooling must be 'mean' or 'attention', not {pooling!r}")
        self.pooling = pooling
        self.query = nn.Parameter(torch.zeros(text_dim)) if pooling == "attention" else None
        self.mlp = mlp(text_dim, dim, hidden)

    def pool(self, rows: SparseRows, phrases: torch.Tensor) -> torch.Tensor:
        """[n_rows, text_dim]: weighted mean (weights sum to 1 per row), or attention whose
        logits are phrase · query, scaled by the profile weights."""
        val = rows.val
        if self.query is not None:
            logits = phrases[rows.col] @ self.query
            top = torch.full((rows.n_rows,), -1e30, device=val.device).scatter_reduce(
                0, rows.row, logits, reduce="amax")
            val = val * torch.exp(logits - top[rows.row])
        norm = torch.zeros(rows.n_rows, device=val.device).index_add(0, rows.row, val)
        val = val / norm.clamp_min(1e-12)[rows.row]
        out = torch.zeros(rows.n_rows, phrases.shape[1], device=val.device)
        return out.index_add(0, rows.row, val[:, None] * phrases[rows.col])

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.mlp(pooled)


class PrototypeEncoder(nn.Module):
    """h = e + softmax(cos(e, C) / tau) C: the entity as a mixture of K motivations."""

    def __init__(self, dim: int, n_prototypes: int, temp: float, residual: bool = True) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(nn.init.xavier_uniform_(torch.empty(n_prototypes, dim)))
        self.temp, self.residual = temp, residual

    def mixture(self, emb: torch.Tensor) -> torch.Tensor:
        w = (F.normalize(emb, dim=-1) @ F.normalize(self.prototypes, dim=-1).T) / self.temp
        return w.softmax(dim=-1) @ self.prototypes

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        m = self.mixture(emb)
        return emb + m if self.residual else m
