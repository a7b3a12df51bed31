"""The RLMRec baselines (Ren et al. 2024, as their code HKUDS/RLMRec):

- RLMRec-Con: MLP(profile) <-> CF embedding InfoNCE;
- RLMRec-Gen: reconstruct the profile embedding from masked entities' CF embeddings.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from lmmrec.align.aligners.base import AlignConfig, Aligner, entity_vectors
from lmmrec.align.encoders import mlp
from lmmrec.backbones.base import Batch
from lmmrec.losses import info_nce_mean, info_nce_sum
from lmmrec.text.inputs import TextInputs


class RLMRecConConfig(AlignConfig):
    weight: float = Field(0.01, ge=0)  # weight of the contrastive alignment loss
    temp: float = Field(0.2, gt=0)  # its temperature
    text_input: Literal["phrases", "summary"] = "summary"  # profile phrases or summary


class RLMRecGenConfig(AlignConfig):
    weight: float = Field(0.01, ge=0)  # weight of the reconstruction loss
    temp: float = Field(0.2, gt=0)  # its temperature
    mask_ratio: float = Field(0.1, gt=0, le=1)  # share of entities masked
    text_input: Literal["phrases", "summary"] = "summary"  # profile phrases or summary


class _ProfileAligner(Aligner):
    """RLMRec's two methods: one fixed profile vector per user and item (`prf_user`,
    `prf_item`: the summary's embedding or the pooled phrases)."""

    def __init__(self, inputs: TextInputs, dim: int, cfg: RLMRecConConfig | RLMRecGenConfig
                 ) -> None:
        super().__init__(inputs, dim, cfg.every)
        self.cfg = cfg
        u, i = entity_vectors(inputs, cfg.text_input)
        self.register_buffer("prf_user", u, persistent=False)
        self.register_buffer("prf_item", i, persistent=False)


class RLMRecConAligner(_ProfileAligner):
    """RLMRec-Con: kd = Σ_{users, pos, neg} InfoNCE(cf, MLP(profile)) / B, the users' against
    all user profiles, the items' against the batch's item profiles (HKUDS/RLMRec)."""

    Config = RLMRecConConfig

    def __init__(self, inputs: TextInputs, dim: int, cfg: RLMRecConConfig) -> None:
        super().__init__(inputs, dim, cfg)
        self.mlp = mlp(inputs.text_dim, dim, slope=0.01, xavier=True)  # RLMRec's MLP

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mlp(self.prf_user), self.mlp(self.prf_item)

    def losses(self, batch, user_emb, item_emb, backbone):  # noqa: ANN001
        pu, pi = self.text_embeddings()
        kd = batch_info_nce(batch, user_emb, item_emb, pu, pi, self.cfg.temp)
        return {"rlmrec_con": self.cfg.weight * kd}


def batch_info_nce(batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor,
                   text_user: torch.Tensor, text_item: torch.Tensor, temp: float
                   ) -> torch.Tensor:
    """Σ_{users, pos, neg} InfoNCE(embedding, its text vector) / B, as RLMRec's code: users
    against all users' text vectors, items against the batch's own (IRLLRec reuses it)."""
    users, pos, neg = batch
    return (info_nce_sum(user_emb[users], text_user[users], text_user, temp)
            + info_nce_sum(item_emb[pos], text_item[pos], text_item[pos], temp)
            + info_nce_sum(item_emb[neg], text_item[neg], text_item[neg], temp)) / len(users)


class RLMRecGenAligner(_ProfileAligner):
    """RLMRec-Gen: masked entities' CF embeddings -> MLP -> their profile embedding.

    RLMRec masks nodes inside the GNN; a backbone-agnostic wrapper cannot, so the mask drops
    the sampled entities' CF embedding to a learnable mask token mixed with its
    neighbourhood-free input before reconstruction (documented deviation)."""

    Config = RLMRecGenConfig

    def __init__(self, inputs: TextInputs, dim: int, cfg: RLMRecGenConfig) -> None:
        super().__init__(inputs, dim, cfg)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.decoder = mlp(dim, inputs.text_dim)

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.prf_user, self.prf_item

    def losses(self, batch, user_emb, item_emb, backbone):  # noqa: ANN001
        users, pos, _ = batch
        out = user_emb.new_zeros(())
        for ids, emb, prf in ((torch.unique(users), user_emb, self.prf_user),
                              (torch.unique(pos), item_emb, self.prf_item)):
            n = max(2, int(len(ids) * self.cfg.mask_ratio))
            picked = ids[torch.randperm(len(ids), device=ids.device)[:n]]
            x = 0.5 * (emb[picked] + self.mask_token)
            out = out + info_nce_mean(self.decoder(x), prf[picked], self.cfg.temp, symmetric=False)
        return {"rlmrec_gen": self.cfg.weight * out}
