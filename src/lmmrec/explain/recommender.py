"""A trained run as a small Cornac-style API keyed by the dataset's raw ids:
``Recommender.load(run).recommend(user_id, k)`` -> items with scores and reasons."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmmrec.data.dataset import PreparedDataset
from lmmrec.errors import LmmrecError
from lmmrec.explain.match import Match, best_matches, profile_side, reason
from lmmrec.text.profiles import Profiles


class UnknownId(LmmrecError, KeyError):
    """A raw user or item id that the run's dataset does not know."""


@dataclass
class Recommendation:
    item: str
    score: float
    reason: str
    matches: list[Match] = field(default_factory=list)
    title: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "title": self.title, "score": round(self.score, 6),
                "reason": self.reason, "matches": [m.as_dict() for m in self.matches]}


class Recommender:
    def __init__(self, ds: PreparedDataset, user_emb: torch.Tensor, item_emb: torch.Tensor,
                 profiles: Profiles | None, model: Any = None, cfg: Any = None) -> None:
        self.ds, self.user_emb, self.item_emb = ds, user_emb, item_emb
        self.profiles, self.model, self.cfg = profiles, model, cfg
        self.train = ds.train

    @classmethod
    def load(cls, run_dir: str | Path) -> Recommender:
        from lmmrec.train import checkpoint as ckpt
        from lmmrec.train.config import RunConfig
        from lmmrec.train.trainer import BEST, CONFIG, build_model, load_dataset

        run = Path(run_dir)
        if not (run / BEST).exists():
            raise LmmrecError(f"{run}: no {BEST}: not a finished run folder")
        cfg = RunConfig.model_validate(json.loads((run / CONFIG).read_text(encoding="utf-8")))
        ds = load_dataset(cfg)
        model = build_model(cfg, ds)
        model.load_state_dict(ckpt.load(run / BEST, "cpu")["model"])
        model.eval()
        with torch.no_grad():
            user_emb, item_emb = model(None)
        profiles = None
        if cfg.motivations:
            from lmmrec.text.profiles import amass

            profiles = amass(ds, cfg.motivations)
        return cls(ds, user_emb, item_emb, profiles, model, cfg)

    @cached_property
    def item_titles(self) -> list[str]:
        if "title" not in self.ds.items:
            return [""] * self.ds.n_items
        return [t if isinstance(t, str) else "" for t in self.ds.items["title"].tolist()]

    def user_index(self, user_id: str) -> int:
        try:
            return self.ds.user_index[str(user_id)]
        except KeyError:
            raise UnknownId(f"unknown user id {user_id!r}") from None

    def item_index(self, item_id: str) -> int:
        try:
            return self.ds.item_index[str(item_id)]
        except KeyError:
            raise UnknownId(f"unknown item id {item_id!r}") from None

    def _rank(self, scores: torch.Tensor, k: int, seen: np.ndarray) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        scores = scores.clone()
        if len(seen):
            scores[torch.from_numpy(seen)] = -torch.inf
        k = min(k, int(torch.isfinite(scores).sum()))
        s, i = torch.topk(scores, k)
        return i.numpy(), s.numpy()

    def recommend(self, user_id: str, k: int = 10, remove_seen: bool = True,
                  explain: bool = True) -> list[Recommendation]:
        u = self.user_index(user_id)
        seen = self.train.indices[self.train.indptr[u]:self.train.indptr[u + 1]]
        items, scores = self._rank(self.item_emb @ self.user_emb[u], k,
                                   seen if remove_seen else np.array([], dtype=np.int64))
        user_ph = (profile_side(self.profiles, "user", u) if self.profiles is not None
                   else ([], np.zeros((0, 1)), np.zeros(0)))
        return [self._explained(int(i), float(s), user_ph, explain)
                for i, s in zip(items, scores, strict=True)]

    def _explained(self, i: int, score: float,
                   user_ph: tuple[list[str], np.ndarray, np.ndarray],
                   explain: bool) -> Recommendation:
        title = self.item_titles[i]
        matches: list[Match] = []
        if explain and self.profiles is not None:
            matches = best_matches(*user_ph, *profile_side(self.profiles, "item", i))
        return Recommendation(str(self.ds.item_ids[i]), score, reason(matches, title),
                              matches, title)

    def recommend_for_phrases(self, phrases: list[str], k: int = 10) -> list[Recommendation]:
        """Cold start: rank items for a new user described only by motivation phrases."""
        if self.profiles is None or self.model is None or not hasattr(self.model, "aligner"):
            raise LmmrecError("cold start by text needs a run trained with motivations "
                              "(--method lmmrec | rlmrec-con | rlmrec-gen)")
        from lmmrec.text.embed import embed_texts

        if not phrases:
            raise LmmrecError("no motivation phrases to rank by")
        vecs = embed_texts(phrases, _embed_cfg(self.profiles))
        pooled = torch.from_numpy(vecs.mean(0, keepdims=True))
        aligner = self.model.aligner
        enc = getattr(aligner, "text", None) or getattr(aligner, "mlp", None)
        with torch.no_grad():
            z = enc(pooled)[0] if enc is not None else pooled[0]
        _, item_text = aligner.text_embeddings()
        dim = self.model.backbone.dim
        item_inter = self.item_emb[:, :dim]
        scores = item_inter @ z if z.shape[0] == dim else item_text @ z
        items, s = self._rank(scores, k, np.array([], dtype=np.int64))
        user_ph = (list(phrases), vecs, np.ones(len(phrases)))  # the new user's own phrases
        return [self._explained(int(i), float(v), user_ph, True)
                for i, v in zip(items, s, strict=True)]

    def item_profile(self, item_id: str) -> dict[str, Any]:
        i = self.item_index(item_id)
        out: dict[str, Any] = {"item": str(self.ds.item_ids[i]), "title": self.item_titles[i],
                               "n_train_interactions": int((self.train.indices == i).sum())}
        if self.profiles is not None:
            out["motivations"] = [{"phrase": ph, "weight": round(w, 4)}
                                  for ph, w in self.profiles.top_phrases("item", i, 12)]
            out["summary"] = self.profiles.summary("item", i)
        return out


def _embed_cfg(_: Profiles) -> Any:
    from lmmrec.text.embed import EmbedConfig

    return EmbedConfig()
