"""IRLLRec (Wang et al., SIGIR 2025; code wangyu0627/IRLLRec, `lightgcn_int.py`): RLMRec-Con
plus LLM intents aligned with intent-aware graph embeddings.

Its terms, each weighted as its configs publish (Amazon):
- kd: RLMRec-Con's InfoNCE between CF embeddings and MLP(profile) (inherited);
- intent: the same InfoNCE between intent-aware graph embeddings and MLP(intents), a second
  text tower. An entity's intent embedding is softmax(E·W)·Wᵀ with W a d x K matrix of
  learnable intent prototypes (users and items each have theirs); each training edge is
  weighted (1 + cos(its ends' intent embeddings)) / 2, and an entity's intent-aware
  embedding is the weighted mean of its neighbours' embeddings;
- noise: InfoNCE (temperature 1) between noised views x + x·ε (ε ~ N(0, 1)) of the intent
  tower's output and of the CF embeddings;
- teacher: an EMA copy of the intent tower (momentum per step) gives soft targets over the
  embedding's dimensions: 0.4 · noise + 0.6 · cross-entropy, as their code mixes them.

Differences from their code, each because the aligner sees only the backbone's outputs:
- The intent-aware aggregation is a side branch in IRLLRec (it feeds only the intent loss;
  scoring uses the plain propagation), so the aligner runs it itself on the training edges
  rather than inside the backbone: no hook in the Backbone protocol, every backbone gets it.
  It aggregates the backbone's output embeddings once, where IRLLRec averages one
  aggregation per LightGCN layer, each over that layer's input.
- The noise and teacher terms look at the batch's users and items (at most `sample` of
  each type), not at every user and item: their InfoNCE is quadratic in its rows.
- The teacher starts as a copy of the intent tower (their `copy_params`; their code then
  re-initialises both towers independently).
- Intents are our motivation phrases, pooled per entity with its profile weights (their
  intent-extraction script is unreleased); profiles are as for RLMRec-Con.
"""

from __future__ import annotations

import copy
from typing import Any

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lmmrec.align.aligners.base import Aligner, entity_vectors, unique_sample
from lmmrec.align.aligners.rlmrec import RLMRecConAligner, RLMRecConConfig, batch_info_nce
from lmmrec.align.encoders import mlp
from lmmrec.backbones.base import Backbone, Batch
from lmmrec.losses import ema_update, info_nce_mean, soft_cross_entropy
from lmmrec.text.inputs import TextInputs


class IRLLRecConfig(RLMRecConConfig):
    """weight, temp, text_input: the kd term, as RLMRec-Con (kd_weight 1e-2, temperature
    0.2); the others' defaults are IRLLRec's Amazon values (lightgcn_int.yml, names in
    brackets)."""

    # weight of the intent InfoNCE (kd_int_weight: Amazon 0.02, Yelp 0.01)
    intent_weight: float = Field(0.02, ge=0)
    intent_temp: float = Field(0.2, gt=0)  # temperature of the intent InfoNCE (kd_int_temperature)
    n_intents: int = Field(128, ge=1)  # learnable intent prototypes (intent_num)
    noise_weight: float = Field(1e-7, ge=0)  # weight of the noised-view InfoNCE (kd_int_weight_2)
    teacher_weight: float = Field(1e-7, ge=0)  # weight of the EMA teacher term (kd_int_weight_3)
    momentum: float = Field(0.999, ge=0, le=1)  # EMA momentum of the teacher intent tower
    sample: int = Field(1024, ge=2)  # users and items per step in the noise and teacher terms


def intent_embeddings(emb: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """softmax(E·W)·Wᵀ: each row as a mixture of the d x K prototypes' columns."""
    return torch.softmax(emb @ prototypes, dim=1) @ prototypes.T


class IntentGraph(nn.Module):
    """The training edges (user, item), reweighted by how close their ends' intents are."""

    def __init__(self, train: sp.csr_matrix, dim: int, n_intents: int) -> None:
        super().__init__()
        coo = train.tocoo()
        self.register_buffer("edge_user", torch.from_numpy(coo.row.astype("int64")),
                             persistent=False)
        self.register_buffer("edge_item", torch.from_numpy(coo.col.astype("int64")),
                             persistent=False)
        self.user_intent = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, n_intents)))
        self.item_intent = nn.Parameter(nn.init.xavier_uniform_(torch.empty(dim, n_intents)))

    def edge_weights(self, user_emb: torch.Tensor, item_emb: torch.Tensor) -> torch.Tensor:
        """(1 + cos(intent of the user, intent of the item)) / 2 per edge, in [0, 1]."""
        iu = F.normalize(intent_embeddings(user_emb, self.user_intent), dim=1)
        ii = F.normalize(intent_embeddings(item_emb, self.item_intent), dim=1)
        return ((iu[self.edge_user] * ii[self.edge_item]).sum(1) + 1) / 2

    def forward(self, user_emb: torch.Tensor, item_emb: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each entity's neighbours' embeddings, averaged with the edge weights (row-
        normalised; an entity without edges gets zeros)."""
        w = self.edge_weights(user_emb, item_emb)
        u, i = self.edge_user, self.edge_item
        return (_weighted_mean(u, w, item_emb[i], len(user_emb)),
                _weighted_mean(i, w, user_emb[u], len(item_emb)))


def _weighted_mean(rows: torch.Tensor, w: torch.Tensor, x: torch.Tensor, n: int
                   ) -> torch.Tensor:
    total = x.new_zeros(n).index_add(0, rows, w)
    out = x.new_zeros(n, x.shape[1]).index_add(0, rows, w[:, None] * x)
    return out / total.clamp_min(1e-12)[:, None]


class IRLLRecAligner(RLMRecConAligner):
    """IRLLRec as a wrapper around any backbone (see the module's docstring)."""

    Config = IRLLRecConfig
    cfg: IRLLRecConfig

    @classmethod
    def create(cls, inputs: TextInputs, backbone: Backbone, cfg: Any, train: sp.csr_matrix
               ) -> Aligner:
        return cls(inputs, backbone.dim, cfg, train)

    def __init__(self, inputs: TextInputs, dim: int, cfg: IRLLRecConfig,
                 train: sp.csr_matrix) -> None:
        super().__init__(inputs, dim, cfg)
        u, i = entity_vectors(inputs, "phrases")  # the intents: pooled motivation phrases
        self.register_buffer("int_user", u, persistent=False)
        self.register_buffer("int_item", i, persistent=False)
        self.intent_mlp = mlp(inputs.text_dim, dim, slope=0.01, xavier=True)
        self.teacher = copy.deepcopy(self.intent_mlp).requires_grad_(False)
        self.graph = IntentGraph(train, dim, cfg.n_intents)

    def intent_text(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The intent tower's vectors of every user and item."""
        return self.intent_mlp(self.int_user), self.intent_mlp(self.int_item)

    def losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor,
               backbone: Backbone) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        out = super().losses(batch, user_emb, item_emb, backbone)  # kd, as RLMRec-Con
        tu, ti = self.intent_text()
        gu, gi = self.graph(user_emb, item_emb)
        out["irllrec_intent"] = cfg.intent_weight * batch_info_nce(
            batch, gu, gi, tu, ti, cfg.intent_temp)
        if cfg.noise_weight > 0 or cfg.teacher_weight > 0:
            out.update(self._noise_and_teacher(batch, user_emb, item_emb, tu, ti))
        return out

    def _noise_and_teacher(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor,
                           tu: torch.Tensor, ti: torch.Tensor) -> dict[str, torch.Tensor]:
        """Noised intent-text and CF views matched by InfoNCE, and the teacher's soft
        targets, over the batch's users and items in one matrix (as theirs: both types)."""
        cfg = self.cfg
        users, pos, neg = batch
        u = unique_sample(users, cfg.sample)
        i = unique_sample(torch.cat([pos, neg]), cfg.sample)
        text = torch.cat([tu[u], ti[i]])
        cf = torch.cat([user_emb[u], item_emb[i]])
        noise = cfg.noise_weight * info_nce_mean(text + text * torch.randn_like(text),
                                                 cf + cf * torch.randn_like(cf), 1.0,
                                                 symmetric=False)
        with torch.no_grad():
            target = self.teacher(torch.cat([self.int_user[u], self.int_item[i]]))
        teacher = cfg.teacher_weight * (0.4 * noise + 0.6 * soft_cross_entropy(text, target))
        return {"irllrec_noise": noise, "irllrec_teacher": teacher}

    @torch.no_grad()
    def on_step(self, backbone: Backbone) -> None:
        """The teacher follows the intent tower on every optimiser step (momentum per step)."""
        ema_update(self.teacher, self.intent_mlp, self.cfg.momentum)
