"""LMMRec: dual encoder + MCS (cross-modal InfoNCE and review-level coordination) + ITCM
(EMA teacher, soft correspondence targets, two-way KL) + motivation prototypes."""

from __future__ import annotations

import copy
import math
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lmmrec.align.aligners.base import (
    AlignConfig,
    Aligner,
    degrees,
    entity_vectors,
    subsample,
    unique_sample,
)
from lmmrec.align.encoders import PrototypeEncoder, TextEncoder
from lmmrec.backbones.base import Backbone, Batch
from lmmrec.losses import (
    cosine_logits,
    ema_update,
    info_nce_fused,
    info_nce_mean,
    nce_and_kl,
    soft_target_sums,
)
from lmmrec.text.inputs import TextInputs, sample_review_pairs


class LMMRecConfig(AlignConfig):
    # align on every k-th training step; 8: chosen on validation
    # (benchmarks/results/tune-cost.md): as good as every step, at under 2x the base's time
    # per epoch
    every: int = Field(8, ge=1)
    # phrases: the LLM's motivations; summary: one profile sentence per entity (the no-CoT
    # ablation); reviews: each training review's raw text embedded, no LLM and no
    # --motivations needed (the no-extraction ablation); phrases+reviews: both; canonical:
    # each phrase replaced by its cluster of the vocabulary (lmmrec.text.canonical);
    # phrase-reviews: each review's phrases joined into one text, used as raw reviews are;
    # phrases-neg: the phrases, each user's negative motivations pooled against it
    text_input: Literal["phrases", "summary", "reviews", "phrases+reviews",
                        "canonical", "phrase-reviews", "phrases-neg"] = "phrases"
    # text_input=phrases-neg: a user's neg phrases weigh this much against its pos phrases
    neg_weight: float = Field(0.5, ge=0)
    canonical_k: int = Field(256, ge=2)  # canonical motivations (text_input=canonical)
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
    # random: xavier; canonical: the n_prototypes most used clusters of the phrase vocabulary
    # (lmmrec.text.canonical), through the text encoder, so each starts as a motivation
    proto_init: Literal["random", "canonical"] = "random"
    fusion: float = Field(0.0, ge=0)  # text-side weight added to scores at evaluation
    cold_start: bool = True  # fill a user or item without CF signal from its text side


class LMMRecAligner(Aligner):
    Config = LMMRecConfig

    @classmethod
    def create(cls, inputs: TextInputs, backbone: Backbone, cfg: Any, train: sp.csr_matrix
               ) -> Aligner:
        return cls(inputs, backbone.dim, cfg, backbone, degrees(train))

    def __init__(self, inputs: TextInputs, dim: int, cfg: LMMRecConfig,
                 backbone: Backbone, train_degree: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__(inputs, dim, cfg.every)
        self.cfg = cfg
        pooling = "mean" if cfg.text_input == "summary" else cfg.pooling
        self.text = TextEncoder(inputs.text_dim, dim, pooling, cfg.hidden)
        self.proto = (PrototypeEncoder(dim, cfg.n_prototypes, cfg.proto_temp,
                                       cfg.proto_residual) if cfg.prototypes else nn.Identity())
        if cfg.prototypes and cfg.proto_init == "canonical":
            self._canonical_prototypes(inputs, cfg.n_prototypes)
        self._fixed = cfg.text_input == "summary" or pooling == "mean"
        if self._fixed:
            u, i = entity_vectors(inputs, cfg.text_input)
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

    @torch.no_grad()
    def _canonical_prototypes(self, inputs: TextInputs, k: int) -> None:
        from lmmrec.text.canonical import cluster  # sklearn: only when asked

        ph, ur, ir = inputs.phrases, inputs.user_rows, inputs.item_rows
        use = (torch.zeros(len(ph), device=ph.device).index_add(0, ur.col, ur.val)
               .index_add(0, ir.col, ir.val))
        voc = cluster(ph.cpu().numpy(), use.cpu().numpy(), k)
        w = self.proto.prototypes
        anchors = self.text(torch.from_numpy(voc.centroids).to(w.device))
        self.proto.prototypes[:len(anchors)] = anchors  # fewer phrases than k: rest random

    # -- text side ---------------------------------------------------------------------------

    def _pooled(self, enc: TextEncoder) -> tuple[torch.Tensor, torch.Tensor]:
        if self._fixed:
            return self.pooled_user, self.pooled_item
        return (enc.pool(self.inputs.user_rows, self.inputs.phrases),
                enc.pool(self.inputs.item_rows, self.inputs.phrases))

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        pu, pi = self._pooled(self.text)
        return _in_chunks(self.text, pu), _in_chunks(self.text, pi)

    # -- losses ------------------------------------------------------------------------------

    def losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor,
               backbone: Backbone) -> dict[str, torch.Tensor]:
        cfg, inp = self.cfg, self.inputs
        users, pos, neg = batch
        u = unique_sample(users, cfg.sample)
        u = u[inp.user_has_text[u]]
        i = unique_sample(torch.cat([pos, neg]), cfg.sample)
        i = i[inp.item_has_text[i]]
        coordinate = cfg.coordination and cfg.text_input != "summary"
        pairs = (self._review_pairs(subsample(u, cfg.coord_sample),
                                    subsample(i, cfg.coord_sample)) if coordinate else [])
        align = (cfg.mcs or cfg.itcm) and len(u) > 1 and len(i) > 1
        rows = list(pairs)
        if align:
            pu, pi = self._pooled(self.text)
            rows = [pu[u], pi[i], *rows]
        # Every text row of the step (both entity types, both terms) in one encoder call:
        # rows are independent, and the step is op-bound.
        z = self.text(torch.cat(rows)) if rows else None
        out: dict[str, torch.Tensor] = {}
        if coordinate:
            out["coord"] = cfg.coord_weight * self._coordination(
                z[len(u) + len(i):] if align else z, pairs)
        if not align:
            return out
        zu, zi = z[:len(u)], z[len(u):len(u) + len(i)]
        hu, hi = _halves(self.proto(torch.cat([user_emb[u], item_emb[i]])), len(u))
        targets = self._teacher_targets(u, i, user_emb, item_emb, backbone) if cfg.itcm else None
        if targets is not None and cfg.mcs and cfg.mcs_temp == cfg.itcm_temp:
            nce_kl = [nce_and_kl(cosine_logits(zs, hs, cfg.mcs_temp), t, 1 / cfg.mcs_temp)
                      for zs, hs, t in ((zu, hu, targets[0]), (zi, hi, targets[1]))]
            out["mcs"] = cfg.mcs_weight * (nce_kl[0][0] + nce_kl[1][0])
            out["itcm"] = cfg.itcm_weight * (nce_kl[0][1] + nce_kl[1][1])
            return out
        if cfg.mcs:
            out["mcs"] = cfg.mcs_weight * (info_nce_fused(zu, hu, cfg.mcs_temp)
                                           + info_nce_fused(zi, hi, cfg.mcs_temp))
        if targets is not None:
            out["itcm"] = cfg.itcm_weight * (
                nce_and_kl(cosine_logits(zu, hu, cfg.itcm_temp), targets[0], 1 / cfg.itcm_temp)[1]
                + nce_and_kl(cosine_logits(zi, hi, cfg.itcm_temp), targets[1], 1 / cfg.itcm_temp
                             )[1])
        return out

    def _review_pairs(self, u: torch.Tensor, i: torch.Tensor) -> list[torch.Tensor]:
        """Motivation vectors of two different reviews of each sampled user, then item: rows
        [a₁..aₙ, b₁..bₙ] per entity type with at least two entities."""
        inp = self.inputs
        pairs = []
        for csr, vecs, ents in ((inp.user_reviews, inp.review_user_vec, u),
                                (inp.item_reviews, inp.review_item_vec, i)):
            _, a, b = sample_review_pairs(csr, ents.cpu().numpy())
            if len(a) >= 2:
                ab = torch.from_numpy(np.concatenate([a, b])).to(vecs.device)
                pairs.append(vecs[ab])
        return pairs

    def _coordination(self, z: torch.Tensor, pairs: list[torch.Tensor]) -> torch.Tensor:
        """Motivation vectors from two different reviews of one entity are positives (z: the
        encoded rows of `pairs`, in order)."""
        loss, at = self.inputs.phrases.new_zeros(()), 0
        for x in pairs:
            za, zb = _halves(z[at:at + len(x)], len(x) // 2)
            # at coord_sample's ~128 rows autograd's InfoNCE is as fast as the fused pass
            loss = loss + info_nce_mean(za, zb, self.cfg.coord_temp)
            at += len(x)
        return loss

    @torch.no_grad()
    def on_step(self, backbone: Backbone) -> None:
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
            return (soft_target_sums(tz[0], th[0], cfg.itcm_temp, cfg.onehot_mix),
                    soft_target_sums(tz[1], th[1], cfg.itcm_temp, cfg.onehot_mix))

    @torch.no_grad()
    def _teacher_outputs(self):  # noqa: ANN202
        """The teacher's text and interaction sides of every user and item. Steps index these
        instead of re-running the teacher on each batch: one pass an epoch over all entities
        costs less than a pass a step over the batch's."""
        assert self.teacher_backbone is not None
        self.teacher_backbone.eval()
        tu_emb, ti_emb = self.teacher_backbone(None)
        pu, pi = self._pooled(self.teacher_text)
        return ((_in_chunks(self.teacher_text, pu), _in_chunks(self.teacher_proto, tu_emb)),
                (_in_chunks(self.teacher_text, pi), _in_chunks(self.teacher_proto, ti_emb)))

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


# Rows per encoder call when every user or item is encoded at once: the text encoder's
# hidden layer for a million entities would take over a gigabyte; a chunk's is ~50 MB.
CHUNK_ROWS = 65536


def _in_chunks(encoder: nn.Module, rows: torch.Tensor) -> torch.Tensor:
    """``encoder(rows)``, a chunk of rows at a time (rows are independent)."""
    if len(rows) <= CHUNK_ROWS:
        return encoder(rows)
    return torch.cat([encoder(rows[s:s + CHUNK_ROWS]) for s in range(0, len(rows), CHUNK_ROWS)])


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
