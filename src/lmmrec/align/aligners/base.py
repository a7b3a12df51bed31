"""The aligner contract: what the wrapper adds to a backbone. An aligner sees only the
backbone's user and item embeddings (and, for an EMA teacher, the backbone itself through
the `Backbone` protocol), never its internals, so every backbone gets it unchanged."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import Field
from torch import nn

from lmmrec.align.encoders import TextEncoder
from lmmrec.backbones.base import Backbone, Batch
from lmmrec.config import Strict
from lmmrec.text.inputs import TextInputs


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
    drop_verdicts: bool = Field(False, description=(
        "leave phrases that are only a verdict ('great', 'works well') out of the text side"))
    phrase_weight: Literal["count", "idf"] = Field("count", description=(
        "a profile phrase's weight: its count, or its count x inverse review frequency"))
    profile_sides: Literal["split", "shared"] = Field("split", description=(
        "split: users pool their motivations (pos), items their attributes (attr) and half "
        "their pos; shared: both pool every pos and attr phrase of their reviews"))


def degrees(train: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Training interactions per user and per item."""
    return np.diff(train.indptr), np.bincount(train.indices, minlength=train.shape[1])


def unique_sample(x: torch.Tensor, limit: int) -> torch.Tensor:
    """At most `limit` of the distinct ids in `x`."""
    return subsample(torch.unique(x), limit)


def subsample(x: torch.Tensor, limit: int) -> torch.Tensor:
    if len(x) > limit:  # torch's seeded RNG: resumable
        x = x[torch.randperm(len(x), device=x.device)[:limit]]
    return x


def entity_vectors(inputs: TextInputs, pooled: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed text vectors of every user and item: their summaries' embeddings, or the
    weighted mean of their profile phrases."""
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

    A subclass sets ``Config``, its settings model (``align.*`` keys; a ``text_input`` field
    picks its text side from lmmrec.text.inputs.TEXT_INPUTS, else phrases), and implements
    ``losses`` (named, weighted terms) and ``text_embeddings``. ``create`` builds it for a
    run from the text inputs, the backbone and the training matrix (users x items, CSR); the
    default calls ``cls(inputs, backbone.dim, cfg)``.
    """

    Config: ClassVar[type[AlignConfig]] = AlignConfig

    def __init__(self, inputs: TextInputs, dim: int, every: int = 1) -> None:
        super().__init__()
        self.inputs, self.dim, self.every = inputs, dim, every

    @classmethod
    def create(cls, inputs: TextInputs, backbone: Backbone, cfg: Any, train: sp.csr_matrix
               ) -> Aligner:
        return cls(inputs, backbone.dim, cfg)  # type: ignore[call-arg]

    def losses(self, batch: Batch, user_emb: torch.Tensor, item_emb: torch.Tensor,
               backbone: Backbone) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Text-side vectors of every user and item in the backbone's space."""
        raise NotImplementedError

    def score_embeddings(self, user_emb: torch.Tensor, item_emb: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        return user_emb, item_emb

    def on_epoch_start(self, epoch: int) -> None:
        return None

    def on_step(self, backbone: Backbone) -> None:
        """Called on every training step, before the losses (aligned step or not)."""
        return None

    def _apply(self, fn, recurse=True):  # noqa: ANN001
        out = super()._apply(fn, recurse)
        self.inputs = self.inputs.to(fn(torch.zeros(1)).device)
        return out
