"""An aligner's text side as tensors (`TextInputs`), and how each `align.text_input` builds
it from a split: the table `TEXT_INPUTS` maps the setting to its builder.

- phrases: the LLM's motivation phrases, pooled per entity with its profile weights;
- summary: one profile-summary sentence per entity, embedded (the no-CoT ablation);
- reviews: each training review's raw text embedded, no LLM (the no-extraction ablation);
- phrases+reviews: both side by side;
- phrase-reviews: each review's phrases joined into one text, used as raw reviews are;
- canonical: each phrase replaced by its cluster of the vocabulary;
- phrases-neg: the phrases, a user's negative motivations counted against its side.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from lmmrec.data.dataset import PreparedDataset
from lmmrec.data.leakage import training_reviews
from lmmrec.errors import ConfigError, DataError
from lmmrec.layout import ARTIFACT
from lmmrec.llm.budget import budget_pairs
from lmmrec.llm.prompts import REVIEW_CHAR_CAP, TITLE_CHAR_CAP, fence
from lmmrec.text.artifact import read_manifest
from lmmrec.text.embed import EmbedConfig, embed_texts
from lmmrec.text.profiles import Profiles, amass, idf_weighted


class SparseRows:
    """Entity x phrase weights as COO arrays, kept as tensors (moved with the model)."""

    def __init__(self, row: torch.Tensor, col: torch.Tensor, val: torch.Tensor, n_rows: int):
        self.row, self.col, self.val, self.n_rows = row, col, val, n_rows

    @classmethod
    def from_scipy(cls, m) -> SparseRows:  # noqa: ANN001
        coo = m.tocoo()
        return cls(torch.from_numpy(coo.row.astype("int64")),
                   torch.from_numpy(coo.col.astype("int64")),
                   torch.from_numpy(coo.data.astype("float32")), m.shape[0])

    def to(self, device: torch.device) -> SparseRows:
        return SparseRows(self.row.to(device), self.col.to(device), self.val.to(device),
                          self.n_rows)

    def has_rows(self) -> torch.Tensor:
        mask = torch.zeros(self.n_rows, dtype=torch.bool, device=self.row.device)
        mask[self.row] = True
        return mask



@dataclass
class TextInputs:
    phrases: torch.Tensor  # [P, D_t]
    user_rows: SparseRows  # users x phrases (profile weights)
    item_rows: SparseRows
    # Coordination: each training review's own pooled phrase vector, and which entity owns it.
    review_user_vec: torch.Tensor  # [R, D_t]
    review_item_vec: torch.Tensor
    user_reviews: tuple[np.ndarray, np.ndarray]  # CSR (indptr, review ids) per user
    item_reviews: tuple[np.ndarray, np.ndarray]
    user_has_text: torch.Tensor  # [U] bool
    item_has_text: torch.Tensor  # [I] bool
    summary_user: torch.Tensor | None = None  # [U, D_t] profile-summary vectors (RLMRec)
    summary_item: torch.Tensor | None = None
    stats: dict = field(default_factory=dict)  # how much of the split has a text side

    @property
    def text_dim(self) -> int:
        return int(self.phrases.shape[1])

    def to(self, device: torch.device) -> TextInputs:
        mv = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return TextInputs(self.phrases.to(device), self.user_rows.to(device),
                          self.item_rows.to(device), self.review_user_vec.to(device),
                          self.review_item_vec.to(device), self.user_reviews,
                          self.item_reviews, self.user_has_text.to(device),
                          self.item_has_text.to(device), mv(self.summary_user),
                          mv(self.summary_item), self.stats)


def _owner_csr(owner: np.ndarray, n: int, keep: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Each entity's review ids (only those in `keep`, a mask over reviews)."""
    ids = np.arange(len(owner)) if keep is None else np.flatnonzero(keep)
    m = sp.csr_matrix((np.ones(len(ids)), (owner[ids], ids)), shape=(n, len(owner)))
    return m.indptr.astype(np.int64), m.indices.astype(np.int64)


def _has_phrases(w: sp.spmatrix) -> np.ndarray:
    return np.diff(sp.csr_matrix(w).indptr) > 0


def build_inputs(p: Profiles, summary_user: np.ndarray | None = None,
                 summary_item: np.ndarray | None = None) -> TextInputs:
    phrases = torch.from_numpy(np.ascontiguousarray(p.embeddings, dtype=np.float32))
    emb = p.embeddings.astype(np.float32)
    rev_u = np.asarray(p.review_user_w @ emb, dtype=np.float32)
    rev_i = np.asarray(p.review_item_w @ emb, dtype=np.float32)
    user_rows, item_rows = SparseRows.from_scipy(p.user_pos), SparseRows.from_scipy(p.item)
    t = (lambda a: None if a is None else torch.from_numpy(a.astype(np.float32)))  # noqa: E731
    return TextInputs(phrases, user_rows, item_rows, torch.from_numpy(rev_u),
                      torch.from_numpy(rev_i),
                      # a review without phrases has a zero vector: no coordination pair
                      _owner_csr(p.review_user, p.user_pos.shape[0],
                                 _has_phrases(p.review_user_w)),
                      _owner_csr(p.review_item, p.item.shape[0],
                                 _has_phrases(p.review_item_w)),
                      user_rows.has_rows(), item_rows.has_rows(), t(summary_user),
                      t(summary_item))


def sample_review_pairs(csr: tuple[np.ndarray, np.ndarray], entities: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two different training reviews per entity (vectorised, torch's seeded global RNG, so a
    resumed run draws the same); entities with fewer than two are dropped.
    Returns (kept entities, review a, review b)."""
    indptr, reviews = csr
    start, count = indptr[entities], indptr[entities + 1] - indptr[entities]
    keep = count >= 2
    start, count, ents = start[keep], count[keep], entities[keep]
    r = torch.rand(2, len(ents), dtype=torch.float64).numpy()
    a = np.minimum((r[0] * count).astype(np.int64), count - 1)
    b = (a + 1 + np.minimum((r[1] * (count - 1)).astype(np.int64), count - 2)) % count
    return ents, reviews[start + a], reviews[start + b]


def raw_review_inputs(ds: PreparedDataset, embed: EmbedConfig | None = None,
                      only: set[tuple[str, str]] | None = None) -> TextInputs:
    """The no-LLM ablation: every training review's own text (title + body, fenced and capped
    as for the LLM) is embedded as one 'phrase'; an entity pools its reviews uniformly, and
    coordination pairs two reviews of one entity. Validation and test reviews never enter
    (the leakage guard's `training_reviews`). ``embed``: the encoder (the default's when
    None); ``only``: these raw (user_id, item_id) training reviews alone (a budget's)."""
    rev = training_reviews(ds)
    texts = [" ".join(x for x in (fence(str(t or ""), TITLE_CHAR_CAP),
                                  fence(str(b or ""), REVIEW_CHAR_CAP)) if x)
             for t, b in zip(rev["title"].fillna(""), rev["text"].fillna(""), strict=True)]
    keep = np.array([bool(t) for t in texts], dtype=bool)
    if only is not None:
        u_raw = ds.users["raw_id"].astype(str).to_numpy()[rev["user"].to_numpy(np.int64)]
        i_raw = ds.items["raw_id"].astype(str).to_numpy()[rev["item"].to_numpy(np.int64)]
        keep &= np.array([(u, i) in only for u, i in zip(u_raw, i_raw, strict=True)],
                         dtype=bool)
    if not keep.any():
        raise DataError("no training review has text (align.text_input=reviews needs the "
                        "prepared data's review text)", path=ds.root)
    out = review_vector_inputs(ds, rev["user"].to_numpy(np.int64)[keep],
                               rev["item"].to_numpy(np.int64)[keep],
                               [t for t, k in zip(texts, keep, strict=True) if k], embed)
    out.stats["text_input"] = "reviews"
    return out


def review_vector_inputs(ds: PreparedDataset, users: np.ndarray, items: np.ndarray,
                         texts: list[str], embed: EmbedConfig | None) -> TextInputs:
    """One embedded text per training review, shared by its user and item sides: an entity
    pools its reviews uniformly, and coordination pairs two reviews of one entity."""
    vecs = torch.from_numpy(np.ascontiguousarray(embed_texts(texts, embed),
                                                 dtype=np.float32))
    rows = []
    for owner, n in ((users, ds.n_users), (items, ds.n_items)):
        deg = np.bincount(owner, minlength=n).astype(np.float32)
        m = sp.csr_matrix((1.0 / deg[owner], (owner, np.arange(len(owner)))),
                          shape=(n, len(owner)))
        rows.append(SparseRows.from_scipy(m))
    n_train = int(ds.train.nnz)
    stats = {"train_reviews_used": len(texts),
             "train_interactions": n_train, "train_coverage": round(len(texts) / max(1, n_train),
                                                                    4),
             "users_with_text": int((np.bincount(users, minlength=ds.n_users) > 0).sum()),
             "items_with_text": int((np.bincount(items, minlength=ds.n_items) > 0).sum())}
    return TextInputs(vecs, rows[0], rows[1], vecs, vecs, _owner_csr(users, ds.n_users),
                      _owner_csr(items, ds.n_items), rows[0].has_rows(), rows[1].has_rows(),
                      stats=stats)


def review_phrase_texts(p: Profiles) -> tuple[np.ndarray, list[str]]:
    """Each training review's phrases joined into one text (its user side first, heaviest
    first, ties in vocabulary order, then the item side's others), and the mask of reviews
    that have any."""
    texts = []
    for r in range(p.review_user_w.shape[0]):
        seen: dict[str, None] = {}
        for m in (p.review_user_w, p.review_item_w):
            lo, hi = m.indptr[r], m.indptr[r + 1]
            idx = m.indices[lo:hi]
            for j in idx[np.lexsort((idx, -m.data[lo:hi]))]:  # ties: vocabulary order
                seen.setdefault(p.phrases[j], None)
        texts.append(", ".join(seen))
    return np.array([bool(t) for t in texts], dtype=bool), texts


def combined_inputs(phrases: TextInputs, reviews: TextInputs) -> TextInputs:
    """The LLM's phrases and the raw reviews side by side: one vocabulary holding both, so an
    entity with both pools each at half weight (pooling renormalises each row), one with
    either pools that one. Coordination keeps pairing the motivations of two reviews."""
    n = len(phrases.phrases)
    user_rows = _stack_rows(phrases.user_rows, reviews.user_rows, n)
    item_rows = _stack_rows(phrases.item_rows, reviews.item_rows, n)
    return TextInputs(torch.cat([phrases.phrases, reviews.phrases]), user_rows, item_rows,
                      phrases.review_user_vec, phrases.review_item_vec, phrases.user_reviews,
                      phrases.item_reviews, user_rows.has_rows(), item_rows.has_rows())


def _stack_rows(a: SparseRows, b: SparseRows, offset: int, scale: float = 1.0) -> SparseRows:
    """`a`'s weights and `b`'s (times `scale`) in one row set, `b`'s columns moved past
    `offset` (a vocabulary that holds both)."""
    return SparseRows(torch.cat([a.row, b.row]), torch.cat([a.col, b.col + offset]),
                      torch.cat([a.val, scale * b.val]), a.n_rows)


def artifact_encoder(artifact: str | Path | None) -> EmbedConfig:
    """The encoder that embedded the artifact's phrases (its manifest; the default without
    an artifact): any other text a run embeds beside them must share that space."""
    used = (read_manifest(artifact).get("embedding") or {}) if artifact is not None else {}
    return EmbedConfig(**{k: used[k] for k in ("kind", "model") if k in used})


def summary_vectors(profiles: Profiles, ds: PreparedDataset, artifact: str | Path
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of every entity's one-sentence profile summary ('' for no text: zeros), by
    the model that embedded the artifact's phrases (its manifest), so both share one space."""
    cfg = artifact_encoder(artifact)
    out = []
    for entity, n in (("user", ds.n_users), ("item", ds.n_items)):
        texts = [profiles.summary(entity, k) for k in range(n)]
        have = [k for k, t in enumerate(texts) if t]
        vecs = np.zeros((n, profiles.dim), dtype=np.float32)
        if have:
            got = embed_texts([texts[k] for k in have], cfg)
            if got.shape[1] != profiles.dim:
                raise DataError(f"summaries embed to {got.shape[1]}-d with {cfg.kind}:"
                                f"{cfg.model}, but the phrases are {profiles.dim}-d",
                                path=Path(artifact) / ARTIFACT.manifest, field="embedding")
            vecs[have] = got
        out.append(vecs)
    return out[0], out[1]


def split_profiles(ds: PreparedDataset, motivations: str | Path | None, cfg: Any,
                   method: str) -> Profiles:
    """The split's profiles from the artifact (at the aligner's `review_share`), refused when
    they give no text side."""
    if motivations is None:
        raise ConfigError(f"--method {method} needs motivations: pass --motivations DIR")
    only = _budget(ds, cfg)
    profiles = amass(ds, motivations, only_pairs=only,
                     drop_verdicts=getattr(cfg, "drop_verdicts", False),
                     shared_sides=getattr(cfg, "profile_sides", "split") == "shared")
    if getattr(cfg, "phrase_weight", "count") == "idf":
        profiles = idf_weighted(profiles)
    st = profiles.stats
    if only is not None:
        st["review_share"] = cfg.review_share
        st["budget_reviews"] = len(only)
    if st["train_reviews_used"] == 0:
        raise DataError("no training review of this split has extracted motivations",
                        path=motivations)
    if st["train_coverage"] < 1 and only is None:  # a release still being extracted
        # stacklevel: the warning points at the caller of `wrap` (who builds the model)
        warnings.warn(f"{motivations}: motivations cover {st['train_reviews_used']} of "
                      f"{st['train_interactions']} training interactions "
                      f"({100 * st['train_coverage']:.1f} %); the others have no text side",
                      stacklevel=4)
    return profiles


# Each builder: (split, motivation artifact or None, aligner config, method name) -> inputs,
# their `stats` saying how much of the split has a text side (the run's metrics.json).
Builder = Callable[[PreparedDataset, "str | Path | None", Any, str], TextInputs]


def phrase_inputs(ds: PreparedDataset, motivations: str | Path | None, cfg: Any,
                  method: str) -> TextInputs:
    profiles = split_profiles(ds, motivations, cfg, method)
    return _with_stats(build_inputs(profiles), profiles.stats)


def summary_inputs(ds: PreparedDataset, motivations: str | Path | None, cfg: Any,
                   method: str) -> TextInputs:
    profiles = split_profiles(ds, motivations, cfg, method)
    assert motivations is not None  # split_profiles refused None
    su, si = summary_vectors(profiles, ds, motivations)
    return _with_stats(build_inputs(profiles, su, si), profiles.stats)


def _budget(ds: PreparedDataset, cfg: Any) -> set[tuple[str, str]] | None:
    """The training reviews at the aligner's `review_share` (None: all of them)."""
    return budget_pairs(ds, cfg.review_share, cfg.review_seed) if cfg.review_share < 1 else None


def review_inputs(ds: PreparedDataset, motivations: str | Path | None, cfg: Any,
                  method: str) -> TextInputs:
    # raw review text only, no LLM: the artifact (if any) only names the encoder, so that
    # reviews and phrases compare in one space; the same budget subsample as the phrases
    only = _budget(ds, cfg)
    out = raw_review_inputs(ds, artifact_encoder(motivations), only)
    if only is not None:
        out.stats.update(review_share=cfg.review_share, budget_reviews=len(only))
    return out


def phrase_and_review_inputs(ds: PreparedDataset, motivations: str | Path | None, cfg: Any,
                             method: str) -> TextInputs:
    profiles = split_profiles(ds, motivations, cfg, method)
    reviews = raw_review_inputs(ds, artifact_encoder(motivations), _budget(ds, cfg))
    return _with_stats(combined_inputs(build_inputs(profiles), reviews), profiles.stats)


def phrase_review_inputs(ds: PreparedDataset, motivations: str | Path | None, cfg: Any,
                         method: str) -> TextInputs:
    """Each training review's phrases joined into one text and embedded as one vector, used
    as raw reviews are (one vector a review, shared by its user and item): the LLM's
    motivations in place of the review's own words."""
    profiles = split_profiles(ds, motivations, cfg, method)
    keep, texts = review_phrase_texts(profiles)
    out = review_vector_inputs(ds, profiles.review_user[keep], profiles.review_item[keep],
                               [t for t, k in zip(texts, keep, strict=True) if k],
                               artifact_encoder(motivations))
    return _with_stats(out, {**profiles.stats, "text_input": "phrase-reviews"})


def canonical_inputs(ds: PreparedDataset, motivations: str | Path | None, cfg: Any,
                     method: str) -> TextInputs:
    """The phrases, each replaced by its canonical motivation (lmmrec.text.canonical)."""
    from lmmrec.text.canonical import canonical_profiles  # sklearn: only when asked

    profiles, _ = canonical_profiles(split_profiles(ds, motivations, cfg, method),
                                     getattr(cfg, "canonical_k", 256))
    return _with_stats(build_inputs(profiles), profiles.stats)


def phrase_neg_inputs(ds: PreparedDataset, motivations: str | Path | None, cfg: Any,
                      method: str) -> TextInputs:
    """The phrases, with what put a user off counted against it: its negative motivations
    (neg) join its pool as negated vectors, weighted `align.neg_weight` against its
    motivations (both rows sum to 1), so the pooled vector is (pos - w neg) / (1 + w), a
    user drawn to one thing and away from another. Items and coordination are as `phrases`."""
    profiles = split_profiles(ds, motivations, cfg, method)
    return _with_stats(signed_inputs(build_inputs(profiles), profiles.user_neg,
                                     getattr(cfg, "neg_weight", 0.5)),
                       {**profiles.stats, "text_input": "phrases-neg",
                        "users_with_neg": int(_has_phrases(profiles.user_neg).sum())})


def signed_inputs(base: TextInputs, user_neg: sp.spmatrix, weight: float) -> TextInputs:
    """`base` with each user's neg phrase weights (rows summing to 1) added at `weight`
    against negated copies of the phrase vectors (vocabulary P..2P-1)."""
    u = base.user_rows
    user_rows = u if weight == 0 else _stack_rows(  # weight 0: the rows of `phrases`
        u, SparseRows.from_scipy(user_neg), len(base.phrases), weight)
    return TextInputs(torch.cat([base.phrases, -base.phrases]), user_rows, base.item_rows,
                      base.review_user_vec, base.review_item_vec, base.user_reviews,
                      base.item_reviews, user_rows.has_rows(), base.item_has_text,
                      base.summary_user, base.summary_item)


def _with_stats(inputs: TextInputs, stats: dict) -> TextInputs:
    inputs.stats = dict(stats)
    return inputs


# `align.text_input` -> its builder; a new kind of text side is one function and one line.
TEXT_INPUTS: dict[str, Builder] = {
    "phrases": phrase_inputs,
    "summary": summary_inputs,
    "reviews": review_inputs,
    "phrases+reviews": phrase_and_review_inputs,
    "canonical": canonical_inputs,
    "phrase-reviews": phrase_review_inputs,
    "phrases-neg": phrase_neg_inputs,
}
