"""Amass user and item motivation profiles of one split from a motivation artifact.

Only training interactions contribute (via the leakage guard's `training_pairs`), so a
validation or test review can never reach a profile. Weights are phrase counts,
normalised per entity: users are described by what drew them (pos) and what disappointed
them (neg); items by the attributes reviews credit them with (attr) and, at half weight,
the motivations of the people who chose them (pos). Where the artifact has item offers
(`extract --items`, from titles, descriptions and tags), each item's listing counts as one
more review of it: its attributes at full weight, the motivations it serves at half. Listings
belong to no split, so they may describe every item, cold ones included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmmrec.data.dataset import PreparedDataset
from lmmrec.data.leakage import interaction_pairs, training_pairs, training_reviews
from lmmrec.errors import DataError
from lmmrec.layout import ARTIFACT, FINGERPRINT
from lmmrec.llm.grounding import Grounding, is_verdict
from lmmrec.text.artifact import artifact_texts, load_items, load_reviews, read_manifest
from lmmrec.text.embed import load_embeddings

ITEM_POS_WEIGHT = 0.5
MIN_ALIGNED_SHARE = 0.5  # below this share of artifact pairs found in the dataset: wrong ids


@dataclass
class Profiles:
    """Profiles of one split: sparse entity x phrase weights over a phrase vocabulary."""

    phrases: list[str]
    embeddings: np.ndarray  # [P, D] float32, L2-normalised
    user_pos: sp.csr_matrix  # n_users x P
    user_neg: sp.csr_matrix  # n_users x P
    item: sp.csr_matrix  # n_items x P
    review_user: np.ndarray  # per training review
    review_item: np.ndarray
    review_user_w: sp.csr_matrix  # n_reviews x P: each review's user-side phrases
    review_item_w: sp.csr_matrix  # n_reviews x P: each review's item-side phrases
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def top_phrases(self, entity: str, index: int, k: int = 5) -> list[tuple[str, float]]:
        m = self.user_pos if entity == "user" else self.item
        row = m.getrow(index)
        order = np.argsort(-row.data, kind="stable")[:k]
        return [(self.phrases[row.indices[j]], float(row.data[j])) for j in order]

    def summary(self, entity: str, index: int) -> str:
        top = [p for p, _ in self.top_phrases(entity, index, 3)]
        if not top:
            return ""
        joined = top[0] if len(top) == 1 else ", ".join(top[:-1]) + " and " + top[-1]
        if entity == "user":
            neg = self.user_neg.getrow(index)
            bad = ""
            if neg.nnz:
                bad = f"; put off by {self.phrases[neg.indices[int(np.argmax(neg.data))]]}"
            return f"Chooses items for {joined}{bad}."
        return f"Valued for {joined}."


def _weights(rows: Sequence[int], phrase_lists: Sequence[Sequence[str]], vocab: dict[str, int],
             n_rows: int, weight: float = 1.0) -> sp.csr_matrix:
    r, c = [], []
    for row, phrases in zip(rows, phrase_lists, strict=True):
        for p in phrases:
            r.append(row)
            c.append(vocab[str(p)])  # every phrase is embedded: checked by amass
    m = sp.csr_matrix((np.full(len(r), weight, dtype=np.float32), (r, c)),
                      shape=(n_rows, len(vocab)))
    m.sum_duplicates()
    return m


def _row_normalise(m: sp.csr_matrix) -> sp.csr_matrix:
    s = np.asarray(m.sum(axis=1)).ravel()
    inv = np.divide(1.0, s, out=np.zeros_like(s), where=s > 0)
    return sp.csr_matrix(sp.diags(inv.astype(np.float32)) @ m)


def _grounded_lists(lists: Sequence[Sequence[Sequence[str]]], texts: Sequence[str]
                    ) -> tuple[list[list[list[str]]], int]:
    """Each of several parallel phrase lists (e.g. pos, neg, attr of every review) kept to
    the phrases grounded in its own text; how many were dropped. A text is tokenised once
    for all its lists (10^5-10^6 reviews: seconds, not minutes)."""
    out: list[list[list[str]]] = [[] for _ in lists]
    dropped = 0
    for n, text in enumerate(texts):
        g = Grounding(text)
        for col, phrases in zip(out, lists, strict=True):
            kept = [p for p in phrases[n] if g.grounded(str(p))]
            dropped += len(phrases[n]) - len(kept)
            col.append(kept)
    return out, dropped


def amass(ds: PreparedDataset, artifact: str | Path, grounded: bool = False,
          only_pairs: set[tuple[str, str]] | None = None,
          drop_verdicts: bool = False, shared_sides: bool = False) -> Profiles:
    """Profiles of ``ds``'s split from ``artifact`` (training interactions only).

    ``grounded``: keep only phrases that pass the grounding rule against their own source
    (the training review they were extracted from; an item offer's listing). Reasons shown
    to a person are built from such profiles, so every phrase in them can be traced to the
    user's or item's own words; training uses the artifact as exported. ``only_pairs``:
    use only these training (user_id, item_id) reviews (an extraction budget).
    ``drop_verdicts``: leave out phrases that are only a verdict ("great", "works well":
    :func:`lmmrec.llm.grounding.is_verdict`), counted in the stats. ``shared_sides``: users
    and items both pool every phrase (pos and attr) of their reviews, one vocabulary on both
    sides as raw reviews are pooled, instead of users by their motivations and items by
    their attributes (reasons keep the split: it is what makes them read as reasons)."""
    artifact = Path(artifact)
    fingerprint = _check_dataset(ds, artifact)
    reviews = load_reviews(artifact)
    phrases, emb = load_embeddings(artifact)
    _check_aligned(ds, artifact, reviews, fingerprint)
    allowed = training_pairs(ds)
    pairs = list(zip(reviews["user_id"].astype(str), reviews["item_id"].astype(str),
                     strict=True))
    in_train = np.array([p in allowed for p in pairs], dtype=bool)
    keep = in_train if only_pairs is None else in_train & np.array(
        [p in only_pairs for p in pairs], dtype=bool)
    tr = reviews[keep].sort_values(["user_id", "item_id"], kind="stable")
    vocab = {p: j for j, p in enumerate(phrases)}
    offers = load_items(artifact)
    offers = offers[offers["item_id"].astype(str).isin(ds.item_index)]
    missing = set(artifact_texts(tr, offers)) - vocab.keys()
    if missing:  # an export newer than its embeddings: never drop phrases silently
        raise DataError(f"{len(missing)} phrase(s) of training reviews or item offers have "
                        f"no embedding (e.g. {sorted(missing)[0]!r}): re-run "
                        f"`lmmrec embed {artifact}`", path=artifact / ARTIFACT.phrases)
    users = np.array([ds.user_index[str(u)] for u in tr["user_id"]], dtype=np.int64)
    items = np.array([ds.item_index[str(i)] for i in tr["item_id"]], dtype=np.int64)
    lists = [tr[c].tolist() for c in ARTIFACT.review_phrases]  # pos, neg, attr
    dropped = verdicts = 0
    if grounded:
        lists, offers, dropped = _grounded(ds, users, items, lists, offers)
    if drop_verdicts:
        lists, offers, verdicts = _without_verdicts(lists, offers)
    prof = _weigh(ds, users, items, lists, offers, vocab, phrases, emb, shared_sides)
    prof.stats = {
        "train_reviews_used": len(tr),
        # this split's training interactions (each may have a review) vs those extracted
        "train_interactions": len(allowed),
        "train_coverage": round(len(tr) / max(1, len(allowed)), 4),
        "reviews_excluded_not_train": int((~in_train).sum()),
        "users_with_profile": int((prof.user_pos.getnnz(axis=1) > 0).sum()),
        "items_with_profile": int((prof.item.getnnz(axis=1) > 0).sum()),
        "items_with_offer": int(len(set(_listed(ds, offers).tolist()))),
        "n_phrases": len(phrases),
        **({"ungrounded_phrases_dropped": dropped} if grounded else {}),
        **({"verdict_phrases_dropped": verdicts} if drop_verdicts else {}),
    }
    return prof


def idf_weighted(p: Profiles) -> Profiles:
    """The same profiles with each phrase's weight scaled by its inverse review frequency,
    log(1 + R / df), rows renormalised: a phrase in every other review ("great", "price")
    counts for less than one that sets an entity apart ("true bypass"). A phrase's document
    frequency is the number of training reviews in whose user or item side it appears."""
    n = p.review_user_w.shape[0]
    seen = ((p.review_user_w != 0) + (p.review_item_w != 0)).astype(bool).tocsc()
    df = np.diff(seen.indptr).astype(np.float64)
    idf = np.where(df > 0, np.log1p(n / np.maximum(df, 1)), 0.0).astype(np.float32)
    scale = sp.diags(idf)

    def w(m: sp.csr_matrix) -> sp.csr_matrix:
        return _row_normalise(sp.csr_matrix(m @ scale))

    return Profiles(p.phrases, p.embeddings, w(p.user_pos), w(p.user_neg), w(p.item),
                    p.review_user, p.review_item, w(p.review_user_w), w(p.review_item_w),
                    {**p.stats, "phrase_weight": "idf"})


def _check_dataset(ds: PreparedDataset, artifact: Path) -> str | None:
    """The artifact's interactions fingerprint; a DataError if it names another dataset.

    Matched on the interactions, not the name: the same data prepared from a renamed file
    is the same dataset. An artifact exported before fingerprints falls back on the name."""
    manifest = read_manifest(artifact)
    fingerprint = manifest.get(FINGERPRINT)
    if not fingerprint and manifest.get("dataset") not in (None, ds.name):
        raise DataError(f"artifact is for dataset {manifest.get('dataset')!r}, "
                        f"not {ds.name!r}", path=artifact / ARTIFACT.manifest, field="dataset")
    return fingerprint


def _check_aligned(ds: PreparedDataset, artifact: Path, reviews: pd.DataFrame,
                   fingerprint: str | None) -> None:
    """Refuse an artifact whose (user, item) pairs are mostly not interactions of ``ds``."""
    known = {(str(u), str(i)) for u, i in zip(reviews["user_id"], reviews["item_id"],
                                                strict=True)}
    # whole interactions, not ids one by one: numeric ids of another dataset often exist here
    # (a matching fingerprint already says every artifact pair is an interaction here)
    same_data = bool(fingerprint) and fingerprint == ds.fingerprint
    aligned = len(known) if same_data else len(known & interaction_pairs(ds))
    if known and aligned / len(known) < MIN_ALIGNED_SHARE:
        raise DataError(f"only {aligned} of {len(known)} artifact (user, item) pairs are "
                        f"interactions of dataset {ds.name!r}: the artifact's ids do not match "
                        "this dataset" + (" (nor does its interactions fingerprint)"
                                          if fingerprint else ""),
                        path=artifact / ARTIFACT.reviews, field="user_id/item_id")


def _grounded(ds: PreparedDataset, users: np.ndarray, items: np.ndarray,
              lists: list[list[Any]], offers: pd.DataFrame
              ) -> tuple[list[list[Any]], pd.DataFrame, int]:
    """Review phrase lists and item offers kept to the phrases grounded in their source
    (the training review; the item's listing); how many phrases were dropped."""
    texts = _review_texts(ds, users, items)
    kept, d = _grounded_lists(lists, texts)
    listing = _listing_texts(ds, _listed(ds, offers))
    (o_attr, o_serves), e = _grounded_lists([offers[f].tolist() for f in
                                             ARTIFACT.item_phrases], listing)
    offers = offers.assign(attr=o_attr, serves=o_serves)
    return kept, offers, d + e


def _without_verdicts(lists: list[list[Any]], offers: pd.DataFrame
                      ) -> tuple[list[list[Any]], pd.DataFrame, int]:
    """Review phrase lists and item offers without verdict phrases; how many were dropped."""
    dropped = 0

    def keep(col: list[Any]) -> list[list[str]]:
        nonlocal dropped
        out = []
        for phrases in col:
            kept = [str(p) for p in phrases if not is_verdict(str(p))]
            dropped += len(phrases) - len(kept)
            out.append(kept)
        return out

    lists = [keep(col) for col in lists]
    offers = offers.assign(**{f: keep(offers[f].tolist()) for f in ARTIFACT.item_phrases})
    return lists, offers, dropped


def _listed(ds: PreparedDataset, offers: pd.DataFrame) -> np.ndarray:
    """Dense item index of each item offer."""
    return np.array([ds.item_index[str(i)] for i in offers["item_id"]], dtype=np.int64)


def _weigh(ds: PreparedDataset, users: np.ndarray, items: np.ndarray,
           lists: list[list[Any]], offers: pd.DataFrame, vocab: dict[str, int],
           phrases: list[str], emb: np.ndarray, shared: bool = False) -> Profiles:
    """Phrase weights per review, summed per user and per item, each row normalised. Split
    sides: a user pools the motivations (pos) of its reviews, an item their attributes and,
    at half weight, their motivations. Shared sides: both pool every pos and attr phrase."""
    pos, neg, attr = lists
    n = len(users)
    rev = np.arange(n)
    if shared:
        review_user_w = review_item_w = (_weights(rev, pos, vocab, n)
                                         + _weights(rev, attr, vocab, n)).tocsr()
    else:
        review_user_w = _weights(rev, pos, vocab, n)
        review_item_w = (_weights(rev, attr, vocab, n)
                         + _weights(rev, pos, vocab, n, ITEM_POS_WEIGHT)).tocsr()
    to_user = sp.csr_matrix((np.ones(n, np.float32), (users, rev)), shape=(ds.n_users, n))
    to_item = sp.csr_matrix((np.ones(n, np.float32), (items, rev)), shape=(ds.n_items, n))
    user_pos = _row_normalise((to_user @ review_user_w).tocsr())
    user_neg = _row_normalise((to_user @ _weights(rev, neg, vocab, n)).tocsr())
    listed = _listed(ds, offers)
    offer_w = (_weights(listed, offers["attr"].tolist(), vocab, ds.n_items)
               + _weights(listed, offers["serves"].tolist(), vocab, ds.n_items, ITEM_POS_WEIGHT))
    item = _row_normalise((to_item @ review_item_w + offer_w).tocsr())
    return Profiles(phrases, emb, user_pos, user_neg, item, users, items,
                    _row_normalise(review_user_w), _row_normalise(review_item_w))


def _review_texts(ds: PreparedDataset, users: np.ndarray, items: np.ndarray) -> list[str]:
    """Headline and text of each (user, item) training review, "" where it has none."""
    tr = training_reviews(ds)
    head = tr["title"].fillna("").astype(str) if "title" in tr else ""
    seen = (head + " " + tr["text"].fillna("").astype(str)).str.strip()
    by_pair = dict(zip(zip(tr["user"].tolist(), tr["item"].tolist(), strict=True),
                       seen.tolist(), strict=True))
    return [by_pair.get((int(u), int(i)), "") for u, i in zip(users, items, strict=True)]


def _listing_texts(ds: PreparedDataset, items: np.ndarray) -> list[str]:
    """Title, description and tags of each item: what an item offer was extracted from."""
    cols = [c for c in ("title", "description", "tags") if c in ds.items]
    if not cols or not len(items):
        return [""] * len(items)
    # column by column (vectorised): a row-wise agg takes minutes at 10^5 items
    rows = ds.items[cols].iloc[np.asarray(items, dtype=np.int64)].fillna("").astype(str)
    joined = rows[cols[0]]
    for c in cols[1:]:
        joined = joined + " " + rows[c]
    return joined.tolist()


def own_texts(ds: PreparedDataset) -> tuple[dict[int, list[str]], dict[int, list[str]],
                                             list[str]]:
    """What each user and item wrote or was written about in training (headline and text
    of each training review), and each item's listing: the sources a reason's phrases must
    be grounded in."""
    tr = training_reviews(ds)
    head = tr["title"].fillna("").astype(str) if "title" in tr else ""
    texts = (head + " " + tr["text"].fillna("").astype(str)).str.strip().tolist()
    by_user: dict[int, list[str]] = {}
    by_item: dict[int, list[str]] = {}
    for u, i, t in zip(tr["user"].tolist(), tr["item"].tolist(), texts, strict=True):
        by_user.setdefault(int(u), []).append(t)
        by_item.setdefault(int(i), []).append(t)
    return by_user, by_item, _listing_texts(ds, np.arange(ds.n_items))
