"""A trained run as a small Cornac-style API keyed by the dataset's raw ids:
``Recommender.load(run).recommend(user_id, k)`` -> items with scores and reasons.

Everything a request needs is cheap: `precompute(max_k)` ranks every user's top items once
(seen items masked) and finds the motivation pairs of each of them
(:class:`~lmmrec.explain.reasons.PhraseTables`), so a request is two slices. Without
precompute, a request scores every item and matches the user's phrases against its k items
in one vectorised pass (the same pairs :func:`~lmmrec.explain.match.best_matches` picks one
item at a time).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmmrec.data.dataset import PreparedDataset
from lmmrec.errors import LmmrecError
from lmmrec.eval.ranking import topk_scored
from lmmrec.explain import coldstart
from lmmrec.explain.coldrank import match_scores, query_phrases
from lmmrec.explain.coldstart import BackendExtractor, Extract, extract_phrases
from lmmrec.explain.match import MIN_SIMILARITY, Match, reason
from lmmrec.explain.reasons import MATCHES, NO_PHRASES, PROFILE_TOP, PhraseTables, Side
from lmmrec.text.artifact import read_manifest
from lmmrec.text.embed import EmbedConfig, embed_texts
from lmmrec.text.profiles import Profiles, amass
from lmmrec.train import trainer
from lmmrec.train.files import BEST, CONFIG

__all__ = ["MATCHES", "PROFILE_TOP", "Recommendation", "Recommender", "Side", "UnknownId"]


class UnknownId(LmmrecError, KeyError):
    """A raw user or item id that the run's dataset does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


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
                 profiles: Profiles | None, model: Any = None, cfg: Any = None,
                 extract: Extract | Any = None) -> None:
        self.ds, self.user_emb, self.item_emb = ds, user_emb, item_emb
        self.model, self.cfg = model, cfg
        self.profiles = profiles  # (the setter: phrase tables are built from it on first use)
        self.train = ds.train
        if extract is not None and hasattr(extract, "complete"):  # a Backend: wrap it
            extract = BackendExtractor(extract)
        self._extract = extract
        self._top: tuple[np.ndarray, np.ndarray] | None = None  # [n_users, K] items, scores
        self._lock = threading.Lock()

    @classmethod
    def load(cls, run_dir: str | Path, extract: Extract | Any = None) -> Recommender:
        """A finished run folder (config.json + best.pt). ``extract`` (text -> phrases, or an
        LLM Backend) is used for cold start by text; default: the configured LLM backend
        (local), built on first use."""
        run = Path(run_dir)
        if not (run / BEST).exists() or not (run / CONFIG).exists():
            raise LmmrecError(f"{run}: no {BEST} / {CONFIG}: not a finished run folder")
        cfg, ds, model = trainer.load_run(run)
        with torch.no_grad():
            user_emb, item_emb = model(None)
        profiles = None
        if cfg.motivations:
            # reasons show only phrases grounded in the entity's own reviews (or listing),
            # and no bare verdicts ("great"): a reason says why, not how much
            profiles = amass(ds, cfg.motivations, grounded=True, drop_verdicts=True)
        return cls(ds, user_emb, item_emb, profiles, model, cfg, extract)

    # -- ids ---------------------------------------------------------------------------------

    @cached_property
    def item_titles(self) -> list[str]:
        if "title" not in self.ds.items:
            return [""] * self.ds.n_items
        return [t if isinstance(t, str) else "" for t in self.ds.items["title"].tolist()]

    @cached_property
    def item_ids(self) -> list[str]:
        return [str(x) for x in self.ds.item_ids]

    @cached_property
    def user_ids(self) -> list[str]:
        return [str(x) for x in self.ds.user_ids]

    @cached_property
    def item_degree(self) -> np.ndarray:
        return np.bincount(self.train.indices, minlength=self.ds.n_items)

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

    def seen(self, u: int) -> np.ndarray:
        return self.train.indices[self.train.indptr[u]:self.train.indptr[u + 1]]

    # -- profiles ----------------------------------------------------------------------------

    @property
    def profiles(self) -> Profiles | None:
        return self._profiles

    @profiles.setter
    def profiles(self, profiles: Profiles | None) -> None:
        """Other profiles (e.g. ungrounded ones, to compare): the phrase tables follow."""
        self._profiles = profiles
        self.reasons = PhraseTables(profiles, PROFILE_TOP) if profiles is not None else None

    def phrase_table(self, entity: str) -> tuple[np.ndarray, np.ndarray]:
        """Every user's (or item's) top profile phrases: ids [n, PROFILE_TOP] (-1: none)
        and weights (:meth:`PhraseTables.table`)."""
        assert self.reasons is not None
        return self.reasons.table(entity)

    def side(self, entity: str, index: int) -> Side:
        """(texts, vectors, weights) of an entity's top profile phrases."""
        return NO_PHRASES if self.reasons is None else self.reasons.side(entity, index)

    def user_profile(self, user_id: str) -> dict[str, Any]:
        u = self.user_index(user_id)
        return self._profile("user", u, {"user": self.user_ids[u],
                                         "n_train_interactions": int(len(self.seen(u)))})

    def item_profile(self, item_id: str) -> dict[str, Any]:
        i = self.item_index(item_id)
        return self._profile("item", i, {"item": self.item_ids[i], "title": self.item_titles[i],
                                         "n_train_interactions": int(self.item_degree[i])})

    def _profile(self, entity: str, index: int, head: dict[str, Any]) -> dict[str, Any]:
        """``head`` followed by the entity's top motivations and its summary."""
        out: dict[str, Any] = {**head, "motivations": [], "summary": ""}
        if self.profiles is not None:
            out["motivations"] = [{"phrase": ph, "weight": round(w, 4)} for ph, w in
                                  self.profiles.top_phrases(entity, index, PROFILE_TOP)]
            out["summary"] = self.profiles.summary(entity, index)
        return out

    # -- ranking -----------------------------------------------------------------------------

    def precompute(self, max_k: int = 100, chunk: int = 4096, explain: bool = True,
                   item_chunk: int | None = None) -> None:
        """Rank every user's top ``max_k`` unseen items once (and, with ``explain``, slice
        every profile once), so `recommend` with k <= max_k is a lookup.

        Memory: ``chunk`` users x ``item_chunk`` items of scores at a time (item_chunk
        defaults to the run's ``eval.item_chunk``, else the whole catalogue)."""
        n_users, n_items = self.ds.n_users, self.ds.n_items
        item_chunk = item_chunk or self.item_chunk
        k = min(max_k, n_items)
        items = np.zeros((n_users, k), dtype=np.int64)
        scores = np.full((n_users, k), -np.inf, dtype=np.float32)
        with torch.no_grad():
            for start in range(0, n_users, chunk):
                end = min(start + chunk, n_users)
                v, i = topk_scored(self.user_emb, self.item_emb, np.arange(start, end),
                                   self.train, k, item_chunk)
                items[start:end], scores[start:end] = i.cpu().numpy(), v.cpu().numpy()
        self._top = (items, scores)
        if explain and self.reasons is not None:
            self.reasons.precompute(items)

    @property
    def item_chunk(self) -> int | None:
        """Items scored at a time (the run's eval.item_chunk; None: all at once)."""
        return getattr(getattr(self.cfg, "eval", None), "item_chunk", None)

    @property
    def max_k(self) -> int:
        return 0 if self._top is None else int(self._top[0].shape[1])

    def _rank(self, scores: torch.Tensor, k: int, seen: np.ndarray) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        scores = scores.clone()
        if len(seen):
            scores[torch.from_numpy(seen.astype(np.int64))] = -torch.inf
        k = min(k, int(torch.isfinite(scores).sum()))
        s, i = torch.topk(scores, k)
        return i.numpy(), s.numpy()

    def recommend(self, user_id: str, k: int = 10, remove_seen: bool = True,
                  explain: bool = True) -> list[Recommendation]:
        """Top-k items for a known user, training items excluded, each with its reason."""
        if k < 1:
            raise LmmrecError(f"k must be at least 1, got {k}")
        u = self.user_index(user_id)
        ranks = None  # which of the user's precomputed items these are
        if remove_seen and self._top is not None and k <= self.max_k:
            items, scores = self._top[0][u, :k], self._top[1][u, :k]
            keep = np.isfinite(scores)  # all finite first: only a short list ends early
            items, scores = items[keep], scores[keep]
            ranks = slice(0, len(items))
        else:
            with torch.no_grad():
                if remove_seen:  # in item chunks when the run sets eval.item_chunk
                    v, i = topk_scored(self.user_emb, self.item_emb, np.array([u]),
                                       self.train, min(k, self.ds.n_items), self.item_chunk)
                    items, scores = i[0].cpu().numpy(), v[0].cpu().numpy()
                    keep = np.isfinite(scores)
                    items, scores = items[keep], scores[keep]
                else:
                    items, scores = self._rank(self.item_emb @ self.user_emb[u], k,
                                               np.array([], dtype=np.int64))
        user_ph = self.side("user", u) if explain else NO_PHRASES
        return self._explained(items, scores, user_ph, u, ranks)

    def _explained(self, items: np.ndarray, scores: np.ndarray, user_ph: Side,
                   user: int | None = None, ranks: slice | None = None
                   ) -> list[Recommendation]:
        """The recommendations of ``items``, each with its reason: the user's phrases
        matched against every item's at once (looked up for a user's precomputed
        ``ranks``)."""
        if self.reasons is None:
            matches: list[list[Match]] = [[] for _ in range(len(items))]
        else:
            matches = self.reasons.matches(user_ph, items, user, ranks)
        out = []
        titles, ids = self.item_titles, self.item_ids
        for i, s, m in zip(items.tolist(), scores.tolist(), matches, strict=True):
            out.append(Recommendation(ids[i], s, reason(m, titles[i]), m, titles[i]))
        return out

    # -- cold start --------------------------------------------------------------------------

    def _phrase_vectors(self, phrases: list[str]) -> np.ndarray:
        """Unit vectors of phrases: the artifact's own where known, else embedded (cached)."""
        assert self.profiles is not None
        vocab = self._vocab
        vecs = np.zeros((len(phrases), self.profiles.dim), dtype=np.float32)
        missing = [j for j, p in enumerate(phrases) if p not in vocab]
        for j, p in enumerate(phrases):
            if p in vocab:
                vecs[j] = self.profiles.embeddings[vocab[p]]
        if missing:
            vecs[missing] = embed_texts([phrases[j] for j in missing], self._embed_config)
        return vecs

    @cached_property
    def _embed_config(self) -> Any:
        """The embedding model the artifact's phrases were embedded with."""
        info: dict[str, Any] = {}
        if self.cfg is not None and getattr(self.cfg, "motivations", None):
            try:
                info = read_manifest(Path(self.cfg.motivations)).get("embedding") or {}
            except LmmrecError:
                info = {}
        return EmbedConfig(**{k: info[k] for k in ("kind", "model") if info.get(k)})

    @cached_property
    def _vocab(self) -> dict[str, int]:
        assert self.profiles is not None
        return {p: j for j, p in enumerate(self.profiles.phrases)}

    @property
    def supports_text(self) -> bool:
        """Whether the run can rank for a new user described by text: it has motivation
        profiles to match the text against."""
        return self.profiles is not None

    def require_text(self) -> None:
        """Raise unless the run can rank by text (callers check before loading an LLM)."""
        if not self.supports_text:
            raise LmmrecError("cold start by text needs a run trained with motivations "
                              "(--motivations DIR)")

    def _fallback_scores(self, vecs: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """What orders items no phrase matches: the model's own cold-start score when its
        aligner has a text side (the user's phrases through it), else popularity."""
        aligner = getattr(self.model, "aligner", None)
        if aligner is None:
            return self.item_degree.astype(np.float32)
        enc = getattr(aligner, "text", None)
        if enc is None:
            enc = getattr(aligner, "mlp", None)
        with torch.no_grad():
            v = torch.from_numpy(vecs)
            w = torch.from_numpy(weights)
            query = getattr(enc, "query", None)
            if query is not None:  # attention pooling, as the encoder pools a profile
                logits = v @ query
                w = w * torch.exp(logits - logits.max())
                w = w / w.sum().clamp_min(1e-12)
            pooled = (w[:, None] * v).sum(0, keepdim=True)
            z = enc(pooled)[0] if enc is not None else pooled[0]
            _, item_text = aligner.text_embeddings()
            dim = self.model.backbone.dim
            # the model fills a cold user's CF vector with its text vector: do the same
            scores = (self.item_emb[:, :dim] @ z if z.shape[0] == dim else item_text @ z)
        return scores.numpy().astype(np.float32)

    def recommend_for_phrases(self, phrases: list[str], k: int = 10,
                              chunk: int = 4096) -> list[Recommendation]:
        """Cold start: rank items for a new user described only by motivation phrases.

        An item's score is the summed similarity of the motivation pairs its reason shows
        (the user's phrases against the item's profile phrases, matched one to one): the
        ranking and the reasons are one computation. Items that nothing matches follow, in
        the model's own cold-start order (else by popularity). Memory: ``chunk`` items at a
        time."""
        self.require_text()
        phrases = list(dict.fromkeys(str(p) for p in phrases if str(p).strip()))
        if not phrases:
            raise LmmrecError("no motivation phrases to rank by")
        if k < 1:
            raise LmmrecError(f"k must be at least 1, got {k}")
        assert self.profiles is not None
        vecs = self._phrase_vectors(phrases)
        weights = np.full(len(phrases), 1.0 / len(phrases), dtype=np.float32)
        ids, w = self.phrase_table("item")
        match = match_scores(vecs, weights, ids, w, self.profiles.embeddings, MATCHES,
                             MIN_SIMILARITY, chunk)
        fallback = self._fallback_scores(vecs, weights)
        user_ph: Side = (phrases, vecs, weights)  # the new user's own phrases
        # the vectorised scores pick the candidates; the reasons' own computation orders them
        pool = np.lexsort((-fallback, -match))[:min(len(match), k + 32)]
        recs = self._explained(pool, np.zeros(len(pool)), user_ph)
        for r in recs:
            r.score = float(sum(m.similarity for m in r.matches))
        pos = {int(i): n for n, i in enumerate(pool)}
        recs.sort(key=lambda r: (-r.score, pos[self.item_index(r.item)]))
        return recs[:k]

    def extractor(self) -> Extract:
        """The text -> phrases function for cold start (default: configured LLM, lazily)."""
        with self._lock:
            if self._extract is None:
                # looked up on the module, where tests replace it
                self._extract = coldstart.configured_extractor()
            return self._extract

    def extract_phrases(self, texts: list[str], extract: Extract | None = None) -> list[str]:
        return extract_phrases(texts, extract or self.extractor())

    def recommend_for_text(self, texts: list[str], k: int = 10, extract: Extract | None = None,
                           llm: bool = False) -> list[Recommendation]:
        """Cold start from a new user's own texts. By default no LLM: the texts' clauses are
        the phrases (:func:`~lmmrec.explain.coldrank.query_phrases`), embedded and matched
        in seconds. With ``extract`` (or ``llm``: the configured backend) the LLM extracts
        the motivations first, as for the training reviews."""
        self.require_text()  # before any LLM call
        if extract is None and not llm:
            return self.recommend_for_phrases(query_phrases(texts), k)
        return self.recommend_for_phrases(self.extract_phrases(texts, extract), k)


