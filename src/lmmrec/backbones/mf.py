"""Matrix factorisation (MF-BPR): free user and item embeddings, no graph."""

from __future__ import annotations

from lmmrec.backbones.base import BaseBackbone, xavier_embedding


class MF(BaseBackbone):
    def __init__(self, n_users, n_items, train, cfg):  # noqa: ANN001
        super().__init__(n_users, n_items, train, cfg)
        self.user_emb = xavier_embedding(n_users, cfg.dim)
        self.item_emb = xavier_embedding(n_items, cfg.dim)

    def forward(self, graph=None):  # noqa: ANN001
        return self.user_emb, self.item_emb
