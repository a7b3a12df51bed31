"""Aligners: what the wrapper adds to a backbone. Each sees only the backbone's user and
item embeddings (and, for the EMA teacher, a frozen copy of the backbone), never its
internals, so every backbone gets them unchanged.

- LMMRec: dual encoder + MCS (cross-modal InfoNCE and review-level coordination) + ITCM
  (EMA teacher, soft correspondence targets, two-way KL) + motivation prototypes.
- RLMRec-Con: MLP(profile) ↔ CF embedding InfoNCE (Ren et al. 2024, as their code).
- RLMRec-Gen: reconstruct the profile embedding from masked entities' CF embeddings.
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lmmrec.align.encoders import PrototypeEncoder, TextEncoder, mlp
from lmmrec.align.inputs import TextInputs, sample_review_pairs
from lmmrec.align.losses import (
    correspondence_kl,
    cosine_logits,
    ema_update,
    info_nce,
    nce_and_kl_from_logits,
    soft_targets,
)
from lmmrec.config import Strict

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class AlignConfig(Strict):
    # Align on every k-th training step (counted over the whole run), its losses weighted by
    # k so the alignment gradient keeps its scale (lazy regularisation, as StyleGAN2 does
    # with R1). The aligner's step cost is nearly fixed while a backbone's step is cheap on
    # small graphs; this bounds the overhead. The baselines keep 1, their published setting.
    every: int = Field(1, ge=1)
    # Use the motivations of this share of the training reviews only (a seeded subsample
    # keeping every user and item where possible, lmmrec.llm.budget): what a smaller
    # extraction budget would have given.
    review_share: float = Field(1.0, gt=0, le=1, description=(
        "use the motivations of this share of the training reviews only (a seeded "
        "subsample keeping every user and item where possible)"))
    review_seed: int = Field(0, description="seed of the align.review_share subsample")


class LMMRecConfig(AlignConfig):
    # align on every k-th training step; 8: chosen on validation
    # (benchmarks/results/tune-cost.md): as good as every step, at under 2x the base's time
    # per epoch
    every: int = Field(8, ge=1)
    # phrases: the LLM's motivations; summary: one profile sentence per entity (the no-CoT
    # ablation); reviews: each training review's raw text embedded, no LLM and no
    # --motivations needed (the no-extraction ablation); phrases+reviews: both
    text_input: Literal["phrases", "summary", "reviews", "phrases+reviews"] = "phrases"
    pooling: Literal["mean", "attention"] = "mean"  # how a profile pools its phrases
    hidden: int | None = Field(None, ge=1)  # text encoder hidden width (None: none)
    sample: int = Field(1024, ge=2)  # entities per type and step that the alignment sees
    mcs: bool = True  # cross-modal InfoNCE between text and CF embeddings
    mcs_weight: float = Field(0.05, ge=0)  # weight of the MCS loss
    mcs_temp: float = Field(0.2, gt=0)  # temperature of the MCS loss
    coordination: bool = True  # pair two reviews of one entity (review coordination)
    coord_weight: float = Field(0.01, ge=0)  # weight of the coordination loss
    coord_temp: float = Field(0.2, gt=0)  # temperature of the coordination loss
    # entities per type and step whose review pairs the coordination sees (a subsample of
    # the alignment's: it is an auxiliary term, and its rows dominate the encoder's cost)
    coord_sample: int = Field(128, ge=2)
    itcm: bool = True  # EMA teacher with soft correspondence targets (ITCM)
    itcm_weight: float = Field(0.05, ge=0)  # weight of the ITCM loss
    itcm_temp: float = Field(0.2, gt=0)  # temperature of the ITCM loss
    momentum: float = Field(0.995, ge=0, le=1)  # EMA momentum of the teacher
    onehot_mix: float = Field(0.4, ge=0, le=1)  # share of one-hot in the soft targets
    teacher_backbone: bool = True  # EMA copy of the backbone too
    # How often the EMA teacher re-embeds every user and item (backbone, text and prototype
    # encoders): every step (exact, extra forwards each step) or once an epoch (its weights
    # still follow the EMA every step; steps index the epoch's teacher outputs).
    teacher_refresh: Literal["step", "epoch"] = "epoch"
    prototypes: bool = True  # motivation prototypes on the text side
    n_prototypes: int = Field(32, ge=1)  # number of motivation prototypes
    proto_temp: float = Field(0.2, gt=0)  # temperature of prototype assignment
    proto_residual: bool = True  # add the prototype mix to the text vector
    fusion: float = Field(0.0, ge=0)  # text-side weight added to scores at evaluation
    cold_start: bool = True  # fill a user or item without CF signal from its text side


class RLMRecConConfig(AlignConfig):
    weight: float = Field(0.01, ge=0)  # weight of the contrastive alignment loss
    temp: float = Field(0.2, gt=0)  # its temperature
    text_input: Literal["phrases", "summary"] = "summary"  # profile phrases or summary


class RLMRecGenConfig(AlignConfig):
    weight: float = Field(0.01, ge=0)  # weight of the reconstruction loss
    temp: float = Field(0.2, gt=0)  # its temperature
    mask_ratio: float = Field(0.1, gt=0, le=1)  # share of entities masked
    text_input: Literal["phrases", "summary"] = "summary"  # profile phrases or summary


def _unique(x: torch.Tensor, limit: int) -> torch.Tensor:
    return _subsample(torch.unique(x), limit)


def _subsample(x: torch.Tensor, limit: int) -> torch.Tensor:
    if len(x) > limit:  # torch's seeded RNG: resumable
        x = x[torch.randperm(len(x), device=x.device)[:limit]]
    return x


def _entity_vectors(inputs: TextInputs, pooled: str) -> tuple[torch.Tensor, torch.Tensor]:
    if pooled == "summary":
        if inputs.summary_user is None or inputs.summary_item is None:
            raise ValueError("text_input 'summary' needs profile-summary embeddings")
        return inputs.summary_user, inputs.summary_item
    enc = TextEncoder(inputs.text_dim, 1)
    with torch.no_grad():
        return enc.pool(inputs.user_rows, inputs.phrases), enc.pool(inputs.item_rows,
                                                                     inputs.phrases)


class Aligner(nn.Module):
    """Base: alignment losses for a batch, and the embeddings used to score.

    ``Config`` is the aligner's settings model (``align.*`` keys); ``create`` builds it for
    a run from the text inputs, the backbone and the training degrees (users, items).
    """

    Config: ClassVar[type[AlignConfig]] = AlignConfig

    def __init__(self, inputs: TextInputs, dim: int, every: int = 1) -> None:
        super().__init__()
        self.inputs, self.dim, self.every = inputs, dim, every

    @classmethod
    def create(cls, inputs: TextInputs, backbone: nn.Module, cfg: Any,
               train_degree: tuple[np.ndarray, np.ndarray]) -> Aligner:
        return cls(inputs, backbone.dim, cfg)  # type: ignore[call-arg]

    def losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor,
               backbone: nn.Module) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Text-side vectors of every user and item in the backbone's space."""
        raise NotImplementedError

    def score_embeddings(self, user_emb: torch.Tensor, item_emb: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        return user_emb, item_emb

    def on_epoch_start(self, epoch: int) -> None:
        return None

    def on_step(self, backbone: nn.Module) -> None:
        """Called on every training step, before the losses (aligned step or not)."""
        return None

    def _apply(self, fn, recurse=True):  # noqa: ANN001
        out = super()._apply(fn, recurse)
        self.inputs = self.inputs.to(fn(torch.zeros(1)).device)
        return out


class LMMRecAligner(Aligner):
    Config = LMMRecConfig

    @classmethod
    def create(cls, inputs: TextInputs, backbone: nn.Module, cfg: Any,
               train_degree: tuple[np.ndarray, np.ndarray]) -> Aligner:
        return cls(inputs, backbone.dim, cfg, backbone, train_degree)

    def __init__(self, inputs: TextInputs, dim: int, cfg: LMMRecConfig,
                 backbone: nn.Module, train_degree: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__(inputs, dim, cfg.every)
        self.cfg = cfg
        pooling = "mean" if cfg.text_input == "summary" else cfg.pooling
        self.text = TextEncoder(inputs.text_dim, dim, pooling, cfg.hidden)
        self.proto = (PrototypeEncoder(dim, cfg.n_prototypes, cfg.proto_temp,
                                       cfg.proto_residual) if cfg.prototypes else nn.Identity())
        self._fixed = cfg.text_input == "summary" or pooling == "mean"
        if self._fixed:
            u, i = _entity_vectors(inputs, cfg.text_input)
            self.register_buffer("pooled_user", u, persistent=False)
            self.register_buffer("pooled_item", i, persistent=False)
        self.register_buffer("cold_user", torch.from_numpy(train_degree[0] == 0),
                             persistent=False)
        self.register_buffer("cold_item", torch.from_numpy(train_degree[1] == 0),
                             persistent=False)
        if cfg.itcm:
            self.teacher_text = _frozen_copy(self.text)
            self.teacher_proto = _frozen_copy(self.proto)
            self.teacher_backbone = _frozen_copy(backbone) if cfg.teacher_backbone else None
        # the teacher's (text, interaction) outputs for all users and for all items
        self._teacher_out: tuple[tuple[torch.Tensor, torch.Tensor],
                                 tuple[torch.Tensor, torch.Tensor]] | None = None

    # -- text side ---------------------------------------------------------------------------

    def _pooled(self, enc: TextEncoder) -> tuple[torch.Tensor, torch.Tensor]:
        if self._fixed:
            return self.pooled_user, self.pooled_item
        return (enc.pool(self.inputs.user_rows, self.inputs.phrases),
                enc.pool(self.inputs.item_rows, self.inputs.phrases))

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        pu, pi = self._pooled(self.text)
        return self.text(pu), self.text(pi)

    # -- losses ------------------------------------------------------------------------------

    def losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor,
               backbone: nn.Module) -> dict[str, torch.Tensor]:
        cfg, inp = self.cfg, self.inputs
        users, pos, neg = batch
        u = _unique(users, cfg.sample)
        u = u[inp.user_has_text[u]]
        i = _unique(torch.cat([pos, neg]), cfg.sample)
        i = i[inp.item_has_text[i]]
        out: dict[str, torch.Tensor] = {}
        if cfg.coordination and cfg.text_input != "summary":
            out["coord"] = cfg.coord_weight * self._coordination(
                _subsample(u, cfg.coord_sample), _subsample(i, cfg.coord_sample))
        if not ((cfg.mcs or cfg.itcm) and len(u) > 1 and len(i) > 1):
            return out
        # Users and items go through each encoder in one call (rows are independent).
        pu, pi = self._pooled(self.text)
        zu, zi = _halves(self.text(torch.cat([pu[u], pi[i]])), len(u))
        hu, hi = _halves(self.proto(torch.cat([user_emb[u], item_emb[i]])), len(u))
        targets = self._teacher_targets(u, i, user_emb, item_emb, backbone) if cfg.itcm else None
        if cfg.mcs and cfg.itcm and cfg.mcs_temp == cfg.itcm_temp:
            nce_kl = [nce_and_kl_from_logits(cosine_logits(z, h, cfg.mcs_temp), *t)
                      for z, h, t in ((zu, hu, targets[0]), (zi, hi, targets[1]))]
            out["mcs"] = cfg.mcs_weight * (nce_kl[0][0] + nce_kl[1][0])
            out["itcm"] = cfg.itcm_weight * (nce_kl[0][1] + nce_kl[1][1])
            return out
        if cfg.mcs:
            out["mcs"] = cfg.mcs_weight * (info_nce(zu, hu, cfg.mcs_temp)
                                           + info_nce(zi, hi, cfg.mcs_temp))
        if targets is not None:
            out["itcm"] = cfg.itcm_weight * (
                correspondence_kl(zu, hu, *targets[0], cfg.itcm_temp)
                + correspondence_kl(zi, hi, *targets[1], cfg.itcm_temp))
        return out

    def _coordination(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Motivation vectors from two different reviews of one entity are positives."""
        inp = self.inputs
        pairs = []
        for csr, vecs, ents in ((inp.user_reviews, inp.review_user_vec, u),
                                (inp.item_reviews, inp.review_item_vec, i)):
            _, a, b = sample_review_pairs(csr, ents.cpu().numpy())
            if len(a) >= 2:
                ab = torch.from_numpy(np.concatenate([a, b])).to(vecs.device)
                pairs.append(vecs[ab])
        if not pairs:
            return inp.phrases.new_zeros(())
        z = self.text(torch.cat(pairs))  # both entity types in one call
        loss, at = inp.phrases.new_zeros(()), 0
        for x in pairs:
            za, zb = _halves(z[at:at + len(x)], len(x) // 2)
            loss = loss + info_nce(za, zb, self.cfg.coord_temp)
            at += len(x)
        return loss

    @torch.no_grad()
    def on_step(self, backbone: nn.Module) -> None:
        """The EMA teacher follows the student on every optimiser step, not only on the
        aligned ones (`every`): `momentum` is per training step, whatever `every` is."""
        if not self.cfg.itcm:
            return
        ema_update(self.teacher_text, self.text, self.cfg.momentum)
        ema_update(self.teacher_proto, self.proto, self.cfg.momentum)
        if self.teacher_backbone is not None:
            ema_update(self.teacher_backbone, backbone, self.cfg.momentum)

    def _teacher_targets(self, u, i, user_emb, item_emb, backbone):  # noqa: ANN001
        """The EMA teacher's soft correspondence targets for the sampled users and items."""
        cfg = self.cfg
        with torch.no_grad():
            if self.teacher_backbone is not None and cfg.teacher_refresh == "epoch":
                if self._teacher_out is None:
                    self._teacher_out = self._teacher_outputs()
                (tzu, thu), (tzi, thi) = self._teacher_out
                tz, th = (tzu[u], tzi[i]), (thu[u], thi[i])
            else:  # exact, per step: only the batch's rows through the teacher encoders
                if self.teacher_backbone is not None:
                    self.teacher_backbone.eval()
                    tu_emb, ti_emb = self.teacher_backbone(None)
                else:  # the student's own interaction side
                    tu_emb, ti_emb = user_emb.detach(), item_emb.detach()
                pu, pi = self._pooled(self.teacher_text)
                tz, th = self._teacher_sides(pu[u], pi[i], tu_emb[u], ti_emb[i])
            return (soft_targets(tz[0], th[0], cfg.itcm_temp, cfg.onehot_mix),
                    soft_targets(tz[1], th[1], cfg.itcm_temp, cfg.onehot_mix))

    @torch.no_grad()
    def _teacher_outputs(self):  # noqa: ANN202
        """The teacher's text and interaction sides of every user and item. Steps index these
        instead of re-running the teacher on each batch: one pass an epoch over all entities
        costs less than a pass a step over the batch's."""
        assert self.teacher_backbone is not None
        self.teacher_backbone.eval()
        tu_emb, ti_emb = self.teacher_backbone(None)
        pu, pi = self._pooled(self.teacher_text)
        tz, th = self._teacher_sides(pu, pi, tu_emb, ti_emb)
        return (tz[0], th[0]), (tz[1], th[1])

    def _teacher_sides(self, pu, pi, eu, ei):  # noqa: ANN001, ANN202
        """Teacher text and interaction sides of the given user rows then item rows, each
        encoder called once for both entity types."""
        tz = _halves(self.teacher_text(torch.cat([pu, pi])), len(pu))
        th = _halves(self.teacher_proto(torch.cat([eu, ei])), len(pu))
        return tz, th

    def on_epoch_start(self, epoch: int) -> None:
        self._teacher_out = None  # re-embed with the EMA teacher at the next step

    # -- scoring -----------------------------------------------------------------------------

    def score_embeddings(self, user_emb: torch.Tensor, item_emb: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        if not (cfg.cold_start or cfg.fusion > 0):
            return user_emb, item_emb
        zu, zi = self.text_embeddings()
        if cfg.cold_start:
            user_emb = _fill_cold(user_emb, zu, self.cold_user & self.inputs.user_has_text)
            item_emb = _fill_cold(item_emb, zi, self.cold_item & self.inputs.item_has_text)
        if cfg.fusion > 0:
            # The alignment losses are cosine-based, so the text side's norm is arbitrary
            # (and small under L2): score with unit text vectors scaled to the interaction
            # side's typical norm, so `fusion` weighs text against interactions.
            s = math.sqrt(cfg.fusion)
            tu = F.normalize(zu, dim=1) * user_emb.norm(dim=1).mean()
            ti = F.normalize(zi, dim=1) * item_emb.norm(dim=1).mean()
            user_emb = torch.cat([user_emb, s * tu], dim=1)
            item_emb = torch.cat([item_emb, s * ti], dim=1)
        return user_emb, item_emb


def _halves(x: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return x[:n], x[n:]


def _fill_cold(emb: torch.Tensor, text: torch.Tensor, cold: torch.Tensor) -> torch.Tensor:
    """Entities without training interactions take their text-side vector, scaled to the
    typical norm of the warm ones."""
    if not bool(cold.any()):
        return emb
    warm_norm = emb[~cold].norm(dim=1).mean()
    t = F.normalize(text[cold], dim=1) * warm_norm
    emb = emb.clone()
    emb[cold] = t
    return emb


def _frozen_copy(module: nn.Module) -> nn.Module:
    twin = copy.deepcopy(module)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin


class RLMRecConAligner(Aligner):
    """RLMRec-Con: kd = Σ_{users, pos, neg} InfoNCE(cf, MLP(profile)) / B, the users' against
    all user profiles, the items' against the batch's item profiles (HKUDS/RLMRec)."""

    Config = RLMRecConConfig

    def __init__(self, inputs: TextInputs, dim: int, cfg: RLMRecConConfig) -> None:
        super().__init__(inputs, dim, cfg.every)
        self.cfg = cfg
        u, i = _entity_vectors(inputs, cfg.text_input)
        self.register_buffer("prf_user", u, persistent=False)
        self.register_buffer("prf_item", i, persistent=False)
        self.mlp = mlp(inputs.text_dim, dim, slope=0.01, xavier=True)  # RLMRec's MLP

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mlp(self.prf_user), self.mlp(self.prf_item)

    def losses(self, batch, user_emb, item_emb, backbone):  # noqa: ANN001
        users, pos, neg = batch
        pu, pi = self.text_embeddings()
        t = self.cfg.temp
        # as RLMRec's code: users against all profiles, items against the batch's own
        kd = (_infonce_all(user_emb[users], pu[users], pu, t)
              + _infonce_all(item_emb[pos], pi[pos], pi[pos], t)
              + _infonce_all(item_emb[neg], pi[neg], pi[neg], t)) / len(users)
        return {"rlmrec_con": self.cfg.weight * kd}


def _infonce_all(a: torch.Tensor, b: torch.Tensor, all_b: torch.Tensor, temp: float
                 ) -> torch.Tensor:
    """Σ_rows −log softmax(cos(a, all_b)/t) at cos(a, b)/t (RLMRec's cal_infonce_loss)."""
    a, b, all_b = (F.normalize(x, dim=-1, eps=1e-8) for x in (a, b, all_b))
    pos = (a * b).sum(-1) / temp
    return (torch.logsumexp(a @ all_b.T / temp, dim=-1) - pos).sum()


class RLMRecGenAligner(Aligner):
    """RLMRec-Gen: masked entities' CF embeddings -> MLP -> their profile embedding.

    RLMRec masks nodes inside the GNN; a backbone-agnostic wrapper cannot, so the mask drops
    the sampled entities' CF embedding to a learnable mask token mixed with its
    neighbourhood-free input before reconstruction (documented deviation)."""

    Config = RLMRecGenConfig

    def __init__(self, inputs: TextInputs, dim: int, cfg: RLMRecGenConfig) -> None:
        super().__init__(inputs, dim, cfg.every)
        self.cfg = cfg
        u, i = _entity_vectors(inputs, cfg.text_input)
        self.register_buffer("prf_user", u, persistent=False)
        self.register_buffer("prf_item", i, persistent=False)
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
            out = out + info_nce(self.decoder(x), prf[picked], self.cfg.temp, symmetric=False)
        return {"rlmrec_gen": self.cfg.weight * out}
